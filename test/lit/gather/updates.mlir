// RUN: ds-opt %s --split-input-file --ds-gather-updates --canonicalize --cse
// The adjoint of a 3-point stencil along a serial loop: iteration j adds to
// g[i, j - 1], g[i, j] and g[i, j + 1]. Rewritten, every iteration updates
// g[i, j] alone: the update iteration j made to g[i, j + 1] is made by
// iteration j + 1 (its value y[i, j] recomputed there, from y[i, j' - 1]),
// that to g[i, j - 1] by iteration j - 1. The main loop runs over [2, 15),
// where every source iteration exists; the border iterations 0, 1 and 15, 16
// test, per update, that its source is one of the old loop's [1, 16).

"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 8, 17>} : () -> ()
"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 8, 17>} : () -> ()
func.func @three_point() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    scf.for %j = %c1 to %c16 step %c1 {
      %y = "ds.load"(%i, %j) {field = @y} : (index, index) -> f32
      %half = arith.constant 0.5 : f32
      %h = arith.mulf %y, %half : f32
      %jm = arith.subi %j, %c1 : index
      %jp = arith.addi %j, %c1 : index
      "ds.atomic_add"(%h, %i, %jm) {field = @g} : (f32, index, index) -> ()
      "ds.atomic_add"(%y, %i, %j) {field = @g} : (f32, index, index) -> ()
      "ds.atomic_sub"(%h, %i, %jp) {field = @g} : (f32, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----
// A gradient's reversed loop (j = 1 + (15 - m) for m in [0, 15)), reading
// the adjoint p_grad[t, i, j] of what the primal wrote and zeroing it, and
// scattering into row t - 1 at j - 1, j + 1 and into rows i - 1, i + 1. The
// element index is 15 - m (every index along the loop is it plus a
// constant), the reference offset 1 (most updates are at j). The zeroing
// store of the iteration's own element runs in a loop of its own after the
// others: the recomputed loads of p_grad[t, i, j +- 1] must read what the
// old iterations read, before their element was zeroed. Row t - 1 is
// provably apart from row t (t is the kernel's parameter), so the adds to
// it commute with the load and store.

"ds.field"() {sym_name = "p_grad", element_type = f32, shape = array<i64: 4, 10, 18>} : () -> ()
func.func @reversed_with_zeroing(%t: index) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %c9 = arith.constant 9 : index
  "ds.parallel_for"(%c1, %c9) ({
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1b = arith.constant 1 : index
    %c15 = arith.constant 15 : index
    scf.for %m = %c0b to %c15 step %c1b {
      %c14 = arith.constant 14 : index
      %r = arith.subi %c14, %m : index
      %j = arith.addi %c1b, %r : index
      %q = arith.subi %t, %c1b : index
      %g = "ds.load"(%t, %i, %j) {field = @p_grad} : (index, index, index) -> f32
      %zero = arith.constant 0.0 : f32
      "ds.store"(%zero, %t, %i, %j) {field = @p_grad} : (f32, index, index, index) -> ()
      %k = arith.constant 2.0 : f32
      %a = arith.mulf %g, %k : f32
      %jm = arith.subi %j, %c1b : index
      %jp = arith.addi %j, %c1b : index
      %im = arith.subi %i, %c1b : index
      %ip = arith.addi %i, %c1b : index
      "ds.atomic_add"(%a, %q, %i, %jm) {field = @p_grad} : (f32, index, index, index) -> ()
      "ds.atomic_add"(%a, %q, %i, %jp) {field = @p_grad} : (f32, index, index, index) -> ()
      "ds.atomic_add"(%a, %q, %im, %j) {field = @p_grad} : (f32, index, index, index) -> ()
      "ds.atomic_add"(%a, %q, %ip, %j) {field = @p_grad} : (f32, index, index, index) -> ()
      "ds.atomic_add"(%g, %q, %i, %j) {field = @p_grad} : (f32, index, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----
// Left as it is: the loop reads g[j], which iteration j - 1 updated (g[j - 1
// + 1]); moving that update to iteration j would change what the load reads.

"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 17>} : () -> ()
func.func @reads_what_it_updates() attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  scf.for %j = %c1 to %c16 step %c1 {
    %x = "ds.load"(%j) {field = @g} : (index) -> f32
    %jm = arith.subi %j, %c1 : index
    %jp = arith.addi %j, %c1 : index
    "ds.atomic_add"(%x, %jm) {field = @g} : (f32, index) -> ()
    "ds.atomic_add"(%x, %jp) {field = @g} : (f32, index) -> ()
  }
  return
}

// -----
// Left as it is: the update's index 2 j is not the element index plus a
// constant, and a store to one element by every iteration (s[0]) makes the
// iterations' order matter.

"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 17>} : () -> ()
"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 40>} : () -> ()
"ds.field"() {sym_name = "s", element_type = f32, shape = array<i64: 1>} : () -> ()
func.func @not_a_stencil() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c16 = arith.constant 16 : index
  scf.for %j = %c1 to %c16 step %c1 {
    %y = "ds.load"(%j) {field = @y} : (index) -> f32
    %jj = arith.muli %j, %c2 : index
    "ds.atomic_add"(%y, %jj) {field = @g} : (f32, index) -> ()
    "ds.atomic_add"(%y, %j) {field = @g} : (f32, index) -> ()
  }
  scf.for %j = %c1 to %c16 step %c1 {
    %y = "ds.load"(%j) {field = @y} : (index) -> f32
    %jm = arith.subi %j, %c1 : index
    "ds.atomic_add"(%y, %jm) {field = @g} : (f32, index) -> ()
    "ds.atomic_add"(%y, %j) {field = @g} : (f32, index) -> ()
    "ds.store"(%y, %c0) {field = @s} : (f32, index) -> ()
  }
  return
}

// -----
// The same along a parallel loop: the adjoint of y[i] = x[i - 1] + 3 x[i] -
// x[i + 1] over i in [1, n - 1). Rewritten, iteration i owns x_grad[i]
// (three parallel loops: the border iterations [0, 2) and [n - 2, n), each
// update under a test of its source, and the main [2, n - 2)); the adjoint's
// zeroing of y_grad runs in a parallel loop after them. convert-ds-to-scf
// then finds every update of x_grad at the loop variable: no atomics, and no
// banded chunks.

"ds.field"() {sym_name = "y_grad", element_type = f64, shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64: 64>} : () -> ()
func.func @parallel_three_point(%n: index) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %hi = arith.subi %n, %c1 : index
  "ds.parallel_for"(%c1, %hi) ({
  ^bb0(%i: index):
    %c1b = arith.constant 1 : index
    %g = "ds.load"(%i) {field = @y_grad} : (index) -> f64
    %zero = arith.constant 0.0 : f64
    "ds.store"(%zero, %i) {field = @y_grad} : (f64, index) -> ()
    %three = arith.constant 3.0 : f64
    %g3 = arith.mulf %g, %three : f64
    %neg = arith.negf %g : f64
    %im = arith.subi %i, %c1b : index
    %ip = arith.addi %i, %c1b : index
    "ds.atomic_add"(%g, %im) {field = @x_grad} : (f64, index) -> ()
    "ds.atomic_add"(%g3, %i) {field = @x_grad} : (f64, index) -> ()
    "ds.atomic_add"(%neg, %ip) {field = @x_grad} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----
// A periodic stencil's adjoint over one period (j in [0, 16), indices (j + 1)
// % 16 and (j + 15) % 16): iteration j owns g[i, j], every source exists.
// The main loop [1, 15) reads y[i, j - 1] and y[i, j + 1] (no remainder);
// iterations 0 and 15 (inlined by canonicalize: one iteration each) read
// the wrapped ones, y[i, 15] and y[i, 0].

"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 4, 16>} : () -> ()
"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 4, 16>} : () -> ()
func.func @periodic() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  "ds.parallel_for"(%c0, %c4) ({
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c15 = arith.constant 15 : index
    %c16 = arith.constant 16 : index
    scf.for %j = %c0b to %c16 step %c1 {
      %y = "ds.load"(%i, %j) {field = @y} : (index, index) -> f32
      %jp = arith.addi %j, %c1 : index
      %right = arith.remsi %jp, %c16 : index
      %jm = arith.addi %j, %c15 : index
      %left = arith.remsi %jm, %c16 : index
      "ds.atomic_add"(%y, %i, %right) {field = @g} : (f32, index, index) -> ()
      "ds.atomic_add"(%y, %i, %j) {field = @g} : (f32, index, index) -> ()
      "ds.atomic_sub"(%y, %i, %left) {field = @g} : (f32, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}
