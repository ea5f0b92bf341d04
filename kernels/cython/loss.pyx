"""Cython loss kernels: loss and gradient fused, on raw (pre-activation) outputs.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Every kernel takes y_true and raw (n, k) and sample_weight (n,), writes

    loss_out[i]        = sum_k loss(y_true[i, k], raw[i, k])   (unweighted)
    gradient_out[i, k] = sample_weight[i] * d loss / d raw[i, k]

and returns sum_i sample_weight[i] * loss_out[i], accumulated in double.

The math lives in _loss.pxd (shared with train.pyx): small per-element functions that
return loss and gradient together, and the row loops around them; these wrappers check
shapes.

Each kernel is a Python-level function over a fused-type implementation (``_<name>``),
whose memoryviews refuse arrays of the wrong dtype, rank, layout or writeability; when a
call fails, the kernel raises fastnn.kernels._checks' error naming the argument instead
(the memoryviews' own messages name none), at no cost to calls that succeed.
"""

from libc.stdlib cimport free, malloc

from _common cimport cptr1, cptr2, floating, ptr1, ptr2
from _loss cimport (
    LossParams, absolute_error, binary_log, binary_log_proba, elementwise_loss_rows,
    half_squared_error, huber, log_clip_params, loss_grad_t, poisson, quantile,
    softmax_cross_entropy_rows,
)

from .._checks import argument_error


# --------------------------------------------------------------------------- helpers


cdef int _check(
    const floating[:, ::1] y_true,
    const floating[:, ::1] raw,
    const floating[::1] sample_weight,
    floating[::1] loss_out,
    floating[:, ::1] gradient_out,
    str raw_name="raw",  # binary_log_loss_proba_gradient's is proba
) except -1:
    cdef tuple shape = (raw.shape[0], raw.shape[1])
    if (y_true.shape[0], y_true.shape[1]) != shape:
        raise ValueError(f"y_true has shape {(y_true.shape[0], y_true.shape[1])}, expected "
                         f"{shape} (the shape of {raw_name})")
    if (gradient_out.shape[0], gradient_out.shape[1]) != shape:
        raise ValueError(
            f"gradient_out has shape {(gradient_out.shape[0], gradient_out.shape[1])}, "
            f"expected {shape} (the shape of {raw_name})"
        )
    if sample_weight.shape[0] != shape[0]:
        raise ValueError(f"sample_weight has shape ({sample_weight.shape[0]},), expected "
                         f"({shape[0]},) (the rows of {raw_name})")
    if loss_out.shape[0] != shape[0]:
        raise ValueError(f"loss_out has shape ({loss_out.shape[0]},), expected ({shape[0]},) "
                         f"(the rows of {raw_name})")
    return 0


cdef inline double _loop(
    loss_grad_t loss_grad,
    const LossParams* prm,
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
    str raw_name="raw",
) except? -1.0:
    """Checks the shapes, then runs elementwise_loss_rows without the GIL."""
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out, raw_name)
    with nogil:
        total = elementwise_loss_rows(
            loss_grad, prm, cptr2(y_true), cptr2(raw), cptr1(sample_weight), raw.shape[0],
            raw.shape[1], ptr1(loss_out), ptr2(gradient_out)
        )
    return total


# --------------------------------------------------------------------------- kernels


