//! Field layouts at the module level: vector fields stored by component
//! (`order = "soa"`) and fields placed together under one dense node run the
//! same kernels as plain fields, lie in memory in the layout's order, keep
//! host access, snapshots and gradients per field, and compile to PTX.

use crate::common::{fields, loop_kernel};
use ds_runtime::cuda::compile_ptx;
use ds_runtime::gradcheck::{Spec, gradcheck};
use ds_runtime::{Backend, CompileOptions, Error, Program};

const N: usize = 8;

/// Declarations of `x` and `v` (f64 vectors of 2 over N cells) and `s` (f64
/// scalars), with their adjoints, in layout `layout`: "plain" (own buffers),
/// "soa" (each its own SoA node), "together" (one AoS node, adjoints in
/// another) or "together-soa".
fn decls(layout: &str) -> String {
    let plain = fields(&[("x", "f64", "8, 2"), ("v", "f64", "8, 2"), ("s", "f64", "8")]);
    let node = |name: &str, order: &str| {
        let order = if order.is_empty() { String::new() } else { format!(", order = \"{order}\"") };
        format!("\"ds.dense\"() {{sym_name = \"{name}\", shape = array<i64: 8>{order}}} : () -> ()\n")
    };
    let place = |text: String, field: &str, node: &str| {
        let from = format!("sym_name = \"{field}\", element_type = f64, shape = array<i64: {}>", if field.starts_with('s') { "8" } else { "8, 2" });
        text.replace(&from, &format!("{from}, layout = @{node}"))
    };
    let mut text = plain.clone();
    let mut nodes = String::new();
    match layout {
        "plain" => {}
        "soa" => {
            for f in ["x", "v", "s", "x_grad", "v_grad", "s_grad"] {
                nodes += &node(&format!("{f}_cells"), "soa");
                text = place(text, f, &format!("{f}_cells"));
            }
        }
        "together" | "together-soa" => {
            let order = if layout == "together" { "" } else { "soa" };
            nodes += &node("cells", order);
            nodes += &node("cells_grad", order);
            for f in ["x", "v", "s"] {
                text = place(text, f, "cells");
                text = place(text, &format!("{f}_grad"), "cells_grad");
            }
        }
        _ => unreachable!("{layout}"),
    }
    nodes + &text
}

/// `v[i] = (x0 * x1 + s, sin(x0) * s)`: reads and writes of every field,
/// both components.
fn program_source(layout: &str) -> String {
    decls(layout)
        + &loop_kernel(
            "k",
            "",
            Some(N),
            r#"    %c1 = arith.constant 1 : index
    %a = "ds.load"(%i, %c0) {field = @x} : (index, index) -> f64
    %b = "ds.load"(%i, %c1) {field = @x} : (index, index) -> f64
    %s = "ds.load"(%i) {field = @s} : (index) -> f64
    %ab = arith.mulf %a, %b : f64
    %v0 = arith.addf %ab, %s : f64
    %sa = math.sin %a : f64
    %v1 = arith.mulf %sa, %s : f64
    "ds.store"(%v0, %i, %c0) {field = @v} : (f64, index, index) -> ()
    "ds.store"(%v1, %i, %c1) {field = @v} : (f64, index, index) -> ()"#,
        )
}

const LAYOUTS: [&str; 4] = ["plain", "soa", "together", "together-soa"];

fn program(layout: &str) -> Program {
    let options = CompileOptions { autodiff: true, ..Default::default() };
    Program::with_options(&program_source(layout), &format!("{layout}.mlir"), &options).unwrap_or_else(|e| panic!("{layout}: {e}"))
}

