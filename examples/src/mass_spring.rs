//! Paper Fig. 4 (left) and Fig. 9: mass-spring robots walking to the right.
//! A neural-network controller (10 sine waves and the robot's state in, 32
//! tanh hidden units, one tanh output per spring) sets each spring's rest
//! length L (1 + a act); the loss is -x of the head mass (mass 0) after 682
//! steps; normalized gradient descent (step 0.2 / |g|), 100 iterations.
//!
//! Scene facts from DiffTaichi's `mass_spring.py` and
//! `mass_spring_robot_config.py`: robot 1 = 14 masses / 30 springs (4
//! actuated), robot 2 = 20 / 46 (8), robot 3 = 26 / 61 (11), built from mesh
//! squares and triangles of side 0.05 (stiffness 3e4, actuation 0.15), robot 0
//! = the 6-mass / 11-spring robot A (stiffness 1.4e4, actuation 0.1); dt 0.004,
//! gravity -4.8, damping 15 (`v *= exp(-dt damping)`), ground y = 0.1, goal
//! (0.9, 0.2). Per step t: compute_center, nn1, nn2, apply_spring_force (the
//! impulse dt (len - L (1 + a act)) k / len * dist, atomically into
//! v_inc[t + 1]) on step t - 1's state, then one of the two integrators:
//! `toi=true` (the program's `train` default) splits the step at the time of
//! impact and stops the mass on the ground; `toi=false` zeroes the velocity
//! of a mass below the ground moving down. State is stored per step (2 x
//! steps rows, the original's final visualization length), so the Tape
//! replays the gradients without checkpointing.
//!
//! Departures: the initial weights are normal draws (scaled as the
//! original: sqrt(2 / (hidden + inputs)) x 2 and sqrt(2 / (hidden + springs))
//! x 3, biases zero) from `--seed`, not numpy's `np.random.seed(0)` stream
//! (write numpy's draws to an npz and pass `--params` to start where the
//! original does). The goal is a constant (the original's goal field is
//! always (0.9, 0.2)). The original's `plot` task (Fig. 9) reuses its bias
//! fields across its five runs; here every run starts from zero biases. The
//! kernels are generic over the float type: the example runs in f32, as the
//! original; f64 programs ([`Robot<f64>`]) are for gradient checks (their sine
//! inputs are still computed in f32).

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::Scalar;
use diffsim::prelude::*;
use ds_runtime::gradcheck::Rng;
use plotters::style::RGBColor;

/// Optimization steps of the original (`2048 // 3`).
pub const STEPS: usize = 2048 / 3;
const ITERATIONS: usize = 100;
const DT: f64 = 0.004;
const GRAVITY: f64 = -4.8;
const DAMPING: f64 = 15.0;
const GROUND: f64 = 0.1;
const SPRING_OMEGA: usize = 10;
const GOAL: [f64; 2] = [0.9, 0.2];
const N_SIN_WAVES: usize = 10;
pub const N_HIDDEN: usize = 32;
/// The length of the normalized gradient step.
const STEP_LENGTH: f64 = 0.2;

type Points<T> = VectorField<T, 2, 2>;

// --- the original's kernels ---
#[kernel]
fn compute_center<T: Scalar>(x: &Points<T>, center: &VectorField<T, 2, 1>, n_objects: &usize, t: usize) {
    let mut c = x[(t, 0usize)];
    for i in unroll(1..*n_objects) {
        c = c + x[(t, i)];
    }
    center[(t,)] = c * (1.0 / *n_objects as f64);
}

