// RUN: moeplan-opt %s --split-input-file --verify-diagnostics

// A dimension the attribute does not have is refused, not kept as an unread name.
module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4x16xf32>
    %b = plan.buffer  weight "b" : memref<16x8xf32>
    %c = plan.buffer  activation "c" : memref<4x8xf32>
    // expected-error @+1 {{unknown struct parameter name: rows}}
    plan.kernel  gemm(%a, %b) -> (%c) <rows = 4, n = 8, k = 16> {label = "g"} : (memref<4x16xf32>, memref<16x8xf32>) -> memref<4x8xf32>
  }
}

// -----

module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4x16xf32>
    %b = plan.buffer  weight "b" : memref<16x8xf32>
    %c = plan.buffer  activation "c" : memref<4x8xf32>
    // expected-error @+2 {{expected true or false}}
    // expected-error @+1 {{failed to parse Plan_KernelDimsAttr parameter 'transpose_b'}}
    plan.kernel  gemm(%a, %b) -> (%c) <m = 4, n = 8, k = 16, transpose_b = 1> {label = "g"} : (memref<4x16xf32>, memref<16x8xf32>) -> memref<4x8xf32>
  }
}

// -----

module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %x = plan.buffer  activation "x" : memref<4x8xf32>
    %w = plan.buffer  weight "w" : memref<8xf32>
    // expected-error @+2 {{expected ::moeplan::planir::NormKind to be one of: none, layer_norm, rms_norm}}
    // expected-error @+1 {{failed to parse Plan_KernelDimsAttr parameter 'norm'}}
    plan.kernel  norm(%x, %w) -> (%x) <m = 4, n = 8, norm = batch_norm> {label = "n"} : (memref<4x8xf32>, memref<8xf32>) -> memref<4x8xf32>
  }
}

// -----

// The verifier reads the typed dimensions: a GEMM whose operands disagree with them.
module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4x16xf32>
    %b = plan.buffer  weight "b" : memref<16x8xf32>
    %c = plan.buffer  activation "c" : memref<4x8xf32>
    // expected-error @+1 {{gemm a has 64 elements, dims say 80}}
    plan.kernel  gemm(%a, %b) -> (%c) <m = 4, n = 8, k = 20> {label = "g"} : (memref<4x16xf32>, memref<16x8xf32>) -> memref<4x8xf32>
  }
}

// -----

// A grouped GEMM without groups is one group.
module {
  plan.program @p stage 0 layers [0, 1) ranks [0] {
    %a = plan.buffer  activation "a" : memref<4x16xf32>
    %b = plan.buffer  weight "b" : memref<16x8xf32>
    %c = plan.buffer  activation "c" : memref<4x9xf32>
    // expected-error @+1 {{grouped_gemm c has 36 elements, dims say 32}}
    plan.kernel  grouped_gemm(%a, %b) -> (%c) <m = 4, n = 8, k = 16> {label = "g"} : (memref<4x16xf32>, memref<16x8xf32>) -> memref<4x9xf32>
  }
}
