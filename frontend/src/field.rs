//! Field handles: scalar, vector and matrix fields of any shape, used in
//! kernels and on the host.
//!
//! Layout: a field of `N`-vectors with shape `[a, b]` is the ds field of shape
//! `[a, b, N]`, and a field of `R` x `C` matrices the ds field `[a, b, R, C]`
//! (components innermost, matrices row-major); the adjoint of field `x` is the
//! ds field `x_grad`, with the same layout.
//!
//! In a kernel, `x[(i, j)]` loads an element (a scalar, [`Vector`] or
//! [`Matrix`]), `x[(i, j)] = v` stores, `x[(i, j)] += v` / `-= v` add
//! atomically, and `x.grad()` is the adjoint field. On the host,
//! [`HostField`] reads and writes elements of a built program by index
//! (`x.get::<f32>(&program, &[t, i])` gives `[f32; 2]` for a 2-vector field).

use crate::builder::{Carry, Expr, IntoIndex, Ty, constant, error, line, op};
use crate::value::{Matrix, Vector};
use ds_runtime::{Element, Error, Program};

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
    /// The ds field's shape (for vector and matrix fields, with the component
    /// dimensions last).
    pub shape: Vec<usize>,
    /// How many trailing dimensions of `shape` index components (0, 1 or 2).
    pub component_dims: usize,
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

    /// The shape the user indexes (without component dimensions).
    pub fn element_shape(&self) -> &[usize] {
        &self.shape[..self.shape.len() - self.component_dims]
    }

    /// Scalars per element.
    pub fn components(&self) -> usize {
        self.shape[self.shape.len() - self.component_dims..].iter().product()
    }

    /// The declaration of the adjoint field.
    /// The adjoint field `NAME_grad`. For a field declared without a gradient
    /// it does not exist: host access then reports "no field @NAME_grad", and
    /// a kernel using it fails to compile with the same name and its location.
    fn adjoint(&self) -> FieldDecl {
        FieldDecl { name: format!("{}_grad", self.name), grad: false, ..self.clone() }
    }

    fn check_rank(&self, n: usize) -> bool {
        if n != self.shape.len() {
            error(format!("field {} takes {} indices, got {n}", self.name, self.element_shape().len()));
            return false;
        }
        true
    }

    /// The components of the element at `index` (a kernel-time index with
    /// the component indices appended).
    fn component_indices(&self, index: &[Expr]) -> Vec<Vec<Expr>> {
        let dims = &self.shape[self.shape.len() - self.component_dims..];
        let mut all = vec![index.to_vec()];
        for &n in dims {
            all = all
                .into_iter()
                .flat_map(|prefix| {
                    (0..n).map(move |c| {
                        let mut i = prefix.clone();
                        i.push(constant(c as f64, Ty::Index));
                        i
                    })
                })
                .collect();
        }
        all
    }

    /// The scalars of one element at a kernel-time index.
    fn load_element(&self, index: &[Expr]) -> Vec<Expr> {
        self.component_indices(index).iter().map(|i| self.load(i)).collect()
    }

    fn update_element(&self, kind: &str, index: &[Expr], values: &[Expr]) {
        for (i, v) in self.component_indices(index).iter().zip(values) {
            self.update(kind, i, v);
        }
    }

    /// Where the element at a host index starts in the ds field's storage.
    fn host_offset(&self, field: &ds_runtime::Field, index: &[usize]) -> Result<usize, Error> {
        if index.len() != self.element_shape().len() {
            return Err(Error::Field(format!(
                "field {} has {} dimensions, indexed with {}",
                self.name,
                self.element_shape().len(),
                index.len()
            )));
        }
        let mut full = index.to_vec();
        full.resize(self.shape.len(), 0);
        field.offset(&full)
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

    /// The field's name (its adjoint is `NAME_grad`).
    fn name(&self) -> &str {
        &self.decl().name
    }
    fn load_at(&self, idx: Vec<Expr>) -> Self::Value {
        Self::Value::rebuild(&mut self.decl().load_element(&idx).into_iter())
    }
    fn update_at(&self, kind: &str, idx: Vec<Expr>, value: Self::Value) {
        self.decl().update_element(kind, &idx, &value.exprs())
    }
}

impl<T: Access> Access for &T {
    type Value = T::Value;
    fn decl(&self) -> &FieldDecl {
        (**self).decl()
    }
}

/// A handle made from a declaration, with host access to its elements in a
/// built program; `Host<T>` is an element as Rust data (`T`, `[T; N]`,
/// `[[T; C]; R]`).
pub trait HostField: Access + Sized {
    type Host<T: Element>: Copy;
    fn from_decl(decl: FieldDecl) -> Self;
    /// An element from its scalars (row-major).
    fn pack<T: Element>(scalars: &[T]) -> Self::Host<T>;
    fn unpack<T: Element>(value: &Self::Host<T>) -> Vec<T>;

