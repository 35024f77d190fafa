// moeplan-calibrate: measures this machine for `moeplan calibrate`, one process per rank:
//   mpirun -np N moeplan-calibrate --json OUT [--backend cpu|cuda] [--comm mpi|nccl]
// The measurements are moeplan::runtime::measureMachine's (runtime/Calibrate.h); rank 0
// writes them. `moeplan calibrate` runs this and fits a cluster description to the result.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Runtime/Calibrate.h"
#include "moeplan/Support/Files.h"
#include "moeplan/Support/Progress.h"

#include <CLI/CLI.hpp>
#include <mpi.h>

#include <cstdio>
#include <optional>
#include <sstream>

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  moeplan::runtime::CalibrateOptions options;
  std::string json;
  CLI::App app{"Measure this machine's kernels and collectives (under mpirun, one process per "
               "rank) for moeplan calibrate.\nExit status: 0 measured; 2 unusable command line "
               "or backend."};
  app.add_option("--json", json, "where rank 0 writes the measurements")->required();
  app.add_option("--backend", options.backend, "compute backend")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--comm", options.comm, "communication backend")
      ->check(CLI::IsMember({"mpi", "nccl"}));
  app.add_option("--gemm-width", options.gemmWidth, "n = k of the timed GEMMs")
      ->check(CLI::Range(int64_t(16), int64_t(16384)));
  app.add_option("--seconds-per-point", options.secondsPerPoint,
                 "each measurement repeats until it took this long")
      ->check(CLI::Range(1e-4, 10.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    std::ostringstream out, err;
    const int status = app.exit(e, out, err);
    if (rank == 0) std::fputs((status == 0 ? out : err).str().c_str(), status == 0 ? stdout : stderr);
    MPI_Finalize();
    return status == 0 ? 0 : 2;
  }
  moeplan::kernels::useOneBlasThread();  // one core per rank, as moeplan-run
  int status = 0;
  // Rank 0's line alone: every rank takes each measurement at once. (Under mpirun its stderr
  // is seldom a terminal, and then nothing is printed.)
  std::optional<moeplan::ProgressLine> line;
  if (rank == 0) options.progress = line.emplace("calibrate", "measurements").callback();
  try {
    nlohmann::json measured = moeplan::runtime::measureMachine(options);
    line.reset();  // cleared before anything else prints
    if (rank == 0) moeplan::files::writeAtomically(json, measured.dump(1) + "\n");
  } catch (const std::exception &e) {
    line.reset();
    std::fprintf(stderr, "moeplan-calibrate: error: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Finalize();
  return status;
}
