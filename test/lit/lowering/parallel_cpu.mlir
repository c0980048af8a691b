// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu
// Kernels split into task functions: a parallel loop becomes a task over a
// sub-range plus a range function; serial top-level code becomes a serial task;
// captured top-level arithmetic is recomputed in each task.

// Two parallel loops and serial code between them: two tasks with range functions and a serial task.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "total", element_type = f32, shape = array<i64>} : () -> ()
func.func @two_loops_and_serial(%n: index, %s: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %two = arith.constant 2.0 : f32
  %s2 = arith.mulf %s, %two : f32
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    "ds.store"(%s2, %i) {field = @a} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  "ds.store"(%s) {field = @total} : (f32) -> ()
  %c1 = arith.constant 1 : index
  %m = arith.subi %n, %c1 : index
  "ds.parallel_for"(%c1, %m) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @a} : (index) -> f32
    "ds.atomic_add"(%v) {field = @total} : (f32) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A struct_for over a dense 2-D field: a task over its cells.
"ds.field"() {sym_name = "m", element_type = i32, shape = array<i64: 4, 8>} : () -> ()
func.func @struct_for() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    %v = arith.constant 1 : i32
    "ds.atomic_add"(%v, %i, %j) {field = @m} : (i32, index, index) -> ()
    gpu.yield
  }) {field = @m} : () -> ()
  return
}
