// The paper's appendix C kernel, L = sum_i 0.5 (x_i - y_i)^2, in the ds dialect.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 32>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 32>} : () -> ()
"ds.field"() {sym_name = "L", element_type = f32, shape = array<i64>, grad = @L_grad} : () -> ()
"ds.field"() {sym_name = "L_grad", element_type = f32, shape = array<i64>} : () -> ()

func.func @reduce() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 32 : index
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

// Gradient descent step x -= 0.1 dL/dx (no gradient needed for it).
func.func @update() attributes {ds.kernel, ds.no_grad} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 32 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %g = "ds.load"(%i) {field = @x_grad} : (index) -> f32
    %lr = arith.constant 0.1 : f32
    %step = arith.mulf %g, %lr : f32
    %nx = arith.subf %x, %step : f32
    "ds.store"(%nx, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
