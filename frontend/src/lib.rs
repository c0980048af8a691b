//! DiffSim's Rust frontend: write kernels as Rust functions with `#[kernel]`,
//! declare fields, build a program, launch kernels and their gradients.
//!
//! ```ignore
//! use diffsim::prelude::*;
//!
//! #[kernel]
//! fn scale(x: &VectorField<2>, y: &ScalarField, a: f32) {
//!     for i in 0..16usize {
//!         y[(i,)] = x[(i,)].norm() * a;
//!     }
//! }
//!
//! let mut pb = ProgramBuilder::new();
//! let x = pb.vector::<f32, 2>("x", &[16], true); // ds field x[16, 2] and x_grad
//! let y = pb.scalar::<f32>("y", &[16], true);
//! let scale = pb.kernel(scale(&x, &y));
//! let mut program = pb.build()?; // compiles every kernel and its gradient
//! x.set(&mut program, &[3], [1.0f32, 2.0])?;
//! scale.launch(&mut program, &[Arg::F32(2.0)])?;
//! y.grad().fill(&mut program, 1.0f32)?;
//! scale.grad(&mut program, &[Arg::F32(2.0)])?;
//! let dx: [f32; 2] = x.grad().get(&program, &[3])?;
//! ```
//!
//! Modules: [`builder`] (the IR builder kernel code runs on), [`value`]
//! (scalars, vectors, matrices), [`field`] (field handles in kernels and on
//! the host), [`program`] (declaring, building, launching). How the macro
//! compiles Rust: see `diffsim-macros`. Kernel code runs once, when the kernel
//! is built, and emits ds-dialect IR; values are [`Expr`]s.

pub mod builder;
pub mod field;
pub mod program;
pub mod value;

pub use builder::{Expr, KernelDef, Ty};
pub use diffsim_macros::{func, kernel};
pub use ds_runtime::{Arg, Error, Program, Tape};
pub use field::{Access, HostField, MatrixField, ScalarField, VectorField};
pub use program::{Kernel, ProgramBuilder};
pub use value::{Mat2, Mat3, Matrix, Vec2, Vec3, Vec4, Vector};

/// What kernels and programs need in scope.
pub mod prelude {
    pub use crate::value::{max, min, select};
    pub use crate::{
        Access, Arg, Expr, HostField, Kernel, Mat2, Mat3, Matrix, MatrixField, Program, ProgramBuilder, ScalarField, Tape, Vec2,
        Vec3, Vec4, Vector, VectorField, func, kernel,
    };
}

/// Used by the code `#[kernel]` generates; not for direct use.
#[doc(hidden)]
pub mod __rt {
    pub use crate::builder::{Ty, at, branch, branch_value, build_kernel, flag, parallel_for, serial_for};
    pub use crate::field::{atomic_add, atomic_sub, index, load, store};
    pub use crate::value::{and, cast_to, eq, ge, gt, le, lt, ne, not, or};
}
