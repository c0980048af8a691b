//! Building kernels from Python: the Python package's AST walker calls these
//! functions, which emit ds-dialect ops through the Rust frontend's builder
//! (`diffsim::builder`, the one `#[kernel]` uses), so both frontends make
//! the same IR.
//!
//! A kernel value is an [`PyExpr`]: a handle to an `Expr` of the build in
//! progress on this thread (MLIR values live in the thread's context), with
//! Python's operators. Python numbers mixed with values become constants of
//! the value's type, as in the Rust frontend, except that a Python float
//! with an integer value makes a float (f32, Taichi's default) and a
//! comparison used in arithmetic counts as an i32, as in Taichi; `/` of two
//! integers is a float division, `//` and `%` follow Python (floor) for
//! integers. Control flow takes Python callbacks: [`parallel_for`] and
//! [`serial_for`] (with the variables the loop reassigns), [`branch`] (with
//! the variables either side reassigns).

use diffsim::builder::{self as b, Carry, Expr, Ty};
use diffsim::value::{self as v, Operand};
use ds_dialects::ops::AccessKind;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyTuple};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The values of the build in progress on this thread.
struct Table {
    /// The build they belong to (0: none in progress).
    build: u64,
    exprs: Vec<Expr>,
}

thread_local! {
    static TABLE: RefCell<Table> = const { RefCell::new(Table { build: 0, exprs: Vec::new() }) };
}

static BUILDS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The float type of Python float literals and of integers promoted to
    /// floats in the build in progress (Taichi's `default_fp`).
    static DEFAULT_FP: std::cell::Cell<Ty> = const { std::cell::Cell::new(Ty::F32) };
}

fn fp() -> Ty {
    DEFAULT_FP.with(|d| d.get())
}

/// A scalar value of the kernel being built (`diffsim._diffsim.Expr`).
#[pyclass(frozen, name = "Expr", module = "diffsim._diffsim")]
#[derive(Clone, Copy)]
pub struct PyExpr {
    build: u64,
    id: usize,
    ty: Ty,
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::F32 => "f32",
        Ty::F64 => "f64",
        Ty::I32 => "i32",
        Ty::I64 => "i64",
        Ty::Index => "index",
        Ty::Bool => "i1",
    }
}

pub fn parse_ty(name: &str) -> PyResult<Ty> {
    Ok(match name {
        "f32" => Ty::F32,
        "f64" => Ty::F64,
        "i32" => Ty::I32,
        "i64" => Ty::I64,
        "index" => Ty::Index,
        "i1" | "bool" => Ty::Bool,
        _ => return Err(PyValueError::new_err(format!("`{name}` is not a kernel type (f32, f64, i32, i64, index, i1)"))),
    })
}

impl PyExpr {
    fn expr(&self) -> PyResult<Expr> {
        TABLE.with(|t| {
            let t = t.borrow();
            if t.build != 0 && t.build == self.build {
                Ok(t.exprs[self.id])
            } else {
                Err(PyRuntimeError::new_err(
                    "a kernel value is used outside the kernel build that made it (values live only while their kernel is built)",
                ))
            }
        })
    }
}

/// An error unless a kernel is being built on this thread (the builder's
/// functions work only then).
fn building(what: &str) -> PyResult<()> {
    if TABLE.with(|t| t.borrow().build) == 0 {
        return Err(PyRuntimeError::new_err(format!("{what} is kernel code: it runs only inside a kernel being built (@ds.kernel)")));
    }
    Ok(())
}

fn wrap(e: Expr) -> PyExpr {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.exprs.push(e);
        PyExpr { build: t.build, id: t.exprs.len() - 1, ty: e.ty() }
    })
}

/// An operand: a kernel value or a Python number.
#[derive(Clone, Copy)]
enum Num {
    E(Expr),
    I(i64),
    F(f64),
    B(bool),
}

impl Operand for Num {
    fn to_expr(&self, ty: Ty) -> Expr {
        match self {
            Num::E(e) => *e,
            Num::I(i) => i.to_expr(ty),
            Num::F(f) => f.to_expr(ty),
            Num::B(x) => b::constant(f64::from(u8::from(*x)), Ty::Bool),
        }
    }
    fn own_type(&self) -> Option<Ty> {
        match self {
            Num::E(e) => Some(e.ty()),
            Num::B(_) => Some(Ty::Bool),
            _ => None,
        }
    }
}

