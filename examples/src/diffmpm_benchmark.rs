//! DiffTaichi's `diffmpm_benchmark.py` (paper Table 1): an elastic square
//! of 80 x 80 = 6400 particles simulated with MLS-MPM (the kernels of
//! [`crate::diffmpm`], built with this program's constants); gradient
//! descent on its initial velocity so that its centre of mass, 1023
//! substeps later, is at (0.3, 0.6). `diffsim bench diffmpm_benchmark
//! --substep` is the paper's microbenchmark: one substep (p2g, grid_op,
//! g2p) forward and backward, timed alone.
//!
//! Scene facts, from the original: n_grid = 120 (dx = 1/120), dt = 3e-4,
//! p_vol = 1, particle mass 1, E = mu = lambda = 100, gravity 9.8,
//! bound = 3 cells, 1024 steps; particle i * 80 + j starts at
//! (dx (0.5 i + 10), dx (0.5 j + 25)) (computed in f32, as the original's
//! kernel does) with F = I, C = 0 and v = init_v (the optimized field, zero
//! at first). No actuation; fixed corotated stress with the 2x2 polar
//! decomposition; grid_op zeroes only the normal component of a boundary
//! node moving into its wall (slip walls, unlike diffmpm). Loss =
//! 0.5 |mean x at step 1023 - (0.3, 0.6)|^2. Gradient descent with learning
//! rate 10, 30 iterations (the original's loop).
//!
//! The grid is recomputed in the backward pass through the Tape's
//! checkpointing ([`crate::diffmpm::RecomputeGrid`]); `--verbose` prints the plan.
//!
//! The microbenchmark (`--substep`, the setting `substep=on`) follows the
//! original's `benchmark()`: from the initial state, p2g(0), grid_op,
//! g2p(0) repeated without clearing the grid, then g2p's, grid_op's and
//! p2g's gradients repeated; each repetition is timed alone and reported
//! as one iteration (100 per `--iters`), so `diffsim bench` prints the
//! medians as `substep_fwd_ms` and `substep_bwd_ms`. The original prints 3x
//! the per-substep time (its `* 3`); compare its numbers divided by 3.
//!
//! Port check against Taichi 1.7 (one CPU thread), deterministic from the
//! same start: the losses agree to 6.5 digits at iteration 0 (0.05255616
//! there, 0.05255618 here), 5-6 at 1, 3-4 from iteration 2 on (f32 rounding
//! in different orders), and end alike: 5.0910e-4 there and 5.0916e-4 here
//! at iteration 14 (the "0.0526 to 5e-4 over 15 iterations").
//!
//! Speed of the Table 1 substep, one pinned core, alternating with
//! `BENCH_ITERS=300 taichi_run.py diffmpm_benchmark.py` (its lines / 3):
//! 0.291 ms forward and 0.716 ms backward against Taichi's 1.292 and 2.351
//! in the same run (4.4x, 3.3x; against the quiet-machine 0.873 / 1.996:
//! 3.0x, 2.8x); with `--unchecked` (Taichi checks no bounds either) 0.196
//! and 0.370 ms (6.6x, 6.4x; 4.5x and 5.4x against the quiet figures). The
//! bounds checks of the data-dependent stencil indices cost most in
//! p2g_grad (411 us checked, 112 unchecked) and g2p (118 / 48); unchecked,
//! g2p_grad is the largest (250 us, 5x g2p: the gather's adjoint scatters
//! 18 atomic adds per particle into grid_v_out's adjoint).
//!
//! Departures: none in the physics. The original draws frames with OpenCV
//! during its loop; here, with pictures on, the last forward pass is drawn
//! (frames every 16 steps, the centre of mass and the target marked). There
//! are no random numbers (`--seed` changes nothing).

use crate::diffmpm::{Direct, Gradient, Launch, Mpm, RecomputeGrid, Solver, Trained, push_plan, record_and_backward, steps_setting};
use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::Scalar;
use diffsim::prelude::*;

pub const N: usize = 80;
pub const N_GRID: usize = 120;
pub const STEPS: usize = 1024;
pub const TARGET: [f64; 2] = [TARGET_X, TARGET_Y];
const TARGET_X: f64 = 0.3;
const TARGET_Y: f64 = 0.6;
const LEARNING_RATE: f64 = 10.0;
const ITERATIONS: usize = 30;
/// Substep repetitions per `--iters` iteration of the microbenchmark.
pub const SUBSTEP_REPS: usize = 100;

