//! Compiled programs from Python: a [`Runtime`] owns a CPU `Program` or a
//! `CudaProgram` (behind an `Arc`, which zero-copy numpy views also hold,
//! so a view never outlives the memory it shows), launches kernels with
//! arguments checked against their annotations ([`KernelBase`], the base of
//! the Python `Kernel` class, launches without any Python code in between),
//! records launches on a Tape and runs backward.
//!
//! Launches and host access run holding the GIL: Python code cannot write
//! a view while a kernel runs, except through numpy operations that release
//! the GIL (as two Python threads writing one numpy array can race).

use crate::errors::py_err;
use ds_runtime::cuda::CudaProgram;
use ds_runtime::compile::ParamType;
use ds_runtime::{Arg, Backend, BackwardOptions, CompileOptions, ElemType, Element, FieldInfo, Program, Tape};
use numpy::ndarray::{ArrayViewD, IxDyn, ShapeBuilder};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyTuple};
use std::sync::{Arc, Mutex, MutexGuard};

/// A field as `Runtime.fields` lists it: name, element type, ds shape, adjoint field.
type FieldRow = (String, &'static str, Vec<usize>, Option<String>);

/// A compiled program on the CPU or a GPU.
enum Device {
    Cpu(Program),
    Cuda(CudaProgram),
}

macro_rules! on_device {
    ($dev:expr, $p:ident => $body:expr) => {
        match $dev {
            Device::Cpu($p) => $body,
            Device::Cuda($p) => $body,
        }
    };
}

impl Device {
    fn field_infos(&self) -> &[FieldInfo] {
        on_device!(self, p => p.field_infos())
    }
    fn field_index(&self, name: &str) -> Result<usize, ds_runtime::Error> {
        on_device!(self, p => Backend::field_index(p, name))
    }
    fn launch(&mut self, name: &str, args: &[Arg]) -> Result<(), ds_runtime::Error> {
        on_device!(self, p => Backend::launch(p, name, args))
    }
    fn read<T: Element>(&self, field: usize, start: usize, out: &mut [T]) -> Result<(), ds_runtime::Error> {
        on_device!(self, p => Backend::read(p, field, start, out))
    }
    fn write<T: Element>(&mut self, field: usize, start: usize, values: &[T]) -> Result<(), ds_runtime::Error> {
        on_device!(self, p => Backend::write(p, field, start, values))
    }
    fn params(&self, kernel: &str) -> Result<Vec<ParamType>, ds_runtime::Error> {
        on_device!(self, p => p.kernel_info(kernel).map(|k| k.params.clone()))
    }
    fn kernel_names(&self) -> Vec<String> {
        // Every kernel's gradient is `NAME_grad`; the IR lists both.
        let ir = on_device!(self, p => Backend::ir(p));
        let mut names: Vec<String> = ir
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("func.func @"))
            .filter_map(|rest| rest.split('(').next())
            .map(str::to_string)
            .collect();
        names.retain(|n| self.params(n).is_ok());
        names.sort();
        names.dedup();
        names
    }
}

/// A recording in progress.
enum TapeKind {
    Cpu(Tape<Program>),
    Cuda(Tape<CudaProgram>),
}

/// A Tape owned by a Python object.
struct Recorder(TapeKind);

// SAFETY: a Tape is not Send only because it can hold custom gradients
// (`Tape::launch_with_grad`'s boxed closures, which may capture anything);
// this crate never records one, so a Recorder holds launch records,
// field snapshots and names, all Send and Sync. Python reaches it through
// its Runtime's borrow flag (one `&mut` at a time).
unsafe impl Send for Recorder {}
// SAFETY: as above; a `&Recorder` only reads those.
unsafe impl Sync for Recorder {}

/// What keeps a program's memory alive for a numpy view of it (the view's `base`).
#[pyclass(frozen, module = "diffsim._diffsim")]
struct Storage {
    _device: Arc<Mutex<Device>>,
}

/// A compiled ds module: its fields, kernels and the recording in progress.
#[pyclass(module = "diffsim._diffsim")]
pub struct Runtime {
    device: Arc<Mutex<Device>>,
    tape: Option<Recorder>,
    arch: &'static str,
}

fn lock(device: &Mutex<Device>) -> PyResult<MutexGuard<'_, Device>> {
    device.lock().map_err(|_| PyRuntimeError::new_err("the program was poisoned by an earlier failure"))
}

