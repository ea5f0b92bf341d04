"""Cython optimizer kernels: in-place updates of one flat parameter buffer.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Buffers are 1-D, of the parameters' dtype; hyperparameters and bias corrections are
double, computed once per step by the caller; each element is updated in double. The element
loops are the nogil cores of _optim.pxd, shared with train.pyx.
"""

from _common cimport cptr1, floating, ptr1
from _optim cimport adam_update, rmsprop_update, sgd_update, sgd_velocity_update


cdef int _check_len(str name, Py_ssize_t got, Py_ssize_t want) except -1:
    if got != want:
        raise ValueError(f"{name} has length {got}, expected {want}")
    return 0


def sgd_step_(
    floating[::1] params,  # INOUT
    const floating[::1] grads,  # IN
    floating[::1] momentum_buf,  # INOUT, untouched (may be empty) when momentum == 0
    double lr,
    double momentum,
    double dampening,
    bint nesterov,
    double weight_decay,
    bint first_step,
):
    """PyTorch's SGD: g = grad + wd p; buf = g (first step) or mu buf + (1 - dampening) g;
    g = g + mu buf (nesterov) or buf (only when mu != 0); p -= lr g."""
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    if momentum != 0.0:
        _check_len("momentum_buf", momentum_buf.shape[0], n)
    with nogil:
        sgd_update(ptr1(params), cptr1(grads), ptr1(momentum_buf), n, lr, momentum,
                   dampening, nesterov, weight_decay, first_step)


def sgd_velocity_step_(
    floating[::1] params,  # INOUT
    const floating[::1] grads,  # IN
    floating[::1] velocity,  # INOUT
    double lr,
    double momentum,
    bint nesterov,
):
    """scikit-learn's SGD: v = mu v - lr grad; p += mu v - lr grad (nesterov) or p += v."""
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    _check_len("velocity", velocity.shape[0], n)
    with nogil:
        sgd_velocity_update(ptr1(params), cptr1(grads), ptr1(velocity), n, lr, momentum, nesterov)


def rmsprop_step_(
    floating[::1] params,  # INOUT
    const floating[::1] grads,  # IN
    floating[::1] square_avg,  # INOUT
    floating[::1] grad_avg,  # INOUT, untouched (may be empty) unless centered
    floating[::1] momentum_buf,  # INOUT, untouched (may be empty) unless momentum > 0
    double lr,
    double alpha,
    double eps,
    double weight_decay,
    double momentum,
    bint centered,
    double correction,
):
    """PyTorch's RMSprop with bias correction c: g = grad + wd p; s = alpha s + (1 - alpha) g**2;
    var = max(c s - (c ga)**2, 0) (centered) or c s; d = sqrt(var) + eps; p -= lr (mu b + g / d) or lr g / d."""
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    _check_len("square_avg", square_avg.shape[0], n)
    if centered:
        _check_len("grad_avg", grad_avg.shape[0], n)
    if momentum > 0.0:
        _check_len("momentum_buf", momentum_buf.shape[0], n)
    with nogil:
        rmsprop_update(ptr1(params), cptr1(grads), ptr1(square_avg), ptr1(grad_avg),
                       ptr1(momentum_buf), n, lr, alpha, eps, weight_decay, momentum, centered,
                       correction)


def adam_step_(
    floating[::1] params,  # INOUT
    const floating[::1] grads,  # IN
    floating[::1] exp_avg,  # INOUT
    floating[::1] exp_avg_sq,  # INOUT
    double lr,
    double beta1,
    double beta2,
    double weight_decay,
    bint decoupled_weight_decay,
    double c1,
    double c2,
    double eps_in,
    double eps_out,
):
    """Adam / AdamW: p *= 1 - lr wd (decoupled) or g = grad + wd p; m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g**2; p -= lr c1 m / (sqrt(c2 v + eps_in) + eps_out)."""
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    _check_len("exp_avg", exp_avg.shape[0], n)
    _check_len("exp_avg_sq", exp_avg_sq.shape[0], n)
    with nogil:
        adam_update(ptr1(params), cptr1(grads), ptr1(exp_avg), ptr1(exp_avg_sq), n, lr, beta1,
                    beta2, weight_decay, decoupled_weight_decay, c1, c2, eps_in, eps_out)