/// `obj` as an operand, or None when it is neither a kernel value nor a number.
fn num(obj: &Bound<'_, PyAny>) -> PyResult<Option<Num>> {
    if let Ok(e) = obj.cast::<PyExpr>() {
        return Ok(Some(Num::E(e.get().expr()?)));
    }
    if let Ok(x) = obj.cast::<PyBool>() {
        return Ok(Some(Num::B(x.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Some(Num::I(obj.extract::<i64>()?)));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Some(Num::F(obj.extract::<f64>()?)));
    }
    // numpy scalars: integers have __index__, floats __float__.
    if obj.hasattr("__index__")?
        && let Ok(i) = obj.extract::<i64>()
    {
        return Ok(Some(Num::I(i)));
    }
    if obj.hasattr("dtype")?
        && obj.hasattr("__float__")?
        && let Ok(f) = obj.extract::<f64>()
    {
        return Ok(Some(Num::F(f)));
    }
    Ok(None)
}

fn need_num(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Num> {
    num(obj)?.ok_or_else(|| {
        let tn = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!("{what} must be a kernel value or a number, not {tn}"))
    })
}

/// The value of `n` as an Expr: numbers take Taichi's default types
/// (f32 for floats, i32 for integers).
fn literal(n: Num) -> Expr {
    match n {
        Num::E(e) => e,
        Num::I(i) => b::constant(i as f64, Ty::I32),
        Num::F(f) => b::constant(f, fp()),
        Num::B(x) => b::flag(x),
    }
}

fn is_int(t: Ty) -> bool {
    matches!(t, Ty::I32 | Ty::I64 | Ty::Index)
}

/// Arithmetic operands as Taichi promotes them: a comparison counts as an
/// i32, and an integer value with a Python float becomes an f32.
fn arith_pair(a: Num, c: Num) -> (Num, Num) {
    let fix = |x: Num, other: Num| match x {
        Num::E(e) if e.ty() == Ty::Bool => Num::E(b::cast(&e, Ty::I32)),
        Num::E(e) if is_int(e.ty()) && matches!(other, Num::F(_)) => Num::E(b::cast(&e, fp())),
        Num::B(x) => Num::I(i64::from(x)),
        x => x,
    };
    (fix(a, c), fix(c, a))
}

fn ty_of(n: Num) -> Option<Ty> {
    n.own_type()
}

#[derive(Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mul,
    TrueDiv,
    FloorDiv,
    Mod,
}

fn as_expr_pair(a: Num, c: Num) -> (Expr, Expr) {
    let t = ty_of(a).or(ty_of(c)).unwrap_or(fp());
    (a.to_expr(ty_of(c).unwrap_or(t)), c.to_expr(ty_of(a).unwrap_or(t)))
}

fn arith(op: Arith, a: Num, c: Num) -> Expr {
    let (a, c) = arith_pair(a, c);
    let (x, y) = as_expr_pair(a, c);
    match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::TrueDiv => {
            if is_int(x.ty()) && is_int(y.ty()) {
                b::cast(&x, fp()) / b::cast(&y, fp())
            } else {
                x / y
            }
        }
        Arith::FloorDiv => {
            if x.ty().is_float() || y.ty().is_float() {
                (x / y).floor()
            } else {
                // Truncated quotient, one less when the remainder's sign differs from the divisor's.
                let q = x / y;
                let r = x % y;
                let zero = b::constant(0.0, r.ty());
                let adjust = v::and(v::ne(r, zero), v::ne(v::lt(r, zero), v::lt(y, zero)));
                v::select(adjust, q - 1i64, q)
            }
        }
        Arith::Mod => {
            if x.ty().is_float() || y.ty().is_float() {
                x - y * (x / y).floor()
            } else {
                let r = x % y;
                let zero = b::constant(0.0, r.ty());
                let adjust = v::and(v::ne(r, zero), v::ne(v::lt(r, zero), v::lt(y, zero)));
                v::select(adjust, r + y, r)
            }
        }
    }
}

