//! Per-thread stacks for the values an `scf.for` carries from one iteration
//! to the next: the recomputed loop pushes them, the reversed loop pops them.
//!
//! Each carried value gets a `memref.alloca` of `stack-capacity` elements at
//! the top of the thread's block (so a loop recomputed inside an `scf.if`
//! is reversed, in the reversed branch, with the same buffers).
//! Pushes past the capacity are skipped and the loop is followed by a
//! `ds.assert` that its trip count fits, so an overflow fails the launch with
//! a message naming the loop; pops clamp their index, so memory is never
//! read or written out of bounds.
//!
//! Accumulators get no stack ([`accumulators`]): a carried float that the
//! body only adds to, subtracts from or negates, passing the sum through
//! `scf.if`s and yielding it in its own slot (`acc += f(k)`, also under an
//! `if`), is never read by an adjoint rule, so the reversed loop needs only
//! its adjoint, which every iteration passes on unchanged. A 1000-step ray
//! march summing into one value needs no stack at all.

use super::reverse::strip_side_effects;
use ds_dialects::ir::{Block, Cursor, Loc, Op, OpBuilder, Type, Value, ValueMap, clone_mapped};
use ds_dialects::ops;
use std::collections::HashMap;

/// The stacks of one recomputed loop.
pub struct Stack {
    /// The carried values that have a stack (the others are accumulators):
    /// index into the loop's results, buffer, element type.
    pub buffers: Vec<(usize, Value, Type)>,
    pub capacity: usize,
}

/// Which of the `scf.for` `op`'s carried values are accumulators: float
/// values whose every use inside the loop, transitively, is `arith.addf`,
/// `arith.subf`, `arith.negf`, the yield of an `scf.if` (whose result is
/// then followed) or the loop's yield in the value's own position.
pub fn accumulators(op: Op) -> Vec<bool> {
    let body = op.region(0).first_block().expect("scf.for body");
    let mut users: HashMap<Value, Vec<(Op, usize)>> = HashMap::new();
    for inner in op.walk().into_iter().filter(|o| *o != op) {
        for (i, v) in inner.operands().into_iter().enumerate() {
            users.entry(v).or_default().push((inner, i));
        }
    }
    let only_summed = |j: usize| {
        let mut pending = vec![body.arg(j + 1)];
        let mut seen = vec![];
        while let Some(v) = pending.pop() {
            if seen.contains(&v) {
                continue;
            }
            seen.push(v);
            for &(user, i) in users.get(&v).map(Vec::as_slice).unwrap_or_default() {
                match user.name().as_str() {
                    "arith.addf" | "arith.subf" | "arith.negf" => pending.push(user.result(0)),
                    "scf.yield" => match user.parent() {
                        Some(parent) if parent == op => {
                            if i != j {
                                return false;
                            }
                        }
                        Some(parent) if parent.name() == "scf.if" => pending.push(parent.result(i)),
                        _ => return false,
                    },
                    _ => return false,
                }
            }
        }
        true
    };
    (0..op.num_results()).map(|j| op.result(j).ty().is_float() && only_summed(j)).collect()
}

/// Clones the carried loop `op` at `at` (side effects stripped), pushing the
/// carried values of each iteration but its accumulators on stacks allocated
/// at the top of `top`.
pub fn clone_with_pushes(op: Op, at: Cursor, top: Block, fwd: &mut ValueMap, capacity: usize) -> Stack {
    let loc = op.loc();
    let get = |v: Value| fwd.get(&v).copied().unwrap_or(v);
    let (lb, ub, step) = (get(op.operand(0)), get(op.operand(1)), get(op.operand(2)));
    let stacked: Vec<usize> = accumulators(op).into_iter().enumerate().filter(|(_, acc)| !acc).map(|(j, _)| j).collect();
    let buffers: Vec<(usize, Value, Type)> = stacked
        .iter()
        .map(|&j| {
            let t = op.result(j).ty();
            (j, ops::build_alloca(top, t, &format!("{capacity}x"), loc), t)
        })
        .collect();
    let new = clone_mapped(op, at, fwd);
    strip_side_effects(new);
    if buffers.is_empty() {
        return Stack { buffers, capacity };
    }
    let n = ops::build_trip_count(at, lb, ub, step, loc);
    let body = new.region(0).first_block().expect("scf.for body");
    let first = body.first_op().expect("body ends in scf.yield");
    let b = Cursor::before(first);
    let offset = ops::build_binary(b, "arith.subi", body.arg(0), lb, loc);
    let k = ops::build_binary(b, "arith.divui", offset, step, loc);
    let cap = ops::const_index(b, capacity as i64, loc);
    let fits = ops::build_cmpi(b, ops::CmpI::Ult, k, cap, loc);
    let (_, then_block, else_block) = ops::build_if(b, fits, &[], loc);
    for &(j, buf, _) in &buffers {
        Cursor::at_end(then_block).build(OpBuilder::new("memref.store", loc).operands(&[body.arg(j + 1), buf, k]));
    }
    ops::build_yield(then_block, &[], loc);
    ops::build_yield(else_block, &[], loc);
    // After the loop: the trip count must fit the stack.
    let cap_out = ops::const_index(at, capacity as i64, loc);
    let ok = ops::build_cmpi(at, ops::CmpI::Ule, n, cap_out, loc);
    let message = format!(
        "autodiff stack overflow: the loop at {loc} carries values through more than {capacity} iterations; raise ds-autodiff's stack-capacity"
    );
    ops::build_assert(at, ok, &message, loc);
    Stack { buffers, capacity }
}

/// The carried values of primal iteration `rk`, read back (index clamped),
/// as (index into the loop's results, value); accumulators are left out.
pub fn pop(s: &Stack, at: Cursor, rk: Value, loc: Loc) -> Vec<(usize, Value)> {
    if s.buffers.is_empty() {
        return vec![];
    }
    let last = ops::const_index(at, s.capacity as i64 - 1, loc);
    let k = ops::build_binary(at, "arith.minui", rk, last, loc);
    s.buffers
        .iter()
        .map(|&(j, buf, t)| (j, at.build(OpBuilder::new("memref.load", loc).operands(&[buf, k]).results(&[t])).result(0)))
        .collect()
}
