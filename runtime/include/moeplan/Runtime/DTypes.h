// Element types of plan buffers on the host: the file dtype that stores each, and the
// conversions between F32, F16 and BF16 that loading weights and writing outputs need.
// Sizes come from planfile::dtypeBytes (PlanFile.h), the one place they are defined.
#pragma once

#include "moeplan/Checkpoint/Safetensors.h"
#include "moeplan/schema/plan.pb.h"

#include <cstdint>

namespace moeplan::runtime {

// The plan dtype of a checkpoint dtype, and back (F8 has no checkpoint dtype: throws).
plan::DType planDType(checkpoint::DType dtype);
checkpoint::DType fileDType(plan::DType dtype);
bool isFloat(plan::DType dtype);  // F32, F16, BF16

// dst[i] = src[i] for count elements, from one float dtype to another (the same dtype
// copies). Rounds to nearest even; throws std::invalid_argument for a non-float dtype.
void convert(plan::DType from, const void *src, plan::DType to, void *dst, uint64_t count);
inline void convertToF32(plan::DType from, const void *src, float *dst, uint64_t count) {
  convert(from, src, plan::F32, dst, count);
}

} // namespace moeplan::runtime
