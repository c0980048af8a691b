//! Field handles for kernels: scalar fields and vector fields of any shape.
//! A vector field of `N` components with shape `[a, b]` is the ds field of
//! shape `[a, b, N]` (components innermost). In a kernel, `x[(i, j)]` loads,
//! `x[(i, j)] = v` stores, `x[(i, j)] += v` / `-= v` add atomically.

use crate::builder::{Carry, Expr, IntoIndex, Ty, constant, error, line, op};
use crate::value::Vector;

/// A Rust element type of fields.
pub trait Scalar {
    const TY: Ty;
}
impl Scalar for f32 {
    const TY: Ty = Ty::F32;
}
impl Scalar for f64 {
    const TY: Ty = Ty::F64;
}
impl Scalar for i32 {
    const TY: Ty = Ty::I32;
}

/// The declaration every handle refers to.
#[derive(Clone, Debug)]
pub struct FieldDecl {
    pub name: String,
    pub ty: Ty,
    /// The ds field's shape (for vector fields, with the component dimension).
    pub shape: Vec<usize>,
    pub grad: bool,
}

impl FieldDecl {
    /// The `ds.field` declarations (and the adjoint's) as IR text.
    pub fn ir(&self) -> String {
        let shape = if self.shape.is_empty() {
            "array<i64>".to_string()
        } else {
            format!("array<i64: {}>", self.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
        };
        let decl = |name: &str, grad: &str| {
            format!("\"ds.field\"() {{sym_name = \"{name}\", element_type = {}, shape = {shape}{grad}}} : () -> ()\n", self.ty.mlir())
        };
        if self.grad {
            decl(&self.name, &format!(", grad = @{}_grad", self.name)) + &decl(&format!("{}_grad", self.name), "")
        } else {
            decl(&self.name, "")
        }
    }

    fn check_rank(&self, n: usize) -> bool {
        if n != self.shape.len() {
            error(format!("field {} takes {} indices, got {n}", self.name, self.shape.len()));
            return false;
        }
        true
    }

    fn load(&self, idx: &[Expr]) -> Expr {
        self.check_rank(idx.len());
        let names: Vec<String> = idx.iter().map(|e| e.name()).collect();
        let tys = vec!["index"; idx.len()].join(", ");
        op(&format!("\"ds.load\"({}) {{field = @{}}} : ({tys}) -> {}", names.join(", "), self.name, self.ty.mlir()), self.ty)
    }

    fn update(&self, kind: &str, idx: &[Expr], value: &Expr) {
        self.check_rank(idx.len());
        let value = crate::builder::cast(value, self.ty);
        let mut names = vec![value.name()];
        names.extend(idx.iter().map(|e| e.name()));
        let tys: Vec<&str> = std::iter::once(self.ty.mlir()).chain(idx.iter().map(|_| "index")).collect();
        line(&format!("\"ds.{kind}\"({}) {{field = @{}}} : ({}) -> ()", names.join(", "), self.name, tys.join(", ")));
    }
}

/// Field access from kernels (the macro's rewrite of indexing).
pub trait Access {
    type Value: Carry;
    fn decl(&self) -> &FieldDecl;
    fn load_at(&self, idx: Vec<Expr>) -> Self::Value;
    fn update_at(&self, kind: &str, idx: Vec<Expr>, value: Self::Value);
}

impl<T: Access> Access for &T {
    type Value = T::Value;
    fn decl(&self) -> &FieldDecl {
        (**self).decl()
    }
    fn load_at(&self, idx: Vec<Expr>) -> Self::Value {
        (**self).load_at(idx)
    }
    fn update_at(&self, kind: &str, idx: Vec<Expr>, value: Self::Value) {
        (**self).update_at(kind, idx, value)
    }
}

/// A field of scalars.
#[derive(Clone, Debug)]
pub struct ScalarField(pub FieldDecl);

/// A field of `N`-vectors.
#[derive(Clone, Debug)]
pub struct VectorField<const N: usize>(pub FieldDecl);

impl ScalarField {
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// The adjoint field's name.
    pub fn grad_name(&self) -> String {
        format!("{}_grad", self.0.name)
    }
}

impl<const N: usize> VectorField<N> {
    pub fn name(&self) -> &str {
        &self.0.name
    }
    pub fn grad_name(&self) -> String {
        format!("{}_grad", self.0.name)
    }
}

impl Access for ScalarField {
    type Value = Expr;
    fn decl(&self) -> &FieldDecl {
        &self.0
    }
    fn load_at(&self, idx: Vec<Expr>) -> Expr {
        self.0.load(&idx)
    }
    fn update_at(&self, kind: &str, idx: Vec<Expr>, value: Expr) {
        self.0.update(kind, &idx, &value)
    }
}

impl<const N: usize> Access for VectorField<N> {
    type Value = Vector<N>;
    fn decl(&self) -> &FieldDecl {
        &self.0
    }
    fn load_at(&self, idx: Vec<Expr>) -> Vector<N> {
        Vector(std::array::from_fn(|c| {
            let mut i = idx.clone();
            i.push(constant(c as f64, Ty::Index));
            self.0.load(&i)
        }))
    }
    fn update_at(&self, kind: &str, idx: Vec<Expr>, value: Vector<N>) {
        for (c, v) in value.0.iter().enumerate() {
            let mut i = idx.clone();
            i.push(constant(c as f64, Ty::Index));
            self.0.update(kind, &i, v);
        }
    }
}

/// What may be written into a field whose elements are `V`: values, and Rust
/// numbers (constants of the field's type) for scalar fields.
pub trait IntoValue<V> {
    fn into_value(self, ty: Ty) -> V;
}

impl<T: crate::value::Operand> IntoValue<Expr> for T {
    fn into_value(self, ty: Ty) -> Expr {
        self.to_expr(ty)
    }
}

impl<const N: usize> IntoValue<Vector<N>> for Vector<N> {
    fn into_value(self, _: Ty) -> Vector<N> {
        self
    }
}

/// Indices of a field access, each converted to `index`.
pub fn index<I: IntoIndex>(i: I) -> Expr {
    i.into_index()
}

/// `field[idx]` in a kernel.
pub fn load<F: Access>(field: &F, idx: Vec<Expr>) -> F::Value {
    field.load_at(idx)
}

/// `field[idx] = value` in a kernel.
pub fn store<F: Access>(field: &F, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
    field.update_at("store", idx, value.into_value(field.decl().ty))
}

/// `field[idx] += value` in a kernel (atomic).
pub fn atomic_add<F: Access>(field: &F, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
    field.update_at("atomic_add", idx, value.into_value(field.decl().ty))
}

/// `field[idx] -= value` in a kernel (atomic).
pub fn atomic_sub<F: Access>(field: &F, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
    field.update_at("atomic_sub", idx, value.into_value(field.decl().ty))
}
