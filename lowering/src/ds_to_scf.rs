//! `convert-ds-to-scf`: field accesses become memref ops on function arguments,
//! ds loops become `scf.for`, run-time checks write a status buffer.
//!
//! Input: a verified module, usually after `ds-lower-parallel-cpu`. Fields of
//! their own, under a dense node, or under a sparse tree of any depth
//! (pointer/bitmasked/dynamic, lowered by `crate::sparse`); a field under a
//! nested dense node or a layout `ops::sparse::tree_of` rejects is a located
//! error.
//! Output, per function that touches fields:
//! - one `memref<shape x elem>` argument per field it uses, appended in
//!   declaration order and listed in `ds.fields`: row-major for a field of
//!   its own, strided (`strided<[4, 1], offset: 2>`, from `ops::layout`) for
//!   one placed in a dense node's buffer, whose argument is then the node's
//!   buffer. The address arithmetic is memref's;
//! - `ds.load`/`ds.store` -> `memref.load`/`memref.store`; `ds.atomic_add/sub/
//!   min/max` -> `memref.atomic_rmw` (addf/addi of the value or its negation,
//!   minimumf/mins, maximumf/maxs), except an add or sub to an element the
//!   task loop's iteration owns (`ops::owned_by_iteration`: every access of
//!   the field in the loop indexes one dimension by the loop variable plus
//!   one constant), which is a plain load, add and store: no other iteration
//!   touches that element, and an atomic is a compare-and-swap loop on the
//!   CPU (the adjoint of every per-particle read is such an update);
//! - a parallel task with other atomic adds or subs gets a serial twin
//!   `TASK__serial` (`abi::SERIAL_OF`) in which every add and sub is plain:
//!   the CPU runtime runs it when one thread runs the whole range (short
//!   ranges, one thread), so small kernels pay no compare-and-swap loops;
//!   a serial task's adds and subs are always plain; when every add and sub
//!   touches an element a bounded number of iterations from its own (a
//!   stencil's adjoint, `ops::update_band`), the task records that band
//!   (`abi::TASK_BAND`) and the runtime runs the twin on several threads, on
//!   chunks longer than the band, even chunks and odd chunks in turn; when
//!   every field updated that way is only added to (a reduction target, such
//!   as a scatter's adjoint), or loaded and stored only where no add lands
//!   (`ops::provably_apart`: an adjoint reading and zeroing `x_grad[t]` and
//!   scattering into `x_grad[t - 1]`, whose adds then go through a second
//!   argument for the field), the task lists the arguments its adds go
//!   through (`abi::TASK_PRIVATE`) and the runtime may run the twin on
//!   several threads into private copies passed there, summed after;
//! - an access, `ds.activate`, `ds.deactivate` or `ds.is_active` of a sparse
//!   field -> memref ops on its tree's hidden buffers (`crate::sparse`), which
//!   follow the dense fields' arguments; `ds.is_active` of a dense field -> true;
//! - `ds.parallel_for` -> `scf.for` (serial), `ds.struct_for` -> nested `scf.for`s
//!   (over a sparse field: over its blocks, then their active cells);
//! - `ds.stop_grad %v` -> `%v` (its purpose, blocking gradients, is served);
//! - `ds.assert` and, with `check-bounds=1`, a bounds check per index: on failure
//!   the check's code (`abi::status_code`: the first failed check in program
//!   order wins) goes to a status buffer argument (`ds.status_checks`
//!   describes the checks) and an out-of-bounds access is skipped. Indices
//!   proven in bounds before a task loop are not checked in its fast copy
//!   (`version_task_loop`); a stencil's indices `(b + k) as usize` around one
//!   i32 base share one test of `b` (`CheckGroup`). In a block that scatters
//!   (a group has an add or sub), the rest of the block is versioned on the
//!   tests: a copy with those indices unchecked, and one checked
//!   (`version_scattering_groups`). In a block of loads, the test is
//!   branch-free (a safe base, the accesses cancelled, the failure written
//!   when the function returns), so that the loop stays vectorizable (MPM's
//!   g2p: 116 µs with a branch per access, 47 µs grouped, 43 µs unchecked).
//!
//! Example: `%v = "ds.load"(%i) {field = @x} : (index) -> f32` in `@f(%i: index)`
//! becomes `%v = memref.load %x[%i] : memref<16xf32>` in
//! `@f(%i: index, %x: memref<16xf32>) attributes {ds.fields = ["x"]}`.

use crate::abi::{self, Check, CheckKind};
use crate::sparse;
use ds_dialects::ir::{Block, Cursor, Loc, Op, OpBuilder, Type, Value};
use ds_dialects::ops::{self, Access, AccessKind, DsOp, FieldDecl, LayoutNode, Storage};
use ds_passes::{PassInfo, PassOptions};

pub static PASS: PassInfo = PassInfo {
    name: "convert-ds-to-scf",
    summary: "Lower dense field accesses to memref, ds loops to scf.for, checks to a status buffer",
    options: &["check-bounds"],
    run,
};

fn run(module: Op, options: &PassOptions) -> bool {
    if !ds_passes::verify::check(module) {
        return false;
    }
    let check_bounds = match options.flag("check-bounds") {
        Ok(v) => v,
        Err(e) => {
            module.ctx().emit_error(module.loc(), &e);
            return false;
        }
    };
    let body = ops::module_body(module);
    let fields = ops::fields(body);
    let storage = match ops::layout::storage(body) {
        Ok(s) => s,
        Err((op, message)) => {
            op.ctx().emit_error(op.loc(), &message);
            return false;
        }
    };
    let mut funcs: Vec<(Op, bool)> = body.ops().into_iter().filter(|o| o.name() == "func.func").map(|f| (f, false)).collect();
    let twins: Vec<(Op, bool)> = funcs.iter().filter_map(|(f, _)| serial_twin(*f)).map(|t| (t, true)).collect();
    funcs.extend(twins);
    let ok = funcs
        .into_iter()
        .all(|(f, all_plain)| f.regions()[0].first_block().is_none() || lower_func(f, &fields, &storage, check_bounds, all_plain));
    if !ok {
        return false;
    }
    for f in fields {
        // SAFETY: a ds.field has no regions or results; every access naming
        // it was lowered, and `fields` is consumed here (views copy what
        // they read).
        unsafe { f.op.erase() };
    }
    // The fields placed under dense and sparse trees are lowered (layouts
    // beyond those were rejected above): the layout tree has nothing left
    // to describe.
    for node in body.ops().into_iter().filter_map(LayoutNode::read) {
        let list_of_a_tree = storage.sparse.iter().any(|t| t.is_dynamic() && t.leaf().node == node.name);
        if matches!(node.kind, DsOp::Dense | DsOp::Pointer | DsOp::Bitmasked) || list_of_a_tree {
            // SAFETY: a layout node has no regions or results, and nothing refers to it now.
            unsafe { node.op.erase() };
        }
    }
    crate::no_ds_ops_left(module, PASS.name)
}

/// memref.atomic_rmw kinds (arith::AtomicRMWKind).
const RMW_ADDF: i64 = 0;
const RMW_ADDI: i64 = 1;
const RMW_MAXIMUMF: i64 = 4;
const RMW_MAXS: i64 = 6;
const RMW_MINIMUMF: i64 = 8;
const RMW_MINS: i64 = 10;

