// RUN: ds-opt %s --ds-autodiff{check-finite=1} --ds-jvp{switches=1,check-finite=1} --canonicalize --cse
// The diagnostics instrumentation: check-finite asserts every adjoint (in
// @contact_grad) and every tangent (in @contact_jvp) is finite; switches
// declares @ds_switch_0 at the comparison and has @contact_jvp min into it
// how far along the tangent `x + dt v < 0` flips.
"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 4>, grad = @x_grad, dual = @x_dot} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "x_dot", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f64, shape = array<i64: 4>, grad = @v_grad, dual = @v_dot} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "v_dot", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "w", element_type = f64, shape = array<i64: 4>, grad = @w_grad, dual = @w_dot} : () -> ()
"ds.field"() {sym_name = "w_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "w_dot", element_type = f64, shape = array<i64: 4>} : () -> ()
func.func @contact(%dt: f64) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  "ds.parallel_for"(%c0, %c4) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %v = "ds.load"(%i) {field = @v} : (index) -> f64
    %s = arith.mulf %dt, %v : f64
    %n = arith.addf %x, %s : f64
    %z = arith.constant 0.0 : f64
    %hit = arith.cmpf olt, %n, %z : f64
    %m = arith.negf %v : f64
    %nv = arith.select %hit, %m, %v : f64
    "ds.store"(%nv, %i) {field = @w} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
