//! DiffTaichi's `smoke_taichi_cpu.py` and `smoke_taichi.py` (paper Table 2,
//! Fig. 5a): Eulerian smoke on a periodic grid; gradient descent on the whole
//! initial velocity field so that the smoke, carried for 100 steps, ends
//! looking like a target picture.
//!
//! Scene facts, read from the original programs (`--set scene=`):
//! - `bench` (smoke_taichi_cpu.py, the CPU benchmark, the default): 110 x 110
//!   cells, 6 Jacobi iterations per step, learning rate 100, 150 iterations.
//! - `showcase` (smoke_taichi.py): 128 x 128 cells, 10 Jacobi iterations,
//!   learning rate 400, 240 iterations; initial smoke a checkerboard of
//!   16-cell squares, `(i / 16 + j / 16) % 2`.
//! - Both: 100 steps (t = 1..99), dx = 1 / n, velocities in cells per step,
//!   periodic boundaries, single precision. Per step t: advect the velocity
//!   (v[t-1] carried by itself into v_updated[t]), its divergence
//!   div = -0.5 dx (central differences of v_updated), Jacobi iterations
//!   p[a+1] = (div + the 4 neighbours of p[a]) / 4 for a = 6t .. 6t+5 (each
//!   writing a new layer, so nothing is overwritten and the Tape needs no
//!   checkpoints), v[t] = v_updated[t] - 0.5 (central difference of p) / dx,
//!   then the smoke advected by v[t]. Advection is semi-Lagrangian: the
//!   departure point (y - v_0, x - v_1), floor for the cell, bilinear weights,
//!   indices wrapped. Loss = sum (target - smoke[99])^2 / n^2. Optimized:
//!   v[0] (zero at first), v[0] -= lr dL/dv[0].
//!
//! Two index quirks of the original, kept: the first Jacobi iteration of
//! step t reads layer 6t (N t for N iterations), which step t-1's last
//! iteration wrote (a warm start; zero at t = 1), and the velocity update
//! reads layer N t - 1, the *second to last* iteration of step t-1 (zero at
//! t = 1), not this step's result; this step's pressure only feeds the next
//! step's warm start.
//!
//! Departures: the pictures. The original reads its initial smoke
//! (`init_smoke.png`, horizontal stripes) and targets (`peace.png`,
//! `taichi.png`); without `--init IMAGE` / `--target IMAGE` the programs here
//! draw their own: horizontal stripes 4 cells thick every 20 rows for the
//! bench's smoke (the showcase's checkerboard is the original's own), a peace
//! sign (bench) and a yin-yang (showcase) as targets. The pressure field has
//! the N x 99 + 1 layers the run writes (the original allocates 100 x (N + 1)).
//! The original shows and writes frames every 10 iterations; here, with
//! pictures on, the final state is drawn (frames, result beside target, loss).
//! The kernels are generic over the float type (f32 as the original; f64 for
//! the finite-difference test). No random numbers: the start (v = 0) is the
//! original's, so `--seed` changes nothing.
//!
//! Port check against Taichi 1.7 (one CPU thread), with the original's
//! pictures written as grey PNGs of the grid's size and given as `--init` and
//! `--target` (bench: init_smoke.png's red channel, peace.png's alpha at
//! [::2, ::2]; showcase: taichi.png's blue channel resized by cv2): bench
//! losses agree to 7.4 digits at iteration 0 and to 1e-6 relative through
//! iteration 7, then drift (f32 rounding amplified through the floor switches
//! of the advection: 1e-3 by iteration 17, 1-2% after 30); after 50
//! iterations 0.0508 here, 0.0498 there (from 0.3978, 7.8x and 8.0x lower).
//! Showcase: 10 iterations agree to 5.1-8 digits (0.4986 to 0.1246).
//! Speed (`diffsim bench smoke --threads 1` against taichi_run.py, both on
//! one pinned core): about 95-100 ms against 530 ms an iteration (bench,
//! 5.4x), 298 against 1758 ms (showcase, 5.9x). The Jacobi gradient
//! (`compute_p_grad`, 594 launches an iteration, each scattering into the 4
//! neighbours of the previous layer's adjoint) and the advection gradients
//! (scatter to 4 data-dependent cells, plus the weights' derivatives) take
//! over half of the time.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::Scalar;
use diffsim::prelude::*;
use std::path::{Path, PathBuf};

