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
