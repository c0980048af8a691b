//! Paper Fig. 4 (middle) and Fig. 11: billiards. A cue ball is shot at a
//! triangle of 10 balls; gradient descent on the cue's initial position and
//! velocity makes the triangle's last ball (the blue one) end at (0.9, 0.75).
//!
//! Scene facts, from the original `billiards.py`: 11 balls of radius 0.03
//! (the cue at `init_x` = (0.1, 0.5) moving at `init_v` = (0.3, 0); a
//! triangle of 4 layers, ball (layer i, row j) at (0.5 + 2ri, 0.5 + 2rj -
//! 0.7ri)), elasticity 0.8, dt 0.003, 1024 steps in fields of 2048 (the
//! original's max_steps), forward Euler. Each step, `collide(t - 1)` tests
//! every ordered pair (i, j) (serial inner loops `j in 0..i` and
//! `j in i+1..n`) on the positions one step ahead; an approaching overlapping
//! pair adds the impulse -(1 + e)/2 (dir . v_rel) dir to `impulse[t]` and the
//! time-of-impact correction min(toi - dt, 0) * impulse to `x_inc[t]`
//! (summed per ball, then added: see `collide`); `advance(t)` then sets
//! v[t] = v[t-1] + impulse[t], x[t] = x[t-1] + dt v[t] + x_inc[t].
//! Loss = |x[1023, 10] - (0.9, 0.75)|^2. Plain gradient descent, learning
//! rate 0.01, 200 iterations, with the parameter update computed in f64 and
//! stored in f32, as the original's Python does.
//!
//! `--set mode=scan` is the original's `scan(zoom)` (Fig. 11): the cue starts
//! at (0.1, 0.5) with speed 0.3 at angle alpha = ((k + 0.5)/N - 0.5) pi zoom,
//! k = 0..N (N = `samples`, 1000 as in the original; `zoom` 1.0 or 0.23 for
//! the paper's two panels); it plots the objective and dL/dalpha (from the
//! gradient, dL/dv . (-0.3 sin alpha, 0.3 cos alpha)) against the angle in
//! degrees, and prints where the gradient changes sign and where the objective
//! jumps between neighbouring angles (contact switches).
//!
//! Departures: none in the physics or the optimizer. The original's initial
//! parameters are fixed, so `--seed` changes nothing (there are no random
//! numbers). The kernels are generic over the float type: the program runs
//! in f32 like the original, the gradient test in f64.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::field::Scalar;
use diffsim::prelude::*;
use plotters::style::RGBColor;

pub const N_BALLS: usize = 1 + (1 + LAYERS) * LAYERS / 2;
const LAYERS: usize = 4;
const TARGET_BALL: usize = N_BALLS - 1;
pub const MAX_STEPS: usize = 2048;
pub const STEPS: usize = 1024;
const DT: f64 = 0.003;
const RADIUS: f64 = 0.03;
const ELASTICITY: f64 = 0.8;
const GOAL_X: f64 = 0.9;
const GOAL_Y: f64 = 0.75;
const LEARNING_RATE: f64 = 0.01;
const ITERATIONS: usize = 200;
pub const INIT_X: [f64; 2] = [0.1, 0.5];
pub const INIT_V: [f64; 2] = [0.3, 0.0];

type Balls<T> = GradField<[T; 2], 2>;
type Param<T> = GradField<[T; 2], 0>;

#[kernel]
fn initialize<T: Scalar>(x: &Balls<T>, v: &Balls<T>, init_x: &Param<T>, init_v: &Param<T>) {
    x[(0usize, 0usize)] = init_x[()];
    v[(0usize, 0usize)] = init_v[()];
}

/// The impulse on ball i from ball j and its position correction.
#[func]
fn collide_pair(xi: Vec2, vi: Vec2, xj: Vec2, vj: Vec2) -> [Vec2; 2] {
    let dist = (xi + vi * DT) - (xj + vj * DT);
    let dist_norm = dist.norm();
    let rela_v = vi - vj;
    let mut imp = dist * 0.0;
    let mut x_inc_contrib = dist * 0.0;
    if dist_norm < 2.0 * RADIUS {
        // Taichi's normalized(dist, 1e-6): dist * (1 / (|dist| + 1e-6)).
        let dir = dist * (1.0 / (dist_norm + 1e-6));
        let projected_v = dir.dot(&rela_v);
        if projected_v < 0.0 {
            imp = dir * (-(1.0 + ELASTICITY) * 0.5 * projected_v);
            let toi = (dist_norm - 2.0 * RADIUS) / min(-1e-3, projected_v);
            x_inc_contrib = imp * min(toi - DT, 0.0);
        }
    }
    [imp, x_inc_contrib]
}

