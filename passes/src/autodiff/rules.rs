//! The adjoint rules of single ops, as a table keyed by op name.
//!
//! Every op a kernel may contain is in exactly one list: [`DIFFERENTIABLE`]
//! (a rule in [`emit`]), [`NON_DIFFERENTIABLE`] (no gradient flows through it:
//! comparisons, integer math, rounding), or [`STRUCTURAL`] (control flow,
//! field accesses and terminators, handled by `reverse` and `control_flow`).
//! An op in none of them is rejected by ds-autodiff with its location.

use ds_dialects::ir::{Cursor, Loc, Op, OpBuilder, Type, Value};
use ds_dialects::ops;

/// Ops with an adjoint rule in [`emit`].
pub const DIFFERENTIABLE: &[&str] = &[
    "arith.addf",
    "arith.subf",
    "arith.mulf",
    "arith.divf",
    "arith.negf",
    "arith.maximumf",
    "arith.minimumf",
    "arith.maxnumf",
    "arith.minnumf",
    "arith.select",
    "arith.extf",
    "arith.truncf",
    "arith.remf",
    "math.sin",
    "math.cos",
    "math.tanh",
    "math.exp",
    "math.log",
    "math.sqrt",
    "math.rsqrt",
    "math.powf",
    "math.absf",
    "math.atan2",
    "math.fma",
];

/// Ops through which no gradient flows.
pub const NON_DIFFERENTIABLE: &[&str] = &[
    "arith.constant",
    "arith.cmpf",
    "arith.cmpi",
    "arith.addi",
    "arith.subi",
    "arith.muli",
    "arith.divsi",
    "arith.divui",
    "arith.remsi",
    "arith.remui",
    "arith.ceildivsi",
    "arith.ceildivui",
    "arith.floordivsi",
    "arith.andi",
    "arith.ori",
    "arith.xori",
    "arith.shli",
    "arith.shrsi",
    "arith.shrui",
    "arith.maxsi",
    "arith.minsi",
    "arith.maxui",
    "arith.minui",
    "arith.index_cast",
    "arith.index_castui",
    "arith.sitofp",
    "arith.uitofp",
    "arith.fptosi",
    "arith.fptoui",
    "arith.extsi",
    "arith.extui",
    "arith.trunci",
    "arith.bitcast",
    "math.floor",
    "math.ceil",
    "math.round",
    "math.roundeven",
    "math.trunc",
    "ds.atomic_min",
    "ds.atomic_max",
    "ds.assert",
];

/// Ops the reverse sweep handles itself.
pub const STRUCTURAL: &[&str] = &[
    "ds.load",
    "ds.store",
    "ds.atomic_add",
    "ds.atomic_sub",
    "ds.parallel_for",
    "ds.struct_for",
    "scf.if",
    "scf.for",
    "scf.yield",
    "gpu.yield",
    "func.return",
];

/// How ds-autodiff treats an op, or `None` if it cannot differentiate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Differentiable,
    NonDifferentiable,
    Structural,
}

pub fn classify(name: &str) -> Option<Class> {
    if DIFFERENTIABLE.contains(&name) {
        Some(Class::Differentiable)
    } else if NON_DIFFERENTIABLE.contains(&name) {
        Some(Class::NonDifferentiable)
    } else if STRUCTURAL.contains(&name) {
        Some(Class::Structural)
    } else {
        None
    }
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
    /// `a <pred> b` for floats (arith.cmpf predicate numbers).
    pub fn cmpf(&self, predicate: i64, a: Value, b: Value) -> Value {
        let ctx = self.loc.ctx();
        self.at
            .build(
                OpBuilder::new("arith.cmpf", self.loc)
                    .operands(&[a, b])
                    .results(&[ctx.int(1)])
                    .attr("predicate", ctx.int_attr(ctx.int(64), predicate)),
            )
            .result(0)
    }
    /// `g` where `cond` holds, else zero.
    fn gate(&self, cond: Value, g: Value) -> Value {
        let zero = self.constant(g.ty(), 0.0);
        self.select(cond, g, zero)
    }
}

const CMPF_OGE: i64 = 3;
const CMPF_OLE: i64 = 5;

