# The dense-layer math as nogil cores on raw pointers, shared by dense.pyx (the kernels
# of the public API) and train.pyx (the whole training step). Header-only: every function
# is `cdef inline`, compiled into each module that cimports it (a cdef function exported
# from dense.pyx would be imported at runtime as a top-level module "dense", which the
# include_path build cannot provide).
#
# 2-D arrays are row-major and contiguous: (n rows, k columns) with row stride k.
# Arithmetic runs in double and is stored in the array type; the GEMMs go to the BLAS.

from scipy.linalg.cython_blas cimport dgemm, sgemm

from _common cimport LEAKY_RELU, LOGISTIC, RELU, SOFTMAX, TANH, floating
from _dropout cimport Mask, drop_cols
from _vmath cimport expit_array, tanh_array, vexp

# Column blocks of the bias-gradient sum: a double accumulator on the stack.
cdef enum:
    BIAS_BLOCK = 64


cdef inline void softmax_row(
    const floating* x,  # IN (k,)
    Py_ssize_t k,
    floating* out,  # OUT (k,), may be x
    double* e,  # scratch, k doubles
) noexcept nogil:
    """out = exp(x - max x) / sum exp(x - max x); x is read before out is written."""
    cdef Py_ssize_t j
    cdef double m, s = 0.0
    if k == 0:
        return
    m = x[0]
    for j in range(1, k):
        if x[j] > m:
            m = x[j]
    for j in range(k):  # vectorizes: no sum in this loop
        e[j] = vexp(x[j] - m)
    for j in range(k):
        s += e[j]
    for j in range(k):
        out[j] = e[j] / s


cdef inline void activation_rows(
    const floating* x,  # IN (n, k)
    Py_ssize_t n,
    Py_ssize_t k,
    int act,
    double negative_slope,
    floating* out,  # OUT (n, k), may be x
    double* e,  # scratch, k doubles (softmax only)
) noexcept nogil:
    """out = f(x), row-wise for softmax.

    One loop per activation, outside the element loop: relu and leaky_relu then compile to
    branch-free vector code (a data-dependent branch per element mispredicts half the
    time), and so do logistic and tanh: _vmath's loops call no libm function (tanh is
    2-3x faster than libm's on SSE2). relu and the comparisons are exact in the array
    type, the rest runs in double.
    """
    cdef Py_ssize_t i, m = n * k
    if act == SOFTMAX:
        for i in range(n):
            softmax_row(x + i * k, k, out + i * k, e)
    elif act == RELU:
        for i in range(m):
            out[i] = 0 if x[i] < 0 else x[i]  # NaN passes through, as np.maximum
    elif act == LEAKY_RELU:
        for i in range(m):
            out[i] = x[i] if x[i] > 0 else negative_slope * x[i]
    elif act == LOGISTIC:
        expit_array(x, m, out)
    elif act == TANH:
        tanh_array(x, m, out)
    elif <const floating*>out != x:
        for i in range(m):
            out[i] = x[i]


cdef inline void activation_grad_rows(
    const floating* a,  # IN (n, k)
    Py_ssize_t n,
    Py_ssize_t k,
    int act,
    double negative_slope,
    floating* delta,  # INOUT (n, k)
) noexcept nogil:
    """delta *= f'(z) from a = f(z): logistic a (1 - a), tanh 1 - a**2, relu [a > 0],
    leaky_relu 1 or negative_slope; softmax: delta = a * (delta - sum_j a_j delta_j).
    One loop per activation, as activation_rows."""
    cdef Py_ssize_t i, j, m = n * k
    cdef double dot
    if act == SOFTMAX:
        for i in range(n):
            dot = 0.0
            for j in range(k):
                dot += <double>a[i * k + j] * delta[i * k + j]
            for j in range(k):
                delta[i * k + j] = a[i * k + j] * (delta[i * k + j] - dot)
    elif act == RELU:
        for i in range(m):
            delta[i] = delta[i] if a[i] > 0 else 0
    elif act == LEAKY_RELU:
        for i in range(m):
            delta[i] = delta[i] if a[i] > 0 else negative_slope * delta[i]
    elif act == LOGISTIC:
        for i in range(m):
            delta[i] = <double>delta[i] * a[i] * (1.0 - a[i])
    elif act == TANH:
        for i in range(m):
            delta[i] = <double>delta[i] * (1.0 - <double>a[i] * a[i])


cdef inline void gemm(
    char transa,
    char transb,
    int m,
    int n,
    int k,
    const floating* A,  # IN
    int lda,
    const floating* B,  # IN
    int ldb,
    floating* C,  # OUT
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
        for j in range(n):
            for i in range(m):
                C[j * ldc + i] = 0.0
        return
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>A, &lda, <float*>B, &ldb,
              &beta, C, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>A, &lda, <double*>B, &ldb,
              &beta, C, &ldc)


