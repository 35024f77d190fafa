// Builders for small synthetic plans (runtime/schema/plan.proto) that exercise timing: each
// instruction carries a Cost, a stream and events, but no buffers or kernel operands, so
// these plans are for the cost model, the simulator and trace output, not for validatePlan's
// operand rules or for execution. Tests compute what they expect from the same inputs.
//
//   PlanBuilder b(/*worldSize=*/2, /*gpusPerNode=*/8);
//   b.addGroup("tp", {0, 1});
//   ProgramBuilder prog = b.addProgram({0, 1});
//   uint32_t done = prog.record(prog.kernel(flopsCost(1e12)));
//   prog.collective(plan::ALL_REDUCE, "tp", 1 << 20, kCollectiveStream, {done});
//   plan::Plan p = b.build();
#pragma once

#include "moeplan/Plan/PlanFile.h"
#include "moeplan/schema/plan.pb.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace moeplan::testing {

// The streams of plan.proto's execution model.
constexpr uint32_t kComputeStream = 0;
constexpr uint32_t kCollectiveStream = 1;
constexpr uint32_t kPipelineStream = 2;

// Round, H100-like figures; inter-node links slower than intra-node ones.
inline plan::Cluster testCluster(uint32_t nodes = 1, uint32_t gpusPerNode = 8) {
  plan::Cluster c;
  c.set_nodes(nodes);
  c.set_gpus_per_node(gpusPerNode);
  c.set_peak_flops(1e15);
  c.set_mfu(0.5);
  c.set_memory_bytes(80e9);
  c.set_memory_bandwidth_bytes_per_s(3e12);
  c.set_memory_bandwidth_utilization(0.8);
  c.mutable_intra_node()->set_bandwidth_bytes_per_s(400e9);
  c.mutable_intra_node()->set_latency_s(5e-6);
  c.mutable_inter_node()->set_bandwidth_bytes_per_s(50e9);
  c.mutable_inter_node()->set_latency_s(20e-6);
  return c;
}

inline plan::Cost makeCost(uint64_t flops, uint64_t memoryBytes, uint64_t commBytes = 0) {
  plan::Cost c;
  c.set_flops(flops);
  c.set_model_flops(flops);
  c.set_memory_bytes(memoryBytes);
  c.set_comm_bytes(commBytes);
  return c;
}
inline plan::Cost flopsCost(uint64_t flops) { return makeCost(flops, 0); }

// Appends instructions to one program in issue order and numbers its events from 1. Keeps
// Program.streams and Program.events up to date. Valid while its PlanBuilder lives.
class ProgramBuilder {
public:
  explicit ProgramBuilder(plan::Program *program) : program_(program) {}

  plan::Instruction &kernel(const plan::Cost &cost, uint32_t stream = kComputeStream,
                            const std::vector<uint32_t> &waits = {},
                            const std::string &label = "") {
    plan::Instruction &inst = append(stream, waits, label);
    inst.mutable_kernel()->set_kind(plan::GEMM);
    *inst.mutable_cost() = cost;
    return inst;
  }

  // A group collective on `axis`; commBytes is the nccl-tests S.
  plan::Instruction &collective(plan::CollectiveKind kind, const std::string &axis,
                                uint64_t commBytes, uint32_t stream = kCollectiveStream,
                                const std::vector<uint32_t> &waits = {},
                                const std::string &label = "") {
    plan::Instruction &inst = append(stream, waits, label);
    inst.mutable_collective()->set_kind(kind);
    inst.mutable_collective()->set_axis(axis);
    inst.mutable_cost()->set_comm_bytes(commBytes);
    return inst;
  }

  // SEND to / RECV from position `peer` of the rank's group on `axis`.
  plan::Instruction &send(const std::string &axis, uint32_t peer, uint64_t bytes,
                          uint32_t stream = kPipelineStream,
                          const std::vector<uint32_t> &waits = {},
                          const std::string &label = "") {
    plan::Instruction &inst = collective(plan::SEND, axis, bytes, stream, waits, label);
    inst.mutable_collective()->set_peer(peer);
    return inst;
  }
  plan::Instruction &recv(const std::string &axis, uint32_t peer, uint64_t bytes,
                          uint32_t stream = kPipelineStream,
                          const std::vector<uint32_t> &waits = {},
                          const std::string &label = "") {
    plan::Instruction &inst = collective(plan::RECV, axis, bytes, stream, waits, label);
    inst.mutable_collective()->set_peer(peer);
    return inst;
  }

  // Gives `inst` a fresh event to record on completion and returns it.
  uint32_t record(plan::Instruction &inst) {
    program_->set_events(program_->events() + 1);
    inst.set_record_event(program_->events());
    return program_->events();
  }

  plan::Program &program() { return *program_; }

private:
  plan::Program *program_;

  plan::Instruction &append(uint32_t stream, const std::vector<uint32_t> &waits,
                            const std::string &label) {
    plan::Instruction &inst = *program_->add_instructions();
    inst.set_stream(stream);
    for (uint32_t e : waits) inst.add_wait_events(e);
    inst.set_label(label);
    inst.set_layer(-1);
    program_->set_streams(std::max(program_->streams(), stream + 1));
    return inst;
  }
};

// A plan of `worldSize` ranks, rank r on node r / gpusPerNode, with one-of-everything
// defaults: degrees 1, one micro-batch, a PREFILL workload, no experts. Tests set what they
// need through plan() (model, strategy, workload).
class PlanBuilder {
public:
  PlanBuilder(uint32_t worldSize, uint32_t gpusPerNode) : gpusPerNode_(gpusPerNode) {
    plan_.set_format(planfile::kPlanFormat);
    plan_.set_schema_version(planfile::kPlanSchemaVersion);
    plan_.set_name("synthetic");
    *plan_.mutable_cluster() =
        testCluster((worldSize + gpusPerNode - 1) / gpusPerNode, gpusPerNode);
    plan::Strategy &s = *plan_.mutable_strategy();
    s.set_tp(1), s.set_pp(1), s.set_dp(1), s.set_ep(1), s.set_expert_tp(1), s.set_expert_dp(1);
    s.set_micro_batches(1);
    plan::Workload &w = *plan_.mutable_workload();
    w.set_phase(plan::PREFILL);
    w.set_sequences(1), w.set_seq_len(1);
    for (uint32_t r = 0; r < worldSize; ++r) {
      plan::Rank &rank = *plan_.add_ranks();
      rank.set_node(r / gpusPerNode);
      rank.set_local_gpu(r % gpusPerNode);
    }
  }

