//! Sparse fields at the module level, against a dense reference written in
//! Rust: every access op and `ds.struct_for` over each node kind and two
//! nestings (1-D: bitmasked, dense of bitmasked, bitmasked of dense,
//! pointer of dense, pointer of bitmasked; 2-D: pointer of dense), the
//! pool (exhaustion is a typed error, deactivation returns blocks), host
//! access, and the PTX path.

use ds_runtime::cuda::compile_ptx;
use ds_runtime::{Arg, Error, Program};
use std::collections::BTreeSet;

const N: usize = 64;

/// Layout nodes, declared once: `(kind, extent)` from the root down, as
/// `ds.<kind>` nodes named `top` (the root's child), `mid1`, `mid2` ...
/// and `leaf` (the one holding `@x`), each the parent of the next.
fn nodes(levels: &[(&str, i64)]) -> String {
    let mut out = String::new();
    for (k, (kind, n)) in levels.iter().enumerate() {
        let parent = if k == 0 { String::new() } else { format!(", parent = @{}", node_name(levels, k - 1)) };
        out += &format!("\"ds.{kind}\"() {{sym_name = \"{}\", shape = array<i64: {n}>{parent}}} : () -> ()\n", node_name(levels, k));
    }
    out
}

/// The name of level `k`'s node (see [`nodes`]).
fn node_name(levels: &[(&str, i64)], k: usize) -> String {
    if k + 1 == levels.len() {
        "leaf".into()
    } else if k == 0 {
        "top".into()
    } else {
        format!("mid{k}")
    }
}

/// One 1-D layout of `@x` (f32 [64]), with what a reference model needs.
struct Layout {
    name: String,
    levels: &'static [(&'static str, i64)],
    nodes: String,
}

impl Layout {
    /// The cells a write activates together (and a deactivation of the
    /// innermost sparse node clears): those under one cell of that node.
    fn group(&self) -> usize {
        let innermost = self.levels.iter().rposition(|(k, _)| *k != "dense").expect("a sparse level");
        self.levels[innermost + 1..].iter().map(|(_, n)| *n as usize).product()
    }
    /// The cells under one block of the deepest pointer (its pool's unit), if any.
    fn pointer_block(&self) -> Option<usize> {
        let j = self.levels.iter().rposition(|(k, _)| *k == "pointer")?;
        Some(self.levels[j + 1..].iter().map(|(_, n)| *n as usize).product())
    }
    fn has_pointer(&self) -> bool {
        self.pointer_block().is_some()
    }
    /// The deepest pointer's node.
    fn pointer_node(&self) -> Option<String> {
        let j = self.levels.iter().rposition(|(k, _)| *k == "pointer")?;
        Some(node_name(self.levels, j))
    }
    /// The deepest pointer's blocks holding `cells`.
    fn blocks_of(&self, cells: &[usize]) -> usize {
        let b = self.pointer_block().unwrap_or(1);
        cells.iter().map(|c| c / b).collect::<BTreeSet<_>>().len()
    }
    /// The cells a reference model says are active after activating `cells`.
    fn expected_active(&self, cells: &BTreeSet<usize>) -> BTreeSet<usize> {
        let g = self.group();
        cells.iter().flat_map(|c| (c / g * g)..(c / g * g + g)).collect()
    }
}

/// The 1-D layouts of 64 cells: each node kind alone and in two- and three-level nestings.
const LEVELS: &[&[(&str, i64)]] = &[
    &[("bitmasked", 64)],
    &[("dense", 8), ("bitmasked", 8)],
    &[("bitmasked", 8), ("dense", 8)],
    &[("pointer", 8), ("dense", 8)],
    &[("pointer", 8), ("bitmasked", 8)],
    &[("pointer", 4), ("pointer", 4), ("dense", 4)],
    &[("dense", 4), ("pointer", 4), ("dense", 4)],
    &[("pointer", 4), ("pointer", 4), ("bitmasked", 4)],
    &[("bitmasked", 4), ("pointer", 4), ("dense", 4)],
    &[("pointer", 4), ("bitmasked", 2), ("dense", 8)],
];

fn layouts() -> Vec<Layout> {
    LEVELS
        .iter()
        .map(|levels| Layout { name: levels.iter().map(|(k, _)| *k).collect::<Vec<_>>().join("_"), levels, nodes: nodes(levels) })
        .collect()
}

/// The layout named `name`.
fn layout(name: &str) -> Layout {
    layouts().into_iter().find(|l| l.name == name).expect("a layout of LEVELS")
}

fn source(nodes: &str, kernels: &str) -> String {
    format!(
        r#"{nodes}
"ds.field"() {{sym_name = "x", element_type = f32, shape = array<i64: 64>, layout = @leaf}} : () -> ()
"ds.field"() {{sym_name = "y", element_type = f32, shape = array<i64: 64>}} : () -> ()
"ds.field"() {{sym_name = "flags", element_type = i32, shape = array<i64: 64>}} : () -> ()
"ds.field"() {{sym_name = "count", element_type = i32, shape = array<i64>}} : () -> ()
{kernels}"#
    )
}

/// `x[(i * 7 + 3) % 64] = i + 1` for i < n (stores activate); a struct_for
/// `y[i] = 2 x[i] + 1` counting its iterations; `flags[i] = is_active(x[i])`
/// over all cells; activate / deactivate of one cell; an atomic add.
const KERNELS: &str = r#"
func.func @scatter(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %c7 = arith.constant 7 : index
    %c3 = arith.constant 3 : index
    %c64 = arith.constant 64 : index
    %a = arith.muli %i, %c7 : index
    %b = arith.addi %a, %c3 : index
    %j = arith.remui %b, %c64 : index
    %ii = arith.index_cast %i : index to i32
    %f = arith.sitofp %ii : i32 to f32
    %one = arith.constant 1.0 : f32
    %v = arith.addf %f, %one : f32
    "ds.store"(%v, %j) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @double() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %two = arith.constant 2.0 : f32
    %one = arith.constant 1.0 : f32
    %w = arith.mulf %v, %two : f32
    %u = arith.addf %w, %one : f32
    "ds.store"(%u, %i) {field = @y} : (f32, index) -> ()
    %k = arith.constant 1 : i32
    "ds.atomic_add"(%k) {field = @count} : (i32) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}
