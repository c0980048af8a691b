//! Builders and accessors of the upstream ops (arith, func, scf) that passes
//! and lowerings emit around ds ops.

use super::views::func_body;
use crate::ir::{Attr, Block, Cursor, Loc, Op, OpBuilder, Region, Type, Value};

/// `arith.constant` of an index value.
pub fn const_index(at: Cursor, v: i64, loc: Loc) -> Value {
    let ctx = loc.ctx();
    const_of(at, ctx.int_attr(ctx.index(), v), loc)
}

/// `arith.constant` of a float or integer value of type `t`.
pub fn const_scalar(at: Cursor, t: Type, v: f64, loc: Loc) -> Value {
    let ctx = t.ctx();
    let attr = if t.is_float() { ctx.float_attr(t, v) } else { ctx.int_attr(t, v as i64) };
    const_of(at, attr, loc)
}

/// `arith.constant` of integer value `v` of type `t` (every i64 exact).
pub fn const_int(at: Cursor, t: Type, v: i64, loc: Loc) -> Value {
    const_of(at, t.ctx().int_attr(t, v), loc)
}

fn const_of(at: Cursor, value: Attr, loc: Loc) -> Value {
    at.build(OpBuilder::new("arith.constant", loc).attr("value", value).infer_results()).result(0)
}

/// A `func.func` with an entry block whose arguments have `inputs` types,
/// inserted at `at`. Returns the function and its entry block.
pub fn build_func(at: Cursor, name: &str, inputs: &[Type], results: &[Type], loc: Loc) -> (Op, Block) {
    let ctx = loc.ctx();
    let list = |ts: &[Type]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    let fty = ctx
        .parse_type(&format!("({}) -> ({})", list(inputs), list(results)))
        .expect("function type of scalar and memref types");
    let region = Region::new();
    let args: Vec<_> = inputs.iter().map(|t| (*t, loc)).collect();
    let entry = region.append_block(Block::new(&args));
    let func = at.build(
        OpBuilder::new("func.func", loc)
            .attr("sym_name", ctx.string_attr(name))
            .attr("function_type", ctx.type_attr(fty))
            .region(region),
    );
    (func, entry)
}

/// The argument types of a `func.func`.
pub fn func_inputs(func: Op) -> Vec<Type> {
    func_body(func).args().iter().map(|a| a.ty()).collect()
}

/// Rewrites a function's type after its entry block arguments changed.
pub fn sync_func_type(func: Op) {
    let ctx = func.ctx();
    let inputs: Vec<String> = func_inputs(func).iter().map(|t| t.to_string()).collect();
    let old = func.attr("function_type").map(|a| a.to_string()).unwrap_or_default();
    let results = old.split_once("->").map(|(_, r)| r.trim().to_string()).unwrap_or_else(|| "()".into());
    let fty = ctx.parse_type(&format!("({}) -> {results}", inputs.join(", "))).expect("valid function type");
    func.set_attr("function_type", ctx.type_attr(fty));
}

/// `func.return` of `values`.
pub fn build_return(at: Cursor, values: &[Value], loc: Loc) -> Op {
    at.build(OpBuilder::new("func.return", loc).operands(values))
}

/// An `scf.for` from `lower` to `upper` by `step` without carried values;
/// returns the op, its body block (argument: the induction variable) and
/// the body's terminator, before which the body goes.
pub fn build_scf_for(at: Cursor, lower: Value, upper: Value, step: Value, loc: Loc) -> (Op, Block, Op) {
    let (op, body) = build_scf_for_carrying(at, lower, upper, step, &[], loc);
    let yield_op = build_yield(body, &[], loc);
    (op, body, yield_op)
}

/// A binary arith op (`arith.addi`, ...) whose result type is its operands'.
pub fn build_binary(at: Cursor, name: &str, lhs: Value, rhs: Value, loc: Loc) -> Value {
    at.build(OpBuilder::new(name, loc).operands(&[lhs, rhs]).results(&[lhs.ty()])).result(0)
}

/// The insertion point at the very top of `block` (for allocas).
pub fn at_top(block: Block) -> Cursor {
    block.first_op().map_or(Cursor::at_end(block), Cursor::before)
}

/// A per-thread slot (`memref<{shape}T>`, `shape` as `"4x"` or empty) at the
/// top of `top` for values of type `t`.
pub fn build_alloca(top: Block, t: Type, shape: &str, loc: Loc) -> Value {
    let ctx = loc.ctx();
    let ty = ctx.parse_type(&format!("memref<{shape}{t}>")).expect("memref of a scalar type");
    at_top(top)
        .build(
            OpBuilder::new("memref.alloca", loc)
                .results(&[ty])
                .attr("operandSegmentSizes", ctx.parse_attr("array<i32: 0, 0>").expect("segments")),
        )
        .result(0)
}

