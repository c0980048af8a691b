//! `ds-gather-updates`: a loop's updates of its neighbours' elements made
//! gathers, so that every iteration updates one element (CPU).
//!
//! Input: a verified module. Output: the same module, with each `scf.for`
//! or `ds.parallel_for` that qualifies rewritten. A loop qualifies when its
//! body updates fields (`ds.atomic_add`/`ds.atomic_sub`) at `k + c` for more
//! than one constant c, k being the loop's element index (`±iv` plus
//! something the loop does not change: the reversed loops of gradients
//! count): the adjoint of a stencil read along the loop, `g[k - 1] += a(k);
//! g[k] += b(k); g[k + 1] += c(k)`. Along a serial loop such updates do not
//! vectorize (iteration k and k + 1 both update `g[k + 1]`), and neither do
//! the plain load-add-stores the CPU lowering makes of them; along a
//! parallel loop they need atomics or the banded chunks of
//! `convert-ds-to-scf`. Rewritten, iteration k makes every update at
//! `k + c0` (c0, the reference offset, the one most updates have): the
//! update iteration k made at `k + c` is made by iteration `k + c - c0`,
//! which recomputes its value and indices at `k`'s position (the ops they
//! depend on: arithmetic and loads), so `g[k] += b(k) + a(k + 1) + c(k - 1)`
//! at c0 = 0. Iterations no longer share an element along the loop: the
//! vector loop LLVM makes of the body is the gather form of the stencil's
//! adjoint, and a parallel loop's thread owns its elements. No partial
//! derivative is stored; a k-point stencil recomputes at most k values.
//!
//! The new loops (of the old one's kind) run over the element range widened
//! by the shifts: a main loop where every update's source iteration exists,
//! and before and after it the few border iterations, each update there
//! under an `scf.if` that its source iteration exists (and the loop's own
//! work under one that the iteration does). Periodic indices,
//! `(k + c) % n` with a constant n (smoke's `(x + 1) % n`), count when the
//! loop runs over one period, [0, n): the range is not widened, and in the
//! few iterations at its ends the sources wrap (`(k - shift) mod n`), so
//! that the main loop's indices are `k + c` again, which LLVM vectorizes.
//!
//! Legal when the iterations commute and recomputation reads what the
//! iteration read: the body has only arithmetic, `scf.if`, loads, stores,
//! atomic adds and subs, and asserts; for every two accesses of one field
//! that write, both are atomic adds or subs, or they are provably apart
//! (`ops::provably_apart`), or they have the same index values, one of them
//! `k`-based (the element is the iteration's own); a load that a moved
//! update's value depends on is apart from every write of its field, except
//! stores of loop-invariant values to its own element (the adjoint zeroing
//! `x_grad[k]` after reading it), which follow every load of the field and
//! are deferred to a loop after the others. Otherwise the loop is left as
//! it is.
//!
//! Only for the CPU (`ds-to-llvm-cpu`, the runtime's CPU target): a GPU runs
//! a thread per element, and its atomics on distinct addresses are cheap.
//!
//! Example (the adjoint of `y[k] = x[k - 1] + x[k + 1]`):
//! ```mlir
//! scf.for %k = %c1 to %c255 step %c1 {
//!   %g = "ds.load"(%k) {field = @y_grad} : (index) -> f32
//!   "ds.atomic_add"(%g, %km1) {field = @x_grad} : (f32, index) -> ()
//!   "ds.atomic_add"(%g, %kp1) {field = @x_grad} : (f32, index) -> ()
//! }
//! // becomes, with k = %j - 1 the element both updates now touch:
//! // %j in [0, 2) and [254, 256): each update under scf.if (its source in [1, 255));
//! // %j in [2, 254): y_grad[j + 1] added to x_grad[j], then y_grad[j - 1]
//! ```

