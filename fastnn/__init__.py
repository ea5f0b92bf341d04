"""fastnn: multilayer perceptrons trained on the CPU with compiled hot loops.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for scikit-learn's;
``fastnn.functional`` and ``fastnn.optim`` expose the kernels with PyTorch's names and
semantics; ``available_backends()`` lists the kernel implementations that work here.
``import fastnn`` stays light: scikit-learn is imported with the estimators, numba with
the first numba kernel.
"""

from ._backends import available_backends

__all__ = ["MLPClassifier", "MLPRegressor", "available_backends"]
__version__ = "0.1.0"


def __getattr__(name):
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import _estimators

        return getattr(_estimators, name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
