#include "moeplan/Runtime/InitWeights.h"

#include "moeplan/Kernels/Seeded.h"
#include "moeplan/Runtime/DTypes.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace moeplan::runtime {

InitRule initRule(const std::string &name, const std::vector<int64_t> &shape) {
  // Bias names end in "bias", "bq".."bo" or "b_up"/"b_gate"/"b_down".
  const std::string last = name.substr(name.rfind('.') + 1);
  const bool bias = last == "bias" || last.rfind("b_", 0) == 0 || (last.size() == 2 && last[0] == 'b');
  const bool normWeight = name.find("norm") != std::string::npos && last == "weight";
  if (normWeight) return {0.1f, 1.0f};
  if (bias) return {0.1f, 0.0f};
  if (name != "embedding.weight" && shape.size() >= 2)
    // Uniform in [-a, a) has variance a^2 / 3: a = sqrt(3 / fan_in) gives 1 / fan_in.
    return {float(std::sqrt(3.0 / double(shape[shape.size() - 2]))), 0.0f};
  return {};
}

checkpoint::SafetensorsWriter initWeights(const plan::Plan &plan, uint64_t seed,
                                          checkpoint::DType dtype) {
  std::map<std::string, std::vector<int64_t>> tensors;  // name order: deterministic
  for (const plan::Program &prog : plan.programs())
    for (const plan::Buffer &b : prog.buffers())
      if (b.kind() == plan::WEIGHT)
        tensors[b.slice().tensor()] = {b.slice().full_shape().begin(), b.slice().full_shape().end()};

  checkpoint::SafetensorsWriter writer;
  for (const auto &[name, shape] : tensors) {
    int64_t elements = 1;
    for (int64_t d : shape) elements *= d;
    const InitRule rule = initRule(name, shape);
    const uint64_t key = kernels::streamKey(seed, name);
    std::vector<float> data(static_cast<size_t>(elements));
    for (int64_t i = 0; i < elements; ++i)
      data[size_t(i)] = rule.offset + rule.scale * kernels::seededUniformAt(key, uint64_t(i));
    std::vector<std::byte> stored(size_t(elements) * checkpoint::dtypeBytes(dtype));
    convert(plan::F32, data.data(), planDType(dtype), stored.data(), uint64_t(elements));
    writer.add(name, dtype, shape, stored.data());
  }

  std::string model;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(plan.model(), &model, options);
  writer.setMetadata(kModelMetadataKey, model);
  writer.setMetadata("moeplan.seed", std::to_string(seed));
  return writer;
}

} // namespace moeplan::runtime
