//! `convert-ds-to-gpu`: task functions become GPU kernels.
//!
//! Input: a module after `ds-lower-parallel-cpu` and `convert-ds-to-scf` (task
//! functions whose fields are memref arguments; see `abi`). Output: the module
//! gets `gpu.container_module` and a `gpu.module @ds_kernels` holding one
//! `gpu.func ... kernel` per task, with the task's exact argument list (so the
//! runtime passes the same arguments in the same order); the range functions
//! stay on the host. A parallel task's loop over `[begin, end)` becomes one
//! thread per iteration: `i = begin + block_id.x * block_dim.x + thread_id.x`,
//! guarded by `i < end` (the runtime launches ceil((end - begin) / block)
//! blocks). A serial task runs on a single thread.
//!
//! A task marked `ds.task_nest` (a perfect nest whose inner iterations are
//! independent, `abi::TASK_NEST`) runs one thread per (i, j) instead: its
//! range function returns `[lo m, hi m)` for the inner loop's trip count m
//! (computed there from the same constants and parameters), thread t runs
//! `i = t floordiv m`, `j = lb + (t - i m) step`, and the task's other uses
//! of its range (hoisted bounds checks) see `[lo, hi)` again. Without the
//! mark, or when the inner bounds cannot be computed on the host, a 256 x
//! 256 grid would run on 256 threads.
//!
//! A task of a `ds.struct_for` over a sparse tree runs one thread per cell
//! of each block the same way: its loop over a block's cells
//! (`abi::CELL_LOOP`, a constant trip count m) is flattened into the thread
//! index when everything else its iteration runs around that loop only
//! computes, loads and tests (the block's test, the list lookup), which
//! each of the block's threads then repeats. The kernel is marked
//! `abi::TASK_CELLS = m`, so the runtime launches m threads per listed block.
//!
//! Example:
//! ```mlir
//! func.func @k__task0(%b: index, %e: index, %x: memref<16xf32>) {
//!   scf.for %i = %b to %e step %c1 { BODY } {ds.task_loop}
//! }
//! // becomes
//! gpu.module @ds_kernels {
//!   gpu.func @k__task0(%b: index, %e: index, %x: memref<16xf32>) kernel {
//!     %i = ... block_id, block_dim, thread_id ...
//!     scf.if (%i < %e) { BODY }
//!     gpu.return
//!   }
//! }
//! ```

use crate::abi;
use ds_dialects::ir::{Block, Cursor, Op, OpBuilder, Region, Value, ValueMap, clone_mapped};
use ds_dialects::ops;
use ds_passes::{PassInfo, PassOptions};

pub static PASS: PassInfo = PassInfo {
    name: "convert-ds-to-gpu",
    summary: "Turn task functions into gpu.func kernels in gpu.module @ds_kernels",
    options: &[],
    run,
};

/// The name of the generated gpu.module.
pub const GPU_MODULE: &str = "ds_kernels";

fn run(module: Op, _: &PassOptions) -> bool {
    let body = ops::module_body(module);
    let tasks: Vec<Op> =
        body.ops().into_iter().filter(|o| o.name() == "func.func" && o.attr(abi::TASK_OF).is_some()).collect();
    let ctx = module.ctx();
    if let Some(k) = ops::kernels(body).first() {
        ctx.emit_error(k.loc(), "convert-ds-to-gpu expects task functions: run ds-lower-parallel-cpu and convert-ds-to-scf first");
        return false;
    }
    // Serial twins of tasks are for the CPU (a GPU task's iterations are
    // threads): they are dropped.
    for twin in body.ops().into_iter().filter(|o| o.name() == "func.func" && o.attr(abi::SERIAL_OF).is_some()) {
        // SAFETY: nothing refers to a twin (no calls, no symbol uses), and it
        // is not visited again.
        unsafe { twin.erase() };
    }
    module.set_attr("gpu.container_module", ctx.unit_attr());
    let loc = module.loc();
    let region = Region::new();
    let gpu_body = region.append_block(Block::new(&[]));
    Cursor::at_end(body).build(
        OpBuilder::new("gpu.module", loc).attr("sym_name", ctx.string_attr(GPU_MODULE)).region(region),
    );
    for task in tasks {
        let range = body
            .ops()
            .into_iter()
            .find(|o| o.attr(abi::RANGE_OF).and_then(|a| a.as_string()) == task.sym_name());
        kernel_from_task(task, range, gpu_body);
    }
    crate::no_ds_ops_left(module, PASS.name)
}

