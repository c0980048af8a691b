//! Paper Fig. 5b, appendix D: the wave equation by finite differences in
//! time and space (FDTD) on a 256 x 256 grid; gradient descent on the initial
//! height field so the wave, 256 steps later, draws a target picture.
//!
//! Scene facts, from the original `wave.py`: dx = 1/256, c = 340, damping
//! alpha = 0 (`--set damping=ALPHA`), dt = (sqrt(alpha^2 + dx^2/3) - alpha)/c
//! (dx/(c sqrt 3) undamped); the height p[t, i, j] is stored for 512 steps
//! (the original's max_steps, for its final 512-step visualization) and is 0
//! outside the grid (here a frame of cells around it that stays 0: cell (i, j)
//! is p[t, i + 1, j + 1], so the stencil reads without tests). p[0] = `initial` (the optimized field, all zeros at the
//! start), p[1] = 0 (never written), then for t = 2..255
//! p[t] = 2 p[t-1] + (c^2 dt^2 + c alpha dt) lap(p[t-1]) - p[t-2] - c alpha dt lap(p[t-2])
//! with lap(q)[i, j] = (-4 q[i,j] + q[i,j-1] + q[i,j+1] + q[i+1,j] + q[i-1,j]) / dx^2.
//! Loss = sum dx^2 (target - p[255])^2. The target is a picture minus its
//! mean, i = row (row 0 at the top): the original's is its `taichi.png`
//! (the Taichi logo, a taiji disc; loss 0.2466 at iteration 0); here a taiji
//! symbol drawn by the program (a disc of radius 0.5 filling the square,
//! black outside; loss 0.2387 at iteration 0), or `--target IMAGE` (any
//! picture, resized to 256 x 256 and then its mean subtracted; the original
//! subtracts the mean before resizing). Plain gradient descent,
//! `initial -= 1.0 * dL/dinitial`, 200 iterations, single precision.
//!
//! The loss adds every cell to `loss` as the original does (one thread adds
//! them in the original's order, so the f32 sum rounds the same).
//!
//! The damping term `c alpha dt lap(p[t-2])` is written as the original
//! writes it; undamped, fast-math (`ds-simplify`, on by default as in
//! Taichi) folds its zero coefficient away, with its loads and its
//! gradient (`--strict-math` keeps it: the same f32 losses, the gradient
//! kernel 1.3-1.4x slower). Departures: there are no random numbers (`--seed` changes nothing). The adjoints are cleared
//! for the 256 steps a backward uses, not all 512 (the Tape's clearing of
//! every adjoint took ~70 ms an iteration here, the kernel 6.5 ms).
//!
//! Port check: from the zero start, with this target in the original (its
//! `taichi.png` replaced by the same taiji), the losses of 100 iterations
//! agree with Taichi 1.7's (one CPU thread) to 6 digits (0.2385543 ->
//! 0.07064315). With `--target taichi.png` the first loss is 0.2421, the
//! original's 0.2466: `image`'s resize averages the 1500-pixel picture,
//! OpenCV's bilinear one samples it.
//!
//! Performance: the parallel loop is over the 256 rows (as the original's).
//! The gradient's adds into dL/dp[t-1] and dL/dp[t-2] (the stencil's adjoint)
//! along a row are made gathers by `ds-gather-updates` (each column pulls
//! from its neighbours' dL/dp[t], so the row's loop vectorizes); those into
//! the rows above and below land within one row of their own, so the task
//! is banded: its serial twin, plain adds, runs on every thread, even chunks
//! of rows then odd ones. On the 2-vCPU VM (`diffsim bench wave`): 39-41 ms
//! an iteration on one thread (66 with the scatter), 23-28 on two;
//! `diffsim bench` prints the copy-bandwidth roofline (8 framed layers a
//! step, 541 MB an iteration): 0.85-0.95 of a memcpy's bandwidth on one
//! thread (0.40-0.44 with the scatter). The kernels are generic over
//! the float type: f32 as the original, f64 for the gradient test.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::field::Scalar;
use diffsim::prelude::*;
use std::path::{Path, PathBuf};

pub const N_GRID: usize = 256;
pub const STEPS: usize = 256;
pub const MAX_STEPS: usize = 512;
const DX: f64 = 1.0 / N_GRID as f64;
const INV_DX2: f64 = (N_GRID * N_GRID) as f64;
const C: f64 = 340.0;
const LEARNING_RATE: f64 = 1.0;
const ITERATIONS: usize = 200;

type Grid<T> = GradField<T, 2>;
type History<T> = GradField<T, 3>;

#[kernel]
fn initialize<T: Scalar>(p: &History<T>, initial: &Grid<T>) {
    for i in 0..N_GRID {
        for j in 0..N_GRID {
            p[(0usize, i + 1usize, j + 1usize)] = initial[(i, j)];
        }
    }
}

