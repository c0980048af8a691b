//! The lowering of sparse fields: the one place where the layout tree of
//! `ds.pointer`, `ds.bitmasked` (and `ds.dense`) nodes becomes address
//! computation over the tree's buffers (`ds_dialects::ops::sparse` describes
//! them: data, masks, pointer table, block pool), shared by the CPU and GPU
//! paths. Two passes call it:
//!
//! - `ds-lower-parallel-cpu` ([`struct_for_block`]): a `ds.struct_for` over a
//!   sparse field becomes a task over the tree's outer cells (blocks), or
//!   for a pointer tree over its list of allocated blocks ([`BLOCK_LIST`],
//!   resolved by `convert-ds-to-scf`: O(allocated blocks), not O(cells));
//!   each iteration tests its block (`ds.is_active` at the outer node), loops over
//!   the block's cells, tests each cell of a bitmasked leaf, and runs the body
//!   on the active ones: parallel over blocks, then serial over cells;
//! - `convert-ds-to-scf` ([`emit_access`]): every access of a sparse field
//!   (loads, stores, atomics, `ds.activate`, `ds.deactivate`, `ds.is_active`)
//!   becomes memref ops on the hidden buffers, which the function takes as
//!   arguments after the dense fields' (named in `ds.fields`).
//!
//! Semantics (Taichi's): a read of an inactive cell gives 0 (an inactive
//! pointer is not followed; an inactive bitmasked cell holds 0); a write or
//! atomic of a primal field activates the cell (allocating the block of a
//! pointer node from the pool); accesses of an adjoint field (one named by a
//! field's `grad`) never activate: a write to an inactive cell is dropped,
//! so a gradient kernel leaves the primal's active set as it was.
//! `ds.activate` activates down to `node` (default: the leaf);
//! `ds.deactivate` deactivates `node`'s cell (default: the innermost sparse
//! node), zeroing every field of a bitmasked cell or block, or releasing a
//! pointer's block to the freed list, which the runtime zeroes and returns
//! to the pool after the launch.
//!
//! Allocation: the first thread finding no block claims the table entry
//! (an atomic unsigned max turning 0 into 1, leaving others as they are), pops a block from the free stack (an atomic
//! decrement of its height) and installs it; threads finding the entry
//! claimed wait for it (a short spin on an atomic read), so no block is
//! popped twice for one cell. A pop from an empty stack is a run-time check
//! (`CheckKind::PoolExhausted`): the launch fails with a typed error and the
//! write is dropped, never made out of the pool. (The spin needs independent
//! thread scheduling on the GPU: sm_70 and later.)
//!
//! Example: `"ds.store"(%v, %i) {field = @x}` with `@x` under
//! `ds.bitmasked @m [64]` becomes, roughly, `%w = memref.load %mask[%i / 32];
//! scf.if ((%w & bit) == 0) { memref.atomic_rmw ori bit, %mask[%i / 32] };
//! memref.store %v, %data[%i]`.

use ds_dialects::ir::{Block, Cursor, Loc, Op, OpBuilder, Region, Type, Value};
use ds_dialects::ops::sparse::{LISTED, LevelKind, SparseTree};
use ds_dialects::ops::{self, Access, AccessKind, CmpI, DsOp};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A write needed a block and the pool had none.
    PoolExhausted,
    /// An append found its list (a dynamic node's block) full.
    ListFull,
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
        self.at.build(OpBuilder::new("arith.select", self.loc).operands(&[c, a, b]).results(&[a.ty()])).result(0)
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

/// Where an element of a field of the tree is: outer cell `p` (the block of
/// a dense or bitmasked outer level), cell `l` within its block, component `comp`.
struct Coords {
    p: Value,
    l: Value,
    comp: Value,
    comps: i64,
}

