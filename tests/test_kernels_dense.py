"""Dense-layer kernels (activation, activation_grad_, dense_forward, dense_backward,
dense_backward_delta): every backend against the reference, in-place outputs, read-only
and empty inputs, gradients against 4th-order central differences, extreme inputs.
"""

import warnings

import numpy as np
import pytest

from fastnn.kernels import reference as reference_kernels
from fastnn.kernels import ACTIVATIONS, IDENTITY, LEAKY_RELU, LOGISTIC, RELU, SOFTMAX, TANH

ACTS = sorted(ACTIVATIONS.items(), key=lambda item: item[1])
ACT_CODES = [code for _, code in ACTS]
ACT_IDS = [name for name, _ in ACTS]
SLOPE = 0.2  # leaky_relu's negative_slope (ignored by the other activations)

# (n samples, n_in, n_out): distinct sizes catch transposed operands; the larger one
# goes past the smallest BLAS blocking.
# goes past the smallest BLAS blocking; 70 outputs pass a 64-column accumulator block.
SHAPES = [(6, 4, 3), (33, 17, 9), (1, 5, 1), (4, 3, 70)]
SHAPE_IDS = ["6x4x3", "33x17x9", "1x5x1", "4x3x70"]


def _activated(reference, z, act):
    """a = f(z) from the reference, in z's dtype."""
    a = np.empty_like(z)
    reference.activation(z, act, SLOPE, a)
    return a


def _away_from_zero(x, margin=0.05):
    """Entries of x moved at least ``margin`` away from 0 (the relu / leaky_relu kink)."""
    return np.where(np.abs(x) < margin, np.where(x >= 0, 2 * margin, -2 * margin), x)


RO = pytest.mark.parametrize("readonly_inputs", [False, True], ids=["writable", "readonly"])


# --------------------------------------------------------------------------- against the reference


@RO
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_activation_matches_reference(kernels, reference, dtype, tol, rng, readonly, act, readonly_inputs):
    x = rng.normal(scale=3.0, size=(7, 4)).astype(dtype)
    expected = _activated(reference, x, act)
    if readonly_inputs:
        x = readonly(x)
    x_before = x.copy()
    out = np.full_like(x, np.nan)
    kernels.activation(x, act, SLOPE, out)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, **tol)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_activation_in_place(kernels, reference, dtype, tol, rng, act):
    """``out`` may be ``x`` (dense_forward relies on it)."""
    x = rng.normal(scale=3.0, size=(5, 3)).astype(dtype)
    expected = _activated(reference, x, act)
    kernels.activation(x, act, SLOPE, x)
    np.testing.assert_allclose(x, expected, **tol)


@RO
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_activation_grad_matches_reference(kernels, reference, dtype, tol, rng, readonly, act, readonly_inputs):
    z = _away_from_zero(rng.normal(scale=2.0, size=(7, 4))).astype(dtype)
    a = _activated(reference, z, act)
    delta = rng.normal(size=(7, 4)).astype(dtype)
    expected = delta.copy()
    reference.activation_grad_(a, act, SLOPE, expected)
    if readonly_inputs:
        a = readonly(a)
    delta_before = delta.copy()
    returned = kernels.activation_grad_(a, act, SLOPE, delta)
    # in place: nothing returned, the passed array holds the result (identity's f' = 1
    # leaves it as it was; every other activation changes it)
    assert returned is None
    np.testing.assert_allclose(delta, expected, **tol)
    if act != IDENTITY:
        assert not np.array_equal(delta, delta_before), "delta was not updated in place"


