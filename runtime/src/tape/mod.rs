//! The Tape: gradients across kernel launches (the paper's two-scale AD).
//!
//! `tape.launch(&mut program, "k", &args)` runs a kernel and records it: the
//! kernel, its arguments, and the parts of fields it reads and writes (from
//! the compiler's access summary: by first index, so `x[t - 1, i]` read and
//! `x[t, i]` written are apart). The records form a petgraph DAG (an edge from
//! the launch that last wrote a field part to each later launch reading it;
//! [`Tape::graph`], [`Tape::to_dot`]); a tape records one program and
//! refuses another ([`Error::ForeignTape`]). `backward(&mut program, "loss", &options)`
//! zeroes the adjoint fields (optional), seeds dL/dloss = 1 at every element
//! of the loss's adjoint, and runs the grad kernels in reverse;
//! [`Tape::backward_from`] lets a host callback seed adjoints instead (a loss
//! computed by another library). A launch may carry a custom gradient
//! ([`Tape::launch_with_grad`], the paper's grad_replaced / grad_for): a
//! closure run instead of `k_grad`. Kernels without a grad kernel
//! (`ds.no_grad`) are re-run when needed but have no gradient. A grad kernel
//! can also be launched by hand: `program.launch("k_grad", &args)`. In a
//! program compiled for forward mode, a recorded tangent kernel `k_jvp`
//! (primal and tangents in one launch) has the tangent of `k`'s gradient,
//! `k_grad_jvp`, as its gradient, and backward zeroes the adjoints' duals
//! with the adjoints: after it, with the inputs' duals seeded with v, the
//! adjoints hold the gradient and their duals the Hessian-vector product
//! (forward-over-reverse). Rust
//! programs reach the Tape through the frontend's recording guard
//! (`let mut rec = p.record();`), which borrows the program while it records.
//!
//! ```ignore
//! let mut tape = Tape::new();
//! for t in 0..steps {
//!     tape.launch(&mut p, "advance", &[])?; // reads x, v; writes x_new, v_new
//!     tape.launch(&mut p, "commit", &[])?;  // copies x_new, v_new into x, v
//!     tape.end_step();
//! }
//! tape.launch(&mut p, "compute_loss", &[])?;
//! println!("{}", tape.plan(&*tape.policy_for_budget(64 << 20)?));
//! tape.backward(&mut p, "loss", &BackwardOptions { memory_budget: Some(64 << 20), ..Default::default() })?;
//! ```
//!
//! # Overwritten state
//!
//! A launch that writes a field part an earlier launch read destroys a value
//! that the earlier launch's gradient needs (the grad kernel recomputes from
//! global loads). [`Tape::overwrites`] finds every such pair in one pass
//! (the last reader of each field part, readers without a gradient ignored).
//! Without checkpointing, backward fails with an error naming both launches
//! and the field. State indexed by time step (`x[t, i]` from `x[t - 1, i]`)
//! never overwrites anything and needs no checkpointing.
//!
//! State overwritten every step (`x[i]`) is written as one kernel reading
//! `x` and writing `x_new`, then a copy kernel writing `x_new` back into `x`
//! (a kernel may not overwrite what it read; the compiler rejects
//! `x[i] = f(x[i])`). The adjoints then stay exact with no help from the
//! Tape: the copy's gradient moves `x_grad` into `x_new_grad` and zeroes
//! `x_grad`, and the update's gradient consumes `x_new_grad` and accumulates
//! into `x_grad`, now the adjoint of the previous version.
//!
//! # Checkpointing
//!
//! A tape keeps (unless made by [`Tape::without_state`]) the state fields (every
//! field some launch writes, adjoints excluded) as they were before their
//! first write. Given a [`checkpoint::Policy`], or a memory budget from which
//! [`Tape::policy_for_budget`] picks store-all when it fits and otherwise
//! binomial with as many slots as fit, backward reverses the steps (marked
//! with [`Tape::end_step`]; without marks every launch is a step) last first: it
//! restores the state at the step's start (from a snapshot, or by re-running
//! earlier steps from the nearest one), and for each launch of the step,
//! last first, re-runs the step up to that launch (and the launch too when
//! it reads a part it writes, whose gradient recomputes from its own
//! writes), then runs its gradient. [`Tape::plan`] predicts the snapshots, the peak snapshot
//! memory and the launches re-run; the plan `backward` returns counts what
//! it did. A tape without state plans too: a schedule that restores nothing
//! holds no snapshot there, one that restores is priced at the state a tape
//! keeping it would copy (what store-all would have cost).
//!
//! Two things the Tape cannot see: host writes to state fields between
//! launches (recomputation would not repeat them), and the state after a
//! checkpointed backward, which is that of an early step: read results such
//! as the loss before calling backward.