  // A communicator group on `axis` (position in `ranks` = rank in the group); intra_node
  // follows the node layout. Each member gets its membership, in call order.
  uint32_t addGroup(const std::string &axis, const std::vector<uint32_t> &ranks) {
    uint32_t index = uint32_t(plan_.groups_size());
    plan::Group &g = *plan_.add_groups();
    g.set_axis(axis);
    bool oneNode = true;
    for (uint32_t i = 0; i < ranks.size(); ++i) {
      g.add_ranks(ranks[i]);
      oneNode = oneNode && ranks[i] / gpusPerNode_ == ranks[0] / gpusPerNode_;
      plan::GroupMembership &m = *plan_.mutable_ranks(int(ranks[i]))->add_groups();
      m.set_axis(axis);
      m.set_group(index);
      m.set_index(i);
    }
    g.set_intra_node(oneNode);
    return index;
  }

  // A program run by `ranks`; append its instructions through the returned builder.
  ProgramBuilder addProgram(const std::vector<uint32_t> &ranks) {
    uint32_t index = uint32_t(plan_.programs_size());
    plan::Program *program = plan_.add_programs();
    program->set_stage(index);
    for (uint32_t r : ranks) plan_.mutable_ranks(int(r))->set_program(index);
    return ProgramBuilder(program);
  }

  plan::Plan &plan() { return plan_; }
  plan::Plan build() const { return plan_; }

private:
  uint32_t gpusPerNode_;
  plan::Plan plan_;
};

// GPipe inference over `stages` ranks (one per stage, gpusPerNode to a node) and
// `microBatches` micro-batches: stage s runs, per micro-batch, RECV from s - 1 on the
// pipeline stream, one kernel of `stageCost` waiting for it, SEND to s + 1 waiting for the
// kernel; the stages form one "pp" group. transferBytes = 0 with zero link latency makes the
// transfers free, so the schedule is the textbook one.
inline plan::Plan pipelinePlan(uint32_t stages, uint32_t microBatches,
                               const plan::Cost &stageCost, uint64_t transferBytes,
                               uint32_t gpusPerNode = 8) {
  PlanBuilder b(stages, gpusPerNode);
  b.plan().mutable_strategy()->set_pp(stages);
  b.plan().mutable_strategy()->set_micro_batches(microBatches);
  std::vector<uint32_t> all(stages);
  for (uint32_t s = 0; s < stages; ++s) all[s] = s;
  b.addGroup("pp", all);
  for (uint32_t s = 0; s < stages; ++s) {
    ProgramBuilder prog = b.addProgram({s});
    for (uint32_t mb = 0; mb < microBatches; ++mb) {
      std::vector<uint32_t> inputReady;
      if (s > 0) {
        plan::Instruction &recv = prog.recv("pp", s - 1, transferBytes);
        recv.set_micro_batch(mb);
        inputReady.push_back(prog.record(recv));
      }
      plan::Instruction &compute = prog.kernel(stageCost, kComputeStream, inputReady,
                                               "stage" + std::to_string(s));
      compute.set_micro_batch(mb);
      uint32_t outputReady = prog.record(compute);
      if (s + 1 < stages)
        prog.send("pp", s + 1, transferBytes, kPipelineStream, {outputReady}).set_micro_batch(mb);
    }
  }
  return b.build();
}

// A plan whose links cost nothing per call, so that zero-byte transfers are free.
inline plan::Plan withoutLinkLatency(plan::Plan p) {
  p.mutable_cluster()->mutable_intra_node()->set_latency_s(0);
  p.mutable_cluster()->mutable_inter_node()->set_latency_s(0);
  return p;
}

// ---- Plans that pass validatePlan (plan file, inspect and diff tests; the plan fuzz corpus) --

inline uint64_t dtypeBytes(plan::DType t) {
  return t == plan::F32 || t == plan::I32 ? 4 : t == plan::F8 ? 1 : 2;
}

// Appends a buffer of `shape` and returns its index; placeBuffers() sets offsets and lifetimes.
inline uint32_t addBuffer(plan::Program &prog, const std::string &name, plan::BufferKind kind,
                          plan::DType dtype, const std::vector<int64_t> &shape) {
  plan::Buffer &b = *prog.add_buffers();
  b.set_name(name);
  b.set_kind(kind);
  b.set_dtype(dtype);
  uint64_t elements = 1;
  for (int64_t d : shape) b.add_shape(d), elements *= uint64_t(d);
  b.set_bytes(elements * dtypeBytes(dtype));
  return uint32_t(prog.buffers_size() - 1);
}

// The slice of the full tensor `tensor` a buffer holds: splits as (dim, axis, parts).
struct SliceSplit {
  uint32_t dim;
  std::string axis;
  uint32_t parts;
};
inline void setSlice(plan::Buffer &b, const std::string &tensor, const std::vector<int64_t> &full,
                     const std::vector<SliceSplit> &splits = {}, int32_t microBatch = -1) {
  plan::TensorSlice &s = *b.mutable_slice();
  s.set_tensor(tensor);
  for (int64_t d : full) s.add_full_shape(d);
  for (const SliceSplit &split : splits) {
    plan::Split &out = *s.add_splits();
    out.set_dim(split.dim), out.set_axis(split.axis), out.set_parts(split.parts);
  }
  s.set_micro_batch(microBatch);
}

