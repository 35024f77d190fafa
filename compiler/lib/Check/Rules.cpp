#include "moeplan/Check/Rules.h"

#include "moeplan/Analysis/DeviceMesh.h"
#include "moeplan/Analysis/ParamCount.h"
#include "moeplan/Analysis/WeightMemory.h"
#include "moeplan/Support/CheckedMath.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace moeplan {

const std::vector<RuleInfo> &ruleCatalog() {
  using S = Severity;
  static const std::vector<RuleInfo> rules = {
      // Field-level rules: the description cannot be used while one of these fails.
      {"syntax", S::Error, "the file is valid protobuf text format for moeplan.desc.Deployment"},
      {"field.required", S::Error, "a required field is present"},
      {"field.positive", S::Error, "counts are at least 1 and quantities greater than 0"},
      {"field.limit", S::Error, "a value stays below the field's plausibility limit"},
      {"field.finite", S::Error, "a real number is finite (no inf or nan)"},
      {"field.fraction", S::Error, "a share is a fraction in (0, 1] (or [0, 1])"},
      {"field.order", S::Error, "measured points (gemm_efficiency) go by increasing rows"},
      {"field.value", S::Error, "a flag that selects a variant is true when written"},
      {"field.load", S::Error, "expert loads are finite, at least 0, and not all 0"},
      {"field.stickiness", S::Error, "routing stickiness is a probability in [0, 0.99]"},
      {"field.enum", S::Error, "an enum field holds one of its named values"},
      {"field.range-order", S::Error, "a range's lower end does not exceed its upper end"},
      {"field.rank-order", S::Error, "strategy.rank_order names tp, ep, dp and pp once each"},
      {"field.default", S::Note, "an optional field left out takes a stated default"},
      {"field.unused", S::Warning, "a field that does not apply to this workload is ignored"},
      // Model.
      {"model.heads-by-kv-heads", S::Error, "kv_heads divides heads (grouped-query attention)"},
      {"model.top-k-le-experts", S::Error, "top_k is at most the number of experts"},
      {"model.size-overflow", S::Error, "derived sizes fit in 64 bits"},
      {"model.params-declared", S::Error,
       "a declared parameter count agrees with the dimensions within 5%"},
      // Strategy against cluster.
      {"strategy.gpus-exceed-cluster", S::Error, "tp x pp x dp does not exceed the cluster's GPUs"},
      {"gpus.idle", S::Warning, "the strategy occupies every GPU of the cluster"},
      {"strategy.expert-fold", S::Error,
       "expert_tp x ep divides tp x dp, so the expert grid folds onto the same GPUs"},
      {"strategy.pp-groups-agree", S::Error,
       "each GPU has the same pipeline stage in the attention and the expert grid"},
      {"strategy.tp-within-node", S::Warning, "each tensor-parallel group stays inside a node"},
      // Strategy against model.
      {"strategy.heads-by-tp", S::Error, "tp divides heads"},
      {"strategy.kv-heads-by-tp", S::Error, "tp divides kv_heads, or kv_heads divides tp"},
      {"strategy.experts-by-ep", S::Error, "ep divides experts"},
      {"strategy.expert-hidden-by-expert-tp", S::Error, "expert_tp divides expert_hidden"},
      {"strategy.dense-ffn-by-tp", S::Error, "tp divides dense_ffn_hidden"},
      {"strategy.shared-expert-by-tp", S::Error, "tp divides shared_expert_hidden"},
      {"strategy.layers-by-pp", S::Error, "pp divides layers"},
      {"strategy.vocab-by-tp", S::Warning, "tp divides vocab_size (otherwise it is padded)"},
      {"strategy.ep-without-experts", S::Warning, "ep and expert_tp are 1 for a dense model"},
      {"strategy.expert-tp-default", S::Note, "expert_tp left out follows tp, as in Megatron"},
      // Strategy against workload.
      {"strategy.batch-split", S::Error, "dp x micro_batches divides the batch's sequences"},
      {"strategy.overlap-halves", S::Error,
       "under DUAL_MICRO_BATCH a micro-batch's sequences split into two equal halves"},
      {"strategy.overlap-nothing-to-hide", S::Warning,
       "DUAL_MICRO_BATCH has tensor- or expert-parallel collectives to hide (tp, ep or "
       "expert_tp above 1)"},
      {"workload.expert-load-size", S::Error,
       "workload.expert_load gives one load per expert, or one per expert per layer with some "
       "positive load in every MoE layer"},
      {"workload.stickiness-size", S::Error,
       "workload.routing_stickiness gives one value, or one per layer"},
      {"strategy.tokens-by-tp", S::Error,
       "tp divides the tokens of a prefill micro-batch (sequence parallelism splits them over tp)"},
      {"strategy.decode-replicates-tokens", S::Note,
       "a decode step whose tokens tp does not divide keeps every token on every tp rank "
       "(no sequence parallelism; all-reduce after the row-parallel projections)"},
      {"strategy.dispatch-groups", S::Error,
       "dispatch_groups divides the tokens each rank dispatches per micro-batch"},
      {"strategy.micro-batches-fill-pipeline", S::Warning,
       "micro_batches is at least pp, so every stage has work at once"},
      {"strategy.capacity-below-one", S::Warning,
       "capacity_factor is at least 1 (below, tokens drop even under uniform routing)"},
      // Memory.
      {"memory.weights-capacity", S::Error, "one GPU's weights fit in its memory"},
      {"memory.weights-requirement", S::Error,
       "one GPU's weights stay below requirements.max_memory_per_gpu_gb"},
      {"memory.plan-capacity", S::Error,
       "the compiled plan's memory on one GPU (its arena: weights, activations, KV cache, "
       "communication buffers, workspace) fits in the GPU's memory"},
      {"memory.plan-requirement", S::Error,
       "the compiled plan's memory on one GPU stays below requirements.max_memory_per_gpu_gb"},
      // Requirements.
      {"requirements.utilization-reachable", S::Error,
       "min_gpu_utilization is at most the cluster's mfu: utilization is FLOPs executed over "
       "peak FLOP/s x time, and no kernel runs above peak_flops x mfu"},
      {"requirements.latency-reachable", S::Error,
       "max_latency_ms is at least the roofline of the whole batch on every GPU of the "
       "cluster (its least FLOPs / (GPUs x peak x mfu)) at every judged sequence length"},
      {"requirements.throughput-reachable", S::Error,
       "min_throughput_tokens_per_s is at most the batch's tokens over that roofline"},
      {"requirements.memory-reachable", S::Error,
       "max_memory_per_gpu_gb is at least the model's weights spread over every GPU"},
      // Requirements judged on the compiled plan at each point of the workload.
      {"requirements.latency", S::Error,
       "the predicted latency of the whole batch is at most max_latency_ms at every judged "
       "sequence length"},
      {"requirements.throughput", S::Error,
       "the predicted throughput is at least min_throughput_tokens_per_s at every judged "
       "sequence length"},
      {"requirements.load-balance", S::Error,
       "the predicted load balance (mean / max routed load over EP ranks) is at least "
       "min_load_balance"},
      {"requirements.comm-overhead", S::Error,
       "the exposed communication share of the time is at most max_comm_overhead at every "
       "judged sequence length"},
      {"requirements.gpu-utilization", S::Error,
       "the predicted utilization (executed FLOPs / (GPUs x peak x latency)) is at least "
       "min_gpu_utilization at every judged sequence length"},
      {"requirements.ttft", S::Error,
       "GENERATE: the predicted time to first token (the prefill) is at most max_ttft_ms"},
      {"requirements.tpot", S::Error,
       "GENERATE: the predicted time per output token at the p99 decode step is at most "
       "max_tpot_ms"},
      {"requirements.decode-throughput", S::Error,
       "GENERATE: the predicted decode tokens/s (sequences / mean step time) is at least "
       "min_decode_tokens_per_s"},
      // Placement.
      {"placement.stage-count", S::Error, "the placement lists pp stages"},
      {"placement.stage-index", S::Error, "stage indices are below pp and each appears once"},
      {"placement.gpu-in-cluster", S::Error, "every placed GPU exists in the cluster"},
      {"placement.gpu-unique", S::Error, "no GPU is placed twice"},
      {"placement.gpu-count", S::Error, "the placement claims as many GPUs as the strategy occupies"},
      {"placement.stage-size", S::Error, "each stage lists tp x dp GPUs"},
      {"placement.matches-rank-order", S::Error,
       "each stage lists the GPUs the rank order assigns to it"},
      {"placement.layers", S::Error, "a stage's layer range is its even share of the layers"},
  };
  return rules;
}

