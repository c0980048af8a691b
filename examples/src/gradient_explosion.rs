//! Paper sec. 4, Fig. 10: a car with constant throttle a,
//! v[t] = exp(-dt alpha) v[t-1] + dt a, x[t] = x[t-1] + dt v[t], loss x[T].
//! Without damping dL/da = dt^2 T (T + 1) / 2, about 0.5 (T dt)^2: quadratic in
//! the horizon; with damping it grows linearly. The study sweeps T for
//! alpha in {0, 1, 3, 10} and plots dL/da against T (log scale).
//!
//! With `--check-gradients`, the gradient over 2048 steps without damping
//! and with alpha = 1 is diagnosed (`Recording::diagnose`): one forward-mode
//! replay gives dx[t]/da at every step, whose growth is reported as a power
//! of the step (2, quadratic, undamped; about 1, linear, damped).

use crate::report::{Outcome, Reporter};
use crate::{RunError, RunOptions, Simulation, plot};
use diffsim::prelude::*;
use diffsim::{DiagnoseOptions, GradientReport, along};

pub const DT: f64 = 0.01;
/// The most steps the fields hold.
pub const MAX_STEPS: usize = 2048;

#[kernel]
fn step(x: &ScalarField<f64, 1>, v: &ScalarField<f64, 1>, a: &ScalarField<f64, 0>, t: usize, alpha: f64, dt: f64) {
    let nv = (-(dt * alpha)).exp() * v[(t - 1,)] + dt * a[()];
    v[(t,)] = nv;
    x[(t,)] = x[(t - 1,)] + dt * nv;
}

/// The loss of the diagnosis: the position after `t` steps.
#[kernel]
fn final_position(x: &ScalarField<f64, 1>, loss: &ScalarField<f64, 0>, t: usize) {
    for _i in 0..1usize {
        loss[()] = x[(t,)];
    }
}

/// The car's fields and its step kernel.
pub struct Car {
    x: GradField<f64, 1>,
    v: GradField<f64, 1>,
    a: GradField<f64, 0>,
    loss: GradField<f64, 0>,
    step: Kernel<(usize, f64, f64)>,
    final_position: Kernel<usize>,
}

/// The program, built for gradient diagnostics when `diagnostics`.
pub fn program(diagnostics: bool) -> Result<(Program, Car), Error> {
    let mut pb = ProgramBuilder::new();
    if diagnostics {
        pb.gradient_diagnostics();
    }
    let car = Car::new(&mut pb)?;
    Ok((pb.build()?, car))
}

impl Car {
    fn new(pb: &mut ProgramBuilder) -> Result<Car, Error> {
        let (x, v, a) = (pb.field_with_grad("x", [MAX_STEPS + 1]), pb.field_with_grad("v", [MAX_STEPS + 1]), pb.field_with_grad("a", []));
        let loss = pb.field_with_grad("loss", []);
        Ok(Car { step: pb.kernel(step(&x, &v, &a))?, final_position: pb.kernel(final_position(&x, &loss))?, x, v, a, loss })
    }

    /// The diagnosis of dL/da over `steps` steps with damping `alpha`
    /// (a program built for diagnostics).
    pub fn diagnose<B: Backend>(&self, p: &mut B, steps: usize, alpha: f64) -> Result<GradientReport, Error> {
        for f in [&self.x, &self.v] {
            f.zero(p)?;
        }
        self.a.set(p, [], 1.0)?;
        let mut rec = p.record();
        for t in 1..=steps {
            rec.launch(&self.step, (t, alpha, DT))?;
            rec.end_step();
        }
        rec.launch(&self.final_position, steps)?;
        rec.diagnose(&self.loss, &[along(&self.a, vec![1.0])], &DiagnoseOptions::default())
    }

    /// dL/da for `steps` steps with damping `alpha` (a = 1), L = x[steps]:
    /// the step kernel's gradient run by hand, last step first.
    pub fn gradient<B: Backend>(&self, p: &mut B, steps: usize, alpha: f64) -> Result<f64, Error> {
        for f in [&self.x, &self.v] {
            f.zero(p)?;
            f.grad().zero(p)?;
        }
        self.a.set(p, [], 1.0)?;
        self.a.grad().zero(p)?;
        for t in 1..=steps {
            self.step.launch(p, (t, alpha, DT))?;
        }
        self.x.grad().set(p, [steps], 1.0)?;
        for t in (1..=steps).rev() {
            self.step.grad(p, (t, alpha, DT))?;
        }
        self.a.grad().get(p, [])
    }
}

impl Simulation for Car {
    fn declare(pb: &mut ProgramBuilder, _: &RunOptions) -> Result<Car, RunError> {
        Ok(Car::new(pb)?)
    }

    fn init<B: Backend>(&self, _: &mut B, _: &RunOptions) -> Result<(), RunError> {
        Ok(())
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, _: &mut Reporter) -> Result<Outcome, RunError> {
        let horizons: Vec<usize> = (4..=11).map(|k| 1usize << k).filter(|&n| n <= MAX_STEPS).collect();
        let alphas = [0.0, 1.0, 3.0, 10.0];
        let mut out = Outcome::default();
        let mut curves = Vec::new();
        for alpha in &alphas {
            let grads = horizons.iter().map(|&n| self.gradient(p, n, *alpha)).collect::<Result<Vec<_>, _>>()?;
            let last = *grads.last().expect("horizons");
            out.results.push((format!("alpha {alpha}: dL/da at T = {}", MAX_STEPS), format!("{last:.4}")));
            curves.push(grads);
        }
        let t = MAX_STEPS as f64;
        out.results.push(("0.5 (T dt)^2 at T = 2048".into(), format!("{:.4}", 0.5 * (t * DT).powi(2))));
        if opts.check_gradients {
            for alpha in [0.0, 1.0] {
                out.results.push((format!("alpha {alpha}: gradient diagnosis"), format!("\n{}", self.diagnose(p, MAX_STEPS, alpha)?)));
            }
        }
        if opts.pictures {
            let xs: Vec<f64> = horizons.iter().map(|&n| n as f64).collect();
            let series = curves.iter().zip(alphas).zip(plot::COLORS).map(|((c, alpha), color)| plot::Series::new(format!("alpha = {alpha}"), xs.clone(), c.clone(), color));
            let chart = plot::Chart {
                title: "Fig. 10: dL/da against the horizon, with and without damping".into(),
                x_label: "steps T".into(),
                y_label: "dL/da".into(),
                series: series.collect(),
                scale: plot::Scale::Log,
            };
            let path = opts.out.join("gradient_vs_steps.png");
            plot::draw_chart(&path, &chart)?;
            out.files.push(path);
        }
        out.final_loss = curves[0].last().copied().unwrap_or_default();
        Ok(out)
    }
}
