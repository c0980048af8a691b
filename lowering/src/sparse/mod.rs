//! The lowering of sparse fields: the one place where the layout tree of
//! `ds.pointer`, `ds.bitmasked`, `ds.dynamic` (and `ds.dense`) nodes, nested
//! to any depth, becomes address computation over the tree's buffers
//! (`ds_dialects::ops::sparse` describes them: data, masks, pointer tables,
//! block pools, list lengths), shared by the CPU and GPU paths. Two passes
//! call it:
//!
//! - `ds-lower-parallel-cpu` ([`struct_for_block`]): a `ds.struct_for` over a
//!   sparse field becomes a task over the root level's cells, or, for a tree
//!   with pointers, over the deepest pointer's list of allocated blocks
//!   ([`BLOCK_LIST`], resolved by `convert-ds-to-scf`: O(allocated blocks),
//!   not O(cells)); each iteration tests its cell (`ds.is_active`), loops
//!   over the cells of each level below it, tests each cell of a bitmasked
//!   level, and runs the body on the active ones: parallel over blocks,
//!   then serial over cells;
//! - `convert-ds-to-scf` ([`emit_access`]): every access of a sparse field
//!   (loads, stores, atomics, `ds.activate`, `ds.deactivate`, `ds.is_active`,
//!   `ds.append`, `ds.length`) becomes memref ops on the hidden buffers, which
//!   the function takes as arguments after the dense fields' (named in
//!   `ds.fields`).
//!
//! An access walks the tree from the root: at each level the cell is the
//! container's cell `k * n + local` (`local` from the access's indices),
//! and a pointer level's table gives the next container (its block).
//!
//! Semantics (Taichi's): a read of an inactive cell gives 0 (an inactive
//! pointer is not followed; an inactive bitmasked cell's subtree holds 0);
//! a write or atomic of a primal field activates the cell down the chain
//! (allocating the blocks of pointer levels from their pools, setting bits,
//! extending lists); accesses of an adjoint field (one named by a field's
//! `grad`) never activate: a write to an inactive cell is dropped, so a
//! gradient kernel leaves the primal's active set as it was.
//! `ds.activate` activates down to `node` (default: the leaf), ancestors
//! included; `ds.deactivate` deactivates `node`'s cell (default: the
//! innermost sparse node): a bitmasked cell's bit is cleared and its
//! subtree cleared (data zeroed, bits and lengths cleared, blocks of
//! pointers inside it released), a pointer's block goes to the freed list,
//! which the runtime clears and returns to the pool after the launch, a
//! list is emptied.
//!
//! Allocation: the first thread finding no block claims the table entry
//! (an atomic unsigned max turning 0 into 1, leaving others as they are),
//! pops a block from the free stack (an atomic decrement of its height),
//! lists it and installs it; threads finding the entry claimed wait for it
//! (a short spin on an atomic read), so no block is popped twice for one
//! cell. A pop from an empty stack is a run-time check
//! (`CheckKind::PoolExhausted`, naming the pointer): the launch fails with a
//! typed error and the write is dropped, never made out of the pool. (The
//! spin needs independent thread scheduling on the GPU: sm_70 and later.)
//!
//! Example: `"ds.store"(%v, %i) {field = @x}` with `@x` under
//! `ds.bitmasked @m [64]` becomes, roughly, `%w = memref.load %mask[%i / 32];
//! scf.if ((%w & bit) == 0) { memref.atomic_rmw ori bit, %mask[%i / 32] };
//! memref.store %v, %data[%i]`.

mod struct_for;

pub use struct_for::{BLOCK_LIST, resolve_block_lists, struct_for_block, struct_for_range};

use ds_dialects::ir::{Block, Cursor, Loc, OpBuilder, Region, Type, Value};
use ds_dialects::ops::sparse::{FREE_TOP, FREED, LISTED, LevelKind, SparseTree};
use ds_dialects::ops::{self, Access, AccessKind, CmpI};

const RMW_ADDF: i64 = 0;
const RMW_ADDI: i64 = 1;
const RMW_ANDI: i64 = 2;
const RMW_ASSIGN: i64 = 3;
const RMW_MAXIMUMF: i64 = 4;
const RMW_MAXS: i64 = 6;
const RMW_MAXU: i64 = 7;
const RMW_MINIMUMF: i64 = 8;
const RMW_MINS: i64 = 10;
const RMW_ORI: i64 = 14;

/// A pointer table entry being allocated by some thread (0 is none).
const CLAIMED: i64 = ds_dialects::ops::sparse::TABLE_CLAIMED as i64;
/// The entry of block `id` is `id + FIRST_ID`.
const FIRST_ID: i64 = ds_dialects::ops::sparse::TABLE_FIRST_ID as i64;

/// A run-time check an access of a sparse field may fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A write needed a block of pointer `node`, whose pool of `capacity` blocks had none.
    PoolExhausted { node: String, capacity: i64 },
    /// An append found its list (of dynamic `node`, `capacity` cells) full.
    ListFull { node: String, capacity: i64 },
}


/// Where a failed check is recorded: at a cursor, for the op at a location.
pub type Fail<'a> = dyn FnMut(Cursor, Loc, Failure) + 'a;

/// One sparse tree as a function sees it: its description, the memrefs of
/// its hidden buffers, and the element type of each of its fields.
pub struct TreeArgs<'a> {
    pub tree: &'a SparseTree,
    pub bufs: Vec<(String, Value)>,
    pub elems: Vec<(String, Type)>,
}

impl TreeArgs<'_> {
    fn buf(&self, name: &str) -> Value {
        self.bufs.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("hidden buffer {name} passed"))
    }
}

