//! wave (paper Fig. 5b, appendix D): dL/dinitial against finite differences
//! (undamped and damped, in f64), the optimization against the original's
//! losses, the damping setting, `--target` and the pictures.

use diffsim::ProgramBuilder;
use diffsim_examples::report::{Outcome, Reporter};
use diffsim_examples::wave::{N_GRID, Wave, taiji};
use diffsim_examples::{RunError, RunOptions, find};
use std::path::PathBuf;

fn run(iters: usize, settings: &[(&str, &str)], target: Option<PathBuf>, pictures: bool) -> (Result<Outcome, RunError>, PathBuf) {
    let tag = settings.iter().map(|(k, v)| format!("{k}{v}")).collect::<String>();
    let out = std::env::temp_dir().join(format!("diffsim-test-wave-{tag}-{pictures}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(iters);
    opts.pictures = pictures;
    opts.target = target;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ((find("wave").expect("registered").run)(&opts, &mut Reporter::new(false)), out)
}

/// sum dx^2 (picture - mean)^2: the loss of a zero initial field.
fn zero_field_loss(picture: &[f32]) -> f64 {
    let mean = picture.iter().map(|&v| v as f64).sum::<f64>() / picture.len() as f64;
    picture.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / picture.len() as f64
}

/// In f64, 30 steps from a smooth bump plus a ripple (so no cell's adjoint is
/// trivially zero), the taiji target: dL/dinitial at cells in the interior,
/// on an edge and in a corner (where the zero boundary cuts the stencil)
/// agrees with central differences. The scheme is linear and the loss
/// quadratic in `initial`, so central differences are exact for any step:
/// a step of 1 makes the rounding of the loss's sum (1e-15 of 0.2) 1e-12 of
/// the difference, and the tolerance is 1e-7 relative. Undamped and damped (alpha = 1e-3, which
/// builds the lap(p[t-2]) term).
#[test]
fn wave_gradient_matches_finite_differences() {
    let steps = 30;
    let start: Vec<f64> = (0..N_GRID * N_GRID)
        .map(|k| {
            let (i, j) = ((k / N_GRID) as f64 / N_GRID as f64, (k % N_GRID) as f64 / N_GRID as f64);
            0.3 * (-((i - 0.4).powi(2) + (j - 0.55).powi(2)) / 0.02).exp() + 0.05 * (17.0 * i + 5.0 * j).sin()
        })
        .collect();
    let picture = taiji(N_GRID);
    for damping in [0.0, 1e-3] {
        let mut pb = ProgramBuilder::new();
        let sim = Wave::<f64>::new(&mut pb, steps, damping).unwrap();
        let mut p = pb.build().unwrap();
        sim.set_target(&mut p, &picture).unwrap();
        sim.p.zero(&mut p).unwrap();
        sim.initial.copy_from(&mut p, &start).unwrap();
        let g = sim.loss_and_grad(&mut p, steps).unwrap();
        assert!(g.loss > 0.1 && g.loss.is_finite(), "loss {}", g.loss);
        let grad = sim.initial.grad().to_vec(&p).unwrap();
        for (i, j) in [(128, 128), (40, 200), (0, 77), (255, 255), (0, 0), (131, 255)] {
            let at = |p: &mut diffsim::Program, d: f64| {
                sim.initial.set(p, [i, j], start[i * N_GRID + j] + d).unwrap();
                sim.forward(p, steps, steps).unwrap()
            };
            let h = 1.0;
            let numeric = (at(&mut p, h) - at(&mut p, -h)) / (2.0 * h);
            at(&mut p, 0.0);
            let analytic = grad[i * N_GRID + j];
            assert!(analytic.abs() > 1e-7, "alpha {damping}, cell ({i}, {j}): gradient {analytic}");
            assert!((analytic - numeric).abs() <= 1e-7 * numeric.abs(), "alpha {damping}, cell ({i}, {j}): {analytic} vs {numeric}");
        }
    }
}

/// 10 of the original's 200 iterations from its zero initial field: the first
/// loss is the target's variance and the losses follow the original's under
/// Taichi 1.7 (with this target, one CPU thread: 0.238554, 0.223279, then
/// 0.152093 at iteration 9) to 5 digits.
#[test]
fn wave_loss_follows_the_original() {
    // One thread: the loss's atomic adds in the original's order.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (outcome, out) = pool.install(|| run(10, &[], None, false));
    let losses = outcome.unwrap().losses;
    assert_eq!(losses.len(), 10);
    assert!((losses[0] - zero_field_loss(&taiji(N_GRID))).abs() <= 1e-3 * losses[0], "{losses:?}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    for (k, taichi) in [(0, 0.23855434), (1, 0.22327922), (9, 0.15209311)] {
        assert!((losses[k] - taichi).abs() <= 1e-5 * taichi, "iteration {k}: {} vs Taichi's {taichi}", losses[k]);
    }
    std::fs::remove_dir_all(out).ok();
}

/// The damped variant (alpha = 1e-3: dt shrinks) optimizes too; `--target`
/// replaces the target (a half-dark picture, blurred at its edge by the
/// resize: loss 0.247 at iteration 0); the
/// pictures decode and are not blank; bad dampings are errors.
#[test]
fn wave_damping_target_and_pictures() {
    let dir = std::env::temp_dir().join(format!("diffsim-test-wave-target-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("half.png");
    image::GrayImage::from_fn(64, 64, |x, _| image::Luma([if x < 32 { 0 } else { 255 }])).save(&path).unwrap();
    let (outcome, out) = run(2, &[("damping", "1e-3")], Some(path.clone()), true);
    let outcome = outcome.unwrap();
    let picture = diffsim_examples::image::load_gray(&path, N_GRID, N_GRID).unwrap();
    assert!((outcome.losses[0] - zero_field_loss(&picture)).abs() < 1e-3 * outcome.losses[0], "{:?}", outcome.losses);
    assert!(outcome.losses[1] < outcome.losses[0] && outcome.final_loss < outcome.losses[1], "{outcome:?}");
    crate::assert_pictures(&outcome.files, &out, &["loss.png", "result.png", "frames.png"]);
    std::fs::remove_dir_all(out).ok();
    std::fs::remove_dir_all(dir).ok();
    for bad in ["-1", "x", "inf"] {
        let (result, out) = run(1, &[("damping", bad)], None, false);
        assert!(matches!(result, Err(RunError::BadSetting { .. })), "{bad}: {result:?}");
        std::fs::remove_dir_all(out).ok();
    }
}
