//! DiffTaichi's `diffmpm3d.py` (paper Fig. 3 middle): a 3-D soft quadruped
//! simulated with MLS-MPM on a 64^3 grid, neo-Hookean elasticity plus an
//! actuation stress in 16 actuated blocks driven by a sine-wave controller;
//! gradient descent on the controller so the robot walks in +x. The 3-D MPM
//! kernels here (clear_grid3, p2g3, grid_op3, g2p3, compute_x_avg3) are
//! shared with [`crate::liquid`] (the same robot two-way coupled with a
//! liquid): one set of kernels, built with [`Mpm3::mixed`] on for the
//! liquid, where each particle's material comes from `particle_type`.
//!
//! Scene facts, from the original: `robot()` with block_size 0.1 and
//! offset (0.1, 0.05, 0.3): four legs (at x = 0 / 0.2, z = 0 / 0.2), each
//! four blocks 0.05 x 0.035 x 0.1 (one actuator each: 16 actuators), and a
//! body of three blocks 0.1 x 0.07 x 0.1 at z = 0.1 (no actuator); each
//! block filled with `int(w / dx * 3)` x `int(h / dx * 3)` x `int(d / dx * 3)`
//! particles at cell centres (density 3): 30495 particles, all solid
//! (`particle_type` 1, mass 1). n_grid = 64 (dx = 1/64), dt = 2e-3, p_vol 1,
//! E = mu = lambda = 10, gravity 10, bound = 3 cells, 512 steps (511
//! substeps, x[0..511]). Per substep: clear_grid, compute_actuation
//! (actuation[t, i] = tanh(sum_j weights[i, j] sin(40 t dt + 2 pi j / 4) +
//! bias[i])), p2g (F' = (I + dt C) F; neo-Hookean Cauchy stress
//! mu F' F'^T + (lambda ln J - mu) I plus the actuation stress
//! F' diag(0, 0, 5 act) F'^T; APIC affine momentum; quadratic B-spline
//! weights over the 3x3x3 stencil, atomic scatter), grid_op (normalize,
//! gravity; a node within 3 cells of any wall moving into it stops: all
//! three components zeroed), g2p (APIC: v, C gathered, x += dt v). Loss =
//! -(mean x of the solid particles at step 511). Optimized: `weights`
//! [16, 4] (initially N(0, 0.01^2)) and `bias` [16] (zero); plain gradient
//! descent, learning rate 30, 100 iterations (the original's `--iters`
//! default).
//!
//! State: x, v, C, F stored per step (x[t, i], ...); one grid, cleared and
//! rebuilt every substep, recomputed in the backward pass through the
//! Tape's checkpointing ([`RecomputeGrid`], `record_without_state`), as
//! [`crate::diffmpm`] does: nothing is copied, each substep's clear_grid ..
//! grid_op is re-run before its gradients. `--verbose` prints the plan.
//!
//! Settings: `steps` (the original's 512; fewer for short checks) and
//! `density` (particles per dx per axis, the original's 3; 1 gives a coarse
//! robot of 1008 particles for tests).
//!
//! Departures: the original's initial weights come from Taichi's `ti.randn`
//! (not reproducible here); here they are drawn from `--seed` (Box-Muller
//! over `ds_runtime::gradcheck::Rng`); `--params` loads the original's
//! (arrays `weights`, `bias`). The original's grid_op has a friction branch
//! for the floor (coeff 1.5), but it runs after the velocity was zeroed
//! (lin = 0), so it never changes anything; it is left out. The original
//! writes particle dumps every 20 iterations; here, with pictures on, the
//! last forward pass is drawn (an oblique projection to 2-D, frames every
//! few steps, coloured by actuation as the original colours its dumps).
//! The kernels are generic over the float type: f32 as the original, f64
//! for the gradient test.
//!
//! Taichi 1.7 runs diffmpm3d.py as it is (arch forced to the CPU), but it
//! times nothing (no `ti.ad.Tape`: its own forward/backward functions) and
//! draws its weights inside a kernel; the port check used a /tmp copy with
//! `steps` reduced, the weights written to an npz, the losses printed in
//! full. Port check, from the same initial weights (`--params`), 128 steps
//! (127 substeps), 6 iterations: the losses agree to all 7 digits printed
//! here (-0.2499433, -0.2508934, -0.2518748, -0.2529285, -0.2541029,
//! -0.2553004 on both sides).
//!
//! Speed, one pinned core, alternating with the Taichi copy in the same
//! shell, 128 steps on both sides (a full 512-step Taichi iteration takes
//! over a minute here, plus 6 minutes compiling): 3942 ms an iteration (784
//! forward, 3157 backward) against Taichi's 15249 ms (3.9x); a second round
//! on a more loaded machine 7072 against 28986 (4.1x). Per substep (bounds
//! checked): g2p3_grad 10.3 ms, p2g3_grad 9.2, p2g3 3.4 (run twice: forward
//! and the backward's recompute), g2p3 3.2, grid_op3 0.8, grid_op3_grad 1.4,
//! clear_grid3 0.3. The gradients of the two particle kernels are 70% of the
//! backward: their adjoint scatter into the grid (27 nodes x 3 or 4
//! components per particle) is atomic adds.

