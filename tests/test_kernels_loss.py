"""Loss kernels: every backend against the reference, in-place outputs, read-only and empty
inputs, gradients against 4th-order central differences, hand-computed values, properties.

Every loss kernel has the form ``f(y_true, raw, sample_weight, [param,] loss_out,
gradient_out) -> float`` (see kernels/reference.py).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PROPERTY = settings(max_examples=60, deadline=None)


def _eps(dtype):
    return float(np.finfo(dtype).eps)


# Input generators: (rng, n, k) -> (y_true, raw) as float64 arrays of shape (n, k).


def _regression(rng, n, k):
    return rng.normal(size=(n, k)), rng.normal(scale=2.0, size=(n, k))


def _poisson(rng, n, k):
    return rng.poisson(2.0, size=(n, k)).astype(float), rng.normal(size=(n, k))


def _binary(rng, n, k):
    y = rng.integers(0, 2, size=(n, k)).astype(float)
    y[0] = 0.3  # a soft label
    return y, rng.normal(scale=4.0, size=(n, k))


def _proba(rng, n, k):
    y, _ = _binary(rng, n, k)
    p = rng.uniform(0.0, 1.0, size=(n, k))
    p.flat[:2] = [0.0, 1.0]  # exercise the clipping
    return y, p


def _softmax(rng, n, k):
    y = np.eye(k)[rng.integers(0, k, size=n)]
    if n > 1:
        y[1] = rng.dirichlet(np.ones(k))  # soft target
    if n > 2:
        y[2] *= 2.0  # targets not summing to one: gradient p * sum(y) - y
    return y, rng.normal(scale=3.0, size=(n, k))


LOSSES = {
    "half_squared_error_loss_gradient": _regression,
    "absolute_error_loss_gradient": _regression,
    "huber_loss_gradient": _regression,  # + delta
    "quantile_loss_gradient": _regression,  # + quantile
    "poisson_loss_gradient": _poisson,
    "binary_log_loss_gradient": _binary,  # + eps
    "binary_log_loss_proba_gradient": _proba,  # + eps
    "softmax_cross_entropy_loss_gradient": _softmax,  # + eps
}

# (kernel, scalar parameter value): eps = "finfo" means np.finfo(dtype).eps
CASES = [
    ("half_squared_error_loss_gradient", None),
    ("absolute_error_loss_gradient", None),
    ("huber_loss_gradient", 0.5),
    ("huber_loss_gradient", 2.0),
    ("quantile_loss_gradient", 0.5),
    ("quantile_loss_gradient", 0.1),
    ("quantile_loss_gradient", 0.9),
    ("poisson_loss_gradient", None),
    ("binary_log_loss_gradient", "finfo"),
    ("binary_log_loss_gradient", 0.0),
    ("binary_log_loss_proba_gradient", "finfo"),
    ("binary_log_loss_proba_gradient", 1e-3),
    ("softmax_cross_entropy_loss_gradient", "finfo"),
    ("softmax_cross_entropy_loss_gradient", 0.0),
]
CASE_IDS = [f"{name.removesuffix('_loss_gradient')}-{param}" for name, param in CASES]


def _args(param, dtype):
    if param is None:
        return ()
    return (_eps(dtype) if param == "finfo" else float(param),)


def _call(module, name, y, raw, w, args, loss_out, gradient_out):
    return getattr(module, name)(y, raw, w, *args, loss_out, gradient_out)


def _weights(rng, n):
    w = rng.uniform(0.5, 2.0, size=n)
    if n > 3:
        w[3] = 0.0
    return w


@pytest.mark.parametrize("readonly_inputs", [False, True], ids=["writable", "readonly"])
@pytest.mark.parametrize("shape", [(7, 3), (5, 1)], ids=["7x3", "5x1"])
@pytest.mark.parametrize("name,param", CASES, ids=CASE_IDS)
def test_loss_matches_reference(kernels, reference, dtype, tol, rng, readonly, name, param, shape, readonly_inputs):
    n, k = shape
    y, raw = LOSSES[name](rng, n, k)
    y, raw, w = (a.astype(dtype) for a in (y, raw, _weights(rng, n)))
    args = _args(param, dtype)

    loss_ref = np.empty(n, dtype)
    grad_ref = np.empty((n, k), dtype)
    total_ref = _call(reference, name, y, raw, w, args, loss_ref, grad_ref)

    if readonly_inputs:
        y, raw, w = readonly(y, raw, w)
    inputs_before = [a.copy() for a in (y, raw, w)]
    # the outputs are views into NaN-filled buffers one sentinel element wider on each
    # side: the kernel must write every element of the very memory passed, and nothing
    # beyond it (a kernel writing into a converted copy leaves the NaNs in place)
    loss_buffer = np.full(n + 2, np.nan, dtype)
    gradient_buffer = np.full(n * k + 2, np.nan, dtype)
    loss_out = loss_buffer[1:-1]
    gradient_out = gradient_buffer[1:-1].reshape(n, k)
    total = _call(kernels, name, y, raw, w, args, loss_out, gradient_out)

    np.testing.assert_allclose(loss_buffer[1:-1], loss_ref, **tol)
    np.testing.assert_allclose(gradient_buffer[1:-1].reshape(n, k), grad_ref, **tol)
    for buffer in (loss_buffer, gradient_buffer):
        assert np.isnan(buffer[[0, -1]]).all(), "a kernel wrote outside its output"
    # the return value: sum_i w_i loss_out_i, accumulated and returned in float64
    assert isinstance(total, float), type(total)
    np.testing.assert_allclose(total, total_ref, **tol)
    np.testing.assert_allclose(total, np.dot(w.astype(np.float64), loss_out.astype(np.float64)), **tol)
    # inputs untouched
    for before, after in zip(inputs_before, (y, raw, w)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("name,param", CASES, ids=CASE_IDS)
def test_loss_zero_rows(kernels, dtype, name, param):
    k = 3
    y = np.empty((0, k), dtype)
    raw = np.empty((0, k), dtype)
    w = np.empty(0, dtype)
    loss_out = np.empty(0, dtype)
    gradient_out = np.empty((0, k), dtype)
    total = _call(kernels, name, y, raw, w, _args(param, dtype), loss_out, gradient_out)
    assert total == 0.0 and isinstance(total, float)


def test_loss_writes_into_views_of_a_larger_buffer(kernels, rng):
    """gradient_out may be a view into a flat buffer (as the engine passes): it is filled
    through the view, the rest of the buffer is untouched."""
    n, k = 6, 2
    y, raw = _regression(rng, n, k)
    buf = np.full(n * k + 4, -7.0)
    gradient_out = buf[2 : 2 + n * k].reshape(n, k)
    assert np.shares_memory(gradient_out, buf)
    loss_out = np.full(n, np.nan)
    kernels.half_squared_error_loss_gradient(y, raw, np.ones(n), loss_out, gradient_out)
    np.testing.assert_allclose(buf[2 : 2 + n * k], (raw - y).ravel(), rtol=1e-15)
    np.testing.assert_array_equal(buf[[0, 1, -2, -1]], -7.0)


def test_loss_sum_accumulated_in_float64(kernels):
    """float32 inputs: the returned sum is accumulated in float64 (a float32 running sum
    over 10**5 samples would be off by ~1e-4 relative)."""
    n = 100_000
    rng = np.random.default_rng(0)
    y = np.zeros((n, 1), np.float32)
    raw = rng.uniform(0.4, 0.5, size=(n, 1)).astype(np.float32)
    w = np.ones(n, np.float32)
    loss_out = np.empty(n, np.float32)
    gradient_out = np.empty((n, 1), np.float32)
    total = kernels.half_squared_error_loss_gradient(y, raw, w, loss_out, gradient_out)
    exact = 0.5 * np.sum(raw.astype(np.float64) ** 2)
    np.testing.assert_allclose(total, exact, rtol=1e-7)


@pytest.mark.parametrize("name,param", CASES, ids=CASE_IDS)
def test_loss_propagates_nan(kernels, reference, dtype, rng, name, param):
    """A NaN in raw gives a NaN loss for that sample (and total), as in the reference: no
    clip may turn a diverged model into a finite loss."""
    n, k = 4, 3
    y, raw = LOSSES[name](rng, n, k)
    raw[1, 2] = np.nan
    y, raw, w = (a.astype(dtype) for a in (y, raw, np.ones(n)))
    args = _args(param, dtype)
    loss_ref, grad_ref = np.empty(n, dtype), np.empty((n, k), dtype)
    total_ref = _call(reference, name, y, raw, w, args, loss_ref, grad_ref)
    loss_out, gradient_out = np.empty(n, dtype), np.empty((n, k), dtype)
    total = _call(kernels, name, y, raw, w, args, loss_out, gradient_out)
    assert np.isnan(loss_ref[1]) and np.isnan(total_ref)  # the spec
    np.testing.assert_array_equal(np.isnan(loss_out), np.isnan(loss_ref))
    np.testing.assert_array_equal(np.isnan(gradient_out), np.isnan(grad_ref))
    assert np.isnan(total)


# --------------------------------------------------------------------------- gradients
#
# gradient_out[i, k] must be d (sample_weight[i] * loss_out[i]) / d raw[i, k], checked in
# float64 with 4th-order central differences of the backend's own loss_out, on inputs
# kept away from kinks (|r| = 0, |r| = delta, the clipping of p).


def _away_from(x, points, margin):
    """Move entries of x that are within ``margin`` of any of ``points`` by 2 * margin."""
    x = x.copy()
    for p in points:
        near = np.abs(x - p) < margin
        x[near] = p + np.where(x[near] >= p, 2.0, -2.0) * margin
    return x


GRAD_CASES = [
    ("half_squared_error_loss_gradient", None),
    ("absolute_error_loss_gradient", None),
    ("huber_loss_gradient", 0.7),
    ("quantile_loss_gradient", 0.25),
    ("poisson_loss_gradient", None),
    ("binary_log_loss_gradient", "finfo"),
    ("binary_log_loss_gradient", 0.0),
    ("binary_log_loss_proba_gradient", "finfo"),
    ("softmax_cross_entropy_loss_gradient", "finfo"),
    ("softmax_cross_entropy_loss_gradient", 0.0),
]


@pytest.mark.parametrize(
    "name,param", GRAD_CASES, ids=[f"{n.removesuffix('_loss_gradient')}-{p}" for n, p in GRAD_CASES]
)
def test_loss_gradient_central_differences(kernels, rng, row_central_diff, name, param):
    n, k = 8, 3
    y, raw = LOSSES[name](rng, n, k)
    w = _weights(rng, n)
    args = _args(param, np.float64)
    h = 1e-3
    margin = 0.05  # >> 2h: no kink inside the stencil
    if name in ("absolute_error_loss_gradient", "huber_loss_gradient",
                "quantile_loss_gradient"):
        r = raw - y
        kinks = [0.0] if name != "huber_loss_gradient" else [-param, param]
        raw = y + _away_from(r, kinks, margin)
    if name == "binary_log_loss_proba_gradient":
        raw = np.clip(raw, 0.05, 0.95)  # inside [eps, 1 - eps]: no clipping kink
        h = 1e-4

    def weighted_loss(raw_):
        loss_out = np.empty(n)
        _call(kernels, name, y, raw_, w, args, loss_out, np.empty((n, k)))
        return w * loss_out

    loss_out = np.empty(n)
    gradient_out = np.empty((n, k))
    _call(kernels, name, y, raw, w, args, loss_out, gradient_out)
    numeric = row_central_diff(weighted_loss, raw, h)
    np.testing.assert_allclose(gradient_out, numeric, rtol=1e-7, atol=1e-8, equal_nan=False)


# --------------------------------------------------------------------------- hand-computed values


def _single(kernels, name, y, raw, args=(), w=1.0, dtype=np.float64):
    y = np.atleast_2d(np.asarray(y, dtype))
    raw = np.atleast_2d(np.asarray(raw, dtype))
    n, k = raw.shape
    sw = np.full(n, w, dtype)
    loss_out = np.full(n, np.nan, dtype)
    gradient_out = np.full((n, k), np.nan, dtype)
    total = _call(kernels, name, y, raw, sw, args, loss_out, gradient_out)
    return total, loss_out, gradient_out


@pytest.mark.parametrize(
    "delta,r,loss,grad",
    [
        (1.0, 0.5, 0.125, 0.5),  # inside delta: r**2 / 2
        (1.0, -0.5, 0.125, -0.5),
        (1.0, 3.0, 2.5, 1.0),  # outside: delta * (|r| - delta / 2)
        (1.0, -3.0, 2.5, -1.0),
        (2.0, -3.0, 4.0, -2.0),
        (0.5, 0.5, 0.125, 0.5),  # at |r| == delta both branches agree
    ],
)
def test_huber_hand_values(kernels, dtype, tol, delta, r, loss, grad):
    y = 1.0
    total, loss_out, gradient_out = _single(
        kernels, "huber_loss_gradient", [[y]], [[y + r]], (delta,), w=2.0, dtype=dtype
    )
    np.testing.assert_allclose(loss_out, [loss], **tol)
    np.testing.assert_allclose(gradient_out, [[2.0 * grad]], **tol)
    np.testing.assert_allclose(total, 2.0 * loss, **tol)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_quantile_loss_equals_mean_pinball_loss(kernels, dtype, tol, rng, q):
    """sum_i w_i loss_i / sum_i w_i is scikit-learn's mean_pinball_loss(alpha=q), for each
    output (multioutput='raw_values') and summed over the outputs."""
    from sklearn.metrics import mean_pinball_loss

    n, k = 40, 3
    y, raw = _regression(rng, n, k)
    w = rng.uniform(0.5, 2.0, n)
    y, raw, w = (a.astype(dtype) for a in (y, raw, w))
    loss_out, gradient_out = np.empty(n, dtype), np.empty((n, k), dtype)
    total = kernels.quantile_loss_gradient(y, raw, w, q, loss_out, gradient_out)
    expected = mean_pinball_loss(y, raw, sample_weight=w, alpha=q, multioutput="raw_values")
    np.testing.assert_allclose(total / w.astype(np.float64).sum(), expected.sum(), **tol)
    r = raw.astype(np.float64) - y
    np.testing.assert_allclose(gradient_out, w[:, None] * np.where(r > 0, 1 - q, -q), **tol)


def test_quantile_half_is_half_the_absolute_error(kernels, dtype, rng):
    """q = 0.5: exactly half the absolute error's loss and gradient, 0 at r == 0 too."""
    y, raw = _regression(rng, 9, 2)
    raw[0, 0] = y[0, 0]  # a zero residual
    y, raw, w = (a.astype(dtype) for a in (y, raw, _weights(rng, 9)))
    q_loss, q_grad = np.empty(9, dtype), np.empty((9, 2), dtype)
    a_loss, a_grad = np.empty(9, dtype), np.empty((9, 2), dtype)
    q_total = kernels.quantile_loss_gradient(y, raw, w, 0.5, q_loss, q_grad)
    a_total = kernels.absolute_error_loss_gradient(y, raw, w, a_loss, a_grad)
    np.testing.assert_array_equal(q_loss, a_loss / 2)
    np.testing.assert_array_equal(q_grad, a_grad / 2)
    assert q_total == a_total / 2
    assert q_grad[0, 0] == 0.0


