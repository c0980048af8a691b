//! DiffTaichi's `diffmpm.py` (paper Table 1, Fig. 3 left): a 2-D soft robot
//! simulated with the moving least squares material point method (MLS-MPM),
//! driven by 4 actuators whose strengths come from a sine-wave controller;
//! gradient descent on the controller so the robot walks right. The MPM
//! kernels here (clear_grid, p2g, grid_op, g2p) are shared with
//! `diffmpm_benchmark` (the Table 1 microbenchmark), built with that
//! program's constants.
//!
//! Scene facts, from the original: the `robot` scene (offset (0.1, 0.03)): a
//! body 0.3 x 0.1 at (0, 0.1) without actuator and four legs 0.05 x 0.1 at
//! x = 0, 0.05, 0.2, 0.25 (actuators 0-3), each rectangle filled with
//! `int(w / dx) * 2` x `int(h / dx) * 2` particles at cell centres: 2976
//! particles, all solid. n_grid = 128 (dx = 1/128), dt = 1e-3, p_vol = 1,
//! particle mass 1, E = mu = lambda = 10, gravity 3.8, bound = 3 cells,
//! 1024 steps (1023 substeps, x[0..1023]). Per substep: clear_grid,
//! compute_actuation (actuation[t, i] = tanh(sum_j weights[i, j]
//! sin(20 t dt + 2 pi j / 4) + bias[i])), p2g (F' = (I + dt C) F, fixed
//! corotated Cauchy stress 2 mu (F' - R) F'^T + lambda (J - 1) J I with R
//! from the 2x2 polar decomposition, plus the actuation stress
//! F' [[0, 0], [0, 4 act]] F'^T; APIC affine momentum; quadratic B-spline
//! weights over the 3x3 stencil, atomic scatter of momentum and mass),
//! grid_op (normalize, gravity; a node within 3 cells of a wall moving into
//! it stops: both components zeroed), g2p (APIC: v, C gathered, x += dt v).
//! Loss = -(mean x of the particles at step 1023). Optimized: `weights`
//! [4, 4] (initially N(0, 0.01^2)) and `bias` [4] (zero); plain gradient
//! descent, learning rate 0.1, no clipping, 100 iterations.
//!
//! Sparse grid (`--set grid=sparse`, [`SparseGrid`]): the three grid fields
//! and their adjoints on one pointer of 8x8 dense blocks with a pool of 64 of
//! its 256 blocks; p2g's scatter activates the blocks the particles reach,
//! `clear_active_grid` deactivates them (the blocks go back to the pool,
//! zeroed, after the launch) and `grid_op_active` runs over the active cells.
//! The loss and gradients equal the dense grid's (the same to the printed
//! digits over 1024 steps), in a quarter of the grid memory (165 KB against
//! 655 KB in f32; the robot touches about 24 blocks).
//!
//! State: x, v, C, F are stored per step (x[t, i], ...); the grid is one
//! set of fields, cleared and rebuilt every substep. The backward pass
//! rebuilds it through the Tape's checkpointing: [`RecomputeGrid`], a
//! checkpoint [`Policy`] whose schedule restores nothing (so the recording
//! keeps no copy of the state: `record_without_state`), reverses each
//! substep's launches last first after re-running clear_grid .. grid_op of
//! that substep (nothing restored: the per-step particle state is never
//! overwritten, so the grid is all that a substep's gradient needs again).
//! With `--verbose` the plan (peak memory, launches recomputed) is printed:
//! no snapshot bytes, 4088 launches re-run per backward (each substep's clear_grid .. grid_op; no
//! launch runs again before its own gradient), and what the Tape's
//! store-all schedule would hold instead: the whole state, the 1024-step
//! particle history included, in every slot (5117 slots, 750 GB; binomial
//! schedules copy it too); see [`RecomputeGrid`].
//!
//! Departures: the original's initial weights come from numpy's global
//! random state (not reproducible here); here they are drawn from
//! `--seed` (Box-Muller over `ds_runtime::gradcheck::Rng`); `--params`
//! loads the original's (arrays `weights`, `bias`). The original's grid_op
//! has a friction branch (coeff 0.5) for the floor, but it runs after the
//! velocity was zeroed (lin = 0), so it never changes anything; it is left
//! out. `particle_type` is left out: the robot has no fluid particles (the
//! fish scene, unused by the original's main, is not ported). The original
//! allocates 2048 steps for a 1500-step visualization every 10 iterations;
//! here 1024 are stored and the pictures show the last forward pass (1024
//! steps with the final controller). The kernels are generic over the
//! float type: f32 as the original, f64 for the gradient test.
//!
//! Port check against Taichi 1.7 (one CPU thread), from the same initial
//! weights (the original run with `np.random.seed(0)`, its weights and
//! biases written to an npz and given here with `--params`): the losses of
//! 25 iterations agree to 4.3-7 digits (-0.2503872 there, -0.2503873 here;
//! -0.3912978 / -0.3913015 at iteration 24), then to about 3 (f32 rounding
//! amplified through the floor contacts: -0.39738 / -0.39775 at 29).
//! Over 50 iterations the loss goes from -0.2504 to -0.4340 (the issue's
//! "about -0.25 to -0.43" for the original).
//!
//! Speed, one pinned core (`taskset -c 1 diffsim bench diffmpm --threads 1`
//! against `taichi_run.py diffmpm.py`, alternating): 659 ms an iteration
//! (176 forward, 483 backward) against Taichi's 2928.5 ms, 4.4x (889 ms
//! while the Tape re-ran every launch before its gradient and the recording
//! copied the 146.6 MB state). Per substep (bounds unchecked): p2g 78 us
//! (run twice an iteration: forward and advance), p2g_grad 216 us, g2p_grad
//! 124 us, g2p 24 us. Two threads are no faster (683 ms): p2g and g2p's
//! gradient scatter into the grid at data-dependent cells (atomics, so
//! their serial twins run on one thread).

