"""Python kernels to the ds dialect: walks a kernel function's ``ast`` and
calls the Rust builder (``diffsim._diffsim``) for every op, the same
emitter as the Rust frontend's ``#[kernel]``.

The kernel language is a Python subset, as Taichi's:

- values: kernel values (``_ds.Expr``, with Python's operators), Python
  numbers (build-time constants; a number mixed with a value takes the
  value's type), ``ds.Vector`` / ``ds.Matrix`` of them; globals and
  closure variables are read when the kernel is built;
- ``x[i, j]`` on a field loads an element, ``x[i, j] = v`` stores,
  ``x[i, j] += v`` / ``-= v`` add atomically; ``v[k] = ...`` on a local
  vector or matrix;
- ``if``/``elif``/``else`` on a kernel value (both branches built; a
  variable either side reassigns is carried through, one first assigned
  inside stays inside), on a build-time value (only the taken branch is
  built), ``a if c else b``, ``and``/``or``/``not``, chained comparisons;
- ``for i in range(...)`` / ``ds.ndrange(...)`` / ``for i, j in field``:
  the loops at a kernel's top level run in parallel, the others serially,
  carrying the variables they reassign; ``for ... in ds.static(...)`` and
  loops over Python lists unroll when the kernel is built; ``continue`` in
  any loop, ``break`` in serial and unrolled ones (the rest of the body is
  built under a flag, as the Rust macro does);
- calls of ``@ds.func`` functions (inlined), ``ds.*`` math, ``int``,
  ``float``, ``abs``, ``min``, ``max``, ``len``, ``math.*``, and any Python
  function computing on values with operators;

anything else raises a :class:`KernelError` naming the file, line and column.
"""

import ast
import builtins
import inspect
import math
import textwrap

from . import _diffsim as _ds
from . import _math as dsm
from ._errors import KernelError, KernelSyntaxError, KernelTypeError
from ._linalg import Matrix, Vector, describe, flatten, rebuild
from ._types import DataType, dtype_of

Expr = _ds.Expr

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a ** b,
    ast.MatMult: lambda a, b: a @ b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
}

_CMPOPS = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

_MATH = dsm.PY_MATH  # math.sin -> ds.sin ...

_MAX_INLINE_DEPTH = 48


def _is_value(v):
    return isinstance(v, (Expr, Vector, Matrix, bool, int, float))


def _has_expr(v):
    if isinstance(v, Expr):
        return True
    if isinstance(v, Vector):
        return any(isinstance(c, Expr) for c in v.c)
    if isinstance(v, Matrix):
        return any(isinstance(c, Expr) for r in v.rows for c in r)
    return False


class Source:
    """A function's parsed source, with its file, globals and closure."""

    def __init__(self, fn, what):
        self.fn = fn
        self.file = inspect.getsourcefile(fn) or fn.__code__.co_filename
        try:
            lines, start = inspect.getsourcelines(fn)
        except (OSError, TypeError) as e:
            raise KernelError(f"cannot read the source of {what} {fn.__qualname__} ({e}): define it in a file",
                              self.file, fn.__code__.co_firstlineno, 1) from None
        first = next((ln for ln in lines if ln.strip()), lines[0])
        self.indent = len(first) - len(first.lstrip())
        tree = ast.parse(textwrap.dedent("".join(lines)))
        ast.increment_lineno(tree, start - 1)
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not defs:
            raise KernelError(f"{what} {fn.__qualname__} is not a def (a lambda cannot be compiled)", self.file, start, 1)
        self.tree = defs[0]
        if isinstance(self.tree, ast.AsyncFunctionDef):
            raise KernelSyntaxError("an async function cannot be a kernel", self.file, start, 1)
        self.globals = fn.__globals__
        self.closure = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:
                pass

    def col(self, node):
        return getattr(node, "col_offset", 0) + self.indent + 1

    def body(self):
        body = self.tree.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body = body[1:]
        return body


