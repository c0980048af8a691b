//! The catalogue of ds ops: their names (spelled here and nowhere else), typed
//! builders and read-only views. Adding an op: add a variant to [`DsOp`], its IRDL
//! definition in `ds.irdl.mlir`, its entry in `docs/ds-dialect.md`; the compiler
//! then points at every `match` that must handle it (there are no `_ =>` arms).

use crate::ir::{Attr, Block, Cursor, Loc, Op, OpBuilder, Region, Type, Value};

/// Unit attribute marking a `func.func` as a DiffSim kernel.
pub const KERNEL_ATTR: &str = "ds.kernel";
/// On a task function made from a kernel by the lowering: the kernel's name.
pub const TASK_OF_ATTR: &str = "ds.task_of";
/// On a generated grad kernel: the symbol of its primal kernel.
pub const GRAD_OF_ATTR: &str = "ds.grad_of";
/// The terminator of ds loop bodies. IRDL ops cannot be terminators, and this
/// upstream one carries no parent restriction.
pub const BODY_TERMINATOR: &str = "gpu.yield";

/// Every op of the ds dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DsOp {
    Field,
    Dense,
    Pointer,
    Bitmasked,
    Dynamic,
    ParallelFor,
    StructFor,
    Load,
    Store,
    AtomicAdd,
    AtomicSub,
    AtomicMin,
    AtomicMax,
    Assert,
}

impl DsOp {
    pub const ALL: [DsOp; 14] = [
        DsOp::Field,
        DsOp::Dense,
        DsOp::Pointer,
        DsOp::Bitmasked,
        DsOp::Dynamic,
        DsOp::ParallelFor,
        DsOp::StructFor,
        DsOp::Load,
        DsOp::Store,
        DsOp::AtomicAdd,
        DsOp::AtomicSub,
        DsOp::AtomicMin,
        DsOp::AtomicMax,
        DsOp::Assert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DsOp::Field => "ds.field",
            DsOp::Dense => "ds.dense",
            DsOp::Pointer => "ds.pointer",
            DsOp::Bitmasked => "ds.bitmasked",
            DsOp::Dynamic => "ds.dynamic",
            DsOp::ParallelFor => "ds.parallel_for",
            DsOp::StructFor => "ds.struct_for",
            DsOp::Load => "ds.load",
            DsOp::Store => "ds.store",
            DsOp::AtomicAdd => "ds.atomic_add",
            DsOp::AtomicSub => "ds.atomic_sub",
            DsOp::AtomicMin => "ds.atomic_min",
            DsOp::AtomicMax => "ds.atomic_max",
            DsOp::Assert => "ds.assert",
        }
    }

    pub fn of(op: Op) -> Option<DsOp> {
        let name = op.name();
        DsOp::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Layout tree nodes (module level).
    pub fn is_layout_node(self) -> bool {
        match self {
            DsOp::Dense | DsOp::Pointer | DsOp::Bitmasked | DsOp::Dynamic => true,
            DsOp::Field
            | DsOp::ParallelFor
            | DsOp::StructFor
            | DsOp::Load
            | DsOp::Store
            | DsOp::AtomicAdd
            | DsOp::AtomicSub
            | DsOp::AtomicMin
            | DsOp::AtomicMax
            | DsOp::Assert => false,
        }
    }

}

/// The ops that read or write one element of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    Load,
    Store,
    AtomicAdd,
    AtomicSub,
    AtomicMin,
    AtomicMax,
}

impl AccessKind {
    pub fn op(self) -> DsOp {
        match self {
            AccessKind::Load => DsOp::Load,
            AccessKind::Store => DsOp::Store,
            AccessKind::AtomicAdd => DsOp::AtomicAdd,
            AccessKind::AtomicSub => DsOp::AtomicSub,
            AccessKind::AtomicMin => DsOp::AtomicMin,
            AccessKind::AtomicMax => DsOp::AtomicMax,
        }
    }

    pub fn of(op: DsOp) -> Option<AccessKind> {
        match op {
            DsOp::Load => Some(AccessKind::Load),
            DsOp::Store => Some(AccessKind::Store),
            DsOp::AtomicAdd => Some(AccessKind::AtomicAdd),
            DsOp::AtomicSub => Some(AccessKind::AtomicSub),
            DsOp::AtomicMin => Some(AccessKind::AtomicMin),
            DsOp::AtomicMax => Some(AccessKind::AtomicMax),
            DsOp::Field
            | DsOp::Dense
            | DsOp::Pointer
            | DsOp::Bitmasked
            | DsOp::Dynamic
            | DsOp::ParallelFor
            | DsOp::StructFor
            | DsOp::Assert => None,
        }
    }

