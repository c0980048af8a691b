//! The memory of sparse fields: the one description of a sparse layout tree
//! that the lowering (`lowering/src/sparse/`) turns into address
//! computation and the runtime allocates, reads and writes on the host.
//!
//! A sparse tree is a chain of layout nodes from the root, nested in any
//! order Taichi allows (`pointer.pointer.dense`, `dense.pointer.dense`,
//! `pointer.bitmasked`, `bitmasked.dense`, ... ; a dynamic node only as the
//! leaf, under a parent), whose leaf holds the fields. Level `i` (0 the
//! root's child) has `n_i` cells (its `shape`, per axis) in each of its
//! `K_i` containers: `K_0 = 1`, and the containers of level `i + 1` are the
//! cells of level `i` (`K_{i+1} = K_i * n_i`) unless level `i` is a pointer,
//! whose cells point to containers from a pool of `capacity_i` blocks
//! (`K_{i+1} = capacity_i`). Cell `l` of container `k` is cell
//! `c = k * n_i + l` of its level. The fields placed on the leaf have the
//! index shape `prod_i shape_i[d]` per axis (Taichi's
//! `ti.root.pointer(ti.ij, 8).dense(ti.ij, 16)`: a 128x128 field,
//! `i = block_i * 16 + local_i`), then their components; their data has
//! one slot per cell of the last level (`slots = K_L` for `L` levels, the
//! leaf's cells). A tree is sparse when a level is a pointer, bitmasked or
//! dynamic node; a chain of dense nodes is lowered by [`super::layout`].
//!
//! Memory (each a 1-D buffer of its own, named `<tree>$<part><level>` or
//! `<field>$data`; `$` cannot occur in user names):
//! - `<field>$data`: `slots * components` elements per field, slot after
//!   slot, components interleaved in a slot;
//! - `<tree>$mask<i>` (bitmasked level `i`): one bit per cell of the level,
//!   32 to an i32 word, bit `c % 32` of word `c / 32`. Bits rather than one
//!   i32 per cell: 1/32 of the memory, and setting one is one atomic `ori`
//!   whose old value says whether it was set;
//! - `<tree>$len<i>` (dynamic leaf `i`): the length of each container's list
//!   (an i32 per container): its cells `[0, len)` (row-major in the
//!   container) are active; an append takes the next, a write beyond extends
//!   it. A dynamic node with a `chunk` size grows in chunks: its data slots
//!   are `capacity` chunks of `chunk` cells from a pool (`<tree>$table<i>`,
//!   an entry per chunk of each list, and `free`, `freed`, `counts` as a
//!   pointer's), a chunk taken when a list first reaches it; cell `l` of a
//!   list is cell `l % chunk` of its chunk `l / chunk`;
//! - `<tree>$table<i>` (pointer level `i`): i32 per cell, 0 for none,
//!   [`TABLE_CLAIMED`] while a thread allocates it, `b + TABLE_FIRST_ID` for
//!   block `b` (so that an atomic unsigned max claims an empty entry only);
//! - `<tree>$free<i>` (pointer): a stack of free block ids,
//!   `<tree>$counts<i>[FREE_TOP]` its height. A kernel allocates by an atomic
//!   decrement of the height (a height at or below 0 is an exhausted pool: a
//!   run-time check);
//! - `<tree>$freed<i>` (pointer): blocks released in a launch (deactivated),
//!   `<tree>$counts<i>[FREED]` how many. Kernels only pop the free stack and
//!   only push the freed list; after each launch the runtime zeroes the
//!   freed blocks' subtrees (releasing the blocks of pointers inside them)
//!   and pushes them back on the stack (the garbage-collection step), so no
//!   launch sees a block reused under it;
//! - `<tree>$list<i>` (pointer): the allocated blocks,
//!   `<tree>$counts<i>[LISTED]` of them, in allocation order, and
//!   `<tree>$owner<i>`: for each block, the linear index of the cell it was
//!   installed for, in the index space of the level's cells (its
//!   coordinates through this level, row-major). The thread installing a
//!   block writes its owner and appends it (an atomic increment of the
//!   count); the garbage-collection step drops the released ones (an entry
//!   is current while the path to its owner still ends in its block). A
//!   `ds.struct_for` over a tree with pointers runs over the list of its
//!   deepest pointer, not over every cell, so it costs O(allocated blocks).
//!
//! Invariant: the data, masks and lengths under an inactive cell are 0
//! (blocks are zeroed before reuse, a bitmasked cell's subtree when it is
//! deactivated, which also releases the blocks of pointers inside it), so
//! a read needs no mask test; a read through an inactive pointer gives 0
//! without touching the pool.

