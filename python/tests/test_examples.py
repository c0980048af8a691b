"""The Python examples against the Rust frontend's programs."""

import pathlib
import subprocess
import sys

import numpy as np

import diffsim as ds

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python" / "examples"))
import mass_spring_simple as msp  # noqa: E402


def test_mass_spring_kernels_match_the_hand_written_module():
    """Python's kernels and examples/kernels/mass_spring_simple.mlir (the
    program written directly in the ds dialect) give the same loss and
    gradient, launch for launch."""
    sim = msp.build()
    ref = ds.load_module((ROOT / "examples" / "kernels" / "mass_spring_simple.mlir").read_text(), "mass_spring_simple.mlir")
    steps = msp.STEPS
    lengths = np.array([0.1, 0.1, 0.1 * np.sqrt(2)], np.float32)
    x0 = np.zeros((steps, 3, 2), np.float32)
    x0[0] = msp.INITIAL_X
    results = []
    for fields, kernels in ((sim, sim), (ref.fields, ref.kernels)):
        fields["spring_a"].from_numpy(np.array([a for a, _ in msp.SPRINGS], np.int32))
        fields["spring_b"].from_numpy(np.array([b for _, b in msp.SPRINGS], np.int32))
        fields["spring_length"].from_numpy(lengths)
        for name in ("v", "force", "loss"):
            fields[name].fill(0)
        fields["x"].from_numpy(x0)
        with ds.Tape(fields["loss"], keep_state=False):
            for t in range(1, steps):
                kernels["apply_spring_force"](t)
                kernels["time_integrate"](t)
            kernels["compute_loss"](steps - 1)
        results.append((fields["loss"].to_numpy(), fields["spring_length"].grad.to_numpy(), fields["x"].to_numpy()))
    (l1, g1, x1), (l2, g2, x2) = results
    np.testing.assert_allclose(x1, x2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-4)
    assert np.all(g1 != 0)


def test_mass_spring_script_optimizes():
    out = subprocess.run([sys.executable, str(ROOT / "python" / "examples" / "mass_spring_simple.py"), "--iters", "25"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    losses = [float(line.split()[3]) for line in out.splitlines() if line.startswith("iter ")]
    assert len(losses) == 25
    assert all(b < a for a, b in zip(losses, losses[1:]))  # gradient descent makes progress every iteration
    assert losses[-1] < losses[0] / 100
    final = float(next(line for line in out.splitlines() if line.startswith("final loss")).split()[-1])
    assert final < losses[-1]
