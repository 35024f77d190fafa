#include "moeplan/Simulate/CostModel.h"

#include <algorithm>
#include <cmath>
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

double kernelComputeSeconds(const plan::Cluster &c, const plan::Cost &cost, double efficiency) {
  return timeFor(double(cost.flops()), c.peak_flops() * efficiency,
                 "cluster peak_flops x kernel efficiency");
}

double gemmEfficiency(const plan::Cluster &c, double rows) {
  const auto &points = c.gemm_efficiency();
  if (points.empty()) return c.mfu();
  if (rows <= points[0].rows()) return points[0].efficiency();
  for (int i = 1; i < points.size(); ++i) {
    const plan::GemmEfficiency &a = points[i - 1], &b = points[i];
    if (rows > b.rows()) continue;
    const double f = std::log(rows / a.rows()) / std::log(b.rows() / a.rows());
    return a.efficiency() + f * (b.efficiency() - a.efficiency());
  }
  return points[points.size() - 1].efficiency();
}

double kernelEfficiency(const plan::Cluster &c, const plan::Instruction &inst) {
  const plan::Kernel &k = inst.kernel();
  if (k.kind() != plan::GEMM && k.kind() != plan::GROUPED_GEMM) return c.mfu();
  const double perRow = 2.0 * double(k.n()) * double(k.k()) * double(std::max<int64_t>(1, k.groups()));
  if (!(perRow > 0)) return c.mfu();
  return gemmEfficiency(c, std::max(1.0, double(inst.cost().flops()) / perRow));
}

double kernelBandwidth(const plan::Cluster &c, const plan::Instruction &inst) {
  const plan::Kernel &k = inst.kernel();
  const plan::KernelRates &r = c.kernel_rates();
  double rate = 0;
  switch (k.kind()) {
  case plan::NORM:
    rate = k.norm() == plan::RMS_NORM ? r.rms_norm_bytes_per_s() : r.layer_norm_bytes_per_s();
    break;
  case plan::ACTIVATION_FUNCTION:
    rate = k.activation() == plan::SWIGLU ? r.swiglu_bytes_per_s() : r.gelu_bytes_per_s();
    break;
  case plan::ROUTER: rate = r.router_bytes_per_s(); break;
  default: break;
  }
  return rate > 0 ? rate : c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization();
}

double kernelMemorySeconds(const plan::Cluster &c, const plan::Instruction &inst) {
  return timeFor(double(inst.cost().memory_bytes()), kernelBandwidth(c, inst),
                 "cluster memory bandwidth x utilization (or the kernel's rate)");
}

