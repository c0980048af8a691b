//! The derivative rules of single ops: one table, [`RULES`], with one record
//! per op (as Enzyme's `MathDerivatives.td` has one `def` per op), read in
//! both directions: by `ds-autodiff` (reverse: each operand's adjoint gets
//! its partial applied to the result's adjoint) and by `ds-jvp` (forward:
//! the result's tangent is the sum of the partials applied to the operands'
//! tangents).
//!
//! A record names the op and its [`AdTreatment`]: `Differentiable` with the
//! op's [`PartialsRule`] next to it, `NonDifferentiable` (no derivative flows
//! through it: comparisons, integer math, rounding, checks), or `Structural`
//! (control flow, field accesses, terminators and declarations, handled by
//! each pass's own sweep). An op with no record is rejected with its
//! location. ds ops are named by `DsOp::X.name()`.
//!
//! A partial is a linear map ([`Partial`]): one, minus one, times or over a
//! value, a choice (the seed where a condition holds, zero elsewhere), or a
//! float conversion. Both directions apply the same map (a conversion is
//! applied towards the type needed: the result's forward, the operand's in
//! reverse).
//!
//! Example record: `AdRule::differentiable("math.sin", |e, x, _| vec![Some(Partial::Times(e.un("math.cos", x[0])))])`.

use ds_dialects::ir::{Cursor, Loc, OpBuilder, Type, Value};
use ds_dialects::ops::{self, CmpF, DsOp};
use Partial::{Convert, MinusOne, One, Over, Times};

/// The partial derivative of an op's result with respect to one operand, as
/// the linear map it applies to a seed (an adjoint or a tangent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Partial {
    /// The seed itself.
    One,
    /// The seed negated.
    MinusOne,
    /// The seed times a value.
    Times(Value),
    /// The seed over a value (a derivative `1 / v`, kept as one division).
    Over(Value),
    /// The seed where the `i1` condition holds, else zero.
    Where(Value),
    /// The seed where the `i1` condition fails, else zero.
    Unless(Value),
    /// The seed converted to the other float width (`arith.extf`/`truncf`).
    Convert,
}

/// The partials of a differentiable op, one per operand (`None` where no
/// derivative flows to an operand), given an emitter at the derivative's
/// insertion point, the (recomputed) operands `x` and result `y`.
pub type PartialsRule = fn(e: &Emitter, x: &[Value], y: Value) -> Vec<Option<Partial>>;

/// How autodiff (both directions) treats an op.
#[derive(Clone, Copy, Debug)]
pub enum AdTreatment {
    /// Derivatives flow through the op by its partials.
    Differentiable(PartialsRule),
    /// No gradient flows through the op.
    NonDifferentiable,
    /// The reverse sweep handles the op itself.
    Structural,
}

/// One record of the rule table.
#[derive(Clone, Copy, Debug)]
pub struct AdRule {
    pub op: &'static str,
    pub treatment: AdTreatment,
}

impl AdRule {
    const fn differentiable(op: &'static str, rule: PartialsRule) -> AdRule {
        AdRule { op, treatment: AdTreatment::Differentiable(rule) }
    }
    const fn non_differentiable(op: &'static str) -> AdRule {
        AdRule { op, treatment: AdTreatment::NonDifferentiable }
    }
    const fn structural(op: &'static str) -> AdRule {
        AdRule { op, treatment: AdTreatment::Structural }
    }
}

/// How autodiff treats the op named `name`, or `None` if it cannot
/// differentiate it.
pub fn classify(name: &str) -> Option<AdTreatment> {
    RULES.iter().find(|r| r.op == name).map(|r| r.treatment)
}

/// Emits arithmetic at one point, all with the primal op's location.
pub struct Emitter {
    pub at: Cursor,
    pub loc: Loc,
}

