//! The typed errors a user of the Rust frontend meets, one test each,
//! matching on the variant and checking its payload and Rust location.
//! (Build errors: `constructs`; compile errors: `locations`; no gradient
//! kernel: `fields`.)

use diffsim::prelude::*;

#[kernel]
fn shift(x: &ScalarField<f32, 1>, y: &ScalarField<f32, 1>, n: usize) {
    for i in 0..n {
        y[(i,)] = x[(i + 1,)]; // reads one past the end for i = n - 1
    }
}

fn line_of(text: &str) -> u32 {
    include_str!("errors.rs").lines().position(|l| l.contains(text)).expect("the line") as u32 + 1
}

#[test]
fn bounds_checks_are_on_and_report_field_index_extent_and_rust_location() {
    let mut pb = ProgramBuilder::new();
    let (x, y): (Field<f32, 1>, Field<f32, 1>) = (pb.field("x", [8]), pb.field("y", [8]));
    let shift = pb.kernel(shift(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    shift.launch(&mut p, 7).unwrap();
    let err = shift.launch(&mut p, 8).unwrap_err();
    let Error::OutOfBounds { kernel, field, access, dim, index, extent, location } = &err else { panic!("{err}") };
    assert_eq!((kernel.as_str(), field.as_str(), *access), ("shift", "x", ds_runtime::error::AccessKind::Load));
    assert_eq!((*dim, *index, *extent), (0, 8, 8));
    let at = location.as_ref().expect("a Rust location");
    assert_eq!((at.file.as_str(), at.line), ("frontend/tests/errors.rs", line_of("reads one past the end")), "{err}");
}

/// A 3-point stencil around a data-dependent cell, as MPM's particles use
/// the grid: one bounds test of `b` covers its six accesses.
#[kernel]
fn stencil(pos: &ScalarField<f32, 1>, g: &ScalarField<f32, 1>, out: &ScalarField<f32, 1>, acc: &ScalarField<f32, 1>) {
    for p in 0..4usize {
        let b = (pos[(p,)] - 1.0) as i32;
        let mut sum = 0.0 * pos[(p,)];
        for k in unroll(0..3) {
            sum = sum + g[((b + k as i32) as usize,)] * (k as f64 + 1.0); // the gathered cell
            acc[((b + k as i32) as usize,)] += pos[(p,)]; // the scattered cell
        }
        out[(p,)] = sum;
    }
}

/// Stencil accesses whose indices share a base are checked by one test of
/// the base; in bounds they compute what each access checked alone does,
/// out of bounds on either side they fail at the member whose offset
/// goes out, with its index.
#[test]
fn stencil_accesses_checked_together_report_the_access_that_left_the_field() {
    let mut pb = ProgramBuilder::new();
    let fields: [Field<f32, 1>; 4] = [pb.field("pos", [4]), pb.field("g", [8]), pb.field("out", [4]), pb.field("acc", [8])];
    let [pos, g, out, acc] = &fields;
    let k = pb.kernel(stencil(pos, g, out, acc)).unwrap();
    let mut p = pb.build().unwrap();
    let gs: Vec<f32> = (0..8).map(|v| v as f32 * 0.25 + 1.0).collect();
    g.copy_from(&mut p, &gs).unwrap();
    let at = |centres: [f32; 4]| centres.map(|c| c + 0.5);
    pos.copy_from(&mut p, &at([1.0, 3.0, 5.0, 6.0])).unwrap();
    k.launch(&mut p, ()).unwrap();
    let (mut want_out, mut want_acc) = (vec![0.0f32; 4], vec![0.0f32; 8]);
    for (i, &x) in at([1.0, 3.0, 5.0, 6.0]).iter().enumerate() {
        let b = (x - 1.0) as usize;
        for k in 0..3 {
            want_out[i] += gs[b + k] * (k as f32 + 1.0);
            want_acc[b + k] += x;
        }
    }
    assert_eq!((out.to_vec(&p).unwrap(), acc.to_vec(&p).unwrap()), (want_out, want_acc));
    let line = line_of("the gathered cell");
    // b = 6 for the last particle: b + 2 = 8 is past the end (extent 8).
    pos.copy_from(&mut p, &at([1.0, 3.0, 5.0, 7.0])).unwrap();
    let err = k.launch(&mut p, ()).unwrap_err();
    let Error::OutOfBounds { field, access, dim, index, extent, location, .. } = &err else { panic!("{err}") };
    assert_eq!((field.as_str(), *access, *dim, *index, *extent), ("g", ds_runtime::error::AccessKind::Load, 0, 8, 8), "{err}");
    assert_eq!(location.as_ref().map(|l| l.line), Some(line), "{err}");
    // b = -1 (position -0.5): b + 0 = -1 is below 0.
    pos.copy_from(&mut p, &[-0.5, 2.5, 4.5, 5.5]).unwrap();
    let err = k.launch(&mut p, ()).unwrap_err();
    let Error::OutOfBounds { field, dim, index, location, .. } = &err else { panic!("{err}") };
    assert_eq!((field.as_str(), *dim, *index, location.as_ref().map(|l| l.line)), ("g", 0, -1, Some(line)), "{err}");
}

#[test]
fn a_handle_of_another_program_is_foreign() {
    let mut pb = ProgramBuilder::new();
    let x: Field<f32, 1> = pb.field("x", [8]);
    let mut other = ProgramBuilder::new();
    let _: Field<f32, 1> = other.field("x", [4]);
    let mut q = other.build().unwrap();
    let err = x.set(&mut q, [0], 1.0).unwrap_err();
    assert!(matches!(&err, Error::ForeignField { field, shape } if field == "x" && shape == &[8]), "{err}");
    drop(pb);
}

#[test]
fn a_kernel_handle_on_a_program_without_it_is_an_unknown_kernel() {
    let mut pb = ProgramBuilder::new();
    let (x, y) = (pb.field("x", [8]), pb.field("y", [8]));
    let shift = pb.kernel(shift(&x, &y)).unwrap();
    let mut other = ProgramBuilder::new();
    let _: Field<f32, 1> = other.field("x", [8]);
    let mut q = other.build().unwrap();
    let err = shift.launch(&mut q, 8).unwrap_err();
    assert!(matches!(&err, Error::UnknownKernel { name, known } if name == "shift" && known.is_empty()), "{err}");
}

#[test]
fn names_declared_twice() {
    let mut pb = ProgramBuilder::new();
    let (x, y): (Field<f32, 1>, Field<f32, 1>) = (pb.field("x", [8]), pb.field("y", [8]));
    pb.kernel(shift(&x, &y)).unwrap();
    let err = pb.kernel(shift(&x, &y)).unwrap_err();
    assert!(matches!(&err, Error::Duplicate { what: "kernel", name } if name == "shift"), "{err}");
    let _: Field<f32, 1> = pb.field("x", [2]);
    let err = pb.build().err().expect("x is declared twice");
    assert!(matches!(&err, Error::Duplicate { what: "field", name } if name == "x"), "{err}");
}

#[test]
fn backward_from_a_loss_without_gradients_is_nothing_to_differentiate() {
    #[kernel(no_grad)]
    fn copy(x: &ScalarField<f32, 1>, y: &ScalarField<f32, 1>) {
        for i in 0..8usize {
            y[(i,)] = x[(i,)];
        }
    }
    let mut pb = ProgramBuilder::new();
    let (x, y): (GradField<f32, 1>, GradField<f32, 1>) = (pb.field_with_grad("x", [8]), pb.field_with_grad("y", [8]));
    let copy = pb.kernel(copy(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let mut rec = p.record();
    rec.launch(&copy, ()).unwrap();
    let err = rec.backward(&y).unwrap_err();
    assert!(matches!(err, Error::NothingToDifferentiate { launches: 1 }), "{err}");
}

#[test]
fn fields_too_large_are_errors_at_build() {
    let mut pb = ProgramBuilder::new();
    let _: Field<f32, 1> = pb.field("x", [usize::MAX]);
    let err = pb.build().err().expect("an extent beyond i64::MAX");
    assert!(matches!(&err, Error::FieldTooLarge { field, shape } if field == "x" && shape == &[usize::MAX]), "{err}");
    let mut pb = ProgramBuilder::new();
    let big: Field<f32, 2> = pb.field("big", [1 << 40, 1 << 40]);
    assert_eq!(big.len(), usize::MAX, "the element count saturates");
    let err = pb.build().err().expect("2^80 elements do not fit");
    assert!(matches!(&err, Error::OutOfMemory { what, .. } if what == "field @big"), "{err}");
}

#[kernel]
fn long_carry(x: &ScalarField<f64, 1>, y: &ScalarField<f64, 1>, n: usize) {
    for i in 0..2usize {
        let mut acc = x[(i,)];
        for _k in 0..n {
            acc = acc * 0.5 + 1.0; // carried through every iteration
        }
        y[(i,)] = acc;
    }
}

/// An autodiff stack overflow, found while the gradient runs, names the Rust
/// line of the loop whose values overflowed it.
#[test]
fn autodiff_stack_overflow_names_the_rust_loop() {
    let mut pb = ProgramBuilder::new();
    let (x, y): (GradField<f64, 1>, GradField<f64, 1>) = (pb.field_with_grad("x", [2]), pb.field_with_grad("y", [2]));
    let k = pb.kernel(long_carry(&x, &y)).unwrap();
    let mut p = pb.build().unwrap();
    let mut rec = p.record();
    rec.launch(&k, 1000).unwrap();
    let err = rec.backward(&y).unwrap_err();
    let Error::InBackward { step: 0, launch: 0, kernel, source } = &err else { panic!("{err}") };
    assert_eq!(kernel, "long_carry");
    let Error::Assertion { kernel, message, location } = source.as_ref() else { panic!("{err}") };
    assert_eq!(kernel, "long_carry_grad");
    assert!(message.contains("autodiff stack overflow"), "{err}");
    let at = location.as_ref().expect("a Rust location");
    assert_eq!((at.file.as_str(), at.line), ("frontend/tests/errors.rs", line_of("for _k in 0..n {")), "{err}");
}
