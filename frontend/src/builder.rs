//! The kernel builder behind `#[kernel]`: running a kernel function's
//! (rewritten) body builds the kernel's MLIR ops through the ds dialect's
//! typed builders ([`ds_dialects::ops`], over the handle layer
//! [`ds_dialects::ir`]). A thread-local builder holds, while a kernel is
//! built, its module in this thread's MLIR context, the `func.func` being
//! filled, the insertion point and the current location.
//!
//! Values are ordinary Rust values ([`Expr`]: an MLIR value and its [`Ty`])
//! with overloaded operators, and Rust control flow the macro cannot overload
//! becomes calls of [`parallel_for`], [`serial_for`] and [`branch`], which
//! build `ds.parallel_for`, `scf.for` (with iteration arguments for
//! reassigned variables) and `scf.if` (with results for reassigned
//! variables). [`at`] sets the Rust file, line and column that the ops
//! which follow carry as their MLIR location.
//!
//! [`build_kernel`] ends the function with `func.return`, verifies it and
//! prints it once, with every location inline, into [`KernelIr::text`] (the
//! runtime parses it back). The first error (a type mismatch, an unsupported
//! use, IR that does not verify) is kept with its location and returned
//! instead. [`field_decl`] prints a `ds.field` built the same way.
//!
//! Each build has a generation number, kept in every [`Expr`] it makes; the
//! builder reads a value's MLIR handle only when the value comes from the
//! build in progress, and records an error for any other (its IR is gone).

use ds_dialects::diag;
use ds_dialects::ir::{Block, Ctx, Cursor, FileLineCol as Location, Loc, Op, OpBuilder, Region, Type, Value};
use ds_dialects::ops::{self, AccessKind, CmpF, CmpI};
use ds_passes::autodiff::NO_GRAD_ATTR;
use melior::ir::Module;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Scalar types of kernel values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    F32,
    F64,
    I32,
    I64,
    Index,
    Bool,
}

impl Ty {
    pub fn mlir(self) -> &'static str {
        match self {
            Ty::F32 => "f32",
            Ty::F64 => "f64",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::Index => "index",
            Ty::Bool => "i1",
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, Ty::F32 | Ty::F64)
    }
    fn in_ctx(self, ctx: Ctx) -> Type {
        match self {
            Ty::F32 => ctx.f32(),
            Ty::F64 => ctx.f64(),
            Ty::I32 => ctx.int(32),
            Ty::I64 => ctx.int(64),
            Ty::Index => ctx.index(),
            Ty::Bool => ctx.int(1),
        }
    }
}

/// A scalar value of the kernel being built. Copyable, like the number it
/// stands for; usable only while the kernel that made it is being built.
#[derive(Clone, Copy, Debug)]
pub struct Expr {
    /// Read only by `Builder::value`, which checks `build` first.
    value: Value,
    ty: Ty,
    /// The generation of the build that made the value.
    build: u64,
}

impl Expr {
    pub fn ty(&self) -> Ty {
        self.ty
    }
}

/// The state of one kernel build.
struct Builder {
    /// This build's generation.
    build: u64,
    ctx: Ctx,
    /// Where ops go.
    cursor: Cursor,
    /// The location of the ops that follow, and its Rust position.
    loc: Loc,
    position: Option<Location>,
    /// The first location set: the kernel's first statement, the function's location.
    first: Option<Loc>,
    /// The first error: where, and what.
    error: Option<(Option<Location>, String)>,
    /// Nesting of region bodies (only a loop at depth 0 is parallel).
    depth: usize,
    /// The variables of the loops around the insertion point, outermost first.
    loop_indices: Vec<Expr>,
    /// The random stream parameter, once `random` is used (see [`random_bits`]).
    random_stream: Option<Expr>,
    /// `random` call sites so far.
    random_calls: u64,
}

thread_local! {
    /// The context kernels are built in: made on first use, kept for the thread.
    static CONTEXT: melior::Context = ds_dialects::context();
    static BUILDER: RefCell<Option<Builder>> = const { RefCell::new(None) };
}

/// The last build generation handed out (process-wide, so never reused).
static BUILDS: AtomicU64 = AtomicU64::new(0);

fn with<R>(f: impl FnOnce(&mut Builder) -> R) -> R {
    BUILDER.with(|b| {
        let mut b = b.borrow_mut();
        let b = b.as_mut().expect("kernel code runs only inside a #[kernel] function being built");
        f(b)
    })
}

