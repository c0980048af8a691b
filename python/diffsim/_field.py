"""Fields: ``ds.field(ds.f32, shape, needs_grad=True)``, ``ds.Vector.field``,
``ds.Matrix.field``; on the host ``to_numpy()`` (a copy), ``from_numpy(a)``,
``view()`` (a numpy array sharing the field's memory), ``x[i, j]``,
``fill(v)``; ``x.grad`` is the adjoint field.

A field of n-vectors with shape (a, b) is the ds field of shape (a, b, n)
(components last, matrices row-major): that is the shape of its numpy
arrays. In kernels, ``x[i, j]`` loads an element (a scalar, ``ds.Vector``
or ``ds.Matrix``), ``x[i, j] = v`` stores, ``x[i, j] += v`` adds atomically."""

import inspect
import linecache
import re

import numpy as np

from . import _diffsim as _ds
from . import _runtime
from ._types import FIELD_TYPES, dtype_of

_ASSIGNED = re.compile(r"^\s*([A-Za-z_][A-Za-z_0-9]*)\s*(?::[^=]*)?=[^=]")


def _caller():
    """The file and line of the user's code that declared a field, and the
    name it was assigned to there (`x = ds.field(...)`), if any."""
    f = inspect.currentframe()
    here = __file__.rsplit("/", 1)[0]
    while f is not None and f.f_code.co_filename.startswith(here):
        f = f.f_back
    if f is None:
        return "<unknown>", 0, None
    file, line = f.f_code.co_filename, f.f_lineno
    m = _ASSIGNED.match(linecache.getline(file, line))
    return file, line, (m.group(1) if m else None)


def _shape_of(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"a field's shape has no negative extents: {shape}")
    return shape


def declare(dtype, shape, components, needs_grad, name, layout=None, _where=None):
    t = dtype_of(dtype)
    if t not in FIELD_TYPES:
        raise TypeError(f"fields hold ds.f32, ds.f64 or ds.i32 elements, not {t!r}")
    if needs_grad and not t.is_float:
        raise TypeError(f"a field of {t!r} has no gradient (needs_grad needs ds.f32 or ds.f64)")
    from ._layout import Layout
    if layout not in (None, Layout.AOS, Layout.SOA):
        raise ValueError(f"a layout is ds.Layout.AOS or ds.Layout.SOA, not {layout!r}")
    placed_later = shape is None
    shape = None if placed_later else _shape_of(shape)
    state = _runtime.current()
    file, line, assigned = _where or _caller()
    if name is not None and (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", name)):
        raise ValueError(f"a field name is letters, digits and _ (not starting with a digit), not {name!r}")
    base = name or assigned or f"field{len(state.fields)}"
    field = Field(state, state.fresh_name(base), t, shape, tuple(components), (file, line))
    state.add_field(field)
    if needs_grad:
        grad = Field(state, state.fresh_name(field.name + "_grad"), t, shape, tuple(components), (file, line))
        field.grad = grad
        state.add_field(grad)
    if layout == Layout.SOA:
        if placed_later:
            raise ValueError("a field placed later takes its layout from its node: ds.root.dense(..., layout=ds.Layout.SOA)")
        from ._layout import root
        root.dense(shape, layout=Layout.SOA).place(field)
    return field


def field(dtype, shape=None, needs_grad=False, name=None, layout=None):
    """A field of scalars of ``dtype`` (ds.f32, ds.f64, ds.i32) over ``shape``
    (a tuple, an int, or () for a single value; None: given by the node it
    is placed under, see ``ds.root``); ``needs_grad`` declares its adjoint
    field ``x.grad``; ``name`` names it in the IR and in errors (by default
    the variable it is assigned to); ``layout=ds.Layout.SOA`` stores it by
    component."""
    return declare(dtype, shape, (), needs_grad, name, layout)


class HostAccess:
    """Host access shared by fields and the fields of loaded modules; needs
    `name`, `dtype`, `ds_shape`, `components` and `_rt()`."""

    def to_numpy(self, dtype=None):
        """A copy of the field as a numpy array of its ds shape (shape + components)."""
        a = self._rt().read(self.name)
        return a if dtype is None else a.astype(dtype)

    def from_numpy(self, array):
        """Sets the field from an array of its ds shape (converted to its element type)."""
        a = np.asarray(array)
        if a.shape != self.ds_shape:
            raise ValueError(f"field @{self.name} has shape {self.ds_shape}, given an array of shape {a.shape}")
        if not self.dtype.is_float and a.dtype.kind == "f":
            raise TypeError(f"field @{self.name} holds integers ({self.dtype!r}), given floats")
        self._rt().write(self.name, np.asarray(a, dtype=self.dtype.np, order="C"))

    def copy_from(self, other):
        self.from_numpy(other.to_numpy())

    def fill(self, value):
        """Sets every element (every component) to ``value``."""
        if value == 0:
            self._rt().zero(self.name)
        else:
            self._rt().fill(self.name, float(value))

    def zero_(self):
        self._rt().zero(self.name)

    def view(self):
        """A numpy array that is the field's memory (CPU programs): writing it
        writes the field, and kernels' writes show in it. Kernels and fields
        are then fixed (adding one would recompile the program: refused while
        views are alive)."""
        rt = self._rt()
        return self._track(rt.view(self.name))

    def _track(self, array):
        return array

    def __dlpack__(self, **kwargs):
        """DLPack export of the field's memory (CPU programs; zero-copy:
        ``torch.from_dlpack(x)``, ``np.from_dlpack(x)`` share it)."""
        return self.view().__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU: GPU fields are copied with to_numpy()

    def __array__(self, dtype=None, copy=None):
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype)

    def _offset(self, index):
        if index is None:
            index = ()
        if not isinstance(index, tuple):
            index = (index,)
        if any(isinstance(i, slice) for i in index):
            raise IndexError(f"field @{self.name}: host access takes indices, not slices (use to_numpy() or view())")
        nd = len(self.ds_shape) - len(self.components)
        if len(index) not in (nd, len(self.ds_shape)):
            raise IndexError(f"field @{self.name} takes {nd} indices, given {len(index)}")
        idx = []
        for i, n in zip(index, self.ds_shape):
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise IndexError(f"field @{self.name}: index {i!r} is not an integer")
            if not 0 <= i < n:
                raise IndexError(f"field @{self.name} (shape {self.ds_shape}) indexed with {tuple(index)}")
            idx.append(int(i))
        off = 0
        for i, n in zip(idx, self.ds_shape):
            off = off * n + i
        whole = len(index) == nd and self.components
        per = int(np.prod(self.components)) if whole else 1
        return off * per, whole

    def __getitem__(self, index):
        off, whole = self._offset(index)
        rt = self._rt()
        if not whole:
            return rt.get(self.name, off)
        values = [rt.get(self.name, off + k) for k in range(int(np.prod(self.components)))]
        return np.array(values, dtype=self.dtype.np).reshape(self.components)

    def __setitem__(self, index, value):
        off, whole = self._offset(index)
        rt = self._rt()
        if not whole:
            rt.set(self.name, off, value)
            return
        from ._linalg import Matrix, Vector
        if isinstance(value, Vector):
            value = value.c
        elif isinstance(value, Matrix):
            value = value.rows
        v = np.asarray(value, dtype=self.dtype.np)
        if v.shape != self.components:
            v = np.broadcast_to(v, self.components)
        for k, x in enumerate(v.reshape(-1)):
            rt.set(self.name, off + k, x.item())


