//! What a compiled program offers, whatever it runs on: the Tape, the
//! frontend's typed handles and host code are written once against
//! [`Backend`], and run on CPU programs ([`Program`]) and GPU programs
//! ([`CudaProgram`]) alike.

use crate::compile::KernelInfo;
use crate::cuda::{CudaProgram, CudaSnapshot};
use crate::error::Error;
use crate::field::{BufferInfo, Element, Field, FieldInfo, Snapshot};
use crate::program::{Arg, Program};
use std::sync::atomic::{AtomicU64, Ordering};

pub trait Backend {
    /// A saved copy of one field.
    type Snapshot;
    /// This program's identity (unique in the process), so a Tape can refuse
    /// a program other than the one it recorded.
    fn id(&self) -> u64;
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error>;
    /// The program's ds module after autodiff, gradient kernels included.
    fn ir(&self) -> &str;
    /// The random stream of the next launch of a kernel that draws random
    /// numbers (its last parameter): 0, 1, 2 ... from the seed.
    fn next_random_stream(&mut self) -> i64;
    /// Restarts the random streams from `seed`: the same seed and the same
    /// launches give the same numbers.
    fn seed_random(&mut self, seed: u64);
    /// The program's fields, by index.
    fn field_infos(&self) -> &[FieldInfo];
    /// Runs kernel `kernel` with `args` (checked against its parameters).
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error>;
    fn snapshot(&self, field: usize) -> Result<Self::Snapshot, Error>;
    fn restore(&mut self, field: usize, saved: &Self::Snapshot) -> Result<(), Error>;
    /// The bytes one snapshot of `field` holds (for memory plans).
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.field_infos()[field].bytes()
    }
    /// Sets every element of a field to `value`.
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error>;
    /// Sets every element of a field to zero (a memset).
    fn zero(&mut self, field: usize) -> Result<(), Error>;
    /// Copies the elements `[start, start + out.len())` (row-major) of a field into `out`.
    fn read<T: Element>(&self, field: usize, start: usize, out: &mut [T]) -> Result<(), Error>;
    /// Writes `values` into the elements `[start, start + values.len())` of a field.
    fn write<T: Element>(&mut self, field: usize, start: usize, values: &[T]) -> Result<(), Error>;
    /// The host side of a sparse field (`Field::sparse_stats`, `active_cells`,
    /// `activate`, `deactivate`, `is_active`, `deactivate_all`,
    /// `from_dense`), up to date with the launches so far. A CPU program
    /// gives any field (a dense one's cells are all active); a CUDA program
    /// only sparse ones, from its host copy of their trees.
    fn sparse_field(&self, field: usize) -> Result<&Field, Error>;
    /// As [`Backend::sparse_field`], to change the field or its tree.
    fn sparse_field_mut(&mut self, field: usize) -> Result<&mut Field, Error>;
    /// The allocations holding the fields (a field's `placement.buffer` indexes them).
    fn buffer_infos(&self) -> &[BufferInfo];
    /// Waits until every launch so far has finished (a GPU runs them
    /// asynchronously; a CPU program's launches return when done).
    fn synchronize(&self) -> Result<(), Error> {
        Ok(())
    }

    fn field_index(&self, name: &str) -> Result<usize, Error> {
        self.field_infos().iter().position(|f| f.name == name).ok_or_else(|| Error::UnknownField { name: name.into() })
    }
}

/// What each program keeps besides its code and fields, the same for every
/// backend: its identity (unique in the process) and its next random stream.
pub(crate) struct Instance {
    id: u64,
    next_stream: i64,
}

impl Instance {
    pub(crate) fn new() -> Instance {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Instance { id: NEXT.fetch_add(1, Ordering::Relaxed), next_stream: 0 }
    }
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    /// Streams start from `seed` (seeds far apart, streams in order).
    pub(crate) fn seed(&mut self, seed: u64) {
        self.next_stream = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as i64;
    }
    pub(crate) fn next_stream(&mut self) -> i64 {
        let s = self.next_stream;
        self.next_stream = s.wrapping_add(1);
        s
    }
}

