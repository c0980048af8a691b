// RUN: ds-opt %s --ds-lower-parallel-cpu --convert-ds-to-scf=check-bounds=1 --canonicalize --cse
// Bounds checks hoisted out of a task loop: x[i + 1] (the loop variable plus a
// constant) and y[t] (a parameter) are tested once before the loop, whose fast
// copy accesses them unchecked; x[c[i]] (an index read from a field) is
// checked in both copies, and the other copy checks everything.

"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "c", element_type = i32, shape = array<i64: 16>} : () -> ()
func.func @gather(%n: index, %t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %j = arith.addi %i, %c1 : index
    %a = "ds.load"(%j) {field = @x} : (index) -> f32
    %ci = "ds.load"(%i) {field = @c} : (index) -> i32
    %k = arith.index_cast %ci : i32 to index
    %b = "ds.load"(%k) {field = @x} : (index) -> f32
    %s = arith.addf %a, %b : f32
    "ds.store"(%s, %t) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
