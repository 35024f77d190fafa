// RUN: moeplan-opt %s --plan-cost --split-input-file --verify-diagnostics | FileCheck %s

// GEMM [4, 16] x [16, 8]: 2 x 4 x 8 x 16 FLOPs, the model's too; it moves (64 + 128 + 32)
// x 4 bytes.
// CHECK: plan.kernel  gemm{{.*}}cost = #plan.cost<flops = 1024, memory_bytes = 896, comm_bytes = 0, model_flops = 1024>
// Grouped GEMM of 2 groups (not routed): twice that.
// CHECK: plan.kernel  grouped_gemm{{.*}}cost = #plan.cost<flops = 2048, memory_bytes = 1792, comm_bytes = 0, model_flops = 2048>
// Causal attention, 2 sequences x 2 heads x 8 queries x head_dim 4: query i sees i + 1 keys,
// 36 (query, key) pairs, each 2 x 4 FLOPs in QK^T and in PV: 4 x 2 x 2 x 36 x 4 = 2304
// executed. The model counts all 8 x 8 pairs: 4096. It reads q, k, v and writes o (no score
// matrix in memory).
// CHECK: plan.kernel  attention{{.*}}cost = #plan.cost<flops = 2304, memory_bytes = 2048, comm_bytes = 0, model_flops = 4096>
// Elementwise work is costed by bytes alone.
// CHECK: plan.kernel  add{{.*}}cost = #plan.cost<flops = 0, memory_bytes = 384, comm_bytes = 0>
// nccl-tests S: the gathered output (all-gather), the whole input (reduce-scatter,
// all-to-all), the buffer (send).
// CHECK: plan.all_gather {{.*}}cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 256>
// CHECK: plan.reduce_scatter {{.*}}cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 256>
// CHECK: plan.all_to_all {{.*}}cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 128>
// CHECK: plan.send {{.*}}cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 128>
module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4x16xf32>
    %b = plan.buffer  weight "b" : memref<16x8xf32>
    %c = plan.buffer  activation "c" : memref<4x8xf32>
    %ga = plan.buffer  activation "ga" : memref<2x4x16xf32>
    %gb = plan.buffer  weight "gb" : memref<2x16x8xf32>
    %gc = plan.buffer  activation "gc" : memref<2x4x8xf32>
    %q = plan.buffer  activation "q" : memref<16x8xf32>
    %o = plan.buffer  activation "o" : memref<16x8xf32>
    %x = plan.buffer  activation "x" : memref<32xf32>
    %big = plan.buffer  activation "big" : memref<64xf32>
    plan.kernel  gemm(%a, %b) -> (%c) <k = 16, m = 4, n = 8> {label = "g"} : (memref<4x16xf32>, memref<16x8xf32>) -> memref<4x8xf32>
    plan.kernel  grouped_gemm(%ga, %gb) -> (%gc) <groups = 2, k = 16, m = 4, n = 8> {label = "gg"} : (memref<2x4x16xf32>, memref<2x16x8xf32>) -> memref<2x4x8xf32>
    plan.kernel  attention(%q, %q, %q) -> (%o) <head_dim = 4, heads = 2, kv_heads = 2, kv_len = 8, seq_len = 8, sequences = 2> {label = "att"} : (memref<16x8xf32>, memref<16x8xf32>, memref<16x8xf32>) -> memref<16x8xf32>
    plan.kernel  add(%x, %x) -> (%x) <n = 32> {label = "add"} : (memref<32xf32>, memref<32xf32>) -> memref<32xf32>
    plan.all_gather %x -> %big on "tp" count 32 {label = "ag", stream = 1 : i64} : memref<32xf32> -> memref<64xf32>
    plan.reduce_scatter %big -> %x on "tp" count 32 {label = "rs", stream = 1 : i64} : memref<64xf32> -> memref<32xf32>
    plan.all_to_all %x -> %x on "ep" send [16, 16] recv [16, 16] count 32 {label = "a2a", stream = 1 : i64} : memref<32xf32> -> memref<32xf32>
    plan.send %x to 1 on "pp" count 32 {label = "s", stream = 2 : i64} : memref<32xf32>
  }
}

// -----

// Attention FLOPs 4 x S x H x L x L x d past 2^63: the pass fails naming the kernel
// instead of writing a wrapped figure.
module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %q = plan.buffer  activation "q" : memref<8388608x268435456xf32>
    %o = plan.buffer  activation "o" : memref<8388608x268435456xf32>
    // expected-error @below {{plan-cost: the instruction's FLOPs or bytes overflow 64 bits}}
    plan.kernel  attention(%q, %q, %q) -> (%o) <head_dim = 4096, heads = 65536, kv_heads = 65536, kv_len = 4194304, seq_len = 4194304, sequences = 2> {label = "att"} : (memref<8388608x268435456xf32>, memref<8388608x268435456xf32>, memref<8388608x268435456xf32>) -> memref<8388608x268435456xf32>
  }
}

// -----