const RuleInfo *findRule(const std::string &id) {
  for (const RuleInfo &r : ruleCatalog())
    if (id == r.id) return &r;
  return nullptr;
}

namespace {

class Emitter {
public:
  explicit Emitter(std::vector<Finding> &out) : out_(out) {}
  void operator()(const char *rule, const std::string &path, std::string message,
                  std::vector<FindingValue> values = {}) {
    const RuleInfo *info = findRule(rule);
    Finding f;
    f.rule = rule;
    f.severity = info ? info->severity : Severity::Error;
    f.fieldPath = path;
    f.message = std::move(message);
    f.values = std::move(values);
    out_.push_back(std::move(f));
  }

private:
  std::vector<Finding> &out_;
};

std::string str(int64_t v) { return std::to_string(v); }
std::string plural(int64_t n, const std::string &noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}
double d(int64_t v) { return double(v); }

// Requirements that no strategy can meet on this cluster, whatever the plan.
void checkRequirements(const DeploymentSpec &dep, std::vector<Finding> &out) {
  Emitter emit(out);
  const RequirementsSpec &r = dep.requirements;
  const double best = dep.cluster.bestEfficiency();
  if (r.minGpuUtilization && *r.minGpuUtilization > best)
    emit("requirements.utilization-reachable", "requirements.min_gpu_utilization",
         "min_gpu_utilization " + formatNumber(*r.minGpuUtilization) +
             " cannot hold on this cluster: utilization is FLOPs executed over peak FLOP/s, "
             "and kernels reach at most the cluster's " +
             (best > dep.cluster.mfu ? "best GEMM efficiency " : "mfu ") + formatNumber(best) +
             " of peak",
         {{"required", *r.minGpuUtilization}, {"mfu", best}});
}

} // namespace

