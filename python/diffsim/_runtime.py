"""The program being built: its fields and kernels, and the compiled
Runtime once something runs (Taichi's materialization).

Fields and kernels join the current program (``ds.init`` starts a new one).
The first launch or host access compiles every field and every kernel
known so far into one ds module (kernels whose build fails are left out
until called, so their error shows where they are called). A kernel or
field added later recompiles the program, the fields' values carried over;
numpy views of the old program's fields would then show memory that
kernels no longer use, so that is refused while such views are alive."""

import os
import weakref

from . import _diffsim as _ds
from ._types import Arch, cpu, cuda


class State:
    def __init__(self, arch=cpu, check_bounds=True, fast_math=True, default_fp=None):
        if str(arch) not in ("cpu", "cuda"):
            raise ValueError(f"arch must be ds.cpu or ds.cuda, not {arch!r}")
        self.arch = Arch(str(arch))
        self.check_bounds = check_bounds
        self.fast_math = fast_math
        from ._types import dtype_of, f32
        self.default_fp = dtype_of(default_fp) if default_fp is not None else f32
        if not self.default_fp.is_float:
            raise TypeError(f"default_fp is ds.f32 or ds.f64, not {self.default_fp!r}")
        self.fields = []  # declaration order; an adjoint right after its field
        self.nodes = []  # dense layout nodes: (name, shape, order, (file, line))
        self.rt_nodes = 0
        self.names = set()
        self.kernels = []  # kernel instances, in registration order
        self.built = {}  # instance -> (name, text, random)
        self.failed = {}  # instance -> the exception its build raised
        self.kernel_names = set()
        self.rt = None
        self.rt_kernels = set()
        self.rt_fields = 0
        self.views = []  # weak references to the numpy views of rt's fields
        self.alive = True
        self.tape = None
        self.seed = None

    # --- names ---
    def fresh_name(self, base):
        base = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in base) or "f"
        if base[0].isdigit():
            base = "_" + base
        name, k = base, 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    def fresh_kernel_name(self, base):
        """A kernel name free together with its gradient kernel's (NAME_grad)."""
        probe = self.fresh_name(base)
        k = 1
        while probe + "_grad" in self.names:
            probe = self.fresh_name(f"{base}_{k}")
            k += 1
        self.names.add(probe + "_grad")
        return probe

    # --- registration ---
    def add_field(self, field):
        self.fields.append(field)

    def add_node(self, node):
        self.nodes.append(node)

    def add_kernel(self, instance):
        if instance not in self.kernels:
            self.kernels.append(instance)

    # --- compiling ---
    def _build(self, instance):
        if instance in self.built:
            return
        self.built[instance] = instance._build_ir(self)
        self.failed.pop(instance, None)

    def materialize(self, kernel=None):
        """The compiled Runtime holding every field and kernel so far (and `kernel`)."""
        if not self.alive:
            raise RuntimeError("this program was replaced by ds.init(): its fields and kernels are gone")
        if kernel is not None:
            self.add_kernel(kernel)
            self._build(kernel)  # its own error raises here
        for k in self.kernels:
            if k not in self.built and k not in self.failed:
                try:
                    self._build(k)
                except Exception as e:  # reported when that kernel is called
                    self.failed[k] = e
        wanted = [k for k in self.kernels if k in self.built]
        if (self.rt is not None and len(self.fields) == self.rt_fields and len(self.nodes) == self.rt_nodes
                and all(k in self.rt_kernels for k in wanted)):
            return self.rt
        self._compile(wanted)
        return self.rt

    def _compile(self, kernels):
        old = self.rt
        recording = old is not None and old.recording
        if old is not None:
            self.views = [v for v in self.views if v() is not None]
            if self.views:
                raise RuntimeError(
                    "a kernel or field was added after numpy views of this program's fields were taken: "
                    "recompiling would leave the views showing memory no kernel uses. Define kernels and fields "
                    "before taking views (x.view()), or drop the views first")
            if recording and old.tape_len() > 0:
                raise RuntimeError("a kernel or field was added while a Tape records: define them before the Tape starts")
        from ._layout import node_decl
        source = ("".join(node_decl(n) for n in self.nodes) + "".join(f._decl() for f in self.fields)
                  + "".join(self.built[k][1] for k in kernels))
        try:
            rt = _ds.Runtime.compile(source, "<diffsim python program>", str(self.arch), self.check_bounds,
                                     self.fast_math, True)
        except ValueError as e:
            if "cannot be differentiated" in str(e):
                raise ValueError(f"{e}\n(in Python: @ds.kernel(no_grad=True) marks a kernel ds.no_grad)") from None
            raise
        if old is None and self.seed is not None:
            rt.seed(int(self.seed))
        if old is not None:
            rt.copy_fields_from(old)
            if recording:
                old.tape_abort()
                rt.tape_begin(self.tape.keep_state)
        for k in self.rt_kernels:
            k._unbind()
        self.rt = rt
        self.rt_fields = len(self.fields)
        self.rt_nodes = len(self.nodes)
        self.rt_kernels = set(kernels)
        for k in kernels:
            name, _, random = self.built[k]
            k._bind(rt, name, k._param_kinds, random, not k.no_grad)

    def retire(self):
        for k in self.rt_kernels:
            k._unbind()
        self.rt_kernels = set()
        self.alive = False
        self.rt = None


_state = None


def check_arch(arch, given="arch="):
    """An error unless `arch` is ds.cpu, or ds.cuda on a machine with a CUDA
    driver (`given` names where it came from)."""
    if str(arch) not in ("cpu", "cuda"):
        raise ValueError(f"{given}{arch!s}: arch must be ds.cpu or ds.cuda, not {arch!r}")
    if str(arch) == str(cuda) and not _ds.Runtime.cuda_available():
        raise RuntimeError(f"{given}{arch!s}: no CUDA driver (libcuda.so) on this machine: running on a GPU needs an "
                           "NVIDIA GPU and its driver; use arch=ds.cpu")


def current():
    """The current program: the last ds.init()'s, else one on $DS_ARCH (cpu by default)."""
    global _state
    if _state is None:
        arch = os.environ.get("DS_ARCH", "cpu")
        check_arch(arch, "DS_ARCH=")
        _state = State(arch=arch)
    return _state


def init(arch=cpu, *, default_fp=None, check_bounds=True, fast_math=True, num_threads=None, random_seed=None, debug=None):
    """Starts a new program (Taichi's ``ti.init``): fields and kernels made
    afterwards belong to it. ``arch``: ``ds.cpu`` or ``ds.cuda`` (an error
    when this machine has no CUDA driver); ``check_bounds``: check every field
    index at run time (the default); ``fast_math``: fold ``x * 0`` and the like
    (the default, as Taichi); ``default_fp``: the type of float literals
    and of integers turned into floats (ds.f32, as Taichi, or ds.f64); ``num_threads``: threads for parallel loops
    (once per process); ``random_seed``: the seed of ``ds.random``."""
    global _state
    if debug is not None:
        check_bounds = check_bounds or bool(debug)
    check_arch(arch)
    if num_threads is not None and num_threads != _ds.num_threads():
        _ds.set_num_threads(int(num_threads))
    if _state is not None:
        _state.retire()
    _state = State(arch, check_bounds, fast_math, default_fp)
    _state.seed = random_seed
    return _state


def reset():
    """Drops the current program (``ds.init()`` makes a new one)."""
    global _state
    if _state is not None:
        _state.retire()
    _state = None


def runtime():
    """The compiled program now (compiling it if needed)."""
    return current().materialize()


def _track_view(state, array):
    state.views.append(weakref.ref(array))
    return array
