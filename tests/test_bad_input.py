"""Bad input gets a clear error that names the problem, and a fitted estimator that
receives it in a refit or a partial_fit keeps its previous state exactly."""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from fastnn import MLPClassifier, MLPRegressor

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y_class = np.array([0, 1, 2] * 20)
y_reg = X @ np.array([1.0, -2.0, 0.5])


def with_nan(a):
    a = np.array(a, dtype=float)
    a.flat[3] = np.nan
    return a


def with_inf(a):
    a = np.array(a, dtype=float)
    a.flat[5] = np.inf
    return a


def fitted(Estimator, **kw):
    est = Estimator(hidden_layer_sizes=(5,), max_iter=5, random_state=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if Estimator is MLPClassifier:
            return est.fit(X, y_class)
        return est.fit(X, y_reg)


def snapshot(est):
    """Everything observable of a fitted estimator, to compare before/after."""
    out = {"pred": est.predict(X), "pickle_keys": sorted(vars(est))}
    out["coefs"] = [c.copy() for c in est.coefs_ + est.intercepts_]
    out["loss_curve"] = list(getattr(est, "loss_curve_", []))
    out["t"] = getattr(est, "t_", None)
    if hasattr(est, "predict_proba"):
        out["proba"] = est.predict_proba(X)
    return out


def assert_unchanged(before, after):
    np.testing.assert_array_equal(before["pred"], after["pred"])
    for a, b in zip(before["coefs"], after["coefs"]):
        np.testing.assert_array_equal(a, b)
    assert before["loss_curve"] == after["loss_curve"] and before["t"] == after["t"]
    assert before["pickle_keys"] == after["pickle_keys"]
    if "proba" in before:
        np.testing.assert_array_equal(before["proba"], after["proba"])


# (case, X, y for classifier, y for regressor, sample_weight, exception, message)
BAD_FIT = [
    ("nan in X", with_nan(X), y_class, y_reg, None, ValueError, "NaN"),
    ("inf in X", with_inf(X), y_class, y_reg, None, ValueError, "infinity"),
    ("nan in y", X, with_nan(y_class), with_nan(y_reg), None, ValueError, "NaN"),
    ("nan in sample_weight", X, y_class, y_reg, with_nan(np.ones(60)), ValueError, "NaN"),
    ("empty X", X[:0], y_class[:0], y_reg[:0], None, ValueError, "0 sample"),
    ("1-D X", X[:, 0], y_class, y_reg, None, ValueError, "Expected 2D array"),
    ("length mismatch", X, y_class[:50], y_reg[:50], None, ValueError, "inconsistent numbers"),
    ("complex X", X + 1j, y_class, y_reg, None, ValueError, "[Cc]omplex"),
    ("object X", np.array([["a", "b", "c"]] * 60, dtype=object), y_class, y_reg, None,
     ValueError, "could not convert"),
    ("negative sample_weight", X, y_class, y_reg, -np.ones(60), ValueError, "[Nn]egative"),
    ("zero sample_weight", X, y_class, y_reg, np.zeros(60), ValueError, "positive sum|zero"),
    ("sample_weight shape", X, y_class, y_reg, np.ones(59), ValueError, "sample_weight"),
]


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("case,Xb,yc,yr,sw,exc,match", BAD_FIT, ids=[c[0] for c in BAD_FIT])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_data_raises_and_leaves_a_fitted_model_unchanged(Estimator, case, Xb, yc, yr, sw,
                                                             exc, match, method):
    est = fitted(Estimator)
    before = snapshot(est)
    yb = yc if Estimator is MLPClassifier else yr
    with pytest.raises(exc, match=match):
        getattr(est, method)(Xb, yb, sample_weight=sw)
    assert_unchanged(before, snapshot(est))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_target_type_errors(method):
    reg = fitted(MLPRegressor)
    before = snapshot(reg)
    with pytest.raises(ValueError, match="could not convert|numeric"):
        getattr(reg, method)(X, np.array(["a", "b", "c"] * 20))
    assert_unchanged(before, snapshot(reg))
    clf = fitted(MLPClassifier)
    before = snapshot(clf)
    with pytest.raises(ValueError, match="Unknown label type|continuous"):
        getattr(clf, method)(X, y_reg)
    assert_unchanged(before, snapshot(clf))


def test_unseen_classes_and_wrong_feature_count_in_partial_fit():
    clf = fitted(MLPClassifier)
    before = snapshot(clf)
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, np.array([0, 1, 7] * 20))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :2], y_class)
    assert_unchanged(before, snapshot(clf))
    reg = fitted(MLPRegressor)
    before = snapshot(reg)
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(np.hstack([X, X]), y_reg)
    assert_unchanged(before, snapshot(reg))