struct FuncLowering<'a> {
    fields: Vec<(&'a FieldDecl, Value)>,
    /// Reduction targets also loaded or stored elsewhere ([`TaskUpdates::split`]):
    /// the second argument their adds and subs go through.
    split: Vec<(String, Value)>,
    /// The sparse trees of the sparse fields the function uses, with the
    /// memrefs of their hidden buffers (`crate::sparse`).
    trees: Vec<sparse::TreeArgs<'a>>,
    /// The fields named as some field's `grad`: their accesses never activate.
    adjoints: Vec<String>,
    /// The atomic adds and subs to elements their iteration owns.
    owned: Vec<Op>,
    status: Option<Value>,
    checks: Vec<Check>,
    check_bounds: bool,
    /// Groups of bounds checks made once for several accesses ([`CheckGroup`]).
    groups: Vec<CheckGroup>,
    /// The function being lowered.
    func: Op,
}

/// The memref type of a field's argument: `memref<16x2xf32>` for a plain
/// row-major array, `memref<16x2xf32, strided<[1, 16], offset: 32>>` for a
/// field stored in a layout node's buffer (its strides from `ops::layout`).
fn memref_type(f: &FieldDecl, storage: &Storage) -> Type {
    let dims: String = f.shape.iter().map(|d| format!("{d}x")).collect();
    let strided = &storage.of(&f.name).expect("every field has storage").strided;
    let layout = if strided.is_identity(&f.shape) {
        String::new()
    } else {
        let strides: Vec<String> = strided.strides.iter().map(|s| s.to_string()).collect();
        format!(", strided<[{}], offset: {}>", strides.join(", "), strided.offset)
    };
    f.elem.ctx().parse_type(&format!("memref<{dims}{}{layout}>", f.elem)).expect("memref type")
}

/// Lowers one function; with `all_plain` (a serial twin, or a serial task)
/// every atomic add and sub is a plain load, add and store.
fn lower_func(func: Op, all_fields: &[FieldDecl], storage: &Storage, check_bounds: bool, all_plain: bool) -> bool {
    let all_plain = all_plain || func.attr(abi::TASK_KIND).and_then(|k| k.as_string()).as_deref() == Some("serial");
    if check_bounds {
        for task_loop in func.walk().into_iter().filter(|op| op.name() == "scf.for" && op.attr(abi::TASK_LOOP).is_some()) {
            version_task_loop(task_loop, all_fields);
        }
        let dense: Vec<&FieldDecl> = all_fields.iter().filter(|f| storage.tree_of(&f.name).is_none()).collect();
        version_scattering_groups(func, &dense);
    }
    // A struct_for over a sparse field left in the function (not a task's):
    // serial loops over the blocks, then the active cells.
    for op in func.walk().into_iter().filter(|o| DsOp::of(*o) == Some(DsOp::StructFor)) {
        let field = op.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
        if let (Some(tree), Some(decl)) = (storage.tree_of(&field), all_fields.iter().find(|f| f.name == field)) {
            expand_sparse_struct_for(op, tree, decl);
        }
    }
    let inner = func.walk();
    let accesses: Vec<Access> = inner.iter().filter_map(|o| Access::read(*o)).collect();
    let used: Vec<&FieldDecl> =
        all_fields.iter().filter(|f| accesses.iter().any(|a| a.field == f.name)).collect();
    let (sparse_used, dense_used): (Vec<&FieldDecl>, Vec<&FieldDecl>) =
        used.into_iter().partition(|f| storage.tree_of(&f.name).is_some());
    // The hidden buffers the sparse accesses need, in the storage's order.
    let mut hidden: Vec<String> = Vec::new();
    for a in accesses.iter().filter(|a| sparse_used.iter().any(|f| f.name == a.field)) {
        let tree = storage.tree_of(&a.field).expect("a sparse field");
        for h in tree.needed_by(&a.field, a.kind == AccessKind::Deactivate) {
            if !hidden.contains(&h) {
                hidden.push(h);
            }
        }
    }
    hidden.sort_by_key(|h| storage.hidden.iter().position(|(x, _)| &x.name == h));
    let may_allocate = accesses.iter().any(|a| {
        let tree = storage.tree_of(&a.field);
        a.kind == AccessKind::Append && tree.is_some()
            || a.kind.writes() && a.kind != AccessKind::Deactivate && tree.is_some_and(|t| t.allocates())
    });
    let has_assert = inner.iter().any(|o| DsOp::of(*o) == Some(DsOp::Assert));
    let entry = ops::func_body(func);
    let ctx = func.ctx();
    let loc = func.loc();
    let fields = dense_used.iter().map(|f| (*f, entry.add_arg(memref_type(f, storage), loc))).collect::<Vec<_>>();
    // The same analysis for a task and its twin, so both take the same arguments.
    let updates_of_tasks = task_updates(func);
    let split: Vec<(String, Value)> = fields
        .iter()
        .filter(|(f, _)| updates_of_tasks.split.contains(&f.name))
        .map(|(f, _)| (f.name.clone(), entry.add_arg(memref_type(f, storage), loc)))
        .collect();
    let hidden_args: Vec<(String, Value)> =
        hidden.iter().map(|h| (h.clone(), entry.add_arg(hidden_type(ctx, storage, all_fields, h), loc))).collect();
    let needs_status = has_assert || may_allocate || (check_bounds && !accesses.is_empty());
    let status = needs_status.then(|| {
        let t = ctx.parse_type(&format!("memref<{}xi64>", abi::STATUS_SLOTS)).expect("status type");
        entry.add_arg(t, loc)
    });
    let n_buffers = fields.len() + split.len() + hidden_args.len();
    if n_buffers > 0 {
        let names: Vec<_> = fields
            .iter()
            .map(|(f, _)| f.name.as_str())
            .chain(split.iter().map(|(f, _)| f.as_str()))
            .chain(hidden_args.iter().map(|(h, _)| h.as_str()))
            .map(|n| ctx.string_attr(n))
            .collect();
        func.set_attr(abi::FIELDS, ctx.array_attr(&names));
    }
    ops::sync_func_type(func);
    mark_noalias(func, entry.num_args() - n_buffers - usize::from(status.is_some()), n_buffers);
    let trees: Vec<sparse::TreeArgs> = storage
        .sparse
        .iter()
        .filter(|t| sparse_used.iter().any(|f| t.components(&f.name).is_some()))
        .map(|tree| sparse::TreeArgs {
            tree,
            bufs: hidden_args.iter().filter(|(h, _)| tree.hidden().iter().any(|x| &x.name == h)).cloned().collect(),
            elems: all_fields.iter().filter(|f| tree.components(&f.name).is_some()).map(|f| (f.name.clone(), f.elem)).collect(),
        })
        .collect();
    // Struct_fors over pointer trees run over the allocated blocks' list.
    sparse::resolve_block_lists(func, &trees);
    let adjoints: Vec<String> = all_fields.iter().filter_map(|f| f.grad.clone()).collect();
    let (owned, band, private) = if all_plain {
        (updates(func), None, None)
    } else {
        (updates_of_tasks.owned, updates_of_tasks.band, updates_of_tasks.private)
    };
    // A private target's argument: a split one's second.
    let private_args: Option<Vec<i64>> = private.map(|names| {
        names
            .iter()
            .filter_map(|n| match split.iter().position(|(s, _)| s == n) {
                Some(k) => Some(fields.len() + k),
                None => fields.iter().position(|(f, _)| &f.name == n),
            })
            .map(|p| p as i64)
            .collect()
    });
    let groups = if check_bounds { check_groups(func, &dense_used) } else { Vec::new() };
    let mut l = FuncLowering { fields, split, trees, adjoints, owned, status, checks: Vec::new(), check_bounds, groups, func };
    // Keep only the ds ops of the walk, before any is erased: erasing a loop
    // also frees its body terminator, which `inner` lists. Each ds op below is
    // visited once and stays alive until its own turn (a loop moves its body
    // out before it is erased).
    let ds_ops: Vec<(Op, DsOp)> = inner.into_iter().filter_map(|op| Some((op, DsOp::of(op)?))).collect();
    for (op, kind) in ds_ops {
        match kind {
            DsOp::Load
            | DsOp::Store
            | DsOp::AtomicAdd
            | DsOp::AtomicSub
            | DsOp::AtomicMin
            | DsOp::AtomicMax
            | DsOp::Activate
            | DsOp::Deactivate
            | DsOp::IsActive
            | DsOp::Append
            | DsOp::Length => l.lower_access(op, all_fields),
            DsOp::Assert => l.lower_assert(op),
            DsOp::StopGrad => {
                // Gradients are made by now: the op is its operand.
                l.replace_result(op, op.operand(0));
                // SAFETY: no regions, its result's uses replaced; visited once.
                unsafe { op.erase() };
            }
            DsOp::ParallelFor => lower_loop(op, vec![(op.operand(0), op.operand(1))]),
            DsOp::StructFor => lower_loop(op, struct_for_bounds(op, all_fields)),
            DsOp::Field | DsOp::Dense | DsOp::Pointer | DsOp::Bitmasked | DsOp::Dynamic => {}
        }
    }
    l.write_group_failures();
    if !l.checks.is_empty() {
        let checks: Vec<_> = l.checks.iter().map(|c| c.to_attr(ctx)).collect();
        func.set_attr(abi::STATUS_CHECKS, ctx.array_attr(&checks));
    }
    if func.attr(abi::TASK_OF).is_some()
        && let Some(task_loop) = func.walk().into_iter().find(|op| op.name() == "scf.for" && op.attr(abi::TASK_LOOP).is_some()) {
        let body = task_loop.region(0).first_block().expect("loop body");
        func.set_attr(abi::TASK_WORK, ctx.int_attr(ctx.int(64), abi::work(body)));
        func.set_attr(abi::TASK_ATOMICS, ctx.int_attr(ctx.int(64), abi::atomic_updates(body)));
        if let Some(band) = band {
            func.set_attr(abi::TASK_BAND, ctx.int_attr(ctx.int(64), band));
        }
        if let Some(args) = private_args.filter(|_| band.is_none()) {
            let positions: Vec<_> = args.iter().map(|&p| ctx.int_attr(ctx.int(64), p)).collect();
            func.set_attr(abi::TASK_PRIVATE, ctx.array_attr(&positions));
        }
    }
    true
}

