//! The benchmark cases. Timings are medians of repeated runs, baseline and
//! DiffSim interleaved so both see the same machine state.

use ds_runtime::gradcheck::{fields, fields_without_grad, loop_kernel};
use ds_runtime::{Arg, CompileOptions, Error, Program};
use rayon::prelude::*;
use std::time::Instant;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times `f` once, in seconds.
pub fn time(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Median seconds of `run` on each of two builds, interleaved (A B A B)
/// over `rounds`.
pub fn compare(builds: &mut [Program; 2], rounds: usize, run: impl Fn(&mut Program) -> Result<(), Error>) -> Result<[f64; 2], Error> {
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (p, t) in builds.iter_mut().zip(&mut times) {
            let mut result = Ok(());
            t.push(time(|| result = run(p)));
            result?;
        }
    }
    let [a, b] = times;
    Ok([median(a), median(b)])
}

/// y = a*x + y over `n` f32 elements.
pub fn saxpy_source(n: usize) -> String {
    fields_without_grad(&[("x", "f32", &n.to_string()), ("y", "f32", &n.to_string())])
        + &loop_kernel(
            "saxpy",
            "%a: f32",
            Some(n),
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %y = "ds.load"(%i) {field = @y} : (index) -> f32
    %ax = arith.mulf %a, %x : f32
    %r = arith.addf %ax, %y : f32
    "ds.store"(%r, %i) {field = @y} : (f32, index) -> ()"#,
        )
}

pub fn saxpy() -> Result<(), Error> {
    let n = 10_000_000usize;
    let mut p = Program::new(&saxpy_source(n))?;
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    p.field_mut("x")?.copy_from(&xs)?;
    let mut ys = vec![0f32; n];
    let a = 0.5f32;
    let (mut ds, mut rs) = (Vec::new(), Vec::new());
    for _ in 0..41 {
        rs.push(time(|| ys.par_iter_mut().zip(xs.par_iter()).for_each(|(y, x)| *y += a * x)));
        ds.push(time(|| p.launch("saxpy", &[Arg::F32(a)]).expect("launch")));
    }
    let check: Vec<f32> = p.field("y")?.to_vec()?;
    assert!(check.iter().zip(&ys).all(|(d, r)| (d - r).abs() <= 1e-3 * r.abs().max(1.0)), "results differ");
    let (dmin, rmin) = (ds.iter().copied().fold(f64::MAX, f64::min), rs.iter().copied().fold(f64::MAX, f64::min));
    let (d, r) = (median(ds), median(rs));
    println!("diffsim_min_ms: {:.3}", dmin * 1e3);
    println!("rayon_min_ms: {:.3}", rmin * 1e3);
    println!("threads: {}", rayon::current_num_threads());
    println!("elements: {n}");
    println!("diffsim_ms: {:.3}", d * 1e3);
    println!("rayon_ms: {:.3}", r * 1e3);
    println!("diffsim_gb_per_s: {:.2}", 12.0 * n as f64 / d / 1e9);
    println!("saxpy_time_ratio_vs_rayon: {:.3}", d / r);
    Ok(())
}

/// An empty kernel, and one storing its argument in a one-element field.
fn tiny_source() -> String {
    fields_without_grad(&[("x", "f32", "1")])
        + "func.func @empty() attributes {ds.kernel} {\n  return\n}\n"
        + &loop_kernel("one", "%v: f32", Some(1), r#"    "ds.store"(%v, %i) {field = @x} : (f32, index) -> ()"#)
}

pub fn launch() -> Result<(), Error> {
    let mut p = Program::new(&tiny_source())?;
    let reps = 200_000;
    let per_launch = |p: &mut Program, name: &str, args: &[Arg]| -> Result<f64, Error> {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                p.launch(name, args)?;
            }
            runs.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        Ok(median(runs))
    };
    let empty = per_launch(&mut p, "empty", &[])?;
    let one = per_launch(&mut p, "one", &[Arg::F32(1.0)])?;
    assert_eq!(p.field("x")?.get::<f32>(&[0])?, 1.0);
    println!("empty_kernel_launch_us: {:.3}", empty * 1e6);
    println!("launch_overhead_us: {:.3}", one * 1e6);
    Ok(())
}

/// y = sin(x^2) + tanh(x) over 4M f32 elements, with adjoint fields.
fn elementwise_source() -> String {
    fields(&[("x", "f32", "4000000"), ("y", "f32", "4000000")])
        + &loop_kernel(
            "f",
            "",
            Some(4_000_000),
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %x2 = arith.mulf %x, %x : f32
    %s = math.sin %x2 : f32
    %t = math.tanh %x : f32
    %y = arith.addf %s, %t : f32
    "ds.store"(%y, %i) {field = @y} : (f32, index) -> ()"#,
        )
}

