// Hugging Face checkpoints read as moeplan's tensors (HfCheckpoint.h): the name mapping per
// architecture, blocks of transposed and stacked tensors against element-by-element reads of
// the source, sharded checkpoints, and every way a directory is refused, with its message.
#include "moeplan/Checkpoint/HfCheckpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using namespace moeplan::checkpoint;
namespace fs = std::filesystem;

class HfCheckpointTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moeplan-hf-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void writeText(const std::string &name, const std::string &text) {
    std::ofstream(dir_ / name) << text;
  }
  void config(const std::string &arch, const std::string &extra = "") {
    writeText("config.json", "{\"architectures\": [\"" + arch + "\"]" + extra + "}");
  }
  // A tensor whose element i is base + i.
  static void add(SafetensorsWriter &w, const std::string &name, std::vector<int64_t> shape,
                  float base = 0) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), base);
    w.add(name, DType::F32, shape, v.data());
  }
  std::string openError() {
    try {
      HfCheckpoint::open(dir_.string());
    } catch (const CheckpointError &e) {
      return e.what();
    }
    return "";
  }
  std::string checkError(const HfCheckpoint &c, const std::map<std::string, std::vector<int64_t>> &model) {
    try {
      c.checkTensors(model);
    } catch (const CheckpointError &e) {
      return e.what();
    }
    return "";
  }
  std::vector<float> block(const HfCheckpoint &c, const std::string &name, std::vector<int64_t> shape,
                           std::vector<int64_t> begin, std::vector<int64_t> count) {
    int64_t n = 1;
    for (int64_t d : count) n *= d;
    std::vector<float> out(size_t(n), -1.0f);
    c.readBlock(name, DType::F32, shape, begin, count, out.data());
    return out;
  }

  fs::path dir_;
};

TEST(HfTensorMap, NamesPerArchitecture) {
  auto one = [](HfArchitecture a, const std::string &name, std::vector<int64_t> shape) {
    HfTensorMap m = hfTensorMap(a, name, shape);
    return m.sources.at(0) + (m.transpose ? " T" : "");
  };
  const HfArchitecture mixtral = HfArchitecture::Mixtral, qwen = HfArchitecture::Qwen2Moe;
  EXPECT_EQ(one(mixtral, "embedding.weight", {32, 8}), "model.embed_tokens.weight");
  EXPECT_EQ(one(mixtral, "lm_head.weight", {8, 32}), "lm_head.weight T");
  EXPECT_EQ(one(mixtral, "final_norm.weight", {8}), "model.norm.weight");
  EXPECT_EQ(one(mixtral, "layers.3.norm1.weight", {8}), "model.layers.3.input_layernorm.weight");
  EXPECT_EQ(one(mixtral, "layers.3.norm2.weight", {8}),
            "model.layers.3.post_attention_layernorm.weight");
  EXPECT_EQ(one(mixtral, "layers.0.attention.wk", {8, 4}), "model.layers.0.self_attn.k_proj.weight T");
  EXPECT_EQ(one(mixtral, "layers.0.router.weight", {8, 4}),
            "model.layers.0.block_sparse_moe.gate.weight T");
  EXPECT_EQ(one(qwen, "layers.0.router.weight", {8, 4}), "model.layers.0.mlp.gate.weight T");
  EXPECT_EQ(one(qwen, "layers.1.attention.bq", {8}), "model.layers.1.self_attn.q_proj.bias");
  EXPECT_EQ(one(qwen, "layers.1.shared_expert.w_down", {6, 8}),
            "model.layers.1.mlp.shared_expert.down_proj.weight T");
  EXPECT_EQ(one(qwen, "layers.1.shared_expert_gate.weight", {8, 1}),
            "model.layers.1.mlp.shared_expert_gate.weight T");
  EXPECT_EQ(one(qwen, "layers.2.ffn.w_gate", {8, 6}), "model.layers.2.mlp.gate_proj.weight T");
  // Mixtral's experts: w1 gate, w3 up, w2 down, one source per expert, [out, in] each.
  HfTensorMap up = hfTensorMap(mixtral, "layers.1.experts.w_up", {3, 8, 6});
  ASSERT_EQ(up.sources.size(), 3u);
  EXPECT_EQ(up.sources[2], "model.layers.1.block_sparse_moe.experts.2.w3.weight");
  EXPECT_EQ(up.sourceShape, (std::vector<int64_t>{6, 8}));
  EXPECT_EQ(hfTensorMap(qwen, "layers.1.experts.w_gate", {3, 8, 6}).sources[1],
            "model.layers.1.mlp.experts.1.gate_proj.weight");
  // What an architecture does not have is refused by name.
  EXPECT_THROW(hfTensorMap(HfArchitecture::Llama, "layers.0.router.weight", {8, 4}), CheckpointError);
  EXPECT_THROW(hfTensorMap(mixtral, "layers.0.ffn.w_up", {8, 6}), CheckpointError);
  EXPECT_THROW(hfTensorMap(mixtral, "layers.x.norm1.weight", {8}), CheckpointError);
  EXPECT_THROW(hfTensorMap(HfArchitecture::Llama, "layers.0.shared_expert.w_up", {8, 6}), CheckpointError);
}

