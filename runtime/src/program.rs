//! A Program: a compiled module, its fields in memory, and kernel launches.
//!
//! A launch runs the kernel's tasks in order. A serial task runs once on the
//! calling thread. A parallel task's range `[lo, hi)` is split into chunks run
//! by the calling thread and the spinning workers of `pool` (rayon's pool
//! when they are busy with another thread's launch; `--threads` sets rayon's
//! thread count, which both respect); short ranges run inline, so small
//! kernels pay no thread hand-off. A task whose shared updates all go to
//! reduction targets (`Task::private`) may instead run its serial twin on
//! every thread, the first into the targets, the others into private
//! copies of them (of the one row a launch updates, when it updates one),
//! added into the targets after,
//! when the estimated work says that beats atomics and one thread; the
//! copies' buffers are kept between launches. Arguments are checked against the kernel's parameters, and the
//! status buffer of checked tasks is read after each task.

use crate::compile::{self, CompileOptions, Compiled, KernelInfo, ParamType, Target, Task};
use ds_lowering::abi::CheckKind;
use crate::error::Error;
use crate::field::{BufferInfo, ElemType, Field, FieldInfo};
use crate::native::{AlignedBuf, MAX_ARGS, PackedFn, Slot, pointer_slot};
use crate::sparse::SparseHost;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A scalar kernel argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    Index(i64),
    I1(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl From<f32> for Arg {
    fn from(v: f32) -> Arg {
        Arg::F32(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::F64(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::I32(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::I64(v)
    }
}
impl From<usize> for Arg {
    fn from(v: usize) -> Arg {
        Arg::Index(v as i64)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::I1(v)
    }
}

impl Arg {
    /// The argument as a slot for a parameter of type `p`, if it fits.
    fn slot_for(self, p: ParamType) -> Option<Slot> {
        match (self, p) {
            (Arg::Index(v) | Arg::I64(v), ParamType::Index | ParamType::I64) => Some(v as u64),
            (Arg::I32(v), ParamType::I32) => Some(v as u32 as u64),
            (Arg::I1(v), ParamType::I1) => Some(v as u64),
            (Arg::F32(v), ParamType::F32) => Some(v.to_bits() as u64),
            (Arg::F64(v), ParamType::F64) => Some(v.to_bits()),
            _ => None,
        }
    }
}

/// Below this many iterations per thread a parallel task runs inline...
const MIN_CHUNK: i64 = 512;
/// ...unless its range runs this many ops (the task's estimated work per
/// iteration times the iterations): then even a short range is split, one
/// iteration per chunk at least. Below it, splitting costs more than it
/// saves: a job reaches a spinning worker in about a microsecond, but the
/// data then moves between the cores' caches (MPM's 4 us grid clear, 100K
/// estimated ops, ran 3x slower split; wave's 2M-op stencil runs 1.3x
/// faster). With rayon's sleeping workers (20-130 us to wake on the 2-vCPU
/// VM) the threshold was 4M.
const PARALLEL_WORK: i64 = 1 << 18;
/// What an atomic update costs in ops: a compare-and-swap loop on a cache
/// line other threads update too (wave's stencil gradient ran 8x slower on
/// two threads with atomics than on one without).
const ATOMIC_COST: i64 = 64;
/// Chunks per thread, for load balance...
const CHUNKS_PER_THREAD: i64 = 16;
/// ...each of at least this many estimated ops (about 5 us): a chunk costs
/// a call of the task and its hoisted checks, and a ticket taken on a cache
/// line both threads update (smoke's 12K-cell Jacobi step, 424K ops: 11.5 us
/// on 32 chunks of two threads, 7.9 us on 2; diffmpm's g2p 29-32 -> 25 us).
const CHUNK_WORK: i64 = 1 << 16;
/// The most iterations one call of a task function runs: between calls the
/// launcher stops a launch whose checks have failed.
const MAX_CALL: i64 = 1 << 22;

pub struct Program {
    instance: crate::backend::Instance,
    compiled: Arc<Compiled>,
    fields: Vec<Field>,
    by_name: HashMap<String, usize>,
    /// Buffers for private copies of reduction targets, kept between
    /// launches so that a launch allocates none.
    scratch: Scratch,
    /// The host side of each sparse tree (garbage-collected after each launch).
    sparse: Vec<Arc<SparseHost>>,
}

impl Program {
    /// Compiles `source` (a ds module) with default options.
    pub fn new(source: &str) -> Result<Program, Error> {
        Program::with_options(source, "<module>", &CompileOptions::default())
    }

    /// Compiles `source`; `name` is the file name used in diagnostics.
    pub fn with_options(source: &str, name: &str, options: &CompileOptions) -> Result<Program, Error> {
        let compiled = compile::compile(source, name, options, &Target::Cpu)?;
        let buffers = compiled
            .buffers
            .iter()
            .map(|b| AlignedBuf::zeroed(b.bytes).map(Arc::new).ok_or_else(|| Error::OutOfMemory { what: b.what(), bytes: b.bytes }))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fields: Vec<Field> =
            compiled.fields.iter().map(|f| Field::in_buffer(f.clone(), buffers[f.placement.buffer].clone())).collect();
        let sparse = crate::sparse::attach(&compiled, &|b| buffers.get(b).cloned(), &mut fields);
        let by_name = fields.iter().enumerate().map(|(i, f)| (f.info.name.clone(), i)).collect();
        Ok(Program { instance: crate::backend::Instance::new(), compiled, fields, by_name, scratch: Scratch::default(), sparse })
    }

    /// The host side of each sparse layout tree.
    pub fn sparse_trees(&self) -> &[Arc<SparseHost>] {
        &self.sparse
    }

    /// The ds module after verification and autodiff (gradient kernels
    /// included), with its source locations: what this program runs.
    pub fn ir(&self) -> &str {
        &self.compiled.ir
    }

    /// Starts the random streams of kernels that draw random numbers from
    /// `seed`: the same seed and the same launches give the same numbers.
    pub fn seed_random(&mut self, seed: u64) {
        self.instance.seed(seed);
    }

    /// The random stream of the next launch that draws random numbers.
    pub fn next_random_stream(&mut self) -> i64 {
        self.instance.next_stream()
    }

    /// This program's identity, unique in the process.
    pub fn id(&self) -> u64 {
        self.instance.id()
    }

    pub fn field_index(&self, name: &str) -> Result<usize, Error> {
        self.by_name.get(name).copied().ok_or_else(|| Error::UnknownField { name: name.into() })
    }

    pub fn field(&self, name: &str) -> Result<&Field, Error> {
        Ok(&self.fields[self.field_index(name)?])
    }

    pub fn field_mut(&mut self, name: &str) -> Result<&mut Field, Error> {
        let i = self.field_index(name)?;
        Ok(&mut self.fields[i])
    }

    /// The declarations of the fields, by index.
    pub fn field_infos(&self) -> &[FieldInfo] {
        &self.compiled.fields
    }

    /// The allocations holding the fields (a field's `placement.buffer` indexes them).
    pub fn buffer_infos(&self) -> &[BufferInfo] {
        &self.compiled.buffers
    }

    /// The raw bytes of buffer `i`, in memory order: how the layout stores
    /// the fields placed there (for inspection, or to hand the memory to
    /// another system).
    pub fn buffer_bytes(&self, i: usize) -> Result<Vec<u8>, Error> {
        let missing = || Error::Internal(format!("no buffer {i}"));
        let bytes = self.compiled.buffers.get(i).ok_or_else(missing)?.bytes;
        let buf = &self.fields.iter().find(|f| f.info.placement.buffer == i).ok_or_else(missing)?.buf;
        let mut out = vec![0u8; bytes];
        // SAFETY: the buffer holds `bytes` bytes; `&self` excludes launches
        // and host writes meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), out.as_mut_ptr(), bytes) };
        Ok(out)
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn fields_mut(&mut self) -> &mut [Field] {
        &mut self.fields
    }

    pub fn kernel(&self, name: &str) -> Result<&KernelInfo, Error> {
        find_kernel(&self.compiled, name)
    }

    /// Runs kernel `name` with `args`.
    pub fn launch(&mut self, name: &str, args: &[Arg]) -> Result<(), Error> {
        crate::profiler::time(name, || self.launch_untimed(name, args))
    }

    fn launch_untimed(&self, name: &str, args: &[Arg]) -> Result<(), Error> {
        let info = self.kernel(name)?;
        let params = param_slots(info, args)?;
        let ran = info.tasks.iter().try_for_each(|task| self.run_task(info, task, &params[..args.len()], args));
        // Blocks the launch released go back to the pools, failed or not.
        for tree in &self.sparse {
            tree.collect();
        }
        ran
    }

    /// The private-copy targets of `task` in a launch with `args`: each
    /// target's argument slot (the one its adds and subs go through) and
    /// field, and the row it updates when every add and sub of the field in
    /// the kernel is to one row (`x[t, ..]`, t a parameter): its copies then
    /// hold that row alone.
    fn private_targets(&self, info: &KernelInfo, task: &Task, params: usize, args: &[Arg]) -> Vec<Reduction<'_>> {
        task.private
            .iter()
            .map(|&p| {
                let index = task.fields[p];
                let field = &self.fields[index];
                let updates = info.accesses.iter().filter(|a| a.field == index && a.update);
                let rows: Vec<crate::tape::Part> = updates.map(|a| crate::tape::part(a.lead, args)).collect();
                let extent = field.info.shape.first().copied().unwrap_or(1) as i64;
                let row = match rows.first() {
                    Some(&crate::tape::Part::Row(k)) if rows.iter().all(|r| *r == rows[0]) && (0..extent).contains(&k) => {
                        let len = field.info.len() / extent.max(1) as usize;
                        Some((k as usize * len, len))
                    }
                    _ => None,
                };
                Reduction { slot: 2 + params + p, field, row }
            })
            .collect()
    }

    /// The end of a task's range: for a struct_for over a pointer tree, its
    /// listed (allocated) blocks when the task starts (`crate::sparse`).
    fn listed_end(&self, task: &Task, lo: i64, hi: i64) -> i64 {
        match task.block_list.as_ref().and_then(|l| self.sparse.iter().find(|t| t.tree.name == l.tree)) {
            Some(tree) => hi.min(lo.saturating_add(tree.listed_blocks() as i64)),
            None => hi,
        }
    }

    fn run_task(&self, info: &KernelInfo, task: &Task, params: &[Slot], args: &[Arg]) -> Result<(), Error> {
        let kernel = info.name.as_str();
        // Written by the task's checks (atomically: chunks run in parallel).
        let status = [AtomicI64::new(0), AtomicI64::new(0)];
        let status_ptr = pointer_slot(status.as_ptr() as *mut u8);
        let (mut slots, n) = task_slots(kernel, task, params, |f| pointer_slot(self.fields[f].ptr()), status_ptr)?;
        let code = task.code.ok_or_else(|| Error::Internal(format!("task {} has no CPU code", task.name)))?;
        // SAFETY: `param_slots` checked the parameters against the kernel's
        // types, `task_slots` laid out the task's ABI (lowering/src/abi.rs),
        // and the field pointers and status buffer outlive the calls.
        unsafe {
            match task.range {
                None => code.call(&mut slots[..n]),
                Some(range) => {
                    let (lo, hi) = evaluate_range(range, params);
                    let hi = self.listed_end(task, lo, hi);
                    let len = range_len(kernel, lo, hi)?;
                    let targets = self.private_targets(info, task, params.len(), args);
                    run_range(code, task, slots, n, lo, len, &status[0], Private { targets: &targets, scratch: &self.scratch });
                }
            }
        }
        check_status(kernel, task, [status[0].load(Ordering::Relaxed), status[1].load(Ordering::Relaxed)])
    }
}

/// The kernel `name` of a compiled module.
pub(crate) fn find_kernel<'a>(compiled: &'a Compiled, name: &str) -> Result<&'a KernelInfo, Error> {
    compiled.kernels.get(name).ok_or_else(|| {
        let mut known: Vec<String> = compiled.kernels.keys().cloned().collect();
        known.sort();
        Error::UnknownKernel { name: name.into(), known }
    })
}

/// The argument slots of a launch, checked against the kernel's parameters.
pub(crate) fn param_slots(kernel: &KernelInfo, args: &[Arg]) -> Result<[Slot; MAX_ARGS], Error> {
    let name = &kernel.name;
    if args.len() != kernel.params.len() {
        return Err(Error::Arity {
            kernel: name.clone(),
            expected: kernel.params.len(),
            given: args.len(),
            params: kernel.params.clone(),
        });
    }
    if args.len() + 2 > MAX_ARGS {
        return Err(Error::TooManyArguments { kernel: name.clone(), limit: MAX_ARGS - 2 });
    }
    let mut params = [0 as Slot; MAX_ARGS];
    for (i, (a, p)) in args.iter().zip(&kernel.params).enumerate() {
        params[i] = a.slot_for(*p).ok_or_else(|| Error::ArgumentType {
            kernel: name.clone(),
            index: i,
            expected: *p,
            given: format!("{a:?}"),
        })?;
    }
    Ok(params)
}

/// The arguments of one task call: `begin, end` slots (parallel tasks, filled
/// per chunk), the parameters, one pointer per field, the status buffer.
/// Returns the slots and how many are used.
pub(crate) fn task_slots(
    kernel: &str,
    task: &Task,
    params: &[Slot],
    field_ptr: impl Fn(usize) -> Slot,
    status_ptr: Slot,
) -> Result<([Slot; MAX_ARGS], usize), Error> {
    let mut slots = [0 as Slot; MAX_ARGS];
    let mut n = if task.range.is_some() { 2 } else { 0 };
    let status = (!task.checks.is_empty()).then_some(status_ptr);
    let values = params.iter().copied().chain(task.fields.iter().map(|&f| field_ptr(f))).chain(status);
    for v in values {
        if n + 2 > MAX_ARGS {
            return Err(Error::TooManyArguments { kernel: kernel.into(), limit: MAX_ARGS - 2 });
        }
        slots[n] = v;
        n += 1;
    }
    Ok((slots, n))
}

/// The iteration range of a parallel task for these parameters.
///
/// # Safety
/// `params` are the checked parameters of the range function's kernel.
pub(crate) unsafe fn evaluate_range(range: PackedFn, params: &[Slot]) -> (i64, i64) {
    let mut r = [0 as Slot; MAX_ARGS];
    r[..params.len()].copy_from_slice(params);
    // SAFETY: a range function takes the kernel's parameters and returns two indices.
    unsafe { range.call(&mut r[..params.len() + 2]) };
    (r[params.len()] as i64, r[params.len() + 1] as i64)
}

/// Turns a task's status buffer into an error naming the failed check.
pub(crate) fn check_status(kernel: &str, task: &Task, status: [i64; 2]) -> Result<(), Error> {
    if status[0] == 0 {
        return Ok(());
    }
    let code = ds_lowering::abi::failed_check(status[0]);
    let Some(check) = code.checked_sub(1).and_then(|c| task.checks.get(c)) else {
        return Err(Error::Internal(format!("kernel {kernel}: task {} reported unknown check {code}", task.name)));
    };
    let (kernel, location) = (kernel.to_string(), check.location.clone());
    Err(match &check.kind {
        CheckKind::Bounds { access, field, dim, extent } => Error::OutOfBounds {
            kernel,
            field: field.clone(),
            access: *access,
            dim: *dim,
            index: status[1],
            extent: *extent,
            location,
        },
        CheckKind::Assert { message } => Error::Assertion { kernel, message: message.clone(), location },
        CheckKind::PoolExhausted { node, capacity, field } => {
            Error::PoolExhausted { kernel: Some(kernel), field: field.clone(), node: node.clone(), capacity: *capacity, location }
        }
        CheckKind::ListFull { node, capacity, field } => {
            Error::ListFull { kernel, field: field.clone(), node: node.clone(), capacity: *capacity, location }
        }
    })
}

/// The iterations of `[lo, hi)` (0 when empty); a range longer than
/// `i64::MAX` is an error, not an overflow.
pub(crate) fn range_len(kernel: &str, lo: i64, hi: i64) -> Result<i64, Error> {
    match hi.checked_sub(lo) {
        Some(len) => Ok(len.max(0)),
        None => Err(Error::RangeTooLarge { kernel: kernel.into(), lo, hi }),
    }
}

/// Runs a parallel task over the `len` iterations from `lo`, inline or in
/// chunks on the pool, as many as its estimated work makes worth it (the
/// task's serial twin, without atomics, runs a range run inline, and a banded
/// twin runs on the pool, even chunks then odd ones), in calls of at most
/// [`MAX_CALL`] iterations; once a check has failed (`failed` is set), no new
/// call starts.
///
/// # Safety
/// As for [`PackedFn::call`]: `slots[2..n]` are the task's checked arguments.
#[allow(clippy::too_many_arguments)]
unsafe fn run_range(
    code: PackedFn,
    task: &Task,
    slots: [Slot; MAX_ARGS],
    n: usize,
    lo: i64,
    len: i64,
    failed: &AtomicI64,
    private: Private<'_>,
) {
    if len == 0 {
        return;
    }
    let hi = lo + len;
    let threads = rayon::current_num_threads() as i64;
    // Runs [b, e) call by call with arguments `slots`; Err once a check has failed.
    let run_with = |code: PackedFn, slots: [Slot; MAX_ARGS], b: i64, e: i64| -> Result<(), ()> {
        let mut start = b;
        while start < e {
            let end = start.saturating_add(MAX_CALL).min(e);
            let mut s = slots;
            s[0] = start as Slot;
            s[1] = end as Slot;
            // SAFETY: the caller's contract; calls are disjoint ranges of one task.
            unsafe { code.call(&mut s[..n]) };
            if failed.load(Ordering::Relaxed) != 0 {
                return Err(());
            }
            start = end;
        }
        Ok(())
    };
    let run = |code: PackedFn, b: i64, e: i64| run_with(code, slots, b, e);
    let heavy = len.saturating_mul(task.work) >= PARALLEL_WORK;
    let min_chunk = if heavy { 1 } else { MIN_CHUNK };
    // A banded twin runs on all threads without atomics.
    let banded = task.serial.zip(task.band);
    // With a serial twin, one thread without atomics may beat all with them.
    let atomics_lose = banded.is_none()
        && task.serial.is_some()
        && task.work.saturating_add(ATOMIC_COST.saturating_mul(task.atomics)) >= threads.saturating_mul(task.work);
    // Or lanes of the twin on private copies of the reduction targets.
    let privately = banded.is_none() && task.serial.is_some() && private.wins(task, len, threads);
    if threads <= 1 || len < 2 * min_chunk || (atomics_lose && !privately) {
        // One thread runs it all: the serial twin's plain updates are safe.
        return run(task.serial.unwrap_or(code), lo, hi).unwrap_or(());
    }
    let by_work = (len.saturating_mul(task.work) / CHUNK_WORK).max(threads);
    let chunks = (threads * CHUNKS_PER_THREAD).min(len / min_chunk).min(by_work).max(1);
    // Rounded up without overflow, for ranges up to i64::MAX long.
    let size = len / chunks + i64::from(len % chunks != 0);
    // Runs `count` chunks, chunk k being `chunk(k)`, on the spinning workers
    // (`pool`), else on rayon. A chunk after one that stopped on a failed
    // check does not start; those before it still run, as in a serial
    // launch, whichever thread saw the failure first. Whether one stopped.
    let in_parallel = |count: i64, chunk: &(dyn Fn(i64) -> Result<(), ()> + Sync)| -> bool {
        let first_stopped = AtomicI64::new(i64::MAX);
        let guarded = |k: i64| {
            if k < first_stopped.load(Ordering::Relaxed) && chunk(k).is_err() {
                first_stopped.fetch_min(k, Ordering::Relaxed);
            }
        };
        if !crate::pool::run(threads as usize, count as usize, &|k| guarded(k as i64)) {
            (0..count).into_par_iter().for_each(guarded);
        }
        first_stopped.load(Ordering::Relaxed) != i64::MAX
    };
    if let Some(twin) = task.serial.filter(|_| privately)
        && let Some(copies) = private.copies(threads as usize - 1)
    {
        // Lane k runs the k-th part of the range with the twin: lane 0 adds
        // into the targets themselves, every other lane into its own copies
        // of them (zero when taken); then the copies are added into the
        // targets, and left zero again.
        let lane = len / threads + i64::from(len % threads != 0);
        in_parallel(threads, &|k| {
            let mut s = slots;
            if let Some(own) = (k as usize).checked_sub(1).map(|c| &copies[c]) {
                for (target, copy) in private.targets.iter().zip(own) {
                    s[target.slot] = pointer_slot(target.base_of(copy));
                }
            }
            let b = lo + k * lane;
            run_with(twin, s, b.min(hi), b.saturating_add(lane).min(hi))
        });
        private.reduce(&copies, &|count, chunk| {
            in_parallel(count as i64, &|c| {
                chunk(c as usize);
                Ok(())
            });
        });
        private.scratch.give_back(copies);
        return;
    }
    let Some((twin, band)) = banded else {
        in_parallel(chunks, &|c| {
            let b = lo + c * size;
            run(code, b, b.saturating_add(size).min(hi))
        });
        return;
    };
    // Chunks longer than the band: chunk c updates only elements of
    // iterations within the band of its own, which no chunk c +- 2 reaches,
    // so the even chunks run at once, then the odd ones.
    let size = size.max(band.saturating_add(1));
    let chunks = len / size + i64::from(len % size != 0);
    for parity in 0..2 {
        let stopped = in_parallel((chunks - parity + 1) / 2, &|k| {
            let b = lo + (2 * k + parity) * size;
            run(twin, b, b.saturating_add(size).min(hi))
        });
        if stopped {
            return;
        }
    }
}

/// What a private copy costs per element and lane, in ops: read when added
/// into the target, what the lane touched added and zeroed again (measured
/// when copies were zeroed up front and summed whole, smoke's gradients on
/// the 2-vCPU VM: about 0.27 ns per element and lane, where an op of a
/// task's work estimate is about 0.07 ns; now an upper bound).
const PRIVATE_COST: i64 = 4;
/// ...and per launch: the second round of jobs on the pool (the sums).
const PRIVATE_OVERHEAD: i64 = 1 << 16;

/// Buffers lent to launches for private copies, kept between launches: all
/// zero whenever here (allocated so, and given back so by
/// [`Private::reduce`]).
#[derive(Default)]
struct Scratch(std::sync::Mutex<Vec<AlignedBuf>>);

impl Scratch {
    /// A zero buffer of at least `bytes`, or `None` when memory is short.
    fn take(&self, bytes: usize) -> Option<AlignedBuf> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match kept.iter().position(|b| b.capacity() >= bytes) {
            Some(i) => Some(kept.swap_remove(i)),
            None => AlignedBuf::zeroed(bytes),
        }
    }

    fn give_back(&self, copies: Vec<Vec<AlignedBuf>>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(copies.into_iter().flatten());
    }
}

/// Runs `count` chunks, chunk c being `chunk(c)`, on the pool.
type ChunkRunner<'a> = dyn Fn(usize, &(dyn Fn(usize) + Sync)) + 'a;

/// A reduction target of a task (`Task::private`) in one launch.
struct Reduction<'a> {
    /// The task argument slot of the field.
    slot: usize,
    field: &'a Field,
    /// The elements the launch updates, when one row: (first, count).
    row: Option<(usize, usize)>,
}

