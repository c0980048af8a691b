//! Field layouts, as in Taichi: a vector or matrix field stored interleaved
//! (AoS, the default) or by component (SoA), and several fields placed under
//! one dense node, interleaved per cell.
//!
//! ```ignore
//! let x: GradField<[f32; 2], 1> = pb.field_with_grad("x", [n]);
//! let v: GradField<[f32; 2], 1> = pb.field_with_grad("v", [n]);
//! let m: Field<f32, 1> = pb.field("m", [n]);
//! // ti.root.dense(ti.i, n).place(x, v): each cell holds x0 x1 v0 v1
//! pb.root().dense([n]).place((&x, &v));
//! // ti.field(..., layout=ti.Layout.SOA): all of m's cells, one component after another
//! pb.layout(&m, Layout::Soa);
//! ```
//!
//! Sparse layouts (Taichi's `ti.root.pointer(ti.ij, 8).dense(ti.ij, 16)`),
//! nested in any order and depth (a list only as the leaf):
//!
//! ```ignore
//! let u: GradField<f32, 2> = pb.field_with_grad("u", [128, 128]);
//! // 8x8 pointer cells, each a block of 16x16 cells allocated when first written
//! pb.root().pointer([8, 8]).dense([16, 16]).place(&u);
//! // or: one activity bit per cell over dense storage
//! // pb.root().bitmasked([128, 128]).place(&u);
//! // or three levels: pointers of pointers of dense 8x8 blocks
//! // pb.root().pointer([4, 4]).pointer([4, 4]).dense([8, 8]).place(&u);
//! ```
//!
//! Kernels read inactive cells as 0, writes activate them, `activate`,
//! `deactivate` and `is_active` act on cells, and `for (i, j) in u.active()`
//! runs over the active cells. The adjoint (`u_grad`) shares the tree: its
//! gradients live on the active cells, and gradient kernels never activate.
//! A pointer's pool holds a block per pointer cell unless
//! [`Outer::capacity`] (right after the pointer) says fewer.
//!
//! The adjoints of fields placed under dense nodes (`x_grad`, `v_grad`) are placed the same way
//! under a node of their own, so they have the same strides. Fields placed
//! together have the node's shape as their index shape and elements of one
//! size (f32 and i32, or f64), are placed once, and are placed in the order
//! they were declared: otherwise `build` fails with [`Error::Layout`] naming
//! them. Kernels and host code are the same for every layout: only the
//! memory order changes (`ds_dialects::ops::layout` computes it).

use crate::field::{ElementKind, Field, FieldDecl, GradField};
use ds_dialects::ops::DsOp;
use crate::program::{DeclarationError, NodeEntry, ProgramBuilder};
use ds_runtime::ElemType;
#[cfg(doc)]
use ds_runtime::Error;
use std::sync::Arc;

/// One node of a sparse chain for the builder: kind, cells, pool capacity, chunk size.
type NodeSpec = (DsOp, Vec<usize>, Option<usize>, Option<usize>);

/// How a layout node stores its cells' components (Taichi's `ti.Layout`):
/// `Layout::Aos` interleaved per cell, `Layout::Soa` by component.
pub use ds_dialects::ops::Order as Layout;

/// The root of the layout tree (`ti.root`); see the [module doc](self).
pub struct Root<'a> {
    pb: &'a mut ProgramBuilder,
}

/// A dense node of cells `[usize; D]` (`ti.root.dense(...)`), not yet holding fields.
pub struct Dense<'a, const D: usize> {
    pb: &'a mut ProgramBuilder,
    shape: [usize; D],
    order: Layout,
}

/// Fields that can be placed under a node of `D`-dimensional cells: a
/// `&Field`, a `&GradField`, or a tuple of them.
pub trait Placeable<const D: usize> {
    #[doc(hidden)]
    fn decls(&self, out: &mut Vec<Arc<FieldDecl>>);
}

impl<V: ElementKind, const D: usize> Placeable<D> for &Field<V, D> {
    fn decls(&self, out: &mut Vec<Arc<FieldDecl>>) {
        out.push(self.decl.clone())
    }
}

impl<V: ElementKind, const D: usize> Placeable<D> for &GradField<V, D> {
    fn decls(&self, out: &mut Vec<Arc<FieldDecl>>) {
        out.push(self.decl.clone())
    }
}