use crate::{PassInfo, PassOptions};
use ds_dialects::ir::{Block, Cursor, Loc, Op, Value, ValueMap, clone_mapped};
use ds_dialects::ops::{self, Access, AccessKind, CmpI, DsOp};
use std::collections::{HashMap, HashSet};

pub static PASS: PassInfo = PassInfo {
    name: "ds-gather-updates",
    summary: "Make a loop's updates of neighbouring elements (a stencil's adjoint) gathers, one element per iteration (CPU)",
    options: &[],
    run,
};

fn run(module: Op, _: &PassOptions) -> bool {
    if !crate::verify::check(module) {
        return false;
    }
    for kernel in ops::kernels(ops::module_body(module)) {
        // A rewritten loop is erased; no loop of the list is inside another
        // that is rewritten (a qualifying body holds no loop).
        let loops: Vec<Op> = kernel.walk().into_iter().filter(|o| o.name() == "scf.for" || DsOp::of(*o) == Some(DsOp::ParallelFor)).collect();
        for l in loops {
            if let Some(plan) = Plan::of(kernel, l) {
                plan.rewrite();
            }
        }
    }
    true
}

/// A qualifying loop and what its rewrite moves.
struct Plan {
    l: Op,
    body: Block,
    /// The element index: every field index the loop varies is `k + c`.
    k: Value,
    /// The ops computing `k` from the induction variable (not cloned).
    k_chain: HashSet<Op>,
    /// The ops `k` depends on in the body, in order (to compute it for the
    /// first and last iteration).
    k_slice: Vec<Op>,
    /// Top-level updates moved to another iteration, with their shift
    /// (offset minus the reference offset).
    shifted: Vec<(Op, i64)>,
    /// Stores to the iteration's own element, run after the others.
    deferred: Vec<Op>,
    /// For indices that wrap, `(k + c) % n`: n, the loop's trip count.
    period: Option<i64>,
}

/// How a value varies with the induction variable `iv`: `Some(a)` for
/// `a * iv + (something the loop does not change)`, None when not so.
struct Affine {
    l: Op,
    iv: Value,
    memo: HashMap<Value, Option<i64>>,
}

impl Affine {
    fn coefficient(&mut self, v: Value) -> Option<i64> {
        if v == self.iv {
            return Some(1);
        }
        if let Some(&c) = self.memo.get(&v) {
            return c;
        }
        let c = match v.defining_op() {
            None => v.owner_block().and_then(|b| b.parent_op()).is_none_or(|p| p != self.l && !p.is_inside(self.l)).then_some(0),
            Some(d) if !d.is_inside(self.l) => Some(0),
            Some(d) => {
                let name = d.name();
                let operand = |s: &mut Self, i: usize| s.coefficient(d.operand(i));
                match name.as_str() {
                    "arith.constant" => Some(0),
                    "arith.addi" => operand(self, 0).zip(operand(self, 1)).map(|(a, b)| a + b),
                    "arith.subi" => operand(self, 0).zip(operand(self, 1)).map(|(a, b)| a - b),
                    "arith.muli" => {
                        let (a, b) = (operand(self, 0), operand(self, 1));
                        match (ops::constant_int(d.operand(0)), ops::constant_int(d.operand(1))) {
                            (_, Some(c)) => a.map(|a| a * c),
                            (Some(c), _) => b.map(|b| b * c),
                            _ => (a == Some(0) && b == Some(0)).then_some(0),
                        }
                    }
                    _ if is_pure_arith(d) => d.operands().into_iter().all(|o| self.coefficient(o) == Some(0)).then_some(0),
                    _ => None,
                }
            }
        };
        self.memo.insert(v, c);
        c
    }
}

/// Arithmetic without regions or effects (arith and math ops).
fn is_pure_arith(op: Op) -> bool {
    let name = op.name();
    op.regions().is_empty() && (name.starts_with("arith.") || name.starts_with("math."))
}

