//! The Tape across 1000 steps: the same simulation with state per time step
//! and with state overwritten every step, under store-all and binomial
//! checkpointing; the overwrite error; custom gradients and host seeding.

use crate::common::fields;
use ds_runtime::tape::checkpoint::{Binomial, Periodic, StoreAll, revolve_advances};
use ds_runtime::{Arg, BackwardOptions, CompileOptions, Program, Tape};

const N: usize = 8;
const STEPS: usize = 1000;

/// The physics of one particle step, reading %x %v %w, defining %nx %nv %f.
const PHYSICS: &str = r#"
    %k = arith.constant 2.0 : f64
    %c = arith.constant 0.5 : f64
    %dt = arith.constant 0.01 : f64
    %d = arith.constant 0.999 : f64
    %kx = arith.mulf %k, %x : f64
    %sx = math.sin %x : f64
    %csx = arith.mulf %c, %sx : f64
    %f = arith.subf %csx, %kx : f64
    %fw = arith.mulf %f, %w : f64
    %dv = arith.mulf %dt, %fw : f64
    %dvv = arith.mulf %d, %v : f64
    %nv = arith.addf %dvv, %dv : f64
    %dx = arith.mulf %dt, %nv : f64
    %nx = arith.addf %x, %dx : f64"#;

fn loop_kernel(name: &str, params: &str, body: &str) -> String {
    crate::common::loop_kernel(name, params, Some(N), body)
}

/// State indexed by time step: x[t, i], v[t, i].
fn per_step_source() -> String {
    let (shape, row) = (format!("{}, {N}", STEPS + 1), N.to_string());
    let mut s = fields(&[("x", "f64", &shape), ("v", "f64", &shape), ("w", "f64", &row), ("loss", "f64", "")]);
    s += &loop_kernel(
        "advance",
        "%t: index",
        &format!(
            r#"    %c1 = arith.constant 1 : index
    %tp = arith.subi %t, %c1 : index
    %x = "ds.load"(%tp, %i) {{field = @x}} : (index, index) -> f64
    %v = "ds.load"(%tp, %i) {{field = @v}} : (index, index) -> f64
    %w = "ds.load"(%i) {{field = @w}} : (index) -> f64{PHYSICS}
    "ds.store"(%nv, %t, %i) {{field = @v}} : (f64, index, index) -> ()"#
        ),
    );
    s += &loop_kernel(
        "drift",
        "%t: index",
        r#"    %c1 = arith.constant 1 : index
    %tp = arith.subi %t, %c1 : index
    %x = "ds.load"(%tp, %i) {field = @x} : (index, index) -> f64
    %v = "ds.load"(%t, %i) {field = @v} : (index, index) -> f64
    %dt = arith.constant 0.01 : f64
    %dx = arith.mulf %dt, %v : f64
    %nx = arith.addf %x, %dx : f64
    "ds.store"(%nx, %t, %i) {field = @x} : (f64, index, index) -> ()"#,
    );
    s += &loop_kernel(
        "compute_loss",
        "%t: index",
        r#"    %x = "ds.load"(%t, %i) {field = @x} : (index, index) -> f64
    %sq = arith.mulf %x, %x : f64
    "ds.atomic_add"(%sq) {field = @loss} : (f64) -> ()"#,
    );
    s
}

/// State overwritten every step: x[i], v[i] through x_new, v_new.
fn overwritten_source() -> String {
    let row = N.to_string();
    let f = |name| (name, "f64", row.as_str());
    let mut s = fields(&[f("x"), f("v"), f("x_new"), f("v_new"), f("w"), ("loss", "f64", "")]);
    s += &loop_kernel(
        "advance",
        "",
        &format!(
            r#"    %x = "ds.load"(%i) {{field = @x}} : (index) -> f64
    %v = "ds.load"(%i) {{field = @v}} : (index) -> f64
    %w = "ds.load"(%i) {{field = @w}} : (index) -> f64{PHYSICS}
    "ds.store"(%nv, %i) {{field = @v_new}} : (f64, index) -> ()
    "ds.store"(%nx, %i) {{field = @x_new}} : (f64, index) -> ()"#
        ),
    );
    s += &loop_kernel(
        "commit",
        "",
        r#"    %x = "ds.load"(%i) {field = @x_new} : (index) -> f64
    %v = "ds.load"(%i) {field = @v_new} : (index) -> f64
    "ds.store"(%x, %i) {field = @x} : (f64, index) -> ()
    "ds.store"(%v, %i) {field = @v} : (f64, index) -> ()"#,
    );
    s += &loop_kernel(
        "compute_loss",
        "",
        r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %sq = arith.mulf %x, %x : f64
    "ds.atomic_add"(%sq) {field = @loss} : (f64) -> ()"#,
    );
    s
}

