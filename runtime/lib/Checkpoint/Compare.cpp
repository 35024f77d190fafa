#include "moeplan/Checkpoint/Compare.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

namespace moeplan::checkpoint {
namespace {

using Outcome = TensorComparison::Outcome;

// Elements read per tensor and side at a time (4 MB of F32).
constexpr int64_t kChunkElements = int64_t(1) << 20;

std::vector<int64_t> multiIndex(int64_t linear, const std::vector<int64_t> &shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = linear % shape[d];
    linear /= shape[d];
  }
  return index;
}

// Calls compareChunk(aValues, bValues, count, firstLinearIndex) over the tensor in chunks of
// whole rows of its first dim (a scalar is one chunk).
template <typename T, typename CompareChunk>
void forEachChunk(const SafetensorsReader &a, const SafetensorsReader &b, const TensorInfo &t,
                  DType dtype, CompareChunk compareChunk) {
  const int64_t elements = t.elements();
  if (elements == 0) return;
  const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  const int64_t rowElements = elements / rows;
  const int64_t chunkRows = std::max<int64_t>(1, kChunkElements / rowElements);
  std::vector<T> aValues, bValues;
  for (int64_t row = 0; row < rows; row += chunkRows) {
    std::vector<int64_t> begin(t.shape.size(), 0), count = t.shape;
    if (!t.shape.empty()) begin[0] = row, count[0] = std::min(chunkRows, rows - row);
    const int64_t chunkElements = (t.shape.empty() ? 1 : count[0]) * rowElements;
    aValues.resize(size_t(chunkElements)), bValues.resize(size_t(chunkElements));
    a.readBlock(t.name, dtype, t.shape, begin, count, aValues.data());
    b.readBlock(t.name, dtype, t.shape, begin, count, bValues.data());
    compareChunk(aValues.data(), bValues.data(), chunkElements, row * rowElements);
  }
}

void compareF32(const SafetensorsReader &a, const SafetensorsReader &b, const TensorInfo &t,
                const Tolerance &tolerance, TensorComparison &c) {
  int64_t maxIndex = -1;
  forEachChunk<float>(a, b, t, DType::F32,
                      [&](const float *x, const float *y, int64_t count, int64_t first) {
    for (int64_t i = 0; i < count; ++i) {
      double diff = 0;
      if (x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i])))
        diff = 0;
      else if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
        diff = std::numeric_limits<double>::infinity();
      else
        diff = std::fabs(double(x[i]) - double(y[i]));
      if (diff > c.maxAbsDiff) c.maxAbsDiff = diff, maxIndex = first + i;
      if (std::isfinite(y[i]))
        c.maxAbsReference = std::max(c.maxAbsReference, std::fabs(double(y[i])));
    }
  });
  if (maxIndex >= 0) c.maxAbsDiffIndex = multiIndex(maxIndex, t.shape);
  c.bound = tolerance.atol + tolerance.rtol * c.maxAbsReference;
  c.outcome = c.maxAbsDiff <= c.bound ? Outcome::Within : Outcome::Differs;
}

void compareI32(const SafetensorsReader &a, const SafetensorsReader &b, const TensorInfo &t,
                TensorComparison &c) {
  int64_t firstIndex = -1;
  forEachChunk<int32_t>(a, b, t, DType::I32,
                        [&](const int32_t *x, const int32_t *y, int64_t count, int64_t first) {
    for (int64_t i = 0; i < count; ++i)
      if (x[i] != y[i]) {
        if (firstIndex < 0) firstIndex = first + i;
        ++c.differingElements;
      }
  });
  if (firstIndex >= 0) c.firstDifferenceIndex = multiIndex(firstIndex, t.shape);
  c.outcome = c.differingElements == 0 ? Outcome::Within : Outcome::Differs;
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

const char *outcomeName(Outcome outcome) {
  switch (outcome) {
  case Outcome::Within: return "within";
  case Outcome::Differs: return "differs";
  case Outcome::OnlyInA: return "only-in-a";
  case Outcome::OnlyInB: return "only-in-b";
  case Outcome::DTypeDiffers: return "dtype-differs";
  case Outcome::ShapeDiffers: return "shape-differs";
  case Outcome::NotComparable: return "not-comparable";
  }
  return "";
}

std::string describe(const TensorComparison &c) {
  const std::string typeA = c.dtypeA + " " + shapeText(c.shapeA);
  switch (c.outcome) {
  case Outcome::OnlyInA: return "only in A (" + typeA + ")";
  case Outcome::OnlyInB: return "only in B (" + c.dtypeB + " " + shapeText(c.shapeB) + ")";
  case Outcome::DTypeDiffers: return "dtype " + c.dtypeA + " in A, " + c.dtypeB + " in B";
  case Outcome::ShapeDiffers:
    return c.dtypeA + " shape " + shapeText(c.shapeA) + " in A, " + shapeText(c.shapeB) + " in B";
  case Outcome::NotComparable: return typeA + " not compared (moeplan compares F32 and I32)";
  case Outcome::Within:
  case Outcome::Differs: break;
  }
  if (c.dtypeA == dtypeName(DType::I32)) {
    int64_t elements = 1;
    for (int64_t d : c.shapeA) elements *= d;
    if (c.differingElements == 0)
      return typeA + ", all " + std::to_string(elements) + " elements equal";
    return typeA + ", " + std::to_string(c.differingElements) + " of " +
           std::to_string(elements) + " elements differ, the first at " +
           shapeText(c.firstDifferenceIndex);
  }
  std::string text = typeA + ", max |a - b| " + number(c.maxAbsDiff);
  if (!c.maxAbsDiffIndex.empty()) text += " at " + shapeText(c.maxAbsDiffIndex);
  return text + (c.outcome == Outcome::Within ? " <= " : " > ") + number(c.bound) +
         " (max |B| " + number(c.maxAbsReference) + ")";
}

} // namespace

