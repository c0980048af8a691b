//! `ds-verify`: the semantic rules of the ds dialect that IRDL cannot express.
//!
//! Input: any module. Output: the same module, unchanged; one located error per
//! broken rule. Rules:
//! - field declarations (unique names are MLIR's symbol-table rule): rank 0 to 4, positive extents, element
//!   type f32/f64/i32, `grad` names a float field of the same shape, `dual`
//!   (the tangent field of forward mode) a field of the same shape and float
//!   element type, `layout`
//!   names a layout node, whose shape the field's shape starts with; the
//!   fields placed under one node have elements of one size, and the node's
//!   `order` is "aos" or "soa" (`ops::layout::check_node`);
//! - accesses (`ds.load`, `ds.store`, `ds.atomic_*`): the field exists, one index
//!   per dimension, the value type is the field's element type, and the access
//!   sits inside a kernel;
//! - `ds.activate`, `ds.deactivate`, `ds.is_active`: as accesses; the first two
//!   need a field under a sparse node, and `node`, when given, names a node on
//!   the field's path (a sparse one for the first two);
//! - `ds.append`, `ds.length`: as accesses (the appended value of the field's
//!   element type), on a field placed under a dynamic node;
//! - kernels (`func.func` with `ds.kernel`): scalar parameters, no results;
//!   `ds.parallel_for` / `ds.struct_for` only at the top level of a kernel;
//!   values a parallel loop takes from the kernel's top level are computed from
//!   constants and parameters alone (they are recomputed per task).
//!
//! Example: `"ds.load"(%i) {field = @x} : (index) -> f32` on a 2-D field `@x`
//! gives `file:3:8: error: ds.load of @x takes 2 indices (one per dimension), got 1`.

use crate::{PassInfo, PassOptions};
use ds_dialects::ir::{Op, Value};
use ds_dialects::ops::{self, Access, AccessKind, DsOp, FieldDecl, LayoutNode};
use std::collections::HashMap;

pub static PASS: PassInfo = PassInfo {
    name: "ds-verify",
    summary: "Check field symbols, index counts, types and loop placement of ds ops",
    options: &[],
    run,
};

fn run(module: Op, _: &PassOptions) -> bool {
    check(module)
}

/// Runs every rule on `module`; passes that rely on them call this first.
pub fn check(module: Op) -> bool {
    let mut v = Verifier { errors: 0, module };
    v.check_module();
    v.errors == 0
}

struct Verifier {
    errors: usize,
    module: Op,
}

impl Verifier {
    fn error(&mut self, op: Op, message: String) {
        self.errors += 1;
        op.ctx().emit_error(op.loc(), &message);
    }

    fn check_module(&mut self) {
        let Some(body) = self.module.regions().first().and_then(|r| r.first_block()) else {
            return;
        };
        let fields = self.check_declarations(body.ops());
        for op in self.module.walk() {
            match DsOp::of(op) {
                Some(kind) => self.check_op(op, kind, &fields),
                None if ops::is_kernel(op) => self.check_kernel(op),
                None => {}
            }
        }
    }

