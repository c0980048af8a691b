//! Read-only views of ds ops: typed structs read from an op, returning `None`
//! for any other op or a malformed one (they run before `ds-verify`), and
//! accessors for kernels and functions.

use super::catalogue::{AccessKind, DsOp, KERNEL_ATTR, TASK_OF_ATTR};
use crate::ir::{Block, Op, Type, Value};

/// A `ds.field` declaration, read from its op.
#[derive(Clone, Debug)]
pub struct FieldDecl {
    pub op: Op,
    pub name: String,
    pub elem: Type,
    pub shape: Vec<i64>,
    pub grad: Option<String>,
    /// The field holding this field's tangent (forward mode), if declared.
    pub dual: Option<String>,
    pub layout: Option<String>,
}

impl FieldDecl {
    /// Reads a field declaration; IRDL has already checked the attribute kinds.
    pub fn read(op: Op) -> Option<FieldDecl> {
        (DsOp::of(op) == Some(DsOp::Field)).then_some(())?;
        Some(FieldDecl {
            op,
            name: op.sym_name()?,
            elem: op.attr("element_type")?.as_type()?,
            shape: op.attr("shape")?.as_i64_array()?,
            grad: op.attr("grad").and_then(|a| a.as_symbol()),
            dual: op.attr("dual").and_then(|a| a.as_symbol()),
            layout: op.attr("layout").and_then(|a| a.as_symbol()),
        })
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product::<i64>() as usize
    }
}

/// All field declarations of a module body, in order.
pub fn fields(module_body: Block) -> Vec<FieldDecl> {
    module_body.ops().into_iter().filter_map(FieldDecl::read).collect()
}

/// A layout tree node (`ds.dense`, `ds.pointer`, `ds.bitmasked`, `ds.dynamic`).
#[derive(Clone, Debug)]
pub struct LayoutNode {
    pub op: Op,
    pub kind: DsOp,
    pub name: String,
    /// None when the attribute is missing or not an `array<i64>`.
    pub shape: Option<Vec<i64>>,
    pub parent: Option<String>,
}

impl LayoutNode {
    pub fn read(op: Op) -> Option<LayoutNode> {
        let kind = DsOp::of(op).filter(|k| k.is_layout_node())?;
        Some(LayoutNode {
            op,
            kind,
            name: op.sym_name().unwrap_or_default(),
            shape: op.attr("shape").and_then(|a| a.as_i64_array()),
            parent: op.attr("parent").and_then(|a| a.as_symbol()),
        })
    }
}

/// A field access op: load, store or an atomic update.
#[derive(Clone, Debug)]
pub struct Access {
    pub op: Op,
    pub kind: AccessKind,
    pub field: String,
    /// The stored or accumulated value (none for loads).
    pub value: Option<Value>,
    pub indices: Vec<Value>,
}

impl Access {
    pub fn read(op: Op) -> Option<Access> {
        let kind = DsOp::of(op).and_then(AccessKind::of)?;
        let field = op.attr("field")?.as_symbol()?;
        let operands = op.operands();
        let (value, indices) = match kind {
            AccessKind::Load | AccessKind::Activate | AccessKind::Deactivate | AccessKind::IsActive | AccessKind::Length => {
                (None, operands)
            }
            AccessKind::Store
            | AccessKind::AtomicAdd
            | AccessKind::AtomicSub
            | AccessKind::AtomicMin
            | AccessKind::AtomicMax
            | AccessKind::Append => (operands.first().copied(), operands.get(1..).unwrap_or_default().to_vec()),
        };
        Some(Access { op, kind, field, value, indices })
    }
    /// The optional `node` attribute of `ds.activate`, `ds.deactivate` and
    /// `ds.is_active`: the sparse layout node whose cell is meant.
    pub fn node(&self) -> Option<String> {
        self.op.attr("node").and_then(|a| a.as_symbol())
    }
    /// The element type moved by this access (`i1` for `ds.is_active`,
    /// none for activate and deactivate: their op has no result).
    pub fn elem_type(&self) -> Type {
        match self.value {
            Some(v) => v.ty(),
            None => self.op.result(0).ty(),
        }
    }
}

/// A `ds.parallel_for`, read from its op.
#[derive(Clone, Copy, Debug)]
pub struct ParallelFor {
    pub op: Op,
    pub lower: Value,
    pub upper: Value,
    pub body: Block,
}

impl ParallelFor {
    pub fn read(op: Op) -> Option<ParallelFor> {
        (DsOp::of(op) == Some(DsOp::ParallelFor) && op.num_operands() == 2).then_some(())?;
        let body = op.region(0).first_block()?;
        Some(ParallelFor { op, lower: op.operand(0), upper: op.operand(1), body })
    }
    pub fn index(&self) -> Value {
        self.body.arg(0)
    }
}

pub fn is_kernel(op: Op) -> bool {
    op.name() == "func.func" && op.attr(KERNEL_ATTR).is_some()
}

/// A kernel, or a task function the lowering made from one: the functions in
/// which field accesses may appear.
pub fn is_kernel_or_task(op: Op) -> bool {
    op.name() == "func.func" && (op.attr(KERNEL_ATTR).is_some() || op.attr(TASK_OF_ATTR).is_some())
}

/// The kernels of a module, in order.
pub fn kernels(module_body: Block) -> Vec<Op> {
    module_body.ops().into_iter().filter(|o| is_kernel(*o)).collect()
}

/// The body of a `builtin.module`.
pub fn module_body(module: Op) -> Block {
    module.region(0).first_block().expect("a module has a body")
}

/// The entry block of a `func.func`.
pub fn func_body(func: Op) -> Block {
    func.region(0).first_block().expect("function with a body")
}

