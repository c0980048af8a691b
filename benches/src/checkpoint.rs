//! `ds-bench checkpoint`: backward through 1000 steps of overwritten state
//! (benches/kernels/overwritten_sim.mlir, 16384 oscillators, f64) under each
//! checkpoint policy: forward and backward time, the plan, and the peak of
//! snapshot memory during backward from the runtime's allocation counters
//! (all bytes above the program's fields, the initial state's copy
//! included). Headline: binomial(10) against store-all.

use crate::cases::time;
use ds_runtime::tape::checkpoint::{Binomial, Periodic, Policy, StoreAll};
use ds_runtime::{CompileOptions, Error, Program, Tape, memory};

const SOURCE: &str = include_str!("../kernels/overwritten_sim.mlir");
const STEPS: usize = 1000;

/// Records the simulation; returns the program, the tape, the bytes of the
/// program's fields and the forward time.
fn forward() -> Result<(Program, Tape, usize, f64), Error> {
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let mut p = Program::with_options(SOURCE, "overwritten_sim.mlir", &options)?;
    let n = p.field("x")?.info.len();
    p.field_mut("x")?.copy_from(&(0..n).map(|i| (i % 100) as f64 * 0.01).collect::<Vec<_>>())?;
    p.field_mut("w")?.fill(1.0f64)?;
    let fields = memory::current_bytes();
    let mut tape = Tape::new();
    let mut result = Ok(());
    let t = time(|| {
        result = (|| {
            for step in 0..STEPS {
                if step > 0 {
                    tape.end_step();
                }
                tape.launch(&mut p, "advance", &[])?;
                tape.launch(&mut p, "commit", &[])?;
            }
            tape.launch(&mut p, "compute_loss", &[])
        })()
    });
    result?;
    Ok((p, tape, fields, t))
}

struct Run {
    forward_s: f64,
    backward_s: f64,
    peak_bytes: usize,
    grad: f64,
}

/// Records and runs backward under `policy`, printing its plan.
fn run_policy(name: &str, policy: &dyn Policy) -> Result<Run, Error> {
    let (mut p, mut tape, fields, forward_s) = forward()?;
    memory::reset_peak();
    let mut result = Ok(None);
    let backward_s = time(|| result = tape.backward_with(&mut p, "loss", policy));
    let plan = result?.ok_or_else(|| Error::Internal("the simulation overwrites its state: backward must checkpoint".into()))?;
    println!("{name}_plan: {plan}");
    Ok(Run { forward_s, backward_s, peak_bytes: memory::peak_bytes() - fields, grad: p.field("w_grad")?.get(&[0])? })
}

pub fn run() -> Result<(), Error> {
    let policies: [(&str, &dyn Policy); 3] =
        [("store_all", &StoreAll), ("periodic_32", &Periodic { period: 32 }), ("binomial_10", &Binomial { snapshots: 10 })];
    let mut runs = Vec::new();
    for (name, policy) in policies {
        let r = run_policy(name, policy)?;
        println!("{name}_forward_ms: {:.1}", r.forward_s * 1e3);
        println!("{name}_backward_ms: {:.1}", r.backward_s * 1e3);
        println!("{name}_backward_over_forward_time: {:.2}", r.backward_s / r.forward_s);
        println!("{name}_peak_snapshot_bytes: {}", r.peak_bytes);
        runs.push(r);
    }
    let spread = runs.iter().map(|r| (r.grad - runs[0].grad).abs()).fold(0.0, f64::max);
    if spread > 1e-9 * runs[0].grad.abs().max(1.0) {
        let grads: Vec<f64> = runs.iter().map(|r| r.grad).collect();
        return Err(Error::Internal(format!("checkpoint policies disagree on dL/dw[0]: {grads:?}")));
    }
    println!("binomial_peak_memory_ratio_vs_store_all: {:.4}", runs[2].peak_bytes as f64 / runs[0].peak_bytes as f64);
    Ok(())
}