impl Builder {
    fn fail(&mut self, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((self.position.clone(), message.into()));
        }
    }

    fn expr(&self, value: Value, ty: Ty) -> Expr {
        Expr { value, ty, build: self.build }
    }

    /// The MLIR value of `e` if this build made it; otherwise an error, and a
    /// zero of its type stands in.
    fn value(&mut self, e: &Expr) -> Value {
        if e.build == self.build {
            return e.value;
        }
        self.fail("a value of another kernel is used here: kernel values live only while their kernel is built");
        self.constant(0.0, e.ty).value
    }

    fn values(&mut self, es: &[Expr]) -> Vec<Value> {
        es.iter().map(|e| self.value(e)).collect()
    }

    /// Op `name` on `operands` with one result of type `ty`.
    fn op(&mut self, name: &str, operands: &[Expr], ty: Ty) -> Expr {
        let operands = self.values(operands);
        let op = self.cursor.build(OpBuilder::new(name, self.loc).operands(&operands).results(&[ty.in_ctx(self.ctx)]));
        self.expr(op.result(0), ty)
    }

    /// An i64 constant holding `v` exactly.
    fn integer(&mut self, v: i64) -> Expr {
        let ty = Ty::I64.in_ctx(self.ctx);
        let c = self.cursor.build(
            OpBuilder::new("arith.constant", self.loc).attr("value", self.ctx.int_attr(ty, v)).results(&[ty]),
        );
        self.expr(c.result(0), Ty::I64)
    }

    /// SplitMix64's finalizer (x ^= x >> 30; x *= C1; x ^= x >> 27; x *= C2; x ^= x >> 31).
    fn splitmix(&mut self, x: Expr) -> Expr {
        let mut x = x;
        for (shift, multiplier) in [(30, 0xBF58_476D_1CE4_E5B9u64 as i64), (27, 0x94D0_49BB_1331_11EBu64 as i64)] {
            let s = self.integer(shift);
            let shifted = self.op("arith.shrui", &[x, s], Ty::I64);
            let mixed = self.op("arith.xori", &[x, shifted], Ty::I64);
            let m = self.integer(multiplier);
            x = self.op("arith.muli", &[mixed, m], Ty::I64);
        }
        let s = self.integer(31);
        let shifted = self.op("arith.shrui", &[x, s], Ty::I64);
        self.op("arith.xori", &[x, shifted], Ty::I64)
    }

    fn constant(&mut self, value: f64, ty: Ty) -> Expr {
        let v = ops::const_scalar(self.cursor, ty.in_ctx(self.ctx), value, self.loc);
        self.expr(v, ty)
    }

    fn cast(&mut self, e: &Expr, to: Ty) -> Expr {
        use Ty::*;
        let name = match (e.ty, to) {
            (from, to) if from == to => return *e,
            (F32, F64) => "arith.extf",
            (F64, F32) => "arith.truncf",
            (I32 | I64, F32 | F64) => "arith.sitofp",
            // A bool is 0 or 1 (Rust's `true as i32`), not the signed i1 -1.
            (Bool, F32 | F64) => "arith.uitofp",
            (Bool, I32 | I64) => "arith.extui",
            (F32 | F64, I32 | I64) => "arith.fptosi",
            (I32 | I64, Index) | (Index, I32 | I64) => "arith.index_cast",
            (I32, I64) => "arith.extsi",
            (I64, I32) => "arith.trunci",
            (Index, F32 | F64) | (F32 | F64, Index) => {
                let i = self.cast(e, I64);
                return self.cast(&i, to);
            }
            (from, to) => {
                self.fail(format!("cannot convert a {} value to {}", from.mlir(), to.mlir()));
                return self.constant(0.0, to);
            }
        };
        self.op(name, &[*e], to)
    }

    /// The common type of two operands, as in Taichi: ints widen to index,
    /// i32 to i64, f32 to f64, and an int mixed with a float becomes that
    /// float; bools mix with nothing.
    fn unify(&mut self, a: &Expr, b: &Expr) -> (Expr, Expr) {
        use Ty::*;
        let target = match (a.ty, b.ty) {
            (x, y) if x == y => x,
            (Index, I32 | I64) | (I32 | I64, Index) => Index,
            (I32, I64) | (I64, I32) => I64,
            (F32, F64) | (F64, F32) => F64,
            (I32 | I64 | Index, f @ (F32 | F64)) | (f @ (F32 | F64), I32 | I64 | Index) => f,
            (x, y) => {
                self.fail(format!("{} and {} values mixed: convert one with `as`", x.mlir(), y.mlir()));
                a.ty
            }
        };
        (self.cast(a, target), self.cast(b, target))
    }

    /// `scf.yield values` at the end of `block`.
    fn yield_values(&mut self, block: Block, values: &[Expr]) {
        let values = self.values(values);
        ops::build_yield(block, &values, self.loc);
    }
}

