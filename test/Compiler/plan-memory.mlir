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
    plan.kernel  add(%a, %a) -> (%b) {n = 64 : i64} {label = "k0"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
    plan.kernel  add(%b, %b) -> (%c) {n = 64 : i64} {label = "k1"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
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
    plan.kernel  add(%t, %t) -> (%s) {n = 64 : i64} {label = "k0", record = 1 : i64} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
    plan.all_reduce %s -> %r on "tp" count 64 {label = "c0", stream = 1 : i64, waits = array<i64: 1>} : memref<64xf32> -> memref<64xf32>
    plan.kernel  add(%u, %u) -> (%u) {n = 64 : i64} {label = "k1"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
    plan.kernel  add(%u, %u) -> (%u) {n = 64 : i64} {label = "k2"} : (memref<64xf32>, memref<64xf32>) -> memref<64xf32>
  }
}