pub mod checkpoint;
pub mod diagnose;

use crate::compile::Lead;
use crate::error::Error;
use crate::program::{Arg, Program};
use checkpoint::{Action, Binomial, Policy, Schedule, StoreAll};
use crate::backend::Backend;
use petgraph::graph::DiGraph;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;

/// A custom gradient: runs instead of the kernel's generated grad kernel.
pub type CustomGrad<D = Program> = Box<dyn FnMut(&mut D) -> Result<(), Error>>;

/// The part of a field one launch touched: its first index, or all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Row(i64),
    All,
}

/// What backward runs for a launch.
enum Gradient<D> {
    /// The generated grad kernel, launched with the same arguments.
    Kernel(String),
    Custom(CustomGrad<D>),
    /// A `ds.no_grad` kernel (or a program compiled without autodiff).
    None,
}

struct Record<D> {
    kernel: String,
    args: Vec<Arg>,
    reads: Vec<(usize, Part)>,
    writes: Vec<(usize, Part)>,
    gradient: Gradient<D>,
}

impl<D> Record<D> {
    /// Whether the launch reads a part of a field it also writes (a serial
    /// chain `x[k + 1] = f(x[k])`): its gradient recomputes from values the
    /// launch itself wrote, so the launch must run again before it. Other
    /// gradients need only the launch's inputs, which it leaves as they were.
    fn reads_own_writes(&self) -> bool {
        self.reads.iter().any(|(f, r)| self.writes.iter().any(|(g, w)| f == g && (r == w || *r == Part::All || *w == Part::All)))
    }
}

/// The latest launch that touched each part of one field, in a walk over the records.
#[derive(Default)]
struct Latest {
    whole: Option<usize>,
    rows: HashMap<i64, usize>,
    any: Option<usize>,
}

impl Latest {
    fn note(&mut self, part: Part, launch: usize) {
        match part {
            Part::Row(r) => {
                self.rows.insert(r, launch);
            }
            Part::All => self.whole = Some(launch),
        }
        self.any = Some(launch);
    }

    /// The latest launch that touched a part overlapping `part`.
    fn overlapping(&self, part: Part) -> Option<usize> {
        match part {
            Part::Row(r) => self.whole.max(self.rows.get(&r).copied()),
            Part::All => self.any,
        }
    }
}

/// A launch that overwrote what an earlier launch (with a gradient) read.
#[derive(Clone, Debug)]
pub struct Overwrite {
    pub reader: usize,
    pub writer: usize,
    pub field: String,
}

/// How `backward` runs.
#[derive(Clone, Copy, Debug)]
pub struct BackwardOptions {
    /// Zero every adjoint field first (default true).
    pub zero_grads: bool,
    /// With overwrites: the most bytes of snapshots to hold; the tape picks
    /// store-all when it fits, else binomial with as many slots as fit.
    pub memory_budget: Option<usize>,
}

impl Default for BackwardOptions {
    fn default() -> Self {
        BackwardOptions { zero_grads: true, memory_budget: None }
    }
}