/// Sets the source location of the ops that follow (called by the macro).
pub fn at(file: &str, line: u32, col: u32) {
    with(|b| {
        b.loc = b.ctx.file_line_col(file, line, col);
        b.first.get_or_insert(b.loc);
        b.position = Some(Location { file: file.into(), line, col });
    });
}

/// Records a build error at the current location (the first one wins).
pub fn error(message: impl Into<String>) {
    with(|b| b.fail(message));
}

/// The value of an index known when the kernel is built (a constant), if it is one.
pub(crate) fn known_index(e: &Expr) -> Option<i64> {
    with(|b| {
        let v = b.value(e);
        match ops::index_offset(v) {
            (None, c) if e.ty == Ty::Index => Some(c),
            _ => None,
        }
    })
}

/// A constant of type `ty`.
pub fn constant(value: f64, ty: Ty) -> Expr {
    with(|b| b.constant(value, ty))
}

/// A boolean constant (the macro's flags for `break` / `continue`).
pub fn flag(value: bool) -> Expr {
    constant(if value { 1.0 } else { 0.0 }, Ty::Bool)
}

/// Converts `e` to `to` (int <-> float, widths, index), or records an error.
pub fn cast(e: &Expr, to: Ty) -> Expr {
    with(|b| b.cast(e, to))
}

/// A binary arith op chosen by type (`arith.addf` / `arith.addi` ...) on the
/// operands' common type.
pub(crate) fn binary(a: &Expr, b: &Expr, float_op: &str, int_op: &str) -> Expr {
    with(|bd| {
        let (a, b) = bd.unify(a, b);
        let name = if a.ty.is_float() { float_op } else { int_op };
        bd.op(name, &[a, b], a.ty)
    })
}

/// A comparison: `pred` for floats, `ipred` for integers and indices.
pub(crate) fn compare(a: &Expr, b: &Expr, pred: CmpF, ipred: CmpI) -> Expr {
    with(|bd| {
        let (a, b) = bd.unify(a, b);
        let (x, y) = (bd.value(&a), bd.value(&b));
        let v = if a.ty.is_float() {
            ops::build_cmpf(bd.cursor, pred, x, y, bd.loc)
        } else {
            ops::build_cmpi(bd.cursor, ipred, x, y, bd.loc)
        };
        bd.expr(v, Ty::Bool)
    })
}

/// A unary float op (`math.sin`, `arith.negf` ...).
pub(crate) fn math(name: &str, a: &Expr) -> Expr {
    with(|b| {
        if !a.ty.is_float() {
            b.fail(format!("{name} needs a float value, got {}", a.ty.mlir()));
        }
        b.op(name, &[*a], a.ty)
    })
}

/// A binary float op (`math.powf` ...) on the operands' common type.
pub(crate) fn math_binary(name: &str, a: &Expr, b: &Expr) -> Expr {
    with(|bd| {
        let (a, b) = bd.unify(a, b);
        if !a.ty.is_float() {
            bd.fail(format!("{name} needs float values, got {}", a.ty.mlir()));
        }
        bd.op(name, &[a, b], a.ty)
    })
}

/// `ds.stop_grad`: the value of `x`, with no gradient flowing through it.
pub(crate) fn stop_grad(x: &Expr) -> Expr {
    with(|b| {
        if !x.ty.is_float() {
            b.fail(format!("stop_grad needs a float value, got {}", x.ty.mlir()));
        }
        let v = b.value(x);
        let frozen = ops::build_stop_grad(b.cursor, v, b.loc);
        b.expr(frozen, x.ty)
    })
}

/// `cond ? a : b`.
pub fn select(cond: &Expr, a: &Expr, b: &Expr) -> Expr {
    with(|bd| {
        if cond.ty != Ty::Bool {
            bd.fail(format!("a select condition must be a comparison (bool), got {}", cond.ty.mlir()));
        }
        let (a, b) = bd.unify(a, b);
        bd.op("arith.select", &[*cond, a, b], a.ty)
    })
}

/// Values that a kernel can carry through a branch or a loop: tuples of [`Expr`]s
/// (and vectors / matrices of them), rebuilt from the region's results.
pub trait Carry: Sized {
    fn exprs(&self) -> Vec<Expr>;
    /// Rebuilds from `exprs()`-shaped values.
    fn rebuild(values: &mut std::vec::IntoIter<Expr>) -> Self;
}

