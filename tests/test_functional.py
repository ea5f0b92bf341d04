"""fastnn.functional: PyTorch's semantics, checked against values computed by hand, plain
NumPy formulas written here, finite differences and (when installed) torch itself."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax as sp_softmax

from conftest import BACKENDS
from fastnn import _backends, available_backends
from fastnn import functional as F



def rng_data(shape=(6, 3), seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)


# Each loss as a plain formula per element (or per sample for cross-entropy).
FORMULAS = {
    "mse_loss": lambda x, y: (x - y) ** 2,
    "l1_loss": lambda x, y: np.abs(x - y),
    "huber_loss": lambda x, y: np.where(np.abs(x - y) <= 1, 0.5 * (x - y) ** 2, np.abs(x - y) - 0.5),
    "quantile_loss": lambda x, y: np.maximum(0.5 * (y - x), -0.5 * (y - x)),  # q = 0.5
    "poisson_nll_loss": lambda x, y: np.exp(x) - np.abs(y) * x,
    # the two log-losses on logits x (binary_cross_entropy gets expit(x)), 0/1 targets y
    "binary_cross_entropy_with_logits": lambda x, y: -y * np.log(expit(x)) - (1 - y) * np.log(expit(-x)),
    "binary_cross_entropy": lambda x, y: -y * np.log(expit(x)) - (1 - y) * np.log(1 - expit(x)),
}


def call_args(name, x, y):
    """Arguments in each loss's domain: positive counts for Poisson, 0/1 labels for the
    log-losses, probabilities for binary_cross_entropy."""
    if name == "poisson_nll_loss":
        return x, np.abs(y)
    if name == "binary_cross_entropy_with_logits":
        return x, (y > 0).astype(x.dtype)
    if name == "binary_cross_entropy":
        return expit(x), (y > 0).astype(x.dtype)
    return x, y


# ----------------------------------------------------------------- values from the issue


@pytest.mark.parametrize("backend", BACKENDS)
def test_reference_values(backend):
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    assert F.l1_loss(x, y, backend=backend) == pytest.approx(2 / 3)
    assert round(F.l1_loss(x, y, backend=backend), 4) == 0.6667
    assert F.l1_loss(x, y, reduction="sum", backend=backend) == 2.0
    assert round(F.mse_loss(x, y, backend=backend), 4) == 1.3333
    ce = F.cross_entropy(np.array([[0.1, 0.2, 0.3]]), np.array([1]), backend=backend)
    assert round(ce, 4) == 1.1019
    # by hand: log(e^.1 + e^.2 + e^.3) - .2
    assert ce == pytest.approx(np.log(np.exp([0.1, 0.2, 0.3]).sum()) - 0.2, rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("q", [0.1, 0.9])
def test_quantile_loss_is_mean_pinball_loss(backend, q):
    from sklearn.metrics import mean_pinball_loss

    x, y = rng_data((20, 2), seed=3)
    value, grad = F.quantile_loss(x, y, quantile=q, return_grad=True, backend=backend)
    assert value == pytest.approx(mean_pinball_loss(y, x, alpha=q), rel=1e-12)
    np.testing.assert_allclose(grad, np.where(x > y, 1 - q, -q) / x.size, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_huber_by_hand_inside_and_outside_delta(backend):
    x = np.array([0.5, -3.0, 2.0])
    by_hand = [0.5**2 / 2, 1.5 * (3 - 0.75), 1.5 * (2 - 0.75)]  # inside, outside, outside
    got = F.huber_loss(x, np.zeros(3), delta=1.5, reduction="none", backend=backend)
    np.testing.assert_allclose(got, by_hand, rtol=1e-15)
    value, grad = F.huber_loss(x, np.zeros(3), delta=1.5, reduction="sum", return_grad=True,
                               backend=backend)
    assert value == pytest.approx(0.125 + 3.375 + 1.875, rel=1e-15)
    np.testing.assert_allclose(grad, [0.5, -1.5, 1.5])


# ----------------------------------------------------------------- formulas and reductions


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_match_formulas_for_every_reduction(name, dtype, backend):
    x, y = call_args(name, *rng_data(dtype=dtype))
    raw = x if name != "binary_cross_entropy" else rng_data(dtype=dtype)[0]
    per_element = FORMULAS[name](raw.astype(np.float64), y.astype(np.float64))
    f = getattr(F, name)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    none = f(x, y, reduction="none", backend=backend)
    assert none.dtype == dtype and none.shape == x.shape
    np.testing.assert_allclose(none, per_element, rtol=rtol, atol=rtol)
    assert f(x, y, reduction="sum", backend=backend) == pytest.approx(per_element.sum(), rel=rtol)
    assert f(x, y, backend=backend) == pytest.approx(per_element.mean(), rel=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(FORMULAS) + ["cross_entropy"])
def test_integer_sample_weight_equals_repeating_rows(name, backend):
    x, y = call_args(name, *rng_data((5, 3), seed=4))
    if name == "cross_entropy":
        y = np.array([0, 2, 1, 1, 0])
    w = np.array([1, 0, 3, 2, 1])
    f = getattr(F, name)
    for reduction in ("mean", "sum"):
        weighted = f(x, y, sample_weight=w, reduction=reduction, backend=backend)
        repeated = f(np.repeat(x, w, axis=0), np.repeat(y, w, axis=0), reduction=reduction,
                     backend=backend)
        assert weighted == pytest.approx(repeated, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(FORMULAS) + ["cross_entropy"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_return_grad_matches_central_differences(name, reduction, backend):
    x, y = call_args(name, *rng_data((4, 3), seed=7))
    if name == "cross_entropy":
        y = np.array([2, 0, 1, 1])
    w = np.array([0.5, 2.0, 1.0, 0.0])
    f = getattr(F, name)
    value, grad = f(x, y, sample_weight=w, reduction=reduction, return_grad=True, backend=backend)
    assert value == pytest.approx(f(x, y, sample_weight=w, reduction=reduction, backend=backend))
    h = 1e-4 if name != "binary_cross_entropy" else 1e-6
    numeric = np.empty_like(x)
    for i in np.ndindex(x.shape):
        def at(shift):
            xs = x.copy()
            xs[i] += shift
            return f(xs, y, sample_weight=w, reduction=reduction, backend=backend)

        numeric[i] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_targets_indices_probabilities_and_unbatched(backend):
    z = rng_data((4, 5), seed=2)[0]
    idx = np.array([4, 0, 2, 2])
    expected = -log_softmax(z, axis=1)[np.arange(4), idx]
    np.testing.assert_allclose(F.cross_entropy(z, idx, reduction="none", backend=backend),
                               expected, rtol=1e-12)
    onehot = np.eye(5)[idx]
    assert F.cross_entropy(z, onehot, backend=backend) == pytest.approx(expected.mean(), rel=1e-12)
    soft = sp_softmax(rng_data((4, 5), seed=3)[0], axis=1)
    value, grad = F.cross_entropy(z, soft, reduction="sum", return_grad=True, backend=backend)
    assert value == pytest.approx(-(soft * log_softmax(z, axis=1)).sum(), rel=1e-12)
    np.testing.assert_allclose(grad, sp_softmax(z, axis=1) - soft, atol=1e-14)
    one = F.cross_entropy(z[1], 0, backend=backend)
    assert one == pytest.approx(expected[1], rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_poisson_rate_input_and_stirling_term(backend):
    rate = np.array([0.5, 2.0, 0.0])
    t = np.array([1.0, 3.0, 2.0])
    eps = 1e-8
    expected = rate - t * np.log(rate + eps)
    stirling = np.where(t > 1, t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t), 0.0)
    value, grad = F.poisson_nll_loss(rate, t, log_input=False, full=True, reduction="none",
                                     return_grad=True, backend=backend)
    np.testing.assert_allclose(value, expected + stirling, rtol=1e-12)
    np.testing.assert_allclose(grad, 1 - t / (rate + eps), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_cross_entropy_clips_with_dtype_eps(backend):
    for dtype in (np.float32, np.float64):
        eps = np.finfo(dtype).eps
        got = F.binary_cross_entropy(np.array([0.0, 1.0], dtype), np.array([1.0, 0.0], dtype),
                                     reduction="none", backend=backend)
        np.testing.assert_allclose(got, -np.log(eps), rtol=1e-6)
        assert np.all(np.isfinite(got))


# ----------------------------------------------------------------- activations


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_match_formulas(backend, dtype):
    x = np.array([[-1e4, -2.0, -0.5], [0.0, 0.7, 1e4]], dtype=dtype)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(x, backend=backend)
    assert s.dtype == dtype
    np.testing.assert_allclose(s, expit(x.astype(np.float64)), rtol=rtol)
    np.testing.assert_allclose(F.tanh(x, backend=backend), np.tanh(x), rtol=rtol)
    np.testing.assert_allclose(F.relu(x, backend=backend), np.maximum(x, 0), rtol=rtol)
    np.testing.assert_allclose(F.leaky_relu(x, 0.2, backend=backend),
                               np.where(x > 0, x, 0.2 * x), rtol=rtol)
    np.testing.assert_allclose(F.leaky_relu(x, backend=backend),
                               np.where(x > 0, x, 0.01 * x), rtol=rtol)
    y = rng_data((3, 4, 2), dtype=dtype)[0]
    for axis in (0, 1, -1):
        np.testing.assert_allclose(F.softmax(y, axis=axis, backend=backend),
                                   sp_softmax(y.astype(np.float64), axis=axis), rtol=rtol * 10)
    assert F.sigmoid(np.float64(0.0), backend=backend) == 0.5


# ----------------------------------------------------------------- PyTorch itself


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(set(FORMULAS) - {"quantile_loss"})  # not in torch
                         + ["cross_entropy"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch(name, reduction, backend):
    torch = pytest.importorskip("torch", reason="torch not installed (optional oracle)")
    x, y = call_args(name, *rng_data((5, 4), seed=11))
    if name == "cross_entropy":
        y = np.array([3, 0, 1, 1, 2])
    tx = torch.tensor(x, requires_grad=True)
    tf = getattr(torch.nn.functional, name)
    tv = tf(tx, torch.tensor(y), reduction=reduction)
    tv.sum().backward()
    value, grad = getattr(F, name)(x, y, reduction=reduction, return_grad=True, backend=backend)
    np.testing.assert_allclose(value, tv.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: F.mse_loss(np.ones(3), np.ones(4)), "same shape"),
        (lambda: F.mse_loss(np.ones(3), np.ones(3), reduction="avg"), "unknown reduction"),
        (lambda: F.mse_loss(np.ones(3), np.ones(3), backend="cuda"), "unknown backend"),
        (lambda: F.huber_loss(np.ones(3), np.ones(3), delta=0), "delta"),
        (lambda: F.huber_loss(np.ones(3), np.ones(3), delta=-1.0), "delta"),
        (lambda: F.quantile_loss(np.ones(3), np.ones(3), quantile=0.0), "quantile"),
        (lambda: F.quantile_loss(np.ones(3), np.ones(3), quantile=1.5), "quantile"),
        (lambda: F.binary_cross_entropy(np.full(3, 0.5), np.ones(3), eps=0.7), "eps"),
        (lambda: F.binary_cross_entropy(np.full(3, 0.5), np.ones(3), eps=0.0), "eps"),
        (lambda: F.binary_cross_entropy(np.full(3, 1.5), np.ones(3)), r"\[0, 1\]"),
        (lambda: F.poisson_nll_loss(np.ones(3), np.ones(3), eps=-1), "eps"),
        (lambda: F.mse_loss(np.arange(3), np.ones(3)), "float32 or float64"),
        (lambda: F.mse_loss(np.ones(3, np.float16), np.ones(3)), "float32 or float64"),
        (lambda: F.mse_loss(np.ones(3) + 1j, np.ones(3)), "float32 or float64"),
        (lambda: F.mse_loss(np.ones(3), np.array(["a", "b", "c"])), "numeric"),
        (lambda: F.mse_loss(np.array([1.0, np.nan]), np.ones(2)), "NaN or infinity"),
        (lambda: F.l1_loss(np.ones(2), np.array([1.0, np.inf])), "NaN or infinity"),
        (lambda: F.l1_loss(np.ones(2), np.ones(2), sample_weight=[1.0, -1.0]), "non-negative"),
        (lambda: F.l1_loss(np.ones(2), np.ones(2), sample_weight=[1.0]), r"shape \(2,\)"),
        (lambda: F.l1_loss(np.ones(2), np.ones(2), sample_weight=[0.0, 0.0]), "total weight"),
        (lambda: F.l1_loss(np.ones(0), np.ones(0)), "empty"),
        (lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 3])), "class indices"),
        (lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])), r"shape \(2,\)"),
        (lambda: F.cross_entropy(np.ones((2, 3, 4)), np.array([0, 1])), "logits must have shape"),
        (lambda: F.softmax(np.float64(1.0)), "0-d"),
        (lambda: F.leaky_relu(np.ones(2), np.nan), "negative_slope"),
    ],
)
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unavailable_backend_raises(monkeypatch):
    monkeypatch.setattr(_backends, "_installed", lambda name: name == "numpy")
    with pytest.raises(ValueError, match="not available"):
        F.mse_loss(np.ones(2), np.ones(2), backend="cython")


def test_zero_size_input_with_sum_and_none():
    assert F.mse_loss(np.ones((0, 3)), np.ones((0, 3)), reduction="sum") == 0.0
    assert F.mse_loss(np.ones((0, 3)), np.ones((0, 3)), reduction="none").shape == (0, 3)


def test_auto_backend_is_resolved_once_and_is_the_first_available():
    assert _backends.resolve(None) == _backends.resolve("auto") == available_backends()[0]
    assert _backends.get_kernels(None) is _backends.get_kernels("auto")
    assert "numpy" in available_backends()


def test_import_fastnn_imports_neither_numba_nor_torch():
    code = ("import sys, fastnn, fastnn.functional, fastnn.optim; "
            "assert 'numba' not in sys.modules, 'numba'; "
            "assert 'torch' not in sys.modules, 'torch'; print(fastnn.available_backends())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # it lists the backends this process lists (after the checks: listing imports numba)
    assert out.stdout.strip() == repr(available_backends())
