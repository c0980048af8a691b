use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField) {
    for i in 0..4usize {
        x[(i,)] = x[(i,)].frobnicate();
    }
}

fn main() {}
