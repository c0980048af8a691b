//! `ds-jvp`: forward-mode differentiation of kernels, generating the tangent
//! kernel `@k_jvp` of every kernel `@k` (Taichi's `ti.ad.FwdMode`).
//!
//! Input: a verified module whose fields may name their tangent fields
//! (`dual = @x_dot`, of the field's shape and element type). Output: the
//! same module plus, after each kernel `@k` not marked `ds.no_grad` and not
//! itself a tangent kernel, a kernel `@k_jvp` (attribute `ds.jvp_of = "k"`)
//! with the same parameters. Launched instead of `@k`, it does what `@k`
//! does and also writes, into the dual of each field `@k` writes, the
//! directional derivative of what it writes along the tangents held in the
//! duals of the fields it reads. Fields without a dual are constants (as
//! Taichi's `needs_dual=False`); kernel parameters are constants too.
//!
//! With `declare-duals=1`, every float field that neither has a dual nor is
//! one first gets one,
//! `@x_dot` (a dense field of its shape and element type), adjoint fields
//! included: what a program compiled for forward mode uses.
//!
//! With `switches=1`, each inequality between values with tangents in a
//! (primal) kernel records how far along the tangent its outcome flips: the
//! pass declares a 0-d field `@ds_switch_N` per comparison, located at it,
//! and the tangent kernel atomically mins into it the step `e > 0` at which
//! `a - b + e (a' - b')` reaches zero (+inf if it never does). Reset to
//! +inf before a launch and read after, the fields say which comparisons a
//! perturbation of size e along the seed direction would switch (contact
//! and branch switches, where a gradient can miss an impulse).
//!
//! With `check-finite=1`, every tangent an op's partials give is followed by
//! a `ds.assert` that it is finite, at the op's location.
//!
//! Run after `ds-autodiff`, it also differentiates the gradient kernels:
//! `@k_grad_jvp` gives the tangents of the adjoints (forward-over-reverse),
//! so a backward pass of `_grad_jvp` kernels after a forward pass of `_jvp`
//! kernels computes Hessian-vector products into the adjoints' duals.
//!
//! The tangent kernel is a copy of the kernel in which every op is followed
//! by its tangent:
//! - arith and math ops: the sum of their partials (the table in
//!   [`super::rules`], shared with reverse mode) applied to the operands'
//!   tangents; an operand without a tangent contributes nothing, and a
//!   choice (`select`, `max`) picks between the operands' tangents;
//! - `ds.load` of a field with a dual: the same load from the dual;
//!   `ds.store`: the tangent (or zero) stored into the dual; atomic add and
//!   sub: the same update of the dual; atomic min/max into a field with a
//!   dual are rejected (the winner's tangent is not known);
//! - `scf.if` and `scf.for`: rebuilt with one more result (one more carried
//!   value) per float result, holding its tangent; the top-level loops keep
//!   their ranges;
//! - the per-thread stacks and slots of a gradient kernel (`memref.alloca`
//!   of floats, with their loads and stores): a twin slot holds the tangents.
//!
//! Example, `y[i] = sin(x[i]) * s` with `@x` dual `@x_dot` and `@y` dual
//! `@y_dot`:
//! ```mlir
//! %1 = "ds.load"(%i) {field = @x} : (index) -> f32
//! %t1 = "ds.load"(%i) {field = @x_dot} : (index) -> f32
//! %2 = math.sin %1 : f32
//! %c = math.cos %1 : f32
//! %t2 = arith.mulf %t1, %c : f32
//! %3 = arith.mulf %2, %s : f32
//! %t3 = arith.mulf %t2, %s : f32
//! "ds.store"(%3, %i) {field = @y} : (f32, index) -> ()
//! "ds.store"(%t3, %i) {field = @y_dot} : (f32, index) -> ()
//! ```

use super::NO_GRAD_ATTR;
use super::reverse::{Reported, report};
use super::rules::{self, AdTreatment, Emitter, Partial};
use crate::{PassInfo, PassOptions};
use ds_dialects::ir::{Block, Cursor, Op, OpBuilder, Region, Type, Value};
use ds_dialects::ops::{self, Access, AccessKind, DsOp, GRAD_OF_ATTR, JVP_OF_ATTR};
use std::collections::HashMap;

/// Suffix of generated tangent kernels.
pub const JVP_SUFFIX: &str = "_jvp";

