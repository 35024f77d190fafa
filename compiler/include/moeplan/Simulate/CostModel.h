// Time of one plan instruction on one rank, from its counted work (plan::Cost) and the
// cluster: roofline for kernels, latency + nccl-tests bus factor x bytes / bandwidth for
// collectives (reference.md section 4).
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <string>

namespace moeplan::sim {

// The two roofline terms of a kernel: flops / (peak x mfu) and memory_bytes / (HBM
// bandwidth x utilisation). A zero rate throws std::invalid_argument only when there is work
// for it.
double kernelComputeSeconds(const plan::Cluster &c, const plan::Cost &cost);
double kernelMemorySeconds(const plan::Cluster &c, const plan::Cost &cost);

// max(flops / (peak x mfu), memory_bytes / (HBM bandwidth x utilisation)).
double kernelSeconds(const plan::Cluster &c, const plan::Cost &cost);

// nccl-tests factor between the algorithm bytes S and the bus bytes: all-reduce 2(n-1)/n,
// all-gather, reduce-scatter and all-to-all (n-1)/n, send/recv 1. n == 1: 0 (no traffic).
double busFactor(plan::CollectiveKind kind, uint32_t groupSize);

// latency + busFactor x commBytes / bandwidth, over the intra- or inter-node link. A group
// of one rank costs nothing.
double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         uint32_t groupSize, bool intraNode);

// The rank's membership on `axis` (throws std::invalid_argument when it has none or it names
// a group that does not exist).
const plan::GroupMembership &membershipOn(const plan::Plan &p, uint32_t rank,
                                          const std::string &axis);

// Where a collective of `rank` goes: the group its axis resolves to and, for SEND/RECV, the
// global rank of the peer. intraNode: the group is on one node, or for SEND/RECV the two
// ranks are.
struct CollectiveRoute {
  uint32_t group = 0;
  uint32_t groupSize = 0;
  bool intraNode = false;
  uint32_t peerRank = 0;  // SEND, RECV only
};
CollectiveRoute routeCollective(const plan::Plan &p, uint32_t rank, const plan::Collective &c);

// The instruction's time when `rank` runs it (its groups decide intra- or inter-node).
double instructionSeconds(const plan::Plan &p, uint32_t rank, const plan::Instruction &inst);

} // namespace moeplan::sim
