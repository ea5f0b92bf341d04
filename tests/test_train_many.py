"""train_epoch_many: K models of one table in one call, each bit for bit its own fit.

The contract (kernels/reference.py): model k's parameters, optimizer state, step count
and loss sums after a train_epoch_many call are exactly those of train_epoch on model k's
own arguments, on the same backend; inactive models are untouched. Checked here with
models that differ in every per-model argument (rows, counts, weights, learning rate,
loss parameter, alpha, dropout seed, starting step), on dense tables (with dropout) and
conv tables, with each optimizer, and with one model whose loss becomes non-finite.
"""

import numpy as np
import pytest

import fastnn.kernels as fk
from fastnn.kernels import layout
from fastnn.kernels import reference as ref

OPTIMIZERS = [fk.SGD, fk.SGD_NESTEROV, fk.ADAM, fk.RMSPROP]


def _dense_table():
    return layout.dense_table([5, 7, 6, 2], [fk.TANH, fk.RELU], 0.01, dropout=[0.0, 0.3])


def _conv_table():
    return layout.build_table([
        layout.Conv2d((2, 6, 6), 3, (3, 3), (1, 1), (1, 1), fk.RELU),
        layout.MaxPool2d((3, 6, 6), (2, 2), (2, 2)),
        layout.Dense(27, 2, fk.IDENTITY),
    ])


def _models(table, K, n, m, B, dtype, rng, optimizer):
    """Arguments of a train_epoch_many call whose K models differ in everything."""
    P = layout.n_params(table)
    X = rng.normal(size=(n, int(table[0, layout.N_IN]))).astype(dtype)
    Y = rng.normal(size=(n, int(table[-1, layout.N_OUT]))).astype(dtype)
    sample_weight = rng.uniform(0.2, 2.0, (K, n)).astype(dtype)
    perm = np.zeros((K, m), np.int64)
    counts = rng.integers(m // 2, m + 1, K).astype(np.int64)
    for k in range(K):
        perm[k] = rng.choice(n, m, replace=False)
    config = np.zeros((K, fk.N_CONFIG))
    config[:, fk.LR] = rng.uniform(1e-3, 5e-2, K)
    config[:, fk.MOMENTUM] = rng.uniform(0.5, 0.9, K)
    config[:, fk.BETA1], config[:, fk.BETA2], config[:, fk.EPSILON] = 0.9, 0.999, 1e-8
    rows = 1 if optimizer in (fk.SGD, fk.SGD_NESTEROV) else 2
    return dict(
        X=X, Y=Y, sample_weight=sample_weight, perm=perm, counts=counts,
        batch_size=np.array([B, B - 3, B, B + 2, 1][:K], np.int64),  # "auto" differs by fold
        params=rng.normal(scale=0.4, size=(K, P)).astype(dtype), table=table,
        loss=fk.HUBER, loss_param=rng.uniform(0.2, 2.0, K), alpha=rng.uniform(0, 1e-2, K),
        optimizer=optimizer, config=config,
        state=rng.uniform(0, 0.1, (K, rows, P)).astype(dtype),
        step=rng.integers(0, 5, K).astype(np.int64),
        grads=np.zeros((K, P), dtype),
        work=np.zeros((K, layout.train_workspace_size(table, B + 2)), dtype),
        sums=rng.uniform(0, 1, (K, 2)), seed=rng.integers(0, 2**40, K).astype(np.int64),
        active=np.ones(K, np.int64), nonfinite_out=np.full(K, 7, np.int64))


def _alone(kernels, a, k):
    """Model k trained by train_epoch alone: (params, state, step, sums, nonfinite)."""
    params, state = a["params"][k].copy(), a["state"][k].copy()
    grads = np.zeros_like(params)
    work = np.zeros(a["work"].shape[1], params.dtype)
    loss_sum, penalty_sum, step, nonfinite = kernels.train_epoch(
        a["X"], a["Y"], np.ascontiguousarray(a["sample_weight"][k]),
        np.ascontiguousarray(a["perm"][k, :a["counts"][k]]), int(a["batch_size"][k]), params,
        a["table"], a["loss"], float(a["loss_param"][k]), float(a["alpha"][k]),
        a["optimizer"], np.ascontiguousarray(a["config"][k]), state, int(a["step"][k]),
        grads, work, float(a["sums"][k, 0]), float(a["sums"][k, 1]), int(a["seed"][k]))
    return params, state, step, (loss_sum, penalty_sum), nonfinite


def _check_each_model_as_alone(kernels, a):
    K = a["params"].shape[0]
    alone = [_alone(kernels, a, k) for k in range(K)]
    before = {name: a[name].copy() for name in ("params", "state", "step", "sums")}
    kernels.train_epoch_many(**a)
    for k in range(K):
        if not a["active"][k]:
            for name, value in before.items():
                np.testing.assert_array_equal(a[name][k], value[k], err_msg=f"{name}[{k}]")
            assert a["nonfinite_out"][k] == 0
            continue
        params, state, step, sums, nonfinite = alone[k]
        np.testing.assert_array_equal(a["params"][k], params, err_msg=f"params[{k}]")
        np.testing.assert_array_equal(a["state"][k], state, err_msg=f"state[{k}]")
        assert a["step"][k] == step and tuple(a["sums"][k]) == sums, k
        assert a["nonfinite_out"][k] == nonfinite, k
    return alone


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=["sgd", "nesterov", "adam", "rmsprop"])
@pytest.mark.parametrize("table", [_dense_table, _conv_table], ids=["dense", "conv"])
def test_each_model_is_bit_identical_to_its_own_epoch(kernels, dtype, rng, table, optimizer):
    a = _models(table(), 5, 40, 30, 8, dtype, rng, optimizer)
    a["active"][3] = 0  # leaves the batch: untouched
    a["counts"][1] = 0  # no rows this call: trains nothing
    start = a["step"].copy()
    _check_each_model_as_alone(kernels, a)
    assert (a["step"] > start).tolist() == [True, False, True, False, True]


