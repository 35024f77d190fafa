#include "moeplan/Checkpoint/HfCheckpoint.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>

namespace moeplan::checkpoint {

struct HfCheckpoint::Config {
  nlohmann::json json;
};

namespace {

[[noreturn]] void fail(const std::string &where, const std::string &what) {
  throw CheckpointError(where + ": " + what);
}

nlohmann::json readJson(const std::string &path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception &e) {
    fail(path, std::string("is not valid JSON: ") + e.what());
  }
}

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// "layers.12.attention.wq" -> layer 12 and rest "attention.wq"; false when not a layer's.
bool splitLayer(const std::string &name, std::string &layer, std::string &rest) {
  const std::string prefix = "layers.";
  if (name.rfind(prefix, 0) != 0) return false;
  size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return false;
  layer = name.substr(prefix.size(), dot - prefix.size());
  if (!std::all_of(layer.begin(), layer.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  rest = name.substr(dot + 1);
  return true;
}

std::vector<int64_t> swappedLast(std::vector<int64_t> dims) {
  if (dims.size() >= 2) std::swap(dims[dims.size() - 1], dims[dims.size() - 2]);
  return dims;
}

} // namespace

const char *hfArchitectureName(HfArchitecture arch) {
  switch (arch) {
  case HfArchitecture::Llama: return "LlamaForCausalLM";
  case HfArchitecture::Mixtral: return "MixtralForCausalLM";
  case HfArchitecture::Qwen2: return "Qwen2ForCausalLM";
  case HfArchitecture::Qwen2Moe: return "Qwen2MoeForCausalLM";
  }
  return "?";
}

std::optional<HfArchitecture> parseHfArchitecture(const std::string &name) {
  for (HfArchitecture a : {HfArchitecture::Llama, HfArchitecture::Mixtral, HfArchitecture::Qwen2,
                           HfArchitecture::Qwen2Moe})
    if (name == hfArchitectureName(a)) return a;
  return std::nullopt;
}

HfTensorMap hfTensorMap(HfArchitecture arch, const std::string &name,
                        const std::vector<int64_t> &shape) {
  auto unmapped = [&]() -> HfTensorMap {
    throw CheckpointError(std::string(hfArchitectureName(arch)) + " has no tensor for moeplan's \"" +
                          name + "\"");
  };
  auto plain = [&](std::string source) { return HfTensorMap{{std::move(source)}, false, shape}; };
  auto linear = [&](std::string source) {
    if (shape.size() != 2) unmapped();
    return HfTensorMap{{std::move(source)}, true, swappedLast(shape)};
  };
  if (name == "embedding.weight") return plain("model.embed_tokens.weight");
  if (name == "lm_head.weight") return linear("lm_head.weight");
  if (name == "final_norm.weight") return plain("model.norm.weight");
  std::string layer, rest;
  if (!splitLayer(name, layer, rest)) return unmapped();
  const std::string p = "model.layers." + layer + ".";
  const bool mixtral = arch == HfArchitecture::Mixtral, qwenMoe = arch == HfArchitecture::Qwen2Moe;
  if (rest == "norm1.weight") return plain(p + "input_layernorm.weight");
  if (rest == "norm2.weight") return plain(p + "post_attention_layernorm.weight");
  static const std::map<std::string, std::string> attention = {
      {"wq", "q_proj"}, {"wk", "k_proj"}, {"wv", "v_proj"}, {"wo", "o_proj"}};
  static const std::map<std::string, std::string> attentionBias = {
      {"bq", "q_proj"}, {"bk", "k_proj"}, {"bv", "v_proj"}, {"bo", "o_proj"}};
  if (rest.rfind("attention.", 0) == 0) {
    const std::string w = rest.substr(std::strlen("attention."));
    if (auto it = attention.find(w); it != attention.end())
      return linear(p + "self_attn." + it->second + ".weight");
    if (auto it = attentionBias.find(w); it != attentionBias.end())
      return plain(p + "self_attn." + it->second + ".bias");
    return unmapped();
  }
  if (rest == "router.weight") {
    if (mixtral) return linear(p + "block_sparse_moe.gate.weight");
    if (qwenMoe) return linear(p + "mlp.gate.weight");
    return unmapped();
  }
  static const std::map<std::string, std::string> mixtralExpert = {
      {"w_gate", "w1"}, {"w_up", "w3"}, {"w_down", "w2"}};
  static const std::map<std::string, std::string> projection = {
      {"w_gate", "gate_proj"}, {"w_up", "up_proj"}, {"w_down", "down_proj"}};
  if (rest.rfind("experts.", 0) == 0 && (mixtral || qwenMoe) && shape.size() == 3) {
    const std::string w = rest.substr(std::strlen("experts."));
    const auto &names = mixtral ? mixtralExpert : projection;
    auto it = names.find(w);
    if (it == names.end()) return unmapped();
    HfTensorMap map;
    map.transpose = true;
    map.sourceShape = swappedLast({shape[1], shape[2]});
    for (int64_t e = 0; e < shape[0]; ++e)
      map.sources.push_back(p + (mixtral ? "block_sparse_moe.experts." : "mlp.experts.") +
                            std::to_string(e) + "." + it->second + ".weight");
    return map;
  }
  if (qwenMoe && rest == "shared_expert_gate.weight") return linear(p + "mlp.shared_expert_gate.weight");
  if (qwenMoe && rest.rfind("shared_expert.", 0) == 0) {
    auto it = projection.find(rest.substr(std::strlen("shared_expert.")));
    if (it == projection.end()) return unmapped();
    return linear(p + "mlp.shared_expert." + it->second + ".weight");
  }
  if (rest.rfind("ffn.", 0) == 0 && !mixtral) {
    static const std::map<std::string, std::string> bias = {
        {"b_gate", "gate_proj"}, {"b_up", "up_proj"}, {"b_down", "down_proj"}};
    const std::string w = rest.substr(std::strlen("ffn."));
    if (auto it = projection.find(w); it != projection.end())
      return linear(p + "mlp." + it->second + ".weight");
    if (auto it = bias.find(w); it != bias.end()) return plain(p + "mlp." + it->second + ".bias");
    return unmapped();
  }
  return unmapped();
}

bool isDirectory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

HfCheckpoint::HfCheckpoint(HfCheckpoint &&) noexcept = default;
HfCheckpoint &HfCheckpoint::operator=(HfCheckpoint &&) noexcept = default;
HfCheckpoint::~HfCheckpoint() = default;

HfCheckpoint HfCheckpoint::open(const std::string &dir) {
  HfCheckpoint c;
  c.dir_ = dir;
  const std::string configPath = dir + "/config.json";
  c.config_ = std::make_unique<Config>();
  c.config_->json = readJson(configPath);
  const nlohmann::json &cfg = c.config_->json;
  if (!cfg.is_object()) fail(configPath, "is not a JSON object");
  auto archs = cfg.find("architectures");
  if (archs == cfg.end() || !archs->is_array() || archs->size() != 1 || !(*archs)[0].is_string())
    fail(configPath, "architectures: expected a list of one architecture name");
  const std::string arch = (*archs)[0].get<std::string>();
  std::optional<HfArchitecture> a = parseHfArchitecture(arch);
  if (!a)
    fail(configPath, "architectures: \"" + arch +
                         "\" is not one moeplan reads (LlamaForCausalLM, MixtralForCausalLM, "
                         "Qwen2ForCausalLM, Qwen2MoeForCausalLM)");
  c.arch_ = *a;

  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (exists(index)) {
    nlohmann::json idx = readJson(index);
    auto map = idx.is_object() ? idx.find("weight_map") : idx.end();
    if (map == idx.end() || !map->is_object()) fail(index, "weight_map: expected an object");
    std::map<std::string, size_t> opened;
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string()) fail(index, "weight_map." + it.key() + ": expected a file name");
      const std::string file = it.value().get<std::string>();
      if (file.empty() || file.find('/') != std::string::npos || file == "..")
        fail(index, "weight_map." + it.key() + ": \"" + file + "\" is not a file of the directory");
      auto [at, fresh] = opened.emplace(file, c.files_.size());
      if (fresh) c.files_.push_back(SafetensorsReader::open(dir + "/" + file));
      const SafetensorsReader &reader = c.files_[at->second];
      if (!reader.find(it.key()))
        fail(index, "weight_map." + it.key() + ": " + file + " holds no such tensor");
      c.fileOf_[it.key()] = at->second;
    }
    // A tensor in a shard that the index does not list would be silently unused.
    for (const auto &[file, i] : opened)
      for (const std::string &name : c.files_[i].names())
        if (!c.fileOf_.count(name))
          fail(index, "weight_map does not list \"" + name + "\", which " + file + " holds");
  } else if (exists(single)) {
    c.files_.push_back(SafetensorsReader::open(single));
    for (const std::string &name : c.files_[0].names()) c.fileOf_[name] = 0;
  } else {
    fail(dir, "holds neither model.safetensors nor model.safetensors.index.json");
  }
  return c;
}

