//! The memory of sparse fields: the one description of a sparse layout tree
//! that the lowering (`lowering/src/sparse.rs`) turns into address
//! computation and the runtime allocates, reads and writes on the host.
//!
//! A sparse tree is a chain of at most two layout nodes from the root: an
//! outer level (`ds.dense`, `ds.bitmasked` or `ds.pointer`) of `S0` cells,
//! each a block, and optionally an inner level (`ds.dense` or
//! `ds.bitmasked`) of `S1` cells per block, which holds the fields. The
//! fields placed on the leaf have the index shape `S0[d] * S1[d]` per axis
//! (Taichi's `ti.root.pointer(ti.ij, 8).dense(ti.ij, 16)`: a 128x128 field,
//! `i = block_i * 16 + local_i`), then their components. A tree is sparse
//! when one of its levels is a pointer or bitmasked node; a chain of dense
//! nodes is lowered by [`super::layout`] as before.
//!
//! Memory (each a 1-D buffer of its own, named `<tree>$<part>` or
//! `<field>$data`; `$` cannot occur in user names):
//! - `<field>$data`: `capacity * block_cells * components` elements per
//!   field, block after block, cell after cell within a block, components
//!   interleaved in a cell. For an outer dense or bitmasked level the
//!   capacity is `S0` cells and block `b` is outer cell `b`; for a pointer
//!   level it is the node's `capacity` attribute (default: every outer cell)
//!   and blocks come from a pool;
//! - `<tree>$mask0` (outer bitmasked), `<tree>$mask1` (inner bitmasked):
//!   one bit per outer cell / per pool cell (`block * block_cells + local`),
//!   32 to an i32 word, bit `c % 32` of word `c / 32`. Bits rather than one
//!   i32 per cell: 1/32 of the memory, and setting one is one atomic `ori`
//!   whose old value says whether it was set;
//! - `<tree>$len` (dynamic leaf): the length of each block's list (an i32
//!   per pool block): its cells `[0, len)` (row-major in the block) are
//!   active; an append takes the next, a write beyond extends it;
//! - `<tree>$table` (pointer): i32 per outer cell, 0 for none,
//!   [`TABLE_CLAIMED`] while a thread allocates it, `b + TABLE_FIRST_ID` for
//!   block `b` (so that an atomic unsigned max claims an empty entry only);
//! - `<tree>$free` (pointer): a stack of free block ids, `<tree>$counts[0]`
//!   its height. A kernel allocates by an atomic decrement of the height
//!   (a height at or below 0 is an exhausted pool: a run-time check);
//! - `<tree>$freed` (pointer): blocks released in a launch (deactivated),
//!   `<tree>$counts[1]` how many. Kernels only
//!   pop the free stack and only push the freed list; after each launch the
//!   runtime zeroes the freed blocks and pushes them back on the stack (the
//!   garbage-collection step), so no launch sees a block reused under it;
//! - `<tree>$list` (pointer): the allocated blocks, `<tree>$counts[2]` of
//!   them, in allocation order, and `<tree>$owner`: the outer cell each
//!   block was installed for. The thread installing a block writes its
//!   owner and appends it (an atomic increment of the count); the runtime's
//!   garbage-collection step drops the released ones (an entry is current
//!   while `table[owner[b]]` still names `b`). A `ds.struct_for` over a
//!   pointer tree runs over this list, not over every outer cell, so it
//!   costs O(allocated blocks).
//!
//! Invariant: the data of an inactive cell is 0 (blocks are zeroed before
//! reuse, bitmasked cells when deactivated), so a read needs no mask test;
//! a read through an inactive pointer gives 0 without touching the pool.

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
/// The attribute of a `ds.pointer` node giving its pool's size in blocks.
pub const CAPACITY_ATTR: &str = "capacity";

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
    /// The outer node's name; the hidden buffers are `<name>$...`.
    pub name: String,
    pub outer: Level,
    pub inner: Option<Level>,
    /// Blocks in the pool (pointer), else the outer cells.
    pub capacity: i64,
    /// The fields placed on the leaf, in declaration order, with their components per cell.
    pub fields: Vec<(String, i64)>,
}

fn size(shape: &[i64]) -> i64 {
    shape.iter().fold(1i64, |n, &d| n.saturating_mul(d))
}

