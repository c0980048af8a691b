//! Each construct of #[kernel] against plain Rust, and gradchecks of macro
//! kernels in both modes of autodiff.

use diffsim::prelude::*;
use ds_runtime::Arg;
use ds_runtime::gradcheck::{Report, Spec, gradcheck, jvpcheck};

/// The gradcheck of a kernel, and of its tangent kernel: the report's worst
/// error is the worse of the gradient's and the tangents' (each against
/// finite differences); the tangents must also agree with the gradient
/// (w . J v against (J^T w) . v) and the tangent kernel compute the
/// kernel's outputs.
fn both_modes(source: &str, spec: &Spec) -> Result<Report, ds_runtime::Error> {
    let mut r = gradcheck(source, spec)?;
    let j = jvpcheck(source, spec)?;
    assert!(j.reverse_error < 1e-9, "{}: forward and reverse mode disagree: {}", spec.kernel, j.reverse_at);
    assert!(j.primal_difference == 0.0, "{}: k_jvp computes other outputs than k: {j:?}", spec.kernel);
    let fd = j.finite_differences;
    if fd.worst_error.is_nan() || fd.worst_error > r.worst_error {
        (r.worst_error, r.worst_at) = (fd.worst_error, format!("tangent: {}", fd.worst_at));
    }
    r.largest_gradient = r.largest_gradient.min(fd.largest_gradient);
    Ok(r)
}

type S = ScalarField<f64, 1>;
type V2 = VectorField<f64, 2, 1>;

#[kernel]
fn elementwise(x: &S, y: &S, n: usize, a: f64) {
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
    let x: GradField<f64, 1> = pb.field_with_grad("x", [64]);
    let y: GradField<f64, 1> = pb.field_with_grad("y", [64]);
    let k = pb.kernel(elementwise(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..64).map(|i| i as f64 * 0.05 - 1.0).collect();
    x.copy_from(&mut p, &xs).unwrap();
    k.launch(&mut p, (64, 0.5)).unwrap();
    let ys = y.to_vec(&p).unwrap();
    for (x, y) in xs.iter().zip(&ys) {
        let want = (x * 0.5 + 1.0) * x.sin() + x.exp() / (x * x + 2.0);
        assert!((y - want).abs() < 1e-12, "{x}: {y} vs {want}");
    }
    let spec = Spec::new("elementwise", &[("x", -1.0, 1.0)], &["y"]).args(&[Arg::Index(64), Arg::F64(0.5)]);
    let r = both_modes(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-3, "{r:?}");
}

#[func]
fn smooth_step(x: Expr) -> Expr {
    let y = x * x * (3.0 - 2.0 * x);
    if x < 0.0 { 0.0 * x } else { y }
}

#[kernel]
fn control_flow(a: &S, out: &S, hist: &S) {
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
    let a: GradField<f64, 1> = pb.field_with_grad("a", [32]);
    let out: GradField<f64, 1> = pb.field_with_grad("out", [32]);
    let hist: GradField<f64, 1> = pb.field_with_grad("hist", [4]);
    let k = pb.kernel(control_flow(&a, &out, &hist)).unwrap();
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..32).map(|i| i as f64 / 16.0 - 1.0).collect();
    a.copy_from(&mut p, &xs).unwrap();
    k.launch(&mut p, ()).unwrap();
    let got = out.to_vec(&p).unwrap();
    for (i, x) in xs.iter().enumerate() {
        assert!((got[i] - reference(*x, i)).abs() < 1e-12, "{i}: {} vs {}", got[i], reference(*x, i));
    }
    let hist_got = hist.to_vec(&p).unwrap();
    for (b, got) in hist_got.iter().enumerate() {
        let want: f64 = xs.iter().enumerate().filter(|(i, _)| i % 4 == b).map(|(_, x)| x).sum();
        assert!((got - want).abs() < 1e-12);
    }
    // Inputs away from the branch points (0, +-0.5, 0.8): a smooth region.
    let spec = Spec::new("control_flow", &[("a", 0.1, 0.7)], &["out", "hist"]);
    let r = both_modes(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-3, "{r:?}");
}

#[kernel]
fn vectors(p: &V2, q: &V2, m: &ScalarField<f64, 2>, out: &V2, s: &S) {
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
    let (p, q): (GradField<[f64; 2], 1>, GradField<[f64; 2], 1>) = (pb.field_with_grad("p", [8]), pb.field_with_grad("q", [8]));
    let m: GradField<f64, 2> = pb.field_with_grad("m", [8, 4]);
    let out: GradField<[f64; 2], 1> = pb.field_with_grad("out", [8]);
    let s: GradField<f64, 1> = pb.field_with_grad("s", [8]);
    let k = pb.kernel(vectors(&p, &q, &m, &out, &s)).unwrap();
    let mut prog = pb.build().unwrap();
    let mut rng = ds_runtime::gradcheck::Rng(3);
    let mut random = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.uniform(0.5, 1.5)).collect() };
    let (pv, qv, mv) = (random(16), random(16), random(32));
    let pairs = |v: &[f64]| -> Vec<[f64; 2]> { v.chunks(2).map(|c| [c[0], c[1]]).collect() };
    p.copy_from(&mut prog, &pairs(&pv)).unwrap();
    q.copy_from(&mut prog, &pairs(&qv)).unwrap();
    m.copy_from(&mut prog, &mv).unwrap();
    k.launch(&mut prog, ()).unwrap();
    let o: Vec<f64> = out.to_vec(&prog).unwrap().into_iter().flatten().collect();
    let sv = s.to_vec(&prog).unwrap();
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
    let r = both_modes(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6, "{r:?}");
}

#[kernel]
fn type_mismatch(a: &S, b: &S) {
    for i in 0..4usize {
        b[(i,)] = a[(i,)] + (a[(i,)] > 0.5);
    }
}

#[test]
fn build_errors_name_the_rust_line() {
    let mut pb = ProgramBuilder::new();
    let (a, b): (Field<f64, 1>, Field<f64, 1>) = (pb.field("a", [4]), pb.field("b", [4]));
    let err = pb.kernel(type_mismatch(&a, &b)).expect_err("f64 + bool must fail");
    let Error::Build { kernel, location: Some(at), message } = &err else { panic!("{err}") };
    assert_eq!((kernel.as_str(), at.file.as_str()), ("type_mismatch", "frontend/tests/constructs.rs"), "{err}");
    let line = include_str!("constructs.rs").lines().position(|l| l.contains("a[(i,)] + (a[(i,)] > 0.5)")).unwrap() + 1;
    assert_eq!(at.line as usize, line, "{err}");
    assert!(message.contains("f64 and i1 values mixed"), "{err}");
}

