// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu --convert-ds-to-scf
// An adjoint's shape: each iteration reads and zeroes its own h[t + 1, i]
// and scatters into row t at a data-dependent bin. No load or store reaches
// row t (the first indices t + 1 and t differ by a constant), so h is still
// a reduction target for the scatter: its adds go through a second
// argument, the task's third (`ds.fields` names @h twice), and
// `ds.task_private = [2]` points the runtime's private copies there; the
// loads and the store keep the first. The serial twin takes the same
// arguments.

"ds.field"() {sym_name = "idx", element_type = i32, shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "h", element_type = f32, shape = array<i64: 4, 64>} : () -> ()
func.func @down(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %t1 = arith.addi %t, %c1 : index
    %v = "ds.load"(%t1, %i) {field = @h} : (index, index) -> f32
    %zero = arith.constant 0.0 : f32
    "ds.store"(%zero, %t1, %i) {field = @h} : (f32, index, index) -> ()
    %k = "ds.load"(%i) {field = @idx} : (index) -> i32
    %b = arith.index_cast %k : i32 to index
    "ds.atomic_add"(%v, %t, %b) {field = @h} : (f32, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// The scatter may land in the row the loads read (h[t, b] next to h[t, i]):
// not provably apart, so no private copies, no second argument.
"ds.field"() {sym_name = "idx", element_type = i32, shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "h", element_type = f32, shape = array<i64: 4, 64>} : () -> ()
func.func @same_row(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%i: index):
    %v = "ds.load"(%t, %i) {field = @h} : (index, index) -> f32
    %k = "ds.load"(%i) {field = @idx} : (index) -> i32
    %b = arith.index_cast %k : i32 to index
    "ds.atomic_add"(%v, %t, %b) {field = @h} : (f32, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
