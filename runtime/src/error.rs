//! Runtime errors. Every error names what failed (kernel, field, index,
//! source location) and never leaves memory corrupted.

use ds_dialects::diag::Diagnostic;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The module did not parse, verify or lower; the diagnostics say where.
    Compile(Vec<Diagnostic>),
    /// A launch with the wrong kernel name or arguments.
    Launch(String),
    /// A run-time check failed inside a kernel (bounds, assertion, AD stack).
    Check { kernel: String, message: String },
    /// Host access to a field with the wrong type, shape or index.
    Field(String),
    /// The CUDA driver, device or toolchain is missing or failed.
    Cuda(String),
    /// A bug in DiffSim itself.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Compile(diags) => {
                let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
                write!(f, "{}", lines.join("\n"))
            }
            Error::Launch(m) | Error::Field(m) => f.write_str(m),
            Error::Cuda(m) => write!(f, "CUDA: {m}"),
            Error::Check { kernel, message } => write!(f, "kernel {kernel}: {message}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}
