"""Accuracy of the compiled backends' tanh, logistic and exp over the whole float64 and
float32 ranges, through the public kernels the networks use: ``activation(x, TANH or
LOGISTIC, 0.0, out)``, and for exp (also under softmax, the Poisson loss and the
log-losses) the Poisson loss's gradient at y_true = 0, exp(raw) exactly. The math is
kernels/cython/_vmath.pxd and kernels/numba/_vmath.py (branch-free, so that the loops
vectorize); the two give the same bits, which is tested too.

An error is measured in ulps of the value it is measured against: 2**(e - p) for a value
in [2**e, 2**(e + 1)) (p the dtype's mantissa bits), the smallest subnormal below the
normal range. Against
- the exact value: long double for float64 (where it is the 80-bit x87 type, else
  skipped); for float32 the float64 value (its error, about 2**-52, is 2**-29 float32 ulp);
- NumPy: the reference kernel, np.tanh and the logistic through np.exp in float64 (stored
  in the array type for float32).
The bounds are the measured maxima (float64: this sweep and 4e7 more random draws where
the errors peak; float32: all 2**32 values, the sweep test_float32_error_bounds_dense runs
with ``FASTNN_VMATH_STRIDE=1``), repeated in the docstrings of the _vmath modules.
Non-finite results (NaN, +-inf) and the sign of zero must equal NumPy's exactly.
"""

import os

import numpy as np
import pytest

from conftest import COMPILED, COMPILED_NAMES
from fastnn import available_backends
from fastnn._backends import get_kernels
from fastnn.kernels import LOGISTIC, TANH
from fastnn.kernels import reference as reference_kernels

CODES = {"tanh": TANH, "logistic": LOGISTIC}
FUNCTIONS = [*CODES, "exp"]

# (function, dtype) -> (max ulp against the exact value, max ulp against NumPy), measured
BOUNDS = {
    ("tanh", "float64"): (1.34, 2.0),
    ("logistic", "float64"): (2.46, 2.0),
    ("tanh", "float32"): (0.5, 0.0),  # the reference's bits, on all 2**32 inputs
    ("logistic", "float32"): (0.5, 1.0),
    ("exp", "float64"): (1.04, 1.0),
    # exp float32 from NumPy: 0 over every 61st value; 1 allows a double rounding
    ("exp", "float32"): (0.5, 1.0),
}
ROUNDING32 = 1e-7  # float32 bounds of 0.5: correctly rounded, up to the float64 error

EXTENDED = np.finfo(np.longdouble).nmant >= 63


@pytest.fixture(scope="module", params=COMPILED)
def compiled(request):
    """The kernel module of a compiled backend (skipped where it is not available)."""
    return get_kernels(request.param)


def _jit_disabled():
    """NUMBA_DISABLE_JIT=1: the numba kernels run as Python, too slow for the sweeps."""
    if "numba" not in available_backends():
        return False
    import numba

    return bool(numba.config.DISABLE_JIT)


@pytest.fixture
def swept(compiled):
    """``compiled``, skipped for sweeps where it runs as Python (NUMBA_DISABLE_JIT=1)."""
    if compiled.__name__.endswith(".numba") and _jit_disabled():
        pytest.skip("NUMBA_DISABLE_JIT=1: the numba kernels run as Python")
    return compiled


def _apply(kernels, x, name):
    """activation(x) for a 1-D x, as a (1, n) row (the Cython kernel takes 2-D); exp(x)
    as the Poisson loss's gradient exp(x) - 0, weight 1, a column."""
    out = np.empty_like(x)
    if name == "exp":
        column = x.reshape(-1, 1)
        kernels.poisson_loss_gradient(np.zeros_like(column), column, np.ones_like(x),
                                      np.empty_like(x), out.reshape(-1, 1))
    else:
        kernels.activation(x.reshape(1, -1), CODES[name], 0.0, out.reshape(1, -1))
    return out


