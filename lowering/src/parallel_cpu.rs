//! `ds-lower-parallel-cpu`: splits each kernel into task functions the CPU
//! runtime launches.
//!
//! Input: a verified module (ds-verify). Output: every kernel `@k` is replaced by
//! - per top-level `ds.parallel_for` / `ds.struct_for` number `n`, a task
//!   `@k__task<n>(%begin: index, %end: index, params...)` running the loop body
//!   for `begin <= i < end` in an `scf.for`, and a range function
//!   `@k__range<n>(params...) -> (index, index)` giving the loop's bounds (the
//!   runtime splits that range into chunks across threads);
//! - per run of top-level serial code holding a side effect, a task
//!   `@k__task<n>(params...)` run once, on one thread.
//!
//! Values a task takes from the kernel's top level are recomputed in the task
//! (ds-verify allows only constants and pure arith/math there). Fixed-size
//! `memref.alloca`s in a loop body are hoisted to the task's entry. A struct-for
//! over a dense field iterates its linearized cells (the dimensions its body
//! binds); over a sparse field, its tree's outer cells, each task iteration
//! running the active cells of one block (`crate::sparse::struct_for_block`). Task functions carry
//! `ds.task_of = "k"`, `ds.task_index = n`, `ds.task_kind = "parallel"|"serial"`,
//! and `ds.task_nest` when the loop is a perfect nest whose inner iterations
//! are independent (`independent_nest`; the GPU then runs a thread per (i, j)).
//!
//! Example:
//! ```mlir
//! func.func @k(%n: index) attributes {ds.kernel} {
//!   "ds.parallel_for"(%c0, %n) ({ ^bb0(%i: index): BODY gpu.yield }) : (index, index) -> ()
//!   return
//! }
//! // becomes
//! func.func @k__task0(%b: index, %e: index, %n: index) attributes {ds.task_index = 0 : i64, ds.task_kind = "parallel", ds.task_of = "k"} {
//!   scf.for %i = %b to %e step %c1 { BODY }
//!   return
//! }
//! func.func @k__range0(%n: index) -> (index, index) attributes {ds.range_of = "k__task0"} {
//!   return %c0, %n : index, index
//! }
//! ```

use crate::abi;
use ds_dialects::ir::{Block, Cursor, Loc, Op, Value, ValueMap, clone_mapped, remap_operands};
use ds_dialects::ops::sparse::SparseTree;
use ds_dialects::ops::{self, Access, DsOp, FieldDecl, LayoutNode, ParallelFor};
use ds_passes::{PassInfo, PassOptions, verify::first_non_recomputable};

pub static PASS: PassInfo = PassInfo {
    name: "ds-lower-parallel-cpu",
    summary: "Split kernels into task functions: parallel loops over a sub-range, serial code on one thread",
    options: &[],
    run,
};

fn run(module: Op, _: &PassOptions) -> bool {
    if !ds_passes::verify::check(module) {
        return false;
    }
    let body = ops::module_body(module);
    let fields = ops::fields(body);
    let nodes: Vec<LayoutNode> = body.ops().into_iter().filter_map(LayoutNode::read).collect();
    let trees = match ops::sparse::trees(&nodes, &fields) {
        Ok(t) => t,
        Err((op, message)) => {
            op.ctx().emit_error(op.loc(), &message);
            return false;
        }
    };
    let layout = Layout { fields: &fields, trees: &trees };
    ops::kernels(body).into_iter().all(|k| lower_kernel(k, &layout))
}

/// The fields of the module and the sparse trees holding some of them.
struct Layout<'a> {
    fields: &'a [FieldDecl],
    trees: &'a [SparseTree],
}

impl Layout<'_> {
    fn field(&self, name: &str) -> Option<&FieldDecl> {
        self.fields.iter().find(|f| f.name == name)
    }
    fn tree(&self, name: &str) -> Option<&SparseTree> {
        ops::sparse::tree_holding(self.trees, name)
    }
}