@pytest.mark.parametrize("q,r,loss,grad", [
    (0.9, 2.0, 0.2, 0.1),  # over-prediction costs 1 - q per unit
    (0.9, -2.0, 1.8, -0.9),  # under-prediction costs q per unit
    (0.2, -1.0, 0.2, -0.2),
    (0.2, 0.0, 0.0, 0.0),  # the subgradient 0 at r == 0
])
def test_quantile_hand_values(kernels, dtype, tol, q, r, loss, grad):
    total, loss_out, gradient_out = _single(
        kernels, "quantile_loss_gradient", [[1.0]], [[1.0 + r]], (q,), w=2.0, dtype=dtype
    )
    np.testing.assert_allclose(loss_out, [loss], **tol)
    np.testing.assert_allclose(gradient_out, [[2.0 * grad]], **tol)
    np.testing.assert_allclose(total, 2.0 * loss, **tol)


def test_absolute_error_subgradient_zero_at_zero_residual(kernels, dtype):
    total, loss_out, gradient_out = _single(
        kernels, "absolute_error_loss_gradient", [[1.5, 0.0, 2.0]], [[1.5, 0.0, -1.0]], w=3.0, dtype=dtype
    )
    np.testing.assert_array_equal(loss_out, [3.0])
    np.testing.assert_array_equal(gradient_out, [[0.0, 0.0, -3.0]])
    assert total == 9.0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_binary_log_loss_clipped_at_eps(kernels, dtype, tol, sign):
    """A logit of 1e4 with the wrong target: -log(eps) with eps = finfo(dtype).eps, not inf."""
    eps = _eps(dtype)
    target = 0.0 if sign > 0 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total, loss_out, gradient_out = _single(
            kernels, "binary_log_loss_gradient", [[target]], [[sign * 1e4]], (eps,), dtype=dtype
        )
    expected = -np.log(eps)  # 36.04 in float64, 15.94 in float32
    np.testing.assert_allclose(loss_out, [expected], **tol)
    np.testing.assert_allclose(total, expected, **tol)
    np.testing.assert_array_equal(gradient_out, [[sign]])  # p - y = +-1, unclipped


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_binary_log_loss_unclipped_with_eps_zero(kernels, dtype, sign):
    target = 0.0 if sign > 0 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total, loss_out, gradient_out = _single(
            kernels, "binary_log_loss_gradient", [[target]], [[sign * 1e4]], (0.0,), dtype=dtype
        )
    assert loss_out[0] == 1e4
    assert total == 1e4
    np.testing.assert_array_equal(gradient_out, [[sign]])


