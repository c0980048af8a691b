//! Analyses of field accesses shared by the passes and the runtime: which
//! accesses read and which write, which ops have side effects, the affine form
//! of an index, whether two accesses are provably apart, and which part of a
//! field an access touches (for the Tape).

use super::catalogue::{AccessKind, DsOp};
use crate::ir::{Op, Value};

/// Whether `op` has a side effect on fields or the launch: a write to a field
/// or a run-time check (everything ds but loads, loops and declarations).
pub fn has_side_effect(op: Op) -> bool {
    match DsOp::of(op) {
        Some(DsOp::Assert) => true,
        Some(k) => AccessKind::of(k).is_some_and(|a| a != AccessKind::Load),
        None => false,
    }
}

/// An index as `base + offset` through `arith.addi`/`arith.subi` with
/// constants: `base` is None for a constant index.
pub fn index_offset(v: Value) -> (Option<Value>, i64) {
    let Some(def) = v.defining_op() else { return (Some(v), 0) };
    let constant = |x: Value| x.defining_op().filter(|d| d.name() == "arith.constant").and_then(|d| d.attr("value")?.as_int());
    match def.name().as_str() {
        "arith.constant" => (None, constant(v).unwrap_or(0)),
        "arith.addi" | "arith.subi" => {
            let sign = if def.name() == "arith.addi" { 1 } else { -1 };
            match (constant(def.operand(0)), constant(def.operand(1))) {
                (_, Some(c)) => {
                    let (b, o) = index_offset(def.operand(0));
                    (b, o + sign * c)
                }
                (Some(c), None) if sign == 1 => {
                    let (b, o) = index_offset(def.operand(1));
                    (b, o + c)
                }
                _ => (Some(v), 0),
            }
        }
        _ => (Some(v), 0),
    }
}
