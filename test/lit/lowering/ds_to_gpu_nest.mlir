// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu --convert-ds-to-scf --convert-ds-to-gpu --canonicalize --cse
// A perfect nest whose inner iterations are independent (ds.task_nest) runs
// one thread per (i, j): the range function returns [lo m, hi m) for the
// inner trip count m (here from the parameter %m), and thread t takes
// i = t floordiv m, j = 1 + (t - i m).

"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16, 34>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 16, 34>} : () -> ()
func.func @nest(%m: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  "ds.parallel_for"(%c0, %c16) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %hi = arith.addi %m, %c1 : index
    scf.for %j = %c1 to %hi step %c1 {
      %jp = arith.addi %j, %c1 : index
      %v = "ds.load"(%i, %jp) {field = @x} : (index, index) -> f32
      %w = arith.mulf %v, %v : f32
      "ds.store"(%w, %i, %j) {field = @y} : (f32, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A serial chain along j (x[i, j] from x[i, j - 1]): its iterations depend
// on each other, so the task keeps one thread per i and the serial loop.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16, 32>} : () -> ()
func.func @chain() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  "ds.parallel_for"(%c0, %c16) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %c32 = arith.constant 32 : index
    scf.for %j = %c1 to %c32 step %c1 {
      %jm = arith.subi %j, %c1 : index
      %v = "ds.load"(%i, %jm) {field = @x} : (index, index) -> f32
      %one = arith.constant 1.0 : f32
      %w = arith.addf %v, %one : f32
      "ds.store"(%w, %i, %j) {field = @x} : (f32, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}
