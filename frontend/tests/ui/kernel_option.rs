use diffsim::prelude::*;

#[kernel(fast_math)]
fn k(x: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        x[(i,)] = 1.0;
    }
}

fn main() {}