fn coords(e: E, tree: &SparseTree, indices: &[Value], field_shape: &[i64]) -> Coords {
    let rank = tree.rank();
    let block = tree.block_shape();
    let (mut outer, mut local) = (Vec::new(), Vec::new());
    for d in 0..rank {
        if block[d] == 1 {
            outer.push(indices[d]);
            local.push(e.index(0));
        } else {
            let b = e.index(block[d]);
            outer.push(e.bin("arith.divui", indices[d], b));
            local.push(e.bin("arith.remui", indices[d], b));
        }
    }
    let comp_shape = &field_shape[rank.min(field_shape.len())..];
    Coords {
        p: e.linear(&outer, &tree.outer.shape),
        l: e.linear(&local, &block),
        comp: e.linear(&indices[rank.min(indices.len())..], comp_shape),
        comps: comp_shape.iter().product::<i64>().max(1),
    }
}

/// The pool cell of cell `l` of block `id` (the bit of a bitmasked leaf).
fn pool_cell(e: E, tree: &SparseTree, id: Value, l: Value) -> Value {
    let scaled = e.bin("arith.muli", id, e.index(tree.block_cells()));
    e.bin("arith.addi", scaled, l)
}

/// The position in a field's data of component `comp` of pool cell `cell`.
fn data_pos(e: E, cell: Value, comps: i64, comp: Value) -> Value {
    let scaled = e.bin("arith.muli", cell, e.index(comps));
    e.bin("arith.addi", scaled, comp)
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

/// The block of outer cell `p` of a pointer tree, allocated if it has none:
/// its id (i32), or -1 when the pool is exhausted (then `fail` records it).
/// The first thread to find no block claims the table entry ([`claim`]),
/// pops a block and installs it (`id + FIRST_ID`, or 0 back when the pool is
/// empty); others wait while the entry is claimed.
fn ensure_block(e: E, t: &TreeArgs, p: Value, fail: &mut Fail) -> Value {
    let ctx = e.loc.ctx();
    let i32t = ctx.int(32);
    let (table, free, counts) = (t.buf(&t.tree.table()), t.buf(&t.tree.free()), t.buf(&t.tree.counts()));
    let entry = e.load(table, p, i32t);
    let has = e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED));
    let (if_op, then_b, else_b) = ops::build_if(e.at, has, &[i32t], e.loc);
    let th = E { at: Cursor::at_end(then_b), loc: e.loc };
    let id = th.bin("arith.subi", entry, th.i32(FIRST_ID));
    ops::build_yield(then_b, &[id], e.loc);
    let el = E { at: Cursor::at_end(else_b), loc: e.loc };
    let old = claim(el, table, p);
    let claimed = el.cmp(CmpI::Eq, old, el.i32(0));
    let (claim_if, mine, theirs) = ops::build_if(el.at, claimed, &[i32t], e.loc);
    {
        // Claimed: pop a block and install it, or give the entry back.
        let me = E { at: Cursor::at_end(mine), loc: e.loc };
        let top = me.rmw(RMW_ADDI, me.i32(-1), counts, me.index(0));
        let got = me.cmp(CmpI::Sgt, top, me.i32(0));
        let (pop_if, pop_then, pop_else) = ops::build_if(me.at, got, &[i32t], e.loc);
        let pe = E { at: Cursor::at_end(pop_then), loc: e.loc };
        let slot = pe.to_index(pe.bin("arith.subi", top, pe.i32(1)));
        let block = pe.load(free, slot, i32t);
        ops::build_yield(pop_then, &[block], e.loc);
        let none = ops::const_scalar(Cursor::at_end(pop_else), i32t, -1.0, e.loc);
        ops::build_yield(pop_else, &[none], e.loc);
        let block = pop_if.result(0);
        {
            // Listed for struct_fors: its owner, then an entry of the list.
            let (list, owner) = (t.buf(&t.tree.list()), t.buf(&t.tree.owner()));
            let ok = me.guard(got);
            let b = ok.to_index(block);
            ok.store(ok.cast(p, i32t), owner, b);
            let k = ok.rmw(RMW_ADDI, ok.i32(1), counts, ok.index(LISTED as i64));
            ok.store(block, list, ok.to_index(k));
        }
        let installed = me.select(got, me.bin("arith.addi", block, me.i32(FIRST_ID)), me.i32(0));
        me.rmw(RMW_ASSIGN, installed, table, p);
        let failed = me.cmp(CmpI::Eq, got, ops::const_scalar(me.at, ctx.int(1), 0.0, e.loc));
        let report = me.guard(failed);
        fail(report.at, e.loc, Failure::PoolExhausted);
        ops::build_yield(mine, &[block], e.loc);
    }
    {
        // Another thread holds the claim (or installed it meanwhile): wait.
        let other = E { at: Cursor::at_end(theirs), loc: e.loc };
        let v = wait_while_claimed(other, table, p);
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
    /// An adjoint field: its accesses never activate.
    pub adjoint: bool,
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
    let leaf = usize::from(tree.inner.is_some());
    let data = || t.buf(&ops::sparse::data(&a.field));
    match a.kind {
        AccessKind::Load => {
            if tree.is_pointer() {
                let entry = e.load(t.buf(&tree.table()), c.p, i32t);
                let has = e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED));
                let (if_op, then_b, else_b) = ops::build_if(e.at, has, &[plan.elem], e.loc);
                let th = E { at: Cursor::at_end(then_b), loc: e.loc };
                let id = th.to_index(th.bin("arith.subi", entry, th.i32(FIRST_ID)));
                let pos = data_pos(th, pool_cell(th, tree, id, c.l), c.comps, c.comp);
                let v = th.load(data(), pos, plan.elem);
                ops::build_yield(then_b, &[v], e.loc);
                let zero = ops::const_scalar(Cursor::at_end(else_b), plan.elem, 0.0, e.loc);
                ops::build_yield(else_b, &[zero], e.loc);
                Some(if_op.result(0))
            } else {
                // An inactive cell holds 0: no mask test.
                let pos = data_pos(e, pool_cell(e, tree, c.p, c.l), c.comps, c.comp);
                Some(e.load(data(), pos, plan.elem))
            }
        }
        AccessKind::IsActive => Some(is_active(e, t, &c, level(a, tree, leaf))),
        AccessKind::Store | AccessKind::AtomicAdd | AccessKind::AtomicSub | AccessKind::AtomicMin | AccessKind::AtomicMax => {
            let value = a.value.expect("a written value");
            let inner = if plan.adjoint { active_block(e, t, &c) } else { activate(e, t, &c, leaf, fail) };
            let (inner, id) = inner;
            let pos = data_pos(inner, pool_cell(inner, tree, id, c.l), c.comps, c.comp);
            write_data(inner, a.kind, value, data(), pos, plan.plain);
            None
        }
        AccessKind::Activate => {
            if !plan.adjoint {
                activate(e, t, &c, level(a, tree, leaf), fail);
            }
            None
        }
        AccessKind::Deactivate => {
            deactivate(e, t, &c, level(a, tree, tree.innermost_sparse()));
            None
        }
        AccessKind::Append => Some(append(e, t, &c, a.value.expect("an appended value"), data(), fail)),
        AccessKind::Length => Some(length(e, t, &c)),
    }
}

