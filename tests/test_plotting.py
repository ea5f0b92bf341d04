"""fastnn.plot_loss_curve and fastnn.plot_validation_curve; matplotlib is optional."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn import MLPRegressor


def _plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@pytest.fixture
def plt():
    plt = _plt()
    yield plt
    plt.close("all")


def _fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    y = X @ [1.0, -1.0, 0.5] + rng.normal(0, 0.1, 150)
    y[:8] += 15
    return X, y


def test_import_fastnn_does_not_import_matplotlib():
    code = ("import sys, fastnn; fastnn.plot_loss_curve; "
            "print('matplotlib' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_loss_curve_training_and_validation(plt, regression):
    X, y = regression
    reg = _fit_quietly(MLPRegressor(loss="huber", hidden_layer_sizes=(8,), early_stopping=True,
                                    n_iter_no_change=30, max_iter=30, random_state=0), X, y)
    ax = fastnn.plot_loss_curve(reg)
    training, validation, kept = ax.get_lines()
    assert training.get_label() == "training loss" and validation.get_label() == "validation loss"
    np.testing.assert_allclose(training.get_ydata(), reg.loss_curve_)
    np.testing.assert_allclose(validation.get_ydata(), reg.validation_loss_curve_)
    np.testing.assert_array_equal(training.get_xdata(), np.arange(1, reg.n_iter_ + 1))
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss (huber)"
    # the epoch whose weights were kept, and what chose it: R^2 (scoring=None)
    assert kept.get_label() == "kept: best validation score"
    assert list(kept.get_xdata()) == [np.argmax(reg.validation_scores_) + 1] * 2


def test_loss_curve_marks_the_epoch_the_validation_loss_chose(plt, regression):
    X, y = regression
    reg = _fit_quietly(MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True,
                                    scoring="loss", n_iter_no_change=5, max_iter=60,
                                    random_state=0), X, y)
    kept = fastnn.plot_loss_curve(reg).get_lines()[2]
    assert kept.get_label() == "kept: best validation loss"
    assert list(kept.get_xdata()) == [np.argmin(reg.validation_loss_curve_) + 1] * 2


def test_loss_curve_on_given_axes_pipeline_and_scikit_learn(plt, regression):
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = regression
    _, ax = plt.subplots()
    pipe = _fit_quietly(make_pipeline(StandardScaler(), MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=10, random_state=0)), X, y)
    sk = _fit_quietly(SkMLPRegressor(hidden_layer_sizes=(4,), max_iter=10, random_state=0), X, y)
    assert fastnn.plot_loss_curve(pipe, ax=ax, label="fastnn") is ax
    fastnn.plot_loss_curve(sk, ax=ax, label="scikit-learn")
    assert [line.get_label() for line in ax.get_lines()] == [
        "fastnn: training loss", "scikit-learn: training loss"]


def test_loss_curve_needs_a_stochastic_fit(regression):
    X, y = regression
    with pytest.raises(ValueError, match="loss_curve_"):
        fastnn.plot_loss_curve(MLPRegressor())
    lbfgs = _fit_quietly(MLPRegressor(solver="lbfgs", hidden_layer_sizes=(4,), max_iter=20), X, y)
    with pytest.raises(ValueError, match="solver='lbfgs'"):
        fastnn.plot_loss_curve(lbfgs)


def test_validation_curve_of_a_grid_search(plt, regression):
    from sklearn.model_selection import GridSearchCV

    X, y = regression
    search = GridSearchCV(
        MLPRegressor(loss="huber", hidden_layer_sizes=(4,), solver="lbfgs", max_iter=200,
                     random_state=0),
        {"delta": [10.0, 0.1, 1.0]}, cv=3, scoring="neg_median_absolute_error",
        return_train_score=True)
    _fit_quietly(search, X, y)
    ax = fastnn.plot_validation_curve(search)
    mean, train, best = ax.get_lines()
    np.testing.assert_array_equal(mean.get_xdata(), [0.1, 1.0, 10.0])  # sorted by delta
    order = [1, 2, 0]
    np.testing.assert_allclose(mean.get_ydata(), search.cv_results_["mean_test_score"][order])
    np.testing.assert_allclose(train.get_ydata(), search.cv_results_["mean_train_score"][order])
    assert best.get_xdata()[0] == search.best_params_["delta"]
    assert best.get_label() == f"best: delta = {search.best_params_['delta']:g}"
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "neg_median_absolute_error"


def test_validation_curve_of_cv_delta_and_of_a_pipeline_search(plt, regression):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastnn._cvdelta import search

    X, y = regression
    result = search(X, y, [0.5, 2.0], cv=2, max_iter=30)
    ax = fastnn.plot_validation_curve(result)
    assert list(ax.get_lines()[0].get_xdata()) == [0.5, 2.0] and ax.get_xscale() == "linear"

    grid = GridSearchCV(make_pipeline(StandardScaler(), MLPRegressor(
        loss="huber", solver="lbfgs", hidden_layer_sizes=(3,), max_iter=50, random_state=0)),
        {"mlpregressor__delta": [0.5, 1.0], "mlpregressor__alpha": [1e-4, 1e-2]}, cv=2)
    _fit_quietly(grid, X, y)
    ax = fastnn.plot_validation_curve(grid, param="mlpregressor__alpha")
    assert ax.get_xlabel() == "alpha"
    ax = fastnn.plot_validation_curve(grid)  # the delta is picked by name
    assert ax.get_xlabel() == "delta"
    with pytest.raises(ValueError, match="was not searched"):
        fastnn.plot_validation_curve(grid, param="beta_1")
    with pytest.raises(ValueError, match="cv_results_"):
        fastnn.plot_validation_curve(MLPRegressor())


def test_missing_matplotlib_names_the_install_command(monkeypatch, regression):
    X, y = regression
    reg = _fit_quietly(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0), X, y)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    for plot, arg in ((fastnn.plot_loss_curve, reg), (fastnn.plot_validation_curve, None)):
        if arg is None:
            from fastnn._cvdelta import DeltaSearch

            arg = DeltaSearch([1.0, 2.0], [[1.0, 2.0], [3.0, 4.0]], [[0, 0], [0, 0]],
                              [[True] * 2] * 2, "r2")
        with pytest.raises(ImportError, match=r"pip install matplotlib") as info:
            plot(arg)
        assert 'pip install "fastnn[plot]"' in str(info.value)
