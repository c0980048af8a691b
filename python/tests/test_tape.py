"""The Tape's rules: what it records, when backward runs, what it refuses."""

import numpy as np
import pytest

import diffsim as ds


def program(n=4):
    x = ds.field(ds.f32, n, needs_grad=True)
    loss = ds.field(ds.f32, (), needs_grad=True)

    @ds.kernel
    def f(s: ds.f32):
        for i in range(n):
            loss[None] += s * x[i] * x[i]

    x.from_numpy(np.arange(n, dtype=np.float32))
    return x, loss, f


def test_backward_on_exit():
    x, loss, f = program()
    with ds.Tape(loss) as tape:
        f(3.0)
        assert tape.launches == 1
        assert loss[None] == 3.0 * (0 + 1 + 4 + 9)  # reading inside the Tape is fine
    np.testing.assert_array_equal(x.grad.to_numpy(), 6.0 * np.arange(4))


def test_an_exception_skips_backward_and_the_tape_can_start_again():
    x, loss, f = program()
    with pytest.raises(ZeroDivisionError):
        with ds.Tape(loss):
            f(1.0)
            1 / 0
    assert not np.any(x.grad.to_numpy())
    loss.fill(0)
    with ds.Tape(loss):
        f(1.0)
    np.testing.assert_array_equal(x.grad.to_numpy(), 2.0 * np.arange(4))


def test_gradients_cleared_or_accumulated():
    x, loss, f = program()
    with ds.Tape(loss):
        f(1.0)
    with ds.Tape(loss, clear_gradients=False):
        f(1.0)
    np.testing.assert_array_equal(x.grad.to_numpy(), 4.0 * np.arange(4))
    with ds.Tape(loss):
        f(1.0)
    np.testing.assert_array_equal(x.grad.to_numpy(), 2.0 * np.arange(4))


def test_what_a_tape_refuses():
    x, loss, f = program()
    plain = ds.field(ds.f32, ())
    with pytest.raises(ValueError, match="needs_grad"):
        ds.Tape(plain)
    with pytest.raises(RuntimeError, match="only read"):
        with ds.Tape(loss):
            f(1.0)
            x[0] = 5.0
    with pytest.raises(RuntimeError, match="do not nest"):
        with ds.Tape(loss):
            with ds.Tape(loss):
                pass


def test_kernels_defined_inside_a_tape():
    x, loss, f = program()
    with ds.Tape(loss):
        @ds.kernel
        def g():  # defined before any launch: the program recompiles, the recording starts over
            for i in range(4):
                loss[None] += x[i]
        g()
        f(1.0)
    np.testing.assert_array_equal(x.grad.to_numpy(), 1.0 + 2.0 * np.arange(4))
    with pytest.raises(RuntimeError, match="while a Tape records"):
        with ds.Tape(loss):
            f(1.0)

            @ds.kernel
            def h():
                for i in range(4):
                    loss[None] += x[i]
            h()


def test_seeds_start_backward_from_given_adjoints():
    n = 3
    x = ds.field(ds.f64, n, needs_grad=True)
    y = ds.field(ds.f64, n, needs_grad=True)

    @ds.kernel
    def f():
        for i in range(n):
            y[i] = ds.sin(x[i])

    xv = np.array([0.1, 0.2, 0.3])
    x.from_numpy(xv)
    seed = np.array([1.0, -2.0, 0.5])
    with ds.Tape(seeds={y: seed}):
        f()
    np.testing.assert_allclose(x.grad.to_numpy(), seed * np.cos(xv))