/// `x ** n` for a small integer `n`: multiplications (exact, and a plain
/// product rule for the gradient); otherwise `math.powf`.
fn power(x: Num, e: Num) -> Expr {
    let (x, e) = arith_pair(x, e);
    if let (Num::E(base), Num::I(n)) = (x, e)
        && n.unsigned_abs() <= 32
    {
        let base = if n < 0 && !base.ty().is_float() { b::cast(&base, fp()) } else { base };
        let mut result: Option<Expr> = None;
        let mut square = base;
        let mut k = n.unsigned_abs();
        while k > 0 {
            if k & 1 == 1 {
                result = Some(match result {
                    None => square,
                    Some(r) => r * square,
                });
            }
            k >>= 1;
            if k > 0 {
                square = square * square;
            }
        }
        let positive = result.unwrap_or_else(|| b::constant(1.0, base.ty()));
        return if n < 0 { b::constant(1.0, base.ty()) / positive } else { positive };
    }
    let (a, c) = as_expr_pair(x, e);
    let a = if a.ty().is_float() { a } else { b::cast(&a, fp()) };
    a.powf(c)
}

/// Runs a Python callback inside a builder closure, keeping its first error.
fn guarded<R>(failure: &RefCell<Option<PyErr>>, fallback: R, f: impl FnOnce() -> PyResult<R>) -> R {
    if failure.borrow().is_some() {
        return fallback;
    }
    match f() {
        Ok(r) => r,
        Err(e) => {
            *failure.borrow_mut() = Some(e);
            fallback
        }
    }
}

/// Values a loop or branch carries (any number of them).
struct Values(Vec<Expr>);

impl Carry for Values {
    fn exprs(&self) -> Vec<Expr> {
        self.0.clone()
    }
    fn rebuild(values: &mut std::vec::IntoIter<Expr>) -> Self {
        Values(values.collect())
    }
}

fn exprs_of(list: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Num>> {
    let mut out = Vec::new();
    for item in list.try_iter()? {
        out.push(need_num(&item?, what)?);
    }
    Ok(out)
}

fn handles<'py>(py: Python<'py>, values: &[Expr]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, values.iter().map(|e| wrap(*e)))
}

/// The values a region returns, converted to the carried values' types.
fn returned(py: Python<'_>, result: &Bound<'_, PyAny>, carried: &[Expr], what: &str) -> PyResult<Values> {
    let _ = py;
    let nums = exprs_of(result, what)?;
    if nums.len() != carried.len() {
        return Err(PyRuntimeError::new_err(format!("{what}: {} values returned for {} carried", nums.len(), carried.len())));
    }
    Ok(Values(nums.iter().zip(carried).map(|(n, c)| b::cast(&n.to_expr(c.ty()), c.ty())).collect()))
}

/// `PyExpr`'s Python methods: the binary operators, each declared once (its
/// method, the reflected one, and what it builds), then the other methods.
macro_rules! expr_methods {
    (
        #[$attr:ident]
        impl $ty:ident {
            arith { $($name:ident / $rname:ident => $op:ident,)* }
            logic { $($lname:ident / $lrname:ident => $f:path,)* }
            $($rest:tt)*
        }
    ) => {
        // `#[pymethods] impl PyExpr` come from the invocation: pyo3's
        // trampolines take their spans, and with spans of this macro's body
        // they would fall under unsafe_op_in_unsafe_fn (PyO3/pyo3#4663).
        #[$attr]
        impl $ty {
            $(
                fn $name(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                    self.arith(py, Arith::$op, o, false)
                }
                fn $rname(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                    self.arith(py, Arith::$op, o, true)
                }
            )*
            $(
                fn $lname(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                    self.logic(py, o, $f)
                }
                fn $lrname(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                    self.logic(py, o, $f)
                }
            )*
            $($rest)*
        }
    };
}

