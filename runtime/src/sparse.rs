//! The host side of sparse fields: the buffers of one sparse tree
//! (`ds_dialects::ops::sparse` describes them, `ds_lowering::sparse` reads
//! and writes them in kernels), element access through the tree (an
//! inactive cell reads 0; a write to one activates it down the chain,
//! allocating blocks from the pools), the garbage-collection step after each
//! launch (freed blocks' subtrees cleared, blocks returned to their pools,
//! the lists of allocated blocks compacted), deactivation of everything,
//! memory statistics and the list of active cells, for trees of any depth.
//!
//! Host operations on one tree are serialized by its lock; they run between
//! launches (a launch needs `&mut Program`).

use crate::error::Error;
use crate::field::ElemType;
use crate::native::AlignedBuf;
use ds_dialects::ops::sparse::{FREE_TOP, FREED, LISTED, LevelKind, SparseTree, TABLE_FIRST_ID};
use std::sync::{Arc, Mutex};

/// Memory and occupancy of one sparse field (its tree, and its own data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseStats {
    /// Blocks holding cells: allocated from the deepest pointer's pool, or
    /// (a tree without pointers) the root level's active cells (bitmasked)
    /// or all of them (dense).
    pub blocks: usize,
    /// Blocks the tree can hold (that pool's capacity, or the root level's cells).
    pub capacity: usize,
    /// A leaf list growing in chunks: the chunks taken from its pool, and
    /// the pool's size (both 0 for other leaves).
    pub chunks: usize,
    pub chunk_capacity: usize,
    /// Active cells.
    pub active_cells: usize,
    /// Cells of the field's index space.
    pub cells: usize,
    /// Bytes allocated for the field: its data buffer plus its share (all
    /// of it) of the tree's masks, table and pool bookkeeping.
    pub bytes_reserved: usize,
    /// Bytes of that in use: the bookkeeping plus the allocated blocks' data
    /// (of a chunked leaf list: the chunks' data).
    pub bytes_used: usize,
    /// The bytes of a dense field of the same shape and element type.
    pub dense_bytes: usize,
}

impl SparseStats {
    /// Active cells over all cells.
    pub fn occupancy(&self) -> f64 {
        self.active_cells as f64 / self.cells.max(1) as f64
    }
}

/// One field's data buffer in its tree.
pub(crate) struct TreeField {
    pub name: String,
    pub buf: Arc<AlignedBuf>,
    pub comps: usize,
    pub elem: ElemType,
    /// An adjoint field (named by some field's `grad`).
    pub adjoint: bool,
}

/// The buffers of one level of a tree (those its kind has).
#[derive(Default)]
struct HostLevel {
    table: Option<Arc<AlignedBuf>>,
    free: Option<Arc<AlignedBuf>>,
    freed: Option<Arc<AlignedBuf>>,
    counts: Option<Arc<AlignedBuf>>,
    /// The allocated blocks (`counts[LISTED]` of them) and each one's owner.
    list: Option<Arc<AlignedBuf>>,
    owner: Option<Arc<AlignedBuf>>,
    mask: Option<Arc<AlignedBuf>>,
    /// The list lengths of a dynamic leaf, one per container.
    len: Option<Arc<AlignedBuf>>,
}

/// The buffers of one sparse tree.
pub struct SparseHost {
    pub tree: SparseTree,
    levels: Vec<HostLevel>,
    pub(crate) fields: Vec<TreeField>,
    /// Bytes of the masks, tables and pool bookkeeping.
    structure_bytes: usize,
    lock: Mutex<()>,
}

fn bit(buf: &AlignedBuf, c: usize) -> bool {
    buf.load_i32(c / 32) & (1 << (c % 32)) != 0
}

fn set_bit(buf: &AlignedBuf, c: usize, on: bool) {
    let w = buf.load_i32(c / 32);
    let b = 1i32 << (c % 32);
    buf.store_i32(c / 32, if on { w | b } else { w & !b });
}

fn linear(idx: &[usize], shape: &[i64]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n as usize + i)
}

fn unravel(mut k: usize, shape: &[i64]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        out[d] = k % shape[d] as usize;
        k /= shape[d] as usize;
    }
    out
}

/// A buffer the tree's description says a level has.
fn must(b: &Option<Arc<AlignedBuf>>) -> &AlignedBuf {
    b.as_deref().expect("the tree's buffers follow its description")
}

