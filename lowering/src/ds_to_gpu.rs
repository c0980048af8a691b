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
use ds_dialects::ir::{Block, Cursor, Op, OpBuilder, Region, Value};
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
        kernel_from_task(task, gpu_body);
    }
    crate::no_ds_ops_left(module, PASS.name)
}

fn kernel_from_task(task: Op, gpu_body: Block) {
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
    for op in task_loops {
        one_thread_per_iteration(op, entry.arg(0), entry.arg(1));
    }
    // SAFETY: its body was taken into `kernel` above, so this frees only the
    // emptied op; its attributes (context-owned) were copied, and no handle to
    // `task` is used after.
    unsafe { task.erase() };
}

/// Replaces the task loop by `i = begin + global thread id; if (i < end) BODY`.
fn one_thread_per_iteration(task_loop: Op, begin: Value, end: Value) {
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
    old.arg(0).replace_all_uses_with(i);
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
