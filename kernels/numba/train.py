"""Numba training kernels: forward, forward_backward and a whole epoch in one call.

Same names, signatures and semantics as ``fastnn.kernels.reference`` (the flat parameter
buffer, the workspace layouts and the optimizer rules are specified there). The math is
the dense, loss and optimizer kernels of this package, called from compiled code; this
module only carves views of the caller's buffers and sequences the calls. Every array a
mini-batch touches is a view of ``params``, ``grads``, ``state`` or ``work`` (C-contiguous,
so ``np.dot`` never copies): nothing is allocated per mini-batch, nothing runs in Python.

Numba's on-disk cache of this module is keyed on this file only: after editing dense.py,
loss.py or optim.py, clear ``kernels/numba/__pycache__`` (or point ``NUMBA_CACHE_DIR`` at
an empty directory), or the cached train_epoch keeps running the old kernels.
"""

import numpy as np

from .. import (
    ABSOLUTE_ERROR, ADAM, BINARY_LOG_LOSS, HUBER, IDENTITY, POISSON, RMSPROP, SGD, SOFTMAX,
    SOFTMAX_CROSS_ENTROPY, SQUARED_ERROR,
)
from ._config import jit
from .dense import dense_backward, dense_backward_delta, dense_forward
from .loss import (
    absolute_error_loss_gradient, binary_log_loss_gradient, half_squared_error_loss_gradient,
    huber_loss_gradient, poisson_loss_gradient, softmax_cross_entropy_loss_gradient,
)
from .optim import adam_step_, rmsprop_step_, sgd_velocity_step_

# --------------------------------------------------------------------------- layout


@jit
def _n_params(layer_sizes):
    """Length of the flat parameter buffer of the network ``layer_sizes``."""
    size = 0
    for l in range(layer_sizes.shape[0] - 1):
        size += layer_sizes[l] * layer_sizes[l + 1] + layer_sizes[l + 1]
    return size


@jit
def _layer_span(layer_sizes, l):
    """(w_start, b_start, b_end) of layer l (0-based) in the flat buffer."""
    start = 0
    for i in range(l):
        start += layer_sizes[i] * layer_sizes[i + 1] + layer_sizes[i + 1]
    b_start = start + layer_sizes[l] * layer_sizes[l + 1]
    return start, b_start, b_start + layer_sizes[l + 1]


@jit
def _coef(flat, layer_sizes, l):
    """View W_l (n_l x n_{l+1}) of the flat buffer."""
    w, b, _ = _layer_span(layer_sizes, l)
    return flat[w:b].reshape((layer_sizes[l], layer_sizes[l + 1]))


@jit
def _intercept(flat, layer_sizes, l):
    """View b_l (n_{l+1}) of the flat buffer."""
    _, b, e = _layer_span(layer_sizes, l)
    return flat[b:e]


@jit
def _block(work, rows, layer_sizes, l):
    """View (rows x n_l) of layer l's block (l >= 1) in a workspace region that holds the
    blocks of layers 1, 2, ... back to back (the a_l or delta_l of the reference)."""
    start = 0
    for i in range(1, l):
        start += rows * layer_sizes[i]
    return work[start:start + rows * layer_sizes[l]].reshape((rows, layer_sizes[l]))


@jit
def _check_network(params, layer_sizes):
    if layer_sizes.shape[0] < 2:
        raise ValueError("layer_sizes needs at least the input and the output size")
    for l in range(layer_sizes.shape[0]):
        if layer_sizes[l] < 0:
            raise ValueError("layer_sizes must be non-negative")
    if params.shape[0] != _n_params(layer_sizes):
        raise ValueError("params does not have the size of the network layer_sizes")


@jit
def _check_hidden_acts(hidden_acts, layer_sizes):
    """One activation code per hidden layer (len(layer_sizes) - 2 of them), each known."""
    if hidden_acts.shape[0] != layer_sizes.shape[0] - 2:
        raise ValueError("hidden_acts must have one code per hidden layer "
                         "(len(layer_sizes) - 2 entries)")
    for l in range(hidden_acts.shape[0]):
        if hidden_acts[l] < IDENTITY or hidden_acts[l] > SOFTMAX:
            raise ValueError("hidden_acts holds an unknown activation code")


