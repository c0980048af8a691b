//! The paper's appendix C program written with #[kernel] (the sec. 2.2
//! mass-spring kernels live in examples/src/mass_spring_simple.rs, with their
//! tests).

use diffsim::prelude::*;

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
    let reduce = pb.kernel(reduce(&x, &y, &l));
    let mut p = pb.build().unwrap();
    let ys: Vec<f32> = (0..32).map(|i| ((i * 37) % 100) as f32 / 100.0).collect();
    p.field_mut("y").unwrap().copy_from(&ys).unwrap();
    for _ in 0..100 {
        p.field_mut("L").unwrap().zero();
        reduce.launch(&mut p, &[]).unwrap();
        p.field_mut("x_grad").unwrap().zero();
        p.field_mut("L_grad").unwrap().fill(1.0f32).unwrap();
        reduce.grad(&mut p, &[]).unwrap();
        let g: Vec<f32> = p.field("x_grad").unwrap().to_vec().unwrap();
        let xs = p.field_mut("x").unwrap().as_mut_slice::<f32>().unwrap();
        for (x, g) in xs.iter_mut().zip(&g) {
            *x -= 0.1 * g;
        }
    }
    let xs: Vec<f32> = p.field("x").unwrap().to_vec().unwrap();
    assert!(xs.iter().zip(&ys).all(|(x, y)| (x - y).abs() < 1e-3), "{xs:?}");
}
