//! `ds-bench gather`: stencil adjoints in gather form (`ds-gather-updates`,
//! on by default on the CPU) against the scatters they replace, each
//! gradient kernel compiled with and without the pass and timed
//! interleaved, A B A B: a five-point stencil over a 512^2 grid (its
//! adjoint's updates along the serial inner loop) and a three-point one
//! over 2^20 elements (along a parallel loop). Headline: the larger
//! gather/scatter time ratio (below 1 when the gathers are faster).

use crate::cases::compare;
use ds_runtime::gradcheck::fields;
use ds_runtime::{CompileOptions, Error, Program};

/// `v[i, j]` = the five-point Laplacian of `u` over the inner `n` x `n` cells.
fn grid_source(n: usize) -> String {
    let shape = format!("{}, {}", n + 2, n + 2);
    fields(&[("u", "f32", &shape), ("v", "f32", &shape)])
        + &format!(
            r#"
func.func @laplacian() attributes {{ds.kernel}} {{
  %c1 = arith.constant 1 : index
  %hi = arith.constant {end} : index
  "ds.parallel_for"(%c1, %hi) ({{
  ^bb0(%i: index):
    %c1b = arith.constant 1 : index
    %end = arith.constant {end} : index
    scf.for %j = %c1b to %end step %c1b {{
      %im = arith.subi %i, %c1b : index
      %ip = arith.addi %i, %c1b : index
      %jm = arith.subi %j, %c1b : index
      %jp = arith.addi %j, %c1b : index
      %a = "ds.load"(%im, %j) {{field = @u}} : (index, index) -> f32
      %b = "ds.load"(%ip, %j) {{field = @u}} : (index, index) -> f32
      %c = "ds.load"(%i, %jm) {{field = @u}} : (index, index) -> f32
      %d = "ds.load"(%i, %jp) {{field = @u}} : (index, index) -> f32
      %e = "ds.load"(%i, %j) {{field = @u}} : (index, index) -> f32
      %s = arith.addf %a, %b : f32
      %t = arith.addf %c, %d : f32
      %st = arith.addf %s, %t : f32
      %four = arith.constant 4.0 : f32
      %e4 = arith.mulf %four, %e : f32
      %lap = arith.subf %st, %e4 : f32
      "ds.store"(%lap, %i, %j) {{field = @v}} : (f32, index, index) -> ()
    }}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
"#,
            end = n + 1
        )
}

/// `y[i] = x[i - 1] - 2 x[i] + x[i + 1]` over `1 <= i < n - 1`.
fn line_source(n: usize) -> String {
    fields(&[("x", "f32", &n.to_string()), ("y", "f32", &n.to_string())])
        + &format!(
            r#"
func.func @second_difference() attributes {{ds.kernel}} {{
  %c1 = arith.constant 1 : index
  %hi = arith.constant {end} : index
  "ds.parallel_for"(%c1, %hi) ({{
  ^bb0(%i: index):
    %c1b = arith.constant 1 : index
    %im = arith.subi %i, %c1b : index
    %ip = arith.addi %i, %c1b : index
    %a = "ds.load"(%im) {{field = @x}} : (index) -> f32
    %b = "ds.load"(%i) {{field = @x}} : (index) -> f32
    %c = "ds.load"(%ip) {{field = @x}} : (index) -> f32
    %two = arith.constant 2.0 : f32
    %b2 = arith.mulf %two, %b : f32
    %ac = arith.addf %a, %c : f32
    %r = arith.subf %ac, %b2 : f32
    "ds.store"(%r, %i) {{field = @y}} : (f32, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
"#,
            end = n - 1
        )
}

/// Both builds of `source` with gradients: gathers, then scatters.
fn both(source: &str, name: &str) -> Result<[Program; 2], Error> {
    let build = |gather_updates| Program::with_options(source, name, &CompileOptions { autodiff: true, gather_updates, ..Default::default() });
    Ok([build(true)?, build(false)?])
}

pub fn run() -> Result<(), Error> {
    let cases: [(&str, [f64; 2]); 2] = [
        ("laplacian_512x512_grad", compare(&mut both(&grid_source(512), "laplacian")?, 101, |p| p.launch("laplacian_grad", &[]))?),
        ("second_difference_1m_grad", compare(&mut both(&line_source(1 << 20), "second_difference")?, 101, |p| p.launch("second_difference_grad", &[]))?),
    ];
    let mut worst: f64 = 0.0;
    for (name, [gather, scatter]) in cases {
        println!("{name}_gather_ms: {:.4}", gather * 1e3);
        println!("{name}_scatter_ms: {:.4}", scatter * 1e3);
        worst = worst.max(gather / scatter);
    }
    println!("threads: {}", rayon::current_num_threads());
    println!("gather_time_ratio_vs_scatter: {worst:.3}");
    Ok(())
}
