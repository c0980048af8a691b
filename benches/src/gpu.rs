//! The GPU cases: `gpu-check` runs every kernel of `test/kernels` and its
//! generated gradient on the CPU and on the GPU from the same inputs and
//! compares every field, then runs a checkpointing Tape on both, then
//! rounds of a sparse field's life (cells activated by kernel writes,
//! a struct_for over them, its gradient, blocks deactivated and collected)
//! on both; `saxpy --arch cuda` (64M f32) measures bandwidth against a
//! device-to-device copy in the same run.

use crate::cases::{median, saxpy_source, time};
use ds_runtime::cuda::CudaProgram;
use ds_runtime::gradcheck::{Rng, corpus};
use ds_runtime::tape::checkpoint::Binomial;
use ds_runtime::{Arg, Backend, CompileOptions, ElemType, Element, Error, Program, Tape};

/// f32 results may differ by summation order and math library ulps.
const TOLERANCE: f64 = 1e-5;

/// Every element of field `name` of a program on any backend.
fn values<T: Element, B: Backend>(p: &B, name: &str) -> Result<Vec<T>, Error> {
    let field = p.field_index(name)?;
    let mut out = vec![T::default(); p.field_infos()[field].len()];
    p.read(field, 0, &mut out)?;
    Ok(out)
}

fn device_values(gpu: &CudaProgram, name: &str, elem: ElemType) -> Result<Vec<f64>, Error> {
    Ok(match elem {
        ElemType::F32 => values::<f32, _>(gpu, name)?.into_iter().map(f64::from).collect(),
        ElemType::F64 => values::<f64, _>(gpu, name)?,
        ElemType::I32 => values::<i32, _>(gpu, name)?.into_iter().map(f64::from).collect(),
    })
}

/// The largest difference between CPU and GPU over every field.
fn compare(cpu: &Program, gpu: &CudaProgram) -> Result<(f64, String), Error> {
    let mut worst = (0.0, String::new());
    for f in cpu.fields() {
        let d = device_values(gpu, &f.info.name, f.info.elem)?;
        for (i, (a, b)) in f.to_f64_vec().iter().zip(&d).enumerate() {
            let err = (a - b).abs() / a.abs().max(1.0);
            if err > worst.0 {
                worst = (err, format!("@{}[{i}]: cpu {a}, gpu {b}", f.info.name));
            }
        }
    }
    Ok(worst)
}

