//! `ds-bench bounds`: the cost of run-time bounds checks (on by default),
//! each kernel compiled with and without them and timed interleaved, A B A B:
//! saxpy over 10M f32, the five-point stencil of `test/kernels`, and the
//! mass-spring program of the paper's sec. 2.2 (1023 steps forward, then
//! their gradients, from `examples/kernels/mass_spring_simple.mlir`).
//! Headline: the largest checked/unchecked time ratio.

use crate::cases::{compare, saxpy_source};
use ds_runtime::{Arg, CompileOptions, Error, Program};

const STENCIL: &str = include_str!("../../test/kernels/stencil.mlir");
const MASS_SPRING: &str = include_str!("../../examples/kernels/mass_spring_simple.mlir");
const STEPS: i64 = 1024;

/// Both builds of `source`: with bounds checks, then without.
fn both(source: &str, name: &str, autodiff: bool) -> Result<[Program; 2], Error> {
    let build = |check_bounds| Program::with_options(source, name, &CompileOptions { check_bounds, autodiff, ..Default::default() });
    Ok([build(true)?, build(false)?])
}

fn mass_spring_step(p: &mut Program) -> Result<(), Error> {
    p.field_mut("spring_a")?.copy_from(&[0, 1, 2])?;
    p.field_mut("spring_b")?.copy_from(&[1, 2, 0])?;
    p.field_mut("spring_length")?.copy_from(&[0.1f32, 0.1, 0.1 * std::f32::consts::SQRT_2])?;
    for t in 1..STEPS {
        p.launch("apply_spring_force", &[Arg::Index(t)])?;
        p.launch("time_integrate", &[Arg::Index(t)])?;
    }
    p.launch("compute_loss", &[Arg::Index(STEPS - 1)])?;
    p.launch("compute_loss_grad", &[Arg::Index(STEPS - 1)])?;
    for t in (1..STEPS).rev() {
        p.launch("time_integrate_grad", &[Arg::Index(t)])?;
        p.launch("apply_spring_force_grad", &[Arg::Index(t)])?;
    }
    Ok(())
}

pub fn run() -> Result<(), Error> {
    let n = 10_000_000;
    let cases: [(&str, [f64; 2]); 3] = [
        ("saxpy", compare(&mut both(&saxpy_source(n), "saxpy", false)?, 31, |p| p.launch("saxpy", &[Arg::F32(0.5)]))?),
        ("stencil", compare(&mut both(STENCIL, "stencil.mlir", true)?, 201, |p| p.launch("k", &[]))?),
        ("mass_spring_simple", compare(&mut both(MASS_SPRING, "mass_spring_simple.mlir", true)?, 31, mass_spring_step)?),
    ];
    let mut worst: f64 = 0.0;
    for (name, [checked, unchecked]) in cases {
        println!("{name}_checked_ms: {:.3}", checked * 1e3);
        println!("{name}_unchecked_ms: {:.3}", unchecked * 1e3);
        println!("{name}_checked_over_unchecked: {:.3}", checked / unchecked);
        worst = worst.max(checked / unchecked);
    }
    println!("threads: {}", rayon::current_num_threads());
    println!("bounds_check_time_ratio_worst: {worst:.3}");
    Ok(())
}