impl SparseHost {
    /// The tree's host side over its buffers, found by name (`buffer(name)`
    /// gives the buffer holding hidden part `name`); fills the pools' free
    /// stacks (every block free, block 0 on top).
    pub(crate) fn new(tree: SparseTree, buffer: &dyn Fn(&str) -> Option<Arc<AlignedBuf>>, fields: Vec<TreeField>) -> SparseHost {
        let levels = tree
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| match l.kind {
                LevelKind::Pointer => HostLevel {
                    table: buffer(&tree.table(i)),
                    free: buffer(&tree.free(i)),
                    freed: buffer(&tree.freed(i)),
                    counts: buffer(&tree.counts(i)),
                    list: buffer(&tree.list(i)),
                    owner: buffer(&tree.owner(i)),
                    ..HostLevel::default()
                },
                LevelKind::Bitmasked => HostLevel { mask: buffer(&tree.mask(i)), ..HostLevel::default() },
                LevelKind::Dynamic if l.chunk > 0 => HostLevel {
                    len: buffer(&tree.len(i)),
                    table: buffer(&tree.table(i)),
                    free: buffer(&tree.free(i)),
                    freed: buffer(&tree.freed(i)),
                    counts: buffer(&tree.counts(i)),
                    ..HostLevel::default()
                },
                LevelKind::Dynamic => HostLevel { len: buffer(&tree.len(i)), ..HostLevel::default() },
                LevelKind::Dense => HostLevel::default(),
            })
            .collect();
        let structure_bytes = tree
            .hidden()
            .iter()
            .filter(|h| h.elem == ds_dialects::ops::sparse::HiddenElem::I32)
            .map(|h| h.elements as usize * 4)
            .sum();
        let host = SparseHost { tree, levels, fields, structure_bytes, lock: Mutex::new(()) };
        host.reset_pools();
        host
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cells(&self, i: usize) -> usize {
        self.tree.levels[i].cells() as usize
    }
    fn depth(&self) -> usize {
        self.tree.depth()
    }
    fn kind(&self, i: usize) -> LevelKind {
        self.tree.levels[i].kind
    }
    fn pointers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.depth()).filter(|&i| self.kind(i) == LevelKind::Pointer)
    }
    /// The levels with pools: pointers, chunked lists.
    fn pooled(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.depth()).filter(|&i| self.tree.levels[i].pooled())
    }
    /// The table entry of the chunk holding cell `l` of the list of container `k` (chunked level `i`).
    fn chunk_entry(&self, i: usize, k: usize, l: usize) -> usize {
        let level = &self.tree.levels[i];
        k * level.chunks_per_list() as usize + l / level.chunk as usize
    }
    fn chunk_slot(&self, i: usize, id: usize, l: usize) -> usize {
        let c = self.tree.levels[i].chunk as usize;
        id * c + l % c
    }
    /// Pops a block of pooled level `i`'s pool for `field` (a typed error when it is empty).
    fn pop(&self, i: usize, field: &str) -> Result<usize, Error> {
        let h = &self.levels[i];
        let counts = must(&h.counts);
        let top = counts.load_i32(FREE_TOP);
        if top <= 0 {
            let level = &self.tree.levels[i];
            return Err(Error::PoolExhausted { kernel: None, field: field.into(), node: level.node.clone(), capacity: level.capacity, location: None });
        }
        counts.store_i32(FREE_TOP, top - 1);
        Ok(must(&h.free).load_i32(top as usize - 1) as usize)
    }

    /// Every block free: the stacks hold capacity-1 .. 0 (0 on top), none freed or listed.
    fn reset_pools(&self) {
        for i in self.pooled().collect::<Vec<_>>() {
            let h = &self.levels[i];
            let (free, counts) = (must(&h.free), must(&h.counts));
            let cap = self.tree.levels[i].capacity as usize;
            for k in 0..cap {
                free.store_i32(k, (cap - 1 - k) as i32);
            }
            counts.store_i32(FREE_TOP, cap as i32);
            counts.store_i32(FREED, 0);
            counts.store_i32(LISTED, 0);
        }
    }

    /// Per level `0..=at`, the position within its container of the cell
    /// whose coordinates at level `at` are `coord`.
    fn locals(&self, coord: &[usize], at: usize) -> Vec<usize> {
        (0..=at)
            .map(|i| {
                let div = self.tree.extent(i + 1, at + 1);
                let shape = &self.tree.levels[i].shape;
                let local: Vec<usize> = (0..coord.len()).map(|d| (coord[d] / div[d] as usize) % shape[d] as usize).collect();
                linear(&local, shape)
            })
            .collect()
    }

    /// Cell `local` of container `k` of level `i`.
    fn cell_id(&self, i: usize, k: usize, local: usize) -> usize {
        k * self.cells(i) + local
    }

    /// The container at level `upto` of the cell at `locals`, through levels
    /// `[0, upto)`: pointers followed (none: `None`); with `test`, bits and
    /// list lengths tested too.
    fn walk(&self, locals: &[usize], upto: usize, test: bool) -> Option<usize> {
        let mut k = 0;
        for (i, h) in self.levels[..upto].iter().enumerate() {
            let c = self.cell_id(i, k, locals[i]);
            k = match self.kind(i) {
                LevelKind::Pointer => {
                    let t = must(&h.table).load_i32(c);
                    if t < TABLE_FIRST_ID {
                        return None;
                    }
                    (t - TABLE_FIRST_ID) as usize
                }
                LevelKind::Bitmasked if test && !bit(must(&h.mask), c) => return None,
                LevelKind::Dynamic if test && locals[i] >= must(&h.len).load_i32(k).max(0) as usize => return None,
                LevelKind::Dynamic if self.tree.levels[i].chunk > 0 => {
                    let t = must(&h.table).load_i32(self.chunk_entry(i, k, locals[i]));
                    if t < TABLE_FIRST_ID {
                        return None;
                    }
                    self.chunk_slot(i, (t - TABLE_FIRST_ID) as usize, locals[i])
                }
                _ => c,
            };
        }
        Some(k)
    }

    /// The linear index through level `i` of the cell of `cell` (a block's owner).
    fn owner_of(&self, cell: &[usize], i: usize) -> usize {
        let below = self.tree.below(i);
        let at: Vec<usize> = cell.iter().zip(&below).map(|(&c, &b)| c / b as usize).collect();
        linear(&at, &self.tree.through(i))
    }

    /// Activates levels `[0, upto)` of `cell` (allocating blocks, setting
    /// bits, extending lists); the cell's container at level `upto`.
    fn activate(&self, cell: &[usize], upto: usize, field: &str) -> Result<usize, Error> {
        let locals = self.locals(cell, self.depth() - 1);
        let mut k = 0;
        for (i, h) in self.levels[..upto].iter().enumerate() {
            let c = self.cell_id(i, k, locals[i]);
            k = match self.kind(i) {
                LevelKind::Pointer => {
                    let table = must(&h.table);
                    let t = table.load_i32(c);
                    if t >= TABLE_FIRST_ID {
                        (t - TABLE_FIRST_ID) as usize
                    } else {
                        let b = self.pop(i, field)?;
                        let counts = must(&h.counts);
                        must(&h.owner).store_i32(b, self.owner_of(cell, i) as i32);
                        let n = counts.load_i32(LISTED).max(0);
                        must(&h.list).store_i32(n as usize, b as i32);
                        counts.store_i32(LISTED, n + 1);
                        table.store_i32(c, b as i32 + TABLE_FIRST_ID);
                        b
                    }
                }
                LevelKind::Bitmasked => {
                    set_bit(must(&h.mask), c, true);
                    c
                }
                LevelKind::Dynamic => {
                    // A write beyond the list's end extends it (the cells between hold 0).
                    let len = must(&h.len);
                    len.store_i32(k, len.load_i32(k).max(locals[i] as i32 + 1));
                    if self.tree.levels[i].chunk > 0 {
                        // The cell's chunk and every one before it (the chunks of [0, length)).
                        let table = must(&h.table);
                        let first = self.chunk_entry(i, k, 0);
                        let mut id = 0;
                        for e in first..=self.chunk_entry(i, k, locals[i]) {
                            let t = table.load_i32(e);
                            id = if t >= TABLE_FIRST_ID {
                                (t - TABLE_FIRST_ID) as usize
                            } else {
                                let b = self.pop(i, field)?;
                                table.store_i32(e, b as i32 + TABLE_FIRST_ID);
                                b
                            };
                        }
                        self.chunk_slot(i, id, locals[i])
                    } else {
                        c
                    }
                }
                LevelKind::Dense => c,
            };
        }
        Ok(k)
    }

    /// The length of the list (dynamic leaf) holding `cell`; 0 without one.
    pub fn length(&self, cell: &[usize]) -> usize {
        let _g = self.guard();
        let leaf = self.depth() - 1;
        let locals = self.locals(cell, leaf);
        match (self.walk(&locals, leaf, false), &self.levels[leaf].len) {
            (Some(k), Some(n)) => n.load_i32(k).max(0) as usize,
            _ => 0,
        }
    }

    /// The entries of the deepest pointer's list of allocated blocks (0
    /// without pointers): the iterations of a `ds.struct_for` over the tree.
    pub fn listed_blocks(&self) -> usize {
        let _g = self.guard();
        self.tree.deepest_pointer().map_or(0, |j| {
            let cap = self.tree.levels[j].capacity as usize;
            (must(&self.levels[j].counts).load_i32(LISTED).max(0) as usize).min(cap)
        })
    }

    /// Drops the released blocks from pointer level `i`'s list: an entry
    /// stays while the path to its owner still ends in its block. O(listed blocks).
    fn compact_list(&self, i: usize) {
        let h = &self.levels[i];
        let (list, owner, table, counts) = (must(&h.list), must(&h.owner), must(&h.table), must(&h.counts));
        let n = (counts.load_i32(LISTED).max(0) as usize).min(self.tree.levels[i].capacity as usize);
        let through = self.tree.through(i);
        let mut kept = 0;
        for e in 0..n {
            let b = list.load_i32(e);
            let coord = unravel(owner.load_i32(b.max(0) as usize).max(0) as usize, &through);
            let locals = self.locals(&coord, i);
            let current = self.walk(&locals, i, true).is_some_and(|k| table.load_i32(self.cell_id(i, k, locals[i])) == b + TABLE_FIRST_ID);
            if current {
                list.store_i32(kept, b);
                kept += 1;
            }
        }
        counts.store_i32(LISTED, kept as i32);
    }

    fn compact_lists(&self) {
        for i in self.pointers().collect::<Vec<_>>() {
            self.compact_list(i);
        }
    }

    fn field(&self, name: &str) -> Result<&TreeField, Error> {
        self.fields.iter().find(|f| f.name == name).ok_or_else(|| Error::Internal(format!("@{name} is not on tree @{}", self.tree.name)))
    }

    /// The data slot of `cell` when every level of it is active.
    fn active_slot(&self, cell: &[usize]) -> Option<usize> {
        self.walk(&self.locals(cell, self.depth() - 1), self.depth(), true)
    }

    /// Reads element `comp` of cell `cell` of field `name` into `out` (its
    /// element's bytes); zeros for an inactive cell.
    pub(crate) fn read(&self, name: &str, cell: &[usize], comp: usize, out: &mut [u8]) -> Result<(), Error> {
        let _g = self.guard();
        let f = self.field(name)?;
        match self.active_slot(cell) {
            Some(c) => f.buf.copy_out((c * f.comps + comp) * f.elem.size(), out),
            None => out.fill(0),
        }
        Ok(())
    }

    /// Writes element `comp` of cell `cell` of field `name`: activates the
    /// cell unless `adjoint` (an adjoint field never activates: a non-zero
    /// value for an inactive cell is an error, a zero one is dropped).
    pub(crate) fn write(&self, name: &str, cell: &[usize], comp: usize, bytes: &[u8], adjoint: bool) -> Result<(), Error> {
        let _g = self.guard();
        let f = self.field(name)?;
        let c = match self.active_slot(cell) {
            Some(c) => c,
            None if adjoint => {
                if bytes.iter().all(|&b| b == 0) {
                    return Ok(());
                }
                return Err(Error::Sparse {
                    field: name.into(),
                    message: format!("cell {cell:?} is inactive, and an adjoint field's writes do not activate cells (gradients live on the primal's active cells)"),
                });
            }
            None => self.activate(cell, self.depth(), name)?,
        };
        f.buf.copy_in((c * f.comps + comp) * f.elem.size(), bytes);
        Ok(())
    }

    /// Activates the cell of `cell` (every level down to the leaf).
    pub fn activate_cell(&self, field: &str, cell: &[usize]) -> Result<(), Error> {
        let _g = self.guard();
        if self.active_slot(cell).is_none() {
            self.activate(cell, self.depth(), field)?;
        }
        Ok(())
    }

    /// Whether the cell of `cell` is active (every level).
    pub fn is_active(&self, cell: &[usize]) -> bool {
        let _g = self.guard();
        self.active_slot(cell).is_some()
    }

    /// Zeroes every field's data at slots `[first, first + n)`.
    fn zero_slots(&self, first: usize, n: usize) {
        for f in &self.fields {
            let size = f.comps * f.elem.size();
            f.buf.zero_bytes(first * size, n * size);
        }
    }

    /// Clears containers `[first, first + count)` of level `m` and all under
    /// them: bits and lengths cleared, data zeroed, pointer blocks released.
    fn clear_range(&self, m: usize, first: usize, count: usize) {
        if m == self.depth() {
            self.zero_slots(first, count);
            return;
        }
        let h = &self.levels[m];
        let n = self.cells(m);
        let (start, total) = (first * n, count * n);
        match self.kind(m) {
            LevelKind::Pointer => {
                let table = must(&h.table);
                for c in start..start + total {
                    let t = table.load_i32(c);
                    if t >= TABLE_FIRST_ID {
                        table.store_i32(c, 0);
                        self.release(m, (t - TABLE_FIRST_ID) as usize);
                    }
                }
                return;
            }
            LevelKind::Bitmasked => {
                let mask = must(&h.mask);
                for c in start..start + total {
                    set_bit(mask, c, false);
                }
            }
            LevelKind::Dynamic => {
                let len = must(&h.len);
                for k in first..first + count {
                    len.store_i32(k, 0);
                }
                let per = self.tree.levels[m].chunks_per_list() as usize;
                if per > 0 {
                    let table = must(&h.table);
                    for e in first * per..(first + count) * per {
                        let t = table.load_i32(e);
                        if t >= TABLE_FIRST_ID {
                            table.store_i32(e, 0);
                            self.release(m, (t - TABLE_FIRST_ID) as usize);
                        }
                    }
                    return;
                }
            }
            LevelKind::Dense => {}
        }
        self.clear_range(m + 1, start, total);
    }

    /// Clears block `b` of pooled level `i` (a pointer's: its container at
    /// level `i + 1` and everything under it; a list's chunk: its slots) and
    /// pushes it on the level's free stack.
    fn release(&self, i: usize, b: usize) {
        match self.tree.levels[i].chunk {
            0 => self.clear_range(i + 1, b, 1),
            c => self.zero_slots(b * c as usize, c as usize),
        }
        let h = &self.levels[i];
        let (free, counts) = (must(&h.free), must(&h.counts));
        let top = counts.load_i32(FREE_TOP).max(0);
        free.store_i32(top as usize, b as i32);
        counts.store_i32(FREE_TOP, top + 1);
    }

    /// Deactivates the cell of `cell` at its innermost sparse level (as
    /// `ds.deactivate` without `node`): a bitmasked cell is cleared with its
    /// subtree, a pointer's block cleared and returned to the pool, a list emptied.
    pub fn deactivate_cell(&self, cell: &[usize]) {
        let _g = self.guard();
        let lvl = self.tree.innermost_sparse();
        let locals = self.locals(cell, self.depth() - 1);
        let Some(k) = self.walk(&locals, lvl, false) else { return };
        let c = self.cell_id(lvl, k, locals[lvl]);
        let h = &self.levels[lvl];
        match self.kind(lvl) {
            LevelKind::Pointer => {
                let table = must(&h.table);
                let t = table.load_i32(c);
                if t >= TABLE_FIRST_ID {
                    table.store_i32(c, 0);
                    self.release(lvl, (t - TABLE_FIRST_ID) as usize);
                }
            }
            LevelKind::Bitmasked => {
                if bit(must(&h.mask), c) {
                    set_bit(must(&h.mask), c, false);
                    self.clear_range(lvl + 1, c, 1);
                }
            }
            LevelKind::Dynamic => self.clear_range(lvl, k, 1),
            LevelKind::Dense => {}
        }
        self.compact_lists();
    }

    /// The garbage-collection step after a launch: the blocks its kernels
    /// released (deactivated) are cleared with their subtrees (releasing
    /// the blocks of pointers inside them) and returned to their free
    /// stacks, dropped from the lists of allocated blocks, and stack heights
    /// driven below 0 by failed allocations are reset. O(blocks released and
    /// their subtrees), plus O(listed blocks) when some were released.
    pub(crate) fn collect(&self) {
        let _g = self.guard();
        let mut released = false;
        for i in self.pooled().collect::<Vec<_>>() {
            let h = &self.levels[i];
            let (freed, counts) = (must(&h.freed), must(&h.counts));
            if counts.load_i32(FREE_TOP) < 0 {
                counts.store_i32(FREE_TOP, 0);
            }
            let n = (counts.load_i32(FREED).max(0) as usize).min(self.tree.levels[i].capacity as usize);
            counts.store_i32(FREED, 0);
            for k in 0..n {
                self.release(i, freed.load_i32(k) as usize);
            }
            released |= n > 0;
        }
        if released {
            self.compact_lists();
        }
    }

    /// Deactivates every cell of the tree (Taichi's `deactivate_all`):
    /// masks, tables and lists cleared, data zeroed, every block back in its pool.
    pub fn deactivate_all(&self) {
        let _g = self.guard();
        for h in &self.levels {
            for b in [&h.table, &h.mask, &h.len, &h.list, &h.owner].into_iter().flatten() {
                b.zero_bytes(0, b.capacity());
            }
        }
        for f in &self.fields {
            f.buf.zero_bytes(0, f.buf.capacity());
        }
        self.reset_pools();
    }

    /// The active cells under container `k` of level `i` (whose cells start
    /// at coordinates `origin`), pushed on `out` in row-major order per level.
    fn active_under(&self, i: usize, k: usize, origin: &[usize], out: &mut Vec<Vec<usize>>) {
        if i == self.depth() {
            out.push(origin.to_vec());
            return;
        }
        let h = &self.levels[i];
        let (shape, below) = (&self.tree.levels[i].shape, self.tree.below(i));
        let n = match self.kind(i) {
            LevelKind::Dynamic => (must(&h.len).load_i32(k).max(0) as usize).min(self.cells(i)),
            _ => self.cells(i),
        };
        for l in 0..n {
            let c = self.cell_id(i, k, l);
            let next = match self.kind(i) {
                LevelKind::Pointer => {
                    let t = must(&h.table).load_i32(c);
                    if t < TABLE_FIRST_ID {
                        continue;
                    }
                    (t - TABLE_FIRST_ID) as usize
                }
                LevelKind::Bitmasked if !bit(must(&h.mask), c) => continue,
                _ => c,
            };
            let lc = unravel(l, shape);
            let at: Vec<usize> = (0..origin.len()).map(|d| origin[d] + lc[d] * below[d] as usize).collect();
            self.active_under(i + 1, next, &at, out);
        }
    }

    /// The active cells, as cell indices, level by level in row-major order
    /// (pointers' cells without a block are skipped whole).
    pub fn active_cells(&self) -> Vec<Vec<usize>> {
        let _g = self.guard();
        let mut out = Vec::new();
        self.active_under(0, 0, &vec![0; self.tree.rank()], &mut out);
        out
    }

    /// Memory and occupancy of field `name` of this tree.
    pub fn stats(&self, name: &str) -> Result<SparseStats, Error> {
        let active_cells = self.active_cells().len();
        let _g = self.guard();
        let f = self.field(name)?;
        let (blocks, capacity, slots_per_block) = match self.tree.deepest_pointer() {
            Some(j) => {
                let cap = self.tree.levels[j].capacity as usize;
                let top = must(&self.levels[j].counts).load_i32(FREE_TOP).max(0) as usize;
                (cap - top.min(cap), cap, self.tree.slots_under(j + 1) as usize)
            }
            None => {
                let n0 = self.cells(0);
                let h = &self.levels[0];
                let active = |c: usize| match self.kind(0) {
                    LevelKind::Bitmasked => bit(must(&h.mask), c),
                    _ => true,
                };
                ((0..n0).filter(|&c| active(c)).count(), n0, self.tree.slots_under(1) as usize)
            }
        };
        let slot_bytes = f.comps * f.elem.size();
        let (chunks, chunk_capacity, used_slots) = match self.tree.chunked() {
            Some(leaf) => {
                let cap = leaf.capacity as usize;
                let top = must(&self.levels[self.depth() - 1].counts).load_i32(FREE_TOP).max(0) as usize;
                let taken = cap - top.min(cap);
                (taken, cap, taken * leaf.chunk as usize)
            }
            None => (0, 0, blocks * slots_per_block),
        };
        let cells = self.tree.cell_shape().iter().product::<i64>() as usize;
        Ok(SparseStats {
            blocks,
            capacity,
            chunks,
            chunk_capacity,
            active_cells,
            cells,
            bytes_reserved: self.structure_bytes + self.tree.slots() as usize * slot_bytes,
            bytes_used: self.structure_bytes + used_slots * slot_bytes,
            dense_bytes: cells * f.comps * f.elem.size(),
        })
    }
}

