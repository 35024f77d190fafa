// The safetensors reader and writer (runtime/lib/Checkpoint): round trips, blocks with and
// without padding, every way a header is refused with its message, deterministic bytes,
// truncated files, and compareCheckpoints.
#include "moeplan/Checkpoint/Compare.h"
#include "moeplan/Checkpoint/Safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using namespace moeplan::checkpoint;
namespace fs = std::filesystem;

constexpr const char *kName = "ckpt.safetensors";

// A file as another writer might make it: the 8-byte little-endian length, the header, data.
std::string rawFile(const std::string &header, const std::string &data) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(char(uint64_t(header.size()) >> (8 * i) & 0xff));
  return bytes + header + data;
}

std::string lengthPrefix(uint64_t length) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(char(length >> (8 * i) & 0xff));
  return bytes;
}

// The message opening `bytes` fails with, or "" when it opens.
std::string openError(const std::string &bytes) {
  try {
    SafetensorsReader::openBytes(bytes, kName);
  } catch (const CheckpointError &e) {
    return e.what();
  }
  return "";
}

std::string headerError(const std::string &header, size_t dataBytes = 64) {
  return openError(rawFile(header, std::string(dataBytes, '\0')));
}

std::vector<float> iota(size_t n) {
  std::vector<float> values(n);
  std::iota(values.begin(), values.end(), 0.0f);
  return values;
}

class TempDir {
public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "moeplan-checkpoint-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string &name) const { return (path_ / name).string(); }

private:
  fs::path path_;
};

// The block [begin, begin + count) of a row-major tensor, zero past its extent: what
// readBlock must give, computed element by element.
std::vector<float> naiveBlock(const std::vector<float> &tensor, const std::vector<int64_t> &shape,
                              const std::vector<int64_t> &begin,
                              const std::vector<int64_t> &count) {
  int64_t elements = 1;
  for (int64_t c : count) elements *= c;
  std::vector<float> block(size_t(elements), 0.0f);
  for (int64_t i = 0; i < elements; ++i) {
    int64_t rest = i, flat = 0, stride = 1;
    bool inside = true;
    for (size_t d = shape.size(); d-- > 0;) {
      int64_t index = begin[d] + rest % count[d];
      rest /= count[d];
      inside = inside && index < shape[d];
      flat += index * stride;
      stride *= shape[d];
    }
    if (inside) block[size_t(i)] = tensor[size_t(flat)];
  }
  return block;
}

SafetensorsReader openWriter(const SafetensorsWriter &writer) {
  return SafetensorsReader::openBytes(writer.serialize(), kName);
}

// ---- Round trips ---------------------------------------------------------------------------

