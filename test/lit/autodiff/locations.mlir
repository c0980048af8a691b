// RUN: ds-opt %s --ds-autodiff --mlir-print-debuginfo
// Adjoint ops keep the location of the primal op they come from: the grad
// kernel's sin adjoint (math.cos, arith.mulf) points at line 12, column 8.

"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f64, shape = array<i64>, grad = @y_grad} : () -> ()
"ds.field"() {sym_name = "y_grad", element_type = f64, shape = array<i64>} : () -> ()

func.func @serial() attributes {ds.kernel} {
  %x = "ds.load"() {field = @x} : () -> f64
  %s = math.sin %x : f64
  "ds.store"(%s) {field = @y} : (f64) -> ()
  return
}
