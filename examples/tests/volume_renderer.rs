//! volume_renderer (paper Fig. 7): the ray march against a host reference,
//! dL/d(density) against finite differences (f64), the optimization at a
//! small image size, the settings, `--set volume=FILE.npy` and the pictures.

use diffsim::{Program, ProgramBuilder};
use diffsim_examples::report::{Outcome, Reporter};
use diffsim_examples::volume_renderer::{Config, N_VIEWS, VolumeRenderer, load_volume, view_angle};
use diffsim_examples::{RunError, RunOptions, find};
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffsim-test-volume-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(what: &str, iters: usize, settings: &[(&str, &str)], pictures: bool) -> (Result<Outcome, RunError>, PathBuf) {
    let out = scratch(what);
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(iters);
    opts.pictures = pictures;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ((find("volume_renderer").expect("registered").run)(&opts, &mut Reporter::new(false)), out)
}

/// A small f64 renderer with the torus's targets rendered (the density is
/// left as the torus).
fn small(config: Config) -> (Program, VolumeRenderer<f64>) {
    let mut pb = ProgramBuilder::new();
    let sim = VolumeRenderer::<f64>::new(&mut pb, config).unwrap();
    let mut p = pb.build().unwrap();
    sim.set_torus_density(&mut p).unwrap();
    sim.render_targets(&mut p).unwrap();
    (p, sim)
}

/// The original's ray_march written again on the host, in f64:
/// image[view, y, x] for a density[z, y, x] of n^3 cells.
fn host_render(density: &[f64], n: usize, res: usize, steps: usize) -> Vec<f64> {
    let mut image = vec![0.0; N_VIEWS * res * res];
    for view in 0..N_VIEWS {
        let angle = view_angle(view);
        let camera = [angle.sin(), 0.0, angle.cos()];
        for x in 0..res {
            for y in 0..res {
                let half = res as f64 / 2.0;
                let d = [x as f64 / half - 1.0, y as f64 / half - 1.0, -1.0];
                let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                let d = d.map(|c| c / len);
                let dir = [d[0] * angle.cos() + d[2] * angle.sin(), d[1], -d[0] * angle.sin() + d[2] * angle.cos()];
                let mut sum = 0.0;
                for k in 0..steps {
                    let s = (k + 1) as f64 * 0.02;
                    let point: Vec<f64> = (0..3).map(|c| camera[c] + s * dir[c]).collect();
                    let cell = |c: usize| (((point[c] + 0.5) * n as f64).floor() as i64).clamp(0, n as i64 - 1) as usize;
                    if point.iter().all(|&q| (-0.5..0.5).contains(&q)) {
                        sum += density[(cell(2) * n + cell(1)) * n + cell(0)];
                    }
                }
                image[(view * res + y) * res + x] = sum;
            }
        }
    }
    image
}

/// The torus (radii 0.4, 0.1, x and y swapped) sampled at cell corners, as
/// the original's create_torus_density.
fn host_torus(n: usize) -> Vec<f64> {
    let mut density = vec![0.0; n * n * n];
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let (x, y, z) = (k as f64 / n as f64 - 0.5, j as f64 / n as f64 - 0.5, i as f64 / n as f64 - 0.5);
                let q = (y * y + z * z).sqrt() - 0.4;
                if (q * q + x * x).sqrt() - 0.1 < 0.0 {
                    density[(i * n + j) * n + k] = 1.0 / n as f64;
                }
            }
        }
    }
    density
}

/// The kernels' torus and its 7 renderings (8 x 8 pixels, the original's
/// 1000 steps) equal the host's, to rounding.
#[test]
fn volume_renderer_march_matches_a_host_reference() {
    let config = Config { res: 8, density_res: 16, steps: 1000 };
    let (p, sim) = small(config);
    let torus = host_torus(16);
    assert_eq!(sim.density.to_vec(&p).unwrap(), torus);
    assert!(torus.iter().filter(|&&d| d > 0.0).count() > 20, "the torus has cells");
    let want = host_render(&torus, 16, 8, 1000);
    let got = sim.target_images.to_vec(&p).unwrap();
    assert!(want.iter().filter(|&&v| v > 0.0).count() > 50, "the torus is seen: {want:?}");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-12, "pixel {k}: {g} vs {w}");
    }
}

