use diffsim::prelude::*;

#[kernel]
fn step(x: &ScalarField<f32, 1>, t: usize, dt: f32) {
    for i in 0..4usize {
        x[(i,)] = x[(i,)] + dt * (t as f32);
    }
}

fn main() -> Result<(), Error> {
    let mut pb = ProgramBuilder::new();
    let x = pb.field("x", [4]);
    let step = pb.kernel(step(&x))?;
    let mut p = pb.build()?;
    step.launch(&mut p, (1usize, 0.5f64))?;
    Ok(())
}
