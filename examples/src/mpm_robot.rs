//! The MPM robots' controller and host loop, written once for the 2-D robot
//! of [`crate::diffmpm`] and the 3-D quadruped of [`crate::diffmpm3d`] (and
//! [`crate::liquid`], the quadruped with a liquid): the originals' sine-wave
//! controller (actuation[t, i] = tanh(sum_j weights[i, j] sin(omega t dt +
//! 2 pi j / 4) + bias[i])), the loss -(mean x at the last step), the
//! simulation of a run, its forward pass, its gradient (the grid recomputed
//! in backward through the Tape's checkpointing, [`RecomputeGrid`]), plain
//! gradient descent and the run a `diffsim run` prints.
//!
//! [`Robot`] is generic over the solver, an [`MpmSolver`] in `D`
//! dimensions: its constants, fields and substep kernels, in 2-D
//! ([`crate::diffmpm::Solver`]) or 3-D ([`crate::diffmpm3d::Solver3`]); its
//! host code over the [`Backend`] it runs on.

use crate::diffmpm::{Direct, Gradient, Launch, RecomputeGrid, Trained, normal, push_plan, record_and_backward};
use crate::report::{Outcome, Reporter};
use crate::{Real, RunError, RunOptions, plot};
use diffsim::Scalar;
use diffsim::prelude::*;
use ds_runtime::gradcheck::Rng;
use plotters::style::RGBColor;

/// Sine waves per actuator (the originals' `n_sin_waves`).
pub const N_SIN_WAVES: usize = 4;

/// The constants the controller's kernel is built with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Controller {
    pub n_actuators: usize,
    /// The originals' `actuation_omega` (diffmpm 20, diffmpm3d and liquid 40).
    pub omega: usize,
    /// The solver's time step.
    pub dt: f64,
}

#[kernel]
fn compute_actuation<T: Scalar>(weights: &GradField<T, 2>, bias: &GradField<T, 1>, actuation: &GradField<T, 2>, c: &Controller, t: usize) {
    for i in 0..c.n_actuators {
        // Taichi's `actuation_omega * t * dt`: an i32 product times an f32.
        let phase = ((c.omega * t) as T) * c.dt;
        let mut act = weights[(i, 0usize)] * (phase + 0.0).sin();
        for j in unroll(1..N_SIN_WAVES) {
            act = act + weights[(i, j)] * (phase + 2.0 * std::f64::consts::PI / N_SIN_WAVES as f64 * j as f64).sin();
        }
        act = act + bias[(i,)];
        actuation[(t, i)] = act.tanh();
    }
}

#[kernel]
fn compute_loss<T: Scalar, const D: usize>(x_avg: &GradField<[T; D], 0>, loss: &GradField<T, 0>) {
    loss[()] = -x_avg[()].at(0);
}

/// An MPM solver in `D` dimensions that a [`Robot`] drives: the particles,
/// the grid and the substep kernels, with actuated particles whose p2g
/// reads `actuation[t, actuator_id[p]]`, and `x_avg`, the particles' (the
/// solid ones') mean position, accumulated by `compute_x_avg(t)`.
pub trait MpmSolver<T: Real, const D: usize>: Sized {
    /// The constants its kernels are built with.
    type Mpm: Copy;
    /// The particles at step 0, with their actuators (-1: none) and, in
    /// 3-D, their materials.
    type Scene;
    /// Salts `--seed` for the initial weights (one stream per robot).
    const WEIGHT_SEED: u64;
    /// What the loss is, for the loss curve's title.
    const LOSS: &'static str;

