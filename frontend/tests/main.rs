//! The frontend test binary.

mod compile_fail;
mod constructs;
mod diagnostics;
mod errors;
mod exits;
mod fields;
mod layouts;
mod linalg;
mod locations;
mod record;
mod sparse;