/// A piece of a kernel that becomes one task.
enum Segment {
    Loop(Op),
    Serial(Vec<Op>),
}

fn has_effects(op: Op) -> bool {
    std::iter::once(op).chain(op.walk()).any(ops::has_side_effect)
}

fn segments(kernel: Op) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut serial = Vec::new();
    for op in ops::func_body(kernel).ops() {
        match DsOp::of(op) {
            Some(DsOp::ParallelFor | DsOp::StructFor) => {
                if serial.iter().any(|o| has_effects(*o)) {
                    out.push(Segment::Serial(std::mem::take(&mut serial)));
                }
                serial.clear();
                out.push(Segment::Loop(op));
            }
            _ if op.name() == "func.return" => {}
            _ => serial.push(op),
        }
    }
    if serial.iter().any(|o| has_effects(*o)) {
        out.push(Segment::Serial(serial));
    }
    out
}

fn lower_kernel(kernel: Op, fields: &Layout) -> bool {
    let name = kernel.sym_name().unwrap_or_default();
    let params = ops::func_inputs(kernel);
    let ctx = kernel.ctx();
    let at = Cursor::before(kernel);
    for (n, seg) in segments(kernel).into_iter().enumerate() {
        let task_name = format!("{name}__task{n}");
        let ok = match seg {
            Segment::Loop(op) => {
                let index = ctx.index();
                let inputs: Vec<_> = [index, index].into_iter().chain(params.iter().copied()).collect();
                let (task, entry) = ops::build_func(at, &task_name, &inputs, &[], op.loc());
                mark_task(task, &name, n, "parallel");
                if independent_nest(kernel, op) {
                    task.set_attr(abi::TASK_NEST, ctx.unit_attr());
                }
                let mut map = param_map(kernel, entry, 2);
                lower_loop(op, entry, &mut map, fields) && build_range(op, at, &task_name, kernel, &params, fields)
            }
            Segment::Serial(seg_ops) => {
                let loc = seg_ops[0].loc();
                let (task, entry) = ops::build_func(at, &task_name, &params, &[], loc);
                mark_task(task, &name, n, "serial");
                let mut map = param_map(kernel, entry, 0);
                let end = Cursor::at_end(entry);
                // In order, so values of earlier ops of the segment are mapped.
                let ok = seg_ops.iter().all(|o| {
                    let captured = capture_operands(*o, end, &mut map, &name);
                    clone_mapped(*o, end, &mut map);
                    captured
                });
                ops::build_return(end, &[], loc);
                ok
            }
        };
        if !ok {
            return false;
        }
    }
    // SAFETY: each loop body was moved into its task with operands remapped to
    // task values, and serial code was cloned, so nothing outside the kernel
    // uses its values; the segments and value maps holding handles into it
    // were dropped with the loop above, and `run` holds only other kernels.
    unsafe { kernel.erase() };
    true
}

