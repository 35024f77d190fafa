#include "moeplan/Report/Inspect.h"

#include "moeplan/Description/Finding.h"
#include "moeplan/Simulate/CostModel.h"
#include "moeplan/Simulate/Routing.h"
#include "moeplan/Trace/Trace.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace moeplan::report {

namespace {

// Ranks a group line lists before eliding the middle.

std::string percent(double fraction) {
  char buf[32];
  double pct = 100 * fraction;
  // Small shares keep two significant digits instead of reading as 0.0%.
  std::snprintf(buf, sizeof buf, pct != 0 && std::fabs(pct) < 1 ? "%.2g%%" : "%.1f%%", pct);
  return buf;
}

std::string flopsText(double flops) { return formatCount(flops) + " FLOP"; }

std::string quoted(const std::string &s) { return "\"" + s + "\""; }

int axisPosition(const std::string &axis) {
  const std::vector<std::string> &axes = meshAxes();
  auto it = std::find(axes.begin(), axes.end(), axis);
  return it == axes.end() ? int(axes.size()) : int(it - axes.begin());
}

// The dimensions each kernel kind reads (plan.proto), for listing.
std::vector<std::pair<const char *, int64_t>> kernelDims(const plan::Kernel &k) {
  switch (k.kind()) {
  case plan::EMBEDDING:
    return {
        {"m", k.m()}, {"n", k.n()}, {"vocab_begin", k.vocab_begin()}, {"vocab_end", k.vocab_end()}};
  case plan::NORM:
  case plan::ACTIVATION_FUNCTION: return {{"m", k.m()}, {"n", k.n()}};
  case plan::GEMM: return {{"m", k.m()}, {"n", k.n()}, {"k", k.k()}};
  case plan::ATTENTION:
    return {{"sequences", k.sequences()}, {"seq_len", k.seq_len()},   {"kv_len", k.kv_len()},
            {"heads", k.heads()},         {"kv_heads", k.kv_heads()}, {"head_dim", k.head_dim()}};
  case plan::ROUTER:
    return {{"tokens", k.tokens()}, {"experts", k.experts()}, {"top_k", k.top_k()}};
  case plan::DISPATCH:
  case plan::COMBINE:
    // capacity is per dispatch group; groups 0 (plans without groups) means 1.
    return {{"tokens", k.tokens()},
            {"n", k.n()},
            {"experts", k.experts()},
            {"capacity", k.capacity()},
            {"groups", std::max<int64_t>(1, k.groups())},
            {"top_k", k.top_k()}};
  case plan::GROUPED_GEMM:
    return {{"groups", k.groups()}, {"m", k.m()}, {"n", k.n()}, {"k", k.k()}};
  case plan::ADD: return {{"n", k.n()}};
  case plan::TRANSPOSE: return {{"m", k.m()}, {"n", k.n()}, {"inner", k.inner()}};
  case plan::BIAS_ADD: return {{"groups", k.groups()}, {"m", k.m()}, {"n", k.n()}};
  case plan::SIGMOID_GATE: return {{"m", k.m()}, {"n", k.n()}};
  case plan::ROPE:
    return {{"m", k.m()}, {"heads", k.heads()}, {"head_dim", k.head_dim()},
            {"sequences", k.sequences()}, {"first_position", k.first_position()}};
  case plan::KV_APPEND:
    return {{"m", k.m()}, {"n", k.n()}, {"sequences", k.sequences()},
            {"first_position", k.first_position()}};
  case plan::ARGMAX:
    return {{"sequences", k.sequences()}, {"seq_len", k.seq_len()}, {"n", k.n()},
            {"vocab_end", k.vocab_end()}};
  case plan::ARGMAX_MERGE:
    return {{"groups", k.groups()}, {"m", k.m()}, {"n", k.n()},
            {"first_position", k.first_position()}};
  default: return {};
  }
}

// The kind qualifiers a kernel carries beside its dimensions.
std::string kernelVariant(const plan::Kernel &k) {
  if (k.kind() == plan::NORM) return plan::NormKind_Name(k.norm());
  if (k.kind() == plan::ACTIVATION_FUNCTION) return plan::ActivationKind_Name(k.activation());
  if (k.kind() == plan::GEMM && k.transpose_b()) return "transpose_b";
  return "";
}

std::string bufferName(const plan::Program &program, uint32_t index) {
  return index < uint32_t(program.buffers_size()) ? program.buffers(int(index)).name()
                                                  : "buffers[" + std::to_string(index) + "]";
}

std::string streamName(uint32_t stream) {
  const std::vector<std::string> &names = sim::streamNames();
  return stream < names.size() ? names[stream] : "stream " + std::to_string(stream);
}

std::vector<uint32_t> groupRanks(const plan::Group &g) {
  return {g.ranks().begin(), g.ranks().end()};
}

std::string joinCounts(const google::protobuf::RepeatedField<uint64_t> &counts) {
  std::string s;
  for (uint64_t c : counts) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

const plan::Rank &checkedRank(const plan::Plan &p, uint32_t rank) {
  if (rank >= uint32_t(p.ranks_size()))
    throw std::out_of_range("rank " + std::to_string(rank) + " is not in the plan, which has " +
                            std::to_string(p.ranks_size()) + " ranks (0-" +
                            std::to_string(p.ranks_size() - 1) + ")");
  return p.ranks(int(rank));
}

} // namespace

const std::vector<std::string> &meshAxes() {
  static const std::vector<std::string> axes = {"tp", "dp", "pp", "ep", "etp", "edp"};
  return axes;
}

const char *memoryKindName(MemoryKind k) {
  static const char *names[] = {"weights",       "activations", "kv_cache",
                                "communication", "workspace",   "inputs_outputs"};
  return names[size_t(k)];
}

const char *memoryKindTitle(MemoryKind k) {
  static const char *titles[] = {"weights",       "activations", "KV cache",
                                 "communication", "workspace",   "inputs/outputs"};
  return titles[size_t(k)];
}

MemoryKind memoryKindOf(plan::BufferKind k) {
  switch (k) {
  case plan::WEIGHT: return MemoryKind::Weights;
  case plan::KV_CACHE: return MemoryKind::KvCache;
  case plan::COMM: return MemoryKind::Communication;
  case plan::WORKSPACE: return MemoryKind::Workspace;
  case plan::INPUT:
  case plan::OUTPUT: return MemoryKind::InputsOutputs;
  default: return MemoryKind::Activations;
  }
}

void instructionOperands(const plan::Instruction &inst, std::vector<uint32_t> &in,
                         std::vector<uint32_t> &out) {
  in.clear(), out.clear();
  if (inst.has_kernel()) {
    in.assign(inst.kernel().inputs().begin(), inst.kernel().inputs().end());
    out.assign(inst.kernel().outputs().begin(), inst.kernel().outputs().end());
    return;
  }
  const plan::Collective &c = inst.collective();
  if (c.kind() != plan::RECV) in.push_back(c.input());
  if (c.kind() != plan::SEND) out.push_back(c.output());
}

MemoryAtPeak memoryAtPeak(const plan::Program &program) {
  MemoryAtPeak peak;
  peak.arenaBytes = program.arena_bytes();
  const size_t n = size_t(program.instructions_size());
  if (n == 0) return peak;
  // Live bytes per instruction from a difference array over the buffers' live ranges.
  std::vector<uint64_t> starting(n, 0), ending(n + 1, 0);
  for (const plan::Buffer &b : program.buffers()) {
    if (b.live_begin() > b.live_end() || b.live_end() >= n) continue;  // refused by validation
    starting[b.live_begin()] += b.bytes();
    ending[b.live_end() + 1] += b.bytes();
  }
  uint64_t live = 0;
  for (size_t i = 0; i < n; ++i) {
    live += starting[i];
    live -= ending[i];
    if (live > peak.liveBytes) peak.liveBytes = live, peak.instruction = uint32_t(i);
  }
  for (const plan::Buffer &b : program.buffers())
    if (b.live_begin() <= peak.instruction && peak.instruction <= b.live_end())
      peak.byKind[size_t(memoryKindOf(b.kind()))] += b.bytes();
  return peak;
}

std::vector<ProgramSummary> summarizePrograms(const plan::Plan &p) {
  std::vector<ProgramSummary> programs(size_t(p.programs_size()));
  for (int r = 0; r < p.ranks_size(); ++r)
    if (p.ranks(r).program() < programs.size())
      programs[p.ranks(r).program()].ranks.push_back(uint32_t(r));
  for (size_t pi = 0; pi < programs.size(); ++pi) {
    const plan::Program &program = p.programs(int(pi));
    ProgramSummary &s = programs[pi];
    s.program = uint32_t(pi);
    s.stage = program.stage();
    s.firstLayer = program.first_layer();
    s.endLayer = program.end_layer();
    s.instructions = uint64_t(program.instructions_size());
    s.memory = memoryAtPeak(program);
    if (s.instructions > 0) s.peakLabel = program.instructions(int(s.memory.instruction)).label();
    std::map<int, KernelTotals> kernels;
    std::map<int, CollectiveTotals> collectives;  // by axis position
    for (const plan::Instruction &inst : program.instructions()) {
      if (inst.has_kernel()) {
        KernelTotals &k = kernels[inst.kernel().kind()];
        k.kind = inst.kernel().kind();
        ++k.count;
        k.flops += inst.cost().flops();
        s.flops += inst.cost().flops();
      } else if (inst.has_collective()) {
        const plan::Collective &c = inst.collective();
        CollectiveTotals &t = collectives[axisPosition(c.axis())];
        t.axis = c.axis();
        ++t.count;
        t.commBytes += inst.cost().comm_bytes();
        ++t.kinds[plan::CollectiveKind_Name(c.kind())];
      }
    }
    for (auto &[kind, totals] : kernels) s.kernels.push_back(totals);
    for (auto &[axis, totals] : collectives) s.collectives.push_back(std::move(totals));
  }
  std::sort(programs.begin(), programs.end(), [](const ProgramSummary &a, const ProgramSummary &b) {
    return a.stage != b.stage ? a.stage < b.stage : a.program < b.program;
  });
  return programs;
}

std::string formatRequirementValue(RequirementCheck::Unit unit, double v) {
  switch (unit) {
  case RequirementCheck::Unit::Bytes: return formatBytes(v);
  case RequirementCheck::Unit::Seconds: return formatSeconds(v);
  case RequirementCheck::Unit::TokensPerSecond: return formatCount(v) + " tokens/s";
  case RequirementCheck::Unit::Fraction: return percent(v);
  }
  return formatNumber(v);
}


plan::WorkloadPoint workloadPoint(const plan::Plan &p, const sim::Prediction &pred) {
  plan::WorkloadPoint w;
  w.set_seq_len(p.workload().seq_len());
  w.set_latency_s(pred.latencySeconds);
  w.set_throughput_tokens_per_s(pred.throughputTokensPerSecond);
  for (const plan::Program &program : p.programs())
    if (program.arena_bytes() > w.memory_bytes())
      w.set_memory_bytes(program.arena_bytes()), w.set_memory_stage(program.stage());
  w.set_exposed_comm_share(pred.exposedCommShare);
  w.set_load_balance(pred.loadBalance);
  w.set_utilization(pred.utilization);
  w.set_bubble_fraction(pred.bubbleFraction);
  w.set_dropped_token_fraction(pred.droppedTokenFraction);
  w.set_roofline_s(pred.rooflineSeconds);
  if (const auto &g = pred.generation) {
    w.set_ttft_s(g->ttftSeconds);
    w.set_tpot_median_s(g->tpotMedianSeconds);
    w.set_tpot_p99_s(g->tpotP99Seconds);
    w.set_decode_tokens_per_s(g->decodeTokensPerSecond);
  }
  double layerCompute = 0, commSeconds = 0, collectives = 0;
  for (const sim::RankTimeline &t : pred.ranks) {
    const plan::Program &program = p.programs(int(p.ranks(int(t.rank)).program()));
    uint32_t layers = program.end_layer() > program.first_layer()
                          ? program.end_layer() - program.first_layer()
                          : 1;
    layerCompute = std::max(layerCompute, t.computeBusy / layers);
    commSeconds += t.commSeconds;
    for (const plan::Instruction &inst : program.instructions())
      if (inst.has_collective()) ++collectives;
  }
  uint64_t activations = 0;
  for (const plan::Program &program : p.programs())
    if (program.arena_bytes() == w.memory_bytes())
      activations = std::max(
          activations, memoryAtPeak(program).byKind[size_t(MemoryKind::Activations)]);
  w.set_activation_bytes(activations);
  w.set_layer_compute_s(layerCompute);
  w.set_mean_collective_s(collectives > 0 ? commSeconds / collectives : 0);
  return w;
}

std::vector<RequirementCheck> judgeRequirements(const plan::Plan &p,
                                                const plan::WorkloadPoint &point) {
  std::vector<RequirementCheck> out;
  using Unit = RequirementCheck::Unit;
  auto check = [&](std::string name, std::string field, bool atMost, double required,
                   double predicted, Unit unit) {
    bool pass = atMost ? predicted <= required : predicted >= required;
    out.push_back({std::move(name), std::move(field), atMost, required, predicted, unit, pass});
  };
  const double memory = double(point.memory_bytes());
  const plan::Requirements &req = p.requirements();
  check("memory per GPU", "cluster.memory_bytes", true, p.cluster().memory_bytes(), memory,
        Unit::Bytes);
  if (req.has_max_memory_per_gpu_bytes())
    check("memory per GPU", "requirements.max_memory_per_gpu_bytes", true,
          req.max_memory_per_gpu_bytes(), memory, Unit::Bytes);
  if (req.has_max_latency_s())
    check("latency", "requirements.max_latency_s", true, req.max_latency_s(), point.latency_s(),
          Unit::Seconds);
  if (req.has_min_throughput_tokens_per_s())
    check("throughput", "requirements.min_throughput_tokens_per_s", false,
          req.min_throughput_tokens_per_s(), point.throughput_tokens_per_s(),
          Unit::TokensPerSecond);
  if (req.has_min_load_balance())
    check("load balance", "requirements.min_load_balance", false, req.min_load_balance(),
          point.load_balance(), Unit::Fraction);
  if (req.has_max_comm_overhead())
    check("communication overhead (exposed)", "requirements.max_comm_overhead", true,
          req.max_comm_overhead(), point.exposed_comm_share(), Unit::Fraction);
  if (req.has_min_gpu_utilization())
    check("GPU utilization", "requirements.min_gpu_utilization", false,
          req.min_gpu_utilization(), point.utilization(), Unit::Fraction);
  if (req.has_max_ttft_s())
    check("time to first token", "requirements.max_ttft_s", true, req.max_ttft_s(),
          point.ttft_s(), Unit::Seconds);
  if (req.has_max_tpot_s())
    check("time per output token (p99)", "requirements.max_tpot_s", true, req.max_tpot_s(),
          point.tpot_p99_s(), Unit::Seconds);
  if (req.has_min_decode_tokens_per_s())
    check("decode throughput", "requirements.min_decode_tokens_per_s", false,
          req.min_decode_tokens_per_s(), point.decode_tokens_per_s(), Unit::TokensPerSecond);
  return out;
}

std::string formatClaimValue(const std::string &unit, double v) {
  if (unit == "s") return formatSeconds(v);
  if (unit == "bytes") return formatBytes(v);
  if (unit == "tokens/s") return formatCount(v) + " tokens/s";
  if (unit == "sequences/s") return formatCount(v) + " sequences/s";
  if (unit == "fraction") return percent(v);
  return formatCount(v);
}

std::string formatRatio(double derived, double claimed) {
  char buf[32];
  double r = claimed != 0 ? derived / claimed : 0;
  std::snprintf(buf, sizeof buf, r >= 10 || r < 0.1 ? "x%.3g" : "x%.2f", r);
  return buf;
}

std::string renderWorkloadPoints(const plan::Plan &p) {
  if (p.workload_points_size() == 0) return "";
  std::ostringstream out;
  out << "workload: the same deployment compiled and simulated at each judged sequence length "
         "(this plan: "
      << p.workload().seq_len() << ")\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %8s %10s %16s %11s %8s %8s %8s %8s\n", "seq_len",
                "latency", "throughput", "memory/GPU", "exposed", "bubble", "util", "balance");
  out << line;
  for (const plan::WorkloadPoint &w : p.workload_points()) {
    std::snprintf(line, sizeof line, "  %8u %10s %16s %11s %8s %8s %8s %8s\n", w.seq_len(),
                  formatSeconds(w.latency_s()).c_str(),
                  (formatCount(w.throughput_tokens_per_s()) + " tok/s").c_str(),
                  formatBytes(double(w.memory_bytes())).c_str(),
                  percent(w.exposed_comm_share()).c_str(), percent(w.bubble_fraction()).c_str(),
                  percent(w.utilization()).c_str(), percent(w.load_balance()).c_str());
    out << line;
  }
  for (const plan::WorkloadPoint &w : p.workload_points())
    if (p.workload().phase() == plan::GENERATE)
      out << "  generation of " << p.workload().new_tokens() << " tokens after a "
          << w.seq_len() << "-token prompt: time to first token " << formatSeconds(w.ttft_s())
          << " (the prefill above), per output token " << formatSeconds(w.tpot_median_s())
          << " median, " << formatSeconds(w.tpot_p99_s()) << " p99; decode "
          << formatCount(w.decode_tokens_per_s()) << " tokens/s\n";
  // Each requirement with its verdict at every point.
  std::vector<std::vector<RequirementCheck>> judged;
  for (const plan::WorkloadPoint &w : p.workload_points()) judged.push_back(judgeRequirements(p, w));
  out << "requirements at each sequence length\n";
  for (size_t i = 0; i < judged.front().size(); ++i) {
    const RequirementCheck &c = judged.front()[i];
    bool all = true;
    for (const auto &j : judged) all = all && j[i].pass;
    out << "  " << (all ? "pass" : "FAIL") << "  " << c.name << (c.atMost ? " <= " : " >= ")
        << formatRequirementValue(c.unit, c.required) << " (" << c.field << "):";
    for (size_t k = 0; k < judged.size(); ++k)
      out << (k ? "," : "") << " " << (judged[k][i].pass ? "" : "FAIL ") << "at "
          << p.workload_points(int(k)).seq_len() << " "
          << formatRequirementValue(c.unit, judged[k][i].predicted);
    out << "\n";
  }
  return out.str();
}

