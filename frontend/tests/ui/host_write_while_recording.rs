use diffsim::prelude::*;

#[kernel]
fn double(x: &ScalarField<f32, 1>, y: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        y[(i,)] = x[(i,)] * 2.0;
    }
}

fn main() -> Result<(), Error> {
    let mut pb = ProgramBuilder::new();
    let (x, y): (GradField<f32, 1>, GradField<f32, 1>) = (pb.field_with_grad("x", [4]), pb.field_with_grad("y", [4]));
    let double = pb.kernel(double(&x, &y))?;
    let mut p = pb.build()?;
    let mut rec = p.record();
    rec.launch(&double, ())?;
    x.set(&mut p, [0], 1.0)?;
    rec.backward(&y)?;
    Ok(())
}
