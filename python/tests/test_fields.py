import gc

import numpy as np
import pytest

import diffsim as ds


def test_shapes_and_dtypes():
    a = ds.field(ds.f32, (4, 5))
    b = ds.Vector.field(3, ds.f64, 7, needs_grad=True)
    c = ds.Matrix.field(2, 3, ds.f32, (2, 2))
    d = ds.field(ds.i32, ())
    assert a.to_numpy().shape == (4, 5) and a.to_numpy().dtype == np.float32
    assert b.to_numpy().shape == (7, 3) and b.to_numpy().dtype == np.float64
    assert b.grad.to_numpy().shape == (7, 3)
    assert c.to_numpy().shape == (2, 2, 2, 3)
    assert d.to_numpy().shape == () and d.to_numpy().dtype == np.int32
    assert a.grad is None and not np.any(a.to_numpy())


@pytest.mark.parametrize("dtype", [ds.f32, ds.f64, ds.i32])
def test_numpy_round_trip(dtype):
    x = ds.field(dtype, (3, 4))
    values = (np.arange(12).reshape(3, 4) * 3 - 7).astype(dtype.np)
    x.from_numpy(values)
    out = x.to_numpy()
    assert out.dtype == dtype.np
    np.testing.assert_array_equal(out, values)
    out[0, 0] = 99  # a copy
    assert x[0, 0] == values[0, 0]


def test_element_access():
    x = ds.field(ds.f64, (3, 2))
    v = ds.Vector.field(2, ds.f32, 4)
    x[2, 1] = 1.5
    v[3] = [1.0, -2.0]
    v[1] = ds.Vector([4.0, 5.0])
    assert x[2, 1] == 1.5 and x[0, 0] == 0.0
    np.testing.assert_array_equal(v[3], [1.0, -2.0])
    np.testing.assert_array_equal(v.to_numpy()[1], [4.0, 5.0])
    assert v[3, 1] == -2.0
    with pytest.raises(IndexError):
        x[3, 0]
    with pytest.raises(IndexError):
        x[0]
    with pytest.raises(IndexError):
        x[-1, 0]


def test_bad_host_arrays():
    x = ds.field(ds.f32, (3,))
    i = ds.field(ds.i32, (3,))
    with pytest.raises(ValueError, match="shape"):
        x.from_numpy(np.zeros(4))
    with pytest.raises(TypeError, match="integers"):
        i.from_numpy(np.zeros(3))
    with pytest.raises(TypeError):
        ds.field(ds.i32, 3, needs_grad=True)
    with pytest.raises(TypeError):
        ds.field(ds.i64, 3)


def test_view_shares_memory_both_ways():
    x = ds.field(ds.f32, (6,))
    y = ds.field(ds.f32, (6,))

    @ds.kernel
    def double():
        for i in range(6):
            y[i] = 2.0 * x[i]

    @ds.kernel
    def bump():
        for i in range(6):
            x[i] += 1.0

    xv, yv = x.view(), y.view()
    assert xv.shape == (6,) and xv.dtype == np.float32
    xv[:] = np.arange(6)  # a write through the view ...
    double()  # ... is what the kernel reads
    np.testing.assert_array_equal(yv, 2 * np.arange(6))  # and its writes show in the view
    bump()
    np.testing.assert_array_equal(xv, np.arange(6) + 1)
    assert np.shares_memory(xv, x.view())
    assert not np.shares_memory(xv, x.to_numpy())


def test_view_of_vector_field_and_grad():
    p = ds.Vector.field(2, ds.f64, (3, 4), needs_grad=True)
    v = p.view()
    assert v.shape == (3, 4, 2)
    v[1, 2] = [3.0, 4.0]
    np.testing.assert_array_equal(p[1, 2], [3.0, 4.0])
    g = p.grad.view()
    g[0, 0, 1] = 7.0
    assert p.grad[0, 0, 1] == 7.0


