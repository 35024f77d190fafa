// Integer arithmetic that refuses to wrap: size products of absurd descriptions must become
// findings, not silently wrong figures.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace moeplan {

struct SizeOverflow : std::overflow_error {
  explicit SizeOverflow(const std::string &what) : std::overflow_error(what) {}
};

inline int64_t checkedMul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw SizeOverflow("product overflows 64 bits");
  return r;
}

inline int64_t checkedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw SizeOverflow("sum overflows 64 bits");
  return r;
}

template <typename... Ts> int64_t checkedMul(int64_t a, int64_t b, Ts... rest) {
  return checkedMul(checkedMul(a, b), rest...);
}

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace moeplan
