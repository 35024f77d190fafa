// Writes the checkpoint fuzzer's seed corpus into a directory: small safetensors files that
// open (F32 and I32 tensors of rank 0 to 3, an empty one, metadata, dtypes moeplan does not
// read) and the ways files go wrong (truncated, a header length past the end, a header that
// is not JSON, wrong byte counts, overlapping tensors, bad metadata). The valid files double
// as moeplan-compare's lit inputs (test/tools/checkpoint-compare.test): a reference, a copy
// within tolerance, one with differing values, one with NaN and infinity, and one whose
// names, dtypes and shapes differ. Rerun it when they change:
//   checkpoint-corpus-writer test/fuzz/checkpoint-corpus
// (regression-*.safetensors beside them are inputs the fuzzer once failed on.)
#include "moeplan/Checkpoint/Safetensors.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace {

using moeplan::checkpoint::DType;
using moeplan::checkpoint::SafetensorsWriter;

bool write(const std::string &dir, const std::string &name, const std::string &bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  if (out.write(bytes.data(), std::streamsize(bytes.size()))) return true;
  std::fprintf(stderr, "checkpoint-corpus-writer: cannot write %s/%s\n", dir.c_str(), name.c_str());
  return false;
}

// A file as written by hand: the 8-byte little-endian length, the header as given, the data.
std::string rawFile(const std::string &header, const std::string &data, uint64_t length) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(char(length >> (8 * i) & 0xff));
  return bytes + header + data;
}
std::string rawFile(const std::string &header, const std::string &data) {
  return rawFile(header, data, header.size());
}

// The reference's tensors, with the changes each variant makes.
struct Tensors {
  std::vector<float> wq{0.5f, -1.25f, 2.0f, 0.0f, 3.5f, -0.75f, 1.0f, 4.0f};  // [2, 4]
  std::vector<float> w1 = std::vector<float>(12);                              // [3, 2, 2]
  std::vector<int32_t> tokens{5, 17, 2, 9, 0, 31};                             // [2, 3]
  float scale = 0.125f;                                                        // []

  Tensors() {
    for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.25f * float(i) - 1.0f;
  }
  SafetensorsWriter writer() const {
    SafetensorsWriter w;
    w.add("layers.0.wq", DType::F32, {2, 4}, wq.data());
    w.add("layers.0.w1", DType::F32, {3, 2, 2}, w1.data());
    w.add("tokens", DType::I32, {2, 3}, tokens.data());
    w.add("scale", DType::F32, {}, &scale);
    w.add("empty", DType::F32, {0, 4}, nullptr);
    w.setMetadata("moeplan.plan", "corpus");
    return w;
  }
};

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: checkpoint-corpus-writer DIR\n");
    return 2;
  }
  const std::string dir = argv[1];

  const Tensors reference;
  const std::string referenceBytes = reference.writer().serialize();

  Tensors close = reference;  // within the default atol 1e-5 + rtol 1e-4 x max|B| 4
  close.wq[3] += 2e-4f, close.w1[11] -= 1e-4f;

  Tensors far = reference;
  far.wq[6] += 0.5f, far.w1[5] -= 0.01f, far.tokens[4] = 1, far.tokens[5] = 30;

  Tensors nonFinite = reference;
  nonFinite.wq[1] = std::numeric_limits<float>::quiet_NaN();
  nonFinite.w1[2] = std::numeric_limits<float>::infinity();

  // Renames, drops and retypes: "tokens" missing, "extra" added, "layers.0.wq" [4, 2],
  // "scale" I32.
  SafetensorsWriter reshaped;
  reshaped.add("layers.0.wq", DType::F32, {4, 2}, reference.wq.data());
  reshaped.add("layers.0.w1", DType::F32, {3, 2, 2}, reference.w1.data());
  const int32_t scaleAsInt = 1;
  reshaped.add("scale", DType::I32, {}, &scaleAsInt);
  reshaped.add("extra", DType::F32, {2}, reference.wq.data());
  reshaped.add("empty", DType::F32, {0, 4}, nullptr);

  // 16-bit floats (read as stored), a dtype moeplan only lists (U8), and an F32; no padding, as other
  // writers leave it.
  const std::string otherDtypes = rawFile(
      R"({"half":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("brain":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]},)"
      R"("bytes":{"dtype":"U8","shape":[3],"data_offsets":[8,11]},)"
      R"("w":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
      std::string("\x00\x3c\x00\xc0\x80\x3f\x00\x40\x01\x02\x03\x00\x00\x00\x80\x3f", 16));

  const std::string f32x2 = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  bool ok =
      write(dir, "valid-reference.safetensors", referenceBytes) &&
      write(dir, "valid-close.safetensors", close.writer().serialize()) &&
      write(dir, "valid-far.safetensors", far.writer().serialize()) &&
      write(dir, "valid-nonfinite.safetensors", nonFinite.writer().serialize()) &&
      write(dir, "valid-reshaped.safetensors", reshaped.serialize()) &&
      write(dir, "valid-other-dtypes.safetensors", otherDtypes) &&
      write(dir, "corrupt-truncated.safetensors",
            referenceBytes.substr(0, referenceBytes.size() - 5)) &&
      write(dir, "corrupt-short.safetensors", referenceBytes.substr(0, 5)) &&
      write(dir, "corrupt-header-length.safetensors",
            rawFile(f32x2, std::string(8, '\0'), 1000)) &&
      write(dir, "corrupt-not-json.safetensors",
            rawFile(R"({"w":{"dtype":"F32",)", std::string(8, '\0'))) &&
      write(dir, "corrupt-byte-count.safetensors",
            rawFile(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,12]}})",
                    std::string(12, '\0'))) &&
      write(dir, "corrupt-overlap.safetensors",
            rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}})",
                    std::string(12, '\0'))) &&
      write(dir, "corrupt-metadata.safetensors",
            rawFile(R"({"__metadata__":{"step":100},)" + f32x2.substr(1), std::string(8, '\0')));
  return ok ? 0 : 1;
}
