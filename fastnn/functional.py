"""Losses and activations with PyTorch's names and semantics, on NumPy arrays.

Each function validates its input, allocates the outputs and calls one kernel of the
chosen backend (``backend=None`` means "auto", see :func:`fastnn.available_backends`).

Losses take ``reduction`` = "mean" (weighted: ``sum(w * l) / sum(w)``, ``w`` broadcast
over the non-batch axes), "sum" or "none" (per element, or per sample for
``cross_entropy``, multiplied by its weight). ``sample_weight`` has one weight per
sample (the first axis). With ``return_grad=True`` a loss returns
``(value, d value / d input)``; for reduction "none" the gradient holds the derivative of
each element's (sample's) own loss.

Unlike PyTorch, NaN or infinite values are refused with a ValueError rather than
propagated, and only float32 and float64 inputs are accepted (the result keeps the dtype).

>>> import numpy as np
>>> from fastnn import functional as F
>>> round(F.l1_loss(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])), 4)
0.6667
>>> round(F.cross_entropy(np.array([[0.1, 0.2, 0.3]]), np.array([1])), 4)
1.1019
"""

import re
import textwrap

import numpy as np

from . import _backends
from . import kernels as _k

__all__ = [
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "quantile_loss",
    "poisson_nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "softmax",
]

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- docstrings

# The paragraphs that every loss (or activation) documents alike, written once. In a
# docstring, a line holding only "{name}" becomes _DOC[name], indented as that line, so
# each function's __doc__ (help(), doctests, numpydoc) is complete in itself.
_DOC = {
    "reduction": """\
reduction : {"mean", "sum", "none"}, default="mean"
    "mean": ``sum(w * l) / sum(w)`` over all elements (``w`` is each element's sample
    weight); "sum": ``sum(w * l)``; "none": ``w * l`` per element.""",
    "sample_weight": """\
sample_weight : array-like of shape (n_samples,), default=None
    Non-negative weight of each sample (the first axis); None weighs every sample 1.""",
    "backend": """\
backend : {None, "auto", "numpy", "numba", "cython"}, default=None
    Kernel implementation; None and "auto" mean the fastest available one.""",
    "return_grad": """\
return_grad : bool, default=False
    Also return the gradient of the result with respect to the input.""",
    "loss_returns": """\
Returns
-------
loss : float, or ndarray of the input's shape and dtype for reduction="none"
grad : ndarray of the input's shape and dtype
    Only with ``return_grad=True``: d loss / d input (with reduction="none", the
    derivative of each element's own weighted loss).""",
    "loss_raises": """\
Raises
------
ValueError
    For non-float, NaN or infinite input, mismatched shapes, an unknown reduction or
    backend, negative weights{errors}.""",
    "activation_returns": """\
Returns
-------
ndarray
    f(x) elementwise, the input's shape and dtype.""",
}
_PLACEHOLDER = re.compile(r"^( *)\{(\w+)\}$", re.MULTILINE)


def _shared_doc(errors=""):
    """Decorator: fill the ``{name}`` lines of the function's docstring from _DOC;
    ``errors`` ends the loss_raises sentence (the function's own ValueErrors)."""

    def fill(match):
        paragraph = _DOC[match[2]].replace("{errors}", errors)
        return textwrap.indent(paragraph, match[1])

    def decorate(func):
        if func.__doc__:  # None under python -OO
            func.__doc__ = _PLACEHOLDER.sub(fill, func.__doc__)
        return func

    return decorate


# --------------------------------------------------------------------------- validation


def _as_float(x, name, dtype=None):
    """x as a float32/float64 array (``dtype`` forces one), refusing anything else."""
    x = np.asarray(x)
    if dtype is None:
        if x.dtype not in (np.float32, np.float64):
            raise ValueError(
                f"{name} must be a float32 or float64 array, got dtype {x.dtype}"
            )
        dtype = x.dtype
    elif x.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    x = np.asarray(x, dtype=dtype)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")


def _sample_weight(sample_weight, n, dtype):
    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    w = _as_float(sample_weight, "sample_weight", dtype)
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must have shape ({n},), one weight per sample, got {w.shape}"
        )
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    return w


def _pair(input, target):
    x = _as_float(input, "input")
    y = _as_float(target, "target", x.dtype)
    if x.shape != y.shape:
        raise ValueError(
            f"input and target must have the same shape, got {x.shape} and {y.shape}"
        )
    return x, y