fn elem_name(e: ElemType) -> &'static str {
    e.name()
}

fn param_name(p: ParamType) -> &'static str {
    match p {
        ParamType::Index => "index",
        ParamType::I1 => "i1",
        ParamType::I32 => "i32",
        ParamType::I64 => "i64",
        ParamType::F32 => "f32",
        ParamType::F64 => "f64",
    }
}

/// How a Python argument becomes a launch argument.
#[derive(Clone, Copy, Debug)]
enum ParamKind {
    /// An integer annotation (`ds.i32`, `ds.i64`, `int`): an `index` parameter in the
    /// kernel (so the Tape sees `x[t - 1, i]` as row t - 1), checked against the range.
    Int { lo: i64, hi: i64, annotation: &'static str },
    /// A parameter of a loaded module, of its own type.
    Exact(ParamType),
    F32,
    F64,
}

impl ParamKind {
    fn parse(name: &str) -> PyResult<ParamKind> {
        Ok(match name {
            "i32" => ParamKind::Int { lo: i32::MIN as i64, hi: i32::MAX as i64, annotation: "ds.i32" },
            "i64" | "int" => ParamKind::Int { lo: i64::MIN, hi: i64::MAX, annotation: "ds.i64" },
            "f32" | "float" => ParamKind::F32,
            "f64" => ParamKind::F64,
            _ => return Err(PyValueError::new_err(format!("`{name}` is not a kernel parameter type"))),
        })
    }

    fn describe(&self) -> &'static str {
        match self {
            ParamKind::Int { annotation, .. } => annotation,
            ParamKind::F32 => "ds.f32",
            ParamKind::F64 => "ds.f64",
            ParamKind::Exact(p) => param_name(*p),
        }
    }

    fn arg(&self, obj: &Bound<'_, PyAny>, kernel: &str, param: &str) -> PyResult<Arg> {
        let wrong = || {
            let tn = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            PyTypeError::new_err(format!("kernel {kernel}: argument `{param}` is {}, given {tn} {}", self.describe(), short_repr(obj)))
        };
        let int = |lo: i64, hi: i64| -> PyResult<i64> {
            if obj.is_instance_of::<PyFloat>() {
                return Err(wrong());
            }
            let v: i64 = obj.extract().map_err(|_| wrong())?;
            if v < lo || v > hi {
                return Err(PyOverflowError::new_err(format!(
                    "kernel {kernel}: argument `{param}` is {}, and {v} is out of its range",
                    self.describe()
                )));
            }
            Ok(v)
        };
        let float = || -> PyResult<f64> {
            if obj.is_instance_of::<PyBool>() {
                return Err(wrong());
            }
            obj.extract::<f64>().map_err(|_| wrong())
        };
        Ok(match *self {
            ParamKind::Int { lo, hi, .. } => Arg::Index(int(lo, hi)?),
            ParamKind::F32 => Arg::F32(float()? as f32),
            ParamKind::F64 => Arg::F64(float()?),
            ParamKind::Exact(p) => match p {
                ParamType::Index => Arg::Index(int(i64::MIN, i64::MAX)?),
                ParamType::I64 => Arg::I64(int(i64::MIN, i64::MAX)?),
                ParamType::I32 => Arg::I32(int(i32::MIN as i64, i32::MAX as i64)? as i32),
                ParamType::I1 => Arg::I1(int(0, 1)? != 0),
                ParamType::F32 => Arg::F32(float()? as f32),
                ParamType::F64 => Arg::F64(float()?),
            },
        })
    }
}

fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj.repr().map(|r| r.to_string()).unwrap_or_default();
    if r.chars().count() > 40 { format!("{}...", r.chars().take(40).collect::<String>()) } else { r }
}

fn args_of(kernel: &str, params: &[(String, ParamKind)], args: &Bound<'_, PyTuple>) -> PyResult<Vec<Arg>> {
    if args.len() != params.len() {
        let names: Vec<String> = params.iter().map(|(n, k)| format!("{n}: {}", k.describe())).collect();
        return Err(PyTypeError::new_err(format!(
            "kernel {kernel}({}) takes {} arguments, given {}",
            names.join(", "),
            params.len(),
            args.len()
        )));
    }
    params.iter().zip(args.iter()).map(|((n, k), a)| k.arg(&a, kernel, n)).collect()
}