#[kernel]
#[allow(clippy::too_many_arguments)]
fn nn1<T: Scalar>(
    x: &Points<T>,
    v: &Points<T>,
    center: &VectorField<T, 2, 1>,
    weights1: &ScalarField<T, 2>,
    bias1: &ScalarField<T, 1>,
    hidden: &ScalarField<T, 2>,
    n_objects: &usize,
    t: usize,
) {
    for i in 0..N_HIDDEN {
        // Taichi's `spring_omega * t * dt`: an i32 product times an f32.
        let phase = ((SPRING_OMEGA * t) as f32) * DT;
        let mut actuation = weights1[(i, 0usize)] * phase.sin();
        for j in unroll(1..N_SIN_WAVES) {
            actuation = actuation + weights1[(i, j)] * (phase + 2.0 * std::f64::consts::PI / N_SIN_WAVES as f64 * j as f64).sin();
        }
        let c = center[(t,)];
        for j in unroll(0..*n_objects) {
            let offset = x[(t, j)] - c;
            let vj = v[(t, j)];
            // a smaller weight, as the original: there are many of them
            actuation = actuation + weights1[(i, j * 4 + N_SIN_WAVES)] * offset.at(0) * 0.05;
            actuation = actuation + weights1[(i, j * 4 + N_SIN_WAVES + 1)] * offset.at(1) * 0.05;
            actuation = actuation + weights1[(i, j * 4 + N_SIN_WAVES + 2)] * vj.at(0) * 0.05;
            actuation = actuation + weights1[(i, j * 4 + N_SIN_WAVES + 3)] * vj.at(1) * 0.05;
        }
        let goal = *n_objects * 4 + N_SIN_WAVES;
        actuation = actuation + weights1[(i, goal)] * (GOAL[0] - c.at(0));
        actuation = actuation + weights1[(i, goal + 1)] * (GOAL[1] - c.at(1));
        actuation = actuation + bias1[(i,)];
        hidden[(t, i)] = actuation.tanh();
    }
}

#[kernel]
fn nn2<T: Scalar>(hidden: &ScalarField<T, 2>, weights2: &ScalarField<T, 2>, bias2: &ScalarField<T, 1>, act: &ScalarField<T, 2>, n_springs: &usize, t: usize) {
    for i in 0..*n_springs {
        let mut actuation = weights2[(i, 0usize)] * hidden[(t, 0usize)];
        for j in unroll(1..N_HIDDEN) {
            actuation = actuation + weights2[(i, j)] * hidden[(t, j)];
        }
        actuation = actuation + bias2[(i,)];
        act[(t, i)] = actuation.tanh();
    }
}

#[kernel]
#[allow(clippy::too_many_arguments)]
fn apply_spring_force<T: Scalar>(
    x: &Points<T>,
    v_inc: &Points<T>,
    act: &ScalarField<T, 2>,
    spring_anchor_a: &ScalarField<i32, 1>,
    spring_anchor_b: &ScalarField<i32, 1>,
    spring_length: &ScalarField<T, 1>,
    spring_stiffness: &ScalarField<T, 1>,
    spring_actuation: &ScalarField<T, 1>,
    n_springs: &usize,
    t: usize,
) {
    for i in 0..*n_springs {
        let (a, b) = (spring_anchor_a[(i,)] as usize, spring_anchor_b[(i,)] as usize);
        let dist = x[(t, a)] - x[(t, b)];
        let length = dist.norm() + 1e-4;
        let target_length = spring_length[(i,)] * (1.0 + spring_actuation[(i,)] * act[(t, i)]);
        let impulse = dist * (DT * (length - target_length) * spring_stiffness[(i,)] / length);
        v_inc[(t + 1, a)] -= impulse;
        v_inc[(t + 1, b)] += impulse;
    }
}

/// The step with the time of impact: a mass reaching the ground stops there.
#[kernel]
fn advance_toi<T: Scalar>(x: &Points<T>, v: &Points<T>, v_inc: &Points<T>, n_objects: &usize, t: usize) {
    for i in 0..*n_objects {
        let damped = v[(t - 1, i)] * (-DT * DAMPING).exp();
        let old_v = Vector([damped.at(0), damped.at(1) + DT * GRAVITY]) + v_inc[(t, i)];
        let old_x = x[(t - 1, i)];
        let new_x = old_x + old_v * DT;
        let zero = Vec2::splat(0.0, T::TY);
        let mut toi = zero.at(0);
        let mut new_v = old_v;
        if new_x.at(1) < GROUND && old_v.at(1) < -1e-4 {
            toi = -(old_x.at(1) - GROUND) / old_v.at(1);
            new_v = zero;
        }
        v[(t, i)] = new_v;
        x[(t, i)] = old_x + old_v * toi + new_v * (DT - toi);
    }
}

