"""A DiffSim computation as a differentiable function of arrays, for other
frameworks (``diffsim.torch.function`` wraps it in a
``torch.autograd.Function``, the paper's water_renderer pattern).

``Differentiable(forward, inputs, outputs)``: calling it with one array per
input field sets those fields, runs ``forward()`` (Python code launching
kernels: it must compute the outputs from the inputs alone, resetting any
state it uses) and returns copies of the output fields. ``vjp(arrays,
grad_outputs)`` is the vector-Jacobian product: it sets the inputs again,
re-runs ``forward()`` under a Tape whose backward starts from the output
adjoints ``grad_outputs`` (``ds.Tape(seeds=...)``), and returns the input
fields' gradients. Re-running the forward at backward time keeps no
recording open between the two (other launches may run in between)."""

import numpy as np

from ._tape import Tape


class Differentiable:
    def __init__(self, forward, inputs, outputs, keep_state=True, memory_budget=None):
        self.forward = forward
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        for f in self.inputs:
            if getattr(f, "grad", None) is None:
                raise ValueError(f"input field @{f.name} needs needs_grad=True (its gradient is returned)")
        for f in self.outputs:
            if getattr(f, "grad", None) is None:
                raise ValueError(f"output field @{f.name} needs needs_grad=True (backward starts from its adjoint)")
        self.keep_state = keep_state
        self.memory_budget = memory_budget

    def _load(self, arrays):
        if len(arrays) != len(self.inputs):
            raise TypeError(f"{len(self.inputs)} input arrays expected, given {len(arrays)}")
        for f, a in zip(self.inputs, arrays):
            f.from_numpy(np.asarray(a))

    def __call__(self, *arrays):
        self._load(arrays)
        self.forward()
        return tuple(f.to_numpy() for f in self.outputs)

    def vjp(self, arrays, grad_outputs):
        self._load(arrays)
        seeds = {}
        for f, g in zip(self.outputs, grad_outputs):
            seeds[f] = np.zeros(f.ds_shape, f.dtype.np) if g is None else np.asarray(g, dtype=f.dtype.np, order="C")
        with Tape(seeds=seeds, keep_state=self.keep_state, memory_budget=self.memory_budget):
            self.forward()
        return tuple(f.grad.to_numpy() for f in self.inputs)