nlohmann::json requirementsJson(const std::vector<RequirementCheck> &checks) {
  nlohmann::json out = nlohmann::json::array();
  for (const RequirementCheck &c : checks)
    out.push_back({{"name", c.name},
                   {"field", c.field},
                   {"comparison", c.atMost ? "<=" : ">="},
                   {"required", c.required},
                   {"predicted", c.predicted},
                   {"pass", c.pass}});
  return out;
}

nlohmann::json workloadPointJson(const plan::WorkloadPoint &w,
                                 const std::vector<RequirementCheck> &checks) {
  return {{"seq_len", w.seq_len()},
          {"latency_s", w.latency_s()},
          {"throughput_tokens_per_s", w.throughput_tokens_per_s()},
          {"memory_bytes", w.memory_bytes()},
          {"memory_stage", w.memory_stage()},
          {"activation_bytes", w.activation_bytes()},
          {"exposed_comm_share", w.exposed_comm_share()},
          {"load_balance", w.load_balance()},
          {"utilization", w.utilization()},
          {"bubble_fraction", w.bubble_fraction()},
          {"dropped_token_fraction", w.dropped_token_fraction()},
          {"roofline_s", w.roofline_s()},
          {"layer_compute_s", w.layer_compute_s()},
          {"mean_collective_s", w.mean_collective_s()},
          {"requirements", requirementsJson(checks)}};
}

