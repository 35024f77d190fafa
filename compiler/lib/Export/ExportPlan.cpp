#include "moeplan/Compiler/Export.h"
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/LocalShapes.h"
#include "moeplan/Compiler/PlanOrder.h"
#include "moeplan/Plan/PlanFile.h"

#include "llvm/ADT/TypeSwitch.h"

#include <map>

using namespace mlir;
using namespace moeplan::planir;

namespace moeplan {
namespace {

const char *const kAxes[] = {"tp", "dp", "pp", "ep", "etp", "edp"};

plan::DType dtypeOf(Type t) {
  if (t.isInteger(32)) return plan::I32;
  if (t.isF32()) return plan::F32;
  if (t.isBF16()) return plan::BF16;
  if (t.isF16()) return plan::F16;
  return plan::F8;
}

plan::DType dtypeOf(desc::DType d) {
  switch (d) {
  case desc::FP32: return plan::F32;
  case desc::BF16: return plan::BF16;
  case desc::FP8: return plan::F8;
  default: return plan::F16;
  }
}

void exportHeader(const DeploymentSpec &d, const std::string &source, plan::Plan &p) {
  p.set_format(planfile::kPlanFormat);
  p.set_schema_version(planfile::kPlanSchemaVersion);
  p.set_name(d.name);
  p.set_source(source);
  const ModelSpec &m = d.model;
  plan::Model *pm = p.mutable_model();
  pm->set_layers(m.layers);
  pm->set_d_model(m.dModel);
  pm->set_heads(m.heads);
  pm->set_kv_heads(m.kvHeads);
  pm->set_head_dim(m.headDim);
  pm->set_experts(m.experts);
  pm->set_top_k(m.topK);
  pm->set_expert_hidden(m.expertHidden);
  pm->set_dense_ffn_hidden(m.denseFfnHidden);
  pm->set_moe_every_nth(m.moeEveryNth);
  pm->set_norm(m.norm == desc::RMS_NORM ? plan::RMS_NORM : plan::LAYER_NORM);
  pm->set_activation(m.activation == desc::SWIGLU ? plan::SWIGLU : plan::GELU);
  pm->set_vocab(m.vocab);
  pm->set_tie_embeddings(m.tieEmbeddings);
  pm->set_qkv_bias(m.qkvBias);
  pm->set_out_bias(m.outBias);
  pm->set_ffn_bias(m.ffnBias);
  for (int64_t layer : m.moeLayerList) pm->add_moe_layers(uint32_t(layer));
  pm->set_shared_expert_hidden(uint32_t(m.sharedExpertHidden));
  pm->set_shared_expert_gate(m.sharedExpertGate);
  pm->set_dtype(dtypeOf(m.dtype));
  pm->set_norm_epsilon(m.normEpsilon);
  pm->set_rope_theta(m.ropeTheta);
  pm->set_renormalize_gates(m.renormalizeGates);
  for (double w : d.workload.expertLoad) pm->add_expert_load(w);
  for (double r : d.workload.routingStickiness) pm->add_routing_stickiness(r);

  const ClusterSpec &c = d.cluster;
  plan::Cluster *pc = p.mutable_cluster();
  pc->set_nodes(c.nodes);
  pc->set_gpus_per_node(c.gpusPerNode);
  pc->set_peak_flops(c.peakFlops);
  pc->set_mfu(c.mfu);
  pc->set_memory_bytes(c.memoryBytes);
  pc->set_memory_bandwidth_bytes_per_s(c.memoryBandwidth);
  pc->set_memory_bandwidth_utilization(c.memoryBandwidthUtil);
  pc->mutable_intra_node()->set_bandwidth_bytes_per_s(c.intraNode.bandwidthBytesPerS);
  pc->mutable_intra_node()->set_latency_s(c.intraNode.latencyS);
  pc->mutable_inter_node()->set_bandwidth_bytes_per_s(c.interNode.bandwidthBytesPerS);
  pc->mutable_inter_node()->set_latency_s(c.interNode.latencyS);
  pc->mutable_intra_node()->set_reduce_bytes_per_s(c.intraNode.reduceBytesPerS);
  pc->mutable_inter_node()->set_reduce_bytes_per_s(c.interNode.reduceBytesPerS);
  for (const auto &[rows, share] : c.gemmEfficiency) {
    plan::GemmEfficiency *e = pc->add_gemm_efficiency();
    e->set_rows(rows);
    e->set_efficiency(share);
  }
  pc->set_launch_overhead_s(c.launchOverheadS);
  pc->set_compute_jitter(c.computeJitter);
  if (c.kernelRates.layerNorm || c.kernelRates.rmsNorm || c.kernelRates.gelu ||
      c.kernelRates.swiglu || c.kernelRates.router) {
    plan::KernelRates *k = pc->mutable_kernel_rates();
    k->set_layer_norm_bytes_per_s(c.kernelRates.layerNorm);
    k->set_rms_norm_bytes_per_s(c.kernelRates.rmsNorm);
    k->set_gelu_bytes_per_s(c.kernelRates.gelu);
    k->set_swiglu_bytes_per_s(c.kernelRates.swiglu);
    k->set_router_bytes_per_s(c.kernelRates.router);
  }

  LocalShapes l = localShapes(d);
  plan::Workload *pw = p.mutable_workload();
  const WorkloadSpec &w = d.workload;
  pw->set_phase(w.generates() ? plan::GENERATE : w.phase == desc::DECODE ? plan::DECODE : plan::PREFILL);
  pw->set_sequences(w.sequences);
  pw->set_seq_len(w.seqLenMax);
  pw->set_kv_cache_len(w.generates() ? w.cachePositions() : w.kvCacheLen);
  if (w.generates()) pw->set_new_tokens(uint32_t(w.newTokens));
  pw->set_sequences_per_micro_batch(l.sequences);
  pw->set_tokens_per_micro_batch(l.tokens);

  const StrategySpec &s = d.strategy;
  plan::Strategy *ps = p.mutable_strategy();
  ps->set_tp(s.tp);
  ps->set_pp(s.pp);
  ps->set_dp(s.dp);
  ps->set_ep(s.ep);
  ps->set_expert_tp(s.expertTp);
  ps->set_expert_dp(s.expertDp());
  ps->set_micro_batches(s.planMicroBatches());
  ps->set_capacity_factor(s.capacityFactor.value_or(0));
  ps->set_schedule(s.schedule == desc::GPIPE ? plan::GPIPE : plan::ONE_F_ONE_B);
  ps->set_rank_order(formatRankOrder(s.rankOrder));
  ps->set_capacity(l.capacity);
  if (l.dispatchGroups > 1) ps->set_dispatch_groups(uint32_t(l.dispatchGroups));
  if (s.overlap == desc::DUAL_MICRO_BATCH) ps->set_overlap(plan::DUAL_MICRO_BATCH);

  const RequirementsSpec &r = d.requirements;
  plan::Requirements *pr = p.mutable_requirements();
  if (r.maxLatencyMs) pr->set_max_latency_s(*r.maxLatencyMs / 1e3);
  if (r.minThroughputTokensPerS) pr->set_min_throughput_tokens_per_s(*r.minThroughputTokensPerS);
  if (r.maxMemoryPerGpuGb) pr->set_max_memory_per_gpu_bytes(*r.maxMemoryPerGpuGb * 1e9);
  if (r.minLoadBalance) pr->set_min_load_balance(*r.minLoadBalance);
  if (r.maxCommOverhead) pr->set_max_comm_overhead(*r.maxCommOverhead);
  if (r.minGpuUtilization) pr->set_min_gpu_utilization(*r.minGpuUtilization);
  if (d.workload.generates()) {
    if (r.maxTtftMs) pr->set_max_ttft_s(*r.maxTtftMs / 1e3);
    if (r.maxTpotMs) pr->set_max_tpot_s(*r.maxTpotMs / 1e3);
    if (r.minDecodeTokensPerS) pr->set_min_decode_tokens_per_s(*r.minDecodeTokensPerS);
  }
}

void exportKernel(KernelOp k, const DenseMap<Value, uint32_t> &bufferIndex, plan::Kernel *out) {
  out->set_kind(plan::KernelKind(static_cast<int>(k.getKind())));
  out->mutable_inputs()->Reserve(int(k.getInputs().size()));
  for (Value v : k.getInputs()) out->add_inputs(bufferIndex.lookup(v));
  out->mutable_outputs()->Reserve(int(k.getOutputs().size()));
  for (Value v : k.getOutputs()) out->add_outputs(bufferIndex.lookup(v));
  const KernelDimsAttr d = k.getDims();
  out->set_m(d.getM());
  out->set_n(d.getN());
  out->set_k(d.getK());
  out->set_groups(d.getGroups());
  out->set_inner(d.getInner());
  out->set_tokens(d.getTokens());
  out->set_experts(d.getExperts());
  out->set_top_k(d.getTopK());
  out->set_capacity(d.getCapacity());
  out->set_sequences(d.getSequences());
  out->set_seq_len(d.getSeqLen());
  out->set_kv_len(d.getKvLen());
  out->set_heads(d.getHeads());
  out->set_kv_heads(d.getKvHeads());
  out->set_head_dim(d.getHeadDim());
  out->set_vocab_begin(d.getVocabBegin());
  out->set_vocab_end(d.getVocabEnd());
  out->set_transpose_b(d.getTransposeB());
  // The plan dialect's kinds are numbered as plan.proto's (none: unspecified).
  static_assert(int(NormKind::layer_norm) == plan::LAYER_NORM && int(NormKind::rms_norm) == plan::RMS_NORM);
  static_assert(int(ActivationKind::gelu) == plan::GELU && int(ActivationKind::swiglu) == plan::SWIGLU);
  out->set_norm(plan::NormKind(static_cast<int>(d.getNorm())));
  out->set_activation(plan::ActivationKind(static_cast<int>(d.getActivation())));
  out->set_epsilon(d.getEpsilon().convertToDouble());
  out->set_rope_theta(d.getRopeTheta().convertToDouble());
  out->set_first_position(d.getFirstPosition());
  out->set_renormalize(d.getRenormalize());
  out->set_per_step(d.getPerStep());
}

LogicalResult exportCollective(CommunicationOpInterface op,
                               const DenseMap<Value, uint32_t> &bufferIndex,
                               plan::Collective *out) {
  plan::CollectiveKind kind = llvm::TypeSwitch<Operation *, plan::CollectiveKind>(op)
                                  .Case<AllReduceOp>([](auto) { return plan::ALL_REDUCE; })
                                  .Case<AllGatherOp>([](auto) { return plan::ALL_GATHER; })
                                  .Case<ReduceScatterOp>([](auto) { return plan::REDUCE_SCATTER; })
                                  .Case<AllToAllOp>([](auto) { return plan::ALL_TO_ALL; })
                                  .Case<SendOp>([](auto) { return plan::SEND; })
                                  .Case<RecvOp>([](auto) { return plan::RECV; })
                                  .Default([](auto) { return plan::COLLECTIVE_KIND_UNSPECIFIED; });
  out->set_kind(kind);
  out->set_axis(op.getAxisName().str());
  out->set_count(op.getElementCount());
  Value data;
  if (auto r = dyn_cast<RecvOp>(op.getOperation())) {
    out->set_output(bufferIndex.lookup(r.getOutput()));
    out->set_feeds_next_step(r.getFeedsNextStep());
    out->set_peer(int64_t(r.getPeer()));
    data = r.getOutput();
  } else if (auto s = dyn_cast<SendOp>(op.getOperation())) {
    out->set_input(bufferIndex.lookup(s.getInput()));
    out->set_feeds_next_step(s.getFeedsNextStep());
    out->set_peer(int64_t(s.getPeer()));
    data = s.getInput();
  } else {
    out->set_input(bufferIndex.lookup(op->getOperand(0)));
    out->set_output(bufferIndex.lookup(op->getOperand(1)));
    data = op->getOperand(0);
  }
  out->set_dtype(dtypeOf(cast<MemRefType>(data.getType()).getElementType()));
  if (auto a = dyn_cast<AllToAllOp>(op.getOperation())) {
    for (int64_t c : a.getSendCounts()) out->add_send_counts(c);
    for (int64_t c : a.getRecvCounts()) out->add_recv_counts(c);
  }
  std::optional<int64_t> seq = op.getSequenceIndex();
  if (!seq) return op->emitOpError("has no place in the collective order: run plan-schedule");
  out->set_sequence(*seq);
  return success();
}

LogicalResult exportProgram(ProgramOp program, plan::Program *out) {
  out->set_stage(program.getStage());
  out->set_first_layer(program.getFirstLayer());
  out->set_end_layer(program.getEndLayer());
  if (!program.getArenaBytes()) return program.emitOpError("is not placed: run plan-memory");
  out->set_arena_bytes(*program.getArenaBytes());
  out->set_streams(kStreams);
  // Room for every op as a buffer or an instruction: growing them one by one costs more.
  const int ops = int(program.getBody().front().getOperations().size());
  out->mutable_buffers()->Reserve(ops);
  out->mutable_instructions()->Reserve(ops);
  DenseMap<Value, uint32_t> bufferIndex;
  bufferIndex.reserve(ops);
  int64_t events = 0;
  for (Operation &op : program.getBody().front()) {
    if (isa<DecodeStepOp>(op)) {
      out->set_decode_begin(out->instructions_size());
      continue;
    }
    if (auto b = dyn_cast<BufferOp>(op)) {
      bufferIndex[b] = out->buffers_size();
      plan::Buffer *pb = out->add_buffers();
      pb->set_name(b.getName().str());
      pb->set_kind(plan::BufferKind(static_cast<int>(b.getKind())));
      auto t = cast<MemRefType>(b.getType());
      pb->set_dtype(dtypeOf(t.getElementType()));
      pb->mutable_shape()->Add(t.getShape().begin(), t.getShape().end());
      pb->set_bytes(b.getBytes());
      if (!b.getOffset() || !b.getLive()) return b.emitOpError("is not placed: run plan-memory");
      pb->set_offset(*b.getOffset());
      pb->set_live_begin((*b.getLive())[0]);
      pb->set_live_end((*b.getLive())[1]);
      if (auto s = b.getSlice()) {
        plan::TensorSlice *ps = pb->mutable_slice();
        ps->set_tensor(s->getTensor().str());
        ps->mutable_full_shape()->Add(s->getFullShape().begin(), s->getFullShape().end());
        for (SplitAttr sp : s->getSplits()) {
          plan::Split *x = ps->add_splits();
          x->set_dim(sp.getDim());
          x->set_axis(sp.getAxis().str());
          x->set_parts(sp.getParts());
        }
        ps->set_micro_batch(s->getMicroBatch());
      }
      continue;
    }
    auto inst = dyn_cast<InstructionOpInterface>(op);
    if (!inst) continue;
    plan::Instruction *pi = out->add_instructions();
    if (auto k = dyn_cast<KernelOp>(op)) exportKernel(k, bufferIndex, pi->mutable_kernel());
    else if (failed(exportCollective(cast<CommunicationOpInterface>(op), bufferIndex,
                                     pi->mutable_collective())))
      return failure();
    pi->set_stream(inst.getStreamIndex());
    if (DenseI64ArrayAttr w = inst.getWaitEvents())
      pi->mutable_wait_events()->Add(w.asArrayRef().begin(), w.asArrayRef().end());
    if (std::optional<int64_t> r = inst.getRecordEvent()) {
      pi->set_record_event(*r);
      events = std::max(events, *r);
    }
    pi->set_micro_batch(inst.getMicroBatch());
    pi->set_layer(inst.getLayerIndex());
    pi->set_label(inst.getLabelName().str());
    CostAttr cost = inst.getCostAttr();
    if (!cost) return op.emitOpError("has no cost: run plan-cost");
    pi->mutable_cost()->set_flops(cost.getFlops());
    pi->mutable_cost()->set_memory_bytes(cost.getMemoryBytes());
    pi->mutable_cost()->set_comm_bytes(cost.getCommBytes());
    pi->mutable_cost()->set_model_flops(cost.getModelFlops());
    if (CostAttr step = inst.getStepCostAttr()) {
      pi->mutable_step_cost()->set_flops(step.getFlops());
      pi->mutable_step_cost()->set_memory_bytes(step.getMemoryBytes());
      pi->mutable_step_cost()->set_model_flops(step.getModelFlops());
    }
    pi->set_routed(inst.isRouted());
  }
  out->set_events(events);
  return success();
}

} // namespace

LogicalResult exportPlan(ModuleOp module, plan::Plan &out) {
  std::optional<DeploymentSpec> spec = deploymentOf(module);
  if (!spec) return failure();
  std::string source;
  if (auto l = dyn_cast<FileLineColLoc>(module.getLoc())) source = l.getFilename().str();
  exportHeader(*spec, source, out);

  // Groups in axis order, then ranks with one membership per axis.
  std::map<std::string, std::vector<GroupOp>> byAxis;
  for (GroupOp g : module.getOps<GroupOp>()) byAxis[g.getAxis().str()].push_back(g);
  int64_t world = spec->strategy.world();
  int64_t perNode = spec->cluster.gpusPerNode;
  std::vector<std::vector<plan::GroupMembership>> membership(world);
  for (const char *axis : kAxes) {
    for (GroupOp g : byAxis[axis]) {
      uint32_t id = out.groups_size();
      plan::Group *pg = out.add_groups();
      pg->set_axis(axis);
      bool intra = true;
      for (auto [pos, r] : llvm::enumerate(g.getRanks())) {
        if (r >= world) return g.emitOpError("rank ") << r << " is outside the world of " << world;
        pg->add_ranks(r);
        intra &= r / perNode == g.getRanks()[0] / perNode;
        plan::GroupMembership m;
        m.set_axis(axis);
        m.set_group(id);
        m.set_index(pos);
        membership[r].push_back(m);
      }
      pg->set_intra_node(intra);
    }
  }
  for (int64_t r = 0; r < world; ++r) {
    plan::Rank *pr = out.add_ranks();
    pr->set_node(r / perNode);
    pr->set_local_gpu(r % perNode);
    for (const plan::GroupMembership &m : membership[r]) *pr->add_groups() = m;
  }
  for (ProgramOp program : module.getOps<ProgramOp>()) {
    uint32_t index = out.programs_size();
    if (failed(exportProgram(program, out.add_programs()))) return failure();
    for (int64_t r : program.getRanks()) {
      if (r >= world) return program.emitOpError("rank ") << r << " is outside the world";
      out.mutable_ranks(r)->set_program(index);
    }
  }
  int64_t gpus = spec->cluster.gpus();
  if (gpus > world)
    out.add_notes("GPUs " + std::to_string(world) + "-" + std::to_string(gpus - 1) +
                  " of the cluster's " + std::to_string(gpus) + " are idle: the strategy occupies " +
                  std::to_string(world));
  return success();
}

} // namespace moeplan