    /// The adjoint field (panics if the field was declared without one).
    fn grad(&self) -> Self {
        Self::from_decl(self.decl().adjoint())
    }
    /// The element at `index`.
    fn get<T: Element>(&self, p: &Program, index: &[usize]) -> Result<Self::Host<T>, Error> {
        let (d, f) = (self.decl(), p.field(&self.decl().name)?);
        let start = d.host_offset(f, index)?;
        Ok(Self::pack(&f.as_slice::<T>()?[start..start + d.components()]))
    }
    fn set<T: Element>(&self, p: &mut Program, index: &[usize], value: Self::Host<T>) -> Result<(), Error> {
        let d = self.decl();
        let f = p.field_mut(&d.name)?;
        let start = d.host_offset(f, index)?;
        f.as_mut_slice::<T>()?[start..start + d.components()].copy_from_slice(&Self::unpack(&value));
        Ok(())
    }
    /// Every element, in row-major order of the index.
    fn to_vec<T: Element>(&self, p: &Program) -> Result<Vec<Self::Host<T>>, Error> {
        let scalars = p.field(&self.decl().name)?.as_slice::<T>()?;
        Ok(scalars.chunks(self.decl().components()).map(Self::pack).collect())
    }
    fn copy_from<T: Element>(&self, p: &mut Program, values: &[Self::Host<T>]) -> Result<(), Error> {
        let scalars: Vec<T> = values.iter().flat_map(Self::unpack).collect();
        p.field_mut(&self.decl().name)?.copy_from(&scalars)
    }
    fn fill<T: Element>(&self, p: &mut Program, value: Self::Host<T>) -> Result<(), Error> {
        let one = Self::unpack(&value);
        let f = p.field_mut(&self.decl().name)?;
        for chunk in f.as_mut_slice::<T>()?.chunks_mut(one.len()) {
            chunk.copy_from_slice(&one);
        }
        Ok(())
    }
    fn zero(&self, p: &mut Program) -> Result<(), Error> {
        p.field_mut(&self.decl().name)?.zero();
        Ok(())
    }
}

/// A field of scalars.
#[derive(Clone, Debug)]
pub struct ScalarField(pub FieldDecl);

/// A field of `N`-vectors.
#[derive(Clone, Debug)]
pub struct VectorField<const N: usize>(pub FieldDecl);

/// A field of `R` x `C` matrices.
#[derive(Clone, Debug)]
pub struct MatrixField<const R: usize, const C: usize>(pub FieldDecl);

impl Access for ScalarField {
    type Value = Expr;
    fn decl(&self) -> &FieldDecl {
        &self.0
    }
}

impl HostField for ScalarField {
    type Host<T: Element> = T;
    fn from_decl(decl: FieldDecl) -> Self {
        ScalarField(decl)
    }
    fn pack<T: Element>(scalars: &[T]) -> T {
        scalars[0]
    }
    fn unpack<T: Element>(value: &T) -> Vec<T> {
        vec![*value]
    }
}

impl<const N: usize> Access for VectorField<N> {
    type Value = Vector<N>;
    fn decl(&self) -> &FieldDecl {
        &self.0
    }
}

impl<const N: usize> HostField for VectorField<N> {
    type Host<T: Element> = [T; N];
    fn from_decl(decl: FieldDecl) -> Self {
        VectorField(decl)
    }
    fn pack<T: Element>(scalars: &[T]) -> [T; N] {
        std::array::from_fn(|i| scalars[i])
    }
    fn unpack<T: Element>(value: &[T; N]) -> Vec<T> {
        value.to_vec()
    }
}

impl<const R: usize, const C: usize> Access for MatrixField<R, C> {
    type Value = Matrix<R, C>;
    fn decl(&self) -> &FieldDecl {
        &self.0
    }
}

impl<const R: usize, const C: usize> HostField for MatrixField<R, C> {
    type Host<T: Element> = [[T; C]; R];
    fn from_decl(decl: FieldDecl) -> Self {
        MatrixField(decl)
    }
    fn pack<T: Element>(scalars: &[T]) -> [[T; C]; R] {
        std::array::from_fn(|i| std::array::from_fn(|j| scalars[i * C + j]))
    }
    fn unpack<T: Element>(value: &[[T; C]; R]) -> Vec<T> {
        value.iter().flatten().copied().collect()
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

impl<const R: usize, const C: usize> IntoValue<Matrix<R, C>> for Matrix<R, C> {
    fn into_value(self, _: Ty) -> Matrix<R, C> {
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