void checkModel(const DeploymentSpec &dep, std::vector<Finding> &out) {
  Emitter emit(out);
  const ModelSpec &m = dep.model;
  if (m.heads % m.kvHeads != 0)
    emit("model.heads-by-kv-heads", "model.kv_heads",
         "heads " + str(m.heads) + " is not a multiple of kv_heads " + str(m.kvHeads),
         {{"heads", d(m.heads)}, {"kv_heads", d(m.kvHeads)}});
  const std::vector<double> &load = dep.workload.expertLoad;
  if (!load.empty() && int64_t(load.size()) != m.experts &&
      int64_t(load.size()) != m.experts * m.layers)
    emit("workload.expert-load-size", "workload.expert_load",
         "gives " + str(int64_t(load.size())) + " loads for " + str(m.experts) + " experts and " +
             str(m.layers) + " layers: one per expert (" + str(m.experts) +
             ") or one per expert per layer (" + str(m.experts * m.layers) + ")",
         {{"loads", d(int64_t(load.size()))}, {"experts", d(m.experts)}});
  else if (m.experts > 0 && int64_t(load.size()) == m.experts * m.layers && m.layers > 1)
    for (int64_t l = 0; l < m.layers; ++l) {
      double total = 0;
      for (int64_t e = 0; e < m.experts; ++e) total += std::max(0.0, load[size_t(l * m.experts + e)]);
      if (m.isMoeLayer(l) && !(total > 0))
        emit("workload.expert-load-size", "workload.expert_load",
             "gives MoE layer " + str(l) + " no load (entries [" + str(l * m.experts) + ", " +
                 str((l + 1) * m.experts) + ") sum to 0)",
             {{"layer", d(l)}});
    }
  const size_t sticky = dep.workload.routingStickiness.size();
  if (sticky > 1 && int64_t(sticky) != m.layers)
    emit("workload.stickiness-size", "workload.routing_stickiness",
         "gives " + str(int64_t(sticky)) + " values for " + str(m.layers) +
             " layers: one for every layer, or one per layer",
         {{"values", d(int64_t(sticky))}, {"layers", d(m.layers)}});
  if (m.moeLayerCount() > 0 && m.topK > m.experts)
    emit("model.top-k-le-experts", "model.top_k",
         "top_k " + str(m.topK) + " exceeds experts " + str(m.experts),
         {{"top_k", d(m.topK)}, {"experts", d(m.experts)}});
  try {
    ParamBreakdown p = countModelParams(m);
    double derived = double(p.total());
    if (m.declaredParams) {
      double declared = *m.declaredParams;
      double rel = (declared - derived) / derived;
      if (std::fabs(rel) > kDeclaredParamsTolerance) {
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.0f%% too %s", std::fabs(rel) * 100,
                      rel > 0 ? "high" : "low");
        emit("model.params-declared", "model.declared_params",
             "declared " + formatCount(declared) + " parameters, but the dimensions give " +
                 formatCount(derived) + " (" + formatNumber(derived) + "): the declared count is " +
                 pct,
             {{"declared", declared}, {"derived", derived}, {"relative_difference", rel}});
      }
    }
  } catch (const SizeOverflow &) {
    emit("model.size-overflow", "model", "the parameter count does not fit in 64 bits");
  }
}

