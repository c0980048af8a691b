// RUN: ds-opt %s --pass-pipeline='builtin.module(ds-to-llvm-cpu)'
// The whole CPU pipeline: the task and range functions in the LLVM dialect,
// fields as bare (noalias) pointers.

"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 1024>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 1024>} : () -> ()
func.func @saxpy(%a: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 1024 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %y = "ds.load"(%i) {field = @y} : (index) -> f32
    %ax = arith.mulf %a, %x : f32
    %s = math.sin %ax : f32
    %r = arith.addf %s, %y : f32
    "ds.store"(%r, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