macro_rules! placeable_tuple {
    ($($p:ident),+) => {
        impl<const D: usize, $($p: Placeable<D>),+> Placeable<D> for ($($p,)+) {
            #[allow(non_snake_case)]
            fn decls(&self, out: &mut Vec<Arc<FieldDecl>>) {
                let ($($p,)+) = self;
                $($p.decls(out);)+
            }
        }
    };
}
placeable_tuple!(A);
placeable_tuple!(A, B);
placeable_tuple!(A, B, C);
placeable_tuple!(A, B, C, E);
placeable_tuple!(A, B, C, E, F);
placeable_tuple!(A, B, C, E, F, G);

impl<'a> Root<'a> {
    /// A dense node of cells `shape`, storing them interleaved (AoS) unless
    /// [`Dense::layout`] says otherwise.
    pub fn dense<const D: usize>(self, shape: [usize; D]) -> Dense<'a, D> {
        Dense { pb: self.pb, shape, order: Layout::Aos }
    }

    /// A pointer node of `shape` cells (Taichi's `ti.root.pointer`): each
    /// cell's block is allocated from a pool when it is first written, and
    /// returned when deactivated. Give it blocks with [`Outer::dense`],
    /// [`Outer::bitmasked`], [`Outer::pointer`] (nested as deep as needed) or
    /// [`Outer::dynamic`], or place fields in it directly.
    pub fn pointer<const D: usize>(self, shape: [usize; D]) -> Outer<'a, D> {
        Outer { pb: self.pb, levels: vec![Spec::new(DsOp::Pointer, shape)] }
    }

    /// A bitmasked node of `shape` cells (Taichi's `ti.root.bitmasked`):
    /// dense storage with one activity bit per cell.
    pub fn bitmasked<const D: usize>(self, shape: [usize; D]) -> Outer<'a, D> {
        Outer { pb: self.pb, levels: vec![Spec::new(DsOp::Bitmasked, shape)] }
    }

    /// One list of up to `shape` cells (Taichi's `ti.root.dynamic`): a dense
    /// node of one cell holding it.
    pub fn dynamic<const D: usize>(self, shape: [usize; D]) -> Leaf<'a, D> {
        Outer { pb: self.pb, levels: vec![Spec::new(DsOp::Dense, [1; D])] }.dynamic(shape)
    }
}

/// A sparse tree's chain of nodes from the root (`ti.root.pointer(...)`,
/// `.pointer(...).pointer(...)`, `.dense(...).pointer(...)`, ...), whose last
/// node is where fields are placed. Fields placed under a sparse tree have
/// the index shape of the tree (the nodes' extents multiplied, axis by
/// axis); reading an inactive cell gives 0, writing activates it down the
/// chain (allocating each pointer's block), and their adjoints share the
/// tree (gradients live on the active cells).
pub struct Outer<'a, const D: usize> {
    pb: &'a mut ProgramBuilder,
    /// Outermost first.
    levels: Vec<Spec<D>>,
}

/// One node of a chain: kind, cells, pool capacity, chunk size (lists).
struct Spec<const D: usize> {
    kind: DsOp,
    shape: [usize; D],
    capacity: Option<usize>,
    chunk: Option<usize>,
}

impl<const D: usize> Spec<D> {
    fn new(kind: DsOp, shape: [usize; D]) -> Self {
        Spec { kind, shape, capacity: None, chunk: None }
    }
}

impl<'a, const D: usize> Outer<'a, D> {
    /// The last node's pool, in blocks, when it is a pointer (default: one
    /// per pointer cell, so that every block can be active at once). A
    /// write needing a block of an exhausted pool fails its launch with
    /// `Error::PoolExhausted`; a capacity on another kind of node fails
    /// `build` with a compile error at the field's declaration.
    pub fn capacity(mut self, blocks: usize) -> Self {
        if let Some(last) = self.levels.last_mut() {
            last.capacity = Some(blocks);
        }
        self
    }

    fn then(mut self, kind: DsOp, shape: [usize; D]) -> Self {
        self.levels.push(Spec::new(kind, shape));
        self
    }