/// The block id (i32; -1 when the pool is exhausted) of outer cell `p`,
/// its outer level activated (a pointer's block allocated).
fn block_for_write(e: E, t: &TreeArgs, p: Value, fail: &mut Fail) -> Value {
    let tree = t.tree;
    match tree.outer.kind {
        LevelKind::Pointer => ensure_block(e, t, p, fail),
        LevelKind::Bitmasked => {
            bit_set(e, t.buf(&tree.mask0()), p);
            e.cast(p, e.loc.ctx().int(32))
        }
        LevelKind::Dense => e.cast(p, e.loc.ctx().int(32)),
        LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
    }
}

/// `ds.append`: the next cell of the block's list takes `value`; its
/// position (i32), or -1 when the list is full (a failed check).
fn append(e: E, t: &TreeArgs, c: &Coords, value: Value, data: Value, fail: &mut Fail) -> Value {
    let tree = t.tree;
    let i32t = e.loc.ctx().int(32);
    let id32 = block_for_write(e, t, c.p, fail);
    let has = e.cmp(CmpI::Sge, id32, e.i32(0));
    let (if_op, then_b, else_b) = ops::build_if(e.at, has, &[i32t], e.loc);
    let th = E { at: Cursor::at_end(then_b), loc: e.loc };
    let id = th.to_index(id32);
    let lens = t.buf(&tree.len());
    let k = th.rmw(RMW_ADDI, th.i32(1), lens, id);
    let ok = th.cmp(CmpI::Slt, k, th.i32(tree.block_cells()));
    let (_, fits, full) = ops::build_if(th.at, ok, &[], e.loc);
    {
        let f = E { at: Cursor::at_end(fits), loc: e.loc };
        let pos = data_pos(f, pool_cell(f, tree, id, f.to_index(k)), c.comps, c.comp);
        f.store(value, data, pos);
        ops::build_yield(fits, &[], e.loc);
    }
    {
        // Full: take the increment back, fail the launch (the check is
        // recorded later, before the branch's terminator).
        let end = ops::build_yield(full, &[], e.loc);
        let f = E { at: Cursor::before(end), loc: e.loc };
        f.rmw(RMW_ADDI, f.i32(-1), lens, id);
        fail(f.at, e.loc, Failure::ListFull);
    }
    let pos = th.select(ok, k, th.i32(-1));
    ops::build_yield(then_b, &[pos], e.loc);
    let none = ops::const_scalar(Cursor::at_end(else_b), i32t, -1.0, e.loc);
    ops::build_yield(else_b, &[none], e.loc);
    if_op.result(0)
}