def test_binary_log_loss_confident_and_right_is_clipped_below(kernels, dtype, tol):
    """Right and confident: -log(1 - eps) (the lower clip), 0 with eps = 0."""
    eps = _eps(dtype)
    _, loss_out, _ = _single(kernels, "binary_log_loss_gradient", [[1.0]], [[1e4]], (eps,), dtype=dtype)
    np.testing.assert_allclose(loss_out, [-np.log1p(-eps)], rtol=tol["rtol"], atol=0)
    _, loss_out, _ = _single(kernels, "binary_log_loss_gradient", [[1.0]], [[1e4]], (0.0,), dtype=dtype)
    assert loss_out[0] == 0.0


def test_binary_log_loss_proba_hand_values(kernels, dtype, tol):
    eps = _eps(dtype)
    p = [[0.25, 0.0, 1.0]]
    y = [[1.0, 1.0, 1.0]]
    _, loss_out, gradient_out = _single(kernels, "binary_log_loss_proba_gradient", y, p, (eps,), dtype=dtype)
    expected = -np.log(0.25) - np.log(eps) - np.log1p(-eps)
    np.testing.assert_allclose(loss_out, [expected], **tol)
    pc = np.array([0.25, eps, 1.0 - eps])
    np.testing.assert_allclose(gradient_out, [(pc - 1.0) / (pc * (1.0 - pc))], **tol)


