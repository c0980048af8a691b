//! DiffTaichi's `volume_renderer.py` (paper Fig. 7): a differentiable volume
//! renderer. Rays from 7 cameras march through a 128^3 density grid and add
//! up the density they pass; gradient descent on the whole grid so that its
//! 7 renderings match 7 target images.
//!
//! Scene facts, from the original: the density `density[z, y, x]` fills the
//! unit box [-0.5, 0.5]^3, 128 cells a side (`--set density_res=N`); 7 views,
//! view v at angle pi/7 v - pi/2, the camera on the circle of radius 1 in the
//! x-z plane, at (sin a, 0, cos a), looking at the origin; images 512 x 512
//! (`--set res=N`), image[view, y, x]; pixel (x, y) shoots the ray
//! d = (x/(res/2) - 1, y/(res/2) - 1, -1) (fov 1), normalized, rotated about
//! the y axis by the angle; 1000 marching steps (`--set steps=N`) of dx 0.02:
//! point k = camera + (k + 1) dx d; the cell is floor((point + 0.5) 128),
//! clamped to the grid, and it counts (flag 1) only while the point is inside
//! the box; pixel = sum over k of density[cell] * flag. Loss = sum over the
//! views of the mean squared difference of image and target. Gradient
//! descent with learning rate 15 on the density, then clamped at >= 0 (the
//! original's apply_grad); the density starts at 0; 100 iterations; single
//! precision.
//!
//! The ray march is written with a carried accumulator in the inner serial
//! loop (`acc += density * flag`, then one store per pixel); the original adds
//! every step's contribution to the image field (`+=` on a zeroed field): in
//! f32 the same sum in the same order. The ray's direction, invariant in the
//! loop, is computed once per pixel (the original recomputes it every step:
//! the same values). The sum is a pure accumulator, so its gradient needs no
//! AD stack for the 1000 steps. `density * flag` is written
//! `if inside { density } else { 0.0 }` (the same value and gradient).
//! The loss adds each image row's sum (a carried per-row accumulator) to
//! `loss`, where the original adds every pixel's term: in f32 one thread's
//! sequential sum of the 7 x 512 x 512 terms is 1.7e-3 low at iteration 0
//! (6.05707e-3 for the exact 6.067146e-3), while Taichi's own thread-local
//! reduction of that `+=` gets 6.067146e-3; the row sums get 6.067148e-3.
//! The gradient is the same either way.
//!
//! Departure: the targets. The original renders them from a scanned bunny
//! (`bunny_128.bin`, downloaded from the net); there is no such asset here,
//! so the targets are rendered from the original's own
//! `create_torus_density` (a torus of radii 0.4 and 0.1 standing in the
//! y-z plane: x and y swapped; density 1/density_res inside), which the original
//! has but leaves commented out. `--set volume=FILE.npy` renders them from a
//! density_res^3 float32 array instead, read as the original's fill_density
//! reads the bunny (density[i, j, k] = volume[i, n - 1 - j, k]), so
//! `np.save('bunny.npy', np.fromfile('bunny_128.bin', np.float32).reshape(128, 128, 128))`
//! gives the original's targets. There are no random numbers (`--seed`
//! changes nothing: the density starts at 0 as the original's). The original
//! writes every iteration's 7 renderings; here (pictures on) one PNG holds
//! the 7 targets over the 7 renderings after the last update, normalized as
//! the original (img / max, then 1 - img), and the loss curve. The kernels
//! are generic over the float type: f32 as the original, f64 for the
//! finite-difference test.
//!
//! Port check against Taichi 1.7 (one CPU thread; a copy of the original
//! with `create_torus_density()` in place of the bunny and res/steps from
//! the environment): at res 128, 1000 steps, the torus density, the 7
//! targets, dL/d(density) at iteration 0, the renderings at iteration 1 and
//! the density after 20 iterations are bit-identical to the original's; the
//! printed losses agree to 5-7 digits (0.006085791 -> 0.0002313772 over 20
//! iterations), the difference being the f32 sum of the loss (iteration 1:
//! exact 4.690982e-3, Taichi 4.690926e-3, here 4.690975e-3). At res 512 the
//! targets are bit-identical and the first losses 6.067148e-3 here,
//! 6.067146e-3 there. The full run (100 iterations) ends at 1.239e-4
//! (iteration 99; 1.227e-4 after the last update: 49x lower).
//!
//! Performance (`diffsim bench volume_renderer --threads 1` against
//! taichi_run.py, both at the original's size on one pinned core): 4.2-4.5 s
//! against 48-51 s an iteration (11-12x). ray_march and its gradient take
//! half each. 98% of the steps lie outside the box (flag 0: a ray is inside
//! for 19 of its 1000 steps on average, many miss it); at about 0.9 ns a
//! step (bounded by the serial f32 add of the carried sum) they take about
//! three quarters of the time (measured at res 128 with 100, 200, 1000 and
//! 3000 steps: 5.8, 8.2, 20.2, 52.6 ms a view); a step inside costs 10-15 ns
//! (the density load from the 8 MB grid; in the gradient the add to its
//! adjoint). Taichi recomputes the ray every step and adds every step to
//! the image field.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{Real, RunError, RunOptions, Setting, Simulation, plot};
use diffsim::prelude::*;
use diffsim::Scalar;
use std::path::{Path, PathBuf};

