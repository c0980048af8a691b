//! Helpers shared by the test modules: the source builders of
//! `ds_runtime::gradcheck` (one copy for every test binary and the benches)
//! and the corpus of `test/kernels`.

pub use ds_runtime::gradcheck::{fields, fields_without_grad, loop_kernel};

/// The kernels of `test/kernels` as (path, text), sorted.
pub fn corpus() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test/kernels");
    ds_runtime::gradcheck::corpus(&dir).unwrap_or_else(|e| panic!("the corpus: {e}"))
}
