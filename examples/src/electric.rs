//! DiffTaichi's `electric.py` (the paper's electric example; no figure of its
//! own): one charged particle in the unit square, pushed by 8 electrodes on
//! the border whose charges a neural network sets each step, learns to follow
//! a goal point moving along a random path.
//!
//! Scene facts, read from the original program:
//! - electrodes at (0.1, 0.1), (0.1, 0.9), (0.9, 0.9), (0.9, 0.1), (0.5, 0.9),
//!   (0.5, 0.1), (0.1, 0.5), (0.9, 0.5); the force on the particle is
//!   sum_i K g_i r / |r|^3 with r = x - electrode_i, |r| clamped >= 0.1,
//!   K = 1e-3; v[t] = exp(-dt damping) v[t-1] + dt force, x[t] = x[t-1] + dt v[t],
//!   damping 0.2, dt 0.03, 512 steps (t = 1..511), single precision.
//! - The goal: 3 points uniform in [0.2, 0.8]^2 (`0.2 + 0.6 random()`),
//!   joined by 2 segments of 256 steps: goal[256 i + j] = lerp(j / 256, p_i,
//!   p_i+1), goal_v[256 i + j] = p_i+1 - p_i; x[0] = p_0, v[0] = 0. New points
//!   are drawn before every iteration (and once for the forward run the
//!   original makes before its loop).
//! - The controller, one step: nn1 (64 tanh units over 8 inputs: x - 0.5,
//!   v, goal - 0.5, goal_v - 0.5), nn2 (8 tanh outputs, the charges g_i).
//!   Weights uniform in [-0.15, 0.15], biases 0.
//! - Loss = sum_{t=1}^{511} dt |x[t] - goal[t]|^2. Plain gradient descent on
//!   all four layers, learning rate 2e-2, 200000 iterations.
//!
//! The kernels are the original's four (nn1, nn2, advance, compute_loss), one
//! launch each per step, generic over the float type (f32 as in the original;
//! f64 for the finite-difference test), with the original's sums in the
//! original's order. One difference of shape: nn2 computes its 8 outputs in
//! one parallel iteration (the original: one each) from the 64 hidden values
//! loaded once, so its gradient adds into each hidden adjoint once, not 8
//! times (584 atomic adds per step instead of 1032; 8-wide parallelism is
//! nothing to keep on a CPU core or a GPU).
//!
//! A quirk of the original, kept: `nn1(t)` runs before `advance(t)` and reads
//! x[t], v[t], so the controller sees the trajectory the *previous* run left
//! in those fields (zero before the first run), not the particle's present
//! state. Here that trajectory is copied into `x_in`, `v_in` after each run
//! (`Electric::remember`), which nn1 reads, and the gradient is the exact
//! gradient of that loss. Taichi's own gradient differs from it in one
//! respect: its nn1 gradient recomputes the activations from the x[t], v[t]
//! the fields hold when backward runs (this run's trajectory), not the ones
//! nn1 read. `--set grad=taichi` reproduces that (nn1's gradient is the
//! generated gradient of an nn1 that reads x, v), for comparing loss
//! trajectories with the original; `grad=exact` (the default) is what the
//! finite-difference test checks. Measured against Taichi 1.7 from the same
//! weights and goal points: with `grad=taichi` the losses of 2500 iterations
//! agree to 1e-5 relative through iteration 906 and to 0.8% throughout (f32
//! rounding drift); with `grad=exact` single losses differ by about 15%
//! after a few iterations, and their means over 200 iterations by under 3%.
//!
//! Departures: the random numbers (Python's `random` cannot be reproduced):
//! weights and goal points are drawn from `opts.seed` here. To replay the
//! original's, `--params FILE.npz` loads the weights (`weights1`, `bias1`,
//! `weights2`, `bias2`; the original calls the weight fields `weight1`,
//! `weight2`) and `--set goal_points=FILE.npz` the goal points of each run
//! (an array `goal_points`, float64 [runs, 3, 2]; run 0 is the forward run
//! before the loop, run k + 1 iteration k's). The fields are indexed [t, i]
//! (the original's hidden and gravitation are [i, t]). No GUI: the final
//! run is drawn as an animation.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::Scalar;
use diffsim::prelude::*;
use ds_runtime::gradcheck::Rng;
use std::path::{Path, PathBuf};

