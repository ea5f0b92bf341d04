"""fastnn.MLPClassifier / MLPRegressor against scikit-learn's own MLP, and the additions.

scikit-learn is the oracle: from the same random_state the same weights are drawn and the
same shuffles made, so without early stopping the fitted weights and loss curves must be
equal (float64, to rounding) on every backend.
"""

import io
import pickle
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from scipy import sparse
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from conftest import BACKENDS
from fastnn import MLPClassifier, MLPRegressor, available_backends



def quiet(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def regression_data(n=200, n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = X @ rng.normal(size=(4, n_out)) + 0.1 * rng.normal(size=(n, n_out))
    return X, (Y.ravel() if n_out == 1 else Y)


def assert_same_fit(ours, theirs, rtol=1e-9):
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-3)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)
    assert ours.n_iter_ == theirs.n_iter_
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    if hasattr(theirs, "t_"):
        assert ours.t_ == theirs.t_


# ----------------------------------------------------------------- parity with scikit-learn

CLASSIFIER_SETTINGS = [
    dict(hidden_layer_sizes=(20,), max_iter=8),
    dict(hidden_layer_sizes=(12, 8), activation="tanh", solver="sgd", momentum=0.8,
         learning_rate="invscaling", learning_rate_init=0.05, max_iter=6, batch_size=64),
    dict(hidden_layer_sizes=(10,), activation="logistic", solver="sgd",
         nesterovs_momentum=False, shuffle=False, max_iter=5, alpha=1e-2),
    dict(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=15),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("settings", CLASSIFIER_SETTINGS, ids=["adam", "sgd-invscaling",
                                                               "sgd-logistic", "lbfgs"])
def test_classifier_equals_scikit_learn(digits, settings, backend):
    X, y = digits
    X, y = X[:600], y[:600]
    ours = quiet(MLPClassifier(random_state=1, backend=backend, **settings).fit, X, y)
    theirs = quiet(sk.MLPClassifier(random_state=1, **settings).fit, X, y)
    assert_same_fit(ours, theirs, rtol=1e-6 if settings.get("solver") == "lbfgs" else 1e-9)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", ["binary", "multilabel"])
def test_binary_and_multilabel_classifier_equal_scikit_learn(target, backend):
    if target == "binary":
        X, y = make_classification(200, 6, random_state=0)
    else:
        X, y = make_multilabel_classification(200, 6, n_classes=3, random_state=0)
    sample_weight = np.random.default_rng(0).uniform(0.5, 2, len(X))
    kw = dict(hidden_layer_sizes=(9,), max_iter=5, random_state=0)
    ours = quiet(MLPClassifier(backend=backend, **kw).fit, X, y, sample_weight=sample_weight)
    theirs = quiet(sk.MLPClassifier(**kw).fit, X, y, sample_weight=sample_weight)
    assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss,n_out,solver", [("squared_error", 1, "adam"),
                                               ("squared_error", 3, "sgd"),
                                               ("poisson", 1, "adam"),
                                               ("squared_error", 1, "lbfgs")])
