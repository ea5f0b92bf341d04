"""Numba training kernels: forward, forward_backward and a whole epoch in one call.

Same names, signatures and semantics as ``fastnn.kernels.reference`` (the flat parameter
buffer, the workspace layouts and the optimizer rules are specified there). The math is
the dense, conv, loss and optimizer kernels of this package, called from compiled code;
this module only carves views of the caller's buffers and sequences the calls, dispatching
each layer on its op (DENSE, CONV2D, MAXPOOL2D). The conv cores' im2col scratch is the
workspace's last ``conv_scratch_size`` elements (in train_epoch, those of its
forward_backward part for B rows). Every array a mini-batch touches is a view of
``params``, ``grads``, ``state`` or ``work`` (C-contiguous, so ``np.dot`` never copies):
nothing is allocated per mini-batch, nothing runs in Python.

Numba's on-disk cache of this module is keyed on this file only: after editing dense.py,
conv.py, loss.py or optim.py, clear ``kernels/numba/__pycache__`` (or point
``NUMBA_CACHE_DIR`` at an empty directory), or the cached train_epoch keeps running the
old kernels.
"""

import numpy as np

from .. import (
    ABSOLUTE_ERROR, ADAM, BETA1, BETA2, BINARY_LOG_LOSS, EPSILON, HUBER, IDENTITY, LR,
    MOMENTUM, N_CONFIG, POISSON, QUANTILE, RMSPROP, SGD, SGD_NESTEROV, SOFTMAX,
    SOFTMAX_CROSS_ENTROPY, SQUARED_ERROR,
)
from ..layout import (
    ACT, ACT_PARAM, B_LEN, B_OFF, CONV2D, DENSE, DROP, IN_C, IN_H, IN_W, KH, KW, MAXPOOL2D,
    N_COLUMNS, N_IN, N_OUT, OP, OUT_C, OUT_H, OUT_W, OUT_OFF, PH, PW, SH, SW, W_LEN, W_OFF,
)
from ._config import jit, kernel
from .conv import (
    _conv_backward, _conv_backward_delta, _conv_forward, _geometry, _pool_backward_delta,
    _pool_forward,
)
from .dense import activation
from .dense import _dense_forward_scaled, _drop_, _dropout_key, dense_backward, dense_backward_delta
from .loss import (
    absolute_error_loss_gradient, binary_log_loss_gradient, half_squared_error_loss_gradient,
    huber_loss_gradient, poisson_loss_gradient, quantile_loss_gradient,
    softmax_cross_entropy_loss_gradient,
)
from .optim import adam_step_, rmsprop_step_, sgd_velocity_step_

# --------------------------------------------------------------------------- layout
# Views of the caller's buffers at the offsets the layer table holds (fastnn.kernels.
# layout computes them; nothing here does).


@jit
def _coef(flat, table, l):
    """View W_l (N_IN x N_OUT) of the flat buffer."""
    start = table[l, W_OFF]
    return flat[start:start + table[l, W_LEN]].reshape((table[l, N_IN], table[l, N_OUT]))


@jit
def _conv_coef(flat, table, l):
    """View of conv layer l's weights (OUT_C, IN_C, KH, KW) as (OUT_C, IN_C KH KW)."""
    start = table[l, W_OFF]
    return flat[start:start + table[l, W_LEN]].reshape(
        (table[l, OUT_C], table[l, IN_C] * table[l, KH] * table[l, KW]))


@jit
def _row_geometry(table, l):
    """A conv or pool row's image geometry (conv._geometry)."""
    return _geometry(table[l, IN_C], table[l, IN_H], table[l, IN_W], table[l, KH],
                     table[l, KW], table[l, SH], table[l, SW], table[l, PH], table[l, PW],
                     table[l, OUT_H], table[l, OUT_W])


@jit
def _intercept(flat, table, l):
    """View b_l (N_OUT) of the flat buffer."""
    return flat[table[l, B_OFF]:table[l, B_OFF] + table[l, B_LEN]]