expr_methods! {
#[pymethods]
impl PyExpr {
    arith {
        __add__ / __radd__ => Add,
        __sub__ / __rsub__ => Sub,
        __mul__ / __rmul__ => Mul,
        __truediv__ / __rtruediv__ => TrueDiv,
        __floordiv__ / __rfloordiv__ => FloorDiv,
        __mod__ / __rmod__ => Mod,
    }
    logic {
        __and__ / __rand__ => v::and,
        __or__ / __ror__ => v::or,
    }

    /// The value's type: f32, f64, i32, i64, index or i1.
    #[getter]
    fn ty(&self) -> &'static str {
        ty_name(self.ty)
    }

    fn __repr__(&self) -> String {
        format!("<kernel value: {}>", ty_name(self.ty))
    }

    fn __bool__(&self) -> PyResult<bool> {
        Err(PyTypeError::new_err(
            "a kernel value has no truth value while the kernel is built: use it in a kernel's if/else \
             (a Python helper called from a kernel needs @ds.func for its control flow to be compiled)",
        ))
    }

    fn __float__(&self) -> PyResult<f64> {
        Err(PyTypeError::new_err("a kernel value is known only when the kernel runs: float() of it inside a kernel converts it"))
    }

    fn __int__(&self) -> PyResult<i64> {
        Err(PyTypeError::new_err("a kernel value is known only when the kernel runs: int() of it inside a kernel converts it"))
    }

    fn __index__(&self) -> PyResult<i64> {
        Err(PyTypeError::new_err(
            "a kernel value cannot index a Python sequence (its value is known only when the kernel runs): use a ds.Vector",
        ))
    }

    fn __pow__(&self, py: Python<'_>, o: &Bound<'_, PyAny>, modulo: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let _ = modulo;
        let Some(e) = num(o)? else { return Ok(py.NotImplemented()) };
        Ok(Py::new(py, wrap(power(Num::E(self.expr()?), e)))?.into_any())
    }
    fn __rpow__(&self, py: Python<'_>, o: &Bound<'_, PyAny>, modulo: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let _ = modulo;
        let Some(x) = num(o)? else { return Ok(py.NotImplemented()) };
        Ok(Py::new(py, wrap(power(x, Num::E(self.expr()?))))?.into_any())
    }

    fn __neg__(&self) -> PyResult<PyExpr> {
        let e = self.expr()?;
        let e = if e.ty() == Ty::Bool { b::cast(&e, Ty::I32) } else { e };
        Ok(wrap(-e))
    }
    fn __pos__(&self) -> PyExpr {
        *self
    }
    fn __abs__(&self) -> PyResult<PyExpr> {
        let e = self.expr()?;
        Ok(wrap(abs(e)))
    }

    fn __xor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.logic(py, o, |x, y| {
            if x.ty() != Ty::Bool {
                b::error("^ takes comparisons (bools) here, not integers");
            }
            v::ne(x, y)
        })
    }
    fn __invert__(&self) -> PyResult<PyExpr> {
        let e = self.expr()?;
        if e.ty() == Ty::Bool {
            return Ok(wrap(v::not(e)));
        }
        // ~x == -x - 1 for two's complement integers.
        Ok(wrap(-e - 1i64))
    }

    fn __richcmp__(&self, py: Python<'_>, o: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let Some(other) = num(o)? else { return Ok(py.NotImplemented()) };
        let (a, c) = arith_pair(Num::E(self.expr()?), other);
        let r = match op {
            CompareOp::Lt => v::lt(a, c),
            CompareOp::Le => v::le(a, c),
            CompareOp::Gt => v::gt(a, c),
            CompareOp::Ge => v::ge(a, c),
            CompareOp::Eq => v::eq(a, c),
            CompareOp::Ne => v::ne(a, c),
        };
        Ok(Py::new(py, wrap(r))?.into_any())
    }

    /// A unary math function of the value (floats; an integer is converted to f32).
    fn math(&self, name: &str) -> PyResult<PyExpr> {
        let e = self.expr()?;
        let Some((_, op)) = UNARY_MATH.iter().find(|(n, _)| *n == name) else {
            return Err(PyValueError::new_err(format!("no math function `{name}`")));
        };
        let x = if e.ty().is_float() { e } else { b::cast(&e, fp()) };
        Ok(wrap(op(x)))
    }
}
}

type Unary = fn(Expr) -> Expr;
type Binary = fn(Num, Num) -> Expr;

/// The unary math functions of kernel values (`ds.sin` ...), each declared
/// once: its name (`diffsim._math.UNARY` gives each one's value on Python
/// numbers; a test checks that the two tables name the same functions) and
/// the op it builds on a float.
const UNARY_MATH: &[(&str, Unary)] = &[
    ("sin", |x| x.sin()),
    ("cos", |x| x.cos()),
    ("tan", |x| x.tan()),
    ("tanh", |x| x.tanh()),
    ("exp", |x| x.exp()),
    ("log", |x| x.ln()),
    ("sqrt", |x| x.sqrt()),
    ("rsqrt", |x| x.rsqrt()),
    ("asin", |x| x.asin()),
    ("acos", |x| x.acos()),
    ("atan", |x| x.atan()),
    ("sinh", |x| x.sinh()),
    ("cosh", |x| x.cosh()),
    ("log2", |x| x.log2()),
    ("exp2", |x| x.exp2()),
    ("floor", |x| x.floor()),
    ("ceil", |x| x.ceil()),
    ("round", |x| x.round()),
];

