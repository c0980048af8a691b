// The paper's Fig. 10 car: v[t] = exp(-dt alpha) v[t-1] + dt a, x[t] = x[t-1] + dt v[t].
"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 2049>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64: 2049>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f64, shape = array<i64: 2049>, grad = @v_grad} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f64, shape = array<i64: 2049>} : () -> ()
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()

func.func @step(%t: index, %alpha: f64, %dt: f64) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %tp = arith.subi %t, %c1 : index
  %v0 = "ds.load"(%tp) {field = @v} : (index) -> f64
  %x0 = "ds.load"(%tp) {field = @x} : (index) -> f64
  %a = "ds.load"() {field = @a} : () -> f64
  %k = arith.mulf %dt, %alpha : f64
  %nk = arith.negf %k : f64
  %damp = math.exp %nk : f64
  %dv = arith.mulf %dt, %a : f64
  %vd = arith.mulf %damp, %v0 : f64
  %v = arith.addf %vd, %dv : f64
  "ds.store"(%v, %t) {field = @v} : (f64, index) -> ()
  %dx = arith.mulf %dt, %v : f64
  %x = arith.addf %x0, %dx : f64
  "ds.store"(%x, %t) {field = @x} : (f64, index) -> ()
  return
}
