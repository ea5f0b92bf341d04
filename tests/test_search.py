"""MLPRegressorCV / MLPClassifierCV: the batched grid equals GridSearchCV over the MLP.

Every (candidate, fold) is trained in one batched call, bit for bit the fit GridSearchCV
makes, so the fold scores are GridSearchCV's exactly (asserted to 1e-12), and so are the
ranks, the best parameters and the refit model's predictions.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastnn import MLPClassifier, MLPClassifierCV, MLPRegressor, MLPRegressorCV

from conftest import BACKENDS


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _regression(n=150, seed=0, counts=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    if counts:
        return X, rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    return X, X @ [1.0, -2.0, 0.5] + rng.standard_t(2, n)


def _classification(n=150, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    if classes == 3:
        y = y + (X[:, 2] > 0.8)
    return X, y


def _assert_equal_search(cv, gs):
    n = len(gs.cv_results_["params"])
    assert cv.cv_results_["params"] == gs.cv_results_["params"]
    for f in range(cv.n_splits_):
        key = f"split{f}_test_score"
        np.testing.assert_allclose(cv.cv_results_[key], gs.cv_results_[key], rtol=1e-12,
                                   atol=1e-12, err_msg=key)
    np.testing.assert_allclose(cv.cv_results_["mean_test_score"],
                               gs.cv_results_["mean_test_score"], rtol=1e-12)
    np.testing.assert_array_equal(cv.cv_results_["rank_test_score"],
                                  gs.cv_results_["rank_test_score"])
    assert cv.best_params_ == gs.best_params_ and cv.best_index_ == gs.best_index_
    assert cv.best_score_ == pytest.approx(gs.best_score_, rel=1e-12)
    assert len(cv.cv_results_["mean_fit_time"]) == n


FAST = dict(hidden_layer_sizes=(8,), max_iter=15, random_state=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss, grid", [
    ("squared_error", {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 1e-2]}),
    ("absolute_error", {"random_state": [0, 1, 2]}),
    ("huber", {"delta": [0.1, 1.0, 10.0]}),
    ("quantile", {"quantile": [0.2, 0.8]}),
    ("poisson", {"alpha": [1e-4, 1e-2], "batch_size": [16, 50]}),
])
def test_regressor_equals_grid_search(backend, loss, grid):
    X, y = _regression(counts=loss == "poisson")
    kw = dict(FAST, loss=loss, backend=backend)
    cv = MLPRegressorCV(grid, cv=3, **kw).fit(X, y)
    gs = GridSearchCV(MLPRegressor(**kw), grid, cv=3).fit(X, y)
    _assert_equal_search(cv, gs)
    np.testing.assert_array_equal(cv.predict(X), gs.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "rmsprop"])
def test_regressor_with_early_stopping_weights_and_a_schedule(solver):
    """Each model's own validation split, stopping rule and learning-rate schedule;
    sample weights reach each fold's fit; the scorer of the folds is early stopping's."""
    X, y = _regression(n=200)
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(y))
    grid = {"tol": [1e-2, 1e-4], "n_iter_no_change": [2, 5], "random_state": [3, 4]}
    kw = dict(FAST, max_iter=40, solver=solver, early_stopping=True, learning_rate="adaptive",
              scoring="neg_mean_absolute_error", loss="huber", validation_fraction=0.2)
    cv = MLPRegressorCV(grid, cv=4, **kw).fit(X, y, sample_weight=w)
    gs = GridSearchCV(MLPRegressor(**kw), grid, cv=4, scoring="neg_mean_absolute_error")
    gs.fit(X, y, sample_weight=w)
    _assert_equal_search(cv, gs)
    assert len(set(cv.cv_results_["split0_test_score"])) > 1  # the candidates differ


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("classes, extra", [
    (2, {}), (3, {}), (3, dict(class_weight="balanced", early_stopping=True)),
])
def test_classifier_equals_grid_search(backend, classes, extra):
    X, y = _classification(classes=classes)
    grid = {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 3e-2]}
    kw = dict(FAST, backend=backend, **extra)
    cv = MLPClassifierCV(grid, cv=3, **kw).fit(X, y)
    gs = GridSearchCV(MLPClassifier(**kw), grid, cv=3).fit(X, y)
    _assert_equal_search(cv, gs)
    np.testing.assert_array_equal(cv.classes_, np.unique(y))
    np.testing.assert_array_equal(cv.predict_proba(X), gs.predict_proba(X))


@pytest.mark.parametrize("task, scoring", [
    ("binary", "neg_log_loss"), ("multiclass", "neg_log_loss"), ("multiclass", None),
    ("multiclass", "balanced_accuracy"), ("poisson", "neg_mean_poisson_deviance"),
    ("multioutput", "r2"), ("float32", None),
])
def test_held_out_outputs_of_one_call_score_exactly_as_each_predict(task, scoring):
    """The folds' held-out outputs come from one forward_many call; every scorer (through
    predict, predict_proba or score) gives GridSearchCV's fold scores exactly (on the
    default backend: each backend's forward_many is forward's bits, test_train_many.py,
    and test_regressor_equals_grid_search scores every backend)."""
    if task in ("binary", "multiclass"):
        X, y = _classification(classes=2 if task == "binary" else 3)
        est, search = MLPClassifier, MLPClassifierCV
    else:
        X, y = _regression(counts=task == "poisson")
        if task == "multioutput":
            y = np.column_stack([y, -y])
        if task == "float32":
            X = X.astype(np.float32)
        est, search = MLPRegressor, MLPRegressorCV
    kw = dict(FAST, **({"loss": "poisson"} if task == "poisson" else {}))
    grid = {"alpha": [1e-4, 1e-1], "random_state": [0, 1]}
    cv = search(grid, cv=3, scoring=scoring, refit=False, **kw).fit(X, y)
    gs = GridSearchCV(est(**kw), grid, cv=3, scoring=scoring, refit=False).fit(X, y)
    for f in range(3):
        key = f"split{f}_test_score"
        np.testing.assert_array_equal(cv.cv_results_[key], gs.cv_results_[key], err_msg=key)


def test_held_out_outputs_answer_as_the_model_itself():
    """_HeldOut's predict, predict_proba, predict_log_proba and score on the held-out rows
    are the fitted model's own, exactly; other rows are refused."""
    from fastnn._search import _held_out

    X, y = _classification(classes=3)
    est = MLPClassifier(**FAST).fit(X[:100], y[:100])
    test = np.arange(100, 150)
    held = _held_out([(0, 0, est, test)], X)[0, 0]
    for method in ("predict", "predict_proba", "predict_log_proba"):
        np.testing.assert_array_equal(getattr(held, method)(X[test]),
                                      getattr(est, method)(X[test]), err_msg=method)
    assert held.score(X[test], y[test]) == est.score(X[test], y[test])
    with pytest.raises(ValueError, match="50 held-out rows"):
        held.predict(X[:10])


