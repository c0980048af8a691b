//! Regression tests of the hardening work: input that once crashed, hung or
//! gave silently wrong results now gives a typed error (or the right result).

use crate::common::{fields, loop_kernel};
use ds_runtime::compile::{self, Target};
use ds_runtime::gradcheck::{Spec, check_gradient, gradcheck};
use ds_runtime::{Arg, BackwardOptions, CompileOptions, Error, Program, Tape};

fn autodiff() -> CompileOptions {
    CompileOptions { autodiff: true, ..Default::default() }
}

/// A module with layout nodes that cannot be lowered yet (it once reached the
/// JIT and segfaulted): a located error naming the op.
#[test]
fn layout_nodes_left_after_lowering_are_located_errors() {
    let src = include_str!("../../test/lit/ds/roundtrip.mlir");
    let err = Program::with_options(src, "roundtrip.mlir", &CompileOptions::default()).err().expect("dynamic nodes do not lower");
    let Error::Compile(diagnostics) = &err else { panic!("{err}") };
    let pointer = diagnostics.iter().find(|d| d.message.contains("ds.dynamic is left after convert-ds-to-scf")).expect("{err}");
    let line = src.lines().position(|l| l.starts_with(r#""ds.dynamic""#)).unwrap() as u32 + 1;
    assert_eq!(pointer.pos.as_ref().map(|p| (p.file.as_str(), p.line)), Some(("roundtrip.mlir", line)), "{err}");
}

/// A field placed under a dense node lowers (the node is erased) and runs.
#[test]
fn dense_layout_nodes_lower_and_run() {
    let src = r#""ds.dense"() {sym_name = "grid", shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>, layout = @grid} : () -> ()
"#
    .to_string()
        + &loop_kernel("fill", "", Some(8), "    %one = arith.constant 1.0 : f32\n    \"ds.store\"(%one, %i) {field = @x} : (f32, index) -> ()");
    let mut p = Program::new(&src).unwrap();
    p.launch("fill", &[]).unwrap();
    assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), vec![1.0; 8]);
}

#[test]
fn gpu_targets_are_checked_before_mlir_sees_them() {
    let src = fields(&[("x", "f32", "8")]);
    for chip in ["", "sm_", "90", "sm_90} ,canonicalize{", "sm_x9"] {
        let target = Target::Cuda { chip: chip.into(), libdevice: None };
        let err = compile::compile(&src, "x.mlir", &CompileOptions::default(), &target).err().expect("a bad chip");
        assert!(matches!(&err, Error::InvalidTarget(m) if m.contains("compute capability")), "{chip:?}: {err}");
    }
    let target = Target::Cuda { chip: "sm_90".into(), libdevice: Some("/no/such/libdevice.bc".into()) };
    let err = compile::compile(&src, "x.mlir", &CompileOptions::default(), &target).err().expect("a missing libdevice");
    assert!(matches!(&err, Error::InvalidTarget(m) if m.contains("no such file")), "{err}");
    // The named pipeline checks its options too (ds-opt --ds-to-nvvm=chip=).
    let err = ds_lowering::pipeline::parse("ds-to-nvvm{chip=}").err().expect("an empty chip");
    assert!(err.contains("ds-to-nvvm: option chip") && err.contains("compute capability"), "{err}");
    assert!(ds_lowering::pipeline::parse("ds-to-nvvm{chip=sm_90a}").is_ok());
}

#[test]
fn autodiff_stack_capacity_is_bounded() {
    let src = fields(&[("x", "f32", "8")]);
    let options = CompileOptions { autodiff_options: vec![("stack-capacity".into(), "100000000".into())], ..autodiff() };
    let err = Program::with_options(&src, "x.mlir", &options).err().expect("a stack too large for a thread");
    assert!(err.to_string().contains("stack-capacity must be between 1 and 32768"), "{err}");
}

#[test]
fn a_range_longer_than_i64_max_is_an_error_not_a_silent_skip() {
    let src = fields(&[("x", "f32", "8")])
        + r#"func.func @k(%lo: index, %hi: index) attributes {ds.kernel} {
  "ds.parallel_for"(%lo, %hi) ({
  ^bb0(%i: index):
    gpu.yield
  }) : (index, index) -> ()
  return
}
"#;
    let mut p = Program::new(&src).unwrap();
    let err = p.launch("k", &[Arg::Index(-1), Arg::Index(i64::MAX)]).unwrap_err();
    assert!(matches!(&err, Error::RangeTooLarge { kernel, lo: -1, hi: i64::MAX } if kernel == "k"), "{err}");
    p.launch("k", &[Arg::Index(5), Arg::Index(-5)]).unwrap();
}

