//! Generated gradients against central finite differences in f64: one kernel
//! per adjoint rule and per control-flow construct.

use crate::common::{fields, loop_kernel};
use ds_runtime::gradcheck::{Spec, gradcheck, jvpcheck};
use ds_runtime::{Arg, Backend, CompileOptions, Error, Program};

const N: usize = 24;

/// `out[i] = BODY(a[i], b[i], c[i])` over i in [0, N), in f64; BODY defines %r.
fn elementwise(body: &str) -> String {
    fields(&[
        ("a", "f64", "24"),
        ("b", "f64", "24"),
        ("c", "f64", "24"),
        ("out", "f64", "24"),
    ]) + &loop_kernel(
        "k",
        "",
        Some(N),
        r#"    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %b = "ds.load"(%i) {field = @b} : (index) -> f64
    %c = "ds.load"(%i) {field = @c} : (index) -> f64
{body}
    "ds.store"(%r, %i) {field = @out} : (f64, index) -> ()"#
            .replace("{body}", body)
            .as_str(),
    )
}

/// Checks the gradient of `k` (asserting its worst error is below `tol` and
/// that the gradient is not trivially zero), then its tangent kernel `k_jvp`
/// the same way, and against the gradient: forward and reverse mode agree.
fn check(src: &str, spec: Spec, tol: f64) {
    check_with(src, spec, tol, tol, 1e-9);
}

/// [`check`] with its own tolerances for the tangents: against finite
/// differences, and forward against reverse mode.
fn check_with(src: &str, spec: Spec, tol: f64, tangent_tol: f64, reverse_tol: f64) {
    let r = gradcheck(src, &spec).unwrap_or_else(|e| panic!("gradcheck failed to run:\n{e}\n{src}"));
    assert!(r.elements_checked > 0);
    assert!(r.largest_gradient > 1e-3, "gradient is (nearly) zero everywhere: {r:?}");
    assert!(
        r.worst_error < tol,
        "worst relative error {:e} at {} (tolerance {tol:e})",
        r.worst_error,
        r.worst_at
    );
    let j = jvpcheck(src, &spec).unwrap_or_else(|e| panic!("jvpcheck failed to run:\n{e}\n{src}"));
    let fd = &j.finite_differences;
    assert!(fd.largest_gradient > 1e-3, "tangent is (nearly) zero everywhere: {j:?}");
    assert!(
        fd.worst_error < tangent_tol,
        "tangent: worst relative error {:e} at {} (tolerance {tangent_tol:e})",
        fd.worst_error,
        fd.worst_at
    );
    assert!(j.reverse_error < reverse_tol, "forward and reverse mode disagree: {} (relative {:e})", j.reverse_at, j.reverse_error);
    assert!(j.primal_difference == 0.0, "k_jvp computes other outputs than k: {j:?}");
}

fn check_elementwise(body: &str, ranges: [(f64, f64); 3]) {
    let spec = Spec::new(
        "k",
        &[
            ("a", ranges[0].0, ranges[0].1),
            ("b", ranges[1].0, ranges[1].1),
            ("c", ranges[2].0, ranges[2].1),
        ],
        &["out"],
    );
    check(&elementwise(body), spec, 1e-6);
}

const ANY: (f64, f64) = (-1.0, 1.0);
const POS: (f64, f64) = (0.5, 2.0);