impl SparseTree {
    pub fn rank(&self) -> usize {
        self.outer.shape.len()
    }
    pub fn outer_cells(&self) -> i64 {
        size(&self.outer.shape)
    }
    /// The cells of a block, per axis (ones without an inner level).
    pub fn block_shape(&self) -> Vec<i64> {
        self.inner.as_ref().map_or_else(|| vec![1; self.rank()], |l| l.shape.clone())
    }
    pub fn block_cells(&self) -> i64 {
        size(&self.block_shape())
    }
    /// The index shape of the fields' cells: outer times block extents.
    pub fn cell_shape(&self) -> Vec<i64> {
        self.outer.shape.iter().zip(self.block_shape()).map(|(a, b)| a.saturating_mul(b)).collect()
    }
    pub fn leaf(&self) -> &Level {
        self.inner.as_ref().unwrap_or(&self.outer)
    }
    pub fn is_pointer(&self) -> bool {
        self.outer.kind == LevelKind::Pointer
    }
    /// The level (0 outer, 1 inner) of node `node` in this tree.
    pub fn level_of(&self, node: &str) -> Option<usize> {
        if self.outer.node == node {
            Some(0)
        } else {
            self.inner.as_ref().filter(|l| l.node == node).map(|_| 1)
        }
    }
    /// The innermost sparse level: what `ds.deactivate` without `node` means.
    pub fn innermost_sparse(&self) -> usize {
        match &self.inner {
            Some(l) if l.kind.is_sparse() => 1,
            _ => 0,
        }
    }
    pub fn part(&self, part: &str) -> String {
        format!("{}{HIDDEN_SEP}{part}", self.name)
    }
    pub fn table(&self) -> String {
        self.part("table")
    }
    pub fn mask0(&self) -> String {
        self.part("mask0")
    }
    pub fn mask1(&self) -> String {
        self.part("mask1")
    }
    pub fn free(&self) -> String {
        self.part("free")
    }
    pub fn freed(&self) -> String {
        self.part("freed")
    }
    pub fn counts(&self) -> String {
        self.part("counts")
    }
    /// The allocated blocks (pointer), `counts[LISTED]` of them.
    pub fn list(&self) -> String {
        self.part("list")
    }
    /// The outer cell of each allocated block (pointer).
    pub fn owner(&self) -> String {
        self.part("owner")
    }
    pub fn has_mask0(&self) -> bool {
        self.outer.kind == LevelKind::Bitmasked
    }
    pub fn has_mask1(&self) -> bool {
        self.inner.as_ref().is_some_and(|l| l.kind == LevelKind::Bitmasked)
    }
    /// Whether the leaf is a dynamic node: a length per block (`<tree>$len`).
    pub fn is_dynamic(&self) -> bool {
        self.inner.as_ref().is_some_and(|l| l.kind == LevelKind::Dynamic)
    }
    pub fn len(&self) -> String {
        self.part("len")
    }
    /// Components per cell of field `field` of this tree.
    pub fn components(&self, field: &str) -> Option<i64> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, c)| *c)
    }
    /// The hidden buffers, structure first, then one data buffer per field.
    pub fn hidden(&self) -> Vec<Hidden> {
        let i32s = |name: String, elements: i64| Hidden { name, elem: HiddenElem::I32, elements: elements.max(1) };
        let words = |bits: i64| bits.saturating_add(31) / 32;
        let mut out = Vec::new();
        if self.is_pointer() {
            out.push(i32s(self.table(), self.outer_cells()));
            out.push(i32s(self.free(), self.capacity));
            out.push(i32s(self.freed(), self.capacity));
            out.push(i32s(self.counts(), 3));
            out.push(i32s(self.list(), self.capacity));
            out.push(i32s(self.owner(), self.capacity));
        }
        if self.has_mask0() {
            out.push(i32s(self.mask0(), words(self.outer_cells())));
        }
        if self.has_mask1() {
            out.push(i32s(self.mask1(), words(self.capacity.saturating_mul(self.block_cells()))));
        }
        if self.is_dynamic() {
            out.push(i32s(self.len(), self.capacity));
        }
        for (f, comps) in &self.fields {
            let elements = self.capacity.saturating_mul(self.block_cells()).saturating_mul(*comps);
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
/// to report) for a layout the lowering does not handle: more than two
/// levels, a pointer below another node, a dynamic node, or SoA order.
pub fn tree_of(node: &LayoutNode, nodes: &[LayoutNode], members: &[&FieldDecl]) -> Result<Option<SparseTree>, String> {
    let chain = path(node, nodes)?;
    if chain.iter().all(|n| n.kind == DsOp::Dense) {
        return Ok(None);
    }
    let level = |n: &LayoutNode| -> Result<Level, String> {
        let kind = LevelKind::of(n.kind).ok_or_else(|| format!("layout node @{}: not a layout node kind of sparse trees", n.name))?;
        Ok(Level { node: n.name.clone(), kind, shape: n.shape.clone().unwrap_or_default() })
    };
    let (outer, inner) = match chain.as_slice() {
        [o] => (level(o)?, None),
        [o, i] => (level(o)?, Some(level(i)?)),
        _ => {
            return Err(format!(
                "layout node @{}: sparse trees of more than two levels are not lowered yet ({} levels)",
                node.name,
                chain.len()
            ));
        }
    };
    if let Some(i) = &inner
        && i.kind == LevelKind::Pointer
    {
        return Err(format!("layout node @{}: a pointer node below another node is not lowered yet", i.node));
    }
    if outer.kind == LevelKind::Dynamic {
        return Err(format!(
            "layout node @{}: a dynamic node needs a parent whose cells hold its lists (a dense node of one cell for a single list)",
            outer.node
        ));
    }
    if chain.iter().any(|n| n.op.attr(super::layout::ORDER_ATTR).is_some_and(|o| o.as_string().as_deref() == Some("soa"))) {
        return Err(format!("layout node @{}: sparse trees store their cells interleaved (aos); soa is not lowered", node.name));
    }
    let outer_cells = size(&outer.shape);
    let root = chain[0];
    let capacity = match root.op.attr(CAPACITY_ATTR) {
        None => outer_cells,
        Some(_) if outer.kind != LevelKind::Pointer => {
            return Err(format!("layout node @{}: only pointer nodes take a capacity", root.name));
        }
        Some(a) => match a.as_int() {
            Some(c) if c > 0 && c <= outer_cells => c,
            _ => {
                return Err(format!(
                    "layout node @{}: capacity must be an integer from 1 to its {outer_cells} cells, got {a}",
                    root.name
                ));
            }
        },
    };
    let cells = cell_shape(node, nodes)?;
    let fields = members.iter().map(|f| (f.name.clone(), size(f.shape.get(cells.len()..).unwrap_or_default()))).collect();
    Ok(Some(SparseTree { name: root.name.clone(), outer, inner, capacity, fields }))
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
