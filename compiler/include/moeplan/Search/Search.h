// `moeplan search`: every parallel strategy for a deployment's model on its cluster,
// compiled and simulated at each judged sequence length, judged against the requirements;
// the best per objective and the Pareto frontier.
//
// Enumeration. Each axis ranges over the divisors of the dimension it splits (tp: heads,
// pp: layers, dp and micro_batches: sequences, ep: experts, expert_tp: expert_hidden), both
// schedules, the strategy's capacity factor (or none), every rank order; GPU counts from
// search.min_gpus to the cluster's. The description's `search { }` section replaces any
// axis's list. Combinations that break an error rule of `check` are rejected (counted per
// rule).
//
// Candidates that cannot differ are evaluated once: a forward pass runs its micro-batches
// in the same order under GPipe and 1F1B (only the backward passes differ), so GPipe
// candidates are 1F1B's; rank orders that agree on the order of the axes larger than 1 give
// the same communicator groups; on one node every group is intra-node, so every rank order
// costs the same.
//
// Figures. Every figure reported comes from compiling the candidate with the real
// pipeline and simulating the plan at every judged sequence length. Latency is the worst
// over the points, throughput per GPU (per GPU the strategy occupies) the worst, memory per
// GPU the largest. A requirement no strategy on the cluster can meet
// (requirements.*-reachable) is reported and judged, but does not decide feasibility: the
// best strategy is the best among those meeting every other requirement.
//
// A GENERATE workload's frontier is over time to first token, time per output token (p99
// step), decode tokens/s per GPU and memory per GPU instead.
//
// Pruning. Before compiling a candidate, lower bounds on its latency (its batch's least
// FLOPs over its GPUs at peak x mfu) and memory per GPU (its weights per GPU) and the
// matching upper bound on its throughput per GPU are compared with the feasible candidates
// evaluated so far: a candidate whose bounds already fail a requirement, or that a feasible
// candidate beats on all three, can be neither the best for any objective nor on the
// frontier, and is not compiled. Likewise after the longest sequence, whose latency and
// memory are at most the candidate's worst and whose throughput at least its worst: a
// candidate a feasible strategy beats there is not compiled at the other lengths. And before
// any compile, once a feasible candidate exists, probes bound a candidate:
// - the layer probe (probeMicroBatchLayer: one micro-batch, one layer per stage, its kernels
//   and its whole-program buffers), at the longest sequence, for any number of
//   micro-batches: a fifth of a probe's cost;
// - if that does not prune it, and it has kProbeMicroBatches micro-batches or more, the
//   probe (probeMicroBatch: one of its micro-batches compiled alone, with its collectives'
//   chain and its transients) at each point of the workload, the longest first: a fraction
//   of the candidate's cost, and nearly its figures.
// After its longest sequence these bounds stand in for the other points' figures. The
// counts are reported.
//
// Order. The candidates of fewer than kProbeMicroBatches micro-batches go first, cheapest
// first (instructions grow with micro-batches per stage); they find the first feasible
// strategies. The others are probed at the longest sequence (the layer probe, else the
// whole one), then evaluated cheapest first and, among equally costly ones, lowest probed
// latency first (the layer probe's guess or the whole probe's bound,
// MicroBatchProbe::orderS): each class's best is compiled before the rest of its class,
// which it then prunes at their probes. A candidate's layer probes at every point come
// before its whole probes.
//
// Threads. Each thread compiles with a session of its own. A candidate's points after its
// longest are tasks, which a thread takes before the next candidate: a costly candidate's
// points compile side by side. A candidate whose probe a candidate in flight beats on every
// figure waits for it to finish (it may then be pruned), the threads taking the next ones
// meanwhile. A thread with nothing else to do compiles ahead the other points of a candidate
// whose longest point is compiling (lost work if that point prunes it). Threads change which
// candidates are compiled, never a figure reported; on one thread the order above is
// followed exactly.
//
// A GENERATE workload's candidates are pruned only by requirements their bounds fail: the
// bounds say nothing of decode steps.
#pragma once

