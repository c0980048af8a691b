//! The adjoint rules of single ops: one table, [`RULES`], with one record per
//! op (as Enzyme's `MathDerivatives.td` has one `def` per op).
//!
//! A record names the op and its [`AdTreatment`]: `Differentiable` with the
//! op's adjoint rule next to it, `NonDifferentiable` (no gradient flows
//! through it: comparisons, integer math, rounding, checks), or `Structural`
//! (control flow, field accesses, terminators and declarations, handled by
//! `reverse` and `control_flow`). An op with no record is rejected by
//! ds-autodiff with its location. ds ops are named by `DsOp::X.name()`.
//!
//! Example record: `AdRule::differentiable("math.sin", |e, x, _, g| vec![Some(e.mul(g, e.un("math.cos", x[0])))])`.

use ds_dialects::ir::{Cursor, Loc, OpBuilder, Type, Value};
use ds_dialects::ops::{self, CmpF, DsOp};

/// The contributions of a differentiable op to its operands' adjoints, one per
/// operand (`None` where an operand receives nothing), given an emitter at the
/// adjoint's insertion point, the recomputed operands `x`, the recomputed
/// result `y` and the result's adjoint `g`.
pub type AdjointRule = fn(e: &Emitter, x: &[Value], y: Value, g: Value) -> Vec<Option<Value>>;

/// How ds-autodiff treats an op.
#[derive(Clone, Copy, Debug)]
pub enum AdTreatment {
    /// Gradients flow through the op by its adjoint rule.
    Differentiable(AdjointRule),
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
    const fn differentiable(op: &'static str, rule: AdjointRule) -> AdRule {
        AdRule { op, treatment: AdTreatment::Differentiable(rule) }
    }
    const fn non_differentiable(op: &'static str) -> AdRule {
        AdRule { op, treatment: AdTreatment::NonDifferentiable }
    }
    const fn structural(op: &'static str) -> AdRule {
        AdRule { op, treatment: AdTreatment::Structural }
    }
}

/// How ds-autodiff treats the op named `name`, or `None` if it cannot
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
        self.at.build(OpBuilder::new("arith.select", self.loc).operands(&[cond, a, b]).results(&[a.ty()])).result(0)
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
    /// `g` where `cond` holds, else zero.
    fn gate(&self, cond: Value, g: Value) -> Value {
        let zero = self.constant(g.ty(), 0.0);
        self.select(cond, g, zero)
    }
    /// The adjoints of the two choices of `cond ? a : b` given `g`: `g` to
    /// `a` where `cond` holds, else to `b`.
    fn route(&self, cond: Value, g: Value) -> Vec<Option<Value>> {
        let zero = self.constant(g.ty(), 0.0);
        vec![Some(self.select(cond, g, zero)), Some(self.select(cond, zero, g))]
    }
}