/// Time steps of a run (t = 1..STEPS-1), as in the original.
pub const STEPS: usize = 100;

type Grid<T> = ScalarField<T, 3>;
type VGrid<T> = VectorField<T, 2, 3>;

// --- the original's kernels ---
/// Semi-Lagrangian lookup from cell (y, x) moving at `vel`: the corners of
/// the periodic n x n cell the departure point falls in (left, top, right,
/// bottom) and its weights (rw, bw), as both of the original's advections.
#[func]
fn departure_cell<T: Scalar>(y: Expr, x: Expr, vel: Vec2, n: usize) -> [Expr; 6] {
    let center_x = (y as T) - vel.at(0);
    let center_y = (x as T) - vel.at(1);
    let (left, top) = (center_x.floor() as i32, center_y.floor() as i32);
    let rw = center_x - (left as T);
    let bw = center_y - (top as T);
    let wrap = n as i32;
    let left = ((left % wrap + wrap) % wrap) as usize;
    let top = ((top % wrap + wrap) % wrap) as usize;
    let (right, bot) = ((left + 1) % n, (top + 1) % n);
    [left, top, right, bot, rw, bw]
}

#[kernel]
fn advect_velocity<T: Scalar>(v: &VGrid<T>, v_updated: &VGrid<T>, n: &usize, t: usize) {
    for y in 0..*n {
        for x in 0..*n {
            let [left, top, right, bot, rw, bw] = departure_cell::<T>(y, x, v[(t - 1, y, x)], *n);
            let f = |i, j| v[(t - 1, i, j)];
            v_updated[(t, y, x)] = (f(left, top) * (1.0 - bw) + f(left, bot) * bw) * (1.0 - rw) + (f(right, top) * (1.0 - bw) + f(right, bot) * bw) * rw;
        }
    }
}

#[kernel]
fn compute_div<T: Scalar>(v_updated: &VGrid<T>, div: &Grid<T>, n: &usize, t: usize) {
    for y in 0..*n {
        for x in 0..*n {
            let (up, down, right, left) = ((y + 1) % *n, (y + *n - 1) % *n, (x + 1) % *n, (x + *n - 1) % *n);
            let scale = -0.5 / (*n as f64);
            div[(t, y, x)] =
                scale * (v_updated[(t, up, x)].at(0) - v_updated[(t, down, x)].at(0) + v_updated[(t, y, right)].at(1) - v_updated[(t, y, left)].at(1));
        }
    }
}

#[kernel]
fn compute_p<T: Scalar>(div: &Grid<T>, p: &Grid<T>, n: &usize, t: usize, a: usize) {
    for y in 0..*n {
        for x in 0..*n {
            let (up, down, right, left) = ((y + 1) % *n, (y + *n - 1) % *n, (x + 1) % *n, (x + *n - 1) % *n);
            p[(a + 1, y, x)] = (div[(t, y, x)] + p[(a, down, x)] + p[(a, up, x)] + p[(a, y, left)] + p[(a, y, right)]) / 4.0;
        }
    }
}

#[kernel]
fn update_v<T: Scalar>(v: &VGrid<T>, v_updated: &VGrid<T>, p: &Grid<T>, n: &usize, t: usize, a: usize) {
    for y in 0..*n {
        for x in 0..*n {
            let (up, down, right, left) = ((y + 1) % *n, (y + *n - 1) % *n, (x + 1) % *n, (x + *n - 1) % *n);
            let dx = 1.0 / (*n as f64);
            let vu = v_updated[(t, y, x)];
            let v0 = vu.at(0) - 0.5 * (p[(a, up, x)] - p[(a, down, x)]) / dx;
            let v1 = vu.at(1) - 0.5 * (p[(a, y, right)] - p[(a, y, left)]) / dx;
            v[(t, y, x)] = Vector([v0, v1]);
        }
    }
}

