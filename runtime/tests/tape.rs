//! The Tape across 1000 steps: the same simulation with state per time step
//! and with state overwritten every step, under store-all, periodic and
//! binomial checkpointing; schedules checked step by step and against
//! Revolve's optimum; the overwrite error; no-grad kernels, custom gradients
//! and host seeding.

use crate::common::{fields, loop_kernel};
use ds_runtime::tape::checkpoint::{Action, Binomial, Periodic, Policy, Schedule, StoreAll, revolve_advances};
use ds_runtime::compile::KernelInfo;
use ds_runtime::{Arg, Backend, BackwardOptions, BufferInfo, CompileOptions, Element, Error, Field, FieldInfo, Program, Snapshot, Tape, memory};
use std::collections::HashMap;

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

/// State indexed by time step: x[t, i], v[t, i].
fn per_step_source() -> String {
    let (shape, row) = (format!("{}, {N}", STEPS + 1), N.to_string());
    let mut s = fields(&[("x", "f64", &shape), ("v", "f64", &shape), ("w", "f64", &row), ("loss", "f64", "")]);
    s += &loop_kernel(
        "advance",
        "%t: index",
        Some(N),
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
        Some(N),
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
        Some(N),
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
        Some(N),
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
        Some(N),
        r#"    %x = "ds.load"(%i) {field = @x_new} : (index) -> f64
    %v = "ds.load"(%i) {field = @v_new} : (index) -> f64
    "ds.store"(%x, %i) {field = @x} : (f64, index) -> ()
    "ds.store"(%v, %i) {field = @v} : (f64, index) -> ()"#,
    );
    s += &loop_kernel(
        "compute_loss",
        "",
        Some(N),
        r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %sq = arith.mulf %x, %x : f64
    "ds.atomic_add"(%sq) {field = @loss} : (f64) -> ()"#,
    );
    s
}

fn program(src: &str) -> Program {
    Program::with_options(src, "tape.mlir", &CompileOptions { autodiff: true, ..Default::default() }).unwrap()
}

/// x0 (the first N elements of `x0`) and w.
fn init(p: &mut impl Backend, x0: &str) {
    let xs: Vec<f64> = (0..N).map(|i| 0.1 + 0.1 * i as f64).collect();
    let ws: Vec<f64> = (0..N).map(|i| 1.0 + 0.05 * i as f64).collect();
    let x = p.field_index(x0).unwrap();
    p.write(x, 0, &xs).unwrap();
    let w = p.field_index("w").unwrap();
    p.write(w, 0, &ws).unwrap();
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
    assert!(tape.overwrites().is_empty(), "per-step state overwrites nothing");
    tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap();
    let loss = p.field("loss").unwrap().get(&[]).unwrap();
    let x0: Vec<f64> = p.field("x_grad").unwrap().to_f64_vec()[..N].to_vec();
    (loss, p.field("w_grad").unwrap().to_vec().unwrap(), x0)
}

fn record_overwritten<D: Backend>(p: &mut D, tape: &mut Tape<D>) {
    init(p, "x");
    for t in 0..STEPS {
        if t > 0 {
            tape.end_step();
        }
        tape.launch(p, "advance", &[]).unwrap();
        tape.launch(p, "commit", &[]).unwrap();
    }
    tape.launch(p, "compute_loss", &[]).unwrap();
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-10 * x.abs().max(1.0))
}

/// A program that counts the launches of each kernel: what backward really
/// re-runs, seen from outside the Tape.
struct Counting {
    p: Program,
    launches: HashMap<String, usize>,
}

