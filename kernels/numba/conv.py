"""Numba kernels of the convolution and max-pooling layers, forward and backward.

Same names, signatures and semantics as ``fastnn.kernels.reference``, which holds the
full specification (per sample C x H x W, conv weights (F, C, KH, KW)).

A convolution is one GEMM per sample: the sample's input lowered to columns (im2col),
``cols[(c KH + u) KW + v, i OW + j] = x[c, i SH + u - PH, j SW + v - PW]`` (0 in the
padding), a (C KH KW) x (OH OW) scratch, so that ``z = W @ cols`` with W viewed as
(F, C KH KW); ``dW += delta @ cols.T``; and the input's delta is ``W.T @ delta`` put back
(col2im: each column entry added at its input position). The public kernels allocate the
scratch; the cores (``_conv_*``, ``_pool_*``) take it, and the image geometry ``g`` (see
``_geometry``), and work on (n, C H W) / (n, F OH OW) views, so that the training kernels
(train.py) run them on their workspace, allocating nothing per batch. Max pooling keeps
no argmax: both passes scan the window as reference._pool_argmax does (the forward one a
whole output row at a time), and the backward one adds the deltas in the reference's
order, so that both are bit-identical to the reference in float32 and float64 (up to the
activation's derivative, dense.activation_grad_'s).
"""

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
# Numba's own BLAS plumbing (the helpers np.dot lowers with): numba_xxgemm is the gemm
# entry point of Numba's helper library, bound to scipy's cython_blas, as np.dot's.
from numba.np.arrayobj import make_array
from numba.np.linalg import (
    check_blas_return, ensure_blas, get_blas_kind, intp_t, ll_char, ll_void_p,
    make_constant_slot,
)

from .. import IDENTITY, LEAKY_RELU, RELU, SOFTMAX
from ._config import jit, kernel
from .dense import (
    _check_act, _check_act_prev, _leaky_relu, _relu, _vmath_inplace_, activation_grad_,
)

_INT_MAX = 2**31 - 1  # padding: bounds the index arithmetic (int64) far from overflow

# --------------------------------------------------------------------------- gemm


@intrinsic
def _gemm_call(typingctx, a, b, c, beta):
    """c = a @ b + beta * c by BLAS gemm (np.dot has no beta: it cannot accumulate).
    a, b: 2-D, C or F layout (a transposed view is F), c C-contiguous, one float dtype;
    every dimension at least 1, shapes checked by the caller (``_gemm``)."""
    arrays = (a, b, c)
    if not (all(isinstance(t, types.Array) and t.ndim == 2 and t.layout in "CF"
                for t in arrays)
            and c.layout == "C" and c.mutable and a.dtype == b.dtype == c.dtype
            and c.dtype in (types.float32, types.float64)
            and isinstance(beta, (types.Float, types.Integer))):
        return None
    sig = types.void(a, b, c, beta)

    def codegen(context, builder, signature, args):
        ensure_blas()
        a_ty, b_ty, c_ty, beta_ty = signature.args
        a_arr, b_arr, c_arr = (make_array(t)(context, builder, v)
                               for t, v in zip((a_ty, b_ty, c_ty), args[:3]))
        m, k = cgutils.unpack_tuple(builder, a_arr.shape, 2)
        _, n = cgutils.unpack_tuple(builder, b_arr.shape, 2)
        dtype = c_ty.dtype
        alpha = make_constant_slot(context, builder, dtype, 1.0)
        beta_slot = cgutils.alloca_once_value(
            builder, context.cast(builder, args[3], beta_ty, dtype))
        notrans, trans = ir.Constant(ll_char, ord("n")), ir.Constant(ll_char, ord("t"))

        def operand(ty, arr):  # BLAS is column-major: a C matrix is its transpose
            rows, cols = cgutils.unpack_tuple(builder, arr.shape, 2)
            return (notrans if ty.layout == "C" else trans, cols if ty.layout == "C" else rows,
                    builder.bitcast(arr.data, ll_void_p))

        # row-major c = a b is column-major c.T = b.T a.T: BLAS gets (b, a), as np.dot's
        transa, lda, data_a = operand(b_ty, b_arr)
        transb, ldb, data_b = operand(a_ty, a_arr)
        fnty = ir.FunctionType(ir.IntType(32), [
            ll_char, ll_char, ll_char, intp_t, intp_t, intp_t, ll_void_p, ll_void_p, intp_t,
            ll_void_p, intp_t, ll_void_p, ll_void_p, intp_t])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        kind = ir.Constant(ll_char, ord(get_blas_kind(dtype)))
        res = builder.call(fn, (kind, transa, transb, n, m, k,
                                builder.bitcast(alpha, ll_void_p), data_a, lda, data_b, ldb,
                                builder.bitcast(beta_slot, ll_void_p),
                                builder.bitcast(c_arr.data, ll_void_p), n))
        check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return sig, codegen


