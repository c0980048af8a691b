// Elementwise math: y = sin(x^2) exp(-x) + tanh(x) + sqrt(x^2 + 1).
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4096>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 4096>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 4096>, grad = @y_grad} : () -> ()
"ds.field"() {sym_name = "y_grad", element_type = f32, shape = array<i64: 4096>} : () -> ()
func.func @k() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 4096 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %x2 = arith.mulf %x, %x : f32
    %s = math.sin %x2 : f32
    %nx = arith.negf %x : f32
    %e = math.exp %nx : f32
    %se = arith.mulf %s, %e : f32
    %t = math.tanh %x : f32
    %one = arith.constant 1.0 : f32
    %x21 = arith.addf %x2, %one : f32
    %q = math.sqrt %x21 : f32
    %a = arith.addf %se, %t : f32
    %r = arith.addf %a, %q : f32
    "ds.store"(%r, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
