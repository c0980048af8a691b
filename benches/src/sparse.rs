//! `ds-bench sparse`: a five-point stencil over the active cells of a
//! 1024^2 f32 field about 2% active (a band of 21 rows), stored as a pointer
//! node of 64x64 blocks of 16x16 cells (pool: 256 blocks) against the same
//! kernel over the same data stored densely, in the same run. Both programs
//! compute the same `v` (checked); the sparse one visits the allocated
//! blocks only (the pool's list: O(active blocks), not O(pointer cells)). Memory is every buffer each program allocates for its fields (the
//! sparse one: data pools, pointer table, pool bookkeeping). Headlines:
//! `sparse_memory_ratio_vs_dense`, then `sparse_time_ratio_vs_dense`.

use crate::cases::{median, time};
use ds_runtime::{Error, Program};

const N: usize = 1024;
const BAND: std::ops::Range<usize> = 500..521;

fn source(sparse: bool) -> String {
    let (nodes, place) = if sparse {
        (
            r#""ds.pointer"() {sym_name = "blocks", shape = array<i64: 64, 64>, capacity = 256 : i64} : () -> ()
"ds.dense"() {sym_name = "cells", shape = array<i64: 16, 16>, parent = @blocks} : () -> ()
"#,
            ", layout = @cells",
        )
    } else {
        ("", "")
    };
    format!(
        r#"{nodes}"ds.field"() {{sym_name = "u", element_type = f32, shape = array<i64: {N}, {N}>{place}}} : () -> ()
"ds.field"() {{sym_name = "v", element_type = f32, shape = array<i64: {N}, {N}>{place}}} : () -> ()
func.func @laplace() attributes {{ds.kernel}} {{
  "ds.struct_for"() ({{
  ^bb0(%i: index, %j: index):
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %cn = arith.constant {last} : index
    %a = arith.subi %i, %c1 : index
    %im = arith.maxsi %a, %c0 : index
    %b = arith.addi %i, %c1 : index
    %ip = arith.minsi %b, %cn : index
    %c = arith.subi %j, %c1 : index
    %jm = arith.maxsi %c, %c0 : index
    %d = arith.addi %j, %c1 : index
    %jp = arith.minsi %d, %cn : index
    %x = "ds.load"(%i, %j) {{field = @u}} : (index, index) -> f32
    %n = "ds.load"(%im, %j) {{field = @u}} : (index, index) -> f32
    %s = "ds.load"(%ip, %j) {{field = @u}} : (index, index) -> f32
    %w = "ds.load"(%i, %jm) {{field = @u}} : (index, index) -> f32
    %e = "ds.load"(%i, %jp) {{field = @u}} : (index, index) -> f32
    %s1 = arith.addf %n, %s : f32
    %s2 = arith.addf %w, %e : f32
    %s3 = arith.addf %s1, %s2 : f32
    %four = arith.constant 4.0 : f32
    %x4 = arith.mulf %x, %four : f32
    %l = arith.subf %s3, %x4 : f32
    "ds.store"(%l, %i, %j) {{field = @v}} : (f32, index, index) -> ()
    gpu.yield
  }}) {{field = @u}} : () -> ()
  return
}}"#,
        last = N - 1
    )
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