/// Every op the builder can emit, at least once: each operator on floats and
/// on integers (i32, i64, index), every conversion of the cast table, the
/// comparisons and logic, the math methods, select, min and max, branches
/// with and without values, serial loops with and without `break`, loads,
/// stores and atomic updates.
#[kernel]
#[allow(clippy::nonminimal_bool)]
fn every_builder_op(x: &S, h: &ScalarField<f32, 1>, k: &ScalarField<i32, 1>, out: &S, hout: &ScalarField<f32, 1>, kout: &ScalarField<i32, 1>, sum: &S, n: i64) {
    for i in 0..4usize {
        let a = x[(i,)];
        let pos = a * a + 1.0;
        let mut r = (a + 1.0) - a * 2.0 / (a + 3.0) % 0.7 + -a;
        r = r + a.sin() + a.cos() + a.tanh() + a.exp() + pos.ln() + pos.sqrt() + pos.rsqrt() + a.abs();
        r = r + a.floor() + a.ceil() + pos.powf(1.5) + a.atan2(2.0) + max(a, 0.0) + min(a, 1.0) + select(a > 0.0, a, 0.5);
        let unit = a.clamp(-0.5, 0.5);
        r = r + a.tan() + unit.asin() + unit.acos() + a.atan() + a.sinh() + a.cosh() + pos.log2() + a.exp2();
        r = r + a.round() + a.signum() + stop_grad(a) + random::<f64>();
        let hv = h[(i,)];
        r = r + (hv as f64);
        hout[(i,)] = (r as f32) * hv;
        let kv = k[(i,)];
        let wide = kv as i64 + n;
        let m = (wide - 1) * 3 / 2 % 5 + -wide;
        let narrow = (max(m, 0) + min(m, 9)) as i32;
        let j = narrow as usize + i;
        let p = a > 0.0 && !(a <= -1.0) || kv == 2 || kv != 3 && a >= 0.25 && a < 0.75;
        let q = i >= 1usize && i <= 2usize || j > 5usize || j < 1usize;
        kout[(i,)] = narrow + (i as i32) + (a as i32) + (p as i32) + (q as i32) + ((j % 4) as i32);
        r = r + (kv as f64) + (i as f64) + (p as f64) + (((a * a) as usize) as f64);
        let mut acc = 0.0 * a;
        for t in 0..(j % 3) {
            acc = acc + (t as f64);
        }
        for t in 0..4usize {
            if t > 2usize {
                break;
            }
            acc = acc + 1.0;
        }
        if p {
            acc = acc * 2.0;
        } else {
            acc = acc - 1.0;
        }
        let v = if a >= 0.5 { a } else { -a };
        out[(i,)] = r + acc + v;
        sum[((i + 1) % 4,)] += v;
        sum[(0usize,)] -= acc;
    }
}

/// The op names the frontend's source spells out (`"arith.addf"` ...), and
/// the functions of `ds_dialects::ops` it calls (`build_load` ...).
fn frontend_source_ops() -> (Vec<String>, Vec<String>) {
    let (mut names, mut calls) = (Vec::new(), Vec::new());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&dir).expect("frontend/src").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("readable");
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            // The contents of the string literals: every other piece between quotes.
            for literal in code.split('"').skip(1).step_by(2) {
                let op = literal.split_once('.').is_some_and(|(dialect, name)| {
                    ["arith", "math", "scf", "func", "gpu", "ds"].contains(&dialect)
                        && !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                });
                if op && !names.iter().any(|n| n == literal) {
                    names.push(literal.to_string());
                }
            }
            for (at, _) in code.match_indices("ops::") {
                let rest = &code[at + "ops::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && rest[name.len()..].starts_with('(') && !calls.contains(&name) {
                    calls.push(name);
                }
            }
        }
    }
    (names, calls)
}

/// The `ds_dialects::ops` functions the frontend calls, with the ops each builds.
const DIALECT_CALLS: &[(&str, &[&str])] = &[
    ("const_scalar", &["arith.constant"]),
    ("const_index", &["arith.constant"]),
    ("build_cmpf", &["arith.cmpf"]),
    ("build_cmpi", &["arith.cmpi"]),
    ("build_yield", &["scf.yield"]),
    ("build_scf_for_carrying", &["scf.for"]),
    ("build_parallel_for", &["ds.parallel_for", "gpu.yield"]),
    ("build_load", &["ds.load"]),
    ("build_update", &["ds.store", "ds.atomic_add", "ds.atomic_sub"]),
    ("build_field", &["ds.field"]),
    ("build_layout_node", &["ds.dense", "ds.pointer", "ds.bitmasked", "ds.dynamic"]),
    ("build_activity", &["ds.activate", "ds.deactivate", "ds.is_active"]),
    ("build_append", &["ds.append"]),
    ("build_length", &["ds.length"]),
    ("build_struct_for", &["ds.struct_for", "gpu.yield"]),
    ("build_return", &["func.return"]),
    ("build_stop_grad", &["ds.stop_grad"]),
    // Read the IR (is an index a constant? which block?) or update the
    // function's type to its arguments (the random stream): build nothing.
    ("index_offset", &[]),
    ("func_body", &[]),
    ("is_kernel", &[]),
    ("sync_func_type", &[]),
    // Set a field's layout node, a node's order: attributes only.
    ("set_layout", &[]),
    ("set_order", &[]),
    // The kernel's func.func itself, and a function that only reads the IR.
    ("build_func", &[]),
    ("module_body", &[]),
];

/// The sparse constructs: a struct-for over active cells, the activity ops.
#[kernel]
fn sparse_ops(sp: &GradField<f64, 1>, sb: &GradField<f64, 1>, sc: &Field<f64, 1>, list: &Field<i32, 2>) {
    for (i,) in sp.active() {
        let on = is_active(sb, i);
        sb[(i,)] += select(on, sp[(i,)], 0.0);
        activate(sc, (i + 1) % 16);
        let at = append(list, (i % 4, 0), i as i32);
        let _n = length(list, (i % 4, 0)) + at;
    }
    // In a loop of its own: a deactivation racing another iteration's
    // activation of the same tree is rejected by ds-verify.
    for (i,) in sp.active() {
        deactivate(sc, (i + 3) % 16);
    }
}

