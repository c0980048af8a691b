//! The paper's simulators and gradient studies as DiffSim programs: kernels
//! written with `#[kernel]` (cross-checked against hand-written ds modules in
//! `examples/kernels/`), host loops and optimizers here. Each example is a
//! [`Simulation`]: it declares its fields and kernels, sets their initial
//! values, then runs its host code, written once for any [`Backend`], on the
//! CPU or the GPU (`diffsim run NAME --arch cpu|cuda`).
//!
//! What every example shares lives here, not in the examples: settings
//! (`--set KEY=VALUE`), parameters loaded from and saved to `.npz` files
//! ([`params`]), the per-iteration report and timings ([`report`]), pictures
//! ([`plot`]) and `diffsim bench` (the kernel profile and median times).

pub mod appendix_c;
pub mod billiards;
pub mod diffmpm;
pub mod diffmpm_benchmark;
pub mod diffmpm3d;
pub mod electric;
pub mod error;
pub mod fig9;
pub mod gradient_explosion;
pub mod image;
pub mod liquid;
pub mod mass_spring;
pub mod mass_spring_simple;
pub mod mpm_robot;
pub mod params;
pub mod plot;
pub mod report;
pub mod rigid_body;
pub mod rigid_body_discontinuity;
pub mod rigid_body_toi;
pub mod smoke;
pub mod volume_renderer;
pub mod water_renderer;
pub mod wave;

pub use error::RunError;

use diffsim::{Backend, ProgramBuilder};
use ds_runtime::{CompileOptions, Error, Program};
use report::{Outcome, Reporter};
use std::path::PathBuf;
use std::str::FromStr;

/// The float types the simulators run in: f32 as the originals, f64 for
/// gradient checks against finite differences.
pub trait Real: diffsim::Scalar + Into<f64> + Default {
    /// `v` rounded to this type.
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}

/// Where an example's kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// All CPU cores (or `--threads N`).
    Cpu,
    /// GPU 0, through the CUDA driver.
    Cuda,
}

/// An example's own setting (`--set NAME=VALUE`), with its default.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// What a run is asked for.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Optimization iterations (None: the example's own default, as in the paper).
    pub iters: Option<usize>,
    /// Seeds the initial parameters and the kernels' random numbers.
    pub seed: u64,
    /// Where pictures go.
    pub out: PathBuf,
    /// Write pictures (off for `diffsim bench`).
    pub pictures: bool,
    pub arch: Arch,
    /// Build without run-time bounds checks (`ProgramBuilder::unchecked`).
    pub unchecked: bool,
    /// Build with IEEE float semantics (`ProgramBuilder::strict_math`).
    pub strict_math: bool,
    /// Build for gradient diagnostics (`ProgramBuilder::gradient_diagnostics`):
    /// the first non-finite gradient stops the run at its op, Rust line and
    /// step; examples that diagnose their gradient print the diagnosis.
    pub check_gradients: bool,
    /// Write the program's IR (after autodiff) to `OUT/program.mlir`.
    pub dump_ir: bool,
    /// Print the Tape's plan and other details.
    pub verbose: bool,
    /// `--set NAME=VALUE` pairs, checked against the example's [`Setting`]s.
    pub settings: Vec<(String, String)>,
    /// Initial values of the optimized parameters, by field name (`--params`).
    pub params: Option<PathBuf>,
    /// Where the optimized parameters are written after the run (`--save-params`).
    pub save_params: Option<PathBuf>,
    /// A target picture for the examples that match one (`--target IMAGE`).
    pub target: Option<PathBuf>,
    /// An initial picture for the examples that start from one (`--init IMAGE`).
    pub init: Option<PathBuf>,
}