/// `ds.length`: the length of the block's list (0 without a block).
fn length(e: E, t: &TreeArgs, c: &Coords) -> Value {
    let tree = t.tree;
    let i32t = e.loc.ctx().int(32);
    let lens = t.buf(&tree.len());
    if !tree.is_pointer() {
        // An inactive bitmasked block's list is empty (cleared with it).
        return e.load(lens, c.p, i32t);
    }
    let entry = e.load(t.buf(&tree.table()), c.p, i32t);
    let has = e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED));
    let (if_op, then_b, else_b) = ops::build_if(e.at, has, &[i32t], e.loc);
    let th = E { at: Cursor::at_end(then_b), loc: e.loc };
    let id = th.to_index(th.bin("arith.subi", entry, th.i32(FIRST_ID)));
    let n = th.load(lens, id, i32t);
    ops::build_yield(then_b, &[n], e.loc);
    let zero = ops::const_scalar(Cursor::at_end(else_b), i32t, 0.0, e.loc);
    ops::build_yield(else_b, &[zero], e.loc);
    if_op.result(0)
}

/// Extends the list of block `id` to hold cell `l` (an atomic max of its length).
fn extend_list(e: E, t: &TreeArgs, id: Value, l: Value) {
    let i32t = e.loc.ctx().int(32);
    let lens = t.buf(&t.tree.len());
    let want = e.bin("arith.addi", e.cast(l, i32t), e.i32(1));
    let n = e.load(lens, id, i32t);
    let short = e.guard(e.cmp(CmpI::Slt, n, want));
    short.rmw(RMW_MAXS, want, lens, id);
}

/// Whether cell `l` is within the list of block `id`.
fn in_list(e: E, t: &TreeArgs, id: Value, l: Value) -> Value {
    let i32t = e.loc.ctx().int(32);
    let n = e.load(t.buf(&t.tree.len()), id, i32t);
    e.cmp(CmpI::Slt, e.cast(l, i32t), n)
}