TEST(Checkpoint, RoundTripThroughAFile) {
  TempDir dir;
  std::vector<float> wq = iota(8);
  std::vector<int32_t> tokens{3, -1, 7, 2147483647, -2147483647 - 1, 0};
  float scale = 0.5f;
  SafetensorsWriter writer;
  writer.add("layers.0.wq", DType::F32, {2, 4}, wq.data());
  writer.add("tokens", DType::I32, {3, 2}, tokens.data());
  writer.add("scale", DType::F32, {}, &scale);
  writer.add("empty", DType::F32, {0, 3}, nullptr);
  writer.setMetadata("format", "pt");
  writer.write(dir.file("a.safetensors"));

  SafetensorsReader reader = SafetensorsReader::open(dir.file("a.safetensors"));
  EXPECT_EQ(reader.path(), dir.file("a.safetensors"));
  EXPECT_EQ(reader.names(),
            (std::vector<std::string>{"empty", "layers.0.wq", "scale", "tokens"}));
  EXPECT_EQ(reader.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(reader.find("missing"), nullptr);
  const TensorInfo *info = reader.find("layers.0.wq");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->dtype, "F32");
  EXPECT_EQ(info->shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(info->end - info->begin, 32u);
  EXPECT_EQ(info->elements(), 8);
  EXPECT_EQ(reader.find("empty")->elements(), 0);

  std::vector<float> wqRead(8);
  reader.readAll("layers.0.wq", DType::F32, {2, 4}, wqRead.data());
  EXPECT_EQ(wqRead, wq);
  std::vector<int32_t> tokensRead(6);
  reader.readAll("tokens", DType::I32, {3, 2}, tokensRead.data());
  EXPECT_EQ(tokensRead, tokens);
  float scaleRead = 0;
  reader.readAll("scale", DType::F32, {}, &scaleRead);
  EXPECT_EQ(scaleRead, 0.5f);
  reader.readAll("empty", DType::F32, {0, 3}, nullptr);

  SafetensorsReader moved = std::move(reader);
  moved.readAll("scale", DType::F32, {}, &scaleRead);
  EXPECT_EQ(scaleRead, 0.5f);
}

TEST(Checkpoint, NonFiniteValuesKeepTheirBits) {
  std::vector<float> values{std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(), -0.0f,
                            std::numeric_limits<float>::denorm_min()};
  SafetensorsWriter writer;
  writer.add("v", DType::F32, {4}, values.data());
  std::vector<float> read(4);
  openWriter(writer).readAll("v", DType::F32, {4}, read.data());
  EXPECT_EQ(std::memcmp(read.data(), values.data(), sizeof(float) * 4), 0);
}

// ---- Blocks ----------------------------------------------------------------------------------

TEST(Checkpoint, ReadBlock1DWithPadding) {
  std::vector<float> values = iota(5);
  SafetensorsWriter writer;
  writer.add("v", DType::F32, {5}, values.data());
  SafetensorsReader reader = openWriter(writer);
  std::vector<float> block(4, -1.0f);
  reader.readBlock("v", DType::F32, {5}, {1}, {3}, block.data());
  EXPECT_EQ(block, (std::vector<float>{1, 2, 3, -1}));
  // The last of 3 ceil-sized pieces of 5: [4, 6), one element and one of padding.
  reader.readBlock("v", DType::F32, {5}, {4}, {2}, block.data());
  EXPECT_EQ(block, (std::vector<float>{4, 0, 3, -1}));
  // A piece that starts past the extent (4 pieces of 2 over 7 elements, say) is all padding.
  reader.readBlock("v", DType::F32, {5}, {6}, {2}, block.data());
  EXPECT_EQ(block, (std::vector<float>{0, 0, 3, -1}));
}

TEST(Checkpoint, ReadBlock2D) {
  std::vector<float> values = iota(15);  // [3, 5]
  SafetensorsWriter writer;
  writer.add("m", DType::F32, {3, 5}, values.data());
  SafetensorsReader reader = openWriter(writer);

  std::vector<float> columns(6);  // column piece 1 of 3 (ceil 2): every row, columns [2, 4)
  reader.readBlock("m", DType::F32, {3, 5}, {0, 2}, {3, 2}, columns.data());
  EXPECT_EQ(columns, (std::vector<float>{2, 3, 7, 8, 12, 13}));

  std::vector<float> rows(10);  // row piece 1 of 2 (ceil 2): rows [2, 4), the last padding
  reader.readBlock("m", DType::F32, {3, 5}, {2, 0}, {2, 5}, rows.data());
  EXPECT_EQ(rows, (std::vector<float>{10, 11, 12, 13, 14, 0, 0, 0, 0, 0}));

  std::vector<float> corner(6);  // padding in both dims
  reader.readBlock("m", DType::F32, {3, 5}, {2, 3}, {2, 3}, corner.data());
  EXPECT_EQ(corner, (std::vector<float>{13, 14, 0, 0, 0, 0}));
}

TEST(Checkpoint, ReadBlock3DAgainstElementByElement) {
  const std::vector<int64_t> shape{2, 3, 4};
  std::vector<float> values = iota(24);
  SafetensorsWriter writer;
  writer.add("t", DType::F32, shape, values.data());
  SafetensorsReader reader = openWriter(writer);
  // Every begin in [0, extent] and count in [0, extent + 1] per dim: full dims, partial
  // ones, padding, empty blocks.
  int blocks = 0;
  for (int64_t b0 = 0; b0 <= 2; ++b0)
    for (int64_t c0 = 0; c0 <= 3; ++c0)
      for (int64_t b1 = 0; b1 <= 3; ++b1)
        for (int64_t c1 = 0; c1 <= 4; ++c1)
          for (int64_t b2 = 0; b2 <= 4; ++b2)
            for (int64_t c2 = 0; c2 <= 5; ++c2) {
              std::vector<int64_t> begin{b0, b1, b2}, count{c0, c1, c2};
              std::vector<float> expected = naiveBlock(values, shape, begin, count);
              std::vector<float> block(expected.size(), -1.0f);
              reader.readBlock("t", DType::F32, shape, begin, count, block.data());
              ASSERT_EQ(block, expected) << "begin " << shapeText(begin) << " count "
                                         << shapeText(count);
              ++blocks;
            }
  EXPECT_EQ(blocks, 3 * 4 * 4 * 5 * 5 * 6);
}

// A block reads only its own bytes: with the file cut short after opening, the rows before
// the cut still read, and reading past it names the file that changed.
TEST(Checkpoint, ReadBlockTouchesOnlyItsBytes) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  std::vector<float> values = iota(32);
  SafetensorsWriter writer;
  writer.add("w", DType::F32, {4, 8}, values.data());
  writer.write(path);
  SafetensorsReader reader = SafetensorsReader::open(path);
  const uint64_t dataStart = fs::file_size(path) - 32 * sizeof(float);
  fs::resize_file(path, dataStart + 2 * 8 * sizeof(float));  // rows 0 and 1 remain

  std::vector<float> block(2 * 8);
  reader.readBlock("w", DType::F32, {4, 8}, {0, 0}, {2, 8}, block.data());
  EXPECT_EQ(block, std::vector<float>(values.begin(), values.begin() + 16));
  try {
    reader.readBlock("w", DType::F32, {4, 8}, {1, 0}, {2, 8}, block.data());
    FAIL() << "read past the end of the file";
  } catch (const CheckpointError &e) {
    EXPECT_EQ(std::string(e.what()), path + ": the file ends at offset " +
                                         std::to_string(dataStart + 64) +
                                         ", before the data its header describes (did it change?)");
  }
}