/// An insertion point with the location of the op being lowered.
#[derive(Clone, Copy)]
struct E {
    at: Cursor,
    loc: Loc,
}

impl E {
    fn index(self, v: i64) -> Value {
        ops::const_index(self.at, v, self.loc)
    }
    fn i32(self, v: i64) -> Value {
        ops::const_scalar(self.at, self.loc.ctx().int(32), v as f64, self.loc)
    }
    fn bin(self, name: &str, a: Value, b: Value) -> Value {
        ops::build_binary(self.at, name, a, b, self.loc)
    }
    fn cmp(self, pred: CmpI, a: Value, b: Value) -> Value {
        ops::build_cmpi(self.at, pred, a, b, self.loc)
    }
    fn cast(self, v: Value, to: Type) -> Value {
        self.at.build(OpBuilder::new("arith.index_cast", self.loc).operands(&[v]).results(&[to])).result(0)
    }
    fn to_index(self, v: Value) -> Value {
        self.cast(v, self.loc.ctx().index())
    }
    fn load(self, memref: Value, i: Value, ty: Type) -> Value {
        self.at.build(OpBuilder::new("memref.load", self.loc).operands(&[memref, i]).results(&[ty])).result(0)
    }
    fn store(self, v: Value, memref: Value, i: Value) {
        self.at.build(OpBuilder::new("memref.store", self.loc).operands(&[v, memref, i]));
    }
    /// `memref.atomic_rmw kind`; returns the old value.
    fn rmw(self, kind: i64, v: Value, memref: Value, i: Value) -> Value {
        let ctx = self.loc.ctx();
        self.at
            .build(
                OpBuilder::new("memref.atomic_rmw", self.loc)
                    .operands(&[v, memref, i])
                    .results(&[v.ty()])
                    .attr("kind", ctx.int_attr(ctx.int(64), kind)),
            )
            .result(0)
    }
    fn select(self, c: Value, a: Value, b: Value) -> Value {
        ops::build_select(self.at, c, a, b, self.loc)
    }
    /// `scf.if cond` without results: the insertion point inside its then branch.
    fn guard(self, cond: Value) -> E {
        let (_, then_b, else_b) = ops::build_if(self.at, cond, &[], self.loc);
        let y = ops::build_yield(then_b, &[], self.loc);
        ops::build_yield(else_b, &[], self.loc);
        E { at: Cursor::before(y), loc: self.loc }
    }
    /// `scf.for i in [0, n)`: the insertion point in its body and the variable.
    fn each(self, n: i64) -> (E, Value) {
        let (lo, hi, one) = (self.index(0), self.index(n), self.index(1));
        let (_, body, y) = ops::build_scf_for(self.at, lo, hi, one, self.loc);
        (E { at: Cursor::before(y), loc: self.loc }, body.arg(0))
    }
    /// Linear position of `idx` in `shape`, row-major.
    fn linear(self, idx: &[Value], shape: &[i64]) -> Value {
        let mut acc: Option<Value> = None;
        for (&i, &n) in idx.iter().zip(shape) {
            acc = Some(match acc {
                None => i,
                Some(a) => {
                    let scaled = self.bin("arith.muli", a, self.index(n));
                    self.bin("arith.addi", scaled, i)
                }
            });
        }
        acc.unwrap_or_else(|| self.index(0))
    }
}

/// Where an element of a field of the tree is: per level, its cell's
/// position within its container; its cell indices; its component.
struct Coords {
    locals: Vec<Value>,
    cell: Vec<Value>,
    comp: Value,
    comps: i64,
}

/// Per level `0..=at`, the position within its container of the cell whose
/// coordinates at level `at` (its index over [`SparseTree::through`]`(at)`) are `cell`.
fn locals(e: E, tree: &SparseTree, cell: &[Value], at: usize) -> Vec<Value> {
    (0..=at)
        .map(|i| {
            let div = tree.extent(i + 1, at + 1);
            let shape = &tree.levels[i].shape;
            let local: Vec<Value> = (0..tree.rank())
                .map(|d| {
                    if shape[d] == 1 {
                        return e.index(0);
                    }
                    let mut v = cell[d];
                    if div[d] != 1 {
                        v = e.bin("arith.divui", v, e.index(div[d]));
                    }
                    // The root's coordinate is below its extent for an index in bounds.
                    if i > 0 {
                        v = e.bin("arith.remui", v, e.index(shape[d]));
                    }
                    v
                })
                .collect();
            e.linear(&local, shape)
        })
        .collect()
}

fn coords(e: E, tree: &SparseTree, indices: &[Value], field_shape: &[i64]) -> Coords {
    let rank = tree.rank();
    let cell = indices[..rank].to_vec();
    let comp_shape = &field_shape[rank.min(field_shape.len())..];
    Coords {
        locals: locals(e, tree, &cell, tree.depth() - 1),
        cell,
        comp: e.linear(&indices[rank.min(indices.len())..], comp_shape),
        comps: comp_shape.iter().product::<i64>().max(1),
    }
}

/// The linear index, over [`SparseTree::through`]`(i)`, of level `i`'s cell
/// holding the cell of indices `cell` (a pointer block's owner).
fn owner_of(e: E, tree: &SparseTree, cell: &[Value], i: usize) -> Value {
    let below = tree.below(i);
    let at: Vec<Value> = cell.iter().zip(&below).map(|(&v, &b)| if b == 1 { v } else { e.bin("arith.divui", v, e.index(b)) }).collect();
    e.linear(&at, &tree.through(i))
}

/// Cell `local` of container `k` of level `i`: its index among the level's cells.
fn cell_id(e: E, tree: &SparseTree, i: usize, k: Value, local: Value) -> Value {
    if tree.containers(i) == 1 {
        return local;
    }
    let scaled = e.bin("arith.muli", k, e.index(tree.levels[i].cells()));
    e.bin("arith.addi", scaled, local)
}

