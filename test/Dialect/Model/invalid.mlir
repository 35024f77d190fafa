// RUN: moeplan-opt %s --split-input-file --verify-diagnostics

// expected-error @+1 {{expert grid etp x ep = 16 does not fold onto tp x dp = 8}}
module attributes {model.mesh = #model.mesh<tp = 2, pp = 2, dp = 4, ep = 16, etp = 1, order = "tp-ep-dp-pp">} {}

// -----

// expected-error @+1 {{rank order "tp-cp-dp-pp" must name tp, ep, dp, pp once each}}
module attributes {model.mesh = #model.mesh<tp = 2, pp = 2, dp = 4, ep = 8, etp = 1, order = "tp-cp-dp-pp">} {}

// -----

// expected-error @+1 {{mesh axis pp must be at least 1, got 0}}
module attributes {model.mesh = #model.mesh<tp = 2, pp = 0, dp = 4, ep = 8, etp = 1, order = "tp-ep-dp-pp">} {}

// -----

func.func @gqa(%x: tensor<2x8x128xf32>) -> tensor<2x8x128xf32> {
  // expected-error @+1 {{heads 4 is not a multiple of kv_heads 3}}
  %a = model.attention %x {heads = 4 : i64, kv_heads = 3 : i64, head_dim = 32 : i64, weight_prefix = "a"} : tensor<2x8x128xf32>
  return %a : tensor<2x8x128xf32>
}

// -----

func.func @topk(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{needs 1 <= top_k <= experts, got top_k 4 and experts 2}}
  %i, %g = model.router %x {experts = 2 : i64, top_k = 4 : i64, weight_prefix = "r"} : tensor<2x8x128xf32> -> tensor<2x8x4xi32>, tensor<2x8x4xf32>
  return
}

// -----

func.func @router_shape(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{indices must be [tokens..., top_k = 2]}}
  %i, %g = model.router %x {experts = 8 : i64, top_k = 2 : i64, weight_prefix = "r"} : tensor<2x8x128xf32> -> tensor<2x8x1xi32>, tensor<2x8x1xf32>
  return
}

// -----

func.func @dispatch(%x: tensor<2x8x128xf32>, %i: tensor<2x8x1xi32>) {
  // expected-error @+1 {{result must be [experts = 64, capacity = 1, d_model]}}
  %d, %s = model.expert_dispatch %x, %i {experts = 64 : i64, capacity = 1 : i64} : tensor<2x8x128xf32>, tensor<2x8x1xi32> -> tensor<32x1x128xf32>, tensor<2x8x1xi32>
  return
}

// -----

func.func @combine(%e: tensor<4x2x128xf32>, %i: tensor<2x8x1xi32>, %s: tensor<2x8x2xi32>, %g: tensor<2x8x1xf32>) {
  // expected-error @+1 {{indices, slots and gates must have one shape}}
  %c = model.expert_combine %e, %i, %s, %g : tensor<4x2x128xf32>, tensor<2x8x1xi32>, tensor<2x8x2xi32>, tensor<2x8x1xf32> -> tensor<2x8x128xf32>
  return
}

// -----

func.func @embedding(%ids: tensor<2x8xi32>) {
  // expected-error @+1 {{result tokens}}
  %x = model.embedding %ids {vocab = 16 : i64, weight_prefix = "e"} : tensor<2x8xi32> -> tensor<2x9x128xf32>
  return
}

// -----

func.func @lm_head(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{result must be [tokens..., vocab = 512]}}
  %l = model.lm_head %x {vocab = 512 : i64, weight_prefix = "h"} : tensor<2x8x128xf32> -> tensor<2x8x500xf32>
  return
}

// -----

func.func @exchange_without_direction(%x: tensor<4x1x8xf32>) -> tensor<2x2x8xf32> {
  // expected-error @+1 {{all_to_all needs a direction: to experts or to tokens}}
  %y = model.reshard all_to_all %x over "ep" : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
  return %y : tensor<2x2x8xf32>
}

// -----

func.func @gather_with_direction(%x: tensor<2x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{has a direction, which only an all_to_all has}}
  %y = model.reshard all_gather %x over "tp" to experts : tensor<2x8xf32> -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

func.func @unknown_direction(%x: tensor<4x1x8xf32>) -> tensor<2x2x8xf32> {
  // expected-error @+2 {{expected ::moeplan::model::ExchangeDirection to be one of: experts, tokens}}
  // expected-error @+1 {{failed to parse Model_ExchangeDirectionAttr parameter 'value'}}
  %y = model.reshard all_to_all %x over "ep" to ranks : tensor<4x1x8xf32> -> tensor<2x2x8xf32>
  return %y : tensor<2x2x8xf32>
}
