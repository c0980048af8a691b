//! Programs built from Rust: declare fields, add kernels, compile once, launch.

use crate::builder::{KernelDef, Ty};
use crate::field::{FieldDecl, Scalar, ScalarField, VectorField};
use ds_runtime::{CompileOptions, Error};

/// Collects field declarations and kernels, then compiles them together.
#[derive(Default)]
pub struct ProgramBuilder {
    fields: Vec<FieldDecl>,
    kernels: Vec<KernelDef>,
    errors: Vec<String>,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn declare(&mut self, name: &str, ty: Ty, shape: Vec<usize>, grad: bool) -> FieldDecl {
        let decl = FieldDecl { name: name.into(), ty, shape, grad };
        self.fields.push(decl.clone());
        decl
    }

    /// A field of scalars of type `T` (f32, f64, i32) with `shape`; with
    /// `grad`, also its adjoint field `NAME_grad`.
    pub fn scalar<T: Scalar>(&mut self, name: &str, shape: &[usize], grad: bool) -> ScalarField {
        ScalarField(self.declare(name, T::TY, shape.to_vec(), grad))
    }

    /// A field of `N`-vectors of `T`.
    pub fn vector<T: Scalar, const N: usize>(&mut self, name: &str, shape: &[usize], grad: bool) -> VectorField<N> {
        let mut full = shape.to_vec();
        full.push(N);
        VectorField(self.declare(name, T::TY, full, grad))
    }

    /// Adds a kernel built by a `#[kernel]` function.
    pub fn kernel(&mut self, built: Result<KernelDef, String>) -> &mut Self {
        match built {
            Ok(k) => self.kernels.push(k),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// The ds module: fields, then kernels.
    pub fn source(&self) -> String {
        let mut s: String = self.fields.iter().map(|f| f.ir()).collect();
        for k in &self.kernels {
            s.push_str(&k.text);
        }
        s
    }

    /// Compiles every kernel and its gradient for the CPU.
    pub fn build(&self) -> Result<ds_runtime::Program, Error> {
        if !self.errors.is_empty() {
            return Err(Error::Launch(self.errors.join("\n")));
        }
        let options = CompileOptions { autodiff: true, ..Default::default() };
        ds_runtime::Program::with_options(&self.source(), "<diffsim program>", &options)
    }
}