@RO
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_dense_forward_matches_reference(kernels, reference, dtype, tol, rng, readonly, act, shape, readonly_inputs):
    n, n_in, n_out = shape
    a = rng.normal(size=(n, n_in)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    expected = np.empty((n, n_out), dtype)
    reference.dense_forward(a, W, b, act, SLOPE, expected)
    if readonly_inputs:
        a, W, b = readonly(a, W, b)
    before = [x.copy() for x in (a, W, b)]
    z_out = np.full((n, n_out), np.nan, dtype)
    kernels.dense_forward(a, W, b, act, SLOPE, z_out)
    np.testing.assert_allclose(z_out, expected, **tol)
    for x0, x in zip(before, (a, W, b)):
        np.testing.assert_array_equal(x0, x)


@RO
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_dense_backward_matches_reference(kernels, reference, dtype, tol, rng, readonly, shape, readonly_inputs):
    n, n_in, n_out = shape
    a_prev = rng.normal(size=(n, n_in)).astype(dtype)
    delta = rng.normal(size=(n, n_out)).astype(dtype)
    dW_ref = np.empty((n_in, n_out), dtype)
    db_ref = np.empty(n_out, dtype)
    reference.dense_backward(a_prev, delta, dW_ref, db_ref)
    if readonly_inputs:
        a_prev, delta = readonly(a_prev, delta)
    dW_out = np.full((n_in, n_out), np.nan, dtype)
    db_out = np.full(n_out, np.nan, dtype)
    kernels.dense_backward(a_prev, delta, dW_out, db_out)
    np.testing.assert_allclose(dW_out, dW_ref, **tol)
    np.testing.assert_allclose(db_out, db_ref, **tol)


@RO
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("act_prev", ACT_CODES, ids=ACT_IDS)
def test_dense_backward_delta_matches_reference(
    kernels, reference, dtype, tol, rng, readonly, act_prev, shape, readonly_inputs
):
    n, n_in, n_out = shape
    delta = rng.normal(size=(n, n_out)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    a_prev = _activated(reference, _away_from_zero(rng.normal(size=(n, n_in))).astype(dtype), act_prev)
    expected = np.empty((n, n_in), dtype)
    reference.dense_backward_delta(delta, W, a_prev, act_prev, SLOPE, expected)
    if readonly_inputs:
        delta, W, a_prev = readonly(delta, W, a_prev)
    out = np.full((n, n_in), np.nan, dtype)
    kernels.dense_backward_delta(delta, W, a_prev, act_prev, SLOPE, out)
    np.testing.assert_allclose(out, expected, **tol)


def test_dense_backward_writes_into_flat_buffer_views(kernels, dtype, tol, rng):
    """dW_out / db_out as views of one flat gradient buffer (the engine's layout)."""
    n, n_in, n_out = 5, 4, 3
    a_prev = rng.normal(size=(n, n_in)).astype(dtype)
    delta = rng.normal(size=(n, n_out)).astype(dtype)
    flat = np.full(2 + n_in * n_out + n_out + 2, -7.0, dtype)
    dW_out = flat[2 : 2 + n_in * n_out].reshape(n_in, n_out)
    db_out = flat[2 + n_in * n_out : 2 + n_in * n_out + n_out]
    assert np.shares_memory(dW_out, flat) and np.shares_memory(db_out, flat)
    kernels.dense_backward(a_prev, delta, dW_out, db_out)
    expected = np.concatenate([(a_prev.astype(float).T @ delta).ravel(), delta.astype(float).sum(axis=0)])
    np.testing.assert_allclose(flat[2:-2], expected, **tol)
    np.testing.assert_array_equal(flat[[0, 1, -2, -1]], -7.0)


# --------------------------------------------------------------------------- zero rows


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_zero_rows(kernels, dtype, act):
    n_in, n_out = 4, 3
    empty_in = np.empty((0, n_in), dtype)
    empty_out = np.empty((0, n_out), dtype)
    W = np.ones((n_in, n_out), dtype)
    b = np.ones(n_out, dtype)

    kernels.activation(empty_in, act, SLOPE, np.empty((0, n_in), dtype))
    kernels.activation_grad_(empty_in, act, SLOPE, np.empty((0, n_in), dtype))
    z_out = np.empty((0, n_out), dtype)
    kernels.dense_forward(empty_in, W, b, act, SLOPE, z_out)
    delta_prev = np.empty((0, n_in), dtype)
    kernels.dense_backward_delta(empty_out, W, empty_in, act, SLOPE, delta_prev)
    assert z_out.shape == (0, n_out) and delta_prev.shape == (0, n_in)


def test_dense_backward_zero_rows_gives_zero_gradients(kernels, dtype):
    """No samples: dW = a_prev.T @ delta and db = sum(delta) are zero (not left as is)."""
    dW_out = np.full((4, 3), np.nan, dtype)
    db_out = np.full(3, np.nan, dtype)
    kernels.dense_backward(np.empty((0, 4), dtype), np.empty((0, 3), dtype), dW_out, db_out)
    np.testing.assert_array_equal(dW_out, 0.0)
    np.testing.assert_array_equal(db_out, 0.0)


def test_zero_input_features(kernels, dtype):
    """n_in = 0: a @ W is an empty sum, so z = f(b) and dW is empty, db still the row sum."""
    n, n_out = 3, 2
    a = np.empty((n, 0), dtype)
    W = np.empty((0, n_out), dtype)
    b = np.array([1.0, -2.0], dtype)
    z_out = np.full((n, n_out), np.nan, dtype)
    kernels.dense_forward(a, W, b, IDENTITY, SLOPE, z_out)
    np.testing.assert_array_equal(z_out, np.broadcast_to(b, (n, n_out)))
    db_out = np.full(n_out, np.nan, dtype)
    kernels.dense_backward(a, np.ones((n, n_out), dtype), np.empty((0, n_out), dtype), db_out)
    np.testing.assert_array_equal(db_out, [n, n])


# --------------------------------------------------------------------------- extreme inputs


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_activation_propagates_nan(kernels, reference, dtype, act):
    """A NaN input gives NaN where the reference has it (that element; its whole row for
    softmax) and nowhere else: divergence must stay visible, not be clipped away."""
    x = np.array([[np.nan, 1.0, -2.0], [0.5, 1.0, -2.0]], dtype)
    expected = np.empty_like(x)
    reference.activation(x, act, SLOPE, expected)
    out = np.empty_like(x)
    kernels.activation(x, act, SLOPE, out)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    assert np.isnan(out[0, 0])


def _raise_on_fp_errors():
    # underflow (exp(-1e4) -> 0) is expected and harmless; overflow/invalid/divide are bugs
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


def test_logistic_extreme_logits_finite_without_warning(kernels, dtype):
    x = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]], dtype)
    out = np.full_like(x, np.nan)
    with warnings.catch_warnings(), _raise_on_fp_errors():
        warnings.simplefilter("error")
        kernels.activation(x, LOGISTIC, SLOPE, out)
        delta = np.ones_like(x)
        kernels.activation_grad_(out, LOGISTIC, SLOPE, delta)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.5, 1.0, 1.0]])
    np.testing.assert_array_equal(delta, [[0.0, 0.0, 0.25, 0.0, 0.0]])