impl Reduction<'_> {
    /// (first, count) of the elements a copy holds.
    fn span(&self) -> (usize, usize) {
        self.row.unwrap_or((0, self.field.info.len()))
    }

    /// The base pointer to pass for a copy: element `first` of the field
    /// lands on the copy's start (the task only touches the span).
    fn base_of(&self, copy: &AlignedBuf) -> *mut u8 {
        let before = self.span().0 * self.field.info.elem.size();
        copy.as_ptr().wrapping_sub(before)
    }
}

/// A task's reduction targets in one launch, and where private copies come from.
struct Private<'a> {
    targets: &'a [Reduction<'a>],
    scratch: &'a Scratch,
}

impl Private<'_> {
    /// Whether `threads` lanes of the serial twin, all but the first on
    /// private copies, beat both the task with atomics on every thread and
    /// the twin on one (estimated ops: each copy is read when added into the
    /// targets, and what the lane touched is added and zeroed again).
    fn wins(&self, task: &Task, len: i64, threads: i64) -> bool {
        if self.targets.is_empty() || threads <= 1 {
            return false;
        }
        let elements: i64 = self.targets.iter().map(|t| t.span().1 as i64).sum();
        let serial = len.saturating_mul(task.work);
        let atomic = len.saturating_mul(task.work.saturating_add(ATOMIC_COST.saturating_mul(task.atomics))) / threads;
        let private = serial / threads + elements.saturating_mul(threads - 1).saturating_mul(PRIVATE_COST) + PRIVATE_OVERHEAD;
        private < serial.min(atomic)
    }

    /// `lanes` copies of every target, zero; `None` when memory is short.
    fn copies(&self, lanes: usize) -> Option<Vec<Vec<AlignedBuf>>> {
        let mut all = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            let mut lane = Vec::new();
            for target in self.targets {
                let bytes = target.span().1 * target.field.info.elem.size();
                let Some(copy) = self.scratch.take(bytes) else {
                    self.scratch.give_back(all);
                    return None;
                };
                lane.push(copy);
            }
            all.push(lane);
        }
        Some(all)
    }

    /// Adds every lane's copies into the targets and zeroes them again,
    /// element chunks run by `in_parallel(count, chunk)`.
    fn reduce(&self, copies: &[Vec<AlignedBuf>], in_parallel: &ChunkRunner) {
        for (t, target) in self.targets.iter().enumerate() {
            let (first, len) = target.span();
            let field = target.field;
            let chunk_len = 1 << 14;
            let count = len.div_ceil(chunk_len);
            let target = field.ptr().wrapping_add(first * field.info.elem.size()) as usize;
            let lanes: Vec<usize> = copies.iter().map(|lane| lane[t].as_ptr() as usize).collect();
            let elem = field.info.elem;
            let sum = |c: usize| {
                let (b, e) = (c * chunk_len, ((c + 1) * chunk_len).min(len));
                // SAFETY: the target and every copy hold `len` elements of
                // `elem`; chunks are disjoint, and no launch runs meanwhile.
                unsafe {
                    match elem {
                        ElemType::F32 => add_lanes::<f32>(target, &lanes, b, e, |a, x| a + x, |x| x.to_bits().into()),
                        ElemType::F64 => add_lanes::<f64>(target, &lanes, b, e, |a, x| a + x, f64::to_bits),
                        ElemType::I32 => add_lanes::<i32>(target, &lanes, b, e, i32::wrapping_add, |x| x as u32 as u64),
                    }
                }
            };
            in_parallel(count, &sum);
        }
    }
}

