// `moeplan calibrate`: a cluster description fitted to what moeplan-calibrate measured
// (runtime/Calibrate.h), so that the cost model predicts the machine that ran it:
//   peak_tflops      the fastest GEMM measured (FLOP/s);
//   gemm_efficiency  each measured GEMM's rate over that peak, by its rows;
//   mfu              the causal prefill attention's rate over the peak (the cost model's
//                    share for compute kernels without a rows curve);
//   memory bandwidth an elementwise ADD's bytes over its time less the launch overhead
//                    (utilization 1: the figure is already what kernels reach);
//   launch_overhead  an ADD of one element;
//   kernel_rates     each measured norm, activation function and router: its operands'
//                    bytes over its time less the launch overhead;
//   intra_node link  latency per algorithm step and bus bandwidth by weighted least squares
//                    over every collective point (t = steps x latency + busFactor x S /
//                    bandwidth, the cost model's own formula; relative errors weighed alike);
//   nodes 1, gpus_per_node = the ranks measured; memory_gb the rank's share of host memory
//   (cpu) or the device's. Measured on one rank (one GPU): no link, a one-GPU cluster.
#pragma once

#include "moeplan/schema/deployment.pb.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace moeplan::report {

struct FittedCluster {
  desc::Cluster cluster;
  // The link fit's worst relative error over the collective points (0 on one rank).
  double worstCollectiveError = 0;
  std::string summary;  // a few lines of what was measured and fitted, for comments
};

// nullopt with `error` naming the JSON field when the measurements are not usable.
std::optional<FittedCluster> fitCluster(const nlohmann::json &measurements, std::string &error);

// The cluster section as description text, its comments saying what was measured.
std::string renderCluster(const FittedCluster &fitted);

// Executed FLOPs of one causal prefill attention kernel (as PlanCost counts them: each query
// against itself and the keys before it, QK^T and PV).
double causalAttentionFlops(double sequences, double seqLen, double heads, double headDim);

} // namespace moeplan::report