/// The atomic adds and subs in `op`.
fn updates(op: Op) -> Vec<Op> {
    op.walk().into_iter().filter(|o| matches!(DsOp::of(*o), Some(DsOp::AtomicAdd | DsOp::AtomicSub))).collect()
}

/// For a parallel task with an atomic add or sub its iteration does not own:
/// its serial twin (a copy named `TASK__serial`, marked `abi::SERIAL_OF`,
/// placed after it), to be lowered with every update plain.
fn serial_twin(task: Op) -> Option<Op> {
    let name = task.attr(abi::TASK_OF).and(task.sym_name())?;
    if task.attr(abi::TASK_KIND).and_then(|k| k.as_string()).as_deref() != Some("parallel") || !task_updates(task).shared {
        return None;
    }
    let twin = task.deep_clone();
    let ctx = task.ctx();
    for attr in [abi::TASK_OF, abi::TASK_INDEX, abi::TASK_KIND] {
        twin.remove_attr(attr);
    }
    twin.set_attr("sym_name", ctx.string_attr(&format!("{name}{}", abi::SERIAL_SUFFIX)));
    twin.set_attr(abi::SERIAL_OF, ctx.string_attr(&name));
    let block = task.block().expect("a task in the module");
    match task.next() {
        Some(next) => block.insert_before(next, twin),
        None => block.append(twin),
    };
    Some(twin)
}

/// Each task loop of `func` with its variable and its accesses, grouped by field.
fn task_loop_accesses(func: Op) -> Vec<(Value, Vec<Vec<Access>>)> {
    func.walk()
        .into_iter()
        .filter(|op| op.name() == "scf.for" && op.attr(abi::TASK_LOOP).is_some())
        .map(|task_loop| {
            let var = task_loop.region(0).first_block().expect("loop body").arg(0);
            let mut by_field: Vec<Vec<Access>> = Vec::new();
            for a in task_loop.walk().into_iter().filter_map(Access::read) {
                match by_field.iter_mut().find(|f| f[0].field == a.field) {
                    Some(f) => f.push(a),
                    None => by_field.push(vec![a]),
                }
            }
            (var, by_field)
        })
        .collect()
}

/// The atomic adds and subs of a function's task loops, as the lowering
/// and the runtime treat them.
struct TaskUpdates {
    /// Those whose element the loop's iteration owns
    /// ([`ops::owned_by_iteration`] over every access of the field): plain.
    owned: Vec<Op>,
    /// Whether there are others (shared: atomic, and the task gets a serial twin).
    shared: bool,
    /// With shared ones, when every add and sub of each field touches
    /// elements a bounded number of iterations around its own
    /// ([`ops::update_band`]: a stencil's adjoint), the largest such band:
    /// the twin may run on chunks longer than that, even and odd in turn.
    band: Option<i64>,
    /// With shared ones, when each field updated that way is only added to
    /// and subtracted from, or loaded and stored only where no add or sub
    /// of it lands (`ops::provably_apart`: `x_grad[t]` read and zeroed,
    /// `x_grad[t - 1, ..]` scattered into): those fields, which the twin may
    /// update in private copies ([`abi::TASK_PRIVATE`]).
    private: Option<Vec<String>>,
    /// Those of `private` also loaded or stored: their adds and subs go
    /// through an argument of their own, which a private copy replaces.
    split: Vec<String>,
}

fn task_updates(func: Op) -> TaskUpdates {
    let (mut owned, mut shared, mut band, mut private) = (Vec::new(), false, Some(0), Some(Vec::new()));
    let mut split = Vec::new();
    for (var, by_field) in task_loop_accesses(func) {
        for of in by_field {
            let updates: Vec<&Access> = of.iter().filter(|a| a.kind.accumulates()).collect();
            if updates.is_empty() {
                continue;
            }
            let indices: Vec<&[Value]> = of.iter().map(|a| a.indices.as_slice()).collect();
            if ops::owned_by_iteration(var, &indices) {
                owned.extend(updates.iter().map(|a| a.op));
            } else {
                shared = true;
                let field = &of[0].field;
                let others: Vec<&Access> = of.iter().filter(|a| !a.kind.accumulates()).collect();
                let apart = others.iter().all(|o| updates.iter().all(|u| ops::provably_apart(func, &o.indices, &u.indices)));
                if !others.is_empty() && apart && !split.contains(field) {
                    split.push(field.clone());
                }
                private = private
                    .filter(|_| apart)
                    .map(|mut p: Vec<String>| {
                        if !p.contains(field) {
                            p.push(field.clone());
                        }
                        p
                    });
            }
            let updated: Vec<&[Value]> = updates.iter().map(|a| a.indices.as_slice()).collect();
            band = band.zip(ops::update_band(var, &updated)).map(|(b, u)| b.max(u));
        }
    }
    let private = private.filter(|p| shared && !p.is_empty());
    // Split arguments only where a private copy may be used (no band).
    if private.is_none() || band.is_some_and(|_| shared) {
        split.clear();
    }
    TaskUpdates { owned, shared, band: band.filter(|_| shared), private, split }
}