inline void setOperands(plan::Kernel &k, plan::KernelKind kind, const std::vector<uint32_t> &in,
                        const std::vector<uint32_t> &out) {
  k.set_kind(kind);
  k.clear_inputs(), k.clear_outputs();
  for (uint32_t b : in) k.add_inputs(b);
  for (uint32_t b : out) k.add_outputs(b);
}

// Gives every buffer the live range of its uses (weights and KV cache: the whole program) and
// lays the buffers end to end, so none share bytes; the arena is their sum.
inline void placeBuffers(plan::Program &prog) {
  const int n = prog.instructions_size();
  std::vector<int> first(size_t(prog.buffers_size()), n), last(size_t(prog.buffers_size()), -1);
  auto use = [&](uint32_t b, int i) {
    first[b] = std::min(first[b], i);
    last[b] = std::max(last[b], i);
  };
  for (int i = 0; i < n; ++i) {
    const plan::Instruction &inst = prog.instructions(i);
    if (inst.has_kernel()) {
      for (uint32_t b : inst.kernel().inputs()) use(b, i);
      for (uint32_t b : inst.kernel().outputs()) use(b, i);
    } else {
      const plan::Collective &c = inst.collective();
      if (c.kind() != plan::RECV) use(c.input(), i);
      if (c.kind() != plan::SEND) use(c.output(), i);
    }
  }
  uint64_t offset = 0;
  for (int b = 0; b < prog.buffers_size(); ++b) {
    plan::Buffer &buf = *prog.mutable_buffers(b);
    bool persistent = buf.kind() == plan::WEIGHT || buf.kind() == plan::KV_CACHE || last[b] < 0;
    buf.set_live_begin(persistent ? 0 : uint32_t(first[b]));
    buf.set_live_end(persistent ? uint32_t(n - 1) : uint32_t(last[b]));
    buf.set_offset(offset);
    offset += buf.bytes();
  }
  prog.set_arena_bytes(offset);
}