nlohmann::json workloadPointsJson(const plan::Plan &p) {
  nlohmann::json points = nlohmann::json::array();
  for (const plan::WorkloadPoint &w : p.workload_points())
    points.push_back(workloadPointJson(w, judgeRequirements(p, w)));
  return points;
}

std::string renderClaims(const plan::Plan &p) {
  if (p.claims_size() == 0) return "";
  std::ostringstream out;
  out << "claims: what the description asserts, beside what moeplan derives (ratio derived / "
         "claimed)\n";
  for (const plan::ClaimCheck &c : p.claims()) {
    out << "  " << (c.consistent() ? "consistent  " : "INCONSISTENT") << "  " << c.name() << " ("
        << c.field() << "): claimed " << formatClaimValue(c.unit(), c.claimed()) << "; derived";
    bool perPoint = c.derived_size() > 1 && c.derived_size() == p.workload_points_size();
    for (int k = 0; k < c.derived_size(); ++k) {
      out << (k ? "," : "") << " " << formatClaimValue(c.unit(), c.derived(k));
      if (perPoint) out << " at " << p.workload_points(k).seq_len();
      out << " (" << formatRatio(c.derived(k), c.claimed()) << ")";
    }
    char tol[32];
    std::snprintf(tol, sizeof tol, "%g%%", 100 * c.tolerance());
    out << "; tolerance " << tol << "\n";
  }
  return out.str();
}

