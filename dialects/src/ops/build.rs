//! Typed builders of ds ops. Each takes the op's name from [`DsOp::name`] and
//! inserts the op at a [`Cursor`].

use super::catalogue::{AccessKind, BODY_TERMINATOR, DsOp};
use super::views::ParallelFor;
use crate::ir::{Block, Cursor, Loc, Op, OpBuilder, Region, Type, Value};

/// `ds.field @name : elem[shape]`.
pub fn build_field(at: Cursor, name: &str, elem: Type, shape: &[i64], grad: Option<&str>, loc: Loc) -> Op {
    let ctx = elem.ctx();
    let mut b = OpBuilder::new(DsOp::Field.name(), loc)
        .attr("sym_name", ctx.string_attr(name))
        .attr("element_type", ctx.type_attr(elem))
        .attr("shape", ctx.i64_array_attr(shape));
    if let Some(g) = grad {
        b = b.attr("grad", ctx.symbol_ref(g));
    }
    at.build(b)
}

/// Names `dual` as the field holding `field`'s tangent (forward mode).
pub fn set_dual(field: Op, dual: &str) {
    field.set_attr("dual", field.ctx().symbol_ref(dual));
}

/// A layout node of `kind` (dense, pointer, bitmasked or dynamic).
pub fn build_layout_node(at: Cursor, kind: DsOp, name: &str, shape: &[i64], parent: Option<&str>, loc: Loc) -> Op {
    assert!(kind.is_layout_node(), "{kind:?} is not a layout node");
    let ctx = loc.ctx();
    let mut b = OpBuilder::new(kind.name(), loc).attr("sym_name", ctx.string_attr(name)).attr("shape", ctx.i64_array_attr(shape));
    if let Some(p) = parent {
        b = b.attr("parent", ctx.symbol_ref(p));
    }
    at.build(b)
}

/// Places field `field` under the layout node `node` (its `layout` attribute).
pub fn set_layout(field: Op, node: &str) {
    field.set_attr("layout", field.ctx().symbol_ref(node));
}

/// Sets how a dense node stores its cells' components (`order`; AoS is the default).
pub fn set_order(node: Op, order: super::layout::Order) {
    node.set_attr(super::layout::ORDER_ATTR, node.ctx().string_attr(order.name()));
}

pub fn build_load(at: Cursor, field: &str, indices: &[Value], elem: Type, loc: Loc) -> Value {
    let ctx = elem.ctx();
    at.build(
        OpBuilder::new(DsOp::Load.name(), loc)
            .operands(indices)
            .results(&[elem])
            .attr("field", ctx.symbol_ref(field)),
    )
    .result(0)
}

/// `ds.store` or one of the atomics (`kind` other than load).
pub fn build_update(at: Cursor, kind: AccessKind, field: &str, value: Value, indices: &[Value], loc: Loc) -> Op {
    assert!(kind != AccessKind::Load, "a load is not an update");
    let ctx = value.ty().ctx();
    at.build(
        OpBuilder::new(kind.name(), loc)
            .operands(&[value])
            .operands(indices)
            .attr("field", ctx.symbol_ref(field)),
    )
}

/// A `ds.parallel_for` from `lower` to `upper` with an empty body; returns the op
/// and its body block (whose argument is the index). Fill the body before its
/// terminator with `Cursor::before(terminator)`.
pub fn build_parallel_for(at: Cursor, lower: Value, upper: Value, loc: Loc) -> ParallelFor {
    let ctx = lower.ty().ctx();
    let region = Region::new();
    let body = region.append_block(Block::new(&[(ctx.index(), loc)]));
    body.append(OpBuilder::new(BODY_TERMINATOR, loc).build().expect("terminator"));
    let op = at.build(OpBuilder::new(DsOp::ParallelFor.name(), loc).operands(&[lower, upper]).region(region));
    ParallelFor { op, lower, upper, body }
}

/// A `ds.struct_for` over `field` (of rank `rank`) with an empty body; returns
/// the op and its body block (one index argument per dimension).
pub fn build_struct_for(at: Cursor, field: &str, rank: usize, loc: Loc) -> (Op, Block) {
    let ctx = loc.ctx();
    let region = Region::new();
    let args: Vec<_> = (0..rank).map(|_| (ctx.index(), loc)).collect();
    let body = region.append_block(Block::new(&args));
    body.append(OpBuilder::new(BODY_TERMINATOR, loc).build().expect("terminator"));
    let op = at.build(OpBuilder::new(DsOp::StructFor.name(), loc).attr("field", ctx.symbol_ref(field)).region(region));
    (op, body)
}

pub fn build_assert(at: Cursor, condition: Value, message: &str, loc: Loc) -> Op {
    let ctx = condition.ty().ctx();
    at.build(
        OpBuilder::new(DsOp::Assert.name(), loc)
            .operands(&[condition])
            .attr("message", ctx.string_attr(message)),
    )
}

/// `ds.stop_grad %value`: the value, with no gradient flowing through it.
pub fn build_stop_grad(at: Cursor, value: Value, loc: Loc) -> Value {
    at.build(OpBuilder::new(DsOp::StopGrad.name(), loc).operands(&[value]).results(&[value.ty()])).result(0)
}

/// `ds.append %value, @field[indices]`: appends to the list holding the
/// cell; its position (i32).
pub fn build_append(at: Cursor, field: &str, value: Value, indices: &[Value], loc: Loc) -> Value {
    let ctx = loc.ctx();
    at.build(
        OpBuilder::new(DsOp::Append.name(), loc)
            .operands(&[value])
            .operands(indices)
            .results(&[ctx.int(32)])
            .attr("field", ctx.symbol_ref(field)),
    )
    .result(0)
}

/// `ds.length @field[indices]`: the length of the list holding the cell (i32).
pub fn build_length(at: Cursor, field: &str, indices: &[Value], loc: Loc) -> Value {
    let ctx = loc.ctx();
    at.build(OpBuilder::new(DsOp::Length.name(), loc).operands(indices).results(&[ctx.int(32)]).attr("field", ctx.symbol_ref(field)))
        .result(0)
}

/// `ds.activate`, `ds.deactivate` or `ds.is_active` (`kind`) of the cell
/// holding `field[indices]`, at layout node `node` (default: the op's own,
/// see docs/ds-dialect.md); returns the `i1` result of `ds.is_active`.
pub fn build_activity(at: Cursor, kind: AccessKind, field: &str, indices: &[Value], node: Option<&str>, loc: Loc) -> Option<Value> {
    assert!(
        matches!(kind, AccessKind::Activate | AccessKind::Deactivate | AccessKind::IsActive),
        "{kind:?} is not an activity op"
    );
    let ctx = loc.ctx();
    let results = if kind == AccessKind::IsActive { vec![ctx.int(1)] } else { vec![] };
    let mut b = OpBuilder::new(kind.name(), loc).operands(indices).results(&results).attr("field", ctx.symbol_ref(field));
    if let Some(n) = node {
        b = b.attr("node", ctx.symbol_ref(n));
    }
    let op = at.build(b);
    (kind == AccessKind::IsActive).then(|| op.result(0))
}
