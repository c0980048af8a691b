//! Running programs on NVIDIA GPUs through the CUDA driver API.
//!
//! The driver library is loaded at run time (cudarc's dynamic loading), so
//! DiffSim builds and its tests pass on machines without CUDA; creating a
//! [`CudaProgram`] there is a clear error. A module is compiled by
//! `compile(.., Target::Cuda)`: task kernels to PTX for the device's compute
//! capability (math functions linked from libdevice, see [`find_libdevice`]),
//! range functions JIT-compiled for the host. Fields live in device memory;
//! host access copies. A parallel task launches one thread per iteration in
//! blocks of [`BLOCK`]; a serial task one thread. Run-time checks (bounds,
//! asserts, the autodiff stack) write a device status buffer that is read
//! after each checked task.

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
    move |e| Error::Cuda(format!("{what}: {e}"))
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
    compiled: Arc<Compiled>,
    stream: Arc<CudaStream>,
    functions: HashMap<String, CudaFunction>,
    fields: Vec<CudaSlice<u8>>,
    status: CudaSlice<i64>,
}

impl CudaProgram {
    /// Compiles `source` for GPU 0 and allocates its fields there (zeroed).
    pub fn new(source: &str, name: &str, options: &CompileOptions) -> Result<CudaProgram, Error> {
        if !driver_present() {
            return Err(Error::Cuda(
                "no CUDA driver (libcuda.so) on this machine: running on Arch::Cuda needs an NVIDIA GPU and its driver".into(),
            ));
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
        let fields = compiled
            .fields
            .iter()
            .map(|f| stream.alloc_zeros::<u8>(f.bytes().max(1)).map_err(cuda_err("allocating a field")))
            .collect::<Result<Vec<_>, _>>()?;
        let status = stream.alloc_zeros::<i64>(2).map_err(cuda_err("allocating the status buffer"))?;
        Ok(CudaProgram { compiled, stream, functions, fields, status })
    }

    pub fn kernel(&self, name: &str) -> Result<&crate::compile::KernelInfo, Error> {
        self.compiled.kernels.get(name).ok_or_else(|| Error::Launch(format!("no kernel `{name}`")))
    }

    /// The declarations of the fields, by index.
    pub fn field_infos(&self) -> &[FieldInfo] {
        &self.compiled.fields
    }

    /// A device copy of field `i`.
    pub fn snapshot_field(&self, i: usize) -> Result<CudaSlice<u8>, Error> {
        let mut copy = self.stream.alloc_zeros::<u8>(self.fields[i].len()).map_err(cuda_err("allocating a snapshot"))?;
        self.stream.memcpy_dtod(&self.fields[i], &mut copy).map_err(cuda_err("saving a field"))?;
        Ok(copy)
    }

    /// Puts back a copy made by `snapshot_field(i)`.
    pub fn restore_field(&mut self, i: usize, saved: &CudaSlice<u8>) -> Result<(), Error> {
        self.stream.memcpy_dtod(saved, &mut self.fields[i]).map_err(cuda_err("restoring a field"))
    }

    /// Sets every element of field `i` to `value`.
    pub fn fill_f64(&mut self, i: usize, value: f64) -> Result<(), Error> {
        let info = self.compiled.fields[i].clone();
        match info.elem {
            crate::field::ElemType::F32 => self.copy_from(&info.name, &vec![value as f32; info.len()]),
            crate::field::ElemType::F64 => self.copy_from(&info.name, &vec![value; info.len()]),
            crate::field::ElemType::I32 => self.copy_from(&info.name, &vec![value as i32; info.len()]),
        }
    }

    pub fn field_info(&self, name: &str) -> Result<(usize, &FieldInfo), Error> {
        self.compiled
            .fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
            .ok_or_else(|| Error::Field(format!("no field @{name} in this program")))
    }

    /// Runs kernel `name` with `args` (asynchronously, unless a task has checks).
    pub fn launch(&mut self, name: &str, args: &[Arg]) -> Result<(), Error> {
        let compiled = self.compiled.clone();
        let kernel = compiled.kernels.get(name).ok_or_else(|| Error::Launch(format!("no kernel `{name}`")))?;
        let params = param_slots(kernel, args)?;
        let params = &params[..args.len()];
        let stream = self.stream.clone();
        let stream = &stream;
        let device_ptr = |s: &CudaSlice<u8>| s.device_ptr(stream).0 as Slot;
        let status_ptr = self.status.device_ptr(stream).0 as Slot;
        for task in &kernel.tasks {
            let (mut slots, n) = task_slots(name, task, params, |f| device_ptr(&self.fields[f]), status_ptr)?;
            let cfg = match task.range {
                None => LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 },
                Some(range) => {
                    let (lo, hi) = evaluate_range(range, params);
                    if hi <= lo {
                        continue;
                    }
                    slots[0] = lo as Slot;
                    slots[1] = hi as Slot;
                    let blocks = u32::try_from((hi - lo + BLOCK as i64 - 1) / BLOCK as i64)
                        .map_err(|_| Error::Launch(format!("kernel {name}: range [{lo}, {hi}) is too large")))?;
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
            if !task.status_messages.is_empty() {
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

    fn check_type<T: Element>(info: &FieldInfo) -> Result<(), Error> {
        if T::TYPE == info.elem {
            Ok(())
        } else {
            Err(Error::Field(format!("field @{} holds {} elements, accessed as {}", info.name, info.elem.name(), T::TYPE.name())))
        }
    }

    /// A copy of a field's contents.
    pub fn to_vec<T: Element>(&self, name: &str) -> Result<Vec<T>, Error> {
        let (i, info) = self.field_info(name)?;
        Self::check_type::<T>(info)?;
        let bytes = self.stream.clone_dtoh(&self.fields[i]).map_err(cuda_err("copying a field to the host"))?;
        Ok((0..info.len())
            .map(|k| {
                let b = &bytes[k * size_of::<T>()..(k + 1) * size_of::<T>()];
                // SAFETY: `b` holds exactly one T's bytes, copied from a T field.
                unsafe { std::ptr::read_unaligned(b.as_ptr() as *const T) }
            })
            .collect())
    }

    /// Sets a field's contents.
    pub fn copy_from<T: Element>(&mut self, name: &str, values: &[T]) -> Result<(), Error> {
        let (i, info) = self.field_info(name)?;
        Self::check_type::<T>(info)?;
        if values.len() != info.len() {
            return Err(Error::Field(format!("field @{name} has {} elements, given {}", info.len(), values.len())));
        }
        // SAFETY: plain numbers viewed as their bytes.
        let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) };
        self.stream.memcpy_htod(bytes, &mut self.fields[i]).map_err(cuda_err("copying a field to the device"))
    }

    /// Sets every element of a field to zero.
    pub fn zero(&mut self, name: &str) -> Result<(), Error> {
        let (i, _) = self.field_info(name)?;
        self.stream.memset_zeros(&mut self.fields[i]).map_err(cuda_err("zeroing a field"))
    }

    /// Device-to-device copy bandwidth over `bytes` bytes (read plus written,
    /// in bytes per second), the ceiling benchmarks compare against.
    pub fn copy_bandwidth(&self, bytes: usize, repeats: usize) -> Result<f64, Error> {
        let src = self.stream.alloc_zeros::<u8>(bytes).map_err(cuda_err("allocating"))?;
        let mut dst = self.stream.alloc_zeros::<u8>(bytes).map_err(cuda_err("allocating"))?;
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