fn kernel_from_task(task: Op, range: Option<Op>, gpu_body: Block) {
    let ctx = task.ctx();
    let loc = task.loc();
    let region = Region::new();
    region.take_body(task.region(0));
    let mut b = OpBuilder::new("gpu.func", loc)
        .attr("sym_name", task.attr("sym_name").expect("task name"))
        .attr("function_type", task.attr("function_type").expect("task type"))
        .attr("gpu.kernel", ctx.unit_attr());
    for (name, attr) in task.attrs() {
        if name == "arg_attrs" || name.starts_with("ds.") {
            b = b.attr(&name, attr);
        }
    }
    let kernel = Cursor::at_end(gpu_body).build(b.region(region));
    let entry = kernel.region(0).first_block().expect("task body");
    // Pick the ops to rewrite before rewriting: erasing the task loop frees
    // its scf.yield, which a walk snapshot would still list.
    let inner = kernel.walk();
    let returns: Vec<Op> = inner.iter().copied().filter(|op| op.name() == "func.return").collect();
    let task_loops: Vec<Op> =
        inner.into_iter().filter(|op| op.name() == "scf.for" && op.attr(abi::TASK_LOOP).is_some()).collect();
    for op in returns {
        Cursor::before(op).build(OpBuilder::new("gpu.return", op.loc()));
        // SAFETY: a func.return has no results and no regions; `returns` holds
        // it once and is consumed by this loop.
        unsafe { op.erase() };
    }
    let nest = match range {
        Some(r) if task.attr(abi::TASK_NEST).is_some() => Nest::of(&task_loops, entry, r, inner_loop),
        Some(r) => Nest::of(&task_loops, entry, r, cell_loop).inspect(|nest| {
            if let Some(m) = abi::constant_trip_count(nest.inners[0]) {
                kernel.set_attr(abi::TASK_CELLS, ctx.int_attr(ctx.int(64), m));
            }
        }),
        None => None,
    };
    match nest {
        Some(nest) => nest.flatten(&task_loops, entry),
        None => {
            for op in task_loops {
                one_thread_per_iteration(op, entry.arg(0), entry.arg(1), |_, t| t);
            }
        }
    }
    // SAFETY: its body was taken into `kernel` above, so this frees only the
    // emptied op; its attributes (context-owned) were copied, and no handle to
    // `task` is used after.
    unsafe { task.erase() };
}

/// Replaces the task loop by `t = begin + global thread id; if (t < end)
/// BODY`, BODY's index being `index(at, t)` built at the top of the guard.
fn one_thread_per_iteration(task_loop: Op, begin: Value, end: Value, index: impl FnOnce(Cursor, Value) -> Value) {
    let ctx = task_loop.ctx();
    let loc = task_loop.loc();
    let at = Cursor::before(task_loop);
    let dim_x = ctx.parse_attr("#gpu<dim x>").expect("gpu dimension attribute");
    let special = |name: &str| {
        at.build(OpBuilder::new(name, loc).attr("dimension", dim_x).results(&[ctx.index()])).result(0)
    };
    let (bid, bdim, tid) = (special("gpu.block_id"), special("gpu.block_dim"), special("gpu.thread_id"));
    let first = ops::build_binary(at, "arith.muli", bid, bdim, loc);
    let offset = ops::build_binary(at, "arith.addi", first, tid, loc);
    let i = ops::build_binary(at, "arith.addi", begin, offset, loc);
    let in_range = ops::build_cmpi(at, ops::CmpI::Slt, i, end, loc);
    let (_, then_block, else_block) = ops::build_if(at, in_range, &[], loc);
    let terminator = ops::build_yield(then_block, &[], loc);
    ops::build_yield(else_block, &[], loc);
    let old = task_loop.region(0).first_block().expect("loop body");
    old.arg(0).replace_all_uses_with(index(Cursor::before(terminator), i));
    for op in old.ops() {
        if op.name() != "scf.yield" {
            op.move_before(terminator);
        }
    }
    // SAFETY: the body's ops but its scf.yield were moved out and the uses of
    // its argument replaced, so this frees only the loop, its block and that
    // scf.yield, to which the caller holds no handle (it lists task loops only,
    // each once).
    unsafe { task_loop.erase() };
}

