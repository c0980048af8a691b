// RUN: ds-opt %s --ds-autodiff --cse
// One adjoint rule per op: every differentiable arith/math op, and the
// non-differentiable ones (comparisons, integer math, rounding, casts to int)
// through which no gradient flows.

"ds.field"() {sym_name = "a", element_type = f64, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f64, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "h", element_type = f32, shape = array<i64: 8>, grad = @h_grad} : () -> ()
"ds.field"() {sym_name = "h_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f64, shape = array<i64: 8>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f64, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "n", element_type = i32, shape = array<i64: 8>} : () -> ()

func.func @every_rule(%s: f64) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %h = "ds.load"(%i) {field = @h} : (index) -> f32
    %e = arith.extf %h : f32 to f64
    %t = arith.truncf %a : f64 to f32
    %te = arith.extf %t : f32 to f64
    %add = arith.addf %a, %e : f64
    %sub = arith.subf %add, %te : f64
    %mul = arith.mulf %sub, %s : f64
    %div = arith.divf %mul, %e : f64
    %neg = arith.negf %div : f64
    %max = arith.maximumf %neg, %a : f64
    %min = arith.minimumf %max, %e : f64
    %maxn = arith.maxnumf %min, %a : f64
    %minn = arith.minnumf %maxn, %e : f64
    %cmp = arith.cmpf olt, %a, %e : f64
    %sel = arith.select %cmp, %minn, %a : f64
    %sin = math.sin %sel : f64
    %cos = math.cos %sin : f64
    %tanh = math.tanh %cos : f64
    %exp = math.exp %tanh : f64
    %log = math.log %exp : f64
    %abs = math.absf %log : f64
    %sqrt = math.sqrt %abs : f64
    %rsqrt = math.rsqrt %sqrt : f64
    %pow = math.powf %rsqrt, %a : f64
    %atan = math.atan2 %pow, %e : f64
    %fma = math.fma %atan, %a, %e : f64
    %fl = math.floor %fma : f64
    %ce = math.ceil %fl : f64
    %ro = math.round %ce : f64
    %cast = arith.fptosi %ro : f64 to i32
    %one = arith.constant 1 : i32
    %inc = arith.addi %cast, %one : i32
    %back = arith.sitofp %inc : i32 to f64
    %r = arith.addf %fma, %back : f64
    "ds.store"(%r, %i) {field = @out} : (f64, index) -> ()
    "ds.store"(%inc, %i) {field = @n} : (i32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