/// Activates the cell of `c` down to `level`; the insertion point where
/// its block is there, and the block's id (index).
fn activate(e: E, t: &TreeArgs, c: &Coords, level: usize, fail: &mut Fail) -> (E, Value) {
    let tree = t.tree;
    let (inner, id) = match tree.outer.kind {
        LevelKind::Pointer => {
            let id32 = ensure_block(e, t, c.p, fail);
            let inner = e.guard(e.cmp(CmpI::Sge, id32, e.i32(0)));
            (inner, inner.to_index(id32))
        }
        LevelKind::Bitmasked => {
            bit_set(e, t.buf(&tree.mask0()), c.p);
            (e, c.p)
        }
        LevelKind::Dense => (e, c.p),
        LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
    };
    if level >= 1 && tree.has_mask1() {
        bit_set(inner, t.buf(&tree.mask1()), pool_cell(inner, tree, id, c.l));
    }
    if level >= 1 && tree.is_dynamic() {
        extend_list(inner, t, id, c.l);
    }
    (inner, id)
}

/// The insertion point where every level of the cell of `c` is active, and its block's id.
fn active_block(e: E, t: &TreeArgs, c: &Coords) -> (E, Value) {
    let tree = t.tree;
    let (inner, id) = match tree.outer.kind {
        LevelKind::Pointer => {
            let entry = e.load(t.buf(&tree.table()), c.p, e.loc.ctx().int(32));
            let inner = e.guard(e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED)));
            (inner, inner.to_index(inner.bin("arith.subi", entry, inner.i32(FIRST_ID))))
        }
        LevelKind::Bitmasked => (e.guard(bit_test(e, t.buf(&tree.mask0()), c.p)), c.p),
        LevelKind::Dense => (e, c.p),
        LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
    };
    if tree.has_mask1() {
        let cell = pool_cell(inner, tree, id, c.l);
        return (inner.guard(bit_test(inner, t.buf(&tree.mask1()), cell)), id);
    }
    if tree.is_dynamic() {
        return (inner.guard(in_list(inner, t, id, c.l)), id);
    }
    (inner, id)
}

/// Whether the cell of `c` is active down to `level` (i1).
fn is_active(e: E, t: &TreeArgs, c: &Coords, level: usize) -> Value {
    let tree = t.tree;
    let ctx = e.loc.ctx();
    let i1 = ctx.int(1);
    let check_mask1 = level >= 1 && (tree.has_mask1() || tree.is_dynamic());
    // The leaf's test in block `id`: its bit, or within its list.
    let leaf_test = |e: E, id: Value| {
        if tree.is_dynamic() { in_list(e, t, id, c.l) } else { bit_test(e, t.buf(&tree.mask1()), pool_cell(e, tree, id, c.l)) }
    };
    match tree.outer.kind {
        LevelKind::Pointer => {
            let entry = e.load(t.buf(&tree.table()), c.p, ctx.int(32));
            let has = e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED));
            if !check_mask1 {
                return has;
            }
            let (if_op, then_b, else_b) = ops::build_if(e.at, has, &[i1], e.loc);
            let th = E { at: Cursor::at_end(then_b), loc: e.loc };
            let id = th.to_index(th.bin("arith.subi", entry, th.i32(FIRST_ID)));
            let bit = leaf_test(th, id);
            ops::build_yield(then_b, &[bit], e.loc);
            let no = ops::const_scalar(Cursor::at_end(else_b), i1, 0.0, e.loc);
            ops::build_yield(else_b, &[no], e.loc);
            if_op.result(0)
        }
        LevelKind::Bitmasked | LevelKind::Dense => {
            let outer = match tree.outer.kind {
                LevelKind::Bitmasked => bit_test(e, t.buf(&tree.mask0()), c.p),
                _ => ops::const_scalar(e.at, i1, 1.0, e.loc),
            };
            if !check_mask1 {
                return outer;
            }
            let bit = leaf_test(e, c.p);
            e.bin("arith.andi", outer, bit)
        }
        LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
    }
}

