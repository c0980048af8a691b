"""Exceptions of kernel code: each names the Python file, line and column."""


class KernelError(ValueError):
    """A kernel (or a ``@ds.func``) uses Python that DiffSim cannot compile,
    or its code is invalid (a wrong number of field indices, ...). The
    message starts with ``FILE:LINE:COL: error:`` of the kernel's source."""

    def __init__(self, message, filename=None, lineno=None, col=None, kernel=None):
        self.filename, self.lineno, self.col, self.kernel = filename, lineno, col, kernel
        self.detail = message
        where = f"{filename}:{lineno}:{col}: " if filename else ""
        what = f"kernel {kernel}: " if kernel else ""
        super().__init__(f"{where}error: {what}{message}")


class KernelTypeError(KernelError, TypeError):
    """Kernel code mixes types it cannot (a float where an index goes, ...)."""


class KernelSyntaxError(KernelError):
    """Kernel code uses Python syntax outside the kernel language."""
