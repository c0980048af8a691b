//! What the runner needs of a backend beyond [`Backend`]: waiting for
//! launched work (timings on the GPU), and a wrapper that times launches.

use ds_runtime::cuda::CudaProgram;
use ds_runtime::{Arg, Backend, Element, Error, FieldInfo, Program};
use ds_runtime::compile::KernelInfo;
use std::collections::HashMap;
use std::time::Instant;

/// A [`Backend`] the runner drives: CPU programs and GPU programs.
pub trait Device: Backend {
    /// Waits until every launch so far has finished.
    fn sync(&self) -> Result<(), Error>;
}

impl Device for Program {
    fn sync(&self) -> Result<(), Error> {
        Ok(())
    }
}

impl Device for CudaProgram {
    fn sync(&self) -> Result<(), Error> {
        self.synchronize()
    }
}

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

impl<B: Device> Timed<B> {
    pub fn new(inner: B, timing: bool) -> Self {
        Timed { inner, timing, times: Vec::new(), launches: 0, position: HashMap::new() }
    }
}

impl<B: Device> Backend for Timed<B> {
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
        self.inner.sync()?;
        let start = Instant::now();
        self.inner.launch(kernel, args)?;
        self.inner.sync()?;
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
}
