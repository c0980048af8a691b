//! Kernels written in the ds dialect, run on all cores, compared with plain
//! Rust computations of the same thing.

use crate::common::{fields_without_grad, loop_kernel};
use ds_runtime::error::AccessKind;
use ds_runtime::{Arg, CompileOptions, Error, Program};

fn program(src: &str) -> Program {
    Program::new(src).unwrap_or_else(|e| panic!("compile error:\n{e}"))
}

#[test]
fn elementwise_math_matches_rust() {
    let n = 100_000usize;
    let src = fields_without_grad(&[("x", "f32", &n.to_string()), ("y", "f32", &n.to_string())])
        + &loop_kernel(
            "k",
            "%n: index, %a: f32",
            None,
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %s = math.sin %x : f32
    %e = math.exp %s : f32
    %q = math.sqrt %e : f32
    %t = math.tanh %x : f32
    %m = arith.mulf %a, %q : f32
    %r = arith.addf %m, %t : f32
    "ds.store"(%r, %i) {field = @y} : (f32, index) -> ()"#,
        );
    let mut p = program(&src);
    let xs: Vec<f32> = (0..n).map(|i| (i as f32) * 1e-3 - 50.0).collect();
    p.field_mut("x").unwrap().copy_from(&xs).unwrap();
    p.launch("k", &[Arg::Index(n as i64), Arg::F32(1.5)]).unwrap();
    let ys: Vec<f32> = p.field("y").unwrap().to_vec().unwrap();
    for (x, y) in xs.iter().zip(&ys) {
        let want = 1.5 * x.sin().exp().sqrt() + x.tanh();
        assert!((y - want).abs() <= 1e-5 * want.abs().max(1.0), "x={x}: got {y}, want {want}");
    }
}

