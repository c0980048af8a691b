//! Compiling a ds module for the CPU: the `ds-to-llvm-cpu` pipeline, the MLIR
//! ExecutionEngine at -O3, and the table of kernels and their tasks read back
//! from the lowered module. Compiled modules are cached in memory by a hash of
//! their source and options, so programs built from the same source share code.

use crate::error::Error;
use crate::field::{BufferInfo, ElemType, FieldInfo, Placement};
use crate::native::{Engine, PackedFn};
use ds_dialects::diag;
use ds_dialects::ir::{Attr, Block, Op, Type};
use ds_dialects::ops::{self, Access};
use ds_lowering::{abi, pipeline};
use ds_passes::PassOptions;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// How to compile a module.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct CompileOptions {
    /// Check every field index at run time (the default); a bad one fails
    /// the launch with the kernel, field, index, extent and location. Off,
    /// an index out of bounds reads or writes outside the field's memory.
    pub check_bounds: bool,
    /// Generate `@k_grad` for every kernel (runs `ds-autodiff` first).
    pub autodiff: bool,
    /// Generate the tangent kernel `@k_jvp` of every kernel (and, with
    /// `autodiff`, `@k_grad_jvp` of every gradient kernel), giving every
    /// float field a dual `x_dot` (runs `ds-jvp{declare-duals=1}` after
    /// autodiff).
    pub forward_mode: bool,
    /// Check every adjoint and tangent the generated kernels compute for
    /// NaN and infinity (`check-finite` of ds-autodiff and ds-jvp): the
    /// first non-finite one fails its launch at the op that made it.
    pub check_finite: bool,
    /// With `forward_mode`: record in the tangent kernels how far along the
    /// tangent each comparison's outcome flips (`switches` of ds-jvp: one
    /// `ds_switch_N` field per comparison), for gradient diagnostics.
    pub switches: bool,
    /// Options for ds-autodiff (`stack-capacity=N`).
    pub autodiff_options: Vec<(String, String)>,
    /// Simplify float arithmetic as fast-math allows, before autodiff
    /// (`ds-simplify`: `x * 0` is 0, `x + 0` is x, constants folded): the
    /// default, as Taichi's `fast_math=True`. Off, IEEE semantics are kept.
    pub fast_math: bool,
    /// On the CPU, make a loop's updates of neighbouring elements (a
    /// stencil's adjoint) gathers, one element per iteration
    /// (`ds-gather-updates`): the default. Off, they stay scatters (for
    /// comparison: `ds-bench gather`).
    pub gather_updates: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            check_bounds: true,
            autodiff: false,
            forward_mode: false,
            check_finite: false,
            switches: false,
            autodiff_options: Vec::new(),
            fast_math: true,
            gather_updates: true,
        }
    }
}

/// A scalar kernel parameter type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Index,
    I1,
    I32,
    I64,
    F32,
    F64,
}

impl ParamType {
    fn of(t: Type) -> Option<ParamType> {
        match t.to_string().as_str() {
            "index" => Some(ParamType::Index),
            "i1" => Some(ParamType::I1),
            "i32" => Some(ParamType::I32),
            "i64" => Some(ParamType::I64),
            "f32" => Some(ParamType::F32),
            "f64" => Some(ParamType::F64),
            _ => None,
        }
    }
}

/// One task of a kernel (see `ds-lower-parallel-cpu`).
#[derive(Clone)]
pub struct Task {
    /// The task function (CPU) or GPU kernel name.
    pub name: String,
    /// The JIT-compiled task (CPU targets only).
    pub(crate) code: Option<PackedFn>,
    /// For parallel tasks with shared atomic updates (CPU targets only): the
    /// serial twin, every update plain, for a range run on one thread.
    pub(crate) serial: Option<PackedFn>,
    /// For parallel tasks: the estimated ops of one iteration (`abi::work`).
    pub(crate) work: i64,
    /// For parallel tasks: the estimated atomic updates of one iteration.
    pub(crate) atomics: i64,
    /// For parallel tasks with a serial twin whose updates are banded
    /// (`abi::TASK_BAND`): iterations farther apart than this never update
    /// one element, so the twin may run on chunks longer than the band,
    /// even and odd chunks in turn.
    pub(crate) band: Option<i64>,
    /// For parallel tasks with a serial twin whose shared updates all go to
    /// reduction targets (`abi::TASK_PRIVATE`), each a field alone in its
    /// buffer: their positions in `fields`. The twin may then run on several
    /// threads, each into private copies of these.
    pub(crate) private: Vec<usize>,
    /// For parallel tasks: the function computing the iteration range.
    pub(crate) range: Option<PackedFn>,
    /// For a `ds.struct_for` over a pointer tree (`ds_lowering::sparse::BLOCK_LIST`):
    /// the tree's list of allocated blocks, which bounds the range.
    pub(crate) block_list: Option<BlockList>,
    /// Indices into the program's fields of the task's field arguments.
    pub fields: Vec<usize>,
    /// The run-time checks, numbered from 1; empty when the task has no status buffer.
    pub checks: Vec<abi::Check>,
}