impl Backend for Counting {
    type Snapshot = Snapshot;
    fn id(&self) -> u64 {
        self.p.id()
    }
    fn ir(&self) -> &str {
        self.p.ir()
    }
    fn next_random_stream(&mut self) -> i64 {
        self.p.next_random_stream()
    }
    fn seed_random(&mut self, seed: u64) {
        self.p.seed_random(seed);
    }
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error> {
        self.p.kernel_info(name)
    }
    fn field_infos(&self) -> &[FieldInfo] {
        self.p.field_infos()
    }
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        *self.launches.entry(kernel.to_string()).or_default() += 1;
        self.p.launch(kernel, args)
    }
    fn snapshot(&self, field: usize) -> Result<Snapshot, Error> {
        self.p.snapshot(field)
    }
    fn restore(&mut self, field: usize, saved: &Snapshot) -> Result<(), Error> {
        self.p.restore(field, saved)
    }
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.p.snapshot_bytes(field)
    }
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error> {
        self.p.fill(field, value)
    }
    fn zero(&mut self, field: usize) -> Result<(), Error> {
        Backend::zero(&mut self.p, field)
    }
    fn read<T: Element>(&self, field: usize, start: usize, out: &mut [T]) -> Result<(), Error> {
        self.p.read(field, start, out)
    }
    fn write<T: Element>(&mut self, field: usize, start: usize, values: &[T]) -> Result<(), Error> {
        self.p.write(field, start, values)
    }
    fn sparse_field(&self, field: usize) -> Result<&Field, Error> {
        self.p.sparse_field(field)
    }
    fn sparse_field_mut(&mut self, field: usize) -> Result<&mut Field, Error> {
        self.p.sparse_field_mut(field)
    }
    fn buffer_infos(&self) -> &[BufferInfo] {
        Backend::buffer_infos(&self.p)
    }
}

/// Set in the child process [`alone`] starts.
const ALONE: &str = "DS_TEST_ALONE";

/// Whether the test `name` runs alone in this process. If not, runs it again
/// in a child process of this test binary (`--exact`, one thread), where
/// the process-wide counters of `ds_runtime::memory` see its allocations
/// only, and asserts that it passed there.
fn alone(name: &str) -> bool {
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .output()
        .expect("the test binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{name}, run alone:\n{text}");
    false
}

/// What a checkpointed backward over the steps of `overwritten_source` must
/// do under `policy`, worked out by hand rather than from the schedules:
/// (steps advanced, snapshot slots held at once with the initial state's,
/// scratch copies).
fn expected(policy: &str, best: &[Vec<usize>]) -> (usize, usize, usize) {
    match policy {
        // One sweep saving the start of every step but the first (slot 0
        // holds it); every step is reversed from its own slot.
        "store-all" => (STEPS - 1, STEPS, 0),
        // The fewest advances 10 slots allow (9 beside the held one), by brute
        // force; some step is reversed from an advanced state, held in no
        // slot, so its start is copied once more.
        "binomial(10)" => (best[9][STEPS], 10, 1),
        // A sweep to the start of the last segment saving each segment's
        // start, then each segment advanced through again saving its steps:
        // 32 segment slots and 31 inside a segment.
        "periodic(32)" => {
            let segments = STEPS.div_ceil(32);
            ((segments - 1) * 32 + (STEPS - segments), segments + 31, 0)
        }
        _ => unreachable!("{policy}"),
    }
}