nlohmann::json claimsJson(const plan::Plan &p) {
  using nlohmann::json;
  json claims = json::array();
  for (const plan::ClaimCheck &c : p.claims()) {
    json derived = json::array(), ratios = json::array();
    for (double d : c.derived()) {
      derived.push_back(d);
      ratios.push_back(c.claimed() != 0 ? d / c.claimed() : 0);
    }
    claims.push_back({{"name", c.name()},
                      {"field", c.field()},
                      {"unit", c.unit()},
                      {"claimed", c.claimed()},
                      {"derived", derived},
                      {"ratio", ratios},
                      {"tolerance", c.tolerance()},
                      {"consistent", c.consistent()}});
  }
  return claims;
}

MeasuredRouting routingFromRunReport(const plan::Plan &p, const nlohmann::json &report,
                                     std::string &error) {
  const uint64_t layers = p.model().layers(), experts = p.model().experts();
  auto fail = [&](const std::string &what) {
    error = what;
    return MeasuredRouting{};
  };
  if (!report.is_object() || report.value("schema", "") != "moeplan-run")
    return fail("schema: not a moeplan-run report (moeplan-run --report-json)");
  if (experts == 0) return fail("the plan's model has no experts");
  auto it = report.find("expert_load");
  if (it == report.end() || !it->is_array() || it->empty())
    return fail("expert_load: missing or empty (the run routed nothing)");
  MeasuredRouting measured;
  std::vector<double> &table = measured.expertLoad;
  table.assign(layers * experts, 0.0);
  measured.stickiness.assign(layers, 0.0);
  std::vector<bool> seen(layers, false);
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json &l = (*it)[i];
    const std::string at = "expert_load[" + std::to_string(i) + "]";
    if (!l.is_object() || !l.contains("layer") || !l["layer"].is_number_integer())
      return fail(at + ".layer: missing or not an integer");
    const int64_t layer = l["layer"].get<int64_t>();
    if (layer < 0 || uint64_t(layer) >= layers || seen[size_t(layer)])
      return fail(at + ".layer: " + std::to_string(layer) + " is not a layer of the plan's " +
                  std::to_string(layers) + ", or repeats");
    seen[size_t(layer)] = true;
    const nlohmann::json &routed = l.value("routed_per_expert", nlohmann::json());
    if (!routed.is_array() || routed.size() != experts)
      return fail(at + ".routed_per_expert: expected " + std::to_string(experts) +
                  " counts (the plan's experts)");
    double total = 0;
    for (size_t e = 0; e < experts; ++e) {
      if (!routed[e].is_number() || !(routed[e].get<double>() >= 0))
        return fail(at + ".routed_per_expert[" + std::to_string(e) + "]: not a count >= 0");
      table[size_t(layer) * experts + e] = routed[e].get<double>();
      total += routed[e].get<double>();
    }
    if (!(total > 0)) return fail(at + ".routed_per_expert: sums to 0");
    const nlohmann::json &geometry = l.value("dispatch", nlohmann::json());
    if (geometry.is_null()) {
      measured.unfitted.push_back(layer);
      continue;
    }
    auto count = [&](const char *field, int64_t least) -> std::optional<int64_t> {
      const nlohmann::json &v = geometry.value(field, nlohmann::json());
      if (!v.is_number_integer() || v.get<int64_t>() < least) return std::nullopt;
      return v.get<int64_t>();
    };
    const std::optional<int64_t> tokens = count("tokens_per_group", 1), capacity = count("capacity", 0);
    if (!tokens || !capacity)
      return fail(at + ".dispatch: tokens_per_group (>= 1) and capacity (>= 0) must be integers");
    const nlohmann::json &dropped = l.value("dropped", nlohmann::json());
    if (!dropped.is_number() || !(dropped.get<double>() >= 0) || dropped.get<double>() > total)
      return fail(at + ".dropped: not a count between 0 and the layer's " +
                  std::to_string(int64_t(total)) + " choices");
    sim::RoutingModel model{int64_t(experts), int64_t(p.model().top_k()),
                            {table.begin() + int64_t(layer * experts), table.begin() + int64_t((layer + 1) * experts)}, 0};
    measured.stickiness[size_t(layer)] = sim::fitStickiness(model, *tokens, *capacity, dropped.get<double>() / total);
  }
  return measured;
}

