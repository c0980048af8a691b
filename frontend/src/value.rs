//! Kernel values: scalars ([`Expr`]) with Rust operators and math methods,
//! and small vectors and matrices of them ([`Vector`], [`Matrix`]), all
//! scalarized into the IR. Rust numbers mixed with values become constants of
//! the value's type.

use crate::builder::{self, Carry, Expr, Ty, binary, compare, constant, math, math_binary};
use ds_dialects::ops::{CmpF, CmpI};
use std::ops::{Add, Div, Mul, Neg, Rem, Sub};

/// Something that can stand where a value of type `ty` is expected.
pub trait Operand {
    fn to_expr(&self, ty: Ty) -> Expr;
    /// The operand's own type, if it has one (Rust numbers take the other side's).
    fn own_type(&self) -> Option<Ty>;
}

impl Operand for Expr {
    fn to_expr(&self, _: Ty) -> Expr {
        *self
    }
    fn own_type(&self) -> Option<Ty> {
        Some(self.ty())
    }
}

impl Operand for &Expr {
    fn to_expr(&self, _: Ty) -> Expr {
        *(*self)
    }
    fn own_type(&self) -> Option<Ty> {
        Some(self.ty())
    }
}

macro_rules! number_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn to_expr(&self, ty: Ty) -> Expr {
                if !ty.is_float() && (*self as f64).fract() != 0.0 {
                    builder::error(format!("the constant {} is used as an integer", self));
                }
                constant(*self as f64, ty)
            }
            fn own_type(&self) -> Option<Ty> {
                None
            }
        }
    )*};
}
number_operand!(f32, f64, i32, i64, usize);

/// Both operands as values of one type.
fn pair(a: &impl Operand, b: &impl Operand) -> (Expr, Expr) {
    let ty = a.own_type().or(b.own_type()).unwrap_or(Ty::F32);
    (a.to_expr(b.own_type().unwrap_or(ty)), b.to_expr(a.own_type().unwrap_or(ty)))
}

macro_rules! arith_op {
    ($trait:ident, $method:ident, $f:literal, $i:literal) => {
        impl<R: Operand> $trait<R> for Expr {
            type Output = Expr;
            fn $method(self, rhs: R) -> Expr {
                let (a, b) = pair(&self, &rhs);
                binary(&a, &b, $f, $i)
            }
        }
        impl<R: Operand> $trait<R> for &Expr {
            type Output = Expr;
            fn $method(self, rhs: R) -> Expr {
                let (a, b) = pair(&self, &rhs);
                binary(&a, &b, $f, $i)
            }
        }
        // Left-hand Rust numbers: f64 (the one float, so `2.0 * x` infers
        // its type) and the integers (`2 * i` falls back to i32; `N * i`
        // with a usize or i64 constant works too).
        arith_op!(@numbers $trait, $method, $f, $i, f64, i32, i64, usize);
    };
    (@numbers $trait:ident, $method:ident, $f:literal, $i:literal, $($t:ty),*) => {$(
        impl $trait<Expr> for $t {
            type Output = Expr;
            fn $method(self, rhs: Expr) -> Expr {
                let (a, b) = pair(&self, &rhs);
                binary(&a, &b, $f, $i)
            }
        }
        impl $trait<&Expr> for $t {
            type Output = Expr;
            fn $method(self, rhs: &Expr) -> Expr {
                let (a, b) = pair(&self, &rhs);
                binary(&a, &b, $f, $i)
            }
        }
    )*};
}
arith_op!(Add, add, "arith.addf", "arith.addi");
arith_op!(Sub, sub, "arith.subf", "arith.subi");
arith_op!(Mul, mul, "arith.mulf", "arith.muli");
arith_op!(Div, div, "arith.divf", "arith.divsi");
arith_op!(Rem, rem, "arith.remf", "arith.remsi");

impl Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        -&self
    }
}

impl Neg for &Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        if self.ty().is_float() {
            math("arith.negf", self)
        } else {
            constant(0.0, self.ty()) - self
        }
    }
}

