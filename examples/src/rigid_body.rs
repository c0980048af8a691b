//! Paper Fig. 4 (right), Fig. 9: rigid-body robots (boxes joined by springs and
//! joints) walking toward a goal, driven by a neural-network controller whose
//! weights are trained by gradient descent through the whole simulation. The
//! port of DiffTaichi's `examples/rigid_body.py` with the robots of
//! `robot_config.py` (`robot=0` robotA, `1` robotB, `2` robotLeg).
//!
//! Scene facts (read from the original): 2048 steps (t = 1..2047) of
//! dt = 0.001 stored per step (4096 steps allocated: the final motion is shown
//! over twice the training horizon, as the original's `forward('final')`),
//! gravity -9.8, damping 10 (`v *= exp(-dt * 10)`), ground at y = 0.1, friction
//! 1.0, elasticity 0. Per box x, v, rotation, angular velocity (omega), unit
//! density (inverse mass 1 / (4 hx hy), inverse inertia 1 / (4/3 hx hy (hx^2 +
//! hy^2))). Per step: `nn1` (32 tanh hidden units over 10 sine waves
//! sin(30 t dt + 2 pi j / 10), per box 6 values scaled by 0.05 (offset from the
//! head box, velocity, rotation, omega) and the goal), `nn2` (one tanh output
//! per spring), `collide` (each corner of each box against the ground:
//! an impulse cancelling the normal velocity of a corner that will be below
//! the ground after the step, Coulomb friction clamped to friction x normal
//! impulse, the time of impact moving the position back by toi x dv), then
//! `apply_spring_force` (springs towards L (1 + actuation_scale x act) with
//! damping-free impulses; joints, L = -1, pull the anchors together and cancel
//! their relative velocity), then `advance_toi` (x += dt v + x_inc) or
//! `advance_no_toi`. All impulses go atomically into `*_inc[t + 1]`.
//! Loss = |x[2047, head] - (0.9, 0.15)|. Optimizer: gradient descent with step
//! learning_rate x min(1, 0.2 / (|g| + 1e-4)), |g| over weights1, bias1,
//! weights2 and bias2; learning rate 1, 20 iterations. Initial weights1 ~
//! N(0, 1) x sqrt(2 / (32 + inputs)) x 0.5, weights2 ~ N(0, 1) x
//! sqrt(2 / (32 + springs)), biases 0. Single precision, as the original.
//!
//! Settings: `robot` (0, 1, 2; default 0, the original's `robot_id`), `toi`
//! (true: `advance_toi`, the original's training command; false:
//! `advance_no_toi`, the other half of its `plot` study, Fig. 9), `penalty`.
//!
//! Departures and remarks:
//! - The original's penalty contact is zero: `collide` assigns a local
//!   `penalty = 0.0` and then `penalty = -dt * penalty * ...`, which reads the
//!   local, not the global 1e4, so the penalty impulse it applies is always 0.
//!   The setting `penalty` is that coefficient: default 0 (what the original
//!   computes; the term is then not built), `--set penalty=1e4` applies the
//!   penalty the original meant.
//!   Without it nothing pushes a corner back out of the ground: the feet
//!   sink to y = 0.08 (bottoms 0.02 below the ground) in the original too.
//! - `nn1` and `nn2` run as one task each instead of one parallel iteration
//!   per hidden unit / spring: each sine wave and each box value is computed
//!   and loaded once for all 32 units, so the gradient kernels add each
//!   state adjoint once instead of 32 times (atomic adds dominate their cost);
//!   every unit sums its terms in the original's order (the same numbers).
//! - Impulses with a time of impact of 0 (springs, joints) add 0 to x_inc and
//!   rotation_inc in the original; those atomic adds of zeros are left out
//!   (the same numbers and gradients).
//! - numpy's random stream cannot be reproduced: the initial weights are drawn
//!   from `opts.seed` (Box-Muller over `ds_runtime::gradcheck::Rng`); load the
//!   original's with `--params FILE.npz` (arrays weights1, bias1, weights2, bias2).
//! - The kernels are generic over the float type (`RigidBody<f64>` is what the
//!   finite-difference test uses); the example runs in f32. The physical
//!   constants are a build-time [`Physics`], so the `rigid_body_discontinuity`
//!   study builds the same `collide` and `advance_no_toi` kernels with the
//!   constants and the contact of the original's
//!   `misc/rigid_body_discountinuity.py`.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::prelude::*;
use diffsim::{KernelArgs, KernelDef};
use plotters::style::RGBColor;
use std::f64::consts::PI;

pub const STEPS: usize = 2048;
pub const MAX_STEPS: usize = 4096;
pub const GROUND: f64 = 0.1;
const GOAL: [f64; 2] = [0.9, 0.15];
const N_SIN_WAVES: usize = 10;
const N_HIDDEN: usize = 32;
const SPRING_OMEGA: usize = 30;
const DEFAULT_ACTUATION: f64 = 0.05;
const LEARNING_RATE: f64 = 1.0;
const GRADIENT_CLIP: f64 = 0.2;
const ITERATIONS: usize = 20;

/// A kernel value converted to `T` (`as T` for a generic `T`).
fn real<T: Real>(e: Expr) -> Expr {
    diffsim::value::cast::<T, Expr>(e)
}

/// The physical constants and the contact model, fixed when the kernels are built.
#[derive(Clone, Copy, Debug)]
pub struct Physics {
    pub dt: f64,
    pub gravity: f64,
    pub damping: f64,
    pub elasticity: f64,
    pub friction: f64,
    /// The penalty coefficient (0: no penalty term is built).
    pub penalty: f64,
    /// rigid_body.py's contact: a corner collides when it will be below the
    /// ground after the step (`new_corner_x`), with a time of impact, and the
    /// penalty is an impulse of its own. Otherwise rigid_body_discountinuity.py's:
    /// the corner now (`corner_x`), no time of impact, and the penalty added
    /// to the normal impulse.
    pub predictive: bool,
}