impl Runtime {
    fn launch_args(&mut self, name: &str, mut args: Vec<Arg>, random: bool, record: bool) -> PyResult<()> {
        let Runtime { device, tape, .. } = self;
        let mut dev = lock(device)?;
        if random {
            let stream = on_device!(&mut *dev, p => Backend::next_random_stream(p));
            args.push(Arg::I64(stream));
        }
        let r = match (tape.as_mut().filter(|_| record), &mut *dev) {
            (Some(Recorder(TapeKind::Cpu(t))), Device::Cpu(p)) => t.launch(p, name, &args),
            (Some(Recorder(TapeKind::Cuda(t))), Device::Cuda(p)) => t.launch(p, name, &args),
            (Some(_), _) => return Err(PyRuntimeError::new_err("the Tape records another kind of program")),
            (None, d) => d.launch(name, &args),
        };
        r.map_err(py_err)
    }

    fn no_recording(&self, what: &str) -> PyResult<()> {
        if self.tape.is_some() {
            return Err(PyRuntimeError::new_err(format!(
                "{what} while a Tape records: backward replays the recorded launches on the state they saw, so the host may \
                 only read fields until the Tape ends"
            )));
        }
        Ok(())
    }

    fn field(&self, dev: &Device, name: &str) -> PyResult<(usize, FieldInfo)> {
        let i = dev.field_index(name).map_err(py_err)?;
        Ok((i, dev.field_infos()[i].clone()))
    }
}

fn view_of<'py, T: Element + numpy::Element>(base: *mut u8, info: &FieldInfo, keep: Bound<'py, PyAny>) -> Bound<'py, PyAny> {
    let shape = IxDyn(&info.shape);
    let strides = IxDyn(&info.placement.strides);
    // SAFETY: the field's elements are at `offset + sum(index * strides)`
    // elements from the buffer's base (its placement), all inside the buffer,
    // which `keep` (the view's base) keeps alive with its program. Field
    // memory is reached only through raw pointers on the Rust side, so numpy
    // writing it aliases no Rust reference.
    unsafe {
        let first = (base as *mut T).add(info.placement.offset);
        let view = ArrayViewD::from_shape_ptr(shape.strides(strides), first as *const T);
        PyArrayDyn::borrow_from_array(&view, keep).into_any()
    }
}

fn read_array<'py, T: Element + numpy::Element>(py: Python<'py>, dev: &Device, i: usize, info: &FieldInfo) -> PyResult<Bound<'py, PyAny>> {
    let mut v = vec![T::default(); info.len()];
    dev.read(i, 0, &mut v).map_err(py_err)?;
    Ok(PyArray1::from_vec(py, v).reshape(info.shape.clone())?.into_any())
}

fn write_array<T: Element + numpy::Element>(dev: &mut Device, i: usize, info: &FieldInfo, array: &Bound<'_, PyAny>) -> PyResult<()> {
    let a: PyReadonlyArrayDyn<'_, T> = array.extract().map_err(|_| {
        PyTypeError::new_err(format!("field @{} holds {} elements: give a numpy array of them", info.name, info.elem))
    })?;
    if a.shape() != info.shape.as_slice() {
        return Err(PyValueError::new_err(format!("field @{} has shape {:?}, given {:?}", info.name, info.shape, a.shape())));
    }
    // A copy first: the array may be a view of this very field.
    let values: Vec<T> = a.as_array().iter().copied().collect();
    dev.write(i, 0, &values).map_err(py_err)
}

#[pymethods]
impl Runtime {
    /// Compiles a ds module for `arch` ("cpu" or "cuda").
    #[staticmethod]
    #[pyo3(signature = (source, name, arch="cpu", check_bounds=true, fast_math=true, autodiff=true))]
    fn compile(source: &str, name: &str, arch: &str, check_bounds: bool, fast_math: bool, autodiff: bool) -> PyResult<Runtime> {
        let options = CompileOptions { check_bounds, autodiff, fast_math, ..CompileOptions::default() };
        let (device, arch) = match arch {
            "cpu" => (Device::Cpu(Program::with_options(source, name, &options).map_err(py_err)?), "cpu"),
            "cuda" => (Device::Cuda(CudaProgram::new(source, name, &options).map_err(py_err)?), "cuda"),
            _ => return Err(PyValueError::new_err(format!("arch must be ds.cpu or ds.cuda, not {arch:?}"))),
        };
        Ok(Runtime { device: Arc::new(Mutex::new(device)), tape: None, arch })
    }

