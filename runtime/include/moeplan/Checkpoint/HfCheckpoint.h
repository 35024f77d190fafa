// Hugging Face checkpoints: a model directory as `save_pretrained` writes it (config.json and
// model.safetensors, or shards listed by model.safetensors.index.json), read as if it were a
// checkpoint in moeplan's own tensor names and layout (plan.proto, TensorSlice), so that each
// rank still reads only the bytes of its own shard.
//
// The mapping, per architecture (config.json "architectures"):
//   embedding.weight [V, D]         model.embed_tokens.weight [V, D]
//   lm_head.weight [D, V]           lm_head.weight [V, D]                         (transposed)
//   final_norm.weight               model.norm.weight
//   layers.i.norm1 / norm2.weight   model.layers.i.input_layernorm / post_attention_layernorm
//   layers.i.attention.w{q,k,v,o}   model.layers.i.self_attn.{q,k,v,o}_proj.weight (transposed)
//   layers.i.attention.b{q,k,v,o}   model.layers.i.self_attn.{q,k,v,o}_proj.bias
//   layers.i.router.weight [D, E]   Mixtral: block_sparse_moe.gate; Qwen2-MoE: mlp.gate (transposed)
//   layers.i.experts.w_{gate,up,down} [E, ...]: one tensor per expert e, stacked (transposed):
//                                   Mixtral: block_sparse_moe.experts.e.w1 / w3 / w2;
//                                   Qwen2-MoE: mlp.experts.e.gate_proj / up_proj / down_proj
//   layers.i.ffn.w_{gate,up,down}   model.layers.i.mlp.{gate,up,down}_proj.weight (transposed)
//   layers.i.ffn.b_{gate,up,down}   model.layers.i.mlp.{gate,up,down}_proj.bias (Llama mlp_bias)
//   layers.i.shared_expert.w_*      Qwen2-MoE: mlp.shared_expert.{gate,up,down}_proj (transposed)
//   layers.i.shared_expert_gate.weight [D, 1]   Qwen2-MoE: mlp.shared_expert_gate [1, D]
// nn.Linear stores [out, in]; moeplan's GEMMs read [in, out], hence the transposes.
#pragma once

#include "moeplan/Checkpoint/Safetensors.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moeplan::checkpoint {

enum class HfArchitecture { Llama, Mixtral, Qwen2, Qwen2Moe };
// As config.json's "architectures" names it ("MixtralForCausalLM", ...).
const char *hfArchitectureName(HfArchitecture arch);
std::optional<HfArchitecture> parseHfArchitecture(const std::string &name);

// Where moeplan's tensor `name` of full shape `shape` lies in a checkpoint of `arch`.
struct HfTensorMap {
  std::vector<std::string> sources;   // one tensor, or one per expert stacked along dim 0
  bool transpose = false;             // each source holds its last two dims swapped
  std::vector<int64_t> sourceShape;   // the shape every source must have
};
// Throws CheckpointError when `arch` has no tensor for `name`.
HfTensorMap hfTensorMap(HfArchitecture arch, const std::string &name,
                        const std::vector<int64_t> &shape);

class HfCheckpoint {
public:
  // Reads config.json (its "architectures") and the safetensors headers; tensor data stays on
  // disk. Throws CheckpointError "DIR/file: what is wrong".
  static HfCheckpoint open(const std::string &dir);

  HfCheckpoint(HfCheckpoint &&) noexcept;
  HfCheckpoint &operator=(HfCheckpoint &&) noexcept;
  ~HfCheckpoint();

  const std::string &dir() const { return dir_; }
  HfArchitecture architecture() const { return arch_; }
  // config.json's value at `key` as text (a number, true/false, null, or a string's
  // contents); empty when absent. For the caller's consistency checks.
  std::string configValue(const std::string &key) const;
  bool hasConfig(const std::string &key) const;

  // The model holds exactly these moeplan tensors (name -> full shape): every one must map
  // to tensors present with their shapes in a float dtype, and the checkpoint may hold no
  // tensor the model does not use. Throws CheckpointError naming every problem (up to 20).
  void checkTensors(const std::map<std::string, std::vector<int64_t>> &model) const;

  // As SafetensorsReader's, in moeplan's names and layout: the dtype the file stores moeplan
  // tensor `name` in (every stacked source alike), and the block [begin, begin + count) of it.
  DType dtypeOf(const std::string &name, const std::vector<int64_t> &shape) const;
  void readBlock(const std::string &name, DType dtype, const std::vector<int64_t> &shape,
                 const std::vector<int64_t> &begin, const std::vector<int64_t> &count,
                 void *dst) const;

private:
  HfCheckpoint() = default;
  const SafetensorsReader &fileOf(const std::string &tensor) const;

  std::string dir_;
  HfArchitecture arch_ = HfArchitecture::Llama;
  struct Config;
  std::unique_ptr<Config> config_;
  std::vector<SafetensorsReader> files_;
  std::map<std::string, size_t> fileOf_;  // tensor -> index into files_
};

// Whether `path` is a directory (a Hugging Face model directory rather than a file).
bool isDirectory(const std::string &path);

} // namespace moeplan::checkpoint