use crate::mpm_robot::{Controller, MpmSolver, Optimizer, Robot, actuation_colour};
use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::prelude::*;
use diffsim::{KernelArgs, Plan, Policy, Scalar, StoreAll};
use ds_runtime::gradcheck::Rng;
use ds_runtime::tape::checkpoint::{Action, Schedule};
use plotters::style::RGBColor;

/// Per-particle vectors by step: x[t, i].
pub type Particles<T> = GradField<[T; 2], 2>;
/// Per-particle 2x2 matrices by step: C[t, i], F[t, i].
pub type ParticleMats<T> = GradField<[[T; 2]; 2], 2>;

/// The constants an MPM scene's kernels are built with (the originals'
/// module-level constants).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mpm {
    pub n_particles: usize,
    pub n_grid: usize,
    /// 1 / n_grid, and its inverse, as Python computes them.
    pub dx: f64,
    pub inv_dx: f64,
    pub dt: f64,
    pub p_vol: f64,
    pub p_mass: f64,
    /// Young's modulus; mu = lambda = E in both originals.
    pub e: f64,
    pub gravity: f64,
    /// Nodes within `bound` cells of a wall are boundary nodes.
    pub bound: usize,
    /// diffmpm: a boundary node moving into its wall stops (both components
    /// zeroed); diffmpm_benchmark: only the normal component is zeroed.
    pub sticky: bool,
    /// diffmpm: the actuation stress is built (its strength `act_strength`).
    pub actuated: bool,
    pub act_strength: f64,
    /// The grid as a sparse field (pointer of dense blocks), cleared by
    /// deactivating it and updated over its active cells; None: dense.
    pub sparse_grid: Option<SparseGrid>,
}

/// A sparse MPM grid: `pb.root().pointer([n / block; 2]).capacity(capacity).dense([block; 2])`,
/// holding the three grid fields and their adjoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparseGrid {
    /// Cells per block side.
    pub block: usize,
    /// Blocks in the pool.
    pub capacity: usize,
}

impl Mpm {
    /// The constants with `n_grid` cells per side (dx = 1 / n_grid, inv_dx = 1 / dx).
    pub fn with_grid(n_grid: usize) -> Mpm {
        let dx = 1.0 / n_grid as f64;
        Mpm {
            n_particles: 0,
            n_grid,
            dx,
            inv_dx: 1.0 / dx,
            dt: 0.0,
            p_vol: 1.0,
            p_mass: 1.0,
            e: 0.0,
            gravity: 0.0,
            bound: 3,
            sticky: false,
            actuated: false,
            act_strength: 0.0,
            sparse_grid: None,
        }
    }
}

// --- the MPM kernels, shared by diffmpm and diffmpm_benchmark ---
#[kernel]
fn clear_grid<T: Scalar>(grid_v_in: &GradField<[T; 2], 2>, grid_m_in: &GradField<T, 2>, m: &Mpm) {
    for i in 0..m.n_grid {
        for j in 0..m.n_grid {
            grid_v_in[(i, j)] = Vec2::splat(0.0, T::TY);
            grid_m_in[(i, j)] = 0.0;
        }
    }
}