/// The original's two loops over i (j < i, then j > i) as one. The original
/// adds every pair's share to x_inc[t + 1, i] and impulse[t + 1, i] (cleared
/// before each run); here the shares are summed in locals, in the same order
/// from the same zero, and added once: the same f32 results, bit for bit,
/// without four atomic adds per pair (a CAS loop each on the CPU; they made
/// this kernel 5x slower).
#[kernel]
fn collide<T: Scalar>(x: &Balls<T>, v: &Balls<T>, x_inc: &Balls<T>, impulse: &Balls<T>, t: usize) {
    for i in 0..N_BALLS {
        let (xi, vi) = (x[(t, i)], v[(t, i)]);
        let mut imp_sum = xi * 0.0;
        let mut inc_sum = xi * 0.0;
        for j in 0..i {
            let [imp, inc] = collide_pair(xi, vi, x[(t, j)], v[(t, j)]);
            (imp_sum, inc_sum) = (imp_sum + imp, inc_sum + inc);
        }
        for j in (i + 1)..N_BALLS {
            let [imp, inc] = collide_pair(xi, vi, x[(t, j)], v[(t, j)]);
            (imp_sum, inc_sum) = (imp_sum + imp, inc_sum + inc);
        }
        x_inc[(t + 1, i)] += inc_sum;
        impulse[(t + 1, i)] += imp_sum;
    }
}

#[kernel]
fn advance<T: Scalar>(x: &Balls<T>, v: &Balls<T>, x_inc: &Balls<T>, impulse: &Balls<T>, t: usize) {
    for i in 0..N_BALLS {
        let nv = v[(t - 1, i)] + impulse[(t, i)];
        v[(t, i)] = nv;
        x[(t, i)] = x[(t - 1, i)] + nv * DT + x_inc[(t, i)];
    }
}

#[kernel]
fn compute_loss<T: Scalar>(x: &Balls<T>, loss: &GradField<T, 0>, t: usize) {
    let p = x[(t, TARGET_BALL)];
    let (dx, dy) = (p.at(0) - GOAL_X, p.at(1) - GOAL_Y);
    loss[()] = dx * dx + dy * dy;
}

/// The balls' state per step, the optimized cue, and the kernels.
pub struct Billiards<T: Real> {
    pub x: Balls<T>,
    v: Balls<T>,
    x_inc: Balls<T>,
    impulse: Balls<T>,
    pub init_x: Param<T>,
    pub init_v: Param<T>,
    pub loss: GradField<T, 0>,
    initialize: Kernel<()>,
    collide: Kernel<usize>,
    advance: Kernel<usize>,
    compute_loss: Kernel<usize>,
}

/// A loss with dL/d(init_x), dL/d(init_v) and the forward and backward times.
#[derive(Clone, Copy, Debug)]
pub struct Gradient {
    pub loss: f64,
    pub init_x: [f64; 2],
    pub init_v: [f64; 2],
    pub ms: [f64; 2],
}

/// The triangle: ball k = 1..=10 at layer i, row j.
fn triangle() -> Vec<[f64; 2]> {
    let mut balls = Vec::new();
    for i in 0..LAYERS {
        for j in 0..=i {
            let (i, j) = (i as f64, j as f64);
            balls.push([i * 2.0 * RADIUS + 0.5, j * 2.0 * RADIUS + 0.5 - i * RADIUS * 0.7]);
        }
    }
    balls
}

fn pair<T: Real>(v: [f64; 2]) -> [T; 2] {
    v.map(T::of)
}

