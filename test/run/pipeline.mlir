// RUN: ds-run %s --pass-pipeline 'builtin.module(canonicalize, cse)' --fill x=3 --launch 'k(0.5)' --grad y --print y --print x_grad
// RUN: ds-run %s --fill x=3 --launch 'k(0.5)' --grad y --print y --print x_grad
// Upstream passes run on the module before it is compiled: the same results.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 3>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 3>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 3>, grad = @y_grad} : () -> ()
"ds.field"() {sym_name = "y_grad", element_type = f32, shape = array<i64: 3>} : () -> ()

func.func @k(%a: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  "ds.parallel_for"(%c0, %c3) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %x2 = "ds.load"(%i) {field = @x} : (index) -> f32
    %sq = arith.mulf %x, %x2 : f32
    %one = arith.constant 1.0 : f32
    %zero = arith.constant 0.0 : f32
    %p = arith.addf %sq, %zero : f32
    %q = arith.mulf %p, %one : f32
    %y = arith.mulf %q, %a : f32
    "ds.store"(%y, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
