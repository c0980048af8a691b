// RUN: ds-opt %s --split-input-file --verify-diagnostics --convert-ds-to-scf
// Layouts convert-ds-to-scf does not lower yet: located errors on the field.

// A field under a nested dense node.
"ds.dense"() {sym_name = "outer", shape = array<i64: 4>} : () -> ()
"ds.dense"() {sym_name = "inner", shape = array<i64: 4>, parent = @outer} : () -> ()
// expected-error@+1 {{field @x: nested layout nodes are not lowered yet (@inner has the parent @outer)}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, layout = @inner} : () -> ()

// -----

// A field under a pointer node.
"ds.pointer"() {sym_name = "blocks", shape = array<i64: 4>} : () -> ()
// expected-error@+1 {{field @x: only dense layouts are lowered so far; @blocks is sparse}}
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 4>, layout = @blocks} : () -> ()
