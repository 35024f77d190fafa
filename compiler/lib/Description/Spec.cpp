#include "moeplan/Description/Spec.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>

namespace moeplan {

const char *axisName(Axis a) {
  switch (a) {
  case Axis::TP: return "tp";
  case Axis::EP: return "ep";
  case Axis::DP: return "dp";
  case Axis::PP: return "pp";
  }
  return "?";
}

bool ModelSpec::isMoeLayer(int64_t layer) const {
  if (!moeLayerList.empty())
    return std::binary_search(moeLayerList.begin(), moeLayerList.end(), layer);
  return moeEveryNth > 0 && layer % moeEveryNth == 0;
}

int64_t ModelSpec::moeLayerCount() const {
  if (!moeLayerList.empty()) return int64_t(moeLayerList.size());
  if (moeEveryNth <= 0) return 0;
  return (layers + moeEveryNth - 1) / moeEveryNth;  // layers 0, n, 2n, ... below `layers`
}

int64_t ModelSpec::bytesPerParam() const {
  switch (dtype) {
  case desc::FP32: return 4;
  case desc::FP8: return 1;
  default: return 2;
  }
}

int64_t StrategySpec::expertDp() const {
  int64_t expertGrid = expertTp * ep;
  if (expertGrid <= 0 || (tp * dp) % expertGrid != 0) return 0;
  return tp * dp / expertGrid;
}

std::string StrategySpec::str() const {
  std::ostringstream s;
  s << "tp " << tp << " pp " << pp << " dp " << dp << " ep " << ep << " expert_tp " << expertTp
    << " micro_batches " << microBatches;
  if (overlap == desc::DUAL_MICRO_BATCH) s << " dual";
  return s.str();
}

std::string formatRankOrder(const std::vector<Axis> &order) {
  std::string s;
  for (Axis a : order) s += (s.empty() ? "" : "-") + std::string(axisName(a));
  return s;
}

std::optional<std::vector<Axis>> parseRankOrder(const std::string &s, std::string &error) {
  std::vector<Axis> order;
  std::set<std::string> seen;
  size_t begin = 0;
  for (;;) {
    size_t dash = s.find('-', begin);
    std::string token = s.substr(begin, dash == std::string::npos ? std::string::npos : dash - begin);
    Axis a;
    if (token == "tp") a = Axis::TP;
    else if (token == "ep") a = Axis::EP;
    else if (token == "dp") a = Axis::DP;
    else if (token == "pp") a = Axis::PP;
    else {
      error = token.empty() ? "an axis name is empty (a leading, trailing or doubled '-')"
                            : "unknown axis '" + token + "' (axes are tp, ep, dp, pp; cp is not supported)";
      return std::nullopt;
    }
    if (!seen.insert(token).second) {
      error = "axis '" + token + "' appears twice";
      return std::nullopt;
    }
    order.push_back(a);
    if (dash == std::string::npos) break;
    begin = dash + 1;
  }
  if (order.size() != 4) {
    error = "must name each of tp, ep, dp, pp exactly once, e.g. \"tp-ep-dp-pp\"";
    return std::nullopt;
  }
  return order;
}

namespace {

// Reads fields one by one, recording a finding for each that is missing or out of range.
class FieldChecker {
public:
  explicit FieldChecker(std::vector<Finding> &out) : out_(out) {}

  void report(const std::string &rule, const std::string &path, const std::string &message,
              Severity sev = Severity::Error, std::vector<FindingValue> values = {}) {
    Finding f;
    f.rule = rule;
    f.severity = sev;
    f.fieldPath = path;
    f.message = path + " " + message;
    f.values = std::move(values);
    out_.push_back(std::move(f));
  }
  void missing(const std::string &path, const std::string &why = "") {
    report("field.required", path, "is required" + why);
  }

  // A positive count, at most `limit`.
  int64_t count(bool has, uint64_t v, const std::string &path, int64_t limit,
                std::optional<int64_t> dflt = std::nullopt) {
    if (!has) {
      if (dflt) return *dflt;
      missing(path);
      return 0;
    }
    if (v == 0) {
      report("field.positive", path, "must be at least 1, got 0", Severity::Error, {{path, 0}});
      return 0;
    }
    if (v > static_cast<uint64_t>(limit)) {
      report("field.limit", path,
             "is " + std::to_string(v) + ", above the limit of " + std::to_string(limit) +
                 " for this field",
             Severity::Error, {{path, double(v)}, {"limit", double(limit)}});
      return 0;
    }
    return static_cast<int64_t>(v);
  }