/// Every op the frontend can emit has an adjoint rule or a
/// non-differentiable entry in ds-autodiff: the ops of `every_builder_op`
/// (which must use every op the frontend's source names or builds) and of
/// the kernels above, and ds-autodiff differentiates them.
#[test]
fn every_emitted_op_is_classified_for_autodiff() {
    type G1<T> = GradField<T, 1>;
    type P = GradField<[f64; 2], 1>;
    let mut pb = ProgramBuilder::new();
    let (a, out, hist): (G1<f64>, G1<f64>, G1<f64>) =
        (pb.field_with_grad("a", [32]), pb.field_with_grad("out", [32]), pb.field_with_grad("hist", [4]));
    let (p, q, o): (P, P, P) =
        (pb.field_with_grad("p", [8]), pb.field_with_grad("q", [8]), pb.field_with_grad("o", [8]));
    let (m, s): (GradField<f64, 2>, G1<f64>) = (pb.field_with_grad("m", [8, 4]), pb.field_with_grad("s", [8]));
    let (x, h, hout, sum): (G1<f64>, G1<f32>, G1<f32>, G1<f64>) =
        (pb.field_with_grad("x", [4]), pb.field_with_grad("h", [4]), pb.field_with_grad("hout", [4]), pb.field_with_grad("sum", [4]));
    let (k, kout): (Field<i32, 1>, Field<i32, 1>) = (pb.field("k", [4]), pb.field("kout", [4]));
    pb.root().dense([8]).layout(Layout::Soa).place((&p, &q));
    let (sp, sb): (G1<f64>, G1<f64>) = (pb.field_with_grad("sp", [16]), pb.field_with_grad("sb", [16]));
    pb.root().pointer([4]).bitmasked([4]).place(&sp);
    pb.root().bitmasked([16]).place(&sb);
    let sc: Field<f64, 1> = pb.field("sc", [16]);
    pb.root().pointer([4]).dense([4]).place(&sc);
    let list: Field<i32, 2> = pb.field("list", [4, 8]);
    pb.root().dense([4, 1]).dynamic([1, 8]).place(&list);
    pb.kernel(sparse_ops(&sp, &sb, &sc, &list)).unwrap();
    pb.kernel(elementwise(&a, &out)).unwrap();
    pb.kernel(control_flow(&a, &out, &hist)).unwrap();
    pb.kernel(vectors(&p, &q, &m, &o, &s)).unwrap();
    pb.kernel(every_builder_op(&x, &h, &k, &out, &hout, &kout, &sum)).unwrap();
    // The ops of the module (func.func is the kernel, not an op of its body).
    let context = ds_dialects::context();
    let module = ds_dialects::parse_module(&context, &pb.source(), "every_op").expect("the module parses");
    let mut emitted: Vec<String> = ds_dialects::ir::Op::of_module(&module).walk().iter().map(|o| o.name()).collect();
    emitted.sort();
    emitted.dedup();
    emitted.retain(|n| n != "func.func");
    assert!(emitted.len() > 40, "{emitted:?}");
    // every_builder_op uses everything the frontend can build.
    let (names, calls) = frontend_source_ops();
    assert!(names.len() > 25 && calls.len() > 8, "{names:?} {calls:?}");
    let unknown: Vec<&String> = calls.iter().filter(|c| !DIALECT_CALLS.iter().any(|(f, _)| f == c)).collect();
    assert!(unknown.is_empty(), "frontend/src calls ds_dialects::ops functions missing from DIALECT_CALLS: {unknown:?}");
    let built = DIALECT_CALLS.iter().flat_map(|(_, ops)| ops.iter().map(|o| o.to_string()));
    let unused: Vec<String> = names.into_iter().chain(built).filter(|n| !emitted.contains(n)).collect();
    assert!(unused.is_empty(), "ops the frontend can emit that every_builder_op does not use (extend it): {unused:?}");
    let missing: Vec<&String> = emitted.iter().filter(|n| ds_passes::autodiff::rules::classify(n).is_none()).collect();
    assert!(missing.is_empty(), "emitted ops with no autodiff entry: {missing:?}");
    // And ds-autodiff differentiates them: the program builds with its gradients.
    pb.build().unwrap_or_else(|e| panic!("{e}"));
}

/// The same host code on the CPU and, where a GPU is present, on the GPU:
/// the results agree; without a driver, building for CUDA is `Error::NoDriver`.
#[test]
fn programs_build_for_cuda_or_say_why_not() {
    fn run<B: Backend>(p: &mut B, x: &GradField<f64, 1>, y: &GradField<f64, 1>, k: &Kernel<(usize, f64)>) -> Vec<f64> {
        let xs: Vec<f64> = (0..64).map(|i| i as f64 * 0.05 - 1.0).collect();
        x.copy_from(p, &xs).unwrap();
        k.launch(p, (64, 0.5)).unwrap();
        y.to_vec(p).unwrap()
    }
    let mut pb = ProgramBuilder::new();
    let (x, y) = (pb.field_with_grad("x", [64]), pb.field_with_grad("y", [64]));
    let k = pb.kernel(elementwise(&x, &y)).unwrap();
    let cpu = run(&mut pb.build().unwrap(), &x, &y, &k);
    match pb.build_cuda() {
        Ok(mut gpu) => {
            let gpu = run(&mut gpu, &x, &y, &k);
            assert!(cpu.iter().zip(&gpu).all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(1.0)), "{cpu:?} vs {gpu:?}");
        }
        Err(e) => {
            assert!(!ds_runtime::cuda::driver_present(), "driver present but: {e}");
            assert!(matches!(e, Error::NoDriver), "{e}");
        }
    }
}

#[kernel]
fn bool_casts(x: &S, y: &S, n: &ScalarField<i32, 1>) {
    for i in 0..4usize {
        let big = x[(i,)] > 0.5;
        y[(i,)] = (big as f64) * 2.0 + x[(i,)];
        n[(i,)] = big as i32;
    }
}

/// `true as f64` is 1.0 and `true as i32` is 1, as in Rust.
#[test]
fn bools_cast_to_zero_or_one() {
    let mut pb = ProgramBuilder::new();
    let (x, y, n): (S, S, Field<i32, 1>) = (pb.field("x", [4]), pb.field("y", [4]), pb.field("n", [4]));
    let k = pb.kernel(bool_casts(&x, &y, &n)).unwrap();
    let mut p = pb.build().unwrap();
    x.copy_from(&mut p, &[0.25, 0.75, 0.5, 1.0]).unwrap();
    k.launch(&mut p, ()).unwrap();
    assert_eq!(y.to_vec(&p).unwrap(), vec![0.25, 2.75, 0.5, 3.0]);
    assert_eq!(n.to_vec(&p).unwrap(), vec![0, 1, 0, 1]);
}

#[kernel]
fn taichi_math(x: &S, y: &ScalarField<f64, 2>) {
    for i in 0..16usize {
        let v = x[(i,)];
        y[(i, 0usize)] = v.tan() + v.asin() + v.acos() + v.atan();
        y[(i, 1usize)] = v.sinh() + v.cosh() + (v + 2.0).log2() + v.exp2();
        y[(i, 2usize)] = v.clamp(-0.25, 0.5) + v.signum() + (v * 4.0).round();
    }
}