/// The binary math functions (`ds.pow` ...; `diffsim._math.BINARY`), on
/// operands promoted as arithmetic's.
const BINARY_MATH: &[(&str, Binary)] = &[
    ("atan2", |x, y| {
        let (x, y) = as_expr_pair(x, y);
        let x = if x.ty().is_float() { x } else { b::cast(&x, fp()) };
        x.atan2(y)
    }),
    ("pow", power),
    ("max", |x, y| v::max(x, y)),
    ("min", |x, y| v::min(x, y)),
];

fn abs(e: Expr) -> Expr {
    if e.ty().is_float() {
        e.abs()
    } else {
        let e = if e.ty() == Ty::Bool { b::cast(&e, Ty::I32) } else { e };
        let zero = b::constant(0.0, e.ty());
        v::select(v::lt(e, zero), -e, e)
    }
}

impl PyExpr {
    fn arith(&self, py: Python<'_>, op: Arith, o: &Bound<'_, PyAny>, reflected: bool) -> PyResult<Py<PyAny>> {
        let Some(other) = num(o)? else { return Ok(py.NotImplemented()) };
        let me = Num::E(self.expr()?);
        let r = if reflected { arith(op, other, me) } else { arith(op, me, other) };
        Ok(Py::new(py, wrap(r))?.into_any())
    }

    fn logic(&self, py: Python<'_>, o: &Bound<'_, PyAny>, f: impl Fn(Expr, Expr) -> Expr) -> PyResult<Py<PyAny>> {
        let Some(other) = num(o)? else { return Ok(py.NotImplemented()) };
        let me = self.expr()?;
        if matches!(other, Num::F(_)) || me.ty().is_float() || other.own_type().is_some_and(|t| t.is_float()) {
            return Err(PyTypeError::new_err("&, |, ^ and ~ take integers or comparisons, not floats"));
        }
        let o = other.to_expr(me.ty());
        let (x, y) = if me.ty() == o.ty() {
            (me, o)
        } else if me.ty() == Ty::Bool {
            (b::cast(&me, o.ty()), o)
        } else if o.ty() == Ty::Bool {
            (me, b::cast(&o, me.ty()))
        } else {
            (me, o)
        };
        Ok(Py::new(py, wrap(f(x, y)))?.into_any())
    }
}

/// Sets the Python source position of the ops that follow.
#[pyfunction]
fn at(file: &str, line: u32, col: u32) -> PyResult<()> {
    building("a source position")?;
    b::at(file, line, col);
    Ok(())
}

/// A constant of type `ty`.
#[pyfunction]
fn constant(value: f64, ty: &str) -> PyResult<PyExpr> {
    building("constant")?;
    let t = parse_ty(ty)?;
    if !t.is_float() && value.fract() != 0.0 {
        return Err(PyTypeError::new_err(format!("the constant {value} is not an integer ({ty})")));
    }
    Ok(wrap(b::constant(value, t)))
}

/// `x` as a kernel value (numbers with Taichi's default types).
#[pyfunction]
fn value(x: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("value")?;
    Ok(wrap(literal(need_num(x, "the value")?)))
}

/// `x` converted to type `ty`.
#[pyfunction]
fn cast(x: &Bound<'_, PyAny>, ty: &str) -> PyResult<PyExpr> {
    building("cast")?;
    let t = parse_ty(ty)?;
    let n = need_num(x, "the value cast")?;
    let e = match n {
        Num::E(e) => e,
        other => other.to_expr(t),
    };
    Ok(wrap(b::cast(&e, t)))
}

/// `cond ? a : c` (both sides evaluated).
#[pyfunction]
fn select(cond: &Bound<'_, PyAny>, a: &Bound<'_, PyAny>, c: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("select")?;
    let cond = truth(need_num(cond, "the condition")?);
    let (x, y) = arith_pair(need_num(a, "a select branch")?, need_num(c, "a select branch")?);
    let (x, y) = as_expr_pair(x, y);
    Ok(wrap(b::select(&cond, &x, &y)))
}

/// Whether `n` holds: comparisons as they are, numbers compared with zero.
fn truth(n: Num) -> Expr {
    match n {
        Num::E(e) if e.ty() == Ty::Bool => e,
        Num::E(e) => v::ne(e, b::constant(0.0, e.ty())),
        Num::B(x) => b::flag(x),
        Num::I(i) => b::flag(i != 0),
        Num::F(f) => b::flag(f != 0.0),
    }
}