impl Physics {
    /// rigid_body.py's constants, with the penalty coefficient it computes (0).
    pub const RIGID_BODY: Physics =
        Physics { dt: 0.001, gravity: -9.8, damping: 10.0, elasticity: 0.0, friction: 1.0, penalty: 0.0, predictive: true };

    fn has_penalty(&self) -> bool {
        self.penalty != 0.0
    }
}

/// One box: center, half size, rotation (radians).
#[derive(Clone, Copy, Debug)]
pub struct Object {
    pub x: [f64; 2],
    pub halfsize: [f64; 2],
    pub rotation: f64,
}

/// A spring (or a joint, length -1) between anchor points of two boxes.
#[derive(Clone, Copy, Debug)]
pub struct Spring {
    pub a: usize,
    pub b: usize,
    pub offset_a: [f64; 2],
    pub offset_b: [f64; 2],
    pub length: f64,
    pub stiffness: f64,
    /// 0 means the default actuation (0.05), as in robot_config.py.
    pub actuation: f64,
}

/// A robot of robot_config.py: boxes, springs, and the box whose distance to
/// the goal is the loss.
#[derive(Clone, Debug, Default)]
pub struct Robot {
    pub objects: Vec<Object>,
    pub springs: Vec<Spring>,
    pub head: usize,
}

impl Robot {
    fn object(&mut self, x: [f64; 2], halfsize: [f64; 2], rotation: f64) -> usize {
        self.objects.push(Object { x, halfsize, rotation });
        self.objects.len() - 1
    }

    #[allow(clippy::too_many_arguments)]
    fn spring(&mut self, a: usize, b: usize, offset_a: [f64; 2], offset_b: [f64; 2], length: f64, stiffness: f64, actuation: f64) {
        self.springs.push(Spring { a, b, offset_a, offset_b, length, stiffness, actuation });
    }

    /// robot_config.py's robots, by `robot_id`: robotA, robotB, robotLeg.
    pub fn by_id(id: usize) -> Option<Robot> {
        [Robot::a, Robot::b, Robot::leg].get(id).map(|f| f())
    }

    /// robotA: a body on three feet and a tail joint; head 0.
    pub fn a() -> Robot {
        let mut r = Robot::default();
        r.object([0.3, 0.25], [0.15, 0.03], 0.0);
        r.object([0.2, 0.15], [0.03, 0.02], 0.0);
        r.object([0.3, 0.15], [0.03, 0.02], 0.0);
        r.object([0.4, 0.15], [0.03, 0.02], 0.0);
        r.object([0.4, 0.3], [0.005, 0.03], 0.0);
        let (l, s) = (0.12, 15.0);
        r.spring(0, 1, [-0.03, 0.0], [0.0, 0.0], l, s, 0.0);
        r.spring(0, 1, [-0.1, 0.0], [0.0, 0.0], l, s, 0.0);
        r.spring(0, 2, [-0.03, 0.0], [0.0, 0.0], l, s, 0.0);
        r.spring(0, 2, [0.03, 0.0], [0.0, 0.0], l, s, 0.0);
        r.spring(0, 3, [0.03, 0.0], [0.0, 0.0], l, s, 0.0);
        r.spring(0, 3, [0.1, 0.0], [0.0, 0.0], l, s, 0.0);
        r.spring(0, 4, [0.1, 0.0], [0.0, -0.05], -1.0, s, 0.0);
        r.head = 0;
        r
    }

    /// robotB: a body with two legs on joints, each pulled by a spring; head 0.
    pub fn b() -> Robot {
        let mut r = Robot::default();
        let body = r.object([0.15, 0.25], [0.1, 0.03], 0.0);
        let back = r.object([0.08, 0.22], [0.03, 0.10], 0.0);
        let front = r.object([0.22, 0.22], [0.03, 0.10], 0.0);
        let (rest_length, stiffness, act) = (0.22, 50.0, 0.03);
        r.spring(body, back, [0.08, 0.02], [0.0, -0.08], rest_length, stiffness, act);
        r.spring(body, front, [-0.08, 0.02], [0.0, -0.08], rest_length, stiffness, act);
        r.spring(body, back, [-0.08, 0.0], [0.0, 0.03], -1.0, stiffness, 0.0);
        r.spring(body, front, [0.08, 0.0], [0.0, 0.03], -1.0, stiffness, 0.0);
        r.head = body;
        r
    }

