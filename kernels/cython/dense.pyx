"""Cython dense-layer kernels: activations, forward and backward passes.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Arrays are C-contiguous (n_samples, n_features); the GEMMs go to the BLAS through
scipy.linalg.cython_blas, everything else is a serial nogil loop in double precision. The
math is the pointer-based cores of _dense.pxd and _dropout.pxd, shared with train.pyx;
these wrappers check shapes and codes.

Each kernel is a Python-level function over a fused-type implementation (``_<name>``),
whose memoryviews refuse arrays of the wrong dtype, rank, layout or writeability; when a
call fails, the kernel raises fastnn.kernels._checks' error naming the argument instead
(the memoryviews' own messages name none), at no cost to calls that succeed.
"""

from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc

from _common cimport (
    IDENTITY, LEAKY_RELU, LOGISTIC, N_ACTIVATIONS, RELU, SOFTMAX, TANH, cptr1, cptr2, floating,
    ptr1, ptr2,
)
from _dense cimport (
    TRANSPOSE_MAX, activation_grad_rows, activation_rows, dense_backward_cols,
    dense_backward_delta_cols, dense_forward_cols, matmul_transposed,
)
from _dropout cimport Mask, drop_cols, dropout_mask

from .._checks import argument_error

# The enum of _common.pxd as Python values, for the test that it matches fastnn.kernels.
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}


# --------------------------------------------------------------------------- helpers


cdef int _check_act(str name, Py_ssize_t act) except -1:
    # codes are Py_ssize_t arguments: converted by __index__, so a float raises TypeError
    if act < 0 or act >= N_ACTIVATIONS:
        raise ValueError(f"{name}: unknown activation code {act}")
    return 0


cdef int _check_shape(str name, tuple got, tuple want) except -1:
    if got != want:
        raise ValueError(f"{name} has shape {got}, expected {want}")
    return 0


cdef double* _scratch(Py_ssize_t k) except NULL:
    """A buffer of k doubles (at least one), for the softmax rows; free() it."""
    cdef double* e = <double*>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    return e


# --------------------------------------------------------------------------- kernels


def activation(x, act, negative_slope, out):
    """out = f(x): identity, logistic, tanh, relu, leaky_relu (slope for x <= 0),
    softmax exp(x - max) / sum exp(x - max) per row."""
    try:
        _activation(x, act, negative_slope, out)
    except (TypeError, ValueError) as exc:
        raise argument_error("activation", (x, act, negative_slope, out)) or exc from None


def activation_grad_(a, act, negative_slope, delta):
    """delta *= f'(z) with f' taken from a = f(z): a (1 - a), 1 - a**2, [a > 0], ...;
    softmax: a * (delta - sum_j a_j delta_j) per row."""
    try:
        _activation_grad_(a, act, negative_slope, delta)
    except (TypeError, ValueError) as exc:
        raise argument_error("activation_grad_", (a, act, negative_slope, delta)) or exc from None