/// `x` as a condition (an i1 value).
#[pyfunction]
fn condition(x: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("condition")?;
    Ok(wrap(truth(need_num(x, "the condition")?)))
}

/// `a and c`, `a or c`, `not a` on conditions.
#[pyfunction]
fn logical(op: &str, a: &Bound<'_, PyAny>, c: Option<&Bound<'_, PyAny>>) -> PyResult<PyExpr> {
    building("logical")?;
    let x = truth(need_num(a, "an operand of and/or/not")?);
    let r = match (op, c) {
        ("not", None) => v::not(x),
        ("and", Some(c)) => v::and(x, truth(need_num(c, "an operand of and")?)),
        ("or", Some(c)) => v::or(x, truth(need_num(c, "an operand of or")?)),
        _ => return Err(PyValueError::new_err(format!("no logical operation {op}"))),
    };
    Ok(wrap(r))
}

/// A binary math function of [`BINARY_MATH`]: atan2, pow, max, min.
#[pyfunction]
fn math2(name: &str, a: &Bound<'_, PyAny>, c: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("math2")?;
    let Some((_, op)) = BINARY_MATH.iter().find(|(n, _)| *n == name) else {
        return Err(PyValueError::new_err(format!("no math function `{name}`")));
    };
    let (x, y) = arith_pair(need_num(a, name)?, need_num(c, name)?);
    Ok(wrap(op(x, y)))
}

/// `abs(x)` of a kernel value.
#[pyfunction(name = "abs")]
fn abs_value(x: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("abs")?;
    Ok(wrap(abs(literal(need_num(x, "abs")?))))
}

/// `x` with no gradient flowing through it.
#[pyfunction]
fn stop_grad(x: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("stop_grad")?;
    let e = literal(need_num(x, "stop_grad")?);
    let e = if e.ty().is_float() { e } else { b::cast(&e, fp()) };
    Ok(wrap(v::stop_grad(e)))
}

/// A uniform random number in [0, 1) of type `ty` (f32 or f64).
#[pyfunction]
fn random(ty: &str) -> PyResult<PyExpr> {
    building("random")?;
    Ok(wrap(match parse_ty(ty)? {
        Ty::F64 => v::random::<f64>(),
        Ty::F32 => v::random::<f32>(),
        _ => return Err(PyTypeError::new_err(format!("random numbers are f32 or f64, not {ty}"))),
    }))
}

fn indices(idx: &Bound<'_, PyAny>) -> PyResult<Vec<Expr>> {
    let mut out = Vec::new();
    for item in idx.try_iter()? {
        let n = need_num(&item?, "a field index")?;
        out.push(match n {
            Num::E(e) if e.ty().is_float() => {
                return Err(PyTypeError::new_err(format!("a field index must be an integer, not {}", ty_name(e.ty()))));
            }
            Num::E(e) => b::cast(&e, Ty::Index),
            Num::I(i) => b::constant(i as f64, Ty::Index),
            Num::B(x) => b::constant(f64::from(u8::from(x)), Ty::Index),
            Num::F(f) => return Err(PyTypeError::new_err(format!("a field index must be an integer, not {f}"))),
        });
    }
    Ok(out)
}

/// `ds.load` of one scalar of field `name`.
#[pyfunction]
fn load(name: &str, ty: &str, index: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    building("load")?;
    let t = parse_ty(ty)?;
    let idx = indices(index)?;
    Ok(wrap(b::emit_load(name, t, &idx)))
}

/// A store (`store`), atomic add (`add`) or atomic subtract (`sub`) of one scalar of field `name`.
#[pyfunction]
fn update(kind: &str, name: &str, ty: &str, index: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    building("update")?;
    let t = parse_ty(ty)?;
    let idx = indices(index)?;
    let kind = match kind {
        "store" => AccessKind::Store,
        "add" => AccessKind::AtomicAdd,
        "sub" => AccessKind::AtomicSub,
        "min" => AccessKind::AtomicMin,
        "max" => AccessKind::AtomicMax,
        _ => return Err(PyValueError::new_err(format!("no field update `{kind}`"))),
    };
    let n = need_num(value, "the value written")?;
    let e = match n {
        Num::E(e) if e.ty() == Ty::Bool => b::cast(&e, Ty::I32),
        Num::B(x) => b::constant(f64::from(u8::from(x)), t),
        n => n.to_expr(t),
    };
    b::emit_update(kind, name, t, &idx, &e);
    Ok(())
}

