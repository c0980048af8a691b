// RUN: ds-opt %s --pass-pipeline='builtin.module(ds-verify, canonicalize, cse)'
// ds-verify mixed with upstream passes: canonicalize folds the constant
// arithmetic (16 + 16, alpha * 1.0). IRDL ops declare no memory effects, so
// cse treats them as side-effecting and keeps both loads.

"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 32>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f32, shape = array<i64: 32>} : () -> ()

func.func @axpy(%alpha: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  %c32 = arith.addi %c16, %c16 : index
  "ds.parallel_for"(%c0, %c32) ({
  ^bb0(%i: index):
    %x1 = "ds.load"(%i) {field = @a} : (index) -> f32
    %x2 = "ds.load"(%i) {field = @a} : (index) -> f32
    %one = arith.constant 1.0 : f32
    %s = arith.mulf %alpha, %one : f32
    %p = arith.mulf %s, %x1 : f32
    %y = arith.addf %p, %x2 : f32
    "ds.store"(%y, %i) {field = @b} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
