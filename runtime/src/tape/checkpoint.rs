//! Checkpoint schedules: how the backward pass gets the forward state at the
//! start of every step back, in reverse order, from the initial state.
//!
//! A policy turns a number of steps into a [`Schedule`] of actions on
//! numbered slots; slot 0 holds the initial state (the Tape keeps it from the
//! first write on). The executor in [`crate::tape`] runs the actions.
//! Reversing step k needs the state at the start of step k: it re-runs the
//! step forward and runs its grad kernels, last launch first.
//!
//! - [`StoreAll`]: one forward sweep saving every step's start state:
//!   n - 1 advances, n slots.
//! - [`Periodic`]: saves every k-th step start, then per segment (last first)
//!   saves the segment's states from its start: about 2n advances and
//!   n/k + k slots.
//! - [`Binomial`]: Griewank and Walther's binomial checkpointing (Revolve)
//!   with s slots in all: the fewest advances possible with s slots. With
//!   β(s, r) = C(s + r, s), the most steps s slots reverse while advancing
//!   each step at most r times, and r the least integer with β(s, r) >= n,
//!   reversing n steps costs r n - β(s + 1, r - 1) advances
//!   ([`revolve_advances`]). The schedule keeps the first state in its slot,
//!   advances m steps, saves the state there in the next slot, reverses the
//!   last n - m steps with one slot fewer, then the first m steps with all
//!   slots; m is chosen so that both parts are reversed optimally
//!   (the right part with r repetitions, the left with r - 1).
//!
//! For example 6 steps with 2 slots: save the start of step 3 (3 advances),
//! reverse steps 3..6 from it with one slot (3 more advances), then steps
//! 0..3 from the initial state with both slots (2 more): 8 advances, against
//! 15 with one slot and 5 with six.
//!
//! Researchers add a policy by implementing [`Policy`]: any sequence of
//! actions that reverses every step once, last first, each from its start
//! state, is accepted.

/// One action of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Put the state saved in a slot back.
    Restore(usize),
    /// Save the current state into a slot.
    Save(usize),
    /// Run one step forward (the current state is the start of that step).
    Advance(usize),
    /// Re-run the step and run its gradients (the current state is its start).
    Reverse(usize),
}

/// A sequence of actions reversing some number of steps.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    pub actions: Vec<Action>,
}

impl Schedule {
    /// Steps run forward only to reach states (not counting each step's re-run
    /// during its reversal).
    pub fn advances(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::Advance(_))).count()
    }

    /// The most slots in use at once (slot 0, the initial state, included).
    pub fn peak_slots(&self) -> usize {
        let mut live = std::collections::BTreeSet::from([0usize]);
        for a in &self.actions {
            if let Action::Save(slot) = a {
                live.insert(*slot);
            }
        }
        live.len()
    }

    /// For each action, the slot holding the current state when it starts
    /// (`None` when the state was advanced or reversed since the last restore
    /// or save). A step of several launches reversed from a state in no slot
    /// needs a scratch copy of its start.
    pub fn held_slots(&self) -> Vec<Option<usize>> {
        let mut held = None;
        self.actions
            .iter()
            .map(|a| {
                let before = held;
                held = match *a {
                    Action::Restore(s) | Action::Save(s) => Some(s),
                    Action::Advance(_) | Action::Reverse(_) => None,
                };
                before
            })
            .collect()
    }
}

/// A checkpointing strategy.
pub trait Policy {
    fn name(&self) -> String;
    /// The schedule reversing `steps` steps.
    fn schedule(&self, steps: usize) -> Schedule;
}

/// Saves the start state of every step.
pub struct StoreAll;

impl Policy for StoreAll {
    fn name(&self) -> String {
        "store-all".into()
    }
    fn schedule(&self, steps: usize) -> Schedule {
        let mut actions = vec![Action::Restore(0)];
        for k in 0..steps.saturating_sub(1) {
            actions.push(Action::Advance(k));
            actions.push(Action::Save(k + 1));
        }
        for k in (0..steps).rev() {
            actions.push(Action::Restore(k));
            actions.push(Action::Reverse(k));
        }
        Schedule { actions }
    }
}