    /// robotLeg: a hip with two legs of thigh, calf and foot; head 3 (the left foot).
    pub fn leg() -> Robot {
        let (thigh_half, calf_half, foot_half, half_hip) = (0.11, 0.11, 0.08, 0.08);
        let hip_pos = [0.3, 0.5 + 0.15];
        let rot_along = |half_length: f64, deg: f64, center: [f64; 2]| {
            let ang = deg.to_radians();
            [half_length * ang.sin() + center[0], -half_length * ang.cos() + center[1]]
        };
        let (thigh_ang, calf_ang) = (10.0f64, -10.0f64);
        let mut r = Robot::default();
        r.object(hip_pos, [0.06, half_hip], 0.0);
        let hip_end = [hip_pos[0], hip_pos[1] - (half_hip - 0.01)];
        for _side in 0..2 {
            // Both legs start in the same pose (robot_config's l_ and r_ angles are equal).
            r.object(rot_along(thigh_half, thigh_ang, hip_end), [0.02, thigh_half], thigh_ang.to_radians());
            let thigh_end = rot_along(thigh_half * 2.0, thigh_ang, hip_end);
            r.object(rot_along(calf_half, calf_ang, thigh_end), [0.02, calf_half], calf_ang.to_radians());
            let calf_end = rot_along(2.0 * calf_half, calf_ang, thigh_end);
            r.object([calf_end[0] + foot_half, calf_end[1]], [foot_half, 0.02], 0.0);
        }
        let s = 200.0;
        let (thigh_relax, leg_relax, foot_relax) = (0.9, 0.9, 0.7);
        let (thigh_stiff, leg_stiff, foot_stiff) = (5.0, 20.0, 40.0);
        for (thigh, calf, foot) in [(1, 2, 3), (4, 5, 6)] {
            r.spring(0, thigh, [0.0, (half_hip - 0.01) * 0.4], [0.0, -thigh_half], thigh_relax * (2.0 * thigh_half + 0.22), thigh_stiff, 0.0);
            r.spring(thigh, calf, [0.0, thigh_half], [0.0, -thigh_half], leg_relax * 4.0 * thigh_half, leg_stiff, 0.08);
            let foot_length = foot_relax * (thigh_half * thigh_half + (2.0 * foot_half) * (2.0 * foot_half)).sqrt();
            r.spring(calf, foot, [0.0, 0.0], [foot_half, 0.0], foot_length, foot_stiff, 0.0);
            r.spring(0, thigh, [0.0, -(half_hip - 0.01)], [0.0, thigh_half], -1.0, s, 0.0);
            r.spring(thigh, calf, [0.0, -thigh_half], [0.0, thigh_half], -1.0, s, 0.0);
            r.spring(calf, foot, [0.0, -thigh_half], [-foot_half, 0.0], -1.0, s, 0.0);
        }
        r.head = 3;
        r
    }

    /// The controller's inputs: sine waves, 6 per box, the goal.
    pub fn n_inputs(&self) -> usize {
        N_SIN_WAVES + 6 * self.objects.len() + 2
    }
}

type Vectors<T> = GradField<[T; 2], 2>;
type Scalars<T> = GradField<T, 2>;

/// The boxes' state per step, their impulses, and their constant properties.
pub struct Bodies<T: Real> {
    pub n: usize,
    pub x: Vectors<T>,
    pub v: Vectors<T>,
    pub rotation: Scalars<T>,
    pub omega: Scalars<T>,
    pub x_inc: Vectors<T>,
    pub v_inc: Vectors<T>,
    pub rotation_inc: Scalars<T>,
    pub omega_inc: Scalars<T>,
    pub halfsize: Field<[T; 2], 1>,
    pub inverse_mass: Field<T, 1>,
    pub inverse_inertia: Field<T, 1>,
}

/// The springs' constants (robot_config's lists).
pub struct Springs<T: Real> {
    pub n: usize,
    anchor_a: Field<i32, 1>,
    anchor_b: Field<i32, 1>,
    length: Field<T, 1>,
    stiffness: Field<T, 1>,
    actuation_scale: Field<T, 1>,
    offset_a: Field<[T; 2], 1>,
    offset_b: Field<[T; 2], 1>,
}

/// The controller: weights, and its hidden values and outputs per step.
pub struct Controller<T: Real> {
    pub weights1: GradField<T, 2>,
    pub bias1: GradField<T, 1>,
    pub weights2: GradField<T, 2>,
    pub bias2: GradField<T, 1>,
    pub hidden: Scalars<T>,
    pub actuation: Scalars<T>,
}

/// A corner or anchor at `rela` (box coordinates) of a box at `x` moving at
/// `v`, rotated by `rot`, spinning at `omega`: world position, velocity, and
/// the rotated offset.
fn to_world(x: Vec2, v: Vec2, rot: Expr, omega: Expr, rela: Vec2) -> (Vec2, Vec2, Vec2) {
    let (c, s) = (rot.cos(), rot.sin());
    let rela_pos = Vector([c * rela.at(0) - s * rela.at(1), s * rela.at(0) + c * rela.at(1)]);
    let rela_v = Vector([-rela_pos.at(1), rela_pos.at(0)]) * omega;
    (x + rela_pos, v + rela_v, rela_pos)
}

// --- the original's kernels ---
#[kernel(no_grad)]
fn initialize_properties<T: Real>(b: &Bodies<T>) {
    for i in 0..b.n {
        let hs = b.halfsize[(i,)];
        b.inverse_mass[(i,)] = 1.0 / (4.0 * hs.at(0) * hs.at(1));
        b.inverse_inertia[(i,)] = 1.0 / (4.0 / 3.0 * hs.at(0) * hs.at(1) * (hs.at(0) * hs.at(0) + hs.at(1) * hs.at(1)));
    }
}

/// The original's nn1, one task for the 32 hidden units: each input (a sine
/// wave, a box's value) is computed and loaded once for all of them, not once
/// per unit; every unit sums its terms in the original's order.
#[kernel]
fn nn1<T: Real>(b: &Bodies<T>, c: &Controller<T>, ph: &Physics, head: &usize, t: usize) {
    for _task in 0..1usize {
        let time = real::<T>(t * SPRING_OMEGA) * ph.dt;
        let mut act = Vector::<N_HIDDEN>::splat(0.0, T::TY);
        for j in unroll(0..N_SIN_WAVES) {
            let wave = (time + 2.0 * PI / N_SIN_WAVES as f64 * j as f64).sin();
            for i in unroll(0..N_HIDDEN) {
                act[i] = act[i] + c.weights1[(i, j)] * wave;
            }
        }
        let x_head = b.x[(t, *head)];
        for j in unroll(0..b.n) {
            let offset = b.x[(t, j)] - x_head;
            let vj = b.v[(t, j)];
            let values = [offset.at(0), offset.at(1), vj.at(0), vj.at(1), b.rotation[(t, j)], b.omega[(t, j)]];
            for q in unroll(0..6usize) {
                for i in unroll(0..N_HIDDEN) {
                    // The original's smaller weight, since there are many of them.
                    act[i] = act[i] + c.weights1[(i, N_SIN_WAVES + 6 * j + q)] * values[q] * 0.05;
                }
            }
        }
        for i in unroll(0..N_HIDDEN) {
            let mut a = act[i] + c.weights1[(i, N_SIN_WAVES + 6 * b.n)] * GOAL[0];
            a = a + c.weights1[(i, N_SIN_WAVES + 6 * b.n + 1)] * GOAL[1];
            a = a + c.bias1[(i,)];
            c.hidden[(t, i)] = a.tanh();
        }
    }
}