/// The sparse grid's clear: every active cell deactivated (its block goes
/// back to the pool after the launch, zeroed, adjoints included).
#[kernel]
fn clear_active_grid<T: Scalar>(grid_m_in: &GradField<T, 2>) {
    for (i, j) in grid_m_in.active() {
        deactivate(grid_m_in, (i, j));
    }
}

/// The cell below-left of a particle's stencil (Taichi's
/// `ti.cast(x * inv_dx - 0.5, ti.i32)`, truncating), the particle's offset
/// from it in cells, and the quadratic B-spline weights of the 3 nodes per axis.
#[func]
fn stencil<T: Scalar>(xp: Vec2, inv_dx: f64) -> (Expr, Expr, Vec2, [Vec2; 3]) {
    let g = xp * inv_dx - 0.5;
    let (b0, b1) = (g.at(0) as i32, g.at(1) as i32);
    let fx = xp * inv_dx - Vector([b0 as T, b1 as T]);
    let (a, b, c) = (1.5 - fx, fx - 1.0, fx - 0.5);
    let w = [0.5 * (a * a), 0.75 - b * b, 0.5 * (c * c)];
    (b0, b1, fx, w)
}

#[kernel]
#[allow(clippy::too_many_arguments)]
fn p2g<T: Scalar>(
    x: &Particles<T>,
    v: &Particles<T>,
    c: &ParticleMats<T>,
    f: &ParticleMats<T>,
    actuation: &GradField<T, 2>,
    actuator_id: &Field<i32, 1>,
    grid_v_in: &GradField<[T; 2], 2>,
    grid_m_in: &GradField<T, 2>,
    m: &Mpm,
    s: usize,
) {
    for p in 0..m.n_particles {
        let (b0, b1, fx, w) = stencil::<T>(x[(s, p)], m.inv_dx);
        let cp = c[(s, p)];
        let new_f = (Mat2::identity(T::TY) + cp * m.dt) * f[(s, p)];
        f[(s + 1usize, p)] = new_f;
        let j = new_f.determinant();
        let (r, _sym) = new_f.polar();
        // 2 mu (F - R) F^T + diag(lambda (J - 1) J), the original's order.
        let d = m.e * (j - 1.0) * j;
        let mut cauchy = ((new_f - r) * (2.0 * m.e)) * new_f.transpose() + Mat2::diag(Vector([d, d]));
        if m.actuated {
            // F A F^T with A = [[0, 0], [0, act]]: column 1 of F times act times row 1 of F^T.
            let id = actuator_id[(p,)];
            let a = actuation[(s, max(id, 0) as usize)] * m.act_strength;
            let act = if id == -1 { 0.0 } else { a };
            let f1 = Vector([new_f.at(0, 1), new_f.at(1, 1)]);
            cauchy = cauchy + (f1 * act).outer(&f1);
        }
        let stress = cauchy * (-(m.dt * m.p_vol * 4.0 * m.inv_dx * m.inv_dx));
        let affine = stress + cp * m.p_mass;
        let momentum = v[(s, p)] * m.p_mass;
        for i in unroll(0..3) {
            for j in unroll(0..3) {
                let dpos = Vector([(i as f64 - fx.at(0)) * m.dx, (j as f64 - fx.at(1)) * m.dx]);
                let weight = w[i].at(0) * w[j].at(1);
                let (n0, n1) = ((b0 + i as i32) as usize, (b1 + j as i32) as usize);
                grid_v_in[(n0, n1)] += (momentum + affine * dpos) * weight;
                grid_m_in[(n0, n1)] += weight * m.p_mass;
            }
        }
    }
}

#[kernel]
fn grid_op<T: Scalar>(grid_v_in: &GradField<[T; 2], 2>, grid_m_in: &GradField<T, 2>, grid_v_out: &GradField<[T; 2], 2>, m: &Mpm) {
    for i in 0..m.n_grid {
        for j in 0..m.n_grid {
            grid_node::<T>(i, j, grid_v_in, grid_m_in, grid_v_out, m);
        }
    }
}

