// Time of one plan instruction on one rank, from its counted work (plan::Cost) and the
// cluster: roofline for kernels, latency + nccl-tests bus factor x bytes / bandwidth for
// collectives (reference.md section 4).
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>

namespace moeplan::sim {

// max(flops / (peak x mfu), memory_bytes / (HBM bandwidth x utilisation)).
double kernelSeconds(const plan::Cluster &c, const plan::Cost &cost);

// nccl-tests factor between the algorithm bytes S and the bus bytes: all-reduce 2(n-1)/n,
// all-gather, reduce-scatter and all-to-all (n-1)/n, send/recv 1. n == 1: 0 (no traffic).
double busFactor(plan::CollectiveKind kind, uint32_t groupSize);

// latency + busFactor x commBytes / bandwidth, over the intra- or inter-node link. A group
// of one rank costs nothing.
double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         uint32_t groupSize, bool intraNode);

// The instruction's time when `rank` runs it (its groups decide intra- or inter-node).
double instructionSeconds(const plan::Plan &p, uint32_t rank, const plan::Instruction &inst);

} // namespace moeplan::sim
