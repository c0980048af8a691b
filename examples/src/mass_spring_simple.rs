//! Paper sec. 2.2, Fig. 2: three masses joined by three springs; gradient
//! descent on the rest lengths so the triangle's area ends at 0.1.
//! Scene facts from SIMULATORS.md: stiffness 10, damping 20, dt 0.001, 1024
//! steps, a wall at x = 0.4 with friction 0.01, learning rate 5, 25 iterations.
//! State is stored per time step (x[t, i, axis]), so the backward pass replays
//! the grad kernels in reverse without checkpointing.

use crate::report::{Outcome, Reporter};
use crate::{RunOptions, plot};
use ds_runtime::{Arg, Error, Program};

pub const STEPS: usize = 1024;
const LEARNING_RATE: f32 = 5.0;
const ITERATIONS: usize = 25;
pub const INITIAL_X: [(f32, f32); 3] = [(0.3, 0.5), (0.3, 0.4), (0.4, 0.4)];
const SPRINGS: [(i32, i32); 3] = [(0, 1), (1, 2), (2, 0)];
const SOURCE: &str = include_str!("../kernels/mass_spring_simple.mlir");

pub fn program() -> Result<Program, Error> {
    let mut p = crate::compile("examples/kernels/mass_spring_simple.mlir", SOURCE)?;
    p.field_mut("spring_a")?.copy_from(&SPRINGS.map(|s| s.0))?;
    p.field_mut("spring_b")?.copy_from(&SPRINGS.map(|s| s.1))?;
    p.field_mut("spring_length")?.copy_from(&[0.1f32, 0.1, 0.1 * std::f32::consts::SQRT_2])?;
    Ok(p)
}

/// Clears state and adjoints (keeping the rest lengths), sets the initial
/// positions, runs `steps` steps and returns the loss at the last one.
pub fn forward(p: &mut Program, steps: usize) -> Result<f32, Error> {
    forward_from(p, steps, &INITIAL_X)
}

/// `forward` from other initial positions.
pub fn forward_from(p: &mut Program, steps: usize, initial: &[(f32, f32); 3]) -> Result<f32, Error> {
    for name in ["x", "v", "force", "loss", "x_grad", "v_grad", "force_grad", "loss_grad", "spring_length_grad"] {
        p.field_mut(name)?.zero();
    }
    for (i, (x, y)) in initial.iter().enumerate() {
        p.field_mut("x")?.set(&[0, i, 0], *x)?;
        p.field_mut("x")?.set(&[0, i, 1], *y)?;
    }
    for t in 1..steps {
        p.launch("apply_spring_force", &[Arg::Index(t as i64)])?;
        p.launch("time_integrate", &[Arg::Index(t as i64)])?;
    }
    p.launch("compute_loss", &[Arg::Index(steps as i64 - 1)])?;
    p.field("loss")?.get(&[])
}

/// dL/d(rest lengths) after `forward`, by the grad kernels in reverse order.
pub fn backward(p: &mut Program, steps: usize) -> Result<Vec<f32>, Error> {
    p.field_mut("loss_grad")?.set(&[], 1.0f32)?;
    p.launch("compute_loss_grad", &[Arg::Index(steps as i64 - 1)])?;
    for t in (1..steps).rev() {
        p.launch("time_integrate_grad", &[Arg::Index(t as i64)])?;
        p.launch("apply_spring_force_grad", &[Arg::Index(t as i64)])?;
    }
    p.field("spring_length_grad")?.to_vec()
}

fn positions(p: &Program, t: usize) -> Result<Vec<(f64, f64)>, Error> {
    let x = p.field("x")?;
    (0..3).map(|i| Ok((x.get::<f32>(&[t, i, 0])? as f64, x.get::<f32>(&[t, i, 1])? as f64))).collect()
}

pub fn run(opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, Error> {
    let mut p = program()?;
    let iters = opts.iters.unwrap_or(ITERATIONS);
    let mut out = Outcome::default();
    report.start(iters);
    for iter in 0..iters {
        let loss = forward(&mut p, STEPS)?;
        let grad = backward(&mut p, STEPS)?;
        let lengths = p.field_mut("spring_length")?.as_mut_slice::<f32>()?;
        for (l, g) in lengths.iter_mut().zip(&grad) {
            *l -= LEARNING_RATE * g;
        }
        out.losses.push(loss as f64);
        report.iteration(iter, loss as f64);
    }
    report.finish();
    out.final_loss = forward(&mut p, STEPS)? as f64;
    let lengths: Vec<f32> = p.field("spring_length")?.to_vec()?;
    out.results.push(("rest lengths".into(), format!("{lengths:.4?}")));
    let curve = opts.out.join("loss.png");
    let xs: Vec<f64> = (0..out.losses.len()).map(|i| i as f64).collect();
    plot::chart(&curve, &[(&xs, &out.losses, plot::BLUE)], true)?;
    out.pictures.push(curve);
    for t in (0..STEPS).step_by(128).chain([STEPS - 1]) {
        let path = opts.out.join(format!("frame_{t:04}.png"));
        plot::scene(&path, &positions(&p, t)?, &[(0, 1), (1, 2), (2, 0)], Some(0.4))?;
        out.pictures.push(path);
    }
    Ok(out)
}
