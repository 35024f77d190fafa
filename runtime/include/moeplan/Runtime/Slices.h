// Where a rank's buffer sits in a named full tensor (plan.proto, TensorSlice): the block of
// the full tensor it holds, and the copies between that block and the buffer. Used to read
// weight shards and inputs from files and to assemble outputs from every rank.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moeplan::runtime {

// A rank's position and group size on each mesh axis ("tp", "dp", ...).
struct AxisCoordinate {
  uint32_t position = 0, size = 1;
};
using AxisCoordinates = std::map<std::string, AxisCoordinate>;
AxisCoordinates axisCoordinates(const plan::Plan &plan, uint32_t rank);

// The block [begin, begin + count) of the full tensor, per dim. `count` is the piece size,
// which may run past the tensor's extent (ceil-sized pieces; the excess is padding).
// `tokenMajor`: the buffer holds the block with its first two dims swapped (token tensors,
// whose micro-batch tokens are position-major: [positions, sequences, ...]).
struct Block {
  std::vector<int64_t> begin, count;
  bool tokenMajor = false;
  int64_t elements() const;
};
// Throws std::invalid_argument when the slice names an axis the rank has no coordinate on,
// or a dim outside the full shape.
Block blockOf(const plan::TensorSlice &slice, const AxisCoordinates &axes,
              uint32_t microBatches);

// Calls fn(i, flat) for each element i of a block [begin, begin + count) of a tensor of shape
// `full` (i counts row-major in `count` order), where flat is the element's row-major index
// in the full tensor, or -1 for padding past the full extent.
template <typename Fn>
void forEachBlockElement(const std::vector<int64_t> &begin, const std::vector<int64_t> &count,
                         const std::vector<int64_t> &full, Fn fn) {
  const size_t dims = full.size();
  int64_t elements = 1;
  for (int64_t c : count) elements *= c;
  std::vector<int64_t> index(begin);  // the current element's index in the full tensor
  for (int64_t i = 0; i < elements; ++i) {
    int64_t flat = 0;
    bool inside = true;
    for (size_t d = 0; d < dims; ++d) {
      inside = inside && index[d] < full[d];
      flat = flat * full[d] + index[d];
    }
    fn(i, inside ? flat : int64_t(-1));
    for (size_t d = dims; d-- > 0;) {
      if (++index[d] < begin[d] + count[d]) break;
      index[d] = begin[d];
    }
  }
}

// Copies between a block laid out row-major in `count` order (as files hold it) and the
// buffer layout (first two dims swapped when tokenMajor). elementBytes: 4 for F32 and I32.
void blockToBuffer(const Block &block, const void *blockData, void *buffer, size_t elementBytes);
void bufferToBlock(const Block &block, const void *buffer, void *blockData, size_t elementBytes);

} // namespace moeplan::runtime
