// plan-memory: one arena per rank, buffer bytes reused once provably free.
#include "moeplan/Compiler/Passes.h"
#include "moeplan/Compiler/I64Attrs.h"
#include "moeplan/Compiler/PlanMemory.h"
#include "moeplan/Compiler/PlanOrder.h"

#include "mlir/IR/Builders.h"


namespace moeplan {
#define GEN_PASS_DEF_PLANMEMORY
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;
using namespace moeplan::planir;

namespace moeplan {
namespace {

int64_t align(int64_t n) { return alignedBufferBytes(n); }

// Kinds whose bytes live for the whole program: weights, caches, and the inputs and outputs
// the runtime fills before and reads after the run.
bool wholeProgram(BufferKind k) {
  return k == BufferKind::weight || k == BufferKind::kv_cache || k == BufferKind::input ||
         k == BufferKind::output;
}

struct Block {
  int64_t offset, size, buffer;
};

void planProgram(ProgramOp program) {
  ProgramOrder order(program);
  int64_t n = order.instructions.size();
  OpBuilder b(program.getContext());
  SmallVector<BufferOp> buffers(program.getBody().front().getOps<BufferOp>());
  // Uses of each buffer, in issue order (most have a few: kept inline).
  std::vector<SmallVector<int64_t, 4>> uses(buffers.size());
  for (auto [i, buf] : llvm::enumerate(buffers)) {
    for (Operation *user : buf->getUsers())
      if (auto it = order.index.find(user); it != order.index.end()) uses[i].push_back(it->second);
    llvm::sort(uses[i]);
    uses[i].erase(std::unique(uses[i].begin(), uses[i].end()), uses[i].end());
  }
  // Offsets repeat (every micro-batch reuses the same blocks): one attribute per value.
  I64Attrs offsets(program.getContext());
  int64_t top = 0;
  SmallVector<int64_t> transient;
  const DenseI64ArrayAttr wholeLive = b.getDenseI64ArrayAttr({0, std::max<int64_t>(n - 1, 0)});
  for (auto [i, buf] : llvm::enumerate(buffers)) {
    if (wholeProgram(buf.getKind()) || uses[i].empty()) {
      buf.setOffsetAttr(offsets.get(top));
      buf.setLiveAttr(wholeLive);
      top = align(top + buf.getBytes());
    } else {
      transient.push_back(i);
    }
  }
  const int64_t base = top;
  llvm::stable_sort(transient, [&](int64_t a, int64_t c) { return uses[a][0] < uses[c][0]; });
  std::vector<Block> active, busy;
  int64_t peak = base;
  for (int64_t i : transient) {
    int64_t first = uses[i][0], size = align(buffers[i].getBytes());
    // Blocks whose tenant may still be in use when this buffer is first written.
    busy.clear();
    for (const Block &blk : active)
      if (!order.allBefore(uses[blk.buffer], first)) busy.push_back(blk);
    llvm::sort(busy, [](const Block &a, const Block &c) { return a.offset < c.offset; });
    int64_t offset = base;
    for (const Block &blk : busy) {
      if (offset + size <= blk.offset) break;
      offset = std::max(offset, blk.offset + blk.size);
    }
    // A free tenant wholly covered by the new one is superseded: anything after the new
    // buffer's uses is after the old tenant's.
    llvm::erase_if(active, [&](const Block &blk) {
      return blk.offset >= offset && blk.offset + blk.size <= offset + size &&
             order.allBefore(uses[blk.buffer], first);
    });
    active.push_back({offset, size, i});
    peak = std::max(peak, offset + size);
    // Live until the first instruction every use happens before.
    int64_t end = uses[i].back() + 1;
    while (end < n && !order.allBefore(uses[i], end)) ++end;
    buffers[i].setOffsetAttr(offsets.get(offset));
    buffers[i].setLiveAttr(b.getDenseI64ArrayAttr({first, std::min(end, n) - 1}));
  }
  program.setArenaBytesAttr(b.getI64IntegerAttr(peak));
}

struct PlanMemoryPass : impl::PlanMemoryBase<PlanMemoryPass> {
  void runOnOperation() override {
    for (ProgramOp program : getOperation().getOps<ProgramOp>()) planProgram(program);
  }
};

} // namespace
} // namespace moeplan
