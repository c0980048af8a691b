//! The reverse sweep over one block: recompute, then walk backwards.
//!
//! `Differentiator::block` emits, at a cursor, (1) a forward recomputation of
//! every value the block defines ([`Differentiator::recompute`]: ops with
//! results are cloned with their side effects stripped; loops with carried
//! values also push those values on a per-thread stack; an `scf.if` with
//! results is rebuilt with recomputed branches that also save the values they
//! define in per-thread slots), then (2) the adjoint of each op in reverse
//! order ([`Differentiator::reverse`]; a reversed `scf.if` branch reads the
//! slots instead of recomputing), accumulating adjoints in a map from primal
//! values to generated values. It returns the adjoints of values the block
//! uses but does not define (block arguments and values of enclosing scopes):
//! the caller moves them out of the region (scf.if results, scf.for iteration
//! arguments).
//!
//! So an op is recomputed once however deeply `scf.if`s nest, plus once per
//! enclosing `scf.for` with carried values (whose reversed body re-runs the
//! iteration, inner loops included). Stacks and slots are `memref.alloca`s
//! at the top of the thread's block (`top`: the reversed parallel loop's
//! body, or the grad kernel's entry).

use super::control_flow;
use super::rules::{self, AdTreatment, Emitter};
use super::stack::{self, Stack};
use ds_dialects::ir::{Block, Cursor, Op, Type, Value, ValueMap, clone_mapped};
use ds_dialects::ops::{self, Access, AccessKind, DsOp};
use std::collections::HashMap;

/// Adjoints of primal values, as values of the generated code.
pub type Adjoints = Vec<(Value, Value)>;

pub struct Differentiator {
    /// field -> its adjoint field, and the adjoint's element type.
    pub grads: HashMap<String, (String, Type)>,
    pub stack_capacity: usize,
    /// Check every adjoint contribution for NaN and infinity (`check-finite`).
    pub check_finite: bool,
}

/// What the recomputation of a block saved for its reverse sweep, and where.
pub struct Saved {
    /// The thread's block, whose top holds the stacks and slots.
    pub top: Block,
    /// The stacks of its carried loops (also those inside recomputed ifs).
    pub stacks: HashMap<Op, Stack>,
    /// Per primal branch of a recomputed `scf.if`: the scalar values the
    /// branch defines and the slots (0-d memrefs) holding them.
    pub slots: HashMap<Block, Vec<(Value, Value)>>,
}

impl Saved {
    pub fn new(top: Block) -> Saved {
        Saved { top, stacks: HashMap::new(), slots: HashMap::new() }
    }
}

/// Failure already reported as a diagnostic.
pub struct Reported;

pub fn report(op: Op, message: String) -> Reported {
    op.ctx().emit_error(op.loc(), &message);
    Reported
}

/// Adds `c` to the adjoint of `v` (float values only).
pub fn accumulate(adj: &mut Vec<(Value, Value)>, v: Value, c: Value, e: &Emitter) {
    if !v.ty().is_float() {
        return;
    }
    match adj.iter_mut().find(|(k, _)| *k == v) {
        Some((_, a)) => *a = e.bin("arith.addf", *a, c),
        None => adj.push((v, c)),
    }
}

pub fn lookup(adj: &[(Value, Value)], v: Value) -> Option<Value> {
    adj.iter().find(|(k, _)| *k == v).map(|(_, a)| *a)
}

/// Erases stores, atomics and asserts inside a cloned op: recomputation must
/// not repeat the primal's side effects.
pub fn strip_side_effects(op: Op) {
    let effects: Vec<Op> =
        op.walk().into_iter().filter(|o| ops::has_side_effect(*o)).collect();
    for o in effects {
        // SAFETY: side-effecting ds ops (writing accesses, checks) have no
        // regions and no results, so erasing one frees only itself; each
        // handle in `effects` is erased once and never used again.
        unsafe { o.erase() };
    }
}

fn is_terminator(op: Op) -> bool {
    matches!(op.name().as_str(), "scf.yield" | ops::BODY_TERMINATOR | "func.return")
}

fn carries_values(op: Op) -> bool {
    op.name() == "scf.for" && op.num_results() > 0
}

impl Differentiator {
    /// Differentiates `block` at `at` (see the module doc). `fwd` maps the
    /// primal values visible in the block to recomputed ones; `seed` gives
    /// adjoints of values the block's terminator yields; `top` is the
    /// thread's block, where stacks and slots are allocated.
    pub fn block(&self, block: Block, at: Cursor, top: Block, fwd: &mut ValueMap, seed: Adjoints) -> Result<Adjoints, Reported> {
        let mut saved = Saved::new(top);
        self.recompute(block, at, fwd, &mut saved);
        self.reverse(block, at, fwd, seed, &saved)
    }

    /// Step (1): recomputes at `at` the values `block` defines and maps them
    /// in `fwd`; values inside its `scf.if`s with results are recomputed
    /// there and saved ([`control_flow::forward_if`]). Returns the values
    /// defined by `block`'s own ops.
    pub fn recompute(&self, block: Block, at: Cursor, fwd: &mut ValueMap, saved: &mut Saved) -> Vec<Value> {
        let mut defined = Vec::new();
        for op in block.ops() {
            if op.num_results() == 0 || is_terminator(op) {
                continue;
            }
            if carries_values(op) {
                saved.stacks.insert(op, stack::clone_with_pushes(op, at, saved.top, fwd, self.stack_capacity));
            } else if op.name() == "scf.if" {
                control_flow::forward_if(self, op, at, fwd, saved);
            } else {
                strip_side_effects(clone_mapped(op, at, fwd));
            }
            defined.extend(op.results());
        }
        defined
    }