fn program(src: &str) -> Program {
    Program::with_options(src, "tape.mlir", &CompileOptions { autodiff: true, ..Default::default() }).unwrap()
}

fn init(p: &mut Program, x0: &str) {
    let xs: Vec<f64> = (0..N).map(|i| 0.1 + 0.1 * i as f64).collect();
    let ws: Vec<f64> = (0..N).map(|i| 1.0 + 0.05 * i as f64).collect();
    let x = p.field_mut(x0).unwrap();
    for (i, v) in xs.iter().enumerate() {
        x.set_f64(i, *v);
    }
    p.field_mut("w").unwrap().copy_from(&ws).unwrap();
}

/// Runs the [t, i] version; returns (loss, dL/dw, dL/dx0).
fn per_step(w_shift: f64) -> (f64, Vec<f64>, Vec<f64>) {
    let mut p = program(&per_step_source());
    init(&mut p, "x");
    let w0: f64 = p.field("w").unwrap().get(&[0]).unwrap();
    p.field_mut("w").unwrap().set(&[0], w0 + w_shift).unwrap();
    let mut tape = Tape::new();
    for t in 1..=STEPS {
        tape.launch(&mut p, "advance", &[Arg::Index(t as i64)]).unwrap();
        tape.launch(&mut p, "drift", &[Arg::Index(t as i64)]).unwrap();
    }
    tape.launch(&mut p, "compute_loss", &[Arg::Index(STEPS as i64)]).unwrap();
    assert!(tape.overwrites(&p).is_empty(), "per-step state overwrites nothing");
    tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap();
    let loss = p.field("loss").unwrap().get(&[]).unwrap();
    let x0: Vec<f64> = p.field("x_grad").unwrap().to_f64_vec()[..N].to_vec();
    (loss, p.field("w_grad").unwrap().to_vec().unwrap(), x0)
}

fn record_overwritten(p: &mut Program, tape: &mut Tape) {
    init(p, "x");
    for t in 0..STEPS {
        if t > 0 {
            tape.step();
        }
        tape.launch(p, "advance", &[]).unwrap();
        tape.launch(p, "commit", &[]).unwrap();
    }
    tape.launch(p, "compute_loss", &[]).unwrap();
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-10 * x.abs().max(1.0))
}

