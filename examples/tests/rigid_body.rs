//! rigid_body (paper Fig. 4 right, Fig. 9) and rigid_body_discontinuity (Fig. 12).

use diffsim::ProgramBuilder;
use diffsim_examples::report::Reporter;
use diffsim_examples::rigid_body::{GROUND, Physics, RigidBody, Robot};
use diffsim_examples::{RunError, RunOptions, find};

fn robot_program(robot: Robot, toi: bool) -> (diffsim::Program, RigidBody<f64>) {
    let mut pb = ProgramBuilder::new();
    let sim = RigidBody::<f64>::new(&mut pb, robot, toi, Physics::RIGID_BODY).unwrap();
    let mut p = pb.build().unwrap();
    sim.setup(&mut p).unwrap();
    sim.init_weights(&mut p, 1).unwrap();
    (p, sim)
}

fn options(what: &str, settings: &[(&str, &str)]) -> RunOptions {
    let out = std::env::temp_dir().join(format!("diffsim-test-rigid-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.pictures = false;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    opts
}

/// dL/d(weights) by the recording against central differences, in f64,
/// for a few entries of each parameter.
fn check_gradient(robot: Robot, steps: usize, h: f64, tolerance: f64, contact: bool) {
    let (mut p, sim) = robot_program(robot, true);
    sim.loss_and_grad(&mut p, steps).unwrap();
    let c = &sim.controller;
    let inputs = c.weights1.shape()[1];
    let picks: Vec<(&diffsim::GradField<f64, 2>, [usize; 2])> = vec![
        (&c.weights1, [0, 0]),
        (&c.weights1, [3, 5]),
        (&c.weights1, [31, inputs - 1]),
        (&c.weights2, [1, 20]),
    ];
    let grads: Vec<f64> = picks.iter().map(|(f, at)| f.grad().get(&p, *at).unwrap()).collect();
    let bias_grads = [c.bias1.grad().get(&p, [7]).unwrap(), c.bias2.grad().get(&p, [1]).unwrap()];
    let mut largest: f64 = 0.0;
    for ((field, at), analytic) in picks.iter().zip(&grads) {
        let base = field.get(&p, *at).unwrap();
        let mut at_value = |v: f64| {
            field.set(&mut p, *at, v).unwrap();
            sim.forward(&mut p, steps).unwrap()
        };
        let numeric = (at_value(base + h) - at_value(base - h)) / (2.0 * h);
        at_value(base);
        largest = largest.max(analytic.abs());
        eprintln!("{} {at:?}: {analytic:e} vs {numeric:e}", field.name());
        assert!((analytic - numeric).abs() <= tolerance * numeric.abs() + 1e-8, "{} {at:?}: {analytic} vs {numeric}", field.name());
    }
    for (field, at, analytic) in [(&c.bias1, 7, bias_grads[0]), (&c.bias2, 1, bias_grads[1])] {
        let base = field.get(&p, [at]).unwrap();
        let mut at_value = |v: f64| {
            field.set(&mut p, [at], v).unwrap();
            sim.forward(&mut p, steps).unwrap()
        };
        let numeric = (at_value(base + h) - at_value(base - h)) / (2.0 * h);
        at_value(base);
        largest = largest.max(analytic.abs());
        eprintln!("{} [{at}]: {analytic:e} vs {numeric:e}", field.name());
        assert!((analytic - numeric).abs() <= tolerance * numeric.abs() + 1e-8, "{} [{at}]: {analytic} vs {numeric}", field.name());
    }
    assert!(largest > 1e-4, "gradients too small to check: {grads:?} {bias_grads:?}");
    // The lowest corner over the horizon, relative to the ground.
    let lowest = (0..steps)
        .flat_map(|t| (0..sim.world.bodies.n).map(move |i| (t, i)))
        .map(|(t, i)| sim.world.corners(&p, t, i).unwrap().iter().map(|c| c.1).fold(f64::MAX, f64::min))
        .fold(f64::MAX, f64::min);
    assert_eq!(lowest < GROUND, contact, "lowest corner - ground: {:e}", lowest - GROUND);
}

/// Robot A's feet start 0.03 above the ground (bottoms at y = 0.13): in 50
/// steps no corner reaches it (checked), so the loss is smooth in the weights
/// there: no contact switches. The horizon has both NN layers, the six
/// springs and the joint. f64, central differences with h = 1e-6: 6 digits.
#[test]
fn rigid_body_gradient_matches_finite_differences_before_contact() {
    check_gradient(Robot::a(), 50, 1e-6, 1e-5, false);
}

/// robotB's legs start 0.02 above the ground (bottoms at y = 0.12) and land
/// within 100 steps (checked: a corner goes below the ground), so this horizon
/// has normal and friction impulses and times of impact. h = 1e-7 in f64 is
/// small enough that no perturbed run crosses a contact switch (which would
/// show as a mismatch); the gradients agree to about 6 digits.
#[test]
fn rigid_body_gradient_matches_finite_differences_through_contact() {
    check_gradient(Robot::b(), 100, 1e-7, 1e-4, true);
}

fn run(opts: &RunOptions) -> Result<diffsim_examples::report::Outcome, RunError> {
    (find("rigid_body").unwrap().run)(opts, &mut Reporter::new(false))
}

/// robotB without time of impact and robotLeg with it build and run an
/// iteration (robotA trains below); a finite loss that the update changes.
fn one_iteration(robot: &str, toi: &str) {
    let mut opts = options("robots", &[("robot", robot), ("toi", toi)]);
    opts.iters = Some(1);
    let out = run(&opts).unwrap_or_else(|e| panic!("robot {robot}: {e}"));
    assert!(out.losses.len() == 1 && out.losses[0].is_finite() && out.final_loss.is_finite(), "robot {robot}: {out:?}");
    assert_ne!(out.losses[0], out.final_loss, "robot {robot}: the update changed nothing");
}

#[test]
fn rigid_body_robot_b_runs_without_toi() {
    one_iteration("1", "false");
}

#[test]
fn rigid_body_robot_leg_runs_with_toi() {
    one_iteration("2", "on");
}

#[test]
fn rigid_body_bad_settings_are_errors() {
    for (name, value) in [("robot", "3"), ("robot", "a"), ("toi", "maybe"), ("penalty", "-1")] {
        let mut opts = options("bad", &[(name, value)]);
        opts.iters = Some(1);
        match run(&opts) {
            Err(RunError::BadSetting { name: n, value: v, .. }) => assert_eq!((n.as_str(), v.as_str()), (name, value)),
            other => panic!("{name}={value}: {other:?}"),
        }
    }
}

/// Seeds choose the initial weights (the later Fig. 9 study runs 5 seeds
/// per integrator through `run_example`, whose `init` draws them from
/// `opts.seed`): another seed, other weights; the same seed, the same; the
/// original's scales.
fn check_seeds(sim: &RigidBody<f32>, p: &mut diffsim::Program) {
    use diffsim_examples::Simulation;
    let opts = options("seeds", &[]);
    let mut weights = |seed: u64| {
        sim.init(p, &RunOptions { seed, ..opts.clone() }).unwrap();
        [sim.controller.weights1.to_vec(p).unwrap(), sim.controller.weights2.to_vec(p).unwrap()]
    };
    let (a, b, again) = (weights(0), weights(1), weights(0));
    assert_eq!(a, again);
    assert!(a.iter().zip(&b).all(|(x, y)| x.iter().zip(y).all(|(x, y)| x != y)), "seeds 0 and 1 share weights");
    // weights1 ~ N(0, 1) sqrt(2 / (32 + 42)) 0.5, weights2 ~ N(0, 1) sqrt(2 / (32 + 7)).
    for (w, sd) in a.iter().zip([(2.0f64 / 74.0).sqrt() * 0.5, (2.0f64 / 39.0).sqrt()]) {
        let rms = (w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        assert!((rms / sd - 1.0).abs() < 0.15, "rms {rms} vs {sd}");
    }
}

/// The original's training of robot 0 (20 iterations, time of impact; seed
/// 0): over 2048 steps its gradient explodes (|g| = 1.1e8 here; Taichi from
/// the same weights 1.8e10, we 1.0e4: chaotic), so each step is the clipped
/// 0.2 and the loss moves unevenly: the last rounding of one adjoint rule
/// changes the trajectory (with -((g / b) a) / b for the divisor's adjoint of
/// a / b it went from 0.5999 to 0.5897, with g (-(a / b) / b) it ends at
/// 0.6617). What the original shows is checked: the loss goes below its
/// start on the way (Taichi from numpy's seed 0: 0.6024 -> 0.6096, lowest
/// 0.5989), and every step changes the loss. One thread: the order of the
/// atomic adds, and so the chaotic trajectory, is fixed.
#[test]
fn rigid_body_robot0_training_lowers_the_loss_and_seeds_choose_the_weights() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let losses = pool.install(|| {
        let mut pb = ProgramBuilder::new();
        let sim = RigidBody::<f32>::new(&mut pb, Robot::a(), true, Physics::RIGID_BODY).unwrap();
        let mut p = pb.build().unwrap();
        check_seeds(&sim, &mut p);
        sim.init_weights(&mut p, 0).unwrap();
        sim.optimize(&mut p, 20, &mut Reporter::new(false)).unwrap().0
    });
    let lowest = losses.iter().copied().fold(f64::MAX, f64::min);
    assert!(lowest < losses[0], "{losses:?}");
    assert!(losses.windows(2).all(|w| w[0] != w[1]), "a step left the loss unchanged: {losses:?}");
}

/// The box's final position jumps where the first corner to land changes
/// (Fig. 12): with friction 1 the bisected jump is larger than any change
/// between neighbouring runs away from it.
#[test]
fn rigid_body_discontinuity_jumps_where_the_first_corner_changes() {
    use diffsim_examples::rigid_body_discontinuity::{Discontinuity, rotations};
    let mut pb = ProgramBuilder::new();
    let scene = Discontinuity::new(&mut pb).unwrap();
    let mut p = pb.build().unwrap();
    let (_, world) = &scene.worlds[1];
    let rots = rotations(10);
    let finals: Vec<[f64; 2]> = rots.iter().map(|&r| scene.final_position(&mut p, world, r).unwrap()).collect();
    let steps: Vec<f64> = finals.windows(2).map(|w| (w[0][0] - w[1][0]).abs()).collect();
    // The runs around 0 (-0.002, +0.002) straddle the jump; the others are near each other.
    let (jump, rest) = (steps[4], steps.iter().enumerate().filter(|(k, _)| *k != 4).map(|(_, s)| *s).fold(0.0, f64::max));
    assert!(jump > 0.05 && rest < 0.01, "changes of final x between runs: {steps:?}");
    // On either side, the box ends on the side of the corner that landed first.
    let (left, right) = (scene.final_position(&mut p, world, -1e-4).unwrap(), scene.final_position(&mut p, world, 1e-4).unwrap());
    assert!(right[0] - left[0] > 0.05, "{left:?} {right:?}");
}

