#include "moeplan/Simulate/CostModel.h"

#include <algorithm>
#include <stdexcept>

namespace moeplan::sim {

namespace {

// amount / rate; a rate that is missing matters only when there is something to move.
double timeFor(double amount, double rate, const char *rateName) {
  if (amount == 0) return 0;
  if (!(rate > 0))
    throw std::invalid_argument(std::string("cost model: ") + rateName +
                                " must be positive to time this work");
  return amount / rate;
}

}  // namespace

double kernelComputeSeconds(const plan::Cluster &c, const plan::Cost &cost) {
  return timeFor(double(cost.flops()), c.peak_flops() * c.mfu(), "cluster peak_flops x mfu");
}

double kernelMemorySeconds(const plan::Cluster &c, const plan::Cost &cost) {
  return timeFor(double(cost.memory_bytes()),
                 c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization(),
                 "cluster memory bandwidth x utilization");
}

double kernelSeconds(const plan::Cluster &c, const plan::Cost &cost) {
  return std::max(kernelComputeSeconds(c, cost), kernelMemorySeconds(c, cost));
}

double busFactor(plan::CollectiveKind kind, uint32_t groupSize) {
  if (groupSize <= 1) return 0;
  double othersShare = double(groupSize - 1) / double(groupSize);
  switch (kind) {
  case plan::ALL_REDUCE: return 2 * othersShare;
  case plan::ALL_GATHER:
  case plan::REDUCE_SCATTER:
  case plan::ALL_TO_ALL: return othersShare;
  case plan::SEND:
  case plan::RECV: return 1;
  default:
    throw std::invalid_argument("cost model: unknown collective kind " + std::to_string(kind));
  }
}

double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         uint32_t groupSize, bool intraNode) {
  if (groupSize <= 1) return 0;
  const plan::Link &link = intraNode ? c.intra_node() : c.inter_node();
  return link.latency_s() +
         timeFor(busFactor(kind, groupSize) * double(commBytes), link.bandwidth_bytes_per_s(),
                 intraNode ? "intra-node link bandwidth" : "inter-node link bandwidth");
}

const plan::GroupMembership &membershipOn(const plan::Plan &p, uint32_t rank,
                                          const std::string &axis) {
  if (rank >= uint32_t(p.ranks_size()))
    throw std::invalid_argument("rank " + std::to_string(rank) + " is not in the plan");
  for (const plan::GroupMembership &m : p.ranks(int(rank)).groups()) {
    if (m.axis() != axis) continue;
    if (m.group() >= uint32_t(p.groups_size()))
      throw std::invalid_argument("rank " + std::to_string(rank) + "'s group on axis \"" + axis +
                                  "\" is " + std::to_string(m.group()) + ", not a group");
    return m;
  }
  throw std::invalid_argument("rank " + std::to_string(rank) + " has no group on axis \"" + axis +
                              "\"");
}

CollectiveRoute routeCollective(const plan::Plan &p, uint32_t rank, const plan::Collective &c) {
  const plan::GroupMembership &m = membershipOn(p, rank, c.axis());
  const plan::Group &group = p.groups(int(m.group()));
  CollectiveRoute route;
  route.group = m.group();
  route.groupSize = uint32_t(group.ranks_size());
  route.intraNode = group.intra_node();
  if (c.kind() == plan::SEND || c.kind() == plan::RECV) {
    if (c.peer() >= route.groupSize)
      throw std::invalid_argument("rank " + std::to_string(rank) + ": peer " +
                                  std::to_string(c.peer()) + " is outside its group on axis \"" +
                                  c.axis() + "\"");
    route.peerRank = group.ranks(int(c.peer()));
    if (route.peerRank >= uint32_t(p.ranks_size()))
      throw std::invalid_argument("group " + std::to_string(m.group()) + " names rank " +
                                  std::to_string(route.peerRank) + ", not in the plan");
    route.intraNode = p.ranks(int(rank)).node() == p.ranks(int(route.peerRank)).node();
  }
  return route;
}

double instructionSeconds(const plan::Plan &p, uint32_t rank, const plan::Instruction &inst) {
  if (inst.has_kernel()) return kernelSeconds(p.cluster(), inst.cost());
  if (!inst.has_collective())
    throw std::invalid_argument("instruction \"" + inst.label() + "\" has no operation");
  const plan::Collective &c = inst.collective();
  CollectiveRoute route = routeCollective(p, rank, c);
  return collectiveSeconds(p.cluster(), c.kind(), inst.cost().comm_bytes(), route.groupSize,
                           route.intraNode);
}

}  // namespace moeplan::sim