pub const N_VIEWS: usize = 7;
const DX: f64 = 0.02;
const TORUS_R1: f64 = 0.4;
const TORUS_R2: f64 = 0.1;
const LEARNING_RATE: f64 = 15.0;
const ITERATIONS: usize = 100;

type Grid<T> = ScalarField<T, 3>;

// --- the original's kernels ---
/// Renders view `view` (camera angle `angle`) of `density` into
/// `image[view, y, x]`: `res` x `res` rays (in parallel), `steps` steps each
/// (a serial loop carrying the sum).
#[kernel]
fn ray_march<T: Scalar>(density: &Grid<T>, image: &Grid<T>, res: &usize, density_res: &usize, steps: &usize, angle: f64, view: usize) {
    for pixel in 0..(*res * *res) {
        let x = pixel / *res;
        let y = pixel - x * *res;
        let angle = angle as T;
        let (sin_a, cos_a) = (angle.sin(), angle.cos());
        let half = *res as f64 / 2.0;
        // The ray through pixel (x, y), fov 1, normalized, then rotated.
        let d0 = (x as T) / half - 1.0;
        let d1 = (y as T) / half - 1.0;
        let length = (d0 * d0 + d1 * d1 + 1.0).sqrt();
        let (d0, d1, d2) = (d0 / length, d1 / length, -1.0 / length);
        let rotated_x = d0 * cos_a + d2 * sin_a;
        let rotated_z = -d0 * sin_a + d2 * cos_a;
        let n = *density_res as i32;
        let cells = *density_res as f64;
        let mut acc = 0.0 as T;
        for k in 0..*steps {
            let s = ((k + 1usize) as T) * DX;
            let (px, py, pz) = (sin_a + s * rotated_x, s * d1, cos_a + s * rotated_z);
            // The density cell, clamped to the grid.
            let ix = max(0, min(((px + 0.5) * cells).floor() as i32, n - 1));
            let iy = max(0, min(((py + 0.5) * cells).floor() as i32, n - 1));
            let iz = max(0, min(((pz + 0.5) * cells).floor() as i32, n - 1));
            // The original's density * flag, flag = in_box(point).
            let inside = px >= -0.5 && px < 0.5 && py >= -0.5 && py < 0.5 && pz >= -0.5 && pz < 0.5;
            acc += if inside { density[(iz as usize, iy as usize, ix as usize)] } else { 0.0 };
        }
        image[(view, y, x)] = acc;
    }
}

