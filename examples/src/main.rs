//! `diffsim`: runs the paper's simulators.
//!
//! ```text
//! diffsim list
//! diffsim run NAME [--iters N] [--seed S] [--params FILE.npz] [--save-params FILE.npz]
//!                  [--arch cpu|cuda] [--threads N] [--out DIR] [--set KEY=VALUE]...
//!                  [--unchecked] [--strict-math] [--dump-ir] [--verbose] [--check-gradients]
//! diffsim bench NAME [--iters K] [--warmup W] [--threads N] [--arch cpu|cuda] [--set KEY=VALUE]... [--substep]
//! ```

use clap::{Args, Parser, Subcommand};
use diffsim_examples::report::{Outcome, Reporter};
use diffsim_examples::{Arch, EXAMPLES, Example, RunError, RunOptions, find};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "diffsim", about = "Differentiable simulators of the DiffTaichi paper, on DiffSim")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `run` and `bench` share.
#[derive(Args)]
struct Common {
    /// The example (`diffsim list` names them).
    name: String,
    /// Where kernels run: `cpu` (all cores, or --threads) or `cuda` (GPU 0).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    arch: String,
    /// CPU threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Seeds the initial parameters and the kernels' random numbers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// An example's own setting, KEY=VALUE (`diffsim list` shows them); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Initial values of the optimized parameters: arrays named after their fields.
    #[arg(long, value_name = "FILE.npz")]
    params: Option<PathBuf>,
    /// The target picture (any PNG or JPEG, resized to the grid), for examples that match one.
    #[arg(long, value_name = "IMAGE")]
    target: Option<PathBuf>,
    /// The initial picture (any PNG or JPEG, resized to the grid), for examples that start from one.
    #[arg(long, value_name = "IMAGE")]
    init: Option<PathBuf>,
    /// Build without run-time bounds checks: an index out of bounds then
    /// reads or writes outside a field instead of failing the launch.
    #[arg(long)]
    unchecked: bool,
    /// Keep IEEE float semantics: no fast-math folding of x*0, x*1, x+0
    /// and constants before differentiating (`ProgramBuilder::strict_math`).
    #[arg(long)]
    strict_math: bool,
}

#[derive(Subcommand)]
enum Command {
    /// List the examples and their settings.
    List,
    /// Run an example: loss per iteration, pictures in the output folder.
    Run {
        #[command(flatten)]
        common: Common,
        /// Optimization iterations (default: the paper's); at least 1.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        iters: Option<u64>,
        /// Output folder for pictures (default: out/NAME).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the optimized parameters after the run.
        #[arg(long, value_name = "FILE.npz")]
        save_params: Option<PathBuf>,
        /// Write the program's IR after autodiff (gradient kernels included) to OUT/program.mlir.
        #[arg(long)]
        dump_ir: bool,
        /// Print more (the Tape's plan, where an example has one).
        #[arg(long)]
        verbose: bool,
        /// Build for gradient diagnostics: a non-finite gradient stops the run
        /// at its op, Rust line and step; rigid_body_toi and
        /// gradient_explosion print a diagnosis (forward, reverse and finite
        /// differences, tangent growth, contact switches that the gradient misses).
        #[arg(long)]
        check_gradients: bool,
    },
    /// Time an example: a per-kernel profile, then the median forward,
    /// backward and iteration times (pin it: `taskset -c 1 diffsim bench NAME --threads 1`).
    Bench {
        #[command(flatten)]
        common: Common,
        /// Timed iterations.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        iters: u64,
        /// Iterations run first and not timed.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// Time one substep (the example's `substep` setting, diffmpm_benchmark's
        /// Table 1 microbenchmark): medians as `substep_fwd_ms` and `substep_bwd_ms`.
        #[arg(long)]
        substep: bool,
    },
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("diffsim: {e}");
    std::process::exit(1)
}

/// The example, the options `common` gives, and the thread pool set up.
fn prepare(common: Common, out: PathBuf) -> (&'static Example, RunOptions) {
    let Some(example) = find(&common.name) else {
        let names: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
        eprintln!("diffsim: no example `{}` (examples: {})", common.name, names.join(", "));
        std::process::exit(2);
    };
    if let Some(n) = common.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n as usize).build_global()
    {
        fail(e);
    }
    let settings = common
        .settings
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| RunError::SettingSyntax(kv.clone())))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| fail(e));
    if let Err(e) = std::fs::create_dir_all(&out) {
        fail(format!("cannot create {}: {e}", out.display()));
    }
    let mut opts = RunOptions::new(out);
    opts.arch = if common.arch == "cuda" { Arch::Cuda } else { Arch::Cpu };
    opts.seed = common.seed;
    opts.settings = settings;
    opts.params = common.params;
    opts.target = common.target;
    opts.init = common.init;
    opts.unchecked = common.unchecked;
    opts.strict_math = common.strict_math;
    (example, opts)
}

