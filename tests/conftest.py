"""Shared fixtures for the kernel tests: backends, dtypes, the tolerance table, helpers.

Every kernel test runs once per backend ("numpy" is the reference itself, a useful
self-check of the test) and, where it makes sense, once per dtype. A backend that is not
built or importable yet is skipped with a reason naming it, never silently dropped.
"""

import importlib

import numpy as np
import pytest

from fastnn import available_backends
from fastnn._backends import BACKENDS as _BACKEND_MODULES
from fastnn._backends import get_kernels
from fastnn.kernels import KERNELS

BACKEND_NAMES = tuple(_BACKEND_MODULES)  # the one list: fastnn._backends.BACKENDS
COMPILED_NAMES = tuple(name for name in BACKEND_NAMES if name != "numpy")


def backend_params(names=BACKEND_NAMES):
    """Backend names for ``pytest.mark.parametrize``, each skipping (and naming itself)
    where it is not available here. Test files import BACKENDS and COMPILED from here."""
    available = available_backends()
    return [pytest.param(name, marks=pytest.mark.skipif(
        name not in available, reason=f"backend {name!r} not available")) for name in names]


BACKENDS = backend_params()
COMPILED = backend_params(COMPILED_NAMES)  # one compiled call per epoch, GIL released
DTYPES = (np.float32, np.float64)

# The one tolerance table: a backend must match the reference to within these. Kernels
# compute in float64 and store in the array dtype, so float32 results differ from the
# reference by rounding (and by float32 BLAS accumulation in the GEMMs).
# equal_nan=False: a NaN (in both, or a NaN-filled output left unwritten) never matches.
TOLERANCE = {
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6, equal_nan=False),
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12, equal_nan=False),
}

ALL_KERNEL_NAMES = tuple(name for names in KERNELS.values() for name in names)


def pytest_configure(config):
    # registered here, not in pyproject.toml; nothing deselects it by default
    config.addinivalue_line(
        "markers",
        "slow: takes more than ~3 s (cold Numba compiles, subprocesses, clusters, process "
        "pools, long fits); the inner loop is `python -m pytest -m \"not slow\"`",
    )


def _load_backend(name):
    try:
        module = get_kernels(name)
    except (ImportError, ValueError) as exc:
        pytest.skip(f"{name} backend not built/importable: {exc}")
    if not any(hasattr(module, kernel) for kernel in ALL_KERNEL_NAMES):
        # e.g. kernels/numba/ exists as an empty namespace package before its files land
        pytest.skip(
            f"{name} backend not built/importable: {module.__name__} defines no kernels yet"
        )
    return module


@pytest.fixture(scope="session", params=BACKEND_NAMES)
def backend_name(request):
    """The name of a backend that imports here (others are skipped with the reason)."""
    _load_backend(request.param)
    return request.param


@pytest.fixture(scope="session")
def kernels(backend_name):
    """The kernel module of the backend under test."""
    return get_kernels(backend_name)


@pytest.fixture(scope="session")
def reference():
    return importlib.import_module("fastnn.kernels.reference")


@pytest.fixture(scope="session", params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(scope="session")
def tol(dtype):
    """rtol/atol of ``dtype`` from the one tolerance table."""
    return TOLERANCE[dtype]


@pytest.fixture(scope="session")
def tolerance():
    """The tolerance table itself, for tests that pick the dtype themselves."""
    return TOLERANCE


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def _central_diff(f, x, h):
    """4th-order central difference of ``f`` (array -> array) w.r.t. each element of x.

    Returns an array of shape f(x).shape + x.shape: d f(x)[..] / d x[..]. Only x's
    elements are perturbed, one at a time; use it on small arrays.
    """
    x = np.array(x, dtype=np.float64)
    f0 = np.asarray(f(x.copy()), dtype=np.float64)
    jac = np.empty(f0.shape + x.shape)
    for idx in np.ndindex(x.shape):
        values = []
        for step in (-2, -1, 1, 2):
            xs = x.copy()
            xs[idx] += step * h
            values.append(np.asarray(f(xs), dtype=np.float64))
        fm2, fm1, fp1, fp2 = values
        jac[(...,) + idx] = (fm2 - 8.0 * fm1 + 8.0 * fp1 - fp2) / (12.0 * h)
    return jac


def _row_central_diff(f_rows, x, h):
    """4th-order central difference of a row-separable function.

    ``f_rows`` maps x (n, k) to per-row values (n,) where row i depends on x[i] only, so
    a whole column can be perturbed at once: returns g (n, k), g[i, j] = d f_i / d x[i, j].
    """
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    for j in range(x.shape[1]):
        values = []
        for step in (-2, -1, 1, 2):
            xs = x.copy()
            xs[:, j] += step * h
            values.append(np.asarray(f_rows(xs), dtype=np.float64))
        fm2, fm1, fp1, fp2 = values
        grad[:, j] = (fm2 - 8.0 * fm1 + 8.0 * fp1 - fp2) / (12.0 * h)
    return grad


@pytest.fixture(scope="session")
def central_diff():
    return _central_diff


@pytest.fixture(scope="session")
def row_central_diff():
    return _row_central_diff


def _readonly(*arrays):
    """Copies of ``arrays`` with writeable=False (as joblib memmaps hand them over)."""
    out = []
    for a in arrays:
        a = np.array(a, copy=True)
        a.flags.writeable = False
        out.append(a)
    return out if len(out) != 1 else out[0]


@pytest.fixture(scope="session")
def readonly():
    return _readonly