/// The step without it: a mass below the ground moving down stops.
#[kernel]
fn advance_no_toi<T: Scalar>(x: &Points<T>, v: &Points<T>, v_inc: &Points<T>, n_objects: &usize, t: usize) {
    for i in 0..*n_objects {
        let damped = v[(t - 1, i)] * (-DT * DAMPING).exp();
        let old_v = Vector([damped.at(0), damped.at(1) + DT * GRAVITY]) + v_inc[(t, i)];
        let old_x = x[(t - 1, i)];
        let mut new_v = old_v;
        let depth = old_x.at(1) - GROUND;
        if depth < 0.0 && new_v.at(1) < 0.0 {
            new_v = Vec2::splat(0.0, T::TY);
        }
        v[(t, i)] = new_v;
        x[(t, i)] = old_x + new_v * DT;
    }
}

#[kernel]
fn compute_loss<T: Scalar>(x: &Points<T>, loss: &ScalarField<T, 0>, t: usize) {
    loss[()] = -x[(t, 0usize)].at(0);
}
// --- end of the original's kernels ---

/// A spring: its masses, rest length, stiffness and actuation amplitude.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spring {
    pub a: usize,
    pub b: usize,
    pub length: f64,
    pub stiffness: f64,
    pub actuation: f64,
}

/// A robot: mass positions and springs, as `mass_spring_robot_config.py` builds them.
#[derive(Clone, Debug, Default)]
pub struct RobotShape {
    pub objects: Vec<[f64; 2]>,
    pub springs: Vec<Spring>,
    /// Mesh points by grid coordinates (twice the original's, to keep the
    /// triangles' half coordinates integral).
    points: Vec<(i32, i32)>,
    mesh_springs: Vec<(usize, usize)>,
}

impl RobotShape {
    fn add_spring(&mut self, a: usize, b: usize, stiffness: f64, actuation: f64) {
        let (p, q) = (self.objects[a], self.objects[b]);
        let length = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
        self.springs.push(Spring { a, b, length, stiffness, actuation });
    }

    /// The mesh point at grid (i2 / 2, j2 / 2), added the first time.
    fn mesh_point(&mut self, i2: i32, j2: i32) -> usize {
        if let Some(k) = self.points.iter().position(|&p| p == (i2, j2)) {
            return k;
        }
        self.objects.push([i2 as f64 / 2.0 * 0.05 + 0.1, j2 as f64 / 2.0 * 0.05 + 0.1]);
        self.points.push((i2, j2));
        self.objects.len() - 1
    }

    fn mesh_spring(&mut self, a: usize, b: usize, actuation: f64) {
        if self.mesh_springs.iter().any(|&s| s == (a, b) || s == (b, a)) {
            return;
        }
        self.mesh_springs.push((a, b));
        self.add_spring(a, b, 3e4, actuation);
    }

    fn square(&mut self, i: i32, j: i32, actuation: f64) {
        let a = self.mesh_point(2 * i, 2 * j);
        let b = self.mesh_point(2 * i, 2 * j + 2);
        let c = self.mesh_point(2 * i + 2, 2 * j);
        let d = self.mesh_point(2 * i + 2, 2 * j + 2);
        self.mesh_spring(a, b, actuation);
        self.mesh_spring(c, d, actuation);
        for p in [a, b, c, d] {
            for q in [a, b, c, d] {
                if p != q {
                    self.mesh_spring(p, q, 0.0);
                }
            }
        }
    }

