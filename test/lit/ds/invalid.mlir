// RUN: ds-opt %s --split-input-file --verify-diagnostics --ds-verify
// ds-verify's diagnostics, one case per rule it checks.

// A load with one index into a 2-D field.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 4>} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  // expected-error@+1 {{ds.load of @x takes 2 indices (one per dimension), got 1}}
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  return
}

// -----

// A load of a symbol that is not a field.
func.func @k(%i: index) attributes {ds.kernel} {
  // expected-error@+1 {{ds.load refers to @y, which is not a field of this module}}
  %v = "ds.load"(%i) {field = @y} : (index) -> f32
  return
}

// -----

// A store of an f64 value into an f32 field.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  %c = arith.constant 1.0 : f64
  // expected-error@+1 {{ds.store of @x: value type must be the field's element type f32, got f64}}
  "ds.store"(%c, %i) {field = @x} : (f64, index) -> ()
  return
}

// -----

// A load whose result type is not the field's element type.
"ds.field"() {sym_name = "x", element_type = i32, shape = array<i64: 4>} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  // expected-error@+1 {{ds.load of @x: result type must be the field's element type i32, got f32}}
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  return
}

// -----

// A field access outside a kernel.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @not_a_kernel(%i: index) {
  // expected-error@+1 {{ds.load of @x is outside a kernel}}
  %v = "ds.load"(%i) {field = @x} : (index) -> f32
  return
}

// -----

// A field of f16 elements.
// expected-error@+1 {{field @x: element type must be f32, f64 or i32, got f16}}
"ds.field"() {sym_name = "x", element_type = f16, shape = array<i64: 4>} : () -> ()

// -----

// A field with a zero extent.
// expected-error@+1 {{field @x: every extent must be positive, got [4, 0]}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 0>} : () -> ()

// -----

// A field of five dimensions.
// expected-error@+1 {{field @x: at most 4 dimensions are supported, got 5}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 2, 2, 2, 2, 2>} : () -> ()

// -----

// A field whose grad is not a field.
// expected-error@+1 {{field @x: its grad @x_grad is not a field of this module}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, grad = @x_grad} : () -> ()

// -----

// A field whose grad has another shape.
// expected-error@+1 {{field @x: its grad @g must be a float field of the same shape [4]}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, grad = @g} : () -> ()
"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 8>} : () -> ()

// -----

// Two fields of the same name.
// expected-note@+1 {{see existing symbol definition here}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()
// expected-error@+1 {{redefinition of symbol named 'x'}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()

// -----

// A field placed in a layout node that does not exist.
// expected-error@+1 {{field @x: layout @nowhere is not a layout node of this module}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, layout = @nowhere} : () -> ()

// -----

// A kernel with a memref parameter.
// expected-error@+1 {{kernel @k: parameters must be scalars (integer, float or index), got memref<4xf32>}}
func.func @k(%m: memref<4xf32>) attributes {ds.kernel} {
  return
}

// -----

// A kernel that returns a value.
// expected-error@+1 {{kernel @k must not return values}}
func.func @k(%a: f32) -> f32 attributes {ds.kernel} {
  return %a : f32
}

// -----

// A parallel loop inside a parallel loop.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @k(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    // expected-error@+1 {{ds.parallel_for must be at the top level of a kernel: only the outermost loops of a kernel run in parallel}}
    "ds.parallel_for"(%c0, %n) ({
    ^bb0(%j: index):
      gpu.yield
    }) : (index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A loop body using a value loaded at the kernel's top level.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "n", element_type = f32, shape = array<i64>} : () -> ()
func.func @k(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %s = "ds.load"() {field = @n} : () -> f32
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    // expected-error@+1 {{arith.mulf uses a value computed at the kernel's top level by ds.load}}
    %v = arith.mulf %s, %s : f32
    "ds.store"(%v, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// -----

// A struct_for over a 2-D field with three indices (it binds the leading
// dimensions: one or two of them).
"ds.field"() {sym_name = "m", element_type = f32, shape = array<i64: 4, 4>} : () -> ()
func.func @k() attributes {ds.kernel} {
  // expected-error@+1 {{ds.struct_for over @m needs 1 to 2 index block arguments, got 3}}
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index, %k: index):
    gpu.yield
  }) {field = @m} : () -> ()
  return
}

// -----

// A struct_for over a sparse vector field binds at least its cells.
"ds.bitmasked"() {sym_name = "cells", shape = array<i64: 4, 4>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 4, 4, 2>, layout = @cells} : () -> ()
func.func @k() attributes {ds.kernel} {
  // expected-error@+1 {{ds.struct_for over @v needs 2 to 3 index block arguments, got 1}}
  "ds.struct_for"() ({
  ^bb0(%i: index):
    gpu.yield
  }) {field = @v} : () -> ()
  return
}

