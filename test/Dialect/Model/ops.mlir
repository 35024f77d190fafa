// RUN: moeplan-opt %s | moeplan-opt | FileCheck %s
// RUN: moeplan-opt %s --mlir-print-op-generic | moeplan-opt | FileCheck %s

// One MoE layer of the tiny model: batch 2, seq 8, d_model 128, 64 experts of 256, top-1,
// capacity ceil(16 x 1 / 64 x 1.25) = 1.

// CHECK: module attributes {model.mesh = #model.mesh<tp = 2, pp = 2, dp = 4, ep = 8, etp = 1, order = "tp-ep-dp-pp">}
module attributes {model.mesh = #model.mesh<tp = 2, pp = 2, dp = 4, ep = 8, etp = 1, order = "tp-ep-dp-pp">} {
  // CHECK-LABEL: func.func @layer
  func.func @layer(%ids: tensor<2x8xi32>) -> tensor<2x8x512xf32> {
    // CHECK: %[[X:.*]] = model.embedding %{{.*}} {vocab = 512 : i64, weight_prefix = "embedding"} : tensor<2x8xi32> -> tensor<2x8x128xf32>
    %x = model.embedding %ids {vocab = 512 : i64, weight_prefix = "embedding"} : tensor<2x8xi32> -> tensor<2x8x128xf32>
    // CHECK: model.norm layer_norm %[[X]] {weight_prefix = "layers.0.norm1"} : tensor<2x8x128xf32>
    %n1 = model.norm layer_norm %x {weight_prefix = "layers.0.norm1"} : tensor<2x8x128xf32>
    // CHECK: model.attention %{{.*}} {head_dim = 32 : i64, heads = 4 : i64, kv_heads = 4 : i64, weight_prefix = "layers.0.attention"}
    %a = model.attention %n1 {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 32 : i64, weight_prefix = "layers.0.attention"} : tensor<2x8x128xf32>
    // CHECK: model.add
    %h = model.add %x, %a : tensor<2x8x128xf32>
    %n2 = model.norm rms_norm %h {weight_prefix = "layers.0.norm2"} : tensor<2x8x128xf32>
    // CHECK: %[[IDX:.*]], %[[GATES:.*]] = model.router
    %idx, %gates = model.router %n2 {experts = 64 : i64, top_k = 1 : i64, weight_prefix = "layers.0.router"} : tensor<2x8x128xf32> -> tensor<2x8x1xi32>, tensor<2x8x1xf32>
    // CHECK: %[[D:.*]], %[[SLOTS:.*]] = model.expert_dispatch %{{.*}}, %[[IDX]] {capacity = 1 : i64, experts = 64 : i64} : tensor<2x8x128xf32>, tensor<2x8x1xi32> -> tensor<64x1x128xf32>, tensor<2x8x1xi32>
    %d, %slots = model.expert_dispatch %n2, %idx {experts = 64 : i64, capacity = 1 : i64} : tensor<2x8x128xf32>, tensor<2x8x1xi32> -> tensor<64x1x128xf32>, tensor<2x8x1xi32>
    // CHECK: model.expert_ffn gelu %[[D]] {hidden = 256 : i64, weight_prefix = "layers.0.experts"} : tensor<64x1x128xf32>
    %e = model.expert_ffn gelu %d {hidden = 256 : i64, weight_prefix = "layers.0.experts"} : tensor<64x1x128xf32>
    // CHECK: model.expert_combine %{{.*}}, %[[IDX]], %[[SLOTS]], %[[GATES]]
    %c = model.expert_combine %e, %idx, %slots, %gates : tensor<64x1x128xf32>, tensor<2x8x1xi32>, tensor<2x8x1xi32>, tensor<2x8x1xf32> -> tensor<2x8x128xf32>
    %h2 = model.add %h, %c : tensor<2x8x128xf32>
    // CHECK: model.dense_ffn swiglu
    %f = model.dense_ffn swiglu %h2 {hidden = 512 : i64, weight_prefix = "layers.1.ffn"} : tensor<2x8x128xf32>
    // CHECK: model.lm_head %{{.*}} {vocab = 512 : i64, weight_prefix = "lm_head"} : tensor<2x8x128xf32> -> tensor<2x8x512xf32>
    %logits = model.lm_head %f {vocab = 512 : i64, weight_prefix = "lm_head"} : tensor<2x8x128xf32> -> tensor<2x8x512xf32>
    return %logits : tensor<2x8x512xf32>
  }

  // An expert-parallel exchange says which way it moves rows; the other reshards do not.
  // CHECK-LABEL: func.func @exchange
  func.func @exchange(%x: tensor<4x1x8xf32>, %t: tensor<2x8xf32>) -> (tensor<4x1x8xf32>, tensor<4x8xf32>) {
    // CHECK: model.reshard all_to_all %{{.*}} over "ep" to experts : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    %e = model.reshard all_to_all %x over "ep" to experts : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
    // CHECK: model.reshard all_to_all %{{.*}} over "ep" to tokens : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    %b = model.reshard all_to_all %e over "ep" to tokens : tensor<2x2x8xf32> -> tensor<4x1x8xf32>
    // CHECK: model.reshard all_gather %{{.*}} over "tp" : tensor<2x8xf32> -> tensor<4x8xf32>
    %g = model.reshard all_gather %t over "tp" : tensor<2x8xf32> -> tensor<4x8xf32>
    return %b, %g : tensor<4x1x8xf32>, tensor<4x8xf32>
  }
}
