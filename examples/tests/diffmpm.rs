//! diffmpm and diffmpm_benchmark: gradients against finite differences (f64,
//! short horizons), the optimizations make progress, the checkpoint policy
//! reverses every launch once, and the Table 1 microbenchmark prints its
//! numbers. The helpers here serve the 3-D robots' tests too.

use diffsim::ProgramBuilder;
use diffsim::{Policy, Program};
use diffsim_examples::diffmpm::{self, DiffMpm, RecomputeGrid};
use diffsim_examples::diffmpm_benchmark::Benchmark;
use diffsim_examples::mpm_robot::{MpmSolver, N_SIN_WAVES, Robot};
use diffsim_examples::report::{Outcome, Reporter};
use diffsim_examples::{Real, RunError, RunOptions, find};
use ds_runtime::tape::checkpoint::Action;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Example `name`'s run of `iters` iterations with `settings`, no pictures
/// (in a folder of its own).
pub(crate) fn run_with(name: &str, iters: usize, settings: &[(&str, &str)]) -> Result<Outcome, RunError> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!("diffsim-test-{name}-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut opts = RunOptions::new(&out);
    opts.iters = Some(iters);
    opts.pictures = false;
    opts.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let outcome = (find(name).expect("example").run)(&opts, &mut Reporter::new(false));
    std::fs::remove_dir_all(out).ok();
    outcome
}

/// Central differences of `loss` in `value` (set by `set`), step `h`.
pub(crate) fn central(p: &mut Program, h: f64, mut set: impl FnMut(&mut Program, f64), mut loss: impl FnMut(&mut Program) -> f64, base: f64) -> f64 {
    set(p, base + h);
    let up = loss(p);
    set(p, base - h);
    let down = loss(p);
    set(p, base);
    (up - down) / (2.0 * h)
}

/// The robot's gradient run over `steps` steps from its present weights,
/// checked: a finite loss, the grid recomputed through the Tape's
/// checkpointing, finite gradients, and dL/dweights at `weights` and
/// dL/dbias at `biases` against central differences of step `h` (to 1e-4
/// relative and 1e-11 absolute, each larger than 1e-9).
pub(crate) fn check_controller_gradient<S: MpmSolver<f64, D>, const D: usize>(
    sim: &Robot<f64, S, D>,
    p: &mut Program,
    steps: usize,
    h: f64,
    weights: &[(usize, usize)],
    biases: &[usize],
) {
    let w = sim.weights.to_vec(p).unwrap();
    let g = sim.loss_and_grad(p, steps).unwrap();
    assert!(g.loss.is_finite() && g.plan.is_some(), "the grid was recomputed through the Tape's checkpointing");
    let (dw, db) = (sim.weights.grad().to_vec(p).unwrap(), sim.bias.grad().to_vec(p).unwrap());
    assert!(dw.iter().chain(&db).all(|g| g.is_finite()), "{dw:?} {db:?}");
    let close = |a: f64, n: f64| (a - n).abs() <= 1e-4 * n.abs() + 1e-11;
    for &(i, j) in weights {
        let k = i * N_SIN_WAVES + j;
        let numeric = central(p, h, |p, v| sim.weights.set(p, [i, j], v).unwrap(), |p| sim.forward(p, steps).unwrap(), w[k]);
        assert!(dw[k].abs() > 1e-9, "weights[{i}, {j}]: gradient {}", dw[k]);
        assert!(close(dw[k], numeric), "weights[{i}, {j}]: {} vs {numeric}", dw[k]);
    }
    for &i in biases {
        let numeric = central(p, h, |p, v| sim.bias.set(p, [i], v).unwrap(), |p| sim.forward(p, steps).unwrap(), 0.0);
        assert!(db[i].abs() > 1e-9 && close(db[i], numeric), "bias[{i}]: {} vs {numeric}", db[i]);
    }
}

/// Weights larger than the initial N(0, 0.01^2), so the actuation matters
/// over a short horizon: `scale` sin(0.7 k).
pub(crate) fn set_large_weights<S: MpmSolver<f64, D>, const D: usize>(sim: &Robot<f64, S, D>, p: &mut Program, scale: f64) {
    let n = sim.controller.n_actuators * N_SIN_WAVES;
    let w: Vec<f64> = (0..n).map(|k| scale * ((k as f64) * 0.7).sin()).collect();
    sim.weights.copy_from(p, &w).unwrap();
}

/// The robot for runs of `steps` steps (its grid sparse when `grid` says
/// so), built and initialized from seed 3.
fn robot<T: Real>(steps: usize, grid: Option<diffmpm::SparseGrid>) -> (DiffMpm<T>, Program) {
    let mut pb = ProgramBuilder::new();
    let sim = DiffMpm::<T>::with_grid(&mut pb, steps, grid).unwrap();
    let mut p = pb.build().unwrap();
    sim.init(&mut p, 3).unwrap();
    (sim, p)
}

