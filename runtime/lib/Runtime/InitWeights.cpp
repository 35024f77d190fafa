#include "moeplan/Runtime/InitWeights.h"
#include "moeplan/Runtime/Seeded.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace moeplan::runtime {

checkpoint::SafetensorsWriter initWeights(const plan::Plan &plan, uint64_t seed) {
  std::map<std::string, std::vector<int64_t>> tensors;  // name order: deterministic
  for (const plan::Program &prog : plan.programs())
    for (const plan::Buffer &b : prog.buffers())
      if (b.kind() == plan::WEIGHT)
        tensors[b.slice().tensor()] = {b.slice().full_shape().begin(), b.slice().full_shape().end()};

  checkpoint::SafetensorsWriter writer;
  for (const auto &[name, shape] : tensors) {
    int64_t elements = 1;
    for (int64_t d : shape) elements *= d;
    // Bias names end in "bias", "bq".."bo" or "b_up"/"b_gate"/"b_down".
    const std::string last = name.substr(name.rfind('.') + 1);
    const bool bias = last == "bias" || last.rfind("b_", 0) == 0 || (last.size() == 2 && last[0] == 'b');
    const bool normWeight = name.find("norm") != std::string::npos && last == "weight";
    float scale = 1, offset = 0;
    if (normWeight) {
      scale = 0.1f, offset = 1;
    } else if (bias) {
      scale = 0.1f;
    } else if (name != "embedding.weight" && shape.size() >= 2) {
      // Uniform in [-a, a) has variance a^2 / 3: a = sqrt(3 / fan_in) gives 1 / fan_in.
      scale = float(std::sqrt(3.0 / double(shape[shape.size() - 2])));
    }
    std::vector<float> data(static_cast<size_t>(elements));
    for (int64_t i = 0; i < elements; ++i)
      data[size_t(i)] = offset + scale * seededUniform(seed, name, uint64_t(i));
    writer.add(name, checkpoint::DType::F32, shape, data.data());
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
