"""The engine is pure: it trains from a TrainState, Options and data, without an
estimator, never writes the state it is given, and is exactly what the estimators run."""

import warnings

import numpy as np
import pytest
from conftest import BACKENDS
from sklearn.exceptions import ConvergenceWarning

import fastnn.kernels as fk
from fastnn import MLPRegressor, _engine
from fastnn._backends import get_kernels
from fastnn.kernels import layout

rng = np.random.RandomState(0)
X = rng.normal(size=(90, 4))
y = X @ rng.normal(size=4) + 0.1 * rng.normal(size=90)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
OPTIONS = dict(solver="adam", learning_rate_init=0.01, max_iter=15, batch_size=16,
               tol=0.0, n_iter_no_change=100)


def engine_fit(backend, incremental=False, validation=None, **options):
    """A regressor's fit run on the engine alone: the inputs built by hand."""
    table = layout.dense_table([4, 8, 1], [fk.TANH], 0.0)
    rs = np.random.RandomState(0)
    params = layout.init_params(table, "tanh", rs, np.float64)
    problem = _engine.Problem(get_kernels(backend), table, fk.SQUARED_ERROR, 1.0, 1e-4)
    opts = _engine.Options(**{**OPTIONS, **options})
    state = _engine.TrainState(params, _engine.OptimizerState.new(params.size, np.float64,
                                                                   opts.learning_rate_init))
    Y = np.ascontiguousarray(y.reshape(-1, 1))
    return state, _engine.fit_stochastic(problem, opts, state, X, Y, np.ones(len(X)), rs,
                                         incremental=incremental, validation=validation)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_engine_alone_fits_as_the_estimator(backend):
    """Bit for bit: weights, loss curve, step count, t_ and the stopping rule's state."""
    start, (state, history) = engine_fit(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", alpha=1e-4,
                           backend=backend, random_state=0, **OPTIONS).fit(X, y)
    np.testing.assert_array_equal(state.params, reg._params)
    assert history.loss_curve == reg.loss_curve_ and history.n_iter == reg.n_iter_ == 15
    assert state.t == reg.t_ == 15 * len(X) and state.optimizer.step == reg._optimizer.step
    assert state.best_loss == reg.best_loss_ and history.loss == reg.loss_
    np.testing.assert_array_equal(state.optimizer.moments, reg._optimizer.moments)


def test_the_engine_never_writes_the_state_it_is_given():
    start, _ = engine_fit("numba")
    fresh, _ = engine_fit("numba", max_iter=1)
    np.testing.assert_array_equal(start.params, fresh.params)  # both still the initial draw
    assert start.optimizer.step == 0 and not start.optimizer.moments.any()
    assert start.t == 0 and start.best_loss == np.inf and start.no_improvement_count == 0


def test_the_engine_reads_no_estimator_attribute():
    """_engine imports nothing of the estimators and takes no estimator argument."""
    import inspect
    import re

    source = inspect.getsource(_engine)
    assert "_estimators" not in source and not re.search(r"\b(est|self)\.[a-z_]+_\b", source)
    for name in ("fit_stochastic", "fit_lbfgs"):
        assert "est" not in inspect.signature(getattr(_engine, name)).parameters


def test_early_stopping_on_the_engine_ends_at_the_best_epoch():
    """With a Validation, the returned parameters are the best-scoring epoch's and the
    history holds one score and one validation loss per epoch."""
    Xv = rng.normal(size=(30, 4))
    yv = Xv @ np.ones(4)
    seen = []

    def score(params):  # any function of the parameters: here a made-up curve
        seen.append(params.copy())
        return [0.1, 0.5, 0.3, 0.2, 0.4][len(seen) - 1]

    validation = _engine.Validation(Xv, np.ascontiguousarray(yv.reshape(-1, 1)),
                                    np.ones(30), score)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, (state, history) = engine_fit("numpy", validation=validation, max_iter=5,
                                         n_iter_no_change=10)
    assert history.validation_scores == [0.1, 0.5, 0.3, 0.2, 0.4]
    assert len(history.validation_loss_curve) == 5 and history.n_iter == 5
    assert state.best_validation_score == 0.5
    np.testing.assert_array_equal(state.params, seen[1])
    assert state.no_improvement_count == 3  # epochs 3, 4, 5 did not beat 0.5 + tol


def test_partial_fit_continues_the_optimizer_and_fit_starts_a_new_one():
    """scikit-learn's rule: a warm-start fit makes a new optimizer (moments zero, step
    0, learning_rate_init), partial_fit continues the previous one."""
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling",
                       learning_rate_init=0.05, max_iter=3, batch_size=16, warm_start=True,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
        first = reg._optimizer
        reg.partial_fit(X, y)
        assert reg._optimizer.step == first.step + 6  # 6 batches of 16 in 90 rows
        assert reg._optimizer.learning_rate == pytest.approx(0.05 / (4 * 90 + 1) ** 0.5)
        reg.fit(X, y)
    assert reg._optimizer.step == 3 * 6 and reg.t_ == 7 * 90
    assert reg._optimizer.learning_rate == pytest.approx(0.05 / (7 * 90 + 1) ** 0.5)
