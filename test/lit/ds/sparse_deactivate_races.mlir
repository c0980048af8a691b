// RUN: ds-opt %s --split-input-file --verify-diagnostics --ds-verify
// A deactivation and a write of the same sparse tree in one parallel loop:
// rejected unless every iteration touches its own cell and the deactivated
// node's cell is that one cell. (Valid forms: a loop of their own, see the
// cases below the rejected ones.)

// A pointer of dense blocks: deactivating x[i] releases the block of 8
// cells that x[i + 1], written by the next iteration, may be in.
"ds.pointer"() {sym_name = "p", shape = array<i64: 8>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 64>, layout = @b} : () -> ()
func.func @shift(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    // expected-error@+1 {{ds.deactivate of @x at node @p races ds.store of @x (line 21) in the same parallel loop: another iteration's write under the deactivated cell may be lost; deactivate in a loop of its own (a kernel's loops run one after another) or write only the iteration's own cell of a bitmasked leaf}}
    "ds.deactivate"(%i) {field = @x} : (index) -> ()
    %c1 = arith.constant 1 : index
    %j = arith.addi %i, %c1 : index
    %one = arith.constant 1.0 : f32
    "ds.store"(%one, %j) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// The iteration's own cell, but the block of a dense leaf is shared.
"ds.pointer"() {sym_name = "p", shape = array<i64: 8>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 64>, layout = @b} : () -> ()
func.func @own(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %z = arith.constant 0.0 : f32
    %empty = arith.cmpf oeq, %v, %z : f32
    scf.if %empty {
      // expected-error@+1 {{ds.deactivate of @x at node @p races ds.atomic_add of @x (line 44) in the same parallel loop}}
      "ds.deactivate"(%i) {field = @x} : (index) -> ()
    } else {
      "ds.atomic_add"(%v, %i) {field = @x} : (f32, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A struct_for over a bitmasked leaf deactivating at the leaf and writing
// another field of the tree at its own cell: apart. A struct_for writing a
// neighbour: rejected.
"ds.pointer"() {sym_name = "p", shape = array<i64: 4, 4>} : () -> ()
"ds.bitmasked"() {sym_name = "m", shape = array<i64: 4, 4>, parent = @p} : () -> ()
"ds.field"() {sym_name = "u", element_type = f32, shape = array<i64: 16, 16>, layout = @m} : () -> ()
"ds.field"() {sym_name = "w", element_type = f32, shape = array<i64: 16, 16>, layout = @m} : () -> ()
func.func @prune() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    %v = "ds.load"(%i, %j) {field = @u} : (index, index) -> f32
    %z = arith.constant 0.0 : f32
    %empty = arith.cmpf oeq, %v, %z : f32
    scf.if %empty {
      "ds.deactivate"(%i, %j) {field = @u} : (index, index) -> ()
    } else {
      "ds.store"(%v, %i, %j) {field = @w} : (f32, index, index) -> ()
    }
    gpu.yield
  }) {field = @u} : () -> ()
  return
}
func.func @smear() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    // expected-error@+1 {{ds.deactivate of @u at node @m races ds.store of @w}}
    "ds.deactivate"(%i, %j) {field = @u} : (index, index) -> ()
    %c1 = arith.constant 1 : index
    %k = arith.addi %j, %c1 : index
    %one = arith.constant 1.0 : f32
    "ds.store"(%one, %i, %k) {field = @w} : (f32, index, index) -> ()
    gpu.yield
  }) {field = @u} : () -> ()
  return
}

// -----

// Valid: the deactivation in a loop of its own, the writes in the next;
// a loop of one iteration; and an adjoint's writes (never activating).
"ds.pointer"() {sym_name = "p", shape = array<i64: 8>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 64>, layout = @b, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 64>, layout = @b} : () -> ()
func.func @two_loops(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    "ds.deactivate"(%i) {field = @x} : (index) -> ()
    %one = arith.constant 1.0 : f32
    "ds.store"(%one, %i) {field = @x_grad} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %one = arith.constant 1.0 : f32
    "ds.store"(%one, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.deactivate"(%n) {field = @x} : (index) -> ()
    %two = arith.constant 2.0 : f32
    "ds.store"(%two, %n) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
