// RUN: ds-opt %s --ds-autodiff --canonicalize
// The paper's appendix B example: y[i] = sin(x[i]^2). The grad kernel
// recomputes x[i]^2, reads and clears dL/dy[i], and adds
// 2 x[i] cos(x[i]^2) dL/dy[i] into dL/dx[i].

"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 16>, grad = @y_grad} : () -> ()
"ds.field"() {sym_name = "y_grad", element_type = f32, shape = array<i64: 16>} : () -> ()

func.func @sin_sq() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  "ds.parallel_for"(%c0, %c16) ({
  ^bb0(%i: index):
    %1 = "ds.load"(%i) {field = @x} : (index) -> f32
    %2 = arith.mulf %1, %1 : f32
    %3 = math.sin %2 : f32
    "ds.store"(%3, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