use crate::diffmpm::Launch;
use crate::mpm_robot::{Controller, MpmSolver, Optimizer, Robot, actuation_colour};
use crate::report::{Outcome, Reporter};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::Scalar;
use diffsim::prelude::*;
use plotters::style::RGBColor;

/// Per-particle 3-vectors by step: x[t, i], v[t, i].
pub type Particles3<T> = GradField<[T; 3], 2>;
/// Per-particle 3x3 matrices by step: C[t, i], F[t, i].
pub type ParticleMats3<T> = GradField<[[T; 3]; 3], 2>;
/// A vector per grid node.
pub type GridVec3<T> = GradField<[T; 3], 3>;

/// The constants the 3-D MPM kernels are built with (the originals'
/// module-level constants, the same in diffmpm3d.py and liquid.py).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mpm3 {
    pub n_particles: usize,
    /// Particles of type 1 (solid): the loss averages over them.
    pub n_solid: usize,
    pub n_actuators: usize,
    pub n_grid: usize,
    pub dx: f64,
    pub inv_dx: f64,
    pub dt: f64,
    pub p_vol: f64,
    /// Young's modulus; mu = lambda = E, and the liquid's bulk modulus.
    pub e: f64,
    pub gravity: f64,
    pub bound: usize,
    pub act_strength: f64,
    /// Particles of two materials (`particle_type` 0: liquid, 1: solid)
    /// are read per particle (liquid.py); off, all are solid (diffmpm3d.py)
    /// and `particle_type` is not read.
    pub mixed: bool,
}

pub const N_GRID: usize = 64;
pub const STEPS: usize = 512;
const ACTUATION_OMEGA: usize = 40;
/// Particles per dx per axis in the original's `add_rect`.
pub const DENSITY: usize = 3;

impl Mpm3 {
    /// The originals' constants for a scene of `n_particles` (`n_solid`
    /// solid) particles and `n_actuators` actuators.
    pub fn new(n_particles: usize, n_solid: usize, n_actuators: usize, mixed: bool) -> Mpm3 {
        let dx = 1.0 / N_GRID as f64;
        Mpm3 {
            n_particles,
            n_solid: n_solid.max(1),
            n_actuators,
            n_grid: N_GRID,
            dx,
            inv_dx: 1.0 / dx,
            dt: 2e-3,
            p_vol: 1.0,
            e: 10.0,
            gravity: 10.0,
            bound: 3,
            act_strength: 5.0,
            mixed,
        }
    }
}

