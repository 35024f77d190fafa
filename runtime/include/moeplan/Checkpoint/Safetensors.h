// Checkpoints in the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name to its dtype, shape
// and byte range in the data section that follows, and an optional "__metadata__" object of
// strings. The runtime reads weight shards with it (each rank only the bytes of its block)
// and writes outputs; moeplan-compare compares two files (Compare.h). Depends on
// nlohmann_json only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace moeplan::checkpoint {

// The element types moeplan reads and writes (Float16.h converts the 16-bit ones). Files may
// hold others (F64, F8_E4M3, ...): they are validated and listed, but readBlock refuses them.
enum class DType { F32, I32, F16, BF16 };
const char *dtypeName(DType dtype);  // as the file spells it: "F32", "I32", "F16", "BF16"
size_t dtypeBytes(DType dtype);      // 4, 4, 2, 2
// The DType a file's dtype string names, if moeplan reads it.
std::optional<DType> parseDType(const std::string &name);
std::string shapeText(const std::vector<int64_t> &dims);  // "[2, 4]", as messages show shapes

// Largest JSON header accepted, as the reference implementation.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Every failure to open, read or write a checkpoint: "path: what is wrong".
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TensorInfo {
  std::string name;
  std::string dtype;  // as in the file
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
  int64_t elements() const;
};

class SafetensorsReader {
public:
  // Reads and validates the header; tensor data stays on disk until read.
  static SafetensorsReader open(const std::string &path);
  // The same over bytes in memory (an anonymous in-memory file), reported as `displayName`.
  static SafetensorsReader openBytes(std::string_view bytes, const std::string &displayName);

  SafetensorsReader(SafetensorsReader &&other) noexcept;
  SafetensorsReader &operator=(SafetensorsReader &&other) noexcept;
  SafetensorsReader(const SafetensorsReader &) = delete;
  SafetensorsReader &operator=(const SafetensorsReader &) = delete;
  ~SafetensorsReader();

  const std::string &path() const { return path_; }
  const TensorInfo *find(const std::string &name) const;  // null if absent
  std::vector<std::string> names() const;                 // sorted
  const std::map<std::string, std::string> &metadata() const { return metadata_; }

  // Reads the block [begin[d], begin[d] + count[d]) of each dim of tensor `name` into dst,
  // row-major with shape `count`, as the file holds it (dtypeBytes(dtype) per element). Elements past the tensor's extent in any dim (the padding
  // of a dim cut into ceil-sized pieces) are zero. Checks first that the tensor exists, has
  // `dtype` and exactly `expectShape`, and that begin/count have its rank and are
  // non-negative. Reads with pread in contiguous runs (a run spans the innermost dims the
  // block covers whole), so a rank reading its shard touches only its bytes.
  void readBlock(const std::string &name, DType dtype, const std::vector<int64_t> &expectShape,
                 const std::vector<int64_t> &begin, const std::vector<int64_t> &count,
                 void *dst) const;
  // The whole tensor (its elements() values).
  void readAll(const std::string &name, DType dtype, const std::vector<int64_t> &expectShape,
               void *dst) const;
  // The dtype tensor `name` has in the file, when moeplan reads it; throws CheckpointError
  // naming the tensor when it is absent or of another dtype.
  DType dtypeOf(const std::string &name) const;

private:
  SafetensorsReader(int fd, std::string path);
  void readHeader();
  void preadExactly(void *dst, size_t bytes, uint64_t offset) const;

  int fd_ = -1;
  std::string path_;
  uint64_t dataStart_ = 0;  // file offset of the data section
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
public:
  // Copies the data (product(shape) elements). Throws CheckpointError for a duplicate,
  // reserved ("__metadata__") or non-UTF-8 name, a negative dim or an element count that
  // overflows.
  void add(const std::string &name, DType dtype, std::vector<int64_t> shape, const void *data);
  // Throws CheckpointError for a key or value that is not UTF-8 (JSON cannot hold it).
  void setMetadata(const std::string &key, const std::string &value);
  // Deterministic bytes: tensors in name order, the header padded with spaces to a multiple
  // of 8 bytes (so the data section is 8-byte aligned).
  std::string serialize() const;
  // Writes serialize() to path; throws CheckpointError "path: ..." on I/O failure.
  void write(const std::string &path) const;

private:
  struct Tensor {
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

} // namespace moeplan::checkpoint