// A rank's block of a transposed matrix and of stacked experts equals the same elements
// read from the [out, in] sources; blocks running past the last expert are zero padding.
TEST_F(HfCheckpointTest, BlocksOfTransposedAndStackedTensors) {
  config("MixtralForCausalLM");
  SafetensorsWriter w;
  add(w, "model.layers.0.self_attn.q_proj.weight", {6, 4});  // [out 6, in 4]
  for (int e = 0; e < 3; ++e)
    add(w, "model.layers.0.block_sparse_moe.experts." + std::to_string(e) + ".w2.weight", {4, 5},
        100.0f * float(e));  // down: [out d 4, in hidden 5]
  w.write((dir_ / "model.safetensors").string());
  HfCheckpoint c = HfCheckpoint::open(dir_.string());
  EXPECT_EQ(c.architecture(), HfArchitecture::Mixtral);

  // wq [4, 6] = q_proj^T; the block rows 1..2, columns 3..5.
  std::vector<float> got = block(c, "layers.0.attention.wq", {4, 6}, {1, 3}, {2, 3});
  std::vector<float> want;
  for (int r = 1; r < 3; ++r)
    for (int col = 3; col < 6; ++col) want.push_back(float(col * 4 + r));  // source [col][r]
  EXPECT_EQ(got, want);

  // w_down [3 experts, hidden 5, d 4]: experts 2..3 (3 is padding), hidden 1..4, d 0..1.
  got = block(c, "layers.0.experts.w_down", {3, 5, 4}, {2, 1, 0}, {2, 3, 2});
  want.clear();
  for (int h = 1; h < 4; ++h)
    for (int d = 0; d < 2; ++d) want.push_back(200.0f + float(d * 5 + h));
  want.resize(12, 0.0f);
  EXPECT_EQ(got, want);
  EXPECT_EQ(c.dtypeOf("layers.0.experts.w_down", {3, 5, 4}), DType::F32);
}

TEST_F(HfCheckpointTest, CheckTensorsNamesMissingExtraAndMisshapen) {
  config("LlamaForCausalLM");
  SafetensorsWriter w;
  add(w, "model.embed_tokens.weight", {10, 4});
  add(w, "model.norm.weight", {5});                 // mis-shaped
  add(w, "model.layers.0.mlp.up_proj.bias", {6});    // the model has no FFN bias
  w.write((dir_ / "model.safetensors").string());
  HfCheckpoint c = HfCheckpoint::open(dir_.string());
  const std::string error = checkError(c, {{"embedding.weight", {10, 4}},
                                           {"final_norm.weight", {4}},
                                           {"lm_head.weight", {4, 10}}});
  EXPECT_NE(error.find("missing tensor \"lm_head.weight\" (moeplan's \"lm_head.weight\")"),
            std::string::npos) << error;
  EXPECT_NE(error.find("tensor \"model.norm.weight\" has shape [5], the model needs [4]"),
            std::string::npos) << error;
  EXPECT_NE(error.find("unexpected tensor \"model.layers.0.mlp.up_proj.bias\""), std::string::npos)
      << error;
  EXPECT_EQ(checkError(c, {{"embedding.weight", {10, 4}}, {"final_norm.weight", {5}},
                           {"layers.0.ffn.b_up", {6}}}),
            "") << "a Llama FFN bias maps to mlp.up_proj.bias";
}