impl Emitter {
    pub fn bin(&self, name: &str, a: Value, b: Value) -> Value {
        ops::build_binary(self.at, name, a, b, self.loc)
    }
    pub fn un(&self, name: &str, a: Value) -> Value {
        self.at.build(OpBuilder::new(name, self.loc).operands(&[a]).results(&[a.ty()])).result(0)
    }
    pub fn cast(&self, name: &str, a: Value, to: Type) -> Value {
        self.at.build(OpBuilder::new(name, self.loc).operands(&[a]).results(&[to])).result(0)
    }
    pub fn constant(&self, t: Type, v: f64) -> Value {
        ops::const_scalar(self.at, t, v, self.loc)
    }
    pub fn mul(&self, a: Value, b: Value) -> Value {
        self.bin("arith.mulf", a, b)
    }
    pub fn div(&self, a: Value, b: Value) -> Value {
        self.bin("arith.divf", a, b)
    }
    pub fn neg(&self, a: Value) -> Value {
        self.un("arith.negf", a)
    }
    /// `cond ? a : b`.
    pub fn select(&self, cond: Value, a: Value, b: Value) -> Value {
        ops::build_select(self.at, cond, a, b, self.loc)
    }
    /// `a <pred> b` for floats.
    pub fn cmpf(&self, predicate: CmpF, a: Value, b: Value) -> Value {
        ops::build_cmpf(self.at, predicate, a, b, self.loc)
    }
    /// `sqrt(1 - a^2)` (the derivatives of asin and acos).
    fn one_minus_square_root(&self, a: Value) -> Value {
        let one = self.constant(a.ty(), 1.0);
        self.un("math.sqrt", self.bin("arith.subf", one, self.mul(a, a)))
    }
    /// `ds.assert` that `v` is finite (neither NaN nor infinite), failing
    /// the launch with `message` at the emitter's location (the primal op).
    pub fn assert_finite(&self, v: Value, message: &str) {
        let inf = self.constant(v.ty(), f64::INFINITY);
        let finite = self.cmpf(CmpF::Olt, self.un("math.absf", v), inf);
        ops::build_assert(self.at, finite, message, self.loc);
    }
    /// The partials of `cond ? a : b` for `a` and `b`.
    fn choice(cond: Value) -> Vec<Option<Partial>> {
        vec![Some(Partial::Where(cond)), Some(Partial::Unless(cond))]
    }
    /// `p` applied to the seed `s`, giving a value of type `to` (which only
    /// a conversion changes).
    pub fn apply(&self, p: Partial, s: Value, to: Type) -> Value {
        match p {
            Partial::One => s,
            Partial::MinusOne => self.neg(s),
            Partial::Times(v) => self.mul(s, v),
            Partial::Over(v) => self.div(s, v),
            Partial::Where(c) => self.select(c, s, self.constant(s.ty(), 0.0)),
            Partial::Unless(c) => self.select(c, self.constant(s.ty(), 0.0), s),
            Partial::Convert if s.ty() == to => s,
            Partial::Convert => {
                let widens = s.ty().width() < to.width();
                self.cast(if widens { "arith.extf" } else { "arith.truncf" }, s, to)
            }
        }
    }
}