use super::catalogue::DsOp;
use super::views::{FieldDecl, LayoutNode};

/// The separator of hidden buffer names (not allowed in user symbols).
pub const HIDDEN_SEP: char = '$';
/// A pointer table entry some thread is allocating a block for.
pub const TABLE_CLAIMED: i32 = 1;
/// The table entry of block `b` is `b + TABLE_FIRST_ID`.
pub const TABLE_FIRST_ID: i32 = 2;
/// `<tree>$counts[FREE_TOP]`: the height of the free stack.
pub const FREE_TOP: usize = 0;
/// `<tree>$counts[FREED]`: the blocks released in the current launch.
pub const FREED: usize = 1;
/// `<tree>$counts[LISTED]`: the entries of `<tree>$list`.
pub const LISTED: usize = 2;
/// The attribute of a `ds.pointer` node giving its pool's size in blocks
/// (of a chunked `ds.dynamic` node: in chunks).
pub const CAPACITY_ATTR: &str = "capacity";
/// The attribute of a `ds.dynamic` node giving the cells of the chunks its
/// lists grow by (Taichi's `chunk_size`); without it a list's cells are
/// reserved whole.
pub const CHUNK_ATTR: &str = "chunk";

/// The kind of one level of a sparse tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LevelKind {
    Dense,
    Bitmasked,
    Pointer,
    /// A list per block: its cells `[0, length)` are active, in order.
    Dynamic,
}

impl LevelKind {
    pub fn of(op: DsOp) -> Option<LevelKind> {
        match op {
            DsOp::Dense => Some(LevelKind::Dense),
            DsOp::Bitmasked => Some(LevelKind::Bitmasked),
            DsOp::Pointer => Some(LevelKind::Pointer),
            DsOp::Dynamic => Some(LevelKind::Dynamic),
            _ => None,
        }
    }
    pub fn is_sparse(self) -> bool {
        self != LevelKind::Dense
    }
}

/// One level of a tree: its node, kind and cell shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    pub node: String,
    pub kind: LevelKind,
    pub shape: Vec<i64>,
    /// A pointer level: the blocks its pool holds (its `capacity`
    /// attribute, default: one per cell of the level); a chunked dynamic
    /// level: the chunks its pool holds (default: every chunk of every
    /// list). 0 for others.
    pub capacity: i64,
    /// A dynamic level growing in chunks: the cells of a chunk (0: unchunked).
    pub chunk: i64,
}

impl Level {
    /// Cells per container.
    pub fn cells(&self) -> i64 {
        size(&self.shape)
    }
    /// Whether the level's containers come from a pool (a pointer's blocks,
    /// a chunked list's chunks): it has a table, a free stack and a freed list.
    pub fn pooled(&self) -> bool {
        self.kind == LevelKind::Pointer || self.chunk > 0
    }
    /// Chunks per list of a chunked dynamic level.
    pub fn chunks_per_list(&self) -> i64 {
        if self.chunk > 0 { self.cells() / self.chunk } else { 0 }
    }
}

/// What a hidden buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HiddenElem {
    /// Masks, tables, stacks, counters.
    I32,
    /// The data of this (declared) field: its element type.
    DataOf(String),
}