def dense_forward(a, W, b, act, negative_slope, z_out):
    """z_out = f(a @ W + b)."""
    try:
        _dense_forward(a, W, b, act, negative_slope, z_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("dense_forward",
                             (a, W, b, act, negative_slope, z_out)) or exc from None


def dense_backward(a_prev, delta, dW_out, db_out):
    """dW_out = a_prev.T @ delta, db_out = sum of delta over rows (accumulated in double)."""
    try:
        _dense_backward(a_prev, delta, dW_out, db_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("dense_backward", (a_prev, delta, dW_out, db_out)) or exc from None


def dense_backward_delta(delta, W, a_prev, act_prev, negative_slope, delta_prev_out):
    """delta_prev_out = (delta @ W.T) * f'(z_prev), f' taken from a_prev = f(z_prev)."""
    try:
        _dense_backward_delta(delta, W, a_prev, act_prev, negative_slope, delta_prev_out)
    except (TypeError, ValueError) as exc:
        raise argument_error(
            "dense_backward_delta", (delta, W, a_prev, act_prev, negative_slope, delta_prev_out)
        ) or exc from None


def dropout_(x, p, seed, step, layer):
    """Inverted dropout in place, x = x / (1 - p) where kept, 0 where dropped, with the mask
    of layer ``layer`` in the batch of update ``step``: unit u = i * k + j of x (n, k) is
    kept iff mix64(key + (u + 1) * G) >= floor(p * 2**64), key = dropout_key(seed, step,
    layer). p in [0, 1) (p = 0 leaves x as it is); seed, step, layer in [0, 2**63)."""
    try:
        _dropout_(x, p, seed, step, layer)
    except (TypeError, ValueError) as exc:
        raise argument_error("dropout_", (x, p, seed, step, layer)) or exc from None


# --------------------------------------------------------------------------- implementations


def _activation(
    const floating[:, ::1] x not None,  # IN
    Py_ssize_t act,
    double negative_slope,
    floating[:, ::1] out not None,  # OUT, may be x
):
    _check_act("act", act)
    _check_shape("out", (out.shape[0], out.shape[1]), (x.shape[0], x.shape[1]))
    cdef double* e = _scratch(x.shape[1])
    with nogil:
        activation_rows(cptr2(x), x.shape[0], x.shape[1], <int>act, negative_slope, ptr2(out), e)
    free(e)


def _activation_grad_(
    const floating[:, ::1] a not None,  # IN
    Py_ssize_t act,
    double negative_slope,
    floating[:, ::1] delta not None,  # INOUT
):
    _check_act("act", act)
    _check_shape("delta", (delta.shape[0], delta.shape[1]), (a.shape[0], a.shape[1]))
    with nogil:
        activation_grad_rows(cptr2(a), a.shape[0], a.shape[1], <int>act, negative_slope,
                             ptr2(delta))


def _dense_forward(
    const floating[:, ::1] a not None,  # IN (n, n_in)
    const floating[:, ::1] W not None,  # IN (n_in, n_out)
    const floating[::1] b not None,  # IN (n_out,)
    Py_ssize_t act,
    double negative_slope,
    floating[:, ::1] z_out not None,  # OUT (n, n_out)
):
    cdef Py_ssize_t n = a.shape[0], n_in = a.shape[1], n_out = W.shape[1]
    _check_act("act", act)
    _check_shape("W", (W.shape[0], W.shape[1]), (n_in, n_out))
    _check_shape("b", (b.shape[0],), (n_out,))
    _check_shape("z_out", (z_out.shape[0], z_out.shape[1]), (n, n_out))
    cdef double* e = _scratch(n_out)
    with nogil:
        dense_forward_cols(cptr2(a), n, n_in, cptr2(W), cptr1(b), n_out, <int>act,
                           negative_slope, ptr2(z_out), 0, n_out, e, 1.0, <Mask*>NULL)
    free(e)


def _dense_backward(
    const floating[:, ::1] a_prev not None,  # IN (n, n_in)
    const floating[:, ::1] delta not None,  # IN (n, n_out)
    floating[:, ::1] dW_out not None,  # OUT (n_in, n_out)
    floating[::1] db_out not None,  # OUT (n_out,)
):
    cdef Py_ssize_t n = a_prev.shape[0], n_in = a_prev.shape[1], n_out = delta.shape[1]
    _check_shape("delta", (delta.shape[0], delta.shape[1]), (n, n_out))
    _check_shape("dW_out", (dW_out.shape[0], dW_out.shape[1]), (n_in, n_out))
    _check_shape("db_out", (db_out.shape[0],), (n_out,))
    with nogil:
        dense_backward_cols(cptr2(a_prev), cptr2(delta), n, n_in, n_out, ptr2(dW_out),
                            ptr1(db_out), 0, n_out)


def _dense_backward_delta(
    const floating[:, ::1] delta not None,  # IN (n, n_out)
    const floating[:, ::1] W not None,  # IN (n_in, n_out)
    const floating[:, ::1] a_prev not None,  # IN (n, n_in)
    Py_ssize_t act_prev,
    double negative_slope,
    floating[:, ::1] delta_prev_out not None,  # OUT (n, n_in)
):
    cdef Py_ssize_t n = delta.shape[0], n_out = delta.shape[1], n_in = W.shape[0]
    _check_act("act_prev", act_prev)
    _check_shape("W", (W.shape[0], W.shape[1]), (n_in, n_out))
    _check_shape("a_prev", (a_prev.shape[0], a_prev.shape[1]), (n, n_in))
    _check_shape("delta_prev_out", (delta_prev_out.shape[0], delta_prev_out.shape[1]), (n, n_in))
    with nogil:
        dense_backward_delta_cols(cptr2(delta), cptr2(W), cptr2(a_prev), n, n_in, n_out,
                                  <int>act_prev, negative_slope, ptr2(delta_prev_out), 0,
                                  n_in, <Mask*>NULL, 1.0)


def _dropout_(
    floating[:, ::1] x not None,  # INOUT (n, k)
    double p,
    Py_ssize_t seed,  # ints are Py_ssize_t: converted by __index__ (a float raises)
    Py_ssize_t step,
    Py_ssize_t layer,
):
    cdef Mask mask
    cdef double scale
    if not (0.0 <= p < 1.0):  # NaN fails too
        raise ValueError(f"p must be in [0, 1), got {p}")
    if seed < 0 or step < 0 or layer < 0:
        raise ValueError("seed, step and layer must be at least 0")
    if p == 0.0:  # no mask drawn: x as it is (not even x * 1.0)
        return
    mask = dropout_mask(<uint64_t>seed, <uint64_t>step, <uint64_t>layer, p)
    scale = 1.0 / (1.0 - p)
    with nogil:  # one row of n * k columns: unit i * k + j is element i * k + j
        drop_cols(ptr2(x), 1, 0, 0, x.shape[0] * x.shape[1], &mask, 0, scale)


# --------------------------------------------------------------------------- test hooks

# Elements of a W block that matmul_transposed copies to the stack (tests/test_gemm_small.py).
_TRANSPOSE_MAX = TRANSPOSE_MAX


def _matmul_transposed(
    const floating[:, ::1] a not None,  # IN (n, k)
    const floating[:, ::1] W not None,  # IN (n_in, k)
    Py_ssize_t c0,
    Py_ssize_t c1,
    floating[:, ::1] out not None,  # OUT columns [c0, c1) of (n, n_in)
):
    """out[:, c0:c1] = a @ W[c0:c1].T as dense_backward_delta_cols computes it (for tests)."""
    cdef Py_ssize_t n = a.shape[0], k = a.shape[1], n_in = W.shape[0]
    _check_shape("W", (W.shape[0], W.shape[1]), (n_in, k))
    _check_shape("out", (out.shape[0], out.shape[1]), (n, n_in))
    if not 0 <= c0 <= c1 <= n_in:
        raise ValueError(f"columns [{c0}, {c1}) outside [0, {n_in})")
    with nogil:
        matmul_transposed(cptr2(a), cptr2(W) + c0 * k if c1 > c0 else NULL, n, c1 - c0, k,
                          ptr2(out) + c0 if n > 0 and c1 > c0 else NULL, n_in)