/// Saves every `period`-th step start; recomputes each segment from its start.
pub struct Periodic {
    pub period: usize,
}

impl Policy for Periodic {
    fn name(&self) -> String {
        format!("periodic({})", self.period)
    }
    fn schedule(&self, steps: usize) -> Schedule {
        let k = self.period.max(1);
        let starts: Vec<usize> = (0..steps).step_by(k).collect();
        // Slot of segment start s*k is s; slots after the segment starts hold
        // the states inside the current segment.
        let inner = starts.len();
        let mut actions = vec![Action::Restore(0)];
        for (s, start) in starts.iter().enumerate().skip(1) {
            for step in start - k..*start {
                actions.push(Action::Advance(step));
            }
            actions.push(Action::Save(s));
        }
        for (s, start) in starts.iter().enumerate().rev() {
            let end = (start + k).min(steps);
            actions.push(Action::Restore(s));
            for step in *start..end - 1 {
                actions.push(Action::Advance(step));
                actions.push(Action::Save(inner + step + 1 - start));
            }
            for step in (*start..end).rev() {
                actions.push(Action::Restore(if step == *start { s } else { inner + step - start }));
                actions.push(Action::Reverse(step));
            }
        }
        Schedule { actions }
    }
}

/// Binomial checkpointing with `snapshots` slots in all (the initial
/// state's included; 0 counts as 1).
pub struct Binomial {
    pub snapshots: usize,
}

/// β(s, r) = C(s + r, s), saturating.
fn beta(s: usize, r: usize) -> usize {
    let mut acc = 1u128;
    for i in 1..=s.min(r) as u128 {
        acc = acc * (s.max(r) as u128 + i) / i;
        if acc > usize::MAX as u128 {
            return usize::MAX;
        }
    }
    acc as usize
}

/// The least r with β(s, r) >= steps (s >= 1).
fn repetitions(steps: usize, s: usize) -> usize {
    (0..).find(|&r| beta(s, r) >= steps).expect("β(s, r) grows without bound for s >= 1")
}

/// Griewank and Walther's closed form of Revolve's advances for `steps`
/// steps and `snapshots` slots in all (0 counts as 1):
/// r n - β(s + 1, r - 1), with r the least integer such that β(s, r) >= n.
pub fn revolve_advances(steps: usize, snapshots: usize) -> usize {
    let s = snapshots.max(1);
    let r = repetitions(steps, s);
    if r == 0 { 0 } else { r * steps - beta(s + 1, r - 1) }
}

/// Emits the reversal of steps [first, first + n) whose start state is in
/// `slot`, with slots `slot + 1 ..= slot + free` free.
fn revolve(first: usize, n: usize, slot: usize, free: usize, out: &mut Vec<Action>) {
    match (n, free) {
        (0, _) => {}
        (1, _) => out.extend([Action::Restore(slot), Action::Reverse(first)]),
        (_, 0) => {
            for k in (first..first + n).rev() {
                out.push(Action::Restore(slot));
                out.extend((first..k).map(Action::Advance));
                out.push(Action::Reverse(k));
            }
        }
        _ => {
            // The left part m must need r - 1 repetitions with s slots and the
            // right part n - m at most r with s - 1: the costs then add up to
            // the optimum, r n - β(s + 1, r - 1) (Pascal's rule on β).
            let s = free + 1;
            let r = repetitions(n, s);
            let low = if r >= 2 { beta(s, r - 2) } else { 0 };
            let m = low.max(n.saturating_sub(beta(s - 1, r))).max(1);
            out.push(Action::Restore(slot));
            out.extend((first..first + m).map(Action::Advance));
            out.push(Action::Save(slot + 1));
            revolve(first + m, n - m, slot + 1, free - 1, out);
            revolve(first, m, slot, free, out);
        }
    }
}

impl Policy for Binomial {
    fn name(&self) -> String {
        format!("binomial({})", self.snapshots)
    }
    fn schedule(&self, steps: usize) -> Schedule {
        let mut actions = Vec::new();
        revolve(0, steps, 0, self.snapshots.max(1) - 1, &mut actions);
        Schedule { actions }
    }
}