/// The contributions of a differentiable op to its operands' adjoints, given
/// the recomputed operands `x`, the recomputed result `y` and the result's
/// adjoint `g`. `None` where an operand receives nothing.
pub fn emit(op: Op, e: &Emitter, x: &[Value], y: Value, g: Value) -> Vec<Option<Value>> {
    let name = op.name();
    let t = g.ty();
    let one = |e: &Emitter| e.constant(t, 1.0);
    match name.as_str() {
        "arith.addf" => vec![Some(g), Some(g)],
        "arith.subf" => vec![Some(g), Some(e.neg(g))],
        "arith.mulf" => vec![Some(e.mul(g, x[1])), Some(e.mul(g, x[0]))],
        "arith.divf" => {
            let ga = e.div(g, x[1]);
            let gb = e.neg(e.div(e.mul(ga, x[0]), x[1]));
            vec![Some(ga), Some(gb)]
        }
        "arith.negf" => vec![Some(e.neg(g))],
        "arith.maximumf" | "arith.maxnumf" => {
            let first = e.cmpf(CMPF_OGE, x[0], x[1]);
            let zero = e.constant(t, 0.0);
            vec![Some(e.select(first, g, zero)), Some(e.select(first, zero, g))]
        }
        "arith.minimumf" | "arith.minnumf" => {
            let first = e.cmpf(CMPF_OLE, x[0], x[1]);
            let zero = e.constant(t, 0.0);
            vec![Some(e.select(first, g, zero)), Some(e.select(first, zero, g))]
        }
        "arith.select" => {
            let zero = e.constant(t, 0.0);
            vec![None, Some(e.select(x[0], g, zero)), Some(e.select(x[0], zero, g))]
        }
        "arith.remf" => {
            // a - b trunc(a / b): d/da = 1, d/db = -trunc(a / b).
            let q = e.un("math.trunc", e.div(x[0], x[1]));
            vec![Some(g), Some(e.neg(e.mul(g, q)))]
        }
        "arith.extf" => vec![Some(e.cast("arith.truncf", g, x[0].ty()))],
        "arith.truncf" => vec![Some(e.cast("arith.extf", g, x[0].ty()))],
        "math.sin" => vec![Some(e.mul(g, e.un("math.cos", x[0])))],
        "math.cos" => vec![Some(e.neg(e.mul(g, e.un("math.sin", x[0]))))],
        "math.tanh" => {
            let y2 = e.mul(y, y);
            vec![Some(e.mul(g, e.bin("arith.subf", one(e), y2)))]
        }
        "math.exp" => vec![Some(e.mul(g, y))],
        "math.log" => vec![Some(e.div(g, x[0]))],
        "math.sqrt" => {
            let half = e.constant(t, 0.5);
            vec![Some(e.div(e.mul(g, half), y))]
        }
        "math.rsqrt" => {
            // d(a^-1/2) = -1/2 a^-3/2 = -1/2 y^3
            let mhalf = e.constant(t, -0.5);
            let y3 = e.mul(e.mul(y, y), y);
            vec![Some(e.mul(g, e.mul(mhalf, y3)))]
        }
        "math.powf" => {
            // d/da a^b = b a^(b-1); d/db a^b = a^b log a (only for a > 0).
            let bm1 = e.bin("arith.subf", x[1], one(e));
            let ga = e.mul(g, e.mul(x[1], e.bin("math.powf", x[0], bm1)));
            let zero = e.constant(t, 0.0);
            let positive = e.cmpf(2, x[0], zero);
            let safe = e.select(positive, x[0], one(e));
            let gb = e.gate(positive, e.mul(g, e.mul(y, e.un("math.log", safe))));
            vec![Some(ga), Some(gb)]
        }
        "math.absf" => {
            let zero = e.constant(t, 0.0);
            let nonneg = e.cmpf(CMPF_OGE, x[0], zero);
            vec![Some(e.select(nonneg, g, e.neg(g)))]
        }
        "math.atan2" => {
            // atan2(a, b): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
            let r2 = e.bin("arith.addf", e.mul(x[0], x[0]), e.mul(x[1], x[1]));
            let s = e.div(g, r2);
            vec![Some(e.mul(s, x[1])), Some(e.neg(e.mul(s, x[0])))]
        }
        "math.fma" => vec![Some(e.mul(g, x[1])), Some(e.mul(g, x[0])), Some(g)],
        other => unreachable!("{other} is listed as differentiable but has no rule"),
    }
}