fn print_outcome(outcome: &Outcome) {
    for (what, value) in &outcome.results {
        println!("{what}: {value}");
    }
    for p in &outcome.files {
        println!("wrote {}", p.display());
    }
    println!("final loss: {:.6e}", outcome.final_loss);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => 0.5 * (values[n / 2 - 1] + values[n / 2]),
    }
}

/// A memcpy's bandwidth on this machine, now: bytes read and written per
/// second copying 256 MiB (more than any cache), the median of 5 copies.
fn memcpy_bandwidth() -> f64 {
    let size = 256 << 20;
    let (from, mut to) = (vec![1u8; size], vec![0u8; size]);
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let start = std::time::Instant::now();
            to.copy_from_slice(&from);
            std::hint::black_box(&mut to);
            start.elapsed().as_secs_f64()
        })
        .collect();
    2.0 * size as f64 / median(times)
}

fn main() {
    match Cli::parse().command {
        Command::List => {
            for e in EXAMPLES {
                println!("{:<26} {}", e.name, e.summary);
                for s in e.settings {
                    println!("{:<26}   --set {:<22} {}", "", format!("{}={}", s.name, s.default), s.help);
                }
            }
        }
        Command::Run { common, iters, out, save_params, dump_ir, verbose, check_gradients } => {
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(&common.name));
            let (example, mut opts) = prepare(common, out);
            opts.iters = iters.map(|n| n as usize);
            opts.save_params = save_params;
            opts.dump_ir = dump_ir;
            opts.verbose = verbose;
            opts.check_gradients = check_gradients;
            match (example.run)(&opts, &mut Reporter::new(true)) {
                Ok(outcome) => print_outcome(&outcome),
                Err(e) => fail(e),
            }
        }
        Command::Bench { common, iters, warmup, substep } => {
            let out = std::env::temp_dir().join(format!("diffsim-bench-{}", std::process::id()));
            let (example, mut opts) = prepare(common, out.clone());
            if substep {
                opts.settings.push(("substep".into(), "on".into()));
            }
            opts.iters = Some((warmup + iters) as usize);
            opts.pictures = false;
            let mut report = Reporter::profiling_after(warmup as usize);
            let result = (example.run)(&opts, &mut report);
            ds_runtime::profiler::enable(false);
            std::fs::remove_dir_all(&out).ok();
            let outcome = result.unwrap_or_else(|e| fail(e));
            let timed: Vec<_> = report.iterations.iter().skip(warmup as usize).copied().collect();
            let kernels = ds_runtime::profiler::totals();
            let total: f64 = kernels.iter().map(|k| k.total.as_secs_f64()).sum();
            println!("{:<36} {:>9} {:>11} {:>9} {:>7}", "kernel", "launches", "total_ms", "mean_us", "share");
            for k in &kernels {
                let ms = k.total.as_secs_f64() * 1e3;
                let share = if total > 0.0 { 100.0 * k.total.as_secs_f64() / total } else { 0.0 };
                println!("{:<36} {:>9} {:>11.3} {:>9.2} {:>6.1}%", k.kernel, k.launches, ms, 1e3 * ms / k.launches as f64, share);
            }
            println!("iterations: {} (after {warmup} warm-up)", timed.len());
            let prefix = if substep { "substep_" } else { "" };
            println!("{prefix}fwd_ms: {:.3}", median(timed.iter().map(|i| i.fwd_ms).collect()));
            println!("{prefix}bwd_ms: {:.3}", median(timed.iter().map(|i| i.bwd_ms).collect()));
            if !substep {
                let iter_ms = median(timed.iter().map(|i| i.iter_ms).collect());
                println!("iter_ms: {iter_ms:.3}");
                if let Some(bytes) = outcome.moved_bytes {
                    let bandwidth = memcpy_bandwidth();
                    println!("memcpy_gb_s: {:.2} (bytes read and written per second, copying 256 MiB)", bandwidth / 1e9);
                    println!("moved_mb: {:.1} (what an iteration must read and write at least)", bytes / 1e6);
                    println!("roofline_fraction: {:.3} (moved bytes over memcpy bandwidth, over iter_ms)", bytes / bandwidth / (iter_ms / 1e3));
                }
            }
        }
    }
}
