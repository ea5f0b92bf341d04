"""The layer table (fastnn.kernels.layout): offsets, workspace lengths, views of the flat
buffer and the initial weights, checked against hand-computed values."""

import numpy as np
import pytest

import fastnn.kernels as fk
from fastnn.kernels import layout as lt


def test_dense_table_rows_by_hand():
    table = lt.dense_table([4, 3, 2], [fk.TANH])
    assert table.dtype == np.int64 and table.shape == (2, lt.N_COLUMNS)
    assert len(lt.COLUMNS) == lt.N_COLUMNS
    col = {name: table[:, getattr(lt, name)].tolist() for name in lt.COLUMNS}
    assert col["OP"] == [lt.DENSE, lt.DENSE] and col["ACT"] == [fk.TANH, fk.IDENTITY]
    assert col["N_IN"] == col["IN_C"] == [4, 3] and col["N_OUT"] == col["OUT_C"] == [3, 2]
    assert col["IN_H"] == col["IN_W"] == col["OUT_H"] == col["OUT_W"] == [1, 1]
    # [W_0 (4x3) | b_0 (3) | W_1 (3x2) | b_1 (2)]: 12 + 3 + 6 + 2 = 23
    assert col["W_OFF"] == [0, 15] and col["W_LEN"] == [12, 6]
    assert col["B_OFF"] == [12, 21] and col["B_LEN"] == [3, 2]
    assert col["OUT_OFF"] == [0, 3] and lt.n_params(table) == 23


def test_workspace_lengths_by_hand():
    table = lt.dense_table([5, 7, 4, 3], [fk.RELU, fk.TANH])
    rows = 11
    assert lt.forward_workspace_size(table, rows) == rows * (7 + 4)
    assert lt.forward_backward_workspace_size(table, rows) == rows * (1 + 2 * (7 + 4 + 3))
    assert lt.train_workspace_size(table, rows) == rows * (5 + 3 + 1) + rows * (1 + 2 * 14)
    assert lt.width(table) == 7 + 4 + 3
    np.testing.assert_array_equal(lt.hidden_acts(table), [fk.RELU, fk.TANH])


def test_views_share_the_flat_buffer():
    table = lt.dense_table([4, 3, 2], [fk.RELU])
    flat = np.arange(lt.n_params(table), dtype=np.float64)
    coefs, intercepts = lt.unflatten(flat, table)
    assert [c.shape for c in coefs] == [(4, 3), (3, 2)]
    assert [b.shape for b in intercepts] == [(3,), (2,)]
    assert all(np.shares_memory(v, flat) for v in coefs + intercepts)
    assert coefs[1][0, 0] == 15 and intercepts[1][-1] == 22
    coefs[0][...] = -1.0  # a write through a view lands in the buffer
    assert (flat[:12] == -1.0).all() and flat[12] == 12


def test_a_layer_that_does_not_fit_is_named():
    with pytest.raises(ValueError, match="layer 1 .* takes 5 inputs, but layer 0 gives 4"):
        lt.build_table([lt.Dense(3, 4, fk.RELU), lt.Dense(5, 2, fk.IDENTITY)])
    with pytest.raises(ValueError, match="layer 0 .*at least 1"):
        lt.dense_table([3, 0, 1], [fk.RELU])
    with pytest.raises(ValueError, match="2 hidden layers need as many activations"):
        lt.dense_table([3, 4, 4, 1], [fk.RELU])


def test_init_draws_like_scikit_learn():
    """Glorot bounds per layer, drawn weights then biases, layer by layer; the same
    numbers as scikit-learn's MLP from the same seed."""
    from sklearn.neural_network import MLPRegressor

    sizes = [5, 4, 3]
    table = lt.dense_table(sizes, [fk.RELU])
    flat = lt.init_params(table, "relu", np.random.RandomState(3), np.float32)
    assert flat.dtype == np.float32
    rs = np.random.RandomState(3)
    expected = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        expected += [rs.uniform(-bound, bound, (fan_in, fan_out)).ravel(),
                     rs.uniform(-bound, bound, fan_out)]
    np.testing.assert_allclose(flat, np.concatenate(expected).astype(np.float32))
    logistic = lt.init_params(table, "logistic", np.random.RandomState(3), np.float64)
    assert np.abs(logistic[:20]).max() <= np.sqrt(2.0 / 9)

    sk = MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=3)
    sk._random_state = np.random.RandomState(3)
    sk._initialize(np.zeros((1, 3)), [5, 4, 3], np.float64)
    ours = lt.unflatten(lt.init_params(table, "relu", np.random.RandomState(3), np.float64),
                        table)
    for a, b in zip(ours[0] + ours[1], sk.coefs_ + sk.intercepts_):
        np.testing.assert_array_equal(a, b)