/// Taichi's math functions against Rust's, with their gradients.
#[test]
fn taichi_math_functions() {
    let mut pb = ProgramBuilder::new();
    let (x, y): (GradField<f64, 1>, GradField<f64, 2>) = (pb.field_with_grad("x", [16]), pb.field_with_grad("y", [16, 3]));
    let k = pb.kernel(taichi_math(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..16).map(|i| i as f64 / 10.0 - 0.78).collect();
    x.copy_from(&mut p, &xs).unwrap();
    k.launch(&mut p, ()).unwrap();
    for (i, v) in xs.iter().enumerate() {
        let want = [
            v.tan() + v.asin() + v.acos() + v.atan(),
            v.sinh() + v.cosh() + (v + 2.0).log2() + v.exp2(),
            v.clamp(-0.25, 0.5) + v.signum() + (v * 4.0).round(),
        ];
        for (c, w) in want.iter().enumerate() {
            let got = y.get(&p, [i, c]).unwrap();
            assert!((got - w).abs() < 1e-12, "y[{i}, {c}] at {v}: {got} vs {w}");
        }
    }
    // Away from clamp's corners and round's steps.
    let spec = Spec::new("taichi_math", &[("x", -0.2, 0.45)], &["y"]);
    let r = both_modes(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
}

#[kernel]
fn promotions(x: &S, y: &ScalarField<f32, 1>, out: &S, variant: &bool, n: i32) {
    for i in 0..8usize {
        // i32 and index mixed with floats become floats; f32 with f64 becomes f64.
        let v = x[(i,)] * n + i + y[(i,)];
        if *variant {
            out[(i,)] = v * 2.0;
        } else {
            out[(i,)] = -v;
        }
    }
}

/// Taichi's implicit promotions, and an `if` on a build-time `bool`
/// (Taichi's `ti.static`): one kernel function, two kernels.
#[test]
fn promotions_and_build_time_conditions() {
    let mut pb = ProgramBuilder::new();
    let (x, y, out): (S, ScalarField<f32, 1>, S) = (pb.field("x", [8]), pb.field("y", [8]), pb.field("out", [8]));
    let doubled = pb.kernel(promotions(&x, &y, &out, &true).and_then(|k| k.renamed("doubled"))).unwrap();
    let negated = pb.kernel(promotions(&x, &y, &out, &false)).unwrap();
    assert!(!pb.source().contains("scf.if"), "a build-time condition builds one branch:\n{}", pb.source());
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..8).map(|i| 0.1 * i as f64).collect();
    let ys: Vec<f32> = (0..8).map(|i| 0.5 + i as f32).collect();
    x.copy_from(&mut p, &xs).unwrap();
    y.copy_from(&mut p, &ys).unwrap();
    let v = |i: usize| xs[i] * 3.0 + i as f64 + ys[i] as f64;
    doubled.launch(&mut p, 3).unwrap();
    assert_eq!(out.to_vec(&p).unwrap(), (0..8).map(|i| v(i) * 2.0).collect::<Vec<_>>());
    negated.launch(&mut p, 3).unwrap();
    assert_eq!(out.to_vec(&p).unwrap(), (0..8).map(|i| -v(i)).collect::<Vec<_>>());
}

#[kernel]
fn vector_arithmetic(p: &V2, q: &V2, out: &V2, m: &MatrixField<f64, 2, 2, 1>) {
    for i in 0..4usize {
        let (a, b) = (p[(i,)], q[(i,)]);
        let c = a * b / (b + 1.0) - 0.5 + (2.0 - a);
        out[(i,)] = c;
        out[(i,)] += 1.0;
        let d = Mat2::diag(a) + 2.0 * Mat2::identity(Ty::F64) - Mat2::zero(Ty::F64);
        m[(i,)] = a.at(0) * d;
    }
}

/// Element-wise vector products and quotients, scalars broadcast on either
/// side and into `+=`, and the matrix constructors, against plain Rust, with
/// their gradients.
#[test]
fn vector_and_matrix_arithmetic() {
    let mut pb = ProgramBuilder::new();
    type G2 = GradField<[f64; 2], 1>;
    let (p, q, out): (G2, G2, G2) = (pb.field_with_grad("p", [4]), pb.field_with_grad("q", [4]), pb.field_with_grad("out", [4]));
    let m: GradField<[[f64; 2]; 2], 1> = pb.field_with_grad("m", [4]);
    let k = pb.kernel(vector_arithmetic(&p, &q, &out, &m)).unwrap();
    let mut prog = pb.build().unwrap();
    let ps: Vec<[f64; 2]> = (0..4).map(|i| [0.5 + 0.1 * i as f64, 1.5 - 0.2 * i as f64]).collect();
    let qs: Vec<[f64; 2]> = (0..4).map(|i| [0.3 * i as f64, 0.7 + 0.1 * i as f64]).collect();
    p.copy_from(&mut prog, &ps).unwrap();
    q.copy_from(&mut prog, &qs).unwrap();
    out.fill(&mut prog, [10.0, 20.0]).unwrap();
    k.launch(&mut prog, ()).unwrap();
    for i in 0..4 {
        let (a, b) = (ps[i], qs[i]);
        let want: [f64; 2] = std::array::from_fn(|c| a[c] * b[c] / (b[c] + 1.0) - 0.5 + (2.0 - a[c]) + 1.0);
        let got = out.get(&prog, [i]).unwrap();
        assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-12), "out {i}: {got:?} vs {want:?}");
        let mm = m.get(&prog, [i]).unwrap();
        assert_eq!(mm, [[a[0] * (a[0] + 2.0), 0.0], [0.0, a[0] * (a[1] + 2.0)]], "m {i}");
    }
    let spec = Spec::new("vector_arithmetic", &[("p", 0.5, 1.5), ("q", 0.5, 1.5)], &["m"]);
    let r = both_modes(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
}

#[kernel]
fn frozen_square(x: &S, y: &S) {
    for i in 0..4usize {
        y[(i,)] = x[(i,)] * stop_grad(x[(i,)]);
    }
}

