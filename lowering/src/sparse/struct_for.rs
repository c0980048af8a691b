//! `ds.struct_for` over a sparse field (see the [parent module](super)):
//! the iteration range ([`struct_for_range`]), the cells under one
//! iteration ([`struct_for_block`], called by `ds-lower-parallel-cpu` and
//! `convert-ds-to-scf`), and the block list a tree with pointers runs over
//! ([`BLOCK_LIST`], [`resolve_block_lists`]).

use super::{E, FIRST_ID, TreeArgs, active_walk, cell_id, locals};
use ds_dialects::ir::{Cursor, Loc, Op, OpBuilder, Value};
use ds_dialects::ops::sparse::{LISTED, LevelKind, SparseTree};
use ds_dialects::ops::{self, CmpI, DsOp};

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

/// The level a `ds.struct_for` over `tree` is parallel over: the deepest
/// pointer's blocks (its list), else the root level's cells.
fn struct_for_level(tree: &SparseTree) -> usize {
    tree.deepest_pointer().unwrap_or(0)
}

/// The iterations of a `ds.struct_for` over a field of `tree`: the root
/// level's cells, or for a tree with pointers the entries the deepest
/// pointer's block list can hold (the CPU runtime runs only the listed
/// ones, [`BLOCK_LIST`]).
pub fn struct_for_range(tree: &SparseTree) -> i64 {
    match tree.deepest_pointer() {
        Some(j) => tree.levels[j].capacity,
        None => tree.levels[0].cells(),
    }
}

/// On the `scf.for` of a `ds.struct_for` over a tree with pointers, and on
/// the task holding it: the tree's name. The loop's variable is an entry of
/// the deepest pointer's list of allocated blocks (`<tree>$list<j>`), not a
/// cell; `convert-ds-to-scf` ([`resolve_block_lists`]) turns it into the
/// block's owner and skips entries past the list's length or released
/// (whose owner's path no longer ends in the block). The runtime runs such
/// a task over `[0, listed blocks)`: O(allocated blocks), not O(cells).
pub const BLOCK_LIST: &str = "ds.block_list";

/// For each loop of `func` marked [`BLOCK_LIST`]: the list entry `k` it
/// runs becomes the owner (the cell's linear index through the deepest
/// pointer level `j`) of the `k`-th allocated block `b`, and its body runs
/// only when `k < counts<j>[LISTED]` and the path to that cell (pointers
/// followed, bits tested) still ends in `b` (a released block stays listed
/// until the launch ends). Marks `func` with the tree's name too.
pub fn resolve_block_lists(func: Op, trees: &[TreeArgs]) {
    let loops: Vec<Op> = func.walk().into_iter().filter(|o| o.name() == "scf.for" && o.attr(BLOCK_LIST).is_some()).collect();
    for lp in loops {
        let name = lp.attr(BLOCK_LIST).and_then(|a| a.as_string()).unwrap_or_default();
        let Some(t) = trees.iter().find(|t| t.tree.name == name) else { continue };
        let Some(j) = t.tree.deepest_pointer() else { continue };
        func.set_attr(BLOCK_LIST, lp.ctx().string_attr(&name));
        let body = lp.region(0).first_block().expect("loop body");
        let k = body.arg(0);
        let old: Vec<Op> = body.ops().into_iter().filter(|o| o.name() != "scf.yield").collect();
        let first = body.first_op().expect("a loop body ends in its terminator");
        let e = E { at: Cursor::before(first), loc: lp.loc() };
        let i32t = e.loc.ctx().int(32);
        let n = e.load(t.buf(&t.tree.counts(j)), e.index(LISTED as i64), i32t);
        let listed = e.guard(e.cmp(CmpI::Slt, e.cast(k, i32t), n));
        let b = listed.load(t.buf(&t.tree.list(j)), k, i32t);
        let owner = listed.to_index(listed.load(t.buf(&t.tree.owner(j)), listed.to_index(b), i32t));
        let at = delinearize(listed, owner, &t.tree.through(j));
        let locs = locals(listed, t.tree, &at, j);
        let (path, kj) = active_walk(listed, t, &locs, j, true);
        let cell = cell_id(path, t.tree, j, kj, locs[j]);
        let entry = path.load(t.buf(&t.tree.table(j)), cell, i32t);
        let current = path.guard(path.cmp(CmpI::Eq, entry, path.bin("arith.addi", b, path.i32(FIRST_ID))));
        let end = current.at.anchor().expect("a guard's terminator");
        let map: ds_dialects::ir::ValueMap = [(k, owner)].into_iter().collect();
        for op in old {
            op.move_before(end);
            ds_dialects::ir::remap_operands(op, &map);
        }
    }
}

