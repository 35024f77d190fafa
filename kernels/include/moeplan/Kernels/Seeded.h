// Deterministic random values from (seed, stream name, index): the same in every process, on
// every machine and on the device, so that each rank generates exactly its own block of an
// input or a weight (moeplan-run --random-weights, --input-seed) and `moeplan init-weights`
// needs no state between tensors. The name is hashed once on the host (streamKey); the
// per-element part is MOEPLAN_HOST_DEVICE.
#pragma once

#include "moeplan/Kernels/Elementwise.h"  // MOEPLAN_HOST_DEVICE

#include <cstdint>
#include <string>

namespace moeplan::kernels {

MOEPLAN_HOST_DEVICE inline uint64_t mixBits(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t hashName(const std::string &s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// The per-tensor part of seededUniform: computed once per (seed, name).
inline uint64_t streamKey(uint64_t seed, const std::string &stream) {
  return mixBits(seed ^ hashName(stream));
}

// Uniform in [-1, 1), 24 random bits.
MOEPLAN_HOST_DEVICE inline float seededUniformAt(uint64_t key, uint64_t index) {
  const uint64_t h = mixBits(key ^ mixBits(index));
  return float(double(h >> 40) / double(uint64_t(1) << 24) * 2.0 - 1.0);
}
inline float seededUniform(uint64_t seed, const std::string &stream, uint64_t index) {
  return seededUniformAt(streamKey(seed, stream), index);
}

// Token id of sequence s, position p: uniform in [0, vocab).
inline int32_t seededToken(uint64_t seed, int64_t sequence, int64_t position, int64_t vocab) {
  const uint64_t h = mixBits(mixBits(seed ^ hashName("tokens")) ^ mixBits(uint64_t(sequence)) * 31 ^
                             mixBits(uint64_t(position) + 0x51ed27u));
  return int32_t(h % uint64_t(vocab));
}

} // namespace moeplan::kernels
