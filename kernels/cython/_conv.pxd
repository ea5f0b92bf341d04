# The convolution and max-pooling math as nogil cores on raw pointers, shared by conv.pyx
# (the kernels of the public API) and train.pyx (the whole training step). Header-only,
# as _dense.pxd: every function is `cdef inline`, compiled into each module that
# cimports it.
#
# Per-sample layout C x H x W (PyTorch's), samples one after the other; conv weights
# (F, C, KH, KW) row-major, which is the row-major (F, C KH KW) matrix of the GEMMs.
# A conv lowers one sample to its columns (im2col: row (c, u, v) of the (C KH KW, OH OW)
# scratch holds x[c, i SH + u - PH, j SW + v - PW] at column i OW + j, 0 in the padding)
# and makes one GEMM of it; the (F, OH OW) product is already the sample's C x H x W
# output. The callers give the scratch (C KH KW x OH OW elements): conv.pyx mallocs it,
# train.pyx uses the workspace's (fastnn.kernels.layout.conv_scratch_size).
#
# The cores trust their Window (validated by the callers with Python's integers:
# conv.pyx's _out_size, train.pyx's _network) and never form a product of an output
# index and a stride that the window's own sizes do not bound (axis_range), so a
# validated window cannot overflow Py_ssize_t, whatever its padding.

from libc.math cimport INFINITY
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from _common cimport floating
from _dense cimport activation_grad_rows, activation_rows


ctypedef struct Window:  # a conv or pool layer's shapes, per sample
    Py_ssize_t c, h, w  # input channels, height, width
    Py_ssize_t f, oh, ow  # output channels (c for a pool), height, width
    Py_ssize_t kh, kw  # kernel
    Py_ssize_t sh, sw  # stride
    Py_ssize_t ph, pw  # padding on each side


cdef enum:
    BIAS_LANES = 8  # independent partial sums of the bias gradient (a vector of them)


cdef inline bint pointwise(const Window* g) noexcept nogil:
    """A 1x1 kernel, stride 1, no padding: the sample itself is its im2col matrix."""
    return g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0 and g.pw == 0


cdef inline void gemm_beta(
    char transa,
    char transb,
    int m,
    int n,
    int k,
    const floating* A,  # IN
    int lda,
    const floating* B,  # IN
    int ldb,
    floating beta,  # 0 (C = op(A) op(B)) or 1 (C += op(A) op(B))
    floating* C,  # INOUT
    int ldc,
) noexcept nogil:
    """Column-major C (m, n) = op(A) @ op(B) + beta C on row-major buffers (_dense's gemm,
    with beta). Nothing to do when m or n is 0; C = beta C when k is 0."""
    cdef Py_ssize_t i, j
    cdef floating alpha = 1.0
    if m == 0 or n == 0:
        return
    if k == 0:
        if beta == 0:
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