// --- the 3-D MPM kernels, shared by diffmpm3d and liquid ---
#[kernel]
fn clear_grid3<T: Scalar>(grid_v_in: &GridVec3<T>, grid_m_in: &GradField<T, 3>, m: &Mpm3) {
    for i in 0..m.n_grid {
        for j in 0..m.n_grid {
            for k in 0..m.n_grid {
                grid_v_in[(i, j, k)] = Vec3::splat(0.0, T::TY);
                grid_m_in[(i, j, k)] = 0.0;
            }
        }
    }
}

/// The cell below-left-front of a particle's stencil (Taichi's truncating
/// `ti.cast(x * inv_dx - 0.5, ti.i32)`), the offset from it in cells, and
/// the quadratic B-spline weights of the 3 nodes per axis.
#[func]
fn stencil3<T: Scalar>(xp: Vec3, inv_dx: f64) -> ([Expr; 3], Vec3, [Vec3; 3]) {
    let g = xp * inv_dx - 0.5;
    let base = [g.at(0) as i32, g.at(1) as i32, g.at(2) as i32];
    let fx = xp * inv_dx - Vector([base[0] as T, base[1] as T, base[2] as T]);
    let (a, b, c) = (1.5 - fx, fx - 1.0, fx - 0.5);
    let w = [0.5 * (a * a), 0.75 - b * b, 0.5 * (c * c)];
    (base, fx, w)
}

#[kernel]
#[allow(clippy::too_many_arguments)]
fn p2g3<T: Scalar>(
    x: &Particles3<T>,
    v: &Particles3<T>,
    c: &ParticleMats3<T>,
    f: &ParticleMats3<T>,
    actuation: &GradField<T, 2>,
    actuator_id: &Field<i32, 1>,
    particle_type: &Field<i32, 1>,
    grid_v_in: &GridVec3<T>,
    grid_m_in: &GradField<T, 3>,
    m: &Mpm3,
    s: usize,
) {
    for p in 0..m.n_particles {
        let (base, fx, w) = stencil3::<T>(x[(s, p)], m.inv_dx);
        let cp = c[(s, p)];
        let new_f = (Mat3::identity(T::TY) + cp * m.dt) * f[(s, p)];
        let j = new_f.determinant();
        let id = actuator_id[(p,)];
        let a = actuation[(s, max(id, 0) as usize)] * m.act_strength;
        let act = if id == -1 { 0.0 } else { a };
        // Neo-Hookean (the solid): mu F F^T + (lambda ln J - mu) I.
        let mut stored_f = new_f;
        let mut mass = 1.0 as T;
        let mut cauchy = Mat3::zero(T::TY);
        if m.mixed {
            if particle_type[(p,)] == 0 {
                // The liquid: F = diag(sqrt J, sqrt J, 1), pressure (J - 1) E.
                let sqrt_j = j.sqrt();
                stored_f = Mat3::diag(Vector([sqrt_j, sqrt_j, 1.0 as T]));
                mass = 4.0 as T;
                let pressure = (j - 1.0) * m.e;
                cauchy = Mat3::diag(Vector([pressure, pressure, pressure]));
            } else {
                let d = j.ln() * m.e - m.e;
                cauchy = (new_f * new_f.transpose()) * m.e + Mat3::diag(Vector([d, d, d]));
            }
        } else {
            let d = j.ln() * m.e - m.e;
            cauchy = (new_f * new_f.transpose()) * m.e + Mat3::diag(Vector([d, d, d]));
        }
        f[(s + 1usize, p)] = stored_f;
        // F A F^T with A = diag(0, 0, act): column 2 of F times act times row 2 of F^T.
        let f2 = Vector([stored_f.at(0, 2), stored_f.at(1, 2), stored_f.at(2, 2)]);
        cauchy = cauchy + (f2 * act).outer(&f2);
        let stress = cauchy * (-(m.dt * m.p_vol * 4.0 * m.inv_dx * m.inv_dx));
        let affine = stress + cp * mass;
        let momentum = v[(s, p)] * mass;
        for i in unroll(0..3) {
            for jj in unroll(0..3) {
                for k in unroll(0..3) {
                    let dpos = Vector([(i as f64 - fx.at(0)) * m.dx, (jj as f64 - fx.at(1)) * m.dx, (k as f64 - fx.at(2)) * m.dx]);
                    let weight = w[i].at(0) * w[jj].at(1) * w[k].at(2);
                    let (n0, n1, n2) = ((base[0] + i as i32) as usize, (base[1] + jj as i32) as usize, (base[2] + k as i32) as usize);
                    grid_v_in[(n0, n1, n2)] += (momentum + affine * dpos) * weight;
                    grid_m_in[(n0, n1, n2)] += weight * mass;
                }
            }
        }
    }
}

