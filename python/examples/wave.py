"""Paper Fig. 5b, appendix D, in Python: the wave equation by finite
differences (FDTD) on a 256 x 256 grid; gradient descent on the initial
height so the wave, 256 steps later, draws a target picture.

The same program as the Rust example (examples/src/wave.rs, whose module
doc gives the scene): dx = 1/256, c = 340, undamped (``--damping``), the
height p[t, i, j] stored per step with a frame of zeros around the grid
(cell (i, j) is p[t, i + 1, j + 1]), loss = sum dx^2 (target - p[255])^2
with the taiji target drawn by the program (minus its mean), plain
gradient descent ``initial -= 1.0 * dL/dinitial``, 200 iterations, single
precision. Prints ``iter N loss X fwd_ms A bwd_ms B`` per iteration as
``diffsim run wave`` does.

    python python/examples/wave.py [--iters N] [--arch cpu|cuda] [--n 256]
"""

import argparse
import statistics
import time

import numpy as np

import diffsim as ds

C = 340.0
LEARNING_RATE = 1.0
ITERATIONS = 200


def time_step(alpha, dx):
    return (np.sqrt(alpha * alpha + dx * dx / 3.0) - alpha) / C


def taiji(n):
    """The Rust example's target before its mean is subtracted: a taiji of
    radius 0.5 in the unit square, 1 light, 0 dark, row 0 at the top."""
    row, col = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    x = (col + 0.5) / n - 0.5
    y = 0.5 - (row + 0.5) / n
    big, half, dot = 0.5, 0.25, 0.25 / 3.0

    def within(cy, r):
        return x * x + (y - cy) * (y - cy) < r * r
    light = within(0.0, big) & ~within(half, dot) & (within(-half, dot) | within(half, half) | (~within(-half, half) & (x > 0.0)))
    return light.astype(np.float32)


def build(n=256, steps=256, max_steps=512, damping=0.0, dtype=ds.f32):
    dx = 1.0 / n
    inv_dx2 = float(n * n)
    dt = time_step(damping, dx)
    k_q, k_p = C * C * dt * dt + C * damping * dt, C * damping * dt

    p = ds.field(dtype, (max_steps, n + 2, n + 2), needs_grad=True)
    initial = ds.field(dtype, (n, n), needs_grad=True)
    target = ds.field(dtype, (n, n))
    loss = ds.field(dtype, (), needs_grad=True)

    @ds.kernel
    def initialize():
        for i in range(n):
            for j in range(n):
                p[0, i + 1, j + 1] = initial[i, j]

    @ds.func
    def laplacian(s, i, j):
        return inv_dx2 * (-4.0 * p[s, i, j] + p[s, i, j - 1] + p[s, i, j + 1] + p[s, i + 1, j] + p[s, i - 1, j])

    @ds.kernel
    def fdtd(t: ds.i32):
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                q, r = t - 1, t - 2
                p[t, i, j] = 2.0 * p[q, i, j] + k_q * laplacian(q, i, j) - p[r, i, j] - k_p * laplacian(r, i, j)

    @ds.kernel
    def compute_loss(t: ds.i32):
        for i in range(n):
            for j in range(n):
                d = target[i, j] - p[t, i + 1, j + 1]
                loss[None] += dx * dx * (d * d)

    @ds.kernel(no_grad=True)
    def clear_adjoint(upto: ds.i32):
        """dL/dp for the steps a backward uses (the Tape's clearing would zero all of them)."""
        for t in range(upto):
            for i in range(n + 2):
                for j in range(n + 2):
                    p.grad[t, i, j] = 0.0

    @ds.kernel(no_grad=True)
    def apply_grad():
        for i in range(n):
            for j in range(n):
                initial[i, j] = initial[i, j] - LEARNING_RATE * initial.grad[i, j]

    def set_target(picture):
        mean = picture.astype(np.float64).sum() / picture.size
        target.from_numpy((picture.astype(np.float64) - mean).astype(dtype.np))

    def loss_and_grad():
        """The loss after `steps` steps and dL/dinitial (in initial.grad); the forward and
        backward milliseconds (the adjoints' clearing counted in backward, as in Rust)."""
        cleared = time.perf_counter()
        clear_adjoint(steps)
        initial.grad.fill(0)
        start = time.perf_counter()
        clear_ms = (start - cleared) * 1e3
        loss.fill(0)
        with ds.Tape(loss, clear_gradients=False, keep_state=False):
            initialize()
            for t in range(2, steps):
                fdtd(t)
            compute_loss(steps - 1)
            value = loss[None]
            forward = time.perf_counter()
        done = time.perf_counter()
        return value, (forward - start) * 1e3, (done - forward) * 1e3 + clear_ms  # as the Rust example counts

    def forward():
        loss.fill(0)
        initialize()
        for t in range(2, steps):
            fdtd(t)
        compute_loss(steps - 1)
        return loss[None]

    return dict(p=p, initial=initial, target=target, loss=loss, set_target=set_target, loss_and_grad=loss_and_grad,
                forward=forward, apply_grad=apply_grad, n=n, steps=steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=ITERATIONS)
    parser.add_argument("--arch", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--damping", type=float, default=0.0)
    parser.add_argument("--n", type=int, default=256, help="grid size (the original's 256)")
    opts = parser.parse_args()
    ds.init(arch=ds.cuda if opts.arch == "cuda" else ds.cpu, num_threads=opts.threads)
    w = build(n=opts.n, steps=opts.n, max_steps=2 * opts.n, damping=opts.damping)
    w["set_target"](taiji(opts.n))
    iter_ms = []
    for it in range(opts.iters):
        start = time.perf_counter()
        value, fwd, bwd = w["loss_and_grad"]()
        w["apply_grad"]()
        iter_ms.append((time.perf_counter() - start) * 1e3)
        print(f"iter {it} loss {value:.6e} fwd_ms {fwd:.3f} bwd_ms {bwd:.3f}".replace("e-0", "e-").replace("e+0", "e"))
    print(f"final loss: {w['forward']():.6e}".replace("e-0", "e-").replace("e+0", "e"))
    if iter_ms:
        print(f"iter_ms: {statistics.median(iter_ms):.3f}")


if __name__ == "__main__":
    main()
