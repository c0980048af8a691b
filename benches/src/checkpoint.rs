//! `ds-bench checkpoint`: backward through 1000 steps of overwritten state
//! (benches/kernels/overwritten_sim.mlir, 16384 oscillators, f64) under each
//! checkpoint policy: backward/forward time, snapshots, recomputed launches,
//! and the peak of extra field memory during backward from the runtime's
//! allocation counters. Headline: binomial(10) against store-all.

use crate::cases::time;
use ds_runtime::tape::checkpoint::{Binomial, Periodic, Policy, StoreAll};
use ds_runtime::{CompileOptions, Error, Program, Tape, memory};

const SOURCE: &str = include_str!("../kernels/overwritten_sim.mlir");
const STEPS: usize = 1000;

/// Records the simulation; returns the program, the tape and the forward time.
fn forward() -> Result<(Program, Tape, f64), Error> {
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let mut p = Program::with_options(SOURCE, "overwritten_sim.mlir", &options)?;
    let n = p.field("x")?.info.len();
    p.field_mut("x")?.copy_from(&(0..n).map(|i| (i % 100) as f64 * 0.01).collect::<Vec<_>>())?;
    p.field_mut("w")?.fill(1.0f64)?;
    let mut tape = Tape::with_checkpointing();
    let t = time(|| {
        for step in 0..STEPS {
            if step > 0 {
                tape.step();
            }
            tape.launch(&mut p, "advance", &[]).expect("advance");
            tape.launch(&mut p, "commit", &[]).expect("commit");
        }
        tape.launch(&mut p, "compute_loss", &[]).expect("loss");
    });
    Ok((p, tape, t))
}

/// Runs backward under `policy`; returns (peak extra bytes, backward time, dL/dw[0]).
fn backward(policy: &dyn Policy) -> Result<(usize, f64, f64, f64), Error> {
    let (mut p, mut tape, fwd) = forward()?;
    let plan = tape.plan(&p, policy);
    println!("plan_{}: {plan}", policy.name());
    let base = memory::current_bytes();
    memory::reset_peak();
    let mut result = Ok(None);
    let bwd = time(|| result = tape.backward_with(&mut p, "loss", policy));
    result?;
    let peak = memory::peak_bytes() - base;
    Ok((peak, fwd, bwd, p.field("w_grad")?.get(&[0])?))
}

pub fn run() -> Result<(), Error> {
    let policies: [(&str, &dyn Policy); 3] =
        [("store_all", &StoreAll), ("periodic_32", &Periodic { period: 32 }), ("binomial_10", &Binomial { snapshots: 10 })];
    let mut peaks = Vec::new();
    let mut grads = Vec::new();
    for (name, policy) in policies {
        let (peak, fwd, bwd, g) = backward(policy)?;
        println!("{name}_backward_over_forward_time: {:.2}", bwd / fwd);
        println!("{name}_peak_extra_bytes: {peak}");
        peaks.push(peak);
        grads.push(g);
    }
    let spread = grads.iter().map(|g| (g - grads[0]).abs()).fold(0.0, f64::max);
    assert!(spread <= 1e-9 * grads[0].abs().max(1.0), "policies disagree: {grads:?}");
    println!("binomial_peak_memory_ratio_vs_store_all: {:.4}", peaks[2] as f64 / peaks[0] as f64);
    Ok(())
}
