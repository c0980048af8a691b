"""Small vectors and matrices of kernel values (``ds.Vector``, ``ds.Matrix``),
as in Taichi: scalarized, so the IR holds only scalars. Components are
kernel values or Python numbers; the operators work component by component
(``*`` too), ``@`` is the matrix product. In Python scope they work on
numbers the same way."""

from . import _diffsim as _ds

Expr = _ds.Expr


def _is_expr(x):
    return isinstance(x, Expr)


def _known_index(i, n, what):
    if isinstance(i, bool) or not isinstance(i, int):
        try:
            i = i.__index__()
        except (AttributeError, TypeError):
            return None
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for {what} of {n}")
    return i % n


def _pick(values, i, what):
    """values[i] for a build-time index, else a select chain on the run-time index."""
    k = _known_index(i, len(values), what) if not _is_expr(i) else None
    if k is not None:
        return values[k]
    if not _is_expr(i):
        raise TypeError(f"{what} is indexed by an integer, not {type(i).__name__}")
    rest = values[-1]
    for k in range(len(values) - 2, -1, -1):
        rest = _select(i == k, values[k], rest)
    return rest


def _select(cond, a, b):
    if isinstance(a, (Vector, Matrix)) or isinstance(b, (Vector, Matrix)):
        return _elementwise2(a, b, lambda x, y: _select(cond, x, y))
    if not _is_expr(cond):
        return a if cond else b
    return _ds.select(cond, a, b)