/// Fields are distinct allocations, or disjoint elements of one node's
/// buffer: tell LLVM their arguments do not alias (no element is reached
/// through two of them), so it vectorizes without run-time overlap checks.
fn mark_noalias(func: Op, first: usize, count: usize) {
    let n = ops::func_inputs(func).len();
    let old = func.attr("arg_attrs").and_then(|a| a.as_array()).unwrap_or_default();
    let dicts: Vec<String> = (0..n)
        .map(|i| match old.get(i) {
            Some(a) if !(first..first + count).contains(&i) => a.to_string(),
            _ if (first..first + count).contains(&i) => "{llvm.noalias}".to_string(),
            _ => "{}".to_string(),
        })
        .collect();
    if let Some(a) = func.ctx().parse_attr(&format!("[{}]", dicts.join(", "))) {
        func.set_attr("arg_attrs", a);
    }
}

impl FuncLowering<'_> {
    fn field(&self, name: &str) -> (&FieldDecl, Value) {
        let (f, v) = self.fields.iter().find(|(f, _)| f.name == name).expect("used field has an argument");
        (*f, *v)
    }

    /// The memref access `a` goes through: a split reduction target's
    /// second argument for its adds and subs, else its field's.
    fn memref_of(&self, a: &Access) -> (&FieldDecl, Value) {
        let (f, v) = self.field(&a.field);
        match self.split.iter().find(|(n, _)| *n == a.field).filter(|_| a.kind.accumulates()) {
            Some((_, u)) => (f, *u),
            None => (f, v),
        }
    }

    /// Replaces the uses of `op`'s one result by `new`, a check group's base too.
    fn replace_result(&mut self, op: Op, new: Value) {
        let old = op.result(0);
        for g in self.groups.iter_mut().filter(|g| g.base == old) {
            g.base = new;
        }
        op.replace_all_uses(&[new]);
    }

    /// A new check of this function: its number (1-based, program order).
    fn new_check(&mut self, kind: CheckKind, loc: Loc) -> usize {
        self.checks.push(Check { kind, location: loc.file_line_col() });
        self.checks.len()
    }

    /// A new check, failed at `at`: its code and `detail` go to the status buffer.
    fn record_failure(&mut self, at: Cursor, kind: CheckKind, detail: Option<Value>, loc: Loc) {
        let number = self.new_check(kind, loc);
        self.write_failure(at, number, detail, loc);
    }

    /// Check `number` failed at `at`: its code goes to the status buffer (the
    /// first failed check's wins, `abi::status_code`), then `detail`.
    fn write_failure(&self, at: Cursor, number: usize, detail: Option<Value>, loc: Loc) {
        let status = self.status.expect("status buffer present when checks exist");
        let ctx = status.ty().ctx();
        let i64t = ctx.int(64);
        let code = ops::const_int(at, i64t, abi::status_code(number), loc);
        let slot0 = ops::const_index(at, 0, loc);
        at.build(
            OpBuilder::new("memref.atomic_rmw", loc)
                .operands(&[code, status, slot0])
                .results(&[i64t])
                .attr("kind", ctx.int_attr(i64t, RMW_MAXS)),
        );
        if let Some(d) = detail {
            let slot1 = ops::const_index(at, 1, loc);
            let d64 = at.build(OpBuilder::new("arith.index_cast", loc).operands(&[d]).results(&[i64t])).result(0);
            at.build(OpBuilder::new("memref.store", loc).operands(&[d64, status, slot1]));
        }
    }

    fn lower_assert(&mut self, op: Op) {
        let at = Cursor::before(op);
        let loc = op.loc();
        let cond = op.operand(0);
        let msg = op.attr("message").and_then(|a| a.as_string()).unwrap_or_default();
        let ctx = op.ctx();
        let t = ops::const_scalar(at, ctx.int(1), 1.0, loc);
        let failed = ops::build_binary(at, "arith.xori", cond, t, loc);
        let (_, then_b, else_b) = ops::build_if(at, failed, &[], loc);
        self.record_failure(Cursor::at_end(then_b), CheckKind::Assert { message: msg }, None, loc);
        ops::build_yield(then_b, &[], loc);
        ops::build_yield(else_b, &[], loc);
        // SAFETY: a ds.assert has no results or regions, and the caller visits
        // it once and does not use it after.
        unsafe { op.erase() };
    }

    fn lower_access(&mut self, op: Op, all_fields: &[FieldDecl]) {
        let a = Access::read(op).expect("access op");
        let sparse = self.trees.iter().position(|t| t.tree.components(&a.field).is_some());
        let (decl, memref) = match sparse {
            Some(_) => (all_fields.iter().find(|f| f.name == a.field).expect("a declared field"), None),
            None => {
                let (d, m) = self.memref_of(&a);
                (d, Some(m))
            }
        };
        let decl = decl.clone();
        let loc = op.loc();
        let mut at = Cursor::before(op);
        let proven = op.attr(PROVEN_DIMS).and_then(|p| p.as_i64_array()).unwrap_or_default();
        let unproven: Vec<usize> = (0..a.indices.len()).filter(|d| !proven.contains(&(*d as i64))).collect();
        let mut guard = None;
        let grouped: Vec<(usize, usize)> =
            unproven.iter().filter_map(|&d| Some((d, self.groups.iter().position(|g| g.has(op, d))?))).collect();
        if self.check_bounds && !unproven.is_empty() && grouped.len() == unproven.len() {
            self.lower_grouped(at, a, &decl, &grouped, loc);
            // SAFETY: as below: its uses were replaced; visited once.
            unsafe { op.erase() };
            return;
        }
        if self.check_bounds && !unproven.is_empty() {
            let (if_op, then_b, else_b) = self.bounds_guard(at, &a, &decl, &unproven, loc);
            guard = Some((if_op, then_b, else_b));
            at = Cursor::at_end(then_b);
        }
        let result = match (sparse, memref) {
            (Some(t), _) => self.emit_sparse(at, &a, &decl, t),
            (None, Some(m)) => self.emit_access(at, &a, &decl, m, loc),
            (None, None) => unreachable!("a dense field has its memref"),
        };
        if let Some((if_op, then_b, else_b)) = guard {
            let yielded: Vec<Value> = result.into_iter().collect();
            ops::build_yield(then_b, &yielded, loc);
            let zeros: Vec<Value> =
                yielded.iter().map(|v| ops::const_scalar(Cursor::at_end(else_b), v.ty(), 0.0, loc)).collect();
            ops::build_yield(else_b, &zeros, loc);
            if !yielded.is_empty() {
                self.replace_result(op, if_op.result(0));
            }
        } else if let Some(r) = result {
            self.replace_result(op, r);
        }
        // SAFETY: the access has no regions and its result's uses were replaced
        // above; `a` holds only its operands (defined elsewhere), and the caller
        // visits it once and does not use it after.
        unsafe { op.erase() };
    }

    /// An access whose unproven indices are all in check groups (`grouped`:
    /// dimension, group): each index is rebuilt from its group's safe base,
    /// and the access's effect is cancelled unless every group's test held
    /// (a load gives 0, an add or sub adds 0).
    fn lower_grouped(&mut self, at: Cursor, mut a: Access, decl: &FieldDecl, grouped: &[(usize, usize)], loc: Loc) {
        let mut all: Option<Value> = None;
        for &(d, g) in grouped {
            let (ok, safe) = self.group_test(at, g, loc);
            let offset = self.groups[g].members.iter().find(|m| m.op == a.op && m.dim == d).expect("a member").offset;
            a.indices[d] = self.groups[g].index_at(at, safe, offset, loc);
            all = Some(match all {
                None => ok,
                Some(prev) => ops::build_binary(at, "arith.andi", prev, ok, loc),
            });
        }
        let ok = all.expect("at least one group");
        if let Some(v) = a.value {
            let z = ops::const_scalar(at, v.ty(), 0.0, loc);
            a.value = Some(ops::build_select(at, ok, v, z, loc));
        }
        let (_, memref) = self.memref_of(&a);
        if let Some(r) = self.emit_access(at, &a, decl, memref, loc) {
            let z = ops::const_scalar(at, r.ty(), 0.0, loc);
            let value = ops::build_select(at, ok, r, z, loc);
            self.replace_result(a.op, value);
        }
    }

    /// Group `g`'s test and safe base, made at its first member (`at`):
    /// `ok = base in [-lowest, extent - highest)`, `safe = ok ? base :
    /// -lowest`. Without a branch (which would keep the loop around from
    /// being vectorized), the group's lowest and highest base so far are
    /// kept in two slots made at the function's entry, and tested once,
    /// when the function returns ([`Self::write_group_failures`]). The
    /// members' checks are numbered here.
    fn group_test(&mut self, at: Cursor, g: usize, loc: Loc) -> (Value, Value) {
        if let Some(made) = self.groups[g].made {
            return made.test;
        }
        let (base, extent) = (self.groups[g].base, self.groups[g].extent);
        let (lowest, _) = self.groups[g].offsets();
        let ok = self.groups[g].test(at, loc);
        let safe = ops::build_select(at, ok, base, ops::const_int(at, base.ty(), -lowest, loc), loc);
        let members = self.groups[g].members.clone();
        for m in &members {
            let kind = CheckKind::Bounds { access: m.kind, field: m.field.clone(), dim: m.dim, extent };
            let number = self.new_check(kind, m.loc);
            self.groups[g].numbers.push(number);
        }
        let slot = |start: i64| {
            let entry = ops::func_body(self.func);
            let slot = ops::build_alloca(entry, base.ty(), "", loc);
            let alloca = slot.defining_op().expect("an alloca");
            let after = alloca.next().map_or(Cursor::at_end(entry), Cursor::before);
            after.build(OpBuilder::new("memref.store", loc).operands(&[ops::const_int(after, base.ty(), start, loc), slot]));
            slot
        };
        let width = base.ty().width().expect("an integer base");
        let (min_slot, max_slot) = (slot((1i64 << (width - 1)) - 1), slot(-(1i64 << (width - 1))));
        for (slot, op) in [(min_slot, "arith.minsi"), (max_slot, "arith.maxsi")] {
            let old = at.build(OpBuilder::new("memref.load", loc).operands(&[slot]).results(&[base.ty()])).result(0);
            let new = ops::build_binary(at, op, old, base, loc);
            at.build(OpBuilder::new("memref.store", loc).operands(&[new, slot]));
        }
        self.groups[g].made = Some(MadeGroup { test: (ok, safe), range: (min_slot, max_slot) });
        (ok, safe)
    }

    /// Before `func` returns: each group whose lowest base was below
    /// `-lowest` fails the check of its first member with the lowest offset,
    /// at that base's index, and one whose highest base reached `extent -
    /// highest` the check of its first member with the highest offset (of
    /// two, the first check is written last, so that the index kept is the
    /// one of the check whose code the status keeps).
    fn write_group_failures(&self) {
        let ret = ops::func_body(self.func).terminator().expect("a function ends in a return");
        let (at, loc) = (Cursor::before(ret), ret.loc());
        let i64t = loc.ctx().int(64);
        for group in &self.groups {
            let Some(made) = &group.made else { continue };
            let (lowest, highest) = group.offsets();
            let first_at = |offset: i64| {
                let k = group.members.iter().position(|m| m.offset == offset).expect("a member at each end");
                (group.numbers[k], group.members[k].loc)
            };
            let low = (made.range.0, lowest, ops::CmpI::Slt, -lowest, first_at(lowest));
            let high = (made.range.1, highest, ops::CmpI::Sge, group.extent - highest, first_at(highest));
            let mut ends = [low, high];
            ends.sort_by_key(|e| std::cmp::Reverse((e.4).0));
            for (slot, offset, pred, bound, (number, member_loc)) in ends {
                let base = at.build(OpBuilder::new("memref.load", loc).operands(&[slot]).results(&[group.base.ty()])).result(0);
                let wide = at.build(OpBuilder::new("arith.extsi", loc).operands(&[base]).results(&[i64t])).result(0);
                let failed = ops::build_cmpi(at, pred, wide, ops::const_int(at, i64t, bound, loc), loc);
                let (_, then_b, else_b) = ops::build_if(at, failed, &[], loc);
                let t = Cursor::at_end(then_b);
                let index = group.index_at(t, base, offset, loc);
                self.write_failure(t, number, Some(index), member_loc);
                ops::build_yield(then_b, &[], loc);
                ops::build_yield(else_b, &[], loc);
            }
        }
    }

    /// `scf.if (all indices in bounds)`; the else block records which index
    /// failed. Returns the if op and its blocks.
    /// The check of the dimensions `dims` of an access (the others are
    /// proven in bounds): an `scf.if` running the access when every index is
    /// in bounds, else recording the failed check.
    fn bounds_guard(&mut self, at: Cursor, a: &Access, decl: &FieldDecl, dims: &[usize], loc: Loc) -> (Op, Block, Block) {
        let ctx = decl.elem.ctx();
        let mut all: Option<Value> = None;
        let mut conds = Vec::new();
        for &d in dims {
            let extent = ops::const_index(at, decl.shape[d], loc);
            let ok = ops::build_cmpi(at, ops::CmpI::Ult, a.indices[d], extent, loc);
            conds.push((d, ok));
            all = Some(match all {
                None => ok,
                Some(prev) => ops::build_binary(at, "arith.andi", prev, ok, loc),
            });
        }
        let cond = all.expect("at least one index");
        let results: Vec<Type> = match a.kind {
            AccessKind::Load => vec![decl.elem],
            AccessKind::IsActive => vec![ctx.int(1)],
            AccessKind::Append | AccessKind::Length => vec![ctx.int(32)],
            _ => vec![],
        };
        let (if_op, then_b, else_b) = ops::build_if(at, cond, &results, loc);
        let t = ops::const_scalar(Cursor::at_end(else_b), ctx.int(1), 1.0, loc);
        for (d, ok) in conds {
            let e = Cursor::at_end(else_b);
            let bad = ops::build_binary(e, "arith.xori", ok, t, loc);
            let (_, bad_then, bad_else) = ops::build_if(e, bad, &[], loc);
            let check =
                CheckKind::Bounds { access: a.kind, field: a.field.clone(), dim: d, extent: decl.shape[d] };
            self.record_failure(Cursor::at_end(bad_then), check, Some(a.indices[d]), loc);
            ops::build_yield(bad_then, &[], loc);
            ops::build_yield(bad_else, &[], loc);
        }
        (if_op, then_b, else_b)
    }

    /// One access of a field of sparse tree `tree` (`crate::sparse`); a pool
    /// found exhausted is a failed check of this function.
    fn emit_sparse(&mut self, at: Cursor, a: &Access, decl: &FieldDecl, tree: usize) -> Option<Value> {
        let plan = sparse::AccessPlan {
            access: a,
            elem: decl.elem,
            field_shape: &decl.shape,
            adjoint: self.adjoints.contains(&a.field),
            adjoints: &self.adjoints,
            plain: self.owned.contains(&a.op),
        };
        let mut failures = Vec::new();
        let result = sparse::emit_access(at, &plan, &self.trees[tree], &mut |c, loc, f| failures.push((c, loc, f)));
        for (c, loc, f) in failures {
            let kind = match f {
                sparse::Failure::PoolExhausted { node, capacity } => CheckKind::PoolExhausted { node, capacity, field: a.field.clone() },
                sparse::Failure::ListFull { node, capacity } => CheckKind::ListFull { node, capacity, field: a.field.clone() },
            };
            self.record_failure(c, kind, None, loc);
        }
        result
    }

    /// The memref op(s) for one access; returns the loaded value for loads.
    fn emit_access(&self, at: Cursor, a: &Access, decl: &FieldDecl, memref: Value, loc: Loc) -> Option<Value> {
        let elem = decl.elem;
        let ctx = elem.ctx();
        let mut operands = vec![memref];
        operands.extend(&a.indices);
        let rmw = |value: Value, kind: i64| {
            let mut o = vec![value];
            o.extend(&operands);
            at.build(
                OpBuilder::new("memref.atomic_rmw", loc)
                    .operands(&o)
                    .results(&[elem])
                    .attr("kind", ctx.int_attr(ctx.int(64), kind)),
            );
        };
        let float = elem.is_float();
        if self.owned.contains(&a.op) {
            // The iteration's own element: load, add (or subtract), store.
            let old = at.build(OpBuilder::new("memref.load", loc).operands(&operands).results(&[elem])).result(0);
            let op = match (a.kind == AccessKind::AtomicAdd, float) {
                (true, true) => "arith.addf",
                (true, false) => "arith.addi",
                (false, true) => "arith.subf",
                (false, false) => "arith.subi",
            };
            let new = ops::build_binary(at, op, old, a.value.expect("value"), loc);
            let mut o = vec![new];
            o.extend(&operands);
            at.build(OpBuilder::new("memref.store", loc).operands(&o));
            return None;
        }
        match a.kind {
            AccessKind::Load => {
                return Some(at.build(OpBuilder::new("memref.load", loc).operands(&operands).results(&[elem])).result(0));
            }
            // Every cell of a dense field is active; ds-verify rejects
            // activate and deactivate of one before this pass runs.
            AccessKind::IsActive => return Some(ops::const_scalar(at, ctx.int(1), 1.0, loc)),
            AccessKind::Activate | AccessKind::Deactivate => {}
            AccessKind::Append | AccessKind::Length => unreachable!("ds-verify rejects lists of a field not under a dynamic node"),
            AccessKind::Store => {
                let mut o = vec![a.value.expect("stored value")];
                o.extend(&operands);
                at.build(OpBuilder::new("memref.store", loc).operands(&o));
            }
            AccessKind::AtomicAdd => rmw(a.value.expect("value"), if float { RMW_ADDF } else { RMW_ADDI }),
            AccessKind::AtomicSub => {
                let v = a.value.expect("value");
                let neg = if float {
                    at.build(OpBuilder::new("arith.negf", loc).operands(&[v]).results(&[elem])).result(0)
                } else {
                    let zero = ops::const_scalar(at, elem, 0.0, loc);
                    ops::build_binary(at, "arith.subi", zero, v, loc)
                };
                rmw(neg, if float { RMW_ADDF } else { RMW_ADDI })
            }
            AccessKind::AtomicMin => rmw(a.value.expect("value"), if float { RMW_MINIMUMF } else { RMW_MINS }),
            AccessKind::AtomicMax => rmw(a.value.expect("value"), if float { RMW_MAXIMUMF } else { RMW_MAXS }),
        }
        None
    }
}

