"""fastnn: multilayer perceptrons trained on the CPU with compiled hot loops.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for scikit-learn's;
``NeuralNetClassifier`` and ``NeuralNetRegressor`` train a network written with
``fastnn.nn`` (PyTorch's layer names) as scikit-learn estimators;
``fastnn.functional`` and ``fastnn.optim`` expose the kernels with PyTorch's names and
semantics; ``available_backends()`` lists the kernel implementations that work here;
``plot_loss_curve`` and ``plot_validation_curve`` draw a fit's loss curves and a search's
validation curve (with matplotlib, an optional dependency). ``import fastnn`` stays
light: scikit-learn is imported with the estimators, numba with the first numba kernel
(or by ``available_backends()``, which imports each backend to check that it works),
matplotlib with the first plot. It fails at once, saying how to fix it, when run from a
source checkout that is not installed (no compiled ``fastnn.kernels``).

>>> import fastnn
>>> fastnn.available_backends()[-1]
'numpy'
"""

from ._backends import available_backends, check_kernels

# Fail here, with the fix, rather than deep inside the first fit: a source checkout that
# is not installed has no fastnn.kernels (or another checkout's). Finds it, imports nothing.
check_kernels(__path__[0])
del check_kernels

__all__ = ["MLPClassifier", "MLPClassifierCV", "MLPRegressor", "MLPRegressorCV",
           "NeuralNetClassifier", "NeuralNetRegressor",
           "available_backends", "plot_loss_curve", "plot_validation_curve"]
__version__ = "0.1.0"

_LAZY = {"MLPClassifier": "_estimators", "MLPRegressor": "_estimators",
         "MLPClassifierCV": "_search", "MLPRegressorCV": "_search",
         "NeuralNetClassifier": "_neuralnet", "NeuralNetRegressor": "_neuralnet",
         "nn": None,
         "plot_loss_curve": "plotting", "plot_validation_curve": "plotting"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        if _LAZY[name] is None:  # a submodule
            return importlib.import_module(f".{name}", __name__)
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
