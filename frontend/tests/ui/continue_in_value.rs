use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        let y = x[(i,)] + if x[(i,)] > 0.0 { continue } else { 1.0 };
    }
}

fn main() {}
