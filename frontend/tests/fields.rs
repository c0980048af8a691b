//! Matrix and vector fields in kernels and on the host (element access by
//! handle, adjoint handles), kernel handles launching a kernel and its
//! gradient, and a `no_grad` optimizer kernel reading `x.grad()`.

use diffsim::prelude::*;
use ds_runtime::gradcheck::{Rng, Spec, gradcheck};

type M2 = [[f64; 2]; 2];
type F2 = MatrixField<f64, 2, 2, 1>;

#[kernel]
fn deform(f: &F2, w: &VectorField<f64, 3, 1>, out: &VectorField<f64, 2, 1>, g: &F2, e: &ScalarField<f64, 1>) {
    for i in 0..4usize {
        let m = f[(i,)];
        let u = w[(i,)];
        let (r, s) = m.polar();
        let c = m * m.transpose() * 0.5 + (-m) * 0.1;
        let planar = Vector([u.at(0), u.at(1)]);
        out[(i,)] = c * planar + r * planar;
        g[(i,)] = m.inverse() * 2.0;
        let twisted = Vector([u.at(2), u.at(0), u.at(1)]);
        e[(i,)] = s.trace() + m.determinant() + u.cross(&twisted).norm() + s.at(0, 1);
    }
}

#[kernel(no_grad)]
fn descend(f: &GradField<M2, 1>, lr: f64) {
    for i in 0..4usize {
        f[(i,)] = f[(i,)] - f.grad()[(i,)] * lr;
    }
}


/// `deform`'s outputs for one element, in plain Rust.
fn reference(m: M2, u: [f64; 3]) -> ([f64; 2], M2, f64) {
    let (x, y) = (m[0][0] + m[1][1], m[1][0] - m[0][1]);
    let h = (x * x + y * y).sqrt();
    let (cs, sn) = (x / h, y / h);
    let r = [[cs, -sn], [sn, cs]];
    let mmt = |i: usize, j: usize| m[i][0] * m[j][0] + m[i][1] * m[j][1];
    let c = |i: usize, j: usize| mmt(i, j) * 0.5 - m[i][j] * 0.1;
    let out = std::array::from_fn(|i| (c(i, 0) + r[i][0]) * u[0] + (c(i, 1) + r[i][1]) * u[1]);
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let g = [[2.0 * m[1][1] / det, -2.0 * m[0][1] / det], [-2.0 * m[1][0] / det, 2.0 * m[0][0] / det]];
    let t = [u[2], u[0], u[1]];
    let cross = [u[1] * t[2] - u[2] * t[1], u[2] * t[0] - u[0] * t[2], u[0] * t[1] - u[1] * t[0]];
    let norm = cross.iter().map(|c| c * c).sum::<f64>().sqrt();
    // S = R^T M: trace(S) = |(x, y)|, S[0][1] = cos m01 + sin m11.
    let e = h + det + norm + cs * m[0][1] + sn * m[1][1];
    (out, g, e)
}

struct Scene {
    program: Program,
    f: GradField<M2, 1>,
    w: GradField<[f64; 3], 1>,
    out: GradField<[f64; 2], 1>,
    g: GradField<M2, 1>,
    e: GradField<f64, 1>,
    deform: Kernel<()>,
    descend: Kernel<f64>,
    source: String,
}

fn scene() -> Scene {
    let mut pb = ProgramBuilder::new();
    let (f, w, out) = (pb.field_with_grad("F", [4]), pb.field_with_grad("w", [4]), pb.field_with_grad("out", [4]));
    let (g, e) = (pb.field_with_grad("G", [4]), pb.field_with_grad("e", [4]));
    let deform = pb.kernel(deform(&f, &w, &out, &g, &e)).unwrap();
    let descend = pb.kernel(descend(&f)).unwrap();
    let mut program = pb.build().unwrap();
    let mut rng = Rng(7);
    for i in 0..4 {
        let m: M2 = std::array::from_fn(|_| std::array::from_fn(|_| rng.uniform(0.5, 1.5)));
        f.set(&mut program, [i], m).unwrap();
    }
    let ws: Vec<[f64; 3]> = (0..4).map(|_| std::array::from_fn(|_| rng.uniform(0.5, 1.5))).collect();
    w.copy_from(&mut program, &ws).unwrap();
    Scene { program, f, w, out, g, e, deform, descend, source: pb.source() }
}

