// RUN: ds-run %s --fill v=0.5 --launch 'init(1.0)' --launch 'step(%t, 0.25)' --for t=1..5 --print x
// RUN: ds-run %s --fill v=1 --launch 'init(2.0); step(1, 1.0)' --launch 'step(%t, 0.5)' --for t=2..=4 --print x[4] --print x[0]
// RUN: ds-run %s --fill v=1 --fill scale=2 --launch 'step(%t, 0.5)' --for t=1..5 --grad x --print v_grad --print scale_grad
// State indexed by time step: x[t] = x[t - 1] + dt * v[t - 1] * scale, with scalar arguments.
"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 5, 2>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64: 5, 2>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f64, shape = array<i64: 5, 2>, grad = @v_grad} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f64, shape = array<i64: 5, 2>} : () -> ()
"ds.field"() {sym_name = "scale", element_type = f64, shape = array<i64>, grad = @scale_grad} : () -> ()
"ds.field"() {sym_name = "scale_grad", element_type = f64, shape = array<i64>} : () -> ()

func.func @init(%s: f64) attributes {ds.kernel} {
  "ds.store"(%s) {field = @scale} : (f64) -> ()
  return
}

func.func @step(%t: index, %dt: f64) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  "ds.parallel_for"(%c0, %c2) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %tp = arith.subi %t, %c1 : index
    %x = "ds.load"(%tp, %i) {field = @x} : (index, index) -> f64
    %v = "ds.load"(%tp, %i) {field = @v} : (index, index) -> f64
    %s = "ds.load"() {field = @scale} : () -> f64
    %dv = arith.mulf %v, %dt : f64
    %ds = arith.mulf %dv, %s : f64
    %nx = arith.addf %x, %ds : f64
    "ds.store"(%nx, %t, %i) {field = @x} : (f64, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
