//! `break` and `continue` in parallel, serial and unrolled loops, against
//! plain Rust, with a gradcheck in a range where the exits do not move.

use diffsim::prelude::*;
use ds_runtime::Arg;
use ds_runtime::gradcheck::{Spec, gradcheck};

#[kernel]
fn exits(a: &ScalarField<f64, 1>, out: &ScalarField<f64, 1>, n: usize) {
    for i in 0..n {
        let x = a[(i,)];
        if x < -0.5 {
            continue;
        } else if x > 0.9 {
            out[(i,)] = x * 2.0;
            continue;
        }
        let mut grow = x;
        for j in 0..8usize {
            if grow > 1.0 {
                break;
            }
            grow = grow * 1.5 + x;
        }
        let mut sum = 0.0 * x;
        for j in 0..6usize {
            if j % 3 == 0 {
                continue;
            }
            sum = sum + x * (j as f64);
        }
        let mut first = 0.0 * x;
        for k in unroll(1..5) {
            if x * (k as f64) > 0.41 {
                first = x * (k as f64);
                break;
            }
        }
        out[(i,)] = grow + sum + first;
    }
}

/// The kernel's element `x` in plain Rust (`None`: left untouched).
fn reference(x: f64) -> Option<f64> {
    if x < -0.5 {
        return None;
    } else if x > 0.9 {
        return Some(x * 2.0);
    }
    let mut grow = x;
    for _ in 0..8 {
        if grow > 1.0 {
            break;
        }
        grow = grow * 1.5 + x;
    }
    let sum: f64 = (0..6).filter(|j| j % 3 != 0).map(|j| x * j as f64).sum();
    let first = (1..5).map(|k| x * k as f64).find(|v| *v > 0.41).unwrap_or(0.0);
    Some(grow + sum + first)
}

#[test]
fn break_and_continue_in_parallel_serial_and_unrolled_loops() {
    let mut pb = ProgramBuilder::new();
    let a: GradField<f64, 1> = pb.field_with_grad("a", [64]);
    let out: GradField<f64, 1> = pb.field_with_grad("out", [64]);
    let k = pb.kernel(exits(&a, &out)).unwrap();
    let mut p = pb.build().unwrap();
    let xs: Vec<f64> = (0..64).map(|i| i as f64 / 30.0 - 1.0).collect();
    a.copy_from(&mut p, &xs).unwrap();
    out.fill(&mut p, -7.0).unwrap();
    k.launch(&mut p, 64).unwrap();
    let got = out.to_vec(&p).unwrap();
    for (x, y) in xs.iter().zip(&got) {
        let want = reference(*x).unwrap_or(-7.0);
        assert!((y - want).abs() < 1e-12, "x = {x}: {y} vs {want}");
    }
    // In [0.14, 0.2] the serial loop breaks after 4 steps and the unrolled
    // one at k = 3, so the output is smooth there.
    let spec = Spec::new("exits", &[("a", 0.14, 0.2)], &["out"]).args(&[Arg::Index(64)]);
    let r = gradcheck(&pb.source(), &spec).unwrap();
    assert!(r.worst_error < 1e-6 && r.largest_gradient > 1.0, "{r:?}");
}