#[kernel]
fn grid_op3<T: Scalar>(grid_v_in: &GridVec3<T>, grid_m_in: &GradField<T, 3>, grid_v_out: &GridVec3<T>, m: &Mpm3) {
    for i in 0..m.n_grid {
        for j in 0..m.n_grid {
            for k in 0..m.n_grid {
                let inv_m = 1.0 / (grid_m_in[(i, j, k)] + 1e-10);
                let mut v_out = grid_v_in[(i, j, k)] * inv_m;
                v_out[1] = v_out[1] - m.dt * m.gravity;
                let zero = Vec3::splat(0.0, T::TY);
                let (low, high) = (m.bound, m.n_grid - m.bound);
                // The original's order: x walls, z walls, then the floor and the ceiling.
                if i < low && v_out[0] < 0.0 {
                    v_out = zero;
                }
                if i > high && v_out[0] > 0.0 {
                    v_out = zero;
                }
                if k < low && v_out[2] < 0.0 {
                    v_out = zero;
                }
                if k > high && v_out[2] > 0.0 {
                    v_out = zero;
                }
                if j < low && v_out[1] < 0.0 {
                    v_out = zero;
                }
                if j > high && v_out[1] > 0.0 {
                    v_out = zero;
                }
                grid_v_out[(i, j, k)] = v_out;
            }
        }
    }
}

#[kernel]
fn g2p3<T: Scalar>(x: &Particles3<T>, v: &Particles3<T>, c: &ParticleMats3<T>, grid_v_out: &GridVec3<T>, m: &Mpm3, s: usize) {
    for p in 0..m.n_particles {
        let xp = x[(s, p)];
        let (base, fx, w) = stencil3::<T>(xp, m.inv_dx);
        let mut new_v = Vec3::splat(0.0, T::TY);
        let mut new_c = Mat3::zero(T::TY);
        for i in unroll(0..3) {
            for j in unroll(0..3) {
                for k in unroll(0..3) {
                    let dpos = Vector([i as f64 - fx.at(0), j as f64 - fx.at(1), k as f64 - fx.at(2)]);
                    let g_v = grid_v_out[((base[0] + i as i32) as usize, (base[1] + j as i32) as usize, (base[2] + k as i32) as usize)];
                    let weight = w[i].at(0) * w[j].at(1) * w[k].at(2);
                    new_v = new_v + g_v * weight;
                    new_c = new_c + g_v.outer(&dpos) * (4.0 * weight) * m.inv_dx;
                }
            }
        }
        v[(s + 1usize, p)] = new_v;
        x[(s + 1usize, p)] = xp + new_v * m.dt;
        c[(s + 1usize, p)] = new_c;
    }
}

/// x_avg += x[t, i] / n_solid over the solid particles.
#[kernel]
fn compute_x_avg3<T: Scalar>(x: &Particles3<T>, particle_type: &Field<i32, 1>, x_avg: &GradField<[T; 3], 0>, m: &Mpm3, t: usize) {
    for i in 0..m.n_particles {
        let share = 1.0 / m.n_solid as f64;
        if m.mixed {
            let contrib = if particle_type[(i,)] == 1 { share as T } else { 0.0 };
            x_avg[()] += x[(t, i)] * contrib;
        } else {
            x_avg[()] += x[(t, i)] * share;
        }
    }
}
// --- end of the 3-D MPM kernels ---

