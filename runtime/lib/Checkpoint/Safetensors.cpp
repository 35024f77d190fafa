#include "moeplan/Checkpoint/Safetensors.h"
#include "moeplan/Support/Files.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// Tensor data is little-endian in the file and copied as is.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "moeplan checkpoints need a little-endian host");

namespace moeplan::checkpoint {
namespace {

using nlohmann::json;

// Element sizes in bits of every safetensors dtype (F4 and F6 pack below a byte).
int dtypeBits(const std::string &dtype) {
  static const std::map<std::string, int> bits = {
      {"BOOL", 8},     {"U8", 8},        {"I8", 8},        {"F8_E5M2", 8}, {"F8_E4M3", 8},
      {"F8_E8M0", 8},  {"I16", 16},      {"U16", 16},      {"F16", 16},    {"BF16", 16},
      {"I32", 32},     {"U32", 32},      {"F32", 32},      {"I64", 64},    {"U64", 64},
      {"F64", 64},     {"C64", 64},      {"F4", 4},        {"F6_E2M3", 6}, {"F6_E3M2", 6}};
  auto it = bits.find(dtype);
  return it == bits.end() ? 0 : it->second;
}

// A string as JSON spells it, for messages (bytes that are not UTF-8 become U+FFFD).
std::string jsonQuoted(const std::string &text) {
  return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string offsetsText(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// The product of dims, or false when it does not fit in int64 (a zero dim makes it zero
// however large the others are).
bool elementCount(const std::vector<int64_t> &dims, int64_t &count) {
  count = 1;
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) {
    count = 0;
    return true;
  }
  for (int64_t d : dims)
    if (__builtin_mul_overflow(count, d, &count)) return false;
  return true;
}

std::string systemError() { return std::strerror(errno); }

uint64_t readLittleEndian64(const unsigned char *bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = value << 8 | bytes[i];
  return value;
}

void writeAll(int fd, const char *data, size_t size, const std::string &path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw CheckpointError(path + ": cannot write: " + systemError());
    data += n, size -= size_t(n);
  }
}

// "an array", "a number", "null", ...: what a JSON value is, for messages.
std::string kindOf(const json &value) {
  std::string type = value.type_name();
  if (value.is_null()) return type;
  return (type[0] == 'a' || type[0] == 'o' ? "an " : "a ") + type;
}

// The parts of one header entry, each checked with the JSON place it came from.
class EntryParser {
public:
  EntryParser(const std::string &path, const std::string &name, const json &entry)
      : path_(path), name_(name), place_("header[" + jsonQuoted(name) + "]"), entry_(entry) {}

  [[noreturn]] void fail(const std::string &what) const {
    throw CheckpointError(path_ + ": " + what);
  }

  TensorInfo parse(uint64_t dataBytes) const {
    if (!entry_.is_object())
      fail(place_ + " is " + kindOf(entry_) + ", not an object");
    TensorInfo t;
    t.name = name_;
    const json &dtype = field("dtype");
    if (!dtype.is_string())
      fail(place_ + ".dtype is " + kindOf(dtype) + ", not a string");
    t.dtype = dtype.get<std::string>();
    int bits = dtypeBits(t.dtype);
    if (bits == 0) fail(place_ + ".dtype " + jsonQuoted(t.dtype) + " is not a safetensors dtype");

    const json &shape = field("shape");
    if (!shape.is_array()) fail(place_ + ".shape is " + kindOf(shape) + ", not an array");
    for (size_t i = 0; i < shape.size(); ++i) {
      std::string dimPlace = place_ + ".shape[" + std::to_string(i) + "]";
      t.shape.push_back(nonNegative(shape[i], dimPlace, INT64_MAX));
    }
    int64_t elements = 0;
    uint64_t bitsNeeded = 0;
    if (!elementCount(t.shape, elements) ||
        __builtin_mul_overflow(uint64_t(elements), uint64_t(bits), &bitsNeeded))
      fail(place_ + ".shape: " + shapeText(t.shape) + " has more elements than a file can hold");

    const json &offsets = field("data_offsets");
    if (!offsets.is_array())
      fail(place_ + ".data_offsets is " + kindOf(offsets) + ", not an array [begin, end]");
    if (offsets.size() != 2)
      fail(place_ + ".data_offsets has " + std::to_string(offsets.size()) +
           " entries, not [begin, end]");
    t.begin = nonNegative(offsets[0], place_ + ".data_offsets[0]", UINT64_MAX);
    t.end = nonNegative(offsets[1], place_ + ".data_offsets[1]", UINT64_MAX);
    std::string offsetsPlace = place_ + ".data_offsets: " + offsetsText(t.begin, t.end);
    if (t.end < t.begin) fail(offsetsPlace + " ends before it begins");
    if (t.end > dataBytes)
      fail(offsetsPlace + " runs past the data section (" + std::to_string(dataBytes) +
           " bytes)");
    uint64_t held = t.end - t.begin;
    if (bitsNeeded % 8 != 0 || bitsNeeded / 8 != held) {
      std::string needed = bitsNeeded % 8 == 0 ? std::to_string(bitsNeeded / 8) + " bytes"
                                               : std::to_string(bitsNeeded) + " bits";
      fail(offsetsPlace + " holds " + std::to_string(held) + " bytes, but " + t.dtype + " " +
           shapeText(t.shape) + " needs " + needed);
    }
    return t;
  }

private:
  const json &field(const char *key) const {
    auto it = entry_.find(key);
    if (it == entry_.end()) fail(place_ + "." + key + " is missing");
    return *it;
  }