def test_softmax_cross_entropy_hand_value(kernels, dtype):
    total, loss_out, gradient_out = _single(
        kernels, "softmax_cross_entropy_loss_gradient", [[0.0, 1.0, 0.0]], [[0.1, 0.2, 0.3]], (_eps(dtype),), dtype=dtype
    )
    assert round(float(loss_out[0]), 4) == 1.1019
    assert round(total, 4) == 1.1019
    p = np.exp([0.1, 0.2, 0.3]) / np.exp([0.1, 0.2, 0.3]).sum()
    np.testing.assert_allclose(gradient_out, [p - [0.0, 1.0, 0.0]], rtol=1e-6)


def test_poisson_hand_value(kernels, dtype, tol):
    total, loss_out, gradient_out = _single(kernels, "poisson_loss_gradient", [[3.0]], [[np.log(2.0)]], dtype=dtype)
    np.testing.assert_allclose(loss_out, [2.0 - 3.0 * np.log(2.0)], **tol)
    np.testing.assert_allclose(gradient_out, [[-1.0]], **tol)


# --------------------------------------------------------------------------- properties
#
# hypothesis draws inputs; every backend and dtype runs the same draws.

_logit = st.floats(-1e4, 1e4, allow_nan=False)
_eps_choice = st.sampled_from(["finfo", 0.0])


