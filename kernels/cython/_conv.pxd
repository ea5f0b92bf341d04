# The convolution and max-pooling math as nogil cores on raw pointers, shared by conv.pyx
# (the kernels of the public API) and train.pyx (the whole training step). Header-only,
# as _dense.pxd: every function is `cdef inline`, compiled into each module that
# cimports it.
#
# Per-sample layout C x H x W (PyTorch's), samples one after the other; conv weights
# (F, C, KH, KW) row-major, which is the row-major (F, C KH KW) matrix of the GEMMs.
# A conv lowers one sample to its columns (im2col: row (c, u, v) of the (C KH KW, OH OW)
# matrix holds x[c, i SH + u - PH, j SW + v - PW] at column i OW + j, 0 in the padding)
# and multiplies them, sample by sample, so that a sample's results never depend on the
# others (nor on the thread that runs it). The columns are made a block of channels at a
# time (Window.cb, shapes alone choose), each block's GEMM accumulating into the output:
# the block stays in the core's cache between im2col and the GEMM that reads it. Where
# the padded sample is no larger than its columns (Window.hp), im2col copies rows of a
# zero-padded copy of the sample (contiguous spans for stride 1); else it finds the
# in-image ranges (axis_range, im2col). The callers give the scratch: conv.pyx mallocs
# it, train.pyx one set per thread (conv_cols_size, conv_pad_size).
#
# The cores trust their Window (validated by the callers with Python's integers:
# conv.pyx's _out_size, train.pyx's _network; then conv_plan) and never form a product
# of an output index and a stride that the window's own sizes do not bound (axis_range),
# so a validated window cannot overflow Py_ssize_t, whatever its padding.

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
    # set by conv_plan (convs only; shapes alone):
    Py_ssize_t hp, wp  # the zero-padded sample's height and width, H + 2 PH and W + 2 PW,
    # or hp = 0: im2col by in-image ranges (the padded sample larger than its columns)
    Py_ssize_t cb  # channels per im2col block (all C with hp = 0 or a pointwise conv)


cdef enum:
    BIAS_LANES = 8  # independent partial sums of the bias gradient (a vector of them)
    # Elements of one im2col block, at most (unless one channel is more): 48k floats is
    # 192 KiB, inside the per-core L2 with the GEMM's packed panels (measured on the
    # CIFAR model's shapes, AMD EPYC Zen 3, 512 KiB L2: see conv_plan).
    CONV_BLOCK = 1 << 30
    REDUCE_BLOCK = 64  # dW's elements summed side by side (conv_reduce)


cdef inline bint pointwise(const Window* g) noexcept nogil:
    """A 1x1 kernel, stride 1, no padding: the sample itself is its im2col matrix."""
    return g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0 and g.pw == 0