/// A saved state of one field of a sparse tree: the tree's structure (every
/// mask, table, pool, list and length buffer, as bytes) and the field's data.
pub struct TreeSnapshot {
    field: String,
    structure: Vec<Vec<u8>>,
    data: Vec<u8>,
}

impl TreeSnapshot {
    pub fn bytes(&self) -> usize {
        self.structure.iter().map(Vec::len).sum::<usize>() + self.data.len()
    }
}

fn copy_all(b: &AlignedBuf) -> Vec<u8> {
    let mut out = vec![0u8; b.capacity()];
    b.copy_out(0, &mut out);
    out
}

/// Whether an element's bytes hold zero (either sign for floats).
fn is_zero(bytes: &[u8], elem: ElemType) -> bool {
    match elem {
        ElemType::F32 => bytes.chunks(4).all(|c| f32::from_ne_bytes(c.try_into().expect("4 bytes")) == 0.0),
        ElemType::F64 => bytes.chunks(8).all(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) == 0.0),
        ElemType::I32 => bytes.iter().all(|&b| b == 0),
    }
}

impl SparseHost {
    /// The structure buffers (masks, tables, pools, lists, lengths), level by level.
    fn structure(&self) -> Vec<&AlignedBuf> {
        self.levels
            .iter()
            .flat_map(|h| [&h.table, &h.free, &h.freed, &h.counts, &h.list, &h.owner, &h.mask, &h.len])
            .filter_map(|b| b.as_deref())
            .collect()
    }

