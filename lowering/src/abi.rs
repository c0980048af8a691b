//! Names shared by the lowering and the runtime: how task functions are marked,
//! and in which order their arguments come.
//!
//! A task function's arguments are, in order: `begin, end` (parallel tasks
//! only), the kernel's parameters, one memref per field in `ds.fields` (the
//! base of the buffer holding the field: the field's own, or its layout
//! node's, whose offset and strides the memref type holds, from
//! `ds_dialects::ops::layout`), and,
//! when `ds.status_checks` is present, the status buffer (`memref<2xi64>`):
//! slot 0 receives the 1-based number of the failed check (the highest one
//! wins), slot 1 a detail (the offending index for bounds checks).

use ds_dialects::ir::{Attr, Block, Ctx, FileLineCol, Op};
use ds_dialects::ops::{AccessKind, DsOp};

/// On a task: the kernel it belongs to.
pub const TASK_OF: &str = ds_dialects::ops::TASK_OF_ATTR;
/// On a task: its position among the kernel's tasks.
pub const TASK_INDEX: &str = "ds.task_index";
/// On a task: `"parallel"` or `"serial"`.
pub const TASK_KIND: &str = "ds.task_kind";
/// On a parallel task's serial twin `TASK__serial` (every update plain, no
/// atomics): the task. The CPU runtime calls the twin when one thread runs
/// the whole range; the GPU has no use for it.
pub const SERIAL_OF: &str = "ds.serial_of";
/// The suffix of a serial twin's name.
pub const SERIAL_SUFFIX: &str = "__serial";
/// On a range function: the task whose range it computes.
pub const RANGE_OF: &str = "ds.range_of";
/// On a parallel task: the estimated ops one iteration of its loop runs
/// ([`work`]), from which the runtime decides how finely to split it.
pub const TASK_WORK: &str = "ds.task_work";
/// On a parallel task: the estimated atomic updates one iteration runs
/// ([`atomic_updates`]), which make running it on several threads costlier
/// than its serial twin on one.
pub const TASK_ATOMICS: &str = "ds.task_atomics";
/// On a parallel task whose updates are banded: the most iterations apart
/// two of its iterations can be and update one element (`ops::update_band`).
/// Its serial twin may then run on several threads at once, on chunks of
/// more iterations than this, all even chunks and then all odd ones.
pub const TASK_BAND: &str = "ds.task_band";
/// On a parallel task with shared (atomic) updates, when every field it
/// updates that way is only added to and subtracted from in the task (a
/// reduction target), or loaded and stored only where none of those lands:
/// the positions in [`FIELDS`] of the arguments the updates go through (a
/// field also loaded or stored gets a second argument for its updates). The
/// runtime may run the serial twin on several threads, each passing a private
/// copy of these fields there, and sum the copies into the fields after.
pub const TASK_PRIVATE: &str = "ds.task_private";
/// On the `scf.for` of a parallel task: the loop the runtime splits.
pub const TASK_LOOP: &str = "ds.task_loop";
/// On a parallel task whose loop body is one serial loop over bounds the
/// same for every iteration, whose iterations touch no element another
/// writes (a perfect nest, Taichi's `for i, j in ti.ndrange`): the GPU runs
/// one thread per (i, j) instead of per i (`convert-ds-to-gpu`).
pub const TASK_NEST: &str = "ds.task_nest";
/// On the `scf.for` over the cells of a block of a `ds.struct_for` over a
/// sparse tree (`crate::sparse::struct_for_block`: the first level below
/// the one the task runs over, when its bound is a constant): the cells are
/// independent, and the GPU may run one thread per cell (`convert-ds-to-gpu`).
pub const CELL_LOOP: &str = "ds.cell_loop";
/// On a GPU kernel whose iterations are the cells of the blocks of a
/// `ds.struct_for`'s list (a flattened [`CELL_LOOP`]): the cells of a block,
/// so the runtime launches that many threads per listed block.
pub const TASK_CELLS: &str = "ds.task_cells";
/// On a function using fields: the field names of its memref arguments.
pub const FIELDS: &str = "ds.fields";
/// On a function with run-time checks: each check ([`Check`]), numbered from 1.
pub const STATUS_CHECKS: &str = "ds.status_checks";
/// Slots of the status buffer.
pub const STATUS_SLOTS: i64 = 2;

/// The status code of failed check number `check` (from 1): the first slot
/// keeps the atomic maximum of the codes, and the codes fall as the numbers
/// rise, so of several failed checks the first in program order is
/// reported (for a NaN, the op that made it rather than the ones it
/// reached). 0 is no failure.
pub fn status_code(check: usize) -> i64 {
    i64::MAX - check as i64 + 1
}

/// The check number of a non-zero status code.
pub fn failed_check(code: i64) -> usize {
    (i64::MAX - code + 1) as usize
}