impl<T: Real> Billiards<T> {
    pub fn new(pb: &mut ProgramBuilder) -> Result<Billiards<T>, Error> {
        let balls = |pb: &mut ProgramBuilder, name: &str| pb.field_with_grad(name, [MAX_STEPS, N_BALLS]);
        let (x, v, x_inc, impulse) = (balls(pb, "x"), balls(pb, "v"), balls(pb, "x_inc"), balls(pb, "impulse"));
        let (init_x, init_v) = (pb.field_with_grad("init_x", []), pb.field_with_grad("init_v", []));
        let loss = pb.field_with_grad("loss", []);
        Ok(Billiards {
            initialize: pb.kernel(initialize(&x, &v, &init_x, &init_v))?,
            collide: pb.kernel(collide(&x, &v, &x_inc, &impulse))?,
            advance: pb.kernel(advance(&x, &v, &x_inc, &impulse))?,
            compute_loss: pb.kernel(compute_loss(&x, &loss))?,
            x,
            v,
            x_inc,
            impulse,
            init_x,
            init_v,
            loss,
        })
    }

    /// Sets the cue's initial position and velocity.
    pub fn set_params<B: Backend>(&self, p: &mut B, init_x: [f64; 2], init_v: [f64; 2]) -> Result<(), Error> {
        self.init_x.set(p, [], pair(init_x))?;
        self.init_v.set(p, [], pair(init_v))
    }

    /// The cue's initial position and velocity.
    pub fn params<B: Backend>(&self, p: &B) -> Result<([f64; 2], [f64; 2]), Error> {
        Ok((self.init_x.get(p, [])?.map(Into::into), self.init_v.get(p, [])?.map(Into::into)))
    }

    /// Clears the state (the original's `clear()` of impulse and x_inc; x and
    /// v are rewritten by every step) and places the triangle.
    fn reset<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        for f in [&self.x, &self.v, &self.x_inc, &self.impulse] {
            f.zero(p)?;
        }
        self.loss.zero(p)?;
        triangle().into_iter().enumerate().try_for_each(|(k, at)| self.x.set(p, [0, k + 1], pair(at)))
    }

    /// The loss after `steps` steps (t = 1..steps) from the current parameters.
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize) -> Result<f64, Error> {
        self.reset(p)?;
        self.initialize.launch(p, ())?;
        for t in 1..steps {
            self.collide.launch(p, t - 1)?;
            self.advance.launch(p, t)?;
        }
        self.compute_loss.launch(p, steps - 1)?;
        Ok(self.loss.get(p, [])?.into())
    }

    /// The loss and its gradient, the launches recorded and replayed in reverse.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize) -> Result<Gradient, Error> {
        let mut clock = Stopwatch::start();
        self.reset(p)?;
        let mut rec = p.record_without_state();
        rec.launch(&self.initialize, ())?;
        for t in 1..steps {
            rec.launch(&self.collide, t - 1)?;
            rec.launch(&self.advance, t)?;
        }
        rec.launch(&self.compute_loss, steps - 1)?;
        let loss = self.loss.get(rec.program(), [])?.into();
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        let (gx, gv) = (self.init_x.grad().get(p, [])?, self.init_v.grad().get(p, [])?);
        Ok(Gradient { loss, init_x: gx.map(Into::into), init_v: gv.map(Into::into), ms: [fwd_ms, clock.lap()] })
    }

    /// One gradient-descent step (the update in f64, stored in T, as the
    /// original's Python does); returns the loss before it.
    pub fn step<B: Backend>(&self, p: &mut B, steps: usize) -> Result<Gradient, Error> {
        let g = self.loss_and_grad(p, steps)?;
        let (x, v) = self.params(p)?;
        let descend = |a: [f64; 2], g: [f64; 2]| [a[0] - LEARNING_RATE * g[0], a[1] - LEARNING_RATE * g[1]];
        self.set_params(p, descend(x, g.init_x), descend(v, g.init_v))?;
        Ok(g)
    }

    /// The original's `optimize()`: `iters` steps of gradient descent.
    pub fn optimize<B: Backend>(&self, p: &mut B, iters: usize, report: &mut Reporter) -> Result<Vec<f64>, Error> {
        let mut losses = Vec::with_capacity(iters);
        report.start(iters);
        for iter in 0..iters {
            let g = self.step(p, STEPS)?;
            losses.push(g.loss);
            report.iteration(iter, g.loss, g.ms[0], g.ms[1]);
        }
        report.finish();
        Ok(losses)
    }

    /// The original's `scan(zoom)`: the objective and dL/dalpha at `samples`
    /// angles alpha (radians) of the initial velocity.
    pub fn scan<B: Backend>(&self, p: &mut B, samples: usize, zoom: f64, report: &mut Reporter) -> Result<Scan, Error> {
        let mut scan = Scan::default();
        report.start(samples);
        for k in 0..samples {
            let alpha = ((k as f64 + 0.5) / samples as f64 - 0.5) * std::f64::consts::PI * zoom;
            let (speed, (s, c)) = (INIT_V[0], alpha.sin_cos());
            self.set_params(p, INIT_X, [speed * c, speed * s])?;
            let g = self.loss_and_grad(p, STEPS)?;
            scan.angles.push(alpha);
            scan.losses.push(g.loss);
            scan.slopes.push(g.init_v[0] * -speed * s + g.init_v[1] * speed * c);
            report.iteration(k, g.loss, g.ms[0], g.ms[1]);
        }
        report.finish();
        Ok(scan)
    }
}