#[test]
fn checkpointed_gradients_match_per_step_state() {
    // Measures memory with the process-wide counters: alone in a child process.
    if !alone("tape::checkpointed_gradients_match_per_step_state") {
        return;
    }
    let (loss, dw, dx0) = per_step(0.0);
    assert!(dw.iter().all(|g| g.abs() > 1e-6), "{dw:?}");
    let best = optimal_advances(STEPS, 9);
    assert_eq!(best[9][STEPS], 4 * STEPS - 364, "r n - C(14, 11) with r = 4 (see schedules_reverse_every_step...)");
    // One saved state: x, v, x_new, v_new of N f64 and the 0-D loss, each
    // allocation at least 64 bytes.
    let state = 4 * (N * 8).max(64) + 64;
    let policies: [&dyn Policy; 3] = [&StoreAll, &Binomial { snapshots: 10 }, &Periodic { period: 32 }];
    for policy in policies {
        let name = policy.name();
        let mut p = Counting { p: program(&overwritten_source()), launches: HashMap::new() };
        let mut tape = Tape::new();
        let fields = memory::current_bytes();
        record_overwritten(&mut p, &mut tape);
        let initial = memory::current_bytes() - fields;
        assert_eq!(initial, state, "{name}: recording keeps one copy of the initial state");
        assert!((p.p.field("loss").unwrap().get::<f64>(&[]).unwrap() - loss).abs() < 1e-12);
        let predicted = tape.plan(policy);
        p.launches.clear();
        memory::reset_peak();
        let before = memory::current_bytes();
        let plan = tape.backward_with(&mut p, "loss", policy).unwrap().expect("a checkpointed run");
        let peak = memory::peak_bytes() - before + initial;
        assert_eq!(memory::current_bytes(), before, "{name}: backward frees every snapshot but the initial state");
        // The gradients.
        let w: Vec<f64> = p.p.field("w_grad").unwrap().to_vec().unwrap();
        let x: Vec<f64> = p.p.field("x_grad").unwrap().to_vec().unwrap();
        assert!(close(&w, &dw), "{name}: dL/dw {w:?} vs {dw:?}");
        assert!(close(&x, &dx0), "{name}: dL/dx0 {x:?} vs {dx0:?}");
        // The launches backward ran, counted here. A step is advance then
        // commit (the last also compute_loss); advancing a step runs both;
        // reversing it runs before each launch's gradient the launches
        // before it, from the step's start (none reads what it writes, so
        // none runs again before its own gradient): advance before commit's
        // (and advance, commit and advance again in the last step). Every
        // gradient runs once.
        let (advances, slots, scratch) = expected(&name, &best);
        let ran = |k: &str| p.launches.get(k).copied().unwrap_or(0);
        let counted = [
            ("advance", ran("advance")),
            ("commit", ran("commit")),
            ("compute_loss", ran("compute_loss")),
            ("advance_grad", ran("advance_grad")),
            ("commit_grad", ran("commit_grad")),
            ("compute_loss_grad", ran("compute_loss_grad")),
        ];
        let want = [
            ("advance", advances + STEPS + 1),
            ("commit", advances + 1),
            ("compute_loss", 0),
            ("advance_grad", STEPS),
            ("commit_grad", STEPS),
            ("compute_loss_grad", 1),
        ];
        assert_eq!(counted, want, "{name}: launches in backward");
        assert_eq!(p.launches.values().sum::<usize>(), want.iter().map(|(_, n)| n).sum::<usize>(), "{name}: other launches");
        // The memory it held, measured: the slots and the scratch copy.
        assert_eq!(peak, (slots + scratch) * state, "{name}: peak snapshot bytes");
        // What the Tape reports is what was measured.
        assert_eq!(plan, predicted, "what backward re-ran is what the plan said");
        assert_eq!(plan.steps, STEPS);
        assert_eq!(plan.launches_recomputed, counted[..3].iter().map(|(_, n)| n).sum::<usize>(), "{plan}");
        assert_eq!((plan.advances, plan.snapshots, plan.scratch), (advances, slots, scratch), "{plan}");
        assert_eq!((plan.snapshot_bytes, plan.predicted_peak_bytes), (state, peak), "{plan}");
    }
}

/// Runs a schedule on step numbers instead of states: every advance and
/// reversal must start from the right step, and every step must be reversed
/// once, last first.
fn check_schedule(schedule: &Schedule, steps: usize) {
    let mut slots = std::collections::HashMap::from([(0, 0)]);
    let (mut at, mut next) = (None, steps);
    for a in &schedule.actions {
        match *a {
            Action::Restore(s) => at = Some(*slots.get(&s).unwrap_or_else(|| panic!("slot {s} empty: {a:?}"))),
            Action::Save(s) => {
                slots.insert(s, at.expect("save of a known state"));
            }
            Action::Advance(k) => {
                assert_eq!(at, Some(k), "advance {k} from step {at:?}");
                at = Some(k + 1);
            }
            Action::Reverse(k) => {
                assert_eq!((at, k + 1), (Some(k), next), "reverse {k} from step {at:?}");
                (at, next) = (None, k);
            }
        }
    }
    assert_eq!(next, 0, "every step reversed");
}

