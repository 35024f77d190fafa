// moeplan-run's engine: one process per plan rank (under mpirun). It walks the rank's
// program; a compute backend (cpu, cuda) and a communication backend (mpi, nccl) carry it
// out (Backend.h). Before any compute it checks the plan, the world, the placement of ranks
// on hosts and devices, then creates the backends and the communicators of the rank's
// groups, allocates the arena once and loads the weight shards and inputs; every rank agrees
// that every other is ready. Kernels (stream 0) are issued by one thread, communication
// (streams 1 and 2) by another in the plan's global order, so transfers overlap compute
// exactly where the plan's events allow. It measures what it did.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeplan::runtime {

struct RunOptions {
  std::string planPath;
  std::string checkpoint;                 // safetensors, unsharded layout (F32, F16 or BF16)
  std::optional<uint64_t> randomWeights;  // instead of `checkpoint`: init-weights values
  std::string input;                      // safetensors with "tokens" (or "hidden_in")
  std::optional<uint64_t> inputSeed;      // instead of `input`: deterministic random input
  std::string writeInput;                 // where rank 0 writes the input it used
  std::string output;                     // where rank 0 writes "logits" (or "hidden_out");
                                          // GENERATE: also "generated" and "step_logits"
  std::string trace;                      // measured timeline, Perfetto JSON
  std::string reportJson;                 // the measurements as JSON
  bool printReport = true;                // rank 0 prints the measurements
  std::string backend;                    // "cpu", "cuda"; empty: cuda for F16/BF16 plans
                                          // where a device is visible, else cpu
  std::string comm;                       // "mpi", "nccl"; empty: nccl with cuda (mpi where
                                          // ranks share a device), mpi with cpu
  uint32_t iterations = 1;                // measured forward passes (the report: median);
                                          // GENERATE: whole generations
  std::optional<uint32_t> warmup;         // unmeasured passes first; default 1 if iterations > 1
  // GENERATE: tokens generated per sequence (1 .. the plan's workload.new_tokens); default
  // the plan's.
  std::optional<uint32_t> newTokens;
  bool graph = false;                     // cuda: capture the forward once, replay it
  // The expert step computes and moves every capacity row, empty ones included, instead of
  // the routed rows only (RoutedRows.h; backends without routed rows always do).
  bool paddedExperts = false;
  // A rank silent this long (stopped, unreachable), or no rank progressing this long while
  // all are alive (a deadlock), ends the job (Liveness.h).
  double stallSeconds = 120;
  // Testing the fault paths: at (rank, instruction) that rank is killed (SIGKILL), stopped
  // (SIGSTOP, as a debugger or a frozen host would), waits forever while alive (a deadlock)
  // or computes for `seconds` more.
  enum class Fault { Die, Stop, Hang, Slow };
  struct InjectedFault {
    Fault kind = Fault::Die;
    uint32_t rank = 0, instruction = 0;
    double seconds = 0;  // Slow
  };
  std::optional<InjectedFault> fault;
};

// What this rank measured, for programs that run plans in-process (the benchmarks): the
// median pass's wall time and per-instruction durations (empty under --graph). For a
// GENERATE plan a pass is a whole generation, and the durations are the prefill's and the
// median decode step's.
struct RunResult {
  double wallSeconds = 0;
  std::vector<double> instructionSeconds;  // by instruction of the rank's program
  std::string device;                      // as the report names it
};

// Runs the plan on this process's MPI rank. MPI must be initialised. Returns the exit status
// (0 ran; 2 unusable plan, world, checkpoint or input: every rank reports and stops before
// compute). Failures during compute abort the whole job with a message naming the rank and
// instruction.
int runPlan(const RunOptions &options, RunResult *result = nullptr);

// For a rank that cannot even call runPlan (a bad command line): takes part in runPlan's
// first start-up agreement, so that the other ranks stop too instead of waiting for it. The
// lowest failing rank prints `problem` (text ending in a newline); returns the exit status
// (2). MPI must be initialised.
int abandonRun(const std::string &problem);

} // namespace moeplan::runtime
