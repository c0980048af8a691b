// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu --convert-ds-to-scf
// Three levels: a pointer of pointers of dense blocks (Taichi's
// ti.root.pointer(ti.i, 2).pointer(ti.i, 2).dense(ti.i, 4)). A store walks
// the chain, allocating a block of each pointer from its pool (p$table0 ->
// p$free0, then p$table1 -> p$free1, each listed with its owner); a load
// follows both tables (0 where either has no block); the struct_for runs
// over the deepest pointer's list of blocks (p$list1), checking that the
// path to each block's owner still ends in it, then over the block's cells.

"ds.pointer"() {sym_name = "p", shape = array<i64: 2>} : () -> ()
"ds.pointer"() {sym_name = "q", shape = array<i64: 2>, parent = @p} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 4>, parent = @q} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>, layout = @b} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 16>} : () -> ()
func.func @put(%i: index, %v: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.store"(%v, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @copy() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    "ds.store"(%v, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}

// -----

// Dense, then pointer, then bitmasked: deactivating the pointer's cell
// releases its block (the freed list p$freed1); the bitmasked leaf is a
// bit per cell of the pool's blocks.
"ds.dense"() {sym_name = "d", shape = array<i64: 2>} : () -> ()
"ds.pointer"() {sym_name = "q", shape = array<i64: 2>, parent = @d} : () -> ()
"ds.bitmasked"() {sym_name = "m", shape = array<i64: 4>, parent = @q} : () -> ()
"ds.field"() {sym_name = "x", element_type = i32, shape = array<i64: 16>, layout = @m} : () -> ()
func.func @off(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.deactivate"(%i) {field = @x, node = @q} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
