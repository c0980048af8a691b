//! Where a field's elements live: the one computation of field strides,
//! shared by `convert-ds-to-scf` (which types each field's memref argument
//! with them) and the runtime (which allocates the buffers and reads and
//! writes elements through them).
//!
//! A field without `layout` is its own buffer, row-major. The fields placed
//! under one `ds.dense` node (`layout = @node`, in declaration order) share
//! the node's buffer. The node's `shape` is the cell shape: each placed field
//! has the shape `cells ++ components` (its components are what one cell
//! holds of it, `[]` for a scalar field). With `order = "aos"` (the default)
//! a cell's components are interleaved, all fields of one cell together;
//! with `order = "soa"` every component of every placed field is its own
//! array over the cells.
//!
//! Example: `@x` (2 components) and `@v` (2 components) under a dense node of
//! 16 cells: AoS stores `x0 x1 v0 v1` per cell, `@x` has strides `[4, 1]` and
//! offset 0, `@v` strides `[4, 1]` and offset 2; SoA stores 16 `x0`, 16 `x1`,
//! 16 `v0`, 16 `v1`: `@x` has strides `[1, 16]`, offset 0, and `@v` strides
//! `[1, 16]`, offset 32.

use super::catalogue::DsOp;
use super::sparse::{self, Hidden, HiddenElem, SparseTree};
use super::views::{FieldDecl, LayoutNode, fields};
use crate::ir::{Block, Op};

/// The attribute of a `ds.dense` node saying how its cells' components are
/// stored: `"aos"` (interleaved per cell, the default) or `"soa"` (by component).
pub const ORDER_ATTR: &str = "order";

/// How a dense node stores the components of its cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Interleaved: all components of one cell together (array of structures).
    #[default]
    Aos,
    /// By component: each component of each placed field is an array over the cells.
    Soa,
}

impl Order {
    pub fn name(self) -> &'static str {
        match self {
            Order::Aos => "aos",
            Order::Soa => "soa",
        }
    }
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "aos" => Some(Order::Aos),
            "soa" => Some(Order::Soa),
            _ => None,
        }
    }
    /// The order of a layout node; an error when `order` is there but not `"aos"` or `"soa"`.
    pub fn of(node: &LayoutNode) -> Result<Order, String> {
        let Some(a) = node.op.attr(ORDER_ATTR) else { return Ok(Order::Aos) };
        a.as_string().as_deref().and_then(Order::parse).ok_or_else(|| {
            format!("layout node @{}: order must be \"aos\" or \"soa\", got {a}", node.name)
        })
    }
}

/// Element `index` of a field is at `offset + sum(index[d] * strides[d])` in
/// its buffer, counted in elements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Strided {
    pub offset: i64,
    pub strides: Vec<i64>,
}

impl Strided {
    /// Row-major and at the start of its buffer: a plain array of `shape`.
    pub fn is_identity(&self, shape: &[i64]) -> bool {
        self.offset == 0 && self.strides == row_major(shape)
    }
}

/// The row-major strides of `shape` (the last dimension has stride 1).
/// Sizes saturate: a shape too large for memory fails to allocate, not here.
pub fn row_major(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(shape[d + 1]);
    }
    strides
}

/// The number of elements of `shape` (saturating).
fn size(shape: &[i64]) -> i64 {
    shape.iter().fold(1i64, |n, &d| n.saturating_mul(d))
}

/// The storage of the fields placed under one dense node of `cells` (the
/// node's shape), in `order`: each field given by its component shape, in
/// placement order. Returns each field's strides and the node's size in elements.
pub fn place(cells: &[i64], components: &[&[i64]], order: Order) -> (Vec<Strided>, i64) {
    let n_cells = size(cells);
    let per_cell = components.iter().fold(0i64, |n, c| n.saturating_add(size(c)));
    let cell_strides = row_major(cells);
    let mut first = 0i64; // the first component of this field, counted over the cell
    let placed = components
        .iter()
        .map(|c| {
            let comp_strides = row_major(c);
            let (cell_scale, comp_scale) = match order {
                Order::Aos => (per_cell, 1),
                Order::Soa => (1, n_cells),
            };
            let strides = cell_strides
                .iter()
                .map(|s| s.saturating_mul(cell_scale))
                .chain(comp_strides.iter().map(|s| s.saturating_mul(comp_scale)))
                .collect();
            let s = Strided { offset: first.saturating_mul(comp_scale), strides };
            first = first.saturating_add(size(c));
            s
        })
        .collect();
    (placed, n_cells.saturating_mul(per_cell))
}