    /// Dense blocks of `shape` cells in each cell (`.pointer(..).dense(..)`).
    pub fn dense(self, shape: [usize; D]) -> Outer<'a, D> {
        self.then(DsOp::Dense, shape)
    }

    /// Bitmasked cells of `shape` in each cell (`.pointer(..).bitmasked(..)`).
    pub fn bitmasked(self, shape: [usize; D]) -> Outer<'a, D> {
        self.then(DsOp::Bitmasked, shape)
    }

    /// Pointers of `shape` cells in each cell (`.pointer(..).pointer(..)`):
    /// each with its own pool of blocks.
    pub fn pointer(self, shape: [usize; D]) -> Outer<'a, D> {
        self.then(DsOp::Pointer, shape)
    }

    /// A list of up to `shape` cells in each cell (Taichi's `dynamic`): its
    /// cells `[0, length)` are active, `append` adds one, a write beyond the
    /// end extends it. A list is a leaf: only `place` follows.
    pub fn dynamic(self, shape: [usize; D]) -> Leaf<'a, D> {
        Leaf { outer: self.then(DsOp::Dynamic, shape) }
    }

    /// Places `fields` (and their adjoints) in the last node's cells.
    #[track_caller]
    pub fn place(self, fields: impl Placeable<D>) {
        let mut decls = Vec::new();
        fields.decls(&mut decls);
        let levels: Vec<NodeSpec> = self.levels.iter().map(|l| (l.kind, l.shape.to_vec(), l.capacity, l.chunk)).collect();
        self.pb.place_sparse(&levels, &decls);
    }
}

/// A sparse tree ending in a list (a dynamic node): only fields go under it.
pub struct Leaf<'a, const D: usize> {
    outer: Outer<'a, D>,
}

impl<const D: usize> Leaf<'_, D> {
    /// Lists growing in chunks of `cells` (Taichi's `chunk_size`): a chunk
    /// is taken from a pool when a list first reaches it, up to the list's
    /// capacity; `cells` must divide it.
    pub fn chunk(mut self, cells: usize) -> Self {
        if let Some(last) = self.outer.levels.last_mut() {
            last.chunk = Some(cells);
        }
        self
    }

    /// The pool of a chunked list node, in chunks (default: every chunk of
    /// every list). A write or append needing a chunk of an empty pool
    /// fails its launch with `Error::PoolExhausted`.
    pub fn capacity(mut self, chunks: usize) -> Self {
        self.outer = self.outer.capacity(chunks);
        self
    }

    /// Places `fields` (and their adjoints) in the list's cells.
    #[track_caller]
    pub fn place(self, fields: impl Placeable<D>) {
        self.outer.place(fields)
    }
}

impl<'a, const D: usize> Dense<'a, D> {
    fn chain(self) -> Outer<'a, D> {
        Outer { pb: self.pb, levels: vec![Spec::new(DsOp::Dense, self.shape)] }
    }

    /// Bitmasked cells of `shape` in each dense cell (`.dense(..).bitmasked(..)`).
    pub fn bitmasked(self, shape: [usize; D]) -> Outer<'a, D> {
        self.chain().bitmasked(shape)
    }

    /// Pointers of `shape` cells in each dense cell (`.dense(..).pointer(..).dense(..)`).
    pub fn pointer(self, shape: [usize; D]) -> Outer<'a, D> {
        self.chain().pointer(shape)
    }

    /// A list of up to `shape` cells in each dense cell (`.dense(..).dynamic(..)`),
    /// e.g. `dense([n, 1]).dynamic([1, 64])`: a list of 64 along j for each i.
    pub fn dynamic(self, shape: [usize; D]) -> Leaf<'a, D> {
        self.chain().dynamic(shape)
    }
}

impl<const D: usize> Dense<'_, D> {
    /// How the node stores its cells' components.
    pub fn layout(mut self, order: Layout) -> Self {
        self.order = order;
        self
    }

    /// Places `fields` under this node (`.place(x, v)`), in the order given.
    #[track_caller]
    pub fn place(self, fields: impl Placeable<D>) {
        let mut decls = Vec::new();
        fields.decls(&mut decls);
        self.pb.place(&self.shape, self.order, &decls);
    }
}