@jit
def _block(region, rows, table, l):
    """View (rows x N_OUT) of layer l's output (or delta) in a workspace region that
    holds every layer's, back to back (OUT_OFF per row)."""
    start = rows * table[l, OUT_OFF]
    return region[start:start + rows * table[l, N_OUT]].reshape((rows, table[l, N_OUT]))


@jit
def _slope(table, l):
    """Layer l's activation parameter, the float64 whose bits ACT_PARAM holds."""
    return table[l, ACT_PARAM:ACT_PARAM + 1].view(np.float64)[0]


@jit
def _drop_p(table, l):
    """Layer l's dropout probability, the float64 whose bits DROP holds."""
    return table[l, DROP:DROP + 1].view(np.float64)[0]


@jit
def _in_scale(table, l):
    """The dropout scale 1 / (1 - p) of layer l's input (1 for the first layer)."""
    return 1.0 if l == 0 else 1.0 / (1.0 - _drop_p(table, l - 1))


@jit
def _width(table):
    """Outputs per row of all layers together (a workspace region's row)."""
    L = table.shape[0]
    return table[L - 1, OUT_OFF] + table[L - 1, N_OUT]


_INT_MAX = 2**31 - 1  # layer sizes: the BLAS takes int dimensions


@jit
def _product_is(total, a, b, c):
    """a * b * c == total, by division: no int64 overflow whatever the factors."""
    if a < 1 or b < 1 or c < 1 or total < 1:
        return False
    if total % a != 0:
        return False
    q = total // a
    if q % b != 0:
        return False
    return q // b == c


