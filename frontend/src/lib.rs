//! DiffSim's Rust frontend: write kernels as Rust functions with `#[kernel]`,
//! declare fields, build a program, launch kernels and their gradients.
//!
//! ```ignore
//! use diffsim::prelude::*;
//!
//! #[kernel]
//! fn scale(x: &VectorField<f32, 2, 1>, y: &ScalarField<f32, 1>, a: f32) {
//!     for i in 0..16usize {
//!         y[(i,)] = x[(i,)].norm() * a;
//!     }
//! }
//!
//! let mut pb = ProgramBuilder::new();
//! let x: GradField<[f32; 2], 1> = pb.field_with_grad("x", [16]); // ds fields x[16, 2] and x_grad
//! let y: GradField<f32, 1> = pb.field_with_grad("y", [16]);
//! let scale: Kernel<f32> = pb.kernel(scale(&x, &y))?;
//! let mut program = pb.build()?; // compiles every kernel and its gradient
//! x.set(&mut program, [3], [1.0, 2.0])?;
//! scale.launch(&mut program, 2.0)?;
//! y.grad().fill(&mut program, 1.0)?;
//! scale.grad(&mut program, 2.0)?;
//! let dx: [f32; 2] = x.grad().get(&program, [3])?;
//! ```
//!
//! Modules: [`builder`] (the IR builder kernel code runs on), [`value`]
//! (scalars, vectors, matrices), [`linalg`] (polar decompositions and SVDs
//! of 2x2 and 3x3 matrices), [`field`] (typed field handles in kernels and
//! on the host), [`layout`] (AoS/SoA, fields placed together), [`program`]
//! (declaring, building, launching), [`record`]
//! (recording launches for backward). How the macro
//! compiles Rust: see `diffsim-macros`. Kernel code runs once, when the kernel
//! is built, and emits ds-dialect IR; values are [`Expr`]s.

pub mod builder;
pub mod field;
pub mod layout;
pub mod linalg;
pub mod program;
pub mod record;
pub mod value;

pub use builder::{Expr, Ty};
pub use diffsim_macros::{func, kernel};
pub use ds_runtime::cuda::CudaProgram;
pub use ds_runtime::tape::checkpoint::{Binomial, Periodic, Policy, StoreAll};
pub use ds_runtime::tape::diagnose::{DiagnoseOptions, Direction, GradientReport, Growth, Switch};
pub use ds_runtime::tape::{BackwardOptions, Plan};
pub use ds_runtime::{Backend, Error, Location, Program};
pub use field::{ElementKind, Field, GradField, MatrixField, Scalar, ScalarField, VectorField};
pub use layout::Layout;
pub use program::{Kernel, KernelArgs, KernelDef, Param, ProgramBuilder};
pub use record::{Record, Recording, along};
pub use value::{Mat2, Mat3, Matrix, Vec2, Vec3, Vec4, Vector};

/// What kernels and programs need in scope.
pub mod prelude {
    pub use crate::field::{activate, append, deactivate, is_active, length};
    pub use crate::value::{max, min, random, select, stop_grad};
    pub use crate::{
        BackwardOptions, Backend, CudaProgram, Error, Expr, Field, GradField, Kernel, Layout, Mat2, Mat3, Matrix, MatrixField, Program,
        ProgramBuilder, Record, Recording, ScalarField, Ty, Vec2, Vec3, Vec4, Vector, VectorField, func, kernel,
    };
}

/// Used by the code `#[kernel]` generates; not for direct use.
#[doc(hidden)]
pub mod __rt {
    pub use crate::program::kernel_def;
    pub use crate::builder::{Ty, at, branch, branch_value, branch_value_else_first, build_kernel, flag, parallel_for, serial_for};
    pub use crate::field::{Place, atomic_add, atomic_sub, index, indices, load, struct_for};
    pub use crate::value::{and, cast, cast_to_param, eq, ge, gt, le, literal, literal_arm, literal_like, literal_of, lt, ne, not, or};
}
