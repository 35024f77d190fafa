// i64 attributes by value, each built once. The passes give every op of a layer, stage or
// micro-batch the same few values (layer, stage, micro-batch, offsets that every micro-batch
// reuses), and the context's uniquer hashes an APInt on every IntegerAttr::get.
#pragma once

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

#include <cstdint>
#include <unordered_map>

namespace moeplan {

class I64Attrs {
public:
  explicit I64Attrs(mlir::MLIRContext *ctx) : b_(ctx) {}
  mlir::IntegerAttr get(int64_t v) {
    mlir::IntegerAttr &a = attrs_[v];
    if (!a) a = b_.getI64IntegerAttr(v);
    return a;
  }

private:
  mlir::Builder b_;
  // Not a DenseMap: its hash of an integer keeps the low bits, all zero in 256-aligned
  // offsets (plan-memory measured 1.5 G more instructions in a search with one).
  std::unordered_map<int64_t, mlir::IntegerAttr> attrs_;
};

} // namespace moeplan
