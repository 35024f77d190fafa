#include "moeplan/Search/Search.h"

#include "moeplan/Analysis/DeviceMesh.h"
#include "moeplan/Analysis/WeightMemory.h"
#include "moeplan/Check/Repair.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Compiler/PlanMemory.h"
#include "moeplan/Simulate/Simulator.h"
#include "moeplan/Support/CheckedMath.h"

#include <google/protobuf/arena.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace moeplan::search {

const char *objectiveName(Objective o) {
  switch (o) {
  case Objective::Throughput: return "throughput";
  case Objective::Latency: return "latency";
  case Objective::Memory: return "memory";
  case Objective::Ttft: return "ttft";
  case Objective::Tpot: return "tpot";
  case Objective::DecodeThroughput: return "decode-throughput";
  }
  return "?";
}

std::optional<Objective> parseObjective(const std::string &name) {
  for (Objective o : {Objective::Throughput, Objective::Latency, Objective::Memory,
                      Objective::Ttft, Objective::Tpot, Objective::DecodeThroughput})
    if (name == objectiveName(o)) return o;
  return std::nullopt;
}

bool judgesGeneration(Objective o) {
  return o == Objective::Ttft || o == Objective::Tpot || o == Objective::DecodeThroughput;
}

Objective defaultObjective(const WorkloadSpec &w) {
  return w.generates() ? Objective::DecodeThroughput : Objective::Throughput;
}

desc::Deployment withStrategy(const desc::Deployment &d, const StrategySpec &s) {
  desc::Deployment out = d;
  desc::Strategy *st = out.mutable_strategy();
  st->Clear();
  st->set_tp(uint32_t(s.tp));
  st->set_pp(uint32_t(s.pp));
  st->set_dp(uint32_t(s.dp));
  st->set_ep(uint32_t(s.ep));
  st->set_expert_tp(uint32_t(s.expertTp));
  st->set_micro_batches(uint32_t(s.microBatches));
  if (s.capacityFactor) st->set_capacity_factor(*s.capacityFactor);
  if (s.dispatchGroups > 1) st->set_dispatch_groups(uint32_t(s.dispatchGroups));
  st->set_schedule(s.schedule);
  if (s.overlap != desc::NO_OVERLAP) st->set_overlap(s.overlap);
  st->set_rank_order(formatRankOrder(s.rankOrder));
  return out;
}

namespace {
bool batchWide(const plan::Buffer &buf) {
  return buf.kind() == plan::KV_CACHE || buf.kind() == plan::INPUT || buf.kind() == plan::OUTPUT;
}
// What plan-memory lays out for the whole program: weights, and the batch's caches, inputs
// and outputs.
bool wholeProgram(const plan::Buffer &buf) { return batchWide(buf) || buf.kind() == plan::WEIGHT; }
// A buffer certainly transient: not laid out for the whole program, nor live over all of it
// (`last`: the program's last instruction).
bool certainlyTransient(const plan::Buffer &buf, uint32_t last) {
  return !wholeProgram(buf) && (buf.live_begin() > 0 || buf.live_end() < last);
}
// Whether the strategy's plan issues its micro-batches one after another, as the probe's one:
// under DUAL_MICRO_BATCH pairs of micro-batches interleave; in a GENERATE plan each rank
// drains its streams between prefill and decode steps.
bool microBatchesInTurn(const plan::Plan &probe, const StrategySpec &strategy) {
  return strategy.overlap != desc::DUAL_MICRO_BATCH && probe.workload().phase() != plan::GENERATE;
}
bool receives(const plan::Program &program) {
  return std::any_of(program.instructions().begin(), program.instructions().end(),
                     [](const plan::Instruction &i) {
                       return i.has_collective() && i.collective().kind() == plan::RECV;
                     });
}
} // namespace

WholeProgramBuffers wholeProgramBuffers(const plan::Program &program, int64_t layerCopies) {
  // The layer's own buffers: weights and caches that the layer's instructions use and no
  // other (the stage's input and output are the batch's, however few instructions use them).
  constexpr char kLayer = 1, kOutside = 2;
  std::vector<char> users(size_t(program.buffers_size()), 0);
  if (layerCopies > 1) {
    std::vector<uint32_t> in, written;
    for (const plan::Instruction &inst : program.instructions()) {
      report::instructionOperands(inst, in, written);
      for (const std::vector<uint32_t> *ids : {&in, &written})
        for (uint32_t b : *ids)
          if (b < users.size()) users[b] |= inst.layer() >= 0 ? kLayer : kOutside;
    }
  }
  WholeProgramBuffers out;
  for (int b = 0; b < program.buffers_size(); ++b) {
    const plan::Buffer &buf = program.buffers(b);
    if (!wholeProgram(buf)) continue;
    const bool layers = (buf.kind() == plan::WEIGHT || buf.kind() == plan::KV_CACHE) &&
                        users[size_t(b)] == kLayer;
    const double copies = layers ? double(layerCopies) : 1.0;
    const double aligned = copies * double(alignedBufferBytes(int64_t(buf.bytes())));
    out.aligned += aligned, out.bytes += copies * double(buf.bytes());
    if (batchWide(buf)) out.batchWideAligned += aligned;
  }
  return out;
}

double transientsInUse(const plan::Program &program) {
  // Per transient buffer, its first and last use in issue order (the instruction's index).
  const size_t n = size_t(program.instructions_size());
  std::vector<uint32_t> first(size_t(program.buffers_size()), UINT32_MAX),
      last(size_t(program.buffers_size()), 0);
  std::vector<uint32_t> in, written;
  for (size_t i = 0; i < n; ++i) {
    report::instructionOperands(program.instructions(int(i)), in, written);
    for (const std::vector<uint32_t> *ids : {&in, &written})
      for (uint32_t b : *ids)
        if (b < first.size()) first[b] = std::min(first[b], uint32_t(i)), last[b] = uint32_t(i);
  }
  // Aligned bytes in use per instruction, from a difference array over those ranges.
  std::vector<double> delta(n + 1, 0);
  for (int b = 0; b < program.buffers_size(); ++b) {
    if (wholeProgram(program.buffers(b)) || first[size_t(b)] == UINT32_MAX) continue;
    const double aligned = double(alignedBufferBytes(int64_t(program.buffers(b).bytes())));
    delta[first[size_t(b)]] += aligned;
    delta[last[size_t(b)] + 1] -= aligned;
  }
  double inUse = 0, most = 0;
  for (size_t i = 0; i < n; ++i) most = std::max(most, inUse += delta[i]);
  return most;
}

std::vector<double> arenaBounds(const plan::Plan &probe, const StrategySpec &strategy) {
  // Neither DUAL_MICRO_BATCH nor a GENERATE plan is emitted micro-batch after micro-batch
  // with SENDs left unwaited.
  const bool sequential = microBatchesInTurn(probe, strategy);
  const double m = double(strategy.microBatches);
  auto isTransfer = [](const plan::Instruction &i) {
    return i.has_collective() &&
           (i.collective().kind() == plan::SEND || i.collective().kind() == plan::RECV);
  };
  std::vector<double> bounds;
  // plan-memory lays out what lives for the whole program first, each buffer aligned:
  // weights once, and the batch's caches, inputs and outputs once per micro-batch (each
  // micro-batch has its own, the probe's size). Its transient buffers lie above them, at
  // least what the probe holds live at its peak: the strategy's first micro-batch holds the
  // same. Without overlap, a program that receives nothing (one stage, or the first) holds
  // more, as plan-schedule emits micro-batch 0's instructions, then 1's, ... (only a RECV of
  // micro-batch j + 1 would come before micro-batch j's compute), each with buffers of its
  // own:
  // - It begins with exactly the probe's instructions, so plan-memory places micro-batch 0's
  //   transients as the probe's, at the same offsets above its base: the arena holds the
  //   probe's whole transient extent, fragmentation included. That extent is at least the
  //   arena less the lowest offset of a buffer certainly transient (not live over the whole
  //   program).
  // - When nothing waits for its SENDs (no event of theirs is waited on) and every transient
  //   is first used by a kernel or a collective, no instruction outside the pipeline stream
  //   is ever ordered after a SEND, so plan-memory never finds a SEND's buffer free for a
  //   later buffer: every earlier micro-batch's buffers that a SEND reads stay beside what
  //   the last micro-batch holds live at its peak, the probe's.
  for (const plan::Program &program : probe.programs()) {
    const int n = program.instructions_size();
    const uint32_t last = n > 0 ? uint32_t(n - 1) : 0;
    const WholeProgramBuffers whole = wholeProgramBuffers(program, 1);
    const double wholeAligned = whole.aligned, wholeBytes = whole.bytes,
                 batchWideAligned = whole.batchWideAligned;
    uint64_t lowestTransient = UINT64_MAX;
    std::vector<char> transient(size_t(program.buffers_size()), 0);
    for (int b = 0; b < program.buffers_size(); ++b) {
      const plan::Buffer &buf = program.buffers(b);
      if (certainlyTransient(buf, last)) {
        transient[size_t(b)] = 1;
        lowestTransient = std::min(lowestTransient, buf.offset());
      }
    }
    bool transferWaitedFor = false, transferFirst = false;
    std::set<uint32_t> transferEvents;
    std::vector<char> sent(transient.size(), 0);
    std::vector<uint32_t> in, written;
    for (const plan::Instruction &inst : program.instructions()) {
      if (!isTransfer(inst)) continue;
      if (inst.record_event() != 0) transferEvents.insert(inst.record_event());
      report::instructionOperands(inst, in, written);
      for (uint32_t b : in)
        if (b < sent.size()) sent[b] = 1;
    }
    for (const plan::Instruction &inst : program.instructions())
      for (uint32_t e : inst.wait_events())
        transferWaitedFor = transferWaitedFor || transferEvents.count(e) > 0;
    // What the probe holds in transients, aligned, at its peak; and the SENDs' buffers.
    std::vector<double> starting(size_t(n) + 1, 0), ending(size_t(n) + 2, 0);
    double sentAligned = 0;
    for (size_t b = 0; b < transient.size(); ++b) {
      if (!transient[b]) continue;
      const plan::Buffer &buf = program.buffers(int(b));
      if (buf.live_begin() > buf.live_end() || buf.live_end() >= uint32_t(n)) continue;
      transferFirst = transferFirst || isTransfer(program.instructions(int(buf.live_begin())));
      const double aligned = double(alignedBufferBytes(int64_t(buf.bytes())));
      starting[buf.live_begin()] += aligned;
      ending[buf.live_end() + 1] += aligned;
      if (sent[b]) sentAligned += aligned;
    }
    double live = 0, transientAtPeak = 0;
    for (int i = 0; i < n; ++i) {
      live += starting[size_t(i)] - ending[size_t(i)];
      transientAtPeak = std::max(transientAtPeak, live);
    }
    double transientBound =
        std::max(0.0, double(report::memoryAtPeak(program).liveBytes) - wholeBytes);
    if (sequential && !receives(program)) {
      if (lowestTransient < program.arena_bytes())
        transientBound = std::max(transientBound, double(program.arena_bytes() - lowestTransient));
      if (!transferWaitedFor && !transferFirst)
        transientBound = std::max(transientBound, (m - 1) * sentAligned + transientAtPeak);
    }
    bounds.push_back(wholeAligned + (m - 1) * batchWideAligned + transientBound);
  }
  return bounds;
}

