#include "moeplan/Runtime/Placement.h"

#include "moeplan/Plan/PlanFile.h"

#include <map>
#include <set>

namespace moeplan::runtime {

PlacementCheck checkPlacement(const plan::Plan &plan, const std::vector<RankPlace> &places) {
  PlacementCheck check;
  const uint32_t world = uint32_t(plan.ranks_size());
  // Plan node -> host -> its ranks there; host -> plan nodes on it.
  std::map<uint32_t, std::map<std::string, std::vector<uint32_t>>> nodeHosts;
  std::map<std::string, std::set<uint32_t>> hostNodes;
  for (uint32_t r = 0; r < world && r < places.size(); ++r) {
    const uint32_t node = plan.ranks(int(r)).node();
    nodeHosts[node][places[r].host].push_back(r);
    hostNodes[places[r].host].insert(node);
  }
  const uint32_t perNode = plan.cluster().gpus_per_node();
  for (const auto &[node, hosts] : nodeHosts) {
    if (hosts.size() < 2) continue;
    std::string where;
    for (const auto &[host, ranks] : hosts)
      where += std::string(where.empty() ? "" : ", ") + "ranks " + planfile::formatRanks(ranks) +
               " on \"" + host + "\"";
    check.errors.push_back(
        "the plan puts ranks of node " + std::to_string(node) + " on one host, but mpirun placed " +
        where + ": their intra-node groups would cross the network; place " +
        std::to_string(perNode) + " consecutive ranks per host (a hostfile with slots=" +
        std::to_string(perNode) + " and mpirun --map-by slot, or --map-by ppr:" +
        std::to_string(perNode) + ":node)");
  }
  for (const auto &[host, nodes] : hostNodes)
    if (nodes.size() > 1)
      check.notes.push_back(std::to_string(nodes.size()) + " of the plan's nodes run on host \"" +
                            host + "\": results are those of the plan, timings are not those of "
                            "its cluster");

  // (host, device) -> the first rank using it.
  std::map<std::pair<std::string, int>, uint32_t> users;
  for (uint32_t r = 0; r < world && r < places.size(); ++r) {
    if (places[r].device() < 0) continue;
    auto [it, fresh] = users.emplace(std::make_pair(places[r].host, places[r].device()), r);
    if (!fresh) check.sharedDevices.push_back({it->second, r});
  }
  return check;
}

} // namespace moeplan::runtime
