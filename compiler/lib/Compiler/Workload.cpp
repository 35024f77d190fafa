#include "moeplan/Compiler/Workload.h"

#include "moeplan/Analysis/ParamCount.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Support/CheckedMath.h"
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Report/Inspect.h"

#include <algorithm>
#include <cmath>

namespace moeplan {

desc::Deployment atSeqLen(const desc::Deployment &d, int64_t seqLen) {
  desc::Deployment at = d;
  if (at.workload().phase() == desc::GENERATE)
    at.mutable_workload()->set_prompt_len(uint32_t(seqLen));  // the prefill's length
  else
    at.mutable_workload()->set_seq_len(uint32_t(seqLen));  // replaces seq_len_range (a oneof)
  return at;
}

namespace {

Finding makeFinding(const char *rule, std::string field, std::string message,
                    std::vector<FindingValue> values) {
  const RuleInfo *info = findRule(rule);
  Finding f;
  f.rule = rule;
  f.severity = info ? info->severity : Severity::Error;
  f.fieldPath = std::move(field);
  f.message = std::move(message);
  f.values = std::move(values);
  return f;
}

// A requirement of the plan (report::judgeRequirements' field) as the description states it.
struct RequirementRule {
  const char *planField, *rule, *descField;
};
constexpr RequirementRule kRequirementRules[] = {
    {"cluster.memory_bytes", "memory.plan-capacity", "cluster.gpu.memory_gb"},
    {"requirements.max_memory_per_gpu_bytes", "memory.plan-requirement",
     "requirements.max_memory_per_gpu_gb"},
    {"requirements.max_latency_s", "requirements.latency", "requirements.max_latency_ms"},
    {"requirements.min_throughput_tokens_per_s", "requirements.throughput",
     "requirements.min_throughput_tokens_per_s"},
    {"requirements.min_load_balance", "requirements.load-balance",
     "requirements.min_load_balance"},
    {"requirements.max_comm_overhead", "requirements.comm-overhead",
     "requirements.max_comm_overhead"},
    {"requirements.min_gpu_utilization", "requirements.gpu-utilization",
     "requirements.min_gpu_utilization"},
    {"requirements.max_ttft_s", "requirements.ttft", "requirements.max_ttft_ms"},
    {"requirements.max_tpot_s", "requirements.tpot", "requirements.max_tpot_ms"},
    {"requirements.min_decode_tokens_per_s", "requirements.decode-throughput",
     "requirements.min_decode_tokens_per_s"},
};

std::string str(int64_t v) { return std::to_string(v); }

} // namespace

std::vector<Finding> requirementFindings(const plan::Plan &p) {
  using report::RequirementCheck;
  std::vector<std::vector<RequirementCheck>> judged;
  for (const plan::WorkloadPoint &w : p.workload_points())
    judged.push_back(report::judgeRequirements(p, w));
  std::vector<Finding> out;
  if (judged.empty()) return out;
  const bool severalPoints = judged.size() > 1;
  for (size_t i = 0; i < judged.front().size(); ++i) {
    const RequirementCheck &first = judged.front()[i];
    const RequirementRule *rule = nullptr;
    for (const RequirementRule &r : kRequirementRules)
      if (first.field == r.planField) rule = &r;
    if (!rule) continue;
    std::vector<size_t> failing;
    for (size_t k = 0; k < judged.size(); ++k)
      if (!judged[k][i].pass) failing.push_back(k);
    if (failing.empty()) continue;
    // The worst point first.
    std::stable_sort(failing.begin(), failing.end(), [&](size_t a, size_t b) {
      double va = judged[a][i].predicted, vb = judged[b][i].predicted;
      return first.atMost ? va > vb : va < vb;
    });
    const RequirementCheck &worst = judged[failing.front()][i];
    const plan::WorkloadPoint &at = p.workload_points(int(failing.front()));
    auto value = [&](double v) { return report::formatRequirementValue(first.unit, v); };
    std::string message;
    if (first.unit == RequirementCheck::Unit::Bytes) {
      // Memory: what the arena holds, on which stage.
      message = "the plan needs " + value(worst.predicted) + " on each GPU of stage " +
                str(at.memory_stage()) +
                " (weights, activations, KV cache, communication buffers)" +
                (severalPoints ? " at " + str(at.seq_len()) + " tokens per sequence" : "") +
                ", more than " +
                (rule->rule == std::string("memory.plan-capacity") ? "the GPU's " : "the required ") +
                value(first.required);
    } else {
      message = first.name + " is " + value(worst.predicted);
      if (severalPoints) {
        message += " at " + str(at.seq_len()) + " tokens per sequence";
        if (failing.size() > 1) {
          message += " (";
          for (size_t k = 1; k < failing.size(); ++k)
            message += (k > 1 ? ", " : "") + value(judged[failing[k]][i].predicted) + " at " +
                       str(p.workload_points(int(failing[k])).seq_len());
          message += ")";
        }
      }
      message += std::string(first.atMost ? ", above" : ", below") + " the required " +
                 value(first.required);
      if (severalPoints && failing.size() < judged.size()) {
        message += "; it holds at";
        bool firstPass = true;
        for (size_t k = 0; k < judged.size(); ++k)
          if (judged[k][i].pass)
            message += std::string(firstPass ? " " : ", ") +
                       str(p.workload_points(int(k)).seq_len()),
                firstPass = false;
      }
    }
    out.push_back(makeFinding(rule->rule, rule->descField, message,
                              {{"predicted", worst.predicted},
                               {"required", first.required},
                               {"seq_len", double(at.seq_len())}}));
  }
  return out;
}

std::optional<std::vector<WorkloadBound>> workloadBounds(CompileSession &session,
                                                         const desc::Deployment &d,
                                                         const DeploymentSpec &spec,
                                                         const std::vector<int64_t> &points,
                                                         std::optional<double> capacityFactor) {
  // The deployment on one GPU: no split, no replica, one micro-batch, one capacity group.
  desc::Deployment one = d;
  desc::Strategy *s = one.mutable_strategy();
  s->Clear();
  s->set_tp(1), s->set_pp(1), s->set_dp(1), s->set_ep(1), s->set_expert_tp(1);
  s->set_micro_batches(1);
  if (capacityFactor) s->set_capacity_factor(*capacityFactor);
  one.clear_claims();
  one.clear_search();
  CompileOptions quiet;
  quiet.printDiagnostics = false;
  quiet.judgeWorkload = false;
  const double gpus = double(spec.cluster.gpus());
  // At the best share of peak any kernel reaches: no strategy computes faster.
  const double rate = gpus * spec.cluster.peakFlops * spec.cluster.bestEfficiency();
  std::vector<WorkloadBound> bounds;
  for (int64_t len : points) {
    CompileResult r = session.compile(atSeqLen(one, len), "bound", quiet);
    if (!r.plan) return std::nullopt;
    WorkloadBound b;
    b.seqLen = len;
    // Executed FLOPs, but none of the experts' routed rows: how many a strategy keeps
    // depends on its capacity groups (smaller groups drop more), so only the rest of the
    // work is certain to run under every strategy.
    for (const plan::Program &program : r.plan->programs())
      for (const plan::Instruction &inst : program.instructions())
        if (inst.has_kernel() && !inst.routed()) b.flops += double(inst.cost().flops());
    b.latencyS = rate > 0 ? b.flops / rate : 0;
    const double tokens = double(spec.workload.sequences) *
                          double(spec.workload.phase == desc::DECODE ? 1 : len);
    b.throughput = b.latencyS > 0 ? tokens / b.latencyS : 0;
    bounds.push_back(b);
  }
  return bounds;
}

std::vector<Finding> reachabilityFindings(const DeploymentSpec &spec,
                                          const std::vector<WorkloadBound> &bounds) {
  std::vector<Finding> out;
  const RequirementsSpec &req = spec.requirements;
  const ClusterSpec &c = spec.cluster;
  const std::string cluster = "all " + str(c.gpus()) + " GPUs of the cluster at " +
                              formatCount(c.peakFlops) + " FLOP/s x " +
                              (c.bestEfficiency() > c.mfu ? "best GEMM efficiency " : "mfu ") +
                              formatNumber(c.bestEfficiency());
  // The point where the requirement is furthest out of reach.
  if (req.maxLatencyMs && !bounds.empty()) {
    auto worst = std::max_element(bounds.begin(), bounds.end(),
                                  [](auto &a, auto &b) { return a.latencyS < b.latencyS; });
    double required = *req.maxLatencyMs / 1e3;
    if (worst->latencyS > required)
      out.push_back(makeFinding(
          "requirements.latency-reachable", "requirements.max_latency_ms",
          "max_latency_ms " + formatNumber(*req.maxLatencyMs) + " cannot hold at " +
              str(worst->seqLen) + " tokens per sequence on this cluster: the whole batch "
              "executes at least " + formatCount(worst->flops) + " FLOP (outside the experts' "
              "routed rows), which " + cluster + " need at least " +
              report::formatSeconds(worst->latencyS) + " to compute (the roofline of the whole " +
              "batch; no strategy is faster)",
          {{"required_s", required}, {"roofline_s", worst->latencyS},
           {"seq_len", double(worst->seqLen)}}));
  }
  if (req.minThroughputTokensPerS && !bounds.empty()) {
    auto worst = std::min_element(bounds.begin(), bounds.end(),
                                  [](auto &a, auto &b) { return a.throughput < b.throughput; });
    if (worst->throughput < *req.minThroughputTokensPerS)
      out.push_back(makeFinding(
          "requirements.throughput-reachable", "requirements.min_throughput_tokens_per_s",
          "min_throughput_tokens_per_s " + formatNumber(*req.minThroughputTokensPerS) +
              " cannot hold at " + str(worst->seqLen) +
              " tokens per sequence on this cluster: " + cluster + " serve at most " +
              formatCount(worst->throughput) + " tokens/s (the batch's " +
              formatCount(worst->flops) + " FLOP at the roofline)",
          {{"required", *req.minThroughputTokensPerS}, {"roofline", worst->throughput},
           {"seq_len", double(worst->seqLen)}}));
  }
  if (req.maxMemoryPerGpuGb) {
    try {
      double weights = double(countModelParams(spec.model).total()) *
                       double(spec.model.bytesPerParam());
      double least = weights / double(c.gpus());
      if (least > *req.maxMemoryPerGpuGb * 1e9)
        out.push_back(makeFinding(
            "requirements.memory-reachable", "requirements.max_memory_per_gpu_gb",
            "max_memory_per_gpu_gb " + formatNumber(*req.maxMemoryPerGpuGb) +
                " cannot hold on this cluster: the model's weights are " + formatBytes(weights) +
                ", at least " + formatBytes(least) + " on each of its " + str(c.gpus()) +
                " GPUs even with no weight replicated",
            {{"required_bytes", *req.maxMemoryPerGpuGb * 1e9}, {"least_bytes", least}}));
    } catch (const SizeOverflow &) {
      // model.size-overflow says it.
    }
  }
  return out;
}

std::vector<plan::ClaimCheck> judgeClaims(const DeploymentSpec &spec, const plan::Plan &p) {
  const ClaimsSpec &k = spec.claims;
  std::vector<plan::ClaimCheck> out;
  auto add = [&](const char *name, const char *field, const char *unit, double claimed,
                 std::vector<double> derived) {
    plan::ClaimCheck c;
    c.set_name(name);
    c.set_field(field);
    c.set_unit(unit);
    c.set_claimed(claimed);
    c.set_tolerance(k.tolerance);
    bool consistent = true;
    for (double d : derived) {
      c.add_derived(d);
      consistent = consistent &&
                   (claimed == 0 ? d == 0 : std::fabs(d / claimed - 1) <= k.tolerance + 1e-12);
    }
    c.set_consistent(consistent);
    out.push_back(std::move(c));
  };
  auto perPoint = [&](const char *name, const char *field, const char *unit,
                      std::optional<double> claimed, double scale,
                      double (*figure)(const plan::Plan &, const plan::WorkloadPoint &)) {
    if (!claimed) return;
    std::vector<double> derived;
    for (const plan::WorkloadPoint &w : p.workload_points()) derived.push_back(figure(p, w));
    add(name, field, unit, *claimed * scale, std::move(derived));
  };
  using W = plan::WorkloadPoint;
  using P = plan::Plan;
  perPoint("latency", "claims.latency_ms", "s", k.latencyMs, 1e-3,
           [](const P &, const W &w) { return w.latency_s(); });
  perPoint("throughput", "claims.throughput_tokens_per_s", "tokens/s", k.throughputTokensPerS, 1,
           [](const P &, const W &w) { return w.throughput_tokens_per_s(); });
  perPoint("sequences per second", "claims.sequences_per_s", "sequences/s", k.sequencesPerS, 1,
           [](const P &p, const W &w) {
             return w.latency_s() > 0 ? p.workload().sequences() / w.latency_s() : 0;
           });
  perPoint("memory per GPU", "claims.memory_per_gpu_gb", "bytes", k.memoryPerGpuGb, 1e9,
           [](const P &, const W &w) { return double(w.memory_bytes()); });
  if (k.weightsPerGpuGb) {
    double weights = 0;  // the largest per-GPU weight bytes of any stage
    for (const plan::Program &program : p.programs()) {
      double bytes = 0;
      for (const plan::Buffer &b : program.buffers())
        if (b.kind() == plan::WEIGHT) bytes += double(b.bytes());
      weights = std::max(weights, bytes);
    }
    add("weights per GPU", "claims.weights_per_gpu_gb", "bytes", *k.weightsPerGpuGb * 1e9,
        {weights});
  }
  perPoint("activations per GPU", "claims.activations_per_gpu_gb", "bytes",
           k.activationsPerGpuGb, 1e9,
           [](const P &, const W &w) { return double(w.activation_bytes()); });
  perPoint("memory utilization", "claims.memory_utilization", "fraction", k.memoryUtilization, 1,
           [](const P &p, const W &w) {
             return double(w.memory_bytes()) / p.cluster().memory_bytes();
           });
  perPoint("communication overhead (exposed)", "claims.comm_overhead", "fraction",
           k.commOverhead, 1, [](const P &, const W &w) { return w.exposed_comm_share(); });
  perPoint("load balance", "claims.load_balance", "fraction", k.loadBalance, 1,
           [](const P &, const W &w) { return w.load_balance(); });
  perPoint("GPU utilization", "claims.gpu_utilization", "fraction", k.gpuUtilization, 1,
           [](const P &, const W &w) { return w.utilization(); });
  perPoint("pipeline bubble", "claims.pipeline_bubble", "fraction", k.pipelineBubble, 1,
           [](const P &, const W &w) { return w.bubble_fraction(); });
  perPoint("compute per layer", "claims.layer_compute_ms", "s", k.layerComputeMs, 1e-3,
           [](const P &, const W &w) { return w.layer_compute_s(); });
  perPoint("time of one collective", "claims.collective_ms", "s", k.collectiveMs, 1e-3,
           [](const P &, const W &w) { return w.mean_collective_s(); });
  const StrategySpec &s = spec.strategy;
  if (k.gpus) add("GPUs occupied", "claims.gpus", "count", double(*k.gpus), {double(s.world())});
  if (k.idleGpus)
    add("idle GPUs", "claims.idle_gpus", "count", double(*k.idleGpus),
        {double(std::max<int64_t>(0, spec.cluster.gpus() - s.world()))});
  if (k.expertsPerGpu && spec.model.experts > 0)
    add("experts per GPU", "claims.experts_per_gpu", "count", double(*k.expertsPerGpu),
        {double(spec.model.experts) / double(s.ep)});
  if (k.headsPerGpu)
    add("attention heads per GPU", "claims.heads_per_gpu", "count", double(*k.headsPerGpu),
        {double(spec.model.heads) / double(s.tp)});
  if (k.batchSequences)
    add("sequences in the batch", "claims.batch_sequences", "count", double(*k.batchSequences),
        {double(spec.workload.sequences)});
  if (spec.model.declaredParams) {
    try {
      add("parameters", "model.declared_params", "count", *spec.model.declaredParams,
          {double(countModelParams(spec.model).total())});
    } catch (const SizeOverflow &) {
    }
  }
  return out;
}

} // namespace moeplan