#include "moeplan/Compiler/Workload.h"
#include "moeplan/Description/Spec.h"
#include "moeplan/Report/Inspect.h"
#include "moeplan/schema/deployment.pb.h"
#include "moeplan/schema/plan.pb.h"
#include "moeplan/Support/Progress.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moeplan::search {

// Throughput, Latency and Memory judge the forward pass (a GENERATE workload's prefill);
// the last three judge a GENERATE workload's generation: time to first token, time per
// output token at the p99 decode step, decode tokens/s per GPU.
enum class Objective { Throughput, Latency, Memory, Ttft, Tpot, DecodeThroughput };
// "throughput", "latency", "memory", "ttft", "tpot", "decode-throughput"
const char *objectiveName(Objective o);
std::optional<Objective> parseObjective(const std::string &name);
bool judgesGeneration(Objective o);  // ttft, tpot, decode-throughput
// The objective search ranks by when none is chosen: decode tokens/s per GPU for a GENERATE
// workload, throughput per GPU otherwise.
Objective defaultObjective(const WorkloadSpec &w);

struct SearchOptions {
  Objective objective = Objective::Throughput;
  int seqPoints = 3;
  unsigned threads = 0;  // 0: the machine's hardware threads
  bool prune = true;
  size_t listed = 5;     // strategies listed per section in text
  // Called with the candidates finished (pruned, probed or compiled) of those planned, at
  // most ten times a second from any worker thread (one call at a time), and once at the end.
  ProgressCallback progress;
};

// One evaluated strategy.
struct Evaluated {
  StrategySpec strategy;
  std::vector<plan::WorkloadPoint> points;  // one per judged sequence length
  // Per point, the GPU's capacity and every requirement (report::judgeRequirements).
  std::vector<std::vector<report::RequirementCheck>> verdicts;
  double latencyS = 0;            // worst over the points
  double throughputPerGpu = 0;    // worst over the points, tokens/s per occupied GPU
  double memoryBytes = 0;         // largest over the points
  // GENERATE (one point: the prompt's length): time to first token, time per output token
  // at the p99 decode step, decode tokens/s per occupied GPU.
  double ttftS = 0, tpotS = 0, decodeTokensPerSPerGpu = 0;
  bool feasible = false;          // meets every requirement the cluster can reach, everywhere
  int failures = 0;               // (requirement, point) pairs failed
  double shortfall = 0;           // sum over failures of |log(predicted / required)|
  // The candidate's place in search's order of candidates: strategies whose figures tie are
  // listed in it, whichever thread finished first.
  size_t order = 0;
};

// Lower bounds on a strategy's latency and memory per GPU at one sequence length, from one
// of its micro-batches compiled and simulated alone: the strategy with micro_batches 1 on a
// batch of sequences / micro_batches sequences, so that its one micro-batch has the
// strategy's micro-batch shape, its kernels the same costs.
// - Latency: a rank of the strategy runs micro_batches times the probe rank's kernels on its
//   compute stream, one micro-batch after another; before its first, the first micro-batch
//   (half of it under DUAL_MICRO_BATCH) was computed in full on every earlier stage, and
//   after its last, the last micro-batch is computed on every later stage: at least the
//   least probe rank's time on each. Without overlap, each micro-batch holds the compute
//   stream at least for the probe rank's own chain from its first kernel to its last
//   (sim::soloCompute: its collectives between them included, none waiting for another
//   rank), since the next micro-batch's kernels follow all of this one's on that stream;
//   under DUAL_MICRO_BATCH the halves' collectives overlap the other half's kernels, so
//   only the kernels count.
// - Memory: the largest of arenaBounds.
// SearchTest holds both against every strategy of a small model. nullopt when the probe does
// not compile.
struct MicroBatchProbe {
  double latencyS = 0;
  double memoryBytes = 0;
  // Not a bound: what search orders candidates by. probeMicroBatch's latency bound; the
  // layer probe's guess of it (its one layer's chain taken for every layer's).
  double orderS = 0;
};
// The probe's description: the strategy with micro_batches 1 on sequences / micro_batches
// sequences of seqLen tokens; nullopt when micro_batches does not divide the sequences.
std::optional<desc::Deployment> probeDeployment(const desc::Deployment &deployment,
                                                const StrategySpec &strategy, int64_t seqLen);
