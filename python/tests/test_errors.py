"""Kernel code outside the language, and bad kernels, raise Python
exceptions naming the file and line of the Python source."""

import numpy as np
import pytest

import diffsim as ds
from conftest import line_of

x = None


def expect(kernel_fn, marker, exc=ds.KernelError, match=None, call=()):
    """Calling the kernel raises `exc` located at the line marked `marker`."""
    with pytest.raises(exc, match=match) as info:
        kernel_fn(*call)
    e = info.value
    assert e.filename == __file__, e
    want = line_of(kernel_fn.fn if hasattr(kernel_fn, "fn") else kernel_fn, marker)
    assert e.lineno == want, e
    assert f"{__file__}:{want}:" in str(e)
    return e


def test_unsupported_statements():
    f = ds.field(ds.f32, 4)

    @ds.kernel
    def uses_while():
        for i in range(4):
            while f[i] < 1.0:  # <- while
                f[i] += 1.0

    @ds.kernel
    def uses_break():
        for i in range(4):
            if f[i] > 0:
                break  # <- break

    @ds.kernel
    def uses_print():
        for i in range(4):
            print(f[i])  # <- print

    @ds.kernel
    def uses_try():
        try:  # <- try
            pass
        except Exception:
            pass

    @ds.kernel
    def returns():
        return 1  # <- return

    expect(uses_while, "# <- while", ds.KernelSyntaxError, "while")
    expect(uses_break, "# <- break", ds.KernelSyntaxError, "break in a parallel loop")
    expect(uses_print, "# <- print", ds.KernelSyntaxError, "print")
    expect(uses_try, "# <- try", ds.KernelSyntaxError, "Try")
    expect(returns, "# <- return", ds.KernelSyntaxError, "returns nothing")


def test_bad_field_use():
    f = ds.field(ds.f32, (4, 4))
    g = ds.field(ds.f32, 4)

    @ds.kernel
    def wrong_rank():
        for i in range(4):
            f[i] = 1.0  # <- rank

    @ds.kernel
    def float_index():
        for i in range(4):
            g[i * 0.5] = 1.0  # <- float

    @ds.kernel
    def vector_into_scalar():
        for i in range(4):
            g[i] = ds.Vector([1.0, 2.0])  # <- vector

    e = expect(wrong_rank, "# <- rank", ds.KernelError, "takes 2 indices")
    assert e.kernel == "wrong_rank"
    expect(float_index, "# <- float", ds.KernelTypeError, "integer")
    expect(vector_into_scalar, "# <- vector", ds.KernelTypeError, "2-vector")


def test_names_and_types():
    g = ds.field(ds.f32, 4)
    flag = ds.field(ds.i32, 4)

    @ds.kernel
    def unknown():
        for i in range(4):
            g[i] = undefined_name  # noqa: F821  <- unknown

    @ds.kernel
    def scoped():
        for i in range(4):
            if g[i] > 0:
                inner = 1.0
            g[i] = inner  # <- scoped

    @ds.kernel
    def outer_write():
        total = 0.0
        for i in range(4):  # <- outer
            total += g[i]

    @ds.kernel
    def shape_change():
        for i in range(4):
            v = 1.0
            if g[i] > 0:  # <- shape
                v = ds.Vector([1.0, 2.0])
            g[i] = v[0]

    @ds.kernel
    def bad_logic():
        for i in range(4):
            flag[i] = flag[i] ^ 3  # <- xor

    expect(unknown, "<- unknown", ds.KernelError, "not defined")
    expect(scoped, "# <- scoped", ds.KernelError, "local to it")
    expect(outer_write, "# <- outer", ds.KernelError, "parallel loop")
    expect(shape_change, "# <- shape", ds.KernelTypeError, "changes from a scalar to a 2-vector")
    expect(bad_logic, "# <- xor", ds.KernelError, "comparisons")


def test_type_mismatch_from_the_builder_carries_the_line():
    g = ds.field(ds.f32, 4)

    @ds.kernel
    def mixes_bool():
        for i in range(4):
            c = i > 2
            g[c] = 1.0  # <- mixed

    e = expect(mixes_bool, "# <- mixed", ds.KernelTypeError, "cannot convert a i1 value to index")
    assert "error: kernel mixes_bool" in str(e)


def test_annotations_are_checked_when_decorated():
    with pytest.raises(ds.KernelError, match="needs a type annotation") as info:
        @ds.kernel
        def no_annotation(n):
            pass
    assert info.value.filename == __file__
    with pytest.raises(ds.KernelError, match="not a kernel parameter type"):
        @ds.kernel
        def bad_annotation(n: str):
            pass
    with pytest.raises(ds.KernelError, match="return nothing"):
        @ds.kernel
        def returns_value() -> ds.f32:
            pass


def test_func_errors_point_into_the_func():
    g = ds.field(ds.f32, 4)

    @ds.func
    def helper(v):
        if v > 0:
            return v  # <- early
        return -v

    @ds.kernel
    def k():
        for i in range(4):
            g[i] = helper(g[i])

    with pytest.raises(ds.KernelError, match="last statement") as info:
        k()
    assert info.value.lineno == line_of(helper.fn, "# <- early")
    with pytest.raises(TypeError, match="called from kernels"):
        helper(1.0)


def test_out_of_bounds_at_run_time_names_the_line():
    g = ds.field(ds.f32, 4)

    @ds.kernel
    def k(n: ds.i32):
        for i in range(n):
            g[i] = 1.0  # <- store

    k(4)
    with pytest.raises(IndexError, match="out of bounds") as info:
        k(5)
    assert f"{__file__}:{line_of(k.fn, '# <- store')}:" in str(info.value)


def test_cuda_without_a_driver_is_a_clear_error():
    if ds.cuda_available():
        pytest.skip("this machine has a CUDA driver")
    with pytest.raises(RuntimeError, match="no CUDA driver"):
        ds.init(arch=ds.cuda)
    with pytest.raises(ValueError, match="arch"):
        ds.init(arch="tpu")


def test_a_failed_kernel_does_not_break_the_others():
    g = ds.field(ds.f32, 4)

    @ds.kernel
    def broken():
        for i in range(4):
            g[i, i] = 1.0

    @ds.kernel
    def fine():
        for i in range(4):
            g[i] = 2.0

    fine()
    np.testing.assert_array_equal(g.to_numpy(), [2.0] * 4)
    with pytest.raises(ds.KernelError):
        broken()


def test_kernel_code_outside_a_kernel():
    with pytest.raises(RuntimeError, match="kernel code"):
        ds.random()
    with pytest.raises(RuntimeError, match="kernel code"):
        ds._diffsim.constant(1.0, "f32")