/// Objectives and their derivatives along a sweep of the initial angle.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// The angles, in radians.
    pub angles: Vec<f64>,
    pub losses: Vec<f64>,
    /// dL/dalpha from the gradient.
    pub slopes: Vec<f64>,
}

impl Scan {
    /// Indices k where dL/dalpha changes sign between angles k and k + 1
    /// (exact zeros, the flat land, are skipped over).
    pub fn sign_flips(&self) -> Vec<usize> {
        let signed: Vec<(usize, f64)> = self.slopes.iter().copied().enumerate().filter(|(_, s)| *s != 0.0).collect();
        signed.windows(2).filter(|w| w[0].1.signum() != w[1].1.signum()).map(|w| w[0].0).collect()
    }

    /// Indices k where the objective jumps between angles k and k + 1: the
    /// change is more than 4 times (and 1e-4 more than) what the gradients at
    /// both ends predict.
    pub fn jumps(&self) -> Vec<usize> {
        (0..self.losses.len().saturating_sub(1))
            .filter(|&k| {
                let (dl, da) = (self.losses[k + 1] - self.losses[k], self.angles[k + 1] - self.angles[k]);
                let predicted = self.slopes[k].abs().max(self.slopes[k + 1].abs()) * da;
                dl.abs() > 4.0 * predicted + 1e-4
            })
            .collect()
    }

    /// Samples where the gradient is exactly zero (no collision reaches the
    /// target ball).
    pub fn flat(&self) -> usize {
        self.slopes.iter().filter(|s| **s == 0.0).count()
    }
}

fn degrees(angles: &[usize], scan: &Scan) -> String {
    let mid = |k: &usize| 0.5 * (scan.angles[*k] + scan.angles[*k + 1]).to_degrees();
    let shown: Vec<String> = angles.iter().take(40).map(|k| format!("{:.2}", mid(k))).collect();
    let more = if angles.len() > 40 { format!(", ... ({} more)", angles.len() - 40) } else { String::new() };
    format!("{} [{}{more}]", angles.len(), shown.join(", "))
}