# --------------------------------------------------------------------------- losses


def _reduce(total, loss, grad, weight_sum, reduction, return_grad):
    """Apply the reduction to the kernel's weighted sum, per-item loss and gradient."""
    if reduction == "none":
        value = loss
    elif reduction == "sum":
        value = total
    else:
        if weight_sum == 0:
            raise ValueError(
                "reduction='mean' needs a positive total weight: the input is empty "
                "or sample_weight sums to zero"
            )
        value = total / weight_sum
        if return_grad:
            grad = grad / grad.dtype.type(weight_sum)
    return (value, grad) if return_grad else value


def _elementwise(kernel_name, input, target, extra, reduction, sample_weight, backend):
    """Run an elementwise loss kernel with every element as its own row."""
    _check_reduction(reduction)
    kernels = _backends.get_kernels(backend)
    x, y = _pair(input, target)
    shape = x.shape
    n = shape[0] if x.ndim else 1
    w = _sample_weight(sample_weight, n, x.dtype)
    w_el = np.ascontiguousarray(np.broadcast_to(w.reshape((-1,) + (1,) * (x.ndim - 1)), shape)).reshape(-1)
    raw = np.ascontiguousarray(x).reshape(-1, 1)
    loss_out = np.empty(raw.shape[0], dtype=x.dtype)
    gradient_out = np.empty_like(raw)
    total = getattr(kernels, kernel_name)(
        np.ascontiguousarray(y).reshape(-1, 1), raw, w_el, *extra, loss_out, gradient_out
    )
    loss = (loss_out * w_el).reshape(shape)
    return total, loss, gradient_out.reshape(shape), float(w_el.sum(dtype=np.float64))


def _loss(kernel_name, input, target, extra, reduction, sample_weight, backend,
          return_grad, scale=1.0):
    total, loss, grad, wsum = _elementwise(
        kernel_name, input, target, extra, reduction, sample_weight, backend
    )
    if scale != 1.0:
        total, loss, grad = scale * total, scale * loss, scale * grad
    return _reduce(total, loss, grad, wsum, reduction, return_grad)


@_shared_doc()
def mse_loss(input, target, *, reduction="mean", sample_weight=None, backend=None,
             return_grad=False):
    """Mean squared error: l = (input - target)**2, gradient 2 (input - target).

    PyTorch's convention (no half); the estimators use half the squared error.

    Parameters
    ----------
    input : ndarray of float32 or float64
        Predictions, any shape; the first axis is the sample axis.
    target : array-like
        Targets of the same shape (converted to the input's dtype).
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> print(F.mse_loss(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])))
    1.3333333333333333
    >>> value, grad = F.mse_loss(np.array([1.0, 3.0]), np.zeros(2), return_grad=True)
    >>> print(value, grad)
    5.0 [1. 3.]
    """
    return _loss("half_squared_error_loss_gradient", input, target, (), reduction,
                 sample_weight, backend, return_grad, scale=2.0)


@_shared_doc()
def l1_loss(input, target, *, reduction="mean", sample_weight=None, backend=None,
            return_grad=False):
    """Absolute error: l = |input - target|, gradient sign(input - target) (0 at a tie).

    Parameters
    ----------
    input : ndarray of float32 or float64
        Predictions, any shape; the first axis is the sample axis.
    target : array-like
        Targets of the same shape (converted to the input's dtype).
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> print(F.l1_loss(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), reduction="sum"))
    2.0
    >>> _, grad = F.l1_loss(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]),
    ...                     reduction="sum", return_grad=True)
    >>> grad
    array([ 0.,  0., -1.])
    """
    return _loss("absolute_error_loss_gradient", input, target, (), reduction,
                 sample_weight, backend, return_grad)


