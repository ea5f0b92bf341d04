"""Scale-out on an existing engine: a grid search on a dask.distributed cluster.

The test starts its own LocalCluster (2 worker processes, 1 thread each, no dashboard,
random ports), runs GridSearchCV over the Huber delta of
Pipeline(StandardScaler, MLPRegressor(loss="huber")) under
``joblib.parallel_config(backend="dask")``, and requires exactly the sequential local
search's best_params_ and cv_results_ scores. On a real cluster only the Client changes:
``Client("tcp://scheduler:8786")``. dask[distributed] is a test extra
(``pip install -e ".[test]"``); without it these tests skip, saying so.
"""

import logging
import sys
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import BACKENDS
from fastnn import MLPRegressor

distributed = pytest.importorskip(
    "distributed",
    reason="dask.distributed is not installed: pip install 'dask[distributed]' "
           "(a test extra of fastnn)")

DELTAS = [0.1, 0.5, 1.0, 10.0, 100.0]
pytestmark = pytest.mark.slow  # every test here stands on a LocalCluster of 2 processes


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, scheduler_port=0,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def outliers():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(240, 2))
    y = 2 * X[:, 0] - X[:, 1] + 1 + 0.2 * rng.normal(size=240)
    y[rng.choice(240, 12, replace=False)] += rng.choice([-30, 30], 12)  # 5% gross outliers
    return X, y


def huber_search(backend):
    pipe = make_pipeline(StandardScaler(),
                         MLPRegressor(loss="huber", hidden_layer_sizes=(8,), solver="lbfgs",
                                      max_iter=200, random_state=0, backend=backend))
    return GridSearchCV(pipe, {"mlpregressor__delta": DELTAS}, cv=3,
                        scoring="neg_mean_absolute_error")


def fit(search, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(X, y)


def test_cluster_has_two_worker_processes(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(w["nthreads"] == 1 for w in workers.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_grid_search_over_huber_delta_on_dask_equals_the_local_run(client, outliers, backend):
    X, y = outliers
    local = fit(huber_search(backend), X, y)
    with joblib.parallel_config(backend="dask"):
        remote = fit(huber_search(backend), X, y)

    assert remote.best_params_ == local.best_params_
    assert remote.best_params_["mlpregressor__delta"] < 100.0  # Huber beats ~squared error
    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [
            f"split{i}_test_score" for i in range(3)]:
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key], key)
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))

    # the fits ran in the worker processes: they unpickled the estimator, importing fastnn
    imported = client.run(lambda: "fastnn" in sys.modules)
    assert any(imported.values()), imported