/// A buffer of a sparse tree that no declaration names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden {
    pub name: String,
    pub elem: HiddenElem,
    pub elements: i64,
}

/// One sparse layout tree and the fields on its leaf (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseTree {
    /// The root node's name; the hidden buffers are `<name>$...`.
    pub name: String,
    /// Outermost first; the last holds the fields.
    pub levels: Vec<Level>,
    /// The fields placed on the leaf, in declaration order, with their components per cell.
    pub fields: Vec<(String, i64)>,
}

fn size(shape: &[i64]) -> i64 {
    shape.iter().fold(1i64, |n, &d| n.saturating_mul(d))
}

impl SparseTree {
    pub fn rank(&self) -> usize {
        self.levels[0].shape.len()
    }
    pub fn depth(&self) -> usize {
        self.levels.len()
    }
    pub fn leaf(&self) -> &Level {
        self.levels.last().expect("a tree has a level")
    }
    /// `K_i`: the containers of level `i` (`i == depth()`: the data slots).
    pub fn containers(&self, i: usize) -> i64 {
        let mut k = 1i64;
        for l in &self.levels[..i] {
            k = match l.kind {
                LevelKind::Pointer => l.capacity,
                LevelKind::Dynamic if l.chunk > 0 => l.capacity.saturating_mul(l.chunk),
                _ => k.saturating_mul(l.cells()),
            };
        }
        k
    }
    /// The cells of level `i`, over all its containers.
    pub fn level_cells(&self, i: usize) -> i64 {
        self.containers(i).saturating_mul(self.levels[i].cells())
    }
    /// The data slots (one per cell of the last level).
    pub fn slots(&self) -> i64 {
        self.containers(self.depth())
    }
    /// Per axis, the extent of levels `[from, to)` together.
    pub fn extent(&self, from: usize, to: usize) -> Vec<i64> {
        (0..self.rank()).map(|d| self.levels[from..to].iter().map(|l| l.shape[d]).product()).collect()
    }
    /// Per axis, the extent of everything below level `i` (the cells of a
    /// level-`i` cell): a cell index over `below(i)` gives the level's coordinate.
    pub fn below(&self, i: usize) -> Vec<i64> {
        self.extent(i + 1, self.depth())
    }
    /// The index shape of level `i`'s cells: the levels through `i`.
    pub fn through(&self, i: usize) -> Vec<i64> {
        self.extent(0, i + 1)
    }
    /// The index shape of the fields' cells.
    pub fn cell_shape(&self) -> Vec<i64> {
        self.extent(0, self.depth())
    }
    /// The leaf slots under one container of level `i`.
    pub fn slots_under(&self, i: usize) -> i64 {
        size(&self.extent(i, self.depth()))
    }
    pub fn has_pointer(&self) -> bool {
        self.levels.iter().any(|l| l.kind == LevelKind::Pointer)
    }
    /// Whether a write may take a block or chunk from a pool (and so fail).
    pub fn allocates(&self) -> bool {
        self.levels.iter().any(Level::pooled)
    }
    /// The chunked dynamic leaf, if the leaf is one.
    pub fn chunked(&self) -> Option<&Level> {
        Some(self.leaf()).filter(|l| l.chunk > 0)
    }
    /// The deepest pointer level: a `ds.struct_for` runs over its blocks.
    pub fn deepest_pointer(&self) -> Option<usize> {
        self.levels.iter().rposition(|l| l.kind == LevelKind::Pointer)
    }
    /// The level of node `node` in this tree.
    pub fn level_of(&self, node: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.node == node)
    }
    /// The innermost sparse level: what `ds.deactivate` without `node` means.
    pub fn innermost_sparse(&self) -> usize {
        self.levels.iter().rposition(|l| l.kind.is_sparse()).unwrap_or(0)
    }
    /// Whether the leaf is a dynamic node: a length per container (`<tree>$len<i>`).
    pub fn is_dynamic(&self) -> bool {
        self.leaf().kind == LevelKind::Dynamic
    }
    pub fn part(&self, part: &str, level: usize) -> String {
        format!("{}{HIDDEN_SEP}{part}{level}", self.name)
    }
    pub fn table(&self, i: usize) -> String {
        self.part("table", i)
    }
    pub fn mask(&self, i: usize) -> String {
        self.part("mask", i)
    }
    pub fn free(&self, i: usize) -> String {
        self.part("free", i)
    }
    pub fn freed(&self, i: usize) -> String {
        self.part("freed", i)
    }
    pub fn counts(&self, i: usize) -> String {
        self.part("counts", i)
    }
    /// The allocated blocks of pointer level `i`, `counts[LISTED]` of them.
    pub fn list(&self, i: usize) -> String {
        self.part("list", i)
    }
    /// The cell (linear index through level `i`) each allocated block is for.
    pub fn owner(&self, i: usize) -> String {
        self.part("owner", i)
    }
    pub fn len(&self, i: usize) -> String {
        self.part("len", i)
    }
    /// Components per cell of field `field` of this tree.
    pub fn components(&self, field: &str) -> Option<i64> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, c)| *c)
    }
    /// The hidden buffers, structure first (level by level), then one data buffer per field.
    pub fn hidden(&self) -> Vec<Hidden> {
        let i32s = |name: String, elements: i64| Hidden { name, elem: HiddenElem::I32, elements: elements.max(1) };
        let words = |bits: i64| bits.saturating_add(31) / 32;
        let mut out = Vec::new();
        for (i, l) in self.levels.iter().enumerate() {
            match l.kind {
                LevelKind::Pointer => {
                    out.push(i32s(self.table(i), self.level_cells(i)));
                    out.push(i32s(self.free(i), l.capacity));
                    out.push(i32s(self.freed(i), l.capacity));
                    out.push(i32s(self.counts(i), 3));
                    out.push(i32s(self.list(i), l.capacity));
                    out.push(i32s(self.owner(i), l.capacity));
                }
                LevelKind::Bitmasked => out.push(i32s(self.mask(i), words(self.level_cells(i)))),
                LevelKind::Dynamic => {
                    out.push(i32s(self.len(i), self.containers(i)));
                    if l.chunk > 0 {
                        // The chunks of each list: a table entry per chunk, and their pool.
                        out.push(i32s(self.table(i), self.containers(i).saturating_mul(l.chunks_per_list())));
                        out.push(i32s(self.free(i), l.capacity));
                        out.push(i32s(self.freed(i), l.capacity));
                        out.push(i32s(self.counts(i), 3));
                    }
                }
                LevelKind::Dense => {}
            }
        }
        for (f, comps) in &self.fields {
            let elements = self.slots().saturating_mul(*comps);
            out.push(Hidden { name: data(f), elem: HiddenElem::DataOf(f.clone()), elements: elements.max(1) });
        }
        out
    }
    /// The hidden buffers an access of `field` needs (all fields' data for
    /// a deactivation, which zeroes every field of the cell).
    pub fn needed_by(&self, field: &str, all_fields: bool) -> Vec<String> {
        self.hidden()
            .into_iter()
            .filter(|h| match &h.elem {
                HiddenElem::I32 => true,
                HiddenElem::DataOf(f) => all_fields || f == field,
            })
            .map(|h| h.name)
            .collect()
    }
}

