//! diffmpm3d and liquid: the scenes are the originals', the controller
//! gradient agrees with finite differences (f64, short horizons, coarse
//! robots), the optimization makes progress, and the liquid runs an
//! iteration with a finite, checked gradient.

use super::diffmpm::{check_controller_gradient, run_with, set_large_weights};
use diffsim::ProgramBuilder;
use diffsim_examples::RunError;
use diffsim_examples::diffmpm3d::{self, PyRandom, Robot3, Scene3};
use diffsim_examples::liquid;

/// Builds `scene` in f64, sets larger weights than the initial N(0, 0.01^2)
/// (so the actuation matters over a short horizon), and checks dL/dweights
/// at `picks` and dL/dbias at the first two picks' rows against central
/// differences; the gradient run's dL/dx[0] (the initial positions'
/// adjoints) is returned.
fn check_gradient_3d(scene: Scene3, steps: usize, picks: &[(usize, usize)]) -> Vec<[f64; 3]> {
    let mut pb = ProgramBuilder::new();
    let sim = Robot3::<f64>::new(&mut pb, scene, diffmpm3d::OPTIMIZER, steps).unwrap();
    let mut p = pb.build().unwrap();
    sim.init(&mut p, 3).unwrap();
    set_large_weights(&sim, &mut p, 0.8);
    // The loss carries ~1e-15 of rounding noise (atomic sums in varying
    // order), 1e-12 in the differences at h = 1e-3, whose truncation error
    // is smaller still (h = 1e-3 and 1e-4 agree to 1e-5 relative, h = 1e-5
    // and 1e-6 are noise-bound); the gradients checked are 3e-8 and more.
    let biases: Vec<usize> = picks[..2].iter().map(|&(i, _)| i).collect();
    check_controller_gradient(&sim, &mut p, steps, 1e-3, picks, &biases);
    // The forward runs of the differences leave the adjoints as the gradient run left them.
    sim.solver.x.grad().to_vec(&p).unwrap()[..sim.solver.mpm.n_particles].to_vec()
}

/// dL/dweights and dL/dbias of the coarse quadruped (density 1, 1008
/// particles) over 16 steps against central differences, in f64. Internal
/// stress cannot move the centre of mass, so the loss depends on the
/// controller only through the floor: the legs' lowest particles (y =
/// 0.05 + dx/2) have stencils reaching the floor's boundary nodes (j < 3),
/// which gravity keeps moving down from the first substep on (v_y <=
/// -dt g), so they stay stopped throughout: no node switches between
/// stopped and free within the differences' reach (a switch would show as
/// a jump). The walls in x and z are 6 cells and more away.
#[test]
fn diffmpm3d_controller_gradient_matches_finite_differences() {
    let dx0 = check_gradient_3d(diffmpm3d::quadruped_scene(1), 16, &[(0, 1), (5, 0), (10, 3), (15, 2)]);
    // Moving every particle by d in x moves the mean by d, but for the fixed
    // grid under the particles (and the floor's stopped nodes): the x
    // adjoints sum to about -1 (-0.999993 over these 16 steps).
    let sum: f64 = dx0.iter().map(|g| g[0]).sum();
    assert!((sum + 1.0).abs() < 1e-4, "{sum}");
}

/// The liquid's coupling in the gradient: the coarse liquid scene (density
/// one) with the liquid block lowered onto the robot (its bottom 0.005
/// above the body's and the legs' tops), over 16 steps, so the liquid
/// pushes on the solid and the solid's motion (through the controller)
/// moves the liquid: both materials' stresses (neo-Hookean; the pressure
/// (J - 1) E with F = diag(sqrt J, sqrt J, 1)) are in the derivative. In
/// f64 against central differences; the contacts are the floor's as for
/// diffmpm3d.
#[test]
fn liquid_controller_gradient_matches_finite_differences() {
    let mut scene = Scene3::new(1);
    scene.quadruped(0.08);
    let mut rng = PyRandom::new(0);
    // The robot's top: 0.05 + 0.056; the liquid's bottom 0.005 above it.
    scene.add_rect(0.1, 0.111 - 0.05, 0.1, 0.2, 0.05, 0.2, -1, Some(&mut rng));
    let mpm = scene.mpm();
    assert!(mpm.mixed && mpm.n_solid == 385 && mpm.n_particles == 817, "{mpm:?}");
    let dx0 = check_gradient_3d(scene, 16, &[(0, 1), (6, 0), (9, 3), (14, 2)]);
    // The loss counts the solid only: the liquid moves it (two-way coupling)
    // when the liquid's initial positions have non-zero adjoints.
    let liquid = dx0[385..].iter().map(|g| g[0].abs() + g[1].abs() + g[2].abs()).fold(0.0, f64::max);
    assert!(liquid > 1e-4, "largest |dL/dx0| of a liquid particle: {liquid}");
}