/// Zeroes the data of every field of the tree at pool cells `[first, first + cells)`.
fn zero_cells(e: E, t: &TreeArgs, first: Value, cells: i64) {
    for (field, comps) in &t.tree.fields {
        let elem = t.elems.iter().find(|(f, _)| f == field).map(|(_, ty)| *ty).expect("the tree's field types");
        let start = e.bin("arith.muli", first, e.index(*comps));
        let (body, j) = e.each(cells * comps);
        let pos = body.bin("arith.addi", start, j);
        body.store(ops::const_scalar(body.at, elem, 0.0, e.loc), t.buf(&ops::sparse::data(field)), pos);
    }
}

/// Deactivates the cell of `c` at `level` (see the module doc).
fn deactivate(e: E, t: &TreeArgs, c: &Coords, level: usize) {
    let tree = t.tree;
    let i32t = e.loc.ctx().int(32);
    if level >= 1 && tree.is_dynamic() {
        // The whole list: its length to 0, its cells zeroed.
        let (inner, id) = match tree.outer.kind {
            LevelKind::Pointer => {
                let entry = e.load(t.buf(&tree.table()), c.p, i32t);
                let inner = e.guard(e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED)));
                (inner, inner.to_index(inner.bin("arith.subi", entry, inner.i32(FIRST_ID))))
            }
            _ => (e, c.p),
        };
        let old = inner.rmw(RMW_ASSIGN, inner.i32(0), t.buf(&tree.len()), id);
        let had = inner.guard(inner.cmp(CmpI::Sgt, old, inner.i32(0)));
        let first = had.bin("arith.muli", id, had.index(tree.block_cells()));
        zero_cells(had, t, first, tree.block_cells());
        return;
    }
    if level >= 1 && tree.has_mask1() {
        let (inner, id) = match tree.outer.kind {
            LevelKind::Pointer => {
                let entry = e.load(t.buf(&tree.table()), c.p, i32t);
                let inner = e.guard(e.cmp(CmpI::Sgt, entry, e.i32(CLAIMED)));
                (inner, inner.to_index(inner.bin("arith.subi", entry, inner.i32(FIRST_ID))))
            }
            LevelKind::Bitmasked | LevelKind::Dense => (e, c.p),
            LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
        };
        let cell = pool_cell(inner, tree, id, c.l);
        let was = bit_clear(inner, t.buf(&tree.mask1()), cell);
        zero_cells(inner.guard(was), t, cell, 1);
        return;
    }
    match tree.outer.kind {
        LevelKind::Pointer => {
            let old = e.rmw(RMW_ASSIGN, e.i32(0), t.buf(&tree.table()), c.p);
            let had = e.guard(e.cmp(CmpI::Sgt, old, e.i32(CLAIMED)));
            let k = had.to_index(had.rmw(RMW_ADDI, had.i32(1), t.buf(&tree.counts()), had.index(1)));
            had.store(had.bin("arith.subi", old, had.i32(FIRST_ID)), t.buf(&tree.freed()), k);
        }
        LevelKind::Bitmasked => {
            let was = bit_clear(e, t.buf(&tree.mask0()), c.p);
            let inner = e.guard(was);
            let first = inner.bin("arith.muli", c.p, inner.index(tree.block_cells()));
            zero_cells(inner, t, first, tree.block_cells());
            if tree.has_mask1() {
                let (body, l) = inner.each(tree.block_cells());
                bit_clear(body, t.buf(&tree.mask1()), body.bin("arith.addi", first, l));
            }
            if tree.is_dynamic() {
                inner.store(inner.i32(0), t.buf(&tree.len()), c.p);
            }
        }
        LevelKind::Dense => {}
        LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
    }
}

