//! Typed field handles, used in kernels and on the host.
//!
//! A [`Field<V, D>`] holds elements of type `V` at each index of a
//! `D`-dimensional shape: `V` is a scalar (`f32`, `f64`, `i32`), a vector
//! `[T; N]` or a matrix `[[T; C]; R]` ([`ScalarField`], [`VectorField`],
//! [`MatrixField`] name them). A [`GradField`] is a field declared with a
//! gradient: it derefs to its [`Field`] and adds [`GradField::grad`], the
//! adjoint field; a field declared without one has no `.grad()` at all.
//!
//! Layout: a field of `N`-vectors with shape `[a, b]` is the ds field of shape
//! `[a, b, N]`, and a field of `R` x `C` matrices the ds field `[a, b, R, C]`
//! (components innermost, matrices row-major); the adjoint of field `x` is the
//! ds field `x_grad`, with the same layout. That is the index order of host
//! access; the memory order is interleaved unless the field is stored by
//! component or placed with others ([`crate::layout`]).
//!
//! In a kernel, `x[(i, j)]` loads an element (a scalar [`Expr`], [`Vector`]
//! or [`Matrix`]), `x[(i, j)] = v` stores, `x[(i, j)] += v` / `-= v` add
//! atomically. On the host, `x.get(&p, [i, j])`, `x.set(&mut p, [i, j], v)`,
//! `x.to_vec(&p)`, `x.copy_from(&mut p, &values)`, `x.fill(&mut p, v)` work on
//! any [`Backend`] (a CPU `Program` or a `CudaProgram`), with `V` as the value.

use crate::builder::{Carry, Expr, IntoIndex, Ty, constant, emit_load, emit_update, error, known_index};
use crate::value::{Matrix, Vector};
use ds_dialects::ops::AccessKind;
use ds_runtime::{Backend, Element, Error, SparseStats};
use crate::program::Param;
use std::marker::PhantomData;
use std::sync::Arc;

/// The scalar types of fields; each is also a kernel parameter type
/// ([`Param`], whose `TY` is the kernel type), so a kernel generic over
/// `T: Scalar` takes `T` parameters and writes `T::TY`.
pub trait Scalar: Element + Param {}
impl Scalar for f32 {}
impl Scalar for f64 {}
impl Scalar for i32 {}

/// What one element of a field is, on the host (`Self`) and in kernels
/// ([`ElementKind::Value`]).
pub trait ElementKind: Copy + 'static {
    type Scalar: Scalar;
    /// The element as a kernel value.
    type Value: Carry;
    /// The component dimensions (`[]`, `[N]` or `[R, C]`).
    const COMPONENTS: &'static [usize];
    /// The element's scalars, row-major.
    fn scalars(&self, out: &mut Vec<Self::Scalar>);
    /// The element from `COMPONENTS.product()` scalars.
    fn from_scalars(scalars: &[Self::Scalar]) -> Self;
}

impl<T: Scalar> ElementKind for T {
    type Scalar = T;
    type Value = Expr;
    const COMPONENTS: &'static [usize] = &[];
    fn scalars(&self, out: &mut Vec<T>) {
        out.push(*self)
    }
    fn from_scalars(s: &[T]) -> T {
        s[0]
    }
}

impl<T: Scalar, const N: usize> ElementKind for [T; N] {
    type Scalar = T;
    type Value = Vector<N>;
    const COMPONENTS: &'static [usize] = &[N];
    fn scalars(&self, out: &mut Vec<T>) {
        out.extend_from_slice(self)
    }
    fn from_scalars(s: &[T]) -> [T; N] {
        std::array::from_fn(|i| s[i])
    }
}

impl<T: Scalar, const R: usize, const C: usize> ElementKind for [[T; C]; R] {
    type Scalar = T;
    type Value = Matrix<R, C>;
    const COMPONENTS: &'static [usize] = &[R, C];
    fn scalars(&self, out: &mut Vec<T>) {
        self.iter().for_each(|row| out.extend_from_slice(row))
    }
    fn from_scalars(s: &[T]) -> [[T; C]; R] {
        std::array::from_fn(|i| std::array::from_fn(|j| s[i * C + j]))
    }
}

