"""Optimizer kernels: 100 steps on a fixed gradient sequence, every backend equal to the
reference (parameters and every state buffer) over a table of configurations.

The driver here plays the caller's part: it computes the per-step scalars (bias
corrections, first_step) in float64 and passes them in, as fastnn.optim and the engine do.
"""

import numpy as np
import pytest

N_PARAMS = 17
STEPS = 100


class Config:
    """One optimizer configuration: kernel name, its state buffers (name, used?), and the
    scalar arguments of step t (1-based)."""

    def __init__(self, kernel, buffers, scalars):
        self.kernel = kernel
        self.buffers = buffers
        self.scalars = scalars


def sgd(lr=0.05, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    return Config(
        "sgd_step_",
        [("momentum_buf", momentum != 0.0)],
        lambda t: (lr, momentum, dampening, nesterov, weight_decay, t == 1),
    )


def sgd_velocity(lr=0.05, momentum=0.9, nesterov=False):
    return Config("sgd_velocity_step_", [("velocity", True)], lambda t: (lr, momentum, nesterov))


def rmsprop(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, bias_correction=False):
    def scalars(t):
        correction = 1.0 / (1.0 - alpha**t) if bias_correction else 1.0
        return (lr, alpha, eps, weight_decay, momentum, centered, correction)

    return Config(
        "rmsprop_step_",
        [("square_avg", True), ("grad_avg", centered), ("momentum_buf", momentum > 0.0)],
        scalars,
    )


def adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False, convention="torch"):
    def scalars(t):
        if convention == "torch":  # m_hat / (sqrt(v_hat) + eps)
            c1, c2, eps_in, eps_out = 1.0 / (1.0 - beta1**t), 1.0 / (1.0 - beta2**t), 0.0, eps
        elif convention == "sklearn":  # bias correction folded into the step size
            c1, c2, eps_in, eps_out = np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t), 1.0, 0.0, eps
        elif convention == "eps_inside":  # m_hat / sqrt(v_hat + eps)
            c1, c2, eps_in, eps_out = 1.0 / (1.0 - beta1**t), 1.0 / (1.0 - beta2**t), eps, 0.0
        return (lr, beta1, beta2, weight_decay, decoupled, float(c1), float(c2), eps_in, eps_out)

    return Config("adam_step_", [("exp_avg", True), ("exp_avg_sq", True)], scalars)


CONFIGS = {
    "sgd-plain": sgd(),
    "sgd-wd": sgd(weight_decay=1e-2),
    "sgd-mom0.9": sgd(momentum=0.9),
    "sgd-mom0.9-damp0.1": sgd(momentum=0.9, dampening=0.1),
    "sgd-mom0.9-nesterov": sgd(momentum=0.9, nesterov=True),
    "sgd-mom0.9-damp0.1-nesterov-wd": sgd(momentum=0.9, dampening=0.1, nesterov=True, weight_decay=1e-2),
    "velocity-mom0.9": sgd_velocity(),
    "velocity-mom0.9-nesterov": sgd_velocity(nesterov=True),
    "velocity-mom0": sgd_velocity(momentum=0.0),
    "rmsprop-plain": rmsprop(),
    "rmsprop-wd": rmsprop(weight_decay=1e-2),
    "rmsprop-centered": rmsprop(centered=True),
    "rmsprop-mom0.9": rmsprop(momentum=0.9),
    "rmsprop-centered-mom0.9": rmsprop(centered=True, momentum=0.9),
    "rmsprop-corrected": rmsprop(bias_correction=True),
    "rmsprop-corrected-mom0.9-wd": rmsprop(bias_correction=True, momentum=0.9, weight_decay=1e-2),
    "rmsprop-corrected-centered": rmsprop(bias_correction=True, centered=True),
    "rmsprop-corrected-centered-mom0.9-wd": rmsprop(
        bias_correction=True, centered=True, momentum=0.9, weight_decay=1e-2
    ),
    "adam-torch": adam(),
    "adam-torch-l2": adam(weight_decay=1e-2),
    "adamw-torch": adam(weight_decay=1e-2, decoupled=True),
    "adam-sklearn": adam(convention="sklearn"),
    "adam-sklearn-l2": adam(convention="sklearn", weight_decay=1e-3),
    "adam-eps-inside": adam(convention="eps_inside", eps=1e-6),
    "adamw-eps-inside": adam(convention="eps_inside", eps=1e-6, weight_decay=0.1, decoupled=True),
}

