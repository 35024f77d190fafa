// `moeplan init-weights`: a deterministic random checkpoint in the unsharded layout for the
// weights a plan names (every WEIGHT buffer's slice.tensor at its full shape).
#pragma once

#include "moeplan/Checkpoint/Safetensors.h"
#include "moeplan/schema/plan.pb.h"

#include <cstdint>

namespace moeplan::runtime {

// Metadata key holding the plan's Model as JSON (proto field names, enums by name): what the
// PyTorch oracle (test/oracle/moe_oracle.py) reads to know the architecture.
constexpr const char *kModelMetadataKey = "moeplan.model";

// Values: matrices uniform with variance 1 / fan_in (fan_in = the second-to-last dim), so
// activations keep unit scale through the layers; norm weights 1 + 0.1 u; biases 0.1 u;
// the embedding uniform in [-1, 1). Each element depends only on (seed, name, index).
checkpoint::SafetensorsWriter initWeights(const plan::Plan &plan, uint64_t seed);

} // namespace moeplan::runtime
