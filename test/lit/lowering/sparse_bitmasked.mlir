// RUN: ds-opt %s --split-input-file --convert-ds-to-scf
// convert-ds-to-scf on a field under a bitmasked node (lowering/src/sparse.rs):
// its data in @x$data, one activity bit per cell in @m$mask0 (32 to a word).

// A load (no mask test: an inactive cell holds 0), a store (sets the bit
// first, with an atomic ori only when it is not set), is_active, activate and
// deactivate (clears the bit, zeroes the cell when it was set).
"ds.bitmasked"() {sym_name = "m", shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 64>, layout = @m} : () -> ()
func.func @ops(%i: index, %j: index) attributes {ds.kernel} {
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  "ds.store"(%v, %j) {field = @x} : (f32, index) -> ()
  %a = "ds.is_active"(%i) {field = @x} : (index) -> i1
  "ds.activate"(%i) {field = @x} : (index) -> ()
  "ds.deactivate"(%j) {field = @x} : (index) -> ()
  return
}

// -----

// A struct_for over a dense node of bitmasked cells: over the 4 blocks, then
// over the 8 cells of each, testing each cell's bit; an atomic add into the
// adjoint @x_grad (under the same tree) tests the bit and never sets it.
"ds.dense"() {sym_name = "blocks", shape = array<i64: 4>} : () -> ()
"ds.bitmasked"() {sym_name = "cells", shape = array<i64: 8>, parent = @blocks} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @cells, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 32>, layout = @cells} : () -> ()
func.func @grads(%w: f32) attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    "ds.atomic_add"(%w, %i) {field = @x_grad} : (f32, index) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}
