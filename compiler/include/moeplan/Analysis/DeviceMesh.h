// The two rank grids of Megatron-Core's parallel folding over one set of GPUs.
//
// Attention / dense part: tp x dp x pp. Expert part: expert_tp x ep x edp x pp. Both lay ranks
// out by the same rank order (most adjacent axis first); in the expert grid tp reads as
// expert_tp and dp as edp, and the attention grid ignores ep. Rank r runs on GPU r.
#pragma once

#include "moeplan/Description/Spec.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moeplan {

struct MeshCoord {
  int64_t tp, dp, pp;              // attention grid
  int64_t etp, ep, edp, expertPp;  // expert grid; -1 when it does not fold
};

class DeviceMesh {
public:
  // The attention grid always; the expert grid only when it folds (expertDp() > 0).
  explicit DeviceMesh(const StrategySpec &s);

  bool expertGridFolds() const { return expertFolds_; }

  int64_t world() const { return world_; }
  MeshCoord coord(int64_t rank) const;
  // Ranks of each pipeline stage in the attention grid, ascending.
  std::vector<std::vector<int64_t>> ranksByStage() const;
  // The first rank whose pipeline stage differs between the two grids (Megatron requires
  // none), or -1. Also -1 when the expert grid does not fold. O(1).
  int64_t firstPipelineDisagreement() const;
  // True when some tensor-parallel group holds GPUs of two nodes (rank r on GPU r, nodes of
  // `gpusPerNode` consecutive GPUs). Cost independent of the world size for realistic nodes.
  bool tensorParallelSpansNodes(int64_t gpusPerNode) const;

private:
  struct Grid {
    std::vector<Axis> order;
    std::vector<int64_t> sizes;    // per axis in `order`
    std::vector<int64_t> strides;  // per axis in `order`
    int64_t coord(int64_t rank, Axis a) const;
    int64_t size(Axis a) const;
    int64_t stride(Axis a) const;
  };
  static Grid makeGrid(const std::vector<Axis> &order, int64_t tp, int64_t ep, int64_t dp,
                       int64_t pp);

  int64_t world_;
  int64_t ppSize_;
  bool expertFolds_;
  Grid attention_, expert_;
};

// "0-3, 8-11": a sorted list of GPU ids as ranges.
std::string formatIdRanges(const std::vector<int64_t> &ids);

} // namespace moeplan
