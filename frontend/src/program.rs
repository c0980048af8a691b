//! Programs built from Rust: declare fields, add kernels, compile once, launch.

use crate::builder::{KernelDef, Ty};
use crate::field::{FieldDecl, MatrixField, Scalar, ScalarField, VectorField};
use ds_runtime::tape::device::Device;
use ds_runtime::{Arg, CompileOptions, Error};

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

    /// Declares ds field `name` for elements of `components` (the trailing
    /// dimensions) at each index of `shape`.
    fn declare(&mut self, name: &str, ty: Ty, shape: &[usize], components: &[usize], grad: bool) -> FieldDecl {
        let decl = FieldDecl { name: name.into(), ty, shape: [shape, components].concat(), component_dims: components.len(), grad };
        self.fields.push(decl.clone());
        decl
    }

    /// A field of scalars of type `T` (f32, f64, i32) with `shape`; with
    /// `grad`, also its adjoint field `NAME_grad`.
    pub fn scalar<T: Scalar>(&mut self, name: &str, shape: &[usize], grad: bool) -> ScalarField {
        ScalarField(self.declare(name, T::TY, shape, &[], grad))
    }

    /// A field of `N`-vectors of `T` (the ds field `[shape..., N]`).
    pub fn vector<T: Scalar, const N: usize>(&mut self, name: &str, shape: &[usize], grad: bool) -> VectorField<N> {
        VectorField(self.declare(name, T::TY, shape, &[N], grad))
    }

    /// A field of `R` x `C` matrices of `T` (the ds field `[shape..., R, C]`).
    pub fn matrix<T: Scalar, const R: usize, const C: usize>(
        &mut self,
        name: &str,
        shape: &[usize],
        grad: bool,
    ) -> MatrixField<R, C> {
        MatrixField(self.declare(name, T::TY, shape, &[R, C], grad))
    }

    /// Adds a kernel built by a `#[kernel]` function; the handle launches it
    /// and its gradient once the program is built.
    pub fn kernel(&mut self, built: Result<KernelDef, String>) -> Kernel {
        match built {
            Ok(k) => {
                let name = k.name.clone();
                self.kernels.push(k);
                Kernel { name }
            }
            Err(e) => {
                let name = e.split(':').next().unwrap_or_default().trim_start_matches("kernel ").to_string();
                self.errors.push(e);
                Kernel { name }
            }
        }
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
        self.check()?;
        ds_runtime::Program::with_options(&self.source(), "<diffsim program>", &Self::options())
    }

    /// Compiles every kernel and its gradient for GPU 0 (PTX through the CUDA
    /// driver); a clear error on a machine without one.
    pub fn build_cuda(&self) -> Result<ds_runtime::cuda::CudaProgram, Error> {
        self.check()?;
        ds_runtime::cuda::CudaProgram::new(&self.source(), "<diffsim program>", &Self::options())
    }

    fn options() -> CompileOptions {
        CompileOptions { autodiff: true, ..Default::default() }
    }

    fn check(&self) -> Result<(), Error> {
        if self.errors.is_empty() { Ok(()) } else { Err(Error::Launch(self.errors.join("\n"))) }
    }
}

/// A kernel of a built program, launched like a function of its scalar arguments.
#[derive(Clone, Debug)]
pub struct Kernel {
    name: String,
}

impl Kernel {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Runs the kernel (on a CPU `Program` or a `CudaProgram`).
    pub fn launch<D: Device>(&self, program: &mut D, args: &[Arg]) -> Result<(), Error> {
        program.launch(&self.name, args)
    }
    /// Runs the generated gradient kernel (after the kernel, with the output
    /// adjoints set).
    pub fn grad<D: Device>(&self, program: &mut D, args: &[Arg]) -> Result<(), Error> {
        program.launch(&format!("{}_grad", self.name), args)
    }
    /// Runs the kernel and records it on `tape`.
    pub fn record<D: Device>(&self, tape: &mut ds_runtime::Tape<D>, program: &mut D, args: &[Arg]) -> Result<(), Error> {
        tape.launch(program, &self.name, args)
    }
}
