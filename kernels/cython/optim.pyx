"""Cython optimizer kernels: in-place updates of one flat parameter buffer.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Buffers are 1-D, of the parameters' dtype; hyperparameters and bias corrections are
double, computed once per step by the caller; each element is updated in double. The element
loops are the nogil cores of _optim.pxd, shared with train.pyx.

Each kernel is a Python-level function over a fused-type implementation (``_<name>``),
whose memoryviews refuse arrays of the wrong dtype, rank, layout or writeability; when a
call fails, the kernel raises fastnn.kernels._checks' error naming the argument instead
(the memoryviews' own messages name none), at no cost to calls that succeed.
"""

from _common cimport cptr1, floating, ptr1
from _optim cimport adam_update, rmsprop_update, sgd_update, sgd_velocity_update

from .._checks import argument_error


cdef int _check_len(str name, Py_ssize_t got, Py_ssize_t want) except -1:
    if got != want:
        raise ValueError(f"{name} has length {got}, expected {want} (the length of params)")
    return 0


# --------------------------------------------------------------------------- kernels


def sgd_step_(params, grads, momentum_buf, lr, momentum, dampening, nesterov, weight_decay,
              first_step):
    """PyTorch's SGD: g = grad + wd p; buf = g (first step) or mu buf + (1 - dampening) g;
    g = g + mu buf (nesterov) or buf (only when mu != 0); p -= lr g."""
    try:
        _sgd_step_(params, grads, momentum_buf, lr, momentum, dampening, nesterov,
                   weight_decay, first_step)
    except (TypeError, ValueError) as exc:
        raise argument_error("sgd_step_", (params, grads, momentum_buf, lr, momentum, dampening,
                                           nesterov, weight_decay, first_step)) or exc from None


def sgd_velocity_step_(params, grads, velocity, lr, momentum, nesterov):
    """scikit-learn's SGD: v = mu v - lr grad; p += mu v - lr grad (nesterov) or p += v."""
    try:
        _sgd_velocity_step_(params, grads, velocity, lr, momentum, nesterov)
    except (TypeError, ValueError) as exc:
        raise argument_error("sgd_velocity_step_",
                             (params, grads, velocity, lr, momentum, nesterov)) or exc from None


def rmsprop_step_(params, grads, square_avg, grad_avg, momentum_buf, lr, alpha, eps,
                  weight_decay, momentum, centered, correction):
    """PyTorch's RMSprop with bias correction c: g = grad + wd p; s = alpha s + (1 - alpha) g**2;
    var = max(c s - (c ga)**2, 0) (centered) or c s; d = sqrt(var) + eps; p -= lr (mu b + g / d) or lr g / d."""
    try:
        _rmsprop_step_(params, grads, square_avg, grad_avg, momentum_buf, lr, alpha, eps,
                       weight_decay, momentum, centered, correction)
    except (TypeError, ValueError) as exc:
        raise argument_error(
            "rmsprop_step_", (params, grads, square_avg, grad_avg, momentum_buf, lr, alpha, eps,
                              weight_decay, momentum, centered, correction)
        ) or exc from None


def adam_step_(params, grads, exp_avg, exp_avg_sq, lr, beta1, beta2, weight_decay,
               decoupled_weight_decay, c1, c2, eps_in, eps_out):
    """Adam / AdamW: p *= 1 - lr wd (decoupled) or g = grad + wd p; m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g**2; p -= lr c1 m / (sqrt(c2 v + eps_in) + eps_out)."""
    try:
        _adam_step_(params, grads, exp_avg, exp_avg_sq, lr, beta1, beta2, weight_decay,
                    decoupled_weight_decay, c1, c2, eps_in, eps_out)
    except (TypeError, ValueError) as exc:
        raise argument_error(
            "adam_step_", (params, grads, exp_avg, exp_avg_sq, lr, beta1, beta2, weight_decay,
                           decoupled_weight_decay, c1, c2, eps_in, eps_out)
        ) or exc from None


# --------------------------------------------------------------------------- implementations


def _sgd_step_(
    floating[::1] params not None,  # INOUT
    const floating[::1] grads not None,  # IN
    floating[::1] momentum_buf not None,  # INOUT, untouched (may be empty) when momentum == 0
    double lr,
    double momentum,
    double dampening,
    bint nesterov,
    double weight_decay,
    bint first_step,
):
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    if momentum != 0.0:
        _check_len("momentum_buf", momentum_buf.shape[0], n)
    with nogil:
        sgd_update(ptr1(params), cptr1(grads), ptr1(momentum_buf), n, lr, momentum,
                   dampening, nesterov, weight_decay, first_step)


def _sgd_velocity_step_(
    floating[::1] params not None,  # INOUT
    const floating[::1] grads not None,  # IN
    floating[::1] velocity not None,  # INOUT
    double lr,
    double momentum,
    bint nesterov,
):
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    _check_len("velocity", velocity.shape[0], n)
    with nogil:
        sgd_velocity_update(ptr1(params), cptr1(grads), ptr1(velocity), n, lr, momentum, nesterov)


def _rmsprop_step_(
    floating[::1] params not None,  # INOUT
    const floating[::1] grads not None,  # IN
    floating[::1] square_avg not None,  # INOUT
    floating[::1] grad_avg not None,  # INOUT, untouched (may be empty) unless centered
    floating[::1] momentum_buf not None,  # INOUT, untouched (may be empty) unless momentum > 0
    double lr,
    double alpha,
    double eps,
    double weight_decay,
    double momentum,
    bint centered,
    double correction,
):
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


def _adam_step_(
    floating[::1] params not None,  # INOUT
    const floating[::1] grads not None,  # IN
    floating[::1] exp_avg not None,  # INOUT
    floating[::1] exp_avg_sq not None,  # INOUT
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
    cdef Py_ssize_t n = params.shape[0]
    _check_len("grads", grads.shape[0], n)
    _check_len("exp_avg", exp_avg.shape[0], n)
    _check_len("exp_avg_sq", exp_avg_sq.shape[0], n)
    with nogil:
        adam_update(ptr1(params), cptr1(grads), ptr1(exp_avg), ptr1(exp_avg_sq), n, lr, beta1,
                    beta2, weight_decay, decoupled_weight_decay, c1, c2, eps_in, eps_out)
