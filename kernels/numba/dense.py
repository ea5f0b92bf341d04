"""Numba kernels of the dense layer: activations, their gradients, forward and backward.

Same names, signatures and semantics as ``fastnn.kernels.reference``, which holds the
full specification. Elementwise arithmetic runs in float64 and is stored in the array
dtype; the GEMMs are ``np.dot(x, y, out)``, which Numba sends to BLAS (scipy's
``cython_blas``) with C or F operands, ``a.T`` included, and no copy or temporary.
"""

import numpy as np

from .. import IDENTITY, LEAKY_RELU, LOGISTIC, RELU, SOFTMAX, TANH
from . import _vmath
from ._config import jit, kernel

# --------------------------------------------------------------------------- scalars
# logistic and tanh: _vmath.expit and _vmath.tanh (branch-free, so their loops vectorize;
# computed in float64 for float32 arrays too)


@jit
def _relu(z):
    """max(z, 0), NaN kept (as np.maximum)."""
    return 0.0 if z < 0.0 else z


@jit
def _leaky_relu(z, negative_slope):
    """z if z > 0 else negative_slope * z."""
    return z if z > 0.0 else negative_slope * z


@jit
def _softmax_rows(x, out):
    """out[i] = exp(x[i] - max x[i]) / sum exp(x[i] - max x[i]); ``out`` may be ``x``."""
    n, k = x.shape
    for i in range(n):
        m = -np.inf
        for j in range(k):
            if x[i, j] > m:
                m = float(x[i, j])
        s = 0.0
        for j in range(k):
            s += _vmath.exp(float(x[i, j]) - m)
        # exp again rather than storing it rounded to the dtype of out (or allocating)
        for j in range(k):
            out[i, j] = _vmath.exp(float(x[i, j]) - m) / s


@jit
def _softmax_grad_rows(a, delta):
    """delta[i] = a[i] * (delta[i] - a[i] . delta[i]): the softmax vector-Jacobian product."""
    n, k = a.shape
    for i in range(n):
        dot = 0.0
        for j in range(k):
            dot += float(a[i, j]) * float(delta[i, j])
        for j in range(k):
            delta[i, j] = float(a[i, j]) * (float(delta[i, j]) - dot)


@jit
def _vmath_inplace_(xf, act):
    """xf = logistic(xf) or tanh(xf) in place. With one array the loop vectorizes; with
    two, LLVM checks at run time that they do not overlap and runs a scalar loop (5x
    slower) when they are the same, as dense_forward calls it: so always in place."""
    if act == LOGISTIC:
        for i in range(xf.size):
            xf[i] = _vmath.expit(xf[i])
    else:
        for i in range(xf.size):
            xf[i] = _vmath.tanh(xf[i])


# --------------------------------------------------------------------------- checks
# Argument types are checked by the dispatcher (``kernel``, fastnn.kernels._checks);
# shapes and codes here, before anything is read or written. Messages are constants
# (compiled), and name the argument as the other implementations' do.


@jit
def _check_act(act):
    if act < IDENTITY or act > SOFTMAX:
        raise ValueError("act: unknown activation code")


@jit
def _check_act_prev(act_prev):
    if act_prev < IDENTITY or act_prev > SOFTMAX:
        raise ValueError("act_prev: unknown activation code")


# --------------------------------------------------------------------------- activations