/// dL/dweights and dL/dbias of the robot over 20 steps (19 substeps, the
/// grid recomputed in backward by the Tape) against central differences,
/// in f64. Internal stress cannot move the centre of mass, so the loss
/// depends on the controller only through the floor: the robot starts
/// 0.006 lower than the original's, its lowest particles' stencils reaching
/// the floor's boundary nodes (j < 3), which gravity keeps moving down, so
/// they stay stopped (sticky) throughout: no node switches between stopped
/// and free within the differences' reach (a switch would show as a jump),
/// and the B-spline weights are C1 in the positions.
#[test]
fn diffmpm_controller_gradient_matches_finite_differences() {
    let steps = 20;
    let (sim, mut p) = robot::<f64>(steps, None);
    let (positions, _) = diffmpm::robot_scene(diffmpm::N_GRID);
    let lowered: Vec<[f64; 2]> = positions.iter().map(|&[x, y]| [x, y - 0.006]).collect();
    sim.solver.place(&mut p, &lowered).unwrap();
    set_large_weights(&sim, &mut p, 0.5);
    // Rounding in the differences: ~1e-16 x |L| (0.25) / h, 2.5e-12 absolute;
    // the gradients checked are 1e-7 .. 3e-5.
    check_controller_gradient(&sim, &mut p, steps, 1e-5, &[(0, 1), (1, 0), (2, 3), (3, 2)], &[0, 3]);
}

/// dL/dinit_v of the benchmark square over 16 steps against central
/// differences, in f64 (the square is far from the walls).
#[test]
fn diffmpm_benchmark_gradient_matches_finite_differences() {
    let steps = 16;
    let mut pb = ProgramBuilder::new();
    let sim = Benchmark::<f64>::new(&mut pb, steps).unwrap();
    let mut p = pb.build().unwrap();
    sim.init(&mut p).unwrap();
    let v0 = [0.3, -0.2];
    sim.init_v.set(&mut p, [], v0).unwrap();
    sim.loss_and_grad(&mut p, steps).unwrap();
    let grad = sim.init_v.grad().get(&p, []).unwrap();
    for k in 0..2 {
        let set = |p: &mut Program, value: f64| {
            let mut v = v0;
            v[k] = value;
            sim.init_v.set(p, [], v).unwrap()
        };
        let numeric = central(&mut p, 1e-4, set, |p| sim.forward(p, steps).unwrap(), v0[k]);
        assert!(grad[k].abs() > 1e-5 && (grad[k] - numeric).abs() <= 1e-6 * numeric.abs(), "init_v[{k}]: {} vs {numeric}", grad[k]);
    }
}

/// The robot's loss (-mean x) falls over the first iterations of the
/// original's gradient descent, on the full 1024-step horizon.
#[test]
fn diffmpm_loss_falls() {
    let outcome = run_with("diffmpm", 3, &[]).unwrap();
    let l = &outcome.losses;
    assert!((l[0] + 0.25).abs() < 0.02, "starts near -0.25 (the robot's centre x): {l:?}");
    assert!(l[1] < l[0] && l[2] < l[1] && outcome.final_loss < l[2], "{l:?} then {}", outcome.final_loss);
}

/// The benchmark's loss falls from the original's first loss (0.05256;
/// its first iterations: 0.0428, 0.0381, then 100x lower after 15).
#[test]
fn diffmpm_benchmark_loss_falls() {
    let outcome = run_with("diffmpm_benchmark", 3, &[]).unwrap();
    let l = &outcome.losses;
    assert!((l[0] - 0.05256).abs() < 1e-4, "{l:?}");
    assert!(l[1] < 0.9 * l[0] && l[2] < 0.8 * l[0] && outcome.final_loss < l[2], "{l:?} then {}", outcome.final_loss);
}

/// The policy reverses every launch exactly once, last first, and re-runs
/// (advances) only launches of the substep being reversed, never its g2p.
#[test]
fn recompute_grid_reverses_every_launch_once() {
    let policy = RecomputeGrid { prefix: 1, per_substep: 4, substeps: 5, tail: 2 };
    let n = policy.launches();
    let actions = policy.schedule(n).actions;
    let reversed: Vec<usize> = actions.iter().filter_map(|a| if let Action::Reverse(k) = a { Some(*k) } else { None }).collect();
    assert_eq!(reversed, (0..n).rev().collect::<Vec<_>>());
    let mut last_reversed = n;
    for a in &actions {
        match *a {
            Action::Reverse(k) => last_reversed = k,
            Action::Advance(k) => {
                let substep = (k - 1) / 4;
                assert!(k >= 1 && (k - 1) % 4 != 3 && 1 + (substep + 1) * 4 == last_reversed, "advance {k} after reversing {last_reversed}");
            }
            other => panic!("nothing is saved or restored: {other:?}"),
        }
    }
    assert_eq!(actions.iter().filter(|a| matches!(a, Action::Advance(_))).count(), 3 * 4);
}

#[test]
fn mpm_settings_are_checked() {
    for (name, key, value) in [("diffmpm", "steps", "1"), ("diffmpm", "steps", "2000"), ("diffmpm_benchmark", "substep", "maybe")] {
        match run_with(name, 1, &[(key, value)]) {
            Err(RunError::BadSetting { name: n, .. }) => assert_eq!(n, key),
            other => panic!("{name} {key}={value}: {other:?}"),
        }
    }
}