cdef inline void conv_plan(Window* g) noexcept nogil:
    """Set a conv window's hp, wp and cb, from its shapes alone. The padded copy is used
    where C (H + 2 PH) (W + 2 PW) <= C KH KW OH OW: the copy is then no larger than the
    columns and cheaper to make (the product compared in double: its operands are
    validated and the columns' size is below 2**62, so nothing overflows). The blocks
    split the channels evenly into the fewest blocks of at most CONV_BLOCK elements."""
    cdef Py_ssize_t per = g.kh * g.kw * g.oh * g.ow, nb  # one channel's rows of columns
    g.hp = g.wp = 0
    g.cb = g.c
    if pointwise(g):
        return
    if <double>g.c * (g.h + 2.0 * g.ph) * (g.w + 2.0 * g.pw) <= <double>g.c * per:
        g.hp = g.h + 2 * g.ph
        g.wp = g.w + 2 * g.pw
        nb = min(g.c, (g.c * per + CONV_BLOCK - 1) // CONV_BLOCK)
        g.cb = (g.c + nb - 1) // nb


cdef inline Py_ssize_t conv_cols_size(const Window* g) noexcept nogil:
    """Elements of one thread's im2col scratch for this conv (after conv_plan)."""
    if pointwise(g):
        return 0
    return g.cb * g.kh * g.kw * g.oh * g.ow


cdef inline Py_ssize_t conv_pad_size(const Window* g) noexcept nogil:
    """Elements of one zero-padded sample (C, hp, wp) for this conv: 0 where the copy is
    not made (no padding, or hp = 0)."""
    if g.hp == 0 or (g.ph == 0 and g.pw == 0):
        return 0
    return g.c * g.hp * g.wp


cdef inline bint conv_dw_transposed(const Window* g) noexcept nogil:
    """Whether the GEMMs make dW.T, (C KH KW, F) row-major: where OH OW >= F. The BLAS
    (OpenBLAS 0.3.30, Haswell kernels, float32) takes 0.55-0.8x the time of the product
    with m = C KH KW for the CIFAR model's shapes. Shapes alone choose."""
    return g.oh * g.ow >= g.f


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


cdef inline const floating* conv_source(
    const floating* x,  # IN (C, H, W): one sample
    const Window* g,  # hp > 0
    floating* xp,  # scratch (conv_pad_size,)
) noexcept nogil:
    """The sample im2col_rows reads, (C, hp, wp): x itself without padding, else xp,
    written whole (its zeros too: the scratch serves convs of other shapes)."""
    cdef Py_ssize_t c, r, wp = g.wp, pw = g.pw
    cdef floating* row
    if g.ph == 0 and g.pw == 0:
        return x
    for c in range(g.c):
        row = xp + c * g.hp * wp
        memset(row, 0, g.ph * wp * sizeof(floating))
        row += g.ph * wp
        for r in range(g.h):
            memset(row, 0, pw * sizeof(floating))
            memcpy(row + pw, x + (c * g.h + r) * g.w, g.w * sizeof(floating))
            memset(row + pw + g.w, 0, pw * sizeof(floating))
            row += wp
        memset(row, 0, g.ph * wp * sizeof(floating))
    return xp


cdef inline void im2col_rows(
    const floating* src,  # IN (C, hp, wp): the padded sample (conv_source)
    const Window* g,
    Py_ssize_t c0,
    Py_ssize_t c1,
    floating* cols,  # OUT ((c1 - c0) KH KW, OH OW)
) noexcept nogil:
    """The rows of channels [c0, c1) of im2col: cols[((c - c0) KH + u) KW + v, i OW + j] =
    src[c, i SH + u, j SW + v], spans of OW contiguous values for stride 1."""
    cdef Py_ssize_t c, u, v, i, j, ow = g.ow, sw = g.sw, step = g.sh * g.wp
    cdef floating* out = cols
    cdef const floating* s
    for c in range(c0, c1):
        for u in range(g.kh):
            for v in range(g.kw):
                s = src + (c * g.hp + u) * g.wp + v
                for i in range(g.oh):
                    if sw == 1:
                        for j in range(ow):
                            out[j] = s[j]
                    else:
                        for j in range(ow):
                            out[j] = s[j * sw]
                    out += ow
                    s += step


cdef inline void col2im_rows(
    const floating* cols,  # IN ((c1 - c0) KH KW, OH OW)
    const Window* g,
    Py_ssize_t c0,
    Py_ssize_t c1,
    floating* dst,  # INOUT (C, hp, wp): the padded sample's accumulator
) noexcept nogil:
    """im2col_rows' transpose, added into dst: each element gets its terms in (u, v)
    order, as col2im's (the same bits once the padding is dropped)."""
    cdef Py_ssize_t c, u, v, i, j, ow = g.ow, sw = g.sw, step = g.sh * g.wp
    cdef const floating* s = cols
    cdef floating* d
    for c in range(c0, c1):
        for u in range(g.kh):
            for v in range(g.kw):
                d = dst + (c * g.hp + u) * g.wp + v
                for i in range(g.oh):
                    if sw == 1:
                        for j in range(ow):
                            d[j] = d[j] + s[j]
                    else:
                        for j in range(ow):
                            d[j * sw] = d[j * sw] + s[j]
                    s += ow
                    d += step


cdef inline void conv_forward_sample(
    const floating* x,  # IN (C, H, W): one sample
    const Window* g,  # conv_plan'ed
    const floating* W,  # IN (F, C, KH, KW)
    const floating* b,  # IN (F,)
    int act,  # never SOFTMAX
    double negative_slope,
    floating* z_out,  # OUT (F, OH, OW)
    floating* cols,  # scratch (conv_cols_size,)
    floating* xp,  # scratch (conv_pad_size,)
) noexcept nogil:
    """z_out = act(W * x + b) for one sample: im2col a block of channels at a time, each
    block's GEMM (F, cb KH KW) @ (cb KH KW, OH OW) added into z_out, then the bias (the
    sum in the array type, as the reference's z += b) and the activation (in double,
    _dense's) channel by channel, the channel still in L1."""
    cdef Py_ssize_t q, p, blk, c0, c1, kk = g.kh * g.kw
    cdef Py_ssize_t ckk = g.c * kk, ohw = g.oh * g.ow
    cdef const floating* src
    cdef floating* z
    cdef floating bq
    # row-major z (F, OHW) = W (F, CKK) @ a (CKK, OHW) is column-major z.T = a.T @ W.T
    if pointwise(g):
        gemm_beta(c'N', c'N', <int>ohw, <int>g.f, <int>ckk, x, <int>ohw, W, <int>ckk,
                  0.0, z_out, <int>ohw)
    elif g.hp == 0:
        im2col(x, g, cols)
        gemm_beta(c'N', c'N', <int>ohw, <int>g.f, <int>ckk, cols, <int>ohw, W, <int>ckk,
                  0.0, z_out, <int>ohw)
    else:
        src = conv_source(x, g, xp)
        for blk in range((g.c + g.cb - 1) // g.cb):
            c0 = blk * g.cb
            c1 = min(g.c, c0 + g.cb)
            im2col_rows(src, g, c0, c1, cols)
            gemm_beta(c'N', c'N', <int>ohw, <int>g.f, <int>((c1 - c0) * kk), cols,
                      <int>ohw, W + c0 * kk, <int>ckk, 0.0 if c0 == 0 else 1.0, z_out,
                      <int>ohw)
    for q in range(g.f):
        z = z_out + q * ohw
        bq = b[q]
        for p in range(ohw):
            z[p] = z[p] + bq
        activation_rows(z, 1, ohw, act, negative_slope, z, <double*>NULL)


cdef inline void conv_forward(
    const floating* x,  # IN (n, C, H, W)
    Py_ssize_t n,
    const Window* g,  # conv_plan'ed
    const floating* W,  # IN (F, C, KH, KW)
    const floating* b,  # IN (F,)
    int act,  # never SOFTMAX
    double negative_slope,
    floating* z_out,  # OUT (n, F, OH, OW)
    floating* cols,  # scratch (conv_cols_size,)
    floating* xp,  # scratch (conv_pad_size,)
) noexcept nogil:
    """conv_forward_sample of every sample, in order."""
    cdef Py_ssize_t s, n_in = g.c * g.h * g.w, n_out = g.f * g.oh * g.ow
    for s in range(n):
        conv_forward_sample(x + s * n_in, g, W, b, act, negative_slope, z_out + s * n_out,
                            cols, xp)


cdef inline void _conv_dw_gemm(
    const floating* a,  # IN (nr, OH OW): rows [r0, r0 + nr) of the sample's im2col
    const floating* delta,  # IN (F, OH OW)
    const Window* g,
    Py_ssize_t r0,
    Py_ssize_t nr,
    bint tr,  # conv_dw_transposed
    floating beta,
    floating* dw,  # INOUT dW (F, CKK), or dW.T (CKK, F): columns (rows) [r0, r0 + nr)
) noexcept nogil:
    cdef Py_ssize_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow
    if tr:
        # row-major dW.T (CKK, F) += a @ delta.T is column-major dW = delta @ a.T
        gemm_beta(c'T', c'N', <int>g.f, <int>nr, <int>ohw, delta, <int>ohw, a, <int>ohw,
                  beta, dw + r0 * g.f, <int>g.f)
    else:
        # row-major dW (F, CKK) += delta @ a.T is column-major dW.T += a @ delta.T
        gemm_beta(c'T', c'N', <int>nr, <int>g.f, <int>ohw, a, <int>ohw, delta, <int>ohw,
                  beta, dw + r0, <int>ckk)


cdef inline void conv_backward_sample(
    const floating* x,  # IN (C, H, W): one sample of the layer's input, x = f(z_prev)
    const floating* delta,  # IN (F, OH, OW): its delta
    const Window* g,  # conv_plan'ed
    floating* dw,  # INOUT (F C KH KW,): dW, or dW.T where conv_dw_transposed; or NULL
    bint accumulate,  # dw += the sample's term (else dw = it)
    const floating* W,  # IN (F, C, KH, KW): read only with delta_prev_out
    int act_prev,
    double negative_slope,
    floating* delta_prev_out,  # OUT (C, H, W), or NULL: no delta
    floating* cols,  # scratch (conv_cols_size,); a pointwise conv's unused
    floating* xp,  # scratch (conv_pad_size,): the padded sample
    floating* dxp,  # scratch (conv_pad_size,): the padded delta
) noexcept nogil:
    """One sample's term of dW, delta @ im2col(x).T, and its delta_prev_out =
    col2im(W.T @ delta) * f'(z_prev) (f' from x), a block of channels at a time: the
    block's columns feed its dW GEMM, then hold its delta's columns (W.T @ delta, those
    channels' rows) until col2im adds them in."""
    cdef Py_ssize_t blk, c0, c1, r0, nr, kk = g.kh * g.kw
    cdef Py_ssize_t ckk = g.c * kk, ohw = g.oh * g.ow, n_in = g.c * g.h * g.w
    cdef bint tr = conv_dw_transposed(g)
    cdef floating beta = 1.0 if accumulate else 0.0
    cdef const floating* src = x
    cdef floating* acc = delta_prev_out
    if g.hp == 0 or pointwise(g):  # one block of every channel
        if dw != NULL:
            if not pointwise(g):
                im2col(x, g, cols)
                src = cols
            _conv_dw_gemm(src, delta, g, 0, ckk, tr, beta, dw)
        if delta_prev_out != NULL:
            # row-major dcols (CKK, OHW) = W.T @ delta is column-major dcols.T = delta.T @ W
            if pointwise(g):  # col2im is the identity
                gemm_beta(c'N', c'T', <int>ohw, <int>ckk, <int>g.f, delta, <int>ohw, W,
                          <int>ckk, 0.0, delta_prev_out, <int>ohw)
            else:
                gemm_beta(c'N', c'T', <int>ohw, <int>ckk, <int>g.f, delta, <int>ohw, W,
                          <int>ckk, 0.0, cols, <int>ohw)
                col2im(cols, g, delta_prev_out)
    else:
        if dw != NULL:
            src = conv_source(x, g, xp)
        if delta_prev_out != NULL:
            if conv_pad_size(g):
                acc = dxp
            memset(acc, 0, g.c * g.hp * g.wp * sizeof(floating))
        for blk in range((g.c + g.cb - 1) // g.cb):
            c0 = blk * g.cb
            c1 = min(g.c, c0 + g.cb)
            r0, nr = c0 * kk, (c1 - c0) * kk
            if dw != NULL:
                im2col_rows(src, g, c0, c1, cols)
                _conv_dw_gemm(cols, delta, g, r0, nr, tr, beta, dw)
            if delta_prev_out != NULL:
                gemm_beta(c'N', c'T', <int>ohw, <int>nr, <int>g.f, delta, <int>ohw, W + r0,
                          <int>ckk, 0.0, cols, <int>ohw)
                col2im_rows(cols, g, c0, c1, acc)
        if delta_prev_out != NULL and acc == dxp:  # drop the padding
            for c0 in range(g.c):
                for r0 in range(g.h):
                    memcpy(delta_prev_out + (c0 * g.h + r0) * g.w,
                           dxp + (c0 * g.hp + r0 + g.ph) * g.wp + g.pw,
                           g.w * sizeof(floating))
    if delta_prev_out != NULL:
        activation_grad_rows(x, 1, n_in, act_prev, negative_slope, delta_prev_out)


cdef inline double bias_sum(
    const floating* delta,  # IN (n, F, OH OW)
    Py_ssize_t n,
    Py_ssize_t f,
    Py_ssize_t ohw,
    Py_ssize_t q,
) noexcept nogil:
    """The sum of delta[:, q] over samples and positions, in double, in BIAS_LANES
    independent partial sums (one vector of them; a single running sum would be a chain
    of dependent additions)."""
    cdef Py_ssize_t s, p, t, p8 = ohw - ohw % BIAS_LANES
    cdef double acc[BIAS_LANES]
    cdef const floating* d
    for t in range(BIAS_LANES):
        acc[t] = 0.0
    for s in range(n):
        d = delta + (s * f + q) * ohw
        for p in range(p8 // BIAS_LANES):
            for t in range(BIAS_LANES):
                acc[t] += d[p * BIAS_LANES + t]
        for p in range(p8, ohw):
            acc[0] += d[p]
    return (((acc[0] + acc[1]) + (acc[2] + acc[3]))
            + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


cdef inline void conv_reduce(
    const floating* parts,  # IN (n_parts, stride): each a dw of conv_backward_sample
    Py_ssize_t n_parts,
    Py_ssize_t stride,
    const Window* g,
    Py_ssize_t q0,  # the rows (dW's columns) [q0, q1) of C KH KW
    Py_ssize_t q1,
    floating* dW_out,  # OUT (F, C KH KW): columns [q0, q1)
) noexcept nogil:
    """dW_out = the parts' sum, in double and in the parts' order (then rounded once),
    transposed back where conv_dw_transposed."""
    cdef Py_ssize_t q, i, k, i0, nb, blk, ckk = g.c * g.kh * g.kw
    cdef double acc[REDUCE_BLOCK]
    cdef const floating* p
    if conv_dw_transposed(g):  # parts (CKK, F): runs of F along i
        for q in range(q0, q1):
            for blk in range((g.f + REDUCE_BLOCK - 1) // REDUCE_BLOCK):
                i0 = blk * REDUCE_BLOCK
                nb = min(<Py_ssize_t>REDUCE_BLOCK, g.f - i0)
                p = parts + q * g.f + i0
                for i in range(nb):
                    acc[i] = p[i]
                for k in range(1, n_parts):
                    p = parts + k * stride + q * g.f + i0
                    for i in range(nb):
                        acc[i] += p[i]
                for i in range(nb):
                    dW_out[(i0 + i) * ckk + q] = <floating>acc[i]
    else:  # parts (F, CKK): runs along q
        for i in range(g.f):
            for blk in range((q1 - q0 + REDUCE_BLOCK - 1) // REDUCE_BLOCK):
                i0 = q0 + blk * REDUCE_BLOCK
                nb = min(<Py_ssize_t>REDUCE_BLOCK, q1 - i0)
                p = parts + i * ckk + i0
                for q in range(nb):
                    acc[q] = p[q]
                for k in range(1, n_parts):
                    p = parts + k * stride + i * ckk + i0
                    for q in range(nb):
                        acc[q] += p[q]
                for q in range(nb):
                    dW_out[i * ckk + i0 + q] = <floating>acc[q]


cdef inline void conv_backward(
    const floating* x,  # IN (n, C, H, W): the layer's input
    const floating* delta,  # IN (n, F, OH, OW)
    Py_ssize_t n,  # >= 1
    const Window* g,  # conv_plan'ed
    floating* dW_out,  # OUT (F, C, KH, KW)
    floating* db_out,  # OUT (F,)
    floating* part,  # scratch (F C KH KW,): dW, or dW.T where conv_dw_transposed
    floating* cols,  # scratch (conv_cols_size,)
    floating* xp,  # scratch (conv_pad_size,)
) noexcept nogil:
    """dW_out = sum_i delta_i @ im2col(x_i).T (samples in order, accumulated by the GEMMs
    in one part of conv_reduce), db_out = delta's sums per channel (bias_sum)."""
    cdef Py_ssize_t s, q, n_in = g.c * g.h * g.w, n_out = g.f * g.oh * g.ow
    for s in range(n):
        conv_backward_sample(x + s * n_in, delta + s * n_out, g, part, s > 0,
                             <const floating*>NULL, 0, 0.0, <floating*>NULL, cols, xp,
                             <floating*>NULL)
    conv_reduce(part, 1, 0, g, 0, g.c * g.kh * g.kw, dW_out)
    for q in range(g.f):
        db_out[q] = <floating>bias_sum(delta, n, g.f, g.oh * g.ow, q)


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


cdef inline bint pool2(const Window* g) noexcept nogil:
    """The common 2x2 pool of stride 2 without padding: windows that do not overlap."""
    return (g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2 and g.ph == 0
            and g.pw == 0)


cdef inline void pool2_forward_plane(
    const floating* plane,  # IN (H, W)
    const Window* g,  # pool2
    floating* z,  # OUT (OH, OW)
) noexcept nogil:
    """pool_argmax's value of each 2x2 window: the scan over its four positions in order,
    taking a value greater than the best so far (from -inf) or NaN, keeps the value it
    takes, so the window's value is the scan's last taken value (the same bits). The
    selects are independent across outputs: one vector loop per row."""
    cdef Py_ssize_t i, j, ow = g.ow
    cdef const floating* r0
    cdef const floating* r1
    cdef floating m, v
    for i in range(g.oh):
        r0 = plane + 2 * i * g.w
        r1 = r0 + g.w
        for j in range(ow):
            m = -INFINITY
            v = r0[2 * j]
            m = v if (v > m) | (v != v) else m
            v = r0[2 * j + 1]
            m = v if (v > m) | (v != v) else m
            v = r1[2 * j]
            m = v if (v > m) | (v != v) else m
            v = r1[2 * j + 1]
            m = v if (v > m) | (v != v) else m
            z[i * ow + j] = m


cdef inline void pool2_backward_plane(
    const floating* d,  # IN (OH, OW)
    const floating* plane,  # IN (H, W)
    const Window* g,  # pool2
    floating* dp,  # OUT (H, W)
) noexcept nogil:
    """np.add.at of each delta at its 2x2 window's maximum (pool_argmax: the scan of
    pool2_forward_plane, tracking which of the four it took; the first if none) into
    zeros: the windows do not overlap, so each position gets 0 + its delta or 0, written
    once (the rows and columns no window covers: 0). Per row of POOL_BLOCK windows: a
    vector loop finds which position each takes (selects), then the zeros and one
    branch-free store per window (selects of the four stores do not vectorize)."""
    cdef Py_ssize_t i, j, j0, nj, jb, ow = g.ow, w = g.w
    cdef const floating* r0
    cdef const floating* r1
    cdef const floating* dr
    cdef floating* o0
    cdef floating* o1
    cdef floating m, v
    cdef int k
    cdef int which[POOL_BLOCK]
    for i in range(g.oh):
        for jb in range((ow + POOL_BLOCK - 1) // POOL_BLOCK):
            j0 = jb * POOL_BLOCK
            nj = min(<Py_ssize_t>POOL_BLOCK, ow - j0)
            r0 = plane + 2 * i * w + 2 * j0
            r1 = r0 + w
            for j in range(nj):
                v = r0[2 * j]
                m = v  # taken: > -inf, or NaN; else -inf, and so is v
                k = 0
                v = r0[2 * j + 1]
                k = 1 if (v > m) | (v != v) else k
                m = v if (v > m) | (v != v) else m
                v = r1[2 * j]
                k = 2 if (v > m) | (v != v) else k
                m = v if (v > m) | (v != v) else m
                v = r1[2 * j + 1]
                k = 3 if (v > m) | (v != v) else k
                which[j] = k
            dr = d + i * ow + j0
            o0 = dp + 2 * i * w + 2 * j0
            for j in range(2 * nj):
                o0[j] = 0
                o0[w + j] = 0
            for j in range(nj):  # one store per window, at r0 + (k & 1) or r1 + (k & 1)
                k = which[j]
                o0[2 * j + (k & 1) + (k >> 1) * w] = dr[j] + 0  # 0 + delta, as np.add.at
        o0 = dp + 2 * i * w  # into zeros (-0.0 becomes 0.0)
        o1 = o0 + w
        for j in range(2 * ow, w):
            o0[j] = 0
            o1[j] = 0
    for i in range(2 * g.oh * w, g.h * w):
        dp[i] = 0


cdef inline void maxpool_forward_sample(
    const floating* x,  # IN (C, H, W), H, W >= 1: one sample
    const Window* g,  # f == c
    floating* z_out,  # OUT (C, OH, OW)
) noexcept nogil:
    """z_out = x at each window's maximum (pool_argmax)."""
    cdef Py_ssize_t c, i, j, jb, j0, j1, r_lo, r_hi, c_lo, c_hi, hw = g.h * g.w
    cdef Py_ssize_t idx[POOL_BLOCK]
    cdef PoolCols pc
    cdef bint by_rows
    cdef const floating* plane
    cdef floating* z
    if pool2(g):
        for c in range(g.c):
            pool2_forward_plane(x + c * hw, g, z_out + c * g.oh * g.ow)
        return
    by_rows = pool_cols(g, &pc)
    for c in range(g.c):
        plane = x + c * hw
        for i in range(g.oh):
            z = z_out + (c * g.oh + i) * g.ow
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


cdef inline void maxpool_forward(
    const floating* x,  # IN (n, C, H, W), H, W >= 1
    Py_ssize_t n,
    const Window* g,  # f == c
    floating* z_out,  # OUT (n, C, OH, OW)
) noexcept nogil:
    """maxpool_forward_sample of every sample."""
    cdef Py_ssize_t s, n_in = g.c * g.h * g.w, n_out = g.c * g.oh * g.ow
    for s in range(n):
        maxpool_forward_sample(x + s * n_in, g, z_out + s * n_out)


cdef inline void maxpool_backward_sample(
    const floating* delta,  # IN (C, OH, OW): one sample's
    const floating* x,  # IN (C, H, W), H, W >= 1: the layer's input, x = f(z_prev)
    const Window* g,  # f == c
    int act_prev,
    double negative_slope,
    floating* delta_prev_out,  # OUT (C, H, W)
) noexcept nogil:
    """delta_prev_out = 0, every delta[c, i, j] added at its window's maximum (found
    again in x: pool_argmax), outputs in row-major order as the reference's np.add.at
    (overlapping windows add in its order: the same bits), then * f'(z_prev) from x."""
    cdef Py_ssize_t c, i, j, jb, j0, j1, r_lo, r_hi, c_lo, c_hi, k, hw = g.h * g.w
    cdef Py_ssize_t n_in = g.c * hw, ohw = g.oh * g.ow
    cdef Py_ssize_t idx[POOL_BLOCK]
    cdef PoolCols pc
    cdef bint by_rows
    cdef const floating* plane
    cdef const floating* d
    cdef floating* dp
    if pool2(g):
        for c in range(g.c):
            pool2_backward_plane(delta + c * ohw, x + c * hw, g, delta_prev_out + c * hw)
    else:
        by_rows = pool_cols(g, &pc)
        memset(delta_prev_out, 0, n_in * sizeof(floating))
        for c in range(g.c):
            plane = x + c * hw
            dp = delta_prev_out + c * hw
            for i in range(g.oh):
                d = delta + c * ohw + i * g.ow
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
    activation_grad_rows(x, 1, n_in, act_prev, negative_slope, delta_prev_out)


cdef inline void maxpool_backward_delta(
    const floating* delta,  # IN (n, C, OH, OW)
    const floating* x,  # IN (n, C, H, W), H, W >= 1: the layer's input, x = f(z_prev)
    Py_ssize_t n,
    const Window* g,  # f == c
    int act_prev,
    double negative_slope,
    floating* delta_prev_out,  # OUT (n, C, H, W)
) noexcept nogil:
    """maxpool_backward_sample of every sample."""
    cdef Py_ssize_t s, n_in = g.c * g.h * g.w, n_out = g.c * g.oh * g.ow
    for s in range(n):
        maxpool_backward_sample(delta + s * n_out, x + s * n_in, g, act_prev,
                                negative_slope, delta_prev_out + s * n_in)
