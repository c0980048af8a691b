use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        let y = match 3 { _ => x[(i,)] };
    }
}

fn main() {}
