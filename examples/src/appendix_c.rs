//! Paper appendix C: L = sum_i 0.5 (x_i - y_i)^2 over 32 elements, minimized
//! by 100 steps of gradient descent (learning rate 0.1) from x = 0; the
//! gradient comes from the generated `reduce_grad`, the step is a kernel.
//! The same kernels, written in the ds dialect directly, are in
//! `examples/kernels/appendix_c.mlir`; [`dialect_program`] compiles them, and
//! the handles of [`program`] drive either.
//!
//! The appendix's sparse layouts ([`Storage`], [`program_with`]): x and y
//! (with x's adjoint) in blocks of 16 under one pointer node, Taichi's
//! `ti.root.dense(ti.i, n // 16).pointer().dense(ti.i, 16).place(x, y)`
//! (a dense node of single pointers is a pointer node of n / 16 cells here),
//! and the "more efficient" one, each tensor's blocks of its own: here each
//! tensor its own pointer tree, the adjoint sharing its primal's (one
//! pointer node holds one leaf in this implementation; every field of a tree
//! has its own data, so consecutive elements are consecutive in memory in
//! both). A sparse x starts inactive: `activate_x` activates its cells
//! before the first gradient (a gradient kernel never activates cells, so
//! the gradient of an inactive x would be dropped). The losses equal the
//! dense layout's.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{RunError, RunOptions, Simulation, plot};
use diffsim::prelude::*;

const SOURCE: &str = include_str!("../kernels/appendix_c.mlir");
const N: usize = 32;

#[kernel]
fn reduce(x: &ScalarField<f32, 1>, y: &ScalarField<f32, 1>, loss: &ScalarField<f32, 0>) {
    for i in 0..N {
        loss[()] += 0.5 * (x[(i,)] - y[(i,)]) * (x[(i,)] - y[(i,)]);
    }
}

/// Gradient descent step x -= 0.1 dL/dx (no gradient needed for it).
#[kernel(no_grad)]
fn update(x: &GradField<f32, 1>) {
    for i in 0..N {
        x[(i,)] = x[(i,)] - x.grad()[(i,)] * 0.1;
    }
}

/// Activates every cell of a sparse x (the first writes of gradient descent
/// would activate them too, one gradient late).
#[kernel(no_grad)]
fn activate_x(x: &GradField<f32, 1>) {
    for i in 0..N {
        activate(x, i);
    }
}

/// Where appendix C keeps x and y.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Dense arrays (the appendix's first program).
    Dense,
    /// x and y in blocks of 16 under one pointer node.
    SharedBlocks,
    /// x and y each in blocks of 16 under a pointer node of its own.
    BlocksPerTensor,
}

/// The fields and kernels of appendix C.
pub struct AppendixC {
    pub x: GradField<f32, 1>,
    y: Field<f32, 1>,
    loss: GradField<f32, 0>,
    reduce: Kernel<()>,
    update: Kernel<()>,
    /// For a sparse x: its activation.
    activate: Option<Kernel<()>>,
}

impl Simulation for AppendixC {
    fn declare(pb: &mut ProgramBuilder, _: &RunOptions) -> Result<AppendixC, RunError> {
        Ok(AppendixC::new(pb)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.x.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, _: &RunOptions) -> Result<(), RunError> {
        self.init(p)?;
        Ok(())
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let ys = self.y.to_vec(p)?;
        let iters = opts.iters.unwrap_or(100);
        let mut out = Outcome::default();
        report.start(iters);
        for iter in 0..iters {
            let (loss, fwd_ms, bwd_ms) = self.timed_step(p)?;
            out.losses.push(loss as f64);
            report.iteration(iter, loss as f64, fwd_ms, bwd_ms);
        }
        report.finish();
        out.final_loss = self.loss(p)? as f64;
        let worst = self.x.to_vec(p)?.iter().zip(&ys).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        out.results.push(("max |x_i - y_i|".into(), format!("{worst:.3e}")));
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "appendix C: gradient descent on sum 0.5 (x - y)^2", &out.losses)?);
        }
        Ok(out)
    }
}

/// The program from the `#[kernel]` functions, with its handles.
pub fn program() -> Result<(Program, AppendixC), Error> {
    program_with(Storage::Dense)
}

/// The program with x and y stored as `storage` says.
pub fn program_with(storage: Storage) -> Result<(Program, AppendixC), Error> {
    let mut pb = ProgramBuilder::new();
    let sim = AppendixC::with_storage(&mut pb, storage)?;
    Ok((pb.build()?, sim))
}

/// The same kernels from the ds-dialect file.
pub fn dialect_program() -> Result<Program, Error> {
    crate::compile("examples/kernels/appendix_c.mlir", SOURCE)
}

impl AppendixC {
    fn new(pb: &mut ProgramBuilder) -> Result<AppendixC, Error> {
        AppendixC::with_storage(pb, Storage::Dense)
    }

    fn with_storage(pb: &mut ProgramBuilder, storage: Storage) -> Result<AppendixC, Error> {
        let (x, y, loss) = (pb.field_with_grad("x", [N]), pb.field("y", [N]), pb.field_with_grad("L", []));
        match storage {
            Storage::Dense => {}
            Storage::SharedBlocks => pb.root().pointer([N / 16]).dense([16]).place((&x, &y)),
            Storage::BlocksPerTensor => {
                pb.root().pointer([N / 16]).dense([16]).place(&x);
                pb.root().pointer([N / 16]).dense([16]).place(&y);
            }
        }
        let activate = (storage != Storage::Dense).then(|| pb.kernel(activate_x(&x))).transpose()?;
        Ok(AppendixC { reduce: pb.kernel(reduce(&x, &y, &loss))?, update: pb.kernel(update(&x))?, x, y, loss, activate })
    }

    /// Sets x = 0 and random targets y; returns y.
    pub fn init<B: Backend>(&self, p: &mut B) -> Result<Vec<f32>, Error> {
        let mut rng = ds_runtime::gradcheck::Rng(42);
        let ys: Vec<f32> = (0..N).map(|_| rng.next_f64() as f32).collect();
        self.y.copy_from(p, &ys)?;
        self.x.zero(p)?;
        if let Some(k) = &self.activate {
            k.launch(p, ())?;
        }
        Ok(ys)
    }

    /// The loss at the current x.
    pub fn loss<B: Backend>(&self, p: &mut B) -> Result<f32, Error> {
        self.loss.zero(p)?;
        self.reduce.launch(p, ())?;
        self.loss.get(p, [])
    }

    /// One gradient-descent step; returns the loss before it.
    pub fn step<B: Backend>(&self, p: &mut B) -> Result<f32, Error> {
        Ok(self.timed_step(p)?.0)
    }

    /// One gradient-descent step: the loss before it, forward and backward ms.
    fn timed_step<B: Backend>(&self, p: &mut B) -> Result<(f32, f64, f64), Error> {
        let mut clock = Stopwatch::start();
        self.loss.zero(p)?;
        let mut rec = p.record_without_state();
        rec.launch(&self.reduce, ())?;
        let loss = self.loss.get(rec.program(), [])?;
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        let bwd_ms = clock.lap();
        self.update.launch(p, ())?;
        Ok((loss, fwd_ms, bwd_ms))
    }
}