/// grid_op over the active cells of a sparse grid (the others hold no mass,
/// and no particle reads them).
#[kernel]
fn grid_op_active<T: Scalar>(grid_v_in: &GradField<[T; 2], 2>, grid_m_in: &GradField<T, 2>, grid_v_out: &GradField<[T; 2], 2>, m: &Mpm) {
    for (i, j) in grid_m_in.active() {
        grid_node::<T>(i, j, grid_v_in, grid_m_in, grid_v_out, m);
    }
}

/// One grid node: normalize the momentum, gravity, the walls.
#[func]
fn grid_node<T: Scalar>(i: Expr, j: Expr, grid_v_in: &GradField<[T; 2], 2>, grid_m_in: &GradField<T, 2>, grid_v_out: &GradField<[T; 2], 2>, m: &Mpm) {
    let inv_m = 1.0 / (grid_m_in[(i, j)] + 1e-10);
    let mut v_out = grid_v_in[(i, j)] * inv_m;
    v_out[1] = v_out[1] - m.dt * m.gravity;
    let zero = Vec2::splat(0.0, T::TY);
    let (low, high) = (m.bound, m.n_grid - m.bound);
    if m.sticky {
        if i < low && v_out[0] < 0.0 {
            v_out = zero;
        }
        if i > high && v_out[0] > 0.0 {
            v_out = zero;
        }
        if j < low && v_out[1] < 0.0 {
            v_out = zero;
        }
        if j > high && v_out[1] > 0.0 {
            v_out = zero;
        }
    } else {
        if i < low && v_out[0] < 0.0 {
            v_out[0] = 0.0;
        }
        if i > high && v_out[0] > 0.0 {
            v_out[0] = 0.0;
        }
        if j < low && v_out[1] < 0.0 {
            v_out[1] = 0.0;
        }
        if j > high && v_out[1] > 0.0 {
            v_out[1] = 0.0;
        }
    }
    grid_v_out[(i, j)] = v_out;
}

#[kernel]
fn g2p<T: Scalar>(x: &Particles<T>, v: &Particles<T>, c: &ParticleMats<T>, grid_v_out: &GradField<[T; 2], 2>, m: &Mpm, s: usize) {
    for p in 0..m.n_particles {
        let xp = x[(s, p)];
        let (b0, b1, fx, w) = stencil::<T>(xp, m.inv_dx);
        let mut new_v = Vec2::splat(0.0, T::TY);
        let mut new_c = Mat2::zero(T::TY);
        for i in unroll(0..3) {
            for j in unroll(0..3) {
                let dpos = Vector([i as f64 - fx.at(0), j as f64 - fx.at(1)]);
                let g_v = grid_v_out[((b0 + i as i32) as usize, (b1 + j as i32) as usize)];
                let weight = w[i].at(0) * w[j].at(1);
                new_v = new_v + g_v * weight;
                new_c = new_c + g_v.outer(&dpos) * (4.0 * weight) * m.inv_dx;
            }
        }
        v[(s + 1usize, p)] = new_v;
        x[(s + 1usize, p)] = xp + new_v * m.dt;
        c[(s + 1usize, p)] = new_c;
    }
}

#[kernel]
fn compute_x_avg<T: Scalar>(x: &Particles<T>, x_avg: &GradField<[T; 2], 0>, m: &Mpm, t: usize) {
    for i in 0..m.n_particles {
        x_avg[()] += x[(t, i)] * (1.0 / m.n_particles as f64);
    }
}
// --- end of the MPM kernels ---

/// The robot's actuators (the original's `n_actuators`).
pub const N_ACTUATORS: usize = 4;
const ACTUATION_OMEGA: usize = 20;

/// Runs or records launches: the same host loop drives a program and a
/// recording.
pub trait Launch {
    fn run<A: KernelArgs>(&mut self, kernel: &Kernel<A>, args: A) -> Result<(), Error>;
}

/// Launches on a program, unrecorded.
pub struct Direct<'p, B: Backend>(pub &'p mut B);

impl<B: Backend> Launch for Direct<'_, B> {
    fn run<A: KernelArgs>(&mut self, kernel: &Kernel<A>, args: A) -> Result<(), Error> {
        kernel.launch(self.0, args)
    }
}

impl<B: Backend> Launch for Recording<'_, B> {
    fn run<A: KernelArgs>(&mut self, kernel: &Kernel<A>, args: A) -> Result<(), Error> {
        self.launch(kernel, args)
    }
}

