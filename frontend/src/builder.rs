//! The kernel builder behind `#[kernel]`: running a kernel function's
//! (rewritten) body emits ds-dialect IR through a thread-local builder, so
//! values are ordinary Rust values ([`Expr`]) with overloaded operators, and
//! Rust control flow the macro cannot overload becomes calls of [`parallel_for`],
//! [`serial_for`] and [`branch`], which build `ds.parallel_for`, `scf.for`
//! (with iteration arguments for reassigned variables) and `scf.if` (with
//! results for reassigned variables). Every op carries the Rust location of
//! the statement that made it. The first error (a type mismatch, an
//! unsupported use) is kept with its location and returned by [`build_kernel`].

use ds_dialects::ir::FileLineCol as Location;
use ds_dialects::ops::AccessKind;
use std::cell::RefCell;
use std::fmt::Write;

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
}

/// A scalar value of the kernel being built: SSA value `%v<id>` (or result
/// `sub` of a multi-result op). Copyable, like the number it stands for.
#[derive(Clone, Copy, Debug)]
pub struct Expr {
    pub(crate) id: u32,
    pub(crate) sub: Option<u16>,
    pub(crate) ty: Ty,
}

impl Expr {
    pub fn ty(&self) -> Ty {
        self.ty
    }
    /// The SSA name in the IR text.
    pub(crate) fn name(&self) -> String {
        match self.sub {
            Some(k) => format!("%v{}#{k}", self.id),
            None => format!("%v{}", self.id),
        }
    }
    fn value(id: u32, ty: Ty) -> Expr {
        Expr { id, sub: None, ty }
    }
}

struct Builder {
    /// Lines of the kernel body, already indented.
    lines: Vec<String>,
    depth: usize,
    next: usize,
    loc: String,
    /// The Rust position of `loc`.
    position: Option<Location>,
    /// The first error: where, and what.
    error: Option<(Option<Location>, String)>,
    /// Nesting of `ds.parallel_for` (only the outermost loop is parallel).
    loops: usize,
}

thread_local! {
    static BUILDER: RefCell<Option<Builder>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&mut Builder) -> R) -> R {
    BUILDER.with(|b| {
        let mut b = b.borrow_mut();
        let b = b.as_mut().expect("kernel code runs only inside a #[kernel] function being built");
        f(b)
    })
}

/// Sets the source location of the ops that follow (called by the macro).
pub fn at(file: &str, line: u32, col: u32) {
    with(|b| {
        b.loc = format!("loc(\"{file}\":{line}:{col})");
        b.position = Some(Location { file: file.into(), line, col });
    });
}

/// Records a build error at the current location (the first one wins).
pub fn error(message: impl Into<String>) {
    let message = message.into();
    with(|b| {
        if b.error.is_none() {
            b.error = Some((b.position.clone(), message));
        }
    });
}

fn fresh() -> u32 {
    with(|b| {
        b.next += 1;
        b.next as u32
    })
}

/// Emits one line of IR at the current nesting, with the current location.
pub(crate) fn line(text: &str) {
    with(|b| {
        let pad = "  ".repeat(b.depth + 1);
        let loc = if text.ends_with('{') || text.ends_with('(') || text.starts_with('^') || text.starts_with('}') {
            String::new()
        } else {
            format!(" {}", b.loc)
        };
        b.lines.push(format!("{pad}{text}{loc}"));
    });
}

fn nest(delta: isize) {
    with(|b| b.depth = (b.depth as isize + delta) as usize);
}

/// `%r = <text> : ty` for an op with one result of type `ty`.
pub(crate) fn op(text: &str, ty: Ty) -> Expr {
    let e = Expr::value(fresh(), ty);
    line(&format!("{} = {text}", e.name()));
    e
}

/// A constant of type `ty`.
pub fn constant(value: f64, ty: Ty) -> Expr {
    let literal = match ty {
        Ty::F32 | Ty::F64 => {
            let mut s = format!("{value:e}");
            if !s.contains('.') {
                s = s.replacen('e', ".0e", 1);
            }
            s
        }
        Ty::Bool => (if value != 0.0 { "true" } else { "false" }).to_string(),
        Ty::I32 | Ty::I64 | Ty::Index => format!("{}", value as i64),
    };
    let suffix = if ty == Ty::Bool { String::new() } else { format!(" : {}", ty.mlir()) };
    op(&format!("arith.constant {literal}{suffix}"), ty)
}