/// Every op autodiff knows, with its treatment.
pub static RULES: &[AdRule] = &[
    // ---- arith, differentiable -----------------------------------------------
    AdRule::differentiable("arith.addf", |_, _, _| vec![Some(One), Some(One)]),
    AdRule::differentiable("arith.subf", |_, _, _| vec![Some(One), Some(MinusOne)]),
    AdRule::differentiable("arith.mulf", |_, x, _| vec![Some(Times(x[1])), Some(Times(x[0]))]),
    // d/db (a / b) = -a / b^2 = -(y / b).
    AdRule::differentiable("arith.divf", |e, x, y| vec![Some(Over(x[1])), Some(Times(e.neg(e.div(y, x[1]))))]),
    AdRule::differentiable("arith.negf", |_, _, _| vec![Some(MinusOne)]),
    AdRule::differentiable("arith.maximumf", |e, x, _| Emitter::choice(e.cmpf(CmpF::Oge, x[0], x[1]))),
    AdRule::differentiable("arith.maxnumf", |e, x, _| Emitter::choice(e.cmpf(CmpF::Oge, x[0], x[1]))),
    AdRule::differentiable("arith.minimumf", |e, x, _| Emitter::choice(e.cmpf(CmpF::Ole, x[0], x[1]))),
    AdRule::differentiable("arith.minnumf", |e, x, _| Emitter::choice(e.cmpf(CmpF::Ole, x[0], x[1]))),
    AdRule::differentiable("arith.select", |_, x, _| [vec![None], Emitter::choice(x[0])].concat()),
    // a - b trunc(a / b): d/da = 1, d/db = -trunc(a / b).
    AdRule::differentiable("arith.remf", |e, x, _| {
        let q = e.un("math.trunc", e.div(x[0], x[1]));
        vec![Some(One), Some(Times(e.neg(q)))]
    }),
    AdRule::differentiable("arith.extf", |_, _, _| vec![Some(Convert)]),
    AdRule::differentiable("arith.truncf", |_, _, _| vec![Some(Convert)]),
    // ---- math, differentiable ------------------------------------------------
    AdRule::differentiable("math.sin", |e, x, _| vec![Some(Times(e.un("math.cos", x[0])))]),
    AdRule::differentiable("math.cos", |e, x, _| vec![Some(Times(e.neg(e.un("math.sin", x[0]))))]),
    AdRule::differentiable("math.tanh", |e, _, y| {
        let one = e.constant(y.ty(), 1.0);
        vec![Some(Times(e.bin("arith.subf", one, e.mul(y, y))))]
    }),
    AdRule::differentiable("math.exp", |_, _, y| vec![Some(Times(y))]),
    AdRule::differentiable("math.log", |_, x, _| vec![Some(Over(x[0]))]),
    AdRule::differentiable("math.sqrt", |e, _, y| vec![Some(Over(e.bin("arith.addf", y, y)))]),
    // d(a^-1/2) = -1/2 a^-3/2 = -1/2 y^3
    AdRule::differentiable("math.rsqrt", |e, _, y| {
        let mhalf = e.constant(y.ty(), -0.5);
        vec![Some(Times(e.mul(mhalf, e.mul(e.mul(y, y), y))))]
    }),
    // d/da a^b = b a^(b-1); d/db a^b = a^b log a (only for a > 0, else 0).
    AdRule::differentiable("math.powf", |e, x, y| {
        let t = y.ty();
        let one = || e.constant(t, 1.0);
        let bm1 = e.bin("arith.subf", x[1], one());
        let da = e.mul(x[1], e.bin("math.powf", x[0], bm1));
        let zero = e.constant(t, 0.0);
        let positive = e.cmpf(CmpF::Ogt, x[0], zero);
        let safe = e.select(positive, x[0], one());
        let db = e.select(positive, e.mul(y, e.un("math.log", safe)), zero);
        vec![Some(Times(da)), Some(Times(db))]
    }),
    // sgn(a), with sgn(0) = 0 (Taichi's convention).
    AdRule::differentiable("math.absf", |e, x, _| {
        let t = x[0].ty();
        let zero = e.constant(t, 0.0);
        let (positive, negative) = (e.cmpf(CmpF::Ogt, x[0], zero), e.cmpf(CmpF::Olt, x[0], zero));
        let sign = e.select(positive, e.constant(t, 1.0), e.select(negative, e.constant(t, -1.0), zero));
        vec![Some(Times(sign))]
    }),
    AdRule::differentiable("math.tan", |e, _, y| {
        let one = e.constant(y.ty(), 1.0);
        vec![Some(Times(e.bin("arith.addf", one, e.mul(y, y))))]
    }),
    AdRule::differentiable("math.asin", |e, x, _| vec![Some(Over(e.one_minus_square_root(x[0])))]),
    AdRule::differentiable("math.acos", |e, x, _| vec![Some(Over(e.neg(e.one_minus_square_root(x[0]))))]),
    AdRule::differentiable("math.atan", |e, x, _| {
        let one = e.constant(x[0].ty(), 1.0);
        vec![Some(Over(e.bin("arith.addf", one, e.mul(x[0], x[0]))))]
    }),
    AdRule::differentiable("math.sinh", |e, x, _| vec![Some(Times(e.un("math.cosh", x[0])))]),
    AdRule::differentiable("math.cosh", |e, x, _| vec![Some(Times(e.un("math.sinh", x[0])))]),
    AdRule::differentiable("math.log2", |e, x, _| {
        let ln2 = e.constant(x[0].ty(), std::f64::consts::LN_2);
        vec![Some(Over(e.mul(x[0], ln2)))]
    }),
    AdRule::differentiable("math.exp2", |e, _, y| {
        let ln2 = e.constant(y.ty(), std::f64::consts::LN_2);
        vec![Some(Times(e.mul(y, ln2)))]
    }),
    // atan2(a, b): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
    AdRule::differentiable("math.atan2", |e, x, _| {
        let r2 = e.bin("arith.addf", e.mul(x[0], x[0]), e.mul(x[1], x[1]));
        vec![Some(Times(e.div(x[1], r2))), Some(Times(e.neg(e.div(x[0], r2))))]
    }),
    AdRule::differentiable("math.fma", |_, x, _| vec![Some(Times(x[1])), Some(Times(x[0])), Some(One)]),
    // ---- arith and math, no gradient -------------------------------------------
    AdRule::non_differentiable("arith.constant"),
    AdRule::non_differentiable("arith.cmpf"),
    AdRule::non_differentiable("arith.cmpi"),
    AdRule::non_differentiable("arith.addi"),
    AdRule::non_differentiable("arith.subi"),
    AdRule::non_differentiable("arith.muli"),
    AdRule::non_differentiable("arith.divsi"),
    AdRule::non_differentiable("arith.divui"),
    AdRule::non_differentiable("arith.remsi"),
    AdRule::non_differentiable("arith.remui"),
    AdRule::non_differentiable("arith.ceildivsi"),
    AdRule::non_differentiable("arith.ceildivui"),
    AdRule::non_differentiable("arith.floordivsi"),
    AdRule::non_differentiable("arith.andi"),
    AdRule::non_differentiable("arith.ori"),
    AdRule::non_differentiable("arith.xori"),
    AdRule::non_differentiable("arith.shli"),
    AdRule::non_differentiable("arith.shrsi"),
    AdRule::non_differentiable("arith.shrui"),
    AdRule::non_differentiable("arith.maxsi"),
    AdRule::non_differentiable("arith.minsi"),
    AdRule::non_differentiable("arith.maxui"),
    AdRule::non_differentiable("arith.minui"),
    AdRule::non_differentiable("arith.index_cast"),
    AdRule::non_differentiable("arith.index_castui"),
    AdRule::non_differentiable("arith.sitofp"),
    AdRule::non_differentiable("arith.uitofp"),
    AdRule::non_differentiable("arith.fptosi"),
    AdRule::non_differentiable("arith.fptoui"),
    AdRule::non_differentiable("arith.extsi"),
    AdRule::non_differentiable("arith.extui"),
    AdRule::non_differentiable("arith.trunci"),
    AdRule::non_differentiable("arith.bitcast"),
    AdRule::non_differentiable("math.floor"),
    AdRule::non_differentiable("math.ceil"),
    AdRule::non_differentiable("math.round"),
    AdRule::non_differentiable("math.roundeven"),
    AdRule::non_differentiable("math.trunc"),
    // ---- ds ------------------------------------------------------------------
    // Declarations: read for the field -> adjoint map, never inside a kernel.
    AdRule::structural(DsOp::Field.name()),
    AdRule::structural(DsOp::Dense.name()),
    AdRule::structural(DsOp::Pointer.name()),
    AdRule::structural(DsOp::Bitmasked.name()),
    AdRule::structural(DsOp::Dynamic.name()),
    // Loops: reversed by control_flow.
    AdRule::structural(DsOp::ParallelFor.name()),
    AdRule::structural(DsOp::StructFor.name()),
    // Accesses: reverse's field rules. Atomic min/max are rejected there when
    // their target has an adjoint (which thread won is not recorded), and
    // need nothing otherwise.
    AdRule::structural(DsOp::Load.name()),
    AdRule::structural(DsOp::Store.name()),
    AdRule::structural(DsOp::AtomicAdd.name()),
    AdRule::structural(DsOp::AtomicSub.name()),
    AdRule::structural(DsOp::AtomicMin.name()),
    AdRule::structural(DsOp::AtomicMax.name()),
    AdRule::structural(DsOp::Activate.name()),
    AdRule::structural(DsOp::Deactivate.name()),
    AdRule::structural(DsOp::IsActive.name()),
    AdRule::structural(DsOp::Append.name()),
    AdRule::structural(DsOp::Length.name()),
    // A check of the primal launch: the grad kernel does not repeat it.
    AdRule::non_differentiable(DsOp::Assert.name()),
    AdRule::non_differentiable(DsOp::StopGrad.name()),
    // ---- upstream control flow and terminators ---------------------------------
    AdRule::structural("scf.if"),
    AdRule::structural("scf.for"),
    AdRule::structural("scf.yield"),
    AdRule::structural(ops::BODY_TERMINATOR),
    AdRule::structural("func.return"),
];