/// Ops a rewritten body may hold.
fn allowed_in_body(op: Op) -> bool {
    if is_pure_arith(op) || matches!(op.name().as_str(), "scf.if" | "scf.yield" | ops::BODY_TERMINATOR) {
        return true;
    }
    matches!(
        DsOp::of(op),
        Some(DsOp::Load | DsOp::Store | DsOp::AtomicAdd | DsOp::AtomicSub | DsOp::Assert | DsOp::StopGrad)
    )
}

/// `(y, n)` for an index `y % n` (`arith.remsi`/`remui`) with a constant n > 1.
fn wrapped(v: Value) -> Option<(Value, i64)> {
    let d = v.defining_op().filter(|d| matches!(d.name().as_str(), "arith.remsi" | "arith.remui"))?;
    ops::constant_int(d.operand(1)).filter(|n| *n > 1).map(|n| (d.operand(0), n))
}

/// The value of an index computed by constants and integer arithmetic from
/// the values `known` gives, or None.
fn evaluate(v: Value, known: &HashMap<Value, i64>, depth: usize) -> Option<i64> {
    if let Some(x) = known.get(&v) {
        return Some(*x);
    }
    let d = v.defining_op().filter(|_| depth < 64)?;
    let arg = |i: usize| evaluate(d.operand(i), known, depth + 1);
    match d.name().as_str() {
        "arith.constant" => d.attr("value")?.as_int(),
        "arith.addi" => arg(0)?.checked_add(arg(1)?),
        "arith.subi" => arg(0)?.checked_sub(arg(1)?),
        "arith.muli" => arg(0)?.checked_mul(arg(1)?),
        "arith.ceildivsi" => {
            let (a, b) = (arg(0)?, arg(1)?);
            (a >= 0 && b > 0).then(|| (a + b - 1) / b)
        }
        "arith.minsi" => Some(arg(0)?.min(arg(1)?)),
        "arith.maxsi" => Some(arg(0)?.max(arg(1)?)),
        "arith.select" => if arg(0)? != 0 { arg(1) } else { arg(2) },
        "arith.cmpi" => {
            let (a, b) = (arg(0)?, arg(1)?);
            let holds = match d.attr("predicate")?.as_int()? {
                p if p == CmpI::Eq as i64 => a == b,
                p if p == CmpI::Ne as i64 => a != b,
                p if p == CmpI::Slt as i64 => a < b,
                p if p == CmpI::Sle as i64 => a <= b,
                p if p == CmpI::Sgt as i64 => a > b,
                p if p == CmpI::Sge as i64 => a >= b,
                _ => return None,
            };
            Some(i64::from(holds))
        }
        _ => None,
    }
}

/// The top-level op of `body` that holds `op` (itself when at top level).
fn top_level(op: Op, body: Block) -> Option<Op> {
    let mut cur = op;
    loop {
        if cur.block() == Some(body) {
            return Some(cur);
        }
        cur = cur.parent()?;
    }
}

/// The ops of `l`'s body that `roots` depend on, in body order, stopping at
/// values defined outside the loop and where `stop` says; None when one of
/// them is not at the body's top level or not `allowed`, or when the slice
/// reaches one of the loop's block arguments that `stop` does not take.
fn backward_slice(l: Op, body: Block, roots: &[Value], stop: &dyn Fn(Value) -> bool, allowed: &dyn Fn(Op) -> bool) -> Option<Vec<Op>> {
    let mut seen: HashSet<Op> = HashSet::new();
    let mut stack: Vec<Value> = roots.to_vec();
    while let Some(v) = stack.pop() {
        if stop(v) {
            continue;
        }
        let Some(d) = v.defining_op() else {
            if v.owner_block() == Some(body) {
                return None;
            }
            continue;
        };
        if !d.is_inside(l) || seen.contains(&d) {
            continue;
        }
        if d.block() != Some(body) || !allowed(d) {
            return None;
        }
        seen.insert(d);
        stack.extend(d.operands());
    }
    Some(body.ops().into_iter().filter(|o| seen.contains(o)).collect())
}