#[kernel]
fn set_v<T: Scalar>(v: &GradField<[T; 2], 2>, init_v: &GradField<[T; 2], 0>, n: &usize) {
    for i in 0..*n {
        v[(0usize, i)] = init_v[()];
    }
}

#[kernel]
fn compute_loss<T: Scalar>(x_avg: &GradField<[T; 2], 0>, loss: &GradField<T, 0>) {
    let x = x_avg[()];
    let d = Vector([x.at(0) - TARGET_X, x.at(1) - TARGET_Y]);
    let dist = d * d;
    loss[()] = 0.5 * (dist.at(0) + dist.at(1));
}

/// The benchmark's constants (the original's globals).
pub fn benchmark_mpm() -> Mpm {
    Mpm { n_particles: N * N, dt: 3e-4, e: 100.0, gravity: 9.8, ..Mpm::with_grid(N_GRID) }
}

/// The square, its initial velocity and the loss.
pub struct Benchmark<T: Real> {
    pub solver: Solver<T>,
    pub init_v: GradField<[T; 2], 0>,
    pub loss: GradField<T, 0>,
    /// Steps of a run.
    pub steps: usize,
    set_v: Kernel<()>,
    compute_loss: Kernel<()>,
}

impl<T: Real> Benchmark<T> {
    pub fn new(pb: &mut ProgramBuilder, steps: usize) -> Result<Benchmark<T>, Error> {
        let mpm = benchmark_mpm();
        // p2g's actuation inputs, not read without actuation.
        let (actuation, actuator_id) = (pb.field_with_grad("actuation", [1, 1]), pb.field("actuator_id", [1]));
        let solver = Solver::new(pb, mpm, steps, &actuation, &actuator_id)?;
        let init_v = pb.field_with_grad("init_v", []);
        let loss = pb.field_with_grad("loss", []);
        Ok(Benchmark {
            set_v: pb.kernel(set_v(&solver.v, &init_v, &mpm.n_particles))?,
            compute_loss: pb.kernel(compute_loss(&solver.x_avg, &loss))?,
            solver,
            init_v,
            loss,
            steps,
        })
    }