// Per program of the probe's plan, a lower bound on the arena of the same stage's program in
// the strategy's plan (Search.cpp says why each term holds):
// - weights, caches, inputs and outputs live for the whole program (plan-memory lays them
//   out first, each at an aligned offset); caches, inputs and outputs are per micro-batch,
//   micro_batches copies of the probe's;
// - above them, what else the probe holds live at its peak: the first micro-batch holds the
//   same;
// - without overlap, in a program that receives nothing: the probe's whole transient extent
//   (fragmentation too), and the SENDs' buffers of every micro-batch but the last beside
//   what the last holds at its peak, when nothing waits for a SEND.
std::vector<double> arenaBounds(const plan::Plan &probe, const StrategySpec &strategy);
std::optional<MicroBatchProbe> probeMicroBatch(CompileSession &session,
                                               const desc::Deployment &deployment,
                                               const StrategySpec &strategy, int64_t seqLen);

// The same bounds, weaker, for a fifth of the cost: the probe compiled with one layer per
// stage (model.layers = pp), when the model's layers are all alike (all MoE or all dense, one
// expert-load row and one stickiness for every layer) and a stage holds L >= 2 of them in
// the strategy (alikeLayersPerStage; 0 otherwise).
// - Latency: as probeMicroBatch's, each rank's kernels only: in its stage of L layers a rank
//   runs its kernels outside the layers once and its one layer's L times (alike layers
//   lower to the same kernels at the same costs; sim::SoloCompute::layerBusy).
// - Memory: per program, what plan-memory lays out for the whole program (weights, and the
//   batch's caches, inputs and outputs once per micro-batch), a buffer only the layer's
//   instructions use counted L times (wholeProgramBuffers); above them, without overlap,
//   the transients the probe has in use at one instruction (transientsInUse). The
//   strategy's program runs its first micro-batch's instructions in the probe's order
//   (plan-schedule only moves a RECV earlier or a SEND later), and what the probe's one
//   layer hands to the stage's end its first layer hands to the next layer: each of those
//   transients is in use there too, or an alike layer's buffer of the same size is (at
//   the stage's end, the last layer's). plan-memory gives buffers in use at once disjoint
//   aligned blocks above the whole-program ones. In a program that receives nothing, the
//   probe's instructions up to the end of its one layer come first in the strategy's too,
//   and plan-memory places the transients first used there as the probe's (it takes
//   buffers in order of first use, and whether an earlier one is free depends only on the
//   instructions before): their extent above the lowest transient, fragmentation included.
// Search tries it first and compiles probeMicroBatch only for the candidates it does not
// prune. SearchTest holds it against every strategy of a small model, and its kernel time
// equal to probeMicroBatch's. nullopt when the layers are not alike, L < 2, or the probe
// does not compile.
int64_t alikeLayersPerStage(const DeploymentSpec &spec, const StrategySpec &strategy);
std::optional<desc::Deployment> layerProbeDeployment(const desc::Deployment &deployment,
                                                     const DeploymentSpec &spec,
                                                     const StrategySpec &strategy,
                                                     int64_t seqLen);
std::optional<MicroBatchProbe> probeMicroBatchLayer(CompileSession &session,
                                                    const desc::Deployment &deployment,
                                                    const DeploymentSpec &spec,
                                                    const StrategySpec &strategy,
                                                    int64_t seqLen);
