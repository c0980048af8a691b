// RUN: ds-run %s --launch 'scale(4, 2.0' --print y
// RUN: ds-run %s --launch 'scael(4, 2.0)'
// RUN: ds-run %s --launch 'scale(4)'
// RUN: ds-run %s --launch 'scale(1.5, 2.0)'
// RUN: ds-run %s --launch 'scale(%i, 2.0)'
// RUN: ds-run %s --launch 'scale(%t, 2.0)' --for i=0..3
// RUN: ds-run %s --fill z=1
// RUN: ds-run %s --fill n=0.5
// RUN: ds-run %s --launch 'scale(4, 2.0)' --print y[9]
// RUN: ds-run %s --launch 'scale(4, 2.0)' --grad y
// RUN: ds-run %s --check-bounds --launch 'scale(%n, 2.0)' --for n=7..10
// RUN: ds-run %s --launch 'scale(8, 2.0)' --for t=0..
// RUN: ds-run %s --pass-pipeline 'builtin.module(no-such-pass)'
// RUN: ds-run %s --launch 'copy()' --launch 'scale(8, 2.0)' --grad s
// Errors are located: the flag and column of a bad argument, the kernel and
// source location of a failed launch.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "n", element_type = i32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "s", element_type = f32, shape = array<i64>, grad = @s_grad} : () -> ()
"ds.field"() {sym_name = "s_grad", element_type = f32, shape = array<i64>} : () -> ()

func.func @scale(%n: index, %a: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %y = arith.mulf %a, %x : f32
    "ds.store"(%y, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

func.func @copy() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %v = "ds.load"(%c0) {field = @y} : (index) -> f32
  "ds.store"(%v) {field = @s} : (f32) -> ()
  return
}