/// The scenes are the originals' (their `add_rect` counts): 30495 solid
/// particles and 16 actuators for diffmpm3d; 15150 solid and 12996 liquid
/// for liquid. The liquid's points follow Python's `random.seed(0)`;
/// `random.random()` stream (its first values, from CPython).
#[test]
fn scenes_are_the_originals() {
    let robot = diffmpm3d::quadruped_scene(3);
    assert_eq!((robot.x.len(), robot.n_solid, robot.n_actuators), (30495, 30495, 16));
    assert!(!robot.mpm().mixed);
    let scene = liquid::liquid_scene(3, 0);
    let liquid = scene.particle_type.iter().filter(|&&t| t == 0).count();
    assert_eq!((scene.n_solid, liquid, scene.n_actuators), (15150, 12996, 16));
    assert!(scene.mpm().mixed);
    let mut r = PyRandom::new(0);
    let first: Vec<f64> = (0..3).map(|_| r.random()).collect();
    assert_eq!(first, [0.8444218515250481, 0.7579544029403025, 0.420571580830845]);
    assert_eq!(PyRandom::new(5).random(), 0.6229016948897019);
    assert_eq!(PyRandom::new((1 << 40) + 7).random(), 0.6137037779936511);
    // The first liquid point: (0.1 + r0 0.2, 0.15 + r1 0.05, 0.1 + r2 0.2) + offset.
    let p = scene.x[15150];
    let want = [0.1 + first[0] * 0.2 + 0.1, 0.15 + first[1] * 0.05 + 0.05, 0.1 + first[2] * 0.2 + 0.3];
    assert_eq!(p, want);
}

/// The original's gradient descent (learning rate 30) makes progress on a
/// short run of the coarse robot: 96 steps, 4 iterations.
#[test]
fn diffmpm3d_loss_falls() {
    let outcome = run_with("diffmpm3d", 4, &[("steps", "96"), ("density", "1")]).unwrap();
    let l = &outcome.losses;
    assert!((l[0] + 0.25).abs() < 0.02, "starts near -0.25 (the robot's centre x): {l:?}");
    assert!(l.windows(2).all(|w| w[1] < w[0]) && outcome.final_loss < l[3], "{l:?} then {}", outcome.final_loss);
}

/// The liquid example builds and runs one iteration (coarse, 32 steps),
/// and its first gradient step lowers the loss.
#[test]
fn liquid_runs_an_iteration() {
    let outcome = run_with("liquid", 1, &[("steps", "32"), ("density", "1")]).unwrap();
    let l = &outcome.losses;
    assert!(l.len() == 1 && l[0].is_finite() && (l[0] + 0.22).abs() < 0.03, "{l:?}");
    assert!(outcome.final_loss < l[0], "{l:?} then {}", outcome.final_loss);
}

#[test]
fn mpm3d_settings_are_checked() {
    for (name, key, value) in [("diffmpm3d", "steps", "1"), ("diffmpm3d", "steps", "513"), ("liquid", "density", "0"), ("liquid", "density", "4")] {
        match run_with(name, 1, &[(key, value)]) {
            Err(RunError::BadSetting { name: n, .. }) => assert_eq!(n, key),
            other => panic!("{name} {key}={value}: {other:?}"),
        }
    }
}