    fn triangle(&mut self, i: i32, j: i32) {
        let a = self.mesh_point(2 * i + 1, 2 * j + 1);
        let b = self.mesh_point(2 * i, 2 * j + 2);
        let d = self.mesh_point(2 * i + 2, 2 * j + 2);
        for p in [a, b, d] {
            for q in [a, b, d] {
                if p != q {
                    self.mesh_spring(p, q, 0.0);
                }
            }
        }
    }

    /// Robot `id` of the original's list (0: robot A, 1..3: robots B, C, D).
    pub fn robot(id: usize) -> Option<RobotShape> {
        let mut r = RobotShape::default();
        let act = 0.15;
        match id {
            0 => {
                r.objects = vec![[0.2, 0.1], [0.3, 0.13], [0.4, 0.1], [0.2, 0.2], [0.3, 0.2], [0.4, 0.2]];
                for (a, b) in [(0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (2, 5), (0, 4), (1, 4), (2, 4), (3, 1), (5, 1)] {
                    r.add_spring(a, b, 14000.0, 0.1);
                }
            }
            1 => {
                // The original passes actuation=0.15 to the triangles, which ignore it.
                r.triangle(2, 0);
                r.triangle(0, 0);
                r.square(0, 1, act);
                r.square(0, 2, 0.0);
                r.square(1, 2, 0.0);
                r.square(2, 1, act);
                r.square(2, 2, 0.0);
            }
            2 | 3 => {
                for (i, j, a) in [(2, 0, act), (0, 0, act), (0, 1, act), (0, 2, 0.0), (1, 2, 0.0), (2, 1, act), (2, 2, 0.0), (2, 3, 0.0), (2, 4, 0.0)] {
                    r.square(i, j, a);
                }
                if id == 3 {
                    for (i, j, a) in [(3, 1, 0.0), (4, 0, act), (4, 1, act)] {
                        r.square(i, j, a);
                    }
                }
            }
            _ => return None,
        }
        Some(r)
    }

    pub fn n_input_states(&self) -> usize {
        N_SIN_WAVES + 4 * self.objects.len() + 2
    }
}

/// The robot's fields and kernels, in the float type `T`.
pub struct Robot<T: Real> {
    pub shape: RobotShape,
    pub toi: bool,
    /// Rows of the per-step fields (2 x steps, for the final visualization).
    pub max_steps: usize,
    pub x: GradField<[T; 2], 2>,
    pub v: GradField<[T; 2], 2>,
    v_inc: GradField<[T; 2], 2>,
    pub center: GradField<[T; 2], 1>,
    pub hidden: GradField<T, 2>,
    pub act: GradField<T, 2>,
    pub weights1: GradField<T, 2>,
    pub bias1: GradField<T, 1>,
    pub weights2: GradField<T, 2>,
    pub bias2: GradField<T, 1>,
    spring_anchor_a: Field<i32, 1>,
    spring_anchor_b: Field<i32, 1>,
    spring_length: Field<T, 1>,
    spring_stiffness: Field<T, 1>,
    spring_actuation: Field<T, 1>,
    pub loss: GradField<T, 0>,
    compute_center: Kernel<usize>,
    nn1: Kernel<usize>,
    nn2: Kernel<usize>,
    apply_spring_force: Kernel<usize>,
    advance: Kernel<usize>,
    compute_loss: Kernel<usize>,
}

/// The example: the original's f32 program.
pub type MassSpring = Robot<f32>;

impl<T: Real> Robot<T> {
    /// Declares robot `id`'s fields and kernels, with the time-of-impact
    /// integrator if `toi`, per-step fields of `max_steps` rows.
    pub fn new(pb: &mut ProgramBuilder, id: usize, toi: bool, max_steps: usize) -> Result<Robot<T>, RunError> {
        let shape = RobotShape::robot(id).ok_or_else(|| RunError::BadSetting { name: "robot".into(), value: id.to_string(), expected: "0, 1, 2 or 3" })?;
        let (n_objects, n_springs) = (shape.objects.len(), shape.springs.len());
        let (x, v, v_inc) = (pb.field_with_grad("x", [max_steps, n_objects]), pb.field_with_grad("v", [max_steps, n_objects]), pb.field_with_grad("v_inc", [max_steps, n_objects]));
        let center = pb.field_with_grad("center", [max_steps]);
        let hidden = pb.field_with_grad("hidden", [max_steps, N_HIDDEN]);
        let act = pb.field_with_grad("act", [max_steps, n_springs]);
        let weights1 = pb.field_with_grad("weights1", [N_HIDDEN, shape.n_input_states()]);
        let bias1 = pb.field_with_grad("bias1", [N_HIDDEN]);
        let weights2 = pb.field_with_grad("weights2", [n_springs, N_HIDDEN]);
        let bias2 = pb.field_with_grad("bias2", [n_springs]);
        let (spring_anchor_a, spring_anchor_b) = (pb.field("spring_anchor_a", [n_springs]), pb.field("spring_anchor_b", [n_springs]));
        let spring_length = pb.field("spring_length", [n_springs]);
        let spring_stiffness = pb.field("spring_stiffness", [n_springs]);
        let spring_actuation = pb.field("spring_actuation", [n_springs]);
        let loss = pb.field_with_grad("loss", []);
        let advance = if toi { pb.kernel(advance_toi(&x, &v, &v_inc, &n_objects))? } else { pb.kernel(advance_no_toi(&x, &v, &v_inc, &n_objects))? };
        Ok(Robot {
            compute_center: pb.kernel(compute_center(&x, &center, &n_objects))?,
            nn1: pb.kernel(nn1(&x, &v, &center, &weights1, &bias1, &hidden, &n_objects))?,
            nn2: pb.kernel(nn2(&hidden, &weights2, &bias2, &act, &n_springs))?,
            apply_spring_force: pb.kernel(apply_spring_force(
                &x,
                &v_inc,
                &act,
                &spring_anchor_a,
                &spring_anchor_b,
                &spring_length,
                &spring_stiffness,
                &spring_actuation,
                &n_springs,
            ))?,
            advance,
            compute_loss: pb.kernel(compute_loss(&x, &loss))?,
            shape,
            toi,
            max_steps,
            x,
            v,
            v_inc,
            center,
            hidden,
            act,
            weights1,
            bias1,
            weights2,
            bias2,
            spring_anchor_a,
            spring_anchor_b,
            spring_length,
            spring_stiffness,
            spring_actuation,
            loss,
        })
    }