fn index_bound(x: &Bound<'_, PyAny>) -> PyResult<Expr> {
    Ok(match need_num(x, "a loop bound")? {
        Num::E(e) if e.ty().is_float() => return Err(PyTypeError::new_err("a range bound must be an integer")),
        Num::E(e) => b::cast(&e, Ty::Index),
        Num::I(i) => b::constant(i as f64, Ty::Index),
        Num::B(_) | Num::F(_) => return Err(PyTypeError::new_err("a range bound must be an integer")),
    })
}

/// `(k / m, k % m)` of non-negative indices (truncating: what an
/// n-dimensional range's flat index splits into).
#[pyfunction]
fn index_divmod(k: &Bound<'_, PyAny>, m: &Bound<'_, PyAny>) -> PyResult<(PyExpr, PyExpr)> {
    building("index_divmod")?;
    let (k, m) = (index_bound(k)?, index_bound(m)?);
    Ok((wrap(k / m), wrap(k % m)))
}

/// `for i in range(lo, hi)`: a parallel loop at the top of a kernel, a
/// serial one inside another loop or a branch; `body(i)` builds the body.
#[pyfunction]
fn parallel_for(py: Python<'_>, lo: &Bound<'_, PyAny>, hi: &Bound<'_, PyAny>, body: &Bound<'_, PyAny>) -> PyResult<()> {
    building("parallel_for")?;
    let (lo, hi) = (index_bound(lo)?, index_bound(hi)?);
    let failure = RefCell::new(None);
    b::parallel_for(lo, hi, |i| {
        guarded(&failure, (), || {
            body.call1((Py::new(py, wrap(i))?,))?;
            Ok(())
        })
    });
    failure.into_inner().map_or(Ok(()), Err)
}

/// A serial `for i in range(lo, hi)` carrying `carried` (the variables it
/// reassigns): `body(i, values)` builds the body and returns their new
/// values; returns their values after the loop.
#[pyfunction]
fn serial_for<'py>(
    py: Python<'py>,
    lo: &Bound<'py, PyAny>,
    hi: &Bound<'py, PyAny>,
    carried: &Bound<'py, PyAny>,
    body: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    building("serial_for")?;
    let (lo, hi) = (index_bound(lo)?, index_bound(hi)?);
    let inputs: Vec<Expr> = exprs_of(carried, "a loop variable")?.into_iter().map(literal).collect();
    let failure = RefCell::new(None);
    let out = b::serial_for(lo, hi, Values(inputs.clone()), |i, vals| {
        let fallback = Values(vals.0.clone());
        guarded(&failure, fallback, || {
            let r = body.call1((Py::new(py, wrap(i))?, handles(py, &vals.0)?))?;
            returned(py, &r, &vals.0, "a loop body")
        })
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    handles(py, &out.0)
}

/// `if cond: ... else: ...` carrying `carried` (the variables either side
/// reassigns): each side is called with their values and returns their new
/// ones; returns their values after the `if`.
#[pyfunction]
fn branch<'py>(
    py: Python<'py>,
    cond: &Bound<'py, PyAny>,
    carried: &Bound<'py, PyAny>,
    then: &Bound<'py, PyAny>,
    otherwise: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    building("branch")?;
    let cond = truth(need_num(cond, "an if condition")?);
    let inputs: Vec<Expr> = exprs_of(carried, "a variable")?.into_iter().map(literal).collect();
    let failure = RefCell::new(None);
    let side = |f: &Bound<'py, PyAny>, vals: Values| {
        let fallback = Values(vals.0.clone());
        guarded(&failure, fallback, || {
            let r = f.call1((handles(py, &vals.0)?,))?;
            returned(py, &r, &vals.0, "a branch")
        })
    };
    let out = b::branch(cond, Values(inputs), |v| side(then, v), |v| side(otherwise, v));
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    handles(py, &out.0)
}

