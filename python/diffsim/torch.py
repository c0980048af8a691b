"""PyTorch interop: fields as tensors through DLPack, and DiffSim inside a
PyTorch model with gradients flowing both ways.

    import torch, diffsim as ds, diffsim.torch as dt
    t = torch.from_dlpack(x)            # shares x's memory (CPU programs)
    sim = dt.function(forward, inputs=[height], outputs=[image])
    out = sim(h_tensor)                 # a torch tensor; out.backward() reaches h_tensor.grad

``function`` wraps :class:`diffsim._interop.Differentiable` in a
``torch.autograd.Function``: forward copies the input tensors into the
input fields, runs ``forward()`` and returns the output fields as tensors;
backward re-runs ``forward()`` under a Tape seeded with the output
gradients and returns the input fields' gradients."""

import numpy as np
import torch

from ._interop import Differentiable


def to_torch(field):
    """A tensor sharing `field`'s memory (CPU programs), through DLPack."""
    return torch.from_dlpack(field)


def function(forward, inputs, outputs, keep_state=True, memory_budget=None):
    core = Differentiable(forward, inputs, outputs, keep_state, memory_budget)

    class DiffSimFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            ctx.save_for_backward(*tensors)
            outs = core(*[t.detach().cpu().numpy() for t in tensors])
            like = tensors[0] if tensors else None
            return tuple(torch.from_numpy(np.asarray(o, order="C")).to(like.device if like is not None else "cpu") for o in outs)

        @staticmethod
        def backward(ctx, *grads):
            tensors = ctx.saved_tensors
            gs = core.vjp([t.detach().cpu().numpy() for t in tensors],
                          [None if g is None else g.detach().cpu().numpy() for g in grads])
            return tuple(torch.from_numpy(g).to(t.device, t.dtype) if need else None
                         for g, t, need in zip(gs, tensors, ctx.needs_input_grad))

    def apply(*tensors):
        out = DiffSimFunction.apply(*tensors)
        return out[0] if len(out) == 1 else out

    apply.core = core
    return apply
