"""scikit-learn's estimator checks on both estimators, on every backend, and on their
cross-validated forms (MLPRegressorCV, MLPClassifierCV): all must pass,
with one expected failure, for dropout only: a row of weight 3 is one row under one mask,
its three repeats are three rows under three masks, so weights and repeats cannot give
the same fit (the check does pass for every estimator without dropout)."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnn import (
    MLPClassifier, MLPClassifierCV, MLPRegressor, MLPRegressorCV, available_backends,
)

ESTIMATORS = [
    Estimator(backend=backend)
    for backend in available_backends()
    for Estimator in (MLPClassifier, MLPRegressor)
] + [MLPRegressor(loss="quantile", quantile=0.3),  # a loss parameter of its own
      MLPClassifier(dropout=0.2), MLPRegressor(dropout=[0.1]),  # randomness in the epoch
      MLPRegressorCV({"alpha": [1e-4, 1e-3]}, cv=3),  # many models in one call
      MLPClassifierCV({"alpha": [1e-4, 1e-3]}, cv=3)]


def expected_failures(estimator):
    if getattr(estimator, "dropout", 0.0) == 0.0:
        return {}
    reason = "dropout draws one mask per row: a weighted row is not its repeats"
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the checks fit few epochs
        check(estimator)