/// The name of field `field`'s data buffer.
pub fn data(field: &str) -> String {
    format!("{field}{HIDDEN_SEP}data")
}

/// Whether `name` is a hidden buffer's (a sparse tree's part or data).
pub fn is_hidden(name: &str) -> bool {
    name.contains(HIDDEN_SEP)
}

/// The path from the root to `node` (outermost first), or an error naming
/// the broken rule: a missing parent or a cycle.
pub fn path<'a>(node: &'a LayoutNode, nodes: &'a [LayoutNode]) -> Result<Vec<&'a LayoutNode>, String> {
    let mut out = vec![node];
    let mut cur = node;
    while let Some(p) = &cur.parent {
        let Some(parent) = nodes.iter().find(|n| &n.name == p) else {
            return Err(format!("layout node @{}: its parent @{p} is not a layout node of this module", cur.name));
        };
        if out.iter().any(|n| n.name == parent.name) {
            return Err(format!("layout node @{}: its parents form a cycle", node.name));
        }
        out.push(parent);
        cur = parent;
    }
    out.reverse();
    Ok(out)
}

/// The index shape of the cells of `node`: the product of the extents along
/// its path, axis by axis (every node of the path has the same rank).
pub fn cell_shape(node: &LayoutNode, nodes: &[LayoutNode]) -> Result<Vec<i64>, String> {
    let chain = path(node, nodes)?;
    let mut shape: Option<Vec<i64>> = None;
    for n in chain {
        let s = n.shape.clone().unwrap_or_default();
        shape = Some(match shape {
            None => s,
            Some(prev) if prev.len() == s.len() => prev.iter().zip(&s).map(|(a, b)| a.saturating_mul(*b)).collect(),
            Some(prev) => {
                return Err(format!(
                    "layout node @{}: {} axes under a parent of {}: nested nodes split the same axes",
                    n.name,
                    s.len(),
                    prev.len()
                ));
            }
        });
    }
    Ok(shape.unwrap_or_default())
}