/// What a moved op's operands depend on in the body ([`backward_slice`]
/// up to `k`): arithmetic, stop_grads and, with `loads`, loads.
fn operand_slice(l: Op, body: Block, op: Op, k: Value, k_chain: &HashSet<Op>, loads: bool) -> Option<Vec<Op>> {
    let allowed = |d: Op| {
        let kind = DsOp::of(d);
        !k_chain.contains(&d) && (is_pure_arith(d) || kind == Some(DsOp::StopGrad) || (loads && kind == Some(DsOp::Load)))
    };
    backward_slice(l, body, &op.operands(), &|v| v == k, &allowed)
}

impl Plan {
    fn of(kernel: Op, l: Op) -> Option<Plan> {
        let unit_step = match l.num_operands() {
            3 => l.name() == "scf.for" && ops::constant_int(l.operand(2)) == Some(1),
            n => n == 2 && DsOp::of(l) == Some(DsOp::ParallelFor),
        };
        if l.num_results() != 0 || !unit_step {
            return None;
        }
        let body = l.region(0).first_block()?;
        let iv = body.arg(0);
        let nested = l.walk();
        if !nested.iter().all(|o| allowed_in_body(*o)) {
            return None;
        }
        let mut affine = Affine { l, iv, memo: HashMap::new() };
        let accesses: Vec<Access> = nested.iter().filter_map(|o| Access::read(*o)).collect();

        // The element index, and each access's offset from it (modulo the
        // period for a wrapped index, `(k + c) % n`, in (-n/2, n/2]).
        let mut k: Option<Value> = None;
        let mut period: Option<i64> = None;
        let mut offsets: HashMap<Op, (i64, bool)> = HashMap::new();
        for a in &accesses {
            for x in &a.indices {
                let (inner, n) = wrapped(*x).map_or((*x, None), |(y, n)| (y, Some(n)));
                let (Some(base), offset) = ops::index_offset(inner) else { continue };
                match affine.coefficient(base) {
                    Some(0) => {}
                    Some(1 | -1) if k.is_none_or(|k| k == base) && !offsets.contains_key(&a.op) && (n.is_none() || period.is_none_or(|p| Some(p) == n)) => {
                        k = Some(base);
                        period = period.or(n);
                        let offset = n.map_or(offset, |n| {
                            let c = offset.rem_euclid(n);
                            if c > n / 2 { c - n } else { c }
                        });
                        offsets.insert(a.op, (offset, n.is_some()));
                    }
                    _ => return None,
                }
            }
        }
        let k = k?;

        // The ops computing k from iv; nothing else may use iv or them.
        let mut k_chain = HashSet::new();
        let mut stack = vec![k];
        while let Some(v) = stack.pop() {
            let Some(d) = v.defining_op().filter(|d| d.is_inside(l)) else { continue };
            if affine.coefficient(v) != Some(0) && k_chain.insert(d) {
                if d.block() != Some(body) {
                    return None;
                }
                stack.extend(d.operands());
            }
        }
        let chain_values: HashSet<Value> = k_chain.iter().flat_map(|o| o.results()).filter(|r| *r != k).collect();
        let escapes = nested
            .iter()
            .filter(|o| !k_chain.contains(o))
            .flat_map(|o| o.operands())
            .any(|v| v != k && (v == iv || chain_values.contains(&v)));
        if escapes {
            return None;
        }
        let k_slice = backward_slice(l, body, &[k], &|v| v == iv, &is_pure_arith)?;

        // The reference offset: the one most k-indexed updates have.
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for a in accesses.iter().filter(|a| a.kind.accumulates()) {
            if let Some((o, _)) = offsets.get(&a.op) {
                *counts.entry(*o).or_default() += 1;
            }
        }
        let reference = counts.iter().max_by_key(|(o, n)| (**n, std::cmp::Reverse(o.abs()), std::cmp::Reverse(**o))).map(|(o, _)| *o)?;
        let shifted: Vec<(Op, i64)> = accesses
            .iter()
            .filter(|a| a.kind.accumulates())
            .filter_map(|a| offsets.get(&a.op).filter(|(o, _)| *o != reference).map(|(o, _)| (a.op, o - reference)))
            .collect();
        if shifted.is_empty() || shifted.iter().any(|(u, _)| u.block() != Some(body)) {
            return None;
        }
        // A wrapped loop runs over one period exactly, [0, n), iteration k
        // owning element k; its moved updates all wrap (their sources
        // exist: no border iterations).
        if let Some(n) = period {
            let range = Self::constant_range(l, body, k, &k_slice)?;
            if range != (0, n) || reference != 0 || shifted.iter().any(|(u, _)| offsets.get(u).is_some_and(|(_, w)| !w)) {
                return None;
            }
        }

        // Iterations commute: writes of one field are adds, apart, or of the
        // iteration's own element.
        let own = |a: &Access, b: &Access| a.indices == b.indices && offsets.contains_key(&a.op);
        let commute = |a: &Access, b: &Access| {
            !(a.kind.writes() || b.kind.writes())
                || (a.kind.accumulates() && b.kind.accumulates())
                || ops::provably_apart(kernel, &a.indices, &b.indices)
                || own(a, b)
        };
        for a in &accesses {
            if !accesses.iter().filter(|b| b.field == a.field).all(|b| commute(a, b)) {
                return None;
            }
        }

        // Recomputed loads read what the moved update's iteration read.
        let mut deferred: Vec<Op> = Vec::new();
        for (u, _) in &shifted {
            let slice = operand_slice(l, body, *u, k, &k_chain, true)?;
            for load in slice.iter().filter_map(|o| Access::read(*o)) {
                for w in accesses.iter().filter(|w| w.field == load.field && w.kind.writes()) {
                    if ops::provably_apart(kernel, &load.indices, &w.indices) {
                        continue;
                    }
                    let known = deferred.contains(&w.op);
                    if w.kind != AccessKind::Store || !own(&load, w) || (!known && !Self::deferrable(kernel, l, body, w, &accesses, k, &k_chain)) {
                        return None;
                    }
                    if !known {
                        deferred.push(w.op);
                    }
                }
            }
        }
        Some(Plan { l, body, k, k_chain, k_slice, shifted, deferred, period })
    }