MeasuredComparison compareWithMeasured(const plan::Plan &p, const sim::Prediction &pred,
                                       const nlohmann::json &report, std::string &error) {
  MeasuredComparison c;
  auto fail = [&](const std::string &what) {
    error = what;
    return MeasuredComparison{};
  };
  if (!report.is_object() || report.value("schema", "") != "moeplan-run")
    return fail("schema: not a moeplan-run report (moeplan-run --report-json)");
  if (p.workload().phase() == plan::GENERATE)
    return fail("the plan generates: the run measured the whole generation, the prediction "
                "is one forward pass; compare a PREFILL or DECODE plan");
  if (!report.contains("ranks") || !report["ranks"].is_number_integer() ||
      report["ranks"].get<int64_t>() != p.ranks_size())
    return fail("ranks: the run had " + (report.contains("ranks") ? report["ranks"].dump() : "none") +
                ", the plan " + std::to_string(p.ranks_size()));
  c.backend = report.value("backend", "");
  c.comm = report.value("comm", "");
  // A report that measured the collectives' waits (moeplan-run's wait_seconds: the time a
  // rank waited for the last member of the instance to issue it) is compared part by part:
  // each collective kind from the moment its instance is complete, and the waits as rows of
  // their own, for groups and for send/recv peers. An older report: each collective from
  // when its rank issued it, wait included.
  const nlohmann::json &measuredCollectives = report.value("collective_seconds", nlohmann::json::object());
  bool split = false;
  if (measuredCollectives.is_object()) {
    size_t with = 0;
    for (const auto &[name, m] : measuredCollectives.items()) {
      if (!m.is_object() || !m.contains("wait_seconds")) continue;
      ++with;
      const nlohmann::json &w = m["wait_seconds"];
      if (!w.is_number() || !std::isfinite(w.get<double>()) || w.get<double>() < 0 ||
          !m.contains("seconds") || !m["seconds"].is_number() ||
          w.get<double>() > m["seconds"].get<double>() * (1 + 1e-9))
        return fail("collective_seconds." + name + ".wait_seconds: " + w.dump() +
                    " is not a time between 0 and the kind's seconds");
    }
    if (with > 0 && with != measuredCollectives.size())
      return fail("collective_seconds: wait_seconds for " + std::to_string(with) + " of " +
                  std::to_string(measuredCollectives.size()) + " kinds; a run measures all or none");
    split = with > 0;
  }
  // Predicted time and instruction count per kind, over all ranks.
  std::map<std::string, std::pair<double, uint64_t>> kernels, collectives;
  double groupWait = 0, peerWait = 0;
  for (const sim::RankTimeline &t : pred.ranks) {
    const plan::Program &program = p.programs(int(p.ranks(int(t.rank)).program()));
    for (const sim::InstructionTiming &timing : t.instructions) {
      const plan::Instruction &inst = program.instructions(int(timing.instruction));
      auto &slot = inst.has_kernel() ? kernels[plan::KernelKind_Name(inst.kernel().kind())]
                                     : collectives[plan::CollectiveKind_Name(inst.collective().kind())];
      slot.first += timing.end - (inst.has_kernel() || split ? timing.start : timing.issued);
      slot.second += 1;
      if (inst.has_collective() && split) {
        const plan::CollectiveKind k = inst.collective().kind();
        (k == plan::SEND || k == plan::RECV ? peerWait : groupWait) += timing.start - timing.issued;
      }
    }
  }
  double measuredGroupWait = 0, measuredPeerWait = 0;
  for (auto [field, predicted, kind] :
       {std::tuple{"kernel_seconds", &kernels, "kernel"}, {"collective_seconds", &collectives, "collective"}}) {
    const nlohmann::json &measured = report.value(field, nlohmann::json::object());
    if (!measured.is_object()) return fail(std::string(field) + ": not an object");
    if (measured.empty() && !predicted->empty())
      return fail(std::string(field) + ": empty (a --graph run has no per-instruction times)");
    for (const auto &[name, value] : measured.items())
      if (!predicted->count(name))
        return fail(std::string(field) + "." + name + ": the plan has no such instruction");
    for (const auto &[name, slot] : *predicted) {
      const nlohmann::json &m = measured.value(name, nlohmann::json());
      if (!m.is_object() || !m.contains("seconds") || !m["seconds"].is_number() ||
          !m.contains("count") || !m["count"].is_number_integer())
        return fail(std::string(field) + "." + name + ": missing (the plan runs " +
                    std::to_string(slot.second) + ")");
      if (m["count"].get<uint64_t>() != slot.second)
        return fail(std::string(field) + "." + name + ".count: " + m["count"].dump() +
                    ", the plan runs " + std::to_string(slot.second) + ": a report of another plan");
      double seconds = m["seconds"].get<double>();
      if (split && std::string(kind) == "collective") {
        const double wait = std::min(seconds, m["wait_seconds"].get<double>());  // checked above
        (name == "SEND" || name == "RECV" ? measuredPeerWait : measuredGroupWait) += wait;
        seconds -= wait;
      }
      c.rows.push_back({name, kind, slot.second, slot.first, seconds});
    }
  }
  if (split) {
    if (groupWait > 0 || measuredGroupWait > 0)
      c.rows.push_back({"waiting for the group", "wait", 0, groupWait, measuredGroupWait});
    if (peerWait > 0 || measuredPeerWait > 0)
      c.rows.push_back({"waiting for the peer", "wait", 0, peerWait, measuredPeerWait});
  }
  c.waitsSplit = split;
  const nlohmann::json &walls = report.value("wall_seconds_per_rank", nlohmann::json());
  if (!walls.is_array() || walls.size() != size_t(p.ranks_size()))
    return fail("wall_seconds_per_rank: expected " + std::to_string(p.ranks_size()) + " times");
  double slowest = 0;
  for (const sim::RankTimeline &t : pred.ranks) {
    if (!walls[t.rank].is_number()) return fail("wall_seconds_per_rank[" + std::to_string(t.rank) + "]: not a number");
    const double w = walls[t.rank].get<double>();
    slowest = std::max(slowest, w);
    c.rows.push_back({"rank " + std::to_string(t.rank), "rank", 0, t.end, w});
  }
  c.rows.push_back({"forward pass (slowest rank)", "total", 0, pred.latencySeconds, slowest});
  return c;
}

std::string renderMeasured(const MeasuredComparison &c) {
  std::ostringstream out;
  out << "prediction against measurement (" << c.backend << " / " << c.comm
      << "; ratio predicted / measured; kinds summed over ranks)\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-28s %10s %12s %12s %8s\n", "component", "count", "predicted",
                "measured", "ratio");
  out << line;
  // Up to 16 ranks each; past that the fastest and the slowest measured.
  size_t ranks = 0, fastest = 0, slowest = 0;
  for (size_t i = 0; i < c.rows.size(); ++i) {
    if (c.rows[i].kind != "rank") continue;
    if (ranks++ == 0) fastest = slowest = i;
    if (c.rows[i].measured < c.rows[fastest].measured) fastest = i;
    if (c.rows[i].measured > c.rows[slowest].measured) slowest = i;
  }
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const MeasuredRow &r = c.rows[i];
    if (r.kind == "rank" && ranks > 16 && i != fastest && i != slowest) continue;
    const std::string count = r.count ? std::to_string(r.count) : "";
    const std::string ratio = r.measured > 0 ? formatNumber(r.predicted / r.measured) : "-";
    std::snprintf(line, sizeof line, "  %-28s %10s %12s %12s %8s\n",
                  (r.kind == "collective" ? r.component + " (coll.)" : r.component).c_str(),
                  count.c_str(), formatSeconds(r.predicted).c_str(), formatSeconds(r.measured).c_str(),
                  ratio.c_str());
    out << line;
  }
  out << (c.waitsSplit
              ? "  (a collective counts from when the last member of its group, or its send/recv "
                "peer, issued it; each rank's wait for that member is a row of its own)\n"
              : "  (a collective counts from when its rank issued it, predicted and measured: its "
                "wait for the slowest member of its group included)\n");
  return out.str();
}