/// Row-major indices of linear position `i` in `shape`.
fn delinearize(e: E, i: Value, shape: &[i64]) -> Vec<Value> {
    let mut out = vec![i; shape.len()];
    let mut rest = i;
    for d in (1..shape.len()).rev() {
        let extent = e.index(shape[d]);
        out[d] = e.bin("arith.remui", rest, extent);
        rest = e.bin("arith.divui", rest, extent);
    }
    if let Some(first) = out.first_mut() {
        *first = rest;
    }
    out
}

/// The iterations of a `ds.struct_for` over a field of `tree`: its outer
/// cells, or for a pointer tree the entries its block list can hold (the
/// CPU runtime runs only the listed ones, [`BLOCK_LIST`]).
pub fn struct_for_range(tree: &SparseTree) -> i64 {
    if tree.is_pointer() { tree.capacity } else { tree.outer_cells() }
}

/// On the `scf.for` of a `ds.struct_for` over a pointer tree, and on the
/// task holding it: the tree's name. The loop's variable is an entry of the
/// tree's list of allocated blocks (`<tree>$list`), not an outer cell;
/// `convert-ds-to-scf` ([`resolve_block_lists`]) turns it into the block's
/// outer cell and skips entries past the list's length or released (whose
/// owner's table entry names another block or none). The runtime runs such a
/// task over `[0, listed blocks)`: O(allocated blocks), not O(outer cells).
pub const BLOCK_LIST: &str = "ds.block_list";

/// For each loop of `func` marked [`BLOCK_LIST`]: the list entry `k` it
/// runs becomes the outer cell `owner[list[k]]` of the `k`-th allocated
/// block, and its body runs only when `k < counts[LISTED]` and the table
/// entry of that cell is still the block (released blocks stay listed
/// until the launch ends). Marks `func` with the tree's name too.
pub fn resolve_block_lists(func: Op, trees: &[TreeArgs]) {
    let loops: Vec<Op> = func.walk().into_iter().filter(|o| o.name() == "scf.for" && o.attr(BLOCK_LIST).is_some()).collect();
    for lp in loops {
        let name = lp.attr(BLOCK_LIST).and_then(|a| a.as_string()).unwrap_or_default();
        let Some(t) = trees.iter().find(|t| t.tree.name == name) else { continue };
        func.set_attr(BLOCK_LIST, lp.ctx().string_attr(&name));
        let body = lp.region(0).first_block().expect("loop body");
        let k = body.arg(0);
        let old: Vec<Op> = body.ops().into_iter().filter(|o| o.name() != "scf.yield").collect();
        let first = body.first_op().expect("a loop body ends in its terminator");
        let e = E { at: Cursor::before(first), loc: lp.loc() };
        let i32t = e.loc.ctx().int(32);
        let n = e.load(t.buf(&t.tree.counts()), e.index(LISTED as i64), i32t);
        let listed = e.cmp(CmpI::Slt, e.cast(k, i32t), n);
        // Entries past the length hold ids of blocks in [0, capacity) (or 0):
        // reading them is in bounds; the length test discards them.
        let b = e.load(t.buf(&t.tree.list()), k, i32t);
        let p = e.to_index(e.load(t.buf(&t.tree.owner()), e.to_index(b), i32t));
        let entry = e.load(t.buf(&t.tree.table()), p, i32t);
        let current = e.cmp(CmpI::Eq, entry, e.bin("arith.addi", b, e.i32(FIRST_ID)));
        let inner = e.guard(e.bin("arith.andi", listed, current));
        let end = inner.at.anchor().expect("a guard's terminator");
        let map: ds_dialects::ir::ValueMap = [(k, p)].into_iter().collect();
        for op in old {
            op.move_before(end);
            ds_dialects::ir::remap_operands(op, &map);
        }
    }
}

