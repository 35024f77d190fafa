#include "moeplan/Runtime/Slices.h"

#include <cstring>
#include <stdexcept>

namespace moeplan::runtime {

AxisCoordinates axisCoordinates(const plan::Plan &plan, uint32_t rank) {
  AxisCoordinates axes;
  for (const plan::GroupMembership &m : plan.ranks(int(rank)).groups())
    axes[m.axis()] = {m.index(), uint32_t(plan.groups(int(m.group())).ranks_size())};
  return axes;
}

int64_t Block::elements() const {
  int64_t n = 1;
  for (int64_t c : count) n *= c;
  return n;
}

Block blockOf(const plan::TensorSlice &slice, const AxisCoordinates &axes,
              uint32_t microBatches) {
  Block b;
  const int rank = slice.full_shape_size();
  b.begin.assign(size_t(rank), 0);
  b.count.assign(slice.full_shape().begin(), slice.full_shape().end());
  for (const plan::Split &s : slice.splits()) {
    auto axis = axes.find(s.axis());
    if (axis == axes.end())
      throw std::invalid_argument("slice of \"" + slice.tensor() + "\" splits over axis \"" +
                                  s.axis() + "\", which the rank is not on");
    if (int(s.dim()) >= rank || s.parts() == 0)
      throw std::invalid_argument("slice of \"" + slice.tensor() + "\" splits dim " +
                                  std::to_string(s.dim()) + " into " + std::to_string(s.parts()) +
                                  " parts");
    // A rank at position i of n holds piece i * parts / n (parts < n replicates pieces).
    const int64_t piece = int64_t(axis->second.position) * s.parts() / axis->second.size;
    const int64_t size = (b.count[s.dim()] + s.parts() - 1) / s.parts();
    b.begin[s.dim()] += piece * size;
    b.count[s.dim()] = size;
  }
  if (slice.micro_batch() >= 0) {
    if (rank < 2 || microBatches == 0 || b.count[0] % microBatches != 0)
      throw std::invalid_argument("slice of \"" + slice.tensor() + "\": " +
                                  std::to_string(microBatches) +
                                  " micro-batches do not divide its sequences");
    b.count[0] /= microBatches;
    b.begin[0] += slice.micro_batch() * b.count[0];
    b.tokenMajor = true;
  }
  return b;
}

namespace {
// Copies between [a, b, inner] (block) and [b, a, inner] (buffer).
void swapFirstDims(const Block &block, const char *from, char *to, size_t elementBytes,
                   bool toBuffer) {
  const int64_t a = block.count[0], b = block.count[1];
  const size_t inner = size_t(block.elements() / (a * b)) * elementBytes;
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j) {
      const size_t blockAt = size_t(i * b + j) * inner, bufferAt = size_t(j * a + i) * inner;
      if (toBuffer)
        std::memcpy(to + bufferAt, from + blockAt, inner);
      else
        std::memcpy(to + blockAt, from + bufferAt, inner);
    }
}
} // namespace

void blockToBuffer(const Block &block, const void *blockData, void *buffer, size_t elementBytes) {
  if (!block.tokenMajor)
    std::memcpy(buffer, blockData, size_t(block.elements()) * elementBytes);
  else
    swapFirstDims(block, static_cast<const char *>(blockData), static_cast<char *>(buffer),
                  elementBytes, true);
}

void bufferToBlock(const Block &block, const void *buffer, void *blockData, size_t elementBytes) {
  if (!block.tokenMajor)
    std::memcpy(blockData, buffer, size_t(block.elements()) * elementBytes);
  else
    swapFirstDims(block, static_cast<const char *>(buffer), static_cast<char *>(blockData),
                  elementBytes, false);
}

} // namespace moeplan::runtime
