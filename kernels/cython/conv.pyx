"""Cython convolution and max-pooling kernels: forward and backward passes.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Arrays are C-contiguous (n, C, H, W); a conv lowers each sample to its im2col
columns (a block of channels at a time) in a scratch this module mallocs per call and
multiplies them sample by sample (the BLAS through scipy.linalg.cython_blas), the pools
scan their windows as the reference does (the same maxima, ties and NaN, and the same
bits). The math is the pointer-based cores of _conv.pxd, shared with train.pyx (which
runs them on the threads; these kernels are serial); these wrappers check shapes,
windows and codes (with Python's integers, so a huge stride or padding cannot overflow a
check).

Each kernel is a Python-level function over a fused-type implementation (``_<name>``),
whose memoryviews refuse arrays of the wrong dtype, rank, layout or writeability; when a
call fails, the kernel raises fastnn.kernels._checks' error naming the argument instead.
"""

from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.limits cimport INT_MAX
from libc.stdlib cimport free, malloc

from _common cimport N_ACTIVATIONS, SOFTMAX, cptr1, floating, ptr1
from _conv cimport (
    Window, conv_backward, conv_backward_sample, conv_cols_size, conv_forward,
    conv_pad_size, conv_plan, maxpool_backward_delta, maxpool_forward,
)

from .._checks import argument_error


# --------------------------------------------------------------------------- helpers


cdef int _check_act(str name, Py_ssize_t act) except -1:
    if act < 0 or act >= N_ACTIVATIONS:
        raise ValueError(f"{name}: unknown activation code {act}")
    return 0


cdef int _check_shape(str name, tuple got, tuple want) except -1:
    if got != want:
        raise ValueError(f"{name} has shape {got}, expected {want}")
    return 0


cdef tuple _shape(const floating[:, :, :, ::1] a):
    return (a.shape[0], a.shape[1], a.shape[2], a.shape[3])


cdef inline const floating* cptr4(const floating[:, :, :, ::1] a) noexcept nogil:
    """The data pointer, NULL for an empty array (the cores never read it then)."""
    if a.shape[0] > 0 and a.shape[1] > 0 and a.shape[2] > 0 and a.shape[3] > 0:
        return &a[0, 0, 0, 0]
    return NULL


cdef inline floating* ptr4(floating[:, :, :, ::1] a) noexcept nogil:
    if a.shape[0] > 0 and a.shape[1] > 0 and a.shape[2] > 0 and a.shape[3] > 0:
        return &a[0, 0, 0, 0]
    return NULL


cdef object _out_size(str name, object size, object kernel, object stride, object pad):
    """reference._out_size, in Python's integers."""
    if not (stride >= 1 and pad >= 0):
        raise ValueError(f"{name}: stride must be at least 1 and padding at least 0")
    if not (1 <= kernel <= size + 2 * pad):
        raise ValueError(f"{name}: the kernel ({kernel}) is larger than the padded input "
                         f"({size + 2 * pad})")
    return (size + 2 * pad - kernel) // stride + 1


cdef Window _window(tuple in_shape, Py_ssize_t f, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                    Py_ssize_t oh, Py_ssize_t ow):
    cdef Window g
    g.c, g.h, g.w = in_shape[1], in_shape[2], in_shape[3]
    g.f, g.oh, g.ow = f, oh, ow
    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw = kh, kw, sh, sw, ph, pw
    g.hp = g.wp = 0
    g.cb = g.c
    return g


cdef int _check_gemm(const Window* g) except -1:
    """The GEMMs' dimensions fit the BLAS's int (checked where a GEMM runs)."""
    cdef object ckk = <object>g.c * g.kh * g.kw, ohw = <object>g.oh * g.ow
    if max(ckk, ohw, g.f) > INT_MAX:
        raise ValueError(f"conv2d: C * KH * KW = {ckk}, OH * OW = {ohw} and F = {g.f} must "
                         f"each be at most {INT_MAX} (the BLAS takes int dimensions)")
    return 0


cdef void* _scratch(object size, size_t itemsize) except? NULL:
    """malloc of ``size`` elements (at least one byte); free() it."""
    if size > PY_SSIZE_T_MAX // itemsize:
        raise MemoryError()
    cdef void* p = malloc(max(<size_t>size * itemsize, <size_t>1))
    if p == NULL:
        raise MemoryError()
    return p


