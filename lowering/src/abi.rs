//! Names shared by the lowering and the runtime: how task functions are marked,
//! and in which order their arguments come.
//!
//! A task function's arguments are, in order: `begin, end` (parallel tasks
//! only), the kernel's parameters, one memref per field in `ds.fields`, and,
//! when `ds.status_messages` is present, the status buffer (`memref<2xi64>`):
//! slot 0 receives the 1-based number of the failed check (the highest one
//! wins), slot 1 a detail (the offending index for bounds checks).

/// On a task: the kernel it belongs to.
pub const TASK_OF: &str = ds_dialects::ops::TASK_OF_ATTR;
/// On a task: its position among the kernel's tasks.
pub const TASK_INDEX: &str = "ds.task_index";
/// On a task: `"parallel"` or `"serial"`.
pub const TASK_KIND: &str = "ds.task_kind";
/// On a range function: the task whose range it computes.
pub const RANGE_OF: &str = "ds.range_of";
/// On the `scf.for` of a parallel task: the loop the runtime splits.
pub const TASK_LOOP: &str = "ds.task_loop";
/// On a function using fields: the field names of its memref arguments.
pub const FIELDS: &str = "ds.fields";
/// On a function with run-time checks: the message of each check.
pub const STATUS_MESSAGES: &str = "ds.status_messages";
/// Slots of the status buffer.
pub const STATUS_SLOTS: i64 = 2;