double kernelSeconds(const plan::Cluster &c, const plan::Instruction &inst) {
  return c.launch_overhead_s() +
         std::max(kernelComputeSeconds(c, inst.cost(), kernelEfficiency(c, inst)),
                  kernelMemorySeconds(c, inst));
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

uint32_t algorithmSteps(plan::CollectiveKind kind, uint32_t groupSize) {
  if (groupSize <= 1) return 0;
  switch (kind) {
  case plan::ALL_REDUCE: return 2 * (groupSize - 1);
  case plan::ALL_GATHER:
  case plan::REDUCE_SCATTER: return groupSize - 1;
  default: return 1;
  }
}

double expectedLatestArrival(const std::vector<std::pair<double, double>> &arrivals) {
  if (arrivals.empty()) return 0;
  double mean = arrivals[0].first, variance = arrivals[0].second * arrivals[0].second;
  for (size_t i = 1; i < arrivals.size(); ++i) {
    const double m2 = arrivals[i].first, v2 = arrivals[i].second * arrivals[i].second;
    const double theta = std::sqrt(variance + v2);
    if (!(theta > 0)) {
      mean = std::max(mean, m2);
      continue;
    }
    const double alpha = (mean - m2) / theta;
    const double pdf = std::exp(-0.5 * alpha * alpha) / std::sqrt(2 * M_PI);
    const double cdf = 0.5 * std::erfc(-alpha / std::sqrt(2.0)), rest = 1 - cdf;
    const double first = mean * cdf + m2 * rest + theta * pdf;
    const double second = (mean * mean + variance) * cdf + (m2 * m2 + v2) * rest +
                          (mean + m2) * theta * pdf;
    variance = std::max(0.0, second - first * first);
    mean = std::max({first, mean, m2});  // rounding never puts it below either mean
  }
  return mean;
}

double jitterWaitFactor(uint32_t n) {
  return expectedLatestArrival(std::vector<std::pair<double, double>>(n, {0.0, 1.0}));
}

double reduceFactor(plan::CollectiveKind kind, uint32_t groupSize) {
  if (groupSize <= 1 || (kind != plan::ALL_REDUCE && kind != plan::REDUCE_SCATTER)) return 0;
  return double(groupSize - 1) / double(groupSize);
}

namespace {

// `reduced` bytes are added up at the link's reduce rate, unless it has none (its bandwidth
// counts the reduction).
double overLink(const plan::Link &link, bool intra, double steps, double bytes,
                double reduced = 0) {
  const double rate = link.reduce_bytes_per_s();
  return steps * link.latency_s() +
         timeFor(bytes, link.bandwidth_bytes_per_s(),
                 intra ? "intra-node link bandwidth" : "inter-node link bandwidth") +
         (rate > 0 ? reduced / rate : 0);
}

}  // namespace

double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         const GroupSpan &span) {
  const uint32_t n = span.size;
  if (n <= 1) return 0;
  const double s = double(commBytes), steps = double(algorithmSteps(kind, n));
  const double reduced = reduceFactor(kind, n) * s;
  if (span.oneNode()) return overLink(c.intra_node(), true, steps, busFactor(kind, n) * s, reduced);
  if (kind != plan::ALL_TO_ALL)
    return overLink(c.inter_node(), false, steps, busFactor(kind, n) * s, reduced);
  const uint32_t local = std::max(1u, span.localMembers);
  const double perPeer = s / double(n);
  const double intra = local > 1 ? overLink(c.intra_node(), true, 1, double(local - 1) * perPeer) : 0;
  return std::max(intra, overLink(c.inter_node(), false, 1, double(n - local) * perPeer));
}

double collectiveSeconds(const plan::Cluster &c, plan::CollectiveKind kind, uint64_t commBytes,
                         uint32_t groupSize, bool intraNode) {
  return collectiveSeconds(c, kind, commBytes, GroupSpan{groupSize, intraNode ? groupSize : 1u});
}

double collectiveSeconds(const plan::Cluster &c, const plan::Instruction &inst,
                         const GroupSpan &span) {
  const plan::CollectiveKind kind = inst.collective().kind();
  const bool counts = inst.routed() && (kind == plan::ALL_TO_ALL || kind == plan::ALL_GATHER);
  return (counts ? collectiveSeconds(c, kind, 0, span) : 0) +
         collectiveSeconds(c, kind, inst.cost().comm_bytes(), span);
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
  route.span.size = route.groupSize;
  route.span.localMembers = 0;
  const uint32_t node = p.ranks(int(rank)).node();
  for (uint32_t member : group.ranks())
    if (member < uint32_t(p.ranks_size()) && p.ranks(int(member)).node() == node) ++route.span.localMembers;
  // The group's own flag decides when it says one node (plans name nodes per rank, and
  // both must agree; the validator checks that).
  if (route.intraNode) route.span.localMembers = route.span.size;
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
    route.span = GroupSpan{2, route.intraNode ? 2u : 1u};
  }
  return route;
}

double instructionSeconds(const plan::Plan &p, uint32_t rank, const plan::Instruction &inst) {
  if (inst.has_kernel()) return kernelSeconds(p.cluster(), inst);
  if (!inst.has_collective())
    throw std::invalid_argument("instruction \"" + inst.label() + "\" has no operation");
  const plan::Collective &c = inst.collective();
  return collectiveSeconds(p.cluster(), inst, routeCollective(p, rank, c).span);
}

}  // namespace moeplan::sim