/// The original's nn2, one task for all springs: the hidden values are
/// loaded once for all of them.
#[kernel]
fn nn2<T: Real>(s: &Springs<T>, c: &Controller<T>, t: usize) {
    for _task in 0..1usize {
        let mut hidden = Vector::<N_HIDDEN>::splat(0.0, T::TY);
        for j in unroll(0..N_HIDDEN) {
            hidden[j] = c.hidden[(t, j)];
        }
        for i in unroll(0..s.n) {
            let mut act = c.weights2[(i, 0usize)] * hidden[0];
            for j in unroll(1..N_HIDDEN) {
                act = act + c.weights2[(i, j)] * hidden[j];
            }
            act = act + c.bias2[(i,)];
            c.actuation[(t, i)] = act.tanh();
        }
    }
}

#[kernel]
fn collide<T: Real>(b: &Bodies<T>, ph: &Physics, t: usize) {
    for i in 0..b.n {
        let hs = b.halfsize[(i,)];
        let (xi, vi, rot, om) = (b.x[(t, i)], b.v[(t, i)], b.rotation[(t, i)], b.omega[(t, i)]);
        let (im, ii) = (b.inverse_mass[(i,)], b.inverse_inertia[(i,)]);
        // The impulse j (normal, tangent) at `location` of box i, its time of
        // impact moving the box back (toi <= 0: none).
        let apply_impulse = |j: Vec2, location: Vec2, toi: Expr, with_toi: bool| {
            let delta_v = j * im;
            let delta_omega = (location - xi).cross(&j) * ii;
            if with_toi {
                let toi = toi.max(0.0).min(ph.dt);
                b.x_inc[(t + 1, i)] += toi * (-delta_v);
                b.rotation_inc[(t + 1, i)] += toi * (-delta_omega);
            }
            b.v_inc[(t + 1, i)] += delta_v;
            b.omega_inc[(t + 1, i)] += delta_omega;
        };
        for k in unroll(0..4usize) {
            // The corner (-1 or 1 times the half size on each axis).
            let (sx, sy) = ((k % 2 * 2) as f64 - 1.0, (k / 2 % 2 * 2) as f64 - 1.0);
            let (corner_x, corner_v, rela_pos) = to_world(xi, vi, rot, om, Vector([hs.at(0) * sx, hs.at(1) * sy]));
            let corner_v = Vector([corner_v.at(0), corner_v.at(1) + ph.dt * ph.gravity]);
            // normal (0, 1), tangent (1, 0): rela_pos x normal = rela_pos.x,
            // rela_pos x tangent = -rela_pos.y.
            let (rn, rt) = (rela_pos.at(0), -rela_pos.at(1));
            let impulse_contribution = im + rn * rn * ii;
            let timpulse_contribution = im + rt * rt * ii;
            let rela_v_ground = corner_v.at(1);
            let new_corner_x = corner_x + corner_v * ph.dt;
            let at = if ph.predictive { new_corner_x } else { corner_x };
            let hit = rela_v_ground < 0.0 && at.at(1) < GROUND;
            let normal_impulse = -(1.0 + ph.elasticity) * rela_v_ground / impulse_contribution;
            let impulse = select(hit, normal_impulse, 0.0);
            let slides = hit && normal_impulse > 0.0;
            let tangent = -corner_v.at(0) / timpulse_contribution;
            let limit = ph.friction * impulse;
            let timpulse = select(slides, tangent.max(-limit).min(limit), 0.0);
            if ph.predictive {
                let toi = select(slides && corner_x.at(1) > GROUND, -(corner_x.at(1) - GROUND) / corner_v.at(1).min(-1e-3), 0.0);
                apply_impulse(Vector([timpulse, impulse]), new_corner_x, toi, true);
                if ph.has_penalty() {
                    let depth = new_corner_x.at(1) - GROUND;
                    let penalty = select(depth < 0.0, -ph.dt * ph.penalty * depth / impulse_contribution, 0.0);
                    apply_impulse(Vector([penalty * 0.0, penalty]), new_corner_x, toi, false);
                }
            } else {
                let depth = corner_x.at(1) - GROUND;
                let with_penalty = select(depth < 0.0, impulse - ph.dt * ph.penalty * depth / impulse_contribution, impulse);
                apply_impulse(Vector([timpulse, with_penalty]), corner_x, impulse * 0.0, false);
            }
        }
    }
}