@jit
def _shapes_agree(table, l):
    """reference._shapes_agree: row l's shapes, window and parameter lengths consistent
    with its op (N_IN and N_OUT already in [1, INT_MAX])."""
    op = table[l, OP]
    c, h, w = table[l, IN_C], table[l, IN_H], table[l, IN_W]
    f, oh, ow = table[l, OUT_C], table[l, OUT_H], table[l, OUT_W]
    n_in, n_out = table[l, N_IN], table[l, N_OUT]
    if op == DENSE:
        return (table[l, W_LEN] == n_in * n_out and table[l, B_LEN] == n_out
                and c == n_in and h == 1 and w == 1 and f == n_out and oh == 1 and ow == 1)
    kh, kw, sh, sw, ph, pw = (table[l, KH], table[l, KW], table[l, SH], table[l, SW],
                              table[l, PH], table[l, PW])
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        return False
    # c, h, w <= N_IN and f, oh, ow <= N_OUT (the products); the window's values bounded
    # too, so that the arithmetic here and in the cores stays far from int64 overflow
    if max(kh, kw, sh, sw, ph, pw) > _INT_MAX:
        return False
    if not (_product_is(n_in, c, h, w) and _product_is(n_out, f, oh, ow)):
        return False
    if (kh > h + 2 * ph or kw > w + 2 * pw or oh != (h + 2 * ph - kh) // sh + 1
            or ow != (w + 2 * pw - kw) // sw + 1):
        return False
    if op == CONV2D:
        w_len = table[l, W_LEN]
        return (table[l, B_LEN] == f and w_len >= 1 and w_len % f == 0
                and _product_is(w_len // f, c, kh, kw))
    return (f == c and 2 * ph <= kh and 2 * pw <= kw and table[l, W_LEN] == 0
            and table[l, B_LEN] == 0)


@jit
def _check_table(table, params):
    """The reference's _check_table: every block of the table inside params, every row's
    shapes and window consistent with its op (its type is checked by the dispatcher,
    ``kernel``)."""
    if table.shape[0] < 1 or table.shape[1] != N_COLUMNS:
        raise ValueError("table must be an int64 layer table of shape (n_layers, N_COLUMNS)")
    n = params.shape[0]
    L = table.shape[0]
    for l in range(L):
        op = table[l, OP]
        if op != DENSE and op != CONV2D and op != MAXPOOL2D:
            raise ValueError("table: unknown op code")
        if (table[l, ACT] < IDENTITY or table[l, ACT] > SOFTMAX
                or (op != DENSE and table[l, ACT] == SOFTMAX)):
            raise ValueError("table: unknown activation code (softmax is for dense layers)")
        if (table[l, N_IN] < 1 or table[l, N_OUT] < 1
                or table[l, N_IN] > _INT_MAX or table[l, N_OUT] > _INT_MAX
                or not _shapes_agree(table, l)
                or (l > 0 and table[l, N_IN] != table[l - 1, N_OUT])):
            raise ValueError("table: inconsistent shapes")
        # off > n - len, not off + len > n: no int64 overflow
        if (table[l, W_OFF] < 0 or table[l, W_OFF] > n - table[l, W_LEN]
                or table[l, B_OFF] < 0 or table[l, B_OFF] > n - table[l, B_LEN]):
            raise ValueError("table: parameters lie outside params")
        expected = 0 if l == 0 else table[l - 1, OUT_OFF] + table[l - 1, N_OUT]
        if table[l, OUT_OFF] != expected:
            raise ValueError("table: OUT_OFF is not after the previous layer's")
        p = _drop_p(table, l)
        if not (p >= 0.0 and p < 1.0):
            raise ValueError("table: a dropout probability is not in [0, 1)")
        if p != 0.0 and (l == L - 1 or table[l, ACT] == SOFTMAX or op != DENSE
                         or table[l + 1, OP] != DENSE):
            raise ValueError("table: dropout on the output layer, a softmax, or not between "
                             "dense layers")


@jit
def _conv_scratch_size(table):
    """layout.conv_scratch_size: the largest conv layer's im2col columns of one sample,
    IN_C KH KW x OUT_H OUT_W (0 without conv layers); the table checked."""
    size = 0
    for l in range(table.shape[0]):
        if table[l, OP] == CONV2D:
            ckk = table[l, W_LEN] // table[l, OUT_C]  # <= params.size
            ohw = table[l, OUT_H] * table[l, OUT_W]  # <= N_OUT <= INT_MAX
            if ckk > (2**62) // ohw:
                raise ValueError("table: a conv layer's im2col columns are too large")
            size = max(size, ckk * ohw)
    return size


@jit
def _check_data(X, Y, sample_weight, table):
    n = X.shape[0]
    if X.shape[1] != table[0, N_IN]:
        raise ValueError("X must have the first layer's N_IN columns")
    if Y.shape[0] != n or Y.shape[1] != table[table.shape[0] - 1, N_OUT]:
        raise ValueError("Y must have shape (X rows, the last layer's N_OUT)")
    if sample_weight.shape[0] != n:
        raise ValueError("sample_weight must have shape (X rows,)")


@jit
def _check_loss(loss):
    if loss < SQUARED_ERROR or loss > QUANTILE:  # the codes are 0..QUANTILE
        raise ValueError("unknown loss code")


@jit
def _sum_f64(w):
    s = 0.0
    for i in range(w.shape[0]):
        s += float(w[i])
    return s


# --------------------------------------------------------------------------- passes


@jit
def _forward(X, params, table, acts, raw_out, training, seed, step, scratch):
    """raw_out = the network's raw output; every other layer's output into its block of
    ``acts`` (``_block``); layer l applies its ACT. ``training``: with the dropout of
    (seed, step), outputs stored masked and unscaled (reference.forward_backward).
    ``scratch``: the conv layers' im2col columns (_conv_scratch_size)."""
    n = X.shape[0]
    L = table.shape[0]
    for l in range(L):
        z = raw_out if l == L - 1 else _block(acts, n, table, l)
        a = X if l == 0 else _block(acts, n, table, l - 1)
        op = table[l, OP]
        if op == DENSE:
            _dense_forward_scaled(a, _coef(params, table, l), _intercept(params, table, l),
                                 table[l, ACT], _slope(table, l),
                                 _in_scale(table, l) if training else 1.0, z)
        elif op == CONV2D:  # no dropout before a conv layer: its input scale is 1
            _conv_forward(a, _conv_coef(params, table, l), _intercept(params, table, l),
                          _row_geometry(table, l), table[l, ACT], _slope(table, l), z,
                          scratch)
        else:
            _pool_forward(a, _row_geometry(table, l), z)
            if table[l, ACT] != IDENTITY:
                activation(z, table[l, ACT], _slope(table, l), z)
        if training and _drop_p(table, l) != 0.0:
            _drop_(z, _dropout_key(seed, step, l), _drop_p(table, l), 1.0)


@jit
def _loss_gradient(loss, loss_param, y_true, raw, sample_weight, loss_out, gradient_out):
    """The loss kernel of code ``loss`` (output activation fused)."""
    if loss == SQUARED_ERROR:
        return half_squared_error_loss_gradient(y_true, raw, sample_weight, loss_out,
                                                gradient_out)
    elif loss == ABSOLUTE_ERROR:
        return absolute_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out)
    elif loss == HUBER:
        return huber_loss_gradient(y_true, raw, sample_weight, loss_param, loss_out,
                                   gradient_out)
    elif loss == POISSON:
        return poisson_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out)
    elif loss == BINARY_LOG_LOSS:
        return binary_log_loss_gradient(y_true, raw, sample_weight, loss_param, loss_out,
                                        gradient_out)
    elif loss == SOFTMAX_CROSS_ENTROPY:
        return softmax_cross_entropy_loss_gradient(y_true, raw, sample_weight, loss_param,
                                                   loss_out, gradient_out)
    elif loss == QUANTILE:
        return quantile_loss_gradient(y_true, raw, sample_weight, loss_param, loss_out,
                                      gradient_out)
    raise ValueError("unknown loss code")


@jit
def _l2_and_scale(params, table, alpha, scale, grads_out):
    """grads_out = (grads_out * s + alpha W) * scale on weights (s: the dropout scale of
    the layer's input, 1 without), grads_out * scale on biases; returns the penalty
    alpha / 2 * sum W**2 (float64), from the same pass over W."""
    s0 = s1 = s2 = s3 = 0.0  # four partial sums: a single chain is add-latency bound
    for l in range(table.shape[0]):
        s = _in_scale(table, l)
        i = table[l, W_OFF]
        w_end = i + table[l, W_LEN]
        while i + 4 <= w_end:
            w0 = float(params[i])
            w1 = float(params[i + 1])
            w2 = float(params[i + 2])
            w3 = float(params[i + 3])
            s0 += w0 * w0
            s1 += w1 * w1
            s2 += w2 * w2
            s3 += w3 * w3
            grads_out[i] = (float(grads_out[i]) * s + alpha * w0) * scale
            grads_out[i + 1] = (float(grads_out[i + 1]) * s + alpha * w1) * scale
            grads_out[i + 2] = (float(grads_out[i + 2]) * s + alpha * w2) * scale
            grads_out[i + 3] = (float(grads_out[i + 3]) * s + alpha * w3) * scale
            i += 4
        for j in range(i, w_end):
            w0 = float(params[j])
            s0 += w0 * w0
            grads_out[j] = (float(grads_out[j]) * s + alpha * w0) * scale
        for j in range(table[l, B_OFF], table[l, B_OFF] + table[l, B_LEN]):
            grads_out[j] = float(grads_out[j]) * scale
    return 0.5 * alpha * ((s0 + s1) + (s2 + s3))


@jit
def _forward_backward(X, Y, sample_weight, sw, params, table, loss, loss_param, alpha,
                      grads_out, work, seed, step, scratch):
    """forward_backward without the argument checks; ``sw`` = sum(sample_weight) != 0;
    ``scratch``: the conv layers' im2col columns."""
    n = X.shape[0]
    L = table.shape[0]
    width = _width(table)
    loss_out = work[:n]
    acts = work[n:n + n * width]
    deltas = work[n + n * width:n + 2 * n * width]

    raw = _block(acts, n, table, L - 1)
    _forward(X, params, table, acts, raw, True, seed, step, scratch)
    data_loss = _loss_gradient(loss, loss_param, Y, raw, sample_weight, loss_out,
                               _block(deltas, n, table, L - 1))

    for l in range(L - 1, -1, -1):
        delta = _block(deltas, n, table, l)
        op = table[l, OP]
        if op == DENSE:
            dW = _coef(grads_out, table, l)
            db = _intercept(grads_out, table, l)
            if l == 0:
                dense_backward(X, delta, dW, db)
            else:
                a_prev = _block(acts, n, table, l - 1)
                dense_backward(a_prev, delta, dW, db)
                # a_prev is layer l - 1's output: its activation's derivative
                delta_prev = _block(deltas, n, table, l - 1)
                dense_backward_delta(delta, _coef(params, table, l), a_prev,
                                     table[l - 1, ACT], _slope(table, l - 1), delta_prev)
                if _drop_p(table, l - 1) != 0.0:
                    _drop_(delta_prev, _dropout_key(seed, step, l - 1),
                           _drop_p(table, l - 1), _in_scale(table, l))
        elif op == CONV2D:  # (no dropout around conv and pool layers: _check_table)
            dW = _conv_coef(grads_out, table, l)
            db = _intercept(grads_out, table, l)
            g = _row_geometry(table, l)
            if l == 0:
                _conv_backward(X, delta, g, dW, db, scratch)
            else:
                a_prev = _block(acts, n, table, l - 1)
                _conv_backward(a_prev, delta, g, dW, db, scratch)
                _conv_backward_delta(delta, _conv_coef(params, table, l), a_prev, g,
                                     table[l - 1, ACT], _slope(table, l - 1),
                                     _block(deltas, n, table, l - 1), scratch)
        elif l > 0:  # MAXPOOL2D: no parameters
            _pool_backward_delta(delta, _block(acts, n, table, l - 1), _row_geometry(table, l),
                                 table[l - 1, ACT], _slope(table, l - 1),
                                 _block(deltas, n, table, l - 1))

    penalty = _l2_and_scale(params, table, alpha, 1.0 / sw, grads_out)
    return data_loss, penalty


# --------------------------------------------------------------------------- kernels


@kernel
def forward(X, params, table, work, raw_out):
    """raw_out = the network's output before the output activation, for rows X.

    ``work`` (forward_workspace_size) receives the hidden layers' outputs.
    """
    _check_table(table, params)
    n = X.shape[0]
    L = table.shape[0]
    if X.shape[1] != table[0, N_IN]:
        raise ValueError("forward: X must have the first layer's N_IN columns")
    if raw_out.shape[0] != n or raw_out.shape[1] != table[L - 1, N_OUT]:
        raise ValueError("forward: raw_out must have shape (X rows, the last layer's N_OUT)")
    hidden = n * table[L - 1, OUT_OFF]
    scratch_size = _conv_scratch_size(table)
    if work.shape[0] < hidden + scratch_size:
        raise ValueError("forward: work is smaller than forward_workspace_size")
    _forward(X, params, table, work, raw_out, False, 0, 0,
             work[hidden:hidden + scratch_size])


@kernel
def forward_many(X, perm, counts, params, table, work, raw_out):
    """K models of one table, each on its own rows X[perm[k, :counts[k]]] (gathered at the
    start of work[k]): raw_out[k, :counts[k]] is forward alone on them, bit for bit
    (reference.forward_many). The models run one after another on the calling thread."""
    K = params.shape[0]
    _check_table(table, params[0] if K else params.ravel())
    if perm.shape[0] != K:
        raise ValueError("forward_many: perm needs one row per model (params' rows)")
    if counts.shape[0] != K:
        raise ValueError("forward_many: counts needs one row per model (params' rows)")
    if work.shape[0] != K:
        raise ValueError("forward_many: work needs one row per model (params' rows)")
    if raw_out.shape[0] != K:
        raise ValueError("forward_many: raw_out needs one row per model (params' rows)")
    m = perm.shape[1]
    L = table.shape[0]
    n_in = table[0, N_IN]
    if X.shape[1] != n_in:
        raise ValueError("forward_many: X must have the first layer's N_IN columns")
    if raw_out.shape[1] != m or raw_out.shape[2] != table[L - 1, N_OUT]:
        raise ValueError("forward_many: raw_out must have shape (K, perm's columns, the last "
                         "layer's N_OUT)")
    hidden = m * table[L - 1, OUT_OFF]
    scratch_size = _conv_scratch_size(table)
    if work.shape[1] < m * n_in + hidden + scratch_size:
        raise ValueError("forward_many: work is smaller than forward_many_workspace_size")
    for k in range(K):
        if counts[k] < 0 or counts[k] > m:
            raise ValueError("forward_many: counts must be in [0, perm's columns]")
        for i in range(counts[k]):
            if perm[k, i] < 0 or perm[k, i] >= X.shape[0]:
                raise ValueError("forward_many: perm holds an index out of [0, n_rows)")
    for k in range(K):
        c = counts[k]
        if c == 0:
            continue
        xk = work[k, :c * n_in].reshape((c, n_in))
        for i in range(c):
            xk[i] = X[perm[k, i]]
        rest = work[k, m * n_in:]
        _forward(xk, params[k], table, rest, raw_out[k, :c], False, 0, 0,
                 rest[c * table[L - 1, OUT_OFF]:c * table[L - 1, OUT_OFF] + scratch_size])


@kernel
def forward_backward(X, Y, sample_weight, params, table, loss, loss_param, alpha, grads_out,
                     work, seed=0, step=0):
    """Loss and gradient of one batch, scikit-learn's convention.

    Returns (data_loss, penalty): data_loss = sum_i w_i loss_i (raw outputs, output
    activation fused into ``loss``), penalty = alpha / 2 * sum ||W||**2 (weights only,
    summed in float64). grads_out = d (data_loss + penalty) / d params / sum_i w_i.
    Dropout (the table's DROP) with the masks of (seed, step), as the reference.
    """
    _check_table(table, params)
    _check_data(X, Y, sample_weight, table)
    _check_loss(loss)
    n = X.shape[0]
    if grads_out.shape[0] != params.shape[0]:
        raise ValueError("forward_backward: grads_out must have the size of params")
    used = n * (1 + 2 * _width(table))
    scratch_size = _conv_scratch_size(table)
    if work.shape[0] < used + scratch_size:
        raise ValueError("forward_backward: work is smaller than its workspace size")
    if seed < 0 or step < 0:
        raise ValueError("forward_backward: seed and step must be at least 0")
    sw = _sum_f64(sample_weight)
    if sw == 0.0:  # the reference's 1 / sum(w) raises here too
        raise ZeroDivisionError("forward_backward: sample weights sum to zero")
    return _forward_backward(X, Y, sample_weight, sw, params, table, loss, loss_param, alpha,
                             grads_out, work, seed, step, work[used:used + scratch_size])


@kernel
def train_epoch(X, Y, sample_weight, perm, batch_size, params, table, loss, loss_param,
                alpha, optimizer, config, state, step, grads, work, loss_sum=0.0,
                penalty_sum=0.0, seed=0):
    """One epoch (or a batch-aligned slice of one) of mini-batch training over rows
    X[perm[s:s + batch_size]], in one call (_train_epoch)."""
    return _train_epoch(X, Y, sample_weight, perm, batch_size, params, table, loss,
                        loss_param, alpha, optimizer, config, state, step, grads, work,
                        loss_sum, penalty_sum, seed)


@kernel
def train_epoch_many(X, Y, sample_weight, perm, counts, batch_size, params, table, loss,
                     loss_param, alpha, optimizer, config, state, step, grads, work, sums,
                     seed, active, nonfinite_out):
    """K models of one table, one epoch (or slice) each: model k is _train_epoch on its
    own rows perm[k, :counts[k]], batch size, weights, parameters, state, config, loss parameter,
    alpha and seed (reference.train_epoch_many), so its bits are those of train_epoch
    alone. The models run one after another on the calling thread (Numba's parallel
    variant is issue 11's, not built yet)."""
    K = params.shape[0]
    if batch_size.shape[0] != K:
        raise ValueError("train_epoch_many: batch_size needs one row per model (params' rows)")
    if sample_weight.shape[0] != K:
        raise ValueError("train_epoch_many: sample_weight needs one row per model (params' rows)")
    if perm.shape[0] != K:
        raise ValueError("train_epoch_many: perm needs one row per model (params' rows)")
    if counts.shape[0] != K:
        raise ValueError("train_epoch_many: counts needs one row per model (params' rows)")
    if loss_param.shape[0] != K:
        raise ValueError("train_epoch_many: loss_param needs one row per model (params' rows)")
    if alpha.shape[0] != K:
        raise ValueError("train_epoch_many: alpha needs one row per model (params' rows)")
    if config.shape[0] != K:
        raise ValueError("train_epoch_many: config needs one row per model (params' rows)")
    if state.shape[0] != K:
        raise ValueError("train_epoch_many: state needs one row per model (params' rows)")
    if step.shape[0] != K:
        raise ValueError("train_epoch_many: step needs one row per model (params' rows)")
    if grads.shape[0] != K:
        raise ValueError("train_epoch_many: grads needs one row per model (params' rows)")
    if work.shape[0] != K:
        raise ValueError("train_epoch_many: work needs one row per model (params' rows)")
    if sums.shape[0] != K:
        raise ValueError("train_epoch_many: sums needs one row per model (params' rows)")
    if seed.shape[0] != K:
        raise ValueError("train_epoch_many: seed needs one row per model (params' rows)")
    if active.shape[0] != K:
        raise ValueError("train_epoch_many: active needs one row per model (params' rows)")
    if nonfinite_out.shape[0] != K:
        raise ValueError("train_epoch_many: nonfinite_out needs one row per model (params' rows)")
    if sums.shape[1] != 2:
        raise ValueError("train_epoch_many: sums must have shape (K, 2)")
    if sample_weight.shape[1] != X.shape[0]:
        raise ValueError("train_epoch_many: sample_weight needs one column per row of X")
    for k in range(K):
        if counts[k] < 0 or counts[k] > perm.shape[1]:
            raise ValueError("train_epoch_many: counts must be in [0, perm's columns]")
        for i in range(counts[k]):  # every model's rows before any model trains
            if perm[k, i] < 0 or perm[k, i] >= X.shape[0]:
                raise ValueError("train_epoch_many: perm holds an index out of [0, n_rows)")
    for k in range(K):
        nonfinite_out[k] = 0
        if active[k] == 0:
            continue
        loss_sum, penalty_sum, step_k, nonfinite = _train_epoch(
            X, Y, sample_weight[k], perm[k, :counts[k]], batch_size[k], params[k], table, loss,
            loss_param[k], alpha[k], optimizer, config[k], state[k], step[k], grads[k],
            work[k], sums[k, 0], sums[k, 1], seed[k])
        sums[k, 0] = loss_sum
        sums[k, 1] = penalty_sum
        step[k] = step_k
        nonfinite_out[k] = nonfinite


@jit
def _train_epoch(X, Y, sample_weight, perm, batch_size, params, table, loss, loss_param,
                 alpha, optimizer, config, state, step, grads, work, loss_sum, penalty_sum,
                 seed):
    """One epoch (or a batch-aligned slice of one) of mini-batch training over rows
    X[perm[s:s + batch_size]], in one call.

    Per batch: gather the rows into the workspace, forward, fused loss-and-gradient,
    backward, L2 term, scale by 1 / sum(w), one optimizer update of the flat ``params``
    (scikit-learn's rules; ``config`` slots LR, MOMENTUM, BETA1, BETA2, EPSILON; Adam's
    c1 = sqrt(1 - BETA2**t) / (1 - BETA1**t) and RMSprop's 1 / (1 - BETA2**t) computed
    once per step). Zero-weight batches are skipped; a non-finite loss stops the epoch
    before its update. The batch that makes update t drops units with the masks of
    (seed, t).

    Returns (loss_sum, penalty_sum, step, nonfinite) as the reference documents.
    """
    _check_table(table, params)
    _check_data(X, Y, sample_weight, table)
    _check_loss(loss)
    n = X.shape[0]
    B = batch_size
    L = table.shape[0]
    n_in = table[0, N_IN]
    n_out = table[L - 1, N_OUT]
    size = params.shape[0]
    if B < 1:
        raise ValueError("train_epoch: batch_size must be at least 1")
    if seed < 0:
        raise ValueError("train_epoch: seed must be at least 0")
    m = perm.shape[0]
    for i in range(m):
        if perm[i] < 0 or perm[i] >= n:
            raise ValueError("train_epoch: perm holds an index out of [0, n_rows)")
    if grads.shape[0] != size:
        raise ValueError("train_epoch: grads must have the size of params")
    if config.shape[0] != N_CONFIG:
        raise ValueError("train_epoch: config must have N_CONFIG entries")
    if optimizer == SGD or optimizer == SGD_NESTEROV:
        n_state = 1
    elif optimizer == ADAM or optimizer == RMSPROP:
        n_state = 2
    else:
        raise ValueError("train_epoch: unknown optimizer code")
    if state.shape[0] < n_state or state.shape[1] != size:
        raise ValueError("train_epoch: state must have shape (1 (SGD) or 2, params.size)")
    fb_used = B * (1 + 2 * _width(table))  # forward_backward's, for B rows
    scratch_size = _conv_scratch_size(table)
    if work.shape[0] < B * (n_in + n_out + 1) + fb_used + scratch_size:
        raise ValueError("train_epoch: work is smaller than train_workspace_size")

    X_batch = work[:B * n_in].reshape((B, n_in))
    Y_batch = work[B * n_in:B * (n_in + n_out)].reshape((B, n_out))
    w_batch = work[B * (n_in + n_out):B * (n_in + n_out + 1)]
    fb_work = work[B * (n_in + n_out + 1):]
    scratch = fb_work[fb_used:fb_used + scratch_size]  # after B rows' (batches have <= B)
    lr = config[LR]
    momentum = config[MOMENTUM]
    beta1 = config[BETA1]
    beta2 = config[BETA2]
    eps = config[EPSILON]
    nesterov = optimizer == SGD_NESTEROV

    loss_sum = float(loss_sum)  # the sums of the epoch's earlier slices, continued
    penalty_sum = float(penalty_sum)
    for start in range(0, m, B):
        nb = min(B, m - start)
        xb = X_batch[:nb]
        yb = Y_batch[:nb]
        wb = w_batch[:nb]
        for i in range(nb):
            row = perm[start + i]
            for j in range(n_in):
                xb[i, j] = X[row, j]
            for j in range(n_out):
                yb[i, j] = Y[row, j]
            wb[i] = sample_weight[row]
        sw = _sum_f64(wb)
        if sw == 0.0:
            continue
        data_loss, penalty = _forward_backward(xb, yb, wb, sw, params, table, loss,
                                               loss_param, alpha, grads, fb_work, seed,
                                               step + 1, scratch)
        if not np.isfinite(data_loss + penalty):
            return loss_sum, penalty_sum, step, 1
        loss_sum += nb * data_loss / sw
        penalty_sum += nb * penalty / sw
        step += 1
        t = float(step)  # float ** float: libm pow, as NumPy's beta ** step in the reference
        if optimizer == SGD or optimizer == SGD_NESTEROV:
            sgd_velocity_step_(params, grads, state[0], lr, momentum, nesterov)
        elif optimizer == ADAM:
            c1 = np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
            adam_step_(params, grads, state[0], state[1], lr, beta1, beta2, 0.0, False,
                       c1, 1.0, 0.0, eps)
        else:
            rmsprop_step_(params, grads, state[0], state[0][:0], state[1], lr, beta2, eps,
                          0.0, momentum, False, 1.0 / (1.0 - beta2 ** t))
    return loss_sum, penalty_sum, step, 0