/// One FDTD step: p[t] from p[t-1] and p[t-2]; `k_q` = c^2 dt^2 + c alpha dt,
/// `k_p` = c alpha dt (undamped, 0: fast-math folds its term away, loads and
/// gradient included; `--strict-math` keeps it, as the original). Cell (i, j) of
/// the grid is p[t, i + 1, j + 1]: the frame of zeros around it, never
/// written, is the original's p = 0 outside the grid.
#[kernel]
fn fdtd<T: Scalar>(p: &History<T>, k_q: &f64, k_p: &f64, t: usize) {
    for i in 1..(N_GRID + 1) {
        for j in 1..(N_GRID + 1) {
            let (q, r) = (t - 1, t - 2);
            // The original's laplacian(t, i, j), in its order.
            let lap = |s: Expr| -> Expr {
                INV_DX2 * (-4.0 * p[(s, i, j)] + p[(s, i, j - 1usize)] + p[(s, i, j + 1usize)] + p[(s, i + 1usize, j)] + p[(s, i - 1usize, j)])
            };
            p[(t, i, j)] = 2.0 * p[(q, i, j)] + *k_q * lap(q) - p[(r, i, j)] - *k_p * lap(r);
        }
    }
}

#[kernel]
fn compute_loss<T: Scalar>(p: &History<T>, target: &Field<T, 2>, loss: &GradField<T, 0>, t: usize) {
    for i in 0..N_GRID {
        for j in 0..N_GRID {
            let d = target[(i, j)] - p[(t, i + 1usize, j + 1usize)];
            loss[()] += DX * DX * (d * d);
        }
    }
}

/// Zeroes dL/dp for steps 0..steps: what a backward over `steps` steps adds
/// to (the Tape's own clearing would zero all 512 steps, twice the memory).
#[kernel(no_grad)]
fn clear_adjoint<T: Scalar>(p: &History<T>, steps: usize) {
    for t in 0..steps {
        for i in 0..(N_GRID + 2) {
            for j in 0..(N_GRID + 2) {
                p.grad()[(t, i, j)] = 0.0;
            }
        }
    }
}

/// The original's apply_grad: initial -= learning_rate * dL/dinitial.
#[kernel(no_grad)]
fn apply_grad<T: Scalar>(initial: &Grid<T>, learning_rate: &f64) {
    for i in 0..N_GRID {
        for j in 0..N_GRID {
            initial[(i, j)] = initial[(i, j)] - *learning_rate * initial.grad()[(i, j)];
        }
    }
}

/// The wave's fields and kernels.
pub struct Wave<T: Real> {
    pub p: History<T>,
    pub initial: Grid<T>,
    pub target: Field<T, 2>,
    pub loss: GradField<T, 0>,
    /// Steps the history holds.
    pub max_steps: usize,
    /// The damping alpha the kernels were built with.
    pub damping: f64,
    pub(crate) initialize: Kernel<()>,
    pub(crate) fdtd: Kernel<usize>,
    compute_loss: Kernel<usize>,
    pub(crate) apply_grad: Kernel<()>,
    pub(crate) clear_adjoint: Kernel<usize>,
}

/// A loss and the forward and backward milliseconds (dL/dinitial is in
/// `initial.grad()`).
#[derive(Clone, Debug)]
pub struct Gradient {
    pub loss: f64,
    pub ms: [f64; 2],
}

/// The time step for damping `alpha`, as the original computes it.
/// What an iteration must read and write at least, with the whole history
/// kept: for each of the 254 steps, forward reads p[t-1] and p[t-2] and writes
/// p[t]; backward reads dL/dp[t] and updates (reads and writes) dL/dp[t-1]
/// and dL/dp[t-2] (undamped, no primal value is needed): 8 layers of the
/// framed grid.
pub fn moved_bytes<T>() -> f64 {
    let layer = ((N_GRID + 2) * (N_GRID + 2) * std::mem::size_of::<T>()) as f64;
    (STEPS - 2) as f64 * 8.0 * layer
}

pub fn time_step(alpha: f64) -> f64 {
    ((alpha * alpha + DX * DX / 3.0).sqrt() - alpha) / C
}

/// The program's own target before its mean is subtracted: a taiji symbol
/// (the Taichi logo's shape) of radius 0.5 centred in the unit square, 1
/// for light and 0 for dark, sampled at cell centres, row 0 at the top (y
/// up): the right half light, the upper inner disc light, the lower dark,
/// each with a dot of the other colour; black outside the disc.
pub fn taiji(n: usize) -> Vec<f32> {
    let (big, half, dot) = (0.5, 0.25, 0.25 / 3.0);
    let mut grid = Vec::with_capacity(n * n);
    for row in 0..n {
        for col in 0..n {
            let x = (col as f64 + 0.5) / n as f64 - 0.5;
            let y = 0.5 - (row as f64 + 0.5) / n as f64;
            let within = |cy: f64, r: f64| x * x + (y - cy) * (y - cy) < r * r;
            let light = within(0.0, big)
                && !within(half, dot)
                && (within(-half, dot) || within(half, half) || (!within(-half, half) && x > 0.0));
            grid.push(if light { 1.0 } else { 0.0 });
        }
    }
    grid
}

