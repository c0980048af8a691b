// RUN: ds-opt %s --ds-lower-parallel-cpu --convert-ds-to-scf
// Atomic adds to elements the task loop's iteration owns (every access of the
// field indexes one dimension by the loop variable plus one same constant)
// become a plain load, add and store; the others stay atomic, and the task
// gets a serial twin (`__serial`, for a range one thread runs) where every
// add is plain.

// Owned: v[t, i] and v[t - 1, i] (dimension 1 is i in both); not owned: f[j]
// (a serial loop's variable) and g[i] next to g[i + 1] (two offsets).
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 4, 8>} : () -> ()
"ds.field"() {sym_name = "f", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "g", element_type = i32, shape = array<i64: 9>} : () -> ()
func.func @owned_and_shared(%t: index, %a: f32, %k: i32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %tm = arith.subi %t, %c1 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %old = "ds.load"(%tm, %i) {field = @v} : (index, index) -> f32
    "ds.atomic_add"(%old, %t, %i) {field = @v} : (f32, index, index) -> ()
    "ds.atomic_sub"(%a, %tm, %i) {field = @v} : (f32, index, index) -> ()
    scf.for %j = %c0 to %c8 step %c1 {
      "ds.atomic_add"(%a, %j) {field = @f} : (f32, index) -> ()
    }
    %i1 = arith.addi %i, %c1 : index
    "ds.atomic_add"(%k, %i) {field = @g} : (i32, index) -> ()
    "ds.atomic_add"(%k, %i1) {field = @g} : (i32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// Banded: every add to h is at i plus a constant (0, 1, 2: a 3-point
// stencil's adjoint), so iterations 3 apart never update one element: the
// task gets `ds.task_band = 2` (its twin may run on chunks of 3 or more
// iterations, even chunks and odd chunks in turn).
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "h", element_type = f32, shape = array<i64: 10>} : () -> ()
func.func @banded() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %i1 = arith.addi %i, %c1 : index
    %i2 = arith.addi %i, %c2 : index
    "ds.atomic_add"(%x, %i) {field = @h} : (f32, index) -> ()
    "ds.atomic_add"(%x, %i1) {field = @h} : (f32, index) -> ()
    "ds.atomic_sub"(%x, %i2) {field = @h} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
