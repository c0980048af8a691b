//! Running programs on NVIDIA GPUs through the CUDA driver API.
//!
//! The driver library is loaded at run time (cudarc's dynamic loading), so
//! DiffSim builds and its tests pass on machines without CUDA; creating a
//! [`CudaProgram`] there is a clear error. A module is compiled by
//! `compile(.., Target::Cuda)`: task kernels to PTX for the device's compute
//! capability (math functions linked from libdevice, see [`find_libdevice`]),
//! range functions JIT-compiled for the host. Fields live in device memory;
//! host access copies. A parallel task launches one thread per iteration in
//! blocks of [`BLOCK`]; a serial task one thread. Buffers are the layout's
//! (one per dense node holding fields, one per other field); host access to a
//! field that is not contiguous there copies the span of the buffer holding it. Run-time checks (bounds,
//! asserts, the autodiff stack) write a device status buffer that is read
//! after each checked task. Sparse trees live on the device too; their host
//! side (pool set-up, garbage collection, access through the tree) runs on
//! a host copy kept coherent with it ([`mirror`]).

mod mirror;

use crate::compile::{self, CompileOptions, Compiled, Target};
use crate::error::Error;
use crate::field::{Element, FieldInfo};
use crate::native::Slot;
use crate::program::{Arg, check_status, evaluate_range, param_slots, task_slots};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::Arc;

/// Threads per block of a parallel task.
pub const BLOCK: u32 = 256;

fn cuda_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::Cuda { what: what.into(), message: e.to_string() }
}

/// An allocation of `bytes` on the device; out of memory is [`Error::OutOfMemory`].
fn alloc(stream: &Arc<CudaStream>, bytes: usize, what: &str) -> Result<CudaSlice<u8>, Error> {
    stream.alloc_zeros::<u8>(bytes.max(1)).map_err(|e| match e.0 {
        cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => Error::OutOfMemory { what: what.into(), bytes },
        _ => cuda_err(what)(e),
    })
}

/// Whether a CUDA driver library can be loaded on this machine.
pub fn driver_present() -> bool {
    // SAFETY: only probes whether the library loads.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// libdevice.10.bc, searched in `$DS_LIBDEVICE`, `$CUDA_HOME` / `$CUDA_PATH`,
/// /usr/local/cuda, Debian's toolkit, and the Python package
/// nvidia-cuda-nvcc-cu12 (found through `python3`).
/// The search runs once per process (it may start `python3`).
pub fn find_libdevice() -> Option<String> {
    static FOUND: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FOUND.get_or_init(search_libdevice).clone()
}

fn search_libdevice() -> Option<String> {
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("DS_LIBDEVICE") {
        candidates.push(p.into());
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(root) = std::env::var(var) {
            candidates.push(std::path::Path::new(&root).join("nvvm/libdevice/libdevice.10.bc"));
        }
    }
    candidates.push("/usr/local/cuda/nvvm/libdevice/libdevice.10.bc".into());
    candidates.push("/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc".into());
    let python = std::process::Command::new("python3")
        .args(["-c", "import nvidia.cuda_nvcc as m; print(list(m.__path__)[0])"])
        .output();
    if let Ok(out) = python
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        candidates.push(std::path::Path::new(&dir).join("nvvm/libdevice/libdevice.10.bc"));
    }
    candidates.into_iter().find(|p| p.is_file()).map(|p| p.to_string_lossy().into_owned())
}

/// Compiles `source` for a GPU of compute capability `chip` (e.g. "sm_90")
/// without needing one: the PTX is in the result's `ptx`.
pub fn compile_ptx(source: &str, name: &str, options: &CompileOptions, chip: &str) -> Result<Arc<Compiled>, Error> {
    compile::compile(source, name, options, &Target::Cuda { chip: chip.into(), libdevice: find_libdevice() })
}

/// A compiled program with its fields on one GPU.
pub struct CudaProgram {
    instance: crate::backend::Instance,
    compiled: Arc<Compiled>,
    stream: Arc<CudaStream>,
    functions: HashMap<String, CudaFunction>,
    /// The program's buffers (`Compiled::buffers`): a field's placement names its own.
    buffers: Vec<CudaSlice<u8>>,
    status: CudaSlice<i64>,
    /// The host side of the sparse trees.
    mirror: mirror::Mirror,
}

/// A saved copy of one field of a CUDA program: a dense field's elements on
/// the device; a sparse field's tree structure and data on the host (as a
/// CPU program's, `Field::snapshot`).
pub enum CudaSnapshot {
    Device(CudaSlice<u8>),
    Host(crate::field::Snapshot),
}

