// RUN: moeplan-opt %s --split-input-file --plan-memory | FileCheck %s

// One stream. Weights come first and stay. "b" is written by the kernel that reads "a", so
// it cannot share "a"'s bytes; "c" can, once "a"'s only use is over. 256-byte alignment.
// CHECK-LABEL: plan.program @chain
// CHECK-SAME: arena_bytes = 768
// CHECK: plan.buffer  weight "w" {live = array<i64: 0, 1>, offset = 0 : i64}
// CHECK: plan.buffer  activation "a" {live = array<i64: 0, 0>, offset = 256 : i64}
// CHECK: plan.buffer  activation "b" {live = array<i64: 0, 1>, offset = 512 : i64}
// CHECK: plan.buffer  activation "c" {live = array<i64: 1, 1>, offset = 256 : i64}
module {
  plan.program @chain stage 0 layers [0, 1) ranks [0] {
    %w = plan.buffer  weight "w" : memref<4xf32>
    %a = plan.buffer  activation "a" : memref<64xf32>
    %b = plan.buffer  activation "b" : memref<64xf32>
    %c = plan.buffer  activation "c" : memref<64xf32>
    plan.kernel  add(%a, %a) -> (%b) <n = 64> {label = "k0"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
    plan.kernel  add(%b, %b) -> (%c) <n = 64> {label = "k1"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
  }
}

// -----
// Two streams. The all-reduce on stream 1 waits for k0, so "r", which it writes, may take
// the bytes of "t", last read by k0. Nothing on the compute stream waits for the
// all-reduce, so neither "s" (which it reads) nor "r" is ever ordered before k1: "u" gets
// bytes of its own, and "s" and "r" stay live to the end.
// CHECK-LABEL: plan.program @streams
// CHECK: plan.buffer  activation "s" {live = array<i64: 0, 3>, offset = 0 : i64}
// CHECK: plan.buffer  activation "t" {live = array<i64: 0, 0>, offset = 256 : i64}
// CHECK: plan.buffer  activation "r" {live = array<i64: 1, 3>, offset = 256 : i64}
// CHECK: plan.buffer  activation "u" {live = array<i64: 2, 3>, offset = 512 : i64}
module {
  plan.program @streams stage 0 layers [0, 1) ranks [0] {
    %s = plan.buffer  activation "s" : memref<64xf32>
    %t = plan.buffer  activation "t" : memref<64xf32>
    %r = plan.buffer  activation "r" : memref<64xf32>
    %u = plan.buffer  activation "u" : memref<64xf32>
    plan.kernel  add(%t, %t) -> (%s) <n = 64> {label = "k0", record = 1 : i64} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
    plan.all_reduce %s -> %r on "tp" count 64 {label = "c0", stream = 1 : i64, waits = array<i64: 1>} : memref<64xf32> -> memref<64xf32>
    plan.kernel  add(%u, %u) -> (%u) <n = 64> {label = "k1"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
    plan.kernel  add(%u, %u) -> (%u) <n = 64> {label = "k2"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
  }
}

// -----

// GENERATE: caches and the decode step's input and output live for the whole program (the
// runtime writes the step's tokens and reads its logits around every step); the decode
// step's activations reuse the prefill's bytes (the streams drain between the two).
// CHECK-LABEL: module @gen
// CHECK: plan.buffer  activation "embedding.out.mb0" {live = array<i64: 0, 1>, offset = [[E:[0-9]+]] : i64}
// CHECK: plan.buffer  kv_cache "layers.0.attention.k_cache.mb0" {live = array<i64: 0, 99>
// CHECK: plan.decode_step
// CHECK-NEXT: plan.buffer  input "step_tokens.mb0" {live = array<i64: 0, 99>
// CHECK-NEXT: plan.buffer  activation "embedding.out.2.mb0" {live = array<i64: 50, 51>, offset = [[E]] : i64}
// CHECK: plan.buffer  output "lm_head.logits.2.mb0" {live = array<i64: 0, 99>
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
    %tokens_mb0 = plan.buffer  input "tokens.mb0" {slice = #plan.slice<"tokens"[4, 3] splits[<0 over "dp" parts 1>] mb 0>} : memref<6xi32>
    %embedding_out_mb0 = plan.buffer  activation "embedding.out.mb0" : memref<6x8xf32>
    plan.kernel  embedding(%tokens_mb0, %embedding_weight) -> (%embedding_out_mb0) <m = 6, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", record = 1 : i64} : (memref<6xi32>, memref<8x8xf32>) -> memref<6x8xf32>
    %head_tp_reduce_scatter_mb0 = plan.buffer  activation "head.tp.reduce_scatter.mb0" : memref<3x8xf32>
    plan.reduce_scatter %embedding_out_mb0 -> %head_tp_reduce_scatter_mb0 on "tp" count 24 {label = "head.tp.reduce_scatter", record = 2 : i64, sequence = 0 : i64, stream = 1 : i64, waits = array<i64: 1>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_norm1_out_mb0 = plan.buffer  activation "layers.0.norm1.out.mb0" : memref<3x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_mb0, %layers_0_norm1_weight) -> (%layers_0_norm1_out_mb0) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, record = 3 : i64, waits = array<i64: 2>} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_mb0 = plan.buffer  activation "layers.0.tp.all_gather.mb0" : memref<6x8xf32>
    plan.all_gather %layers_0_norm1_out_mb0 -> %layers_0_tp_all_gather_mb0 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 4 : i64, sequence = 1 : i64, stream = 1 : i64, waits = array<i64: 3>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_attention_q_mb0 = plan.buffer  activation "layers.0.attention.q.mb0" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb0, %layers_0_attention_wq) -> (%layers_0_attention_q_mb0) <k = 8, m = 6, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, waits = array<i64: 4>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_mb0 = plan.buffer  activation "layers.0.attention.k.mb0" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb0, %layers_0_attention_wk) -> (%layers_0_attention_k_mb0) <k = 8, m = 6, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, waits = array<i64: 4>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_v_mb0 = plan.buffer  activation "layers.0.attention.v.mb0" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb0, %layers_0_attention_wv) -> (%layers_0_attention_v_mb0) <k = 8, m = 6, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, waits = array<i64: 4>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_q_mb0) -> (%layers_0_attention_q_mb0) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_k_mb0) -> (%layers_0_attention_k_mb0) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_context_mb0 = plan.buffer  activation "layers.0.attention.context.mb0" : memref<6x4xf32>
    plan.kernel  attention(%layers_0_attention_q_mb0, %layers_0_attention_k_mb0, %layers_0_attention_v_mb0) -> (%layers_0_attention_context_mb0) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, seq_len = 3, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<6x4xf32>, memref<6x4xf32>, memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_cache_mb0 = plan.buffer  kv_cache "layers.0.attention.k_cache.mb0" {slice = #plan.slice<"layers.0.attention.k_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_mb0) -> (%layers_0_attention_k_cache_mb0) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_v_cache_mb0 = plan.buffer  kv_cache "layers.0.attention.v_cache.mb0" {slice = #plan.slice<"layers.0.attention.v_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_mb0) -> (%layers_0_attention_v_cache_mb0) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_mb0 = plan.buffer  activation "layers.0.attention.o.mb0" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_mb0, %layers_0_attention_wo) -> (%layers_0_attention_o_mb0) <k = 4, m = 6, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, record = 5 : i64} : (memref<6x4xf32>, memref<4x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.mb0" : memref<3x8xf32>
    plan.reduce_scatter %layers_0_attention_o_mb0 -> %layers_0_tp_reduce_scatter_mb0 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 6 : i64, sequence = 2 : i64, stream = 1 : i64, waits = array<i64: 5>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_mb0 = plan.buffer  activation "layers.0.residual.sum.mb0" : memref<3x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_mb0, %layers_0_tp_reduce_scatter_mb0) -> (%layers_0_residual_sum_mb0) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 6>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %layers_0_norm2_out_mb0 = plan.buffer  activation "layers.0.norm2.out.mb0" : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_mb0, %layers_0_norm2_weight) -> (%layers_0_norm2_out_mb0) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, record = 7 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_2_mb0 = plan.buffer  activation "layers.0.tp.all_gather.2.mb0" : memref<6x8xf32>
    plan.all_gather %layers_0_norm2_out_mb0 -> %layers_0_tp_all_gather_2_mb0 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 8 : i64, sequence = 3 : i64, stream = 1 : i64, waits = array<i64: 7>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_ffn_up_mb0 = plan.buffer  activation "layers.0.ffn.up.mb0" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_2_mb0, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_mb0) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, waits = array<i64: 8>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_act_mb0 = plan.buffer  activation "layers.0.ffn.act.mb0" : memref<6x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_mb0) -> (%layers_0_ffn_act_mb0) <activation = gelu, m = 6, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64} : (memref<6x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_down_mb0 = plan.buffer  activation "layers.0.ffn.down.mb0" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_mb0, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_mb0) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, record = 9 : i64} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_2_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.2.mb0" : memref<3x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_mb0 -> %layers_0_tp_reduce_scatter_2_mb0 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 10 : i64, sequence = 4 : i64, stream = 1 : i64, waits = array<i64: 9>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_2_mb0 = plan.buffer  activation "layers.0.residual.sum.2.mb0" : memref<3x8xf32>
    plan.kernel  add(%layers_0_residual_sum_mb0, %layers_0_tp_reduce_scatter_2_mb0) -> (%layers_0_residual_sum_2_mb0) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 10>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %final_norm_out_mb0 = plan.buffer  activation "final_norm.out.mb0" : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_2_mb0, %final_norm_weight) -> (%final_norm_out_mb0) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "final_norm.norm", record = 11 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %head_tp_all_gather_mb0 = plan.buffer  activation "head.tp.all_gather.mb0" : memref<6x8xf32>
    plan.all_gather %final_norm_out_mb0 -> %head_tp_all_gather_mb0 on "tp" count 24 {label = "head.tp.all_gather", record = 12 : i64, sequence = 5 : i64, stream = 1 : i64, waits = array<i64: 11>} : memref<3x8xf32> -> memref<6x8xf32>
    %lm_head_logits_mb0 = plan.buffer  output "lm_head.logits.mb0" {slice = #plan.slice<"logits"[4, 3, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<6x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_mb0, %lm_head_weight) -> (%lm_head_logits_mb0) <k = 8, m = 6, n = 8> {label = "lm_head.logits", waits = array<i64: 12>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %tokens_mb1 = plan.buffer  input "tokens.mb1" {slice = #plan.slice<"tokens"[4, 3] splits[<0 over "dp" parts 1>] mb 1>} : memref<6xi32>
    %embedding_out_mb1 = plan.buffer  activation "embedding.out.mb1" : memref<6x8xf32>
    plan.kernel  embedding(%tokens_mb1, %embedding_weight) -> (%embedding_out_mb1) <m = 6, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", mb = 1 : i64, record = 13 : i64} : (memref<6xi32>, memref<8x8xf32>) -> memref<6x8xf32>
    %head_tp_reduce_scatter_mb1 = plan.buffer  activation "head.tp.reduce_scatter.mb1" : memref<3x8xf32>
    plan.reduce_scatter %embedding_out_mb1 -> %head_tp_reduce_scatter_mb1 on "tp" count 24 {label = "head.tp.reduce_scatter", mb = 1 : i64, record = 14 : i64, sequence = 6 : i64, stream = 1 : i64, waits = array<i64: 13>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_norm1_out_mb1 = plan.buffer  activation "layers.0.norm1.out.mb1" : memref<3x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_mb1, %layers_0_norm1_weight) -> (%layers_0_norm1_out_mb1) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, mb = 1 : i64, record = 15 : i64, waits = array<i64: 14>} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_mb1 = plan.buffer  activation "layers.0.tp.all_gather.mb1" : memref<6x8xf32>
    plan.all_gather %layers_0_norm1_out_mb1 -> %layers_0_tp_all_gather_mb1 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 16 : i64, sequence = 7 : i64, stream = 1 : i64, waits = array<i64: 15>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_attention_q_mb1 = plan.buffer  activation "layers.0.attention.q.mb1" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb1, %layers_0_attention_wq) -> (%layers_0_attention_q_mb1) <k = 8, m = 6, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 16>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_mb1 = plan.buffer  activation "layers.0.attention.k.mb1" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb1, %layers_0_attention_wk) -> (%layers_0_attention_k_mb1) <k = 8, m = 6, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 16>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_v_mb1 = plan.buffer  activation "layers.0.attention.v.mb1" : memref<6x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_mb1, %layers_0_attention_wv) -> (%layers_0_attention_v_mb1) <k = 8, m = 6, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 16>} : (memref<6x8xf32>, memref<8x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_q_mb1) -> (%layers_0_attention_q_mb1) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    plan.kernel  rope(%layers_0_attention_k_mb1) -> (%layers_0_attention_k_mb1) <first_position = 0, head_dim = 4, heads = 1, m = 6, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_context_mb1 = plan.buffer  activation "layers.0.attention.context.mb1" : memref<6x4xf32>
    plan.kernel  attention(%layers_0_attention_q_mb1, %layers_0_attention_k_mb1, %layers_0_attention_v_mb1) -> (%layers_0_attention_context_mb1) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, seq_len = 3, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>, memref<6x4xf32>, memref<6x4xf32>) -> memref<6x4xf32>
    %layers_0_attention_k_cache_mb1 = plan.buffer  kv_cache "layers.0.attention.k_cache.mb1" {slice = #plan.slice<"layers.0.attention.k_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_mb1) -> (%layers_0_attention_k_cache_mb1) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_v_cache_mb1 = plan.buffer  kv_cache "layers.0.attention.v_cache.mb1" {slice = #plan.slice<"layers.0.attention.v_cache"[4, 7, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_mb1) -> (%layers_0_attention_v_cache_mb1) <first_position = 0, m = 6, n = 4, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64, mb = 1 : i64} : (memref<6x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_mb1 = plan.buffer  activation "layers.0.attention.o.mb1" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_mb1, %layers_0_attention_wo) -> (%layers_0_attention_o_mb1) <k = 4, m = 6, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, mb = 1 : i64, record = 17 : i64} : (memref<6x4xf32>, memref<4x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.mb1" : memref<3x8xf32>
    plan.reduce_scatter %layers_0_attention_o_mb1 -> %layers_0_tp_reduce_scatter_mb1 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 18 : i64, sequence = 8 : i64, stream = 1 : i64, waits = array<i64: 17>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_mb1 = plan.buffer  activation "layers.0.residual.sum.mb1" : memref<3x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_mb1, %layers_0_tp_reduce_scatter_mb1) -> (%layers_0_residual_sum_mb1) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 18>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %layers_0_norm2_out_mb1 = plan.buffer  activation "layers.0.norm2.out.mb1" : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_mb1, %layers_0_norm2_weight) -> (%layers_0_norm2_out_mb1) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, mb = 1 : i64, record = 19 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %layers_0_tp_all_gather_2_mb1 = plan.buffer  activation "layers.0.tp.all_gather.2.mb1" : memref<6x8xf32>
    plan.all_gather %layers_0_norm2_out_mb1 -> %layers_0_tp_all_gather_2_mb1 on "tp" count 24 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 20 : i64, sequence = 9 : i64, stream = 1 : i64, waits = array<i64: 19>} : memref<3x8xf32> -> memref<6x8xf32>
    %layers_0_ffn_up_mb1 = plan.buffer  activation "layers.0.ffn.up.mb1" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_2_mb1, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_mb1) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 20>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_act_mb1 = plan.buffer  activation "layers.0.ffn.act.mb1" : memref<6x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_mb1) -> (%layers_0_ffn_act_mb1) <activation = gelu, m = 6, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64, mb = 1 : i64} : (memref<6x8xf32>) -> memref<6x8xf32>
    %layers_0_ffn_down_mb1 = plan.buffer  activation "layers.0.ffn.down.mb1" : memref<6x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_mb1, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_mb1) <k = 8, m = 6, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, mb = 1 : i64, record = 21 : i64} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    %layers_0_tp_reduce_scatter_2_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.2.mb1" : memref<3x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_mb1 -> %layers_0_tp_reduce_scatter_2_mb1 on "tp" count 24 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 22 : i64, sequence = 10 : i64, stream = 1 : i64, waits = array<i64: 21>} : memref<6x8xf32> -> memref<3x8xf32>
    %layers_0_residual_sum_2_mb1 = plan.buffer  activation "layers.0.residual.sum.2.mb1" : memref<3x8xf32>
    plan.kernel  add(%layers_0_residual_sum_mb1, %layers_0_tp_reduce_scatter_2_mb1) -> (%layers_0_residual_sum_2_mb1) <n = 24> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 22>} : (memref<3x8xf32>, memref<3x8xf32>) -> memref<3x8xf32>
    %final_norm_out_mb1 = plan.buffer  activation "final_norm.out.mb1" : memref<3x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_2_mb1, %final_norm_weight) -> (%final_norm_out_mb1) <epsilon = 1.000000e-05, m = 3, n = 8, norm = rms_norm> {label = "final_norm.norm", mb = 1 : i64, record = 23 : i64} : (memref<3x8xf32>, memref<8xf32>) -> memref<3x8xf32>
    %head_tp_all_gather_mb1 = plan.buffer  activation "head.tp.all_gather.mb1" : memref<6x8xf32>
    plan.all_gather %final_norm_out_mb1 -> %head_tp_all_gather_mb1 on "tp" count 24 {label = "head.tp.all_gather", mb = 1 : i64, record = 24 : i64, sequence = 11 : i64, stream = 1 : i64, waits = array<i64: 23>} : memref<3x8xf32> -> memref<6x8xf32>
    %lm_head_logits_mb1 = plan.buffer  output "lm_head.logits.mb1" {slice = #plan.slice<"logits"[4, 3, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<6x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_mb1, %lm_head_weight) -> (%lm_head_logits_mb1) <k = 8, m = 6, n = 8> {label = "lm_head.logits", mb = 1 : i64, waits = array<i64: 24>} : (memref<6x8xf32>, memref<8x8xf32>) -> memref<6x8xf32>
    plan.decode_step
    %step_tokens_mb0 = plan.buffer  input "step_tokens.mb0" {slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 0>} : memref<2xi32>
    %embedding_out_2_mb0 = plan.buffer  activation "embedding.out.2.mb0" : memref<2x8xf32>
    plan.kernel  embedding(%step_tokens_mb0, %embedding_weight) -> (%embedding_out_2_mb0) <m = 2, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", record = 25 : i64} : (memref<2xi32>, memref<8x8xf32>) -> memref<2x8xf32>
    %head_tp_reduce_scatter_2_mb0 = plan.buffer  activation "head.tp.reduce_scatter.2.mb0" : memref<1x8xf32>
    plan.reduce_scatter %embedding_out_2_mb0 -> %head_tp_reduce_scatter_2_mb0 on "tp" count 8 {label = "head.tp.reduce_scatter", record = 26 : i64, sequence = 12 : i64, stream = 1 : i64, waits = array<i64: 25>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_norm1_out_2_mb0 = plan.buffer  activation "layers.0.norm1.out.2.mb0" : memref<1x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_2_mb0, %layers_0_norm1_weight) -> (%layers_0_norm1_out_2_mb0) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, record = 27 : i64, waits = array<i64: 26>} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_3_mb0 = plan.buffer  activation "layers.0.tp.all_gather.3.mb0" : memref<2x8xf32>
    plan.all_gather %layers_0_norm1_out_2_mb0 -> %layers_0_tp_all_gather_3_mb0 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 28 : i64, sequence = 13 : i64, stream = 1 : i64, waits = array<i64: 27>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_attention_q_2_mb0 = plan.buffer  activation "layers.0.attention.q.2.mb0" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb0, %layers_0_attention_wq) -> (%layers_0_attention_q_2_mb0) <k = 8, m = 2, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, waits = array<i64: 28>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_k_2_mb0 = plan.buffer  activation "layers.0.attention.k.2.mb0" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb0, %layers_0_attention_wk) -> (%layers_0_attention_k_2_mb0) <k = 8, m = 2, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, waits = array<i64: 28>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_v_2_mb0 = plan.buffer  activation "layers.0.attention.v.2.mb0" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb0, %layers_0_attention_wv) -> (%layers_0_attention_v_2_mb0) <k = 8, m = 2, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, waits = array<i64: 28>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_q_2_mb0) -> (%layers_0_attention_q_2_mb0) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_k_2_mb0) -> (%layers_0_attention_k_2_mb0) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_context_2_mb0 = plan.buffer  activation "layers.0.attention.context.2.mb0" : memref<2x4xf32>
    plan.kernel  attention(%layers_0_attention_q_2_mb0, %layers_0_attention_k_2_mb0, %layers_0_attention_v_2_mb0, %layers_0_attention_k_cache_mb0, %layers_0_attention_v_cache_mb0) -> (%layers_0_attention_context_2_mb0) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, per_step = true, seq_len = 1, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64} : (memref<2x4xf32>, memref<2x4xf32>, memref<2x4xf32>, memref<14x4xf32>, memref<14x4xf32>) -> memref<2x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_2_mb0) -> (%layers_0_attention_k_cache_mb0) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_2_mb0) -> (%layers_0_attention_v_cache_mb0) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_2_mb0 = plan.buffer  activation "layers.0.attention.o.2.mb0" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_2_mb0, %layers_0_attention_wo) -> (%layers_0_attention_o_2_mb0) <k = 4, m = 2, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, record = 29 : i64} : (memref<2x4xf32>, memref<4x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_3_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.3.mb0" : memref<1x8xf32>
    plan.reduce_scatter %layers_0_attention_o_2_mb0 -> %layers_0_tp_reduce_scatter_3_mb0 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 30 : i64, sequence = 14 : i64, stream = 1 : i64, waits = array<i64: 29>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_3_mb0 = plan.buffer  activation "layers.0.residual.sum.3.mb0" : memref<1x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_2_mb0, %layers_0_tp_reduce_scatter_3_mb0) -> (%layers_0_residual_sum_3_mb0) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 30>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_0_norm2_out_2_mb0 = plan.buffer  activation "layers.0.norm2.out.2.mb0" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_3_mb0, %layers_0_norm2_weight) -> (%layers_0_norm2_out_2_mb0) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, record = 31 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_4_mb0 = plan.buffer  activation "layers.0.tp.all_gather.4.mb0" : memref<2x8xf32>
    plan.all_gather %layers_0_norm2_out_2_mb0 -> %layers_0_tp_all_gather_4_mb0 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, record = 32 : i64, sequence = 15 : i64, stream = 1 : i64, waits = array<i64: 31>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_ffn_up_2_mb0 = plan.buffer  activation "layers.0.ffn.up.2.mb0" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_4_mb0, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_2_mb0) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, waits = array<i64: 32>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_act_2_mb0 = plan.buffer  activation "layers.0.ffn.act.2.mb0" : memref<2x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_2_mb0) -> (%layers_0_ffn_act_2_mb0) <activation = gelu, m = 2, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64} : (memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_down_2_mb0 = plan.buffer  activation "layers.0.ffn.down.2.mb0" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_2_mb0, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_2_mb0) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, record = 33 : i64} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_4_mb0 = plan.buffer  activation "layers.0.tp.reduce_scatter.4.mb0" : memref<1x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_2_mb0 -> %layers_0_tp_reduce_scatter_4_mb0 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, record = 34 : i64, sequence = 16 : i64, stream = 1 : i64, waits = array<i64: 33>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_4_mb0 = plan.buffer  activation "layers.0.residual.sum.4.mb0" : memref<1x8xf32>
    plan.kernel  add(%layers_0_residual_sum_3_mb0, %layers_0_tp_reduce_scatter_4_mb0) -> (%layers_0_residual_sum_4_mb0) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, waits = array<i64: 34>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %final_norm_out_2_mb0 = plan.buffer  activation "final_norm.out.2.mb0" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_4_mb0, %final_norm_weight) -> (%final_norm_out_2_mb0) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "final_norm.norm", record = 35 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %head_tp_all_gather_2_mb0 = plan.buffer  activation "head.tp.all_gather.2.mb0" : memref<2x8xf32>
    plan.all_gather %final_norm_out_2_mb0 -> %head_tp_all_gather_2_mb0 on "tp" count 8 {label = "head.tp.all_gather", record = 36 : i64, sequence = 17 : i64, stream = 1 : i64, waits = array<i64: 35>} : memref<1x8xf32> -> memref<2x8xf32>
    %lm_head_logits_2_mb0 = plan.buffer  output "lm_head.logits.2.mb0" {slice = #plan.slice<"step_logits"[4, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<2x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_2_mb0, %lm_head_weight) -> (%lm_head_logits_2_mb0) <k = 8, m = 2, n = 8> {label = "lm_head.logits", waits = array<i64: 36>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %step_tokens_mb1 = plan.buffer  input "step_tokens.mb1" {slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 1>} : memref<2xi32>
    %embedding_out_2_mb1 = plan.buffer  activation "embedding.out.2.mb1" : memref<2x8xf32>
    plan.kernel  embedding(%step_tokens_mb1, %embedding_weight) -> (%embedding_out_2_mb1) <m = 2, n = 8, vocab_begin = 0, vocab_end = 8> {label = "embedding.lookup", mb = 1 : i64, record = 37 : i64} : (memref<2xi32>, memref<8x8xf32>) -> memref<2x8xf32>
    %head_tp_reduce_scatter_2_mb1 = plan.buffer  activation "head.tp.reduce_scatter.2.mb1" : memref<1x8xf32>
    plan.reduce_scatter %embedding_out_2_mb1 -> %head_tp_reduce_scatter_2_mb1 on "tp" count 8 {label = "head.tp.reduce_scatter", mb = 1 : i64, record = 38 : i64, sequence = 18 : i64, stream = 1 : i64, waits = array<i64: 37>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_norm1_out_2_mb1 = plan.buffer  activation "layers.0.norm1.out.2.mb1" : memref<1x8xf32>
    plan.kernel  norm(%head_tp_reduce_scatter_2_mb1, %layers_0_norm1_weight) -> (%layers_0_norm1_out_2_mb1) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm1.norm", layer = 0 : i64, mb = 1 : i64, record = 39 : i64, waits = array<i64: 38>} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_3_mb1 = plan.buffer  activation "layers.0.tp.all_gather.3.mb1" : memref<2x8xf32>
    plan.all_gather %layers_0_norm1_out_2_mb1 -> %layers_0_tp_all_gather_3_mb1 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 40 : i64, sequence = 19 : i64, stream = 1 : i64, waits = array<i64: 39>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_attention_q_2_mb1 = plan.buffer  activation "layers.0.attention.q.2.mb1" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb1, %layers_0_attention_wq) -> (%layers_0_attention_q_2_mb1) <k = 8, m = 2, n = 4> {label = "layers.0.attention.q", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 40>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_k_2_mb1 = plan.buffer  activation "layers.0.attention.k.2.mb1" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb1, %layers_0_attention_wk) -> (%layers_0_attention_k_2_mb1) <k = 8, m = 2, n = 4> {label = "layers.0.attention.k", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 40>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_v_2_mb1 = plan.buffer  activation "layers.0.attention.v.2.mb1" : memref<2x4xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_3_mb1, %layers_0_attention_wv) -> (%layers_0_attention_v_2_mb1) <k = 8, m = 2, n = 4> {label = "layers.0.attention.v", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 40>} : (memref<2x8xf32>, memref<8x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_q_2_mb1) -> (%layers_0_attention_q_2_mb1) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.q.rope", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    plan.kernel  rope(%layers_0_attention_k_2_mb1) -> (%layers_0_attention_k_2_mb1) <first_position = 3, head_dim = 4, heads = 1, m = 2, per_step = true, rope_theta = 1.000000e+04, sequences = 2> {label = "layers.0.attention.k.rope", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<2x4xf32>
    %layers_0_attention_context_2_mb1 = plan.buffer  activation "layers.0.attention.context.2.mb1" : memref<2x4xf32>
    plan.kernel  attention(%layers_0_attention_q_2_mb1, %layers_0_attention_k_2_mb1, %layers_0_attention_v_2_mb1, %layers_0_attention_k_cache_mb1, %layers_0_attention_v_cache_mb1) -> (%layers_0_attention_context_2_mb1) <head_dim = 4, heads = 1, kv_heads = 1, kv_len = 3, per_step = true, seq_len = 1, sequences = 2> {label = "layers.0.attention.core", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>, memref<2x4xf32>, memref<2x4xf32>, memref<14x4xf32>, memref<14x4xf32>) -> memref<2x4xf32>
    plan.kernel  kv_append(%layers_0_attention_k_2_mb1) -> (%layers_0_attention_k_cache_mb1) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.k.append", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    plan.kernel  kv_append(%layers_0_attention_v_2_mb1) -> (%layers_0_attention_v_cache_mb1) <first_position = 3, m = 2, n = 4, per_step = true, sequences = 2> {label = "layers.0.attention.v.append", layer = 0 : i64, mb = 1 : i64} : (memref<2x4xf32>) -> memref<14x4xf32>
    %layers_0_attention_o_2_mb1 = plan.buffer  activation "layers.0.attention.o.2.mb1" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_attention_context_2_mb1, %layers_0_attention_wo) -> (%layers_0_attention_o_2_mb1) <k = 4, m = 2, n = 8> {label = "layers.0.attention.o", layer = 0 : i64, mb = 1 : i64, record = 41 : i64} : (memref<2x4xf32>, memref<4x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_3_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.3.mb1" : memref<1x8xf32>
    plan.reduce_scatter %layers_0_attention_o_2_mb1 -> %layers_0_tp_reduce_scatter_3_mb1 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 42 : i64, sequence = 20 : i64, stream = 1 : i64, waits = array<i64: 41>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_3_mb1 = plan.buffer  activation "layers.0.residual.sum.3.mb1" : memref<1x8xf32>
    plan.kernel  add(%head_tp_reduce_scatter_2_mb1, %layers_0_tp_reduce_scatter_3_mb1) -> (%layers_0_residual_sum_3_mb1) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 42>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %layers_0_norm2_out_2_mb1 = plan.buffer  activation "layers.0.norm2.out.2.mb1" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_3_mb1, %layers_0_norm2_weight) -> (%layers_0_norm2_out_2_mb1) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "layers.0.norm2.norm", layer = 0 : i64, mb = 1 : i64, record = 43 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %layers_0_tp_all_gather_4_mb1 = plan.buffer  activation "layers.0.tp.all_gather.4.mb1" : memref<2x8xf32>
    plan.all_gather %layers_0_norm2_out_2_mb1 -> %layers_0_tp_all_gather_4_mb1 on "tp" count 8 {label = "layers.0.tp.all_gather", layer = 0 : i64, mb = 1 : i64, record = 44 : i64, sequence = 21 : i64, stream = 1 : i64, waits = array<i64: 43>} : memref<1x8xf32> -> memref<2x8xf32>
    %layers_0_ffn_up_2_mb1 = plan.buffer  activation "layers.0.ffn.up.2.mb1" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_tp_all_gather_4_mb1, %layers_0_ffn_w_up) -> (%layers_0_ffn_up_2_mb1) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.up", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 44>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_act_2_mb1 = plan.buffer  activation "layers.0.ffn.act.2.mb1" : memref<2x8xf32>
    plan.kernel  activation(%layers_0_ffn_up_2_mb1) -> (%layers_0_ffn_act_2_mb1) <activation = gelu, m = 2, n = 8> {label = "layers.0.ffn.act", layer = 0 : i64, mb = 1 : i64} : (memref<2x8xf32>) -> memref<2x8xf32>
    %layers_0_ffn_down_2_mb1 = plan.buffer  activation "layers.0.ffn.down.2.mb1" : memref<2x8xf32>
    plan.kernel  gemm(%layers_0_ffn_act_2_mb1, %layers_0_ffn_w_down) -> (%layers_0_ffn_down_2_mb1) <k = 8, m = 2, n = 8> {label = "layers.0.ffn.down", layer = 0 : i64, mb = 1 : i64, record = 45 : i64} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
    %layers_0_tp_reduce_scatter_4_mb1 = plan.buffer  activation "layers.0.tp.reduce_scatter.4.mb1" : memref<1x8xf32>
    plan.reduce_scatter %layers_0_ffn_down_2_mb1 -> %layers_0_tp_reduce_scatter_4_mb1 on "tp" count 8 {label = "layers.0.tp.reduce_scatter", layer = 0 : i64, mb = 1 : i64, record = 46 : i64, sequence = 22 : i64, stream = 1 : i64, waits = array<i64: 45>} : memref<2x8xf32> -> memref<1x8xf32>
    %layers_0_residual_sum_4_mb1 = plan.buffer  activation "layers.0.residual.sum.4.mb1" : memref<1x8xf32>
    plan.kernel  add(%layers_0_residual_sum_3_mb1, %layers_0_tp_reduce_scatter_4_mb1) -> (%layers_0_residual_sum_4_mb1) <n = 8> {label = "layers.0.residual.add", layer = 0 : i64, mb = 1 : i64, waits = array<i64: 46>} : (memref<1x8xf32>, memref<1x8xf32>) -> memref<1x8xf32>
    %final_norm_out_2_mb1 = plan.buffer  activation "final_norm.out.2.mb1" : memref<1x8xf32>
    plan.kernel  norm(%layers_0_residual_sum_4_mb1, %final_norm_weight) -> (%final_norm_out_2_mb1) <epsilon = 1.000000e-05, m = 1, n = 8, norm = rms_norm> {label = "final_norm.norm", mb = 1 : i64, record = 47 : i64} : (memref<1x8xf32>, memref<8xf32>) -> memref<1x8xf32>
    %head_tp_all_gather_2_mb1 = plan.buffer  activation "head.tp.all_gather.2.mb1" : memref<2x8xf32>
    plan.all_gather %final_norm_out_2_mb1 -> %head_tp_all_gather_2_mb1 on "tp" count 8 {label = "head.tp.all_gather", mb = 1 : i64, record = 48 : i64, sequence = 23 : i64, stream = 1 : i64, waits = array<i64: 47>} : memref<1x8xf32> -> memref<2x8xf32>
    %lm_head_logits_2_mb1 = plan.buffer  output "lm_head.logits.2.mb1" {slice = #plan.slice<"step_logits"[4, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 1>} : memref<2x8xf32>
    plan.kernel  gemm(%head_tp_all_gather_2_mb1, %lm_head_weight) -> (%lm_head_logits_2_mb1) <k = 8, m = 2, n = 8> {label = "lm_head.logits", mb = 1 : i64, waits = array<i64: 48>} : (memref<2x8xf32>, memref<8x8xf32>) -> memref<2x8xf32>
  }
}