/// The sparse tree holding `node`'s fields, when its path has a sparse
/// node; `Ok(None)` for a chain of dense nodes. An error (for the lowering
/// to report, at the field's declaration) for a layout the lowering does
/// not handle: a dynamic node at the root or with nodes below it, a
/// capacity on a node other than a pointer or out of range, or SoA order.
pub fn tree_of(node: &LayoutNode, nodes: &[LayoutNode], members: &[&FieldDecl]) -> Result<Option<SparseTree>, String> {
    let chain = path(node, nodes)?;
    if chain.iter().all(|n| n.kind == DsOp::Dense) {
        return Ok(None);
    }
    let mut levels: Vec<Level> = Vec::new();
    let mut containers = 1i64;
    for (i, n) in chain.iter().enumerate() {
        let kind = LevelKind::of(n.kind).ok_or_else(|| format!("layout node @{}: not a layout node kind of sparse trees", n.name))?;
        let shape = n.shape.clone().unwrap_or_default();
        let cells = containers.saturating_mul(size(&shape));
        if kind == LevelKind::Dynamic && i == 0 {
            return Err(format!(
                "layout node @{}: a dynamic node needs a parent whose cells hold its lists (a dense node of one cell for a single list)",
                n.name
            ));
        }
        if kind == LevelKind::Dynamic && i + 1 < chain.len() {
            return Err(format!("layout node @{}: a dynamic node is a leaf: nodes under it (@{}) are not lowered", n.name, chain[i + 1].name));
        }
        let chunk = match n.op.attr(CHUNK_ATTR) {
            None => 0,
            Some(_) if kind != LevelKind::Dynamic => {
                return Err(format!("layout node @{}: only dynamic nodes take a chunk size", n.name));
            }
            Some(a) => match a.as_int() {
                Some(c) if c > 0 && size(&shape) % c == 0 => c,
                _ => {
                    return Err(format!(
                        "layout node @{}: chunk must be a positive integer dividing the list's {} cells, got {a}",
                        n.name,
                        size(&shape)
                    ));
                }
            },
        };
        // What a pool can hold: a pointer's blocks (one per cell), or every chunk of every list.
        let (poolable, unit) = match kind {
            LevelKind::Pointer => (cells, "cells"),
            LevelKind::Dynamic if chunk > 0 => (cells / chunk, "chunks"),
            _ => (0, ""),
        };
        let capacity = match n.op.attr(CAPACITY_ATTR) {
            None => poolable,
            Some(_) if poolable == 0 => {
                return Err(format!("layout node @{}: only pointer nodes (and dynamic nodes with a chunk size) take a capacity", n.name));
            }
            Some(a) => match a.as_int() {
                Some(c) if c > 0 && c <= poolable => c,
                _ => {
                    return Err(format!("layout node @{}: capacity must be an integer from 1 to its {poolable} {unit}, got {a}", n.name));
                }
            },
        };
        containers = if kind == LevelKind::Pointer { capacity } else { cells };
        levels.push(Level { node: n.name.clone(), kind, shape, capacity, chunk });
    }
    if chain.iter().any(|n| n.op.attr(super::layout::ORDER_ATTR).is_some_and(|o| o.as_string().as_deref() == Some("soa"))) {
        return Err(format!("layout node @{}: sparse trees store their cells interleaved (aos); soa is not lowered", node.name));
    }
    let cells = cell_shape(node, nodes)?;
    let fields = members.iter().map(|f| (f.name.clone(), size(f.shape.get(cells.len()..).unwrap_or_default()))).collect();
    Ok(Some(SparseTree { name: chain[0].name.clone(), levels, fields }))
}

