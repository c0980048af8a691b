//! The host side of a CUDA program's sparse trees: a host copy of each
//! tree's buffers (masks, pointer tables, pools, lists, lengths and its
//! fields' data) with the CPU program's host side over it
//! ([`crate::sparse::SparseHost`], and [`Field`]s with their trees), so the
//! pools' set-up, the garbage collection after a launch, element access
//! through the tree, activity queries, statistics and snapshots are the
//! same code on both backends.
//!
//! Each tree's copy is kept coherent with the device by its state: the same
//! on both sides, newer on the device (after a launch using the tree: copied
//! down before the host reads it) or newer on the host (after a host write:
//! copied up before the next launch using the tree). The kernels find
//! everything on the device: they allocate blocks from the pools there
//! (atomics) and free them to the freed lists. After a launch, the pools'
//! counters alone are read back; only when the launch freed blocks (or an
//! allocation failed) does the tree make the round trip for the garbage
//! collection.

use super::cuda_err;
use crate::error::Error;
use crate::field::Field;
use crate::native::AlignedBuf;
use crate::sparse::SparseHost;
use cudarc::driver::{CudaSlice, CudaStream};
use ds_dialects::ops::sparse::{FREE_TOP, FREED, LISTED};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a tree's newest contents are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coherence {
    Same,
    DeviceNewer,
    HostNewer,
}

/// One tree's host copy.
struct Tree {
    host: Arc<SparseHost>,
    /// The program buffers holding the tree (structure and data), each with
    /// its host copy and its size.
    buffers: Vec<(usize, Arc<AlignedBuf>, usize)>,
    /// The program fields stored in those buffers (the hidden parts and the
    /// tree's fields): a task passed one of them uses the tree.
    fields: Vec<usize>,
    /// Each pooled level, with the buffer of its counters.
    counts: Vec<(usize, usize)>,
    state: Mutex<Coherence>,
}

/// The host copies of every sparse tree of a program.
pub(crate) struct Mirror {
    trees: Vec<Tree>,
    /// The host side of each sparse field, by program field index.
    fields: HashMap<usize, Field>,
}

