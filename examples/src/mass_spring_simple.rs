//! Paper sec. 2.2, Fig. 2: three masses joined by three springs; gradient
//! descent on the rest lengths so the triangle's area ends at 0.1.
//! Scene facts from SIMULATORS.md: stiffness 10, damping 20, dt 0.001, 1024
//! steps, a wall at x = 0.4 with friction 0.01, learning rate 5, 25 iterations.
//! The kernels are Rust functions compiled by `#[kernel]` (the paper's three,
//! no longer than its Python); state is stored per time step (x[t, i]), so the
//! Tape replays their gradients in reverse without checkpointing.

use crate::report::{Outcome, Reporter};
use crate::{RunOptions, plot};
use diffsim::prelude::*;
use ds_runtime::{BackwardOptions, Error};

pub const STEPS: usize = 1024;
const LEARNING_RATE: f32 = 5.0;
const ITERATIONS: usize = 25;
pub const INITIAL_X: [(f32, f32); 3] = [(0.3, 0.5), (0.3, 0.4), (0.4, 0.4)];
const SPRINGS: [(i32, i32); 3] = [(0, 1), (1, 2), (2, 0)];
/// The same kernels written directly in the ds dialect (a cross-check).
const REFERENCE: &str = include_str!("../kernels/mass_spring_simple.mlir");

// --- paper sec. 2.2 kernels (kept together: their line count is checked) ---
#[kernel]
fn apply_spring_force(x: &VectorField<2>, force: &VectorField<2>, l: &ScalarField, a: &ScalarField, b: &ScalarField, t: usize) {
    for i in 0..3usize {
        let (ia, ib) = (a[(i,)] as usize, b[(i,)] as usize);
        let dist = x[(t - 1, ia)] - x[(t - 1, ib)];
        let length = dist.norm() + 1e-4;
        let f = dist * ((length - l[(i,)]) * 10.0 / length);
        force[(t, ia)] -= f;
        force[(t, ib)] += f;
    }
}

#[kernel]
fn time_integrate(x: &VectorField<2>, v: &VectorField<2>, force: &VectorField<2>, t: usize) {
    for i in 0..3usize {
        let s = (-0.001f64 * 20.0).exp() as f32;
        let mut nv = v[(t - 1, i)] * s + force[(t, i)] * 0.001;
        let nx = x[(t - 1, i)] + nv * 0.001;
        if nx.at(0) > 0.4 && nv.at(0) > 0.0 {
            let shrink = nv.at(1).abs().min(nv.at(0) * 0.01);
            let vy = select(nv.at(1) > 0.0, nv.at(1) - shrink, nv.at(1) + shrink);
            nv = Vector([nv.at(0) * 0.0, vy]);
        }
        v[(t, i)] = nv;
        x[(t, i)] = nx;
    }
}

#[kernel]
fn compute_loss(x: &VectorField<2>, loss: &ScalarField, t: usize) {
    let area = (0.5 * (x[(t, 0usize)] - x[(t, 1usize)]).cross(&(x[(t, 0usize)] - x[(t, 2usize)]))).abs();
    loss[()] = (area - 0.1) * (area - 0.1);
}
// --- end of the paper's kernels ---

fn init(mut p: Program) -> Result<Program, Error> {
    p.field_mut("spring_a")?.copy_from(&SPRINGS.map(|s| s.0))?;
    p.field_mut("spring_b")?.copy_from(&SPRINGS.map(|s| s.1))?;
    p.field_mut("spring_length")?.copy_from(&[0.1f32, 0.1, 0.1 * std::f32::consts::SQRT_2])?;
    Ok(p)
}

/// The program, from the `#[kernel]` functions above.
pub fn program() -> Result<Program, Error> {
    let mut pb = ProgramBuilder::new();
    let x = pb.vector::<f32, 2>("x", &[STEPS, 3], true);
    let v = pb.vector::<f32, 2>("v", &[STEPS, 3], true);
    let force = pb.vector::<f32, 2>("force", &[STEPS, 3], true);
    let l = pb.scalar::<f32>("spring_length", &[3], true);
    let (a, b) = (pb.scalar::<i32>("spring_a", &[3], false), pb.scalar::<i32>("spring_b", &[3], false));
    let loss = pb.scalar::<f32>("loss", &[], true);
    pb.kernel(apply_spring_force(&x, &force, &l, &a, &b));
    pb.kernel(time_integrate(&x, &v, &force));
    pb.kernel(compute_loss(&x, &loss));
    init(pb.build()?)
}

/// The same program from the hand-written ds kernels.
pub fn reference_program() -> Result<Program, Error> {
    init(crate::compile("examples/kernels/mass_spring_simple.mlir", REFERENCE)?)
}

/// Clears state and adjoints (keeping the rest lengths), sets the initial
/// positions, runs `steps` steps on a tape and returns the loss at the last one.
pub fn forward(p: &mut Program, steps: usize) -> Result<(f32, Tape), Error> {
    forward_from(p, steps, &INITIAL_X)
}

/// `forward` from other initial positions.
pub fn forward_from(p: &mut Program, steps: usize, initial: &[(f32, f32); 3]) -> Result<(f32, Tape), Error> {
    for name in ["x", "v", "force", "loss"] {
        p.field_mut(name)?.zero();
    }
    for (i, (x, y)) in initial.iter().enumerate() {
        p.field_mut("x")?.set(&[0, i, 0], *x)?;
        p.field_mut("x")?.set(&[0, i, 1], *y)?;
    }
    let mut tape = Tape::new();
    for t in 1..steps {
        tape.launch(p, "apply_spring_force", &[Arg::Index(t as i64)])?;
        tape.launch(p, "time_integrate", &[Arg::Index(t as i64)])?;
    }
    tape.launch(p, "compute_loss", &[Arg::Index(steps as i64 - 1)])?;
    Ok((p.field("loss")?.get(&[])?, tape))
}

/// dL/d(rest lengths): the tape's gradients in reverse (adjoints zeroed first).
pub fn backward(p: &mut Program, tape: &mut Tape) -> Result<Vec<f32>, Error> {
    tape.backward(p, "loss", &BackwardOptions::default())?;
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
        let (loss, mut tape) = forward(&mut p, STEPS)?;
        let grad = backward(&mut p, &mut tape)?;
        let lengths = p.field_mut("spring_length")?.as_mut_slice::<f32>()?;
        for (l, g) in lengths.iter_mut().zip(&grad) {
            *l -= LEARNING_RATE * g;
        }
        out.losses.push(loss as f64);
        report.iteration(iter, loss as f64);
    }
    report.finish();
    out.final_loss = forward(&mut p, STEPS)?.0 as f64;
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