/// Every sparse tree of a module: the trees of the nodes holding fields.
/// Errors as [`tree_of`], with the op to blame.
pub fn trees(nodes: &[LayoutNode], fields: &[FieldDecl]) -> Result<Vec<SparseTree>, (crate::ir::Op, String)> {
    let mut out: Vec<SparseTree> = Vec::new();
    for node in nodes {
        let members = super::layout::members(&node.name, fields);
        let Some(first) = members.first() else { continue };
        if let Some(t) = tree_of(node, nodes, &members).map_err(|e| (first.op, format!("field @{}: {e}", first.name)))? {
            if out.iter().any(|o| o.name == t.name) {
                return Err((first.op, format!("field @{}: two leaves under @{}: a sparse tree holds its fields on one leaf", first.name, t.name)));
            }
            out.push(t);
        }
    }
    Ok(out)
}

/// The tree holding field `field`, if it is sparse.
pub fn tree_holding<'a>(trees: &'a [SparseTree], field: &str) -> Option<&'a SparseTree> {
    trees.iter().find(|t| t.components(field).is_some())
}

/// The number of cell dimensions of `field`: those of its layout node's
/// cells (a `ds.struct_for` binding only these visits cells, not
/// components), else all of its dimensions.
pub fn cell_rank(field: &FieldDecl, nodes: &[LayoutNode]) -> usize {
    field
        .layout
        .as_ref()
        .and_then(|l| nodes.iter().find(|n| &n.name == l))
        .and_then(|n| cell_shape(n, nodes).ok())
        .map_or(field.rank(), |c| c.len().min(field.rank()))
}

/// Whether `field` is placed under a pointer or bitmasked node (on its path).
pub fn is_sparse(field: &FieldDecl, nodes: &[LayoutNode]) -> bool {
    field
        .layout
        .as_ref()
        .and_then(|l| nodes.iter().find(|n| &n.name == l))
        .and_then(|n| path(n, nodes).ok())
        .is_some_and(|p| p.iter().any(|n| matches!(n.kind, DsOp::Pointer | DsOp::Bitmasked | DsOp::Dynamic)))
}

/// A deactivation racing a write in one parallel loop (see [`deactivation_races`]).
#[derive(Clone, Debug)]
pub struct Race {
    /// The `ds.deactivate`.
    pub deactivate: crate::ir::Op,
    /// The write of a field of the same tree in the same loop.
    pub write: crate::ir::Op,
    pub message: String,
}

