"""NumPy reference kernels: the readable specification of every fastnn kernel.

Every function here has a twin with the same name and signature in
``fastnn.kernels.numba`` and ``fastnn.kernels.cython``; the tests hold the twins to this
module. Conventions shared by all three implementations:

- Arrays are C-contiguous, all of one floating dtype (float32 or float64) per call;
  inputs may be read-only. Results are written into the caller's ``*_out`` arrays; a
  trailing ``_`` in a name means the leading arrays are updated in place.
- 2-D arrays are ``(n_samples, n_outputs)``; ``sample_weight`` is ``(n_samples,)``
  (pass ones for unweighted); optimizer buffers are 1-D (one flat parameter buffer).
- Per-element arithmetic runs in float64 and is stored in the array dtype; loss sums are
  accumulated and returned in float64. Scalars (learning rates, bias corrections) are
  float64, computed once per call by the caller.
- ``act`` is one of the integer codes in ``fastnn.kernels`` (IDENTITY, LOGISTIC, TANH,
  RELU, LEAKY_RELU, SOFTMAX).
"""

import numpy as np

from . import layout
from ._checks import checked

from . import (
    ADAM, BETA1, BETA2, EPSILON, IDENTITY, LEAKY_RELU, LOGISTIC, LOSS_KERNELS, LR, MOMENTUM,
    N_CONFIG, RELU, RMSPROP, SGD, SGD_NESTEROV, SOFTMAX, TANH,
)

# --------------------------------------------------------------------------- checks
# Argument types are checked by @checked (fastnn.kernels._checks, shared by the three
# implementations); shapes and codes here, as the compiled twins check theirs.


def _check(ok, message):
    if not ok:
        raise ValueError(message)


def _check_shape(name, a, shape):
    _check(a.shape == shape, f"{name} has shape {a.shape}, expected {shape}")


def _check_act(name, act):
    _check(IDENTITY <= act <= SOFTMAX, f"{name}: unknown activation code {act}")


# --------------------------------------------------------------------------- activations


