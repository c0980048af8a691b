//! `Mat3::svd` / `Mat3::polar` and `Mat2::svd` in kernels: the factors
//! against the input and Taichi's conventions (rotations, sorted singular
//! values with the sign of det A on the last), special matrices (zero,
//! rank 1, rotations, diagonals), gradchecks where the singular values are
//! distinct, and finite gradients at the zero matrix.

use diffsim::prelude::*;
use ds_runtime::gradcheck::{Rng, Spec, gradcheck};

type M3 = [[f64; 3]; 3];
type M2 = [[f64; 2]; 2];
type F3 = MatrixField<f64, 3, 3, 1>;
type F2 = MatrixField<f64, 2, 2, 1>;

fn mul<const N: usize>(a: &[[f64; N]; N], b: &[[f64; N]; N]) -> [[f64; N]; N] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..N).map(|k| a[i][k] * b[k][j]).sum()))
}

fn transpose<const N: usize>(a: &[[f64; N]; N]) -> [[f64; N]; N] {
    std::array::from_fn(|i| std::array::from_fn(|j| a[j][i]))
}

fn diag<const N: usize>(d: [f64; N]) -> [[f64; N]; N] {
    std::array::from_fn(|i| std::array::from_fn(|j| if i == j { d[i] } else { 0.0 }))
}

fn identity<const N: usize>() -> [[f64; N]; N] {
    diag([1.0; N])
}

fn det3(m: &M3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn det2(m: &M2) -> f64 {
    m[0][0] * m[1][1] - m[0][1] * m[1][0]
}

fn max_diff<const N: usize>(a: &[[f64; N]; N], b: &[[f64; N]; N]) -> f64 {
    (0..N).flat_map(|i| (0..N).map(move |j| (a[i][j] - b[i][j]).abs())).fold(0.0, f64::max)
}

fn finite<const N: usize>(m: &[[f64; N]; N]) -> bool {
    m.iter().flatten().all(|x| x.is_finite())
}

/// `q` is a rotation: Q^T Q = I and det Q = +1.
fn assert_rotation<const N: usize>(q: &[[f64; N]; N], det: f64, what: &str) {
    assert!(max_diff(&mul(&transpose(q), q), &identity()) < 1e-12, "{what} is not orthogonal: {q:?}");
    assert!((det - 1.0).abs() < 1e-12, "{what} has det {det}: {q:?}");
}

#[kernel]
fn decompose3(m: &F3, u: &F3, sig: &VectorField<f64, 3, 1>, v: &F3, r: &F3, s: &F3) {
    for i in 0..16usize {
        let (uu, sg, vv) = m[(i,)].svd();
        let (rot, sym) = m[(i,)].polar();
        u[(i,)] = uu;
        sig[(i,)] = Vector([sg.at(0, 0), sg.at(1, 1), sg.at(2, 2)]);
        v[(i,)] = vv;
        r[(i,)] = rot;
        s[(i,)] = sym;
    }
}

/// The rotation by `angle` about the unit vector along `axis` (Rodrigues).
fn rotation(axis: [f64; 3], angle: f64) -> M3 {
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let k = axis.map(|x| x / n);
    let cross = [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]];
    let k2 = mul(&cross, &cross);
    std::array::from_fn(|i| std::array::from_fn(|j| identity::<3>()[i][j] + angle.sin() * cross[i][j] + (1.0 - angle.cos()) * k2[i][j]))
}

