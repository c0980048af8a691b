// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu --convert-ds-to-scf
// Lists: a dynamic node under a dense (or pointer) node keeps a length per
// block in @cells$len1; ds.append takes the next cell with an atomic add (a
// full list takes it back and fails the launch's `list` check), ds.length
// reads the length, and a struct_for runs over [0, length) of each list.
// With a chunk size (second case) the lists' cells come in chunks from a
// pool: an append takes the chunks up to its cell (@cells$table1 entry per
// chunk, popped from @cells$free1; none left: the `pool` check, the
// increment taken back), a load follows the chunk's entry.

"ds.dense"() {sym_name = "cells", shape = array<i64: 4, 1>} : () -> ()
"ds.dynamic"() {sym_name = "list", shape = array<i64: 1, 8>, parent = @cells} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 8>, layout = @list} : () -> ()
"ds.field"() {sym_name = "total", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @push(%c: index, %v: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    %z = arith.constant 0 : index
    %k = "ds.append"(%v, %c, %z) {field = @x} : (f32, index, index) -> i32
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @sum() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%c: index, %j: index):
    %v = "ds.load"(%c, %j) {field = @x} : (index, index) -> f32
    "ds.atomic_add"(%v, %c) {field = @total} : (f32, index) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}

// -----

// Lists of 8 growing in chunks of 2 from a pool of 6 chunks.
"ds.dense"() {sym_name = "cells", shape = array<i64: 4, 1>} : () -> ()
"ds.dynamic"() {sym_name = "list", shape = array<i64: 1, 8>, parent = @cells, chunk = 2 : i64, capacity = 6 : i64} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 8>, layout = @list} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @push(%c: index, %v: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    %z = arith.constant 0 : index
    %k = "ds.append"(%v, %c, %z) {field = @x} : (f32, index, index) -> i32
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @third(%c: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    %c2 = arith.constant 2 : index
    %v = "ds.load"(%c, %c2) {field = @x} : (index, index) -> f32
    "ds.store"(%v, %c) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