/// One allocation of a program: a dense node's, or a field's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// The dense node's name, or the field's for a field without `layout`.
    pub name: String,
    /// Whether it is a layout node's buffer.
    pub node: bool,
    /// Its size in elements (of `elem_bytes` each).
    pub elements: i64,
    pub elem_bytes: u32,
}

/// Where one field lives: a buffer of [`Storage::buffers`] and its strides there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldStorage {
    pub field: String,
    pub buffer: usize,
    /// For a sparse field, meaningless (row-major over its shape): its
    /// elements are found through its tree ([`FieldStorage::sparse`]).
    pub strided: Strided,
    /// For a field on a sparse tree: the tree, in [`Storage::sparse`]; its
    /// `buffer` is then its data buffer (`<field>$data`).
    pub sparse: Option<usize>,
}

/// The storage of every field of a module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    pub buffers: Vec<Buffer>,
    /// One per declared field, in declaration order.
    pub fields: Vec<FieldStorage>,
    /// The sparse trees ([`sparse`]).
    pub sparse: Vec<SparseTree>,
    /// The hidden buffers of the sparse trees (masks, tables, pools, data),
    /// each with its index in `buffers`: the lowering passes them to the
    /// kernels that use a sparse field, by these names.
    pub hidden: Vec<(Hidden, usize)>,
}

impl Storage {
    pub fn of(&self, field: &str) -> Option<&FieldStorage> {
        self.fields.iter().find(|f| f.field == field)
    }
    /// The sparse tree holding `field`, if any.
    pub fn tree_of(&self, field: &str) -> Option<&SparseTree> {
        self.of(field).and_then(|f| f.sparse).map(|t| &self.sparse[t])
    }
    /// The hidden buffer named `name`.
    pub fn hidden(&self, name: &str) -> Option<&Hidden> {
        self.hidden.iter().find(|(h, _)| h.name == name).map(|(h, _)| h)
    }
}

/// The consistency rules of one layout node and the fields placed under it
/// (`ds-verify` reports them): a valid `order`; each field's shape starts
/// with the node's shape; the fields have elements of one size. Each broken
/// rule is the op to blame and the message.
pub fn check_node(node: &LayoutNode, nodes: &[LayoutNode], members: &[&FieldDecl]) -> Vec<(Op, String)> {
    let mut errors = Vec::new();
    if let Err(e) = Order::of(node) {
        errors.push((node.op, e));
    }
    if node.shape.is_none() || members.is_empty() {
        return errors;
    }
    // The cell shape of a nested node is the product of the extents along its path.
    let cells = match sparse::cell_shape(node, nodes) {
        Ok(c) => c,
        Err(e) => {
            errors.push((node.op, e));
            return errors;
        }
    };
    let cells = &cells;
    for f in members {
        if !f.shape.starts_with(cells) {
            errors.push((
                f.op,
                format!(
                    "field @{}: its shape {:?} must start with the cell shape {cells:?} of its layout node @{}",
                    f.name, f.shape, node.name
                ),
            ));
        }
    }
    if let Some(first) = members.first() {
        for f in &members[1..] {
            if f.elem.width() != first.elem.width() {
                errors.push((
                    f.op,
                    format!(
                        "field @{} ({}) is placed under @{} with @{} ({}): fields placed together must have elements of one size",
                        f.name, f.elem, node.name, first.name, first.elem
                    ),
                ));
            }
        }
    }
    errors
}

/// The fields placed under `node`, in declaration order.
pub fn members<'a>(node: &str, fields: &'a [FieldDecl]) -> Vec<&'a FieldDecl> {
    fields.iter().filter(|f| f.layout.as_deref() == Some(node)).collect()
}

