//! Each construct of #[kernel] against plain Rust, and gradchecks of macro kernels.

use diffsim::prelude::*;
use ds_runtime::gradcheck::{Spec, gradcheck};

#[kernel]
fn elementwise(x: &ScalarField, y: &ScalarField, n: usize, a: f64) {
    for i in 0..n {
        let v = x[(i,)];
        let mut r = v * a + 1.0;
        r = r * v.sin();
        y[(i,)] = r + v.exp() / (v * v + 2.0);
    }
}

#[test]
fn elementwise_math_and_params() {
    let mut pb = ProgramBuilder::new();
    let x = pb.scalar::<f64>("x", &[64], true);
    let y = pb.scalar::<f64>("y", &[64], true);
    pb.kernel(elementwise(&x, &y));
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..64).map(|i| i as f64 * 0.05 - 1.0).collect();
    p.field_mut("x").unwrap().copy_from(&xs).unwrap();
    p.launch("elementwise", &[Arg::Index(64), Arg::F64(0.5)]).unwrap();
    let ys: Vec<f64> = p.field("y").unwrap().to_vec().unwrap();
    for (x, y) in xs.iter().zip(&ys) {
        let want = (x * 0.5 + 1.0) * x.sin() + x.exp() / (x * x + 2.0);
        assert!((y - want).abs() < 1e-12, "{x}: {y} vs {want}");
    }
    let spec = Spec::new("elementwise", &[("x", -1.0, 1.0)], &["y"]).args(&[Arg::Index(64), Arg::F64(0.5)]);
    let r = gradcheck(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-3, "{r:?}");
}

#[func]
fn smooth_step(x: Expr) -> Expr {
    let y = x * x * (3.0 - 2.0 * x);
    if x < 0.0 { 0.0 * x } else { y }
}

#[kernel]
fn control_flow(a: &ScalarField, out: &ScalarField, hist: &ScalarField) {
    for i in 0..32usize {
        let x = a[(i,)];
        let mut acc = x;
        let mut steps = 0.0 * x;
        for j in 0..(i % 5) {
            acc = acc * 0.5 + (j as f64);
            steps += 1.0;
        }
        if x > 0.0 && !(x > 0.8) {
            acc = acc + smooth_step(x);
        } else if x < -0.5 || x > 0.8 {
            acc = -acc
        }
        let mut poly = 0.0 * x;
        for k in unroll(0..3) {
            poly = poly + x * (k as f64 + 1.0);
        }
        out[(i,)] = acc + poly + steps;
        hist[((i % 4),)] += x;
    }
}

// Written like the kernel, conditions included.
#[allow(clippy::neg_cmp_op_on_partial_ord, clippy::manual_range_contains)]
fn reference(x: f64, i: usize) -> f64 {
    let mut acc = x;
    let mut steps = 0.0;
    for j in 0..(i % 5) {
        acc = acc * 0.5 + j as f64;
        steps += 1.0;
    }
    let smooth = if x < 0.0 { 0.0 } else { x * x * (3.0 - 2.0 * x) };
    if x > 0.0 && !(x > 0.8) {
        acc += smooth;
    } else if x < -0.5 || x > 0.8 {
        acc = -acc;
    }
    acc + 6.0 * x + steps
}

#[test]
fn branches_serial_loops_unrolling_funcs_and_atomics() {
    let mut pb = ProgramBuilder::new();
    let a = pb.scalar::<f64>("a", &[32], true);
    let out = pb.scalar::<f64>("out", &[32], true);
    let hist = pb.scalar::<f64>("hist", &[4], true);
    pb.kernel(control_flow(&a, &out, &hist));
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..32).map(|i| i as f64 / 16.0 - 1.0).collect();
    p.field_mut("a").unwrap().copy_from(&xs).unwrap();
    p.launch("control_flow", &[]).unwrap();
    let got: Vec<f64> = p.field("out").unwrap().to_vec().unwrap();
    for (i, x) in xs.iter().enumerate() {
        assert!((got[i] - reference(*x, i)).abs() < 1e-12, "{i}: {} vs {}", got[i], reference(*x, i));
    }
    let hist_got: Vec<f64> = p.field("hist").unwrap().to_vec().unwrap();
    for (b, got) in hist_got.iter().enumerate() {
        let want: f64 = xs.iter().enumerate().filter(|(i, _)| i % 4 == b).map(|(_, x)| x).sum();
        assert!((got - want).abs() < 1e-12);
    }
    // Inputs away from the branch points (0, +-0.5, 0.8): a smooth region.
    let spec = Spec::new("control_flow", &[("a", 0.1, 0.7)], &["out", "hist"]);
    let r = gradcheck(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-3, "{r:?}");
}

#[kernel]
fn vectors(p: &VectorField<2>, q: &VectorField<2>, m: &ScalarField, out: &VectorField<2>, s: &ScalarField) {
    for i in 0..8usize {
        let a = p[(i,)];
        let b = q[(i,)];
        let n = (a - b).normalized();
        let outer = a.outer(&b);
        let mat = Matrix([[m[(i, 0usize)], m[(i, 1usize)]], [m[(i, 2usize)], m[(i, 3usize)]]]);
        let (r, sym) = mat.polar();
        let back = r.matmul(&sym);
        let inv = mat.inverse().matmul(&mat);
        out[(i,)] = n * a.dot(&b) + outer.transpose().mul_vec(&a) * 0.1;
        s[(i,)] = a.norm() + mat.determinant() + back.at(0, 1) + inv.at(0, 0) + a.cross(&b);
    }
}

