//! Lowering of the ds dialect to what upstream MLIR compiles: scf/memref for the
//! CPU (then LLVM), gpu for NVIDIA GPUs (then NVVM and PTX), plus the named
//! pipelines that chain them, and the pipeline parser shared by ds-opt and the
//! runtime.

pub mod pipeline;

use ds_passes::PassInfo;
use pipeline::NamedPipeline;

/// The passes of this crate.
pub static REGISTRY: &[&PassInfo] = &[];

/// Named pipelines, usable as one element of any pipeline.
pub static PIPELINES: &[&NamedPipeline] = &[];