/// Builds kernel `name` with scalar parameters `params` (name, type) by
/// calling `body(values)`; `default_fp` (f32 or f64) types Python float
/// literals that stand alone and integers promoted to floats. Returns `("ok", name, text, random)` or, when the
/// builder recorded an error, `("error", file, line, col, message)`; a
/// Python exception raised by `body` propagates.
#[pyfunction]
#[pyo3(signature = (name, params, no_grad, body, default_fp="f32"))]
fn build_kernel<'py>(
    py: Python<'py>,
    name: &str,
    params: Vec<(String, String)>,
    no_grad: bool,
    body: &Bound<'py, PyAny>,
    default_fp: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    let float = parse_ty(default_fp)?;
    if !float.is_float() {
        return Err(PyValueError::new_err(format!("default_fp is f32 or f64, not {default_fp}")));
    }
    DEFAULT_FP.with(|d| d.set(float));
    let building = TABLE.with(|t| t.borrow().build != 0);
    if building {
        return Err(PyRuntimeError::new_err(format!(
            "kernel {name} is built while another kernel is being built (a kernel called from kernel code?)"
        )));
    }
    let typed: Vec<(&str, Ty)> = params.iter().map(|(n, t)| Ok((n.as_str(), parse_ty(t)?))).collect::<PyResult<_>>()?;
    let build = BUILDS.fetch_add(1, Ordering::Relaxed) + 1;
    TABLE.with(|t| *t.borrow_mut() = Table { build, exprs: Vec::new() });
    let failure = RefCell::new(None);
    let result = b::build_kernel(name, &typed, no_grad, |values| {
        guarded(&failure, (), || {
            body.call1((handles(py, &values)?,))?;
            Ok(())
        })
    });
    TABLE.with(|t| *t.borrow_mut() = Table { build: 0, exprs: Vec::new() });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    match result {
        Ok(ir) => PyTuple::new(py, [
            "ok".into_pyobject(py)?.into_any(),
            ir.name.into_pyobject(py)?.into_any(),
            ir.text.into_pyobject(py)?.into_any(),
            PyBool::new(py, ir.random).to_owned().into_any(),
        ]),
        Err(e) => {
            let (file, line, col) = match &e.location {
                Some(l) => (l.file.clone(), l.line, l.col),
                None => (String::new(), 0, 0),
            };
            PyTuple::new(py, [
                "error".into_pyobject(py)?.into_any(),
                file.into_pyobject(py)?.into_any(),
                line.into_pyobject(py)?.into_any(),
                col.into_pyobject(py)?.into_any(),
                e.message.into_pyobject(py)?.into_any(),
            ])
        }
    }
}

/// The `ds.field` declaration of a field (elements `ty`, ds shape `shape`,
/// adjoint field `grad`) declared at `file:line:col`, as module-level IR.
#[pyfunction]
#[pyo3(signature = (name, ty, shape, grad, file, line, col, layout=None))]
#[allow(clippy::too_many_arguments)]
fn field_decl(
    name: &str,
    ty: &str,
    shape: Vec<usize>,
    grad: Option<&str>,
    file: &str,
    line: u32,
    col: u32,
    layout: Option<&str>,
) -> PyResult<String> {
    let t = parse_ty(ty)?;
    if !matches!(t, Ty::F32 | Ty::F64 | Ty::I32) {
        return Err(PyTypeError::new_err(format!("fields hold f32, f64 or i32 elements, not {ty}")));
    }
    if shape.iter().any(|&d| i64::try_from(d).is_err()) {
        return Err(PyValueError::new_err(format!("field {name}: the shape {shape:?} is too large")));
    }
    Ok(b::field_decl_at(name, t, &shape, grad, layout, (file, line, col)))
}

/// The `ds.dense` layout node `name` of cells `shape` storing the fields
/// placed there interleaved (`aos`) or by component (`soa`), placed at
/// `file:line:col`, as module-level IR.
#[pyfunction]
fn dense_decl(name: &str, shape: Vec<usize>, order: &str, file: &str, line: u32, col: u32) -> PyResult<String> {
    let order = match order {
        "aos" => ds_dialects::ops::Order::Aos,
        "soa" => ds_dialects::ops::Order::Soa,
        _ => return Err(PyValueError::new_err(format!("a layout is ds.Layout.AOS or ds.Layout.SOA, not {order:?}"))),
    };
    Ok(b::dense_decl_at(name, &shape, order, (file, line, col)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExpr>()?;
    macro_rules! functions {
        ($($f:ident),* $(,)?) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    functions!(
        at, constant, value, cast, select, condition, logical, math2, abs_value, stop_grad, random, load, update,
        index_divmod, parallel_for, serial_for, branch, build_kernel, field_decl, dense_decl,
    );
    m.add("UNARY_MATH", UNARY_MATH.iter().map(|(n, _)| *n).collect::<Vec<_>>())?;
    m.add("BINARY_MATH", BINARY_MATH.iter().map(|(n, _)| *n).collect::<Vec<_>>())?;
    Ok(())
}
