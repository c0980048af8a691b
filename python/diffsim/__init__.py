"""DiffSim from Python: differentiable simulation kernels written in Python.

    import diffsim as ds

    x = ds.field(ds.f32, (n,), needs_grad=True)
    loss = ds.field(ds.f32, (), needs_grad=True)

    @ds.kernel
    def compute(scale: ds.f32):
        for i in range(n):               # the top-level loop runs in parallel
            loss[None] += scale * ds.sin(x[i]) ** 2   # += on a field is atomic

    x.from_numpy(values)
    with ds.Tape(loss):                  # records launches, runs backward on exit
        compute(2.0)
    dx = x.grad.to_numpy()

Kernels are compiled from their Python source (a subset, see
``diffsim._compiler``) into the ds MLIR dialect by the same builder as the
Rust frontend's ``#[kernel]``, then JIT-compiled for every CPU core
(``ds.init(arch=ds.cuda)``: NVIDIA GPUs) with their gradient kernels.
"""

from . import _diffsim
from ._compiler import grouped, ndrange
from ._errors import KernelError, KernelSyntaxError, KernelTypeError
from ._field import Field, field
from ._interop import Differentiable
from ._kernel import Func, Kernel, TemplateKernel, func, kernel
from ._layout import Layout, i, ij, ijk, j, k, root
from ._linalg import Matrix, Vector
from ._math import (abs, acos, asin, atan, atan2, atomic_add, atomic_max, atomic_min, atomic_sub, cast, ceil, clamp, cos, cosh, e, exp, exp2, floor, inf, log, log2, max,
                    min, pi, pow, random, round, rsqrt, select, sign, sin, sinh, sqrt, static, stop_grad, tan, tanh)
from ._module import Module, load_module
from ._runtime import init, reset
from ._tape import Tape
from ._types import Arch, DataType, cpu, cuda, f32, f64, float32, float64, gpu, i32, i64, int32, int64, template

__version__ = "0.1.0"


class ad:
    """Taichi's ``ti.ad`` names: ``ds.ad.Tape``."""
    Tape = Tape


def cuda_available():
    """Whether this machine has a CUDA driver (``ds.init(arch=ds.cuda)`` works)."""
    return _diffsim.Runtime.cuda_available()


def num_threads():
    """Threads that parallel loops use."""
    return _diffsim.num_threads()


def ir():
    """The current program's ds module after autodiff (compiling it first)."""
    from ._runtime import runtime
    return runtime().ir()


__all__ = [
    "Arch", "DataType", "ad", "atomic_add", "atomic_max", "atomic_min", "atomic_sub", "Differentiable", "Field", "Layout", "root", "i", "ij", "ijk", "j", "k", "Func", "Kernel", "KernelError", "KernelSyntaxError", "KernelTypeError", "Matrix",
    "Module", "Tape", "TemplateKernel", "Vector", "abs", "acos", "asin", "atan", "atan2", "cast", "ceil", "clamp", "cos",
    "cosh", "cpu", "cuda", "cuda_available", "e", "exp", "exp2", "f32", "f64", "field", "float32", "float64", "floor",
    "func", "gpu", "grouped", "i32", "i64", "inf", "init", "int32", "int64", "ir", "kernel", "load_module", "log", "log2",
    "max", "min", "ndrange", "num_threads", "pi", "pow", "random", "reset", "round", "rsqrt", "select", "sign", "sin",
    "sinh", "sqrt", "static", "stop_grad", "tan", "tanh", "template",
]
