"""A validation set of the user's own (fit's X_val, y_val, sample_weight_val) and what
early stopping watches on it (``scoring``: None, "loss", a scorer), as scikit-learn's
HistGradientBoosting does; through a Pipeline by metadata routing."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from conftest import BACKENDS
from fastnn import MLPClassifier, MLPRegressor


def quiet(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def regression(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.3 * rng.normal(size=n)


def classification(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.8)


def small(Estimator, **kw):
    return Estimator(hidden_layer_sizes=(16,), early_stopping=True, max_iter=60,
                     n_iter_no_change=8, random_state=0, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_kept_weights_score_best_on_the_given_rows(backend):
    """scoring=None (R^2), "loss" and a scorer: the weights that end the fit are the best
    epoch's on X_val, and their score recomputed from predict is best_validation_score_."""
    X, y = regression(400, 0)
    X_val, y_val = regression(150, 1)
    default = quiet(small(MLPRegressor, backend=backend).fit, X, y, X_val=X_val, y_val=y_val)
    assert default.best_validation_score_ == max(default.validation_scores_)
    assert default.best_validation_score_ == pytest.approx(
        r2_score(y_val, default.predict(X_val)), rel=1e-12)
    # the loss: validation_scores_ is minus validation_loss_curve_, and the kept weights'
    # half squared error on X_val is its minimum
    by_loss = quiet(small(MLPRegressor, scoring="loss", backend=backend).fit, X, y,
                    X_val=X_val, y_val=y_val)
    assert by_loss.validation_scores_ == [-v for v in by_loss.validation_loss_curve_]
    kept = np.mean(0.5 * (by_loss.predict(X_val) - y_val) ** 2)
    assert min(by_loss.validation_loss_curve_) == pytest.approx(kept, rel=1e-12)
    mae = quiet(small(MLPRegressor, scoring="neg_mean_absolute_error", backend=backend).fit,
                X, y, X_val=X_val, y_val=y_val)
    assert mae.best_validation_score_ == pytest.approx(
        -mean_absolute_error(y_val, mae.predict(X_val)), rel=1e-12)
    # both curves are recorded whatever is watched
    for est in (default, by_loss, mae):
        assert len(est.validation_loss_curve_) == len(est.validation_scores_) == est.n_iter_


def test_a_callable_scorer_and_a_classifier():
    X, y = classification(400, 0)
    X_val, y_val = classification(200, 1)
    calls = []

    def scorer(estimator, X_, y_, sample_weight=None):
        calls.append(len(y_))
        return accuracy_score(y_, estimator.predict(X_), sample_weight=sample_weight)

    clf = quiet(small(MLPClassifier, scoring=scorer).fit, X, y, X_val=X_val, y_val=y_val)
    assert calls == [200] * clf.n_iter_
    assert clf.best_validation_score_ == accuracy_score(y_val, clf.predict(X_val))


def test_a_class_missing_from_y_val_is_fine():
    X, y = classification(300, 0)
    X_val, y_val = classification(100, 1)
    keep = y_val != 2
    clf = quiet(small(MLPClassifier).fit, X, y, X_val=X_val[keep], y_val=y_val[keep])
    assert list(clf.classes_) == [0, 1, 2]
    assert clf.best_validation_score_ == accuracy_score(y_val[keep], clf.predict(X_val[keep]))


def test_sample_weight_val_zero_is_leaving_the_row_out():
    X, y = regression(300, 0)
    X_val, y_val = regression(120, 1)
    w = np.where(np.arange(120) % 2 == 0, 1.0, 0.0)
    weighted = quiet(small(MLPRegressor, scoring="loss").fit, X, y, X_val=X_val, y_val=y_val,
                     sample_weight_val=w)
    dropped = quiet(small(MLPRegressor, scoring="loss").fit, X, y, X_val=X_val[::2],
                    y_val=y_val[::2])
    assert weighted.n_iter_ == dropped.n_iter_
    np.testing.assert_allclose(weighted.validation_loss_curve_, dropped.validation_loss_curve_,
                               rtol=1e-12)
    np.testing.assert_array_equal(weighted.predict(X_val), dropped.predict(X_val))


@pytest.mark.parametrize("kwargs, fit_kwargs, match", [
    (dict(), dict(X_val=True, y_val=True), "need early_stopping=True"),
    (dict(early_stopping=True, solver="lbfgs"), dict(X_val=True, y_val=True), "solver='lbfgs'"),
    (dict(early_stopping=True), dict(X_val=True), "go together"),
    (dict(early_stopping=True), dict(y_val=True), "go together"),
    (dict(early_stopping=True), dict(sample_weight_val=True), "without X_val"),
    (dict(early_stopping=True), dict(X_val="narrow", y_val=True), "X_val, y_val: X has 2 features"),
    (dict(early_stopping=True), dict(X_val=True, y_val="unknown"), r"y_val has labels that y "
                                                                    r"does not have: \[7\]"),
    (dict(early_stopping=True), dict(X_val=True, y_val="short"), "inconsistent numbers"),
])
def test_a_validation_set_it_cannot_use_is_refused(kwargs, fit_kwargs, match):
    X, y = classification(100, 0)
    X_val, y_val = classification(40, 1)
    values = {"X_val": {True: X_val, "narrow": X_val[:, :2]},
              "y_val": {True: y_val, "unknown": np.r_[y_val[:-1], 7], "short": y_val[:-1]},
              "sample_weight_val": {True: np.ones(40)}}
    given = {name: values[name][v] for name, v in fit_kwargs.items()}
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, **kwargs)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y, **given)
    assert not hasattr(clf, "coefs_")  # nothing fitted


def test_through_a_pipeline_by_metadata_routing():
    """X_val is routed to the estimator and scaled by the fitted scaler
    (``transform_input``): the same fit as scaling by hand."""
    X, y = regression(300, 0)
    X_val, y_val = regression(100, 1)
    X = X * [1.0, 10.0, 100.0, 0.1] + 5.0
    X_val = X_val * [1.0, 10.0, 100.0, 0.1] + 5.0
    with sklearn.config_context(enable_metadata_routing=True):
        reg = small(MLPRegressor, scoring="loss").set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", reg)], transform_input=["X_val"])
        quiet(pipe.fit, X, y, X_val=X_val, y_val=y_val)
    scaler = StandardScaler().fit(X)
    by_hand = quiet(small(MLPRegressor, scoring="loss").fit, scaler.transform(X), y,
                    X_val=scaler.transform(X_val), y_val=y_val)
    fitted = pipe.named_steps["mlp"]
    assert fitted.validation_loss_curve_ == by_hand.validation_loss_curve_
    np.testing.assert_array_equal(pipe.predict(X_val), by_hand.predict(scaler.transform(X_val)))
