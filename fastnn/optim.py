"""Optimizers with torch.optim's names, defaults and update rules, on NumPy arrays.

``params`` is a list of float32/float64 C-contiguous writable arrays, updated in place by
``step(grads)``; ``grads`` is a list of arrays of the same shapes. Each optimizer keeps
its state per parameter in ``state`` (a list of dicts with the step count and buffers,
as torch's ``optimizer.state``). Bias corrections are computed once per step in float64
and passed to one compiled update kernel per parameter array.

>>> import numpy as np
>>> from fastnn import optim
>>> w = np.array([1.0, -2.0])
>>> opt = optim.SGD([w], lr=0.1)
>>> opt.step([np.array([1.0, 1.0])])
>>> w
array([ 0.9, -2.1])
"""

import numpy as np

from . import _backends

__all__ = ["SGD", "RMSprop", "Adam", "AdamW"]


def _check(condition, message):
    if not condition:
        raise ValueError(message)


class _Optimizer:
    """Validates the parameters and gradients and runs ``_update`` on each array."""

    def __init__(self, params, backend):
        self.params = list(params)
        for i, p in enumerate(self.params):
            _check(isinstance(p, np.ndarray), f"params[{i}] must be a NumPy array")
            _check(p.dtype in (np.float32, np.float64),
                   f"params[{i}] must be float32 or float64, got dtype {p.dtype}")
            _check(p.flags.c_contiguous and p.flags.writeable,
                   f"params[{i}] must be C-contiguous and writable (it is updated in place)")
        self.backend = _backends.resolve(backend)
        self._kernels = _backends.get_kernels(self.backend)
        self.state = [{"step": 0} for _ in self.params]

    def step(self, grads):
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : list of array-like
            One gradient per parameter, of its shape (converted to its dtype).

        Returns
        -------
        None

        Raises
        ------
        ValueError
            For a wrong number of gradients, a shape mismatch or a non-numeric gradient.

        Examples
        --------
        >>> import numpy as np
        >>> from fastnn import optim
        >>> w, b = np.ones(2), np.zeros(1)
        >>> opt = optim.SGD([w, b], lr=0.5)
        >>> opt.step([np.array([1.0, 2.0]), np.array([-1.0])])
        >>> w, b
        (array([0.5, 0. ]), array([0.5]))
        """
        grads = list(grads)
        _check(len(grads) == len(self.params),
               f"expected {len(self.params)} gradients, got {len(grads)}")
        flat = []
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g = np.asarray(g)
            _check(g.shape == p.shape,
                   f"grads[{i}] has shape {g.shape}, its parameter has shape {p.shape}")
            _check(g.dtype.kind in "fiu", f"grads[{i}] must be numeric, got dtype {g.dtype}")
            flat.append(np.ascontiguousarray(g, dtype=p.dtype).reshape(-1))
        for p, g, state in zip(self.params, flat, self.state):
            state["step"] += 1
            self._update(p.reshape(-1), g, state, p)

    @staticmethod
    def _buffer(state, name, p, used=True):
        """A flat view of a state buffer shaped like ``p``, zero at first use; empty when
        the update rule never reads it."""
        if name not in state:
            state[name] = np.zeros_like(p) if used else np.empty(0, dtype=p.dtype)
        return state[name].reshape(-1)


class SGD(_Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD.

    g = grad + weight_decay * p; with momentum mu: b = g at the first step, then
    b = mu * b + (1 - dampening) * g, and g = g + mu * b (nesterov) or g = b;
    p -= lr * g.

    Parameters
    ----------
    params : list of ndarray
        float32/float64, C-contiguous and writable; updated in place by :meth:`step`.
    lr : float, default=1e-3
        Learning rate.
    momentum : float, default=0.0
        Momentum factor mu.
    dampening : float, default=0.0
        Dampening of the momentum's gradient term.
    nesterov : bool, default=False
        Nesterov momentum (needs momentum > 0 and dampening = 0).
    weight_decay : float, default=0.0
        L2 penalty added to the gradient.
    backend : {None, "auto", "numpy", "numba", "cython"}, default=None
        Keyword-only. Kernel implementation; None and "auto" mean the fastest available.

    Attributes
    ----------
    state : list of dict
        Per parameter: ``"step"`` (the count) and the buffers of the update rule (``"momentum_buffer"``).

    Raises
    ------
    ValueError
        For a negative learning rate, momentum, eps or weight decay, out-of-range betas,
        or parameters that are not writable C-contiguous float arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import optim
    >>> w = np.array([1.0, -2.0])
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> opt.step([np.array([1.0, 1.0])])
    >>> opt.step([np.array([1.0, 1.0])])
    >>> w
    array([ 0.71, -2.29])
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0, *, backend=None):
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(not nesterov or (momentum > 0 and dampening == 0),
               "Nesterov momentum requires a momentum and zero dampening")
        self.lr, self.momentum, self.dampening = float(lr), float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)
        super().__init__(params, backend)

    def _update(self, p, g, state, shaped):
        buf = self._buffer(state, "momentum_buffer", shaped, self.momentum != 0.0)
        self._kernels.sgd_step_(p, g, buf, self.lr, self.momentum, self.dampening,
                                self.nesterov, self.weight_decay, state["step"] == 1)


class RMSprop(_Optimizer):
    """RMSprop, as torch.optim.RMSprop.

    g = grad + weight_decay * p; s = alpha s + (1 - alpha) g**2;
    centered: ga = alpha ga + (1 - alpha) g and d = sqrt(s - ga**2) + eps, else
    d = sqrt(s) + eps; with momentum mu > 0: b = mu b + g / d, p -= lr b;
    else p -= lr g / d.

    Parameters
    ----------
    params : list of ndarray
        float32/float64, C-contiguous and writable; updated in place by :meth:`step`.
    lr : float, default=1e-2
        Learning rate.
    alpha : float, default=0.99
        Decay of the running mean of squared gradients.
    eps : float, default=1e-8
        Added to the denominator.
    weight_decay : float, default=0.0
        L2 penalty added to the gradient.
    momentum : float, default=0.0
        Momentum factor.
    centered : bool, default=False
        Divide by the estimated variance (mean of squares minus squared mean) instead.
    backend : {None, "auto", "numpy", "numba", "cython"}, default=None
        Keyword-only. Kernel implementation; None and "auto" mean the fastest available.

    Attributes
    ----------
    state : list of dict
        Per parameter: ``"step"`` (the count) and the buffers of the update rule (``"square_avg"``, ``"grad_avg"``, ``"momentum_buffer"``).

    Raises
    ------
    ValueError
        For a negative learning rate, momentum, eps or weight decay, out-of-range betas,
        or parameters that are not writable C-contiguous float arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import optim
    >>> w = np.array([1.0])
    >>> opt = optim.RMSprop([w], lr=0.01)
    >>> opt.step([np.array([4.0])])  # first step: g / sqrt((1 - alpha) g**2) = 10
    >>> w.round(6)
    array([0.9])
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, *, backend=None):
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        self.lr, self.alpha, self.eps = float(lr), float(alpha), float(eps)
        self.weight_decay, self.momentum = float(weight_decay), float(momentum)
        self.centered = bool(centered)
        super().__init__(params, backend)

    def _update(self, p, g, state, shaped):
        square_avg = self._buffer(state, "square_avg", shaped)
        grad_avg = self._buffer(state, "grad_avg", shaped, self.centered)
        buf = self._buffer(state, "momentum_buffer", shaped, self.momentum > 0.0)
        self._kernels.rmsprop_step_(p, g, square_avg, grad_avg, buf, self.lr, self.alpha,
                                    self.eps, self.weight_decay, self.momentum,
                                    self.centered, 1.0)