/// Whether the parallel loop `pf` of `kernel` is a perfect nest whose inner
/// iterations are independent too ([`abi::TASK_NEST`]): its body is pure
/// arith/math ops and one `scf.for` without carried values, whose bounds do
/// not depend on the parallel index or on a load, and in whose body every
/// write of a field touches, in every iteration, elements no other
/// iteration's accesses of that field touch (the same offset of the inner
/// index in one dimension, or provably apart: `p[t, i, j]` written,
/// `p[t - 1, i, j + 1]` read).
fn independent_nest(kernel: Op, pf: Op) -> bool {
    if DsOp::of(pf) != Some(DsOp::ParallelFor) {
        return false;
    }
    let Some(body) = pf.region(0).first_block() else { return false };
    let pure = |o: Op| o.regions().is_empty() && (o.name().starts_with("arith.") || o.name().starts_with("math."));
    let ops: Vec<Op> = body.ops().into_iter().filter(|o| o.name() != ops::BODY_TERMINATOR).collect();
    let inner: Vec<Op> = ops.iter().copied().filter(|o| !pure(*o)).collect();
    let [inner] = inner[..] else { return false };
    if inner.name() != "scf.for" || inner.num_results() > 0 {
        return false;
    }
    // Values computed in the body from constants and kernel-level values alone.
    fn uniform(kernel: Op, pf: Op, v: Value) -> bool {
        match v.defining_op() {
            Some(d) if d.is_inside(pf) => {
                d.regions().is_empty()
                    && (d.name().starts_with("arith.") || d.name().starts_with("math."))
                    && d.operands().into_iter().all(|o| uniform(kernel, pf, o))
            }
            Some(_) => true,
            None => v.owner_block() == Some(ops::func_body(kernel)),
        }
    }
    if !(0..3).all(|k| uniform(kernel, pf, inner.operand(k))) {
        return false;
    }
    let j = inner.region(0).first_block().expect("scf.for body").arg(0);
    let accesses: Vec<Access> = inner.walk().into_iter().filter_map(Access::read).collect();
    accesses.iter().filter(|w| w.kind.writes()).all(|w| {
        accesses.iter().filter(|a| a.field == w.field).all(|a| {
            ops::owned_by_iteration(j, &[&w.indices, &a.indices]) || ops::provably_apart(kernel, &w.indices, &a.indices)
        })
    })
}

fn mark_task(task: Op, kernel: &str, index: usize, kind: &str) {
    let ctx = task.ctx();
    task.set_attr(abi::TASK_OF, ctx.string_attr(kernel));
    task.set_attr(abi::TASK_INDEX, ctx.int_attr(ctx.int(64), index as i64));
    task.set_attr(abi::TASK_KIND, ctx.string_attr(kind));
}

/// Maps the kernel's parameters to the task's arguments from `offset` on.
fn param_map(kernel: Op, entry: Block, offset: usize) -> ValueMap {
    ops::func_body(kernel).args().into_iter().zip(entry.args().into_iter().skip(offset)).collect()
}

/// Recomputes at `at` every top-level value `op` (or ops nested in it) uses
/// from outside itself. Returns false (with an error) when one cannot be.
fn capture_operands(op: Op, at: Cursor, map: &mut ValueMap, kernel: &str) -> bool {
    let inner: Vec<Op> = std::iter::once(op).chain(op.walk()).collect();
    for o in &inner {
        for v in o.operands() {
            if !recompute(v, op, at, map, kernel) {
                return false;
            }
        }
    }
    true
}

fn recompute(v: Value, within: Op, at: Cursor, map: &mut ValueMap, kernel: &str) -> bool {
    if map.contains_key(&v) {
        return true;
    }
    let Some(def) = v.defining_op() else { return true };
    if def == within || def.is_inside(within) || !def.parent().is_some_and(ops::is_kernel) {
        return true;
    }
    if let Some(bad) = first_non_recomputable(v) {
        let msg = format!(
            "kernel @{kernel}: this value is computed by {} at the kernel's top level and used by another task; only constants and arith/math over parameters can cross tasks",
            bad.name()
        );
        def.ctx().emit_error(def.loc(), &msg);
        return false;
    }
    for o in def.operands() {
        recompute(o, within, at, map, kernel);
    }
    clone_mapped(def, at, map);
    true
}