/// The active cells under one cell `p` of the level a `ds.struct_for` over
/// `tree` is parallel over ([`struct_for_range`]: the linear index of a
/// root cell, or for a tree with pointers the entry of the deepest
/// pointer's block list: `p` is then the variable of the enclosing
/// `scf.for`, which this marks [`BLOCK_LIST`]), for a `ds.struct_for` over
/// `field` binding the dimensions `field_shape` (all of the field's, or its
/// cell dimensions only), emitted at `at`: a test of the cell, loops over
/// the cells of each level below it (a list's `[0, length)`; the first,
/// when its bound is a constant, marked [`crate::abi::CELL_LOOP`]), a test of
/// each cell of a bitmasked level, and loops over the field's component
/// dimensions. Returns the field's indices and the op before which the
/// body goes.
pub fn struct_for_block(at: Cursor, p: Value, tree: &SparseTree, field: &str, field_rank: usize, field_shape: &[i64], loc: Loc) -> (Vec<Value>, Op) {
    let ctx = loc.ctx();
    let e = E { at, loc };
    let rank = tree.rank();
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
    let top = struct_for_level(tree);
    if tree.has_pointer()
        && let Some(lp) = p.owner_block().and_then(|b| b.parent_op())
    {
        // `p` is an entry of the block list, made the block's owner later.
        lp.set_attr(BLOCK_LIST, ctx.string_attr(&tree.name));
    }
    let below = tree.below(top);
    let coord = delinearize(e, p, &tree.through(top));
    let mut cell: Vec<Value> = coord.iter().zip(&below).map(|(&c, &n)| if n == 1 { c } else { e.bin("arith.muli", c, e.index(n)) }).collect();
    let mut cur = e;
    if tree.levels[top].kind.is_sparse() {
        cur = cur.guard(is_active(cur, &cell, &tree.levels[top].node));
    }
    let mut first_loop = true;
    for m in top + 1..tree.depth() {
        let level = &tree.levels[m];
        let bm = tree.below(m);
        let n = if level.kind == LevelKind::Dynamic {
            // The list's cells: [0, length).
            let len = with_zeros(cur, &cell);
            let n = cur.at.build(
                OpBuilder::new(DsOp::Length.name(), loc).operands(&len).results(&[ctx.int(32)]).attr("field", ctx.symbol_ref(field)),
            );
            cur.to_index(n.result(0))
        } else if level.cells() > 1 {
            cur.index(level.cells())
        } else {
            continue;
        };
        let (lo, one) = (cur.index(0), cur.index(1));
        let (cell_loop, body_block, y) = ops::build_scf_for(cur.at, lo, n, one, loc);
        if first_loop && level.kind != LevelKind::Dynamic {
            cell_loop.set_attr(crate::abi::CELL_LOOP, ctx.unit_attr());
        }
        first_loop = false;
        let body = E { at: Cursor::before(y), loc };
        let lc = delinearize(body, body_block.arg(0), &level.shape);
        cell = cell
            .iter()
            .zip(lc)
            .zip(&bm)
            .map(|((&o, l), &b)| body.bin("arith.addi", o, if b == 1 { l } else { body.bin("arith.muli", l, body.index(b)) }))
            .collect();
        cur = body;
        if level.kind == LevelKind::Bitmasked {
            cur = cur.guard(is_active(cur, &cell, &level.node));
        }
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