@_shared_doc(errors=", delta <= 0")
def huber_loss(input, target, *, reduction="mean", delta=1.0, sample_weight=None,
               backend=None, return_grad=False):
    """Huber loss: r**2 / 2 for |r| <= delta, delta (|r| - delta / 2) beyond; r = input - target.

    The gradient is clip(r, -delta, delta): squared error near zero, absolute error (scaled
    by delta) for outliers.

    Parameters
    ----------
    input : ndarray of float32 or float64
        Predictions, any shape; the first axis is the sample axis.
    target : array-like
        Targets of the same shape (converted to the input's dtype).
    {reduction}
    delta : float, default=1.0
        Where the loss turns from quadratic to linear; positive and finite.
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.huber_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none")
    array([0.125, 2.5  ])
    >>> _, grad = F.huber_loss(np.array([0.5, 3.0, -3.0]), np.zeros(3), delta=2.0,
    ...                        reduction="sum", return_grad=True)
    >>> grad
    array([ 0.5,  2. , -2. ])
    """
    delta = float(delta)
    if not delta > 0 or not np.isfinite(delta):
        raise ValueError(f"delta must be a positive finite number, got {delta}")
    return _loss("huber_loss_gradient", input, target, (delta,), reduction,
                 sample_weight, backend, return_grad)


@_shared_doc(errors=", quantile outside (0, 1)")
def quantile_loss(input, target, *, quantile=0.5, reduction="mean", sample_weight=None,
                  backend=None, return_grad=False):
    """Quantile (pinball) loss: l = q max(target - input, 0) + (1 - q) max(input - target, 0).

    The gradient is 1 - q where input > target, -q where input < target and 0 at a tie
    (as l1_loss's): minimising the mean makes input the q-quantile of target. PyTorch has
    no such loss; "mean" is scikit-learn's ``mean_pinball_loss(alpha=q)`` (over all
    elements: for several outputs, the uniform average of theirs), and q = 0.5 gives half
    of l1_loss.

    Parameters
    ----------
    input : ndarray of float32 or float64
        Predictions, any shape; the first axis is the sample axis.
    target : array-like
        Targets of the same shape (converted to the input's dtype).
    quantile : float, default=0.5
        The quantile q predicted, in (0, 1).
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.quantile_loss(np.array([0.0, 0.0]), np.array([1.0, -1.0]), quantile=0.9,
    ...                 reduction="none")
    array([0.9, 0.1])
    """
    quantile = float(quantile)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return _loss("quantile_loss_gradient", input, target, (quantile,), reduction,
                 sample_weight, backend, return_grad)


@_shared_doc(errors=", eps <= 0, negative rates with log_input=False")
def poisson_nll_loss(input, target, *, log_input=True, full=False, eps=1e-8,
                     reduction="mean", sample_weight=None, backend=None, return_grad=False):
    """Poisson negative log-likelihood, as PyTorch's.

    log_input=True: l = exp(input) - target * input (input is the log of the rate);
    log_input=False: l = input - target * log(input + eps) (input is the rate, >= 0).
    full=True adds Stirling's term target log(target) - target + log(2 pi target) / 2 for
    target > 1 (it does not depend on the input, so the gradient is unchanged).

    Parameters
    ----------
    input : ndarray of float32 or float64
        Log-rates (log_input=True) or rates (log_input=False, non-negative).
    target : array-like
        Counts (non-negative), the input's shape.
    log_input : bool, default=True
        Whether ``input`` is the log of the rate.
    full : bool, default=False
        Add Stirling's approximation of log(target!).
    eps : float, default=1e-8
        Added to the rate before the log when log_input=False; positive.
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> print(round(float(F.poisson_nll_loss(np.array([0.0]), np.array([2.0]))), 4))
    1.0
    >>> print(round(float(F.poisson_nll_loss(np.array([1.0]), np.array([1.0]), log_input=False)), 4))
    1.0
    """
    eps = float(eps)
    if not eps > 0 or not np.isfinite(eps):
        raise ValueError(f"eps must be a positive finite number, got {eps}")
    x = _as_float(input, "input")
    if log_input:
        rate = None
        raw = x
    else:
        if np.any(x < 0):
            raise ValueError("input must be non-negative when log_input=False (it is the rate)")
        rate = x + x.dtype.type(eps)
        raw = np.log(rate)
    total, loss, grad, wsum = _elementwise(
        "poisson_loss_gradient", raw, target, (), reduction, sample_weight, backend
    )
    if full or rate is not None:
        weights = _weights_like(x, sample_weight)
    if rate is not None:  # the kernel's exp(log(input + eps)) is input + eps: take eps off
        total -= eps * wsum
        loss = loss - weights * x.dtype.type(eps)
        grad = grad / rate
    if full:
        y = _as_float(target, "target", x.dtype).astype(np.float64)
        safe = np.where(y > 1, y, 1.0)
        stirling = np.where(y > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)
        weighted = weights * stirling
        total += float(weighted.sum())
        loss = loss + weighted.astype(x.dtype)
    return _reduce(total, loss, grad, wsum, reduction, return_grad)