func.func @probe() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  "ds.parallel_for"(%c0, %c64) ({
  ^bb0(%i: index):
    %a = "ds.is_active"(%i) {field = @x} : (index) -> i1
    %one = arith.constant 1 : i32
    %zero = arith.constant 0 : i32
    %f = arith.select %a, %one, %zero : i32
    "ds.store"(%f, %i) {field = @flags} : (i32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @on(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.activate"(%i) {field = @x} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @off(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.deactivate"(%i) {field = @x} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @hammer(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %c64 = arith.constant 64 : index
    %j = arith.remui %i, %c64 : index
    %one = arith.constant 1.0 : f32
    "ds.atomic_add"(%one, %j) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
"#;

fn program(nodes: &str) -> Program {
    Program::new(&source(nodes, KERNELS)).unwrap_or_else(|e| panic!("{e}"))
}

fn active_set(p: &Program) -> BTreeSet<usize> {
    p.field("x").unwrap().active_cells().into_iter().map(|c| c[0]).collect()
}

fn flags(p: &mut Program) -> BTreeSet<usize> {
    p.launch("probe", &[]).unwrap();
    let f: Vec<i32> = p.field("flags").unwrap().to_vec().unwrap();
    (0..N).filter(|&i| f[i] == 1).collect()
}

#[test]
fn writes_activate_reads_of_inactive_cells_give_zero_and_struct_for_visits_active_cells() {
    for l in layouts() {
        let layout = &l.name;
        let mut p = program(&l.nodes);
        let n = 5;
        p.launch("scatter", &[Arg::Index(n)]).unwrap();
        let mut x_ref = vec![0f32; N];
        let mut written = BTreeSet::new();
        for i in 0..n as usize {
            let j = (i * 7 + 3) % N;
            x_ref[j] = i as f32 + 1.0;
            written.insert(j);
        }
        let active = l.expected_active(&written);
        assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), x_ref, "{layout}: x through the tree");
        assert_eq!(active_set(&p), active, "{layout}: host active set");
        assert_eq!(flags(&mut p), active, "{layout}: ds.is_active");
        p.launch("double", &[]).unwrap();
        let y_ref: Vec<f32> = (0..N).map(|i| if active.contains(&i) { 2.0 * x_ref[i] + 1.0 } else { 0.0 }).collect();
        assert_eq!(p.field("y").unwrap().to_vec::<f32>().unwrap(), y_ref, "{layout}: struct_for over active cells");
        assert_eq!(p.field("count").unwrap().get::<i32>(&[]).unwrap(), active.len() as i32, "{layout}: iterations");
    }
}

#[test]
fn activate_deactivate_and_is_active_follow_a_reference_model() {
    for l in layouts() {
        let layout = &l.name;
        let mut p = program(&l.nodes);
        let mut model: BTreeSet<usize> = BTreeSet::new();
        let steps: &[(bool, usize)] = &[(true, 3), (true, 9), (true, 10), (false, 9), (true, 40), (false, 3), (true, 41)];
        for &(on, i) in steps {
            p.launch(if on { "on" } else { "off" }, &[Arg::Index(i as i64)]).unwrap();
            if on {
                model.extend(l.expected_active(&[i].into()));
            } else {
                // The innermost sparse node's cell: its dense cells go together.
                model.retain(|c| c / l.group() != i / l.group());
            }
            assert_eq!(flags(&mut p), model, "{layout} after {} {i}", if on { "activate" } else { "deactivate" });
            assert_eq!(active_set(&p), model, "{layout}: host view");
        }
        // Deactivation zeroes: a cell written, deactivated and activated again reads 0.
        p.field_mut("x").unwrap().set(&[41], 5.0f32).unwrap();
        p.launch("off", &[Arg::Index(41)]).unwrap();
        assert_eq!(p.field("x").unwrap().get::<f32>(&[41]).unwrap(), 0.0, "{layout}");
        p.launch("on", &[Arg::Index(41)]).unwrap();
        assert_eq!(p.field("x").unwrap().get::<f32>(&[41]).unwrap(), 0.0, "{layout}: a reactivated cell is 0");
    }
}

#[test]
fn concurrent_atomics_allocate_each_block_once() {
    for l in layouts() {
        let layout = &l.name;
        let mut p = program(&l.nodes);
        // 64 threads' worth of iterations hit every cell 64 times, blocks allocated under contention.
        p.launch("hammer", &[Arg::Index((N * 64) as i64)]).unwrap();
        assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), vec![64.0f32; N], "{layout}");
        let stats = p.field("x").unwrap().sparse_stats().unwrap();
        assert_eq!(stats.active_cells, N, "{layout}");
        if let Some(b) = l.pointer_block() {
            assert_eq!(stats.blocks, N / b, "{layout}: one block per pointer cell, none lost to races");
            assert_eq!(p.sparse_trees()[0].listed_blocks(), N / b, "{layout}: each block listed once");
        }
    }
}

/// One launch: the (deepest) pointer block of `x[i]` released (`NODE`), then `x[i] = 3`
/// (a new block), then a struct_for counting the cells it visits.
const CHURN: &str = r#"
func.func @churn(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.deactivate"(%i) {field = @x, node = @NODE} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    %three = arith.constant 3.0 : f32
    "ds.store"(%three, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  "ds.struct_for"() ({
  ^bb0(%j: index):
    %k = arith.constant 1 : i32
    "ds.atomic_add"(%k) {field = @count} : (i32) -> ()
    gpu.yield
  }) {field = @x} : () -> ()
  return
}
"#;

#[test]
fn a_struct_for_over_a_pointer_runs_over_its_allocated_blocks_only() {
    for l in layouts().into_iter().filter(Layout::has_pointer) {
        let layout = &l.name;
        let churn = CHURN.replace("NODE", &l.pointer_node().expect("a pointer"));
        let mut p = Program::new(&source(&l.nodes, &format!("{KERNELS}{churn}"))).unwrap_or_else(|e| panic!("{e}"));
        let tree = p.sparse_trees()[0].clone();
        assert_eq!(tree.listed_blocks(), 0, "{layout}: nothing allocated");
        // Two pointer cells get blocks (one from a kernel, one from the host).
        p.launch("on", &[Arg::Index(9)]).unwrap();
        p.field_mut("x").unwrap().set(&[50], 1.0f32).unwrap();
        assert_eq!(tree.listed_blocks(), 2, "{layout}");
        p.launch("double", &[]).unwrap();
        let two = l.expected_active(&[9, 50].into());
        assert_eq!(p.field("count").unwrap().get::<i32>(&[]).unwrap(), two.len() as i32, "{layout}: the listed blocks' cells");
        // Released and reallocated within one launch: the list holds the
        // released block until the launch ends, and the struct_for skips it.
        p.field_mut("count").unwrap().set(&[], 0i32).unwrap();
        p.launch("churn", &[Arg::Index(9)]).unwrap();
        assert_eq!(p.field("count").unwrap().get::<i32>(&[]).unwrap(), two.len() as i32, "{layout}: each block once");
        assert_eq!(tree.listed_blocks(), 2, "{layout}: the released block left the list");
        assert_eq!(p.field("x").unwrap().get::<f32>(&[9]).unwrap(), 3.0, "{layout}");
        assert_eq!(p.field("x").unwrap().sparse_stats().unwrap().blocks, 2, "{layout}");
        // Host deactivation drops its block from the list too.
        p.field_mut("x").unwrap().deactivate(&[50]).unwrap();
        // Released with its block when the innermost sparse node is the deepest pointer.
        let released = Some(l.group()) == l.pointer_block();
        assert_eq!(tree.listed_blocks(), l.blocks_of(if released { &[9] } else { &[9, 50] }), "{layout}");
        p.field_mut("count").unwrap().set(&[], 0i32).unwrap();
        p.launch("double", &[]).unwrap();
        let left = l.expected_active(&[9].into());
        assert_eq!(p.field("count").unwrap().get::<i32>(&[]).unwrap(), left.len() as i32, "{layout}");
        p.field_mut("x").unwrap().deactivate_all().unwrap();
        assert_eq!(tree.listed_blocks(), 0, "{layout}");
    }
}

/// `ds.deactivate` of `x[i]` at node `@NODE`.
const OFF_AT: &str = r#"
func.func @off_NODE(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.deactivate"(%i) {field = @x, node = @NODE} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
"#;

#[test]
fn deactivating_at_a_chosen_level_clears_the_cells_under_it() {
    for l in layouts().into_iter().filter(|l| l.levels.len() == 3) {
        let layout = &l.name;
        let sparse: Vec<usize> = (0..3).filter(|&k| l.levels[k].0 != "dense").collect();
        let kernels: String = sparse.iter().map(|&k| OFF_AT.replace("NODE", &node_name(l.levels, k))).collect();
        let mut p = Program::new(&source(&l.nodes, &format!("{KERNELS}{kernels}"))).unwrap_or_else(|e| panic!("{layout}: {e}"));
        // The cells under one cell of level k.
        let span = |k: usize| -> usize { l.levels[k + 1..].iter().map(|(_, n)| *n as usize).product() };
        for &k in &sparse {
            let written = [3usize, 9, 20, 50, 51];
            for &c in &written {
                p.field_mut("x").unwrap().set(&[c], c as f32 + 0.5).unwrap();
            }
            let mut model = l.expected_active(&written.into());
            let i = 9;
            p.launch(&format!("off_{}", node_name(l.levels, k)), &[Arg::Index(i)]).unwrap();
            model.retain(|c| c / span(k) != i as usize / span(k));
            assert_eq!(flags(&mut p), model, "{layout}: deactivated at level {k}");
            assert_eq!(active_set(&p), model, "{layout}: host view, level {k}");
            let x: Vec<f32> = p.field("x").unwrap().to_vec().unwrap();
            let x_ref: Vec<f32> = (0..N).map(|c| if model.contains(&c) && written.contains(&c) { c as f32 + 0.5 } else { 0.0 }).collect();
            assert_eq!(x, x_ref, "{layout}: reads through inactive levels give 0 (level {k})");
            // The struct_for visits the model's cells.
            p.field_mut("count").unwrap().set(&[], 0i32).unwrap();
            p.launch("double", &[]).unwrap();
            assert_eq!(p.field("count").unwrap().get::<i32>(&[]).unwrap(), model.len() as i32, "{layout}: level {k}");
            // Written again after the launch: the cleared cells start from 0.
            p.field_mut("x").unwrap().set(&[8], 1.0f32).unwrap();
            assert_eq!(p.field("x").unwrap().get::<f32>(&[9]).unwrap(), 0.0, "{layout}: level {k}");
            p.field_mut("x").unwrap().deactivate_all().unwrap();
            assert!(p.field("x").unwrap().active_cells().is_empty(), "{layout}");
            assert_eq!(p.sparse_trees()[0].listed_blocks(), 0, "{layout}");
        }
    }
}

/// In one iteration: `x[i]` deactivated then written (`off_on`), or written
/// then deactivated (`on_off`).
const ORDERED: &str = r#"
func.func @off_on(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.deactivate"(%i) {field = @x} : (index) -> ()
    %two = arith.constant 2.0 : f32
    "ds.store"(%two, %i) {field = @x} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
func.func @on_off(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    %two = arith.constant 2.0 : f32
    "ds.store"(%two, %i) {field = @x} : (f32, index) -> ()
    "ds.deactivate"(%i) {field = @x} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
"#;

/// A struct_for over the cells of `@x` deactivating those below 1 and
/// doubling the others (the iteration's own cell only).
const PRUNE: &str = r#"
func.func @prune() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %one = arith.constant 1.0 : f32
    %small = arith.cmpf olt, %v, %one : f32
    scf.if %small {
      "ds.deactivate"(%i) {field = @x} : (index) -> ()
    } else {
      %w = arith.addf %v, %v : f32
      "ds.store"(%w, %i) {field = @x} : (f32, index) -> ()
    }
    gpu.yield
  }) {field = @x} : () -> ()
  return
}
"#;

/// Deactivations and writes in one launch: in order within an iteration
/// and across a kernel's loops, a struct_for pruning its own cells of a
/// bitmasked leaf, and a racing form rejected at compile time.
#[test]
fn deactivations_and_writes_in_one_launch_are_ordered_or_rejected() {
    for l in layouts() {
        let layout = &l.name;
        let mut p = Program::new(&source(&l.nodes, &format!("{KERNELS}{ORDERED}"))).unwrap_or_else(|e| panic!("{layout}: {e}"));
        p.field_mut("x").unwrap().set(&[20], 5.0f32).unwrap();
        p.launch("off_on", &[Arg::Index(20)]).unwrap();
        assert_eq!(p.field("x").unwrap().get::<f32>(&[20]).unwrap(), 2.0, "{layout}: the write after the deactivation lands");
        assert!(active_set(&p).contains(&20), "{layout}");
        p.launch("on_off", &[Arg::Index(20)]).unwrap();
        assert_eq!(p.field("x").unwrap().get::<f32>(&[20]).unwrap(), 0.0, "{layout}: the deactivation after the write wins");
        assert!(!active_set(&p).contains(&20), "{layout}");
    }
    for l in layouts().into_iter().filter(|l| l.group() == 1) {
        let layout = &l.name;
        let mut p = Program::new(&source(&l.nodes, &format!("{KERNELS}{PRUNE}"))).unwrap_or_else(|e| panic!("{layout}: {e}"));
        let x0: Vec<f32> = (0..N).map(|i| if i % 3 == 0 { 0.0 } else { (i % 5) as f32 * 0.5 }).collect();
        for (i, &v) in x0.iter().enumerate() {
            p.field_mut("x").unwrap().set(&[i], v).unwrap();
        }
        p.launch("prune", &[]).unwrap();
        let kept: BTreeSet<usize> = (0..N).filter(|&i| x0[i] >= 1.0).collect();
        assert_eq!(active_set(&p), kept, "{layout}: the small cells deactivated");
        let x_ref: Vec<f32> = x0.iter().map(|&v| if v >= 1.0 { 2.0 * v } else { 0.0 }).collect();
        assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), x_ref, "{layout}: the others doubled");
    }
    // Over dense blocks the same prune races: another iteration's write may be lost.
    let l = layout("pointer_dense");
    match Program::new(&source(&l.nodes, &format!("{KERNELS}{PRUNE}"))) {
        Err(err @ Error::Compile(_)) => {
            let text = err.to_string();
            assert!(text.contains("ds.deactivate of @x at node @top races ds.store of @x"), "{text}");
        }
        other => panic!("expected a compile error, got {:?}", other.err()),
    }
}