def _raise_on_fp_errors():
    # underflow (exp(-1e4) -> 0) is expected and harmless; overflow/invalid/divide are bugs
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


@PROPERTY
@given(
    raw=st.lists(_logit, min_size=1, max_size=8),
    data=st.data(),
    eps=_eps_choice,
)
def test_binary_log_loss_finite_nonnegative(kernels, dtype, raw, data, eps):
    y = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(raw), max_size=len(raw)))
    raw = np.array(raw, dtype)[:, None]
    y = np.array(y, dtype)[:, None]
    args = _args(eps, dtype)
    with _raise_on_fp_errors():
        total, loss_out, gradient_out = _single(kernels, "binary_log_loss_gradient", y, raw, args, dtype=dtype)
    assert np.all(np.isfinite(loss_out)) and np.all(loss_out >= 0)
    assert np.all(np.isfinite(gradient_out)) and np.all(np.abs(gradient_out) <= 1)
    assert np.isfinite(total) and total >= 0


@PROPERTY
@given(
    rows=st.lists(st.lists(_logit, min_size=3, max_size=3), min_size=1, max_size=6),
    data=st.data(),
    eps=_eps_choice,
)
def test_softmax_cross_entropy_finite_nonnegative(kernels, dtype, rows, data, eps):
    raw = np.array(rows, dtype)
    classes = data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
    y = np.eye(3, dtype=dtype)[classes]
    with _raise_on_fp_errors():
        total, loss_out, gradient_out = _single(
            kernels, "softmax_cross_entropy_loss_gradient", y, raw, _args(eps, dtype), dtype=dtype
        )
    assert np.all(np.isfinite(loss_out)) and np.all(loss_out >= 0)
    assert np.all(np.isfinite(gradient_out)) and np.all(np.abs(gradient_out) <= 1)
    np.testing.assert_allclose(gradient_out.sum(axis=1), 0.0, atol=4 * _eps(dtype))
    assert np.isfinite(total) and total >= 0


