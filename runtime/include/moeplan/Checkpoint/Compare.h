// Comparing two checkpoints tensor by tensor (moeplan-compare): a run's outputs against a
// reference, or a resharded checkpoint against its source.
#pragma once

#include "moeplan/Checkpoint/Safetensors.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace moeplan::checkpoint {

struct Tolerance {
  double atol = 1e-5, rtol = 1e-4;
};

struct TensorComparison {
  enum class Outcome {
    Within,         // compared; every element within tolerance (F32) or equal (I32)
    Differs,        // compared; some element beyond tolerance (F32) or unequal (I32)
    OnlyInA,
    OnlyInB,
    DTypeDiffers,
    ShapeDiffers,
    NotComparable,  // same dtype and shape, but a dtype moeplan does not read
  };
  std::string name;
  Outcome outcome = Outcome::Within;
  std::string dtypeA, dtypeB;  // empty for a tensor the file lacks
  std::vector<int64_t> shapeA, shapeB;
  // F32: the largest |a - b| (infinite where exactly one side is NaN or the two are unequal
  // and not both finite) and the multi-index of its first occurrence (empty when a == b
  // everywhere); every |a - b| must stay within bound = atol + rtol * max|B|, the maximum
  // taken over B's finite elements.
  double maxAbsDiff = 0;
  std::vector<int64_t> maxAbsDiffIndex;
  double maxAbsReference = 0, bound = 0;
  // I32: how many elements differ, and the multi-index of the first.
  int64_t differingElements = 0;
  std::vector<int64_t> firstDifferenceIndex;
};

struct CompareReport {
  std::string pathA, pathB;
  Tolerance tolerance;
  std::vector<TensorComparison> tensors;  // every name in A or B, sorted
  bool allWithin() const;
  int exitStatus() const { return allWithin() ? 0 : 1; }
};

// B is the reference. Reads both tensors in chunks of whole rows of their first dim, so
// memory stays bounded for any tensor size. Throws CheckpointError when reading fails.
CompareReport compareCheckpoints(const SafetensorsReader &a, const SafetensorsReader &b,
                                 const Tolerance &tolerance);

// A line per tensor, then the verdict.
std::string renderCompareText(const CompareReport &report);
// {"schema": "moeplan-compare", ...}; infinite differences are null.
nlohmann::json compareJson(const CompareReport &report);

} // namespace moeplan::checkpoint