pub static PASS: PassInfo = PassInfo {
    name: "ds-jvp",
    summary: "Generate the forward-mode tangent kernel @k_jvp of every kernel @k",
    options: &["declare-duals", "check-finite", "switches"],
    run,
};

/// Suffix of the dual fields `declare-duals` declares.
pub const DUAL_SUFFIX: &str = "_dot";
/// Prefix of the fields `switches` declares, one per comparison site.
pub const SWITCH_PREFIX: &str = "ds_switch_";

fn run(module: Op, options: &PassOptions) -> bool {
    let flag = |key: &str| match options.flag(key) {
        Ok(d) => Some(d),
        Err(e) => {
            module.ctx().emit_error(module.loc(), &e);
            None
        }
    };
    let (Some(declare), Some(check_finite), Some(switches)) = (flag("declare-duals"), flag("check-finite"), flag("switches"))
    else {
        return false;
    };
    if !crate::verify::check(module) {
        return false;
    }
    let body = ops::module_body(module);
    if declare && declare_duals(body).is_err() {
        return false;
    }
    let duals: HashMap<String, String> =
        ops::fields(body).into_iter().filter_map(|f| Some((f.name, f.dual?))).collect();
    let mut ok = true;
    let mut sites = Sites { module_body: body, next: 0, on: switches };
    for kernel in ops::kernels(body) {
        if kernel.attr(JVP_OF_ATTR).is_some() || kernel.attr(NO_GRAD_ATTR).is_some() {
            continue;
        }
        ok &= tangent_kernel(kernel, body, &duals, check_finite, &mut sites).is_ok();
    }
    ok
}

/// The comparison sites `switches` instruments, each with its field.
struct Sites {
    module_body: Block,
    next: usize,
    on: bool,
}

impl Sites {
    /// A new site's field: 0-d, of type `t`, declared at `loc` (the comparison's).
    fn declare(&mut self, t: Type, loc: ds_dialects::ir::Loc) -> Result<String, String> {
        let name = format!("{SWITCH_PREFIX}{}", self.next);
        self.next += 1;
        if self.module_body.ops().iter().any(|o| o.sym_name().as_deref() == Some(name.as_str())) {
            return Err(format!("cannot declare the switch field @{name}: the module already has a symbol of that name"));
        }
        let first = self.module_body.first_op().map_or(Cursor::at_end(self.module_body), Cursor::before);
        ops::build_field(first, &name, t, &[], None, loc);
        Ok(name)
    }
}

/// Declares `@x_dot` for every float field `@x` that has no dual.
fn declare_duals(module_body: Block) -> Result<(), Reported> {
    let taken: std::collections::HashSet<String> = module_body.ops().iter().filter_map(|o| o.sym_name()).collect();
    let fields = ops::fields(module_body);
    let duals: Vec<String> = fields.iter().filter_map(|f| f.dual.clone()).collect();
    for f in fields {
        if f.dual.is_some() || duals.contains(&f.name) || !f.elem.is_float() {
            continue;
        }
        let name = format!("{}{DUAL_SUFFIX}", f.name);
        if taken.contains(&name) {
            return Err(report(f.op, format!("cannot declare the dual of @{}: the module already has a symbol @{name}", f.name)));
        }
        let at = f.op.next().map_or(Cursor::at_end(module_body), Cursor::before);
        ops::build_field(at, &name, f.elem, &f.shape, None, f.op.loc());
        ops::set_dual(f.op, &name);
    }
    Ok(())
}

fn tangent_kernel(
    kernel: Op,
    module_body: Block,
    duals: &HashMap<String, String>,
    check_finite: bool,
    sites: &mut Sites,
) -> Result<(), Reported> {
    let name = kernel.sym_name().unwrap_or_default();
    let jvp_name = format!("{name}{JVP_SUFFIX}");
    if module_body.ops().iter().any(|o| o.sym_name().as_deref() == Some(jvp_name.as_str())) {
        return Err(report(kernel, format!("cannot generate @{jvp_name}: the module already has a symbol of that name")));
    }
    let ctx = kernel.ctx();
    let after = kernel.next().map_or(Cursor::at_end(module_body), Cursor::before);
    let jvp = after.insert(kernel.deep_clone());
    jvp.set_attr("sym_name", ctx.string_attr(&jvp_name));
    jvp.remove_attr(GRAD_OF_ATTR);
    jvp.set_attr(JVP_OF_ATTR, ctx.string_attr(&name));
    // Switches are looked for in the primal's comparisons, not in a gradient's.
    let sites = (sites.on && kernel.attr(GRAD_OF_ATTR).is_none()).then_some(sites);
    let mut t = Tangents { duals, check_finite, sites, of: HashMap::new(), twins: HashMap::new() };
    match t.block(ops::func_body(jvp)) {
        Ok(()) => {
            crate::simplify::remove_unused(jvp);
            Ok(())
        }
        Err(e) => {
            // SAFETY: `jvp` was inserted above and nothing outside it refers
            // to it (a failure emits only diagnostics); it is not used again.
            unsafe { jvp.erase() };
            Err(e)
        }
    }
}