/// The particles and the grid of a 3-D MPM scene, with the shared kernels.
pub struct Solver3<T: Real> {
    pub mpm: Mpm3,
    /// Steps the particle history holds.
    pub max_steps: usize,
    pub x: Particles3<T>,
    pub v: Particles3<T>,
    pub c: ParticleMats3<T>,
    pub f: ParticleMats3<T>,
    pub actuator_id: Field<i32, 1>,
    pub particle_type: Field<i32, 1>,
    pub grid_v_in: GridVec3<T>,
    pub grid_m_in: GradField<T, 3>,
    pub grid_v_out: GridVec3<T>,
    pub x_avg: GradField<[T; 3], 0>,
    pub clear_grid: Kernel<()>,
    pub p2g: Kernel<usize>,
    pub grid_op: Kernel<()>,
    pub g2p: Kernel<usize>,
    pub compute_x_avg: Kernel<usize>,
}

impl<T: Real> Solver3<T> {
    /// The fields (`max_steps` steps of `mpm.n_particles` particles) and
    /// kernels; p2g reads `actuation[t, actuator_id[i]]`.
    pub fn new(pb: &mut ProgramBuilder, mpm: Mpm3, max_steps: usize, actuation: &GradField<T, 2>) -> Result<Solver3<T>, Error> {
        let (n, g) = (mpm.n_particles, mpm.n_grid);
        let (x, v) = (pb.field_with_grad("x", [max_steps, n]), pb.field_with_grad("v", [max_steps, n]));
        let (c, f) = (pb.field_with_grad("C", [max_steps, n]), pb.field_with_grad("F", [max_steps, n]));
        let (actuator_id, particle_type) = (pb.field("actuator_id", [n]), pb.field("particle_type", [n]));
        let grid_v_in = pb.field_with_grad("grid_v_in", [g, g, g]);
        let grid_m_in = pb.field_with_grad("grid_m_in", [g, g, g]);
        let grid_v_out = pb.field_with_grad("grid_v_out", [g, g, g]);
        let x_avg = pb.field_with_grad("x_avg", []);
        Ok(Solver3 {
            clear_grid: pb.kernel(clear_grid3(&grid_v_in, &grid_m_in, &mpm))?,
            p2g: pb.kernel(p2g3(&x, &v, &c, &f, actuation, &actuator_id, &particle_type, &grid_v_in, &grid_m_in, &mpm))?,
            grid_op: pb.kernel(grid_op3(&grid_v_in, &grid_m_in, &grid_v_out, &mpm))?,
            g2p: pb.kernel(g2p3(&x, &v, &c, &grid_v_out, &mpm))?,
            compute_x_avg: pb.kernel(compute_x_avg3(&x, &particle_type, &x_avg, &mpm))?,
            mpm,
            max_steps,
            x,
            v,
            c,
            f,
            actuator_id,
            particle_type,
            grid_v_in,
            grid_m_in,
            grid_v_out,
            x_avg,
        })
    }

    /// The particle positions at each step of `steps`.
    pub fn positions<B: Backend>(&self, p: &B, steps: &[usize]) -> Result<Vec<Vec<[f64; 3]>>, Error> {
        let n = self.mpm.n_particles;
        let all = self.x.to_vec(p)?;
        Ok(steps.iter().map(|&t| all[t * n..(t + 1) * n].iter().map(|q| q.map(Into::<f64>::into)).collect()).collect())
    }
}

/// Python's `random.random()` after `random.seed(seed)`: MT19937 seeded by
/// `init_by_array` with the seed's 32-bit words, 53-bit floats from two
/// draws. The liquid's particles are placed with it, as the original's
/// `add_rect` places them with Python's global generator (unseeded there).
pub struct PyRandom {
    mt: [u32; 624],
    index: usize,
}

