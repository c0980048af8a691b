// RUN: ds-opt %s --ds-simplify
// ds-simplify: the fast-math folds and the removal of unused pure ops.
// The undamped wave: `k_p * lap(p[t - 2])` with k_p = 0 goes, and with it
// the loads of the stencil; `k_q * 1`, `+ 0` and the constant product fold.
"ds.field"() {sym_name = "p", element_type = f32, shape = array<i64: 3, 8>} : () -> ()
func.func @wave_step(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c7 = arith.constant 7 : index
  %tm1 = arith.subi %t, %c1 : index
  %tm2 = arith.subi %t, %c2 : index
  %alpha = arith.constant 0.0 : f32
  %c = arith.constant 340.0 : f32
  %dt = arith.constant 0.001 : f32
  %ca = arith.mulf %c, %alpha : f32
  %k_p = arith.mulf %ca, %dt : f32
  %one = arith.constant 1.0 : f32
  %zero = arith.constant 0.0 : f32
  %two = arith.constant 2.0 : f32
  "ds.parallel_for"(%c1, %c7) ({
  ^bb0(%i: index):
    %im = arith.subi %i, %c1 : index
    %ip = arith.addi %i, %c1 : index
    %q = "ds.load"(%tm1, %i) {field = @p} : (index, index) -> f32
    %ql = "ds.load"(%tm1, %im) {field = @p} : (index, index) -> f32
    %qr = "ds.load"(%tm1, %ip) {field = @p} : (index, index) -> f32
    %pm = "ds.load"(%tm2, %i) {field = @p} : (index, index) -> f32
    %pl = "ds.load"(%tm2, %im) {field = @p} : (index, index) -> f32
    %pr = "ds.load"(%tm2, %ip) {field = @p} : (index, index) -> f32
    %lq0 = arith.addf %ql, %qr : f32
    %q2 = arith.mulf %two, %q : f32
    %lq = arith.subf %lq0, %q2 : f32
    %lp0 = arith.addf %pl, %pr : f32
    %p2 = arith.mulf %two, %pm : f32
    %lp = arith.subf %lp0, %p2 : f32
    %wq = arith.mulf %lq, %one : f32
    %a = arith.addf %q2, %wq : f32
    %b = arith.subf %a, %pm : f32
    %damp = arith.mulf %k_p, %lp : f32
    %n = arith.subf %b, %damp : f32
    %n0 = arith.addf %zero, %n : f32
    %neg = arith.subf %zero, %n0 : f32
    %back = arith.mulf %neg, %two : f32
    "ds.store"(%back, %t, %i) {field = @p} : (f32, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