/// The checkpoint policy of MPM recordings: `prefix` launches, then
/// `substeps` substeps of `per_substep` launches each (the first clears the
/// grid, the last, g2p, only reads it), then `tail` launches (the loss),
/// every launch its own step (no `end_step` marks). It reverses the tail,
/// then each substep last first: the substep's launches but its last are
/// re-run forward (advances: the grid of that substep, cleared and rebuilt
/// from the particles of its step), then its launches are reversed last
/// first (each re-run, then its gradient). The last substep needs no
/// advance: the forward pass ended with its grid. Nothing is restored:
/// particle state is indexed by step and never overwritten, so only slot
/// 0, the initial state, is held (empty: the recording keeps no state); per
/// substep `per_substep - 1` launches advance and `per_substep` are re-run.
///
/// The Tape's own schedules need a slot per saved state, and a saved state
/// is every field a launch writes, here the whole 1024-step particle
/// history: store-all would hold a copy of it per launch (each launch is a
/// step: 5117 for 1024 steps), binomial with a budget of a few copies would
/// re-run the forward pass several times over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecomputeGrid {
    pub prefix: usize,
    pub per_substep: usize,
    pub substeps: usize,
    pub tail: usize,
}

impl RecomputeGrid {
    /// The launches a recording must hold for this policy.
    pub fn launches(&self) -> usize {
        self.prefix + self.per_substep * self.substeps + self.tail
    }
}

impl Policy for RecomputeGrid {
    fn name(&self) -> String {
        format!("recompute-grid({} substeps of {} launches)", self.substeps, self.per_substep)
    }

    fn schedule(&self, steps: usize) -> Schedule {
        assert_eq!(steps, self.launches(), "RecomputeGrid: the recording's launches do not match {self:?}");
        let mut actions: Vec<Action> = (steps - self.tail..steps).rev().map(Action::Reverse).collect();
        for s in (0..self.substeps).rev() {
            let first = self.prefix + s * self.per_substep;
            if s + 1 < self.substeps {
                actions.extend((first..first + self.per_substep - 1).map(Action::Advance));
            }
            actions.extend((first..first + self.per_substep).rev().map(Action::Reverse));
        }
        actions.extend((0..self.prefix).rev().map(Action::Reverse));
        Schedule { actions }
    }
}

/// The particles and the grid of an MPM scene, with the shared kernels.
pub struct Solver<T: Real> {
    pub mpm: Mpm,
    /// Steps the particle history holds.
    pub max_steps: usize,
    pub x: Particles<T>,
    pub v: Particles<T>,
    pub c: ParticleMats<T>,
    pub f: ParticleMats<T>,
    /// The actuator of each particle (-1: none), read by p2g when actuated.
    pub actuator_id: Field<i32, 1>,
    pub grid_v_in: GradField<[T; 2], 2>,
    pub grid_m_in: GradField<T, 2>,
    pub grid_v_out: GradField<[T; 2], 2>,
    pub x_avg: GradField<[T; 2], 0>,
    pub clear_grid: Kernel<()>,
    pub p2g: Kernel<usize>,
    pub grid_op: Kernel<()>,
    pub g2p: Kernel<usize>,
    pub compute_x_avg: Kernel<usize>,
}

impl<T: Real> Solver<T> {
    /// The fields (`max_steps` steps of `mpm.n_particles` particles) and
    /// kernels; p2g reads `actuation[t, actuator_id[i]]` when
    /// `mpm.act_strength` is set.
    pub fn new(pb: &mut ProgramBuilder, mpm: Mpm, max_steps: usize, actuation: &GradField<T, 2>, actuator_id: &Field<i32, 1>) -> Result<Solver<T>, Error> {
        let (n, g) = (mpm.n_particles, mpm.n_grid);
        let (x, v) = (pb.field_with_grad("x", [max_steps, n]), pb.field_with_grad("v", [max_steps, n]));
        let (c, f) = (pb.field_with_grad("C", [max_steps, n]), pb.field_with_grad("F", [max_steps, n]));
        let (grid_v_in, grid_m_in, grid_v_out) = (pb.field_with_grad("grid_v_in", [g, g]), pb.field_with_grad("grid_m_in", [g, g]), pb.field_with_grad("grid_v_out", [g, g]));
        let x_avg = pb.field_with_grad("x_avg", []);
        let (clear, update) = match mpm.sparse_grid {
            None => (pb.kernel(clear_grid(&grid_v_in, &grid_m_in, &mpm))?, pb.kernel(grid_op(&grid_v_in, &grid_m_in, &grid_v_out, &mpm))?),
            Some(sg) => {
                pb.root().pointer([g / sg.block, g / sg.block]).capacity(sg.capacity).dense([sg.block, sg.block]).place((&grid_v_in, &grid_m_in, &grid_v_out));
                (pb.kernel(clear_active_grid(&grid_m_in))?, pb.kernel(grid_op_active(&grid_v_in, &grid_m_in, &grid_v_out, &mpm))?)
            }
        };
        Ok(Solver {
            clear_grid: clear,
            p2g: pb.kernel(p2g(&x, &v, &c, &f, actuation, actuator_id, &grid_v_in, &grid_m_in, &mpm))?,
            grid_op: update,
            g2p: pb.kernel(g2p(&x, &v, &c, &grid_v_out, &mpm))?,
            compute_x_avg: pb.kernel(compute_x_avg(&x, &x_avg, &mpm))?,
            mpm,
            max_steps,
            x,
            v,
            c,
            f,
            actuator_id: actuator_id.clone(),
            grid_v_in,
            grid_m_in,
            grid_v_out,
            x_avg,
        })
    }