    /// `source` after the pass pipeline `pipeline` (parsed as ds-opt and
    /// ds-run parse it), printed with its locations.
    #[staticmethod]
    fn transform(source: &str, name: &str, pipeline: &str) -> PyResult<String> {
        use ds_dialects::diag;
        use ds_dialects::ir::Op;
        use ds_lowering::pipeline::{self, PipelineError};
        let steps = pipeline::parse(pipeline).map_err(|m| PyValueError::new_err(format!("pass pipeline: {m}")))?;
        let context = ds_dialects::context();
        let (module, diags) = diag::capture(&context, || ds_dialects::parse_module(&context, source, name));
        let Some(mut module) = module else { return Err(py_err(ds_runtime::Error::Compile(diags))) };
        match pipeline::run(&context, &mut module, &steps, None) {
            Ok(_) => {}
            Err(PipelineError::Failed(d)) => return Err(py_err(ds_runtime::Error::Compile(d))),
            Err(PipelineError::Invalid(m)) => return Err(PyValueError::new_err(format!("pass pipeline: {m}"))),
        }
        let op = Op::of_module(&module);
        let (ok, diags) = diag::capture(&context, || op.verify());
        if !ok {
            return Err(py_err(ds_runtime::Error::Compile(diags)));
        }
        Ok(op.print_with_locations())
    }

    /// Whether a CUDA driver is present (a GPU program can be made).
    #[staticmethod]
    fn cuda_available() -> bool {
        ds_runtime::cuda::driver_present()
    }

