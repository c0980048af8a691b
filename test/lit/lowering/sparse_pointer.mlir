// RUN: ds-opt %s --split-input-file --convert-ds-to-scf
// convert-ds-to-scf on fields under a pointer node of dense blocks
// (lowering/src/sparse.rs): @p$table holds block + 2 per pointer cell (0: none,
// 1: being allocated),
// blocks come from the stack @p$free (height in @p$counts[0]), released ones go
// to @p$freed (count in @p$counts[1]) for the runtime to zero and return.

// A load through the table (0 without a block), a store that allocates: claim
// the entry (atomic maxu 1), pop a block and install it, or wait while another
// thread holds the claim; an empty pool records the pool check in the status buffer.
"ds.pointer"() {sym_name = "p", shape = array<i64: 4>, capacity = 2 : i64} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @b} : () -> ()
func.func @ops(%i: index, %v: f32) attributes {ds.kernel} {
  %old = "ds.load"(%i) {field = @x} : (index) -> f32
  %s = arith.addf %old, %v : f32
  "ds.store"(%s, %i) {field = @x} : (f32, index) -> ()
  return
}

// -----

// Deactivating a pointer cell: swap the table entry for 0 and push the block
// it held on the freed list; is_active at the pointer node reads the table.
"ds.pointer"() {sym_name = "p", shape = array<i64: 4>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @b} : () -> ()
func.func @release(%i: index) attributes {ds.kernel} {
  %a = "ds.is_active"(%i) {field = @x, node = @p} : (index) -> i1
  "ds.deactivate"(%i) {field = @x} : (index) -> ()
  return
}

// -----

// A pointer node of bitmasked blocks: a 2-D store sets the block and then the
// cell's bit (in @p$mask1, one bit per pool cell).
"ds.pointer"() {sym_name = "p", shape = array<i64: 2, 2>} : () -> ()
"ds.bitmasked"() {sym_name = "b", shape = array<i64: 4, 4>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 8, 8>, layout = @b} : () -> ()
func.func @two_d(%i: index, %j: index, %v: f64) attributes {ds.kernel} {
  "ds.store"(%v, %i, %j) {field = @x} : (f64, index, index) -> ()
  return
}