    /// The controller of a robot on these constants.
    fn controller(mpm: &Self::Mpm) -> Controller;
    /// The fields (`steps` steps of particle history) and kernels, p2g
    /// reading `actuation`.
    fn declare(pb: &mut ProgramBuilder, mpm: Self::Mpm, steps: usize, actuation: &GradField<T, 2>) -> Result<Self, Error>;
    /// Step 0: the scene's particles at rest, undeformed (F = I, C = 0),
    /// with their actuators (and materials).
    fn place_scene<B: Backend>(&self, p: &mut B, scene: &Self::Scene) -> Result<(), Error>;
    /// One substep from step `s`: clear_grid, `actuate(s)`, p2g, grid_op, g2p.
    fn actuated_substep<L: Launch>(&self, l: &mut L, s: usize, actuate: &Kernel<usize>) -> Result<(), Error>;
    /// The mean position the loss reads.
    fn x_avg(&self) -> &GradField<[T; D], 0>;
    /// x_avg += the particles' share of their positions at step `t`.
    fn compute_x_avg(&self) -> &Kernel<usize>;
    /// The run's result lines (particles, steps, ...).
    fn results<B: Backend>(&self, p: &B, steps: usize) -> Vec<(String, String)>;
    /// The last run's motion, particles coloured by their actuation.
    fn motion<B: Backend>(robot: &Robot<T, Self, D>, p: &B, title: &str) -> Result<plot::Animation, Error>;
}

/// How a robot is optimized (the originals' main loops).
#[derive(Clone, Copy, Debug)]
pub struct Optimizer {
    pub learning_rate: f64,
    pub iterations: usize,
}

/// A robot: the solver's particles, the controller and the loss.
pub struct Robot<T: Real, S: MpmSolver<T, D>, const D: usize> {
    pub solver: S,
    pub weights: GradField<T, 2>,
    pub bias: GradField<T, 1>,
    pub actuation: GradField<T, 2>,
    pub loss: GradField<T, 0>,
    pub scene: S::Scene,
    pub controller: Controller,
    pub optimizer: Optimizer,
    /// Steps of a run (x[0..steps]).
    pub steps: usize,
    compute_actuation: Kernel<usize>,
    compute_loss: Kernel<()>,
}

impl<T: Real, S: MpmSolver<T, D>, const D: usize> Robot<T, S, D> {
    /// The robot's fields and kernels on `mpm`'s solver, for runs of `steps` steps.
    pub fn declare(pb: &mut ProgramBuilder, mpm: S::Mpm, scene: S::Scene, optimizer: Optimizer, steps: usize) -> Result<Robot<T, S, D>, Error> {
        let controller = S::controller(&mpm);
        let weights = pb.field_with_grad("weights", [controller.n_actuators, N_SIN_WAVES]);
        let bias = pb.field_with_grad("bias", [controller.n_actuators]);
        let actuation = pb.field_with_grad("actuation", [steps, controller.n_actuators]);
        let loss = pb.field_with_grad("loss", []);
        let solver = S::declare(pb, mpm, steps, &actuation)?;
        Ok(Robot {
            compute_actuation: pb.kernel(compute_actuation(&weights, &bias, &actuation, &controller))?,
            compute_loss: pb.kernel(compute_loss(solver.x_avg(), &loss))?,
            solver,
            weights,
            bias,
            actuation,
            loss,
            scene,
            controller,
            optimizer,
            steps,
        })
    }

    /// The optimized fields, by name (`--params`).
    pub fn params(&self) -> Vec<&str> {
        vec![self.weights.name(), self.bias.name()]
    }

    /// The scene at step 0, the weights drawn from `seed` (N(0, 0.01^2), as
    /// the originals' `randn() * 0.01`) and the biases zero.
    pub fn init<B: Backend>(&self, p: &mut B, seed: u64) -> Result<(), Error> {
        self.solver.place_scene(p, &self.scene)?;
        let mut rng = Rng(seed ^ S::WEIGHT_SEED);
        let w: Vec<T> = (0..self.controller.n_actuators * N_SIN_WAVES).map(|_| T::of(normal(&mut rng) * 0.01)).collect();
        self.weights.copy_from(p, &w)?;
        self.bias.zero(p)
    }