    /// `k`'s range `[lo, hi)` over the loop's iterations, when constant and
    /// not empty.
    fn constant_range(l: Op, body: Block, k: Value, k_slice: &[Op]) -> Option<(i64, i64)> {
        let (lb, ub) = (evaluate(l.operand(0), &HashMap::new(), 0)?, evaluate(l.operand(1), &HashMap::new(), 0)?);
        let at = |iv: i64| -> Option<i64> {
            let known = HashMap::from([(body.arg(0), iv)]);
            // k's slice is arithmetic on iv and values the loop does not change.
            k_slice.iter().all(|op| op.results().iter().all(|r| evaluate(*r, &known, 0).is_some())).then_some(())?;
            evaluate(k, &known, 0)
        };
        let (first, last) = (at(lb)?, at(ub.checked_sub(1)?)?);
        (lb < ub).then(|| (first.min(last), first.max(last) + 1))
    }

    /// Whether store `w` to the iteration's own element may run after all
    /// the loop's other work: at top level, its value computed without
    /// loads, after every load of its field, and the only kind of write to
    /// its element.
    fn deferrable(kernel: Op, l: Op, body: Block, w: &Access, accesses: &[Access], k: Value, k_chain: &HashSet<Op>) -> bool {
        let position = |op: Op| top_level(op, body).and_then(|t| body.ops().iter().position(|o| *o == t));
        let Some(at) = position(w.op).filter(|_| w.op.block() == Some(body)) else { return false };
        operand_slice(l, body, w.op, k, k_chain, false).is_some()
            && accesses.iter().filter(|a| a.field == w.field).all(|a| match a.kind {
                AccessKind::Load => position(a.op).is_some_and(|p| p < at),
                AccessKind::Store => true,
                _ => ops::provably_apart(kernel, &a.indices, &w.indices),
            })
    }