/// A Rust number literal as a kernel value (`let mut t = 0.0;`): of its
/// suffix's type, else Taichi's defaults, f32 for floats and i32 for integers.
pub trait Literal {
    fn literal(self) -> Expr;
}

macro_rules! literal {
    ($($t:ty => $ty:ident),*) => {$(
        impl Literal for $t {
            fn literal(self) -> Expr {
                constant(self as f64, Ty::$ty)
            }
        }
    )*};
}
literal!(f32 => F32, f64 => F64, i32 => I32, i64 => I64, usize => Index);

/// A number literal as the value of an `if` branch (`else { 0.0 }`): a
/// constant that the branch's result then converts to the other branch's
/// type (f64 for floats, i64 for integers until then, so it converts exactly).
pub fn literal_arm<L: ArmLiteral>(value: L) -> Expr {
    value.arm()
}

/// The number types an `if` branch may end with.
pub trait ArmLiteral {
    fn arm(self) -> Expr;
}
impl ArmLiteral for f64 {
    fn arm(self) -> Expr {
        constant(self, Ty::F64)
    }
}
impl ArmLiteral for f32 {
    fn arm(self) -> Expr {
        constant(self as f64, Ty::F32)
    }
}
impl ArmLiteral for i32 {
    fn arm(self) -> Expr {
        constant(self as f64, Ty::I64)
    }
}

/// Used by the code `#[kernel]` generates for `let mut NAME = LITERAL;`.
pub fn literal<L: Literal>(value: L) -> Expr {
    value.literal()
}

/// `value` as a kernel constant of type `T` (what `#[kernel]` makes of
/// `0.5 as T` for a type parameter `T` of the kernel).
pub fn literal_of<T: crate::program::Param>(value: f64) -> Expr {
    builder::constant(value, T::TY)
}

/// A uniform random number in [0, 1) of float type `T` (f32 or f64), with
/// no gradient: a counter-based generator over the launch's random stream,
/// the call site and the loop variables, so the same program, launched in
/// the same order, gives the same numbers on the CPU and the GPU, and a
/// launch's gradient recomputes exactly the numbers the launch drew.
/// Programs choose their sequence with `Program::seed_random`.
pub fn random<T: crate::field::Scalar>() -> Expr {
    builder::random_float(T::TY)
}

/// `x` itself, through which no gradient flows (Taichi's `ti.stop_grad`).
pub fn stop_grad(x: Expr) -> Expr {
    builder::stop_grad(&x)
}

/// Comparisons and logic (the macro rewrites `<`, `==`, `&&`, `!` ... to these).
pub fn lt(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    compare(&a, &b, CmpF::Olt, CmpI::Slt)
}
pub fn le(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    compare(&a, &b, CmpF::Ole, CmpI::Sle)
}
pub fn gt(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    compare(&a, &b, CmpF::Ogt, CmpI::Sgt)
}
pub fn ge(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    compare(&a, &b, CmpF::Oge, CmpI::Sge)
}
pub fn eq(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    compare(&a, &b, CmpF::Oeq, CmpI::Eq)
}
pub fn ne(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    compare(&a, &b, CmpF::One, CmpI::Ne)
}
pub fn and(a: Expr, b: Expr) -> Expr {
    binary(&a, &b, "arith.andi", "arith.andi")
}
pub fn or(a: Expr, b: Expr) -> Expr {
    binary(&a, &b, "arith.ori", "arith.ori")
}
pub fn not(a: Expr) -> Expr {
    let t = constant(1.0, Ty::Bool);
    binary(&a, &t, "arith.xori", "arith.xori")
}

/// `e as T` in a kernel.
/// `v as T` in a kernel: a kernel value converted (an IR cast), or a Rust
/// number converted by Rust (it stays a build-time value: `k as f64` of an
/// `unroll` index, `N as i32` of a constant).
pub trait Cast<T> {
    type Output;
    fn cast(self) -> Self::Output;
}