impl Carry for () {
    fn exprs(&self) -> Vec<Expr> {
        vec![]
    }
    fn rebuild(_: &mut std::vec::IntoIter<Expr>) -> Self {}
}

impl Carry for Expr {
    fn exprs(&self) -> Vec<Expr> {
        vec![*self]
    }
    fn rebuild(values: &mut std::vec::IntoIter<Expr>) -> Self {
        values.next().expect("one value per carried expression")
    }
}

macro_rules! carry_tuple {
    ($($t:ident),+) => {
        impl<$($t: Carry),+> Carry for ($($t,)+) {
            #[allow(non_snake_case)]
            fn exprs(&self) -> Vec<Expr> {
                let ($($t,)+) = self;
                let mut v = Vec::new();
                $(v.extend($t.exprs());)+
                v
            }
            fn rebuild(values: &mut std::vec::IntoIter<Expr>) -> Self {
                ($($t::rebuild(values),)+)
            }
        }
    };
}
carry_tuple!(A);
carry_tuple!(A, B);
carry_tuple!(A, B, C);
carry_tuple!(A, B, C, D);
carry_tuple!(A, B, C, D, E);
carry_tuple!(A, B, C, D, E, F);
carry_tuple!(A, B, C, D, E, F, G);
carry_tuple!(A, B, C, D, E, F, G, H);

/// Runs `f` with ops going to `cursor`, one region deeper.
fn inside<R>(cursor: Cursor, f: impl FnOnce() -> R) -> R {
    let outer = with(|b| {
        b.depth += 1;
        std::mem::replace(&mut b.cursor, cursor)
    });
    let r = f();
    with(|b| {
        b.depth -= 1;
        b.cursor = outer;
    });
    r
}

/// A new block holding what `f` builds, ended by `scf.yield` of the values
/// `f` returns (converted to `tys` when given); returns it and their types.
fn region_body(f: impl FnOnce() -> Vec<Expr>, tys: Option<&[Ty]>) -> (Block, Vec<Ty>) {
    let block = Block::new(&[]);
    let tys = inside(Cursor::at_end(block), || {
        let out = f();
        let out: Vec<Expr> = match tys {
            Some(tys) => out.iter().zip(tys).map(|(e, t)| cast(e, *t)).collect(),
            None => out,
        };
        with(|b| b.yield_values(block, &out));
        out.iter().map(|e| e.ty).collect()
    });
    (block, tys)
}

/// `scf.if cond` at `loc` with results of types `tys` and the two bodies.
fn emit_if(cond: &Expr, loc: Loc, tys: &[Ty], then: Block, otherwise: Block) -> Vec<Expr> {
    with(|b| {
        if cond.ty != Ty::Bool {
            b.fail(format!("an if condition must be a comparison (bool), got {}", cond.ty.mlir()));
        }
        let cond = b.value(cond);
        let types: Vec<Type> = tys.iter().map(|t| t.in_ctx(b.ctx)).collect();
        let (then_region, else_region) = (Region::new(), Region::new());
        then_region.append_block(then);
        else_region.append_block(otherwise);
        let op = b.cursor.build(
            OpBuilder::new("scf.if", loc).operands(&[cond]).results(&types).region(then_region).region(else_region),
        );
        op.results().into_iter().zip(tys).map(|(v, t)| b.expr(v, *t)).collect()
    })
}

/// `if cond { then } else { otherwise }` as a statement: both branches take
/// and return the variables they may reassign (`carried`); returns their new
/// values.
pub fn branch<C: Carry>(cond: impl Condition, carried: C, then: impl FnOnce(C) -> C, otherwise: impl FnOnce(C) -> C) -> C {
    let cond = match cond.decide() {
        Decided::AtBuild(true) => return then(carried),
        Decided::AtBuild(false) => return otherwise(carried),
        Decided::AtRun(cond) => cond,
    };
    let loc = with(|b| b.loc);
    let inputs = carried.exprs();
    let tys: Vec<Ty> = inputs.iter().map(|e| e.ty).collect();
    let (t, _) = region_body(|| then(C::rebuild(&mut inputs.clone().into_iter())).exprs(), Some(&tys));
    let (e, _) = region_body(|| otherwise(C::rebuild(&mut inputs.clone().into_iter())).exprs(), Some(&tys));
    C::rebuild(&mut emit_if(&cond, loc, &tys, t, e).into_iter())
}

/// `if cond { a } else { b }` as an expression with a value; `b` takes `a`'s types.
pub fn branch_value<C: Carry>(cond: impl Condition, then: impl FnOnce() -> C, otherwise: impl FnOnce() -> C) -> C {
    value_if(cond, then, otherwise, false)
}

