//! `ds-autodiff`: reverse-mode differentiation of kernels (paper sec. 2 and
//! appendix B), generating `@k_grad` for every kernel `@k`.
//!
//! Input: a verified module whose fields name their adjoints (`grad = @x_grad`).
//! Output: the same module plus, after each kernel `@k` not marked `ds.no_grad`,
//! a kernel `@k_grad` (attribute `ds.grad_of = "k"`) with the same parameters.
//! Launched after `@k`, it adds dL/d(input) into the adjoint fields of what `@k`
//! read, given dL/d(output) in the adjoint fields of what it wrote.
//!
//! Steps (each in its own module):
//! 1. the global data access rule (here): an element read and later written
//!    in the same kernel is rejected, naming both lines: the grad kernel
//!    recomputes values from global loads, which would see the new value
//!    (a serial loop writing ahead of its reads, `x[k + 1] = f(x[k])`, is fine);
//! 2. `reverse`: per block, recompute local values from global loads, then walk
//!    the ops backwards accumulating adjoints; field rules: load -> atomic add
//!    into the adjoint field, store -> read then zero the adjoint, atomic
//!    add/sub -> read the adjoint;
//! 3. `rules`: one record per op (arith, math, ds, control flow) with its
//!    treatment: an adjoint rule, non-differentiable, or structural;
//! 4. `control_flow`: reversed scf.if / scf.for, top-level loops in reverse order;
//! 5. `stack`: per-thread stacks for values an scf.for carries (capacity option
//!    `stack-capacity`, default 256; overflow fails the launch, never silently),
//!    except pure accumulators (`acc += f(k)`), which need none.
//!
//! With `check-finite=1`, every adjoint contribution an op's partials give
//! is followed by a `ds.assert` that it is finite, at the op's location: a
//! NaN or infinite gradient fails the launch at the first op that made it
//! (the `norm()` of a zero vector, say), not at the loss.
//!
//! Size of the output: every op is recomputed once, plus once more per
//! enclosing `scf.for` with carried values (its reversed body re-runs each
//! iteration, inner loops included), so the grad kernel grows linearly with
//! nested `scf.if`s and with one level of carried loops, and quadratically
//! with carried loops nested in carried loops. Before generating anything
//! the pass counts the recomputations beyond an op's second (one per carried
//! loop around it but the innermost) and rejects a kernel that needs more
//! than `max-recompute` (default 100000, about 250 nested carried loops of a
//! few ops each) with an error at its most deeply nested carried loop.
//!
//! Adjoint ops keep the location of the primal op they come from.
//!
//! Example (appendix B), y[i] = sin(x[i]^2):
//! ```mlir
//! %1 = "ds.load"(%i) {field = @x} : (index) -> f32
//! %2 = arith.mulf %1, %1 : f32
//! %3 = math.sin %2 : f32
//! "ds.store"(%3, %i) {field = @y} : (f32, index) -> ()
//! // in @k_grad, after recomputing %1' %2':
//! %g3 = "ds.load"(%i) {field = @y_grad} ...; "ds.store"(%zero, %i) {field = @y_grad}
//! %c = math.cos %2'; %g2 = arith.mulf %g3, %c
//! %a = arith.mulf %g2, %1'; %b = arith.mulf %g2, %1'; %g1 = arith.addf %a, %b
//! "ds.atomic_add"(%g1, %i) {field = @x_grad}
//! ```

mod control_flow;
pub mod forward;
pub mod reverse;
pub mod rules;
mod stack;

use crate::{PassInfo, PassOptions};
use ds_dialects::ir::{Cursor, Op, ValueMap};
use ds_dialects::ops::{self, Access, AccessKind, GRAD_OF_ATTR, KERNEL_ATTR};
use reverse::Differentiator;
use std::collections::HashMap;

/// Unit attribute on a kernel that needs no gradient (an optimizer step, say).
pub const NO_GRAD_ATTR: &str = "ds.no_grad";
/// Suffix of generated grad kernels.
pub const GRAD_SUFFIX: &str = "_grad";
/// Default of the `max-recompute` option (see the module doc).
pub const DEFAULT_MAX_RECOMPUTE: usize = 100_000;

pub static PASS: PassInfo = PassInfo {
    name: "ds-autodiff",
    summary: "Generate the reverse-mode gradient kernel @k_grad of every kernel @k",
    options: &["stack-capacity", "max-recompute", "check-finite"],
    run,
};

/// The largest `stack-capacity`: 8-byte values at this capacity take 256 KiB
/// of a thread's stack per carried value (rayon's threads have 2 MiB).
pub const MAX_STACK_CAPACITY: usize = 32768;