/// In f64 on 8 x 8 images of a 16^3 density (the original's 1000 steps: the
/// march's carried sum differentiates without an AD stack), from a density that
/// is not the target's: dL/d(density) at the centre cell (crossed by the
/// central ray of every view), at the cells of the largest gradients, and at
/// a corner cell no ray crosses (gradient 0; the rays outside the box read
/// the clamped corner cells with flag 0) agrees with central differences.
/// The images are linear and the loss quadratic in the density, so central
/// differences are exact up to rounding for any step (no contact-like
/// switch: the cells a ray visits do not depend on the density); step 1e-2
/// (densities are ~0.06), tolerance 1e-7 relative.
#[test]
fn volume_renderer_gradient_matches_finite_differences() {
    let n = 16;
    let (mut p, sim) = small(Config { res: 8, density_res: n, steps: 1000 });
    let start: Vec<f64> = host_torus(n)
        .iter()
        .enumerate()
        .map(|(c, &t)| 0.5 * t + 0.02 * (1.0 + ((c % 7) as f64 * 0.9 + (c / 97) as f64 * 0.3).sin()))
        .collect();
    sim.density.copy_from(&mut p, &start).unwrap();
    let (loss, _) = sim.loss_and_grad(&mut p).unwrap();
    assert!(loss > 1e-4 && loss.is_finite(), "loss {loss}");
    let grad = sim.density.grad().to_vec(&p).unwrap();
    let cell = |z: usize, y: usize, x: usize| (z * n + y) * n + x;
    let mut by_size: Vec<usize> = (0..grad.len()).collect();
    by_size.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
    let mut cells = vec![cell(8, 8, 8), cell(0, 15, 15)];
    cells.extend(&by_size[..3]);
    for c in cells {
        let at = |p: &mut Program, d: f64| {
            sim.density.set(p, [c / (n * n), c / n % n, c % n], start[c] + d).unwrap();
            sim.forward(p).unwrap()
        };
        let h = 1e-2;
        let numeric = (at(&mut p, h) - at(&mut p, -h)) / (2.0 * h);
        at(&mut p, 0.0);
        let analytic = grad[c];
        if c == cell(0, 15, 15) {
            assert!(analytic == 0.0 && numeric.abs() < 1e-15, "corner: {analytic} vs {numeric}");
        } else {
            assert!(analytic.abs() > 1e-3, "cell {c}: gradient {analytic}");
            assert!((analytic - numeric).abs() <= 1e-7 * numeric.abs(), "cell {c}: {analytic} vs {numeric}");
        }
    }
}

/// The original's optimization (learning rate 15, clamp at 0, 128^3 density
/// from 0, 1000 steps) on 32 x 32 images: the first loss is that of an
/// empty volume, sum over views of mean(target^2), and 5 iterations lower
/// it monotonically by over 10x. (The learning rate is the original's for
/// 512 x 512 images: each pixel's weight in the loss is 1/res^2, so with
/// 16 x 16 images the steps along one ray already overshoot and the loss
/// oscillates; 32 x 32 is the smallest power of 2 that converges.)
#[test]
fn volume_renderer_loss_falls() {
    let (outcome, out) = run("falls", 5, &[("res", "32")], false);
    let outcome = outcome.unwrap();
    let losses = &outcome.losses;
    assert_eq!(losses.len(), 5);
    let mut pb = ProgramBuilder::new();
    let sim = VolumeRenderer::<f64>::new(&mut pb, Config { res: 32, ..Config::default() }).unwrap();
    let mut p = pb.build().unwrap();
    sim.set_torus_density(&mut p).unwrap();
    sim.render_targets(&mut p).unwrap();
    let empty: f64 = sim.target_images.to_vec(&p).unwrap().iter().map(|t| t * t).sum::<f64>() / (32.0 * 32.0);
    assert!((losses[0] - empty).abs() <= 1e-5 * empty, "{} vs {empty}", losses[0]);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert!(outcome.final_loss < 0.1 * losses[0], "{losses:?} then {}", outcome.final_loss);
    std::fs::remove_dir_all(out).ok();
}

fn write_npy(path: &Path, shape: &[u64], values: &[f32]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(&mut file).begin_nd().unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// `--set volume=FILE.npy`: read flipped in j as the original's fill_density,
/// and the run optimizes toward its renderings; a wrong shape is an error
/// naming it; bad settings are errors; the pictures decode and are not blank.
#[test]
fn volume_renderer_settings_volume_file_and_pictures() {
    let dir = scratch("npy");
    // A ball of radius 0.25 (density 1/128, rising with j), at the
    // original's 128^3 (the learning rate is too large for coarse grids).
    let n = 128;
    let volume: Vec<f32> = (0..n * n * n)
        .map(|c| {
            let (i, j, k) = (c / (n * n), c / n % n, c % n);
            let r2 = [i, j, k].iter().map(|&a| (a as f32 - 63.5).powi(2)).sum::<f32>();
            if r2 < 32.0 * 32.0 { (1.0 + j as f32 / 128.0) / 128.0 } else { 0.0 }
        })
        .collect();
    let path = dir.join("ball.npy");
    write_npy(&path, &[n as u64; 3], &volume);
    let density = load_volume(&path, n).unwrap();
    for (c, &d) in density.iter().enumerate() {
        let (i, j, k) = (c / (n * n), c / n % n, c % n);
        assert_eq!(d, volume[(i * n + n - 1 - j) * n + k], "cell {c}");
    }
    let file = path.to_string_lossy().into_owned();
    let (outcome, out) = run("npy-run", 3, &[("res", "32"), ("volume", &file)], true);
    let outcome = outcome.unwrap();
    assert!(outcome.losses[0] > 1e-4 && outcome.losses[2] < outcome.losses[0], "{:?}", outcome.losses);
    crate::assert_pictures(&outcome.files, &out, &["loss.png", "views.png"]);
    std::fs::remove_dir_all(out).ok();
    // A volume of another size than the density.
    let (result, out) = run("npy-shape", 1, &[("res", "8"), ("steps", "10"), ("density_res", "8"), ("volume", &file)], false);
    match result {
        Err(e @ RunError::Params { .. }) => assert!(e.to_string().contains("shape [128, 128, 128]"), "{e}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(out).ok();
    for (name, bad) in [("res", "0"), ("steps", "x"), ("density_res", "-1"), ("volume", "bunny")] {
        let (result, out) = run("bad", 1, &[("res", "8"), ("steps", "10"), (name, bad)], false);
        assert!(matches!(result, Err(RunError::BadSetting { .. })), "{name}={bad}: {result:?}");
        std::fs::remove_dir_all(out).ok();
    }
    std::fs::remove_dir_all(dir).ok();
}
