#include "moeplan/Description/ImportHf.h"
#include "moeplan/Description/Load.h"

#include <google/protobuf/text_format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace moeplan {
namespace {

using Json = nlohmann::json;

// Reads config.json, remembering where each top-level key was written (a config is one flat
// object, so a key's first quoted occurrence followed by ':' is where it is defined).
class Config {
public:
  Config(std::string path, std::string text, Json json, HfImport &out)
      : path_(std::move(path)), text_(std::move(text)), json_(std::move(json)), out_(out) {}

  SourceLocation where(const std::string &key) const {
    const std::string quoted = "\"" + key + "\"";
    for (size_t at = text_.find(quoted); at != std::string::npos; at = text_.find(quoted, at + 1)) {
      size_t after = text_.find_first_not_of(" \t\r\n", at + quoted.size());
      if (after == std::string::npos || text_[after] != ':') continue;
      int line = 1, column = 1;
      for (size_t i = 0; i < at; ++i) {
        if (text_[i] == '\n') ++line, column = 1;
        else ++column;
      }
      return {path_, line, column};
    }
    return {path_, 0, 0};
  }

  void error(const std::string &rule, const std::string &key, const std::string &message) {
    Finding f;
    f.rule = rule;
    f.fieldPath = key;
    f.message = key.empty() ? message : key + " " + message;
    f.location = key.empty() ? SourceLocation{path_, 0, 0} : where(key);
    out_.errors.push_back(std::move(f));
  }

  const Json *find(const std::string &key) const {
    auto it = json_.find(key);
    return it == json_.end() ? nullptr : &*it;
  }
  bool isNullOrAbsent(const std::string &key) const {
    const Json *v = find(key);
    return !v || v->is_null();
  }

  // A positive integer the architecture's config always holds (save_pretrained writes every
  // field of the architecture's config class).
  uint32_t count(const std::string &key, std::optional<uint32_t> dflt = std::nullopt) {
    const Json *v = find(key);
    if (!v || v->is_null()) {
      if (dflt) return *dflt;
      error("hf.config-missing", key, "is missing: moeplan does not guess a class default");
      return 0;
    }
    if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > (1 << 30)) {
      error("hf.config-value", key, "must be a positive integer, got " + v->dump());
      return 0;
    }
    return uint32_t(v->get<int64_t>());
  }
  double positive(const std::string &key) {
    const Json *v = find(key);
    if (!v || v->is_null()) {
      error("hf.config-missing", key, "is missing: moeplan does not guess a class default");
      return 0;
    }
    if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() <= 0) {
      error("hf.config-value", key, "must be a positive number, got " + v->dump());
      return 0;
    }
    return v->get<double>();
  }
  bool flag(const std::string &key, bool dflt) {
    const Json *v = find(key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_boolean()) {
      error("hf.config-value", key, "must be true or false, got " + v->dump());
      return dflt;
    }
    return v->get<bool>();
  }
  std::string string(const std::string &key) const {
    const Json *v = find(key);
    return v && v->is_string() ? v->get<std::string>() : "";
  }
  // A field whose value other than `honoured` moeplan cannot compute.
  void mustBe(const std::string &key, bool honouredIfTrue, const std::string &why) {
    if (!honouredIfTrue) error("hf.config-unsupported", key, why);
  }

private:
  std::string path_, text_;
  Json json_;
  HfImport &out_;
};

} // namespace

HfImport importHf(const std::string &dir, const desc::Deployment *base) {
  const std::string path = dir + "/config.json";
  std::string readError;
  std::optional<std::string> text = readFile(path, readError);
  if (!text) {
    HfImport out;
    // readFile's message starts with the path, which the location already names.
    if (readError.rfind(path + ": ", 0) == 0) readError = readError.substr(path.size() + 2);
    out.errors.push_back({"hf.config-load", Severity::Error, readError, "", {}, {path, 0, 0}});
    return out;
  }
  return importHfConfig(*text, path, dir, base);
}