def half_squared_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """loss = (raw - y)**2 / 2, gradient = raw - y."""
    try:
        return _half_squared_error_loss_gradient(y_true, raw, sample_weight, loss_out,
                                                 gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("half_squared_error_loss_gradient",
                             (y_true, raw, sample_weight, loss_out, gradient_out)) or exc from None


def absolute_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """loss = |raw - y|, gradient = sign(raw - y) (0 at raw == y)."""
    try:
        return _absolute_error_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("absolute_error_loss_gradient",
                             (y_true, raw, sample_weight, loss_out, gradient_out)) or exc from None


def huber_loss_gradient(y_true, raw, sample_weight, delta, loss_out, gradient_out):
    """r = raw - y: loss = r**2 / 2 for |r| <= delta, else delta (|r| - delta / 2);
    gradient = clip(r, -delta, delta)."""
    try:
        return _huber_loss_gradient(y_true, raw, sample_weight, delta, loss_out, gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("huber_loss_gradient",
                             (y_true, raw, sample_weight, delta, loss_out, gradient_out)
                             ) or exc from None


def quantile_loss_gradient(y_true, raw, sample_weight, quantile, loss_out, gradient_out):
    """r = raw - y, q = quantile: loss = q max(-r, 0) + (1 - q) max(r, 0); gradient =
    1 - q for r > 0, -q for r < 0, 0 at r == 0."""
    try:
        return _quantile_loss_gradient(y_true, raw, sample_weight, quantile, loss_out,
                                       gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("quantile_loss_gradient",
                             (y_true, raw, sample_weight, quantile, loss_out, gradient_out)
                             ) or exc from None


def poisson_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out):
    """Poisson NLL with log link, no constant: loss = exp(raw) - y raw, gradient = exp(raw) - y."""
    try:
        return _poisson_loss_gradient(y_true, raw, sample_weight, loss_out, gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("poisson_loss_gradient",
                             (y_true, raw, sample_weight, loss_out, gradient_out)) or exc from None


def binary_log_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out):
    """p = sigmoid(raw): loss = y softplus(-raw) + (1 - y) softplus(raw), each term clipped
    to [-log(1 - eps), -log(eps)] (eps = 0: none); gradient = p - y."""
    try:
        return _binary_log_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("binary_log_loss_gradient",
                             (y_true, raw, sample_weight, eps, loss_out, gradient_out)
                             ) or exc from None


def binary_log_loss_proba_gradient(y_true, proba, sample_weight, eps, loss_out, gradient_out):
    """pc = clip(p, eps, 1 - eps): loss = -y log(pc) - (1 - y) log(1 - pc),
    gradient = (pc - y) / (pc (1 - pc)) (needs 0 < eps < 1/2)."""
    try:
        return _binary_log_loss_proba_gradient(y_true, proba, sample_weight, eps, loss_out,
                                               gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("binary_log_loss_proba_gradient",
                             (y_true, proba, sample_weight, eps, loss_out, gradient_out)
                             ) or exc from None


def softmax_cross_entropy_loss_gradient(y_true, raw, sample_weight, eps, loss_out, gradient_out):
    """p = softmax(raw) per row: loss = sum_k y_k clip(logsumexp(raw) - raw_k, -log(1 - eps),
    -log(eps)) (eps = 0: none); gradient = p sum_k y_k - y."""
    try:
        return _softmax_cross_entropy_loss_gradient(y_true, raw, sample_weight, eps, loss_out,
                                                    gradient_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("softmax_cross_entropy_loss_gradient",
                             (y_true, raw, sample_weight, eps, loss_out, gradient_out)
                             ) or exc from None


# --------------------------------------------------------------------------- implementations


def _half_squared_error_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(0.0)
    return _loop(half_squared_error, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def _absolute_error_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(0.0)
    return _loop(absolute_error, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def _huber_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    double delta,
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(0.0)
    prm.delta = delta
    return _loop(huber, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def _quantile_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    double q,
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(0.0)
    prm.quantile = q
    return _loop(quantile, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def _poisson_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(0.0)
    return _loop(poisson, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def _binary_log_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    double eps,
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(eps)
    return _loop(binary_log, &prm, y_true, raw, sample_weight, loss_out, gradient_out)


def _binary_log_loss_proba_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] proba not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    double eps,
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
    cdef LossParams prm = log_clip_params(eps)
    return _loop(binary_log_proba, &prm, y_true, proba, sample_weight, loss_out, gradient_out,
                 "proba")


def _softmax_cross_entropy_loss_gradient(
    const floating[:, ::1] y_true not None,  # IN
    const floating[:, ::1] raw not None,  # IN
    const floating[::1] sample_weight not None,  # IN
    double eps,
    floating[::1] loss_out not None,  # OUT
    floating[:, ::1] gradient_out not None,  # OUT
):
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
