"""Every construct of the kernel language, compared with numpy."""

import math

import numpy as np
import pytest

import diffsim as ds

N = 16


def fields(dtype=ds.f64, n=N):
    return ds.field(dtype, n), ds.field(dtype, n), ds.field(dtype, n)


def test_float_arithmetic():
    a, b, out = fields()
    c = ds.field(ds.f64, (N, 8))

    @ds.kernel
    def k(s: ds.f64):
        for i in range(N):
            x, y = a[i], b[i]
            c[i, 0] = x + y * s
            c[i, 1] = x - 2 * y
            c[i, 2] = x * y / (1.5 + y * y)
            c[i, 3] = x // 0.75
            c[i, 4] = x % 0.75
            c[i, 5] = -x + abs(y)
            c[i, 6] = x ** 3 + y ** -2 + abs(x) ** 0.5
            c[i, 7] = 1.0 / (2.0 + y) - 3 % (x * x + 1.0)

    r = np.random.default_rng(1)
    av, bv = r.normal(size=N), r.normal(size=N) + 3.0
    a.from_numpy(av)
    b.from_numpy(bv)
    k(0.5)
    want = np.stack([av + bv * 0.5, av - 2 * bv, av * bv / (1.5 + bv * bv), av // 0.75, av % 0.75, -av + abs(bv),
                     av ** 3 + bv ** -2.0 + abs(av) ** 0.5, 1.0 / (2.0 + bv) - 3 % (av * av + 1.0)], axis=1)
    np.testing.assert_allclose(c.to_numpy(), want, rtol=1e-12, atol=1e-12)