def _assigned(stmts):
    """Names a statement list assigns (directly, and as the base of `v[k] = ...`
    / `v.x = ...`), outside nested scopes; loop variables are their loops' own."""
    direct, based = set(), set()

    def target(t):
        if isinstance(t, ast.Name):
            direct.add(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                target(e)
        elif isinstance(t, ast.Starred):
            target(t.value)
        elif isinstance(t, (ast.Subscript, ast.Attribute)):
            base = t.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                based.add(base.id)

    def walk(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                             ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Assign):
            for t in node.targets:
                target(t)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            target(node.target)
        elif isinstance(node, ast.NamedExpr):
            target(node.target)
        for child in ast.iter_child_nodes(node):
            walk(child)

    for s in stmts:
        walk(s)
    return direct, based


_CONT, _BRK = "__ds_continue", "__ds_break"  # exit flags of the loop being built (kernel values or bools)


def _exits(stmts):
    """The exit flags that `stmts` may set: a continue or break of the loop around them."""
    found = set()

    def walk(n):
        if isinstance(n, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return
        if isinstance(n, ast.Continue):
            found.add(_CONT)
        elif isinstance(n, ast.Break):
            found.add(_BRK)
        for c in ast.iter_child_nodes(n):
            walk(c)

    for st in stmts:
        walk(st)
    return found


class NDRange:
    """``ds.ndrange(a, (lo, hi), ...)``: the product of ranges; in a kernel's
    top level one parallel loop over all of it."""

    def __init__(self, *dims):
        self.dims = []
        for d in dims:
            if isinstance(d, (tuple, list)):
                if len(d) != 2:
                    raise TypeError("an ndrange dimension is n or (lo, hi)")
                self.dims.append((d[0], d[1]))
            else:
                self.dims.append((0, d))

    def __iter__(self):
        import itertools
        for lo, hi in self.dims:
            if not isinstance(lo, int) or not isinstance(hi, int):
                raise TypeError("an ndrange of kernel values is iterated only by a kernel's for loop")
        return itertools.product(*[range(lo, hi) for lo, hi in self.dims])


def ndrange(*dims):
    return NDRange(*dims)


class Grouped:
    """``ds.grouped(field or ndrange)``: its loop variable is one ``ds.Vector`` of indices."""

    def __init__(self, over):
        self.over = over


def grouped(over):
    return Grouped(over)


class Compiler:
    def __init__(self, src, kernel, state, depth=0, inline_depth=0):
        self.src = src
        self.kernel = kernel
        self.state = state
        self.depth = depth  # run-time regions (if, loops) around the code built now
        self.inline_depth = inline_depth
        self.loops = []  # kinds of the loops around the code built now: parallel, serial, static
        self.scoped = {}  # names first assigned inside a run-time region -> its line

    # --- errors and locations ---
    def err(self, node, message, cls=KernelSyntaxError):
        return cls(message, self.src.file, getattr(node, "lineno", self.src.tree.lineno), self.src.col(node), self.kernel)

    def at(self, node):
        _ds.at(self.src.file, node.lineno, self.src.col(node))

    def wrap(self, node, e):
        cls = KernelTypeError if isinstance(e, TypeError) else KernelError
        return self.err(node, str(e), cls)

    # --- names ---
    def lookup(self, node, env):
        name = node.id
        if name in env:
            return env[name]
        if name in self.src.closure:
            return self.src.closure[name]
        if name in self.src.globals:
            return self.src.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        if name in self.scoped:
            raise self.err(node, f"`{name}` is assigned only inside the if or loop at line {self.scoped[name]}, and a "
                                 "variable first assigned inside one is local to it: assign it before", KernelError)
        raise self.err(node, f"name `{name}` is not defined", KernelError)

    # --- statements ---
    def block(self, stmts, env):
        for k, st in enumerate(stmts):
            self.stmt(st, env)
            flag = self.exit_flag(env)
            if flag is True:
                return  # a continue or break taken for sure: the rest is not built
            if isinstance(flag, Expr) and k + 1 < len(stmts):
                self.guard(st, stmts[k + 1:], env, flag)  # the rest runs only where no exit was taken
                return

    @staticmethod
    def exit_flag(env):
        c, b = env.get(_CONT, False), env.get(_BRK, False)
        if c is True or b is True:
            return True
        if isinstance(c, Expr) and isinstance(b, Expr):
            return _ds.logical("or", c, b)
        return c if isinstance(c, Expr) else (b if isinstance(b, Expr) else False)

    def guard(self, node, rest, env, flag):
        """`if not flag: rest`, the flags false inside it."""
        names = self.carried(node, rest, env)
        exits = _exits(rest)
        names += sorted(f for f in (_CONT, _BRK)
                        if f in env and f not in names and (isinstance(env[f], Expr) or f in exits))
        flat, kinds = self.pack(names, env)
        known = {f: False for f in (_CONT, _BRK) if f in env}
        out = _ds.branch(_ds.logical("not", flag, None), flat, self.region(node, rest, env, names, kinds, entry=known),
                         self.region(node, [], env, names, kinds))
        self.unpack(names, kinds, out, env)

    def func_body(self, stmts, env):
        for k, s in enumerate(stmts):
            if isinstance(s, ast.Return):
                if k != len(stmts) - 1:
                    raise self.err(s, "code after return")
                self.at(s)
                return None if s.value is None else self.expr(s.value, env)
            self.stmt(s, env)
        return None

    def stmt(self, node, env):
        self.at(node)
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is None:
            raise self.err(node, f"`{type(node).__name__}` statements are not supported in kernels")
        try:
            method(node, env)
        except KernelError:
            raise
        except (TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError, OverflowError, KeyError) as e:
            raise self.wrap(node, e) from None

    def stmt_Pass(self, node, env):
        pass

    def stmt_Expr(self, node, env):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring or comment string
        self.expr(node.value, env)

    def stmt_Return(self, node, env):
        if self.inline_depth == 0:
            raise self.err(node, "a kernel returns nothing: write results into fields")
        raise self.err(node, "return is only the last statement of a @ds.func (assign a variable in the if, "
                             "and return it at the end)")

    def stmt_Break(self, node, env):
        if not self.loops:
            raise self.err(node, "break outside a loop")
        if self.loops[-1] == "parallel":
            raise self.err(node, "break in a parallel loop (a for at the kernel's top level): its iterations run on "
                                 "their own; break leaves serial loops only")
        env[_BRK] = True

    def stmt_Continue(self, node, env):
        if not self.loops:
            raise self.err(node, "continue outside a loop")
        env[_CONT] = True

    def stmt_While(self, node, env):
        raise self.err(node, "while loops are not supported in kernels: use for i in range(n) with a bound")

    def stmt_Assert(self, node, env):
        raise self.err(node, "assert is not supported in kernels yet")

    def stmt_Assign(self, node, env):
        value = self.expr(node.value, env)
        for t in node.targets:
            self.assign(t, value, env)

    def stmt_AnnAssign(self, node, env):
        if node.value is None:
            raise self.err(node, "a variable declared with an annotation needs a value")
        value = self.expr(node.value, env)
        ann = self.expr(node.annotation, env)
        try:
            t = dtype_of(ann)
        except TypeError:
            t = None
        if t is not None:
            value = dsm.cast(value, t)
        self.assign(node.target, value, env)

    def stmt_AugAssign(self, node, env):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.err(node, f"the operator {type(node.op).__name__} is not supported")
        t = node.target
        if isinstance(t, ast.Subscript):
            base = self.expr(t.value, env)
            from ._field import Field
            if isinstance(base, Field):
                idx = self.field_index(base, t, env)
                value = self.expr(node.value, env)
                if isinstance(node.op, (ast.Add, ast.Sub)):
                    self.update(base, idx, value, "add" if isinstance(node.op, ast.Add) else "sub", t)
                else:
                    old = base._element(idx, _ds.load)
                    self.update(base, idx, op(old, value), "store", t)
                return
        old = self.expr(t, env) if not isinstance(t, ast.Name) else self.lookup(t, env)
        value = self.expr(node.value, env)
        self.assign(t, op(old, value), env)

    def assign(self, t, value, env):
        if isinstance(t, ast.Name):
            env[t.id] = value
            return
        if isinstance(t, (ast.Tuple, ast.List)):
            if isinstance(value, Expr):
                raise self.err(t, "a kernel value cannot be unpacked")
            items = list(value.c if isinstance(value, Vector) else value)
            if any(isinstance(e, ast.Starred) for e in t.elts):
                raise self.err(t, "starred assignment is not supported")
            if len(items) != len(t.elts):
                raise self.err(t, f"{len(t.elts)} names, {len(items)} values")
            for e, v in zip(t.elts, items):
                self.assign(e, v, env)
            return
        if isinstance(t, ast.Subscript):
            from ._field import Field
            base = self.expr(t.value, env)
            if isinstance(base, Field):
                self.update(base, self.field_index(base, t, env), value, "store", t)
                return
            idx = self.expr(t.slice, env)
            if isinstance(base, (Vector, Matrix)):
                self.assign(t.value, base.with_component(idx, value), env)
                return
            if isinstance(base, (list, dict)):
                if isinstance(idx, Expr):
                    raise self.err(t, "a Python list is indexed by a build-time index (use a ds.Vector for run-time ones)")
                base[idx] = value
                return
            raise self.err(t, f"cannot assign to an element of {type(base).__name__}", KernelTypeError)
        if isinstance(t, ast.Attribute):
            base = self.expr(t.value, env)
            axes = {"x": 0, "y": 1, "z": 2, "w": 3}
            if isinstance(base, Vector) and t.attr in axes:
                self.assign(t.value, base.with_component(axes[t.attr], value), env)
                return
            raise self.err(t, f"cannot assign the attribute {t.attr} here")
        raise self.err(t, f"cannot assign to {type(t).__name__}")

    # --- fields ---
    def field_index(self, field, sub, env):
        if field._state is not self.state:
            raise self.err(sub, f"field @{field.name} belongs to a program replaced by ds.init()", KernelError)
        if field.shape is None:
            raise self.err(sub, f"field @{field.name} has no shape: give one, or place it (ds.root.dense(shape).place(x))",
                           KernelError)
        idx = self.expr(sub.slice, env)
        if idx is None:
            idx = ()
        elif isinstance(idx, Vector):
            idx = tuple(idx.c)
        elif not isinstance(idx, tuple):
            idx = (idx,)
        flat = []
        for i in idx:
            if isinstance(i, Vector):
                flat.extend(i.c)
            elif isinstance(i, (Matrix, slice)) or not (_is_value(i)):
                raise self.err(sub, f"field @{field.name} is indexed by integers, not {type(i).__name__}", KernelTypeError)
            else:
                flat.append(i)
        if len(flat) != len(field.shape):
            raise self.err(sub, f"field @{field.name} takes {len(field.shape)} indices, given {len(flat)}", KernelError)
        for i in flat:
            if isinstance(i, float) or (isinstance(i, Expr) and i.ty in ("f32", "f64")):
                raise self.err(sub, f"field @{field.name}: an index must be an integer (convert it with int())", KernelTypeError)
        self.at(sub)
        return tuple(flat)

    def update(self, field, idx, value, kind, node):
        from ._field import _component_indices
        comps = _component_indices(field.components)
        if isinstance(value, (Vector, Matrix)):
            scalars, k = flatten(value)
            want = ("v", field.components[0]) if len(field.components) == 1 else (
                ("m", tuple(field.components)) if len(field.components) == 2 else ("s", None))
            if k != want:
                raise self.err(node, f"field @{field.name} holds {describe(want)}, given {describe(k)}", KernelTypeError)
        elif _is_value(value):
            scalars = [value] * len(comps)  # a scalar into every component
        else:
            raise self.err(node, f"cannot write a {type(value).__name__} into field @{field.name}", KernelTypeError)
        self.at(node)
        for comp, s in zip(comps, scalars):
            _ds.update(kind, field.name, field.dtype.name, list(idx) + list(comp), s)

    # --- control flow ---
    def carried(self, node, stmts, env):
        direct, based = _assigned(stmts)
        names = []
        for n in sorted(direct | based):
            if n not in env:
                continue
            v = env[n]
            if _is_value(v):
                names.append(n)
            elif n in direct:
                raise self.err(node, f"`{n}` holds a {type(v).__name__} and is reassigned inside a run-time if or "
                                     "loop: only numbers, kernel values, vectors and matrices can be", KernelTypeError)
        for n in direct:
            if n not in env:
                self.scoped.setdefault(n, node.lineno)
        return names

    def pack(self, names, env):
        flat, kinds = [], []
        for n in names:
            s, k = flatten(env[n])
            flat.extend(s)
            kinds.append((k, len(s)))
        return flat, kinds

    def unpack(self, names, kinds, values, env):
        values = list(values)
        pos = 0
        for n, (k, count) in zip(names, kinds):
            env[n] = rebuild(k, values[pos:pos + count])
            pos += count

    def repack(self, node, names, kinds, env):
        flat = []
        for n, (k, count) in zip(names, kinds):
            v = env.get(n)
            if not _is_value(v):
                raise self.err(node, f"`{n}` holds a {type(v).__name__} after this if or loop body: it held a value before",
                               KernelTypeError)
            s, k2 = flatten(v)
            if k2 != k:
                raise self.err(node, f"`{n}` changes from {describe(k)} to {describe(k2)} in this if or loop", KernelTypeError)
            flat.extend(s)
        return flat

    def region(self, node, stmts, env, names, kinds, bind=None, entry=None, body=None):
        """The callback building a branch or loop body: the carried `names`
        rebound to the region's values (or to `entry`'s, known there)."""
        def run(*args):
            values = args[-1]
            env2 = dict(env)
            self.unpack(names, kinds, values, env2)
            if entry:
                env2.update(entry)
            if bind is not None:
                bind(env2, args[0])
            if body is not None:
                self.depth += 1
                try:
                    body(env2)
                finally:
                    self.depth -= 1
                return self.repack(node, names, kinds, env2)
            self.depth += 1
            try:
                self.block(stmts, env2)
            finally:
                self.depth -= 1
            return self.repack(node, names, kinds, env2)
        return run

    def stmt_If(self, node, env):
        cond = self.expr(node.test, env)
        if isinstance(cond, (Vector, Matrix)):
            raise self.err(node.test, "an if condition is a scalar (compare components)", KernelTypeError)
        if not isinstance(cond, Expr):
            self.block(node.body if cond else node.orelse, env)
            return
        names = self.carried(node, node.body + node.orelse, env)
        names += sorted(f for f in _exits(node.body + node.orelse) if f in env and f not in names)
        flat, kinds = self.pack(names, env)
        known = {n: env[n] for n in names if not _has_expr(env[n])}  # build-time values, the same on entry
        out = _ds.branch(cond, flat, self.region(node, node.body, env, names, kinds, entry=known),
                         self.region(node, node.orelse, env, names, kinds, entry=known))
        self.unpack(names, kinds, out, env)

    def stmt_For(self, node, env):
        if node.orelse:
            raise self.err(node, "for ... else is not supported in kernels")
        it = node.iter
        static = isinstance(it, ast.Call) and self.is_static(it.func, env)
        iterable = self.expr(it, env)
        if static or isinstance(iterable, (list, tuple, Vector, dict)) or (
                isinstance(iterable, range) and static):
            self.unrolled(node, iterable, env)
            return
        from ._field import Field
        group = False
        if isinstance(iterable, Grouped):
            group, iterable = True, iterable.over
        if isinstance(iterable, Field):
            iterable = NDRange(*iterable.shape)
        if isinstance(iterable, range):
            iterable = _RangeCall(iterable.start, iterable.stop, iterable.step)
        if isinstance(iterable, _RangeCall):
            self.range_loop(node, iterable, env)
            return
        if isinstance(iterable, NDRange):
            self.nd_loop(node, iterable, env, group)
            return
        raise self.err(it, f"a kernel loops over range(...), ds.ndrange(...), a field or ds.static(...), not "
                           f"{type(iterable).__name__}")

    def is_static(self, fnode, env):
        try:
            f = self.expr(fnode, env)
        except KernelError:
            return False
        return f is dsm.static

    def targets(self, node, count):
        t = node.target
        if isinstance(t, ast.Name):
            names = [t.id]
        elif isinstance(t, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in t.elts):
            names = [e.id for e in t.elts]
        else:
            raise self.err(t, "a loop variable is a name or a tuple of names")
        if count is not None and len(names) != count:
            raise self.err(t, f"{len(names)} loop variables for a {count}-dimensional range")
        return names

    def unrolled(self, node, iterable, env):
        if isinstance(iterable, Vector):
            iterable = iterable.c
        saved = {f: env.pop(f) for f in (_CONT, _BRK) if f in env}
        self.loops.append("static")
        try:
            env[_BRK] = False
            for item in iterable:
                if env[_BRK] is True:
                    break
                env[_CONT] = False
                self.assign(node.target, item, env)
                if isinstance(env[_BRK], Expr):
                    self.guard(node, node.body, env, env[_BRK])
                else:
                    self.block(node.body, env)
        finally:
            self.loops.pop()
            for f in (_CONT, _BRK):
                env.pop(f, None)
            env.update(saved)

    def range_loop(self, node, r, env):
        (name,) = self.targets(node, 1)
        lo, hi, step = r.start, r.stop, r.step
        for x in (lo, hi, step):
            if isinstance(x, float) or (isinstance(x, Expr) and x.ty in ("f32", "f64")):
                raise self.err(node.iter, "range() takes integers", KernelTypeError)
        if isinstance(step, Expr):
            raise self.err(node.iter, "a range's step is a build-time integer")
        if step == 0:
            raise self.err(node.iter, "a range's step is not zero", KernelError)
        if step == 1:
            count_lo, count_hi = lo, hi
            index = None
        else:
            count_lo = 0
            count_hi = (hi - lo + step - 1) // step if step > 0 else (lo - hi - step - 1) // (-step)
            if not isinstance(count_hi, Expr):
                count_hi = builtins.max(count_hi, 0)
            index = (lo, step)

        def bind(env2, i):
            env2[name] = i if index is None else index[0] + i * index[1]
        self.loop(node, count_lo, count_hi, env, bind)

    def nd_loop(self, node, nd, env, group):
        dims = nd.dims
        names = self.targets(node, 1 if group else len(dims))
        extents = [hi - lo for lo, hi in dims]
        total = extents[0]
        for e in extents[1:]:
            total = total * e

        def bind(env2, k):
            idx = [None] * len(dims)
            for d in range(len(dims) - 1, 0, -1):
                k, idx[d] = _ds.index_divmod(k, extents[d])
            idx[0] = k
            idx = [i if isinstance(lo, int) and lo == 0 else lo + i for i, (lo, _) in zip(idx, dims)]
            if group:
                env2[names[0]] = Vector(idx)
            else:
                for n, i in zip(names, idx):
                    env2[n] = i
        self.loop(node, 0, total, env, bind)

    def loop(self, node, lo, hi, env, bind):
        if self.depth == 0:
            direct, based = _assigned(node.body)
            outer = sorted(n for n in direct | based if n in env and _is_value(env[n]))
            loop_vars = set(self.targets(node, None))
            outer = [n for n in outer if n not in loop_vars]
            if outer:
                raise self.err(node, f"this parallel loop (a for at the kernel's top level) reassigns {', '.join(outer)}, "
                                     "from outside it: its iterations run on their own. Accumulate into a field "
                                     "(total[None] += ...), or loop serially inside an outer loop", KernelError)

            def body(i):
                env2 = dict(env)
                bind(env2, i)
                env2[_CONT] = False
                env2.pop(_BRK, None)
                self.depth += 1
                self.loops.append("parallel")
                try:
                    self.block(node.body, env2)
                finally:
                    self.depth -= 1
                    self.loops.pop()
            _ds.parallel_for(lo, hi, body)
            direct, _ = _assigned(node.body)
            for n in direct:
                if n not in env:
                    self.scoped.setdefault(n, node.lineno)
            return
        saved = {f: env.pop(f) for f in (_CONT, _BRK) if f in env}
        names = self.carried(node, node.body, env)
        loop_vars = set(self.targets(node, None))
        names = [n for n in names if n not in loop_vars]
        if _BRK in _exits(node.body):
            env[_BRK] = False  # carried: once set, the remaining iterations do nothing
            names.append(_BRK)

        def body(env2):
            env2[_CONT] = False
            self.loops.append("serial")
            try:
                brk = env2.get(_BRK, False)
                if isinstance(brk, Expr):
                    self.guard(node, node.body, env2, brk)
                else:
                    self.block(node.body, env2)
            finally:
                self.loops.pop()

        flat, kinds = self.pack(names, env)
        try:
            out = _ds.serial_for(lo, hi, flat, self.region(node, node.body, env, names, kinds, bind, body=body))
            self.unpack(names, kinds, out, env)
        finally:
            for f in (_CONT, _BRK):
                env.pop(f, None)
            env.update(saved)

    # --- expressions ---
    def expr(self, node, env):
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.err(node, f"`{type(node).__name__}` expressions are not supported in kernels")
        try:
            return method(node, env)
        except KernelError:
            raise
        except (TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError, OverflowError, KeyError) as e:
            raise self.wrap(node, e) from None

    def expr_Constant(self, node, env):
        return node.value

    def expr_Name(self, node, env):
        return self.lookup(node, env)

    def expr_Attribute(self, node, env):
        base = self.expr(node.value, env)
        if isinstance(base, Expr) and node.attr not in ("ty",):
            raise self.err(node, f"a scalar kernel value has no attribute `{node.attr}`", KernelTypeError)
        return getattr(base, node.attr)

    def expr_BinOp(self, node, env):
        a, b = self.expr(node.left, env), self.expr(node.right, env)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.err(node, f"the operator {type(node.op).__name__} is not supported")
        if isinstance(node.op, (ast.LShift, ast.RShift)) and (_has_expr(a) or _has_expr(b)):
            raise self.err(node, "shifts of kernel values are not supported")
        return op(a, b)

    def expr_UnaryOp(self, node, env):
        a = self.expr(node.operand, env)
        if isinstance(node.op, ast.USub):
            return -a
        if isinstance(node.op, ast.UAdd):
            return +a
        if isinstance(node.op, ast.Invert):
            return ~a
        if isinstance(a, Expr):
            return _ds.logical("not", a, None)
        if isinstance(a, (Vector, Matrix)):
            raise self.err(node, "not of a vector", KernelTypeError)
        return not a

    def expr_BoolOp(self, node, env):
        is_and = isinstance(node.op, ast.And)
        result = self.expr(node.values[0], env)
        for v in node.values[1:]:
            if not isinstance(result, Expr):
                if isinstance(result, (Vector, Matrix)):
                    raise self.err(node, "and/or of a vector", KernelTypeError)
                if (is_and and not result) or (not is_and and result):
                    return result
                result = self.expr(v, env)
                continue
            other = self.expr(v, env)
            if isinstance(other, (Vector, Matrix)):
                raise self.err(node, "and/or of a vector", KernelTypeError)
            result = _ds.logical("and" if is_and else "or", result, other)
        return result

    def expr_Compare(self, node, env):
        left = self.expr(node.left, env)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            right = self.expr(right_node, env)
            if isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) and (_has_expr(left) or _has_expr(right)):
                raise self.err(node, "is / in compare build-time values, not kernel values")
            r = _CMPOPS[type(op)](left, right)
            if isinstance(r, (Vector, Matrix)):
                raise self.err(node, "comparisons of vectors are not supported (compare components)", KernelTypeError)
            if result is None:
                result = r
            elif isinstance(result, Expr) or isinstance(r, Expr):
                result = _ds.logical("and", result, r)
            else:
                result = result and r
            left = right
        return result

    def expr_IfExp(self, node, env):
        cond = self.expr(node.test, env)
        if not isinstance(cond, Expr):
            return self.expr(node.body if cond else node.orelse, env)
        a, b = self.expr(node.body, env), self.expr(node.orelse, env)
        return dsm.select(cond, a, b)

    def expr_Tuple(self, node, env):
        return tuple(self.starred(node.elts, env))

    def expr_List(self, node, env):
        return list(self.starred(node.elts, env))

    def expr_Dict(self, node, env):
        if any(k is None for k in node.keys):
            raise self.err(node, "** in a dict is not supported")
        return {self.expr(k, env): self.expr(v, env) for k, v in zip(node.keys, node.values)}

    def starred(self, elts, env):
        out = []
        for e in elts:
            if isinstance(e, ast.Starred):
                v = self.expr(e.value, env)
                out.extend(v.c if isinstance(v, Vector) else v)
            else:
                out.append(self.expr(e, env))
        return out

    def expr_Slice(self, node, env):
        part = lambda n: None if n is None else self.expr(n, env)  # noqa: E731
        return slice(part(node.lower), part(node.upper), part(node.step))

    def expr_Subscript(self, node, env):
        from ._field import Field
        base = self.expr(node.value, env)
        if isinstance(base, Field):
            idx = self.field_index(base, node, env)
            return base._element(idx, _ds.load)
        idx = self.expr(node.slice, env)
        if isinstance(base, (Vector, Matrix)):
            return base[idx]
        if isinstance(idx, Expr):
            raise self.err(node, f"a {type(base).__name__} is indexed by a build-time index (use a ds.Vector for "
                                 "run-time ones)", KernelTypeError)
        return base[idx]

    def expr_ListComp(self, node, env):
        return self.comprehension(node, env, list)

    def expr_GeneratorExp(self, node, env):
        return self.comprehension(node, env, list)

    def comprehension(self, node, env, kind):
        env2 = dict(env)
        out = []

        def gen(k):
            if k == len(node.generators):
                out.append(self.expr(node.elt, env2))
                return
            g = node.generators[k]
            it = self.expr(g.iter, env2)
            if isinstance(it, (Expr, NDRange, Grouped)) or (isinstance(it, range) and any(
                    isinstance(x, Expr) for x in (it.start, it.stop))):
                raise self.err(g.iter, "a comprehension iterates over build-time values")
            if isinstance(it, Vector):
                it = it.c
            for item in it:
                self.assign(g.target, item, env2)
                conds = [self.expr(c, env2) for c in g.ifs]
                if any(isinstance(c, Expr) for c in conds):
                    raise self.err(g, "a comprehension's if is a build-time condition")
                if all(conds):
                    gen(k + 1)
        gen(0)
        return kind(out)

    def expr_Call(self, node, env):
        from ._field import Field
        from ._kernel import Func, Kernel, TemplateKernel
        func = self.expr(node.func, env)
        kind = getattr(func, "_atomic", None)
        if kind is not None:
            if len(node.args) != 2 or node.keywords or not isinstance(node.args[0], ast.Subscript):
                raise self.err(node, f"ds.atomic_{kind} takes a field element and a value: ds.atomic_{kind}(x[i], v)")
            field = self.expr(node.args[0].value, env)
            if not isinstance(field, Field):
                raise self.err(node, f"ds.atomic_{kind} updates a field element", KernelTypeError)
            idx = self.field_index(field, node.args[0], env)
            self.update(field, idx, self.expr(node.args[1], env), kind, node)
            return None
        args = self.starred(node.args, env)
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                kwargs.update(self.expr(k.value, env))
            else:
                kwargs[k.arg] = self.expr(k.value, env)
        self.at(node)
        if isinstance(func, Func):
            return self.inline(func, args, kwargs, node)
        if isinstance(func, (Kernel, TemplateKernel)):
            raise self.err(node, "a kernel cannot be called from kernel code (make it a @ds.func)")
        if func is builtins.range:
            return _RangeCall(*args) if any(isinstance(a, Expr) for a in args) else range(*args)
        if func is ndrange:
            return NDRange(*args)
        anyexpr = any(_has_expr(a) for a in args) or any(_has_expr(v) for v in kwargs.values())
        if func is builtins.int and anyexpr:
            return dsm.cast(args[0], "int32")
        if func is builtins.float and anyexpr:
            return dsm.cast(args[0], self.state.default_fp)
        if func is builtins.bool and anyexpr:
            return _ds.condition(args[0])
        if func is builtins.abs:
            return dsm.abs(*args)
        if func is builtins.max and (anyexpr or any(isinstance(a, (Vector, Matrix)) for a in args)):
            return dsm.max(*args)
        if func is builtins.min and (anyexpr or any(isinstance(a, (Vector, Matrix)) for a in args)):
            return dsm.min(*args)
        if func is builtins.round and anyexpr:
            return dsm.round(*args)
        if func is builtins.pow and anyexpr:
            return dsm.pow(*args)
        if func is builtins.print:
            raise self.err(node, "print is not supported in kernels")
        if anyexpr and func in _MATH:
            return _MATH[func](*args, **kwargs)
        if isinstance(func, DataType) and anyexpr:
            return dsm.cast(args[0], func)
        return func(*args, **kwargs)

    def inline(self, func, args, kwargs, node):
        if self.inline_depth >= _MAX_INLINE_DEPTH:
            raise self.err(node, f"@ds.func calls nest more than {_MAX_INLINE_DEPTH} deep (recursion is not supported)")
        src = func._source()
        try:
            bound = func._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise self.err(node, f"{func.fn.__name__}(): {e}", KernelTypeError) from None
        bound.apply_defaults()
        env = dict(bound.arguments)
        for p in func._signature.parameters.values():
            ann = p.annotation
            if isinstance(ann, str):
                try:
                    ann = eval(ann, src.globals)  # noqa: S307 (the user's own annotation)
                except Exception:
                    ann = None
            if isinstance(ann, DataType) and _is_value(env.get(p.name)):
                env[p.name] = dsm.cast(env[p.name], ann)
        sub = Compiler(src, self.kernel, self.state, self.depth, self.inline_depth + 1)
        result = sub.func_body(src.body(), env)
        self.at(node)
        return result


class _RangeCall:
    """``range(...)`` with kernel-value bounds (a run-time loop)."""

    def __init__(self, *args):
        if not 1 <= len(args) <= 3:
            raise TypeError(f"range expected 1 to 3 arguments, got {len(args)}")
        if len(args) == 1:
            self.start, self.stop, self.step = 0, args[0], 1
        else:
            self.start, self.stop = args[0], args[1]
            self.step = args[2] if len(args) == 3 else 1


def _classify(message):
    typed = ("mixed", "cannot convert", "needs a float", "needs float", "must be a comparison", "is used as an integer")
    return KernelTypeError if any(t in message for t in typed) else KernelError


def compile_kernel(src, name, state, params, template_values, no_grad):
    """Builds kernel `name` from `src`: `params` are its scalar parameters
    (name, IR type), `template_values` the build-time ones. Returns
    (name, IR text, draws random numbers)."""
    comp = Compiler(src, name, state)

    def body(handles):
        env = dict(template_values)
        for (pname, _), h in zip(params, handles):
            env[pname] = h
        comp.at(src.tree)
        comp.block(src.body(), env)

    r = _ds.build_kernel(name, params, no_grad, body, state.default_fp.name)
    if r[0] == "error":
        _, file, line, col, message = r
        cls = _classify(message)
        raise cls(message, file or src.file, line or src.tree.lineno, col or 1, name)
    return r[1], r[2], bool(r[3])