// A decode step's attention reads kv_len = 3 cached positions of each cache, not the whole
// 7-position buffer: 4 x 2 sequences x 1 head x (3 + 1) keys x 4 = 128 FLOPs, and q, k, v,
// out 32 B each + 2 caches x 3 x 2 x 4 x 4 B = 320 B. Each later step adds one position:
// 32 FLOPs and 64 B (step_cost). KV_APPEND moves its rows, not the cache.
// CHECK-LABEL: module @gen
// CHECK: plan.decode_step
// A decode query sees every cached key: executed and model FLOPs agree.
// CHECK: plan.kernel  attention({{.*}} {cost = #plan.cost<flops = 128, memory_bytes = 320, comm_bytes = 0, model_flops = 128>, {{.*}}step_cost = #plan.cost<flops = 32, memory_bytes = 64, comm_bytes = 0, model_flops = 32>}
// CHECK-NEXT: plan.kernel  kv_append({{.*}} {cost = #plan.cost<flops = 0, memory_bytes = 64, comm_bytes = 0>, {{.*}}step_cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 0>}
// Greedy sampling counts what it touches: ARGMAX the last position's logits (2 x 8 x 4 B)
// and its pairs (16 B); ARGMAX_MERGE the gathered pairs (32 B), the ids (8 B) and one column
// of "generated" (2 x 4 B), not the whole [2, 5].
// CHECK: plan.kernel  argmax({{.*}} {cost = #plan.cost<flops = 0, memory_bytes = 80, comm_bytes = 0>
// CHECK: plan.kernel  argmax_merge({{.*}} {cost = #plan.cost<flops = 0, memory_bytes = 48, comm_bytes = 0>{{.*}}step_cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 0>
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
  plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] attributes {arena_bytes = 7680 : i64} {
    %embedding_weight = plan.buffer  weight "embedding.weight" {live = array<i64: 0, 111>, offset = 0 : i64, slice = #plan.slice<"embedding.weight"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_norm1_weight = plan.buffer  weight "layers.0.norm1.weight" {live = array<i64: 0, 111>, offset = 256 : i64, slice = #plan.slice<"layers.0.norm1.weight"[8]>} : memref<8xf32>
    %layers_0_attention_wq = plan.buffer  weight "layers.0.attention.wq" {live = array<i64: 0, 111>, offset = 512 : i64, slice = #plan.slice<"layers.0.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wk = plan.buffer  weight "layers.0.attention.wk" {live = array<i64: 0, 111>, offset = 768 : i64, slice = #plan.slice<"layers.0.attention.wk"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wv = plan.buffer  weight "layers.0.attention.wv" {live = array<i64: 0, 111>, offset = 1024 : i64, slice = #plan.slice<"layers.0.attention.wv"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
    %layers_0_attention_wo = plan.buffer  weight "layers.0.attention.wo" {live = array<i64: 0, 111>, offset = 1280 : i64, slice = #plan.slice<"layers.0.attention.wo"[8, 8] splits[<0 over "tp" parts 2>]>} : memref<4x8xf32>
    %layers_0_norm2_weight = plan.buffer  weight "layers.0.norm2.weight" {live = array<i64: 0, 111>, offset = 1536 : i64, slice = #plan.slice<"layers.0.norm2.weight"[8]>} : memref<8xf32>
    %layers_0_ffn_w_up = plan.buffer  weight "layers.0.ffn.w_up" {live = array<i64: 0, 111>, offset = 1792 : i64, slice = #plan.slice<"layers.0.ffn.w_up"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %layers_0_ffn_w_down = plan.buffer  weight "layers.0.ffn.w_down" {live = array<i64: 0, 111>, offset = 2048 : i64, slice = #plan.slice<"layers.0.ffn.w_down"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
    %final_norm_weight = plan.buffer  weight "final_norm.weight" {live = array<i64: 0, 111>, offset = 2304 : i64, slice = #plan.slice<"final_norm.weight"[8]>} : memref<8xf32>
    %lm_head_weight = plan.buffer  weight "lm_head.weight" {live = array<i64: 0, 111>, offset = 2560 : i64, slice = #plan.slice<"lm_head.weight"[8, 16] splits[<1 over "tp" parts 2>]>} : memref<8x8xf32>
    %tokens_mb0 = plan.buffer  input "tokens.mb0" {live = array<i64: 0, 111>, offset = 2816 : i64, slice = #plan.slice<"tokens"[4, 3] splits[<0 over "dp" parts 1>] mb 0>} : memref<6xi32>
    %embedding_out_mb0 = plan.buffer  activation "embedding.out.mb0" {live = array<i64: 0, 1>, offset = 6400 : i64} : memref<6x8xf32>
    plan.kernel  embedding(%tokens_mb0, %embedding_weight) -> (%embedding_out_mb0) <m = 6, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", record = 1 : i64} : (memref<6xi32>, memref<8x8xf32>) -> memref<6x8xf32>
    %head_tp_reduce_scatter_mb0 = plan.buffer  activation "head.tp.reduce_scatter.mb0" {live = array<i64: 1, 14>, offset = 6656 : i64} : memref<3x8xf32>
    plan.reduce_scatter %embedding_out_mb0 -> %head_tp_reduce_scatter_mb0 on "tp" count 24 {label = "head.tp.reduce_scatter", record = 2 : i64, sequence = 0 : i64, stream = 1 : i64, waits = array<i64: 1>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_norm1_out_mb0 = plan.buffer  activation "layers.0.norm1.out.mb0" {live = array<i64: 2, 3>, offset = 6400 : i64} : memref<3x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_mb0, %layers_0_norm1_weight) -> (%layers_0_norm1_out_mb0) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, record = 3 : i64, waits = array<i64: 2>} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_mb0 = plan.buffer  activation "layers.0.tp.all_gather.mb0" {live = array<i64: 3, 6>, offset = 6912 : i64} : memref<6x8xf32>
    plan.all_gather %layers_0_norm1_out_mb0 -> %layers_0_tp_all_gather_mb0 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 4 : i64, sequence = 1 : i64, stream = 1 : i64, waits = array<i64: 3>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_attention_q_mb0 = plan.buffer  activation "layers.0.attention.q.mb0" {live = array<i64: 4, 9>, offset = 6400 : i64} : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb0, %layers_0_attention_wq) -> (%layers_0_attention_q_mb0) <k = 8, m = 6, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, waits = array<i64: 4>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_mb0 = plan.buffer  activation "layers.0.attention.k.mb0" {live = array<i64: 5, 10>, offset = 7168 : i64} : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb0, %layers_0_attention_wk) -> (%layers_0_attention_k_mb0) <k = 8, m = 6, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, waits = array<i64: 4>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_v_mb0 = plan.buffer  activation "layers.0.attention.v.mb0" {live = array<i64: 6, 11>, offset = 7424 : i64} : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb0, %layers_0_attention_wv) -> (%layers_0_attention_v_mb0) <k = 8, m = 6, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, waits = array<i64: 4>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_q_mb0) -> (%layers_0_attention_q_mb0) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_k_mb0) -> (%layers_0_attention_k_mb0) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_context_mb0 = plan.buffer  activation "layers.0.attention.context.mb0" {live = array<i64: 9, 12>, offset = 6912 : i64} : memref<6x4xf32>
    plan.kernel  attention(%layers_0_attention_q_mb0, %layers_0_attention_k_mb0, %layers_0_attention_v_mb0) -> (%layers_0_attention_context_mb0) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, seq_len = 3, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<6x4xf32>, memref<6x4xf32>, memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_cache_mb0 = plan.buffer  kv_cache "layers.0.attention.k_cache.mb0" {live = array<i64: 0, 111>, offset = 3072 : i64, slice = #plan.slice<"layers.0.attention.k_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_mb0) -> (%layers_0_attention_k_cache_mb0) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_v_cache_mb0 = plan.buffer  kv_cache "layers.0.attention.v_cache.mb0" {live = array<i64: 0, 111>, offset = 3328 : i64, slice = #plan.slice<"layers.0.attention.v_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_mb0) -> (%layers_0_attention_v_cache_mb0) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_mb0 = plan.buffer  activation "layers.0.attention.o.mb0" {live = array<i64: 12, 13>, offset = 6400 : i64} : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_mb0, %layers_0_attention_wo) -> (%layers_0_attention_o_mb0) <k = 4, m = 6, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, record = 5 : i64} : (memref<6x4xf32>, memref<4x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.mb0" {live = array<i64: 13, 14>, offset = 6912 : i64} : memref<3x8xf32>
    plan.reduce_scatter %layers_0_attention_o_mb0 -> %layers_0_tp_reduce_scatter_mb0 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 6 : i64, sequence = 2 : i64, stream = 1 : i64, waits = array<i64: 5>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_mb0 = plan.buffer  activation "layers.0.residual.sum.mb0" {live = array<i64: 14, 21>, offset = 6400 : i64} : memref<3x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_mb0, %layers_0_tp_reduce_scatter_mb0) -> (%layers_0_residual_sum_mb0) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 6>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %layers_0_norm2_out_mb0 = plan.buffer  activation "layers.0.norm2.out.mb0" {live = array<i64: 15, 16>, offset = 6656 : i64} : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_mb0, %layers_0_norm2_weight) -> (%layers_0_norm2_out_mb0) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, record = 7 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_2_mb0 = plan.buffer  activation "layers.0.tp.all_gather.2.mb0" {live = array<i64: 16, 17>, offset = 6912 : i64} : memref<6x8xf32>
    plan.all_gather %layers_0_norm2_out_mb0 -> %layers_0_tp_all_gather_2_mb0 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 8 : i64, sequence = 3 : i64, stream = 1 : i64, waits = array<i64: 7>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_ffn_up_mb0 = plan.buffer  activation "layers.0.ffn.up.mb0" {live = array<i64: 17, 18>, offset = 6656 : i64} : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_2_mb0, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_mb0) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, waits = array<i64: 8>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_act_mb0 = plan.buffer  activation "layers.0.ffn.act.mb0" {live = array<i64: 18, 19>, offset = 6912 : i64} : memref<6x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_mb0) -> (%layers_0_ffn_act_mb0) <activation = gelu, m = 6, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64} : (memref<6x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_down_mb0 = plan.buffer  activation "layers.0.ffn.down.mb0" {live = array<i64: 19, 20>, offset = 6656 : i64} : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_mb0, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_mb0) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, record = 9 : i64} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_2_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.2.mb0" {live = array<i64: 20, 21>, offset = 6912 : i64} : memref<3x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_mb0 -> %layers_0_tp_reduce_scatter_2_mb0 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 10 : i64, sequence = 4 : i64, stream = 1 : i64, waits = array<i64: 9>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_2_mb0 = plan.buffer  activation "layers.0.residual.sum.2.mb0" {live = array<i64: 21, 22>, offset = 6656 : i64} : memref<3x8xf32>
    plan.kernel  add(%layers_0_residual_sum_mb0, %layers_0_tp_reduce_scatter_2_mb0) -> (%layers_0_residual_sum_2_mb0) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 10>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %final_norm_out_mb0 = plan.buffer  activation "final_norm.out.mb0" {live = array<i64: 22, 23>, offset = 6400 : i64} : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_2_mb0, %final_norm_weight) -> (%final_norm_out_mb0) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "final_norm.norm", record = 11 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %head_tp_all_gather_mb0 = plan.buffer  activation "head.tp.all_gather.mb0" {live = array<i64: 23, 24>, offset = 6656 : i64} : memref<6x8xf32>
    plan.all_gather %final_norm_out_mb0 -> %head_tp_all_gather_mb0 on "tp" count 24 {label = "head.tp.all_gather", record = 12 : i64, sequence = 5 : i64, stream = 1 : i64, waits = array<i64: 11>} : memref<3x8xf32> -> memref<6x8xf32>
    %lm_head_logits_mb0 = plan.buffer  output "lm_head.logits.mb0" {live = array<i64: 0, 111>, offset = 3584 : i64, slice = #plan.slice<"logits"[4, 3, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<6x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_mb0, %lm_head_weight) -> (%lm_head_logits_mb0) <k = 8, m = 6, n = 8> {label = "lm_head.logits", waits = array<i64: 12>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %sample_pairs_mb0 = plan.buffer  activation "sample.pairs.mb0" {live = array<i64: 25, 26>, offset = 6400 : i64} : memref<2x2xi32>
    plan.kernel  argmax(%lm_head_logits_mb0) -> (%sample_pairs_mb0) <n = 8, seq_len = 3, sequences = 2, vocab_end = 16> {label = "sample.argmax", record = 13 : i64} : (memref<6x8xf32>) -> memref<2x2xi32>
    %sample_tp_all_gather_mb0 = plan.buffer  activation "sample.tp.all_gather.mb0" {live = array<i64: 26, 27>, offset = 6656 : i64} : memref<2x2x2xi32>
    plan.all_gather %sample_pairs_mb0 -> %sample_tp_all_gather_mb0 on "tp" count 4 {label = "sample.tp.all_gather", record = 14 : i64, sequence = 6 : i64, stream = 1 : i64, waits = array<i64: 13>} : memref<2x2xi32> -> memref<2x2x2xi32>
    %step_tokens_mb0 = plan.buffer  input "step_tokens.mb0" {live = array<i64: 0, 111>, offset = 3840 : i64, slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 0>} : memref<2xi32>
    %generated_mb0 = plan.buffer  output "generated.mb0" {live = array<i64: 0, 111>, offset = 4096 : i64, slice = #plan.slice<"generated"[4, 5] splits[<0 over "dp" parts 1>] mb 0>} : memref<2x5xi32>
    plan.kernel  argmax_merge(%sample_tp_all_gather_mb0) -> (%step_tokens_mb0, %generated_mb0) <first_position = 0, groups = 2, m = 2, n = 5> {label = "sample.merge", waits = array<i64: 14>} : (memref<2x2x2xi32>) -> (memref<2xi32>, memref<2x5xi32>)
    %tokens_mb1 = plan.buffer  input "tokens.mb1" {live = array<i64: 0, 111>, offset = 4352 : i64, slice = #plan.slice<"tokens"[4, 3] splits[<0 over "dp" parts 1>] mb 1>} : memref<6xi32>
    %embedding_out_mb1 = plan.buffer  activation "embedding.out.mb1" {live = array<i64: 28, 29>, offset = 6400 : i64} : memref<6x8xf32>
    plan.kernel  embedding(%tokens_mb1, %embedding_weight) -> (%embedding_out_mb1) <m = 6, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", mb = 1 : i64, record = 15 : i64} : (memref<6xi32>, memref<8x8xf32>) -> memref<6x8xf32>
    %head_tp_reduce_scatter_mb1 = plan.buffer  activation "head.tp.reduce_scatter.mb1" {live = array<i64: 29, 42>, offset = 6656 : i64} : memref<3x8xf32>
    plan.reduce_scatter %embedding_out_mb1 -> %head_tp_reduce_scatter_mb1 on "tp" count 24 {label = "head.tp.reduce_scatter", mb = 1 : i64, record = 16 : i64, sequence = 7 : i64, stream = 1 : i64, waits = array<i64: 15>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_norm1_out_mb1 = plan.buffer  activation "layers.0.norm1.out.mb1" {live = array<i64: 30, 31>, offset = 6400 : i64} : memref<3x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_mb1, %layers_0_norm1_weight) -> (%layers_0_norm1_out_mb1) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, mb = 1 : i64, record = 17 : i64, waits = array<i64: 16>} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_mb1 = plan.buffer  activation "layers.0.tp.all_gather.mb1" {live = array<i64: 31, 34>, offset = 6912 : i64} : memref<6x8xf32>
    plan.all_gather %layers_0_norm1_out_mb1 -> %layers_0_tp_all_gather_mb1 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 18 : i64, sequence = 8 : i64, stream = 1 : i64, waits = array<i64: 17>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_attention_q_mb1 = plan.buffer  activation "layers.0.attention.q.mb1" {live = array<i64: 32, 37>, offset = 6400 : i64} : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb1, %layers_0_attention_wq) -> (%layers_0_attention_q_mb1) <k = 8, m = 6, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 18>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_mb1 = plan.buffer  activation "layers.0.attention.k.mb1" {live = array<i64: 33, 38>, offset = 7168 : i64} : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb1, %layers_0_attention_wk) -> (%layers_0_attention_k_mb1) <k = 8, m = 6, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 18>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_v_mb1 = plan.buffer  activation "layers.0.attention.v.mb1" {live = array<i64: 34, 39>, offset = 7424 : i64} : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb1, %layers_0_attention_wv) -> (%layers_0_attention_v_mb1) <k = 8, m = 6, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 18>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_q_mb1) -> (%layers_0_attention_q_mb1) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_k_mb1) -> (%layers_0_attention_k_mb1) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_context_mb1 = plan.buffer  activation "layers.0.attention.context.mb1" {live = array<i64: 37, 40>, offset = 6912 : i64} : memref<6x4xf32>
    plan.kernel  attention(%layers_0_attention_q_mb1, %layers_0_attention_k_mb1, %layers_0_attention_v_mb1) -> (%layers_0_attention_context_mb1) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, seq_len = 3, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>, memref<6x4xf32>, memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_cache_mb1 = plan.buffer  kv_cache "layers.0.attention.k_cache.mb1" {live = array<i64: 0, 111>, offset = 4608 : i64, slice = #plan.slice<"layers.0.attention.k_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_mb1) -> (%layers_0_attention_k_cache_mb1) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_v_cache_mb1 = plan.buffer  kv_cache "layers.0.attention.v_cache.mb1" {live = array<i64: 0, 111>, offset = 4864 : i64, slice = #plan.slice<"layers.0.attention.v_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_mb1) -> (%layers_0_attention_v_cache_mb1) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_mb1 = plan.buffer  activation "layers.0.attention.o.mb1" {live = array<i64: 40, 41>, offset = 6400 : i64} : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_mb1, %layers_0_attention_wo) -> (%layers_0_attention_o_mb1) <k = 4, m = 6, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, mb = 1 : i64, record = 19 : i64} : (memref<6x4xf32>, memref<4x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.mb1" {live = array<i64: 41, 42>, offset = 6912 : i64} : memref<3x8xf32>
    plan.reduce_scatter %layers_0_attention_o_mb1 -> %layers_0_tp_reduce_scatter_mb1 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 20 : i64, sequence = 9 : i64, stream = 1 : i64, waits = array<i64: 19>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_mb1 = plan.buffer  activation "layers.0.residual.sum.mb1" {live = array<i64: 42, 49>, offset = 6400 : i64} : memref<3x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_mb1, %layers_0_tp_reduce_scatter_mb1) -> (%layers_0_residual_sum_mb1) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 20>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %layers_0_norm2_out_mb1 = plan.buffer  activation "layers.0.norm2.out.mb1" {live = array<i64: 43, 44>, offset = 6656 : i64} : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_mb1, %layers_0_norm2_weight) -> (%layers_0_norm2_out_mb1) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, mb = 1 : i64, record = 21 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_2_mb1 = plan.buffer  activation "layers.0.tp.all_gather.2.mb1" {live = array<i64: 44, 45>, offset = 6912 : i64} : memref<6x8xf32>
    plan.all_gather %layers_0_norm2_out_mb1 -> %layers_0_tp_all_gather_2_mb1 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 22 : i64, sequence = 10 : i64, stream = 1 : i64, waits = array<i64: 21>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_ffn_up_mb1 = plan.buffer  activation "layers.0.ffn.up.mb1" {live = array<i64: 45, 46>, offset = 6656 : i64} : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_2_mb1, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_mb1) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 22>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_act_mb1 = plan.buffer  activation "layers.0.ffn.act.mb1" {live = array<i64: 46, 47>, offset = 6912 : i64} : memref<6x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_mb1) -> (%layers_0_ffn_act_mb1) <activation = gelu, m = 6, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64, mb = 1 : i64} : (memref<6x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_down_mb1 = plan.buffer  activation "layers.0.ffn.down.mb1" {live = array<i64: 47, 48>, offset = 6656 : i64} : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_mb1, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_mb1) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, mb = 1 : i64, record = 23 : i64} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_2_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.2.mb1" {live = array<i64: 48, 49>, offset = 6912 : i64} : memref<3x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_mb1 -> %layers_0_tp_reduce_scatter_2_mb1 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 24 : i64, sequence = 11 : i64, stream = 1 : i64, waits = array<i64: 23>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_2_mb1 = plan.buffer  activation "layers.0.residual.sum.2.mb1" {live = array<i64: 49, 50>, offset = 6656 : i64} : memref<3x8xf32>
    plan.kernel  add(%layers_0_residual_sum_mb1, %layers_0_tp_reduce_scatter_2_mb1) -> (%layers_0_residual_sum_2_mb1) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 24>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %final_norm_out_mb1 = plan.buffer  activation "final_norm.out.mb1" {live = array<i64: 50, 51>, offset = 6400 : i64} : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_2_mb1, %final_norm_weight) -> (%final_norm_out_mb1) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "final_norm.norm", mb = 1 : i64, record = 25 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %head_tp_all_gather_mb1 = plan.buffer  activation "head.tp.all_gather.mb1" {live = array<i64: 51, 52>, offset = 6656 : i64} : memref<6x8xf32>
    plan.all_gather %final_norm_out_mb1 -> %head_tp_all_gather_mb1 on "tp" count 24 {label = "head.tp.all_gather", mb = 1 : i64, record = 26 : i64, sequence = 12 : i64, stream = 1 : i64, waits = array<i64: 25>} : memref<3x8xf32> -> memref<6x8xf32>
    %lm_head_logits_mb1 = plan.buffer  output "lm_head.logits.mb1" {live = array<i64: 0, 111>, offset = 5120 : i64, slice = #plan.slice<"logits"[4, 3, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<6x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_mb1, %lm_head_weight) -> (%lm_head_logits_mb1) <k = 8, m = 6, n = 8> {label = "lm_head.logits", mb = 1 : i64, waits = array<i64: 26>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %sample_pairs_mb1 = plan.buffer  activation "sample.pairs.mb1" {live = array<i64: 53, 54>, offset = 6400 : i64} : memref<2x2xi32>
    plan.kernel  argmax(%lm_head_logits_mb1) -> (%sample_pairs_mb1) <n = 8, seq_len = 3, sequences = 2, vocab_end = 16> {label = "sample.argmax", mb = 1 : i64, record = 27 : i64} : (memref<6x8xf32>) -> memref<2x2xi32>
    %sample_tp_all_gather_mb1 = plan.buffer  activation "sample.tp.all_gather.mb1" {live = array<i64: 54, 55>, offset = 6656 : i64} : memref<2x2x2xi32>
    plan.all_gather %sample_pairs_mb1 -> %sample_tp_all_gather_mb1 on "tp" count 4 {label = "sample.tp.all_gather", mb = 1 : i64, record = 28 : i64, sequence = 13 : i64, stream = 1 : i64, waits = array<i64: 27>} : memref<2x2xi32> -> memref<2x2x2xi32>
    %step_tokens_mb1 = plan.buffer  input "step_tokens.mb1" {live = array<i64: 0, 111>, offset = 5376 : i64, slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 1>} : memref<2xi32>
    %generated_mb1 = plan.buffer  output "generated.mb1" {live = array<i64: 0, 111>, offset = 5632 : i64, slice = #plan.slice<"generated"[4, 5] splits[<0 over "dp" parts 1>] mb 1>} : memref<2x5xi32>
    plan.kernel  argmax_merge(%sample_tp_all_gather_mb1) -> (%step_tokens_mb1, %generated_mb1) <first_position = 0, groups = 2, m = 2, n = 5> {label = "sample.merge", mb = 1 : i64, waits = array<i64: 28>} : (memref<2x2x2xi32>) -> (memref<2xi32>, memref<2x5xi32>)
    plan.decode_step
    %embedding_out_2_mb0 = plan.buffer  activation "embedding.out.2.mb0" {live = array<i64: 56, 57>, offset = 6400 : i64} : memref<2x8xf32>
    plan.kernel  embedding(%step_tokens_mb0, %embedding_weight) -> (%embedding_out_2_mb0) <m = 2, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", record = 29 : i64} : (memref<2xi32>, memref<8x8xf32>) -> memref<2x8xf32>
    %head_tp_reduce_scatter_2_mb0 = plan.buffer  activation "head.tp.reduce_scatter.2.mb0" {live = array<i64: 57, 70>, offset = 6656 : i64} : memref<1x8xf32>
    plan.reduce_scatter %embedding_out_2_mb0 -> %head_tp_reduce_scatter_2_mb0 on "tp" count 8 {label = "head.tp.reduce_scatter", record = 30 : i64, sequence = 14 : i64, stream = 1 : i64, waits = array<i64: 29>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_norm1_out_2_mb0 = plan.buffer  activation "layers.0.norm1.out.2.mb0" {live = array<i64: 58, 59>, offset = 6400 : i64} : memref<1x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_2_mb0, %layers_0_norm1_weight) -> (%layers_0_norm1_out_2_mb0) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, record = 31 : i64, waits = array<i64: 30>} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_3_mb0 = plan.buffer  activation "layers.0.tp.all_gather.3.mb0" {live = array<i64: 59, 62>, offset = 6912 : i64} : memref<2x8xf32>
    plan.all_gather %layers_0_norm1_out_2_mb0 -> %layers_0_tp_all_gather_3_mb0 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 32 : i64, sequence = 15 : i64, stream = 1 : i64, waits = array<i64: 31>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_attention_q_2_mb0 = plan.buffer  activation "layers.0.attention.q.2.mb0" {live = array<i64: 60, 65>, offset = 6400 : i64} : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb0, %layers_0_attention_wq) -> (%layers_0_attention_q_2_mb0) <k = 8, m = 2, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, waits = array<i64: 32>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_k_2_mb0 = plan.buffer  activation "layers.0.attention.k.2.mb0" {live = array<i64: 61, 66>, offset = 7168 : i64} : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb0, %layers_0_attention_wk) -> (%layers_0_attention_k_2_mb0) <k = 8, m = 2, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, waits = array<i64: 32>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_v_2_mb0 = plan.buffer  activation "layers.0.attention.v.2.mb0" {live = array<i64: 62, 67>, offset = 7424 : i64} : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb0, %layers_0_attention_wv) -> (%layers_0_attention_v_2_mb0) <k = 8, m = 2, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, waits = array<i64: 32>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_q_2_mb0) -> (%layers_0_attention_q_2_mb0) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_k_2_mb0) -> (%layers_0_attention_k_2_mb0) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_context_2_mb0 = plan.buffer  activation "layers.0.attention.context.2.mb0" {live = array<i64: 65, 68>, offset = 6912 : i64} : memref<2x4xf32>
    plan.kernel  attention(%layers_0_attention_q_2_mb0, %layers_0_attention_k_2_mb0, %layers_0_attention_v_2_mb0, %layers_0_attention_k_cache_mb0, %layers_0_attention_v_cache_mb0) -> (%layers_0_attention_context_2_mb0) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, per_step = true, seq_len = 1, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<2x4xf32>, memref<2x4xf32>, memref<2x4xf32>, memref<14x4xf32>, memref<14x4xf32>) -> memref<2x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_2_mb0) -> (%layers_0_attention_k_cache_mb0) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_2_mb0) -> (%layers_0_attention_v_cache_mb0) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_2_mb0 = plan.buffer  activation "layers.0.attention.o.2.mb0" {live = array<i64: 68, 69>, offset = 6400 : i64} : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_2_mb0, %layers_0_attention_wo) -> (%layers_0_attention_o_2_mb0) <k = 4, m = 2, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, record = 33 : i64} : (memref<2x4xf32>, memref<4x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_3_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.3.mb0" {live = array<i64: 69, 70>, offset = 6912 : i64} : memref<1x8xf32>
    plan.reduce_scatter %layers_0_attention_o_2_mb0 -> %layers_0_tp_reduce_scatter_3_mb0 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 34 : i64, sequence = 16 : i64, stream = 1 : i64, waits = array<i64: 33>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_3_mb0 = plan.buffer  activation "layers.0.residual.sum.3.mb0" {live = array<i64: 70, 77>, offset = 6400 : i64} : memref<1x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_2_mb0, %layers_0_tp_reduce_scatter_3_mb0) -> (%layers_0_residual_sum_3_mb0) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 34>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_0_norm2_out_2_mb0 = plan.buffer  activation "layers.0.norm2.out.2.mb0" {live = array<i64: 71, 72>, offset = 6656 : i64} : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_3_mb0, %layers_0_norm2_weight) -> (%layers_0_norm2_out_2_mb0) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, record = 35 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_4_mb0 = plan.buffer  activation "layers.0.tp.all_gather.4.mb0" {live = array<i64: 72, 73>, offset = 6912 : i64} : memref<2x8xf32>
    plan.all_gather %layers_0_norm2_out_2_mb0 -> %layers_0_tp_all_gather_4_mb0 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 36 : i64, sequence = 17 : i64, stream = 1 : i64, waits = array<i64: 35>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_ffn_up_2_mb0 = plan.buffer  activation "layers.0.ffn.up.2.mb0" {live = array<i64: 73, 74>, offset = 6656 : i64} : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_4_mb0, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_2_mb0) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, waits = array<i64: 36>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_act_2_mb0 = plan.buffer  activation "layers.0.ffn.act.2.mb0" {live = array<i64: 74, 75>, offset = 6912 : i64} : memref<2x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_2_mb0) -> (%layers_0_ffn_act_2_mb0) <activation = gelu, m = 2, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64} : (memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_down_2_mb0 = plan.buffer  activation "layers.0.ffn.down.2.mb0" {live = array<i64: 75, 76>, offset = 6656 : i64} : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_2_mb0, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_2_mb0) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, record = 37 : i64} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_4_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.4.mb0" {live = array<i64: 76, 77>, offset = 6912 : i64} : memref<1x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_2_mb0 -> %layers_0_tp_reduce_scatter_4_mb0 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 38 : i64, sequence = 18 : i64, stream = 1 : i64, waits = array<i64: 37>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_4_mb0 = plan.buffer  activation "layers.0.residual.sum.4.mb0" {live = array<i64: 77, 78>, offset = 6656 : i64} : memref<1x8xf32>
    plan.kernel  add(%layers_0_residual_sum_3_mb0, %layers_0_tp_reduce_scatter_4_mb0) -> (%layers_0_residual_sum_4_mb0) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 38>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %final_norm_out_2_mb0 = plan.buffer  activation "final_norm.out.2.mb0" {live = array<i64: 78, 79>, offset = 6400 : i64} : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_4_mb0, %final_norm_weight) -> (%final_norm_out_2_mb0) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "final_norm.norm", record = 39 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %head_tp_all_gather_2_mb0 = plan.buffer  activation "head.tp.all_gather.2.mb0" {live = array<i64: 79, 80>, offset = 6656 : i64} : memref<2x8xf32>
    plan.all_gather %final_norm_out_2_mb0 -> %head_tp_all_gather_2_mb0 on "tp" count 8 {label = "head.tp.all_gather", record = 40 : i64, sequence = 19 : i64, stream = 1 : i64, waits = array<i64: 39>} : memref<1x8xf32> -> memref<2x8xf32>
    %lm_head_logits_2_mb0 = plan.buffer  output "lm_head.logits.2.mb0" {live = array<i64: 0, 111>, offset = 5888 : i64, slice = #plan.slice<"step_logits"[4, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<2x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_2_mb0, %lm_head_weight) -> (%lm_head_logits_2_mb0) <k = 8, m = 2, n = 8> {label = "lm_head.logits", waits = array<i64: 40>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %sample_pairs_2_mb0 = plan.buffer  activation "sample.pairs.2.mb0" {live = array<i64: 81, 82>, offset = 6400 : i64} : memref<2x2xi32>
    plan.kernel  argmax(%lm_head_logits_2_mb0) -> (%sample_pairs_2_mb0) <n = 8, seq_len = 1, sequences = 2, vocab_end = 16> {label = "sample.argmax", record = 41 : i64} : (memref<2x8xf32>) -> memref<2x2xi32>
    %sample_tp_all_gather_2_mb0 = plan.buffer  activation "sample.tp.all_gather.2.mb0" {live = array<i64: 82, 83>, offset = 6656 : i64} : memref<2x2x2xi32>
    plan.all_gather %sample_pairs_2_mb0 -> %sample_tp_all_gather_2_mb0 on "tp" count 4 {label = "sample.tp.all_gather", record = 42 : i64, sequence = 20 : i64, stream = 1 : i64, waits = array<i64: 41>} : memref<2x2xi32> -> memref<2x2x2xi32>
    plan.kernel  argmax_merge(%sample_tp_all_gather_2_mb0) -> (%step_tokens_mb0, %generated_mb0) <first_position = 1, groups = 2, m = 2, n = 5, per_step = true> {label = "sample.merge", waits = array<i64: 42>} : (memref<2x2x2xi32>) -> (memref<2xi32>, memref<2x5xi32>)
    %embedding_out_2_mb1 = plan.buffer  activation "embedding.out.2.mb1" {live = array<i64: 84, 85>, offset = 6400 : i64} : memref<2x8xf32>
    plan.kernel  embedding(%step_tokens_mb1, %embedding_weight) -> (%embedding_out_2_mb1) <m = 2, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", mb = 1 : i64, record = 43 : i64} : (memref<2xi32>, memref<8x8xf32>) -> memref<2x8xf32>
    %head_tp_reduce_scatter_2_mb1 = plan.buffer  activation "head.tp.reduce_scatter.2.mb1" {live = array<i64: 85, 98>, offset = 6656 : i64} : memref<1x8xf32>
    plan.reduce_scatter %embedding_out_2_mb1 -> %head_tp_reduce_scatter_2_mb1 on "tp" count 8 {label = "head.tp.reduce_scatter", mb = 1 : i64, record = 44 : i64, sequence = 21 : i64, stream = 1 : i64, waits = array<i64: 43>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_norm1_out_2_mb1 = plan.buffer  activation "layers.0.norm1.out.2.mb1" {live = array<i64: 86, 87>, offset = 6400 : i64} : memref<1x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_2_mb1, %layers_0_norm1_weight) -> (%layers_0_norm1_out_2_mb1) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, mb = 1 : i64, record = 45 : i64, waits = array<i64: 44>} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_3_mb1 = plan.buffer  activation "layers.0.tp.all_gather.3.mb1" {live = array<i64: 87, 90>, offset = 6912 : i64} : memref<2x8xf32>
    plan.all_gather %layers_0_norm1_out_2_mb1 -> %layers_0_tp_all_gather_3_mb1 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 46 : i64, sequence = 22 : i64, stream = 1 : i64, waits = array<i64: 45>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_attention_q_2_mb1 = plan.buffer  activation "layers.0.attention.q.2.mb1" {live = array<i64: 88, 93>, offset = 6400 : i64} : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb1, %layers_0_attention_wq) -> (%layers_0_attention_q_2_mb1) <k = 8, m = 2, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 46>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_k_2_mb1 = plan.buffer  activation "layers.0.attention.k.2.mb1" {live = array<i64: 89, 94>, offset = 7168 : i64} : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb1, %layers_0_attention_wk) -> (%layers_0_attention_k_2_mb1) <k = 8, m = 2, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 46>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_v_2_mb1 = plan.buffer  activation "layers.0.attention.v.2.mb1" {live = array<i64: 90, 95>, offset = 7424 : i64} : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb1, %layers_0_attention_wv) -> (%layers_0_attention_v_2_mb1) <k = 8, m = 2, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 46>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_q_2_mb1) -> (%layers_0_attention_q_2_mb1) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_k_2_mb1) -> (%layers_0_attention_k_2_mb1) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_context_2_mb1 = plan.buffer  activation "layers.0.attention.context.2.mb1" {live = array<i64: 93, 96>, offset = 6912 : i64} : memref<2x4xf32>
    plan.kernel  attention(%layers_0_attention_q_2_mb1, %layers_0_attention_k_2_mb1, %layers_0_attention_v_2_mb1, %layers_0_attention_k_cache_mb1, %layers_0_attention_v_cache_mb1) -> (%layers_0_attention_context_2_mb1) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, per_step = true, seq_len = 1, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>, memref<2x4xf32>, memref<2x4xf32>, memref<14x4xf32>, memref<14x4xf32>) -> memref<2x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_2_mb1) -> (%layers_0_attention_k_cache_mb1) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_2_mb1) -> (%layers_0_attention_v_cache_mb1) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_2_mb1 = plan.buffer  activation "layers.0.attention.o.2.mb1" {live = array<i64: 96, 97>, offset = 6400 : i64} : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_2_mb1, %layers_0_attention_wo) -> (%layers_0_attention_o_2_mb1) <k = 4, m = 2, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, mb = 1 : i64, record = 47 : i64} : (memref<2x4xf32>, memref<4x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_3_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.3.mb1" {live = array<i64: 97, 98>, offset = 6912 : i64} : memref<1x8xf32>
    plan.reduce_scatter %layers_0_attention_o_2_mb1 -> %layers_0_tp_reduce_scatter_3_mb1 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 48 : i64, sequence = 23 : i64, stream = 1 : i64, waits = array<i64: 47>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_3_mb1 = plan.buffer  activation "layers.0.residual.sum.3.mb1" {live = array<i64: 98, 105>, offset = 6400 : i64} : memref<1x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_2_mb1, %layers_0_tp_reduce_scatter_3_mb1) -> (%layers_0_residual_sum_3_mb1) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 48>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_0_norm2_out_2_mb1 = plan.buffer  activation "layers.0.norm2.out.2.mb1" {live = array<i64: 99, 100>, offset = 6656 : i64} : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_3_mb1, %layers_0_norm2_weight) -> (%layers_0_norm2_out_2_mb1) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, mb = 1 : i64, record = 49 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_4_mb1 = plan.buffer  activation "layers.0.tp.all_gather.4.mb1" {live = array<i64: 100, 101>, offset = 6912 : i64} : memref<2x8xf32>
    plan.all_gather %layers_0_norm2_out_2_mb1 -> %layers_0_tp_all_gather_4_mb1 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 50 : i64, sequence = 24 : i64, stream = 1 : i64, waits = array<i64: 49>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_ffn_up_2_mb1 = plan.buffer  activation "layers.0.ffn.up.2.mb1" {live = array<i64: 101, 102>, offset = 6656 : i64} : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_4_mb1, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_2_mb1) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 50>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_act_2_mb1 = plan.buffer  activation "layers.0.ffn.act.2.mb1" {live = array<i64: 102, 103>, offset = 6912 : i64} : memref<2x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_2_mb1) -> (%layers_0_ffn_act_2_mb1) <activation = gelu, m = 2, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64, mb = 1 : i64} : (memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_down_2_mb1 = plan.buffer  activation "layers.0.ffn.down.2.mb1" {live = array<i64: 103, 104>, offset = 6656 : i64} : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_2_mb1, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_2_mb1) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, mb = 1 : i64, record = 51 : i64} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_4_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.4.mb1" {live = array<i64: 104, 105>, offset = 6912 : i64} : memref<1x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_2_mb1 -> %layers_0_tp_reduce_scatter_4_mb1 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 52 : i64, sequence = 25 : i64, stream = 1 : i64, waits = array<i64: 51>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_4_mb1 = plan.buffer  activation "layers.0.residual.sum.4.mb1" {live = array<i64: 105, 106>, offset = 6656 : i64} : memref<1x8xf32>
    plan.kernel  add(%layers_0_residual_sum_3_mb1, %layers_0_tp_reduce_scatter_4_mb1) -> (%layers_0_residual_sum_4_mb1) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 52>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %final_norm_out_2_mb1 = plan.buffer  activation "final_norm.out.2.mb1" {live = array<i64: 106, 107>, offset = 6400 : i64} : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_4_mb1, %final_norm_weight) -> (%final_norm_out_2_mb1) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "final_norm.norm", mb = 1 : i64, record = 53 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %head_tp_all_gather_2_mb1 = plan.buffer  activation "head.tp.all_gather.2.mb1" {live = array<i64: 107, 108>, offset = 6656 : i64} : memref<2x8xf32>
    plan.all_gather %final_norm_out_2_mb1 -> %head_tp_all_gather_2_mb1 on "tp" count 8 {label = "head.tp.all_gather", mb = 1 : i64, record = 54 : i64, sequence = 26 : i64, stream = 1 : i64, waits = array<i64: 53>} : memref<1x8xf32> -> memref<2x8xf32>
    %lm_head_logits_2_mb1 = plan.buffer  output "lm_head.logits.2.mb1" {live = array<i64: 0, 111>, offset = 6144 : i64, slice = #plan.slice<"step_logits"[4, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<2x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_2_mb1, %lm_head_weight) -> (%lm_head_logits_2_mb1) <k = 8, m = 2, n = 8> {label = "lm_head.logits", mb = 1 : i64, waits = array<i64: 54>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %sample_pairs_2_mb1 = plan.buffer  activation "sample.pairs.2.mb1" {live = array<i64: 109, 110>, offset = 6400 : i64} : memref<2x2xi32>
    plan.kernel  argmax(%lm_head_logits_2_mb1) -> (%sample_pairs_2_mb1) <n = 8, seq_len = 1, sequences = 2, vocab_end = 16> {label = "sample.argmax", mb = 1 : i64, record = 55 : i64} : (memref<2x8xf32>) -> memref<2x2xi32>
    %sample_tp_all_gather_2_mb1 = plan.buffer  activation "sample.tp.all_gather.2.mb1" {live = array<i64: 110, 111>, offset = 6656 : i64} : memref<2x2x2xi32>
    plan.all_gather %sample_pairs_2_mb1 -> %sample_tp_all_gather_2_mb1 on "tp" count 4 {label = "sample.tp.all_gather", mb = 1 : i64, record = 56 : i64, sequence = 27 : i64, stream = 1 : i64, waits = array<i64: 55>} : memref<2x2xi32> -> memref<2x2x2xi32>
    plan.kernel  argmax_merge(%sample_tp_all_gather_2_mb1) -> (%step_tokens_mb1, %generated_mb1) <first_position = 1, groups = 2, m = 2, n = 5, per_step = true> {label = "sample.merge", mb = 1 : i64, waits = array<i64: 56>} : (memref<2x2x2xi32>) -> (memref<2xi32>, memref<2x5xi32>)
  }
}