def test_view_outlives_the_program():
    x = ds.field(ds.f32, (1000,))
    x.fill(3.0)
    v = x.view()
    ds.init()  # the program is replaced; the view keeps its memory alive
    gc.collect()
    assert float(v.sum()) == 3000.0
    v[:] = 1.0
    assert float(v.sum()) == 1000.0


def test_no_recompile_under_live_views():
    x = ds.field(ds.f32, (4,))
    v = x.view()

    @ds.kernel
    def late():
        for i in range(4):
            x[i] = 1.0

    with pytest.raises(RuntimeError, match="views"):
        late()
    del v
    gc.collect()
    late()
    np.testing.assert_array_equal(x.to_numpy(), np.ones(4))


def test_fields_added_later_keep_values():
    x = ds.field(ds.f32, (3,))
    x.from_numpy([1.0, 2.0, 3.0])
    y = ds.field(ds.f32, (3,))  # recompiles: x keeps its values

    @ds.kernel
    def copy():
        for i in range(3):
            y[i] = x[i]

    copy()
    np.testing.assert_array_equal(y.to_numpy(), [1.0, 2.0, 3.0])


def test_stale_field_after_init():
    x = ds.field(ds.f32, (3,))
    ds.init()
    with pytest.raises(RuntimeError, match="ds.init"):
        x.to_numpy()


def test_names():
    speed = ds.field(ds.f32, 2)
    other = ds.field(ds.f32, 2, name="custom")
    assert speed.name == "speed" and other.name == "custom"
    speed2 = ds.field(ds.f32, 2, name="speed")
    assert speed2.name != "speed"


def test_layouts_store_by_component_and_together():
    n = 5
    x = ds.Vector.field(2, ds.f32, needs_grad=True)  # placed below, as ti.root.dense(ti.i, n).place(x, v)
    v = ds.Vector.field(2, ds.f32, needs_grad=True)
    m = ds.Vector.field(3, ds.f32, n, layout=ds.Layout.SOA)
    plain = ds.Vector.field(3, ds.f32, n)
    ds.root.dense(ds.i, n).place(x, v)
    loss = ds.field(ds.f32, (), needs_grad=True)

    @ds.kernel
    def fill():
        for i in range(n):
            x[i] = ds.Vector([i, 10 * i])
            v[i] = ds.Vector([-i, 0.5 * i])
            m[i] = ds.Vector([i, i + 1, i + 2])
            plain[i] = m[i] * 2

    @ds.kernel
    def energy():
        for i in range(n):
            loss[None] += x[i].dot(v[i])

    fill()
    idx = np.arange(n, dtype=np.float32)
    np.testing.assert_array_equal(x.to_numpy(), np.stack([idx, 10 * idx], 1))
    np.testing.assert_array_equal(v.to_numpy(), np.stack([-idx, 0.5 * idx], 1))
    np.testing.assert_array_equal(plain.to_numpy(), 2 * np.stack([idx, idx + 1, idx + 2], 1))
    # the memory order shows in the views' strides: x and v interleaved per cell, m by component
    assert x.view().strides == (16, 4) and v.view().strides == (16, 4)
    assert m.view().strides == (4, 4 * n)
    base = lambda a: a.__array_interface__["data"][0]  # noqa: E731
    assert base(v.view()) - base(x.view()) == 8  # one buffer: v's components right after x's in each cell
    with ds.Tape(loss):
        energy()
    np.testing.assert_array_equal(x.grad.to_numpy(), v.to_numpy())
    np.testing.assert_array_equal(v.grad.to_numpy(), x.to_numpy())


def test_placement_rules():
    a = ds.field(ds.f32, 4)
    b = ds.field(ds.f64, 4)
    c = ds.field(ds.f32, 3)
    with pytest.raises(ValueError, match="one element size"):
        ds.root.dense(4).place(a, b)
    with pytest.raises(ValueError, match="cells"):
        ds.root.dense(4).place(c)
    with pytest.raises(ValueError, match="order they were declared"):
        d = ds.field(ds.f32, 4)
        ds.root.dense(4).place(d, a)
    unplaced = ds.field(ds.f32)
    with pytest.raises(ValueError, match="no shape"):
        unplaced.to_numpy()