/// The list of allocated blocks a `ds.struct_for` task runs over.
#[derive(Clone, Debug)]
pub(crate) struct BlockList {
    /// The sparse tree's name.
    pub tree: String,
    /// Iterations per listed block: 1, or on the GPU the cells of a block
    /// when each cell is a thread (`abi::TASK_CELLS`).
    pub per_block: i64,
}

/// Which part of a field an access touches, by its first index (the shared
/// access analysis of the dialect).
pub use ds_dialects::ops::Lead;

/// One field access of a kernel, summarized for the Tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldAccess {
    /// Index into the program's fields.
    pub field: usize,
    /// Stores and atomics write; loads (and atomic min/max) read.
    pub write: bool,
    /// An atomic add or sub (what a private copy of the field holds).
    pub update: bool,
    pub lead: Lead,
}

#[derive(Clone)]
pub struct KernelInfo {
    pub name: String,
    pub params: Vec<ParamType>,
    pub tasks: Vec<Task>,
    /// Fields the kernel reads (loads, or atomics whose target it reads) and
    /// writes, by index into the program's fields.
    pub reads: Vec<usize>,
    pub writes: Vec<usize>,
    /// Every access, with the part of the field it touches.
    pub accesses: Vec<FieldAccess>,
    /// The kernel a backward pass runs for a launch of this one: `k_grad`
    /// for `k`; for a tangent kernel `k_jvp`, the tangent kernel of `k`'s
    /// gradient, `k_grad_jvp` (forward-over-reverse: the backward of a
    /// forward-mode pass computes the adjoints and their tangents).
    pub gradient: Option<String>,
}

/// A compiled module: code, fields and kernels.
pub struct Compiled {
    _engine: Engine,
    pub fields: Vec<FieldInfo>,
    /// The allocations holding the fields (each field's `placement` names one).
    pub buffers: Vec<BufferInfo>,
    pub kernels: HashMap<String, KernelInfo>,
    /// The sparse layout trees (a sparse field's `FieldInfo::sparse` indexes them).
    pub sparse: Vec<ds_dialects::ops::sparse::SparseTree>,
    /// The ds module after verification and autodiff (gradient kernels
    /// included), before lowering: what the program runs, for inspection.
    pub ir: String,
    /// For GPU targets: the PTX of every task kernel.
    pub ptx: Option<String>,
}

/// What the module is compiled for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Target {
    /// All CPU cores, through MLIR's JIT.
    Cpu,
    /// NVIDIA GPUs: PTX for `chip` (e.g. sm_90), math through `libdevice`
    /// (the path of libdevice.10.bc, if one was found). Range functions
    /// still run on the host, JIT-compiled.
    Cuda { chip: String, libdevice: Option<String> },
}

/// Compiled modules that some program still uses, by a hash of their source,
/// name, options and target. Entries hold no reference: a module is freed
/// with its last program, and its entry goes at the next insertion.
fn cache() -> &'static Mutex<HashMap<u64, Weak<Compiled>>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Weak<Compiled>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn cache_key(source: &str, name: &str, options: &CompileOptions, target: &Target) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (source, name, options, target).hash(&mut h);
    h.finish()
}

/// Compiles `source` (a ds module as text) or returns the compiled module a
/// live program already uses.
pub fn compile(source: &str, name: &str, options: &CompileOptions, target: &Target) -> Result<Arc<Compiled>, Error> {
    let key = cache_key(source, name, options, target);
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = cache.get(&key).and_then(Weak::upgrade) {
        return Ok(c);
    }
    let compiled = Arc::new(compile_uncached(source, name, options, target)?);
    cache.retain(|_, c| c.strong_count() > 0);
    cache.insert(key, Arc::downgrade(&compiled));
    Ok(compiled)
}