cdef enum:
    # W blocks up to this many elements are transposed on the stack (32 KiB in double):
    # every layer up to 64 x 64, and a 32-row block of one up to 128 wide.
    TRANSPOSE_MAX = 4096


cdef inline void matmul_transposed(
    const floating* a,  # IN (n, k)
    const floating* w,  # IN (m, k): the rows of W that make the product's columns
    Py_ssize_t n,
    Py_ssize_t m,
    Py_ssize_t k,
    floating* out,  # OUT (n, m), row stride ldo
    Py_ssize_t ldo,
) noexcept nogil:
    """out = a @ w.T; up to TRANSPOSE_MAX elements of w, w.T is copied to the stack first.

    Why the copy: OpenBLAS packs both operands of a T,N product (its small-matrix kernels,
    on CPUs that have them, refuse T,N beyond 1200 outputs) and N,N then runs unpacked.
    Measured with OpenBLAS 0.3.30 (SkylakeX kernels): deep_tanh's delta GEMM (128 x 32,
    k 64) takes 0.73x the T,N time in float64, 0.90x in float32, copy included; with its
    Haswell kernels (AVX2 CPUs: no small-matrix path, both forms pack) 1.02-1.17x.
    Shapes alone choose the path, so a block's bits never depend on the thread count.
    """
    cdef floating wt[TRANSPOSE_MAX]
    cdef Py_ssize_t q, j
    if m * k <= TRANSPOSE_MAX:
        for q in range(m):
            for j in range(k):
                wt[j * m + q] = w[q * k + j]
        # row-major out = a @ wt is column-major out.T = wt.T @ a.T (wt: k x m, stride m)
        gemm(c'N', c'N', <int>m, <int>n, <int>k, wt, <int>m, a, <int>k, out, <int>ldo)
    else:
        # row-major out = a @ w.T is column-major out.T = w @ a.T
        gemm(c'T', c'N', <int>m, <int>n, <int>k, w, <int>k, a, <int>k, out, <int>ldo)


# --------------------------------------------------------------------------- column blocks
# train.pyx splits each layer's GEMMs by the columns of their output into blocks that the
# threads share. Shapes alone decide the blocks, never the thread count, and each block is
# one single-threaded BLAS call whose result does not depend on who computes it: a fit is
# the same bits on 1, 2 or N threads (and in a build without OpenMP).

cdef enum:
    MIN_BLOCK_COLS = 32  # narrower blocks cost more in BLAS call overhead than they gain
    MAX_BLOCKS = 8


cdef inline Py_ssize_t column_blocks(Py_ssize_t n_cols) noexcept nogil:
    """Blocks of an output with n_cols columns: a power of two, at most MAX_BLOCKS, each at
    least MIN_BLOCK_COLS wide (one block below 2 * MIN_BLOCK_COLS columns)."""
    cdef Py_ssize_t p = 1
    while p * 2 <= MAX_BLOCKS and n_cols >= p * 2 * MIN_BLOCK_COLS:
        p *= 2
    return p


cdef inline Py_ssize_t block_start(Py_ssize_t n_cols, Py_ssize_t blocks, Py_ssize_t p) noexcept nogil:
    """First column of block p of column_blocks' split (block p ends where p + 1 starts)."""
    cdef Py_ssize_t per = (n_cols + blocks - 1) // blocks
    return min(n_cols, p * per)


cdef inline void dense_forward_cols(
    const floating* a,  # IN (n, n_in)
    Py_ssize_t n,
    Py_ssize_t n_in,
    const floating* W,  # IN (n_in, n_out)
    const floating* b,  # IN (n_out,)
    Py_ssize_t n_out,
    int act,  # SOFTMAX only for all columns, c0 = 0, c1 = n_out (it is row-wise)
    double negative_slope,
    floating* z_out,  # OUT columns [c0, c1) of (n, n_out)
    Py_ssize_t c0,
    Py_ssize_t c1,
    double* e,  # scratch, n_out doubles (softmax only; else may be NULL)
    double in_scale,  # s: the previous layer's dropout scale 1 / (1 - p), else 1.0
    const Mask* mask,  # IN this layer's dropout mask, or NULL (no dropout; never softmax)
) noexcept nogil:
    """Columns [c0, c1) of z_out = m * f((a @ W) * s + b): z = m * f((a @ W[:, c0:c1]) * s
    + b[c0:c1]), m the dropout mask (unit i * n_out + j; kept units unscaled, as
    reference.forward_backward stores them), 1 without one. The bias is added as
    (double)z * s + b, stored in the type (for s = 1 exactly the sum z + b in the type,
    which keeps its own loop); f runs in double, row by row (the row stays in L1 between
    the two passes); the mask is one pass over the block."""
    cdef Py_ssize_t i, j, nc = c1 - c0
    cdef floating* z
    if nc <= 0:
        return
    gemm(c'N', c'N', <int>nc, <int>n, <int>n_in, W + c0, <int>n_out, a, <int>n_in,
         z_out + c0, <int>n_out)
    for i in range(n):
        z = z_out + i * n_out + c0
        if in_scale == 1.0:  # no dropout before: the sum in the type, exactly as before
            for j in range(nc):
                z[j] = z[j] + b[c0 + j]
        else:
            for j in range(nc):
                z[j] = <double>z[j] * in_scale + b[c0 + j]
        activation_rows(z, 1, nc, act, negative_slope, z, e)
    if mask != NULL:  # after f: a = m * f(z), so that f' from a stays exact
        # one call per block, not per row: a block's rows are 32-64 columns, where the
        # call costs (measured: 64 x 256 in blocks of 32, 6.5 us against 7.7 per row)
        drop_cols(z_out, n, n_out, c0, c1, mask, 0, 1.0)


