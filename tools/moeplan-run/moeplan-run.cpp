// moeplan-run PLAN: executes a compiled plan, one process per plan rank:
//   mpirun -np N moeplan-run PLAN (--checkpoint CKPT|HF_DIR | --random-weights S)
//                                 (--input FILE | --input-seed S) [--output OUT]
//                                 [--backend cpu|cuda] [--comm mpi|nccl] [--iterations N]
//                                 [--new-tokens N] (GENERATE plans)
// The engine is moeplan::runtime::runPlan (runtime/lib/Runtime/Executor.cpp).
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Runtime/Executor.h"

#include <CLI/CLI.hpp>
#include <mpi.h>

#include <cstdio>
#include <sstream>
#include <string>

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  moeplan::runtime::RunOptions options;
  CLI::App app{"Execute a compiled moeplan plan: one process per plan rank, under mpirun.\n"
               "Exit status: 0 ran; 1 the run's results could not be written; 2 unusable plan,\n"
               "world size, placement, device, checkpoint, input or command line (every rank\n"
               "stops before compute).\n"
               "A failure during the run aborts every rank (status 3)."};
  app.add_option("plan", options.planPath, "compiled plan (moeplan compile)")->required();
  auto *checkpoint = app.add_option(
      "--checkpoint", options.checkpoint,
      "weights: safetensors in the unsharded layout (moeplan init-weights), or a Hugging Face "
      "model directory (config.json, model.safetensors or its sharded index); F32, F16 or "
      "BF16, converted to the plan's dtype");
  uint64_t weightSeed = 0;
  app.add_option("--random-weights", weightSeed,
                 "instead of --checkpoint: the weights `moeplan init-weights --seed SEED` writes, "
                 "each rank generating only its shard (on the device with --backend cuda)")
      ->excludes(checkpoint);
  auto *input = app.add_option("--input", options.input,
                               "input: safetensors with \"tokens\" I32 [sequences, seq_len] (a "
                               "GENERATE plan's prompt; its length is the plan's seq_len)");
  uint64_t seed = 0;
  app.add_option("--input-seed", seed, "deterministic random input instead of --input")
      ->excludes(input);
  app.add_option("--write-input", options.writeInput, "write the seeded input here (rank 0)");
  app.add_option("--output", options.output,
                 "write \"logits\" [sequences, seq_len, vocab] here; a GENERATE plan also writes "
                 "\"generated\" I32 [sequences, new tokens] (greedy) and \"step_logits\" "
                 "[sequences, new tokens, vocab], the logits each token was chosen from");
  uint32_t newTokens = 0;
  app.add_option("--new-tokens", newTokens,
                 "GENERATE plans: tokens to generate per sequence, at most the plan's "
                 "workload.new_tokens (default: that)")
      ->check(CLI::Range(1u, 1u << 24));
  app.add_option("--trace", options.trace, "write the measured timeline (Perfetto JSON) here");
  app.add_option("--report-json", options.reportJson, "write the measurements as JSON here");
  app.add_option("--backend", options.backend,
                 "compute backend: cpu (OpenBLAS, F32 plans) or cuda (cuBLAS and CUDA kernels); "
                 "default cuda for F16/BF16 plans where a GPU is visible, else cpu "
                 "(cpu-queued: the CPU kernels queued per stream as on a GPU, for testing)")
      ->check(CLI::IsMember({"cpu", "cuda", "cpu-queued"}));
  app.add_option("--comm", options.comm,
                 "communication backend: mpi (host memory; staged through pinned memory with "
                 "cuda) or nccl (GPU memory, one GPU per rank); default nccl with cuda unless "
                 "ranks share a GPU, else mpi (mpi-queued: MPI queued on the streams of "
                 "cpu-queued, for testing)")
      ->check(CLI::IsMember({"mpi", "nccl", "mpi-queued"}));
  app.add_option("--iterations", options.iterations,
                 "measured forward passes (GENERATE plans: whole generations); the report gives "
                 "the median (default 1)")
      ->check(CLI::Range(1u, 1000000u));
  uint32_t warmup = 0;
  app.add_option("--warmup", warmup, "unmeasured passes first (default 1 when --iterations > 1)");
  app.add_flag("--graph", options.graph,
               "cuda: capture the forward pass once as a CUDA graph and replay it for "
               "--iterations (per-kernel times are then not measured)");
  app.add_flag("--padded-experts", options.paddedExperts,
               "the expert step computes and moves every capacity row, empty ones included "
               "(default: the rows tokens were routed to; cpu with mpi only, other backends "
               "always pad)");
  app.add_option("--stall-timeout", options.stallSeconds,
                 "end the job when a rank has been silent this many seconds (stopped, or its "
                 "host unreachable), or when no rank has progressed for that long although all "
                 "are alive (a deadlock); a rank busy computing is not a stall (default 120)")
      ->check(CLI::PositiveNumber);
  using Fault = moeplan::runtime::RunOptions::Fault;
  auto faultAt = [](Fault kind) {
    return [kind](const std::string &v) -> std::string {
      unsigned r, i;
      double seconds;
      char end;
      if (kind == Fault::Slow)
        return std::sscanf(v.c_str(), "%u:%u:%lf%c", &r, &i, &seconds, &end) == 3 && seconds >= 0
                   ? ""
                   : "expected RANK:INSTRUCTION:SECONDS";
      return std::sscanf(v.c_str(), "%u:%u%c", &r, &i, &end) == 2 ? "" : "expected RANK:INSTRUCTION";
    };
  };
  std::string dieAt, stopAt, hangAt, slowAt;
  auto *die = app.add_option("--die-at", dieAt, "testing: RANK:INSTRUCTION kills that rank there")
                  ->check(faultAt(Fault::Die));
  auto *stop = app.add_option("--stop-at", stopAt,
                              "testing: RANK:INSTRUCTION stops that rank there (SIGSTOP)")
                   ->check(faultAt(Fault::Stop))
                   ->excludes(die);
  app.add_option("--hang-at", hangAt,
                 "testing: RANK:INSTRUCTION makes that rank wait there forever, alive (a deadlock)")
      ->check(faultAt(Fault::Hang))
      ->excludes(die)
      ->excludes(stop);
  app.add_option("--slow-at", slowAt,
                 "testing: RANK:INSTRUCTION:SECONDS makes that rank compute SECONDS longer there")
      ->check(faultAt(Fault::Slow))
      ->excludes(die)
      ->excludes(stop);
  int status = 0;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    std::ostringstream out, err;
    status = app.exit(e, out, err);
    if (status == 0) {  // --help: every rank has it; rank 0 prints it
      if (rank == 0) std::fputs(out.str().c_str(), stdout);
    } else {
      status = moeplan::runtime::abandonRun(err.str());
    }
    MPI_Finalize();
    return status;
  }
  if (app.count("--input-seed")) options.inputSeed = seed;
  if (app.count("--random-weights")) options.randomWeights = weightSeed;
  if (app.count("--warmup")) options.warmup = warmup;
  if (app.count("--new-tokens")) options.newTokens = newTokens;
  for (const auto &[text, kind] : {std::make_pair(dieAt, Fault::Die), std::make_pair(stopAt, Fault::Stop),
                                    std::make_pair(hangAt, Fault::Hang), std::make_pair(slowAt, Fault::Slow)}) {
    if (text.empty()) continue;
    unsigned r = 0, i = 0;
    double seconds = 0;
    std::sscanf(text.c_str(), "%u:%u:%lf", &r, &i, &seconds);
    options.fault = moeplan::runtime::RunOptions::InjectedFault{kind, uint32_t(r), uint32_t(i), seconds};
  }
  moeplan::kernels::useOneBlasThread();
  status = moeplan::runtime::runPlan(options);
  MPI_Finalize();
  return status;
}