/// A pointer of 8 blocks of 8 cells whose pool holds 2.
const SMALL_POOL: &str = r#""ds.pointer"() {sym_name = "top", shape = array<i64: 8>, capacity = 2 : i64} : () -> ()
"ds.dense"() {sym_name = "leaf", shape = array<i64: 8>, parent = @top} : () -> ()"#;

#[test]
fn an_exhausted_pool_is_a_typed_error_and_deactivation_returns_blocks() {
    let mut p = program(SMALL_POOL);
    // Cells 3, 10 and 17 need blocks 0, 1 and 2 of the pointer node: the third has none.
    let err = p.launch("scatter", &[Arg::Index(3)]).unwrap_err();
    match &err {
        Error::PoolExhausted { kernel, field, node, capacity, location } => {
            assert_eq!((kernel.as_deref(), field.as_str(), node.as_str(), *capacity), (Some("scatter"), "x", "top", 2));
            assert!(location.is_some(), "{err}");
        }
        other => panic!("expected PoolExhausted, got {other}"),
    }
    let stats = p.field("x").unwrap().sparse_stats().unwrap();
    assert_eq!((stats.blocks, stats.capacity), (2, 2));
    // Two of the three writes landed, each in its block; nothing else was written.
    let x: Vec<f32> = p.field("x").unwrap().to_vec().unwrap();
    let nonzero: Vec<usize> = (0..N).filter(|&i| x[i] != 0.0).collect();
    assert_eq!(nonzero.len(), 2, "{x:?}");
    assert!(nonzero.iter().all(|&i| [3, 10, 17].contains(&i) && x[i] == (i / 7) as f32 + 1.0), "{x:?}");
    // Releasing one block (in a kernel) lets the third write in.
    p.launch("off", &[Arg::Index(nonzero[0] as i64)]).unwrap();
    assert_eq!(p.field("x").unwrap().sparse_stats().unwrap().blocks, 1);
    p.field_mut("x").unwrap().set(&[60], 7.0f32).unwrap();
    assert_eq!(p.field("x").unwrap().get::<f32>(&[60]).unwrap(), 7.0);
    assert_eq!(p.field("x").unwrap().get::<f32>(&[nonzero[0]]).unwrap(), 0.0, "a released block is zeroed");
    // A host write into a fourth block: a typed error too.
    let err = p.field_mut("x").unwrap().set(&[33], 1.0f32).unwrap_err();
    assert!(matches!(err, Error::PoolExhausted { kernel: None, .. }), "{err}");
    p.field_mut("x").unwrap().deactivate_all().unwrap();
    let stats = p.field("x").unwrap().sparse_stats().unwrap();
    assert_eq!((stats.blocks, stats.active_cells), (0, 0));
    assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), vec![0.0; N]);
}

