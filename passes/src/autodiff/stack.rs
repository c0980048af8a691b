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

use super::control_flow::trip_count;
use super::reverse::{alloca, strip_side_effects};
use ds_dialects::ir::{Block, Cursor, Loc, Op, OpBuilder, Type, Value, ValueMap, clone_mapped};
use ds_dialects::ops;

/// The stacks of one recomputed loop.
pub struct Stack {
    /// One buffer per carried value.
    pub buffers: Vec<Value>,
    /// The carried values' types.
    pub elems: Vec<Type>,
    pub capacity: usize,
}

/// Clones the carried loop `op` at `at` (side effects stripped), pushing the
/// carried values of each iteration on stacks allocated at the top of `top`.
pub fn clone_with_pushes(op: Op, at: Cursor, top: Block, fwd: &mut ValueMap, capacity: usize) -> Stack {
    let loc = op.loc();
    let get = |v: Value| fwd.get(&v).copied().unwrap_or(v);
    let (lb, ub, step) = (get(op.operand(0)), get(op.operand(1)), get(op.operand(2)));
    let n = trip_count(at, lb, ub, step, loc);
    let buffers: Vec<Value> = op.results().iter().map(|r| alloca(top, r.ty(), &format!("{capacity}x"), loc)).collect();
    let new = clone_mapped(op, at, fwd);
    strip_side_effects(new);
    let body = new.region(0).first_block().expect("scf.for body");
    let first = body.first_op().expect("body ends in scf.yield");
    let b = Cursor::before(first);
    let offset = ops::build_binary(b, "arith.subi", body.arg(0), lb, loc);
    let k = ops::build_binary(b, "arith.divui", offset, step, loc);
    let cap = ops::const_index(b, capacity as i64, loc);
    let fits = ops::build_cmpi(b, ops::CmpI::Ult, k, cap, loc);
    let (_, then_block, else_block) = ops::build_if(b, fits, &[], loc);
    for (j, buf) in buffers.iter().enumerate() {
        Cursor::at_end(then_block).build(OpBuilder::new("memref.store", loc).operands(&[body.arg(j + 1), *buf, k]));
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
    let elems = op.results().iter().map(|r| r.ty()).collect();
    Stack { buffers, elems, capacity }
}

/// The carried values of primal iteration `rk`, read back (index clamped).
pub fn pop(s: &Stack, at: Cursor, rk: Value, loc: Loc) -> Vec<Value> {
    let last = ops::const_index(at, s.capacity as i64 - 1, loc);
    let k = ops::build_binary(at, "arith.minui", rk, last, loc);
    s.buffers
        .iter()
        .zip(&s.elems)
        .map(|(buf, t)| at.build(OpBuilder::new("memref.load", loc).operands(&[*buf, k]).results(&[*t])).result(0))
        .collect()
}
