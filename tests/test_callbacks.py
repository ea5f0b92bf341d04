"""scikit-learn's callbacks (sklearn.callback, scikit-learn 1.9) on fastnn's fits: one
subtask per epoch (per L-BFGS iteration) whose scores are those of that epoch's weights,
early stopping's validation rows scored when there are some, a callback's stop request
honoured, ProgressBar and ScoringMonitor on a fit and on a Pipeline inside GridSearchCV."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import BACKENDS
from fastnn import MLPClassifier, MLPRegressor

callback = pytest.importorskip("sklearn.callback",
                               reason="this scikit-learn has no sklearn.callback (< 1.9)")


def quiet(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def epoch_rows(monitor, task_name="epoch"):
    return [row for row in monitor.get_logs().data if row["task_name"] == task_name]


@pytest.mark.parametrize("backend", BACKENDS)
def test_scoring_monitor_scores_each_epochs_weights(data, backend):
    """Epoch k's score is the score of the fit that stops after k epochs (the same
    random_state: the same weights)."""
    X, y = data
    make = lambda epochs: MLPClassifier((8,), max_iter=epochs, learning_rate_init=0.05,
                                        tol=0, random_state=0, backend=backend)
    monitor = callback.ScoringMonitor(scoring="neg_log_loss")
    clf = quiet(make(4).set_callbacks(monitor).fit, X, y)
    rows = epoch_rows(monitor)
    assert [row["task_id"] for row in rows] == [0, 1, 2, 3]
    for k, row in enumerate(rows, start=1):
        alone = quiet(make(k).fit, X, y)
        assert row["neg_log_loss"] == pytest.approx(-_log_loss(alone, X, y), rel=1e-12)
    assert clf.n_iter_ == 4


def _log_loss(est, X, y):
    from sklearn.metrics import log_loss

    return log_loss(y, est.predict_proba(X))


def test_early_stopping_scores_the_validation_rows(data):
    """With early stopping the monitor scores the held-out rows: its accuracy per epoch
    is validation_scores_ (the estimator's own score is the accuracy)."""
    X, y = data
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = quiet(MLPClassifier((8,), early_stopping=True, max_iter=6, n_iter_no_change=10,
                              random_state=0).set_callbacks(monitor).fit, X, y)
    assert [row["accuracy"] for row in epoch_rows(monitor)] == clf.validation_scores_


def test_lbfgs_iterations_are_the_subtasks(data):
    X, y = data
    monitor = callback.ScoringMonitor(scoring="r2")
    reg = quiet(MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=7,
                             random_state=0).set_callbacks(monitor).fit, X, X[:, 0])
    rows = epoch_rows(monitor, "iteration")
    assert len(rows) == reg.n_iter_ == 7
    assert rows[-1]["r2"] == pytest.approx(reg.score(X, X[:, 0]), rel=1e-9)


class StopAfter:
    """A callback asking to stop at the end of epoch ``n``."""

    def __init__(self, n):
        self.n = n

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        return context.task_name == "epoch" and context.task_id + 1 == self.n


def test_a_callback_can_stop_the_fit(data):
    X, y = data
    stopped = quiet(MLPClassifier((8,), max_iter=20, random_state=0).set_callbacks(
        StopAfter(3)).fit, X, y)
    three = quiet(MLPClassifier((8,), max_iter=3, random_state=0).fit, X, y)
    assert stopped.n_iter_ == 3
    np.testing.assert_array_equal(stopped.coefs_[0], three.coefs_[0])


def test_progress_bar_and_monitor_in_a_grid_search_over_a_pipeline(data, capsys):
    pytest.importorskip("rich", reason="sklearn.callback.ProgressBar needs rich")
    X, y = data
    monitor = callback.ScoringMonitor(scoring="accuracy")
    pipe = make_pipeline(StandardScaler(), MLPClassifier((4,), max_iter=3, random_state=0))
    pipe.named_steps["mlpclassifier"].set_callbacks(monitor)
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar(max_propagation_depth=None))
    quiet(search.fit, X, y)
    # one run, the search's: 2 candidates x 2 folds + the refit, 3 epochs each, all scored
    (run,) = monitor.get_logs(select="all")
    tasks = [row["task_name"] for row in run.data if row["estimator_name"] == "MLPClassifier"]
    assert tasks.count("fit") == 5 and tasks.count("epoch") == 15
    assert "MLPClassifier - fit" in capsys.readouterr().out  # a bar per MLP fit
    plain = quiet(MLPClassifier((8,), max_iter=2, random_state=0).set_callbacks(
        callback.ProgressBar()).fit, X, y)
    assert plain.n_iter_ == 2 and "MLPClassifier - fit" in capsys.readouterr().out


def test_fits_without_callbacks_run_no_callback_code(data, monkeypatch):
    X, y = data
    from fastnn import _callbacks

    monkeypatch.setattr(_callbacks.FitTask, "step", None)  # would raise if called
    quiet(MLPClassifier((4,), max_iter=2, random_state=0).fit, X, y)


def test_without_sklearn_callback_fastnn_falls_back():
    """On a scikit-learn without the module (simulated: fastnn._callbacks re-imported
    with the module's import failing; scikit-learn 1.9 itself needs it, so no fit runs
    here) the mixin gives no set_callbacks and a fit's task is inactive."""
    code = ("import sys, importlib, fastnn; from fastnn import _callbacks\n"
            "sys.modules['sklearn.callback'] = None\n"
            "importlib.reload(_callbacks)\n"
            "task = _callbacks.FitTask(object(), 3, None, None, None, None)\n"
            "print(_callbacks.AVAILABLE, hasattr(_callbacks.CallbackSupportMixin, "
            "'set_callbacks'), task.active, task.step(None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "False", "False", "False"], out.stderr[-2000:]
