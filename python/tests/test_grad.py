"""Gradients through the Tape against central finite differences (f64)."""

import numpy as np
import pytest

import diffsim as ds


@pytest.fixture(autouse=True)
def f64_program():
    ds.init(default_fp=ds.f64)


def fd_check(params, reset, run, loss, eps=1e-6, rtol=1e-6, atol=1e-9, **tape):
    """dL/dp from the Tape equals central differences of L for every element of every p."""
    reset()
    with ds.Tape(loss, **tape):
        run()
    grads = [p.grad.to_numpy() for p in params]
    for p, g in zip(params, grads):
        base = p.to_numpy()
        flat = base.reshape(-1)
        numeric = np.zeros_like(flat)
        for k in range(flat.size):
            values = []
            for sign in (1, -1):
                a = flat.copy()
                a[k] += sign * eps
                p.from_numpy(a.reshape(base.shape))
                reset()
                run()
                values.append(loss.to_numpy().sum())
            numeric[k] = (values[0] - values[1]) / (2 * eps)
        p.from_numpy(base)
        np.testing.assert_allclose(g.reshape(-1), numeric, rtol=rtol, atol=atol)
        assert np.any(g != 0)


def scalar_fields(n, *names, grad=True):
    return [ds.field(ds.f64, n, needs_grad=grad, name=nm) for nm in names]


def test_elementwise_math():
    n = 6
    x, y = scalar_fields(n, "x", "y")
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def f():
        for i in range(n):
            a, b = x[i], y[i]
            loss[None] += (ds.sin(a) * ds.exp(b) + a / (1 + b * b) + ds.sqrt(a * a + 1.0) + ds.tanh(a - b)
                           + ds.pow(b * b + 1.0, a) + ds.atan2(a, b + 3.0) + ds.log(b * b + 2.0) * a ** 3
                           - abs(a) * min(a, b) + max(a, 0.1 * b) + (a % 0.7) * b)

    r = np.random.default_rng(0)
    x.from_numpy(r.uniform(-1, 1, n))
    y.from_numpy(r.uniform(-1, 1, n))
    fd_check([x, y], lambda: loss.fill(0), f, loss, rtol=1e-5)


def test_branches_and_select():
    n = 8
    x, w = scalar_fields(n, "x", "w")
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def f(t: ds.f64):
        for i in range(n):
            a = x[i]
            r = 0.0
            if a > t:
                r = a * a * w[i]
            elif a < -t:
                r = -a * w[i] + ds.sin(a)
            else:
                r = ds.select(w[i] > 0, a * w[i], a - w[i])
            loss[None] += r * r + (a if a > 0.1 else 2 * a)

    x.from_numpy(np.array([-1.2, -0.7, -0.2, 0.05, 0.25, 0.6, 0.9, 1.3]))
    w.from_numpy(np.array([0.5, -0.3, 0.8, -0.9, 1.1, 0.2, -0.4, 0.7]))
    fd_check([x, w], lambda: loss.fill(0), lambda: f(0.5), loss)


def test_serial_loop_carrying_values():
    n, k = 4, 5
    x = ds.field(ds.f64, (n, k), needs_grad=True)
    w = ds.field(ds.f64, k, needs_grad=True)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def f():
        for i in range(n):
            s = 0.0
            v = ds.Vector([1.0, 0.0])
            for j in range(k):
                s = s * 0.9 + x[i, j] * w[j]
                v = ds.Vector([v[0] * ds.cos(w[j]) - v[1] * ds.sin(w[j]), v[0] * ds.sin(w[j]) + v[1] * ds.cos(w[j])])
            loss[None] += s * s + v[1] * x[i, 0]

    r = np.random.default_rng(1)
    x.from_numpy(r.normal(size=(n, k)))
    w.from_numpy(r.normal(size=k))
    fd_check([x, w], lambda: loss.fill(0), f, loss)


def test_vectors_matrices_and_funcs():
    n = 3
    p = ds.Vector.field(3, ds.f64, n, needs_grad=True)
    m = ds.Matrix.field(2, 2, ds.f64, n, needs_grad=True)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.func
    def energy(a, b):
        return (a - b).norm() + a.cross(b).norm_sqr()

    @ds.kernel
    def f():
        for i in range(n):
            a = p[i]
            b = p[(i + 1) % n]
            q = m[i]
            v = q.inverse() @ ds.Vector([a.x, a.y])
            loss[None] += energy(a, b) + q.determinant() ** 2 + v.dot(v) + (q @ q.transpose()).trace() + a.normalized().z

    r = np.random.default_rng(2)
    p.from_numpy(r.normal(size=(n, 3)))
    m.from_numpy(r.normal(size=(n, 2, 2)) + 2 * np.eye(2))
    fd_check([p, m], lambda: loss.fill(0), f, loss, rtol=1e-5)