TEST(Checkpoint, ReadBlockI32) {
  std::vector<int32_t> tokens{1, 2, 3, 4, 5, 6};  // [2, 3]
  SafetensorsWriter writer;
  writer.add("tokens", DType::I32, {2, 3}, tokens.data());
  std::vector<int32_t> block(4, -1);
  openWriter(writer).readBlock("tokens", DType::I32, {2, 3}, {1, 1}, {2, 2}, block.data());
  EXPECT_EQ(block, (std::vector<int32_t>{5, 6, 0, 0}));
}

TEST(Checkpoint, SixteenBitTensorsReadAsStored) {
  // [2, 3] of BF16 and F16 bits; a block of each comes back in its own 2-byte elements.
  std::vector<uint16_t> bf{0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0};  // 1..6
  std::vector<uint16_t> half{0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600};
  SafetensorsWriter writer;
  writer.add("bf", DType::BF16, {2, 3}, bf.data());
  writer.add("half", DType::F16, {2, 3}, half.data());
  writer.add("wide", DType::F32, {1}, std::vector<float>{1}.data());
  SafetensorsReader reader = openWriter(writer);
  EXPECT_EQ(reader.find("bf")->dtype, "BF16");
  EXPECT_EQ(reader.dtypeOf("bf"), DType::BF16);
  EXPECT_EQ(reader.dtypeOf("half"), DType::F16);
  std::vector<uint16_t> block(4, 0xffff);
  reader.readBlock("bf", DType::BF16, {2, 3}, {0, 1}, {2, 2}, block.data());
  EXPECT_EQ(block, (std::vector<uint16_t>{0x4000, 0x4040, 0x40a0, 0x40c0}));
  reader.readBlock("half", DType::F16, {2, 3}, {1, 2}, {1, 2}, block.data());  // padded
  EXPECT_EQ(block[0], 0x4600);
  EXPECT_EQ(block[1], 0);
  EXPECT_THROW(reader.readBlock("bf", DType::F32, {2, 3}, {0, 0}, {2, 3}, block.data()),
               CheckpointError);
  EXPECT_EQ(parseDType("F64"), std::nullopt);
  EXPECT_EQ(dtypeBytes(DType::BF16), 2u);
}

