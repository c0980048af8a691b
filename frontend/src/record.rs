//! Recording launches for gradients across kernels: `let mut rec = p.record();`
//! (Taichi's `with ti.ad.Tape(loss):`, Warp's `with tape:`) borrows the
//! program for as long as it records, so the host cannot write to state that
//! backward will replay: the borrow checker rejects it. `rec.backward(&loss)`
//! seeds dL/dloss = 1, runs the gradients in reverse and gives the program back.
//!
//! ```ignore
//! let mut rec = p.record();
//! for t in 1..STEPS {
//!     rec.launch(&advance, t)?;
//!     rec.end_step();
//! }
//! rec.launch(&compute_loss, STEPS - 1)?;
//! let loss = loss.get(rec.program(), [])?;
//! rec.backward(&loss_field)?;                               // or, when state is overwritten:
//! // rec.backward_with(&loss_field, &BackwardOptions { memory_budget: Some(64 << 20), ..Default::default() })?;
//! let dx = x.grad().to_vec(&p)?;
//! ```
//!
//! The recording keeps each state field as it was before its first write, so
//! the checkpointing policy (or a memory budget) can be chosen at backward;
//! [`Record::record_without_state`] saves that copy for simulations that
//! never overwrite what they read. See `ds_runtime::tape` for the schedules.

use crate::field::{ElementKind, Field, GradField};
use crate::program::{Kernel, KernelArgs};
use ds_runtime::tape::checkpoint::Policy;
use ds_runtime::tape::diagnose::{DiagnoseOptions, Direction, GradientReport};
use ds_runtime::tape::{BackwardOptions, Plan};
use ds_runtime::{Backend, Error, Tape};

/// Starts recordings on a program (CPU or CUDA).
pub trait Record: Backend + Sized {
    /// A recording that keeps the state for checkpointing.
    fn record(&mut self) -> Recording<'_, Self> {
        Recording { program: self, tape: Tape::new() }
    }
    /// A recording that keeps no copy of the state: backward replays the
    /// gradients, and checkpoints only with a policy whose schedule never
    /// restores state (one that re-runs steps whose inputs no later launch
    /// overwrites); one that must restore fails with [`Error::StateNotKept`].
    fn record_without_state(&mut self) -> Recording<'_, Self> {
        Recording { program: self, tape: Tape::without_state() }
    }
}

impl<B: Backend> Record for B {}

/// Launches recorded on a borrowed program; see the module doc.
pub struct Recording<'p, B: Backend> {
    program: &'p mut B,
    tape: Tape<B>,
}

impl<'p, B: Backend> Recording<'p, B> {
    /// Runs `kernel` and records it.
    pub fn launch<A: KernelArgs>(&mut self, kernel: &Kernel<A>, args: A) -> Result<(), Error> {
        kernel.check_tangent(self.program)?;
        let args = kernel.launch_args(self.program, args);
        self.tape.launch(self.program, kernel.name(), &args)
    }

    /// Runs `kernel` and records it with a custom gradient (the paper's
    /// `grad_replaced` / `grad_for`): `grad` runs in backward instead of the
    /// generated gradient kernel.
    pub fn launch_with_grad<A: KernelArgs>(
        &mut self,
        kernel: &Kernel<A>,
        args: A,
        grad: impl FnMut(&mut B) -> Result<(), Error> + 'static,
    ) -> Result<(), Error> {
        let args = kernel.launch_args(self.program, args);
        self.tape.launch_with_grad(self.program, kernel.name(), &args, grad)
    }

    /// Ends the current time step (the unit of checkpointing).
    pub fn end_step(&mut self) {
        self.tape.end_step()
    }

    /// The program, read-only while recording (e.g. to read the loss).
    pub fn program(&self) -> &B {
        self.program
    }

    /// Launches recorded so far.
    pub fn len(&self) -> usize {
        self.tape.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tape.is_empty()
    }

    /// What a checkpointed backward with `policy` would do.
    pub fn plan(&self, policy: &dyn Policy) -> Plan {
        self.tape.plan(policy)
    }

    /// The policy a memory budget (bytes of saved state) allows.
    pub fn policy_for_budget(&self, budget: usize) -> Result<Box<dyn Policy>, Error> {
        self.tape.policy_for_budget(budget)
    }

    /// The launches as a Graphviz graph (edges: fields written then read).
    pub fn to_dot(&self) -> String {
        self.tape.to_dot()
    }

    /// Zeroes every adjoint, seeds dL/d`loss` = 1 at each element and runs the
    /// gradients in reverse. Fails with [`Error::Overwrite`] when a launch
    /// overwrote state that an earlier gradient needs: then use
    /// [`Recording::backward_with`] and a memory budget.
    pub fn backward<V: ElementKind, const D: usize>(self, loss: &GradField<V, D>) -> Result<Option<Plan>, Error> {
        self.backward_with(loss, &BackwardOptions::default())
    }

    /// `backward` with options: keep the adjoints (`zero_grads: false`), or
    /// checkpoint within `memory_budget` bytes. Returns the plan it ran when
    /// it checkpointed.
    pub fn backward_with<V: ElementKind, const D: usize>(
        mut self,
        loss: &GradField<V, D>,
        options: &BackwardOptions,
    ) -> Result<Option<Plan>, Error> {
        self.tape.backward(self.program, loss.name(), options)
    }

    /// `backward` with an explicit checkpoint policy.
    pub fn backward_with_policy<V: ElementKind, const D: usize>(
        mut self,
        loss: &GradField<V, D>,
        policy: &dyn Policy,
    ) -> Result<Option<Plan>, Error> {
        self.tape.backward_with(self.program, loss.name(), policy)
    }

    /// Forward mode across the recorded launches: from the state the
    /// recording kept, runs their tangent kernels in launch order with the
    /// inputs' duals seeded by `seeds` ([`along`]); afterwards every output's
    /// dual holds its directional derivative, and the recording can still
    /// run backward. Needs a program built with
    /// `ProgramBuilder::forward_mode` and a recording that keeps state.
    pub fn jvp(&mut self, seeds: &[Direction]) -> Result<(), Error> {
        self.tape.jvp(self.program, seeds)
    }

    /// Diagnoses the gradient of `loss` along `direction` (built with
    /// [`along`]): reverse, forward and finite-difference derivatives, the
    /// growth of the tangents per step, and the branch switches near the
    /// inputs where the loss jumps (`ds_runtime::tape::diagnose`). Needs a
    /// program built with `ProgramBuilder::gradient_diagnostics` and a
    /// recording that keeps state ([`Record::record`]). Runs backward too:
    /// the adjoints hold the gradient afterwards.
    pub fn diagnose<V: ElementKind, const D: usize>(
        mut self,
        loss: &GradField<V, D>,
        direction: &[Direction],
        options: &DiagnoseOptions,
    ) -> Result<GradientReport, Error> {
        self.tape.diagnose(self.program, loss.name(), direction, options)
    }

    /// Backward where `seed` sets the adjoints (a loss computed outside DiffSim).
    pub fn backward_from(
        mut self,
        options: &BackwardOptions,
        seed: impl FnOnce(&mut B) -> Result<(), Error>,
    ) -> Result<Option<Plan>, Error> {
        self.tape.backward_from(self.program, options, seed)
    }
}

/// `field` moved along `values` (one per scalar element, row-major), a
/// direction for [`Recording::diagnose`].
pub fn along<V: ElementKind, const D: usize>(field: &Field<V, D>, values: Vec<f64>) -> Direction {
    Direction { field: field.name().into(), values }
}
