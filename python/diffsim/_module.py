"""``ds.load_module(text)``: a ds-dialect module (the output of any
frontend, or written by hand) compiled and run as ``ds-run`` runs it: its
fields by name (``m.x.to_numpy()``, ``m.fields["x"]``), its kernels called
with arguments checked against their signatures (``m.reduce()``,
``m.kernels["step"](t)``), backward through ``with ds.Tape(m.L):``."""

import numpy as np

from . import _diffsim as _ds
from ._field import HostAccess
from ._types import cpu, dtype_of


class ModuleField(HostAccess):
    def __init__(self, module, name, elem, shape, grad):
        self._module = module
        self.name = name
        self.dtype = dtype_of(np.dtype({"f32": np.float32, "f64": np.float64, "i32": np.int32}[elem]))
        self.ds_shape = tuple(shape)
        self.shape = self.ds_shape
        self.components = ()
        self.grad = None
        self._grad_name = grad

    def _rt(self):
        return self._module.runtime

    def _tape_owner(self):
        return lambda: self._module.runtime

    def __repr__(self):
        return f"<ds module field @{self.name}: {self.dtype!r} of shape {self.ds_shape}>"


class ModuleKernel:
    def __init__(self, module, name, params):
        self._module = module
        self.name = name
        self.params = params

    def __call__(self, *args):
        self._module.runtime.launch(self.name, *args)

    def grad(self, *args):
        self._module.runtime.launch(self.name + "_grad", *args)

    def __repr__(self):
        return f"<ds module kernel @{self.name}({', '.join(self.params)})>"


class Module:
    """A compiled ds module (see the module doc)."""

    def __init__(self, text, name="<module>", arch=cpu, check_bounds=True, fast_math=True, pass_pipeline=None):
        from ._runtime import check_arch
        check_arch(arch)
        if pass_pipeline:
            text = _ds.Runtime.transform(text, name, pass_pipeline)
        self.runtime = _ds.Runtime.compile(text, name, str(arch), check_bounds, fast_math, True)
        self.fields = {}
        for fname, elem, shape, grad in self.runtime.fields():
            self.fields[fname] = ModuleField(self, fname, elem, shape, grad)
        for f in self.fields.values():
            if f._grad_name is not None:
                f.grad = self.fields.get(f._grad_name)
        self.kernels = {k: ModuleKernel(self, k, self.runtime.kernel_params(k)) for k in self.runtime.kernels()}

    @property
    def ir(self):
        """The module after autodiff (gradient kernels included)."""
        return self.runtime.ir()

    def __getattr__(self, name):
        d = self.__dict__
        if "kernels" in d and name in d["kernels"]:
            return d["kernels"][name]
        if "fields" in d and name in d["fields"]:
            return d["fields"][name]
        raise AttributeError(f"the module has no kernel or field `{name}`")

    def __getitem__(self, name):
        if name in self.kernels:
            return self.kernels[name]
        return self.fields[name]

    def seed(self, s):
        self.runtime.seed(int(s))


def load_module(text, name="<module>", arch=cpu, check_bounds=True, fast_math=True, pass_pipeline=None):
    """Compiles a ds-dialect module from its text (see the module doc);
    ``pass_pipeline`` runs passes first, as ``ds-run --pass-pipeline``."""
    return Module(text, name, arch, check_bounds, fast_math, pass_pipeline)