/// The loop's body as an `scf.for` over `[begin, end)` in the task.
fn lower_loop(loop_op: Op, entry: Block, map: &mut ValueMap, fields: &Layout) -> bool {
    let end_cursor = Cursor::at_end(entry);
    let loc = loop_op.loc();
    if !capture_operands(loop_op, end_cursor, map, "") {
        return false;
    }
    let one = ops::const_index(end_cursor, 1, loc);
    let (scf_for, body, yield_op) = ops::build_scf_for(end_cursor, entry.arg(0), entry.arg(1), one, loc);
    scf_for.set_attr(abi::TASK_LOOP, loop_op.ctx().unit_attr());
    let iv = body.arg(0);
    let old_body = loop_op.region(0).first_block().expect("loop body");
    let at = Cursor::before(yield_op);
    let mut body_end = yield_op;
    match DsOp::of(loop_op) {
        Some(DsOp::StructFor) => {
            let field = loop_op.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
            let Some(f) = fields.field(&field) else { return false };
            // The body binds every dimension, or the cell dimensions only.
            let bound = &f.shape[..old_body.num_args().min(f.shape.len())];
            let indices = match fields.tree(&field) {
                // Over the blocks, then the active cells of each (crate::sparse).
                Some(tree) => {
                    let (indices, end) = crate::sparse::struct_for_block(at, iv, tree, &field, f.shape.len(), bound, loc);
                    body_end = end;
                    indices
                }
                None => delinearize(at, iv, bound, loc),
            };
            for (arg, idx) in old_body.args().into_iter().zip(indices) {
                map.insert(arg, idx);
            }
        }
        _ => {
            map.insert(old_body.arg(0), iv);
        }
    }
    for op in old_body.ops() {
        if op.name() != ops::BODY_TERMINATOR {
            op.move_before(body_end);
            remap_operands(op, map);
        }
    }
    hoist_static_allocas(scf_for);
    ops::build_return(end_cursor, &[], loc);
    true
}

/// Moves fixed-size `memref.alloca`s (autodiff's stacks) from the loop body to
/// the task's entry: one buffer per chunk instead of stack growth per
/// iteration. Each iteration writes a buffer before reading it.
fn hoist_static_allocas(task_loop: Op) {
    for op in task_loop.walk() {
        if op.name() == "memref.alloca" && op.num_operands() == 0 {
            op.move_before(task_loop);
        }
    }
}

/// Row-major indices of linear position `i` in `shape`.
fn delinearize(at: Cursor, i: Value, shape: &[i64], loc: Loc) -> Vec<Value> {
    let mut out = vec![i; shape.len()];
    let mut rest = i;
    for d in (1..shape.len()).rev() {
        let extent = ops::const_index(at, shape[d], loc);
        out[d] = ops::build_binary(at, "arith.remui", rest, extent, loc);
        rest = ops::build_binary(at, "arith.divui", rest, extent, loc);
    }
    if let Some(first) = out.first_mut() {
        *first = rest;
    }
    out
}

/// `@<task>__range(params) -> (index, index)`: the loop's iteration range.
fn build_range(loop_op: Op, at: Cursor, task: &str, kernel: Op, params: &[ds_dialects::ir::Type], fields: &Layout) -> bool {
    let ctx = loop_op.ctx();
    let loc = loop_op.loc();
    let index = ctx.index();
    let name = task.replace("__task", "__range");
    let (func, entry) = ops::build_func(at, &name, params, &[index, index], loc);
    func.set_attr(abi::RANGE_OF, ctx.string_attr(task));
    let mut map = param_map(kernel, entry, 0);
    let end = Cursor::at_end(entry);
    let bounds = match ParallelFor::read(loop_op) {
        Some(pf) => {
            let kname = kernel.sym_name().unwrap_or_default();
            if !recompute(pf.lower, loop_op, end, &mut map, &kname) || !recompute(pf.upper, loop_op, end, &mut map, &kname) {
                return false;
            }
            let get = |v: Value| map.get(&v).copied().unwrap_or(v);
            vec![get(pf.lower), get(pf.upper)]
        }
        None => {
            let field = loop_op.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
            let cells = match fields.tree(&field) {
                Some(tree) => crate::sparse::struct_for_range(tree) as usize,
                None => {
                    let args = loop_op.region(0).first_block().map_or(0, |b| b.num_args());
                    fields.field(&field).map_or(0, |f| f.shape.iter().take(args).product::<i64>() as usize)
                }
            };
            vec![ops::const_index(end, 0, loc), ops::const_index(end, cells as i64, loc)]
        }
    };
    ops::build_return(end, &bounds, loc);
    true
}
