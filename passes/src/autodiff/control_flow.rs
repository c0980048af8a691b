//! Reversing control flow: `scf.if`, `scf.for` and the top-level ds loops.
//!
//! - `scf.if %c` with results is recomputed as an `scf.if %c` whose branches
//!   recompute the primal branches and store the scalar values they define in
//!   per-thread slots (`memref<T>`), so nested ifs are recomputed once, not
//!   once per level (with values passed out as results instead, an if nested
//!   k deep would pass k levels of values: quadratic operands, and MLIR's
//!   verifier walks each use's ancestors: cubic time).
//! - `scf.if %c` -> `scf.if %c` whose branches differentiate the primal
//!   branches (reading the slots, or, for an if without results, which is not
//!   recomputed, recomputing the branch first) and yield the adjoints of the
//!   enclosing values they used; the results are added to those adjoints.
//! - `scf.for %i = lb to ub step s` -> a loop over k = 0..n running iteration
//!   i = lb + (n-1-k)*s, carrying the adjoints of enclosing values (and of the
//!   primal's carried values, whose per-iteration values come from the stack;
//!   accumulators have none and need none).
//! - `ds.parallel_for` / `ds.struct_for` -> the same loop over the same range
//!   with the differentiated body; iterations stay independent, and adjoints
//!   of kernel-level values (parameters, constants) are not needed.

use super::reverse::{Adjoints, Differentiator, Reported, Saved, accumulate, lookup, report};
use super::rules::Emitter;
use super::stack;
use ds_dialects::ir::{Block, Cursor, Loc, Op, OpBuilder, Region, Type, Value, ValueMap};
use ds_dialects::ops::{self, DsOp};
use std::collections::HashSet;

fn zero(at: Cursor, t: Type, loc: Loc) -> Value {
    ops::const_scalar(at, t, 0.0, loc)
}

/// The union of the keys of several adjoint lists, in first-seen order.
fn union_keys(lists: &[&Adjoints]) -> Vec<Value> {
    let mut seen = HashSet::new();
    lists.iter().flat_map(|l| l.iter().map(|(v, _)| *v)).filter(|v| seen.insert(*v)).collect()
}

/// Recomputes the `scf.if` with results `op` at `at` (step 1 of
/// `Differentiator::block`): its branches recompute the primal branches
/// (recursively, so nested ifs are handled the same way) and store the
/// scalar values each defines in slots at the top of the thread's block, recorded in
/// `saved` for [`reverse_if`]. Maps the results in `fwd`.
pub fn forward_if(d: &Differentiator, op: Op, at: Cursor, fwd: &mut ValueMap, saved: &mut Saved) {
    let loc = op.loc();
    let get = |fwd: &ValueMap, v: Value| fwd.get(&v).copied().unwrap_or(v);
    let types: Vec<Type> = op.results().iter().map(|r| r.ty()).collect();
    let mut if_op = OpBuilder::new("scf.if", loc).operands(&[get(fwd, op.operand(0))]).results(&types);
    for region in op.regions() {
        let new_region = Region::new();
        if let Some(old) = region.first_block() {
            let block = new_region.append_block(Block::new(&[]));
            let end = Cursor::at_end(block);
            let mut slots = Vec::new();
            for v in d.recompute(old, end, fwd, saved) {
                let t = v.ty();
                if t.is_float() || t.is_integer() || t.is_index() {
                    let slot = ops::build_alloca(saved.top, t, "", loc);
                    end.build(OpBuilder::new("memref.store", loc).operands(&[get(fwd, v), slot]));
                    slots.push((v, slot));
                }
            }
            saved.slots.insert(old, slots);
            let yielded: Vec<Value> =
                old.terminator().map(|y| y.operands()).unwrap_or_default().into_iter().map(|v| get(fwd, v)).collect();
            ops::build_yield(block, &yielded, loc);
        }
        if_op = if_op.region(new_region);
    }
    let new_if = at.build(if_op);
    for (old, new) in op.results().into_iter().zip(new_if.results()) {
        fwd.insert(old, new);
    }
}