std::optional<desc::Deployment> probeDeployment(const desc::Deployment &deployment,
                                                const StrategySpec &strategy, int64_t seqLen) {
  const int64_t sequences = int64_t(deployment.workload().sequences());
  if (strategy.microBatches < 1 || sequences % strategy.microBatches != 0) return std::nullopt;
  StrategySpec one = strategy;
  one.microBatches = 1;
  desc::Deployment probe = atSeqLen(withStrategy(deployment, one), seqLen);
  probe.mutable_workload()->set_sequences(uint32_t(sequences / strategy.microBatches));
  return probe;
}

namespace {
// How search compiles a candidate or a probe into `into` (on an arena): quietly, its plan
// simulated and never written (the winner is compiled again), so neither verified after
// each pass nor validated.
CompileOptions searchCompile(plan::Plan *into) {
  CompileOptions o;
  o.printDiagnostics = false;
  o.judgeWorkload = false;
  o.verifyEachPass = false;
  o.validatePlan = false;
  o.into = into;
  return o;
}

// The probe description compiled on `arena`, its expected work applied; nullptr when it does
// not lower.
plan::Plan *compileProbe(CompileSession &session, const desc::Deployment &probe,
                         google::protobuf::Arena &arena) {
  plan::Plan *compiled = google::protobuf::Arena::CreateMessage<plan::Plan>(&arena);
  if (!session.compile(probe, "probe", searchCompile(compiled)).exported) return nullptr;
  sim::applyExpectedWork(*compiled);  // the probe's own plan: scaled once, copied never
  return compiled;
}

// The latency bound of probeMicroBatch from the probe's plan: per rank, its kernels' time for
// one micro-batch (`busy`) and what its compute stream holds at least per micro-batch
// (`perMicroBatch`, at least `busy`).
double latencyBound(const plan::Plan &probe, const StrategySpec &strategy,
                    const std::vector<double> &busy, const std::vector<double> &perMicroBatch) {
  auto stageOf = [&](uint32_t rank) {
    return probe.programs(int(probe.ranks(int(rank)).program())).stage();
  };
  // Per stage, the least kernel time over its ranks.
  std::map<uint32_t, double> leastByStage;
  for (uint32_t rank = 0; rank < busy.size(); ++rank) {
    auto [it, fresh] = leastByStage.emplace(stageOf(rank), busy[rank]);
    if (!fresh) it->second = std::min(it->second, busy[rank]);
  }
  // The first micro-batch reaches a rank through every stage before it, computed there in
  // full before it is sent; the last leaves through every stage after it. Under
  // DUAL_MICRO_BATCH the halves travel apart: half the micro-batch's time per stage.
  const double travelling = strategy.overlap == desc::DUAL_MICRO_BATCH ? 0.5 : 1.0;
  const double m = double(strategy.microBatches);
  double latency = 0;
  for (uint32_t rank = 0; rank < busy.size(); ++rank) {
    const uint32_t stage = stageOf(rank);
    double fill = 0;
    for (const auto &[other, least] : leastByStage)
      if (other != stage) fill += travelling * least;
    latency = std::max(latency, fill + m * perMicroBatch[rank]);
  }
  return latency;
}
} // namespace

std::optional<MicroBatchProbe> probeMicroBatch(CompileSession &session,
                                               const desc::Deployment &deployment,
                                               const StrategySpec &strategy, int64_t seqLen) {
  std::optional<desc::Deployment> probe = probeDeployment(deployment, strategy, seqLen);
  if (!probe) return std::nullopt;
  google::protobuf::Arena arena;
  const plan::Plan *compiled = compileProbe(session, *probe, arena);
  if (!compiled) return std::nullopt;
  // Per micro-batch, what a rank's compute stream holds at least: its kernels, and without
  // overlap also the collectives its own chain passes through between them.
  const bool dual = strategy.overlap == desc::DUAL_MICRO_BATCH;
  const std::vector<sim::SoloCompute> solo = sim::soloComputeOfExpectedWork(*compiled);
  std::vector<double> busy, perMicroBatch;
  for (const sim::SoloCompute &r : solo) {
    busy.push_back(r.busy);
    perMicroBatch.push_back(dual ? r.busy : std::max(r.busy, r.span));
  }
  MicroBatchProbe out;
  out.latencyS = out.orderS = latencyBound(*compiled, strategy, busy, perMicroBatch);
  for (double bound : arenaBounds(*compiled, strategy))
    out.memoryBytes = std::max(out.memoryBytes, bound);
  return out;
}

int64_t alikeLayersPerStage(const DeploymentSpec &spec, const StrategySpec &strategy) {
  const ModelSpec &m = spec.model;
  const int64_t moe = m.moeLayerCount();
  const bool alike = (moe == 0 || moe == m.layers) &&
                     spec.workload.expertLoad.size() <= size_t(std::max<int64_t>(m.experts, 1)) &&
                     spec.workload.routingStickiness.size() <= 1;
  if (!alike || strategy.pp < 1 || m.layers % strategy.pp != 0) return 0;
  const int64_t perStage = m.layers / strategy.pp;
  return perStage >= 2 ? perStage : 0;
}

std::optional<desc::Deployment> layerProbeDeployment(const desc::Deployment &deployment,
                                                     const DeploymentSpec &spec,
                                                     const StrategySpec &strategy,
                                                     int64_t seqLen) {
  if (alikeLayersPerStage(spec, strategy) == 0) return std::nullopt;
  std::optional<desc::Deployment> probe = probeDeployment(deployment, strategy, seqLen);
  if (!probe) return std::nullopt;
  desc::Model *model = probe->mutable_model();
  model->set_layers(uint32_t(strategy.pp));
  if (spec.model.moeLayerCount() == 0) model->mutable_moe_layers()->set_none(true);
  else model->mutable_moe_layers()->set_all(true);
  model->clear_declared_params();  // of the whole model: not this one's
  probe->clear_claims();
  return probe;
}

namespace {
// Of a layer probe's program, the extent of the transients first used up to the end of its
// one layer, above the lowest transient (probeMicroBatchLayer).
double layerExtent(const plan::Program &program) {
  const int n = program.instructions_size();
  const uint32_t last = n > 0 ? uint32_t(n - 1) : 0;
  // The first instruction after the layer's.
  uint32_t end = uint32_t(n);
  bool inLayer = false;
  for (int i = 0; i < n; ++i) {
    const bool layer = program.instructions(i).layer() >= 0;
    if (inLayer && !layer) {
      end = uint32_t(i);
      break;
    }
    inLayer = inLayer || layer;
  }
  uint64_t lowest = UINT64_MAX, top = 0;
  for (const plan::Buffer &buf : program.buffers()) {
    if (!certainlyTransient(buf, last)) continue;
    lowest = std::min(lowest, buf.offset());
    if (buf.live_begin() < end)
      top = std::max(top, buf.offset() + uint64_t(alignedBufferBytes(int64_t(buf.bytes()))));
  }
  return top > lowest ? double(top - lowest) : 0.0;
}
} // namespace