/// Whether a live program holds this module compiled (then `compile` reuses it).
pub fn is_cached(source: &str, name: &str, options: &CompileOptions, target: &Target) -> bool {
    let cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    cache.get(&cache_key(source, name, options, target)).is_some_and(|c| c.strong_count() > 0)
}

/// The steps before lowering: verification, fast-math simplification and,
/// when asked for, autodiff (reverse, then forward).
fn front_steps(options: &CompileOptions) -> Result<Vec<pipeline::Step>, Error> {
    let mut text = String::from(ds_passes::verify::PASS.name);
    if options.fast_math {
        text.push_str(&format!(", {}", ds_passes::simplify::PASS.name));
    }
    let check = if options.check_finite { " check-finite=1" } else { "" };
    if options.autodiff {
        let opts: Vec<String> = options.autodiff_options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!(", ds-autodiff{{{}{check}}}", opts.join(" ")));
    }
    if options.forward_mode {
        let switches = if options.switches { " switches=1" } else { "" };
        text.push_str(&format!(", {}{{declare-duals=1{check}{switches}}}", ds_passes::autodiff::forward::PASS.name));
    }
    pipeline::parse(&text).map_err(Error::Internal)
}

/// Kernels to task functions, with bounds checks when asked for; on the
/// CPU, stencil updates along loops made gathers first (`ds-gather-updates`).
fn task_steps(options: &CompileOptions, target: &Target) -> Result<Vec<pipeline::Step>, Error> {
    let tasks = if options.gather_updates && matches!(target, Target::Cpu) { ds_lowering::CPU_TASKS } else { ds_lowering::TO_TASKS };
    let mut steps = pipeline::parse(tasks).map_err(Error::Internal)?;
    if options.check_bounds {
        for s in &mut steps {
            if let pipeline::Step::Ds(info, opts) = s
                && info.name == ds_lowering::ds_to_scf::PASS.name
            {
                *opts = PassOptions::parse("check-bounds=1").map_err(Error::Internal)?;
            }
        }
    }
    Ok(steps)
}

fn steps(text: &str) -> Result<Vec<pipeline::Step>, Error> {
    pipeline::parse(text).map_err(Error::Internal)
}

fn run_steps(context: &melior::Context, module: &mut melior::ir::Module, steps: &[pipeline::Step]) -> Result<(), Error> {
    match pipeline::run(context, module, steps, None) {
        Ok(_) => Ok(()),
        Err(pipeline::PipelineError::Failed(d)) => Err(Error::Compile(d)),
        Err(pipeline::PipelineError::Invalid(m)) => Err(Error::Internal(m)),
    }
}

fn compile_uncached(source: &str, name: &str, options: &CompileOptions, target: &Target) -> Result<Compiled, Error> {
    let context = ds_dialects::context();
    let (module, diags) = diag::capture(&context, || ds_dialects::parse_module(&context, source, name));
    let mut module = module.ok_or(Error::Compile(diags))?;
    run_steps(&context, &mut module, &front_steps(options)?)?;
    let ir = Op::of_module(&module).print_with_locations();
    let body = ops::module_body(Op::of_module(&module));
    let (fields, buffers, sparse) = read_fields(&context, body)?;
    let mut kernels = read_kernels(body, &fields)?;
    run_steps(&context, &mut module, &task_steps(options, target)?)?;
    match target {
        Target::Cpu => {
            run_steps(&context, &mut module, &steps(ds_lowering::CPU_TO_LLVM)?)?;
            let engine = jit(&module)?;
            let tasks = ops::module_body(Op::of_module(&module)).ops();
            attach_tasks(&tasks, &tasks, &fields, &engine, true, &mut kernels)?;
            Ok(Compiled { _engine: engine, fields, buffers, kernels, sparse, ir, ptx: None })
        }
        Target::Cuda { chip, libdevice } => {
            run_steps(&context, &mut module, &steps(ds_lowering::ds_to_gpu::PASS.name)?)?;
            let body = ops::module_body(Op::of_module(&module));
            let gpu_module = body
                .ops()
                .into_iter()
                .find(|o| o.name() == "gpu.module")
                .ok_or_else(|| Error::Internal("no gpu.module after convert-ds-to-gpu".into()))?;
            let gpu_funcs = ops::module_body(gpu_module).ops();
            // The host part (range functions) goes through the CPU JIT.
            let mut host = ds_dialects::ir::clone_module(&module);
            let host_op = Op::of_module(&host);
            host_op.remove_attr("gpu.container_module");
            for op in ops::module_body(host_op).ops() {
                if op.name() == "gpu.module" {
                    // SAFETY: `op` belongs to `host`, the copy: the handles taken
                    // so far (`gpu_funcs`) point into `module`, and the loop goes
                    // on to the next sibling.
                    unsafe { op.erase() };
                }
            }
            run_steps(&context, &mut host, &steps(ds_lowering::CPU_TO_LLVM)?)?;
            let engine = jit(&host)?;
            let host_funcs = ops::module_body(Op::of_module(&host)).ops();
            attach_tasks(&gpu_funcs, &host_funcs, &fields, &engine, false, &mut kernels)?;
            let ptx_text = ds_lowering::gpu_to_ptx(chip, libdevice.as_deref().unwrap_or("")).map_err(Error::InvalidTarget)?;
            let ptx_steps = steps(&ptx_text)?;
            run_steps(&context, &mut module, &ptx_steps)?;
            let ptx = extract_ptx(Op::of_module(&module))?;
            Ok(Compiled { _engine: engine, fields, buffers, kernels, sparse, ir, ptx: Some(ptx) })
        }
    }
}