@kernel
def activation(x, act, negative_slope, out):
    """out = f(x) elementwise (softmax: over each row, the last axis); ``out`` may be ``x``.

    identity; logistic 1 / (1 + exp(-x)); tanh; relu max(x, 0); leaky_relu x if x > 0
    else negative_slope * x; softmax exp(x - max x) / sum exp(x - max x).
    """
    _check_act(act)
    if out.shape != x.shape:
        raise ValueError("activation: out must have the shape of x")
    if x.size == 0:
        return
    if act == SOFTMAX:
        k = x.shape[-1]
        _softmax_rows(x.reshape((x.size // k, k)), out.reshape((x.size // k, k)))
        return
    xf = x.reshape(x.size)  # views: the arrays are C-contiguous
    of = out.reshape(out.size)
    if act == IDENTITY:
        for i in range(xf.size):
            of[i] = xf[i]
    elif act == LOGISTIC or act == TANH:
        if x.ctypes.data != out.ctypes.data:
            of[:] = xf
        _vmath_inplace_(of, act)
    elif act == RELU:
        for i in range(xf.size):
            of[i] = _relu(float(xf[i]))
    else:  # LEAKY_RELU
        for i in range(xf.size):
            of[i] = _leaky_relu(float(xf[i]), negative_slope)


@kernel
def activation_grad_(a, act, negative_slope, delta):
    """delta *= f'(z), the derivative taken from the forward output a = f(z).

    identity 1; logistic a (1 - a); tanh 1 - a**2; relu [a > 0]; leaky_relu 1 if a > 0
    else negative_slope; softmax (per row) delta <- a * (delta - sum_j a_j delta_j).
    """
    _check_act(act)  # as the reference: raises even when empty
    if delta.shape != a.shape:
        raise ValueError("activation_grad_: delta must have the shape of a")
    if act == IDENTITY or a.size == 0:
        return
    if act == SOFTMAX:
        k = a.shape[-1]
        _softmax_grad_rows(a.reshape((a.size // k, k)), delta.reshape((a.size // k, k)))
        return
    af = a.reshape(a.size)
    df = delta.reshape(delta.size)
    if act == LOGISTIC:
        for i in range(af.size):
            ai = float(af[i])
            df[i] = float(df[i]) * ai * (1.0 - ai)
    elif act == TANH:
        for i in range(af.size):
            ai = float(af[i])
            df[i] = float(df[i]) * (1.0 - ai * ai)
    elif act == RELU:
        for i in range(af.size):
            if not af[i] > 0.0:
                df[i] = 0.0
    else:  # LEAKY_RELU
        for i in range(af.size):
            if not af[i] > 0.0:
                df[i] = negative_slope * float(df[i])


# --------------------------------------------------------------------------- dropout
# reference._dropout_key and its masks, on uint64 throughout (Numba turns uint64 mixed
# with int64 into float64); uint64 arithmetic wraps modulo 2**64, as SplitMix64 needs.

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)


@jit
def _mix64(z):
    """SplitMix64's output function."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@jit
def _dropout_key(seed, step, layer):
    """mix64(mix64(mix64(seed) + step * G) + (layer + 1) * G); integers >= 0."""
    k = _mix64(np.uint64(seed)) + np.uint64(step) * _GAMMA
    return _mix64(_mix64(k) + (np.uint64(layer) + _ONE) * _GAMMA)


@jit
def _drop_(x, key, p, scale):
    """x[i, j] = x[i, j] * scale if unit u = i * k + j is kept, else 0; kept iff
    mix64(key + (u + 1) * G) >= floor(p * 2**64) (reference.dropout_threshold)."""
    n, k = x.shape
    thr = np.uint64(p * 18446744073709551616.0)
    for i in range(n):
        base = key + np.uint64(i * k) * _GAMMA
        for j in range(k):
            h = _mix64(base + np.uint64(j + 1) * _GAMMA)
            x[i, j] = float(x[i, j]) * scale if h >= thr else 0.0


@kernel
def dropout_(x, p, seed, step, layer):
    """Inverted dropout in place: x = x / (1 - p) where kept, 0 where dropped, with the
    masks of the training kernels (reference.dropout_)."""
    if not (p >= 0.0 and p < 1.0):
        raise ValueError("dropout_: p must be in [0, 1)")
    if seed < 0 or step < 0 or layer < 0:
        raise ValueError("dropout_: seed, step and layer must be at least 0")
    if p != 0.0:
        _drop_(x, _dropout_key(seed, step, layer), p, 1.0 / (1.0 - p))


# --------------------------------------------------------------------------- dense layer


@kernel
def dense_forward(a, W, b, act, negative_slope, z_out):
    """z_out = f(a @ W + b); a (n, n_in), W (n_in, n_out), b (n_out,), z_out (n, n_out)."""
    n, n_in = a.shape
    n_out = W.shape[1]
    _check_act(act)
    if W.shape[0] != n_in:
        raise ValueError("dense_forward: W must have shape (n_in, n_out), n_in the columns of a")
    if b.shape[0] != n_out:
        raise ValueError("dense_forward: b must have shape (n_out,), n_out the columns of W")
    if z_out.shape[0] != n or z_out.shape[1] != n_out:
        raise ValueError("dense_forward: z_out must have shape (n, n_out): a's rows, W's columns")
    _dense_forward_scaled(a, W, b, act, negative_slope, 1.0, z_out)


@jit
def _dense_forward_scaled(a, W, b, act, negative_slope, in_scale, z_out):
    """z_out = f((a @ W) * in_scale + b), shapes checked by the caller (in_scale: the
    previous layer's dropout scale, in training)."""
    n = a.shape[0]
    n_out = W.shape[1]
    np.dot(a, W, z_out)  # BLAS gemm straight into z_out
    if in_scale == 1.0:
        for i in range(n):
            for j in range(n_out):
                z_out[i, j] += b[j]  # in the dtype, as the reference's z_out += b
    else:
        for i in range(n):
            for j in range(n_out):
                z_out[i, j] = float(z_out[i, j]) * in_scale + float(b[j])
    if act != IDENTITY:
        activation(z_out, act, negative_slope, z_out)


@kernel
def dense_backward(a_prev, delta, dW_out, db_out):
    """dW_out = a_prev.T @ delta; db_out = delta summed over rows (in float64).

    ``delta`` is d loss / d z of this layer (n, n_out); ``a_prev`` its input (n, n_in).
    """
    n, n_in = a_prev.shape
    n_out = delta.shape[1]
    if delta.shape[0] != n:
        raise ValueError("dense_backward: delta must have shape (n, n_out), n the rows of a_prev")
    if dW_out.shape[0] != n_in or dW_out.shape[1] != n_out:
        raise ValueError("dense_backward: dW_out must have shape (n_in, n_out): a_prev's "
                         "columns, delta's columns")
    if db_out.shape[0] != n_out:
        raise ValueError("dense_backward: db_out must have shape (n_out,), n_out the columns "
                         "of delta")
    np.dot(a_prev.T, delta, dW_out)  # a_prev.T is F-contiguous: gemm with a transpose flag
    # column sums with float64 accumulators, four columns per pass over the rows: no
    # scratch buffer, and 2-4x faster than one column at a time
    j = 0
    while j + 4 <= n_out:
        s0 = s1 = s2 = s3 = 0.0
        for i in range(n):
            s0 += float(delta[i, j])
            s1 += float(delta[i, j + 1])
            s2 += float(delta[i, j + 2])
            s3 += float(delta[i, j + 3])
        db_out[j] = s0
        db_out[j + 1] = s1
        db_out[j + 2] = s2
        db_out[j + 3] = s3
        j += 4
    for jj in range(j, n_out):
        s = 0.0
        for i in range(n):
            s += float(delta[i, jj])
        db_out[jj] = s


@kernel
def dense_backward_delta(delta, W, a_prev, act_prev, negative_slope, delta_prev_out):
    """delta_prev_out = (delta @ W.T) * f'(z_prev), f' taken from a_prev = f(z_prev)."""
    n, n_out = delta.shape
    n_in = W.shape[0]
    _check_act_prev(act_prev)
    if W.shape[1] != n_out:
        raise ValueError("dense_backward_delta: W must have shape (n_in, n_out), n_out the "
                         "columns of delta")
    if a_prev.shape[0] != n or a_prev.shape[1] != n_in:
        raise ValueError("dense_backward_delta: a_prev must have shape (n, n_in): delta's "
                         "rows, W's rows")
    if delta_prev_out.shape[0] != n or delta_prev_out.shape[1] != n_in:
        raise ValueError("dense_backward_delta: delta_prev_out must have shape (n, n_in): "
                         "delta's rows, W's rows")
    np.dot(delta, W.T, delta_prev_out)  # W.T is F-contiguous: no copy
    activation_grad_(a_prev, act_prev, negative_slope, delta_prev_out)