/// `if cond { LITERAL } else { b }` as an expression: the else branch is
/// built first, so the literal takes its type.
pub fn branch_value_else_first<C: Carry>(cond: impl Condition, then: impl FnOnce() -> C, otherwise: impl FnOnce() -> C) -> C {
    value_if(cond, then, otherwise, true)
}

/// An `if` with a value, the branch whose types the other takes built first.
fn value_if<C: Carry>(cond: impl Condition, then: impl FnOnce() -> C, otherwise: impl FnOnce() -> C, else_first: bool) -> C {
    let cond = match cond.decide() {
        Decided::AtBuild(true) => return then(),
        Decided::AtBuild(false) => return otherwise(),
        Decided::AtRun(cond) => cond,
    };
    let loc = with(|b| b.loc);
    let (t, e, tys) = if else_first {
        let (e, tys) = region_body(|| otherwise().exprs(), None);
        (region_body(|| then().exprs(), Some(&tys)).0, e, tys)
    } else {
        let (t, tys) = region_body(|| then().exprs(), None);
        (t, region_body(|| otherwise().exprs(), Some(&tys)).0, tys)
    };
    C::rebuild(&mut emit_if(&cond, loc, &tys, t, e).into_iter())
}

/// An `if` condition: a kernel value (an `scf.if` at run time) or a Rust
/// `bool` known when the kernel is built (only the taken branch is built:
/// Taichi's `ti.static(cond)`, so one kernel function serves several variants).
pub trait Condition {
    fn decide(self) -> Decided;
}

/// When an `if` is decided.
pub enum Decided {
    AtBuild(bool),
    AtRun(Expr),
}

impl Condition for Expr {
    fn decide(self) -> Decided {
        Decided::AtRun(self)
    }
}

impl Condition for bool {
    fn decide(self) -> Decided {
        Decided::AtBuild(self)
    }
}

/// Converts loop bounds and indices to `index` values.
pub trait IntoIndex {
    fn into_index(self) -> Expr;
}

impl IntoIndex for Expr {
    fn into_index(self) -> Expr {
        cast(&self, Ty::Index)
    }
}

impl IntoIndex for &Expr {
    fn into_index(self) -> Expr {
        cast(self, Ty::Index)
    }
}

macro_rules! int_index {
    ($($t:ty),*) => {$(
        impl IntoIndex for $t {
            fn into_index(self) -> Expr {
                constant(self as f64, Ty::Index)
            }
        }
    )*};
}
int_index!(usize, i32, i64, u32);

/// `for i in lo..hi { body }`: the outermost loop of a kernel is a
/// `ds.parallel_for`; loops inside it are serial (see [`serial_for`]).
pub fn parallel_for(lo: impl IntoIndex, hi: impl IntoIndex, body: impl FnOnce(Expr)) {
    let (lo, hi) = (lo.into_index(), hi.into_index());
    if with(|b| b.depth > 0) {
        serial_for(lo, hi, (), |i, ()| body(i));
        return;
    }
    let (body_at, i) = with(|b| {
        let (lo, hi) = (b.value(&lo), b.value(&hi));
        let pf = ops::build_parallel_for(b.cursor, lo, hi, b.loc);
        let terminator = pf.body.terminator().expect("a parallel_for body has its terminator");
        (Cursor::before(terminator), b.expr(pf.index(), Ty::Index))
    });
    inside_loop(body_at, i, || body(i));
}

/// `inside` the body of a loop with variable `index`.
fn inside_loop<R>(cursor: Cursor, index: Expr, f: impl FnOnce() -> R) -> R {
    with(|b| b.loop_indices.push(index));
    let r = inside(cursor, f);
    with(|b| b.loop_indices.pop());
    r
}

/// 64 random bits, different for every call site, every iteration of the
/// loops around it and every launch (the kernel's random stream), and the
/// same for the same ones: a counter-based generator (SplitMix64's mixer over
/// a hash of the seed, the stream, the call site and the loop variables), so
/// CPU and GPU, a launch and its gradient's recomputation, see equal numbers.
fn random_bits() -> Expr {
    with(|b| {
        let i64t = Ty::I64;
        let stream = match b.random_stream {
            Some(s) => s,
            None => {
                let entry = ops::func_body(enclosing_func(b.cursor));
                let arg = entry.add_arg(i64t.in_ctx(b.ctx), b.loc);
                let s = b.expr(arg, i64t);
                b.random_stream = Some(s);
                s
            }
        };
        b.random_calls += 1;
        let golden = 0x9E37_79B9_7F4A_7C15u64;
        let site = b.random_calls.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut h = b.integer(site as i64);
        let mix = |b: &mut Builder, h: Expr, v: Expr| {
            let v = b.cast(&v, i64t);
            let k = b.integer(golden as i64);
            let scaled = b.op("arith.muli", &[v, k], i64t);
            let sum = b.op("arith.addi", &[h, scaled], i64t);
            b.splitmix(sum)
        };
        h = mix(b, h, stream);
        for index in b.loop_indices.clone() {
            h = mix(b, h, index);
        }
        h
    })
}