/// The memref type of hidden buffer `name` of a sparse tree: 1-D, i32 or
/// the element type of the field whose data it holds.
fn hidden_type(ctx: ds_dialects::ir::Ctx, storage: &Storage, fields: &[FieldDecl], name: &str) -> Type {
    let h = storage.hidden(name).expect("a hidden buffer of the storage");
    let elem = match &h.elem {
        ops::sparse::HiddenElem::I32 => "i32".to_string(),
        ops::sparse::HiddenElem::DataOf(f) => fields.iter().find(|d| &d.name == f).map_or("i32".into(), |d| d.elem.to_string()),
    };
    ctx.parse_type(&format!("memref<{}x{elem}>", h.elements)).expect("memref type")
}

/// Replaces a `ds.struct_for` over a sparse field by serial loops over the
/// tree's blocks and their active cells (`crate::sparse::struct_for_block`).
fn expand_sparse_struct_for(op: Op, tree: &ops::sparse::SparseTree, decl: &FieldDecl) {
    let at = Cursor::before(op);
    let loc = op.loc();
    let (lo, hi, one) = (ops::const_index(at, 0, loc), ops::const_index(at, sparse::struct_for_range(tree), loc), ops::const_index(at, 1, loc));
    let (_, body, y) = ops::build_scf_for(at, lo, hi, one, loc);
    let old = op.region(0).first_block().expect("loop body");
    let bound = &decl.shape[..old.num_args().min(decl.shape.len())];
    let (indices, end) = sparse::struct_for_block(Cursor::before(y), body.arg(0), tree, &decl.name, decl.shape.len(), bound, loc);
    for (arg, idx) in old.args().into_iter().zip(indices) {
        arg.replace_all_uses_with(idx);
    }
    for inner in old.ops() {
        if inner.name() != ops::BODY_TERMINATOR {
            inner.move_before(end);
        }
    }
    // SAFETY: the body's ops were moved out and its arguments' uses replaced;
    // this frees the loop, its block and terminator, and the caller's walk
    // visits no op of it after.
    unsafe { op.erase() };
}