if numba.config.DISABLE_JIT:  # plain Python (coverage runs): the same product by NumPy

    def _gemm_call(a, b, c, beta):
        c[...] = a @ b if beta == 0.0 else a @ b + beta * c


@jit
def _gemm(a, b, c, beta):
    """c = a @ b + beta * c; beta = 0 overwrites c (BLAS does not read it then)."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != n:
        raise ValueError("_gemm: shapes do not agree")
    if m == 0 or n == 0:
        return
    if k == 0:  # an empty sum
        if beta == 0.0:
            c[:] = 0.0
        else:
            for i in range(m):
                for j in range(n):
                    c[i, j] = c[i, j] * beta
        return
    _gemm_call(a, b, c, beta)


# --------------------------------------------------------------------------- geometry
# g = (C, H, W, KH, KW, SH, SW, PH, PW, OH, OW): one image's shape, the window, the output
# size. Validated by the caller (the public kernels' checks, train._check_table).


@jit
def _geometry(c, h, w, kh, kw, sh, sw, ph, pw, oh, ow):
    return (np.int64(c), np.int64(h), np.int64(w), np.int64(kh), np.int64(kw),
            np.int64(sh), np.int64(sw), np.int64(ph), np.int64(pw), np.int64(oh),
            np.int64(ow))


@jit
def _inside(v, pw, sw, w, ow):
    """The output columns j whose input column j sw + v - pw lies in [0, w): [j0, j1)."""
    d = v - pw  # the input column of j = 0
    j0 = 0 if d >= 0 else (-d - 1) // sw + 1  # (no overflow for any stride)
    j1 = (w - 1 - d) // sw + 1 if w - 1 - d >= 0 else 0
    j0 = min(j0, ow)
    return j0, max(j0, min(j1, ow))


@jit
def _im2col(x, g, cols):
    """cols (C KH KW, OH OW) = the columns of one sample x (C H W, 1-D), zeros where the
    window lies in the padding."""
    c_in, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    for c in range(c_in):
        for u in range(kh):
            for v in range(kw):
                row = cols[(c * kh + u) * kw + v]
                j0, j1 = _inside(v, pw, sw, w, ow)
                for i in range(oh):
                    hi = i * sh + u - ph
                    base = i * ow
                    if hi < 0 or hi >= h:
                        for j in range(ow):
                            row[base + j] = 0.0
                        continue
                    for j in range(j0):
                        row[base + j] = 0.0
                    for j in range(j1, ow):
                        row[base + j] = 0.0
                    # the copy through slices indexed from 0 (not row[base + j] =
                    # x[start + j]): Numba then knows the indices are not negative, and
                    # the loop vectorizes (2-3x faster)
                    start = (c * h + hi) * w + v - pw + j0 * sw
                    dst = row[base + j0:base + j1]
                    if sw == 1:
                        src = x[start:start + (j1 - j0)]
                        for j in range(j1 - j0):
                            dst[j] = src[j]
                    else:
                        for j in range(j1 - j0):
                            dst[j] = x[start + j * sw]


@jit
def _col2im_add(cols, g, x):
    """x (C H W, 1-D) += every entry of cols (C KH KW, OH OW) at its input position,
    those in the padding dropped: im2col's transpose."""
    c_in, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    for c in range(c_in):
        for u in range(kh):
            for v in range(kw):
                row = cols[(c * kh + u) * kw + v]
                j0, j1 = _inside(v, pw, sw, w, ow)
                for i in range(oh):
                    hi = i * sh + u - ph
                    if hi < 0 or hi >= h:
                        continue
                    start = (c * h + hi) * w + v - pw + j0 * sw
                    src = row[i * ow + j0:i * ow + j1]
                    if sw == 1:
                        dst = x[start:start + (j1 - j0)]
                        for j in range(j1 - j0):
                            dst[j] += src[j]
                    else:
                        for j in range(j1 - j0):
                            x[start + j * sw] += src[j]