/// The position in a field's data of component `comp` of slot `slot`.
fn data_pos(e: E, slot: Value, comps: i64, comp: Value) -> Value {
    let scaled = e.bin("arith.muli", slot, e.index(comps));
    e.bin("arith.addi", scaled, comp)
}

/// `scf.if cond -> ty`: `then` in the then branch, `default` in the else branch.
fn if_value(e: E, cond: Value, ty: Type, default: f64, then: &dyn Fn(E) -> Value) -> Value {
    let (if_op, then_b, else_b) = ops::build_if(e.at, cond, &[ty], e.loc);
    let th = E { at: Cursor::at_end(then_b), loc: e.loc };
    let v = then(th);
    ops::build_yield(then_b, &[v], e.loc);
    let d = ops::const_scalar(Cursor::at_end(else_b), ty, default, e.loc);
    ops::build_yield(else_b, &[d], e.loc);
    if_op.result(0)
}

/// The table entry of the chunk of a chunked list (dynamic level `i`)
/// holding cell `l` of the list of container `k`.
fn chunk_entry(e: E, t: &TreeArgs, i: usize, k: Value, l: Value) -> Value {
    let level = &t.tree.levels[i];
    let q = e.bin("arith.divui", l, e.index(level.chunk));
    let scaled = e.bin("arith.muli", k, e.index(level.chunks_per_list()));
    e.bin("arith.addi", scaled, q)
}

/// The chunk (its id, i32; -1 when the pool is exhausted) holding cell `l`
/// of the list of container `k` of chunked level `i`, taken from the pool
/// with every chunk before it that the list has not got yet (as Taichi's
/// chained chunks: the chunks of `[0, length)` are allocated).
fn ensure_chunks(e: E, t: &TreeArgs, i: usize, k: Value, l: Value, fail: &mut Fail) -> Value {
    let level = &t.tree.levels[i];
    let q = e.bin("arith.divui", l, e.index(level.chunk));
    let first = e.bin("arith.muli", k, e.index(level.chunks_per_list()));
    let (lo, one) = (e.index(0), e.index(1));
    let (_, body, y) = ops::build_scf_for(e.at, lo, q, one, e.loc);
    let b = E { at: Cursor::before(y), loc: e.loc };
    ensure_block(b, t, i, b.bin("arith.addi", first, body.arg(0)), None, fail);
    ensure_block(e, t, i, e.bin("arith.addi", first, q), None, fail)
}

/// The slot of cell `l` of a chunked list whose chunk is `id` (index).
fn chunk_slot(e: E, level: &ds_dialects::ops::sparse::Level, id: Value, l: Value) -> Value {
    let base = e.bin("arith.muli", id, e.index(level.chunk));
    e.bin("arith.addi", base, e.bin("arith.remui", l, e.index(level.chunk)))
}

/// The container at level `upto` of the cell at `locals` (`upto ==
/// depth`: its data slot), through levels `[0, upto)`: `f` of it, or
/// `default` where a pointer level has no block or a list no chunk (or,
/// with `test`, where a bitmasked bit is clear or a list is shorter).
#[allow(clippy::too_many_arguments)]
fn walk_value(e: E, t: &TreeArgs, locals: &[Value], i: usize, k: Value, upto: usize, test: bool, ty: Type, default: f64, f: &dyn Fn(E, Value) -> Value) -> Value {
    if i == upto {
        return f(e, k);
    }
    let tree = t.tree;
    let i32t = e.loc.ctx().int(32);
    let level = &tree.levels[i];
    let cell = cell_id(e, tree, i, k, locals[i]);
    let next = |e: E, k: Value| walk_value(e, t, locals, i + 1, k, upto, test, ty, default, f);
    // A table entry (a pointer's cell, a list's chunk): followed when it has a block.
    let follow = |e: E, table_cell: Value, to_k: &dyn Fn(E, Value) -> Value| {
        let entry = e.load(t.buf(&tree.table(i)), table_cell, i32t);
        let has = e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED));
        if_value(e, has, ty, default, &|th| {
            let id = th.to_index(th.bin("arith.subi", entry, th.i32(FIRST_ID)));
            next(th, to_k(th, id))
        })
    };
    match level.kind {
        LevelKind::Pointer => follow(e, cell, &|_, id| id),
        LevelKind::Bitmasked if test => if_value(e, bit_test(e, t.buf(&tree.mask(i)), cell), ty, default, &|th| next(th, cell)),
        LevelKind::Dynamic if level.chunk > 0 => {
            let chunked = |e: E| follow(e, chunk_entry(e, t, i, k, locals[i]), &|th, id| chunk_slot(th, level, id, locals[i]));
            if test { if_value(e, in_list(e, t, i, k, locals[i]), ty, default, &chunked) } else { chunked(e) }
        }
        LevelKind::Dynamic if test => if_value(e, in_list(e, t, i, k, locals[i]), ty, default, &|th| next(th, cell)),
        _ => next(e, cell),
    }
}

