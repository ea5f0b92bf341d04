"""Cython dense-layer kernels: activations, forward and backward passes.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Arrays are C-contiguous (n_samples, n_features); the GEMMs go to the BLAS through
scipy.linalg.cython_blas, everything else is a serial nogil loop in double precision.
"""

from libc.math cimport exp, tanh
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, sgemm

from _common cimport (
    IDENTITY, LEAKY_RELU, LOGISTIC, N_ACTIVATIONS, RELU, SOFTMAX, TANH, expit, floating,
)

# The enum of _common.pxd as Python values, for the test that it matches fastnn.kernels.
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}

# Column blocks of the bias-gradient sum: a double accumulator on the stack.
cdef enum:
    _BLOCK = 64


# --------------------------------------------------------------------------- helpers


cdef inline double _act(double z, int act, double negative_slope) noexcept nogil:
    """f(z) for the element-wise activations."""
    if act == LOGISTIC:
        return expit(z)
    if act == TANH:
        return tanh(z)
    if act == RELU:
        return 0.0 if z < 0 else z  # NaN passes through, as np.maximum
    if act == LEAKY_RELU:
        return z if z > 0 else negative_slope * z
    return z


cdef inline double _act_grad(double a, double d, int act, double negative_slope) noexcept nogil:
    """d * f'(z) for the element-wise activations, f' taken from a = f(z)."""
    if act == LOGISTIC:
        return d * a * (1.0 - a)
    if act == TANH:
        return d * (1.0 - a * a)
    if act == RELU:
        return d if a > 0 else 0.0
    if act == LEAKY_RELU:
        return d if a > 0 else negative_slope * d
    return d


cdef inline void _activation(
    const floating[:, ::1] x,  # IN
    int act,
    double negative_slope,
    floating[:, ::1] out,  # OUT, may share memory with x
    double* e,  # scratch, x.shape[1] doubles (softmax only)
) noexcept nogil:
    """out = f(x); each element (each row for softmax) is read before it is written."""
    cdef Py_ssize_t i, j, n = x.shape[0], k = x.shape[1]
    cdef double m, s
    if act == SOFTMAX:
        if k == 0:
            return
        for i in range(n):
            m = x[i, 0]
            for j in range(1, k):
                if x[i, j] > m:
                    m = x[i, j]
            s = 0.0
            for j in range(k):
                e[j] = exp(x[i, j] - m)
                s += e[j]
            for j in range(k):
                out[i, j] = e[j] / s
    else:
        for i in range(n):
            for j in range(k):
                out[i, j] = _act(x[i, j], act, negative_slope)


cdef inline void _activation_grad(
    const floating[:, ::1] a,  # IN
    int act,
    double negative_slope,
    floating[:, ::1] delta,  # INOUT
) noexcept nogil:
    """delta *= f'(z) from a = f(z); softmax: delta = a * (delta - sum_j a_j delta_j)."""
    cdef Py_ssize_t i, j, n = a.shape[0], k = a.shape[1]
    cdef double dot
    if act == IDENTITY:
        return
    if act == SOFTMAX:
        for i in range(n):
            dot = 0.0
            for j in range(k):
                dot += <double>a[i, j] * delta[i, j]
            for j in range(k):
                delta[i, j] = a[i, j] * (delta[i, j] - dot)
    else:
        for i in range(n):
            for j in range(k):
                delta[i, j] = _act_grad(a[i, j], delta[i, j], act, negative_slope)


cdef inline void _gemm(
    char transa,
    char transb,
    int m,
    int n,
    int k,
    const floating[:, ::1] A,  # IN
    int lda,
    const floating[:, ::1] B,  # IN
    int ldb,
    floating[:, ::1] C,  # OUT
    int ldc,
) noexcept nogil:
    """Column-major C (m, n) = op(A) @ op(B) (alpha 1, beta 0) on row-major buffers.

    Empty products are handled here: nothing to do when m or n is 0, zeros when k is 0
    (the BLAS would also need lda, ldb >= 1 there).
    """
    cdef Py_ssize_t i, j
    cdef floating alpha = 1.0, beta = 0.0
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(C.shape[0]):
            for j in range(C.shape[1]):
                C[i, j] = 0.0
        return
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>&A[0, 0], &lda,
              <float*>&B[0, 0], &ldb, &beta, &C[0, 0], &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>&A[0, 0], &lda,
              <double*>&B[0, 0], &ldb, &beta, &C[0, 0], &ldc)


cdef int _check_act(int act) except -1:
    if act < 0 or act >= N_ACTIVATIONS:
        raise ValueError(f"unknown activation code {act}")
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