/// The 16 test matrices of [`svd3_and_polar3_factor_the_input`] and what
/// each is: random ones (of both determinant signs), forced reflections, a
/// rotation, diagonals (sorting, negative entries, a repeated value), the
/// zero matrix, rank 1 and rank 2.
fn cases3() -> Vec<(&'static str, M3)> {
    let mut rng = Rng(11);
    let mut random = || -> M3 { std::array::from_fn(|_| std::array::from_fn(|_| rng.uniform(-1.0, 1.0))) };
    let mut cases: Vec<(&str, M3)> = (0..6).map(|_| ("random", random())).collect();
    for _ in 0..2 {
        let mut m = random();
        if det3(&m) > 0.0 {
            m[0] = m[0].map(|x| -x);
        }
        cases.push(("det < 0", m));
    }
    let (a, b) = ([0.3, -1.2, 0.7], [1.1, 0.4, -0.5]);
    let rank1: M3 = std::array::from_fn(|i| std::array::from_fn(|j| a[i] * b[j]));
    let c = [-0.2, 0.9, 0.6];
    let rank2: M3 = std::array::from_fn(|i| std::array::from_fn(|j| a[i] * b[j] + c[i] * a[j]));
    cases.extend([
        ("rotation", rotation([1.0, 2.0, -0.5], 2.3)),
        ("diagonal", diag([1.0, -3.0, 2.0])),
        ("negative diagonal", diag([-0.5, -2.0, -1.0])),
        ("repeated diagonal", diag([2.0, 1.0, 2.0])),
        ("zero", [[0.0; 3]; 3]),
        ("rank 1", rank1),
        ("rank 2", rank2),
        ("rotated stretch", mul(&rotation([0.0, 1.0, 1.0], 0.7), &mul(&diag([0.5, 4.0, 2.0]), &rotation([1.0, 0.0, 0.3], -1.1)))),
    ]);
    cases
}

/// U Σ V^T = A and R S = A with U, V, R rotations and S symmetric; σ0 >=
/// σ1 >= |σ2| with σ2 of the sign of det A; and the values Taichi's
/// conventions fix for the special matrices.
#[test]
fn svd3_and_polar3_factor_the_input() {
    let mut pb = ProgramBuilder::new();
    let (m, u, v, r, s): (F3, F3, F3, F3, F3) =
        (pb.field("m", [16]), pb.field("u", [16]), pb.field("v", [16]), pb.field("r", [16]), pb.field("s", [16]));
    let sig: VectorField<f64, 3, 1> = pb.field("sig", [16]);
    let k = pb.kernel(decompose3(&m, &u, &sig, &v, &r, &s)).unwrap();
    let mut p = pb.build().unwrap();
    let cases = cases3();
    let inputs: Vec<M3> = cases.iter().map(|(_, a)| *a).collect();
    m.copy_from(&mut p, &inputs).unwrap();
    k.launch(&mut p, ()).unwrap();
    let (us, sigs, vs, rs, ss) =
        (u.to_vec(&p).unwrap(), sig.to_vec(&p).unwrap(), v.to_vec(&p).unwrap(), r.to_vec(&p).unwrap(), s.to_vec(&p).unwrap());
    for (i, (what, a)) in cases.iter().enumerate() {
        let (uu, sg, vv, rot, sym) = (us[i], sigs[i], vs[i], rs[i], ss[i]);
        let what = format!("{what} (case {i})");
        assert!([uu, vv, rot, sym].iter().all(finite) && sg.iter().all(|x| x.is_finite()), "{what}: not finite");
        let usvt = mul(&mul(&uu, &diag(sg)), &transpose(&vv));
        assert!(max_diff(&usvt, a) < 1e-12, "{what}: U S V^T = {usvt:?}, A = {a:?}");
        assert_rotation(&uu, det3(&uu), &format!("{what}: U"));
        assert_rotation(&vv, det3(&vv), &format!("{what}: V"));
        assert!(sg[0] >= sg[1] && sg[1] >= sg[2].abs() - 1e-14, "{what}: unsorted {sg:?}");
        assert!(sg[2] * det3(a) >= 0.0, "{what}: sigma {sg:?} against det {}", det3(a));
        assert!(max_diff(&mul(&rot, &sym), a) < 1e-12, "{what}: R S != A");
        assert_rotation(&rot, det3(&rot), &format!("{what}: R"));
        assert!(max_diff(&sym, &transpose(&sym)) < 1e-12, "{what}: S not symmetric: {sym:?}");
    }
    let at = |name: &str| cases.iter().position(|(w, _)| *w == name).unwrap();
    let close = |a: [f64; 3], b: [f64; 3]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12);
    let zero = at("zero");
    assert_eq!((us[zero], sigs[zero], vs[zero]), (identity(), [0.0; 3], identity()), "svd(0) = (I, 0, I)");
    assert_eq!((rs[zero], ss[zero]), (identity(), [[0.0; 3]; 3]), "polar(0) = (I, 0)");
    assert!(close(sigs[at("diagonal")], [3.0, 2.0, -1.0]), "{:?}", sigs[at("diagonal")]);
    assert!(close(sigs[at("negative diagonal")], [2.0, 1.0, -0.5]), "{:?}", sigs[at("negative diagonal")]);
    assert!(close(sigs[at("repeated diagonal")], [2.0, 2.0, 1.0]), "{:?}", sigs[at("repeated diagonal")]);
    assert!(close(sigs[at("rotated stretch")], [4.0, 2.0, 0.5]), "{:?}", sigs[at("rotated stretch")]);
    let rotation_case = at("rotation");
    assert!(close(sigs[rotation_case], [1.0; 3]), "{:?}", sigs[rotation_case]);
    assert!(max_diff(&rs[rotation_case], &inputs[rotation_case]) < 1e-12 && max_diff(&ss[rotation_case], &identity()) < 1e-12);
    let norm = |x: [f64; 3]| (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt();
    let rank1 = sigs[at("rank 1")];
    let want = norm([0.3, -1.2, 0.7]) * norm([1.1, 0.4, -0.5]);
    assert!((rank1[0] - want).abs() < 1e-12 && rank1[1].abs() < 1e-7 && rank1[2].abs() < 1e-7, "{rank1:?}");
    let rank2 = sigs[at("rank 2")];
    assert!(rank2[1] > 1e-3 && rank2[2].abs() < 1e-7, "{rank2:?}");
}

