//! The paper's programs through ds-run against the Rust programs of
//! `examples/`: appendix C's x_grad, and mass_spring_simple's loss (and
//! rest-length gradient) after 1023 steps of its reference kernels.

use crate::{ds_run, file, path, printed, scratch};
use diffsim_examples::{appendix_c, mass_spring_simple};
use ds_run::{Values, npy};

fn close(a: &[f64], b: &[f64], rel: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= rel * y.abs().max(1e-6))
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn appendix_c_x_grad_matches_the_rust_program() {
    // The Rust program: x = 0, random y; one gradient step moves x to 0.1 y,
    // and the gradient at that x is what a second step computes.
    let (mut p, sim) = appendix_c::program().unwrap();
    let ys = sim.init(&mut p).unwrap();
    sim.step(&mut p).unwrap();
    let xs = sim.x.to_vec(&p).unwrap();
    let rust_loss = sim.step(&mut p).unwrap();
    let rust_grad = sim.x.grad().to_vec(&p).unwrap();

    let dir = scratch("appendix_c");
    let (x, y, out) = (file(&dir, "x.npy"), file(&dir, "y.npy"), file(&dir, "x_grad.npy"));
    npy::write(&x, &[32], &Values::F32(xs.clone())).unwrap();
    npy::write(&y, &[32], &Values::F32(ys.clone())).unwrap();
    let module = path("examples/kernels/appendix_c.mlir");
    let run = ds_run(&[
        &module,
        "--field",
        &format!("x={x}"),
        "--field",
        &format!("y={y}"),
        "--launch",
        "reduce()",
        "--grad",
        "L",
        "--print",
        "L",
        "--out",
        &format!("x_grad={out}"),
    ])
    .unwrap();
    let saved = npy::read(&out).unwrap();
    assert_eq!(saved.shape, vec![32]);
    let Values::F32(grad) = saved.values else { panic!("x_grad saved as {:?}", saved.values.elem()) };
    // dL/dx = x - y, and the Rust program's gradient.
    let analytic: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| f64::from(x - y)).collect();
    assert!(close(&f64s(&grad), &analytic, 1e-6), "ds-run {grad:?}\nx - y {analytic:?}");
    assert!(close(&f64s(&grad), &f64s(&rust_grad), 1e-6), "ds-run {grad:?}\nRust {rust_grad:?}");
    let loss = printed(&run, "L")[0];
    assert!((loss - f64::from(rust_loss)).abs() <= 1e-6 * loss.abs(), "loss {loss} vs {rust_loss}");
    assert!(run.stdout.starts_with("@L: f32[] = "), "{}", run.stdout);
}

/// ds-run's arguments for mass_spring_simple from the example's initial state.
fn mass_spring_args(dir: &std::path::Path) -> Vec<String> {
    let steps = mass_spring_simple::STEPS;
    let mut x = vec![0f32; steps * 3 * 2];
    for (i, p) in mass_spring_simple::INITIAL_X.iter().enumerate() {
        x[i * 2] = p[0];
        x[i * 2 + 1] = p[1];
    }
    let inputs = [
        ("x", vec![steps, 3, 2], Values::F32(x)),
        ("spring_a", vec![3], Values::I32(vec![0, 1, 2])),
        ("spring_b", vec![3], Values::I32(vec![1, 2, 0])),
        ("spring_length", vec![3], Values::F32(vec![0.1, 0.1, 0.1 * std::f32::consts::SQRT_2])),
    ];
    let mut args = vec![path("examples/kernels/mass_spring_simple.mlir")];
    for (name, shape, values) in inputs {
        let f = file(dir, &format!("{name}.npy"));
        npy::write(&f, &shape, &values).unwrap();
        args.extend(["--field".to_string(), format!("{name}={f}")]);
    }
    for a in [
        "--launch",
        "apply_spring_force(%t); time_integrate(%t)",
        "--for",
        &format!("t=1..{steps}"),
        "--launch",
        &format!("compute_loss({})", steps - 1),
        "--print",
        "loss",
    ] {
        args.push(a.to_string());
    }
    args
}

#[test]
fn mass_spring_loss_matches_the_rust_example() {
    let dir = scratch("mass_spring_forward");
    let args = mass_spring_args(&dir);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let run = ds_run(&args).unwrap();
    let loss = printed(&run, "loss")[0];
    assert_eq!(run.launches, 2 * 1023 + 1);

    // MassSpring::forward on the #[kernel] program and on the reference kernels.
    let (mut p, sim) = mass_spring_simple::program().unwrap();
    let rust = f64::from(sim.forward(&mut p, mass_spring_simple::STEPS, &mass_spring_simple::INITIAL_X).unwrap());
    let mut reference = mass_spring_simple::reference_program(&sim).unwrap();
    let same_kernels =
        f64::from(sim.forward(&mut reference, mass_spring_simple::STEPS, &mass_spring_simple::INITIAL_X).unwrap());
    assert_eq!(loss, same_kernels, "ds-run and the Rust host code on the same kernels");
    assert!((loss - rust).abs() <= 1e-5 * rust.abs(), "ds-run {loss}, Rust example {rust}");
}

#[test]
fn mass_spring_gradient_matches_the_rust_example() {
    let dir = scratch("mass_spring_grad");
    let mut args = mass_spring_args(&dir);
    args.extend(["--grad", "loss", "--print", "spring_length_grad"].map(String::from));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let run = ds_run(&args).unwrap();
    let (loss, grad) = (printed(&run, "loss")[0], printed(&run, "spring_length_grad"));

    let (p, sim) = mass_spring_simple::program().unwrap();
    let mut reference = mass_spring_simple::reference_program(&sim).unwrap();
    let (rust_loss, rust_grad) =
        sim.loss_and_grad(&mut reference, mass_spring_simple::STEPS, &mass_spring_simple::INITIAL_X).unwrap();
    drop(p);
    assert_eq!(loss, f64::from(rust_loss));
    assert!(close(&grad, &f64s(&rust_grad), 1e-6), "ds-run {grad:?}\nRust {rust_grad:?}");
    assert!(grad.iter().any(|g| g.abs() > 1e-6), "a zero gradient: {grad:?}");
}
