//! mass_spring (paper Fig. 4 left, Fig. 9): robot sizes, gradients against
//! central differences (f64), training progress, settings and seeds.

use diffsim::ProgramBuilder;
use diffsim_examples::mass_spring::{MassSpring, Robot, RobotShape};
use diffsim_examples::report::{Outcome, Reporter};
use diffsim_examples::{RunError, RunOptions, run_example};

fn options(what: &str, iters: usize, settings: &[(&str, &str)], seed: u64) -> RunOptions {
    let out = std::env::temp_dir().join(format!("diffsim-test-mass-spring-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(iters);
    opts.pictures = false;
    opts.seed = seed;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    opts
}

fn train(what: &str, iters: usize, settings: &[(&str, &str)], seed: u64) -> Result<Outcome, RunError> {
    let opts = options(what, iters, settings, seed);
    let outcome = run_example::<MassSpring>(&opts, &mut Reporter::new(false));
    std::fs::remove_dir_all(&opts.out).ok();
    outcome
}

/// The paper's robots: 14 masses / 30 springs (4 actuated), 20 / 46 (8), 26 / 61 (11).
#[test]
fn mass_spring_robots_have_the_papers_sizes() {
    for (id, objects, springs, actuated) in [(0, 6, 11, 11), (1, 14, 30, 4), (2, 20, 46, 8), (3, 26, 61, 11)] {
        let r = RobotShape::robot(id).unwrap();
        let n_act = r.springs.iter().filter(|s| s.actuation != 0.0).count();
        assert_eq!((r.objects.len(), r.springs.len(), n_act), (objects, springs, actuated), "robot {id}");
        // Springs start at rest, between distinct masses, no pair twice.
        for (k, s) in r.springs.iter().enumerate() {
            let (p, q) = (r.objects[s.a], r.objects[s.b]);
            assert!(s.a != s.b && (((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt() - s.length).abs() < 1e-12);
            assert!(!r.springs[..k].iter().any(|o| (o.a, o.b) == (s.a, s.b) || (o.a, o.b) == (s.b, s.a)), "robot {id}: spring {k} twice");
        }
    }
    assert!(RobotShape::robot(4).is_none());
}

/// Moves one parameter by a given amount from its value.
type Shift = Box<dyn Fn(&mut diffsim::Program, f64)>;

/// dL/d(parameters) against central differences in f64 on 40 steps, for
/// both integrators. The robot starts on the ground, so masses touch it
/// from the second step on: the loss is piecewise smooth, and a step of
/// 1e-6 crosses no contact switch (checked: differences at h and h / 4
/// agree to 1e-6, as they would not across a jump).
#[test]
fn mass_spring_gradient_matches_finite_differences() {
    let steps = 40;
    for toi in [true, false] {
        let mut pb = ProgramBuilder::new();
        let robot: Robot<f64> = Robot::new(&mut pb, 1, toi, steps).unwrap();
        let mut p = pb.build().unwrap();
        robot.init(&mut p, 3).unwrap();
        robot.loss_and_grad(&mut p, steps).unwrap();
        let n_in = robot.shape.n_input_states();
        let actuated = robot.shape.springs.iter().position(|s| s.actuation != 0.0).unwrap();
        let passive = robot.shape.springs.iter().position(|s| s.actuation == 0.0).unwrap();
        // weights1: a sine input, mass 0's x offset and y velocity, the goal's y;
        // weights2: an actuated spring's and a passive one's (no effect: zero).
        let (w1, w2) = (&robot.weights1, &robot.weights2);
        let matrices = [(w1, [3, 2]), (w1, [7, 10]), (w1, [20, 13]), (w1, [31, n_in - 1]), (w2, [actuated, 5]), (w2, [passive, 9])];
        let vectors = [(&robot.bias1, [4]), (&robot.bias2, [actuated])];
        let mut checks: Vec<(String, f64, Shift)> = Vec::new();
        for (f, i) in matrices {
            let (f2, base) = (f.clone(), f.get(&p, i).unwrap());
            checks.push((format!("{}{i:?}", f.name()), f.grad().get(&p, i).unwrap(), Box::new(move |p, v| f2.set(p, i, base + v).unwrap())));
        }
        for (f, i) in vectors {
            let (f2, base) = (f.clone(), f.get(&p, i).unwrap());
            checks.push((format!("{}{i:?}", f.name()), f.grad().get(&p, i).unwrap(), Box::new(move |p, v| f2.set(p, i, base + v).unwrap())));
        }
        for (what, analytic, shift) in &checks {
            let mut at = |h: f64| {
                shift(&mut p, h);
                robot.forward(&mut p, steps, steps).unwrap()
            };
            let (numeric, coarse) = ((at(1e-6) - at(-1e-6)) / 2e-6, (at(4e-6) - at(-4e-6)) / 8e-6);
            at(0.0);
            let passive_spring = what.starts_with("weights2") && what.contains(&format!("[{passive},"));
            if passive_spring {
                // A passive spring's actuation multiplies a zero amplitude.
                assert!(*analytic == 0.0 && numeric == 0.0, "toi {toi}: {what}: {analytic} vs {numeric}");
                continue;
            }
            assert!(analytic.abs() > 1e-6, "toi {toi}: {what}: gradient {analytic}");
            // Round-off: 1e-16 |L| / h, about 1e-10.
            let tol = 1e-5 * numeric.abs() + 1e-9;
            println!("toi {toi}: {what}: {analytic:e} vs {numeric:e} (h / 4: {coarse:e})");
            assert!((numeric - coarse).abs() <= tol, "toi {toi}: {what}: a jump? {numeric} vs {coarse}");
            assert!((analytic - numeric).abs() <= tol, "toi {toi}: {what}: {analytic} vs {numeric}");
        }
        assert_eq!(checks.len(), 8);
    }
}

/// The optimization moves the head to the right (the loss, -x of the head,
/// falls) on a shorter horizon (200 steps, 20 iterations), with either integrator.
#[test]
fn mass_spring_training_makes_progress() {
    let steps = 200;
    for toi in [true, false] {
        let mut pb = ProgramBuilder::new();
        let robot: Robot<f32> = Robot::new(&mut pb, 1, toi, steps).unwrap();
        let mut p = pb.build().unwrap();
        robot.init(&mut p, 0).unwrap();
        let l = robot.optimize(&mut p, steps, 20, &mut Reporter::new(false)).unwrap();
        let last = robot.forward(&mut p, steps, steps).unwrap() as f64;
        println!("toi {toi}: {l:?} then {last}");
        assert!(l.iter().all(|v| v.is_finite()), "{l:?}");
        assert!(last < l[0] - 0.005, "toi {toi}: {l:?}, then {last}");
    }
}

/// The original's 100 iterations on robot 1 with the time of impact (about
/// 8 s in the debug test profile).
#[test]
fn mass_spring_default_training_walks() {
    let mut opts = options("default", 100, &[], 0);
    opts.iters = None;
    let out = run_example::<MassSpring>(&opts, &mut Reporter::new(false)).unwrap();
    let l = &out.losses;
    let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
    let best = l.iter().cloned().fold(f64::MAX, f64::min);
    println!("robot 1, toi: first loss {:.5}, last {:.5}, best {best:.5}, final {:.5}; {l:?}", l[0], l[99], out.final_loss);
    assert_eq!(l.len(), 100);
    // A fixed step length of 0.2 keeps jumping (the original's losses do too):
    // compare the first and last ten, and the best.
    assert!(mean(&l[90..]) < mean(&l[..10]) - 0.03 && best < l[0] - 0.1, "{l:?}");
    std::fs::remove_dir_all(&opts.out).ok();
}

/// Every robot and integrator builds and runs an iteration.
#[test]
fn mass_spring_settings_give_each_robot() {
    for (robot, toi) in [("0", "false"), ("2", "true"), ("3", "false")] {
        let out = train(&format!("robot{robot}"), 1, &[("robot", robot), ("toi", toi)], 1).unwrap_or_else(|e| panic!("robot {robot}: {e}"));
        assert!(out.losses[0].is_finite() && out.final_loss.is_finite(), "robot {robot}: {out:?}");
    }
    for (name, value) in [("robot", "7"), ("robot", "one"), ("toi", "yes")] {
        match train("bad", 1, &[(name, value)], 0) {
            Err(RunError::BadSetting { name: n, value: v, .. }) => assert_eq!((n.as_str(), v.as_str()), (name, value)),
            other => panic!("{name}={value}: {other:?}"),
        }
    }
}

/// For the Fig. 9 study: seeds draw other initial weights (so other losses),
/// the same seed the same run; biases start at zero.
#[test]
fn mass_spring_seeds_choose_the_initial_weights() {
    let weights = |seed: u64| {
        let mut pb = ProgramBuilder::new();
        let robot: Robot<f32> = Robot::new(&mut pb, 1, true, 4).unwrap();
        let mut p = pb.build().unwrap();
        robot.init(&mut p, seed).unwrap();
        let w1 = robot.weights1.to_vec(&p).unwrap();
        let n = w1.len() as f64;
        let sd = (w1.iter().map(|&w| (w as f64).powi(2)).sum::<f64>() / n).sqrt();
        let want = (2.0 / (32.0 + robot.shape.n_input_states() as f64)).sqrt() * 2.0;
        assert!((sd / want - 1.0).abs() < 0.1, "weights1 spread {sd} vs {want}");
        assert!(robot.bias1.to_vec(&p).unwrap().iter().chain(&robot.bias2.to_vec(&p).unwrap()).all(|&b| b == 0.0));
        (w1, robot.weights2.to_vec(&p).unwrap(), p.field_infos().len())
    };
    let (a, b) = (weights(1), weights(2));
    assert_ne!(a.0, b.0);
    assert_ne!(a.1, b.1);
    // Through `run_example`, as the Fig. 9 study calls it: one loss per iteration.
    let runs: Vec<Vec<f64>> = [5, 6, 5].iter().map(|&s| train(&format!("seed{s}"), 2, &[("toi", "false")], s).unwrap().losses).collect();
    assert!(runs.iter().all(|l| l.len() == 2));
    assert_ne!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}
