#include "moeplan/Runtime/DTypes.h"

#include "moeplan/Checkpoint/Float16.h"

#include <cstring>
#include <stdexcept>

namespace moeplan::runtime {

plan::DType planDType(checkpoint::DType dtype) {
  switch (dtype) {
  case checkpoint::DType::F32: return plan::F32;
  case checkpoint::DType::I32: return plan::I32;
  case checkpoint::DType::F16: return plan::F16;
  case checkpoint::DType::BF16: return plan::BF16;
  }
  return plan::DTYPE_UNSPECIFIED;
}

checkpoint::DType fileDType(plan::DType dtype) {
  switch (dtype) {
  case plan::F32: return checkpoint::DType::F32;
  case plan::I32: return checkpoint::DType::I32;
  case plan::F16: return checkpoint::DType::F16;
  case plan::BF16: return checkpoint::DType::BF16;
  default:
    throw std::invalid_argument("dtype " + plan::DType_Name(dtype) + " has no checkpoint dtype");
  }
}

bool isFloat(plan::DType dtype) {
  return dtype == plan::F32 || dtype == plan::F16 || dtype == plan::BF16;
}

namespace {

float loadFloat(plan::DType dtype, const void *src, uint64_t i) {
  switch (dtype) {
  case plan::F32: return static_cast<const float *>(src)[i];
  case plan::F16: return checkpoint::f16ToFloat(static_cast<const uint16_t *>(src)[i]);
  default: return checkpoint::bf16ToFloat(static_cast<const uint16_t *>(src)[i]);
  }
}

void storeFloat(plan::DType dtype, void *dst, uint64_t i, float v) {
  switch (dtype) {
  case plan::F32: static_cast<float *>(dst)[i] = v; return;
  case plan::F16: static_cast<uint16_t *>(dst)[i] = checkpoint::floatToF16(v); return;
  default: static_cast<uint16_t *>(dst)[i] = checkpoint::floatToBf16(v); return;
  }
}

} // namespace

void convert(plan::DType from, const void *src, plan::DType to, void *dst, uint64_t count) {
  if (!isFloat(from) || !isFloat(to))
    throw std::invalid_argument("cannot convert " + plan::DType_Name(from) + " to " +
                                plan::DType_Name(to));
  if (from == to) {
    std::memmove(dst, src, size_t(count) * (from == plan::F32 ? 4 : 2));
    return;
  }
  for (uint64_t i = 0; i < count; ++i) storeFloat(to, dst, i, loadFloat(from, src, i));
}

} // namespace moeplan::runtime