// A small plan that passes validatePlan: tp 2 x pp 2 (ep 2 over the tp ranks), 2
// micro-batches, on one node of 8 GPUs (4 idle). Per micro-batch m, stage 0 (ranks 0, 1)
// issues at 5m..5m+4: EMBEDDING (vocab-parallel), ALL_REDUCE over tp, NORM, GEMM, SEND to
// stage 1; stage 1 (ranks 2, 3): RECV, GEMM, ALL_REDUCE over tp, ALL_TO_ALL over ep, ADD.
// Buffers are F16 [4, 8] activations unless named otherwise (see placeBuffers for lifetimes):
//   stage 0: weights table [8, 8], norm [8], w1 [8, 4]; per m: tokens I32 [4] (INPUT),
//            x, y (ACTIVATION), h [4, 4] (COMM)
//   stage 1: weights w2 [4, 8]; kv [2, 8] (KV_CACHE); per m: r [4, 4] (COMM), o (ACTIVATION),
//            routed (COMM), sum (WORKSPACE)
inline plan::Plan validatedPlan() {
  constexpr uint32_t kMicroBatches = 2, kTokens = 4, kDModel = 8, kHalf = 4;
  PlanBuilder b(4, 8);
  plan::Plan &p = b.plan();
  p.set_name("validated");
  p.set_source("synthetic.textproto");
  plan::Model &m = *p.mutable_model();
  m.set_layers(2), m.set_d_model(kDModel), m.set_heads(2), m.set_kv_heads(2), m.set_head_dim(4);
  m.set_experts(4), m.set_top_k(1), m.set_expert_hidden(16), m.set_moe_every_nth(1);
  m.set_norm(plan::RMS_NORM), m.set_activation(plan::GELU), m.set_vocab(16);
  m.set_dtype(plan::F16), m.set_norm_epsilon(1e-5);
  plan::Strategy &s = *p.mutable_strategy();
  s.set_tp(2), s.set_pp(2), s.set_ep(2), s.set_micro_batches(kMicroBatches);
  s.set_capacity_factor(1.0), s.set_capacity(4), s.set_schedule(plan::GPIPE);
  s.set_rank_order("tp-ep-dp-pp");
  plan::Workload &w = *p.mutable_workload();
  w.set_sequences(2), w.set_seq_len(kTokens), w.set_sequences_per_micro_batch(1);
  w.set_tokens_per_micro_batch(kTokens);
  p.mutable_requirements()->set_max_latency_s(1.0);
  p.mutable_requirements()->set_max_memory_per_gpu_bytes(1e9);
  p.add_notes("GPUs 4-7 stay idle");

  // Memberships must come in the order tp dp pp ep etp edp: add groups axis by axis.
  b.addGroup("tp", {0, 1}), b.addGroup("tp", {2, 3});
  for (uint32_t r = 0; r < 4; ++r) b.addGroup("dp", {r});
  b.addGroup("pp", {0, 2}), b.addGroup("pp", {1, 3});
  b.addGroup("ep", {0, 1}), b.addGroup("ep", {2, 3});
  for (uint32_t r = 0; r < 4; ++r) b.addGroup("etp", {r});
  for (uint32_t r = 0; r < 4; ++r) b.addGroup("edp", {r});

  const uint64_t activation = uint64_t(kTokens) * kDModel, half = uint64_t(kTokens) * kHalf;
  auto sequence = [](uint32_t mb, uint32_t step) { return uint64_t(10 * mb + step); };

  ProgramBuilder first = b.addProgram({0, 1});
  plan::Program &p0 = first.program();
  p0.set_first_layer(0), p0.set_end_layer(1);
  uint32_t table = addBuffer(p0, "embedding", plan::WEIGHT, plan::F16, {8, kDModel});
  setSlice(*p0.mutable_buffers(int(table)), "embedding", {16, kDModel}, {{0, "tp", 2}});
  uint32_t norm = addBuffer(p0, "layers.0.norm", plan::WEIGHT, plan::F16, {kDModel});
  setSlice(*p0.mutable_buffers(int(norm)), "layers.0.norm", {kDModel});
  uint32_t w1 = addBuffer(p0, "layers.0.w1", plan::WEIGHT, plan::F16, {kDModel, kHalf});
  setSlice(*p0.mutable_buffers(int(w1)), "layers.0.w1", {kDModel, kDModel}, {{1, "tp", 2}});
  for (uint32_t mb = 0; mb < kMicroBatches; ++mb) {
    std::string suffix = ".mb" + std::to_string(mb);
    uint32_t tokens = addBuffer(p0, "tokens" + suffix, plan::INPUT, plan::I32, {kTokens});
    setSlice(*p0.mutable_buffers(int(tokens)), "tokens", {2, kTokens}, {{0, "dp", 1}},
             int32_t(mb));
    uint32_t x = addBuffer(p0, "x" + suffix, plan::ACTIVATION, plan::F16, {kTokens, kDModel});
    uint32_t y = addBuffer(p0, "y" + suffix, plan::ACTIVATION, plan::F16, {kTokens, kDModel});
    uint32_t h = addBuffer(p0, "h" + suffix, plan::COMM, plan::F16, {kTokens, kHalf});

    plan::Instruction &embed = first.kernel(makeCost(0, 3 * activation), kComputeStream, {},
                                            "embedding");
    plan::Kernel &ke = *embed.mutable_kernel();
    setOperands(ke, plan::EMBEDDING, {tokens, table}, {x});
    ke.set_m(kTokens), ke.set_n(kDModel), ke.set_vocab_begin(0), ke.set_vocab_end(8);
    uint32_t embedded = first.record(embed);
    plan::Instruction &reduce = first.collective(plan::ALL_REDUCE, "tp", 2 * activation,
                                                 kCollectiveStream, {embedded},
                                                 "embedding.all_reduce");
    plan::Collective &cr = *reduce.mutable_collective();
    cr.set_input(x), cr.set_output(x), cr.set_count(activation), cr.set_dtype(plan::F16);
    cr.set_sequence(sequence(mb, 1));
    uint32_t reduced = first.record(reduce);
    plan::Instruction &normed = first.kernel(makeCost(4 * activation, 4 * activation),
                                             kComputeStream, {reduced}, "layers.0.norm");
    plan::Kernel &kn = *normed.mutable_kernel();
    setOperands(kn, plan::NORM, {x, norm}, {y});
    kn.set_m(kTokens), kn.set_n(kDModel), kn.set_norm(plan::RMS_NORM), kn.set_epsilon(1e-5);
    plan::Instruction &gemm = first.kernel(makeCost(2 * kTokens * kDModel * kHalf, 256),
                                           kComputeStream, {}, "layers.0.w1");
    plan::Kernel &kg = *gemm.mutable_kernel();
    setOperands(kg, plan::GEMM, {y, w1}, {h});
    kg.set_m(kTokens), kg.set_k(kDModel), kg.set_n(kHalf);
    uint32_t computed = first.record(gemm);
    plan::Instruction &send = first.send("pp", 1, 2 * half, kPipelineStream, {computed},
                                         "stage0.send");
    plan::Collective &cs = *send.mutable_collective();
    cs.set_input(h), cs.set_count(half), cs.set_dtype(plan::F16), cs.set_sequence(sequence(mb, 2));
    for (int i = p0.instructions_size() - 5; i < p0.instructions_size(); ++i) {
      p0.mutable_instructions(i)->set_micro_batch(mb);
      p0.mutable_instructions(i)->set_layer(i % 5 == 0 ? -1 : 0);
    }
  }
  placeBuffers(p0);

  ProgramBuilder second = b.addProgram({2, 3});
  plan::Program &p1 = second.program();
  p1.set_first_layer(1), p1.set_end_layer(2);
  uint32_t w2 = addBuffer(p1, "layers.1.w2", plan::WEIGHT, plan::F16, {kHalf, kDModel});
  setSlice(*p1.mutable_buffers(int(w2)), "layers.1.w2", {kDModel, kDModel}, {{0, "tp", 2}});
  uint32_t kv = addBuffer(p1, "layers.1.kv", plan::KV_CACHE, plan::F16, {2, kDModel});
  setSlice(*p1.mutable_buffers(int(kv)), "layers.1.kv", {2, kDModel});
  for (uint32_t mb = 0; mb < kMicroBatches; ++mb) {
    std::string suffix = ".mb" + std::to_string(mb);
    uint32_t r = addBuffer(p1, "r" + suffix, plan::COMM, plan::F16, {kTokens, kHalf});
    uint32_t o = addBuffer(p1, "o" + suffix, plan::ACTIVATION, plan::F16, {kTokens, kDModel});
    uint32_t routed = addBuffer(p1, "routed" + suffix, plan::COMM, plan::F16, {kTokens, kDModel});
    uint32_t sum = addBuffer(p1, "sum" + suffix, plan::WORKSPACE, plan::F16, {kTokens, kDModel});

    plan::Instruction &recv = second.recv("pp", 0, 2 * half, kPipelineStream, {}, "stage1.recv");
    plan::Collective &cr = *recv.mutable_collective();
    cr.set_output(r), cr.set_count(half), cr.set_dtype(plan::F16), cr.set_sequence(sequence(mb, 2));
    uint32_t received = second.record(recv);
    plan::Instruction &gemm = second.kernel(makeCost(2 * kTokens * kHalf * kDModel, 256),
                                            kComputeStream, {received}, "layers.1.w2");
    plan::Kernel &kg = *gemm.mutable_kernel();
    setOperands(kg, plan::GEMM, {r, w2}, {o});
    kg.set_m(kTokens), kg.set_k(kHalf), kg.set_n(kDModel);
    uint32_t computed = second.record(gemm);
    plan::Instruction &reduce = second.collective(plan::ALL_REDUCE, "tp", 2 * activation,
                                                  kCollectiveStream, {computed},
                                                  "layers.1.all_reduce");
    plan::Collective &ca = *reduce.mutable_collective();
    ca.set_input(o), ca.set_output(o), ca.set_count(activation), ca.set_dtype(plan::F16);
    ca.set_sequence(sequence(mb, 3));
    plan::Instruction &exchange = second.collective(plan::ALL_TO_ALL, "ep", 2 * activation,
                                                    kCollectiveStream, {}, "layers.1.dispatch");
    plan::Collective &cx = *exchange.mutable_collective();
    cx.set_input(o), cx.set_output(routed), cx.set_dtype(plan::F16);
    for (int j = 0; j < 2; ++j)
      cx.add_send_counts(activation / 2), cx.add_recv_counts(activation / 2);
    cx.set_sequence(sequence(mb, 4));
    uint32_t exchanged = second.record(exchange);
    plan::Instruction &add = second.kernel(makeCost(activation, 6 * activation), kComputeStream,
                                           {exchanged}, "layers.1.residual");
    plan::Kernel &ka = *add.mutable_kernel();
    setOperands(ka, plan::ADD, {routed, o}, {sum});
    ka.set_n(int64_t(activation));
    for (int i = p1.instructions_size() - 5; i < p1.instructions_size(); ++i) {
      p1.mutable_instructions(i)->set_micro_batch(mb);
      p1.mutable_instructions(i)->set_layer(1);
    }
  }
  placeBuffers(p1);
  return b.build();
}

