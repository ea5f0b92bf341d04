"""Numba optimizer updates, in place on 1-D buffers (the flat parameters and their state).

Same names, signatures and semantics as ``fastnn.kernels.reference``: one pass per call,
each element read, updated in float64 and stored in the buffer dtype. Hyperparameters
and bias corrections are float64 scalars computed by the caller. State buffers an option
does not use are never read or written and may be empty.
"""

import numpy as np

from ._config import kernel

# Buffer lengths guard against reading or writing past a buffer (Numba does no bounds
# checking); one check per buffer, so that the constant message names it. Argument types
# are checked by the dispatcher (``kernel``).


@kernel
def sgd_step_(params, grads, momentum_buf, lr, momentum, dampening, nesterov, weight_decay,
              first_step):
    """PyTorch's SGD: g = grad + weight_decay p; with momentum mu != 0, buf = g on the first
    step else mu buf + (1 - dampening) g, and g = g + mu buf (nesterov) or buf; p -= lr g.
    """
    n = params.shape[0]
    if grads.shape[0] != n:
        raise ValueError("sgd_step_: grads must have the size of params")
    if momentum != 0.0 and momentum_buf.shape[0] != n:
        raise ValueError("sgd_step_: momentum_buf must have the size of params (momentum != 0)")
    for i in range(n):
        p = float(params[i])
        g = float(grads[i]) + weight_decay * p
        if momentum != 0.0:
            b = g if first_step else momentum * float(momentum_buf[i]) + (1.0 - dampening) * g
            momentum_buf[i] = b
            g = g + momentum * b if nesterov else b
        params[i] = p - lr * g


@kernel
def sgd_velocity_step_(params, grads, velocity, lr, momentum, nesterov):
    """scikit-learn's SGD: v = mu v - lr grad; p += mu v - lr grad (nesterov) or p += v."""
    n = params.shape[0]
    if grads.shape[0] != n:
        raise ValueError("sgd_velocity_step_: grads must have the size of params")
    if velocity.shape[0] != n:
        raise ValueError("sgd_velocity_step_: velocity must have the size of params")
    for i in range(n):
        g = float(grads[i])
        v = momentum * float(velocity[i]) - lr * g
        velocity[i] = v
        update = momentum * v - lr * g if nesterov else v
        params[i] = float(params[i]) + update


@kernel
def rmsprop_step_(params, grads, square_avg, grad_avg, momentum_buf, lr, alpha, eps,
                  weight_decay, momentum, centered, correction):
    """PyTorch's RMSprop with bias correction c (1: none): g = grad + weight_decay p;
    s = alpha s + (1 - alpha) g**2; var = max(c s - (c ga)**2, 0) (centered,
    ga = alpha ga + (1 - alpha) g) or c s; d = sqrt(var) + eps; momentum mu > 0: b = mu b + g / d,
    p -= lr b; else p -= lr g / d.
    """
    n = params.shape[0]
    if grads.shape[0] != n:
        raise ValueError("rmsprop_step_: grads must have the size of params")
    if square_avg.shape[0] != n:
        raise ValueError("rmsprop_step_: square_avg must have the size of params")
    if centered and grad_avg.shape[0] != n:
        raise ValueError("rmsprop_step_: grad_avg must have the size of params (centered)")
    if momentum > 0.0 and momentum_buf.shape[0] != n:
        raise ValueError("rmsprop_step_: momentum_buf must have the size of params "
                         "(momentum > 0)")
    for i in range(n):
        p = float(params[i])
        g = float(grads[i]) + weight_decay * p
        s = alpha * float(square_avg[i]) + (1.0 - alpha) * g * g
        square_avg[i] = s
        if centered:
            ga = alpha * float(grad_avg[i]) + (1.0 - alpha) * g
            grad_avg[i] = ga
            cga = correction * ga
            var = correction * s - cga * cga
            if var < 0.0:  # rounding can make it slightly negative; NaN stays NaN
                var = 0.0
        else:
            var = correction * s
        d = np.sqrt(var) + eps
        if momentum > 0.0:
            b = momentum * float(momentum_buf[i]) + g / d
            momentum_buf[i] = b
            params[i] = p - lr * b
        else:
            params[i] = p - lr * g / d


@kernel
def adam_step_(params, grads, exp_avg, exp_avg_sq, lr, beta1, beta2, weight_decay,
               decoupled_weight_decay, c1, c2, eps_in, eps_out):
    """Adam / AdamW: decoupled p *= 1 - lr weight_decay, else g = grad + weight_decay p;
    m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g**2;
    p -= lr c1 m / (sqrt(c2 v + eps_in) + eps_out)  (conventions: see the reference).
    """
    n = params.shape[0]
    if grads.shape[0] != n:
        raise ValueError("adam_step_: grads must have the size of params")
    if exp_avg.shape[0] != n:
        raise ValueError("adam_step_: exp_avg must have the size of params")
    if exp_avg_sq.shape[0] != n:
        raise ValueError("adam_step_: exp_avg_sq must have the size of params")
    step = lr * c1
    shrink = 1.0 - lr * weight_decay
    for i in range(n):
        p = float(params[i])
        g = float(grads[i])
        if decoupled_weight_decay:
            p = p * shrink
        else:
            g = g + weight_decay * p
        m = beta1 * float(exp_avg[i]) + (1.0 - beta1) * g
        v = beta2 * float(exp_avg_sq[i]) + (1.0 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        params[i] = p - step * m / (np.sqrt(c2 * v + eps_in) + eps_out)
