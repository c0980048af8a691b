//! DiffSim's typed errors as Python exceptions: each `ds_runtime::Error`
//! variant becomes the built-in exception a Python user expects (a wrong
//! argument type a `TypeError`, an index out of bounds an `IndexError`, a
//! module that does not compile a `ValueError` ...), with the error's message
//! (which names the kernel, field and source location).

use ds_runtime::Error;
use pyo3::PyErr;
use pyo3::exceptions::{PyAssertionError, PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};

pub fn py_err(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Compile(_)
        | Error::Build { .. }
        | Error::UnknownKernel { .. }
        | Error::UnknownField { .. }
        | Error::Duplicate { .. }
        | Error::FieldTooLarge { .. }
        | Error::Layout { .. }
        | Error::ForeignField { .. }
        | Error::Length { .. }
        | Error::InvalidTarget(_) => PyValueError::new_err(message),
        Error::Arity { .. } | Error::ArgumentType { .. } | Error::ElementType { .. } | Error::TooManyArguments { .. } => {
            PyTypeError::new_err(message)
        }
        Error::OutOfBounds { .. } | Error::HostIndex { .. } | Error::RangeTooLarge { .. } => PyIndexError::new_err(message),
        Error::Assertion { .. } => PyAssertionError::new_err(message),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}