// -----

// A routed expert GEMM costs the capacity (2 experts x 8 rows: 4 slots x 2 groups;
// 2 x 2 x 8 x 8 x 16 = 4096 FLOPs); the model counts the routed choices: its layer's
// DISPATCH routes 6 tokens x top_k 2 = 12 choices into 2 x 4 x 2 = 16 slots, so 3/4 of that
// (3072). Routed collectives keep their capacity cost (the simulator scales them all).
// CHECK-LABEL: module @routed
// CHECK: plan.kernel  dispatch
// CHECK: plan.all_to_all {{.*}}cost = #plan.cost<flops = 0, memory_bytes = 0, comm_bytes = 1024>
// CHECK: plan.kernel  grouped_gemm{{.*}}cost = #plan.cost<flops = 4096, memory_bytes = 2560, comm_bytes = 0, model_flops = 3072>
module @routed {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %x = plan.buffer  activation "x" : memref<6x16xf32>
    %idx = plan.buffer  activation "idx" : memref<6x2xi32>
    %slots = plan.buffer  activation "slots" : memref<6x2xi32>
    %d = plan.buffer  activation "d" : memref<2x8x16xf32>
    %w = plan.buffer  weight "w" : memref<2x16x8xf32>
    %y = plan.buffer  activation "y" : memref<2x8x8xf32>
    plan.kernel  dispatch(%x, %idx) -> (%d, %slots) <capacity = 4, experts = 2, groups = 2, n = 16, tokens = 6, top_k = 2> {label = "dispatch", layer = 0 : i64} : (memref<6x16xf32>, memref<6x2xi32>) -> (memref<2x8x16xf32>, memref<6x2xi32>)
    plan.all_to_all %d -> %d on "ep" send [128, 128] recv [128, 128] count 256 {label = "a2a", layer = 0 : i64, routed, stream = 1 : i64} : memref<2x8x16xf32> -> memref<2x8x16xf32>
    plan.kernel  grouped_gemm(%d, %w) -> (%y) <groups = 2, k = 16, m = 8, n = 8> {label = "up", layer = 0 : i64, routed} : (memref<2x8x16xf32>, memref<2x16x8xf32>) -> memref<2x8x8xf32>
  }
}

// -----

// A routed instruction without its layer's DISPATCH before it has nothing to count by.
module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %d = plan.buffer  activation "d" : memref<2x8x16xf32>
    %w = plan.buffer  weight "w" : memref<2x16x8xf32>
    %y = plan.buffer  activation "y" : memref<2x8x8xf32>
    // expected-error @below {{plan-cost: a routed instruction needs its layer's DISPATCH issued before it in the program}}
    plan.kernel  grouped_gemm(%d, %w) -> (%y) <groups = 2, k = 16, m = 8, n = 8> {label = "up", layer = 0 : i64, routed} : (memref<2x8x16xf32>, memref<2x16x8xf32>) -> memref<2x8x8xf32>
  }
}