/// A boolean constant (the macro's flags for `break` / `continue`).
pub fn flag(value: bool) -> Expr {
    constant(if value { 1.0 } else { 0.0 }, Ty::Bool)
}

/// Converts `e` to `to` (int <-> float, widths, index), or records an error.
pub fn cast(e: &Expr, to: Ty) -> Expr {
    use Ty::*;
    let (from, n) = (e.ty, e.name());
    let name = match (from, to) {
        _ if from == to => return *e,
        (F32, F64) => "arith.extf",
        (F64, F32) => "arith.truncf",
        (I32 | I64 | Bool, F32 | F64) => "arith.sitofp",
        (F32 | F64, I32 | I64) => "arith.fptosi",
        (I32 | I64, Index) | (Index, I32 | I64) => "arith.index_cast",
        (I32, I64) | (Bool, I32 | I64) => "arith.extsi",
        (I64, I32) => "arith.trunci",
        (Index, F32 | F64) => {
            let i = cast(e, I64);
            return cast(&i, to);
        }
        (F32 | F64, Index) => {
            let i = cast(e, I64);
            return cast(&i, Index);
        }
        _ => {
            error(format!("cannot convert a {} value to {}", from.mlir(), to.mlir()));
            return constant(0.0, to);
        }
    };
    op(&format!("{name} {n} : {} to {}", from.mlir(), to.mlir()), to)
}

/// The common type of two operands: ints widen to index, i32 to i64; floats
/// and ints do not mix implicitly.
pub(crate) fn unify(a: &Expr, b: &Expr) -> (Expr, Expr) {
    use Ty::*;
    let target = match (a.ty, b.ty) {
        (x, y) if x == y => x,
        (Index, I32 | I64) | (I32 | I64, Index) => Index,
        (I32, I64) | (I64, I32) => I64,
        (F32, F64) | (F64, F32) => {
            error("f32 and f64 values mixed: convert one with `as`");
            a.ty
        }
        (x, y) => {
            error(format!("{} and {} values mixed: convert one with `as`", x.mlir(), y.mlir()));
            a.ty
        }
    };
    (cast(a, target), cast(b, target))
}

/// A binary arith op chosen by type (`addf` / `addi` ...).
pub(crate) fn binary(a: &Expr, b: &Expr, float_op: &str, int_op: &str) -> Expr {
    let (a, b) = unify(a, b);
    let name = if a.ty.is_float() { float_op } else { int_op };
    op(&format!("arith.{name} {}, {} : {}", a.name(), b.name(), a.ty.mlir()), a.ty)
}

/// A comparison: `pred` is the float predicate (olt ...), `ipred` the integer one.
pub(crate) fn compare(a: &Expr, b: &Expr, pred: &str, ipred: &str) -> Expr {
    let (a, b) = unify(a, b);
    let text = if a.ty.is_float() {
        format!("arith.cmpf {pred}, {}, {} : {}", a.name(), b.name(), a.ty.mlir())
    } else {
        format!("arith.cmpi {ipred}, {}, {} : {}", a.name(), b.name(), a.ty.mlir())
    };
    op(&text, Ty::Bool)
}

/// A unary math op (`math.sin` ...) on a float.
pub(crate) fn math(name: &str, a: &Expr) -> Expr {
    if !a.ty.is_float() {
        error(format!("math.{name} needs a float value, got {}", a.ty.mlir()));
    }
    op(&format!("math.{name} {} : {}", a.name(), a.ty.mlir()), a.ty)
}

/// `cond ? a : b`.
pub fn select(cond: &Expr, a: &Expr, b: &Expr) -> Expr {
    let (a, b) = unify(a, b);
    op(&format!("arith.select {}, {}, {} : {}", cond.name(), a.name(), b.name(), a.ty.mlir()), a.ty)
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

fn types(values: &[Expr]) -> String {
    values.iter().map(|v| v.ty.mlir()).collect::<Vec<_>>().join(", ")
}

fn names(values: &[Expr]) -> String {
    values.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
}

/// Result values `%r#0, %r#1 ...` (or `%r`) of a region op with `tys`.
fn results(tys: &[Ty]) -> (String, Vec<Expr>) {
    let id = fresh();
    let exprs = if tys.len() == 1 {
        vec![Expr::value(id, tys[0])]
    } else {
        tys.iter().enumerate().map(|(i, t)| Expr { id, sub: Some(i as u16), ty: *t }).collect()
    };
    let head = match tys.len() {
        0 => String::new(),
        1 => format!("%v{id} = "),
        n => format!("%v{id}:{n} = "),
    };
    (head, exprs)
}

/// Runs `f` one level deeper and returns what it emitted, without emitting it.
fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let saved = with(|b| {
        b.depth += 1;
        std::mem::take(&mut b.lines)
    });
    let r = f();
    let lines = with(|b| {
        b.depth -= 1;
        std::mem::replace(&mut b.lines, saved)
    });
    (r, lines)
}