/// `[0, extent)` in each dimension of the field a `ds.struct_for` runs over,
/// as constants before the loop.
fn struct_for_bounds(op: Op, fields: &[FieldDecl]) -> Vec<(Value, Value)> {
    let at = Cursor::before(op);
    let loc = op.loc();
    let field = op.attr("field").and_then(|a| a.as_symbol()).unwrap_or_default();
    let shape = fields.iter().find(|f| f.name == field).map(|f| f.shape.clone()).unwrap_or_default();
    let args = op.region(0).first_block().map_or(0, |b| b.num_args());
    shape.iter().take(args).map(|&n| (ops::const_index(at, 0, loc), ops::const_index(at, n, loc))).collect()
}

/// A ds loop left in a function runs serially as nested `scf.for` loops, one
/// per `(lower, upper)` bound and body argument; with no bounds (a struct_for
/// over a 0-D field) its body runs once in place.
fn lower_loop(op: Op, bounds: Vec<(Value, Value)>) {
    let at = Cursor::before(op);
    let loc = op.loc();
    let old = op.region(0).first_block().expect("loop body");
    let one = ops::const_index(at, 1, loc);
    let mut cursor = at;
    let mut body_end = op;
    for ((lo, hi), arg) in bounds.into_iter().zip(old.args()) {
        let (_, body, y) = ops::build_scf_for(cursor, lo, hi, one, loc);
        arg.replace_all_uses_with(body.arg(0));
        cursor = Cursor::before(y);
        body_end = y;
    }
    for inner in old.ops() {
        if inner.name() != ops::BODY_TERMINATOR {
            inner.move_before(body_end);
        }
    }
    // SAFETY: the body's ops were moved out and the uses of its arguments
    // replaced, so this frees only the loop, its block and its terminator; the
    // caller lists ds ops only (not the terminator) and visits this loop once.
    unsafe { op.erase() };
}