@jit
def _check_data(X, Y, sample_weight, layer_sizes):
    n = X.shape[0]
    if X.shape[1] != layer_sizes[0] or Y.shape[1] != layer_sizes[layer_sizes.shape[0] - 1]:
        raise ValueError("X and Y must have layer_sizes[0] and layer_sizes[-1] columns")
    if Y.shape[0] != n or sample_weight.shape[0] != n:
        raise ValueError("X, Y and sample_weight must have the same number of rows")


@jit
def _check_loss(loss):
    if loss < SQUARED_ERROR or loss > SOFTMAX_CROSS_ENTROPY:
        raise ValueError("unknown loss code")


@jit
def _sum_f64(w):
    s = 0.0
    for i in range(w.shape[0]):
        s += float(w[i])
    return s


# --------------------------------------------------------------------------- passes


@jit
def _forward(X, params, layer_sizes, hidden_acts, negative_slope, hidden, raw_out):
    """raw_out = the network's raw output; hidden activations into ``hidden`` (blocks of
    layers 1 .. L-1 back to back, as ``_block`` reads them); hidden layer l applies
    hidden_acts[l]."""
    n = X.shape[0]
    L = layer_sizes.shape[0] - 1
    for l in range(L):
        W = _coef(params, layer_sizes, l)
        b = _intercept(params, layer_sizes, l)
        if l == L - 1:
            z = raw_out
            act = IDENTITY
        else:
            z = _block(hidden, n, layer_sizes, l + 1)
            act = hidden_acts[l]
        if l == 0:
            dense_forward(X, W, b, act, negative_slope, z)
        else:
            dense_forward(_block(hidden, n, layer_sizes, l), W, b, act, negative_slope, z)


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
    raise ValueError("unknown loss code")


@jit
def _l2_and_scale(params, layer_sizes, alpha, scale, grads_out):
    """grads_out = (grads_out + alpha W) * scale on weights, grads_out * scale on biases;
    returns the penalty alpha / 2 * sum W**2 (float64), from the same pass over W."""
    s0 = s1 = s2 = s3 = 0.0  # four partial sums: a single chain is add-latency bound
    for l in range(layer_sizes.shape[0] - 1):
        w_start, b_start, b_end = _layer_span(layer_sizes, l)
        i = w_start
        while i + 4 <= b_start:
            w0 = float(params[i])
            w1 = float(params[i + 1])
            w2 = float(params[i + 2])
            w3 = float(params[i + 3])
            s0 += w0 * w0
            s1 += w1 * w1
            s2 += w2 * w2
            s3 += w3 * w3
            grads_out[i] = (float(grads_out[i]) + alpha * w0) * scale
            grads_out[i + 1] = (float(grads_out[i + 1]) + alpha * w1) * scale
            grads_out[i + 2] = (float(grads_out[i + 2]) + alpha * w2) * scale
            grads_out[i + 3] = (float(grads_out[i + 3]) + alpha * w3) * scale
            i += 4
        for j in range(i, b_start):
            w0 = float(params[j])
            s0 += w0 * w0
            grads_out[j] = (float(grads_out[j]) + alpha * w0) * scale
        for j in range(b_start, b_end):
            grads_out[j] = float(grads_out[j]) * scale
    return 0.5 * alpha * ((s0 + s1) + (s2 + s3))