#[test]
fn host_access_statistics_and_dense_arrays() {
    for l in layouts() {
        let layout = &l.name;
        let mut p = program(&l.nodes);
        let mut dense = vec![0f32; N];
        dense[5] = 1.5;
        dense[6] = -2.0;
        dense[50] = 3.0;
        p.field_mut("x").unwrap().from_dense(&dense).unwrap();
        assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), dense, "{layout}");
        let cells: BTreeSet<usize> = [5, 6, 50].into();
        assert_eq!(active_set(&p), l.expected_active(&cells), "{layout}");
        let stats = p.field("x").unwrap().sparse_stats().unwrap();
        assert_eq!(stats.dense_bytes, N * 4);
        assert!(stats.bytes_used <= stats.bytes_reserved, "{layout}: {stats:?}");
        assert!((stats.occupancy() - stats.active_cells as f64 / 64.0).abs() < 1e-12);
        if l.has_pointer() {
            assert_eq!(stats.blocks, l.blocks_of(&[5, 6, 50]), "{layout}: the blocks of cells 5, 6 and 50");
            assert!(stats.bytes_used < stats.bytes_reserved, "{layout}: {stats:?}");
            if l.levels.len() == 2 {
                assert!(stats.bytes_used < stats.dense_bytes, "{layout}: {stats:?}");
            }
        }
        // fill touches the active cells only.
        p.field_mut("x").unwrap().fill(9.0f32).unwrap();
        let active = active_set(&p);
        let filled: Vec<f32> = (0..N).map(|i| if active.contains(&i) { 9.0 } else { 0.0 }).collect();
        assert_eq!(p.field("x").unwrap().to_vec::<f32>().unwrap(), filled, "{layout}");
        // A snapshot holds the active set and the values: restored after other writes and deactivations.
        let saved = p.field("x").unwrap().snapshot().unwrap();
        let before = (active_set(&p), p.field("x").unwrap().to_vec::<f32>().unwrap());
        p.field_mut("x").unwrap().deactivate(&[5]).unwrap();
        p.field_mut("x").unwrap().set(&[33], 4.0f32).unwrap();
        p.launch("scatter", &[Arg::Index(9)]).unwrap();
        assert_ne!(active_set(&p), before.0, "{layout}");
        p.field_mut("x").unwrap().restore(&saved).unwrap();
        assert_eq!((active_set(&p), p.field("x").unwrap().to_vec::<f32>().unwrap()), before, "{layout}: restored");
        assert_eq!(flags(&mut p), before.0, "{layout}: kernels see the restored set");
        p.launch("double", &[]).unwrap();
        let y_ref: Vec<f32> = (0..N).map(|i| if before.0.contains(&i) { 2.0 * before.1[i] + 1.0 } else { 0.0 }).collect();
        assert_eq!(p.field("y").unwrap().to_vec::<f32>().unwrap(), y_ref, "{layout}: a struct_for over the restored blocks");
        p.field_mut("x").unwrap().set(&[60], 1.0f32).unwrap();
        assert_eq!(p.field("x").unwrap().get::<f32>(&[60]).unwrap(), 1.0, "{layout}: the restored pool allocates");
        // Dense fields refuse the sparse-only operations with a typed error.
        assert!(matches!(p.field_mut("y").unwrap().activate(&[1]), Err(Error::Sparse { .. })));
        assert!(p.field("y").unwrap().is_active(&[1]).unwrap());
        assert!(matches!(p.field("x").unwrap().is_active(&[64]), Err(Error::HostIndex { .. })));
    }
}

