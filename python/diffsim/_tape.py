"""``with ds.Tape(loss):`` records the kernel launches of its body and, on
exit, runs backward: every adjoint zeroed, dL/dloss = 1, the gradient
kernels replayed in reverse (``ds_runtime::Tape``). Then ``x.grad`` holds
dL/dx for every field x declared with ``needs_grad=True``.

State that a launch overwrites after another read it (a simulation that
keeps only the current step) needs checkpointing: give ``memory_budget``
(bytes of saved state) and backward recomputes what it did not keep, as
the Rust ``backward_with`` does; ``tape.end_step()`` marks the time steps
(the unit of checkpointing). ``keep_state=False`` spares the copy of the
state taken before its first write, for simulations that never overwrite
what they read (state indexed by time step)."""

from . import _runtime


class Tape:
    def __init__(self, loss=None, clear_gradients=True, memory_budget=None, keep_state=True, seeds=None):
        if loss is None and seeds is None:
            raise TypeError("ds.Tape needs a loss field (or seeds: adjoint values to start backward from)")
        if loss is not None:
            if getattr(loss, "grad", None) is None:
                raise ValueError(f"the loss @{getattr(loss, 'name', loss)} has no gradient field: declare it with needs_grad=True")
        self.loss = loss
        self.clear_gradients = clear_gradients
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        self.keep_state = keep_state
        self.seeds = seeds
        self.plan = None
        self._owner = None

    def _runtime(self):
        owner = self._owner
        if owner is None:
            return _runtime.current().materialize()
        return owner()

    def __enter__(self):
        if self.loss is not None and hasattr(self.loss, "_tape_owner"):
            self._owner = self.loss._tape_owner()
            rt = self._owner()
        else:
            state = _runtime.current()
            if state.tape is not None:
                raise RuntimeError("a Tape is already recording (Tapes do not nest)")
            rt = state.materialize()
            state.tape = self
            self._state = state
        rt.tape_begin(self.keep_state)
        return self

    def end_step(self):
        """Ends a time step (the unit of checkpointing)."""
        self._runtime().tape_end_step()

    @property
    def launches(self):
        return self._runtime().tape_len()

    def __exit__(self, exc_type, exc, tb):
        state = getattr(self, "_state", None)
        rt = self._runtime()
        if state is not None:
            state.tape = None
        if exc_type is not None:
            rt.tape_abort()
            return False
        seeds = None
        if self.seeds is not None:
            seeds = {}
            for f, a in self.seeds.items():
                target = f.grad if getattr(f, "grad", None) is not None else f
                seeds[target.name] = a
        loss = None if self.loss is None else self.loss.name
        self.plan = rt.tape_backward(loss, self.clear_gradients, self.memory_budget, seeds)
        return False
