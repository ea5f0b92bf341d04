"""The Cython delta GEMM's two paths (kernels/cython/_dense.pxd, matmul_transposed):
out[:, c0:c1] = a @ W[c0:c1].T, as N,N on a stack copy of W's block up to TRANSPOSE_MAX
elements, as the BLAS's T,N beyond. Every shape class (1, 2, 3, odd, block-sized, around
the copy limit, k = 0, empty blocks), both dtypes, column blocks of a wider output,
read-only inputs; and the public dense_backward_delta on both sides of the limit.

Tolerance: both paths sum k products in the array type in some order (the BLAS's, with or
without FMA), so each entry is within k * eps * (|a| @ |W|.T) of the exact value (the
classic gamma_k bound, with a factor 2 of margin as eps = 2u). The exact value is computed
in long double (float64 inputs) or float64 (float32 inputs).
"""

import numpy as np
import pytest

from fastnn.kernels import IDENTITY, TANH

dense = pytest.importorskip("fastnn.kernels.cython.dense",
                            reason="the Cython kernels are not built")
from fastnn.kernels import reference  # noqa: E402

LIMIT = dense._TRANSPOSE_MAX
DTYPES = (np.float32, np.float64)
SENTINEL = -7.25  # columns outside [c0, c1) must keep it

# (n rows, m = c1 - c0 output columns, k): small and odd sizes, block-sized, and the copy
# limit m * k = LIMIT from both sides (64 x 64 and 32 x 128 are at it, 64 x 65 past it).
SHAPES = [
    (n, m, k)
    for n in (1, 2, 3, 33)
    for m in (1, 2, 3, 7, 32, 33)
    for k in (1, 2, 3, 10, 17)
] + [
    (128, 32, 64), (128, 64, 64), (128, 32, 128), (128, 33, 128), (128, 64, 65),
    (5, 1, LIMIT), (5, 1, LIMIT + 1), (5, LIMIT, 1), (5, LIMIT + 1, 1), (200, 50, 10),
]


def _exact(a, w):
    wide = np.longdouble if a.dtype == np.float64 else np.float64
    return a.astype(wide) @ w.astype(wide).T, np.abs(a).astype(wide) @ np.abs(w).astype(wide).T


def _check(out_block, a, w):
    exact, scale = _exact(a, w)
    k = a.shape[1]
    bound = k * np.finfo(a.dtype).eps * scale
    err = np.abs(out_block.astype(exact.dtype) - exact)
    assert np.all(err <= bound), f"max error / bound {np.max(err / np.where(bound > 0, bound, 1))}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n,m,k", SHAPES, ids=[f"{n}x{m}x{k}" for n, m, k in SHAPES])
def test_matches_exact_product(dtype, n, m, k):
    rng = np.random.default_rng(n * 10007 + m * 101 + k)
    a = rng.standard_normal((n, k)).astype(dtype)
    W = rng.standard_normal((m, k)).astype(dtype)
    out = np.full((n, m), np.nan, dtype)
    dense._matmul_transposed(a, W, 0, m, out)
    _check(out, a, W)
    again = np.full_like(out, np.nan)
    dense._matmul_transposed(a, W, 0, m, again)
    np.testing.assert_array_equal(again, out)  # same shapes, same path, same bits


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_in,k,c0,c1", [
    (100, 10, 0, 50), (100, 10, 50, 100), (100, 10, 37, 38), (100, 10, 0, 100),
    (64, 64, 32, 64), (256, 128, 32, 64),  # a copied block of a matrix past the limit
    (130, 64, 0, 65),  # a block past the limit: T,N on a strided output
    (9, 3, 4, 4),  # an empty block writes nothing
])
def test_column_block_of_wider_output(dtype, n_in, k, c0, c1):
    """As dense_backward_delta_cols calls it: rows c0..c1 of W, columns c0..c1 of out."""
    rng = np.random.default_rng(n_in + k + c0)
    n = 19
    a = rng.standard_normal((n, k)).astype(dtype)
    W = rng.standard_normal((n_in, k)).astype(dtype)
    a.flags.writeable = W.flags.writeable = False  # const memoryviews take read-only arrays
    out = np.full((n, n_in), SENTINEL, dtype)
    dense._matmul_transposed(a, W, c0, c1, out)
    _check(out[:, c0:c1], a, W[c0:c1])
    untouched = np.ones(n_in, bool)
    untouched[c0:c1] = False
    assert np.all(out[:, untouched] == SENTINEL)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_empty_inner_dimension_gives_zeros(dtype):
    a = np.empty((4, 0), dtype)
    W = np.empty((6, 0), dtype)
    out = np.full((4, 6), SENTINEL, dtype)
    dense._matmul_transposed(a, W, 1, 5, out)
    assert np.all(out[:, 1:5] == 0)
    assert np.all(out[:, [0, 5]] == SENTINEL)


def test_rejects_bad_columns():
    a = np.zeros((2, 3))
    W = np.zeros((4, 3))
    with pytest.raises(ValueError, match="outside"):
        dense._matmul_transposed(a, W, 3, 5, np.zeros((2, 4)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("act", [IDENTITY, TANH], ids=["identity", "tanh"])
@pytest.mark.parametrize("n,n_in,n_out", [(128, 64, 64), (128, 64, 65), (7, 3, 2), (3, 130, 40)])
def test_dense_backward_delta_both_sides_of_the_limit(dtype, act, n, n_in, n_out):
    """The public kernel (copy path up to LIMIT = n_in * n_out, T,N past it) against the
    NumPy reference, to the GEMM bound times the activation's derivative (at most 1)."""
    rng = np.random.default_rng(n_in * n_out)
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    W = rng.standard_normal((n_in, n_out)).astype(dtype)
    a_prev = np.tanh(rng.standard_normal((n, n_in))).astype(dtype)
    got = np.full((n, n_in), np.nan, dtype)
    dense.dense_backward_delta(delta, W, a_prev, act, 0.0, got)
    expected = np.full((n, n_in), np.nan, dtype)
    reference.dense_backward_delta(delta, W, a_prev, act, 0.0, expected)
    _, scale = _exact(delta, W)
    # both sides carry their GEMM's error, then one rounding each of the derivative product
    bound = 2 * n_out * np.finfo(dtype).eps * scale + 4 * np.finfo(dtype).eps * np.abs(expected)
    assert np.all(np.abs(got.astype(np.float64) - expected) <= bound)