impl<T: crate::program::Param> Cast<T> for Expr {
    type Output = Expr;
    fn cast(self) -> Expr {
        builder::cast(&self, T::TY)
    }
}

macro_rules! rust_casts {
    ($($from:ty => [$($to:ty),*];)*) => {$($(
        impl Cast<$to> for $from {
            type Output = $to;
            fn cast(self) -> $to {
                self as $to
            }
        }
    )*)*};
}
rust_casts! {
    f32 => [f32, f64, i32, i64, usize];
    f64 => [f32, f64, i32, i64, usize];
    i32 => [f32, f64, i32, i64, usize];
    i64 => [f32, f64, i32, i64, usize];
    usize => [f32, f64, i32, i64, usize];
    u32 => [f32, f64, i32, i64, usize];
    bool => [i32, i64, usize, bool];
}

/// Used by the code `#[kernel]` generates for `v as T`.
pub fn cast<T, V: Cast<T>>(v: V) -> V::Output {
    v.cast()
}

/// `v as T` for a type parameter `T` of the kernel: a kernel value is
/// converted, a Rust number (a build-time value) becomes a constant of
/// `T`'s type.
pub trait CastToParam<T> {
    fn cast_to_param(self) -> Expr;
}

impl<T: crate::program::Param> CastToParam<T> for Expr {
    fn cast_to_param(self) -> Expr {
        builder::cast(&self, T::TY)
    }
}

macro_rules! numbers_to_param {
    ($($from:ty),*) => {$(
        impl<T: crate::program::Param> CastToParam<T> for $from {
            fn cast_to_param(self) -> Expr {
                builder::constant(self as f64, T::TY)
            }
        }
    )*};
}
numbers_to_param!(f32, f64, i32, i64, usize, u32);

/// Used by the code `#[kernel]` generates for `v as T`, `T` a type parameter.
pub fn cast_to_param<T, V: CastToParam<T>>(v: V) -> Expr {
    v.cast_to_param()
}

/// `x = 1` for a mutable local: the literal takes `x`'s type (a kernel
/// value's, or a Rust number's).
pub trait AssignLiteral {
    fn literal_like(&self, value: f64) -> Self;
}

impl AssignLiteral for Expr {
    fn literal_like(&self, value: f64) -> Expr {
        constant(value, self.ty())
    }
}

macro_rules! numbers_assign_literal {
    ($($t:ty),*) => {$(
        impl AssignLiteral for $t {
            fn literal_like(&self, value: f64) -> $t {
                value as $t
            }
        }
    )*};
}
numbers_assign_literal!(f32, f64, i32, i64, usize, u32);

/// Used by the code `#[kernel]` generates for `x = LITERAL`.
pub fn literal_like<V: AssignLiteral>(target: &V, value: f64) -> V {
    target.literal_like(value)
}

/// The larger / smaller of two values.
pub fn max(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    binary(&a, &b, "arith.maximumf", "arith.maxsi")
}
pub fn min(a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    binary(&a, &b, "arith.minimumf", "arith.minsi")
}

/// `cond ? a : b` without branching.
pub fn select(cond: Expr, a: impl Operand, b: impl Operand) -> Expr {
    let (a, b) = pair(&a, &b);
    builder::select(&cond, &a, &b)
}

