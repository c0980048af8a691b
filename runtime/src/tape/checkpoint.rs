//! Checkpoint schedules: how the backward pass gets the forward state at the
//! start of every step back, in reverse order, from the initial state.
//!
//! A policy turns (steps, free snapshot slots) into a [`Schedule`] of actions
//! on numbered slots; slot 0 holds the initial state. The executor in
//! `tape` runs them. Reversing step k needs the state at the start of step k
//! restored; it then re-runs the step forward and runs its grad kernels.
//!
//! - [`StoreAll`]: one forward pass saving every step's start state: n - 1
//!   advances, n snapshots.
//! - [`Periodic`]: saves every k-th step start, then per segment (last first)
//!   saves the segment's states from its start: about 2n advances and
//!   n/k + k snapshots.
//! - [`Binomial`]: Griewank-Walther binomial checkpointing (Revolve) with `s`
//!   slots in all: the optimal number of advances, r n - C(s + r, s + 1)
//!   with r the least integer such that C(s + r, s) >= n, found here by the
//!   recursion R(n, c) = min over m of m + R(n - m, c - 1) + R(m, c).
//!
//! Researchers add a policy by implementing [`Policy`].

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

/// A sequence of actions reversing `steps` steps.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    pub actions: Vec<Action>,
}

impl Schedule {
    /// Forward steps run only to reach states (not counting each step's re-run
    /// during its reversal).
    pub fn advances(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::Advance(_))).count()
    }
    /// The most slots in use at once (slot 0, the initial state, included).
    pub fn peak_slots(&self) -> usize {
        let mut live = std::collections::BTreeSet::from([0usize]);
        let mut peak = 1;
        for a in &self.actions {
            if let Action::Save(slot) = a {
                live.insert(*slot);
                peak = peak.max(live.len());
            }
        }
        peak
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

/// Binomial checkpointing with `snapshots` slots in all (the initial state's included).
pub struct Binomial {
    pub snapshots: usize,
}

/// The optimal number of advances R(n, c) for n steps with c free slots
/// beside the one holding the first state, and the best first split.
struct Revolve {
    cost: Vec<Vec<usize>>,
    split: Vec<Vec<usize>>,
}

impl Revolve {
    fn new(steps: usize, free: usize) -> Revolve {
        let mut cost = vec![vec![0usize; free + 1]; steps + 1];
        let mut split = vec![vec![0usize; free + 1]; steps + 1];
        for n in 2..=steps {
            cost[n][0] = n * (n - 1) / 2;
            for c in 1..=free {
                let (m, best) =
                    (1..n).map(|m| (m, m + cost[n - m][c - 1] + cost[m][c])).min_by_key(|(_, v)| *v).expect("n >= 2");
                cost[n][c] = best;
                split[n][c] = m;
            }
        }
        Revolve { cost, split }
    }

    /// Reverses steps [first, first + n) whose start state is in `slot`, with
    /// slots `slot + 1 ..= slot + free` free.
    fn emit(&self, first: usize, n: usize, slot: usize, free: usize, out: &mut Vec<Action>) {
        if n == 0 {
            return;
        }
        if n == 1 {
            out.push(Action::Restore(slot));
            out.push(Action::Reverse(first));
            return;
        }
        if free == 0 {
            for k in (first..first + n).rev() {
                out.push(Action::Restore(slot));
                for step in first..k {
                    out.push(Action::Advance(step));
                }
                out.push(Action::Reverse(k));
            }
            return;
        }
        let m = self.split[n][free];
        out.push(Action::Restore(slot));
        for step in first..first + m {
            out.push(Action::Advance(step));
        }
        out.push(Action::Save(slot + 1));
        self.emit(first + m, n - m, slot + 1, free - 1, out);
        self.emit(first, m, slot, free, out);
    }
}

impl Policy for Binomial {
    fn name(&self) -> String {
        format!("binomial({})", self.snapshots)
    }
    fn schedule(&self, steps: usize) -> Schedule {
        let free = self.snapshots.max(1) - 1;
        let revolve = Revolve::new(steps, free);
        let mut actions = Vec::new();
        revolve.emit(0, steps, 0, free, &mut actions);
        debug_assert_eq!(actions.iter().filter(|a| matches!(a, Action::Advance(_))).count(), revolve.cost[steps][free]);
        Schedule { actions }
    }
}

/// Griewank and Walther's closed form of Revolve's advances for `steps`
/// steps and `snapshots` slots in all: r n - C(s + r, s + 1).
pub fn revolve_advances(steps: usize, snapshots: usize) -> usize {
    let binom = |n: usize, k: usize| -> usize { (0..k).fold(1u128, |acc, i| acc * (n - i) as u128 / (i + 1) as u128) as usize };
    let s = snapshots;
    let mut r = 0;
    while binom(s + r, s) < steps {
        r += 1;
    }
    r * steps - binom(s + r, s + 1)
}