nlohmann::json measuredJson(const MeasuredComparison &c) {
  nlohmann::json rows = nlohmann::json::array();
  for (const MeasuredRow &r : c.rows)
    rows.push_back({{"component", r.component}, {"kind", r.kind}, {"count", r.count},
                    {"predicted_s", r.predicted}, {"measured_s", r.measured},
                    {"ratio", r.measured > 0 ? r.predicted / r.measured : 0.0}});
  return {{"backend", c.backend}, {"comm", c.comm}, {"waits_split", c.waitsSplit}, {"rows", rows}};
}

bool InspectReport::requirementsMet() const {
  return std::all_of(requirements.begin(), requirements.end(),
                     [](const RequirementCheck &c) { return c.pass; });
}

InspectReport inspectPlan(const plan::Plan &p, sim::Prediction prediction) {
  InspectReport r;
  r.measuredExpertLoad = p.model().expert_load_size() > 0;
  for (const sim::RankTimeline &t : prediction.ranks)
    r.executedFlops += double(t.flops), r.modelFlops += double(t.modelFlops);
  r.name = p.name();
  r.source = p.source();
  r.strategy = p.strategy();
  r.cluster = p.cluster();
  r.ranks = uint32_t(p.ranks_size());
  r.clusterGpus = uint64_t(p.cluster().nodes()) * p.cluster().gpus_per_node();
  r.idleGpus = r.clusterGpus > r.ranks ? r.clusterGpus - r.ranks : 0;
  r.programs = summarizePrograms(p);
  for (const ProgramSummary &s : r.programs)
    if (s.memory.arenaBytes > r.maxArenaBytes)
      r.maxArenaBytes = s.memory.arenaBytes, r.maxArenaStage = s.stage;
  r.prediction = std::move(prediction);
  r.notes.assign(p.notes().begin(), p.notes().end());

  r.requirements = judgeRequirements(p, workloadPoint(p, r.prediction));
  return r;
}

InspectReport inspectPlan(const plan::Plan &p) { return inspectPlan(p, sim::simulate(p)); }

std::string renderInspectText(const InspectReport &r) {
  std::ostringstream out;
  const plan::Strategy &s = r.strategy;
  out << "plan " << quoted(r.name);
  if (!r.source.empty()) out << " (compiled from " << r.source << ")";
  out << "\nstrategy: tp " << s.tp() << ", pp " << s.pp() << ", dp " << s.dp() << ", ep " << s.ep()
      << ", expert_tp " << s.expert_tp() << ", expert_dp " << s.expert_dp() << "; "
      << s.micro_batches() << " micro-batches (" << plan::Schedule_Name(s.schedule());
  if (s.overlap() == plan::DUAL_MICRO_BATCH)
    out << "; DUAL_MICRO_BATCH: " << s.micro_batches() / 2 << " pairs of halves interleaved";
  out << "); capacity " << s.capacity() << " (factor " << formatNumber(s.capacity_factor()) << ")";
  if (!s.rank_order().empty()) out << "; rank order " << s.rank_order();
  out << "\nmesh: " << r.ranks << " ranks on " << r.cluster.nodes() << " node"
      << (r.cluster.nodes() == 1 ? "" : "s") << " x " << r.cluster.gpus_per_node() << " GPUs";
  if (r.idleGpus > 0)
    out << "; " << r.idleGpus << " of " << r.clusterGpus << " GPUs idle ("
        << (r.idleGpus == 1 ? std::to_string(r.ranks)
                            : std::to_string(r.ranks) + "-" + std::to_string(r.clusterGpus - 1))
        << ")";
  out << "\n";

  for (const ProgramSummary &p : r.programs) {
    out << "\nstage " << p.stage << " (program " << p.program << "): layers [" << p.firstLayer
        << ", " << p.endLayer << "), ranks " << formatRanks(p.ranks) << "\n";
    const MemoryAtPeak &m = p.memory;
    out << "  memory: " << formatBytes(double(m.arenaBytes)) << " arena per GPU; at the peak, "
        << "instruction " << m.instruction << " " << quoted(p.peakLabel) << ", "
        << formatBytes(double(m.liveBytes)) << " live:\n    ";
    for (size_t k = 0; k < kMemoryKinds; ++k)
      out << (k ? ", " : "") << memoryKindTitle(MemoryKind(k)) << " "
          << formatBytes(double(m.byKind[k]));
    out << "\n    fragmentation " << formatBytes(double(m.fragmentationBytes()))
        << " (arena bytes no live buffer uses at the peak)\n";
    uint64_t kernelCount = 0;
    for (const KernelTotals &k : p.kernels) kernelCount += k.count;
    out << "  kernels: " << kernelCount << " of " << p.instructions << " instructions, "
        << flopsText(double(p.flops)) << "\n";
    for (const KernelTotals &k : p.kernels)
      out << "    " << plan::KernelKind_Name(k.kind) << " " << k.count << ", "
          << flopsText(double(k.flops)) << "\n";
    if (!p.collectives.empty()) out << "  collectives:\n";
    for (const CollectiveTotals &c : p.collectives) {
      out << "    " << c.axis << ": " << c.count << " (";
      bool first = true;
      for (const auto &[kind, count] : c.kinds)
        out << (first ? "" : ", ") << kind << " " << count, first = false;
      out << "), " << formatBytes(double(c.commBytes)) << "\n";
    }
  }

  const sim::Prediction &pred = r.prediction;
  out << "\nprediction (simulated)\n"
      << "  latency " << formatSeconds(pred.latencySeconds) << ", throughput "
      << formatCount(pred.throughputTokensPerSecond) << " tokens/s\n"
      << "  pipeline bubble " << percent(pred.bubbleFraction) << "; communication "
      << percent(pred.commShare) << " of the time (exposed " << percent(pred.exposedCommShare)
      << ", overlapped " << percent(pred.overlappedCommShare) << ")\n"
      << "  utilization " << percent(pred.utilization) << ", load balance "
      << percent(pred.loadBalance) << ", dropped tokens " << percent(pred.droppedTokenFraction)
      << "\n"
      << "  roofline: at least " << formatSeconds(pred.rooflineSeconds) << ", bound by "
      << pred.rooflineBound << " on rank " << pred.rooflineRank << "\n";
  out << "  FLOPs over all ranks: " << flopsText(r.executedFlops)
      << " executed (causal attention; expert rows as routed, the busiest EP rank's on every "
         "rank), "
      << flopsText(r.modelFlops) << " by the model's count (Narayanan: full attention, routed "
         "choices)\n";
  if (!pred.routing.empty()) {
    const bool sticky = std::any_of(pred.routing.begin(), pred.routing.end(),
                                    [](const sim::LayerRouting &l) { return l.stickiness > 0; });
    out << "  routing (expected; " << (r.measuredExpertLoad ? "model.expert_load" : "uniform")
        << (sticky ? ", tokens in clumps: model.routing_stickiness" : "")
        << "): per MoE layer, load balance over the batch / dropped choices / capacity rows "
           "filled on the busiest EP rank (mean rank)"
        << (sticky ? " / stickiness" : "") << "\n";
    for (const sim::LayerRouting &l : pred.routing) {
      out << "    layer " << l.layer << ": " << percent(l.loadBalance) << " / "
          << percent(l.droppedFraction) << " / " << percent(l.busiestFill) << " ("
          << percent(l.meanFill) << ")";
      if (sticky) out << " / " << formatNumber(l.stickiness);
      out << "\n";
    }
  }
  if (const auto &g = pred.generation) {
    out << "  (the figures above are the prefill's)\n"
        << "  generation: time to first token " << formatSeconds(g->ttftSeconds)
        << "; " << g->steps << " decode steps";
    const bool sampled = g->simulatedSteps.size() < g->steps;
    if (sampled) out << " (" << g->simulatedSteps.size() << " sampled in windows)";
    out << ": per output token " << formatSeconds(g->tpotMedianSeconds) << " median, "
        << formatSeconds(g->tpotP99Seconds) << " p99";
    const char *which = sampled ? " sampled " : " ";
    if (!g->stepSeconds.empty())
      out << " (first" << which << formatSeconds(g->stepSeconds.front()) << ", last" << which
          << formatSeconds(g->stepSeconds.back()) << ")";
    out << "; decode " << formatCount(g->decodeTokensPerSecond) << " tokens/s\n";
  }

  out << "\nrequirements\n";
  for (const RequirementCheck &c : r.requirements)
    out << "  " << (c.pass ? "pass" : "FAIL") << "  " << c.name << ": "
        << formatRequirementValue(c.unit, c.predicted) << (c.atMost ? " <= " : " >= ")
        << formatRequirementValue(c.unit, c.required) << " (" << c.field << ")\n";

  if (!r.notes.empty()) {
    out << "\nnotes\n";
    for (const std::string &n : r.notes) out << "  " << n << "\n";
  }
  return out.str();
}