/// The insertion point where levels `[0, upto)` of the cell at `locals`
/// are active (pointers and chunks followed; with `test`, bits and list
/// lengths tested too), and its container at level `upto`.
fn active_walk(e: E, t: &TreeArgs, locals: &[Value], upto: usize, test: bool) -> (E, Value) {
    let tree = t.tree;
    let i32t = e.loc.ctx().int(32);
    let (mut e, mut k) = (e, e.index(0));
    for (i, level) in tree.levels[..upto].iter().enumerate() {
        let cell = cell_id(e, tree, i, k, locals[i]);
        let follow = |e: E, table_cell: Value| -> (E, Value) {
            let entry = e.load(t.buf(&tree.table(i)), table_cell, i32t);
            let e = e.guard(e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED)));
            (e, e.to_index(e.bin("arith.subi", entry, e.i32(FIRST_ID))))
        };
        match level.kind {
            LevelKind::Pointer => {
                (e, k) = follow(e, cell);
                continue;
            }
            LevelKind::Bitmasked if test => e = e.guard(bit_test(e, t.buf(&tree.mask(i)), cell)),
            LevelKind::Dynamic => {
                if test {
                    e = e.guard(in_list(e, t, i, k, locals[i]));
                }
                if level.chunk > 0 {
                    let (inner, id) = follow(e, chunk_entry(e, t, i, k, locals[i]));
                    (e, k) = (inner, chunk_slot(inner, level, id, locals[i]));
                    continue;
                }
            }
            _ => {}
        }
        k = cell;
    }
    (e, k)
}

/// Activates levels `[0, upto)` of the cell of `c` (allocating pointer
/// blocks and list chunks, setting bits, extending lists); the insertion
/// point where they are, and the cell's container at level `upto`.
fn activate_walk(e: E, t: &TreeArgs, c: &Coords, upto: usize, fail: &mut Fail) -> (E, Value) {
    let tree = t.tree;
    let (mut e, mut k) = (e, e.index(0));
    for (i, level) in tree.levels[..upto].iter().enumerate() {
        let cell = cell_id(e, tree, i, k, c.locals[i]);
        match level.kind {
            LevelKind::Pointer => {
                let owner = owner_of(e, tree, &c.cell, i);
                let id = ensure_block(e, t, i, cell, Some(owner), fail);
                e = e.guard(e.cmp(CmpI::Sge, id, e.i32(0)));
                k = e.to_index(id);
                continue;
            }
            LevelKind::Bitmasked => bit_set(e, t.buf(&tree.mask(i)), cell),
            LevelKind::Dynamic => {
                extend_list(e, t, i, k, c.locals[i]);
                if level.chunk > 0 {
                    let id = ensure_chunks(e, t, i, k, c.locals[i], fail);
                    e = e.guard(e.cmp(CmpI::Sge, id, e.i32(0)));
                    k = chunk_slot(e, level, e.to_index(id), c.locals[i]);
                    continue;
                }
            }
            LevelKind::Dense => {}
        }
        k = cell;
    }
    (e, k)
}

/// Releases the block of table entry `cell` of pooled level `i` (if it has
/// one) to the freed list: the runtime clears and returns it after the launch.
fn release_entry(e: E, t: &TreeArgs, i: usize, cell: Value) {
    let tree = t.tree;
    let old = e.rmw(RMW_ASSIGN, e.i32(0), t.buf(&tree.table(i)), cell);
    let had = e.guard(e.cmp(CmpI::Sgt, old, e.i32(CLAIMED)));
    let k = had.to_index(had.rmw(RMW_ADDI, had.i32(1), t.buf(&tree.counts(i)), had.index(FREED as i64)));
    had.store(had.bin("arith.subi", old, had.i32(FIRST_ID)), t.buf(&tree.freed(i)), k);
}

/// Clears containers `[first, first + count)` of level `m` and everything
/// under them: bits and lengths cleared, data zeroed, the blocks of pointer
/// cells released (the runtime clears those after the launch).
fn clear_subtree(e: E, t: &TreeArgs, m: usize, first: Value, count: i64) {
    let tree = t.tree;
    if m == tree.depth() {
        zero_slots(e, t, first, count);
        return;
    }
    let n = tree.levels[m].cells();
    let start = if n == 1 { first } else { e.bin("arith.muli", first, e.index(n)) };
    let total = count.saturating_mul(n);
    match tree.levels[m].kind {
        LevelKind::Pointer => {
            let (body, j) = e.each(total);
            release_entry(body, t, m, body.bin("arith.addi", start, j));
            return;
        }
        LevelKind::Bitmasked => {
            let (body, j) = e.each(total);
            bit_clear(body, t.buf(&tree.mask(m)), body.bin("arith.addi", start, j));
        }
        LevelKind::Dynamic => {
            let (body, j) = e.each(count);
            body.store(body.i32(0), t.buf(&tree.len(m)), body.bin("arith.addi", first, j));
            let level = &tree.levels[m];
            if level.chunk > 0 {
                // Their chunks released: the runtime zeroes them after the launch.
                let per = level.chunks_per_list();
                let from = e.bin("arith.muli", first, e.index(per));
                let (body, j) = e.each(count.saturating_mul(per));
                release_entry(body, t, m, body.bin("arith.addi", from, j));
                return;
            }
        }
        LevelKind::Dense => {}
    }
    clear_subtree(e, t, m + 1, start, total);
}

