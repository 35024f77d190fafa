// Orders of a plan program shared by the passes that reason about it: which streams the
// instructions run on, which buffers they read and write, and happens-before between them.
#pragma once

#include "moeplan/Dialect/Plan/PlanDialect.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

#include <array>
#include <vector>

namespace moeplan {

constexpr int kComputeStream = 0, kCollectiveStream = 1, kPipelineStream = 2;
constexpr int kStreams = 3;

// Buffers an instruction reads and writes (a buffer both read and written is in both).
void bufferAccesses(mlir::Operation *op, llvm::SmallVectorImpl<mlir::Value> &reads,
                    llvm::SmallVectorImpl<mlir::Value> &writes);

// Happens-before over a scheduled program: clock[i][s] is the index (in `instructions`) of
// the last instruction on stream s ordered before or at instruction i, -1 for none. Every
// instruction before a plan.decode_step is ordered before every one after it.
struct ProgramOrder {
  std::vector<mlir::Operation *> instructions;  // issue order
  llvm::DenseMap<mlir::Operation *, int64_t> index;
  std::vector<std::array<int64_t, kStreams>> clock;
  std::vector<int64_t> stream;

  explicit ProgramOrder(planir::ProgramOp program);
  // Every one of `uses` (instruction indices) happens strictly before instruction `i` (an
  // instruction's own operands never share bytes).
  bool allBefore(llvm::ArrayRef<int64_t> uses, int64_t i) const;

private:
  static std::array<int64_t, kStreams> max(const std::array<int64_t, kStreams> &a,
                                           const std::array<int64_t, kStreams> &b);
};

} // namespace moeplan