/// The fewest advances reversing n steps with c free slots beside the held
/// one, by brute force over the first split: `best[c][n]` for every n up to
/// `steps` and c up to `free`.
fn optimal_advances(steps: usize, free: usize) -> Vec<Vec<usize>> {
    let mut best = vec![vec![0; steps + 1]; free + 1];
    for c in 0..=free {
        for n in 2..=steps {
            best[c][n] = match c {
                0 => n * (n - 1) / 2,
                _ => (1..n).map(|m| m + best[c - 1][n - m] + best[c][m]).min().unwrap(),
            };
        }
    }
    best
}

#[test]
fn schedules_reverse_every_step_and_binomial_is_optimal() {
    let best = optimal_advances(60, 5);
    let optimum = |n: usize, s: usize| best[s - 1][n];
    for n in 0..=60 {
        check_schedule(&StoreAll.schedule(n), n);
        for period in [1, 4, 7] {
            check_schedule(&Periodic { period }.schedule(n), n);
        }
        for s in 1..=6 {
            let schedule = Binomial { snapshots: s }.schedule(n);
            check_schedule(&schedule, n);
            assert!(schedule.peak_slots() <= s.max(1), "n={n} s={s}");
            assert_eq!(schedule.advances(), optimum(n, s), "n={n} s={s}");
            assert_eq!(revolve_advances(n, s), optimum(n, s), "n={n} s={s}");
        }
    }
    let schedule = Binomial { snapshots: 10 }.schedule(STEPS);
    check_schedule(&schedule, STEPS);
    assert_eq!(schedule.advances(), revolve_advances(STEPS, 10));
    // r = 4 repetitions: C(13, 10) = 286 < 1000 <= C(14, 10) = 1001; r n - C(14, 11).
    assert_eq!(revolve_advances(STEPS, 10), 4 * 1000 - 364);
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
    let err = tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap_err();
    let Error::Overwrite { reader, writer, field } = &err else { panic!("{err}") };
    assert_eq!((reader.as_str(), writer.as_str(), field.as_str()), ("launch 0 (advance[])", "launch 1 (commit[])", "x"));
    // Without kept state, checkpointing is impossible, and says so.
    let mut tape = Tape::without_state();
    record_overwritten(&mut p, &mut tape);
    let err = tape.backward(&mut p, "loss", &BackwardOptions { memory_budget: Some(1 << 30), ..Default::default() }).unwrap_err();
    assert!(matches!(&err, Error::StateNotKept { field } if field == "x"), "{err}");
}

#[test]
fn memory_budget_picks_the_schedule() {
    let mut p = program(&overwritten_source());
    let mut tape = Tape::new();
    record_overwritten(&mut p, &mut tape);
    // x, v, x_new, v_new and loss (allocations are at least 64 bytes).
    let state = 4 * N * 8 + 64;
    assert_eq!(tape.plan(&StoreAll).snapshot_bytes, state);
    let small = tape.policy_for_budget(12 * state).unwrap();
    // 11 slots and the scratch copy of a step's start would need 12.
    assert_eq!(small.name(), "binomial(11)");
    assert_eq!(tape.policy_for_budget(STEPS * state).unwrap().name(), "store-all");
    let err = tape.policy_for_budget(state).err().expect("one state leaves no room for a scratch copy");
    let Error::Budget { budget, smallest } = &err else { panic!("{err}") };
    assert!(*budget == state && smallest.starts_with("binomial(1)"), "{err}");
    let options = BackwardOptions { memory_budget: Some(12 * state), ..Default::default() };
    let plan = tape.backward(&mut p, "loss", &options).unwrap().expect("checkpointed");
    assert!(plan.predicted_peak_bytes <= 12 * state, "{plan}");
    let (_, dw, _) = per_step(0.0);
    assert!(close(&p.field("w_grad").unwrap().to_vec::<f64>().unwrap(), &dw));
}

/// Reverses every step last first, restoring nothing (right only for
/// steps that overwrite nothing their gradients read).
struct ReverseOnly;