/// Zeroes the data of `fields` (of the tree) under containers `[first,
/// first + count)` of level `m`, following pointers and chunks into their
/// blocks; the structure is left as it is.
fn zero_under(e: E, t: &TreeArgs, m: usize, first: Value, count: i64, fields: &[String]) {
    let tree = t.tree;
    if m == tree.depth() {
        zero_slots_of(e, t, first, count, fields);
        return;
    }
    let i32t = e.loc.ctx().int(32);
    let level = &tree.levels[m];
    let n = level.cells();
    let start = if n == 1 { first } else { e.bin("arith.muli", first, e.index(n)) };
    let follow = |e: E, table_cell: Value, then: &dyn Fn(E, Value)| {
        let entry = e.load(t.buf(&tree.table(m)), table_cell, i32t);
        let has = e.guard(e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED)));
        then(has, has.to_index(has.bin("arith.subi", entry, has.i32(FIRST_ID))));
    };
    match level.kind {
        LevelKind::Pointer => {
            let (body, j) = e.each(count.saturating_mul(n));
            follow(body, body.bin("arith.addi", start, j), &|has, b| zero_under(has, t, m + 1, b, 1, fields));
        }
        LevelKind::Dynamic if level.chunk > 0 => {
            let per = level.chunks_per_list();
            let from = e.bin("arith.muli", first, e.index(per));
            let (body, j) = e.each(count.saturating_mul(per));
            follow(body, body.bin("arith.addi", from, j), &|has, b| {
                zero_slots_of(has, t, has.bin("arith.muli", b, has.index(level.chunk)), level.chunk, fields)
            });
        }
        _ => zero_under(e, t, m + 1, start, count.saturating_mul(n), fields),
    }
}

/// Zeroes the data of `fields` at slots `[first, first + count)`.
fn zero_slots_of(e: E, t: &TreeArgs, first: Value, count: i64, fields: &[String]) {
    for (field, comps) in t.tree.fields.iter().filter(|(f, _)| fields.contains(f)) {
        let elem = t.elems.iter().find(|(f, _)| f == field).map(|(_, ty)| *ty).expect("the tree's field types");
        let start = e.bin("arith.muli", first, e.index(*comps));
        let (body, j) = e.each(count * comps);
        let pos = body.bin("arith.addi", start, j);
        body.store(ops::const_scalar(body.at, elem, 0.0, e.loc), t.buf(&ops::sparse::data(field)), pos);
    }
}

/// Zeroes the data of every field of the tree at slots `[first, first + count)`.
fn zero_slots(e: E, t: &TreeArgs, first: Value, count: i64) {
    for (field, comps) in &t.tree.fields {
        let elem = t.elems.iter().find(|(f, _)| f == field).map(|(_, ty)| *ty).expect("the tree's field types");
        let start = e.bin("arith.muli", first, e.index(*comps));
        let (body, j) = e.each(count * comps);
        let pos = body.bin("arith.addi", start, j);
        body.store(ops::const_scalar(body.at, elem, 0.0, e.loc), t.buf(&ops::sparse::data(field)), pos);
    }
}

/// Deactivates the cell of `c` at level `lvl` (see the module doc).
fn deactivate(e: E, t: &TreeArgs, c: &Coords, lvl: usize) {
    let tree = t.tree;
    let (e, k) = active_walk(e, t, &c.locals, lvl, false);
    let cell = cell_id(e, tree, lvl, k, c.locals[lvl]);
    match tree.levels[lvl].kind {
        LevelKind::Pointer => release_entry(e, t, lvl, cell),
        LevelKind::Bitmasked => {
            let was = bit_clear(e, t.buf(&tree.mask(lvl)), cell);
            clear_subtree(e.guard(was), t, lvl + 1, cell, 1);
        }
        LevelKind::Dynamic => clear_subtree(e, t, lvl, k, 1),
        LevelKind::Dense => {}
    }
}

/// Extends the list of container `k` of dynamic level `i` to hold cell
/// `l` (an atomic max of its length).
fn extend_list(e: E, t: &TreeArgs, i: usize, k: Value, l: Value) {
    let i32t = e.loc.ctx().int(32);
    let lens = t.buf(&t.tree.len(i));
    let want = e.bin("arith.addi", e.cast(l, i32t), e.i32(1));
    let n = e.load(lens, k, i32t);
    let short = e.guard(e.cmp(CmpI::Slt, n, want));
    short.rmw(RMW_MAXS, want, lens, k);
}

/// Whether cell `l` is within the list of container `k` of dynamic level `i`.
fn in_list(e: E, t: &TreeArgs, i: usize, k: Value, l: Value) -> Value {
    let i32t = e.loc.ctx().int(32);
    let n = e.load(t.buf(&t.tree.len(i)), k, i32t);
    e.cmp(CmpI::Slt, e.cast(l, i32t), n)
}

/// As [`activate_walk`], yielding a value: `f` of the container at level
/// `upto`, or `default` where a pointer's pool had no block.
#[allow(clippy::too_many_arguments)]
fn activate_value(
    e: E,
    t: &TreeArgs,
    c: &Coords,
    i: usize,
    k: Value,
    upto: usize,
    fail: &mut Fail,
    ty: Type,
    default: f64,
    f: &mut dyn FnMut(E, Value, &mut Fail) -> Value,
) -> Value {
    if i == upto {
        return f(e, k, fail);
    }
    let tree = t.tree;
    let cell = cell_id(e, tree, i, k, c.locals[i]);
    match tree.levels[i].kind {
        LevelKind::Pointer => {
            let owner = owner_of(e, tree, &c.cell, i);
            let id = ensure_block(e, t, i, cell, Some(owner), fail);
            let (if_op, then_b, else_b) = ops::build_if(e.at, e.cmp(CmpI::Sge, id, e.i32(0)), &[ty], e.loc);
            let th = E { at: Cursor::at_end(then_b), loc: e.loc };
            let v = activate_value(th, t, c, i + 1, th.to_index(id), upto, fail, ty, default, f);
            ops::build_yield(then_b, &[v], e.loc);
            let d = ops::const_scalar(Cursor::at_end(else_b), ty, default, e.loc);
            ops::build_yield(else_b, &[d], e.loc);
            return if_op.result(0);
        }
        LevelKind::Bitmasked => bit_set(e, t.buf(&tree.mask(i)), cell),
        LevelKind::Dynamic if tree.levels[i].chunk > 0 => {
            extend_list(e, t, i, k, c.locals[i]);
            let id = ensure_chunks(e, t, i, k, c.locals[i], fail);
            let (if_op, then_b, else_b) = ops::build_if(e.at, e.cmp(CmpI::Sge, id, e.i32(0)), &[ty], e.loc);
            let th = E { at: Cursor::at_end(then_b), loc: e.loc };
            let slot = chunk_slot(th, &tree.levels[i], th.to_index(id), c.locals[i]);
            let v = activate_value(th, t, c, i + 1, slot, upto, fail, ty, default, f);
            ops::build_yield(then_b, &[v], e.loc);
            let d = ops::const_scalar(Cursor::at_end(else_b), ty, default, e.loc);
            ops::build_yield(else_b, &[d], e.loc);
            return if_op.result(0);
        }
        LevelKind::Dynamic => extend_list(e, t, i, k, c.locals[i]),
        LevelKind::Dense => {}
    }
    activate_value(e, t, c, i + 1, cell, upto, fail, ty, default, f)
}