/// loss += mean over the pixels of view `view` of (image - target)^2, one
/// row's sum at a time (see the module doc).
#[kernel]
fn compute_loss<T: Scalar>(images: &Grid<T>, target: &Grid<T>, loss: &ScalarField<T, 0>, res: &usize, view: usize) {
    for i in 0..*res {
        let mut row = 0.0 as T;
        for j in 0..*res {
            let d = images[(view, i, j)] - target[(view, i, j)];
            row += d * d * (1.0 / ((*res * *res) as f64));
        }
        loss[()] += row;
    }
}

/// The original's create_torus_density: 1/n inside the torus of radii 0.4
/// and 0.1 about the x axis (the original swaps x and y), 0 outside.
#[kernel(no_grad)]
fn create_torus_density<T: Scalar>(density: &Grid<T>, density_res: &usize) {
    for i in 0..*density_res {
        for j in 0..*density_res {
            for k in 0..*density_res {
                let inv = 1.0 / (*density_res as f64);
                let x = (k as T) * inv - 0.5;
                let y = (j as T) * inv - 0.5;
                let z = (i as T) * inv - 0.5;
                // in_torus(y, x, z)
                let len_xz = (y * y + z * z).sqrt();
                let qx = len_xz - TORUS_R1;
                let len_q = (qx * qx + x * x).sqrt();
                let dist = len_q - TORUS_R2;
                density[(i, j, k)] = if dist < 0.0 { (1.0 as T) * inv } else { 0.0 };
            }
        }
    }
}

/// The original's apply_grad: gradient descent, then density >= 0.
#[kernel(no_grad)]
fn apply_grad<T: Scalar>(density: &GradField<T, 3>, density_res: &usize, learning_rate: &f64) {
    for i in 0..*density_res {
        for j in 0..*density_res {
            for k in 0..*density_res {
                let v = density[(i, j, k)] - *learning_rate * density.grad()[(i, j, k)];
                density[(i, j, k)] = max(v, 0.0);
            }
        }
    }
}
// --- end of the original's kernels ---

/// The sizes (the original's: 512, 128, 1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Image pixels per side.
    pub res: usize,
    /// Density cells per side.
    pub density_res: usize,
    /// Marching steps per ray.
    pub steps: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config { res: 512, density_res: 128, steps: 1000 }
    }
}

/// The camera angle of view `view`, as the original computes it (in double
/// precision, then rounded to the kernel's float type).
pub fn view_angle(view: usize) -> f64 {
    std::f64::consts::PI / N_VIEWS as f64 * view as f64 - std::f64::consts::PI / 2.0
}

/// The renderer's fields and kernels, in float type `T`.
pub struct VolumeRenderer<T: Real> {
    pub config: Config,
    /// density[z, y, x], the optimized field.
    pub density: GradField<T, 3>,
    /// target_images[view, y, x].
    pub target_images: Field<T, 3>,
    /// images[view, y, x], rendered from `density`.
    pub images: GradField<T, 3>,
    pub loss: GradField<T, 0>,
    ray_march: Kernel<(f64, usize)>,
    render_target: Kernel<(f64, usize)>,
    compute_loss: Kernel<usize>,
    create_torus_density: Kernel<()>,
    apply_grad: Kernel<()>,
}

impl<T: Real> VolumeRenderer<T> {
    pub fn new(pb: &mut ProgramBuilder, config: Config) -> Result<VolumeRenderer<T>, Error> {
        let Config { res, density_res, steps } = config;
        let density = pb.field_with_grad("density", [density_res; 3]);
        let target_images = pb.field("target_images", [N_VIEWS, res, res]);
        let images = pb.field_with_grad("images", [N_VIEWS, res, res]);
        let loss = pb.field_with_grad("loss", []);
        Ok(VolumeRenderer {
            ray_march: pb.kernel(ray_march(&density, &images, &res, &density_res, &steps))?,
            render_target: pb.kernel(ray_march(&density, &target_images, &res, &density_res, &steps).and_then(|k| k.renamed("render_target")))?,
            compute_loss: pb.kernel(compute_loss(&images, &target_images, &loss, &res))?,
            create_torus_density: pb.kernel(create_torus_density(&density, &density_res))?,
            apply_grad: pb.kernel(apply_grad(&density, &density_res, &LEARNING_RATE))?,
            config,
            density,
            target_images,
            images,
            loss,
        })
    }