def test_integer_arithmetic_follows_python():
    a = ds.field(ds.i32, N)
    c = ds.field(ds.i32, (N, 6))
    f = ds.field(ds.f32, N)

    @ds.kernel
    def k(d: ds.i32):
        for i in range(N):
            x = a[i]
            c[i, 0] = x // d
            c[i, 1] = x % d
            c[i, 2] = x * 3 - 7
            c[i, 3] = -x // 4
            c[i, 4] = abs(x) + x ** 2
            c[i, 5] = (x & 6) | 1
            f[i] = x / d  # true division, as in Python

    av = np.arange(N, dtype=np.int32) - 8
    a.from_numpy(av)
    k(-3)
    want = np.stack([av // -3, av % -3, av * 3 - 7, -av // 4, abs(av) + av ** 2, (av & 6) | 1], axis=1)
    np.testing.assert_array_equal(c.to_numpy(), want)
    np.testing.assert_allclose(f.to_numpy(), av / -3, rtol=1e-6)


MATH = [("sin", np.sin), ("cos", np.cos), ("tan", np.tan), ("tanh", np.tanh), ("exp", np.exp),
        ("sqrt", np.sqrt), ("asin", np.arcsin), ("acos", np.arccos), ("atan", np.arctan), ("sinh", np.sinh),
        ("cosh", np.cosh), ("floor", np.floor), ("ceil", np.ceil), ("log2", np.log2), ("exp2", np.exp2),
        ("log", np.log), ("rsqrt", lambda v: 1 / np.sqrt(v))]
MATH_NAMES = [m[0] for m in MATH]


@pytest.mark.parametrize("name,ref", MATH, ids=[m[0] for m in MATH])
def test_math_functions(name, ref):
    a, _, out = fields()
    fn = getattr(ds, name)

    @ds.kernel
    def k():
        for i in range(N):
            out[i] = fn(a[i])

    av = np.linspace(0.05, 0.95, N)
    a.from_numpy(av)
    k()
    np.testing.assert_allclose(out.to_numpy(), ref(av), rtol=1e-12)


def test_math_tables_agree():
    """Each math function is declared once per side: diffsim._math's tables
    (its value on numbers) and the builder's (the op on kernel values) name
    the same ones, and each is a ds function."""
    from diffsim import _diffsim, _math
    assert list(_math.UNARY) == list(_diffsim.UNARY_MATH)
    assert list(_math.BINARY) == list(_diffsim.BINARY_MATH)
    for name in list(_math.UNARY) + list(_math.BINARY):
        assert getattr(ds, name).__name__ == name
    assert set(MATH_NAMES) | {"round"} == set(_math.UNARY)
    # Python's math module in kernels: these, each as the ds function of its name (math.fabs: ds.abs)
    names = "sin cos tan tanh exp log sqrt asin acos atan sinh cosh log2 floor ceil atan2 pow fabs".split()
    assert _math.PY_MATH == {getattr(math, n): getattr(ds, "abs" if n == "fabs" else n) for n in names}


def test_binary_math_and_python_math_module():
    a, b, out = fields()
    c = ds.field(ds.f64, (N, 6))

    @ds.kernel
    def k():
        for i in range(N):
            x, y = a[i], b[i]
            c[i, 0] = ds.atan2(x, y)
            c[i, 1] = ds.pow(y, x)
            c[i, 2] = max(x, y, 0.25)
            c[i, 3] = min(x, y)
            c[i, 4] = ds.clamp(x, -0.5, 0.5)
            c[i, 5] = math.sin(x) + math.sqrt(y) + math.pi

    r = np.random.default_rng(2)
    av, bv = r.normal(size=N), r.uniform(0.5, 2, size=N)
    a.from_numpy(av)
    b.from_numpy(bv)
    k()
    want = np.stack([np.arctan2(av, bv), bv ** av, np.maximum(np.maximum(av, bv), 0.25), np.minimum(av, bv),
                     np.clip(av, -0.5, 0.5), np.sin(av) + np.sqrt(bv) + np.pi], axis=1)
    np.testing.assert_allclose(c.to_numpy(), want, rtol=1e-12)


def test_if_elif_else_and_logic():
    ds.init(default_fp=ds.f64)  # r = 0.0 is an f64 (by default an f32, as in Taichi)
    a, b, out = fields()
    flags = ds.field(ds.i32, (N, 3))

    @ds.kernel
    def k(t: ds.f64):
        for i in range(N):
            x = a[i]
            r = 0.0
            if x > t and not b[i] < 0:
                r = x * 2
            elif x < -t or b[i] > 1.5:
                r = -1.0
                if x > 0:
                    r = r - 10
            else:
                r = x
            out[i] = r
            flags[i, 0] = 1 if -0.5 < x <= 0.5 else 0
            flags[i, 1] = (x > 0) + (b[i] > 0)  # comparisons count as integers
            flags[i, 2] = ds.select(x > b[i], 7, -7)

    r = np.random.default_rng(3)
    av, bv = r.normal(size=N), r.normal(size=N)
    a.from_numpy(av)
    b.from_numpy(bv)
    k(0.3)
    want = np.where((av > 0.3) & ~(bv < 0), av * 2, np.where((av < -0.3) | (bv > 1.5), np.where(av > 0, -11.0, -1.0), av))
    np.testing.assert_array_equal(out.to_numpy(), want)
    np.testing.assert_array_equal(flags.to_numpy()[:, 0], ((-0.5 < av) & (av <= 0.5)).astype(int))
    np.testing.assert_array_equal(flags.to_numpy()[:, 1], (av > 0).astype(int) + (bv > 0))
    np.testing.assert_array_equal(flags.to_numpy()[:, 2], np.where(av > bv, 7, -7))


def test_serial_loops_carry_variables():
    ds.init(default_fp=ds.f64)
    m = ds.field(ds.f64, (N, 5))
    rowsum = ds.field(ds.f64, N)
    prefix = ds.field(ds.f64, (N, 5))
    cnt = ds.field(ds.i32, N)

    @ds.kernel
    def k(limit: ds.f64):
        for i in range(N):
            s = 0.0
            count = 0
            v = ds.Vector([0.0, 1.0])
            for j in range(5):
                s += m[i, j]
                prefix[i, j] = s
                if m[i, j] > limit:
                    count += 1
                v = ds.Vector([v[1], v[0] + v[1]])
            for j in range(1, 5, 2):
                s = s + 0.0 * j
            rowsum[i] = s + v[0] * 0.0
            cnt[i] = count

    mv = np.random.default_rng(4).normal(size=(N, 5))
    m.from_numpy(mv)
    k(0.2)
    np.testing.assert_allclose(rowsum.to_numpy(), mv.sum(1), rtol=1e-12)
    np.testing.assert_allclose(prefix.to_numpy(), np.cumsum(mv, 1), rtol=1e-12)
    np.testing.assert_array_equal(cnt.to_numpy(), (mv > 0.2).sum(1))


def test_range_forms_and_static_loops():
    out = ds.field(ds.i32, 40)
    n = ds.field(ds.i32, ())
    tab = [3, 1, 4, 1, 5]

    @ds.kernel
    def k(lo: ds.i32, hi: ds.i32):
        for i in range(lo, hi, 3):
            out[i] = i
        for j in ds.static(range(5)):
            out[30 + j] = tab[j] * (j + 1)
        for j in ds.static([7, 8]):
            out[35 + j - 7] = j
        for q in range(1):
            total = 0
            for j in range(hi, lo, -4):
                total += j
            n[None] = total

    k(2, 25)
    got = out.to_numpy()
    want = np.zeros(40, np.int32)
    want[2:25:3] = np.arange(2, 25, 3)
    want[30:35] = [3 * 1, 1 * 2, 4 * 3, 1 * 4, 5 * 5]
    want[35:37] = [7, 8]
    np.testing.assert_array_equal(got, want)
    assert n[None] == sum(range(25, 2, -4))


def test_parallel_ndrange_and_struct_for():
    g = ds.field(ds.f32, (5, 7))
    h = ds.field(ds.f32, (5, 7))
    cells = ds.Vector.field(2, ds.i32, (5, 7))

    @ds.kernel
    def k():
        for i, j in ds.ndrange(5, (1, 7)):
            g[i, j] = i * 10 + j
        for i, j in h:
            h[i, j] = i - j
        for I in ds.grouped(cells):
            cells[I] = I

    k()
    i, j = np.meshgrid(np.arange(5), np.arange(7), indexing="ij")
    np.testing.assert_array_equal(g.to_numpy(), np.where(j >= 1, i * 10 + j, 0))
    np.testing.assert_array_equal(h.to_numpy(), i - j)
    np.testing.assert_array_equal(cells.to_numpy(), np.stack([i, j], -1))


def test_atomic_add_and_sub():
    x = ds.field(ds.f64, 1000)
    total = ds.field(ds.f64, ())
    hist = ds.field(ds.i32, 4)

    @ds.kernel
    def k():
        for i in range(1000):
            total[None] += x[i]
            total[None] -= 0.5 * x[i]
            hist[i % 4] += 1

    xv = np.random.default_rng(5).normal(size=1000)
    x.from_numpy(xv)
    k()
    np.testing.assert_allclose(total[None], 0.5 * xv.sum(), rtol=1e-10)
    np.testing.assert_array_equal(hist.to_numpy(), [250] * 4)


def test_vectors():
    p = ds.Vector.field(3, ds.f64, N)
    q = ds.Vector.field(3, ds.f64, N)
    out = ds.field(ds.f64, (N, 4))
    vec = ds.Vector.field(3, ds.f64, (N, 4))

    @ds.kernel
    def k():
        for i in range(N):
            a, b = p[i], q[i]
            out[i, 0] = a.dot(b)
            out[i, 1] = a.norm()
            out[i, 2] = (a @ b) + a.norm_sqr()
            out[i, 3] = a.x + a.y * a[2] + a.sum() + max(a) if False else a.x + a.y * a[2] + a.sum()
            vec[i, 0] = a.cross(b)
            vec[i, 1] = a.normalized() * 2.0 - b / 4 + 1.0
            w = a
            w[1] = 9.0
            w.z = -1.0
            vec[i, 2] = w
            vec[i, 3] = ds.Vector([a[j % 3] for j in range(3)]) * b

    r = np.random.default_rng(6)
    pv, qv = r.normal(size=(N, 3)), r.normal(size=(N, 3))
    p.from_numpy(pv)
    q.from_numpy(qv)
    k()
    norm = np.linalg.norm(pv, axis=1)
    dot = (pv * qv).sum(1)
    np.testing.assert_allclose(out.to_numpy(), np.stack(
        [dot, norm, dot + norm ** 2, pv[:, 0] + pv[:, 1] * pv[:, 2] + pv.sum(1)], 1), rtol=1e-12)
    v = vec.to_numpy()
    np.testing.assert_allclose(v[:, 0], np.cross(pv, qv), rtol=1e-12)
    np.testing.assert_allclose(v[:, 1], pv / norm[:, None] * 2 - qv / 4 + 1, rtol=1e-12)
    np.testing.assert_allclose(v[:, 2], np.stack([pv[:, 0], np.full(N, 9.0), np.full(N, -1.0)], 1))
    np.testing.assert_allclose(v[:, 3], pv * qv, rtol=1e-12)


def test_run_time_component_index():
    p = ds.Vector.field(4, ds.f32, N)
    out = ds.field(ds.f32, N)
    mod = ds.Vector.field(4, ds.f32, N)

    @ds.kernel
    def k():
        for i in range(N):
            v = p[i]
            out[i] = v[i % 4]
            v[(i + 1) % 4] = -1.0
            mod[i] = v

    pv = np.random.default_rng(7).normal(size=(N, 4)).astype(np.float32)
    p.from_numpy(pv)
    k()
    idx = np.arange(N)
    np.testing.assert_array_equal(out.to_numpy(), pv[idx, idx % 4])
    want = pv.copy()
    want[idx, (idx + 1) % 4] = -1
    np.testing.assert_array_equal(mod.to_numpy(), want)


def test_matrices():
    A = ds.Matrix.field(3, 3, ds.f64, N)
    B = ds.Matrix.field(2, 2, ds.f64, N)
    out = ds.Matrix.field(3, 3, ds.f64, (N, 3))
    small = ds.Matrix.field(2, 2, ds.f64, N)
    sc = ds.field(ds.f64, (N, 4))
    mv = ds.Vector.field(3, ds.f64, N)

    @ds.kernel
    def k():
        for i in range(N):
            a = A[i]
            out[i, 0] = a @ a.transpose()
            out[i, 1] = a.inverse()
            out[i, 2] = a * 2.0 + ds.Matrix.identity(ds.f64, 3) - a
            small[i] = B[i].inverse() @ B[i] + ds.Vector([1.0, 2.0]).outer_product(ds.Vector([3.0, 4.0]))
            sc[i, 0] = a.determinant()
            sc[i, 1] = a.trace()
            sc[i, 2] = B[i].determinant()
            sc[i, 3] = a[1, 2] + a[i % 3, (i + 1) % 3]
            mv[i] = a @ ds.Vector([1.0, -1.0, 0.5])

    r = np.random.default_rng(8)
    av, bv = r.normal(size=(N, 3, 3)) + 3 * np.eye(3), r.normal(size=(N, 2, 2)) + 2 * np.eye(2)
    A.from_numpy(av)
    B.from_numpy(bv)
    k()
    o = out.to_numpy()
    np.testing.assert_allclose(o[:, 0], av @ av.transpose(0, 2, 1), rtol=1e-12)
    np.testing.assert_allclose(o[:, 1], np.linalg.inv(av), rtol=1e-9)
    np.testing.assert_allclose(o[:, 2], av + np.eye(3), rtol=1e-12)
    np.testing.assert_allclose(small.to_numpy(), np.broadcast_to(np.eye(2) + np.outer([1, 2], [3, 4]), (N, 2, 2)), rtol=1e-9, atol=1e-12)
    idx = np.arange(N)
    want = np.stack([np.linalg.det(av), np.trace(av, axis1=1, axis2=2), np.linalg.det(bv),
                     av[:, 1, 2] + av[idx, idx % 3, (idx + 1) % 3]], 1)
    np.testing.assert_allclose(sc.to_numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(mv.to_numpy(), av @ np.array([1, -1, 0.5]), rtol=1e-12)


def test_funcs_are_inlined():
    a, b, out = fields()
    vec = ds.Vector.field(2, ds.f64, N)

    @ds.func
    def sq(v):
        return v * v

    @ds.func
    def hyp(x, y, scale=1.0):
        r = ds.sqrt(sq(x) + sq(y))
        if r > 2.0:
            r = 2.0
        return r * scale

    @ds.func
    def swap(v: ds.f64):
        return ds.Vector([v, -v])

    @ds.func
    def write(i, value):
        vec[i] = value

    @ds.kernel
    def k():
        for i in range(N):
            out[i] = hyp(a[i], b[i], scale=3.0)
            write(i, swap(a[i]) + sq(ds.Vector([1.0, 2.0])))

    r = np.random.default_rng(9)
    av, bv = r.normal(size=N) * 2, r.normal(size=N) * 2
    a.from_numpy(av)
    b.from_numpy(bv)
    k()
    np.testing.assert_allclose(out.to_numpy(), np.minimum(np.hypot(av, bv), 2.0) * 3.0, rtol=1e-12)
    np.testing.assert_allclose(vec.to_numpy(), np.stack([av + 1, -av + 4], 1), rtol=1e-12)


def test_template_kernels():
    a, b, c = fields()

    @ds.kernel
    def scale(src: ds.template(), dst: ds.template(), s: ds.f64):
        for i in range(N):
            dst[i] = src[i] * s

    a.from_numpy(np.arange(N, dtype=np.float64))
    scale(a, b, 2.0)
    scale(b, c, 0.5)
    scale(a, b, 3.0)
    np.testing.assert_array_equal(b.to_numpy(), 3 * np.arange(N))
    np.testing.assert_array_equal(c.to_numpy(), np.arange(N))


def test_scalar_arguments_are_checked():
    out = ds.field(ds.f32, 4)

    @ds.kernel
    def k(n: ds.i32, s: ds.f32):
        for i in range(n):
            out[i] = s * i

    k(4, 0.5)
    k(np.int64(4), np.float32(0.5))
    np.testing.assert_array_equal(out.to_numpy(), [0, 0.5, 1, 1.5])
    with pytest.raises(TypeError, match="`n` is ds.i32"):
        k(2.0, 1.0)
    with pytest.raises(TypeError, match="`s` is ds.f32"):
        k(2, "x")
    with pytest.raises(TypeError, match="takes 2 arguments"):
        k(2)
    with pytest.raises(OverflowError):
        k(2 ** 40, 1.0)


def test_globals_and_closures_are_build_time_constants():
    out = ds.field(ds.f64, 3)
    factor = 2.5
    table = {"a": 1.0, "b": -1.0}

    @ds.kernel
    def k():
        for i in range(3):
            out[i] = factor * i + table["b"] + math.e

    k()
    np.testing.assert_allclose(out.to_numpy(), [2.5 * i - 1 + math.e for i in range(3)])


def test_random_numbers():
    out = ds.field(ds.f32, 4096)

    @ds.kernel
    def k():
        for i in range(4096):
            out[i] = ds.random()

    k()
    a = out.to_numpy()
    k()
    b = out.to_numpy()
    assert a.min() >= 0 and a.max() < 1 and abs(a.mean() - 0.5) < 0.03
    assert not np.array_equal(a, b)  # the next launch draws other numbers


def test_top_level_serial_code_and_several_loops():
    x = ds.field(ds.f64, 8)
    s = ds.field(ds.f64, ())

    @ds.kernel(no_grad=True)  # it rewrites x after reading it: not differentiable
    def k():
        s[None] = 1.0
        for i in range(8):
            x[i] = i
        for i in range(8):
            x[i] = x[i] * 2

    k()
    np.testing.assert_array_equal(x.to_numpy(), np.arange(8) * 2)
    assert s[None] == 1.0


def test_kernel_grad_launch_and_no_grad():
    x = ds.field(ds.f64, 4, needs_grad=True)
    y = ds.field(ds.f64, 4, needs_grad=True)

    @ds.kernel
    def square():
        for i in range(4):
            y[i] = x[i] * x[i]

    @ds.kernel(no_grad=True)
    def step(lr: ds.f64):
        for i in range(4):
            x[i] -= lr * x.grad[i]

    x.from_numpy(np.arange(4.0))
    square()
    y.grad.fill(1.0)
    square.grad()
    np.testing.assert_array_equal(x.grad.to_numpy(), 2 * np.arange(4.0))
    step(0.5)
    np.testing.assert_array_equal(x.to_numpy(), np.zeros(4))
    with pytest.raises(RuntimeError, match="no gradient"):
        step.grad(0.5)


def test_load_module_runs_a_ds_module():
    import pathlib
    text = (pathlib.Path(__file__).parents[2] / "examples" / "kernels" / "appendix_c.mlir").read_text()
    m = ds.load_module(text, name="appendix_c.mlir")
    xs = np.zeros(32, np.float32)
    ys = np.linspace(0, 1, 32, dtype=np.float32)
    m.x.from_numpy(xs)
    m.y.from_numpy(ys)
    assert "reduce" in m.kernels and "reduce_grad" in m.kernels
    with ds.Tape(m.L):
        m.reduce()
    np.testing.assert_allclose(m.L.to_numpy(), 0.5 * ((xs - ys) ** 2).sum(), rtol=1e-6)
    np.testing.assert_allclose(m.x.grad.to_numpy(), xs - ys, rtol=1e-6)
    with pytest.raises(TypeError):
        m.reduce(3)
    with pytest.raises(ValueError):
        ds.load_module('"ds.field"() {sym_name = "x"} : () -> ()\nfunc.func @k( {', name="bad.mlir")


def test_default_float_type():
    out = ds.field(ds.f64, 2)

    @ds.kernel
    def k():
        for q in range(1):
            r = 0.0
            for w in range(1):
                r = r + 0.1
            out[0] = r
            out[1] = float(q + 3) / 7

    k()
    assert out[0] == float(np.float32(0.1)) and out[1] == float(np.float32(3) / np.float32(7))
    ds.init(default_fp=ds.f64)
    out = ds.field(ds.f64, 2)

    @ds.kernel
    def k64():
        for q in range(1):
            r = 0.0
            for w in range(1):
                r = r + 0.1
            out[0] = r
            out[1] = float(q + 3) / 7

    k64()
    assert out[0] == 0.1 and out[1] == 3 / 7


def test_continue_and_break():
    m = ds.field(ds.i32, (N, 8))
    first_neg = ds.field(ds.i32, N)
    pos_sum = ds.field(ds.i32, N)
    out = ds.field(ds.i32, N)

    @ds.kernel
    def k():
        for i in range(N):
            if i % 5 == 0:
                continue  # in the parallel loop: this row is left alone
            s = 0
            for j in range(8):
                if m[i, j] < 0:
                    continue
                s += m[i, j]
            pos_sum[i] = s
            found = -1
            for j in range(8):
                if m[i, j] < 0:
                    found = j
                    break
                if j > 100:
                    found = -2
            first_neg[i] = found
            acc = 0
            for j in ds.static(range(8)):
                if m[i, j] == 0:
                    break
                if m[i, j] > 2:
                    if m[i, j] > 3:
                        continue
                    acc += 100
                acc += 1
            out[i] = acc

    mv = np.random.default_rng(11).integers(-3, 5, size=(N, 8)).astype(np.int32)
    m.from_numpy(mv)
    first_neg.fill(7)
    pos_sum.fill(7)
    out.fill(7)
    k()
    for i in range(N):
        if i % 5 == 0:
            assert first_neg[i] == 7 and pos_sum[i] == 7 and out[i] == 7
            continue
        row = list(mv[i])
        assert pos_sum[i] == sum(v for v in row if v >= 0)
        assert first_neg[i] == next((j for j, v in enumerate(row) if v < 0), -1)
        acc = 0
        for v in row:
            if v == 0:
                break
            if v > 2:
                if v > 3:
                    continue
                acc += 100
            acc += 1
        assert out[i] == acc, (i, row)


def test_names_of_kernels_and_fields_do_not_clash():
    k_grad = ds.field(ds.f32, 2, name="k_grad")  # what a kernel named k would name its gradient
    out = ds.field(ds.f32, 2)

    @ds.kernel
    def k():
        for i in range(2):
            out[i] = k_grad[i] + 1.0

    k()
    np.testing.assert_array_equal(out.to_numpy(), [1.0, 1.0])


def test_atomic_functions():
    x = ds.field(ds.f32, 100)
    hi = ds.field(ds.f32, ())
    lo = ds.field(ds.f32, ())
    total = ds.field(ds.f32, ())

    @ds.kernel
    def k():
        for i in range(100):
            ds.atomic_max(hi[None], x[i])
            ds.atomic_min(lo[None], x[i])
            ds.atomic_add(total[None], 1.0)
            ds.atomic_sub(total[None], 0.5)

    xv = np.random.default_rng(12).normal(size=100).astype(np.float32)
    x.from_numpy(xv)
    hi[None] = -100.0
    lo[None] = 100.0
    k()
    assert hi[None] == xv.max() and lo[None] == xv.min() and total[None] == 50.0
    with pytest.raises(TypeError):
        ds.atomic_add(1.0, 2.0)
