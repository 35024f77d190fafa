#include "moeplan/Analysis/DeviceMesh.h"

#include <algorithm>
#include <numeric>

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

int64_t DeviceMesh::Grid::size(Axis a) const {
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] == a) return sizes[i];
  return 1;
}

int64_t DeviceMesh::Grid::stride(Axis a) const {
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] == a) return strides[i];
  return 1;
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
  // Both grids give rank r the stage (r / stride) % pp with the same pp, so they agree
  // everywhere iff their pp strides are equal. Otherwise the smaller stride is the first rank
  // in stage 1 of one grid while still in stage 0 of the other.
  if (!expertFolds_ || ppSize_ == 1) return -1;
  int64_t a = attention_.stride(Axis::PP), e = expert_.stride(Axis::PP);
  return a == e ? -1 : std::min(a, e);
}

bool DeviceMesh::tensorParallelSpansNodes(int64_t gpusPerNode) const {
  const int64_t tp = attention_.size(Axis::TP), s = attention_.stride(Axis::TP);
  if (tp == 1 || gpusPerNode <= 0) return false;
  // A group is b, b + s, ..., b + (tp-1) s for each base b with TP coordinate 0; as nodes
  // are runs of consecutive GPUs, it spans nodes iff its first and last GPU do.
  const int64_t extent = (tp - 1) * s;
  if (extent >= gpusPerNode) return true;
  // Bases repeat with period s * tp, nodes with gpusPerNode: one common period decides.
  const int64_t period = std::lcm(s * tp, gpusPerNode);
  for (int64_t b = 0; b < std::min(world_, period); ++b)
    if ((b / s) % tp == 0 && b / gpusPerNode != (b + extent) / gpusPerNode) return true;
  return false;
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
