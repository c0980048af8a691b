"""``@ds.kernel`` and ``@ds.func``.

A kernel's scalar parameters are annotated ``ds.i32``, ``ds.i64``,
``ds.f32``, ``ds.f64`` (or ``int`` / ``float``: ds.i32 / ds.f32); each call
checks its arguments against them (a TypeError names the parameter) and
launches with no Python in between (the launcher is Rust's
``KernelBase.__call__``). Integer parameters are ``index`` values in the
kernel (64-bit, range-checked against the annotation when called), so a
Tape sees ``x[t - 1, i]`` as row ``t - 1`` of x, as in the Rust frontend.
``ds.template()`` parameters are bound when the kernel is built: one
compiled kernel per distinct value (fields by identity).

A kernel is built (its Python compiled to the ds dialect) on first use,
with every kernel known then, and compiled with its gradient kernel;
``kernel.grad(*args)`` runs that gradient directly."""

import functools
import inspect

from . import _diffsim as _ds
from . import _runtime
from ._compiler import Source, compile_kernel
from ._errors import KernelError
from ._types import DataType, Template, f32, i32

_PARAM_TYPES = {"f32": ("f32", "f32"), "f64": ("f64", "f64"), "i32": ("index", "i32"), "i64": ("index", "i64")}


def _annotations(fn, what):
    """[(name, DataType or Template)] for fn's parameters."""
    sig = inspect.signature(fn)
    out = []
    file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    line = fn.__code__.co_firstlineno
    for p in sig.parameters.values():
        ann = p.annotation
        if isinstance(ann, str):
            try:
                ann = eval(ann, fn.__globals__)  # noqa: S307 (the user's own annotation)
            except Exception as e:
                raise KernelError(f"the annotation {ann!r} of `{p.name}` does not evaluate: {e}", file, line, 1, fn.__name__) from None
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise KernelError(f"{what} parameters are plain positional ones (`{p.name}` is not)", file, line, 1, fn.__name__)
        if ann is inspect.Parameter.empty:
            raise KernelError(f"parameter `{p.name}` needs a type annotation (ds.i32, ds.f32, ds.f64, ds.template())",
                              file, line, 1, fn.__name__)
        if ann is int:
            ann = i32
        elif ann is float:
            ann = f32
        elif isinstance(ann, type) and issubclass(ann, Template):
            ann = ann()
        if not isinstance(ann, (DataType, Template)):
            raise KernelError(f"parameter `{p.name}`: {ann!r} is not a kernel parameter type (ds.i32, ds.i64, ds.f32, "
                              "ds.f64, ds.template())", file, line, 1, fn.__name__)
        out.append((p.name, ann))
    if sig.return_annotation not in (inspect.Signature.empty, None):
        raise KernelError("kernels return nothing: write results into fields", file, line, 1, fn.__name__)
    return out


class Kernel(_ds.KernelBase):
    """A compiled-on-first-use kernel; call it like a function of its scalar
    arguments. ``kernel.grad(*args)`` launches its gradient kernel."""

    def __init__(self, fn, no_grad=False, template_values=None, label=None):
        self.fn = fn
        self.no_grad = no_grad
        self._template = dict(template_values or {})
        self._label = label or fn.__name__
        params = _annotations(fn, "kernel")
        self._scalars = [(n, t) for n, t in params if isinstance(t, DataType)]
        self._param_kinds = [(n, t.name) for n, t in self._scalars]
        self._src = None
        functools.update_wrapper(self, fn, updated=())
        _runtime.current().add_kernel(self)

    def __repr__(self):
        return f"<ds kernel {self._label}>"

    def _materialize(self):
        _runtime.current().materialize(self)

    def _source(self):
        if self._src is None:
            self._src = Source(self.fn, "kernel")
        return self._src

    def _build_ir(self, state):
        src = self._source()
        name = state.fresh_kernel_name(self._label)
        params = [(n, _PARAM_TYPES[t.name][0]) for n, t in self._scalars]
        return compile_kernel(src, name, state, params, self._template, self.no_grad)

    def ir(self):
        """This kernel's ds-dialect function as built (and compiled) now."""
        state = _runtime.current()
        state.materialize(self)
        return state.built[self][1]


class TemplateKernel:
    """A kernel with ``ds.template()`` parameters: one compiled kernel per
    distinct set of template arguments."""

    def __init__(self, fn, no_grad=False):
        self.fn = fn
        self.no_grad = no_grad
        self._params = _annotations(fn, "kernel")
        self._instances = {}
        functools.update_wrapper(self, fn, updated=())

    def __repr__(self):
        return f"<ds template kernel {self.fn.__name__}>"

    def _instance(self, args):
        if len(args) != len(self._params):
            names = ", ".join(n for n, _ in self._params)
            raise TypeError(f"kernel {self.fn.__name__}({names}) takes {len(self._params)} arguments, given {len(args)}")
        key, values, scalars = [], {}, []
        for (n, t), a in zip(self._params, args):
            if isinstance(t, Template):
                try:
                    hash(a)
                    key.append((n, "v", type(a).__name__, a))
                except TypeError:
                    key.append((n, "id", id(a)))
                values[n] = a
            else:
                scalars.append(a)
        key = (id(_runtime.current()), tuple(key))
        inst = self._instances.get(key)
        if inst is None:
            inst = _TemplateInstance(self, values, len(self._instances))
            self._instances[key] = inst
        return inst, scalars

    def __call__(self, *args):
        inst, scalars = self._instance(args)
        return inst(*scalars)

    def grad(self, *args):
        inst, scalars = self._instance(args)
        return inst.grad(*scalars)


class _TemplateInstance(Kernel):
    def __init__(self, parent, values, k):
        self._keep = values  # the template arguments stay alive with their kernel
        Kernel.__init__(self, parent.fn, parent.no_grad, values, label=f"{parent.fn.__name__}_t{k}")
        self._scalars = [(n, t) for n, t in parent._params if isinstance(t, DataType)]
        self._param_kinds = [(n, t.name) for n, t in self._scalars]


def kernel(fn=None, *, no_grad=False):
    """``@ds.kernel`` (or ``@ds.kernel(no_grad=True)``: no gradient kernel,
    e.g. for optimizer steps)."""
    def make(f):
        params = _annotations(f, "kernel")
        if any(isinstance(t, Template) for _, t in params):
            return TemplateKernel(f, no_grad)
        return Kernel(f, no_grad)
    return make(fn) if fn is not None else make


class Func:
    """A ``@ds.func`` helper: inlined where kernels (or other funcs) call it;
    its parameters are bound to the values passed (an annotation ds.f32 ...
    converts the value), its last statement may return a value."""

    def __init__(self, fn):
        self.fn = fn
        self._signature = inspect.signature(fn)
        self._src = None
        functools.update_wrapper(self, fn, updated=())

    def _source(self):
        if self._src is None:
            self._src = Source(self.fn, "@ds.func")
        return self._src

    def __call__(self, *args, **kwargs):
        raise TypeError(f"@ds.func {self.fn.__name__} is called from kernels (or other @ds.func functions), not from Python")

    def __repr__(self):
        return f"<ds func {self.fn.__name__}>"


def func(fn):
    """``@ds.func``: a helper inlined into the kernels that call it."""
    return Func(fn)