// Of a program, the buffers plan-memory lays out for its whole run, each aligned: weights,
// and the batch's caches, inputs and outputs. With layerCopies > 1 (a probe of one layer per
// stage), a buffer that only instructions of the layers use counts layerCopies times.
struct WholeProgramBuffers {
  double aligned = 0;           // every such buffer, aligned
  double bytes = 0;             // the same, unaligned
  double batchWideAligned = 0;  // of `aligned`, the caches, inputs and outputs
};
WholeProgramBuffers wholeProgramBuffers(const plan::Program &program, int64_t layerCopies);
// Of a program, the most aligned bytes of transient buffers (not laid out for the whole
// program) that one instruction finds between their first and last use, in issue order.
// plan-memory keeps each buffer live at least over that range, so its arena holds them
// beside each other above the whole-program buffers.
double transientsInUse(const plan::Program &program);
// Candidates with at least this many micro-batches are probed before they are compiled (a
// probe costs about a compile of one micro-batch: below this, not worth its time).
constexpr int64_t kProbeMicroBatches = 4;

// Strategies search enumerates at most (combinations of every axis value).
constexpr uint64_t kMaxEnumerated = 50'000'000;
// Distinct valid strategies search compiles at most (before pruning).
constexpr size_t kMaxCandidates = 20'000;

struct SearchResult {
  std::string refused;  // non-empty: the space is too large; nothing was searched
  std::string name;
  int64_t clusterGpus = 0, nodes = 0, gpusPerNode = 0;
  std::vector<int64_t> seqPoints;
  Objective objective = Objective::Throughput;
  bool generates = false;    // a GENERATE workload: generation figures and frontier
  // Axis values enumerated, for the report.
  std::map<std::string, std::vector<std::string>> axes;
  uint64_t enumerated = 0;   // combinations of the axes with at most the cluster's GPUs
  uint64_t rejected = 0;     // break some error rule
  std::map<std::string, uint64_t> rejectedByRule;  // a combination may break several
  uint64_t equivalentSchedule = 0;   // GPIPE, evaluated as 1F1B
  uint64_t equivalentRankOrder = 0;  // rank orders with the same groups or costs
  uint64_t pruned = 0;               // by a bound (not compiled)
  uint64_t prunedByProbe = 0;        // one micro-batch compiled (probeMicroBatch), then beaten
  uint64_t prunedByLayerProbe = 0;   // of them, by its layer probe (probeMicroBatchLayer)
  uint64_t prunedAfterFirst = 0;     // compiled at the longest sequence only, then beaten
  uint64_t evaluated = 0;            // compiled and simulated at every point
  double seconds = 0;                // wall time of the whole search
  unsigned threads = 1;
  std::vector<Finding> unreachable;  // requirements no strategy on the cluster can meet
  std::vector<Evaluated> candidates; // every evaluated strategy, best first (objective)
  std::optional<size_t> best;        // index into candidates: the best feasible
  std::vector<size_t> frontier;      // Pareto frontier of the feasible (or of all, if none)
  std::vector<size_t> closest;       // when none is feasible: fewest failures first
  std::map<std::string, uint64_t> failuresByRequirement;  // evaluated candidates failing it
  // The limits the figures are judged against (for plots): the requirements the description
  // sets, and the GPU's memory.
  std::optional<double> maxLatencyS, minThroughputTokensPerS, maxMemoryPerGpuBytes;
  double gpuMemoryBytes = 0;
};

// Searches the deployment's cluster. `deployment` is the parsed description (its strategy
// gives defaults: capacity factor, dispatch groups), `spec` its resolved form.
SearchResult searchStrategies(const desc::Deployment &deployment, const DeploymentSpec &spec,
                              const SearchOptions &options);

// The description with its strategy replaced by `s` (placement dropped): ready for compile.
desc::Deployment withStrategy(const desc::Deployment &d, const StrategySpec &s);

std::string renderSearchText(const SearchResult &r, const SearchOptions &options);
nlohmann::json searchJson(const SearchResult &r);

} // namespace moeplan::search