    pub fn name(self) -> &'static str {
        self.op().name()
    }
}

/// Whether `op` has a side effect on fields or the launch: a write to a field
/// or a run-time check (everything ds but loads, loops and declarations).
pub fn has_side_effect(op: Op) -> bool {
    match DsOp::of(op) {
        Some(DsOp::Assert) => true,
        Some(k) => AccessKind::of(k).is_some_and(|a| a != AccessKind::Load),
        None => false,
    }
}

/// A `ds.field` declaration, read from its op.
#[derive(Clone, Debug)]
pub struct FieldDecl {
    pub op: Op,
    pub name: String,
    pub elem: Type,
    pub shape: Vec<i64>,
    pub grad: Option<String>,
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
            AccessKind::Load => (None, operands),
            _ => (operands.first().copied(), operands.get(1..).unwrap_or_default().to_vec()),
        };
        Some(Access { op, kind, field, value, indices })
    }
    /// The element type moved by this access.
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

/// An index as `base + offset` through `arith.addi`/`arith.subi` with
/// constants: `base` is None for a constant index.
pub fn index_offset(v: Value) -> (Option<Value>, i64) {
    let Some(def) = v.defining_op() else { return (Some(v), 0) };
    let constant = |x: Value| x.defining_op().filter(|d| d.name() == "arith.constant").and_then(|d| d.attr("value")?.as_int());
    match def.name().as_str() {
        "arith.constant" => (None, constant(v).unwrap_or(0)),
        "arith.addi" | "arith.subi" => {
            let sign = if def.name() == "arith.addi" { 1 } else { -1 };
            match (constant(def.operand(0)), constant(def.operand(1))) {
                (_, Some(c)) => {
                    let (b, o) = index_offset(def.operand(0));
                    (b, o + sign * c)
                }
                (Some(c), None) if sign == 1 => {
                    let (b, o) = index_offset(def.operand(1));
                    (b, o + c)
                }
                _ => (Some(v), 0),
            }
        }
        _ => (Some(v), 0),
    }
}

// ---- Builders -------------------------------------------------------------------

/// `ds.field @name : elem[shape]`.
pub fn build_field(at: Cursor, name: &str, elem: Type, shape: &[i64], grad: Option<&str>, loc: Loc) -> Op {
    let ctx = elem.ctx();
    let mut b = OpBuilder::new(DsOp::Field.name(), loc)
        .attr("sym_name", ctx.string_attr(name))
        .attr("element_type", ctx.type_attr(elem))
        .attr("shape", ctx.i64_array_attr(shape));
    if let Some(g) = grad {
        b = b.attr("grad", ctx.symbol_ref(g));
    }
    at.build(b)
}

/// A layout node of `kind` (dense, pointer, bitmasked or dynamic).
pub fn build_layout_node(at: Cursor, kind: DsOp, name: &str, shape: &[i64], parent: Option<&str>, loc: Loc) -> Op {
    assert!(kind.is_layout_node(), "{kind:?} is not a layout node");
    let ctx = loc.ctx();
    let mut b = OpBuilder::new(kind.name(), loc).attr("sym_name", ctx.string_attr(name)).attr("shape", ctx.i64_array_attr(shape));
    if let Some(p) = parent {
        b = b.attr("parent", ctx.symbol_ref(p));
    }
    at.build(b)
}

pub fn build_load(at: Cursor, field: &str, indices: &[Value], elem: Type, loc: Loc) -> Value {
    let ctx = elem.ctx();
    at.build(
        OpBuilder::new(DsOp::Load.name(), loc)
            .operands(indices)
            .results(&[elem])
            .attr("field", ctx.symbol_ref(field)),
    )
    .result(0)
}

/// `ds.store` or one of the atomics (`kind` other than load).
pub fn build_update(at: Cursor, kind: AccessKind, field: &str, value: Value, indices: &[Value], loc: Loc) -> Op {
    assert!(kind != AccessKind::Load, "a load is not an update");
    let ctx = value.ty().ctx();
    at.build(
        OpBuilder::new(kind.name(), loc)
            .operands(&[value])
            .operands(indices)
            .attr("field", ctx.symbol_ref(field)),
    )
}