@jit
def _bias_act_(z, b, act, negative_slope):
    """z[f] = act(z[f] + b[f]) for one sample's output z (F, OH OW): the bias added in the
    dtype (as the reference's z_out += b), the activation in float64 (softmax excluded)."""
    F = z.shape[0]
    for f in range(F):
        zf = z[f]
        bf = b[f]
        if act == IDENTITY:
            for p in range(zf.shape[0]):
                zf[p] += bf
        elif act == RELU:
            for p in range(zf.shape[0]):
                zf[p] = _relu(float(zf[p] + bf))
        elif act == LEAKY_RELU:
            for p in range(zf.shape[0]):
                zf[p] = _leaky_relu(float(zf[p] + bf), negative_slope)
        else:  # LOGISTIC, TANH: vectorized, in place (see dense._vmath_inplace_)
            for p in range(zf.shape[0]):
                zf[p] += bf
            _vmath_inplace_(zf, act)


# --------------------------------------------------------------------------- conv cores


@jit
def _conv_forward(x, W2, b, g, act, negative_slope, z, scratch):
    """z (n, F OH OW) = act(conv(x (n, C H W)) + b), W2 the weights viewed (F, C KH KW),
    scratch at least C KH KW OH OW elements."""
    F, ckk = W2.shape
    ohw = g[9] * g[10]
    cols = scratch[:ckk * ohw].reshape((ckk, ohw))
    for s in range(x.shape[0]):
        _im2col(x[s], g, cols)
        zs = z[s].reshape((F, ohw))
        np.dot(W2, cols, zs)
        _bias_act_(zs, b, act, negative_slope)


@jit
def _conv_backward(x, delta, g, dW2, db, scratch):
    """dW2 (F, C KH KW) = sum_s delta_s (F, OH OW) @ cols(x_s).T, samples in order;
    db[f] = the sum of delta[:, f] over samples and positions, in float64."""
    F, ckk = dW2.shape
    ohw = g[9] * g[10]
    n = x.shape[0]
    cols = scratch[:ckk * ohw].reshape((ckk, ohw))
    if n == 0:
        dW2[:] = 0.0
    for s in range(n):
        _im2col(x[s], g, cols)
        _gemm(delta[s].reshape((F, ohw)), cols.T, dW2, 0.0 if s == 0 else 1.0)
    for f in range(F):
        acc = 0.0
        for s in range(n):
            ds = delta[s, f * ohw:(f + 1) * ohw]
            for p in range(ohw):
                acc += np.float64(ds[p])  # (Numba's float() keeps float32)
        db[f] = acc


@jit
def _conv_backward_delta(delta, W2, x, g, act_prev, negative_slope, delta_prev, scratch):
    """delta_prev (n, C H W) = col2im(W2.T @ delta_s) per sample, times f' of the input's
    activation taken from x = f(z_prev)."""
    F, ckk = W2.shape
    ohw = g[9] * g[10]
    cols = scratch[:ckk * ohw].reshape((ckk, ohw))
    for s in range(x.shape[0]):
        np.dot(W2.T, delta[s].reshape((F, ohw)), cols)  # W2.T is F-contiguous: no copy
        dp = delta_prev[s]
        for k in range(dp.shape[0]):
            dp[k] = 0.0
        _col2im_add(cols, g, dp)
        if act_prev != IDENTITY:
            activation_grad_(x[s:s + 1], act_prev, negative_slope, delta_prev[s:s + 1])