impl<T: Real> Wave<T> {
    /// The fields (history of `max_steps` steps) and kernels for damping `damping`.
    pub fn new(pb: &mut ProgramBuilder, max_steps: usize, damping: f64) -> Result<Wave<T>, Error> {
        Wave::with_learning_rate(pb, max_steps, damping, LEARNING_RATE)
    }

    /// `new` with `apply_grad` stepping `initial -= learning_rate * dL/dinitial`
    /// (the water renderer's own rate).
    pub fn with_learning_rate(pb: &mut ProgramBuilder, max_steps: usize, damping: f64, learning_rate: f64) -> Result<Wave<T>, Error> {
        let p = pb.field_with_grad("p", [max_steps, N_GRID + 2, N_GRID + 2]);
        let initial = pb.field_with_grad("initial", [N_GRID, N_GRID]);
        let target = pb.field("target", [N_GRID, N_GRID]);
        let loss = pb.field_with_grad("loss", []);
        let dt = time_step(damping);
        let (k_q, k_p) = (C * C * dt * dt + C * damping * dt, C * damping * dt);
        Ok(Wave {
            initialize: pb.kernel(initialize(&p, &initial))?,
            fdtd: pb.kernel(fdtd(&p, &k_q, &k_p))?,
            compute_loss: pb.kernel(compute_loss(&p, &target, &loss))?,
            apply_grad: pb.kernel(apply_grad(&initial, &learning_rate))?,
            clear_adjoint: pb.kernel(clear_adjoint(&p))?,
            p,
            initial,
            target,
            loss,
            max_steps,
            damping,
        })
    }

    /// Sets the target to `picture` (values in [0, 1], row-major) minus its mean.
    pub fn set_target<B: Backend>(&self, p: &mut B, picture: &[f32]) -> Result<(), Error> {
        let mean = picture.iter().map(|&v| v as f64).sum::<f64>() / picture.len() as f64;
        let values: Vec<T> = picture.iter().map(|&v| T::of(v as f64 - mean)).collect();
        self.target.copy_from(p, &values)
    }

    fn reset<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        self.loss.zero(p)
    }

    /// The original's forward: initialize, steps t = 2..run_steps, the loss at
    /// `steps - 1`.
    fn simulate(&self, steps: usize, run_steps: usize, mut launch: impl FnMut(&Kernel<usize>, usize) -> Result<(), Error>) -> Result<(), Error> {
        for t in 2..run_steps {
            launch(&self.fdtd, t)?;
        }
        launch(&self.compute_loss, steps - 1)
    }

    /// The loss after `steps` steps from the current `initial`; the wave runs
    /// on to `run_steps` (the original's visualization run: 2 x steps).
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize, run_steps: usize) -> Result<f64, Error> {
        self.reset(p)?;
        self.initialize.launch(p, ())?;
        self.simulate(steps, run_steps, |k, t| k.launch(p, t))?;
        Ok(self.loss.get(p, [])?.into())
    }

    /// The loss after `steps` steps and dL/dinitial.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize) -> Result<Gradient, Error> {
        let mut clock = Stopwatch::start();
        // The adjoints backward adds to, zeroed here (the loss's is seeded).
        self.clear_adjoint.launch(p, steps)?;
        self.initial.grad().zero(p)?;
        let clear_ms = clock.lap();
        self.reset(p)?;
        let mut rec = p.record_without_state();
        rec.launch(&self.initialize, ())?;
        self.simulate(steps, steps, |k, t| rec.launch(k, t))?;
        let loss = self.loss.get(rec.program(), [])?.into();
        let fwd_ms = clock.lap();
        rec.backward_with(&self.loss, &BackwardOptions { zero_grads: false, ..Default::default() })?;
        let bwd_ms = clock.lap() + clear_ms;
        Ok(Gradient { loss, ms: [fwd_ms, bwd_ms] })
    }

    /// `iters` iterations of the original's gradient descent; the losses.
    pub fn optimize<B: Backend>(&self, p: &mut B, iters: usize, report: &mut Reporter) -> Result<Vec<f64>, Error> {
        let mut losses = Vec::with_capacity(iters);
        report.start(iters);
        for iter in 0..iters {
            let g = self.loss_and_grad(p, STEPS)?;
            self.apply_grad.launch(p, ())?;
            losses.push(g.loss);
            report.iteration(iter, g.loss, g.ms[0], g.ms[1]);
        }
        report.finish();
        Ok(losses)
    }
}