type Reversal = Result<(), Reported>;

pub fn reverse_if(d: &Differentiator, op: Op, at: Cursor, fwd: &ValueMap, adj: &mut Adjoints, saved: &Saved) -> Reversal {
    let loc = op.loc();
    let cond = fwd.get(&op.operand(0)).copied().unwrap_or(op.operand(0));
    let mut branches = Vec::new();
    for region in op.regions() {
        let new_block = Block::new(&[]);
        let contributions = match region.first_block() {
            Some(old) => {
                let seed: Adjoints = match old.terminator() {
                    Some(y) => op
                        .results()
                        .into_iter()
                        .zip(y.operands())
                        .filter_map(|(r, v)| Some((v, lookup(adj, r)?)))
                        .collect(),
                    None => vec![],
                };
                let end = Cursor::at_end(new_block);
                let mut inner = fwd.clone();
                match saved.slots.get(&old) {
                    Some(slots) => {
                        for (v, slot) in slots {
                            let load = OpBuilder::new("memref.load", loc).operands(&[*slot]).results(&[v.ty()]);
                            inner.insert(*v, end.build(load).result(0));
                        }
                        d.reverse(old, end, &inner, seed, saved)?
                    }
                    None => d.block(old, end, saved.top, &mut inner, seed)?,
                }
            }
            None => vec![],
        };
        branches.push((new_block, contributions));
    }
    while branches.len() < 2 {
        branches.push((Block::new(&[]), vec![]));
    }
    let outer = union_keys(&[&branches[0].1, &branches[1].1]);
    let types: Vec<Type> = outer.iter().map(|v| v.ty()).collect();
    let mut if_op = OpBuilder::new("scf.if", loc).operands(&[cond]).results(&types);
    for (block, contributions) in &branches {
        let end = Cursor::at_end(*block);
        let values: Vec<Value> =
            outer.iter().map(|o| lookup(contributions, *o).unwrap_or_else(|| zero(end, o.ty(), loc))).collect();
        ops::build_yield(*block, &values, loc);
        let region = Region::new();
        region.append_block(*block);
        if_op = if_op.region(region);
    }
    let new_if = at.build(if_op);
    let e = Emitter { at, loc };
    for (o, r) in outer.into_iter().zip(new_if.results()) {
        accumulate(adj, o, r, &e);
    }
    Ok(())
}

