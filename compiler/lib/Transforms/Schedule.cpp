// plan-schedule: micro-batches in schedule order (DUAL_MICRO_BATCH's halves interleaved),
// streams, events, and one global order of all communication.
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/I64Attrs.h"
#include "moeplan/Compiler/Passes.h"
#include "moeplan/Compiler/PlanOrder.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <deque>
#include <map>
#include <unordered_map>

namespace moeplan {
#define GEN_PASS_DEF_PLANSCHEDULE
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;
using namespace moeplan::planir;

namespace moeplan {

// One step of a pipeline schedule: the forward or backward pass of a micro-batch.
struct PipelineStep {
  bool forward;
  int64_t microBatch;
};

// Each schedule's order of steps on `stage` of `stages` with `m` micro-batches.
// GPipe: every forward, then every backward (last micro-batch first). 1F1B: stages - stage
// - 1 warm-up forwards, then alternate one forward and one backward, then the remaining
// backwards (Narayanan et al. 2021, section 2.2).
std::vector<PipelineStep> pipelineSteps(desc::Schedule schedule, int64_t stages, int64_t stage,
                                        int64_t m) {
  std::vector<PipelineStep> steps;
  if (schedule == desc::GPIPE) {
    for (int64_t i = 0; i < m; ++i) steps.push_back({true, i});
    for (int64_t i = m - 1; i >= 0; --i) steps.push_back({false, i});
    return steps;
  }
  int64_t warmup = std::min(stages - stage - 1, m);
  for (int64_t i = 0; i < warmup; ++i) steps.push_back({true, i});
  for (int64_t i = 0; i < m - warmup; ++i) {
    steps.push_back({true, warmup + i});
    steps.push_back({false, i});
  }
  for (int64_t i = m - warmup; i < m; ++i) steps.push_back({false, i});
  return steps;
}

namespace {

bool persistent(BufferOp b) { return b.getKind() == BufferKind::weight; }

// Replaces the one-micro-batch template with every micro-batch in schedule order. The RECV
// of micro-batch j + 1 is issued before micro-batch j's compute so the transfer overlaps it.
// A GENERATE program's prefill and decode step are expanded each on its own side of the
// plan.decode_step, with one value map per micro-batch, so a decode step reads the caches
// its micro-batch's prefill wrote.
//
// A GENERATE plan's sampled ids cross parts: the last stage's SENDs of part k meet the
// first stage's RECVs of part k + 1, and each rank drains its own streams between parts.
// For no rank to wait on another in a circle when a SEND holds its stream until its RECV is
// posted: the last stage sends its prefill's ids after every RECV of the prefill; in a
// decode step the first and the last stage post every RECV of the step before anything else
// (the last stage's SENDs then follow all its RECVs, and the first stage's own SENDs never
// hold back the ids it waits for). Micro-batch j's ids still leave as soon as they are
// sampled, so the first stage starts its next step while the last finishes this one.
//
// A unit of `order` with two micro-batches (DUAL_MICRO_BATCH's halves) runs them interleaved:
// the template is cut after each tensor- or expert-parallel collective, and each piece is
// emitted for the first half, then for the second. The first half's collective then runs on
// its stream while the second half computes the same piece, and the other way round.
void expandMicroBatches(ProgramOp program, const std::vector<SmallVector<int64_t, 2>> &order,
                        int64_t stages) {
  const bool edgeStage = program.getStage() == 0 || program.getStage() == stages - 1;
  Block &body = program.getBody().front();
  SmallVector<SmallVector<Operation *>> parts(1);
  SmallVector<Operation *> markers;
  for (Operation &op : body) {
    if (isa<DecodeStepOp>(op)) {
      markers.push_back(&op);
      parts.emplace_back();
      continue;
    }
    if (auto b = dyn_cast<BufferOp>(op); b && persistent(b)) continue;
    parts.back().push_back(&op);
  }
  OpBuilder b(program.getContext());
  b.setInsertionPointToEnd(&body);
  std::map<int64_t, IRMapping> maps;
  // Buffers are named per micro-batch when the program runs more than one.
  const bool severalMicroBatches = order.size() > 1 || (!order.empty() && order[0].size() > 1);
  // Every template op is emitted once per micro-batch, the last micro-batch of `order` last
  // (in each part, for every op): that emission moves the template itself to the end rather
  // than cloning it, so the templates need no erasing. Its operands are templates moved for
  // the same micro-batch, or weights; the other micro-batches' clones map theirs.
  const int64_t last = order.empty() ? -1 : order.back().back();
  // One attribute per micro-batch, shared by its instructions (a template carries 0).
  I64Attrs mbAttrs(program.getContext());
  auto emit = [&](Operation *op, int64_t mb) {
    Operation *c = op;
    if (mb == last) op->moveBefore(&body, body.end());
    else c = b.clone(*op, maps[mb]);
    if (auto inst = dyn_cast<InstructionOpInterface>(c); inst && inst.getMicroBatch() != mb)
      inst.setMicroBatchAttr(mbAttrs.get(mb));
    if (auto buf = dyn_cast<BufferOp>(c); buf && buf.getSlice() && buf.getSlice()->getMicroBatch() >= 0) {
      SliceAttr s = *buf.getSlice();
      buf.setSliceAttr(SliceAttr::get(c->getContext(), s.getTensor(), s.getFullShape(), s.getSplits(), mb));
    }
    if (auto buf = dyn_cast<BufferOp>(c); buf && severalMicroBatches)
      buf.setNameAttr(b.getStringAttr(buf.getName() + ".mb" + std::to_string(mb)));
  };
  // `ops` for every micro-batch of `unit`; a pair interleaved at its collectives.
  auto emitUnit = [&](ArrayRef<Operation *> ops, ArrayRef<int64_t> unit) {
    size_t begin = 0;
    while (begin < ops.size()) {
      size_t end = begin;
      while (end < ops.size() &&
             !isa<AllReduceOp, AllGatherOp, ReduceScatterOp, AllToAllOp>(ops[end]))
        ++end;
      end = std::min(end + 1, ops.size());
      for (int64_t mb : unit)
        for (Operation *op : ops.slice(begin, end - begin)) emit(op, mb);
      begin = end;
    }
  };
  for (auto [p, tmpl] : llvm::enumerate(parts)) {
    if (p > 0) markers[p - 1]->moveBefore(&body, body.end());
    SmallVector<Operation *> recvGroup, deferred;
    for (Operation *op : tmpl) {
      if (auto r = dyn_cast<RecvOp>(op)) {
        if (!llvm::is_contained(recvGroup, r.getOutput().getDefiningOp()))
          recvGroup.push_back(r.getOutput().getDefiningOp());
        recvGroup.push_back(op);
      }
      if (auto s = dyn_cast<SendOp>(op); s && s.getFeedsNextStep() && p == 0) deferred.push_back(op);
    }
    auto isRecvGroup = [&](Operation *op) { return llvm::is_contained(recvGroup, op); };
    const bool allRecvsFirst = p > 0 && edgeStage && !markers.empty();
    auto receive = [&](ArrayRef<int64_t> unit) {
      for (int64_t mb : unit)
        for (Operation *op : recvGroup) emit(op, mb);
    };
    if (allRecvsFirst) {
      for (const auto &unit : order) receive(unit);
    } else if (!order.empty()) {
      receive(order[0]);
    }
    SmallVector<Operation *> body;
    for (Operation *op : tmpl)
      if (!isRecvGroup(op) && !llvm::is_contained(deferred, op)) body.push_back(op);
    for (size_t j = 0; j < order.size(); ++j) {
      if (!allRecvsFirst && j + 1 < order.size()) receive(order[j + 1]);
      emitUnit(body, order[j]);
    }
    for (const auto &unit : order)
      for (int64_t mb : unit)
        for (Operation *op : deferred) emit(op, mb);
  }
  if (!order.empty()) return;
  // No micro-batch: the templates go. Last to first: a decode step's ops use its prefill's.
  for (auto &tmpl : llvm::reverse(parts))
    for (Operation *op : llvm::reverse(tmpl)) op->erase();
}

// Streams by kind, and an event for every dependency that crosses streams.
void assignStreamsAndEvents(ProgramOp program) {
  std::vector<InstructionOpInterface> insts;
  size_t decodeBegin = SIZE_MAX;  // streams drain there: no event crosses it
  for (Operation &op : program.getBody().front()) {
    if (isa<DecodeStepOp>(op)) decodeBegin = insts.size();
    if (auto inst = dyn_cast<InstructionOpInterface>(op)) insts.push_back(inst);
  }
  std::vector<int64_t> stream(insts.size());
  for (size_t i = 0; i < insts.size(); ++i) {
    Operation *op = insts[i];
    stream[i] = isa<KernelOp>(op) ? kComputeStream
                : isa<SendOp, RecvOp>(op) ? kPipelineStream : kCollectiveStream;
    insts[i].setStreamIndex(stream[i]);
  }
  struct Access {
    int64_t lastWrite = -1;
    SmallVector<int64_t, 4> readsSinceWrite;  // most buffers have a few readers
  };
  DenseMap<Value, Access> access;
  access.reserve(insts.size());
  std::vector<int64_t> event(insts.size(), 0);
  int64_t events = 0;
  for (size_t i = 0; i < insts.size(); ++i) {
    if (i == decodeBegin) access.clear();
    SmallVector<Value> reads, writes;
    bufferAccesses(insts[i], reads, writes);
    std::array<int64_t, kStreams> latest{-1, -1, -1};
    auto need = [&](int64_t j) {
      if (j >= 0 && stream[j] != stream[i]) latest[stream[j]] = std::max(latest[stream[j]], j);
    };
    for (Value v : reads) need(access[v].lastWrite);
    for (Value v : writes) {
      need(access[v].lastWrite);
      for (int64_t r : access[v].readsSinceWrite) need(r);
    }
    SmallVector<int64_t> waits;
    for (int64_t j : latest) {
      if (j < 0) continue;
      if (!event[j]) {
        event[j] = ++events;
        insts[j].setRecordEvent(event[j]);
      }
      waits.push_back(event[j]);
    }
    if (!waits.empty()) insts[i].setWaitEvents(waits);
    for (Value v : reads) access[v].readsSinceWrite.push_back(i);
    for (Value v : writes) access[v] = Access{int64_t(i), {}};
  }
}

// Key of one collective instance across ranks.
struct InstanceKey {
  int64_t a, b, c;  // (group, k, -1) or (sender, receiver, k)
  bool operator==(const InstanceKey &o) const { return a == o.a && b == o.b && c == o.c; }
};
struct InstanceKeyHash {
  size_t operator()(const InstanceKey &k) const {
    return std::hash<int64_t>()(k.a * 1000003 + k.b * 10007 + k.c);
  }
};

// One global order of communication consistent with every rank's issue order: the depth of
// each collective instance in the graph whose edges are each rank's consecutive
// communication. A cycle means some ranks would wait on each other forever.
LogicalResult orderCollectives(ModuleOp module) {
  // (axis, rank) -> (group index, position in the group); axes numbered in first-seen order.
  std::map<std::string, size_t> axisIds;
  std::vector<std::unordered_map<int64_t, std::pair<int64_t, int64_t>>> member;
  auto axisId = [&](StringRef axis) {
    auto [it, fresh] = axisIds.try_emplace(axis.str(), member.size());
    if (fresh) member.emplace_back();
    return it->second;
  };
  SmallVector<GroupOp> groups(module.getOps<GroupOp>());
  for (auto [g, group] : llvm::enumerate(groups)) {
    size_t axis = axisId(group.getAxis());
    for (auto [pos, r] : llvm::enumerate(group.getRanks()))
      member[axis][r] = {int64_t(g), int64_t(pos)};
  }
  std::unordered_map<InstanceKey, int64_t, InstanceKeyHash> ids;
  std::vector<std::vector<int64_t>> succ;
  std::vector<int64_t> indegree;
  // Per program: its communication in issue order and, per rank, the instance of each.
  struct ProgramComm {
    std::vector<CommunicationOpInterface> comm;
    std::vector<std::vector<int64_t>> instances;
  };
  // What each communication instruction needs, read once rather than once per rank.
  struct CommInfo {
    size_t axis;
    bool transfer, send;  // SEND or RECV; SEND
    int64_t peer;         // SEND/RECV: position in the group
  };
  std::vector<ProgramComm> perProgram;
  for (ProgramOp program : module.getOps<ProgramOp>()) {
    std::vector<CommunicationOpInterface> comm;
    std::vector<CommInfo> info;
    for (Operation &op : program.getBody().front())
      if (auto c = dyn_cast<CommunicationOpInterface>(op)) {
        comm.push_back(c);
        int64_t peer = 0;
        if (auto s = dyn_cast<SendOp>(op)) peer = int64_t(s.getPeer());
        if (auto r = dyn_cast<RecvOp>(op)) peer = int64_t(r.getPeer());
        info.push_back({axisId(c.getAxisName()), isa<SendOp, RecvOp>(op), isa<SendOp>(op), peer});
      }
    std::vector<std::vector<int64_t>> byRank;
    for (int64_t r : program.getRanks()) {
      // How many collectives the rank issued on each group, and transfers to each peer.
      std::map<int64_t, int64_t> onGroup;
      std::map<std::pair<int64_t, int64_t>, int64_t> onPair;
      std::vector<int64_t> seq;
      seq.reserve(comm.size());
      for (size_t i = 0; i < comm.size(); ++i) {
        CommunicationOpInterface op = comm[i];
        const CommInfo &c = info[i];
        auto it = member[c.axis].find(r);
        if (it == member[c.axis].end())
          return op->emitOpError("rank ")
                 << r << " is in no group on axis " << op.getAxisName();
        auto [group, pos] = it->second;
        InstanceKey key;
        if (c.transfer) {
          GroupOp groupOp = groups[group];
          if (c.peer < 0 || c.peer >= int64_t(groupOp.getRanks().size()))
            return op->emitOpError("peer ") << c.peer << " is outside its group";
          int64_t peer = groupOp.getRanks()[c.peer];
          int64_t from = c.send ? r : peer, to = c.send ? peer : r;
          int64_t k = onPair[{from, to}]++;
          key = {from, to, k};
        } else {
          int64_t k = onGroup[group]++;
          key = {-1 - group, k, -1};
        }
        auto [idIt, fresh] = ids.try_emplace(key, int64_t(succ.size()));
        if (fresh) {
          succ.emplace_back();
          indegree.push_back(0);
        }
        // Ranks of one program mostly issue the same instances: an edge the previous rank
        // added is not added again.
        if (!seq.empty() && (succ[seq.back()].empty() || succ[seq.back()].back() != idIt->second)) {
          succ[seq.back()].push_back(idIt->second);
          ++indegree[idIt->second];
        }
        seq.push_back(idIt->second);
      }
      byRank.push_back(std::move(seq));
    }
    perProgram.push_back({std::move(comm), std::move(byRank)});
  }
  // Kahn's algorithm with depths.
  std::vector<int64_t> depth(succ.size(), 0);
  std::deque<int64_t> ready;
  for (size_t i = 0; i < succ.size(); ++i)
    if (!indegree[i]) ready.push_back(i);
  size_t done = 0;
  while (!ready.empty()) {
    int64_t n = ready.front();
    ready.pop_front();
    ++done;
    for (int64_t s : succ[n]) {
      depth[s] = std::max(depth[s], depth[n] + 1);
      if (!--indegree[s]) ready.push_back(s);
    }
  }
  if (done != succ.size())
    return module.emitError("the ranks' communication orders form a cycle: some collectives or "
                            "transfers would wait on each other forever");
  for (const ProgramComm &p : perProgram)
    for (size_t i = 0; i < p.comm.size(); ++i) {
      int64_t d = 0;
      for (const auto &seq : p.instances) d = std::max(d, depth[seq[i]]);
      CommunicationOpInterface(p.comm[i]).setSequenceIndex(d);
    }
  return success();
}

struct PlanSchedulePass : impl::PlanScheduleBase<PlanSchedulePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<DeploymentSpec> spec = deploymentOf(module);
    if (!spec) return signalPassFailure();
    const StrategySpec &s = spec->strategy;
    for (ProgramOp program : module.getOps<ProgramOp>()) {
      // Forward-only workloads: the schedule's forward steps, in its order. Under
      // DUAL_MICRO_BATCH each step runs the pair of halves 2j, 2j + 1.
      const bool dual = s.overlap == desc::DUAL_MICRO_BATCH;
      std::vector<SmallVector<int64_t, 2>> order;
      for (PipelineStep step : pipelineSteps(s.schedule, s.pp, program.getStage(), s.microBatches))
        if (step.forward) {
          if (dual) order.push_back({2 * step.microBatch, 2 * step.microBatch + 1});
          else order.push_back({step.microBatch});
        }
      expandMicroBatches(program, order, s.pp);
      assignStreamsAndEvents(program);
    }
    if (failed(orderCollectives(module))) return signalPassFailure();
  }
};

} // namespace
} // namespace moeplan
