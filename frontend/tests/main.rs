//! The frontend test binary.

mod constructs;