/// `target[i] = add(target[i], lane[i])` and `lane[i] = 0` over every lane,
/// for i in `[b, e)`, skipping blocks of a lane that are all zero bits
/// (`bits`): a lane that touched a small part of its copy costs a read of
/// the rest. A zero of either sign added leaves every value as it is, so
/// skipping `-0.0` changes nothing.
///
/// # Safety
/// `target` and each lane point at arrays of at least `e` values of `T`
/// that nothing else accesses in `[b, e)` meanwhile.
unsafe fn add_lanes<T: Copy + Default>(target: usize, lanes: &[usize], b: usize, e: usize, add: impl Fn(T, T) -> T, bits: impl Fn(T) -> u64) {
    const BLOCK: usize = 64;
    // SAFETY: the caller's contract; the target and the lanes are distinct buffers.
    let out = unsafe { std::slice::from_raw_parts_mut((target as *mut T).add(b), e - b) };
    for &lane in lanes {
        // SAFETY: as above.
        let lane = unsafe { std::slice::from_raw_parts_mut((lane as *mut T).add(b), e - b) };
        for (o, l) in out.chunks_mut(BLOCK).zip(lane.chunks_mut(BLOCK)) {
            // Loops the compiler vectorizes: an or over the block, then the adds.
            if l.iter().fold(0, |any, x| any | bits(*x)) == 0 {
                continue;
            }
            for (o, l) in o.iter_mut().zip(l.iter_mut()) {
                *o = add(*o, *l);
                *l = T::default();
            }
        }
    }
}
