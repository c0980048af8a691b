"""A DiffSim simulation inside a PyTorch model (the paper's water_renderer
pattern): a torch MLP, the controller, maps a goal point to the forces that
drive the tip of a rope; DiffSim simulates the rope; the loss is computed in
torch from the simulated positions, and torch.optim.Adam trains the
controller through the simulation's gradient (diffsim.torch.function).

The rope: MASSES masses joined by springs (stiffness 100, rest length 0.2,
damping), the first one pinned at the origin, under gravity, STEPS
semi-implicit Euler steps of dt 0.02 from a horizontal start. The
controller outputs one 2-D force per step on the last mass; the loss is the
squared distance of the last mass to the goal at the end, plus a small
penalty on the forces. Prints ``iter N loss X`` per iteration, then
``final loss: X`` for the trained controller.

    python python/examples/torch_controller.py [--iters N] [--steps T] [--threads N]
"""

import argparse

import torch

import diffsim as ds
import diffsim.torch as dt

MASSES = 5
GOAL = (0.5, 0.4)


def build(steps):
    """The rope simulation as a torch function: forces (steps, 2) -> the
    masses' final positions (MASSES, 2)."""
    n = MASSES
    act = ds.Vector.field(2, ds.f32, steps, needs_grad=True)
    x = ds.Vector.field(2, ds.f32, (steps, n), needs_grad=True)
    v = ds.Vector.field(2, ds.f32, (steps, n), needs_grad=True)
    final = ds.Vector.field(2, ds.f32, n, needs_grad=True)

    @ds.kernel
    def start():
        for i in range(n):
            x[0, i] = ds.Vector([0.2 * i, 0.0])
            v[0, i] = ds.Vector([0.0, 0.0])

    @ds.kernel
    def step(t: ds.i32):
        for i in range(n):
            f = ds.Vector([0.0, -2.0])
            if i > 0:
                d = x[t - 1, i - 1] - x[t - 1, i]
                length = d.norm() + 1e-6
                f = f + d * (100.0 * (length - 0.2) / length)
            if i < n - 1:
                d = x[t - 1, i + 1] - x[t - 1, i]
                length = d.norm() + 1e-6
                f = f + d * (100.0 * (length - 0.2) / length)
            else:
                f = f + act[t]
            nv = (v[t - 1, i] + f * 0.02) * 0.98
            if i == 0:
                nv = ds.Vector([0.0, 0.0])  # pinned
            v[t, i] = nv
            x[t, i] = x[t - 1, i] + nv * 0.02

    @ds.kernel
    def finish():
        for i in range(n):
            final[i] = x[steps - 1, i]

    def forward():
        start()
        for t in range(1, steps):
            step(t)
        finish()

    return dt.function(forward, inputs=[act], outputs=[final])


class Controller(torch.nn.Module):
    def __init__(self, steps, hidden=32):
        super().__init__()
        self.steps = steps
        self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, steps * 2))

    def forward(self, goal):
        return 5.0 * self.net(goal).reshape(self.steps, 2)


def loss_of(controller, simulate, goal):
    forces = controller(goal)
    final = simulate(forces)  # DiffSim, differentiable by torch
    return ((final[-1] - goal) ** 2).sum() + 1e-4 * (forces ** 2).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    opts = parser.parse_args()
    ds.init(arch=ds.cpu, num_threads=opts.threads)
    torch.manual_seed(0)
    simulate = build(opts.steps)
    controller = Controller(opts.steps)
    goal = torch.tensor(GOAL)
    optimizer = torch.optim.Adam(controller.parameters(), lr=0.01)
    for it in range(opts.iters):
        optimizer.zero_grad()
        loss = loss_of(controller, simulate, goal)
        loss.backward()  # torch -> DiffSim's backward -> torch
        optimizer.step()
        print(f"iter {it} loss {loss.item():.6e}")
    with torch.no_grad():
        print(f"final loss: {loss_of(controller, simulate, goal).item():.6e}")


if __name__ == "__main__":
    main()
