// RUN: ds-opt %s --split-input-file --ds-lower-parallel-cpu --convert-ds-to-scf
// A struct_for over a sparse field becomes a task over the tree's outer cells
// (its range function returns [0, 4)): each iteration tests its block
// (ds.is_active at the outer node), then runs the body over the block's cells.
// Over a pointer tree the task runs over the list of allocated blocks
// (ds.block_list): entry k is block p$list[k] of outer cell p$owner[block],
// skipped past the list's length (p$counts[2]) or once released.

// Pointer of dense blocks of 8: a stencil reading the neighbour.
"ds.pointer"() {sym_name = "p", shape = array<i64: 4>} : () -> ()
"ds.dense"() {sym_name = "b", shape = array<i64: 8>, parent = @p} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 32>, layout = @b} : () -> ()
"ds.field"() {sym_name = "y", element_type = f32, shape = array<i64: 32>} : () -> ()
func.func @stencil() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    "ds.store"(%v, %i) {field = @y} : (f32, index) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}

// -----

// A bitmasked field alone: each of the 4 cells is a block of one, tested by its bit.
"ds.bitmasked"() {sym_name = "m", shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "x", element_type = i32, shape = array<i64: 4>, layout = @m} : () -> ()
func.func @count() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %one = arith.constant 1 : i32
    "ds.atomic_add"(%one, %i) {field = @x} : (i32, index) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}

// -----

// A vector field of a pointer-of-bitmasked tree, its struct_for binding the
// cell only (not the component): the body runs once per active cell and reads
// both components; is_active takes the cell's first element.
"ds.pointer"() {sym_name = "p", shape = array<i64: 2>} : () -> ()
"ds.bitmasked"() {sym_name = "b", shape = array<i64: 4>, parent = @p} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 8, 2>, layout = @b} : () -> ()
"ds.field"() {sym_name = "speed", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @norms() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %a = "ds.load"(%i, %c0) {field = @v} : (index, index) -> f32
    %b = "ds.load"(%i, %c1) {field = @v} : (index, index) -> f32
    %s = arith.addf %a, %b : f32
    "ds.store"(%s, %i) {field = @speed} : (f32, index) -> ()
    gpu.yield
  }) {field = @v} : () -> ()
  return
}