impl Expr {
    pub fn sin(&self) -> Expr {
        math("math.sin", self)
    }
    pub fn cos(&self) -> Expr {
        math("math.cos", self)
    }
    pub fn tanh(&self) -> Expr {
        math("math.tanh", self)
    }
    pub fn exp(&self) -> Expr {
        math("math.exp", self)
    }
    pub fn ln(&self) -> Expr {
        math("math.log", self)
    }
    pub fn sqrt(&self) -> Expr {
        math("math.sqrt", self)
    }
    pub fn rsqrt(&self) -> Expr {
        math("math.rsqrt", self)
    }
    pub fn abs(&self) -> Expr {
        math("math.absf", self)
    }
    pub fn tan(&self) -> Expr {
        math("math.tan", self)
    }
    pub fn asin(&self) -> Expr {
        math("math.asin", self)
    }
    pub fn acos(&self) -> Expr {
        math("math.acos", self)
    }
    pub fn atan(&self) -> Expr {
        math("math.atan", self)
    }
    pub fn sinh(&self) -> Expr {
        math("math.sinh", self)
    }
    pub fn cosh(&self) -> Expr {
        math("math.cosh", self)
    }
    pub fn log2(&self) -> Expr {
        math("math.log2", self)
    }
    pub fn exp2(&self) -> Expr {
        math("math.exp2", self)
    }
    pub fn round(&self) -> Expr {
        math("math.round", self)
    }
    /// -1, 0 or 1 (no gradient flows through it).
    pub fn signum(&self) -> Expr {
        let (zero, one) = (constant(0.0, self.ty()), constant(1.0, self.ty()));
        let negative = select(lt(*self, zero), -one, zero);
        select(gt(*self, zero), one, negative)
    }
    /// `self` limited to `[lo, hi]`.
    pub fn clamp(&self, lo: impl Operand, hi: impl Operand) -> Expr {
        self.max(lo).min(hi)
    }
    pub fn floor(&self) -> Expr {
        math("math.floor", self)
    }
    pub fn ceil(&self) -> Expr {
        math("math.ceil", self)
    }
    pub fn powf(&self, e: impl Operand) -> Expr {
        let (a, b) = pair(self, &e);
        math_binary("math.powf", &a, &b)
    }
    pub fn atan2(&self, x: impl Operand) -> Expr {
        let (a, b) = pair(self, &x);
        math_binary("math.atan2", &a, &b)
    }
    pub fn max(&self, b: impl Operand) -> Expr {
        max(self, b)
    }
    pub fn min(&self, b: impl Operand) -> Expr {
        min(self, b)
    }
}

/// A vector of `N` scalars (Taichi's ti.Vector).
#[derive(Clone, Copy, Debug)]
pub struct Vector<const N: usize>(pub [Expr; N]);

/// An `R` x `C` matrix, row-major.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<const R: usize, const C: usize>(pub [[Expr; C]; R]);

pub type Vec2 = Vector<2>;
pub type Vec3 = Vector<3>;
pub type Vec4 = Vector<4>;
pub type Mat2 = Matrix<2, 2>;
pub type Mat3 = Matrix<3, 3>;

impl<const N: usize> Vector<N> {
    /// A vector of constants of type `ty`.
    pub fn splat(v: f64, ty: Ty) -> Self {
        Vector(std::array::from_fn(|_| constant(v, ty)))
    }
    pub fn map(&self, f: impl Fn(&Expr) -> Expr) -> Self {
        Vector(std::array::from_fn(|i| f(&self.0[i])))
    }
    fn zip(&self, o: &Self, f: impl Fn(&Expr, &Expr) -> Expr) -> Self {
        Vector(std::array::from_fn(|i| f(&self.0[i], &o.0[i])))
    }
    pub fn dot(&self, o: &Self) -> Expr {
        (1..N).fold(self.0[0] * o.0[0], |acc, i| acc + self.0[i] * o.0[i])
    }
    pub fn norm_sqr(&self) -> Expr {
        self.dot(self)
    }
    pub fn norm(&self) -> Expr {
        self.norm_sqr().sqrt()
    }
    pub fn normalized(&self) -> Self {
        let n = self.norm();
        self.map(|c| c / n)
    }
    pub fn outer<const M: usize>(&self, o: &Vector<M>) -> Matrix<N, M> {
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| self.0[i] * o.0[j])))
    }
    /// The i-th component.
    pub fn at(&self, i: usize) -> Expr {
        self.0[i]
    }
}

impl Vec2 {
    /// The z component of the 3-D cross product of two 2-D vectors.
    pub fn cross(&self, o: &Vec2) -> Expr {
        self.0[0] * o.0[1] - self.0[1] * o.0[0]
    }
}

