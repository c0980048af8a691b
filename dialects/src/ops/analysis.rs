//! Analyses of field accesses shared by the passes and the runtime: which
//! accesses read and which write, which ops have side effects, the affine form
//! of an index, whether two accesses are provably apart, and which part of a
//! field an access touches (for the Tape).

use super::catalogue::{AccessKind, DsOp, Role};
use super::views::func_body;
use crate::ir::{Op, Value};

impl AccessKind {
    /// Whether the access reads the element: its effect depends on the value
    /// there. Atomic min/max compare with it; an atomic add/sub accumulates
    /// into it without the result depending on what was there first.
    pub const fn reads(self) -> bool {
        match self {
            AccessKind::Load | AccessKind::AtomicMin | AccessKind::AtomicMax | AccessKind::IsActive | AccessKind::Length => true,
            AccessKind::Store
            | AccessKind::AtomicAdd
            | AccessKind::AtomicSub
            | AccessKind::Activate
            | AccessKind::Deactivate
            | AccessKind::Append => false,
        }
    }

    /// Whether the access changes the element.
    pub const fn writes(self) -> bool {
        match self {
            AccessKind::Load | AccessKind::IsActive | AccessKind::Length => false,
            AccessKind::Activate | AccessKind::Deactivate | AccessKind::Append => true,
            AccessKind::Store
            | AccessKind::AtomicAdd
            | AccessKind::AtomicSub
            | AccessKind::AtomicMin
            | AccessKind::AtomicMax => true,
        }
    }

    /// Whether the access is an atomic add or sub: an update that commutes
    /// with every other one (stencil adjoints, scatters, reduction targets).
    pub const fn accumulates(self) -> bool {
        matches!(self, AccessKind::AtomicAdd | AccessKind::AtomicSub)
    }
}

/// Whether `op` has a side effect on fields or the launch: a field write or a
/// run-time check. Recomputation in gradient code must not repeat these.
pub fn has_side_effect(op: Op) -> bool {
    DsOp::of(op).is_some_and(|k| match k.role() {
        Role::Access(kind) => kind.writes(),
        Role::Check => true,
        Role::Declaration | Role::LayoutNode | Role::Loop | Role::Value => false,
    })
}

/// The value of an integer or index `arith.constant`.
pub fn constant_int(v: Value) -> Option<i64> {
    v.defining_op().filter(|d| d.name() == "arith.constant").and_then(|d| d.attr("value")?.as_int())
}