impl Simulation for Billiards<f32> {
    const SETTINGS: &'static [Setting] = &[
        Setting { name: "mode", default: "optimize", help: "optimize (Fig. 4) or scan (Fig. 11: the objective against the initial angle)" },
        Setting { name: "zoom", default: "1.0", help: "scan: angles span +-90*zoom degrees (the paper: 1.0 and 0.23)" },
        Setting { name: "samples", default: "1000", help: "scan: angles sampled" },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Billiards<f32>, RunError> {
        mode(opts)?;
        Ok(Billiards::new(pb)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.init_x.name(), self.init_v.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, _: &RunOptions) -> Result<(), RunError> {
        Ok(self.set_params(p, INIT_X, INIT_V)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        if mode(opts)? == Mode::Scan {
            return self.run_scan(p, opts, report);
        }
        let mut out = Outcome { losses: self.optimize(p, opts.iters.unwrap_or(ITERATIONS), report)?, ..Default::default() };
        out.final_loss = self.forward(p, STEPS)?;
        let (x, v) = self.params(p)?;
        out.results.push(("init_x".into(), format!("{x:.6?}")));
        out.results.push(("init_v".into(), format!("{v:.6?}")));
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "billiards: |x_blue - goal|^2", &out.losses)?);
            out.files.extend(self.animate(p, opts)?);
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Optimize,
    Scan,
}

fn mode(opts: &RunOptions) -> Result<Mode, RunError> {
    match opts.setting::<String>("mode")?.as_str() {
        "optimize" => Ok(Mode::Optimize),
        "scan" => Ok(Mode::Scan),
        other => Err(RunError::BadSetting { name: "mode".into(), value: other.into(), expected: "`optimize` or `scan`" }),
    }
}

impl Billiards<f32> {
    fn run_scan<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let zoom: f64 = opts.setting("zoom")?;
        let samples: usize = opts.setting("samples")?;
        if !(zoom > 0.0 && zoom <= 2.0) {
            return Err(RunError::BadSetting { name: "zoom".into(), value: zoom.to_string(), expected: "a number in (0, 2]" });
        }
        if samples < 2 {
            return Err(RunError::BadSetting { name: "samples".into(), value: samples.to_string(), expected: "at least 2" });
        }
        let scan = self.scan(p, samples, zoom, report)?;
        let best = (0..samples).min_by(|&a, &b| scan.losses[a].total_cmp(&scan.losses[b])).unwrap_or(0);
        let mut out = Outcome { final_loss: scan.losses[best], ..Default::default() };
        out.results.push(("lowest objective".into(), format!("{:.6e} at {:.3} degrees", scan.losses[best], scan.angles[best].to_degrees())));
        out.results.push(("flat (zero gradient) samples".into(), format!("{} of {samples}", scan.flat())));
        out.results.push(("gradient sign flips (degrees)".into(), degrees(&scan.sign_flips(), &scan)));
        out.results.push(("objective jumps (degrees)".into(), degrees(&scan.jumps(), &scan)));
        if opts.pictures {
            let deg: Vec<f64> = scan.angles.iter().map(|a| a.to_degrees()).collect();
            let objective = plot::Chart {
                title: format!("Fig. 11: billiard scene objective (zoom {zoom})"),
                x_label: "angle of velocity (degrees)".into(),
                y_label: "objective |x_blue - goal|^2".into(),
                series: vec![plot::Series::new("objective", deg.clone(), scan.losses.clone(), plot::BLUE)],
                scale: plot::Scale::Linear,
            };
            // dL/d(degree), so that it reads against the objective's slope.
            let per_degree: Vec<f64> = scan.slopes.iter().map(|s| s * std::f64::consts::PI / 180.0).collect();
            let gradient = plot::Chart {
                title: format!("billiards: gradient along the scan (zoom {zoom})"),
                x_label: "angle of velocity (degrees)".into(),
                y_label: "d objective / d angle (per degree)".into(),
                series: vec![plot::Series::new("from the gradient", deg, per_degree, plot::RED)],
                scale: plot::Scale::Linear,
            };
            for (name, chart) in [("objective.png", objective), ("gradient.png", gradient)] {
                let path = opts.out.join(name);
                plot::draw_chart(&path, &chart)?;
                out.files.push(path);
            }
        }
        out.losses = scan.losses;
        Ok(out)
    }

    /// The last forward run (the final parameters), about 100 frames.
    fn animate<B: Backend>(&self, p: &B, opts: &RunOptions) -> Result<Vec<std::path::PathBuf>, RunError> {
        let xs = self.x.to_vec(p)?;
        let table = plot::Shape::Polygon { points: vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)], color: RGBColor(60, 115, 63) };
        let goal = plot::Shape::Circle { center: (GOAL_X, GOAL_Y), radius: RADIUS / 2.0, color: plot::COLORS[5] };
        let frame = |t: usize| -> Vec<plot::Shape> {
            let balls = (0..N_BALLS).map(|i| {
                let [x, y] = xs[t * N_BALLS + i];
                let color = match i {
                    0 => RGBColor(230, 230, 230),
                    TARGET_BALL => plot::BLUE,
                    _ => plot::RED,
                };
                plot::Shape::Circle { center: (x as f64, y as f64), radius: RADIUS, color }
            });
            [table.clone(), goal.clone()].into_iter().chain(balls).collect()
        };
        let frames = (0..STEPS).step_by(21).chain([STEPS - 1]).map(frame).collect();
        let anim = plot::Animation { title: "billiards, final iteration".into(), x_range: (0.0, 1.0), y_range: (0.0, 1.0), frames };
        plot::animate(&opts.out, "motion", &anim, 40, 4)
    }
}