  uint64_t nonNegative(const json &value, const std::string &place, uint64_t max) const {
    if (value.is_number_unsigned()) {
      uint64_t v = value.get<uint64_t>();
      if (v > max) fail(place + " is " + std::to_string(v) + ", too large");
      return v;
    }
    if (value.is_number_integer())  // signed only when negative
      fail(place + " is " + std::to_string(value.get<int64_t>()) + ", negative");
    fail(place + " is " + kindOf(value) + ", not an integer");
  }

  const std::string &path_, &name_;
  std::string place_;
  const json &entry_;
};

} // namespace

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32: return "F32";
  case DType::I32: return "I32";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  }
  return "?";
}

size_t dtypeBytes(DType dtype) { return dtype == DType::F16 || dtype == DType::BF16 ? 2 : 4; }

std::optional<DType> parseDType(const std::string &name) {
  for (DType d : {DType::F32, DType::I32, DType::F16, DType::BF16})
    if (name == dtypeName(d)) return d;
  return std::nullopt;
}

std::string shapeText(const std::vector<int64_t> &dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

int64_t TensorInfo::elements() const {
  int64_t count = 0;
  elementCount(shape, count);  // validated when the header was read
  return count;
}

// ---- SafetensorsReader -------------------------------------------------------------------

SafetensorsReader::SafetensorsReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

SafetensorsReader::SafetensorsReader(SafetensorsReader &&other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)),
      dataStart_(other.dataStart_), tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsReader &SafetensorsReader::operator=(SafetensorsReader &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    dataStart_ = other.dataStart_;
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsReader::~SafetensorsReader() {
  if (fd_ >= 0) ::close(fd_);
}

SafetensorsReader SafetensorsReader::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw CheckpointError(path + ": cannot open: " + systemError());
  SafetensorsReader reader(fd, path);
  reader.readHeader();
  return reader;
}

SafetensorsReader SafetensorsReader::openBytes(std::string_view bytes,
                                               const std::string &displayName) {
  int fd = ::memfd_create("moeplan-checkpoint", MFD_CLOEXEC);
  if (fd < 0)
    throw CheckpointError(displayName + ": cannot create an in-memory file: " + systemError());
  SafetensorsReader reader(fd, displayName);
  writeAll(fd, bytes.data(), bytes.size(), displayName);
  reader.readHeader();
  return reader;
}

