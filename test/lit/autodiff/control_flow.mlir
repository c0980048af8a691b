// RUN: ds-opt %s --split-input-file --ds-autodiff --canonicalize --cse
// ds-autodiff on each control-flow construct, one case each.

// scf.if with results and else, then scf.if without else: the grad kernel branches on the same condition.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 8>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @if_else() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f32
    %z = arith.constant 0.0 : f32
    %p = arith.cmpf ogt, %a, %z : f32
    %r = scf.if %p -> (f32) {
      %s = math.sin %a : f32
      scf.yield %s : f32
    } else {
      %m = arith.mulf %a, %a : f32
      scf.yield %m : f32
    }
    scf.if %p {
      "ds.store"(%r, %i) {field = @out} : (f32, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// scf.for carrying a value, its bound the outer index: the values are pushed on a per-thread stack.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 8>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @carried_loop() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f32
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %r = scf.for %j = %c0b to %i step %c1 iter_args(%x = %a) -> (f32) {
      %m = arith.mulf %x, %a : f32
      scf.yield %m : f32
    }
    "ds.store"(%r, %i) {field = @out} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// scf.for carrying an accumulator (added to under an scf.if, yielded): no stack, no assert.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 8>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @accumulator_loop() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c1000 = arith.constant 1000 : index
    %zero = arith.constant 0.0 : f32
    %r = scf.for %j = %c0b to %c1000 step %c1 iter_args(%acc = %zero) -> (f32) {
      %cell = arith.remui %j, %c8 : index
      %a = "ds.load"(%cell) {field = @a} : (index) -> f32
      %p = arith.cmpf ogt, %a, %zero : f32
      %next = scf.if %p -> (f32) {
        %sq = arith.mulf %a, %a : f32
        %s = arith.addf %acc, %sq : f32
        scf.yield %s : f32
      } else {
        scf.yield %acc : f32
      }
      scf.yield %next : f32
    }
    "ds.store"(%r, %i) {field = @out} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// scf.for without carried values: reversed as a loop running backwards.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 8>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @plain_loop() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f32
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    scf.for %j = %c0b to %c3 step %c1 {
      "ds.atomic_add"(%a, %j) {field = @out} : (f32, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// Two top-level parallel loops and serial code: reversed in reverse order.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "t", element_type = f32, shape = array<i64: 8>, grad = @t_grad} : () -> ()
"ds.field"() {sym_name = "t_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "loss", element_type = f32, shape = array<i64>, grad = @loss_grad} : () -> ()
"ds.field"() {sym_name = "loss_grad", element_type = f32, shape = array<i64>} : () -> ()
func.func @two_loops_and_serial() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f32
    %e = math.exp %a : f32
    "ds.store"(%e, %i) {field = @t} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  "ds.parallel_for"(%c0, %c8) ({
  ^bb0(%i: index):
    %t = "ds.load"(%i) {field = @t} : (index) -> f32
    "ds.atomic_add"(%t) {field = @loss} : (f32) -> ()
    gpu.yield
  }) : (index, index) -> ()
  %a0 = "ds.load"(%c0) {field = @a} : (index) -> f32
  %sq = arith.mulf %a0, %a0 : f32
  "ds.atomic_add"(%sq) {field = @loss} : (f32) -> ()
  return
}
