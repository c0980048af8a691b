//! Paper appendix F, Fig. 12: friction and contact as a source of
//! discontinuity. One box (half size 0.1) starts at (0.7, 0.5) moving at
//! (-1, -2) with a slightly different initial rotation each run; whichever
//! bottom corner (A or B) reaches the ground first takes the normal and
//! friction impulses, so the final position jumps where the first corner
//! changes. The sweep and the scene are those of DiffTaichi's
//! `examples/misc/rigid_body_discountinuity.py`: 2048 steps of dt = 2e-4, no
//! gravity, no damping, elasticity 0.3, penalty 1e4 added to the normal
//! impulse of a corner below the ground, friction 0 and 1, initial rotations
//! (k + 0.5) x 0.001 for k = -20..19 (40 runs; `--iters N` takes N runs over
//! the same interval).
//!
//! The kernels are `rigid_body`'s (`collide`, `advance_no_toi`,
//! `initialize_properties`), built with that program's constants and its
//! contact (`Physics::predictive = false`: a corner collides where it is, with
//! no time of impact), one world per friction coefficient.
//!
//! Departures: the original plots its loss `x[t, head_id][0]` with
//! `head_id = 3` of a one-box scene (an index past the box; the paper's caption
//! says "final y coordinate"); here both coordinates of the box's center at the
//! last step (2047) are plotted against the initial rotation (in degrees), and
//! the jump is located: the largest change between neighbouring runs, then
//! bisection between them.

use crate::report::{Outcome, Reporter};
use crate::rigid_body::{Object, Physics, World};
use crate::{RunError, RunOptions, Simulation, plot};
use diffsim::prelude::*;

const STEPS: usize = 2048;
const FRICTIONS: [f64; 2] = [0.0, 1.0];
const RUNS: usize = 40;
const START_X: [f64; 2] = [0.7, 0.5];
const START_V: [f32; 2] = [-1.0, -2.0];
const HALFSIZE: [f64; 2] = [0.1, 0.1];
/// rigid_body_discountinuity.py's constants.
pub const PHYSICS: Physics = Physics { dt: 2e-4, gravity: 0.0, damping: 0.0, elasticity: 0.3, friction: 0.0, penalty: 1e4, predictive: false };

/// One box world per friction coefficient.
pub struct Discontinuity {
    pub worlds: Vec<(f64, World<f32>)>,
}

impl Discontinuity {
    pub fn new(pb: &mut ProgramBuilder) -> Result<Discontinuity, Error> {
        let worlds = FRICTIONS
            .iter()
            .enumerate()
            .map(|(k, &friction)| Ok((friction, World::named(pb, &format!("friction{k}_"), 1, STEPS, Physics { friction, ..PHYSICS })?)))
            .collect::<Result<_, Error>>()?;
        Ok(Discontinuity { worlds })
    }

    /// The box's center at the last step, dropped with initial rotation `rotation`.
    pub fn final_position<B: Backend>(&self, p: &mut B, world: &World<f32>, rotation: f64) -> Result<[f64; 2], Error> {
        world.place(p, &[Object { x: START_X, halfsize: HALFSIZE, rotation }])?;
        world.bodies.v.set(p, [0, 0], START_V)?;
        world.clear_states(p)?;
        for t in 1..STEPS {
            world.collide.launch(p, t - 1)?;
            world.advance_no_toi.launch(p, t)?;
        }
        Ok(world.bodies.x.get(p, [STEPS - 1, 0])?.map(f64::from))
    }
}

/// The initial rotations of `runs` runs over the original's interval.
pub fn rotations(runs: usize) -> Vec<f64> {
    let width = 0.001 * RUNS as f64;
    (0..runs).map(|k| (k as f64 + 0.5) * width / runs as f64 - width / 2.0).collect()
}

impl Simulation for Discontinuity {
    fn declare(pb: &mut ProgramBuilder, _: &RunOptions) -> Result<Discontinuity, RunError> {
        Ok(Discontinuity::new(pb)?)
    }

    fn init<B: Backend>(&self, _: &mut B, _: &RunOptions) -> Result<(), RunError> {
        Ok(())
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, _: &mut Reporter) -> Result<Outcome, RunError> {
        let rots = rotations(opts.iters.unwrap_or(RUNS));
        let mut out = Outcome::default();
        let mut finals = Vec::new();
        for (friction, world) in &self.worlds {
            let xs = rots.iter().map(|&r| self.final_position(p, world, r)).collect::<Result<Vec<_>, Error>>()?;
            // The largest change between neighbouring runs, then bisection on it.
            let jump = |a: &[f64; 2], b: &[f64; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
            if let Some(k) = (1..xs.len()).max_by(|&i, &j| jump(&xs[i - 1], &xs[i]).total_cmp(&jump(&xs[j - 1], &xs[j]))) {
                let (mut lo, mut hi, mut at_lo, mut at_hi) = (rots[k - 1], rots[k], xs[k - 1], xs[k]);
                for _ in 0..24 {
                    let mid = 0.5 * (lo + hi);
                    let at = self.final_position(p, world, mid)?;
                    if jump(&at_lo, &at) >= jump(&at, &at_hi) {
                        (hi, at_hi) = (mid, at);
                    } else {
                        (lo, at_lo) = (mid, at);
                    }
                }
                out.results.push((
                    format!("friction {friction}: largest jump between runs"),
                    format!("{:.4} at rotation {:+.4e}..{:+.4e} rad ({:+.5} deg)", jump(&xs[k - 1], &xs[k]), rots[k - 1], rots[k], rots[k].to_degrees()),
                ));
                out.results.push((
                    format!("friction {friction}: the jump, bisected"),
                    format!(
                        "at rotation {:+.6e} rad: final center ({:.4}, {:.4}) -> ({:.4}, {:.4}) across {:.1e} rad",
                        0.5 * (lo + hi),
                        at_lo[0],
                        at_lo[1],
                        at_hi[0],
                        at_hi[1],
                        hi - lo
                    ),
                ));
            }
            finals.push((*friction, xs));
        }
        out.final_loss = finals.last().and_then(|(_, xs)| xs.last()).map_or(0.0, |x| x[0]);
        if opts.pictures {
            let degrees: Vec<f64> = rots.iter().map(|r| r.to_degrees()).collect();
            for (axis, name) in [(0, "x"), (1, "y")] {
                let series = finals
                    .iter()
                    .zip(plot::COLORS)
                    .map(|((friction, xs), color)| plot::Series::new(format!("friction {friction}"), degrees.clone(), xs.iter().map(|x| x[axis]).collect(), color))
                    .collect();
                let chart = plot::Chart {
                    title: format!("Fig. 12: final {name} of the box against its initial rotation"),
                    x_label: "initial rotation (degrees)".into(),
                    y_label: format!("final {name} of the center"),
                    series,
                    scale: plot::Scale::Linear,
                };
                let path = opts.out.join(format!("final_{name}.png"));
                plot::draw_chart(&path, &chart)?;
                out.files.push(path);
            }
        }
        Ok(out)
    }
}
