//! The paper's simulators and gradient studies as DiffSim programs: kernels
//! written with `#[kernel]` (appendix C in the ds dialect directly,
//! `examples/kernels/appendix_c.mlir`), host loops and optimizers here.
//! Each example writes its pictures (loss curve, frames, study plots) to an
//! output folder and reports its loss per iteration.

pub mod appendix_c;
pub mod gradient_explosion;
pub mod mass_spring_simple;
pub mod plot;
pub mod report;
pub mod rigid_body_toi;

use ds_runtime::{CompileOptions, Error, Program};
use report::{Outcome, Reporter};
use std::path::PathBuf;

/// What a run is asked for.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Optimization iterations (None: the example's own default, as in the paper).
    pub iters: Option<usize>,
    /// Where pictures go.
    pub out: PathBuf,
    /// Print the loss per iteration and draw a progress bar.
    pub verbose: bool,
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
        run: mass_spring_simple::run,
    },
    Example {
        name: "appendix_c",
        summary: "paper appendix C: minimize sum 0.5 (x_i - y_i)^2 by gradient descent",
        run: appendix_c::run,
    },
    Example {
        name: "gradient_explosion",
        summary: "paper Fig. 10: dL/da against the number of steps, with and without damping",
        run: gradient_explosion::run,
    },
    Example {
        name: "rigid_body_toi",
        summary: "paper Fig. 8: d(final height)/d(initial height), naive integrator vs time of impact",
        run: rigid_body_toi::run,
    },
];

pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

/// Compiles one of the kernel files of `examples/kernels` with autodiff.
pub fn compile(file: &str, source: &str) -> Result<Program, Error> {
    Program::with_options(source, file, &CompileOptions { autodiff: true, ..Default::default() })
}