impl PyRandom {
    pub fn new(seed: u64) -> PyRandom {
        let mut mt = [0u32; 624];
        mt[0] = 19650218;
        for i in 1..624 {
            mt[i] = 1812433253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        let key: Vec<u32> = if seed >> 32 == 0 { vec![seed as u32] } else { vec![seed as u32, (seed >> 32) as u32] };
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1664525)).wrapping_add(key[j]).wrapping_add(j as u32);
            (i, j) = (i + 1, j + 1);
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1566083941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        PyRandom { mt, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                self.mt[k] = self.mt[(k + 397) % 624] ^ (y >> 1) ^ if y & 1 == 1 { 0x9908_b0df } else { 0 };
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A float in [0, 1), as `random.random()`.
    pub fn random(&mut self) -> f64 {
        let (a, b) = (self.next_u32() >> 5, self.next_u32() >> 6);
        (a as f64 * 67108864.0 + b as f64) * (1.0 / 9007199254740992.0)
    }
}

/// A scene as the original's `Scene` builds it: particles rectangle by
/// rectangle, their actuators (-1: none) and materials (0 liquid, 1 solid).
#[derive(Clone, Debug, Default)]
pub struct Scene3 {
    pub x: Vec<[f64; 3]>,
    pub actuator_id: Vec<i32>,
    pub particle_type: Vec<i32>,
    pub n_actuators: usize,
    pub n_solid: usize,
    offset: [f64; 3],
    density: usize,
}

impl Scene3 {
    pub fn new(density: usize) -> Scene3 {
        Scene3 { density, ..Default::default() }
    }

    pub fn set_offset(&mut self, offset: [f64; 3]) {
        self.offset = offset;
    }

    fn new_actuator(&mut self) -> i32 {
        self.n_actuators += 1;
        self.n_actuators as i32 - 1
    }

    /// The original's `add_rect`: a solid block on a lattice at cell
    /// centres, or (`liquid` given) a liquid block of uniformly random points.
    #[allow(clippy::too_many_arguments)]
    pub fn add_rect(&mut self, x: f64, y: f64, z: f64, w: f64, h: f64, d: f64, actuation: i32, liquid: Option<&mut PyRandom>) {
        let dx = 1.0 / N_GRID as f64;
        let density = self.density as f64;
        let (w_count, h_count, d_count) = ((w / dx * density) as usize, (h / dx * density) as usize, (d / dx * density) as usize);
        let (real_dx, real_dy, real_dz) = (w / w_count as f64, h / h_count as f64, d / d_count as f64);
        let [ox, oy, oz] = self.offset;
        let ptype = if liquid.is_some() { 0 } else { 1 };
        let mut rng = liquid;
        for i in 0..w_count {
            for j in 0..h_count {
                for k in 0..d_count {
                    let point = match rng.as_deref_mut() {
                        None => [x + (i as f64 + 0.5) * real_dx + ox, y + (j as f64 + 0.5) * real_dy + oy, z + (k as f64 + 0.5) * real_dz + oz],
                        Some(r) => {
                            let a = x + r.random() * w + ox;
                            let b = y + r.random() * h + oy;
                            [a, b, z + r.random() * d + oz]
                        }
                    };
                    self.x.push(point);
                    self.actuator_id.push(actuation);
                    self.particle_type.push(ptype);
                    self.n_solid += ptype as usize;
                }
            }
        }
    }

    /// The original's `robot(scene)`: offset (0.1, 0.05, 0.3), four legs of
    /// four actuated blocks each, a body of three blocks.
    pub fn quadruped(&mut self, block_size: f64) {
        self.set_offset([0.1, 0.05, 0.3]);
        for leg in 0..4 {
            let (x, y, z) = ((leg / 2) as f64 * block_size * 2.0, 0.0, (leg % 2) as f64 * block_size * 2.0);
            for i in 0..4 {
                let act = self.new_actuator();
                let (bx, by) = (x + block_size / 2.0 * (i / 2) as f64, y + 0.7 * block_size / 2.0 * (i % 2) as f64);
                self.add_rect(bx, by, z, block_size / 2.0, 0.7 * block_size / 2.0, block_size, act, None);
            }
        }
        for i in 0..3 {
            self.add_rect(block_size * i as f64, 0.0, block_size, block_size, block_size * 0.7, block_size, -1, None);
        }
    }