/// The storage of a module's fields: one buffer per dense node holding
/// fields (in node order), then one per field without `layout`, then the
/// hidden buffers of the sparse trees ([`sparse`]). An error (the op to
/// blame, and the message) for a layout the lowering does not handle
/// (nested dense nodes, sparse trees beyond [`sparse::tree_of`]'s), or one
/// that breaks [`check_node`].
pub fn storage(module_body: Block) -> Result<Storage, (Op, String)> {
    let fields = fields(module_body);
    let nodes: Vec<LayoutNode> = module_body.ops().into_iter().filter_map(LayoutNode::read).collect();
    let mut out = Storage { sparse: sparse::trees(&nodes, &fields)?, ..Storage::default() };
    let mut placed: Vec<Option<(usize, Strided)>> = vec![None; fields.len()];
    for node in &nodes {
        let on_node = members(&node.name, &fields);
        let Some(first) = on_node.first() else { continue };
        if let Some(e) = check_node(node, &nodes, &on_node).into_iter().next() {
            return Err(e);
        }
        if sparse::tree_holding(&out.sparse, &first.name).is_some() {
            continue;
        }
        if node.kind != DsOp::Dense {
            let message = format!("field @{}: only dense layouts are lowered so far; @{} is sparse", first.name, node.name);
            return Err((first.op, message));
        }
        if let Some(parent) = &node.parent {
            let message = format!(
                "field @{}: nested layout nodes are not lowered yet (@{} has the parent @{parent})",
                first.name, node.name
            );
            return Err((first.op, message));
        }
        let cells = node.shape.clone().unwrap_or_default();
        let comps: Vec<&[i64]> = on_node.iter().map(|f| &f.shape[cells.len()..]).collect();
        let (strides, elements) = place(&cells, &comps, Order::of(node).unwrap_or_default());
        let buffer = out.buffers.len();
        out.buffers.push(Buffer { name: node.name.clone(), node: true, elements, elem_bytes: elem_bytes(first) });
        for (f, s) in on_node.iter().zip(strides) {
            let i = fields.iter().position(|g| g.name == f.name).expect("a member is a field");
            placed[i] = Some((buffer, s));
        }
    }
    // The hidden buffers of the sparse trees, after the declared fields' own.
    let mut hidden_buffers = Vec::new();
    for tree in &out.sparse {
        for h in tree.hidden() {
            let bytes = match &h.elem {
                HiddenElem::I32 => 4,
                HiddenElem::DataOf(f) => fields.iter().find(|g| &g.name == f).map_or(4, elem_bytes),
            };
            hidden_buffers.push((h, bytes));
        }
    }
    for (f, p) in fields.iter().zip(placed) {
        if let Some(t) = sparse::tree_holding(&out.sparse, &f.name) {
            let tree = out.sparse.iter().position(|o| o.name == t.name);
            // The data buffer's index: after the dense nodes' and own buffers, found below.
            out.fields.push(FieldStorage {
                field: f.name.clone(),
                buffer: usize::MAX,
                strided: Strided { offset: 0, strides: row_major(&f.shape) },
                sparse: tree,
            });
            continue;
        }
        let (buffer, strided) = match p {
            Some(p) => p,
            None if f.layout.is_some() => {
                let message = format!("field @{}: its layout @{} is not a layout node of this module", f.name, f.layout.as_deref().unwrap_or(""));
                return Err((f.op, message));
            }
            None => {
                out.buffers.push(Buffer {
                    name: f.name.clone(),
                    node: false,
                    elements: size(&f.shape),
                    elem_bytes: elem_bytes(f),
                });
                (out.buffers.len() - 1, Strided { offset: 0, strides: row_major(&f.shape) })
            }
        };
        out.fields.push(FieldStorage { field: f.name.clone(), buffer, strided, sparse: None });
    }
    for (h, elem_bytes) in hidden_buffers {
        let buffer = out.buffers.len();
        out.buffers.push(Buffer { name: h.name.clone(), node: false, elements: h.elements, elem_bytes });
        if let HiddenElem::DataOf(f) = &h.elem
            && let Some(fs) = out.fields.iter_mut().find(|s| &s.field == f)
        {
            fs.buffer = buffer;
        }
        out.hidden.push((h, buffer));
    }
    Ok(out)
}

fn elem_bytes(f: &FieldDecl) -> u32 {
    f.elem.width().unwrap_or(32).div_ceil(8)
}
