// plan-memory's layout rules that other code bounds arenas with (search's probe).
#pragma once

#include <cstdint>

namespace moeplan {

// Buffer offsets are aligned as CUDA allocations are, so every buffer suits vector loads.
constexpr int64_t kBufferAlignment = 256;
// The bytes a buffer of `bytes` takes in an arena where the next buffer's offset is aligned.
constexpr int64_t alignedBufferBytes(int64_t bytes) {
  return (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
}

} // namespace moeplan