    /// Step 0: the particles at `positions`, at rest, undeformed (F = I, C = 0).
    pub fn place<B: Backend>(&self, p: &mut B, positions: &[[f64; 2]]) -> Result<(), Error> {
        for fld in [&self.x, &self.v] {
            fld.zero(p)?;
        }
        for fld in [&self.c, &self.f] {
            fld.zero(p)?;
        }
        let one = [[T::of(1.0), T::of(0.0)], [T::of(0.0), T::of(1.0)]];
        for (i, &[px, py]) in positions.iter().enumerate() {
            self.x.set(p, [0, i], [T::of(px), T::of(py)])?;
            self.f.set(p, [0, i], one)?;
        }
        Ok(())
    }

    /// One substep from step `s`: clear_grid, `actuate(s)` if given, p2g,
    /// grid_op, g2p.
    pub fn substep<L: Launch>(&self, l: &mut L, s: usize, actuate: Option<&Kernel<usize>>) -> Result<(), Error> {
        l.run(&self.clear_grid, ())?;
        if let Some(k) = actuate {
            l.run(k, s)?;
        }
        l.run(&self.p2g, s)?;
        l.run(&self.grid_op, ())?;
        l.run(&self.g2p, s)
    }

    /// The particle positions at each step of `steps`.
    pub fn positions<B: Backend>(&self, p: &B, steps: &[usize]) -> Result<Vec<Vec<(f64, f64)>>, Error> {
        let n = self.mpm.n_particles;
        let all = self.x.to_vec(p)?;
        Ok(steps.iter().map(|&t| all[t * n..(t + 1) * n].iter().map(|[a, b]| (Into::<f64>::into(*a), Into::<f64>::into(*b))).collect()).collect())
    }
}

/// What the Tape planned and ran for a backward pass that recomputed the
/// grid, beside what its store-all schedule would have held.
#[derive(Clone, Debug)]
pub struct TapePlans {
    pub predicted: Plan,
    pub ran: Plan,
    pub store_all: Plan,
}

/// A loss with its forward and backward milliseconds and, when the grid
/// was recomputed, the Tape's plans.
#[derive(Clone, Debug)]
pub struct Gradient {
    pub loss: f64,
    pub ms: [f64; 2],
    pub plan: Option<TapePlans>,
}

/// The losses of an optimization and the Tape's plans of its first iteration.
pub type Trained = (Vec<f64>, Option<TapePlans>);