    /// The original's `init()`: the square at step 0, init_v = 0.
    pub fn init<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        let dx = self.solver.mpm.dx as f32 as f64;
        let positions: Vec<[f64; 2]> =
            (0..N).flat_map(|i| (0..N).map(move |j| [dx * (i as f64 * 0.5 + 10.0), dx * (j as f64 * 0.5 + 25.0)])).collect();
        self.solver.place(p, &positions)?;
        self.init_v.zero(p)
    }

    fn simulate<L: Launch>(&self, l: &mut L, steps: usize) -> Result<RecomputeGrid, Error> {
        l.run(&self.set_v, ())?;
        for s in 0..steps - 1 {
            self.solver.substep(l, s, None)?;
        }
        l.run(&self.solver.compute_x_avg, steps - 1)?;
        l.run(&self.compute_loss, ())?;
        Ok(RecomputeGrid { prefix: 1, per_substep: 4, substeps: steps - 1, tail: 2 })
    }

    /// The loss after `steps` steps (2..=the stored steps), forward only.
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize) -> Result<f64, Error> {
        self.solver.x_avg.zero(p)?;
        self.simulate(&mut Direct(p), steps)?;
        Ok(self.loss.get(p, [])?.into())
    }

    /// The loss after `steps` steps; dL/dinit_v is left in its adjoint.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize) -> Result<Gradient, Error> {
        self.solver.x_avg.zero(p)?;
        record_and_backward(p, &self.loss, |rec| self.simulate(rec, steps))
    }

    /// `iters` iterations of the original's gradient descent; the losses
    /// and the first iteration's plan.
    pub fn optimize<B: Backend>(&self, p: &mut B, iters: usize, report: &mut Reporter) -> Result<Trained, Error> {
        let (mut losses, mut plan) = (Vec::with_capacity(iters), None);
        report.start(iters);
        for iter in 0..iters {
            let g = self.loss_and_grad(p, self.steps)?;
            let (v, grad) = (self.init_v.get(p, [])?, self.init_v.grad().get(p, [])?);
            let next = [0, 1].map(|k| T::of(v[k].into() - LEARNING_RATE * grad[k].into()));
            self.init_v.set(p, [], next)?;
            losses.push(g.loss);
            plan = plan.or(g.plan);
            report.iteration(iter, g.loss, g.ms[0], g.ms[1]);
        }
        report.finish();
        Ok((losses, plan))
    }

    /// The paper's Table 1 microbenchmark, as the original's `benchmark()`:
    /// `reps` repetitions of one substep forward (p2g, grid_op, g2p) and
    /// backward (their gradients, last first), each timed and reported.
    pub fn substep_benchmark<B: Backend>(&self, p: &mut B, reps: usize, report: &mut Reporter) -> Result<(), Error> {
        let s = &self.solver;
        self.set_v.launch(p, ())?;
        report.start(reps);
        for r in 0..reps {
            let mut clock = Stopwatch::start();
            s.p2g.launch(p, 0)?;
            s.grid_op.launch(p, ())?;
            s.g2p.launch(p, 0)?;
            let fwd_ms = clock.lap();
            s.g2p.grad(p, 0)?;
            s.grid_op.grad(p, ())?;
            s.p2g.grad(p, 0)?;
            report.iteration(r, f64::NAN, fwd_ms, clock.lap());
        }
        report.finish();
        Ok(())
    }

    /// The last run: every 16th step, the particles, their centre of mass
    /// (red) and the target (green).
    fn motion<B: Backend>(&self, p: &B) -> Result<plot::Animation, Error> {
        let picked: Vec<usize> = (0..self.steps).step_by(16).chain([self.steps - 1]).collect();
        let mut frames = Vec::new();
        for x in self.solver.positions(p, &picked)? {
            let n = x.len() as f64;
            let center = x.iter().fold((0.0, 0.0), |(a, b), (px, py)| (a + px / n, b + py / n));
            let mut shapes: Vec<plot::Shape> = x.into_iter().map(|center| plot::Shape::Circle { center, radius: 0.0015, color: plot::BLUE }).collect();
            shapes.push(plot::Shape::Circle { center, radius: 0.008, color: plot::RED });
            shapes.push(plot::Shape::Circle { center: (TARGET[0], TARGET[1]), radius: 0.008, color: plot::GREEN });
            frames.push(shapes);
        }
        Ok(plot::Animation { title: "diffmpm_benchmark, final initial velocity".into(), x_range: (0.0, 1.0), y_range: (0.0, 1.0), frames })
    }
}

impl Simulation for Benchmark<f32> {
    const SETTINGS: &'static [Setting] = &[
        Setting { name: "steps", default: "1024", help: "time steps of a run (the original's 1024; fewer for short checks)" },
        Setting {
            name: "substep",
            default: "off",
            help: "on: the Table 1 microbenchmark (one substep forward and backward, 100 repetitions per iteration; `diffsim bench --substep`)",
        },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Benchmark<f32>, RunError> {
        Ok(Benchmark::new(pb, steps_setting(opts, STEPS)?)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.init_v.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, _: &RunOptions) -> Result<(), RunError> {
        Ok(Benchmark::init(self, p)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let iters = opts.iters.unwrap_or(ITERATIONS);
        if opts.flag("substep")? {
            self.substep_benchmark(p, iters * SUBSTEP_REPS, report)?;
            let mut out = Outcome { final_loss: f64::NAN, ..Default::default() };
            out.results.push(("substep repetitions".into(), (iters * SUBSTEP_REPS).to_string()));
            return Ok(out);
        }
        let (losses, plan) = self.optimize(p, iters, report)?;
        let mut out = Outcome { losses, ..Default::default() };
        out.final_loss = self.forward(p, self.steps)?;
        let v = self.init_v.get(p, [])?;
        out.results.push(("init_v".into(), format!("({:.6}, {:.6})", v[0], v[1])));
        if opts.verbose {
            push_plan(&mut out, plan);
        }
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "diffmpm_benchmark: 0.5 |x_avg - target|^2", &out.losses)?);
            out.files.extend(plot::animate(&opts.out, "motion", &self.motion(p)?, 40, 4)?);
        }
        Ok(out)
    }
}