def _weights_like(x, sample_weight):
    """The per-sample weights broadcast to x's shape."""
    n = x.shape[0] if x.ndim else 1
    w = _sample_weight(sample_weight, n, x.dtype)
    return np.broadcast_to(w.reshape((-1,) + (1,) * (x.ndim - 1)), x.shape)


@_shared_doc(errors=", probabilities outside [0, 1], eps outside (0, 0.5)")
def binary_cross_entropy(probs, target, *, eps=None, reduction="mean", sample_weight=None,
                         backend=None, return_grad=False):
    """Clipped binary log-loss on probabilities.

    l = -target log(p) - (1 - target) log(1 - p), p = clip(probs, eps, 1 - eps), with
    eps = np.finfo(dtype).eps by default (scikit-learn's rule; PyTorch clamps the log at
    -100 instead). The gradient is (p - target) / (p (1 - p)) at the clipped p.

    Parameters
    ----------
    probs : ndarray of float32 or float64
        Probabilities in [0, 1]; the first axis is the sample axis.
    target : array-like
        Targets in [0, 1], the same shape.
    eps : float, default=None
        Clipping bound in (0, 0.5); None means ``np.finfo(probs.dtype).eps``.
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> print(round(float(F.binary_cross_entropy(np.array([0.5, 0.9]), np.array([1.0, 1.0]))), 4))
    0.3993
    >>> F.binary_cross_entropy(np.array([0.0]), np.array([1.0]), reduction="none")  # clipped
    array([36.04365339])
    """
    x = _as_float(probs, "probs")
    eps = np.finfo(x.dtype).eps if eps is None else float(eps)
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    if np.any((x < 0) | (x > 1)):
        raise ValueError("probs must lie in [0, 1]")
    return _loss("binary_log_loss_proba_gradient", x, target, (eps,), reduction,
                 sample_weight, backend, return_grad)


@_shared_doc()
def binary_cross_entropy_with_logits(logits, target, *, reduction="mean", sample_weight=None,
                                     backend=None, return_grad=False):
    """Binary log-loss on logits z, computed stably: l = softplus(-z) y + softplus(z) (1 - y).

    Exact, with no clipping (PyTorch's semantics); the gradient is sigmoid(z) - target.

    Parameters
    ----------
    logits : ndarray of float32 or float64
        Raw scores z, any shape; the first axis is the sample axis.
    target : array-like
        Targets in [0, 1], the same shape.
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> value, grad = F.binary_cross_entropy_with_logits(np.array([0.0, 1e4]), np.array([1.0, 1.0]),
    ...                                                  reduction="none", return_grad=True)
    >>> print(value.round(4), grad)
    [0.6931 0.    ] [-0.5  0. ]
    """
    return _loss("binary_log_loss_gradient", logits, target, (0.0,), reduction,
                 sample_weight, backend, return_grad)


