// The 16-bit float conversions (Checkpoint/Float16.h) and plan dtype conversions
// (Runtime/DTypes.h): exhaustive round trips over every 16-bit pattern, the rounding cases
// by hand, and, where the CUDA toolkit is present, against its host implementations of
// __float2half_rn / __float2bfloat16_rn on millions of values (an implementation nobody here
// wrote; the CUDA backend converts with those).
#include "moeplan/Checkpoint/Float16.h"
#include "moeplan/Runtime/DTypes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#if MOEPLAN_HAVE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

using namespace moeplan;
using namespace moeplan::checkpoint;

namespace {

bool isNanF16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool isNanBf16(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

TEST(Float16, EveryF16PatternRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16ToFloat(uint16_t(h));
    if (isNanF16(uint16_t(h))) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_TRUE(isNanF16(floatToF16(f))) << h;
      continue;
    }
    EXPECT_EQ(floatToF16(f), h) << "pattern " << h << " value " << f;
  }
}

TEST(Float16, EveryBf16PatternRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16ToFloat(uint16_t(h));
    if (isNanBf16(uint16_t(h))) {
      EXPECT_TRUE(std::isnan(f));
      EXPECT_TRUE(isNanBf16(floatToBf16(f)));
      continue;
    }
    EXPECT_EQ(floatToBf16(f), h) << "pattern " << h;
  }
}

TEST(Float16, RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and the next F16 (1 + 2^-10): ties go to even (1).
  EXPECT_EQ(floatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  EXPECT_EQ(floatToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(floatToF16(65504.0f), 0x7bff);           // the largest F16
  EXPECT_EQ(floatToF16(65520.0f), 0x7c00);           // halfway to 2^16: rounds to inf
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -25)), 0x0000);  // half of it: ties to even, 0
  EXPECT_EQ(floatToF16(-0.0f), 0x8000);
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie: even
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up past max
}

#if MOEPLAN_HAVE_CUDA
TEST(Float16, MatchesCudaHostConversions) {
  std::mt19937 gen(1);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 4'000'000; ++i) {
    const float f = bitsFloat(bits(gen));
    if (std::isnan(f)) continue;
    __half h = __float2half_rn(f);
    __nv_bfloat16 b = __float2bfloat16_rn(f);
    uint16_t hb, bb;
    std::memcpy(&hb, &h, 2);
    std::memcpy(&bb, &b, 2);
    ASSERT_EQ(floatToF16(f), hb) << "value " << f;
    ASSERT_EQ(floatToBf16(f), bb) << "value " << f;
  }
}
#endif

TEST(DTypes, ConvertsBetweenPlanTypes) {
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 1e-3f, 3.14159f, 60000.0f};
  std::vector<uint16_t> half(values.size()), bf(values.size());
  runtime::convert(plan::F32, values.data(), plan::F16, half.data(), values.size());
  runtime::convert(plan::F32, values.data(), plan::BF16, bf.data(), values.size());
  std::vector<float> back(values.size());
  runtime::convertToF32(plan::F16, half.data(), back.data(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(half[i], floatToF16(values[i]));
    EXPECT_EQ(back[i], f16ToFloat(half[i]));
    EXPECT_NEAR(back[i], values[i], std::abs(values[i]) * std::ldexp(1.0, -11));
  }
  // F16 -> BF16 goes through F32 exactly (every F16 is an F32).
  std::vector<uint16_t> viaF32(values.size());
  runtime::convert(plan::F16, half.data(), plan::BF16, viaF32.data(), values.size());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(viaF32[i], floatToBf16(f16ToFloat(half[i])));
  EXPECT_THROW(runtime::convert(plan::I32, values.data(), plan::F32, back.data(), 1), std::invalid_argument);
}

} // namespace