    /// The bytes [`SparseHost::snapshot`] of field `name` holds.
    pub fn snapshot_bytes(&self, name: &str) -> usize {
        let data = self.fields.iter().find(|f| f.name == name).map_or(0, |f| f.buf.capacity());
        self.structure().iter().map(|b| b.capacity()).sum::<usize>() + data
    }

    /// The tree's structure and field `name`'s data, as they are (between launches).
    pub fn snapshot(&self, name: &str) -> Result<TreeSnapshot, Error> {
        let _g = self.guard();
        let f = self.field(name)?;
        Ok(TreeSnapshot { field: name.into(), structure: self.structure().into_iter().map(copy_all).collect(), data: copy_all(&f.buf) })
    }

    /// Puts back the tree's structure and field `name`'s data from `s`. The
    /// other fields of the tree keep their values cell by cell (their data
    /// moves with the cells, whose blocks may now be others): a primal field's
    /// value at a cell the restored structure does not have active is
    /// dropped (a field the Tape restores too, or zero: a cell activated after
    /// the snapshot holds 0 in fields no launch wrote), and an adjoint's
    /// (`adjoints` names them) is an error: the gradient there would be lost.
    pub fn restore(&self, name: &str, s: &TreeSnapshot, adjoints: &[String]) -> Result<(), Error> {
        let _g = self.guard();
        let f = self.field(name)?;
        let structure = self.structure();
        if s.field != name || s.data.len() != f.buf.capacity() || s.structure.len() != structure.len() {
            return Err(Error::Internal(format!("a snapshot of @{} restored into @{name}", s.field)));
        }
        // The other fields' values by cell, nonzero ones only.
        let mut cells = Vec::new();
        self.active_under(0, 0, &vec![0; self.tree.rank()], &mut cells);
        let mut carried: Vec<(usize, Vec<usize>, Vec<u8>)> = Vec::new();
        for (g, other) in self.fields.iter().enumerate().filter(|(_, g)| g.name != name) {
            let size = other.comps * other.elem.size();
            for cell in &cells {
                let Some(slot) = self.active_slot(cell) else { continue };
                let mut bytes = vec![0u8; size];
                other.buf.copy_out(slot * size, &mut bytes);
                if !is_zero(&bytes, other.elem) {
                    carried.push((g, cell.clone(), bytes));
                }
            }
        }
        for (b, saved) in structure.iter().zip(&s.structure) {
            b.copy_in(0, saved);
        }
        f.buf.copy_in(0, &s.data);
        for other in self.fields.iter().filter(|g| g.name != name) {
            other.buf.zero_bytes(0, other.buf.capacity());
        }
        let mut lost: Option<(String, Vec<usize>)> = None;
        for (g, cell, bytes) in carried {
            let other = &self.fields[g];
            match self.active_slot(&cell) {
                Some(slot) => other.buf.copy_in(slot * other.comps * other.elem.size(), &bytes),
                None if adjoints.contains(&other.name) => {
                    lost.get_or_insert((other.name.clone(), cell));
                }
                None => {}
            }
        }
        match lost {
            Some((grad, cell)) => Err(Error::Sparse {
                field: grad,
                message: format!(
                    "restoring @{name}'s checkpoint would drop this gradient at cell {cell:?}, inactive in the restored state (activated after the checkpoint); checkpoint where the active set only shrinks, or use a policy that re-runs instead of restoring (record_without_state)"
                ),
            }),
            None => Ok(()),
        }
    }
}

