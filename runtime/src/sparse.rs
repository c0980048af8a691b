//! The host side of sparse fields: the buffers of one sparse tree
//! (`ds_dialects::ops::sparse` describes them, `ds_lowering::sparse` reads
//! and writes them in kernels), element access through the tree (an
//! inactive cell reads 0; a write to one activates it, allocating a block
//! from the pool), the garbage-collection step after each launch (freed
//! blocks zeroed and returned to the pool), deactivation of everything,
//! memory statistics and the list of active cells.
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
    /// Blocks holding cells: allocated from the pool (pointer), or active
    /// outer cells (bitmasked), or every outer cell (dense).
    pub blocks: usize,
    /// Blocks the tree can hold (the pool's capacity, or the outer cells).
    pub capacity: usize,
    /// Active cells.
    pub active_cells: usize,
    /// Cells of the field's index space.
    pub cells: usize,
    /// Bytes allocated for the field: its data buffer plus its share (all
    /// of it) of the tree's masks, table and pool bookkeeping.
    pub bytes_reserved: usize,
    /// Bytes of that in use: the bookkeeping plus the allocated blocks' data.
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
}

/// The buffers of one sparse tree.
pub struct SparseHost {
    pub tree: SparseTree,
    table: Option<Arc<AlignedBuf>>,
    free: Option<Arc<AlignedBuf>>,
    freed: Option<Arc<AlignedBuf>>,
    counts: Option<Arc<AlignedBuf>>,
    /// The allocated blocks (`counts[LISTED]` of them) and each one's outer cell.
    list: Option<Arc<AlignedBuf>>,
    owner: Option<Arc<AlignedBuf>>,
    mask0: Option<Arc<AlignedBuf>>,
    mask1: Option<Arc<AlignedBuf>>,
    /// The list lengths of a dynamic leaf, one per block.
    len: Option<Arc<AlignedBuf>>,
    pub(crate) fields: Vec<TreeField>,
    /// Bytes of the masks, table and pool bookkeeping.
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

impl SparseHost {
    /// The tree's host side over its buffers, found by name (`buffer(name)`
    /// gives the buffer holding hidden part `name`); fills the pool's free
    /// stack (every block free, block 0 on top).
    pub(crate) fn new(
        tree: SparseTree,
        buffer: &dyn Fn(&str) -> Option<Arc<AlignedBuf>>,
        fields: Vec<TreeField>,
    ) -> SparseHost {
        let part = |name: String| buffer(&name);
        let (table, free, freed, counts) = if tree.is_pointer() {
            (part(tree.table()), part(tree.free()), part(tree.freed()), part(tree.counts()))
        } else {
            (None, None, None, None)
        };
        let (list, owner) = if tree.is_pointer() { (part(tree.list()), part(tree.owner())) } else { (None, None) };
        let mask0 = tree.has_mask0().then(|| part(tree.mask0())).flatten();
        let mask1 = tree.has_mask1().then(|| part(tree.mask1())).flatten();
        let len = tree.is_dynamic().then(|| part(tree.len())).flatten();
        let structure_bytes = tree
            .hidden()
            .iter()
            .filter(|h| h.elem == ds_dialects::ops::sparse::HiddenElem::I32)
            .map(|h| h.elements as usize * 4)
            .sum();
        let host = SparseHost { tree, table, free, freed, counts, list, owner, mask0, mask1, len, fields, structure_bytes, lock: Mutex::new(()) };
        host.reset_pool();
        host
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn capacity(&self) -> usize {
        self.tree.capacity as usize
    }
    fn block_cells(&self) -> usize {
        self.tree.block_cells() as usize
    }

    /// Every block free: the stack holds capacity-1 .. 0 (0 on top), no freed ones.
    fn reset_pool(&self) {
        if let (Some(free), Some(counts)) = (&self.free, &self.counts) {
            let cap = self.capacity();
            for k in 0..cap {
                free.store_i32(k, (cap - 1 - k) as i32);
            }
            counts.store_i32(FREE_TOP, cap as i32);
            counts.store_i32(FREED, 0);
            counts.store_i32(LISTED, 0);
        }
    }

    /// The entries of the list of allocated blocks (pointer trees; 0 for
    /// others): the iterations of a `ds.struct_for` over the tree.
    pub fn listed_blocks(&self) -> usize {
        let _g = self.guard();
        self.counts.as_ref().map_or(0, |c| (c.load_i32(LISTED).max(0) as usize).min(self.capacity()))
    }

    /// Drops the released blocks from the list of allocated ones: an entry
    /// stays while its owner's table entry names its block. O(listed blocks).
    fn compact_list(&self) {
        let (Some(list), Some(owner), Some(table), Some(counts)) = (&self.list, &self.owner, &self.table, &self.counts) else {
            return;
        };
        let n = (counts.load_i32(LISTED).max(0) as usize).min(self.capacity());
        let mut kept = 0;
        for k in 0..n {
            let b = list.load_i32(k);
            let p = owner.load_i32(b.max(0) as usize);
            if table.load_i32(p.max(0) as usize) == b + TABLE_FIRST_ID {
                list.store_i32(kept, b);
                kept += 1;
            }
        }
        counts.store_i32(LISTED, kept as i32);
    }

    /// Outer cell and cell within the block of a cell index (of the fields' cell shape).
    fn split(&self, cell: &[usize]) -> (usize, usize) {
        let block = self.tree.block_shape();
        let (mut p, mut l) = (0usize, 0usize);
        for (d, &i) in cell.iter().enumerate() {
            let (b, n0) = (block[d] as usize, self.tree.outer.shape[d] as usize);
            p = p * n0 + i / b;
            l = l * b + i % b;
        }
        (p, l)
    }

    /// The block of outer cell `p`, if it has one (active, for a bitmasked level).
    fn block(&self, p: usize) -> Option<usize> {
        match self.tree.outer.kind {
            LevelKind::Pointer => {
                let t = self.table.as_ref()?.load_i32(p);
                (t >= TABLE_FIRST_ID).then(|| (t - TABLE_FIRST_ID) as usize)
            }
            LevelKind::Bitmasked => self.mask0.as_ref().is_some_and(|m| bit(m, p)).then_some(p),
            LevelKind::Dense => Some(p),
            LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
        }
    }

    /// The pool cell of an active cell, none for an inactive one.
    fn active_cell(&self, p: usize, l: usize) -> Option<usize> {
        let b = self.block(p)?;
        let c = b * self.block_cells() + l;
        match (&self.mask1, &self.len) {
            (Some(m), _) if !bit(m, c) => None,
            (_, Some(n)) if l >= n.load_i32(b).max(0) as usize => None,
            _ => Some(c),
        }
    }

    /// The length of the list (dynamic leaf) holding `cell`; 0 without a block.
    pub fn length(&self, cell: &[usize]) -> usize {
        let _g = self.guard();
        let (p, _) = self.split(cell);
        match (self.block(p), &self.len) {
            (Some(b), Some(n)) => n.load_i32(b).max(0) as usize,
            _ => 0,
        }
    }

    /// Activates cell `(p, l)`, allocating its block from the pool; its pool cell.
    fn activate(&self, p: usize, l: usize, field: &str) -> Result<usize, Error> {
        let id = match self.tree.outer.kind {
            LevelKind::Pointer => match self.block(p) {
                Some(b) => b,
                None => {
                    let (free, counts, table) = (self.free.as_ref(), self.counts.as_ref(), self.table.as_ref());
                    let (Some(free), Some(counts), Some(table)) = (free, counts, table) else {
                        return Err(Error::Internal("a pointer tree without its pool".into()));
                    };
                    let top = counts.load_i32(FREE_TOP);
                    if top <= 0 {
                        return Err(Error::PoolExhausted {
                            kernel: None,
                            field: field.into(),
                            node: self.tree.name.clone(),
                            capacity: self.tree.capacity,
                            location: None,
                        });
                    }
                    let b = free.load_i32(top as usize - 1) as usize;
                    counts.store_i32(FREE_TOP, top - 1);
                    if let (Some(list), Some(owner)) = (&self.list, &self.owner) {
                        owner.store_i32(b, p as i32);
                        let k = counts.load_i32(LISTED).max(0);
                        list.store_i32(k as usize, b as i32);
                        counts.store_i32(LISTED, k + 1);
                    }
                    table.store_i32(p, b as i32 + TABLE_FIRST_ID);
                    b
                }
            },
            LevelKind::Bitmasked => {
                if let Some(m) = &self.mask0 {
                    set_bit(m, p, true);
                }
                p
            }
            LevelKind::Dense => p,
            LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
        };
        let c = id * self.block_cells() + l;
        if let Some(m) = &self.mask1 {
            set_bit(m, c, true);
        }
        if let Some(n) = &self.len {
            // A write beyond the list's end extends it (the cells between hold 0).
            n.store_i32(id, n.load_i32(id).max(l as i32 + 1));
        }
        Ok(c)
    }

    fn field(&self, name: &str) -> Result<&TreeField, Error> {
        self.fields.iter().find(|f| f.name == name).ok_or_else(|| Error::Internal(format!("@{name} is not on tree @{}", self.tree.name)))
    }

    /// Reads element `comp` of cell `cell` of field `name` into `out` (its
    /// element's bytes); zeros for an inactive cell.
    pub(crate) fn read(&self, name: &str, cell: &[usize], comp: usize, out: &mut [u8]) -> Result<(), Error> {
        let _g = self.guard();
        let f = self.field(name)?;
        let (p, l) = self.split(cell);
        match self.active_cell(p, l) {
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
        let (p, l) = self.split(cell);
        let c = match self.active_cell(p, l) {
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
            None => self.activate(p, l, name)?,
        };
        f.buf.copy_in((c * f.comps + comp) * f.elem.size(), bytes);
        Ok(())
    }

    /// Activates the cell of `cell` (down to the leaf).
    pub fn activate_cell(&self, field: &str, cell: &[usize]) -> Result<(), Error> {
        let _g = self.guard();
        let (p, l) = self.split(cell);
        if self.active_cell(p, l).is_none() {
            self.activate(p, l, field)?;
        }
        Ok(())
    }

    /// Whether the cell of `cell` is active (every level).
    pub fn is_active(&self, cell: &[usize]) -> bool {
        let _g = self.guard();
        let (p, l) = self.split(cell);
        self.active_cell(p, l).is_some()
    }

    /// Zeroes every field's data at pool cells `[first, first + n)`.
    fn zero_cells(&self, first: usize, n: usize) {
        for f in &self.fields {
            let size = f.comps * f.elem.size();
            f.buf.zero_bytes(first * size, n * size);
        }
    }

    /// Deactivates the cell of `cell` at its innermost sparse level (as
    /// `ds.deactivate` without `node`): a bitmasked cell is cleared and
    /// zeroed, a pointer's block zeroed and returned to the pool.
    pub fn deactivate_cell(&self, cell: &[usize]) {
        let _g = self.guard();
        let (p, l) = self.split(cell);
        let Some(b) = self.block(p) else { return };
        let bc = self.block_cells();
        if let (1, Some(n)) = (self.tree.innermost_sparse(), &self.len) {
            n.store_i32(b, 0);
            self.zero_cells(b * bc, bc);
            return;
        }
        if let (1, Some(m)) = (self.tree.innermost_sparse(), &self.mask1) {
            let c = b * bc + l;
            if bit(m, c) {
                set_bit(m, c, false);
                self.zero_cells(c, 1);
            }
            return;
        }
        match self.tree.outer.kind {
            LevelKind::Pointer => {
                if let Some(t) = &self.table {
                    t.store_i32(p, 0);
                }
                self.release(b);
                self.compact_list();
            }
            LevelKind::Bitmasked => {
                if let Some(m) = &self.mask0 {
                    set_bit(m, p, false);
                }
                self.clear_block(b);
            }
            LevelKind::Dense => {}
            LevelKind::Dynamic => unreachable!("sparse::tree_of rejects a dynamic outer level"),
        }
    }

    /// Zeroes block `b`'s data and its leaf bits.
    fn clear_block(&self, b: usize) {
        let bc = self.block_cells();
        self.zero_cells(b * bc, bc);
        if let Some(m) = &self.mask1 {
            for c in b * bc..(b + 1) * bc {
                set_bit(m, c, false);
            }
        }
        if let Some(n) = &self.len {
            n.store_i32(b, 0);
        }
    }

    /// Zeroes block `b` and pushes it on the free stack.
    fn release(&self, b: usize) {
        self.clear_block(b);
        if let (Some(free), Some(counts)) = (&self.free, &self.counts) {
            let top = counts.load_i32(FREE_TOP).max(0);
            free.store_i32(top as usize, b as i32);
            counts.store_i32(FREE_TOP, top + 1);
        }
    }

    /// The garbage-collection step after a launch: the blocks its kernels
    /// released (deactivated) are dropped from the list of allocated blocks,
    /// zeroed and returned to the free stack, and a stack height driven
    /// below 0 by failed allocations is reset. O(blocks released), plus
    /// O(listed blocks) when some were released.
    pub(crate) fn collect(&self) {
        let _g = self.guard();
        let (Some(freed), Some(counts)) = (&self.freed, &self.counts) else { return };
        if counts.load_i32(FREE_TOP) < 0 {
            counts.store_i32(FREE_TOP, 0);
        }
        let n = (counts.load_i32(FREED).max(0) as usize).min(self.capacity());
        counts.store_i32(FREED, 0);
        if n > 0 {
            self.compact_list();
        }
        for k in 0..n {
            self.release(freed.load_i32(k) as usize);
        }
    }

    /// Deactivates every cell of the tree (Taichi's `deactivate_all`):
    /// masks and table cleared, data zeroed, every block back in the pool.
    pub fn deactivate_all(&self) {
        let _g = self.guard();
        for b in [&self.table, &self.mask0, &self.mask1, &self.len, &self.list, &self.owner].into_iter().flatten() {
            b.zero_bytes(0, b.capacity());
        }
        for f in &self.fields {
            f.buf.zero_bytes(0, f.buf.capacity());
        }
        self.reset_pool();
    }

    /// The active cells, as cell indices, in block order then cell order.
    pub fn active_cells(&self) -> Vec<Vec<usize>> {
        let _g = self.guard();
        let rank = self.tree.rank();
        let outer: Vec<usize> = self.tree.outer.shape.iter().map(|&n| n as usize).collect();
        let block: Vec<usize> = self.tree.block_shape().iter().map(|&n| n as usize).collect();
        let unravel = |mut k: usize, shape: &[usize]| -> Vec<usize> {
            let mut out = vec![0; shape.len()];
            for d in (0..shape.len()).rev() {
                out[d] = k % shape[d];
                k /= shape[d];
            }
            out
        };
        let mut out = Vec::new();
        for p in 0..self.tree.outer_cells() as usize {
            if self.block(p).is_none() {
                continue;
            }
            let bp = unravel(p, &outer);
            for l in 0..self.block_cells() {
                if self.active_cell(p, l).is_some() {
                    let lc = unravel(l, &block);
                    out.push((0..rank).map(|d| bp[d] * block[d] + lc[d]).collect());
                }
            }
        }
        out
    }

    /// Memory and occupancy of field `name` of this tree.
    pub fn stats(&self, name: &str) -> Result<SparseStats, Error> {
        let active_cells = self.active_cells().len();
        let _g = self.guard();
        let f = self.field(name)?;
        let blocks = match self.tree.outer.kind {
            LevelKind::Pointer => {
                let top = self.counts.as_ref().map_or(0, |c| c.load_i32(FREE_TOP).max(0) as usize);
                self.capacity() - top.min(self.capacity())
            }
            _ => (0..self.tree.outer_cells() as usize).filter(|&p| self.block(p).is_some()).count(),
        };
        let block_bytes = self.block_cells() * f.comps * f.elem.size();
        let cells = self.tree.cell_shape().iter().product::<i64>() as usize;
        Ok(SparseStats {
            blocks,
            capacity: self.capacity(),
            active_cells,
            cells,
            bytes_reserved: self.structure_bytes + self.capacity() * block_bytes,
            bytes_used: self.structure_bytes + blocks * block_bytes,
            dense_bytes: cells * f.comps * f.elem.size(),
        })
    }
}

/// Builds the host side of every sparse tree of `compiled` over the
/// program's `buffers` and gives each sparse field its tree.
pub(crate) fn attach(compiled: &crate::compile::Compiled, buffers: &[Arc<AlignedBuf>], fields: &mut [crate::field::Field]) -> Vec<Arc<SparseHost>> {
    let adjoints: Vec<String> = compiled.fields.iter().filter_map(|f| f.grad.clone()).collect();
    let mut hosts = Vec::new();
    for (t, tree) in compiled.sparse.iter().enumerate() {
        let buffer = |name: &str| {
            compiled.fields.iter().find(|f| f.name == name).map(|f| buffers[f.placement.buffer].clone())
        };
        let members = compiled
            .fields
            .iter()
            .filter(|f| f.sparse == Some(t))
            .map(|f| TreeField {
                name: f.name.clone(),
                buf: buffers[f.placement.buffer].clone(),
                comps: tree.components(&f.name).unwrap_or(1).max(1) as usize,
                elem: f.elem,
            })
            .collect();
        let host = Arc::new(SparseHost::new(tree.clone(), &buffer, members));
        for f in fields.iter_mut().filter(|f| f.info.sparse == Some(t)) {
            f.sparse = Some((host.clone(), adjoints.contains(&f.info.name)));
        }
        hosts.push(host);
    }
    hosts
}
