"""Kernel backends: name -> kernel module, and the one-time resolution of "auto".

Every backend module exposes the same kernel names (``fastnn.kernels.KERNELS``).
Importing this module imports neither numba nor the compiled extensions: a backend is
imported the first time it is asked for.
"""

import importlib
import importlib.util

BACKENDS = {
    "numpy": "fastnn.kernels.reference",
    "numba": "fastnn.kernels.numba",
    "cython": "fastnn.kernels.cython",
}

# "auto" takes the first available of these. Cython first: no JIT compilation on first
# use and the lowest call overhead; Numba next; the NumPy reference always works.
AUTO_ORDER = ("cython", "numba", "numpy")

_auto = None  # resolved once per process, so "auto" never changes between calls


def _installed(name):
    """Whether a backend can be imported here, checked without importing it."""
    if name == "numpy":
        return True
    if name == "numba":
        return importlib.util.find_spec("numba") is not None
    try:
        return importlib.util.find_spec("fastnn.kernels.cython.loss") is not None
    except ImportError:
        return False


def available_backends():
    """Names of the kernel backends usable on this machine, in the order "auto" tries them.

    Checked without importing them: "numpy" (the reference) always, "numba" when numba is
    installed, "cython" when the compiled extensions were built.

    Parameters
    ----------
    None

    Returns
    -------
    list of str
        A subset of ``["cython", "numba", "numpy"]``; ``backend="auto"`` takes the first.

    Examples
    --------
    >>> from fastnn import available_backends
    >>> "numpy" in available_backends()
    True
    """
    return [name for name in AUTO_ORDER if _installed(name)]


def resolve(backend=None):
    """The concrete backend name for ``backend`` (None or "auto" -> the fastest available).

    An explicitly requested backend that is unknown or not available raises ValueError.
    """
    global _auto
    if backend is None or backend == "auto":
        if _auto is None:
            _auto = available_backends()[0]
        return _auto
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; expected one of "
            f"{['auto', *BACKENDS]}"
        )
    if not _installed(backend):
        raise ValueError(
            f"backend {backend!r} is not available here; available: {available_backends()}"
        )
    return backend


def get_kernels(backend=None):
    """The kernel module of ``backend`` (see :func:`resolve`)."""
    return importlib.import_module(BACKENDS[resolve(backend)])