    /// The constants of this scene's kernels.
    pub fn mpm(&self) -> Mpm3 {
        Mpm3::new(self.x.len(), self.n_solid, self.n_actuators, self.particle_type.contains(&0))
    }
}

/// A 3-D robot (diffmpm3d's quadruped, or liquid's with its liquid), its
/// controller and the loss.
pub type Robot3<T> = Robot<T, Solver3<T>, 3>;

impl<T: Real> Robot<T, Solver3<T>, 3> {
    /// The scene's fields and kernels for runs of `steps` steps.
    pub fn new(pb: &mut ProgramBuilder, scene: Scene3, optimizer: Optimizer, steps: usize) -> Result<Robot3<T>, Error> {
        Robot::declare(pb, scene.mpm(), scene, optimizer, steps)
    }
}

/// The 3-D solver as the robots': the scene is a [`Scene3`].
impl<T: Real> MpmSolver<T, 3> for Solver3<T> {
    type Mpm = Mpm3;
    type Scene = Scene3;
    const WEIGHT_SEED: u64 = 0x4d50_4d33_0000_0001;
    const LOSS: &'static str = "-(mean x of the solid at the last step)";

    fn controller(mpm: &Mpm3) -> Controller {
        Controller { n_actuators: mpm.n_actuators, omega: ACTUATION_OMEGA, dt: mpm.dt }
    }

    fn declare(pb: &mut ProgramBuilder, mpm: Mpm3, steps: usize, actuation: &GradField<T, 2>) -> Result<Solver3<T>, Error> {
        Solver3::new(pb, mpm, steps, actuation)
    }

    fn place_scene<B: Backend>(&self, p: &mut B, scene: &Scene3) -> Result<(), Error> {
        for fld in [&self.x, &self.v] {
            fld.zero(p)?;
        }
        for fld in [&self.c, &self.f] {
            fld.zero(p)?;
        }
        let (o, z) = (T::of(1.0), T::of(0.0));
        for (i, &[a, b, c]) in scene.x.iter().enumerate() {
            self.x.set(p, [0, i], [T::of(a), T::of(b), T::of(c)])?;
            self.f.set(p, [0, i], [[o, z, z], [z, o, z], [z, z, o]])?;
        }
        self.actuator_id.copy_from(p, &scene.actuator_id)?;
        self.particle_type.copy_from(p, &scene.particle_type)
    }

    fn actuated_substep<L: Launch>(&self, l: &mut L, s: usize, actuate: &Kernel<usize>) -> Result<(), Error> {
        l.run(&self.clear_grid, ())?;
        l.run(actuate, s)?;
        l.run(&self.p2g, s)?;
        l.run(&self.grid_op, ())?;
        l.run(&self.g2p, s)
    }

    fn x_avg(&self) -> &GradField<[T; 3], 0> {
        &self.x_avg
    }

    fn compute_x_avg(&self) -> &Kernel<usize> {
        &self.compute_x_avg
    }

    fn results<B: Backend>(&self, _: &B, steps: usize) -> Vec<(String, String)> {
        vec![("particles (solid), steps".into(), format!("{} ({}), {}", self.mpm.n_particles, self.mpm.n_solid, steps))]
    }