    /// Step (2): the adjoints of `block`'s ops in reverse order, at `at`,
    /// once [`Differentiator::recompute`] has mapped its values in `fwd`.
    /// Returns the adjoints of values the block uses but does not define.
    pub fn reverse(&self, block: Block, at: Cursor, fwd: &ValueMap, seed: Adjoints, saved: &Saved) -> Result<Adjoints, Reported> {
        let mut adj = Vec::new();
        let seed_emitter = Emitter { at, loc: block.parent_op().map_or_else(|| at_loc(at), |o| o.loc()) };
        for (v, a) in seed {
            accumulate(&mut adj, v, a, &seed_emitter);
        }
        for op in block.ops().into_iter().rev().filter(|o| !is_terminator(*o)) {
            self.reverse_op(op, at, fwd, &mut adj, saved)?;
        }
        Ok(adj.into_iter().filter(|(v, _)| v.defining_op().and_then(|d| d.block()) != Some(block)).collect())
    }

    fn reverse_op(&self, op: Op, at: Cursor, fwd: &ValueMap, adj: &mut Adjoints, saved: &Saved) -> Result<(), Reported> {
        let e = Emitter { at, loc: op.loc() };
        let get = |v: Value| fwd.get(&v).copied().unwrap_or(v);
        if let Some(DsOp::ParallelFor | DsOp::StructFor) = DsOp::of(op) {
            return control_flow::reverse_ds_loop(self, op, at, fwd);
        }
        let name = op.name();
        match name.as_str() {
            "scf.if" => return control_flow::reverse_if(self, op, at, fwd, adj, saved),
            "scf.for" => return control_flow::reverse_for(self, op, at, fwd, adj, saved),
            "scf.while" => {
                return Err(report(
                    op,
                    "scf.while cannot be differentiated: its trip count depends on data, so the reverse loop cannot be built; use scf.for with a bound (and break by a flag)".into(),
                ));
            }
            _ => {}
        }
        if let Some(a) = Access::read(op) {
            return self.reverse_access(&a, &e, fwd, adj);
        }
        match rules::classify(&name) {
            Some(AdTreatment::NonDifferentiable) | Some(AdTreatment::Structural) => Ok(()),
            Some(AdTreatment::Differentiable(rule)) => {
                let y = op.result(0);
                let Some(g) = lookup(adj, y) else { return Ok(()) };
                let x: Vec<Value> = op.operands().into_iter().map(get).collect();
                for ((v, xv), partial) in op.operands().into_iter().zip(&x).zip(rule(&e, &x, get(y))) {
                    if let Some(partial) = partial {
                        let c = e.apply(partial, g, xv.ty());
                        if self.check_finite {
                            e.assert_finite(c, &format!("non-finite adjoint: the gradient through {name} is NaN or infinite"));
                        }
                        accumulate(adj, v, c, &e);
                    }
                }
                Ok(())
            }
            None => Err(report(
                op,
                format!(
                    "{name} has no adjoint rule, so this kernel cannot be differentiated; rewrite it with differentiable ops, or mark the kernel ds.no_grad if it needs no gradient"
                ),
            )),
        }
    }

    /// load -> atomic add into the adjoint field; store -> read and zero the
    /// adjoint; atomic add/sub -> read the adjoint of the target.
    fn reverse_access(&self, a: &Access, e: &Emitter, fwd: &ValueMap, adj: &mut Adjoints) -> Result<(), Reported> {
        let Some((grad, grad_ty)) = self.grads.get(&a.field) else { return Ok(()) };
        let idx: Vec<Value> = a.indices.iter().map(|v| fwd.get(v).copied().unwrap_or(*v)).collect();
        let read_grad = || ops::build_load(e.at, grad, &idx, *grad_ty, e.loc);
        match a.kind {
            AccessKind::Load => {
                if let Some(g) = lookup(adj, a.op.result(0)) {
                    ops::build_update(e.at, AccessKind::AtomicAdd, grad, g, &idx, e.loc);
                }
            }
            AccessKind::Store => {
                let g = read_grad();
                let zero = e.constant(*grad_ty, 0.0);
                ops::build_update(e.at, AccessKind::Store, grad, zero, &idx, e.loc);
                accumulate(adj, a.value.expect("stored value"), g, e);
            }
            AccessKind::AtomicAdd => accumulate(adj, a.value.expect("value"), read_grad(), e),
            AccessKind::AtomicSub => {
                let g = read_grad();
                accumulate(adj, a.value.expect("value"), e.neg(g), e)
            }
            // Activation is a primal effect only: a grad kernel never activates a primal cell.
            AccessKind::Activate | AccessKind::IsActive | AccessKind::Length => {}
            // A deactivation sets the cell's fields to 0: their adjoints there
            // are consumed (zeroed, the active set left as it is: a
            // deactivation of an adjoint field zeroes the tree's adjoints only).
            AccessKind::Deactivate => {
                ops::build_activity(e.at, AccessKind::Deactivate, grad, &idx, a.node().as_deref(), e.loc);
            }
            AccessKind::Append => {
                return Err(report(
                    a.op,
                    format!("ds.append into @{}, a field with a gradient, cannot be differentiated (the position of an append is not recorded); append into a field without a gradient", a.field),
                ));
            }
            AccessKind::AtomicMin | AccessKind::AtomicMax => {
                return Err(report(
                    a.op,
                    format!(
                        "{} into @{}, a field with a gradient, cannot be differentiated (which thread wins is not recorded); compute the extremum into a field without a gradient",
                        a.kind.name(),
                        a.field
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn at_loc(at: Cursor) -> ds_dialects::ir::Loc {
    at.block().parent_op().map(|o| o.loc()).expect("cursor inside an op")
}
