"""scikit-learn's estimator checks on both estimators, on every backend: all must pass,
with no expected failures."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnn import MLPClassifier, MLPRegressor, available_backends

ESTIMATORS = [
    Estimator(backend=backend)
    for backend in available_backends()
    for Estimator in (MLPClassifier, MLPRegressor)
] + [MLPRegressor(loss="quantile", quantile=0.3)]  # a loss parameter of its own


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the checks fit few epochs
        check(estimator)
