//! Ops carry the Rust location of their own expression, so errors from the
//! builder and from the compiler (through MLIR locations) name the Rust file
//! and line.

use diffsim::prelude::*;

/// The 1-based line of this file ending in `text` (once).
fn line_of(text: &str) -> usize {
    let source = include_str!("locations.rs");
    let hits: Vec<usize> = source.lines().enumerate().filter(|(_, l)| l.ends_with(text)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "{text:?} must end one line");
    hits[0]
}

#[kernel]
fn spread(x: &ScalarField<f32, 1>, y: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        let v = x[(i,)];
        let w = v
            * 3.0
            + v.sqrt(); // sqrt here
        y[(i,)] = w; // store here
    }
}

#[test]
fn ops_carry_the_location_of_their_expression() {
    let mut pb = ProgramBuilder::new();
    let (x, y) = (pb.field("x", [4]), pb.field("y", [4]));
    let text = spread(&x, &y).unwrap().ir().to_string();
    let loc_of = |op: &str| -> String {
        let line = text.lines().find(|l| l.contains(op)).unwrap_or_else(|| panic!("no {op} in\n{text}"));
        line[line.rfind("loc(").expect("a location")..].to_string()
    };
    let sqrt = line_of("+ v.sqrt(); // sqrt here");
    assert!(loc_of("math.sqrt").contains(&format!("locations.rs\":{sqrt}:15)")), "{}", loc_of("math.sqrt"));
    let store = line_of("y[(i,)] = w; // store here");
    assert!(loc_of("ds.store").contains(&format!("locations.rs\":{store}:9)")), "{}", loc_of("ds.store"));
}

#[kernel]
fn overwrite(x: &ScalarField<f32, 1>) {
    for i in 0..4usize {
        let v = x[(i,)];
        x[(i,)] = v * 2.0; // written after being read
    }
}

#[test]
fn compile_errors_name_the_rust_line() {
    let mut pb = ProgramBuilder::new();
    let x: Field<f32, 1> = pb.field("x", [4]);
    pb.kernel(overwrite(&x)).unwrap();
    let err = pb.build().err().expect("autodiff rejects a kernel that overwrites what it read");
    let Error::Compile(diagnostics) = &err else { panic!("{err}") };
    let line = line_of("x[(i,)] = v * 2.0; // written after being read");
    let at = diagnostics[0].pos.as_ref().expect("a Rust location");
    assert!(at.file.ends_with("locations.rs") && at.line as usize == line && at.col == 9, "{err}");
    assert!(err.to_string().contains("cannot be differentiated"), "{err}");
    assert!(!err.to_string().contains("<diffsim program>"), "no location names the generated IR: {err}");
}
