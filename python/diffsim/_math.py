"""Math functions for kernels (``ds.sin``, ``ds.max`` ...): on kernel values
they build the ops, on vectors and matrices they apply per component, and
on Python numbers (in Python scope, or on build-time values) they compute."""

import builtins
import math as _m

from . import _diffsim as _ds
from ._linalg import Matrix, Vector, _select
from ._types import dtype_of

Expr = _ds.Expr


def _is_expr(x):
    return isinstance(x, Expr)


def _unary(name, py):
    def f(x):
        if _is_expr(x):
            return x.math(name)
        if isinstance(x, (Vector, Matrix)):
            return x.map(f)
        return py(x)
    f.__name__ = name
    f.__doc__ = f"{name}(x), per component for vectors and matrices."
    return f


def _binary(name, a, b, py):
    if isinstance(a, (Vector, Matrix)) or isinstance(b, (Vector, Matrix)):
        from ._linalg import _elementwise2
        return _elementwise2(a, b, lambda x, y: _binary(name, x, y, py))
    if _is_expr(a) or _is_expr(b):
        return _ds.math2(name, a, b)
    return py(a, b)


def _binary_fn(name, py, doc):
    def f(a, b):
        return _binary(name, a, b, py)
    f.__name__ = name
    f.__doc__ = doc
    return f


def _fold(name, py, doc):
    def f(*args):
        if len(args) == 1:
            args = tuple(args[0])
        acc = args[0]
        for a in args[1:]:
            acc = _binary(name, acc, a, py)
        return acc
    f.__name__ = name
    f.__doc__ = doc
    return f


# The math functions, each declared once: its name (the op the builder
# makes from a kernel value, `Expr.math` / `math2` in python/src/builder.rs,
# whose tables hold the same names) and what it computes on Python numbers.
UNARY = {
    "sin": _m.sin, "cos": _m.cos, "tan": _m.tan, "tanh": _m.tanh, "exp": _m.exp, "log": _m.log, "sqrt": _m.sqrt,
    "rsqrt": lambda x: 1.0 / _m.sqrt(x), "asin": _m.asin, "acos": _m.acos, "atan": _m.atan, "sinh": _m.sinh,
    "cosh": _m.cosh, "log2": _m.log2, "exp2": lambda x: 2.0 ** x, "floor": _m.floor, "ceil": _m.ceil,
    "round": builtins.round,
}
BINARY = {  # name: (on numbers, doc, folds over any number of arguments)
    "atan2": (_m.atan2, "atan2(y, x), per component for vectors and matrices.", False),
    "pow": (lambda a, b: a ** b, "pow(x, e): x ** e, per component for vectors and matrices.", False),
    "max": (builtins.max, "The largest of the arguments (per component for vectors).", True),
    "min": (builtins.min, "The smallest of the arguments (per component for vectors).", True),
}

for _name, _py in UNARY.items():
    globals()[_name] = _unary(_name, _py)
for _name, (_py, _doc, _folds) in BINARY.items():
    globals()[_name] = (_fold if _folds else _binary_fn)(_name, _py, _doc)
del _name, _py, _doc, _folds


def abs(x):
    if _is_expr(x):
        return _ds.abs(x)
    if isinstance(x, (Vector, Matrix)):
        return x.map(abs)
    return builtins.abs(x)


def clamp(x, lo, hi):
    return min(max(x, lo), hi)


def sign(x):
    """-1, 0 or 1 (no gradient flows through it)."""
    if isinstance(x, (Vector, Matrix)):
        return x.map(sign)
    if not _is_expr(x):
        return (x > 0) - (x < 0)
    zero = x * 0
    return select(x > 0, zero + 1, select(x < 0, zero - 1, zero))


def select(cond, a, b):
    """``a`` where ``cond`` holds, else ``b`` (both evaluated; per component for vectors)."""
    return _select(cond, a, b)


def cast(x, dtype):
    """``x`` converted to ``dtype`` (ds.f32, ds.f64, ds.i32, ds.i64)."""
    t = dtype_of(dtype)
    if isinstance(x, (Vector, Matrix)):
        return x.map(lambda c: cast(c, t))
    if _is_expr(x):
        return _ds.cast(x, t.name)
    return t.np.type(x).item() if not t.is_float else float(t.np.type(x))


def stop_grad(x):
    """``x``, with no gradient flowing through it (Taichi's ``ti.stop_grad``)."""
    if isinstance(x, (Vector, Matrix)):
        return x.map(stop_grad)
    if _is_expr(x):
        return _ds.stop_grad(x)
    return x


def random(dtype=None):
    """A uniform random number in [0, 1) of ``dtype`` (f32 by default): a
    counter-based generator, replayed exactly by a recording's gradient.
    Only in kernels."""
    if dtype is None:
        from ._runtime import current
        t = current().default_fp
    else:
        t = dtype_of(dtype)
    return _ds.random(t.name)


def static(x, *more):
    """A value known when the kernel is built: ``for i in ds.static(range(3))``
    unrolls the loop, ``if ds.static(flag)`` builds only the taken branch."""
    if more:
        return (x,) + more
    if _is_expr(x):
        raise TypeError("ds.static needs a value known when the kernel is built, not a kernel value")
    return x


pi = _m.pi
e = _m.e
inf = _m.inf


def _atomic(kind):
    def f(target, value):
        raise TypeError(f"ds.atomic_{kind}(x[i], v) updates a field element in kernels")
    f.__name__ = f"atomic_{kind}"
    f.__doc__ = (f"``ds.atomic_{kind}(x[i], v)`` in a kernel: x[i] updated atomically with v "
                 "(returns nothing, unlike Taichi's, which returns the old value).")
    f._atomic = kind
    return f


ATOMICS = ("add", "sub", "min", "max")  # ds.atomic_add ...: the field updates of `update` in builder.rs
for _kind in ATOMICS:
    globals()["atomic_" + _kind] = _atomic(_kind)
del _kind

# Python's math module in kernels: math.sin is ds.sin, and so on.
PY_MATH = {getattr(_m, n): globals()[n] for n, py in list(UNARY.items()) + [(n, b[0]) for n, b in BINARY.items()]
           if getattr(_m, n, None) is py}
PY_MATH.update({_m.pow: globals()["pow"], _m.fabs: abs})
