//! `ds-simplify`: algebraic simplification under fast-math, before autodiff.
//!
//! Input: a verified module. Output: the same module with float arithmetic
//! simplified as fast-math allows (Taichi's default `fast_math=True`): the
//! operands are assumed finite and the sign of a zero is ignored, so
//! - `x * 0`, `0 * x`, `0 / x` -> `0`;
//! - `x * 1`, `x / 1`, `x + 0`, `0 + x`, `x - 0` -> `x`;
//! - `0 - x`, `x * -1` -> `-x`;
//! - an op whose operands are all constants -> its value, computed in the
//!   op's precision (so `c * alpha * dt` of Rust-scope constants is one
//!   constant);
//!
//! then ops without side effects whose results are unused (arith, math and
//! field loads) are removed, to a fixed point. Run before ds-autodiff, a term
//! multiplied by a zero coefficient (an undamped wave's damping) leaves
//! nothing behind: no loads, and no adjoint updates in the gradient.
//! The runtime runs it unless `CompileOptions::fast_math` is off (the
//! frontend's `ProgramBuilder::strict_math`), which keeps IEEE semantics
//! (`0 * inf` is NaN, `-0 + 0` is `+0`).
//!
//! Example: `%z = arith.constant 0.0 : f32; %y = arith.mulf %x, %z : f32;
//! %s = arith.addf %w, %y : f32` becomes `%s = %w`; the load of `%x` goes.

use crate::{PassInfo, PassOptions};
use ds_dialects::ir::{Cursor, Op, OpBuilder, Type, Value};
use ds_dialects::ops::{self, DsOp};
use std::collections::HashMap;

pub static PASS: PassInfo = PassInfo {
    name: "ds-simplify",
    summary: "Fast-math algebraic simplification (x*0, x*1, x+0, constant folding) and removal of unused pure ops",
    options: &[],
    run,
};

fn run(module: Op, _: &PassOptions) -> bool {
    if !crate::verify::check(module) {
        return false;
    }
    while fold_all(module) | remove_unused(module) {}
    true
}

/// What an op simplifies to.
enum Folded {
    Value(Value),
    Constant(f64),
    Negated(Value),
}

/// A float constant's value.
fn constant(v: Value) -> Option<f64> {
    let def = v.defining_op().filter(|d| d.name() == "arith.constant")?;
    v.ty().is_float().then(|| def.attr("value")?.as_float()).flatten()
}

fn binary_in_precision(t: Type, name: &str, a: f64, b: f64) -> Option<f64> {
    let wide = match name {
        "arith.addf" => |a: f64, b: f64| a + b,
        "arith.subf" => |a, b| a - b,
        "arith.mulf" => |a, b| a * b,
        "arith.divf" => |a, b| a / b,
        _ => return None,
    };
    // f32 arithmetic on f32 values, rounded once, is f64 arithmetic rounded
    // to f32 for + - * / (f64 holds the exact result to within half an f32 ulp).
    Some(if t.width() == Some(32) { f64::from(wide(a, b) as f32) } else { wide(a, b) })
}

fn fold(op: Op) -> Option<Folded> {
    let name = op.name();
    if op.num_results() != 1 || !op.result(0).ty().is_float() {
        return None;
    }
    if name == "arith.negf" {
        return constant(op.operand(0)).map(|c| Folded::Constant(-c));
    }
    if !matches!(name.as_str(), "arith.addf" | "arith.subf" | "arith.mulf" | "arith.divf") {
        return None;
    }
    let (a, b) = (op.operand(0), op.operand(1));
    let (ca, cb) = (constant(a), constant(b));
    if let (Some(x), Some(y)) = (ca, cb) {
        return binary_in_precision(op.result(0).ty(), &name, x, y).map(Folded::Constant);
    }
    // -0.0 == 0.0: both zeros count.
    let is = |c: Option<f64>, v: f64| c == Some(v);
    match name.as_str() {
        "arith.addf" if is(ca, 0.0) => Some(Folded::Value(b)),
        "arith.addf" | "arith.subf" if is(cb, 0.0) => Some(Folded::Value(a)),
        "arith.subf" if is(ca, 0.0) => Some(Folded::Negated(b)),
        "arith.mulf" if is(ca, 0.0) || is(cb, 0.0) => Some(Folded::Constant(0.0)),
        "arith.mulf" if is(ca, 1.0) => Some(Folded::Value(b)),
        "arith.mulf" if is(cb, 1.0) => Some(Folded::Value(a)),
        "arith.mulf" if is(ca, -1.0) => Some(Folded::Negated(b)),
        "arith.mulf" if is(cb, -1.0) => Some(Folded::Negated(a)),
        "arith.divf" if is(cb, 1.0) => Some(Folded::Value(a)),
        "arith.divf" if is(ca, 0.0) => Some(Folded::Constant(0.0)),
        _ => None,
    }
}

/// Folds every op that [`fold`] simplifies; whether any changed.
fn fold_all(module: Op) -> bool {
    let mut changed = false;
    for op in module.walk() {
        let Some(folded) = fold(op) else { continue };
        let (at, loc, t) = (Cursor::before(op), op.loc(), op.result(0).ty());
        let value = match folded {
            Folded::Value(v) => v,
            Folded::Constant(c) => ops::const_scalar(at, t, c, loc),
            Folded::Negated(v) => at.build(OpBuilder::new("arith.negf", loc).operands(&[v]).results(&[t])).result(0),
        };
        op.replace_all_uses(&[value]);
        // SAFETY: a float arith op has no regions; its one result's uses were
        // replaced above, and `walk` listed it once.
        unsafe { op.erase() };
        changed = true;
    }
    changed
}

/// Ops that only compute their results: arith and math ops, field loads.
fn is_pure(op: Op) -> bool {
    let name = op.name();
    op.regions().is_empty() && (name.starts_with("arith.") || name.starts_with("math.") || DsOp::of(op) == Some(DsOp::Load))
}

/// Removes the pure ops inside `scope` whose results are unused; whether
/// any were. The walk runs backwards (users before what they use) and counts
/// uses down as it erases, so a chain of unused ops goes in one sweep.
pub fn remove_unused(scope: Op) -> bool {
    let all = scope.walk();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    for v in all.iter().flat_map(|op| op.operands()) {
        *uses.entry(v).or_default() += 1;
    }
    let mut changed = false;
    for op in all.into_iter().rev() {
        if op.num_results() > 0 && is_pure(op) && op.results().iter().all(|r| uses.get(r).is_none_or(|&n| n == 0)) {
            for v in op.operands() {
                if let Some(n) = uses.get_mut(&v) {
                    *n -= 1;
                }
            }
            // SAFETY: a pure op has no regions, and no op uses its results;
            // `walk` listed it once.
            unsafe { op.erase() };
            changed = true;
        }
    }
    changed
}
