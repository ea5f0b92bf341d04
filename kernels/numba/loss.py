"""Numba loss kernels: each computes the loss and its gradient on raw outputs in one pass.

Same names, signatures and semantics as ``fastnn.kernels.reference``. For y_true and raw
of shape (n, k) and sample_weight of shape (n,), every kernel writes
``loss_out[i] = sum_k loss(y_true[i, k], raw[i, k])`` and
``gradient_out[i, k] = sample_weight[i] * d loss / d raw[i, k]`` and returns
``sum_i sample_weight[i] * loss_out[i]`` as a float64 (from the unrounded per-sample sums).

The per-element math lives in small ``_<loss>(y, raw, params)`` functions returning
``(loss, gradient)`` in float64; one loop (``_elementwise``) runs them over the arrays.
"""

import numpy as np

from . import _vmath
from ._config import jit, kernel

# --------------------------------------------------------------------------- helpers


@jit
def _clip(x, lo, hi):
    """min(max(x, lo), hi), NaN kept (as np.clip)."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@jit
def _log_clip_bounds(eps):
    """Bounds on -log(p) for p clipped to [eps, 1 - eps]; eps = 0 clips nothing."""
    hi = -np.log(eps) if eps > 0.0 else np.inf
    return -np.log1p(-eps), hi


@jit
def _check_shapes(y_true, raw, sample_weight, loss_out, gradient_out):
    """The shapes the kernels index by (types are checked by the dispatcher, ``kernel``).
    ``raw`` is binary_log_loss_proba_gradient's ``proba``."""
    n = raw.shape[0]
    if y_true.shape != raw.shape:
        raise ValueError("y_true must have the shape (n, k) of raw (proba)")
    if gradient_out.shape != raw.shape:
        raise ValueError("gradient_out must have the shape (n, k) of raw (proba)")
    if sample_weight.shape[0] != n:
        raise ValueError("sample_weight must have shape (n,), n the rows of raw (proba)")
    if loss_out.shape[0] != n:
        raise ValueError("loss_out must have shape (n,), n the rows of raw (proba)")


# inlined into each kernel: a jitted function passed as an argument is a "dynamic global"
# to Numba, which would make the kernels uncachable
@jit(inline="always")
def _elementwise(pointwise, params, y_true, raw, sample_weight, loss_out, gradient_out):
    """The one loop of the elementwise losses: ``pointwise(y, raw, params)`` per element."""
    _check_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    n, k = raw.shape
    total = 0.0
    for i in range(n):
        w = float(sample_weight[i])
        row = 0.0
        for j in range(k):
            loss, grad = pointwise(float(y_true[i, j]), float(raw[i, j]), params)
            row += loss
            gradient_out[i, j] = w * grad
        loss_out[i] = row
        total += w * row
    return total


# --------------------------------------------------------------------------- per element


@jit
def _half_squared_error(y, raw, params):
    r = raw - y
    return 0.5 * r * r, r


@jit
def _absolute_error(y, raw, params):
    r = raw - y
    return abs(r), np.sign(r)


@jit
def _huber(y, raw, params):
    delta = params[0]
    r = raw - y
    loss = 0.5 * r * r if abs(r) <= delta else delta * (abs(r) - 0.5 * delta)
    return loss, _clip(r, -delta, delta)


@jit
def _quantile(y, raw, params):
    q = params[0]
    r = raw - y
    if r > 0.0:
        return (1.0 - q) * r, 1.0 - q
    if r < 0.0:
        return -q * r, -q
    return r * 0.0, r * 0.0  # r == 0: subgradient 0 (NaN kept)


@jit
def _poisson(y, raw, params):
    mu = _vmath.exp(raw)
    return mu - y * raw, mu - y


@jit
def _binary_log(y, raw, params):
    lo, hi = params
    # softplus(+-raw) = max(+-raw, 0) + log1p(e), e = exp(-|raw|), shared with sigmoid(raw)
    e = _vmath.exp(-abs(raw))
    log1p_e = np.log1p(e)
    neg_log_p = max(-raw, 0.0) + log1p_e  # softplus(-raw)
    neg_log_1mp = max(raw, 0.0) + log1p_e  # softplus(raw)
    p = 1.0 / (1.0 + e) if raw >= 0.0 else e / (1.0 + e)
    return y * _clip(neg_log_p, lo, hi) + (1.0 - y) * _clip(neg_log_1mp, lo, hi), p - y