BAD_PREDICT = [
    ("nan", with_nan(X), "NaN"),
    ("inf", with_inf(X), "infinity"),
    ("empty", X[:0], "0 sample"),
    ("1-D", X[0], "Expected 2D array"),
    ("features", X[:, :2], "X has 2 features, but .* is expecting 3 features"),
    ("complex", X + 1j, "[Cc]omplex"),
    ("object", np.array([["a", "b", "c"]] * 4, dtype=object), "could not convert"),
]


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("case,Xb,match", BAD_PREDICT, ids=[c[0] for c in BAD_PREDICT])
def test_bad_data_to_predict_and_score(Estimator, case, Xb, match):
    est = fitted(Estimator)
    before = snapshot(est)
    methods = ["predict", "predict_proba", "predict_log_proba"] if Estimator is MLPClassifier \
        else ["predict"]
    for method in methods:
        with pytest.raises(ValueError, match=match):
            getattr(est, method)(Xb)
    with pytest.raises(ValueError):
        est.score(Xb, (y_class if Estimator is MLPClassifier else y_reg)[: len(np.atleast_2d(Xb))])
    assert_unchanged(before, snapshot(est))


@pytest.mark.parametrize("bad", [
    dict(delta=0.0), dict(delta=-1.0), dict(learning_rate_init=0.0),
    dict(learning_rate_init=-0.1), dict(beta_1=1.0), dict(beta_1=-0.1), dict(beta_2=1.0),
    dict(loss="hinge"), dict(solver="newton"), dict(activation="swish"), dict(backend="gpu"),
    dict(alpha=-1.0), dict(batch_size=0), dict(max_iter=0),
])
def test_invalid_hyperparameters_raise_invalid_parameter_error_and_keep_the_model(bad):
    reg = fitted(MLPRegressor)
    before = snapshot(reg)
    reg.set_params(**bad)
    with pytest.raises(InvalidParameterError, match=list(bad)[0]):
        reg.fit(X, y_reg)
    assert_unchanged(before, snapshot(reg))


def test_hidden_layer_of_size_zero_raises_and_keeps_the_model():
    clf = fitted(MLPClassifier)
    before = snapshot(clf)
    clf.set_params(hidden_layer_sizes=(5, 0))
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        clf.fit(X, y_class)
    assert_unchanged(before, snapshot(clf))


def test_extreme_values_stay_finite_without_overflow_warnings():
    big = rng.normal(size=(80, 3)) * 1e6
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
        clf.fit(big, np.arange(80) % 2)
        assert np.isfinite(clf.predict_proba(big)).all()
        X32 = (rng.normal(size=(80, 3)) * 1e30).astype(np.float32)
        reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
        try:
            reg.fit(X32, np.ones(80, np.float32))
        except ValueError as exc:  # a clear refusal is acceptable, a silent NaN is not
            assert "non-finite" in str(exc) or "diverged" in str(exc)
        else:
            assert np.isfinite(reg.predict(X32)).all()


# ----------------------------------------------------------------- fuzzing


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 12), d=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
    scale=st.sampled_from([1e-8, 1.0, 1e4, 1e12]),
    n_labels=st.integers(1, 3),
    weights=st.sampled_from([None, "random", "zeros_some"]),
    regressor=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fuzz_fit_predict_succeeds_or_raises_value_or_type_error(n, d, dtype, scale, n_labels,
                                                                  weights, regressor, seed):
    r = np.random.default_rng(seed)
    Xf = (r.normal(size=(n, d)) * scale).astype(dtype)
    sw = None if weights is None else r.uniform(0, 2, n)
    if weights == "zeros_some":
        sw[: n // 2] = 0.0
    est = (MLPRegressor if regressor else MLPClassifier)(hidden_layer_sizes=(3,), max_iter=3,
                                                         random_state=0)
    yf = r.normal(size=n) if regressor else r.integers(0, n_labels, n)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xf, yf, sample_weight=sw)
            pred = est.predict(Xf)
    except (ValueError, TypeError):
        return
    assert len(pred) == n
    assert pickle.loads(pickle.dumps(est)).predict(Xf).shape == pred.shape


def test_class_weight_naming_a_label_that_is_not_a_class_says_which():
    clf = fitted(MLPClassifier)
    before = snapshot(clf)
    clf.set_params(class_weight={0: 2.0, 42: 1.0})
    with pytest.raises(ValueError, match=r"not classes: \[42\]; the classes are \[0, 1, 2\]"):
        clf.fit(X, y_class)
    assert_unchanged(before, snapshot(clf))
    labels = np.array(["a", "b", "c"])[y_class]
    with pytest.raises(ValueError, match=r"not classes: \['z'\]"):
        MLPClassifier(class_weight={"a": 1.0, "z": 3.0}, max_iter=2).fit(X, labels)


def test_classifier_loss_is_log_loss_as_scikit_learns():
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    assert MLPClassifier().loss == SkMLPClassifier().loss == "log_loss"
    assert "loss" not in MLPClassifier().get_params()  # not a parameter there either
