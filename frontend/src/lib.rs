//! DiffSim's Rust frontend: write kernels as Rust functions with `#[kernel]`,
//! declare fields, build a program, launch kernels and their gradients.
//!
//! ```ignore
//! use diffsim::prelude::*;
//!
//! #[kernel]
//! fn scale(x: &ScalarField, y: &ScalarField, a: f32) {
//!     for i in 0..16usize {
//!         y[(i,)] = x[(i,)] * a;
//!     }
//! }
//!
//! let mut pb = ProgramBuilder::new();
//! let x = pb.scalar::<f32>("x", &[16], true);
//! let y = pb.scalar::<f32>("y", &[16], true);
//! let scale = pb.kernel(scale(&x, &y));
//! let mut program = pb.build()?;
//! scale.launch(&mut program, &[Arg::F32(2.0)])?;
//! scale.grad(&mut program, &[Arg::F32(2.0)])?;
//! ```
//!
//! How the macro compiles Rust: see `diffsim-macros`. Kernel code runs once,
//! when the kernel is built, and emits ds-dialect IR; values are [`Expr`]s.

pub mod builder;
pub mod field;
pub mod program;
pub mod value;

pub use builder::{Expr, KernelDef, Ty};
pub use diffsim_macros::{func, kernel};
pub use ds_runtime::{Arg, Error, Program, Tape};
pub use field::{ScalarField, VectorField};
pub use program::{Kernel, ProgramBuilder};
pub use value::{Mat2, Mat3, Matrix, Vec2, Vec3, Vector};

/// What kernels and programs need in scope.
pub mod prelude {
    pub use crate::value::{max, min, select};
    pub use crate::{
        Arg, Expr, Kernel, Mat2, Mat3, Matrix, Program, ProgramBuilder, ScalarField, Tape, Vec2, Vec3, Vector, VectorField, func,
        kernel,
    };
}

/// Used by the code `#[kernel]` generates; not for direct use.
#[doc(hidden)]
pub mod __rt {
    pub use crate::builder::{Ty, at, branch, branch_value, build_kernel, parallel_for, serial_for};
    pub use crate::field::{atomic_add, atomic_sub, index, load, store};
    pub use crate::value::{and, cast_to, eq, ge, gt, le, lt, ne, not, or};
}