def test_a_diverging_model_stops_alone(kernels, rng):
    a = _models(_dense_table(), 4, 40, 30, 8, np.float64, rng, fk.SGD)
    a["config"][2, fk.LR] = 1e200  # model 2's weights, then its loss, overflow
    _check_each_model_as_alone(kernels, a)
    assert a["nonfinite_out"].tolist() == [0, 0, 1, 0]


def test_many_models_on_every_backend_agree_with_the_reference(kernels, dtype, tolerance, rng):
    """Across backends only to the tolerance table (the GEMMs sum in their own order)."""
    a = _models(_dense_table(), 3, 30, 24, 6, dtype, rng, fk.ADAM)
    b = {name: value.copy() if isinstance(value, np.ndarray) else value
         for name, value in a.items()}
    kernels.train_epoch_many(**a)
    ref.train_epoch_many(**b)
    tol = tolerance[np.dtype(dtype)]
    np.testing.assert_allclose(a["params"], b["params"], rtol=tol["rtol"] * 100,
                               atol=tol["atol"] * 100)
    np.testing.assert_array_equal(a["step"], b["step"])


@pytest.mark.parametrize("change, match", [
    (dict(alpha=np.zeros(4)), "alpha"),
    (dict(batch_size=np.array([8, 8, 0, 8, 8], np.int64)), "batch_size"),
    (dict(sample_weight=np.ones((5, 39))), "sample_weight"),
    (dict(counts=np.array([1, 2, 31, 0, 0], np.int64)), "counts"),
    (dict(seed=np.array([0, -1, 0, 0, 0], np.int64)), "seed"),
    (dict(sums=np.zeros((5, 3))), "sums"),
    (dict(state=np.zeros((5, 2, 3))), "state"),
])
def test_bad_per_model_arguments_are_named(kernels, rng, change, match):
    a = _models(_dense_table(), 5, 40, 30, 8, np.float64, rng, fk.ADAM)
    a.update(change)
    with pytest.raises(ValueError, match=match):
        kernels.train_epoch_many(**a)