def test_regressor_equals_scikit_learn(loss, n_out, solver, backend):
    X, y = regression_data(n_out=n_out)
    if loss == "poisson":
        y = np.random.default_rng(1).poisson(np.exp(0.3 * X[:, 0]))
    kw = dict(loss=loss, hidden_layer_sizes=(7,), solver=solver, max_iter=6, random_state=3,
              learning_rate_init=0.01 if solver != "sgd" else 0.001)
    ours = quiet(MLPRegressor(backend=backend, **kw).fit, X, y)
    theirs = quiet(sk.MLPRegressor(**kw).fit, X, y)
    assert_same_fit(ours, theirs, rtol=1e-6 if solver == "lbfgs" else 1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_fit_and_warm_start_equal_scikit_learn(digits, backend):
    X, y = digits
    kw = dict(hidden_layer_sizes=(15,), random_state=0)
    ours, theirs = MLPClassifier(backend=backend, **kw), sk.MLPClassifier(**kw)
    classes = np.unique(y)
    for start in (0, 300, 600):
        ours.partial_fit(X[start:start + 300], y[start:start + 300], classes=classes)
        theirs.partial_fit(X[start:start + 300], y[start:start + 300], classes=classes)
    assert_same_fit(ours, theirs)
    ours.set_params(warm_start=True, max_iter=3)
    theirs.set_params(warm_start=True, max_iter=3)
    quiet(ours.fit, X[:400], y[:400])
    quiet(theirs.fit, X[:400], y[:400])
    assert_same_fit(ours, theirs)


# ----------------------------------------------------------------- scikit-learn behaviour


def test_verbose_lines_and_convergence_warning(digits):
    X, y = digits
    out = io.StringIO()
    with redirect_stdout(out), pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, verbose=True, random_state=0).fit(X, y)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and len(lines[0].split("= ")[1]) == 10
    assert lines[1].startswith("Iteration 2, loss = ")


def test_adaptive_schedule_divides_by_five_and_stops_at_1e_6():
    X, y = regression_data()
    reg = MLPRegressor(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01,
                       n_iter_no_change=1, tol=1e9, max_iter=50, verbose=True, random_state=0)
    out = io.StringIO()
    with redirect_stdout(out):
        reg.fit(X, y)
    text = out.getvalue()
    assert "Setting learning rate to 0.002000" in text
    assert "Setting learning rate to 0.000400" in text
    assert "Learning rate too small. Stopping." in text
    assert reg._optimizer.learning_rate <= 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_restores_best_weights_and_records_validation_loss(digits, backend):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(20,), early_stopping=True, n_iter_no_change=3,
                        learning_rate_init=0.05, max_iter=60, random_state=0, backend=backend)
    quiet(clf.fit, X, y)
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == len(clf.validation_loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ < 60 and clf.best_loss_ is None
    # the restored weights are the best epoch's: refitting for exactly that many epochs
    best_epoch = int(np.argmax(clf.validation_scores_)) + 1
    again = MLPClassifier(**{**clf.get_params(), "early_stopping": True,
                             "max_iter": best_epoch, "n_iter_no_change": 1000})
    quiet(again.fit, X, y)
    for a, b in zip(clf.coefs_, again.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert np.all(np.isfinite(clf.validation_loss_curve_))


def test_float32_kept_sparse_and_string_labels(digits):
    X, y = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                       "nine"], dtype=object)[y]
    clf = quiet(MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit,
                X.astype(np.float32), labels)
    assert clf.coefs_[0].dtype == np.float32 and clf.predict_proba(X).dtype == np.float32
    assert set(clf.predict(X)) <= set(labels)
    dense = quiet(MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0).fit, X, y)
    for fmt in (sparse.csr_matrix, sparse.csc_matrix):
        sp = quiet(MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0).fit,
                   fmt(X), y)
        np.testing.assert_allclose(sp.coefs_[0], dense.coefs_[0], rtol=1e-12)
        np.testing.assert_allclose(sp.predict_proba(fmt(X)), dense.predict_proba(X), rtol=1e-12)


def test_parameters_are_validated_at_fit_not_init():
    X, y = regression_data()
    for bad in (dict(delta=0.0), dict(delta=-1.0), dict(learning_rate_init=0.0),
                dict(beta_1=1.0), dict(beta_2=-0.1), dict(loss="hinge"), dict(solver="bfgs"),
                dict(activation="swish"), dict(backend="cuda"), dict(negative_slope=-1.0)):
        reg = MLPRegressor(**bad)  # never raises here
        with pytest.raises(InvalidParameterError):
            reg.fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPRegressor(hidden_layer_sizes=(5, 0)).fit(X, y)
    with pytest.raises(AttributeError, match="partial_fit") as info:
        MLPRegressor(solver="lbfgs").partial_fit(X, y)
    assert "not stochastic" in str(info.value.__cause__)