/// Records `simulate` (which returns the checkpoint policy of what it
/// recorded), reads the loss, and runs the backward pass with that policy.
/// The recording keeps no state (`record_without_state`): the policy
/// restores none, and the Tape prices store-all at the state a recording
/// that kept it would copy into each slot.
pub fn record_and_backward<B: Backend, T: Real>(
    p: &mut B,
    loss: &GradField<T, 0>,
    simulate: impl FnOnce(&mut Recording<'_, B>) -> Result<RecomputeGrid, Error>,
) -> Result<Gradient, Error> {
    let mut clock = Stopwatch::start();
    let mut rec = p.record_without_state();
    let policy = simulate(&mut rec)?;
    if rec.len() != policy.launches() {
        return Err(Error::Internal(format!("{} launches recorded, {policy:?} expects {}", rec.len(), policy.launches())));
    }
    let value: f64 = loss.get(rec.program(), [])?.into();
    let (predicted, store_all) = (rec.plan(&policy), rec.plan(&StoreAll));
    let fwd_ms = clock.lap();
    let ran = rec.backward_with_policy(loss, &policy)?;
    Ok(Gradient { loss: value, ms: [fwd_ms, clock.lap()], plan: ran.map(|ran| TapePlans { predicted, ran, store_all }) })
}

/// The robot of the original's `robot()`: particle positions and actuator
/// ids (-1: none), rectangle by rectangle.
pub fn robot_scene(n_grid: usize) -> (Vec<[f64; 2]>, Vec<i32>) {
    let dx = 1.0 / n_grid as f64;
    let (ox, oy) = (0.1, 0.03);
    let rects: [(f64, f64, f64, f64, i32); 5] =
        [(0.0, 0.1, 0.3, 0.1, -1), (0.0, 0.0, 0.05, 0.1, 0), (0.05, 0.0, 0.05, 0.1, 1), (0.2, 0.0, 0.05, 0.1, 2), (0.25, 0.0, 0.05, 0.1, 3)];
    let (mut x, mut ids) = (Vec::new(), Vec::new());
    for (rx, ry, w, h, act) in rects {
        let (w_count, h_count) = ((w / dx) as usize * 2, (h / dx) as usize * 2);
        let (real_dx, real_dy) = (w / w_count as f64, h / h_count as f64);
        for i in 0..w_count {
            for j in 0..h_count {
                x.push([rx + (i as f64 + 0.5) * real_dx + ox, ry + (j as f64 + 0.5) * real_dy + oy]);
                ids.push(act);
            }
        }
    }
    (x, ids)
}

pub const N_GRID: usize = 128;
pub const STEPS: usize = 1024;

/// The robot's constants (the original's globals).
pub fn robot_mpm(n_particles: usize) -> Mpm {
    Mpm { n_particles, dt: 1e-3, e: 10.0, gravity: 3.8, sticky: true, actuated: true, act_strength: 4.0, ..Mpm::with_grid(N_GRID) }
}

/// diffmpm: the robot, its controller and the loss.
pub type DiffMpm<T> = Robot<T, Solver<T>, 2>;

/// The original's gradient descent: learning rate 0.1, 100 iterations.
pub const OPTIMIZER: Optimizer = Optimizer { learning_rate: 0.1, iterations: 100 };

impl<T: Real> Robot<T, Solver<T>, 2> {
    /// The robot's fields and kernels for runs of `steps` steps.
    pub fn new(pb: &mut ProgramBuilder, steps: usize) -> Result<DiffMpm<T>, Error> {
        DiffMpm::with_grid(pb, steps, None)
    }

    /// As [`DiffMpm::new`], the grid sparse when `grid` says so.
    pub fn with_grid(pb: &mut ProgramBuilder, steps: usize, grid: Option<SparseGrid>) -> Result<DiffMpm<T>, Error> {
        let scene = robot_scene(N_GRID);
        let mpm = Mpm { sparse_grid: grid, ..robot_mpm(scene.0.len()) };
        Robot::declare(pb, mpm, scene, OPTIMIZER, steps)
    }
}

/// The 2-D solver as the robot's: the scene is the particle positions and
/// their actuator ids ([`robot_scene`]).
impl<T: Real> MpmSolver<T, 2> for Solver<T> {
    type Mpm = Mpm;
    type Scene = (Vec<[f64; 2]>, Vec<i32>);
    const WEIGHT_SEED: u64 = 0x4d50_4d00_0000_0001;
    const LOSS: &'static str = "-(mean x at the last step)";

    fn controller(mpm: &Mpm) -> Controller {
        Controller { n_actuators: N_ACTUATORS, omega: ACTUATION_OMEGA, dt: mpm.dt }
    }

    fn declare(pb: &mut ProgramBuilder, mpm: Mpm, steps: usize, actuation: &GradField<T, 2>) -> Result<Solver<T>, Error> {
        let actuator_id = pb.field("actuator_id", [mpm.n_particles]);
        Solver::new(pb, mpm, steps, actuation, &actuator_id)
    }

    fn place_scene<B: Backend>(&self, p: &mut B, (positions, ids): &Self::Scene) -> Result<(), Error> {
        self.place(p, positions)?;
        self.actuator_id.copy_from(p, ids)
    }

    fn actuated_substep<L: Launch>(&self, l: &mut L, s: usize, actuate: &Kernel<usize>) -> Result<(), Error> {
        self.substep(l, s, Some(actuate))
    }

    fn x_avg(&self) -> &GradField<[T; 2], 0> {
        &self.x_avg
    }

    fn compute_x_avg(&self) -> &Kernel<usize> {
        &self.compute_x_avg
    }

    fn results<B: Backend>(&self, p: &B, steps: usize) -> Vec<(String, String)> {
        // Every allocation of the grid: its fields and adjoints, or the sparse tree's buffers.
        let grid_bytes: usize = p.field_infos().iter().filter(|f| f.name.starts_with("grid_") && f.sparse.is_none()).map(|f| f.bytes()).sum();
        let layout = if self.mpm.sparse_grid.is_some() { "sparse" } else { "dense" };
        vec![
            ("particles, steps".into(), format!("{}, {}", self.mpm.n_particles, steps)),
            (format!("grid memory ({layout})"), format!("{grid_bytes} bytes")),
        ]
    }

    /// Every few steps, the particles coloured by their actuation
    /// ([`actuation_colour`]; near-black: no actuator, or step 0).
    fn motion<B: Backend>(robot: &DiffMpm<T>, p: &B, title: &str) -> Result<plot::Animation, Error> {
        let act = robot.actuation.to_vec(p)?;
        let ids = &robot.scene.1;
        let picked = robot.frames();
        let mut frames = Vec::new();
        for (&t, x) in picked.iter().zip(robot.solver.positions(p, &picked)?) {
            let mut shapes = vec![plot::Shape::Segment { from: (0.05, 0.02), to: (0.95, 0.02), color: RGBColor(0, 0, 0), width: 3 }];
            for (k, center) in x.into_iter().enumerate() {
                let id = ids[k];
                let color = if id < 0 || t == 0 { RGBColor(0x11, 0x11, 0x11) } else { actuation_colour(act[(t - 1) * N_ACTUATORS + id as usize].into()) };
                shapes.push(plot::Shape::Circle { center, radius: 0.002, color });
            }
            frames.push(shapes);
        }
        Ok(plot::Animation { title: title.into(), x_range: (0.0, 1.0), y_range: (0.0, 0.5), frames })
    }
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut Rng) -> f64 {
    let u = 1.0 - rng.next_f64();
    let w = rng.next_f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * w).cos()
}