bool CompareReport::allWithin() const {
  return std::all_of(tensors.begin(), tensors.end(),
                     [](const TensorComparison &c) { return c.outcome == Outcome::Within; });
}

CompareReport compareCheckpoints(const SafetensorsReader &a, const SafetensorsReader &b,
                                 const Tolerance &tolerance) {
  CompareReport report;
  report.pathA = a.path(), report.pathB = b.path();
  report.tolerance = tolerance;
  std::set<std::string> names;
  for (const std::string &name : a.names()) names.insert(name);
  for (const std::string &name : b.names()) names.insert(name);
  for (const std::string &name : names) {
    TensorComparison c;
    c.name = name;
    const TensorInfo *ta = a.find(name), *tb = b.find(name);
    if (ta) c.dtypeA = ta->dtype, c.shapeA = ta->shape;
    if (tb) c.dtypeB = tb->dtype, c.shapeB = tb->shape;
    if (!tb)
      c.outcome = Outcome::OnlyInA;
    else if (!ta)
      c.outcome = Outcome::OnlyInB;
    else if (c.dtypeA != c.dtypeB)
      c.outcome = Outcome::DTypeDiffers;
    else if (c.shapeA != c.shapeB)
      c.outcome = Outcome::ShapeDiffers;
    else if (c.dtypeA == dtypeName(DType::F32))
      compareF32(a, b, *ta, tolerance, c);
    else if (c.dtypeA == dtypeName(DType::I32))
      compareI32(a, b, *ta, c);
    else
      c.outcome = Outcome::NotComparable;
    report.tensors.push_back(std::move(c));
  }
  return report;
}

std::string renderCompareText(const CompareReport &report) {
  std::string text;
  size_t within = 0;
  for (const TensorComparison &c : report.tensors) {
    within += c.outcome == Outcome::Within;
    text += c.name + ": " + (c.outcome == Outcome::Within ? "within" : "differs") + ": " +
            describe(c) + "\n";
  }
  const std::string total = std::to_string(report.tensors.size());
  text += report.allWithin()
              ? "verdict: within tolerance, all " + total + " tensors"
              : "verdict: different, " + std::to_string(report.tensors.size() - within) +
                    " of " + total + " tensors";
  return text + " (atol " + number(report.tolerance.atol) + ", rtol " +
         number(report.tolerance.rtol) + "; " + report.pathB + " is the reference)\n";
}

nlohmann::json compareJson(const CompareReport &report) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorComparison &c : report.tensors) {
    nlohmann::json t = {{"name", c.name}, {"outcome", outcomeName(c.outcome)}};
    if (!c.dtypeA.empty()) t["a"] = {{"dtype", c.dtypeA}, {"shape", c.shapeA}};
    if (!c.dtypeB.empty()) t["b"] = {{"dtype", c.dtypeB}, {"shape", c.shapeB}};
    bool compared = c.outcome == Outcome::Within || c.outcome == Outcome::Differs;
    if (compared && c.dtypeA == dtypeName(DType::F32)) {
      t["max_abs_diff"] =  // JSON has no infinity
          std::isfinite(c.maxAbsDiff) ? nlohmann::json(c.maxAbsDiff) : nlohmann::json(nullptr);
      t["max_abs_diff_index"] = c.maxAbsDiffIndex;
      t["max_abs_reference"] = c.maxAbsReference;
      t["bound"] = c.bound;
    } else if (compared) {
      t["differing_elements"] = c.differingElements;
      t["first_difference_index"] = c.firstDifferenceIndex;
    }
    tensors.push_back(std::move(t));
  }
  return {{"schema", "moeplan-compare"},
          {"a", report.pathA},
          {"b", report.pathB},
          {"reference", "b"},
          {"atol", report.tolerance.atol},
          {"rtol", report.tolerance.rtol},
          {"within_tolerance", report.allWithin()},
          {"tensors", std::move(tensors)}};
}

} // namespace moeplan::checkpoint
