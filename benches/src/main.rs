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

mod cases;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch = args.iter().position(|a| a == "--arch").and_then(|i| args.get(i + 1)).map_or("cpu", |s| s.as_str());
    let name = args.iter().find(|a| !a.starts_with("--") && a.as_str() != arch).map(|s| s.as_str());
    if arch != "cpu" {
        eprintln!("ds-bench: --arch {arch} is not available in this build (cpu only)");
        std::process::exit(2);
    }
    let result = match name {
        Some("saxpy") => cases::saxpy(),
        Some("launch") => cases::launch(),
        Some("grad_elementwise") => cases::grad_elementwise(),
        _ => {
            eprintln!("usage: ds-bench saxpy|launch|grad_elementwise [--arch cpu]");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("ds-bench: {e}");
        std::process::exit(1);
    }
}