pub fn gpu_check() -> Result<(), Error> {
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let files = corpus(std::path::Path::new("test/kernels")).map_err(|e| match e {
        Error::Io { path, source } => Error::Io { path: format!("{path} (run from the repository root)"), source },
        e => e,
    })?;
    let mut passed = 0;
    for (name, src) in &files {
        let mut cpu = Program::with_options(src, name, &options)?;
        let mut gpu = CudaProgram::new(src, name, &options)?;
        let mut rng = Rng(7);
        for (i, f) in cpu.fields_mut().iter_mut().enumerate() {
            let values: Vec<f32> = (0..f.info.len()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
            if f.info.elem == ElemType::F32 {
                f.copy_from(&values)?;
                gpu.write(i, 0, &values)?;
            }
        }
        cpu.launch("k", &[])?;
        gpu.launch("k", &[])?;
        let forward = compare(&cpu, &gpu)?;
        cpu.launch("k_grad", &[])?;
        gpu.launch("k_grad", &[])?;
        let backward = compare(&cpu, &gpu)?;
        let ok = forward.0 <= TOLERANCE && backward.0 <= TOLERANCE;
        passed += usize::from(ok);
        println!("{name}: forward_max_rel_diff {:.2e} {}", forward.0, forward.1);
        println!("{name}: gradient_max_rel_diff {:.2e} {}", backward.0, backward.1);
    }
    let tape_diff = tape_check()?;
    let tape_ok = tape_diff <= 1e-9;
    println!("tape_binomial_gradient_max_diff_vs_largest: {tape_diff:.2e}");
    let sparse = sparse_check()?;
    println!("gpu_check_kernels_passed: {passed}/{}", files.len());
    if passed != files.len() || !tape_ok || !sparse {
        return Err(Error::Internal(format!("gpu-check: CPU and GPU differ by more than {TOLERANCE}")));
    }
    Ok(())
}

/// 200 steps of overwritten state through a checkpointing Tape (binomial, 5
/// snapshots) on `p`.
fn tape_backward<D: Backend>(p: &mut D) -> Result<(), Error> {
    let mut tape = Tape::<D>::new();
    for step in 0..200 {
        if step > 0 {
            tape.end_step();
        }
        tape.launch(p, "advance", &[])?;
        tape.launch(p, "commit", &[])?;
    }
    tape.launch(p, "compute_loss", &[])?;
    tape.backward_with(p, "loss", &Binomial { snapshots: 5 })?;
    Ok(())
}

/// The Tape with checkpointing on CPU and GPU: the largest difference of
/// dL/dw, relative to its largest element.
fn tape_check() -> Result<f64, Error> {
    let source = include_str!("../kernels/overwritten_sim.mlir");
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let mut cpu = Program::with_options(source, "overwritten_sim.mlir", &options)?;
    let mut gpu = CudaProgram::new(source, "overwritten_sim.mlir", &options)?;
    let n = cpu.field("x")?.info.len();
    let xs: Vec<f64> = (0..n).map(|i| (i % 100) as f64 * 0.01).collect();
    for (name, values) in [("x", xs), ("w", vec![1.0; n])] {
        cpu.field_mut(name)?.copy_from(&values)?;
        gpu.write(gpu.field_index(name)?, 0, &values)?;
    }
    tape_backward(&mut cpu)?;
    tape_backward(&mut gpu)?;
    let (a, b) = (values::<f64, _>(&cpu, "w_grad")?, values::<f64, _>(&gpu, "w_grad")?);
    let scale = a.iter().fold(0.0, |m: f64, x| m.max(x.abs()));
    Ok(a.iter().zip(&b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, f64::max))
}

/// What a round of `sparse_check.mlir` leaves: the fields' values (as f64)
/// and the active cells of `u`, by name.
type Observed = Vec<(String, Vec<f64>)>;

/// Four rounds of `benches/kernels/sparse_check.mlir` on `p`: seed, laplace,
/// energy and its gradient, cull (the pointer tree), then mark, total,
/// unmark (the bitmasked one); what each round leaves.
fn sparse_rounds<B: Backend>(p: &mut B) -> Result<Observed, Error> {
    let index = |p: &B, name: &str| p.field_index(name);
    let (u, loss, loss_grad) = (index(p, "u")?, index(p, "loss")?, index(p, "loss_grad")?);
    let (u_grad, v_grad) = (index(p, "u_grad")?, index(p, "v_grad")?);
    let (w, w_sum) = (index(p, "w")?, index(p, "w_sum")?);
    let mut seen = Observed::new();
    for t in 0..4 {
        p.launch("seed", &[Arg::Index(t)])?;
        p.launch("laplace", &[])?;
        p.zero(loss)?;
        p.launch("energy", &[])?;
        p.fill(loss_grad, 1.0)?;
        p.zero(v_grad)?;
        p.zero(u_grad)?;
        p.launch("energy_grad", &[])?;
        p.launch("laplace_grad", &[])?;
        for name in ["u", "v", "loss", "u_grad"] {
            seen.push((format!("round {t}: @{name}"), values::<f32, _>(p, name)?.into_iter().map(f64::from).collect()));
        }
        let cells = p.sparse_field(u)?.active_cells();
        seen.push((format!("round {t}: active cells of @u"), cells.iter().map(|c| (c[0] * 64 + c[1]) as f64).collect()));
        p.launch("cull", &[Arg::Index(t)])?;
        let blocks = p.sparse_field(u)?.sparse_stats()?.blocks;
        seen.push((format!("round {t}: blocks of @u after cull"), vec![blocks as f64]));
        p.launch("mark", &[Arg::Index(t)])?;
        p.zero(w_sum)?;
        p.launch("total", &[])?;
        for name in ["w", "w_sum"] {
            seen.push((format!("round {t}: @{name}"), values::<f32, _>(p, name)?.into_iter().map(f64::from).collect()));
        }
        let cells = p.sparse_field(w)?.active_cells();
        seen.push((format!("round {t}: active cells of @w"), cells.iter().map(|c| (c[0] * 64 + c[1]) as f64).collect()));
        p.launch("unmark", &[Arg::Index(t)])?;
    }
    Ok(seen)
}

/// The sparse rounds on the CPU and the GPU: whether every value agrees
/// (the active sets exactly); prints the largest difference.
fn sparse_check() -> Result<bool, Error> {
    let source = include_str!("../kernels/sparse_check.mlir");
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let mut cpu = Program::with_options(source, "sparse_check.mlir", &options)?;
    let mut gpu = CudaProgram::new(source, "sparse_check.mlir", &options)?;
    let (want, got) = (sparse_rounds(&mut cpu)?, sparse_rounds(&mut gpu)?);
    let mut worst = (0.0f64, String::from("-"));
    for ((what, a), (_, b)) in want.iter().zip(&got) {
        if a.len() != b.len() {
            worst = (f64::INFINITY, format!("{what}: {} on the CPU, {} on the GPU", a.len(), b.len()));
            break;
        }
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            let err = (x - y).abs() / x.abs().max(1.0);
            if err > worst.0 {
                worst = (err, format!("{what}[{k}]: cpu {x}, gpu {y}"));
            }
        }
    }
    let cells = want.iter().filter(|(w, _)| w.contains("active cells of @u")).map(|(_, c)| c.len()).max().unwrap_or(0);
    println!("sparse_check_most_active_cells: {cells}");
    println!("sparse_check_max_rel_diff: {:.2e} {}", worst.0, worst.1);
    Ok(cells > 0 && worst.0 <= TOLERANCE)
}

pub fn saxpy_cuda() -> Result<(), Error> {
    // 64M elements (768 MB moved per launch), so gaps between back-to-back
    // launches weigh as little as in the 256 MB copy it is compared with.
    let n = 1usize << 26;
    let mut gpu = CudaProgram::new(&saxpy_source(n), "saxpy", &CompileOptions::default())?;
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    gpu.write(gpu.field_index("x")?, 0, &xs)?;
    gpu.launch("saxpy", &[Arg::F32(0.5)])?;
    gpu.synchronize()?;
    let reps = 50;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(time(|| {
            for _ in 0..reps {
                gpu.launch("saxpy", &[Arg::F32(0.5)]).expect("launch");
            }
            gpu.synchronize().expect("synchronize");
        }) / reps as f64);
    }
    let y: Vec<f32> = values(&gpu, "y")?;
    let launches = 1 + 5 * reps;
    assert!((y[777] - launches as f32 * 0.5 * xs[777]).abs() <= 1e-2 * y[777].abs().max(1.0), "wrong result {}", y[777]);
    let t = median(runs);
    let bandwidth = 12.0 * n as f64 / t;
    let copy = gpu.copy_bandwidth(256 << 20, 20)?;
    println!("elements: {n}");
    println!("saxpy_us: {:.1}", t * 1e6);
    println!("saxpy_gb_per_s: {:.1}", bandwidth / 1e9);
    println!("copy_gb_per_s: {:.1}", copy / 1e9);
    println!("saxpy_bandwidth_fraction_of_copy: {:.3}", bandwidth / copy);
    Ok(())
}
