# The optimizer element loops as nogil cores on raw pointers, shared by optim.pyx (the
# kernels of the public API) and train.pyx (the update of the training step). Header-only,
# as _dense.pxd (see there why).
#
# All buffers are 1-D of length n and of the parameters' type; hyperparameters and bias
# corrections are double, computed once per step by the caller; each element is updated in
# double. A buffer documented as untouched may be NULL.

from libc.math cimport sqrt

from _common cimport floating


cdef inline void sgd_update(
    floating* params,  # INOUT
    const floating* grads,  # IN
    floating* momentum_buf,  # INOUT, untouched when momentum == 0
    Py_ssize_t n,
    double lr,
    double momentum,
    double dampening,
    bint nesterov,
    double weight_decay,
    bint first_step,
) noexcept nogil:
    """PyTorch's SGD: g = grad + wd p; buf = g (first step) or mu buf + (1 - dampening) g;
    g = g + mu buf (nesterov) or buf (only when mu != 0); p -= lr g."""
    cdef Py_ssize_t i
    cdef double p, g, buf
    cdef bint use_momentum = momentum != 0.0
    for i in range(n):
        p = params[i]
        g = grads[i] + weight_decay * p
        if use_momentum:
            if first_step:
                buf = g
            else:
                buf = momentum * momentum_buf[i] + (1.0 - dampening) * g
            momentum_buf[i] = buf
            g = g + momentum * buf if nesterov else buf
        params[i] = p - lr * g


cdef inline void sgd_velocity_update(
    floating* params,  # INOUT
    const floating* grads,  # IN
    floating* velocity,  # INOUT
    Py_ssize_t n,
    double lr,
    double momentum,
    bint nesterov,
) noexcept nogil:
    """scikit-learn's SGD: v = mu v - lr grad; p += mu v - lr grad (nesterov) or p += v."""
    cdef Py_ssize_t i
    cdef double g, v
    for i in range(n):
        g = grads[i]
        v = momentum * velocity[i] - lr * g
        velocity[i] = v
        params[i] = params[i] + (momentum * v - lr * g if nesterov else v)


cdef inline void rmsprop_update(
    floating* params,  # INOUT
    const floating* grads,  # IN
    floating* square_avg,  # INOUT
    floating* grad_avg,  # INOUT, untouched unless centered
    floating* momentum_buf,  # INOUT, untouched unless momentum > 0
    Py_ssize_t n,
    double lr,
    double alpha,
    double eps,
    double weight_decay,
    double momentum,
    bint centered,
    double correction,
) noexcept nogil:
    """PyTorch's RMSprop with bias correction c: g = grad + wd p; s = alpha s + (1 - alpha) g**2;
    var = max(c s - (c ga)**2, 0) (centered) or c s; d = sqrt(var) + eps;
    p -= lr (mu b + g / d) (momentum, b updated) or lr g / d."""
    cdef Py_ssize_t i
    cdef double p, g, s, ga, var, d, b
    cdef bint use_momentum = momentum > 0.0
    for i in range(n):
        p = params[i]
        g = grads[i] + weight_decay * p
        s = alpha * square_avg[i] + (1.0 - alpha) * g * g
        square_avg[i] = s
        if centered:
            ga = alpha * grad_avg[i] + (1.0 - alpha) * g
            grad_avg[i] = ga
            var = correction * s - (correction * ga) * (correction * ga)
            if var < 0.0:  # rounding; PyTorch would take sqrt of it and give NaN
                var = 0.0
        else:
            var = correction * s
        d = sqrt(var) + eps
        if use_momentum:
            b = momentum * momentum_buf[i] + g / d
            momentum_buf[i] = b
            params[i] = p - lr * b
        else:
            params[i] = p - lr * g / d


cdef inline void adam_update(
    floating* params,  # INOUT
    const floating* grads,  # IN
    floating* exp_avg,  # INOUT
    floating* exp_avg_sq,  # INOUT
    Py_ssize_t n,
    double lr,
    double beta1,
    double beta2,
    double weight_decay,
    bint decoupled_weight_decay,
    double c1,
    double c2,
    double eps_in,
    double eps_out,
) noexcept nogil:
    """Adam / AdamW: p *= 1 - lr wd (decoupled) or g = grad + wd p; m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g**2; p -= lr c1 m / (sqrt(c2 v + eps_in) + eps_out)."""
    cdef Py_ssize_t i
    cdef double p, g, m, v
    cdef double decay = 1.0 - lr * weight_decay, step = lr * c1
    for i in range(n):
        p = params[i]
        g = grads[i]
        if decoupled_weight_decay:
            p = p * decay
        else:
            g = g + weight_decay * p
        m = beta1 * exp_avg[i] + (1.0 - beta1) * g
        v = beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        params[i] = p - step * m / (sqrt(c2 * v + eps_in) + eps_out)
