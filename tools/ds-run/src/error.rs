//! ds-run's errors: the runtime's typed [`ds_runtime::Error`] (module
//! diagnostics with `file:line:col`, launches, the Tape) with the command-line
//! argument it came from, and the errors of the command line itself (bad
//! syntax with its column, .npy files that do not fit their field, file I/O
//! with the path). None of them is a panic; each is exit status 1.

use ds_runtime::ElemType;
use std::fmt;

/// Where in the command line an error is: a flag, its value, and a column
/// (1-based, in the value) when one character is to blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgAt {
    pub flag: &'static str,
    pub value: String,
    pub column: Option<usize>,
}

impl ArgAt {
    pub fn new(flag: &'static str, value: &str) -> ArgAt {
        ArgAt { flag, value: value.to_string(), column: None }
    }

    pub fn at(flag: &'static str, value: &str, column: usize) -> ArgAt {
        ArgAt { flag, value: value.to_string(), column: Some(column) }
    }
}

impl fmt::Display for ArgAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.flag, self.value)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        Ok(())
    }
}

/// A caret under `column` of the value, for messages about one character.
fn caret(at: &ArgAt) -> String {
    match at.column {
        Some(c) => format!("\n    {}\n    {}^", at.value, " ".repeat(c.saturating_sub(1))),
        None => String::new(),
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An unknown option, a missing value, no input file.
    #[error("{0}\n{usage}", usage = crate::cli::USAGE)]
    Usage(String),
    /// A value that does not parse (`--launch 'k(1,'`, `--for t=1..x`).
    #[error("{at}: {message}{}", caret(at))]
    Syntax { at: ArgAt, message: String },
    /// A scalar argument that does not fit the kernel parameter's type.
    #[error("{at}: argument {index} of kernel {kernel} is {expected:?}, given `{given}`{}", caret(at))]
    Argument { at: ArgAt, kernel: String, index: usize, expected: ds_runtime::compile::ParamType, given: String },
    /// A runtime error caused by one argument: an unknown kernel or field, a
    /// wrong number of arguments, a field without a gradient, a launch that
    /// failed (out of bounds, an assertion) at `iteration` of its loop.
    #[error("{at}{}: {source}", iteration.as_ref().map(|(v, i)| format!(" ({v} = {i})")).unwrap_or_default())]
    Arg {
        at: ArgAt,
        iteration: Option<(String, i64)>,
        #[source]
        source: Box<ds_runtime::Error>,
    },
    /// The .npy file's element type is not the field's.
    #[error("--field {field}={path}: the file holds {found} elements, field @{field} holds {expected} (save it as {} with numpy)", npy_type(*expected))]
    NpyDtype { field: String, path: String, found: String, expected: ElemType },
    /// The .npy file's shape is not the field's.
    #[error("--field {field}={path}: the file's shape is {found:?}, field @{field} has shape {expected:?}")]
    NpyShape { field: String, path: String, found: Vec<u64>, expected: Vec<usize> },
    /// Not a readable .npy file.
    #[error("{path}: not a .npy file this tool reads: {message}")]
    Npy { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `--pass-pipeline` is malformed or names an unknown pass.
    #[error("--pass-pipeline: {0}")]
    Pipeline(String),
    /// The module did not parse, verify, transform or compile, or the
    /// runtime failed outside any one argument (backward, the GPU).
    #[error(transparent)]
    Runtime(Box<ds_runtime::Error>),
}

impl From<ds_runtime::Error> for Error {
    fn from(e: ds_runtime::Error) -> Error {
        Error::Runtime(Box::new(e))
    }
}

fn npy_type(e: ElemType) -> &'static str {
    match e {
        ElemType::F32 => "numpy.float32",
        ElemType::F64 => "numpy.float64",
        ElemType::I32 => "numpy.int32",
    }
}

impl Error {
    /// The error as ds-run prints it: module diagnostics as they are
    /// (`file:line:col: error: ...`), everything else after `ds-run: error: `.
    pub fn render(&self) -> String {
        match self {
            Error::Runtime(e) if matches!(**e, ds_runtime::Error::Compile(_)) => format!("{self}\n"),
            _ => format!("ds-run: error: {self}\n"),
        }
    }
}