/// A uniform random number in [0, 1) of float type `ty` (the top 24 or 53
/// bits of [`random_bits`]), not differentiable.
pub(crate) fn random_float(ty: Ty) -> Expr {
    if !ty.is_float() {
        error(format!("random numbers are f32 or f64, not {}", ty.mlir()));
        return constant(0.0, ty);
    }
    let bits = random_bits();
    with(|b| {
        let kept: i64 = if ty == Ty::F32 { 24 } else { 53 };
        let s = b.integer(64 - kept);
        let top = b.op("arith.shrui", &[bits, s], Ty::I64);
        let f = b.op("arith.uitofp", &[top], ty);
        let unit = b.constant(1.0 / (1u64 << kept) as f64, ty);
        b.op("arith.mulf", &[f, unit], ty)
    })
}

/// The kernel the cursor builds into.
fn enclosing_func(at: Cursor) -> Op {
    let mut op = at.block().parent_op().expect("kernel code is inside its kernel");
    while !ops::is_kernel(op) {
        op = op.parent().expect("kernel code is inside its kernel");
    }
    op
}

/// A serial `for j in lo..hi` carrying the variables it reassigns.
pub fn serial_for<C: Carry>(lo: impl IntoIndex, hi: impl IntoIndex, carried: C, body: impl FnOnce(Expr, C) -> C) -> C {
    let (lo, hi) = (lo.into_index(), hi.into_index());
    let inputs = carried.exprs();
    let tys: Vec<Ty> = inputs.iter().map(|e| e.ty).collect();
    let (op, block, j, args) = with(|b| {
        let one = ops::const_index(b.cursor, 1, b.loc);
        let (lo, hi) = (b.value(&lo), b.value(&hi));
        let inits = b.values(&inputs);
        let (op, block) = ops::build_scf_for_carrying(b.cursor, lo, hi, one, &inits, b.loc);
        let j = b.expr(block.arg(0), Ty::Index);
        let args: Vec<Expr> = tys.iter().enumerate().map(|(k, t)| b.expr(block.arg(k + 1), *t)).collect();
        (op, block, j, args)
    });
    inside_loop(Cursor::at_end(block), j, || {
        let out = body(j, C::rebuild(&mut args.into_iter())).exprs();
        let out: Vec<Expr> = out.iter().zip(&tys).map(|(e, t)| cast(e, *t)).collect();
        with(|b| b.yield_values(block, &out));
    });
    let results: Vec<Expr> = with(|b| op.results().into_iter().zip(&tys).map(|(v, t)| b.expr(v, *t)).collect());
    C::rebuild(&mut results.into_iter())
}

/// A kernel's IR: its name, scalar parameter types and the `func.func` as text.
#[derive(Clone, Debug)]
pub struct KernelIr {
    pub name: String,
    pub params: Vec<Ty>,
    /// Marked `ds.no_grad`: no gradient kernel is generated.
    pub no_grad: bool,
    /// Uses `random`: the kernel takes one more parameter, its random stream
    /// (an i64 after the declared ones), given by the launcher.
    pub random: bool,
    pub text: String,
}

/// The first error made while building a kernel, with its Rust location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    pub kernel: String,
    pub location: Option<Location>,
    pub message: String,
}

/// Installs a build's [`Builder`] for the scope of the build and puts back
/// the one it replaced (an outer build's, or none) when the scope ends, also
/// when the body panics: no builder outlives the module it builds into.
struct Scope {
    outer: Option<Option<Builder>>,
}

impl Scope {
    fn enter(builder: Builder) -> Scope {
        Scope { outer: Some(BUILDER.with(|b| b.replace(Some(builder)))) }
    }

    /// Ends the scope, returning this build's builder.
    fn finish(mut self) -> Builder {
        let outer = self.outer.take().expect("a scope ends once");
        BUILDER.with(|b| b.replace(outer)).expect("the build's builder is installed")
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(outer) = self.outer.take() {
            BUILDER.with(|b| b.replace(outer));
        }
    }
}