/// Element (i, c) of x is 10 i + c, of v 10 i + 2 + c, and s[i] is 10 i + 4.
fn fill(p: &mut Program) {
    let x: Vec<f64> = (0..N).flat_map(|i| [10.0 * i as f64, 10.0 * i as f64 + 1.0]).collect();
    let v: Vec<f64> = (0..N).flat_map(|i| [10.0 * i as f64 + 2.0, 10.0 * i as f64 + 3.0]).collect();
    let s: Vec<f64> = (0..N).map(|i| 10.0 * i as f64 + 4.0).collect();
    p.field_mut("x").unwrap().copy_from(&x).unwrap();
    p.field_mut("v").unwrap().copy_from(&v).unwrap();
    p.field_mut("s").unwrap().copy_from(&s).unwrap();
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes.chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// The buffer holding `field`, as f64s in memory order.
fn memory(p: &Program, field: &str) -> Vec<f64> {
    f64s(&p.buffer_bytes(p.field(field).unwrap().info.placement.buffer).unwrap())
}

#[test]
fn kernels_compute_the_same_on_every_layout() {
    let mut results = Vec::new();
    for layout in LAYOUTS {
        let mut p = program(layout);
        fill(&mut p);
        p.launch("k", &[]).unwrap();
        let out: Vec<Vec<f64>> = ["x", "v", "s"].iter().map(|f| p.field(f).unwrap().to_vec::<f64>().unwrap()).collect();
        results.push((layout, out));
    }
    for (layout, out) in &results[1..] {
        assert_eq!(out, &results[0].1, "{layout} against plain fields");
    }
    let v = &results[0].1[1];
    assert_eq!(v[2 * 3], 30.0 * 31.0 + 34.0, "v[3][0] = x0 x1 + s");
}

#[test]
fn memory_is_in_the_layout_order() {
    let (x0, x1, v0, v1, s) = (|i: usize| 10.0 * i as f64, |i: usize| 10.0 * i as f64 + 1.0, |i: usize| 10.0 * i as f64 + 2.0, |i: usize| 10.0 * i as f64 + 3.0, |i: usize| 10.0 * i as f64 + 4.0);
    let cells = |f: &dyn Fn(usize) -> f64| (0..N).map(f).collect::<Vec<f64>>();
    let expected = |layout: &str| -> Vec<f64> {
        match layout {
            // Per cell: x0 x1 v0 v1 s.
            "together" => (0..N).flat_map(|i| [x0(i), x1(i), v0(i), v1(i), s(i)]).collect(),
            // Each component over the cells: x0..., x1..., v0..., v1..., s...
            "together-soa" => [cells(&x0), cells(&x1), cells(&v0), cells(&v1), cells(&s)].concat(),
            // x alone, by component.
            "soa" => [cells(&x0), cells(&x1)].concat(),
            // x alone, interleaved.
            _ => (0..N).flat_map(|i| [x0(i), x1(i)]).collect(),
        }
    };
    for layout in LAYOUTS {
        let mut p = program(layout);
        fill(&mut p);
        assert_eq!(memory(&p, "x"), expected(layout), "{layout}");
        let (x, g) = (&p.field("x").unwrap().info, &p.field("x_grad").unwrap().info);
        assert_ne!(x.placement.buffer, g.placement.buffer, "{layout}: the adjoint has a buffer of its own");
        assert_eq!((x.placement.offset, &x.placement.strides), (g.placement.offset, &g.placement.strides), "{layout}: the adjoint has the same strides");
    }
    let p = program("together");
    let buffers = p.buffer_infos();
    assert_eq!(buffers.len(), 2, "{buffers:?}");
    assert_eq!((buffers[0].name.as_str(), buffers[0].bytes), ("cells", N * 5 * 8));
    let v = &p.field("v").unwrap().info.placement;
    assert_eq!((v.offset, v.strides.as_slice()), (2, &[5, 1][..]));
}

#[test]
fn host_access_touches_only_the_field() {
    for layout in LAYOUTS {
        let mut p = program(layout);
        fill(&mut p);
        let before: Vec<Vec<f64>> = ["x", "s"].iter().map(|f| p.field(f).unwrap().to_vec().unwrap()).collect();
        let v = p.field_mut("v").unwrap();
        v.set(&[3, 1], -1.5).unwrap();
        assert_eq!(v.get::<f64>(&[3, 1]).unwrap(), -1.5, "{layout}");
        assert_eq!(v.get::<f64>(&[3, 0]).unwrap(), 32.0, "{layout}");
        let mut part = [0.0; 3];
        v.read(5, &mut part).unwrap();
        assert_eq!(part, [23.0, 32.0, -1.5], "{layout}: elements 5..8 are v[2][1], v[3][0], v[3][1]");
        v.write(4, &[7.0, 8.0]).unwrap();
        assert_eq!(v.get::<f64>(&[2, 1]).unwrap(), 8.0, "{layout}");
        v.fill(0.25f64).unwrap();
        assert_eq!(v.to_vec::<f64>().unwrap(), vec![0.25; 2 * N], "{layout}");
        let saved = v.snapshot().unwrap();
        v.zero();
        assert_eq!(v.to_f64_vec(), vec![0.0; 2 * N], "{layout}");
        v.restore(&saved).unwrap();
        assert_eq!(v.to_f64_vec(), vec![0.25; 2 * N], "{layout}");
        let after: Vec<Vec<f64>> = ["x", "s"].iter().map(|f| p.field(f).unwrap().to_vec().unwrap()).collect();
        assert_eq!(after, before, "{layout}: the fields sharing v's buffer kept their elements");
        // Through the Backend, as the Tape uses it.
        let x = p.field_index("x").unwrap();
        let snap = Backend::snapshot(&p, x).unwrap();
        Backend::fill(&mut p, x, 9.0).unwrap();
        Backend::restore(&mut p, x, &snap).unwrap();
        assert_eq!(p.field("x").unwrap().to_vec::<f64>().unwrap(), before[0], "{layout}");
        assert_eq!(p.field("v").unwrap().to_f64_vec(), vec![0.25; 2 * N], "{layout}");
    }
}

#[test]
fn gradients_on_every_layout_match_plain_fields_and_finite_differences() {
    let mut grads = Vec::new();
    for layout in LAYOUTS {
        let spec = Spec::new("k", &[("x", 0.5, 1.5), ("s", 0.5, 1.5)], &["v"]);
        let report = gradcheck(&program_source(layout), &spec).unwrap_or_else(|e| panic!("{layout}: {e}"));
        assert!(report.worst_error < 1e-6 && report.largest_gradient > 0.1, "{layout}: {report:?}");
        // The same gradient as plain fields, from the same inputs.
        let mut p = program(layout);
        fill(&mut p);
        p.launch("k", &[]).unwrap();
        let seed: Vec<f64> = (0..2 * N).map(|k| 0.5 + k as f64).collect();
        p.field_mut("v_grad").unwrap().copy_from(&seed).unwrap();
        p.launch("k_grad", &[]).unwrap();
        grads.push((layout, p.field("x_grad").unwrap().to_f64_vec(), p.field("s_grad").unwrap().to_f64_vec()));
    }
    for g in &grads[1..] {
        assert_eq!((&g.1, &g.2), (&grads[0].1, &grads[0].2), "{} against plain fields", g.0);
    }
}

#[test]
fn strided_fields_compile_to_ptx() {
    for layout in LAYOUTS {
        let options = CompileOptions { autodiff: true, ..Default::default() };
        let c = compile_ptx(&program_source(layout), layout, &options, "sm_90").unwrap_or_else(|e| panic!("{layout}: {e}"));
        let ptx = c.ptx.as_deref().unwrap();
        for kernel in ["k", "k_grad"] {
            for task in &c.kernels[kernel].tasks {
                assert!(ptx.contains(&format!(".entry {}(", task.name)), "{layout}: no .entry for {}", task.name);
            }
        }
        assert_eq!(c.buffers.len(), if layout.starts_with("together") { 2 } else { 6 }, "{layout}");
    }
}

#[test]
fn a_field_under_a_dynamic_node_without_a_parent_is_a_located_compile_error() {
    let src = "\"ds.dynamic\"() {sym_name = \"blocks\", shape = array<i64: 8>} : () -> ()\n".to_string()
        + &fields(&[("x", "f32", "8")]).replace("shape = array<i64: 8>, grad", "shape = array<i64: 8>, layout = @blocks, grad");
    let err = Program::with_options(&src, "sparse.mlir", &CompileOptions::default()).err().expect("not lowered");
    let Error::Compile(d) = &err else { panic!("{err}") };
    assert!(d[0].message.contains("a dynamic node needs a parent") && d[0].pos.as_ref().is_some_and(|p| p.line == 2), "{err}");
}