void checkStrategy(const DeploymentSpec &dep, std::vector<Finding> &out) {
  Emitter emit(out);
  const ModelSpec &m = dep.model;
  const StrategySpec &s = dep.strategy;
  const ClusterSpec &c = dep.cluster;
  const WorkloadSpec &w = dep.workload;
  const bool moe = m.moeLayerCount() > 0;
  const int64_t world = s.world();  // each factor <= 2^20: no overflow
  const std::string degrees =
      "tp " + str(s.tp) + " x pp " + str(s.pp) + " x dp " + str(s.dp) + " = " + str(world);

  if (world > c.gpus())
    emit("strategy.gpus-exceed-cluster", "strategy",
         "the strategy occupies " + degrees + " GPUs, but the cluster has " + str(c.gpus()),
         {{"tp", d(s.tp)}, {"pp", d(s.pp)}, {"dp", d(s.dp)}, {"cluster_gpus", d(c.gpus())}});
  else if (world < c.gpus())
    emit("gpus.idle", "strategy",
         "the strategy occupies " + degrees + " of the cluster's " + str(c.gpus()) +
             " GPUs; GPUs " + formatIdRanges([&] {
               std::vector<int64_t> idle;
               for (int64_t g = world; g < c.gpus(); ++g) idle.push_back(g);
               return idle;
             }()) + " stay idle",
         {{"used_gpus", d(world)}, {"cluster_gpus", d(c.gpus())}});

  if (s.expertDp() == 0)
    emit("strategy.expert-fold", s.expertTpDefaulted ? "strategy.ep" : "strategy.expert_tp",
         "expert_tp " + str(s.expertTp) + " x ep " + str(s.ep) + " = " + str(s.expertTp * s.ep) +
             " does not divide tp " + str(s.tp) + " x dp " + str(s.dp) + " = " +
             str(s.tp * s.dp) + ": the expert grid cannot fold onto the attention grid's GPUs",
         {{"expert_tp", d(s.expertTp)}, {"ep", d(s.ep)}, {"tp", d(s.tp)}, {"dp", d(s.dp)}});
  if (s.expertTpDefaulted && moe && s.tp > 1)
    emit("strategy.expert-tp-default", "strategy",
         "expert_tp is not set, so it follows tp = " + str(s.tp) +
             " (each expert split " + str(s.tp) + " ways); write expert_tp: 1 for whole experts");
  if (world <= FieldLimits::kGpus) {
    DeviceMesh mesh(s);
    int64_t split = mesh.firstPipelineDisagreement();
    if (split >= 0) {
      MeshCoord sc = mesh.coord(split);
      emit("strategy.pp-groups-agree", "strategy.rank_order",
           "with this rank order GPU " + str(split) + " is in pipeline stage " + str(sc.pp) +
               " of the attention grid but stage " + str(sc.expertPp) +
               " of the expert grid; pp must stride alike in both (put pp outermost)",
           {{"gpu", d(split)}, {"attention_stage", d(sc.pp)}, {"expert_stage", d(sc.expertPp)}});
    }
    if (mesh.tensorParallelSpansNodes(c.gpusPerNode))
      emit("strategy.tp-within-node", "strategy.tp",
           "tensor-parallel groups of " + str(s.tp) + " GPUs span nodes of " +
               plural(c.gpusPerNode, "GPU") + " (rank order and gpus_per_node); every TP "
               "collective crosses the slower inter-node link",
           {{"tp", d(s.tp)}, {"gpus_per_node", d(c.gpusPerNode)}});
  }

  if (m.heads % s.tp != 0)
    emit("strategy.heads-by-tp", "strategy.tp",
         "tp " + str(s.tp) + " does not divide heads " + str(m.heads),
         {{"tp", d(s.tp)}, {"heads", d(m.heads)}});
  if (m.kvHeads % s.tp != 0 && s.tp % m.kvHeads != 0)
    emit("strategy.kv-heads-by-tp", "strategy.tp",
         "tp " + str(s.tp) + " neither divides nor is a multiple of kv_heads " + str(m.kvHeads),
         {{"tp", d(s.tp)}, {"kv_heads", d(m.kvHeads)}});
  if (moe && m.experts % s.ep != 0)
    emit("strategy.experts-by-ep", "strategy.ep",
         "ep " + str(s.ep) + " does not divide experts " + str(m.experts),
         {{"ep", d(s.ep)}, {"experts", d(m.experts)}});
  if (moe && m.expertHidden % s.expertTp != 0)
    emit("strategy.expert-hidden-by-expert-tp",
         s.expertTpDefaulted ? "strategy.tp" : "strategy.expert_tp",
         "expert_tp " + str(s.expertTp) + " does not divide expert_hidden " + str(m.expertHidden),
         {{"expert_tp", d(s.expertTp)}, {"expert_hidden", d(m.expertHidden)}});
  if (m.denseLayerCount() > 0 && m.denseFfnHidden % s.tp != 0)
    emit("strategy.dense-ffn-by-tp", "strategy.tp",
         "tp " + str(s.tp) + " does not divide dense_ffn_hidden " + str(m.denseFfnHidden),
         {{"tp", d(s.tp)}, {"dense_ffn_hidden", d(m.denseFfnHidden)}});
  if (m.sharedExpertHidden % s.tp != 0)
    emit("strategy.shared-expert-by-tp", "strategy.tp",
         "tp " + str(s.tp) + " does not divide shared_expert_hidden " + str(m.sharedExpertHidden) +
             " (the shared expert is split over tp like the dense FFN)",
         {{"tp", d(s.tp)}, {"shared_expert_hidden", d(m.sharedExpertHidden)}});
  if (m.layers % s.pp != 0)
    emit("strategy.layers-by-pp", "strategy.pp",
         "pp " + str(s.pp) + " does not divide layers " + str(m.layers),
         {{"pp", d(s.pp)}, {"layers", d(m.layers)}});
  if (m.vocab > 0 && m.vocab % s.tp != 0)
    emit("strategy.vocab-by-tp", "strategy.tp",
         "tp " + str(s.tp) + " does not divide vocab_size " + str(m.vocab) +
             "; the vocabulary is padded to " + str(ceilDiv(m.vocab, s.tp) * s.tp),
         {{"tp", d(s.tp)}, {"vocab_size", d(m.vocab)}});
  if (!moe && (s.ep > 1 || (!s.expertTpDefaulted && s.expertTp > 1)))
    emit("strategy.ep-without-experts", s.ep > 1 ? "strategy.ep" : "strategy.expert_tp",
         "the model has no MoE layer, so ep " + str(s.ep) + " and expert_tp " + str(s.expertTp) +
             " have no effect");

  const bool dual = s.overlap == desc::DUAL_MICRO_BATCH;
  if (dual && s.tp == 1 && s.ep == 1 && s.expertTp == 1)
    emit("strategy.overlap-nothing-to-hide", "strategy.overlap",
         "DUAL_MICRO_BATCH interleaves two halves of each micro-batch to hide tensor- and "
         "expert-parallel collectives, but tp, ep and expert_tp are 1: there are none, and the "
         "halves only run smaller kernels");
  // A micro-batch's tokens below: those of a planned micro-batch (a half under DUAL).
  const std::string microBatch = dual ? "micro-batch half" : "micro-batch";
  int64_t split = s.dp * s.microBatches;  // both <= 2^24: no overflow
  if (w.sequences % split != 0)
    emit("strategy.batch-split", s.microBatches > 1 ? "strategy.micro_batches" : "strategy.dp",
         "dp " + str(s.dp) + " x micro_batches " + str(s.microBatches) + " = " + str(split) +
             " does not divide the batch of " + str(w.sequences) + " sequences",
         {{"dp", d(s.dp)}, {"micro_batches", d(s.microBatches)}, {"sequences", d(w.sequences)}});
  else if (w.sequences % (split * 2) != 0 && dual)
    emit("strategy.overlap-halves", "strategy.overlap",
         "DUAL_MICRO_BATCH splits each micro-batch in two, but a micro-batch holds " +
             plural(w.sequences / split, "sequence") + " (" + str(w.sequences) + " / (dp " +
             str(s.dp) + " x micro_batches " + str(s.microBatches) + ")), an odd number",
         {{"sequences_per_micro_batch", d(w.sequences / split)}});
  else {
    split = s.dp * s.planMicroBatches();
    // Judged at both ends of the range: the workload's points between are multiples of
    // gcd(min, max) (WorkloadSpec::seqPoints), so they divide whenever both ends do.
    std::vector<int64_t> lengths{w.phase == desc::DECODE ? 1 : w.seqLenMax};
    if (w.phase != desc::DECODE && w.seqLenMin != w.seqLenMax) lengths.push_back(w.seqLenMin);
    if (w.generates()) lengths.push_back(1);  // each decode step: one token per sequence
    for (int64_t len : lengths) {
      int64_t tokens = w.sequences / split * len;
      const bool decodeStep = w.phase == desc::DECODE || (w.generates() && len == 1);
      std::string at = w.generates() ? (len == 1 ? " (in a decode step)" : " (in the prefill)")
                       : lengths.size() > 1 ? " (at " + str(len) + " tokens per sequence)" : "";
      if (!s.sequenceParallel(tokens)) {
        if (!decodeStep) {
          emit("strategy.tokens-by-tp", "strategy.tp",
               "tp " + str(s.tp) + " does not divide the " + str(tokens) +
                   " tokens of a " + microBatch + at + ", which sequence parallelism splits over tp",
               {{"tp", d(s.tp)}, {"tokens", d(tokens)}});
          break;
        }
        emit("strategy.decode-replicates-tokens", "strategy.tp",
             "tp " + str(s.tp) + " does not divide the " + str(tokens) +
                 " tokens of a " + microBatch + at +
                 ": every tp rank keeps all of them (no sequence parallelism), all-reduces "
                 "after the row-parallel projections and routes them to the experts itself",
             {{"tp", d(s.tp)}, {"tokens", d(tokens)}});
      }
      const int64_t perRank = s.tokensPerRank(tokens);
      if (perRank % s.dispatchGroups != 0) {
        emit("strategy.dispatch-groups", "strategy.dispatch_groups",
             "dispatch_groups " + str(s.dispatchGroups) + " does not divide the " +
                 str(perRank) + " tokens each rank dispatches per " + microBatch + at,
             {{"dispatch_groups", d(s.dispatchGroups)}, {"tokens", d(perRank)}});
        break;
      }
    }
  }
  if (s.pp > 1 && s.microBatches < s.pp) {
    char bubble[32];
    std::snprintf(bubble, sizeof bubble, "%.0f%%",
                  100.0 * double(s.pp - 1) / double(s.microBatches + s.pp - 1));
    emit("strategy.micro-batches-fill-pipeline", "strategy.micro_batches",
         "micro_batches " + str(s.microBatches) + " is fewer than pp " + str(s.pp) +
             ": the pipeline never fills and its bubble is " + bubble +
             " of the time ((p-1)/(m+p-1))",
         {{"micro_batches", d(s.microBatches)}, {"pp", d(s.pp)}});
  }
  if (moe && s.capacityFactor && *s.capacityFactor < 1.0)
    emit("strategy.capacity-below-one", "strategy.capacity_factor",
         "capacity_factor " + formatNumber(*s.capacityFactor) +
             " is below 1: even perfectly uniform routing drops tokens",
         {{"capacity_factor", *s.capacityFactor}});

  try {
    for (const StageWeights &sw : weightsPerGpu(m, s)) {
      std::string where = "stage " + str(sw.stage);
      if (sw.bytesPerGpu > c.memoryBytes)
        emit("memory.weights-capacity", "strategy",
             "weights alone take " + formatBytes(sw.bytesPerGpu) + " on each GPU of " + where +
                 ", more than its " + formatBytes(c.memoryBytes),
             {{"weights_bytes", sw.bytesPerGpu}, {"capacity_bytes", c.memoryBytes}});
      if (dep.requirements.maxMemoryPerGpuGb &&
          sw.bytesPerGpu > *dep.requirements.maxMemoryPerGpuGb * 1e9)
        emit("memory.weights-requirement", "requirements.max_memory_per_gpu_gb",
             "weights alone take " + formatBytes(sw.bytesPerGpu) + " on each GPU of " + where +
                 ", above the required " + formatNumber(*dep.requirements.maxMemoryPerGpuGb) +
                 " GB",
             {{"weights_bytes", sw.bytesPerGpu},
              {"max_bytes", *dep.requirements.maxMemoryPerGpuGb * 1e9}});
    }
  } catch (const SizeOverflow &) {
    emit("model.size-overflow", "model", "the weights per GPU do not fit in 64 bits");
  }
}

