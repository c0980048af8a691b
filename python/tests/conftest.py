import inspect

import numpy as np
import pytest

import diffsim as ds


@pytest.fixture(autouse=True)
def fresh_program():
    """Every test starts a program of its own (as a script's ds.init())."""
    ds.init(arch=ds.cpu)
    yield
    ds.reset()


def line_of(fn, marker):
    """The file line of `fn`'s source holding `marker` (a comment)."""
    lines, start = inspect.getsourcelines(fn)
    for k, text in enumerate(lines):
        if marker in text:
            return start + k
    raise AssertionError(f"no {marker!r} in {fn.__name__}")


def rng(seed=0):
    return np.random.default_rng(seed)
