// RUN: ds-opt %s --split-input-file --ds-autodiff --cse
// One case per record of the autodiff rule table (passes/src/autodiff/rules.rs):
// every differentiable arith and math op, then ops through which no gradient
// flows. Each case is out = OP(a, ...) on 0-D f64 fields; its grad kernel reads
// and clears dL/dout and adds each operand's share into dL/da, dL/db, dL/dc.
// (autodiff_rules::every_differentiable_op_has_a_lit_case checks the list.)

// arith.addf: a and b each receive dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @addf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.addf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.subf: a receives dL/dout, b its negation.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @subf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.subf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.mulf: a receives b dL/dout, b receives a dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @mulf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.mulf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.divf: a receives dL/dout / b, b receives -(a dL/dout / b) / b.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @divf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.divf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.negf: a receives -dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @negf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = arith.negf %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.maximumf: dL/dout goes to a where a >= b, else to b.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @maximumf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.maximumf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.maxnumf: dL/dout goes to a where a >= b, else to b.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @maxnumf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.maxnumf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.minimumf: dL/dout goes to a where a <= b, else to b.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @minimumf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.minimumf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.minnumf: dL/dout goes to a where a <= b, else to b.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @minnumf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.minnumf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.select: dL/dout goes to the operand chosen; the condition (arith.cmpf) gets none.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @select() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %p = arith.cmpf olt, %a, %b : f64
  %r = arith.select %p, %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.remf: a receives dL/dout, b receives -trunc(a / b) dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @remf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = arith.remf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.extf: the f64 adjoint of out goes back to h truncated to f32.
"ds.field"() {sym_name = "h", element_type = f32, shape = array<i64>, grad = @h_grad} : () -> ()
"ds.field"() {sym_name = "h_grad", element_type = f32, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @extf() attributes {ds.kernel} {
  %h = "ds.load"() {field = @h} : () -> f32
  %r = arith.extf %h : f32 to f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.truncf: the f32 adjoint of out goes back to a extended to f64.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64>} : () -> ()
func.func @truncf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = arith.truncf %a : f64 to f32
  "ds.store"(%r) {field = @out} : (f32) -> ()
  return
}

// -----

// math.sin: a receives cos(a) dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @sin() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.sin %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.cos: a receives -sin(a) dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @cos() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.cos %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.tanh: a receives (1 - out^2) dL/dout, from the recomputed out.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @tanh() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.tanh %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.exp: a receives out dL/dout, from the recomputed out.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @exp() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.exp %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.log: a receives dL/dout / a.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @log() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.log %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.sqrt: a receives 0.5 dL/dout / out.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @sqrt() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.sqrt %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.rsqrt: a receives -0.5 out^3 dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @rsqrt() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.rsqrt %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.powf: a receives b a^(b - 1) dL/dout; b receives out log(a) dL/dout where a > 0, else nothing.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @powf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = math.powf %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.absf: a receives sgn(a) dL/dout, with sgn(0) = 0.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @absf() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.absf %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.tan: a receives (1 + out^2) dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @tan() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.tan %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.asin: a receives dL/dout / sqrt(1 - a^2).
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @asin() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.asin %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.acos: a receives -dL/dout / sqrt(1 - a^2).
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @acos() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.acos %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.atan: a receives dL/dout / (1 + a^2).
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @atan() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.atan %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.sinh: a receives cosh(a) dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @sinh() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.sinh %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.cosh: a receives sinh(a) dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @cosh() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.cosh %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.log2: a receives dL/dout / (a ln 2).
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @log2() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.log2 %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.exp2: a receives out ln 2 dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @exp2() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.exp2 %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.atan2: a receives b dL/dout / (a^2 + b^2), b receives -a dL/dout / (a^2 + b^2).
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @atan2() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %r = math.atan2 %a, %b : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.fma: a receives b dL/dout, b receives a dL/dout, c receives dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f64, shape = array<i64>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "c", element_type = f64, shape = array<i64>, grad = @c_grad} : () -> ()
"ds.field"() {sym_name = "c_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @fma() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %b = "ds.load"() {field = @b} : () -> f64
  %c = "ds.load"() {field = @c} : () -> f64
  %r = math.fma %a, %b, %c : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.floor: no gradient flows to a; the grad kernel only reads and clears dL/dout.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @floor() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.floor %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.ceil: no gradient flows to a.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @ceil() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.ceil %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.round: no gradient flows to a.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @round() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.round %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.roundeven: no gradient flows to a.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @roundeven() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.roundeven %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// math.trunc: no gradient flows to a.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @trunc() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = math.trunc %a : f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// ds.stop_grad: no gradient flows to a, whose value passes through.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @stop_grad() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %r = "ds.stop_grad"(%a) : (f64) -> f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}

// -----

// arith.fptosi, arith.addi, arith.sitofp: no gradient flows through an integer.
"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64>} : () -> ()
func.func @integer_round_trip() attributes {ds.kernel} {
  %a = "ds.load"() {field = @a} : () -> f64
  %k = arith.fptosi %a : f64 to i32
  %one = arith.constant 1 : i32
  %inc = arith.addi %k, %one : i32
  %r = arith.sitofp %inc : i32 to f64
  "ds.store"(%r) {field = @out} : (f64) -> ()
  return
}