impl ProgramBuilder {
    /// The root of the layout tree: `pb.root().dense([n]).place((&x, &v))`.
    pub fn root(&mut self) -> Root<'_> {
        Root { pb: self }
    }

    /// Stores `field` (and its adjoint) in `order`: a dense node of its own
    /// shape holding it alone. `pb.layout(&x, Layout::Soa)` is Taichi's
    /// `ti.Vector.field(..., layout=ti.Layout.SOA)`.
    #[track_caller]
    pub fn layout<const D: usize>(&mut self, field: impl Placeable<D>, order: Layout) {
        let mut decls = Vec::new();
        field.decls(&mut decls);
        if let Some(first) = decls.first() {
            let shape = first.shape.clone();
            self.place(&shape, order, &decls);
        }
    }

    /// Places `decls` under a new dense node of cells `shape`, and their
    /// adjoints under another; the first rule they break is kept for `build`.
    #[track_caller]
    fn place(&mut self, shape: &[usize], order: Layout, decls: &[Arc<FieldDecl>]) {
        let names: Vec<String> = decls.iter().map(|d| d.name.clone()).collect();
        if let Err(reason) = self.check_placement(shape, decls) {
            self.mistake(Some(DeclarationError::Layout { fields: names, reason }));
            return;
        }
        let members: Vec<usize> = decls.iter().map(|d| d.position).collect();
        let grads: Vec<usize> = members
            .iter()
            .filter_map(|&i| self.fields[i].grad.clone())
            .filter_map(|g| self.fields.iter().position(|f| f.name == g))
            .collect();
        for group in [members, grads] {
            let Some(&first) = group.first() else { continue };
            let name = self.fresh_name(&format!("{}_cells", self.fields[first].name));
            for &i in &group {
                self.fields[i].layout = Some(name.clone());
            }
            let at = std::panic::Location::caller();
            self.nodes.push(NodeEntry { name, kind: DsOp::Dense, shape: shape.to_vec(), order, parent: None, capacity: None, chunk: None, at });
        }
    }

    /// Places `decls` and their adjoints on the leaf of a new sparse tree of
    /// `levels` (outermost first); the first rule they break is kept for `build`.
    #[track_caller]
    fn place_sparse(&mut self, levels: &[NodeSpec], decls: &[Arc<FieldDecl>]) {
        let names: Vec<String> = decls.iter().map(|d| d.name.clone()).collect();
        let rank = levels[0].1.len();
        let cells: Vec<usize> = (0..rank).map(|d| levels.iter().map(|(_, s, _, _)| s[d]).product()).collect();
        if let Err(reason) = self.check_placement(&cells, decls) {
            self.mistake(Some(DeclarationError::Layout { fields: names, reason }));
            return;
        }
        let Some(first) = decls.first().map(|d| self.fields[d.position].name.clone()) else { return };
        let at = std::panic::Location::caller();
        let mut parent: Option<String> = None;
        for (k, (kind, shape, capacity, chunk)) in levels.iter().enumerate() {
            let suffix = if k + 1 == levels.len() { "cells" } else { "blocks" };
            let name = self.fresh_name(&format!("{first}_{suffix}"));
            let (capacity, chunk) = (*capacity, *chunk);
            let node = NodeEntry { name: name.clone(), kind: *kind, shape: shape.clone(), order: Layout::Aos, parent: parent.clone(), capacity, chunk, at };
            self.nodes.push(node);
            parent = Some(name);
        }
        let leaf = parent.expect("a tree has a level");
        // The adjoints share the tree: gradients live on the primal's active cells.
        let mut members: Vec<usize> = decls.iter().map(|d| d.position).collect();
        let grads: Vec<usize> = members
            .iter()
            .filter_map(|&i| self.fields[i].grad.clone())
            .filter_map(|g| self.fields.iter().position(|f| f.name == g))
            .collect();
        members.extend(grads);
        for i in members {
            self.fields[i].layout = Some(leaf.clone());
        }
    }

    /// Why `decls` cannot be placed together under cells `shape`, if they cannot.
    fn check_placement(&self, shape: &[usize], decls: &[Arc<FieldDecl>]) -> Result<(), String> {
        let mut last: Option<&FieldDecl> = None;
        for d in decls {
            let entry = self.fields.get(d.position).filter(|e| e.name == d.name);
            let Some(entry) = entry else { return Err(format!("@{} is not a field of this program builder", d.name)) };
            if entry.layout.is_some() {
                return Err(format!("@{} is placed twice", d.name));
            }
            if d.shape != shape {
                return Err(format!("@{} has cells {:?}, the node {shape:?}", d.name, d.shape));
            }
            if let Some(prev) = last {
                if d.position <= prev.position {
                    return Err(format!(
                        "place them in the order they were declared (@{} was declared before @{})",
                        d.name, prev.name
                    ));
                }
                let size = |f: &FieldDecl| ElemType::parse(f.ty.mlir()).map(ElemType::size);
                if size(d) != size(prev) {
                    return Err(format!(
                        "their elements differ in size (@{} holds {}, @{} {}); place fields of one element size together",
                        prev.name,
                        prev.ty.mlir(),
                        d.name,
                        d.ty.mlir()
                    ));
                }
            }
            last = Some(d);
        }
        Ok(())
    }

    /// `base`, or `base` with a number, unused by fields and nodes.
    fn fresh_name(&self, base: &str) -> String {
        let taken = |n: &str| self.fields.iter().any(|f| f.name == n) || self.nodes.iter().any(|x| x.name == n);
        (0..).map(|k| if k == 0 { base.to_string() } else { format!("{base}{k}") }).find(|n| !taken(n)).expect("a free name")
    }
}