/// Builds the host side of every sparse tree of `compiled` over the
/// buffers holding it (`buffer(b)`: program buffer b in host memory, the
/// program's own or a CUDA program's host copy) and gives each sparse field
/// of `fields` its tree.
pub(crate) fn attach(
    compiled: &crate::compile::Compiled,
    buffer: &dyn Fn(usize) -> Option<Arc<AlignedBuf>>,
    fields: &mut [crate::field::Field],
) -> Vec<Arc<SparseHost>> {
    let adjoints: Vec<String> = compiled.fields.iter().filter_map(|f| f.grad.clone()).collect();
    let mut hosts = Vec::new();
    for (t, tree) in compiled.sparse.iter().enumerate() {
        let hidden = |name: &str| compiled.fields.iter().find(|f| f.name == name).and_then(|f| buffer(f.placement.buffer));
        let members = compiled
            .fields
            .iter()
            .filter(|f| f.sparse == Some(t))
            .filter_map(|f| Some((f, buffer(f.placement.buffer)?)))
            .map(|(f, buf)| TreeField {
                name: f.name.clone(),
                buf,
                comps: tree.components(&f.name).unwrap_or(1).max(1) as usize,
                elem: f.elem,
                adjoint: adjoints.contains(&f.name),
            })
            .collect();
        let host = Arc::new(SparseHost::new(tree.clone(), &hidden, members));
        for f in fields.iter_mut().filter(|f| f.info.sparse == Some(t)) {
            f.sparse = Some((host.clone(), adjoints.contains(&f.info.name)));
        }
        hosts.push(host);
    }
    hosts
}