#[kernel]
fn advect_smoke<T: Scalar>(v: &VGrid<T>, smoke: &Grid<T>, n: &usize, t: usize) {
    for y in 0..*n {
        for x in 0..*n {
            let [left, top, right, bot, rw, bw] = departure_cell::<T>(y, x, v[(t, y, x)], *n);
            let f = |i, j| smoke[(t - 1, i, j)];
            smoke[(t, y, x)] = (1.0 - rw) * ((1.0 - bw) * f(left, top) + bw * f(left, bot)) + rw * ((1.0 - bw) * f(right, top) + bw * f(right, bot));
        }
    }
}

#[kernel]
fn compute_loss<T: Scalar>(target: &ScalarField<T, 2>, smoke: &Grid<T>, loss: &ScalarField<T, 0>, n: &usize, t: usize) {
    for i in 0..*n {
        for j in 0..*n {
            let d = target[(i, j)] - smoke[(t, i, j)];
            loss[()] += d * d * (1.0 / ((*n * *n) as f64));
        }
    }
}

/// Gradient descent on v[0] (no gradient of its own).
#[kernel(no_grad)]
fn apply_grad<T: Scalar>(v: &GradField<[T; 2], 3>, n: &usize, lr: &f64) {
    for i in 0..*n {
        for j in 0..*n {
            v[(0usize, i, j)] = v[(0usize, i, j)] - v.grad()[(0usize, i, j)] * *lr;
        }
    }
}
// --- end of the original's kernels ---

/// Which of the two original programs (`--set scene=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// smoke_taichi_cpu.py: 110 x 110, 6 Jacobi iterations.
    Bench,
    /// smoke_taichi.py: 128 x 128, 10 Jacobi iterations.
    Showcase,
}

impl Scene {
    pub fn parse(value: &str) -> Result<Scene, RunError> {
        match value {
            "bench" => Ok(Scene::Bench),
            "showcase" => Ok(Scene::Showcase),
            _ => Err(RunError::BadSetting { name: "scene".into(), value: value.into(), expected: "bench or showcase" }),
        }
    }

    /// Cells per side.
    pub fn n(self) -> usize {
        match self {
            Scene::Bench => 110,
            Scene::Showcase => 128,
        }
    }

    /// Jacobi iterations per step.
    pub fn jacobi(self) -> usize {
        match self {
            Scene::Bench => 6,
            Scene::Showcase => 10,
        }
    }

    pub fn learning_rate(self) -> f64 {
        match self {
            Scene::Bench => 100.0,
            Scene::Showcase => 400.0,
        }
    }

    /// The original's default iteration count.
    pub fn iterations(self) -> usize {
        match self {
            Scene::Bench => 150,
            Scene::Showcase => 240,
        }
    }

    /// The procedural initial smoke, row-major, row 0 first.
    pub fn initial_smoke(self) -> Vec<f64> {
        let n = self.n();
        (0..n * n)
            .map(|c| {
                let (i, j) = (c / n, c % n);
                match self {
                    Scene::Bench => f64::from(i % 20 >= 8 && i % 20 < 12),
                    Scene::Showcase => ((i / 16 + j / 16) % 2) as f64,
                }
            })
            .collect()
    }

    /// The procedural target picture, row-major, row 0 first.
    pub fn target(self) -> Vec<f64> {
        let n = self.n();
        let s = n as f64;
        (0..n * n)
            .map(|c| {
                // Cell centre in [-1, 1]^2, y up.
                let (i, j) = (c / n, c % n);
                let (x, y) = (2.0 * (j as f64 + 0.5) / s - 1.0, 1.0 - 2.0 * (i as f64 + 0.5) / s);
                let r = (x * x + y * y).sqrt();
                let inside = match self {
                    Scene::Bench => {
                        // A peace sign: a ring, a vertical bar, two legs down-left and down-right.
                        let ring = (0.62..0.8).contains(&r);
                        let bar = x.abs() < 0.08 && r < 0.7;
                        let leg = y < 0.0 && r < 0.7 && (x.abs() + y).abs() * std::f64::consts::FRAC_1_SQRT_2 < 0.08;
                        ring || bar || leg
                    }
                    Scene::Showcase => {
                        // A yin-yang: the right half of a disk, swapped inside two half-size disks, two dots.
                        let upper = (x * x + (y - 0.4) * (y - 0.4)).sqrt();
                        let lower = (x * x + (y + 0.4) * (y + 0.4)).sqrt();
                        let mut dark = x > 0.0;
                        if upper < 0.4 {
                            dark = upper < 0.12;
                        } else if lower < 0.4 {
                            dark = lower >= 0.12;
                        }
                        r < 0.8 && dark
                    }
                };
                f64::from(inside)
            })
            .collect()
    }
}

