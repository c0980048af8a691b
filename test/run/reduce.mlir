// RUN: ds-run %s --fill x=1 --fill y=0.25 --launch reduce --grad L --print L --print x_grad
// RUN: ds-run %s --fill x=2 --launch 'reduce; reduce' --print L
// RUN: ds-run %s --fill x=3 --launch reduce --repeat 3 --print L
// RUN: ds-run %s --fill y=1 --launch reduce --grad L --memory-budget 1M --print-plan --print x_grad
// Appendix C's loss over 4 elements, L = sum_i 0.5 (x_i - y_i)^2: dL/dx = x - y.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "L", element_type = f32, shape = array<i64>, grad = @L_grad} : () -> ()
"ds.field"() {sym_name = "L_grad", element_type = f32, shape = array<i64>} : () -> ()

func.func @reduce() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 4 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %y = "ds.load"(%i) {field = @y} : (index) -> f32
    %d = arith.subf %x, %y : f32
    %sq = arith.mulf %d, %d : f32
    %half = arith.constant 0.5 : f32
    %l = arith.mulf %half, %sq : f32
    "ds.atomic_add"(%l) {field = @L} : (f32) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
