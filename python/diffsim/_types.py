"""Element types, kernel annotation types and architectures."""

import numpy as np


class DataType:
    """A scalar type: ``ds.f32``, ``ds.f64``, ``ds.i32`` (field elements and
    kernel parameters) and ``ds.i64`` (kernel parameters)."""

    __slots__ = ("name", "np", "is_float")

    def __init__(self, name, np_dtype, is_float):
        self.name, self.np, self.is_float = name, np.dtype(np_dtype), is_float

    def __repr__(self):
        return f"ds.{self.name}"

    def __call__(self, x):
        """``ds.f32(x)`` in a kernel converts x (outside one, a numpy scalar)."""
        from . import _math
        return _math.cast(x, self)

    def __reduce__(self):
        return (_by_name, (self.name,))


f32 = DataType("f32", np.float32, True)
f64 = DataType("f64", np.float64, True)
i32 = DataType("i32", np.int32, False)
i64 = DataType("i64", np.int64, False)
float32, float64, int32, int64 = f32, f64, i32, i64
FIELD_TYPES = (f32, f64, i32)
_ALL = {t.name: t for t in (f32, f64, i32, i64)}


def _by_name(name):
    return _ALL[name]


def dtype_of(x):
    """The DataType for ``x``: a DataType, a numpy dtype, ``float`` or ``int``."""
    if isinstance(x, DataType):
        return x
    if x is float:
        return f32
    if x is int:
        return i32
    try:
        d = np.dtype(x)
    except TypeError:
        raise TypeError(f"{x!r} is not a DiffSim type (ds.f32, ds.f64, ds.i32)") from None
    for t in _ALL.values():
        if t.np == d:
            return t
    raise TypeError(f"{x!r} is not a DiffSim type (ds.f32, ds.f64, ds.i32)")


class Template:
    """``ds.template()``: a kernel parameter bound when the kernel is built
    (a field, a number, any Python object): one compiled kernel per distinct value."""

    def __repr__(self):
        return "ds.template()"


def template():
    return Template()


class Arch(str):
    """Where kernels run: ``ds.cpu`` (every core) or ``ds.cuda`` (GPU 0)."""

    def __repr__(self):
        return f"ds.{str(self)}"


cpu = Arch("cpu")
cuda = Arch("cuda")
gpu = cuda
