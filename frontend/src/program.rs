//! Programs built from Rust: declare typed fields, add kernels, compile once,
//! launch kernels like functions of their scalar arguments.
//!
//! ```ignore
//! let mut pb = ProgramBuilder::new();
//! let x: GradField<[f32; 2], 2> = pb.field_with_grad("x", [STEPS, 3]);
//! let step: Kernel<(usize, f32)> = pb.kernel(step(&x))?;
//! let mut p = pb.build()?;            // or pb.build_cuda()?: the same host code runs on both
//! x.set(&mut p, [0, 1], [0.3, 0.4])?;
//! step.launch(&mut p, (1, 0.01))?;
//! ```

use crate::builder::{BuildError, KernelIr, Ty, dense_decl, field_decl};
use crate::field::{ElementKind, Field, FieldDecl, GradField};
use ds_runtime::cuda::CudaProgram;
use ds_runtime::{Arg, Backend, CompileOptions, Error, Program};
use ds_passes::autodiff::forward::JVP_SUFFIX;
use std::marker::PhantomData;
use std::sync::Arc;

/// A scalar kernel parameter type: `usize` (an index), `i32`, `i64`, `f32`, `f64`, `bool`.
pub trait Param: Copy {
    const TY: Ty;
    fn arg(self) -> Arg;
}

macro_rules! param {
    ($($t:ty => $ty:ident, $arg:expr;)*) => {$(
        impl Param for $t {
            const TY: Ty = Ty::$ty;
            fn arg(self) -> Arg {
                $arg(self)
            }
        }
    )*};
}
param! {
    usize => Index, |v: usize| Arg::Index(v as i64);
    i32 => I32, Arg::I32;
    i64 => I64, Arg::I64;
    f32 => F32, Arg::F32;
    f64 => F64, Arg::F64;
    bool => Bool, Arg::I1;
}

/// The scalar arguments of a kernel: `()`, one [`Param`], or a tuple of them,
/// as `#[kernel]` reads them from the Rust signature.
pub trait KernelArgs: Copy {
    /// The parameter types, in order.
    fn types() -> Vec<Ty>;
    #[doc(hidden)]
    fn args(self) -> Vec<Arg>;
}

impl KernelArgs for () {
    fn types() -> Vec<Ty> {
        vec![]
    }
    fn args(self) -> Vec<Arg> {
        vec![]
    }
}

impl<P: Param> KernelArgs for P {
    fn types() -> Vec<Ty> {
        vec![P::TY]
    }
    fn args(self) -> Vec<Arg> {
        vec![self.arg()]
    }
}

macro_rules! kernel_args_tuple {
    ($($p:ident),+) => {
        impl<$($p: Param),+> KernelArgs for ($($p,)+) {
            fn types() -> Vec<Ty> {
                vec![$($p::TY),+]
            }
            #[allow(non_snake_case)]
            fn args(self) -> Vec<Arg> {
                let ($($p,)+) = self;
                vec![$($p.arg()),+]
            }
        }
    };
}
kernel_args_tuple!(A, B);
kernel_args_tuple!(A, B, C);
kernel_args_tuple!(A, B, C, D);
kernel_args_tuple!(A, B, C, D, E);
kernel_args_tuple!(A, B, C, D, E, F);
kernel_args_tuple!(A, B, C, D, E, F, G);
kernel_args_tuple!(A, B, C, D, E, F, G, H);

/// A built kernel, not yet added to a program; `A` are its scalar arguments.
pub struct KernelDef<A: KernelArgs> {
    ir: KernelIr,
    args: PhantomData<fn(A)>,
}

impl<A: KernelArgs> KernelDef<A> {
    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.ir.name
    }
    /// Its `func.func` in the ds dialect.
    pub fn ir(&self) -> &str {
        &self.ir.text
    }

    /// The same kernel under another name: to add one `#[kernel]` function
    /// built twice (with different build-time arguments) to one program.
    pub fn renamed(mut self, name: &str) -> Result<KernelDef<A>, Error> {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let message = format!("`{name}` is not a kernel name (letters, digits and _, not starting with a digit)");
            return Err(Error::Build { kernel: self.ir.name, location: None, message });
        }
        // The printed function starts with its own symbol, and nothing in it refers to it.
        self.ir.text = self.ir.text.replacen(&format!("func.func @{}(", self.ir.name), &format!("func.func @{name}("), 1);
        self.ir.name = name.into();
        Ok(self)
    }
}

