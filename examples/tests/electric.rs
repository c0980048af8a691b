//! electric: the gradient against central differences (f64), progress of the
//! optimization, Taichi's gradient mode, and the goal-point settings.

use diffsim_examples::electric::{self, Electric, GoalPoints, Goals, GradMode};
use diffsim_examples::{RunError, RunOptions, find, report::Reporter};
use std::path::PathBuf;

const A: GoalPoints = [[0.3, 0.7], [0.6, 0.35], [0.75, 0.6]];
const B: GoalPoints = [[0.55, 0.45], [0.25, 0.3], [0.4, 0.8]];

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffsim-test-electric-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A program whose nn1 reads a real trajectory (a remembered run towards A),
/// set up for a run towards B.
fn prepared<T: diffsim_examples::Real>(mode: GradMode, steps: usize) -> (diffsim::Program, Electric<T>) {
    let (mut p, sim) = electric::program::<T>(mode).unwrap();
    sim.init_params(&mut p, 7).unwrap();
    // Nonzero biases, so their gradients are tested away from 0 too.
    sim.bias1.copy_from(&mut p, &(0..64).map(|i| T::of(0.01 * (i % 5) as f64 - 0.02)).collect::<Vec<_>>()).unwrap();
    sim.bias2.copy_from(&mut p, &(0..8).map(|i| T::of(0.05 * i as f64 - 0.2)).collect::<Vec<_>>()).unwrap();
    sim.forward(&mut p, steps, &A).unwrap();
    sim.remember(&mut p).unwrap();
    (p, sim)
}

/// In f64 on 48 steps, central differences (step 1e-3) agree with the
/// gradient to 1e-6 relative for entries of all four layers (measured: at
/// most 3.4e-7, the O(h^2) truncation; the velocity weights' gradients are
/// ~4e-9, the remembered velocities being small, and get 1e-13 absolute
/// for the differences' rounding, 1e-16 x loss / h). The run is
/// smooth: the particle starts inside [0.2, 0.8]^2 and moves a few
/// hundredths in 48 steps, so |r| stays above the 0.1 clamp for every
/// electrode (the one switch of the force), and tanh has none.
#[test]
fn electric_gradient_matches_finite_differences() {
    let steps = 48;
    let (mut p, sim) = prepared::<f64>(GradMode::Exact, steps);
    let (_, grads, _) = sim.loss_and_grad(&mut p, steps, &B).unwrap();
    let fields: [(&diffsim::Field<f64, 2>, usize); 2] = [(&sim.weights1, 64), (&sim.weights2, 8)];
    // (layer, flat index): inputs x, v, goal, goal_v of weights1; biases; weights2.
    let picks =
        [(0, 3), (0, 64 + 10), (0, 2 * 64 + 5), (0, 3 * 64 + 40), (0, 4 * 64 + 1), (0, 7 * 64 + 63), (1, 0), (1, 33), (2, 7), (2, 8 * 20 + 3), (3, 0), (3, 5)];
    let h = 1e-3;
    for (layer, k) in picks {
        let analytic = grads[layer][k];
        let at = |value: f64, p: &mut diffsim::Program| -> f64 {
            match layer {
                0 | 2 => {
                    let (f, cols) = fields[layer / 2];
                    f.set(p, [k / cols, k % cols], value).unwrap();
                }
                1 => sim.bias1.set(p, [k], value).unwrap(),
                _ => sim.bias2.set(p, [k], value).unwrap(),
            }
            sim.forward(p, steps, &B).unwrap()
        };
        let base = match layer {
            0 => sim.weights1.get(&p, [k / 64, k % 64]).unwrap(),
            1 => sim.bias1.get(&p, [k]).unwrap(),
            2 => sim.weights2.get(&p, [k / 8, k % 8]).unwrap(),
            _ => sim.bias2.get(&p, [k]).unwrap(),
        };
        let numeric = (at(base + h, &mut p) - at(base - h, &mut p)) / (2.0 * h);
        at(base, &mut p);
        assert!(analytic.abs() > 1e-9, "layer {layer} [{k}]: gradient {analytic}");
        assert!((analytic - numeric).abs() <= 1e-6 * numeric.abs() + 1e-13, "layer {layer} [{k}]: {analytic} vs {numeric}");
    }
}

/// `grad=taichi` changes only nn1's gradient (weights1, bias1): the output
/// layer's gradients are the same as the exact ones, the input layer's are not.
#[test]
fn electric_taichi_gradient_differs_only_in_the_first_layer() {
    let steps = 48;
    let grads = [GradMode::Exact, GradMode::Taichi].map(|mode| {
        let (mut p, sim) = prepared::<f64>(mode, steps);
        sim.loss_and_grad(&mut p, steps, &B).unwrap().1
    });
    let rel = |a: &[f64], b: &[f64]| {
        let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
        diff / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    };
    for layer in [2, 3] {
        assert!(rel(&grads[1][layer], &grads[0][layer]) < 1e-12, "layer {layer}");
    }
    for layer in [0, 1] {
        assert!(rel(&grads[1][layer], &grads[0][layer]) > 1e-3, "layer {layer}: {}", rel(&grads[1][layer], &grads[0][layer]));
    }
}

