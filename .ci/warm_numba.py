"""Compile (into Numba's shared on-disk cache) the Numba kernel signatures the test suite
uses most: the training kernels in float32 and float64, as the estimators call them.

.ci/run starts this on the second core while the suite runs on the first: in a fresh
clone every signature is a cold compile (~25 s each), several minutes of the suite. The
suite compiles anything this misses itself; several processes may write the cache at
once (tests/test_concurrency.py). Changes no result, only when the compiles happen.
"""

import warnings

import numpy as np

warnings.simplefilter("ignore")

from fastnn import MLPClassifier, MLPRegressor, MLPRegressorCV  # noqa: E402

rng = np.random.default_rng(0)
for dtype in (np.float64, np.float32):
    X = rng.normal(size=(60, 4)).astype(dtype)
    y = X[:, 0] - X[:, 1]
    MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, backend="numba").fit(X, y).predict(X)
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, backend="numba").fit(X, y > 0)
    MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, solver="lbfgs", backend="numba").fit(X, y)
    MLPRegressorCV({"alpha": [1e-4]}, hidden_layer_sizes=(4,), max_iter=2, cv=2,
                   backend="numba").fit(X, y)