TEST_F(HfCheckpointTest, ShardedCheckpointsFollowTheirIndex) {
  config("LlamaForCausalLM");
  SafetensorsWriter a, b;
  add(a, "model.embed_tokens.weight", {10, 4});
  add(b, "model.norm.weight", {4}, 7.0f);
  a.write((dir_ / "model-00001-of-00002.safetensors").string());
  b.write((dir_ / "model-00002-of-00002.safetensors").string());
  writeText("model.safetensors.index.json",
            R"({"metadata": {}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                "model.norm.weight": "model-00002-of-00002.safetensors"}})");
  HfCheckpoint c = HfCheckpoint::open(dir_.string());
  EXPECT_EQ(checkError(c, {{"embedding.weight", {10, 4}}, {"final_norm.weight", {4}}}), "");
  EXPECT_EQ(block(c, "final_norm.weight", {4}, {2}, {2}), (std::vector<float>{9.0f, 10.0f}));

  // The index must name files of the directory that hold what it says, and list every
  // tensor of the files it names.
  writeText("model.safetensors.index.json",
            R"({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}})");
  EXPECT_NE(openError().find("weight_map.model.norm.weight: model-00001-of-00002.safetensors holds no such tensor"),
            std::string::npos) << openError();
  writeText("model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "../x"}})");
  EXPECT_NE(openError().find("is not a file of the directory"), std::string::npos) << openError();
  writeText("model.safetensors.index.json",
            R"({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors",
                               "model.embed_tokens.weight": "model-00002-of-00002.safetensors"}})");
  EXPECT_NE(openError().find("holds no such tensor"), std::string::npos) << openError();
  writeText("model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "model-00003.safetensors"}})");
  EXPECT_NE(openError().find("model-00003.safetensors"), std::string::npos) << openError();
  writeText("model.safetensors.index.json", R"({"weight_map": []})");
  EXPECT_NE(openError().find("weight_map: expected an object"), std::string::npos) << openError();
}

TEST_F(HfCheckpointTest, RefusedDirectories) {
  EXPECT_NE(openError().find("config.json: cannot be read"), std::string::npos) << openError();
  writeText("config.json", "{not json");
  EXPECT_NE(openError().find("config.json: is not valid JSON"), std::string::npos) << openError();
  config("GPT2LMHeadModel");
  EXPECT_NE(openError().find("architectures: \"GPT2LMHeadModel\" is not one moeplan reads"),
            std::string::npos) << openError();
  writeText("config.json", R"({"architectures": "MixtralForCausalLM"})");
  EXPECT_NE(openError().find("architectures: expected a list of one architecture name"),
            std::string::npos) << openError();
  config("MixtralForCausalLM");
  EXPECT_NE(openError().find("holds neither model.safetensors nor model.safetensors.index.json"),
            std::string::npos) << openError();
}

// Experts stored in different dtypes cannot be stacked into one buffer read.
TEST_F(HfCheckpointTest, ExpertsInDifferentDtypesAreRefused) {
  config("MixtralForCausalLM");
  SafetensorsWriter w;
  add(w, "model.layers.0.block_sparse_moe.experts.0.w1.weight", {2, 2});
  const uint16_t half[4] = {0, 0, 0, 0};
  w.add("model.layers.0.block_sparse_moe.experts.1.w1.weight", DType::BF16, {2, 2}, half);
  w.write((dir_ / "model.safetensors").string());
  HfCheckpoint c = HfCheckpoint::open(dir_.string());
  try {
    c.dtypeOf("layers.0.experts.w_gate", {2, 2, 2});
    FAIL() << "mixed dtypes accepted";
  } catch (const CheckpointError &e) {
    EXPECT_NE(std::string(e.what()).find("stored in different dtypes (F32, then BF16"), std::string::npos)
        << e.what();
  }
}

} // namespace