#[kernel]
fn apply_spring_force<T: Real>(b: &Bodies<T>, s: &Springs<T>, c: &Controller<T>, ph: &Physics, t: usize) {
    for i in 0..s.n {
        let (a, bb) = (s.anchor_a[(i,)] as usize, s.anchor_b[(i,)] as usize);
        let (pos_a, vel_a, rela_a) = to_world(b.x[(t, a)], b.v[(t, a)], b.rotation[(t, a)], b.omega[(t, a)], s.offset_a[(i,)]);
        let (pos_b, vel_b, rela_b) = to_world(b.x[(t, bb)], b.v[(t, bb)], b.rotation[(t, bb)], b.omega[(t, bb)], s.offset_b[(i,)]);
        let dist = pos_a - pos_b;
        let length = dist.norm() + 1e-4;
        let act = c.actuation[(t, i)];
        let is_joint = s.length[(i,)] == -1.0;
        let target_length = select(is_joint, 0.0, s.length[(i,)] * (1.0 + s.actuation_scale[(i,)] * act));
        let mut impulse = dist * (ph.dt * (length - target_length) * s.stiffness[(i,)] / length);
        if is_joint {
            let rela_vel = vel_a - vel_b;
            let rela_vel_norm = rela_vel.norm() + 1e-1;
            let dir = rela_vel / rela_vel_norm;
            let (ca, cb) = (dir.cross(&rela_a), dir.cross(&rela_b));
            let contribution = b.inverse_mass[(a,)] + ca * ca * b.inverse_inertia[(a,)] + b.inverse_mass[(bb,)] + cb * cb * b.inverse_inertia[(bb,)];
            // Project out the relative velocity.
            impulse = impulse + dir * (rela_vel_norm / contribution);
        }
        // Impulses with a time of impact of 0: nothing goes into x_inc, rotation_inc.
        let (xa, xb) = (b.x[(t, a)], b.x[(t, bb)]);
        b.v_inc[(t + 1, a)] += -impulse * b.inverse_mass[(a,)];
        b.omega_inc[(t + 1, a)] += (pos_a - xa).cross(&(-impulse)) * b.inverse_inertia[(a,)];
        b.v_inc[(t + 1, bb)] += impulse * b.inverse_mass[(bb,)];
        b.omega_inc[(t + 1, bb)] += (pos_b - xb).cross(&impulse) * b.inverse_inertia[(bb,)];
    }
}

#[kernel]
fn advance_toi<T: Real>(b: &Bodies<T>, ph: &Physics, t: usize) {
    for i in 0..b.n {
        let s = (-ph.dt * ph.damping).exp();
        let nv = b.v[(t - 1, i)] * s + b.v_inc[(t, i)];
        let nv = Vector([nv.at(0), nv.at(1) + ph.dt * ph.gravity]);
        b.v[(t, i)] = nv;
        b.x[(t, i)] = b.x[(t - 1, i)] + nv * ph.dt + b.x_inc[(t, i)];
        let omega = b.omega[(t - 1, i)] * s + b.omega_inc[(t, i)];
        b.omega[(t, i)] = omega;
        b.rotation[(t, i)] = b.rotation[(t - 1, i)] + omega * ph.dt + b.rotation_inc[(t, i)];
    }
}

#[kernel]
fn advance_no_toi<T: Real>(b: &Bodies<T>, ph: &Physics, t: usize) {
    for i in 0..b.n {
        let s = (-ph.dt * ph.damping).exp();
        let nv = b.v[(t - 1, i)] * s + b.v_inc[(t, i)];
        let nv = Vector([nv.at(0), nv.at(1) + ph.dt * ph.gravity]);
        b.v[(t, i)] = nv;
        b.x[(t, i)] = b.x[(t - 1, i)] + nv * ph.dt;
        let omega = b.omega[(t - 1, i)] * s + b.omega_inc[(t, i)];
        b.omega[(t, i)] = omega;
        b.rotation[(t, i)] = b.rotation[(t - 1, i)] + omega * ph.dt;
    }
}

#[kernel]
fn compute_loss<T: Real>(b: &Bodies<T>, loss: &Field<T, 0>, head: &usize, t: usize) {
    let d = b.x[(t, *head)];
    let (dx, dy) = (d.at(0) - GOAL[0], d.at(1) - GOAL[1]);
    loss[()] = (dx * dx + dy * dy).sqrt();
}
// --- end of the original's kernels ---

/// A kernel renamed `PREFIX NAME`.
fn prefixed<A: KernelArgs>(prefix: &str, def: Result<KernelDef<A>, Error>) -> Result<KernelDef<A>, Error> {
    let def = def?;
    if prefix.is_empty() {
        return Ok(def);
    }
    let name = format!("{prefix}{}", def.name());
    def.renamed(&name)
}

/// Boxes on the ground: their fields, the physics and the contact and
/// integration kernels (what `rigid_body_discontinuity` reuses).
pub struct World<T: Real> {
    pub bodies: Bodies<T>,
    pub physics: Physics,
    pub collide: Kernel<usize>,
    pub advance_toi: Kernel<usize>,
    pub advance_no_toi: Kernel<usize>,
    initialize_properties: Kernel<()>,
}

impl<T: Real> World<T> {
    /// `n` boxes over `max_steps` steps.
    pub fn new(pb: &mut ProgramBuilder, n: usize, max_steps: usize, physics: Physics) -> Result<World<T>, Error> {
        World::named(pb, "", n, max_steps, physics)
    }