# --------------------------------------------------------------------------- pool cores


@jit
def _argmax(x, plane, g, i, j):
    """The index in the H x W plane (starting at ``plane`` in x) of output (i, j)'s
    window maximum: PyTorch's scan of the in-image positions, row by row, taking a value
    greater than the maximum so far or NaN; from the first in-image position
    (reference._pool_argmax)."""
    h, w, kh, kw, sh, sw, ph, pw = g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8]
    r0 = i * sh - ph
    c0 = j * sw - pw
    r_start = max(r0, 0)
    c_start = max(c0, 0)
    r_end = min(r0 + kh, h)
    c_end = min(c0 + kw, w)
    idx = r_start * w + c_start
    best = -np.inf
    for r in range(r_start, r_end):
        for c in range(c_start, c_end):
            val = np.float64(x[plane + r * w + c])
            if val > best or np.isnan(val):
                best = val
                idx = r * w + c
    return idx


@jit
def _pool_forward(x, g, z):
    """z (n, C OH OW) = the window maxima of x (n, C H W). A whole output row at a time,
    with z as the running maximum: the same scan, position by position, as _argmax's
    (a value is taken if greater or NaN; -inf if none is), but over the row's windows
    together, which vectorizes and has no data-dependent branch (5x faster)."""
    c_in, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    for s in range(x.shape[0]):
        xs = x[s]
        zs = z[s]
        for c in range(c_in):
            plane = c * h * w
            for i in range(oh):
                best = zs[(c * oh + i) * ow:(c * oh + i + 1) * ow]
                for j in range(ow):
                    best[j] = -np.inf
                r0 = i * sh - ph
                for r in range(max(r0, 0), min(r0 + kh, h)):
                    for v in range(kw):
                        j0, j1 = _inside(v, pw, sw, w, ow)
                        start = plane + r * w + v - pw + j0 * sw
                        bj = best[j0:j1]
                        for j in range(j1 - j0):
                            val = xs[start + j * sw]
                            b = bj[j]
                            bj[j] = val if (val > b) | (val != val) else b


@jit
def _pool_backward_delta(delta, x, g, act_prev, negative_slope, delta_prev):
    """delta_prev (n, C H W) = every delta (n, C OH OW) added at its window's maximum
    (outputs in row-major order, as the reference's np.add.at), times f' of the input's
    activation taken from x = f(z_prev)."""
    c_in, h, w, oh, ow = g[0], g[1], g[2], g[9], g[10]
    for s in range(x.shape[0]):
        xs = x[s]
        ds = delta[s]
        dp = delta_prev[s]
        for k in range(dp.shape[0]):
            dp[k] = 0.0
        for c in range(c_in):
            plane = c * h * w
            for i in range(oh):
                for j in range(ow):
                    dp[plane + _argmax(xs, plane, g, i, j)] += ds[(c * oh + i) * ow + j]
    if act_prev != IDENTITY:
        activation_grad_(x, act_prev, negative_slope, delta_prev)


# --------------------------------------------------------------------------- checks
# Shapes and codes, before anything is read or written; messages are constants and name
# the argument (the reference's words, with the argument names).


