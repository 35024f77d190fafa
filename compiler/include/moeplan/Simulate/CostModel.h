// Time of one plan instruction on one rank, from its counted work (plan::Cost) and the
// cluster: roofline for kernels; for collectives the nccl-tests bus factor x bytes over the
// links the algorithm uses, plus a link latency per algorithm step (reference.md section 4).
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <utility>
#include <vector>
#include <string>

namespace moeplan::sim {

// The two roofline terms of a kernel: flops / (peak x mfu) and memory_bytes / (HBM
// bandwidth x utilisation). A zero rate throws std::invalid_argument only when there is work
// for it.
double kernelComputeSeconds(const plan::Cluster &c, const plan::Cost &cost);
double kernelMemorySeconds(const plan::Cluster &c, const plan::Cost &cost);

// max(flops / (peak x mfu), memory_bytes / (HBM bandwidth x utilisation)).
double kernelSeconds(const plan::Cluster &c, const plan::Cost &cost);

// The share of peak a GEMM of `rows` rows reaches: the cluster's gemm_efficiency
// interpolated in log(rows), flat beyond its ends; mfu when it has none.
double gemmEfficiency(const plan::Cluster &c, double rows);
// A kernel instruction's share of peak: a GEMM's or grouped GEMM's by its rows per group
// (flops / (2 n k groups): the rows its cost counts, routed rows as filled), mfu otherwise.
double kernelEfficiency(const plan::Cluster &c, const plan::Instruction &inst);
// flops / (peak x efficiency).
double kernelComputeSeconds(const plan::Cluster &c, const plan::Cost &cost, double efficiency);
// The bytes per second a kernel instruction moves: its kind's measured rate where the
// cluster has one (Cluster.kernel_rates: norms, activation functions, the router), else HBM
// bandwidth x utilisation.
double kernelBandwidth(const plan::Cluster &c, const plan::Instruction &inst);
// memory_bytes / kernelBandwidth.
double kernelMemorySeconds(const plan::Cluster &c, const plan::Instruction &inst);
// What a kernel instruction takes: the cluster's launch overhead + max(flops / (peak x its
// efficiency), memory_bytes / its bandwidth).
double kernelSeconds(const plan::Cluster &c, const plan::Instruction &inst);

// nccl-tests factor between the algorithm bytes S and the bus bytes: all-reduce 2(n-1)/n,
// all-gather, reduce-scatter and all-to-all (n-1)/n, send/recv 1. n == 1: 0 (no traffic).
double busFactor(plan::CollectiveKind kind, uint32_t groupSize);

// Sequential steps of the algorithm over n ranks, each paying a link latency: a ring
// all-reduce 2(n-1) (reduce-scatter, then all-gather), ring all-gather and reduce-scatter
// n-1; an all-to-all sends to every peer at once (1); send/recv 1.
uint32_t algorithmSteps(plan::CollectiveKind kind, uint32_t groupSize);

// The expected latest of independent normal arrival times, each (mean, standard deviation):
// Clark's moments of the maximum of two normals (C. E. Clark, "The greatest of a finite set
// of random variables", Operations Research 9(2), 1961), exact for two, folded pairwise over
// more (the moment-matching approximation statistical timing analysis uses). Never below the
// latest mean; with every deviation 0, the latest mean.
double expectedLatestArrival(const std::vector<std::pair<double, double>> &arrivals);

// How far past their common mean n members with the same deviation sigma meet, in sigmas
// (expectedLatestArrival of n arrivals (0, 1)): 1/sqrt(pi) for two; each member waits that
// long on average. What `moeplan calibrate` divides a measured wait by.
double jitterWaitFactor(uint32_t n);

// Share of the algorithm bytes S each rank reduces (gamma's factor in the alpha-beta-gamma
// model, Thakur, Rabenseifner and Gropp 2005): all-reduce and reduce-scatter (n-1)/n, the
// others 0.
double reduceFactor(plan::CollectiveKind kind, uint32_t groupSize);

// How a group's members sit on the cluster's nodes, as one member sees them.
struct GroupSpan {
  uint32_t size = 1;
  uint32_t localMembers = 1;  // members on this member's node, itself included
  bool oneNode() const { return localMembers >= size; }
};

// A collective of `commBytes` (the nccl-tests S) on a group laid out as `span`:
// - on one node: steps x intra latency + busFactor x S / intra bandwidth
//   + reduceFactor x S / intra reduce rate (when the link has one);
// - across nodes, rings (all-reduce, all-gather, reduce-scatter): every step moves the same
//   bytes on every link of the ring, so the inter-node hops bound it: steps x inter latency
//   + busFactor x S / inter bandwidth + reduceFactor x S / inter reduce rate;
// - across nodes, all-to-all by destination: S / size to each peer, the node's other
//   members over the intra-node links and the rest over the inter-node link at the same
//   time: the slower of (intra latency + (local - 1) S / size / intra bandwidth) and
//   (inter latency + (size - local) S / size / inter bandwidth);
// - send/recv: latency + S / bandwidth of the link between the two.
// A group of one rank costs nothing.
double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         const GroupSpan &span);
// The same for a group entirely on one node (intraNode) or with one member per node.
double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         uint32_t groupSize, bool intraNode);

// A collective instruction on `span`: collectiveSeconds of its kind and comm bytes and, for
// a routed all-to-all or all-gather (plan.proto Instruction.routed), the exchange of row
// counts the runtime runs before it (runtime/RoutedRows.h): the same kind of collective on
// 4 bytes per capacity segment, charged its latency alone. A routed reduce-scatter's members
// hold the same rows and exchange nothing first.
double collectiveSeconds(const plan::Cluster &c, const plan::Instruction &inst,
                         const GroupSpan &span);

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
  GroupSpan span;         // the group's layout on nodes as this rank sees it (SEND, RECV:
                          // the two ranks)
};
CollectiveRoute routeCollective(const plan::Plan &p, uint32_t rank, const plan::Collective &c);

// The instruction's time when `rank` runs it (its groups decide intra- or inter-node).
double instructionSeconds(const plan::Plan &p, uint32_t rank, const plan::Instruction &inst);

} // namespace moeplan::sim