def _elementwise2(a, b, f):
    if isinstance(a, Matrix) or isinstance(b, Matrix):
        if isinstance(a, Matrix) and isinstance(b, Matrix):
            if (a.n, a.m) != (b.n, b.m):
                raise TypeError(f"a {a.n}x{a.m} matrix and a {b.n}x{b.m} matrix mixed")
            return Matrix([[f(x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a.rows, b.rows)])
        if isinstance(a, Vector) or isinstance(b, Vector):
            raise TypeError("a matrix and a vector mixed element-wise: use @ for the product")
        if isinstance(a, Matrix):
            return Matrix([[f(x, b) for x in r] for r in a.rows])
        return Matrix([[f(a, y) for y in r] for r in b.rows])
    if isinstance(a, Vector) and isinstance(b, Vector):
        if a.n != b.n:
            raise TypeError(f"a {a.n}-vector and a {b.n}-vector mixed")
        return Vector([f(x, y) for x, y in zip(a.c, b.c)])
    if isinstance(a, Vector):
        return Vector([f(x, b) for x in a.c])
    return Vector([f(a, y) for y in b.c])


def _scalar_ok(x):
    return _is_expr(x) or isinstance(x, (int, float)) or hasattr(x, "__float__")


class _Ops:
    """Element-wise arithmetic shared by Vector and Matrix."""

    def _bin(self, o, f):
        if not (isinstance(o, (Vector, Matrix)) or _scalar_ok(o)):
            return NotImplemented
        return _elementwise2(self, o, f)

    def _rbin(self, o, f):
        if not (isinstance(o, (Vector, Matrix)) or _scalar_ok(o)):
            return NotImplemented
        return _elementwise2(o, self, f)

    def __add__(self, o):
        return self._bin(o, lambda x, y: x + y)

    def __radd__(self, o):
        return self._rbin(o, lambda x, y: x + y)

    def __sub__(self, o):
        return self._bin(o, lambda x, y: x - y)

    def __rsub__(self, o):
        return self._rbin(o, lambda x, y: x - y)

    def __mul__(self, o):
        return self._bin(o, lambda x, y: x * y)

    def __rmul__(self, o):
        return self._rbin(o, lambda x, y: x * y)

    def __truediv__(self, o):
        return self._bin(o, lambda x, y: x / y)

    def __rtruediv__(self, o):
        return self._rbin(o, lambda x, y: x / y)

    def __floordiv__(self, o):
        return self._bin(o, lambda x, y: x // y)

    def __mod__(self, o):
        return self._bin(o, lambda x, y: x % y)

    def __pow__(self, o):
        return self._bin(o, lambda x, y: x ** y)

    def __rpow__(self, o):
        return self._rbin(o, lambda x, y: x ** y)

    def __neg__(self):
        return self.map(lambda x: -x)

    def __pos__(self):
        return self

    def __abs__(self):
        from ._math import abs as _abs
        return self.map(_abs)

    def __bool__(self):
        raise TypeError("a vector or matrix has no truth value: compare its components")

    __hash__ = None


class Vector(_Ops):
    """An n-vector: ``ds.Vector([a, b])``; ``v[i]``, ``v.x``; ``dot``, ``cross``,
    ``norm``, ``normalized``, ``outer_product``; ``ds.Vector.field(n, dtype, shape)``."""

    __slots__ = ("c",)

    def __init__(self, components, dt=None):
        if isinstance(components, Vector):
            components = components.c
        c = list(components)
        if not c:
            raise ValueError("a vector has at least one component")
        for x in c:
            if isinstance(x, (Vector, Matrix)):
                raise TypeError("a vector's components are scalars (use ds.Matrix for rows)")
        if dt is not None:
            from ._math import cast
            c = [cast(x, dt) for x in c]
        self.c = c

    @classmethod
    def field(cls, n, dtype, shape=None, needs_grad=False, name=None, layout=None):
        """A field of n-vectors (its ds shape: shape + (n,))."""
        from ._field import declare
        return declare(dtype, shape, (int(n),), needs_grad, name, layout)

    @staticmethod
    def zero(dt, n):
        from ._math import cast
        return Vector([cast(0, dt)] * n)

    @staticmethod
    def unit(n, i, dt=None):
        from ._math import cast
        return Vector([cast(1 if k == i else 0, dt) if dt else (1.0 if k == i else 0.0) for k in range(n)])

    @property
    def n(self):
        return len(self.c)

    def __len__(self):
        return len(self.c)

    def __iter__(self):
        return iter(self.c)

    def __repr__(self):
        return f"ds.Vector({self.c!r})"

    def map(self, f):
        return Vector([f(x) for x in self.c])

    def __getitem__(self, i):
        if isinstance(i, tuple) and len(i) == 1:
            i = i[0]
        if isinstance(i, slice):
            return Vector(self.c[i])
        return _pick(self.c, i, "a vector")

    def with_component(self, i, value):
        """A copy with component i set (a run-time i sets it by selects)."""
        if isinstance(i, tuple) and len(i) == 1:
            i = i[0]
        c = list(self.c)
        k = _known_index(i, len(c), "a vector") if not _is_expr(i) else None
        if k is not None:
            c[k] = value
        elif _is_expr(i):
            c = [_select(i == j, value, x) for j, x in enumerate(c)]
        else:
            raise TypeError(f"a vector is indexed by an integer, not {type(i).__name__}")
        return Vector(c)

    def _axis(k):
        def get(self):
            return self.c[k]
        return property(get)

    x, y, z, w = _axis(0), _axis(1), _axis(2), _axis(3)
    del _axis

    def __matmul__(self, o):
        if isinstance(o, Vector):
            return self.dot(o)
        return NotImplemented

    def dot(self, o):
        if not isinstance(o, Vector) or o.n != self.n:
            raise TypeError("dot takes a vector of the same size")
        acc = self.c[0] * o.c[0]
        for a, b in zip(self.c[1:], o.c[1:]):
            acc = acc + a * b
        return acc

    def cross(self, o):
        a, b = self.c, o.c
        if self.n == 2 and o.n == 2:
            return a[0] * b[1] - a[1] * b[0]
        if self.n == 3 and o.n == 3:
            return Vector([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
        raise TypeError("cross takes two 2-vectors or two 3-vectors")

    def norm_sqr(self):
        return self.dot(self)

    def norm(self, eps=0):
        from ._math import sqrt
        s = self.norm_sqr()
        return sqrt(s + eps) if eps else sqrt(s)

    def norm_inv(self, eps=0):
        from ._math import rsqrt
        return rsqrt(self.norm_sqr() + eps)

    def normalized(self, eps=0):
        n = self.norm(eps)
        return self.map(lambda x: x / n)

    def outer_product(self, o):
        return Matrix([[a * b for b in o.c] for a in self.c])

    def sum(self):
        acc = self.c[0]
        for x in self.c[1:]:
            acc = acc + x
        return acc

    def max(self):
        from ._math import max as _max
        return _max(*self.c)

    def min(self):
        from ._math import min as _min
        return _min(*self.c)

    def cast(self, dt):
        return Vector(self.c, dt)

    def to_list(self):
        return list(self.c)

    def transpose(self):
        return Matrix([self.c])


class Matrix(_Ops):
    """An n x m matrix, row-major: ``ds.Matrix([[a, b], [c, d]])``; ``m[i, j]``;
    ``@`` products, ``transpose``, ``trace``, ``determinant``, ``inverse``;
    ``ds.Matrix.field(n, m, dtype, shape)``."""

    __slots__ = ("rows",)

    def __init__(self, rows, dt=None):
        if isinstance(rows, Matrix):
            rows = rows.rows
        rows = [list(r.c) if isinstance(r, Vector) else list(r) for r in rows]
        if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
            raise ValueError("a matrix is a non-empty list of rows of one length")
        if dt is not None:
            from ._math import cast
            rows = [[cast(x, dt) for x in r] for r in rows]
        self.rows = rows

    @classmethod
    def field(cls, n, m, dtype, shape=None, needs_grad=False, name=None, layout=None):
        """A field of n x m matrices (its ds shape: shape + (n, m))."""
        from ._field import declare
        return declare(dtype, shape, (int(n), int(m)), needs_grad, name, layout)

    @staticmethod
    def identity(dt, n):
        from ._math import cast
        return Matrix([[cast(1 if i == j else 0, dt) for j in range(n)] for i in range(n)])

    @staticmethod
    def zero(dt, n, m=None):
        from ._math import cast
        return Matrix([[cast(0, dt) for _ in range(n if m is None else m)] for _ in range(n)])

    @staticmethod
    def diag(n, value):
        return Matrix([[value if i == j else 0.0 * value for j in range(n)] for i in range(n)])

    @staticmethod
    def cols(columns):
        return Matrix([list(r) for r in zip(*[c.c if isinstance(c, Vector) else c for c in columns])])

    @property
    def n(self):
        return len(self.rows)

    @property
    def m(self):
        return len(self.rows[0])

    def __repr__(self):
        return f"ds.Matrix({self.rows!r})"

    def map(self, f):
        return Matrix([[f(x) for x in r] for r in self.rows])

    def __iter__(self):
        return (Vector(r) for r in self.rows)

    def __len__(self):
        return self.n

    def __getitem__(self, ij):
        if not isinstance(ij, tuple):
            return Vector([_pick(col, ij, "a matrix's rows") for col in zip(*self.rows)])
        if len(ij) != 2:
            raise IndexError(f"a matrix takes 2 indices, got {len(ij)}")
        i, j = ij
        row = [_pick(col, i, "a matrix's rows") for col in zip(*self.rows)] if _is_expr(i) else self.rows[_known_index(i, self.n, "a matrix's rows")]
        return _pick(row, j, "a matrix's columns")

    def with_component(self, ij, value):
        if not isinstance(ij, tuple) or len(ij) != 2:
            raise IndexError("a matrix element is set with 2 indices")
        i, j = ij
        rows = []
        for r, row in enumerate(self.rows):
            if _is_expr(i):
                new = Vector(row).with_component(j, value).c
                rows.append([_select(i == r, a, b) for a, b in zip(new, row)])
            elif _known_index(i, self.n, "a matrix's rows") == r:
                rows.append(Vector(row).with_component(j, value).c)
            else:
                rows.append(list(row))
        return Matrix(rows)

    def __matmul__(self, o):
        if isinstance(o, Matrix):
            if self.m != o.n:
                raise TypeError(f"a {self.n}x{self.m} matrix times a {o.n}x{o.m} one")
            return Matrix([[_dot(r, c) for c in zip(*o.rows)] for r in self.rows])
        if isinstance(o, Vector):
            if self.m != o.n:
                raise TypeError(f"a {self.n}x{self.m} matrix times a {o.n}-vector")
            return Vector([_dot(r, o.c) for r in self.rows])
        return NotImplemented

    def __rmatmul__(self, o):
        if isinstance(o, Vector):
            if o.n != self.n:
                raise TypeError(f"a {o.n}-vector times a {self.n}x{self.m} matrix")
            return Vector([_dot(o.c, c) for c in zip(*self.rows)])
        return NotImplemented

    def transpose(self):
        return Matrix([list(c) for c in zip(*self.rows)])

    @property
    def T(self):
        return self.transpose()

    def trace(self):
        acc = self.rows[0][0]
        for i in range(1, min(self.n, self.m)):
            acc = acc + self.rows[i][i]
        return acc

    def determinant(self):
        m = self.rows
        if (self.n, self.m) == (1, 1):
            return m[0][0]
        if (self.n, self.m) == (2, 2):
            return m[0][0] * m[1][1] - m[0][1] * m[1][0]
        if (self.n, self.m) == (3, 3):
            return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                    + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
        raise TypeError("determinant of 1x1, 2x2 and 3x3 matrices")

    def inverse(self):
        m = self.rows
        d = self.determinant()
        if (self.n, self.m) == (1, 1):
            return Matrix([[1 / m[0][0]]])
        if (self.n, self.m) == (2, 2):
            return Matrix([[m[1][1] / d, -m[0][1] / d], [-m[1][0] / d, m[0][0] / d]])
        if (self.n, self.m) == (3, 3):
            def cof(i, j):
                r0, r1, c0, c1 = (i + 1) % 3, (i + 2) % 3, (j + 1) % 3, (j + 2) % 3
                return m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
            return Matrix([[cof(j, i) / d for j in range(3)] for i in range(3)])
        raise TypeError("inverse of 1x1, 2x2 and 3x3 matrices")

    def sum(self):
        acc = None
        for r in self.rows:
            for x in r:
                acc = x if acc is None else acc + x
        return acc

    def norm_sqr(self):
        acc = None
        for r in self.rows:
            for x in r:
                acc = x * x if acc is None else acc + x * x
        return acc

    def norm(self, eps=0):
        from ._math import sqrt
        s = self.norm_sqr()
        return sqrt(s + eps) if eps else sqrt(s)

    def cast(self, dt):
        return Matrix(self.rows, dt)

    def to_list(self):
        return [list(r) for r in self.rows]


def _dot(a, b):
    acc = a[0] * b[0]
    for x, y in zip(a[1:], b[1:]):
        acc = acc + x * y
    return acc


def flatten(v):
    """A value's scalars and how to rebuild it: ('s', None), ('v', n), ('m', (n, m))."""
    if isinstance(v, Vector):
        return list(v.c), ("v", v.n)
    if isinstance(v, Matrix):
        return [x for r in v.rows for x in r], ("m", (v.n, v.m))
    return [v], ("s", None)


def rebuild(kind, scalars):
    tag, shape = kind
    if tag == "s":
        return scalars[0]
    if tag == "v":
        return Vector(scalars)
    n, m = shape
    return Matrix([scalars[i * m:(i + 1) * m] for i in range(n)])


def describe(kind):
    tag, shape = kind
    if tag == "s":
        return "a scalar"
    if tag == "v":
        return f"a {shape}-vector"
    return f"a {shape[0]}x{shape[1]} matrix"