pub const STEPS: usize = 512;
const SEG_SIZE: usize = 256;
pub const N_HIDDEN: usize = 64;
pub const N_GRAVITATION: usize = 8;
const DT: f64 = 0.03;
const DAMPING: f64 = 0.2;
const K: f64 = 1e-3;
const LEARNING_RATE: f64 = 2e-2;
pub const ITERATIONS: usize = 200_000;
const PAD: f64 = 0.1;
pub const ELECTRODES: [[f64; 2]; N_GRAVITATION] =
    [[PAD, PAD], [PAD, 1.0 - PAD], [1.0 - PAD, 1.0 - PAD], [1.0 - PAD, PAD], [0.5, 1.0 - PAD], [0.5, PAD], [PAD, 0.5], [1.0 - PAD, 0.5]];

type Points<T> = VectorField<T, 2, 1>;
type Grid<T> = ScalarField<T, 2>;
type Line<T> = ScalarField<T, 1>;

// --- the original's kernels ---
#[kernel]
#[allow(clippy::too_many_arguments)]
fn nn1<T: Scalar>(x: &Points<T>, v: &Points<T>, goal: &Points<T>, goal_v: &Points<T>, weights1: &Grid<T>, bias1: &Line<T>, hidden: &Grid<T>, t: usize) {
    for i in 0..N_HIDDEN {
        let (p, u, g, gv) = (x[(t,)], v[(t,)], goal[(t,)], goal_v[(t,)]);
        let mut act = (p.at(0) - 0.5) * weights1[(0usize, i)];
        act += (p.at(1) - 0.5) * weights1[(1usize, i)];
        act += u.at(0) * weights1[(2usize, i)];
        act += u.at(1) * weights1[(3usize, i)];
        act += (g.at(0) - 0.5) * weights1[(4usize, i)];
        act += (g.at(1) - 0.5) * weights1[(5usize, i)];
        act += (gv.at(0) - 0.5) * weights1[(6usize, i)];
        act += (gv.at(1) - 0.5) * weights1[(7usize, i)];
        act += bias1[(i,)];
        hidden[(t, i)] = act.tanh();
    }
}

#[kernel]
fn nn2<T: Scalar>(hidden: &Grid<T>, weights2: &Grid<T>, bias2: &Line<T>, gravitation: &Grid<T>, t: usize) {
    for _once in 0..1usize {
        let h: [Expr; N_HIDDEN] = std::array::from_fn(|j| hidden[(t, j)]);
        for i in unroll(0..N_GRAVITATION) {
            let mut act = h[0] * weights2[(0usize, i)];
            for j in unroll(1..N_HIDDEN) {
                act += h[j] * weights2[(j, i)];
            }
            act += bias2[(i,)];
            gravitation[(t, i)] = act.tanh();
        }
    }
}

#[kernel]
fn advance<T: Scalar>(x: &Points<T>, v: &Points<T>, gravitation: &Grid<T>, t: usize) {
    for _once in 0..1usize {
        let p = x[(t - 1,)];
        let pull = |i: usize| {
            let r = Vector([p.at(0) - ELECTRODES[i][0], p.at(1) - ELECTRODES[i][1]]);
            let len_r = r.norm().max(0.1);
            r * (K * gravitation[(t, i)] / (len_r * len_r * len_r))
        };
        let mut force = pull(0);
        for i in unroll(1..N_GRAVITATION) {
            force = force + pull(i);
        }
        let nv = v[(t - 1,)] * (-DT * DAMPING).exp() + force * DT;
        v[(t,)] = nv;
        x[(t,)] = p + nv * DT;
    }
}

#[kernel]
fn compute_loss<T: Scalar>(x: &Points<T>, goal: &Points<T>, loss: &ScalarField<T, 0>, t: usize) {
    let d = x[(t,)] - goal[(t,)];
    loss[()] += DT * d.norm_sqr();
}
// --- end of the original's kernels ---

/// Which gradient nn1 gets (`--set grad=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradMode {
    /// The gradient of the loss: nn1's activations from the inputs it read.
    Exact,
    /// Taichi's: nn1's activations recomputed from this run's x[t], v[t].
    Taichi,
}

/// A loss, its gradient (weights1, bias1, weights2, bias2, flat) and the
/// forward and backward milliseconds.
pub type LossAndGrad<T> = (T, [Vec<T>; 4], [f64; 2]);