impl Policy for ReverseOnly {
    fn name(&self) -> String {
        "reverse-only".into()
    }
    fn schedule(&self, steps: usize) -> Schedule {
        Schedule { actions: (0..steps).rev().map(Action::Reverse).collect() }
    }
}

/// A tape without state prices store-all as one with state does (its
/// state bytes, its slots): what keeping the state would have cost. A
/// schedule that restores nothing (each launch its own step, no marks)
/// holds slot 0, the initial state, on the tape that kept it, and no slot
/// on the one that did not.
#[test]
fn a_tape_without_state_prices_what_it_did_not_keep() {
    let mut p = program(&overwritten_source());
    let (mut kept, mut not_kept) = (Tape::new(), Tape::without_state());
    record_overwritten(&mut p, &mut kept);
    record_overwritten(&mut p, &mut not_kept);
    let state = 4 * N * 8 + 64;
    let plan = not_kept.plan(&StoreAll);
    assert_eq!(plan, kept.plan(&StoreAll));
    assert!(plan.snapshots > 1, "{plan}");
    assert_eq!((plan.snapshot_bytes, plan.predicted_peak_bytes), (state, (plan.snapshots + plan.scratch) * state), "{plan}");
    let (mut kept, mut not_kept) = (Tape::new(), Tape::without_state());
    for tape in [&mut kept, &mut not_kept] {
        for _ in 0..STEPS {
            tape.launch(&mut p, "advance", &[]).unwrap();
            tape.launch(&mut p, "commit", &[]).unwrap();
        }
    }
    let (held, none) = (kept.plan(&ReverseOnly), not_kept.plan(&ReverseOnly));
    assert_eq!((held.snapshots, held.scratch, held.predicted_peak_bytes), (1, 0, held.snapshot_bytes), "{held}");
    assert!(held.snapshot_bytes > 0, "{held}");
    assert_eq!((none.snapshots, none.snapshot_bytes, none.predicted_peak_bytes), (0, held.snapshot_bytes, 0), "{none}");
}

/// observe (no_grad) reads a, reset (no_grad) overwrites a, square reads a.
fn no_grad_source() -> String {
    let mut s = fields(&[("a", "f64", &N.to_string()), ("obs", "f64", &N.to_string()), ("loss", "f64", "")]);
    let no_grad = |k: String| k.replace("attributes {ds.kernel}", "attributes {ds.kernel, ds.no_grad}");
    s += &no_grad(loop_kernel(
        "observe",
        "",
        Some(N),
        r#"    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    "ds.store"(%a, %i) {field = @obs} : (f64, index) -> ()"#,
    ));
    s += &no_grad(loop_kernel(
        "reset",
        "",
        Some(N),
        r#"    %two = arith.constant 2.0 : f64
    "ds.store"(%two, %i) {field = @a} : (f64, index) -> ()"#,
    ));
    s += &loop_kernel(
        "square",
        "",
        Some(N),
        r#"    %a = "ds.load"(%i) {field = @a} : (index) -> f64
    %sq = arith.mulf %a, %a : f64
    "ds.atomic_add"(%sq) {field = @loss} : (f64) -> ()"#,
    );
    s
}

#[test]
fn no_grad_kernels_have_no_gradient_and_no_old_values_to_keep() {
    let mut p = program(&no_grad_source());
    assert!(p.kernel("observe_grad").is_err() && p.kernel("square_grad").is_ok());
    let mut tape = Tape::new();
    for k in ["observe", "reset", "square"] {
        tape.launch(&mut p, k, &[]).unwrap();
    }
    assert!(tape.overwrites().is_empty(), "observe has no gradient: reset may overwrite what it read");
    tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap();
    assert_eq!(p.field("a_grad").unwrap().to_vec::<f64>().unwrap(), vec![4.0; N]);
    // square's gradient needs the a it read: overwriting it is an error.
    let mut tape = Tape::new();
    for k in ["square", "reset"] {
        tape.launch(&mut p, k, &[]).unwrap();
    }
    let err = tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap_err();
    let Error::Overwrite { reader, writer, field } = &err else { panic!("{err}") };
    assert_eq!((reader.as_str(), writer.as_str(), field.as_str()), ("launch 0 (square[])", "launch 1 (reset[])", "a"));
}

