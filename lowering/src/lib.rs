//! Lowering of the ds dialect to what upstream MLIR compiles: task functions
//! and scf/memref for the CPU (then LLVM), GPU kernels (then NVVM and PTX),
//! the named pipelines that chain them, and the pipeline parser shared by
//! ds-opt and the runtime.

pub mod abi;
pub mod ds_to_gpu;
pub mod ds_to_scf;
pub mod parallel_cpu;
pub mod pipeline;
pub mod sparse;

use ds_dialects::ir::Op;
use ds_dialects::ops::DsOp;
use ds_passes::PassInfo;
use pipeline::{NamedPipeline, PipelineOption};

/// The passes of this crate.
pub static REGISTRY: &[&PassInfo] = &[&parallel_cpu::PASS, &ds_to_scf::PASS, &ds_to_gpu::PASS];

/// The legality check at the end of a lowering: every ds op is gone. Each
/// one left is a located error naming it (and `after`, the pass), so a module
/// the lowering could not handle never reaches LLVM translation.
pub fn no_ds_ops_left(module: Op, after: &str) -> bool {
    let left: Vec<Op> = module.walk().into_iter().filter(|op| DsOp::of(*op).is_some()).collect();
    for op in &left {
        op.ctx().emit_error(op.loc(), &format!("{} is left after {after}: it cannot be lowered", op.name()));
    }
    left.is_empty()
}


/// Kernels to task functions over memrefs (shared by the CPU and GPU paths).
macro_rules! to_tasks {
    () => {
        "ds-lower-parallel-cpu, convert-ds-to-scf, canonicalize, cse"
    };
}

/// The CPU's steps from kernels to task functions: stencil updates made
/// gathers first (`ds-gather-updates`; the GPU runs a thread per element).
macro_rules! cpu_tasks {
    () => {
        concat!("ds-gather-updates, ", to_tasks!())
    };
}

/// scf/memref/arith/math to the LLVM dialect; field memrefs become bare
/// pointers (their shapes are static).
macro_rules! cpu_to_llvm {
    () => {
        "convert-scf-to-cf, convert-math-to-llvm, convert-math-to-libm, expand-strided-metadata, \
finalize-memref-to-llvm, convert-arith-to-llvm, convert-index-to-llvm, convert-cf-to-llvm, \
convert-func-to-llvm{use-bare-ptr-memref-call-conv=1}, reconcile-unrealized-casts"
    };
}

/// gpu.module kernels to NVVM and PTX (`$chip`, `$libdevice` from the options).
macro_rules! gpu_to_ptx {
    () => {
        "nvvm-attach-target{chip=$chip O=3 l=$libdevice}, \
gpu.module(convert-scf-to-cf, convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=1}, reconcile-unrealized-casts), \
gpu-module-to-binary{format=isa}"
    };
}

/// The steps from kernels to task functions.
pub const TO_TASKS: &str = to_tasks!();
/// The same on the CPU, with `ds-gather-updates` first.
pub const CPU_TASKS: &str = cpu_tasks!();
/// The steps from task functions (or host code) to the LLVM dialect.
pub const CPU_TO_LLVM: &str = cpu_to_llvm!();
/// The steps from the gpu.module to a gpu.binary holding PTX for `chip`,
/// linking libdevice when `libdevice` is a path ("" for none).
pub fn gpu_to_ptx(chip: &str, libdevice: &str) -> Result<String, String> {
    check_chip(chip).map_err(|e| format!("chip {chip:?}: {e}"))?;
    check_libdevice(libdevice).map_err(|e| format!("libdevice {libdevice:?}: {e}"))?;
    Ok(gpu_to_ptx!().replace("$chip", chip).replace("$libdevice", libdevice))
}

/// A compute capability as NVVM names it: `sm_` and digits, maybe a suffix letter (`sm_90a`).
fn check_chip(chip: &str) -> Result<(), String> {
    let digits = chip.strip_prefix("sm_").map(|d| d.strip_suffix(|c: char| c.is_ascii_lowercase()).unwrap_or(d));
    match digits {
        Some(d) if !d.is_empty() && d.len() <= 4 && d.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("expected a compute capability such as sm_90".into()),
    }
}

/// Empty, or the path of an existing file that pipeline text can hold.
fn check_libdevice(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    if path.contains(|c: char| c.is_whitespace() || "{},()\"'".contains(c)) {
        return Err("the path may not contain spaces, quotes, braces, parentheses or commas".into());
    }
    if !std::path::Path::new(path).is_file() {
        return Err("no such file".into());
    }
    Ok(())
}

/// `ds-to-llvm-cpu`: a verified ds module to the LLVM dialect, ready for the JIT.
pub static DS_TO_LLVM_CPU: NamedPipeline = NamedPipeline {
    name: "ds-to-llvm-cpu",
    summary: "ds-verify, ds-gather-updates, ds-lower-parallel-cpu, convert-ds-to-scf, canonicalize, cse, then scf/memref/math to LLVM",
    elements: concat!("ds-verify, ", cpu_tasks!(), ", ", cpu_to_llvm!()),
    options: &[],
};

/// `ds-to-nvvm{chip=sm_90 libdevice=PATH}`: a verified ds module to PTX for
/// NVIDIA GPUs (a `gpu.binary` holding it); the range functions stay on the
/// host. Math functions need libdevice (`nvvm/libdevice/libdevice.10.bc`).
pub static DS_TO_NVVM: NamedPipeline = NamedPipeline {
    name: "ds-to-nvvm",
    summary: "ds-verify ... convert-ds-to-gpu, then NVVM and PTX (options: chip=sm_90, libdevice=PATH)",
    elements: concat!("ds-verify, ", to_tasks!(), ", convert-ds-to-gpu, ", gpu_to_ptx!()),
    options: &[
        PipelineOption { name: "chip", default: "sm_90", check: check_chip },
        PipelineOption { name: "libdevice", default: "", check: check_libdevice },
    ],
};

/// Named pipelines, usable as one element of any pipeline.
pub static PIPELINES: &[&NamedPipeline] = &[&DS_TO_LLVM_CPU, &DS_TO_NVVM];
