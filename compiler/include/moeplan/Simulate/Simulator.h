// Discrete-event simulation of every rank of a plan: streams run in issue order, events
// order streams, a collective starts when every member of its group has reached it, a RECV
// completes when its SEND has. From the per-rank timelines come the predicted figures that
// `check`, `inspect` and `diff` report.
#pragma once

#include "moeplan/Trace/Trace.h"
#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <string>
#include <optional>
#include <vector>

namespace moeplan::sim {

struct InstructionTiming {
  uint32_t instruction = 0;  // index in the rank's program
  double start = 0, end = 0;
  // When the rank issued it (its stream free, its events recorded): a collective then waits
  // for its group until `start`. A kernel starts when issued.
  double issued = 0;
};

// Stream-0 idle time is attributed to the constraint that released the next stream-0
// instruction last (the producer of the latest of its wait_events): a SEND/RECV makes it
// bubble, another collective exposed communication, a kernel neither. A collective issued on
// stream 0 holds it: its wait for the group and its duration count the same way.
struct RankTimeline {
  uint32_t rank = 0;
  std::vector<InstructionTiming> instructions;  // in issue order
  double end = 0;               // completion of the rank's last instruction
  double computeBusy = 0;       // stream 0 busy time (its kernels)
  double commBusy = 0;          // time some collective or transfer of this rank is running
                                // (union of their intervals, whatever their stream)
  double exposedComm = 0;       // stream-0 idle time spent waiting on a collective (not a RECV)
  double bubble = 0;            // stream-0 idle time waiting on a RECV, before the first or
                                // after the last compute instruction
  double computeSeconds = 0;    // roofline parts: sum of flops / (peak x mfu)
  double memorySeconds = 0;     //   sum of memory bytes / (HBM x utilisation)
  double commSeconds = 0;       //   sum of collective times
  uint64_t flops = 0;           // executed (routed work: expected)
  uint64_t modelFlops = 0;      // Narayanan's convention (plan.proto Cost.model_flops)
};

// The routing model's prediction for one MoE layer (Routing.h), from its first DISPATCH in
// issue order (a GENERATE plan's prefill) and the plan's expert loads.
struct LayerRouting {
  int32_t layer = 0;
  double loadBalance = 1;      // expected mean / max over EP ranks of the whole batch's choices
  double droppedFraction = 0;  // expected share of the choices capacity drops
  // Shares of the capacity's rows (what `routed` instructions' plan costs count): filled on
  // the busiest EP rank (the share the simulator charges), on the mean rank, and routed
  // (choices before drops: the model's share).
  double busiestFill = 1, meanFill = 1, routedFill = 1;
  double stickiness = 0;  // the routing model's (model.routing_stickiness)
};

// A GENERATE plan's generation as the runtime runs it: the prefill, then the decode steps,
// each rank draining its own streams between parts but never waiting for the others, so
// micro-batches pipeline across steps (the first stage starts one's next step when the last
// stage sends it its tokens).
struct GenerationPrediction {
  double ttftSeconds = 0;              // the slowest rank's end of the prefill (its sampling
                                       // included)
  uint32_t steps = 0;                  // decode steps: new_tokens - 1
  // The steps taken as samples: every step up to kMaxSimulatedSteps; past it, two of each
  // window of pp + 4 steps (after pp + 1 that warm the pipeline up, before one they feed),
  // windows at evenly spaced starts from the first step to the last, about
  // kMaxSimulatedSteps steps simulated in all.
  std::vector<uint32_t> simulatedSteps;
  std::vector<double> stepSeconds;     // per sample: from the last rank's end of the
                                       // previous part to the last rank's end of the step
  double tpotMedianSeconds = 0, tpotP99Seconds = 0;  // over the samples (nearest rank)
  double decodeTokensPerSecond = 0;    // sequences x samples / their total time
};
constexpr uint32_t kMaxSimulatedSteps = 128;

struct Prediction {
  double latencySeconds = 0;          // makespan of the whole batch (all micro-batches)
  double throughputTokensPerSecond = 0;
  double bubbleFraction = 0;          // mean over ranks of bubble / makespan
  double commShare = 0;               // mean over ranks of commBusy / makespan
  double exposedCommShare = 0;        // mean over ranks of exposedComm / makespan
  double overlappedCommShare = 0;     // commShare - exposedCommShare
  double utilization = 0;             // executed FLOPs / (ranks x peak x makespan): <= mfu
  double loadBalance = 1;             // mean over MoE layers of LayerRouting::loadBalance
  double droppedTokenFraction = 0;    // mean over MoE layers of LayerRouting::droppedFraction
  std::vector<LayerRouting> routing;  // per MoE layer
  double rooflineSeconds = 0;         // max over ranks of max(compute, memory, comm)
  uint32_t rooflineRank = 0;          // the rank that bounds it
  std::string rooflineBound;          // "compute", "memory" or "communication"
  std::vector<RankTimeline> ranks;
  // Ranks simulated on their own; the others (ranks - simulatedRanks) share the timeline of
  // a rank that runs the same program and sees its communicators alike (detail::
  // simulateEveryRank). A GENERATE plan's: its prefill's.
  uint32_t simulatedRanks = 0;
  // GENERATE plans: the figures above are the prefill's (alone: its feeds_next_step SENDs
  // skipped), and this the whole generation's.
  std::optional<GenerationPrediction> generation;
};

// The routing model's figures for every MoE layer of the plan.
std::vector<LayerRouting> predictRouting(const plan::Plan &p);

// The plan with every `routed` instruction's cost scaled to the rows its layer's DISPATCH is
// expected to fill on the busiest EP rank (every EP rank waits for it in the all-to-all
// back): FLOPs, activation bytes and communication bytes; weights are read whole. What
// simulate() times.
plan::Plan expectedWork(const plan::Plan &p);
// The same in place: for a caller that is done with the plan's own costs (search, which
// simulates each plan it compiles once and discards it), so simulating it copies nothing.
void applyExpectedWork(plan::Plan &p);

// Throws std::invalid_argument when the plan deadlocks (names the ranks and instructions
// that wait on each other); plans from validatePlan() and the compiler never do. Also throws
// on plans it cannot time (a collective's kinds differ between members, a rank without a
// group on a collective's axis, a cluster rate of zero where there is work for it).
// A wait on an event is a wait for its latest record issued before the waiter (as a CUDA
// stream wait), or for its first record when none is issued before.
Prediction simulate(const plan::Plan &p);
// simulate() of a plan already holding its expected work (applyExpectedWork; once: a plan
// scaled twice is timed at the wrong work).
Prediction simulateExpectedWork(const plan::Plan &expected);

namespace detail {
// simulate()'s generation figures; past maxSimulatedSteps decode steps, in windows (a larger
// maxSimulatedSteps simulates every step in one chain, which tests compare the windows with).
GenerationPrediction simulateGeneration(const plan::Plan &p,
                                        uint32_t maxSimulatedSteps = kMaxSimulatedSteps,
                                        bool shareTimelines = true);
// simulate() with every rank simulated on its own. simulate() simulates the ranks of one
// program once when they see their communicators alike (their timelines are then the same:
// Simulator.cpp, findRepresentatives), and gives the others its timeline; tests hold the two
// equal.
Prediction simulateEveryRank(const plan::Plan &p);
} // namespace detail

// Per rank (by plan rank), what its compute stream holds whatever the other ranks do, with
// the same expected work as simulate() times:
struct SoloCompute {
  // Its kernels' time: simulate()'s RankTimeline::computeBusy (summed in issue order, not
  // as end - start differences, so equal to it up to rounding).
  double busy = 0;
  double layerBusy = 0;  // of it, the kernels of the transformer layers (Instruction.layer >= 0)
  // A lower bound on the time from its first compute-stream kernel's start to its last
  // one's end: the rank's own dependency chain with every instruction at its own duration
  // (a collective at this rank's cost of it), none waiting for another rank.
  double span = 0;
  // A lower bound on `span` built from pieces: the compute stream's kernels in runs of one
  // Instruction.layer value; per run, the longest path from its first kernel to its last
  // through instructions of that value only (each run starts after the one before it ends,
  // on the stream), at least the run's kernels. chainOutside sums the runs outside the
  // transformer layers, chainLayers those of the layers. A layer's run depends on that
  // layer's instructions alone: alike layers give alike runs (search's layer probe).
  double chainOutside = 0, chainLayers = 0;
};
std::vector<SoloCompute> soloCompute(const plan::Plan &p);
// The same of a plan already holding its expected work, as simulateExpectedWork.
std::vector<SoloCompute> soloComputeOfExpectedWork(const plan::Plan &expected);

// The simulated timeline as trace events (stream names: compute, collectives, pipeline).
std::vector<trace::TraceEvent> traceEvents(const plan::Plan &p, const Prediction &pred);
const std::vector<std::string> &streamNames();

} // namespace moeplan::sim