void SafetensorsReader::preadExactly(void *dst, size_t bytes, uint64_t offset) const {
  char *out = static_cast<char *>(dst);
  while (bytes > 0) {
    ssize_t n = ::pread(fd_, out, bytes, off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw CheckpointError(path_ + ": cannot read " + std::to_string(bytes) + " bytes at offset " +
                            std::to_string(offset) + ": " + systemError());
    if (n == 0)
      throw CheckpointError(path_ + ": the file ends at offset " + std::to_string(offset) +
                            ", before the data its header describes (did it change?)");
    out += n, bytes -= size_t(n), offset += uint64_t(n);
  }
}

void SafetensorsReader::readHeader() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) throw CheckpointError(path_ + ": cannot stat: " + systemError());
  if (!S_ISREG(st.st_mode)) throw CheckpointError(path_ + ": not a regular file");
  uint64_t fileBytes = uint64_t(st.st_size);
  if (fileBytes < 8)
    throw CheckpointError(path_ + ": the file is " + std::to_string(fileBytes) +
                          " bytes, too short for the 8-byte header length");
  unsigned char lengthBytes[8];
  preadExactly(lengthBytes, 8, 0);
  uint64_t headerBytes = readLittleEndian64(lengthBytes);
  if (headerBytes > kMaxHeaderBytes)
    throw CheckpointError(path_ + ": header length " + std::to_string(headerBytes) +
                          " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (headerBytes > fileBytes - 8)
    throw CheckpointError(path_ + ": header length " + std::to_string(headerBytes) +
                          " runs past the end of the file (" + std::to_string(fileBytes - 8) +
                          " bytes follow the length)");
  std::string text(headerBytes, '\0');
  preadExactly(text.data(), text.size(), 8);
  dataStart_ = 8 + headerBytes;

  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception &e) {  // a syntax error, or a number too large for 64 bits
    // "[json.exception.parse_error.101] parse error at ...; last read: '...'", where the
    // token last read may be as long as the header: keep the start.
    constexpr size_t kShownChars = 300;
    std::string what = e.what();
    size_t tagEnd = what.find("] ");
    if (tagEnd != std::string::npos) what.erase(0, tagEnd + 2);
    if (what.size() > kShownChars) what = what.substr(0, kShownChars) + "...";
    throw CheckpointError(path_ + ": header is not valid JSON: " + what);
  }
  if (!header.is_object())
    throw CheckpointError(path_ + ": header is " + kindOf(header) + ", not a JSON object");

  const uint64_t dataBytes = fileBytes - dataStart_;
  for (const auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        throw CheckpointError(path_ + ": header[\"__metadata__\"] is " + kindOf(entry) +
                              ", not an object of strings");
      for (const auto &[key, value] : entry.items()) {
        if (!value.is_string())
          throw CheckpointError(path_ + ": header[\"__metadata__\"][" + jsonQuoted(key) + "] is " +
                                kindOf(value) + ", not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    tensors_[name] = EntryParser(path_, name, entry).parse(dataBytes);
  }

  // Tensors may leave gaps between them but never share bytes (empty ones hold none).
  std::vector<const TensorInfo *> byOffset;
  for (const auto &[name, t] : tensors_)
    if (t.end > t.begin) byOffset.push_back(&t);
  std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo *x, const TensorInfo *y) {
    return std::tie(x->begin, x->end, x->name) < std::tie(y->begin, y->end, y->name);
  });
  for (size_t i = 1; i < byOffset.size(); ++i) {
    const TensorInfo &prev = *byOffset[i - 1], &next = *byOffset[i];
    if (next.begin < prev.end)
      throw CheckpointError(path_ + ": header[" + jsonQuoted(next.name) + "].data_offsets: " +
                            offsetsText(next.begin, next.end) + " overlaps header[" +
                            jsonQuoted(prev.name) + "].data_offsets: " +
                            offsetsText(prev.begin, prev.end));
  }
}

const TensorInfo *SafetensorsReader::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsReader::names() const {
  std::vector<std::string> names;
  for (const auto &[name, t] : tensors_) names.push_back(name);
  return names;
}

void SafetensorsReader::readBlock(const std::string &name, DType dtype,
                                  const std::vector<int64_t> &expectShape,
                                  const std::vector<int64_t> &begin,
                                  const std::vector<int64_t> &count, void *dst) const {
  const TensorInfo *t = find(name);
  std::string tensor = "tensor " + jsonQuoted(name);
  if (!t) throw CheckpointError(path_ + ": the checkpoint has no " + tensor);
  if (t->dtype != dtypeName(dtype))
    throw CheckpointError(path_ + ": " + tensor + " has dtype " + t->dtype +
                          " in the checkpoint, the plan expects " + dtypeName(dtype));
  if (t->shape != expectShape)
    throw CheckpointError(path_ + ": " + tensor + " has shape " + shapeText(t->shape) +
                          " in the checkpoint, the plan expects " + shapeText(expectShape));
  const size_t elementBytes = dtypeBytes(dtype);
  std::string blockText = "begin " + shapeText(begin) + " count " + shapeText(count);
  if (begin.size() != t->shape.size() || count.size() != t->shape.size())
    throw CheckpointError(path_ + ": " + tensor + " has rank " + std::to_string(t->shape.size()) +
                          ", the block " + blockText + " does not");
  int64_t blockElements = 0;
  bool fits =
      elementCount(count, blockElements) && uint64_t(blockElements) <= SIZE_MAX / elementBytes;
  for (size_t d = 0; d < count.size(); ++d) {
    int64_t blockEnd = 0;
    fits = fits && begin[d] >= 0 && count[d] >= 0 &&
           !__builtin_add_overflow(begin[d], count[d], &blockEnd);
  }
  if (!fits)
    throw CheckpointError(path_ + ": " + tensor + ": the block " + blockText +
                          " has a negative or overflowing entry");
  char *out = static_cast<char *>(dst);
  if (blockElements == 0) return;
  for (size_t d = 0; d < count.size(); ++d)
    if (begin[d] >= t->shape[d]) {  // the whole block is padding
      std::memset(out, 0, size_t(blockElements) * elementBytes);
      return;
    }

  // A leading dim of 1 gives scalars a row; then the innermost dims the block covers whole
  // merge into the dim before them, since their elements are contiguous in file and block.
  // (Every begin is inside the extent, so no merged index overflows.)
  std::vector<int64_t> shape{1}, start{0}, extent{1};
  shape.insert(shape.end(), t->shape.begin(), t->shape.end());
  start.insert(start.end(), begin.begin(), begin.end());
  extent.insert(extent.end(), count.begin(), count.end());
  while (shape.size() > 1 && start.back() == 0 && extent.back() == shape.back()) {
    int64_t inner = shape.back();
    shape.pop_back(), start.pop_back(), extent.pop_back();
    shape.back() *= inner, start.back() *= inner, extent.back() *= inner;
  }

  const size_t rank = shape.size();
  const int64_t rowLength = extent.back();
  const int64_t inExtent = std::min(rowLength, shape.back() - start.back());
  const uint64_t tensorStart = dataStart_ + t->begin;
  std::vector<int64_t> row(rank - 1, 0);  // the index of the current row within the block
  for (int64_t written = 0; written < blockElements; written += rowLength) {
    char *rowOut = out + size_t(written) * elementBytes;
    bool inside = true;
    int64_t offset = 0;  // in elements, of the row's first element in the tensor
    for (size_t d = 0; d + 1 < rank && inside; ++d) {
      int64_t i = start[d] + row[d];
      inside = i < shape[d];
      if (inside) offset = offset * shape[d] + i;
    }
    int64_t copied = 0;
    if (inside) {
      offset = offset * shape.back() + start.back();
      copied = inExtent;
      preadExactly(rowOut, size_t(copied) * elementBytes,
                   tensorStart + uint64_t(offset) * elementBytes);
    }
    std::memset(rowOut + size_t(copied) * elementBytes, 0,
                size_t(rowLength - copied) * elementBytes);
    for (size_t d = rank - 1; d-- > 0;) {
      if (++row[d] < extent[d]) break;
      row[d] = 0;
    }
  }
}

