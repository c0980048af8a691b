//! Paper sec. 4, Fig. 10: a car with constant throttle a,
//! v[t] = exp(-dt alpha) v[t-1] + dt a, x[t] = x[t-1] + dt v[t], loss x[T].
//! Without damping dL/da = dt^2 T (T + 1) / 2, about 0.5 (T dt)^2: quadratic in
//! the horizon; with damping it grows linearly. The study sweeps T for
//! alpha in {0, 1, 3, 10} and plots dL/da against T (log scale).

use crate::report::{Outcome, Reporter};
use crate::{RunOptions, plot};
use diffsim::prelude::*;
use ds_runtime::Error;

pub const DT: f64 = 0.01;
/// The most steps the fields hold.
pub const MAX_STEPS: usize = 2048;

#[kernel]
fn step(x: &ScalarField, v: &ScalarField, a: &ScalarField, t: usize, alpha: f64, dt: f64) {
    let nv = (-(dt * alpha)).exp() * v[(t - 1,)] + dt * a[()];
    v[(t,)] = nv;
    x[(t,)] = x[(t - 1,)] + dt * nv;
}

pub fn program() -> Result<Program, Error> {
    let mut pb = ProgramBuilder::new();
    let x = pb.scalar::<f64>("x", &[MAX_STEPS + 1], true);
    let v = pb.scalar::<f64>("v", &[MAX_STEPS + 1], true);
    let a = pb.scalar::<f64>("a", &[], true);
    pb.kernel(step(&x, &v, &a));
    pb.build()
}

/// dL/da for `steps` steps with damping `alpha` (a = 1).
pub fn gradient(p: &mut Program, steps: usize, alpha: f64) -> Result<f64, Error> {
    for f in p.fields_mut() {
        f.zero();
    }
    p.field_mut("a")?.set(&[], 1.0f64)?;
    let args = |t: usize| [Arg::Index(t as i64), Arg::F64(alpha), Arg::F64(DT)];
    for t in 1..=steps {
        p.launch("step", &args(t))?;
    }
    p.field_mut("x_grad")?.set(&[steps], 1.0f64)?;
    for t in (1..=steps).rev() {
        p.launch("step_grad", &args(t))?;
    }
    p.field("a_grad")?.get(&[])
}

pub fn run(opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, Error> {
    let mut p = program()?;
    let horizons: Vec<usize> = (4..=11).map(|k| 1usize << k).filter(|&n| n <= MAX_STEPS).collect();
    let alphas = [0.0, 1.0, 3.0, 10.0];
    let colors = [plot::RED, plot::ORANGE, plot::GREEN, plot::BLUE];
    let mut out = Outcome::default();
    let mut curves = Vec::new();
    report.start(alphas.len());
    for (k, alpha) in alphas.iter().enumerate() {
        let grads = horizons.iter().map(|&n| gradient(&mut p, n, *alpha)).collect::<Result<Vec<_>, _>>()?;
        let last = *grads.last().expect("horizons");
        out.results.push((format!("alpha {alpha}: dL/da at T = {}", MAX_STEPS), format!("{last:.4}")));
        report.iteration(k, last);
        curves.push(grads);
    }
    report.finish();
    let t = MAX_STEPS as f64;
    out.results.push(("0.5 (T dt)^2 at T = 2048".into(), format!("{:.4}", 0.5 * (t * DT).powi(2))));
    let xs: Vec<f64> = horizons.iter().map(|&n| n as f64).collect();
    let series: Vec<(&[f64], &[f64], image::Rgb<u8>)> =
        curves.iter().zip(colors).map(|(c, color)| (xs.as_slice(), c.as_slice(), color)).collect();
    let path = opts.out.join("gradient_vs_steps.png");
    plot::chart(&path, &series, true)?;
    out.pictures.push(path);
    out.final_loss = curves[0].last().copied().unwrap_or_default();
    Ok(out)
}