cdef void* _conv_scratch(const Window* g, size_t itemsize, Py_ssize_t pads, bint part,
                         floating** cols, floating** xp, floating** dxp) except? NULL:
    """One malloc for a conv's scratch: its im2col block (conv_cols_size), ``pads``
    padded samples (conv_pad_size each: xp, then dxp) and, with ``part``, dW's
    accumulator (F C KH KW). Returns the block to free()."""
    cdef Py_ssize_t n_cols = conv_cols_size(g), n_pad = conv_pad_size(g)
    cdef object size = <object>n_cols + pads * n_pad
    if part:
        size += <object>g.f * g.c * g.kh * g.kw
    cdef floating* p = <floating*>_scratch(size, itemsize)
    cols[0] = p
    xp[0] = p + n_cols
    dxp[0] = p + n_cols + (n_pad if pads > 1 else 0)
    return p


cdef Window _pool_window(tuple in_shape, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                         Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw):
    """The checks of reference._pool_argmax; the pool's output size."""
    cdef object oh = _out_size("maxpool2d height", in_shape[2], kh, sh, ph)
    cdef object ow = _out_size("maxpool2d width", in_shape[3], kw, sw, pw)
    if not (2 * <object>ph <= kh and 2 * <object>pw <= kw):
        raise ValueError("maxpool2d: padding must be at most half the kernel")
    if (in_shape[2] == 0 or in_shape[3] == 0) and in_shape[0] * in_shape[1] > 0:
        raise ValueError("maxpool2d: the input has no pixels (H or W is 0), so a window "
                         "has no maximum")
    # oh <= H + 1 and ow <= W + 1 (2 pad <= kernel): they fit
    return _window(in_shape, in_shape[1], kh, kw, sh, sw, ph, pw, oh, ow)


# --------------------------------------------------------------------------- kernels


