//! The Tape: gradients across kernel launches (the paper's two-scale AD).
//!
//! `tape.launch(&mut program, "k", &args)` runs a kernel and records it: the
//! kernel, its arguments, and the parts of fields it reads and writes (from
//! the compiler's access summary: by first index, so `x[t - 1, i]` read and
//! `x[t, i]` written are apart). The records form a petgraph DAG (an edge from
//! the launch that wrote a field part to each later launch reading it;
//! `to_dot` exports it). `backward(&mut program, "loss", &options)` zeroes the
//! adjoint fields, seeds dL/dloss = 1 and runs the grad kernels in reverse;
//! `backward_from` lets a host callback seed adjoints instead (a loss computed
//! elsewhere). Launches can carry a custom gradient (a closure run instead of
//! `k_grad`); kernels without a grad kernel (`ds.no_grad`) are skipped.
//!
//! A launch that writes a field part an earlier launch read destroys a value
//! that backward needs. Without checkpointing that is an error naming both
//! launches and the field. A tape made by `with_checkpointing`, given a
//! [`checkpoint::Policy`] (or a memory budget, from which `backward` picks
//! one), restores states instead: it keeps
//! the state fields (every field some launch writes, adjoints excluded) as they
//! were before their first write, and for each step, last first, restores the
//! state at the step's start, re-runs the step and runs its gradients. Steps
//! are marked with `tape.step()`; without marks every launch is a step.

pub mod checkpoint;
pub mod device;

use crate::compile::Lead;
use crate::error::Error;
use crate::program::{Arg, Program};
use device::Device;
use checkpoint::{Action, Binomial, Policy, Schedule, StoreAll};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;
use std::fmt;

/// A custom gradient: runs instead of the kernel's generated grad kernel.
pub type CustomGrad<D = Program> = Box<dyn FnMut(&mut D) -> Result<(), Error>>;

/// The part of a field one launch touched: its first index, or all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Row(i64),
    All,
}

impl Part {
    fn overlaps(self, other: Part) -> bool {
        match (self, other) {
            (Part::Row(a), Part::Row(b)) => a == b,
            _ => true,
        }
    }
}

struct Record<D> {
    kernel: String,
    args: Vec<Arg>,
    reads: Vec<(usize, Part)>,
    writes: Vec<(usize, Part)>,
    custom: Option<CustomGrad<D>>,
}

/// A launch that overwrote what an earlier launch read.
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

/// What backward will do (or did): see [`Tape::plan`].
#[derive(Clone, Debug)]
pub struct Plan {
    pub policy: String,
    pub steps: usize,
    pub snapshots: usize,
    pub snapshot_bytes: usize,
    /// Steps run forward only to reach states.
    pub advances: usize,
    /// Kernel launches re-run during backward (advances and step re-runs).
    pub launches_recomputed: usize,
    pub predicted_peak_bytes: usize,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} steps, {} snapshots of {} bytes (peak {} bytes), {} steps advanced, {} launches recomputed",
            self.policy,
            self.steps,
            self.snapshots,
            self.snapshot_bytes,
            self.predicted_peak_bytes,
            self.advances,
            self.launches_recomputed
        )
    }
}

pub struct Tape<D: Device = Program> {
    /// Keep the state as it was before its first write, so backward can
    /// restore and recompute (see `with_checkpointing`).
    checkpointing: bool,
    records: Vec<Record<D>>,
    /// Index of the first record of each step after the first.
    step_starts: Vec<usize>,
    marked: bool,
    /// The state fields as they were before their first write.
    initial: HashMap<usize, D::Snapshot>,
}

impl<D: Device> Default for Tape<D> {
    fn default() -> Self {
        Tape { checkpointing: false, records: Vec::new(), step_starts: Vec::new(), marked: false, initial: HashMap::new() }
    }
}