/// The tangents of one kernel being differentiated.
struct Tangents<'a> {
    /// field -> its dual field.
    duals: &'a HashMap<String, String>,
    /// Where comparisons record their switch distance (`switches`).
    sites: Option<&'a mut Sites>,
    /// Check every tangent an op's partials give for NaN and infinity.
    check_finite: bool,
    /// value -> its tangent; a float value without one has tangent zero.
    of: HashMap<Value, Value>,
    /// per-thread slot (`memref.alloca` result) -> the slot of its tangents.
    twins: HashMap<Value, Value>,
}

/// The insertion point right after `op` (which is never a terminator).
fn after(op: Op) -> Cursor {
    Cursor::before(op.next().expect("a non-terminator op is followed by its block's terminator"))
}

fn is_terminator(op: Op) -> bool {
    matches!(op.name().as_str(), "scf.yield" | ops::BODY_TERMINATOR | "func.return")
}

impl Tangents<'_> {
    fn block(&mut self, block: Block) -> Result<(), Reported> {
        for op in block.ops() {
            if !is_terminator(op) {
                self.op(op)?;
            }
        }
        Ok(())
    }

    fn tangent(&self, v: Value) -> Option<Value> {
        self.of.get(&v).copied()
    }

    /// The tangent of `v`, or a zero of its type at `at`.
    fn tangent_or_zero(&self, v: Value, at: Cursor, loc: ds_dialects::ir::Loc) -> Value {
        self.tangent(v).unwrap_or_else(|| ops::const_scalar(at, v.ty(), 0.0, loc))
    }

    fn op(&mut self, op: Op) -> Result<(), Reported> {
        if let Some(DsOp::ParallelFor | DsOp::StructFor) = DsOp::of(op) {
            return self.block(op.region(0).first_block().expect("loop body"));
        }
        if let Some(a) = Access::read(op) {
            return self.access(&a);
        }
        let name = op.name();
        match name.as_str() {
            "scf.if" => return self.if_op(op),
            "scf.for" => return self.for_op(op),
            "scf.while" => {
                return Err(report(
                    op,
                    "scf.while cannot be differentiated in forward mode yet: write the loop as scf.for with a bound (and break by a flag)".into(),
                ));
            }
            // A gradient kernel's per-thread stacks and slots (ds-autodiff's output).
            "arith.cmpf" if self.sites.is_some() => return self.switch_distance(op),
            "memref.alloca" => {
                let ty = op.result(0).ty();
                if ty.to_string().ends_with("f32>") || ty.to_string().ends_with("f64>") {
                    let twin = after(op).insert(op.deep_clone());
                    self.twins.insert(op.result(0), twin.result(0));
                }
                return Ok(());
            }
            "memref.store" => {
                if let Some(&twin) = self.twins.get(&op.operand(1)) {
                    let at = after(op);
                    let mut operands = vec![self.tangent_or_zero(op.operand(0), at, op.loc()), twin];
                    operands.extend(op.operands().into_iter().skip(2));
                    at.build(OpBuilder::new("memref.store", op.loc()).operands(&operands));
                }
                return Ok(());
            }
            "memref.load" => {
                if let Some(&twin) = self.twins.get(&op.operand(0)) {
                    let mut operands = vec![twin];
                    operands.extend(op.operands().into_iter().skip(1));
                    let load = OpBuilder::new("memref.load", op.loc()).operands(&operands).results(&[op.result(0).ty()]);
                    let t = after(op).build(load).result(0);
                    self.of.insert(op.result(0), t);
                }
                return Ok(());
            }
            _ => {}
        }
        match rules::classify(&name) {
            Some(AdTreatment::NonDifferentiable | AdTreatment::Structural) => Ok(()),
            Some(AdTreatment::Differentiable(rule)) => {
                self.differentiable(op, rule);
                Ok(())
            }
            None => Err(report(
                op,
                format!(
                    "{name} has no derivative rule, so this kernel cannot be differentiated in forward mode; rewrite it with differentiable ops, or mark the kernel ds.no_grad if it needs no derivative"
                ),
            )),
        }
    }

    /// For an inequality `a < b` (`<=`, `>`, `>=`) between values with
    /// tangents: the step `e = -(a - b) / (a' - b')` along the tangent at
    /// which `a - b` reaches zero and the outcome flips, atomically min'ed,
    /// where positive, into the site's field.
    fn switch_distance(&mut self, op: Op) -> Result<(), Reported> {
        // arith.cmpf predicates ogt oge olt ole, ugt uge ult ule.
        let inequality = op.attr("predicate").and_then(|a| a.as_int()).is_some_and(|p| matches!(p, 2..=5 | 9..=12));
        let (a, b) = (op.operand(0), op.operand(1));
        if !inequality || (self.tangent(a).is_none() && self.tangent(b).is_none()) {
            return Ok(());
        }
        let e = Emitter { at: after(op), loc: op.loc() };
        let t = a.ty();
        let field = self.sites.as_mut().expect("switches on").declare(t, op.loc()).map_err(|m| report(op, m))?;
        let margin = e.bin("arith.subf", a, b);
        let (ta, tb) = (self.tangent_or_zero(a, e.at, e.loc), self.tangent_or_zero(b, e.at, e.loc));
        let rate = e.bin("arith.subf", ta, tb);
        let distance = e.neg(e.div(margin, rate));
        let ahead = e.cmpf(ops::CmpF::Ogt, distance, e.constant(t, 0.0));
        let value = e.select(ahead, distance, e.constant(t, f64::INFINITY));
        ops::build_update(e.at, AccessKind::AtomicMin, &field, value, &[], e.loc);
        Ok(())
    }

    /// The result's tangent: the operands' tangents through the partials.
    fn differentiable(&mut self, op: Op, rule: rules::PartialsRule) {
        let tangents: Vec<Option<Value>> = op.operands().into_iter().map(|v| self.tangent(v)).collect();
        if tangents.iter().all(Option::is_none) {
            return;
        }
        let y = op.result(0);
        let e = Emitter { at: after(op), loc: op.loc() };
        let terms: Vec<(Partial, Value)> =
            rule(&e, &op.operands(), y).into_iter().zip(tangents).filter_map(|(p, t)| Some((p?, t?))).collect();
        let tangent = match terms[..] {
            [] => return,
            // A choice between two tangents is one select.
            [(Partial::Where(c), a), (Partial::Unless(d), b)] if c == d => e.select(c, a, b),
            _ => terms
                .into_iter()
                .map(|(p, t)| e.apply(p, t, y.ty()))
                .reduce(|a, b| e.bin("arith.addf", a, b))
                .expect("at least one term"),
        };
        if self.check_finite {
            e.assert_finite(tangent, &format!("non-finite tangent: the derivative through {} is NaN or infinite", op.name()));
        }
        self.of.insert(y, tangent);
    }

    fn access(&mut self, a: &Access) -> Result<(), Reported> {
        let Some(dual) = self.duals.get(&a.field) else { return Ok(()) };
        let (at, loc) = (after(a.op), a.op.loc());
        match a.kind {
            AccessKind::Load => {
                let t = ops::build_load(at, dual, &a.indices, a.op.result(0).ty(), loc);
                self.of.insert(a.op.result(0), t);
            }
            AccessKind::Store => {
                let t = self.tangent_or_zero(a.value.expect("stored value"), at, loc);
                ops::build_update(at, AccessKind::Store, dual, t, &a.indices, loc);
            }
            AccessKind::AtomicAdd | AccessKind::AtomicSub => {
                if let Some(t) = self.tangent(a.value.expect("value")) {
                    ops::build_update(at, a.kind, dual, t, &a.indices, loc);
                }
            }
            // Activity has no tangent (the tangent kernel repeats the primal's).
            AccessKind::Activate | AccessKind::Deactivate | AccessKind::IsActive | AccessKind::Length => {}
            AccessKind::Append => {
                return Err(report(
                    a.op,
                    format!("ds.append into @{}, a field with a dual, cannot be differentiated in forward mode; append into a field without a dual", a.field),
                ));
            }
            AccessKind::AtomicMin | AccessKind::AtomicMax => {
                return Err(report(
                    a.op,
                    format!(
                        "{} into @{}, a field with a dual, cannot be differentiated in forward mode (the winner's tangent is not known); compute the extremum into a field without a dual",
                        a.kind.name(),
                        a.field
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Rebuilds the yield ending `block` with, after its operands, the
    /// tangents of those at `slots` (zero where one has none).
    fn extend_yield(&self, block: Block, slots: &[usize]) {
        let old = block.terminator().expect("scf region ends in scf.yield");
        let (loc, mut values) = (old.loc(), old.operands());
        let at = Cursor::before(old);
        let tangents: Vec<Value> = slots.iter().map(|&j| self.tangent_or_zero(values[j], at, loc)).collect();
        values.extend(tangents);
        // SAFETY: a yield has no results and no regions; `old` is not used again.
        unsafe { old.erase() };
        ops::build_yield(block, &values, loc);
    }

    /// Replaces `old` by `new`, which has `old`'s results followed by the
    /// tangents of those at `slots`, and erases `old` (its regions moved).
    fn replace(&mut self, old: Op, new: Op, slots: &[usize]) {
        let n = old.num_results();
        let results = new.results();
        old.replace_all_uses(&results[..n]);
        for (k, &j) in slots.iter().enumerate() {
            self.of.insert(results[j], results[n + k]);
        }
        // SAFETY: `old`'s results have no uses left and its regions were
        // moved into `new`; nothing refers to it any more.
        unsafe { old.erase() };
    }

    fn moved_regions(old: Op) -> Vec<Region> {
        old.regions()
            .into_iter()
            .map(|r| {
                let fresh = Region::new();
                fresh.take_body(r);
                fresh
            })
            .collect()
    }

    fn if_op(&mut self, op: Op) -> Result<(), Reported> {
        let branches: Vec<Block> = op.regions().iter().filter_map(|r| r.first_block()).collect();
        for b in &branches {
            self.block(*b)?;
        }
        let slots: Vec<usize> = (0..op.num_results())
            .filter(|&j| {
                branches.iter().any(|b| b.terminator().is_some_and(|y| self.tangent(y.operand(j)).is_some()))
            })
            .collect();
        if slots.is_empty() {
            return Ok(());
        }
        for b in &branches {
            self.extend_yield(*b, &slots);
        }
        let mut types: Vec<Type> = op.results().iter().map(|r| r.ty()).collect();
        types.extend(slots.iter().map(|&j| op.result(j).ty()));
        let mut b = OpBuilder::new("scf.if", op.loc()).operands(&[op.operand(0)]).results(&types);
        for r in Self::moved_regions(op) {
            b = b.region(r);
        }
        let new = Cursor::before(op).build(b);
        self.replace(op, new, &slots);
        Ok(())
    }

    fn for_op(&mut self, op: Op) -> Result<(), Reported> {
        let body = op.region(0).first_block().expect("scf.for body");
        let loc = op.loc();
        let slots: Vec<usize> = (0..op.num_results()).filter(|&j| op.result(j).ty().is_float()).collect();
        for &j in &slots {
            let t = body.add_arg(op.result(j).ty(), loc);
            self.of.insert(body.arg(j + 1), t);
        }
        self.block(body)?;
        if slots.is_empty() {
            return Ok(());
        }
        self.extend_yield(body, &slots);
        let at = Cursor::before(op);
        let mut operands = op.operands();
        let inits: Vec<Value> = slots.iter().map(|&j| self.tangent_or_zero(op.operand(3 + j), at, loc)).collect();
        operands.extend(inits);
        let mut types: Vec<Type> = op.results().iter().map(|r| r.ty()).collect();
        types.extend(slots.iter().map(|&j| op.result(j).ty()));
        let mut b = OpBuilder::new("scf.for", loc).operands(&operands).results(&types);
        for r in Self::moved_regions(op) {
            b = b.region(r);
        }
        let new = at.build(b);
        self.replace(op, new, &slots);
        Ok(())
    }
}
