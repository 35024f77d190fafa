// Expert capacity: slots per expert for the tokens of one dispatch (one group).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>

namespace moeplan {

// Megatron-Core (moe_utils.get_capacity): ceil(tokens x top_k / experts x capacity_factor),
// over the tokens one dispatch handles. Without a capacity factor (dropless) an expert must
// take every token of the group, since a token chooses an expert at most once.
inline int64_t expertCapacity(int64_t tokens, int64_t topK, int64_t experts,
                              std::optional<double> capacityFactor) {
  if (!capacityFactor) return tokens;
  double c = std::ceil(double(tokens) * double(topK) / double(experts) * *capacityFactor);
  return static_cast<int64_t>(c);
}

} // namespace moeplan