/// The result of a `#[kernel]` function (used by the code the macro generates).
#[doc(hidden)]
pub fn kernel_def<A: KernelArgs>(built: Result<KernelIr, BuildError>) -> Result<KernelDef<A>, Error> {
    let ir = built.map_err(|e| Error::Build { kernel: e.kernel, location: e.location, message: e.message })?;
    debug_assert_eq!(ir.params, A::types(), "the macro's argument type follows the signature");
    Ok(KernelDef { ir, args: PhantomData })
}

/// What [`ProgramBuilder::kernel`] takes: a kernel, or the result of building one.
pub trait IntoKernelDef<A: KernelArgs> {
    fn into_kernel_def(self) -> Result<KernelDef<A>, Error>;
}

impl<A: KernelArgs> IntoKernelDef<A> for KernelDef<A> {
    fn into_kernel_def(self) -> Result<KernelDef<A>, Error> {
        Ok(self)
    }
}

impl<A: KernelArgs> IntoKernelDef<A> for Result<KernelDef<A>, Error> {
    fn into_kernel_def(self) -> Result<KernelDef<A>, Error> {
        self
    }
}

/// A kernel of a program, launched like a function of its scalar arguments `A`
/// (`()`, one value, or a tuple).
pub struct Kernel<A: KernelArgs> {
    name: Arc<str>,
    grad: Option<Arc<str>>,
    /// Draws random numbers: takes the program's next random stream.
    random: bool,
    args: PhantomData<fn(A)>,
}

impl<A: KernelArgs> Clone for Kernel<A> {
    fn clone(&self) -> Self {
        Kernel { name: self.name.clone(), grad: self.grad.clone(), random: self.random, args: PhantomData }
    }
}

impl<A: KernelArgs> std::fmt::Debug for Kernel<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernel({})", self.name)
    }
}

impl<A: KernelArgs> Kernel<A> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the kernel (on a CPU `Program` or a `CudaProgram`).
    pub fn launch<B: Backend>(&self, program: &mut B, args: A) -> Result<(), Error> {
        self.check_tangent(program)?;
        let args = self.launch_args(program, args);
        program.launch(&self.name, &args)
    }

    /// A tangent kernel's handle in a program without it: a typed error.
    pub(crate) fn check_tangent<B: Backend>(&self, program: &B) -> Result<(), Error> {
        match self.name.strip_suffix(JVP_SUFFIX) {
            Some(primal) if program.kernel_info(&self.name).is_err() => Err(Error::NoTangentKernel { kernel: primal.into() }),
            _ => Ok(()),
        }
    }

    /// The tangent kernel `k_jvp` (forward mode: the kernel's work plus the
    /// tangents of what it writes, in the dual fields): launched or recorded
    /// like any kernel. Its launches fail with [`Error::NoTangentKernel`] in
    /// a program built without [`ProgramBuilder::forward_mode`]. Recorded,
    /// its gradient is the tangent of the kernel's gradient, so backward
    /// gives the adjoints and their tangents (Hessian-vector products).
    pub fn tangent(&self) -> Kernel<A> {
        Kernel { name: format!("{}{}", self.name, JVP_SUFFIX).into(), grad: None, random: self.random, args: PhantomData }
    }

    /// Runs the generated gradient kernel (after the kernel, with the output
    /// adjoints set). A kernel drawing random numbers differentiates only
    /// through a recording, which knows the numbers each launch drew.
    pub fn grad<B: Backend>(&self, program: &mut B, args: A) -> Result<(), Error> {
        let grad = self.grad.as_deref().ok_or_else(|| Error::NoGradKernel { kernel: self.name.to_string() })?;
        if self.random {
            return Err(Error::RandomNeedsRecording { kernel: self.name.to_string() });
        }
        program.launch(grad, &args.args())
    }

    /// The arguments of a launch: the scalar ones, then the random stream
    /// for a kernel that draws random numbers.
    pub(crate) fn launch_args<B: Backend>(&self, program: &mut B, args: A) -> Vec<Arg> {
        let mut all = args.args();
        if self.random {
            all.push(Arg::I64(program.next_random_stream()));
        }
        all
    }
}