#[test]
fn a_two_d_stencil_over_pointer_blocks_matches_the_dense_one() {
    // The benchmark's kernel (ds-bench sparse) on 16x16 cells.
    let sparse = r#""ds.pointer"() {sym_name = "top", shape = array<i64: 4, 4>} : () -> ()
"ds.dense"() {sym_name = "leaf", shape = array<i64: 4, 4>, parent = @top} : () -> ()"#;
    let kernel = |nodes: &str| ds_runtime::sparse::laplace_source(16, nodes, (!nodes.is_empty()).then_some("leaf"));
    let mut ps = Program::new(&kernel(sparse)).unwrap_or_else(|e| panic!("{e}"));
    let mut pd = Program::new(&kernel("")).unwrap();
    // A blob: the cells within radius 4 of (6, 9).
    let mut u = vec![0f32; 256];
    for i in 0..16 {
        for j in 0..16 {
            let r2 = (i as i32 - 6).pow(2) + (j as i32 - 9).pow(2);
            if r2 <= 16 {
                u[i * 16 + j] = 1.0 + (i * 16 + j) as f32 / 100.0;
            }
        }
    }
    ps.field_mut("u").unwrap().from_dense(&u).unwrap();
    pd.field_mut("u").unwrap().copy_from(&u).unwrap();
    ps.launch("laplace", &[]).unwrap();
    pd.launch("laplace", &[]).unwrap();
    let blocks: BTreeSet<(usize, usize)> =
        ps.field("u").unwrap().active_cells().into_iter().map(|c| (c[0] / 4, c[1] / 4)).collect();
    let vs: Vec<f32> = ps.field("v").unwrap().to_vec().unwrap();
    let vd: Vec<f32> = pd.field("v").unwrap().to_vec().unwrap();
    for i in 0..16 {
        for j in 0..16 {
            let expected = if blocks.contains(&(i / 4, j / 4)) { vd[i * 16 + j] } else { 0.0 };
            assert_eq!(vs[i * 16 + j], expected, "({i}, {j})");
        }
    }
    let stats = ps.field("u").unwrap().sparse_stats().unwrap();
    assert_eq!(stats.blocks, blocks.len());
    assert!(stats.blocks < 16, "{stats:?}");
}

#[test]
fn sparse_kernels_compile_to_ptx() {
    for l in layouts() {
        let layout = &l.name;
        let compiled = compile_ptx(&source(&l.nodes, KERNELS), layout, &Default::default(), "sm_90").unwrap_or_else(|e| panic!("{layout}: {e}"));
        let ptx = compiled.ptx.clone().expect("PTX");
        assert!(ptx.contains(".entry"), "{layout}");
        if l.has_pointer() {
            assert!(ptx.contains("atom.global.max.u32"), "{layout}: a table entry is claimed by an atomic max");
        }
    }
    for outer in ["dense", "pointer"] {
        let compiled = compile_ptx(&list_source(outer, CHUNKS), outer, &Default::default(), "sm_90").unwrap_or_else(|e| panic!("lists under {outer}: {e}"));
        assert!(compiled.ptx.as_deref().is_some_and(|p| p.contains(".entry push__task0")), "{outer}");
    }
    // What `ds-bench gpu-check` runs on a GPU, gradients included: kernel
    // writes claiming blocks, a struct_for over the block list, deactivation.
    let source = include_str!("../../benches/kernels/sparse_check.mlir");
    let options = ds_runtime::CompileOptions { autodiff: true, ..Default::default() };
    let compiled = compile_ptx(source, "sparse_check.mlir", &options, "sm_90").unwrap_or_else(|e| panic!("sparse_check.mlir: {e}"));
    let ptx = compiled.ptx.as_deref().expect("PTX");
    for kernel in ["seed", "laplace", "energy", "cull", "laplace_grad", "energy_grad", "mark", "total", "unmark"] {
        assert!(ptx.contains(&format!(".entry {kernel}__task0(")), "sparse_check.mlir: no {kernel}");
    }
    assert!(ptx.contains("atom.global.max.u32"), "seed claims table entries");
    assert!(ptx.contains("atom.global.or.b32"), "mark sets bits");
}