    fn rewrite(self) {
        let (l, loc) = (self.l, self.l.loc());
        let at = Cursor::before(l);
        let (lb, ub) = (l.operand(0), l.operand(1));
        let index = |v: i64| ops::const_index(at, v, loc);
        let bin = |name: &str, a: Value, b: Value| ops::build_binary(at, name, a, b, loc);

        // k's range [lo, hi) over the loop's iterations.
        let k_at = |iv_value: Value| -> Value {
            let mut map = ValueMap::from([(self.body.arg(0), iv_value)]);
            for op in &self.k_slice {
                clone_mapped(*op, at, &mut map);
            }
            map[&self.k]
        };
        let last = bin("arith.subi", ub, index(1));
        let (first_k, last_k) = (k_at(lb), k_at(last));
        let lo = bin("arith.minsi", first_k, last_k);
        let top = bin("arith.addi", bin("arith.maxsi", first_k, last_k), index(1));
        let nonempty = ops::build_cmpi(at, CmpI::Slt, lb, ub, loc);
        let hi = ops::build_select(at, nonempty, top, lo, loc);

        let below = self.shifted.iter().map(|(_, d)| *d).min().unwrap_or(0).min(0);
        let above = self.shifted.iter().map(|(_, d)| *d).max().unwrap_or(0).max(0);
        let a = bin("arith.addi", lo, index(below));
        let b = bin("arith.addi", lo, index(above));
        let c = bin("arith.addi", hi, index(below));
        let e = bin("arith.addi", hi, index(above));
        let main_end = bin("arith.maxsi", b, c);
        let bounds = Bounds { lo, hi };
        match self.period {
            // One period, [lo, hi) = [0, n): at its ends the sources wrap.
            Some(n) => {
                self.emit_loop(at, lo, bin("arith.minsi", b, hi), Sources::Wrap(n));
                self.emit_loop(at, b, main_end, Sources::Exist);
                self.emit_loop(at, main_end, hi, Sources::Wrap(n));
            }
            None => {
                self.emit_loop(at, a, bin("arith.minsi", b, e), Sources::Guarded(&bounds));
                self.emit_loop(at, b, main_end, Sources::Exist);
                self.emit_loop(at, main_end, e, Sources::Guarded(&bounds));
            }
        }
        if !self.deferred.is_empty() {
            let (new, body, end) = self.build_loop(at, lo, hi);
            let mut map = ValueMap::from([(self.k, body.arg(0))]);
            for w in &self.deferred {
                self.clone_with_slice(*w, Cursor::before(end), &mut map);
            }
            crate::simplify::remove_unused(new);
        }
        // SAFETY: the loop has no results, and every handle into it (the
        // plan's ops and values) dies with `self` here.
        unsafe { l.erase() };
    }

