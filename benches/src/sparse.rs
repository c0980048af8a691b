//! `ds-bench sparse`: a five-point stencil over the active cells of a
//! 1024^2 f32 field about 2% active (a band of 21 rows), stored as a pointer
//! node of 64x64 blocks of 16x16 cells (pool: 256 blocks) against the same
//! kernel over the same data stored densely, in the same run. Both programs
//! compute the same `v` (checked); the sparse one visits the allocated
//! blocks only (the pool's list: O(active blocks), not O(pointer cells)). Memory is every buffer each program allocates for its fields (the
//! sparse one: data pools, pointer table, pool bookkeeping). Headlines:
//! `sparse_memory_ratio_vs_dense`, then `sparse_time_ratio_vs_dense`.

use crate::cases::{median, time};
use ds_runtime::sparse::laplace_source;
use ds_runtime::{Error, Program};

const N: usize = 1024;
const BAND: std::ops::Range<usize> = 500..521;

/// The stencil over the sparse layout (a pointer of 64x64 blocks of 16x16
/// cells, a pool of 256) or the dense one (`ds_runtime::sparse::laplace_source`).
fn source(sparse: bool) -> String {
    const NODES: &str = r#""ds.pointer"() {sym_name = "blocks", shape = array<i64: 64, 64>, capacity = 256 : i64} : () -> ()
"ds.dense"() {sym_name = "cells", shape = array<i64: 16, 16>, parent = @blocks} : () -> ()"#;
    if sparse { laplace_source(N, NODES, Some("cells")) } else { laplace_source(N, "", None) }
}

pub fn run() -> Result<(), Error> {
    let mut u = vec![0f32; N * N];
    for i in BAND {
        for j in 0..N {
            u[i * N + j] = 1.0 + ((i * 31 + j * 17) % 97) as f32 / 97.0;
        }
    }
    let mut dense = Program::new(&source(false))?;
    let mut sparse = Program::new(&source(true))?;
    dense.field_mut("u")?.copy_from(&u)?;
    sparse.field_mut("u")?.from_dense(&u)?;
    let (mut ts, mut td) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        td.push(time(|| dense.launch("laplace", &[]).expect("dense launch")));
        ts.push(time(|| sparse.launch("laplace", &[]).expect("sparse launch")));
    }
    let vd: Vec<f32> = dense.field("v")?.to_vec()?;
    let vs: Vec<f32> = sparse.field("v")?.to_vec()?;
    assert!(vd == vs, "the sparse and dense stencils differ");
    let bytes = |p: &Program| p.buffer_infos().iter().map(|b| b.bytes).sum::<usize>();
    let (bd, bs) = (bytes(&dense), bytes(&sparse));
    let stats = sparse.field("u")?.sparse_stats()?;
    let (d, s) = (median(td), median(ts));
    println!("cells: {}", N * N);
    println!("active_cells: {}", stats.active_cells);
    println!("active_fraction_of_band: {:.4}", (BAND.len() * N) as f64 / (N * N) as f64);
    println!("active_fraction_of_cells: {:.4}", stats.occupancy());
    println!("blocks_allocated: {} of {} (pool)", stats.blocks, stats.capacity);
    // The struct_for runs over the pool's list of allocated blocks, not over every pointer cell.
    let listed = sparse.sparse_trees().first().map_or(0, |t| t.listed_blocks());
    println!("struct_for_blocks_visited: {listed} of {} pointer cells", (N / 16) * (N / 16));
    println!("dense_bytes: {bd}");
    println!("sparse_bytes: {bs}");
    println!("sparse_bytes_in_use_by_u: {}", stats.bytes_used);
    println!("threads: {}", rayon::current_num_threads());
    println!("dense_ms: {:.3}", d * 1e3);
    println!("sparse_ms: {:.3}", s * 1e3);
    println!("sparse_memory_ratio_vs_dense: {:.4}", bs as f64 / bd as f64);
    println!("sparse_time_ratio_vs_dense: {:.4}", s / d);
    Ok(())
}