fn append(lines: Vec<String>) {
    with(|b| b.lines.extend(lines));
}

/// The body of a region yielding `values` (converted to `tys`).
fn region_body(f: impl FnOnce() -> Vec<Expr>, tys: Option<&[Ty]>) -> (Vec<Ty>, Vec<String>) {
    capture(|| {
        let out = f();
        let out: Vec<Expr> = match tys {
            Some(tys) => out.iter().zip(tys).map(|(e, t)| cast(e, *t)).collect(),
            None => out,
        };
        if out.is_empty() {
            line("scf.yield");
        } else {
            line(&format!("scf.yield {} : {}", names(&out), types(&out)));
        }
        out.iter().map(|e| e.ty).collect()
    })
}

fn emit_if(cond: &Expr, tys: &[Ty], then: Vec<String>, otherwise: Vec<String>) -> Vec<Expr> {
    if cond.ty != Ty::Bool {
        error(format!("an if condition must be a comparison (bool), got {}", cond.ty.mlir()));
    }
    let (head, outs) = results(tys);
    let arrow =
        if tys.is_empty() { String::new() } else { format!(" -> ({})", tys.iter().map(|t| t.mlir()).collect::<Vec<_>>().join(", ")) };
    line(&format!("{head}scf.if {}{arrow} {{", cond.name()));
    append(then);
    line("} else {");
    append(otherwise);
    line("}");
    outs
}

/// `if cond { then } else { otherwise }` as a statement: both branches take
/// and return the variables they may reassign (`carried`); returns their new
/// values.
pub fn branch<C: Carry>(cond: Expr, carried: C, then: impl FnOnce(C) -> C, otherwise: impl FnOnce(C) -> C) -> C {
    let inputs = carried.exprs();
    let tys: Vec<Ty> = inputs.iter().map(|e| e.ty).collect();
    let (_, t) = region_body(|| then(C::rebuild(&mut inputs.clone().into_iter())).exprs(), Some(&tys));
    let (_, e) = region_body(|| otherwise(C::rebuild(&mut inputs.clone().into_iter())).exprs(), Some(&tys));
    C::rebuild(&mut emit_if(&cond, &tys, t, e).into_iter())
}

/// `if cond { a } else { b }` as an expression with a value.
pub fn branch_value<C: Carry>(cond: Expr, then: impl FnOnce() -> C, otherwise: impl FnOnce() -> C) -> C {
    let (tys, t) = region_body(|| then().exprs(), None);
    let (_, e) = region_body(|| otherwise().exprs(), Some(&tys));
    C::rebuild(&mut emit_if(&cond, &tys, t, e).into_iter())
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
    let nested = with(|b| b.loops > 0 || b.depth > 0);
    if nested {
        serial_for(lo, hi, (), |i, ()| body(i));
        return;
    }
    let i = Expr::value(fresh(), Ty::Index);
    line(&format!("\"ds.parallel_for\"({}, {}) ({{", lo.name(), hi.name()));
    line(&format!("^bb0({}: index):", i.name()));
    with(|b| b.loops += 1);
    nest(1);
    body(i);
    line("gpu.yield");
    nest(-1);
    with(|b| b.loops -= 1);
    line("}) : (index, index) -> ()");
}

/// A serial `for j in lo..hi` carrying the variables it reassigns.
pub fn serial_for<C: Carry>(lo: impl IntoIndex, hi: impl IntoIndex, carried: C, body: impl FnOnce(Expr, C) -> C) -> C {
    let (lo, hi) = (lo.into_index(), hi.into_index());
    let one = constant(1.0, Ty::Index);
    let inputs = carried.exprs();
    let tys: Vec<Ty> = inputs.iter().map(|e| e.ty).collect();
    let (head, outs) = results(&tys);
    let j = Expr::value(fresh(), Ty::Index);
    let args: Vec<Expr> = inputs.iter().map(|e| Expr::value(fresh(), e.ty)).collect();
    let iter_args = if args.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = args.iter().zip(&inputs).map(|(a, i)| format!("{} = {}", a.name(), i.name())).collect();
        format!(" iter_args({}) -> ({})", pairs.join(", "), types(&inputs))
    };
    line(&format!("{head}scf.for {} = {} to {} step {}{iter_args} {{", j.name(), lo.name(), hi.name(), one.name()));
    nest(1);
    let out = body(j, C::rebuild(&mut args.into_iter())).exprs();
    let out: Vec<Expr> = out.iter().zip(&tys).map(|(e, t)| cast(e, *t)).collect();
    if out.is_empty() {
        line("scf.yield");
    } else {
        line(&format!("scf.yield {} : {}", names(&out), types(&out)));
    }
    nest(-1);
    line("}");
    C::rebuild(&mut outs.into_iter())
}

