use diffsim::prelude::*;

#[kernel]
fn k(x: &ScalarField) {
    for i in 0..4usize {
        let y = match 3 { _ => x[(i,)] };
    }
}

fn main() {}