pub fn reverse_for(d: &Differentiator, op: Op, at: Cursor, fwd: &ValueMap, adj: &mut Adjoints, saved: &Saved) -> Reversal {
    let stack = saved.stacks.get(&op);
    let loc = op.loc();
    let get = |v: Value| fwd.get(&v).copied().unwrap_or(v);
    let (lb, ub, step) = (get(op.operand(0)), get(op.operand(1)), get(op.operand(2)));
    let old = op.region(0).first_block().expect("scf.for body");
    let old_yield = old.terminator().expect("scf.for body ends in scf.yield");
    // Float carried values get an adjoint carried through the reversed loop.
    let carried: Vec<usize> = (0..op.num_results()).filter(|&j| op.result(j).ty().is_float()).collect();
    let n = ops::build_trip_count(at, lb, ub, step, loc);
    let index = loc.ctx().index();
    let mut arg_types = vec![index];
    arg_types.extend(carried.iter().map(|&j| op.result(j).ty()));
    let body = Block::new(&arg_types.iter().map(|t| (*t, loc)).collect::<Vec<_>>());
    let b = Cursor::at_end(body);
    // Iteration k of the reversed loop runs primal iteration rk = n - 1 - k.
    let one = ops::const_index(b, 1, loc);
    let last = ops::build_binary(b, "arith.subi", n, one, loc);
    let rk = ops::build_binary(b, "arith.subi", last, body.arg(0), loc);
    let offset = ops::build_binary(b, "arith.muli", rk, step, loc);
    let iv = ops::build_binary(b, "arith.addi", lb, offset, loc);
    let mut inner = fwd.clone();
    inner.insert(old.arg(0), iv);
    if op.num_results() > 0 {
        let Some(s) = stack else {
            return Err(report(op, "internal error: the carried loop was not recomputed with a stack".into()));
        };
        // Accumulators have no stack: their values feed no adjoint rule, so
        // the recomputed iteration may start them from zero.
        let popped = stack::pop(s, b, rk, loc);
        for j in 0..op.num_results() {
            let value = popped.iter().find(|(k, _)| *k == j).map_or_else(|| zero(b, op.result(j).ty(), loc), |(_, v)| *v);
            inner.insert(old.arg(j + 1), value);
        }
    }
    let seed: Adjoints =
        carried.iter().enumerate().map(|(slot, &j)| (old_yield.operand(j), body.arg(slot + 1))).collect();
    let contributions = d.block(old, b, saved.top, &mut inner, seed)?;
    // Split: adjoints of the primal's carried block arguments, and of enclosing values.
    let own: Vec<Value> = carried
        .iter()
        .map(|&j| lookup(&contributions, old.arg(j + 1)).unwrap_or_else(|| zero(b, op.result(j).ty(), loc)))
        .collect();
    let outer: Vec<(Value, Value)> =
        contributions.into_iter().filter(|(v, _)| v.owner_block() != Some(old)).collect();
    let e_body = Emitter { at: b, loc };
    let mut yielded = own;
    for (o, c) in &outer {
        let acc = body.add_arg(o.ty(), loc);
        yielded.push(e_body.bin("arith.addf", acc, *c));
    }
    ops::build_yield(body, &yielded, loc);
    // The loop: k from 0 to n, carrying [own adjoints..., outer accumulators...].
    let zero_idx = ops::const_index(at, 0, loc);
    let one_out = ops::const_index(at, 1, loc);
    let mut inits: Vec<Value> =
        carried.iter().map(|&j| lookup(adj, op.result(j)).unwrap_or_else(|| zero(at, op.result(j).ty(), loc))).collect();
    inits.extend(outer.iter().map(|(o, _)| zero(at, o.ty(), loc)));
    let result_types: Vec<Type> = inits.iter().map(|v| v.ty()).collect();
    let region = Region::new();
    region.append_block(body);
    let mut operands = vec![zero_idx, n, one_out];
    operands.extend(&inits);
    let new_for = at.build(OpBuilder::new("scf.for", loc).operands(&operands).results(&result_types).region(region));
    let e = Emitter { at, loc };
    let results = new_for.results();
    for (slot, &j) in carried.iter().enumerate() {
        accumulate(adj, op.operand(3 + j), results[slot], &e);
    }
    for ((o, _), r) in outer.iter().zip(&results[carried.len()..]) {
        accumulate(adj, *o, *r, &e);
    }
    Ok(())
}

pub fn reverse_ds_loop(d: &Differentiator, op: Op, at: Cursor, fwd: &ValueMap) -> Reversal {
    let loc = op.loc();
    let old = op.region(0).first_block().expect("loop body");
    let mut inner = fwd.clone();
    let body = match DsOp::of(op) {
        Some(DsOp::ParallelFor) => {
            let get = |v: Value| fwd.get(&v).copied().unwrap_or(v);
            let pf = ops::build_parallel_for(at, get(op.operand(0)), get(op.operand(1)), loc);
            pf.body
        }
        _ => {
            let field = op.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
            ops::build_struct_for(at, &field, old.num_args(), loc).1
        }
    };
    for (o, n) in old.args().into_iter().zip(body.args()) {
        inner.insert(o, n);
    }
    let term = body.terminator().expect("body terminator");
    // Adjoints of kernel-level values (parameters, constants) are not needed.
    d.block(old, Cursor::before(term), body, &mut inner, vec![])?;
    Ok(())
}
