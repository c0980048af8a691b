//! Lowering of the ds dialect to what upstream MLIR compiles: task functions
//! and scf/memref for the CPU (then LLVM), GPU kernels (then NVVM and PTX),
//! the named pipelines that chain them, and the pipeline parser shared by
//! ds-opt and the runtime.

pub mod abi;
pub mod ds_to_gpu;
pub mod ds_to_scf;
pub mod parallel_cpu;
pub mod pipeline;

use ds_passes::PassInfo;
use pipeline::NamedPipeline;

/// The passes of this crate.
pub static REGISTRY: &[&PassInfo] = &[&parallel_cpu::PASS, &ds_to_scf::PASS, &ds_to_gpu::PASS];


/// Kernels to task functions over memrefs (shared by the CPU and GPU paths).
macro_rules! to_tasks {
    () => {
        "ds-lower-parallel-cpu, convert-ds-to-scf, canonicalize, cse"
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
/// The steps from task functions (or host code) to the LLVM dialect.
pub const CPU_TO_LLVM: &str = cpu_to_llvm!();
/// The steps from the gpu.module to a gpu.binary holding PTX for `chip`,
/// linking libdevice when `libdevice` is a path ("" for none).
pub fn gpu_to_ptx(chip: &str, libdevice: &str) -> String {
    gpu_to_ptx!().replace("$chip", chip).replace("$libdevice", libdevice)
}

/// `ds-to-llvm-cpu`: a verified ds module to the LLVM dialect, ready for the JIT.
pub static DS_TO_LLVM_CPU: NamedPipeline = NamedPipeline {
    name: "ds-to-llvm-cpu",
    summary: "ds-verify, ds-lower-parallel-cpu, convert-ds-to-scf, canonicalize, cse, then scf/memref/math to LLVM",
    elements: concat!("ds-verify, ", to_tasks!(), ", ", cpu_to_llvm!()),
    options: &[],
};

/// `ds-to-nvvm{chip=sm_90 libdevice=PATH}`: a verified ds module to PTX for
/// NVIDIA GPUs (a `gpu.binary` holding it); the range functions stay on the
/// host. Math functions need libdevice (`nvvm/libdevice/libdevice.10.bc`).
pub static DS_TO_NVVM: NamedPipeline = NamedPipeline {
    name: "ds-to-nvvm",
    summary: "ds-verify ... convert-ds-to-gpu, then NVVM and PTX (options: chip=sm_90, libdevice=PATH)",
    elements: concat!("ds-verify, ", to_tasks!(), ", convert-ds-to-gpu, ", gpu_to_ptx!()),
    options: &[("chip", "sm_90"), ("libdevice", "")],
};

/// Named pipelines, usable as one element of any pipeline.
pub static PIPELINES: &[&NamedPipeline] = &[&DS_TO_LLVM_CPU, &DS_TO_NVVM];