/// Bounds checks made once for several accesses: in one block, the indices
/// `index_cast(base + offset)` of an i32 `base` and constant offsets (a
/// stencil's `(b0 + i as i32) as usize`) in one dimension of fields of one
/// extent, on dense loads, adds and subs (which can be cancelled without a
/// branch). One test of `base` covers them all: every member is in bounds
/// iff `base` is in `[-lowest, extent - highest)`. A block that scatters is
/// first versioned on its groups' tests ([`version_scattering_groups`]);
/// where groups remain (blocks of loads, the checked copies), the test is
/// made, and the members' checks numbered, at the group's first member;
/// when it fails, every member is cancelled, and the failed members' checks
/// are recorded when the function returns
/// ([`FuncLowering::write_group_failures`]).
struct CheckGroup {
    block: Block,
    base: Value,
    extent: i64,
    members: Vec<GroupMember>,
    /// The members' check numbers, once made.
    numbers: Vec<usize>,
    /// The test, once made ([`FuncLowering::group_test`]).
    made: Option<MadeGroup>,
}

/// A group's test as made: its `ok` and safe base, and the slots keeping its
/// lowest and highest base.
#[derive(Clone, Copy)]
struct MadeGroup {
    test: (Value, Value),
    range: (Value, Value),
}

#[derive(Clone)]
struct GroupMember {
    op: Op,
    dim: usize,
    offset: i64,
    kind: AccessKind,
    field: String,
    loc: Loc,
}

impl CheckGroup {
    fn has(&self, op: Op, dim: usize) -> bool {
        self.members.iter().any(|m| m.op == op && m.dim == dim)
    }

    /// The lowest and highest member offsets.
    fn offsets(&self) -> (i64, i64) {
        let lowest = self.members.iter().map(|m| m.offset).min().unwrap_or(0);
        let highest = self.members.iter().map(|m| m.offset).max().unwrap_or(0);
        (lowest, highest)
    }

    /// `base in [-lowest, extent - highest)` (signed, widened to i64): every
    /// member is in bounds.
    fn test(&self, at: Cursor, loc: Loc) -> Value {
        let i64t = loc.ctx().int(64);
        let (lowest, highest) = self.offsets();
        let wide = at.build(OpBuilder::new("arith.extsi", loc).operands(&[self.base]).results(&[i64t])).result(0);
        let from = ops::build_cmpi(at, ops::CmpI::Sge, wide, ops::const_int(at, i64t, -lowest, loc), loc);
        let to = ops::build_cmpi(at, ops::CmpI::Slt, wide, ops::const_int(at, i64t, self.extent - highest, loc), loc);
        ops::build_binary(at, "arith.andi", from, to, loc)
    }

    /// A member's index from `base` (the group's, its safe base or a decoded
    /// one) and its offset, as the member computes it: i32 add, then cast.
    fn index_at(&self, at: Cursor, base: Value, offset: i64, loc: Loc) -> Value {
        let sum = ops::build_binary(at, "arith.addi", base, ops::const_int(at, base.ty(), offset, loc), loc);
        at.build(OpBuilder::new("arith.index_cast", loc).operands(&[sum]).results(&[loc.ctx().index()])).result(0)
    }
}

/// A dimension of an access with its index's base and offset.
type DimBase = (usize, Value, i64);

/// An index as `index_cast(base + offset)` of an i32 `base` plus constants.
fn base_and_offset(index: Value) -> Option<(Value, i64)> {
    let cast = index.defining_op().filter(|d| d.name() == "arith.index_cast" && d.operand(0).ty().width() == Some(32))?;
    let (base, offset) = ops::index_offset(cast.operand(0));
    Some((base?, offset))
}

/// The check groups of `func`'s dense accesses ([`CheckGroup`]) with at
/// least two members whose offsets span less than the extent; accesses in
/// a versioned loop's fast copy check only their unproven dimensions.
fn check_groups(func: Op, dense: &[&FieldDecl]) -> Vec<CheckGroup> {
    // Each candidate access with its unproven dimensions' (dimension, base, offset).
    let mut candidates: Vec<(Access, Vec<DimBase>)> = Vec::new();
    for op in func.walk() {
        let Some(a) = Access::read(op) else { continue };
        if !dense.iter().any(|f| f.name == a.field)
            || !matches!(a.kind, AccessKind::Load | AccessKind::AtomicAdd | AccessKind::AtomicSub)
        {
            continue;
        }
        let proven = op.attr(PROVEN_DIMS).and_then(|p| p.as_i64_array()).unwrap_or_default();
        let unproven = (0..a.indices.len()).filter(|d| !proven.contains(&(*d as i64)));
        let dims: Option<Vec<DimBase>> = unproven.map(|d| base_and_offset(a.indices[d]).map(|(b, o)| (d, b, o))).collect();
        if let Some(dims) = dims.filter(|d| !d.is_empty()) {
            candidates.push((a, dims));
        }
    }
    // Group them; drop small groups and the accesses with a dimension in
    // none (they keep their own checks), until every access left is covered.
    loop {
        let mut groups: Vec<CheckGroup> = Vec::new();
        for (a, dims) in &candidates {
            let op = &a.op;
            let decl = dense.iter().find(|f| f.name == a.field).expect("a dense field");
            let block = op.block().expect("an access in a block");
            for &(dim, base, offset) in dims {
                let extent = decl.shape[dim];
                let member = GroupMember { op: *op, dim, offset, kind: a.kind, field: a.field.clone(), loc: op.loc() };
                match groups.iter_mut().find(|g| g.block == block && g.base == base && g.extent == extent) {
                    Some(g) => g.members.push(member),
                    None => groups.push(CheckGroup { block, base, extent, members: vec![member], numbers: Vec::new(), made: None }),
                }
            }
        }
        groups.retain(|g| {
            let (lowest, highest) = g.offsets();
            g.members.len() >= 2 && highest.checked_sub(lowest).is_some_and(|span| span < g.extent)
        });
        let before = candidates.len();
        candidates.retain(|(a, dims)| dims.iter().all(|&(d, _, _)| groups.iter().any(|g| g.has(a.op, d))));
        if candidates.len() == before {
            return groups;
        }
    }
}