  // A finite real in (0, limit].
  double positive(bool has, double v, const std::string &path, double limit,
                  std::optional<double> dflt = std::nullopt) {
    if (!has) {
      if (dflt) return *dflt;
      missing(path);
      return 0;
    }
    if (!std::isfinite(v)) {
      report("field.finite", path, "must be a finite number, got " + formatNumber(v));
      return 0;
    }
    if (v <= 0) {
      report("field.positive", path, "must be greater than 0, got " + formatNumber(v),
             Severity::Error, {{path, v}});
      return 0;
    }
    if (v > limit) {
      report("field.limit", path,
             "is " + formatNumber(v) + ", above the limit of " + formatNumber(limit),
             Severity::Error, {{path, v}, {"limit", limit}});
      return 0;
    }
    return v;
  }

  // A share in (0, 1], or [0, 1] when zero is meaningful.
  std::optional<double> fraction(bool has, double v, const std::string &path, bool required,
                                 bool allowZero = false) {
    if (!has) {
      if (required) missing(path);
      return std::nullopt;
    }
    bool ok = std::isfinite(v) && v <= 1 && (allowZero ? v >= 0 : v > 0);
    if (!ok) {
      report("field.fraction", path,
             std::string("must be a fraction in ") + (allowZero ? "[0, 1]" : "(0, 1]") +
                 " (0.9 for 90%), got " + formatNumber(v),
             Severity::Error, {{path, v}});
      return std::nullopt;
    }
    return v;
  }