class Field(HostAccess):
    """A field of the current program (see the module doc)."""

    def __init__(self, state, name, dtype, shape, components, where):
        self._state = state
        self.name = name
        self.dtype = dtype
        self.components = components
        self.shape = shape
        self.ds_shape = None if shape is None else shape + components
        self.grad = None
        self.layout = None  # the dense node it is placed under
        self._where = where

    def _place(self, shape, node):
        self.shape = shape
        self.ds_shape = shape + self.components
        self.layout = node

    @property
    def n(self):
        return self.components[0] if self.components else None

    @property
    def m(self):
        return self.components[1] if len(self.components) > 1 else None

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        kind = f"{'x'.join(map(str, self.components))} of " if self.components else ""
        if self.shape is None:
            return f"<ds field @{self.name}: {kind}{self.dtype!r}, not placed yet>"
        return f"<ds field @{self.name}: {kind}{self.dtype!r} of shape {self.shape}>"

    def __len__(self):
        if not self.shape:
            raise TypeError("a 0-D field has no length")
        return self.shape[0]

    def _rt(self):
        if self._state is not _runtime.current() or not self._state.alive:
            raise RuntimeError(f"field @{self.name} belongs to a program replaced by ds.init()")
        return self._state.materialize()

    def _track(self, array):
        return _runtime._track_view(self._state, array)

    def _decl(self):
        if self.shape is None:
            raise ValueError(f"field @{self.name} has no shape: give one, or place it (ds.root.dense(shape).place(x))")
        file, line = self._where
        grad = self.grad.name if self.grad is not None else None
        return _ds.field_decl(self.name, self.dtype.name, list(self.ds_shape), grad, file, max(int(line), 1), 1, self.layout)

    # --- in kernels (called by the compiler) ---
    def _element(self, index, load):
        """The element at `index` (kernel values), built by `load(name, ty, idx)` per scalar."""
        scalars = []
        for comp in _component_indices(self.components):
            scalars.append(load(self.name, self.dtype.name, list(index) + list(comp)))
        from ._linalg import Matrix, Vector
        if not self.components:
            return scalars[0]
        if len(self.components) == 1:
            return Vector(scalars)
        n, m = self.components
        return Matrix([scalars[i * m:(i + 1) * m] for i in range(n)])


def _component_indices(components):
    out = [()]
    for n in components:
        out = [p + (k,) for p in out for k in range(n)]
    return out