def _ulp(v, dtype):
    """The ulp of the values v (any float type) in ``dtype``, as v's type."""
    info = np.finfo(dtype)
    _, e = np.frexp(np.abs(v))  # |v| = m 2**e, m in [0.5, 1)
    return np.ldexp(np.ones_like(v), np.maximum(e - 1, info.minexp) - info.nmant)


def _max_ulp_error(y, expected, dtype):
    """max |y - expected| in ulps of expected (rounded to dtype: where that is not
    finite, y must equal it exactly: +-inf, or NaN where expected is NaN)."""
    expected = np.asarray(expected)
    y = y.astype(expected.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = expected.astype(dtype)
    finite = np.isfinite(rounded)
    same = (y[~finite] == rounded[~finite]) | (np.isnan(y[~finite]) & np.isnan(rounded[~finite]))
    assert same.all(), f"non-finite results differ at {np.flatnonzero(~finite)[~same][:5]}"
    err = np.abs(y[finite] - expected[finite]) / _ulp(expected[finite], dtype)
    return float(err.max())


def _numpy(x, name):
    """NumPy's value: the reference kernel (float64 math, stored in x's dtype)."""
    with np.errstate(over="ignore", invalid="ignore"):  # the references' exp(+-large)
        return _apply(reference_kernels, x, name)


def _exact(x, name):
    """tanh / logistic of x in long double (the logistic as 1/(1+e), e/(1+e), e = exp(-|x|))."""
    xl = x.astype(np.longdouble)
    if name == "tanh":
        return np.tanh(xl)
    if name == "exp":
        return np.exp(xl)
    e = np.exp(-np.abs(xl))
    return np.where(xl >= 0, 1 / (1 + e), e / (1 + e))


# --------------------------------------------------------------------------- float64


def _sweep64():
    """Magnitudes log-spaced from the smallest subnormal to the largest double, the
    thresholds (tanh's rational/exp switch at 0.625, saturation at 19.06; the logistic's
    at 36.7 and its subnormal results from -708.4, 0 below -745.13; exp's clamp at 746)
    and their neighbours, dense uniform draws where the functions bend; both signs,
    zeros, +-inf, NaN."""
    rng = np.random.default_rng(11)
    spaced = np.exp2(np.linspace(-1074.0, 1023.999, 500_000))
    edges = np.array([5e-324, 1e-310, 2.2250738585072014e-308, 1e-8, 0.625, 19.06, 20.0,
                      22.0, 36.7, 708.4, 709.78, 745.13, 746.0, 1e300])
    edges = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, 0),
                            [np.finfo(np.float64).max]])
    draws = [rng.uniform(0, top, 500_000) for top in (1.0, 3.0, 25.0, 750.0)]
    magnitudes = np.concatenate([spaced, edges, *draws, [0.0, np.inf]])
    return np.concatenate([magnitudes, -magnitudes, [np.nan, -np.nan]])


@pytest.fixture(scope="module")
def sweep64():
    x = _sweep64()
    with np.errstate(over="ignore", under="ignore"):  # exp(+-large) in the references
        return x, {name: (_exact(x, name), _numpy(x, name)) for name in FUNCTIONS}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float64_error_bounds(swept, sweep64, name):
    x, expected = sweep64
    exact, numpy_value = expected[name]
    y = _apply(swept, x, name)
    against_exact, against_numpy = BOUNDS[name, "float64"]
    assert _max_ulp_error(y, numpy_value, np.float64) <= against_numpy
    if not EXTENDED:
        pytest.skip("long double is not extended precision here: no exact reference")
    assert _max_ulp_error(y, exact, np.float64) <= against_exact


# --------------------------------------------------------------------------- float32


def _float32_values(start, stride, count):
    """float32 values from every ``stride``-th bit pattern, ``count`` of them from
    pattern ``start`` on (all patterns: NaNs, infinities, subnormals, both zeros)."""
    bits = start + stride * np.arange(count, dtype=np.uint64)
    return (bits % 2**32).astype(np.uint32).view(np.float32)


