// RUN: ds-opt %s --split-input-file --verify-diagnostics --convert-ds-to-scf
// Layouts convert-ds-to-scf does not lower: located errors on the field.

// A field under a nested dense node.
"ds.dense"() {sym_name = "outer", shape = array<i64: 4>} : () -> ()
"ds.dense"() {sym_name = "inner", shape = array<i64: 4>, parent = @outer} : () -> ()
// expected-error@+1 {{field @x: nested layout nodes are not lowered yet (@inner has the parent @outer)}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>, layout = @inner} : () -> ()

// -----

// A field under a dynamic node without a parent.
"ds.dynamic"() {sym_name = "list", shape = array<i64: 4>} : () -> ()
// expected-error@+1 {{field @x: layout node @list: a dynamic node needs a parent whose cells hold its lists (a dense node of one cell for a single list)}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, layout = @list} : () -> ()

// -----

// A node below a dynamic node (a list is a leaf).
"ds.dense"() {sym_name = "top", shape = array<i64: 4>} : () -> ()
"ds.dynamic"() {sym_name = "list", shape = array<i64: 4>, parent = @top} : () -> ()
"ds.dense"() {sym_name = "cells", shape = array<i64: 2>, parent = @list} : () -> ()
// expected-error@+1 {{field @x: layout node @list: a dynamic node is a leaf: nodes under it (@cells) are not lowered}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @cells} : () -> ()

// -----

// A pool larger than the pointer node's cells.
"ds.pointer"() {sym_name = "blocks", shape = array<i64: 4>, capacity = 9 : i64} : () -> ()
"ds.dense"() {sym_name = "cells", shape = array<i64: 8>, parent = @blocks} : () -> ()
// expected-error@+1 {{field @x: layout node @blocks: capacity must be an integer from 1 to its 4 cells, got 9 : i64}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @cells} : () -> ()

// -----

// A capacity on a bitmasked node (only pointers have pools), three levels down.
"ds.pointer"() {sym_name = "a", shape = array<i64: 2>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 2>, parent = @a} : () -> ()
"ds.bitmasked"() {sym_name = "c", shape = array<i64: 2>, parent = @b, capacity = 2 : i64} : () -> ()
// expected-error@+1 {{field @x: layout node @c: only pointer nodes (and dynamic nodes with a chunk size) take a capacity}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, layout = @c} : () -> ()

// -----

// A pool larger than the cells of a pointer under a pointer (2 x 4 cells).
"ds.pointer"() {sym_name = "a", shape = array<i64: 2>} : () -> ()
"ds.pointer"() {sym_name = "b", shape = array<i64: 4>, parent = @a, capacity = 9 : i64} : () -> ()
"ds.dense"() {sym_name = "c", shape = array<i64: 2>, parent = @b} : () -> ()
// expected-error@+1 {{field @x: layout node @b: capacity must be an integer from 1 to its 8 cells, got 9 : i64}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>, layout = @c} : () -> ()

// -----

// A chunk size that does not divide the list's cells.
"ds.dense"() {sym_name = "top", shape = array<i64: 2>} : () -> ()
"ds.dynamic"() {sym_name = "list", shape = array<i64: 10>, parent = @top, chunk = 4 : i64} : () -> ()
// expected-error@+1 {{field @x: layout node @list: chunk must be a positive integer dividing the list's 10 cells, got 4 : i64}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 20>, layout = @list} : () -> ()