impl Vec3 {
    pub fn cross(&self, o: &Vec3) -> Vec3 {
        let (a, b) = (&self.0, &o.0);
        Vector([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
    }
}

impl<const N: usize> Add for Vector<N> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        self.zip(&o, |a, b| a + b)
    }
}
impl<const N: usize> Sub for Vector<N> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        self.zip(&o, |a, b| a - b)
    }
}
impl<const N: usize> Neg for Vector<N> {
    type Output = Self;
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
}
impl<const N: usize, R: Operand> Mul<R> for Vector<N> {
    type Output = Self;
    fn mul(self, s: R) -> Self {
        self.map(|a| a * s.to_expr(a.ty()))
    }
}
impl<const N: usize, R: Operand> Div<R> for Vector<N> {
    type Output = Self;
    fn div(self, s: R) -> Self {
        self.map(|a| a / s.to_expr(a.ty()))
    }
}
impl<const N: usize> Mul<Vector<N>> for Expr {
    type Output = Vector<N>;
    fn mul(self, v: Vector<N>) -> Vector<N> {
        v * self
    }
}
impl<const N: usize> Mul<Vector<N>> for f64 {
    type Output = Vector<N>;
    fn mul(self, v: Vector<N>) -> Vector<N> {
        v * self
    }
}

/// Element-wise products and quotients of two vectors (Taichi's `*` and `/`).
impl<const N: usize> Mul for Vector<N> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        self.zip(&o, |a, b| a * b)
    }
}
impl<const N: usize> Div for Vector<N> {
    type Output = Self;
    fn div(self, o: Self) -> Self {
        self.zip(&o, |a, b| a / b)
    }
}

/// A scalar broadcast to every component: `v + s`, `v - s`.
impl<const N: usize, R: Operand> Add<R> for Vector<N> {
    type Output = Self;
    fn add(self, s: R) -> Self {
        self.map(|a| a + s.to_expr(a.ty()))
    }
}
impl<const N: usize, R: Operand> Sub<R> for Vector<N> {
    type Output = Self;
    fn sub(self, s: R) -> Self {
        self.map(|a| a - s.to_expr(a.ty()))
    }
}

/// A scalar on the left of a vector or a matrix: `s + v`, `s - v`, `s * m`.
macro_rules! scalar_on_the_left {
    ($($s:ty),*) => {$(
        impl<const N: usize> Add<Vector<N>> for $s {
            type Output = Vector<N>;
            fn add(self, v: Vector<N>) -> Vector<N> {
                v.map(|a| self.to_expr(a.ty()) + a)
            }
        }
        impl<const N: usize> Sub<Vector<N>> for $s {
            type Output = Vector<N>;
            fn sub(self, v: Vector<N>) -> Vector<N> {
                v.map(|a| self.to_expr(a.ty()) - a)
            }
        }
        impl<const R: usize, const C: usize> Mul<Matrix<R, C>> for $s {
            type Output = Matrix<R, C>;
            fn mul(self, m: Matrix<R, C>) -> Matrix<R, C> {
                m.scale(self)
            }
        }
    )*};
}
scalar_on_the_left!(Expr, f64);

impl<const R: usize, const C: usize> Matrix<R, C> {
    /// The zero matrix of element type `ty`.
    pub fn zero(ty: Ty) -> Self {
        Matrix(std::array::from_fn(|_| std::array::from_fn(|_| constant(0.0, ty))))
    }
    pub fn at(&self, i: usize, j: usize) -> Expr {
        self.0[i][j]
    }
    pub fn transpose(&self) -> Matrix<C, R> {
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| self.0[j][i])))
    }
    pub fn matmul<const K: usize>(&self, o: &Matrix<C, K>) -> Matrix<R, K> {
        Matrix(std::array::from_fn(|i| {
            std::array::from_fn(|j| (1..C).fold(self.0[i][0] * o.0[0][j], |acc, k| acc + self.0[i][k] * o.0[k][j]))
        }))
    }
    pub fn mul_vec(&self, v: &Vector<C>) -> Vector<R> {
        Vector(std::array::from_fn(|i| (1..C).fold(self.0[i][0] * v.0[0], |acc, k| acc + self.0[i][k] * v.0[k])))
    }
    fn zip(&self, o: &Self, f: impl Fn(&Expr, &Expr) -> Expr) -> Self {
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| f(&self.0[i][j], &o.0[i][j]))))
    }
    pub fn scale(&self, s: impl Operand) -> Self {
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| self.0[i][j] * s.to_expr(self.0[i][j].ty()))))
    }
}