macro_rules! elementwise_tests {
    ($($name:ident: $body:expr, $ranges:expr;)*) => {
        $(#[test] fn $name() { check_elementwise($body, $ranges); })*
    };
}

elementwise_tests! {
    addf: "    %r = arith.addf %a, %b : f64", [ANY; 3];
    subf: "    %r = arith.subf %a, %b : f64", [ANY; 3];
    mulf: "    %r = arith.mulf %a, %b : f64", [ANY; 3];
    divf: "    %r = arith.divf %a, %b : f64", [ANY, POS, ANY];
    negf: "    %m = arith.mulf %a, %b : f64\n    %r = arith.negf %m : f64", [ANY; 3];
    maximumf: "    %r = arith.maximumf %a, %b : f64", [ANY; 3];
    minimumf: "    %r = arith.minimumf %a, %b : f64", [ANY; 3];
    maxnumf: "    %r = arith.maxnumf %a, %b : f64", [ANY; 3];
    minnumf: "    %r = arith.minnumf %a, %b : f64", [ANY; 3];
    select: "    %p = arith.cmpf ogt, %a, %b : f64\n    %x = arith.mulf %a, %c : f64\n    %r = arith.select %p, %x, %b : f64", [ANY; 3];
    sin: "    %r = math.sin %a : f64", [ANY; 3];
    cos: "    %r = math.cos %a : f64", [ANY; 3];
    tanh: "    %r = math.tanh %a : f64", [ANY; 3];
    exp: "    %r = math.exp %a : f64", [ANY; 3];
    log: "    %r = math.log %a : f64", [POS, ANY, ANY];
    sqrt: "    %r = math.sqrt %a : f64", [POS, ANY, ANY];
    rsqrt: "    %r = math.rsqrt %a : f64", [POS, ANY, ANY];
    powf: "    %r = math.powf %a, %b : f64", [POS, ANY, ANY];
    absf: "    %r = math.absf %a : f64", [ANY; 3];
    tan: "    %r = math.tan %a : f64", [(-1.2, 1.2), ANY, ANY];
    asin: "    %r = math.asin %a : f64", [(-0.9, 0.9), ANY, ANY];
    acos: "    %r = math.acos %a : f64", [(-0.9, 0.9), ANY, ANY];
    atan: "    %r = math.atan %a : f64", [ANY; 3];
    sinh: "    %r = math.sinh %a : f64", [ANY; 3];
    cosh: "    %r = math.cosh %a : f64", [ANY; 3];
    log2: "    %r = math.log2 %a : f64", [POS, ANY, ANY];
    exp2: "    %r = math.exp2 %a : f64", [ANY; 3];
    atan2: "    %r = math.atan2 %a, %b : f64", [ANY, POS, ANY];
    fma: "    %r = math.fma %a, %b, %c : f64", [ANY; 3];
    remf: "    %r = arith.remf %a, %b : f64", [(1.1, 2.9), (0.6, 0.95), ANY];
    composite: "    %ab = arith.mulf %a, %b : f64\n    %s = math.sin %ab : f64\n    %e = math.exp %c : f64\n    %q = arith.divf %e, %b : f64\n    %r = arith.addf %s, %q : f64", [ANY, POS, ANY];
    floor_is_flat: "    %f = math.floor %a : f64\n    %x = arith.mulf %f, %b : f64\n    %r = arith.addf %x, %c : f64", [(0.1, 0.9), ANY, ANY];
    if_else_with_results: r#"    %z = arith.constant 0.0 : f64
    %p = arith.cmpf ogt, %a, %z : f64
    %r = scf.if %p -> (f64) {
      %x = arith.mulf %a, %b : f64
      %y = math.sin %x : f64
      scf.yield %y : f64
    } else {
      %x = arith.mulf %c, %c : f64
      %y = arith.addf %x, %b : f64
      scf.yield %y : f64
    }"#, [ANY; 3];
    nested_ifs: r#"    %z = arith.constant 0.0 : f64
    %p = arith.cmpf ogt, %a, %z : f64
    %q = arith.cmpf ogt, %b, %z : f64
    %r = scf.if %p -> (f64) {
      %inner = scf.if %q -> (f64) {
        %x = arith.mulf %a, %b : f64
        scf.yield %x : f64
      } else {
        %x = arith.mulf %a, %c : f64
        scf.yield %x : f64
      }
      %w = arith.mulf %inner, %c : f64
      scf.yield %w : f64
    } else {
      scf.yield %b : f64
    }"#, [ANY; 3];
    inner_loop_without_carried_values: r#"    %z = arith.constant 0.0 : f64
    %c0i = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c1 = arith.constant 1 : index
    scf.for %j = %c0i to %c3 step %c1 {
      %jj = arith.index_cast %j : index to i64
      %jf = arith.sitofp %jj : i64 to f64
      %x = arith.mulf %a, %jf : f64
      %y = arith.mulf %x, %b : f64
      "ds.atomic_add"(%y, %i) {field = @out} : (f64, index) -> ()
    }
    %r = arith.mulf %c, %a : f64"#, [ANY; 3];
    carried_loop: r#"    %c0i = arith.constant 0 : index
    %c5 = arith.constant 5 : index
    %c1 = arith.constant 1 : index
    %r = scf.for %j = %c0i to %c5 step %c1 iter_args(%x = %a) -> (f64) {
      %m = arith.mulf %x, %b : f64
      %s = math.sin %m : f64
      %nx = arith.addf %s, %c : f64
      scf.yield %nx : f64
    }"#, [ANY; 3];
    carried_loop_two_values: r#"    %c0i = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c1 = arith.constant 1 : index
    %r, %v = scf.for %j = %c0i to %c4 step %c1 iter_args(%x = %a, %y = %b) -> (f64, f64) {
      %dx = arith.mulf %y, %c : f64
      %nx = arith.addf %x, %dx : f64
      %ny = arith.subf %y, %nx : f64
      scf.yield %nx, %ny : f64, f64
    }"#, [ANY; 3];
    loop_bound_from_outer_index: r#"    %c0i = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c1 = arith.constant 1 : index
    %ub = arith.remui %i, %c4 : index
    %r = scf.for %j = %c0i to %ub step %c1 iter_args(%x = %a) -> (f64) {
      %m = arith.mulf %x, %b : f64
      %nx = arith.addf %m, %c : f64
      scf.yield %nx : f64
    }"#, [ANY; 3];
    loop_inside_if: r#"    %z = arith.constant 0.0 : f64
    %p = arith.cmpf ogt, %c, %z : f64
    %r = scf.if %p -> (f64) {
      %c0i = arith.constant 0 : index
      %c3 = arith.constant 3 : index
      %c1 = arith.constant 1 : index
      %l = scf.for %j = %c0i to %c3 step %c1 iter_args(%x = %a) -> (f64) {
        %m = arith.mulf %x, %b : f64
        scf.yield %m : f64
      }
      scf.yield %l : f64
    } else {
      %m = arith.mulf %a, %c : f64
      scf.yield %m : f64
    }"#, [ANY; 3];
    if_in_carried_loop_in_if: r#"    %z = arith.constant 0.0 : f64
    %p = arith.cmpf ogt, %c, %z : f64
    %r = scf.if %p -> (f64) {
      %e = math.exp %b : f64
      %c0i = arith.constant 0 : index
      %c3 = arith.constant 3 : index
      %c1 = arith.constant 1 : index
      %l = scf.for %j = %c0i to %c3 step %c1 iter_args(%x = %a) -> (f64) {
        %q = arith.cmpf olt, %x, %e : f64
        %y = scf.if %q -> (f64) {
          %s = math.sin %x : f64
          scf.yield %s : f64
        } else {
          %m = arith.mulf %x, %e : f64
          %t = math.tanh %m : f64
          scf.yield %t : f64
        }
        scf.yield %y : f64
      }
      %w = arith.mulf %l, %e : f64
      scf.yield %w : f64
    } else {
      %m = arith.mulf %a, %c : f64
      scf.yield %m : f64
    }"#, [ANY; 3];
    nested_loops: r#"    %c0i = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c1 = arith.constant 1 : index
    %r = scf.for %j = %c0i to %c3 step %c1 iter_args(%x = %a) -> (f64) {
      %in = scf.for %k = %c0i to %c3 step %c1 iter_args(%y = %x) -> (f64) {
        %m = arith.mulf %y, %b : f64
        %sm = math.sin %m : f64
        %t = arith.addf %sm, %y : f64
        scf.yield %t : f64
      }
      %s = arith.addf %in, %c : f64
      scf.yield %s : f64
    }"#, [ANY; 3];
}

#[test]
fn casts_between_float_widths() {
    // Through f32 values the check uses a large step (2^-7) on a function
    // quadratic in the inputs, where central differences are exact up to f32
    // rounding of the perturbed inputs; tolerance 1e-4. The tangents' check
    // moves every input along a random direction, whose steps f32 rounds:
    // tolerance 1e-3 there; and the two modes round their f32 products
    // differently (about 1e-7 relative): 1e-6 between them.
    let src = fields(&[("h", "f32", "8"), ("a", "f64", "8"), ("out", "f64", "8")])
        + &loop_kernel(
            "k",
            "",
            Some(8),
            r#"    %h = "ds.load"(%i) {field = @h} : (index) -> f32
    %e = arith.extf %h : f32 to f64
    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %t = arith.truncf %a : f64 to f32
    %te = arith.extf %t : f32 to f64
    %p = arith.mulf %e, %te : f64
    %q = arith.mulf %p, %e : f64
    "ds.store"(%q, %i) {field = @out} : (f64, index) -> ()"#,
        );
    let mut spec = Spec::new("k", &[("h", -1.0, 1.0), ("a", -1.0, 1.0)], &["out"]);
    spec.step = Some(1.0 / 128.0);
    check_with(&src, spec, 1e-4, 1e-3, 1e-6);
}

#[test]
fn atomic_scatter_and_gather() {
    let src = fields(&[("a", "f64", "24"), ("b", "f64", "24"), ("bins", "f64", "4")])
        + &loop_kernel(
            "k",
            "",
            Some(N),
            r#"    %c4 = arith.constant 4 : index
    %c7 = arith.constant 7 : index
    %bin = arith.remui %i, %c4 : index
    %i7 = arith.muli %i, %c7 : index
    %j = arith.remui %i7, %n : index
    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %aj = "ds.load"(%j) {field = @a} : (index) -> f64
    %b = "ds.load"(%i) {field = @b} : (index) -> f64
    %x = arith.mulf %a, %aj : f64
    %y = arith.mulf %x, %b : f64
    "ds.atomic_add"(%y, %bin) {field = @bins} : (f64, index) -> ()
    "ds.atomic_sub"(%b, %bin) {field = @bins} : (f64, index) -> ()"#,
        );
    check(
        &src,
        Spec::new("k", &[("a", -1.0, 1.0), ("b", -1.0, 1.0)], &["bins"]),
        1e-6,
    );
}

#[test]
fn store_then_load_of_the_same_element() {
    // The time_integrate pattern: v[i] is stored, then read back for x[i].
    let src = fields(&[
        ("v0", "f64", "8"),
        ("f", "f64", "8"),
        ("x0", "f64", "8"),
        ("v", "f64", "8"),
        ("x", "f64", "8"),
    ]) + &loop_kernel(
        "k",
        "%dt: f64",
        Some(8),
        r#"    %v0 = "ds.load"(%i) {field = @v0} : (index) -> f64
    %f = "ds.load"(%i) {field = @f} : (index) -> f64
    %x0 = "ds.load"(%i) {field = @x0} : (index) -> f64
    %damp = arith.constant 0.9 : f64
    %dv = arith.mulf %dt, %f : f64
    %vs = arith.mulf %damp, %v0 : f64
    %v = arith.addf %vs, %dv : f64
    "ds.store"(%v, %i) {field = @v} : (f64, index) -> ()
    %vr = "ds.load"(%i) {field = @v} : (index) -> f64
    %dx = arith.mulf %dt, %vr : f64
    %x = arith.addf %x0, %dx : f64
    "ds.store"(%x, %i) {field = @x} : (f64, index) -> ()"#,
    );
    let spec = Spec::new(
        "k",
        &[("v0", -1.0, 1.0), ("f", -1.0, 1.0), ("x0", -1.0, 1.0)],
        &["x", "v"],
    )
    .args(&[Arg::F64(0.1)]);
    check(&src, spec, 1e-6);
}

#[test]
fn several_parallel_loops_and_a_2d_field() {
    let src = format!(
        r#"{}
func.func @k() attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  %c6 = arith.constant 6 : index
  "ds.parallel_for"(%c0, %c4) ({{
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    scf.for %j = %c0b to %c6 step %c1 {{
      %a = "ds.load"(%i, %j) {{field = @m}} : (index, index) -> f64
      %s = math.sin %a : f64
      %w = arith.mulf %s, %a : f64
      "ds.store"(%w, %i, %j) {{field = @t}} : (f64, index, index) -> ()
    }}
    gpu.yield
  }}) : (index, index) -> ()
  "ds.parallel_for"(%c0, %c6) ({{
  ^bb0(%j: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    scf.for %i = %c0b to %c4 step %c1 {{
      %t = "ds.load"(%i, %j) {{field = @t}} : (index, index) -> f64
      %e = math.exp %t : f64
      "ds.atomic_add"(%e, %j) {{field = @col}} : (f64, index) -> ()
    }}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#,
        fields(&[("m", "f64", "4, 6"), ("t", "f64", "4, 6"), ("col", "f64", "6")])
    );
    check(&src, Spec::new("k", &[("m", -1.0, 1.0)], &["col"]), 1e-6);
}

/// A nonlinear stencil along an inner serial loop, `v[i, j] = u[i, j - 1] *
/// u[i, j + 1] + sin(u[i, j])`: its gradient's reversed loop scatters to
/// u_grad[i, j - 1 .. j + 1] and zeroes v_grad[i, j]; on the CPU
/// `ds-gather-updates` makes each iteration gather into u_grad[i, j] alone,
/// recomputing the neighbours' partials (products of the loads of u).
#[test]
fn stencil_along_a_serial_loop() {
    let src = format!(
        r#"{}
func.func @k() attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  "ds.parallel_for"(%c0, %c3) ({{
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %c7 = arith.constant 7 : index
    scf.for %j = %c1 to %c7 step %c1 {{
      %jm = arith.subi %j, %c1 : index
      %jp = arith.addi %j, %c1 : index
      %l = "ds.load"(%i, %jm) {{field = @u}} : (index, index) -> f64
      %r = "ds.load"(%i, %jp) {{field = @u}} : (index, index) -> f64
      %c = "ds.load"(%i, %j) {{field = @u}} : (index, index) -> f64
      %p = arith.mulf %l, %r : f64
      %s = math.sin %c : f64
      %w = arith.addf %p, %s : f64
      "ds.store"(%w, %i, %j) {{field = @v}} : (f64, index, index) -> ()
    }}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#,
        fields(&[("u", "f64", "3, 8"), ("v", "f64", "3, 8")])
    );
    check(&src, Spec::new("k", &[("u", -1.0, 1.0)], &["v"]), 1e-6);
}

#[test]
fn top_level_serial_code() {
    // The paper's compute_loss: no loop, loss = (|area| - 0.1)^2 from three points.
    let src = format!(
        r#"{}
func.func @area_loss() attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %x0 = "ds.load"(%c0, %c0) {{field = @x}} : (index, index) -> f64
  %y0 = "ds.load"(%c0, %c1) {{field = @x}} : (index, index) -> f64
  %x1 = "ds.load"(%c1, %c0) {{field = @x}} : (index, index) -> f64
  %y1 = "ds.load"(%c1, %c1) {{field = @x}} : (index, index) -> f64
  %x2 = "ds.load"(%c2, %c0) {{field = @x}} : (index, index) -> f64
  %y2 = "ds.load"(%c2, %c1) {{field = @x}} : (index, index) -> f64
  %ax = arith.subf %x0, %x1 : f64
  %ay = arith.subf %y0, %y1 : f64
  %bx = arith.subf %x0, %x2 : f64
  %by = arith.subf %y0, %y2 : f64
  %p = arith.mulf %ax, %by : f64
  %q = arith.mulf %ay, %bx : f64
  %cr = arith.subf %p, %q : f64
  %half = arith.constant 0.5 : f64
  %ar = arith.mulf %half, %cr : f64
  %area = math.absf %ar : f64
  %target = arith.constant 0.1 : f64
  %d = arith.subf %area, %target : f64
  %l = arith.mulf %d, %d : f64
  "ds.store"(%l) {{field = @loss}} : (f64) -> ()
  return
}}"#,
        fields(&[("x", "f64", "3, 2"), ("loss", "f64", "")])
    );
    check(&src, Spec::new("area_loss", &[("x", -1.0, 1.0)], &["loss"]), 1e-6);
}

#[test]
fn struct_for_over_a_dense_field() {
    let src = format!(
        r#"{}
func.func @k() attributes {{ds.kernel}} {{
  "ds.struct_for"() ({{
  ^bb0(%i: index, %j: index):
    %a = "ds.load"(%i, %j) {{field = @g}} : (index, index) -> f64
    %s = arith.mulf %a, %a : f64
    %c = math.cos %s : f64
    "ds.atomic_add"(%c, %i) {{field = @rows}} : (f64, index) -> ()
    gpu.yield
  }}) {{field = @g}} : () -> ()
  return
}}"#,
        fields(&[("g", "f64", "3, 5"), ("rows", "f64", "3")])
    );
    check(&src, Spec::new("k", &[("g", -1.0, 1.0)], &["rows"]), 1e-6);
}

#[test]
fn if_without_else_guarding_a_store() {
    let src = fields(&[("a", "f64", "24"), ("b", "f64", "24"), ("out", "f64", "24")])
        + &loop_kernel(
            "k",
            "",
            Some(N),
            r#"    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %b = "ds.load"(%i) {field = @b} : (index) -> f64
    %z = arith.constant 0.0 : f64
    %p = arith.cmpf ogt, %a, %z : f64
    scf.if %p {
      %x = arith.mulf %a, %b : f64
      "ds.store"(%x, %i) {field = @out} : (f64, index) -> ()
    }"#,
        );
    check(
        &src,
        Spec::new("k", &[("a", -1.0, 1.0), ("b", -1.0, 1.0)], &["out"]),
        1e-6,
    );
}

#[test]
fn mass_spring_friction_kernel() {
    // SIMULATORS.md time_integrate with the wall and friction projection, 2-D, per mass.
    let src = fields(&[
        ("v0", "f64", "3, 2"),
        ("f", "f64", "3, 2"),
        ("x0", "f64", "3, 2"),
        ("v", "f64", "3, 2"),
        ("x", "f64", "3, 2"),
    ]) + &loop_kernel(
        "integrate",
        "%dt: f64",
        Some(3),
        r#"    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %vx0 = "ds.load"(%i, %c0b) {field = @v0} : (index, index) -> f64
    %vy0 = "ds.load"(%i, %c1) {field = @v0} : (index, index) -> f64
    %fx = "ds.load"(%i, %c0b) {field = @f} : (index, index) -> f64
    %fy = "ds.load"(%i, %c1) {field = @f} : (index, index) -> f64
    %xx0 = "ds.load"(%i, %c0b) {field = @x0} : (index, index) -> f64
    %s = arith.constant 0.98 : f64
    %vx1 = arith.mulf %s, %vx0 : f64
    %vy1 = arith.mulf %s, %vy0 : f64
    %dfx = arith.mulf %dt, %fx : f64
    %dfy = arith.mulf %dt, %fy : f64
    %vx = arith.addf %vx1, %dfx : f64
    %vy = arith.addf %vy1, %dfy : f64
    %dxx = arith.mulf %dt, %vx : f64
    %nx = arith.addf %xx0, %dxx : f64
    %wall = arith.constant 0.4 : f64
    %z = arith.constant 0.0 : f64
    %hit = arith.cmpf ogt, %nx, %wall : f64
    %moving = arith.cmpf ogt, %vx, %z : f64
    %both = arith.andi %hit, %moving : i1
    %ovx, %ovy = scf.if %both -> (f64, f64) {
      %fr = arith.constant 0.01 : f64
      %lim = arith.mulf %fr, %vx : f64
      %ay = math.absf %vy : f64
      %m = arith.minimumf %ay, %lim : f64
      %pos = arith.cmpf ogt, %vy, %z : f64
      %nm = arith.negf %m : f64
      %sh = arith.select %pos, %nm, %m : f64
      %nvy = arith.addf %vy, %sh : f64
      scf.yield %z, %nvy : f64, f64
    } else {
      scf.yield %vx, %vy : f64, f64
    }
    "ds.store"(%ovx, %i, %c0b) {field = @v} : (f64, index, index) -> ()
    "ds.store"(%ovy, %i, %c1) {field = @v} : (f64, index, index) -> ()
    "ds.store"(%nx, %i, %c0b) {field = @x} : (f64, index, index) -> ()"#,
    );
    let spec = Spec::new(
        "integrate",
        &[("v0", -1.0, 1.0), ("f", -1.0, 1.0), ("x0", 0.3, 0.5)],
        &["v", "x"],
    )
    .args(&[Arg::F64(0.05)]);
    check(&src, spec, 1e-6);
}

fn long_carried_loop(iterations: usize) -> String {
    fields(&[("a", "f64", "4"), ("out", "f64", "4")])
        + &loop_kernel(
            "k",
            "",
            Some(4),
            r#"    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant {iterations} : index
    %k = arith.constant 0.999 : f64
    %r = scf.for %j = %c0b to %m step %c1 iter_args(%x = %a) -> (f64) {
      %y = arith.mulf %x, %k : f64
      %s = math.sin %y : f64
      %t = arith.addf %y, %s : f64
      %h = arith.constant 0.5 : f64
      %u = arith.mulf %t, %h : f64
      scf.yield %u : f64
    }
    "ds.store"(%r, %i) {field = @out} : (f64, index) -> ()"#
                .replace("{iterations}", &iterations.to_string())
                .as_str(),
        )
}

#[test]
fn ad_stack_within_capacity() {
    check(
        &long_carried_loop(200),
        Spec::new("k", &[("a", 0.5, 1.5)], &["out"]),
        1e-6,
    );
}

#[test]
fn ad_stack_overflow_fails_the_launch() {
    let src = long_carried_loop(300);
    let options = CompileOptions {
        autodiff: true,
        ..Default::default()
    };
    let mut p = Program::with_options(&src, "loop.mlir", &options).unwrap();
    p.launch("k", &[]).unwrap();
    let err = p.launch("k_grad", &[]).unwrap_err();
    let Error::Assertion { kernel, message, location } = &err else {
        panic!("{err}")
    };
    assert_eq!(kernel, "k_grad");
    assert_eq!(location.as_ref().map(|l| l.file.as_str()), Some("loop.mlir"), "{err}");
    assert!(
        message.contains("autodiff stack overflow") && message.contains("more than 256 iterations"),
        "{message}"
    );
    // A larger stack makes it fit.
    let options = CompileOptions {
        autodiff: true,
        autodiff_options: vec![("stack-capacity".into(), "512".into())],
        ..Default::default()
    };
    let mut p = Program::with_options(&src, "loop.mlir", &options).unwrap();
    p.launch("k", &[]).unwrap();
    p.launch("k_grad", &[]).unwrap();
}

#[test]
fn appendix_c_reduction_into_a_scalar() {
    let src = fields(&[("x", "f64", "32"), ("y", "f64", "32"), ("L", "f64", "")])
        + &loop_kernel(
            "reduce",
            "",
            Some(32),
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %y = "ds.load"(%i) {field = @y} : (index) -> f64
    %d = arith.subf %x, %y : f64
    %sq = arith.mulf %d, %d : f64
    %half = arith.constant 0.5 : f64
    %l = arith.mulf %half, %sq : f64
    "ds.atomic_add"(%l) {field = @L} : (f64) -> ()"#,
        );
    check(
        &src,
        Spec::new("reduce", &[("x", -1.0, 1.0), ("y", -1.0, 1.0)], &["L"]),
        1e-6,
    );
}

#[test]
fn parameters_and_a_range_from_a_parameter() {
    let src = format!(
        r#"{}
func.func @k(%n: index, %s: f64) attributes {{ds.kernel}} {{
  %c1 = arith.constant 1 : index
  %two = arith.constant 2.0 : f64
  %s2 = arith.mulf %s, %two : f64
  "ds.parallel_for"(%c1, %n) ({{
  ^bb0(%i: index):
    %c1b = arith.constant 1 : index
    %im = arith.subi %i, %c1b : index
    %a = "ds.load"(%i) {{field = @a}} : (index) -> f64
    %p = "ds.load"(%im) {{field = @a}} : (index) -> f64
    %d = arith.subf %a, %p : f64
    %e = math.exp %d : f64
    %l = math.log %e : f64
    %r = arith.mulf %l, %s2 : f64
    "ds.store"(%r, %i) {{field = @out}} : (f64, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#,
        fields(&[("a", "f64", "16"), ("out", "f64", "16")])
    );
    let spec = Spec::new("k", &[("a", -1.0, 1.0)], &["out"]).args(&[Arg::Index(16), Arg::F64(0.7)]);
    check(&src, spec, 1e-6);
}

/// Taichi's kink conventions: d|a|/da at 0 is 0 (sgn), and ±1 either side.
#[test]
fn abs_has_a_zero_derivative_at_zero() {
    let src = elementwise("    %r = math.absf %a : f64");
    let mut p = Program::with_options(&src, "abs.mlir", &CompileOptions { autodiff: true, ..Default::default() }).unwrap();
    let xs: Vec<f64> = (0..N).map(|i| i as f64 - 8.0).collect();
    p.field_mut("a").unwrap().copy_from(&xs).unwrap();
    p.launch("k", &[]).unwrap();
    p.field_mut("out_grad").unwrap().fill(1.0f64).unwrap();
    p.launch("k_grad", &[]).unwrap();
    let grads: Vec<f64> = p.field("a_grad").unwrap().to_vec().unwrap();
    for (x, g) in xs.iter().zip(&grads) {
        assert_eq!(*g, x.signum() * f64::from(*x != 0.0), "d|a|/da at {x}");
    }
}

#[test]
fn forward_and_reverse_mode_agree_on_the_kernel_corpus() {
    // Every kernel @k of test/kernels (f32): its tangent kernel against
    // finite differences along a random direction of every field it reads,
    // and against its gradient kernel (w . J v against (J^T w) . v).
    let files = crate::common::corpus();
    assert!(files.len() >= 6, "test/kernels: {} files", files.len());
    for (name, src) in &files {
        let p = Program::with_options(src, name, &CompileOptions { autodiff: true, ..Default::default() }).unwrap();
        let info = p.kernel_info("k").unwrap();
        let field = |i: &usize| p.fields()[*i].info.clone();
        let reads: Vec<_> = info.reads.iter().filter(|i| !info.writes.contains(i)).map(field).filter(|f| f.grad.is_some()).collect();
        let writes: Vec<_> = info.writes.iter().map(field).filter(|f| f.grad.is_some()).collect();
        let inputs: Vec<(&str, f64, f64)> = reads.iter().map(|f| (f.name.as_str(), 0.5, 1.5)).collect();
        let outputs: Vec<&str> = writes.iter().map(|f| f.name.as_str()).collect();
        let mut spec = Spec::new("k", &inputs, &outputs);
        spec.step = Some(1.0 / 64.0);
        let j = jvpcheck(src, &spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fd = &j.finite_differences;
        assert!(fd.largest_gradient > 1e-3, "{name}: tangent is (nearly) zero: {j:?}");
        // f32 outputs: at this step central differences carry rounding of
        // about 1e-5 absolute, a few percent of the smallest tangents (the
        // error's floor is 1e-4 of the largest); the agreement with reverse
        // mode is the precise check.
        assert!(fd.worst_error < 0.1, "{name}: tangent against finite differences: {:e} at {}", fd.worst_error, fd.worst_at);
        assert!(j.reverse_error < 1e-5, "{name}: forward and reverse mode disagree: {} ({:e})", j.reverse_at, j.reverse_error);
        assert!(j.primal_difference == 0.0, "{name}: k_jvp computes other outputs than k: {j:?}");
    }
}