DType SafetensorsReader::dtypeOf(const std::string &name) const {
  const TensorInfo *t = find(name);
  if (!t) throw CheckpointError(path_ + ": the checkpoint has no tensor " + jsonQuoted(name));
  std::optional<DType> dtype = parseDType(t->dtype);
  if (!dtype)
    throw CheckpointError(path_ + ": tensor " + jsonQuoted(name) + " has dtype " + t->dtype +
                          "; moeplan reads F32, F16, BF16 and I32");
  return *dtype;
}

void SafetensorsReader::readAll(const std::string &name, DType dtype,
                                const std::vector<int64_t> &expectShape, void *dst) const {
  readBlock(name, dtype, expectShape, std::vector<int64_t>(expectShape.size(), 0), expectShape,
            dst);
}

// ---- SafetensorsWriter -------------------------------------------------------------------

namespace {

void requireUtf8(const std::string &text, const std::string &what) {
  try {
    (void)json(text).dump();
  } catch (const json::type_error &) {
    throw CheckpointError(what + " " + jsonQuoted(text) + " is not valid UTF-8");
  }
}

} // namespace

void SafetensorsWriter::add(const std::string &name, DType dtype, std::vector<int64_t> shape,
                            const void *data) {
  requireUtf8(name, "tensor name");
  if (name == "__metadata__")
    throw CheckpointError("tensor name \"__metadata__\" is reserved for the file's metadata");
  if (tensors_.count(name))
    throw CheckpointError("tensor " + jsonQuoted(name) + " is added twice");
  int64_t elements = 0;
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; }) ||
      !elementCount(shape, elements) || uint64_t(elements) > SIZE_MAX / dtypeBytes(dtype))
    throw CheckpointError("tensor " + jsonQuoted(name) + " has shape " + shapeText(shape) +
                          ": a negative dim or too many elements");
  size_t bytes = size_t(elements) * dtypeBytes(dtype);
  tensors_[name] = Tensor{dtype, std::move(shape),
                          bytes ? std::string(static_cast<const char *>(data), bytes) : ""};
}

void SafetensorsWriter::setMetadata(const std::string &key, const std::string &value) {
  requireUtf8(key, "metadata key");
  requireUtf8(value, "metadata value");
  metadata_[key] = value;
}

std::string SafetensorsWriter::serialize() const {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto &[name, t] : tensors_) {
    header[name] = {{"dtype", dtypeName(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');

  std::string bytes;
  bytes.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) bytes.push_back(char(uint64_t(text.size()) >> (8 * i) & 0xff));
  bytes += text;
  for (const auto &[name, t] : tensors_) bytes += t.bytes;
  return bytes;
}

void SafetensorsWriter::write(const std::string &path) const {
  try {
    files::writeAtomically(path, serialize());
  } catch (const files::WriteError &e) {
    throw CheckpointError(e.what());
  }
}

} // namespace moeplan::checkpoint