impl Simulation for Wave<f32> {
    const SETTINGS: &'static [Setting] =
        &[Setting { name: "damping", default: "0", help: "the original's alpha (0: undamped); dt = (sqrt(alpha^2 + dx^2/3) - alpha)/c" }];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Wave<f32>, RunError> {
        let damping: f64 = opts.setting("damping")?;
        if !(damping.is_finite() && damping >= 0.0) {
            return Err(RunError::BadSetting { name: "damping".into(), value: damping.to_string(), expected: "a finite alpha >= 0" });
        }
        Ok(Wave::new(pb, MAX_STEPS, damping)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.initial.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        let picture = match &opts.target {
            Some(path) => crate::image::load_gray(path, N_GRID, N_GRID)?,
            None => taiji(N_GRID),
        };
        self.set_target(p, &picture)?;
        self.p.zero(p)?;
        Ok(self.initial.zero(p)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let losses = self.optimize(p, opts.iters.unwrap_or(ITERATIONS), report)?;
        let mut out = Outcome { losses, moved_bytes: Some(moved_bytes::<f32>()), ..Default::default() };
        // The original's closing forward('optimized'): 512 steps, the loss at 255.
        let run_steps = if opts.pictures { MAX_STEPS } else { STEPS };
        out.final_loss = self.forward(p, STEPS, run_steps)?;
        out.results.push(("damping alpha, dt".into(), format!("{}, {:.6e}", self.damping, time_step(self.damping))));
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "wave: sum dx^2 (target - p[255])^2", &out.losses)?);
            out.files.extend(self.pictures(p, &opts.out)?);
        }
        Ok(out)
    }
}

/// A diverging colour for height `v` (blue below 0, white at 0, red above; +-0.5 saturates).
fn colour(v: f32) -> image::Rgb<u8> {
    let s = (v / 0.5).clamp(-1.0, 1.0);
    let fade = |a: f32| (255.0 * (1.0 - a)).round() as u8;
    if s >= 0.0 { image::Rgb([255, fade(s), fade(s)]) } else { image::Rgb([fade(-s), fade(-s), 255]) }
}

impl<T: Real> Wave<T> {
    /// PNGs: `result.png` (p[255] of the last run beside the target) and
    /// `frames.png` (8 frames of the 512-step run: p[0], p[51], .., p[255],
    /// p[383], p[511]; rows of 4, blue below 0, red above).
    fn pictures<B: Backend>(&self, p: &B, dir: &Path) -> Result<Vec<PathBuf>, RunError> {
        let n = N_GRID as u32;
        let save = |img: image::RgbImage, name: &str| -> Result<PathBuf, RunError> {
            let path = dir.join(name);
            img.save(&path).map_err(|e| RunError::Plot { path: path.clone(), message: e.to_string() })?;
            Ok(path)
        };
        let all = self.p.to_vec(p)?;
        let (side, cells) = (N_GRID + 2, (N_GRID + 2) * (N_GRID + 2));
        let height = |t: usize, i: usize, j: usize| -> f32 { Into::<f64>::into(all[t * cells + (i + 1) * side + j + 1]) as f32 };
        let target: Vec<f32> = self.target.to_vec(p)?.into_iter().map(|v| Into::<f64>::into(v) as f32).collect();
        let gap = 8;
        let mut result = image::RgbImage::from_pixel(2 * n + gap, n, image::Rgb([255, 255, 255]));
        for i in 0..N_GRID {
            for j in 0..N_GRID {
                result.put_pixel(j as u32, i as u32, colour(height(STEPS - 1, i, j)));
                result.put_pixel(n + gap + j as u32, i as u32, colour(target[i * N_GRID + j]));
            }
        }
        // Steps 0, 51, .., 255 (the loss's step) every 51, then halfway to the end and the end.
        let last = self.max_steps - 1;
        let picks: Vec<usize> = (0..6).map(|k| k * (STEPS - 1) / 5).chain([(STEPS - 1 + last) / 2, last]).map(|t| t.min(last)).collect();
        let mut frames = image::RgbImage::from_pixel(4 * n + 3 * gap, 2 * n + gap, image::Rgb([255, 255, 255]));
        for (k, &t) in picks.iter().enumerate() {
            let (x0, y0) = ((k as u32 % 4) * (n + gap), (k as u32 / 4) * (n + gap));
            for i in 0..N_GRID {
                for j in 0..N_GRID {
                    frames.put_pixel(x0 + j as u32, y0 + i as u32, colour(height(t, i, j)));
                }
            }
        }
        Ok(vec![save(result, "result.png")?, save(frames, "frames.png")?])
    }
}