/// `ds.append`: the next cell of the list holding the cell of `c` takes
/// `value`; its position (i32), or -1 when the list is full (a failed check)
/// or a pool on the way had no block.
fn append(e: E, t: &TreeArgs, c: &Coords, value: Value, data: Value, fail: &mut Fail) -> Value {
    let tree = t.tree;
    let i32t = e.loc.ctx().int(32);
    let lvl = tree.depth() - 1;
    let leaf = tree.leaf();
    let lens = t.buf(&tree.len(lvl));
    let mut push = |inner: E, k: Value, fail: &mut Fail| -> Value {
        let n = inner.rmw(RMW_ADDI, inner.i32(1), lens, k);
        let ok = inner.cmp(CmpI::Slt, n, inner.i32(leaf.cells()));
        let (if_op, fits, full) = ops::build_if(inner.at, ok, &[i32t], e.loc);
        {
            let f = E { at: Cursor::at_end(fits), loc: e.loc };
            let l = f.to_index(n);
            let pos = if leaf.chunk > 0 {
                // The chunk it falls in, taken from the pool when the list
                // first reaches it; none left: the increment taken back.
                let id = ensure_chunks(f, t, lvl, k, l, fail);
                let got = f.cmp(CmpI::Sge, id, f.i32(0));
                let (got_if, yes, no) = ops::build_if(f.at, got, &[i32t], e.loc);
                let y = E { at: Cursor::at_end(yes), loc: e.loc };
                let slot = chunk_slot(y, leaf, y.to_index(id), l);
                y.store(value, data, data_pos(y, slot, c.comps, c.comp));
                ops::build_yield(yes, &[n], e.loc);
                let nb = E { at: Cursor::at_end(no), loc: e.loc };
                nb.rmw(RMW_ADDI, nb.i32(-1), lens, k);
                ops::build_yield(no, &[nb.i32(-1)], e.loc);
                got_if.result(0)
            } else {
                f.store(value, data, data_pos(f, cell_id(f, tree, lvl, k, l), c.comps, c.comp));
                n
            };
            ops::build_yield(fits, &[pos], e.loc);
        }
        {
            // Full: take the increment back, fail the launch (the check is
            // recorded before the branch's terminator).
            let f = E { at: Cursor::at_end(full), loc: e.loc };
            f.rmw(RMW_ADDI, f.i32(-1), lens, k);
            let none = f.i32(-1);
            let end = ops::build_yield(full, &[none], e.loc);
            fail(Cursor::before(end), e.loc, Failure::ListFull { node: leaf.node.clone(), capacity: leaf.cells() });
        }
        if_op.result(0)
    };
    activate_value(e, t, c, 0, e.index(0), lvl, fail, i32t, -1.0, &mut push)
}

/// Word and bit of mask cell `c`.
fn word_bit(e: E, c: Value) -> (Value, Value) {
    let word = e.bin("arith.divui", c, e.index(32));
    let shift = e.cast(e.bin("arith.remui", c, e.index(32)), e.loc.ctx().int(32));
    (word, e.bin("arith.shli", e.i32(1), shift))
}

fn bit_test(e: E, mask: Value, c: Value) -> Value {
    let (word, bit) = word_bit(e, c);
    let w = e.load(mask, word, e.loc.ctx().int(32));
    e.cmp(CmpI::Ne, e.bin("arith.andi", w, bit), e.i32(0))
}

/// Sets bit `c` (an atomic `ori`, only when it is not set yet).
fn bit_set(e: E, mask: Value, c: Value) {
    let (word, bit) = word_bit(e, c);
    let w = e.load(mask, word, e.loc.ctx().int(32));
    let unset = e.cmp(CmpI::Eq, e.bin("arith.andi", w, bit), e.i32(0));
    let inner = e.guard(unset);
    inner.rmw(RMW_ORI, bit, mask, word);
}

/// Clears bit `c` atomically; whether it was set.
fn bit_clear(e: E, mask: Value, c: Value) -> Value {
    let (word, bit) = word_bit(e, c);
    let not_bit = e.bin("arith.xori", bit, e.i32(-1));
    let old = e.rmw(RMW_ANDI, not_bit, mask, word);
    e.cmp(CmpI::Ne, e.bin("arith.andi", old, bit), e.i32(0))
}