/// `stop_grad(x)` is x forward and blocks the gradient: d(x * stop_grad(x))/dx = x.
#[test]
fn stop_grad_blocks_the_gradient() {
    let mut pb = ProgramBuilder::new();
    let (x, y): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("x", [4]), pb.field_with_grad("y", [4]));
    let k = pb.kernel(frozen_square(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let xs = [0.5, -1.0, 2.0, 3.0];
    x.copy_from(&mut p, &xs).unwrap();
    let mut rec = p.record();
    rec.launch(&k, ()).unwrap();
    assert_eq!(y.to_vec(rec.program()).unwrap(), xs.map(|v| v * v));
    rec.backward(&y).unwrap();
    assert_eq!(x.grad().to_vec(&p).unwrap(), xs);
}

const N_GRID: usize = 4;
const DX: f64 = 0.25;

#[kernel]
fn rust_numbers_on_the_left(x: &S, y: &S) {
    for i in 0..4usize {
        let cell = N_GRID * i + 1;
        // `as` on Rust numbers stays Rust (a build-time f64 here, not a kernel value).
        let width: f64 = (N_GRID as f64) * DX;
        y[(i,)] = 2.0 * x[(i,)] + (3.0f64).sqrt() * DX + 2 * cell + width;
    }
}

/// Rust numbers of any type on the left of an operator, constants computed
/// with Rust math at build time, and `as` on them staying build-time.
#[test]
fn rust_numbers_on_the_left_of_operators() {
    let mut pb = ProgramBuilder::new();
    let (x, y): (S, S) = (pb.field("x", [4]), pb.field("y", [4]));
    let k = pb.kernel(rust_numbers_on_the_left(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    x.copy_from(&mut p, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    k.launch(&mut p, ()).unwrap();
    let want: Vec<f64> = (0..4).map(|i| 2.0 * (i + 1) as f64 + 3f64.sqrt() * DX + 2.0 * (N_GRID * i + 1) as f64 + 1.0).collect();
    assert_eq!(y.to_vec(&p).unwrap(), want);
}

#[kernel]
fn polar_and_ties(m: &MatrixField<f64, 2, 2, 1>, r: &MatrixField<f64, 2, 2, 1>, s: &MatrixField<f64, 2, 2, 1>, out: &S) {
    for i in 0..3usize {
        let (rot, sym) = m[(i,)].polar();
        r[(i,)] = rot;
        s[(i,)] = sym;
        let a = m[(i,)].at(0, 0);
        out[(i,)] = a.max(m[(i,)].at(1, 1)) + a.min(m[(i,)].at(1, 1)) * 2.0 + sym.trace();
    }
}

/// Taichi's kink conventions: polar of the zero matrix is (I, 0) with finite
/// gradients; for det < 0, R is a rotation and S = R^T A symmetric; at a tie
/// max and min give the whole gradient to their first operand.
#[test]
fn polar_decomposition_and_tie_conventions() {
    let mut pb = ProgramBuilder::new();
    type M = GradField<[[f64; 2]; 2], 1>;
    let (m, r, s): (M, M, M) = (pb.field_with_grad("m", [3]), pb.field_with_grad("r", [3]), pb.field_with_grad("s", [3]));
    let out: GradField<f64, 1> = pb.field_with_grad("out", [3]);
    let k = pb.kernel(polar_and_ties(&m, &r, &s, &out)).unwrap();
    let mut p = pb.build().unwrap();
    // zero; det < 0 (a reflection times a stretch); a tie a00 = a11.
    m.copy_from(&mut p, &[[[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [3.0, -1.5]], [[0.7, 0.2], [-0.4, 0.7]]]).unwrap();
    let mut rec = p.record();
    rec.launch(&k, ()).unwrap();
    let (rs, ss) = (r.to_vec(rec.program()).unwrap(), s.to_vec(rec.program()).unwrap());
    assert_eq!((rs[0], ss[0]), ([[1.0, 0.0], [0.0, 1.0]], [[0.0; 2]; 2]), "polar(0) = (I, 0)");
    let [[c, ms], [sn, c2]] = rs[1];
    assert!((c - c2).abs() < 1e-15 && (ms + sn).abs() < 1e-15 && (c * c + sn * sn - 1.0).abs() < 1e-12, "R is a rotation: {:?}", rs[1]);
    assert!((ss[1][0][1] - ss[1][1][0]).abs() < 1e-12, "S is symmetric: {:?}", ss[1]);
    let a = [[1.0, 2.0], [3.0, -1.5]];
    for i in 0..2 {
        for j in 0..2 {
            let rsij = rs[1][i][0] * ss[1][0][j] + rs[1][i][1] * ss[1][1][j];
            assert!((rsij - a[i][j]).abs() < 1e-12, "R S = A at ({i}, {j})");
        }
    }
    rec.backward(&out).unwrap();
    let grads = m.grad().to_vec(&p).unwrap();
    assert!(grads.iter().flatten().flatten().all(|g| g.is_finite()), "finite gradients, the zero matrix included: {grads:?}");
    // At the tie (m00 = m11 = 0.7): max's and min's gradients go to m00 (1 + 2),
    // none to m11; trace(S) = |(m00 + m11, m10 - m01)| adds the same to both.
    assert!((grads[2][0][0] - grads[2][1][1] - 3.0).abs() < 1e-12, "{:?}", grads[2]);
}

#[kernel]
fn fibonacci(x: &S, out: &S) {
    for i in 0..4usize {
        let (mut p, mut q) = (x[(i,)], x[(i,)] * 0.5);
        for _k in 0..(i + 3) {
            (p, q) = (q, p + q);
        }
        if p > 1.0 {
            (p, q) = (q, p);
        }
        out[(i,)] = p * 10.0 + q;
    }
}

/// Tuple assignment of locals, carried through a serial loop and an `if`.
#[test]
fn tuple_assignment_is_carried() {
    let mut pb = ProgramBuilder::new();
    let (x, out): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("x", [4]), pb.field_with_grad("out", [4]));
    let k = pb.kernel(fibonacci(&x, &out)).unwrap();
    let mut p = pb.build().unwrap();
    let xs = [0.1, 0.2, 0.3, 0.4];
    x.copy_from(&mut p, &xs).unwrap();
    k.launch(&mut p, ()).unwrap();
    let want: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (mut p, mut q) = (v, v * 0.5);
            for _ in 0..(i + 3) {
                (p, q) = (q, p + q);
            }
            if p > 1.0 {
                (p, q) = (q, p);
            }
            p * 10.0 + q
        })
        .collect();
    assert_eq!(out.to_vec(&p).unwrap(), want);
    let r = both_modes(&pb.source(), &Spec::new("fibonacci", &[("x", 0.1, 0.3)], &["out"])).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
}

#[kernel]
fn tuple_indices(g: &ScalarField<f64, 2>, out: &S) {
    for i in 0..4usize {
        let n = (i, 3usize - i); // an index tuple held in a variable
        let j = i + 1usize;
        let m = (j % 4usize, i);
        out[(i,)] = g[n] * 10.0 + g[m];
        let o = (i,);
        out[o] += 1.0;
    }
}

/// `x[n]` with `n` a tuple variable indexes like `x[(a, b)]`.
#[test]
fn index_tuples_held_in_variables() {
    let mut pb = ProgramBuilder::new();
    let (g, out): (GradField<f64, 2>, GradField<f64, 1>) = (pb.field_with_grad("g", [4, 4]), pb.field_with_grad("out", [4]));
    let k = pb.kernel(tuple_indices(&g, &out)).unwrap();
    let mut p = pb.build().unwrap();
    let gs: Vec<f64> = (0..16).map(|v| v as f64 * 0.5).collect();
    g.copy_from(&mut p, &gs).unwrap();
    k.launch(&mut p, ()).unwrap();
    let want: Vec<f64> = (0..4).map(|i| gs[i * 4 + (3 - i)] * 10.0 + gs[((i + 1) % 4) * 4 + i] + 1.0).collect();
    assert_eq!(out.to_vec(&p).unwrap(), want);
}

#[kernel]
fn local_components(x: &V2, w: &S, out: &S) {
    for i in 0..4usize {
        let mut v = x[(i,)];
        v[0] = v[1] * 2.0; // element assignment, build-time index
        let mut m = Mat2::identity(Ty::F64);
        m[(1usize, 0usize)] = v[0];
        let weights = [w[(i,)], w[(i,)] * 2.0, 3.0 * w[(i,)]];
        let mut total = 0.0 * v[0];
        for k in unroll(0..3) {
            total = total + weights[k] * (k as f64); // a Rust array under unroll
        }
        let mut picked = 0.0 * v[0];
        for j in 0..2usize {
            picked = picked + v[j] * (j + 1); // a component index known at run time
            v[j] = v[j] + 1.0; // and assigned at run time
        }
        out[(i,)] = total + picked + m[(1usize, 0usize)] + v[0] + v[1];
    }
}

/// Element assignment in local vectors and matrices, run-time component
/// indices, and Rust arrays of kernel values under `unroll`, against Rust.
#[test]
fn local_vectors_arrays_and_run_time_components() {
    let mut pb = ProgramBuilder::new();
    let x: GradField<[f64; 2], 1> = pb.field_with_grad("x", [4]);
    let (w, out): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("w", [4]), pb.field_with_grad("out", [4]));
    let k = pb.kernel(local_components(&x, &w, &out)).unwrap();
    let mut p = pb.build().unwrap();
    let xs: Vec<[f64; 2]> = (0..4).map(|i| [0.5 + i as f64, 1.5 - 0.25 * i as f64]).collect();
    let ws: Vec<f64> = (0..4).map(|i| 0.1 * (i + 1) as f64).collect();
    x.copy_from(&mut p, &xs).unwrap();
    w.copy_from(&mut p, &ws).unwrap();
    k.launch(&mut p, ()).unwrap();
    let want: Vec<f64> = (0..4)
        .map(|i| {
            let mut v = xs[i];
            v[0] = v[1] * 2.0;
            let m10 = v[0];
            let weights = [ws[i], ws[i] * 2.0, 3.0 * ws[i]];
            let total: f64 = (0..3).map(|k| weights[k] * k as f64).sum();
            let mut picked = 0.0;
            for (j, c) in v.iter_mut().enumerate() {
                picked += *c * (j + 1) as f64;
                *c += 1.0;
            }
            total + picked + m10 + v[0] + v[1]
        })
        .collect();
    assert_eq!(out.to_vec(&p).unwrap(), want);
    let r = both_modes(&pb.source(), &Spec::new("local_components", &[("x", 0.5, 1.5), ("w", 0.1, 0.9)], &["out"])).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
}

#[kernel]
fn literal_locals(x: &S, out: &S) {
    for i in 0..4usize {
        let mut t = 0.0f64;
        if x[(i,)] > 0.5 {
            t = 1.0 / x[(i,)];
        }
        let mut n = 0;
        for k in 0..i {
            n = n + (k as i32) * 2;
        }
        let mut f = 0.0; // f32, Taichi's default float
        f += 1.5;
        out[(i,)] = t + n + f;
    }
}

/// Mutable locals started from a literal and later assigned kernel values,
/// through an `if` and a serial loop.
#[test]
fn locals_started_from_literals() {
    let mut pb = ProgramBuilder::new();
    let (x, out): (S, S) = (pb.field("x", [4]), pb.field("out", [4]));
    let k = pb.kernel(literal_locals(&x, &out)).unwrap();
    let mut p = pb.build().unwrap();
    let xs = [0.25, 0.75, 1.0, 2.0];
    x.copy_from(&mut p, &xs).unwrap();
    k.launch(&mut p, ()).unwrap();
    let want: Vec<f64> = (0..4)
        .map(|i| {
            let t = if xs[i] > 0.5 { 1.0 / xs[i] } else { 0.0 };
            let n: i32 = (0..i as i32).map(|k| k * 2).sum();
            t + n as f64 + 1.5
        })
        .collect();
    assert_eq!(out.to_vec(&p).unwrap(), want);
}

#[kernel]
fn literal_branches(x: &ScalarField<f32, 1>, n: &ScalarField<i32, 1>, y: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        let v = x[(i,)];
        let clipped = if v > 0.5 { v } else { 0.1 };
        let floor = if v < 0.3 { -1.0 } else { v * 2.0 };
        let count = if v > 0.5 { n[(i,)] } else { 7 };
        y[(i,)] = clipped + floor + count;
    }
}

