// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu --convert-ds-to-scf --convert-ds-to-gpu --canonicalize --cse
// A struct_for over a pointer of dense blocks runs one thread per cell on the
// GPU: its loop over a block's 8 cells (ds.cell_loop) is flattened into the
// thread index (block entry t floordiv 8, cell t - 8 (t floordiv 8)), the
// range function returns [0, 4 x 8), and the kernel says ds.task_cells = 8,
// so the runtime launches 8 threads per listed block. Each thread repeats
// the block's list lookup and test, which only load and compare.

"ds.pointer"() {sym_name = "p", shape = array<i64: 4>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @b} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 32>} : () -> ()
func.func @scale() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %w = arith.addf %v, %v : f32
    "ds.store"(%w, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}

// -----

// Lists under a pointer: a block's cells are [0, length), not a constant
// count, so each block stays one thread looping over its list.
"ds.pointer"() {sym_name = "p", shape = array<i64: 4>} : () -> ()
"ds.dynamic"() {sym_name = "list", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @list} : () -> ()
"ds.field"() {sym_name = "total", element_type = f32, shape = array<i64>} : () -> ()
func.func @sum() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    "ds.atomic_add"(%v) {field = @total} : (f32) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}