// A one-rank plan that passes validatePlan and runs one MoE block the way the compiler emits
// it: F32, 8 tokens of d_model 4, 2 experts, top-1, 2 dispatch groups of capacity 2 (4 slots
// per expert). Stage 0 issues, on the compute stream: GEMM x . router -> logits, ROUTER,
// DISPATCH, GROUPED_GEMM (the experts), COMBINE. Buffers, in order (see placeBuffers):
//   weights router [4, 2], experts [2, 4, 4]; x [8, 4]; logits [8, 2] (WORKSPACE);
//   indices, slots I32 [8, 1]; gates [8, 1]; dispatched, expert_out [2, 4, 4]; combined [8, 4]
inline plan::Plan moePlan() {
  constexpr int64_t kTokens = 8, kDModel = 4, kExperts = 2, kCapacity = 2, kGroups = 2;
  constexpr int64_t kRows = kGroups * kCapacity;
  PlanBuilder b(1, 8);
  plan::Plan &p = b.plan();
  p.set_name("moe");
  p.set_source("synthetic-moe.textproto");
  plan::Model &m = *p.mutable_model();
  m.set_layers(1), m.set_d_model(kDModel), m.set_heads(1), m.set_kv_heads(1), m.set_head_dim(4);
  m.set_experts(kExperts), m.set_top_k(1), m.set_expert_hidden(kDModel), m.set_moe_every_nth(1);
  m.set_norm(plan::RMS_NORM), m.set_activation(plan::GELU), m.set_dtype(plan::F32);
  m.set_norm_epsilon(1e-5);
  plan::Strategy &s = *p.mutable_strategy();
  s.set_capacity_factor(1.0), s.set_capacity(uint32_t(kRows));
  s.set_dispatch_groups(uint32_t(kGroups)), s.set_schedule(plan::GPIPE);
  s.set_rank_order("tp-ep-dp-pp");
  plan::Workload &w = *p.mutable_workload();
  w.set_sequences(1), w.set_seq_len(kTokens), w.set_sequences_per_micro_batch(1);
  w.set_tokens_per_micro_batch(kTokens);
  for (const char *axis : {"tp", "dp", "pp", "ep", "etp", "edp"}) b.addGroup(axis, {0});

  ProgramBuilder stage = b.addProgram({0});
  plan::Program &prog = stage.program();
  prog.set_first_layer(0), prog.set_end_layer(1);
  uint32_t router = addBuffer(prog, "layers.0.router.weight", plan::WEIGHT, plan::F32,
                              {kDModel, kExperts});
  setSlice(*prog.mutable_buffers(int(router)), "layers.0.router.weight", {kDModel, kExperts});
  uint32_t experts = addBuffer(prog, "layers.0.experts.w", plan::WEIGHT, plan::F32,
                               {kExperts, kDModel, kDModel});
  setSlice(*prog.mutable_buffers(int(experts)), "layers.0.experts.w",
           {kExperts, kDModel, kDModel});
  uint32_t x = addBuffer(prog, "x", plan::ACTIVATION, plan::F32, {kTokens, kDModel});
  uint32_t logits = addBuffer(prog, "logits", plan::WORKSPACE, plan::F32, {kTokens, kExperts});
  uint32_t indices = addBuffer(prog, "indices", plan::ACTIVATION, plan::I32, {kTokens, 1});
  uint32_t slots = addBuffer(prog, "slots", plan::ACTIVATION, plan::I32, {kTokens, 1});
  uint32_t gates = addBuffer(prog, "gates", plan::ACTIVATION, plan::F32, {kTokens, 1});
  uint32_t dispatched =
      addBuffer(prog, "dispatched", plan::ACTIVATION, plan::F32, {kExperts, kRows, kDModel});
  uint32_t expertOut =
      addBuffer(prog, "expert_out", plan::ACTIVATION, plan::F32, {kExperts, kRows, kDModel});
  uint32_t combined = addBuffer(prog, "combined", plan::ACTIVATION, plan::F32, {kTokens, kDModel});

  auto kernel = [&](const std::string &label, plan::KernelKind kind,
                    const std::vector<uint32_t> &in, const std::vector<uint32_t> &out) {
    // A nominal cost: these plans are for validation and execution, not timing.
    plan::Instruction &inst = stage.kernel(makeCost(1000, 1000), kComputeStream, {}, label);
    inst.set_layer(0);
    plan::Kernel &k = *inst.mutable_kernel();
    setOperands(k, kind, in, out);
    return &k;
  };
  plan::Kernel *k = kernel("layers.0.router.logits", plan::GEMM, {x, router}, {logits});
  k->set_m(kTokens), k->set_n(kExperts), k->set_k(kDModel);
  k = kernel("layers.0.router.topk", plan::ROUTER, {logits}, {indices, gates});
  k->set_tokens(kTokens), k->set_experts(kExperts), k->set_top_k(1);
  auto routing = [&](plan::Kernel *k) {
    k->set_tokens(kTokens), k->set_n(kDModel), k->set_experts(kExperts), k->set_top_k(1);
    k->set_capacity(kCapacity), k->set_groups(kGroups);
  };
  routing(kernel("layers.0.experts.dispatch", plan::DISPATCH, {x, indices}, {dispatched, slots}));
  k = kernel("layers.0.experts.ffn", plan::GROUPED_GEMM, {dispatched, experts}, {expertOut});
  k->set_groups(kExperts), k->set_m(kRows), k->set_n(kDModel), k->set_k(kDModel);
  routing(kernel("layers.0.experts.combine", plan::COMBINE, {expertOut, indices, slots, gates},
                 {combined}));
  placeBuffers(prog);
  return b.build();
}

