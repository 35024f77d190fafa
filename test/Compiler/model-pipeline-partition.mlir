// RUN: moeplan-opt %s --split-input-file --model-pipeline-partition | FileCheck %s

// pp 2 over 2 layers: the embedding and layer 0 on stage 0; layer 1, the final norm and the
// LM head on stage 1; one transfer carries the residual stream across.
// CHECK-LABEL: module @small
// CHECK: model.embedding {{.*}}stage = 0 : i64
// CHECK: model.attention {{.*}}layer = 0 : i64, stage = 0 : i64
// CHECK: model.add {{.*}}layer = 0 : i64, stage = 0 : i64
// CHECK: %[[LAST:[0-9]+]] = model.add {{.*}}layer = 0 : i64, stage = 0 : i64
// CHECK: %[[X:[0-9]+]] = model.transfer %[[LAST]] from 0 to 1 {stage = 1 : i64} : tensor<2x8xf32>
// CHECK: model.norm  rms_norm %[[X]] {layer = 1 : i64, stage = 1 : i64
// CHECK: model.add %[[X]], {{.*}}stage = 1 : i64
// CHECK-NOT: model.transfer
// CHECK: model.lm_head {{.*}}stage = 1 : i64
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
    %0 = model.embedding %arg0 {layer = -1 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<4xi32> -> tensor<4x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<2x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<4x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64} : tensor<2x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<2x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 1 : i64, experts = 4 : i64, layer = 0 : i64} : tensor<2x8xf32>, tensor<2x1xi32> -> tensor<4x1x8xf32>, tensor<2x1xi32>
    %8 = model.reshard  all_to_all %dispatched over "ep" to experts {layer = 0 : i64} : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 16 : i64, layer = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<2x2x8xf32>
    %10 = model.reshard  all_to_all %9 over "ep" to tokens {layer = 0 : i64} : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64} : tensor<4x1x8xf32>, tensor<2x1xi32>, tensor<2x1xi32>, tensor<2x1xf32> -> tensor<2x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64} : tensor<2x8xf32>
    %13 = model.norm  rms_norm %12 {layer = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<2x8xf32>
    %14 = model.reshard  all_gather %13 over "tp" {layer = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %15 = model.attention %14 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<4x8xf32>
    %16 = model.reshard  reduce_scatter %15 over "tp" {layer = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %17 = model.add %12, %16 {layer = 1 : i64} : tensor<2x8xf32>
    %18 = model.norm  rms_norm %17 {layer = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<2x8xf32>
    %19 = model.reshard  all_gather %18 over "tp" {layer = 1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %20 = model.dense_ffn  gelu %19 {hidden = 8 : i64, layer = 1 : i64, weight_prefix = "layers.1.ffn"} : tensor<4x8xf32>
    %21 = model.reshard  reduce_scatter %20 over "tp" {layer = 1 : i64} : tensor<4x8xf32> -> tensor<2x8xf32>
    %22 = model.add %17, %21 {layer = 1 : i64} : tensor<2x8xf32>
    %23 = model.norm  rms_norm %22 {layer = -1 : i64, weight_prefix = "final_norm"} : tensor<2x8xf32>
    %24 = model.reshard  all_gather %23 over "tp" {layer = -1 : i64} : tensor<2x8xf32> -> tensor<4x8xf32>
    %25 = model.lm_head %24 {layer = -1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<4x8xf32> -> tensor<4x8xf32>
    return %25 : tensor<4x8xf32>
  }
}
// -----
// One stage: everything on stage 0, no transfer.
// CHECK-LABEL: module @"small-etp"
// CHECK-NOT: model.transfer
// CHECK: model.lm_head {{.*}}stage = 0 : i64
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
module @"small-etp" attributes {model.deployment = {cluster = {gpu = {memory_bandwidth_tb_per_s = 1.000000e+00 : f64, memory_bandwidth_utilization = 8.000000e-01 : f64, memory_gb = 1.600000e+01 : f64, mfu = 5.000000e-01 : f64, peak_tflops = 1.000000e+02 : f64}, gpus_per_node = 4 : i64, intra_node = {bandwidth_gb_per_s = 1.000000e+02 : f64, latency_us = 5.000000e+00 : f64}, nodes = 1 : i64}, model = {activation = "GELU", d_model = 8 : i64, dense_ffn_hidden = 16 : i64, dtype = "FP32", expert_hidden = 16 : i64, experts = 4 : i64, head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, layers = 2 : i64, moe_layers = {all = true}, norm = "RMS_NORM", top_k = 1 : i64, vocab_size = 16 : i64}, name = "small-etp", strategy = {capacity_factor = 2.000000e+00 : f64, dp = 2 : i64, ep = 1 : i64, expert_tp = 2 : i64, micro_batches = 1 : i64, pp = 1 : i64, tp = 2 : i64}, workload = {phase = "PREFILL", seq_len = 4 : i64, sequences = 4 : i64}}, model.locations = {cluster = #loc, cluster.gpu = #loc1, cluster.gpu.memory_bandwidth_tb_per_s = #loc2, cluster.gpu.memory_bandwidth_utilization = #loc3, cluster.gpu.memory_gb = #loc4, cluster.gpu.mfu = #loc5, cluster.gpu.peak_tflops = #loc6, cluster.gpus_per_node = #loc7, cluster.intra_node = #loc8, cluster.intra_node.bandwidth_gb_per_s = #loc9, cluster.intra_node.latency_us = #loc10, cluster.nodes = #loc11, model = #loc12, model.activation = #loc13, model.d_model = #loc14, model.dense_ffn_hidden = #loc15, model.dtype = #loc16, model.expert_hidden = #loc17, model.experts = #loc18, model.head_dim = #loc19, model.heads = #loc20, model.kv_heads = #loc21, model.layers = #loc22, model.moe_layers = #loc23, model.moe_layers.all = #loc24, model.norm = #loc25, model.top_k = #loc26, model.vocab_size = #loc27, name = #loc28, strategy = #loc29, strategy.capacity_factor = #loc30, strategy.dp = #loc31, strategy.ep = #loc32, strategy.expert_tp = #loc33, strategy.micro_batches = #loc34, strategy.pp = #loc35, strategy.tp = #loc36, workload = #loc37, workload.phase = #loc38, workload.seq_len = #loc39, workload.sequences = #loc40}, model.mesh = #model.mesh<tp = 2, pp = 1, dp = 2, ep = 1, etp = 2, order = "tp-ep-dp-pp">, model.sharding = {capacity = 2 : i64, micro_batches = 1 : i64, sequences_per_micro_batch = 2 : i64, tokens = 8 : i64, tokens_per_rank = 4 : i64}} {
  func.func @forward(%arg0: tensor<8xi32>) -> tensor<8x8xf32> {
    %0 = model.embedding %arg0 {layer = -1 : i64, vocab = 8 : i64, weight_prefix = "embedding"} : tensor<8xi32> -> tensor<8x8xf32>
    %1 = model.reshard  reduce_scatter %0 over "tp" {layer = -1 : i64} : tensor<8x8xf32> -> tensor<4x8xf32>
    %2 = model.norm  rms_norm %1 {layer = 0 : i64, weight_prefix = "layers.0.norm1"} : tensor<4x8xf32>
    %3 = model.reshard  all_gather %2 over "tp" {layer = 0 : i64} : tensor<4x8xf32> -> tensor<8x8xf32>
    %4 = model.attention %3 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 0 : i64, weight_prefix = "layers.0.attention"} : tensor<8x8xf32>
    %5 = model.reshard  reduce_scatter %4 over "tp" {layer = 0 : i64} : tensor<8x8xf32> -> tensor<4x8xf32>
    %6 = model.add %1, %5 {layer = 0 : i64} : tensor<4x8xf32>
    %7 = model.norm  rms_norm %6 {layer = 0 : i64, weight_prefix = "layers.0.norm2"} : tensor<4x8xf32>
    %indices, %gates = model.router %7 {experts = 4 : i64, layer = 0 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<4x8xf32> -> tensor<4x1xi32>, tensor<4x1xf32>
    %dispatched, %slots = model.expert_dispatch %7, %indices {capacity = 2 : i64, experts = 4 : i64, layer = 0 : i64} : tensor<4x8xf32>, tensor<4x1xi32> -> tensor<4x2x8xf32>, tensor<4x1xi32>
    %8 = model.reshard  all_gather %dispatched over "etp" {layer = 0 : i64} : tensor<4x2x8xf32> -> tensor<4x4x8xf32>
    %9 = model.expert_ffn  gelu %8 {hidden = 8 : i64, layer = 0 : i64, weight_prefix = "layers.0.experts"} : tensor<4x4x8xf32>
    %10 = model.reshard  reduce_scatter %9 over "etp" {layer = 0 : i64} : tensor<4x4x8xf32> -> tensor<4x2x8xf32>
    %11 = model.expert_combine %10, %indices, %slots, %gates {layer = 0 : i64} : tensor<4x2x8xf32>, tensor<4x1xi32>, tensor<4x1xi32>, tensor<4x1xf32> -> tensor<4x8xf32>
    %12 = model.add %6, %11 {layer = 0 : i64} : tensor<4x8xf32>
    %13 = model.norm  rms_norm %12 {layer = 1 : i64, weight_prefix = "layers.1.norm1"} : tensor<4x8xf32>
    %14 = model.reshard  all_gather %13 over "tp" {layer = 1 : i64} : tensor<4x8xf32> -> tensor<8x8xf32>
    %15 = model.attention %14 {head_dim = 4 : i64, heads = 1 : i64, kv_heads = 1 : i64, layer = 1 : i64, weight_prefix = "layers.1.attention"} : tensor<8x8xf32>
    %16 = model.reshard  reduce_scatter %15 over "tp" {layer = 1 : i64} : tensor<8x8xf32> -> tensor<4x8xf32>
    %17 = model.add %12, %16 {layer = 1 : i64} : tensor<4x8xf32>
    %18 = model.norm  rms_norm %17 {layer = 1 : i64, weight_prefix = "layers.1.norm2"} : tensor<4x8xf32>
    %indices_0, %gates_1 = model.router %18 {experts = 4 : i64, layer = 1 : i64, top_k = 1 : i64, weight_prefix = "layers.1.router"} : tensor<4x8xf32> -> tensor<4x1xi32>, tensor<4x1xf32>
    %dispatched_2, %slots_3 = model.expert_dispatch %18, %indices_0 {capacity = 2 : i64, experts = 4 : i64, layer = 1 : i64} : tensor<4x8xf32>, tensor<4x1xi32> -> tensor<4x2x8xf32>, tensor<4x1xi32>
    %19 = model.reshard  all_gather %dispatched_2 over "etp" {layer = 1 : i64} : tensor<4x2x8xf32> -> tensor<4x4x8xf32>
    %20 = model.expert_ffn  gelu %19 {hidden = 8 : i64, layer = 1 : i64, weight_prefix = "layers.1.experts"} : tensor<4x4x8xf32>
    %21 = model.reshard  reduce_scatter %20 over "etp" {layer = 1 : i64} : tensor<4x4x8xf32> -> tensor<4x2x8xf32>
    %22 = model.expert_combine %21, %indices_0, %slots_3, %gates_1 {layer = 1 : i64} : tensor<4x2x8xf32>, tensor<4x1xi32>, tensor<4x1xi32>, tensor<4x1xf32> -> tensor<4x8xf32>
    %23 = model.add %17, %22 {layer = 1 : i64} : tensor<4x8xf32>
    %24 = model.norm  rms_norm %23 {layer = -1 : i64, weight_prefix = "final_norm"} : tensor<4x8xf32>
    %25 = model.reshard  all_gather %24 over "tp" {layer = -1 : i64} : tensor<4x8xf32> -> tensor<8x8xf32>
    %26 = model.lm_head %25 {layer = -1 : i64, vocab = 8 : i64, weight_prefix = "lm_head"} : tensor<8x8xf32> -> tensor<8x8xf32>
    return %26 : tensor<8x8xf32>
  }
}

// -----

// Already partitioned input (the decode module of model-to-plan.mlir): the pass keeps its
// stages and adds no second transfer, so running it twice is harmless.
// CHECK-LABEL: module @small_decode
// CHECK: %[[T:[0-9]+]] = model.transfer %{{[0-9]+}} from 0 to 1 {stage = 1 : i64}
// CHECK-NOT: model.transfer
// CHECK: model.norm  rms_norm %[[T]] {layer = 1 : i64, stage = 1 : i64
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
