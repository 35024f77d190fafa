// The 16-bit float formats of checkpoints and plans, as bits: IEEE binary16 (F16) and
// bfloat16 (BF16, the top half of an F32). Float to 16 bits rounds to nearest, ties to even
// (as PyTorch and CUDA's __float2half_rn / __float2bfloat16_rn); NaN stays NaN.
#pragma once

#include <cstdint>
#include <cstring>

namespace moeplan::checkpoint {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16ToFloat(uint16_t h) { return bitsFloat(uint32_t(h) << 16); }

inline uint16_t floatToBf16(float f) {
  const uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float f16ToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bitsFloat(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, exact in float.
    const float magnitude = float(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  return bitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t floatToF16(float f) {
  const uint32_t u = floatBits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (magnitude >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds past 65504: inf
  if (magnitude < 0x38800000u) {
    // Below the smallest normal (2^-14): a subnormal multiple of 2^-24. Adding 0.5 shifts
    // the value so that float's own rounding (ties to even) lands on that multiple.
    const float shifted = bitsFloat(magnitude) + 0.5f;
    return uint16_t(sign | uint16_t(floatBits(shifted) - floatBits(0.5f)));
  }
  // Normal: drop 13 mantissa bits with round to nearest even; a carry moves the exponent.
  const uint32_t rebiased = magnitude - (uint32_t(112) << 23);
  return uint16_t(sign | uint16_t((rebiased + 0xfffu + ((rebiased >> 13) & 1u)) >> 13));
}

} // namespace moeplan::checkpoint