/// A field's declaration, shared by its handles.
#[derive(Clone, Debug)]
#[doc(hidden)]
pub struct FieldDecl {
    pub name: String,
    pub ty: Ty,
    /// The index shape (without component dimensions).
    pub shape: Vec<usize>,
    pub components: &'static [usize],
    /// The position of the ds field in the program's fields.
    pub position: usize,
    /// For a dual field's handle: the field it is the dual of.
    pub dual_of: Option<String>,
}

impl FieldDecl {
    /// The ds field's shape: the index shape, then the component dimensions.
    pub fn ds_shape(&self) -> Vec<usize> {
        [&self.shape[..], self.components].concat()
    }

    /// Scalars per element (a handful: vectors and matrices are small).
    fn scalars_per_element(&self) -> usize {
        self.components.iter().product()
    }

    /// The scalar indices of the element at a kernel-time index.
    fn component_indices(&self, index: &[Expr]) -> Vec<Vec<Expr>> {
        let mut all = vec![index.to_vec()];
        for &n in self.components {
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

    fn check_rank(&self, n: usize) -> bool {
        if n != self.shape.len() {
            error(format!("field {} takes {} indices, got {n}", self.name, self.shape.len()));
            return false;
        }
        true
    }

    fn load_element(&self, index: &[Expr]) -> Vec<Expr> {
        self.check_rank(index.len());
        self.component_indices(index).iter().map(|i| emit_load(&self.name, self.ty, i)).collect()
    }

    fn update_element(&self, kind: AccessKind, index: &[Expr], values: &[Expr]) {
        self.check_rank(index.len());
        for (i, v) in self.component_indices(index).iter().zip(values) {
            emit_update(kind, &self.name, self.ty, i, v);
        }
    }

    /// The program's field for this declaration: at its position in programs
    /// built from its builder, else the field of the same name (a module
    /// written by hand); either way checked to have its shape and type.
    fn position_in<B: Backend>(&self, p: &B) -> Result<usize, Error> {
        let fields = p.field_infos();
        let matches = |i: &usize| {
            let info = &fields[*i];
            info.name == self.name && info.shape.iter().eq(self.shape.iter().chain(self.components)) && info.elem.name() == self.ty.mlir()
        };
        Some(self.position)
            .filter(|i| *i < fields.len())
            .filter(matches)
            .or_else(|| fields.iter().position(|f| f.name == self.name).filter(matches))
            .ok_or_else(|| match &self.dual_of {
                Some(primal) => Error::NoDual { field: primal.clone() },
                None => Error::ForeignField { field: self.name.clone(), shape: self.shape.clone() },
            })
    }

    /// Where the element at a host index starts, in scalars.
    fn host_offset(&self, index: &[usize]) -> Result<usize, Error> {
        let bad = || Error::HostIndex { field: self.name.clone(), index: index.to_vec(), shape: self.shape.clone() };
        let mut offset = 0;
        for (&i, &n) in index.iter().zip(&self.shape) {
            if i >= n {
                return Err(bad());
            }
            offset = offset * n + i;
        }
        Ok(offset * self.scalars_per_element())
    }
}

/// A field of elements `V` over a `D`-dimensional index (see the module doc).
pub struct Field<V: ElementKind, const D: usize> {
    pub(crate) decl: Arc<FieldDecl>,
    element: PhantomData<fn() -> V>,
}

impl<V: ElementKind, const D: usize> Clone for Field<V, D> {
    fn clone(&self) -> Self {
        Field { decl: self.decl.clone(), element: PhantomData }
    }
}

impl<V: ElementKind, const D: usize> std::fmt::Debug for Field<V, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Field(@{} {:?} of {:?})", self.decl.name, self.decl.shape, V::COMPONENTS)
    }
}

/// A field of scalars `T` (f32, f64, i32) over a `D`-dimensional index.
pub type ScalarField<T, const D: usize> = Field<T, D>;
/// A field of `N`-vectors of `T`.
pub type VectorField<T, const N: usize, const D: usize> = Field<[T; N], D>;
/// A field of `R` x `C` matrices of `T` (row-major).
pub type MatrixField<T, const R: usize, const C: usize, const D: usize> = Field<[[T; C]; R], D>;

