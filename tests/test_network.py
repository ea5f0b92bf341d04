"""The flat parameter buffer, and the digits demo that trains through the kernels."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from fastnn import _demo, available_backends
from fastnn._network import init_params, layout, unflatten


def test_layout_and_views_share_the_flat_buffer():
    sizes = [4, 3, 2]
    spans, size = layout(sizes)
    assert spans == [(0, 12, 15), (15, 21, 23)] and size == 23
    flat = np.arange(size, dtype=np.float64)
    coefs, intercepts = unflatten(flat, sizes)
    assert [c.shape for c in coefs] == [(4, 3), (3, 2)]
    assert [b.shape for b in intercepts] == [(3,), (2,)]
    assert all(np.shares_memory(v, flat) for v in coefs + intercepts)
    assert coefs[1][0, 0] == 15 and intercepts[1][-1] == 22


def test_init_draws_like_scikit_learn():
    """Glorot bounds per layer, drawn weights then biases, layer by layer."""
    sizes = [5, 4, 3]
    flat = init_params(sizes, "relu", np.random.RandomState(3), np.float32)
    assert flat.dtype == np.float32
    rs = np.random.RandomState(3)
    expected = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        expected += [rs.uniform(-bound, bound, (fan_in, fan_out)).ravel(),
                     rs.uniform(-bound, bound, fan_out)]
    np.testing.assert_allclose(flat, np.concatenate(expected).astype(np.float32))
    logistic = init_params(sizes, "logistic", np.random.RandomState(3), np.float64)
    assert np.abs(logistic[:20]).max() <= np.sqrt(2.0 / 9)


def test_demo_training_agrees_across_backends_and_learns():
    X, y = load_digits(return_X_y=True)
    X, Y = X[:600] / 16.0, np.eye(10)[y[:600]]
    results = {b: _demo.train(X, Y, hidden=20, epochs=3, backend=b)[0]
               for b in available_backends()}
    ref = results["numpy"]
    for backend, params in results.items():
        np.testing.assert_allclose(params, ref, rtol=1e-9, atol=1e-12, err_msg=backend)
    params, sizes = _demo.train(X, Y, hidden=20, epochs=30, batch_size=50, backend="numpy")
    assert np.mean(_demo.predict(params, sizes, X, "numpy") == y[:600]) > 0.9


def test_demo_command_prints_accuracy_per_backend():
    out = subprocess.run([sys.executable, "-m", "fastnn", "demo", "--epochs", "3"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith(("fastnn", "scikit"))]
    assert len(rows) == len(available_backends()) + 1
    assert all(0.5 < float(r[-2]) <= 1.0 for r in rows), out.stdout


def test_demo_command_rejects_bad_epochs():
    out = subprocess.run([sys.executable, "-m", "fastnn", "demo", "--epochs", "0"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--epochs must be at least 1" in out.stderr
