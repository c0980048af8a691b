use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField<f32, 1>) -> f32 {
    1.0
}

fn main() {}