/// A task's perfect nest, flattened on the GPU: the inner loop of each task
/// loop (the fast and the checked copy compute the same bounds) and the
/// range function that will return the flattened range.
struct Nest {
    inners: Vec<Op>,
    range: Op,
}

/// The inner loop of a task loop whose body is ops without loops, then one
/// `scf.for` without results, then the yield.
fn inner_loop(task_loop: Op) -> Option<Op> {
    let body = task_loop.region(0).first_block()?;
    let ops: Vec<Op> = body.ops().into_iter().filter(|o| o.name() != "scf.yield").collect();
    let (&last, before) = ops.split_last()?;
    let nested_loop = |o: &Op| std::iter::once(*o).chain(o.walk()).any(|x| x.name() == "scf.for");
    (last.name() == "scf.for" && last.num_results() == 0 && !before.iter().any(nested_loop)).then_some(last)
}

/// The loop over a block's cells ([`abi::CELL_LOOP`]) of a task loop, when
/// the ops around it in the task loop's body (those not inside it) only
/// compute, load and test: repeated by every cell's thread, they compute
/// the same. Its bounds must be constants (for [`abi::TASK_CELLS`]).
fn cell_loop(task_loop: Op) -> Option<Op> {
    let inside = task_loop.walk();
    let marked: Vec<Op> = inside.iter().copied().filter(|o| o.name() == "scf.for" && o.attr(abi::CELL_LOOP).is_some()).collect();
    let [cells] = marked[..] else { return None };
    let mut up = cells.parent();
    while let Some(p) = up.filter(|p| *p != task_loop) {
        if p.name() != "scf.if" {
            return None;
        }
        up = p.parent();
    }
    let computes = |o: &Op| {
        let name = o.name();
        name.starts_with("arith.") || name.starts_with("math.") || matches!(name.as_str(), "memref.load" | "scf.if" | "scf.yield")
    };
    let around_only_computes = inside.iter().filter(|o| **o != cells && !o.is_inside(cells)).all(computes);
    let constant = abi::constant_trip_count(cells).is_some();
    (around_only_computes && constant && cells.num_results() == 0).then_some(cells)
}

/// Clones at `at` the arith ops computing `v` from constants and the task's
/// parameters (entry arguments from 2 on, mapped by `param`); `None` when
/// `v` needs anything else (the task loop's index, a load).
fn clone_slice(v: Value, entry: Block, at: Cursor, param: &dyn Fn(usize) -> Option<Value>, map: &mut ValueMap) -> Option<Value> {
    if let Some(m) = map.get(&v) {
        return Some(*m);
    }
    let mapped = match v.defining_op() {
        None => {
            let (block, k) = v.block_arg()?;
            (block == entry && k >= 2).then(|| param(k - 2)).flatten()?
        }
        Some(d) => {
            if !d.regions().is_empty() || !d.name().starts_with("arith.") {
                return None;
            }
            for o in d.operands() {
                clone_slice(o, entry, at, param, map)?;
            }
            clone_mapped(d, at, map).result(0)
        }
    };
    map.insert(v, mapped);
    Some(mapped)
}

/// Whether `a` and `b` are computed the same way from the same values.
fn same_computation(a: Value, b: Value) -> bool {
    if a == b {
        return true;
    }
    match (a.defining_op(), b.defining_op()) {
        (Some(x), Some(y)) => {
            x.name() == y.name()
                && x.attrs() == y.attrs()
                && x.num_operands() == y.num_operands()
                && x.operands().into_iter().zip(y.operands()).all(|(p, q)| same_computation(p, q))
        }
        _ => false,
    }
}

