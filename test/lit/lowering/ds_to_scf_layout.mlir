// RUN: ds-opt %s --split-input-file --convert-ds-to-scf
// convert-ds-to-scf on fields stored in layout nodes: their memref arguments
// are strided views of the node's buffer (strides and offset from ops::layout).

// Two vector fields placed under one dense node (AoS): cells hold x0 x1 v0 v1, so both have strides [4, 1] and @v starts at 2.
"ds.dense"() {sym_name = "cells", shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16, 2>, layout = @cells} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 16, 2>, layout = @cells} : () -> ()
func.func @placed(%i: index) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %a = "ds.load"(%i, %c1) {field = @x} : (index, index) -> f32
  "ds.store"(%a, %i, %c1) {field = @v} : (f32, index, index) -> ()
  return
}

// -----

// A vector field stored by component (order = "soa"): strides [1, 16], all x0 first; an atomic on it.
"ds.dense"() {sym_name = "x_cells", shape = array<i64: 16>, order = "soa"} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16, 2>, layout = @x_cells} : () -> ()
func.func @soa(%i: index, %w: f32) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  "ds.atomic_add"(%w, %i, %c1) {field = @x} : (f32, index, index) -> ()
  return
}

// -----

// SoA with two placed fields, a scalar and a 2x2 matrix: @m's components follow @s's 8 cells (offset 8, strides [1, 16, 8]).
"ds.dense"() {sym_name = "cells", shape = array<i64: 8>, order = "soa"} : () -> ()
"ds.field"() {sym_name = "s", element_type = f64, shape = array<i64: 8>, layout = @cells} : () -> ()
"ds.field"() {sym_name = "m", element_type = f64, shape = array<i64: 8, 2, 2>, layout = @cells} : () -> ()
func.func @matrix(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = "ds.load"(%i) {field = @s} : (index) -> f64
  "ds.store"(%a, %i, %c1, %c0) {field = @m} : (f64, index, index, index) -> ()
  return
}

// -----

// A scalar field alone under a dense node of its shape is a plain array (identity layout).
"ds.dense"() {sym_name = "grid", shape = array<i64: 4, 4>} : () -> ()
"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 4, 4>, layout = @grid} : () -> ()
func.func @plain(%i: index, %j: index) attributes {ds.kernel} {
  %a = "ds.load"(%i, %j) {field = @g} : (index, index) -> f32
  "ds.store"(%a, %j, %i) {field = @g} : (f32, index, index) -> ()
  return
}

