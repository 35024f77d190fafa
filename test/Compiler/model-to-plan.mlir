// RUN: not moeplan-opt %s --split-input-file --model-to-plan 2>/dev/null | FileCheck %s
// RUN: not moeplan-opt %s --split-input-file --model-to-plan 2>&1 >/dev/null | FileCheck %s --check-prefix=ERR

// Groups of every mesh axis from the rank order tp-ep-dp-pp (tp adjacent): ranks 0, 1 form
// stage 0's tp group; the pipeline pairs 0-2 and 1-3.
// CHECK-LABEL: module @small
// CHECK-NOT: func.func
// CHECK: plan.group @tp_0 "tp" [0, 1]
// CHECK: plan.group @tp_1 "tp" [2, 3]
// CHECK: plan.group @pp_0 "pp" [0, 2]
// CHECK: plan.group @pp_1 "pp" [1, 3]
// CHECK: plan.group @ep_0 "ep" [0, 1]
// Stage 0: its weights first (the rank's slices), then one micro-batch.
// CHECK: plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] {
// CHECK: plan.buffer  weight "embedding.weight" {slice = #plan.slice<"embedding.weight"[16, 8] splits[<0 over "tp" parts 2>]>} : memref<8x8xf32>
// CHECK: plan.buffer  weight "layers.0.attention.wq" {slice = #plan.slice<"layers.0.attention.wq"[8, 8] splits[<1 over "tp" parts 2>]>} : memref<8x4xf32>
// CHECK: plan.buffer  weight "layers.0.experts.w_up" {slice = #plan.slice<"layers.0.experts.w_up"[4, 8, 16] splits[<0 over "ep" parts 2>, <2 over "etp" parts 1>]>} : memref<2x8x16xf32>
// CHECK: plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[2, 4] splits[<0 over "dp" parts 1>] mb 0>} : memref<4xi32>
// CHECK: plan.kernel  embedding
// CHECK: plan.reduce_scatter {{.*}} on "tp" count 16
// CHECK: plan.kernel  attention({{.*}}) <sequences = 1, seq_len = 4, kv_len = 4, heads = 1, kv_heads = 1, head_dim = 4>
// CHECK: plan.kernel  router
// DISPATCH and COMBINE: the same capacity per dispatch group and groups (here one group).
// CHECK: plan.kernel  dispatch({{.*}}) <n = 8, groups = 1, tokens = 2, experts = 4, top_k = 1, capacity = 1>
// All-to-all with one count per ep peer: 2 local experts x capacity 1 x d_model 8.
// CHECK: plan.all_to_all {{.*}} on "ep" send [16, 16] recv [16, 16] count 32
// CHECK: plan.kernel  transpose
// CHECK: plan.kernel  grouped_gemm({{.*}}) <m = 2, n = 16, k = 8, groups = 2>
// CHECK: plan.all_to_all {{.*}} on "ep"
// CHECK: plan.kernel  combine({{.*}}) <n = 8, groups = 1, tokens = 2, experts = 4, top_k = 1, capacity = 1>
// CHECK: plan.send {{.*}} to 1 on "pp" count 16 {{.*}}stream = 2
// Stage 1 receives first and ends with the logits as its output.
// CHECK: plan.program @stage1 stage 1 layers[1, 2) ranks [2, 3] {
// CHECK: plan.recv {{.*}} from 0 on "pp" count 16
// CHECK: plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[2, 4, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x8xf32>
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
module @small attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 2 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {phase = "PREFILL", seq_len = 4 : i64, sequences = 2 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.phase = #loc39, workload.seq_len = #loc40, workload.sequences = #loc41}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">, model.sharding = {capacity = 1 : i64, micro_batches = 2 : i64, sequences_per_micro_batch = 1 : i64, tokens = 4 : i64, tokens_per_rank = 2 : i64}} {
  func.func @forward(%arg0: tensor<4xi32>) -> tensor<4x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<4xi32> -> tensor<4x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, stage = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>, tensor<2x1xi32> -> tensor<4x1x8xf32>, tensor<2x1xi32>
    %8 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 16 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %10 = model.reshard  all_to_all %9 over "ep" to tokens {layer = 0 : i64, stage = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32>, tensor<2x1xi32>, tensor<2x1xi32>, tensor<2x1xf32> -> tensor<2x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %13 = model.transfer %12 from 0 to 1 {stage = 1 : i64} : tensor<2x8xf32>
    %14 = model.norm  rms_norm %13 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x8xf32>
    %15 = model.reshard  all_gather %14 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %16 = model.attention %15 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x8xf32>
    %17 = model.reshard  reduce_scatter %16 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %18 = model.add %13, %17 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %19 = model.norm  rms_norm %18 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x8xf32>
    %20 = model.reshard  all_gather %19 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %21 = model.dense_ffn  gelu %20 {hidden = 8 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x8xf32>
    %22 = model.reshard  reduce_scatter %21 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %23 = model.add %18, %22 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %24 = model.norm  rms_norm %23 {layer = -1 : i64, stage = 1 : i64, weight_prefix = "final_norm"} : tensor<2x8xf32>
    %25 = model.reshard  all_gather %24 over "tp" {layer = -1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %26 = model.lm_head %25 {layer = -1 : i64, stage = 1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<4x8xf32> -> tensor<4x8xf32>
    return %26 : tensor<4x8xf32>
  }
}

// -----

// Decode (small.textproto with phase DECODE, kv_cache_len 6, 8 sequences): one new token per
// sequence, so 4 tokens per micro-batch. The new K and V stay activations; the attention
// reads the KV cache of kv_len 6 per sequence, a per-layer per-micro-batch buffer sliced
// from [sequences, kv_len, kv_heads x head_dim] over dp (sequences) and tp (KV heads).
// CHECK-LABEL: module @small_decode
// CHECK: plan.program @stage0 stage 0 layers[0, 1) ranks [0, 1] {
// CHECK: plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[8, 1] splits[<0 over "dp" parts 1>] mb 0>} : memref<4xi32>
// The first norm's epsilon comes from its op (1e-6 here).
// CHECK: plan.kernel  norm({{.*}}) <{{.*}}epsilon = 9.9999999999999995E-7>
// CHECK: %[[K:.*]] = plan.buffer  activation "layers.0.attention.k" : memref<4x4xf32>
// CHECK: %[[V:.*]] = plan.buffer  activation "layers.0.attention.v" : memref<4x4xf32>
// With rope_theta the new token's q and k turn in place by its position: after the 6 cached.
// CHECK: plan.kernel  rope(%[[Q:.*]]) -> (%[[Q]]) <m = 4, sequences = 4, heads = 1, head_dim = 4, rope_theta = 1.000000e+04, first_position = 6>
// CHECK: plan.kernel  rope(%[[K]]) -> (%[[K]]) <m = 4, sequences = 4, heads = 1, head_dim = 4, rope_theta = 1.000000e+04, first_position = 6>
// CHECK: %[[KC:.*]] = plan.buffer  kv_cache "layers.0.attention.k_cache" {slice = #plan.slice<"layers.0.attention.k_cache"[8, 6, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<24x4xf32>
// CHECK: %[[VC:.*]] = plan.buffer  kv_cache "layers.0.attention.v_cache" {slice = #plan.slice<"layers.0.attention.v_cache"[8, 6, 8] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<24x4xf32>
// CHECK: plan.kernel  attention(%[[Q]], %[[K]], %[[V]], %[[KC]], %[[VC]]) -> ({{.*}}) <sequences = 4, seq_len = 1, kv_len = 6, heads = 1, kv_heads = 1, head_dim = 4>
// The router renormalises the kept gates; the second norm has the default epsilon 1e-5.
// CHECK: plan.kernel  norm({{.*}}) <{{.*}}epsilon = 1.000000e-05>
// CHECK: plan.kernel  router({{.*}}) <tokens = 2, experts = 4, top_k = 1, renormalize = true>
// CHECK: plan.program @stage1
// CHECK: plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[8, 1, 16] splits[<0 over "dp" parts 1>, <2 over "tp" parts 2>] mb 0>} : memref<4x8xf32>
#loc = loc("small_decode.textproto":5:1)
#loc1 = loc("small_decode.textproto":6:3)
#loc2 = loc("small_decode.textproto":6:49)
#loc3 = loc("small_decode.textproto":6:78)
#loc4 = loc("small_decode.textproto":6:35)
#loc5 = loc("small_decode.textproto":6:26)
#loc6 = loc("small_decode.textproto":6:9)
#loc7 = loc("small_decode.textproto":5:20)
#loc8 = loc("small_decode.textproto":7:3)
#loc9 = loc("small_decode.textproto":7:16)
#loc10 = loc("small_decode.textproto":7:40)
#loc11 = loc("small_decode.textproto":5:11)
#loc12 = loc("small_decode.textproto":2:1)
#loc13 = loc("small_decode.textproto":4:9)
#loc14 = loc("small_decode.textproto":2:19)
#loc15 = loc("small_decode.textproto":3:55)
#loc16 = loc("small_decode.textproto":4:41)
#loc17 = loc("small_decode.textproto":3:9)
#loc18 = loc("small_decode.textproto":2:63)
#loc19 = loc("small_decode.textproto":2:39)
#loc20 = loc("small_decode.textproto":2:30)
#loc21 = loc("small_decode.textproto":2:51)
#loc22 = loc("small_decode.textproto":2:9)
#loc23 = loc("small_decode.textproto":3:27)
#loc24 = loc("small_decode.textproto":3:40)
#loc25 = loc("small_decode.textproto":3:76)
#loc26 = loc("small_decode.textproto":2:74)
#loc27 = loc("small_decode.textproto":4:26)
#loc28 = loc("small_decode.textproto":1:1)
#loc29 = loc("small_decode.textproto":9:1)
#loc30 = loc("small_decode.textproto":9:66)
#loc31 = loc("small_decode.textproto":9:24)
#loc32 = loc("small_decode.textproto":9:30)
#loc33 = loc("small_decode.textproto":9:36)
#loc34 = loc("small_decode.textproto":9:49)
#loc35 = loc("small_decode.textproto":9:18)
#loc36 = loc("small_decode.textproto":9:85)
#loc37 = loc("small_decode.textproto":9:12)
#loc38 = loc("small_decode.textproto":8:1)
#loc39 = loc("small_decode.textproto":8:50)
#loc40 = loc("small_decode.textproto":8:36)
#loc41 = loc("small_decode.textproto":8:25)
#loc42 = loc("small_decode.textproto":8:12)
module @small_decode attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small_decode", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 2 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {kv_cache_len = 6 : i64, phase = "DECODE", seq_len = 4 : i64, sequences = 8 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.kv_cache_len = #loc39, workload.phase = #loc40, workload.seq_len = #loc41, workload.sequences = #loc42}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">, model.sharding = {capacity = 1 : i64, micro_batches = 2 : i64, sequences_per_micro_batch = 4 : i64, tokens = 4 : i64, tokens_per_rank = 2 : i64}} {
  func.func @forward(%arg0: tensor<4xi32>) -> tensor<4x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<4xi32> -> tensor<4x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %2 = model.norm  rms_norm %1 {epsilon = 1.000000e-06 : f64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, rope_theta = 1.000000e+04 : f64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, renormalize, stage = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>, tensor<2x1xi32> -> tensor<4x1x8xf32>, tensor<2x1xi32>
    %8 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 16 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %10 = model.reshard  all_to_all %9 over "ep" to tokens {layer = 0 : i64, stage = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32>, tensor<2x1xi32>, tensor<2x1xi32>, tensor<2x1xf32> -> tensor<2x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %13 = model.transfer %12 from 0 to 1 {stage = 1 : i64} : tensor<2x8xf32>
    %14 = model.norm  rms_norm %13 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x8xf32>
    %15 = model.reshard  all_gather %14 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %16 = model.attention %15 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x8xf32>
    %17 = model.reshard  reduce_scatter %16 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %18 = model.add %13, %17 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %19 = model.norm  rms_norm %18 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x8xf32>
    %20 = model.reshard  all_gather %19 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %21 = model.dense_ffn  gelu %20 {hidden = 8 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x8xf32>
    %22 = model.reshard  reduce_scatter %21 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %23 = model.add %18, %22 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %24 = model.norm  rms_norm %23 {layer = -1 : i64, stage = 1 : i64, weight_prefix = "final_norm"} : tensor<2x8xf32>
    %25 = model.reshard  all_gather %24 over "tp" {layer = -1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %26 = model.lm_head %25 {layer = -1 : i64, stage = 1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<4x8xf32> -> tensor<4x8xf32>
    return %26 : tensor<4x8xf32>
  }
}

// -----

// A transfer must send a value its from-stage computes (here layer 0's last add was moved
// to stage 1 by hand).
// ERR: error: 'model.transfer' op sends from stage 0 a value that stage 0 does not compute
#loc = loc("small_decode.textproto":5:1)
#loc1 = loc("small_decode.textproto":6:3)
#loc2 = loc("small_decode.textproto":6:49)
#loc3 = loc("small_decode.textproto":6:78)
#loc4 = loc("small_decode.textproto":6:35)
#loc5 = loc("small_decode.textproto":6:26)
#loc6 = loc("small_decode.textproto":6:9)
#loc7 = loc("small_decode.textproto":5:20)
#loc8 = loc("small_decode.textproto":7:3)
#loc9 = loc("small_decode.textproto":7:16)
#loc10 = loc("small_decode.textproto":7:40)
#loc11 = loc("small_decode.textproto":5:11)
#loc12 = loc("small_decode.textproto":2:1)
#loc13 = loc("small_decode.textproto":4:9)
#loc14 = loc("small_decode.textproto":2:19)
#loc15 = loc("small_decode.textproto":3:55)
#loc16 = loc("small_decode.textproto":4:41)
#loc17 = loc("small_decode.textproto":3:9)
#loc18 = loc("small_decode.textproto":2:63)
#loc19 = loc("small_decode.textproto":2:39)
#loc20 = loc("small_decode.textproto":2:30)
#loc21 = loc("small_decode.textproto":2:51)
#loc22 = loc("small_decode.textproto":2:9)
#loc23 = loc("small_decode.textproto":3:27)
#loc24 = loc("small_decode.textproto":3:40)
#loc25 = loc("small_decode.textproto":3:76)
#loc26 = loc("small_decode.textproto":2:74)
#loc27 = loc("small_decode.textproto":4:26)
#loc28 = loc("small_decode.textproto":1:1)
#loc29 = loc("small_decode.textproto":9:1)
#loc30 = loc("small_decode.textproto":9:66)
#loc31 = loc("small_decode.textproto":9:24)
#loc32 = loc("small_decode.textproto":9:30)
#loc33 = loc("small_decode.textproto":9:36)
#loc34 = loc("small_decode.textproto":9:49)
#loc35 = loc("small_decode.textproto":9:18)
#loc36 = loc("small_decode.textproto":9:85)
#loc37 = loc("small_decode.textproto":9:12)
#loc38 = loc("small_decode.textproto":8:1)
#loc39 = loc("small_decode.textproto":8:50)
#loc40 = loc("small_decode.textproto":8:36)
#loc41 = loc("small_decode.textproto":8:25)
#loc42 = loc("small_decode.textproto":8:12)
module @send_from_wrong_stage attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small_decode", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 2 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {kv_cache_len = 6 : i64, phase = "DECODE", seq_len = 4 : i64, sequences = 8 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.kv_cache_len = #loc39, workload.phase = #loc40, workload.seq_len = #loc41, workload.sequences = #loc42}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">, model.sharding = {capacity = 1 : i64, micro_batches = 2 : i64, sequences_per_micro_batch = 4 : i64, tokens = 4 : i64, tokens_per_rank = 2 : i64}} {
  func.func @forward(%arg0: tensor<4xi32>) -> tensor<4x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<4xi32> -> tensor<4x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, stage = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>, tensor<2x1xi32> -> tensor<4x1x8xf32>, tensor<2x1xi32>
    %8 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 16 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %10 = model.reshard  all_to_all %9 over "ep" to tokens {layer = 0 : i64, stage = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32>, tensor<2x1xi32>, tensor<2x1xi32>, tensor<2x1xf32> -> tensor<2x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %13 = model.transfer %12 from 0 to 1 {stage = 1 : i64} : tensor<2x8xf32>
    %14 = model.norm  rms_norm %13 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x8xf32>
    %15 = model.reshard  all_gather %14 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %16 = model.attention %15 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x8xf32>
    %17 = model.reshard  reduce_scatter %16 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %18 = model.add %13, %17 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %19 = model.norm  rms_norm %18 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x8xf32>
    %20 = model.reshard  all_gather %19 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %21 = model.dense_ffn  gelu %20 {hidden = 8 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x8xf32>
    %22 = model.reshard  reduce_scatter %21 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %23 = model.add %18, %22 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %24 = model.norm  rms_norm %23 {layer = -1 : i64, stage = 1 : i64, weight_prefix = "final_norm"} : tensor<2x8xf32>
    %25 = model.reshard  all_gather %24 over "tp" {layer = -1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %26 = model.lm_head %25 {layer = -1 : i64, stage = 1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<4x8xf32> -> tensor<4x8xf32>
    return %26 : tensor<4x8xf32>
  }
}

// -----

// A later stage may not read an earlier stage's value directly.
// ERR: error: 'model.norm' op on stage 1 uses a value that stage 1 does not compute; values cross stages only through model.transfer
#loc = loc("small_decode.textproto":5:1)
#loc1 = loc("small_decode.textproto":6:3)
#loc2 = loc("small_decode.textproto":6:49)
#loc3 = loc("small_decode.textproto":6:78)
#loc4 = loc("small_decode.textproto":6:35)
#loc5 = loc("small_decode.textproto":6:26)
#loc6 = loc("small_decode.textproto":6:9)
#loc7 = loc("small_decode.textproto":5:20)
#loc8 = loc("small_decode.textproto":7:3)
#loc9 = loc("small_decode.textproto":7:16)
#loc10 = loc("small_decode.textproto":7:40)
#loc11 = loc("small_decode.textproto":5:11)
#loc12 = loc("small_decode.textproto":2:1)
#loc13 = loc("small_decode.textproto":4:9)
#loc14 = loc("small_decode.textproto":2:19)
#loc15 = loc("small_decode.textproto":3:55)
#loc16 = loc("small_decode.textproto":4:41)
#loc17 = loc("small_decode.textproto":3:9)
#loc18 = loc("small_decode.textproto":2:63)
#loc19 = loc("small_decode.textproto":2:39)
#loc20 = loc("small_decode.textproto":2:30)
#loc21 = loc("small_decode.textproto":2:51)
#loc22 = loc("small_decode.textproto":2:9)
#loc23 = loc("small_decode.textproto":3:27)
#loc24 = loc("small_decode.textproto":3:40)
#loc25 = loc("small_decode.textproto":3:76)
#loc26 = loc("small_decode.textproto":2:74)
#loc27 = loc("small_decode.textproto":4:26)
#loc28 = loc("small_decode.textproto":1:1)
#loc29 = loc("small_decode.textproto":9:1)
#loc30 = loc("small_decode.textproto":9:66)
#loc31 = loc("small_decode.textproto":9:24)
#loc32 = loc("small_decode.textproto":9:30)
#loc33 = loc("small_decode.textproto":9:36)
#loc34 = loc("small_decode.textproto":9:49)
#loc35 = loc("small_decode.textproto":9:18)
#loc36 = loc("small_decode.textproto":9:85)
#loc37 = loc("small_decode.textproto":9:12)
#loc38 = loc("small_decode.textproto":8:1)
#loc39 = loc("small_decode.textproto":8:50)
#loc40 = loc("small_decode.textproto":8:36)
#loc41 = loc("small_decode.textproto":8:25)
#loc42 = loc("small_decode.textproto":8:12)
module @use_without_transfer attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small_decode", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 2 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {kv_cache_len = 6 : i64, phase = "DECODE", seq_len = 4 : i64, sequences = 8 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.kv_cache_len = #loc39, workload.phase = #loc40, workload.seq_len = #loc41, workload.sequences = #loc42}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">, model.sharding = {capacity = 1 : i64, micro_batches = 2 : i64, sequences_per_micro_batch = 4 : i64, tokens = 4 : i64, tokens_per_rank = 2 : i64}} {
  func.func @forward(%arg0: tensor<4xi32>) -> tensor<4x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<4xi32> -> tensor<4x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, stage = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>, tensor<2x1xi32> -> tensor<4x1x8xf32>, tensor<2x1xi32>
    %8 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 16 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %10 = model.reshard  all_to_all %9 over "ep" to tokens {layer = 0 : i64, stage = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32>, tensor<2x1xi32>, tensor<2x1xi32>, tensor<2x1xf32> -> tensor<2x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %13 = model.transfer %12 from 0 to 1 {stage = 1 : i64} : tensor<2x8xf32>
    %14 = model.norm  rms_norm %12 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x8xf32>
    %15 = model.reshard  all_gather %14 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %16 = model.attention %15 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x8xf32>
    %17 = model.reshard  reduce_scatter %16 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %18 = model.add %13, %17 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %19 = model.norm  rms_norm %18 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x8xf32>
    %20 = model.reshard  all_gather %19 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %21 = model.dense_ffn  gelu %20 {hidden = 8 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x8xf32>
    %22 = model.reshard  reduce_scatter %21 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %23 = model.add %18, %22 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %24 = model.norm  rms_norm %23 {layer = -1 : i64, stage = 1 : i64, weight_prefix = "final_norm"} : tensor<2x8xf32>
    %25 = model.reshard  all_gather %24 over "tp" {layer = -1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %26 = model.lm_head %25 {layer = -1 : i64, stage = 1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<4x8xf32> -> tensor<4x8xf32>
    return %26 : tensor<4x8xf32>
  }
}

// -----

// A GENERATE workload (prompt 3, 5 new tokens): @forward, the prefill, then plan.decode_step,
// then @decode_step, over the same weights and KV caches. Each cache holds 3 + 5 - 1 = 7
// positions of the micro-batch's 2 sequences; the prefill appends at position 0 after its
// attention within the prompt; a decode step attends to the cache at kv_len 3 and then
// appends at position 3 (per_step: the runtime adds the step to both).
// CHECK-LABEL: module @gen
// CHECK: plan.buffer  input "tokens" {slice = #plan.slice<"tokens"[4, 3]
// CHECK: plan.kernel  attention(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}) -> ({{.*}}seq_len = 3, kv_len = 3,
// CHECK: %[[KC:.*]] = plan.buffer  kv_cache "layers.0.attention.k_cache" {slice = #plan.slice<"layers.0.attention.k_cache"[4, 7, 8] {{.*}} : memref<14x4xf32>
// CHECK: plan.kernel  kv_append(%{{.*}}) -> (%[[KC]]) <m = 6, n = 4, sequences = 2>
// CHECK: plan.buffer  output "lm_head.logits" {slice = #plan.slice<"logits"[4, 3, 16]
// Greedy sampling in the plan: each tp rank's best id of its 8 vocabulary columns at the
// prompt's last position (ARGMAX), the pairs gathered over tp, the best of them into the
// step's tokens and column 0 of "generated" (ARGMAX_MERGE); one stage: nothing to send.
// CHECK: %[[PAIRS:.*]] = plan.buffer  activation "sample.pairs" : memref<2x2xi32>
// CHECK-NEXT: plan.kernel  argmax(%lm_head_logits) -> (%[[PAIRS]]) <n = 8, sequences = 2, seq_len = 3, vocab_end = 16>
// CHECK: plan.all_gather %[[PAIRS]] -> %[[GATHERED:.*]] on "tp" count 4
// CHECK: %[[TOKENS:.*]] = plan.buffer  input "step_tokens" {slice = #plan.slice<"step_tokens"[4, 1]
// CHECK: %[[GENERATED:.*]] = plan.buffer  output "generated" {slice = #plan.slice<"generated"[4, 5] splits[<0 over "dp" parts 1>] mb 0>} : memref<5x2xi32>
// CHECK: plan.kernel  argmax_merge(%[[GATHERED]]) -> (%[[TOKENS]], %[[GENERATED]]) <m = 2, n = 5, groups = 2>
// CHECK-NOT: plan.send
// CHECK: plan.decode_step
// CHECK-NOT: plan.buffer  weight
// CHECK: plan.kernel  embedding(%[[TOKENS]]
// CHECK: plan.kernel  rope({{.*}}) <{{.*}}first_position = 3, per_step = true>
// CHECK: plan.kernel  attention({{.*}}, %[[KC]], %{{.*}}) -> ({{.*}}seq_len = 1, kv_len = 3, {{.*}}per_step = true>
// CHECK: plan.kernel  kv_append(%{{.*}}) -> (%[[KC]]) <m = 2, n = 4, sequences = 2, first_position = 3, per_step = true>
// CHECK: plan.buffer  output "lm_head.logits.2" {slice = #plan.slice<"step_logits"[4, 1, 16]
// Decode step s's token goes to column 1 + s.
// CHECK: plan.kernel  argmax(%lm_head_logits_2) -> ({{.*}}) <n = 8, {{.*}}seq_len = 1,
// CHECK: plan.kernel  argmax_merge(%{{.*}}) -> (%[[TOKENS]], %[[GENERATED]]) <m = 2, n = 5, groups = 2, first_position = 1, per_step = true>
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
module @gen attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 2 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 1 : i64, moe_layers = {none = true}, norm = "RMS_NORM", rope_theta = 1.000000e+04 : f64, vocab_size = 16 : i64}, name = "gen", strategy = {micro_batches = 2 : i64, tp = 2 : i64}, workload = {new_tokens = 5 : i64, phase = "GENERATE", prompt_len = 3 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.head_dim = #loc17, model.heads = #loc18, model.kv_heads = #loc19, model.layers = #loc20, model.moe_layers = #loc21, model.moe_layers.none = #loc22, model.norm = #loc23, model.rope_theta = #loc24, model.vocab_size = #loc25, name = #loc26, strategy = #loc27, strategy.micro_batches = #loc28, strategy.tp = #loc29, workload = #loc30, workload.new_tokens = #loc31, workload.phase = #loc32, workload.prompt_len = #loc33, workload.sequences = #loc34}, model.mesh = #model.mesh<tp = 2, pp = 1, dp = 1, ep = 1, etp = 2, order = "tp-ep-dp-pp">, model.sharding = {capacity = 0 : i64, micro_batches = 2 : i64, sequences_per_micro_batch = 2 : i64, tokens = 6 : i64, tokens_per_rank = 3 : i64}} {
  func.func @forward(%arg0: tensor<6xi32>) -> tensor<6x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<6xi32> -> tensor<6x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<6x8xf32> -> tensor<3x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<3x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<3x8xf32> -> tensor<6x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, rope_theta = 1.000000e+04 : f64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<6x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<6x8xf32> -> tensor<3x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<3x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<3x8xf32>
    %8 = model.reshard  all_gather %7 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<3x8xf32> -> tensor<6x8xf32>
    %9 = model.dense_ffn  gelu %8 {hidden = 8 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.ffn"} : tensor<6x8xf32>
    %10 = model.reshard  reduce_scatter %9 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<6x8xf32> -> tensor<3x8xf32>
    %11 = model.add %6, %10 {layer = 0 : i64, stage = 0 : i64} : tensor<3x8xf32>
    %12 = model.norm  rms_norm %11 {layer = -1 : i64, stage = 0 : i64, weight_prefix = "final_norm"} : tensor<3x8xf32>
    %13 = model.reshard  all_gather %12 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<3x8xf32> -> tensor<6x8xf32>
    %14 = model.lm_head %13 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<6x8xf32> -> tensor<6x8xf32>
    return %14 : tensor<6x8xf32>
  }
  func.func @decode_step(%arg0: tensor<2xi32>) -> tensor<2x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<2xi32> -> tensor<2x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<1x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<1x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32> -> tensor<2x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, rope_theta = 1.000000e+04 : f64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<2x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<1x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<1x8xf32>
    %8 = model.reshard  all_gather %7 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32> -> tensor<2x8xf32>
    %9 = model.dense_ffn  gelu %8 {hidden = 8 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.ffn"} : tensor<2x8xf32>
    %10 = model.reshard  reduce_scatter %9 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<1x8xf32>
    %11 = model.add %6, %10 {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32>
    %12 = model.norm  rms_norm %11 {layer = -1 : i64, stage = 0 : i64, weight_prefix = "final_norm"} : tensor<1x8xf32>
    %13 = model.reshard  all_gather %12 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<1x8xf32> -> tensor<2x8xf32>
    %14 = model.lm_head %13 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<2x8xf32> -> tensor<2x8xf32>
    return %14 : tensor<2x8xf32>
  }
}
// -----
// GENERATE with tp 2 and 4 micro-batches of 1 sequence: the decode step's 1 token stays on
// both tp ranks. Its tp collectives are all-reduces of the whole [1, d] rows (count 8), the
// rank dispatches its 1 token, the pipeline carries [1, d] (the prefill: [2, d] per rank)
// and the LM head reads the final norm directly, with no all-gather.
// CHECK-LABEL: module @"gen-odd"
// CHECK: plan.program @stage0
// CHECK: plan.send {{.*}} count 16 {{.*}} : memref<2x8xf32>
// CHECK: plan.decode_step
// CHECK-NEXT: %step_tokens = plan.buffer  input "step_tokens" {slice = #plan.slice<"step_tokens"[4, 1] splits[<0 over "dp" parts 1>] mb 0>} : memref<1xi32>
// CHECK-NEXT: plan.recv %step_tokens from 1 on "pp" count 1 {feeds_next_step, label = "sample.recv", stream = 2 : i64} : memref<1xi32>
// CHECK-NOT: plan.all_gather
// CHECK-NOT: plan.reduce_scatter
// CHECK: plan.all_reduce %embedding_out_2 -> %head_tp_all_reduce on "tp" count 8
// CHECK: plan.all_reduce %layers_0_attention_o_2 -> %layers_0_tp_all_reduce on "tp" count 8
// CHECK: plan.kernel  dispatch({{.*}}) <n = 8, groups = 1, tokens = 1, experts = 4, {{.*}}capacity = 1>
// CHECK: plan.send {{.*}} count 8 {{.*}} : memref<1x8xf32>
// CHECK-NOT: plan.send
// CHECK: plan.program @stage1
// CHECK: plan.decode_step
// CHECK-NEXT: %pipeline_recv_2 = plan.buffer  comm "pipeline.recv.2" : memref<1x8xf32>
// CHECK-NOT: plan.all_gather
// CHECK: plan.all_reduce %layers_1_attention_o_2 -> %layers_1_tp_all_reduce on "tp" count 8
// CHECK: plan.all_reduce %layers_1_ffn_down_2 -> %layers_1_tp_all_reduce_2 on "tp" count 8
// CHECK-NOT: plan.all_gather
// CHECK: plan.kernel  gemm(%final_norm_out_2, %lm_head_weight) -> (%lm_head_logits_2) <m = 1, n = 8, k = 8>
// Two stages: the last samples and sends the ids to the first (feeds_next_step), whose
// decode step begins by receiving them.
// CHECK: plan.kernel  argmax_merge(%{{.*}}) -> (%[[IDS:.*]], %generated) <m = 1, n = 6, groups = 2, first_position = 1, per_step = true>
// CHECK-NEXT: plan.send %[[IDS]] to 0 on "pp" count 1 {feeds_next_step, label = "sample.send", stream = 2 : i64} : memref<1xi32>
#loc = loc("gen-odd.textproto":5:1)
#loc1 = loc("gen-odd.textproto":6:3)
#loc2 = loc("gen-odd.textproto":6:49)
#loc3 = loc("gen-odd.textproto":6:78)
#loc4 = loc("gen-odd.textproto":6:35)
#loc5 = loc("gen-odd.textproto":6:26)
#loc6 = loc("gen-odd.textproto":6:9)
#loc7 = loc("gen-odd.textproto":5:20)
#loc8 = loc("gen-odd.textproto":7:3)
#loc9 = loc("gen-odd.textproto":7:16)
#loc10 = loc("gen-odd.textproto":7:40)
#loc11 = loc("gen-odd.textproto":5:11)
#loc12 = loc("gen-odd.textproto":2:1)
#loc13 = loc("gen-odd.textproto":4:9)
#loc14 = loc("gen-odd.textproto":2:19)
#loc15 = loc("gen-odd.textproto":3:55)
#loc16 = loc("gen-odd.textproto":4:41)
#loc17 = loc("gen-odd.textproto":3:9)
#loc18 = loc("gen-odd.textproto":2:63)
#loc19 = loc("gen-odd.textproto":2:39)
#loc20 = loc("gen-odd.textproto":2:30)
#loc21 = loc("gen-odd.textproto":2:51)
#loc22 = loc("gen-odd.textproto":2:9)
#loc23 = loc("gen-odd.textproto":3:27)
#loc24 = loc("gen-odd.textproto":3:40)
#loc25 = loc("gen-odd.textproto":3:76)
#loc26 = loc("gen-odd.textproto":2:74)
#loc27 = loc("gen-odd.textproto":4:26)
#loc28 = loc("gen-odd.textproto":1:1)
#loc29 = loc("gen-odd.textproto":9:1)
#loc30 = loc("gen-odd.textproto":9:66)
#loc31 = loc("gen-odd.textproto":9:24)
#loc32 = loc("gen-odd.textproto":9:30)
#loc33 = loc("gen-odd.textproto":9:36)
#loc34 = loc("gen-odd.textproto":9:49)
#loc35 = loc("gen-odd.textproto":9:18)
#loc36 = loc("gen-odd.textproto":9:85)
#loc37 = loc("gen-odd.textproto":9:12)
#loc38 = loc("gen-odd.textproto":8:1)
#loc39 = loc("gen-odd.textproto":8:39)
#loc40 = loc("gen-odd.textproto":8:53)
#loc41 = loc("gen-odd.textproto":8:25)
#loc42 = loc("gen-odd.textproto":8:12)
module @"gen-odd" attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "gen-odd", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 4 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {new_tokens = 6 : i64, phase = "GENERATE", prompt_len = 4 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.new_tokens = #loc39, workload.phase = #loc40, workload.prompt_len = #loc41, workload.sequences = #loc42}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">, model.sharding = {capacity = 1 : i64, micro_batches = 4 : i64, sequences_per_micro_batch = 1 : i64, tokens = 4 : i64, tokens_per_rank = 2 : i64}} {
  func.func @forward(%arg0: tensor<4xi32>) -> tensor<4x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<4xi32> -> tensor<4x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, stage = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>, tensor<2x1xi32> -> tensor<4x1x8xf32>, tensor<2x1xi32>
    %8 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 16 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %10 = model.reshard  all_to_all %9 over "ep" to tokens {layer = 0 : i64, stage = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32>, tensor<2x1xi32>, tensor<2x1xi32>, tensor<2x1xf32> -> tensor<2x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64, stage = 0 : i64} : tensor<2x8xf32>
    %13 = model.transfer %12 from 0 to 1 {stage = 1 : i64} : tensor<2x8xf32>
    %14 = model.norm  rms_norm %13 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x8xf32>
    %15 = model.reshard  all_gather %14 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %16 = model.attention %15 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x8xf32>
    %17 = model.reshard  reduce_scatter %16 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %18 = model.add %13, %17 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %19 = model.norm  rms_norm %18 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x8xf32>
    %20 = model.reshard  all_gather %19 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %21 = model.dense_ffn  gelu %20 {hidden = 8 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x8xf32>
    %22 = model.reshard  reduce_scatter %21 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %23 = model.add %18, %22 {layer = 1 : i64, stage = 1 : i64} : tensor<2x8xf32>
    %24 = model.norm  rms_norm %23 {layer = -1 : i64, stage = 1 : i64, weight_prefix = "final_norm"} : tensor<2x8xf32>
    %25 = model.reshard  all_gather %24 over "tp" {layer = -1 : i64, stage = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %26 = model.lm_head %25 {layer = -1 : i64, stage = 1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<4x8xf32> -> tensor<4x8xf32>
    return %26 : tensor<4x8xf32>
  }
  func.func @decode_step(%arg0: tensor<1xi32>) -> tensor<1x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, stage = 0 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<1xi32> -> tensor<1x8xf32>
    %1 = model.reshard  all_reduce %0 over "tp" {layer = -1 : i64, stage = 0 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<1x8xf32>
    %3 = model.attention %2 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<1x8xf32>
    %4 = model.reshard  all_reduce %3 over "tp" {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
    %5 = model.add %1, %4 {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32>
    %6 = model.norm  rms_norm %5 {layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<1x8xf32>
    %indices, %gates = model.router %6 {experts = 4 : i64, layer = 0 : i64, stage = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<1x8xf32> -> tensor<1x1xi32>, tensor<1x1xf32>
    %dispatched, %slots = model.expert_dispatch %6, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32>, tensor<1x1xi32> -> tensor<4x1x8xf32>, tensor<1x1xi32>
    %7 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %8 = model.expert_ffn  gelu %7 {hidden = 16 : i64, layer = 0 : i64, stage = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %9 = model.reshard  all_to_all %8 over "ep" to tokens {layer = 0 : i64, stage = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %10 = model.expert_combine %9, %indices, %slots, %gates {layer = 0 : i64, stage = 0 : i64} : tensor<4x1x8xf32>, tensor<1x1xi32>, tensor<1x1xi32>, tensor<1x1xf32> -> tensor<1x8xf32>
    %11 = model.add %5, %10 {layer = 0 : i64, stage = 0 : i64} : tensor<1x8xf32>
    %12 = model.transfer %11 from 0 to 1 {stage = 1 : i64} : tensor<1x8xf32>
    %13 = model.norm  rms_norm %12 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<1x8xf32>
    %14 = model.attention %13 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<1x8xf32>
    %15 = model.reshard  all_reduce %14 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
    %16 = model.add %12, %15 {layer = 1 : i64, stage = 1 : i64} : tensor<1x8xf32>
    %17 = model.norm  rms_norm %16 {layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<1x8xf32>
    %18 = model.dense_ffn  gelu %17 {hidden = 8 : i64, layer = 1 : i64, stage = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<1x8xf32>
    %19 = model.reshard  all_reduce %18 over "tp" {layer = 1 : i64, stage = 1 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
    %20 = model.add %16, %19 {layer = 1 : i64, stage = 1 : i64} : tensor<1x8xf32>
    %21 = model.norm  rms_norm %20 {layer = -1 : i64, stage = 1 : i64, weight_prefix = "final_norm"} : tensor<1x8xf32>
    %22 = model.lm_head %21 {layer = -1 : i64, stage = 1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<1x8xf32> -> tensor<1x8xf32>
    return %22 : tensor<1x8xf32>
  }
}