/// Builds kernel `name` with scalar parameters `params` by running `body`
/// on the parameters' values; `no_grad` marks it `ds.no_grad` (no gradient
/// kernel is generated for it).
pub fn build_kernel(name: &str, params: &[(&str, Ty)], no_grad: bool, body: impl FnOnce(Vec<Expr>)) -> Result<KernelIr, BuildError> {
    CONTEXT.with(|context| {
        let ctx = Ctx::of(context);
        let loc = ctx.unknown_loc();
        let module = Module::new(melior::ir::Location::unknown(context));
        let inputs: Vec<Type> = params.iter().map(|(_, t)| t.in_ctx(ctx)).collect();
        let (func, entry) = ops::build_func(Cursor::at_end(ops::module_body(Op::of_module(&module))), name, &inputs, &[], loc);
        func.set_attr(ops::KERNEL_ATTR, ctx.unit_attr());
        if no_grad {
            func.set_attr(NO_GRAD_ATTR, ctx.unit_attr());
        }
        let build = BUILDS.fetch_add(1, Ordering::Relaxed) + 1;
        let cursor = Cursor::at_end(entry);
        let builder = Builder {
            build,
            ctx,
            cursor,
            loc,
            position: None,
            first: None,
            error: None,
            depth: 0,
            loop_indices: Vec::new(),
            random_stream: None,
            random_calls: 0,
        };
        let scope = Scope::enter(builder);
        let values: Vec<Expr> = entry.args().into_iter().zip(params).map(|(v, (_, ty))| Expr { value: v, ty: *ty, build }).collect();
        body(values);
        let b = scope.finish();
        let fail = |location, message| Err(BuildError { kernel: name.into(), location, message });
        if let Some((location, message)) = b.error {
            return fail(location, message);
        }
        ops::build_return(Cursor::at_end(entry), &[], b.loc);
        let random = b.random_stream.is_some();
        if random {
            ops::sync_func_type(func);
        }
        if let Some(first) = b.first {
            func.set_loc(first);
        }
        let (valid, diagnostics) = diag::capture(context, || func.verify());
        if !valid {
            let first = diagnostics.into_iter().next();
            let location = first.as_ref().and_then(|d| d.pos.clone());
            let detail = first.map(|d| d.notes.iter().fold(d.message.clone(), |m, n| format!("{m}\n{n}"))).unwrap_or_default();
            return fail(location, format!("the kernel's IR is invalid: {detail}"));
        }
        let text = format!("{}\n", func.print_with_locations());
        Ok(KernelIr { name: name.into(), params: params.iter().map(|(_, t)| *t).collect(), no_grad, random, text })
    })
}

/// The `ds.field` declaration of `name` (with `grad` naming its adjoint
/// field, `layout` the dense node it is placed under) as module-level IR.
pub fn field_decl(name: &str, ty: Ty, shape: &[usize], grad: Option<&str>, layout: Option<&str>, declared: &std::panic::Location) -> String {
    field_decl_at(name, ty, shape, grad, layout, (declared.file(), declared.line(), declared.column()))
}

/// [`field_decl`] declared at a `(file, line, column)` of another
/// frontend's source (the Python frontend's `ds.field` calls).
pub fn field_decl_at(name: &str, ty: Ty, shape: &[usize], grad: Option<&str>, layout: Option<&str>, declared: (&str, u32, u32)) -> String {
    module_level(|at, ctx| {
        let loc = ctx.file_line_col(declared.0, declared.1, declared.2);
        let field = ops::build_field(at, name, ty.in_ctx(ctx), &i64s(shape), grad, loc);
        if let Some(node) = layout {
            ops::set_layout(field, node);
        }
        field
    })
}

/// The `ds.dense` node `name` of cells `shape`, storing them in `order`, as module-level IR.
pub fn dense_decl(name: &str, shape: &[usize], order: ops::Order, placed: &std::panic::Location) -> String {
    dense_decl_at(name, shape, order, (placed.file(), placed.line(), placed.column()))
}

/// [`dense_decl`] placed at a `(file, line, column)` of another frontend's source.
pub fn dense_decl_at(name: &str, shape: &[usize], order: ops::Order, placed: (&str, u32, u32)) -> String {
    module_level(|at, ctx| {
        let loc = ctx.file_line_col(placed.0, placed.1, placed.2);
        let node = ops::build_layout_node(at, ops::DsOp::Dense, name, &i64s(shape), None, loc);
        if order != ops::Order::Aos {
            ops::set_order(node, order);
        }
        node
    })
}

