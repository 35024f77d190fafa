// libFuzzer entry point: any bytes as a safetensors file must open or throw CheckpointError,
// never crash, read out of bounds or allocate more than the bytes justify. A file that opens
// must read every F32, F16, BF16 and I32 tensor whole and as a block running past its extent,
// and written back by SafetensorsWriter must read back the same.
#include "moeplan/Checkpoint/Compare.h"
#include "moeplan/Checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace {

using namespace moeplan::checkpoint;

// Reads `name` whole and as the block from the middle of each dim one past its end (the
// padding of a ceil-sized piece), checking the block against the whole.
std::vector<char> readWholeAndBlock(const SafetensorsReader &reader, const TensorInfo &t,
                                    DType dtype) {
  const size_t elementBytes = dtypeBytes(dtype);
  std::vector<char> whole(size_t(t.elements()) * elementBytes);
  reader.readAll(t.name, dtype, t.shape, whole.data());
  std::vector<int64_t> begin, count;
  int64_t blockElements = 1;
  for (int64_t d : t.shape) {
    begin.push_back(d / 2), count.push_back(d - d / 2 + 1);
    // A block of a file's claimed (zero-element) shape could be any size: cap it.
    if (__builtin_mul_overflow(blockElements, count.back(), &blockElements) ||
        blockElements > int64_t(1) << 16)
      return whole;
  }
  std::vector<char> block(size_t(blockElements) * elementBytes);
  reader.readBlock(t.name, dtype, t.shape, begin, count, block.data());
  std::vector<int64_t> strides(t.shape.size(), 1);  // of the whole tensor, row-major
  for (size_t d = t.shape.size(); d-- > 1;) strides[d - 1] = strides[d] * t.shape[d];
  for (int64_t i = 0; i < blockElements; ++i) {
    int64_t rest = i, wholeIndex = 0;
    bool inside = true;
    for (size_t d = t.shape.size(); d-- > 0;) {
      int64_t index = begin[d] + rest % count[d];
      rest /= count[d];
      inside = inside && index < t.shape[d];
      wholeIndex += index * strides[d];
    }
    static const char zeros[4] = {};
    const char *expected = inside ? &whole[size_t(wholeIndex) * elementBytes] : zeros;
    if (std::memcmp(&block[size_t(i) * elementBytes], expected, elementBytes) != 0) std::abort();
  }
  return whole;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::optional<SafetensorsReader> reader;
  try {
    reader.emplace(SafetensorsReader::openBytes(
        std::string_view(reinterpret_cast<const char *>(data), size), "fuzz"));
  } catch (const CheckpointError &) {
    return 0;
  }
  SafetensorsWriter copy;
  for (const std::string &name : reader->names()) {
    const TensorInfo &t = *reader->find(name);
    const std::optional<DType> dtype = parseDType(t.dtype);
    if (!dtype) continue;
    std::vector<char> whole = readWholeAndBlock(*reader, t, *dtype);
    copy.add(name, *dtype, t.shape, whole.data());
  }
  for (const auto &[key, value] : reader->metadata()) copy.setMetadata(key, value);

  // The copy holds the same bits (NaN payloads included), so it compares exactly equal.
  SafetensorsReader reread = SafetensorsReader::openBytes(copy.serialize(), "fuzz-copy");
  if (reread.metadata() != reader->metadata()) std::abort();
  CompareReport report = compareCheckpoints(reread, *reader, Tolerance{0, 0});
  for (const TensorComparison &c : report.tensors)
    if (c.outcome != TensorComparison::Outcome::Within &&
        c.outcome != TensorComparison::Outcome::OnlyInB &&
        !(c.outcome == TensorComparison::Outcome::NotComparable &&
          (c.dtypeA == "F16" || c.dtypeA == "BF16")))
      std::abort();
  (void)renderCompareText(report);
  (void)compareJson(report).dump();
  return 0;
}