    /// The original's create_torus_density, into `density`.
    pub fn set_torus_density<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        self.create_torus_density.launch(p, ())
    }

    /// The original's create_target_images: renders the 7 views of the
    /// present density into `target_images`.
    pub fn render_targets<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        (0..N_VIEWS).try_for_each(|view| self.render_target.launch(p, (view_angle(view), view)))
    }

    /// The original's forward: each view rendered, then its loss added.
    fn render(&self, mut launch: impl FnMut(&Kernel<(f64, usize)>, &Kernel<usize>, usize) -> Result<(), Error>) -> Result<(), Error> {
        (0..N_VIEWS).try_for_each(|view| launch(&self.ray_march, &self.compute_loss, view))
    }

    /// The loss of the present density.
    pub fn forward<B: Backend>(&self, p: &mut B) -> Result<f64, Error> {
        self.loss.zero(p)?;
        self.render(|march, loss, view| {
            march.launch(p, (view_angle(view), view))?;
            loss.launch(p, view)
        })?;
        Ok(self.loss.get(p, [])?.into())
    }

    /// The loss and dL/d(density) (in `density.grad()`), with the forward
    /// and backward milliseconds: the Tape records the 7 views' march and
    /// loss launches and replays their gradients in reverse.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B) -> Result<(f64, [f64; 2]), Error> {
        let mut clock = Stopwatch::start();
        self.loss.zero(p)?;
        let mut rec = p.record_without_state();
        self.render(|march, loss, view| {
            rec.launch(march, (view_angle(view), view))?;
            rec.launch(loss, view)
        })?;
        let loss = self.loss.get(rec.program(), [])?.into();
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        Ok((loss, [fwd_ms, clock.lap()]))
    }

    /// One iteration of the original: the loss, its gradient, apply_grad.
    pub fn step<B: Backend>(&self, p: &mut B) -> Result<(f64, [f64; 2]), Error> {
        let (loss, ms) = self.loss_and_grad(p)?;
        self.apply_grad.launch(p, ())?;
        Ok((loss, ms))
    }
}

/// Reads a density_res^3 float32 `.npy` as the original's fill_density reads
/// its volume: density[i, j, k] = volume[i, n - 1 - j, k].
pub fn load_volume(path: &Path, n: usize) -> Result<Vec<f32>, RunError> {
    let problem = |problem: String| RunError::Params { path: path.to_path_buf(), array: "volume".into(), problem };
    let file = std::fs::File::open(path).map_err(RunError::io(path))?;
    let array = npyz::NpyFile::new(std::io::BufReader::new(file)).map_err(|e| problem(e.to_string()))?;
    let shape: Vec<usize> = array.shape().iter().map(|&d| d as usize).collect();
    if shape != [n; 3] {
        return Err(problem(format!("shape {shape:?}, but the density has shape {:?}", [n; 3])));
    }
    if array.dtype() != npyz::DType::Plain("<f4".parse().expect("a numpy type string")) {
        return Err(problem(format!("dtype {}, expected float32 (<f4)", array.dtype().descr())));
    }
    if array.order() != npyz::Order::C {
        return Err(problem("Fortran order; expected a C-ordered array".into()));
    }
    let volume: Vec<f32> = array.into_vec().map_err(|e| problem(e.to_string()))?;
    let mut density = vec![0.0; n * n * n];
    for i in 0..n {
        for j in 0..n {
            let (to, from) = ((i * n + j) * n, (i * n + n - 1 - j) * n);
            density[to..to + n].copy_from_slice(&volume[from..from + n]);
        }
    }
    Ok(density)
}

fn positive(opts: &RunOptions, name: &str) -> Result<usize, RunError> {
    let v: usize = opts.setting(name)?;
    if v == 0 {
        return Err(RunError::BadSetting { name: name.into(), value: v.to_string(), expected: "a positive integer" });
    }
    Ok(v)
}

