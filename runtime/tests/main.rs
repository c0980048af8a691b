//! The runtime test binary: kernels against plain Rust references, gradients
//! against finite differences, the CUDA path up to PTX, the Tape, field layouts.

mod autodiff;
mod common;
mod cuda;
mod errors;
mod hardening;
mod kernels;
mod layout;
mod sparse;
mod tape;
