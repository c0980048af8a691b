//! Paper sec. 4, Fig. 8: a ball falling at unit speed onto a frictionless
//! ground, bouncing elastically, no gravity, 204 steps of dt = 0.002. Starting
//! lower means bouncing earlier and ending higher, so d(final y)/d(initial y)
//! is -1. The naive integrator (collisions only at multiples of dt) gets +1;
//! splitting the step at the time of impact gets -1. The study sweeps the
//! initial height and plots the final height for both integrators.

use crate::report::{Outcome, Reporter};
use crate::{RunError, RunOptions, Simulation, plot};
use diffsim::prelude::*;

pub const STEPS: usize = 204;
const DT: f64 = 0.002;

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

/// The ball's fields and both integrators.
pub struct Ball {
    y: GradField<f64, 1>,
    vy: GradField<f64, 1>,
    pub naive: Kernel<usize>,
    pub toi: Kernel<usize>,
}

pub fn program() -> Result<(Program, Ball), Error> {
    let mut pb = ProgramBuilder::new();
    let ball = Ball::new(&mut pb)?;
    Ok((pb.build()?, ball))
}

impl Ball {
    fn new(pb: &mut ProgramBuilder) -> Result<Ball, Error> {
        let (y, vy) = (pb.field_with_grad("y", [STEPS + 1]), pb.field_with_grad("vy", [STEPS + 1]));
        Ok(Ball { naive: pb.kernel(advance_naive(&y, &vy))?, toi: pb.kernel(advance_toi(&y, &vy))?, y, vy })
    }

    /// Final height and d(final height)/d(initial height) with integrator `advance`.
    pub fn simulate<B: Backend>(&self, p: &mut B, advance: &Kernel<usize>, initial_height: f64) -> Result<(f64, f64), Error> {
        for f in [&self.y, &self.vy] {
            f.zero(p)?;
        }
        self.y.set(p, [0], initial_height)?;
        self.vy.set(p, [0], -1.0)?;
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