/// Collects typed field declarations and kernels, then compiles them together.
#[derive(Default)]
pub struct ProgramBuilder {
    /// The fields in program order (an adjoint right after its field).
    pub(crate) fields: Vec<FieldEntry>,
    /// The dense layout nodes fields are placed under (see [`crate::layout`]).
    pub(crate) nodes: Vec<NodeEntry>,
    kernels: Vec<KernelIr>,
    /// The first mistake made declaring fields (reported by `build`).
    declaration_error: Option<DeclarationError>,
    options: CompileOptions,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        ProgramBuilder { options: CompileOptions { autodiff: true, ..Default::default() }, ..Default::default() }
    }

    /// Turns off the run-time check of every field index in kernels. With
    /// checks (the default) an index out of bounds fails the launch with
    /// [`Error::OutOfBounds`] (kernel, field, index, extent, location);
    /// without, it reads or writes outside the field's memory: for programs
    /// whose indices are known to be in bounds, when the checks' cost
    /// matters (`ds-bench bounds` measures it).
    pub fn unchecked(&mut self) -> &mut Self {
        self.options.check_bounds = false;
        self
    }

    /// Also generates forward mode: every float field gets a dual field
    /// (`NAME_dot`, [`Field::dual`]), and every kernel a tangent kernel
    /// ([`Kernel::tangent`]); gradient kernels get theirs too, for
    /// Hessian-vector products through a recording. Costs a second copy of
    /// every float field.
    pub fn forward_mode(&mut self) -> &mut Self {
        self.options.forward_mode = true;
        self
    }

    /// Checks every adjoint and tangent for NaN and infinity as the
    /// generated kernels compute them: the first non-finite one fails its
    /// launch with [`Error::Assertion`] at the Rust line of the op that made
    /// it (in backward wrapped in [`Error::InBackward`], naming the step).
    /// For finding where a gradient breaks; each check costs a compare.
    pub fn check_finite(&mut self) -> &mut Self {
        self.options.check_finite = true;
        self
    }

    /// Builds for gradient diagnostics (`Recording::diagnose`): forward mode,
    /// finite checks ([`ProgramBuilder::check_finite`]), and in the tangent
    /// kernels the distance along the tangent at which each comparison
    /// switches (one `ds_switch_N` field per comparison).
    pub fn gradient_diagnostics(&mut self) -> &mut Self {
        self.forward_mode().check_finite();
        self.options.switches = true;
        self
    }

    /// Keeps IEEE float semantics: without it (the default, as Taichi's
    /// `fast_math=True`) `ds-simplify` folds `x * 0` to 0, `x * 1` and
    /// `x + 0` to x and constants into one before differentiating, so a term
    /// with a zero coefficient costs nothing, in the kernel or its gradient.
    /// With it, `0 * inf` stays NaN and every written op runs.
    pub fn strict_math(&mut self) -> &mut Self {
        self.options.fast_math = false;
        self
    }

    #[track_caller]
    fn declare<V: ElementKind, const D: usize>(&mut self, name: &str, shape: [usize; D], grad: Option<&str>) -> Field<V, D> {
        let mistake = if self.fields.iter().any(|f| f.name == name) {
            Some(DeclarationError::Duplicate(name.into()))
        } else if shape.iter().chain(V::COMPONENTS).any(|&d| i64::try_from(d).is_err()) {
            Some(DeclarationError::TooLarge(name.into(), shape.to_vec()))
        } else {
            None
        };
        self.mistake(mistake);
        let decl = FieldDecl {
            name: name.into(),
            ty: <V::Scalar as Param>::TY,
            shape: shape.to_vec(),
            components: V::COMPONENTS,
            position: self.fields.len(),
            dual_of: None,
        };
        self.fields.push(FieldEntry {
            name: name.into(),
            ty: decl.ty,
            ds_shape: decl.ds_shape(),
            grad: grad.map(Into::into),
            layout: None,
            at: std::panic::Location::caller(),
        });
        Field::new(decl)
    }

    /// Keeps the first mistake for `build` to report.
    pub(crate) fn mistake(&mut self, mistake: Option<DeclarationError>) {
        if self.declaration_error.is_none() {
            self.declaration_error = mistake;
        }
    }

    /// A field of elements `V` (`f32`, `[f32; 2]`, `[[f64; 3]; 3]` ...) with
    /// `shape`, without a gradient.
    #[track_caller]
    pub fn field<V: ElementKind, const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Field<V, D> {
        self.declare(name, shape, None)
    }

    /// A field with its adjoint field (`NAME_grad`), for gradients.
    #[track_caller]
    pub fn field_with_grad<V: ElementKind, const D: usize>(&mut self, name: &str, shape: [usize; D]) -> GradField<V, D> {
        let grad_name = format!("{name}_grad");
        let field = self.declare(name, shape, Some(&grad_name));
        let grad = self.declare(&grad_name, shape, None);
        GradField::new(field, grad)
    }

    /// Adds a kernel built by a `#[kernel]` function; the handle launches it
    /// and its gradient once the program is built. A kernel that failed to
    /// build fails here, with its Rust location.
    pub fn kernel<A: KernelArgs>(&mut self, def: impl IntoKernelDef<A>) -> Result<Kernel<A>, Error> {
        let ir = def.into_kernel_def()?.ir;
        if self.kernels.iter().any(|k| k.name == ir.name) {
            return Err(Error::Duplicate { what: "kernel", name: ir.name });
        }
        let name: Arc<str> = ir.name.as_str().into();
        let grad = (self.options.autodiff && !ir.no_grad).then(|| format!("{name}_grad").into());
        let random = ir.random;
        self.kernels.push(ir);
        Ok(Kernel { name, grad, random, args: PhantomData })
    }

    /// The ds module: layout nodes, fields, then kernels.
    pub fn source(&self) -> String {
        let mut s: String = self
            .nodes
            .iter()
            .map(|n| match n.kind {
                ds_dialects::ops::DsOp::Dense if n.parent.is_none() => dense_decl(&n.name, &n.shape, n.order, n.at),
                kind => crate::builder::node_decl(kind, &n.name, &n.shape, n.parent.as_deref(), n.capacity, n.chunk, n.at),
            })
            .collect();
        for f in &self.fields {
            s.push_str(&field_decl(&f.name, f.ty, &f.ds_shape, f.grad.as_deref(), f.layout.as_deref(), f.at));
        }
        for k in &self.kernels {
            s.push_str(&k.text);
        }
        s
    }

    /// Compiles every kernel and its gradient for the CPU.
    pub fn build(&self) -> Result<Program, Error> {
        self.check()?;
        Program::with_options(&self.source(), "<diffsim program>", &self.options)
    }

    /// Compiles every kernel and its gradient for GPU 0 (PTX through the CUDA
    /// driver); [`Error::NoDriver`] on a machine without one.
    pub fn build_cuda(&self) -> Result<CudaProgram, Error> {
        self.check()?;
        CudaProgram::new(&self.source(), "<diffsim program>", &self.options)
    }

    /// The PTX of every task kernel for a GPU of compute capability `chip`
    /// (e.g. "sm_90"), compiled without needing a GPU.
    pub fn build_ptx(&self, chip: &str) -> Result<String, Error> {
        self.check()?;
        let compiled = ds_runtime::cuda::compile_ptx(&self.source(), "<diffsim program>", &self.options, chip)?;
        compiled.ptx.clone().ok_or_else(|| Error::Internal("no PTX for a CUDA target".into()))
    }

    fn check(&self) -> Result<(), Error> {
        match &self.declaration_error {
            Some(DeclarationError::Duplicate(name)) => Err(Error::Duplicate { what: "field", name: name.clone() }),
            Some(DeclarationError::TooLarge(field, shape)) => Err(Error::FieldTooLarge { field: field.clone(), shape: shape.clone() }),
            Some(DeclarationError::Layout { fields, reason }) => Err(Error::Layout { fields: fields.clone(), reason: reason.clone() }),
            None => Ok(()),
        }
    }
}

