// RUN: ds-opt %s --split-input-file --verify-diagnostics --ds-autodiff
// Kernels ds-autodiff rejects, each with the rule it breaks.

// A store to a field read earlier in the same kernel.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @overwrite() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %w = arith.mulf %v, %v : f32
    // expected-error@+1 {{kernel @overwrite cannot be differentiated: @x is written here (ds.store) after being read at}}
    "ds.store"(%w, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// An op without an adjoint rule (math.erf).
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @no_rule(%i: index) attributes {ds.kernel} {
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  // expected-error@+1 {{math.erf has no adjoint rule, so this kernel cannot be differentiated}}
  %e = math.erf %v : f32
  "ds.store"(%e, %i) {field = @x_grad} : (f32, index) -> ()
  return
}

// -----

// An scf.while, whose trip count depends on data.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @while_loop(%i: index) attributes {ds.kernel} {
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  // expected-error@+1 {{scf.while cannot be differentiated: its trip count depends on data}}
  %r = scf.while (%a = %v) : (f32) -> f32 {
    %one = arith.constant 1.0 : f32
    %c = arith.cmpf olt, %a, %one : f32
    scf.condition(%c) %a : f32
  } do {
  ^bb0(%b: f32):
    %d = arith.addf %b, %b : f32
    scf.yield %d : f32
  }
  "ds.store"(%r, %i) {field = @y} : (f32, index) -> ()
  return
}

// -----

// An atomic max into a field with a gradient.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "m", element_type = f32, shape = array<i64>, grad = @m_grad} : () -> ()
"ds.field"() {sym_name = "m_grad", element_type = f32, shape = array<i64>} : () -> ()
func.func @extremum(%i: index) attributes {ds.kernel} {
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  // expected-error@+1 {{ds.atomic_max into @m, a field with a gradient, cannot be differentiated}}
  "ds.atomic_max"(%v) {field = @m} : (f32) -> ()
  return
}

// -----

// A ds.no_grad kernel is not differentiated, so nothing is an error.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
// A kernel marked ds.no_grad (an optimizer step) is left alone: no error.
func.func @update(%lr: f32) attributes {ds.kernel, ds.no_grad} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %g = "ds.load"(%i) {field = @x_grad} : (index) -> f32
    %s = arith.mulf %g, %lr : f32
    %n = arith.subf %v, %s : f32
    "ds.store"(%n, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A store to x[i] after a load of x[i + 1]: iterations overlap.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @shift() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c7 = arith.constant 7 : index
  "ds.parallel_for"(%c0, %c7) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %j = arith.addi %i, %c1 : index
    %v = "ds.load"(%j) {field = @x} : (index) -> f32
    // Iteration i writes what iteration i - 1 read: offsets on the loop index prove nothing.
    // expected-error@+1 {{@x is written here (ds.store) after being read at}}
    "ds.store"(%v, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A load of step t - 1 and a store to step t: no overlap, no error.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 8>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 4, 8>} : () -> ()
// Reading step t - 1 and writing step t is fine: the time index is the same
// parameter in every iteration, with different offsets.
func.func @step(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %tp = arith.subi %t, %c1 : index
    %v = "ds.load"(%tp, %i) {field = @x} : (index, index) -> f32
    %w = math.sin %v : f32
    "ds.store"(%w, %t, %i) {field = @x} : (f32, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
