#include "moeplan/Compiler/PlanOrder.h"

using namespace mlir;
using namespace moeplan::planir;

namespace moeplan {

void bufferAccesses(Operation *op, SmallVectorImpl<Value> &reads, SmallVectorImpl<Value> &writes) {
  if (auto k = dyn_cast<KernelOp>(op)) {
    reads.append(k.getInputs().begin(), k.getInputs().end());
    writes.append(k.getOutputs().begin(), k.getOutputs().end());
  } else if (auto s = dyn_cast<SendOp>(op)) {
    reads.push_back(s.getInput());
  } else if (auto r = dyn_cast<RecvOp>(op)) {
    writes.push_back(r.getOutput());
  } else if (isa<InstructionOpInterface>(op)) {
    reads.push_back(op->getOperand(0));
    writes.push_back(op->getOperand(1));
  }
}

ProgramOrder::ProgramOrder(ProgramOp program) {
  DenseMap<int64_t, int64_t> recorder;  // event -> instruction recording it
  std::array<int64_t, kStreams> last{-1, -1, -1};  // latest instruction on each stream
  std::array<int64_t, kStreams> drained{-1, -1, -1};  // what a plan.decode_step waited for
  for (Operation &op : program.getBody().front()) {
    if (isa<DecodeStepOp>(op)) drained = last;
    auto inst = dyn_cast<InstructionOpInterface>(op);
    if (!inst) continue;
    int64_t i = instructions.size();
    instructions.push_back(&op);
    index[&op] = i;
    int64_t s = std::clamp<int64_t>(inst.getStreamIndex(), 0, kStreams - 1);
    stream.push_back(s);
    std::array<int64_t, kStreams> c{-1, -1, -1};
    // The previous instruction on this stream, then every event waited for.
    if (last[s] >= 0) c = clock[last[s]];
    for (int t = 0; t < kStreams; ++t)
      if (drained[t] >= 0) c = max(c, clock[drained[t]]);
    last[s] = i;
    if (DenseI64ArrayAttr waits = inst.getWaitEvents())
      for (int64_t e : waits.asArrayRef())
        if (auto it = recorder.find(e); it != recorder.end())
          for (int t = 0; t < kStreams; ++t) c[t] = std::max(c[t], clock[it->second][t]);
    c[s] = i;
    clock.push_back(c);
    if (std::optional<int64_t> r = inst.getRecordEvent()) recorder[*r] = i;
  }
}

std::array<int64_t, kStreams> ProgramOrder::max(const std::array<int64_t, kStreams> &a,
                                              const std::array<int64_t, kStreams> &b) {
  std::array<int64_t, kStreams> c;
  for (int t = 0; t < kStreams; ++t) c[t] = std::max(a[t], b[t]);
  return c;
}

bool ProgramOrder::allBefore(ArrayRef<int64_t> uses, int64_t i) const {
  for (int64_t u : uses)
    if (u >= i || clock[i][stream[u]] < u) return false;
  return true;
}

} // namespace moeplan