impl CudaProgram {
    /// Compiles `source` for GPU 0 and allocates its fields there (zeroed).
    pub fn new(source: &str, name: &str, options: &CompileOptions) -> Result<CudaProgram, Error> {
        if !driver_present() {
            return Err(Error::NoDriver);
        }
        let ctx = CudaContext::new(0).map_err(cuda_err("cannot open GPU 0"))?;
        let (major, minor) = ctx.compute_capability().map_err(cuda_err("compute capability"))?;
        let compiled = compile_ptx(source, name, options, &format!("sm_{major}{minor}"))?;
        let ptx = compiled.ptx.clone().ok_or_else(|| Error::Internal("no PTX for a CUDA target".into()))?;
        let module = ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx)).map_err(cuda_err("loading the PTX"))?;
        let mut functions = HashMap::new();
        for task in compiled.kernels.values().flat_map(|k| &k.tasks) {
            let f = module.load_function(&task.name).map_err(cuda_err("loading a kernel"))?;
            functions.insert(task.name.clone(), f);
        }
        let stream = ctx.default_stream();
        let buffers =
            compiled.buffers.iter().map(|b| alloc(&stream, b.bytes, &b.what())).collect::<Result<Vec<_>, _>>()?;
        let status = stream.alloc_zeros::<i64>(2).map_err(cuda_err("allocating the status buffer"))?;
        let mirror = mirror::Mirror::new(&compiled)?;
        Ok(CudaProgram { instance: crate::backend::Instance::new(), compiled, stream, functions, buffers, status, mirror })
    }

    /// The ds module after verification and autodiff (gradient kernels
    /// included), with its source locations: what this program runs.
    pub fn ir(&self) -> &str {
        &self.compiled.ir
    }

    /// Starts the random streams of kernels that draw random numbers from
    /// `seed`: the same seed and the same launches give the same numbers.
    pub fn seed_random(&mut self, seed: u64) {
        self.instance.seed(seed);
    }

    /// The random stream of the next launch that draws random numbers.
    pub fn next_random_stream(&mut self) -> i64 {
        self.instance.next_stream()
    }

    /// This program's identity, unique in the process.
    pub fn id(&self) -> u64 {
        self.instance.id()
    }

    pub fn kernel(&self, name: &str) -> Result<&crate::compile::KernelInfo, Error> {
        crate::program::find_kernel(&self.compiled, name)
    }

    /// The declarations of the fields, by index.
    pub fn field_infos(&self) -> &[FieldInfo] {
        &self.compiled.fields
    }

    /// The allocations holding the fields (a field's `placement.buffer` indexes them).
    pub fn buffer_infos(&self) -> &[crate::field::BufferInfo] {
        &self.compiled.buffers
    }

    /// The raw bytes of buffer `i`, in memory order (see `Program::buffer_bytes`).
    pub fn buffer_bytes(&self, i: usize) -> Result<Vec<u8>, Error> {
        let b = self.compiled.buffers.get(i).ok_or_else(|| Error::Internal(format!("no buffer {i}")))?;
        let mut out = vec![0u8; b.bytes];
        if let Some(copy) = self.mirror.host_copy(i, false, &self.stream, &self.buffers)? {
            copy.copy_out(0, &mut out);
            return Ok(out);
        }
        self.stream.memcpy_dtoh(&self.buffers[i].slice(..b.bytes), &mut out).map_err(cuda_err("copying a buffer to the host"))?;
        Ok(out)
    }

    /// The host side of sparse field `i` (its tree's host copy, brought up
    /// to date): activity, statistics, active cells, conversion from dense
    /// arrays (`crate::field::Field`); a dense field is a typed error.
    pub fn sparse_field(&self, i: usize) -> Result<&crate::field::Field, Error> {
        self.mirror.field(i, &self.stream, &self.buffers)?.ok_or_else(|| self.dense(i))
    }

    /// As [`CudaProgram::sparse_field`], to change it (the tree goes to
    /// the device before the next launch using it).
    pub fn sparse_field_mut(&mut self, i: usize) -> Result<&mut crate::field::Field, Error> {
        let dense = self.dense(i);
        self.mirror.field_mut(i, &self.stream, &self.buffers)?.ok_or(dense)
    }

    fn dense(&self, i: usize) -> Error {
        let name = self.compiled.fields.get(i).map_or_else(|| format!("#{i}"), |f| f.name.clone());
        Error::Sparse { field: name, message: "the host side of a sparse field was asked of a dense one (its cells are all active; use read and write)".into() }
    }

    fn is_sparse(&self, i: usize) -> bool {
        self.compiled.fields.get(i).is_some_and(|f| f.sparse.is_some())
    }

    /// A copy of field `i`: a dense field's elements on the device, a
    /// sparse field's tree and data on the host.
    pub fn snapshot_field(&self, i: usize) -> Result<CudaSnapshot, Error> {
        if self.is_sparse(i) {
            return Ok(CudaSnapshot::Host(self.sparse_field(i)?.snapshot()?));
        }
        self.snapshot_dense(i).map(CudaSnapshot::Device)
    }

    fn snapshot_dense(&self, i: usize) -> Result<CudaSlice<u8>, Error> {
        let info = &self.compiled.fields[i];
        let mut copy = alloc(&self.stream, info.bytes(), "a field snapshot")?;
        if info.is_contiguous() && !self.mirror.holds(info.placement.buffer) {
            let view = self.buffers[info.placement.buffer].slice(self.byte_span(i, 0..info.len()));
            self.stream.memcpy_dtod(&view, &mut copy.slice_mut(..info.bytes())).map_err(cuda_err("saving a field"))?;
        } else {
            let mut packed = vec![0u8; info.bytes()];
            self.read_bytes(i, 0..info.len(), &mut packed)?;
            self.stream.memcpy_htod(&packed, &mut copy.slice_mut(..info.bytes())).map_err(cuda_err("saving a field"))?;
        }
        Ok(copy)
    }

    /// Puts back a copy made by `snapshot_field(i)`; the other fields of its
    /// buffer keep their elements (of its tree: their values cell by cell,
    /// `Field::restore`).
    pub fn restore_field(&mut self, i: usize, saved: &CudaSnapshot) -> Result<(), Error> {
        match saved {
            CudaSnapshot::Host(s) => self.sparse_field_mut(i)?.restore(s),
            CudaSnapshot::Device(s) if !self.is_sparse(i) => self.restore_dense(i, s),
            CudaSnapshot::Device(_) => Err(Error::Internal(format!("a dense snapshot restored into sparse field #{i}"))),
        }
    }

    /// The bytes a snapshot of field `i` holds.
    pub fn snapshot_bytes(&self, i: usize) -> Result<usize, Error> {
        if self.is_sparse(i) {
            return Ok(self.sparse_field(i)?.snapshot_bytes());
        }
        Ok(self.compiled.fields[i].bytes())
    }

    fn restore_dense(&mut self, i: usize, saved: &CudaSlice<u8>) -> Result<(), Error> {
        let info = &self.compiled.fields[i];
        let saved = saved.slice(..info.bytes());
        if info.is_contiguous() && !self.mirror.holds(info.placement.buffer) {
            let span = self.byte_span(i, 0..info.len());
            let mut view = self.buffers[info.placement.buffer].slice_mut(span);
            return self.stream.memcpy_dtod(&saved, &mut view).map_err(cuda_err("restoring a field"));
        }
        let mut packed = vec![0u8; info.bytes()];
        self.stream.memcpy_dtoh(&saved, &mut packed).map_err(cuda_err("restoring a field"))?;
        self.write_bytes(i, 0..info.len(), &packed)
    }

    /// The bytes of field `i`'s buffer that hold its elements `range`.
    fn byte_span(&self, i: usize, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let info = &self.compiled.fields[i];
        let span = info.span(range);
        span.start * info.elem.size()..span.end * info.elem.size()
    }

    /// Copies elements `range` of field `i` into `out` (row-major), through
    /// the smallest span of its buffer that holds them.
    fn read_bytes(&self, i: usize, range: std::ops::Range<usize>, out: &mut [u8]) -> Result<(), Error> {
        let info = &self.compiled.fields[i];
        let bytes = self.byte_span(i, range.clone());
        if bytes.is_empty() {
            return Ok(());
        }
        let mut span = vec![0u8; bytes.len()];
        match self.mirror.host_copy(info.placement.buffer, false, &self.stream, &self.buffers)? {
            // A sparse tree's buffer (one of its hidden parts): its host copy.
            Some(copy) => copy.copy_out(bytes.start, &mut span),
            None => {
                let view = self.buffers[info.placement.buffer].slice(bytes.clone());
                self.stream.memcpy_dtoh(&view, &mut span).map_err(cuda_err("copying a field to the host"))?;
            }
        }
        let base = bytes.start / info.elem.size();
        // SAFETY: `span` holds the buffer positions of the range from `base`,
        // `out` the range's elements (the callers check its length).
        unsafe { crate::field::transfer(info, range, span.as_mut_ptr(), base, out.as_mut_ptr(), true) };
        Ok(())
    }

    /// Writes `values` (row-major) into elements `range` of field `i`: a
    /// contiguous field directly, another through a read, patch and write
    /// back of the span of its buffer holding them.
    fn write_bytes(&mut self, i: usize, range: std::ops::Range<usize>, values: &[u8]) -> Result<(), Error> {
        let info = &self.compiled.fields[i];
        let bytes = self.byte_span(i, range.clone());
        if bytes.is_empty() {
            return Ok(());
        }
        // A sparse tree's buffer (one of its hidden parts) is patched in its
        // host copy, which goes up before the next launch using the tree.
        let host = self.mirror.host_copy(info.placement.buffer, true, &self.stream, &self.buffers)?;
        let buffer = &mut self.buffers[info.placement.buffer];
        let mut span = vec![0u8; bytes.len()];
        match &host {
            Some(copy) => copy.copy_out(bytes.start, &mut span),
            None if !info.is_contiguous() => {
                let view = buffer.slice(bytes.clone());
                self.stream.memcpy_dtoh(&view, &mut span).map_err(cuda_err("copying a field to the host"))?;
            }
            None => {}
        }
        let base = bytes.start / info.elem.size();
        // SAFETY: as in `read_bytes`; `values` is only read.
        unsafe { crate::field::transfer(info, range, span.as_mut_ptr(), base, values.as_ptr() as *mut u8, false) };
        match host {
            Some(copy) => {
                copy.copy_in(bytes.start, &span);
                Ok(())
            }
            None => {
                let mut view = buffer.slice_mut(bytes);
                self.stream.memcpy_htod(&span, &mut view).map_err(cuda_err("copying a field to the device"))
            }
        }
    }

    /// Sets every element of field `i` to `value`.
    pub fn fill_f64(&mut self, i: usize, value: f64) -> Result<(), Error> {
        if self.is_sparse(i) {
            return self.sparse_field_mut(i)?.fill_f64(value);
        }
        let n = self.compiled.fields[i].len();
        match self.compiled.fields[i].elem {
            crate::field::ElemType::F32 => self.write_elements(i, 0, &vec![value as f32; n]),
            crate::field::ElemType::F64 => self.write_elements(i, 0, &vec![value; n]),
            crate::field::ElemType::I32 => self.write_elements(i, 0, &vec![value as i32; n]),
        }
    }

    /// Runs kernel `name` with `args` (asynchronously, unless a task has
    /// checks or the [`profiler`](crate::profiler) is on).
    pub fn launch(&mut self, name: &str, args: &[Arg]) -> Result<(), Error> {
        crate::profiler::time(name, || {
            self.launch_async(name, args)?;
            if crate::profiler::is_enabled() { self.synchronize() } else { Ok(()) }
        })
    }

    fn launch_async(&mut self, name: &str, args: &[Arg]) -> Result<(), Error> {
        let compiled = self.compiled.clone();
        let kernel = crate::program::find_kernel(&compiled, name)?;
        let params = param_slots(kernel, args)?;
        let params = &params[..args.len()];
        let stream = self.stream.clone();
        let trees = self.mirror.used_by(kernel);
        for &t in &trees {
            self.mirror.up(t, &stream, &mut self.buffers)?;
        }
        let ran = self.run_tasks(name, kernel, params, &stream);
        // Blocks the launch freed go back to the pools, failed or not.
        for &t in &trees {
            self.mirror.launched(t, &stream, &mut self.buffers)?;
        }
        ran
    }

    fn run_tasks(&mut self, name: &str, kernel: &crate::compile::KernelInfo, params: &[Slot], stream: &Arc<CudaStream>) -> Result<(), Error> {
        let device_ptr = |s: &CudaSlice<u8>| s.device_ptr(stream).0 as Slot;
        let fields = &self.compiled.fields;
        let status_ptr = self.status.device_ptr(stream).0 as Slot;
        for task in &kernel.tasks {
            let (mut slots, n) = task_slots(name, task, params, |f| device_ptr(&self.buffers[fields[f].placement.buffer]), status_ptr)?;
            let cfg = match task.range {
                None => LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 },
                Some(range) => {
                    // SAFETY: `params` were checked against the kernel by `param_slots`.
                    let (lo, mut hi) = unsafe { evaluate_range(range, params) };
                    // A struct_for over a pointer tree: its allocated blocks
                    // (each as many threads as it has cells, when flattened).
                    if let Some(list) = &task.block_list
                        && let Some(listed) = self.mirror.listed_blocks(&list.tree, stream, &self.buffers)?
                    {
                        hi = hi.min(lo.saturating_add(listed.saturating_mul(list.per_block)));
                    }
                    let len = crate::program::range_len(name, lo, hi)?;
                    if len == 0 {
                        continue;
                    }
                    slots[0] = lo as Slot;
                    slots[1] = hi as Slot;
                    let blocks = u32::try_from(len / BLOCK as i64 + i64::from(len % BLOCK as i64 != 0))
                        .map_err(|_| Error::RangeTooLarge { kernel: name.into(), lo, hi })?;
                    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
                }
            };
            let func = &self.functions[&task.name];
            let mut launch = stream.launch_builder(func);
            for slot in &slots[..n] {
                launch.arg(slot);
            }
            // SAFETY: the arguments match the kernel's signature (the same
            // task_slots layout the compiler produced) and point into live
            // device buffers of this program.
            unsafe { launch.launch(cfg) }.map_err(cuda_err("launching a kernel"))?;
            if !task.checks.is_empty() {
                let status = stream.clone_dtoh(&self.status).map_err(cuda_err("reading the status"))?;
                if status[0] != 0 {
                    stream.memset_zeros(&mut self.status).map_err(cuda_err("clearing the status"))?;
                }
                check_status(name, task, [status[0], status[1]])?;
            }
        }
        Ok(())
    }

    /// Waits for every launch so far.
    pub fn synchronize(&self) -> Result<(), Error> {
        self.stream.synchronize().map_err(cuda_err("synchronizing"))
    }

    /// Copies elements `[start, start + out.len())` (row-major) of field `i` to the host.
    pub fn read_elements<T: Element>(&self, i: usize, start: usize, out: &mut [T]) -> Result<(), Error> {
        if self.is_sparse(i) {
            return self.sparse_field(i)?.read(start, out);
        }
        let info = &self.compiled.fields[i];
        info.check_type::<T>()?;
        let range = info.check_range(start, out.len())?;
        // SAFETY: T is an Element (f32, f64, i32): every byte pattern is a value.
        let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, std::mem::size_of_val(out)) };
        self.read_bytes(i, range, bytes)
    }

    /// Writes `values` into elements `[start, start + values.len())` (row-major) of field `i`.
    pub fn write_elements<T: Element>(&mut self, i: usize, start: usize, values: &[T]) -> Result<(), Error> {
        if self.is_sparse(i) {
            return self.sparse_field_mut(i)?.write(start, values);
        }
        let info = &self.compiled.fields[i];
        info.check_type::<T>()?;
        let range = info.check_range(start, values.len())?;
        // SAFETY: plain numbers viewed as their bytes.
        let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) };
        self.write_bytes(i, range, bytes)
    }

    /// Sets every element of field `i` to zero.
    pub fn zero_field(&mut self, i: usize) -> Result<(), Error> {
        if self.is_sparse(i) {
            self.sparse_field_mut(i)?.zero();
            return Ok(());
        }
        let info = &self.compiled.fields[i];
        if info.is_contiguous() && !self.mirror.holds(info.placement.buffer) {
            let span = self.byte_span(i, 0..info.len());
            let mut view = self.buffers[info.placement.buffer].slice_mut(span);
            return self.stream.memset_zeros(&mut view).map_err(cuda_err("zeroing a field"));
        }
        let zeros = vec![0u8; info.bytes()];
        self.write_bytes(i, 0..info.len(), &zeros)
    }

    /// Device-to-device copy bandwidth over `bytes` bytes (read plus written,
    /// in bytes per second), the ceiling benchmarks compare against.
    pub fn copy_bandwidth(&self, bytes: usize, repeats: usize) -> Result<f64, Error> {
        let src = alloc(&self.stream, bytes, "a bandwidth test buffer")?;
        let mut dst = alloc(&self.stream, bytes, "a bandwidth test buffer")?;
        self.stream.memcpy_dtod(&src, &mut dst).map_err(cuda_err("copying"))?;
        self.synchronize()?;
        let t = std::time::Instant::now();
        for _ in 0..repeats {
            self.stream.memcpy_dtod(&src, &mut dst).map_err(cuda_err("copying"))?;
        }
        self.synchronize()?;
        Ok((2 * bytes * repeats) as f64 / t.elapsed().as_secs_f64())
    }
}