HfImport importHfConfig(const std::string &text, const std::string &path, const std::string &dir,
                        const desc::Deployment *base) {
  HfImport out;
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::exception &e) {
    out.errors.push_back({"hf.config-load", Severity::Error,
                          std::string("is not valid JSON: ") + e.what(), "", {}, {path, 0, 0}});
    return out;
  }
  if (!json.is_object()) {
    out.errors.push_back({"hf.config-load", Severity::Error, "is not a JSON object", "", {}, {path, 0, 0}});
    return out;
  }
  Config c(path, text, json, out);

  const Json *archs = c.find("architectures");
  if (!archs || !archs->is_array() || archs->size() != 1 || !(*archs)[0].is_string()) {
    c.error("hf.architecture", "architectures", "must list exactly one architecture name");
    return out;
  }
  out.architecture = (*archs)[0].get<std::string>();
  const bool mixtral = out.architecture == "MixtralForCausalLM";
  const bool llama = out.architecture == "LlamaForCausalLM";
  const bool qwen2 = out.architecture == "Qwen2ForCausalLM";
  const bool qwenMoe = out.architecture == "Qwen2MoeForCausalLM";
  if (!mixtral && !llama && !qwen2 && !qwenMoe) {
    c.error("hf.architecture", "architectures",
            "is \"" + out.architecture + "\", not one moeplan describes (MixtralForCausalLM, "
            "Qwen2MoeForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM)");
    return out;
  }

  desc::Deployment d;
  if (base) d = *base;
  desc::Model &m = *d.mutable_model();
  m.Clear();
  m.set_layers(c.count("num_hidden_layers"));
  m.set_d_model(c.count("hidden_size"));
  m.set_heads(c.count("num_attention_heads"));
  // Llama writes num_key_value_heads: null for plain multi-head attention.
  m.set_kv_heads(c.count("num_key_value_heads", m.heads()));
  if (m.heads() && !c.find("head_dim") && m.d_model() % m.heads())
    c.error("hf.config-value", "num_attention_heads",
            "(" + std::to_string(m.heads()) + ") does not divide hidden_size (" +
                std::to_string(m.d_model()) + ") and no head_dim is given");
  m.set_head_dim(c.find("head_dim") ? c.count("head_dim") : m.heads() ? m.d_model() / m.heads() : 0);
  m.set_vocab_size(c.count("vocab_size"));
  m.set_tie_embeddings(c.flag("tie_word_embeddings", false));  // every class's default
  m.set_norm(desc::RMS_NORM);
  m.set_norm_epsilon(c.positive("rms_norm_eps"));
  m.set_rope_theta(c.positive("rope_theta"));
  m.set_activation(desc::SWIGLU);
  c.mustBe("hidden_act", c.string("hidden_act") == "silu",
           "is " + (c.find("hidden_act") ? c.find("hidden_act")->dump() : std::string("missing")) +
               ": moeplan's gated FFN is SwiGLU, silu(gate) x up");
  c.mustBe("rope_scaling", c.isNullOrAbsent("rope_scaling"),
           "is set: moeplan implements plain rotary embeddings, without scaling");
  if (qwen2 || qwenMoe) {
    // Qwen2's q, k and v projections always carry biases; o and the FFNs do not.
    m.set_qkv_bias(true);
    c.mustBe("use_sliding_window", !c.flag("use_sliding_window", false),
             "is true: moeplan's attention is fully causal, without a sliding window");
  } else {
    // Llama's attention_bias puts biases on q, k, v and o alike.
    const bool bias = c.flag("attention_bias", false);
    if (bias) m.set_qkv_bias(true), m.set_attention_out_bias(true);
    m.set_ffn_bias(c.flag("mlp_bias", false));
  }
  const std::string dtype = c.string("torch_dtype");
  if (dtype == "bfloat16") m.set_dtype(desc::BF16);
  else if (dtype == "float16") m.set_dtype(desc::FP16);
  else if (dtype == "float32" || dtype.empty()) m.set_dtype(desc::FP32);
  else c.error("hf.config-value", "torch_dtype", "is \"" + dtype + "\", not bfloat16, float16 or float32");

  if (mixtral) {
    c.mustBe("sliding_window", c.isNullOrAbsent("sliding_window"),
             "is set: moeplan's attention is fully causal, without a sliding window");
    if (const Json *noise = c.find("router_jitter_noise"))
      c.mustBe("router_jitter_noise", noise->is_number() && noise->get<double>() == 0,
               "is not 0: jitter noise perturbs the router, which inference does not");
    m.set_experts(c.count("num_local_experts"));
    m.set_top_k(c.count("num_experts_per_tok"));
    m.set_expert_hidden(c.count("intermediate_size"));
    m.mutable_moe_layers()->set_all(true);
    m.set_renormalize_gates(true);  // Mixtral divides the top-k gates by their sum
    if (m.top_k() > m.experts())
      c.error("hf.config-value", "num_experts_per_tok",
              "(" + std::to_string(m.top_k()) + ") exceeds num_local_experts (" +
                  std::to_string(m.experts()) + ")");
  } else if (qwenMoe) {
    m.set_experts(c.count("num_experts"));
    m.set_top_k(c.count("num_experts_per_tok"));
    m.set_expert_hidden(c.count("moe_intermediate_size"));
    m.set_shared_expert_hidden(c.count("shared_expert_intermediate_size"));
    m.set_shared_expert_gate(true);  // sigmoid(shared_expert_gate(x)) scales it
    m.set_renormalize_gates(c.flag("norm_topk_prob", false));
    if (m.top_k() > m.experts())
      c.error("hf.config-value", "num_experts_per_tok",
              "(" + std::to_string(m.top_k()) + ") exceeds num_experts (" +
                  std::to_string(m.experts()) + ")");
    // Qwen2MoeDecoderLayer: sparse when not in mlp_only_layers and (i + 1) % step == 0.
    const uint32_t step = c.count("decoder_sparse_step", 1);
    std::vector<uint32_t> mlpOnly;
    if (const Json *only = c.find("mlp_only_layers"); only && !only->is_null()) {
      if (!only->is_array()) c.error("hf.config-value", "mlp_only_layers", "must be a list of layer indices");
      else
        for (const Json &v : *only) {
          if (!v.is_number_unsigned()) c.error("hf.config-value", "mlp_only_layers", "must list layer indices, got " + v.dump());
          else mlpOnly.push_back(v.get<uint32_t>());
        }
    }
    desc::LayerList list;
    for (uint32_t i = 0; step && i < m.layers(); ++i)
      if ((i + 1) % step == 0 && std::find(mlpOnly.begin(), mlpOnly.end(), i) == mlpOnly.end())
        list.add_layers(i);
    if (list.layers_size() == int(m.layers())) m.mutable_moe_layers()->set_all(true);
    else if (list.layers_size() == 0) m.mutable_moe_layers()->set_none(true);
    else *m.mutable_moe_layers()->mutable_list() = list;
    if (list.layers_size() < int(m.layers())) m.set_dense_ffn_hidden(c.count("intermediate_size"));
    if (list.layers_size() == 0) m.clear_experts(), m.clear_top_k(), m.clear_expert_hidden(),
                                 m.clear_shared_expert_hidden(), m.clear_shared_expert_gate(),
                                 m.clear_renormalize_gates();
  } else {
    m.set_dense_ffn_hidden(c.count("intermediate_size"));
    m.mutable_moe_layers()->set_none(true);
  }
  if (!d.has_name()) {
    std::string trimmed = dir;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    d.set_name(trimmed.substr(trimmed.find_last_of('/') + 1));
  }
  if (out.errors.empty()) out.deployment = std::move(d);
  return out;
}

std::string formatImportedDescription(const HfImport &imported, const std::string &dir,
                                      const std::string &baseFile) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.PrintToString(*imported.deployment, &text);
  // Names without their directories, so that the text does not depend on where it was made.
  auto last = [](std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  };
  std::string header = "# The model section is " + imported.architecture + " from " + last(dir) +
                       "/config.json (moeplan import-hf)";
  header += baseFile.empty() ? "; add a cluster, workload and strategy, or import with --base.\n"
                             : ";\n# the rest is " + last(baseFile) + "'s.\n";
  return header + text;
}

} // namespace moeplan