/// The `steps` setting: at least 2 (one substep) and at most `max`.
pub fn steps_setting(opts: &RunOptions, max: usize) -> Result<usize, RunError> {
    let steps: usize = opts.setting("steps")?;
    if !(2..=max).contains(&steps) {
        return Err(RunError::BadSetting { name: "steps".into(), value: steps.to_string(), expected: "a step count from 2 to 1024" });
    }
    Ok(steps)
}

impl Simulation for DiffMpm<f32> {
    const SETTINGS: &'static [Setting] = &[
        Setting { name: "steps", default: "1024", help: "time steps of a run (the original's 1024; fewer for short checks)" },
        Setting { name: "grid", default: "dense", help: "the grid's layout: dense, or sparse (a pointer of 8x8 dense blocks, a pool of 64 of its 256 blocks)" },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<DiffMpm<f32>, RunError> {
        let grid: String = opts.setting("grid")?;
        let grid = match grid.as_str() {
            "dense" => None,
            "sparse" => Some(SparseGrid { block: 8, capacity: 64 }),
            _ => return Err(RunError::BadSetting { name: "grid".into(), value: grid, expected: "dense or sparse" }),
        };
        Ok(DiffMpm::with_grid(pb, steps_setting(opts, STEPS)?, grid)?)
    }

    fn params(&self) -> Vec<&str> {
        Robot::params(self)
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        Ok(Robot::init(self, p, opts.seed)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        self.run_example(p, opts, report, "diffmpm")
    }
}

/// The Tape's plan as results lines (`--verbose`).
pub fn push_plan(out: &mut Outcome, plan: Option<TapePlans>) {
    match plan {
        Some(TapePlans { predicted, ran, store_all }) => {
            out.results.push(("tape plan (predicted)".into(), predicted.to_string()));
            out.results.push(("tape plan (ran)".into(), ran.to_string()));
            out.results.push(("tape peak snapshot bytes".into(), predicted.predicted_peak_bytes.to_string()));
            out.results.push(("store-all would hold".into(), format!("{} snapshots, {} bytes", store_all.snapshots, store_all.predicted_peak_bytes)));
        }
        None => out.results.push(("tape plan".into(), "none (no iteration, or one substep: nothing overwritten)".into())),
    }
}
