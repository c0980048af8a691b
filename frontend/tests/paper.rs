//! The paper's appendix C program written with #[kernel]: L = sum 0.5 (x_i -
//! y_i)^2, its generated gradient, and a gradient-descent step kernel, 100
//! iterations from x = 0 (the sec. 2.2 mass-spring kernels live in
//! examples/src/mass_spring_simple.rs, with their tests).

use diffsim::prelude::*;

#[kernel]
fn reduce(x: &ScalarField<f32, 1>, y: &ScalarField<f32, 1>, l: &ScalarField<f32, 0>) {
    for i in 0..32usize {
        l[()] += 0.5 * (x[(i,)] - y[(i,)]) * (x[(i,)] - y[(i,)]);
    }
}

#[kernel(no_grad)]
fn update(x: &GradField<f32, 1>) {
    for i in 0..32usize {
        x[(i,)] = x[(i,)] - 0.1 * x.grad()[(i,)];
    }
}

#[test]
fn appendix_c_gradient_descent() {
    let mut pb = ProgramBuilder::new();
    let x = pb.field_with_grad("x", [32]);
    let y = pb.field("y", [32]);
    let l = pb.field_with_grad("L", []);
    let reduce = pb.kernel(reduce(&x, &y, &l)).unwrap();
    let update = pb.kernel(update(&x)).unwrap();
    let mut p = pb.build().unwrap();
    let ys: Vec<f32> = (0..32).map(|i| ((i * 37) % 100) as f32 / 100.0).collect();
    y.copy_from(&mut p, &ys).unwrap();
    let mut losses = Vec::new();
    for _ in 0..100 {
        l.zero(&mut p).unwrap();
        reduce.launch(&mut p, ()).unwrap();
        losses.push(l.get(&p, []).unwrap());
        x.grad().zero(&mut p).unwrap();
        l.grad().fill(&mut p, 1.0).unwrap();
        reduce.grad(&mut p, ()).unwrap();
        update.launch(&mut p, ()).unwrap();
    }
    // dL/dx = x - y, so each step shrinks x - y by 0.9.
    assert!((losses[1] / losses[0] - 0.81).abs() < 1e-4, "{:?}", &losses[..2]);
    let xs = x.to_vec(&p).unwrap();
    assert!(xs.iter().zip(&ys).all(|(x, y)| (x - y).abs() < 1e-3), "{xs:?}");
}