/// The JIT engine of a module in the LLVM dialect; an error, never a null
/// engine, when MLIR cannot compile it.
fn jit(module: &melior::ir::Module) -> Result<Engine, Error> {
    Engine::create(module).ok_or_else(|| Error::Internal("the LLVM JIT could not compile the lowered module".into()))
}

/// The PTX text of the module's `gpu.binary`. Fails clearly when the kernels
/// call math functions that libdevice would have provided.
fn extract_ptx(module: Op) -> Result<String, Error> {
    let binary = ops::module_body(module)
        .ops()
        .into_iter()
        .find(|o| o.name() == "gpu.binary")
        .ok_or_else(|| Error::Internal("no gpu.binary after gpu-module-to-binary".into()))?;
    let ptx = binary
        .attr("objects")
        .and_then(|a| a.as_array())
        .and_then(|objects| objects.first().and_then(|o| o.gpu_object_text()))
        .ok_or_else(|| Error::Internal("gpu.binary without a PTX object".into()))?;
    let missing: Vec<&str> = ptx
        .lines()
        .filter(|l| l.contains(".extern .func"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("__nv_")))
        .collect();
    if !missing.is_empty() {
        return Err(Error::NoLibdevice { functions: missing.iter().map(|m| m.to_string()).collect() });
    }
    Ok(ptx)
}