/// An `if` used as a value may end a branch with a number literal: it takes
/// the other branch's type (f32 here, and i32), whichever branch it is in.
#[test]
fn if_values_may_be_literals() {
    let mut pb = ProgramBuilder::new();
    let (x, n, y): (Field<f32, 1>, Field<i32, 1>, Field<f32, 1>) = (pb.field("x", [4]), pb.field("n", [4]), pb.field("y", [4]));
    let k = pb.kernel(literal_branches(&x, &n, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let xs = [0.2f32, 0.4, 0.6, 0.8];
    x.copy_from(&mut p, &xs).unwrap();
    n.copy_from(&mut p, &[1, 2, 3, 4]).unwrap();
    k.launch(&mut p, ()).unwrap();
    let want: Vec<f32> = (0..4)
        .map(|i| {
            let v = xs[i];
            let clipped = if v > 0.5 { v } else { 0.1 };
            let floor = if v < 0.3 { -1.0 } else { v * 2.0 };
            let count = if v > 0.5 { i as i32 + 1 } else { 7 };
            clipped + floor + count as f32
        })
        .collect();
    assert_eq!(y.to_vec(&p).unwrap(), want);
}

#[func]
fn corners(c: Vec2, h: Expr) -> [Vec2; 2] {
    [c - h, c + h]
}

#[kernel]
fn closure_helpers(p: &V2, out: &S) {
    for i in 0..4usize {
        let c = p[(i,)];
        let spread = |v: Vec2, s: f64| -> Vec2 {
            let mut w = v;
            for k in 0..2usize {
                w[k] = w[k] * s;
            }
            w
        };
        let [lo, hi] = corners(spread(c, 2.0), c.at(0) * 0.5);
        out[(i,)] = lo.dot(&hi);
    }
}

/// Helpers as Rust closures (inlined, their loops serial) and #[func]s
/// returning arrays of vectors, against Rust, with their gradients.
#[test]
fn closures_and_funcs_return_vectors() {
    let mut pb = ProgramBuilder::new();
    let (p, out): (GradField<[f64; 2], 1>, GradField<f64, 1>) = (pb.field_with_grad("p", [4]), pb.field_with_grad("out", [4]));
    let k = pb.kernel(closure_helpers(&p, &out)).unwrap();
    let mut prog = pb.build().unwrap();
    let ps: Vec<[f64; 2]> = (0..4).map(|i| [0.5 + 0.1 * i as f64, 1.0 - 0.2 * i as f64]).collect();
    p.copy_from(&mut prog, &ps).unwrap();
    k.launch(&mut prog, ()).unwrap();
    let want: Vec<f64> = ps
        .iter()
        .map(|c| {
            let (s, h) = ([c[0] * 2.0, c[1] * 2.0], c[0] * 0.5);
            (s[0] - h) * (s[0] + h) + (s[1] - h) * (s[1] + h)
        })
        .collect();
    assert_eq!(out.to_vec(&prog).unwrap(), want);
    let r = both_modes(&pb.source(), &Spec::new("closure_helpers", &[("p", 0.5, 1.5)], &["out"])).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
}

#[kernel]
fn noise(x: &S, noisy: &S, draws: &ScalarField<f32, 2>, loss: &ScalarField<f64, 0>) {
    for i in 0..256usize {
        let n = random::<f64>() - 0.5;
        noisy[(i,)] = x[(i,)] + n;
        for k in 0..2usize {
            draws[(i, k)] = random::<f32>();
        }
        loss[()] += (x[(i,)] + n) * (x[(i,)] + n);
    }
}

/// Random numbers in kernels: uniform in [0, 1), different per iteration,
/// call site and launch, the same for the same seed and launches, and a
/// recording's gradient sees the numbers its launch drew.
#[test]
fn random_numbers_are_reproducible_and_differentiable_through_recordings() {
    let build = || {
        let mut pb = ProgramBuilder::new();
        let (x, noisy): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("x", [256]), pb.field_with_grad("noisy", [256]));
        let draws: GradField<f32, 2> = pb.field_with_grad("draws", [256, 2]);
        let loss: GradField<f64, 0> = pb.field_with_grad("loss", []);
        let k = pb.kernel(noise(&x, &noisy, &draws, &loss)).unwrap();
        (pb.build().unwrap(), x, noisy, draws, loss, k)
    };
    let (mut p, x, noisy, draws, loss, k) = build();
    x.fill(&mut p, 1.0).unwrap();
    let mut rec = p.record();
    rec.launch(&k, ()).unwrap();
    let first: Vec<f64> = noisy.to_vec(rec.program()).unwrap();
    let d: Vec<f32> = draws.to_vec(rec.program()).unwrap();
    rec.backward(&loss).unwrap();
    // dL/dx = 2 (x + n) with the n the launch drew.
    let grads = x.grad().to_vec(&p).unwrap();
    assert!(grads.iter().zip(&first).all(|(g, v)| (g - 2.0 * v).abs() < 1e-12), "the gradient used other numbers");
    assert!(d.iter().all(|v| (0.0..1.0).contains(v)) && first.iter().all(|v| (0.5..1.5).contains(v)));
    let mean = d.iter().map(|v| *v as f64).sum::<f64>() / d.len() as f64;
    assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
    let mut distinct = d.clone();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    assert!(distinct.len() > 500, "{} distinct of 512", distinct.len());
    // A second launch draws other numbers; a new program with the same seed, the same ones.
    k.launch(&mut p, ()).unwrap();
    assert_ne!(noisy.to_vec(&p).unwrap(), first);
    let (mut q, qx, qnoisy, _, _, qk) = build();
    qx.fill(&mut q, 1.0).unwrap();
    qk.launch(&mut q, ()).unwrap();
    assert_eq!(qnoisy.to_vec(&q).unwrap(), first);
    q.seed_random(7);
    qk.launch(&mut q, ()).unwrap();
    assert_ne!(qnoisy.to_vec(&q).unwrap(), first, "another seed");
    let err = k.grad(&mut p, ()).unwrap_err();
    assert!(matches!(&err, Error::RandomNeedsRecording { kernel } if kernel == "noise"), "{err}");
    // The same integer mixing compiles for the GPU.
    let mut pb = ProgramBuilder::new();
    let (x, noisy, draws, loss) = (pb.field_with_grad("x", [256]), pb.field_with_grad("noisy", [256]), pb.field_with_grad("draws", [256, 2]), pb.field_with_grad("loss", []));
    pb.kernel(noise(&x, &noisy, &draws, &loss)).unwrap();
    assert!(pb.build_ptx("sm_90").unwrap().contains(".entry noise__task"));
}

#[kernel]
fn chain(x0: &S, x: &ScalarField<f64, 2>, y: &S) {
    for i in 0..3usize {
        x[(0usize, i)] = x0[(i,)];
        for k in 0..4usize {
            // Reads the element the previous iteration wrote.
            x[(k + 1, i)] = (x[(k, i)] * 0.8).sin() + 0.5 * x[(k, i)];
        }
        y[(i,)] = x[(4usize, i)] * x[(2usize, i)];
    }
}

/// A serial loop reading what its previous iteration wrote (Taichi
/// differentiates it; so does ds-autodiff: each element is written once,
/// before it is read, so recomputing from memory sees the values read);
/// the other direction, `x[k] = f(x[k + 1])`, stays a located error.
#[test]
fn serial_loops_reading_their_previous_iteration() {
    let mut pb = ProgramBuilder::new();
    let (x0, y): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("x0", [3]), pb.field_with_grad("y", [3]));
    let x: GradField<f64, 2> = pb.field_with_grad("x", [5, 3]);
    let k = pb.kernel(chain(&x0, &x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let starts: Vec<f64> = (0..3).map(|i| 0.2 + 0.3 * i as f64).collect();
    x0.copy_from(&mut p, &starts).unwrap();
    k.launch(&mut p, ()).unwrap();
    for (i, v0) in starts.iter().enumerate() {
        let mut v = vec![*v0];
        for k in 0..4 {
            v.push((v[k] * 0.8).sin() + 0.5 * v[k]);
        }
        assert!((y.get(&p, [i]).unwrap() - v[4] * v[2]).abs() < 1e-12);
    }
    let r = both_modes(&pb.source(), &Spec::new("chain", &[("x0", 0.1, 0.9)], &["y"])).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
    let mut pb = ProgramBuilder::new();
    let (x0, y) = (pb.field_with_grad("x0", [3]), pb.field_with_grad("y", [3]));
    let x: GradField<f64, 2> = pb.field_with_grad("x", [5, 3]);
    pb.kernel(backwards_chain(&x0, &x, &y)).unwrap();
    let err = pb.build().err().expect("x[k] = f(x[k + 1]) overwrites what an earlier iteration read");
    assert!(err.to_string().contains("cannot be differentiated") && err.to_string().contains("constructs.rs"), "{err}");
}

#[kernel]
fn backwards_chain(x0: &S, x: &ScalarField<f64, 2>, y: &S) {
    for i in 0..3usize {
        x[(4usize, i)] = x0[(i,)];
        for k in 0..4usize {
            x[(k, i)] = x[(k + 1, i)] * 0.5;
        }
        y[(i,)] = x[(0usize, i)];
    }
}

/// `v as T` and `0.1 as T` for a type parameter `T` of the kernel: one
/// kernel serves f32 and f64, with constants of the instance's type.
#[kernel]
fn generic_scale<T: diffsim::field::Scalar>(x: &ScalarField<T, 1>, y: &ScalarField<T, 1>, k: &ScalarField<i32, 1>) {
    for i in 0..4usize {
        let mut t = 0.1 as T;
        if x[(i,)] > 0.0 {
            t = x[(i,)] * (k[(i,)] as T);
        }
        y[(i,)] = t;
    }
}

fn run_generic_scale<T: diffsim::field::Scalar + Copy>(xs: [T; 4]) -> Vec<T> {
    let mut pb = ProgramBuilder::new();
    let (x, y, k) = (pb.field("x", [4]), pb.field("y", [4]), pb.field("k", [4]));
    let kernel = pb.kernel(generic_scale::<T>(&x, &y, &k)).unwrap();
    let mut p = pb.build().unwrap();
    x.copy_from(&mut p, &xs).unwrap();
    k.copy_from(&mut p, &[1, 2, 3, 4]).unwrap();
    kernel.launch(&mut p, ()).unwrap();
    y.to_vec(&p).unwrap()
}

#[test]
fn casts_to_a_generic_scalar() {
    assert_eq!(run_generic_scale([1.5f64, -1.0, 0.25, 2.0]), vec![1.5, 0.1, 0.75, 8.0]);
    assert_eq!(run_generic_scale([1.5f32, -1.0, 0.25, 2.0]), vec![1.5, 0.1f32, 0.75, 8.0]);
}

/// A kernel generic over `T: Scalar` takes a `T` launch argument (`a`), a
/// build-time Rust number cast to `T` is a constant of `T`'s type
/// (`*scale as T`), and a mutable local started from a literal takes later
/// literals in its own type (`flag = 1`).
#[kernel]
fn generic_affine<T: diffsim::field::Scalar>(x: &ScalarField<T, 1>, y: &ScalarField<T, 1>, scale: &f64, a: T) {
    for i in 0..4usize {
        let mut flag = 0;
        if x[(i,)] > 0.0 {
            flag = 1;
        }
        y[(i,)] = x[(i,)] * (*scale as T) + a * (flag as T);
    }
}

fn run_generic_affine<T: diffsim::field::Scalar>(xs: [T; 4], a: T) -> Vec<T> {
    let mut pb = ProgramBuilder::new();
    let (x, y) = (pb.field("x", [4]), pb.field("y", [4]));
    let kernel: Kernel<T> = pb.kernel(generic_affine::<T>(&x, &y, &2.0)).unwrap();
    let mut p = pb.build().unwrap();
    x.copy_from(&mut p, &xs).unwrap();
    kernel.launch(&mut p, a).unwrap();
    y.to_vec(&p).unwrap()
}

#[test]
fn generic_scalar_arguments_casts_and_literal_assignments() {
    assert_eq!(run_generic_affine([1.5f64, -1.0, 0.25, 0.0], 0.5), vec![3.5, -2.0, 1.0, 0.0]);
    assert_eq!(run_generic_affine([1.5f32, -1.0, 0.25, 0.0], 0.5), vec![3.5f32, -2.0, 1.0, 0.0]);
}

/// A ray march: 1000 steps summing what they cross, under a test, into one
/// carried value. The sum is a pure accumulator, so its gradient needs no
/// autodiff stack (the default stack holds 256 iterations); `m`, carried
/// through a product, keeps its stack (200 steps, within it).
#[kernel]
fn ray_march(density: &S, image: &S, attenuated: &S, steps: usize) {
    for i in 0..4usize {
        let mut acc = 0.0;
        for k in 0..steps {
            let d = density[((k * 7 + i * 3) % 16,)];
            if d > 0.2 {
                acc += d * d;
            } else {
                acc -= d;
            }
        }
        image[(i,)] = acc;
        let mut m = 1.0;
        for k in 0..200usize {
            m = m * (1.0 - 0.01 * density[((k + i) % 16,)]);
        }
        attenuated[(i,)] = m;
    }
}

#[test]
fn accumulator_loops_need_no_autodiff_stack() {
    let mut pb = ProgramBuilder::new();
    let density: GradField<f64, 1> = pb.field_with_grad("density", [16]);
    let (image, attenuated): (GradField<f64, 1>, GradField<f64, 1>) =
        (pb.field_with_grad("image", [4]), pb.field_with_grad("attenuated", [4]));
    pb.kernel(ray_march(&density, &image, &attenuated)).unwrap();
    let spec = Spec::new("ray_march", &[("density", 0.0, 0.4)], &["image", "attenuated"]).args(&[Arg::Index(1000)]);
    let r = both_modes(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1.0, "{r:?}");
}

#[kernel]
fn zero_coefficient(x: &S, y: &S, k: &f64) {
    for i in 0..2usize {
        y[(i,)] = x[(i,)] * *k + 1.0;
    }
}

/// Fast-math (the default, as Taichi's): `x * 0` folds to 0 before the
/// kernel runs, so an infinite x gives 1; `strict_math` keeps IEEE
/// semantics, where inf * 0 is NaN.
#[test]
fn fast_math_folds_zero_coefficients_and_strict_math_keeps_ieee() {
    for strict in [false, true] {
        let mut pb = ProgramBuilder::new();
        if strict {
            pb.strict_math();
        }
        let (x, y): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("x", [2]), pb.field_with_grad("y", [2]));
        let k = pb.kernel(zero_coefficient(&x, &y, &0.0)).unwrap();
        let mut p = pb.build().unwrap();
        x.copy_from(&mut p, &[f64::INFINITY, 2.0]).unwrap();
        k.launch(&mut p, ()).unwrap();
        let ys = y.to_vec(&p).unwrap();
        assert_eq!(ys[1], 1.0);
        assert_eq!(ys[0].is_nan(), strict, "strict_math {strict}: {ys:?}");
    }
}
