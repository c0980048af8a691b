//! Sparse layouts from Rust, Taichi's way: `pb.root().pointer([4, 4]).dense([4, 4]).place(..)`,
//! `pb.root().bitmasked(..)` and three-level chains (`.pointer(..).pointer(..).dense(..)`,
//! `.dense(..).pointer(..).dense(..)`), kernels writing (and so activating) cells,
//! `activate` / `deactivate` / `is_active`, `for (i, j) in x.active()` over
//! the active cells, host statistics and dense arrays, and gradients of a
//! struct-for kernel equal to the dense layout's, with the active set left
//! as it was.

use diffsim::prelude::*;
use diffsim::{Binomial, Policy, StoreAll};

const N: usize = 16;
type V2 = [f64; 2];

/// Writes a blob of radius 3 around (5, 9): u = 1 + i/10, vel = (i, j)/10.
#[kernel]
fn seed(u: &GradField<f64, 2>, vel: &GradField<V2, 2>) {
    for i in 0..N {
        for j in 0..N {
            let di = i as f64 - 5.0;
            let dj = j as f64 - 9.0;
            if di * di + dj * dj <= 9.0 {
                u[(i, j)] = i as f64 * 0.1 + 1.0;
                vel[(i, j)] = Vector([i as f64 * 0.1, j as f64 * 0.1]);
            }
        }
    }
}

/// loss = sum over active cells of u^2 * (1 + |vel|^2) + u * u_right.
#[kernel]
fn energy(u: &GradField<f64, 2>, vel: &GradField<V2, 2>, loss: &GradField<f64, 0>) {
    for (i, j) in u.active() {
        let x = u[(i, j)];
        let right = u[(i, min(j + 1, N - 1))];
        loss[()] += x * x * (vel[(i, j)].norm_sqr() + 1.0) + x * right;
    }
}

/// Counts the active cells (a struct-for of a vector field binds its cells).
#[kernel(no_grad)]
fn count(vel: &GradField<V2, 2>, n: &ScalarField<i32, 0>) {
    for (i, j) in vel.active() {
        let one = 1 + 0 * (i + j) as i32;
        n[()] += one;
    }
}

/// Activates (2, 2), deactivates (5, 9), and records is_active of every cell.
#[kernel(no_grad)]
fn toggle(u: &GradField<f64, 2>, flags: &ScalarField<i32, 2>) {
    for t in 0..1 {
        activate(u, (2 + t, 2));
        deactivate(u, (5, 9 + t));
    }
}