    #[getter]
    fn arch(&self) -> &'static str {
        self.arch
    }

    /// The program's IR after autodiff (gradient kernels included).
    fn ir(&self) -> PyResult<String> {
        let dev = lock(&self.device)?;
        Ok(on_device!(&*dev, p => Backend::ir(p).to_string()))
    }

    /// The fields: (name, element type, ds shape, adjoint field or None).
    fn fields(&self) -> PyResult<Vec<FieldRow>> {
        let dev = lock(&self.device)?;
        Ok(dev.field_infos().iter().map(|f| (f.name.clone(), elem_name(f.elem), f.shape.clone(), f.grad.clone())).collect())
    }

    /// The kernels (gradient kernels included).
    fn kernels(&self) -> PyResult<Vec<String>> {
        Ok(lock(&self.device)?.kernel_names())
    }

    /// Kernel `name`'s parameter types.
    fn kernel_params(&self, name: &str) -> PyResult<Vec<&'static str>> {
        let dev = lock(&self.device)?;
        Ok(dev.params(name).map_err(py_err)?.into_iter().map(param_name).collect())
    }

    /// Launches kernel `name` of a loaded module, its arguments converted
    /// to its parameters' types (recorded when a Tape records).
    #[pyo3(signature = (name, *args))]
    fn launch(&mut self, name: &str, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let params = lock(&self.device)?.params(name).map_err(py_err)?;
        let named: Vec<(String, ParamKind)> = params.iter().enumerate().map(|(i, p)| (format!("#{i}"), ParamKind::Exact(*p))).collect();
        let argv = args_of(name, &named, args)?;
        self.launch_args(name, argv, false, true)
    }

    /// Starts the random streams of kernels that draw random numbers from `seed`.
    fn seed(&mut self, seed: u64) -> PyResult<()> {
        let mut dev = lock(&self.device)?;
        on_device!(&mut *dev, p => Backend::seed_random(p, seed));
        Ok(())
    }

    /// A copy of field `name` (its ds shape: index, then components).
    fn read<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let dev = lock(&self.device)?;
        let (i, info) = self.field(&dev, name)?;
        match info.elem {
            ElemType::F32 => read_array::<f32>(py, &dev, i, &info),
            ElemType::F64 => read_array::<f64>(py, &dev, i, &info),
            ElemType::I32 => read_array::<i32>(py, &dev, i, &info),
        }
    }

    /// Sets field `name` from a numpy array of its element type and shape.
    fn write(&mut self, name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
        self.no_recording("a field is written")?;
        let mut dev = lock(&self.device)?;
        let (i, info) = self.field(&dev, name)?;
        match info.elem {
            ElemType::F32 => write_array::<f32>(&mut dev, i, &info, array),
            ElemType::F64 => write_array::<f64>(&mut dev, i, &info, array),
            ElemType::I32 => write_array::<i32>(&mut dev, i, &info, array),
        }
    }

    /// Element `offset` (row-major over the ds shape) of field `name`.
    fn get<'py>(&self, py: Python<'py>, name: &str, offset: usize) -> PyResult<Bound<'py, PyAny>> {
        let dev = lock(&self.device)?;
        let (i, info) = self.field(&dev, name)?;
        Ok(match info.elem {
            ElemType::F32 => {
                let mut v = [0f32];
                dev.read(i, offset, &mut v).map_err(py_err)?;
                PyFloat::new(py, f64::from(v[0])).into_any()
            }
            ElemType::F64 => {
                let mut v = [0f64];
                dev.read(i, offset, &mut v).map_err(py_err)?;
                PyFloat::new(py, v[0]).into_any()
            }
            ElemType::I32 => {
                let mut v = [0i32];
                dev.read(i, offset, &mut v).map_err(py_err)?;
                v[0].into_pyobject(py)?.into_any()
            }
        })
    }

    /// Sets element `offset` (row-major over the ds shape) of field `name`.
    fn set(&mut self, name: &str, offset: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.no_recording("a field is written")?;
        let mut dev = lock(&self.device)?;
        let (i, info) = self.field(&dev, name)?;
        let bad = || PyTypeError::new_err(format!("field @{} holds {} elements", info.name, info.elem));
        match info.elem {
            ElemType::F32 => dev.write(i, offset, &[value.extract::<f64>().map_err(|_| bad())? as f32]),
            ElemType::F64 => dev.write(i, offset, &[value.extract::<f64>().map_err(|_| bad())?]),
            ElemType::I32 => {
                if value.is_instance_of::<PyFloat>() {
                    return Err(bad());
                }
                dev.write(i, offset, &[value.extract::<i32>().map_err(|_| bad())?])
            }
        }
        .map_err(py_err)
    }

    /// Sets every element of field `name` to `value`.
    fn fill(&mut self, name: &str, value: f64) -> PyResult<()> {
        self.no_recording("a field is written")?;
        let mut dev = lock(&self.device)?;
        let i = dev.field_index(name).map_err(py_err)?;
        on_device!(&mut *dev, p => Backend::fill(p, i, value)).map_err(py_err)
    }

    /// Sets every element of field `name` to zero.
    fn zero(&mut self, name: &str) -> PyResult<()> {
        self.no_recording("a field is written")?;
        let mut dev = lock(&self.device)?;
        let i = dev.field_index(name).map_err(py_err)?;
        on_device!(&mut *dev, p => Backend::zero(p, i)).map_err(py_err)
    }

    /// A numpy array sharing field `name`'s memory (CPU programs): writing
    /// it writes the field. Its base keeps the program's memory alive.
    fn view<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let dev = lock(&self.device)?;
        let Device::Cpu(p) = &*dev else {
            return Err(PyRuntimeError::new_err(
                "a zero-copy view needs a CPU program (arch=ds.cpu); a GPU field is copied with to_numpy()",
            ));
        };
        let i = p.field_index(name).map_err(py_err)?;
        let field = &p.fields()[i];
        let keep = Bound::new(py, Storage { _device: self.device.clone() })?.into_any();
        let base = field.buffer_ptr();
        Ok(match field.info.elem {
            ElemType::F32 => view_of::<f32>(base, &field.info, keep),
            ElemType::F64 => view_of::<f64>(base, &field.info, keep),
            ElemType::I32 => view_of::<i32>(base, &field.info, keep),
        })
    }

    /// Copies every field that `other` has too (same name, type and shape) from it.
    fn copy_fields_from(&mut self, other: PyRef<'_, Runtime>) -> PyResult<()> {
        if Arc::ptr_eq(&self.device, &other.device) {
            return Ok(());
        }
        let src = lock(&other.device)?;
        let mut dst = lock(&self.device)?;
        for (j, info) in src.field_infos().to_vec().into_iter().enumerate() {
            let Ok(i) = dst.field_index(&info.name) else { continue };
            let target = &dst.field_infos()[i];
            if target.elem != info.elem || target.shape != info.shape {
                continue;
            }
            match info.elem {
                ElemType::F32 => copy_field::<f32>(&src, j, &mut dst, i, info.len()),
                ElemType::F64 => copy_field::<f64>(&src, j, &mut dst, i, info.len()),
                ElemType::I32 => copy_field::<i32>(&src, j, &mut dst, i, info.len()),
            }
            .map_err(py_err)?;
        }
        Ok(())
    }

    /// Starts recording launches (keeping the state written, for
    /// checkpointing, when `keep_state`).
    fn tape_begin(&mut self, keep_state: bool) -> PyResult<()> {
        if self.tape.is_some() {
            return Err(PyRuntimeError::new_err("a Tape is already recording on this program (Tapes do not nest)"));
        }
        let dev = lock(&self.device)?;
        let kind = match (&*dev, keep_state) {
            (Device::Cpu(_), true) => TapeKind::Cpu(Tape::new()),
            (Device::Cpu(_), false) => TapeKind::Cpu(Tape::without_state()),
            (Device::Cuda(_), true) => TapeKind::Cuda(Tape::new()),
            (Device::Cuda(_), false) => TapeKind::Cuda(Tape::without_state()),
        };
        drop(dev);
        self.tape = Some(Recorder(kind));
        Ok(())
    }

    #[getter]
    fn recording(&self) -> bool {
        self.tape.is_some()
    }

    /// Launches recorded so far.
    fn tape_len(&self) -> usize {
        match &self.tape {
            Some(Recorder(TapeKind::Cpu(t))) => t.len(),
            Some(Recorder(TapeKind::Cuda(t))) => t.len(),
            None => 0,
        }
    }

    /// Ends the current time step (the unit of checkpointing).
    fn tape_end_step(&mut self) {
        match &mut self.tape {
            Some(Recorder(TapeKind::Cpu(t))) => t.end_step(),
            Some(Recorder(TapeKind::Cuda(t))) => t.end_step(),
            None => {}
        }
    }

    /// Drops the recording.
    fn tape_abort(&mut self) {
        self.tape = None;
    }

    /// Ends the recording and runs backward from `loss` (dL/dloss = 1 at
    /// each element), or, with `seeds` (adjoint field name -> numpy array),
    /// from adjoints set to those; checkpoints within `memory_budget` bytes
    /// when launches overwrote state. Returns the plan when it checkpointed.
    #[pyo3(signature = (loss, zero_grads=true, memory_budget=None, seeds=None))]
    fn tape_backward(
        &mut self,
        loss: Option<&str>,
        zero_grads: bool,
        memory_budget: Option<usize>,
        seeds: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<String>> {
        let Some(Recorder(tape)) = self.tape.take() else {
            return Err(PyRuntimeError::new_err("no Tape is recording"));
        };
        let options = BackwardOptions { zero_grads, memory_budget };
        let mut dev = lock(&self.device)?;
        // Seeds: (field index, values) read now, written by backward after it zeroes the adjoints.
        let mut seeded: Vec<(usize, Seed)> = Vec::new();
        if let Some(seeds) = seeds {
            for (k, a) in seeds.iter() {
                let name: String = k.extract()?;
                let (i, info) = self.field(&dev, &name)?;
                let seed = match info.elem {
                    ElemType::F32 => Seed::F32(seed_values::<f32>(&info, &a)?),
                    ElemType::F64 => Seed::F64(seed_values::<f64>(&info, &a)?),
                    ElemType::I32 => return Err(PyTypeError::new_err(format!("@{name} holds integers: it has no gradient"))),
                };
                seeded.push((i, seed));
            }
        }
        let plan = match (tape, &mut *dev, loss) {
            (TapeKind::Cpu(mut t), Device::Cpu(p), Some(loss)) if seeded.is_empty() => t.backward(p, loss, &options),
            (TapeKind::Cuda(mut t), Device::Cuda(p), Some(loss)) if seeded.is_empty() => t.backward(p, loss, &options),
            (TapeKind::Cpu(mut t), Device::Cpu(p), _) => t.backward_from(p, &options, |p| write_seeds(p, &seeded)),
            (TapeKind::Cuda(mut t), Device::Cuda(p), _) => t.backward_from(p, &options, |p| write_seeds(p, &seeded)),
            _ => return Err(PyRuntimeError::new_err("the Tape recorded another kind of program")),
        }
        .map_err(py_err)?;
        Ok(plan.map(|p| p.to_string()))
    }
}