impl Nest {
    /// The nest of `task_loops` whose inner loops `inner` finds.
    fn of(task_loops: &[Op], entry: Block, range: Op, inner: fn(Op) -> Option<Op>) -> Option<Nest> {
        let inners: Vec<Op> = task_loops.iter().map(|l| inner(*l)).collect::<Option<_>>()?;
        let first = *inners.first()?;
        let same = inners.iter().all(|i| (0..3).all(|k| same_computation(i.operand(k), first.operand(k))));
        // The bounds must be computable on the host: try on a scratch copy
        // of the range function, so nothing changes when they are not.
        let scratch = range.deep_clone();
        let scratch_entry = scratch.region(0).first_block()?;
        let at = Cursor::before(scratch_entry.terminator()?);
        let param = |k: usize| (k < scratch_entry.num_args()).then(|| scratch_entry.arg(k));
        let mut map = ValueMap::new();
        let computable = (0..3).all(|k| clone_slice(first.operand(k), entry, at, &param, &mut map).is_some());
        // SAFETY: `scratch` is a detached copy no one else refers to.
        unsafe { scratch.erase() };
        (same && computable).then_some(Nest { inners, range })
    }

    fn flatten(self, task_loops: &[Op], entry: Block) {
        let loc = self.range.loc();
        let first = self.inners[0];
        // The range function: [lo m, hi m).
        let range_entry = self.range.region(0).first_block().expect("range function body");
        let ret = range_entry.terminator().expect("range function returns");
        let at = Cursor::before(ret);
        let param = |k: usize| (k < range_entry.num_args()).then(|| range_entry.arg(k));
        let mut map = ValueMap::new();
        let host: Vec<Value> =
            (0..3).map(|k| clone_slice(first.operand(k), entry, at, &param, &mut map).expect("checked by Nest::of")).collect();
        let m = ops::build_trip_count(at, host[0], host[1], host[2], loc);
        let (lo, hi) = (ret.operand(0), ret.operand(1));
        ret.set_operand(0, ops::build_binary(at, "arith.muli", lo, m, loc));
        ret.set_operand(1, ops::build_binary(at, "arith.muli", hi, m, loc));
        // The kernel: m at its top, and [lo, hi) for the task's other uses of
        // its range (hoisted bounds checks).
        let (begin, end) = (entry.arg(0), entry.arg(1));
        let uses: Vec<(Op, usize, Value)> = entry
            .parent_op()
            .expect("kernel")
            .walk()
            .into_iter()
            .flat_map(|o| o.operands().into_iter().enumerate().map(move |(i, v)| (o, i, v)))
            .filter(|(_, _, v)| *v == begin || *v == end)
            .collect();
        let top = Cursor::before(entry.first_op().expect("a kernel body ends in gpu.return"));
        let param = |k: usize| Some(entry.arg(k + 2));
        let mut map = ValueMap::new();
        let b: Vec<Value> = (0..3).map(|k| clone_slice(first.operand(k), entry, top, &param, &mut map).expect("checked")).collect();
        let m = ops::build_trip_count(top, b[0], b[1], b[2], loc);
        let one = ops::const_index(top, 1, loc);
        let m = ops::build_binary(top, "arith.maxsi", m, one, loc);
        let lo = ops::build_binary(top, "arith.floordivsi", begin, m, loc);
        let hi = ops::build_binary(top, "arith.ceildivsi", end, m, loc);
        for (op, i, v) in uses {
            op.set_operand(i, if v == begin { lo } else { hi });
        }
        for (task_loop, inner) in task_loops.iter().zip(&self.inners) {
            let mut rest = None;
            one_thread_per_iteration(*task_loop, begin, end, |at, t| {
                let i = ops::build_binary(at, "arith.floordivsi", t, m, loc);
                let whole = ops::build_binary(at, "arith.muli", i, m, loc);
                rest = Some(ops::build_binary(at, "arith.subi", t, whole, loc));
                i
            });
            // j = lb + (t - i m) step, after the ops computing lb and step.
            let at = Cursor::before(*inner);
            let scaled = ops::build_binary(at, "arith.muli", rest.expect("built"), inner.operand(2), loc);
            let j = ops::build_binary(at, "arith.addi", inner.operand(0), scaled, loc);
            let body = inner.region(0).first_block().expect("inner loop body");
            body.arg(0).replace_all_uses_with(j);
            for op in body.ops() {
                if op.name() != "scf.yield" {
                    op.move_before(*inner);
                }
            }
            // SAFETY: the inner loop's ops but its yield were moved out and
            // the uses of its index replaced; nothing holds a handle to it.
            unsafe { inner.erase() };
        }
    }
}