    /// A loop over elements `from..to`: each iteration the old body's own
    /// work, then each moved update from its source iteration, found as
    /// `sources` says.
    fn emit_loop(&self, at: Cursor, from: Value, to: Value, sources: Sources) {
        let loc = self.l.loc();
        let (new, body, end) = self.build_loop(at, from, to);
        let j = body.arg(0);
        let guard = match sources {
            Sources::Guarded(bounds) => Some(bounds),
            Sources::Exist | Sources::Wrap(_) => None,
        };
        let inside = |e: Cursor, k: Value| guard.map(|g| g.contains(e, k, loc)).map_or(e, |cond| {
            let (_, then_b, else_b) = ops::build_if(e, cond, &[], loc);
            ops::build_yield(else_b, &[], loc);
            Cursor::before(ops::build_yield(then_b, &[], loc))
        });
        let e = Cursor::before(end);
        // The old body's own work.
        let own = inside(e, j);
        let mut map = ValueMap::from([(self.k, j)]);
        let moved: HashSet<Op> = self.shifted.iter().map(|(u, _)| *u).chain(self.deferred.iter().copied()).collect();
        let terminator = self.body.terminator();
        for op in self.body.ops() {
            if Some(op) != terminator && !self.k_chain.contains(&op) && !moved.contains(&op) {
                clone_mapped(op, own, &mut map);
            }
        }
        // Each moved update, from iteration j - shift.
        for (u, shift) in &self.shifted {
            let source = match sources {
                // (j - shift) mod n, from j + n - shift in [1, 2n).
                Sources::Wrap(n) => {
                    let up = ops::build_binary(e, "arith.addi", j, ops::const_index(e, n - shift, loc), loc);
                    ops::build_binary(e, "arith.remsi", up, ops::const_index(e, n, loc), loc)
                }
                Sources::Exist | Sources::Guarded(_) => ops::build_binary(e, "arith.addi", j, ops::const_index(e, -shift, loc), loc),
            };
            let spot = inside(e, source);
            let mut map = ValueMap::from([(self.k, source)]);
            let moved = self.clone_with_slice(*u, spot, &mut map);
            if self.period.is_some() {
                // Its wrapped index is element j itself: say so (LLVM sees
                // the element the iteration owns, not a remainder of one).
                for (i, x) in u.operands().into_iter().enumerate().skip(1) {
                    if wrapped(x).is_some_and(|(y, _)| ops::index_offset(y).0 == Some(self.k)) {
                        moved.set_operand(i, j);
                    }
                }
            }
        }
        crate::simplify::remove_unused(new);
    }

    /// An empty loop of the old one's kind (serial or parallel) over
    /// `from..to`: the op, its body and the body's terminator.
    fn build_loop(&self, at: Cursor, from: Value, to: Value) -> (Op, Block, Op) {
        let loc = self.l.loc();
        if self.l.name() == "scf.for" {
            let step = ops::const_index(at, 1, loc);
            return ops::build_scf_for(at, from, to, step, loc);
        }
        let new = ops::build_parallel_for(at, from, to, loc);
        let end = new.body.terminator().expect("a parallel_for body ends in its terminator");
        (new.op, new.body, end)
    }

    /// Clones `op` at `at` after the ops of the body it depends on; the clone.
    fn clone_with_slice(&self, op: Op, at: Cursor, map: &mut ValueMap) -> Op {
        let slice = operand_slice(self.l, self.body, op, self.k, &self.k_chain, true).unwrap_or_default();
        for s in slice {
            clone_mapped(s, at, map);
        }
        clone_mapped(op, at, map)
    }
}

/// Where a loop of the rewrite finds each moved update's source iteration
/// `j - shift`.
enum Sources<'a> {
    /// It exists (the main loop).
    Exist,
    /// It may not: each update under a test that it is in the old range.
    Guarded(&'a Bounds),
    /// At `(j - shift) mod n` (a wrapped loop's ends).
    Wrap(i64),
}

/// The element range of the old loop, for the border iterations' guards.
struct Bounds {
    lo: Value,
    hi: Value,
}

impl Bounds {
    /// `lo <= k < hi`, built at `at`.
    fn contains(&self, at: Cursor, k: Value, loc: Loc) -> Value {
        let above = ops::build_cmpi(at, CmpI::Sge, k, self.lo, loc);
        let below = ops::build_cmpi(at, CmpI::Slt, k, self.hi, loc);
        ops::build_binary(at, "arith.andi", above, below, loc)
    }
}
