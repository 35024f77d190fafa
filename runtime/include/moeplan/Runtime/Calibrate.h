// Measures the machine the runtime runs on, for `moeplan calibrate` (which fits a cluster
// description to it): the compute backend's kernels at several shapes and the communication
// backend's collectives over groups of 2..world ranks at several sizes. Every rank measures
// at once, as in a run, and each figure is the slowest rank's.
//
// Run by moeplan-calibrate under mpirun; collective over MPI_COMM_WORLD.
#pragma once

#include "moeplan/Support/Progress.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace moeplan::runtime {

struct CalibrateOptions {
  std::string backend = "cpu";  // compute: cpu or cuda
  std::string comm = "mpi";     // mpi or nccl
  int64_t gemmWidth = 512;      // n = k of the GEMMs timed at each row count
  std::vector<int64_t> gemmRows = {1, 4, 16, 64, 256, 1024};
  // Collective sizes: the nccl-tests S (plan.proto Cost.comm_bytes) of each point.
  std::vector<uint64_t> collectiveBytes = {4, 4096, 65536, 1 << 20, 8 << 20};
  double secondsPerPoint = 0.02;  // each point repeats until it took this long
  // Called with the measurements taken (every rank takes each at once), at most ten times a
  // second and once at the end.
  ProgressCallback progress;
};

// The measurements (schema "moeplan-calibration", version 1) on rank 0; null elsewhere:
//   ranks, backend, comm, device, host_memory_bytes (per rank) or device_memory_bytes,
//   gemm: [{m, n, k, seconds}] per call,
//   attention: {sequences, seq_len, heads, head_dim, seconds} (a causal prefill),
//   memory: {bytes, seconds} (an elementwise ADD: bytes read and written),
//   launch_seconds (an ADD of one element),
//   kernels: [{kind, variant, bytes, seconds}]: NORM (LAYER_NORM, RMS_NORM) and
//     ACTIVATION_FUNCTION (GELU, SWIGLU) over 16 MB rows, ROUTER (ROUTER) over 16 MB of
//     logits; bytes are the operands' (as plan-cost counts elementwise kernels),
//   collectives: [{kind, ranks, bytes, seconds}] (kind as plan.proto's CollectiveKind name),
//   skew (2 or more ranks): {ranks, points: [{gemms, stretch_seconds, wait_seconds}]}: how
//     long a rank waits in a 4-byte all-reduce over all ranks after a stretch of GEMMs every
//     rank runs alike (means over repetitions and ranks; the first point a stretch of none).
// Throws std::runtime_error (UnusableInput for a backend that cannot start).
nlohmann::json measureMachine(const CalibrateOptions &options);

} // namespace moeplan::runtime