cdef inline void axis_range(
    Py_ssize_t size,  # the input's extent on this axis
    Py_ssize_t k,  # the kernel offset, in [0, kernel)
    Py_ssize_t stride,
    Py_ssize_t pad,
    Py_ssize_t n_out,  # outputs on this axis
    Py_ssize_t* first,  # OUT
    Py_ssize_t* end,  # OUT
    Py_ssize_t* pos,  # OUT
) noexcept nogil:
    """The outputs i in [first, end) whose input position i * stride + k - pad lies in
    [0, size); pos is that position for i = first (then + stride per output). No product
    of i and stride is formed: d = pad - k, first = ceil(d / stride) (0 for d <= 0),
    pos = first * stride - d in [0, stride) from d's remainder, and the count from pos."""
    cdef Py_ssize_t d = pad - k, i0, o
    if d <= 0:
        i0 = 0
        o = -d
    else:
        i0 = d // stride + (1 if d % stride else 0)
        o = (stride - d % stride) % stride
    if i0 >= n_out or o >= size:
        first[0] = end[0] = pos[0] = 0
        return
    first[0] = i0
    end[0] = min(n_out, i0 + (size - 1 - o) // stride + 1)  # i0 < n_out: no overflow
    pos[0] = o


cdef inline void im2col(
    const floating* x,  # IN (C, H, W): one sample
    const Window* g,
    floating* cols,  # OUT (C KH KW, OH OW)
) noexcept nogil:
    """cols[(c KH + u) KW + v, i OW + j] = x[c, i SH + u - PH, j SW + v - PW], 0 in the
    padding. The in-image ranges are found once per kernel row u and column v."""
    cdef Py_ssize_t c, u, v, i, j, i0, i1, r0, j0, j1, q0, nj
    cdef Py_ssize_t ohw = g.oh * g.ow, ow = g.ow, sw = g.sw
    cdef floating* row
    cdef floating* out
    cdef const floating* src
    for u in range(g.kh):
        axis_range(g.h, u, g.sh, g.ph, g.oh, &i0, &i1, &r0)
        for v in range(g.kw):
            axis_range(g.w, v, g.sw, g.pw, g.ow, &j0, &j1, &q0)
            nj = j1 - j0
            for c in range(g.c):
                row = cols + ((c * g.kh + u) * g.kw + v) * ohw
                if i1 == i0 or nj == 0:  # every output of this (u, v) in the padding
                    memset(row, 0, ohw * sizeof(floating))
                    continue
                memset(row, 0, i0 * ow * sizeof(floating))
                for i in range(i0, i1):
                    out = row + i * ow
                    src = x + (c * g.h + r0 + (i - i0) * g.sh) * g.w + q0
                    for j in range(j0):
                        out[j] = 0
                    if sw == 1:
                        for j in range(nj):
                            out[j0 + j] = src[j]
                    else:
                        for j in range(nj):
                            out[j0 + j] = src[j * sw]
                    for j in range(j1, ow):
                        out[j] = 0
                memset(row + i1 * ow, 0, (g.oh - i1) * ow * sizeof(floating))


cdef inline void col2im(
    const floating* cols,  # IN (C KH KW, OH OW)
    const Window* g,
    floating* x_out,  # OUT (C, H, W): one sample
) noexcept nogil:
    """x_out = 0, then every cols[(c KH + u) KW + v, i OW + j] added at x[c, i SH + u -
    PH, j SW + v - PW] (the padding's dropped): im2col's transpose. Each input element
    gets its terms in (u, v) order, the reference's (in the array type)."""
    cdef Py_ssize_t c, u, v, i, j, i0, i1, r0, j0, j1, q0, nj
    cdef Py_ssize_t ohw = g.oh * g.ow, ow = g.ow, sw = g.sw
    cdef const floating* row
    cdef const floating* src
    cdef floating* dst
    memset(x_out, 0, g.c * g.h * g.w * sizeof(floating))
    for u in range(g.kh):
        axis_range(g.h, u, g.sh, g.ph, g.oh, &i0, &i1, &r0)
        if i1 == i0:
            continue
        for v in range(g.kw):
            axis_range(g.w, v, g.sw, g.pw, g.ow, &j0, &j1, &q0)
            nj = j1 - j0
            if nj == 0:
                continue
            for c in range(g.c):
                row = cols + ((c * g.kh + u) * g.kw + v) * ohw
                for i in range(i0, i1):
                    src = row + i * ow + j0
                    dst = x_out + (c * g.h + r0 + (i - i0) * g.sh) * g.w + q0
                    if sw == 1:
                        for j in range(nj):
                            dst[j] = dst[j] + src[j]
                    else:
                        for j in range(nj):
                            dst[j * sw] = dst[j * sw] + src[j]


# --------------------------------------------------------------------------- convolution


cdef inline void conv_forward(
    const floating* x,  # IN (n, C, H, W)
    Py_ssize_t n,
    const Window* g,
    const floating* W,  # IN (F, C, KH, KW)
    const floating* b,  # IN (F,)
    int act,  # never SOFTMAX
    double negative_slope,
    floating* z_out,  # OUT (n, F, OH, OW)
    floating* cols,  # scratch (C KH KW, OH OW); unused by a pointwise conv (may be NULL)
) noexcept nogil:
    """z_out = act(W * x + b) sample by sample: im2col, one GEMM (F, C KH KW) @ (C KH KW,
    OH OW), then the bias (the sum in the array type, as the reference's z += b) and
    the activation (in double, _dense's) channel by channel, the channel still in L1."""
    cdef Py_ssize_t s, q, p
    cdef Py_ssize_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow
    cdef Py_ssize_t n_in = g.c * g.h * g.w, n_out = g.f * ohw
    cdef const floating* a
    cdef floating* z
    cdef floating bq
    for s in range(n):
        if pointwise(g):
            a = x + s * n_in
        else:
            im2col(x + s * n_in, g, cols)
            a = cols
        # row-major z (F, OHW) = W (F, CKK) @ a (CKK, OHW) is column-major z.T = a.T @ W.T
        gemm_beta(c'N', c'N', <int>ohw, <int>g.f, <int>ckk, a, <int>ohw, W, <int>ckk,
                  0.0, z_out + s * n_out, <int>ohw)
        for q in range(g.f):
            z = z_out + s * n_out + q * ohw
            bq = b[q]
            for p in range(ohw):
                z[p] = z[p] + bq
            activation_rows(z, 1, ohw, act, negative_slope, z, <double*>NULL)


cdef inline void conv_bias_grad(
    const floating* delta,  # IN (n, F, OH OW)
    Py_ssize_t n,
    Py_ssize_t f,
    Py_ssize_t ohw,
    floating* db_out,  # OUT (F,)
) noexcept nogil:
    """db_out[q] = the sum of delta[:, q] over samples and positions, in double, in
    BIAS_LANES independent partial sums (one vector of them; a single running sum would
    be a chain of dependent additions)."""
    cdef Py_ssize_t q, s, p, t, p8 = ohw - ohw % BIAS_LANES
    cdef double acc[BIAS_LANES]
    cdef const floating* d
    for q in range(f):
        for t in range(BIAS_LANES):
            acc[t] = 0.0
        for s in range(n):
            d = delta + (s * f + q) * ohw
            for p in range(p8 // BIAS_LANES):
                for t in range(BIAS_LANES):
                    acc[t] += d[p * BIAS_LANES + t]
            for p in range(p8, ohw):
                acc[0] += d[p]
        db_out[q] = (((acc[0] + acc[1]) + (acc[2] + acc[3]))
                     + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


cdef inline void conv_delta_sample(
    const floating* delta,  # IN (F, OH OW): one sample's
    const floating* W,  # IN (F, C, KH, KW)
    const floating* x,  # IN (C, H, W): the sample's input, x = f(z_prev)
    const Window* g,
    int act_prev,
    double negative_slope,
    floating* delta_prev_out,  # OUT (C, H, W)
    floating* cols,  # scratch (C KH KW, OH OW); unused by a pointwise conv (may be NULL)
) noexcept nogil:
    """delta_prev_out = col2im(W.T @ delta) * f'(z_prev), f' taken from x."""
    cdef Py_ssize_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow
    # row-major dcols (CKK, OHW) = W.T @ delta is column-major dcols.T = delta.T @ W
    if pointwise(g):  # col2im is the identity
        gemm_beta(c'N', c'T', <int>ohw, <int>ckk, <int>g.f, delta, <int>ohw, W, <int>ckk,
                  0.0, delta_prev_out, <int>ohw)
    else:
        gemm_beta(c'N', c'T', <int>ohw, <int>ckk, <int>g.f, delta, <int>ohw, W, <int>ckk,
                  0.0, cols, <int>ohw)
        col2im(cols, g, delta_prev_out)
    activation_grad_rows(x, 1, g.c * g.h * g.w, act_prev, negative_slope, delta_prev_out)


cdef inline void conv_backward(
    const floating* x,  # IN (n, C, H, W): the layer's input
    const floating* delta,  # IN (n, F, OH, OW)
    Py_ssize_t n,
    const Window* g,
    floating* dW_out,  # OUT (F, C, KH, KW)
    floating* db_out,  # OUT (F,)
    const floating* W,  # IN (F, C, KH, KW): read only with delta_prev_out
    int act_prev,
    double negative_slope,
    floating* delta_prev_out,  # OUT (n, C, H, W), or NULL: no delta (the first layer)
    floating* cols,  # scratch (C KH KW, OH OW), a pointwise conv's too
) noexcept nogil:
    """dW_out = sum_i delta_i @ im2col(x_i).T, db_out = delta's sums per channel and,
    with delta_prev_out, each sample's delta (conv_delta_sample) right after its dW
    term, in the same scratch: samples in order, sample 0's GEMM with beta = 0.

    Where OH OW >= F (the scratch then holds F C KH KW values) the GEMMs make dW.T,
    (C KH KW, F) row-major, in dW_out, transposed through the scratch at the end: the
    BLAS (OpenBLAS 0.3.30, Haswell kernels, float32) takes 0.55-0.8x the time of the
    product with m = C KH KW for the CIFAR model's shapes. Shapes alone choose."""
    cdef Py_ssize_t s, i, q
    cdef Py_ssize_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow
    cdef Py_ssize_t n_in = g.c * g.h * g.w, n_out = g.f * ohw
    cdef bint transposed = ohw >= g.f and n > 0
    cdef const floating* a
    if n == 0:
        for i in range(g.f * ckk):
            dW_out[i] = 0
    for s in range(n):
        if pointwise(g):
            a = x + s * n_in
        else:
            im2col(x + s * n_in, g, cols)
            a = cols
        if transposed:
            # row-major dW.T (CKK, F) += a @ delta_s.T is column-major dW = delta_s @ a.T
            gemm_beta(c'T', c'N', <int>g.f, <int>ckk, <int>ohw, delta + s * n_out,
                      <int>ohw, a, <int>ohw, 0.0 if s == 0 else 1.0, dW_out, <int>g.f)
        else:
            # row-major dW (F, CKK) += delta_s @ a.T is column-major dW.T += a @ delta_s.T
            gemm_beta(c'T', c'N', <int>ckk, <int>g.f, <int>ohw, a, <int>ohw,
                      delta + s * n_out, <int>ohw, 0.0 if s == 0 else 1.0, dW_out,
                      <int>ckk)
        if delta_prev_out != NULL:
            conv_delta_sample(delta + s * n_out, W, x + s * n_in, g, act_prev,
                              negative_slope, delta_prev_out + s * n_in, cols)
    if transposed:  # dW_out holds dW.T: through the (now free) scratch
        for q in range(ckk):
            for i in range(g.f):
                cols[i * ckk + q] = dW_out[q * g.f + i]
        memcpy(dW_out, cols, g.f * ckk * sizeof(floating))
    conv_bias_grad(delta, n, g.f, ohw, db_out)


# --------------------------------------------------------------------------- max pooling


cdef inline void pool_rows(
    Py_ssize_t i,  # the output index on this axis
    Py_ssize_t size,
    Py_ssize_t kernel,
    Py_ssize_t stride,
    Py_ssize_t pad,
    Py_ssize_t* lo,  # OUT
    Py_ssize_t* hi,  # OUT
) noexcept nogil:
    """The window's in-image positions [lo, hi) on one axis: [i stride - pad, + kernel)
    clipped to [0, size). Never empty for a validated pool (2 pad <= kernel <= size +
    2 pad, size >= 1); and i stride <= size there ((OH - 1) stride <= size + 2 pad -
    kernel), so nothing overflows."""
    cdef Py_ssize_t r0 = i * stride - pad
    lo[0] = max(r0, 0)
    hi[0] = min(r0 + kernel, size)


cdef inline Py_ssize_t pool_argmax(
    const floating* plane,  # IN (H, W)
    Py_ssize_t w,
    Py_ssize_t r_lo,
    Py_ssize_t r_hi,
    Py_ssize_t c_lo,
    Py_ssize_t c_hi,
) noexcept nogil:
    """reference._pool_argmax for one window: the index r W + c of its maximum, scanning
    rows then columns and taking a value greater than the best so far (from -inf) or
    NaN; the first position if none is taken. That is: the last NaN if there is one,
    else the first maximum; the scan tracks the two apart, with selects instead of
    branches (maxsd and bit masks: on real data a take is unpredictable). Comparing
    in the array type is comparing in double (float32 converts exactly)."""
    cdef Py_ssize_t r, q, k, m, idx = r_lo * w + c_lo, nan_idx = -1
    cdef floating best = -INFINITY, v
    for r in range(r_lo, r_hi):
        for q in range(c_lo, c_hi):
            k = r * w + q
            v = plane[k]
            m = -<Py_ssize_t>(v > best)  # all ones if taken (never for NaN)
            idx = idx ^ ((idx ^ k) & m)
            best = v if v > best else best
            m = -<Py_ssize_t>(v != v)
            nan_idx = nan_idx ^ ((nan_idx ^ k) & m)
    return nan_idx if nan_idx >= 0 else idx


cdef enum:
    POOL_BLOCK = 64  # outputs of one row scanned side by side (pool_row_argmax)
    POOL_MAX_KW = 16  # kernel widths pool_row_argmax takes (wider: one window at a time)


ctypedef struct PoolCols:  # a pool's in-image columns per kernel column v < POOL_MAX_KW
    Py_ssize_t first[POOL_MAX_KW]  # outputs j in [first, end) see an image column at v:
    Py_ssize_t end[POOL_MAX_KW]
    Py_ssize_t pos[POOL_MAX_KW]  # that column for j = first (axis_range)


cdef inline bint pool_cols(const Window* g, PoolCols* pc) noexcept nogil:
    """Fill pc for the row scan; False (pc unused) if the kernel is too wide for it."""
    cdef Py_ssize_t v
    if g.kw > POOL_MAX_KW:
        return False
    for v in range(g.kw):
        axis_range(g.w, v, g.sw, g.pw, g.ow, &pc.first[v], &pc.end[v], &pc.pos[v])
    return True


cdef inline void pool_row_argmax(
    const floating* plane,  # IN (H, W)
    const Window* g,
    Py_ssize_t r_lo,  # the row's windows span input rows [r_lo, r_hi) (pool_rows)
    Py_ssize_t r_hi,
    Py_ssize_t j0,  # outputs [j0, j1) of the row, at most POOL_BLOCK
    Py_ssize_t j1,
    const PoolCols* pc,
    Py_ssize_t* idx,  # OUT (j1 - j0,): pool_argmax of each output
) noexcept nogil:
    """pool_argmax of the outputs j in [j0, j1) of one output row, side by side: each
    output still scans its window's in-image positions rows then columns (r, then the
    kernel column v), but the outputs' scans are independent chains in one loop over j
    (one window at a time is one dependent chain of selects)."""
    cdef floating best[POOL_BLOCK]
    cdef Py_ssize_t nan_idx[POOL_BLOCK]
    cdef Py_ssize_t j, r, v, a, b, k, m, t, row
    cdef floating val
    for j in range(j0, j1):
        t = j - j0
        best[t] = -INFINITY
        nan_idx[t] = -1
        idx[t] = r_lo * g.w + max(j * g.sw - g.pw, 0)  # the first in-image position
    for r in range(r_lo, r_hi):
        row = r * g.w
        for v in range(g.kw):
            a = max(pc.first[v], j0)
            b = min(pc.end[v], j1)
            for j in range(a, b):
                k = row + pc.pos[v] + (j - pc.first[v]) * g.sw
                val = plane[k]
                t = j - j0
                m = -<Py_ssize_t>(val > best[t])
                idx[t] = idx[t] ^ ((idx[t] ^ k) & m)
                best[t] = val if val > best[t] else best[t]
                m = -<Py_ssize_t>(val != val)
                nan_idx[t] = nan_idx[t] ^ ((nan_idx[t] ^ k) & m)
    for t in range(j1 - j0):
        if nan_idx[t] >= 0:
            idx[t] = nan_idx[t]


cdef inline void maxpool_forward(
    const floating* x,  # IN (n, C, H, W), H, W >= 1
    Py_ssize_t n,
    const Window* g,  # f == c
    floating* z_out,  # OUT (n, C, OH, OW)
) noexcept nogil:
    """z_out = x at each window's maximum (pool_argmax)."""
    cdef Py_ssize_t pl, i, j, jb, j0, j1, r_lo, r_hi, c_lo, c_hi, hw = g.h * g.w
    cdef Py_ssize_t idx[POOL_BLOCK]
    cdef PoolCols pc
    cdef bint by_rows = pool_cols(g, &pc)
    cdef const floating* plane
    cdef floating* z
    for pl in range(n * g.c):
        plane = x + pl * hw
        for i in range(g.oh):
            z = z_out + (pl * g.oh + i) * g.ow
            pool_rows(i, g.h, g.kh, g.sh, g.ph, &r_lo, &r_hi)
            if by_rows:
                for jb in range((g.ow + POOL_BLOCK - 1) // POOL_BLOCK):
                    j0 = jb * POOL_BLOCK
                    j1 = min(j0 + POOL_BLOCK, g.ow)
                    pool_row_argmax(plane, g, r_lo, r_hi, j0, j1, &pc, idx)
                    for j in range(j0, j1):
                        z[j] = plane[idx[j - j0]]
            else:
                for j in range(g.ow):
                    pool_rows(j, g.w, g.kw, g.sw, g.pw, &c_lo, &c_hi)
                    z[j] = plane[pool_argmax(plane, g.w, r_lo, r_hi, c_lo, c_hi)]


cdef inline void maxpool_backward_delta(
    const floating* delta,  # IN (n, C, OH, OW)
    const floating* x,  # IN (n, C, H, W), H, W >= 1: the layer's input, x = f(z_prev)
    Py_ssize_t n,
    const Window* g,  # f == c
    int act_prev,
    double negative_slope,
    floating* delta_prev_out,  # OUT (n, C, H, W)
) noexcept nogil:
    """delta_prev_out = 0, every delta[s, c, i, j] added at its window's maximum (found
    again in x: pool_argmax), outputs in row-major order as the reference's np.add.at
    (overlapping windows add in its order: the same bits), then * f'(z_prev) from x,
    sample by sample."""
    cdef Py_ssize_t s, c, i, j, jb, j0, j1, r_lo, r_hi, c_lo, c_hi, k, hw = g.h * g.w
    cdef Py_ssize_t n_in = g.c * hw, ohw = g.oh * g.ow
    cdef Py_ssize_t idx[POOL_BLOCK]
    cdef PoolCols pc
    cdef bint by_rows = pool_cols(g, &pc)
    cdef const floating* plane
    cdef const floating* d
    cdef floating* dp
    for s in range(n):
        memset(delta_prev_out + s * n_in, 0, n_in * sizeof(floating))
        for c in range(g.c):
            plane = x + s * n_in + c * hw
            dp = delta_prev_out + s * n_in + c * hw
            for i in range(g.oh):
                d = delta + (s * g.c + c) * ohw + i * g.ow
                pool_rows(i, g.h, g.kh, g.sh, g.ph, &r_lo, &r_hi)
                if by_rows:
                    for jb in range((g.ow + POOL_BLOCK - 1) // POOL_BLOCK):
                        j0 = jb * POOL_BLOCK
                        j1 = min(j0 + POOL_BLOCK, g.ow)
                        pool_row_argmax(plane, g, r_lo, r_hi, j0, j1, &pc, idx)
                        for j in range(j0, j1):
                            k = idx[j - j0]
                            dp[k] = dp[k] + d[j]
                else:
                    for j in range(g.ow):
                        pool_rows(j, g.w, g.kw, g.sw, g.pw, &c_lo, &c_hi)
                        k = pool_argmax(plane, g.w, r_lo, r_hi, c_lo, c_hi)
                        dp[k] = dp[k] + d[j]
        activation_grad_rows(x + s * n_in, 1, n_in, act_prev, negative_slope,
                             delta_prev_out + s * n_in)