class Adam(_Optimizer):
    """Adam, as torch.optim.Adam (weight_decay is an L2 term added to the gradient).

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g**2;
    p -= lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t).

    Parameters
    ----------
    params : list of ndarray
        float32/float64, C-contiguous and writable; updated in place by :meth:`step`.
    lr : float, default=1e-3
        Learning rate.
    betas : (float, float), default=(0.9, 0.999)
        Decays of the first and second moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the denominator, outside the square root (PyTorch's form).
    weight_decay : float, default=0.0
        L2 penalty added to the gradient.
    backend : {None, "auto", "numpy", "numba", "cython"}, default=None
        Keyword-only. Kernel implementation; None and "auto" mean the fastest available.

    Attributes
    ----------
    state : list of dict
        Per parameter: ``"step"`` (the count) and the buffers of the update rule (``"exp_avg"``, ``"exp_avg_sq"``).

    Raises
    ------
    ValueError
        For a negative learning rate, momentum, eps or weight decay, out-of-range betas,
        or parameters that are not writable C-contiguous float arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import optim
    >>> w = np.array([1.0, 1.0])
    >>> opt = optim.Adam([w], lr=0.1)
    >>> opt.step([np.array([3.0, -0.5])])  # the first step moves every weight by about lr
    >>> w.round(6)
    array([0.9, 1.1])
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *,
                 backend=None):
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        beta1, beta2 = betas
        _check(0.0 <= beta1 < 1.0, f"Invalid beta parameter at index 0: {beta1}")
        _check(0.0 <= beta2 < 1.0, f"Invalid beta parameter at index 1: {beta2}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        self.lr, self.betas = float(lr), (float(beta1), float(beta2))
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        super().__init__(params, backend)

    def _update(self, p, g, state, shaped):
        t = state["step"]
        beta1, beta2 = self.betas
        exp_avg = self._buffer(state, "exp_avg", shaped)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", shaped)
        self._kernels.adam_step_(p, g, exp_avg, exp_avg_sq, self.lr, beta1, beta2,
                                 self.weight_decay, self._decoupled,
                                 1.0 / (1.0 - beta1**t), 1.0 / (1.0 - beta2**t), 0.0, self.eps)


class AdamW(Adam):
    """AdamW, as torch.optim.AdamW: Adam with decoupled weight decay,
    p *= 1 - lr * weight_decay before the Adam step (which then has no L2 term).

    Parameters
    ----------
    params : list of ndarray
        float32/float64, C-contiguous and writable; updated in place by :meth:`step`.
    lr : float, default=1e-3
        Learning rate.
    betas : (float, float), default=(0.9, 0.999)
        Decays of the first and second moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the denominator, outside the square root.
    weight_decay : float, default=1e-2
        Decoupled decay: the weights shrink by ``lr * weight_decay`` of themselves per step.
    backend : {None, "auto", "numpy", "numba", "cython"}, default=None
        Keyword-only. Kernel implementation; None and "auto" mean the fastest available.

    Attributes
    ----------
    state : list of dict
        Per parameter: ``"step"`` (the count) and the buffers of the update rule (``"exp_avg"``, ``"exp_avg_sq"``).

    Raises
    ------
    ValueError
        For a negative learning rate, momentum, eps or weight decay, out-of-range betas,
        or parameters that are not writable C-contiguous float arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import optim
    >>> w = np.array([1.0])
    >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.step([np.array([0.0])])  # zero gradient: only the decay, 1 - 0.1 * 0.5
    >>> w
    array([0.95])
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 backend=None):
        super().__init__(params, lr, betas, eps, weight_decay, backend=backend)
