// moeplan-run's engine: one process per plan rank (under mpirun). It checks the plan and the
// world before any compute, builds one MPI communicator per mesh axis, allocates the rank's
// arena once, loads its weight shards and inputs, and executes its program: compute
// (stream 0) on the calling thread, communication (streams 1 and 2) on a thread of its own
// that posts non-blocking MPI operations in the plan's global order, so transfers overlap
// compute exactly where the plan's events allow. It measures what it did.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeplan::runtime {

struct RunOptions {
  std::string planPath;
  std::string checkpoint;                 // safetensors, unsharded layout
  std::string input;                      // safetensors with "tokens" (or "hidden_in")
  std::optional<uint64_t> inputSeed;      // instead of `input`: deterministic random input
  std::string writeInput;                 // where rank 0 writes the input it used
  std::string output;                     // where rank 0 writes "logits" (or "hidden_out")
  std::string trace;                      // measured timeline, Perfetto JSON
  std::string reportJson;                 // the measurements as JSON
  bool printReport = true;                // rank 0 prints the measurements
  double stallSeconds = 120;              // communication that makes no progress this long aborts
  // Testing the fault paths: (rank, instruction) where that rank is killed (SIGKILL), or
  // where it stops making progress for good.
  enum class Fault { Die, Hang };
  struct InjectedFault {
    Fault kind = Fault::Die;
    uint32_t rank = 0, instruction = 0;
  };
  std::optional<InjectedFault> fault;
};

// Runs the plan on this process's MPI rank. MPI must be initialised. Returns the exit status
// (0 ran; 2 unusable plan, world, checkpoint or input: every rank reports and stops before
// compute). Failures during compute abort the whole job with a message naming the rank and
// instruction.
int runPlan(const RunOptions &options);

} // namespace moeplan::runtime