/// A layout node of any kind (`ds.dense`, `ds.pointer`, `ds.bitmasked`) at
/// module level, under `parent`, with a pool of `capacity` blocks (pointer;
/// chunks of a dynamic node of `chunk` cells).
pub fn node_decl(
    kind: ops::DsOp,
    name: &str,
    shape: &[usize],
    parent: Option<&str>,
    capacity: Option<usize>,
    chunk: Option<usize>,
    placed: &std::panic::Location,
) -> String {
    module_level(|at, ctx| {
        let loc = ctx.file_line_col(placed.file(), placed.line(), placed.column());
        let node = ops::build_layout_node(at, kind, name, &i64s(shape), parent, loc);
        if let Some(c) = capacity {
            node.set_attr(ops::sparse::CAPACITY_ATTR, ctx.int_attr(ctx.int(64), c as i64));
        }
        if let Some(c) = chunk {
            node.set_attr(ops::sparse::CHUNK_ATTR, ctx.int_attr(ctx.int(64), c as i64));
        }
        node
    })
}

/// `ds.activate`, `ds.deactivate` or `ds.is_active` of the cell holding
/// element `index` of field `name`; the `i1` of `ds.is_active`.
pub fn emit_activity(kind: AccessKind, name: &str, index: &[Expr]) -> Option<Expr> {
    with(|b| {
        let index = b.values(index);
        ops::build_activity(b.cursor, kind, name, &index, None, b.loc).map(|v| b.expr(v, Ty::Bool))
    })
}

/// `ds.append` of `value` to the list holding element `index` of field
/// `name` (of elements `ty`); its position (i32).
pub fn emit_append(name: &str, ty: Ty, index: &[Expr], value: &Expr) -> Expr {
    with(|b| {
        let value = b.cast(value, ty);
        let value = b.value(&value);
        let index = b.values(index);
        let k = ops::build_append(b.cursor, name, value, &index, b.loc);
        b.expr(k, Ty::I32)
    })
}

/// `ds.length` of the list holding element `index` of field `name` (i32).
pub fn emit_length(name: &str, index: &[Expr]) -> Expr {
    with(|b| {
        let index = b.values(index);
        let n = ops::build_length(b.cursor, name, &index, b.loc);
        b.expr(n, Ty::I32)
    })
}

/// A parallel loop over the active cells of field `name` (`ds.struct_for`
/// binding its `rank` cell dimensions): `body` gets the cell's indices.
pub fn struct_for(name: &str, rank: usize, body: impl FnOnce(Vec<Expr>)) {
    if with(|b| b.depth > 0) {
        error(format!("a loop over the active cells of @{name} must be a kernel's outermost loop"));
        return;
    }
    let (body_at, idx) = with(|b| {
        let (_, block) = ops::build_struct_for(b.cursor, name, rank, b.loc);
        let terminator = block.terminator().expect("a struct_for body has its terminator");
        let idx: Vec<Expr> = block.args().into_iter().map(|a| b.expr(a, Ty::Index)).collect();
        (Cursor::before(terminator), idx)
    });
    // Every cell index goes into the loop indices (random numbers differ per cell).
    let n = idx.len();
    with(|b| b.loop_indices.extend(idx.iter().copied()));
    inside(body_at, || body(idx));
    with(|b| b.loop_indices.truncate(b.loop_indices.len() - n));
}

fn i64s(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// One module-level op, built by `build` in a scratch module, printed.
fn module_level(build: impl FnOnce(Cursor, Ctx) -> Op) -> String {
    CONTEXT.with(|context| {
        let ctx = Ctx::of(context);
        let module = Module::new(melior::ir::Location::unknown(context));
        let at = Cursor::at_end(ops::module_body(Op::of_module(&module)));
        format!("{}\n", build(at, ctx).print_with_locations())
    })
}

/// `ds.load` of one scalar of field `name` (elements of type `ty`).
pub fn emit_load(name: &str, ty: Ty, index: &[Expr]) -> Expr {
    with(|b| {
        let index = b.values(index);
        let v = ops::build_load(b.cursor, name, &index, ty.in_ctx(b.ctx), b.loc);
        b.expr(v, ty)
    })
}

/// A store or atomic update of one scalar of field `name`.
pub fn emit_update(kind: AccessKind, name: &str, ty: Ty, index: &[Expr], value: &Expr) {
    with(|b| {
        let value = b.cast(value, ty);
        let value = b.value(&value);
        let index = b.values(index);
        ops::build_update(b.cursor, kind, name, value, &index, b.loc);
    });
}
