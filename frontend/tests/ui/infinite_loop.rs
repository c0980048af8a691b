use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField) {
    for i in 0..4usize {
        loop {}
    }
}

fn main() {}