/// The fields and kernels, in float type `T`.
pub struct Smoke<T: Real> {
    pub scene: Scene,
    pub n: usize,
    pub steps: usize,
    pub v: GradField<[T; 2], 3>,
    pub smoke: GradField<T, 3>,
    pub target: Field<T, 2>,
    pub loss: GradField<T, 0>,
    advect_velocity: Kernel<usize>,
    compute_div: Kernel<usize>,
    compute_p: Kernel<(usize, usize)>,
    update_v: Kernel<(usize, usize)>,
    advect_smoke: Kernel<usize>,
    compute_loss: Kernel<usize>,
    apply_grad: Kernel<()>,
}

/// The loss, dL/dv[0] (row-major) and the forward and backward milliseconds.
pub type LossAndGrad<T> = (T, Vec<[T; 2]>, [f64; 2]);

impl<T: Real> Smoke<T> {
    /// Declares the scene's fields and kernels for a run of `steps` steps.
    pub fn new(pb: &mut ProgramBuilder, scene: Scene, steps: usize) -> Result<Smoke<T>, Error> {
        let (n, jacobi) = (scene.n(), scene.jacobi());
        let v = pb.field_with_grad("v", [steps, n, n]);
        let v_updated = pb.field_with_grad("v_updated", [steps, n, n]);
        let smoke = pb.field_with_grad("smoke", [steps, n, n]);
        let div = pb.field_with_grad("div", [steps, n, n]);
        let p = pb.field_with_grad("p", [jacobi * (steps - 1) + 1, n, n]);
        let target = pb.field("target", [n, n]);
        let loss = pb.field_with_grad("loss", []);
        Ok(Smoke {
            advect_velocity: pb.kernel(advect_velocity(&v, &v_updated, &n))?,
            compute_div: pb.kernel(compute_div(&v_updated, &div, &n))?,
            compute_p: pb.kernel(compute_p(&div, &p, &n))?,
            update_v: pb.kernel(update_v(&v, &v_updated, &p, &n))?,
            advect_smoke: pb.kernel(advect_smoke(&v, &smoke, &n))?,
            compute_loss: pb.kernel(compute_loss(&target, &smoke, &loss, &n))?,
            apply_grad: pb.kernel(apply_grad(&v, &n, &scene.learning_rate()))?,
            scene,
            n,
            steps,
            v,
            smoke,
            target,
            loss,
        })
    }

    /// Sets the initial smoke and the target (row-major, n x n each).
    pub fn set_pictures<B: Backend>(&self, p: &mut B, initial: &[f64], target: &[f64]) -> Result<(), Error> {
        let nn = self.n * self.n;
        assert!(initial.len() == nn && target.len() == nn, "pictures of {} cells for a {} x {} grid", initial.len(), self.n, self.n);
        self.target.copy_from(p, &target.iter().map(|&g| T::of(g)).collect::<Vec<_>>())?;
        for (c, &g) in initial.iter().enumerate() {
            self.smoke.set(p, [0, c / self.n, c % self.n], T::of(g))?;
        }
        Ok(())
    }

    /// The initial velocity v[0], row-major.
    pub fn set_initial_velocity<B: Backend>(&self, p: &mut B, v0: &[[T; 2]]) -> Result<(), Error> {
        v0.iter().enumerate().try_for_each(|(c, &v)| self.v.set(p, [0, c / self.n, c % self.n], v))
    }

