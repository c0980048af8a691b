// RUN: ds-opt %s --ds-autodiff --ds-jvp{declare-duals=1} --canonicalize --cse
// declare-duals gives every float field a dual, adjoints included (not the
// i32 field), and ds-jvp after ds-autodiff differentiates the grad kernel
// too: @sq_grad_jvp carries the tangents of the adjoints (forward-over-reverse).
"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 4>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f64, shape = array<i64: 4>, grad = @y_grad} : () -> ()
"ds.field"() {sym_name = "y_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "count", element_type = i32, shape = array<i64>} : () -> ()
func.func @sq() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  "ds.parallel_for"(%c0, %c4) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %y = arith.mulf %x, %x : f64
    "ds.store"(%y, %i) {field = @y} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