@pytest.mark.parametrize("act", [TANH, SOFTMAX], ids=["tanh", "softmax"])
def test_saturating_activations_extreme_logits(kernels, dtype, act):
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype)
    out = np.full_like(x, np.nan)
    with warnings.catch_warnings(), _raise_on_fp_errors():
        warnings.simplefilter("error")
        kernels.activation(x, act, SLOPE, out)
    if act == TANH:
        np.testing.assert_array_equal(out, np.tanh(x.astype(float)))
    else:
        np.testing.assert_allclose(out, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_activation_hand_values(kernels, dtype):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]], dtype)
    out = np.empty_like(x)
    kernels.activation(x, RELU, SLOPE, out)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.0, 0.5, 2.0]])
    kernels.activation(x, LEAKY_RELU, 0.1, out)
    np.testing.assert_allclose(out, [[-0.2, -0.05, 0.0, 0.5, 2.0]], rtol=1e-6)
    kernels.activation(x, IDENTITY, SLOPE, out)
    np.testing.assert_array_equal(out, x)
    # relu / leaky_relu derivative from the output: 0 / slope where a <= 0
    a = np.array([[-0.2, 0.0, 0.5]], dtype)
    delta = np.full_like(a, 3.0)
    kernels.activation_grad_(a, LEAKY_RELU, 0.1, delta)
    np.testing.assert_allclose(delta, [[0.3, 0.3, 3.0]], rtol=1e-6)
    delta = np.full_like(a, 3.0)
    kernels.activation_grad_(np.maximum(a, 0), RELU, SLOPE, delta)
    np.testing.assert_array_equal(delta, [[0.0, 0.0, 3.0]])


# --------------------------------------------------------------------------- gradients
#
# float64, 4th-order central differences of the backend's own forward kernels, with every
# relu/leaky_relu input kept away from its kink at 0.