impl RunOptions {
    /// The defaults of `diffsim run`, writing into `out`.
    pub fn new(out: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            iters: None,
            seed: 0,
            out: out.into(),
            pictures: true,
            arch: Arch::Cpu,
            unchecked: false,
            strict_math: false,
            check_gradients: false,
            dump_ir: false,
            verbose: false,
            settings: Vec::new(),
            params: None,
            save_params: None,
            target: None,
            init: None,
        }
    }

    /// The value of setting `name` (given with `--set`, or its default).
    pub fn setting<T: FromStr>(&self, name: &str) -> Result<T, RunError> {
        let value = self.settings.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).ok_or_else(|| {
            RunError::UnknownSetting { name: name.into(), known: self.settings.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ") }
        })?;
        value.parse().map_err(|_| RunError::BadSetting { name: name.into(), value: value.into(), expected: std::any::type_name::<T>() })
    }

    /// The value of a yes/no setting: `true`/`on`/`1` or `false`/`off`/`0`.
    pub fn flag(&self, name: &str) -> Result<bool, RunError> {
        let value: String = self.setting(name)?;
        match value.as_str() {
            "true" | "on" | "1" => Ok(true),
            "false" | "off" | "0" => Ok(false),
            _ => Err(RunError::BadSetting { name: name.into(), value, expected: "true/on/1 or false/off/0" }),
        }
    }

    /// These options with every setting of `known` present (defaults first,
    /// then those given); a setting `known` does not have is an error.
    fn with_settings(&self, known: &[Setting]) -> Result<RunOptions, RunError> {
        if let Some((name, _)) = self.settings.iter().find(|(n, _)| !known.iter().any(|s| s.name == n)) {
            let names: Vec<&str> = known.iter().map(|s| s.name).collect();
            let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(RunError::UnknownSetting { name: name.clone(), known });
        }
        let mut opts = self.clone();
        opts.settings = known.iter().map(|s| (s.name.to_string(), s.default.to_string())).chain(self.settings.iter().cloned()).collect();
        Ok(opts)
    }
}