/// A kernel's IR: its name, scalar parameter types and the `func.func` as text.
#[derive(Clone, Debug)]
pub struct KernelIr {
    pub name: String,
    pub params: Vec<Ty>,
    /// Marked `ds.no_grad`: no gradient kernel is generated.
    pub no_grad: bool,
    pub text: String,
}

/// The first error made while building a kernel, with its Rust location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    pub kernel: String,
    pub location: Option<Location>,
    pub message: String,
}

/// Builds kernel `name` with scalar parameters `params` by running `body`
/// on the parameters' values; `no_grad` marks it `ds.no_grad` (no gradient
/// kernel is generated for it).
pub fn build_kernel(name: &str, params: &[(&str, Ty)], no_grad: bool, body: impl FnOnce(Vec<Expr>)) -> Result<KernelIr, BuildError> {
    // Parameters are %v1 ... %vN; values made by the body follow.
    BUILDER.with(|b| {
        *b.borrow_mut() = Some(Builder {
            lines: vec![],
            depth: 0,
            next: params.len(),
            loc: "loc(unknown)".into(),
            position: None,
            error: None,
            loops: 0,
        })
    });
    let values: Vec<Expr> = params.iter().enumerate().map(|(i, (_, t))| Expr::value(i as u32 + 1, *t)).collect();
    let signature: Vec<String> = values.iter().map(|v| format!("{}: {}", v.name(), v.ty.mlir())).collect();
    body(values);
    let b = BUILDER.with(|b| b.borrow_mut().take()).expect("builder");
    if let Some((location, message)) = b.error {
        return Err(BuildError { kernel: name.into(), location, message });
    }
    let mut text = String::new();
    let attributes = if no_grad { "ds.kernel, ds.no_grad" } else { "ds.kernel" };
    writeln!(text, "func.func @{name}({}) attributes {{{attributes}}} {{", signature.join(", ")).expect("string");
    for l in &b.lines {
        writeln!(text, "{l}").expect("string");
    }
    writeln!(text, "  return\n}}").expect("string");
    Ok(KernelIr { name: name.into(), params: params.iter().map(|(_, t)| *t).collect(), no_grad, text })
}

/// The `ds.field` declaration of `name` (with `grad` naming its adjoint field)
/// as module-level IR.
pub fn field_decl(name: &str, ty: Ty, shape: &[usize], grad: Option<&str>) -> String {
    let shape = if shape.is_empty() {
        "array<i64>".to_string()
    } else {
        format!("array<i64: {}>", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
    };
    let grad = grad.map(|g| format!(", grad = @{g}")).unwrap_or_default();
    format!("\"ds.field\"() {{sym_name = \"{name}\", element_type = {}, shape = {shape}{grad}}} : () -> ()\n", ty.mlir())
}

/// `ds.load` of one scalar of field `name` (elements of type `ty`).
pub fn emit_load(name: &str, ty: Ty, index: &[Expr]) -> Expr {
    let names: Vec<String> = index.iter().map(|e| e.name()).collect();
    let tys = vec!["index"; index.len()].join(", ");
    op(&format!("\"{}\"({}) {{field = @{name}}} : ({tys}) -> {}", AccessKind::Load.name(), names.join(", "), ty.mlir()), ty)
}

/// A store or atomic update of one scalar of field `name`.
pub fn emit_update(kind: AccessKind, name: &str, ty: Ty, index: &[Expr], value: &Expr) {
    let value = cast(value, ty);
    let mut names = vec![value.name()];
    names.extend(index.iter().map(|e| e.name()));
    let tys: Vec<&str> = std::iter::once(ty.mlir()).chain(index.iter().map(|_| "index")).collect();
    line(&format!("\"{}\"({}) {{field = @{name}}} : ({}) -> ()", kind.name(), names.join(", "), tys.join(", ")));
}
