"""Kernel backends: name -> kernel module, and the one-time resolution of "auto".

Every backend module exposes the same kernel names (``fastnn.kernels.KERNELS``).
Importing this module imports neither numba nor the compiled extensions: a backend is
imported the first time it is asked for (by ``available_backends``, ``resolve`` or
``get_kernels``). ``check_kernels`` (run by ``import fastnn``) finds, without importing
it, the ``fastnn.kernels`` package that belongs to this ``fastnn``.
"""

import importlib
import importlib.util
from pathlib import Path

BACKENDS = {
    "numpy": "fastnn.kernels.reference",
    "numba": "fastnn.kernels.numba",
    "cython": "fastnn.kernels.cython",
}

# "auto" takes the first available of these. Cython first: no JIT compilation on first
# use and the lowest call overhead; Numba next; the NumPy reference always works.
AUTO_ORDER = ("cython", "numba", "numpy")

_auto = None  # resolved once per process, so "auto" never changes between calls
_problems = {}  # backend name -> None (imports) or why it does not, checked once each


class KernelsNotFound(ImportError):
    """``fastnn.kernels`` is missing, or belongs to another copy of fastnn."""


def check_kernels(package_dir):
    """Raise KernelsNotFound unless ``fastnn.kernels`` is the compiled layer of the fastnn
    in ``package_dir``: ``package_dir/kernels`` (a wheel) or ``package_dir/../kernels``
    (an editable install of that checkout).

    A source checkout has ``kernels/`` next to ``fastnn/``; setuptools maps it to
    ``fastnn.kernels`` only when installing. Run from the checkout without installing it,
    ``fastnn.kernels`` is either missing or, when another checkout is installed in
    editable mode, that checkout's: both are caught here, before anything runs.
    """
    package_dir = Path(package_dir).resolve()
    root = package_dir.parent
    fix = (f"Run `pip install -e .` in {root} (it builds the compiled kernels and maps "
           f"kernels/ to fastnn.kernels), or run Python from another folder to use the "
           f"installed fastnn.")
    spec = importlib.util.find_spec("fastnn.kernels")
    is_checkout = (root / "pyproject.toml").is_file() and (root / "kernels" / "__init__.py").is_file()
    if spec is None or spec.origin is None:
        if is_checkout:
            raise KernelsNotFound(
                f"fastnn was imported from the source checkout {root}, which is not "
                f"installed: its kernels/ folder becomes fastnn.kernels only when "
                f"installed. {fix}")
        raise KernelsNotFound(
            f"fastnn.kernels is missing from {package_dir}: an incomplete installation. "
            f"Reinstall fastnn (pip install --force-reinstall fastnn).")
    kernels_dir = Path(spec.origin).resolve().parent
    if kernels_dir not in (package_dir / "kernels", root / "kernels"):
        raise KernelsNotFound(
            f"fastnn was imported from {package_dir}, but fastnn.kernels resolves to "
            f"{kernels_dir}, which belongs to another copy of fastnn (the one installed, "
            f"in {kernels_dir.parent}): this fastnn would run that copy's kernels. {fix}")


def _problem(name):
    """None if backend ``name`` imports here, else why not (checked once per process)."""
    if name not in _problems:
        try:
            importlib.import_module(BACKENDS[name])
        except Exception as exc:  # ImportError, or e.g. numba refusing this numpy version
            _problems[name] = f"cannot import {BACKENDS[name]}: {type(exc).__name__}: {exc}"
        else:
            _problems[name] = None
    return _problems[name]


def _installed(name):
    """Whether backend ``name`` works here: its kernel module imports (nothing compiles)."""
    return _problem(name) is None


def available_backends():
    """Names of the kernel backends usable on this machine, in the order "auto" tries them.

    A backend is listed when its kernel module imports: "numpy" (the reference) always,
    "numba" when numba is installed and imports with this numpy, "cython" when the
    compiled extensions were built for this Python and numpy. Checking imports them (once
    per process; numba takes about half a second) and compiles nothing.

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

    "auto" imports the backends in ``AUTO_ORDER`` only until one works (numba is not
    imported when the Cython kernels are there). An explicitly requested backend that is
    unknown or not available raises ValueError saying why.
    """
    global _auto
    if backend is None or backend == "auto":
        if _auto is None:
            _auto = next(name for name in AUTO_ORDER if _installed(name))
        return _auto
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; expected one of "
            f"{['auto', *BACKENDS]}"
        )
    if not _installed(backend):
        reason = _problems.get(backend)
        raise ValueError(
            f"backend {backend!r} is not available here"
            + (f" ({reason})" if reason else "")
            + f"; available: {available_backends()}"
        )
    return backend


def get_kernels(backend=None):
    """The kernel module of ``backend`` (see :func:`resolve`)."""
    return importlib.import_module(BACKENDS[resolve(backend)])