  // proto3 enums are open: text format accepts any number, so names are checked here.
  template <typename Enum>
  Enum enumValue(bool has, Enum v, Enum unspecified, bool (*isValid)(int),
                 const std::string &path, std::optional<Enum> dflt = std::nullopt) {
    if (has && !isValid(int(v))) {
      report("field.enum", path, "is " + std::to_string(int(v)) + ", which names no value");
      return unspecified;
    }
    if (!has || v == unspecified) {
      if (dflt) return *dflt;
      missing(path, has ? " (the UNSPECIFIED value does not count)" : "");
    }
    return v;
  }

private:
  std::vector<Finding> &out_;
};

using L = FieldLimits;

void resolveModel(const desc::Model &m, ModelSpec &s, FieldChecker &c) {
  s.layers = c.count(m.has_layers(), m.layers(), "model.layers", L::kLayers);
  s.dModel = c.count(m.has_d_model(), m.d_model(), "model.d_model", L::kDModel);
  s.heads = c.count(m.has_heads(), m.heads(), "model.heads", L::kHeads);
  s.headDim = c.count(m.has_head_dim(), m.head_dim(), "model.head_dim", L::kHeadDim);
  s.kvHeads = c.count(m.has_kv_heads(), m.kv_heads(), "model.kv_heads", L::kHeads, s.heads);

  switch (m.moe_layers().pattern_case()) {
  case desc::MoeLayers::kAll:
  case desc::MoeLayers::PATTERN_NOT_SET: s.moeEveryNth = 1; break;
  case desc::MoeLayers::kNone: s.moeEveryNth = 0; break;
  case desc::MoeLayers::kEveryNth:
    s.moeEveryNth = c.count(true, m.moe_layers().every_nth(), "model.moe_layers.every_nth",
                            L::kLayers);
    break;
  case desc::MoeLayers::kList: {
    const auto &layers = m.moe_layers().list().layers();
    if (layers.empty())
      c.report("field.value", "model.moe_layers.list",
               "lists no layer; use `none: true` for a dense model");
    for (int i = 0; i < layers.size(); ++i) {
      const std::string path = "model.moe_layers.list.layers[" + std::to_string(i) + "]";
      if (s.layers > 0 && int64_t(layers[i]) >= s.layers)
        c.report("field.range", path, "is layer " + std::to_string(layers[i]) +
                                          ", but the model has layers 0.." +
                                          std::to_string(s.layers - 1));
      else if (i > 0 && layers[i] <= layers[i - 1])
        c.report("field.value", path, "is " + std::to_string(layers[i]) +
                                          ": list the layers once each, ascending");
      else
        s.moeLayerList.push_back(layers[i]);
    }
    if (s.moeLayerList.empty()) s.moeEveryNth = 0;  // nothing usable: no MoE layer
    break;
  }
  }
  if (m.moe_layers().pattern_case() == desc::MoeLayers::kAll && !m.moe_layers().all())
    c.report("field.value", "model.moe_layers.all",
             "must be true when written; use `none: true` for a dense model");
  if (m.moe_layers().pattern_case() == desc::MoeLayers::kNone && !m.moe_layers().none())
    c.report("field.value", "model.moe_layers.none",
             "must be true when written; use `all: true` for an all-MoE model");

  bool hasMoe = !s.moeLayerList.empty() || s.moeEveryNth > 0;
  bool hasDense = s.moeLayerList.empty() ? s.moeEveryNth != 1
                                         : int64_t(s.moeLayerList.size()) < s.layers;
  // Expert fields are required exactly when some layer is MoE; a dense model may omit them.
  const std::string moeWhy = " because the model has MoE layers";
  auto expertField = [&](bool has, uint32_t v, const std::string &path, int64_t limit) {
    if (!has && hasMoe) {
      c.missing(path, moeWhy);
      return int64_t(0);
    }
    return c.count(has, v, path, limit, int64_t(0));
  };
  s.experts = expertField(m.has_experts(), m.experts(), "model.experts", L::kExperts);
  s.topK = expertField(m.has_top_k(), m.top_k(), "model.top_k", L::kExperts);
  s.expertHidden =
      expertField(m.has_expert_hidden(), m.expert_hidden(), "model.expert_hidden", L::kHidden);
  if (hasDense && !m.has_dense_ffn_hidden())
    c.missing("model.dense_ffn_hidden", " because some layers are dense (not MoE)");
  else if (m.has_dense_ffn_hidden())
    s.denseFfnHidden = c.count(true, m.dense_ffn_hidden(), "model.dense_ffn_hidden", L::kHidden);

  s.norm = c.enumValue(m.has_norm(), m.norm(), desc::NORM_UNSPECIFIED, desc::Norm_IsValid,
                       "model.norm");
  s.activation = c.enumValue(m.has_activation(), m.activation(), desc::ACTIVATION_UNSPECIFIED,
                             desc::Activation_IsValid, "model.activation");
  s.dtype = c.enumValue(m.has_dtype(), m.dtype(), desc::DTYPE_UNSPECIFIED, desc::DType_IsValid,
                        "model.dtype");
  if (m.has_vocab_size())
    s.vocab = c.count(true, m.vocab_size(), "model.vocab_size", L::kVocab);
  s.tieEmbeddings = m.tie_embeddings();
  // linear_bias is the default of every group.
  s.qkvBias = m.has_qkv_bias() ? m.qkv_bias() : m.linear_bias();
  s.outBias = m.has_attention_out_bias() ? m.attention_out_bias() : m.linear_bias();
  s.ffnBias = m.has_ffn_bias() ? m.ffn_bias() : m.linear_bias();
  if (m.has_shared_expert_hidden()) {
    if (!hasMoe)
      c.report("field.value", "model.shared_expert_hidden",
               "is given, but the model has no MoE layer to hold a shared expert");
    else
      s.sharedExpertHidden =
          c.count(true, m.shared_expert_hidden(), "model.shared_expert_hidden", L::kHidden);
  }
  s.sharedExpertGate = m.shared_expert_gate();
  if (s.sharedExpertGate && !m.has_shared_expert_hidden())
    c.report("field.value", "model.shared_expert_gate",
             "needs model.shared_expert_hidden (no shared expert to gate)");
  if (m.has_tie_embeddings() && m.tie_embeddings() && !m.has_vocab_size())
    c.report("field.value", "model.tie_embeddings", "needs model.vocab_size (no embedding)");
  if (m.has_declared_params())
    s.declaredParams = c.positive(true, m.declared_params(), "model.declared_params", 1e16);
  if (m.has_norm_epsilon())
    s.normEpsilon = c.positive(true, m.norm_epsilon(), "model.norm_epsilon", 1.0);
  if (m.has_rope_theta()) {
    s.ropeTheta = c.positive(true, m.rope_theta(), "model.rope_theta", 1e12);
    if (s.headDim % 2)
      c.report("field.value", "model.rope_theta",
               "needs an even head_dim: rotary embeddings rotate pairs of dimensions, and "
               "head_dim is " + std::to_string(s.headDim));
  }
  s.renormalizeGates = m.renormalize_gates();
}

void resolveCluster(const desc::Cluster &cl, ClusterSpec &s, FieldChecker &c) {
  s.nodes = c.count(cl.has_nodes(), cl.nodes(), "cluster.nodes", L::kNodes);
  s.gpusPerNode =
      c.count(cl.has_gpus_per_node(), cl.gpus_per_node(), "cluster.gpus_per_node",
              L::kGpusPerNode);
  if (s.nodes * s.gpusPerNode > L::kGpus) {
    c.report("field.limit", "cluster.nodes",
             "x gpus_per_node is " + std::to_string(s.nodes * s.gpusPerNode) +
                 " GPUs, above the limit of " + std::to_string(L::kGpus));
    s.nodes = 0;
  }
  if (!cl.has_gpu()) {
    c.missing("cluster.gpu");
  } else {
    const desc::Gpu &g = cl.gpu();
    s.peakFlops = 1e12 * c.positive(g.has_peak_tflops(), g.peak_tflops(),
                                    "cluster.gpu.peak_tflops", L::kTflops);
    s.mfu = c.fraction(g.has_mfu(), g.mfu(), "cluster.gpu.mfu", true).value_or(0);
    s.memoryBytes =
        1e9 * c.positive(g.has_memory_gb(), g.memory_gb(), "cluster.gpu.memory_gb", L::kMemoryGb);
    s.memoryBandwidth = 1e12 * c.positive(g.has_memory_bandwidth_tb_per_s(),
                                          g.memory_bandwidth_tb_per_s(),
                                          "cluster.gpu.memory_bandwidth_tb_per_s", L::kBandwidthTb);
    s.memoryBandwidthUtil =
        c.fraction(g.has_memory_bandwidth_utilization(), g.memory_bandwidth_utilization(),
                   "cluster.gpu.memory_bandwidth_utilization", true)
            .value_or(0);
    for (int i = 0; i < g.gemm_efficiency_size(); ++i) {
      const desc::GemmEfficiency &e = g.gemm_efficiency(i);
      const std::string path = "cluster.gpu.gemm_efficiency[" + std::to_string(i) + "]";
      const double rows = c.positive(e.has_rows(), e.rows(), path + ".rows", 1e12);
      const std::optional<double> share = c.fraction(e.has_efficiency(), e.efficiency(), path + ".efficiency", true);
      if (rows > 0 && rows < 1)
        c.report("field.limit", path + ".rows", "is " + formatNumber(rows) + ", below 1 row");
      else if (rows > 0 && !s.gemmEfficiency.empty() && rows <= s.gemmEfficiency.back().first)
        c.report("field.order", path + ".rows",
                 "is " + formatNumber(rows) + ", not above the previous point's " +
                     formatNumber(s.gemmEfficiency.back().first) + ": points go by increasing rows");
      else if (rows > 0 && share)
        s.gemmEfficiency.emplace_back(rows, *share);
    }
    s.computeJitter = c.fraction(g.has_compute_jitter(), g.compute_jitter(),
                                 "cluster.gpu.compute_jitter", false, /*allowZero=*/true)
                          .value_or(0);
    if (g.has_launch_overhead_us()) {
      const double us = g.launch_overhead_us();
      if (!std::isfinite(us) || us < 0 || us > 1e6)
        c.report("field.limit", "cluster.gpu.launch_overhead_us",
                 "must be a finite time of 0 to 1e6 microseconds, got " + formatNumber(us));
      else
        s.launchOverheadS = us * 1e-6;
    }
    if (g.has_kernel_rates()) {
      const desc::KernelRates &k = g.kernel_rates();
      auto rate = [&](bool has, double v, const char *field, double &out) {
        if (has)
          out = 1e9 * c.positive(true, v, std::string("cluster.gpu.kernel_rates.") + field,
                                 1e3 * L::kBandwidthTb);
      };
      rate(k.has_layer_norm_gb_per_s(), k.layer_norm_gb_per_s(), "layer_norm_gb_per_s", s.kernelRates.layerNorm);
      rate(k.has_rms_norm_gb_per_s(), k.rms_norm_gb_per_s(), "rms_norm_gb_per_s", s.kernelRates.rmsNorm);
      rate(k.has_gelu_gb_per_s(), k.gelu_gb_per_s(), "gelu_gb_per_s", s.kernelRates.gelu);
      rate(k.has_swiglu_gb_per_s(), k.swiglu_gb_per_s(), "swiglu_gb_per_s", s.kernelRates.swiglu);
      rate(k.has_router_gb_per_s(), k.router_gb_per_s(), "router_gb_per_s", s.kernelRates.router);
    }
  }
  auto link = [&](bool has, const desc::Link &l, const std::string &path, bool needed,
                  const std::string &why, LinkSpec &out) {
    if (!has && !needed) return;
    if (!has) {
      c.missing(path, why);
      return;
    }
    out.bandwidthBytesPerS = 1e9 * c.positive(l.has_bandwidth_gb_per_s(), l.bandwidth_gb_per_s(),
                                              path + ".bandwidth_gb_per_s", 1e3 * L::kBandwidthTb);
    if (!l.has_latency_us()) {
      c.report("field.default", path + ".latency_us",
               "is not given: collective latency is taken as 0, so communication times are "
               "lower bounds",
               Severity::Note);
    } else if (l.latency_us() != 0) {
      out.latencyS = 1e-6 * c.positive(true, l.latency_us(), path + ".latency_us", L::kLatencyUs);
    }
    if (l.has_reduce_gb_per_s())
      out.reduceBytesPerS = 1e9 * c.positive(true, l.reduce_gb_per_s(), path + ".reduce_gb_per_s",
                                             1e3 * L::kBandwidthTb);
  };
  link(cl.has_intra_node(), cl.intra_node(), "cluster.intra_node", s.gpusPerNode > 1,
       " because a node has more than one GPU", s.intraNode);
  link(cl.has_inter_node(), cl.inter_node(), "cluster.inter_node", s.nodes > 1,
       " because the cluster has more than one node", s.interNode);
}

void resolveWorkload(const desc::Workload &w, WorkloadSpec &s, FieldChecker &c) {
  s.sequences = c.count(w.has_sequences(), w.sequences(), "workload.sequences", L::kSequences);
  s.phase = c.enumValue(w.has_phase(), w.phase(), desc::PHASE_UNSPECIFIED, desc::Phase_IsValid,
                        "workload.phase");
  if (s.phase == desc::GENERATE) {
    // The prompt is the prefill's sequence length; the cache grows to prompt + new - 1.
    if (w.seq_case() != desc::Workload::SEQ_NOT_SET)
      c.report("field.value",
               w.seq_case() == desc::Workload::kSeqLen ? "workload.seq_len" : "workload.seq_len_range",
               "does not apply to phase GENERATE, whose prefill length is workload.prompt_len");
    s.seqLenMin = s.seqLenMax =
        c.count(w.has_prompt_len(), w.prompt_len(), "workload.prompt_len", L::kSeqLen);
    s.newTokens = c.count(w.has_new_tokens(), w.new_tokens(), "workload.new_tokens", L::kSeqLen);
    if (s.seqLenMax > 0 && s.newTokens > 0 && s.cachePositions() > L::kSeqLen)
      c.report("field.limit", "workload.new_tokens",
               "makes a KV cache of " + std::to_string(s.cachePositions()) +
                   " positions (prompt_len + new_tokens - 1), above the limit of " +
                   std::to_string(L::kSeqLen),
               Severity::Error, {{"positions", double(s.cachePositions())}, {"limit", double(L::kSeqLen)}});
    if (w.has_kv_cache_len())
      c.report("field.value", "workload.kv_cache_len",
               "does not apply to phase GENERATE, whose cache holds prompt_len + new_tokens - 1 positions");
  } else {
    for (auto [has, path] : {std::pair{w.has_prompt_len(), "workload.prompt_len"},
                             std::pair{w.has_new_tokens(), "workload.new_tokens"}})
      if (has)
        c.report("field.unused", path, "applies only to phase GENERATE; ignored", Severity::Warning);
  }
  if (s.phase != desc::GENERATE) switch (w.seq_case()) {
  case desc::Workload::SEQ_NOT_SET: c.missing("workload.seq_len", " (or workload.seq_len_range)"); break;
  case desc::Workload::kSeqLen:
    s.seqLenMin = s.seqLenMax = c.count(true, w.seq_len(), "workload.seq_len", L::kSeqLen);
    break;
  case desc::Workload::kSeqLenRange: {
    const desc::SeqLenRange &r = w.seq_len_range();
    s.seqLenMin = c.count(r.has_min(), r.min(), "workload.seq_len_range.min", L::kSeqLen);
    s.seqLenMax = c.count(r.has_max(), r.max(), "workload.seq_len_range.max", L::kSeqLen);
    if (s.seqLenMin > 0 && s.seqLenMax > 0 && s.seqLenMin > s.seqLenMax)
      c.report("field.range-order", "workload.seq_len_range.min",
               "(" + std::to_string(s.seqLenMin) + ") is greater than max (" +
                   std::to_string(s.seqLenMax) + ")",
               Severity::Error, {{"min", double(s.seqLenMin)}, {"max", double(s.seqLenMax)}});
    break;
  }
  }
  if (s.phase == desc::DECODE) {
    s.kvCacheLen = c.count(w.has_kv_cache_len(), w.kv_cache_len(), "workload.kv_cache_len",
                           L::kSeqLen);
  } else if (w.has_kv_cache_len() && s.phase != desc::GENERATE) {
    c.report("field.unused", "workload.kv_cache_len", "applies only to phase DECODE; ignored",
             Severity::Warning);
  }
  double total = 0;
  for (int i = 0; i < w.expert_load_size(); ++i) {
    double v = w.expert_load(i);
    std::string path = "workload.expert_load[" + std::to_string(i) + "]";
    if (!std::isfinite(v) || v < 0)
      c.report("field.load", path, "must be a finite load of at least 0", Severity::Error,
               {{"expert_load", v}});
    else
      total += v;
    s.expertLoad.push_back(v);
  }
  if (w.expert_load_size() > 0 && total <= 0)
    c.report("field.load", "workload.expert_load", "must give some expert a positive load",
             Severity::Error);
  for (int i = 0; i < w.routing_stickiness_size(); ++i) {
    const double v = w.routing_stickiness(i);
    if (!(v >= 0 && v <= L::kStickiness))
      c.report("field.stickiness", "workload.routing_stickiness[" + std::to_string(i) + "]",
               "must be a probability in [0, " + formatNumber(L::kStickiness) + "], got " +
                   formatNumber(v),
               Severity::Error, {{"routing_stickiness", v}});
    s.routingStickiness.push_back(v);
  }
}

void resolveStrategy(const desc::Strategy &st, StrategySpec &s, FieldChecker &c) {
  s.tp = c.count(st.has_tp(), st.tp(), "strategy.tp", L::kDegree, 1);
  s.pp = c.count(st.has_pp(), st.pp(), "strategy.pp", L::kDegree, 1);
  s.dp = c.count(st.has_dp(), st.dp(), "strategy.dp", L::kDegree, 1);
  s.ep = c.count(st.has_ep(), st.ep(), "strategy.ep", L::kDegree, 1);
  s.expertTpDefaulted = !st.has_expert_tp();
  s.expertTp = c.count(st.has_expert_tp(), st.expert_tp(), "strategy.expert_tp", L::kDegree, s.tp);
  s.microBatches = c.count(st.has_micro_batches(), st.micro_batches(), "strategy.micro_batches",
                           L::kSequences, 1);
  if (st.has_capacity_factor())
    s.capacityFactor =
        c.positive(true, st.capacity_factor(), "strategy.capacity_factor", double(L::kExperts));
  s.dispatchGroups = c.count(st.has_dispatch_groups(), st.dispatch_groups(),
                             "strategy.dispatch_groups", L::kSequences, 1);
  s.dropPolicy = c.enumValue(st.has_drop_policy(), st.drop_policy(), desc::DROP_POLICY_UNSPECIFIED,
                             desc::DropPolicy_IsValid, "strategy.drop_policy",
                             std::optional(desc::POSITION));
  if (st.has_drop_policy() && !st.has_capacity_factor())
    c.report("field.unused", "strategy.drop_policy",
             "applies only with a capacity_factor (without one no choice is dropped); ignored",
             Severity::Warning);
  s.schedule = c.enumValue(st.has_schedule(), st.schedule(), desc::SCHEDULE_UNSPECIFIED,
                           desc::Schedule_IsValid, "strategy.schedule",
                           std::optional(desc::ONE_F_ONE_B));
  s.overlap = c.enumValue(st.has_overlap(), st.overlap(), desc::OVERLAP_UNSPECIFIED,
                          desc::Overlap_IsValid, "strategy.overlap",
                          std::optional(desc::NO_OVERLAP));
  if (st.has_rank_order()) {
    std::string error;
    if (auto order = parseRankOrder(st.rank_order(), error))
      s.rankOrder = *order;
    else
      c.report("field.rank-order", "strategy.rank_order",
               "\"" + st.rank_order() + "\" is malformed: " + error);
  }
  for (int i = 0; i < st.placement_size(); ++i) {
    const desc::StagePlacement &p = st.placement(i);
    std::string path = "strategy.placement[" + std::to_string(i) + "]";
    StagePlacementSpec sp;
    sp.index = i;
    if (!p.has_stage()) c.missing(path + ".stage");
    else if (p.stage() > L::kDegree)
      c.report("field.limit", path + ".stage", "is " + std::to_string(p.stage()) + ", too large");
    else
      sp.stage = p.stage();
    if (p.gpus_size() == 0) c.missing(path + ".gpus", " (the GPUs serving this stage)");
    for (int g = 0; g < p.gpus_size(); ++g) sp.gpus.push_back(p.gpus(g));
    if (p.has_first_layer() != p.has_last_layer())
      c.report("field.required", path + (p.has_first_layer() ? ".last_layer" : ".first_layer"),
               "must be given together with its partner (first_layer and last_layer)");
    if (p.has_first_layer() && p.has_last_layer()) {
      sp.firstLayer = p.first_layer();
      sp.lastLayer = p.last_layer();
      if (p.first_layer() > p.last_layer())
        c.report("field.range-order", path + ".first_layer",
                 "(" + std::to_string(p.first_layer()) + ") is after last_layer (" +
                     std::to_string(p.last_layer()) + ")");
    }
    s.placement.push_back(std::move(sp));
  }
}

void resolveRequirements(const desc::Requirements &r, RequirementsSpec &s, FieldChecker &c) {
  const double kHuge = 1e18;
  if (r.has_max_latency_ms())
    s.maxLatencyMs = c.positive(true, r.max_latency_ms(), "requirements.max_latency_ms", kHuge);
  if (r.has_min_throughput_tokens_per_s())
    s.minThroughputTokensPerS =
        c.positive(true, r.min_throughput_tokens_per_s(),
                   "requirements.min_throughput_tokens_per_s", kHuge);
  if (r.has_max_memory_per_gpu_gb())
    s.maxMemoryPerGpuGb = c.positive(true, r.max_memory_per_gpu_gb(),
                                     "requirements.max_memory_per_gpu_gb", L::kMemoryGb);
  s.minLoadBalance = c.fraction(r.has_min_load_balance(), r.min_load_balance(),
                                "requirements.min_load_balance", false);
  s.maxCommOverhead = c.fraction(r.has_max_comm_overhead(), r.max_comm_overhead(),
                                 "requirements.max_comm_overhead", false, true);
  s.minGpuUtilization = c.fraction(r.has_min_gpu_utilization(), r.min_gpu_utilization(),
                                   "requirements.min_gpu_utilization", false);
  if (r.has_max_ttft_ms())
    s.maxTtftMs = c.positive(true, r.max_ttft_ms(), "requirements.max_ttft_ms", kHuge);
  if (r.has_max_tpot_ms())
    s.maxTpotMs = c.positive(true, r.max_tpot_ms(), "requirements.max_tpot_ms", kHuge);
  if (r.has_min_decode_tokens_per_s())
    s.minDecodeTokensPerS = c.positive(true, r.min_decode_tokens_per_s(),
                                       "requirements.min_decode_tokens_per_s", kHuge);
}

void resolveClaims(const desc::Claims &k, ClaimsSpec &s, FieldChecker &c) {
  const double kHuge = 1e18;
  if (k.has_tolerance()) s.tolerance = c.positive(true, k.tolerance(), "claims.tolerance", 10);
  auto real = [&](bool has, double v, const char *field, std::optional<double> &out) {
    if (has) out = c.positive(true, v, std::string("claims.") + field, kHuge);
  };
  auto share = [&](bool has, double v, const char *field, std::optional<double> &out) {
    out = c.fraction(has, v, std::string("claims.") + field, false, true);
  };
  auto count = [&](bool has, uint64_t v, const char *field, std::optional<int64_t> &out) {
    if (has) out = c.count(true, v, std::string("claims.") + field, L::kGpus);
  };
  real(k.has_latency_ms(), k.latency_ms(), "latency_ms", s.latencyMs);
  real(k.has_throughput_tokens_per_s(), k.throughput_tokens_per_s(), "throughput_tokens_per_s",
       s.throughputTokensPerS);
  real(k.has_sequences_per_s(), k.sequences_per_s(), "sequences_per_s", s.sequencesPerS);
  real(k.has_memory_per_gpu_gb(), k.memory_per_gpu_gb(), "memory_per_gpu_gb", s.memoryPerGpuGb);
  real(k.has_weights_per_gpu_gb(), k.weights_per_gpu_gb(), "weights_per_gpu_gb",
       s.weightsPerGpuGb);
  real(k.has_activations_per_gpu_gb(), k.activations_per_gpu_gb(), "activations_per_gpu_gb",
       s.activationsPerGpuGb);
  share(k.has_memory_utilization(), k.memory_utilization(), "memory_utilization",
        s.memoryUtilization);
  share(k.has_comm_overhead(), k.comm_overhead(), "comm_overhead", s.commOverhead);
  share(k.has_load_balance(), k.load_balance(), "load_balance", s.loadBalance);
  share(k.has_gpu_utilization(), k.gpu_utilization(), "gpu_utilization", s.gpuUtilization);
  share(k.has_pipeline_bubble(), k.pipeline_bubble(), "pipeline_bubble", s.pipelineBubble);
  real(k.has_layer_compute_ms(), k.layer_compute_ms(), "layer_compute_ms", s.layerComputeMs);
  real(k.has_collective_ms(), k.collective_ms(), "collective_ms", s.collectiveMs);
  count(k.has_gpus(), k.gpus(), "gpus", s.gpus);
  if (k.has_idle_gpus()) s.idleGpus = int64_t(std::min<uint64_t>(k.idle_gpus(), L::kGpus));
  count(k.has_experts_per_gpu(), k.experts_per_gpu(), "experts_per_gpu", s.expertsPerGpu);
  count(k.has_heads_per_gpu(), k.heads_per_gpu(), "heads_per_gpu", s.headsPerGpu);
  count(k.has_batch_sequences(), k.batch_sequences(), "batch_sequences", s.batchSequences);
}

void resolveSearch(const desc::Search &k, SearchSpec &s, FieldChecker &c) {
  auto list = [&](const google::protobuf::RepeatedField<uint32_t> &in, const char *field,
                  int64_t limit, std::vector<int64_t> &out) {
    for (int i = 0; i < in.size(); ++i)
      out.push_back(c.count(true, in[i], "search." + std::string(field) + "[" +
                                             std::to_string(i) + "]", limit));
  };
  list(k.tp(), "tp", L::kDegree, s.tp);
  list(k.pp(), "pp", L::kDegree, s.pp);
  list(k.dp(), "dp", L::kDegree, s.dp);
  list(k.ep(), "ep", L::kDegree, s.ep);
  list(k.expert_tp(), "expert_tp", L::kDegree, s.expertTp);
  list(k.micro_batches(), "micro_batches", L::kSequences, s.microBatches);
  for (int i = 0; i < k.schedule_size(); ++i)
    s.schedules.push_back(c.enumValue(true, desc::Schedule(k.schedule(i)),
                                      desc::SCHEDULE_UNSPECIFIED, desc::Schedule_IsValid,
                                      "search.schedule[" + std::to_string(i) + "]"));
  for (int i = 0; i < k.overlap_size(); ++i)
    s.overlaps.push_back(c.enumValue(true, desc::Overlap(k.overlap(i)), desc::OVERLAP_UNSPECIFIED,
                                     desc::Overlap_IsValid,
                                     "search.overlap[" + std::to_string(i) + "]"));
  for (int i = 0; i < k.capacity_factor_size(); ++i)
    s.capacityFactors.push_back(c.positive(true, k.capacity_factor(i),
                                           "search.capacity_factor[" + std::to_string(i) + "]",
                                           double(L::kExperts)));
  s.noCapacityLimit = k.has_no_capacity_limit() && k.no_capacity_limit();
  for (int i = 0; i < k.rank_order_size(); ++i) {
    std::string error;
    if (auto order = parseRankOrder(k.rank_order(i), error))
      s.rankOrders.push_back(*order);
    else
      c.report("field.rank-order", "search.rank_order[" + std::to_string(i) + "]",
               "\"" + k.rank_order(i) + "\" is malformed: " + error);
  }
  s.minGpus = c.count(k.has_min_gpus(), k.min_gpus(), "search.min_gpus", L::kGpus, 1);
  s.maxGpus = c.count(k.has_max_gpus(), k.max_gpus(), "search.max_gpus", L::kGpus, 0);
  if (k.has_min_gpus() && k.has_max_gpus() && s.minGpus > s.maxGpus)
    c.report("field.range-order", "search.min_gpus",
             "(" + std::to_string(s.minGpus) + ") is greater than search.max_gpus (" +
                 std::to_string(s.maxGpus) + ")");
}

} // namespace

std::vector<int64_t> WorkloadSpec::seqPoints(int count) const {
  if (phase == desc::DECODE || seqLenMin >= seqLenMax || count <= 1) return {seqLenMax};
  const int64_t grain = std::gcd(seqLenMin, seqLenMax);
  std::vector<int64_t> points{seqLenMin};
  for (int i = 1; i + 1 < count; ++i) {
    double x = std::exp(std::log(double(seqLenMin)) +
                        (std::log(double(seqLenMax)) - std::log(double(seqLenMin))) * i /
                            (count - 1));
    int64_t p = std::llround(x / double(grain)) * grain;
    if (p > points.back() && p < seqLenMax) points.push_back(p);
  }
  points.push_back(seqLenMax);
  return points;
}

std::optional<DeploymentSpec> resolveSpec(const desc::Deployment &d, std::vector<Finding> &out) {
  size_t before = out.size();
  FieldChecker c(out);
  DeploymentSpec s;
  s.name = d.has_name() ? d.name() : "";
  if (d.has_model()) resolveModel(d.model(), s.model, c); else c.missing("model");
  if (d.has_cluster()) resolveCluster(d.cluster(), s.cluster, c); else c.missing("cluster");
  if (d.has_workload()) resolveWorkload(d.workload(), s.workload, c); else c.missing("workload");
  if (s.workload.generates() && d.has_model() && !d.model().has_vocab_size())
    c.report("field.required", "model.vocab_size",
             "is required by phase GENERATE: each generated token is fed back as the next input");
  if (!s.workload.generates())
    for (auto [has, path] : {std::pair{d.requirements().has_max_ttft_ms(), "requirements.max_ttft_ms"},
                             std::pair{d.requirements().has_max_tpot_ms(), "requirements.max_tpot_ms"},
                             std::pair{d.requirements().has_min_decode_tokens_per_s(),
                                       "requirements.min_decode_tokens_per_s"}})
      if (has)
        c.report("field.unused", path, "applies only to workload phase GENERATE; ignored",
                 Severity::Warning);
  if (!d.has_strategy()) c.missing("strategy");
  resolveStrategy(d.strategy(), s.strategy, c);
  resolveRequirements(d.requirements(), s.requirements, c);
  resolveClaims(d.claims(), s.claims, c);
  resolveSearch(d.search(), s.search, c);
  for (size_t i = before; i < out.size(); ++i)
    if (out[i].severity == Severity::Error) return std::nullopt;
  return s;
}

} // namespace moeplan