bool HfCheckpoint::hasConfig(const std::string &key) const {
  return config_->json.contains(key);
}

std::string HfCheckpoint::configValue(const std::string &key) const {
  auto it = config_->json.find(key);
  if (it == config_->json.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

const SafetensorsReader &HfCheckpoint::fileOf(const std::string &tensor) const {
  auto it = fileOf_.find(tensor);
  if (it == fileOf_.end()) fail(dir_, "holds no tensor \"" + tensor + "\"");
  return files_[it->second];
}

void HfCheckpoint::checkTensors(const std::map<std::string, std::vector<int64_t>> &model) const {
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (const auto &[name, shape] : model) {
    HfTensorMap map;
    try {
      map = hfTensorMap(arch_, name, shape);
    } catch (const CheckpointError &e) {
      problems.push_back(e.what());
      continue;
    }
    for (const std::string &source : map.sources) {
      used.insert(source);
      auto it = fileOf_.find(source);
      if (it == fileOf_.end()) {
        problems.push_back("missing tensor \"" + source + "\" (moeplan's \"" + name + "\")");
        continue;
      }
      const TensorInfo &info = *files_[it->second].find(source);
      if (info.shape != map.sourceShape)
        problems.push_back("tensor \"" + source + "\" has shape " + shapeText(info.shape) +
                           ", the model needs " + shapeText(map.sourceShape));
      std::optional<DType> t = parseDType(info.dtype);
      if (!t || *t == DType::I32)
        problems.push_back("tensor \"" + source + "\" is " + info.dtype + ", not F32, F16 or BF16");
    }
  }
  // With tied embeddings the LM head is the embedding; a copy of it is harmless.
  const bool tied = configValue("tie_word_embeddings") == "true";
  for (const auto &[name, file] : fileOf_)
    if (!used.count(name) && !(tied && name == "lm_head.weight"))
      problems.push_back("unexpected tensor \"" + name +
                         "\": the model described has no place for it");
  if (problems.empty()) return;
  std::string text = dir_ + ": the checkpoint does not fit the plan's model (" +
                     hfArchitectureName(arch_) + "):";
  for (size_t i = 0; i < problems.size() && i < 20; ++i) text += "\n  " + problems[i];
  if (problems.size() > 20) text += "\n  ... " + std::to_string(problems.size() - 20) + " more";
  throw CheckpointError(text);
}

DType HfCheckpoint::dtypeOf(const std::string &name, const std::vector<int64_t> &shape) const {
  const HfTensorMap map = hfTensorMap(arch_, name, shape);
  std::optional<DType> first;
  for (const std::string &source : map.sources) {
    DType t = fileOf(source).dtypeOf(source);
    if (first && t != *first)
      fail(dir_, "the experts of \"" + name + "\" are stored in different dtypes (" +
                     dtypeName(*first) + ", then " + dtypeName(t) + " in \"" + source + "\")");
    first = t;
  }
  return first.value_or(DType::F32);
}

void HfCheckpoint::readBlock(const std::string &name, DType dtype, const std::vector<int64_t> &shape,
                             const std::vector<int64_t> &begin, const std::vector<int64_t> &count,
                             void *dst) const {
  const HfTensorMap map = hfTensorMap(arch_, name, shape);
  if (!map.transpose && map.sources.size() == 1) {
    fileOf(map.sources[0]).readBlock(map.sources[0], dtype, shape, begin, count, dst);
    return;
  }
  // Stacked experts read their sources one by one (dim 0 picks the expert); a transposed
  // source is read as its own block and its last two dims swapped into place.
  const bool stacked = map.sources.size() > 1 || shape.size() == 3;
  const size_t lead = stacked ? 1 : 0, es = dtypeBytes(dtype);
  const std::vector<int64_t> innerBegin(begin.begin() + lead, begin.end());
  const std::vector<int64_t> innerCount(count.begin() + lead, count.end());
  int64_t pieceElements = 1;
  for (int64_t c : innerCount) pieceElements *= c;
  const size_t pieceBytes = size_t(pieceElements) * es;
  std::vector<std::byte> tmp(pieceBytes);
  const int64_t items = stacked ? count[0] : 1;
  auto *out = static_cast<std::byte *>(dst);
  for (int64_t item = 0; item < items; ++item) {
    std::byte *piece = out + size_t(item) * pieceBytes;
    const int64_t e = stacked ? begin[0] + item : 0;
    if (stacked && e >= shape[0]) {  // padding past the last expert
      std::memset(piece, 0, pieceBytes);
      continue;
    }
    const std::string &source = map.sources[size_t(e)];
    if (!map.transpose) {
      fileOf(source).readBlock(source, dtype, map.sourceShape, innerBegin, innerCount, piece);
      continue;
    }
    fileOf(source).readBlock(source, dtype, map.sourceShape, swappedLast(innerBegin),
                             swappedLast(innerCount), tmp.data());
    const int64_t rows = innerCount[0], cols = innerCount[1];  // moeplan's [in, out] block
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        std::memcpy(piece + size_t(r * cols + c) * es, tmp.data() + size_t(c * rows + r) * es, es);
  }
}

} // namespace moeplan::checkpoint