# ----------------------------------------------------------------- what scikit-learn refused


@pytest.mark.parametrize("backend", BACKENDS)
def test_class_weight_equals_sample_weight(backend):
    X, y = make_classification(300, 5, weights=[0.8, 0.2], random_state=0)
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, backend=backend)
    balanced = quiet(MLPClassifier(class_weight="balanced", **kw).fit, X, y)
    w = len(y) / (2 * np.bincount(y))
    manual = quiet(MLPClassifier(**kw).fit, X, y, sample_weight=w[y])
    assert_same_fit(balanced, manual, rtol=1e-12)
    combined = quiet(MLPClassifier(class_weight={0: 1.0, 1: 3.0}, **kw).fit, X, y,
                     sample_weight=np.full(len(y), 2.0))
    manual = quiet(MLPClassifier(**kw).fit, X, y, sample_weight=np.where(y == 1, 6.0, 2.0))
    assert_same_fit(combined, manual, rtol=1e-12)


@pytest.mark.slow  # 48 fits of 200 epochs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop", "lbfgs"])
@pytest.mark.parametrize("activation", ["leaky_relu", ["tanh", "leaky_relu"]])
def test_new_solvers_losses_and_activations_learn(solver, activation, backend):
    X, y = regression_data(400)
    for loss in ("absolute_error", "huber", "quantile"):  # quantile 0.5: the median
        reg = MLPRegressor(loss=loss, hidden_layer_sizes=(16, 8), activation=activation,
                           solver=solver, learning_rate_init=0.01, max_iter=200, delta=0.5,
                           random_state=0, backend=backend)
        quiet(reg.fit, X, y)
        assert reg.score(X, y) > 0.9, (loss, reg.score(X, y))
        if solver != "lbfgs":
            assert reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_activation_list_sets_each_hidden_layer():
    """(tanh, relu) per layer: predictions equal a NumPy forward pass by hand."""
    X, y = regression_data(100)
    reg = quiet(MLPRegressor(hidden_layer_sizes=(5, 4), activation=["tanh", "relu"],
                             max_iter=5, random_state=0).fit, X, y)
    (W1, W2, W3), (b1, b2, b3) = reg.coefs_, reg.intercepts_
    by_hand = np.maximum(np.tanh(X @ W1 + b1) @ W2 + b2, 0) @ W3 + b3
    np.testing.assert_allclose(reg.predict(X), by_hand.ravel(), rtol=1e-12)
    with pytest.raises(ValueError, match="for each of the 2 hidden layers"):
        MLPRegressor(hidden_layer_sizes=(5, 4), activation=["tanh"]).fit(X, y)


def test_absolute_and_huber_loss_values_are_reported_by_hand():
    X, y = regression_data(50)
    for loss, f in (("absolute_error", lambda r: np.abs(r)),
                    ("huber", lambda r: np.where(np.abs(r) <= 0.3, 0.5 * r**2,
                                                 0.3 * (np.abs(r) - 0.15)))):
        reg = quiet(MLPRegressor(loss=loss, delta=0.3, hidden_layer_sizes=(4,), alpha=0.0,
                                 solver="lbfgs", max_iter=5, random_state=0).fit, X, y)
        assert reg.loss_ == pytest.approx(np.mean(f(reg.predict(X) - y)), rel=1e-10)