std::optional<MicroBatchProbe> probeMicroBatchLayer(CompileSession &session,
                                                    const desc::Deployment &deployment,
                                                    const DeploymentSpec &spec,
                                                    const StrategySpec &strategy,
                                                    int64_t seqLen) {
  std::optional<desc::Deployment> probe = layerProbeDeployment(deployment, spec, strategy, seqLen);
  if (!probe) return std::nullopt;
  google::protobuf::Arena arena;
  const plan::Plan *compiled = compileProbe(session, *probe, arena);
  if (!compiled) return std::nullopt;
  const int64_t layers = alikeLayersPerStage(spec, strategy);
  // A rank's kernels in the strategy's stage: those outside the layers once, its one layer's
  // `layers` times.
  std::vector<double> busy, perMicroBatch, guess;
  const bool dual = strategy.overlap == desc::DUAL_MICRO_BATCH;
  for (const sim::SoloCompute &r : sim::soloComputeOfExpectedWork(*compiled)) {
    busy.push_back(r.busy + double(layers - 1) * r.layerBusy);
    // Without overlap, its chain: the pieces outside the layers once, its one layer's
    // `layers` times (sim::SoloCompute::chainLayers).
    const double chain = r.chainOutside + double(layers) * r.chainLayers;
    perMicroBatch.push_back(dual ? busy.back() : std::max(busy.back(), chain));
    // Not a bound: each layer's span as long as the one layer's (the span less the kernels
    // outside the layers).
    const double layerSpan = std::max(r.layerBusy, r.span - (r.busy - r.layerBusy));
    guess.push_back(dual ? busy.back()
                         : std::max(perMicroBatch.back(), r.span + double(layers - 1) * layerSpan));
  }
  MicroBatchProbe out;
  out.latencyS = latencyBound(*compiled, strategy, busy, perMicroBatch);
  out.orderS = latencyBound(*compiled, strategy, busy, guess);
  const double m = double(strategy.microBatches);
  // Transients as well where the strategy's first micro-batch runs in the probe's order
  // (probeMicroBatchLayer in Search.h says why they bound its arena).
  const bool sequential = microBatchesInTurn(*compiled, strategy);
  for (const plan::Program &program : compiled->programs()) {
    const WholeProgramBuffers whole = wholeProgramBuffers(program, layers);
    double transients = 0;
    if (sequential) {
      transients = transientsInUse(program);
      // A program that receives nothing issues the probe's instructions up to the end of its
      // one layer first, and plan-memory places their transients as the probe's: its
      // extent above the whole-program buffers, fragmentation included, is there too.
      if (!receives(program)) transients = std::max(transients, layerExtent(program));
    }
    out.memoryBytes = std::max(out.memoryBytes,
                               whole.aligned + (m - 1) * whole.batchWideAligned + transients);
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

// The relative rounding a probe's latency bound may carry (probeAt).
constexpr double kRounding = 1e-9;

std::vector<int64_t> divisorsUpTo(int64_t n, int64_t limit) {
  std::vector<int64_t> out = divisors(n);
  out.erase(std::upper_bound(out.begin(), out.end(), limit), out.end());
  return out;
}

std::vector<std::vector<Axis>> allRankOrders() {
  std::vector<Axis> order{Axis::TP, Axis::EP, Axis::DP, Axis::PP};
  std::vector<std::vector<Axis>> out;
  std::sort(order.begin(), order.end());
  do out.push_back(order);
  while (std::next_permutation(order.begin(), order.end()));
  return out;
}

// What decides the communicator groups: the order of the axes larger than 1 in each grid.
// Two rank orders with the same key give the same groups. With every rank on one node,
// every group is intra-node and the cost model cannot tell orders apart: one key.
std::string rankOrderKey(const StrategySpec &s, bool oneNode) {
  if (oneNode) return "one node";
  std::string attention, expert;
  for (Axis a : s.rankOrder) switch (a) {
    case Axis::TP:
      if (s.tp > 1) attention += 't';
      if (s.expertTp > 1) expert += 't';
      break;
    case Axis::EP:
      if (s.ep > 1) expert += 'e';
      break;
    case Axis::DP:
      if (s.dp > 1) attention += 'd';
      if (s.expertDp() > 1) expert += 'd';
      break;
    case Axis::PP:
      if (s.pp > 1) attention += 'p', expert += 'p';
      break;
    }
  return attention + "|" + expert;
}

// The planned candidates, with the bounds that may prune them.
struct Planned {
  StrategySpec strategy;
  size_t boundIndex = 0;             // which capacity factor's bounds
  std::vector<double> lbLatency;     // per point, seconds
  std::vector<double> ubThroughput;  // per point, tokens/s per GPU
  double lbMemory = 0;               // weights per GPU of the fullest stage
  bool weightsFailRequirement = false;
};

// Requirement fields (report::RequirementCheck::field) no strategy can meet, from the
// *-reachable findings.
std::set<std::string> unreachableFields(const std::vector<Finding> &unreachable) {
  static const std::map<std::string, std::string> byRule = {
      {"requirements.latency-reachable", "requirements.max_latency_s"},
      {"requirements.throughput-reachable", "requirements.min_throughput_tokens_per_s"},
      {"requirements.memory-reachable", "requirements.max_memory_per_gpu_bytes"},
      {"requirements.utilization-reachable", "requirements.min_gpu_utilization"}};
  std::set<std::string> out;
  for (const Finding &f : unreachable)
    if (auto it = byRule.find(f.rule); it != byRule.end()) out.insert(it->second);
  return out;
}

// Whether `a` ranks before `b` for the objective (ties broken by the other figures, then
// fewer GPUs).
bool better(const Evaluated &a, const Evaluated &b, Objective o) {
  auto key = [o](const Evaluated &e) {
    const double world = double(e.strategy.world());
    switch (o) {
    case Objective::Latency:
      return std::make_tuple(e.latencyS, -e.throughputPerGpu, e.memoryBytes, world);
    case Objective::Memory:
      return std::make_tuple(e.memoryBytes, -e.throughputPerGpu, e.latencyS, world);
    case Objective::Ttft:
      return std::make_tuple(e.ttftS, e.tpotS, -e.decodeTokensPerSPerGpu, world);
    case Objective::Tpot:
      return std::make_tuple(e.tpotS, e.ttftS, -e.decodeTokensPerSPerGpu, world);
    case Objective::DecodeThroughput:
      return std::make_tuple(-e.decodeTokensPerSPerGpu, e.tpotS, e.ttftS, world);
    case Objective::Throughput: break;
    }
    return std::make_tuple(-e.throughputPerGpu, e.latencyS, e.memoryBytes, world);
  };
  const auto x = key(a), y = key(b);
  return x != y ? x < y : a.order < b.order;
}

// The figures the Pareto frontier is over, each oriented so that less is better: latency,
// throughput per GPU and memory per GPU; a GENERATE workload's time to first token, time per
// output token, decode tokens/s per GPU and memory per GPU.
std::vector<double> frontierFigures(const Evaluated &e, bool generates) {
  if (generates) return {e.ttftS, e.tpotS, -e.decodeTokensPerSPerGpu, e.memoryBytes};
  return {e.latencyS, -e.throughputPerGpu, e.memoryBytes};
}

bool dominates(const Evaluated &a, const Evaluated &b, bool generates) {
  std::vector<double> x = frontierFigures(a, generates), y = frontierFigures(b, generates);
  bool noWorse = true, better = false;
  for (size_t i = 0; i < x.size(); ++i) {
    noWorse = noWorse && x[i] <= y[i];
    better = better || x[i] < y[i];
  }
  return noWorse && better;
}

std::string strategyText(const StrategySpec &s) {
  std::ostringstream o;
  o << "tp " << s.tp << " pp " << s.pp << " dp " << s.dp << " ep " << s.ep << " expert_tp "
    << s.expertTp << " micro_batches " << s.microBatches << " "
    << (s.schedule == desc::GPIPE ? "GPIPE" : "1F1B") << " capacity_factor "
    << (s.capacityFactor ? formatNumber(*s.capacityFactor) : std::string("none"))
    << " rank_order " << formatRankOrder(s.rankOrder);
  if (s.overlap == desc::DUAL_MICRO_BATCH) o << " overlap DUAL_MICRO_BATCH";
  return o.str();
}

} // namespace

SearchResult searchStrategies(const desc::Deployment &deployment, const DeploymentSpec &spec,
                              const SearchOptions &options) {
  const auto start = Clock::now();
  SearchResult r;
  r.name = spec.name;
  r.objective = options.objective;
  const bool generates = spec.workload.generates();
  r.generates = generates;
  if (judgesGeneration(options.objective) && !generates) {
    r.refused = std::string("objective ") + objectiveName(options.objective) +
                " judges generation: it needs workload.phase GENERATE (with prompt_len and "
                "new_tokens)";
    return r;
  }
  r.clusterGpus = spec.cluster.gpus();
  r.gpuMemoryBytes = spec.cluster.memoryBytes;
  if (spec.requirements.maxLatencyMs) r.maxLatencyS = *spec.requirements.maxLatencyMs / 1e3;
  r.minThroughputTokensPerS = spec.requirements.minThroughputTokensPerS;
  if (spec.requirements.maxMemoryPerGpuGb)
    r.maxMemoryPerGpuBytes = *spec.requirements.maxMemoryPerGpuGb * 1e9;
  r.nodes = spec.cluster.nodes;
  r.gpusPerNode = spec.cluster.gpusPerNode;
  r.seqPoints = spec.workload.seqPoints(options.seqPoints);
  const SearchSpec &ss = spec.search;
  const ModelSpec &m = spec.model;
  const bool moe = m.moeLayerCount() > 0;
  const int64_t maxGpus = ss.maxGpus > 0 ? std::min(ss.maxGpus, r.clusterGpus) : r.clusterGpus;

  // ---- the axes ----
  auto pick = [&](const std::vector<int64_t> &given, int64_t dim) {
    return given.empty() ? divisorsUpTo(dim, maxGpus) : given;
  };
  std::vector<int64_t> tps = pick(ss.tp, m.heads), pps = pick(ss.pp, m.layers),
                       dps = pick(ss.dp, spec.workload.sequences),
                       eps = moe ? pick(ss.ep, m.experts) : std::vector<int64_t>{1},
                       etps = moe ? pick(ss.expertTp, m.expertHidden) : std::vector<int64_t>{1};
  std::vector<int64_t> mbs = ss.microBatches.empty()
                                 ? divisorsUpTo(spec.workload.sequences, spec.workload.sequences)
                                 : ss.microBatches;
  std::vector<desc::Schedule> schedules =
      ss.schedules.empty() ? std::vector<desc::Schedule>{desc::ONE_F_ONE_B, desc::GPIPE}
                           : ss.schedules;
  std::vector<desc::Overlap> overlaps =
      ss.overlaps.empty() ? std::vector<desc::Overlap>{spec.strategy.overlap} : ss.overlaps;
  std::vector<std::optional<double>> cfs;
  if (ss.capacityFactors.empty()) cfs.push_back(spec.strategy.capacityFactor);
  for (double cf : ss.capacityFactors) cfs.push_back(cf);
  if (ss.noCapacityLimit && std::find(cfs.begin(), cfs.end(), std::nullopt) == cfs.end())
    cfs.push_back(std::nullopt);
  if (!moe) cfs = {std::nullopt};
  std::vector<std::vector<Axis>> orders = ss.rankOrders.empty() ? allRankOrders() : ss.rankOrders;
  auto list = [](const auto &v, auto fmt) {
    std::vector<std::string> out;
    for (const auto &x : v) out.push_back(fmt(x));
    return out;
  };
  auto num = [](int64_t v) { return std::to_string(v); };
  r.axes["tp"] = list(tps, num);
  r.axes["pp"] = list(pps, num);
  r.axes["dp"] = list(dps, num);
  r.axes["ep"] = list(eps, num);
  r.axes["expert_tp"] = list(etps, num);
  r.axes["micro_batches"] = list(mbs, num);
  r.axes["schedule"] = list(schedules, [](desc::Schedule s) { return desc::Schedule_Name(s); });
  r.axes["overlap"] = list(overlaps, [](desc::Overlap o) { return desc::Overlap_Name(o); });
  r.axes["capacity_factor"] = list(cfs, [](const std::optional<double> &c) {
    return c ? formatNumber(*c) : std::string("none");
  });
  r.axes["rank_order"] = list(orders, [](const std::vector<Axis> &o) { return formatRankOrder(o); });

  // Refuse a space too large to enumerate in reasonable time rather than run for hours.
  {
    double count = 0;
    for (int64_t tp : tps)
      for (int64_t pp : pps)
        for (int64_t dp : dps)
          if (tp * pp * dp <= maxGpus && tp * pp * dp >= ss.minGpus) ++count;
    count *= double(eps.size()) * double(etps.size()) * double(mbs.size()) * double(cfs.size()) *
             double(orders.size()) * double(schedules.size()) * double(overlaps.size());
    if (count > double(kMaxEnumerated)) {
      r.refused = "the search space holds " + formatCount(count) + " strategies, more than the " +
                  formatCount(double(kMaxEnumerated)) +
                  " search enumerates; narrow some axes in the description's search { } "
                  "section (micro_batches, rank_order, expert_tp, min_gpus, ...)";
      return r;
    }
  }

  // ---- enumerate, reject by the rules, merge what cannot differ ----
  const bool hasOneFOneB =
      std::find(schedules.begin(), schedules.end(), desc::ONE_F_ONE_B) != schedules.end();
  std::vector<Planned> planned;
  std::set<std::string> seen;  // candidates already planned (equivalence key)
  DeploymentSpec cand = spec;   // the spec with each combination's strategy in turn
  StrategySpec &s = cand.strategy;
  s.expertTpDefaulted = false;
  s.placement.clear();
  for (int64_t tp : tps)
    for (int64_t pp : pps)
      for (int64_t dp : dps) {
        int64_t world = tp * pp * dp;  // each <= 2^20 (resolveSpec): no overflow
        if (world > maxGpus || world < ss.minGpus) continue;
        for (int64_t ep : eps)
          for (int64_t etp : etps)
            for (int64_t mb : mbs)
              for (desc::Overlap overlap : overlaps)
              for (const std::optional<double> &cf : cfs) {
                s.tp = tp, s.pp = pp, s.dp = dp, s.ep = ep, s.expertTp = etp;
                s.microBatches = mb, s.capacityFactor = cf, s.overlap = overlap;
                s.rankOrder = orders.front();
                s.schedule = spec.strategy.schedule;
                // The rules that do not depend on the rank order; pp-groups-agree does.
                std::vector<Finding> findings;
                checkStrategy(cand, findings);
                std::set<std::string> broken;
                bool weightsFail = false;
                for (const Finding &f : findings) {
                  if (f.severity != Severity::Error || f.rule == "strategy.pp-groups-agree")
                    continue;
                  if (f.rule == "memory.weights-requirement") weightsFail = true;
                  else broken.insert(f.rule);
                }
                for (const std::vector<Axis> &order : orders) {
                  s.rankOrder = order;
                  const bool ppDisagree = s.expertDp() > 0 && world <= FieldLimits::kGpus &&
                                          DeviceMesh(s).firstPipelineDisagreement() >= 0;
                  r.enumerated += schedules.size();
                  if (!broken.empty() || ppDisagree) {
                    r.rejected += schedules.size();
                    for (const std::string &rule : broken) r.rejectedByRule[rule] += schedules.size();
                    if (ppDisagree) r.rejectedByRule["strategy.pp-groups-agree"] += schedules.size();
                    continue;
                  }
                  for (desc::Schedule schedule : schedules) {
                    if (schedule == desc::GPIPE && hasOneFOneB) {
                      ++r.equivalentSchedule;
                      continue;
                    }
                    s.schedule = schedule;
                    std::string key = std::to_string(tp) + "/" + std::to_string(pp) + "/" +
                                      std::to_string(dp) + "/" + std::to_string(ep) + "/" +
                                      std::to_string(etp) + "/" + std::to_string(mb) + "/" +
                                      (cf ? formatNumber(*cf) : "none") + "/" +
                                      std::to_string(int(schedule)) + "/" +
                                      std::to_string(int(overlap)) + "/" +
                                      rankOrderKey(s, world <= spec.cluster.gpusPerNode);
                    if (!seen.insert(key).second) {
                      ++r.equivalentRankOrder;
                      continue;
                    }
                    Planned p;
                    p.strategy = s;
                    p.boundIndex = size_t(std::find(cfs.begin(), cfs.end(), cf) - cfs.begin());
                    p.weightsFailRequirement = weightsFail;
                    for (const StageWeights &w : weightsPerGpu(m, s))
                      p.lbMemory = std::max(p.lbMemory, w.bytesPerGpu);
                    planned.push_back(std::move(p));
                  }
                }
              }
      }

  if (planned.size() > kMaxCandidates) {
    r.refused = std::to_string(planned.size()) + " valid strategies to compile, more than the " +
                std::to_string(kMaxCandidates) +
                " search compiles (about 0.05-0.5 s each); narrow some axes in the "
                "description's search { } section (micro_batches, rank_order, expert_tp, "
                "min_gpus, ...)";
    return r;
  }

  // ---- bounds: the least FLOPs of the batch per capacity factor ----
  CompileSession session;
  std::vector<std::vector<WorkloadBound>> bounds(cfs.size());
  std::vector<WorkloadBound> least;  // per point, the least over the capacity factors
  for (size_t i = 0; i < cfs.size(); ++i) {
    if (auto b = workloadBounds(session, deployment, spec, r.seqPoints, cfs[i])) bounds[i] = *b;
    for (size_t k = 0; k < bounds[i].size(); ++k) {
      if (least.size() <= k) least.push_back(bounds[i][k]);
      else if (bounds[i][k].flops < least[k].flops) least[k] = bounds[i][k];
    }
  }
  if (least.size() == r.seqPoints.size()) r.unreachable = reachabilityFindings(spec, least);
  for (const Finding &f : checkDeployment(spec))
    if (f.rule == "requirements.utilization-reachable") r.unreachable.push_back(f);
  const std::set<std::string> excluded = unreachableFields(r.unreachable);
  const double peak = spec.cluster.peakFlops * spec.cluster.bestEfficiency();
  // Tokens the whole batch processes at a sequence length (throughput = tokens / latency).
  auto batchTokens = [&](int64_t seqLen) {
    return double(spec.workload.sequences) *
           double(spec.workload.phase == desc::DECODE ? 1 : seqLen);
  };
  for (Planned &p : planned) {
    const std::vector<WorkloadBound> &b = bounds[p.boundIndex];
    const double gpus = double(p.strategy.world());
    for (size_t k = 0; k < b.size(); ++k) {
      double lb = b[k].flops / (gpus * peak);
      p.lbLatency.push_back(lb);
      p.ubThroughput.push_back(lb > 0 ? batchTokens(b[k].seqLen) / lb / gpus : 0);
    }
  }
  // ---- evaluate ----
  const RequirementsSpec &req = spec.requirements;
  // Whether a latency at least `lbLatency` or a whole-batch throughput at most `ubThroughput`
  // already fails a requirement the cluster can meet.
  auto timeFails = [&](double lbLatency, double ubThroughput) {
    return (r.maxLatencyS && !excluded.count("requirements.max_latency_s") &&
            lbLatency > *r.maxLatencyS) ||
           (req.minThroughputTokensPerS &&
            !excluded.count("requirements.min_throughput_tokens_per_s") &&
            ubThroughput < *req.minThroughputTokensPerS);
  };
  auto boundsFail = [&](const Planned &p) {
    // A requirement (the cluster can meet) its bounds already fail.
    if (!excluded.count("requirements.max_memory_per_gpu_bytes") && p.weightsFailRequirement)
      return true;
    for (size_t k = 0; k < p.lbLatency.size(); ++k)
      if (timeFails(p.lbLatency[k], p.ubThroughput[k] * double(p.strategy.world()))) return true;
    return false;
  };
  // Those whose bounds already fail a requirement last (once a feasible strategy is known
  // they are pruned), the others cheapest to compile first (instructions grow with
  // micro-batches x layers per stage): the sooner the feasible frontier is known, the more
  // of the costly candidates it prunes.
  std::vector<char> failsEarly(planned.size());
  for (size_t i = 0; i < planned.size(); ++i) failsEarly[i] = boundsFail(planned[i]);
  std::vector<size_t> rank(planned.size());
  for (size_t i = 0; i < rank.size(); ++i) rank[i] = i;
  std::stable_sort(rank.begin(), rank.end(), [&](size_t a, size_t b) {
    const StrategySpec &x = planned[a].strategy, &y = planned[b].strategy;
    return std::make_pair(failsEarly[a], double(x.microBatches) / double(x.pp)) <
           std::make_pair(failsEarly[b], double(y.microBatches) / double(y.pp));
  });
  {
    std::vector<Planned> sorted;
    sorted.reserve(planned.size());
    for (size_t i : rank) sorted.push_back(std::move(planned[i]));
    planned = std::move(sorted);
  }
  std::mutex mutex;
  std::vector<Evaluated> feasibleSoFar;  // guarded by mutex
  // Whether a feasible strategy found so far is at least as good on all three figures as a
  // candidate whose latency and memory are at least, and throughput per GPU at most, these.
  auto beaten = [&](double latency, double throughputPerGpu, double memory) {
    return std::any_of(feasibleSoFar.begin(), feasibleSoFar.end(), [&](const Evaluated &f) {
      return f.latencyS <= latency && f.throughputPerGpu >= throughputPerGpu &&
             f.memoryBytes <= memory;
    });
  };
  std::vector<Evaluated> evaluated;      // guarded by mutex
  uint64_t compileFailures = 0;
  std::atomic<uint64_t> pruned{0}, prunedByProbe{0}, prunedByLayerProbe{0}, prunedAfterFirst{0};
  unsigned threads = options.threads ? options.threads : std::thread::hardware_concurrency();
  threads = std::max(1u, std::min<unsigned>(threads, unsigned(std::max<size_t>(1, planned.size()))));
  r.threads = threads;
  ProgressCounter progress(options.progress, planned.size());
  // Bounds over the whole workload from one micro-batch compiled alone at each point
  // (longest first): the worst latency and memory are at least the largest of them, the
  // worst throughput at most the least.
  struct Bound {
    double latencyS = 0, throughputPerGpu = INFINITY, memoryBytes = 0;
    double orderS = 0;  // MicroBatchProbe::orderS
    // The worst of both: what bounds a workload that holds both points.
    void include(const Bound &o) {
      latencyS = std::max(latencyS, o.latencyS);
      orderS = std::max(orderS, o.orderS);
      throughputPerGpu = std::min(throughputPerGpu, o.throughputPerGpu);
      memoryBytes = std::max(memoryBytes, o.memoryBytes);
    }
  };
  // `layered`: the probe of one layer per stage (probeMicroBatchLayer), else probeMicroBatch.
  auto probeAt = [&](CompileSession &compiler, const Planned &p, size_t k,
                     bool layered) -> std::optional<Bound> {
    const int64_t len = r.seqPoints[k];
    std::optional<MicroBatchProbe> b =
        layered ? probeMicroBatchLayer(compiler, deployment, spec, p.strategy, len)
                : probeMicroBatch(compiler, deployment, p.strategy, len);
    if (!b) return std::nullopt;
    // A probe sums kernel times in another order than the simulator (and the layer probe
    // multiplies one layer's): a hair below, so that a candidate whose figures tie a feasible
    // strategy's is never pruned by rounding.
    const double latency = b->latencyS * (1 - kRounding);
    const double ubThroughput =
        latency > 0 ? batchTokens(len) / latency / double(p.strategy.world()) : INFINITY;
    return Bound{latency, ubThroughput, b->memoryBytes, b->orderS};
  };
  const bool probes = options.prune && !generates;
  // Whether a probe's bounds `b` at one point, with `worst` over the points probed so far,
  // prune candidate p: they already fail a requirement the cluster can meet at that point,
  // or a feasible strategy beats them.
  auto probePrunes = [&](const Planned &p, const Bound &b, const Bound &worst) {
    const bool fails = b.memoryBytes > spec.cluster.memoryBytes ||
                       (r.maxMemoryPerGpuBytes &&
                        !excluded.count("requirements.max_memory_per_gpu_bytes") &&
                        b.memoryBytes > *r.maxMemoryPerGpuBytes) ||
                       timeFails(b.latencyS, b.throughputPerGpu * double(p.strategy.world()));
    std::lock_guard<std::mutex> lock(mutex);
    return fails || beaten(worst.latencyS, worst.throughputPerGpu, worst.memoryBytes);
  };
  // Per candidate, its probes, of one layer per stage and whole (filled as they are made; a
  // thread owns a candidate at a time).
  std::vector<std::vector<std::optional<Bound>>> probed(planned.size()), layerProbed(planned.size());
  // Whether the candidate's FLOP and weight bounds already prune it.
  auto prunedByBounds = [&](const Planned &p) {
    if (!options.prune) return false;
    std::lock_guard<std::mutex> lock(mutex);
    double lbLatency = 0, ubThroughput = INFINITY;
    for (size_t k = 0; k < p.lbLatency.size(); ++k) {
      lbLatency = std::max(lbLatency, p.lbLatency[k]);
      ubThroughput = std::min(ubThroughput, p.ubThroughput[k]);
    }
    // The bounds are the forward pass's: they bound no decode step.
    return (!feasibleSoFar.empty() && boundsFail(p)) ||
           (!generates && beaten(lbLatency, ubThroughput, p.lbMemory));
  };
  // A candidate under evaluation: its longest point first (which may prune it), then its
  // other points, each a task of its own (see `parallel`).
  struct InFlight {
    Evaluated e;
    desc::Deployment candidate;  // the description with the candidate's strategy
    bool failed = false;         // some point did not compile (guarded by mutex)
    // Set up, its longest point compiling: an idle thread may compile its other points
    // meanwhile (`parallel`).
    std::atomic<bool> started{false};
  };
  std::vector<InFlight> inFlight(planned.size());
  // Compiles and simulates candidate i at point k into its evaluation; false when it does not
  // compile there. Threads compile different points of one candidate at once: each writes
  // its own point's slots.
  auto compilePoint = [&](CompileSession &compiler, size_t i, size_t k) {
    InFlight &f = inFlight[i];
    // The plan lives on an arena: building and freeing tens of thousands of instructions is
    // a large part of a candidate's time otherwise.
    google::protobuf::Arena arena;
    plan::Plan *compiled = google::protobuf::Arena::CreateMessage<plan::Plan>(&arena);
    CompileResult c =
        compiler.compile(atSeqLen(f.candidate, r.seqPoints[k]), "search", searchCompile(compiled));
    if (!c.exported) return false;
    sim::applyExpectedWork(*compiled);  // discarded after this point: scaled, not copied
    plan::WorkloadPoint w = report::workloadPoint(*compiled, sim::simulateExpectedWork(*compiled));
    f.e.verdicts[k] = report::judgeRequirements(*compiled, w);
    f.e.points[k] = std::move(w);
    return true;
  };
  // Candidate i compiled at every point: its worst figures, its verdicts, its feasibility.
  auto finish = [&](size_t i) {
    Evaluated &e = inFlight[i].e;
    double gpus = double(e.strategy.world());
    e.throughputPerGpu = INFINITY;
    if (generates) e.decodeTokensPerSPerGpu = INFINITY;
    for (const plan::WorkloadPoint &w : e.points) {
      e.latencyS = std::max(e.latencyS, w.latency_s());
      e.throughputPerGpu = std::min(e.throughputPerGpu, w.throughput_tokens_per_s() / gpus);
      e.memoryBytes = std::max(e.memoryBytes, double(w.memory_bytes()));
      if (generates) {
        e.ttftS = std::max(e.ttftS, w.ttft_s());
        e.tpotS = std::max(e.tpotS, w.tpot_p99_s());
        e.decodeTokensPerSPerGpu = std::min(e.decodeTokensPerSPerGpu, w.decode_tokens_per_s() / gpus);
      }
    }
    for (const auto &point : e.verdicts)
      for (const report::RequirementCheck &c : point)
        if (!c.pass && !excluded.count(c.field)) {
          ++e.failures;
          if (c.required > 0 && c.predicted > 0)
            e.shortfall += std::fabs(std::log(c.predicted / c.required));
          else
            e.shortfall += 1;
        }
    e.feasible = e.failures == 0;
    std::lock_guard<std::mutex> lock(mutex);
    if (e.feasible) feasibleSoFar.push_back(e);
    evaluated.push_back(std::move(e));
  };
  // Starts candidate i with one of the threads' compilers: prunes it, or compiles its longest
  // point. Returns the points left to compile (none: the candidate is done).
  auto startCandidate = [&](CompileSession &compiler, size_t i) -> std::vector<size_t> {
    const Planned &p = planned[i];
    if (prunedByBounds(p)) {
      ++pruned;
      return {};
    }
    std::vector<std::optional<Bound>> &probedHere = probed[i], &layerProbedHere = layerProbed[i];
    probedHere.resize(r.seqPoints.size());
    layerProbedHere.resize(r.seqPoints.size());
    bool anyFeasible;
    {
      std::lock_guard<std::mutex> lock(mutex);
      anyFeasible = !feasibleSoFar.empty();
    }
    if (probes && anyFeasible) {
      // The cheap probe (where there is one) at each point, the longest first, then for a
      // candidate of many micro-batches the whole one at each point: each prunes by its
      // bounds with the worst of those made so far (a shorter point's throughput bound is
      // often the lowest). A candidate of few micro-batches has no whole probe: a compile
      // costs it little more. On the seed, the cheap probes at the shorter points prune
      // where the whole probes there never did, at a fifth of their cost.
      const bool layered = alikeLayersPerStage(spec, p.strategy) > 0;
      const bool whole = p.strategy.microBatches >= kProbeMicroBatches;
      Bound worst;
      auto prunes = [&](std::vector<std::optional<Bound>> &made, size_t k, bool layer) {
        if (!made[k]) made[k] = probeAt(compiler, p, k, layer);  // the longest: maybe made
        if (!made[k]) return false;
        worst.include(*made[k]);
        return probePrunes(p, *made[k], worst);
      };
      const size_t points = r.seqPoints.size();
      for (size_t k = points; layered && k-- > 0;)
        if (prunes(layerProbedHere, k, true)) {
          ++prunedByProbe;
          ++prunedByLayerProbe;
          return {};
        }
      for (size_t k = points; whole && k-- > 0;)
        if (prunes(probedHere, k, false)) {
          ++prunedByProbe;
          return {};
        }
    }
    InFlight &f = inFlight[i];
    f.e.strategy = p.strategy;
    f.e.order = i;
    f.candidate = withStrategy(deployment, p.strategy);
    f.e.points.resize(r.seqPoints.size());
    f.e.verdicts.resize(r.seqPoints.size());
    // The longest sequence first: its latency and memory bound the candidate's worst over
    // the workload from below, its throughput bounds the worst from above, so a feasible
    // strategy that beats those already beats the candidate, and the other lengths need
    // not be compiled.
    const size_t longest = r.seqPoints.size() - 1;
    f.started = true;
    if (!compilePoint(compiler, i, longest)) {
      std::lock_guard<std::mutex> lock(mutex);
      ++compileFailures;
      return {};
    }
    if (options.prune && !generates && longest > 0) {
      // The longest point's figures, with the other points' probes where there are.
      const plan::WorkloadPoint &first = f.e.points[longest];
      Bound worst{first.latency_s(), first.throughput_tokens_per_s() / double(p.strategy.world()),
                  double(first.memory_bytes())};
      for (const auto *made : {&probedHere, &layerProbedHere})
        for (const std::optional<Bound> &b : *made)
          if (b) worst.include(*b);
      std::lock_guard<std::mutex> lock(mutex);
      if (beaten(worst.latencyS, worst.throughputPerGpu, worst.memoryBytes)) {
        ++prunedAfterFirst;
        return {};
      }
    }
    if (longest == 0) {
      finish(i);
      return {};
    }
    std::vector<size_t> rest(longest);  // the others, longest first (the order they are taken)
    for (size_t k = 0; k < longest; ++k) rest[k] = longest - 1 - k;
    return rest;
  };
  // Compiles candidate i's point k (a task of `parallel`).
  auto pointTask = [&](CompileSession &compiler, size_t i, size_t k) {
    if (compilePoint(compiler, i, k)) return;
    std::lock_guard<std::mutex> lock(mutex);
    inFlight[i].failed = true;
  };
  // Candidate i's points are all compiled.
  auto endCandidate = [&](size_t i) {
    bool failed;
    {
      std::lock_guard<std::mutex> lock(mutex);
      failed = inFlight[i].failed;
      if (failed) ++compileFailures;
    }
    if (!failed) finish(i);
    progress.advance();
  };
  // Runs startFn(compiler, i) for every candidate i of `order` on the threads, each thread
  // with its own compiler. startFn returns the candidate's points left to compile: each
  // becomes a task (pointTask), and the thread that compiles the last of them ends the
  // candidate (endCandidate).
  // - A thread takes a pending point before the next candidate: a candidate is finished, and
  //   prunes others, as soon as may be, and the points of a costly candidate at the end of
  //   the order are compiled side by side.
  // - A candidate that some candidate in flight `blocks` (likely to beat it) waits until no
  //   candidate in flight blocks it, the threads taking the next ones meanwhile: else two
  //   costly candidates of one class run side by side, and the better never prunes the other.
  //   This changes which candidates are compiled, never what the search reports of them.
  // On one thread: candidate after candidate, each point longest first.
  std::vector<std::unique_ptr<CompileSession>> sessions;
  for (unsigned t = 1; t < threads; ++t) sessions.push_back(std::make_unique<CompileSession>());
  auto parallel = [&](const std::vector<size_t> &order, auto startFn, auto blocks) {
    std::mutex poolMutex;
    std::condition_variable wake;
    std::deque<size_t> queue(order.begin(), order.end());
    std::vector<size_t> waiting;                     // blocked, in order
    std::vector<std::pair<size_t, size_t>> pending;  // (candidate, point), taken from the back
    std::map<size_t, size_t> active;  // candidates in flight: their points not yet compiled
    // Of a candidate compiling its longest point, the other points idle threads compiled
    // ahead (`done`) or are compiling (`running`), and whether its longest point kept it.
    struct Ahead {
      std::set<size_t> running, done;
      bool kept = false;
    };
    std::map<size_t, Ahead> ahead;
    // Candidates whose startFn runs: only these may have points compiled ahead (a candidate
    // that has ended, or is ending, has moved its evaluation away).
    std::set<size_t> starting;
    // A candidate in flight has ended: those waiting go first again.
    auto ended = [&](size_t i) {
      active.erase(i);
      if (auto it = ahead.find(i); it != ahead.end() && it->second.running.empty()) ahead.erase(it);
      queue.insert(queue.begin(), waiting.begin(), waiting.end());
      waiting.clear();
      wake.notify_all();
    };
    // A point of candidate i is compiled (under poolMutex, which `lock` holds): the last ends
    // the candidate.
    auto completed = [&](std::unique_lock<std::mutex> &lock, size_t i) {
      if (--active[i] > 0) return;
      lock.unlock();
      endCandidate(i);  // still in flight meanwhile: what it blocks keeps waiting
      lock.lock();
      ended(i);
    };
    // A point an idle thread may compile ahead: of a candidate compiling its longest point,
    // one no thread has taken. Its longest point may still prune the candidate: then the
    // work is lost, but the thread had nothing else to do.
    auto pointAhead = [&]() -> std::optional<std::pair<size_t, size_t>> {
      for (size_t i : starting) {
        if (!inFlight[i].started) continue;
        Ahead &a = ahead[i];
        for (size_t k = r.seqPoints.size() - 1; k-- > 0;)
          if (!a.running.count(k) && !a.done.count(k)) return std::make_pair(i, k);
      }
      return std::nullopt;
    };
    auto worker = [&](CompileSession &compiler) {
      std::unique_lock<std::mutex> lock(poolMutex);
      for (;;) {
        if (!pending.empty()) {
          const auto [i, k] = pending.back();
          pending.pop_back();
          lock.unlock();
          pointTask(compiler, i, k);
          lock.lock();
          completed(lock, i);
        } else if (!queue.empty()) {
          const size_t i = queue.front();
          queue.pop_front();
          if (std::any_of(active.begin(), active.end(),
                          [&](const auto &a) { return blocks(a.first, i); })) {
            waiting.push_back(i);
            continue;
          }
          active[i] = 0;
          starting.insert(i);
          lock.unlock();
          const std::vector<size_t> rest = startFn(compiler, i);
          lock.lock();
          starting.erase(i);
          if (rest.empty()) {
            ended(i);
            continue;
          }
          // The points compiled ahead count; those running will.
          Ahead &a = ahead[i];
          a.kept = true;
          active[i] = rest.size();
          for (auto k = rest.rbegin(); k != rest.rend(); ++k)
            if (!a.running.count(*k) && !a.done.count(*k)) pending.emplace_back(i, *k);
          active[i] -= a.done.size();
          if (active[i] == 0) {
            active[i] = 1;
            completed(lock, i);
          }
          wake.notify_all();
        } else if (std::optional<std::pair<size_t, size_t>> task = pointAhead()) {
          const auto [i, k] = *task;
          ahead[i].running.insert(k);
          lock.unlock();
          pointTask(compiler, i, k);
          lock.lock();
          Ahead &a = ahead[i];
          a.running.erase(k);
          if (a.kept) {
            completed(lock, i);
          } else if (active.count(i)) {
            a.done.insert(k);  // its longest point still compiling
          } else if (a.running.empty()) {
            ahead.erase(i);    // pruned at its longest point: the work is lost
          }
        } else if (active.empty()) {
          if (waiting.empty()) return;
          queue.insert(queue.begin(), waiting.begin(), waiting.end());  // nothing blocks them
          waiting.clear();
        } else {
          // A candidate starting may soon have points to compile ahead: look again shortly.
          wake.wait_for(lock, std::chrono::milliseconds(1));
        }
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker, std::ref(*sessions[t - 1]));
    worker(session);
    for (std::thread &t : pool) t.join();
  };
  auto evaluate = [&](CompileSession &compiler, size_t i) {
    std::vector<size_t> rest = startCandidate(compiler, i);
    if (rest.empty()) progress.advance();
    return rest;
  };
  auto blocksNone = [](size_t, size_t) { return false; };
  // First the candidates compiled without a probe, cheapest first: they find the first
  // feasible strategies. The others are probed at the longest sequence (what pruning would
  // do first anyway), then evaluated cheapest first and, among equally costly ones, lowest
  // probed latency first: a class's best is found before the rest of its class, which it
  // then prunes at their probes.
  std::vector<size_t> unprobed, toProbe;
  for (size_t i = 0; i < planned.size(); ++i)
    (probes && planned[i].strategy.microBatches >= kProbeMicroBatches ? toProbe : unprobed)
        .push_back(i);
  parallel(unprobed, evaluate, blocksNone);
  // Per candidate, its probe at the longest sequence (read while others probe more points).
  std::vector<std::optional<Bound>> longestProbe(planned.size());
  if (!feasibleSoFar.empty()) {
    parallel(
        toProbe,
        [&](CompileSession &compiler, size_t i) {
          if (prunedByBounds(planned[i])) return std::vector<size_t>();  // pruned before a probe
          const size_t longest = r.seqPoints.size() - 1;
          probed[i].resize(r.seqPoints.size());
          layerProbed[i].resize(r.seqPoints.size());
          // The cheap probe where there is one (evaluate tries it first), else the whole one.
          // Ordering the costliest candidates by their whole probe instead, as earlier, cost
          // more than it saved once the cheap probe's memory bound counted transients (seed,
          // 2 threads: 1.79-1.93 s without against 1.88-2.10 s with, alternating).
          if (alikeLayersPerStage(spec, planned[i].strategy) > 0)
            layerProbed[i][longest] = probeAt(compiler, planned[i], longest, true);
          else
            probed[i][longest] = probeAt(compiler, planned[i], longest, false);
          longestProbe[i] = probed[i][longest] ? probed[i][longest] : layerProbed[i][longest];
          return std::vector<size_t>();
        },
        blocksNone);
    auto key = [&](size_t i) {
      const StrategySpec &x = planned[i].strategy;
      const double latency = longestProbe[i] ? longestProbe[i]->orderS : INFINITY;
      return std::make_tuple(boundsFail(planned[i]), double(x.microBatches) / double(x.pp),
                             latency);
    };
    std::stable_sort(toProbe.begin(), toProbe.end(),
                     [&](size_t a, size_t b) { return key(a) < key(b); });
  }
  // A candidate in flight blocks one its probe beats on every figure.
  parallel(toProbe, evaluate, [&](size_t a, size_t b) {
    const std::optional<Bound> &x = longestProbe[a], &y = longestProbe[b];
    return x && y && x->orderS <= y->orderS && x->throughputPerGpu >= y->throughputPerGpu &&
           x->memoryBytes <= y->memoryBytes;
  });
  progress.finish();
  r.pruned = pruned;
  r.prunedByProbe = prunedByProbe;
  r.prunedByLayerProbe = prunedByLayerProbe;
  r.prunedAfterFirst = prunedAfterFirst;
  r.evaluated = evaluated.size();
  if (compileFailures > 0) r.rejectedByRule["compile (lowering failed)"] += compileFailures;

  // ---- rank ----
  std::sort(evaluated.begin(), evaluated.end(), [&](const Evaluated &a, const Evaluated &b) {
    return better(a, b, options.objective);
  });
  r.candidates = std::move(evaluated);
  bool anyFeasible = false;
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const Evaluated &e = r.candidates[i];
    if (e.feasible && !r.best) r.best = i;
    anyFeasible = anyFeasible || e.feasible;
    std::set<std::string> failed;
    for (const auto &point : e.verdicts)
      for (const report::RequirementCheck &c : point)
        if (!c.pass) failed.insert(c.name + " (" + c.field + ")");
    for (const std::string &f : failed) ++r.failuresByRequirement[f];
  }
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const Evaluated &e = r.candidates[i];
    if (anyFeasible && !e.feasible) continue;
    bool dominated = false;
    for (const Evaluated &o : r.candidates)
      if ((!anyFeasible || o.feasible) && dominates(o, e, generates)) {
        dominated = true;
        break;
      }
    if (!dominated) r.frontier.push_back(i);
  }
  if (!anyFeasible) {
    for (size_t i = 0; i < r.candidates.size(); ++i) r.closest.push_back(i);
    std::stable_sort(r.closest.begin(), r.closest.end(), [&](size_t a, size_t b) {
      const Evaluated &x = r.candidates[a], &y = r.candidates[b];
      return std::tie(x.failures, x.shortfall) < std::tie(y.failures, y.shortfall);
    });
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

// ---- rendering ----

namespace {

const char *objectiveMeaning(Objective o) {
  switch (o) {
  case Objective::Throughput: return "highest throughput per GPU";
  case Objective::Latency: return "lowest latency";
  case Objective::Memory: return "least memory per GPU";
  case Objective::Ttft: return "shortest time to first token";
  case Objective::Tpot: return "shortest time per output token at the p99 decode step";
  case Objective::DecodeThroughput: return "most decode tokens/s per GPU";
  }
  return "?";
}

std::string gpusText(const SearchResult &r, const StrategySpec &s) {
  std::string t = "on " + std::to_string(s.world()) + " of " + std::to_string(r.clusterGpus) +
                  " GPUs";
  if (s.world() < r.clusterGpus)
    t += " (" + std::to_string(r.clusterGpus - s.world()) + " spare)";
  return t;
}

void renderCandidate(std::ostream &o, const SearchResult &r, const Evaluated &e,
                     const std::string &title) {
  o << "  " << title << strategyText(e.strategy) << "\n    " << gpusText(r, e.strategy)
    << ": latency " << report::formatSeconds(e.latencyS) << ", "
    << formatCount(e.throughputPerGpu) << " tokens/s per GPU, "
    << formatBytes(e.memoryBytes) << " per GPU (worst over the workload)\n";
  if (r.generates)
    o << "    generation: time to first token " << report::formatSeconds(e.ttftS)
      << ", per output token " << report::formatSeconds(e.tpotS) << " (p99 step), "
      << formatCount(e.decodeTokensPerSPerGpu) << " decode tokens/s per GPU\n";
  char line[256];
  for (size_t k = 0; k < e.points.size(); ++k) {
    const plan::WorkloadPoint &w = e.points[k];
    std::snprintf(line, sizeof line, "    at %6u: latency %9s, %12s tokens/s, %9s/GPU:",
                  w.seq_len(), report::formatSeconds(w.latency_s()).c_str(),
                  formatCount(w.throughput_tokens_per_s()).c_str(),
                  formatBytes(double(w.memory_bytes())).c_str());
    o << line;
    const char *sep = " ";
    for (const report::RequirementCheck &c : e.verdicts[k]) {
      // The field names the requirement: max_latency_s, ..., or the GPU's capacity.
      std::string label = c.field == "cluster.memory_bytes" ? "fits GPU" : c.field.substr(c.field.find('.') + 1);
      o << sep << label << " " << (c.pass ? "pass" : "FAIL") << " ("
        << report::formatRequirementValue(c.unit, c.predicted) << ")";
      sep = ", ";
    }
    o << "\n";
  }
}

} // namespace

std::string renderSearchText(const SearchResult &r, const SearchOptions &options) {
  std::ostringstream o;
  o << "search \"" << r.name << "\": " << r.clusterGpus << " GPU" << (r.clusterGpus == 1 ? "" : "s")
    << " (" << r.nodes << " node"
    << (r.nodes == 1 ? "" : "s") << " x " << r.gpusPerNode << "), workload judged at";
  for (int64_t p : r.seqPoints) o << " " << p;
  o << " tokens per sequence\n";
  o << "axes:";
  for (const char *axis : {"tp", "pp", "dp", "ep", "expert_tp", "micro_batches", "schedule",
                           "overlap", "capacity_factor"}) {
    o << " " << axis << " {";
    const std::vector<std::string> &v = r.axes.at(axis);
    for (size_t i = 0; i < v.size(); ++i) o << (i ? " " : "") << v[i];
    o << "}";
  }
  o << " rank_order {" << r.axes.at("rank_order").size() << " orders}\n";
  o << "  enumerated " << r.enumerated << " strategies on up to " << r.clusterGpus << " GPUs\n";
  o << "  rejected   " << r.rejected
    << " (breaking an error rule; a strategy may break several):\n";
  std::vector<std::pair<std::string, uint64_t>> rules(r.rejectedByRule.begin(),
                                                      r.rejectedByRule.end());
  std::stable_sort(rules.begin(), rules.end(),
                   [](auto &a, auto &b) { return a.second > b.second; });
  for (const auto &[rule, count] : rules) o << "    " << count << " " << rule << "\n";
  o << "  equivalent " << r.equivalentSchedule + r.equivalentRankOrder << " (evaluated once: "
    << r.equivalentSchedule << " GPIPE run the forward pass in 1F1B's order, "
    << r.equivalentRankOrder << " rank orders give the same groups or costs)\n";
  o << "  pruned     " << r.pruned + r.prunedByProbe + r.prunedAfterFirst << " (" << r.pruned
    << " not compiled: their bounds fail a requirement or lose to a feasible strategy on every "
       "figure; "
    << r.prunedByProbe << " one micro-batch compiled (" << r.prunedByLayerProbe
    << " of them with one layer per stage): the bounds it gives fail a requirement or lose to "
       "a feasible strategy on every figure; "
    << r.prunedAfterFirst
    << " compiled at the longest sequence only: a feasible strategy beats them there already)\n";
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.2f s, %.1f strategies compiled per second on %u thread%s",
                r.seconds,
                r.seconds > 0 ? double(r.evaluated + r.prunedAfterFirst) / r.seconds : 0.0,
                r.threads, r.threads == 1 ? "" : "s");
  o << "  evaluated  " << r.evaluated << " (compiled and simulated at " << r.seqPoints.size()
    << " sequence length" << (r.seqPoints.size() == 1 ? "" : "s") << " each) in " << rate << "\n";

  if (!r.unreachable.empty()) {
    o << "\nrequirements no strategy on this cluster can meet (judged, but they decide nothing):\n";
    for (const Finding &f : r.unreachable) o << "  [" << f.rule << "] " << f.message << "\n";
  }
  if (!r.failuresByRequirement.empty()) {
    o << "\nrequirements failed (evaluated strategies failing each at some sequence length):\n";
    std::vector<std::pair<std::string, uint64_t>> fails(r.failuresByRequirement.begin(),
                                                        r.failuresByRequirement.end());
    std::stable_sort(fails.begin(), fails.end(),
                     [](auto &a, auto &b) { return a.second > b.second; });
    for (const auto &[name, count] : fails)
      o << "  " << count << " of " << r.evaluated << "  " << name << "\n";
  }
  o << "\n";
  if (r.best) {
    o << "best (" << objectiveName(r.objective) << ": " << objectiveMeaning(r.objective)
      << ", among those meeting every requirement"
      << (r.unreachable.empty() ? "" : " the cluster can meet") << "):\n";
    renderCandidate(o, r, r.candidates[*r.best], "");
  } else if (r.candidates.empty()) {
    o << "no strategy could be evaluated\n";
  } else {
    o << "no strategy meets every requirement the cluster can meet; the closest (fewest "
         "requirements failed, then the smallest shortfall):\n";
    for (size_t i = 0; i < r.closest.size() && i < options.listed; ++i)
      renderCandidate(o, r, r.candidates[r.closest[i]], std::to_string(i + 1) + ". ");
  }
  if (!r.frontier.empty()) {
    o << "\nPareto frontier over "
      << (r.generates ? "time to first token, time per output token (p99 step), decode "
                        "tokens/s per GPU and memory per GPU ("
                      : "latency, throughput per GPU and memory per GPU (")
      << r.frontier.size() << " " << (r.best ? "feasible " : "") << "strateg"
      << (r.frontier.size() == 1 ? "y" : "ies") << ", best " << objectiveName(r.objective)
      << " first):\n";
    for (size_t i = 0; i < r.frontier.size() && i < options.listed; ++i)
      renderCandidate(o, r, r.candidates[r.frontier[i]], "");
    if (r.frontier.size() > options.listed)
      o << "  ... " << r.frontier.size() - options.listed << " more (--list N, or --json)\n";
  }
  return o.str();
}

nlohmann::json searchJson(const SearchResult &r) {
  using nlohmann::json;
  auto strategy = [](const StrategySpec &s) {
    json j = {{"tp", s.tp},
              {"pp", s.pp},
              {"dp", s.dp},
              {"ep", s.ep},
              {"expert_tp", s.expertTp},
              {"micro_batches", s.microBatches},
              {"schedule", desc::Schedule_Name(s.schedule)},
              {"overlap", desc::Overlap_Name(s.overlap)},
              {"rank_order", formatRankOrder(s.rankOrder)},
              {"gpus", s.world()}};
    j["capacity_factor"] = s.capacityFactor ? json(*s.capacityFactor) : json(nullptr);
    return j;
  };
  auto candidate = [&](const Evaluated &e) {
    json points = json::array();
    for (size_t k = 0; k < e.points.size(); ++k)
      points.push_back(report::workloadPointJson(e.points[k], e.verdicts[k]));
    json c{{"strategy", strategy(e.strategy)},
           {"latency_s", e.latencyS},
           {"throughput_tokens_per_s_per_gpu", e.throughputPerGpu},
           {"memory_bytes", e.memoryBytes},
           {"feasible", e.feasible},
           {"failures", e.failures},
           {"points", points}};
    if (r.generates) {
      c["ttft_s"] = e.ttftS;
      c["tpot_p99_s"] = e.tpotS;
      c["decode_tokens_per_s_per_gpu"] = e.decodeTokensPerSPerGpu;
    }
    return c;
  };
  json j = {{"schema", "moeplan-search"},
            {"version", 1},
            {"name", r.name},
            {"objective", objectiveName(r.objective)},
            {"cluster_gpus", r.clusterGpus},
            {"seq_points", r.seqPoints},
            {"axes", r.axes},
            {"enumerated", r.enumerated},
            {"rejected", r.rejected},
            {"rejected_by_rule", r.rejectedByRule},
            {"equivalent", {{"schedule", r.equivalentSchedule}, {"rank_order", r.equivalentRankOrder}}},
            {"pruned", r.pruned},
            {"pruned_by_probe", r.prunedByProbe},
            {"pruned_by_layer_probe", r.prunedByLayerProbe},
            {"pruned_after_longest_sequence", r.prunedAfterFirst},
            {"evaluated", r.evaluated},
            {"seconds", r.seconds},
            {"threads", r.threads},
            {"failures_by_requirement", r.failuresByRequirement}};
  json unreachable = json::array();
  for (const Finding &f : r.unreachable)
    unreachable.push_back({{"rule", f.rule}, {"field", f.fieldPath}, {"message", f.message}});
  j["unreachable"] = unreachable;
  j["best"] = r.best ? candidate(r.candidates[*r.best]) : json(nullptr);
  json frontier = json::array(), closest = json::array();
  for (size_t i : r.frontier) frontier.push_back(candidate(r.candidates[i]));
  for (size_t k = 0; k < r.closest.size() && k < 20; ++k)
    closest.push_back(candidate(r.candidates[r.closest[k]]));
  j["frontier"] = frontier;
  j["closest"] = closest;
  // Every evaluated strategy's worst figures, best first (plots: moeplan report --search).
  json all = json::array();
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const Evaluated &e = r.candidates[i];
    json c{{"strategy", strategy(e.strategy)},
           {"latency_s", e.latencyS},
           {"throughput_tokens_per_s_per_gpu", e.throughputPerGpu},
           {"memory_bytes", e.memoryBytes},
           {"feasible", e.feasible},
           {"best", r.best && *r.best == i},
           {"frontier", std::find(r.frontier.begin(), r.frontier.end(), i) != r.frontier.end()}};
    all.push_back(c);
  }
  j["evaluated_strategies"] = all;
  auto optional = [](const std::optional<double> &v) { return v ? json(*v) : json(nullptr); };
  j["limits"] = {{"max_latency_s", optional(r.maxLatencyS)},
                 {"min_throughput_tokens_per_s", optional(r.minThroughputTokensPerS)},
                 {"max_memory_per_gpu_bytes", optional(r.maxMemoryPerGpuBytes)},
                 {"gpu_memory_bytes", r.gpuMemoryBytes}};
  return j;
}

} // namespace moeplan::search