/// Three goal points (the path's corners).
pub type GoalPoints = [[f64; 2]; 3];

/// Where each run's goal points come from (`--set goal_points=`).
pub enum Goals {
    /// Drawn as the original draws them, from a seeded generator.
    Random(Rng),
    /// Read from an npz file: one row per run.
    File { path: PathBuf, runs: Vec<GoalPoints>, next: usize },
}

impl Goals {
    pub fn random(seed: u64) -> Goals {
        // Its own stream: the weights are drawn from `seed` itself.
        Goals::Random(Rng(seed ^ 0x6f61_6c73_0000_0001))
    }

    /// The array `goal_points` (float64, [runs, 3, 2]) of `path`.
    pub fn from_file(path: &Path) -> Result<Goals, RunError> {
        let problem = |problem: String| RunError::Params { path: path.to_path_buf(), array: "goal_points".into(), problem };
        let mut archive = npyz::npz::NpzArchive::open(path).map_err(RunError::io(path))?;
        let array = archive.by_name("goal_points").map_err(|e| problem(e.to_string()))?.ok_or_else(|| problem("missing".into()))?;
        let shape = array.shape().to_vec();
        if shape.len() != 3 || shape[1] != 3 || shape[2] != 2 || shape[0] == 0 {
            return Err(problem(format!("shape {shape:?}, expected [runs, 3, 2]")));
        }
        if array.dtype().descr() != "'<f8'" {
            return Err(problem(format!("dtype {}, expected '<f8'", array.dtype().descr())));
        }
        let values: Vec<f64> = array.into_vec().map_err(|e| problem(e.to_string()))?;
        let runs = values.chunks(6).map(|c| [[c[0], c[1]], [c[2], c[3]], [c[4], c[5]]]).collect();
        Ok(Goals::File { path: path.to_path_buf(), runs, next: 0 })
    }

    /// The next run's points.
    pub fn draw(&mut self) -> Result<GoalPoints, RunError> {
        match self {
            Goals::Random(rng) => {
                let mut rand = || 0.2 + rng.next_f64() * 0.6;
                Ok(std::array::from_fn(|_| {
                    let x = rand();
                    [x, rand()]
                }))
            }
            Goals::File { path, runs, next } => {
                let points = runs.get(*next).copied().ok_or_else(|| RunError::Params {
                    path: path.clone(),
                    array: "goal_points".into(),
                    problem: format!("{} runs, but the run needs more (one more than the iterations)", runs.len()),
                })?;
                *next += 1;
                Ok(points)
            }
        }
    }
}

/// The goal trajectory through `points`: (goal, goal_v) per step.
pub fn goal_trajectory(points: &GoalPoints) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
    let lerp = |x: f64, a: f64, b: f64| (1.0 - x) * a + x * b;
    let segments = STEPS / SEG_SIZE;
    let (mut goal, mut goal_v) = (vec![[0.0; 2]; STEPS], vec![[0.0; 2]; STEPS]);
    for i in 0..segments {
        let (a, b) = (points[i], points[i + 1]);
        for j in 0..STEPS / segments {
            let k = STEPS / segments * i + j;
            let s = j as f64 / SEG_SIZE as f64;
            goal[k] = [lerp(s, a[0], b[0]), lerp(s, a[1], b[1])];
            goal_v[k] = [b[0] - a[0], b[1] - a[1]];
        }
    }
    (goal, goal_v)
}

/// The simulation's fields and kernels.
pub struct Electric<T: Real = f32> {
    pub x: GradField<[T; 2], 1>,
    pub v: GradField<[T; 2], 1>,
    /// What nn1 reads: x and v as the previous run left them.
    pub x_in: Field<[T; 2], 1>,
    pub v_in: Field<[T; 2], 1>,
    goal: Field<[T; 2], 1>,
    goal_v: Field<[T; 2], 1>,
    pub hidden: GradField<T, 2>,
    pub gravitation: GradField<T, 2>,
    pub weights1: GradField<T, 2>,
    pub bias1: GradField<T, 1>,
    pub weights2: GradField<T, 2>,
    pub bias2: GradField<T, 1>,
    pub loss: GradField<T, 0>,
    nn1: Kernel<usize>,
    /// nn1 reading x, v: its gradient is Taichi's gradient of nn1.
    nn1_fresh: Kernel<usize>,
    nn2: Kernel<usize>,
    advance: Kernel<usize>,
    compute_loss: Kernel<usize>,
    grad_mode: GradMode,
    goal_file: Option<PathBuf>,
}

