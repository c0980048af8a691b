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

/// Every op of a built program, fields, layout nodes and generated gradient
/// kernels included, carries a Rust location: none names the generated IR
/// text, so no error raised after building can (the module itself aside).
#[test]
fn every_op_of_a_built_program_has_a_rust_location() {
    let mut pb = ProgramBuilder::new();
    let x: GradField<f32, 1> = pb.field_with_grad("x", [4]);
    let y: GradField<f32, 1> = pb.field_with_grad("y", [4]); // y declared here
    pb.root().dense([4]).place((&x, &y)); // placed here
    pb.kernel(spread(&x, &y)).unwrap();
    let p = pb.build().unwrap();
    let ir = p.ir();
    assert!(ir.contains("func.func @spread_grad("), "{ir}");
    let locations: Vec<&str> = ir.match_indices("loc(").map(|(i, _)| &ir[i..i + ir[i..].find(')').unwrap() + 1]).collect();
    let foreign: Vec<&&str> = locations.iter().filter(|l| !l.contains("locations.rs\":")).collect();
    assert!(foreign.len() <= 1 && foreign.iter().all(|l| l.contains(":1:1)")), "ops without a Rust location: {foreign:?}\n{ir}");
    let placed = line_of("pb.root().dense([4]).place((&x, &y)); // placed here");
    let dense = ir.lines().find(|l| l.contains("\"ds.dense\"")).expect("a dense node");
    assert!(dense.contains(&format!("locations.rs\":{placed}:")), "{dense}");
    let field = ir.lines().find(|l| l.contains("sym_name = \"y_grad\"")).expect("y_grad");
    let declared = line_of("pb.field_with_grad(\"y\", [4]); // y declared here");
    assert!(field.contains(&format!("locations.rs\":{declared}:")), "{field}");
}