#[test]
fn backward_without_gradients_is_an_error() {
    let mut p = Program::new(&overwritten_source()).unwrap();
    let mut tape = Tape::new();
    tape.launch(&mut p, "compute_loss", &[]).unwrap();
    let err = tape.backward(&mut p, "loss", &BackwardOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NothingToDifferentiate { launches: 1 }), "{err}");
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
    let dot = tape.to_dot();
    assert!(dot.contains("advance") && dot.contains("drift") && dot.contains("\"v\""), "{dot}");
}

/// A launch whose gradient recomputes from its own writes (a serial chain
/// `c[k + 1, i] = sin(c[k, i]) + x0[i]`), checkpointed because the next
/// launch overwrites `x0`, which the chain read: backward runs the chain
/// again before its gradient (its inputs alone are not enough, as they are
/// for every other launch) and the gradient of the initial x0 matches
/// central differences of the whole forward.
#[test]
fn a_launch_reading_its_own_writes_runs_again_before_its_gradient() {
    const CHAIN_STEPS: usize = 3;
    let src = fields(&[("x0", "f64", &N.to_string()), ("c", "f64", &format!("5, {N}")), ("loss", "f64", "")])
        + &loop_kernel(
            "chain",
            "",
            Some(N),
            r#"    %x = "ds.load"(%i) {field = @x0} : (index) -> f64
    "ds.store"(%x, %c0, %i) {field = @c} : (f64, index, index) -> ()
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.for %k = %c0 to %c4 step %c1 {
      %prev = "ds.load"(%k, %i) {field = @c} : (index, index) -> f64
      %s = math.sin %prev : f64
      %next = arith.addf %s, %x : f64
      %k1 = arith.addi %k, %c1 : index
      "ds.store"(%next, %k1, %i) {field = @c} : (f64, index, index) -> ()
    }"#,
        )
        + &loop_kernel(
            "restart",
            "",
            Some(N),
            r#"    %c4 = arith.constant 4 : index
    %last = "ds.load"(%c4, %i) {field = @c} : (index, index) -> f64
    %half = arith.constant 0.5 : f64
    %x = arith.mulf %last, %half : f64
    "ds.store"(%x, %i) {field = @x0} : (f64, index) -> ()"#,
        )
        + &loop_kernel(
            "compute_loss",
            "",
            Some(N),
            r#"    %x = "ds.load"(%i) {field = @x0} : (index) -> f64
    %sq = arith.mulf %x, %x : f64
    "ds.atomic_add"(%sq) {field = @loss} : (f64) -> ()"#,
        );
    let starts: Vec<f64> = (0..N).map(|i| 0.2 + 0.1 * i as f64).collect();
    let run = |x0: &[f64], tape: Option<&mut Tape>| -> (Program, f64) {
        let mut p = program(&src);
        p.write(p.field_index("x0").unwrap(), 0, x0).unwrap();
        let mut local = Tape::new();
        let tape = tape.unwrap_or(&mut local);
        for _ in 0..CHAIN_STEPS {
            tape.launch(&mut p, "chain", &[]).unwrap();
            tape.launch(&mut p, "restart", &[]).unwrap();
            tape.end_step();
        }
        tape.launch(&mut p, "compute_loss", &[]).unwrap();
        let loss: f64 = p.field("loss").unwrap().get(&[]).unwrap();
        (p, loss)
    };
    let mut tape = Tape::new();
    let (mut p, _) = run(&starts, Some(&mut tape));
    tape.backward_with(&mut p, "loss", &StoreAll).unwrap().expect("a checkpointed run");
    let grad: Vec<f64> = p.field("x0_grad").unwrap().to_vec().unwrap();
    let h = 1e-6;
    for i in 0..N {
        let shifted = |d: f64| {
            let mut x = starts.clone();
            x[i] += d;
            run(&x, None).1
        };
        let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
        assert!((grad[i] - numeric).abs() < 1e-6 * numeric.abs().max(1.0), "dL/dx0[{i}]: {} vs {numeric}", grad[i]);
    }
}