#[kernel]
fn decompose3_f32(m: &MatrixField<f32, 3, 3, 1>, back: &MatrixField<f32, 3, 3, 1>, rs: &MatrixField<f32, 3, 3, 1>) {
    for i in 0..8usize {
        let (u, sg, v) = m[(i,)].svd();
        let (rot, sym) = m[(i,)].polar();
        back[(i,)] = u * sg * v.transpose();
        rs[(i,)] = rot * sym;
    }
}

/// In f32 (4 Jacobi sweeps) the factors give back A to f32 rounding.
#[test]
fn svd3_in_f32() {
    let mut pb = ProgramBuilder::new();
    type F = MatrixField<f32, 3, 3, 1>;
    let (m, back, rs): (F, F, F) = (pb.field("m", [8]), pb.field("back", [8]), pb.field("rs", [8]));
    let k = pb.kernel(decompose3_f32(&m, &back, &rs)).unwrap();
    let mut p = pb.build().unwrap();
    let mut rng = Rng(5);
    let inputs: Vec<[[f32; 3]; 3]> =
        (0..8).map(|_| std::array::from_fn(|_| std::array::from_fn(|_| rng.uniform(-1.0, 1.0) as f32))).collect();
    m.copy_from(&mut p, &inputs).unwrap();
    k.launch(&mut p, ()).unwrap();
    for out in [back.to_vec(&p).unwrap(), rs.to_vec(&p).unwrap()] {
        for (a, b) in inputs.iter().zip(&out) {
            let err = (0..3).flat_map(|i| (0..3).map(move |j| (a[i][j] - b[i][j]).abs())).fold(0.0f32, f32::max);
            assert!(err < 1e-5, "{a:?} vs {b:?}");
        }
    }
}

#[kernel]
fn decompose2(m: &F2, u: &F2, sig: &VectorField<f64, 2, 1>, v: &F2) {
    for i in 0..8usize {
        let (uu, sg, vv) = m[(i,)].svd();
        u[(i,)] = uu;
        sig[(i,)] = Vector([sg.at(0, 0), sg.at(1, 1)]);
        v[(i,)] = vv;
    }
}