/// `loss += x[i]^2 * x[min(i + 1, 63)]` over the active cells of `x`, whose
/// adjoint `x_grad` shares its tree (placed on the same leaf).
fn grad_source(nodes: &str) -> String {
    format!(
        r#"{nodes}
"ds.field"() {{sym_name = "x", element_type = f64, shape = array<i64: 64>, layout = @leaf, grad = @x_grad}} : () -> ()
"ds.field"() {{sym_name = "x_grad", element_type = f64, shape = array<i64: 64>, layout = @leaf}} : () -> ()
"ds.field"() {{sym_name = "loss", element_type = f64, shape = array<i64>, grad = @loss_grad}} : () -> ()
"ds.field"() {{sym_name = "loss_grad", element_type = f64, shape = array<i64>}} : () -> ()
func.func @energy() attributes {{ds.kernel}} {{
  "ds.struct_for"() ({{
  ^bb0(%i: index):
    %c1 = arith.constant 1 : index
    %c63 = arith.constant 63 : index
    %n = arith.addi %i, %c1 : index
    %j = arith.minsi %n, %c63 : index
    %v = "ds.load"(%i) {{field = @x}} : (index) -> f64
    %w = "ds.load"(%j) {{field = @x}} : (index) -> f64
    %vv = arith.mulf %v, %v : f64
    %e = arith.mulf %vv, %w : f64
    "ds.atomic_add"(%e) {{field = @loss}} : (f64) -> ()
    gpu.yield
  }}) {{field = @x}} : () -> ()
  return
}}"#
    )
}

#[test]
fn struct_for_gradients_live_on_active_cells_and_leave_the_active_set_unchanged() {
    let options = ds_runtime::CompileOptions { autodiff: true, ..Default::default() };
    for l in layouts().into_iter().filter(|l| !l.name.starts_with("dense_")) {
        let (layout, nodes) = (&l.name, &l.nodes);
        let mut p = Program::with_options(&grad_source(nodes), layout, &options).unwrap_or_else(|e| panic!("{layout}: {e}"));
        let mut x0 = vec![0f64; N];
        for (k, i) in [3usize, 4, 5, 20, 21, 40, 63].into_iter().enumerate() {
            x0[i] = 0.5 + 0.25 * k as f64;
        }
        p.field_mut("x").unwrap().from_dense(&x0).unwrap();
        let active = active_set(&p);
        let loss = |p: &mut Program| -> f64 {
            p.field_mut("loss").unwrap().zero();
            p.launch("energy", &[]).unwrap();
            p.field("loss").unwrap().get::<f64>(&[]).unwrap()
        };
        loss(&mut p);
        p.field_mut("x_grad").unwrap().zero();
        p.field_mut("loss_grad").unwrap().set(&[], 1.0f64).unwrap();
        p.launch("energy_grad", &[]).unwrap();
        assert_eq!(active_set(&p), active, "{layout}: the grad kernel activated or deactivated cells");
        let g: Vec<f64> = p.field("x_grad").unwrap().to_vec().unwrap();
        for (i, &gi) in g.iter().enumerate() {
            if !active.contains(&i) {
                assert_eq!(gi, 0.0, "{layout}: gradient on inactive cell {i}");
                continue;
            }
            // Central differences in f64 on the active cell (a write to an active cell keeps the set).
            let h = 1e-6;
            let at = |p: &mut Program, v: f64| {
                p.field_mut("x").unwrap().set(&[i], v).unwrap();
                loss(p)
            };
            let xi = p.field("x").unwrap().get::<f64>(&[i]).unwrap();
            let fd = (at(&mut p, xi + h) - at(&mut p, xi - h)) / (2.0 * h);
            at(&mut p, xi);
            assert!((fd - gi).abs() <= 1e-6 * (1.0 + fd.abs()), "{layout}: cell {i}: AD {gi} vs FD {fd}");
        }
        assert_eq!(active_set(&p), active, "{layout}");
    }
}

#[test]
fn activity_ops_and_sparse_struct_fors_enter_the_tapes_read_and_write_sets() {
    // The Tape sees a struct_for over a sparse field as a read of the field
    // and an activation as a write: replaying over a changed active set is
    // reported, never a wrong gradient.
    let options = ds_runtime::CompileOptions { autodiff: true, ..Default::default() };
    let p = Program::with_options(&source(&layout("pointer_dense").nodes, KERNELS), "tape", &options).unwrap();
    let x = p.field_index("x").unwrap();
    assert!(p.kernel("double").unwrap().reads.contains(&x), "struct_for reads the active set");
    assert!(p.kernel("on").unwrap().writes.contains(&x) && p.kernel("off").unwrap().writes.contains(&x));
    assert!(p.kernel("probe").unwrap().reads.contains(&x));
}

#[test]
fn a_deactivation_writes_every_field_of_its_tree_for_the_tape() {
    let src = format!(
        "{}\n\"ds.field\"() {{sym_name = \"w\", element_type = f32, shape = array<i64: 64>, layout = @leaf}} : () -> ()\n",
        source(&layout("pointer_dense").nodes, KERNELS)
    );
    let p = Program::new(&src).unwrap();
    let (x, w) = (p.field_index("x").unwrap(), p.field_index("w").unwrap());
    let off = p.kernel("off").unwrap();
    assert!(off.writes.contains(&x) && off.writes.contains(&w), "{:?}", off.writes);
    assert!(!p.kernel("on").unwrap().writes.contains(&w));
}

