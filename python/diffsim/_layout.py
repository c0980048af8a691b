"""Field layouts, as in Taichi and the Rust frontend (``diffsim::layout``):
a vector or matrix field stored interleaved (AoS, the default) or by
component (``layout=ds.Layout.SOA``), and several fields placed under one
dense node, interleaved per cell:

    x = ds.Vector.field(2, ds.f32, needs_grad=True)    # no shape: placed below
    v = ds.Vector.field(2, ds.f32, needs_grad=True)
    ds.root.dense(ds.i, n).place(x, v)                 # each cell holds x0 x1 v0 v1
    m = ds.field(ds.f32, n, layout=ds.Layout.SOA)

The adjoints of placed fields are placed the same way under a node of
their own. Fields placed together have the node's shape (a field declared
with a shape must have it), elements of one size (f32 and i32, or f64), are
placed once and in the order they were declared. Kernels, host access and
gradients are the same for every layout; ``view()`` shows the field's
strides in its node's memory."""

from . import _diffsim as _ds
from . import _runtime


class Layout:
    AOS = "aos"
    SOA = "soa"


i, j, k, ij, ijk = "i", "j", "k", "ij", "ijk"


class _Dense:
    def __init__(self, shape, order):
        self.shape = shape
        self.order = order

    def place(self, *fields):
        """Places `fields` under this node (in the order they were declared)."""
        from ._field import _caller
        state = _runtime.current()
        where = _caller()[:2]
        if not fields:
            raise ValueError("place() takes at least one field")
        last = None
        for f in fields:
            if f._state is not state:
                raise ValueError(f"@{f.name} is not a field of the current program")
            if f.layout is not None:
                raise ValueError(f"@{f.name} is placed twice")
            if f.shape is not None and f.shape != self.shape:
                raise ValueError(f"@{f.name} has cells {f.shape}, the node {self.shape}")
            if last is not None:
                if state.fields.index(f) <= state.fields.index(last):
                    raise ValueError(f"place fields in the order they were declared (@{f.name} was declared before @{last.name})")
                if f.dtype.np.itemsize != last.dtype.np.itemsize:
                    raise ValueError(f"@{last.name} holds {last.dtype!r}, @{f.name} {f.dtype!r}: place fields of one element size together")
            last = f
        groups = [list(fields), [f.grad for f in fields if f.grad is not None]]
        for group in groups:
            if not group:
                continue
            name = state.fresh_name(group[0].name + "_cells")
            for f in group:
                f._place(self.shape, name)
            state.add_node((name, self.shape, self.order, where))
        return self


class _Root:
    def dense(self, axes, shape=None, layout=Layout.AOS):
        """A dense node of cells `shape` (``dense(ds.ij, (n, m))`` or ``dense((n, m))``)."""
        if shape is None:
            axes, shape = None, axes
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(int(d) for d in shape)
        if axes is not None and len(axes) != len(shape):
            raise ValueError(f"{len(axes)} axes ({axes}) for a {len(shape)}-dimensional node")
        if layout not in (Layout.AOS, Layout.SOA):
            raise ValueError(f"a layout is ds.Layout.AOS or ds.Layout.SOA, not {layout!r}")
        return _Dense(shape, layout)


root = _Root()


def node_decl(node):
    name, shape, order, (file, line) = node
    return _ds.dense_decl(name, list(shape), order, file, max(int(line), 1), 1)