/// A test and benchmark kernel over sparse fields, one copy for both
/// (`runtime/tests/sparse.rs`, `ds-bench sparse`): `@laplace`, a struct_for
/// over the active cells of `u` (f32 `[n, n]`) storing its five-point
/// Laplacian (clamped at the edges) into `v`. With `leaf` both fields are
/// placed on that node (declared in `nodes`), else they are dense.
pub fn laplace_source(n: usize, nodes: &str, leaf: Option<&str>) -> String {
    let place = leaf.map(|l| format!(", layout = @{l}")).unwrap_or_default();
    format!(
        r#"{nodes}
"ds.field"() {{sym_name = "u", element_type = f32, shape = array<i64: {n}, {n}>{place}}} : () -> ()
"ds.field"() {{sym_name = "v", element_type = f32, shape = array<i64: {n}, {n}>{place}}} : () -> ()
func.func @laplace() attributes {{ds.kernel}} {{
  "ds.struct_for"() ({{
  ^bb0(%i: index, %j: index):
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %cn = arith.constant {last} : index
    %a = arith.subi %i, %c1 : index
    %im = arith.maxsi %a, %c0 : index
    %b = arith.addi %i, %c1 : index
    %ip = arith.minsi %b, %cn : index
    %c = arith.subi %j, %c1 : index
    %jm = arith.maxsi %c, %c0 : index
    %d = arith.addi %j, %c1 : index
    %jp = arith.minsi %d, %cn : index
    %x = "ds.load"(%i, %j) {{field = @u}} : (index, index) -> f32
    %no = "ds.load"(%im, %j) {{field = @u}} : (index, index) -> f32
    %so = "ds.load"(%ip, %j) {{field = @u}} : (index, index) -> f32
    %we = "ds.load"(%i, %jm) {{field = @u}} : (index, index) -> f32
    %ea = "ds.load"(%i, %jp) {{field = @u}} : (index, index) -> f32
    %s1 = arith.addf %no, %so : f32
    %s2 = arith.addf %we, %ea : f32
    %s3 = arith.addf %s1, %s2 : f32
    %four = arith.constant 4.0 : f32
    %x4 = arith.mulf %x, %four : f32
    %l = arith.subf %s3, %x4 : f32
    "ds.store"(%l, %i, %j) {{field = @v}} : (f32, index, index) -> ()
    gpu.yield
  }}) {{field = @u}} : () -> ()
  return
}}"#,
        last = n - 1
    )
}