void checkPlacement(const DeploymentSpec &dep, std::vector<Finding> &out) {
  const StrategySpec &s = dep.strategy;
  if (s.placement.empty()) return;
  Emitter emit(out);
  auto path = [](const StagePlacementSpec &p) {
    return "strategy.placement[" + std::to_string(p.index) + "]";
  };
  const int64_t perStage = s.tp * s.dp;

  if (int64_t(s.placement.size()) != s.pp)
    emit("placement.stage-count", "strategy.placement",
         "the placement lists " + plural(s.placement.size(), "stage") + ", but pp is " + str(s.pp),
         {{"stages", d(s.placement.size())}, {"pp", d(s.pp)}});

  std::set<int64_t> stagesSeen;
  std::map<int64_t, std::string> gpuOwner;  // GPU -> path of the first entry placing it
  int64_t claimed = 0;
  for (const StagePlacementSpec &p : s.placement) {
    if (p.stage >= s.pp || !stagesSeen.insert(p.stage).second)
      emit("placement.stage-index", path(p) + ".stage",
           p.stage >= s.pp ? "stage " + str(p.stage) + " does not exist with pp " + str(s.pp)
                           : "stage " + str(p.stage) + " is placed twice",
           {{"stage", d(p.stage)}, {"pp", d(s.pp)}});
    for (size_t g = 0; g < p.gpus.size(); ++g) {
      std::string gpath = path(p) + ".gpus[" + std::to_string(g) + "]";
      int64_t gpu = p.gpus[g];
      if (gpu >= dep.cluster.gpus())
        emit("placement.gpu-in-cluster", gpath,
             "GPU " + str(gpu) + " does not exist; the cluster has GPUs 0-" +
                 str(dep.cluster.gpus() - 1),
             {{"gpu", d(gpu)}, {"cluster_gpus", d(dep.cluster.gpus())}});
      auto [it, fresh] = gpuOwner.emplace(gpu, gpath);
      if (!fresh)
        emit("placement.gpu-unique", gpath,
             "GPU " + str(gpu) + " is already placed at " + it->second, {{"gpu", d(gpu)}});
      else
        ++claimed;
    }
  }
  if (claimed != s.world())
    emit("placement.gpu-count", "strategy.placement",
         "the placement claims " + str(claimed) + " GPUs, but the strategy occupies tp " +
             str(s.tp) + " x pp " + str(s.pp) + " x dp " + str(s.dp) + " = " + str(s.world()),
         {{"placed_gpus", d(claimed)}, {"strategy_gpus", d(s.world())}});

  // GPUs of each stage as the rank order assigns them, computed once.
  std::vector<std::vector<int64_t>> stageGpus;
  if (s.world() <= FieldLimits::kGpus) stageGpus = DeviceMesh(s).ranksByStage();
  for (const StagePlacementSpec &p : s.placement) {
    if (p.stage < 0 || p.stage >= s.pp) continue;
    if (int64_t(p.gpus.size()) != perStage) {
      emit("placement.stage-size", path(p) + ".gpus",
           "stage " + str(p.stage) + " lists " + str(p.gpus.size()) +
               " GPUs, but tp " + str(s.tp) + " x dp " + str(s.dp) + " = " + str(perStage) +
               " GPUs serve each stage",
           {{"listed", d(p.gpus.size())}, {"tp", d(s.tp)}, {"dp", d(s.dp)}});
    } else if (!stageGpus.empty()) {
      const std::vector<int64_t> &want = stageGpus[p.stage];
      std::vector<int64_t> have = p.gpus;
      std::sort(have.begin(), have.end());
      if (have != want)
        emit("placement.matches-rank-order", path(p) + ".gpus",
             "stage " + str(p.stage) + " lists GPUs " + formatIdRanges(have) +
                 ", but the rank order places it on GPUs " + formatIdRanges(want));
    }
    if (p.firstLayer) {
      int64_t first, last;
      stageLayers(dep.model.layers, s.pp, p.stage, first, last);
      if (*p.firstLayer != first || *p.lastLayer != last)
        emit("placement.layers", path(p) + ".first_layer",
             "stage " + str(p.stage) + " claims layers " + str(*p.firstLayer) + "-" +
                 str(*p.lastLayer) + ", but with pp " + str(s.pp) + " it holds layers " +
                 str(first) + "-" + str(last),
             {{"first_layer", d(*p.firstLayer)}, {"last_layer", d(*p.lastLayer)}});
    }
  }
}

std::vector<Finding> checkDeployment(const DeploymentSpec &d) {
  std::vector<Finding> out;
  checkModel(d, out);
  checkStrategy(d, out);
  checkRequirements(d, out);
  checkPlacement(d, out);
  return out;
}

bool blocksLowering(const std::string &rule) {
  static const char *const documentOnly[] = {
      "model.params-declared",   "memory.weights-capacity",    "memory.weights-requirement",
      "placement.gpu-in-cluster", "placement.gpu-unique",       "placement.gpu-count",
      "placement.stage-size",    "placement.matches-rank-order",
      "requirements.utilization-reachable"};
  for (const char *r : documentOnly)
    if (rule == r) return false;
  return true;
}

} // namespace moeplan