impl<const N: usize> Matrix<N, N> {
    /// The identity matrix of element type `ty`.
    pub fn identity(ty: Ty) -> Self {
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| constant(if i == j { 1.0 } else { 0.0 }, ty))))
    }
    /// The diagonal matrix with `d` on its diagonal.
    pub fn diag(d: Vector<N>) -> Self {
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| if i == j { d.0[i] } else { constant(0.0, d.0[i].ty()) })))
    }
    pub fn trace(&self) -> Expr {
        (1..N).fold(self.0[0][0], |acc, i| acc + self.0[i][i])
    }
}

/// `a * b`: the matrix product.
impl<const R: usize, const C: usize, const K: usize> Mul<Matrix<C, K>> for Matrix<R, C> {
    type Output = Matrix<R, K>;
    fn mul(self, o: Matrix<C, K>) -> Matrix<R, K> {
        self.matmul(&o)
    }
}

/// `m * v`: the matrix-vector product.
impl<const R: usize, const C: usize> Mul<Vector<C>> for Matrix<R, C> {
    type Output = Vector<R>;
    fn mul(self, v: Vector<C>) -> Vector<R> {
        self.mul_vec(&v)
    }
}

/// `m * s`: every entry times a scalar.
impl<const R: usize, const C: usize, S: Operand> Mul<S> for Matrix<R, C> {
    type Output = Self;
    fn mul(self, s: S) -> Self {
        self.scale(s)
    }
}

impl<const R: usize, const C: usize> Neg for Matrix<R, C> {
    type Output = Self;
    fn neg(self) -> Self {
        Matrix(self.0.map(|row| row.map(|a| -a)))
    }
}

impl<const R: usize, const C: usize> Add for Matrix<R, C> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        self.zip(&o, |a, b| a + b)
    }
}
impl<const R: usize, const C: usize> Sub for Matrix<R, C> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        self.zip(&o, |a, b| a - b)
    }
}

impl Mat2 {
    pub fn determinant(&self) -> Expr {
        self.0[0][0] * self.0[1][1] - self.0[0][1] * self.0[1][0]
    }
    pub fn inverse(&self) -> Mat2 {
        let d = self.determinant();
        let m = &self.0;
        Matrix([[m[1][1] / d, -(m[0][1] / d)], [-(m[1][0] / d), m[0][0] / d]])
    }
}

impl Mat3 {
    pub fn determinant(&self) -> Expr {
        let m = &self.0;
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    }
    pub fn inverse(&self) -> Mat3 {
        let m = &self.0;
        let d = self.determinant();
        let cof = |i: usize, j: usize| {
            let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
            let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
            m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
        };
        Matrix(std::array::from_fn(|i| std::array::from_fn(|j| cof(j, i) / d)))
    }
}

impl<const N: usize> Carry for Vector<N> {
    fn exprs(&self) -> Vec<Expr> {
        self.0.to_vec()
    }
    fn rebuild(values: &mut std::vec::IntoIter<Expr>) -> Self {
        Vector(std::array::from_fn(|_| Expr::rebuild(values)))
    }
}

impl<const R: usize, const C: usize> Carry for Matrix<R, C> {
    fn exprs(&self) -> Vec<Expr> {
        self.0.iter().flat_map(|r| r.iter().cloned()).collect()
    }
    fn rebuild(values: &mut std::vec::IntoIter<Expr>) -> Self {
        Matrix(std::array::from_fn(|_| std::array::from_fn(|_| Expr::rebuild(values))))
    }
}