/// `arith.select cond, a, b`.
pub fn build_select(at: Cursor, cond: Value, a: Value, b: Value, loc: Loc) -> Value {
    at.build(OpBuilder::new("arith.select", loc).operands(&[cond, a, b]).results(&[a.ty()])).result(0)
}

/// `arith.cmpi` predicates (their enum values).
#[derive(Clone, Copy, Debug)]
pub enum CmpI {
    Eq = 0,
    Ne = 1,
    Slt = 2,
    Sle = 3,
    Sgt = 4,
    Sge = 5,
    Ult = 6,
    Ule = 7,
}

/// `arith.cmpi <pred> a, b` on integers or indices.
pub fn build_cmpi(at: Cursor, pred: CmpI, a: Value, b: Value, loc: Loc) -> Value {
    build_compare(at, "arith.cmpi", pred as i64, a, b, loc)
}

/// A comparison op `name` (`arith.cmpi` / `arith.cmpf`) with its predicate number.
fn build_compare(at: Cursor, name: &str, predicate: i64, a: Value, b: Value, loc: Loc) -> Value {
    let ctx = loc.ctx();
    at.build(
        OpBuilder::new(name, loc)
            .operands(&[a, b])
            .results(&[ctx.int(1)])
            .attr("predicate", ctx.int_attr(ctx.int(64), predicate)),
    )
    .result(0)
}

/// An `scf.if` on `cond` with `results`; returns it and its then and else
/// blocks, empty: the caller fills them and ends each with [`build_yield`].
pub fn build_if(at: Cursor, cond: Value, results: &[Type], loc: Loc) -> (Op, Block, Block) {
    let then_r = Region::new();
    let then_b = then_r.append_block(Block::new(&[]));
    let else_r = Region::new();
    let else_b = else_r.append_block(Block::new(&[]));
    let op = at.build(OpBuilder::new("scf.if", loc).operands(&[cond]).results(results).region(then_r).region(else_r));
    (op, then_b, else_b)
}

/// `scf.yield values` at the end of `block`.
/// The iterations of an `scf.for` from `lb` to `ub` by a positive `step`:
/// `max(0, ceil((ub - lb) / step))`.
pub fn build_trip_count(at: Cursor, lb: Value, ub: Value, step: Value, loc: Loc) -> Value {
    let diff = build_binary(at, "arith.subi", ub, lb, loc);
    let q = build_binary(at, "arith.ceildivsi", diff, step, loc);
    let z = const_index(at, 0, loc);
    let positive = build_cmpi(at, CmpI::Sgt, ub, lb, loc);
    build_select(at, positive, q, z, loc)
}

pub fn build_yield(block: Block, values: &[Value], loc: Loc) -> Op {
    Cursor::at_end(block).build(OpBuilder::new("scf.yield", loc).operands(values))
}

/// `arith.cmpf` predicates (their enum values; the ordered ones).
#[derive(Clone, Copy, Debug)]
pub enum CmpF {
    Oeq = 1,
    Ogt = 2,
    Oge = 3,
    Olt = 4,
    Ole = 5,
    One = 6,
}

/// `arith.cmpf <pred> a, b` on floats.
pub fn build_cmpf(at: Cursor, pred: CmpF, a: Value, b: Value, loc: Loc) -> Value {
    build_compare(at, "arith.cmpf", pred as i64, a, b, loc)
}

/// An `scf.for` from `lower` to `upper` by `step` carrying `inits`: its
/// results are the carried values after the last iteration. Returns the op
/// and its body block (arguments: the induction variable, then the carried
/// values), empty: the caller fills it and ends it with [`build_yield`] of
/// the next iteration's carried values.
pub fn build_scf_for_carrying(at: Cursor, lower: Value, upper: Value, step: Value, inits: &[Value], loc: Loc) -> (Op, Block) {
    let types: Vec<Type> = inits.iter().map(|v| v.ty()).collect();
    let region = Region::new();
    let args: Vec<_> = std::iter::once(lower.ty()).chain(types.iter().copied()).map(|t| (t, loc)).collect();
    let body = region.append_block(Block::new(&args));
    let op = at.build(
        OpBuilder::new("scf.for", loc)
            .operands(&[lower, upper, step])
            .operands(inits)
            .results(&types)
            .region(region),
    );
    (op, body)
}