    /// The original's time loop, `launch` running (or recording) each kernel.
    fn simulate(&self, mut launch: impl FnMut(Launch<'_>) -> Result<(), Error>) -> Result<(), Error> {
        let jacobi = self.scene.jacobi();
        for t in 1..self.steps {
            launch(Launch::Step(&self.advect_velocity, t))?;
            launch(Launch::Step(&self.compute_div, t))?;
            for k in 0..jacobi {
                launch(Launch::Layer(&self.compute_p, (t, k + jacobi * (t - 1))))?;
            }
            // The original reads layer N t - 1 of its layout, whose step t
            // writes N t + 1 ..= N t + N: here layers are shifted down by N
            // (step t writes N (t - 1) + 1 ..= N t), so N t - 1 is N (t - 1) - 1;
            // at t = 1 that layer (5 in the original) is never written: zero,
            // and so is layer 0 here (step 1's warm start), which it reads.
            let a = (jacobi * (t - 1)).saturating_sub(1);
            launch(Launch::Layer(&self.update_v, (t, a)))?;
            launch(Launch::Step(&self.advect_smoke, t))?;
        }
        launch(Launch::Step(&self.compute_loss, self.steps - 1))
    }

    /// The loss of a forward run from the present v[0].
    pub fn forward<B: Backend>(&self, p: &mut B) -> Result<T, Error> {
        self.loss.zero(p)?;
        self.simulate(|l| match l {
            Launch::Step(k, t) => k.launch(p, t),
            Launch::Layer(k, args) => k.launch(p, args),
        })?;
        self.loss.get(p, [])
    }

    /// The loss and its gradient with respect to v[0], and the times.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B) -> Result<LossAndGrad<T>, Error> {
        let ms = self.record_and_backward(p)?;
        let loss = self.loss.get(p, [])?;
        let nn = self.n * self.n;
        let grad = self.v.grad().to_vec(p)?[..nn].to_vec();
        Ok((loss, grad, ms))
    }

    /// Records a forward run and runs its gradients; returns the forward and
    /// backward milliseconds.
    fn record_and_backward<B: Backend>(&self, p: &mut B) -> Result<[f64; 2], Error> {
        let mut clock = Stopwatch::start();
        self.loss.zero(p)?;
        let mut rec = p.record_without_state();
        self.simulate(|l| match l {
            Launch::Step(k, t) => rec.launch(k, t),
            Launch::Layer(k, args) => rec.launch(k, args),
        })?;
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        Ok([fwd_ms, clock.lap()])
    }

    /// One iteration of the original: loss, gradient, v[0] -= lr dL/dv[0].
    pub fn step<B: Backend>(&self, p: &mut B) -> Result<(T, [f64; 2]), Error> {
        let ms = self.record_and_backward(p)?;
        let loss = self.loss.get(p, [])?;
        self.apply_grad.launch(p, ())?;
        Ok((loss, ms))
    }

    /// Smoke density at step t, row-major.
    fn frame<B: Backend>(&self, p: &B, t: usize) -> Result<Vec<f64>, Error> {
        let all = self.smoke.to_vec(p)?;
        let nn = self.n * self.n;
        Ok(all[t * nn..(t + 1) * nn].iter().map(|&g| g.into()).collect())
    }
}