def activation(
    const floating[:, ::1] x,  # IN
    int act,
    double negative_slope,
    floating[:, ::1] out,  # OUT, may be x
):
    """out = f(x): identity, logistic, tanh, relu, leaky_relu (slope for x <= 0),
    softmax exp(x - max) / sum exp(x - max) per row."""
    _check_act(act)
    _check_shape("out", (out.shape[0], out.shape[1]), (x.shape[0], x.shape[1]))
    cdef double* e = _scratch(x.shape[1])
    with nogil:
        _activation(x, act, negative_slope, out, e)
    free(e)


def activation_grad_(
    const floating[:, ::1] a,  # IN
    int act,
    double negative_slope,
    floating[:, ::1] delta,  # INOUT
):
    """delta *= f'(z) with f' taken from a = f(z): a (1 - a), 1 - a**2, [a > 0], ...;
    softmax: a * (delta - sum_j a_j delta_j) per row."""
    _check_act(act)
    _check_shape("delta", (delta.shape[0], delta.shape[1]), (a.shape[0], a.shape[1]))
    with nogil:
        _activation_grad(a, act, negative_slope, delta)


def dense_forward(
    const floating[:, ::1] a,  # IN (n, n_in)
    const floating[:, ::1] W,  # IN (n_in, n_out)
    const floating[::1] b,  # IN (n_out,)
    int act,
    double negative_slope,
    floating[:, ::1] z_out,  # OUT (n, n_out)
):
    """z_out = f(a @ W + b)."""
    cdef Py_ssize_t i, j, n = a.shape[0], n_in = a.shape[1], n_out = W.shape[1]
    _check_act(act)
    _check_shape("W", (W.shape[0], W.shape[1]), (n_in, n_out))
    _check_shape("b", (b.shape[0],), (n_out,))
    _check_shape("z_out", (z_out.shape[0], z_out.shape[1]), (n, n_out))
    cdef double* e = _scratch(n_out)
    with nogil:
        # row-major z = a @ W is column-major z.T = W.T @ a.T
        _gemm(c'N', c'N', n_out, n, n_in, W, n_out, a, n_in, z_out, n_out)
        for i in range(n):
            for j in range(n_out):
                z_out[i, j] = z_out[i, j] + b[j]
        _activation(z_out, act, negative_slope, z_out, e)
    free(e)


def dense_backward(
    const floating[:, ::1] a_prev,  # IN (n, n_in)
    const floating[:, ::1] delta,  # IN (n, n_out)
    floating[:, ::1] dW_out,  # OUT (n_in, n_out)
    floating[::1] db_out,  # OUT (n_out,)
):
    """dW_out = a_prev.T @ delta, db_out = sum of delta over rows (accumulated in double)."""
    cdef Py_ssize_t i, j, jb, j0, j1, n = a_prev.shape[0], n_in = a_prev.shape[1]
    cdef Py_ssize_t n_out = delta.shape[1]
    cdef double acc[_BLOCK]
    _check_shape("delta", (delta.shape[0], delta.shape[1]), (n, n_out))
    _check_shape("dW_out", (dW_out.shape[0], dW_out.shape[1]), (n_in, n_out))
    _check_shape("db_out", (db_out.shape[0],), (n_out,))
    with nogil:
        # row-major dW = a_prev.T @ delta is column-major dW.T = delta.T @ a_prev
        _gemm(c'N', c'T', n_out, n_in, n, delta, n_out, a_prev, n_in, dW_out, n_out)
        for jb in range((n_out + _BLOCK - 1) // _BLOCK):
            j0 = jb * _BLOCK
            j1 = min(j0 + _BLOCK, n_out)
            for j in range(j0, j1):
                acc[j - j0] = 0.0
            for i in range(n):
                for j in range(j0, j1):
                    acc[j - j0] += delta[i, j]
            for j in range(j0, j1):
                db_out[j] = acc[j - j0]


def dense_backward_delta(
    const floating[:, ::1] delta,  # IN (n, n_out)
    const floating[:, ::1] W,  # IN (n_in, n_out)
    const floating[:, ::1] a_prev,  # IN (n, n_in)
    int act_prev,
    double negative_slope,
    floating[:, ::1] delta_prev_out,  # OUT (n, n_in)
):
    """delta_prev_out = (delta @ W.T) * f'(z_prev), f' taken from a_prev = f(z_prev)."""
    cdef Py_ssize_t n = delta.shape[0], n_out = delta.shape[1], n_in = W.shape[0]
    _check_act(act_prev)
    _check_shape("W", (W.shape[0], W.shape[1]), (n_in, n_out))
    _check_shape("a_prev", (a_prev.shape[0], a_prev.shape[1]), (n, n_in))
    _check_shape("delta_prev_out", (delta_prev_out.shape[0], delta_prev_out.shape[1]), (n, n_in))
    with nogil:
        # row-major delta_prev = delta @ W.T is column-major delta_prev.T = W @ delta.T
        _gemm(c'T', c'N', n_in, n, n_out, W, n_out, delta, n_out, delta_prev_out, n_in)
        _activation_grad(a_prev, act_prev, negative_slope, delta_prev_out)
