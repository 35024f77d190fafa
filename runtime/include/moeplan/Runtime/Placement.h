// Where mpirun put the ranks, against where the plan wants them: every rank of one plan node
// must share one host (its tensor-parallel and other intra-node groups are costed, and on
// GPUs connected, as intra-node); several plan nodes may share a host (a cluster's plan run
// on one machine for testing). And which GPU each rank uses: local rank modulo the host's
// visible devices (as nccl-tests), which NCCL needs distinct within a communicator.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moeplan::runtime {

// What each rank reported at start-up (gathered over the world).
struct RankPlace {
  std::string host;
  uint32_t localRank = 0;  // among the ranks on its host, in world-rank order
  int devices = 0;         // CUDA devices it sees
  int device() const { return devices > 0 ? int(localRank % uint32_t(devices)) : -1; }
};

struct PlacementCheck {
  std::vector<std::string> errors;  // the run must not start
  std::vector<std::string> notes;   // worth saying, not wrong
  // Ranks that would share a GPU with a lower rank on the same host (first sharer, rank).
  std::vector<std::pair<uint32_t, uint32_t>> sharedDevices;
};

// places[r] for every world rank r of the plan.
PlacementCheck checkPlacement(const plan::Plan &plan, const std::vector<RankPlace> &places);

} // namespace moeplan::runtime
