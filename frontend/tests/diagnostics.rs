//! Forward mode and gradient diagnostics: tangent kernels, Hessian-vector
//! products through a recording, where a gradient turns non-finite (kernel,
//! op, Rust line, step), and `Recording::diagnose` on a smooth simulation
//! (forward, reverse and finite differences agree; the tangents' growth).
//! The paper's studies (contact switches, explosion) are diagnosed in the
//! examples' tests.

use diffsim::prelude::*;
use diffsim::{DiagnoseOptions, Growth, Plan, along};

fn line_of(text: &str) -> u32 {
    include_str!("diagnostics.rs").lines().position(|l| l.contains(text)).expect("the line") as u32 + 1
}

#[kernel]
fn distance(p: &VectorField<f64, 2, 1>, anchor: &VectorField<f64, 2, 0>, d: &ScalarField<f64, 1>, t: usize) {
    for _i in 0..1usize {
        d[(t,)] = (p[(t,)] - anchor[()]).norm(); // zero where p[t] is the anchor
    }
}

#[kernel]
fn total(d: &ScalarField<f64, 1>, loss: &ScalarField<f64, 0>, n: usize) {
    for t in 0..n {
        loss[()] += d[(t,)];
    }
}

/// The points, the anchor, their distances and the kernel computing them.
struct Points {
    p: GradField<[f64; 2], 1>,
    anchor: GradField<[f64; 2], 0>,
    d: GradField<f64, 1>,
    dist: Kernel<usize>,
}

fn points(pb: &mut ProgramBuilder) -> Points {
    let (p, anchor, d) = (pb.field_with_grad("p", [4]), pb.field_with_grad("anchor", []), pb.field_with_grad("d", [4]));
    let dist = pb.kernel(distance(&p, &anchor, &d)).unwrap();
    Points { p, anchor, d, dist }
}

/// Points p[t] = (t, 0), the anchor at (2, 0): the distance of p[2] is the
/// norm of a zero vector, whose derivative is 0/0. Returns the backward's
/// result and the gradient of p.
fn distances(check: bool) -> (Result<Option<Plan>, Error>, Vec<[f64; 2]>) {
    let mut pb = ProgramBuilder::new();
    if check {
        pb.check_finite();
    }
    let Points { p, anchor, d, dist } = points(&mut pb);
    let loss: GradField<f64, 0> = pb.field_with_grad("loss", []);
    let sum = pb.kernel(total(&d, &loss)).unwrap();
    let mut prog = pb.build().unwrap();
    for t in 0..4 {
        p.set(&mut prog, [t], [t as f64, 0.0]).unwrap();
    }
    anchor.set(&mut prog, [], [2.0, 0.0]).unwrap();
    let mut rec = prog.record();
    for t in 0..4 {
        rec.launch(&dist, t).unwrap();
        rec.end_step();
    }
    rec.launch(&sum, 4).unwrap();
    let result = rec.backward(&loss);
    (result, p.grad().to_vec(&prog).unwrap())
}

#[test]
fn a_non_finite_tangent_names_its_kernel_op_line_and_step() {
    let mut pb = ProgramBuilder::new();
    pb.gradient_diagnostics();
    let Points { p, anchor, dist, .. } = points(&mut pb);
    let mut prog = pb.build().unwrap();
    for t in 0..4 {
        p.set(&mut prog, [t], [t as f64, 0.0]).unwrap();
    }
    anchor.set(&mut prog, [], [2.0, 0.0]).unwrap();
    let mut rec = prog.record();
    for t in 0..4 {
        rec.launch(&dist, t).unwrap();
        rec.end_step();
    }
    // Moving the anchor: the distance's tangent at p[2] is 0/0.
    let err = rec.jvp(&[along(&anchor, vec![1.0, 1.0])]).unwrap_err();
    let Error::InReplay { step: 2, launch: 2, kernel, source } = &err else { panic!("{err}") };
    assert_eq!(kernel, "distance");
    let Error::Assertion { kernel, message, location } = source.as_ref() else { panic!("{err}") };
    assert_eq!(kernel, "distance_jvp");
    assert!(message.contains("non-finite tangent") && message.contains("math.sqrt"), "{err}");
    let at = location.as_ref().expect("a Rust location");
    assert_eq!((at.file.as_str(), at.line), ("frontend/tests/diagnostics.rs", line_of("zero where p[t] is the anchor")), "{err}");
}