/// Forward and generated gradient of an elementwise kernel (4M f32,
/// y = sin(x^2) + tanh(x)).
pub fn grad_elementwise() -> Result<(), Error> {
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let mut p = Program::with_options(&elementwise_source(), "grad_elementwise", &options)?;
    let xs: Vec<f32> = (0..4_000_000).map(|i| (i % 2000) as f32 * 1e-3 - 1.0).collect();
    p.field_mut("x")?.copy_from(&xs)?;
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        p.field_mut("y_grad")?.fill(1.0f32)?;
        fwd.push(time(|| p.launch("f", &[]).expect("forward")));
        bwd.push(time(|| p.launch("f_grad", &[]).expect("backward")));
    }
    let g: f32 = p.field("x_grad")?.get(&[1234])?;
    let x = xs[1234];
    let want = 21.0 * (2.0 * x * (x * x).cos() + 1.0 - x.tanh().powi(2));
    assert!((g - want).abs() <= 1e-3 * want.abs().max(1.0), "gradient {g}, expected {want}");
    let (f, b) = (median(fwd), median(bwd));
    println!("forward_ms: {:.3}", f * 1e3);
    println!("backward_ms: {:.3}", b * 1e3);
    println!("grad_over_forward_time: {:.3}", b / f);
    Ok(())
}

const STENCIL: &str = include_str!("../../test/kernels/stencil.mlir");

/// The five-point stencil of `test/kernels/stencil.mlir` (64 x 48 f32, v =
/// laplacian(u) inside the border) launched 2000 times, against the same loop
/// in Rust; per-launch median and min. `ds-run test/kernels/stencil.mlir
/// --launch k --repeat 2000 --time` times the same launches.
pub fn stencil() -> Result<(), Error> {
    let (h, w) = (64usize, 48usize);
    let mut p = Program::with_options(STENCIL, "test/kernels/stencil.mlir", &CompileOptions::default())?;
    let us: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 1000) as f32 * 1e-3).collect();
    p.field_mut("u")?.copy_from(&us)?;
    let mut vs = vec![0f32; h * w];
    let rust = |vs: &mut [f32]| {
        for i in 1..h - 1 {
            for j in 1..w - 1 {
                let (a, b, c, d, e) = (us[(i - 1) * w + j], us[(i + 1) * w + j], us[i * w + j - 1], us[i * w + j + 1], us[i * w + j]);
                vs[i * w + j] = (a + b) + (c + d) - 4.0 * e;
            }
        }
    };
    let (mut ds, mut rs) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        rs.push(time(|| rust(std::hint::black_box(&mut vs))));
        ds.push(time(|| p.launch("k", &[]).expect("launch")));
    }
    // Back to back, as `ds-run --launch k --repeat 2000 --time` launches them
    // (interleaved with the Rust loop, the fields share the cache with its arrays).
    let alone: Vec<f64> = (0..2000).map(|_| time(|| p.launch("k", &[]).expect("launch"))).collect();
    let v: Vec<f32> = p.field("v")?.to_vec()?;
    assert!(v.iter().zip(&vs).all(|(a, b)| (a - b).abs() <= 1e-5), "results differ");
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let (dmin, rmin) = (min(&ds), min(&rs));
    let (d, r) = (median(ds), median(rs));
    println!("launches: 2000");
    println!("diffsim_min_us: {:.3}", dmin * 1e6);
    println!("rust_min_us: {:.3}", rmin * 1e6);
    println!("diffsim_back_to_back_min_us: {:.3}", min(&alone) * 1e6);
    println!("diffsim_back_to_back_us: {:.3}", median(alone) * 1e6);
    println!("diffsim_us: {:.3}", d * 1e6);
    println!("rust_us: {:.3}", r * 1e6);
    println!("stencil_time_ratio_vs_rust: {:.3}", d / r);
    Ok(())
}

/// Clearing a 128 MiB field (what backward does to each adjoint) against a
/// memset of a buffer of the same size, interleaved.
pub fn zero() -> Result<(), Error> {
    let n = 32 << 20;
    let mut p = Program::new(&fields_without_grad(&[("big", "f32", &n.to_string())]))?;
    let mut baseline = vec![1f32; n];
    p.field_mut("big")?.fill(1f32)?;
    let (mut ds, mut ms) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        ms.push(time(|| {
            // SAFETY: `baseline` holds `n` f32s; zero bytes are 0.0.
            unsafe { std::ptr::write_bytes(baseline.as_mut_ptr(), 0, n) };
            std::hint::black_box(&baseline);
        }));
        ds.push(time(|| p.field_mut("big").expect("field").zero()));
    }
    let check: Vec<f32> = p.field("big")?.to_vec()?;
    assert!(check.iter().all(|&v| v == 0.0), "the field is not zero");
    let (d, m) = (median(ds), median(ms));
    println!("bytes: {}", 4 * n);
    println!("zero_ms: {:.3}", d * 1e3);
    println!("memset_ms: {:.3}", m * 1e3);
    println!("zero_time_ratio_vs_memset: {:.3}", d / m);
    Ok(())
}
