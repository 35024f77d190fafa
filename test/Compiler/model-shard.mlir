// RUN: moeplan-opt %s --split-input-file --model-shard | FileCheck %s

// tp 2, ep 2: one micro-batch of 1 sequence x 4 tokens per replica, 2 tokens per tp rank.
// CHECK-LABEL: module @small
// CHECK: model.sharding = {capacity = 1 : i64, micro_batches = 2 : i64, sequences_per_micro_batch = 1 : i64, tokens = 4 : i64, tokens_per_rank = 2 : i64}
// CHECK: func.func @forward(%{{.*}}: tensor<4xi32>) -> tensor<4x8xf32>
// Vocabulary-parallel embedding: partial sums over tp, reduce-scattered to the token split.
// CHECK: model.embedding {{.*}}vocab = 8 : i64{{.*}} : tensor<4xi32> -> tensor<4x8xf32>
// CHECK: model.reshard  reduce_scatter {{.*}} over "tp" {{.*}} : tensor<4x8xf32> -> tensor<2x8xf32>
// Attention on all tokens with 1 of 2 heads.
// CHECK: model.reshard  all_gather {{.*}} over "tp" {{.*}} : tensor<2x8xf32> -> tensor<4x8xf32>
// CHECK: model.attention {{.*}}heads = 1 : i64, kv_heads = 1 : i64{{.*}} : tensor<4x8xf32>
// CHECK: model.reshard  reduce_scatter {{.*}} over "tp"
// Layer 0 is MoE: each rank routes its own 2 tokens; 2 experts per ep rank.
// CHECK: model.router {{.*}} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
// CHECK: model.expert_dispatch {{.*}}capacity = 1 : i64{{.*}} -> tensor<4x1x8xf32>, tensor<2x1xi32>
// CHECK: model.reshard  all_to_all {{.*}} over "ep" to experts {{.*}} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
// CHECK: model.expert_ffn  gelu {{.*}}hidden = 16 : i64{{.*}} : tensor<2x2x8xf32>
// CHECK: model.reshard  all_to_all {{.*}} over "ep" to tokens {{.*}} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
// CHECK: model.expert_combine {{.*}} -> tensor<2x8xf32>
// Layer 1 is dense: column- then row-parallel, hidden 16 / tp 2.
// CHECK: model.dense_ffn  gelu {{.*}}hidden = 8 : i64{{.*}} : tensor<4x8xf32>
// The LM head keeps its logits split over the vocabulary.
// CHECK: model.lm_head {{.*}} : tensor<4x8xf32> -> tensor<4x8xf32>
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
  func.func @forward(%arg0: tensor<2x4xi32>) -> tensor<2x4x16xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "embedding"} : tensor<2x4xi32> -> tensor<2x4x8xf32>
    %1 = model.norm  rms_norm %0 {layer = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x4x8xf32>
    %2 = model.attention %1 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<2x4x8xf32>
    %3 = model.add %0, %2 {layer = 0 : i64} : tensor<2x4x8xf32>
    %4 = model.norm  rms_norm %3 {layer = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x4x8xf32>
    %indices, %gates = model.router %4 {experts = 4 : i64, layer = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x4x8xf32> -> tensor<2x4x1xi32>, tensor<2x4x1xf32>
    %dispatched, %slots = model.expert_dispatch %4, %indices {capacity = 4 : i64, experts = 4 : i64, layer = 0 : i64} : tensor<2x4x8xf32>, tensor<2x4x1xi32> -> tensor<4x4x8xf32>, tensor<2x4x1xi32>
    %5 = model.expert_ffn  gelu %dispatched {hidden = 16 : i64, layer = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<4x4x8xf32>
    %6 = model.expert_combine %5, %indices, %slots, %gates {layer = 0 : i64} : tensor<4x4x8xf32>, tensor<2x4x1xi32>, tensor<2x4x1xi32>, tensor<2x4x1xf32> -> tensor<2x4x8xf32>
    %7 = model.add %3, %6 {layer = 0 : i64} : tensor<2x4x8xf32>
    %8 = model.norm  rms_norm %7 {layer = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x4x8xf32>
    %9 = model.attention %8 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<2x4x8xf32>
    %10 = model.add %7, %9 {layer = 1 : i64} : tensor<2x4x8xf32>
    %11 = model.norm  rms_norm %10 {layer = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x4x8xf32>
    %12 = model.dense_ffn  gelu %11 {hidden = 16 : i64, layer = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<2x4x8xf32>
    %13 = model.add %10, %12 {layer = 1 : i64} : tensor<2x4x8xf32>
    %14 = model.norm  rms_norm %13 {layer = -1 : i64, weight_prefix = "final_norm"} : tensor<2x4x8xf32>
    %15 = model.lm_head %14 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "lm_head"} : tensor<2x4x8xf32> -> tensor<2x4x16xf32>
    return %15 : tensor<2x4x16xf32>
  }
}
// -----
// expert_tp 2 (and ep 1): slots are all-gathered over etp, the expert hidden is split, and
// the partial outputs are reduce-scattered back.
// CHECK-LABEL: module @"small-etp"
// CHECK-NOT: over "ep"
// CHECK: model.reshard  all_gather {{.*}} over "etp" {{.*}} : tensor<4x2x8xf32> -> tensor<4x4x8xf32>
// CHECK: model.expert_ffn  gelu {{.*}}hidden = 8 : i64{{.*}} : tensor<4x4x8xf32>
// CHECK: model.reshard  reduce_scatter {{.*}} over "etp" {{.*}} : tensor<4x4x8xf32> -> tensor<4x2x8xf32>
#loc = loc("etp.textproto":5:1)
#loc1 = loc("etp.textproto":6:3)
#loc2 = loc("etp.textproto":6:49)
#loc3 = loc("etp.textproto":6:78)
#loc4 = loc("etp.textproto":6:35)
#loc5 = loc("etp.textproto":6:26)
#loc6 = loc("etp.textproto":6:9)
#loc7 = loc("etp.textproto":5:20)
#loc8 = loc("etp.textproto":7:3)
#loc9 = loc("etp.textproto":7:16)
#loc10 = loc("etp.textproto":7:40)
#loc11 = loc("etp.textproto":5:11)
#loc12 = loc("etp.textproto":2:1)
#loc13 = loc("etp.textproto":4:9)
#loc14 = loc("etp.textproto":2:19)
#loc15 = loc("etp.textproto":3:52)
#loc16 = loc("etp.textproto":4:41)
#loc17 = loc("etp.textproto":3:9)
#loc18 = loc("etp.textproto":2:63)
#loc19 = loc("etp.textproto":2:39)
#loc20 = loc("etp.textproto":2:30)
#loc21 = loc("etp.textproto":2:51)
#loc22 = loc("etp.textproto":2:9)
#loc23 = loc("etp.textproto":3:27)
#loc24 = loc("etp.textproto":3:40)
#loc25 = loc("etp.textproto":3:73)
#loc26 = loc("etp.textproto":2:74)
#loc27 = loc("etp.textproto":4:26)
#loc28 = loc("etp.textproto":1:1)
#loc29 = loc("etp.textproto":9:1)
#loc30 = loc("etp.textproto":9:66)
#loc31 = loc("etp.textproto":9:24)
#loc32 = loc("etp.textproto":9:30)
#loc33 = loc("etp.textproto":9:36)
#loc34 = loc("etp.textproto":9:49)
#loc35 = loc("etp.textproto":9:18)
#loc36 = loc("etp.textproto":9:12)
#loc37 = loc("etp.textproto":8:1)
#loc38 = loc("etp.textproto":8:36)
#loc39 = loc("etp.textproto":8:25)
#loc40 = loc("etp.textproto":8:12)
module @"small-etp" attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {all = true}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small-etp", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 2 : i64, ep = 1 : i64, expert_tp = 2 : i64, micro_batches = 1 : i64, pp = 1 : i64, tp = 2 : i64}, workload = {phase = "PREFILL", seq_len = 4 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.all = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.tp = #loc36, workload = #loc37, workload.phase = #loc38, workload.seq_len = #loc39, workload.sequences = #loc40}, model.mesh = #model.mesh<tp = 2, pp = 1, dp = 2, ep = 1, etp = 2, order = "tp-ep-dp-pp">} {
  func.func @forward(%arg0: tensor<4x4xi32>) -> tensor<4x4x16xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "embedding"} : tensor<4x4xi32> -> tensor<4x4x8xf32>
    %1 = model.norm  rms_norm %0 {layer = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<4x4x8xf32>
    %2 = model.attention %1 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x4x8xf32>
    %3 = model.add %0, %2 {layer = 0 : i64} : tensor<4x4x8xf32>
    %4 = model.norm  rms_norm %3 {layer = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<4x4x8xf32>
    %indices, %gates = model.router %4 {experts = 4 : i64, layer = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<4x4x8xf32> -> tensor<4x4x1xi32>, tensor<4x4x1xf32>
    %dispatched, %slots = model.expert_dispatch %4, %indices {capacity = 8 : i64, experts = 4 : i64, layer = 0 : i64} : tensor<4x4x8xf32>, tensor<4x4x1xi32> -> tensor<4x8x8xf32>, tensor<4x4x1xi32>
    %5 = model.expert_ffn  gelu %dispatched {hidden = 16 : i64, layer = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<4x8x8xf32>
    %6 = model.expert_combine %5, %indices, %slots, %gates {layer = 0 : i64} : tensor<4x8x8xf32>, tensor<4x4x1xi32>, tensor<4x4x1xi32>, tensor<4x4x1xf32> -> tensor<4x4x8xf32>
    %7 = model.add %3, %6 {layer = 0 : i64} : tensor<4x4x8xf32>
    %8 = model.norm  rms_norm %7 {layer = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<4x4x8xf32>
    %9 = model.attention %8 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x4x8xf32>
    %10 = model.add %7, %9 {layer = 1 : i64} : tensor<4x4x8xf32>
    %11 = model.norm  rms_norm %10 {layer = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<4x4x8xf32>
    %indices_0, %gates_1 = model.router %11 {experts = 4 : i64, layer = 1 : i64, top_k = 1 : i64, weight_prefix = "layers.1.router"} : tensor<4x4x8xf32> -> tensor<4x4x1xi32>, tensor<4x4x1xf32>
    %dispatched_2, %slots_3 = model.expert_dispatch %11, %indices_0 {capacity = 8 : i64, experts = 4 : i64, layer = 1 : i64} : tensor<4x4x8xf32>, tensor<4x4x1xi32> -> tensor<4x8x8xf32>, tensor<4x4x1xi32>
    %12 = model.expert_ffn  gelu %dispatched_2 {hidden = 16 : i64, layer = 1 : i64, weight_prefix = "layers.1.experts"} : tensor<4x8x8xf32>
    %13 = model.expert_combine %12, %indices_0, %slots_3, %gates_1 {layer = 1 : i64} : tensor<4x8x8xf32>, tensor<4x4x1xi32>, tensor<4x4x1xi32>, tensor<4x4x1xf32> -> tensor<4x4x8xf32>
    %14 = model.add %10, %13 {layer = 1 : i64} : tensor<4x4x8xf32>
    %15 = model.norm  rms_norm %14 {layer = -1 : i64, weight_prefix = "final_norm"} : tensor<4x4x8xf32>
    %16 = model.lm_head %15 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "lm_head"} : tensor<4x4x8xf32> -> tensor<4x4x16xf32>
    return %16 : tensor<4x4x16xf32>
  }
}
// -----
// GENERATE, tp 2, 4 micro-batches of 1 sequence: the prefill's 4 tokens split over tp
// (sequence parallelism), the decode step's 1 token does not. The decode step keeps the
// token on both tp ranks: no all-gather, an all-reduce of every row-parallel partial sum
// (embedding, attention, dense FFN), and each rank routes and dispatches the token itself.
// CHECK-LABEL: module @"gen-odd"
// CHECK: func.func @forward(%{{.*}}: tensor<4xi32>) -> tensor<4x8xf32>
// CHECK: model.reshard  reduce_scatter {{.*}} over "tp" {{.*}} : tensor<4x8xf32> -> tensor<2x8xf32>
// CHECK: model.reshard  all_gather {{.*}} over "tp" {{.*}} : tensor<2x8xf32> -> tensor<4x8xf32>
// CHECK: func.func @decode_step(%{{.*}}: tensor<1xi32>) -> tensor<1x8xf32>
// CHECK-NOT: all_gather
// CHECK-NOT: reduce_scatter
// CHECK: model.embedding {{.*}} : tensor<1xi32> -> tensor<1x8xf32>
// CHECK-NEXT: model.reshard  all_reduce {{.*}} over "tp" {layer = -1 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
// CHECK: model.attention {{.*}}heads = 1 : i64{{.*}} : tensor<1x8xf32>{{$}}
// CHECK-NEXT: model.reshard  all_reduce {{.*}} over "tp" {layer = 0 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
// CHECK: model.router {{.*}} : tensor<1x8xf32> -> tensor<1x1xi32>, tensor<1x1xf32>
// CHECK: model.expert_dispatch {{.*}} -> tensor<4x1x8xf32>, tensor<1x1xi32>
// CHECK: model.expert_combine {{.*}} -> tensor<1x8xf32>
// CHECK: model.dense_ffn  gelu {{.*}}hidden = 8 : i64{{.*}} : tensor<1x8xf32>
// CHECK-NEXT: model.reshard  all_reduce {{.*}} over "tp" {layer = 1 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>
// CHECK: model.lm_head {{.*}} : tensor<1x8xf32> -> tensor<1x8xf32>
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
module @"gen-odd" attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {every_nth = 2 : i64}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "gen-odd", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 1 : i64, ep = 2 : i64, expert_tp = 1 : i64, micro_batches = 4 : i64, pp = 2 : i64, schedule = "GPIPE", tp = 2 : i64}, workload = {new_tokens = 6 : i64, phase = "GENERATE", prompt_len = 4 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.every_nth = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.schedule = #loc36, strategy.tp = #loc37, workload = #loc38, workload.new_tokens = #loc39, workload.phase = #loc40, workload.prompt_len = #loc41, workload.sequences = #loc42}, model.mesh = #model.mesh<tp = 2, pp = 2, dp = 1, ep = 2, etp = 1, order = "tp-ep-dp-pp">} {
  func.func @forward(%arg0: tensor<4x4xi32>) -> tensor<4x4x16xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "embedding"} : tensor<4x4xi32> -> tensor<4x4x8xf32>
    %1 = model.norm  rms_norm %0 {layer = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<4x4x8xf32>
    %2 = model.attention %1 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x4x8xf32>
    %3 = model.add %0, %2 {layer = 0 : i64} : tensor<4x4x8xf32>
    %4 = model.norm  rms_norm %3 {layer = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<4x4x8xf32>
    %indices, %gates = model.router %4 {experts = 4 : i64, layer = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<4x4x8xf32> -> tensor<4x4x1xi32>, tensor<4x4x1xf32>
    %dispatched, %slots = model.expert_dispatch %4, %indices {capacity = 8 : i64, experts = 4 : i64, layer = 0 : i64} : tensor<4x4x8xf32>, tensor<4x4x1xi32> -> tensor<4x8x8xf32>, tensor<4x4x1xi32>
    %5 = model.expert_ffn  gelu %dispatched {hidden = 16 : i64, layer = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<4x8x8xf32>
    %6 = model.expert_combine %5, %indices, %slots, %gates {layer = 0 : i64} : tensor<4x8x8xf32>, tensor<4x4x1xi32>, tensor<4x4x1xi32>, tensor<4x4x1xf32> -> tensor<4x4x8xf32>
    %7 = model.add %3, %6 {layer = 0 : i64} : tensor<4x4x8xf32>
    %8 = model.norm  rms_norm %7 {layer = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<4x4x8xf32>
    %9 = model.attention %8 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x4x8xf32>
    %10 = model.add %7, %9 {layer = 1 : i64} : tensor<4x4x8xf32>
    %11 = model.norm  rms_norm %10 {layer = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<4x4x8xf32>
    %12 = model.dense_ffn  gelu %11 {hidden = 16 : i64, layer = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x4x8xf32>
    %13 = model.add %10, %12 {layer = 1 : i64} : tensor<4x4x8xf32>
    %14 = model.norm  rms_norm %13 {layer = -1 : i64, weight_prefix = "final_norm"} : tensor<4x4x8xf32>
    %15 = model.lm_head %14 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "lm_head"} : tensor<4x4x8xf32> -> tensor<4x4x16xf32>
    return %15 : tensor<4x4x16xf32>
  }
  func.func @decode_step(%arg0: tensor<4x1xi32>) -> tensor<4x1x16xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "embedding"} : tensor<4x1xi32> -> tensor<4x1x8xf32>
    %1 = model.norm  rms_norm %0 {layer = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<4x1x8xf32>
    %2 = model.attention %1 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x1x8xf32>
    %3 = model.add %0, %2 {layer = 0 : i64} : tensor<4x1x8xf32>
    %4 = model.norm  rms_norm %3 {layer = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<4x1x8xf32>
    %indices, %gates = model.router %4 {experts = 4 : i64, layer = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<4x1x8xf32> -> tensor<4x1x1xi32>, tensor<4x1x1xf32>
    %dispatched, %slots = model.expert_dispatch %4, %indices {capacity = 2 : i64, experts = 4 : i64, layer = 0 : i64} : tensor<4x1x8xf32>, tensor<4x1x1xi32> -> tensor<4x2x8xf32>, tensor<4x1x1xi32>
    %5 = model.expert_ffn  gelu %dispatched {hidden = 16 : i64, layer = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<4x2x8xf32>
    %6 = model.expert_combine %5, %indices, %slots, %gates {layer = 0 : i64} : tensor<4x2x8xf32>, tensor<4x1x1xi32>, tensor<4x1x1xi32>, tensor<4x1x1xf32> -> tensor<4x1x8xf32>
    %7 = model.add %3, %6 {layer = 0 : i64} : tensor<4x1x8xf32>
    %8 = model.norm  rms_norm %7 {layer = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<4x1x8xf32>
    %9 = model.attention %8 {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layer = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x1x8xf32>
    %10 = model.add %7, %9 {layer = 1 : i64} : tensor<4x1x8xf32>
    %11 = model.norm  rms_norm %10 {layer = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<4x1x8xf32>
    %12 = model.dense_ffn  gelu %11 {hidden = 16 : i64, layer = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x1x8xf32>
    %13 = model.add %10, %12 {layer = 1 : i64} : tensor<4x1x8xf32>
    %14 = model.norm  rms_norm %13 {layer = -1 : i64, weight_prefix = "final_norm"} : tensor<4x1x8xf32>
    %15 = model.lm_head %14 {layer = -1 : i64, vocab = 16 : i64, weight_prefix = "lm_head"} : tensor<4x1x8xf32> -> tensor<4x1x16xf32>
    return %15 : tensor<4x1x16xf32>
  }
}

