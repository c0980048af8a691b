"""PyTorch interop: fields as tensors through DLPack, and DiffSim inside a
PyTorch model with gradients flowing both ways.

    import torch, diffsim as ds, diffsim.torch as dt
    t = dt.to_torch(x)                  # shares x's memory (CPU programs), as torch.from_dlpack(x)
    sim = dt.function(forward, inputs=[height], outputs=[image])
    out = sim(h_tensor)                 # a torch tensor; out.backward() reaches h_tensor.grad

``function`` wraps :class:`diffsim._interop.Differentiable` in a
``torch.autograd.Function``: forward copies the input tensors into the
input fields, runs ``forward()`` and returns the output fields as new
tensors; backward re-runs ``forward()`` under a Tape seeded with the output
gradients and returns the input fields' gradients (once: a gradient of the
gradient is an error).

The input tensors are CPU tensors with the fields' element types
(``ds.f32``: ``torch.float32``, ``ds.f64``: ``torch.float64``) and ds
shapes (a field of n-vectors of shape (a,) takes an (a, n) tensor); anything
else is a ``TypeError`` or ``ValueError`` naming the input and its field,
never a silent conversion. A model on a GPU passes ``t.cpu()`` (autograd
carries the gradient back to the GPU)."""

import torch
from torch.autograd.function import once_differentiable

from ._interop import Differentiable

_DTYPES = {"f32": torch.float32, "f64": torch.float64, "i32": torch.int32}


def to_torch(field):
    """A tensor sharing `field`'s memory (CPU programs), through DLPack:
    writing one is seen by the other and by kernels. While it lives, adding
    kernels or fields to the program is refused (as for ``field.view()``)."""
    return torch.from_dlpack(field)


def torch_dtype(field):
    """The torch element type of `field`'s tensors."""
    return _DTYPES[field.dtype.name]


def _check_inputs(tensors, fields):
    if len(tensors) != len(fields):
        names = ", ".join("@" + f.name for f in fields)
        raise TypeError(f"the DiffSim function takes {len(fields)} tensors (fields {names}), given {len(tensors)}")
    for k, (t, f) in enumerate(zip(tensors, fields)):
        what = f"input {k} (field @{f.name}, {f.dtype!r} of ds shape {f.ds_shape})"
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}: a torch tensor expected, given {type(t).__name__}")
        want = torch_dtype(f)
        if t.dtype != want:
            raise TypeError(f"{what}: a {want} tensor expected, given {t.dtype} (convert it with .to({want}))")
        if tuple(t.shape) != tuple(f.ds_shape):
            raise ValueError(f"{what}: a tensor of shape {tuple(f.ds_shape)} expected, given {tuple(t.shape)}")
        if t.device.type != "cpu":
            raise ValueError(f"{what}: a CPU tensor expected, given one on {t.device} (pass t.cpu(): autograd "
                             f"carries the gradient back)")


def _host(t):
    return t.detach().contiguous().numpy()


def function(forward, inputs, outputs, keep_state=True, memory_budget=None):
    """A function of one tensor per field of `inputs` returning the `outputs`
    fields as tensors (one tensor for one output), differentiable by torch:
    ``forward()`` computes the outputs from the inputs alone (see
    :class:`diffsim.Differentiable`); ``memory_budget`` bounds the Tape's
    checkpoints when backward re-runs it."""
    core = Differentiable(forward, inputs, outputs, keep_state, memory_budget)

    class DiffSimFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            ctx.save_for_backward(*tensors)
            outs = core(*[_host(t) for t in tensors])
            return tuple(torch.from_numpy(o) for o in outs)

        @staticmethod
        @once_differentiable
        def backward(ctx, *grads):
            tensors = ctx.saved_tensors
            gs = core.vjp([_host(t) for t in tensors], [None if g is None else _host(g) for g in grads])
            return tuple(torch.from_numpy(g) if need else None for g, need in zip(gs, ctx.needs_input_grad))

    def apply(*tensors):
        _check_inputs(tensors, core.inputs)
        out = DiffSimFunction.apply(*tensors)
        return out[0] if len(out) == 1 else out

    apply.core = core
    return apply