@_shared_doc(errors=", class indices out of range")
def cross_entropy(logits, target, *, reduction="mean", sample_weight=None, backend=None,
                  return_grad=False):
    """Softmax cross-entropy: l = logsumexp(z) - z[target] per sample, from logits z (N, C).

    ``target`` holds class indices (N,) or class probabilities (N, C) (then
    l = -sum_c target_c log softmax(z)_c). A 1-D ``logits`` (C,) is one sample. The
    gradient is softmax(z) - onehot(target). No clipping (PyTorch's semantics).

    Parameters
    ----------
    logits : ndarray of float32 or float64, shape (N, C) or (C,)
        Raw class scores.
    target : array-like
        Class indices, integer shape (N,) (or a scalar for 1-D logits), or class
        probabilities of the logits' shape.
    {reduction}
    {sample_weight}
    {backend}
    {return_grad}

    {loss_returns}

    {loss_raises}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> print(round(float(F.cross_entropy(np.array([[0.1, 0.2, 0.3]]), np.array([1]))), 4))
    1.1019
    >>> _, grad = F.cross_entropy(np.array([[0.0, 0.0]]), np.array([0]), return_grad=True)
    >>> grad
    array([[-0.5,  0.5]])
    """
    _check_reduction(reduction)
    kernels = _backends.get_kernels(backend)
    z = _as_float(logits, "logits")
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (N, C) or (C,), got {z.shape}")
    unbatched = z.ndim == 1
    z2 = np.ascontiguousarray(z.reshape(1, -1) if unbatched else z)
    n, c = z2.shape
    t = np.asarray(target)
    if t.dtype.kind in "biu":
        indices = t.reshape(1) if unbatched and t.ndim == 0 else t
        if indices.shape != (n,):
            raise ValueError(
                f"class-index target must have shape ({n},) for logits of shape {z.shape}, "
                f"got {t.shape}"
            )
        if np.any((indices < 0) | (indices >= c)):
            raise ValueError(f"class indices must lie in [0, {c}), got values outside")
        y = np.zeros_like(z2)
        y[np.arange(n), indices] = 1
    else:
        y = _as_float(t, "target", z.dtype)
        if y.shape != z.shape:
            raise ValueError(
                f"probability target must have the shape of logits {z.shape}, got {y.shape}"
            )
        y = np.ascontiguousarray(y.reshape(z2.shape))
    w = _sample_weight(sample_weight, n, z.dtype)
    loss_out = np.empty(n, dtype=z.dtype)
    gradient_out = np.empty_like(z2)
    total = kernels.softmax_cross_entropy_loss_gradient(y, z2, w, 0.0, loss_out, gradient_out)
    loss = loss_out * w
    grad = gradient_out
    if unbatched:
        loss, grad = loss.reshape(()), grad.reshape(c)
    return _reduce(total, loss, grad, float(w.sum(dtype=np.float64)), reduction, return_grad)


# --------------------------------------------------------------------------- activations


def _activation(x, act, negative_slope, backend, axis=-1):
    kernels = _backends.get_kernels(backend)
    x = _as_float(x, "x")
    moved = np.moveaxis(x, axis, -1) if x.ndim else x.reshape(1)
    rows = np.ascontiguousarray(moved).reshape(-1, moved.shape[-1] if moved.ndim else 1)
    out = np.empty_like(rows)
    kernels.activation(rows, act, float(negative_slope), out)
    out = out.reshape(moved.shape)
    return np.moveaxis(out, -1, axis) if x.ndim else out.reshape(())


@_shared_doc()
def sigmoid(x, *, backend=None):
    """Logistic function 1 / (1 + exp(-x)), without overflow for large |x|.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Any shape.
    {backend}

    {activation_returns}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    return _activation(x, _k.LOGISTIC, 0.0, backend)


@_shared_doc()
def tanh(x, *, backend=None):
    """Hyperbolic tangent.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Any shape.
    {backend}

    {activation_returns}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.tanh(np.array([0.0, 100.0]))
    array([0., 1.])
    """
    return _activation(x, _k.TANH, 0.0, backend)


@_shared_doc()
def relu(x, *, backend=None):
    """max(x, 0).

    Parameters
    ----------
    x : ndarray of float32 or float64
        Any shape.
    {backend}

    {activation_returns}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.relu(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 3.])
    """
    return _activation(x, _k.RELU, 0.0, backend)


@_shared_doc()
def leaky_relu(x, negative_slope=0.01, *, backend=None):
    """x for x > 0, negative_slope * x otherwise.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Any shape.
    negative_slope : float, default=0.01
        Slope for x <= 0; finite.
    {backend}

    {activation_returns}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.leaky_relu(np.array([-2.0, 3.0]), negative_slope=0.1)
    array([-0.2,  3. ])
    """
    negative_slope = float(negative_slope)
    if not np.isfinite(negative_slope):
        raise ValueError(f"negative_slope must be finite, got {negative_slope}")
    return _activation(x, _k.LEAKY_RELU, negative_slope, backend)


@_shared_doc()
def softmax(x, axis=-1, *, backend=None):
    """exp(x) / sum(exp(x)) along ``axis``, computed with the maximum subtracted.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Any shape.
    axis : int, default=-1
        The axis that sums to 1; x needs at least one axis.
    {backend}

    Returns
    -------
    ndarray
        f(x) elementwise along ``axis``, the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import functional as F
    >>> F.softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    >>> F.softmax(np.array([[1000.0, 1000.0], [0.0, 0.0]]), axis=0)
    array([[1., 1.],
           [0., 0.]])
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("softmax needs at least one axis, got a 0-d array")
    return _activation(x, _k.SOFTMAX, 0.0, backend, axis=axis)