/// The fields and the buffers holding them (`ops::layout`), then the hidden
/// buffers of the sparse trees as fields of their own (1-D, named
/// `<tree>$<part>` or `<field>$data`: the tasks take them by these names),
/// and the trees. A layout the lowering cannot handle is its located
/// compile error.
type Fields = (Vec<FieldInfo>, Vec<BufferInfo>, Vec<ds_dialects::ops::sparse::SparseTree>);
fn read_fields(context: &melior::Context, body: Block) -> Result<Fields, Error> {
    let storage = ops::layout::storage(body).map_err(|(op, message)| {
        Error::Compile(diag::capture(context, || op.ctx().emit_error(op.loc(), &message)).1)
    })?;
    let size = |v: i64| usize::try_from(v).map_err(|_| Error::Internal(format!("negative size {v} in a layout")));
    let buffers = storage
        .buffers
        .iter()
        .map(|b| {
            let bytes = size(b.elements)?.saturating_mul(b.elem_bytes as usize);
            Ok(BufferInfo { name: b.name.clone(), node: b.node, bytes })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let fields = ops::fields(body)
        .into_iter()
        .zip(&storage.fields)
        .map(|(f, s)| {
            let elem = ElemType::parse(&f.elem.to_string())
                .ok_or_else(|| Error::Internal(format!("field @{}: element type {}", f.name, f.elem)))?;
            let placement = Placement {
                buffer: s.buffer,
                offset: size(s.strided.offset)?,
                strides: s.strided.strides.iter().map(|&d| size(d)).collect::<Result<_, _>>()?,
            };
            let shape = f.shape.iter().map(|&d| d as usize).collect();
            let declared_at = f.op.loc().file_line_col();
            Ok(FieldInfo { name: f.name, elem, shape, grad: f.grad, dual: f.dual, declared_at, placement, sparse: s.sparse })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut fields = fields;
    for (h, buffer) in &storage.hidden {
        let elem = match &h.elem {
            ops::sparse::HiddenElem::I32 => ElemType::I32,
            ops::sparse::HiddenElem::DataOf(f) => fields
                .iter()
                .find(|x| &x.name == f)
                .map(|x| x.elem)
                .ok_or_else(|| Error::Internal(format!("hidden buffer {} of no field", h.name)))?,
        };
        let placement = Placement { buffer: *buffer, offset: 0, strides: vec![1] };
        let shape = vec![size(h.elements)?];
        fields.push(FieldInfo { name: h.name.clone(), elem, shape, grad: None, dual: None, declared_at: None, placement, sparse: None });
    }
    Ok((fields, buffers, storage.sparse))
}

/// Kernel signatures and the fields each reads and writes, from the ds module.
fn read_kernels(body: Block, fields: &[FieldInfo]) -> Result<HashMap<String, KernelInfo>, Error> {
    let position = |n: &str| fields.iter().position(|f| f.name == n);
    let derived = |attr: &str| -> HashMap<String, String> {
        ops::kernels(body).into_iter().filter_map(|k| Some((k.attr(attr)?.as_string()?, k.sym_name()?))).collect()
    };
    let (grad_of, jvp_of) = (derived(ops::GRAD_OF_ATTR), derived(ops::JVP_OF_ATTR));
    let mut out = HashMap::new();
    for k in ops::kernels(body) {
        let name = k.sym_name().unwrap_or_default();
        let gradient = match k.attr(ops::JVP_OF_ATTR).and_then(|a| a.as_string()) {
            Some(primal) => grad_of.get(&primal).and_then(|g| jvp_of.get(g)).cloned(),
            None => grad_of.get(&name).cloned(),
        };
        let params = ops::func_inputs(k)
            .into_iter()
            .map(|t| ParamType::of(t).ok_or_else(|| Error::Internal(format!("kernel @{name}: parameter type {t}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut reads, mut writes, mut accesses) = (Vec::new(), Vec::new(), Vec::new());
        // A struct_for over a sparse field reads its active set: a later
        // launch changing it is an overwrite for the Tape to report.
        for sf in k.walk().into_iter().filter(|o| ops::DsOp::of(*o) == Some(ops::DsOp::StructFor)) {
            let field = sf.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
            if let Some(i) = position(&field).filter(|&i| fields[i].sparse.is_some()) {
                if !reads.contains(&i) {
                    reads.push(i);
                }
                let access = FieldAccess { field: i, write: false, update: false, lead: Lead::Any };
                if !accesses.contains(&access) {
                    accesses.push(access);
                }
            }
        }
        for a in k.walk().into_iter().filter_map(Access::read) {
            let Some(i) = position(&a.field) else { continue };
            let (r, w) = (a.kind.reads(), a.kind.writes());
            let lead = ops::first_index_lead(k, &a.indices);
            if r && !reads.contains(&i) {
                reads.push(i);
            }
            if w && !writes.contains(&i) {
                writes.push(i);
            }
            for write in [false, true].into_iter().filter(|&wr| if wr { w } else { r }) {
                let access = FieldAccess { field: i, write, update: a.kind.accumulates(), lead };
                if !accesses.contains(&access) {
                    accesses.push(access);
                }
            }
            // A deactivation zeroes every field placed on the cell's tree (a
            // grad kernel's, of an adjoint: the tree's adjoints only).
            if a.kind == ops::AccessKind::Deactivate && fields[i].sparse.is_some() {
                let adjoint = |j: usize| fields.iter().any(|f| f.grad.as_deref() == Some(fields[j].name.as_str()));
                let only_adjoints = adjoint(i);
                for j in (0..fields.len()).filter(|&j| fields[j].sparse == fields[i].sparse && (!only_adjoints || adjoint(j))) {
                    if !writes.contains(&j) {
                        writes.push(j);
                    }
                    let access = FieldAccess { field: j, write: true, update: false, lead: Lead::Any };
                    if !accesses.contains(&access) {
                        accesses.push(access);
                    }
                }
            }
        }
        out.insert(name.clone(), KernelInfo { name, params, tasks: Vec::new(), reads, writes, accesses, gradient });
    }
    Ok(out)
}

/// The positions among a task's fields (`task_fields`, program field
/// indices) of its reduction targets `names`, when every one is a field
/// alone in its buffer, stored densely from its start (so a private copy is
/// a plain array); else none.
fn private_targets(positions: &[i64], task_fields: &[usize], fields: &[FieldInfo]) -> Vec<usize> {
    let alone = |i: usize| {
        let f = &fields[i];
        let dense = f.shape.iter().rev().scan(1usize, |n, &d| {
            let s = *n;
            *n *= d;
            Some(s)
        });
        let row_major = f.placement.strides.iter().rev().copied().eq(dense);
        f.placement.offset == 0 && row_major && fields.iter().filter(|g| g.placement.buffer == f.placement.buffer).count() == 1
    };
    let positions: Option<Vec<usize>> = positions
        .iter()
        .map(|&p| usize::try_from(p).ok().filter(|&p| task_fields.get(p).is_some_and(|&i| alone(i))))
        .collect();
    positions.unwrap_or_default()
}

fn strings(a: Option<Attr>) -> Vec<String> {
    a.and_then(|a| a.as_array()).unwrap_or_default().into_iter().filter_map(|s| s.as_string()).collect()
}

/// Attaches the task functions (`task_ops`: CPU functions or GPU kernels) to
/// their kernels; range functions are looked up among `host_ops` in the JIT.
fn attach_tasks(
    task_ops: &[Op],
    host_ops: &[Op],
    fields: &[FieldInfo],
    engine: &Engine,
    cpu: bool,
    kernels: &mut HashMap<String, KernelInfo>,
) -> Result<(), Error> {
    let ranges: HashMap<String, String> = host_ops
        .iter()
        .filter_map(|f| Some((f.attr(abi::RANGE_OF)?.as_string()?, f.sym_name()?)))
        .collect();
    let lookup = |n: &str| engine.packed(n).ok_or_else(|| Error::Internal(format!("the JIT has no function {n}")));
    let mut tasks: Vec<(String, i64, Task)> = Vec::new();
    for f in task_ops {
        let Some(kernel) = f.attr(abi::TASK_OF).and_then(|a| a.as_string()) else { continue };
        let fname = f.sym_name().unwrap_or_default();
        let index = f.attr(abi::TASK_INDEX).and_then(|a| a.as_int()).unwrap_or(0);
        let field_idx = strings(f.attr(abi::FIELDS))
            .iter()
            .map(|n| {
                fields.iter().position(|fi| &fi.name == n).ok_or_else(|| Error::Internal(format!("unknown field {n}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let range = ranges.get(&fname).map(|r| lookup(r)).transpose()?;
        let checks = f
            .attr(abi::STATUS_CHECKS)
            .and_then(|a| a.as_array())
            .unwrap_or_default()
            .into_iter()
            .map(|c| abi::Check::from_attr(c).ok_or_else(|| Error::Internal(format!("task {fname}: malformed check {c}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let code = if cpu { Some(lookup(&fname)?) } else { None };
        let serial = if cpu { engine.packed(&format!("{fname}{}", abi::SERIAL_SUFFIX)) } else { None };
        let work = f.attr(abi::TASK_WORK).and_then(|a| a.as_int()).unwrap_or(1).max(1);
        let atomics = f.attr(abi::TASK_ATOMICS).and_then(|a| a.as_int()).unwrap_or(0).max(0);
        let band = f.attr(abi::TASK_BAND).and_then(|a| a.as_int()).filter(|b| *b >= 0);
        let positions: Vec<i64> = f.attr(abi::TASK_PRIVATE).and_then(|a| a.as_array()).unwrap_or_default().into_iter().filter_map(|p| p.as_int()).collect();
        let private = private_targets(&positions, &field_idx, fields);
        let block_list = f.attr(ds_lowering::sparse::BLOCK_LIST).and_then(|a| a.as_string()).map(|tree| BlockList {
            tree,
            per_block: f.attr(abi::TASK_CELLS).and_then(|a| a.as_int()).unwrap_or(1).max(1),
        });
        let task = Task { name: fname, code, serial, work, atomics, band, private, range, block_list, fields: field_idx, checks };
        tasks.push((kernel, index, task));
    }
    tasks.sort_by_key(|(k, i, _)| (k.clone(), *i));
    for (kernel, _, task) in tasks {
        kernels
            .get_mut(&kernel)
            .ok_or_else(|| Error::Internal(format!("task of unknown kernel {kernel}")))?
            .tasks
            .push(task);
    }
    Ok(())
}
