//! Lowering of the ds dialect to what upstream MLIR compiles: task functions
//! and scf/memref for the CPU (then LLVM), plus the named pipelines that chain
//! them, and the pipeline parser shared by ds-opt and the runtime.

pub mod abi;
pub mod ds_to_scf;
pub mod parallel_cpu;
pub mod pipeline;

use ds_passes::PassInfo;
use pipeline::NamedPipeline;

/// The passes of this crate.
pub static REGISTRY: &[&PassInfo] = &[&parallel_cpu::PASS, &ds_to_scf::PASS];


/// `ds-to-llvm-cpu`: a verified ds module to the LLVM dialect, ready for the
/// JIT; field memrefs become bare pointers (their shapes are static).
pub static DS_TO_LLVM_CPU: NamedPipeline = NamedPipeline {
    name: "ds-to-llvm-cpu",
    summary: "ds-verify, ds-lower-parallel-cpu, convert-ds-to-scf, canonicalize, cse, then scf/memref/math to LLVM",
    elements: "ds-verify, ds-lower-parallel-cpu, convert-ds-to-scf, canonicalize, cse, convert-scf-to-cf, \
convert-math-to-llvm, convert-math-to-libm, expand-strided-metadata, finalize-memref-to-llvm, convert-arith-to-llvm, \
convert-index-to-llvm, convert-cf-to-llvm, convert-func-to-llvm{use-bare-ptr-memref-call-conv=1}, reconcile-unrealized-casts",
};

/// Named pipelines, usable as one element of any pipeline.
pub static PIPELINES: &[&NamedPipeline] = &[&DS_TO_LLVM_CPU];