/// An example: its fields and kernels, and host code for any backend.
pub trait Simulation: Sized {
    /// The example's own settings (`--set NAME=VALUE`).
    const SETTINGS: &'static [Setting] = &[];
    /// Declares the fields and kernels on `pb` (the settings may choose sizes).
    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Self, RunError>;
    /// The fields holding the optimized parameters, by name (`--params`,
    /// `--save-params`).
    fn params(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Sets the initial values (the parameters drawn from `opts.seed`);
    /// `--params` then overrides the parameters.
    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError>;
    /// Runs the example on a built, initialized program.
    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError>;
}

/// Declares `S`, builds it for `opts.arch`, initializes and runs it.
pub fn run_example<S: Simulation>(opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
    let opts = opts.with_settings(S::SETTINGS)?;
    let mut pb = ProgramBuilder::new();
    if opts.unchecked {
        pb.unchecked();
    }
    if opts.strict_math {
        pb.strict_math();
    }
    if opts.check_gradients {
        pb.gradient_diagnostics();
    }
    let sim = S::declare(&mut pb, &opts)?;
    match opts.arch {
        Arch::Cpu => run_built(&sim, &mut pb.build()?, &opts, report),
        Arch::Cuda => run_built(&sim, &mut pb.build_cuda()?, &opts, report),
    }
}

fn run_built<S: Simulation, B: Backend>(sim: &S, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
    p.seed_random(opts.seed);
    let mut written = Vec::new();
    if opts.dump_ir {
        let ir = opts.out.join("program.mlir");
        std::fs::write(&ir, p.ir()).map_err(RunError::io(&ir))?;
        written.push(ir);
    }
    sim.init(p, opts)?;
    if let Some(path) = &opts.params {
        params::load(p, &sim.params(), path)?;
    }
    let mut outcome = sim.run(p, opts, report)?;
    if let Some(path) = &opts.save_params {
        params::save(p, &sim.params(), path)?;
        written.push(path.clone());
    }
    outcome.files.extend(written);
    Ok(outcome)
}

/// One runnable example.
pub struct Example {
    pub name: &'static str,
    pub summary: &'static str,
    pub settings: &'static [Setting],
    pub run: fn(&RunOptions, &mut Reporter) -> Result<Outcome, RunError>,
}

impl Example {
    const fn of<S: Simulation>(name: &'static str, summary: &'static str) -> Example {
        Example { name, summary, settings: S::SETTINGS, run: run_example::<S> }
    }
}

/// The examples, as `diffsim list` shows them.
pub static EXAMPLES: &[Example] = &[
    Example::of::<mass_spring_simple::MassSpring>(
        "mass_spring_simple",
        "paper sec. 2.2: optimize 3 spring rest lengths so the triangle's area reaches 0.1",
    ),
    Example::of::<appendix_c::AppendixC>("appendix_c", "paper appendix C: minimize sum 0.5 (x_i - y_i)^2 by gradient descent"),
    Example::of::<gradient_explosion::Car>("gradient_explosion", "paper Fig. 10: dL/da against the number of steps, with and without damping"),
    Example::of::<billiards::Billiards<f32>>("billiards", "paper Fig. 4 middle, Fig. 11: shoot the cue ball so the blue ball ends at the goal"),
    Example::of::<mass_spring::MassSpring>("mass_spring", "paper Fig. 4 left: an NN controller for a mass-spring robot walking right (robots 1-3, with or without TOI)"),
    Example::of::<rigid_body::RigidBody>("rigid_body", "paper Fig. 4 right, Fig. 9: train an NN controller so a rigid-body robot reaches the goal"),
    Example::of::<rigid_body_discontinuity::Discontinuity>("rigid_body_discontinuity", "paper Fig. 12: a box's final position jumps with its initial rotation"),
    Example {
        name: "fig9",
        summary: "paper Fig. 9: mass_spring and rigid_body trained 5 times each with and without time of impact",
        settings: fig9::SETTINGS,
        run: fig9::run,
    },
    Example::of::<electric::Electric>("electric", "DiffTaichi electric.py: an NN sets 8 electrode charges so a charged particle follows a moving goal"),
    Example::of::<smoke::Smoke<f32>>("smoke", "paper Fig. 5a, Table 2: optimize the initial velocity so advected smoke ends as a target picture"),
    Example::of::<rigid_body_toi::Ball>("rigid_body_toi", "paper Fig. 8: d(final height)/d(initial height), naive integrator vs time of impact"),
    Example::of::<water_renderer::WaterRenderer<f32>>("water_renderer", "paper Fig. 6: optimize the initial wave so the refracted bottom image matches a target (the loss on the host)"),
    Example::of::<diffmpm::DiffMpm<f32>>("diffmpm", "paper Table 1, Fig. 3 left: an MLS-MPM soft robot with 4 actuators learns to walk right"),
    Example::of::<diffmpm_benchmark::Benchmark<f32>>("diffmpm_benchmark", "paper Table 1: optimize the initial velocity of an MPM square (6400 particles); --substep times one substep"),
    Example::of::<diffmpm3d::DiffMpm3d>("diffmpm3d", "paper Fig. 3 middle: a 3-D MPM quadruped (30K particles, 16 actuators) learns to walk in +x"),
    Example::of::<liquid::Liquid>("liquid", "paper Fig. 3 right: the 3-D quadruped two-way coupled with 13K liquid particles learns to walk"),
    Example::of::<volume_renderer::VolumeRenderer<f32>>("volume_renderer", "paper Fig. 7: optimize a 128^3 density so its ray-marched renderings match 7 target views"),
    Example::of::<wave::Wave<f32>>("wave", "paper Fig. 5b, appendix D: optimize the initial height so the wave draws a picture 256 steps later"),
];

pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

/// Compiles one of the kernel files of `examples/kernels` with autodiff.
pub fn compile(file: &str, source: &str) -> Result<Program, Error> {
    Program::with_options(source, file, &CompileOptions { autodiff: true, ..Default::default() })
}
