"""The flat parameter buffer and its initialisation (the demo's tests are in test_cli.py)."""

import numpy as np
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

