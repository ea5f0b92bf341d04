"""Cython loss kernels: loss and gradient fused, on raw (pre-activation) outputs.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings live
there). Every kernel takes y_true and raw (n, k) and sample_weight (n,), writes

    loss_out[i]        = sum_k loss(y_true[i, k], raw[i, k])   (unweighted)
    gradient_out[i, k] = sample_weight[i] * d loss / d raw[i, k]

and returns sum_i sample_weight[i] * loss_out[i], accumulated in double.

The per-element math lives in the small ``_<loss>`` functions below, which return loss and
gradient together; ``_elementwise_loop`` is the one array loop around them.
"""

from libc.math cimport INFINITY, exp, fabs, log, log1p
from libc.stdlib cimport free, malloc

from _common cimport clip, floating


ctypedef struct LossGrad:
    double loss
    double gradient


ctypedef struct LossParams:
    double delta  # Huber threshold
    double eps  # probability clip [eps, 1 - eps]
    double lo  # bounds on -log(p) for a clipped p: [-log(1 - eps), -log(eps)]
    double hi


ctypedef LossGrad (*loss_grad_t)(double y, double raw, const LossParams* prm) noexcept nogil


# --------------------------------------------------------------------------- per element


cdef inline LossGrad _half_squared_error(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y
    return LossGrad(loss=0.5 * r * r, gradient=r)


cdef inline LossGrad _absolute_error(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y
    # subgradient 0 at r == 0, NaN stays NaN (np.sign)
    return LossGrad(loss=fabs(r), gradient=1.0 if r > 0 else (-1.0 if r < 0 else r * 0.0))


cdef inline LossGrad _huber(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y, delta = prm.delta
    if fabs(r) <= delta:
        return LossGrad(loss=0.5 * r * r, gradient=r)
    return LossGrad(loss=delta * (fabs(r) - 0.5 * delta), gradient=clip(r, -delta, delta))


cdef inline LossGrad _poisson(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double mu = exp(raw)
    return LossGrad(loss=mu - y * raw, gradient=mu - y)


cdef inline LossGrad _binary_log(double y, double raw, const LossParams* prm) noexcept nogil:
    # -log(p) = softplus(-raw) and -log(1 - p) = softplus(raw), each clipped, with
    # softplus(t) = max(t, 0) + log1p(exp(-|t|)); both, and p, share e = exp(-|raw|).
    cdef double e = exp(-fabs(raw)), log1p_e = log1p(e)
    cdef double neg_log_p = (0.0 if raw > 0 else -raw) + log1p_e
    cdef double neg_log_1mp = (0.0 if raw < 0 else raw) + log1p_e
    cdef double p = 1.0 / (1.0 + e) if raw >= 0 else e / (1.0 + e)  # expit(raw)
    return LossGrad(
        loss=y * clip(neg_log_p, prm.lo, prm.hi) + (1.0 - y) * clip(neg_log_1mp, prm.lo, prm.hi),
        gradient=p - y,
    )


cdef inline LossGrad _binary_log_proba(double y, double proba, const LossParams* prm) noexcept nogil:
    cdef double p = clip(proba, prm.eps, 1.0 - prm.eps)
    return LossGrad(
        loss=-y * log(p) - (1.0 - y) * log1p(-p),
        gradient=(p - y) / (p * (1.0 - p)),
    )


cdef inline double _softmax_cross_entropy_row(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    Py_ssize_t i,
    double w,
    double lo,
    double hi,
    floating[:, ::1] gradient_out,  # OUT, row i
    double* e,  # scratch, k doubles
) noexcept nogil:
    """Loss of row i; writes its weighted gradient w * (softmax(raw) * sum_k y_k - y)."""
    cdef Py_ssize_t j, k = raw.shape[1]
    cdef double m, s = 0.0, y_sum = 0.0, log_sum, loss = 0.0
    if k == 0:
        return 0.0
    m = raw[i, 0]
    for j in range(1, k):
        if raw[i, j] > m:
            m = raw[i, j]
    for j in range(k):
        e[j] = exp(raw[i, j] - m)
        s += e[j]
        y_sum += y_true[i, j]
    log_sum = m + log(s)
    for j in range(k):
        loss += y_true[i, j] * clip(log_sum - raw[i, j], lo, hi)  # y_k * -log p_k
        gradient_out[i, j] = w * (e[j] / s * y_sum - y_true[i, j])
    return loss


# --------------------------------------------------------------------------- array loops


cdef inline double _elementwise_loop(
    loss_grad_t loss_grad,
    const LossParams* prm,
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
) noexcept nogil:
    cdef Py_ssize_t i, j, n = raw.shape[0], k = raw.shape[1]
    cdef double w, loss, total = 0.0
    cdef LossGrad lg
    for i in range(n):
        w = sample_weight[i]
        loss = 0.0
        for j in range(k):
            lg = loss_grad(y_true[i, j], raw[i, j], prm)
            loss += lg.loss
            gradient_out[i, j] = w * lg.gradient
        loss_out[i] = loss
        total += w * loss
    return total


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


cdef LossParams _log_clip_params(double eps) noexcept:
    """Bounds on -log(p) when p is clipped to [eps, 1 - eps]; eps = 0 clips nothing."""
    cdef LossParams prm
    prm.delta = 0.0
    prm.eps = eps
    prm.lo = -log1p(-eps)
    prm.hi = -log(eps) if eps > 0 else INFINITY
    return prm


# --------------------------------------------------------------------------- kernels


def half_squared_error_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """loss = (raw - y)**2 / 2, gradient = raw - y."""
    cdef LossParams prm = _log_clip_params(0.0)
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    with nogil:
        total = _elementwise_loop(
            _half_squared_error, &prm, y_true, raw, sample_weight, loss_out, gradient_out
        )
    return total


def absolute_error_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """loss = |raw - y|, gradient = sign(raw - y) (0 at raw == y)."""
    cdef LossParams prm = _log_clip_params(0.0)
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    with nogil:
        total = _elementwise_loop(
            _absolute_error, &prm, y_true, raw, sample_weight, loss_out, gradient_out
        )
    return total


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
    cdef LossParams prm = _log_clip_params(0.0)
    cdef double total
    prm.delta = delta
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    with nogil:
        total = _elementwise_loop(
            _huber, &prm, y_true, raw, sample_weight, loss_out, gradient_out
        )
    return total


def poisson_loss_gradient(
    const floating[:, ::1] y_true,  # IN
    const floating[:, ::1] raw,  # IN
    const floating[::1] sample_weight,  # IN
    floating[::1] loss_out,  # OUT
    floating[:, ::1] gradient_out,  # OUT
):
    """Poisson NLL with log link, no constant: loss = exp(raw) - y raw, gradient = exp(raw) - y."""
    cdef LossParams prm = _log_clip_params(0.0)
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    with nogil:
        total = _elementwise_loop(
            _poisson, &prm, y_true, raw, sample_weight, loss_out, gradient_out
        )
    return total


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
    cdef LossParams prm = _log_clip_params(eps)
    cdef double total
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    with nogil:
        total = _elementwise_loop(
            _binary_log, &prm, y_true, raw, sample_weight, loss_out, gradient_out
        )
    return total


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
    cdef LossParams prm = _log_clip_params(eps)
    cdef double total
    _check(y_true, proba, sample_weight, loss_out, gradient_out)
    with nogil:
        total = _elementwise_loop(
            _binary_log_proba, &prm, y_true, proba, sample_weight, loss_out, gradient_out
        )
    return total


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
    cdef LossParams prm = _log_clip_params(eps)
    cdef Py_ssize_t i, n = raw.shape[0]
    cdef double w, loss, total = 0.0
    _check(y_true, raw, sample_weight, loss_out, gradient_out)
    cdef double* e = <double*>malloc(max(raw.shape[1], 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    with nogil:
        for i in range(n):
            w = sample_weight[i]
            loss = _softmax_cross_entropy_row(
                y_true, raw, i, w, prm.lo, prm.hi, gradient_out, e
            )
            loss_out[i] = loss
            total += w * loss
    free(e)
    return total
