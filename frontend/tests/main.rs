//! The frontend test binary.

mod compile_fail;
mod constructs;
mod paper;