#[test]
fn a_non_finite_gradient_names_its_kernel_op_line_and_step() {
    // Unchecked, the NaN reaches the gradient silently.
    let (result, grad) = distances(false);
    result.unwrap();
    assert!(grad[2].iter().all(|g| g.is_nan()) && grad[1][0].is_finite(), "{grad:?}");
    let (result, _) = distances(true);
    let err = result.unwrap_err();
    let Error::InBackward { step: 2, launch: 2, kernel, source } = &err else { panic!("{err}") };
    assert_eq!(kernel, "distance");
    let Error::Assertion { kernel, message, location } = source.as_ref() else { panic!("{err}") };
    assert_eq!(kernel, "distance_grad");
    assert!(message.contains("non-finite adjoint") && message.contains("math.sqrt"), "{err}");
    let at = location.as_ref().expect("a Rust location");
    assert_eq!((at.file.as_str(), at.line), ("frontend/tests/diagnostics.rs", line_of("zero where p[t] is the anchor")), "{err}");
}

#[kernel]
fn drive(x: &ScalarField<f64, 1>, v: &ScalarField<f64, 1>, a: &ScalarField<f64, 0>, t: usize) {
    for _i in 0..1usize {
        let nv = v[(t - 1,)] + 0.1 * a[()].sin();
        v[(t,)] = nv;
        x[(t,)] = x[(t - 1,)] + 0.1 * nv;
    }
}

#[kernel]
fn final_position(x: &ScalarField<f64, 1>, loss: &ScalarField<f64, 0>, t: usize) {
    for _i in 0..1usize {
        loss[()] = x[(t,)] * x[(t,)];
    }
}

/// The drive simulation's fields over `steps` steps and its kernels.
struct Drive {
    x: GradField<f64, 1>,
    v: GradField<f64, 1>,
    a: GradField<f64, 0>,
    loss: GradField<f64, 0>,
    step: Kernel<usize>,
    fin: Kernel<usize>,
}

fn drive_program(pb: &mut ProgramBuilder, steps: usize) -> Drive {
    let (x, v, a) = (pb.field_with_grad("x", [steps + 1]), pb.field_with_grad("v", [steps + 1]), pb.field_with_grad("a", []));
    let loss = pb.field_with_grad("loss", []);
    let (step, fin) = (pb.kernel(drive(&x, &v, &a)).unwrap(), pb.kernel(final_position(&x, &loss)).unwrap());
    Drive { x, v, a, loss, step, fin }
}

#[test]
fn diagnose_agrees_three_ways_and_fits_the_growth() {
    const STEPS: usize = 200;
    let mut pb = ProgramBuilder::new();
    pb.gradient_diagnostics();
    let Drive { a, loss, step, fin, .. } = drive_program(&mut pb, STEPS);
    let mut p = pb.build().unwrap();
    a.set(&mut p, [], 0.7).unwrap();
    let mut rec = p.record();
    for t in 1..=STEPS {
        rec.launch(&step, t).unwrap();
        rec.end_step();
    }
    rec.launch(&fin, STEPS).unwrap();
    let report = rec.diagnose(&loss, &[along(&a, vec![1.0])], &DiagnoseOptions::default()).unwrap();
    assert!(report.forward_vs_reverse() < 1e-12, "{report}");
    assert!(report.reverse_vs_finite_difference() < 1e-6, "{report}");
    assert!(report.reverse.abs() > 1e-2, "{report}");
    // dx[t]/da grows as t^2 (a drives the velocity), dv[t]/da as t: the
    // state's tangent is dominated by x's beyond t = 20.
    let Some(Growth::Polynomial { exponent }) = report.growth else { panic!("{report}") };
    assert!((exponent - 2.0).abs() < 0.05, "{report}");
    assert!(report.switches.is_empty() && report.switch_sites == 0, "{report}");
    // diagnose also ran backward: the adjoint holds the gradient.
    assert!((a.grad().get(&p, []).unwrap() - report.reverse).abs() < 1e-12);
}

#[test]
fn tangent_kernels_need_forward_mode() {
    let mut pb = ProgramBuilder::new();
    let Drive { x, step, .. } = drive_program(&mut pb, 2);
    let mut p = pb.build().unwrap();
    let err = step.tangent().launch(&mut p, 1).unwrap_err();
    assert!(matches!(&err, Error::NoTangentKernel { kernel } if kernel == "drive"), "{err}");
    let err = x.dual().get(&p, [0]).unwrap_err();
    assert!(matches!(&err, Error::NoDual { field } if field == "x"), "{err}");
}