nlohmann::json inspectJson(const InspectReport &r) {
  using nlohmann::json;
  const plan::Strategy &s = r.strategy;
  json j = {{"schema", "moeplan-inspect"}, {"version", 1}, {"name", r.name}, {"source", r.source}};
  j["strategy"] = {{"tp", s.tp()},
                   {"pp", s.pp()},
                   {"dp", s.dp()},
                   {"ep", s.ep()},
                   {"expert_tp", s.expert_tp()},
                   {"expert_dp", s.expert_dp()},
                   {"micro_batches", s.micro_batches()},
                   {"capacity_factor", s.capacity_factor()},
                   {"capacity", s.capacity()},
                   {"schedule", plan::Schedule_Name(s.schedule())},
                   {"overlap", plan::Overlap_Name(s.overlap())},
                   {"rank_order", s.rank_order()}};
  j["mesh"] = {{"ranks", r.ranks},
               {"nodes", r.cluster.nodes()},
               {"gpus_per_node", r.cluster.gpus_per_node()},
               {"cluster_gpus", r.clusterGpus},
               {"idle_gpus", {{"count", r.idleGpus}, {"first", r.ranks}}}};
  json programs = json::array();
  for (const ProgramSummary &p : r.programs) {
    json byKind = json::object();
    for (size_t k = 0; k < kMemoryKinds; ++k)
      byKind[memoryKindName(MemoryKind(k))] = p.memory.byKind[k];
    json kernels = json::array();
    for (const KernelTotals &k : p.kernels)
      kernels.push_back(
          {{"kind", plan::KernelKind_Name(k.kind)}, {"count", k.count}, {"flops", k.flops}});
    json collectives = json::array();
    for (const CollectiveTotals &c : p.collectives)
      collectives.push_back(
          {{"axis", c.axis}, {"count", c.count}, {"comm_bytes", c.commBytes}, {"kinds", c.kinds}});
    programs.push_back({{"program", p.program},
                        {"stage", p.stage},
                        {"first_layer", p.firstLayer},
                        {"end_layer", p.endLayer},
                        {"ranks", p.ranks},
                        {"instructions", p.instructions},
                        {"memory",
                         {{"peak_instruction", p.memory.instruction},
                          {"peak_label", p.peakLabel},
                          {"live_bytes", p.memory.liveBytes},
                          {"arena_bytes", p.memory.arenaBytes},
                          {"fragmentation_bytes", p.memory.fragmentationBytes()},
                          {"by_kind", byKind}}},
                        {"flops", p.flops},
                        {"kernels", kernels},
                        {"collectives", collectives}});
  }
  j["programs"] = programs;
  const sim::Prediction &pred = r.prediction;
  j["prediction"] = {{"latency_s", pred.latencySeconds},
                     {"throughput_tokens_per_s", pred.throughputTokensPerSecond},
                     {"bubble_fraction", pred.bubbleFraction},
                     {"comm_share", pred.commShare},
                     {"exposed_comm_share", pred.exposedCommShare},
                     {"overlapped_comm_share", pred.overlappedCommShare},
                     {"utilization", pred.utilization},
                     {"load_balance", pred.loadBalance},
                     {"dropped_token_fraction", pred.droppedTokenFraction},
                     {"roofline",
                      {{"seconds", pred.rooflineSeconds},
                       {"rank", pred.rooflineRank},
                       {"bound", pred.rooflineBound}}}};
  j["prediction"]["executed_flops"] = r.executedFlops;
  j["prediction"]["model_flops"] = r.modelFlops;
  nlohmann::json routing = nlohmann::json::array();
  for (const sim::LayerRouting &l : pred.routing)
    routing.push_back({{"layer", l.layer},
                       {"load_balance", l.loadBalance},
                       {"dropped_fraction", l.droppedFraction},
                       {"busiest_fill", l.busiestFill},
                       {"mean_fill", l.meanFill},
                       {"routed_fill", l.routedFill},
                       {"stickiness", l.stickiness}});
  j["prediction"]["routing"] = routing;
  j["prediction"]["expert_load"] = r.measuredExpertLoad ? "model.expert_load" : "uniform";
  j["requirements"] = requirementsJson(r.requirements);
  j["notes"] = r.notes;
  return j;
}