/// The active set changing between a recorded struct_for and backward is
/// an error of backward (the Tape's overwrite rule), never a gradient over
/// another set of cells; without the change, backward runs. A tape that
/// keeps state (to checkpoint) refuses the write of a sparse field when it
/// would copy it: snapshots of sparse fields are not supported yet.
#[test]
fn backward_refuses_a_recording_whose_active_set_changed_after_a_struct_for() {
    let options = ds_runtime::CompileOptions { autodiff: true, ..Default::default() };
    let kernels = r#"
func.func @on(%i: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({
  ^bb0(%t: index):
    "ds.activate"(%i) {field = @x} : (index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}"#;
    let src = grad_source(&layout("bitmasked").nodes) + kernels;
    let run = |change: bool| {
        let mut p = Program::with_options(&src, "tape", &options).unwrap();
        let mut x0 = vec![0f64; N];
        x0[3] = 1.0;
        x0[4] = 2.0;
        p.field_mut("x").unwrap().from_dense(&x0).unwrap();
        let mut tape = ds_runtime::Tape::without_state();
        tape.launch(&mut p, "energy", &[]).unwrap();
        if change {
            tape.launch(&mut p, "on", &[Arg::Index(20)]).unwrap();
            // A state-keeping tape snapshots the tree (structure and data) before the first write.
            let mut keeping = ds_runtime::Tape::new();
            keeping.launch(&mut p, "on", &[Arg::Index(21)]).unwrap();
        }
        tape.backward(&mut p, "loss", &ds_runtime::BackwardOptions::default()).map(|_| p.field("x_grad").unwrap().to_vec::<f64>().unwrap())
    };
    let g = run(false).unwrap();
    // loss = x3^2 x4 (+ x4^2 x5, x5 inactive): dL/dx3 = 2 x3 x4, dL/dx4 = x3^2.
    assert_eq!((g[3], g[4], g[20]), (4.0, 1.0, 0.0), "{g:?}");
    let err = run(true).expect_err("the active set changed after the struct_for read it");
    assert!(matches!(err, Error::Overwrite { ref field, .. } if field == "x"), "{err}");
}

/// Lists (dynamic nodes): `x[c, 0..len(c))` under a dense or pointer node
/// of 8 cells; `list` adds attributes to the dynamic node (a chunk size).
fn list_source(outer: &str, list: &str) -> String {
    format!(
        r#""ds.{outer}"() {{sym_name = "cells", shape = array<i64: 8, 1>}} : () -> ()
"ds.dynamic"() {{sym_name = "list", shape = array<i64: 1, 16>, parent = @cells{list}}} : () -> ()
"ds.field"() {{sym_name = "x", element_type = f32, shape = array<i64: 8, 16>, layout = @list}} : () -> ()
"ds.field"() {{sym_name = "n", element_type = i32, shape = array<i64: 8>}} : () -> ()
"ds.field"() {{sym_name = "slot", element_type = i32, shape = array<i64: 200>}} : () -> ()
"ds.field"() {{sym_name = "total", element_type = f32, shape = array<i64: 8>}} : () -> ()
func.func @push(%m: index) attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %m) ({{
  ^bb0(%i: index):
    %c8 = arith.constant 8 : index
    %z = arith.constant 0 : index
    %c5 = arith.constant 5 : index
    %sq = arith.muli %i, %i : index
    %q = arith.divui %sq, %c5 : index
    %c = arith.remui %q, %c8 : index
    %ii = arith.index_cast %i : index to i32
    %v = arith.sitofp %ii : i32 to f32
    %k = "ds.append"(%v, %c, %z) {{field = @x}} : (f32, index, index) -> i32
    "ds.store"(%k, %i) {{field = @slot}} : (i32, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
func.func @lengths() attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({{
  ^bb0(%c: index):
    %z = arith.constant 0 : index
    %n = "ds.length"(%c, %z) {{field = @x}} : (index, index) -> i32
    "ds.store"(%n, %c) {{field = @n}} : (i32, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
func.func @sum() attributes {{ds.kernel}} {{
  "ds.struct_for"() ({{
  ^bb0(%c: index, %j: index):
    %v = "ds.load"(%c, %j) {{field = @x}} : (index, index) -> f32
    "ds.atomic_add"(%v, %c) {{field = @total}} : (f32, index) -> ()
    gpu.yield
  }}) {{field = @x}} : () -> ()
  return
}}
func.func @clear(%c: index) attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  "ds.parallel_for"(%c0, %c1) ({{
  ^bb0(%t: index):
    %z = arith.constant 0 : index
    "ds.deactivate"(%c, %z) {{field = @x}} : (index, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}"#
    )
}

#[test]
fn lists_append_count_iterate_and_clear_like_a_reference() {
    let kinds = ["dense", "pointer", "bitmasked"].into_iter().flat_map(|o| [(o, ""), (o, CHUNKS)]);
    for (outer, list) in kinds {
        let mut p = Program::new(&list_source(outer, list)).unwrap_or_else(|e| panic!("{outer}: {e}"));
        let outer = format!("{outer}{list}");
        let m = 40usize;
        p.launch("push", &[Arg::Index(m as i64)]).unwrap();
        let mut lists: Vec<Vec<f32>> = vec![Vec::new(); 8];
        for i in 0..m {
            lists[(i * i / 5) % 8].push(i as f32);
        }
        p.launch("lengths", &[]).unwrap();
        let n: Vec<i32> = p.field("n").unwrap().to_vec().unwrap();
        assert_eq!(n, lists.iter().map(|l| l.len() as i32).collect::<Vec<_>>(), "{outer}: lengths");
        let x: Vec<f32> = p.field("x").unwrap().to_vec().unwrap();
        let slots: Vec<i32> = p.field("slot").unwrap().to_vec().unwrap();
        for (c, list) in lists.iter().enumerate() {
            let mut got: Vec<f32> = x[c * 16..c * 16 + list.len()].to_vec();
            got.sort_by(f32::total_cmp);
            assert_eq!(&got, list, "{outer}: list {c}");
            assert!(x[c * 16 + list.len()..(c + 1) * 16].iter().all(|&v| v == 0.0), "{outer}: beyond the list's end");
            assert_eq!(p.field("x").unwrap().sparse().unwrap().length(&[c, 0]), list.len());
        }
        // Each append returned its element's position.
        for i in 0..m {
            assert_eq!(x[(i * i / 5) % 8 * 16 + slots[i] as usize], i as f32, "{outer}: append {i}");
        }
        p.launch("sum", &[]).unwrap();
        let total: Vec<f32> = p.field("total").unwrap().to_vec().unwrap();
        assert_eq!(total, lists.iter().map(|l| l.iter().sum()).collect::<Vec<f32>>(), "{outer}: struct_for over the lists");
        // Clearing one list: length 0, its cells 0 and inactive.
        p.launch("clear", &[Arg::Index(1)]).unwrap();
        p.launch("lengths", &[]).unwrap();
        assert_eq!(p.field("n").unwrap().get::<i32>(&[1]).unwrap(), 0, "{outer}");
        assert!(!p.field("x").unwrap().is_active(&[1, 0]).unwrap());
        assert_eq!(p.field("x").unwrap().get::<f32>(&[1, 0]).unwrap(), 0.0);
        // A host write past the end extends the list; the cells between read 0.
        p.field_mut("x").unwrap().set(&[1, 3], 9.0f32).unwrap();
        assert_eq!(p.field("x").unwrap().sparse().unwrap().length(&[1, 0]), 4);
        // A list over its 16 cells: a typed error, the list kept at 16.
        let err = p.launch("push", &[Arg::Index(200)]).unwrap_err();
        assert!(matches!(&err, Error::ListFull { node, capacity: 16, location: Some(_), .. } if node == "list"), "{outer}: {err}");
        p.launch("lengths", &[]).unwrap();
        assert!(p.field("n").unwrap().to_vec::<i32>().unwrap().iter().all(|&k| k <= 16), "{outer}");
    }
}

/// Lists growing in chunks of 4 cells (Taichi's `chunk_size`).
const CHUNKS: &str = ", chunk = 4 : i64";

/// The chunks lists of these lengths hold (their cells `[0, length)`).
fn chunks_for(lengths: &[i32]) -> usize {
    lengths.iter().map(|&n| (n as usize).div_ceil(4)).sum()
}

#[test]
fn chunked_lists_take_chunks_from_a_pool_as_they_grow() {
    // A pool of 10 chunks of 4 cells for 8 lists of 16: 40 of the 128 cells.
    let mut p = Program::new(&list_source("dense", ", chunk = 4 : i64, capacity = 10 : i64")).unwrap();
    let empty = p.field("x").unwrap().sparse_stats().unwrap();
    assert_eq!((empty.chunks, empty.chunk_capacity), (0, 10));
    assert_eq!(empty.bytes_reserved - empty.bytes_used, 10 * 4 * 4, "the data of the pool's chunks: {empty:?}");
    p.launch("push", &[Arg::Index(14)]).unwrap();
    p.launch("lengths", &[]).unwrap();
    let n: Vec<i32> = p.field("n").unwrap().to_vec().unwrap();
    let mut reference = vec![0i32; 8];
    for i in 0..14 {
        reference[(i * i / 5) % 8] += 1;
    }
    assert_eq!(n, reference);
    let stats = p.field("x").unwrap().sparse_stats().unwrap();
    assert_eq!(stats.chunks, chunks_for(&n), "{stats:?}");
    assert_eq!(stats.bytes_used - empty.bytes_used, stats.chunks * 4 * 4, "memory in use is the chunks': {stats:?}");
    // A write past a list's end takes the chunks up to it; the cells between read 0.
    p.field_mut("x").unwrap().set(&[7, 9], 2.5f32).unwrap();
    assert_eq!(p.field("x").unwrap().sparse().unwrap().length(&[7, 0]), 10);
    let mut lengths = n.clone();
    lengths[7] = 10;
    assert_eq!(p.field("x").unwrap().sparse_stats().unwrap().chunks, chunks_for(&lengths));
    assert_eq!(p.field("x").unwrap().get::<f32>(&[7, 8]).unwrap(), 0.0);
    assert_eq!(p.field("x").unwrap().get::<f32>(&[7, 9]).unwrap(), 2.5);
    // Appending until the pool is out of chunks: a typed error naming the list.
    let err = p.launch("push", &[Arg::Index(60)]).unwrap_err();
    assert!(matches!(&err, Error::PoolExhausted { node, capacity: 10, location: Some(_), .. } if node == "list"), "{err}");
    assert_eq!(p.field("x").unwrap().sparse_stats().unwrap().chunks, 10);
    // Clearing a list returns its chunks to the pool after the launch.
    p.launch("lengths", &[]).unwrap();
    let before: Vec<i32> = p.field("n").unwrap().to_vec().unwrap();
    p.launch("clear", &[Arg::Index(7)]).unwrap();
    let freed = chunks_for(&before[7..8]);
    assert!(freed > 0);
    assert_eq!(p.field("x").unwrap().sparse_stats().unwrap().chunks, 10 - freed);
    assert_eq!(p.field("x").unwrap().get::<f32>(&[7, 9]).unwrap(), 0.0, "a cleared list reads 0");
    // The chunks are reused, zeroed.
    p.field_mut("x").unwrap().set(&[3, 0], 1.0f32).unwrap();
    p.field_mut("x").unwrap().deactivate_all().unwrap();
    assert_eq!(p.field("x").unwrap().sparse_stats().unwrap().chunks, 0);
    p.launch("push", &[Arg::Index(14)]).unwrap();
    p.launch("lengths", &[]).unwrap();
    let x: Vec<f32> = p.field("x").unwrap().to_vec().unwrap();
    for c in 0..8 {
        assert!(x[c * 16 + reference[c] as usize..(c + 1) * 16].iter().all(|&v| v == 0.0), "list {c} beyond its end");
    }
}

/// from_dense writes one field of a tree: the others keep their values and
/// an adjoint's from_dense never changes the active set (a non-zero value
/// for an inactive cell is an error there, not an activation).
#[test]
fn from_dense_keeps_the_other_fields_of_the_tree() {
    for l in layouts().into_iter().filter(|l| !l.name.starts_with("dense_")) {
        let (layout, nodes) = (&l.name, &l.nodes);
        let mut p = Program::new(&grad_source(nodes)).unwrap();
        let mut x = vec![0f64; N];
        x[10] = 1.0;
        x[11] = 2.0;
        p.field_mut("x").unwrap().from_dense(&x).unwrap();
        let active = active_set(&p);
        let mut g = vec![0f64; N];
        g[10] = 0.5;
        p.field_mut("x_grad").unwrap().from_dense(&g).unwrap();
        assert_eq!(active_set(&p), active, "{layout}");
        assert_eq!(p.field("x").unwrap().to_vec::<f64>().unwrap(), x, "{layout}: x kept");
        assert_eq!(p.field("x_grad").unwrap().to_vec::<f64>().unwrap(), g, "{layout}");
        g[40] = 1.0;
        let err = p.field_mut("x_grad").unwrap().from_dense(&g).unwrap_err();
        assert!(matches!(err, Error::Sparse { .. }), "{layout}: {err}");
        assert_eq!(active_set(&p), active, "{layout}");
    }
}