@jit
def _binary_log_proba(y, proba, params):
    eps = params[0]
    p = _clip(proba, eps, 1.0 - eps)
    loss = -y * np.log(p) - (1.0 - y) * np.log1p(-p)
    return loss, (p - y) / (p * (1.0 - p))


@jit
def _softmax_cross_entropy(y, raw, m, s, lse, y_sum, lo, hi):
    """One element of a row with max m, s = sum exp(raw - m), lse = m + log(s)."""
    return y * _clip(lse - raw, lo, hi), _vmath.exp(raw - m) / s * y_sum - y


# --------------------------------------------------------------------------- kernels


@kernel
def half_squared_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Half squared error: loss = (raw - y)**2 / 2, gradient = raw - y."""
    return _elementwise(_half_squared_error, (0.0,), y_true, raw, sample_weight,
                        loss_out, gradient_out)


@kernel
def absolute_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Absolute error: loss = |raw - y|, gradient = sign(raw - y) (0 at raw == y)."""
    return _elementwise(_absolute_error, (0.0,), y_true, raw, sample_weight,
                        loss_out, gradient_out)


@kernel
def huber_loss_gradient(y_true, raw, sample_weight, delta, loss_out, gradient_out):
    """Huber, r = raw - y: loss = r**2 / 2 if |r| <= delta else delta (|r| - delta / 2);
    gradient = clip(r, -delta, delta).
    """
    return _elementwise(_huber, (float(delta),), y_true, raw, sample_weight,
                        loss_out, gradient_out)


@kernel
def quantile_loss_gradient(y_true, raw, sample_weight, quantile, loss_out, gradient_out):
    """Pinball, r = raw - y, q = quantile: loss = q max(-r, 0) + (1 - q) max(r, 0);
    gradient = 1 - q for r > 0, -q for r < 0, 0 at r == 0."""
    return _elementwise(_quantile, (float(quantile),), y_true, raw, sample_weight,
                        loss_out, gradient_out)


@kernel
def poisson_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Poisson NLL with log link, no constant: loss = exp(raw) - y raw, gradient = exp(raw) - y."""
    return _elementwise(_poisson, (0.0,), y_true, raw, sample_weight, loss_out, gradient_out)


@kernel
def binary_log_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out):
    """Binary log-loss on logits: loss = y softplus(-raw) + (1 - y) softplus(raw), each term
    clipped to [-log(1 - eps), -log(eps)] (eps = 0: none); gradient = sigmoid(raw) - y.
    """
    return _elementwise(_binary_log, _log_clip_bounds(float(eps)), y_true, raw,
                        sample_weight, loss_out, gradient_out)


@kernel
def binary_log_loss_proba_gradient(y_true, proba, sample_weight, eps, loss_out, gradient_out):
    """Binary log-loss on probabilities, pc = clip(p, eps, 1 - eps):
    loss = -y log(pc) - (1 - y) log(1 - pc), gradient = (pc - y) / (pc (1 - pc)).
    """
    return _elementwise(_binary_log_proba, (float(eps),), y_true, proba, sample_weight,
                        loss_out, gradient_out)


@kernel
def softmax_cross_entropy_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out):
    """Softmax cross-entropy on logits (n, k): loss = -sum_k y_k log p_k, p = softmax(raw),
    -log p_k clipped to [-log(1 - eps), -log(eps)] (eps = 0: none);
    gradient = p * sum_k y_k - y.
    """
    _check_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    lo, hi = _log_clip_bounds(float(eps))
    n, k = raw.shape
    if k == 0:  # empty rows: loss 0 (and no log(0) of an empty sum)
        loss_out[:] = 0.0
        return 0.0
    total = 0.0
    for i in range(n):
        m = -np.inf
        for j in range(k):
            if raw[i, j] > m:
                m = float(raw[i, j])
        s = 0.0
        y_sum = 0.0
        for j in range(k):
            s += _vmath.exp(float(raw[i, j]) - m)
            y_sum += float(y_true[i, j])
        lse = m + np.log(s)
        w = float(sample_weight[i])
        row = 0.0
        for j in range(k):
            loss, grad = _softmax_cross_entropy(float(y_true[i, j]), float(raw[i, j]),
                                                m, s, lse, y_sum, lo, hi)
            row += loss
            gradient_out[i, j] = w * grad
        loss_out[i] = row
        total += w * row
    return total
