"""DLPack export to numpy, and DiffSim as a differentiable function of
arrays (the PyTorch wrapper's tests are in test_torch.py)."""

import numpy as np
import pytest

import diffsim as ds


def test_dlpack_shares_the_field_memory():
    x = ds.field(ds.f32, (3, 4))

    @ds.kernel
    def inc():
        for i, j in x:
            x[i, j] += 1.0

    a = np.from_dlpack(x)  # read-only under numpy 1.x (its DLPack import is), writable under 2.x
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert np.shares_memory(a, x.view())
    x.view()[1, 2] = 5.0
    assert a[1, 2] == 5.0
    inc()
    assert a[1, 2] == 6.0 and a[0, 0] == 1.0
    assert x[1, 2] == 6.0


def simulation():
    ds.init(default_fp=ds.f64)
    n = 5
    h = ds.field(ds.f64, n, needs_grad=True)
    k = ds.field(ds.f64, (), needs_grad=True)
    state = ds.field(ds.f64, (10, n), needs_grad=True)
    out = ds.field(ds.f64, n, needs_grad=True)

    @ds.kernel
    def start():
        for i in range(n):
            state[0, i] = h[i]

    @ds.kernel
    def step(t: ds.i32):
        for i in range(n):
            left = state[t - 1, (i + n - 1) % n]
            state[t, i] = state[t - 1, i] + 0.1 * k[None] * ds.sin(left - state[t - 1, i])

    @ds.kernel
    def finish():
        for i in range(n):
            out[i] = state[9, i] ** 2

    def forward():
        start()
        for t in range(1, 10):
            step(t)
        finish()

    return ds.Differentiable(forward, inputs=[h, k], outputs=[out]), n


def test_differentiable_vjp_against_central_differences():
    f, n = simulation()
    r = np.random.default_rng(0)
    h0, k0, w = r.normal(size=n), np.array(1.3), r.normal(size=n)
    (y,) = f(h0, k0)
    gh, gk = f.vjp([h0, k0], [w])
    eps = 1e-6
    for k in range(n):
        d = np.zeros(n)
        d[k] = eps
        num = (w @ f(h0 + d, k0)[0] - w @ f(h0 - d, k0)[0]) / (2 * eps)
        np.testing.assert_allclose(gh[k], num, rtol=1e-6)
    num_k = (w @ f(h0, k0 + eps)[0] - w @ f(h0, k0 - eps)[0]) / (2 * eps)
    np.testing.assert_allclose(gk, num_k, rtol=1e-6)
    np.testing.assert_array_equal(f(h0, k0)[0], y)  # re-running gives the same outputs