cdef inline void dense_backward_cols(
    const floating* a_prev,  # IN (n, n_in)
    const floating* delta,  # IN (n, n_out)
    Py_ssize_t n,
    Py_ssize_t n_in,
    Py_ssize_t n_out,
    floating* dW_out,  # OUT columns [c0, c1) of (n_in, n_out)
    floating* db_out,  # OUT [c0, c1) of (n_out,)
    Py_ssize_t c0,
    Py_ssize_t c1,
) noexcept nogil:
    """Columns [c0, c1) of dW_out = a_prev.T @ delta and db_out = delta's column sums:
    dW = a_prev.T @ delta[:, c0:c1], db = the sums of delta[:, c0:c1] over the rows (each
    column summed in row order, in double)."""
    cdef Py_ssize_t i, j, jb, j0, j1, nc = c1 - c0
    cdef double acc[BIAS_BLOCK]
    if nc <= 0:
        return
    gemm(c'N', c'T', <int>nc, <int>n_in, <int>n, delta + c0, <int>n_out, a_prev, <int>n_in,
         dW_out + c0, <int>n_out)
    for jb in range((nc + BIAS_BLOCK - 1) // BIAS_BLOCK):
        j0 = c0 + jb * BIAS_BLOCK
        j1 = min(j0 + BIAS_BLOCK, c1)
        for j in range(j0, j1):
            acc[j - j0] = 0.0
        for i in range(n):
            for j in range(j0, j1):
                acc[j - j0] += delta[i * n_out + j]
        for j in range(j0, j1):
            db_out[j] = acc[j - j0]


cdef inline void dense_backward_delta_cols(
    const floating* delta,  # IN (n, n_out)
    const floating* W,  # IN (n_in, n_out)
    const floating* a_prev,  # IN (n, n_in)
    Py_ssize_t n,
    Py_ssize_t n_in,
    Py_ssize_t n_out,
    int act_prev,  # SOFTMAX only for all columns, c0 = 0, c1 = n_in (it is row-wise)
    double negative_slope,
    floating* delta_prev_out,  # OUT columns [c0, c1) of (n, n_in)
    Py_ssize_t c0,
    Py_ssize_t c1,
    const Mask* mask,  # IN the previous layer's dropout mask, or NULL (no dropout)
    double scale,  # its scale 1 / (1 - p) (read only with a mask)
) noexcept nogil:
    """Columns [c0, c1) of delta_prev_out = m * s * (delta @ W.T) * f'(z_prev), f' taken
    from a_prev = f(z_prev): delta_prev = (delta @ W[c0:c1].T) * f'(z_prev[:, c0:c1]),
    then, with a mask m (unit i * n_in + j), delta_prev * s where kept and 0 where
    dropped (each product stored in the type, in the reference's order; after relu,
    whose f' is 0 on every dropped unit, only the product by s)."""
    cdef Py_ssize_t i, j, nc = c1 - c0
    cdef floating* d
    # relu's f' = [a > 0] has zeroed every dropped unit (a = +0.0 there), and the mask
    # would multiply the others by s: the same bits as the mask, with no hash
    cdef bint scale_only = mask != NULL and act_prev == RELU
    if nc <= 0:
        return
    matmul_transposed(delta, W + c0 * n_out, n, nc, n_out, delta_prev_out + c0, n_in)
    for i in range(n):
        d = delta_prev_out + i * n_in + c0
        activation_grad_rows(a_prev + i * n_in + c0, 1, nc, act_prev, negative_slope, d)
        if scale_only:
            for j in range(nc):
                d[j] = <double>d[j] * scale
    if mask != NULL and not scale_only:  # one call per block, as dense_forward_cols
        drop_cols(delta_prev_out, n, n_in, c0, c1, mask, 0, scale)