@PROPERTY
@given(
    rows=st.lists(st.lists(st.integers(-2048, 2048), min_size=4, max_size=4), min_size=1, max_size=5),
    shift=st.integers(-1000, 1000),
    data=st.data(),
    eps=_eps_choice,
)
def test_softmax_cross_entropy_shift_invariant(kernels, dtype, tol, rows, shift, data, eps):
    """Adding a constant to a row leaves loss and gradient unchanged. Logits are multiples
    of 1/256 in [-8, 8] and shifts integers, so raw + shift is exact in float32 too."""
    raw = np.array(rows, np.float64) / 256.0
    classes = data.draw(st.lists(st.integers(0, 3), min_size=len(rows), max_size=len(rows)))
    y = np.eye(4)[classes].astype(dtype)
    args = _args(eps, dtype)
    _, loss0, grad0 = _single(kernels, "softmax_cross_entropy_loss_gradient", y, raw.astype(dtype), args, dtype=dtype)
    _, loss1, grad1 = _single(
        kernels, "softmax_cross_entropy_loss_gradient", y, (raw + shift).astype(dtype), args, dtype=dtype
    )
    # log-sum-exp of shifted logits rounds at the scale of the shift
    atol = tol["atol"] + 8 * (abs(shift) + 8) * _eps(np.float64)
    np.testing.assert_allclose(loss1, loss0, rtol=tol["rtol"], atol=atol, equal_nan=False)
    np.testing.assert_allclose(grad1, grad0, rtol=tol["rtol"], atol=atol, equal_nan=False)