    /// The robot at rest at its initial positions, its springs, and the
    /// initial weights drawn from `seed` (biases zero).
    pub fn init<B: Backend>(&self, p: &mut B, seed: u64) -> Result<(), Error> {
        let springs = &self.shape.springs;
        self.spring_anchor_a.copy_from(p, &springs.iter().map(|s| s.a as i32).collect::<Vec<_>>())?;
        self.spring_anchor_b.copy_from(p, &springs.iter().map(|s| s.b as i32).collect::<Vec<_>>())?;
        self.spring_length.copy_from(p, &springs.iter().map(|s| T::of(s.length)).collect::<Vec<_>>())?;
        self.spring_stiffness.copy_from(p, &springs.iter().map(|s| T::of(s.stiffness)).collect::<Vec<_>>())?;
        self.spring_actuation.copy_from(p, &springs.iter().map(|s| T::of(s.actuation)).collect::<Vec<_>>())?;
        for f in [&self.x, &self.v, &self.v_inc] {
            f.zero(p)?;
        }
        for (i, o) in self.shape.objects.iter().enumerate() {
            self.x.set(p, [0, i], o.map(T::of))?;
        }
        let mut rng = Rng(seed);
        let (n_in, n_springs) = (self.shape.n_input_states(), springs.len());
        let mut draw = |n: usize, scale: f64| -> Vec<T> { (0..n).map(|_| T::of(normal(&mut rng) * scale)).collect() };
        let w1 = draw(N_HIDDEN * n_in, (2.0 / (N_HIDDEN + n_in) as f64).sqrt() * 2.0);
        let w2 = draw(n_springs * N_HIDDEN, (2.0 / (N_HIDDEN + n_springs) as f64).sqrt() * 3.0);
        self.weights1.copy_from(p, &w1)?;
        self.weights2.copy_from(p, &w2)?;
        self.bias1.zero(p)?;
        self.bias2.zero(p)
    }

