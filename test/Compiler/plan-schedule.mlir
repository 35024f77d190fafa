// RUN: not moeplan-opt %s --split-input-file --plan-schedule 2>&1 | FileCheck %s

// Two micro-batches in GPipe order. Stage 1 posts the RECV of micro-batch 1 before computing
// micro-batch 0, on the pipeline stream (2); collectives run on stream 1, kernels on 0, and
// every cross-stream dependency is an event.
// CHECK-LABEL: module @small
// CHECK: plan.program @stage0
// CHECK: plan.kernel  embedding{{.*}}label = "embedding.lookup"
// CHECK-SAME: record = [[E:[0-9]+]]
// CHECK: plan.reduce_scatter {{.*}}sequence = {{[0-9]+}} : i64, stream = 1 : i64, waits = array<i64: [[E]]>
// CHECK: plan.send {{.*}}stream = 2
// CHECK: plan.kernel  embedding{{.*}}mb = 1
// CHECK: plan.program @stage1
// CHECK: plan.recv %pipeline_recv_mb0 {{.*}}record = [[R0:[0-9]+]]{{.*}}stream = 2
// CHECK: plan.recv %pipeline_recv_mb1 {{.*}}mb = 1 : i64{{.*}}stream = 2
// CHECK: plan.kernel  norm(%pipeline_recv_mb0{{.*}}waits = array<i64: [[R0]]>
// CHECK: plan.kernel  norm(%pipeline_recv_mb1{{.*}}mb = 1
#loc = loc("small.textproto":5:1)
#loc1 = loc("small.textproto":6:3)
#loc2 = loc("small.textproto":6:49)
#loc3 = loc("small.textproto":6:78)
#loc4 = loc("small.textproto":6:35)
#loc5 = loc("small.textproto":6:26)
#loc6 = loc("small.textproto":6:9)
#loc7 = loc("small.textproto":5:20)
#loc8 = loc("small.textproto":7:3)
#loc9 = loc("small.textproto":7:16)
#loc10 = loc("small.textproto":7:40)
#loc11 = loc("small.textproto":5:11)
#loc12 = loc("small.textproto":2:1)
#loc13 = loc("small.textproto":4:9)
#loc14 = loc("small.textproto":2:19)
#loc15 = loc("small.textproto":3:55)
#loc16 = loc("small.textproto":4:41)
#loc17 = loc("small.textproto":3:9)
#loc18 = loc("small.textproto":2:63)
#loc19 = loc("small.textproto":2:39)
#loc20 = loc("small.textproto":2:30)
#loc21 = loc("small.textproto":2:51)
#loc22 = loc("small.textproto":2:9)
#loc23 = loc("small.textproto":3:27)
#loc24 = loc("small.textproto":3:40)
#loc25 = loc("small.textproto":3:76)
#loc26 = loc("small.textproto":2:74)
#loc27 = loc("small.textproto":4:26)
#loc28 = loc("small.textproto":1:1)
#loc29 = loc("small.textproto":9:1)
#loc30 = loc("small.textproto":9:66)
#loc31 = loc("small.textproto":9:24)
#loc32 = loc("small.textproto":9:30)
#loc33 = loc("small.textproto":9:36)
#loc34 = loc("small.textproto":9:49)
#loc35 = loc("small.textproto":9:18)
#loc36 = loc("small.textproto":9:85)
#loc37 = loc("small.textproto":9:12)
#loc38 = loc("small.textproto":8:1)
#loc39 = loc("small.textproto":8:36)
#loc40 = loc("small.textproto":8:25)
#loc41 = loc("small.textproto":8:12)
module @small attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 2 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {phase = "PREFILL", seq_len = 4 : i64, sequences = 2 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.phase = #loc39, workload.seq_len = #loc40, workload.sequences = #loc41}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">} {
  plan.group @tp_0 "tp" [0, 1]
  plan.group @tp_1 "tp" [2, 3]
  plan.group @dp_0 "dp" [0]
  plan.group @dp_1 "dp" [1]
  plan.group @dp_2 "dp" [2]
  plan.group @dp_3 "dp" [3]
  plan.group @pp_0 "pp" [0, 2]
  plan.group @pp_1 "pp" [1, 3]
  plan.group @ep_0 "ep" [0, 1]
  plan.group @ep_1 "ep" [2, 3]
  plan.group @etp_0 "etp" [0]
  plan.group @etp_1 "etp" [1]
  plan.group @etp_2 "etp" [2]
  plan.group @etp_3 "etp" [3]
  plan.group @edp_0 "edp" [0]
  plan.group @edp_1 "edp" [1]
  plan.group @edp_2 "edp" [2]
  plan.group @edp_3 "edp" [3]
  plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] {
    %embedding_weight = plan.buffer  weight "embedding.weight" {slice = #plan.slice<"embedding.weight"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_norm1_weight = plan.buffer  weight "layers.0.norm1.weight" {slice = #plan.slice<"layers.0.norm1.weight"[8]>} : memref<8xf32>
    %layers_0_attention_wq = plan.buffer  weight "layers.0.attention.wq" {slice = #plan.slice<"layers.0.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wk = plan.buffer  weight "layers.0.attention.wk" {slice = #plan.slice<"layers.0.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wv = plan.buffer  weight "layers.0.attention.wv" {slice = #plan.slice<"layers.0.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wo = plan.buffer  weight "layers.0.attention.wo" {slice = #plan.slice<"layers.0.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_0_norm2_weight = plan.buffer  weight "layers.0.norm2.weight" {slice = #plan.slice<"layers.0.norm2.weight"[8]>} : memref<8xf32>
    %layers_0_router_weight = plan.buffer  weight "layers.0.router.weight" {slice = #plan.slice<"layers.0.router.weight"[8, 4]>} : memref<8x4xf32>
    %layers_0_experts_w_up = plan.buffer  weight "layers.0.experts.w_up" {slice = #plan.slice<"layers.0.experts.w_up"[4, 8, 16] splits[<0 over "ep" parts 2>, <2 over "etp" parts 1>]>} : memref<2x8x16xf32>
    %layers_0_experts_w_down = plan.buffer  weight "layers.0.experts.w_down" {slice = #plan.slice<"layers.0.experts.w_down"[4, 16, 8] splits[<0 over "ep" parts 2>, <1 over "etp" parts 1>]>} : memref<2x16x8xf32>
    %tokens = plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[2, 4] splits[<0 over "dp" parts 1>] mb 0>} : memref<4xi32>
    %embedding_out = plan.buffer  activation "embedding.out" : memref<4x8xf32>
    plan.kernel  embedding(%tokens, %embedding_weight) -> (%embedding_out) <m = 4, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup"} : (memref<4xi32>, memref<8x8xf32>) -> memref<4x8xf32>
    %head_tp_reduce_scatter = plan.buffer  activation "head.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %embedding_out -> %head_tp_reduce_scatter on "tp" count 16 {label = "head.tp.reduce_scatter", stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_0_norm1_out = plan.buffer  activation "layers.0.norm1.out" : memref<2x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter, %layers_0_norm1_weight) -> (%layers_0_norm1_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_0_tp_all_gather = plan.buffer  activation "layers.0.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_0_norm1_out -> %layers_0_tp_all_gather on "tp" count 16 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_0_attention_q = plan.buffer  activation "layers.0.attention.q" : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wq) -> (%layers_0_attention_q) <k = 8, m = 4, n = 4> {label = "layers.0.attention.q", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_k = plan.buffer  kv_cache "layers.0.attention.k" {slice = #plan.slice<"layers.0.attention.k_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wk) -> (%layers_0_attention_k) <k = 8, m = 4, n = 4> {label = "layers.0.attention.k", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_v = plan.buffer  kv_cache "layers.0.attention.v" {slice = #plan.slice<"layers.0.attention.v_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wv) -> (%layers_0_attention_v) <k = 8, m = 4, n = 4> {label = "layers.0.attention.v", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_context = plan.buffer  activation "layers.0.attention.context" : memref<4x4xf32>
    plan.kernel  attention(%layers_0_attention_q, %layers_0_attention_k, %layers_0_attention_v) -> (%layers_0_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, seq_len = 4, sequences = 1> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<4x4xf32>, memref<4x4xf32>, memref<4x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_o = plan.buffer  activation "layers.0.attention.o" : memref<4x8xf32>
    plan.kernel  gemm(%layers_0_attention_context, %layers_0_attention_wo) -> (%layers_0_attention_o) <k = 4, m = 4, n = 8> {label = "layers.0.attention.o", layer = 0 : i64} : (memref<4x4xf32>, memref<4x8xf32>) -> memref<4x8xf32>
    %layers_0_tp_reduce_scatter = plan.buffer  activation "layers.0.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_0_attention_o -> %layers_0_tp_reduce_scatter on "tp" count 16 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_0_residual_sum = plan.buffer  activation "layers.0.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter, %layers_0_tp_reduce_scatter) -> (%layers_0_residual_sum) <n = 16> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_norm2_out = plan.buffer  activation "layers.0.norm2.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_0_residual_sum, %layers_0_norm2_weight) -> (%layers_0_norm2_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_0_router_logits = plan.buffer  workspace "layers.0.router.logits" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_norm2_out, %layers_0_router_weight) -> (%layers_0_router_logits) <k = 8, m = 2, n = 4> {label = "layers.0.router.logits", layer = 0 : i64} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_router_indices = plan.buffer  activation "layers.0.router.indices" : memref<2x1xi32>
    %layers_0_router_gates = plan.buffer  activation "layers.0.router.gates" : memref<2x1xf32>
    plan.kernel  router(%layers_0_router_logits) -> (%layers_0_router_indices, %layers_0_router_gates) <experts = 4, tokens = 2, top_k = 1> {label = "layers.0.router.topk", layer = 0 : i64} : (memref<2x4xf32>) -> (memref<2x1xi32>, memref<2x1xf32>)
    %layers_0_experts_dispatched = plan.buffer  activation "layers.0.experts.dispatched" : memref<4x1x8xf32>
    %layers_0_experts_slots = plan.buffer  activation "layers.0.experts.slots" : memref<2x1xi32>
    plan.kernel  dispatch(%layers_0_norm2_out, %layers_0_router_indices) -> (%layers_0_experts_dispatched, %layers_0_experts_slots) <capacity = 1, experts = 4, n = 8, tokens = 2, top_k = 1> {label = "layers.0.experts.dispatch", layer = 0 : i64} : (memref<2x8xf32>, memref<2x1xi32>) -> (memref<4x1x8xf32>, memref<2x1xi32>)
    %layers_0_ep_all_to_all_recv = plan.buffer  activation "layers.0.ep.all_to_all.recv" : memref<2x2x1x8xf32>
    plan.all_to_all %layers_0_experts_dispatched -> %layers_0_ep_all_to_all_recv on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<4x1x8xf32> -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_regroup = plan.buffer  activation "layers.0.ep.all_to_all.regroup" : memref<2x2x8xf32>
    plan.kernel  transpose(%layers_0_ep_all_to_all_recv) -> (%layers_0_ep_all_to_all_regroup) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x1x8xf32>) -> memref<2x2x8xf32>
    %layers_0_experts_up = plan.buffer  activation "layers.0.experts.up" : memref<2x2x16xf32>
    plan.kernel  grouped_gemm(%layers_0_ep_all_to_all_regroup, %layers_0_experts_w_up) -> (%layers_0_experts_up) <groups = 2, k = 8, m = 2, n = 16> {label = "layers.0.experts.up", layer = 0 : i64} : (memref<2x2x8xf32>, memref<2x8x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_act = plan.buffer  activation "layers.0.experts.act" : memref<2x2x16xf32>
    plan.kernel  activation(%layers_0_experts_up) -> (%layers_0_experts_act) <activation = gelu, m = 4, n = 16> {label = "layers.0.experts.act", layer = 0 : i64} : (memref<2x2x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_down = plan.buffer  activation "layers.0.experts.down" : memref<2x2x8xf32>
    plan.kernel  grouped_gemm(%layers_0_experts_act, %layers_0_experts_w_down) -> (%layers_0_experts_down) <groups = 2, k = 16, m = 2, n = 8> {label = "layers.0.experts.down", layer = 0 : i64} : (memref<2x2x16xf32>, memref<2x16x8xf32>) -> memref<2x2x8xf32>
    %layers_0_ep_all_to_all_regroup_0 = plan.buffer  activation "layers.0.ep.all_to_all.regroup" : memref<2x2x1x8xf32>
    plan.kernel  transpose(%layers_0_experts_down) -> (%layers_0_ep_all_to_all_regroup_0) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x8xf32>) -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_recv_1 = plan.buffer  activation "layers.0.ep.all_to_all.recv" : memref<4x1x8xf32>
    plan.all_to_all %layers_0_ep_all_to_all_regroup_0 -> %layers_0_ep_all_to_all_recv_1 on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<2x2x1x8xf32> -> memref<4x1x8xf32>
    %layers_0_experts_combined = plan.buffer  activation "layers.0.experts.combined" : memref<2x8xf32>
    plan.kernel  combine(%layers_0_ep_all_to_all_recv_1, %layers_0_router_indices, %layers_0_experts_slots, %layers_0_router_gates) -> (%layers_0_experts_combined) <capacity = 1, experts = 4, n = 8, tokens = 2, top_k = 1> {label = "layers.0.experts.combine", layer = 0 : i64} : (memref<4x1x8xf32>, memref<2x1xi32>, memref<2x1xi32>, memref<2x1xf32>) -> memref<2x8xf32>
    %layers_0_residual_sum_2 = plan.buffer  activation "layers.0.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%layers_0_residual_sum, %layers_0_experts_combined) -> (%layers_0_residual_sum_2) <n = 16> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    plan.send %layers_0_residual_sum_2 to 1 on "pp" count 16 {label = "pipeline.send", stream = 2 : i64} : memref<2x8xf32>
  }
  plan.program @stage1 stage 1 layers[1, 2) ranks [2, 3] {
    %layers_1_norm1_weight = plan.buffer  weight "layers.1.norm1.weight" {slice = #plan.slice<"layers.1.norm1.weight"[8]>} : memref<8xf32>
    %layers_1_attention_wq = plan.buffer  weight "layers.1.attention.wq" {slice = #plan.slice<"layers.1.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wk = plan.buffer  weight "layers.1.attention.wk" {slice = #plan.slice<"layers.1.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wv = plan.buffer  weight "layers.1.attention.wv" {slice = #plan.slice<"layers.1.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wo = plan.buffer  weight "layers.1.attention.wo" {slice = #plan.slice<"layers.1.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_1_norm2_weight = plan.buffer  weight "layers.1.norm2.weight" {slice = #plan.slice<"layers.1.norm2.weight"[8]>} : memref<8xf32>
    %layers_1_ffn_w_up = plan.buffer  weight "layers.1.ffn.w_up" {slice = #plan.slice<"layers.1.ffn.w_up"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_1_ffn_w_down = plan.buffer  weight "layers.1.ffn.w_down" {slice = #plan.slice<"layers.1.ffn.w_down"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %final_norm_weight = plan.buffer  weight "final_norm.weight" {slice = #plan.slice<"final_norm.weight"[8]>} : memref<8xf32>
    %lm_head_weight = plan.buffer  weight "lm_head.weight" {slice = #plan.slice<"lm_head.weight"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %pipeline_recv = plan.buffer  comm "pipeline.recv" : memref<2x8xf32>
    plan.recv %pipeline_recv from 0 on "pp" count 16 {label = "pipeline.recv", stream = 2 : i64} : memref<2x8xf32>
    %layers_1_norm1_out = plan.buffer  activation "layers.1.norm1.out" : memref<2x8xf32>
    plan.kernel  norm(%pipeline_recv, %layers_1_norm1_weight) -> (%layers_1_norm1_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.1.norm1.norm", layer = 1 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_1_tp_all_gather = plan.buffer  activation "layers.1.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_1_norm1_out -> %layers_1_tp_all_gather on "tp" count 16 {label = "layers.1.tp.all_gather", layer = 1 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_1_attention_q = plan.buffer  activation "layers.1.attention.q" : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wq) -> (%layers_1_attention_q) <k = 8, m = 4, n = 4> {label = "layers.1.attention.q", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_k = plan.buffer  kv_cache "layers.1.attention.k" {slice = #plan.slice<"layers.1.attention.k_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wk) -> (%layers_1_attention_k) <k = 8, m = 4, n = 4> {label = "layers.1.attention.k", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_v = plan.buffer  kv_cache "layers.1.attention.v" {slice = #plan.slice<"layers.1.attention.v_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wv) -> (%layers_1_attention_v) <k = 8, m = 4, n = 4> {label = "layers.1.attention.v", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_context = plan.buffer  activation "layers.1.attention.context" : memref<4x4xf32>
    plan.kernel  attention(%layers_1_attention_q, %layers_1_attention_k, %layers_1_attention_v) -> (%layers_1_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, seq_len = 4, sequences = 1> {label = "layers.1.attention.core", layer = 1 : i64} : (memref<4x4xf32>, memref<4x4xf32>, memref<4x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_o = plan.buffer  activation "layers.1.attention.o" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_attention_context, %layers_1_attention_wo) -> (%layers_1_attention_o) <k = 4, m = 4, n = 8> {label = "layers.1.attention.o", layer = 1 : i64} : (memref<4x4xf32>, memref<4x8xf32>) -> memref<4x8xf32>
    %layers_1_tp_reduce_scatter = plan.buffer  activation "layers.1.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_1_attention_o -> %layers_1_tp_reduce_scatter on "tp" count 16 {label = "layers.1.tp.reduce_scatter", layer = 1 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_1_residual_sum = plan.buffer  activation "layers.1.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%pipeline_recv, %layers_1_tp_reduce_scatter) -> (%layers_1_residual_sum) <n = 16> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %layers_1_norm2_out = plan.buffer  activation "layers.1.norm2.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_1_residual_sum, %layers_1_norm2_weight) -> (%layers_1_norm2_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.1.norm2.norm", layer = 1 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_1_tp_all_gather_0 = plan.buffer  activation "layers.1.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_1_norm2_out -> %layers_1_tp_all_gather_0 on "tp" count 16 {label = "layers.1.tp.all_gather", layer = 1 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_1_ffn_up = plan.buffer  activation "layers.1.ffn.up" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather_0, %layers_1_ffn_w_up) -> (%layers_1_ffn_up) <k = 8, m = 4, n = 8> {label = "layers.1.ffn.up", layer = 1 : i64} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %layers_1_ffn_act = plan.buffer  activation "layers.1.ffn.act" : memref<4x8xf32>
    plan.kernel  activation(%layers_1_ffn_up) -> (%layers_1_ffn_act) <activation = gelu, m = 4, n = 8> {label = "layers.1.ffn.act", layer = 1 : i64} : (memref<4x8xf32>) -> memref<4x8xf32>
    %layers_1_ffn_down = plan.buffer  activation "layers.1.ffn.down" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_ffn_act, %layers_1_ffn_w_down) -> (%layers_1_ffn_down) <k = 8, m = 4, n = 8> {label = "layers.1.ffn.down", layer = 1 : i64} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %layers_1_tp_reduce_scatter_1 = plan.buffer  activation "layers.1.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_1_ffn_down -> %layers_1_tp_reduce_scatter_1 on "tp" count 16 {label = "layers.1.tp.reduce_scatter", layer = 1 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_1_residual_sum_2 = plan.buffer  activation "layers.1.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%layers_1_residual_sum, %layers_1_tp_reduce_scatter_1) -> (%layers_1_residual_sum_2) <n = 16> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %final_norm_out = plan.buffer  activation "final_norm.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_1_residual_sum_2, %final_norm_weight) -> (%final_norm_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "final_norm.norm"} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %head_tp_all_gather = plan.buffer  activation "head.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %final_norm_out -> %head_tp_all_gather on "tp" count 16 {label = "head.tp.all_gather", stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %lm_head_logits = plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[2, 4, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x8xf32>
    plan.kernel  gemm(%head_tp_all_gather, %lm_head_weight) -> (%lm_head_logits) <k = 8, m = 4, n = 8> {label = "lm_head.logits"} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
  }
}
// -----
// Three ranks whose collectives on three groups would wait on each other in a ring.
// CHECK: error: the ranks' communication orders form a cycle
module attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 2 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {phase = "PREFILL", seq_len = 4 : i64, sequences = 2 : i64}}} {
  plan.group @x_0 "x" [0, 1]
  plan.group @x_1 "x" [2]
  plan.group @y_0 "y" [0, 2]
  plan.group @y_1 "y" [1]
  plan.group @z_0 "z" [1, 2]
  plan.group @z_1 "z" [0]
  plan.program @r0 stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4xf32>
    %b = plan.buffer  activation "b" : memref<4xf32>
    plan.all_reduce %a -> %b on "x" count 4 {label = "first"} : memref<4xf32> -> memref<4xf32>
    plan.all_reduce %a -> %b on "y" count 4 {label = "second"} : memref<4xf32> -> memref<4xf32>
  }
  plan.program @r1 stage 0 layers [0, 1) ranks [1] {
    %a = plan.buffer  activation "a" : memref<4xf32>
    %b = plan.buffer  activation "b" : memref<4xf32>
    plan.all_reduce %a -> %b on "z" count 4 {label = "first"} : memref<4xf32> -> memref<4xf32>
    plan.all_reduce %a -> %b on "x" count 4 {label = "second"} : memref<4xf32> -> memref<4xf32>
  }
  plan.program @r2 stage 0 layers [0, 1) ranks [2] {
    %a = plan.buffer  activation "a" : memref<4xf32>
    %b = plan.buffer  activation "b" : memref<4xf32>
    plan.all_reduce %a -> %b on "y" count 4 {label = "first"} : memref<4xf32> -> memref<4xf32>
    plan.all_reduce %a -> %b on "z" count 4 {label = "second"} : memref<4xf32> -> memref<4xf32>
  }
}

// -----

// GENERATE: each side of plan.decode_step is expanded over the micro-batches on its own;
// a micro-batch's decode step reads the caches its own prefill appended to, and no event
// crosses the boundary (the runtime drains the streams there): the prefill records 1-24,
// the decode step's first kernel records 25.
// CHECK-LABEL: module @gen
// CHECK: %[[K0:.*]] = plan.buffer  kv_cache "layers.0.attention.k_cache.mb0" {{.*}}mb 0>}
// CHECK: %[[K1:.*]] = plan.buffer  kv_cache "layers.0.attention.k_cache.mb1" {{.*}}mb 1>}
// CHECK: waits = array<i64: 24>
// CHECK-NEXT: plan.decode_step
// CHECK-NEXT: plan.buffer  input "step_tokens.mb0"
// CHECK-NEXT: plan.buffer  activation
// CHECK-NEXT: plan.kernel  embedding({{.*}} {label = "embedding.lookup", record = 25 : i64}
// CHECK: plan.kernel  attention({{.*}}, %[[K0]], {{.*}}) ->
// CHECK: plan.kernel  kv_append({{.*}}) -> (%[[K0]])
// CHECK: plan.kernel  attention({{.*}}, %[[K1]], {{.*}}) ->
// CHECK: plan.kernel  kv_append({{.*}}) -> (%[[K1]])
#loc = loc("gen1.textproto":4:1)
#loc1 = loc("gen1.textproto":5:3)
#loc2 = loc("gen1.textproto":5:49)
#loc3 = loc("gen1.textproto":5:78)
#loc4 = loc("gen1.textproto":5:35)
#loc5 = loc("gen1.textproto":5:26)
#loc6 = loc("gen1.textproto":5:9)
#loc7 = loc("gen1.textproto":4:20)
#loc8 = loc("gen1.textproto":6:3)
#loc9 = loc("gen1.textproto":6:16)
#loc10 = loc("gen1.textproto":6:40)
#loc11 = loc("gen1.textproto":4:11)
#loc12 = loc("gen1.textproto":2:1)
#loc13 = loc("gen1.textproto":3:9)
#loc14 = loc("gen1.textproto":2:19)
#loc15 = loc("gen1.textproto":2:63)
#loc16 = loc("gen1.textproto":3:41)
#loc17 = loc("gen1.textproto":2:39)
#loc18 = loc("gen1.textproto":2:30)
#loc19 = loc("gen1.textproto":2:51)
#loc20 = loc("gen1.textproto":2:9)
#loc21 = loc("gen1.textproto":2:84)
#loc22 = loc("gen1.textproto":2:97)
#loc23 = loc("gen1.textproto":2:110)
#loc24 = loc("gen1.textproto":3:53)
#loc25 = loc("gen1.textproto":3:26)
#loc26 = loc("gen1.textproto":1:1)
#loc27 = loc("gen1.textproto":8:1)
#loc28 = loc("gen1.textproto":8:18)
#loc29 = loc("gen1.textproto":8:12)
#loc30 = loc("gen1.textproto":7:1)
#loc31 = loc("gen1.textproto":7:39)
#loc32 = loc("gen1.textproto":7:53)
#loc33 = loc("gen1.textproto":7:25)
#loc34 = loc("gen1.textproto":7:12)
module @gen attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 2 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 1 : i64, moe_layers = {none = true}, norm = "RMS_NORM", rope_theta = 1.000000e+04 : f64, vocab_size = 16 : i64}, name = "gen", strategy = {micro_batches = 2 : i64, tp = 2 : i64}, workload = {new_tokens = 5 : i64, phase = "GENERATE", prompt_len = 3 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.head_dim = #loc17, model.heads = #loc18, model.kv_heads = #loc19, model.layers = #loc20, model.moe_layers = #loc21, model.moe_layers.none = #loc22, model.norm = #loc23, model.rope_theta = #loc24, model.vocab_size = #loc25, name = #loc26, strategy = #loc27, strategy.micro_batches = #loc28, strategy.tp = #loc29, workload = #loc30, workload.new_tokens = #loc31, workload.phase = #loc32, workload.prompt_len = #loc33, workload.sequences = #loc34}, model.mesh = #model.mesh<tp = 2, pp = 1, dp = 1, ep = 1, etp = 2, order = "tp-ep-dp-pp">} {
  plan.group @tp_0 "tp" [0, 1]
  plan.group @dp_0 "dp" [0]
  plan.group @dp_1 "dp" [1]
  plan.group @pp_0 "pp" [0]
  plan.group @pp_1 "pp" [1]
  plan.group @ep_0 "ep" [0]
  plan.group @ep_1 "ep" [1]
  plan.group @etp_0 "etp" [0, 1]
  plan.group @edp_0 "edp" [0]
  plan.group @edp_1 "edp" [1]
  plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] {
    %embedding_weight = plan.buffer  weight "embedding.weight" {slice = #plan.slice<"embedding.weight"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_norm1_weight = plan.buffer  weight "layers.0.norm1.weight" {slice = #plan.slice<"layers.0.norm1.weight"[8]>} : memref<8xf32>
    %layers_0_attention_wq = plan.buffer  weight "layers.0.attention.wq" {slice = #plan.slice<"layers.0.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wk = plan.buffer  weight "layers.0.attention.wk" {slice = #plan.slice<"layers.0.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wv = plan.buffer  weight "layers.0.attention.wv" {slice = #plan.slice<"layers.0.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wo = plan.buffer  weight "layers.0.attention.wo" {slice = #plan.slice<"layers.0.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_0_norm2_weight = plan.buffer  weight "layers.0.norm2.weight" {slice = #plan.slice<"layers.0.norm2.weight"[8]>} : memref<8xf32>
    %layers_0_ffn_w_up = plan.buffer  weight "layers.0.ffn.w_up" {slice = #plan.slice<"layers.0.ffn.w_up"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_ffn_w_down = plan.buffer  weight "layers.0.ffn.w_down" {slice = #plan.slice<"layers.0.ffn.w_down"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %final_norm_weight = plan.buffer  weight "final_norm.weight" {slice = #plan.slice<"final_norm.weight"[8]>} : memref<8xf32>
    %lm_head_weight = plan.buffer  weight "lm_head.weight" {slice = #plan.slice<"lm_head.weight"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %tokens = plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[4, 3] splits[<0 over "dp" parts 1>] mb 0>} : memref<6xi32>
    %embedding_out = plan.buffer  activation "embedding.out" : memref<6x8xf32>
    plan.kernel  embedding(%tokens, %embedding_weight) -> (%embedding_out) <m = 6, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup"} : (memref<6xi32>, memref<8x8xf32>) -> memref<6x8xf32>
    %head_tp_reduce_scatter = plan.buffer  activation "head.tp.reduce_scatter" : memref<3x8xf32>
    plan.reduce_scatter %embedding_out -> %head_tp_reduce_scatter on "tp" count 24 {label = "head.tp.reduce_scatter", stream = 1 : i64} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_norm1_out = plan.buffer  activation "layers.0.norm1.out" : memref<3x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter, %layers_0_norm1_weight) -> (%layers_0_norm1_out) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather = plan.buffer  activation "layers.0.tp.all_gather" : memref<6x8xf32>
    plan.all_gather %layers_0_norm1_out -> %layers_0_tp_all_gather on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_attention_q = plan.buffer  activation "layers.0.attention.q" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wq) -> (%layers_0_attention_q) <k = 8, m = 6, n = 4> {label = "layers.0.attention.q", layer = 0 : i64} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k = plan.buffer  activation "layers.0.attention.k" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wk) -> (%layers_0_attention_k) <k = 8, m = 6, n = 4> {label = "layers.0.attention.k", layer = 0 : i64} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_v = plan.buffer  activation "layers.0.attention.v" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wv) -> (%layers_0_attention_v) <k = 8, m = 6, n = 4> {label = "layers.0.attention.v", layer = 0 : i64} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_q) -> (%layers_0_attention_q) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_k) -> (%layers_0_attention_k) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_context = plan.buffer  activation "layers.0.attention.context" : memref<6x4xf32>
    plan.kernel  attention(%layers_0_attention_q, %layers_0_attention_k, %layers_0_attention_v) -> (%layers_0_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, seq_len = 3, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<6x4xf32>, memref<6x4xf32>, memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_cache = plan.buffer  kv_cache "layers.0.attention.k_cache" {slice = #plan.slice<"layers.0.attention.k_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k) -> (%layers_0_attention_k_cache) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_v_cache = plan.buffer  kv_cache "layers.0.attention.v_cache" {slice = #plan.slice<"layers.0.attention.v_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v) -> (%layers_0_attention_v_cache) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o = plan.buffer  activation "layers.0.attention.o" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_attention_context, %layers_0_attention_wo) -> (%layers_0_attention_o) <k = 4, m = 6, n = 8> {label = "layers.0.attention.o", layer = 0 : i64} : (memref<6x4xf32>, memref<4x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter = plan.buffer  activation "layers.0.tp.reduce_scatter" : memref<3x8xf32>
    plan.reduce_scatter %layers_0_attention_o -> %layers_0_tp_reduce_scatter on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum = plan.buffer  activation "layers.0.residual.sum" : memref<3x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter, %layers_0_tp_reduce_scatter) -> (%layers_0_residual_sum) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %layers_0_norm2_out = plan.buffer  activation "layers.0.norm2.out" : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum, %layers_0_norm2_weight) -> (%layers_0_norm2_out) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_2 = plan.buffer  activation "layers.0.tp.all_gather.2" : memref<6x8xf32>
    plan.all_gather %layers_0_norm2_out -> %layers_0_tp_all_gather_2 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_ffn_up = plan.buffer  activation "layers.0.ffn.up" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_2, %layers_0_ffn_w_up) -> (%layers_0_ffn_up) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_act = plan.buffer  activation "layers.0.ffn.act" : memref<6x8xf32>
    plan.kernel  activation(%layers_0_ffn_up) -> (%layers_0_ffn_act) <activation = gelu, m = 6, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64} : (memref<6x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_down = plan.buffer  activation "layers.0.ffn.down" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act, %layers_0_ffn_w_down) -> (%layers_0_ffn_down) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_2 = plan.buffer  activation "layers.0.tp.reduce_scatter.2" : memref<3x8xf32>
    plan.reduce_scatter %layers_0_ffn_down -> %layers_0_tp_reduce_scatter_2 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_2 = plan.buffer  activation "layers.0.residual.sum.2" : memref<3x8xf32>
    plan.kernel  add(%layers_0_residual_sum, %layers_0_tp_reduce_scatter_2) -> (%layers_0_residual_sum_2) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %final_norm_out = plan.buffer  activation "final_norm.out" : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_2, %final_norm_weight) -> (%final_norm_out) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "final_norm.norm"} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %head_tp_all_gather = plan.buffer  activation "head.tp.all_gather" : memref<6x8xf32>
    plan.all_gather %final_norm_out -> %head_tp_all_gather on "tp" count 24 {label = "head.tp.all_gather", stream = 1 : i64} : memref<3x8xf32> -> memref<6x8xf32>
    %lm_head_logits = plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[4, 3, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<6x8xf32>
    plan.kernel  gemm(%head_tp_all_gather, %lm_head_weight) -> (%lm_head_logits) <k = 8, m = 6, n = 8> {label = "lm_head.logits"} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    plan.decode_step
    %step_tokens = plan.buffer  input "step_tokens" {slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 0>} : memref<2xi32>
    %embedding_out_2 = plan.buffer  activation "embedding.out.2" : memref<2x8xf32>
    plan.kernel  embedding(%step_tokens, %embedding_weight) -> (%embedding_out_2) <m = 2, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup"} : (memref<2xi32>, memref<8x8xf32>) -> memref<2x8xf32>
    %head_tp_reduce_scatter_2 = plan.buffer  activation "head.tp.reduce_scatter.2" : memref<1x8xf32>
    plan.reduce_scatter %embedding_out_2 -> %head_tp_reduce_scatter_2 on "tp" count 8 {label = "head.tp.reduce_scatter", stream = 1 : i64} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_norm1_out_2 = plan.buffer  activation "layers.0.norm1.out.2" : memref<1x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_2, %layers_0_norm1_weight) -> (%layers_0_norm1_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_3 = plan.buffer  activation "layers.0.tp.all_gather.3" : memref<2x8xf32>
    plan.all_gather %layers_0_norm1_out_2 -> %layers_0_tp_all_gather_3 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_attention_q_2 = plan.buffer  activation "layers.0.attention.q.2" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3, %layers_0_attention_wq) -> (%layers_0_attention_q_2) <k = 8, m = 2, n = 4> {label = "layers.0.attention.q", layer = 0 : i64} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_k_2 = plan.buffer  activation "layers.0.attention.k.2" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3, %layers_0_attention_wk) -> (%layers_0_attention_k_2) <k = 8, m = 2, n = 4> {label = "layers.0.attention.k", layer = 0 : i64} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_v_2 = plan.buffer  activation "layers.0.attention.v.2" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3, %layers_0_attention_wv) -> (%layers_0_attention_v_2) <k = 8, m = 2, n = 4> {label = "layers.0.attention.v", layer = 0 : i64} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_q_2) -> (%layers_0_attention_q_2) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_k_2) -> (%layers_0_attention_k_2) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_context_2 = plan.buffer  activation "layers.0.attention.context.2" : memref<2x4xf32>
    plan.kernel  attention(%layers_0_attention_q_2, %layers_0_attention_k_2, %layers_0_attention_v_2, %layers_0_attention_k_cache, %layers_0_attention_v_cache) -> (%layers_0_attention_context_2) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, per_step = true, seq_len = 1, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<2x4xf32>, memref<2x4xf32>, memref<2x4xf32>, memref<14x4xf32>, memref<14x4xf32>) -> memref<2x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_2) -> (%layers_0_attention_k_cache) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_2) -> (%layers_0_attention_v_cache) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_2 = plan.buffer  activation "layers.0.attention.o.2" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_2, %layers_0_attention_wo) -> (%layers_0_attention_o_2) <k = 4, m = 2, n = 8> {label = "layers.0.attention.o", layer = 0 : i64} : (memref<2x4xf32>, memref<4x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_3 = plan.buffer  activation "layers.0.tp.reduce_scatter.3" : memref<1x8xf32>
    plan.reduce_scatter %layers_0_attention_o_2 -> %layers_0_tp_reduce_scatter_3 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_3 = plan.buffer  activation "layers.0.residual.sum.3" : memref<1x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_2, %layers_0_tp_reduce_scatter_3) -> (%layers_0_residual_sum_3) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_0_norm2_out_2 = plan.buffer  activation "layers.0.norm2.out.2" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_3, %layers_0_norm2_weight) -> (%layers_0_norm2_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_4 = plan.buffer  activation "layers.0.tp.all_gather.4" : memref<2x8xf32>
    plan.all_gather %layers_0_norm2_out_2 -> %layers_0_tp_all_gather_4 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_ffn_up_2 = plan.buffer  activation "layers.0.ffn.up.2" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_4, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_2) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_act_2 = plan.buffer  activation "layers.0.ffn.act.2" : memref<2x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_2) -> (%layers_0_ffn_act_2) <activation = gelu, m = 2, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64} : (memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_down_2 = plan.buffer  activation "layers.0.ffn.down.2" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_2, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_2) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_4 = plan.buffer  activation "layers.0.tp.reduce_scatter.4" : memref<1x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_2 -> %layers_0_tp_reduce_scatter_4 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_4 = plan.buffer  activation "layers.0.residual.sum.4" : memref<1x8xf32>
    plan.kernel  add(%layers_0_residual_sum_3, %layers_0_tp_reduce_scatter_4) -> (%layers_0_residual_sum_4) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %final_norm_out_2 = plan.buffer  activation "final_norm.out.2" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_4, %final_norm_weight) -> (%final_norm_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "final_norm.norm"} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %head_tp_all_gather_2 = plan.buffer  activation "head.tp.all_gather.2" : memref<2x8xf32>
    plan.all_gather %final_norm_out_2 -> %head_tp_all_gather_2 on "tp" count 8 {label = "head.tp.all_gather", stream = 1 : i64} : memref<1x8xf32> -> memref<2x8xf32>
    %lm_head_logits_2 = plan.buffer  output "lm_head.logits.2" {slice = #plan.slice<"step_logits"[4, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<2x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_2, %lm_head_weight) -> (%lm_head_logits_2) <k = 8, m = 2, n = 8> {label = "lm_head.logits"} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
  }
}
// -----
// GENERATE with pp 2 and 4 micro-batches: the sampled ids cross parts (the last stage's
// SENDs of one part meet the first stage's RECVs of the next), so no SEND may hold a
// stream that the ids it waits for need. The last stage sends its prefill's ids after every
// RECV of the prefill; in the decode step both stages post every RECV first; the decode
// step's ids leave as soon as each micro-batch is sampled.
// CHECK-LABEL: module @"small-generate"
// CHECK: plan.program @stage0
// CHECK: plan.send %layers_0_residual_sum_2_mb3 to 1
// CHECK-NEXT: plan.decode_step
// CHECK: plan.recv %step_tokens_mb0 from 1 on "pp" count 1 {{{.*}}feeds_next_step
// CHECK-NOT: plan.send
// CHECK: plan.recv %step_tokens_mb3 from 1
// CHECK: plan.send %layers_0_residual_sum_4_mb0 to 1
// CHECK: plan.program @stage1
// CHECK: plan.recv %pipeline_recv_mb3 from 0
// CHECK-NOT: plan.recv
// CHECK: plan.send %sample_ids_mb0 to 0 on "pp" count 1 {{{.*}}feeds_next_step
// CHECK-NEXT: plan.send %sample_ids_mb1 to 0
// CHECK-NEXT: plan.send %sample_ids_mb2 to 0
// CHECK-NEXT: plan.send %sample_ids_mb3 to 0
// CHECK-NEXT: plan.decode_step
// CHECK: plan.recv %pipeline_recv_2_mb3 from 0
// CHECK-NOT: plan.recv
// CHECK: plan.send %sample_ids_2_mb0 to 0
// CHECK: plan.kernel  argmax(%lm_head_logits_2_mb1)
// CHECK: plan.send %sample_ids_2_mb1 to 0
#loc = loc("generate-mb4.textproto":5:1)
#loc1 = loc("generate-mb4.textproto":6:3)
#loc2 = loc("generate-mb4.textproto":6:49)
#loc3 = loc("generate-mb4.textproto":6:78)
#loc4 = loc("generate-mb4.textproto":6:35)
#loc5 = loc("generate-mb4.textproto":6:26)
#loc6 = loc("generate-mb4.textproto":6:9)
#loc7 = loc("generate-mb4.textproto":5:20)
#loc8 = loc("generate-mb4.textproto":7:3)
#loc9 = loc("generate-mb4.textproto":7:16)
#loc10 = loc("generate-mb4.textproto":7:40)
#loc11 = loc("generate-mb4.textproto":5:11)
#loc12 = loc("generate-mb4.textproto":2:1)
#loc13 = loc("generate-mb4.textproto":4:9)
#loc14 = loc("generate-mb4.textproto":2:19)
#loc15 = loc("generate-mb4.textproto":3:55)
#loc16 = loc("generate-mb4.textproto":4:41)
#loc17 = loc("generate-mb4.textproto":3:9)
#loc18 = loc("generate-mb4.textproto":2:63)
#loc19 = loc("generate-mb4.textproto":2:39)
#loc20 = loc("generate-mb4.textproto":2:30)
#loc21 = loc("generate-mb4.textproto":2:51)
#loc22 = loc("generate-mb4.textproto":2:9)
#loc23 = loc("generate-mb4.textproto":3:27)
#loc24 = loc("generate-mb4.textproto":3:40)
#loc25 = loc("generate-mb4.textproto":3:76)
#loc26 = loc("generate-mb4.textproto":2:74)
#loc27 = loc("generate-mb4.textproto":4:26)
#loc28 = loc("generate-mb4.textproto":1:1)
#loc29 = loc("generate-mb4.textproto":9:1)
#loc30 = loc("generate-mb4.textproto":9:66)
#loc31 = loc("generate-mb4.textproto":9:24)
#loc32 = loc("generate-mb4.textproto":9:30)
#loc33 = loc("generate-mb4.textproto":9:36)
#loc34 = loc("generate-mb4.textproto":9:49)
#loc35 = loc("generate-mb4.textproto":9:18)
#loc36 = loc("generate-mb4.textproto":9:85)
#loc37 = loc("generate-mb4.textproto":9:12)
#loc38 = loc("generate-mb4.textproto":8:1)
#loc39 = loc("generate-mb4.textproto":8:39)
#loc40 = loc("generate-mb4.textproto":8:53)
#loc41 = loc("generate-mb4.textproto":8:25)
#loc42 = loc("generate-mb4.textproto":8:12)
module @"small-generate" attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small-generate", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 4 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {new_tokens = 6 : i64, phase = "GENERATE", prompt_len = 4 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.new_tokens = #loc39, workload.phase = #loc40, workload.prompt_len = #loc41, workload.sequences = #loc42}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">} {
  plan.group @tp_0 "tp" [0, 1]
  plan.group @tp_1 "tp" [2, 3]
  plan.group @dp_0 "dp" [0]
  plan.group @dp_1 "dp" [1]
  plan.group @dp_2 "dp" [2]
  plan.group @dp_3 "dp" [3]
  plan.group @pp_0 "pp" [0, 2]
  plan.group @pp_1 "pp" [1, 3]
  plan.group @ep_0 "ep" [0, 1]
  plan.group @ep_1 "ep" [2, 3]
  plan.group @etp_0 "etp" [0]
  plan.group @etp_1 "etp" [1]
  plan.group @etp_2 "etp" [2]
  plan.group @etp_3 "etp" [3]
  plan.group @edp_0 "edp" [0]
  plan.group @edp_1 "edp" [1]
  plan.group @edp_2 "edp" [2]
  plan.group @edp_3 "edp" [3]
  plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] {
    %embedding_weight = plan.buffer  weight "embedding.weight" {slice = #plan.slice<"embedding.weight"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_norm1_weight = plan.buffer  weight "layers.0.norm1.weight" {slice = #plan.slice<"layers.0.norm1.weight"[8]>} : memref<8xf32>
    %layers_0_attention_wq = plan.buffer  weight "layers.0.attention.wq" {slice = #plan.slice<"layers.0.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wk = plan.buffer  weight "layers.0.attention.wk" {slice = #plan.slice<"layers.0.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wv = plan.buffer  weight "layers.0.attention.wv" {slice = #plan.slice<"layers.0.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wo = plan.buffer  weight "layers.0.attention.wo" {slice = #plan.slice<"layers.0.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_0_norm2_weight = plan.buffer  weight "layers.0.norm2.weight" {slice = #plan.slice<"layers.0.norm2.weight"[8]>} : memref<8xf32>
    %layers_0_router_weight = plan.buffer  weight "layers.0.router.weight" {slice = #plan.slice<"layers.0.router.weight"[8, 4]>} : memref<8x4xf32>
    %layers_0_experts_w_up = plan.buffer  weight "layers.0.experts.w_up" {slice = #plan.slice<"layers.0.experts.w_up"[4, 8, 16] splits[<0 over "ep" parts 2>, <2 over "etp" parts 1>]>} : memref<2x8x16xf32>
    %layers_0_experts_w_down = plan.buffer  weight "layers.0.experts.w_down" {slice = #plan.slice<"layers.0.experts.w_down"[4, 16, 8] splits[<0 over "ep" parts 2>, <1 over "etp" parts 1>]>} : memref<2x16x8xf32>
    %tokens = plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[4, 4] splits[<0 over "dp" parts 1>] mb 0>} : memref<4xi32>
    %embedding_out = plan.buffer  activation "embedding.out" : memref<4x8xf32>
    plan.kernel  embedding(%tokens, %embedding_weight) -> (%embedding_out) <m = 4, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup"} : (memref<4xi32>, memref<8x8xf32>) -> memref<4x8xf32>
    %head_tp_reduce_scatter = plan.buffer  activation "head.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %embedding_out -> %head_tp_reduce_scatter on "tp" count 16 {label = "head.tp.reduce_scatter", stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_0_norm1_out = plan.buffer  activation "layers.0.norm1.out" : memref<2x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter, %layers_0_norm1_weight) -> (%layers_0_norm1_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_0_tp_all_gather = plan.buffer  activation "layers.0.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_0_norm1_out -> %layers_0_tp_all_gather on "tp" count 16 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_0_attention_q = plan.buffer  activation "layers.0.attention.q" : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wq) -> (%layers_0_attention_q) <k = 8, m = 4, n = 4> {label = "layers.0.attention.q", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_k = plan.buffer  activation "layers.0.attention.k" : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wk) -> (%layers_0_attention_k) <k = 8, m = 4, n = 4> {label = "layers.0.attention.k", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_v = plan.buffer  activation "layers.0.attention.v" : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wv) -> (%layers_0_attention_v) <k = 8, m = 4, n = 4> {label = "layers.0.attention.v", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_context = plan.buffer  activation "layers.0.attention.context" : memref<4x4xf32>
    plan.kernel  attention(%layers_0_attention_q, %layers_0_attention_k, %layers_0_attention_v) -> (%layers_0_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, seq_len = 4, sequences = 1> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<4x4xf32>, memref<4x4xf32>, memref<4x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_k_cache = plan.buffer  kv_cache "layers.0.attention.k_cache" {slice = #plan.slice<"layers.0.attention.k_cache"[4, 9, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<9x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k) -> (%layers_0_attention_k_cache) <first_position = 0, m = 4, n = 4, sequences = 1> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<4x4xf32>) -> memref<9x4xf32>
    %layers_0_attention_v_cache = plan.buffer  kv_cache "layers.0.attention.v_cache" {slice = #plan.slice<"layers.0.attention.v_cache"[4, 9, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<9x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v) -> (%layers_0_attention_v_cache) <first_position = 0, m = 4, n = 4, sequences = 1> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<4x4xf32>) -> memref<9x4xf32>
    %layers_0_attention_o = plan.buffer  activation "layers.0.attention.o" : memref<4x8xf32>
    plan.kernel  gemm(%layers_0_attention_context, %layers_0_attention_wo) -> (%layers_0_attention_o) <k = 4, m = 4, n = 8> {label = "layers.0.attention.o", layer = 0 : i64} : (memref<4x4xf32>, memref<4x8xf32>) -> memref<4x8xf32>
    %layers_0_tp_reduce_scatter = plan.buffer  activation "layers.0.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_0_attention_o -> %layers_0_tp_reduce_scatter on "tp" count 16 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_0_residual_sum = plan.buffer  activation "layers.0.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter, %layers_0_tp_reduce_scatter) -> (%layers_0_residual_sum) <n = 16> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_norm2_out = plan.buffer  activation "layers.0.norm2.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_0_residual_sum, %layers_0_norm2_weight) -> (%layers_0_norm2_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_0_router_logits = plan.buffer  workspace "layers.0.router.logits" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_norm2_out, %layers_0_router_weight) -> (%layers_0_router_logits) <k = 8, m = 2, n = 4> {label = "layers.0.router.logits", layer = 0 : i64} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_router_indices = plan.buffer  activation "layers.0.router.indices" : memref<2x1xi32>
    %layers_0_router_gates = plan.buffer  activation "layers.0.router.gates" : memref<2x1xf32>
    plan.kernel  router(%layers_0_router_logits) -> (%layers_0_router_indices, %layers_0_router_gates) <experts = 4, tokens = 2, top_k = 1> {label = "layers.0.router.topk", layer = 0 : i64} : (memref<2x4xf32>) -> (memref<2x1xi32>, memref<2x1xf32>)
    %layers_0_experts_dispatched = plan.buffer  activation "layers.0.experts.dispatched" : memref<4x1x8xf32>
    %layers_0_experts_slots = plan.buffer  activation "layers.0.experts.slots" : memref<2x1xi32>
    plan.kernel  dispatch(%layers_0_norm2_out, %layers_0_router_indices) -> (%layers_0_experts_dispatched, %layers_0_experts_slots) <capacity = 1, experts = 4, groups = 1, n = 8, tokens = 2, top_k = 1> {label = "layers.0.experts.dispatch", layer = 0 : i64} : (memref<2x8xf32>, memref<2x1xi32>) -> (memref<4x1x8xf32>, memref<2x1xi32>)
    %layers_0_ep_all_to_all_recv = plan.buffer  activation "layers.0.ep.all_to_all.recv" : memref<2x2x1x8xf32>
    plan.all_to_all %layers_0_experts_dispatched -> %layers_0_ep_all_to_all_recv on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<4x1x8xf32> -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_regroup = plan.buffer  activation "layers.0.ep.all_to_all.regroup" : memref<2x2x8xf32>
    plan.kernel  transpose(%layers_0_ep_all_to_all_recv) -> (%layers_0_ep_all_to_all_regroup) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x1x8xf32>) -> memref<2x2x8xf32>
    %layers_0_experts_up = plan.buffer  activation "layers.0.experts.up" : memref<2x2x16xf32>
    plan.kernel  grouped_gemm(%layers_0_ep_all_to_all_regroup, %layers_0_experts_w_up) -> (%layers_0_experts_up) <groups = 2, k = 8, m = 2, n = 16> {label = "layers.0.experts.up", layer = 0 : i64} : (memref<2x2x8xf32>, memref<2x8x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_act = plan.buffer  activation "layers.0.experts.act" : memref<2x2x16xf32>
    plan.kernel  activation(%layers_0_experts_up) -> (%layers_0_experts_act) <activation = gelu, m = 4, n = 16> {label = "layers.0.experts.act", layer = 0 : i64} : (memref<2x2x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_down = plan.buffer  activation "layers.0.experts.down" : memref<2x2x8xf32>
    plan.kernel  grouped_gemm(%layers_0_experts_act, %layers_0_experts_w_down) -> (%layers_0_experts_down) <groups = 2, k = 16, m = 2, n = 8> {label = "layers.0.experts.down", layer = 0 : i64} : (memref<2x2x16xf32>, memref<2x16x8xf32>) -> memref<2x2x8xf32>
    %layers_0_ep_all_to_all_regroup_2 = plan.buffer  activation "layers.0.ep.all_to_all.regroup.2" : memref<2x2x1x8xf32>
    plan.kernel  transpose(%layers_0_experts_down) -> (%layers_0_ep_all_to_all_regroup_2) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x8xf32>) -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_recv_2 = plan.buffer  activation "layers.0.ep.all_to_all.recv.2" : memref<4x1x8xf32>
    plan.all_to_all %layers_0_ep_all_to_all_regroup_2 -> %layers_0_ep_all_to_all_recv_2 on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<2x2x1x8xf32> -> memref<4x1x8xf32>
    %layers_0_experts_combined = plan.buffer  activation "layers.0.experts.combined" : memref<2x8xf32>
    plan.kernel  combine(%layers_0_ep_all_to_all_recv_2, %layers_0_router_indices, %layers_0_experts_slots, %layers_0_router_gates) -> (%layers_0_experts_combined) <capacity = 1, experts = 4, groups = 1, n = 8, tokens = 2, top_k = 1> {label = "layers.0.experts.combine", layer = 0 : i64} : (memref<4x1x8xf32>, memref<2x1xi32>, memref<2x1xi32>, memref<2x1xf32>) -> memref<2x8xf32>
    %layers_0_residual_sum_2 = plan.buffer  activation "layers.0.residual.sum.2" : memref<2x8xf32>
    plan.kernel  add(%layers_0_residual_sum, %layers_0_experts_combined) -> (%layers_0_residual_sum_2) <n = 16> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    plan.send %layers_0_residual_sum_2 to 1 on "pp" count 16 {label = "pipeline.send", stream = 2 : i64} : memref<2x8xf32>
    plan.decode_step
    %step_tokens = plan.buffer  input "step_tokens" {slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 0>} : memref<1xi32>
    plan.recv %step_tokens from 1 on "pp" count 1 {feeds_next_step, label = "sample.recv", stream = 2 : i64} : memref<1xi32>
    %embedding_out_2 = plan.buffer  activation "embedding.out.2" : memref<1x8xf32>
    plan.kernel  embedding(%step_tokens, %embedding_weight) -> (%embedding_out_2) <m = 1, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup"} : (memref<1xi32>, memref<8x8xf32>) -> memref<1x8xf32>
    %head_tp_all_reduce = plan.buffer  activation "head.tp.all_reduce" : memref<1x8xf32>
    plan.all_reduce %embedding_out_2 -> %head_tp_all_reduce on "tp" count 8 {label = "head.tp.all_reduce", stream = 1 : i64} : memref<1x8xf32> -> memref<1x8xf32>
    %layers_0_norm1_out_2 = plan.buffer  activation "layers.0.norm1.out.2" : memref<1x8xf32>
    plan.kernel  norm(%head_tp_all_reduce, %layers_0_norm1_weight) -> (%layers_0_norm1_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_attention_q_2 = plan.buffer  activation "layers.0.attention.q.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_0_norm1_out_2, %layers_0_attention_wq) -> (%layers_0_attention_q_2) <k = 8, m = 1, n = 4> {label = "layers.0.attention.q", layer = 0 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_0_attention_k_2 = plan.buffer  activation "layers.0.attention.k.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_0_norm1_out_2, %layers_0_attention_wk) -> (%layers_0_attention_k_2) <k = 8, m = 1, n = 4> {label = "layers.0.attention.k", layer = 0 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_0_attention_v_2 = plan.buffer  activation "layers.0.attention.v.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_0_norm1_out_2, %layers_0_attention_wv) -> (%layers_0_attention_v_2) <k = 8, m = 1, n = 4> {label = "layers.0.attention.v", layer = 0 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_0_attention_context_2 = plan.buffer  activation "layers.0.attention.context.2" : memref<1x4xf32>
    plan.kernel  attention(%layers_0_attention_q_2, %layers_0_attention_k_2, %layers_0_attention_v_2, %layers_0_attention_k_cache, %layers_0_attention_v_cache) -> (%layers_0_attention_context_2) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, per_step = true, seq_len = 1, sequences = 1> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<1x4xf32>, memref<1x4xf32>, memref<1x4xf32>, memref<9x4xf32>, memref<9x4xf32>) -> memref<1x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_2) -> (%layers_0_attention_k_cache) <first_position = 4, m = 1, n = 4, per_step = true, sequences = 1> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<1x4xf32>) -> memref<9x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_2) -> (%layers_0_attention_v_cache) <first_position = 4, m = 1, n = 4, per_step = true, sequences = 1> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<1x4xf32>) -> memref<9x4xf32>
    %layers_0_attention_o_2 = plan.buffer  activation "layers.0.attention.o.2" : memref<1x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_2, %layers_0_attention_wo) -> (%layers_0_attention_o_2) <k = 4, m = 1, n = 8> {label = "layers.0.attention.o", layer = 0 : i64} : (memref<1x4xf32>, memref<4x8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_reduce = plan.buffer  activation "layers.0.tp.all_reduce" : memref<1x8xf32>
    plan.all_reduce %layers_0_attention_o_2 -> %layers_0_tp_all_reduce on "tp" count 8 {label = "layers.0.tp.all_reduce", layer = 0 : i64, stream = 1 : i64} : memref<1x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_3 = plan.buffer  activation "layers.0.residual.sum.3" : memref<1x8xf32>
    plan.kernel  add(%head_tp_all_reduce, %layers_0_tp_all_reduce) -> (%layers_0_residual_sum_3) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_0_norm2_out_2 = plan.buffer  activation "layers.0.norm2.out.2" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_3, %layers_0_norm2_weight) -> (%layers_0_norm2_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_router_logits_2 = plan.buffer  workspace "layers.0.router.logits.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_0_norm2_out_2, %layers_0_router_weight) -> (%layers_0_router_logits_2) <k = 8, m = 1, n = 4> {label = "layers.0.router.logits", layer = 0 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_0_router_indices_2 = plan.buffer  activation "layers.0.router.indices.2" : memref<1x1xi32>
    %layers_0_router_gates_2 = plan.buffer  activation "layers.0.router.gates.2" : memref<1x1xf32>
    plan.kernel  router(%layers_0_router_logits_2) -> (%layers_0_router_indices_2, %layers_0_router_gates_2) <experts = 4, tokens = 1, top_k = 1> {label = "layers.0.router.topk", layer = 0 : i64} : (memref<1x4xf32>) -> (memref<1x1xi32>, memref<1x1xf32>)
    %layers_0_experts_dispatched_2 = plan.buffer  activation "layers.0.experts.dispatched.2" : memref<4x1x8xf32>
    %layers_0_experts_slots_2 = plan.buffer  activation "layers.0.experts.slots.2" : memref<1x1xi32>
    plan.kernel  dispatch(%layers_0_norm2_out_2, %layers_0_router_indices_2) -> (%layers_0_experts_dispatched_2, %layers_0_experts_slots_2) <capacity = 1, experts = 4, groups = 1, n = 8, tokens = 1, top_k = 1> {label = "layers.0.experts.dispatch", layer = 0 : i64} : (memref<1x8xf32>, memref<1x1xi32>) -> (memref<4x1x8xf32>, memref<1x1xi32>)
    %layers_0_ep_all_to_all_recv_3 = plan.buffer  activation "layers.0.ep.all_to_all.recv.3" : memref<2x2x1x8xf32>
    plan.all_to_all %layers_0_experts_dispatched_2 -> %layers_0_ep_all_to_all_recv_3 on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<4x1x8xf32> -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_regroup_3 = plan.buffer  activation "layers.0.ep.all_to_all.regroup.3" : memref<2x2x8xf32>
    plan.kernel  transpose(%layers_0_ep_all_to_all_recv_3) -> (%layers_0_ep_all_to_all_regroup_3) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x1x8xf32>) -> memref<2x2x8xf32>
    %layers_0_experts_up_2 = plan.buffer  activation "layers.0.experts.up.2" : memref<2x2x16xf32>
    plan.kernel  grouped_gemm(%layers_0_ep_all_to_all_regroup_3, %layers_0_experts_w_up) -> (%layers_0_experts_up_2) <groups = 2, k = 8, m = 2, n = 16> {label = "layers.0.experts.up", layer = 0 : i64} : (memref<2x2x8xf32>, memref<2x8x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_act_2 = plan.buffer  activation "layers.0.experts.act.2" : memref<2x2x16xf32>
    plan.kernel  activation(%layers_0_experts_up_2) -> (%layers_0_experts_act_2) <activation = gelu, m = 4, n = 16> {label = "layers.0.experts.act", layer = 0 : i64} : (memref<2x2x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_down_2 = plan.buffer  activation "layers.0.experts.down.2" : memref<2x2x8xf32>
    plan.kernel  grouped_gemm(%layers_0_experts_act_2, %layers_0_experts_w_down) -> (%layers_0_experts_down_2) <groups = 2, k = 16, m = 2, n = 8> {label = "layers.0.experts.down", layer = 0 : i64} : (memref<2x2x16xf32>, memref<2x16x8xf32>) -> memref<2x2x8xf32>
    %layers_0_ep_all_to_all_regroup_4 = plan.buffer  activation "layers.0.ep.all_to_all.regroup.4" : memref<2x2x1x8xf32>
    plan.kernel  transpose(%layers_0_experts_down_2) -> (%layers_0_ep_all_to_all_regroup_4) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x8xf32>) -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_recv_4 = plan.buffer  activation "layers.0.ep.all_to_all.recv.4" : memref<4x1x8xf32>
    plan.all_to_all %layers_0_ep_all_to_all_regroup_4 -> %layers_0_ep_all_to_all_recv_4 on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<2x2x1x8xf32> -> memref<4x1x8xf32>
    %layers_0_experts_combined_2 = plan.buffer  activation "layers.0.experts.combined.2" : memref<1x8xf32>
    plan.kernel  combine(%layers_0_ep_all_to_all_recv_4, %layers_0_router_indices_2, %layers_0_experts_slots_2, %layers_0_router_gates_2) -> (%layers_0_experts_combined_2) <capacity = 1, experts = 4, groups = 1, n = 8, tokens = 1, top_k = 1> {label = "layers.0.experts.combine", layer = 0 : i64} : (memref<4x1x8xf32>, memref<1x1xi32>, memref<1x1xi32>, memref<1x1xf32>) -> memref<1x8xf32>
    %layers_0_residual_sum_4 = plan.buffer  activation "layers.0.residual.sum.4" : memref<1x8xf32>
    plan.kernel  add(%layers_0_residual_sum_3, %layers_0_experts_combined_2) -> (%layers_0_residual_sum_4) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    plan.send %layers_0_residual_sum_4 to 1 on "pp" count 8 {label = "pipeline.send", stream = 2 : i64} : memref<1x8xf32>
  }
  plan.program @stage1 stage 1 layers[1, 2) ranks [2, 3] {
    %layers_1_norm1_weight = plan.buffer  weight "layers.1.norm1.weight" {slice = #plan.slice<"layers.1.norm1.weight"[8]>} : memref<8xf32>
    %layers_1_attention_wq = plan.buffer  weight "layers.1.attention.wq" {slice = #plan.slice<"layers.1.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wk = plan.buffer  weight "layers.1.attention.wk" {slice = #plan.slice<"layers.1.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wv = plan.buffer  weight "layers.1.attention.wv" {slice = #plan.slice<"layers.1.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wo = plan.buffer  weight "layers.1.attention.wo" {slice = #plan.slice<"layers.1.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_1_norm2_weight = plan.buffer  weight "layers.1.norm2.weight" {slice = #plan.slice<"layers.1.norm2.weight"[8]>} : memref<8xf32>
    %layers_1_ffn_w_up = plan.buffer  weight "layers.1.ffn.w_up" {slice = #plan.slice<"layers.1.ffn.w_up"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_1_ffn_w_down = plan.buffer  weight "layers.1.ffn.w_down" {slice = #plan.slice<"layers.1.ffn.w_down"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %final_norm_weight = plan.buffer  weight "final_norm.weight" {slice = #plan.slice<"final_norm.weight"[8]>} : memref<8xf32>
    %lm_head_weight = plan.buffer  weight "lm_head.weight" {slice = #plan.slice<"lm_head.weight"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %pipeline_recv = plan.buffer  comm "pipeline.recv" : memref<2x8xf32>
    plan.recv %pipeline_recv from 0 on "pp" count 16 {label = "pipeline.recv", stream = 2 : i64} : memref<2x8xf32>
    %layers_1_norm1_out = plan.buffer  activation "layers.1.norm1.out" : memref<2x8xf32>
    plan.kernel  norm(%pipeline_recv, %layers_1_norm1_weight) -> (%layers_1_norm1_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.1.norm1.norm", layer = 1 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_1_tp_all_gather = plan.buffer  activation "layers.1.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_1_norm1_out -> %layers_1_tp_all_gather on "tp" count 16 {label = "layers.1.tp.all_gather", layer = 1 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_1_attention_q = plan.buffer  activation "layers.1.attention.q" : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wq) -> (%layers_1_attention_q) <k = 8, m = 4, n = 4> {label = "layers.1.attention.q", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_k = plan.buffer  activation "layers.1.attention.k" : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wk) -> (%layers_1_attention_k) <k = 8, m = 4, n = 4> {label = "layers.1.attention.k", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_v = plan.buffer  activation "layers.1.attention.v" : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wv) -> (%layers_1_attention_v) <k = 8, m = 4, n = 4> {label = "layers.1.attention.v", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_context = plan.buffer  activation "layers.1.attention.context" : memref<4x4xf32>
    plan.kernel  attention(%layers_1_attention_q, %layers_1_attention_k, %layers_1_attention_v) -> (%layers_1_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, seq_len = 4, sequences = 1> {label = "layers.1.attention.core", layer = 1 : i64} : (memref<4x4xf32>, memref<4x4xf32>, memref<4x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_k_cache = plan.buffer  kv_cache "layers.1.attention.k_cache" {slice = #plan.slice<"layers.1.attention.k_cache"[4, 9, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<9x4xf32>
    plan.kernel  kv_append(%layers_1_attention_k) -> (%layers_1_attention_k_cache) <first_position = 0, m = 4, n = 4, sequences = 1> {label = "layers.1.attention.k.append", layer = 1 : i64} : (memref<4x4xf32>) -> memref<9x4xf32>
    %layers_1_attention_v_cache = plan.buffer  kv_cache "layers.1.attention.v_cache" {slice = #plan.slice<"layers.1.attention.v_cache"[4, 9, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<9x4xf32>
    plan.kernel  kv_append(%layers_1_attention_v) -> (%layers_1_attention_v_cache) <first_position = 0, m = 4, n = 4, sequences = 1> {label = "layers.1.attention.v.append", layer = 1 : i64} : (memref<4x4xf32>) -> memref<9x4xf32>
    %layers_1_attention_o = plan.buffer  activation "layers.1.attention.o" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_attention_context, %layers_1_attention_wo) -> (%layers_1_attention_o) <k = 4, m = 4, n = 8> {label = "layers.1.attention.o", layer = 1 : i64} : (memref<4x4xf32>, memref<4x8xf32>) -> memref<4x8xf32>
    %layers_1_tp_reduce_scatter = plan.buffer  activation "layers.1.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_1_attention_o -> %layers_1_tp_reduce_scatter on "tp" count 16 {label = "layers.1.tp.reduce_scatter", layer = 1 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_1_residual_sum = plan.buffer  activation "layers.1.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%pipeline_recv, %layers_1_tp_reduce_scatter) -> (%layers_1_residual_sum) <n = 16> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %layers_1_norm2_out = plan.buffer  activation "layers.1.norm2.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_1_residual_sum, %layers_1_norm2_weight) -> (%layers_1_norm2_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.1.norm2.norm", layer = 1 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_1_tp_all_gather_2 = plan.buffer  activation "layers.1.tp.all_gather.2" : memref<4x8xf32>
    plan.all_gather %layers_1_norm2_out -> %layers_1_tp_all_gather_2 on "tp" count 16 {label = "layers.1.tp.all_gather", layer = 1 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_1_ffn_up = plan.buffer  activation "layers.1.ffn.up" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather_2, %layers_1_ffn_w_up) -> (%layers_1_ffn_up) <k = 8, m = 4, n = 8> {label = "layers.1.ffn.up", layer = 1 : i64} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %layers_1_ffn_act = plan.buffer  activation "layers.1.ffn.act" : memref<4x8xf32>
    plan.kernel  activation(%layers_1_ffn_up) -> (%layers_1_ffn_act) <activation = gelu, m = 4, n = 8> {label = "layers.1.ffn.act", layer = 1 : i64} : (memref<4x8xf32>) -> memref<4x8xf32>
    %layers_1_ffn_down = plan.buffer  activation "layers.1.ffn.down" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_ffn_act, %layers_1_ffn_w_down) -> (%layers_1_ffn_down) <k = 8, m = 4, n = 8> {label = "layers.1.ffn.down", layer = 1 : i64} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %layers_1_tp_reduce_scatter_2 = plan.buffer  activation "layers.1.tp.reduce_scatter.2" : memref<2x8xf32>
    plan.reduce_scatter %layers_1_ffn_down -> %layers_1_tp_reduce_scatter_2 on "tp" count 16 {label = "layers.1.tp.reduce_scatter", layer = 1 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_1_residual_sum_2 = plan.buffer  activation "layers.1.residual.sum.2" : memref<2x8xf32>
    plan.kernel  add(%layers_1_residual_sum, %layers_1_tp_reduce_scatter_2) -> (%layers_1_residual_sum_2) <n = 16> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %final_norm_out = plan.buffer  activation "final_norm.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_1_residual_sum_2, %final_norm_weight) -> (%final_norm_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "final_norm.norm"} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %head_tp_all_gather = plan.buffer  activation "head.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %final_norm_out -> %head_tp_all_gather on "tp" count 16 {label = "head.tp.all_gather", stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %lm_head_logits = plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[4, 4, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x8xf32>
    plan.kernel  gemm(%head_tp_all_gather, %lm_head_weight) -> (%lm_head_logits) <k = 8, m = 4, n = 8> {label = "lm_head.logits"} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %sample_pairs = plan.buffer  activation "sample.pairs" : memref<1x2xi32>
    plan.kernel  argmax(%lm_head_logits) -> (%sample_pairs) <n = 8, seq_len = 4, sequences = 1, vocab_end = 16> {label = "sample.argmax"} : (memref<4x8xf32>) -> memref<1x2xi32>
    %sample_tp_all_gather = plan.buffer  activation "sample.tp.all_gather" : memref<2x1x2xi32>
    plan.all_gather %sample_pairs -> %sample_tp_all_gather on "tp" count 2 {label = "sample.tp.all_gather", stream = 1 : i64} : memref<1x2xi32> -> memref<2x1x2xi32>
    %sample_ids = plan.buffer  activation "sample.ids" : memref<1xi32>
    %generated = plan.buffer  output "generated" {slice = #plan.slice<"generated"[4, 6] splits[<0 over "dp" parts 1>] mb 0>} : memref<6x1xi32>
    plan.kernel  argmax_merge(%sample_tp_all_gather) -> (%sample_ids, %generated) <first_position = 0, groups = 2, m = 1, n = 6> {label = "sample.merge"} : (memref<2x1x2xi32>) -> (memref<1xi32>, memref<6x1xi32>)
    plan.send %sample_ids to 0 on "pp" count 1 {feeds_next_step, label = "sample.send", stream = 2 : i64} : memref<1xi32>
    plan.decode_step
    %pipeline_recv_2 = plan.buffer  comm "pipeline.recv.2" : memref<1x8xf32>
    plan.recv %pipeline_recv_2 from 0 on "pp" count 8 {label = "pipeline.recv", stream = 2 : i64} : memref<1x8xf32>
    %layers_1_norm1_out_2 = plan.buffer  activation "layers.1.norm1.out.2" : memref<1x8xf32>
    plan.kernel  norm(%pipeline_recv_2, %layers_1_norm1_weight) -> (%layers_1_norm1_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.1.norm1.norm", layer = 1 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_1_attention_q_2 = plan.buffer  activation "layers.1.attention.q.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_1_norm1_out_2, %layers_1_attention_wq) -> (%layers_1_attention_q_2) <k = 8, m = 1, n = 4> {label = "layers.1.attention.q", layer = 1 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_1_attention_k_2 = plan.buffer  activation "layers.1.attention.k.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_1_norm1_out_2, %layers_1_attention_wk) -> (%layers_1_attention_k_2) <k = 8, m = 1, n = 4> {label = "layers.1.attention.k", layer = 1 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_1_attention_v_2 = plan.buffer  activation "layers.1.attention.v.2" : memref<1x4xf32>
    plan.kernel  gemm(%layers_1_norm1_out_2, %layers_1_attention_wv) -> (%layers_1_attention_v_2) <k = 8, m = 1, n = 4> {label = "layers.1.attention.v", layer = 1 : i64} : (memref<1x8xf32>, memref<8x4xf32>) -> memref<1x4xf32>
    %layers_1_attention_context_2 = plan.buffer  activation "layers.1.attention.context.2" : memref<1x4xf32>
    plan.kernel  attention(%layers_1_attention_q_2, %layers_1_attention_k_2, %layers_1_attention_v_2, %layers_1_attention_k_cache, %layers_1_attention_v_cache) -> (%layers_1_attention_context_2) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, per_step = true, seq_len = 1, sequences = 1> {label = "layers.1.attention.core", layer = 1 : i64} : (memref<1x4xf32>, memref<1x4xf32>, memref<1x4xf32>, memref<9x4xf32>, memref<9x4xf32>) -> memref<1x4xf32>
    plan.kernel  kv_append(%layers_1_attention_k_2) -> (%layers_1_attention_k_cache) <first_position = 4, m = 1, n = 4, per_step = true, sequences = 1> {label = "layers.1.attention.k.append", layer = 1 : i64} : (memref<1x4xf32>) -> memref<9x4xf32>
    plan.kernel  kv_append(%layers_1_attention_v_2) -> (%layers_1_attention_v_cache) <first_position = 4, m = 1, n = 4, per_step = true, sequences = 1> {label = "layers.1.attention.v.append", layer = 1 : i64} : (memref<1x4xf32>) -> memref<9x4xf32>
    %layers_1_attention_o_2 = plan.buffer  activation "layers.1.attention.o.2" : memref<1x8xf32>
    plan.kernel  gemm(%layers_1_attention_context_2, %layers_1_attention_wo) -> (%layers_1_attention_o_2) <k = 4, m = 1, n = 8> {label = "layers.1.attention.o", layer = 1 : i64} : (memref<1x4xf32>, memref<4x8xf32>) -> memref<1x8xf32>
    %layers_1_tp_all_reduce = plan.buffer  activation "layers.1.tp.all_reduce" : memref<1x8xf32>
    plan.all_reduce %layers_1_attention_o_2 -> %layers_1_tp_all_reduce on "tp" count 8 {label = "layers.1.tp.all_reduce", layer = 1 : i64, stream = 1 : i64} : memref<1x8xf32> -> memref<1x8xf32>
    %layers_1_residual_sum_3 = plan.buffer  activation "layers.1.residual.sum.3" : memref<1x8xf32>
    plan.kernel  add(%pipeline_recv_2, %layers_1_tp_all_reduce) -> (%layers_1_residual_sum_3) <n = 8> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_1_norm2_out_2 = plan.buffer  activation "layers.1.norm2.out.2" : memref<1x8xf32>
    plan.kernel  norm(%layers_1_residual_sum_3, %layers_1_norm2_weight) -> (%layers_1_norm2_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.1.norm2.norm", layer = 1 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_1_ffn_up_2 = plan.buffer  activation "layers.1.ffn.up.2" : memref<1x8xf32>
    plan.kernel  gemm(%layers_1_norm2_out_2, %layers_1_ffn_w_up) -> (%layers_1_ffn_up_2) <k = 8, m = 1, n = 8> {label = "layers.1.ffn.up", layer = 1 : i64} : (memref<1x8xf32>, memref<8x8xf32>) -> memref<1x8xf32>
    %layers_1_ffn_act_2 = plan.buffer  activation "layers.1.ffn.act.2" : memref<1x8xf32>
    plan.kernel  activation(%layers_1_ffn_up_2) -> (%layers_1_ffn_act_2) <activation = gelu, m = 1, n = 8> {label = "layers.1.ffn.act", layer = 1 : i64} : (memref<1x8xf32>) -> memref<1x8xf32>
    %layers_1_ffn_down_2 = plan.buffer  activation "layers.1.ffn.down.2" : memref<1x8xf32>
    plan.kernel  gemm(%layers_1_ffn_act_2, %layers_1_ffn_w_down) -> (%layers_1_ffn_down_2) <k = 8, m = 1, n = 8> {label = "layers.1.ffn.down", layer = 1 : i64} : (memref<1x8xf32>, memref<8x8xf32>) -> memref<1x8xf32>
    %layers_1_tp_all_reduce_2 = plan.buffer  activation "layers.1.tp.all_reduce.2" : memref<1x8xf32>
    plan.all_reduce %layers_1_ffn_down_2 -> %layers_1_tp_all_reduce_2 on "tp" count 8 {label = "layers.1.tp.all_reduce", layer = 1 : i64, stream = 1 : i64} : memref<1x8xf32> -> memref<1x8xf32>
    %layers_1_residual_sum_4 = plan.buffer  activation "layers.1.residual.sum.4" : memref<1x8xf32>
    plan.kernel  add(%layers_1_residual_sum_3, %layers_1_tp_all_reduce_2) -> (%layers_1_residual_sum_4) <n = 8> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %final_norm_out_2 = plan.buffer  activation "final_norm.out.2" : memref<1x8xf32>
    plan.kernel  norm(%layers_1_residual_sum_4, %final_norm_weight) -> (%final_norm_out_2) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "final_norm.norm"} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %lm_head_logits_2 = plan.buffer  output "lm_head.logits.2" {slice = #plan.slice<"step_logits"[4, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<1x8xf32>
    plan.kernel  gemm(%final_norm_out_2, %lm_head_weight) -> (%lm_head_logits_2) <k = 8, m = 1, n = 8> {label = "lm_head.logits"} : (memref<1x8xf32>, memref<8x8xf32>) -> memref<1x8xf32>
    %sample_pairs_2 = plan.buffer  activation "sample.pairs.2" : memref<1x2xi32>
    plan.kernel  argmax(%lm_head_logits_2) -> (%sample_pairs_2) <n = 8, seq_len = 1, sequences = 1, vocab_end = 16> {label = "sample.argmax"} : (memref<1x8xf32>) -> memref<1x2xi32>
    %sample_tp_all_gather_2 = plan.buffer  activation "sample.tp.all_gather.2" : memref<2x1x2xi32>
    plan.all_gather %sample_pairs_2 -> %sample_tp_all_gather_2 on "tp" count 2 {label = "sample.tp.all_gather", stream = 1 : i64} : memref<1x2xi32> -> memref<2x1x2xi32>
    %sample_ids_2 = plan.buffer  activation "sample.ids.2" : memref<1xi32>
    plan.kernel  argmax_merge(%sample_tp_all_gather_2) -> (%sample_ids_2, %generated) <first_position = 1, groups = 2, m = 1, n = 6, per_step = true> {label = "sample.merge"} : (memref<2x1x2xi32>) -> (memref<1xi32>, memref<6x1xi32>)
    plan.send %sample_ids_2 to 0 on "pp" count 1 {feeds_next_step, label = "sample.send", stream = 2 : i64} : memref<1xi32>
  }
}

// -----
// DUAL_MICRO_BATCH: micro_batches 1, run as the halves 0 and 1, interleaved at every
// collective. Half 0's all-gather is issued (stream 1), then half 1 computes up to its own
// all-gather while it runs; only then does half 0's next kernel wait for its all-gather's
// event. The all-to-alls alternate the same way, the halves' SENDs and RECVs go in order,
// and both halves' RECVs are posted before stage 1 computes.
// CHECK-LABEL: module @small_dual
// CHECK: plan.program @stage0
// CHECK: plan.all_gather %layers_0_norm1_out_mb0 {{.*}}record = [[AG0:[0-9]+]]{{.*}}stream = 1
// CHECK-NEXT: %layers_0_norm1_out_mb1 = plan.buffer
// CHECK-NEXT: plan.kernel  norm(%head_tp_reduce_scatter_mb1{{.*}}mb = 1
// CHECK-NEXT: %layers_0_tp_all_gather_mb1 = plan.buffer
// CHECK-NEXT: plan.all_gather %layers_0_norm1_out_mb1 {{.*}}mb = 1{{.*}}stream = 1
// CHECK-NEXT: %layers_0_attention_q_mb0 = plan.buffer
// CHECK-NEXT: plan.kernel  gemm(%layers_0_tp_all_gather_mb0{{.*}}waits = array<i64: [[AG0]]>
// CHECK: plan.all_to_all %layers_0_experts_dispatched_mb0
// CHECK-NOT: grouped_gemm
// CHECK: plan.kernel  dispatch({{.*}}mb = 1
// CHECK-NOT: grouped_gemm
// CHECK: plan.all_to_all %layers_0_experts_dispatched_mb1
// CHECK: plan.kernel  transpose(%layers_0_ep_all_to_all_recv_mb0
// CHECK: plan.send %layers_0_residual_sum_mb0
// CHECK: plan.send %layers_0_residual_sum_mb1
// CHECK: plan.program @stage1
// CHECK: plan.recv %pipeline_recv_mb0
// CHECK-NOT: plan.kernel
// CHECK: plan.recv %pipeline_recv_mb1
#loc = loc("small.textproto":5:1)
#loc1 = loc("small.textproto":6:3)
#loc2 = loc("small.textproto":6:49)
#loc3 = loc("small.textproto":6:78)
#loc4 = loc("small.textproto":6:35)
#loc5 = loc("small.textproto":6:26)
#loc6 = loc("small.textproto":6:9)
#loc7 = loc("small.textproto":5:20)
#loc8 = loc("small.textproto":7:3)
#loc9 = loc("small.textproto":7:16)
#loc10 = loc("small.textproto":7:40)
#loc11 = loc("small.textproto":5:11)
#loc12 = loc("small.textproto":2:1)
#loc13 = loc("small.textproto":4:9)
#loc14 = loc("small.textproto":2:19)
#loc15 = loc("small.textproto":3:55)
#loc16 = loc("small.textproto":4:41)
#loc17 = loc("small.textproto":3:9)
#loc18 = loc("small.textproto":2:63)
#loc19 = loc("small.textproto":2:39)
#loc20 = loc("small.textproto":2:30)
#loc21 = loc("small.textproto":2:51)
#loc22 = loc("small.textproto":2:9)
#loc23 = loc("small.textproto":3:27)
#loc24 = loc("small.textproto":3:40)
#loc25 = loc("small.textproto":3:76)
#loc26 = loc("small.textproto":2:74)
#loc27 = loc("small.textproto":4:26)
#loc28 = loc("small.textproto":1:1)
#loc29 = loc("small.textproto":9:1)
#loc30 = loc("small.textproto":9:66)
#loc31 = loc("small.textproto":9:24)
#loc32 = loc("small.textproto":9:30)
#loc33 = loc("small.textproto":9:36)
#loc34 = loc("small.textproto":9:49)
#loc35 = loc("small.textproto":9:18)
#loc36 = loc("small.textproto":9:85)
#loc37 = loc("small.textproto":9:12)
#loc38 = loc("small.textproto":8:1)
#loc39 = loc("small.textproto":8:36)
#loc40 = loc("small.textproto":8:25)
#loc41 = loc("small.textproto":8:12)
module @small_dual attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small_dual", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 1 : i64, overlap = "DUAL_MICRO_BATCH", pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {phase = "PREFILL", seq_len = 4 : i64, sequences = 2 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.phase = #loc39, workload.seq_len = #loc40, workload.sequences = #loc41}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">} {
  plan.group @tp_0 "tp" [0, 1]
  plan.group @tp_1 "tp" [2, 3]
  plan.group @dp_0 "dp" [0]
  plan.group @dp_1 "dp" [1]
  plan.group @dp_2 "dp" [2]
  plan.group @dp_3 "dp" [3]
  plan.group @pp_0 "pp" [0, 2]
  plan.group @pp_1 "pp" [1, 3]
  plan.group @ep_0 "ep" [0, 1]
  plan.group @ep_1 "ep" [2, 3]
  plan.group @etp_0 "etp" [0]
  plan.group @etp_1 "etp" [1]
  plan.group @etp_2 "etp" [2]
  plan.group @etp_3 "etp" [3]
  plan.group @edp_0 "edp" [0]
  plan.group @edp_1 "edp" [1]
  plan.group @edp_2 "edp" [2]
  plan.group @edp_3 "edp" [3]
  plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] {
    %embedding_weight = plan.buffer  weight "embedding.weight" {slice = #plan.slice<"embedding.weight"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_norm1_weight = plan.buffer  weight "layers.0.norm1.weight" {slice = #plan.slice<"layers.0.norm1.weight"[8]>} : memref<8xf32>
    %layers_0_attention_wq = plan.buffer  weight "layers.0.attention.wq" {slice = #plan.slice<"layers.0.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wk = plan.buffer  weight "layers.0.attention.wk" {slice = #plan.slice<"layers.0.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wv = plan.buffer  weight "layers.0.attention.wv" {slice = #plan.slice<"layers.0.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wo = plan.buffer  weight "layers.0.attention.wo" {slice = #plan.slice<"layers.0.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_0_norm2_weight = plan.buffer  weight "layers.0.norm2.weight" {slice = #plan.slice<"layers.0.norm2.weight"[8]>} : memref<8xf32>
    %layers_0_router_weight = plan.buffer  weight "layers.0.router.weight" {slice = #plan.slice<"layers.0.router.weight"[8, 4]>} : memref<8x4xf32>
    %layers_0_experts_w_up = plan.buffer  weight "layers.0.experts.w_up" {slice = #plan.slice<"layers.0.experts.w_up"[4, 8, 16] splits[<0 over "ep" parts 2>, <2 over "etp" parts 1>]>} : memref<2x8x16xf32>
    %layers_0_experts_w_down = plan.buffer  weight "layers.0.experts.w_down" {slice = #plan.slice<"layers.0.experts.w_down"[4, 16, 8] splits[<0 over "ep" parts 2>, <1 over "etp" parts 1>]>} : memref<2x16x8xf32>
    %tokens = plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[2, 4] splits[<0 over "dp" parts 1>] mb 0>} : memref<4xi32>
    %embedding_out = plan.buffer  activation "embedding.out" : memref<4x8xf32>
    plan.kernel  embedding(%tokens, %embedding_weight) -> (%embedding_out) <m = 4, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup"} : (memref<4xi32>, memref<8x8xf32>) -> memref<4x8xf32>
    %head_tp_reduce_scatter = plan.buffer  activation "head.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %embedding_out -> %head_tp_reduce_scatter on "tp" count 16 {label = "head.tp.reduce_scatter", stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_0_norm1_out = plan.buffer  activation "layers.0.norm1.out" : memref<2x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter, %layers_0_norm1_weight) -> (%layers_0_norm1_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_0_tp_all_gather = plan.buffer  activation "layers.0.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_0_norm1_out -> %layers_0_tp_all_gather on "tp" count 16 {label = "layers.0.tp.all_gather", layer = 0 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_0_attention_q = plan.buffer  activation "layers.0.attention.q" : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wq) -> (%layers_0_attention_q) <k = 8, m = 4, n = 4> {label = "layers.0.attention.q", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_k = plan.buffer  kv_cache "layers.0.attention.k" {slice = #plan.slice<"layers.0.attention.k_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wk) -> (%layers_0_attention_k) <k = 8, m = 4, n = 4> {label = "layers.0.attention.k", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_v = plan.buffer  kv_cache "layers.0.attention.v" {slice = #plan.slice<"layers.0.attention.v_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather, %layers_0_attention_wv) -> (%layers_0_attention_v) <k = 8, m = 4, n = 4> {label = "layers.0.attention.v", layer = 0 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_context = plan.buffer  activation "layers.0.attention.context" : memref<4x4xf32>
    plan.kernel  attention(%layers_0_attention_q, %layers_0_attention_k, %layers_0_attention_v) -> (%layers_0_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, seq_len = 4, sequences = 1> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<4x4xf32>, memref<4x4xf32>, memref<4x4xf32>) -> memref<4x4xf32>
    %layers_0_attention_o = plan.buffer  activation "layers.0.attention.o" : memref<4x8xf32>
    plan.kernel  gemm(%layers_0_attention_context, %layers_0_attention_wo) -> (%layers_0_attention_o) <k = 4, m = 4, n = 8> {label = "layers.0.attention.o", layer = 0 : i64} : (memref<4x4xf32>, memref<4x8xf32>) -> memref<4x8xf32>
    %layers_0_tp_reduce_scatter = plan.buffer  activation "layers.0.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_0_attention_o -> %layers_0_tp_reduce_scatter on "tp" count 16 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_0_residual_sum = plan.buffer  activation "layers.0.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter, %layers_0_tp_reduce_scatter) -> (%layers_0_residual_sum) <n = 16> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_norm2_out = plan.buffer  activation "layers.0.norm2.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_0_residual_sum, %layers_0_norm2_weight) -> (%layers_0_norm2_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_0_router_logits = plan.buffer  workspace "layers.0.router.logits" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_norm2_out, %layers_0_router_weight) -> (%layers_0_router_logits) <k = 8, m = 2, n = 4> {label = "layers.0.router.logits", layer = 0 : i64} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_router_indices = plan.buffer  activation "layers.0.router.indices" : memref<2x1xi32>
    %layers_0_router_gates = plan.buffer  activation "layers.0.router.gates" : memref<2x1xf32>
    plan.kernel  router(%layers_0_router_logits) -> (%layers_0_router_indices, %layers_0_router_gates) <experts = 4, tokens = 2, top_k = 1> {label = "layers.0.router.topk", layer = 0 : i64} : (memref<2x4xf32>) -> (memref<2x1xi32>, memref<2x1xf32>)
    %layers_0_experts_dispatched = plan.buffer  activation "layers.0.experts.dispatched" : memref<4x1x8xf32>
    %layers_0_experts_slots = plan.buffer  activation "layers.0.experts.slots" : memref<2x1xi32>
    plan.kernel  dispatch(%layers_0_norm2_out, %layers_0_router_indices) -> (%layers_0_experts_dispatched, %layers_0_experts_slots) <capacity = 1, experts = 4, n = 8, tokens = 2, top_k = 1> {label = "layers.0.experts.dispatch", layer = 0 : i64} : (memref<2x8xf32>, memref<2x1xi32>) -> (memref<4x1x8xf32>, memref<2x1xi32>)
    %layers_0_ep_all_to_all_recv = plan.buffer  activation "layers.0.ep.all_to_all.recv" : memref<2x2x1x8xf32>
    plan.all_to_all %layers_0_experts_dispatched -> %layers_0_ep_all_to_all_recv on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<4x1x8xf32> -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_regroup = plan.buffer  activation "layers.0.ep.all_to_all.regroup" : memref<2x2x8xf32>
    plan.kernel  transpose(%layers_0_ep_all_to_all_recv) -> (%layers_0_ep_all_to_all_regroup) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x1x8xf32>) -> memref<2x2x8xf32>
    %layers_0_experts_up = plan.buffer  activation "layers.0.experts.up" : memref<2x2x16xf32>
    plan.kernel  grouped_gemm(%layers_0_ep_all_to_all_regroup, %layers_0_experts_w_up) -> (%layers_0_experts_up) <groups = 2, k = 8, m = 2, n = 16> {label = "layers.0.experts.up", layer = 0 : i64} : (memref<2x2x8xf32>, memref<2x8x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_act = plan.buffer  activation "layers.0.experts.act" : memref<2x2x16xf32>
    plan.kernel  activation(%layers_0_experts_up) -> (%layers_0_experts_act) <activation = gelu, m = 4, n = 16> {label = "layers.0.experts.act", layer = 0 : i64} : (memref<2x2x16xf32>) -> memref<2x2x16xf32>
    %layers_0_experts_down = plan.buffer  activation "layers.0.experts.down" : memref<2x2x8xf32>
    plan.kernel  grouped_gemm(%layers_0_experts_act, %layers_0_experts_w_down) -> (%layers_0_experts_down) <groups = 2, k = 16, m = 2, n = 8> {label = "layers.0.experts.down", layer = 0 : i64} : (memref<2x2x16xf32>, memref<2x16x8xf32>) -> memref<2x2x8xf32>
    %layers_0_ep_all_to_all_regroup_0 = plan.buffer  activation "layers.0.ep.all_to_all.regroup" : memref<2x2x1x8xf32>
    plan.kernel  transpose(%layers_0_experts_down) -> (%layers_0_ep_all_to_all_regroup_0) <inner = 8, m = 2, n = 2> {label = "layers.0.ep.all_to_all.regroup", layer = 0 : i64} : (memref<2x2x8xf32>) -> memref<2x2x1x8xf32>
    %layers_0_ep_all_to_all_recv_1 = plan.buffer  activation "layers.0.ep.all_to_all.recv" : memref<4x1x8xf32>
    plan.all_to_all %layers_0_ep_all_to_all_regroup_0 -> %layers_0_ep_all_to_all_recv_1 on "ep" send [16, 16] recv [16, 16] count 32 {label = "layers.0.ep.all_to_all", layer = 0 : i64, stream = 1 : i64} : memref<2x2x1x8xf32> -> memref<4x1x8xf32>
    %layers_0_experts_combined = plan.buffer  activation "layers.0.experts.combined" : memref<2x8xf32>
    plan.kernel  combine(%layers_0_ep_all_to_all_recv_1, %layers_0_router_indices, %layers_0_experts_slots, %layers_0_router_gates) -> (%layers_0_experts_combined) <capacity = 1, experts = 4, n = 8, tokens = 2, top_k = 1> {label = "layers.0.experts.combine", layer = 0 : i64} : (memref<4x1x8xf32>, memref<2x1xi32>, memref<2x1xi32>, memref<2x1xf32>) -> memref<2x8xf32>
    %layers_0_residual_sum_2 = plan.buffer  activation "layers.0.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%layers_0_residual_sum, %layers_0_experts_combined) -> (%layers_0_residual_sum_2) <n = 16> {label = "layers.0.residual.add", layer = 0 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    plan.send %layers_0_residual_sum_2 to 1 on "pp" count 16 {label = "pipeline.send", stream = 2 : i64} : memref<2x8xf32>
  }
  plan.program @stage1 stage 1 layers[1, 2) ranks [2, 3] {
    %layers_1_norm1_weight = plan.buffer  weight "layers.1.norm1.weight" {slice = #plan.slice<"layers.1.norm1.weight"[8]>} : memref<8xf32>
    %layers_1_attention_wq = plan.buffer  weight "layers.1.attention.wq" {slice = #plan.slice<"layers.1.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wk = plan.buffer  weight "layers.1.attention.wk" {slice = #plan.slice<"layers.1.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wv = plan.buffer  weight "layers.1.attention.wv" {slice = #plan.slice<"layers.1.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_1_attention_wo = plan.buffer  weight "layers.1.attention.wo" {slice = #plan.slice<"layers.1.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_1_norm2_weight = plan.buffer  weight "layers.1.norm2.weight" {slice = #plan.slice<"layers.1.norm2.weight"[8]>} : memref<8xf32>
    %layers_1_ffn_w_up = plan.buffer  weight "layers.1.ffn.w_up" {slice = #plan.slice<"layers.1.ffn.w_up"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_1_ffn_w_down = plan.buffer  weight "layers.1.ffn.w_down" {slice = #plan.slice<"layers.1.ffn.w_down"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %final_norm_weight = plan.buffer  weight "final_norm.weight" {slice = #plan.slice<"final_norm.weight"[8]>} : memref<8xf32>
    %lm_head_weight = plan.buffer  weight "lm_head.weight" {slice = #plan.slice<"lm_head.weight"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %pipeline_recv = plan.buffer  comm "pipeline.recv" : memref<2x8xf32>
    plan.recv %pipeline_recv from 0 on "pp" count 16 {label = "pipeline.recv", stream = 2 : i64} : memref<2x8xf32>
    %layers_1_norm1_out = plan.buffer  activation "layers.1.norm1.out" : memref<2x8xf32>
    plan.kernel  norm(%pipeline_recv, %layers_1_norm1_weight) -> (%layers_1_norm1_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.1.norm1.norm", layer = 1 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_1_tp_all_gather = plan.buffer  activation "layers.1.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_1_norm1_out -> %layers_1_tp_all_gather on "tp" count 16 {label = "layers.1.tp.all_gather", layer = 1 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_1_attention_q = plan.buffer  activation "layers.1.attention.q" : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wq) -> (%layers_1_attention_q) <k = 8, m = 4, n = 4> {label = "layers.1.attention.q", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_k = plan.buffer  kv_cache "layers.1.attention.k" {slice = #plan.slice<"layers.1.attention.k_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wk) -> (%layers_1_attention_k) <k = 8, m = 4, n = 4> {label = "layers.1.attention.k", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_v = plan.buffer  kv_cache "layers.1.attention.v" {slice = #plan.slice<"layers.1.attention.v_cache"[2, 4, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x4xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather, %layers_1_attention_wv) -> (%layers_1_attention_v) <k = 8, m = 4, n = 4> {label = "layers.1.attention.v", layer = 1 : i64} : (memref<4x8xf32>, memref<8x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_context = plan.buffer  activation "layers.1.attention.context" : memref<4x4xf32>
    plan.kernel  attention(%layers_1_attention_q, %layers_1_attention_k, %layers_1_attention_v) -> (%layers_1_attention_context) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 4, seq_len = 4, sequences = 1> {label = "layers.1.attention.core", layer = 1 : i64} : (memref<4x4xf32>, memref<4x4xf32>, memref<4x4xf32>) -> memref<4x4xf32>
    %layers_1_attention_o = plan.buffer  activation "layers.1.attention.o" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_attention_context, %layers_1_attention_wo) -> (%layers_1_attention_o) <k = 4, m = 4, n = 8> {label = "layers.1.attention.o", layer = 1 : i64} : (memref<4x4xf32>, memref<4x8xf32>) -> memref<4x8xf32>
    %layers_1_tp_reduce_scatter = plan.buffer  activation "layers.1.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_1_attention_o -> %layers_1_tp_reduce_scatter on "tp" count 16 {label = "layers.1.tp.reduce_scatter", layer = 1 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_1_residual_sum = plan.buffer  activation "layers.1.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%pipeline_recv, %layers_1_tp_reduce_scatter) -> (%layers_1_residual_sum) <n = 16> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %layers_1_norm2_out = plan.buffer  activation "layers.1.norm2.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_1_residual_sum, %layers_1_norm2_weight) -> (%layers_1_norm2_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "layers.1.norm2.norm", layer = 1 : i64} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %layers_1_tp_all_gather_0 = plan.buffer  activation "layers.1.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %layers_1_norm2_out -> %layers_1_tp_all_gather_0 on "tp" count 16 {label = "layers.1.tp.all_gather", layer = 1 : i64, stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %layers_1_ffn_up = plan.buffer  activation "layers.1.ffn.up" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_tp_all_gather_0, %layers_1_ffn_w_up) -> (%layers_1_ffn_up) <k = 8, m = 4, n = 8> {label = "layers.1.ffn.up", layer = 1 : i64} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %layers_1_ffn_act = plan.buffer  activation "layers.1.ffn.act" : memref<4x8xf32>
    plan.kernel  activation(%layers_1_ffn_up) -> (%layers_1_ffn_act) <activation = gelu, m = 4, n = 8> {label = "layers.1.ffn.act", layer = 1 : i64} : (memref<4x8xf32>) -> memref<4x8xf32>
    %layers_1_ffn_down = plan.buffer  activation "layers.1.ffn.down" : memref<4x8xf32>
    plan.kernel  gemm(%layers_1_ffn_act, %layers_1_ffn_w_down) -> (%layers_1_ffn_down) <k = 8, m = 4, n = 8> {label = "layers.1.ffn.down", layer = 1 : i64} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
    %layers_1_tp_reduce_scatter_1 = plan.buffer  activation "layers.1.tp.reduce_scatter" : memref<2x8xf32>
    plan.reduce_scatter %layers_1_ffn_down -> %layers_1_tp_reduce_scatter_1 on "tp" count 16 {label = "layers.1.tp.reduce_scatter", layer = 1 : i64, stream = 1 : i64} : memref<4x8xf32> -> memref<2x8xf32>
    %layers_1_residual_sum_2 = plan.buffer  activation "layers.1.residual.sum" : memref<2x8xf32>
    plan.kernel  add(%layers_1_residual_sum, %layers_1_tp_reduce_scatter_1) -> (%layers_1_residual_sum_2) <n = 16> {label = "layers.1.residual.add", layer = 1 : i64} : (memref<2x8xf32>, memref<2x8xf32>) -> memref<2x8xf32>
    %final_norm_out = plan.buffer  activation "final_norm.out" : memref<2x8xf32>
    plan.kernel  norm(%layers_1_residual_sum_2, %final_norm_weight) -> (%final_norm_out) <epsilon = 1.000000e-05, m = 2, n = 8, norm = rms_norm> {label = "final_norm.norm"} : (memref<2x8xf32>, memref<8xf32>) -> memref<2x8xf32>
    %head_tp_all_gather = plan.buffer  activation "head.tp.all_gather" : memref<4x8xf32>
    plan.all_gather %final_norm_out -> %head_tp_all_gather on "tp" count 16 {label = "head.tp.all_gather", stream = 1 : i64} : memref<2x8xf32> -> memref<4x8xf32>
    %lm_head_logits = plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[2, 4, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x8xf32>
    plan.kernel  gemm(%head_tp_all_gather, %lm_head_weight) -> (%lm_head_logits) <k = 8, m = 4, n = 8> {label = "lm_head.logits"} : (memref<4x8xf32>, memref<8x8xf32>) -> memref<4x8xf32>
  }
}
