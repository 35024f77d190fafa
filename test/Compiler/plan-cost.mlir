// RUN: moeplan-opt %s --plan-cost --split-input-file --verify-diagnostics | FileCheck %s

// GEMM [4, 16] x [16, 8]: 2 x 4 x 8 x 16 FLOPs; it moves (64 + 128 + 32) x 4 bytes.
// CHECK: plan.kernel  gemm{{.*}}cost = #plan.cost<flops = 1024, memory_bytes = 896, comm_bytes = 0>
// Grouped GEMM of 2 groups: twice that.
// CHECK: plan.kernel  grouped_gemm{{.*}}cost = #plan.cost<flops = 2048, memory_bytes = 1792, comm_bytes = 0>
// Attention, 2 sequences x 2 heads x 8 queries x 8 keys x head_dim 4: QK^T and PV, each
// 2 x 1024 FLOPs; it reads q, k, v and writes o (no score matrix in memory).
// CHECK: plan.kernel  attention{{.*}}cost = #plan.cost<flops = 4096, memory_bytes = 2048, comm_bytes = 0>
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
    plan.kernel  gemm(%a, %b) -> (%c) {k = 16 : i64, m = 4 : i64, n = 8 : i64} {label = "g"} : (memref<4x16xf32>, memref<16x8xf32>) -> memref<4x8xf32>
    plan.kernel  grouped_gemm(%ga, %gb) -> (%gc) {groups = 2 : i64, k = 16 : i64, m = 4 : i64, n = 8 : i64} {label = "gg"} : (memref<2x4x16xf32>, memref<2x16x8xf32>) -> memref<2x4x8xf32>
    plan.kernel  attention(%q, %q, %q) -> (%o) {head_dim = 4 : i64, heads = 2 : i64, kv_heads = 2 : i64, kv_len = 8 : i64, seq_len = 8 : i64, sequences = 2 : i64} {label = "att"} : (memref<16x8xf32>, memref<16x8xf32>, memref<16x8xf32>) -> memref<16x8xf32>
    plan.kernel  add(%x, %x) -> (%x) {n = 32 : i64} {label = "add"} : (memref<32xf32>, memref<32xf32>) -> memref<32xf32>
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
    plan.kernel  attention(%q, %q, %q) -> (%o) {head_dim = 4096 : i64, heads = 65536 : i64, kv_heads = 65536 : i64, kv_len = 4194304 : i64, seq_len = 4194304 : i64, sequences = 2 : i64} {label = "att"} : (memref<8388608x268435456xf32>, memref<8388608x268435456xf32>, memref<8388608x268435456xf32>) -> memref<8388608x268435456xf32>
  }
}
