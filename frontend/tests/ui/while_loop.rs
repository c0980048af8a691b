use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField) {
    for i in 0..4usize {
        while x[(i,)] > 0.0 {}
    }
}

fn main() {}