/// Mat2::svd: U Σ V^T = A, U and V rotations, σ0 >= |σ1| with σ1 of the
/// sign of det A; the zero matrix gives (I, 0, I).
#[test]
fn svd2_factors_the_input() {
    let mut pb = ProgramBuilder::new();
    let (m, u, v): (F2, F2, F2) = (pb.field("m", [8]), pb.field("u", [8]), pb.field("v", [8]));
    let sig: VectorField<f64, 2, 1> = pb.field("sig", [8]);
    let k = pb.kernel(decompose2(&m, &u, &sig, &v)).unwrap();
    let mut p = pb.build().unwrap();
    let mut rng = Rng(7);
    let mut cases: Vec<M2> = (0..4).map(|_| std::array::from_fn(|_| std::array::from_fn(|_| rng.uniform(-1.0, 1.0)))).collect();
    cases.extend([[[1.0, 2.0], [3.0, -1.5]], diag([1.0, -3.0]), [[0.0; 2]; 2], [[0.5, -1.0], [1.0, -2.0]]]);
    m.copy_from(&mut p, &cases).unwrap();
    k.launch(&mut p, ()).unwrap();
    let (us, sigs, vs) = (u.to_vec(&p).unwrap(), sig.to_vec(&p).unwrap(), v.to_vec(&p).unwrap());
    for (i, a) in cases.iter().enumerate() {
        let (uu, sg, vv) = (us[i], sigs[i], vs[i]);
        let usvt = mul(&mul(&uu, &diag(sg)), &transpose(&vv));
        assert!(max_diff(&usvt, a) < 1e-12, "case {i}: U S V^T = {usvt:?}, A = {a:?}");
        assert_rotation(&uu, det2(&uu), &format!("case {i}: U"));
        assert_rotation(&vv, det2(&vv), &format!("case {i}: V"));
        assert!(sg[0] >= sg[1].abs() - 1e-14 && sg[1] * det2(a) >= 0.0, "case {i}: sigma {sg:?}, det {}", det2(a));
    }
    assert_eq!((us[6], sigs[6], vs[6]), (identity(), [0.0; 2], identity()), "svd(0) = (I, 0, I)");
    assert!((sigs[5][0] - 3.0).abs() < 1e-12 && (sigs[5][1] + 1.0).abs() < 1e-12, "{:?}", sigs[5]);
    assert!(sigs[7][1].abs() < 1e-12, "rank 1: {:?}", sigs[7]);
}

/// `x` plus a matrix with singular values 3, 2, 1 (entry `d[row]` at column
/// (row + k) % 3; the signs vary with k, so det < 0 is among them): for small
/// `x`, well separated singular values.
fn separated<const N: usize>(x: Matrix<N, N>, k: usize) -> Matrix<N, N> {
    let d = [[3.0, 2.0, 1.0], [3.0, -2.0, 1.0], [-1.0, 3.0, 2.0], [2.0, -1.0, -3.0]][k];
    let mut a = x;
    for (row, delta) in d.into_iter().enumerate().take(N) {
        let col = (row + k) % N;
        a.0[row][col] = a.0[row][col] + delta;
    }
    a
}

#[kernel]
fn losses3(m: &F3, r: &F3, s: &F3, sig: &VectorField<f64, 3, 1>, u: &F3, v: &F3) {
    for _i in 0..1usize {
        for k in unroll(0..4) {
            let a = separated(m[(k,)], k);
            let (rot, sym) = a.polar();
            let (uu, sg, vv) = a.svd();
            r[(k,)] = rot;
            s[(k,)] = sym;
            sig[(k,)] = Vector([sg.at(0, 0), sg.at(1, 1), sg.at(2, 2)]);
            u[(k,)] = uu;
            v[(k,)] = vv;
        }
    }
}

/// The gradients of R, S, Σ, U and V (a random weighted sum of them)
/// against central differences, at matrices with distinct singular values
/// (both determinant signs, columns in every order).
#[test]
fn svd3_and_polar3_gradcheck() {
    let mut pb = ProgramBuilder::new();
    let f = |pb: &mut ProgramBuilder, name: &str| -> GradField<M3, 1> { pb.field_with_grad(name, [4]) };
    let (m, r, s, u, v) = (f(&mut pb, "m"), f(&mut pb, "r"), f(&mut pb, "s"), f(&mut pb, "u"), f(&mut pb, "v"));
    let sig: GradField<[f64; 3], 1> = pb.field_with_grad("sig", [4]);
    pb.kernel(losses3(&m, &r, &s, &sig, &u, &v)).unwrap();
    let spec = Spec::new("losses3", &[("m", -0.15, 0.15)], &["r", "s", "sig", "u", "v"]);
    let report = gradcheck(&pb.source(), &spec).unwrap();
    assert!(report.worst_error < 1e-6 && report.largest_gradient > 1e-2, "{report:?}");
}