/// Versions the rest of each block whose check groups scatter (have an add
/// or sub member: such a loop does not vectorize, and a select on every
/// member's address would keep its loads from starting early): `scf.if (every
/// group's base in range) { the ops, group dimensions unchecked } else { a
/// copy, checked }`, made before the block's first member, the values the
/// block's terminator uses yielded. A block of loads only keeps the
/// branch-free groups, which vectorize.
fn version_scattering_groups(func: Op, dense: &[&FieldDecl]) {
    let groups = check_groups(func, dense);
    let mut blocks: Vec<Block> = Vec::new();
    for g in groups.iter().filter(|g| g.members.iter().any(|m| m.kind != AccessKind::Load)) {
        if !blocks.contains(&g.block) {
            blocks.push(g.block);
        }
    }
    for block in blocks {
        let ops = block.ops();
        let member = |o: &Op| groups.iter().any(|g| g.block == block && g.members.iter().any(|m| m.op == *o));
        let Some(first) = ops.iter().position(member) else { continue };
        // The groups whose base is known before the first member.
        let before = |v: Value| match v.defining_op() {
            Some(d) if d.block() == Some(block) => ops.iter().position(|o| *o == d).is_some_and(|p| p < first),
            _ => true,
        };
        let versioned: Vec<&CheckGroup> = groups.iter().filter(|g| g.block == block && before(g.base)).collect();
        let Some(terminator) = block.terminator() else { continue };
        if versioned.is_empty() {
            continue;
        }
        let (at, loc) = (Cursor::before(ops[first]), ops[first].loc());
        let tests: Vec<Value> = versioned.iter().map(|g| g.test(at, loc)).collect();
        let ok = tests.into_iter().reduce(|a, b| ops::build_binary(at, "arith.andi", a, b, loc)).expect("a group");
        let moved: Vec<Op> = ops[first..].iter().copied().filter(|o| *o != terminator).collect();
        let mut carried: Vec<Value> = Vec::new();
        for v in terminator.operands() {
            if v.defining_op().is_some_and(|d| moved.contains(&d)) && !carried.contains(&v) {
                carried.push(v);
            }
        }
        let types: Vec<Type> = carried.iter().map(|v| v.ty()).collect();
        let (if_op, fast, checked) = ops::build_if(at, ok, &types, loc);
        let fast_end = ops::build_yield(fast, &carried, loc);
        for op in &moved {
            op.move_before(fast_end);
        }
        for (i, v) in terminator.operands().into_iter().enumerate() {
            if let Some(k) = carried.iter().position(|c| *c == v) {
                terminator.set_operand(i, if_op.result(k));
            }
        }
        // The checked copy: the fast block's ops, cloned with the if.
        let copy = if_op.deep_clone();
        let anchor = ops::build_yield(checked, &[], loc);
        for op in copy.region(0).first_block().expect("the copy's then block").ops() {
            op.move_before(anchor);
        }
        // SAFETY: the anchor has no results and no handle to it is kept; the
        // copy is detached, its ops were moved out, and it is not used after.
        unsafe {
            anchor.erase();
            copy.erase();
        }
        // In the fast block the groups' dimensions are in bounds.
        let ctx = func.ctx();
        for g in &versioned {
            for m in &g.members {
                let mut dims = m.op.attr(PROVEN_DIMS).and_then(|p| p.as_i64_array()).unwrap_or_default();
                if !dims.contains(&(m.dim as i64)) {
                    dims.push(m.dim as i64);
                }
                m.op.set_attr(PROVEN_DIMS, ctx.i64_array_attr(&dims));
            }
        }
    }
}

/// On an access in the fast copy of a versioned task loop: the dimensions
/// whose index is proven in bounds before the loop runs.
const PROVEN_DIMS: &str = "ds.in_bounds_dims";

/// Hoists bounds checks out of a task loop (`scf.for` over `[lo, hi)`): an
/// index that is the variable of the task loop or of a serial loop inside
/// it whose bounds are known before it, plus a constant; a value defined
/// outside the loop plus a constant; or a constant, is in bounds for every
/// iteration when a test on those bounds or that value holds, made once
/// before the loop. The loop becomes `scf.if (tests) { copy with those dimensions
/// unchecked } else { loop, every index checked }`; indices read from fields
/// (`x[a[i]]`) stay checked in both.
fn version_task_loop(task_loop: Op, fields: &[FieldDecl]) {
    let at = Cursor::before(task_loop);
    let loc = task_loop.loc();
    let accesses: Vec<Access> = task_loop.walk().into_iter().filter_map(Access::read).collect();
    let mut tests = Vec::new();
    let mut proven: Vec<Vec<i64>> = Vec::new();
    for a in &accesses {
        let Some(decl) = fields.iter().find(|f| f.name == a.field) else {
            proven.push(Vec::new());
            continue;
        };
        let mut dims = Vec::new();
        for (d, &index) in a.indices.iter().enumerate() {
            let (base, offset) = ops::index_offset(index);
            // index = base + offset is in [0, extent) iff base is in [lowest, end).
            let (Some(lowest), Some(end)) = (offset.checked_neg(), decl.shape[d].checked_sub(offset)) else { continue };
            let test = match base {
                None if (0..decl.shape[d]).contains(&offset) => None,
                None => continue,
                Some(b) if defined_outside(b, task_loop) => Some(value_within(at, b, lowest, end, loc)),
                Some(b) => match loop_range_before(b, task_loop, at, loc) {
                    Some((lo, hi)) => Some(range_within(at, lo, hi, lowest, end, loc)),
                    None => continue,
                },
            };
            tests.extend(test);
            dims.push(d as i64);
        }
        proven.push(dims);
    }
    if proven.iter().all(|d| d.is_empty()) {
        return;
    }
    let ctx = task_loop.ctx();
    let all = tests.into_iter().reduce(|a, b| ops::build_binary(at, "arith.andi", a, b, loc));
    let cond = all.unwrap_or_else(|| ops::const_scalar(at, ctx.int(1), 1.0, loc));
    let (_, fast, checked) = ops::build_if(at, cond, &[], loc);
    let fast_end = ops::build_yield(fast, &[], loc);
    let checked_end = ops::build_yield(checked, &[], loc);
    let copy = fast.insert_before(fast_end, task_loop.deep_clone());
    task_loop.move_before(checked_end);
    for (op, dims) in copy.walk().into_iter().filter(|op| Access::read(*op).is_some()).zip(proven) {
        if !dims.is_empty() {
            op.set_attr(PROVEN_DIMS, ctx.i64_array_attr(&dims));
        }
    }
}

/// When `v` is the variable of an `scf.for` at or inside `task_loop` whose
/// bounds are known before `task_loop` (defined outside it, or constants,
/// materialized at `at`), those bounds: `v` takes values in `[lo, hi)`.
fn loop_range_before(v: Value, task_loop: Op, at: Cursor, loc: Loc) -> Option<(Value, Value)> {
    let (block, 0) = v.block_arg()? else { return None };
    let l = block.parent_op().filter(|l| l.name() == "scf.for" && (*l == task_loop || l.is_inside(task_loop)))?;
    let before = |bound: Value| match ops::index_offset(bound) {
        _ if defined_outside(bound, task_loop) => Some(bound),
        (None, c) => Some(ops::const_index(at, c, loc)),
        (Some(_), _) => None,
    };
    Some((before(l.operand(0))?, before(l.operand(1))?))
}

/// Whether `v` is defined outside `op` (and so before it: `op` uses it).
fn defined_outside(v: Value, op: Op) -> bool {
    let owner = match v.block_arg() {
        Some((block, _)) => block.parent_op(),
        None => v.defining_op(),
    };
    owner.is_some_and(|o| o != op && !o.is_inside(op))
}

/// `hi <= lo || (lo >= lowest && hi <= end)`: every value of `[lo, hi)` is in `[lowest, end)`.
fn range_within(at: Cursor, lo: Value, hi: Value, lowest: i64, end: i64, loc: Loc) -> Value {
    let (lowest, end) = (ops::const_index(at, lowest, loc), ops::const_index(at, end, loc));
    let empty = ops::build_cmpi(at, ops::CmpI::Sle, hi, lo, loc);
    let from = ops::build_cmpi(at, ops::CmpI::Sge, lo, lowest, loc);
    let to = ops::build_cmpi(at, ops::CmpI::Sle, hi, end, loc);
    let inside = ops::build_binary(at, "arith.andi", from, to, loc);
    ops::build_binary(at, "arith.ori", empty, inside, loc)
}

/// `lowest <= v < end`.
fn value_within(at: Cursor, v: Value, lowest: i64, end: i64, loc: Loc) -> Value {
    let (lowest, end) = (ops::const_index(at, lowest, loc), ops::const_index(at, end, loc));
    let from = ops::build_cmpi(at, ops::CmpI::Sge, v, lowest, loc);
    let to = ops::build_cmpi(at, ops::CmpI::Slt, v, end, loc);
    ops::build_binary(at, "arith.andi", from, to, loc)
}