impl<V: ElementKind, const D: usize> Field<V, D> {
    pub(crate) fn new(decl: FieldDecl) -> Self {
        Field { decl: Arc::new(decl), element: PhantomData }
    }

    /// The ds field's name (its symbol in the IR).
    pub fn name(&self) -> &str {
        &self.decl.name
    }

    /// The field's dual (its tangent in forward mode, `NAME_dot`), in a
    /// program built with `ProgramBuilder::forward_mode`; accessing it in
    /// another program fails with [`Error::NoDual`].
    pub fn dual(&self) -> Field<V, D> {
        let name = format!("{}{}", self.decl.name, ds_passes::autodiff::forward::DUAL_SUFFIX);
        Field::new(FieldDecl { name, dual_of: Some(self.decl.name.clone()), position: usize::MAX, ..(*self.decl).clone() })
    }

    /// The index shape.
    pub fn shape(&self) -> [usize; D] {
        std::array::from_fn(|d| self.decl.shape[d])
    }

    /// Elements (indices), not scalars; saturating (a field that large
    /// does not fit in memory, and building its program fails).
    pub fn len(&self) -> usize {
        self.decl.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`.
    pub fn get<B: Backend>(&self, p: &B, index: [usize; D]) -> Result<V, Error> {
        let (field, start) = (self.decl.position_in(p)?, self.decl.host_offset(&index)?);
        let mut scalars = vec![V::Scalar::default(); self.decl.scalars_per_element()];
        p.read(field, start, &mut scalars)?;
        Ok(V::from_scalars(&scalars))
    }

    /// Sets the element at `index`.
    pub fn set<B: Backend>(&self, p: &mut B, index: [usize; D], value: V) -> Result<(), Error> {
        let (field, start) = (self.decl.position_in(p)?, self.decl.host_offset(&index)?);
        let mut scalars = Vec::with_capacity(self.decl.scalars_per_element());
        value.scalars(&mut scalars);
        p.write(field, start, &scalars)
    }

    /// Every element, in row-major order of the index.
    pub fn to_vec<B: Backend>(&self, p: &B) -> Result<Vec<V>, Error> {
        let field = self.decl.position_in(p)?;
        let mut scalars = vec![V::Scalar::default(); self.len() * self.decl.scalars_per_element()];
        p.read(field, 0, &mut scalars)?;
        Ok(scalars.chunks(self.decl.scalars_per_element().max(1)).map(V::from_scalars).collect())
    }

    /// Sets every element from `values` (row-major; exactly one per index).
    pub fn copy_from<B: Backend>(&self, p: &mut B, values: &[V]) -> Result<(), Error> {
        let field = self.decl.position_in(p)?;
        if values.len() != self.len() {
            return Err(Error::Length { field: self.decl.name.clone(), expected: self.len(), given: values.len() });
        }
        let mut scalars = Vec::with_capacity(values.len() * self.decl.scalars_per_element());
        values.iter().for_each(|v| v.scalars(&mut scalars));
        p.write(field, 0, &scalars)
    }

    /// Sets every element to `value`.
    pub fn fill<B: Backend>(&self, p: &mut B, value: V) -> Result<(), Error> {
        self.copy_from(p, &vec![value; self.len()])
    }

    /// Sets every element to zero.
    pub fn zero<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        let field = self.decl.position_in(p)?;
        p.zero(field)
    }
}

/// A field declared with a gradient: the field (it derefs to it) and its
/// adjoint, [`GradField::grad`], of the same type.
pub struct GradField<V: ElementKind, const D: usize> {
    field: Field<V, D>,
    grad: Field<V, D>,
}

impl<V: ElementKind, const D: usize> Clone for GradField<V, D> {
    fn clone(&self) -> Self {
        GradField { field: self.field.clone(), grad: self.grad.clone() }
    }
}

impl<V: ElementKind, const D: usize> std::fmt::Debug for GradField<V, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GradField({:?})", self.field)
    }
}

impl<V: ElementKind, const D: usize> GradField<V, D> {
    pub(crate) fn new(field: Field<V, D>, grad: Field<V, D>) -> Self {
        GradField { field, grad }
    }
    /// The adjoint field (dL/dx after a backward pass).
    pub fn grad(&self) -> &Field<V, D> {
        &self.grad
    }
}

impl<V: ElementKind, const D: usize> std::ops::Deref for GradField<V, D> {
    type Target = Field<V, D>;
    fn deref(&self) -> &Field<V, D> {
        &self.field
    }
}

/// Field access from kernels (the macro's rewrite of indexing).
pub trait Access {
    type Value: Carry;
    #[doc(hidden)]
    fn decl(&self) -> &FieldDecl;
}

impl<V: ElementKind, const D: usize> Access for Field<V, D> {
    type Value = V::Value;
    fn decl(&self) -> &FieldDecl {
        &self.decl
    }
}

impl<V: ElementKind, const D: usize> Access for GradField<V, D> {
    type Value = V::Value;
    fn decl(&self) -> &FieldDecl {
        &self.field.decl
    }
}

impl<T: Access> Access for &T {
    type Value = T::Value;
    fn decl(&self) -> &FieldDecl {
        (**self).decl()
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

/// A scalar written into (or added to) every component of a vector element.
impl<T: crate::value::Operand, const N: usize> IntoValue<Vector<N>> for T {
    fn into_value(self, ty: Ty) -> Vector<N> {
        let s = self.to_expr(ty);
        Vector([s; N])
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

/// The indices of `x[idx]` whose `idx` is not written as a tuple: one index,
/// or a tuple of them held in a variable (`let n = (i, j); x[n]`).
pub trait IndexList {
    fn index_list(self) -> Vec<Expr>;
}

impl<I: IntoIndex> IndexList for I {
    fn index_list(self) -> Vec<Expr> {
        vec![self.into_index()]
    }
}

macro_rules! tuple_index_list {
    ($($t:ident),+) => {
        impl<$($t: IntoIndex),+> IndexList for ($($t,)+) {
            #[allow(non_snake_case)]
            fn index_list(self) -> Vec<Expr> {
                let ($($t,)+) = self;
                vec![$($t.into_index()),+]
            }
        }
    };
}
tuple_index_list!(A);
tuple_index_list!(A, B);
tuple_index_list!(A, B, C);
tuple_index_list!(A, B, C, D);

/// The indices of `x[idx]` for an `idx` not written as a tuple ([`IndexList`]).
pub fn indices<L: IndexList>(idx: L) -> Vec<Expr> {
    idx.index_list()
}

/// What `x[idx]` reads in a kernel: an element of a field, a component of
/// a local vector or matrix (the index may be known only at run time), or
/// an element of a Rust array of kernel values (a build-time index).
pub trait Indexed {
    type Value;
    fn load_at(&self, idx: Vec<Expr>) -> Self::Value;
}

impl<F: Access> Indexed for F {
    type Value = F::Value;
    fn load_at(&self, idx: Vec<Expr>) -> F::Value {
        F::Value::rebuild(&mut self.decl().load_element(&idx).into_iter())
    }
}

impl<const N: usize> Indexed for Vector<N> {
    type Value = Expr;
    fn load_at(&self, idx: Vec<Expr>) -> Expr {
        match one_index(&idx, "a vector") {
            Some(i) => component(&self.0, i),
            None => constant(0.0, self.0[0].ty()),
        }
    }
}

impl<const R: usize, const C: usize> Indexed for Matrix<R, C> {
    type Value = Expr;
    fn load_at(&self, idx: Vec<Expr>) -> Expr {
        let [i, j] = idx[..] else {
            error(format!("a matrix takes 2 indices, got {}", idx.len()));
            return constant(0.0, self.0[0][0].ty());
        };
        let row: [Expr; C] = std::array::from_fn(|c| component(&self.0.map(|r| r[c]), i));
        component(&row, j)
    }
}

impl<T: Copy, const N: usize> Indexed for [T; N] {
    type Value = T;
    fn load_at(&self, idx: Vec<Expr>) -> T {
        let known = one_index(&idx, "a Rust array").map(|i| known_index(&i));
        match known {
            Some(Some(k)) if (0..N as i64).contains(&k) => self[k as usize],
            Some(Some(k)) => {
                error(format!("index {k} is out of bounds for a Rust array of {N}"));
                self[0]
            }
            _ => {
                error("a Rust array is indexed by a build-time index (an `unroll` variable or a constant): use a Vector for run-time indices");
                self[0]
            }
        }
    }
}

fn one_index(idx: &[Expr], what: &str) -> Option<Expr> {
    match idx {
        [i] => Some(*i),
        _ => {
            error(format!("{what} takes 1 index, got {}", idx.len()));
            None
        }
    }
}

/// Component `i` of `values`: direct for a build-time index, else a chain of
/// selects (an index out of range reads the last component; bounds are the
/// kernel author's).
fn component<const N: usize>(values: &[Expr; N], i: Expr) -> Expr {
    if let Some(k) = known_index(&i) {
        return match usize::try_from(k).ok().filter(|k| *k < N) {
            Some(k) => values[k],
            None => {
                error(format!("index {k} is out of bounds for {N} components"));
                values[0]
            }
        };
    }
    (0..N - 1).rev().fold(values[N - 1], |rest, k| crate::value::select(crate::value::eq(i, k), values[k], rest))
}

/// What `x[idx] = value` writes in a kernel: an element of a field, or a
/// component of a local vector or matrix (`let mut v`).
pub trait Place {
    type Value;
    fn store_at(self, idx: Vec<Expr>, value: impl IntoValue<Self::Value>);
}

impl<F: Access> Place for &F {
    type Value = F::Value;
    fn store_at(self, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
        update(AccessKind::Store, self, idx, value)
    }
}

impl<const N: usize> Place for &mut Vector<N> {
    type Value = Expr;
    fn store_at(self, idx: Vec<Expr>, value: impl IntoValue<Expr>) {
        let value = value.into_value(self.0[0].ty());
        if let Some(i) = one_index(&idx, "a vector") {
            set_component(&mut self.0, i, value);
        }
    }
}

impl<const R: usize, const C: usize> Place for &mut Matrix<R, C> {
    type Value = Expr;
    fn store_at(self, idx: Vec<Expr>, value: impl IntoValue<Expr>) {
        let value = value.into_value(self.0[0][0].ty());
        let [i, j] = idx[..] else {
            error(format!("a matrix takes 2 indices, got {}", idx.len()));
            return;
        };
        for r in 0..R {
            let mut row = self.0[r];
            set_component(&mut row, j, value);
            let picked = crate::value::eq(i, r);
            for (entry, new) in self.0[r].iter_mut().zip(row) {
                *entry = crate::value::select(picked, new, *entry);
            }
        }
    }
}

/// Sets component `i` of `values` (a select per component for a run-time index).
fn set_component<const N: usize>(values: &mut [Expr; N], i: Expr, value: Expr) {
    match known_index(&i) {
        Some(k) if usize::try_from(k).is_ok_and(|k| k < N) => values[k as usize] = value,
        Some(k) => error(format!("index {k} is out of bounds for {N} components")),
        None => {
            for (k, v) in values.iter_mut().enumerate() {
                *v = crate::value::select(crate::value::eq(i, k), value, *v);
            }
        }
    }
}

/// `x[idx]` in a kernel.
pub fn load<F: Indexed>(x: &F, idx: Vec<Expr>) -> F::Value {
    x.load_at(idx)
}

fn update<F: Access>(kind: AccessKind, field: &F, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
    let decl = field.decl();
    decl.update_element(kind, &idx, &value.into_value(decl.ty).exprs())
}

/// `field[idx] += value` in a kernel (atomic).
pub fn atomic_add<F: Access>(field: &F, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
    update(AccessKind::AtomicAdd, field, idx, value)
}

/// `field[idx] -= value` in a kernel (atomic).
pub fn atomic_sub<F: Access>(field: &F, idx: Vec<Expr>, value: impl IntoValue<F::Value>) {
    update(AccessKind::AtomicSub, field, idx, value)
}

/// The cell index of a field in kernel code: one index (`i`) or a tuple
/// (`(i, j)`), of anything an index can be made from.
pub trait IntoCell {
    fn cell(self) -> Vec<Expr>;
}

impl<I: IntoIndex> IntoCell for I {
    fn cell(self) -> Vec<Expr> {
        vec![self.into_index()]
    }
}

macro_rules! into_cell_tuple {
    ($($t:ident),+) => {
        impl<$($t: IntoIndex),+> IntoCell for ($($t,)+) {
            #[allow(non_snake_case)]
            fn cell(self) -> Vec<Expr> {
                let ($($t,)+) = self;
                vec![$($t.into_index()),+]
            }
        }
    };
}
into_cell_tuple!(A, B);
into_cell_tuple!(A, B, C);
into_cell_tuple!(A, B, C, E);

/// The first element of the cell at `idx` (its first component, for a vector
/// or matrix field: activity belongs to the cell, not its components).
fn cell_element(decl: &FieldDecl, idx: Vec<Expr>) -> Vec<Expr> {
    decl.check_rank(idx.len());
    idx.into_iter().chain(decl.components.iter().map(|_| constant(0.0, Ty::Index))).collect()
}

/// Activates the cell at `idx` of a field under a sparse node (Taichi's
/// `ti.activate`); a dense field is a build error of the program (its cells
/// are always active).
pub fn activate<F: Access>(field: &F, idx: impl IntoCell) {
    let decl = field.decl();
    crate::builder::emit_activity(AccessKind::Activate, &decl.name, &cell_element(decl, idx.cell()));
}

/// Deactivates the cell at `idx` (Taichi's `ti.deactivate`): at the
/// innermost sparse node holding it, zeroing it (a pointer's block goes back
/// to the pool after the launch).
pub fn deactivate<F: Access>(field: &F, idx: impl IntoCell) {
    let decl = field.decl();
    crate::builder::emit_activity(AccessKind::Deactivate, &decl.name, &cell_element(decl, idx.cell()));
}

/// Whether the cell at `idx` is active (Taichi's `ti.is_active`; always for a dense field).
pub fn is_active<F: Access>(field: &F, idx: impl IntoCell) -> Expr {
    let decl = field.decl();
    crate::builder::emit_activity(AccessKind::IsActive, &decl.name, &cell_element(decl, idx.cell()))
        .unwrap_or_else(|| constant(1.0, Ty::Bool))
}

/// Appends `value` to the list (a dynamic node's block) holding the cell at
/// `idx` of a scalar field (Taichi's `ti.append`); the new element's
/// position in its list (i32), or -1 when the list is full (the launch then
/// fails with `Error::ListFull`). Not differentiable: append into fields
/// without gradients.
pub fn append<F: Access<Value = Expr>>(field: &F, idx: impl IntoCell, value: impl IntoValue<Expr>) -> Expr {
    let decl = field.decl();
    let idx = idx.cell();
    decl.check_rank(idx.len());
    crate::builder::emit_append(&decl.name, decl.ty, &idx, &value.into_value(decl.ty))
}

/// The length of the list holding the cell at `idx` (Taichi's `ti.length`; i32).
pub fn length<F: Access>(field: &F, idx: impl IntoCell) -> Expr {
    let decl = field.decl();
    crate::builder::emit_length(&decl.name, &cell_element(decl, idx.cell()))
}

/// `for (i, j) in x.active() { .. }` in a kernel (the macro's rewrite): the
/// kernel's parallel loop over the active cells of `field`, `K` the number
/// of cell indices the loop binds.
pub fn struct_for<F: Access, const K: usize>(field: &F, body: impl FnOnce([Expr; K])) {
    let decl = field.decl();
    if K != decl.shape.len() {
        error(format!("a loop over the cells of {} binds {} indices, got {K}", decl.name, decl.shape.len()));
        return;
    }
    crate::builder::struct_for(&decl.name, K, |idx| {
        let cell: [Expr; K] = std::array::from_fn(|k| idx[k]);
        body(cell)
    });
}

/// What `x.active()` names in a kernel's `for` loop (see [`struct_for`]);
/// outside a `#[kernel]` it is only a marker.
pub struct Active;

impl<V: ElementKind, const D: usize> Field<V, D> {
    /// The active cells, as the iterable of a kernel's outermost loop:
    /// `for (i, j) in x.active() { .. }` runs the body on every active cell
    /// (every cell of a dense field), in parallel over blocks then cells.
    pub fn active(&self) -> Active {
        Active
    }
}

/// Host access to sparse fields, on CPU and CUDA programs alike
/// ([`Backend::sparse_field`]: a CUDA program's host copy of the tree,
/// brought up to date). Indices are cell indices; on a dense field the
/// activity operations are a typed error and every cell is active (a CUDA
/// program answers a dense field with a typed error).
impl<V: ElementKind, const D: usize> Field<V, D> {
    fn runtime_field<'p, B: Backend>(&self, p: &'p B) -> Result<&'p ds_runtime::Field, Error> {
        p.sparse_field(self.decl.position_in(p)?)
    }
    fn runtime_field_mut<'p, B: Backend>(&self, p: &'p mut B) -> Result<&'p mut ds_runtime::Field, Error> {
        let i = self.decl.position_in(p)?;
        p.sparse_field_mut(i)
    }
    /// The element index of a cell's first component.
    fn element_of(&self, cell: [usize; D]) -> Vec<usize> {
        cell.iter().copied().chain(self.decl.components.iter().map(|_| 0)).collect()
    }

    /// Blocks allocated, bytes reserved and in use, active cells (occupancy).
    pub fn sparse_stats<B: Backend>(&self, p: &B) -> Result<SparseStats, Error> {
        self.runtime_field(p)?.sparse_stats()
    }

    /// The active cells, in block order then cell order.
    pub fn active_cells<B: Backend>(&self, p: &B) -> Result<Vec<[usize; D]>, Error> {
        let cells = self.runtime_field(p)?.active_cells();
        Ok(cells.into_iter().map(|c| std::array::from_fn(|d| c[d])).collect())
    }

    /// Activates cell `cell` (allocating its block).
    pub fn activate_cell<B: Backend>(&self, p: &mut B, cell: [usize; D]) -> Result<(), Error> {
        let index = self.element_of(cell);
        self.runtime_field_mut(p)?.activate(&index)
    }

    /// Deactivates cell `cell` at its innermost sparse node (zeroing it).
    pub fn deactivate_cell<B: Backend>(&self, p: &mut B, cell: [usize; D]) -> Result<(), Error> {
        let index = self.element_of(cell);
        self.runtime_field_mut(p)?.deactivate(&index)
    }

    /// Whether cell `cell` is active.
    pub fn is_active_cell<B: Backend>(&self, p: &B, cell: [usize; D]) -> Result<bool, Error> {
        self.runtime_field(p)?.is_active(&self.element_of(cell))
    }

    /// Deactivates every cell of the field's tree (all fields placed there),
    /// returning every block to the pool (Taichi's `deactivate_all`).
    pub fn deactivate_all<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        self.runtime_field_mut(p)?.deactivate_all()
    }

    /// Sets the field from a dense array (row-major, one value per index)
    /// without activating the cells that hold zero: non-zero cells are
    /// written (and so activated), active cells of zeros are zeroed, the
    /// other fields of the tree keep their values (after `deactivate_all`
    /// the active set is exactly the non-zero cells). [`Field::to_vec`] is
    /// the way back (inactive cells read 0).
    pub fn from_dense<B: Backend>(&self, p: &mut B, values: &[V]) -> Result<(), Error> {
        if values.len() != self.len() {
            return Err(Error::Length { field: self.decl.name.clone(), expected: self.len(), given: values.len() });
        }
        let mut scalars = Vec::with_capacity(values.len() * self.decl.scalars_per_element());
        values.iter().for_each(|v| v.scalars(&mut scalars));
        self.runtime_field_mut(p)?.from_dense(&scalars)
    }
}
