//! The examples: paper claims checked on small runs, gradients against finite
//! differences, and the pictures they write.

use diffsim_examples::{RunError, RunOptions, appendix_c, find, gradient_explosion, mass_spring_simple, report::Reporter, rigid_body_toi};
use std::path::PathBuf;

mod billiards;
mod diffmpm;
mod diffmpm3d;
mod electric;
mod mass_spring;
mod rigid_body;
mod smoke;
mod volume_renderer;
mod water_renderer;
mod wave;

fn run(name: &str, iters: Option<usize>) -> (diffsim_examples::report::Outcome, PathBuf) {
    let out = std::env::temp_dir().join(format!("diffsim-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.iters = iters;
    let outcome = (find(name).expect("example").run)(&opts, &mut Reporter::new(false)).unwrap_or_else(|e| panic!("{e}"));
    (outcome, out)
}

#[test]
fn mass_spring_simple_reaches_the_target_area() {
    let (outcome, _) = run("mass_spring_simple", None);
    assert_eq!(outcome.losses.len(), 25);
    assert!(outcome.losses[0] > 1e-3, "{:?}", outcome.losses);
    assert!(outcome.final_loss < 1e-4, "final loss {}", outcome.final_loss);
}

#[test]
fn mass_spring_gradient_matches_finite_differences() {
    // The scene starts with a mass on the wall, where the loss jumps whenever a
    // step starts or stops touching it (the paper's sec. 4): finite differences
    // are meaningless there. Shifted 0.1 left, the wall is out of reach in 256
    // steps; in f32, central differences (step 1e-3) agree to 2%.
    let steps = 256;
    let initial = mass_spring_simple::INITIAL_X.map(|[x, y]| [x - 0.1, y]);
    let (mut p, sim) = mass_spring_simple::program().unwrap();
    let (_, grad) = sim.loss_and_grad(&mut p, steps, &initial).unwrap();
    let h = 1e-3f32;
    for (s, &analytic) in grad.iter().enumerate() {
        let base = sim.rest_length.get(&p, [s]).unwrap();
        let mut at = |v: f32| {
            sim.rest_length.set(&mut p, [s], v).unwrap();
            sim.forward(&mut p, steps, &initial).unwrap()
        };
        let numeric = (at(base + h) - at(base - h)) / (2.0 * h);
        at(base);
        assert!(analytic.abs() > 1e-4, "spring {s}: gradient {analytic}");
        assert!((analytic - numeric).abs() <= 0.02 * numeric.abs(), "spring {s}: {analytic} vs {numeric}");
    }
}

#[test]
fn frontend_kernels_match_the_ds_reference() {
    let steps = 200;
    let (p, sim) = mass_spring_simple::program().unwrap();
    let reference = mass_spring_simple::reference_program(&sim).unwrap();
    let runs: Vec<(f32, Vec<f32>)> =
        [p, reference].into_iter().map(|mut p| sim.loss_and_grad(&mut p, steps, &mass_spring_simple::INITIAL_X).unwrap()).collect();
    let ((l1, g1), (l2, g2)) = (&runs[0], &runs[1]);
    assert!((l1 - l2).abs() <= 1e-6 * l2.abs(), "{l1} vs {l2}");
    for (a, b) in g1.iter().zip(g2) {
        assert!((a - b).abs() <= 1e-3 * b.abs().max(1e-6), "{g1:?} vs {g2:?}");
    }
}

#[test]
fn appendix_c_kernels_match_the_ds_module() {
    let (p, sim) = appendix_c::program().unwrap();
    let module = appendix_c::dialect_program().unwrap();
    let losses: Vec<Vec<f32>> = [p, module]
        .into_iter()
        .map(|mut p| {
            sim.init(&mut p).unwrap();
            (0..5).map(|_| sim.step(&mut p).unwrap()).collect()
        })
        .collect();
    assert!(losses[0][4] < losses[0][0], "{losses:?}");
    for (a, b) in losses[0].iter().zip(&losses[1]) {
        assert!((a - b).abs() <= 1e-6 * b.abs(), "{losses:?}");
    }
}

/// Appendix C's two sparse layouts (x and y in blocks under one pointer
/// node, and each tensor in blocks of its own) give the dense layout's
/// losses and x, step by step.
#[test]
fn appendix_c_sparse_layouts_match_the_dense_one() {
    use appendix_c::Storage;
    let runs: Vec<(Vec<f32>, Vec<f32>)> = [Storage::Dense, Storage::SharedBlocks, Storage::BlocksPerTensor]
        .into_iter()
        .map(|storage| {
            let (mut p, sim) = appendix_c::program_with(storage).unwrap();
            sim.init(&mut p).unwrap();
            let losses = (0..20).map(|_| sim.step(&mut p).unwrap()).collect();
            if storage != Storage::Dense {
                let stats = sim.x.sparse_stats(&p).unwrap();
                assert_eq!((stats.blocks, stats.active_cells), (2, 32), "{storage:?}: {stats:?}");
            }
            (losses, sim.x.to_vec(&p).unwrap())
        })
        .collect();
    assert!(runs[0].0[19] < 0.05 * runs[0].0[0], "{:?}", runs[0].0);
    for (storage, run) in ["shared blocks", "blocks per tensor"].iter().zip(&runs[1..]) {
        assert_eq!(run, &runs[0], "{storage} against dense");
    }
}

#[test]
fn mass_spring_kernels_are_no_longer_than_the_papers() {
    let source = include_str!("../src/mass_spring_simple.rs");
    let start = source.find("// --- paper sec. 2.2 kernels").expect("start marker");
    let end = source.find("// --- end of the paper's kernels").expect("end marker");
    let lines = source[start..end].lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with("//")).count();
    assert!(lines <= 44, "{lines} kernel lines");
}

#[test]
fn time_of_impact_fixes_the_sign_of_the_gradient() {
    let (mut p, ball) = rigid_body_toi::program(false).unwrap();
    for h in [0.15, 0.2, 0.27] {
        let (_, naive) = ball.simulate(&mut p, &ball.naive, h).unwrap();
        let (_, toi) = ball.simulate(&mut p, &ball.toi, h).unwrap();
        assert!((naive - 1.0).abs() < 1e-3, "naive at {h}: {naive}");
        assert!((toi + 1.0).abs() < 1e-3, "toi at {h}: {toi}");
    }
}

#[test]
fn the_naive_contact_switch_is_diagnosed_and_time_of_impact_has_none() {
    let (mut p, ball) = rigid_body_toi::program(true).unwrap();
    let height = rigid_body_toi::DIAGNOSED_HEIGHT;
    let naive = ball.diagnose(&mut p, &ball.naive, height).unwrap();
    assert!(naive.forward_vs_reverse() < 1e-12 && (naive.reverse - 1.0).abs() < 1e-9, "{naive}");
    let [switch] = naive.switches.as_slice() else { panic!("one switch expected:\n{naive}") };
    let line = include_str!("../src/rigid_body_toi.rs").lines().position(|l| l.contains("let nv = select(")).unwrap() as u32 + 1;
    let at = switch.location.as_ref().expect("the comparison's location");
    assert_eq!((at.file.as_str(), at.line), ("examples/src/rigid_body_toi.rs", line), "{naive}");
    // Falling at unit speed from 0.2005, the ball reaches the ground in
    // step 100; moving 0.0015 up, the contact test passes a step later and
    // the final height drops by 2 dt: the jump the gradient (+1) misses.
    assert_eq!((switch.step, switch.kernel.as_str()), (100, "advance_naive"), "{naive}");
    assert!((switch.distance - 0.0015).abs() < 1e-9 && (switch.jump + 0.004).abs() < 1e-9, "{naive}");
    let toi = ball.diagnose(&mut p, &ball.toi, height).unwrap();
    assert!(toi.switches.is_empty() && toi.switch_sites == 1, "the contact switches, continuously:\n{toi}");
    assert!((toi.reverse + 1.0).abs() < 1e-9 && toi.reverse_vs_finite_difference() < 1e-8, "{toi}");
}

#[test]
fn check_gradients_prints_the_diagnosis() {
    let out = std::env::temp_dir().join(format!("diffsim-test-check-gradients-{}", std::process::id()));
    let mut opts = RunOptions::new(&out);
    (opts.iters, opts.pictures, opts.check_gradients) = (Some(4), false, true);
    let outcome = (find("rigid_body_toi").expect("example").run)(&opts, &mut Reporter::new(false)).unwrap();
    let diagnosis = |kernel: &str| {
        outcome.results.iter().find(|(what, _)| what.starts_with(&format!("{kernel}: gradient diagnosis"))).map(|(_, d)| d.clone()).unwrap()
    };
    let naive = diagnosis("advance_naive");
    assert!(naive.contains("contact/branch at examples/src/rigid_body_toi.rs:") && naive.contains("switches at step 100"), "{naive}");
    assert!(diagnosis("advance_toi").contains("no switch with a jump"), "{}", diagnosis("advance_toi"));
}

#[test]
fn gradient_explosion_is_diagnosed_as_quadratic_undamped_and_linear_damped() {
    let (mut p, car) = gradient_explosion::program(true).unwrap();
    let exponent = |alpha: f64, p: &mut diffsim::Program| {
        let report = car.diagnose(p, gradient_explosion::MAX_STEPS, alpha).unwrap();
        assert!(report.forward_vs_reverse() < 1e-12 && report.reverse_vs_finite_difference() < 1e-8, "{report}");
        let Some(diffsim::Growth::Polynomial { exponent }) = report.growth else { panic!("{report}") };
        exponent
    };
    let (undamped, damped) = (exponent(0.0, &mut p), exponent(1.0, &mut p));
    assert!((undamped - 2.0).abs() < 0.05, "undamped: step^{undamped}");
    assert!((damped - 1.0).abs() < 0.15, "damped: step^{damped}");
}

#[test]
fn undamped_gradient_grows_quadratically() {
    let (mut p, car) = gradient_explosion::program(false).unwrap();
    let t = 1000;
    let g = car.gradient(&mut p, t, 0.0).unwrap();
    let want = 0.5 * (t as f64 * gradient_explosion::DT).powi(2);
    assert!((g - want).abs() <= 0.01 * want, "dL/da = {g}, 0.5 (T dt)^2 = {want}");
    let damped = car.gradient(&mut p, t, 3.0).unwrap();
    let damped_double = car.gradient(&mut p, 2 * t, 3.0).unwrap();
    assert!(damped < g / 10.0 && (damped_double / damped - 2.0).abs() < 0.05, "{damped} {damped_double}");
}

#[test]
fn appendix_c_converges() {
    let (outcome, _) = run("appendix_c", Some(60));
    // dL/dx = x - y, so each step shrinks x - y by 0.9 and the loss by 0.81.
    assert!((outcome.losses[1] / outcome.losses[0] - 0.81).abs() < 1e-4, "{:?}", &outcome.losses[..2]);
    assert!(outcome.final_loss < 1e-3 * outcome.losses[0], "{:?}", outcome.losses);
}

#[test]
fn pictures_decode_and_are_not_blank() {
    let (mut outcome, out) = run("rigid_body_toi", Some(40));
    let (motion, out2) = run("mass_spring_simple", Some(1));
    outcome.files.extend(motion.files);
    let names: Vec<String> = outcome.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["final_height.png", "loss.png", "motion.gif", "motion_0000.png"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for path in &outcome.files {
        assert!(distinct_colours(path) >= 3, "{} is blank", path.display());
    }
    std::fs::remove_dir_all(out).ok();
    std::fs::remove_dir_all(out2).ok();
}

/// What `diffsim bench ARGS...` prints (it must succeed).
fn bench(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffsim")).arg("bench").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The launches column of `kernel`'s row in `diffsim bench`'s profile.
fn launches_in(stdout: &str, kernel: &str) -> u64 {
    let row = stdout.lines().find(|l| l.split_whitespace().next() == Some(kernel)).unwrap_or_else(|| panic!("no {kernel} in\n{stdout}"));
    row.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How many colours the picture at `path` has (it must decode).
fn distinct_colours(path: &std::path::Path) -> usize {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort();
    colours.dedup();
    colours.len()
}

/// Each `out/NAME` is among the files a run reports, decodes and is not
/// blank (three colours at least).
fn assert_pictures(files: &[PathBuf], out: &std::path::Path, names: &[&str]) {
    for name in names {
        let file = out.join(name);
        assert!(files.contains(&file), "{name} in {files:?}");
        assert!(distinct_colours(&file) >= 3, "{name} is blank");
    }
}

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffsim-test-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `--save-params` then `--params`: the second run starts where the first ended.
#[test]
fn parameters_round_trip_through_npz() {
    let out = scratch("params");
    let file = out.join("x.npz");
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(20);
    opts.pictures = false;
    opts.save_params = Some(file.clone());
    let first = (find("appendix_c").unwrap().run)(&opts, &mut Reporter::new(false)).unwrap();
    assert!(first.files.contains(&file));
    opts.iters = Some(1);
    opts.save_params = None;
    opts.params = Some(file.clone());
    let second = (find("appendix_c").unwrap().run)(&opts, &mut Reporter::new(false)).unwrap();
    assert!((second.losses[0] - first.final_loss).abs() <= 1e-6 * first.final_loss, "{} vs {}", second.losses[0], first.final_loss);
    assert!(second.losses[0] < 0.5 * first.losses[0], "{second:?}");
    std::fs::remove_dir_all(out).ok();
}

/// A parameter file that does not fit is an error naming the array.
#[test]
fn parameter_files_that_do_not_fit_are_errors() {
    use npyz::WriterBuilder;
    let out = scratch("badparams");
    let write = |name: &str, array: &str, shape: &[u64], values: Vec<f64>| {
        let path = out.join(name);
        let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
        let mut w = npz.array::<f64>(array, Default::default()).unwrap().default_dtype().shape(shape).begin_nd().unwrap();
        w.extend(values).unwrap();
        w.finish().unwrap();
        npz.zip_writer().finish().unwrap();
        path
    };
    let cases = [
        (write("missing.npz", "y", &[32], vec![0.0; 32]), "missing"),
        (write("shape.npz", "x", &[16], vec![0.0; 16]), "shape [16]"),
        (write("dtype.npz", "x", &[32], vec![0.0; 32]), "dtype '<f8'"),
    ];
    for (path, want) in cases {
        let mut opts = RunOptions::new(&out);
        opts.iters = Some(1);
        opts.params = Some(path.clone());
        match (find("appendix_c").unwrap().run)(&opts, &mut Reporter::new(false)) {
            Err(e @ RunError::Params { .. }) => {
                let message = e.to_string();
                assert!(message.contains("array `x`") && message.contains(want), "{message}");
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn unknown_settings_are_errors() {
    let out = scratch("settings");
    let mut opts = RunOptions::new(&out);
    opts.settings = vec![("robot".into(), "2".into())];
    match (find("appendix_c").unwrap().run)(&opts, &mut Reporter::new(false)) {
        Err(RunError::UnknownSetting { name, .. }) => assert_eq!(name, "robot"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(out).ok();
}

/// The same host code (`optimize`, generic over the backend) on the CPU and,
/// where there is a GPU, on the GPU; without one, the program still compiles
/// to PTX for every kernel and gradient kernel.
#[test]
fn mass_spring_simple_host_code_is_the_same_on_cpu_and_cuda() {
    use diffsim::ProgramBuilder;
    use diffsim_examples::Simulation;
    let mut pb = ProgramBuilder::new();
    let sim = mass_spring_simple::MassSpring::declare(&mut pb, &RunOptions::new(".")).unwrap();
    let ptx = pb.build_ptx("sm_90").unwrap();
    for kernel in ["apply_spring_force", "time_integrate", "compute_loss"] {
        for name in [kernel.to_string(), format!("{kernel}_grad")] {
            assert!(ptx.contains(&format!(".entry {name}__task")), "no PTX entry for {name}");
        }
    }
    let mut cpu = pb.build().unwrap();
    sim.init(&mut cpu).unwrap();
    let on_cpu = mass_spring_simple::optimize(&mut cpu, &sim, 2, &mut Reporter::new(false)).unwrap();
    assert!(on_cpu[1] < on_cpu[0], "{on_cpu:?}");
    match pb.build_cuda() {
        Ok(mut gpu) => {
            sim.init(&mut gpu).unwrap();
            let on_gpu = mass_spring_simple::optimize(&mut gpu, &sim, 2, &mut Reporter::new(false)).unwrap();
            for (c, g) in on_cpu.iter().zip(&on_gpu) {
                assert!((c - g).abs() <= 1e-4 * c.abs(), "{on_cpu:?} vs {on_gpu:?}");
            }
        }
        Err(e) => assert!(matches!(e, ds_runtime::Error::NoDriver), "{e}"),
    }
}

/// Zero iterations is a short run, not a panic, for every example (the CLI
/// asks for at least one).
#[test]
fn zero_iterations_do_not_panic() {
    for example in diffsim_examples::EXAMPLES {
        let out = std::env::temp_dir().join(format!("diffsim-test-zero-{}-{}", example.name, std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let mut opts = RunOptions::new(&out);
        opts.iters = Some(0);
        // Short runs of the big ones (the MPM examples' steps and particle density).
        for (name, small) in [("steps", "8"), ("density", "1")] {
            if example.settings.iter().any(|s| s.name == name) {
                opts.settings.push((name.into(), small.into()));
            }
        }
        let outcome = (example.run)(&opts, &mut Reporter::new(false)).unwrap_or_else(|e| panic!("{}: {e}", example.name));
        assert!(outcome.final_loss.is_finite(), "{}", example.name);
        std::fs::remove_dir_all(out).ok();
    }
}

/// `--dump-ir` writes what the program runs, gradient kernels included,
/// with the Rust locations of the kernels' statements.
#[test]
fn the_programs_ir_can_be_dumped() {
    let out = std::env::temp_dir().join(format!("diffsim-test-dump-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(1);
    opts.dump_ir = true;
    let outcome = (find("appendix_c").unwrap().run)(&opts, &mut Reporter::new(false)).unwrap();
    let ir = std::fs::read_to_string(out.join("program.mlir")).unwrap();
    assert!(outcome.files.contains(&out.join("program.mlir")));
    assert!(ir.contains("func.func @reduce(") && ir.contains("func.func @reduce_grad("), "{ir}");
    assert!(ir.contains("examples/src/appendix_c.rs\":"), "the kernels' Rust locations: {ir}");
    std::fs::remove_dir_all(out).ok();
}

/// `diffsim bench`: the kernel profile counts the timed iterations' launches
/// (gradient kernels included) and the medians come last.
#[test]
fn bench_prints_the_kernel_profile_and_medians() {
    let stdout = bench(&["appendix_c", "--iters", "3", "--warmup", "2", "--threads", "1"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let launches = |kernel: &str| launches_in(&stdout, kernel);
    // Each iteration: reduce, its gradient, update.
    assert_eq!((launches("reduce"), launches("reduce_grad"), launches("update")), (3, 3, 3), "{stdout}");
    let tail: Vec<&str> = lines[lines.len() - 3..].iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(tail, ["fwd_ms", "bwd_ms", "iter_ms"], "{stdout}");
    for l in &lines[lines.len() - 3..] {
        let ms: f64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(ms.is_finite() && ms >= 0.0, "{l}");
    }
}

#[test]
fn the_cli_rejects_unknown_settings_with_their_name() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(["run", "appendix_c", "--iters", "1", "--set", "robot=2", "--out"])
        .arg(std::env::temp_dir().join(format!("diffsim-test-cli-{}", std::process::id())))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no setting `robot`"), "{stderr}");
}

/// Paper Fig. 9 (minutes: run with `--ignored`): with the time-of-impact
/// integrator the mean final loss is lower than without, for both simulators.
#[test]
#[ignore]
fn fig9_time_of_impact_optimizes_better() {
    let (outcome, out) = run("fig9", None);
    let mean = |what: &str| -> f64 {
        let (_, v) = outcome.results.iter().find(|(k, _)| k == what).unwrap_or_else(|| panic!("no {what} in {:?}", outcome.results));
        v.parse().unwrap()
    };
    for sim in ["mass_spring", "rigid_body"] {
        let (with, without) = (mean(&format!("{sim} with TOI: mean final loss")), mean(&format!("{sim} without TOI: mean final loss")));
        assert!(with < without, "{sim}: with TOI {with}, without {without}");
    }
    std::fs::remove_dir_all(out).ok();
}

/// `--target`/`--init` pictures: any PNG as grey levels resized to the grid;
/// a missing or undecodable file is an error naming it.
#[test]
fn pictures_load_as_grey_grids() {
    let dir = scratch("image");
    let path = dir.join("half.png");
    image::GrayImage::from_fn(8, 4, |x, _| image::Luma([if x < 4 { 0 } else { 255 }])).save(&path).unwrap();
    let grid = diffsim_examples::image::load_gray(&path, 2, 4).unwrap();
    assert_eq!(grid.len(), 8);
    assert!(grid[0] < 0.05 && grid[3] > 0.95 && grid[4] < 0.05, "{grid:?}");
    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not a picture").unwrap();
    for bad in [dir.join("missing.png"), junk] {
        match diffsim_examples::image::load_gray(&bad, 2, 2) {
            Err(e @ RunError::Image { .. }) => assert!(e.to_string().contains(&bad.display().to_string()), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    std::fs::remove_dir_all(dir).ok();
}
