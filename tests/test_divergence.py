"""A fit whose loss becomes non-finite raises scikit-learn's ValueError, for every solver,
and leaves a fitted model exactly as it was (fit, warm-start refit and partial_fit).

scikit-learn 1.9 raises "Solver produced non-finite parameter weights..." when the
weights end non-finite: a stochastic fit that diverges (its NaN weights stay NaN to the
end), never an L-BFGS fit that scipy stops at finite weights, never an early-stopping fit
(it restores the best validation epoch's weights). The tests compare fastnn's decision
with scikit-learn's on the same data.
"""

import warnings

import numpy as np
import pytest
import sklearn.neural_network as skl
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning

import fastnn
from test_bad_input import assert_unchanged, snapshot

MESSAGE = ("Solver produced non-finite parameter weights. The input data may contain "
           "large values and need to be preprocessed.")

rng = np.random.RandomState(0)
X_FMAX = np.finfo(np.float64).max * rng.uniform(size=(10, 2))  # test_nonfinite_params' data
Y_FMAX = rng.standard_normal(size=10)
X_REG, Y_REG = make_regression(500, 10, noise=10, random_state=0)
X_REG, Y_REG = X_REG * 10, Y_REG * 10  # unscaled: sgd diverges with relu, not with tanh

# (case, X, y, parameters): scikit-learn raises on some and not on others
CASES = [
    ("fmax X, adam", X_FMAX, Y_FMAX, dict(solver="adam")),
    ("fmax X, sgd", X_FMAX, Y_FMAX, dict(solver="sgd")),
    ("fmax X, lbfgs", X_FMAX, Y_FMAX, dict(solver="lbfgs")),
    ("sgd lr=10 relu", X_REG, Y_REG, dict(solver="sgd", learning_rate_init=10)),
    ("sgd lr=0.01 identity", X_REG, Y_REG, dict(solver="sgd", learning_rate_init=0.01,
                                                activation="identity")),
    ("sgd lr=0.1 tanh", X_REG, Y_REG, dict(solver="sgd", learning_rate_init=0.1,
                                           activation="tanh")),
    ("adam lr=100 relu", X_REG, Y_REG, dict(solver="adam", learning_rate_init=100)),
]


def raises(Estimator, X, y, **params):
    est = Estimator(max_iter=30, random_state=0, n_iter_no_change=100, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow RuntimeWarnings, ConvergenceWarnings
        try:
            est.fit(X, y)
        except ValueError as exc:
            assert str(exc) == MESSAGE
            return True
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
    return False


@pytest.mark.parametrize("backend", ["cython", "numba", "numpy"])
@pytest.mark.parametrize("case,X,y,params", CASES, ids=[c[0] for c in CASES])
def test_raises_exactly_when_scikit_learn_raises(case, X, y, params, backend):
    expected = raises(skl.MLPRegressor, X, y, **params)
    assert raises(fastnn.MLPRegressor, X, y, backend=backend, **params) == expected


def test_the_cases_cover_both_outcomes():
    outcomes = {raises(skl.MLPRegressor, X, y, **params) for _, X, y, params in CASES}
    assert outcomes == {True, False}


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
def test_scikit_learns_nonfinite_params_test_passes(solver):
    """scikit-learn's test_nonfinite_params, with every stochastic solver (rmsprop is
    fastnn's)."""
    with pytest.raises(ValueError, match=MESSAGE):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fastnn.MLPRegressor(solver=solver).fit(X_FMAX, Y_FMAX)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_classifier_raises_exactly_when_scikit_learn_raises(solver):
    y = np.arange(10) % 3
    outcome = {}
    for name, module in (("sklearn", skl), ("fastnn", fastnn)):
        clf = module.MLPClassifier(solver=solver, max_iter=10, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                clf.fit(X_FMAX, y)
                outcome[name] = "fitted"
            except ValueError as exc:
                outcome[name] = str(exc)
    assert outcome["fastnn"] == outcome["sklearn"]
    if solver != "lbfgs":
        assert outcome["fastnn"] == MESSAGE


def test_early_stopping_without_one_finite_epoch_raises_where_scikit_learn_returns_init():
    """The one documented difference: every epoch's validation score is NaN, so
    scikit-learn "restores" its untrained initial weights and returns them as fitted;
    fastnn raises the same error as without early stopping."""
    X, y = np.vstack([X_FMAX] * 3), np.hstack([Y_FMAX] * 3)
    sk = skl.MLPRegressor(max_iter=5, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X, y)
    assert np.isnan(sk.validation_scores_).all()
    assert raises(fastnn.MLPRegressor, X, y, early_stopping=True)


@pytest.mark.parametrize("how", ["fit", "warm_start refit", "partial_fit"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
def test_a_diverging_fit_leaves_the_fitted_model_exactly_as_it_was(solver, how):
    """Fitted on well-scaled data (test_bad_input's X, y), then fitted again on data that
    makes the solver diverge. (L-BFGS never raises here: scipy stops it at finite
    weights, as scikit-learn's; the parity tests above cover it.)"""
    from test_bad_input import X, y_reg

    reg = fastnn.MLPRegressor(hidden_layer_sizes=(5,), solver=solver, max_iter=20,
                              random_state=0, warm_start=how == "warm_start refit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y_reg)
    before = snapshot(reg)
    X_bad = np.full_like(X, np.finfo(np.float64).max)  # non-finite from the first batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=MESSAGE):
            getattr(reg, "partial_fit" if how == "partial_fit" else "fit")(X_bad, y_reg)
    assert_unchanged(before, snapshot(reg))


def test_a_search_scores_diverging_fits_nan_with_fit_failed_warning_as_scikit_learn():
    from sklearn.model_selection import GridSearchCV

    scores = {}
    for name, module in (("sklearn", skl), ("fastnn", fastnn)):
        search = GridSearchCV(
            module.MLPRegressor(solver="sgd", max_iter=30, random_state=0),
            {"learning_rate_init": [1e-4, 10.0]}, cv=3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            search.fit(X_REG / 10, Y_REG / 10)
        assert any(issubclass(w.category, FitFailedWarning) for w in caught), name
        scores[name] = search.cv_results_["mean_test_score"]
    assert np.isnan(scores["sklearn"][1]) and np.isnan(scores["fastnn"][1])
    assert np.isfinite(scores["sklearn"][0]) and np.isfinite(scores["fastnn"][0])


def test_early_stopping_keeps_the_best_epoch_when_a_later_one_diverges():
    """Epoch 1 is the best, epoch 6 overflows: like scikit-learn, the best validation
    epoch's weights are kept, the same weights as scikit-learn's (which trains on in NaN
    to max_iter), with a ConvergenceWarning saying so."""
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, -1.0, 2.0, 0.5])
    params = dict(hidden_layer_sizes=(8,), activation="identity", solver="sgd",
                  learning_rate_init=0.2, early_stopping=True, max_iter=50,
                  n_iter_no_change=1000, random_state=0)
    sk = skl.MLPRegressor(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X, y)
    reg = fastnn.MLPRegressor(**params)
    with pytest.warns(ConvergenceWarning, match="diverged in epoch 6.*best validation epoch"):
        reg.fit(X, y)
    assert reg.n_iter_ == 5 and reg.best_validation_score_ == pytest.approx(
        sk.best_validation_score_, rel=1e-12)
    for ours, theirs in zip(reg.coefs_ + reg.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert np.isfinite(reg.predict(X)).all()
