"""Cython loss kernels: loss and gradient fused, on raw (pre-activation) outputs.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Every kernel takes y_true and raw (n, k) and sample_weight (n,), writes

    loss_out[i]        = sum_k loss(y_true[i, k], raw[i, k])   (unweighted)
    gradient_out[i, k] = sample_weight[i] * d loss / d raw[i, k]

and returns sum_i sample_weight[i] * loss_out[i], accumulated in double.

The math lives in _loss.pxd (shared with train.pyx): small per-element functions that
return loss and gradient together, and the row loops around them; these wrappers check
shapes.
"""

from libc.stdlib cimport free, malloc

from _common cimport cptr1, cptr2, floating, ptr1, ptr2
from _loss cimport (
    LossParams, absolute_error, binary_log, binary_log_proba, elementwise_loss_rows,
    half_squared_error, huber, log_clip_params, loss_grad_t, poisson, softmax_cross_entropy_rows,
)


# --------------------------------------------------------------------------- helpers


cdef int _check(
    const floating[:, ::1] y_true,
    const floating[:, ::1] raw,
    const floating[::1] sample_weight,
    floating[::1] loss_out,
    floating[:, ::1] gradient_out,
) except -1:
    cdef tuple shape = (raw.shape[0], raw.shape[1])
    if (y_true.shape[0], y_true.shape[1]) != shape:
        raise ValueError(f"y_true has shape {(y_true.shape[0], y_true.shape[1])}, expected {shape}")
    if (gradient_out.shape[0], gradient_out.shape[1]) != shape:
        raise ValueError(
            f"gradient_out has shape {(gradient_out.shape[0], gradient_out.shape[1])}, "
            f"expected {shape}"
        )
    if sample_weight.shape[0] != shape[0] or loss_out.shape[0] != shape[0]:
        raise ValueError(
            f"sample_weight ({sample_weight.shape[0]},) and loss_out ({loss_out.shape[0]},) "
            f"must have length {shape[0]}"
        )
    return 0


cdef inline double _loop(
    loss_grad_t loss_grad,
    const LossParams* prm,
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
) except? -1.0:
    """Checks the shapes, then runs elementwise_loss_rows without the GIL."""
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    with nogil:
        total = elementwise_loss_rows(
            loss_grad, prm, cptr2(y_true), cptr2(raw), cptr1(sample_weight), raw.shape[0],
            raw.shape[1], ptr1(loss_out), ptr2(gradient_out)
        )
    return total


# --------------------------------------------------------------------------- kernels


def half_squared_error_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """loss = (raw - y)**2 / 2, gradient = raw - y."""
    cdef LossParams prm = log_clip_params(0.0)
    return _loop(half_squared_error, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def absolute_error_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """loss = |raw - y|, gradient = sign(raw - y) (0 at raw == y)."""
    cdef LossParams prm = log_clip_params(0.0)
    return _loop(absolute_error, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def huber_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    double delta,
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """r = raw - y: loss = r**2 / 2 for |r| <= delta, else delta (|r| - delta / 2);
    gradient = clip(r, -delta, delta)."""
    cdef LossParams prm = log_clip_params(0.0)
    prm.delta = delta
    return _loop(huber, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def poisson_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """Poisson NLL with log link, no constant: loss = exp(raw) - y raw, gradient = exp(raw) - y."""
    cdef LossParams prm = log_clip_params(0.0)
    return _loop(poisson, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def binary_log_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    double eps,
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """p = sigmoid(raw): loss = y softplus(-raw) + (1 - y) softplus(raw), each term clipped
    to [-log(1 - eps), -log(eps)] (eps = 0: none); gradient = p - y."""
    cdef LossParams prm = log_clip_params(eps)
    return _loop(binary_log, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def binary_log_loss_proba_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] proba,  # IN
    const floating[::1] sample_weight,  # IN
    double eps,
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """pc = clip(p, eps, 1 - eps): loss = -y log(pc) - (1 - y) log(1 - pc),
    gradient = (pc - y) / (pc (1 - pc)) (needs 0 < eps < 1/2)."""
    cdef LossParams prm = log_clip_params(eps)
    return _loop(binary_log_proba, &prm, y_true, proba, sample_weight, loss_out, gradient_out)


def softmax_cross_entropy_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    double eps,
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """p = softmax(raw) per row: loss = sum_k y_k clip(logsumexp(raw) - raw_k, -log(1 - eps),
    -log(eps)) (eps = 0: none); gradient = p sum_k y_k - y."""
    cdef LossParams prm = log_clip_params(eps)
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    cdef double* e = <double*>malloc(max(raw.shape[1], 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    with nogil:
        total = softmax_cross_entropy_rows(
            &prm, cptr2(y_true), cptr2(raw), cptr1(sample_weight), raw.shape[0], raw.shape[1],
            ptr1(loss_out), ptr2(gradient_out), e
        )
    free(e)
    return total