    /// The original's `forward`: `total` steps (the loss read at step `steps - 1`),
    /// `launch` running (or recording) each kernel.
    fn simulate(&self, total: usize, steps: usize, mut launch: impl FnMut(&Kernel<usize>, usize) -> Result<(), Error>) -> Result<(), Error> {
        for t in 1..total {
            launch(&self.compute_center, t - 1)?;
            launch(&self.nn1, t - 1)?;
            launch(&self.nn2, t - 1)?;
            launch(&self.apply_spring_force, t - 1)?;
            launch(&self.advance, t)?;
        }
        launch(&self.compute_loss, steps - 1)
    }

    /// The loss after `steps` steps (state of `total >= steps` steps kept in the fields).
    pub fn forward<B: Backend>(&self, p: &mut B, total: usize, steps: usize) -> Result<T, Error> {
        self.v_inc.zero(p)?;
        self.simulate(total, steps, |k, t| k.launch(p, t))?;
        self.loss.get(p, [])
    }

    /// The loss after `steps` steps and its gradient (left in the parameters'
    /// adjoints), with the forward and backward milliseconds.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize) -> Result<(T, [f64; 2]), Error> {
        let mut clock = Stopwatch::start();
        self.v_inc.zero(p)?;
        let mut rec = p.record_without_state();
        self.simulate(steps, steps, |k, t| rec.launch(k, t))?;
        let loss = self.loss.get(rec.program(), [])?;
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        Ok((loss, [fwd_ms, clock.lap()]))
    }

    /// One step of the original's optimizer: every parameter moves by
    /// -0.2 g / (|g| + 1e-6), g the gradient of all four together. Returns |g|^2.
    fn descend<B: Backend>(&self, p: &mut B) -> Result<f64, Error> {
        let (w1, w2) = (self.weights1.grad().to_vec(p)?, self.weights2.grad().to_vec(p)?);
        let (b1, b2) = (self.bias1.grad().to_vec(p)?, self.bias2.grad().to_vec(p)?);
        let norm_sqr: f64 = [&w1, &b1, &w2, &b2].iter().flat_map(|g| g.iter()).map(|&g| g.into() * g.into()).sum();
        let scale = STEP_LENGTH / (norm_sqr.sqrt() + 1e-6);
        let step = |values: Vec<T>, grads: &[T]| -> Vec<T> { values.iter().zip(grads).map(|(&v, &g)| T::of(v.into() - scale * g.into())).collect() };
        let w1 = step(self.weights1.to_vec(p)?, &w1);
        self.weights1.copy_from(p, &w1)?;
        let b1 = step(self.bias1.to_vec(p)?, &b1);
        self.bias1.copy_from(p, &b1)?;
        let w2 = step(self.weights2.to_vec(p)?, &w2);
        self.weights2.copy_from(p, &w2)?;
        let b2 = step(self.bias2.to_vec(p)?, &b2);
        self.bias2.copy_from(p, &b2)?;
        Ok(norm_sqr)
    }

    /// The original's `optimize`: `iters` iterations of the loss after `steps`
    /// steps, its gradient and a normalized step; the loss of each iteration
    /// (before its step).
    pub fn optimize<B: Backend>(&self, p: &mut B, steps: usize, iters: usize, report: &mut Reporter) -> Result<Vec<f64>, Error> {
        let mut losses = Vec::with_capacity(iters);
        report.start(iters);
        for iter in 0..iters {
            let (loss, [fwd_ms, bwd_ms]) = self.loss_and_grad(p, steps)?;
            self.descend(p)?;
            losses.push(loss.into());
            report.iteration(iter, loss.into(), fwd_ms, bwd_ms);
        }
        report.finish();
        Ok(losses)
    }