SENTINEL = 0.5  # the value a full-size unused buffer holds, and must still hold


def _problem(dtype, steps=STEPS, n=N_PARAMS, readonly_grads=False):
    """Initial parameters and a gradient sequence of varying scale (seeded)."""
    rng = np.random.default_rng(1234)
    params = rng.normal(size=n).astype(dtype)
    scale = np.exp(rng.normal(size=(steps, 1)))
    grads = (rng.normal(size=(steps, n)) * scale).astype(dtype)
    grads[::7, ::5] = 0.0  # exact zeros: sqrt(0) + eps, sign(0)
    grads.flags.writeable = not readonly_grads
    return params, grads


def _state(cfg, dtype, n, unused):
    """State buffers in call order; unused ones are empty or full of SENTINEL."""
    state = {}
    for name, used in cfg.buffers:
        if used:
            state[name] = np.zeros(n, dtype)
        elif unused == "empty":
            state[name] = np.empty(0, dtype)
        else:
            state[name] = np.full(n, SENTINEL, dtype)
    return state


def _compare_runs(kernels, reference, cfg, dtype, tol, unused="empty", readonly_grads=False):
    params0, grads = _problem(dtype, readonly_grads=readonly_grads)
    p_ref, p = params0.copy(), params0.copy()
    s_ref = _state(cfg, dtype, N_PARAMS, "empty")
    s = _state(cfg, dtype, N_PARAMS, unused)
    kernel_ref = getattr(reference, cfg.kernel)
    kernel = getattr(kernels, cfg.kernel)
    for t in range(1, len(grads) + 1):
        scalars = cfg.scalars(t)
        kernel_ref(p_ref, grads[t - 1], *s_ref.values(), *scalars)
        kernel(p, grads[t - 1], *s.values(), *scalars)
        np.testing.assert_allclose(p, p_ref, **tol, err_msg=f"params after step {t}")
        for name, used in cfg.buffers:
            if used:
                np.testing.assert_allclose(s[name], s_ref[name], **tol, err_msg=f"{name} after step {t}")
    assert p.dtype == dtype
    assert not np.array_equal(p, params0)  # it did move
    for name, used in cfg.buffers:
        if not used:
            if unused == "empty":
                assert s[name].size == 0
            else:
                np.testing.assert_array_equal(s[name], SENTINEL, err_msg=f"unused {name} was written")


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_optimizer_matches_reference(kernels, reference, dtype, tol, config):
    _compare_runs(kernels, reference, CONFIGS[config], dtype, tol)


UNUSED_CONFIGS = [name for name, cfg in CONFIGS.items() if not all(used for _, used in cfg.buffers)]


@pytest.mark.parametrize("config", UNUSED_CONFIGS, ids=UNUSED_CONFIGS)
def test_unused_full_size_buffers_untouched(kernels, reference, tolerance, config):
    """Unused buffers (momentum 0, not centered) may be empty (above) or full size, and
    then are left as they are."""
    _compare_runs(kernels, reference, CONFIGS[config], np.dtype(np.float64), tolerance[np.dtype(np.float64)], unused="full")


@pytest.mark.parametrize(
    "config",
    ["sgd-mom0.9-damp0.1-nesterov-wd", "velocity-mom0.9", "rmsprop-centered-mom0.9", "rmsprop-corrected-mom0.9-wd", "adamw-torch"],
)
def test_optimizer_readonly_gradients(kernels, reference, dtype, tol, config):
    _compare_runs(kernels, reference, CONFIGS[config], dtype, tol, readonly_grads=True)