    /// Field and layout declarations; returns the fields by name.
    fn check_declarations(&mut self, top: Vec<Op>) -> HashMap<String, FieldDecl> {
        let mut fields = HashMap::new();
        let mut layout_nodes = HashMap::new();
        for node in top.iter().filter_map(|op| LayoutNode::read(*op)) {
            if node.shape.as_ref().is_none_or(|s| s.iter().any(|&e| e <= 0)) {
                self.error(node.op, format!("layout node @{}: shape must be an array<i64> of positive extents", node.name));
            }
            layout_nodes.insert(node.name.clone(), node);
        }
        for node in layout_nodes.values() {
            if let Some(parent) = &node.parent
                && !layout_nodes.contains_key(parent)
            {
                self.error(node.op, format!("layout node @{}: its parent @{parent} is not a layout node of this module", node.name));
            }
        }
        let declared: Vec<FieldDecl> = top.iter().filter_map(|op| FieldDecl::read(*op)).collect();
        let in_order: Vec<LayoutNode> = top.iter().filter_map(|op| LayoutNode::read(*op)).collect();
        for op in top {
            if DsOp::of(op) != Some(DsOp::Field) {
                continue;
            }
            let Some(f) = FieldDecl::read(op) else {
                self.error(op, "ds.field needs sym_name, element_type and shape = array<i64: ...>".into());
                continue;
            };
            let elem = f.elem.to_string();
            if !matches!(elem.as_str(), "f32" | "f64" | "i32") {
                self.error(op, format!("field @{}: element type must be f32, f64 or i32, got {elem}", f.name));
            }
            if f.rank() > 4 {
                self.error(op, format!("field @{}: at most 4 dimensions are supported, got {}", f.name, f.rank()));
            }
            if f.shape.iter().any(|&e| e <= 0) {
                self.error(op, format!("field @{}: every extent must be positive, got {:?}", f.name, f.shape));
            }
            if let Some(layout) = &f.layout
                && !layout_nodes.contains_key(layout)
            {
                self.error(op, format!("field @{}: layout @{layout} is not a layout node of this module", f.name));
            }
            fields.insert(f.name.clone(), f);
        }
        for node in &in_order {
            for (op, message) in ops::layout::check_node(node, &in_order, &ops::layout::members(&node.name, &declared)) {
                self.error(op, message);
            }
        }
        let grads: Vec<(String, String, Op)> =
            fields.values().filter_map(|f| Some((f.name.clone(), f.grad.clone()?, f.op))).collect();
        for (name, grad, op) in grads {
            match fields.get(&grad) {
                None => self.error(op, format!("field @{name}: its grad @{grad} is not a field of this module")),
                Some(g) if g.shape != fields[&name].shape || !g.elem.is_float() => self.error(
                    op,
                    format!(
                        "field @{name}: its grad @{grad} must be a float field of the same shape {:?}",
                        fields[&name].shape
                    ),
                ),
                Some(_) => {}
            }
        }
        let duals: Vec<(String, String, Op)> =
            fields.values().filter_map(|f| Some((f.name.clone(), f.dual.clone()?, f.op))).collect();
        for (name, dual, op) in duals {
            let primal = &fields[&name];
            match fields.get(&dual) {
                None => self.error(op, format!("field @{name}: its dual @{dual} is not a field of this module")),
                Some(d) if d.shape != primal.shape || d.elem != primal.elem || !primal.elem.is_float() => self.error(
                    op,
                    format!(
                        "field @{name}: its dual @{dual} must be a field of the same shape {:?} and element type {}, a float",
                        primal.shape, primal.elem
                    ),
                ),
                Some(_) => {}
            }
        }
        fields
    }

    fn enclosing_kernel(op: Op) -> Option<Op> {
        let mut cur = op.parent();
        while let Some(p) = cur {
            if p.name() == "func.func" {
                return ops::is_kernel_or_task(p).then_some(p);
            }
            cur = p.parent();
        }
        None
    }

    fn check_kernel(&mut self, func: Op) {
        let name = func.sym_name().unwrap_or_default();
        let ty = func.attr("function_type").map(|a| a.to_string()).unwrap_or_default();
        let Some(body) = func.region(0).first_block() else {
            self.error(func, format!("kernel @{name} has no body"));
            return;
        };
        for arg in body.args() {
            let t = arg.ty();
            if !(t.is_index() || t.is_integer() || t.is_float()) {
                self.error(func, format!("kernel @{name}: parameters must be scalars (integer, float or index), got {t}"));
            }
        }
        if !ty.ends_with("-> ()") {
            self.error(func, format!("kernel @{name} must not return values (got {ty}); write results into fields"));
        }
        self.check_deactivation_races(func);
    }

    /// A deactivation racing a write of its tree in one parallel loop
    /// (`ops::sparse::deactivation_races`). Layouts the lowering rejects
    /// are its errors, not these.
    fn check_deactivation_races(&mut self, func: Op) {
        let body = ops::module_body(self.module);
        let nodes: Vec<LayoutNode> = body.ops().into_iter().filter_map(LayoutNode::read).collect();
        let fields = ops::fields(body);
        let Ok(trees) = ops::sparse::trees(&nodes, &fields) else { return };
        for race in ops::sparse::deactivation_races(func, &trees, &fields) {
            self.error(race.deactivate, race.message);
        }
    }