    /// The motion of the last forward run, `total` steps, at most ~100 frames.
    fn animation<B: Backend>(&self, p: &B, total: usize) -> Result<plot::Animation, Error> {
        let every = total.div_ceil(100).max(1);
        let frame = |t: usize| -> Result<Vec<plot::Shape>, Error> {
            let at = |i: usize| self.x.get(p, [t, i]).map(|q| (q[0].into(), q[1].into()));
            let x: Vec<(f64, f64)> = (0..self.shape.objects.len()).map(at).collect::<Result<_, _>>()?;
            let mut shapes = vec![plot::Shape::Segment { from: (0.0, GROUND), to: (1.0, GROUND), color: RGBColor(0, 0, 0), width: 3 }];
            for (i, s) in self.shape.springs.iter().enumerate() {
                let (color, width) = if s.actuation == 0.0 {
                    (RGBColor(0x22, 0x22, 0x22), 2)
                } else {
                    // The original's colors: (0.5 + a, 0.5 - |a|, 0.5 - a), a = act / 2.
                    let a: f64 = self.act.get(p, [t.saturating_sub(1), i])?.into() * 0.5;
                    let c = |v: f64| (v.clamp(0.0, 1.0) * 255.0) as u8;
                    (RGBColor(c(0.5 + a), c(0.5 - a.abs()), c(0.5 - a)), 4)
                };
                shapes.push(plot::Shape::Segment { from: x[s.a], to: x[s.b], color, width });
            }
            for (i, &center) in x.iter().enumerate() {
                let color = if i == 0 { RGBColor(204, 51, 76) } else { RGBColor(102, 153, 153) };
                shapes.push(plot::Shape::Circle { center, radius: 0.008, color });
            }
            Ok(shapes)
        };
        let frames = (0..total).step_by(every).chain([total - 1]).map(frame).collect::<Result<_, _>>()?;
        let integrator = if self.toi { "time of impact" } else { "no time of impact" };
        Ok(plot::Animation { title: format!("mass_spring ({integrator}), final controller"), x_range: (0.0, 1.0), y_range: (0.0, 0.6), frames })
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u = 1.0 - rng.next_f64();
    let w = rng.next_f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * w).cos()
}

impl<T: Real> Simulation for Robot<T> {
    const SETTINGS: &'static [Setting] = &[
        Setting { name: "robot", default: "1", help: "the robot: 1 (14 masses, 30 springs), 2 (20, 46), 3 (26, 61), 0 (robot A: 6, 11)" },
        Setting { name: "toi", default: "true", help: "true: the integrator with time of impact (the original's train default); false: zero the velocity below the ground" },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Robot<T>, RunError> {
        Robot::new(pb, opts.setting("robot")?, opts.flag("toi")?, 2 * STEPS)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.weights1.name(), self.bias1.name(), self.weights2.name(), self.bias2.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        Ok(self.init(p, opts.seed)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let losses = self.optimize(p, STEPS, opts.iters.unwrap_or(ITERATIONS), report)?;
        // The original's final run: twice as many steps, the loss at the usual one.
        let total = if opts.pictures { self.max_steps } else { STEPS };
        let final_loss: f64 = self.forward(p, total, STEPS)?.into();
        let mut out = Outcome { losses, final_loss, ..Default::default() };
        let head: [T; 2] = self.x.get(p, [STEPS - 1, 0])?;
        out.results.push(("head mass at the last step".into(), format!("({:.4}, {:.4})", head[0].into(), head[1].into())));
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "mass_spring: -x of the head mass", &out.losses)?);
            out.files.extend(plot::animate(&opts.out, "motion", &self.animation(p, total)?, 40, 4)?);
        }
        Ok(out)
    }
}
