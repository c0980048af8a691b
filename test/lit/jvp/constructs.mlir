// RUN: ds-opt %s --split-input-file --ds-jvp --canonicalize --cse
// ds-jvp on each construct, one case each: the tangent kernel @k_jvp does what
// @k does and writes the tangents of what it writes into the duals.

// Elementwise math: y = sin(x) * s + x / c, with s a parameter (a constant).
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, dual = @x_dot} : () -> ()
"ds.field"() {sym_name = "x_dot", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "c", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 8>, dual = @y_dot} : () -> ()
"ds.field"() {sym_name = "y_dot", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @elementwise(%s: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %c = "ds.load"(%i) {field = @c} : (index) -> f32
    %sin = math.sin %x : f32
    %a = arith.mulf %sin, %s : f32
    %b = arith.divf %x, %c : f32
    %y = arith.addf %a, %b : f32
    "ds.store"(%y, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// scf.if with a result: the rebuilt if yields the tangent of each branch; max picks a tangent.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64: 8>, dual = @a_dot} : () -> ()
"ds.field"() {sym_name = "a_dot", element_type = f64, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64: 8>, dual = @out_dot} : () -> ()
"ds.field"() {sym_name = "out_dot", element_type = f64, shape = array<i64: 8>} : () -> ()
func.func @branch() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %z = arith.constant 0.0 : f64
    %p = arith.cmpf ogt, %a, %z : f64
    %r = scf.if %p -> (f64) {
      %e = math.exp %a : f64
      scf.yield %e : f64
    } else {
      %one = arith.constant 1.0 : f64
      scf.yield %one : f64
    }
    %m = arith.maximumf %r, %a : f64
    "ds.store"(%m, %i) {field = @out} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A serial loop carrying a float: the rebuilt loop carries its tangent too; an atomic add updates the dual.
"ds.field"() {sym_name = "w", element_type = f32, shape = array<i64: 4>, dual = @w_dot} : () -> ()
"ds.field"() {sym_name = "w_dot", element_type = f32, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "sum", element_type = f32, shape = array<i64>, dual = @sum_dot} : () -> ()
"ds.field"() {sym_name = "sum_dot", element_type = f32, shape = array<i64>} : () -> ()
func.func @carried() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  "ds.parallel_for"(%c0, %c4) ({
  ^bb0(%i: index):
    %init = arith.constant 1.0 : f32
    %p = scf.for %k = %c0 to %c4 step %c1 iter_args(%acc = %init) -> (f32) {
      %w = "ds.load"(%k) {field = @w} : (index) -> f32
      %n = arith.mulf %acc, %w : f32
      scf.yield %n : f32
    }
    "ds.atomic_add"(%p) {field = @sum} : (f32) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// declare-duals is off here, so @u has no dual: it is a constant, and @v's tangent is zero.
"ds.field"() {sym_name = "u", element_type = f32, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 4>, dual = @v_dot} : () -> ()
"ds.field"() {sym_name = "v_dot", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @constant_input() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  "ds.parallel_for"(%c0, %c4) ({
  ^bb0(%i: index):
    %u = "ds.load"(%i) {field = @u} : (index) -> f32
    %t = math.tanh %u : f32
    "ds.store"(%t, %i) {field = @v} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