/// What a run-time check tests; the runtime turns a failed one into a typed error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Index `dim` of a field access against the field's extent there.
    Bounds { access: AccessKind, field: String, dim: usize, extent: i64 },
    /// A `ds.assert` (also the autodiff stack's capacity check).
    Assert { message: String },
    /// A write to `field` needed a block of the pointer node `node`'s pool,
    /// which had none left of its `capacity` (`crate::sparse`).
    PoolExhausted { node: String, capacity: i64, field: String },
    /// A `ds.append` to `field` found its list (of dynamic node `node`) full
    /// at its `capacity` cells.
    ListFull { node: String, capacity: i64, field: String },
}

/// One run-time check of a task function: what it tests and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    pub location: Option<FileLineCol>,
}

impl Check {
    /// The check as an element of `ds.status_checks`: an array of strings,
    /// `[kind, file, line, col, details...]`.
    pub fn to_attr(&self, ctx: Ctx) -> Attr {
        let (file, line, col) = match &self.location {
            Some(p) => (p.file.clone(), p.line.to_string(), p.col.to_string()),
            None => (String::new(), "0".into(), "0".into()),
        };
        let mut parts = match &self.kind {
            CheckKind::Bounds { .. } => vec!["bounds".to_string()],
            CheckKind::Assert { .. } => vec!["assert".to_string()],
            CheckKind::PoolExhausted { .. } => vec!["pool".to_string()],
            CheckKind::ListFull { .. } => vec!["list".to_string()],
        };
        parts.extend([file, line, col]);
        match &self.kind {
            CheckKind::Bounds { access, field, dim, extent } => {
                parts.extend([access.name().to_string(), field.clone(), dim.to_string(), extent.to_string()])
            }
            CheckKind::Assert { message } => parts.push(message.clone()),
            CheckKind::PoolExhausted { node, capacity, field } | CheckKind::ListFull { node, capacity, field } => {
                parts.extend([node.clone(), capacity.to_string(), field.clone()])
            }
        }
        ctx.array_attr(&parts.iter().map(|p| ctx.string_attr(p)).collect::<Vec<_>>())
    }

    /// Reads back what [`Check::to_attr`] wrote.
    pub fn from_attr(attr: Attr) -> Option<Check> {
        let parts: Vec<String> = attr.as_array()?.into_iter().map(|a| a.as_string()).collect::<Option<_>>()?;
        let line: u32 = parts.get(2)?.parse().ok()?;
        let col: u32 = parts.get(3)?.parse().ok()?;
        let location = (line > 0).then(|| FileLineCol { file: parts[1].clone(), line, col });
        let kind = match (parts[0].as_str(), &parts[4..]) {
            ("bounds", [access, field, dim, extent]) => CheckKind::Bounds {
                access: DsOp::named(access).and_then(AccessKind::of)?,
                field: field.clone(),
                dim: dim.parse().ok()?,
                extent: extent.parse().ok()?,
            },
            ("assert", [message]) => CheckKind::Assert { message: message.clone() },
            ("pool", [node, capacity, field]) => {
                CheckKind::PoolExhausted { node: node.clone(), capacity: capacity.parse().ok()?, field: field.clone() }
            }
            ("list", [node, capacity, field]) => {
                CheckKind::ListFull { node: node.clone(), capacity: capacity.parse().ok()?, field: field.clone() }
            }
            _ => return None,
        };
        Some(Check { kind, location })
    }
}

/// An estimate of the ops the ops of `block` run: each op counts one (a
/// `math` function, sin or exp, 16), plus what its regions run; an `scf.for`
/// with constant bounds runs its body trip-count times, one with bounds known
/// only at run time 16 times.
pub fn work(block: Block) -> i64 {
    count(block, &|op| if op.name().starts_with("math.") { 16 } else { 1 })
}

/// The `memref.atomic_rmw` ops the ops of `block` run, counted as [`work`] counts.
pub fn atomic_updates(block: Block) -> i64 {
    count(block, &|op| i64::from(op.name() == "memref.atomic_rmw"))
}

/// The sum of `weight` over the ops of `block`, each as many times as it runs.
fn count(block: Block, weight: &dyn Fn(Op) -> i64) -> i64 {
    block.ops().into_iter().fold(0i64, |total, op| {
        let inner = op.regions().into_iter().flat_map(|r| r.blocks()).fold(0i64, |n, b| n.saturating_add(count(b, weight)));
        let times = if op.name() == "scf.for" { constant_trip_count(op).unwrap_or(16) } else { 1 };
        total.saturating_add(weight(op)).saturating_add(inner.saturating_mul(times))
    })
}

/// The trip count of an `scf.for` whose bounds and step are constants.
pub(crate) fn constant_trip_count(op: Op) -> Option<i64> {
    let constant = |i: usize| ds_dialects::ops::index_offset(op.operand(i)).0.is_none().then(|| ds_dialects::ops::index_offset(op.operand(i)).1);
    let (lo, hi, step) = (constant(0)?, constant(1)?, constant(2)?);
    (step > 0).then(|| (hi - lo).max(0) / step + i64::from((hi - lo).max(0) % step != 0))
}