TEST(Checkpoint, ReadBlockChecksTheRequestFirst) {
  std::vector<float> values = iota(32);
  SafetensorsWriter writer;
  writer.add("layers.0.wq", DType::F32, {4, 8}, values.data());
  SafetensorsReader reader = openWriter(writer);
  std::vector<float> dst(64);
  auto error = [&](const std::string &name, DType dtype, std::vector<int64_t> shape,
                   std::vector<int64_t> begin, std::vector<int64_t> count) {
    try {
      reader.readBlock(name, dtype, shape, begin, count, dst.data());
    } catch (const CheckpointError &e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error("x", DType::F32, {4, 8}, {0, 0}, {4, 8}),
            "ckpt.safetensors: the checkpoint has no tensor \"x\"");
  EXPECT_EQ(error("layers.0.wq", DType::I32, {4, 8}, {0, 0}, {4, 8}),
            "ckpt.safetensors: tensor \"layers.0.wq\" has dtype F32 in the checkpoint, the plan "
            "expects I32");
  EXPECT_EQ(error("layers.0.wq", DType::F32, {8, 8}, {0, 0}, {4, 8}),
            "ckpt.safetensors: tensor \"layers.0.wq\" has shape [4, 8] in the checkpoint, the "
            "plan expects [8, 8]");
  EXPECT_EQ(error("layers.0.wq", DType::F32, {4, 8}, {0}, {4, 8}),
            "ckpt.safetensors: tensor \"layers.0.wq\" has rank 2, the block begin [0] count "
            "[4, 8] does not");
  EXPECT_EQ(error("layers.0.wq", DType::F32, {4, 8}, {-1, 0}, {4, 8}),
            "ckpt.safetensors: tensor \"layers.0.wq\": the block begin [-1, 0] count [4, 8] has "
            "a negative or overflowing entry");
  EXPECT_EQ(error("layers.0.wq", DType::F32, {4, 8}, {0, 0}, {4, -8}),
            "ckpt.safetensors: tensor \"layers.0.wq\": the block begin [0, 0] count [4, -8] has "
            "a negative or overflowing entry");
  EXPECT_NE(error("layers.0.wq", DType::F32, {4, 8}, {INT64_MAX, 0}, {1, 1}), "");
  EXPECT_NE(error("layers.0.wq", DType::F32, {4, 8}, {0, 0}, {INT64_MAX, 4}), "");
}

TEST(Checkpoint, OtherDtypesAreListedButNotRead) {
  SafetensorsReader reader = SafetensorsReader::openBytes(
      rawFile(R"({"h":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},)"
              R"("q":{"dtype":"F4","shape":[2,3],"data_offsets":[6,9]}})",
              std::string(9, '\0')),
      kName);
  EXPECT_EQ(reader.names(), (std::vector<std::string>{"h", "q"}));
  EXPECT_EQ(reader.find("h")->dtype, "BF16");
  float dst[3];
  EXPECT_THROW(reader.readAll("h", DType::F32, {3}, dst), CheckpointError);
}

TEST(Checkpoint, AcceptsWhatOtherWritersProduce) {
  // No padding, gaps between tensors, empty tensors anywhere, bytes after the data, keys in
  // any order.
  std::string data(20, '\0');
  float one = 1.0f;
  std::memcpy(&data[12], &one, 4);
  SafetensorsReader reader = SafetensorsReader::openBytes(
      rawFile(R"(  {"b":{"shape":[1],"data_offsets":[12,16],"dtype":"F32"},)"
              R"("a":{"dtype":"I32","shape":[0],"data_offsets":[13,13]},)"
              R"("c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}   )",
              data),
      kName);
  float read = 0;
  reader.readAll("b", DType::F32, {1}, &read);
  EXPECT_EQ(read, 1.0f);
  EXPECT_EQ(reader.names().size(), 3u);
}

// ---- Validation ----------------------------------------------------------------------------

