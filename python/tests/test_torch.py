"""The PyTorch wrapper (diffsim.torch): its gradient against
torch.autograd.gradcheck, gradients flowing torch -> DiffSim -> torch,
fields as tensors through DLPack, and its errors.

Skipped where torch is not installed, unless DS_TORCH_REQUIRED is set (as
.ci/run sets it): then a missing torch fails the run."""

import gc
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("DS_TORCH_REQUIRED"):
    import torch
else:
    torch = pytest.importorskip("torch")

import diffsim as ds  # noqa: E402
import diffsim.torch as dt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
F64 = torch.float64


def chain(steps=6, n=4):
    """A chain of n masses joined by n - 1 springs (stiffness k, rest length
    0.5) under gravity, semi-implicit Euler for `steps` steps from rest at
    x0: inputs x0 (n 2-vectors) and k, output the final positions."""
    ds.init(default_fp=ds.f64)
    x0 = ds.Vector.field(2, ds.f64, n, needs_grad=True)
    k = ds.field(ds.f64, n - 1, needs_grad=True)
    x = ds.Vector.field(2, ds.f64, (steps, n), needs_grad=True)
    v = ds.Vector.field(2, ds.f64, (steps, n), needs_grad=True)
    out = ds.Vector.field(2, ds.f64, n, needs_grad=True)

    @ds.kernel
    def start():
        for i in range(n):
            x[0, i] = x0[i]
            v[0, i] = ds.Vector([0.0, 0.0])

    @ds.kernel
    def step(t: ds.i32):
        for i in range(n):
            f = ds.Vector([0.0, -1.0])
            if i > 0:
                d = x[t - 1, i - 1] - x[t - 1, i]
                length = d.norm()
                f = f + d * (k[i - 1] * (length - 0.5) / length)
            if i < n - 1:
                d = x[t - 1, i + 1] - x[t - 1, i]
                length = d.norm()
                f = f + d * (k[i] * (length - 0.5) / length)
            nv = v[t - 1, i] * 0.95 + f * 0.05
            v[t, i] = nv
            x[t, i] = x[t - 1, i] + nv * 0.05

    @ds.kernel
    def finish():
        for i in range(n):
            out[i] = x[steps - 1, i]

    def forward():
        start()
        for t in range(1, steps):
            step(t)
        finish()

    return dt.function(forward, inputs=[x0, k], outputs=[out]), n


def chain_inputs(n, requires_grad=True):
    g = torch.Generator().manual_seed(0)
    x0 = torch.stack([torch.arange(n, dtype=F64) * 0.6, torch.zeros(n, dtype=F64)], 1)
    x0 = x0 + 0.1 * torch.randn(n, 2, dtype=F64, generator=g)
    k = 2.0 + torch.rand(n - 1, dtype=F64, generator=g)
    return x0.requires_grad_(requires_grad), k.requires_grad_(requires_grad)