/// One launch of the time loop.
enum Launch<'k> {
    Step(&'k Kernel<usize>, usize),
    Layer(&'k Kernel<(usize, usize)>, (usize, usize)),
}

/// The program for `scene` over `steps` steps, with the procedural pictures.
pub fn program<T: Real>(scene: Scene, steps: usize) -> Result<(Program, Smoke<T>), Error> {
    let mut pb = ProgramBuilder::new();
    let sim = Smoke::<T>::new(&mut pb, scene, steps)?;
    let mut p = pb.build()?;
    sim.set_pictures(&mut p, &scene.initial_smoke(), &scene.target())?;
    Ok((p, sim))
}

impl Simulation for Smoke<f32> {
    const SETTINGS: &'static [Setting] = &[Setting {
        name: "scene",
        default: "bench",
        help: "bench: smoke_taichi_cpu.py (110 x 110, 6 Jacobi iterations); showcase: smoke_taichi.py (128 x 128, 10)",
    }];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Smoke<f32>, RunError> {
        let scene = Scene::parse(&opts.setting::<String>("scene")?)?;
        Ok(Smoke::new(pb, scene, STEPS)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.v.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        let n = self.n;
        let picture = |path: &Option<PathBuf>, default: fn(Scene) -> Vec<f64>| -> Result<Vec<f64>, RunError> {
            match path {
                Some(path) => Ok(crate::image::load_gray(path, n, n)?.into_iter().map(f64::from).collect()),
                None => Ok(default(self.scene)),
            }
        };
        let (initial, target) = (picture(&opts.init, Scene::initial_smoke)?, picture(&opts.target, Scene::target)?);
        self.set_pictures(p, &initial, &target)?;
        Ok(())
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let iters = opts.iters.unwrap_or(self.scene.iterations());
        let mut out = Outcome::default();
        report.start(iters);
        for iter in 0..iters {
            let (loss, [fwd_ms, bwd_ms]) = self.step(p)?;
            out.losses.push(loss as f64);
            report.iteration(iter, loss as f64, fwd_ms, bwd_ms);
        }
        report.finish();
        // The original's final forward run, from the optimized v[0].
        out.final_loss = self.forward(p)? as f64;
        if let (Some(first), true) = (out.losses.first(), out.final_loss > 0.0) {
            out.results.push(("loss: first / final".into(), format!("{:.4e} / {:.4e} ({:.2}x lower)", first, out.final_loss, first / out.final_loss)));
        }
        if opts.pictures {
            let title = format!("smoke ({:?}): sum (target - smoke)^2 / n^2", self.scene).to_lowercase();
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), &title, &out.losses)?);
            out.files.extend(self.pictures(p, &opts.out)?);
        }
        Ok(out)
    }
}

impl Smoke<f32> {
    /// The final run's smoke as a GIF and 4 PNG stills, and the initial smoke,
    /// the final smoke and the target side by side.
    fn pictures<B: Backend>(&self, p: &B, dir: &Path) -> Result<Vec<PathBuf>, RunError> {
        let n = self.n;
        let scale = 3;
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |e: String| RunError::Plot { path: path.clone(), message: e }
        };
        let grey = |g: f64| (255.0 * g.clamp(0.0, 1.0)).round() as u8;
        let mut written = Vec::new();
        // Frames: every other step (50 frames) as a GIF.
        let frames: Vec<usize> = (0..self.steps).step_by(2).chain([self.steps - 1]).collect();
        let gif = dir.join("smoke.gif");
        {
            use plotters::prelude::*;
            let side = (n * scale) as u32;
            let root = BitMapBackend::gif(&gif, (side, side), 60).map_err(|e| failed(&gif)(e.to_string()))?.into_drawing_area();
            for &t in &frames {
                let frame = self.frame(p, t)?;
                root.fill(&BLACK).map_err(|e| failed(&gif)(e.to_string()))?;
                for (c, &g) in frame.iter().enumerate() {
                    let level = grey(g);
                    let (i, j) = ((c / n * scale) as i32, (c % n * scale) as i32);
                    for (di, dj) in (0..scale as i32).flat_map(|a| (0..scale as i32).map(move |b| (a, b))) {
                        root.draw_pixel((j + dj, i + di), &RGBColor(level, level, level)).map_err(|e| failed(&gif)(e.to_string()))?;
                    }
                }
                root.present().map_err(|e| failed(&gif)(e.to_string()))?;
            }
        }
        written.push(gif);
        let still = |cells: &[Vec<f64>], path: &Path| -> Result<(), RunError> {
            let (w, h) = ((cells.len() * (n + 4) - 4) * scale, n * scale);
            let img = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
                let (x, y) = (x as usize / scale, y as usize / scale);
                let (panel, col) = (x / (n + 4), x % (n + 4));
                image::Luma([if col < n { grey(cells[panel][y * n + col]) } else { 128 }])
            });
            img.save(path).map_err(|e| failed(path)(e.to_string()))
        };
        for k in 0..4 {
            let t = k * (self.steps - 1) / 3;
            let path = dir.join(format!("smoke_{t:04}.png"));
            still(&[self.frame(p, t)?], &path)?;
            written.push(path);
        }
        let target: Vec<f64> = self.target.to_vec(p)?.into_iter().map(f64::from).collect();
        let path = dir.join("result_vs_target.png");
        still(&[self.frame(p, 0)?, self.frame(p, self.steps - 1)?, target], &path)?;
        written.push(path);
        Ok(written)
    }
}