/// The block of table entry `cell` of pooled level `i` (a pointer's cell,
/// a chunked list's chunk), allocated if it has none: its id (i32), or -1
/// when the pool is exhausted (then `fail` records it). The first thread to
/// find no block claims the table entry ([`claim`]), pops a block, lists it
/// (a pointer's: its owner `owner`, the cell's linear index through the
/// level) and installs it (`id +
/// FIRST_ID`, or 0 back when the pool is empty); others wait while the
/// entry is claimed.
fn ensure_block(e: E, t: &TreeArgs, i: usize, cell: Value, owner: Option<Value>, fail: &mut Fail) -> Value {
    let ctx = e.loc.ctx();
    let i32t = ctx.int(32);
    let tree = t.tree;
    let (table, free, counts) = (t.buf(&tree.table(i)), t.buf(&tree.free(i)), t.buf(&tree.counts(i)));
    let entry = e.load(table, cell, i32t);
    let has = e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED));
    let (if_op, then_b, else_b) = ops::build_if(e.at, has, &[i32t], e.loc);
    let th = E { at: Cursor::at_end(then_b), loc: e.loc };
    let id = th.bin("arith.subi", entry, th.i32(FIRST_ID));
    ops::build_yield(then_b, &[id], e.loc);
    let el = E { at: Cursor::at_end(else_b), loc: e.loc };
    let old = claim(el, table, cell);
    let claimed = el.cmp(CmpI::Eq, old, el.i32(0));
    let (claim_if, mine, theirs) = ops::build_if(el.at, claimed, &[i32t], e.loc);
    {
        // Claimed: pop a block and install it, or give the entry back.
        let me = E { at: Cursor::at_end(mine), loc: e.loc };
        let top = me.rmw(RMW_ADDI, me.i32(-1), counts, me.index(FREE_TOP as i64));
        let got = me.cmp(CmpI::Sgt, top, me.i32(0));
        let (pop_if, pop_then, pop_else) = ops::build_if(me.at, got, &[i32t], e.loc);
        let pe = E { at: Cursor::at_end(pop_then), loc: e.loc };
        let slot = pe.to_index(pe.bin("arith.subi", top, pe.i32(1)));
        let block = pe.load(free, slot, i32t);
        ops::build_yield(pop_then, &[block], e.loc);
        let none = ops::const_scalar(Cursor::at_end(pop_else), i32t, -1.0, e.loc);
        ops::build_yield(pop_else, &[none], e.loc);
        let block = pop_if.result(0);
        if let Some(owner) = owner {
            // Listed for struct_fors: its owner, then an entry of the list.
            let ok = me.guard(got);
            let b = ok.to_index(block);
            ok.store(ok.cast(owner, i32t), t.buf(&tree.owner(i)), b);
            let k = ok.rmw(RMW_ADDI, ok.i32(1), counts, ok.index(LISTED as i64));
            ok.store(block, t.buf(&tree.list(i)), ok.to_index(k));
        }
        let installed = me.select(got, me.bin("arith.addi", block, me.i32(FIRST_ID)), me.i32(0));
        me.rmw(RMW_ASSIGN, installed, table, cell);
        let failed = me.cmp(CmpI::Eq, got, ops::const_scalar(me.at, ctx.int(1), 0.0, e.loc));
        let report = me.guard(failed);
        let level = &tree.levels[i];
        fail(report.at, e.loc, Failure::PoolExhausted { node: level.node.clone(), capacity: level.capacity });
        ops::build_yield(mine, &[block], e.loc);
    }
    {
        // Another thread holds the claim (or installed it meanwhile): wait.
        let other = E { at: Cursor::at_end(theirs), loc: e.loc };
        let v = wait_while_claimed(other, table, cell);
        let ok = other.cmp(CmpI::Sgt, v, other.i32(CLAIMED));
        let id = other.select(ok, other.bin("arith.subi", v, other.i32(FIRST_ID)), other.i32(-1));
        ops::build_yield(theirs, &[id], e.loc);
    }
    ops::build_yield(else_b, &[claim_if.result(0)], e.loc);
    if_op.result(0)
}

/// Claims table entry `p`: an atomic unsigned max with [`CLAIMED`] turns
/// an empty entry (0) into a claimed one and leaves claimed and installed
/// ones (`id + FIRST_ID`) as they are; returns the old value (0: this thread
/// holds the claim).
fn claim(e: E, table: Value, p: Value) -> Value {
    e.rmw(RMW_MAXU, e.i32(CLAIMED), table, p)
}

/// `scf.while`: reads table[p] atomically until it is not [`CLAIMED`]; the value.
fn wait_while_claimed(e: E, table: Value, p: Value) -> Value {
    let i32t = e.loc.ctx().int(32);
    let before = Region::new();
    let b = before.append_block(Block::new(&[]));
    let be = E { at: Cursor::at_end(b), loc: e.loc };
    let v = be.rmw(RMW_ORI, be.i32(0), table, p);
    let busy = be.cmp(CmpI::Eq, v, be.i32(CLAIMED));
    be.at.build(OpBuilder::new("scf.condition", e.loc).operands(&[busy, v]));
    let after = Region::new();
    let a = after.append_block(Block::new(&[(i32t, e.loc)]));
    ops::build_yield(a, &[], e.loc);
    e.at.build(OpBuilder::new("scf.while", e.loc).results(&[i32t]).region(before).region(after)).result(0)
}

