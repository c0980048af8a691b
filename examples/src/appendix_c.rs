//! Paper appendix C: L = sum_i 0.5 (x_i - y_i)^2 over 32 elements, minimized
//! by 100 steps of gradient descent (learning rate 0.1) from x = 0; the
//! gradient comes from the generated `reduce_grad`, the step is a kernel.

use crate::report::{Outcome, Reporter};
use crate::{RunOptions, plot};
use ds_runtime::Error;

const SOURCE: &str = include_str!("../kernels/appendix_c.mlir");

pub fn run(opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, Error> {
    let mut p = crate::compile("examples/kernels/appendix_c.mlir", SOURCE)?;
    let mut rng = ds_runtime::gradcheck::Rng(42);
    let ys: Vec<f32> = (0..32).map(|_| rng.next_f64() as f32).collect();
    p.field_mut("y")?.copy_from(&ys)?;
    let iters = opts.iters.unwrap_or(100);
    let mut out = Outcome::default();
    report.start(iters);
    for iter in 0..iters {
        p.field_mut("L")?.zero();
        p.launch("reduce", &[])?;
        let loss: f32 = p.field("L")?.get(&[])?;
        p.field_mut("x_grad")?.zero();
        p.field_mut("L_grad")?.set(&[], 1.0f32)?;
        p.launch("reduce_grad", &[])?;
        p.launch("update", &[])?;
        out.losses.push(loss as f64);
        report.iteration(iter, loss as f64);
    }
    report.finish();
    p.field_mut("L")?.zero();
    p.launch("reduce", &[])?;
    out.final_loss = p.field("L")?.get::<f32>(&[])? as f64;
    let xs: Vec<f32> = p.field("x")?.to_vec()?;
    let worst = xs.iter().zip(&ys).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    out.results.push(("max |x_i - y_i|".into(), format!("{worst:.3e}")));
    let curve = opts.out.join("loss.png");
    let steps: Vec<f64> = (0..out.losses.len()).map(|i| i as f64).collect();
    plot::chart(&curve, &[(&steps, &out.losses, plot::BLUE)], true)?;
    out.pictures.push(curve);
    Ok(out)
}
