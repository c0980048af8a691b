//! The runtime test binary: kernels against plain Rust references.

mod autodiff;
mod cuda;
mod kernels;
mod tape;