    fn simulate<L: Launch>(&self, l: &mut L, steps: usize) -> Result<RecomputeGrid, Error> {
        for s in 0..steps - 1 {
            self.solver.actuated_substep(l, s, &self.compute_actuation)?;
        }
        l.run(self.solver.compute_x_avg(), steps - 1)?;
        l.run(&self.compute_loss, ())?;
        Ok(RecomputeGrid { prefix: 0, per_substep: 5, substeps: steps - 1, tail: 2 })
    }

    fn check_steps(&self, steps: usize) -> Result<(), Error> {
        if steps < 1 || steps > self.steps {
            return Err(Error::Internal(format!("{steps} steps asked, 1..={} stored", self.steps)));
        }
        Ok(())
    }

    /// The loss after `steps` steps (the forward pass only).
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize) -> Result<f64, Error> {
        self.check_steps(steps)?;
        self.solver.x_avg().zero(p)?;
        self.simulate(&mut Direct(p), steps)?;
        Ok(self.loss.get(p, [])?.into())
    }

    /// The loss after `steps` steps; dL/dweights and dL/dbias are left in
    /// their adjoints (the grid recomputed in backward by the Tape).
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize) -> Result<Gradient, Error> {
        self.check_steps(steps)?;
        self.solver.x_avg().zero(p)?;
        record_and_backward(p, &self.loss, |rec| self.simulate(rec, steps))
    }

    /// One step of the originals' gradient descent.
    fn descend<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        let lr = self.optimizer.learning_rate;
        let step = |values: Vec<T>, grads: Vec<T>| -> Vec<T> { values.iter().zip(&grads).map(|(&w, &g)| T::of(w.into() - lr * g.into())).collect() };
        let weights = step(self.weights.to_vec(p)?, self.weights.grad().to_vec(p)?);
        self.weights.copy_from(p, &weights)?;
        let bias = step(self.bias.to_vec(p)?, self.bias.grad().to_vec(p)?);
        self.bias.copy_from(p, &bias)
    }

    /// `iters` iterations of gradient descent; the losses and the first
    /// iteration's plan.
    pub fn optimize<B: Backend>(&self, p: &mut B, iters: usize, report: &mut Reporter) -> Result<Trained, Error> {
        let mut losses = Vec::with_capacity(iters);
        let mut plan = None;
        report.start(iters);
        for iter in 0..iters {
            let g = self.loss_and_grad(p, self.steps)?;
            self.descend(p)?;
            losses.push(g.loss);
            plan = plan.or(g.plan);
            report.iteration(iter, g.loss, g.ms[0], g.ms[1]);
        }
        report.finish();
        Ok((losses, plan))
    }

    /// The steps a motion shows: every few (at most about 100 frames), and the last.
    pub fn frames(&self) -> Vec<usize> {
        let every = self.steps.div_ceil(96).max(1);
        (0..self.steps).step_by(every).chain([self.steps - 1]).collect()
    }

    /// The run of example `name`: the optimization, the final loss, the
    /// solver's result lines, the plan (`--verbose`) and the pictures.
    pub fn run_example<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter, name: &str) -> Result<Outcome, RunError> {
        let (losses, plan) = self.optimize(p, opts.iters.unwrap_or(self.optimizer.iterations), report)?;
        let mut out = Outcome { losses, ..Default::default() };
        out.final_loss = self.forward(p, self.steps)?;
        out.results.extend(self.solver.results(p, self.steps));
        if opts.verbose {
            push_plan(&mut out, plan);
        }
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), &format!("{name}: {}", S::LOSS), &out.losses)?);
            out.files.extend(plot::animate(&opts.out, "motion", &S::motion(self, p, &format!("{name}, final controller"))?, 40, 4)?);
        }
        Ok(out)
    }
}

/// An actuated particle's colour at actuation `a` (-1 to 1): red for
/// negative actuation, blue for positive, grey at zero.
pub fn actuation_colour(a: f64) -> RGBColor {
    let c = |v: f64| (255.0 * v.clamp(0.0, 1.0)).round() as u8;
    RGBColor(c(0.5 - a), c(0.5 - a.abs()), c(0.5 + a))
}