@jit
def _forward_backward(X, Y, sample_weight, sw, params, layer_sizes, hidden_acts,
                      negative_slope, loss, loss_param, alpha, grads_out, work):
    """forward_backward without the argument checks; ``sw`` = sum(sample_weight) != 0."""
    n = X.shape[0]
    L = layer_sizes.shape[0] - 1
    width = 0
    for l in range(1, L + 1):
        width += layer_sizes[l]
    loss_out = work[:n]
    acts = work[n:n + n * width]
    deltas = work[n + n * width:n + 2 * n * width]

    raw = _block(acts, n, layer_sizes, L)
    _forward(X, params, layer_sizes, hidden_acts, negative_slope, acts, raw)
    data_loss = _loss_gradient(loss, loss_param, Y, raw, sample_weight, loss_out,
                               _block(deltas, n, layer_sizes, L))

    for l in range(L - 1, -1, -1):
        delta = _block(deltas, n, layer_sizes, l + 1)
        dW = _coef(grads_out, layer_sizes, l)
        db = _intercept(grads_out, layer_sizes, l)
        if l == 0:
            dense_backward(X, delta, dW, db)
        else:
            a_prev = _block(acts, n, layer_sizes, l)
            dense_backward(a_prev, delta, dW, db)
            # a_prev = a_l is hidden layer l - 1's output: its activation's derivative
            dense_backward_delta(delta, _coef(params, layer_sizes, l), a_prev,
                                 hidden_acts[l - 1], negative_slope,
                                 _block(deltas, n, layer_sizes, l))

    penalty = _l2_and_scale(params, layer_sizes, alpha, 1.0 / sw, grads_out)
    return data_loss, penalty


# --------------------------------------------------------------------------- kernels


@jit
def forward(X, params, layer_sizes, hidden_acts, negative_slope, work, raw_out):
    """raw_out = the network's output before the output activation, for rows X.

    ``work`` (forward_workspace_size) receives the hidden activations a_1 .. a_{L-1}.
    """
    _check_network(params, layer_sizes)
    _check_hidden_acts(hidden_acts, layer_sizes)
    n = X.shape[0]
    L = layer_sizes.shape[0] - 1
    if X.shape[1] != layer_sizes[0]:
        raise ValueError("forward: X must have layer_sizes[0] columns")
    if raw_out.shape[0] != n or raw_out.shape[1] != layer_sizes[L]:
        raise ValueError("forward: raw_out must have shape (X rows, layer_sizes[-1])")
    hidden = 0
    for l in range(1, L):
        hidden += layer_sizes[l]
    if work.shape[0] < n * hidden:
        raise ValueError("forward: work is smaller than forward_workspace_size")
    _forward(X, params, layer_sizes, hidden_acts, negative_slope, work, raw_out)


@jit
def forward_backward(X, Y, sample_weight, params, layer_sizes, hidden_acts, negative_slope,
                     loss, loss_param, alpha, grads_out, work):
    """Loss and gradient of one batch, scikit-learn's convention.

    Returns (data_loss, penalty): data_loss = sum_i w_i loss_i (raw outputs, output
    activation fused into ``loss``), penalty = alpha / 2 * sum ||W||**2 (weights only,
    summed in float64). grads_out = d (data_loss + penalty) / d params / sum_i w_i.
    """
    _check_network(params, layer_sizes)
    _check_hidden_acts(hidden_acts, layer_sizes)
    _check_data(X, Y, sample_weight, layer_sizes)
    _check_loss(loss)
    n = X.shape[0]
    if grads_out.shape[0] != params.shape[0]:
        raise ValueError("forward_backward: grads_out must have the size of params")
    width = 0
    for l in range(1, layer_sizes.shape[0]):
        width += layer_sizes[l]
    if work.shape[0] < n * (1 + 2 * width):
        raise ValueError("forward_backward: work is smaller than its workspace size")
    sw = _sum_f64(sample_weight)
    if sw == 0.0:  # the reference's 1 / sum(w) raises here too
        raise ZeroDivisionError("forward_backward: sample weights sum to zero")
    return _forward_backward(X, Y, sample_weight, sw, params, layer_sizes, hidden_acts,
                             negative_slope, loss, loss_param, alpha, grads_out, work)