    /// [`World::new`] with `prefix` before its fields' and kernels' names
    /// (several worlds in one program).
    pub fn named(pb: &mut ProgramBuilder, prefix: &str, n: usize, max_steps: usize, physics: Physics) -> Result<World<T>, Error> {
        let name = |s: &str| format!("{prefix}{s}");
        let vec2 = |pb: &mut ProgramBuilder, s: &str| -> Vectors<T> { pb.field_with_grad(&name(s), [max_steps, n]) };
        let bodies = Bodies {
            n,
            x: vec2(pb, "x"),
            v: vec2(pb, "v"),
            x_inc: vec2(pb, "x_inc"),
            v_inc: vec2(pb, "v_inc"),
            rotation: pb.field_with_grad(&name("rotation"), [max_steps, n]),
            omega: pb.field_with_grad(&name("omega"), [max_steps, n]),
            rotation_inc: pb.field_with_grad(&name("rotation_inc"), [max_steps, n]),
            omega_inc: pb.field_with_grad(&name("omega_inc"), [max_steps, n]),
            halfsize: pb.field(&name("halfsize"), [n]),
            inverse_mass: pb.field(&name("inverse_mass"), [n]),
            inverse_inertia: pb.field(&name("inverse_inertia"), [n]),
        };
        Ok(World {
            collide: pb.kernel(prefixed(prefix, collide(&bodies, &physics)))?,
            advance_toi: pb.kernel(prefixed(prefix, advance_toi(&bodies, &physics)))?,
            advance_no_toi: pb.kernel(prefixed(prefix, advance_no_toi(&bodies, &physics)))?,
            initialize_properties: pb.kernel(prefixed(prefix, initialize_properties(&bodies)))?,
            bodies,
            physics,
        })
    }

    /// Sets the boxes' sizes (and their inverse mass and inertia) and their
    /// state at step 0 (at rest, as the original's).
    pub fn place<B: Backend>(&self, p: &mut B, objects: &[Object]) -> Result<(), Error> {
        let b = &self.bodies;
        b.halfsize.copy_from(p, &objects.iter().map(|o| o.halfsize.map(T::of)).collect::<Vec<_>>())?;
        self.initialize_properties.launch(p, ())?;
        for (i, o) in objects.iter().enumerate() {
            b.x.set(p, [0, i], o.x.map(T::of))?;
            b.v.set(p, [0, i], [T::of(0.0); 2])?;
            b.rotation.set(p, [0, i], T::of(o.rotation))?;
            b.omega.set(p, [0, i], T::of(0.0))?;
        }
        Ok(())
    }

    /// The original's `clear_states`: the impulses of every step are zeroed.
    pub fn clear_states<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        let b = &self.bodies;
        b.x_inc.zero(p)?;
        b.v_inc.zero(p)?;
        b.rotation_inc.zero(p)?;
        b.omega_inc.zero(p)
    }

    /// The corners of box `i` at step `t` (for pictures).
    pub fn corners<B: Backend>(&self, p: &B, t: usize, i: usize) -> Result<Vec<(f64, f64)>, Error> {
        let b = &self.bodies;
        let (x, hs, rot): ([T; 2], [T; 2], T) = (b.x.get(p, [t, i])?, b.halfsize.get(p, [i])?, b.rotation.get(p, [t, i])?);
        let (x, hs, rot) = (x.map(Into::into), hs.map(Into::into), rot.into());
        Ok([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]
            .iter()
            .map(|[sx, sy]| {
                let (rx, ry) = (sx * hs[0], sy * hs[1]);
                (x[0] + rot.cos() * rx - rot.sin() * ry, x[1] + rot.sin() * rx + rot.cos() * ry)
            })
            .collect())
    }

    /// A point at `offset` (box coordinates) of box `i` at step `t`.
    fn world_point<B: Backend>(&self, p: &B, t: usize, i: usize, offset: [f64; 2]) -> Result<(f64, f64), Error> {
        let x: [T; 2] = self.bodies.x.get(p, [t, i])?;
        let rot: f64 = self.bodies.rotation.get(p, [t, i])?.into();
        let (x0, x1): (f64, f64) = (x[0].into(), x[1].into());
        Ok((x0 + rot.cos() * offset[0] - rot.sin() * offset[1], x1 + rot.sin() * offset[0] + rot.cos() * offset[1]))
    }
}

/// The robot simulation: the world, the springs, the controller, the loss.
pub struct RigidBody<T: Real = f32> {
    pub world: World<T>,
    pub springs: Springs<T>,
    pub controller: Controller<T>,
    pub loss: GradField<T, 0>,
    pub robot: Robot,
    /// `advance_toi` (true) or `advance_no_toi`.
    pub toi: bool,
    nn1: Kernel<usize>,
    nn2: Kernel<usize>,
    apply_spring_force: Kernel<usize>,
    compute_loss: Kernel<usize>,
}

/// The forward and backward milliseconds of one gradient evaluation.
pub type Times = [f64; 2];

impl<T: Real> RigidBody<T> {
    /// Declares `robot`'s fields and kernels on `pb`.
    pub fn new(pb: &mut ProgramBuilder, robot: Robot, toi: bool, physics: Physics) -> Result<RigidBody<T>, Error> {
        let (n, m, inputs) = (robot.objects.len(), robot.springs.len(), robot.n_inputs());
        let world = World::new(pb, n, MAX_STEPS, physics)?;
        let springs = Springs {
            n: m,
            anchor_a: pb.field("spring_anchor_a", [m]),
            anchor_b: pb.field("spring_anchor_b", [m]),
            length: pb.field("spring_length", [m]),
            stiffness: pb.field("spring_stiffness", [m]),
            actuation_scale: pb.field("spring_actuation", [m]),
            offset_a: pb.field("spring_offset_a", [m]),
            offset_b: pb.field("spring_offset_b", [m]),
        };
        let controller = Controller {
            weights1: pb.field_with_grad("weights1", [N_HIDDEN, inputs]),
            bias1: pb.field_with_grad("bias1", [N_HIDDEN]),
            weights2: pb.field_with_grad("weights2", [m, N_HIDDEN]),
            bias2: pb.field_with_grad("bias2", [m]),
            hidden: pb.field_with_grad("hidden", [MAX_STEPS, N_HIDDEN]),
            actuation: pb.field_with_grad("actuation", [MAX_STEPS, m]),
        };
        let loss = pb.field_with_grad("loss", []);
        let head = robot.head;
        let b = &world.bodies;
        Ok(RigidBody {
            nn1: pb.kernel(nn1(b, &controller, &physics, &head))?,
            nn2: pb.kernel(nn2(&springs, &controller))?,
            apply_spring_force: pb.kernel(apply_spring_force(b, &springs, &controller, &physics))?,
            compute_loss: pb.kernel(compute_loss(b, &loss, &head))?,
            world,
            springs,
            controller,
            loss,
            robot,
            toi,
        })
    }