#[test]
fn checkpointed_gradients_match_per_step_state() {
    let (loss, dw, dx0) = per_step(0.0);
    assert!(dw.iter().all(|g| g.abs() > 1e-6), "{dw:?}");
    let policies: [&dyn ds_runtime::tape::checkpoint::Policy; 3] = [&StoreAll, &Binomial { snapshots: 10 }, &Periodic { period: 32 }];
    for policy in policies {
        let mut p = program(&overwritten_source());
        let mut tape = Tape::with_checkpointing();
        record_overwritten(&mut p, &mut tape);
        assert!((p.field("loss").unwrap().get::<f64>(&[]).unwrap() - loss).abs() < 1e-12);
        let plan = tape.backward_with(&mut p, "loss", policy).unwrap().expect("a checkpointed run");
        let w: Vec<f64> = p.field("w_grad").unwrap().to_vec().unwrap();
        let x: Vec<f64> = p.field("x_grad").unwrap().to_vec().unwrap();
        assert!(close(&w, &dw), "{}: dL/dw {w:?} vs {dw:?}", plan.policy);
        assert!(close(&x, &dx0), "{}: dL/dx0 {x:?} vs {dx0:?}", plan.policy);
        assert_eq!(plan.steps, STEPS);
        if plan.policy.starts_with("binomial") {
            assert_eq!(plan.snapshots, 10);
            assert_eq!(plan.advances, revolve_advances(STEPS, 10), "{plan}");
        }
        if plan.policy == "store-all" {
            assert_eq!(plan.advances, STEPS - 1);
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (_, dw, _) = per_step(0.0);
    let h = 1e-5;
    let numeric = (per_step(h).0 - per_step(-h).0) / (2.0 * h);
    assert!((dw[0] - numeric).abs() <= 1e-6 * numeric.abs(), "{} vs {numeric}", dw[0]);
}

#[test]
fn overwrite_without_checkpointing_is_an_error() {
    let mut p = program(&overwritten_source());
    let mut tape = Tape::new();
    record_overwritten(&mut p, &mut tape);
    let err = tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap_err().to_string();
    assert!(err.contains("launch 1 (commit[])") && err.contains("@x") && err.contains("launch 0 (advance[])"), "{err}");
}

#[test]
fn memory_budget_picks_the_schedule() {
    let mut p = program(&overwritten_source());
    let mut tape = Tape::with_checkpointing();
    record_overwritten(&mut p, &mut tape);
    let state = 4 * N * 8; // x, v, x_new, v_new (loss and w too: written/seeded fields only)
    let small = tape.policy_for_budget(&p, 12 * state).unwrap();
    assert!(small.name().starts_with("binomial"), "{}", small.name());
    let large = tape.policy_for_budget(&p, usize::MAX / 2).unwrap();
    assert_eq!(large.name(), "store-all");
    let options = BackwardOptions { memory_budget: Some(12 * state), ..Default::default() };
    let plan = tape.backward(&mut p, "loss", &options).unwrap().expect("checkpointed");
    assert!(plan.predicted_peak_bytes <= 12 * state, "{plan}");
    let (_, dw, _) = per_step(0.0);
    assert!(close(&p.field("w_grad").unwrap().to_vec::<f64>().unwrap(), &dw));
}

#[test]
fn custom_gradients_host_seeds_and_dot_export() {
    let mut p = program(&per_step_source());
    init(&mut p, "x");
    let mut tape = Tape::new();
    tape.launch(&mut p, "advance", &[Arg::Index(1)]).unwrap();
    // drift's gradient replaced: dL/dv[1] += 2 dL/dx[1] (a deliberately different rule).
    tape.launch_with_grad(&mut p, "drift", &[Arg::Index(1)], |p| {
        for i in 0..N {
            let g: f64 = p.field("x_grad")?.get(&[1, i])?;
            let v: f64 = p.field("v_grad")?.get(&[1, i])?;
            p.field_mut("v_grad")?.set(&[1, i], v + 2.0 * g)?;
        }
        Ok(())
    })
    .unwrap();
    tape.backward_from(&mut p, &BackwardOptions::default(), |p| p.field_mut("x_grad")?.set(&[1, 0], 1.0f64)).unwrap();
    // The generated rule would give dL/dx[0] = 1 + 0.01 dv[1]/dx[0]; the custom one
    // sends 2 to dL/dv[1] only, so dL/dx[0] = 2 dv[1]/dx[0] = 2 dt w0 (0.5 cos x0 - 2).
    let dv: f64 = p.field("v_grad").unwrap().get(&[1, 0]).unwrap();
    assert_eq!(dv, 0.0, "advance_grad consumed and cleared dL/dv[1]");
    let dx0: f64 = p.field("x_grad").unwrap().get(&[0, 0]).unwrap();
    let want = 2.0 * 0.01 * 1.0 * (0.5 * 0.1f64.cos() - 2.0);
    assert!((dx0 - want).abs() < 1e-12, "{dx0} vs {want}");
    let dot = tape.to_dot(&p);
    assert!(dot.contains("advance") && dot.contains("drift") && dot.contains("\"v\""), "{dot}");
}