/// A `ds.parallel_for` from `lower` to `upper` with an empty body; returns the op
/// and its body block (whose argument is the index). Fill the body before its
/// terminator with `Cursor::before(terminator)`.
pub fn build_parallel_for(at: Cursor, lower: Value, upper: Value, loc: Loc) -> ParallelFor {
    let ctx = lower.ty().ctx();
    let region = Region::new();
    let body = region.append_block(Block::new(&[(ctx.index(), loc)]));
    body.append(OpBuilder::new(BODY_TERMINATOR, loc).build().expect("terminator"));
    let op = at.build(OpBuilder::new(DsOp::ParallelFor.name(), loc).operands(&[lower, upper]).region(region));
    ParallelFor { op, lower, upper, body }
}

/// A `ds.struct_for` over `field` (of rank `rank`) with an empty body; returns
/// the op and its body block (one index argument per dimension).
pub fn build_struct_for(at: Cursor, field: &str, rank: usize, loc: Loc) -> (Op, Block) {
    let ctx = loc.ctx();
    let region = Region::new();
    let args: Vec<_> = (0..rank).map(|_| (ctx.index(), loc)).collect();
    let body = region.append_block(Block::new(&args));
    body.append(OpBuilder::new(BODY_TERMINATOR, loc).build().expect("terminator"));
    let op = at.build(OpBuilder::new(DsOp::StructFor.name(), loc).attr("field", ctx.symbol_ref(field)).region(region));
    (op, body)
}

pub fn build_assert(at: Cursor, condition: Value, message: &str, loc: Loc) -> Op {
    let ctx = condition.ty().ctx();
    at.build(
        OpBuilder::new(DsOp::Assert.name(), loc)
            .operands(&[condition])
            .attr("message", ctx.string_attr(message)),
    )
}

/// `arith.constant` of an index value.
pub fn const_index(at: Cursor, v: i64, loc: Loc) -> Value {
    let ctx = loc.ctx();
    const_of(at, ctx.int_attr(ctx.index(), v), loc)
}

/// `arith.constant` of a float or integer value of type `t`.
pub fn const_scalar(at: Cursor, t: Type, v: f64, loc: Loc) -> Value {
    let ctx = t.ctx();
    let attr = if t.is_float() { ctx.float_attr(t, v) } else { ctx.int_attr(t, v as i64) };
    const_of(at, attr, loc)
}

fn const_of(at: Cursor, value: Attr, loc: Loc) -> Value {
    at.build(OpBuilder::new("arith.constant", loc).attr("value", value).infer_results()).result(0)
}

// ---- Upstream helpers used by several passes ----------------------------------------

/// A `func.func` with an entry block whose arguments have `inputs` types,
/// inserted at `at`. Returns the function and its entry block.
pub fn build_func(at: Cursor, name: &str, inputs: &[Type], results: &[Type], loc: Loc) -> (Op, Block) {
    let ctx = loc.ctx();
    let list = |ts: &[Type]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    let fty = ctx
        .parse_type(&format!("({}) -> ({})", list(inputs), list(results)))
        .expect("function type of scalar and memref types");
    let region = Region::new();
    let args: Vec<_> = inputs.iter().map(|t| (*t, loc)).collect();
    let entry = region.append_block(Block::new(&args));
    let func = at.build(
        OpBuilder::new("func.func", loc)
            .attr("sym_name", ctx.string_attr(name))
            .attr("function_type", ctx.type_attr(fty))
            .region(region),
    );
    (func, entry)
}

/// The argument types of a `func.func`.
pub fn func_inputs(func: Op) -> Vec<Type> {
    func_body(func).args().iter().map(|a| a.ty()).collect()
}

/// Rewrites a function's type after its entry block arguments changed.
pub fn sync_func_type(func: Op) {
    let ctx = func.ctx();
    let inputs: Vec<String> = func_inputs(func).iter().map(|t| t.to_string()).collect();
    let old = func.attr("function_type").map(|a| a.to_string()).unwrap_or_default();
    let results = old.split_once("->").map(|(_, r)| r.trim().to_string()).unwrap_or_else(|| "()".into());
    let fty = ctx.parse_type(&format!("({}) -> {results}", inputs.join(", "))).expect("valid function type");
    func.set_attr("function_type", ctx.type_attr(fty));
}

/// `func.return` of `values`.
pub fn build_return(at: Cursor, values: &[Value], loc: Loc) -> Op {
    at.build(OpBuilder::new("func.return", loc).operands(values))
}