TEST(Checkpoint, RefusesFilesThatAreNotSafetensors) {
  EXPECT_EQ(openError(""),
            "ckpt.safetensors: the file is 0 bytes, too short for the 8-byte header length");
  EXPECT_EQ(openError("abcde"),
            "ckpt.safetensors: the file is 5 bytes, too short for the 8-byte header length");
  EXPECT_EQ(openError(lengthPrefix(100) + "{}"),
            "ckpt.safetensors: header length 100 runs past the end of the file (2 bytes follow "
            "the length)");
  EXPECT_EQ(openError(lengthPrefix(100'000'001) + "{}"),
            "ckpt.safetensors: header length 100000001 exceeds the limit of 100000000 bytes");
  EXPECT_EQ(openError(lengthPrefix(UINT64_MAX) + "{}"),
            "ckpt.safetensors: header length 18446744073709551615 exceeds the limit of "
            "100000000 bytes");
  EXPECT_EQ(headerError(R"({"w":)"),
            "ckpt.safetensors: header is not valid JSON: parse error at line 1, column 6: "
            "syntax error while parsing value - unexpected end of input; expected '[', '{', or "
            "a literal");
  EXPECT_EQ(headerError(std::string("{\"\xff\":1}")).rfind(
                "ckpt.safetensors: header is not valid JSON: ", 0),
            0u);
  // A number past 64 bits is refused by the parser too (found by the fuzzer).
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}})"),
            "ckpt.safetensors: header is not valid JSON: number overflow parsing '1e999'");
  // The parser's messages quote the last token read: only its start is shown.
  EXPECT_EQ(headerError("{\"" + std::string(100'000, 'x')).size(),
            std::string("ckpt.safetensors: header is not valid JSON: ").size() + 303);
  EXPECT_EQ(headerError("[1, 2]"), "ckpt.safetensors: header is an array, not a JSON object");
  EXPECT_EQ(headerError("null"), "ckpt.safetensors: header is null, not a JSON object");
  EXPECT_EQ(openError(rawFile("{}", "")), "");  // no tensors is a valid file
}

TEST(Checkpoint, RefusesMalformedEntries) {
  const std::string prefix = "ckpt.safetensors: header[\"w\"]";
  EXPECT_EQ(headerError(R"({"w":[1]})"), prefix + " is an array, not an object");
  EXPECT_EQ(headerError(R"({"w":{"shape":[2],"data_offsets":[0,8]}})"),
            prefix + ".dtype is missing");
  EXPECT_EQ(headerError(R"({"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})"),
            prefix + ".dtype is a number, not a string");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})"),
            prefix + ".dtype \"F17\" is not a safetensors dtype");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})"),
            prefix + ".shape is missing");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":{"0":2},"data_offsets":[0,8]}})"),
            prefix + ".shape is an object, not an array");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2,"4"],"data_offsets":[0,8]}})"),
            prefix + ".shape[1] is a string, not an integer");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})"),
            prefix + ".shape[0] is a number, not an integer");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2,-4],"data_offsets":[0,8]}})"),
            prefix + ".shape[1] is -4, negative");
  EXPECT_EQ(headerError(
                R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})"),
            prefix + ".shape[0] is 9223372036854775808, too large");
  EXPECT_EQ(headerError(
                R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})"),
            prefix + ".shape: [4294967296, 4294967296] has more elements than a file can hold");
  EXPECT_EQ(headerError(
                R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})"),
            prefix + ".shape: [4611686018427387904] has more elements than a file can hold");
  // A zero dim makes the count zero, however large the others.
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[9223372036854775807,)"
                        R"(9223372036854775807,0],"data_offsets":[0,0]}})"),
            "");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2]}})"),
            prefix + ".data_offsets is missing");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":"0-8"}})"),
            prefix + ".data_offsets is a string, not an array [begin, end]");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})"),
            prefix + ".data_offsets has 3 entries, not [begin, end]");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})"),
            prefix + ".data_offsets[0] is -8, negative");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,null]}})"),
            prefix + ".data_offsets[1] is null, not an integer");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[16,8]}})"),
            prefix + ".data_offsets: [16, 8] ends before it begins");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[60,68]}})"),
            prefix + ".data_offsets: [60, 68] runs past the data section (64 bytes)");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[2],)"
                        R"("data_offsets":[0,18446744073709551615]}})"),
            prefix + ".data_offsets: [0, 18446744073709551615] runs past the data section (64 "
                     "bytes)");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})"),
            prefix + ".data_offsets: [0, 2] holds 2 bytes, but F4 [3] needs 12 bits");
}

TEST(Checkpoint, RefusesByteCountsThatDoNotMatchTheShape) {
  EXPECT_EQ(headerError(R"({"layers.0.wq":{"dtype":"F32","shape":[2,4],"data_offsets":[0,12]}})"),
            "ckpt.safetensors: header[\"layers.0.wq\"].data_offsets: [0, 12] holds 12 bytes, but "
            "F32 [2, 4] needs 32 bytes");
  EXPECT_EQ(headerError(R"({"s":{"dtype":"I32","shape":[],"data_offsets":[0,8]}})"),
            "ckpt.safetensors: header[\"s\"].data_offsets: [0, 8] holds 8 bytes, but I32 [] "
            "needs 4 bytes");
}

TEST(Checkpoint, RefusesOverlappingTensors) {
  EXPECT_EQ(headerError(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"I32","shape":[2],"data_offsets":[12,20]}})"),
            "ckpt.safetensors: header[\"b\"].data_offsets: [12, 20] overlaps "
            "header[\"a\"].data_offsets: [0, 16]");
  EXPECT_EQ(headerError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})"),
            "ckpt.safetensors: header[\"b\"].data_offsets: [8, 16] overlaps "
            "header[\"a\"].data_offsets: [8, 16]");
}

TEST(Checkpoint, RefusesMetadataThatIsNotStrings) {
  EXPECT_EQ(headerError(R"({"__metadata__":["a"]})"),
            "ckpt.safetensors: header[\"__metadata__\"] is an array, not an object of strings");
  EXPECT_EQ(headerError(R"({"__metadata__":{"format":"pt","step":100}})"),
            "ckpt.safetensors: header[\"__metadata__\"][\"step\"] is a number, not a string");
}

TEST(Checkpoint, NamesInMessagesAreQuotedAsJson) {
  EXPECT_EQ(headerError(R"({"a\"b\n":7})"),
            "ckpt.safetensors: header[\"a\\\"b\\n\"] is a number, not an object");
}