def test_a_perm_index_outside_the_rows_is_refused(kernels, rng):
    a = _models(_dense_table(), 3, 40, 30, 8, np.float64, rng, fk.ADAM)
    a["perm"][2, 0] = 40
    a["counts"][2] = 30
    before = a["params"].copy()
    with pytest.raises(ValueError, match="perm|index"):
        kernels.train_epoch_many(**a)
    np.testing.assert_array_equal(a["params"], before)  # checked before any model trains


# --------------------------------------------------------------------------- forward_many


def _forward_args(table, K, n, m, dtype, rng):
    P = layout.n_params(table)
    perm = np.array([rng.choice(n, m, replace=False) for _ in range(K)], np.int64)
    counts = np.array([m, m // 2, 0, 1, m - 1][:K], np.int64)
    return dict(X=rng.normal(size=(n, int(table[0, layout.N_IN]))).astype(dtype), perm=perm,
                counts=counts, params=rng.normal(scale=0.4, size=(K, P)).astype(dtype),
                table=table,
                work=np.zeros((K, layout.forward_many_workspace_size(table, m)), dtype),
                raw_out=np.full((K, m, int(table[-1, layout.N_OUT])), -7.0, dtype))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("table", [_dense_table, _conv_table], ids=["dense", "conv"])
def test_forward_many_gives_each_model_its_own_forward(kernels, dtype, rng, table, threads):
    """Model k's outputs are forward's on its rows alone, bit for bit, on 1 and 2 threads
    (Cython spreads the models over its OpenMP threads); rows past counts[k] untouched."""
    from threadpoolctl import threadpool_limits

    a = _forward_args(table(), 5, 40, 16, dtype, rng)
    with threadpool_limits(threads, user_api="openmp"):
        kernels.forward_many(**a)
    for k in range(5):
        c = int(a["counts"][k])
        X = np.ascontiguousarray(a["X"][a["perm"][k, :c]])
        alone = np.empty((c, a["raw_out"].shape[2]), dtype)
        kernels.forward(X, a["params"][k], a["table"],
                        np.empty(layout.forward_workspace_size(a["table"], c), dtype), alone)
        np.testing.assert_array_equal(a["raw_out"][k, :c], alone, err_msg=f"model {k}")
        assert (a["raw_out"][k, c:] == -7.0).all(), k


def test_forward_many_agrees_with_the_reference(kernels, dtype, tolerance, rng):
    a = _forward_args(_dense_table(), 4, 30, 12, dtype, rng)
    b = {name: value.copy() if isinstance(value, np.ndarray) else value
         for name, value in a.items()}
    kernels.forward_many(**a)
    ref.forward_many(**b)
    tol = tolerance[np.dtype(dtype)]
    np.testing.assert_allclose(a["raw_out"], b["raw_out"], rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize("change, match", [
    (dict(counts=np.array([1, 2, 17, 0, 0], np.int64)), "counts"),
    (dict(counts=np.array([1, 2, -1, 0, 0], np.int64)), "counts"),
    (dict(raw_out=np.zeros((5, 15, 2))), "raw_out"),
    (dict(raw_out=np.zeros((4, 16, 2))), "raw_out"),
    (dict(work=np.zeros((5, 10))), "work"),
    (dict(perm=np.zeros((4, 16), np.int64)), "perm"),
])
def test_forward_many_bad_arguments_are_named(kernels, rng, change, match):
    a = _forward_args(_dense_table(), 5, 40, 16, np.float64, rng)
    a.update(change)
    with pytest.raises(ValueError, match=match):
        kernels.forward_many(**a)


def test_forward_many_refuses_a_perm_index_outside_the_rows(kernels, rng):
    a = _forward_args(_dense_table(), 3, 40, 16, np.float64, rng)
    a["perm"][2, 0] = 40
    a["counts"][2] = 16
    with pytest.raises(ValueError, match="perm|index"):
        kernels.forward_many(**a)
    assert (a["raw_out"] == -7.0).all()  # checked before any model runs
