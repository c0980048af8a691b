//! water_renderer (paper Fig. 6): dL/dinitial of the host's image loss, seeded
//! into the Tape from outside, against finite differences (f64); the loss
//! falls; the pictures; bad pictures and settings are errors.

use diffsim::ProgramBuilder;
use diffsim_examples::report::{Outcome, Reporter};
use diffsim_examples::water_renderer::{WaterRenderer, hidden_height, image_loss, pattern};
use diffsim_examples::wave::N_GRID;
use diffsim_examples::{RunError, RunOptions, find};
use std::path::PathBuf;

fn run(tag: &str, iters: usize, settings: &[(&str, &str)], target: Option<PathBuf>, pictures: bool) -> (Result<Outcome, RunError>, PathBuf) {
    let out = std::env::temp_dir().join(format!("diffsim-test-water-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(iters);
    opts.pictures = pictures;
    opts.target = target;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ((find("water_renderer").expect("registered").run)(&opts, &mut Reporter::new(false)), out)
}

/// In f64, 24 steps (the wave moves ~14 cells), from a smooth start that is
/// not the hidden field (samples move by several pixels; loss 0.086),
/// against the target of the hidden field: dL/dinitial, from dL/drendered
/// computed on the host and seeded with `backward_from`, agrees with
/// central differences at cells in and between the bumps and near three
/// edges. The loss is only piecewise smooth: the bilinear lookup's floor
/// switches cells where a sample crosses a pixel line, and the clamp at the
/// border; a cell's perturbation moves ~1000 samples, so some cells have a
/// switch within a small step (cell (8, 60) has one within 1e-6: its central
/// differences are off by 7e-4 at a step of 1e-5 and agree to 2e-7 at 1e-7).
/// The cells here have none within the step 1e-5, which is large enough
/// that the f64 rounding of the loss (~1e-16 of it) stays below 1e-7 of the
/// difference; the truncation error at 1e-5 is below 1e-7 too (measured:
/// the central differences at 1e-5 and 1e-6 agree to 1e-7 there):
/// tolerance 1e-5 relative.
#[test]
fn water_renderer_gradient_matches_finite_differences() {
    let steps = 24;
    let mut pb = ProgramBuilder::new();
    let sim = WaterRenderer::<f64>::new(&mut pb, steps, 1.0).unwrap();
    let mut p = pb.build().unwrap();
    sim.set_image(&mut p, &sim.bottom_image, &pattern(N_GRID)).unwrap();
    sim.wave.p.zero(&mut p).unwrap();
    sim.set_target_from_height(&mut p, &hidden_height(N_GRID)).unwrap();
    let start: Vec<f64> = (0..N_GRID * N_GRID)
        .map(|k| {
            let (i, j) = ((k / N_GRID) as f64 / N_GRID as f64, (k % N_GRID) as f64 / N_GRID as f64);
            0.3 * (-((i - 0.45).powi(2) + (j - 0.5).powi(2)) / 0.01).exp() + 0.02 * (9.0 * i + 5.0 * j).sin()
        })
        .collect();
    sim.wave.initial.copy_from(&mut p, &start).unwrap();
    let target = sim.target_image.to_vec(&p).unwrap();
    let g = sim.loss_and_grad(&mut p, &target).unwrap();
    assert!(g.loss > 1e-3 && g.loss.is_finite(), "loss {}", g.loss);
    assert!((g.loss - sim.loss(&mut p).unwrap()).abs() <= 1e-12, "recorded and plain forward differ");
    let grad = sim.wave.initial.grad().to_vec(&p).unwrap();
    let largest = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, j) in [(115, 128), (97, 107), (160, 180), (230, 200), (200, 20), (10, 128), (6, 60), (128, 245)] {
        let at = |p: &mut diffsim::Program, d: f64| {
            sim.wave.initial.set(p, [i, j], start[i * N_GRID + j] + d).unwrap();
            sim.loss(p).unwrap()
        };
        let h = 1e-5;
        let numeric = (at(&mut p, h) - at(&mut p, -h)) / (2.0 * h);
        at(&mut p, 0.0);
        let analytic = grad[i * N_GRID + j];
        assert!(analytic.abs() > 1e-3 * largest, "cell ({i}, {j}): gradient {analytic}, largest {largest}");
        assert!((analytic - numeric).abs() <= 1e-5 * numeric.abs(), "cell ({i}, {j}): {analytic} vs {numeric}");
    }
}

/// The host loss is the mean of (rendered - target)^2 and its gradient
/// 2 (rendered - target) / count.
#[test]
fn water_renderer_image_loss_is_the_mean_square() {
    let (loss, grad) = image_loss(&[1.0f64, 0.0, 0.5, 0.25], &[0.0, 0.0, 1.0, 0.25]);
    assert!((loss - 1.25 / 4.0).abs() < 1e-15, "{loss}");
    assert_eq!(grad, vec![0.5, 0.0, -0.25, 0.0]);
}

/// The default run (f32, 256 steps, the hidden field's target): the first
/// loss is the bottom image's against the target (initial = 0), and 3
/// iterations lower it each time; the pictures decode and are not blank.
#[test]
fn water_renderer_loss_falls_and_draws() {
    let (outcome, out) = run("falls", 3, &[], None, true);
    let outcome = outcome.unwrap();
    let l = &outcome.losses;
    assert_eq!(l.len(), 3);
    assert!(l[0] > 1e-3, "{l:?}");
    assert!(l[1] < l[0] && l[2] < l[1] && outcome.final_loss < l[2], "{outcome:?}");
    // Taichi 1.7 with the original kernels: 0.01271, 0.00393, 0.00187, then 0.00111.
    assert!(outcome.final_loss < 0.2 * l[0], "{outcome:?}");
    crate::assert_pictures(&outcome.files, &out, &["loss.png", "result.png", "water.gif"]);
    assert_eq!(outcome.files.iter().filter(|f| f.to_string_lossy().contains("water_0")).count(), 4, "{:?}", outcome.files);
    std::fs::remove_dir_all(out).ok();
}

/// `--target` and `--set bottom=` take pictures (here both the same: then
/// the start, initial = 0, renders the bottom image itself and the loss is
/// only the clamped border's); missing or undecodable files and bad rates
/// are clear errors.
#[test]
fn water_renderer_pictures_and_bad_inputs() {
    let dir = std::env::temp_dir().join(format!("diffsim-test-water-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let picture = dir.join("stripes.png");
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 128])).save(&picture).unwrap();
    let bottom = format!("{}", picture.display());
    let (outcome, out) = run("same", 1, &[("bottom", &bottom)], Some(picture.clone()), false);
    let outcome = outcome.unwrap();
    assert!(outcome.losses[0] < 1e-4, "{:?}", outcome.losses);
    std::fs::remove_dir_all(out).ok();
    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not a picture").unwrap();
    for bad in [dir.join("missing.png"), junk.clone()] {
        let (result, out) = run("badtarget", 1, &[], Some(bad.clone()), false);
        match result {
            Err(e @ RunError::Image { .. }) => assert!(e.to_string().contains(&bad.display().to_string()), "{e}"),
            other => panic!("{}: {other:?}", bad.display()),
        }
        std::fs::remove_dir_all(out).ok();
    }
    let (result, out) = run("badbottom", 1, &[("bottom", "/nonexistent/bottom.png")], None, false);
    assert!(matches!(result, Err(RunError::Image { .. })), "{result:?}");
    std::fs::remove_dir_all(out).ok();
    for rate in ["0", "-1", "x", "inf"] {
        let (result, out) = run("badrate", 1, &[("learning_rate", rate)], None, false);
        assert!(matches!(result, Err(RunError::BadSetting { .. })), "{rate}: {result:?}");
        std::fs::remove_dir_all(out).ok();
    }
    std::fs::remove_dir_all(dir).ok();
}