/// A mistake in a field declaration, kept until `build` reports it.
pub(crate) enum DeclarationError {
    Duplicate(String),
    /// An extent the IR cannot hold (more than `i64::MAX`).
    TooLarge(String, Vec<usize>),
    /// Fields that cannot be placed together ([`Error::Layout`]).
    Layout { fields: Vec<String>, reason: String },
}

/// A field as the builder declares it in the module.
pub(crate) struct FieldEntry {
    pub name: String,
    pub ty: Ty,
    pub ds_shape: Vec<usize>,
    pub grad: Option<String>,
    /// The dense node it is placed under.
    pub layout: Option<String>,
    /// Where it was declared (the location of its `ds.field`).
    pub at: &'static std::panic::Location<'static>,
}

/// A dense layout node of the module.
pub(crate) struct NodeEntry {
    pub name: String,
    /// `ds.dense`, `ds.pointer` or `ds.bitmasked`.
    pub kind: ds_dialects::ops::DsOp,
    pub shape: Vec<usize>,
    pub order: crate::layout::Layout,
    /// The parent node (sparse trees).
    pub parent: Option<String>,
    /// A pointer node's pool, in blocks (default: one per cell); a chunked
    /// dynamic node's, in chunks.
    pub capacity: Option<usize>,
    /// A dynamic node's chunk size, in cells (default: the list whole).
    pub chunk: Option<usize>,
    /// Where its fields were placed (the location of its `ds.dense`).
    pub at: &'static std::panic::Location<'static>,
}