/// The original's optimization on its own settings (f32, lr 2e-2, 512 steps)
/// with the same goal points every run, as a check with little noise: 15
/// iterations lower the loss by at least 40% (measured: 0.833 -> 0.411,
/// steadily; it levels off near 0.38 by iteration 40).
#[test]
fn electric_optimization_makes_progress() {
    let (mut p, sim) = electric::program::<f32>(GradMode::Exact).unwrap();
    sim.init_params(&mut p, 0).unwrap();
    let iters = 15;
    let mut goals = Goals::File { path: "fixed".into(), runs: vec![B; iters + 1], next: 0 };
    let (losses, _) = sim.optimize(&mut p, iters, electric::STEPS, &mut goals, &mut Reporter::new(false)).unwrap();
    let (first, last) = (losses[0], losses[iters - 1]);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert!(last < 0.6 * first, "{first} -> {last}: {losses:?}");
}

fn write_goals(path: &std::path::Path, dtype_f32: bool, runs: &[GoalPoints]) {
    use npyz::WriterBuilder;
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    let values = runs.iter().flatten().flatten().copied();
    let shape = [runs.len() as u64, 3, 2];
    if dtype_f32 {
        let mut w = npz.array::<f32>("goal_points", Default::default()).unwrap().default_dtype().shape(&shape).begin_nd().unwrap();
        w.extend(values.map(|v| v as f32)).unwrap();
        w.finish().unwrap();
    } else {
        let mut w = npz.array::<f64>("goal_points", Default::default()).unwrap().default_dtype().shape(&shape).begin_nd().unwrap();
        w.extend(values).unwrap();
        w.finish().unwrap();
    }
    npz.zip_writer().finish().unwrap();
}

fn run_with(settings: &[(&str, String)], iters: usize) -> Result<diffsim_examples::report::Outcome, RunError> {
    let mut opts = RunOptions::new(scratch("run"));
    opts.iters = Some(iters);
    opts.pictures = false;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    (find("electric").unwrap().run)(&opts, &mut Reporter::new(false))
}

/// Both gradient modes run; goal points come from a file (run 0 before the
/// loop, then one per iteration), and a file too short or of the wrong type,
/// or an unknown mode, is an error.
#[test]
fn electric_settings_give_the_variants() {
    let dir = scratch("settings");
    let file = dir.join("goals.npz");
    write_goals(&file, false, &[A, B, A]);
    for mode in ["exact", "taichi"] {
        let out = run_with(&[("grad", mode.into()), ("goal_points", file.display().to_string())], 2).unwrap();
        assert_eq!(out.losses.len(), 2);
        assert!(out.losses.iter().all(|l| l.is_finite() && *l > 0.0), "{mode}: {:?}", out.losses);
    }
    // The first iteration's loss is the loss towards B of weights from the seed,
    // nn1 reading the run towards A.
    let (mut p, sim) = electric::program::<f32>(GradMode::Exact).unwrap();
    sim.init_params(&mut p, 0).unwrap();
    sim.forward(&mut p, electric::STEPS, &A).unwrap();
    sim.remember(&mut p).unwrap();
    let want = sim.forward(&mut p, electric::STEPS, &B).unwrap() as f64;
    let out = run_with(&[("goal_points", file.display().to_string())], 1).unwrap();
    assert_eq!(out.losses[0], want);
    match run_with(&[("goal_points", file.display().to_string())], 3) {
        Err(RunError::Params { array, problem, .. }) => assert!(array == "goal_points" && problem.contains("3 runs"), "{problem}"),
        other => panic!("{other:?}"),
    }
    let f32_file = dir.join("goals32.npz");
    write_goals(&f32_file, true, &[A, B]);
    match run_with(&[("goal_points", f32_file.display().to_string())], 1) {
        Err(RunError::Params { problem, .. }) => assert!(problem.contains("dtype"), "{problem}"),
        other => panic!("{other:?}"),
    }
    match run_with(&[("grad", "numeric".into())], 1) {
        Err(RunError::BadSetting { name, .. }) => assert_eq!(name, "grad"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Random goal points differ between runs and stay in [0.2, 0.8]^2; the same
/// seed draws the same ones.
#[test]
fn electric_random_goals_are_seeded_and_in_range() {
    let draws = |seed| {
        let mut g = Goals::random(seed);
        (0..50).map(|_| g.draw().unwrap()).collect::<Vec<_>>()
    };
    let (a, b) = (draws(3), draws(3));
    assert_eq!(a, b);
    assert_ne!(a[0], a[1]);
    assert!(a.iter().flatten().flatten().all(|v| (0.2..0.8).contains(v)));
    let (goal, goal_v) = electric::goal_trajectory(&A);
    assert_eq!((goal[0], goal[256]), (A[0], A[1]));
    let s = 255.0 / 256.0;
    assert!((0..2).all(|c| (goal[511][c] - (A[1][c] + s * (A[2][c] - A[1][c]))).abs() < 1e-12), "{:?}", goal[511]);
    assert_eq!((goal_v[10], goal_v[300]), ([A[1][0] - A[0][0], A[1][1] - A[0][1]], [A[2][0] - A[1][0], A[2][1] - A[1][1]]));
}