    fn check_op(&mut self, op: Op, kind: DsOp, fields: &HashMap<String, FieldDecl>) {
        match kind {
            DsOp::Field | DsOp::Dense | DsOp::Pointer | DsOp::Bitmasked | DsOp::Dynamic => {
                if op.parent() != Some(self.module) {
                    self.error(op, format!("{} must be declared at module level", kind.name()));
                }
            }
            DsOp::Load | DsOp::Store | DsOp::AtomicAdd | DsOp::AtomicSub | DsOp::AtomicMin | DsOp::AtomicMax => {
                self.check_access(op, fields)
            }
            DsOp::Activate | DsOp::Deactivate | DsOp::IsActive => {
                self.check_access(op, fields);
                self.check_activity(op, kind, fields);
            }
            DsOp::Append | DsOp::Length => {
                self.check_access(op, fields);
                self.check_list(op, kind, fields);
            }
            DsOp::ParallelFor | DsOp::StructFor => self.check_loop(op, kind, fields),
            DsOp::Assert | DsOp::StopGrad => {
                if Self::enclosing_kernel(op).is_none() {
                    self.error(op, format!("{} must be inside a kernel (a func.func with ds.kernel)", kind.name()));
                }
            }
        }
    }

    fn check_access(&mut self, op: Op, fields: &HashMap<String, FieldDecl>) {
        let Some(a) = Access::read(op) else {
            self.error(op, format!("{} needs a `field` symbol attribute", op.name()));
            return;
        };
        let name = op.name();
        if Self::enclosing_kernel(op).is_none() {
            self.error(op, format!("{name} of @{} is outside a kernel (a func.func with ds.kernel)", a.field));
        }
        let Some(f) = fields.get(&a.field) else {
            self.error(op, format!("{name} refers to @{}, which is not a field of this module", a.field));
            return;
        };
        if a.indices.len() != f.rank() {
            self.error(
                op,
                format!(
                    "{name} of @{} takes {} indices (one per dimension), got {}",
                    a.field,
                    f.rank(),
                    a.indices.len()
                ),
            );
        }
        if matches!(a.kind, AccessKind::Activate | AccessKind::Deactivate | AccessKind::IsActive | AccessKind::Length) {
            return;
        }
        if a.kind == AccessKind::Append {
            let ty = a.value.map(|v| v.ty());
            if ty != Some(f.elem) {
                self.error(op, format!("ds.append of @{}: value type must be the field's element type {}", a.field, f.elem));
            }
            return;
        }
        let ty = a.elem_type();
        if ty != f.elem {
            let what = if a.kind == AccessKind::Load { "result" } else { "value" };
            self.error(op, format!("{name} of @{}: {what} type must be the field's element type {}, got {ty}", a.field, f.elem));
        }
    }

    /// `ds.activate` / `ds.deactivate` need a field under a sparse node; the
    /// optional `node` of all three names a node on the field's path, a
    /// sparse one for activate and deactivate.
    fn check_activity(&mut self, op: Op, kind: DsOp, fields: &HashMap<String, FieldDecl>) {
        let Some(a) = Access::read(op) else { return };
        let Some(f) = fields.get(&a.field) else { return };
        let nodes: Vec<LayoutNode> = ops::module_body(self.module).ops().into_iter().filter_map(LayoutNode::read).collect();
        let path: Vec<LayoutNode> = f
            .layout
            .as_ref()
            .and_then(|l| nodes.iter().find(|n| &n.name == l))
            .and_then(|n| ops::sparse::path(n, &nodes).ok())
            .map(|p| p.into_iter().cloned().collect())
            .unwrap_or_default();
        let name = kind.name();
        let sparse = |n: &LayoutNode| matches!(n.kind, DsOp::Pointer | DsOp::Bitmasked | DsOp::Dynamic);
        if kind != DsOp::IsActive && !path.iter().any(sparse) {
            self.error(op, format!("{name} of @{}: the field is not placed under a sparse (pointer or bitmasked) layout node; its cells are always active", a.field));
            return;
        }
        if let Some(node) = op.attr("node") {
            let Some(node_name) = node.as_symbol() else {
                self.error(op, format!("{name} of @{}: node must be a symbol of a layout node, got {node}", a.field));
                return;
            };
            match path.iter().find(|n| n.name == node_name) {
                None => self.error(op, format!("{name} of @{}: @{node_name} is not a layout node on the field's path", a.field)),
                Some(n) if kind != DsOp::IsActive && !sparse(n) => {
                    self.error(op, format!("{name} of @{}: @{node_name} is dense; name a pointer or bitmasked node", a.field))
                }
                Some(_) => {}
            }
        }
    }

