"""Small fits stay cheap: a fit, refit or partial_fit costs the same whatever the model's
history (transactional in O(1), not by copying the loss curve and the optimizer state),
and the fast validation path gives exactly what the general one gives."""

import statistics
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastnn import MLPClassifier, MLPRegressor

rng = np.random.default_rng(0)
X = rng.normal(size=(8, 3))
y_reg = X @ np.array([1.0, -2.0, 0.5])
y_class = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def partial_fit(est, Xb, yb):
    if isinstance(est, MLPClassifier):
        return est.partial_fit(Xb, yb, classes=[0, 1, 2])
    return est.partial_fit(Xb, yb)


def peak_bytes(fn):
    """Bytes allocated at the peak of ``fn()`` above what was allocated before it."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    return tracemalloc.get_traced_memory()[1] - before


@pytest.mark.slow
@pytest.mark.parametrize("Estimator,y", [(MLPRegressor, y_reg), (MLPClassifier, y_class)])
def test_the_cost_of_a_partial_fit_does_not_grow_with_the_calls_before_it(Estimator, y):
    """Calls 100 and 2000 of a stream allocate the same at their peak (medians of 20
    calls: the loss curve's own growth reallocates it now and then). Copying the loss
    curve on every call, to restore it on error, made call 2000 allocate ~15 kB more."""
    est = Estimator(hidden_layer_sizes=(4,), random_state=0)
    peaks = {}
    tracemalloc.start()
    try:
        for call in range(1, 2021):
            if call in (100, 2000):
                peaks[call] = []
            if 100 <= call < 120 or 2000 <= call < 2020:
                peaks[max(k for k in peaks if k <= call)].append(
                    peak_bytes(lambda: partial_fit(est, X, y)))
            else:
                partial_fit(est, X, y)
    finally:
        tracemalloc.stop()
    assert len(est.loss_curve_) == 2020
    early, late = statistics.median(peaks[100]), statistics.median(peaks[2000])
    assert abs(late - early) < 1024, (early, late)


@pytest.mark.parametrize("Estimator,y", [(MLPRegressor, y_reg), (MLPClassifier, y_class)])
def test_a_failed_partial_fit_in_a_stream_changes_nothing(Estimator, y):
    """The stream with a failed call in the middle continues bit-identically to the stream
    without it: loss curve, step count, optimizer buffers, learning rate, weights."""
    plain, failed = (Estimator(hidden_layer_sizes=(4,), solver="adam", random_state=0)
                     for _ in range(2))
    for _ in range(5):
        partial_fit(plain, X, y)
        partial_fit(failed, X, y)
    state = failed._optimizer
    buffers = state.moments.copy()
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        failed.partial_fit(X_nan, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="non-finite"):  # fails inside the epoch
            failed.partial_fit(np.full_like(X, np.finfo(np.float64).max), y)
    assert failed._optimizer is state and np.array_equal(state.moments, buffers)
    assert len(failed.loss_curve_) == 5 and failed.t_ == 5 * len(X)
    for _ in range(5):
        partial_fit(plain, X, y)
        partial_fit(failed, X, y)
    assert plain.loss_curve_ == failed.loss_curve_ and plain.t_ == failed.t_
    assert plain._optimizer.step == failed._optimizer.step
    np.testing.assert_array_equal(plain._optimizer.moments, failed._optimizer.moments)
    for a, b in zip(plain.coefs_ + plain.intercepts_, failed.coefs_ + failed.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_a_warm_start_refit_failing_after_some_epochs_keeps_the_curves(monkeypatch):
    """Epochs appended to the loss and validation curves before the failure are undone."""
    from fastnn import _engine

    Xl, yl = rng.normal(size=(60, 3)), np.arange(60) % 2
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, warm_start=True,
                        early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xl, yl)
    names = ("loss_curve_", "validation_scores_", "validation_loss_curve_")
    curves = {k: list(getattr(clf, k)) for k in names}
    attrs = {k: v for k, v in vars(clf).items() if not isinstance(v, (list, np.ndarray))}
    state = clf._optimizer.moments.copy()
    update, calls = _engine._track_validation, []

    def failing_update(*args, **kw):
        calls.append(1)
        update(*args, **kw)
        if len(calls) == 3:
            raise RuntimeError("failed in epoch 3")

    monkeypatch.setattr(_engine, "_track_validation", failing_update)
    with pytest.raises(RuntimeError, match="epoch 3"):
        clf.fit(Xl, yl)
    assert {k: getattr(clf, k) for k in names} == curves
    assert {k: v for k, v in vars(clf).items()
            if not isinstance(v, (list, np.ndarray))} == attrs
    np.testing.assert_array_equal(clf._optimizer.moments, state)


class Array(np.ndarray):
    """An ndarray subclass: what the fast validation path leaves to the general one."""


def fit_both(Estimator, Xa, ya, **kw):
    """The same fit from ndarrays (the fast path) and through validate_data."""
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast = Estimator(**kw).fit(Xa, ya)
        general = Estimator(**kw).fit(Xa.view(Array), ya.view(Array))
    assert type(fast.coefs_[0]) is type(general.coefs_[0]) is np.ndarray
    return fast, general


def assert_same_fit(a, b):
    assert sorted(vars(a)) == sorted(vars(b))
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)
    assert a.loss_curve_ == b.loss_curve_ and a.n_features_in_ == b.n_features_in_
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(a.classes_, b.classes_)
        assert a.classes_.dtype == b.classes_.dtype
        for attr in ("y_type_", "sparse_input_"):
            assert getattr(a._label_binarizer, attr) == getattr(b._label_binarizer, attr)
        np.testing.assert_array_equal(a._label_binarizer.classes_, b._label_binarizer.classes_)
        np.testing.assert_array_equal(a._label_binarizer.transform(a.classes_),
                                      b._label_binarizer.transform(b.classes_))
        assert a.out_activation_ == b.out_activation_


@pytest.mark.parametrize("labels", [[0, 1, 2], [3, 7], [5], [-1, 0, 1, 2]])
def test_the_classifier_fast_path_fits_exactly_as_the_general_one(labels):
    Xl = rng.normal(size=(40, 3))
    yl = np.array(labels)[np.arange(40) % len(labels)]
    assert_same_fit(*fit_both(MLPClassifier, Xl, yl))
    assert_same_fit(*fit_both(MLPClassifier, Xl.astype(np.float32), yl.astype(np.uint8)))


@pytest.mark.parametrize("classes,labels", [
    ([5], [5, 5]), ([3, 7], [7, 3, 7]), ([3, 7], [3, 3]), ([0, 1, 2], [2, 0, 1, 1]),
    ([0, 1, 2], [0, 1, 1]), ([-4, 0, 9, 12], [12, -4, 9]), ([1.0, 2.0, 3.0], [3, 1, 2]),
])
@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int32])
def test_the_classifier_encodes_integer_labels_as_label_binarizer(classes, labels, dtype):
    """The one-hot encoding of integer labels is LabelBinarizer's, also when partial_fit's
    ``classes`` has labels that y lacks."""
    from sklearn.preprocessing import LabelBinarizer

    if min(labels) < np.iinfo(dtype).min:
        pytest.skip("labels out of the dtype's range")
    y = np.array(labels, dtype=dtype)
    clf = MLPClassifier(hidden_layer_sizes=(2,), random_state=0)
    clf.partial_fit(rng.normal(size=(len(y), 2)), y, classes=classes)
    expected = LabelBinarizer().fit(classes).transform(y)
    encoded = clf._encode(y)
    np.testing.assert_array_equal(encoded, expected)
    assert encoded.shape == expected.shape


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_the_regressor_fast_path_fits_exactly_as_the_general_one(loss):
    Xl = rng.normal(size=(40, 3))
    yl = np.abs(Xl @ np.array([1.0, -2.0, 0.5]))
    assert_same_fit(*fit_both(MLPRegressor, Xl, yl, loss=loss))
    assert_same_fit(*fit_both(MLPRegressor, Xl, np.arange(40) % 3, loss=loss))
    assert_same_fit(*fit_both(MLPRegressor, Xl, np.c_[yl, yl + 1.0], loss=loss))


def test_the_fast_path_keeps_the_feature_checks():
    import pandas as pd

    Xl = rng.normal(size=(40, 3))
    yl = np.arange(40) % 2
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(pd.DataFrame(Xl, columns=["a", "b", "c"]), yl)
        assert list(clf.feature_names_in_) == ["a", "b", "c"]
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            clf.partial_fit(Xl, yl)
        with pytest.raises(ValueError, match="X has 2 features, but MLPClassifier is expecting"):
            with pytest.warns(UserWarning, match="does not have valid feature names"):
                clf.partial_fit(Xl[:, :2], yl)  # warns first, as validate_data
        clf.fit(Xl, yl)  # a refit from an ndarray forgets the names
    assert not hasattr(clf, "feature_names_in_")


def test_a_refit_reseeds_as_a_new_random_state():
    """Refits reuse the estimator's RandomState (reseeded by set_state): the same weights
    as a fresh estimator's, whatever seeds the refits before used."""
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    for seed in (0, 1, np.int64(0), 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.set_params(random_state=seed).fit(X, y_reg)
            fresh = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2,
                                 random_state=np.random.RandomState(int(seed))).fit(X, y_reg)
        for a, b in zip(reg.coefs_ + reg.intercepts_, fresh.coefs_ + fresh.intercepts_):
            np.testing.assert_array_equal(a, b)
