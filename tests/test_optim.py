"""fastnn.optim against torch.optim's documented update rules, step for step.

The oracle below is an independent scalar transcription of the algorithms in PyTorch's
documentation (torch/optim/{sgd,rmsprop,adam,adamw}.py), written per element in plain
Python floats; it shares no code with the kernels. When torch is installed, the same
configurations are also replayed in torch itself.
"""

import math

import numpy as np
import pytest

from conftest import BACKENDS
from fastnn import optim


# (class name, keyword arguments): every option of every optimizer at least once.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.005, centered=True)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.01)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.2)),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CONFIGS)]


def torch_rule(name, kw):
    """Per-element update p, state, g -> p as in torch.optim's documentation."""
    lr = kw.get("lr", {"SGD": 1e-3, "RMSprop": 1e-2}.get(name, 1e-3))
    wd = kw.get("weight_decay", 1e-2 if name == "AdamW" else 0.0)

    if name == "SGD":
        mu, damp, nesterov = kw.get("momentum", 0.0), kw.get("dampening", 0.0), kw.get("nesterov", False)

        def sgd(p, s, g):
            g = g + wd * p
            if mu != 0:
                s["b"] = g if s["t"] == 1 else mu * s["b"] + (1 - damp) * g
                g = g + mu * s["b"] if nesterov else s["b"]
            return p - lr * g

        return sgd
    if name == "RMSprop":
        alpha, eps = kw.get("alpha", 0.99), kw.get("eps", 1e-8)
        mu, centered = kw.get("momentum", 0.0), kw.get("centered", False)

        def rmsprop(p, s, g):
            g = g + wd * p
            s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
            v = s["v"]
            if centered:
                s["ga"] = alpha * s.get("ga", 0.0) + (1 - alpha) * g
                v = v - s["ga"] ** 2
            d = math.sqrt(v) + eps
            if mu > 0:
                s["b"] = mu * s.get("b", 0.0) + g / d
                return p - lr * s["b"]
            return p - lr * g / d

        return rmsprop
    b1, b2 = kw.get("betas", (0.9, 0.999))
    eps = kw.get("eps", 1e-8)

    def adam(p, s, g):
        t = s["t"]
        if name == "AdamW":
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1**t)
        v_hat = s["v"] / (1 - b2**t)
        return p - lr * m_hat / (math.sqrt(v_hat) + eps)

    return adam


def gradient_sequence(n_steps, shape, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) * (1 + 0.5 * np.sin(t)) for t in range(n_steps)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_matches_torch_rules_for_100_steps(name, kw, backend):
    shapes = [(3, 2), (4,)]
    rng = np.random.default_rng(1)
    params = [rng.normal(size=s) for s in shapes]
    start = [p.copy() for p in params]
    grads = [gradient_sequence(100, s, seed=i) for i, s in enumerate(shapes)]
    opt = getattr(optim, name)(params, backend=backend, **kw)
    for t in range(100):
        opt.step([g[t] for g in grads])

    rule = torch_rule(name, kw)
    for p0, p, seq in zip(start, params, grads):
        expected = np.empty(p0.size)
        for j, x in enumerate(p0.ravel()):
            s = {}
            for t in range(100):
                s["t"] = t + 1
                x = rule(x, s, float(seq[t].ravel()[j]))
            expected[j] = x
        np.testing.assert_allclose(p.ravel(), expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_matches_real_torch(name, kw, backend):
    torch = pytest.importorskip("torch", reason="torch not installed (optional oracle)")
    rng = np.random.default_rng(2)
    p = rng.normal(size=(5, 3))
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw)
    opt = getattr(optim, name)([p], backend=backend, **kw)
    for g in gradient_sequence(100, p.shape, seed=3):
        opt.step([g])
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    # the state buffers torch keeps must agree too
    tstate = topt.state[tp]
    for key, value in tstate.items():
        if key == "step":
            assert int(value) == opt.state[0]["step"]
        else:
            np.testing.assert_allclose(opt.state[0][key], value.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_float32_updates_in_place_and_stays_float32(name, backend):
    p32 = np.linspace(-1, 1, 7, dtype=np.float32)
    p64 = p32.astype(np.float64)
    kw = dict(lr=0.01, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.01)
    o32 = getattr(optim, name)([p32], backend=backend, **kw)
    o64 = getattr(optim, name)([p64], backend=backend, **kw)
    for g in gradient_sequence(20, p32.shape):
        o32.step([g.astype(np.float32)])
        o64.step([g])
    assert o32.params[0] is p32 and p32.dtype == np.float32
    assert o32.state[0]["step"] == 20
    np.testing.assert_allclose(p32, p64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: optim.SGD(p, lr=-1), "learning rate"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "beta parameter at index 0"),
        (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "beta parameter at index 1"),
        (lambda p: optim.Adam(p, eps=-1e-8), "epsilon"),
        (lambda p: optim.RMSprop(p, alpha=-0.5), "alpha"),
        (lambda p: optim.RMSprop(p, weight_decay=-1), "weight_decay"),
        (lambda p: optim.Adam(p, backend="fortran"), "unknown backend"),
        (lambda p: optim.Adam([np.arange(3)]), "float32 or float64"),
        (lambda p: optim.Adam([np.ones((3, 4)).T]), "C-contiguous"),
    ],
)
def test_bad_hyperparameters_and_params_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make([np.ones(3)])


def test_bad_gradients_raise_and_leave_params_unchanged():
    p = np.ones((2, 3))
    opt = optim.Adam([p], backend="numpy")
    with pytest.raises(ValueError, match="expected 1 gradients"):
        opt.step([np.ones((2, 3)), np.ones(1)])
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        opt.step([np.ones((3, 2))])
    assert np.all(p == 1) and opt.state[0]["step"] == 0