    /// The robot's boxes and springs (the original's `setup_robot`).
    pub fn setup<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        self.world.place(p, &self.robot.objects)?;
        let (s, springs) = (&self.springs, &self.robot.springs);
        let col = |f: fn(&Spring) -> f64| springs.iter().map(|sp| T::of(f(sp))).collect::<Vec<T>>();
        let pairs = |f: fn(&Spring) -> [f64; 2]| springs.iter().map(|sp| f(sp).map(T::of)).collect::<Vec<[T; 2]>>();
        s.anchor_a.copy_from(p, &springs.iter().map(|sp| sp.a as i32).collect::<Vec<_>>())?;
        s.anchor_b.copy_from(p, &springs.iter().map(|sp| sp.b as i32).collect::<Vec<_>>())?;
        s.offset_a.copy_from(p, &pairs(|sp| sp.offset_a))?;
        s.offset_b.copy_from(p, &pairs(|sp| sp.offset_b))?;
        s.length.copy_from(p, &col(|sp| sp.length))?;
        s.stiffness.copy_from(p, &col(|sp| sp.stiffness))?;
        s.actuation_scale.copy_from(p, &col(|sp| if sp.actuation != 0.0 { sp.actuation } else { DEFAULT_ACTUATION }))
    }

    /// The original's initial weights, from `seed` instead of numpy's stream.
    pub fn init_weights<B: Backend>(&self, p: &mut B, seed: u64) -> Result<(), Error> {
        let mut rng = ds_runtime::gradcheck::Rng(seed ^ 0x5249_4749_4442_4f44);
        let mut randn = || {
            let (u, v) = (1.0 - rng.next_f64(), rng.next_f64());
            (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
        };
        let (inputs, m) = (self.robot.n_inputs(), self.springs.n);
        let c = &self.controller;
        let w1: Vec<T> = (0..N_HIDDEN * inputs).map(|_| T::of(randn() * (2.0 / (N_HIDDEN + inputs) as f64).sqrt() * 0.5)).collect();
        let w2: Vec<T> = (0..m * N_HIDDEN).map(|_| T::of(randn() * (2.0 / (N_HIDDEN + m) as f64).sqrt())).collect();
        c.weights1.copy_from(p, &w1)?;
        c.weights2.copy_from(p, &w2)?;
        c.bias1.zero(p)?;
        c.bias2.zero(p)
    }

    /// The original's forward time loop over `steps` steps, `launch` running
    /// (or recording) each kernel; the loss at step `loss_step`.
    fn simulate(&self, steps: usize, loss_step: usize, mut launch: impl FnMut(&Kernel<usize>, usize) -> Result<(), Error>) -> Result<(), Error> {
        let advance = if self.toi { &self.world.advance_toi } else { &self.world.advance_no_toi };
        for t in 1..steps {
            launch(&self.nn1, t - 1)?;
            launch(&self.nn2, t - 1)?;
            launch(&self.world.collide, t - 1)?;
            launch(&self.apply_spring_force, t - 1)?;
            launch(advance, t)?;
        }
        launch(&self.compute_loss, loss_step)
    }

    /// The loss after `steps` steps (no gradient).
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize) -> Result<f64, Error> {
        self.world.clear_states(p)?;
        self.simulate(steps, steps - 1, |k, t| k.launch(p, t))?;
        Ok(self.loss.get(p, [])?.into())
    }

    /// The loss after `steps` steps and its gradient in the weights' adjoints,
    /// with the forward and backward times.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize) -> Result<(f64, Times), Error> {
        let mut clock = Stopwatch::start();
        self.world.clear_states(p)?;
        let mut rec = p.record_without_state();
        self.simulate(steps, steps - 1, |k, t| rec.launch(k, t))?;
        let loss: f64 = self.loss.get(rec.program(), [])?.into();
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        Ok((loss, [fwd_ms, clock.lap()]))
    }

    /// The optimized fields, in the original's order.
    pub fn parameters(&self) -> [&GradField<T, 2>; 2] {
        [&self.controller.weights1, &self.controller.weights2]
    }

    /// One step of the original's clipped gradient descent on the weights
    /// (after [`Self::loss_and_grad`]); returns the gradient's norm.
    pub fn descend<B: Backend>(&self, p: &mut B) -> Result<f64, Error> {
        let c = &self.controller;
        let grads = [c.weights1.grad().to_vec(p)?, c.bias1.grad().to_vec(p)?, c.weights2.grad().to_vec(p)?, c.bias2.grad().to_vec(p)?];
        let total_norm_sqr: f64 = grads.iter().flatten().map(|&g| g.into() * g.into()).sum();
        let scale = LEARNING_RATE * (GRADIENT_CLIP / (total_norm_sqr.sqrt() + 1e-4)).min(1.0);
        let step = |values: Vec<T>, grad: &[T]| -> Vec<T> { values.iter().zip(grad).map(|(&w, &g)| T::of(w.into() - scale * g.into())).collect() };
        c.weights1.copy_from(p, &step(c.weights1.to_vec(p)?, &grads[0]))?;
        c.bias1.copy_from(p, &step(c.bias1.to_vec(p)?, &grads[1]))?;
        c.weights2.copy_from(p, &step(c.weights2.to_vec(p)?, &grads[2]))?;
        c.bias2.copy_from(p, &step(c.bias2.to_vec(p)?, &grads[3]))?;
        Ok(total_norm_sqr.sqrt())
    }

    /// The original's `optimize`: `iters` iterations of gradient descent over
    /// the full horizon; the loss before each update and the gradient's norm.
    pub fn optimize<B: Backend>(&self, p: &mut B, iters: usize, report: &mut Reporter) -> Result<(Vec<f64>, Vec<f64>), Error> {
        report.start(iters);
        let (mut losses, mut norms) = (Vec::new(), Vec::new());
        for iter in 0..iters {
            let (loss, [fwd_ms, bwd_ms]) = self.loss_and_grad(p, STEPS)?;
            norms.push(self.descend(p)?);
            losses.push(loss);
            report.iteration(iter, loss, fwd_ms, bwd_ms);
        }
        report.finish();
        Ok((losses, norms))
    }

    /// The scene at step `t`: ground, goal, boxes, springs and joints.
    fn frame<B: Backend>(&self, p: &B, t: usize) -> Result<Vec<plot::Shape>, Error> {
        let ground = plot::Shape::Segment { from: (0.0, GROUND - 0.005), to: (1.0, GROUND - 0.005), color: RGBColor(0, 0, 0), width: 3 };
        let goal = plot::Shape::Circle { center: (GOAL[0], GOAL[1]), radius: 0.01, color: plot::GREEN };
        let mut shapes = vec![ground, goal];
        for i in 0..self.world.bodies.n {
            let color = if i == self.robot.head { plot::ORANGE } else { plot::BLUE };
            shapes.push(plot::Shape::Polygon { points: self.world.corners(p, t, i)?, color });
        }
        for (k, s) in self.robot.springs.iter().enumerate() {
            let (from, to) = (self.world.world_point(p, t, s.a, s.offset_a)?, self.world.world_point(p, t, s.b, s.offset_b)?);
            let (color, width) = if s.length == -1.0 {
                (RGBColor(20, 20, 20), 4)
            } else {
                // The original's colors: red for stretching, blue for contracting.
                let a: f64 = self.controller.actuation.get(p, [t.saturating_sub(1), k])?.into() * 0.5;
                let channel = |v: f64| (v.clamp(0.0, 1.0) * 255.0) as u8;
                (RGBColor(channel(0.5 + a), channel(0.5 - a.abs()), channel(0.5 - a)), 2)
            };
            shapes.push(plot::Shape::Segment { from, to, color, width });
        }
        Ok(shapes)
    }
}