enum Seed {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

fn seed_values<T: Element + numpy::Element>(info: &FieldInfo, a: &Bound<'_, PyAny>) -> PyResult<Vec<T>> {
    let arr: PyReadonlyArrayDyn<'_, T> = a
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("the seed of @{} must be a numpy array of {}", info.name, info.elem)))?;
    if arr.shape() != info.shape.as_slice() {
        return Err(PyValueError::new_err(format!("the seed of @{} has shape {:?}, the field {:?}", info.name, arr.shape(), info.shape)));
    }
    Ok(arr.as_array().iter().copied().collect())
}

fn write_seeds<B: Backend>(p: &mut B, seeds: &[(usize, Seed)]) -> Result<(), ds_runtime::Error> {
    for (i, s) in seeds {
        match s {
            Seed::F32(v) => p.write(*i, 0, v)?,
            Seed::F64(v) => p.write(*i, 0, v)?,
        }
    }
    Ok(())
}

fn copy_field<T: Element>(src: &Device, j: usize, dst: &mut Device, i: usize, n: usize) -> Result<(), ds_runtime::Error> {
    let mut v = vec![T::default(); n];
    src.read(j, 0, &mut v)?;
    dst.write(i, 0, &v)
}

/// The launcher behind a Python `Kernel`: bound to a compiled program,
/// `kernel(*args)` converts the arguments by the annotations and launches
/// (recorded while a Tape records) with no Python code in between.
#[pyclass(subclass, module = "diffsim._diffsim")]
pub struct KernelBase {
    binding: Option<Binding>,
}