#[kernel(no_grad)]
fn probe(u: &GradField<f64, 2>, flags: &ScalarField<i32, 2>) {
    for i in 0..N {
        for j in 0..N {
            flags[(i, j)] = select(is_active(u, (i, j)), 1, 0);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tree {
    Dense,
    PointerDense,
    PointerBitmasked,
    Bitmasked,
    /// Three levels: pointers of pointers of dense 4x4 blocks.
    PointerPointerDense,
    /// A pointer between dense levels.
    DensePointerDense,
}

impl Tree {
    /// Whether the innermost sparse node holds dense 4x4 blocks (written,
    /// activated and deactivated whole).
    fn whole_blocks(self) -> bool {
        matches!(self, Tree::PointerDense | Tree::PointerPointerDense | Tree::DensePointerDense)
    }
}

struct Sim {
    p: Program,
    u: GradField<f64, 2>,
    vel: GradField<V2, 2>,
    loss: GradField<f64, 0>,
    n: ScalarField<i32, 0>,
    flags: ScalarField<i32, 2>,
    /// seed, energy, count, and for sparse trees toggle and probe.
    kernels: Vec<Kernel<()>>,
}

fn sim(tree: Tree) -> Sim {
    let mut pb = ProgramBuilder::new();
    let u = pb.field_with_grad("u", [N, N]);
    let vel = pb.field_with_grad("vel", [N, N]);
    let loss = pb.field_with_grad("loss", []);
    let n = pb.field("n", []);
    let flags = pb.field("flags", [N, N]);
    match tree {
        Tree::Dense => {}
        Tree::PointerDense => pb.root().pointer([4, 4]).dense([4, 4]).place((&u, &vel)),
        Tree::PointerBitmasked => pb.root().pointer([4, 4]).capacity(8).bitmasked([4, 4]).place((&u, &vel)),
        Tree::Bitmasked => pb.root().bitmasked([N, N]).place((&u, &vel)),
        Tree::PointerPointerDense => pb.root().pointer([2, 2]).pointer([2, 2]).capacity(8).dense([4, 4]).place((&u, &vel)),
        Tree::DensePointerDense => pb.root().dense([2, 2]).pointer([2, 2]).dense([4, 4]).place((&u, &vel)),
    }
    let mut kernels =
        vec![pb.kernel(seed(&u, &vel)).unwrap(), pb.kernel(energy(&u, &vel, &loss)).unwrap(), pb.kernel(count(&vel, &n)).unwrap()];
    if tree != Tree::Dense {
        // activate and deactivate of a dense field are build errors.
        kernels.extend([pb.kernel(toggle(&u, &flags)).unwrap(), pb.kernel(probe(&u, &flags)).unwrap()]);
    }
    Sim { p: pb.build().unwrap_or_else(|e| panic!("{tree:?}: {e}")), u, vel, loss, n, flags, kernels }
}

fn blob() -> Vec<[usize; 2]> {
    let mut cells = Vec::new();
    for i in 0..N {
        for j in 0..N {
            let (di, dj) = (i as f64 - 5.0, j as f64 - 9.0);
            if di * di + dj * dj <= 9.0 {
                cells.push([i, j]);
            }
        }
    }
    cells
}

const SPARSE: [Tree; 5] = [Tree::PointerDense, Tree::PointerBitmasked, Tree::Bitmasked, Tree::PointerPointerDense, Tree::DensePointerDense];

#[test]
fn sparse_layouts_compute_the_dense_loss_and_gradients_over_active_cells() {
    let run = |tree: Tree| {
        let mut s = sim(tree);
        let [seed, energy, count, ..] = &s.kernels[..] else { unreachable!() };
        seed.launch(&mut s.p, ()).unwrap();
        energy.launch(&mut s.p, ()).unwrap();
        count.launch(&mut s.p, ()).unwrap();
        let loss = s.loss.get(&s.p, []).unwrap();
        let active = s.u.active_cells(&s.p).unwrap();
        s.loss.grad().set(&mut s.p, [], 1.0).unwrap();
        energy.grad(&mut s.p, ()).unwrap();
        assert_eq!(s.u.active_cells(&s.p).unwrap(), active, "{tree:?}: the grad kernel changed the active set");
        let (gu, gv) = (s.u.grad().to_vec(&s.p).unwrap(), s.vel.grad().to_vec(&s.p).unwrap());
        (loss, active, s.n.get(&s.p, []).unwrap(), gu, gv, s.u.to_vec(&s.p).unwrap())
    };
    let (loss_d, _, count_d, gu_d, gv_d, u_d) = run(Tree::Dense);
    assert_eq!(count_d, (N * N) as i32, "a dense struct-for visits every cell");
    let blob = blob();
    for tree in SPARSE {
        let (loss, active, count, gu, gv, u) = run(tree);
        assert_eq!(u, u_d, "{tree:?}: inactive cells read 0");
        assert!((loss - loss_d).abs() <= 1e-12 * loss_d.abs(), "{tree:?}: {loss} vs {loss_d}");
        assert_eq!(count as usize, active.len(), "{tree:?}");
        if tree.whole_blocks() {
            // Whole 4x4 blocks around the blob.
            assert!(active.len() > blob.len() && active.len() % 16 == 0, "{tree:?}: {}", active.len());
        } else {
            let mut sorted = active.clone();
            sorted.sort();
            assert_eq!(sorted, blob, "{tree:?}: exactly the written cells");
        }
        for k in 0..N * N {
            let cell = [k / N, k % N];
            if active.contains(&cell) {
                assert!((gu[k] - gu_d[k]).abs() <= 1e-12 * (1.0 + gu_d[k].abs()), "{tree:?} {cell:?}: {} vs {}", gu[k], gu_d[k]);
                assert_eq!(gv[k], gv_d[k], "{tree:?} {cell:?}");
            } else {
                assert_eq!((gu[k], gv[k]), (0.0, [0.0, 0.0]), "{tree:?} {cell:?}: gradients live on active cells");
            }
        }
    }
}

#[test]
fn activity_ops_in_kernels_and_on_the_host() {
    for tree in SPARSE {
        let mut s = sim(tree);
        let [seed, _, _, toggle, probe] = &s.kernels[..] else { unreachable!() };
        seed.launch(&mut s.p, ()).unwrap();
        let before = s.u.active_cells(&s.p).unwrap();
        toggle.launch(&mut s.p, ()).unwrap();
        probe.launch(&mut s.p, ()).unwrap();
        let flags = s.flags.to_vec(&s.p).unwrap();
        let active = s.u.active_cells(&s.p).unwrap();
        for (k, &flag) in flags.iter().enumerate() {
            let cell = [k / N, k % N];
            assert_eq!(flag == 1, active.contains(&cell), "{tree:?} {cell:?}: is_active in a kernel and on the host");
            assert_eq!(s.u.is_active_cell(&s.p, cell).unwrap(), active.contains(&cell));
        }
        assert!(s.u.is_active_cell(&s.p, [2, 2]).unwrap(), "{tree:?}");
        assert!(!s.u.is_active_cell(&s.p, [5, 9]).unwrap(), "{tree:?}");
        assert_eq!(s.u.get(&s.p, [5, 9]).unwrap(), 0.0, "{tree:?}: deactivated cells read 0");
        assert_eq!(s.vel.get(&s.p, [5, 9]).unwrap(), [0.0, 0.0], "{tree:?}: every field of the cell");
        if tree.whole_blocks() {
            // Deactivating a cell of a dense block releases the whole block.
            assert!(active.iter().all(|c| (c[0] / 4, c[1] / 4) != (1, 2)), "{tree:?}");
        } else {
            assert_eq!(active.len(), before.len(), "{tree:?}: one on, one off");
        }
        let stats = s.u.sparse_stats(&s.p).unwrap();
        assert_eq!(stats.active_cells, active.len());
        assert!(stats.bytes_used <= stats.bytes_reserved);
        // Host: activation, deactivate_all, dense arrays.
        s.u.activate_cell(&mut s.p, [15, 0]).unwrap();
        assert!(s.u.is_active_cell(&s.p, [15, 0]).unwrap());
        s.u.deactivate_cell(&mut s.p, [15, 0]).unwrap();
        assert!(!s.u.is_active_cell(&s.p, [15, 0]).unwrap());
        s.u.deactivate_all(&mut s.p).unwrap();
        assert!(s.u.active_cells(&s.p).unwrap().is_empty());
        let mut dense = vec![0.0; N * N];
        dense[3 * N + 7] = 2.5;
        s.u.from_dense(&mut s.p, &dense).unwrap();
        assert_eq!(s.u.to_vec(&s.p).unwrap(), dense, "{tree:?}");
        assert!(s.u.is_active_cell(&s.p, [3, 7]).unwrap());
    }
    // On a dense field: typed errors, every cell active; in a kernel, a located build error.
    let mut s = sim(Tree::Dense);
    assert!(matches!(s.u.activate_cell(&mut s.p, [0, 0]), Err(Error::Sparse { .. })));
    assert!(s.u.is_active_cell(&s.p, [0, 0]).unwrap());
    let mut pb = ProgramBuilder::new();
    let (u, flags) = (pb.field_with_grad("u", [N, N]), pb.field("flags", [N, N]));
    pb.kernel(toggle(&u, &flags)).unwrap();
    let err = pb.build().err().expect("activate of a dense field");
    let text = err.to_string();
    assert!(text.contains("sparse.rs:") && text.contains("ds.activate of @u: the field is not placed under a sparse"), "{text}");
}

#[test]
fn a_small_pool_is_a_typed_error_at_the_kernel() {
    // Capacity 8 blocks of 4x4: the blob needs fewer; the whole grid needs 16.
    #[kernel(no_grad)]
    fn fill_all(u: &GradField<f64, 2>) {
        for i in 0..N {
            for j in 0..N {
                u[(i, j)] = 1.0;
            }
        }
    }
    let mut pb = ProgramBuilder::new();
    let u = pb.field_with_grad("u", [N, N]);
    pb.root().pointer([4, 4]).capacity(8).dense([4, 4]).place(&u);
    let k = pb.kernel(fill_all(&u)).unwrap();
    let mut p = pb.build().unwrap();
    match k.launch(&mut p, ()) {
        Err(Error::PoolExhausted { capacity: 8, location: Some(at), .. }) => assert!(at.file.ends_with("sparse.rs"), "{at:?}"),
        other => panic!("expected PoolExhausted, got {other:?}"),
    }
    assert_eq!(u.sparse_stats(&p).unwrap().blocks, 8);
}

/// Particles binned into per-cell lists (`pb.root().dense([8, 1]).dynamic([1, 32])`):
/// `append` in a kernel, `length`, a struct-for over the lists' elements.
#[kernel(no_grad)]
fn bin(px: &ScalarField<f32, 1>, ids: &ScalarField<i32, 2>, count: &ScalarField<i32, 1>) {
    for p in 0..100 {
        let cell = (px[(p,)] * 8.0) as usize;
        // The position taken: one less than the length just after it.
        let k = append(ids, (cell, 0), p as i32);
        count[(cell,)] = max(count[(cell,)], k + 1);
    }
}

#[kernel(no_grad)]
fn sum_bins(ids: &ScalarField<i32, 2>, sums: &ScalarField<i32, 1>) {
    for (c, j) in ids.active() {
        sums[(c,)] += ids[(c, j)];
    }
}

#[kernel(no_grad)]
fn lengths(ids: &ScalarField<i32, 2>, n: &ScalarField<i32, 1>) {
    for c in 0..8 {
        n[(c,)] = length(ids, (c, 0));
    }
}

#[test]
fn particles_binned_into_lists() {
    particles_binned(None);
    // Lists growing in chunks of 8 (Taichi's dynamic(..., chunk_size=8)).
    particles_binned(Some(8));
}

fn particles_binned(chunk: Option<usize>) {
    let mut pb = ProgramBuilder::new();
    let px: ScalarField<f32, 1> = pb.field("px", [100]);
    let ids: ScalarField<i32, 2> = pb.field("ids", [8, 32]);
    let (count, sums): (ScalarField<i32, 1>, ScalarField<i32, 1>) = (pb.field("count", [8]), pb.field("sums", [8]));
    match chunk {
        None => pb.root().dense([8, 1]).dynamic([1, 32]).place(&ids),
        Some(c) => pb.root().dense([8, 1]).dynamic([1, 32]).chunk(c).place(&ids),
    }
    let n: ScalarField<i32, 1> = pb.field("n", [8]);
    let (k_bin, k_sum, k_len) =
        (pb.kernel(bin(&px, &ids, &count)).unwrap(), pb.kernel(sum_bins(&ids, &sums)).unwrap(), pb.kernel(lengths(&ids, &n)).unwrap());
    let mut p = pb.build().unwrap();
    let xs: Vec<f32> = (0..100).map(|i| ((i * 37 % 100) as f32 / 100.0).powf(1.5)).collect();
    px.copy_from(&mut p, &xs).unwrap();
    k_bin.launch(&mut p, ()).unwrap();
    k_sum.launch(&mut p, ()).unwrap();
    k_len.launch(&mut p, ()).unwrap();
    let mut bins = vec![Vec::new(); 8];
    for (i, &x) in xs.iter().enumerate() {
        bins[(x * 8.0) as usize].push(i as i32);
    }
    let sizes: Vec<i32> = bins.iter().map(|b| b.len() as i32).collect();
    assert_eq!(count.to_vec(&p).unwrap(), sizes, "the largest position taken + 1");
    assert_eq!(n.to_vec(&p).unwrap(), sizes, "length");
    assert_eq!(sums.to_vec(&p).unwrap(), bins.iter().map(|b| b.iter().sum()).collect::<Vec<i32>>());
    let all = ids.to_vec(&p).unwrap();
    for (c, b) in bins.iter().enumerate() {
        let mut got = all[c * 32..c * 32 + b.len()].to_vec();
        got.sort();
        assert_eq!(&got, b, "bin {c}");
    }
    assert_eq!(ids.active_cells(&p).unwrap().len(), 100);
    let stats = ids.sparse_stats(&p).unwrap();
    match chunk {
        Some(c) => {
            let taken: usize = bins.iter().map(|b| b.len().div_ceil(c)).sum();
            assert_eq!((stats.chunks, stats.chunk_capacity), (taken, 8 * 32 / c), "{stats:?}");
            assert!(stats.bytes_used < stats.bytes_reserved, "{stats:?}");
        }
        None => assert_eq!((stats.chunks, stats.chunk_capacity), (0, 0)),
    }
}

/// A sparse state checkpointed by a state-keeping recording: `u` (32 cells
/// under a pointer of 8 blocks of 4) takes from its left neighbour
/// each step, is copied back, and its leftmost block dies (`prune`), so the
/// active set changes every step; the Tape restores `u`'s tree (blocks,
/// pool, list) from its snapshots.
const M: usize = 32;

#[kernel]
fn relax(u: &GradField<f64, 1>, w: &GradField<f64, 1>, tmp: &GradField<f64, 1>) {
    for (i,) in u.active() {
        let left = u[(max(i, 1) - 1,)];
        tmp[(i,)] = u[(i,)] * w[(i,)] + 0.5 * left * left;
    }
}

#[kernel]
fn commit(tmp: &GradField<f64, 1>, u: &GradField<f64, 1>) {
    for (i,) in u.active() {
        u[(i,)] = tmp[(i,)];
    }
}

/// Deactivates block `t` (cells 4t .. 4t + 3).
#[kernel]
fn prune(u: &GradField<f64, 1>, t: usize) {
    for k in 0..1 {
        deactivate(u, 4 * t + k);
    }
}

#[kernel]
fn total_square(u: &GradField<f64, 1>, loss: &GradField<f64, 0>) {
    for (i,) in u.active() {
        loss[()] += u[(i,)] * u[(i,)];
    }
}

struct Front {
    p: Program,
    u: GradField<f64, 1>,
    w: GradField<f64, 1>,
    loss: GradField<f64, 0>,
    kernels: [Kernel<()>; 3],
    prune: Kernel<usize>,
}

fn front() -> Front {
    let mut pb = ProgramBuilder::new();
    let u = pb.field_with_grad("u", [M]);
    let w = pb.field_with_grad("w", [M]);
    let tmp = pb.field_with_grad("tmp", [M]);
    let loss = pb.field_with_grad("loss", []);
    pb.root().pointer([8]).dense([4]).place(&u);
    let kernels = [pb.kernel(relax(&u, &w, &tmp)).unwrap(), pb.kernel(commit(&tmp, &u)).unwrap(), pb.kernel(total_square(&u, &loss)).unwrap()];
    let prune = pb.kernel(prune(&u)).unwrap();
    let p = pb.build().unwrap();
    Front { p, u, w, loss, kernels, prune }
}

const STEPS: usize = 4;

/// The loss of `u0` and `w0` after STEPS steps (no recording), with the blocks of u per step.
fn front_loss(u0: &[f64], w0: &[f64]) -> (f64, Vec<usize>) {
    let mut f = front();
    f.u.from_dense(&mut f.p, u0).unwrap();
    f.w.copy_from(&mut f.p, w0).unwrap();
    let mut blocks = Vec::new();
    for t in 0..STEPS {
        f.kernels[0].launch(&mut f.p, ()).unwrap();
        f.kernels[1].launch(&mut f.p, ()).unwrap();
        f.prune.launch(&mut f.p, t).unwrap();
        blocks.push(f.u.sparse_stats(&f.p).unwrap().blocks);
    }
    f.kernels[2].launch(&mut f.p, ()).unwrap();
    (f.loss.get(&f.p, []).unwrap(), blocks)
}

#[test]
fn a_checkpointed_recording_restores_sparse_state_and_its_gradient_matches_finite_differences() {
    let u0: Vec<f64> = (0..M).map(|i| 0.3 + 0.02 * i as f64).collect();
    let w0: Vec<f64> = (0..M).map(|i| 0.8 - 0.01 * i as f64).collect();
    let (loss0, blocks) = front_loss(&u0, &w0);
    assert_eq!(blocks, vec![7, 6, 5, 4], "a block dies each step");
    for policy in [&StoreAll as &dyn Policy, &Binomial { snapshots: 2 }] {
        let mut f = front();
        f.u.from_dense(&mut f.p, &u0).unwrap();
        f.w.copy_from(&mut f.p, &w0).unwrap();
        let mut rec = f.p.record();
        for t in 0..STEPS {
            rec.launch(&f.kernels[0], ()).unwrap();
            rec.launch(&f.kernels[1], ()).unwrap();
            rec.launch(&f.prune, t).unwrap();
            rec.end_step();
        }
        rec.launch(&f.kernels[2], ()).unwrap();
        assert_eq!(f.loss.get(rec.program(), []).unwrap(), loss0);
        let plan = rec.backward_with_policy(&f.loss, policy).unwrap().expect("a checkpointed backward");
        assert!(plan.snapshots > 0, "{plan}");
        let (gu, gw) = (f.u.grad().to_vec(&f.p).unwrap(), f.w.grad().to_vec(&f.p).unwrap());
        // Central differences in f64 against the unrecorded run.
        let eps = 1e-6;
        for k in [0, 5, 12, 13, 15, 22, 31] {
            let fd = |du: bool| {
                let (mut up, mut wp) = (u0.clone(), w0.clone());
                let (mut um, mut wm) = (u0.clone(), w0.clone());
                if du {
                    (up[k], um[k]) = (u0[k] + eps, u0[k] - eps);
                } else {
                    (wp[k], wm[k]) = (w0[k] + eps, w0[k] - eps);
                }
                (front_loss(&up, &wp).0 - front_loss(&um, &wm).0) / (2.0 * eps)
            };
            let (fu, fw) = (fd(true), fd(false));
            assert!((gu[k] - fu).abs() <= 1e-6 * (1.0 + fu.abs()), "{}: du[{k}] {} vs {fu}", policy.name(), gu[k]);
            assert!((gw[k] - fw).abs() <= 1e-6 * (1.0 + fw.abs()), "{}: dw[{k}] {} vs {fw}", policy.name(), gw[k]);
        }
        // The gradient reaches cells of a block that died (block 3, at the
        // last step: their values fed the living ones).
        assert!(gu[12] != 0.0, "{gu:?}");
    }
}

/// Writes block `t + 2` of `u` from `w` (activating it: the active set grows).
#[kernel]
fn grow(u: &GradField<f64, 1>, w: &GradField<f64, 1>, t: usize) {
    for k in 0..4 {
        u[(4 * t + 8 + k,)] = w[(k,)];
    }
}

/// A checkpoint restored under a gradient living on a cell activated after
/// it: the Tape cannot hold that gradient across the restore, and says so
/// (never a wrong gradient).
#[test]
fn a_checkpoint_under_a_gradient_on_a_later_cell_is_a_typed_error() {
    let mut pb = ProgramBuilder::new();
    let u = pb.field_with_grad("u", [M]);
    let w = pb.field_with_grad("w", [M]);
    let tmp = pb.field_with_grad("tmp", [M]);
    let loss = pb.field_with_grad("loss", []);
    pb.root().pointer([8]).dense([4]).place(&u);
    let (k_relax, k_commit, k_loss) =
        (pb.kernel(relax(&u, &w, &tmp)).unwrap(), pb.kernel(commit(&tmp, &u)).unwrap(), pb.kernel(total_square(&u, &loss)).unwrap());
    let k_grow = pb.kernel(grow(&u, &w)).unwrap();
    let mut p = pb.build().unwrap();
    let dense: Vec<f64> = (0..M).map(|i| if i < 8 { 0.5 } else { 0.0 }).collect();
    u.from_dense(&mut p, &dense).unwrap();
    w.copy_from(&mut p, &vec![0.9; M]).unwrap();
    let mut rec = p.record();
    for t in 0..3 {
        rec.launch(&k_relax, ()).unwrap();
        rec.launch(&k_commit, ()).unwrap();
        rec.launch(&k_grow, t).unwrap();
        rec.end_step();
    }
    rec.launch(&k_loss, ()).unwrap();
    match rec.backward_with_policy(&loss, &StoreAll) {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("u_grad") && text.contains("would drop this gradient"), "{text}");
        }
        Ok(plan) => panic!("expected the lost gradient to be reported, got {plan:?}"),
    }
}