impl Backend for Program {
    type Snapshot = Snapshot;
    fn id(&self) -> u64 {
        self.id()
    }
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error> {
        self.kernel(name)
    }
    fn ir(&self) -> &str {
        self.ir()
    }
    fn next_random_stream(&mut self) -> i64 {
        self.next_random_stream()
    }
    fn seed_random(&mut self, seed: u64) {
        self.seed_random(seed);
    }
    fn field_infos(&self) -> &[FieldInfo] {
        self.field_infos()
    }
    /// By the program's name table, not a search.
    fn field_index(&self, name: &str) -> Result<usize, Error> {
        Program::field_index(self, name)
    }
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        Program::launch(self, kernel, args)
    }
    fn snapshot(&self, field: usize) -> Result<Snapshot, Error> {
        self.fields()[field].snapshot()
    }
    fn restore(&mut self, field: usize, saved: &Snapshot) -> Result<(), Error> {
        self.fields_mut()[field].restore(saved)
    }
    /// As counted by [`crate::memory`]: allocations are at least one alignment
    /// unit (a sparse field's snapshot: its tree's structure and its data).
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.fields()[field].snapshot_bytes().max(crate::native::FIELD_ALIGN)
    }
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error> {
        self.fields_mut()[field].fill_f64(value)
    }
    fn zero(&mut self, field: usize) -> Result<(), Error> {
        self.fields_mut()[field].zero();
        Ok(())
    }
    fn read<T: Element>(&self, field: usize, start: usize, out: &mut [T]) -> Result<(), Error> {
        self.fields()[field].read(start, out)
    }
    fn write<T: Element>(&mut self, field: usize, start: usize, values: &[T]) -> Result<(), Error> {
        self.fields_mut()[field].write(start, values)
    }
    fn sparse_field(&self, field: usize) -> Result<&Field, Error> {
        self.fields().get(field).ok_or_else(|| Error::Internal(format!("no field #{field}")))
    }
    fn sparse_field_mut(&mut self, field: usize) -> Result<&mut Field, Error> {
        self.fields_mut().get_mut(field).ok_or_else(|| Error::Internal(format!("no field #{field}")))
    }
    fn buffer_infos(&self) -> &[BufferInfo] {
        self.buffer_infos()
    }
}

impl Backend for CudaProgram {
    type Snapshot = CudaSnapshot;
    fn id(&self) -> u64 {
        self.id()
    }
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error> {
        self.kernel(name)
    }
    fn ir(&self) -> &str {
        self.ir()
    }
    fn next_random_stream(&mut self) -> i64 {
        self.next_random_stream()
    }
    fn seed_random(&mut self, seed: u64) {
        self.seed_random(seed);
    }
    fn field_infos(&self) -> &[FieldInfo] {
        self.field_infos()
    }
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        CudaProgram::launch(self, kernel, args)
    }
    fn snapshot(&self, field: usize) -> Result<Self::Snapshot, Error> {
        self.snapshot_field(field)
    }
    fn restore(&mut self, field: usize, saved: &Self::Snapshot) -> Result<(), Error> {
        self.restore_field(field, saved)
    }
    /// A sparse field's snapshot is in host memory (its tree and data); if
    /// the tree cannot be brought up to date, the field's dense size.
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.snapshot_bytes(field).unwrap_or_else(|_| self.field_infos()[field].bytes())
    }
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error> {
        self.fill_f64(field, value)
    }
    fn zero(&mut self, field: usize) -> Result<(), Error> {
        self.zero_field(field)
    }
    fn read<T: Element>(&self, field: usize, start: usize, out: &mut [T]) -> Result<(), Error> {
        self.read_elements(field, start, out)
    }
    fn write<T: Element>(&mut self, field: usize, start: usize, values: &[T]) -> Result<(), Error> {
        self.write_elements(field, start, values)
    }
    fn sparse_field(&self, field: usize) -> Result<&Field, Error> {
        self.sparse_field(field)
    }
    fn sparse_field_mut(&mut self, field: usize) -> Result<&mut Field, Error> {
        self.sparse_field_mut(field)
    }
    fn buffer_infos(&self) -> &[BufferInfo] {
        self.buffer_infos()
    }
    fn synchronize(&self) -> Result<(), Error> {
        self.synchronize()
    }
}