#[test]
fn stencil_2d_matches_rust() {
    let (h, w) = (64usize, 48usize);
    let src = format!(
        r#"{}
{}
func.func @blur() attributes {{ds.kernel}} {{
  %c1 = arith.constant 1 : index
  %hm = arith.constant {} : index
  "ds.parallel_for"(%c1, %hm) ({{
  ^bb0(%i: index):
    %c1b = arith.constant 1 : index
    %wm = arith.constant {} : index
    scf.for %j = %c1b to %wm step %c1b {{
      %im = arith.subi %i, %c1b : index
      %ip = arith.addi %i, %c1b : index
      %jm = arith.subi %j, %c1b : index
      %jp = arith.addi %j, %c1b : index
      %a = "ds.load"(%im, %j) {{field = @u}} : (index, index) -> f64
      %b = "ds.load"(%ip, %j) {{field = @u}} : (index, index) -> f64
      %c = "ds.load"(%i, %jm) {{field = @u}} : (index, index) -> f64
      %d = "ds.load"(%i, %jp) {{field = @u}} : (index, index) -> f64
      %e = "ds.load"(%i, %j) {{field = @u}} : (index, index) -> f64
      %s1 = arith.addf %a, %b : f64
      %s2 = arith.addf %c, %d : f64
      %s3 = arith.addf %s1, %s2 : f64
      %four = arith.constant 4.0 : f64
      %e4 = arith.mulf %four, %e : f64
      %lap = arith.subf %s3, %e4 : f64
      "ds.store"(%lap, %i, %j) {{field = @v}} : (f64, index, index) -> ()
    }}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#,
        fields_without_grad(&[("u", "f64", &format!("{h}, {w}"))]),
        fields_without_grad(&[("v", "f64", &format!("{h}, {w}"))]),
        h - 1,
        w - 1
    );
    let mut p = program(&src);
    let u: Vec<f64> = (0..h * w).map(|k| ((k * 7919) % 1000) as f64 / 100.0).collect();
    p.field_mut("u").unwrap().copy_from(&u).unwrap();
    p.launch("blur", &[]).unwrap();
    let v: Vec<f64> = p.field("v").unwrap().to_vec().unwrap();
    for i in 0..h {
        for j in 0..w {
            let want = if i == 0 || j == 0 || i == h - 1 || j == w - 1 {
                0.0
            } else {
                u[(i - 1) * w + j] + u[(i + 1) * w + j] + u[i * w + j - 1] + u[i * w + j + 1] - 4.0 * u[i * w + j]
            };
            // The JIT may contract 4*e - s into one fused multiply-add.
            assert!((v[i * w + j] - want).abs() <= 1e-12 * want.abs().max(1.0), "at ({i}, {j})");
        }
    }
}

#[test]
fn atomic_scatter_under_contention_is_exact() {
    let n = 1_000_000i64;
    let src = fields_without_grad(&[("bins", "i32", "16")])
        + &loop_kernel(
            "k",
            "%n: index",
            None,
            r#"    %c16 = arith.constant 16 : index
    %b = arith.remui %i, %c16 : index
    %one = arith.constant 1 : i32
    "ds.atomic_add"(%one, %b) {field = @bins} : (i32, index) -> ()
    %two = arith.constant 2 : i32
    %c0b = arith.constant 0 : index
    "ds.atomic_sub"(%two, %c0b) {field = @bins} : (i32, index) -> ()"#,
        );
    let mut p = program(&src);
    p.launch("k", &[Arg::Index(n)]).unwrap();
    let bins: Vec<i32> = p.field("bins").unwrap().to_vec().unwrap();
    let per_bin = (n / 16) as i32;
    assert_eq!(bins[0], per_bin - 2 * n as i32);
    assert!(bins[1..].iter().all(|&b| b == per_bin), "{bins:?}");
}

#[test]
fn reduction_and_min_max() {
    let n = 50_000usize;
    let x = n.to_string();
    let src = fields_without_grad(&[("x", "f64", &x), ("sum", "f64", ""), ("lo", "f64", ""), ("hi", "f64", "")])
        + &loop_kernel(
            "k",
            "%n: index",
            None,
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    "ds.atomic_add"(%x) {field = @sum} : (f64) -> ()
    "ds.atomic_min"(%x) {field = @lo} : (f64) -> ()
    "ds.atomic_max"(%x) {field = @hi} : (f64) -> ()"#,
        );
    let mut p = program(&src);
    // Integers in f64: the sum is exact in any order.
    let xs: Vec<f64> = (0..n).map(|i| ((i * 37) % 1001) as f64 - 500.0).collect();
    p.field_mut("x").unwrap().copy_from(&xs).unwrap();
    p.launch("k", &[Arg::Index(n as i64)]).unwrap();
    assert_eq!(p.field("sum").unwrap().get::<f64>(&[]).unwrap(), xs.iter().sum::<f64>());
    assert_eq!(p.field("lo").unwrap().get::<f64>(&[]).unwrap(), -500.0);
    assert_eq!(p.field("hi").unwrap().get::<f64>(&[]).unwrap(), 500.0);
}

#[test]
fn if_else_matches_rust() {
    let n = 10_000usize;
    let src = fields_without_grad(&[("x", "f32", &n.to_string()), ("y", "f32", &n.to_string())])
        + &loop_kernel(
            "k",
            "%n: index",
            None,
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %zero = arith.constant 0.0 : f32
    %pos = arith.cmpf ogt, %x, %zero : f32
    %r = scf.if %pos -> (f32) {
      %sq = arith.mulf %x, %x : f32
      scf.yield %sq : f32
    } else {
      %ng = arith.negf %x : f32
      %h = arith.constant 0.5 : f32
      %m = arith.mulf %ng, %h : f32
      scf.yield %m : f32
    }
    %big = arith.constant 100.0 : f32
    %isbig = arith.cmpf ogt, %r, %big : f32
    scf.if %isbig {
      "ds.store"(%big, %i) {field = @y} : (f32, index) -> ()
    } else {
      "ds.store"(%r, %i) {field = @y} : (f32, index) -> ()
    }"#,
        );
    let mut p = program(&src);
    let xs: Vec<f32> = (0..n).map(|i| (i as f32 - 5000.0) * 0.01).collect();
    p.field_mut("x").unwrap().copy_from(&xs).unwrap();
    p.launch("k", &[Arg::Index(n as i64)]).unwrap();
    let ys: Vec<f32> = p.field("y").unwrap().to_vec().unwrap();
    for (x, y) in xs.iter().zip(&ys) {
        let r = if *x > 0.0 { x * x } else { -x * 0.5 };
        assert_eq!(*y, if r > 100.0 { 100.0 } else { r });
    }
}

#[test]
fn serial_inner_loop_with_carried_value() {
    // y[i] = sum_{j < i} j, by a loop whose bound depends on the outer index.
    let n = 2000usize;
    let src = fields_without_grad(&[("y", "i32", &n.to_string())])
        + &loop_kernel(
            "k",
            "%n: index",
            None,
            r#"    %c0i = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %z = arith.constant 0 : i32
    %s = scf.for %j = %c0i to %i step %c1 iter_args(%acc = %z) -> (i32) {
      %jj = arith.index_cast %j : index to i32
      %a = arith.addi %acc, %jj : i32
      scf.yield %a : i32
    }
    "ds.store"(%s, %i) {field = @y} : (i32, index) -> ()"#,
        );
    let mut p = program(&src);
    p.launch("k", &[Arg::Index(n as i64)]).unwrap();
    let ys: Vec<i32> = p.field("y").unwrap().to_vec().unwrap();
    for (i, y) in ys.iter().enumerate() {
        assert_eq!(*y as usize, i * i.saturating_sub(1) / 2, "at {i}");
    }
}

#[test]
fn several_parallel_loops_and_serial_code_run_in_order() {
    let n = 4096usize;
    let src = format!(
        r#"{}
{}
{}
func.func @k(%n: index) attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({{
  ^bb0(%i: index):
    %v = arith.index_cast %i : index to i32
    "ds.store"(%v, %i) {{field = @a}} : (i32, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  %seven = arith.constant 7 : i32
  "ds.store"(%seven) {{field = @total}} : (i32) -> ()
  "ds.parallel_for"(%c0, %n) ({{
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %nm = arith.subi %n, %c1 : index
    %j = arith.subi %nm, %i : index
    %v = "ds.load"(%j) {{field = @a}} : (index) -> i32
    %t = "ds.load"() {{field = @total}} : () -> i32
    %w = arith.muli %v, %t : i32
    "ds.store"(%w, %i) {{field = @b}} : (i32, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#,
        fields_without_grad(&[("a", "i32", &n.to_string())]),
        fields_without_grad(&[("b", "i32", &n.to_string())]),
        fields_without_grad(&[("total", "i32", "")])
    );
    let mut p = program(&src);
    p.launch("k", &[Arg::Index(n as i64)]).unwrap();
    let b: Vec<i32> = p.field("b").unwrap().to_vec().unwrap();
    for (i, v) in b.iter().enumerate() {
        assert_eq!(*v, 7 * (n - 1 - i) as i32);
    }
}

#[test]
fn struct_for_visits_every_cell_of_a_dense_field() {
    let src = format!(
        r#"{}
func.func @k() attributes {{ds.kernel}} {{
  "ds.struct_for"() ({{
  ^bb0(%i: index, %j: index):
    %c10 = arith.constant 10 : index
    %a = arith.muli %i, %c10 : index
    %b = arith.addi %a, %j : index
    %v = arith.index_cast %b : index to i32
    "ds.store"(%v, %i, %j) {{field = @m}} : (i32, index, index) -> ()
    gpu.yield
  }}) {{field = @m}} : () -> ()
  return
}}"#,
        fields_without_grad(&[("m", "i32", "30, 7")])
    );
    let mut p = program(&src);
    p.launch("k", &[]).unwrap();
    let m = p.field("m").unwrap();
    for i in 0..30 {
        for j in 0..7 {
            assert_eq!(m.get::<i32>(&[i, j]).unwrap(), (i * 10 + j) as i32);
        }
    }
}

#[test]
fn bounds_checks_report_kernel_field_index_and_extent() {
    let src = fields_without_grad(&[("x", "f32", "8")])
        + &loop_kernel(
            "k",
            "%n: index",
            None,
            r#"    %c2 = arith.constant 2 : index
    %j = arith.addi %i, %c2 : index
    %v = "ds.load"(%j) {field = @x} : (index) -> f32
    "ds.store"(%v, %i) {field = @x} : (f32, index) -> ()"#,
        );
    let options = CompileOptions { check_bounds: true, ..Default::default() };
    let mut p = Program::with_options(&src, "shift.mlir", &options).unwrap();
    p.launch("k", &[Arg::Index(6)]).unwrap();
    let err = p.launch("k", &[Arg::Index(8)]).unwrap_err();
    let Error::OutOfBounds { kernel, field, access, dim, index, extent, location } = &err else { panic!("{err}") };
    assert_eq!((kernel.as_str(), field.as_str(), *access), ("k", "x", AccessKind::Load));
    assert_eq!((*dim, *index, *extent), (0, 9, 8));
    let at = location.as_ref().expect("the load's location");
    assert_eq!(at.file, "shift.mlir");
    let line = src.lines().position(|l| l.contains(r#""ds.load"(%j)"#)).unwrap() + 1;
    assert_eq!(at.line as usize, line, "{err}");
    assert!(err.to_string().contains("ds.load of @x: index 9 out of bounds in dimension 0 (extent 8)"), "{err}");
}

#[test]
fn compile_errors_carry_locations() {
    let src = fields_without_grad(&[("x", "f32", "8")])
        + &loop_kernel("k", "%n: index", None, r#"    %v = "ds.load"(%i, %i) {field = @x} : (index, index) -> f32"#);
    let err = Program::with_options(&src, "bad.mlir", &CompileOptions::default()).err().expect("must fail");
    let text = err.to_string();
    assert!(text.contains("bad.mlir:") && text.contains("takes 1 indices (one per dimension), got 2"), "{text}");
}

/// The kernel profiler counts every launch of a kernel (gradient kernels
/// launched by the Tape included) while it is on, and none while it is off.
#[test]
fn the_profiler_counts_launches_while_on() {
    let src = crate::common::fields(&[("px", "f32", "8"), ("py", "f32", "8")])
        + &crate::common::loop_kernel(
            "profiled_double",
            "%n: index",
            None,
            r#"    %x = "ds.load"(%i) {field = @px} : (index) -> f32
    %y = arith.addf %x, %x : f32
    "ds.store"(%y, %i) {field = @py} : (f32, index) -> ()"#,
        );
    let mut p = ds_runtime::Program::new(&src).unwrap();
    let launches = || ds_runtime::profiler::totals().into_iter().find(|k| k.kernel == "profiled_double").map_or(0, |k| k.launches);
    p.launch("profiled_double", &[ds_runtime::Arg::Index(8)]).unwrap();
    let before = launches();
    ds_runtime::profiler::enable(true);
    for _ in 0..3 {
        p.launch("profiled_double", &[ds_runtime::Arg::Index(8)]).unwrap();
    }
    ds_runtime::profiler::enable(false);
    p.launch("profiled_double", &[ds_runtime::Arg::Index(8)]).unwrap();
    assert_eq!(launches() - before, 3);
}

/// A loop body's costly part: 64 sines summed into `work[i]` (`%c0`, `%c1`
/// and `%i` defined before), so that a long range is worth splitting.
const SINES: &str = r#"    %c64 = arith.constant 64 : index
    %z = arith.constant 0.0 : f32
    %w = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %z) -> (f32) {
      %ki = arith.index_cast %k : index to i64
      %kf = arith.sitofp %ki : i64 to f32
      %sk = math.sin %kf : f32
      %b = arith.addf %a, %sk : f32
      scf.yield %b : f32
    }
    "ds.store"(%w, %i) {field = @work} : (f32, index) -> ()"#;

/// Updates of an element the iteration owns (`own[i] += 1` in a serial
/// loop, lowered without atomics) and of shared elements (`all[j] += 1`,
/// atomic) are both exact, with the range split over threads and with a
/// short range run inline (by the task's serial twin, without atomics). A
/// loop of 64 sines per iteration (into `work`) makes the atomics cheap
/// enough against the work that the long range does run on all threads.
#[test]
fn owned_and_shared_updates_are_exact_in_parallel_and_inline() {
    for n in [1i64 << 16, 64] {
        owned_and_shared_updates(n);
    }
}

fn owned_and_shared_updates(n: i64) {
    let src = crate::common::fields_without_grad(&[("own", "i32", &n.to_string()), ("all", "i32", "4"), ("work", "f32", &n.to_string())])
        + &crate::common::loop_kernel(
            "updates",
            "%n: index",
            None,
            &format!(
                r#"    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %one = arith.constant 1 : i32
    scf.for %j = %c0 to %c4 step %c1 {{
      "ds.atomic_add"(%one, %i) {{field = @own}} : (i32, index) -> ()
      "ds.atomic_add"(%one, %j) {{field = @all}} : (i32, index) -> ()
    }}
{SINES}"#
            ),
        );
    let mut p = ds_runtime::Program::new(&src).unwrap();
    for _ in 0..3 {
        p.launch("updates", &[ds_runtime::Arg::Index(n)]).unwrap();
    }
    let own: Vec<i32> = p.field("own").unwrap().to_vec().unwrap();
    assert!(own.iter().all(|&v| v == 12), "{:?}", &own[..8]);
    let all: Vec<i32> = p.field("all").unwrap().to_vec().unwrap();
    assert_eq!(all, vec![3 * n as i32; 4]);
}

/// A gradient-style reversed loop (j from hi - 1 down to lo) that reads
/// y[i, j], zeroes it and scatters to g[i, j - 1], g[i, j], g[i, j + 2] and
/// g[i + 1, j], and the same 1-D scatter as a parallel loop over j (y1, g1):
/// `ds-gather-updates` makes every iteration update one element (the border
/// iterations guarded, the zeroing deferred), which must give exactly the
/// old loops' result for every range, empty and shorter than the stencil
/// included, on one thread and on three, and so must the build without the
/// pass (`CompileOptions::gather_updates` off). Values are small integers,
/// so every sum is exact in any order.
#[test]
fn gathered_stencil_updates_match_the_scatter() {
    let (rows, cols) = (6usize, 44usize);
    let src = fields_without_grad(&[("y", "f64", &format!("{rows}, {cols}")), ("g", "f64", &format!("{}, {cols}", rows + 1))])
        + r#"
func.func @scatter(%lo: index, %hi: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c6 = arith.constant 6 : index
  "ds.parallel_for"(%c0, %c6) ({
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    scf.for %m = %lo to %hi step %c1 {
      %last = arith.subi %hi, %c1 : index
      %r = arith.subi %last, %m : index
      %j = arith.addi %r, %lo : index
      %y = "ds.load"(%i, %j) {field = @y} : (index, index) -> f64
      %zero = arith.constant 0.0 : f64
      "ds.store"(%zero, %i, %j) {field = @y} : (f64, index, index) -> ()
      %three = arith.constant 3.0 : f64
      %a = arith.mulf %y, %three : f64
      %jm = arith.subi %j, %c1 : index
      %jp = arith.addi %j, %c2 : index
      %ip = arith.addi %i, %c1 : index
      "ds.atomic_add"(%a, %i, %jm) {field = @g} : (f64, index, index) -> ()
      "ds.atomic_add"(%y, %i, %j) {field = @g} : (f64, index, index) -> ()
      "ds.atomic_sub"(%y, %i, %jp) {field = @g} : (f64, index, index) -> ()
      "ds.atomic_add"(%y, %ip, %j) {field = @g} : (f64, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}
"#;
    let src = src
        + &fields_without_grad(&[("y1", "f64", &cols.to_string()), ("g1", "f64", &cols.to_string())])
        + r#"
func.func @scatter_parallel(%lo: index, %hi: index) attributes {ds.kernel} {
  "ds.parallel_for"(%lo, %hi) ({
  ^bb0(%j: index):
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %y = "ds.load"(%j) {field = @y1} : (index) -> f64
    %zero = arith.constant 0.0 : f64
    "ds.store"(%zero, %j) {field = @y1} : (f64, index) -> ()
    %three = arith.constant 3.0 : f64
    %a = arith.mulf %y, %three : f64
    %jm = arith.subi %j, %c1 : index
    %jp = arith.addi %j, %c2 : index
    "ds.atomic_add"(%a, %jm) {field = @g1} : (f64, index) -> ()
    "ds.atomic_add"(%y, %j) {field = @g1} : (f64, index) -> ()
    "ds.atomic_sub"(%y, %jp) {field = @g1} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
"#;
    // With the gathers (the default) and without (the scatters as written).
    for gather_updates in [true, false] {
        let mut p = Program::with_options(&src, "scatter.mlir", &CompileOptions { gather_updates, ..Default::default() }).unwrap();
        let y0: Vec<f64> = (0..rows * cols).map(|e| ((e * 7) % 11) as f64 + 1.0).collect();
        for threads in [1, 3] {
            for (lo, hi) in [(5usize, 5usize), (9, 3), (1, 2), (1, 3), (2, 5), (4, 8), (1, 41), (3, 40)] {
                let (mut y, mut g) = (y0.clone(), vec![0.0; (rows + 1) * cols]);
                for i in 0..rows {
                    for j in (lo..hi).rev() {
                        let v = y[i * cols + j];
                        y[i * cols + j] = 0.0;
                        g[i * cols + j - 1] += 3.0 * v;
                        g[i * cols + j] += v;
                        g[i * cols + j + 2] -= v;
                        g[(i + 1) * cols + j] += v;
                    }
                }
                p.field_mut("y").unwrap().copy_from(&y0).unwrap();
                p.field_mut("g").unwrap().copy_from(&vec![0.0; (rows + 1) * cols]).unwrap();
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| p.launch("scatter", &[Arg::Index(lo as i64), Arg::Index(hi as i64)])).unwrap();
                assert_eq!(p.field("y").unwrap().to_vec::<f64>().unwrap(), y, "y, range {lo}..{hi}, {threads} threads");
                assert_eq!(p.field("g").unwrap().to_vec::<f64>().unwrap(), g, "g, range {lo}..{hi}, {threads} threads");
                // Row 0 again, as the parallel loop's 1-D fields.
                p.field_mut("y1").unwrap().copy_from(&y0[..cols]).unwrap();
                p.field_mut("g1").unwrap().copy_from(&vec![0.0; cols]).unwrap();
                pool.install(|| p.launch("scatter_parallel", &[Arg::Index(lo as i64), Arg::Index(hi as i64)])).unwrap();
                let g_row: Vec<f64> = g[..cols].to_vec();
                assert_eq!(p.field("y1").unwrap().to_vec::<f64>().unwrap(), y[..cols].to_vec(), "y1, range {lo}..{hi}, {threads} threads");
                assert_eq!(p.field("g1").unwrap().to_vec::<f64>().unwrap(), g_row, "g1, range {lo}..{hi}, {threads} threads");
            }
        }
    }
}

/// A periodic stencil's adjoint along a serial loop over one period
/// (`g[i, (j + 1) % 40] += 2 y`, `g[i, (j + 39) % 40] -= y`, `g[i, j] += y`,
/// y zeroed): gathered, with sources that wrap at the loop's ends; and the
/// same over [0, 39), which is not a period (so left as it is). Both give
/// the plain loop's result exactly, on one thread and on three.
#[test]
fn gathered_periodic_updates_match_the_scatter() {
    let (rows, n) = (5usize, 40usize);
    let kernel = |name: &str, end: usize| {
        format!(
            r#"
func.func @{name}() attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c5 = arith.constant 5 : index
  "ds.parallel_for"(%c0, %c5) ({{
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %end = arith.constant {end} : index
    %n = arith.constant 40 : index
    %c39 = arith.constant 39 : index
    scf.for %j = %c0b to %end step %c1 {{
      %y = "ds.load"(%i, %j) {{field = @y}} : (index, index) -> f64
      %zero = arith.constant 0.0 : f64
      "ds.store"(%zero, %i, %j) {{field = @y}} : (f64, index, index) -> ()
      %two = arith.constant 2.0 : f64
      %a = arith.mulf %y, %two : f64
      %jp = arith.addi %j, %c1 : index
      %right = arith.remsi %jp, %n : index
      %jm = arith.addi %j, %c39 : index
      %left = arith.remsi %jm, %n : index
      "ds.atomic_add"(%a, %i, %right) {{field = @g}} : (f64, index, index) -> ()
      "ds.atomic_sub"(%y, %i, %left) {{field = @g}} : (f64, index, index) -> ()
      "ds.atomic_add"(%y, %i, %j) {{field = @g}} : (f64, index, index) -> ()
    }}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#
        )
    };
    let src = fields_without_grad(&[("y", "f64", &format!("{rows}, {n}")), ("g", "f64", &format!("{rows}, {n}"))])
        + &kernel("period", n)
        + &kernel("not_a_period", n - 1);
    let mut p = program(&src);
    let y0: Vec<f64> = (0..rows * n).map(|e| ((e * 5) % 13) as f64 + 1.0).collect();
    for threads in [1, 3] {
        for (name, end) in [("period", n), ("not_a_period", n - 1)] {
            let (mut y, mut g) = (y0.clone(), vec![0.0; rows * n]);
            for i in 0..rows {
                for j in 0..end {
                    let v = y[i * n + j];
                    y[i * n + j] = 0.0;
                    g[i * n + (j + 1) % n] += 2.0 * v;
                    g[i * n + (j + n - 1) % n] -= v;
                    g[i * n + j] += v;
                }
            }
            p.field_mut("y").unwrap().copy_from(&y0).unwrap();
            p.field_mut("g").unwrap().copy_from(&vec![0.0; rows * n]).unwrap();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| p.launch(name, &[])).unwrap();
            assert_eq!(p.field("y").unwrap().to_vec::<f64>().unwrap(), y, "y, {name}, {threads} threads");
            assert_eq!(p.field("g").unwrap().to_vec::<f64>().unwrap(), g, "g, {name}, {threads} threads");
        }
    }
}

/// A stencil's adjoint (`h[i] += 1; h[i + 1] += 1; h[i + 2] -= 1`, band 2)
/// runs without atomics on four threads, on chunks longer than the band,
/// even chunks and then odd ones: every element gets exactly its updates (no
/// chunk is left out or run twice).
#[test]
fn banded_updates_are_exact_on_several_threads() {
    let n: i64 = 1 << 16;
    let src = crate::common::fields_without_grad(&[("h", "i32", &(n + 2).to_string()), ("work", "f32", &n.to_string())])
        + &crate::common::loop_kernel(
            "banded",
            "%n: index",
            None,
            &format!(
                r#"    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %one = arith.constant 1 : i32
    %i1 = arith.addi %i, %c1 : index
    %i2 = arith.addi %i, %c2 : index
    "ds.atomic_add"(%one, %i) {{field = @h}} : (i32, index) -> ()
    "ds.atomic_add"(%one, %i1) {{field = @h}} : (i32, index) -> ()
    "ds.atomic_sub"(%one, %i2) {{field = @h}} : (i32, index) -> ()
{SINES}"#
            ),
        );
    let mut p = ds_runtime::Program::new(&src).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    pool.install(|| {
        for _ in 0..5 {
            p.launch("banded", &[ds_runtime::Arg::Index(n)]).unwrap();
        }
    });
    let h: Vec<i32> = p.field("h").unwrap().to_vec().unwrap();
    let want = |e: i64| 5 * (i32::from(e < n) + i32::from((1..=n).contains(&e)) - i32::from(e >= 2));
    let wrong: Vec<(i64, i32, i32)> = (0..n + 2).map(|e| (e, h[e as usize], want(e))).filter(|(_, got, want)| got != want).collect();
    assert!(wrong.is_empty(), "{} elements wrong, first {:?}", wrong.len(), &wrong[..wrong.len().min(4)]);
}

/// A scatter through a data-dependent index into a field the task only adds
/// to (`bins[t, idx[i] mod 64] += 1`, `total += 1`: reduction targets) runs
/// on four threads without atomics, each adding into private copies (of row
/// t alone for `bins`: every write of it is to that row) that are summed
/// after: every bin gets exactly its count, over several launches (the
/// copies are zeroed for each) and rows.
#[test]
fn private_copies_of_reduction_targets_are_exact_on_several_threads() {
    let n: i64 = 1 << 16;
    let src = crate::common::fields_without_grad(&[("idx", "i32", &n.to_string()), ("bins", "i32", "3, 64"), ("total", "i32", "")])
        + &crate::common::loop_kernel(
            "histogram",
            "%n: index, %t: index",
            None,
            r#"    %k = "ds.load"(%i) {field = @idx} : (index) -> i32
    %c64 = arith.constant 64 : i32
    %m = arith.remui %k, %c64 : i32
    %b = arith.index_cast %m : i32 to index
    %one = arith.constant 1 : i32
    "ds.atomic_add"(%one, %t, %b) {field = @bins} : (i32, index, index) -> ()
    "ds.atomic_add"(%one) {field = @total} : (i32) -> ()"#,
        );
    let mut p = ds_runtime::Program::new(&src).unwrap();
    let idx: Vec<i32> = (0..n).map(|i| ((i * 7919) % 1000) as i32).collect();
    p.field_mut("idx").unwrap().copy_from(&idx).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    pool.install(|| {
        for t in [1, 1, 1, 2, 1, 1] {
            p.launch("histogram", &[ds_runtime::Arg::Index(n), ds_runtime::Arg::Index(t)]).unwrap();
        }
    });
    let bins: Vec<i32> = p.field("bins").unwrap().to_vec().unwrap();
    let mut want = vec![0i32; 3 * 64];
    for k in &idx {
        want[64 + (*k % 64) as usize] += 5;
        want[128 + (*k % 64) as usize] += 1;
    }
    assert_eq!(bins, want);
    assert_eq!(p.field("total").unwrap().to_vec::<i32>().unwrap(), vec![6 * n as i32]);
}

/// The adjoint's pattern: each iteration reads and zeroes its own element of
/// row t + 1 (`h[t + 1, i]`) and scatters it into row t through a
/// data-dependent index (`h[t, idx[i] mod 64] += ..`). The loads and stores
/// never reach row t, so the scatter's target gets an argument of its own
/// that private copies replace (`ds.task_private` names it): on four
/// threads, without atomics, every element gets exactly its sum and row
/// t + 1 ends zero, over launches walking down the rows.
#[test]
fn private_copies_of_a_field_also_loaded_and_stored_elsewhere_are_exact() {
    let n: i64 = 1 << 16;
    let src = crate::common::fields_without_grad(&[
        ("idx", "i32", &n.to_string()),
        ("h", "i32", &format!("4, {n}")),
        ("work", "f32", &n.to_string()),
    ]) + &crate::common::loop_kernel(
        "down",
        "%n: index, %t: index",
        None,
        &format!(
            r#"    %c1 = arith.constant 1 : index
    %t1 = arith.addi %t, %c1 : index
    %v = "ds.load"(%t1, %i) {{field = @h}} : (index, index) -> i32
    %zero = arith.constant 0 : i32
    "ds.store"(%zero, %t1, %i) {{field = @h}} : (i32, index, index) -> ()
    %key = "ds.load"(%i) {{field = @idx}} : (index) -> i32
    %bins = arith.constant 64 : i32
    %m = arith.remui %key, %bins : i32
    %bin = arith.index_cast %m : i32 to index
    "ds.atomic_add"(%v, %t, %bin) {{field = @h}} : (i32, index, index) -> ()
{SINES}"#
        ),
    );
    let mut p = ds_runtime::Program::new(&src).unwrap();
    let idx: Vec<i32> = (0..n).map(|i| ((i * 7919) % 1000) as i32).collect();
    let mut h: Vec<i32> = (0..4 * n).map(|e| if e >= 3 * n { (e % 7) as i32 + 1 } else { 0 }).collect();
    p.field_mut("idx").unwrap().copy_from(&idx).unwrap();
    p.field_mut("h").unwrap().copy_from(&h).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    pool.install(|| {
        for t in [2, 1, 0] {
            p.launch("down", &[ds_runtime::Arg::Index(n), ds_runtime::Arg::Index(t)]).unwrap();
        }
    });
    for t in [2usize, 1, 0] {
        let n = n as usize;
        for i in 0..n {
            let v = std::mem::take(&mut h[(t + 1) * n + i]);
            h[t * n + (idx[i] % 64) as usize] += v;
        }
    }
    let got: Vec<i32> = p.field("h").unwrap().to_vec().unwrap();
    assert!(h[..64].iter().any(|&v| v != 0), "sums reach row 0");
    let wrong: Vec<usize> = (0..got.len()).filter(|&e| got[e] != h[e]).collect();
    assert!(wrong.is_empty(), "{} elements wrong, first at {:?}", wrong.len(), wrong.first());
}
