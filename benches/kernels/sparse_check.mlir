// The sparse part of gpu-check: a 64x64 f32 field `u` on a pointer of 8x8
// blocks of 8x8 cells (a pool of 64), with a gradient `u_grad` on
// the same tree, and a dense `v`. Each round, `seed` writes u on a sparse
// pattern of cells from every thread at once (blocks claimed from the pool
// concurrently), `laplace` runs over the active cells (the pool's list of
// allocated blocks), `energy` sums v^2 into a loss, and `cull` deactivates a
// third of the blocks (freed on the device, collected by the runtime).
// Beside it, `w` on a bitmasked 8x8 root of dense 8x8 blocks: `mark` sets
// cells (bits set by atomic ors), `total` sums the active cells into
// `w_sum` (a struct_for over the root's cells, testing each bit), and
// `unmark` clears a quarter of the blocks.
"ds.pointer"() {sym_name = "blocks", shape = array<i64: 8, 8>, capacity = 64 : i64} : () -> ()
"ds.dense"() {sym_name = "cells", shape = array<i64: 8, 8>, parent = @blocks} : () -> ()
"ds.field"() {sym_name = "u", element_type = f32, shape = array<i64: 64, 64>, layout = @cells, grad = @u_grad} : () -> ()
"ds.field"() {sym_name = "u_grad", element_type = f32, shape = array<i64: 64, 64>, layout = @cells} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 64, 64>, grad = @v_grad} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f32, shape = array<i64: 64, 64>} : () -> ()
"ds.bitmasked"() {sym_name = "marks", shape = array<i64: 8, 8>} : () -> ()
"ds.dense"() {sym_name = "marked", shape = array<i64: 8, 8>, parent = @marks} : () -> ()
"ds.field"() {sym_name = "w", element_type = f32, shape = array<i64: 64, 64>, layout = @marked} : () -> ()
"ds.field"() {sym_name = "w_sum", element_type = f32, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "loss", element_type = f32, shape = array<i64>, grad = @loss_grad} : () -> ()
"ds.field"() {sym_name = "loss_grad", element_type = f32, shape = array<i64>} : () -> ()

// u[i, j] = (i + j + 1) / 64 where (7i + 3j + t) % 97 == 0.
func.func @seed(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%i: index):
    %z = arith.constant 0 : index
    %n = arith.constant 64 : index
    %one = arith.constant 1 : index
    scf.for %j = %z to %n step %one {
      %c7 = arith.constant 7 : index
      %c3 = arith.constant 3 : index
      %c97 = arith.constant 97 : index
      %a = arith.muli %i, %c7 : index
      %b = arith.muli %j, %c3 : index
      %s = arith.addi %a, %b : index
      %st = arith.addi %s, %t : index
      %r = arith.remui %st, %c97 : index
      %hit = arith.cmpi eq, %r, %z : index
      scf.if %hit {
        %ij = arith.addi %i, %j : index
        %ij1 = arith.addi %ij, %one : index
        %k = arith.index_cast %ij1 : index to i32
        %f = arith.sitofp %k : i32 to f32
        %scale = arith.constant 0.015625 : f32
        %x = arith.mulf %f, %scale : f32
        "ds.store"(%x, %i, %j) {field = @u} : (f32, index, index) -> ()
      }
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// v = the five-point Laplacian of u (clamped at the edges), over u's active cells.
func.func @laplace() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %cn = arith.constant 63 : index
    %a = arith.subi %i, %c1 : index
    %im = arith.maxsi %a, %c0 : index
    %b = arith.addi %i, %c1 : index
    %ip = arith.minsi %b, %cn : index
    %c = arith.subi %j, %c1 : index
    %jm = arith.maxsi %c, %c0 : index
    %d = arith.addi %j, %c1 : index
    %jp = arith.minsi %d, %cn : index
    %x = "ds.load"(%i, %j) {field = @u} : (index, index) -> f32
    %no = "ds.load"(%im, %j) {field = @u} : (index, index) -> f32
    %so = "ds.load"(%ip, %j) {field = @u} : (index, index) -> f32
    %we = "ds.load"(%i, %jm) {field = @u} : (index, index) -> f32
    %ea = "ds.load"(%i, %jp) {field = @u} : (index, index) -> f32
    %s1 = arith.addf %no, %so : f32
    %s2 = arith.addf %we, %ea : f32
    %s3 = arith.addf %s1, %s2 : f32
    %four = arith.constant 4.0 : f32
    %x4 = arith.mulf %x, %four : f32
    %l = arith.subf %s3, %x4 : f32
    "ds.store"(%l, %i, %j) {field = @v} : (f32, index, index) -> ()
    gpu.yield
  }) {field = @u} : () -> ()
  return
}

// loss = sum of v^2.
func.func @energy() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%i: index):
    %z = arith.constant 0 : index
    %n = arith.constant 64 : index
    %one = arith.constant 1 : index
    scf.for %j = %z to %n step %one {
      %v = "ds.load"(%i, %j) {field = @v} : (index, index) -> f32
      %v2 = arith.mulf %v, %v : f32
      "ds.atomic_add"(%v2) {field = @loss} : (f32) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// Deactivates block b (of 64) where (b + t) % 3 == 0.
func.func @cull(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%b: index):
    %z = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c8 = arith.constant 8 : index
    %bt = arith.addi %b, %t : index
    %r = arith.remui %bt, %c3 : index
    %hit = arith.cmpi eq, %r, %z : index
    scf.if %hit {
      %bi = arith.divui %b, %c8 : index
      %bj = arith.remui %b, %c8 : index
      %i = arith.muli %bi, %c8 : index
      %j = arith.muli %bj, %c8 : index
      "ds.deactivate"(%i, %j) {field = @u} : (index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// w[i, j] = 1 + (i j mod 5) where (5i + 11j + t) % 89 == 0.
func.func @mark(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%i: index):
    %z = arith.constant 0 : index
    %n = arith.constant 64 : index
    %one = arith.constant 1 : index
    scf.for %j = %z to %n step %one {
      %c5 = arith.constant 5 : index
      %c11 = arith.constant 11 : index
      %c89 = arith.constant 89 : index
      %a = arith.muli %i, %c5 : index
      %b = arith.muli %j, %c11 : index
      %s = arith.addi %a, %b : index
      %st = arith.addi %s, %t : index
      %r = arith.remui %st, %c89 : index
      %hit = arith.cmpi eq, %r, %z : index
      scf.if %hit {
        %ij = arith.muli %i, %j : index
        %m = arith.remui %ij, %c5 : index
        %m1 = arith.addi %m, %one : index
        %k = arith.index_cast %m1 : index to i32
        %x = arith.sitofp %k : i32 to f32
        "ds.store"(%x, %i, %j) {field = @w} : (f32, index, index) -> ()
      }
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}

// w_sum += w over w's active cells.
func.func @total() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    %x = "ds.load"(%i, %j) {field = @w} : (index, index) -> f32
    "ds.atomic_add"(%x) {field = @w_sum} : (f32) -> ()
    gpu.yield
  }) {field = @w} : () -> ()
  return
}

// Clears block b (of 64) of w where (b + t) % 4 == 0.
func.func @unmark(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%b: index):
    %z = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %bt = arith.addi %b, %t : index
    %r = arith.remui %bt, %c4 : index
    %hit = arith.cmpi eq, %r, %z : index
    scf.if %hit {
      %bi = arith.divui %b, %c8 : index
      %bj = arith.remui %b, %c8 : index
      %i = arith.muli %bi, %c8 : index
      %j = arith.muli %bj, %c8 : index
      "ds.deactivate"(%i, %j) {field = @w} : (index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}
