use diffsim::prelude::*;

fn main() -> Result<(), Error> {
    let mut pb = ProgramBuilder::new();
    let x: Field<f32, 1> = pb.field("x", [4]);
    let p = pb.build()?;
    let _dx = x.grad().to_vec(&p)?;
    Ok(())
}