// -----

// A struct_for over a symbol that is not a field.
func.func @k() attributes {ds.kernel} {
  // expected-error@+1 {{ds.struct_for over @nope, which is not a field of this module}}
  "ds.struct_for"() ({
  ^bb0(%i: index):
    gpu.yield
  }) {field = @nope} : () -> ()
  return
}

// -----

// An atomic add of an f16 value (IRDL's own constraint).
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  %c = arith.constant 1.0 : f16
  // expected-error@+1 {{'f16' does not satisfy the constraint}}
  "ds.atomic_add"(%c, %i) {field = @x} : (f16, index) -> ()
  return
}

// -----

// A layout node with a negative extent.
// expected-error@+1 {{layout node @g: shape must be an array<i64> of positive extents}}
"ds.dense"() {sym_name = "g", shape = array<i64: -2>} : () -> ()

// -----

// A layout node whose parent does not exist.
// expected-error@+1 {{layout node @leaf: its parent @missing is not a layout node of this module}}
"ds.dense"() {sym_name = "leaf", shape = array<i64: 4>, parent = @missing} : () -> ()

// -----

// A field whose shape does not start with its layout node's cell shape.
"ds.dense"() {sym_name = "cells", shape = array<i64: 8>} : () -> ()
// expected-error@+1 {{field @x: its shape [4, 2] must start with the cell shape [8] of its layout node @cells}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 2>, layout = @cells} : () -> ()

// -----

// Fields placed under one node with elements of different sizes.
"ds.dense"() {sym_name = "cells", shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8, 2>, layout = @cells} : () -> ()
"ds.field"() {sym_name = "n", element_type = i32, shape = array<i64: 8>, layout = @cells} : () -> ()
// expected-error@+1 {{field @m (f64) is placed under @cells with @x (f32): fields placed together must have elements of one size}}
"ds.field"() {sym_name = "m", element_type = f64, shape = array<i64: 8>, layout = @cells} : () -> ()

// -----

// A layout node whose order is neither "aos" nor "soa".
// expected-error@+1 {{layout node @cells: order must be "aos" or "soa", got "columns"}}
"ds.dense"() {sym_name = "cells", shape = array<i64: 8>, order = "columns"} : () -> ()

// -----

// ds.activate of a field that no sparse node holds.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  // expected-error@+1 {{ds.activate of @x: the field is not placed under a sparse (pointer or bitmasked) layout node; its cells are always active}}
  "ds.activate"(%i) {field = @x} : (index) -> ()
  return
}

// -----

// ds.deactivate naming a node that is not on the field's path, and a dense one.
"ds.pointer"() {sym_name = "p", shape = array<i64: 2>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 4>, parent = @p} : () -> ()
"ds.bitmasked"() {sym_name = "other", shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, layout = @b} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  // expected-error@+1 {{ds.deactivate of @x: @other is not a layout node on the field's path}}
  "ds.deactivate"(%i) {field = @x, node = @other} : (index) -> ()
  // expected-error@+1 {{ds.deactivate of @x: @b is dense; name a pointer or bitmasked node}}
  "ds.deactivate"(%i) {field = @x, node = @b} : (index) -> ()
  return
}

// -----

// ds.is_active takes one index per dimension.
"ds.bitmasked"() {sym_name = "m", shape = array<i64: 4, 4>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4, 4>, layout = @m} : () -> ()
func.func @k(%i: index) attributes {ds.kernel} {
  // expected-error@+1 {{ds.is_active of @x takes 2 indices (one per dimension), got 1}}
  %a = "ds.is_active"(%i) {field = @x} : (index) -> i1
  return
}

// -----

// ds.append to a field that is not under a dynamic node.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @k(%i: index, %v: f32) attributes {ds.kernel} {
  // expected-error@+1 {{ds.append of @x: the field is not placed under a dynamic layout node (a list)}}
  %k = "ds.append"(%v, %i) {field = @x} : (f32, index) -> i32
  return
}

// -----

// ds.append of a value of another type.
"ds.dense"() {sym_name = "heads", shape = array<i64: 4, 1>} : () -> ()
"ds.dynamic"() {sym_name = "items", shape = array<i64: 1, 8>, parent = @heads} : () -> ()
"ds.field"() {sym_name = "l", element_type = f32, shape = array<i64: 4, 8>, layout = @items} : () -> ()
func.func @k(%i: index, %v: f64) attributes {ds.kernel} {
  // expected-error@+1 {{ds.append of @l: value type must be the field's element type f32}}
  %k = "ds.append"(%v, %i, %i) {field = @l} : (f64, index, index) -> i32
  return
}
