//! The frontend test binary.

mod compile_fail;
mod constructs;
mod exits;
mod fields;
mod locations;
mod paper;