def test_held_out_outputs_in_chunks_of_rows_are_the_same(monkeypatch):
    """_engine.forward_many in many chunks of rows (a workspace too small for one) gives
    every model forward's outputs on its rows, exactly."""
    from fastnn import _engine, _backends

    X, y = _regression()
    grid = {"alpha": [1e-4, 1e-1]}
    cv = MLPRegressorCV(grid, cv=3, refit=False, **FAST).fit(X, y)
    gs = GridSearchCV(MLPRegressor(**FAST), grid, cv=3, refit=False).fit(X, y)
    monkeypatch.setattr(_engine, "MANY_WORK", 7 * 3 * 12)  # 7 rows per chunk
    est = MLPRegressor(**FAST).fit(X, y)
    rows = [np.arange(0, 150, 2), np.arange(149, -1, -3), np.arange(0)]
    params = np.array([est._pack()] * 3)
    raws = _engine.forward_many(_backends.get_kernels(est.backend_), est._table, params, X,
                                rows)
    assert raws[2].shape == (0, 1)
    for r, raw in zip(rows[:2], raws):
        np.testing.assert_array_equal(raw.ravel(), est.predict(X[r]))
    cv_small = MLPRegressorCV(grid, cv=3, refit=False, **FAST).fit(X, y)
    for f in range(3):
        key = f"split{f}_test_score"
        np.testing.assert_array_equal(cv_small.cv_results_[key], cv.cv_results_[key])
        np.testing.assert_array_equal(cv.cv_results_[key], gs.cv_results_[key])


def test_groups_reach_the_splitter_and_a_splitter_object_works():
    X, y = _regression()
    groups = np.arange(len(y)) % 5
    grid = {"delta": [0.5, 2.0]}
    kw = dict(FAST, loss="huber")
    cv = MLPRegressorCV(grid, cv=GroupKFold(5), **kw).fit(X, y, groups=groups)
    gs = GridSearchCV(MLPRegressor(**kw), grid, cv=GroupKFold(5)).fit(X, y, groups=groups)
    _assert_equal_search(cv, gs)
    splitter = KFold(4, shuffle=True, random_state=0)
    cv = MLPRegressorCV(grid, cv=splitter, **kw).fit(X, y)
    gs = GridSearchCV(MLPRegressor(**kw), grid, cv=splitter).fit(X, y)
    _assert_equal_search(cv, gs)


