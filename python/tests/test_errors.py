"""Kernel code outside the language, and bad kernels, raise Python
exceptions naming the file and line of the Python source."""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import diffsim as ds
from conftest import line_of

ROOT = pathlib.Path(__file__).resolve().parents[2]

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
    for arch in (ds.cuda, ds.gpu, "cuda"):
        with pytest.raises(RuntimeError, match=r"^arch=cuda: no CUDA driver .* use arch=ds.cpu"):
            ds.init(arch=arch)
    text = (ROOT / "examples" / "kernels" / "appendix_c.mlir").read_text()
    with pytest.raises(RuntimeError, match="no CUDA driver"):
        ds.load_module(text, arch=ds.cuda)
    for bad in ("tpu", None):
        with pytest.raises(ValueError, match="arch must be ds.cpu or ds.cuda"):
            ds.init(arch=bad)
        with pytest.raises(ValueError, match="arch must be ds.cpu or ds.cuda"):
            ds.load_module(text, arch=bad)
    x = ds.field(ds.f32, 2)  # the failed ds.init()s left the program on the CPU working
    x.fill(3)
    assert x[1] == 3.0


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_ds_arch_cuda_without_a_driver_is_a_clear_error():
    """DS_ARCH=cuda picks the GPU for a script without ds.init(): the first
    field is the error then."""
    if ds.cuda_available():
        pytest.skip("this machine has a CUDA driver")
    r = run_python("""
        import diffsim as ds
        try:
            ds.field(ds.f32, 4)
        except RuntimeError as e:
            print("error:", e)
    """, DS_ARCH="cuda")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("error: DS_ARCH=cuda: no CUDA driver"), r.stdout


def test_cuda_with_a_driver_but_no_gpu_is_a_clear_error(tmp_path):
    """A CUDA driver whose cuInit finds no device (a machine whose GPU is
    gone, or CUDA_VISIBLE_DEVICES=""): a stand-in libcuda.so, compiled
    here, makes the runtime open GPU 0 and fail, which is a Python
    RuntimeError when the program is first compiled, not a crash."""
    if ds.cuda_available():
        pytest.skip("this machine has a CUDA driver")
    cc = shutil.which("cc")
    assert cc, "a C compiler (cc, which cargo links with) builds the stand-in driver"
    (tmp_path / "cuda.c").write_text(textwrap.dedent("""
        typedef int CUresult;
        CUresult cuInit(unsigned flags) { (void)flags; return 100; /* CUDA_ERROR_NO_DEVICE */ }
        CUresult cuGetErrorString(CUresult e, const char **s) { *s = "no CUDA-capable device is detected"; return 0; }
        CUresult cuGetErrorName(CUresult e, const char **s) { *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
    """))
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "libcuda.so"), str(tmp_path / "cuda.c")], check=True)
    r = run_python(f"""
        import diffsim as ds
        assert ds.cuda_available()
        ds.init(arch=ds.cuda)
        x = ds.field(ds.f32, 4)
        for attempt in ("a field", "a module"):
            try:
                if attempt == "a field":
                    x.fill(1)
                else:
                    ds.load_module(open({str(ROOT / "examples" / "kernels" / "appendix_c.mlir")!r}).read(), arch=ds.cuda)
            except RuntimeError as e:
                print(attempt, "error:", e)
    """, LD_LIBRARY_PATH=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, r.stdout
    for line, attempt in zip(lines, ("a field", "a module")):
        assert line.startswith(f"{attempt} error: CUDA: cannot open GPU 0:") and "CUDA_ERROR_NO_DEVICE" in line, line


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