TEST(Checkpoint, OpenReportsThePath) {
  TempDir dir;
  try {
    SafetensorsReader::open(dir.file("missing.safetensors"));
    FAIL() << "opened a missing file";
  } catch (const CheckpointError &e) {
    EXPECT_EQ(std::string(e.what()),
              dir.file("missing.safetensors") + ": cannot open: No such file or directory");
  }
  try {
    SafetensorsReader::open(dir.file(""));
    FAIL() << "opened a directory";
  } catch (const CheckpointError &e) {
    EXPECT_NE(std::string(e.what()).find(": not a regular file"), std::string::npos);
  }
}

// Any prefix of a valid file either opens with the right data or is refused, never a crash
// or a read past its end (run under the sanitizers by the fuzzer).
TEST(Checkpoint, EveryTruncationOpensCorrectlyOrThrows) {
  std::vector<float> wq = iota(6);
  std::vector<int32_t> ids{4, 5};
  SafetensorsWriter writer;
  writer.add("wq", DType::F32, {2, 3}, wq.data());
  writer.add("ids", DType::I32, {2}, ids.data());
  writer.setMetadata("k", "v");
  const std::string bytes = writer.serialize();
  size_t opened = 0;
  for (size_t length = 0; length <= bytes.size(); ++length) {
    std::string error;
    try {
      SafetensorsReader reader = SafetensorsReader::openBytes(bytes.substr(0, length), kName);
      std::vector<float> wqRead(6);
      std::vector<int32_t> idsRead(2);
      reader.readAll("wq", DType::F32, {2, 3}, wqRead.data());
      reader.readAll("ids", DType::I32, {2}, idsRead.data());
      EXPECT_EQ(wqRead, wq) << "length " << length;
      EXPECT_EQ(idsRead, ids) << "length " << length;
      ++opened;
    } catch (const CheckpointError &e) {
      EXPECT_EQ(std::string(e.what()).rfind("ckpt.safetensors: ", 0), 0u) << e.what();
    }
  }
  EXPECT_EQ(opened, 1u);  // only the whole file: any shorter cuts into the last tensor
}

// ---- The writer ----------------------------------------------------------------------------

TEST(Checkpoint, WriterBytesAreDeterministic) {
  const int32_t one = 1;
  const float half = 0.5f;
  SafetensorsWriter first, second;
  first.add("b", DType::F32, {1}, &half);
  first.add("a", DType::I32, {1}, &one);
  first.setMetadata("z", "1"), first.setMetadata("m", "2");
  second.setMetadata("m", "2"), second.setMetadata("z", "1");
  second.add("a", DType::I32, {1}, &one);
  second.add("b", DType::F32, {1}, &half);
  EXPECT_EQ(first.serialize(), second.serialize());

  const std::string header =
      R"({"__metadata__":{"m":"2","z":"1"},"a":{"data_offsets":[0,4],"dtype":"I32","shape":[1]},)"
      R"("b":{"data_offsets":[4,8],"dtype":"F32","shape":[1]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(first.serialize(),
            rawFile(padded, std::string("\x01\x00\x00\x00\x00\x00\x00\x3f", 8)));

  TempDir dir;
  first.write(dir.file("a.safetensors"));
  second.write(dir.file("b.safetensors"));
  std::ifstream a(dir.file("a.safetensors"), std::ios::binary),
      b(dir.file("b.safetensors"), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), first.serialize());
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(b), {}), first.serialize());
}

TEST(Checkpoint, WriterPadsTheHeaderToEightBytes) {
  for (size_t nameLength = 1; nameLength <= 9; ++nameLength) {
    const float value = 1.0f;
    SafetensorsWriter writer;
    writer.add(std::string(nameLength, 'x'), DType::F32, {1}, &value);
    const std::string bytes = writer.serialize();
    uint64_t headerLength = 0;
    std::memcpy(&headerLength, bytes.data(), 8);
    EXPECT_EQ(headerLength % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + headerLength + 4);
  }
}

