//! The DiffSim runtime: compiles ds modules through MLIR's JIT, owns field
//! memory, launches kernels on all CPU cores (and on GPUs, [`cuda`]).
//!
//! This is the module-level API: kernels and fields of a ds module by name,
//! arguments as [`Arg`]s checked at launch, as tools and other frontends use
//! it. Rust programs use the `diffsim` crate instead, whose typed handles,
//! kernel signatures and recordings check the same things at compile time.
//! Both run on any [`Backend`]; every failure is an [`Error`] variant.
//!
//! ```no_run
//! use ds_runtime::{Arg, Program};
//! let mut p = Program::new(r#"
//!   "ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>} : () -> ()
//!   func.func @inc(%n: index) attributes {ds.kernel} { ... }"#)?;
//! p.launch("inc", &[Arg::Index(8)])?;
//! let x: Vec<f32> = p.field("x")?.to_vec()?;
//! # Ok::<(), ds_runtime::Error>(())
//! ```

pub mod backend;
pub mod compile;
pub mod cuda;
pub mod error;
pub mod field;
pub mod gradcheck;
mod native;
mod pool;
pub mod profiler;
pub mod program;
pub mod sparse;
pub mod tape;

pub use compile::CompileOptions;
pub use backend::Backend;
pub use error::{Error, Location};
pub use field::{BufferInfo, ElemType, Element, Field, FieldInfo, Placement, Snapshot};
pub use native::counters as memory;
pub use program::{Arg, Program};
pub use sparse::{SparseHost, SparseStats};
pub use tape::{BackwardOptions, Tape};