#[test]
fn tangent_kernels_give_directional_derivatives() {
    let mut pb = ProgramBuilder::new();
    pb.forward_mode();
    let Drive { x, v, a, step, .. } = drive_program(&mut pb, 2);
    let mut p = pb.build().unwrap();
    a.set(&mut p, [], 0.3).unwrap();
    a.dual().set(&mut p, [], 1.0).unwrap();
    for t in 1..3 {
        step.tangent().launch(&mut p, t).unwrap();
    }
    // v[t] = 0.1 t sin(a), x[t] = 0.01 sin(a) (1 + ... + t): d/da by hand.
    let c = 0.3f64.cos();
    assert!((v.dual().get(&p, [2]).unwrap() - 0.2 * c).abs() < 1e-15);
    assert!((x.dual().get(&p, [2]).unwrap() - 0.03 * c).abs() < 1e-15);
    assert!((x.get(&p, [2]).unwrap() - 0.03 * 0.3f64.sin()).abs() < 1e-15, "the tangent kernel does the primal's work");
}

/// dL/da and d2L/da2 (a Hessian-vector product with v = 1) of the drive
/// simulation over `steps`, through a recording of tangent kernels.
fn gradient_and_hessian(a0: f64, steps: usize) -> (f64, f64) {
    let mut pb = ProgramBuilder::new();
    pb.forward_mode();
    let Drive { a, loss, step, fin, .. } = drive_program(&mut pb, steps);
    let mut p = pb.build().unwrap();
    a.set(&mut p, [], a0).unwrap();
    a.dual().set(&mut p, [], 1.0).unwrap();
    let mut rec = p.record();
    for t in 1..=steps {
        rec.launch(&step.tangent(), t).unwrap();
    }
    rec.launch(&fin.tangent(), steps).unwrap();
    rec.backward(&loss).unwrap();
    (a.grad().get(&p, []).unwrap(), a.grad().dual().get(&p, []).unwrap())
}

#[test]
fn hessian_vector_products_through_a_recording_of_tangent_kernels() {
    let (a0, h) = (0.7, 1e-4);
    let (_, hessian) = gradient_and_hessian(a0, 30);
    let g = |a| gradient_and_hessian(a, 30).0;
    let numeric = (8.0 * (g(a0 + h) - g(a0 - h)) - (g(a0 + 2.0 * h) - g(a0 - 2.0 * h))) / (12.0 * h);
    assert!(numeric.abs() > 1e-2, "{numeric}");
    assert!((hessian - numeric).abs() <= 1e-7 * numeric.abs(), "Hv {hessian} against finite differences of the gradient {numeric}");
}

#[test]
fn a_recording_runs_forward_mode_in_launch_order() {
    const STEPS: usize = 50;
    let mut pb = ProgramBuilder::new();
    pb.forward_mode();
    let Drive { x, v, a, loss, step, fin } = drive_program(&mut pb, STEPS);
    let mut p = pb.build().unwrap();
    a.set(&mut p, [], 0.4).unwrap();
    x.set(&mut p, [0], 0.25).unwrap();
    let mut rec = p.record();
    for t in 1..=STEPS {
        rec.launch(&step, t).unwrap();
    }
    rec.launch(&fin, STEPS).unwrap();
    // Along (da, dx0) = (1, -2): J v for every output of the recording.
    let mut dx0 = vec![0.0; STEPS + 1];
    dx0[0] = -2.0;
    rec.jvp(&[along(&a, vec![1.0]), along(&x, dx0)]).unwrap();
    let (tangent, final_x) = (loss.dual().get(rec.program(), []).unwrap(), x.get(rec.program(), [STEPS]).unwrap());
    rec.backward(&loss).unwrap();
    let reverse = a.grad().get(&p, []).unwrap() - 2.0 * x.grad().get(&p, [0]).unwrap();
    assert!(reverse.abs() > 1e-2 && (tangent - reverse).abs() <= 1e-12 * reverse.abs(), "forward {tangent}, reverse {reverse}");
    // x[T] = x0 + 0.01 sin(a) T (T + 1) / 2: the state is the recorded run's.
    let want = 0.25 + 0.01 * 0.4f64.sin() * (STEPS * (STEPS + 1)) as f64 / 2.0;
    assert!((final_x - want).abs() < 1e-12, "{final_x} {want}");
    let dv = v.dual().get(&p, [STEPS]).unwrap();
    assert!((dv - 0.1 * STEPS as f64 * 0.4f64.cos()).abs() < 1e-12, "{dv}");
}