/// Every op ds-autodiff knows, with its treatment.
pub static RULES: &[AdRule] = &[
    // ---- arith, differentiable -----------------------------------------------
    AdRule::differentiable("arith.addf", |_, _, _, g| vec![Some(g), Some(g)]),
    AdRule::differentiable("arith.subf", |e, _, _, g| vec![Some(g), Some(e.neg(g))]),
    AdRule::differentiable("arith.mulf", |e, x, _, g| vec![Some(e.mul(g, x[1])), Some(e.mul(g, x[0]))]),
    AdRule::differentiable("arith.divf", |e, x, _, g| {
        let ga = e.div(g, x[1]);
        let gb = e.neg(e.div(e.mul(ga, x[0]), x[1]));
        vec![Some(ga), Some(gb)]
    }),
    AdRule::differentiable("arith.negf", |e, _, _, g| vec![Some(e.neg(g))]),
    AdRule::differentiable("arith.maximumf", |e, x, _, g| e.route(e.cmpf(CmpF::Oge, x[0], x[1]), g)),
    AdRule::differentiable("arith.maxnumf", |e, x, _, g| e.route(e.cmpf(CmpF::Oge, x[0], x[1]), g)),
    AdRule::differentiable("arith.minimumf", |e, x, _, g| e.route(e.cmpf(CmpF::Ole, x[0], x[1]), g)),
    AdRule::differentiable("arith.minnumf", |e, x, _, g| e.route(e.cmpf(CmpF::Ole, x[0], x[1]), g)),
    AdRule::differentiable("arith.select", |e, x, _, g| [vec![None], e.route(x[0], g)].concat()),
    AdRule::differentiable("arith.remf", |e, x, _, g| {
        // a - b trunc(a / b): d/da = 1, d/db = -trunc(a / b).
        let q = e.un("math.trunc", e.div(x[0], x[1]));
        vec![Some(g), Some(e.neg(e.mul(g, q)))]
    }),
    AdRule::differentiable("arith.extf", |e, x, _, g| vec![Some(e.cast("arith.truncf", g, x[0].ty()))]),
    AdRule::differentiable("arith.truncf", |e, x, _, g| vec![Some(e.cast("arith.extf", g, x[0].ty()))]),
    // ---- math, differentiable ------------------------------------------------
    AdRule::differentiable("math.sin", |e, x, _, g| vec![Some(e.mul(g, e.un("math.cos", x[0])))]),
    AdRule::differentiable("math.cos", |e, x, _, g| vec![Some(e.neg(e.mul(g, e.un("math.sin", x[0]))))]),
    AdRule::differentiable("math.tanh", |e, _, y, g| {
        let y2 = e.mul(y, y);
        let one = e.constant(g.ty(), 1.0);
        vec![Some(e.mul(g, e.bin("arith.subf", one, y2)))]
    }),
    AdRule::differentiable("math.exp", |e, _, y, g| vec![Some(e.mul(g, y))]),
    AdRule::differentiable("math.log", |e, x, _, g| vec![Some(e.div(g, x[0]))]),
    AdRule::differentiable("math.sqrt", |e, _, y, g| {
        let half = e.constant(g.ty(), 0.5);
        vec![Some(e.div(e.mul(g, half), y))]
    }),
    AdRule::differentiable("math.rsqrt", |e, _, y, g| {
        // d(a^-1/2) = -1/2 a^-3/2 = -1/2 y^3
        let mhalf = e.constant(g.ty(), -0.5);
        let y3 = e.mul(e.mul(y, y), y);
        vec![Some(e.mul(g, e.mul(mhalf, y3)))]
    }),
    AdRule::differentiable("math.powf", |e, x, y, g| {
        // d/da a^b = b a^(b-1); d/db a^b = a^b log a (only for a > 0).
        let t = g.ty();
        let one = || e.constant(t, 1.0);
        let bm1 = e.bin("arith.subf", x[1], one());
        let ga = e.mul(g, e.mul(x[1], e.bin("math.powf", x[0], bm1)));
        let zero = e.constant(t, 0.0);
        let positive = e.cmpf(CmpF::Ogt, x[0], zero);
        let safe = e.select(positive, x[0], one());
        let gb = e.gate(positive, e.mul(g, e.mul(y, e.un("math.log", safe))));
        vec![Some(ga), Some(gb)]
    }),
    AdRule::differentiable("math.absf", |e, x, _, g| {
        // sgn(a) g, with sgn(0) = 0 (Taichi's convention).
        let zero = e.constant(g.ty(), 0.0);
        let (positive, negative) = (e.cmpf(CmpF::Ogt, x[0], zero), e.cmpf(CmpF::Olt, x[0], zero));
        vec![Some(e.select(positive, g, e.select(negative, e.neg(g), zero)))]
    }),
    AdRule::differentiable("math.tan", |e, _, y, g| {
        let one = e.constant(g.ty(), 1.0);
        vec![Some(e.mul(g, e.bin("arith.addf", one, e.mul(y, y))))]
    }),
    AdRule::differentiable("math.asin", |e, x, _, g| vec![Some(e.div(g, e.one_minus_square_root(x[0])))]),
    AdRule::differentiable("math.acos", |e, x, _, g| vec![Some(e.neg(e.div(g, e.one_minus_square_root(x[0]))))]),
    AdRule::differentiable("math.atan", |e, x, _, g| {
        let one = e.constant(g.ty(), 1.0);
        vec![Some(e.div(g, e.bin("arith.addf", one, e.mul(x[0], x[0]))))]
    }),
    AdRule::differentiable("math.sinh", |e, x, _, g| vec![Some(e.mul(g, e.un("math.cosh", x[0])))]),
    AdRule::differentiable("math.cosh", |e, x, _, g| vec![Some(e.mul(g, e.un("math.sinh", x[0])))]),
    AdRule::differentiable("math.log2", |e, x, _, g| {
        let ln2 = e.constant(g.ty(), std::f64::consts::LN_2);
        vec![Some(e.div(g, e.mul(x[0], ln2)))]
    }),
    AdRule::differentiable("math.exp2", |e, _, y, g| {
        let ln2 = e.constant(g.ty(), std::f64::consts::LN_2);
        vec![Some(e.mul(g, e.mul(y, ln2)))]
    }),
    AdRule::differentiable("math.atan2", |e, x, _, g| {
        // atan2(a, b): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
        let r2 = e.bin("arith.addf", e.mul(x[0], x[0]), e.mul(x[1], x[1]));
        let s = e.div(g, r2);
        vec![Some(e.mul(s, x[1])), Some(e.neg(e.mul(s, x[0])))]
    }),
    AdRule::differentiable("math.fma", |e, x, _, g| vec![Some(e.mul(g, x[1])), Some(e.mul(g, x[0])), Some(g)]),
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