/// An index as `base + offset` through `arith.addi`/`arith.subi` with
/// constants: `base` is None for a constant index.
pub fn index_offset(v: Value) -> (Option<Value>, i64) {
    let Some(def) = v.defining_op() else { return (Some(v), 0) };
    match def.name().as_str() {
        "arith.constant" => (None, constant_int(v).unwrap_or(0)),
        "arith.addi" | "arith.subi" => {
            let sign = if def.name() == "arith.addi" { 1 } else { -1 };
            match (constant_int(def.operand(0)), constant_int(def.operand(1))) {
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

/// Whether `v` has one value for the whole launch of `kernel`: a kernel
/// parameter, or computed at the kernel's top level.
fn kernel_uniform(kernel: Op, v: Value) -> bool {
    match v.defining_op() {
        Some(d) => d.parent() == Some(kernel),
        None => v.owner_block() == Some(func_body(kernel)),
    }
}

/// Whether two accesses of `kernel` with these index lists never touch the
/// same element, in any pair of iterations: in some dimension both indices are
/// constants, or the same launch-uniform value ([`kernel_uniform`]), plus
/// different constant offsets, such as `x[t - 1, i]` and `x[t, i]`.
pub fn provably_apart(kernel: Op, a: &[Value], b: &[Value]) -> bool {
    a.iter().zip(b).any(|(x, y)| {
        let ((xb, xo), (yb, yo)) = (index_offset(*x), index_offset(*y));
        xo != yo
            && match (xb, yb) {
                (None, None) => true,
                (Some(u), Some(v)) => u == v && kernel_uniform(kernel, u),
                (Some(_), None) | (None, Some(_)) => false,
            }
    })
}

/// Whether distinct iterations of a parallel loop over `var` never touch one
/// element through these accesses (the indices of every access of one field
/// in the loop): in one dimension, every index is `var` plus one same
/// constant (`x[t, i]`, `x[t - 1, i]` and `x_grad[.., i + 1]` alike). An
/// atomic update of the field there needs no atomic: its element is the
/// iteration's own.
pub fn owned_by_iteration(var: Value, accesses: &[&[Value]]) -> bool {
    let Some(first) = accesses.first() else { return false };
    (0..first.len()).any(|d| {
        let lead = index_offset(first[d]);
        lead.0 == Some(var) && accesses.iter().all(|a| a.get(d).is_some_and(|v| index_offset(*v) == lead))
    })
}

/// How far apart two iterations of a parallel loop over `var` can be and
/// still update one element through these updates (the indices of every
/// atomic add and sub of one field in the loop): in the dimension where every
/// index is `var` plus a constant, the spread of the constants (1 for
/// `g[i - 1] += a; g[i + 1] += b`, 0 for owned elements). Iterations farther
/// apart never touch the same element, so chunks of more iterations than
/// this, run alternately (even chunks, then odd), update without atomics.
/// None when no dimension is indexed so.
pub fn update_band(var: Value, updates: &[&[Value]]) -> Option<i64> {
    let first = updates.first()?;
    (0..first.len())
        .filter_map(|d| {
            let offsets: Vec<i64> = updates
                .iter()
                .map(|a| a.get(d).map(|v| index_offset(*v)).filter(|(b, _)| *b == Some(var)).map(|(_, o)| o))
                .collect::<Option<_>>()?;
            Some(offsets.iter().max()? - offsets.iter().min()?)
        })
        .min()
}

/// Whether every element a write touches is written before any read of it
/// reads it: in some dimension both indices are the variable of the same
/// serial loop (an `scf.for`, not inside another one) plus constants, the
/// write's offset the larger, so the write of an element happens in an
/// earlier iteration than its read (`x[k + 1] = f(x[k])`, Taichi's chains).
/// Recomputing the read from memory then sees the value it read.
pub fn written_before_read(read: &[Value], write: &[Value]) -> bool {
    read.iter().zip(write).any(|(r, w)| {
        let ((rb, ro), (wb, wo)) = (index_offset(*r), index_offset(*w));
        match (rb, wb) {
            (Some(u), Some(v)) if u == v && wo > ro => outermost_serial_loop_variable(u),
            _ => false,
        }
    })
}

/// Whether `v` is the variable of an `scf.for` that no other `scf.for` encloses.
fn outermost_serial_loop_variable(v: Value) -> bool {
    let Some((block, 0)) = v.block_arg() else { return false };
    let Some(l) = block.parent_op().filter(|l| l.name() == "scf.for") else { return false };
    let mut up = l.parent();
    while let Some(op) = up {
        if op.name() == "scf.for" {
            return false;
        }
        up = op.parent();
    }
    true
}

/// Which part of a field an access touches, by its first index: what the
/// Tape compares across launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lead {
    /// `param[k] + offset` for the kernel's k-th parameter (e.g. x[t - 1, i]).
    Param(usize, i64),
    /// A constant first index.
    Const(i64),
    /// Anything (or a 0-D field).
    Any,
}

/// The [`Lead`] of an access of `kernel` with these indices.
pub fn first_index_lead(kernel: Op, indices: &[Value]) -> Lead {
    let Some(first) = indices.first() else { return Lead::Any };
    match index_offset(*first) {
        (None, c) => Lead::Const(c),
        (Some(base), offset) => match base.block_arg() {
            Some((block, k)) if block == func_body(kernel) => Lead::Param(k, offset),
            Some(_) | None => Lead::Any,
        },
    }
}