fn part(lead: Lead, args: &[Arg]) -> Part {
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

impl<D: Device> Tape<D> {
    /// A tape for simulations that never overwrite what they read (state
    /// indexed by time step): backward replays the gradients, nothing is saved.
    pub fn new() -> Self {
        Tape::default()
    }

    /// A tape that also keeps one copy of the state fields as they were before
    /// their first write, so backward can checkpoint (policy or memory budget)
    /// when launches overwrite state they read.
    pub fn with_checkpointing() -> Self {
        Tape { checkpointing: true, ..Tape::default() }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Runs `kernel` and records it.
    pub fn launch(&mut self, p: &mut D, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        self.record(p, kernel, args, None)
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
        self.record(p, kernel, args, Some(Box::new(grad)))
    }

    /// Ends the current step (the unit of checkpointing).
    pub fn step(&mut self) {
        self.marked = true;
        if self.step_starts.last() != Some(&self.records.len()) && !self.records.is_empty() {
            self.step_starts.push(self.records.len());
        }
    }

    fn record(&mut self, p: &mut D, kernel: &str, args: &[Arg], custom: Option<CustomGrad<D>>) -> Result<(), Error> {
        let info = p.kernel_info(kernel)?;
        let touched = |write: bool| -> Vec<(usize, Part)> {
            info.accesses.iter().filter(|a| a.write == write).map(|a| (a.field, part(a.lead, args))).collect()
        };
        let (reads, writes) = (touched(false), touched(true));
        let grads: Vec<usize> = p.field_infos().iter().filter_map(|f| f.grad.as_ref()).filter_map(|g| p.field_index(g).ok()).collect();
        for (f, _) in writes.iter().filter(|_| self.checkpointing) {
            if !grads.contains(f) && !self.initial.contains_key(f) {
                self.initial.insert(*f, p.snapshot(*f)?);
            }
        }
        p.launch(kernel, args)?;
        self.records.push(Record { kernel: kernel.into(), args: args.to_vec(), reads, writes, custom });
        Ok(())
    }

    /// Every launch that overwrote a part of a field an earlier launch read.
    pub fn overwrites(&self, p: &D) -> Vec<Overwrite> {
        let mut out = Vec::new();
        for (w, writer) in self.records.iter().enumerate() {
            for (field, wpart) in &writer.writes {
                let reader = self.records[..w]
                    .iter()
                    .position(|r| r.reads.iter().any(|(f, rp)| f == field && rp.overlaps(*wpart)));
                if let Some(reader) = reader {
                    out.push(Overwrite { reader, writer: w, field: p.field_infos()[*field].name.clone() });
                }
            }
        }
        out
    }

    fn describe(&self, i: usize) -> String {
        format!("launch {i} ({}{:?})", self.records[i].kernel, self.records[i].args)
    }

    /// The records, in order, as groups of steps.
    fn steps(&self) -> Vec<std::ops::Range<usize>> {
        if !self.marked {
            return (0..self.records.len()).map(|i| i..i + 1).collect();
        }
        let mut bounds = vec![0];
        bounds.extend(self.step_starts.iter().copied().filter(|&s| s < self.records.len()));
        bounds.push(self.records.len());
        bounds.windows(2).filter(|w| w[0] < w[1]).map(|w| w[0]..w[1]).collect()
    }

    fn snapshot_bytes(&self, p: &D) -> usize {
        self.initial.keys().map(|f| p.field_infos()[*f].bytes()).sum()
    }

    /// The plan of `policy` for this tape.
    pub fn plan(&self, p: &D, policy: &dyn Policy) -> Plan {
        let steps = self.steps();
        let schedule = policy.schedule(steps.len());
        let launches_recomputed = schedule
            .actions
            .iter()
            .map(|a| match a {
                Action::Advance(k) => steps[*k].len(),
                // Each launch of the step is re-run from the step's start before its gradient.
                Action::Reverse(k) => steps[*k].len() * (steps[*k].len() + 1) / 2,
                Action::Restore(_) | Action::Save(_) => 0,
            })
            .sum();
        let snapshots = schedule.peak_slots();
        Plan {
            policy: policy.name(),
            steps: steps.len(),
            snapshots,
            snapshot_bytes: self.snapshot_bytes(p),
            advances: schedule.advances(),
            launches_recomputed,
            predicted_peak_bytes: snapshots * self.snapshot_bytes(p),
        }
    }

    /// The policy a memory budget allows: store-all when it fits, else binomial.
    pub fn policy_for_budget(&self, p: &D, budget: usize) -> Result<Box<dyn Policy>, Error> {
        let bytes = self.snapshot_bytes(p).max(1);
        let slots = budget / bytes;
        if slots >= self.steps().len() {
            Ok(Box::new(StoreAll))
        } else if slots >= 1 {
            Ok(Box::new(Binomial { snapshots: slots }))
        } else {
            Err(Error::Launch(format!("a memory budget of {budget} bytes holds no snapshot of the state ({bytes} bytes)")))
        }
    }

    /// Seeds dL/d`loss` = 1 and runs the gradients in reverse; see the module doc.
    pub fn backward(&mut self, p: &mut D, loss: &str, options: &BackwardOptions) -> Result<Option<Plan>, Error> {
        let grad = loss_grad(p, loss)?;
        let policy = match options.memory_budget {
            Some(b) => Some(self.policy_for_budget(p, b)?),
            None => None,
        };
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
        let policy = match options.memory_budget {
            Some(b) => Some(self.policy_for_budget(p, b)?),
            None => None,
        };
        self.run_backward(p, options.zero_grads, policy.as_deref(), seed)
    }

    fn run_backward(
        &mut self,
        p: &mut D,
        zero_grads: bool,
        policy: Option<&dyn Policy>,
        seed: impl FnOnce(&mut D) -> Result<(), Error>,
    ) -> Result<Option<Plan>, Error> {
        if zero_grads {
            let grads: Vec<usize> =
                p.field_infos().iter().filter_map(|f| f.grad.as_ref()).filter_map(|g| p.field_index(g).ok()).collect();
            for g in grads {
                p.fill(g, 0.0)?;
            }
        }
        seed(p)?;
        let overwrites = self.overwrites(p);
        let Some(policy) = policy.filter(|_| !overwrites.is_empty()) else {
            if let Some(o) = overwrites.first() {
                return Err(Error::Launch(format!(
                    "cannot run backward: {} overwrote @{} after {} read it, and backward needs the old values. Index the field by time step, or record with Tape::with_checkpointing() and give backward a checkpoint policy or a memory budget",
                    self.describe(o.writer),
                    o.field,
                    self.describe(o.reader)
                )));
            }
            for i in (0..self.records.len()).rev() {
                self.grad_of(p, i)?;
            }
            return Ok(None);
        };
        if !self.checkpointing {
            return Err(Error::Launch("checkpointing needs the state before the first launch: record with Tape::with_checkpointing()".into()));
        }
        let plan = self.plan(p, policy);
        let steps = self.steps();
        self.execute(p, &policy.schedule(steps.len()), &steps)?;
        Ok(Some(plan))
    }

    fn grad_of(&mut self, p: &mut D, i: usize) -> Result<(), Error> {
        let r = &mut self.records[i];
        if let Some(custom) = &mut r.custom {
            return custom(p);
        }
        let grad = format!("{}_grad", r.kernel);
        if p.kernel_info(&grad).is_ok() {
            p.launch(&grad, &r.args)?;
        }
        Ok(())
    }

    fn rerun(&self, p: &mut D, launches: std::ops::Range<usize>) -> Result<(), Error> {
        for i in launches {
            p.launch(&self.records[i].kernel, &self.records[i].args)?;
        }
        Ok(())
    }

    fn save(p: &D, state_fields: &[usize]) -> Result<HashMap<usize, D::Snapshot>, Error> {
        state_fields.iter().map(|f| Ok((*f, p.snapshot(*f)?))).collect()
    }

    fn restore(p: &mut D, state: &HashMap<usize, D::Snapshot>) -> Result<(), Error> {
        for (f, s) in state {
            p.restore(*f, s)?;
        }
        Ok(())
    }

    fn execute(&mut self, p: &mut D, schedule: &Schedule, steps: &[std::ops::Range<usize>]) -> Result<(), Error> {
        let state_fields: Vec<usize> = self.initial.keys().copied().collect();
        let mut slots: HashMap<usize, HashMap<usize, D::Snapshot>> = HashMap::new();
        slots.insert(0, std::mem::take(&mut self.initial));
        let result = (|| {
            for action in &schedule.actions {
                match *action {
                    Action::Restore(slot) => {
                        let state = slots.get(&slot).ok_or_else(|| Error::Internal(format!("slot {slot} is empty")))?;
                        Self::restore(p, state)?;
                    }
                    Action::Save(slot) => {
                        slots.insert(slot, Self::save(p, &state_fields)?);
                    }
                    Action::Advance(k) => self.rerun(p, steps[k].clone())?,
                    Action::Reverse(k) => {
                        let range = steps[k].clone();
                        let start = if range.len() > 1 { Some(Self::save(p, &state_fields)?) } else { None };
                        for j in range.clone().rev() {
                            if let Some(s) = &start {
                                Self::restore(p, s)?;
                            }
                            self.rerun(p, range.start..j + 1)?;
                            self.grad_of(p, j)?;
                        }
                    }
                }
            }
            Ok(())
        })();
        self.initial = slots.remove(&0).unwrap_or_default();
        result
    }

    /// The tape as a Graphviz graph: launches, and an edge labeled by field
    /// from the launch that wrote a field part to each later launch reading it.
    pub fn to_dot(&self, p: &D) -> String {
        let mut g: DiGraph<String, String> = DiGraph::new();
        let nodes: Vec<NodeIndex> =
            self.records.iter().enumerate().map(|(i, r)| g.add_node(format!("{i}: {}{:?}", r.kernel, r.args))).collect();
        for (j, reader) in self.records.iter().enumerate() {
            for (field, rpart) in &reader.reads {
                let writer = (0..j).rev().find(|&i| self.records[i].writes.iter().any(|(f, wp)| f == field && wp.overlaps(*rpart)));
                if let Some(i) = writer {
                    g.add_edge(nodes[i], nodes[j], p.field_infos()[*field].name.clone());
                }
            }
        }
        format!("{}", petgraph::dot::Dot::new(&g))
    }
}

/// The index of the adjoint field of `loss`.
fn loss_grad<D: Device>(p: &D, loss: &str) -> Result<usize, Error> {
    let info = &p.field_infos()[p.field_index(loss)?];
    let grad = info.grad.as_ref().ok_or_else(|| Error::Field(format!("loss field @{loss} has no grad field")))?;
    p.field_index(grad)
}