/// The overwritten simulation over `steps` steps in forward mode: tangent
/// kernels forward (x and w moved along `(dx, dw)` through their duals),
/// then backward under a memory budget that makes it checkpoint. Returns
/// the gradient and its tangent (the Hessian-vector product), each as
/// (d/dx0, d/dw).
fn hessian_vector_product(steps: usize, x0: &[f64], w: &[f64], dx: &[f64], dw: &[f64]) -> [(Vec<f64>, Vec<f64>); 2] {
    let options = CompileOptions { autodiff: true, forward_mode: true, ..Default::default() };
    let mut p = Program::with_options(&overwritten_source(), "tape.mlir", &options).unwrap();
    for (name, values) in [("x", x0), ("w", w), ("x_dot", dx), ("w_dot", dw)] {
        let f = p.field_index(name).unwrap();
        p.write(f, 0, values).unwrap();
    }
    let mut tape = Tape::new();
    for t in 0..steps {
        if t > 0 {
            tape.end_step();
        }
        tape.launch(&mut p, "advance_jvp", &[]).unwrap();
        tape.launch(&mut p, "commit_jvp", &[]).unwrap();
    }
    tape.launch(&mut p, "compute_loss_jvp", &[]).unwrap();
    let state = 4 * N * 8;
    let options = BackwardOptions { memory_budget: Some(6 * state), ..Default::default() };
    let plan = tape.backward(&mut p, "loss", &options).unwrap().expect("the state is overwritten: a checkpointed plan");
    assert!(plan.launches_recomputed > 0, "{plan}");
    let read = |name: &str| p.field(name).unwrap().to_f64_vec();
    [(read("x_grad"), read("w_grad")), (read("x_grad_dot"), read("w_grad_dot"))]
}

#[test]
fn hessian_vector_products_through_a_checkpointed_tape() {
    // Forward-over-reverse: the tangents of the adjoints after backward
    // equal the central difference of the gradient along the direction.
    let steps = 40;
    let x0: Vec<f64> = (0..N).map(|i| 0.1 + 0.1 * i as f64).collect();
    let w: Vec<f64> = (0..N).map(|i| 1.0 + 0.05 * i as f64).collect();
    let dx: Vec<f64> = (0..N).map(|i| ((i * 7) % 5) as f64 / 5.0 - 0.4).collect();
    let dw: Vec<f64> = (0..N).map(|i| ((i * 3) % 4) as f64 / 4.0 - 0.3).collect();
    let zero = vec![0.0; N];
    let [_, (hx, hw)] = hessian_vector_product(steps, &x0, &w, &dx, &dw);
    let h = 1e-4;
    let moved = |k: f64| {
        let at = |a: &[f64], d: &[f64]| a.iter().zip(d).map(|(a, d)| a + k * h * d).collect::<Vec<f64>>();
        hessian_vector_product(steps, &at(&x0, &dx), &at(&w, &dw), &zero, &zero)[0].clone()
    };
    let (p2, p1, m1, m2) = (moved(2.0), moved(1.0), moved(-1.0), moved(-2.0));
    // The gradients as one vector: d/dx0 then d/dw.
    let flat = |g: &(Vec<f64>, Vec<f64>)| [g.0.as_slice(), g.1.as_slice()].concat();
    let (p2, p1, m1, m2) = (flat(&p2), flat(&p1), flat(&m1), flat(&m2));
    let numeric: Vec<f64> = (0..2 * N).map(|i| (8.0 * (p1[i] - m1[i]) - (p2[i] - m2[i])) / (12.0 * h)).collect();
    let (nx, nw) = numeric.split_at(N);
    let largest = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(largest > 1e-2, "the Hessian-vector product is (nearly) zero: {nx:?} {nw:?}");
    for (analytic, numeric) in [(hx.as_slice(), nx), (hw.as_slice(), nw)] {
        for (a, n) in analytic.iter().zip(numeric) {
            assert!((a - n).abs() <= 1e-6 * largest, "Hv {a} against finite differences of the gradient {n}");
        }
    }
}