_residual = st.floats(-50, 50, allow_nan=False)


@PROPERTY
@given(r=st.lists(_residual, min_size=1, max_size=8), slack=st.floats(1e-3, 10.0))
def test_huber_is_half_squared_error_for_large_delta(kernels, dtype, tol, r, slack):
    r = np.array(r, dtype)[:, None]
    y = np.zeros_like(r)
    delta = float(np.max(np.abs(r))) + slack
    th, lh, gh = _single(kernels, "huber_loss_gradient", y, r, (delta,), dtype=dtype)
    ts, ls, gs = _single(kernels, "half_squared_error_loss_gradient", y, r, dtype=dtype)
    np.testing.assert_allclose(lh, ls, **tol)
    np.testing.assert_allclose(gh, gs, **tol)
    np.testing.assert_allclose(th, ts, **tol)


@PROPERTY
@given(
    r=st.lists(st.floats(1e-3, 50.0), min_size=1, max_size=8),
    signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=8, max_size=8),
    log_delta=st.floats(-10, -4),
)
def test_huber_approaches_scaled_absolute_error_for_small_delta(kernels, dtype, tol, r, signs, log_delta):
    """loss / delta = |r| - delta / 2 -> |r| and gradient / delta = sign(r) as delta -> 0."""
    delta = 10.0**log_delta
    r = (np.array(r) * signs[: len(r)]).astype(dtype)[:, None]
    y = np.zeros_like(r)
    _, loss_out, gradient_out = _single(kernels, "huber_loss_gradient", y, r, (delta,), dtype=dtype)
    abs_r = np.abs(r[:, 0].astype(np.float64))
    ratio = loss_out.astype(np.float64) / delta
    np.testing.assert_allclose(ratio, abs_r, rtol=tol["rtol"], atol=delta)
    assert np.all(ratio <= abs_r * (1 + 2 * _eps(dtype)))  # from below (up to rounding)
    np.testing.assert_allclose(gradient_out[:, 0] / delta, np.sign(r[:, 0]), rtol=tol["rtol"])


@PROPERTY
@given(z=st.lists(_logit, min_size=1, max_size=8), data=st.data(), eps=_eps_choice)
def test_two_column_softmax_equals_sigmoid_form(kernels, dtype, tol, z, data, eps):
    """softmax_cross_entropy on columns [0, z] with one-hot y == binary_log_loss on z."""
    y = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(z), max_size=len(z))))
    z = np.array(z)
    args = _args(eps, dtype)
    tb, lb, gb = _single(kernels, "binary_log_loss_gradient", y[:, None], z[:, None], args, dtype=dtype)
    raw2 = np.stack([np.zeros_like(z), z], axis=1)
    y2 = np.stack([1.0 - y, y], axis=1)
    ts, ls, gs = _single(kernels, "softmax_cross_entropy_loss_gradient", y2, raw2, args, dtype=dtype)
    # -log p computed as logsumexp - z vs softplus: equal up to rounding at the scale of z
    atol = tol["atol"] + 4 * _eps(dtype)
    np.testing.assert_allclose(ls, lb, rtol=tol["rtol"], atol=atol, equal_nan=False)
    np.testing.assert_allclose(gs[:, 1], gb[:, 0], rtol=tol["rtol"], atol=atol, equal_nan=False)
    np.testing.assert_allclose(gs[:, 0], -gb[:, 0], rtol=tol["rtol"], atol=atol, equal_nan=False)
    np.testing.assert_allclose(ts, tb, rtol=tol["rtol"], atol=atol * len(z), equal_nan=False)
