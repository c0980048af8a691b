//! `diffsim._diffsim`: the Rust half of DiffSim's Python package.
//!
//! The Python package (`python/diffsim/`) walks a kernel function's `ast`
//! and calls [`builder`]'s functions, which build the kernel's ds-dialect
//! ops through the Rust frontend's builder (`diffsim::builder`): the same
//! emitter as `#[kernel]`. Values are [`builder::PyExpr`] handles with
//! Python operators. [`runtime`] compiles the fields and kernels into a
//! `ds_runtime::Program` (or a `CudaProgram`), launches kernels with
//! arguments checked against their annotations, records launches on a
//! `ds_runtime::Tape` and gives fields to numpy, copied or as zero-copy views.

mod builder;
mod errors;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
fn _diffsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    builder::register(m)?;
    runtime::register(m)?;
    Ok(())
}