/// The deactivations of `kernel` that race a write of the same tree in the
/// same top-level parallel loop: another iteration may write (and so
/// activate) a cell under the cell being deactivated while it is cleared, and
/// the write is lost (its block released, its bit cleared after it was set).
/// A deactivation and a write are apart when in every iteration they touch
/// the iteration's own cell and the deactivated node's cell is that one cell
/// (a bitmasked leaf, deactivated at the leaf): in a `ds.parallel_for`, one
/// dimension indexed by the loop variable plus the same constant, with no
/// level below the node along it; in a `ds.struct_for`, every cell
/// dimension indexed by its own variable plus the same constant, with no
/// level below the node. Deactivating in one loop and writing in a later
/// loop of the kernel is well defined: the loops run one after another
/// (Taichi's offloaded tasks), and a write after a deactivation of its cell
/// lands in a fresh, zeroed cell. Adjoint fields' writes never activate and
/// are not counted, nor loops of one iteration.
pub fn deactivation_races(kernel: crate::ir::Op, trees: &[SparseTree], fields: &[FieldDecl]) -> Vec<Race> {
    use super::{Access, AccessKind, func_body, index_offset};
    let adjoints: Vec<&str> = fields.iter().filter_map(|f| f.grad.as_deref()).collect();
    let mut out = Vec::new();
    for lp in func_body(kernel).ops() {
        let kind = DsOp::of(lp);
        if !matches!(kind, Some(DsOp::ParallelFor | DsOp::StructFor)) {
            continue;
        }
        let Some(body) = lp.region(0).first_block() else { continue };
        if let Some(pf) = super::ParallelFor::read(lp) {
            // One iteration (Taichi's `for t in range(1)`): nothing to race.
            let constant = |v: crate::ir::Value| match index_offset(v) {
                (None, c) => Some(c),
                _ => None,
            };
            if let (Some(lo), Some(hi)) = (constant(pf.lower), constant(pf.upper))
                && hi - lo <= 1
            {
                continue;
            }
        }
        let vars = body.args();
        let accesses: Vec<Access> = lp.walk().into_iter().filter_map(Access::read).collect();
        for d in accesses.iter().filter(|a| a.kind == AccessKind::Deactivate) {
            let Some(tree) = tree_holding(trees, &d.field) else { continue };
            let lvl = d.node().and_then(|n| tree.level_of(&n)).unwrap_or_else(|| tree.innermost_sparse());
            // The cells a deactivation clears: those under the node's cell, or a list's whole container.
            let unit = if tree.levels[lvl].kind == LevelKind::Dynamic { lvl.saturating_sub(1) } else { lvl };
            let below = tree.below(unit);
            let rank = tree.rank();
            // Dimension `k` of both indexed by `var` plus one constant.
            let same = |a: &[crate::ir::Value], b: &[crate::ir::Value], k: usize, var: crate::ir::Value| {
                let (x, y) = (a.get(k).map(|v| index_offset(*v)), b.get(k).map(|v| index_offset(*v)));
                x.is_some() && x == y && x.is_some_and(|(base, _)| base == Some(var))
            };
            let apart = |w: &Access| match kind {
                Some(DsOp::ParallelFor) => vars.first().is_some_and(|&v| (0..rank).any(|k| below[k] == 1 && same(&d.indices, &w.indices, k, v))),
                _ => below.iter().all(|&b| b == 1) && vars.len() >= rank && (0..rank).all(|k| same(&d.indices, &w.indices, k, vars[k])),
            };
            let racing = accesses.iter().find(|w| {
                let activates = w.kind.writes() && w.kind != AccessKind::Deactivate;
                activates && tree.components(&w.field).is_some() && !adjoints.contains(&w.field.as_str()) && !apart(w)
            });
            if let Some(w) = racing {
                let at = w.op.loc().file_line_col().map(|l| format!(" (line {})", l.line)).unwrap_or_default();
                out.push(Race {
                    deactivate: d.op,
                    write: w.op,
                    message: format!(
                        "{} of @{} at node @{} races {} of @{}{at} in the same parallel loop: another iteration's write under the deactivated cell may be lost; deactivate in a loop of its own (a kernel's loops run one after another) or write only the iteration's own cell of a bitmasked leaf",
                        DsOp::Deactivate.name(),
                        d.field,
                        tree.levels[lvl].node,
                        w.op.name(),
                        w.field
                    ),
                });
            }
        }
    }
    out
}