def test_time_steps_across_kernels():
    steps, n = 20, 3
    x = ds.field(ds.f64, (steps, n), needs_grad=True)
    v = ds.field(ds.f64, (steps, n), needs_grad=True)
    k = ds.field(ds.f64, n, needs_grad=True)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def advance(t: ds.i32, dt: ds.f64):
        for i in range(n):
            v[t, i] = v[t - 1, i] - dt * k[i] * ds.sin(x[t - 1, i])
            x[t, i] = x[t - 1, i] + dt * v[t - 1, i]

    @ds.kernel
    def final(t: ds.i32):
        for i in range(n):
            loss[None] += x[t, i] ** 2 + 0.5 * v[t, i] ** 2

    x0 = np.array([0.3, -0.8, 1.2])
    k.from_numpy(np.array([1.0, 2.0, 0.5]))

    def reset():
        for f in (x, v, loss):
            f.fill(0)
        xs = x.to_numpy()
        xs[0] = x0
        x.from_numpy(xs)

    def run():
        for t in range(1, steps):
            advance(t, 0.05)
        final(steps - 1)

    fd_check([k], reset, run, loss, keep_state=False)
    # the initial state's gradient: dL/dx[0]
    reset()
    with ds.Tape(loss, keep_state=False):
        run()
    g0 = x.grad.to_numpy()[0].copy()
    num = []
    for i in range(n):
        vals = []
        for s in (1, -1):
            reset()
            xs = x.to_numpy()
            xs[0, i] += s * 1e-6
            x.from_numpy(xs)
            run()
            vals.append(loss[None])
        num.append((vals[0] - vals[1]) / 2e-6)
    np.testing.assert_allclose(g0, num, rtol=1e-6)


def test_scatter_with_atomics_and_templates():
    n, m = 12, 4
    x = ds.field(ds.f64, n, needs_grad=True)
    w = ds.field(ds.f64, n, needs_grad=True)
    idx = ds.field(ds.i32, n)
    y = ds.field(ds.f64, m, needs_grad=True)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def scatter(src: ds.template()):
        for i in range(n):
            y[idx[i]] += w[i] * src[i]

    @ds.kernel
    def reduce():
        for j in range(m):
            loss[None] += ds.sin(y[j]) * (j + 1)

    r = np.random.default_rng(3)
    x.from_numpy(r.normal(size=n))
    w.from_numpy(r.normal(size=n))
    idx.from_numpy(r.integers(0, m, n).astype(np.int32))

    def reset():
        y.fill(0)
        loss.fill(0)

    def run():
        scatter(x)
        reduce()

    fd_check([x, w], reset, run, loss)


def test_random_numbers_are_replayed_by_backward():
    n = 64
    x = ds.field(ds.f64, n, needs_grad=True)
    drawn = ds.field(ds.f64, n)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def f():
        for i in range(n):
            r = ds.random(ds.f64)
            drawn[i] = r
            loss[None] += x[i] * r

    x.fill(1.0)
    with ds.Tape(loss):
        f()
    np.testing.assert_array_equal(x.grad.to_numpy(), drawn.to_numpy())


def test_checkpointing_when_state_is_overwritten():
    n, steps = 4, 12
    x = ds.field(ds.f64, n, needs_grad=True)
    y = ds.field(ds.f64, n, needs_grad=True)
    a = ds.field(ds.f64, n, needs_grad=True)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def half():
        for i in range(n):
            y[i] = x[i] + 0.1 * ds.sin(a[i] * x[i])

    @ds.kernel
    def back():
        for i in range(n):
            x[i] = y[i] * 0.95 + 0.01 * a[i]  # overwrites x, which half read

    @ds.kernel
    def final():
        for i in range(n):
            loss[None] += x[i] * x[i]

    a.from_numpy(np.array([0.5, 1.5, -1.0, 2.0]))
    x0 = np.array([1.0, -0.5, 0.25, 2.0])

    def reset():
        x.from_numpy(x0)
        y.fill(0)
        loss.fill(0)

    def run(tape=None):
        for _ in range(steps):
            half()
            back()
            if tape is not None:
                tape.end_step()
        final()

    reset()
    with pytest.raises(RuntimeError, match="overwrote @x"):
        with ds.Tape(loss):
            run()
    budget = 1024  # a few snapshots of the state, not one per step: backward recomputes steps
    reset()
    with ds.Tape(loss, memory_budget=budget) as tape:
        run(tape)
    assert tape.plan is not None and "binomial" in tape.plan, tape.plan
    got = a.grad.to_numpy()
    num = []
    for i in range(n):
        vals = []
        for s in (1, -1):
            av = a.to_numpy()
            av[i] += s * 1e-6
            a.from_numpy(av)
            reset()
            run()
            vals.append(loss[None])
            av[i] -= s * 1e-6
            a.from_numpy(av)
        num.append((vals[0] - vals[1]) / 2e-6)
    np.testing.assert_allclose(got, num, rtol=1e-6)


def test_gradients_through_continue_and_break():
    n, k = 3, 6
    x = ds.field(ds.f64, (n, k), needs_grad=True)
    loss = ds.field(ds.f64, (), needs_grad=True)

    @ds.kernel
    def f():
        for i in range(n):
            s = 0.0
            for j in range(k):
                if x[i, j] < 0:
                    continue
                if s > 2.0:
                    break
                s = s + x[i, j] * x[i, j] * (j + 1)
            loss[None] += ds.sin(s)

    x.from_numpy(np.array([[0.5, -0.3, 0.7, 0.2, 1.1, 0.4],
                           [-0.8, 0.3, -0.2, 0.6, 0.35, 0.9],
                           [1.3, 0.45, 0.8, -0.6, 0.3, 0.2]]))
    fd_check([x], lambda: loss.fill(0), f, loss)
    g = x.grad.to_numpy()
    assert g[0, 1] == 0 and g[1, 0] == 0  # skipped by continue
    assert g[2, 5] == 0  # after the break