/// Writes `value` into `data[pos]` as access `kind` (a store or an atomic;
/// `plain`: the add or sub of an element no other iteration touches).
fn write_data(e: E, kind: AccessKind, value: Value, data: Value, pos: Value, plain: bool) {
    let float = value.ty().is_float();
    let negate = |v: Value| {
        if float {
            e.at.build(OpBuilder::new("arith.negf", e.loc).operands(&[v]).results(&[v.ty()])).result(0)
        } else {
            e.bin("arith.subi", ops::const_scalar(e.at, v.ty(), 0.0, e.loc), v)
        }
    };
    let add = if float { RMW_ADDF } else { RMW_ADDI };
    match kind {
        AccessKind::Store => e.store(value, data, pos),
        AccessKind::AtomicAdd | AccessKind::AtomicSub if plain => {
            let old = e.load(data, pos, value.ty());
            let op = match (kind == AccessKind::AtomicAdd, float) {
                (true, true) => "arith.addf",
                (true, false) => "arith.addi",
                (false, true) => "arith.subf",
                (false, false) => "arith.subi",
            };
            e.store(e.bin(op, old, value), data, pos);
        }
        AccessKind::AtomicAdd => {
            e.rmw(add, value, data, pos);
        }
        AccessKind::AtomicSub => {
            e.rmw(add, negate(value), data, pos);
        }
        AccessKind::AtomicMin => {
            e.rmw(if float { RMW_MINIMUMF } else { RMW_MINS }, value, data, pos);
        }
        AccessKind::AtomicMax => {
            e.rmw(if float { RMW_MAXIMUMF } else { RMW_MAXS }, value, data, pos);
        }
        AccessKind::Load
        | AccessKind::Activate
        | AccessKind::Deactivate
        | AccessKind::IsActive
        | AccessKind::Append
        | AccessKind::Length => unreachable!("not a data write"),
    }
}

/// How one access of a sparse field is lowered.
pub struct AccessPlan<'a> {
    pub access: &'a Access,
    pub elem: Type,
    pub field_shape: &'a [i64],
    /// An adjoint field: its accesses never activate (and its deactivation
    /// zeroes the tree's adjoints there, leaving the active set as it is).
    pub adjoint: bool,
    /// The adjoint fields of the program (those named by a field's `grad`).
    pub adjoints: &'a [String],
    /// A plain (non-atomic) add or sub: the element is the iteration's own.
    pub plain: bool,
}

/// The level an activity op means: its `node`, else `default`.
fn level(a: &Access, tree: &SparseTree, default: usize) -> usize {
    a.node().and_then(|n| tree.level_of(&n)).unwrap_or(default)
}


/// Lowers one access of a sparse field at `at` (see the module doc);
/// returns the value of a load, `ds.is_active`, `ds.append` or `ds.length`.
/// `fail` records, at a cursor, a failed check (an exhausted pool, a full list).
pub fn emit_access(at: Cursor, plan: &AccessPlan, t: &TreeArgs, fail: &mut Fail) -> Option<Value> {
    let a = plan.access;
    let tree = t.tree;
    let e = E { at, loc: a.op.loc() };
    let ctx = e.loc.ctx();
    let i32t = ctx.int(32);
    let c = coords(e, tree, &a.indices, plan.field_shape);
    let depth = tree.depth();
    let leaf = depth - 1;
    let data = t.buf(&ops::sparse::data(&a.field));
    let zero = e.index(0);
    match a.kind {
        AccessKind::Load => {
            // An inactive cell holds 0: only pointers are tested.
            let read = |e: E, slot: Value| e.load(data, data_pos(e, slot, c.comps, c.comp), plan.elem);
            Some(walk_value(e, t, &c.locals, 0, zero, depth, false, plan.elem, 0.0, &read))
        }
        AccessKind::IsActive => {
            let lvl = level(a, tree, leaf);
            let yes = |e: E, _: Value| ops::const_scalar(e.at, ctx.int(1), 1.0, e.loc);
            Some(walk_value(e, t, &c.locals, 0, zero, lvl + 1, true, ctx.int(1), 0.0, &yes))
        }
        AccessKind::Store | AccessKind::AtomicAdd | AccessKind::AtomicSub | AccessKind::AtomicMin | AccessKind::AtomicMax => {
            let value = a.value.expect("a written value");
            let (inner, slot) = if plan.adjoint { active_walk(e, t, &c.locals, depth, true) } else { activate_walk(e, t, &c, depth, fail) };
            let pos = data_pos(inner, slot, c.comps, c.comp);
            write_data(inner, a.kind, value, data, pos, plan.plain);
            None
        }
        AccessKind::Activate => {
            if !plan.adjoint {
                activate_walk(e, t, &c, level(a, tree, leaf) + 1, fail);
            }
            None
        }
        AccessKind::Deactivate if plan.adjoint => {
            // The adjoint of a deactivation (a grad kernel's): the adjoints under the cell are 0.
            let lvl = level(a, tree, tree.innermost_sparse());
            let fields: Vec<String> = tree.fields.iter().map(|(f, _)| f.clone()).filter(|f| plan.adjoints.contains(f)).collect();
            let (e, k) = active_walk(e, t, &c.locals, lvl, false);
            let cell = cell_id(e, tree, lvl, k, c.locals[lvl]);
            match tree.levels[lvl].kind {
                LevelKind::Pointer => {
                    let entry = e.load(t.buf(&tree.table(lvl)), cell, i32t);
                    let has = e.guard(e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED)));
                    let b = has.to_index(has.bin("arith.subi", entry, has.i32(FIRST_ID)));
                    zero_under(has, t, lvl + 1, b, 1, &fields);
                }
                LevelKind::Dynamic => zero_under(e, t, lvl, k, 1, &fields),
                _ => zero_under(e, t, lvl + 1, cell, 1, &fields),
            }
            None
        }
        AccessKind::Deactivate => {
            deactivate(e, t, &c, level(a, tree, tree.innermost_sparse()));
            None
        }
        AccessKind::Append => Some(append(e, t, &c, a.value.expect("an appended value"), data, fail)),
        AccessKind::Length => {
            let lens = t.buf(&tree.len(leaf));
            let len = |e: E, k: Value| e.load(lens, k, i32t);
            Some(walk_value(e, t, &c.locals, 0, zero, leaf, false, i32t, 0.0, &len))
        }
    }
}