def heteroscedastic(n, seed):
    """y = x + noise whose spread grows with |x|: the conditional quantiles fan out."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    return X, X.ravel() + rng.normal(size=n) * (0.2 + 0.5 * np.abs(X.ravel()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantile_loss_predicts_quantiles(backend):
    """Fitted quantiles 0.1 / 0.5 / 0.9 lie above about 10 / 50 / 90% of held-out
    targets (binomial sd with 4000 points: 0.5-0.8%; the model's error adds to it)."""
    X, y = heteroscedastic(3000, seed=0)
    X_test, y_test = heteroscedastic(4000, seed=1)
    covered = {}
    for q in (0.1, 0.5, 0.9):
        reg = quiet(MLPRegressor(loss="quantile", quantile=q, hidden_layer_sizes=(32,),
                                 learning_rate_init=0.003, n_iter_no_change=30,
                                 max_iter=300, random_state=0, backend=backend).fit, X, y)
        covered[q] = float(np.mean(y_test <= reg.predict(X_test)))
    for q, share in covered.items():
        assert abs(share - q) < 0.03, covered
    # the intervals fan out with |x|, as the noise does
    lo, hi = (quiet(MLPRegressor(loss="quantile", quantile=q, hidden_layer_sizes=(32,),
                                 learning_rate_init=0.003, n_iter_no_change=30,
                                 max_iter=300, random_state=0, backend=backend).fit, X, y) for q in (0.1, 0.9))
    width = hi.predict([[0.0], [1.8]]) - lo.predict([[0.0], [1.8]])
    assert width[1] > 2 * width[0] > 0, width


def test_quantile_loss_value_is_mean_pinball_loss():
    """loss_ (alpha=0, L-BFGS: the loss at the fitted weights) is scikit-learn's
    mean_pinball_loss, averaged over the outputs."""
    from sklearn.metrics import mean_pinball_loss

    X, y = regression_data(80, n_out=2)
    reg = quiet(MLPRegressor(loss="quantile", quantile=0.7, hidden_layer_sizes=(4,),
                             alpha=0.0, solver="lbfgs", max_iter=5, random_state=0).fit, X, y)
    assert reg.loss_ == pytest.approx(mean_pinball_loss(y, reg.predict(X), alpha=0.7),
                                      rel=1e-10)


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.5, 2.0])
def test_quantile_outside_the_unit_interval_is_refused(quantile):
    X, y = regression_data(20)
    with pytest.raises(InvalidParameterError, match="'quantile'"):
        MLPRegressor(loss="quantile", quantile=quantile).fit(X, y)


def test_a_pickle_from_before_a_parameter_gets_its_default():
    """An estimator pickled before ``quantile`` existed loads with quantile=0.5 and
    predicts as before."""
    X, y = regression_data(40)
    reg = quiet(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit, X, y)
    state = reg.__getstate__()
    del state["quantile"]
    old = MLPRegressor.__new__(MLPRegressor)
    old.__setstate__(state)
    assert old.get_params()["quantile"] == 0.5
    np.testing.assert_array_equal(old.predict(X), reg.predict(X))


def test_pickle_and_clone_round_trips_give_identical_predictions(digits):
    X, y = digits
    clf = quiet(MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0).fit, X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.coefs_[0].base is restored._params  # views of one buffer again
    for backend in available_backends():  # a pickle loads and predicts under any backend
        other = pickle.loads(pickle.dumps(clf))
        other.backend_ = backend
        np.testing.assert_allclose(other.predict_proba(X), clf.predict_proba(X), rtol=1e-12)
    refit = quiet(clone(clf).fit, X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), clf.predict_proba(X))
    state = pickle.dumps(clf)
    assert b"numba" not in state and b"CPUDispatcher" not in state


def test_pipeline_grid_search_over_huber_delta():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(300, 1))
    y = 2 * X.ravel() + 1 + 0.2 * rng.normal(size=300)
    y[rng.choice(300, 15, replace=False)] += rng.choice([-30, 30], 15)  # 5% gross outliers
    pipe = make_pipeline(StandardScaler(), MLPRegressor(loss="huber", hidden_layer_sizes=(8,),
                                                        solver="lbfgs", random_state=0))
    search = quiet(GridSearchCV(pipe, {"mlpregressor__delta": [0.1, 1.0, 10.0, 100.0]},
                                cv=3, scoring="neg_mean_absolute_error").fit, X, y)
    best = search.best_params_["mlpregressor__delta"]
    assert np.isfinite(best) and best < 100.0
    np.testing.assert_allclose(pickle.loads(pickle.dumps(search)).predict(X), search.predict(X))