def conv2d_forward(x, W, b, stride_h, stride_w, pad_h, pad_w, act, negative_slope, z_out):
    """z_out = act(b[f] + sum_{c,u,v} W[f, c, u, v] x[n, c, i sh + u - ph, j sw + v - pw])
    (x zero outside the image; PyTorch's Conv2d; softmax not allowed)."""
    try:
        _conv2d_forward(x, W, b, stride_h, stride_w, pad_h, pad_w, act, negative_slope, z_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("conv2d_forward", (x, W, b, stride_h, stride_w, pad_h, pad_w,
                                                act, negative_slope, z_out)) or exc from None


def conv2d_backward(x, delta, stride_h, stride_w, pad_h, pad_w, dW_out, db_out):
    """dW_out[f, c, u, v] = sum_{n,i,j} delta[n, f, i, j] x[n, c, i sh + u - ph,
    j sw + v - pw], db_out[f] = sum_{n,i,j} delta[n, f, i, j] (in double)."""
    try:
        _conv2d_backward(x, delta, stride_h, stride_w, pad_h, pad_w, dW_out, db_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("conv2d_backward", (x, delta, stride_h, stride_w, pad_h, pad_w,
                                                 dW_out, db_out)) or exc from None


def conv2d_backward_delta(delta, W, x, stride_h, stride_w, pad_h, pad_w, act_prev,
                          negative_slope, delta_prev_out):
    """delta_prev_out = every delta[n, f, i, j] W[f, c, u, v] added at x[n, c, i sh + u - ph,
    j sw + v - pw] (the padding's dropped), times f'(z_prev) taken from x = f(z_prev)."""
    try:
        _conv2d_backward_delta(delta, W, x, stride_h, stride_w, pad_h, pad_w, act_prev,
                               negative_slope, delta_prev_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("conv2d_backward_delta", (
            delta, W, x, stride_h, stride_w, pad_h, pad_w, act_prev, negative_slope,
            delta_prev_out)) or exc from None


def maxpool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, z_out):
    """z_out = the maximum of each window's positions inside the image (PyTorch's
    MaxPool2d, floor mode; the first maximum, NaN wins)."""
    try:
        _maxpool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, z_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("maxpool2d_forward", (x, kernel_h, kernel_w, stride_h, stride_w,
                                                   pad_h, pad_w, z_out)) or exc from None


def maxpool2d_backward_delta(delta, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                             act_prev, negative_slope, delta_prev_out):
    """delta_prev_out = every delta[n, c, i, j] added at its window's maximum (outputs in
    row-major order), times f'(z_prev) taken from x = f(z_prev)."""
    try:
        _maxpool2d_backward_delta(delta, x, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                                  pad_w, act_prev, negative_slope, delta_prev_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("maxpool2d_backward_delta", (
            delta, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, act_prev,
            negative_slope, delta_prev_out)) or exc from None


# --------------------------------------------------------------------------- implementations


def _conv2d_forward(
    const floating[:, :, :, ::1] x not None,  # IN (n, C, H, W)
    const floating[:, :, :, ::1] W not None,  # IN (F, C, KH, KW)
    const floating[::1] b not None,  # IN (F,)
    Py_ssize_t stride_h,  # ints are Py_ssize_t: converted by __index__ (a float raises)
    Py_ssize_t stride_w,
    Py_ssize_t pad_h,
    Py_ssize_t pad_w,
    Py_ssize_t act,
    double negative_slope,
    floating[:, :, :, ::1] z_out not None,  # OUT (n, F, OH, OW)
):
    cdef tuple xs = _shape(x)
    cdef Py_ssize_t n = x.shape[0], f = W.shape[0], kh = W.shape[2], kw = W.shape[3]
    _check_act("act", act)
    if act == SOFTMAX:
        raise ValueError("act: softmax is for dense layers")
    oh = _out_size("conv2d height", xs[2], kh, stride_h, pad_h)
    ow = _out_size("conv2d width", xs[3], kw, stride_w, pad_w)
    _check_shape("W", _shape(W), (f, xs[1], kh, kw))
    _check_shape("b", (b.shape[0],), (f,))
    _check_shape("z_out", _shape(z_out), (n, f, oh, ow))
    cdef Window g = _window(xs, f, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow)
    if n == 0 or f == 0 or g.oh * g.ow == 0:
        return
    _check_gemm(&g)
    conv_plan(&g)
    cdef floating* cols
    cdef floating* xp
    cdef floating* dxp
    cdef void* block = _conv_scratch(&g, sizeof(floating), 1, False, &cols, &xp, &dxp)
    with nogil:
        conv_forward(cptr4(x), n, &g, cptr4(W), cptr1(b), <int>act, negative_slope,
                     ptr4(z_out), cols, xp)
    free(block)


def _conv2d_backward(
    const floating[:, :, :, ::1] x not None,  # IN (n, C, H, W)
    const floating[:, :, :, ::1] delta not None,  # IN (n, F, OH, OW)
    Py_ssize_t stride_h,
    Py_ssize_t stride_w,
    Py_ssize_t pad_h,
    Py_ssize_t pad_w,
    floating[:, :, :, ::1] dW_out not None,  # OUT (F, C, KH, KW)
    floating[::1] db_out not None,  # OUT (F,)
):
    cdef tuple xs = _shape(x)
    cdef Py_ssize_t i, n = x.shape[0], f = dW_out.shape[0]
    cdef Py_ssize_t kh = dW_out.shape[2], kw = dW_out.shape[3]
    oh = _out_size("conv2d height", xs[2], kh, stride_h, pad_h)
    ow = _out_size("conv2d width", xs[3], kw, stride_w, pad_w)
    _check_shape("delta", _shape(delta), (n, f, oh, ow))
    _check_shape("dW_out", _shape(dW_out), (f, xs[1], kh, kw))
    _check_shape("db_out", (db_out.shape[0],), (f,))
    if f == 0:
        return
    cdef Window g
    cdef floating* cols
    cdef floating* xp
    cdef floating* dxp
    if n == 0 or oh * ow == 0:  # no term: zeros
        dW_out[...] = 0
        db_out[...] = 0
        return
    g = _window(xs, f, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow)
    _check_gemm(&g)
    conv_plan(&g)
    cdef void* block = _conv_scratch(&g, sizeof(floating), 1, True, &cols, &xp, &dxp)
    cdef floating* part = cols + conv_cols_size(&g) + conv_pad_size(&g)
    with nogil:
        conv_backward(cptr4(x), cptr4(delta), n, &g, ptr4(dW_out), ptr1(db_out), part, cols,
                      xp)
    free(block)


def _conv2d_backward_delta(
    const floating[:, :, :, ::1] delta not None,  # IN (n, F, OH, OW)
    const floating[:, :, :, ::1] W not None,  # IN (F, C, KH, KW)
    const floating[:, :, :, ::1] x not None,  # IN (n, C, H, W): x = f(z_prev)
    Py_ssize_t stride_h,
    Py_ssize_t stride_w,
    Py_ssize_t pad_h,
    Py_ssize_t pad_w,
    Py_ssize_t act_prev,
    double negative_slope,
    floating[:, :, :, ::1] delta_prev_out not None,  # OUT (n, C, H, W)
):
    cdef tuple xs = _shape(x)
    cdef Py_ssize_t s, n = x.shape[0], f = W.shape[0], kh = W.shape[2], kw = W.shape[3]
    _check_act("act_prev", act_prev)
    oh = _out_size("conv2d height", xs[2], kh, stride_h, pad_h)
    ow = _out_size("conv2d width", xs[3], kw, stride_w, pad_w)
    _check_shape("W", _shape(W), (f, xs[1], kh, kw))
    _check_shape("delta", _shape(delta), (n, f, oh, ow))
    _check_shape("delta_prev_out", _shape(delta_prev_out), xs)
    if n == 0 or xs[1] * xs[2] * xs[3] == 0:
        return
    cdef Window g
    cdef floating* cols
    cdef floating* xp
    cdef floating* dxp
    if f == 0 or oh * ow == 0:  # no term: f'(z_prev) times zeros
        delta_prev_out[...] = 0
        return
    g = _window(xs, f, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow)
    _check_gemm(&g)
    conv_plan(&g)
    cdef void* block = _conv_scratch(&g, sizeof(floating), 1, False, &cols, &xp, &dxp)
    cdef const floating* d = cptr4(delta)
    cdef const floating* a = cptr4(x)
    cdef floating* dp = ptr4(delta_prev_out)
    with nogil:
        for s in range(n):
            conv_backward_sample(a + s * g.c * g.h * g.w, d + s * g.f * g.oh * g.ow, &g,
                                 <floating*>NULL, False, cptr4(W), <int>act_prev,
                                 negative_slope, dp + s * g.c * g.h * g.w, cols, xp, dxp)
    free(block)


def _maxpool2d_forward(
    const floating[:, :, :, ::1] x not None,  # IN (n, C, H, W)
    Py_ssize_t kernel_h,
    Py_ssize_t kernel_w,
    Py_ssize_t stride_h,
    Py_ssize_t stride_w,
    Py_ssize_t pad_h,
    Py_ssize_t pad_w,
    floating[:, :, :, ::1] z_out not None,  # OUT (n, C, OH, OW)
):
    cdef tuple xs = _shape(x)
    cdef Window g = _pool_window(xs, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    _check_shape("z_out", _shape(z_out), (xs[0], xs[1], g.oh, g.ow))
    if z_out.size == 0:
        return
    with nogil:
        maxpool_forward(cptr4(x), x.shape[0], &g, ptr4(z_out))


def _maxpool2d_backward_delta(
    const floating[:, :, :, ::1] delta not None,  # IN (n, C, OH, OW)
    const floating[:, :, :, ::1] x not None,  # IN (n, C, H, W): x = f(z_prev)
    Py_ssize_t kernel_h,
    Py_ssize_t kernel_w,
    Py_ssize_t stride_h,
    Py_ssize_t stride_w,
    Py_ssize_t pad_h,
    Py_ssize_t pad_w,
    Py_ssize_t act_prev,
    double negative_slope,
    floating[:, :, :, ::1] delta_prev_out not None,  # OUT (n, C, H, W)
):
    cdef tuple xs = _shape(x)
    _check_act("act_prev", act_prev)
    cdef Window g = _pool_window(xs, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    _check_shape("delta", _shape(delta), (xs[0], xs[1], g.oh, g.ow))
    _check_shape("delta_prev_out", _shape(delta_prev_out), xs)
    if x.size == 0:
        return
    with nogil:
        maxpool_backward_delta(cptr4(delta), cptr4(x), x.shape[0], &g, <int>act_prev,
                               negative_slope, ptr4(delta_prev_out))
