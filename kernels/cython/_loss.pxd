# The loss math as nogil cores on raw pointers, shared by loss.pyx (the kernels of the
# public API) and train.pyx (the fused loss of the training step). Header-only, as
# _dense.pxd (see there why).
#
# The per-element functions return loss and gradient together; the two row loops below
# are the only array loops. Every loop writes
#     loss_out[i]        = sum_k loss(y_true[i, k], raw[i, k])   (unweighted)
#     gradient_out[i, k] = sample_weight[i] * d loss / d raw[i, k]
# and returns sum_i sample_weight[i] * loss_out[i], accumulated in double.

from libc.math cimport INFINITY, fabs, log, log1p

from _common cimport clip, floating
from _vmath cimport vexp


ctypedef struct LossGrad:
    double loss
    double gradient


ctypedef struct LossParams:
    double delta  # Huber threshold
    double quantile  # the pinball loss's q
    double eps  # probability clip [eps, 1 - eps]
    double lo  # bounds on -log(p) for a clipped p: [-log(1 - eps), -log(eps)]
    double hi


ctypedef LossGrad (*loss_grad_t)(double y, double raw, const LossParams* prm) noexcept nogil


cdef inline LossParams log_clip_params(double eps) noexcept nogil:
    """Bounds on -log(p) when p is clipped to [eps, 1 - eps]; eps = 0 clips nothing."""
    cdef LossParams prm
    prm.delta = 0.0
    prm.quantile = 0.0
    prm.eps = eps
    prm.lo = -log1p(-eps)
    prm.hi = -log(eps) if eps > 0 else INFINITY
    return prm


# --------------------------------------------------------------------------- per element


cdef inline LossGrad half_squared_error(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y
    return LossGrad(loss=0.5 * r * r, gradient=r)


cdef inline LossGrad absolute_error(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y
    # subgradient 0 at r == 0, NaN stays NaN (np.sign)
    return LossGrad(loss=fabs(r), gradient=1.0 if r > 0 else (-1.0 if r < 0 else r * 0.0))


cdef inline LossGrad huber(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y, delta = prm.delta
    if fabs(r) <= delta:
        return LossGrad(loss=0.5 * r * r, gradient=r)
    return LossGrad(loss=delta * (fabs(r) - 0.5 * delta), gradient=clip(r, -delta, delta))


cdef inline LossGrad quantile(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double r = raw - y, q = prm.quantile
    if r > 0:
        return LossGrad(loss=(1.0 - q) * r, gradient=1.0 - q)
    if r < 0:
        return LossGrad(loss=-q * r, gradient=-q)
    return LossGrad(loss=r * 0.0, gradient=r * 0.0)  # r == 0: subgradient 0 (NaN kept)


cdef inline LossGrad poisson(double y, double raw, const LossParams* prm) noexcept nogil:
    cdef double mu = vexp(raw)
    return LossGrad(loss=mu - y * raw, gradient=mu - y)


cdef inline LossGrad binary_log(double y, double raw, const LossParams* prm) noexcept nogil:
    # -log(p) = softplus(-raw) and -log(1 - p) = softplus(raw), each clipped, with
    # softplus(t) = max(t, 0) + log1p(exp(-|t|)); both, and p, share e = exp(-|raw|).
    cdef double e = vexp(-fabs(raw)), log1p_e = log1p(e)
    cdef double neg_log_p = (0.0 if raw > 0 else -raw) + log1p_e
    cdef double neg_log_1mp = (0.0 if raw < 0 else raw) + log1p_e
    cdef double p = 1.0 / (1.0 + e) if raw >= 0 else e / (1.0 + e)  # expit(raw)
    return LossGrad(
        loss=y * clip(neg_log_p, prm.lo, prm.hi) + (1.0 - y) * clip(neg_log_1mp, prm.lo, prm.hi),
        gradient=p - y,
    )


cdef inline LossGrad binary_log_proba(double y, double proba, const LossParams* prm) noexcept nogil:
    cdef double p = clip(proba, prm.eps, 1.0 - prm.eps)
    return LossGrad(
        loss=-y * log(p) - (1.0 - y) * log1p(-p),
        gradient=(p - y) / (p * (1.0 - p)),
    )


# --------------------------------------------------------------------------- row loops


cdef inline double elementwise_loss_rows(
    loss_grad_t loss_grad,
    const LossParams* prm,
    const floating* y_true,  # IN (n, k)
    const floating* raw,  # IN (n, k)
    const floating* sample_weight,  # IN (n,)
    Py_ssize_t n,
    Py_ssize_t k,
    floating* loss_out,  # OUT (n,)
    floating* gradient_out,  # OUT (n, k)
) noexcept nogil:
    """The one array loop around the per-element functions above."""
    cdef Py_ssize_t i, j
    cdef double w, loss, total = 0.0
    cdef LossGrad lg
    for i in range(n):
        w = sample_weight[i]
        loss = 0.0
        for j in range(i * k, i * k + k):
            lg = loss_grad(y_true[j], raw[j], prm)
            loss += lg.loss
            gradient_out[j] = w * lg.gradient
        loss_out[i] = loss
        total += w * loss
    return total


cdef inline double softmax_cross_entropy_rows(
    const LossParams* prm,
    const floating* y_true,  # IN (n, k)
    const floating* raw,  # IN (n, k)
    const floating* sample_weight,  # IN (n,)
    Py_ssize_t n,
    Py_ssize_t k,
    floating* loss_out,  # OUT (n,)
    floating* gradient_out,  # OUT (n, k)
    double* e,  # scratch, k doubles
) noexcept nogil:
    """p = softmax(raw) per row: loss = sum_k y_k clip(logsumexp(raw) - raw_k, lo, hi),
    gradient = w (p sum_k y_k - y)."""
    cdef Py_ssize_t i, j
    cdef const floating* y
    cdef const floating* z
    cdef floating* g
    cdef double w, m, s, y_sum, log_sum, loss, total = 0.0
    for i in range(n):
        w = sample_weight[i]
        loss = 0.0
        if k > 0:
            y = y_true + i * k
            z = raw + i * k
            g = gradient_out + i * k
            m = z[0]
            for j in range(1, k):
                if z[j] > m:
                    m = z[j]
            s = 0.0
            y_sum = 0.0
            for j in range(k):
                e[j] = vexp(z[j] - m)  # vectorizes: no sum in this loop
            for j in range(k):
                s += e[j]
                y_sum += y[j]
            log_sum = m + log(s)
            for j in range(k):
                loss += y[j] * clip(log_sum - z[j], prm.lo, prm.hi)  # y_k * -log p_k
                g[j] = w * (e[j] / s * y_sum - y[j])
        loss_out[i] = loss
        total += w * loss
    return total
