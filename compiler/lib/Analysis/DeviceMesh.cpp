#include "moeplan/Analysis/DeviceMesh.h"

#include <algorithm>

namespace moeplan {

DeviceMesh::Grid DeviceMesh::makeGrid(const std::vector<Axis> &order, int64_t tp, int64_t ep,
                                      int64_t dp, int64_t pp) {
  Grid g;
  int64_t stride = 1;
  for (Axis a : order) {
    int64_t size = a == Axis::TP ? tp : a == Axis::EP ? ep : a == Axis::DP ? dp : pp;
    g.order.push_back(a);
    g.sizes.push_back(size);
    g.strides.push_back(stride);
    stride *= size;
  }
  return g;
}

int64_t DeviceMesh::Grid::coord(int64_t rank, Axis a) const {
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] == a) return (rank / strides[i]) % sizes[i];
  return 0;
}

DeviceMesh::DeviceMesh(const StrategySpec &s)
    : world_(s.world()), ppSize_(s.pp), expertFolds_(s.expertDp() > 0) {
  attention_ = makeGrid(s.rankOrder, s.tp, 1, s.dp, s.pp);
  if (expertFolds_) expert_ = makeGrid(s.rankOrder, s.expertTp, s.ep, s.expertDp(), s.pp);
}

MeshCoord DeviceMesh::coord(int64_t rank) const {
  MeshCoord c{attention_.coord(rank, Axis::TP), attention_.coord(rank, Axis::DP),
              attention_.coord(rank, Axis::PP), -1, -1, -1, -1};
  if (expertFolds_) {
    c.etp = expert_.coord(rank, Axis::TP);
    c.ep = expert_.coord(rank, Axis::EP);
    c.edp = expert_.coord(rank, Axis::DP);
    c.expertPp = expert_.coord(rank, Axis::PP);
  }
  return c;
}

std::vector<std::vector<int64_t>> DeviceMesh::ranksByStage() const {
  std::vector<std::vector<int64_t>> stages(ppSize_);
  for (int64_t r = 0; r < world_; ++r) stages[attention_.coord(r, Axis::PP)].push_back(r);
  return stages;
}

int64_t DeviceMesh::firstPipelineDisagreement() const {
  if (!expertFolds_) return -1;
  for (int64_t r = 0; r < world_; ++r)
    if (attention_.coord(r, Axis::PP) != expert_.coord(r, Axis::PP)) return r;
  return -1;
}

std::string formatIdRanges(const std::vector<int64_t> &ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(ids[i]);
    if (j > i) out += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

} // namespace moeplan