    /// Projected obliquely (x right, y up, z receding up-right); colours as
    /// the original's dumps: liquid blue, body grey, actuated blocks by
    /// half their actuation ([`actuation_colour`]). At most ~3000 particles
    /// are drawn, farthest first.
    fn motion<B: Backend>(robot: &Robot3<T>, p: &B, title: &str) -> Result<plot::Animation, Error> {
        let (scene, n_act) = (&robot.scene, robot.controller.n_actuators);
        let act = robot.actuation.to_vec(p)?;
        let picked = robot.frames();
        let n = scene.x.len();
        let stride = n.div_ceil(3000).max(1);
        let project = |[x, y, z]: [f64; 3]| (x + 0.35 * (z - 0.3), y + 0.2 * (z - 0.3));
        let mut order: Vec<usize> = (0..n).step_by(stride).collect();
        order.sort_by(|&a, &b| scene.x[b][2].total_cmp(&scene.x[a][2]));
        let mut frames = Vec::new();
        for (&t, x) in picked.iter().zip(robot.solver.positions(p, &picked)?) {
            let mut shapes = vec![plot::Shape::Segment { from: (0.0, 3.0 / 64.0), to: (1.0, 3.0 / 64.0), color: RGBColor(0, 0, 0), width: 2 }];
            for &k in &order {
                let id = scene.actuator_id[k];
                let c = |v: f64| (255.0 * v.clamp(0.0, 1.0)).round() as u8;
                let color = if scene.particle_type[k] == 0 {
                    RGBColor(c(0.3), c(0.3), c(1.0))
                } else if id < 0 {
                    RGBColor(c(0.4), c(0.4), c(0.4))
                } else {
                    let a: f64 = if t == 0 { 0.0 } else { act[(t - 1) * n_act + id as usize].into() };
                    actuation_colour(0.5 * a)
                };
                shapes.push(plot::Shape::Circle { center: project(x[k]), radius: 0.0025, color });
            }
            frames.push(shapes);
        }
        Ok(plot::Animation { title: title.into(), x_range: (0.0, 1.0), y_range: (0.0, 0.4), frames })
    }
}

/// The `steps` setting: at least 2 (one substep) and at most 512 (the
/// original's max_steps).
pub fn steps_setting(opts: &RunOptions) -> Result<usize, RunError> {
    let steps: usize = opts.setting("steps")?;
    if !(2..=STEPS).contains(&steps) {
        return Err(RunError::BadSetting { name: "steps".into(), value: steps.to_string(), expected: "a step count from 2 to 512" });
    }
    Ok(steps)
}

/// The `density` setting: particles per dx per axis, 1 to 3.
pub fn density_setting(opts: &RunOptions) -> Result<usize, RunError> {
    let density: usize = opts.setting("density")?;
    if !(1..=DENSITY).contains(&density) {
        return Err(RunError::BadSetting { name: "density".into(), value: density.to_string(), expected: "particles per dx per axis, 1 to 3" });
    }
    Ok(density)
}

pub const SETTINGS: &[Setting] = &[
    Setting { name: "steps", default: "512", help: "time steps of a run (the original's 512; fewer for short checks)" },
    Setting { name: "density", default: "3", help: "particles per dx per axis (the original's 3; 1 for a coarse robot)" },
];

/// The quadruped of diffmpm3d.py (block size 0.1).
pub fn quadruped_scene(density: usize) -> Scene3 {
    let mut scene = Scene3::new(density);
    scene.quadruped(0.1);
    scene
}

/// diffmpm3d: the quadruped, learning rate 30, 100 iterations.
pub struct DiffMpm3d(pub Robot3<f32>);

pub const OPTIMIZER: Optimizer = Optimizer { learning_rate: 30.0, iterations: 100 };

impl Simulation for DiffMpm3d {
    const SETTINGS: &'static [Setting] = SETTINGS;

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<DiffMpm3d, RunError> {
        let (steps, density) = (steps_setting(opts)?, density_setting(opts)?);
        Ok(DiffMpm3d(Robot3::new(pb, quadruped_scene(density), OPTIMIZER, steps)?))
    }

    fn params(&self) -> Vec<&str> {
        self.0.params()
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        Ok(self.0.init(p, opts.seed)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        self.0.run_example(p, opts, report, "diffmpm3d")
    }
}