impl Mirror {
    /// Host copies of the trees of `compiled`, pools set up (every block
    /// free): newer than the device, so the first launch copies them up.
    pub(crate) fn new(compiled: &crate::compile::Compiled) -> Result<Mirror, Error> {
        let field_named = |name: &str| compiled.fields.iter().position(|f| f.name == name);
        let mut copies: HashMap<usize, Arc<AlignedBuf>> = HashMap::new();
        let mut trees = Vec::new();
        for (t, tree) in compiled.sparse.iter().enumerate() {
            let mut fields: Vec<usize> = tree.hidden().iter().filter_map(|h| field_named(&h.name)).collect();
            fields.extend((0..compiled.fields.len()).filter(|&f| compiled.fields[f].sparse == Some(t)));
            let mut buffers: Vec<(usize, Arc<AlignedBuf>, usize)> = Vec::new();
            for &f in &fields {
                let b = compiled.fields[f].placement.buffer;
                if buffers.iter().any(|(x, _, _)| *x == b) {
                    continue;
                }
                let bytes = compiled.buffers[b].bytes;
                let what = || Error::OutOfMemory { what: format!("the host copy of {}", compiled.buffers[b].what()), bytes };
                let copy = Arc::new(AlignedBuf::zeroed(bytes).ok_or_else(what)?);
                copies.insert(b, copy.clone());
                buffers.push((b, copy, bytes));
            }
            let counts = (0..tree.levels.len())
                .filter(|&i| tree.levels[i].pooled())
                .filter_map(|i| Some((i, compiled.fields[field_named(&tree.counts(i))?].placement.buffer)))
                .collect();
            trees.push((fields, buffers, counts));
        }
        let sparse: Vec<usize> = (0..compiled.fields.len()).filter(|&f| compiled.fields[f].sparse.is_some()).collect();
        let mut members = sparse
            .iter()
            .map(|&f| {
                let info = &compiled.fields[f];
                let copy = copies.get(&info.placement.buffer).ok_or_else(|| Error::Internal(format!("@{} outside its tree's buffers", info.name)))?;
                Ok(Field::in_buffer(info.clone(), copy.clone()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let hosts = crate::sparse::attach(compiled, &|b| copies.get(&b).cloned(), &mut members);
        let trees = trees
            .into_iter()
            .zip(hosts)
            .map(|((fields, buffers, counts), host)| Tree { host, buffers, fields, counts, state: Mutex::new(Coherence::HostNewer) })
            .collect();
        Ok(Mirror { trees, fields: sparse.into_iter().zip(members).collect() })
    }

    fn state(&self, t: usize) -> std::sync::MutexGuard<'_, Coherence> {
        self.trees[t].state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tree holding program field `field`'s host side, if it is sparse.
    fn tree_of(&self, field: usize) -> Option<usize> {
        self.fields.get(&field)?.info.sparse
    }

    /// The trees a launch of `kernel` uses (one of its tasks is passed a
    /// field stored in them).
    pub(crate) fn used_by(&self, kernel: &crate::compile::KernelInfo) -> Vec<usize> {
        let passed = |f: &usize| kernel.tasks.iter().any(|task| task.fields.contains(f));
        (0..self.trees.len()).filter(|&t| self.trees[t].fields.iter().any(passed)).collect()
    }

    /// Copies tree `t` down when the device has newer contents.
    fn down(&self, t: usize, stream: &Arc<CudaStream>, device: &[CudaSlice<u8>]) -> Result<(), Error> {
        let mut state = self.state(t);
        if *state == Coherence::DeviceNewer {
            let mut bytes = Vec::new();
            for (b, copy, n) in &self.trees[t].buffers {
                bytes.resize(*n, 0);
                stream.memcpy_dtoh(&device[*b].slice(..*n), &mut bytes).map_err(cuda_err("copying a sparse tree to the host"))?;
                copy.copy_in(0, &bytes);
            }
            *state = Coherence::Same;
        }
        Ok(())
    }

    /// Copies tree `t` up when the host has newer contents.
    pub(crate) fn up(&self, t: usize, stream: &Arc<CudaStream>, device: &mut [CudaSlice<u8>]) -> Result<(), Error> {
        let mut state = self.state(t);
        if *state == Coherence::HostNewer {
            let mut bytes = Vec::new();
            for (b, copy, n) in &self.trees[t].buffers {
                bytes.resize(*n, 0);
                copy.copy_out(0, &mut bytes);
                stream.memcpy_htod(&bytes, &mut device[*b].slice_mut(..*n)).map_err(cuda_err("copying a sparse tree to the device"))?;
            }
            *state = Coherence::Same;
        }
        Ok(())
    }

    /// The counters of a pooled level, read from the device.
    fn counters(stream: &Arc<CudaStream>, device: &[CudaSlice<u8>], buffer: usize) -> Result<[i32; 3], Error> {
        let mut bytes = [0u8; 12];
        stream.memcpy_dtoh(&device[buffer].slice(..12), &mut bytes).map_err(cuda_err("reading a pool's counters"))?;
        Ok(std::array::from_fn(|k| i32::from_ne_bytes(bytes[4 * k..4 * k + 4].try_into().expect("4 bytes"))))
    }

    /// After a launch that used tree `t` (failed or not): the device holds
    /// its newest contents; when the launch freed blocks or failed an
    /// allocation, the garbage collection (`SparseHost::collect`) runs on
    /// the host copy, which goes back up.
    pub(crate) fn launched(&self, t: usize, stream: &Arc<CudaStream>, device: &mut [CudaSlice<u8>]) -> Result<(), Error> {
        *self.state(t) = Coherence::DeviceNewer;
        let mut collect = false;
        for &(_, buffer) in &self.trees[t].counts {
            let c = Self::counters(stream, device, buffer)?;
            collect |= c[FREED] > 0 || c[FREE_TOP] < 0;
        }
        if collect {
            self.down(t, stream, device)?;
            self.trees[t].host.collect();
            *self.state(t) = Coherence::HostNewer;
            self.up(t, stream, device)?;
        }
        Ok(())
    }

    /// The entries of the list of allocated blocks of tree `name` (its
    /// deepest pointer's), read from the device, where a struct_for over it
    /// runs: `None` for a tree this program does not have.
    pub(crate) fn listed_blocks(&self, name: &str, stream: &Arc<CudaStream>, device: &[CudaSlice<u8>]) -> Result<Option<i64>, Error> {
        let Some(tree) = self.trees.iter().find(|t| t.host.tree.name == name) else { return Ok(None) };
        let Some(j) = tree.host.tree.deepest_pointer() else { return Ok(None) };
        let Some(&(_, buffer)) = tree.counts.iter().find(|(level, _)| *level == j) else { return Ok(None) };
        let listed = Self::counters(stream, device, buffer)?[LISTED].max(0);
        Ok(Some(i64::from(listed).min(tree.host.tree.levels[j].capacity)))
    }

    /// The host side of sparse field `field`, its tree copied down first:
    /// `None` for a dense field.
    pub(crate) fn field(&self, field: usize, stream: &Arc<CudaStream>, device: &[CudaSlice<u8>]) -> Result<Option<&Field>, Error> {
        let Some(t) = self.tree_of(field) else { return Ok(None) };
        self.down(t, stream, device)?;
        Ok(self.fields.get(&field))
    }

    /// As [`Mirror::field`], for a change: the tree's host copy is then the
    /// newer one (it goes up before the next launch using it).
    pub(crate) fn field_mut(&mut self, field: usize, stream: &Arc<CudaStream>, device: &[CudaSlice<u8>]) -> Result<Option<&mut Field>, Error> {
        let Some(t) = self.tree_of(field) else { return Ok(None) };
        self.down(t, stream, device)?;
        *self.state(t) = Coherence::HostNewer;
        Ok(self.fields.get_mut(&field))
    }

    /// Whether program buffer `buffer` holds a tree (device-side copies of
    /// it would miss a newer host copy: access goes through [`Mirror::host_copy`]).
    pub(crate) fn holds(&self, buffer: usize) -> bool {
        self.trees.iter().any(|t| t.buffers.iter().any(|(b, _, _)| *b == buffer))
    }

    /// The host copy of program buffer `buffer` when it holds a tree (raw
    /// access to a tree's buffers goes through it), brought up to date;
    /// with `change`, the host copy is then the newer one.
    pub(crate) fn host_copy(&self, buffer: usize, change: bool, stream: &Arc<CudaStream>, device: &[CudaSlice<u8>]) -> Result<Option<Arc<AlignedBuf>>, Error> {
        for (t, tree) in self.trees.iter().enumerate() {
            if let Some((_, copy, _)) = tree.buffers.iter().find(|(b, _, _)| *b == buffer) {
                self.down(t, stream, device)?;
                if change {
                    *self.state(t) = Coherence::HostNewer;
                }
                return Ok(Some(copy.clone()));
            }
        }
        Ok(None)
    }
}
