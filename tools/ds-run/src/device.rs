//! A wrapper of a [`Backend`] that times launches (waiting for launched
//! work first, as the GPU runs it asynchronously).

use ds_runtime::{Arg, Backend, BufferInfo, Element, Error, Field, FieldInfo};
use ds_runtime::compile::KernelInfo;
use std::collections::HashMap;
use std::time::Instant;

/// A backend whose launches are timed per kernel when `timing` is on: the
/// clock runs around the inner launch only (after waiting for earlier work),
/// so the Tape, argument building and bookkeeping are outside it. Grad
/// kernels run by backward and launches re-run by checkpointing are timed too.
pub struct Timed<B> {
    pub inner: B,
    pub timing: bool,
    /// Kernel names in order of first launch, with every launch's seconds.
    pub times: Vec<(String, Vec<f64>)>,
    /// Successful launches.
    pub launches: usize,
    position: HashMap<String, usize>,
}

impl<B: Backend> Timed<B> {
    pub fn new(inner: B, timing: bool) -> Self {
        Timed { inner, timing, times: Vec::new(), launches: 0, position: HashMap::new() }
    }
}

impl<B: Backend> Backend for Timed<B> {
    type Snapshot = B::Snapshot;
    fn id(&self) -> u64 {
        self.inner.id()
    }
    fn ir(&self) -> &str {
        self.inner.ir()
    }
    fn next_random_stream(&mut self) -> i64 {
        self.inner.next_random_stream()
    }
    fn seed_random(&mut self, seed: u64) {
        self.inner.seed_random(seed);
    }
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error> {
        self.inner.kernel_info(name)
    }
    fn field_infos(&self) -> &[FieldInfo] {
        self.inner.field_infos()
    }
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        if !self.timing {
            self.inner.launch(kernel, args)?;
            self.launches += 1;
            return Ok(());
        }
        self.inner.synchronize()?;
        let start = Instant::now();
        self.inner.launch(kernel, args)?;
        self.inner.synchronize()?;
        let seconds = start.elapsed().as_secs_f64();
        self.launches += 1;
        let i = match self.position.get(kernel) {
            Some(&i) => i,
            None => {
                self.position.insert(kernel.to_string(), self.times.len());
                self.times.push((kernel.to_string(), Vec::new()));
                self.times.len() - 1
            }
        };
        self.times[i].1.push(seconds);
        Ok(())
    }
    fn snapshot(&self, field: usize) -> Result<Self::Snapshot, Error> {
        self.inner.snapshot(field)
    }
    fn restore(&mut self, field: usize, saved: &Self::Snapshot) -> Result<(), Error> {
        self.inner.restore(field, saved)
    }
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.inner.snapshot_bytes(field)
    }
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error> {
        self.inner.fill(field, value)
    }
    fn zero(&mut self, field: usize) -> Result<(), Error> {
        self.inner.zero(field)
    }
    fn read<T: Element>(&self, field: usize, start: usize, out: &mut [T]) -> Result<(), Error> {
        self.inner.read(field, start, out)
    }
    fn write<T: Element>(&mut self, field: usize, start: usize, values: &[T]) -> Result<(), Error> {
        self.inner.write(field, start, values)
    }
    fn field_index(&self, name: &str) -> Result<usize, Error> {
        self.inner.field_index(name)
    }
    fn sparse_field(&self, field: usize) -> Result<&Field, Error> {
        self.inner.sparse_field(field)
    }
    fn sparse_field_mut(&mut self, field: usize) -> Result<&mut Field, Error> {
        self.inner.sparse_field_mut(field)
    }
    fn buffer_infos(&self) -> &[BufferInfo] {
        self.inner.buffer_infos()
    }
    fn synchronize(&self) -> Result<(), Error> {
        self.inner.synchronize()
    }
}