/// The program of the kernels above in `T`, with its handles.
pub fn program<T: Real>(grad_mode: GradMode) -> Result<(Program, Electric<T>), Error> {
    let mut pb = ProgramBuilder::new();
    let sim = Electric::new(&mut pb, grad_mode, None)?;
    Ok((pb.build()?, sim))
}

impl Simulation for Electric<f32> {
    const SETTINGS: &'static [Setting] = &[
        Setting {
            name: "grad",
            default: "exact",
            help: "nn1's gradient: exact, or taichi (activations recomputed from this run's x, v, as Taichi's Tape does)",
        },
        Setting {
            name: "goal_points",
            default: "random",
            help: "each run's goal points: random (from --seed), or an npz file with goal_points [runs, 3, 2] f64",
        },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Electric, RunError> {
        let grad: String = opts.setting("grad")?;
        let grad_mode = match grad.as_str() {
            "exact" => GradMode::Exact,
            "taichi" => GradMode::Taichi,
            _ => return Err(RunError::BadSetting { name: "grad".into(), value: grad, expected: "exact or taichi" }),
        };
        let goals: String = opts.setting("goal_points")?;
        let goal_file = (goals != "random").then(|| PathBuf::from(goals));
        Ok(Electric::new(pb, grad_mode, goal_file)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.weights1.name(), self.bias1.name(), self.weights2.name(), self.bias2.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        Ok(self.init_params(p, opts.seed)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let mut goals = match &self.goal_file {
            Some(path) => Goals::from_file(path)?,
            None => Goals::random(opts.seed),
        };
        let iters = opts.iters.unwrap_or(ITERATIONS);
        let (losses, last) = self.optimize(p, iters, STEPS, &mut goals, report)?;
        let mut out = Outcome { losses, ..Default::default() };
        // The original's closing forward run, with the last iteration's goals.
        out.final_loss = self.forward(p, STEPS, &last)?.into();
        // The goals change every iteration, so single losses are noisy: the
        // original prints sums over 200 iterations; these are the means.
        let n = out.losses.len();
        let window = (n / 2).clamp(1, 200);
        let mean = |ls: &[f64]| ls.iter().sum::<f64>() / ls.len().max(1) as f64;
        if n > 0 {
            out.results.push((format!("mean loss, first {window} iterations"), format!("{:.6}", mean(&out.losses[..window]))));
            out.results.push((format!("mean loss, last {window} iterations"), format!("{:.6}", mean(&out.losses[n - window..]))));
        }
        if opts.pictures {
            let path = opts.out.join("loss.png");
            let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let mut series = vec![plot::Series::new("loss", xs, out.losses.clone(), plot::GREY)];
            if n >= 2 * window && window > 1 {
                let means: Vec<f64> = out.losses.chunks(window).map(mean).collect();
                let centers = (0..means.len()).map(|k| (k * window) as f64 + (window as f64 - 1.0) / 2.0).collect();
                series.push(plot::Series::new(format!("mean over {window} iterations"), centers, means, plot::BLUE));
            }
            let chart = plot::Chart {
                title: "electric: sum_t dt |x_t - goal_t|^2 (new goal points every iteration)".into(),
                x_label: "iteration".into(),
                y_label: "loss".into(),
                series,
                scale: plot::Scale::Auto,
            };
            plot::draw_chart(&path, &chart)?;
            out.files.push(path);
            out.files.extend(self.draw(p, &opts.out, &last)?);
        }
        Ok(out)
    }
}

impl<T: Real> Electric<T> {
    pub fn new(pb: &mut ProgramBuilder, grad_mode: GradMode, goal_file: Option<PathBuf>) -> Result<Electric<T>, Error> {
        let (x, v) = (pb.field_with_grad("x", [STEPS]), pb.field_with_grad("v", [STEPS]));
        let (x_in, v_in) = (pb.field("x_in", [STEPS]), pb.field("v_in", [STEPS]));
        let (goal, goal_v) = (pb.field("goal", [STEPS]), pb.field("goal_v", [STEPS]));
        let hidden = pb.field_with_grad("hidden", [STEPS, N_HIDDEN]);
        let gravitation = pb.field_with_grad("gravitation", [STEPS, N_GRAVITATION]);
        let (weights1, bias1) = (pb.field_with_grad("weights1", [8, N_HIDDEN]), pb.field_with_grad("bias1", [N_HIDDEN]));
        let (weights2, bias2) = (pb.field_with_grad("weights2", [N_HIDDEN, N_GRAVITATION]), pb.field_with_grad("bias2", [N_GRAVITATION]));
        let loss = pb.field_with_grad("loss", []);
        Ok(Electric {
            nn1: pb.kernel(nn1(&x_in, &v_in, &goal, &goal_v, &weights1, &bias1, &hidden))?,
            nn1_fresh: pb.kernel(nn1(&x, &v, &goal, &goal_v, &weights1, &bias1, &hidden).and_then(|k| k.renamed("nn1_fresh")))?,
            nn2: pb.kernel(nn2(&hidden, &weights2, &bias2, &gravitation))?,
            advance: pb.kernel(advance(&x, &v, &gravitation))?,
            compute_loss: pb.kernel(compute_loss(&x, &goal, &loss))?,
            x,
            v,
            x_in,
            v_in,
            goal,
            goal_v,
            hidden,
            gravitation,
            weights1,
            bias1,
            weights2,
            bias2,
            loss,
            grad_mode,
            goal_file,
        })
    }

    /// Weights uniform in [-0.15, 0.15] (weights1 first, row-major, as the
    /// original draws them), biases 0; no remembered trajectory (zeros).
    pub fn init_params<B: Backend>(&self, p: &mut B, seed: u64) -> Result<(), Error> {
        let mut rng = Rng(seed);
        let mut draw = |n: usize| -> Vec<T> { (0..n).map(|_| T::of((rng.next_f64() - 0.5) * 0.3)).collect() };
        let w1 = draw(8 * N_HIDDEN);
        let w2 = draw(N_HIDDEN * N_GRAVITATION);
        self.weights1.copy_from(p, &w1)?;
        self.weights2.copy_from(p, &w2)?;
        self.bias1.zero(p)?;
        self.bias2.zero(p)?;
        for f in [&self.x_in, &self.v_in] {
            f.zero(p)?;
        }
        Ok(())
    }

    /// Sets the goal trajectory through `points`, x[0] = points[0], v[0] = 0,
    /// and the loss to 0 (the original's `initialize` and the Tape's reset).
    pub fn set_goals<B: Backend>(&self, p: &mut B, points: &GoalPoints) -> Result<(), Error> {
        let (goal, goal_v) = goal_trajectory(points);
        let cast = |v: Vec<[f64; 2]>| -> Vec<[T; 2]> { v.into_iter().map(|[a, b]| [T::of(a), T::of(b)]).collect() };
        self.goal.copy_from(p, &cast(goal))?;
        self.goal_v.copy_from(p, &cast(goal_v))?;
        self.x.set(p, [0], [T::of(points[0][0]), T::of(points[0][1])])?;
        self.v.set(p, [0], [T::default(); 2])?;
        self.loss.zero(p)
    }

    /// Copies this run's x, v into what the next run's nn1 reads.
    pub fn remember<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        self.x_in.copy_from(p, &self.x.to_vec(p)?)?;
        self.v_in.copy_from(p, &self.v.to_vec(p)?)
    }

    /// The original's `forward`: `launch` runs (or records) each kernel.
    fn simulate(&self, steps: usize, mut launch: impl FnMut(&Kernel<usize>, usize) -> Result<(), Error>) -> Result<(), Error> {
        for t in 1..steps {
            launch(&self.nn1, t)?;
            launch(&self.nn2, t)?;
            launch(&self.advance, t)?;
            launch(&self.compute_loss, t)?;
        }
        Ok(())
    }

    /// The loss of a run of `steps` steps towards `points` (not remembered).
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize, points: &GoalPoints) -> Result<T, Error> {
        self.set_goals(p, points)?;
        self.simulate(steps, |k, t| k.launch(p, t))?;
        self.loss.get(p, [])
    }