def _check_float32(kernels, x, name):
    with np.errstate(invalid="ignore"):  # signalling NaN patterns, quieted by the casts
        x64 = x.astype(np.float64)
        exact = _numpy(x64, name)  # float64: 2**-29 float32 ulp from exact
        numpy_value = _numpy(x, name)
    y = _apply(kernels, x, name)
    against_exact, against_numpy = BOUNDS[name, "float32"]
    assert _max_ulp_error(y, exact, np.float32) <= against_exact + ROUNDING32
    assert _max_ulp_error(y, numpy_value, np.float32) <= against_numpy


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float32_error_bounds(swept, name):
    """Every 509th float32 (8.4 million values, every exponent and sign)."""
    _check_float32(swept, _float32_values(0, 509, 2**32 // 509 + 1), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCTIONS)
def test_float32_error_bounds_dense(swept, name):
    """Every FASTNN_VMATH_STRIDE-th float32 (default 61: 70 million values, about 10 s
    per function and backend; 1: all 2**32, as measured for the bounds)."""
    stride = int(os.environ.get("FASTNN_VMATH_STRIDE", "61"))
    chunk = 2**24
    total = -(-2**32 // stride)
    for first in range(0, total, chunk):
        _check_float32(swept, _float32_values(first * stride, stride,
                                                min(chunk, total - first)), name)


# --------------------------------------------------------------------------- special values

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, -1e-300, 1e-8,
           -1e-8, 19.1, -19.1, 40.0, -40.0, 710.0, -710.0, 746.0, -746.0, 1e300, -1e300]


# exp: where its result is exact (1 near 0, inf, 0) or not finite
SPECIAL_EXP = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, -1e-300,
               710.0, -746.0, 746.0, -1e4, 1e300, -1e300]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_values_as_numpy(compiled, name, dtype):
    """NaN, +-inf, +-0 (with the sign of tanh's zero), subnormals and saturated values:
    the same bits as NumPy (the reference), the activations also in place (out is x)."""
    with np.errstate(over="ignore"):  # +-1e300 are +-inf in float32
        x = np.array(SPECIAL_EXP if name == "exp" else SPECIAL, dtype)
    expected = _numpy(x, name)
    y = _apply(compiled, x, name)
    np.testing.assert_array_equal(y, expected)  # NaN where NumPy has NaN
    np.testing.assert_array_equal(np.signbit(y), np.signbit(expected))
    if name in CODES:
        in_place = x.copy()
        compiled.activation(in_place.reshape(1, -1), CODES[name], 0.0,
                            in_place.reshape(1, -1))
        np.testing.assert_array_equal(in_place.view(np.uint8), y.view(np.uint8))


@pytest.mark.parametrize("name", CODES)
def test_saturation_as_numpy(swept, name):
    """Where NumPy's float64 result has saturated (tanh +-1 from |x| = 19.07; logistic 1
    from x = 36.74, 0 from x = -745.14) the kernels' result is exactly the same."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-800, 800, 100_000), rng.uniform(-40, 40, 100_000)])
    expected = _numpy(x, name)
    saturated = np.isin(expected, [-1.0, 0.0, 1.0])
    saturated &= np.abs(x) > (19.07 if name == "tanh" else 36.74)
    np.testing.assert_array_equal(_apply(swept, x, name)[saturated], expected[saturated])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_backends_agree_bitwise(name):
    """Cython and Numba run the same operations in the same order: the same bits."""
    if _jit_disabled():
        pytest.skip("NUMBA_DISABLE_JIT=1: the numba kernels run as Python")
    missing = sorted(set(COMPILED_NAMES) - set(available_backends()))
    if missing:
        pytest.skip(f"backends {missing} not available")
    backends = [get_kernels(name) for name in COMPILED_NAMES]
    x = _sweep64()
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    y32 = [_apply(k, x32, name) for k in backends]
    y64 = [_apply(k, x, name) for k in backends]
    np.testing.assert_array_equal(y64[0].view(np.int64), y64[1].view(np.int64))
    np.testing.assert_array_equal(y32[0].view(np.int32), y32[1].view(np.int32))