fn run(module: Op, options: &PassOptions) -> bool {
    let positive = |key: &str, default: usize| match options.usize_or(key, default) {
        Ok(c) if c > 0 => Some(c),
        Ok(_) => {
            module.ctx().emit_error(module.loc(), &format!("ds-autodiff: {key} must be positive"));
            None
        }
        Err(e) => {
            module.ctx().emit_error(module.loc(), &e);
            None
        }
    };
    let (Some(capacity), Some(max_recompute)) =
        (positive("stack-capacity", 256), positive("max-recompute", DEFAULT_MAX_RECOMPUTE))
    else {
        return false;
    };
    if capacity > MAX_STACK_CAPACITY {
        let message = format!(
            "ds-autodiff: stack-capacity must be between 1 and {MAX_STACK_CAPACITY} (got {capacity}): each carried value's stack lives on the thread's stack"
        );
        module.ctx().emit_error(module.loc(), &message);
        return false;
    }
    if !crate::verify::check(module) {
        return false;
    }
    let body = ops::module_body(module);
    let fields = ops::fields(body);
    let types: HashMap<String, ds_dialects::ir::Type> = fields.iter().map(|f| (f.name.clone(), f.elem)).collect();
    let grads = fields.iter().filter_map(|f| Some((f.name.clone(), (f.grad.clone()?, types[f.grad.as_ref()?])))).collect();
    let check_finite = match options.flag("check-finite") {
        Ok(c) => c,
        Err(e) => {
            module.ctx().emit_error(module.loc(), &e);
            return false;
        }
    };
    let d = Differentiator { grads, stack_capacity: capacity, check_finite };
    let mut ok = true;
    for kernel in ops::kernels(body) {
        if kernel.attr(GRAD_OF_ATTR).is_some() || kernel.attr(NO_GRAD_ATTR).is_some() {
            continue;
        }
        ok &= check_read_then_write(kernel) && check_recompute(kernel, max_recompute) && differentiate(&d, kernel, body);
    }
    ok
}

/// The global data access rule: no element of a field is written after it was
/// read in the same kernel (in program order). A write and an earlier read are
/// independent when [`ops::provably_apart`], such as `x[t - 1, i]` read and
/// `x[t, i]` written, or when each element is [`ops::written_before_read`],
/// such as `x[k + 1] = f(x[k])` in a serial loop.
fn check_read_then_write(kernel: Op) -> bool {
    let mut reads: Vec<Access> = Vec::new();
    let mut ok = true;
    for op in kernel.walk() {
        let Some(a) = Access::read(op) else { continue };
        if a.kind == AccessKind::Load {
            reads.push(a);
            continue;
        }
        let overwrites = |r: &&Access| {
            r.field == a.field
                && !ops::provably_apart(kernel, &r.indices, &a.indices)
                && !ops::written_before_read(&r.indices, &a.indices)
        };
        let Some(read) = reads.iter().find(overwrites)
        else {
            continue;
        };
        let kname = kernel.sym_name().unwrap_or_default();
        op.ctx().emit_error(
            op.loc(),
            &format!(
                "kernel @{kname} cannot be differentiated: @{} is written here ({}) after being read at {}, and the two may be the same element. Rule: a kernel must not modify what it has read, because the gradient kernel recomputes values from global loads and would see the new contents. Write to another field or another time step (x[t] from x[t - 1]), or mark the kernel ds.no_grad",
                a.field,
                a.kind.name(),
                read.op.loc()
            ),
        );
        ok = false;
    }
    ok
}

/// Counts the recomputations beyond each op's second (see the module doc)
/// and rejects the kernel past `limit`, at its most deeply nested carried
/// loop.
fn check_recompute(kernel: Op, limit: usize) -> bool {
    // (ops counted, the deepest carried loop and its depth).
    fn count(op: Op, depth: usize, total: &mut usize, deepest: &mut Option<(Op, usize)>) {
        for region in op.regions() {
            for block in region.blocks() {
                for inner in block.ops() {
                    let carried = inner.name() == "scf.for" && inner.num_results() > 0;
                    let d = depth + usize::from(carried);
                    *total += d.saturating_sub(1);
                    if carried && deepest.is_none_or(|(_, best)| d > best) {
                        *deepest = Some((inner, d));
                    }
                    count(inner, d, total, deepest);
                }
            }
        }
    }
    let (mut total, mut deepest) = (0, None);
    count(kernel, 0, &mut total, &mut deepest);
    match deepest {
        Some((at, depth)) if total > limit => {
            let kname = kernel.sym_name().unwrap_or_default();
            at.ctx().emit_error(
                at.loc(),
                &format!(
                    "kernel @{kname} cannot be differentiated within ds-autodiff's max-recompute={limit}: its gradient would make {total} recomputations of ops beyond their second (an op is recomputed once more per enclosing scf.for with carried values, and this loop is nested {depth} deep); flatten the loop nest, split the kernel, or raise max-recompute"
                ),
            );
            false
        }
        _ => true,
    }
}

fn differentiate(d: &Differentiator, kernel: Op, module_body: ds_dialects::ir::Block) -> bool {
    let name = kernel.sym_name().unwrap_or_default();
    let grad_name = format!("{name}{GRAD_SUFFIX}");
    let ctx = kernel.ctx();
    if module_body.ops().iter().any(|o| o.sym_name().as_deref() == Some(grad_name.as_str())) {
        ctx.emit_error(kernel.loc(), &format!("cannot generate @{grad_name}: the module already has a symbol of that name"));
        return false;
    }
    let after = kernel.next().map_or(Cursor::at_end(module_body), Cursor::before);
    let (grad, entry) = ops::build_func(after, &grad_name, &ops::func_inputs(kernel), &[], kernel.loc());
    grad.set_attr(KERNEL_ATTR, ctx.unit_attr());
    grad.set_attr(GRAD_OF_ATTR, ctx.string_attr(&name));
    let primal = ops::func_body(kernel);
    let mut fwd: ValueMap = primal.args().into_iter().zip(entry.args()).collect();
    let end = Cursor::at_end(entry);
    // Adjoints of the parameters are not wanted: gradients are w.r.t. fields.
    let ok = d.block(primal, end, entry, &mut fwd, vec![]).is_ok();
    ops::build_return(end, &[], kernel.loc());
    if !ok {
        // SAFETY: `grad` was built above and nothing outside it refers to it
        // (a failed differentiation emits only diagnostics); `entry`, `end` and
        // the values `fwd` maps into it are not used after this point.
        unsafe { grad.erase() };
    }
    ok
}
