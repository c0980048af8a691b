//! Errors of DiffSim programs, as one enum a user can match on. Every variant
//! names what failed (kernel, field, index, source location) and none leaves
//! memory corrupted.

use crate::compile::ParamType;
use crate::field::ElemType;
use ds_dialects::diag::Diagnostic;
pub use ds_dialects::ops::AccessKind;
pub use ds_dialects::ir::FileLineCol as Location;
use std::fmt;

/// A location that may be unknown, printed as `file:line:col` or `<unknown>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At(pub Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(l) => write!(f, "{l}"),
            None => f.write_str("<unknown>"),
        }
    }
}

fn lines(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module did not parse, verify or lower; the diagnostics say where.
    #[error("{}", lines(.0))]
    Compile(Vec<Diagnostic>),
    /// A `#[kernel]` function used something the kernel language does not
    /// allow (a type mismatch, a wrong field rank ...), at its Rust location.
    #[error("{}: error: kernel {kernel}: {message}", At(location.clone()))]
    Build { kernel: String, location: Option<Location>, message: String },
    #[error("no kernel `{name}` in this program (kernels: {})", known.join(", "))]
    UnknownKernel { name: String, known: Vec<String> },
    #[error("kernel {kernel} takes {expected} arguments ({params:?}), given {given}")]
    Arity { kernel: String, expected: usize, given: usize, params: Vec<ParamType> },
    #[error("kernel {kernel}: argument {index} is {given}, the parameter is {expected:?}")]
    ArgumentType { kernel: String, index: usize, expected: ParamType, given: String },
    #[error("kernel {kernel}: more than {limit} arguments and fields in one task")]
    TooManyArguments { kernel: String, limit: usize },
    #[error("kernel {kernel} has no gradient kernel (it is `no_grad`, or the program was built without autodiff)")]
    NoGradKernel { kernel: String },
    /// A recorded launch failed when a recording was replayed (forward mode,
    /// gradient diagnostics).
    #[error("in the replay of launch {launch} ({kernel}, step {step}): {source}")]
    InReplay { step: usize, launch: usize, kernel: String, source: Box<Error> },
    /// The gradient of a recorded launch failed during backward.
    #[error("in the gradient of launch {launch} ({kernel}, step {step}): {source}")]
    InBackward { step: usize, launch: usize, kernel: String, source: Box<Error> },
    #[error("kernel {kernel} has no tangent kernel (it is `no_grad`, or the program was built without forward mode)")]
    NoTangentKernel { kernel: String },
    #[error("field @{field} has no dual (tangent) field: build the program in forward mode")]
    NoDual { field: String },
    /// A kernel that draws random numbers launched by hand for its gradient:
    /// only a recording knows the random stream each launch used.
    #[error("kernel {kernel} draws random numbers: differentiate it through a recording (p.record()), which replays each launch's numbers")]
    RandomNeedsRecording { kernel: String },
    #[error("the {what} name `{name}` is declared twice")]
    Duplicate { what: &'static str, name: String },
    /// A parallel loop's range is longer than the backend can run
    /// (`i64::MAX` iterations on the CPU, 2^32 blocks on the GPU).
    #[error("kernel {kernel}: the range [{lo}, {hi}) is too long to run")]
    RangeTooLarge { kernel: String, lo: i64, hi: i64 },
    /// A field whose extents the IR cannot hold (one beyond `i64::MAX`).
    #[error("field @{field}: the shape {shape:?} is too large")]
    FieldTooLarge { field: String, shape: Vec<usize> },
    /// Fields placed together under one layout node that cannot share it
    /// (cell shapes or element sizes that differ, a field placed twice ...).
    #[error("cannot place {} under one layout node: {reason}", fields.iter().map(|f| format!("@{f}")).collect::<Vec<_>>().join(", "))]
    Layout { fields: Vec<String>, reason: String },
    #[error("no field @{name} in this program")]
    UnknownField { name: String },
    /// A field handle used with a program that was not built from its builder.
    #[error("field @{field} (shape {shape:?}) is not a field of this program")]
    ForeignField { field: String, shape: Vec<usize> },
    #[error("field @{field} holds {holds} elements, accessed as {accessed}")]
    ElementType { field: String, holds: ElemType, accessed: ElemType },
    /// Host access with an index outside the field's shape, or of the wrong rank.
    #[error("field @{field} (shape {shape:?}) indexed with {index:?}")]
    HostIndex { field: String, index: Vec<usize>, shape: Vec<usize> },
    #[error("field @{field} has {expected} elements, given {given}")]
    Length { field: String, expected: usize, given: usize },
    /// A kernel indexed a field out of bounds (programs built with bounds checks).
    #[error(
        "{}: kernel {kernel}: {} of @{field}: index {index} out of bounds in dimension {dim} (extent {extent})",
        At(location.clone()),
        access.name()
    )]
    OutOfBounds {
        kernel: String,
        field: String,
        access: AccessKind,
        dim: usize,
        index: i64,
        extent: i64,
        location: Option<Location>,
    },
    /// A write to a sparse field needed a block of a pointer node's pool
    /// and none was left (in a kernel, at its source location, or on the host).
    #[error(
        "{}: {}: writing @{field} needs a new block of pointer node @{node}, whose pool of {capacity} blocks is exhausted (give the node a larger capacity, or deactivate blocks)",
        At(location.clone()),
        kernel.as_deref().map_or("host write".to_string(), |k| format!("kernel {k}"))
    )]
    PoolExhausted { kernel: Option<String>, field: String, node: String, capacity: i64, location: Option<Location> },
    /// A `ds.append` found its list (a dynamic node's block) full.
    #[error("{}: kernel {kernel}: appending to @{field}: a list of dynamic node @{node} is full at {capacity} cells", At(location.clone()))]
    ListFull { kernel: String, field: String, node: String, capacity: i64, location: Option<Location> },
    /// An operation a sparse field does not support (yet), or one that
    /// needs a sparse field given a dense one.
    #[error("field @{field}: {message}")]
    Sparse { field: String, message: String },
    /// A `ds.assert` failed in a kernel (also an autodiff stack overflow).
    #[error("{}: kernel {kernel}: assertion failed: {message}", At(location.clone()))]
    Assertion { kernel: String, message: String, location: Option<Location> },
    /// A launch overwrote a field part that an earlier launch read and whose
    /// gradient needs the old values.
    #[error(
        "cannot run backward: {writer} overwrote @{field} after {reader} read it, and backward needs the old values. Index the field by time step, or give backward a checkpoint policy or a memory budget"
    )]
    Overwrite { reader: String, writer: String, field: String },
    /// Checkpointing needs the state before the recording started, and the
    /// recording was made without keeping it.
    #[error("cannot checkpoint: @{field} is overwritten after being read, and this recording was made without keeping state")]
    StateNotKept { field: String },
    /// A Tape used with a program other than the one it recorded.
    #[error("this tape recorded {launches} launches on another program")]
    ForeignTape { launches: usize },
    #[error("a memory budget of {budget} bytes is too small to checkpoint this recording: the smallest schedule, {smallest}")]
    Budget { budget: usize, smallest: String },
    #[error("cannot run backward: none of the {launches} recorded launches has a gradient")]
    NothingToDifferentiate { launches: usize },
    #[error("field @{field} has no gradient field (declare it with a gradient)")]
    NoGradient { field: String },
    #[error("no CUDA driver (libcuda.so) on this machine: running on a GPU needs an NVIDIA GPU and its driver")]
    NoDriver,
    #[error(
        "the kernels call math functions from libdevice ({}), but no libdevice.10.bc was found: set DS_LIBDEVICE to its path, or CUDA_HOME to a CUDA installation (it lives in nvvm/libdevice/), or install the Python package nvidia-cuda-nvcc-cu12",
        functions.join(", ")
    )]
    NoLibdevice { functions: Vec<String> },
    #[error("out of memory: {what} needs {bytes} bytes")]
    OutOfMemory { what: String, bytes: usize },
    /// A GPU target the compiler cannot produce code for (a malformed chip
    /// name, a libdevice path that is not a file).
    #[error("invalid GPU target: {0}")]
    InvalidTarget(String),
    /// The CUDA driver reported an error.
    #[error("CUDA: {what}: {message}")]
    Cuda { what: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A bug in DiffSim itself.
    #[error("internal error: {0}")]
    Internal(String),
}
