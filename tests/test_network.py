"""The flat parameter buffer, and the digits demo."""

import subprocess
import sys

import numpy as np
import pytest
from fastnn import available_backends
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


def test_demo_command_prints_accuracy_per_backend():
    out = subprocess.run([sys.executable, "-m", "fastnn", "demo", "--epochs", "3"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith(("fastnn", "scikit"))]
    assert len(rows) == len(available_backends()) + 1
    accuracies = [float(r[-2]) for r in rows]
    assert all(0.5 < a <= 1.0 for a in accuracies), out.stdout
    # same initial weights and shuffles as scikit-learn: the same accuracy on every backend
    assert max(accuracies) - min(accuracies) < 1e-9, out.stdout


def test_demo_command_rejects_bad_epochs():
    out = subprocess.run([sys.executable, "-m", "fastnn", "demo", "--epochs", "0"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--epochs must be at least 1" in out.stderr