/// What a checkpointed backward will do ([`Tape::plan`]) or did (returned by backward).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub policy: String,
    pub steps: usize,
    /// Slots of saved state held at once (the initial state's included).
    pub snapshots: usize,
    /// 1 when a step of several launches is reversed from a state held in no
    /// slot: its start is copied once more while it is reversed.
    pub scratch: usize,
    /// Bytes of one saved state (all state fields).
    pub snapshot_bytes: usize,
    /// Steps run forward only to reach states.
    pub advances: usize,
    /// Kernel launches re-run during backward (advances and step re-runs).
    pub launches_recomputed: usize,
    /// The most snapshot bytes held at once, the initial state's included.
    pub predicted_peak_bytes: usize,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} steps, {} snapshots + {} scratch of {} bytes (peak {} bytes), {} steps advanced, {} launches recomputed",
            self.policy,
            self.steps,
            self.snapshots,
            self.scratch,
            self.snapshot_bytes,
            self.predicted_peak_bytes,
            self.advances,
            self.launches_recomputed
        )
    }
}

/// Saved contents of the state fields, by field index.
type State<D> = HashMap<usize, <D as Backend>::Snapshot>;

/// What a checkpointed backward re-ran.
#[derive(Default)]
struct Recomputed {
    advances: usize,
    launches: usize,
}

pub struct Tape<D: Backend = Program> {
    /// Keep the state as it was before its first write, so backward can
    /// restore and recompute (see `without_state`).
    keep_state: bool,
    records: Vec<Record<D>>,
    /// Index of the first record of each step after the first.
    step_starts: Vec<usize>,
    marked: bool,
    /// The state fields as they were before their first write.
    initial: State<D>,
    /// The bytes of each of those snapshots.
    state_bytes: HashMap<usize, usize>,
    /// The program recorded on ([`Backend::id`]) and its field names.
    program: Option<(u64, Vec<String>)>,
}

impl<D: Backend> Default for Tape<D> {
    fn default() -> Self {
        Tape {
            keep_state: true,
            records: Vec::new(),
            step_starts: Vec::new(),
            marked: false,
            initial: HashMap::new(),
            state_bytes: HashMap::new(),
            program: None,
        }
    }
}

pub(crate) fn part(lead: Lead, args: &[Arg]) -> Part {
    let value = |a: &Arg| match a {
        Arg::Index(v) | Arg::I64(v) => Some(*v),
        Arg::I32(v) => Some(*v as i64),
        _ => None,
    };
    match lead {
        Lead::Const(c) => Part::Row(c),
        Lead::Param(k, off) => args.get(k).and_then(value).map_or(Part::All, |v| Part::Row(v + off)),
        Lead::Any => Part::All,
    }
}

/// Whether running `schedule` restores saved state: a restore, or the
/// reversal of a step of several launches (each of which starts again from
/// the step's start). A schedule that does neither (a policy re-running
/// steps whose inputs no later launch overwrites, such as diffmpm's grid
/// recomputation) runs on a recording that kept no state.
fn restores_state(schedule: &Schedule, steps: &[Range<usize>]) -> bool {
    schedule.actions.iter().any(|a| matches!(a, Action::Restore(_)) || matches!(a, Action::Reverse(k) if steps[*k].len() > 1))
}

/// The indices of the program's adjoint fields.
fn adjoint_fields<D: Backend>(p: &D) -> Vec<usize> {
    let infos = p.field_infos();
    let grads: Vec<usize> = infos.iter().filter_map(|f| f.grad.as_ref()).filter_map(|g| p.field_index(g).ok()).collect();
    // In forward mode, the adjoints' tangents too.
    let duals = grads.iter().filter_map(|&g| infos[g].dual.as_ref()).filter_map(|d| p.field_index(d).ok());
    grads.iter().copied().chain(duals.collect::<Vec<_>>()).collect()
}

impl<D: Backend> Tape<D> {
    /// A tape that keeps one copy of each state field as it was before its
    /// first write, so that backward can checkpoint (with a policy or a
    /// memory budget chosen then) when launches overwrite state they read.
    pub fn new() -> Self {
        Tape::default()
    }