    /// `ds.append` and `ds.length` need a field under a dynamic node.
    fn check_list(&mut self, op: Op, kind: DsOp, fields: &HashMap<String, FieldDecl>) {
        let Some(a) = Access::read(op) else { return };
        let Some(f) = fields.get(&a.field) else { return };
        let nodes: Vec<LayoutNode> = ops::module_body(self.module).ops().into_iter().filter_map(LayoutNode::read).collect();
        let dynamic = f
            .layout
            .as_ref()
            .and_then(|l| nodes.iter().find(|n| &n.name == l))
            .is_some_and(|n| n.kind == DsOp::Dynamic);
        if !dynamic {
            self.error(op, format!("{} of @{}: the field is not placed under a dynamic layout node (a list)", kind.name(), a.field));
        }
    }

    fn check_loop(&mut self, op: Op, kind: DsOp, fields: &HashMap<String, FieldDecl>) {
        let name = kind.name();
        let parent = op.parent();
        if parent.is_none_or(|p| !ops::is_kernel(p)) {
            self.error(
                op,
                format!(
                    "{name} must be at the top level of a kernel: only the outermost loops of a kernel run in parallel; use scf.for for inner loops"
                ),
            );
            return;
        }
        let body = op.region(0).first_block();
        if kind == DsOp::StructFor {
            {
                let field = op.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
                match fields.get(&field) {
                    None => self.error(op, format!("ds.struct_for over @{field}, which is not a field of this module")),
                    Some(f) => {
                        let nargs = body.map(|b| b.num_args()).unwrap_or(0);
                        let nodes: Vec<LayoutNode> =
                            ops::module_body(self.module).ops().into_iter().filter_map(LayoutNode::read).collect();
                        // The body binds the leading dimensions: every one, or fewer (a
                        // vector field's cells without their components), at least the
                        // cell dimensions of a sparse field's tree.
                        let least = if ops::sparse::is_sparse(f, &nodes) { ops::sparse::cell_rank(f, &nodes) } else { f.rank().min(1) };
                        let counts = if least == f.rank() { format!("{}", f.rank()) } else { format!("{least} to {}", f.rank()) };
                        if !(least..=f.rank()).contains(&nargs) || body.is_some_and(|b| b.args().iter().any(|a| !a.ty().is_index())) {
                            self.error(op, format!("ds.struct_for over @{field} needs {counts} index block arguments, got {nargs}"));
                        }
                    }
                }
            }
        }
        self.check_captures(op);
    }

    /// Values used inside the loop but defined at the kernel's top level must
    /// be recomputable in each task: constants, parameters and pure arith/math.
    fn check_captures(&mut self, loop_op: Op) {
        for inner in loop_op.walk() {
            for v in inner.operands() {
                let Some(def) = v.defining_op() else { continue };
                if def.is_inside(loop_op) || def.parent() != loop_op.parent() {
                    continue;
                }
                if let Some(bad) = first_non_recomputable(v) {
                    self.error(
                        inner,
                        format!(
                            "{} uses a value computed at the kernel's top level by {} at {}; a parallel loop may only capture values computed from constants and kernel parameters by arith/math ops. Compute it inside the loop or pass it as a parameter",
                            inner.name(),
                            bad.name(),
                            bad.loc()
                        ),
                    );
                    return;
                }
            }
        }
    }
}

/// The first op in the definition chain of `v` that cannot be recomputed
/// (anything but constants and pure arith/math ops over parameters).
pub fn first_non_recomputable(v: Value) -> Option<Op> {
    let def = v.defining_op()?;
    let name = def.name();
    let pure = (name.starts_with("arith.") || name.starts_with("math.")) && def.regions().is_empty();
    if !pure {
        return Some(def);
    }
    def.operands().into_iter().find_map(first_non_recomputable)
}