// A GENERATE plan that passes validatePlan and runs: a one-layer attention model, F32,
// d_model = head_dim 4 (one head), vocab 8, rope_theta 10000; 2 sequences, a prompt of 3
// tokens, 3 new tokens (2 decode steps; each cache holds 3 + 3 - 1 = 5 positions), sampled
// greedily in the plan (tp 1: ARGMAX, then ARGMAX_MERGE over one group).
// One stage (the default; one rank): on the compute stream, no events:
//   prefill  0 EMBEDDING tokens -> x [6, 4]   1 ROPE x -> xr (position 0 on)
//            2 KV_APPEND xr -> k_cache        3 KV_APPEND x -> v_cache (position 0)
//            4 ATTENTION q = k = xr, v = x -> o   5 GEMM o . lm_head -> logits [6, 8]
//            6 ARGMAX logits (seq_len 3) -> pairs [2, 2]
//            7 ARGMAX_MERGE pairs -> step_tokens, generated (row 0)
//   decode   8 EMBEDDING step_tokens -> y [2, 4]   9 ROPE y -> yr (position 3 + step)
//            10 ATTENTION q = k = yr, v = y, caches (kv_len 3 + step) -> o2
//            11 KV_APPEND yr -> k_cache   12 KV_APPEND y -> v_cache (position 3 + step)
//            13 GEMM o2 . lm_head -> step_logits [2, 8]
//            14 ARGMAX step_logits (seq_len 1) -> step_pairs [2, 2]
//            15 ARGMAX_MERGE step_pairs -> step_tokens, generated (row 1 + step)
// Buffers: weights embedding [8, 4], lm_head [4, 8]; k_cache, v_cache [10, 4] (KV_CACHE);
// tokens I32 [6], step_tokens I32 [2] (INPUT); logits [6, 8], step_logits [2, 8], generated
// I32 [3, 2] (OUTPUT, position-major; generated's sequences split over dp); x, xr, o [6, 4], y, yr, o2 [2, 4],
// pairs, step_pairs I32 [2, 2] (ACTIVATION).
// Two stages (ranks 0, 1; pp 2): stage 0 holds the layer, stage 1 (no layers) the LM head
// and the sampling, which it sends back to stage 0 (feeds_next_step). Transfers on the
// pipeline stream, each side waiting on events:
//   stage 0  prefill 0-4 as above, 5 SEND o to 1
//            decode  6 RECV step_tokens from 1 (feeds_next_step), 7-11 as 8-12 above, 12 SEND o2 to 1
//   stage 1  prefill 0 RECV h [6, 4] from 0, 1 GEMM h . lm_head -> logits, 2 ARGMAX,
//                    3 ARGMAX_MERGE -> sampled [2] (COMM), generated, 4 SEND sampled to 0
//            decode  5 RECV h2 [2, 4] from 0, 6 GEMM -> step_logits, 7 ARGMAX,
//                    8 ARGMAX_MERGE -> sampled, generated, 9 SEND sampled to 0
inline constexpr int kGenerateDecodeBegin = 8;  // the one-stage plan's
inline plan::Plan generatePlan(uint32_t stages = 1) {
  constexpr int64_t kSequences = 2, kPrompt = 3, kNew = 3, kDModel = 4, kVocab = 8;
  constexpr int64_t kPositions = kPrompt + kNew - 1, kPromptTokens = kSequences * kPrompt;
  const bool pipelined = stages > 1;
  PlanBuilder b(pipelined ? 2 : 1, 8);
  plan::Plan &p = b.plan();
  p.set_name(pipelined ? "generate-two-stages" : "generate");
  p.set_source("synthetic-generate.textproto");
  plan::Model &m = *p.mutable_model();
  m.set_layers(1), m.set_d_model(kDModel), m.set_heads(1), m.set_kv_heads(1);
  m.set_head_dim(kDModel), m.set_vocab(kVocab), m.set_rope_theta(10000);
  m.set_norm(plan::RMS_NORM), m.set_activation(plan::GELU), m.set_dtype(plan::F32);
  m.set_norm_epsilon(1e-5);
  p.mutable_strategy()->set_pp(pipelined ? 2 : 1);
  p.mutable_strategy()->set_schedule(plan::GPIPE);
  p.mutable_strategy()->set_rank_order("tp-ep-dp-pp");
  plan::Workload &w = *p.mutable_workload();
  w.set_phase(plan::GENERATE);
  w.set_sequences(kSequences), w.set_seq_len(kPrompt), w.set_new_tokens(kNew);
  w.set_kv_cache_len(kPositions), w.set_sequences_per_micro_batch(kSequences);
  w.set_tokens_per_micro_batch(kPromptTokens);
  // Memberships come in the order tp dp pp ep etp edp.
  for (const char *axis : {"tp", "dp", "pp", "ep", "etp", "edp"}) {
    if (pipelined && std::string(axis) == "pp")
      b.addGroup(axis, {0, 1});
    else
      for (uint32_t r = 0; r < (pipelined ? 2u : 1u); ++r) b.addGroup(axis, {r});
  }

  // Stage 0 (the only one, or the first): embedding and the attention layer.
  ProgramBuilder first = b.addProgram({0});
  ProgramBuilder last = pipelined ? b.addProgram({1}) : first;
  first.program().set_first_layer(0), first.program().set_end_layer(1);
  if (pipelined) last.program().set_first_layer(1), last.program().set_end_layer(1);
  auto buffer = [&](ProgramBuilder &stage, const std::string &name, plan::BufferKind kind,
                    plan::DType dtype, const std::vector<int64_t> &shape,
                    const std::string &tensor = "", const std::vector<int64_t> &full = {},
                    const std::vector<SliceSplit> &splits = {}) {
    uint32_t i = addBuffer(stage.program(), name, kind, dtype, shape);
    if (!tensor.empty())
      setSlice(*stage.program().mutable_buffers(int(i)), tensor, full, splits,
               kind == plan::WEIGHT ? -1 : 0);
    return i;
  };
  const uint32_t table = buffer(first, "embedding", plan::WEIGHT, plan::F32, {kVocab, kDModel},
                                "embedding", {kVocab, kDModel});
  const uint32_t kCache = buffer(first, "layers.0.attention.k_cache", plan::KV_CACHE, plan::F32,
                                 {kPositions * kSequences, kDModel}, "layers.0.attention.k_cache",
                                 {kSequences, kPositions, kDModel});
  const uint32_t vCache = buffer(first, "layers.0.attention.v_cache", plan::KV_CACHE, plan::F32,
                                 {kPositions * kSequences, kDModel}, "layers.0.attention.v_cache",
                                 {kSequences, kPositions, kDModel});
  const uint32_t tokens = buffer(first, "tokens", plan::INPUT, plan::I32, {kPromptTokens},
                                 "tokens", {kSequences, kPrompt});
  const uint32_t stepTokens = buffer(first, "step_tokens", plan::INPUT, plan::I32, {kSequences},
                                     "step_tokens", {kSequences, 1});
  const uint32_t x = buffer(first, "x", plan::ACTIVATION, plan::F32, {kPromptTokens, kDModel});
  const uint32_t xr = buffer(first, "xr", plan::ACTIVATION, plan::F32, {kPromptTokens, kDModel});
  const uint32_t o = buffer(first, "o", plan::ACTIVATION, plan::F32, {kPromptTokens, kDModel});
  const uint32_t y = buffer(first, "y", plan::ACTIVATION, plan::F32, {kSequences, kDModel});
  const uint32_t yr = buffer(first, "yr", plan::ACTIVATION, plan::F32, {kSequences, kDModel});
  const uint32_t o2 = buffer(first, "o2", plan::ACTIVATION, plan::F32, {kSequences, kDModel});
  // The last stage: the LM head and the sampling (with one stage, the same program).
  const uint32_t head = buffer(last, "lm_head", plan::WEIGHT, plan::F32, {kDModel, kVocab},
                               "lm_head", {kDModel, kVocab});
  const uint32_t logits = buffer(last, "logits", plan::OUTPUT, plan::F32,
                                 {kPromptTokens, kVocab}, "logits", {kSequences, kPrompt, kVocab});
  const uint32_t stepLogits = buffer(last, "step_logits", plan::OUTPUT, plan::F32,
                                     {kSequences, kVocab}, "step_logits", {kSequences, 1, kVocab});
  const uint32_t generated = buffer(last, "generated", plan::OUTPUT, plan::I32, {kNew, kSequences},
                                    "generated", {kSequences, kNew}, {{0, "dp", 1}});
  const uint32_t pairs = buffer(last, "pairs", plan::ACTIVATION, plan::I32, {kSequences, 2});
  const uint32_t stepPairs =
      buffer(last, "step_pairs", plan::ACTIVATION, plan::I32, {kSequences, 2});
  // Where ARGMAX_MERGE's ids go: the next step's tokens, or what stage 1 sends to stage 0.
  const uint32_t sampled =
      pipelined ? buffer(last, "sampled", plan::COMM, plan::I32, {kSequences}) : stepTokens;
  const uint32_t h = pipelined ? buffer(last, "h", plan::COMM, plan::F32, {kPromptTokens, kDModel})
                               : o;
  const uint32_t h2 = pipelined ? buffer(last, "h2", plan::COMM, plan::F32, {kSequences, kDModel})
                                : o2;

  // Kernels on the compute stream; a pipelined plan orders them after transfers by events.
  auto kernel = [&](ProgramBuilder &stage, const std::string &label, plan::KernelKind kind,
                    const std::vector<uint32_t> &in, const std::vector<uint32_t> &out,
                    const std::vector<uint32_t> &waits = {}) -> plan::Kernel * {
    plan::Instruction &inst = stage.kernel(makeCost(1000, 1000), kComputeStream, waits, label);
    plan::Kernel &k = *inst.mutable_kernel();
    setOperands(k, kind, in, out);
    return &k;
  };
  auto lastRecorded = [](ProgramBuilder &stage) {
    plan::Program &prog = stage.program();
    return stage.record(*prog.mutable_instructions(prog.instructions_size() - 1));
  };
  auto transfer = [&](ProgramBuilder &stage, plan::CollectiveKind kind, uint32_t peer,
                      uint32_t buf, uint64_t count, plan::DType dtype, uint64_t sequence,
                      const std::vector<uint32_t> &waits, const std::string &label) {
    plan::Instruction &inst =
        kind == plan::SEND ? stage.send("pp", peer, count * 4, kPipelineStream, waits, label)
                           : stage.recv("pp", peer, count * 4, kPipelineStream, waits, label);
    plan::Collective &c = *inst.mutable_collective();
    if (kind == plan::SEND)
      c.set_input(buf);
    else
      c.set_output(buf);
    c.set_count(count), c.set_dtype(dtype), c.set_sequence(sequence);
    return &c;
  };
  auto embed = [&](uint32_t ids, uint32_t out, int64_t rows, const std::vector<uint32_t> &waits) {
    plan::Kernel *k = kernel(first, "embedding", plan::EMBEDDING, {ids, table}, {out}, waits);
    k->set_m(rows), k->set_n(kDModel), k->set_vocab_begin(0), k->set_vocab_end(kVocab);
  };
  auto rope = [&](uint32_t in, uint32_t out, int64_t rows, int64_t position, bool perStep) {
    plan::Kernel *k = kernel(first, "layers.0.attention.rope", plan::ROPE, {in}, {out});
    k->set_m(rows), k->set_heads(1), k->set_head_dim(kDModel), k->set_sequences(kSequences);
    k->set_first_position(position), k->set_rope_theta(10000), k->set_per_step(perStep);
  };
  auto append = [&](uint32_t in, uint32_t cache, int64_t rows, int64_t position, bool perStep) {
    plan::Kernel *k =
        kernel(first, "layers.0.attention.kv_append", plan::KV_APPEND, {in}, {cache});
    k->set_m(rows), k->set_n(kDModel), k->set_sequences(kSequences);
    k->set_first_position(position), k->set_per_step(perStep);
  };
  // Returns the event the pipelined plan's SEND of `out` waits for (0: none).
  auto attention = [&](const std::vector<uint32_t> &in, uint32_t out, int64_t seqLen,
                       int64_t kvLen, bool perStep) {
    plan::Kernel *k = kernel(first, "layers.0.attention", plan::ATTENTION, in, {out});
    k->set_sequences(kSequences), k->set_seq_len(seqLen), k->set_kv_len(kvLen);
    k->set_heads(1), k->set_kv_heads(1), k->set_head_dim(kDModel), k->set_per_step(perStep);
    return pipelined ? lastRecorded(first) : 0u;
  };
  // The last stage's part: (RECV the layer's output,) LM head, ARGMAX, ARGMAX_MERGE (writing
  // row `column` of generated, + step in the decode step), (SEND the ids to stage 0).
  auto sample = [&](uint32_t hidden, uint32_t out, uint32_t pairsBuf, int64_t seqLen,
                    int64_t column, bool perStep, uint64_t sequence) {
    const int64_t rows = kSequences * seqLen;
    std::vector<uint32_t> received;
    if (pipelined) {
      transfer(last, plan::RECV, 0, hidden, uint64_t(rows * kDModel), plan::F32, sequence,
               {}, "stage1.recv");
      received.push_back(lastRecorded(last));
    }
    plan::Kernel *k = kernel(last, "lm_head", plan::GEMM, {hidden, head}, {out}, received);
    k->set_m(rows), k->set_n(kVocab), k->set_k(kDModel);
    k = kernel(last, "sample.argmax", plan::ARGMAX, {out}, {pairsBuf});
    k->set_sequences(kSequences), k->set_seq_len(seqLen), k->set_n(kVocab);
    k->set_vocab_end(kVocab);
    k = kernel(last, "sample.merge", plan::ARGMAX_MERGE, {pairsBuf}, {sampled, generated});
    k->set_groups(1), k->set_m(kSequences), k->set_n(kNew), k->set_first_position(column);
    k->set_per_step(perStep);
    if (pipelined) {
      const uint32_t merged = lastRecorded(last);
      transfer(last, plan::SEND, 0, sampled, kSequences, plan::I32, sequence + 1, {merged},
               "sample.send")
          ->set_feeds_next_step(true);
    }
  };
  // Stage 0's SEND of the layer's output to the last stage, once the attention is done.
  auto forward = [&](uint32_t hidden, int64_t rows, uint64_t sequence, uint32_t attended) {
    if (pipelined)
      transfer(first, plan::SEND, 1, hidden, uint64_t(rows * kDModel), plan::F32, sequence,
               {attended}, "stage0.send");
  };

  embed(tokens, x, kPromptTokens, {});
  rope(x, xr, kPromptTokens, 0, false);
  append(xr, kCache, kPromptTokens, 0, false);
  append(x, vCache, kPromptTokens, 0, false);
  const uint32_t attended = attention({xr, xr, x}, o, kPrompt, kPrompt, false);
  forward(o, kPromptTokens, 0, attended);
  sample(h, logits, pairs, kPrompt, 0, false, 0);
  const int firstDecode = first.program().instructions_size();
  const int lastDecode = last.program().instructions_size();
  std::vector<uint32_t> fed;
  if (pipelined) {  // the ids stage 1 sampled last (sequence 0 of stage 0's decode step)
    transfer(first, plan::RECV, 1, stepTokens, kSequences, plan::I32, 0, {}, "step_tokens.recv")
        ->set_feeds_next_step(true);
    fed.push_back(lastRecorded(first));
  }
  embed(stepTokens, y, kSequences, fed);
  rope(y, yr, kSequences, kPrompt, true);
  const uint32_t stepAttended = attention({yr, yr, y, kCache, vCache}, o2, 1, kPrompt, true);
  append(yr, kCache, kSequences, kPrompt, true);
  append(y, vCache, kSequences, kPrompt, true);
  forward(o2, kSequences, 1, stepAttended);
  sample(h2, stepLogits, stepPairs, 1, 1, true, 1);
  first.program().set_decode_begin(uint32_t(firstDecode));
  last.program().set_decode_begin(uint32_t(lastDecode));
  // Inputs, outputs, weights and caches live through the whole program (placeBuffers gives
  // the others the range of their uses).
  for (plan::Program &prog : *p.mutable_programs()) {
    placeBuffers(prog);
    for (plan::Buffer &buf : *prog.mutable_buffers())
      if (buf.kind() == plan::INPUT || buf.kind() == plan::OUTPUT) {
        buf.set_live_begin(0);
        buf.set_live_end(uint32_t(prog.instructions_size() - 1));
      }
  }
  return b.build();
}

} // namespace moeplan::testing