def test_a_diverging_candidate_scores_nan_as_in_grid_search():
    X, y = _regression()
    grid = {"learning_rate_init": [1e-3, 1e150]}
    kw = dict(FAST, solver="sgd", momentum=0.0)
    cv = MLPRegressorCV(grid, cv=3, refit=False, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        gs = GridSearchCV(MLPRegressor(**kw), grid, cv=3, refit=False).fit(X, y)
    np.testing.assert_array_equal(np.isnan(cv.cv_results_["mean_test_score"]),
                                  np.isnan(gs.cv_results_["mean_test_score"]))
    assert np.isnan(cv.cv_results_["mean_test_score"][1])
    with pytest.raises(ValueError, match="non-finite"):
        MLPRegressorCV(grid, cv=3, error_score="raise", **kw).fit(X, y)


def test_in_a_pipeline_in_a_grid_search_over_the_network_cloned_and_pickled():
    X, y = _regression()
    inner = MLPRegressorCV({"delta": [0.5, 2.0]}, loss="huber", cv=3, **FAST)
    pipe = make_pipeline(StandardScaler(), inner)
    outer = GridSearchCV(pipe, {"mlpregressorcv__hidden_layer_sizes": [(4,), (8,)]}, cv=2)
    outer.fit(X, y)
    assert outer.best_params_["mlpregressorcv__hidden_layer_sizes"] in [(4,), (8,)]
    fitted = outer.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    params = inner.get_params()
    assert params["param_grid"] == {"delta": [0.5, 2.0]} and params["delta"] == 1.0
    assert "hidden_layer_sizes" in params and params["cv"] == 3


@pytest.mark.parametrize("grid, match", [
    ({"hidden_layer_sizes": [(4,), (8,)]}, "'hidden_layer_sizes'.*network"),
    ({"activation": ["relu", "tanh"]}, "'activation'"),
    ({"solver": ["adam", "sgd"]}, "'solver'.*compiled call"),
    ({"loss": ["huber", "squared_error"]}, "'loss'"),
    ({"deltaa": [1.0]}, "'deltaa'.*not a parameter of MLPRegressor"),
    ({"delta": []}, "non-empty"),
    ({"delta": 1.0}, "non-empty"),
    ([], "no candidate"),
    ("delta", "must be a dict"),
])
def test_bad_grids_are_named(grid, match):
    X, y = _regression(n=40)
    with pytest.raises(ValueError, match=match):
        MLPRegressorCV(grid, loss="huber", cv=2, **FAST).fit(X, y)


def test_a_fold_without_a_class_is_an_error_naming_it():
    X, y = _classification(n=60, classes=3)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]  # unshuffled KFold: a fold's training rows lack a class
    missing = int(y[-1])
    pattern = rf"fold \d's training rows lack the classes \[{missing}\]"
    with pytest.raises(ValueError, match=pattern):
        MLPClassifierCV({"alpha": [1e-4]}, cv=KFold(3), **FAST).fit(X, y)


def test_lbfgs_and_bad_parameters_are_refused():
    X, y = _regression(n=40)
    with pytest.raises(ValueError, match="stochastic solver"):
        MLPRegressorCV({"alpha": [1e-4]}, solver="lbfgs", cv=2).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        MLPRegressorCV({"delta": [1.0]}, alpha=-1.0, cv=2).fit(X, y)
    with pytest.raises(TypeError, match="unexpected keyword"):
        MLPRegressorCV(param_grid={}, not_a_parameter=3)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.values[0] != "numpy"])
def test_models_on_one_or_two_threads_give_the_same_search(backend):
    """The models one after another (n_jobs=1) or on two threads: Cython's OpenMP
    threads, or (Numba) two groups of models in Python threads."""
    X, y = _regression()
    grid = {"delta": [0.3, 3.0], "random_state": [0, 1]}
    kw = dict(FAST, loss="huber", backend=backend)
    fits = []
    for n_jobs in (1, 2):
        fits.append(MLPRegressorCV(grid, cv=3, n_jobs=n_jobs, **kw).fit(X, y))
    for f in range(3):
        key = f"split{f}_test_score"
        np.testing.assert_array_equal(fits[0].cv_results_[key], fits[1].cv_results_[key])