#[test]
fn vectors_and_matrices() {
    let mut pb = ProgramBuilder::new();
    let (p, q) = (pb.vector::<f64, 2>("p", &[8], true), pb.vector::<f64, 2>("q", &[8], true));
    let m = pb.scalar::<f64>("m", &[8, 4], true);
    let out = pb.vector::<f64, 2>("out", &[8], true);
    let s = pb.scalar::<f64>("s", &[8], true);
    pb.kernel(vectors(&p, &q, &m, &out, &s));
    let mut prog = pb.build().unwrap();
    let mut rng = ds_runtime::gradcheck::Rng(3);
    let mut fill = |name: &str, n: usize| -> Vec<f64> {
        let v: Vec<f64> = (0..n).map(|_| rng.uniform(0.5, 1.5)).collect();
        prog.field_mut(name).unwrap().copy_from(&v).unwrap();
        v
    };
    let (pv, qv, mv) = (fill("p", 16), fill("q", 16), fill("m", 32));
    prog.launch("vectors", &[]).unwrap();
    let (o, sv): (Vec<f64>, Vec<f64>) = (prog.field("out").unwrap().to_vec().unwrap(), prog.field("s").unwrap().to_vec().unwrap());
    for i in 0..8 {
        let (a, b) = ([pv[2 * i], pv[2 * i + 1]], [qv[2 * i], qv[2 * i + 1]]);
        let d = [a[0] - b[0], a[1] - b[1]];
        let dn = (d[0] * d[0] + d[1] * d[1]).sqrt();
        let dot = a[0] * b[0] + a[1] * b[1];
        // outer(a, b)^T a = b (a . a)
        let aa = a[0] * a[0] + a[1] * a[1];
        let want = [d[0] / dn * dot + 0.1 * b[0] * aa, d[1] / dn * dot + 0.1 * b[1] * aa];
        assert!((o[2 * i] - want[0]).abs() < 1e-12 && (o[2 * i + 1] - want[1]).abs() < 1e-12, "vector {i}");
        let mm = &mv[4 * i..4 * i + 4];
        let det = mm[0] * mm[3] - mm[1] * mm[2];
        // R S = M (polar), inverse(M) M = I.
        let want_s = aa.sqrt() + det + mm[1] + 1.0 + (a[0] * b[1] - a[1] * b[0]);
        assert!((sv[i] - want_s).abs() < 1e-10, "scalar {i}: {} vs {want_s}", sv[i]);
    }
    let spec = Spec::new("vectors", &[("p", 0.5, 1.5), ("q", 0.5, 1.5), ("m", 0.5, 1.5)], &["out", "s"]);
    let r = gradcheck(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6, "{r:?}");
}

#[kernel]
fn type_mismatch(a: &ScalarField, b: &ScalarField) {
    for i in 0..4usize {
        b[(i,)] = a[(i,)] + (i as f32);
    }
}

#[test]
fn build_errors_name_the_rust_line() {
    let mut pb = ProgramBuilder::new();
    let a = pb.scalar::<f64>("a", &[4], true);
    let b = pb.scalar::<f64>("b", &[4], true);
    let err = type_mismatch(&a, &b).err().expect("f64 + f32 must fail");
    assert!(err.contains("tests/constructs.rs:") && err.contains("f32 and f64 values mixed"), "{err}");
}

/// Every op the frontend emitted in these kernels has an adjoint rule or a
/// non-differentiable entry in ds-autodiff.
#[test]
fn every_emitted_op_is_classified_for_autodiff() {
    let mut pb = ProgramBuilder::new();
    let (a, out, hist) = (pb.scalar::<f64>("a", &[32], true), pb.scalar::<f64>("out", &[32], true), pb.scalar::<f64>("hist", &[4], true));
    let (p, q) = (pb.vector::<f64, 2>("p", &[8], true), pb.vector::<f64, 2>("q", &[8], true));
    let (m, o, s) = (pb.scalar::<f64>("m", &[8, 4], true), pb.vector::<f64, 2>("o", &[8], true), pb.scalar::<f64>("s", &[8], true));
    let texts: Vec<String> = [elementwise(&a, &out), control_flow(&a, &out, &hist), vectors(&p, &q, &m, &o, &s)]
        .into_iter()
        .map(|k| k.unwrap().text)
        .collect();
    let mut names: Vec<String> = Vec::new();
    for text in &texts {
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_')) {
            let is_op = ["arith.", "math.", "scf.", "ds.", "gpu."].iter().any(|p| word.starts_with(p));
            // `ds.kernel` is the attribute marking the function, not an op.
            if is_op && word != "ds.kernel" && !names.contains(&word.to_string()) {
                names.push(word.to_string());
            }
        }
    }
    assert!(names.len() > 15, "{names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| ds_passes::autodiff::rules::classify(n).is_none()).collect();
    assert!(missing.is_empty(), "emitted ops with no autodiff entry: {missing:?}");
}

#[test]
fn programs_build_for_cuda_or_say_why_not() {
    let mut pb = ProgramBuilder::new();
    let x = pb.scalar::<f64>("x", &[64], true);
    let y = pb.scalar::<f64>("y", &[64], true);
    let k = pb.kernel(elementwise(&x, &y));
    match pb.build_cuda() {
        Ok(mut gpu) => k.launch(&mut gpu, &[Arg::Index(64), Arg::F64(0.5)]).unwrap(),
        Err(e) => {
            assert!(!ds_runtime::cuda::driver_present(), "driver present but: {e}");
            assert!(e.to_string().contains("no CUDA driver"), "{e}");
        }
    }
}