/// y = x^2 elementwise over 8 f64, and L = sum y.
fn square() -> String {
    fields(&[("x", "f64", "8"), ("y", "f64", "8"), ("loss", "f64", "")])
        + &loop_kernel(
            "square",
            "",
            Some(8),
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %y = arith.mulf %x, %x : f64
    "ds.store"(%y, %i) {field = @y} : (f64, index) -> ()
    "ds.atomic_add"(%y) {field = @loss} : (f64) -> ()"#,
        )
}

#[test]
fn a_tape_refuses_another_program() {
    let (mut p, mut q) = (Program::with_options(&square(), "a", &autodiff()).unwrap(), Program::with_options(&square(), "a", &autodiff()).unwrap());
    let mut tape = Tape::new();
    tape.launch(&mut p, "square", &[]).unwrap();
    let err = tape.launch(&mut q, "square", &[]).unwrap_err();
    assert!(matches!(err, Error::ForeignTape { launches: 1 }), "{err}");
    let err = tape.backward(&mut q, "loss", &BackwardOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ForeignTape { launches: 1 }), "{err}");
    tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap();
}

#[test]
fn compiled_modules_are_freed_with_their_last_program() {
    let src = square() + "// a module of this test alone\n";
    let p = Program::with_options(&src, "evict.mlir", &autodiff()).unwrap();
    assert!(compile::is_cached(&src, "evict.mlir", &autodiff(), &Target::Cpu));
    let q = Program::with_options(&src, "evict.mlir", &autodiff()).unwrap();
    drop(p);
    assert!(compile::is_cached(&src, "evict.mlir", &autodiff(), &Target::Cpu), "q still uses it");
    drop(q);
    assert!(!compile::is_cached(&src, "evict.mlir", &autodiff(), &Target::Cpu));
}

#[test]
fn gradcheck_reports_a_nan_as_the_worst_error() {
    let src = fields(&[("x", "f64", "8"), ("y", "f64", "8")])
        + &loop_kernel(
            "root",
            "",
            Some(8),
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %y = math.sqrt %x : f64
    "ds.store"(%y, %i) {field = @y} : (f64, index) -> ()"#,
        );
    // Some inputs are negative: their square roots (and gradients) are NaN.
    let r = gradcheck(&src, &Spec::new("root", &[("x", -1.0, 1.0)], &["y"])).unwrap();
    assert!(r.worst_error.is_nan(), "{r:?}");
}

/// A custom gradient recorded on a Tape is checked against finite
/// differences like a generated one, and a wrong one is caught.
#[test]
fn custom_gradients_can_be_gradchecked() {
    let mut p = Program::with_options(&square(), "square.mlir", &autodiff()).unwrap();
    let xs: Vec<f64> = (0..8).map(|i| 0.25 * i as f64 - 1.0).collect();
    p.field_mut("x").unwrap().copy_from(&xs).unwrap();
    let loss = |p: &mut Program| -> Result<f64, Error> {
        p.field_mut("loss")?.zero();
        p.launch("square", &[])?;
        p.field("loss")?.get(&[])
    };
    for (scale, ok) in [(2.0, true), (4.0, false)] {
        p.field_mut("loss").unwrap().zero();
        let mut tape = Tape::new();
        // dL/dx = scale * x: 2x is right, 4x is a wrong custom gradient.
        tape.launch_with_grad(&mut p, "square", &[], move |p: &mut Program| {
            let x: Vec<f64> = p.field("x")?.to_vec()?;
            p.field_mut("x_grad")?.copy_from(&x.iter().map(|x| scale * x).collect::<Vec<_>>())
        })
        .unwrap();
        tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap();
        let analytic = vec![p.field("x_grad").unwrap().to_vec::<f64>().unwrap()];
        let r = check_gradient(&mut p, &["x"], &analytic, 1e-4, loss).unwrap();
        assert_eq!(r.worst_error < 1e-8, ok, "scale {scale}: {r:?}");
        assert_eq!(p.field("x").unwrap().to_vec::<f64>().unwrap(), xs, "inputs keep their values");
    }
}

/// A launch over `[0, i64::MAX)` whose first iterations fail a bounds check
/// stops soon after (no new call starts), instead of running 2^63 iterations.
#[test]
fn a_failing_huge_launch_stops_early() {
    let src = fields(&[("x", "f32", "8")])
        + &loop_kernel("fill", "%n: index", None, "    %one = arith.constant 1.0 : f32\n    \"ds.store\"(%one, %i) {field = @x} : (f32, index) -> ()");
    let mut p = Program::new(&src).unwrap();
    let err = p.launch("fill", &[Arg::Index(i64::MAX)]).unwrap_err();
    assert!(matches!(&err, Error::OutOfBounds { field, extent: 8, .. } if field == "x"), "{err}");
    assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), vec![1.0; 8], "the indices in bounds were written");
}