@jit
def _out_size(size, kernel_size, stride, pad, which):
    """(size + 2 pad - kernel) // stride + 1, or ValueError; ``which``: 0 conv height,
    1 conv width, 2 pool height, 3 pool width."""
    if stride < 1 or pad < 0:
        if which == 0:
            raise ValueError("conv2d height: stride must be at least 1 and padding at least 0 "
                             "(stride_h, pad_h)")
        if which == 1:
            raise ValueError("conv2d width: stride must be at least 1 and padding at least 0 "
                             "(stride_w, pad_w)")
        if which == 2:
            raise ValueError("maxpool2d height: stride must be at least 1 and padding at "
                             "least 0 (stride_h, pad_h)")
        raise ValueError("maxpool2d width: stride must be at least 1 and padding at least 0 "
                         "(stride_w, pad_w)")
    if pad > _INT_MAX:
        if which == 0 or which == 2:
            raise ValueError("pad_h: padding must be at most 2**31 - 1")
        raise ValueError("pad_w: padding must be at most 2**31 - 1")
    if kernel_size < 1 or kernel_size > size + 2 * pad:
        if which == 0:
            raise ValueError("conv2d height: the kernel is larger than the padded input "
                             "(W's KH > H + 2 pad_h) or empty")
        if which == 1:
            raise ValueError("conv2d width: the kernel is larger than the padded input "
                             "(W's KW > W + 2 pad_w) or empty")
        if which == 2:
            raise ValueError("maxpool2d height: the kernel is larger than the padded input "
                             "(kernel_h > H + 2 pad_h) or empty")
        raise ValueError("maxpool2d width: the kernel is larger than the padded input "
                         "(kernel_w > W + 2 pad_w) or empty")
    return (size + 2 * pad - kernel_size) // stride + 1


@jit
def _conv_geometry(x, kh, kw, stride_h, stride_w, pad_h, pad_w):
    """The geometry of a conv of x by a kh x kw kernel, or ValueError (the weights' other
    dimensions are checked by the kernels, in the reference's order)."""
    n, c_in, h, w = x.shape
    oh = _out_size(h, kh, stride_h, pad_h, 0)
    ow = _out_size(w, kw, stride_w, pad_w, 1)
    return _geometry(c_in, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow)