namespace {

// One instruction as `rank` runs it: its group resolved to members, its operands by name.
struct ResolvedInstruction {
  std::string op;  // "GEMM m 4 n 4 k 8" or "ALL_REDUCE tp group 0 {0,1}, 32 x F16"
  nlohmann::json opJson;
  std::vector<std::string> inputs, outputs;
  double seconds = 0;
};

ResolvedInstruction resolve(const plan::Plan &p, uint32_t rank, const plan::Program &program,
                            const plan::Instruction &inst) {
  ResolvedInstruction r;
  std::vector<uint32_t> in, out;
  instructionOperands(inst, in, out);
  for (uint32_t b : in) r.inputs.push_back(bufferName(program, b));
  for (uint32_t b : out) r.outputs.push_back(bufferName(program, b));
  r.seconds = sim::instructionSeconds(p, rank, inst);
  if (inst.has_kernel()) {
    const plan::Kernel &k = inst.kernel();
    r.op = plan::KernelKind_Name(k.kind());
    nlohmann::json dims = nlohmann::json::object();
    for (const auto &[name, value] : kernelDims(k)) {
      r.op += std::string(" ") + name + " " + std::to_string(value);
      dims[name] = value;
    }
    std::string variant = kernelVariant(k);
    if (!variant.empty()) r.op += " " + variant;
    r.opJson = {{"kernel", {{"kind", plan::KernelKind_Name(k.kind())}, {"dims", dims}}}};
    if (!variant.empty()) r.opJson["kernel"]["variant"] = variant;
    return r;
  }
  const plan::Collective &c = inst.collective();
  sim::CollectiveRoute route = sim::routeCollective(p, rank, c);
  std::vector<uint32_t> members = groupRanks(p.groups(int(route.group)));
  std::string kind = plan::CollectiveKind_Name(c.kind());
  std::string dtype = plan::DType_Name(c.dtype());
  r.op = kind + " " + c.axis() + " group " + std::to_string(route.group) + " {" +
         formatRanks(members) + "}";
  nlohmann::json collective = {{"kind", kind},     {"axis", c.axis()},   {"group", route.group},
                               {"ranks", members}, {"count", c.count()}, {"dtype", dtype}};
  if (c.kind() == plan::SEND || c.kind() == plan::RECV) {
    r.op += (c.kind() == plan::SEND ? " to rank " : " from rank ") + std::to_string(route.peerRank);
    collective["peer_rank"] = route.peerRank;
  }
  if (c.kind() == plan::ALL_TO_ALL) {
    r.op += ", send " + joinCounts(c.send_counts()) + " recv " + joinCounts(c.recv_counts()) +
            " x " + dtype;
    collective["send_counts"] =
        std::vector<uint64_t>(c.send_counts().begin(), c.send_counts().end());
    collective["recv_counts"] =
        std::vector<uint64_t>(c.recv_counts().begin(), c.recv_counts().end());
  } else {
    r.op += ", " + std::to_string(c.count()) + " x " + dtype;
  }
  r.opJson = {{"collective", collective}};
  return r;
}

std::string joinNames(const std::vector<std::string> &names) {
  std::string s;
  for (const std::string &n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

} // namespace

std::string renderRankText(const plan::Plan &p, uint32_t rank) {
  const plan::Rank &rk = checkedRank(p, rank);
  const plan::Program &program = p.programs(int(rk.program()));
  std::ostringstream out;
  out << "rank " << rank << ": node " << rk.node() << " GPU " << rk.local_gpu() << ", stage "
      << program.stage() << " (program " << rk.program() << "), layers [" << program.first_layer()
      << ", " << program.end_layer() << "), " << program.instructions_size() << " instructions\n";
  out << "groups:";
  for (int g = 0; g < rk.groups_size(); ++g) {
    const plan::GroupMembership &m = rk.groups(g);
    out << (g ? "; " : " ") << m.axis() << " group " << m.group() << " {"
        << formatRanks(groupRanks(p.groups(int(m.group())))) << "} at " << m.index();
  }
  out << "\n";
  const bool generates = p.workload().phase() == plan::GENERATE;
  if (generates) out << "prefill (run once):\n";
  for (int i = 0; i < program.instructions_size(); ++i) {
    const plan::Instruction &inst = program.instructions(i);
    if (generates && uint32_t(i) == program.decode_begin())
      out << "decode step (run " << (p.workload().new_tokens() - 1)
          << " times; per_step kernels advance by one position each):\n";
    ResolvedInstruction r = resolve(p, rank, program, inst);
    std::string events;
    for (uint32_t e : inst.wait_events())
      events += (events.empty() ? "wait " : ",") + std::to_string(e);
    if (inst.record_event() != 0)
      events += (events.empty() ? "" : " ") + std::string("record ") +
                std::to_string(inst.record_event());
    char head[128];
    std::snprintf(head, sizeof head, "%5d  %-11s %-18s mb %-3u ", i,
                  streamName(inst.stream()).c_str(), events.empty() ? "-" : events.c_str(),
                  inst.micro_batch());
    out << head << (inst.label().empty() ? "(no label)" : inst.label()) << ": " << r.op;
    if (!r.inputs.empty()) out << "; in " << joinNames(r.inputs);
    if (!r.outputs.empty()) out << "; out " << joinNames(r.outputs);
    const plan::Cost &cost = inst.cost();
    if (inst.has_kernel())
      out << "; " << flopsText(double(cost.flops())) << ", "
          << formatBytes(double(cost.memory_bytes())) << " HBM";
    else
      out << "; " << formatBytes(double(cost.comm_bytes())) << " moved";
    out << "; " << formatSeconds(r.seconds) << "\n";
  }
  return out.str();
}

nlohmann::json rankJson(const plan::Plan &p, uint32_t rank) {
  using nlohmann::json;
  const plan::Rank &rk = checkedRank(p, rank);
  const plan::Program &program = p.programs(int(rk.program()));
  json groups = json::array();
  for (const plan::GroupMembership &m : rk.groups())
    groups.push_back({{"axis", m.axis()},
                      {"group", m.group()},
                      {"index", m.index()},
                      {"ranks", groupRanks(p.groups(int(m.group())))}});
  json instructions = json::array();
  for (int i = 0; i < program.instructions_size(); ++i) {
    const plan::Instruction &inst = program.instructions(i);
    ResolvedInstruction r = resolve(p, rank, program, inst);
    json line = {{"index", i},
                 {"stream", inst.stream()},
                 {"wait_events",
                  std::vector<uint32_t>(inst.wait_events().begin(), inst.wait_events().end())},
                 {"record_event", inst.record_event()},
                 {"micro_batch", inst.micro_batch()},
                 {"layer", inst.layer()},
                 {"label", inst.label()},
                 {"inputs", r.inputs},
                 {"outputs", r.outputs},
                 {"flops", inst.cost().flops()},
                 {"memory_bytes", inst.cost().memory_bytes()},
                 {"comm_bytes", inst.cost().comm_bytes()},
                 {"seconds", r.seconds}};
    line.update(r.opJson);
    instructions.push_back(std::move(line));
  }
  return {{"schema", "moeplan-inspect-rank"},
          {"version", 1},
          {"rank", rank},
          {"node", rk.node()},
          {"local_gpu", rk.local_gpu()},
          {"program", rk.program()},
          {"stage", program.stage()},
          {"groups", groups},
          {"instructions", instructions}};
}

std::string renderTraceJson(const plan::Plan &p, const sim::Prediction &prediction) {
  return trace::renderTrace(sim::traceEvents(p, prediction), sim::streamNames());
}

} // namespace moeplan::report
