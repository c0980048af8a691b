use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField<f32, 1>) {
    let mut total = x[(0usize,)];
    for i in 0..4usize {
        total = total + x[(i,)];
    }
}

fn main() {}