TEST(Checkpoint, WriterRefusesBadTensors) {
  const float value = 0;
  SafetensorsWriter writer;
  writer.add("w", DType::F32, {1}, &value);
  auto error = [&](const std::string &name, std::vector<int64_t> shape) {
    try {
      writer.add(name, DType::F32, shape, &value);
    } catch (const CheckpointError &e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error("w", {1}), "tensor \"w\" is added twice");
  EXPECT_EQ(error("__metadata__", {1}),
            "tensor name \"__metadata__\" is reserved for the file's metadata");
  EXPECT_EQ(error("n", {2, -1}),
            "tensor \"n\" has shape [2, -1]: a negative dim or too many elements");
  EXPECT_EQ(error("o", {INT64_MAX, 2}),
            "tensor \"o\" has shape [9223372036854775807, 2]: a negative dim or too many "
            "elements");
  EXPECT_EQ(error("\xff", {1}), "tensor name \"\xEF\xBF\xBD\" is not valid UTF-8");
  EXPECT_THROW(writer.setMetadata("k", "\xc3"), CheckpointError);
}

TEST(Checkpoint, WriteReportsThePath) {
  TempDir dir;
  SafetensorsWriter writer;
  try {
    writer.write(dir.file("no-such-dir/a.safetensors"));
    FAIL() << "wrote into a missing directory";
  } catch (const CheckpointError &e) {
    EXPECT_EQ(std::string(e.what()), dir.file("no-such-dir/a.safetensors") +
                                         ": cannot write: No such file or directory");
  }
}

// ---- compareCheckpoints --------------------------------------------------------------------

struct ComparePair {
  SafetensorsWriter a, b;
  CompareReport compare(const Tolerance &tolerance = {}) const {
    SafetensorsReader ra = SafetensorsReader::openBytes(a.serialize(), "a.safetensors");
    SafetensorsReader rb = SafetensorsReader::openBytes(b.serialize(), "b.safetensors");
    return compareCheckpoints(ra, rb, tolerance);
  }
};

TEST(CheckpointCompare, EqualFilesAreWithin) {
  std::vector<float> w = iota(6);
  std::vector<int32_t> ids{1, 2};
  ComparePair pair;
  for (SafetensorsWriter *writer : {&pair.a, &pair.b}) {
    writer->add("w", DType::F32, {2, 3}, w.data());
    writer->add("ids", DType::I32, {2}, ids.data());
  }
  CompareReport report = pair.compare();
  EXPECT_TRUE(report.allWithin());
  EXPECT_EQ(report.exitStatus(), 0);
  ASSERT_EQ(report.tensors.size(), 2u);
  EXPECT_EQ(report.tensors[1].name, "w");
  EXPECT_EQ(report.tensors[1].maxAbsDiff, 0);
  EXPECT_TRUE(report.tensors[1].maxAbsDiffIndex.empty());
  EXPECT_EQ(report.tensors[1].maxAbsReference, 5);
  EXPECT_EQ(renderCompareText(report),
            "ids: within: I32 [2], all 2 elements equal\n"
            "w: within: F32 [2, 3], max |a - b| 0 <= 0.00051 (max |B| 5)\n"
            "verdict: within tolerance, all 2 tensors (atol 1e-05, rtol 0.0001; b.safetensors "
            "is the reference)\n");
}

TEST(CheckpointCompare, ToleranceScalesWithTheLargestReferenceValue) {
  std::vector<float> reference{100.0f, 1.0f, -2.0f, 0.0f};  // [2, 2]
  std::vector<float> within = reference, beyond = reference;
  within[3] = 0.0099f;   // <= 1e-5 + 1e-4 x 100
  beyond[2] = -2.0125f;  // > 0.01001, the largest difference
  beyond[3] = 0.0101f;
  ComparePair close, far;
  close.a.add("w", DType::F32, {2, 2}, within.data());
  close.b.add("w", DType::F32, {2, 2}, reference.data());
  far.a.add("w", DType::F32, {2, 2}, beyond.data());
  far.b.add("w", DType::F32, {2, 2}, reference.data());

  CompareReport closeReport = close.compare();
  EXPECT_TRUE(closeReport.allWithin());
  EXPECT_NEAR(closeReport.tensors[0].bound, 0.01001, 1e-12);
  EXPECT_EQ(closeReport.tensors[0].maxAbsDiffIndex, (std::vector<int64_t>{1, 1}));

  CompareReport farReport = far.compare();
  EXPECT_FALSE(farReport.allWithin());
  EXPECT_EQ(farReport.exitStatus(), 1);
  const TensorComparison &w = farReport.tensors[0];
  EXPECT_EQ(w.outcome, TensorComparison::Outcome::Differs);
  EXPECT_NEAR(w.maxAbsDiff, 0.0125, 1e-6);
  EXPECT_EQ(w.maxAbsDiffIndex, (std::vector<int64_t>{1, 0}));
  EXPECT_TRUE(far.compare(Tolerance{0.02, 0}).allWithin());
  EXPECT_TRUE(far.compare(Tolerance{0, 2e-4}).allWithin());
}

TEST(CheckpointCompare, NonFiniteValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> reference{nan, inf, 1.0f, -inf};
  std::vector<float> same = reference, nanAgainstValue = reference;
  nanAgainstValue[2] = nan;
  ComparePair equal, differ;
  equal.a.add("w", DType::F32, {4}, same.data());
  equal.b.add("w", DType::F32, {4}, reference.data());
  differ.a.add("w", DType::F32, {4}, nanAgainstValue.data());
  differ.b.add("w", DType::F32, {4}, reference.data());

  CompareReport equalReport = equal.compare();
  EXPECT_TRUE(equalReport.allWithin());
  EXPECT_EQ(equalReport.tensors[0].maxAbsReference, 1.0);  // infinities left out
  CompareReport differReport = differ.compare(Tolerance{1e9, 1e9});
  EXPECT_FALSE(differReport.allWithin());
  EXPECT_TRUE(std::isinf(differReport.tensors[0].maxAbsDiff));
  EXPECT_EQ(differReport.tensors[0].maxAbsDiffIndex, (std::vector<int64_t>{2}));
  EXPECT_TRUE(compareJson(differReport)["tensors"][0]["max_abs_diff"].is_null());
}

TEST(CheckpointCompare, IntegersCountDifferingElements) {
  std::vector<int32_t> a{1, 2, 3, 4, 5, 6}, b{1, 2, 0, 4, 0, 6};
  ComparePair pair;
  pair.a.add("ids", DType::I32, {3, 2}, a.data());
  pair.b.add("ids", DType::I32, {3, 2}, b.data());
  CompareReport report = pair.compare(Tolerance{1e9, 1e9});
  const TensorComparison &ids = report.tensors[0];
  EXPECT_EQ(ids.outcome, TensorComparison::Outcome::Differs);
  EXPECT_EQ(ids.differingElements, 2);
  EXPECT_EQ(ids.firstDifferenceIndex, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(renderCompareText(report).substr(0, renderCompareText(report).find('\n')),
            "ids: differs: I32 [3, 2], 2 of 6 elements differ, the first at [1, 0]");
}

TEST(CheckpointCompare, NamesDtypesAndShapesMustAgree) {
  const float values[4] = {1, 2, 3, 4};
  ComparePair pair;
  pair.a.add("only-a", DType::F32, {1}, values);
  pair.b.add("only-b", DType::F32, {2}, values);
  pair.a.add("dtype", DType::F32, {1}, values);
  pair.b.add("dtype", DType::I32, {1}, values);
  pair.a.add("shape", DType::F32, {2, 2}, values);
  pair.b.add("shape", DType::F32, {4}, values);
  CompareReport report = pair.compare();
  EXPECT_EQ(report.exitStatus(), 1);
  EXPECT_EQ(renderCompareText(report),
            "dtype: differs: dtype F32 in A, I32 in B\n"
            "only-a: differs: only in A (F32 [1])\n"
            "only-b: differs: only in B (F32 [2])\n"
            "shape: differs: F32 shape [2, 2] in A, [4] in B\n"
            "verdict: different, 4 of 4 tensors (atol 1e-05, rtol 0.0001; b.safetensors is the "
            "reference)\n");
  nlohmann::json json = compareJson(report);
  EXPECT_EQ(json["schema"], "moeplan-compare");
  EXPECT_EQ(json["within_tolerance"], false);
  EXPECT_EQ(json["tensors"][1]["outcome"], "only-in-a");
  EXPECT_FALSE(json["tensors"][1].contains("b"));
}

TEST(CheckpointCompare, OtherDtypesAreNotCompared) {
  const std::string file =
      rawFile(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0'));
  SafetensorsReader a = SafetensorsReader::openBytes(file, "a"),
                    b = SafetensorsReader::openBytes(file, "b");
  CompareReport report = compareCheckpoints(a, b, {});
  EXPECT_EQ(report.tensors[0].outcome, TensorComparison::Outcome::NotComparable);
  EXPECT_EQ(report.exitStatus(), 1);
}

TEST(CheckpointCompare, LargeTensorsCompareInChunks) {
  // Three chunks of rows of 1000 elements; the difference sits in the last.
  const int64_t rows = 2500, columns = 1000;
  std::vector<float> reference(size_t(rows * columns), 1.0f), changed = reference;
  changed[size_t(2400 * columns + 7)] = 3.0f;
  ComparePair pair;
  pair.a.add("big", DType::F32, {rows, columns}, changed.data());
  pair.b.add("big", DType::F32, {rows, columns}, reference.data());
  CompareReport report = pair.compare();
  EXPECT_EQ(report.tensors[0].maxAbsDiff, 2.0);
  EXPECT_EQ(report.tensors[0].maxAbsDiffIndex, (std::vector<int64_t>{2400, 7}));
}

} // namespace