@jit
def _pool_geometry(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    n, c_in, h, w = x.shape
    oh = _out_size(h, kernel_h, stride_h, pad_h, 2)
    ow = _out_size(w, kernel_w, stride_w, pad_w, 3)
    if 2 * pad_h > kernel_h or 2 * pad_w > kernel_w:
        raise ValueError("maxpool2d: padding must be at most half the kernel (pad_h, pad_w)")
    if h < 1 or w < 1:  # the reference's scan fails on empty planes too
        raise ValueError("maxpool2d: x must have a height and width of at least 1")
    return _geometry(c_in, h, w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, oh, ow)


@jit
def _check_image(a, n, c, h, w, which):
    """a.shape == (n, c, h, w), or ValueError naming the argument ``which``: 0 z_out,
    1 delta, 2 delta_prev_out."""
    if a.shape[0] != n or a.shape[1] != c or a.shape[2] != h or a.shape[3] != w:
        if which == 0:
            raise ValueError("z_out must have shape (n, F, OH, OW): x's rows, the output "
                             "channels and size")
        if which == 1:
            raise ValueError("delta must have shape (n, F, OH, OW): x's rows, the output "
                             "channels and size")
        raise ValueError("delta_prev_out must have the shape of x")


@jit
def _flat(a):
    """The (n, C H W) view of a C-contiguous (n, C, H, W) array."""
    return a.reshape((a.shape[0], a.shape[1] * a.shape[2] * a.shape[3]))


# --------------------------------------------------------------------------- kernels


@kernel
def conv2d_forward(x, W, b, stride_h, stride_w, pad_h, pad_w, act, negative_slope, z_out):
    """z_out[n, f, i, j] = act(b[f] + sum_{c,u,v} W[f, c, u, v] x[n, c, i sh + u - ph,
    j sw + v - pw]), x zero outside the image (PyTorch's Conv2d; softmax not allowed)."""
    F, C, kh, kw = W.shape
    _check_act(act)
    if act == SOFTMAX:
        raise ValueError("act: softmax is for dense layers")
    g = _conv_geometry(x, kh, kw, stride_h, stride_w, pad_h, pad_w)
    if C != x.shape[1]:
        raise ValueError("conv2d_forward: W must have shape (F, C, KH, KW), C the channels "
                         "of x")
    if b.shape[0] != F:
        raise ValueError("conv2d_forward: b must have shape (F,), F the rows of W")
    _check_image(z_out, x.shape[0], F, g[9], g[10], 0)
    scratch = np.empty(C * kh * kw * g[9] * g[10], z_out.dtype)
    _conv_forward(_flat(x), W.reshape((F, C * kh * kw)), b, g, act, negative_slope,
                  _flat(z_out), scratch)


@kernel
def conv2d_backward(x, delta, stride_h, stride_w, pad_h, pad_w, dW_out, db_out):
    """dW_out[f, c, u, v] = sum_{n,i,j} delta[n, f, i, j] x[n, c, i sh + u - ph, j sw + v - pw]
    and db_out[f] = sum_{n,i,j} delta[n, f, i, j] (float64); delta = d loss / d z."""
    F, C, kh, kw = dW_out.shape
    g = _conv_geometry(x, kh, kw, stride_h, stride_w, pad_h, pad_w)
    _check_image(delta, x.shape[0], F, g[9], g[10], 1)
    if C != x.shape[1]:
        raise ValueError("conv2d_backward: dW_out must have shape (F, C, KH, KW), C the "
                         "channels of x")
    if db_out.shape[0] != F:
        raise ValueError("conv2d_backward: db_out must have shape (F,), F the rows of dW_out")
    scratch = np.empty(C * kh * kw * g[9] * g[10], dW_out.dtype)
    _conv_backward(_flat(x), _flat(delta), g, dW_out.reshape((F, C * kh * kw)), db_out,
                   scratch)


@kernel
def conv2d_backward_delta(delta, W, x, stride_h, stride_w, pad_h, pad_w, act_prev,
                          negative_slope, delta_prev_out):
    """delta_prev_out = every delta[n, f, i, j] W[f, c, u, v] added at x[n, c, i sh + u - ph,
    j sw + v - pw] (those in the padding dropped), times f' of the input's activation,
    taken from x = f(z_prev)."""
    F, C, kh, kw = W.shape
    _check_act_prev(act_prev)
    g = _conv_geometry(x, kh, kw, stride_h, stride_w, pad_h, pad_w)
    if C != x.shape[1]:
        raise ValueError("conv2d_backward_delta: W must have shape (F, C, KH, KW), C the "
                         "channels of x")
    _check_image(delta, x.shape[0], F, g[9], g[10], 1)
    _check_image(delta_prev_out, x.shape[0], C, x.shape[2], x.shape[3], 2)
    scratch = np.empty(C * kh * kw * g[9] * g[10], delta_prev_out.dtype)
    _conv_backward_delta(_flat(delta), W.reshape((F, C * kh * kw)), _flat(x), g, act_prev,
                         negative_slope, _flat(delta_prev_out), scratch)


@kernel
def maxpool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, z_out):
    """z_out[n, c, i, j] = max_{u,v} x[n, c, i sh + u - ph, j sw + v - pw] over the
    window's positions inside the image (PyTorch's MaxPool2d, floor mode; NaN wins)."""
    g = _pool_geometry(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    _check_image(z_out, x.shape[0], x.shape[1], g[9], g[10], 0)
    _pool_forward(_flat(x), g, _flat(z_out))


@kernel
def maxpool2d_backward_delta(delta, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                             act_prev, negative_slope, delta_prev_out):
    """delta_prev_out = every delta[n, c, i, j] added at its window's maximum (the one
    maxpool2d_forward took; outputs in row-major order), times f' of the input's
    activation, taken from x = f(z_prev)."""
    _check_act_prev(act_prev)
    g = _pool_geometry(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    _check_image(delta, x.shape[0], x.shape[1], g[9], g[10], 1)
    _check_image(delta_prev_out, x.shape[0], x.shape[1], x.shape[2], x.shape[3], 2)
    _pool_backward_delta(_flat(delta), _flat(x), g, act_prev, negative_slope,
                         _flat(delta_prev_out))