/// `diffsim bench diffmpm_benchmark --substep`: the kernel profile counts
/// one p2g, grid_op and g2p and their gradients per repetition, and the
/// medians come last as `substep_fwd_ms` and `substep_bwd_ms`.
#[test]
fn substep_bench_prints_both_numbers() {
    let stdout = crate::bench(&["diffmpm_benchmark", "--substep", "--iters", "1", "--warmup", "1", "--threads", "1"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let launches = |kernel: &str| crate::launches_in(&stdout, kernel);
    let counts: Vec<u64> = ["p2g", "grid_op", "g2p", "p2g_grad", "grid_op_grad", "g2p_grad"].iter().map(|k| launches(k)).collect();
    assert!(counts.iter().all(|&c| c == counts[0]) && counts[0] >= 100, "{counts:?}\n{stdout}");
    let tail: Vec<&str> = lines[lines.len() - 2..].iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(tail, ["substep_fwd_ms", "substep_bwd_ms"], "{stdout}");
    for l in &lines[lines.len() - 2..] {
        let ms: f64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(ms.is_finite() && ms > 0.0, "{l}");
    }
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_diffsim")).args(["bench", "appendix_c", "--substep", "--iters", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && stderr.contains("substep"), "{stderr}");
}

/// The robot with its grid as a pointer of 8x8 dense blocks (a pool of 64
/// of the 256 blocks), activated by the particles' scatter each substep and
/// cleared by deactivation: the same loss and controller gradients as the
/// dense grid, through the Tape's grid recomputation, in a fraction of the
/// grid memory.
#[test]
fn diffmpm_with_a_sparse_grid_matches_the_dense_grid() {
    let steps = 24;
    let run = |grid: Option<diffmpm::SparseGrid>| {
        let (sim, mut p) = robot::<f64>(steps, grid);
        set_large_weights(&sim, &mut p, 0.5);
        let forward = sim.forward(&mut p, steps).unwrap();
        // The grid of the last substep (the forward pass ends with its g2p).
        let stats = sim.solver.grid_m_in.sparse_stats(&p).ok();
        let g = sim.loss_and_grad(&mut p, steps).unwrap();
        let (dw, db) = (sim.weights.grad().to_vec(&p).unwrap(), sim.bias.grad().to_vec(&p).unwrap());
        let bytes: usize = p.buffer_infos().iter().filter(|b| b.name.starts_with("grid_")).map(|b| b.bytes).sum();
        (forward, g.loss, dw, db, bytes, stats)
    };
    let (fd, ld, dwd, dbd, bytes_d, _) = run(None);
    let (fs, ls, dws, dbs, bytes_s, stats) = run(Some(diffmpm::SparseGrid { block: 8, capacity: 64 }));
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300);
    assert!(rel(fs, fd) <= 1e-5 && rel(ls, ld) <= 1e-5, "loss: sparse {fs} {ls}, dense {fd} {ld}");
    for (a, b) in dws.iter().zip(&dwd).chain(dbs.iter().zip(&dbd)) {
        assert!((a - b).abs() <= 1e-5 * b.abs() + 1e-12, "gradient: sparse {a}, dense {b}");
    }
    let stats = stats.expect("the sparse grid's statistics");
    println!(
        "grid memory: dense {bytes_d} bytes, sparse {bytes_s} bytes reserved ({} of {} blocks, {} active cells, in the last substep)",
        stats.blocks, stats.capacity, stats.active_cells
    );
    assert!(stats.blocks > 0 && stats.blocks <= 64, "{stats:?}");
    assert!(bytes_s * 3 < bytes_d, "sparse {bytes_s} vs dense {bytes_d}");
}

/// What store-all would hold (`--verbose`'s line), though the recording
/// keeps no state: a slot per launch, each a copy of every field the
/// launches write (the particle history, the grid, the actuation, x_avg and
/// the loss; no adjoint, no parameter).
#[test]
fn store_all_plan_counts_the_state_the_recording_did_not_keep() {
    use diffsim::Backend;
    let steps = 8;
    let (sim, mut p) = robot::<f32>(steps, None);
    let plans = sim.loss_and_grad(&mut p, steps).unwrap().plan.expect("the grid was recomputed");
    let state = ["x", "v", "C", "F", "grid_v_in", "grid_m_in", "grid_v_out", "actuation", "x_avg", "loss"];
    let bytes: usize = state.iter().map(|f| p.snapshot_bytes(p.field_index(f).unwrap())).sum();
    let store_all = plans.store_all;
    assert_eq!((store_all.snapshots, store_all.snapshot_bytes), (5 * (steps - 1) + 2, bytes), "{store_all}");
    assert_eq!(store_all.predicted_peak_bytes, (store_all.snapshots + store_all.scratch) * bytes, "{store_all}");
    assert_eq!(plans.predicted.predicted_peak_bytes, 0, "the recording keeps no state: {}", plans.predicted);
}
