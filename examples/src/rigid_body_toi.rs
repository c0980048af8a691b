//! Paper sec. 4, Fig. 8: a ball falling at unit speed onto a frictionless
//! ground, bouncing elastically, no gravity, 204 steps of dt = 0.002. Starting
//! lower means bouncing earlier and ending higher, so d(final y)/d(initial y)
//! is -1. The naive integrator (collisions only at multiples of dt) gets +1;
//! splitting the step at the time of impact gets -1. The study sweeps the
//! initial height and plots the final height for both integrators.
//!
//! With `--check-gradients` each integrator's gradient at height 0.2005 is
//! diagnosed (`Recording::diagnose`): the naive one reports the ground
//! contact switching one step earlier a fraction of dt above, with a jump
//! of the final height the gradient misses; time of impact reports none.

use crate::report::{Outcome, Reporter};
use crate::{RunError, RunOptions, Simulation, plot};
use diffsim::prelude::*;
use diffsim::{DiagnoseOptions, GradientReport, along};

pub const STEPS: usize = 204;
const DT: f64 = 0.002;
/// The height `--check-gradients` diagnoses at: between two heights where
/// the naive integrator's contact moves by a step (0.2 is one of them).
pub const DIAGNOSED_HEIGHT: f64 = 0.2005;

/// Collision detected at multiples of dt; the whole step uses the new velocity.
#[kernel]
fn advance_naive(y: &ScalarField<f64, 1>, vy: &ScalarField<f64, 1>, t: usize) {
    let (y0, v0) = (y[(t - 1,)], vy[(t - 1,)]);
    let nv = select(y0 + DT * v0 < 0.0 && v0 < 0.0, -v0, v0);
    y[(t,)] = y0 + DT * nv;
    vy[(t,)] = nv;
}

/// The step is split at the time of impact toi = -y / v.
#[kernel]
fn advance_toi(y: &ScalarField<f64, 1>, vy: &ScalarField<f64, 1>, t: usize) {
    let (y0, v0) = (y[(t - 1,)], vy[(t - 1,)]);
    let mut ny = y0 + DT * v0;
    let mut nv = v0;
    if ny < 0.0 && v0 < 0.0 {
        let toi = -y0 / v0;
        nv = -v0;
        ny = y0 + toi * v0 + (DT - toi) * nv;
    }
    y[(t,)] = ny;
    vy[(t,)] = nv;
}

/// The loss of the diagnosis: the final height.
#[kernel]
fn final_height(y: &ScalarField<f64, 1>, loss: &ScalarField<f64, 0>) {
    for _i in 0..1usize {
        loss[()] = y[(STEPS,)];
    }
}

/// The ball's fields and both integrators.
pub struct Ball {
    y: GradField<f64, 1>,
    vy: GradField<f64, 1>,
    loss: GradField<f64, 0>,
    pub naive: Kernel<usize>,
    pub toi: Kernel<usize>,
    final_height: Kernel<()>,
}

/// The program, built for gradient diagnostics when `diagnostics`.
pub fn program(diagnostics: bool) -> Result<(Program, Ball), Error> {
    let mut pb = ProgramBuilder::new();
    if diagnostics {
        pb.gradient_diagnostics();
    }
    let ball = Ball::new(&mut pb)?;
    Ok((pb.build()?, ball))
}

impl Ball {
    fn new(pb: &mut ProgramBuilder) -> Result<Ball, Error> {
        let (y, vy) = (pb.field_with_grad("y", [STEPS + 1]), pb.field_with_grad("vy", [STEPS + 1]));
        let loss = pb.field_with_grad("loss", []);
        Ok(Ball {
            naive: pb.kernel(advance_naive(&y, &vy))?,
            toi: pb.kernel(advance_toi(&y, &vy))?,
            final_height: pb.kernel(final_height(&y, &loss))?,
            y,
            vy,
            loss,
        })
    }

    fn start<B: Backend>(&self, p: &mut B, initial_height: f64) -> Result<(), Error> {
        for f in [&self.y, &self.vy] {
            f.zero(p)?;
        }
        self.y.set(p, [0], initial_height)?;
        self.vy.set(p, [0], -1.0)
    }

    /// The diagnosis of d(final height)/d(initial height) with integrator
    /// `advance` (a program built for diagnostics).
    pub fn diagnose<B: Backend>(&self, p: &mut B, advance: &Kernel<usize>, initial_height: f64) -> Result<GradientReport, Error> {
        self.start(p, initial_height)?;
        let mut rec = p.record();
        for t in 1..=STEPS {
            rec.launch(advance, t)?;
            rec.end_step();
        }
        rec.launch(&self.final_height, ())?;
        let mut up = vec![0.0; STEPS + 1];
        up[0] = 1.0;
        rec.diagnose(&self.loss, &[along(&self.y, up)], &DiagnoseOptions::default())
    }

    /// Final height and d(final height)/d(initial height) with integrator `advance`.
    pub fn simulate<B: Backend>(&self, p: &mut B, advance: &Kernel<usize>, initial_height: f64) -> Result<(f64, f64), Error> {
        self.start(p, initial_height)?;
        let mut rec = p.record_without_state();
        for t in 1..=STEPS {
            rec.launch(advance, t)?;
        }
        let final_y = self.y.get(rec.program(), [STEPS])?;
        rec.backward_from(&BackwardOptions::default(), |p| self.y.grad().set(p, [STEPS], 1.0))?;
        Ok((final_y, self.y.grad().get(p, [0])?))
    }
}

impl Simulation for Ball {
    fn declare(pb: &mut ProgramBuilder, _: &RunOptions) -> Result<Ball, RunError> {
        Ok(Ball::new(pb)?)
    }

    fn init<B: Backend>(&self, _: &mut B, _: &RunOptions) -> Result<(), RunError> {
        Ok(())
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, _: &mut Reporter) -> Result<Outcome, RunError> {
        let samples = opts.iters.unwrap_or(200);
        let heights: Vec<f64> = (0..samples).map(|k| 0.1 + 0.2 * k as f64 / samples.max(2) as f64).collect();
        let mut out = Outcome::default();
        let mut finals = Vec::new();
        for kernel in [&self.naive, &self.toi] {
            let ys = heights.iter().map(|h| Ok(self.simulate(p, kernel, *h)?.0)).collect::<Result<Vec<_>, Error>>()?;
            let (_, grad) = self.simulate(p, kernel, 0.2)?;
            out.results.push((format!("{}: d(final y)/d(initial y) at 0.2", kernel.name()), format!("{grad:+.6}")));
            if opts.check_gradients {
                let report = self.diagnose(p, kernel, DIAGNOSED_HEIGHT)?;
                out.results.push((format!("{}: gradient diagnosis at {DIAGNOSED_HEIGHT}", kernel.name()), format!("\n{report}")));
            }
            finals.push(ys);
        }
        if opts.pictures {
            let series = finals.iter().zip(["naive", "time of impact"]).zip(plot::COLORS).map(|((ys, label), color)| plot::Series::new(label, heights.clone(), ys.clone(), color));
            let chart = plot::Chart {
                title: "Fig. 8: final height against initial height".into(),
                x_label: "initial height".into(),
                y_label: "final height".into(),
                series: series.collect(),
                scale: plot::Scale::Linear,
            };
            let path = opts.out.join("final_height.png");
            plot::draw_chart(&path, &chart)?;
            out.files.push(path);
        }
        out.final_loss = finals[1].get(samples / 2).copied().unwrap_or_default();
        Ok(out)
    }
}
