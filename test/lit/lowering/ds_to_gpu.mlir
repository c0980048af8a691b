// RUN: ds-opt %s --ds-lower-parallel-cpu --convert-ds-to-scf --convert-ds-to-gpu --canonicalize
// Task functions become gpu.func kernels with the task's argument list: a
// parallel loop runs one thread per iteration, guarded by i < end; serial
// code runs on one thread. Range functions stay on the host.

"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "total", element_type = f32, shape = array<i64>} : () -> ()
func.func @k(%n: index, %s: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %w = arith.mulf %v, %s : f32
    "ds.atomic_add"(%w) {field = @total} : (f32) -> ()
    gpu.yield
  }) : (index, index) -> ()
  %z = arith.constant 0.0 : f32
  "ds.store"(%z, %c0) {field = @x} : (f32, index) -> ()
  return
}