def test_outliers_huber_and_absolute_error_recover_the_clean_line():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(400, 1))
    clean = 3 * X.ravel() - 1
    y = clean + 0.1 * rng.normal(size=400)
    y[rng.choice(400, 20, replace=False)] += 50.0  # 5% gross outliers, all upward
    errors = {}
    for loss in ("squared_error", "absolute_error", "huber"):
        reg = MLPRegressor(loss=loss, delta=1.0, hidden_layer_sizes=(), solver="lbfgs",
                           max_iter=500, alpha=0.0, random_state=0)
        quiet(reg.fit, X, y)
        errors[loss] = np.mean(np.abs(reg.predict(X) - clean))
    assert errors["absolute_error"] < errors["squared_error"] / 5, errors
    assert errors["huber"] < errors["squared_error"] / 5, errors


@pytest.mark.slow  # six 40-epoch fits on digits, three of them scikit-learn's
def test_digits_accuracy_within_noise_of_scikit_learn(digits):
    from sklearn.model_selection import train_test_split

    X, y = digits
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    ours = [quiet(MLPClassifier(max_iter=40, random_state=s).fit, X_tr, y_tr).score(X_te, y_te)
            for s in range(3)]
    theirs = [quiet(sk.MLPClassifier(max_iter=40, random_state=s).fit, X_tr, y_tr).score(X_te, y_te)
              for s in range(3)]
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.01, (ours, theirs)


def test_verbose_fit_draws_a_progress_bar_only_on_a_terminal(monkeypatch, digits):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    X, y = digits
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        with redirect_stdout(io.StringIO()):
            quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, verbose=True,
                                random_state=0).fit, X, y)
        assert ("epochs |" in stream.getvalue() and "3/3" in stream.getvalue()) == drawn


def test_a_pickle_from_before_the_layer_table_still_predicts():
    """fastnn 0.1's pickles held _hidden_acts and _negative_slope, no _table, and the
    optimizer as a _schedule: it predicts and continues training as the original."""
    import pickle

    import numpy as np

    from fastnn import MLPClassifier, _engine

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(5,), activation="leaky_relu", negative_slope=0.2,
                        max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    state = dict(clf.__getstate__())
    table = state.pop("_table")
    state["_hidden_acts"], state["_negative_slope"] = table[:-1, 1].copy(), 0.2
    optimizer = state.pop("_optimizer")
    schedule = state["_schedule"] = _engine._Schedule()
    schedule.__dict__.update(solver="adam", learning_rate=optimizer.learning_rate,
                             state=optimizer.moments, step=optimizer.step)
    old = MLPClassifier.__new__(MLPClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))
    old.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert old._optimizer.step == clf._optimizer.step
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_the_documented_choices_are_the_vocabularies(Estimator):
    """The docstring's {...} choices of activation, solver, backend and loss are the
    kernels' and backends' vocabularies that the parameter checks accept."""
    import re

    from fastnn import _backends
    from fastnn import kernels as fk

    vocabularies = {
        "activation": set(fk.ACTIVATIONS) - {"softmax"},
        "solver": {"lbfgs"} | set(fk.OPTIMIZERS) - {"sgd_nesterov"},
        "backend": {"auto", *_backends.BACKENDS},
        "loss": {"squared_error", "absolute_error", "huber", "quantile", "poisson"},
    }
    for name, vocabulary in vocabularies.items():
        found = re.search(rf"^    {name} : \{{(.*?)\}}", Estimator.__doc__, re.M)
        if found is None:
            assert name == "loss" and Estimator is MLPClassifier
            continue
        assert set(re.findall(r'"(\w+)"', found.group(1))) == vocabulary, name
        Estimator(**{name: "no_such_choice"}).get_params()  # only fit validates
        with pytest.raises(InvalidParameterError, match=name):
            Estimator(**{name: "no_such_choice"}).fit([[0.0], [1.0]], [0, 1])