/// An `scf.for` from `lower` to `upper` by `step` without carried values;
/// returns the op, its body block (argument: the induction variable) and
/// the body's terminator, before which the body goes.
pub fn build_scf_for(at: Cursor, lower: Value, upper: Value, step: Value, loc: Loc) -> (Op, Block, Op) {
    let region = Region::new();
    let body = region.append_block(Block::new(&[(lower.ty(), loc)]));
    let yield_op = body.append(OpBuilder::new("scf.yield", loc).build().expect("scf.yield"));
    let op = at.build(OpBuilder::new("scf.for", loc).operands(&[lower, upper, step]).region(region));
    (op, body, yield_op)
}

/// A binary arith op (`arith.addi`, ...) whose result type is its operands'.
pub fn build_binary(at: Cursor, name: &str, lhs: Value, rhs: Value, loc: Loc) -> Value {
    at.build(OpBuilder::new(name, loc).operands(&[lhs, rhs]).results(&[lhs.ty()])).result(0)
}

/// `arith.cmpi` predicates (their enum values).
#[derive(Clone, Copy, Debug)]
pub enum CmpI {
    Eq = 0,
    Ne = 1,
    Slt = 2,
    Sle = 3,
    Sgt = 4,
    Sge = 5,
    Ult = 6,
    Ule = 7,
}

/// `arith.cmpi <pred> a, b` on integers or indices.
pub fn build_cmpi(at: Cursor, pred: CmpI, a: Value, b: Value, loc: Loc) -> Value {
    let ctx = loc.ctx();
    at.build(
        OpBuilder::new("arith.cmpi", loc)
            .operands(&[a, b])
            .results(&[ctx.int(1)])
            .attr("predicate", ctx.int_attr(ctx.int(64), pred as i64)),
    )
    .result(0)
}

/// An `scf.if` on `cond` with `results`; returns it and its then and else
/// blocks, empty: the caller fills them and ends each with [`build_yield`].
pub fn build_if(at: Cursor, cond: Value, results: &[Type], loc: Loc) -> (Op, Block, Block) {
    let then_r = Region::new();
    let then_b = then_r.append_block(Block::new(&[]));
    let else_r = Region::new();
    let else_b = else_r.append_block(Block::new(&[]));
    let op = at.build(OpBuilder::new("scf.if", loc).operands(&[cond]).results(results).region(then_r).region(else_r));
    (op, then_b, else_b)
}

/// `scf.yield values` at the end of `block`.
pub fn build_yield(block: Block, values: &[Value], loc: Loc) -> Op {
    Cursor::at_end(block).build(OpBuilder::new("scf.yield", loc).operands(values))
}

/// `arith.cmpf` predicates (their enum values; the ordered ones).
#[derive(Clone, Copy, Debug)]
pub enum CmpF {
    Oeq = 1,
    Ogt = 2,
    Oge = 3,
    Olt = 4,
    Ole = 5,
    One = 6,
}

/// `arith.cmpf <pred> a, b` on floats.
pub fn build_cmpf(at: Cursor, pred: CmpF, a: Value, b: Value, loc: Loc) -> Value {
    let ctx = loc.ctx();
    at.build(
        OpBuilder::new("arith.cmpf", loc)
            .operands(&[a, b])
            .results(&[ctx.int(1)])
            .attr("predicate", ctx.int_attr(ctx.int(64), pred as i64)),
    )
    .result(0)
}

/// An `scf.for` from `lower` to `upper` by `step` carrying `inits`: its
/// results are the carried values after the last iteration. Returns the op
/// and its body block (arguments: the induction variable, then the carried
/// values), empty: the caller fills it and ends it with [`build_yield`] of
/// the next iteration's carried values.
pub fn build_scf_for_carrying(at: Cursor, lower: Value, upper: Value, step: Value, inits: &[Value], loc: Loc) -> (Op, Block) {
    let types: Vec<Type> = inits.iter().map(|v| v.ty()).collect();
    let region = Region::new();
    let args: Vec<_> = std::iter::once(lower.ty()).chain(types.iter().copied()).map(|t| (t, loc)).collect();
    let body = region.append_block(Block::new(&args));
    let op = at.build(
        OpBuilder::new("scf.for", loc)
            .operands(&[lower, upper, step])
            .operands(inits)
            .results(&types)
            .region(region),
    );
    (op, body)
}