    /// The loss and its gradient (weights1, bias1, weights2, bias2, flat),
    /// with the forward and backward milliseconds (not remembered).
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize, points: &GoalPoints) -> Result<LossAndGrad<T>, Error> {
        let mut clock = Stopwatch::start();
        self.set_goals(p, points)?;
        let mut rec = p.record_without_state();
        let grad_mode = self.grad_mode;
        self.simulate(steps, |k, t| {
            if grad_mode == GradMode::Taichi && k.name() == self.nn1.name() {
                let fresh = self.nn1_fresh.clone();
                rec.launch_with_grad(k, t, move |p| fresh.grad(p, t))
            } else {
                rec.launch(k, t)
            }
        })?;
        let loss = self.loss.get(rec.program(), [])?;
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        let grads = [self.weights1.grad().to_vec(p)?, self.bias1.grad().to_vec(p)?, self.weights2.grad().to_vec(p)?, self.bias2.grad().to_vec(p)?];
        Ok((loss, grads, [fwd_ms, clock.lap()]))
    }

    /// Gradient descent: before each iteration new goal points, as the
    /// original (after one forward run before the loop); returns the loss per
    /// iteration and the last iteration's goal points.
    pub fn optimize<B: Backend>(
        &self,
        p: &mut B,
        iters: usize,
        steps: usize,
        goals: &mut Goals,
        report: &mut Reporter,
    ) -> Result<(Vec<f64>, GoalPoints), RunError> {
        let mut points = goals.draw()?;
        self.forward(p, steps, &points)?;
        self.remember(p)?;
        let mut losses = Vec::with_capacity(iters);
        report.start(iters);
        for iter in 0..iters {
            points = goals.draw()?;
            let (loss, grads, [fwd_ms, bwd_ms]) = self.loss_and_grad(p, steps, &points)?;
            self.remember(p)?;
            descend(p, &self.weights1, &grads[0])?;
            descend(p, &self.bias1, &grads[1])?;
            descend(p, &self.weights2, &grads[2])?;
            descend(p, &self.bias2, &grads[3])?;
            let loss: f64 = loss.into();
            losses.push(loss);
            report.iteration(iter, loss, fwd_ms, bwd_ms);
        }
        report.finish();
        Ok((losses, points))
    }

    /// The last forward run as an animation (every 16th step; the original's GUI shows every 8th).
    fn draw<B: Backend>(&self, p: &B, out: &Path, points: &GoalPoints) -> Result<Vec<PathBuf>, RunError> {
        let (x, goal, g) = (self.x.to_vec(p)?, self.goal.to_vec(p)?, self.gravitation.to_vec(p)?);
        let xy = |v: [T; 2]| -> (f64, f64) { (v[0].into(), v[1].into()) };
        let frame = |t: usize| -> Vec<plot::Shape> {
            let path = points.windows(2).map(|w| plot::Shape::Segment { from: (w[0][0], w[0][1]), to: (w[1][0], w[1][1]), color: plot::GREY, width: 1 });
            let electrodes = ELECTRODES.iter().enumerate().map(|(i, e)| {
                let charge: f64 = g[t * N_GRAVITATION + i].into();
                plot::Shape::Circle { center: (e[0], e[1]), radius: 0.005 + 0.03 * (charge + 1.0), color: plot::ORANGE }
            });
            let particle = plot::Shape::Circle { center: xy(x[t]), radius: 0.03, color: plot::RED };
            let target = plot::Shape::Circle { center: xy(goal[t]), radius: 0.012, color: plot::BLUE };
            path.chain(electrodes).chain([particle, target]).collect()
        };
        let frames = (16..STEPS).step_by(16).chain([STEPS - 1]).map(frame).collect();
        let anim = plot::Animation { title: "electric, final run".into(), x_range: (0.0, 1.0), y_range: (0.0, 1.0), frames };
        plot::animate(out, "motion", &anim, 40, 4)
    }
}

/// One gradient-descent step on `field`, in f64 as the original's host code
/// computes it (w - grad * learning_rate, stored in the field's type).
fn descend<T: Real, B: Backend, const D: usize>(p: &mut B, field: &Field<T, D>, grad: &[T]) -> Result<(), Error> {
    let updated: Vec<T> = field.to_vec(p)?.iter().zip(grad).map(|(&w, &g)| T::of(w.into() - g.into() * LEARNING_RATE)).collect();
    field.copy_from(p, &updated)
}