#[kernel]
fn losses2(m: &F2, sig: &VectorField<f64, 2, 1>, u: &F2, v: &F2) {
    for _i in 0..1usize {
        for k in unroll(0..4) {
            let (uu, sg, vv) = separated(m[(k,)], k).svd();
            sig[(k,)] = Vector([sg.at(0, 0), sg.at(1, 1)]);
            u[(k,)] = uu;
            v[(k,)] = vv;
        }
    }
}

/// Mat2::svd's gradients against central differences.
#[test]
fn svd2_gradcheck() {
    let mut pb = ProgramBuilder::new();
    let (m, u, v): (GradField<M2, 1>, GradField<M2, 1>, GradField<M2, 1>) =
        (pb.field_with_grad("m", [4]), pb.field_with_grad("u", [4]), pb.field_with_grad("v", [4]));
    let sig: GradField<[f64; 2], 1> = pb.field_with_grad("sig", [4]);
    pb.kernel(losses2(&m, &sig, &u, &v)).unwrap();
    let spec = Spec::new("losses2", &[("m", -0.15, 0.15)], &["sig", "u", "v"]);
    let report = gradcheck(&pb.source(), &spec).unwrap();
    assert!(report.worst_error < 1e-6 && report.largest_gradient > 1e-2, "{report:?}");
}

#[kernel]
fn zero_loss(m3: &GradField<M3, 1>, m2: &GradField<M2, 1>, out: &GradField<f64, 1>) {
    for i in 0..1usize {
        let (u, sg, v) = m3[(i,)].svd();
        let (r, s) = m3[(i,)].polar();
        let (u2, sg2, v2) = m2[(i,)].svd();
        let (r2, s2) = m2[(i,)].polar();
        let weights = [[0.3, -0.7, 1.1], [0.2, 0.9, -0.4], [-1.3, 0.5, 0.8]];
        let mut total = 0.0 * sg.trace();
        for a in unroll(0..3) {
            for b in unroll(0..3) {
                let w = weights[a][b];
                total = total + w * (u.at(a, b) + 2.0 * v.at(a, b) + 3.0 * r.at(a, b) + 4.0 * s.at(a, b) + 5.0 * sg.at(a, b));
            }
        }
        for a in unroll(0..2) {
            for b in unroll(0..2) {
                let w = weights[b][a];
                total = total + w * (u2.at(a, b) + 2.0 * v2.at(a, b) + 3.0 * r2.at(a, b) + 4.0 * s2.at(a, b) + 5.0 * sg2.at(a, b));
            }
        }
        out[(i,)] = total;
    }
}

/// At the zero matrix (every singular value repeated, no derivative) the
/// gradients of everything `svd` and `polar` give are finite.
#[test]
fn zero_matrix_gradients_are_finite() {
    let mut pb = ProgramBuilder::new();
    let m3: GradField<M3, 1> = pb.field_with_grad("m3", [1]);
    let m2: GradField<M2, 1> = pb.field_with_grad("m2", [1]);
    let out: GradField<f64, 1> = pb.field_with_grad("out", [1]);
    let k = pb.kernel(zero_loss(&m3, &m2, &out)).unwrap();
    let mut p = pb.build().unwrap();
    let mut rec = p.record();
    rec.launch(&k, ()).unwrap();
    rec.backward(&out).unwrap();
    let (g3, g2) = (m3.grad().to_vec(&p).unwrap(), m2.grad().to_vec(&p).unwrap());
    assert!(finite(&g3[0]) && finite(&g2[0]), "{g3:?} {g2:?}");
}