@jit
def train_epoch(X, Y, sample_weight, perm, batch_size, params, layer_sizes, hidden_acts,
                negative_slope, loss, loss_param, alpha, optimizer, hyper, state, step,
                grads, work, loss_sum=0.0, penalty_sum=0.0):
    """One epoch (or a batch-aligned slice of one) of mini-batch training over rows
    X[perm[s:s + batch_size]], in one call.

    Per batch: gather the rows into the workspace, forward, fused loss-and-gradient,
    backward, L2 term, scale by 1 / sum(w), one optimizer update of the flat ``params``
    (scikit-learn's rules; ``hyper`` = [lr, beta1 | momentum, beta2 | decay, eps,
    nesterov]; Adam's c1 = sqrt(1 - beta2**t) / (1 - beta1**t) and RMSprop's
    1 / (1 - decay**t) computed once per step). Zero-weight batches are skipped; a
    non-finite loss stops the epoch before its update.

    Returns (loss_sum, penalty_sum, step, nonfinite) as the reference documents.
    """
    _check_network(params, layer_sizes)
    _check_hidden_acts(hidden_acts, layer_sizes)
    _check_data(X, Y, sample_weight, layer_sizes)
    _check_loss(loss)
    n = X.shape[0]
    B = batch_size
    L = layer_sizes.shape[0] - 1
    n_in = layer_sizes[0]
    n_out = layer_sizes[L]
    size = params.shape[0]
    if B < 1:
        raise ValueError("train_epoch: batch_size must be at least 1")
    m = perm.shape[0]
    for i in range(m):
        if perm[i] < 0 or perm[i] >= n:
            raise IndexError("train_epoch: perm holds an index out of [0, n_rows)")
    if grads.shape[0] != size:
        raise ValueError("train_epoch: grads must have the size of params")
    if hyper.shape[0] < 5:
        raise ValueError("train_epoch: hyper must be [lr, beta1, beta2, eps, nesterov]")
    if optimizer == SGD:
        n_state = 1
    elif optimizer == ADAM or optimizer == RMSPROP:
        n_state = 2
    else:
        raise ValueError("train_epoch: unknown optimizer code")
    if state.shape[0] < n_state or state.shape[1] != size:
        raise ValueError("train_epoch: state must have shape (1 (SGD) or 2, params.size)")
    width = 0
    for l in range(1, L + 1):
        width += layer_sizes[l]
    if work.shape[0] < B * (n_in + n_out + 1) + B * (1 + 2 * width):
        raise ValueError("train_epoch: work is smaller than train_workspace_size")

    X_batch = work[:B * n_in].reshape((B, n_in))
    Y_batch = work[B * n_in:B * (n_in + n_out)].reshape((B, n_out))
    w_batch = work[B * (n_in + n_out):B * (n_in + n_out + 1)]
    fb_work = work[B * (n_in + n_out + 1):]
    lr = hyper[0]
    beta1 = hyper[1]
    beta2 = hyper[2]
    eps = hyper[3]
    nesterov = hyper[4] != 0.0

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
        data_loss, penalty = _forward_backward(xb, yb, wb, sw, params, layer_sizes,
                                               hidden_acts, negative_slope, loss, loss_param,
                                               alpha, grads, fb_work)
        if not np.isfinite(data_loss + penalty):
            return loss_sum, penalty_sum, step, 1
        loss_sum += nb * data_loss / sw
        penalty_sum += nb * penalty / sw
        step += 1
        t = float(step)  # float ** float: libm pow, as NumPy's beta ** step in the reference
        if optimizer == SGD:
            sgd_velocity_step_(params, grads, state[0], lr, beta1, nesterov)
        elif optimizer == ADAM:
            c1 = np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
            adam_step_(params, grads, state[0], state[1], lr, beta1, beta2, 0.0, False,
                       c1, 1.0, 0.0, eps)
        else:
            rmsprop_step_(params, grads, state[0], state[0][:0], state[1], lr, beta2, eps,
                          0.0, beta1, False, 1.0 / (1.0 - beta2 ** t))
    return loss_sum, penalty_sum, step, 0