GRAD_TOL = dict(rtol=1e-7, atol=1e-8, equal_nan=False)
H = 1e-3


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_activation_grad_central_differences(kernels, rng, row_central_diff, act):
    n, k = 6, 4
    z = _away_from_zero(rng.normal(scale=2.0, size=(n, k)))
    delta = rng.normal(size=(n, k))

    def weighted_rows(z_):
        a_ = np.empty_like(z_)
        kernels.activation(z_, act, SLOPE, a_)
        return (delta * a_).sum(axis=1)  # d/dz sum(delta * f(z)): the VJP (softmax too)

    a = np.empty_like(z)
    kernels.activation(z, act, SLOPE, a)
    vjp = delta.copy()
    kernels.activation_grad_(a, act, SLOPE, vjp)
    np.testing.assert_allclose(vjp, row_central_diff(weighted_rows, z, H), **GRAD_TOL)


def _dense_problem(rng, act_prev, n=5, n_in=4, n_out=3):
    """z_prev, W, b, G with both relu kinks (at z_prev = 0 and at the layer's
    pre-activation f_prev(z_prev) @ W + b = 0) at least 0.05 away: the stencils move a
    pre-activation by at most 2 H |W| (f_prev is 1-Lipschitz here), far less than that."""
    for _ in range(100):
        z_prev = _away_from_zero(rng.normal(size=(n, n_in)))
        W = rng.normal(size=(n_in, n_out))
        b = rng.normal(size=n_out)
        a_prev = np.empty_like(z_prev)
        reference_kernels.activation(z_prev, act_prev, SLOPE, a_prev)
        if np.min(np.abs(a_prev @ W + b)) > 0.05:
            return z_prev, W, b, rng.normal(size=(n, n_out))
    raise AssertionError("no kink-free problem found")


def _forward(kernels, a, W, b, act):
    z = np.empty((a.shape[0], W.shape[1]))
    kernels.dense_forward(a, W, b, act, SLOPE, z)
    return z


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_dense_backward_central_differences(kernels, rng, central_diff, act):
    """dense_backward(a, activation_grad_(f(z), G)) == d sum(G * dense_forward(a, W, b)) / d (W, b)."""
    n, n_in, n_out = 5, 4, 3
    a = rng.uniform(0.1, 1.0, size=(n, n_in))
    for _ in range(100):
        W = rng.normal(size=(n_in, n_out))
        b = rng.normal(size=n_out)
        if np.min(np.abs(a @ W + b)) > 0.05:  # the output kink of relu / leaky_relu
            break
    G = rng.normal(size=(n, n_out))

    out = _forward(kernels, a, W, b, act)
    delta = G.copy()
    kernels.activation_grad_(out, act, SLOPE, delta)
    dW = np.full((n_in, n_out), np.nan)
    db = np.full(n_out, np.nan)
    kernels.dense_backward(a, delta, dW, db)

    num_W = central_diff(lambda W_: np.sum(G * _forward(kernels, a, W_, b, act)), W, H)
    num_b = central_diff(lambda b_: np.sum(G * _forward(kernels, a, W, b_, act)), b, H)
    np.testing.assert_allclose(dW, num_W, **GRAD_TOL)
    np.testing.assert_allclose(db, num_b, **GRAD_TOL)


@pytest.mark.parametrize("act_prev", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_dense_backward_delta_central_differences(kernels, rng, row_central_diff, act, act_prev):
    """dense_backward_delta == d sum(G * dense_forward(f_prev(z_prev), W, b)) / d z_prev."""
    z_prev, W, b, G = _dense_problem(rng, act_prev)

    def a_of(z_):
        a_ = np.empty_like(z_)
        kernels.activation(z_, act_prev, SLOPE, a_)
        return a_

    def rows(z_):  # row i of the output depends on row i of z_prev only
        return (G * _forward(kernels, a_of(z_), W, b, act)).sum(axis=1)

    a_prev = a_of(z_prev)
    out = _forward(kernels, a_prev, W, b, act)
    delta = G.copy()
    kernels.activation_grad_(out, act, SLOPE, delta)
    delta_prev = np.full_like(z_prev, np.nan)
    kernels.dense_backward_delta(delta, W, a_prev, act_prev, SLOPE, delta_prev)
    np.testing.assert_allclose(delta_prev, row_central_diff(rows, z_prev, H), **GRAD_TOL)
