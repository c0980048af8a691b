//! `ds-bench sparse`: a five-point stencil over the active cells of a
//! 1024^2 f32 field about 2% active (a band of 21 rows), stored as a pointer
//! node of 64x64 blocks of 16x16 cells (pool: 256 blocks) against the same
//! kernel over the same data stored densely, in the same run. Both programs
//! compute the same `v` (checked); the sparse one visits the allocated
//! blocks only (the pool's list: O(active blocks), not O(pointer cells)). Memory is every buffer each program allocates for its fields (the
//! sparse one: data pools, pointer table, pool bookkeeping). Headlines:
//! `sparse_memory_ratio_vs_dense`, then `sparse_time_ratio_vs_dense`.
//! With `--arch cuda` both programs run on GPU 0 (each launch timed to its
//! end; the sparse one's includes reading the pool's counters back).

use crate::cases::{median, time};
use ds_runtime::cuda::CudaProgram;
use ds_runtime::sparse::laplace_source;
use ds_runtime::{Backend, Error, Program};

const N: usize = 1024;
const BAND: std::ops::Range<usize> = 500..521;

/// The stencil over the sparse layout (a pointer of 64x64 blocks of 16x16
/// cells, a pool of 256) or the dense one (`ds_runtime::sparse::laplace_source`).
fn source(sparse: bool) -> String {
    const NODES: &str = r#""ds.pointer"() {sym_name = "blocks", shape = array<i64: 64, 64>, capacity = 256 : i64} : () -> ()
"ds.dense"() {sym_name = "cells", shape = array<i64: 16, 16>, parent = @blocks} : () -> ()"#;
    if sparse { laplace_source(N, NODES, Some("cells")) } else { laplace_source(N, "", None) }
}

pub fn run(arch: &str) -> Result<(), Error> {
    match arch {
        "cuda" => compare(|source| CudaProgram::new(source, "sparse", &Default::default()), "arch: cuda"),
        _ => compare(Program::new, &format!("threads: {}", rayon::current_num_threads())),
    }
}

/// The benchmark on programs `build` makes (`runs_on`: the line saying where).
fn compare<B: Backend>(build: impl Fn(&str) -> Result<B, Error>, runs_on: &str) -> Result<(), Error> {
    let mut u = vec![0f32; N * N];
    for i in BAND {
        for j in 0..N {
            u[i * N + j] = 1.0 + ((i * 31 + j * 17) % 97) as f32 / 97.0;
        }
    }
    let mut dense = build(&source(false))?;
    let mut sparse = build(&source(true))?;
    let (ud, us) = (dense.field_index("u")?, sparse.field_index("u")?);
    dense.write(ud, 0, &u)?;
    sparse.sparse_field_mut(us)?.from_dense(&u)?;
    let launch = |p: &mut B| p.launch("laplace", &[]).and_then(|_| p.synchronize());
    launch(&mut dense)?;
    launch(&mut sparse)?;
    let (mut ts, mut td) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        td.push(time(|| launch(&mut dense).expect("dense launch")));
        ts.push(time(|| launch(&mut sparse).expect("sparse launch")));
    }
    let v = |p: &B| -> Result<Vec<f32>, Error> {
        let mut out = vec![0f32; N * N];
        p.read(p.field_index("v")?, 0, &mut out)?;
        Ok(out)
    };
    // The same arithmetic on the same target: equal to the bit.
    if v(&dense)? != v(&sparse)? {
        return Err(Error::Internal("the sparse and dense stencils differ".into()));
    }
    let bytes = |p: &B| p.buffer_infos().iter().map(|b| b.bytes).sum::<usize>();
    let (bd, bs) = (bytes(&dense), bytes(&sparse));
    let stats = sparse.sparse_field(us)?.sparse_stats()?;
    let (d, s) = (median(td), median(ts));
    println!("cells: {}", N * N);
    println!("active_cells: {}", stats.active_cells);
    println!("active_fraction_of_band: {:.4}", (BAND.len() * N) as f64 / (N * N) as f64);
    println!("active_fraction_of_cells: {:.4}", stats.occupancy());
    println!("blocks_allocated: {} of {} (pool)", stats.blocks, stats.capacity);
    // The struct_for runs over the pool's list of allocated blocks, not over every pointer cell.
    let listed = sparse.sparse_field(us)?.sparse().map_or(0, |t| t.listed_blocks());
    println!("struct_for_blocks_visited: {listed} of {} pointer cells", (N / 16) * (N / 16));
    println!("dense_bytes: {bd}");
    println!("sparse_bytes: {bs}");
    println!("sparse_bytes_in_use_by_u: {}", stats.bytes_used);
    println!("{runs_on}");
    println!("dense_ms: {:.3}", d * 1e3);
    println!("sparse_ms: {:.3}", s * 1e3);
    println!("sparse_memory_ratio_vs_dense: {:.4}", bs as f64 / bd as f64);
    println!("sparse_time_ratio_vs_dense: {:.4}", s / d);
    Ok(())
}