    /// A tape that keeps no state: for simulations that never overwrite what
    /// they read (state indexed by time step), it spares the copy of every
    /// written field; backward then checkpoints only with a schedule that
    /// restores nothing ([`Error::StateNotKept`] otherwise).
    pub fn without_state() -> Self {
        Tape { keep_state: false, ..Tape::default() }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Runs `kernel` and records it.
    pub fn launch(&mut self, p: &mut D, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        let gradient = match p.kernel_info(kernel).ok().and_then(|k| k.gradient.clone()) {
            Some(grad) => Gradient::Kernel(grad),
            None => Gradient::None,
        };
        self.record(p, kernel, args, gradient)
    }

    /// Runs `kernel` and records it with a custom gradient (the paper's
    /// grad_replaced / grad_for): `grad` runs in backward instead of `k_grad`.
    pub fn launch_with_grad(
        &mut self,
        p: &mut D,
        kernel: &str,
        args: &[Arg],
        grad: impl FnMut(&mut D) -> Result<(), Error> + 'static,
    ) -> Result<(), Error> {
        self.record(p, kernel, args, Gradient::Custom(Box::new(grad)))
    }

    /// Ends the current step (the unit of checkpointing).
    pub fn end_step(&mut self) {
        self.marked = true;
        if self.step_starts.last() != Some(&self.records.len()) && !self.records.is_empty() {
            self.step_starts.push(self.records.len());
        }
    }

    /// Checks that `p` is the program this tape records (the first one it saw).
    fn check_program(&self, p: &D) -> Result<(), Error> {
        match &self.program {
            Some((id, _)) if *id != p.id() => Err(Error::ForeignTape { launches: self.records.len() }),
            _ => Ok(()),
        }
    }

    /// The name of field `f` of the recorded program.
    fn field_name(&self, f: usize) -> String {
        self.program.as_ref().and_then(|(_, names)| names.get(f)).cloned().unwrap_or_else(|| format!("#{f}"))
    }

    fn record(&mut self, p: &mut D, kernel: &str, args: &[Arg], gradient: Gradient<D>) -> Result<(), Error> {
        self.check_program(p)?;
        if self.program.is_none() {
            self.program = Some((p.id(), p.field_infos().iter().map(|f| f.name.clone()).collect()));
        }
        let info = p.kernel_info(kernel)?;
        let touched = |write: bool| -> Vec<(usize, Part)> {
            info.accesses.iter().filter(|a| a.write == write).map(|a| (a.field, part(a.lead, args))).collect()
        };
        let (reads, writes) = (touched(false), touched(true));
        // Only a first write to a field needs the list of adjoints (not per
        // launch). A tape without state notes the bytes all the same: its
        // plans price the policies that would need them.
        if writes.iter().any(|(f, _)| !self.state_bytes.contains_key(f)) {
            let adjoints = adjoint_fields(p);
            for (f, _) in &writes {
                if !adjoints.contains(f) && !self.state_bytes.contains_key(f) {
                    if self.keep_state {
                        self.initial.insert(*f, p.snapshot(*f)?);
                    }
                    self.state_bytes.insert(*f, p.snapshot_bytes(*f));
                }
            }
        }
        p.launch(kernel, args)?;
        self.records.push(Record { kernel: kernel.into(), args: args.to_vec(), reads, writes, gradient });
        Ok(())
    }

    /// Every launch that overwrote a part of a field an earlier launch with
    /// a gradient read (paired with the latest such reader), in launch order.
    pub fn overwrites(&self) -> Vec<Overwrite> {
        let mut readers: HashMap<usize, Latest> = HashMap::new();
        let mut out = Vec::new();
        for (w, record) in self.records.iter().enumerate() {
            for (field, part) in &record.writes {
                if let Some(reader) = readers.get(field).and_then(|r| r.overlapping(*part)) {
                    out.push(Overwrite { reader, writer: w, field: self.field_name(*field) });
                }
            }
            if !matches!(record.gradient, Gradient::None) {
                for (field, part) in &record.reads {
                    readers.entry(*field).or_default().note(*part, w);
                }
            }
        }
        out
    }

    fn describe(&self, i: usize) -> String {
        format!("launch {i} ({}{:?})", self.records[i].kernel, self.records[i].args)
    }

    /// The records, in order, as groups of steps.
    fn steps(&self) -> Vec<Range<usize>> {
        if !self.marked {
            return (0..self.records.len()).map(|i| i..i + 1).collect();
        }
        let mut bounds = vec![0];
        bounds.extend(self.step_starts.iter().copied().filter(|&s| s < self.records.len()));
        bounds.push(self.records.len());
        bounds.windows(2).filter(|w| w[0] < w[1]).map(|w| w[0]..w[1]).collect()
    }

    /// Bytes of one saved state.
    fn snapshot_bytes(&self) -> usize {
        self.state_bytes.values().sum()
    }

    /// The plan of `policy` for this tape.
    pub fn plan(&self, policy: &dyn Policy) -> Plan {
        let steps = self.steps();
        self.plan_of(policy.name(), &policy.schedule(steps.len()), &steps)
    }

    fn plan_of(&self, policy: String, schedule: &Schedule, steps: &[Range<usize>]) -> Plan {
        let launches_recomputed = schedule
            .actions
            .iter()
            .map(|a| match a {
                Action::Advance(k) => steps[*k].len(),
                // The launches before each launch of the step (and it, when it
                // reads its own writes) re-run from the step's start before its gradient.
                Action::Reverse(k) => steps[*k].clone().map(|j| self.reruns_before_grad(steps[*k].start, j).len()).sum(),
                Action::Restore(_) | Action::Save(_) => 0,
            })
            .sum();
        let scratch = schedule
            .actions
            .iter()
            .zip(schedule.held_slots())
            .any(|(a, held)| matches!(a, Action::Reverse(k) if held.is_none() && steps[*k].len() > 1));
        // A tape without state holds no slot of a schedule that restores
        // none; one that restores some is priced as a tape keeping state
        // would run it (backward refuses it: `Error::StateNotKept`).
        let holds = self.keep_state || restores_state(schedule, steps);
        let (snapshots, scratch) = if holds { (schedule.peak_slots(), usize::from(scratch)) } else { (0, 0) };
        let bytes = self.snapshot_bytes();
        Plan {
            policy,
            steps: steps.len(),
            snapshots,
            scratch,
            snapshot_bytes: bytes,
            advances: schedule.advances(),
            launches_recomputed,
            predicted_peak_bytes: (snapshots + scratch) * bytes,
        }
    }

    /// The policy a memory budget (bytes of snapshots, the initial state's
    /// included) allows: store-all when it fits, else binomial with the most
    /// slots that fit.
    pub fn policy_for_budget(&self, budget: usize) -> Result<Box<dyn Policy>, Error> {
        let fits = |policy: &dyn Policy| self.plan(policy).predicted_peak_bytes <= budget;
        if fits(&StoreAll) {
            return Ok(Box::new(StoreAll));
        }
        let bytes = self.snapshot_bytes().max(1);
        let most = budget / bytes;
        // The slots, less one when the schedule also needs a scratch copy.
        let mut candidates = (most.saturating_sub(1).max(1)..=most.max(1)).rev().map(|snapshots| Binomial { snapshots });
        match candidates.find(|b| fits(b)) {
            Some(b) => Ok(Box::new(b)),
            None => Err(Error::Budget { budget, smallest: self.plan(&Binomial { snapshots: 1 }).to_string() }),
        }
    }

    fn policy_from(&self, options: &BackwardOptions) -> Result<Option<Box<dyn Policy>>, Error> {
        options.memory_budget.map(|b| self.policy_for_budget(b)).transpose()
    }

    /// Seeds dL/d`loss` = 1 and runs the gradients in reverse; see the module
    /// doc. Returns the plan it ran when it checkpointed.
    pub fn backward(&mut self, p: &mut D, loss: &str, options: &BackwardOptions) -> Result<Option<Plan>, Error> {
        let grad = loss_grad(p, loss)?;
        let policy = self.policy_from(options)?;
        self.run_backward(p, options.zero_grads, policy.as_deref(), move |p| p.fill(grad, 1.0))
    }

    /// Like `backward` with an explicit policy.
    pub fn backward_with(&mut self, p: &mut D, loss: &str, policy: &dyn Policy) -> Result<Option<Plan>, Error> {
        let grad = loss_grad(p, loss)?;
        self.run_backward(p, true, Some(policy), move |p| p.fill(grad, 1.0))
    }

    /// Backward where `seed` sets the adjoints (for a loss computed outside DiffSim).
    pub fn backward_from(
        &mut self,
        p: &mut D,
        options: &BackwardOptions,
        seed: impl FnOnce(&mut D) -> Result<(), Error>,
    ) -> Result<Option<Plan>, Error> {
        let policy = self.policy_from(options)?;
        self.run_backward(p, options.zero_grads, policy.as_deref(), seed)
    }

    fn run_backward(
        &mut self,
        p: &mut D,
        zero_grads: bool,
        policy: Option<&dyn Policy>,
        seed: impl FnOnce(&mut D) -> Result<(), Error>,
    ) -> Result<Option<Plan>, Error> {
        self.check_program(p)?;
        if !self.records.is_empty() && self.records.iter().all(|r| matches!(r.gradient, Gradient::None)) {
            return Err(Error::NothingToDifferentiate { launches: self.records.len() });
        }
        let overwrites = self.overwrites();
        let steps = self.steps();
        let policy = match (overwrites.first(), policy) {
            (Some(o), None) => {
                return Err(Error::Overwrite {
                    reader: self.describe(o.reader),
                    writer: self.describe(o.writer),
                    field: o.field.clone(),
                });
            }
            (Some(o), Some(policy)) => {
                let schedule = policy.schedule(steps.len());
                if !self.keep_state && restores_state(&schedule, &steps) {
                    return Err(Error::StateNotKept { field: o.field.clone() });
                }
                Some((policy, schedule))
            }
            (None, _) => None,
        };
        if zero_grads {
            for g in adjoint_fields(p) {
                p.zero(g)?;
            }
        }
        seed(p)?;
        let Some((policy, schedule)) = policy else {
            for i in (0..self.records.len()).rev() {
                self.grad_of(p, i)?;
            }
            return Ok(None);
        };
        let plan = self.plan_of(policy.name(), &schedule, &steps);
        let done = self.execute(p, &schedule, &steps)?;
        Ok(Some(Plan { advances: done.advances, launches_recomputed: done.launches, ..plan }))
    }

    /// Runs launch `i`'s gradient; a failure names the launch and its step.
    fn grad_of(&mut self, p: &mut D, i: usize) -> Result<(), Error> {
        let r = &mut self.records[i];
        let ran = match &mut r.gradient {
            Gradient::Kernel(grad) => p.launch(grad, &r.args),
            Gradient::Custom(custom) => custom(p),
            Gradient::None => Ok(()),
        };
        ran.map_err(|e| Error::InBackward {
            step: self.step_of(i),
            launch: i,
            kernel: self.records[i].kernel.clone(),
            source: Box::new(e),
        })
    }

    /// The step (of `end_step`s) that launch `i` belongs to.
    fn step_of(&self, i: usize) -> usize {
        self.steps().iter().position(|s| s.contains(&i)).unwrap_or(i)
    }

    /// Re-runs some records; returns how many.
    /// The launches of a step starting at `start` to re-run before launch
    /// `j`'s gradient: those before it, and `j` itself if its gradient reads
    /// what it wrote ([`Record::reads_own_writes`]) or is a custom one.
    fn reruns_before_grad(&self, start: usize, j: usize) -> Range<usize> {
        let r = &self.records[j];
        // A custom gradient may read anything, the launch's outputs included.
        start..j + usize::from(r.reads_own_writes() || matches!(r.gradient, Gradient::Custom(_)))
    }

    fn rerun(&self, p: &mut D, launches: Range<usize>) -> Result<usize, Error> {
        for r in &self.records[launches.clone()] {
            p.launch(&r.kernel, &r.args)?;
        }
        Ok(launches.len())
    }

    fn save(p: &D, state_fields: &[usize]) -> Result<State<D>, Error> {
        state_fields.iter().map(|f| Ok((*f, p.snapshot(*f)?))).collect()
    }

    fn restore(p: &mut D, state: &State<D>) -> Result<(), Error> {
        for (f, s) in state {
            p.restore(*f, s)?;
        }
        Ok(())
    }

    fn execute(&mut self, p: &mut D, schedule: &Schedule, steps: &[Range<usize>]) -> Result<Recomputed, Error> {
        let state_fields: Vec<usize> = self.initial.keys().copied().collect();
        let mut slots: HashMap<usize, State<D>> = HashMap::from([(0, std::mem::take(&mut self.initial))]);
        let missing = |slot: usize| Error::Internal(format!("checkpoint slot {slot} restored before it was saved"));
        let mut done = Recomputed::default();
        let mut run = || -> Result<(), Error> {
            for (action, held) in schedule.actions.iter().zip(schedule.held_slots()) {
                match *action {
                    Action::Restore(slot) => Self::restore(p, slots.get(&slot).ok_or_else(|| missing(slot))?)?,
                    Action::Save(slot) => {
                        // Free the slot's old state first: the plan counts one per slot.
                        slots.remove(&slot);
                        slots.insert(slot, Self::save(p, &state_fields)?);
                    }
                    Action::Advance(k) => {
                        done.advances += 1;
                        done.launches += self.rerun(p, steps[k].clone())?;
                    }
                    Action::Reverse(k) => {
                        let range = steps[k].clone();
                        // The step's start: the slot holding it, else a scratch copy.
                        let scratch = match held {
                            None if range.len() > 1 => Some(Self::save(p, &state_fields)?),
                            _ => None,
                        };
                        let start = scratch.as_ref().or_else(|| held.and_then(|s| slots.get(&s)));
                        for j in range.clone().rev() {
                            if j + 1 < range.end {
                                Self::restore(p, start.ok_or_else(|| missing(held.unwrap_or(0)))?)?;
                            }
                            done.launches += self.rerun(p, self.reruns_before_grad(range.start, j))?;
                            self.grad_of(p, j)?;
                        }
                    }
                }
            }
            Ok(())
        };
        let result = run();
        self.initial = slots.remove(&0).unwrap_or_default();
        result.map(|()| done)
    }

    /// The tape as a petgraph DAG: node i is launch i; an edge labeled by
    /// field goes from the launch that last wrote a field part to each later
    /// launch reading it.
    pub fn graph(&self) -> DiGraph<String, String> {
        let mut g = DiGraph::new();
        let nodes: Vec<_> =
            self.records.iter().enumerate().map(|(i, r)| g.add_node(format!("{i}: {}{:?}", r.kernel, r.args))).collect();
        let mut writers: HashMap<usize, Latest> = HashMap::new();
        let mut edges = BTreeSet::new();
        for (j, record) in self.records.iter().enumerate() {
            for (field, part) in &record.reads {
                if let Some(i) = writers.get(field).and_then(|w| w.overlapping(*part)) {
                    edges.insert((i, j, *field));
                }
            }
            for (field, part) in &record.writes {
                writers.entry(*field).or_default().note(*part, j);
            }
        }
        for (i, j, field) in edges {
            g.add_edge(nodes[i], nodes[j], self.field_name(field));
        }
        g
    }

    /// The tape as a Graphviz graph (see [`Tape::graph`]).
    pub fn to_dot(&self) -> String {
        format!("{}", petgraph::dot::Dot::new(&self.graph()))
    }
}

/// The index of the adjoint field of `loss`.
fn loss_grad<D: Backend>(p: &D, loss: &str) -> Result<usize, Error> {
    let info = &p.field_infos()[p.field_index(loss)?];
    let grad = info.grad.as_ref().ok_or_else(|| Error::NoGradient { field: loss.into() })?;
    p.field_index(grad)
}
