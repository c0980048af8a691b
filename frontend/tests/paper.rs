//! The paper's programs written with #[kernel]: the sec. 2.2 mass-spring
//! kernels (checked against the ds-dialect version of the example, and for
//! length) and the appendix C program.

use diffsim::prelude::*;

const STEPS: usize = 64;

// --- paper sec. 2.2 kernels (kept together: their line count is checked) ---
#[kernel]
fn apply_spring_force(x: &VectorField<2>, force: &VectorField<2>, l: &ScalarField, a: &ScalarField, b: &ScalarField, t: usize) {
    for i in 0..3usize {
        let (ia, ib) = (a[(i,)] as usize, b[(i,)] as usize);
        let dist = x[(t - 1, ia)] - x[(t - 1, ib)];
        let length = dist.norm() + 1e-4;
        let f = dist * ((length - l[(i,)]) * 10.0 / length);
        force[(t, ia)] -= f;
        force[(t, ib)] += f;
    }
}

#[kernel]
fn time_integrate(x: &VectorField<2>, v: &VectorField<2>, force: &VectorField<2>, t: usize) {
    for i in 0..3usize {
        let s = (-0.001f64 * 20.0).exp() as f32;
        let mut nv = v[(t - 1, i)] * s + force[(t, i)] * 0.001;
        let nx = x[(t - 1, i)] + nv * 0.001;
        if nx.at(0) > 0.4 && nv.at(0) > 0.0 {
            let shrink = nv.at(1).abs().min(nv.at(0) * 0.01);
            let vy = select(nv.at(1) > 0.0, nv.at(1) - shrink, nv.at(1) + shrink);
            nv = Vector([nv.at(0) * 0.0, vy]);
        }
        v[(t, i)] = nv;
        x[(t, i)] = nx;
    }
}

#[kernel]
fn compute_loss(x: &VectorField<2>, loss: &ScalarField, t: usize) {
    let area = (0.5 * (x[(t, 0usize)] - x[(t, 1usize)]).cross(&(x[(t, 0usize)] - x[(t, 2usize)]))).abs();
    loss[()] = (area - 0.1) * (area - 0.1);
}
// --- end of the paper's kernels ---

#[test]
fn mass_spring_kernels_are_short() {
    let source = include_str!("paper.rs");
    let start = source.find("// --- paper sec. 2.2 kernels").expect("start marker");
    let end = source.find("// --- end of the paper's kernels").expect("end marker");
    let lines = source[start..end].lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with("//")).count();
    assert!(lines <= 44, "{lines} kernel lines");
}

#[test]
fn mass_spring_matches_the_ds_dialect_version() {
    let mut pb = ProgramBuilder::new();
    let x = pb.vector::<f32, 2>("x", &[STEPS, 3], true);
    let v = pb.vector::<f32, 2>("v", &[STEPS, 3], true);
    let force = pb.vector::<f32, 2>("force", &[STEPS, 3], true);
    let l = pb.scalar::<f32>("spring_length", &[3], true);
    let a = pb.scalar::<i32>("spring_a", &[3], false);
    let b = pb.scalar::<i32>("spring_b", &[3], false);
    let loss = pb.scalar::<f32>("loss", &[], true);
    pb.kernel(apply_spring_force(&x, &force, &l, &a, &b));
    pb.kernel(time_integrate(&x, &v, &force));
    pb.kernel(compute_loss(&x, &loss));
    let mut p = pb.build().unwrap_or_else(|e| panic!("{e}\n{}", pb.source()));
    p.field_mut("spring_a").unwrap().copy_from(&[0i32, 1, 2]).unwrap();
    p.field_mut("spring_b").unwrap().copy_from(&[1i32, 2, 0]).unwrap();
    p.field_mut("spring_length").unwrap().copy_from(&[0.1f32, 0.1, 0.1 * std::f32::consts::SQRT_2]).unwrap();
    for (i, (px, py)) in [(0.3f32, 0.5f32), (0.3, 0.4), (0.4, 0.4)].iter().enumerate() {
        p.field_mut("x").unwrap().set(&[0, i, 0], *px).unwrap();
        p.field_mut("x").unwrap().set(&[0, i, 1], *py).unwrap();
    }
    let mut tape = Tape::new();
    for t in 1..STEPS {
        tape.launch(&mut p, "apply_spring_force", &[Arg::Index(t as i64)]).unwrap();
        tape.launch(&mut p, "time_integrate", &[Arg::Index(t as i64)]).unwrap();
    }
    tape.launch(&mut p, "compute_loss", &[Arg::Index(STEPS as i64 - 1)]).unwrap();
    tape.backward(&mut p, "loss", &Default::default()).unwrap();
    // The same simulation from the example's hand-written ds kernels.
    let mut reference = diffsim_examples::mass_spring_simple::program().unwrap();
    let want_loss = diffsim_examples::mass_spring_simple::forward(&mut reference, STEPS).unwrap();
    let want_grad = diffsim_examples::mass_spring_simple::backward(&mut reference, STEPS).unwrap();
    let got_loss: f32 = p.field("loss").unwrap().get(&[]).unwrap();
    let got_grad: Vec<f32> = p.field("spring_length_grad").unwrap().to_vec().unwrap();
    assert!((got_loss - want_loss).abs() <= 1e-6 * want_loss.abs(), "{got_loss} vs {want_loss}");
    for (g, w) in got_grad.iter().zip(&want_grad) {
        assert!((g - w).abs() <= 1e-3 * w.abs().max(1e-6), "{got_grad:?} vs {want_grad:?}");
    }
}

#[kernel]
fn reduce(x: &ScalarField, y: &ScalarField, l: &ScalarField) {
    for i in 0..32usize {
        l[()] += 0.5 * (x[(i,)] - y[(i,)]) * (x[(i,)] - y[(i,)]);
    }
}

#[test]
fn appendix_c_gradient_descent() {
    let mut pb = ProgramBuilder::new();
    let x = pb.scalar::<f32>("x", &[32], true);
    let y = pb.scalar::<f32>("y", &[32], true);
    let l = pb.scalar::<f32>("L", &[], true);
    pb.kernel(reduce(&x, &y, &l));
    let mut p = pb.build().unwrap();
    let ys: Vec<f32> = (0..32).map(|i| ((i * 37) % 100) as f32 / 100.0).collect();
    p.field_mut("y").unwrap().copy_from(&ys).unwrap();
    for _ in 0..100 {
        p.field_mut("L").unwrap().zero();
        p.launch("reduce", &[]).unwrap();
        p.field_mut("x_grad").unwrap().zero();
        p.field_mut("L_grad").unwrap().fill(1.0f32).unwrap();
        p.launch("reduce_grad", &[]).unwrap();
        let g: Vec<f32> = p.field("x_grad").unwrap().to_vec().unwrap();
        let xs = p.field_mut("x").unwrap().as_mut_slice::<f32>().unwrap();
        for (x, g) in xs.iter_mut().zip(&g) {
            *x -= 0.1 * g;
        }
    }
    let xs: Vec<f32> = p.field("x").unwrap().to_vec().unwrap();
    assert!(xs.iter().zip(&ys).all(|(x, y)| (x - y).abs() < 1e-3), "{xs:?}");
}
