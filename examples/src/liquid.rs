//! DiffTaichi's `liquid.py` (paper Fig. 3 right): the 3-D quadruped of
//! [`crate::diffmpm3d`] two-way coupled with a liquid, in one MLS-MPM
//! simulation: a slab of liquid falls onto the robot while it learns to
//! walk in +x. The kernels are diffmpm3d's, built with
//! [`crate::diffmpm3d::Mpm3::mixed`] on: each particle's material comes
//! from `particle_type` (0 liquid, 1 solid).
//!
//! Scene facts, from the original: `robot()` with block_size 0.08 (legs of
//! blocks 0.04 x 0.028 x 0.08, body blocks 0.08 x 0.056 x 0.08; density 3:
//! 15150 solid particles, 16 actuators), offset (0.1, 0.05, 0.3), and a
//! liquid block 0.2 x 0.05 x 0.2 at (0.1, 0.15, 0.1) (plus the offset) of
//! 38 x 9 x 38 = 12996 particles at uniformly random points: 28146
//! particles. The constants are diffmpm3d's (n_grid 64, dt 2e-3, E = 10,
//! gravity 10, 512 steps, actuation 5 x tanh(sine controller) at omega 40).
//! Per particle in p2g: F' = (I + dt C) F, J = det F'; the solid (mass 1)
//! keeps F' and has the neo-Hookean stress mu F' F'^T + (lambda ln J - mu) I;
//! the liquid (mass 4) stores F = diag(sqrt J, sqrt J, 1) and has the
//! pressure (J - 1) E I; both add the actuation stress F diag(0, 0, 5 act)
//! F^T (zero for the liquid: no actuator). The loss is -(mean x of the
//! solid particles at step 511). Optimized: `weights` [16, 4] (initially
//! N(0, 0.01^2)) and `bias` [16]; gradient descent with learning rate 10,
//! 501 iterations (the original's loop).
//!
//! The grid is recomputed in the backward pass through the Tape's
//! checkpointing, as in diffmpm3d; `--verbose` prints the plan. Settings:
//! `steps` and `density` as diffmpm3d's (density 1 for tests: 817
//! particles, 385 solid).
//!
//! Departures: the original places the liquid with Python's unseeded global
//! `random.random()` and draws the weights with numpy's; here the liquid's
//! points are Python's `random.random()` sequence after `random.seed(seed)`
//! (an MT19937 port, [`crate::diffmpm3d::PyRandom`], so a Python run seeded
//! alike places them identically) and the weights come from `--seed` as in
//! diffmpm3d (`--params` loads the original's `weights`, `bias`). The
//! original's dumps every 50 iterations are off there (`iter % 50 == -1`);
//! with pictures on, the last forward pass is drawn here.
//!
//! liquid.py does not run under Taichi 1.7 as it is: its loop calls
//! `ti.clear_all_gradients()`, which Taichi 1.x moved to
//! `ti.ad.clear_all_gradients()` (AttributeError at the first iteration).
//! The port check used a /tmp copy with that one call renamed, `random.seed(0)`
//! and `np.random.seed(0)` before the scene, `steps` reduced and the weights
//! written to an npz. From the same weights (`--params`) and the same
//! liquid points (seed 0), 128 steps, 5 iterations: the losses agree to
//! all 7 digits printed here (-0.2201039, -0.2203637, -0.2206151,
//! -0.2208592, -0.2210969 on both sides).
//!
//! Speed, one pinned core, alternating with the Taichi copy, 128 steps on
//! both sides: 3162 ms an iteration (657 forward, 2494 backward) against
//! Taichi's 24781 (7.8x), and 4846 against 16091 (3.3x) in a second round
//! (a loaded machine: Taichi's iterations ranged 14.6 to 33.6 s).

use crate::diffmpm3d::{PyRandom, Robot3, SETTINGS, Scene3, density_setting, steps_setting};
use crate::mpm_robot::Optimizer;
use crate::report::{Outcome, Reporter};
use crate::{RunError, RunOptions, Setting, Simulation};
use diffsim::prelude::*;

pub const OPTIMIZER: Optimizer = Optimizer { learning_rate: 10.0, iterations: 501 };

/// liquid.py's scene: the quadruped with block size 0.08, then the liquid
/// block, its points drawn as after Python's `random.seed(seed)`.
pub fn liquid_scene(density: usize, seed: u64) -> Scene3 {
    let mut scene = Scene3::new(density);
    scene.quadruped(0.08);
    let mut rng = PyRandom::new(seed);
    scene.add_rect(0.1, 0.15, 0.1, 0.2, 0.05, 0.2, -1, Some(&mut rng));
    scene
}

/// liquid: the robot and the liquid, learning rate 10, 501 iterations.
pub struct Liquid(pub Robot3<f32>);

impl Simulation for Liquid {
    const SETTINGS: &'static [Setting] = SETTINGS;

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<Liquid, RunError> {
        let (steps, density) = (steps_setting(opts)?, density_setting(opts)?);
        Ok(Liquid(Robot3::new(pb, liquid_scene(density, opts.seed), OPTIMIZER, steps)?))
    }

    fn params(&self) -> Vec<&str> {
        self.0.params()
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        Ok(self.0.init(p, opts.seed)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        self.0.run_example(p, opts, report, "liquid")
    }
}
