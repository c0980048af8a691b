//! `diffsim`: runs the paper's simulators.
//!
//! ```text
//! diffsim list
//! diffsim run NAME [--iters N] [--out DIR] [--arch cpu|cuda] [--unchecked] [--dump-ir]
//! ```

use clap::{Parser, Subcommand};
use diffsim_examples::{Arch, EXAMPLES, RunOptions, find, report::Reporter};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "diffsim", about = "Differentiable simulators of the DiffTaichi paper, on DiffSim")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the examples.
    List,
    /// Run an example: loss per iteration, pictures in the output folder.
    Run {
        name: String,
        /// Optimization iterations (default: the paper's); at least 1.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        iters: Option<u64>,
        /// Output folder for pictures (default: out/NAME).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where kernels run: `cpu` (all cores) or `cuda` (GPU 0).
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
        arch: String,
        /// Build without run-time bounds checks: an index out of bounds then
        /// reads or writes outside a field instead of failing the launch.
        #[arg(long)]
        unchecked: bool,
        /// Write the program's IR after autodiff (gradient kernels included) to OUT/program.mlir.
        #[arg(long)]
        dump_ir: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::List => {
            for e in EXAMPLES {
                println!("{:<20} {}", e.name, e.summary);
            }
        }
        Command::Run { name, iters, out, arch, unchecked, dump_ir } => {
            let Some(example) = find(&name) else {
                let names: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
                eprintln!("diffsim: no example `{name}` (examples: {})", names.join(", "));
                std::process::exit(2);
            };
            let arch = if arch == "cuda" { Arch::Cuda } else { Arch::Cpu };
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(&name));
            if let Err(e) = std::fs::create_dir_all(&out) {
                eprintln!("diffsim: cannot create {}: {e}", out.display());
                std::process::exit(1);
            }
            let opts = RunOptions { iters: iters.map(|n| n as usize), out, verbose: true, arch, unchecked, dump_ir };
            match (example.run)(&opts, &mut Reporter::new(true)) {
                Ok(outcome) => {
                    for (what, value) in &outcome.results {
                        println!("{what}: {value}");
                    }
                    for p in &outcome.pictures {
                        println!("wrote {}", p.display());
                    }
                    println!("final loss: {:.6e}", outcome.final_loss);
                }
                Err(e) => {
                    eprintln!("diffsim: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}