@pytest.mark.parametrize("config", ["sgd-mom0.9-nesterov", "velocity-mom0.9", "rmsprop-centered-mom0.9", "adam-torch"])
def test_optimizer_zero_size(kernels, dtype, config):
    cfg = CONFIGS[config]
    params = np.empty(0, dtype)
    state = _state(cfg, dtype, 0, "empty")
    getattr(kernels, cfg.kernel)(params, np.empty(0, dtype), *state.values(), *cfg.scalars(1))
    assert params.size == 0


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_velocity_equals_torch_sgd_for_constant_lr(kernels, nesterov):
    """scikit-learn's velocity form == PyTorch's SGD (dampening 0) when lr is constant."""
    lr, mu = 0.05, 0.9
    params0, grads = _problem(np.float64)
    p_torch, p_vel = params0.copy(), params0.copy()
    buf, velocity = np.zeros(N_PARAMS), np.zeros(N_PARAMS)
    for t in range(1, len(grads) + 1):
        kernels.sgd_step_(p_torch, grads[t - 1], buf, lr, mu, 0.0, nesterov, 0.0, t == 1)
        kernels.sgd_velocity_step_(p_vel, grads[t - 1], velocity, lr, mu, nesterov)
    np.testing.assert_allclose(p_vel, p_torch, rtol=1e-10, atol=1e-12, equal_nan=False)
    np.testing.assert_allclose(velocity, -lr * buf, rtol=1e-10, atol=1e-12, equal_nan=False)


def test_adam_first_step_is_lr_times_sign(kernels, dtype, tol):
    """PyTorch's bias correction makes step 1 lr * g / (|g| + eps)."""
    lr, eps = 0.1, 1e-8
    g = np.array([2.0, -0.5, 0.0, 1e-3], dtype)
    p = np.zeros(4, dtype)
    m, v = np.zeros(4, dtype), np.zeros(4, dtype)
    kernels.adam_step_(p, g, m, v, lr, 0.9, 0.999, 0.0, False, 1 / 0.1, 1 / 0.001, 0.0, eps)
    g64 = g.astype(np.float64)
    np.testing.assert_allclose(p, -lr * g64 / (np.abs(g64) + eps), **tol)
    np.testing.assert_allclose(m, 0.1 * g64, **tol)
    np.testing.assert_allclose(v, 0.001 * g64**2, **tol)


# --------------------------------------------------------------------------- centered RMSprop
#
# var = c * square_avg - (c * grad_avg)**2 is >= 0 in exact arithmetic (Cauchy-Schwarz)
# but can round below zero; unclamped, sqrt(var) is then NaN (as in PyTorch). These two
# cases failed on every backend until the clamp at 0 (8094289).


def test_rmsprop_centered_corrected_first_step_finite(kernels, dtype):
    """Step 1 with c = 1 / (1 - alpha): c s = g**2 and (c ga)**2 = g**2, so var is
    rounding noise around 0 (clamped: the step is lr * g / eps)."""
    alpha = 0.9
    rng = np.random.default_rng(1234)
    g = rng.normal(size=N_PARAMS).astype(dtype)
    p = np.zeros(N_PARAMS, dtype)
    square_avg, grad_avg = np.zeros(N_PARAMS, dtype), np.zeros(N_PARAMS, dtype)
    with np.errstate(invalid="ignore"):
        kernels.rmsprop_step_(
            p, g, square_avg, grad_avg, np.empty(0, dtype), 0.01, alpha, 1e-8, 0.0, 0.0, True, 1.0 / (1.0 - alpha)
        )
    assert np.all(np.isfinite(p)), f"NaN at indices {np.flatnonzero(~np.isfinite(p))} for g = {g[~np.isfinite(p)]}"


def test_rmsprop_centered_constant_gradient_stays_finite(kernels):
    """PyTorch's centered RMSprop (c = 1), float64, a constant gradient: var = alpha**t
    (1 - alpha**t) g**2 -> 0 and rounds negative after ~300 steps."""
    alpha = 0.9
    g = np.random.default_rng(0).normal(size=50)
    p = np.zeros(50)
    square_avg, grad_avg = np.zeros(50), np.zeros(50)
    with np.errstate(invalid="ignore"):
        for t in range(1, 501):
            kernels.rmsprop_step_(p, g, square_avg, grad_avg, np.empty(0), 0.01, alpha, 1e-8, 0.0, 0.0, True, 1.0)
            if not np.all(np.isfinite(p)):
                break
    assert np.all(np.isfinite(p)), f"NaN from step {t} on, at {np.count_nonzero(~np.isfinite(p))} of 50 entries"