def _expit(z):
    """Logistic 1 / (1 + exp(-z)) evaluated through exp(-|z|): no overflow for any z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@checked
def activation(x, act, negative_slope, out):
    """out = f(x), row-wise for softmax; ``out`` may be ``x``.

    identity: x; logistic: 1 / (1 + exp(-x)); tanh; relu: max(x, 0);
    leaky_relu: x if x > 0 else negative_slope * x;
    softmax: exp(x - max_j x_j) / sum_j exp(x - max_j x_j) over each row.
    """
    _check_act("act", act)
    _check_shape("out", out, x.shape)
    z = np.asarray(x, dtype=np.float64)
    if z.size == 0:
        return
    if act == IDENTITY:
        r = z
    elif act == LOGISTIC:
        r = _expit(z)
    elif act == TANH:
        r = np.tanh(z)
    elif act == RELU:
        r = np.maximum(z, 0.0)
    elif act == LEAKY_RELU:
        r = np.where(z > 0, z, negative_slope * z)
    else:  # SOFTMAX
        e = np.exp(z - z.max(axis=1, keepdims=True))
        r = e / e.sum(axis=1, keepdims=True)
    out[...] = r


@checked
def activation_grad_(a, act, negative_slope, delta):
    """delta *= f'(z), with the derivative computed from the forward output a = f(z).

    identity: 1; logistic: a (1 - a); tanh: 1 - a**2; relu: [a > 0];
    leaky_relu: 1 if a > 0 else negative_slope (needs negative_slope >= 0);
    softmax (the vector-Jacobian product of each row): a * (delta - sum_j a_j delta_j).
    """
    _check_act("act", act)
    _check_shape("delta", delta, a.shape)
    a = np.asarray(a, dtype=np.float64)
    d = np.asarray(delta, dtype=np.float64)
    if act == IDENTITY:
        return
    if act == LOGISTIC:
        r = d * a * (1.0 - a)
    elif act == TANH:
        r = d * (1.0 - a * a)
    elif act == RELU:
        r = np.where(a > 0, d, 0.0)
    elif act == LEAKY_RELU:
        r = np.where(a > 0, d, negative_slope * d)
    else:  # SOFTMAX
        r = a * (d - (a * d).sum(axis=1, keepdims=True))
    delta[...] = r


# --------------------------------------------------------------------------- dense layer


@checked
def dense_forward(a, W, b, act, negative_slope, z_out):
    """z_out = f(a @ W + b); a (n, n_in), W (n_in, n_out), b (n_out,), z_out (n, n_out)."""
    (n, n_in), n_out = a.shape, W.shape[1]
    _check_act("act", act)
    _check_shape("W", W, (n_in, n_out))
    _check_shape("b", b, (n_out,))
    _check_shape("z_out", z_out, (n, n_out))
    np.matmul(a, W, out=z_out)
    z_out += b
    activation(z_out, act, negative_slope, z_out)


@checked
def dense_backward(a_prev, delta, dW_out, db_out):
    """dW_out = a_prev.T @ delta and db_out = delta summed over rows.

    ``delta`` is d loss / d z of this layer (n, n_out); ``a_prev`` its input (n, n_in).
    """
    (n, n_in), n_out = a_prev.shape, delta.shape[1]
    _check_shape("delta", delta, (n, n_out))
    _check_shape("dW_out", dW_out, (n_in, n_out))
    _check_shape("db_out", db_out, (n_out,))
    np.matmul(a_prev.T, delta, out=dW_out)
    db_out[:] = delta.sum(axis=0, dtype=np.float64)


@checked
def dense_backward_delta(delta, W, a_prev, act_prev, negative_slope, delta_prev_out):
    """delta_prev_out = (delta @ W.T) * f'(z_prev), f' taken from a_prev = f(z_prev)."""
    (n, n_out), n_in = delta.shape, W.shape[0]
    _check_act("act_prev", act_prev)
    _check_shape("W", W, (n_in, n_out))
    _check_shape("a_prev", a_prev, (n, n_in))
    _check_shape("delta_prev_out", delta_prev_out, (n, n_in))
    np.matmul(delta, W.T, out=delta_prev_out)
    activation_grad_(a_prev, act_prev, negative_slope, delta_prev_out)


# --------------------------------------------------------------------------- dropout
#
# Masks from a counter-based hash, so that they cost no memory and no RNG state, and the
# three implementations (and any number of threads) draw the same ones. SplitMix64
# (Steele, Lea and Flood, 2014): mix64 is its output function, and unit u of a layer is
# the (u + 1)-th output of the stream that starts at the layer's key. All arithmetic is
# on uint64, modulo 2**64.

_MASK64 = 2**64 - 1
_GAMMA, _M1, _M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix64_int(z):
    """SplitMix64's output function on a Python int (mod 2**64)."""
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def _mix64(z):
    """_mix64_int on a uint64 array (NumPy's uint64 arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _dropout_key(seed, step, layer):
    """The key of a layer's mask in the batch that makes update ``step``:
    mix64(mix64(mix64(seed) + step * G) + (layer + 1) * G), G = 0x9E3779B97F4A7C15."""
    k = (_mix64_int(int(seed) & _MASK64) + int(step) * _GAMMA) & _MASK64
    return _mix64_int((_mix64_int(k) + (int(layer) + 1) * _GAMMA) & _MASK64)


def _dropout_threshold(p):
    """Unit u is kept iff mix64(key + (u + 1) * G) >= floor(p * 2**64): P(drop) = p up
    to 2**-64 (p * 2**64 is exact in float64; the conversion truncates)."""
    return int(p * 2.0**64)


def _keep(key, p, n, k):
    """The (n, k) boolean mask of kept units; unit u = i * k + j."""
    u = np.arange(1, n * k + 1, dtype=np.uint64).reshape(n, k)
    return _mix64(np.uint64(key) + u * np.uint64(_GAMMA)) >= np.uint64(_dropout_threshold(p))


def _drop_(x, key, p, scale):
    """x = x * scale where kept, 0 where dropped (in float64, stored in x's dtype)."""
    x[...] = np.where(_keep(key, p, *x.shape), x.astype(np.float64) * scale, 0.0)


@checked
def dropout_(x, p, seed, step, layer):
    """Inverted dropout in place: x = x / (1 - p) where kept, 0 where dropped, with the
    mask the training kernels draw for layer ``layer`` in the batch of update ``step``
    (``_dropout_key``; unit u = i * k + j of x (n, k) is kept iff
    mix64(key + (u + 1) * G) >= floor(p * 2**64)). ``p`` in [0, 1); p = 0 leaves x as
    it is. seed, step and layer are integers in [0, 2**63)."""
    _check(0.0 <= p < 1.0, f"p must be in [0, 1), got {p}")
    _check(min(seed, step, layer) >= 0, "seed, step and layer must be at least 0")
    _check(max(seed, step, layer) < 2**63, "seed, step and layer must be below 2**63")
    if p:
        _drop_(x, _dropout_key(seed, step, layer), p, 1.0 / (1.0 - p))


# --------------------------------------------------------------------------- conv, pool
#
# Per-sample layout C x H x W (PyTorch's); x (n, C, H, W), conv weights (F, C, KH, KW).
# Output sizes: OH = (H + 2 pad_h - KH) // stride_h + 1, the same for widths.


def _out_size(name, size, kernel, stride, pad):
    _check(stride >= 1 and pad >= 0, f"{name}: stride must be at least 1 and padding at "
                                      f"least 0")
    _check(1 <= kernel <= size + 2 * pad,
           f"{name}: the kernel ({kernel}) is larger than the padded input ({size + 2 * pad})")
    return (size + 2 * pad - kernel) // stride + 1


def _windows(x, kh, kw, sh, sw, ph, pw):
    """(n, C, OH, OW, KH, KW) view of x zero-padded: the window of every output."""
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _flat2(x):
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # -1 fails for 0 rows


@checked
def conv2d_forward(x, W, b, stride_h, stride_w, pad_h, pad_w, act, negative_slope, z_out):
    """z_out[n, f, i, j] = act(b[f] + sum_{c,u,v} W[f, c, u, v] x[n, c, i sh + u - ph,
    j sw + v - pw]), x zero outside the image (PyTorch's Conv2d; softmax not allowed)."""
    n, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    _check_act("act", act)
    _check(act != SOFTMAX, "act: softmax is for dense layers")
    oh = _out_size("conv2d height", H, kh, stride_h, pad_h)
    ow = _out_size("conv2d width", Wd, kw, stride_w, pad_w)
    _check_shape("W", W, (F, C, kh, kw))
    _check_shape("b", b, (F,))
    _check_shape("z_out", z_out, (n, F, oh, ow))
    win = _windows(x, kh, kw, stride_h, stride_w, pad_h, pad_w)
    z_out[...] = np.tensordot(W, win, axes=([1, 2, 3], [1, 4, 5])).transpose(1, 0, 2, 3)
    z_out += b[:, None, None]
    activation(_flat2(z_out), act, negative_slope, _flat2(z_out))


@checked
def conv2d_backward(x, delta, stride_h, stride_w, pad_h, pad_w, dW_out, db_out):
    """dW_out[f, c, u, v] = sum_{n,i,j} delta[n, f, i, j] x[n, c, i sh + u - ph, j sw + v - pw]
    and db_out[f] = sum_{n,i,j} delta[n, f, i, j]; delta = d loss / d z (n, F, OH, OW)."""
    n, C, H, Wd = x.shape
    F, _, kh, kw = dW_out.shape
    oh = _out_size("conv2d height", H, kh, stride_h, pad_h)
    ow = _out_size("conv2d width", Wd, kw, stride_w, pad_w)
    _check_shape("delta", delta, (n, F, oh, ow))
    _check_shape("dW_out", dW_out, (F, C, kh, kw))
    _check_shape("db_out", db_out, (F,))
    win = _windows(x, kh, kw, stride_h, stride_w, pad_h, pad_w)
    dW_out[...] = np.tensordot(delta, win, axes=([0, 2, 3], [0, 2, 3]))
    db_out[:] = delta.sum(axis=(0, 2, 3), dtype=np.float64)


@checked
def conv2d_backward_delta(delta, W, x, stride_h, stride_w, pad_h, pad_w, act_prev,
                          negative_slope, delta_prev_out):
    """delta_prev_out = (d z / d x)^T delta * f'(z_prev): every delta[n, f, i, j] W[f, c, u, v]
    added at x[n, c, i sh + u - ph, j sw + v - pw] (those in the padding dropped), times
    the derivative of the input's activation, taken from x = f(z_prev)."""
    n, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    _check_act("act_prev", act_prev)
    oh = _out_size("conv2d height", H, kh, stride_h, pad_h)
    ow = _out_size("conv2d width", Wd, kw, stride_w, pad_w)
    _check_shape("W", W, (F, C, kh, kw))
    _check_shape("delta", delta, (n, F, oh, ow))
    _check_shape("delta_prev_out", delta_prev_out, (n, C, H, Wd))
    g = np.zeros((n, C, H + 2 * pad_h, Wd + 2 * pad_w), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            g[:, :, u:u + stride_h * oh:stride_h, v:v + stride_w * ow:stride_w] += np.tensordot(
                W[:, :, u, v], delta, axes=([0], [1])).transpose(1, 0, 2, 3)
    delta_prev_out[...] = g[:, :, pad_h:pad_h + H, pad_w:pad_w + Wd]
    activation_grad_(_flat2(x), act_prev, negative_slope, _flat2(delta_prev_out))


def _pool_argmax(x, kh, kw, sh, sw, ph, pw):
    """Index (into the H x W plane) of every window's maximum (n, C, OH, OW): PyTorch's
    scan over the window's positions inside the image, row by row, taking a value that
    is greater than the maximum so far or NaN (the first maximum; the last NaN)."""
    n, C, H, Wd = x.shape
    _check(H >= 1 and Wd >= 1, f"maxpool2d: the images are {H}x{Wd}, at least 1x1 expected")
    oh = _out_size("maxpool2d height", H, kh, sh, ph)
    ow = _out_size("maxpool2d width", Wd, kw, sw, pw)
    _check(2 * ph <= kh and 2 * pw <= kw, "maxpool2d: padding must be at most half the kernel")
    rows0 = np.arange(oh) * sh - ph  # first input row of each output row
    cols0 = np.arange(ow) * sw - pw
    first_r, first_c = np.maximum(rows0, 0), np.maximum(cols0, 0)
    idx = np.broadcast_to(first_r[:, None] * Wd + first_c[None, :], (n, C, oh, ow)).copy()
    best = np.full((n, C, oh, ow), -np.inf, dtype=np.float64)
    for u in range(kh):
        r = rows0 + u
        for v in range(kw):
            c = cols0 + v
            inside = ((r >= 0) & (r < H))[:, None] & ((c >= 0) & (c < Wd))[None, :]
            val = x[:, :, np.clip(r, 0, H - 1)][:, :, :, np.clip(c, 0, Wd - 1)]
            take = inside & ((val > best) | np.isnan(val))
            best = np.where(take, val, best)
            idx = np.where(take, (np.clip(r, 0, H - 1)[:, None] * Wd
                                  + np.clip(c, 0, Wd - 1)[None, :]), idx)
    return idx


@checked
def maxpool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, z_out):
    """z_out[n, c, i, j] = max_{u,v} x[n, c, i sh + u - ph, j sw + v - pw] over the
    window's positions inside the image (PyTorch's MaxPool2d, floor mode; NaN wins)."""
    n, C, H, Wd = x.shape
    idx = _pool_argmax(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    _check_shape("z_out", z_out, (n, C) + idx.shape[2:])
    z_out[...] = np.take_along_axis(x.reshape(n, C, H * Wd), idx.reshape(n, C, z_out[0, 0].size if n else 0),
                                    axis=2).reshape(z_out.shape)


@checked
def maxpool2d_backward_delta(delta, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                             act_prev, negative_slope, delta_prev_out):
    """delta_prev_out = every delta[n, c, i, j] added at its window's maximum (the one
    maxpool2d_forward took; outputs in row-major order), times the derivative of the
    input's activation, taken from x = f(z_prev)."""
    n, C, H, Wd = x.shape
    _check_act("act_prev", act_prev)
    idx = _pool_argmax(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    _check_shape("delta", delta, (n, C) + idx.shape[2:])
    _check_shape("delta_prev_out", delta_prev_out, x.shape)
    g = np.zeros(n * C * H * Wd, dtype=x.dtype)
    plane = (np.arange(n * C) * (H * Wd)).reshape(n, C, 1, 1)
    np.add.at(g, (plane + idx).ravel(), delta.ravel())
    delta_prev_out[...] = g.reshape(x.shape)
    activation_grad_(_flat2(x), act_prev, negative_slope, _flat2(delta_prev_out))


# --------------------------------------------------------------------------- losses
#
# Every loss takes y_true and raw of shape (n, k) and sample_weight of shape (n,), writes
#   loss_out[i]        = sum_k loss(y_true[i, k], raw[i, k])     (unweighted, per sample)
#   gradient_out[i, k] = sample_weight[i] * d loss / d raw[i, k]
# and returns sum_i sample_weight[i] * loss_out[i] in float64.


def _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out, raw_name="raw"):
    shape = raw.shape
    for name, a in (("y_true", y_true), ("gradient_out", gradient_out)):
        _check(a.shape == shape, f"{name} has shape {a.shape}, expected {shape} (the "
                                 f"shape of {raw_name})")
    for name, a in (("sample_weight", sample_weight), ("loss_out", loss_out)):
        _check(a.shape == shape[:1], f"{name} has shape {a.shape}, expected {shape[:1]} "
                                     f"(the rows of {raw_name})")


def _finish(loss, grad, sample_weight, loss_out, gradient_out):
    w = np.asarray(sample_weight, dtype=np.float64)
    per_sample = loss.sum(axis=1)
    loss_out[:] = per_sample
    gradient_out[...] = grad * w[:, None]
    return float(np.dot(w, per_sample))


def _log_clip_bounds(eps):
    """Bounds on -log(p) when p is clipped to [eps, 1 - eps]; eps = 0 clips nothing."""
    hi = -np.log(eps) if eps > 0 else np.inf
    return -np.log1p(-eps), hi


@checked
def half_squared_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Half squared error: loss = (raw - y)**2 / 2, gradient = raw - y."""
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    r = np.asarray(raw, np.float64) - np.asarray(y_true, np.float64)
    return _finish(0.5 * r * r, r, sample_weight, loss_out, gradient_out)


@checked
def absolute_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Absolute error: loss = |raw - y|, gradient = sign(raw - y).

    At raw == y the subgradient 0 is used (as PyTorch's l1_loss and np.sign do).
    """
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    r = np.asarray(raw, np.float64) - np.asarray(y_true, np.float64)
    return _finish(np.abs(r), np.sign(r), sample_weight, loss_out, gradient_out)


@checked
def huber_loss_gradient(y_true, raw, sample_weight, delta, loss_out, gradient_out):
    """Huber: 0.5 r**2 for |r| <= delta, delta * (|r| - delta / 2) beyond; r = raw - y.

    gradient = clip(r, -delta, delta): quadratic near zero, linear (robust) in the tails.
    """
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    r = np.asarray(raw, np.float64) - np.asarray(y_true, np.float64)
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return _finish(loss, np.clip(r, -delta, delta), sample_weight, loss_out, gradient_out)


@checked
def quantile_loss_gradient(y_true, raw, sample_weight, quantile, loss_out, gradient_out):
    """Quantile (pinball) loss, r = raw - y, q = quantile in (0, 1):

    loss = q max(-r, 0) + (1 - q) max(r, 0), gradient = 1 - q for r > 0, -q for r < 0,
    and the subgradient 0 at r == 0 (as absolute_error's, so quantile 0.5 is exactly half
    the absolute error). Minimising its mean makes raw the q-quantile of y
    (scikit-learn's mean_pinball_loss with alpha = q).
    """
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    r = np.asarray(raw, np.float64) - np.asarray(y_true, np.float64)
    q = float(quantile)
    loss = q * np.maximum(-r, 0.0) + (1.0 - q) * np.maximum(r, 0.0)
    grad = np.where(r > 0, 1.0 - q, np.where(r < 0, -q, r * 0.0))  # NaN kept
    return _finish(loss, grad, sample_weight, loss_out, gradient_out)


@checked
def poisson_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Poisson negative log-likelihood with exp link (raw = log of the mean), no constant.

    loss = exp(raw) - y * raw, gradient = exp(raw) - y  (PyTorch's poisson_nll_loss with
    log_input=True, full=False; half of scikit-learn's Poisson deviance up to a constant).
    """
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    z = np.asarray(raw, np.float64)
    y = np.asarray(y_true, np.float64)
    mu = np.exp(z)
    return _finish(mu - y * z, mu - y, sample_weight, loss_out, gradient_out)


def _softplus(t):
    """log(1 + exp(t)) without overflow."""
    return np.maximum(t, 0.0) + np.log1p(np.exp(-np.abs(t)))


@checked
def binary_log_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out):
    """Binary log-loss with the sigmoid link on logits raw, one column per label.

    p = sigmoid(raw); loss = -y log(p) - (1 - y) log(1 - p), with p clipped to
    [eps, 1 - eps] for the value (eps = 0: no clipping). Computed from logits:
    -log(p) = softplus(-raw), -log(1 - p) = softplus(raw), each clipped to
    [-log(1 - eps), -log(eps)]. gradient = p - y (of the unclipped loss).
    """
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    z = np.asarray(raw, np.float64)
    y = np.asarray(y_true, np.float64)
    lo, hi = _log_clip_bounds(eps)
    loss = y * np.clip(_softplus(-z), lo, hi) + (1.0 - y) * np.clip(_softplus(z), lo, hi)
    return _finish(loss, _expit(z) - y, sample_weight, loss_out, gradient_out)


@checked
def binary_log_loss_proba_gradient(y_true, proba, sample_weight, eps, loss_out, gradient_out):
    """Binary log-loss on probabilities: pc = clip(p, eps, 1 - eps),

    loss = -y log(pc) - (1 - y) log(1 - pc), gradient = (pc - y) / (pc (1 - pc)),
    the derivative at the clipped point (needs 0 < eps < 1/2).
    """
    _check_loss_shapes(y_true, proba, sample_weight, loss_out, gradient_out, raw_name="proba")
    p = np.clip(np.asarray(proba, np.float64), eps, 1.0 - eps)
    y = np.asarray(y_true, np.float64)
    loss = -y * np.log(p) - (1.0 - y) * np.log1p(-p)
    return _finish(loss, (p - y) / (p * (1.0 - p)), sample_weight, loss_out, gradient_out)


@checked
def softmax_cross_entropy_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out):
    """Softmax cross-entropy on logits raw (n, k), targets y_true (n, k) (one-hot or soft).

    loss = -sum_k y_k log p_k with p = softmax(raw), where -log p_k = logsumexp(raw) - raw_k
    is clipped to [-log(1 - eps), -log(eps)] (eps = 0: no clipping);
    gradient = p * sum_k y_k - y  (= p - y for targets that sum to one).
    """
    _check_loss_shapes(y_true, raw, sample_weight, loss_out, gradient_out)
    z = np.asarray(raw, np.float64)
    y = np.asarray(y_true, np.float64)
    k = z.shape[1]
    if z.size == 0:
        return _finish(np.zeros((z.shape[0], k)), z, sample_weight, loss_out, gradient_out)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    nlp = np.clip(m + np.log(s) - z, *_log_clip_bounds(eps))
    loss = y * nlp
    grad = e / s * y.sum(axis=1, keepdims=True) - y
    return _finish(loss, grad, sample_weight, loss_out, gradient_out)


# --------------------------------------------------------------------------- optimizers
#
# All optimizer updates work in place on 1-D buffers of one dtype: the parameters, their
# gradients (read only) and the state. Hyperparameters and bias corrections are float64.


def _check_sizes(params, **buffers):
    """Every buffer has the length of params (the ones an option leaves unused are not
    passed: they may have any length, empty included)."""
    for name, buf in buffers.items():
        _check(buf.shape == params.shape, f"{name} has shape {buf.shape}, expected "
                                          f"{params.shape} (the shape of params)")


@checked
def sgd_step_(params, grads, momentum_buf, lr, momentum, dampening, nesterov, weight_decay, first_step):
    """PyTorch's SGD: g = grad + weight_decay * p; with momentum mu != 0,
    buf = g on the first step, else buf = mu * buf + (1 - dampening) * g, and
    g = g + mu * buf (nesterov) or g = buf; then p -= lr * g.
    ``momentum_buf`` is untouched (may be empty) when momentum == 0.
    """
    _check_sizes(params, grads=grads,
                 **({"momentum_buf": momentum_buf} if momentum != 0.0 else {}))
    p = params.astype(np.float64)
    g = grads.astype(np.float64) + weight_decay * p
    if momentum != 0.0:
        if first_step:
            buf = g
        else:
            buf = momentum * momentum_buf.astype(np.float64) + (1.0 - dampening) * g
        momentum_buf[:] = buf
        g = g + momentum * buf if nesterov else buf
    params[:] = p - lr * g


@checked
def sgd_velocity_step_(params, grads, velocity, lr, momentum, nesterov):
    """scikit-learn's SGD: v = mu * v - lr * grad; p += mu * v - lr * grad (nesterov)
    or p += v. Equal to PyTorch's form for a constant lr, not when lr changes.
    """
    _check_sizes(params, grads=grads, velocity=velocity)
    g = grads.astype(np.float64)
    v = momentum * velocity.astype(np.float64) - lr * g
    velocity[:] = v
    update = momentum * v - lr * g if nesterov else v
    params[:] = params.astype(np.float64) + update


@checked
def rmsprop_step_(params, grads, square_avg, grad_avg, momentum_buf, lr, alpha, eps,
                  weight_decay, momentum, centered, correction):
    """PyTorch's RMSprop with an optional bias correction c (c = 1: none;
    c = 1 / (1 - alpha**t): Adam-like).

    g = grad + weight_decay * p; s = alpha * s + (1 - alpha) * g**2;
    centered: ga = alpha * ga + (1 - alpha) * g, var = max(c s - (c ga)**2, 0), else var = c s;
    d = sqrt(var) + eps; with momentum mu > 0: b = mu * b + g / d, p -= lr * b;
    else p -= lr * g / d. ``grad_avg`` (not centered) and ``momentum_buf`` (mu == 0) are
    untouched and may be empty.
    """
    _check_sizes(params, grads=grads, square_avg=square_avg,
                 **({"grad_avg": grad_avg} if centered else {}),
                 **({"momentum_buf": momentum_buf} if momentum > 0.0 else {}))
    p = params.astype(np.float64)
    g = grads.astype(np.float64) + weight_decay * p
    s = alpha * square_avg.astype(np.float64) + (1.0 - alpha) * g * g
    square_avg[:] = s
    if centered:
        ga = alpha * grad_avg.astype(np.float64) + (1.0 - alpha) * g
        grad_avg[:] = ga
        # clamped: rounding can make s - ga**2 slightly negative (PyTorch then gives NaN)
        var = np.maximum(correction * s - (correction * ga) ** 2, 0.0)
    else:
        var = correction * s
    d = np.sqrt(var) + eps
    if momentum > 0.0:
        b = momentum * momentum_buf.astype(np.float64) + g / d
        momentum_buf[:] = b
        params[:] = p - lr * b
    else:
        params[:] = p - lr * g / d


@checked
def adam_step_(params, grads, exp_avg, exp_avg_sq, lr, beta1, beta2, weight_decay,
               decoupled_weight_decay, c1, c2, eps_in, eps_out):
    """Adam / AdamW: one kernel for every bias-correction convention.

    decoupled (AdamW): p *= 1 - lr * weight_decay, g = grad;
    else (Adam's L2):  g = grad + weight_decay * p;
    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g**2;
    p -= lr * c1 * m / (sqrt(c2 * v + eps_in) + eps_out).
    PyTorch: c1 = 1 / (1 - beta1**t), c2 = 1 / (1 - beta2**t), eps_in = 0, eps_out = eps.
    scikit-learn: c1 = sqrt(1 - beta2**t) / (1 - beta1**t), c2 = 1, eps_in = 0, eps_out = eps.
    """
    _check_sizes(params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    p = params.astype(np.float64)
    g = grads.astype(np.float64)
    if decoupled_weight_decay:
        p = p * (1.0 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = beta1 * exp_avg.astype(np.float64) + (1.0 - beta1) * g
    v = beta2 * exp_avg_sq.astype(np.float64) + (1.0 - beta2) * g * g
    exp_avg[:] = m
    exp_avg_sq[:] = v
    params[:] = p - lr * c1 * m / (np.sqrt(c2 * v + eps_in) + eps_out)


# --------------------------------------------------------------------------- training
#
# A network is its layer table (fastnn.kernels.layout): one int64 row per layer with its
# op, activation (and the activation's parameter), shapes and the offsets of its weights
# and bias in the flat parameter buffer and of its output in a workspace row. The last
# layer's output is raw (its activation fused into the loss). Workspaces are 1-D arrays
# of the data dtype, sized by layout's *_workspace_size functions, laid out as
#   forward:          the hidden layers' outputs                  (rows x OUT_OFF[-1])
#   forward_backward: loss_out (rows) | outputs (rows x width) | deltas (rows x width)
#   train_epoch:      X_batch (B x n_in) | Y_batch (B x n_out) | w_batch (B) |
#                     forward_backward's for B rows
# with rows = the number of rows of X (B = batch_size for train_epoch).


_INT_MAX = 2**31 - 1  # layer sizes: the compiled twins' BLAS takes int dimensions


def _check_table(table, params):
    """Raise ValueError unless ``table`` is a layer table whose every block lies inside
    ``params`` (the memory-safety boundary of the compiled twins)."""
    if not (table.shape[0] >= 1 and table.shape[1] == layout.N_COLUMNS):
        raise ValueError(f"table must be an int64 layer table of shape (n_layers, "
                         f"{layout.N_COLUMNS}) (fastnn.kernels.layout)")
    n = params.shape[0]
    for l, row in enumerate(table):
        op = row[layout.OP]
        if op not in (layout.DENSE, layout.CONV2D, layout.MAXPOOL2D):
            raise ValueError(f"table row {l}: unknown op code {row[layout.OP]}")
        if not 0 <= row[layout.ACT] <= SOFTMAX or (op != layout.DENSE and row[layout.ACT] == SOFTMAX):
            raise ValueError(f"table row {l}: unknown activation code {row[layout.ACT]}")
        if (not 1 <= row[layout.N_IN] <= _INT_MAX or not 1 <= row[layout.N_OUT] <= _INT_MAX
                or not _shapes_agree(row)
                or (l and row[layout.N_IN] != table[l - 1, layout.N_OUT])):
            raise ValueError(f"table row {l}: inconsistent shapes")
        for off, length in ((layout.W_OFF, layout.W_LEN), (layout.B_OFF, layout.B_LEN)):
            if row[off] < 0 or row[off] > n - row[length]:  # no int64 overflow
                raise ValueError(f"table row {l}: its parameters lie outside params "
                                 f"({n} values)")
        if row[layout.OUT_OFF] != (table[l - 1, layout.OUT_OFF] + table[l - 1, layout.N_OUT]
                                   if l else 0):
            raise ValueError(f"table row {l}: OUT_OFF is not after the previous layer's")
        p = layout.drop_p(table, l)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"table row {l}: dropout probability {p} is not in [0, 1)")
        if p and (l == len(table) - 1 or row[layout.ACT] == SOFTMAX or op != layout.DENSE
                  or table[l + 1, layout.OP] != layout.DENSE):
            raise ValueError(f"table row {l}: dropout on the output layer, a softmax, or "
                             f"not between dense layers")


def _shapes_agree(row):
    """A row's shapes, window and parameter lengths consistent with its op (the sizes
    already in [1, INT_MAX])."""
    (op, c, h, w, f, oh, ow, n_in, n_out, kh, kw, sh, sw, ph, pw) = (int(row[i]) for i in (
        layout.OP, layout.IN_C, layout.IN_H, layout.IN_W, layout.OUT_C, layout.OUT_H,
        layout.OUT_W, layout.N_IN, layout.N_OUT, layout.KH, layout.KW, layout.SH,
        layout.SW, layout.PH, layout.PW))
    if op == layout.DENSE:
        return (row[layout.W_LEN] == n_in * n_out and row[layout.B_LEN] == n_out
                and (c, h, w, f, oh, ow) == (n_in, 1, 1, n_out, 1, 1))
    if (min(c, h, w, f, oh, ow, kh, kw, sh, sw) < 1 or min(ph, pw) < 0
            or max(c * kh * kw, oh * ow) > _INT_MAX  # the conv GEMMs' int dimensions
            or kh > h + 2 * ph or kw > w + 2 * pw or c * h * w != n_in
            or f * oh * ow != n_out or oh != (h + 2 * ph - kh) // sh + 1
            or ow != (w + 2 * pw - kw) // sw + 1):
        return False
    if op == layout.CONV2D:
        return row[layout.W_LEN] == f * c * kh * kw and row[layout.B_LEN] == f
    return (f == c and 2 * ph <= kh and 2 * pw <= kw and row[layout.W_LEN] == 0
            and row[layout.B_LEN] == 0)


def _check_data(X, Y, sample_weight, table):
    n = X.shape[0]
    _check(X.ndim == 2 and X.shape[1] == table[0, layout.N_IN],
           f"X must have the first layer's {table[0, layout.N_IN]} columns")
    _check(Y.shape == (n, table[-1, layout.N_OUT]),
           f"Y must have shape ({n}, {table[-1, layout.N_OUT]}): X's rows, the last layer's "
           f"outputs")
    _check(sample_weight.shape == (n,), f"sample_weight must have shape ({n},)")


def _check_loss(loss):
    _check(loss in LOSS_KERNELS, f"unknown loss code {loss}")


def _layers(table, params):
    """(W, b, act, negative_slope) of every layer: views of ``params``."""
    coefs, intercepts = layout.unflatten(params, table)
    return [(W, b, int(table[l, layout.ACT]), layout.act_param(table, l))
            for l, (W, b) in enumerate(zip(coefs, intercepts))]


def _outputs(work, table, rows):
    """Each layer's (rows x N_OUT) output block of a workspace run starting at ``work``."""
    return [work[rows * r[layout.OUT_OFF]:rows * (r[layout.OUT_OFF] + r[layout.N_OUT])]
            .reshape(rows, int(r[layout.N_OUT])) for r in table]


@checked
def forward(X, params, table, work, raw_out):
    """raw_out = the network's output before the output activation, for rows X."""
    _check_table(table, params)
    n = X.shape[0]
    _check(X.ndim == 2 and X.shape[1] == table[0, layout.N_IN],
           f"X must have the first layer's {table[0, layout.N_IN]} columns")
    _check(raw_out.shape == (n, table[-1, layout.N_OUT]),
           f"raw_out must have shape ({n}, {table[-1, layout.N_OUT]})")
    _check(work.shape[0] >= layout.forward_workspace_size(table, n),
           "work is smaller than forward_workspace_size")
    layers = _layers(table, params)
    outs = _outputs(work, table[:-1], n) + [raw_out]
    a = X
    for row, (W, b, act, slope), z in zip(table, layers, outs):
        _layer_forward(row, a, W, b, act, slope, 1.0, z)
        a = z


def _image(a, row, side):
    """The (n, C, H, W) view of a layer's (n, N) input (side "in") or output ("out")."""
    c, h, w = ((layout.IN_C, layout.IN_H, layout.IN_W) if side == "in"
               else (layout.OUT_C, layout.OUT_H, layout.OUT_W))
    return a.reshape(a.shape[0], int(row[c]), int(row[h]), int(row[w]))


def _window(row):
    """A conv or pool row's (stride_h, stride_w, pad_h, pad_w)."""
    return tuple(int(row[i]) for i in (layout.SH, layout.SW, layout.PH, layout.PW))


def _layer_forward(row, a, W, b, act, slope, scale_in, z):
    """z = layer ``row``'s output for its input ``a`` (n, N_IN); a dense layer's product
    scaled by ``scale_in`` (the dropout of its input, 1 without)."""
    op = row[layout.OP]
    if op == layout.DENSE:
        np.matmul(a, W, out=z)
        z[...] = z.astype(np.float64) * scale_in + b
        activation(z, act, slope, z)
    elif op == layout.CONV2D:
        conv2d_forward(_image(a, row, "in"), W, b, *_window(row), act, slope,
                       _image(z, row, "out"))
    else:
        maxpool2d_forward(_image(a, row, "in"), int(row[layout.KH]), int(row[layout.KW]),
                          *_window(row), _image(z, row, "out"))
        activation(z, act, slope, z)


def _layer_backward_delta(row, delta, W, a_prev, act_prev, slope_prev, delta_prev):
    """delta_prev = d loss / d z of the layer before ``row`` (f' taken from its output
    a_prev), from this layer's ``delta``."""
    op = row[layout.OP]
    if op == layout.DENSE:
        dense_backward_delta(delta, W, a_prev, act_prev, slope_prev, delta_prev)
    elif op == layout.CONV2D:
        conv2d_backward_delta(_image(delta, row, "out"), W, _image(a_prev, row, "in"),
                              *_window(row), act_prev, slope_prev,
                              _image(delta_prev, row, "in"))
    else:
        maxpool2d_backward_delta(_image(delta, row, "out"), _image(a_prev, row, "in"),
                                 int(row[layout.KH]), int(row[layout.KW]), *_window(row),
                                 act_prev, slope_prev, _image(delta_prev, row, "in"))


@checked
def forward_backward(X, Y, sample_weight, params, table, loss, loss_param, alpha,
                     grads_out, work, seed=0, step=0):
    """Loss and gradient of one batch, scikit-learn's convention.

    Returns (data_loss, penalty): data_loss = sum_i w_i loss_i (raw outputs, output
    activation fused into ``loss``), penalty = alpha / 2 * sum ||W||**2 (weights only).
    grads_out = d (data_loss + penalty) / d params / sum_i w_i; a zero weight sum raises
    ZeroDivisionError (train_epoch skips such batches).

    Layers with dropout (the table's DROP, p_l) drop their output units with the masks
    of (``seed``, ``step``, l) (``dropout_``), as train_epoch does in the batch that
    makes update ``step``. The workspace keeps a layer's output masked but unscaled,
    a_l = m_l * f_l(z_l), so that f' stays exact; the next layer applies the scale
    s_l = 1 / (1 - p_l):
        z_{l+1} = (a_l @ W_{l+1}) * s_l + b_{l+1}
        dW_{l+1} = (a_l.T @ delta_{l+1}) * s_l
        delta_l = m_l * s_l * (delta_{l+1} @ W_{l+1}.T) * f_l'(z_l)
    (the products by s_l in float64, stored in the dtype; with no dropout s_l = 1 and
    each is exact).
    """
    _check_table(table, params)
    _check_data(X, Y, sample_weight, table)
    _check_loss(loss)
    _check(min(seed, step) >= 0, "seed and step must be at least 0")
    n, width = X.shape[0], layout.width(table)
    _check(grads_out.shape == params.shape, "grads_out must have the size of params")
    _check(work.shape[0] >= layout.forward_backward_workspace_size(table, n),
           "work is smaller than forward_backward_workspace_size")
    layers = _layers(table, params)
    dcoefs, dintercepts = layout.unflatten(grads_out, table)
    loss_out = work[:n]
    acts = _outputs(work[n:], table, n)
    deltas = _outputs(work[n + n * width:], table, n)
    L = len(layers)
    drop = [layout.drop_p(table, l) for l in range(L)]
    keys = [_dropout_key(seed, step, l) for l in range(L)]
    scale_in = [1.0] + [1.0 / (1.0 - p) for p in drop[:-1]]  # layer l's input scale
    a = X
    for l, (W, b, act, slope) in enumerate(layers):
        z = acts[l]
        _layer_forward(table[l], a, W, b, act, slope, scale_in[l], z)
        if drop[l]:
            _drop_(z, keys[l], drop[l], 1.0)
        a = z
    name, has_param = LOSS_KERNELS[loss]
    extra = (loss_param,) if has_param else ()
    data_loss = globals()[name](Y, acts[-1], sample_weight, *extra, loss_out, deltas[-1])
    coefs64 = layout.unflatten(params.astype(np.float64), table)[0]
    penalty = 0.5 * alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in coefs64)
    sw = float(np.sum(sample_weight, dtype=np.float64))
    if sw == 0.0:
        raise ZeroDivisionError("forward_backward: sample_weight sums to zero")
    scale = 1.0 / sw
    for l in range(L - 1, -1, -1):
        row, a_prev = table[l], acts[l - 1] if l else X
        if row[layout.OP] == layout.DENSE:
            dense_backward(a_prev, deltas[l], dcoefs[l], dintercepts[l])
        elif row[layout.OP] == layout.CONV2D:
            conv2d_backward(_image(a_prev, row, "in"), _image(deltas[l], row, "out"),
                            *_window(row), dcoefs[l], dintercepts[l])
        if l:
            _, _, act_prev, slope_prev = layers[l - 1]
            _layer_backward_delta(row, deltas[l], layers[l][0], a_prev, act_prev,
                                  slope_prev, deltas[l - 1])
            if drop[l - 1]:
                _drop_(deltas[l - 1], keys[l - 1], drop[l - 1], scale_in[l])
    grads = grads_out.astype(np.float64)
    for dW, W, s in zip(layout.unflatten(grads, table)[0], coefs64, scale_in):
        dW *= s
        dW += alpha * W
    grads_out[:] = grads * scale
    return data_loss, penalty


@checked
def train_epoch(X, Y, sample_weight, perm, batch_size, params, table, loss, loss_param,
                alpha, optimizer, config, state, step, grads, work, loss_sum=0.0,
                penalty_sum=0.0, seed=0):
    """One epoch of mini-batch training: rows X[perm[s:s + batch_size]] per batch, where
    ``perm`` (int64) lists the epoch's rows, each in [0, n_rows): a permutation of
    range(n_rows), or one slice of it (batch-aligned) when an epoch runs in several calls.

    Each batch: forward, fused loss-and-gradient, backward (``forward_backward``), then
    one optimizer update of the flat ``params``. ``optimizer`` (scikit-learn's rules) and
    ``config`` (float64, its slots named in fastnn.kernels: LR, MOMENTUM, BETA1, BETA2,
    EPSILON, each with one meaning):
      SGD, SGD_NESTEROV: sgd_velocity_step_ with LR, MOMENTUM; state[0] = velocity;
      ADAM:    adam_step_ with c1 = sqrt(1 - BETA2**t) / (1 - BETA1**t), c2 = 1,
               EPSILON outside the root; state[0] = m, state[1] = v;
      RMSPROP: rmsprop_step_ (not centered) with decay BETA2, EPSILON, MOMENTUM and bias
               correction 1 / (1 - BETA2**t); state[0] = square average, state[1] =
               momentum buffer.
    ``step`` is the number of updates made before (t counts from step + 1). A batch whose
    weights sum to zero is skipped. A batch whose loss is not finite stops the epoch
    before its update. The batch that makes update t drops units with the masks of
    (``seed``, t) (``forward_backward``; the table's DROP), so that slices of an epoch,
    and epochs, give the masks one call would.

    Returns (loss_sum, penalty_sum, step, nonfinite): the sums over batches of
    batch_rows * data_loss / sum(w) and batch_rows * penalty / sum(w) (so that
    (loss_sum + penalty_sum) / n_rows is scikit-learn's loss_), the updated step count
    and 1 if a non-finite loss stopped the epoch, else 0. The sums start from the
    ``loss_sum`` and ``penalty_sum`` passed in (an epoch's earlier slices), so an epoch
    run as consecutive slices of its permutation, carrying ``step`` and the sums from
    call to call, gives bit for bit what one call gives.
    """
    n, B = X.shape[0], batch_size
    if perm.ndim != 1 or (perm.size and (perm.min() < 0 or perm.max() >= n)):
        raise ValueError(f"perm must be 1-D with every value in [0, {n})")
    _check_table(table, params)
    _check_data(X, Y, sample_weight, table)
    _check_loss(loss)
    if B < 1:
        raise ValueError(f"batch_size is {B}, expected at least 1")
    _check(optimizer in (SGD, SGD_NESTEROV, ADAM, RMSPROP), f"unknown optimizer code {optimizer}")
    rows = 1 if optimizer in (SGD, SGD_NESTEROV) else 2
    _check(state.ndim == 2 and state.shape[0] >= rows and state.shape[1] == params.shape[0],
           f"state must have shape ({rows}, params.size) or more rows")
    _check(grads.shape == params.shape, "grads must have the size of params")
    _check(work.shape[0] >= layout.train_workspace_size(table, B),
           "work is smaller than train_workspace_size")
    if config.shape != (N_CONFIG,):
        raise ValueError(f"config must have shape ({N_CONFIG},) (fastnn.kernels.CONFIG)")
    _check(seed >= 0, "seed must be at least 0")
    n_in, n_out = int(table[0, layout.N_IN]), int(table[-1, layout.N_OUT])
    Xb = work[:B * n_in].reshape(B, n_in)
    Yb = work[B * n_in:B * (n_in + n_out)].reshape(B, n_out)
    wb, fb_work = work[B * (n_in + n_out):B * (n_in + n_out + 1)], work[B * (n_in + n_out + 1):]
    lr, momentum, beta1, beta2, eps = (float(config[i]) for i in (LR, MOMENTUM, BETA1,
                                                                   BETA2, EPSILON))
    loss_sum, penalty_sum = float(loss_sum), float(penalty_sum)
    for start in range(0, len(perm), B):
        idx = perm[start:start + B]
        nb = len(idx)
        xb, yb, w = Xb[:nb], Yb[:nb], wb[:nb]
        xb[...] = X[idx]
        yb[...] = Y[idx]
        w[...] = sample_weight[idx]
        sw = float(np.sum(w, dtype=np.float64))
        if sw == 0.0:
            continue
        data_loss, penalty = forward_backward(xb, yb, w, params, table, loss, loss_param,
                                              alpha, grads, fb_work, seed, step + 1)
        if not np.isfinite(data_loss + penalty):
            return loss_sum, penalty_sum, step, 1
        loss_sum += nb * data_loss / sw
        penalty_sum += nb * penalty / sw
        step += 1
        if optimizer == SGD or optimizer == SGD_NESTEROV:
            sgd_velocity_step_(params, grads, state[0], lr, momentum, optimizer == SGD_NESTEROV)
        elif optimizer == ADAM:
            c1 = np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
            adam_step_(params, grads, state[0], state[1], lr, beta1, beta2, 0.0, False,
                       c1, 1.0, 0.0, eps)
        elif optimizer == RMSPROP:
            rmsprop_step_(params, grads, state[0], state[0][:0], state[1], lr, beta2, eps,
                          0.0, momentum, False, 1.0 / (1.0 - beta2**step))
        else:
            raise ValueError(f"unknown optimizer code {optimizer}")
    return loss_sum, penalty_sum, step, 0


def _check_models(K, **arrays):
    """Every per-model array of train_epoch_many or forward_many has K rows, one per
    model."""
    for name, a in arrays.items():
        _check(a.shape[0] == K, f"{name} has {a.shape[0]} rows, expected one per model "
                                f"(params has {K})")


@checked
def forward_many(X, perm, counts, params, table, work, raw_out):
    """K models of one network ``table``, each on its own rows of X, in one call: for
    every k,

        forward(X[perm[k, :counts[k]]], params[k], table, work[k], raw_out[k, :counts[k]])

    (model k's rows gathered at the start of work[k]), so model k's outputs are bit for
    bit those of ``forward`` alone on its rows; raw_out[k, counts[k]:] is left as it is.
    Scores each fold's held-out rows with its own models (MLPRegressorCV).

    Shapes: perm (K, m) int64 with 0 <= counts[k] <= m; params (K, n_params); work (K,
    >= forward_many_workspace_size(table, m)); raw_out (K, m, the last layer's N_OUT).
    """
    K = params.shape[0]
    _check_table(table, params[0] if K else params.reshape(-1))
    _check_models(K, perm=perm, counts=counts, work=work, raw_out=raw_out)
    m = perm.shape[1]
    _check(X.ndim == 2 and X.shape[1] == table[0, layout.N_IN],
           f"X must have the first layer's {table[0, layout.N_IN]} columns")
    _check(raw_out.shape[1:] == (m, table[-1, layout.N_OUT]),
           f"raw_out must have shape ({K}, {m}, {table[-1, layout.N_OUT]})")
    _check(work.shape[1] >= layout.forward_many_workspace_size(table, m),
           "work is smaller than forward_many_workspace_size")
    _check(((counts >= 0) & (counts <= m)).all(), f"counts must be in [0, {m}] (perm's "
                                                  "columns)")
    for k in range(K):
        rows = perm[k, :counts[k]]
        _check(rows.size == 0 or (rows.min() >= 0 and rows.max() < X.shape[0]),
               f"perm[{k}] has an index out of range for {X.shape[0]} rows")
    n_in = int(table[0, layout.N_IN])
    for k in range(K):
        c = int(counts[k])
        if c == 0:
            continue
        xk = work[k, :c * n_in].reshape(c, n_in)
        xk[...] = X[perm[k, :c]]
        forward(xk, params[k], table, work[k, m * n_in:], raw_out[k, :c])


@checked
def train_epoch_many(X, Y, sample_weight, perm, counts, batch_size, params, table, loss,
                     loss_param, alpha, optimizer, config, state, step, grads, work, sums,
                     seed, active, nonfinite_out):
    """K models of one network ``table`` each trained one epoch (or one slice of an
    epoch), in one call: for every k with ``active[k] != 0``,

        sums[k, 0], sums[k, 1], step[k], nonfinite_out[k] = train_epoch(
            X, Y, sample_weight[k], perm[k, :counts[k]], batch_size[k], params[k], table,
            loss, loss_param[k], alpha[k], optimizer, config[k], state[k], step[k],
            grads[k], work[k], sums[k, 0], sums[k, 1], seed[k])

    so that model k's result is bit for bit what ``train_epoch`` gives it alone. The
    models share the rows (X, Y), the table, the loss and the optimizer; each has its own
    rows to train on (perm[k]'s first counts[k]: a fold's rows, shuffled), batch size
    (scikit-learn's "auto" depends on the fold's size), sample weights
    (class weights differ between folds), parameters, optimizer state, step count,
    config (its learning rate, betas, ...), loss parameter (Huber's delta), alpha,
    dropout seed and workspace (grads[k], work[k]: train_workspace_size). An inactive
    model's arrays are left as they are and its nonfinite_out[k] is 0.

    Shapes: sample_weight (K, n_rows); perm (K, m) int64 with 0 <= counts[k] <= m;
    params, grads (K, n_params); state (K, 1 or 2, n_params); work (K, >= the
    workspace); config (K, N_CONFIG), loss_param, alpha, sums (K,) (K, 2) float64;
    batch_size, step, seed, active, nonfinite_out (K,) int64.
    """
    K = params.shape[0]
    _check_models(K, sample_weight=sample_weight, perm=perm, counts=counts,
                  batch_size=batch_size,
                  loss_param=loss_param, alpha=alpha, config=config, state=state, step=step,
                  grads=grads, work=work, sums=sums, seed=seed, active=active,
                  nonfinite_out=nonfinite_out)
    _check(sums.shape[1] == 2, "sums must have shape (K, 2): each model's loss_sum, "
                               "penalty_sum")
    _check(((counts >= 0) & (counts <= perm.shape[1])).all(),
           f"counts must be in [0, {perm.shape[1]}] (perm's columns)")
    _check(sample_weight.shape[1] == X.shape[0], "sample_weight must have one column per "
                                                 "row of X")
    for k in range(K):  # every model's rows before any model trains
        rows = perm[k, :counts[k]]
        _check(rows.size == 0 or (rows.min() >= 0 and rows.max() < X.shape[0]),
               f"perm[{k}] has an index out of range for {X.shape[0]} rows")
    for k in range(K):
        nonfinite_out[k] = 0
        if not active[k]:
            continue
        loss_sum, penalty_sum, step_k, nonfinite = train_epoch(
            X, Y, sample_weight[k], perm[k, :counts[k]], int(batch_size[k]), params[k], table,
            loss, float(loss_param[k]), float(alpha[k]), optimizer, config[k], state[k],
            int(step[k]), grads[k], work[k], float(sums[k, 0]), float(sums[k, 1]),
            int(seed[k]))
        sums[k] = loss_sum, penalty_sum
        step[k], nonfinite_out[k] = step_k, nonfinite