#[test]
fn matrix_and_vector_fields_against_rust() {
    let mut s = scene();
    s.deform.launch(&mut s.program, ()).unwrap();
    let p = &s.program;
    let (fs, ws) = (s.f.to_vec(p).unwrap(), s.w.to_vec(p).unwrap());
    for i in 0..4 {
        let (out, g, e) = reference(fs[i], ws[i]);
        let got_out = s.out.get(p, [i]).unwrap();
        let got_g = s.g.get(p, [i]).unwrap();
        let got_e = s.e.get(p, [i]).unwrap();
        assert!(got_out.iter().zip(&out).all(|(a, b)| (a - b).abs() < 1e-12), "out {i}: {got_out:?} vs {out:?}");
        assert!(got_g.iter().flatten().zip(g.iter().flatten()).all(|(a, b)| (a - b).abs() < 1e-12), "G {i}");
        assert!((got_e - e).abs() < 1e-12, "e {i}: {got_e} vs {e}");
    }
    // The layout: component dimensions last, matrices row-major.
    let raw: Vec<f64> = p.fields()[0].to_vec().unwrap();
    assert_eq!(raw[4..8], [fs[1][0][0], fs[1][0][1], fs[1][1][0], fs[1][1][1]]);
    let spec = Spec::new("deform", &[("F", 0.5, 1.5), ("w", 0.5, 1.5)], &["out", "G", "e"]);
    let r = gradcheck(&s.source, &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1e-2, "{r:?}");
}

#[test]
fn kernel_grad_and_a_no_grad_optimizer_step() {
    let mut s = scene();
    let energy = |s: &mut Scene| -> f64 {
        s.deform.launch(&mut s.program, ()).unwrap();
        s.e.to_vec(&s.program).unwrap().iter().sum()
    };
    energy(&mut s);
    for adjoint in [s.f.grad(), s.g.grad()] {
        adjoint.zero(&mut s.program).unwrap();
    }
    s.out.grad().zero(&mut s.program).unwrap();
    s.w.grad().zero(&mut s.program).unwrap();
    s.e.grad().fill(&mut s.program, 1.0).unwrap();
    s.deform.grad(&mut s.program, ()).unwrap();
    let grad = s.f.grad().to_vec(&s.program).unwrap();
    // dE/dF[2][1][0] by central differences of the primal.
    let m = s.f.get(&s.program, [2]).unwrap();
    let h = 1e-6;
    let at = |v: f64, s: &mut Scene| {
        let mut mm = m;
        mm[1][0] = v;
        s.f.set(&mut s.program, [2], mm).unwrap();
        energy(s)
    };
    let fd = (at(m[1][0] + h, &mut s) - at(m[1][0] - h, &mut s)) / (2.0 * h);
    s.f.set(&mut s.program, [2], m).unwrap();
    assert!((fd - grad[2][1][0]).abs() < 1e-6 * fd.abs().max(1.0), "{fd} vs {}", grad[2][1][0]);
    // The optimizer step reads F_grad inside a kernel.
    let before = s.f.to_vec(&s.program).unwrap();
    s.descend.launch(&mut s.program, 0.1).unwrap();
    let after = s.f.to_vec(&s.program).unwrap();
    for ((b, a), g) in before.iter().flatten().flatten().zip(after.iter().flatten().flatten()).zip(grad.iter().flatten().flatten()) {
        assert!((a - (b - 0.1 * g)).abs() < 1e-15);
    }
    let err = s.descend.grad(&mut s.program, 0.1).unwrap_err();
    assert!(matches!(&err, Error::NoGradKernel { kernel } if kernel == "descend"), "{err}");
}

#[test]
fn host_access_checks_indices() {
    let s = scene();
    let p = &s.program;
    // Element types and ranks are in the handle's type; the extent is checked.
    let err = s.w.get(p, [4]).unwrap_err();
    assert!(matches!(&err, Error::HostIndex { field, index, shape } if field == "w" && index == &[4] && shape == &[4]), "{err}");
    assert_eq!(s.w.name(), "w");
    assert_eq!(s.w.grad().name(), "w_grad");
    assert_eq!((s.f.shape(), s.f.len()), ([4], 4));
}
