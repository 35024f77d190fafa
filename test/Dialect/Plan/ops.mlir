// RUN: moeplan-opt %s | moeplan-opt | FileCheck %s

// A kernel's dimensions are a typed attribute: printed in plan.proto's field order, whatever
// the order written, with every field that is 0, false or none left out; a reprinted plan
// reads back the same.
// CHECK-LABEL: plan.program @dims
// CHECK: plan.kernel  gemm(%a, %b) -> (%c) <m = 4, n = 8, k = 16, transpose_b = true> {label = "g"}
// CHECK: plan.kernel  norm(%c, %w) -> (%c) <m = 4, n = 8, norm = rms_norm, epsilon = 9.9999999999999995E-7> {label = "n"}
// CHECK: plan.kernel  rope(%c) -> (%c) <m = 4, sequences = 1, heads = 2, head_dim = 4, rope_theta = 5.000000e+05, first_position = 3, per_step = true> {label = "r"}
// CHECK: plan.kernel  add(%c, %c) -> (%c) <n = 32> {label = "a"}
module {
  plan.program @dims stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4x16xf32>
    %b = plan.buffer  weight "b" : memref<8x16xf32>
    %c = plan.buffer  activation "c" : memref<4x8xf32>
    %w = plan.buffer  weight "w" : memref<8xf32>
    plan.kernel  gemm(%a, %b) -> (%c) <transpose_b = true, k = 16, n = 8, m = 4> {label = "g"} : (memref<4x16xf32>, memref<8x16xf32>) -> memref<4x8xf32>
    plan.kernel  norm(%c, %w) -> (%c) <m = 4, n = 8, norm = rms_norm, epsilon = 1.0e-6, groups = 0> {label = "n"} : (memref<4x8xf32>, memref<8xf32>) -> memref<4x8xf32>
    plan.kernel  rope(%c) -> (%c) <per_step = true, first_position = 3, rope_theta = 500000.0, m = 4, heads = 2, head_dim = 4, sequences = 1> {label = "r"} : (memref<4x8xf32>) -> memref<4x8xf32>
    plan.kernel  add(%c, %c) -> (%c) <n = 32, renormalize = false> {label = "a"} : (memref<4x8xf32>, memref<4x8xf32>) -> memref<4x8xf32>
  }
}