def test_chain_gradcheck():
    sim, n = chain()
    x0, k = chain_inputs(n)
    out = sim(x0, k)
    assert out.shape == (n, 2) and out.dtype == F64 and out.requires_grad
    assert not torch.allclose(out, x0)  # the simulation moved the masses
    assert torch.autograd.gradcheck(sim, (x0, k), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_ring_gradcheck():
    """The scalar-field simulation of test_interop (sin coupling, a 0-D input)."""
    from test_interop import simulation
    core, n = simulation()
    sim = dt.function(core.forward, core.inputs, core.outputs)
    h = torch.randn(n, dtype=F64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    k = torch.tensor(1.3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(sim, (h, k), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradients_flow_torch_to_diffsim_to_torch():
    """A torch parameter -> torch layers -> the DiffSim chain -> a torch loss:
    loss.backward() gives the parameter's gradient, equal to central
    differences of the whole pipeline."""
    sim, n = chain()
    base, k_base = chain_inputs(n, requires_grad=False)
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2 * n).to(F64)
    theta = torch.tensor([0.3, -0.2, 0.5], dtype=F64, requires_grad=True)
    target = torch.linspace(0.0, 1.5, n, dtype=F64)

    def loss_of(theta):
        x0 = base + 0.2 * torch.tanh(lin(theta)).reshape(n, 2)
        k = k_base * torch.exp(theta[:1])
        out = sim(x0, k)
        return ((out[:, 0] - target) ** 2).sum() + out[:, 1].mean()

    loss = loss_of(theta)
    loss.backward()
    assert theta.grad is not None and lin.weight.grad is not None
    assert torch.all(lin.weight.grad.abs().sum(1) > 0)  # the gradient reached the layer before DiffSim
    eps = 1e-6
    with torch.no_grad():
        for j in range(3):
            d = torch.zeros(3, dtype=F64)
            d[j] = eps
            num = (loss_of(theta + d) - loss_of(theta - d)) / (2 * eps)
            np.testing.assert_allclose(theta.grad[j].item(), num.item(), rtol=1e-6, atol=1e-9)


def test_a_gradient_of_the_gradient_is_an_error():
    sim, n = chain()
    x0, k = chain_inputs(n)
    (g,) = torch.autograd.grad((sim(x0, k) ** 2).sum(), x0, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_a_field_as_a_tensor_shares_its_memory():
    x = ds.field(ds.f32, 4)
    y = ds.field(ds.f32, 4)
    p = ds.Vector.field(2, ds.f64, 3)

    @ds.kernel
    def double():
        for i in range(4):
            y[i] = 2.0 * x[i]

    @ds.kernel
    def bump():
        for i in range(4):
            x[i] += 1.0

    t, u = dt.to_torch(x), torch.from_dlpack(y)
    assert t.dtype == torch.float32 and t.shape == (4,) and t.device.type == "cpu"
    assert t.data_ptr() == x.view().ctypes.data  # the field's memory, not a copy
    t[:] = torch.arange(4.0)  # torch writes, a kernel reads
    double()
    np.testing.assert_array_equal(y.to_numpy(), [0, 2, 4, 6])
    np.testing.assert_array_equal(u.numpy(), [0, 2, 4, 6])  # a kernel writes, torch reads
    bump()
    np.testing.assert_array_equal(t.numpy(), [1, 2, 3, 4])
    x[2] = 9.0  # the host writes the field
    assert t[2].item() == 9.0
    pt = dt.to_torch(p)
    assert pt.shape == (3, 2) and pt.dtype == F64
    pt[1] = torch.tensor([5.0, 6.0], dtype=F64)
    np.testing.assert_array_equal(p[1], [5.0, 6.0])


def test_a_kernel_added_while_a_tensor_shows_a_field_is_refused():
    x = ds.field(ds.f32, 4)

    @ds.kernel
    def one():
        for i in range(4):
            x[i] = 1.0

    t = dt.to_torch(x)

    @ds.kernel
    def two():
        for i in range(4):
            x[i] = 2.0

    with pytest.raises(RuntimeError, match="views"):
        two()  # recompiling would leave t showing memory no kernel uses
    one()
    assert t.sum().item() == 4.0
    del t
    gc.collect()
    two()
    np.testing.assert_array_equal(x.to_numpy(), [2, 2, 2, 2])


def test_wrong_tensors_are_clear_errors():
    sim, n = chain()
    x0, k = chain_inputs(n)
    with pytest.raises(TypeError, match=r"input 0 \(field @x0.*torch.float64 tensor expected, given torch.float32"):
        sim(x0.float(), k)
    with pytest.raises(ValueError, match=r"input 1 \(field @k.*shape \(3,\) expected, given \(4,\)"):
        sim(x0, torch.ones(4, dtype=F64))
    with pytest.raises(ValueError, match=r"input 0 .*a CPU tensor expected, given one on meta"):
        sim(torch.empty(n, 2, dtype=F64, device="meta"), k)
    with pytest.raises(TypeError, match="a torch tensor expected, given ndarray"):
        sim(x0.detach().numpy(), k)
    with pytest.raises(TypeError, match=r"takes 2 tensors \(fields @x0, @k\), given 1"):
        sim(x0)
    assert sim(x0, k).shape == (n, 2)  # the errors left the function usable


def test_an_input_without_a_gradient_is_refused():
    a = ds.field(ds.f32, 3)
    b = ds.field(ds.f32, 3, needs_grad=True)
    with pytest.raises(ValueError, match="@a needs needs_grad=True"):
        dt.function(lambda: None, inputs=[a], outputs=[b])



def test_torch_controller_example_reduces_its_loss():
    out = subprocess.run([sys.executable, str(ROOT / "python" / "examples" / "torch_controller.py"), "--iters", "30"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    losses = [float(line.split()[3]) for line in out.splitlines() if line.startswith("iter ")]
    assert len(losses) == 30
    assert losses[-1] < losses[0] / 10
    final = float(next(line for line in out.splitlines() if line.startswith("final loss")).split()[-1])
    assert final <= losses[-1]
