"""Paper sec. 2.2, Fig. 2, in Python: three masses joined by three springs;
gradient descent on the rest lengths so the triangle's area ends at 0.1.

The same program as the Rust example (examples/src/mass_spring_simple.rs):
stiffness 10, damping 20, dt 0.001, 1024 steps, a wall at x = 0.4 with
friction 0.01, learning rate 5, 25 iterations, state stored per time step
(x[t, i]) so the Tape replays the gradients in reverse without
checkpointing. Prints ``iter N loss X fwd_ms A bwd_ms B`` per iteration as
``diffsim run mass_spring_simple`` does, then the rest lengths, the final
loss and the median iteration time.

    python python/examples/mass_spring_simple.py [--iters N] [--arch cpu|cuda]
"""

import argparse
import math
import statistics
import time

import diffsim as ds

STEPS = 1024
LEARNING_RATE = 5.0
ITERATIONS = 25
INITIAL_X = [[0.3, 0.5], [0.3, 0.4], [0.4, 0.4]]
SPRINGS = [(0, 1), (1, 2), (2, 0)]


def build():
    x = ds.Vector.field(2, ds.f32, (STEPS, 3), needs_grad=True)
    v = ds.Vector.field(2, ds.f32, (STEPS, 3), needs_grad=True)
    force = ds.Vector.field(2, ds.f32, (STEPS, 3), needs_grad=True)
    spring_length = ds.field(ds.f32, 3, needs_grad=True)
    spring_a = ds.field(ds.i32, 3)
    spring_b = ds.field(ds.i32, 3)
    loss = ds.field(ds.f32, (), needs_grad=True)

    # --- the paper's kernels ---
    @ds.kernel
    def apply_spring_force(t: ds.i32):
        for i in range(3):
            a, b = spring_a[i], spring_b[i]
            dist = x[t - 1, a] - x[t - 1, b]
            length = dist.norm() + 1e-4
            f = dist * ((length - spring_length[i]) * 10.0 / length)
            force[t, a] -= f
            force[t, b] += f

    @ds.kernel
    def time_integrate(t: ds.i32):
        for i in range(3):
            s = math.exp(-0.001 * 20.0)
            nv = v[t - 1, i] * s + force[t, i] * 0.001
            nx = x[t - 1, i] + nv * 0.001
            if nx[0] > 0.4 and nv[0] > 0.0:
                shrink = min(abs(nv[1]), nv[0] * 0.01)
                vy = ds.select(nv[1] > 0.0, nv[1] - shrink, nv[1] + shrink)
                nv = ds.Vector([nv[0] * 0.0, vy])
            v[t, i] = nv
            x[t, i] = nx

    @ds.kernel
    def compute_loss(t: ds.i32):
        area = abs(0.5 * (x[t, 0] - x[t, 1]).cross(x[t, 0] - x[t, 2]))
        loss[None] = (area - 0.1) ** 2
    # --- end of the paper's kernels ---

    return locals()


def rust_e(x):
    """x as Rust's {:.6e} prints it (9.026411e-3)."""
    mantissa, exponent = f"{x:.6e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=ITERATIONS)
    parser.add_argument("--arch", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    opts = parser.parse_args()
    ds.init(arch=ds.cuda if opts.arch == "cuda" else ds.cpu, num_threads=opts.threads)
    sim = build()
    x, v, force, loss = sim["x"], sim["v"], sim["force"], sim["loss"]
    spring_length = sim["spring_length"]
    apply_spring_force, time_integrate, compute_loss = sim["apply_spring_force"], sim["time_integrate"], sim["compute_loss"]

    sim["spring_a"].from_numpy([a for a, _ in SPRINGS])
    sim["spring_b"].from_numpy([b for _, b in SPRINGS])
    spring_length.from_numpy([0.1, 0.1, 0.1 * math.sqrt(2)])

    iter_ms = []
    for it in range(opts.iters):
        start = time.perf_counter()
        for f in (x, v, force, loss):
            f.fill(0)
        for i in range(3):
            x[0, i] = INITIAL_X[i]
        with ds.Tape(loss, keep_state=False):
            for t in range(1, STEPS):
                apply_spring_force(t)
                time_integrate(t)
            compute_loss(STEPS - 1)
            value = loss[None]
            forward = time.perf_counter()
        grad = spring_length.grad.to_numpy()
        backward = time.perf_counter()
        spring_length.from_numpy(spring_length.to_numpy() - LEARNING_RATE * grad)
        done = time.perf_counter()
        iter_ms.append((done - start) * 1e3)
        print(f"iter {it} loss {rust_e(value)} fwd_ms {(forward - start) * 1e3:.3f} bwd_ms {(backward - forward) * 1e3:.3f}")

    print("rest lengths: [" + ", ".join(f"{l:.4f}" for l in spring_length.to_numpy()) + "]")
    for f in (x, v, force, loss):
        f.fill(0)
    for i in range(3):
        x[0, i] = INITIAL_X[i]
    for t in range(1, STEPS):
        apply_spring_force(t)
        time_integrate(t)
    compute_loss(STEPS - 1)
    print(f"final loss: {rust_e(loss[None])}")
    if iter_ms:
        print(f"iter_ms: {statistics.median(iter_ms):.3f}")


if __name__ == "__main__":
    main()