impl Simulation for VolumeRenderer<f32> {
    const SETTINGS: &'static [Setting] = &[
        Setting { name: "res", default: "512", help: "image pixels per side (the original's 512)" },
        Setting { name: "density_res", default: "128", help: "density cells per side (the original's 128)" },
        Setting { name: "steps", default: "1000", help: "marching steps of 0.02 per ray (the original's 1000)" },
        Setting {
            name: "volume",
            default: "torus",
            help: "the targets' volume: torus (the original's create_torus_density) or a density_res^3 float32 FILE.npy (read as fill_density)",
        },
    ];

    fn declare(pb: &mut ProgramBuilder, opts: &RunOptions) -> Result<VolumeRenderer<f32>, RunError> {
        let config = Config { res: positive(opts, "res")?, density_res: positive(opts, "density_res")?, steps: positive(opts, "steps")? };
        Ok(VolumeRenderer::new(pb, config)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.density.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, opts: &RunOptions) -> Result<(), RunError> {
        // The original's main: fill the density with the volume, render the
        // targets, clear the density.
        let volume: String = opts.setting("volume")?;
        if volume == "torus" {
            self.set_torus_density(p)?;
        } else if volume.ends_with(".npy") {
            self.density.copy_from(p, &load_volume(Path::new(&volume), self.config.density_res)?)?;
        } else {
            return Err(RunError::BadSetting { name: "volume".into(), value: volume, expected: "torus or a FILE.npy" });
        }
        self.render_targets(p)?;
        Ok(self.density.zero(p)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let iters = opts.iters.unwrap_or(ITERATIONS);
        let mut out = Outcome::default();
        report.start(iters);
        for iter in 0..iters {
            let (loss, [fwd_ms, bwd_ms]) = self.step(p)?;
            out.losses.push(loss);
            report.iteration(iter, loss, fwd_ms, bwd_ms);
        }
        report.finish();
        // The renderings (and loss) of the optimized density.
        out.final_loss = self.forward(p)?;
        if let (Some(first), true) = (out.losses.first(), out.final_loss > 0.0) {
            out.results.push(("loss: first / final".into(), format!("{:.4e} / {:.4e} ({:.2}x lower)", first, out.final_loss, first / out.final_loss)));
        }
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "volume_renderer: sum over views of mean (image - target)^2", &out.losses)?);
            out.files.push(self.pictures(p, &opts.out)?);
        }
        Ok(out)
    }
}

impl VolumeRenderer<f32> {
    /// `views.png`: the 7 targets (top row) over the 7 renderings of the
    /// present density (bottom row), each as the original writes it:
    /// 1 - img / max(img) (white where no density is seen).
    fn pictures<B: Backend>(&self, p: &B, dir: &Path) -> Result<PathBuf, RunError> {
        let res = self.config.res;
        let gap = 4;
        let side = res + gap;
        let (targets, images) = (self.target_images.to_vec(p)?, self.images.to_vec(p)?);
        let normalized = |all: &[f32]| -> Vec<u8> {
            all.chunks(res * res)
                .flat_map(|view| {
                    let m = view.iter().copied().fold(0.0f32, f32::max);
                    view.iter().map(move |&v| (255.0 * (1.0 - if m > 0.0 { v / m } else { v })).clamp(0.0, 255.0) as u8)
                })
                .collect()
        };
        let rows = [normalized(&targets), normalized(&images)];
        let img = image::GrayImage::from_fn((N_VIEWS * side - gap) as u32, (2 * side - gap) as u32, |px, py| {
            let (px, py) = (px as usize, py as usize);
            let (view, x, row, y) = (px / side, px % side, py / side, py % side);
            image::Luma([if x < res && y < res { rows[row][(view * res + y) * res + x] } else { 128 }])
        });
        let path = dir.join("views.png");
        img.save(&path).map_err(|e| RunError::Plot { path: path.clone(), message: e.to_string() })?;
        Ok(path)
    }
}
