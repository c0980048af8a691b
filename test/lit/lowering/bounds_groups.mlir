// RUN: ds-opt %s --ds-lower-parallel-cpu --convert-ds-to-scf=check-bounds=1 --canonicalize --cse
// Bounds checks of a stencil made once: g[b + 0], g[b + 2] and the add to
// h[b + 1] (indices `index_cast(b + k)` of one i32 base, fields of extent
// 16) are covered by one test of b, in [0, 14). The block scatters (the add),
// so its rest is versioned on the test: unchecked for those three when it
// holds; else a copy in which they form a branch-free group (the accesses
// go to the safe base 0 and are cancelled, the lowest and highest b are kept
// in two slots, and before the function returns b below 0 fails g[b + 0]'s
// check, b above 13 fails g[b + 2]'s, at that base's index). g[q], whose base
// q is another, is checked on its own in both.

"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "h", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "pos", element_type = i32, shape = array<i64: 64>} : () -> ()
func.func @stencil(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %b = "ds.load"(%i) {field = @pos} : (index) -> i32
    %k0 = arith.constant 0 : i32
    %k1 = arith.constant 1 : i32
    %k2 = arith.constant 2 : i32
    %b0 = arith.addi %b, %k0 : i32
    %b1 = arith.addi %b, %k1 : i32
    %b2 = arith.addi %b, %k2 : i32
    %i0 = arith.index_cast %b0 : i32 to index
    %i1 = arith.index_cast %b1 : i32 to index
    %i2 = arith.index_cast %b2 : i32 to index
    %lo = "ds.load"(%i0) {field = @g} : (index) -> f32
    %hi = "ds.load"(%i2) {field = @g} : (index) -> f32
    %s = arith.addf %lo, %hi : f32
    "ds.atomic_add"(%s, %i1) {field = @h} : (f32, index) -> ()
    %q = "ds.load"(%i0) {field = @pos} : (index) -> i32
    %c = arith.index_cast %q : i32 to index
    %lone = "ds.load"(%c) {field = @g} : (index) -> f32
    "ds.atomic_add"(%lone, %c0) {field = @h} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