/// The active cells of block `p` (an outer cell, or for a pointer tree the
/// entry of its block list: `p` is then the variable of the enclosing
/// `scf.for`, which this marks [`BLOCK_LIST`]) of `tree`, for a
/// `ds.struct_for` over `field` binding the dimensions `field_shape` (all
/// of the field's, or its cell dimensions only), emitted at `at`:
/// a test of the block, a loop over its cells, a test of each cell of a
/// bitmasked leaf, and loops over the field's component dimensions.
/// Returns the field's indices and the op before which the body goes.
pub fn struct_for_block(at: Cursor, p: Value, tree: &SparseTree, field: &str, field_rank: usize, field_shape: &[i64], loc: Loc) -> (Vec<Value>, Op) {
    let ctx = loc.ctx();
    let e = E { at, loc };
    let rank = tree.rank();
    let block = tree.block_shape();
    let comp_dims = &field_shape[rank.min(field_shape.len())..];
    let with_zeros = |e: E, cell: &[Value]| -> Vec<Value> {
        let pad = field_rank.saturating_sub(cell.len());
        cell.iter().copied().chain((0..pad).map(|_| e.index(0))).collect()
    };
    let is_active = |e: E, cell: &[Value], node: &str| -> Value {
        let idx = with_zeros(e, cell);
        e.at.build(
            OpBuilder::new(DsOp::IsActive.name(), loc)
                .operands(&idx)
                .results(&[ctx.int(1)])
                .attr("field", ctx.symbol_ref(field))
                .attr("node", ctx.symbol_ref(node)),
        )
        .result(0)
    };
    if tree.is_pointer()
        && let Some(lp) = p.owner_block().and_then(|b| b.parent_op())
    {
        // `p` is an entry of the block list, made the block's outer cell later.
        lp.set_attr(BLOCK_LIST, ctx.string_attr(&tree.name));
    }
    let bc = delinearize(e, p, &tree.outer.shape);
    let origin: Vec<Value> =
        bc.iter().zip(&block).map(|(&b, &n)| if n == 1 { b } else { e.bin("arith.muli", b, e.index(n)) }).collect();
    let mut cur = e;
    if tree.outer.kind.is_sparse() {
        cur = cur.guard(is_active(cur, &origin, &tree.outer.node));
    }
    let mut cell = origin.clone();
    if tree.is_dynamic() {
        // The list's cells: [0, length).
        let len = with_zeros(cur, &origin);
        let n = cur.at.build(
            OpBuilder::new(DsOp::Length.name(), loc).operands(&len).results(&[ctx.int(32)]).attr("field", ctx.symbol_ref(field)),
        );
        let n = cur.to_index(n.result(0));
        let (lo, one) = (cur.index(0), cur.index(1));
        let (_, body_block, y) = ops::build_scf_for(cur.at, lo, n, one, loc);
        let body = E { at: Cursor::before(y), loc };
        let lc = delinearize(body, body_block.arg(0), &block);
        cell = origin.iter().zip(lc).map(|(&o, l)| body.bin("arith.addi", o, l)).collect();
        cur = body;
    } else if tree.block_cells() > 1 {
        let (body, l) = cur.each(tree.block_cells());
        let lc = delinearize(body, l, &block);
        cell = origin.iter().zip(lc).map(|(&o, l)| body.bin("arith.addi", o, l)).collect();
        cur = body;
    }
    if let Some(inner) = tree.inner.as_ref().filter(|l| l.kind == LevelKind::Bitmasked) {
        cur = cur.guard(is_active(cur, &cell, &inner.node));
    }
    for &n in comp_dims {
        let (body, k) = cur.each(n);
        cell.push(k);
        cur = body;
    }
    // A sparse tree has a sparse level: `cur` is inside a test or a loop built here.
    let anchor = cur.at.anchor().expect("the body goes before a terminator built here");
    (cell, anchor)
}
