use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        while x[(i,)] > 0.0 {}
    }
}

fn main() {}