struct Binding {
    rt: Py<Runtime>,
    name: String,
    grad: Option<String>,
    params: Vec<(String, ParamKind)>,
    random: bool,
}

#[pymethods]
impl KernelBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        KernelBase { binding: None }
    }

    /// Binds the kernel to `rt`'s compiled kernel `name` with parameters
    /// `params` (name, annotation type), drawing random numbers when `random`.
    fn _bind(&mut self, rt: Py<Runtime>, name: String, params: Vec<(String, String)>, random: bool, has_grad: bool) -> PyResult<()> {
        let params = params.into_iter().map(|(n, t)| Ok((n, ParamKind::parse(&t)?))).collect::<PyResult<_>>()?;
        let grad = has_grad.then(|| format!("{name}_grad"));
        self.binding = Some(Binding { rt, name, grad, params, random });
        Ok(())
    }

    fn _unbind(&mut self) {
        self.binding = None;
    }

    #[getter]
    fn _bound(&self) -> bool {
        self.binding.is_some()
    }

    /// Launches the kernel (compiling its program first when needed).
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(slf: &Bound<'_, Self>, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        launch(slf, args, kwargs, false)
    }

    /// Launches the kernel's gradient (after the kernel, with the output
    /// adjoints set): Taichi's `kernel.grad(*args)`.
    #[pyo3(signature = (*args, **kwargs))]
    fn grad(slf: &Bound<'_, Self>, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        launch(slf, args, kwargs, true)
    }
}

fn launch(slf: &Bound<'_, KernelBase>, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>, grad: bool) -> PyResult<()> {
    if kwargs.is_some_and(|k| !k.is_empty()) {
        return Err(PyTypeError::new_err("kernel arguments are given by position"));
    }
    if slf.borrow().binding.is_none() {
        slf.call_method0("_materialize")?;
    }
    let py = slf.py();
    let this = slf.borrow();
    let Some(bd) = &this.binding else {
        return Err(PyRuntimeError::new_err("the kernel is not compiled"));
    };
    let argv = args_of(&bd.name, &bd.params, args)?;
    let mut rt = bd.rt.bind(py).try_borrow_mut().map_err(|_| PyRuntimeError::new_err("the program is in use (a launch from a launch?)"))?;
    if !grad {
        return rt.launch_args(&bd.name, argv, bd.random, true);
    }
    let Some(g) = &bd.grad else {
        return Err(py_err(ds_runtime::Error::NoGradKernel { kernel: bd.name.clone() }));
    };
    if bd.random {
        return Err(py_err(ds_runtime::Error::RandomNeedsRecording { kernel: bd.name.clone() }));
    }
    rt.launch_args(g, argv, false, false)
}

/// Sets the number of threads parallel launches use (once per process,
/// before the first launch).
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot set the number of threads to {n}: {e} (set it once, before any launch)")))
}

/// The number of threads parallel launches use.
#[pyfunction]
fn num_threads() -> usize {
    rayon::current_num_threads()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Runtime>()?;
    m.add_class::<Storage>()?;
    m.add_class::<KernelBase>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    Ok(())
}
