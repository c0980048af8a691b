//! Unsupported constructs are compile errors at the right span with a readable
//! message (the expected messages are the `.stderr` files in `tests/ui`).

#[test]
fn unsupported_constructs() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
