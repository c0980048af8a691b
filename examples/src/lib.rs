//! The paper's simulators and gradient studies as DiffSim programs: kernels
//! written with `#[kernel]` (cross-checked against hand-written ds modules in
//! `examples/kernels/`), host loops and optimizers here. Each example is a
//! [`Simulation`]: it declares its fields and kernels, then runs its host
//! code, written once for any [`Backend`], on the CPU or the GPU
//! (`diffsim run NAME --arch cpu|cuda`). It writes its pictures (loss curve,
//! frames, study plots) to an output folder and reports its loss per iteration.

pub mod appendix_c;
pub mod gradient_explosion;
pub mod mass_spring_simple;
pub mod plot;
pub mod report;
pub mod rigid_body_toi;

use diffsim::{Backend, ProgramBuilder};
use ds_runtime::{CompileOptions, Error, Program};
use report::{Outcome, Reporter};
use std::path::PathBuf;

/// Where an example's kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// All CPU cores.
    Cpu,
    /// GPU 0, through the CUDA driver.
    Cuda,
}

/// What a run is asked for.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Optimization iterations (None: the example's own default, as in the paper).
    pub iters: Option<usize>,
    /// Where pictures go.
    pub out: PathBuf,
    /// Print the loss per iteration and draw a progress bar.
    pub verbose: bool,
    pub arch: Arch,
    /// Build without run-time bounds checks (`ProgramBuilder::unchecked`).
    pub unchecked: bool,
    /// Write the program's IR (after autodiff) to `OUT/program.mlir`.
    pub dump_ir: bool,
}

/// An example: its fields and kernels, and host code for any backend.
pub trait Simulation: Sized {
    /// Declares the fields and kernels on `pb`.
    fn declare(pb: &mut ProgramBuilder) -> Result<Self, Error>;
    /// Runs the example on a built program.
    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, Error>;
}

/// Declares `S`, builds it for `opts.arch` and runs it.
pub fn run_example<S: Simulation>(opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, Error> {
    let mut pb = ProgramBuilder::new();
    if opts.unchecked {
        pb.unchecked();
    }
    let sim = S::declare(&mut pb)?;
    match opts.arch {
        Arch::Cpu => run_built(&sim, &mut pb.build()?, opts, report),
        Arch::Cuda => run_built(&sim, &mut pb.build_cuda()?, opts, report),
    }
}

fn run_built<S: Simulation, B: Backend>(sim: &S, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, Error> {
    let ir = opts.out.join("program.mlir");
    if opts.dump_ir {
        std::fs::write(&ir, p.ir()).map_err(|source| Error::Io { path: ir.display().to_string(), source })?;
    }
    let mut outcome = sim.run(p, opts, report)?;
    if opts.dump_ir {
        outcome.pictures.push(ir);
    }
    Ok(outcome)
}

/// One runnable example.
pub struct Example {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(&RunOptions, &mut Reporter) -> Result<Outcome, Error>,
}

/// The examples, as `diffsim list` shows them.
pub static EXAMPLES: &[Example] = &[
    Example {
        name: "mass_spring_simple",
        summary: "paper sec. 2.2: optimize 3 spring rest lengths so the triangle's area reaches 0.1",
        run: run_example::<mass_spring_simple::MassSpring>,
    },
    Example {
        name: "appendix_c",
        summary: "paper appendix C: minimize sum 0.5 (x_i - y_i)^2 by gradient descent",
        run: run_example::<appendix_c::AppendixC>,
    },
    Example {
        name: "gradient_explosion",
        summary: "paper Fig. 10: dL/da against the number of steps, with and without damping",
        run: run_example::<gradient_explosion::Car>,
    },
    Example {
        name: "rigid_body_toi",
        summary: "paper Fig. 8: d(final height)/d(initial height), naive integrator vs time of impact",
        run: run_example::<rigid_body_toi::Ball>,
    },
];

pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

/// Compiles one of the kernel files of `examples/kernels` with autodiff.
pub fn compile(file: &str, source: &str) -> Result<Program, Error> {
    Program::with_options(source, file, &CompileOptions { autodiff: true, ..Default::default() })
}
