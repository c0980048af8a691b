//! `ds-bench NAME [--arch cpu]`: DiffSim against a baseline measured in the
//! same run. Prints `metric: value` lines, the headline metric last.
//!
//! Cases:
//! - `saxpy`: y = a*x + y over 10M f32, a DiffSim kernel against a rayon loop
//!   on the same cores; headline `saxpy_time_ratio_vs_rayon`.
//! - `launch`: the cost of launching a kernel whose parallel loop has one
//!   iteration (runs inline); headline `launch_overhead_us`.
//! - `grad_elementwise`: the generated gradient kernel of an elementwise kernel
//!   against the kernel itself; headline `grad_over_forward_time`.
//! - `bounds`: run-time bounds checks (on by default) against none, on saxpy,
//!   a stencil and mass_spring_simple; headline `bounds_check_time_ratio_worst`.
//! - `stencil`: the five-point stencil of `test/kernels/stencil.mlir`, launch
//!   by launch, against the same loop in Rust; headline
//!   `stencil_time_ratio_vs_rust` (ds-run --time times the same launches).
//! - `zero`: clearing a 128 MiB field (as backward clears adjoints) against a
//!   memset; headline `zero_time_ratio_vs_memset`.
//! - `gather`: stencil adjoints in gather form (`ds-gather-updates`) against
//!   the scatters they replace, on a 512^2 grid and a 2^20 line; headline
//!   `gather_time_ratio_vs_scatter`.
//! - `checkpoint`: backward through 1000 steps of overwritten state under each
//!   checkpoint policy; headline `binomial_peak_memory_ratio_vs_store_all`.
//! - `sparse`: a five-point stencil over a 1024^2 field about 2% active,
//!   pointer-of-dense blocks against the same kernel on a dense field;
//!   `sparse_memory_ratio_vs_dense`, headline `sparse_time_ratio_vs_dense`.
//! - `saxpy --arch cuda`: 64M f32 on the GPU against a device-to-device copy;
//!   headline `saxpy_bandwidth_fraction_of_copy`.
//! - `gpu-check`: every kernel of `test/kernels` and its gradient, CPU against
//!   GPU; headline `gpu_check_kernels_passed`.
//!
//! Not a benchmark: `fuzz` (see `fuzz.rs`) mutates the lit and kernel files
//! and runs them through every pipeline in subprocesses (`fuzz-one`), ending
//! with `runs: N, crashes: C, hangs: H`.

mod bounds;
mod cases;
mod checkpoint;
mod fuzz;
mod gather;
mod gpu;
mod sparse;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fuzzing = match args.first().map(|s| s.as_str()) {
        Some("fuzz") => Some(fuzz::run(&args[1..])),
        Some("fuzz-one") => Some(fuzz::run_one_here(&args[1..])),
        _ => None,
    };
    if let Some(result) = fuzzing {
        if let Err(e) = result {
            eprintln!("ds-bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    let arch = args.iter().position(|a| a == "--arch").and_then(|i| args.get(i + 1)).map_or("cpu", |s| s.as_str());
    let name = args.iter().find(|a| !a.starts_with("--") && a.as_str() != arch).map(|s| s.as_str());
    let result = match (name, arch) {
        (Some("saxpy"), "cuda") => gpu::saxpy_cuda(),
        (Some("gpu-check"), _) => gpu::gpu_check(),
        (Some("sparse"), arch) => sparse::run(arch),
        (_, "cuda") => {
            eprintln!("ds-bench: only saxpy, sparse and gpu-check run on cuda");
            std::process::exit(2);
        }
        (Some("saxpy"), _) => cases::saxpy(),
        (Some("launch"), _) => cases::launch(),
        (Some("grad_elementwise"), _) => cases::grad_elementwise(),
        (Some("stencil"), _) => cases::stencil(),
        (Some("checkpoint"), _) => checkpoint::run(),
        (Some("bounds"), _) => bounds::run(),
        (Some("gather"), _) => gather::run(),
        (Some("zero"), _) => cases::zero(),
        _ => {
            eprintln!(
                "usage: ds-bench saxpy|launch|grad_elementwise|stencil|bounds|gather|checkpoint|zero|sparse|gpu-check [--arch cpu|cuda]
       ds-bench fuzz [--runs N] [--seed S] [--save DIR] [--jobs J] [--timeout SECS]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("ds-bench: {e}");
        std::process::exit(1);
    }
}
