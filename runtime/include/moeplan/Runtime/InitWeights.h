// `moeplan init-weights`: a deterministic random checkpoint in the unsharded layout for the
// weights a plan names (every WEIGHT buffer's slice.tensor at its full shape).
#pragma once

#include "moeplan/Checkpoint/Safetensors.h"
#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moeplan::runtime {

// Metadata key holding the plan's Model as JSON (proto field names, enums by name): what the
// PyTorch oracle (test/oracle/moe_oracle.py) reads to know the architecture.
constexpr const char *kModelMetadataKey = "moeplan.model";

// Values: element i of tensor `name` is offset + scale * seededUniform(seed, name, i)
// (kernels/Seeded.h), with the rule below. Each element depends only on (seed, name, index),
// so a rank can generate its own shard alone (moeplan-run --random-weights).
struct InitRule {
  float scale = 1, offset = 0;
};
// Matrices uniform with variance 1 / fan_in (fan_in = the second-to-last dim), so activations
// keep unit scale through the layers; norm weights 1 + 0.1 u; biases 0.1 u; the embedding
// uniform in [-1, 1).
InitRule initRule(const std::string &name, const std::vector<int64_t> &shape);

// Every weight tensor of the plan, stored as `dtype` (F32, F16 or BF16: values rounded once).
checkpoint::SafetensorsWriter initWeights(const plan::Plan &plan, uint64_t seed,
                                          checkpoint::DType dtype = checkpoint::DType::F32);

} // namespace moeplan::runtime