impl Simulation for RigidBody<f32> {
    const SETTINGS: &'static [Setting] = &[
        Setting { name: "robot", default: "0", help: "robot_config.py's robot: 0 robotA, 1 robotB, 2 robotLeg" },
        Setting { name: "toi", default: "true", help: "time of impact in the integrator (advance_toi), as the original's training" },
        Setting {
            name: "penalty",
            default: "0",
            help: "penalty contact coefficient; the original's local `penalty = 0.0` shadows its 1e4, so it computes 0",
        },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Self, RunError> {
        let robot_id: String = opts.setting("robot")?;
        let robot = robot_id.parse().ok().and_then(Robot::by_id).ok_or(RunError::BadSetting { name: "robot".into(), value: robot_id, expected: "0, 1 or 2" })?;
        let penalty: f64 = opts.setting("penalty")?;
        if !penalty.is_finite() || penalty < 0.0 {
            return Err(RunError::BadSetting { name: "penalty".into(), value: penalty.to_string(), expected: "a coefficient >= 0" });
        }
        let physics = Physics { penalty, ..Physics::RIGID_BODY };
        Ok(RigidBody::new(pb, robot, opts.flag("toi")?, physics)?)
    }

    fn params(&self) -> Vec<&str> {
        let c = &self.controller;
        vec![c.weights1.name(), c.bias1.name(), c.weights2.name(), c.bias2.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        self.setup(p)?;
        Ok(self.init_weights(p, opts.seed)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let (losses, norms) = self.optimize(p, opts.iters.unwrap_or(ITERATIONS), report)?;
        let mut out = Outcome { losses, ..Default::default() };
        if let (Some(first), Some(last)) = (norms.first(), norms.last()) {
            out.results.push(("gradient norm, first and last iteration".into(), format!("{first:.3e}, {last:.3e}")));
        }
        // The original's forward('final'): twice the horizon, the loss at step 2047.
        let shown = if opts.pictures { MAX_STEPS } else { STEPS };
        self.world.clear_states(p)?;
        self.simulate(shown, STEPS - 1, |k, t| k.launch(p, t))?;
        out.final_loss = self.loss.get(p, [])? as f64;
        if let (Some(first), Some(last)) = (out.losses.first(), out.losses.last()) {
            out.results.push(("loss first -> last iteration".into(), format!("{first:.6} -> {last:.6}")));
        }
        let head: [f32; 2] = self.world.bodies.x.get(p, [STEPS - 1, self.robot.head])?;
        out.results.push(("head box at step 2047 (after training)".into(), format!("({:.4}, {:.4})", head[0], head[1])));
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "rigid_body: |head - goal| at step 2047", &out.losses)?);
            let frames = (0..MAX_STEPS).step_by(128).chain([MAX_STEPS - 1]).map(|t| self.frame(p, t)).collect::<Result<_, _>>()?;
            let anim = plot::Animation { title: "rigid_body, after training".into(), x_range: (0.0, 1.0), y_range: (0.0, 0.8), frames };
            out.files.extend(plot::animate(&opts.out, "motion", &anim, 40, 4)?);
        }
        Ok(out)
    }
}
