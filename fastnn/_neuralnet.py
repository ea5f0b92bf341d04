"""NeuralNetClassifier and NeuralNetRegressor: a ``fastnn.nn`` network trained as a
scikit-learn estimator (skorch's names), on the MLPs' engine.

They are the MLP estimators with the network taken from ``module`` instead of
``hidden_layer_sizes`` / ``activation`` / ``negative_slope`` / ``dropout``, and
PyTorch's default initialisation instead of scikit-learn's: every other parameter,
fitted attribute and behaviour is the MLP's (solvers, early stopping, ``partial_fit``,
``warm_start``, ``class_weight``, the loss curves, callbacks, pickling).
"""

import math

import numpy as np

from . import nn
from ._estimators import MLPClassifier, MLPRegressor
from .kernels import layout

DEFAULT_HIDDEN = 100  # units of the default module's hidden layer


class _NeuralNet:
    """What NeuralNetClassifier and NeuralNetRegressor add to the MLP estimators."""

    def _check_network(self):
        if self.module is not None and not isinstance(self.module, nn.Sequential):
            raise TypeError(f"module must be a fastnn.nn.Sequential or None, got "
                            f"{type(self.module).__name__}")

    def _module(self, n_features, n_outputs):
        """``module``, or the default for tabular data: one hidden layer of 100 ReLUs."""
        if self.module is not None:
            return self.module
        return nn.Sequential(nn.Linear(n_features, DEFAULT_HIDDEN), nn.ReLU(),
                             nn.Linear(DEFAULT_HIDDEN, n_outputs))

    def _network(self, n_features, n_outputs):
        module = self._module(n_features, n_outputs)
        shape = self._sample_shape or _flat_sample_shape(module, n_features)
        table = module.table(shape)
        got = int(table[-1, layout.N_OUT])
        if got != n_outputs:
            raise ValueError(
                f"the module's last Linear gives {got} outputs, but these targets need "
                f"{n_outputs} ({self._outputs_meaning()})")
        self.module_ = module
        self.input_shape_ = shape
        return table

    def _initial_params(self, table, dtype):
        return nn.init_params(table, self._random_state, dtype)

    def _fit(self, X, y, *args, **kwargs):
        # the module's input: a sample's shape when X has several dimensions per sample
        self._sample_shape = (tuple(int(s) for s in X.shape[1:])
                              if isinstance(X, np.ndarray) and X.ndim > 2 else None)
        return super()._fit(X, y, *args, **kwargs)

    def _flat(self, X):
        """Samples of several dimensions (n, C, H, W) as rows of C * H * W features (C x H
        x W order, which a leading nn.Flatten() gives)."""
        if isinstance(X, np.ndarray) and X.ndim > 2:
            fitted = getattr(self, "input_shape_", None)
            if fitted is not None and len(fitted) > 1 and X.shape[1:] != fitted:
                raise ValueError(f"X has samples of shape {X.shape[1:]}, but "
                                 f"{type(self).__name__} was fitted on samples of shape "
                                 f"{fitted}")
            return X.reshape(X.shape[0], -1)
        return X

    def state_dict(self):
        """The fitted parameters in PyTorch's ``state_dict`` layout: {"<i>.weight": (out,
        in) or (out, in, kh, kw), "<i>.bias": (out,)} for the Linear or Conv2d at index i
        of ``module_`` (copies)."""
        return nn.state_dict(self.module_, self.input_shape_, self._pack(), self._table)

    def load_state_dict(self, state):
        """Set the parameters of a fitted estimator from a PyTorch-layout ``state``
        (NumPy arrays or torch tensors); returns self."""
        params = nn.load_state_dict(self.module_, self.input_shape_, self._table, state,
                                    self._pack().dtype)
        self._set_params_flat(params, self._table)
        return self


def _flat_sample_shape(module, n_features):
    """The sample shape of flat rows of ``n_features``: (n_features,) for a module that
    starts with a Linear (or Flatten); (C, H, H) square images for one that starts with
    a Conv2d of C input channels."""
    first = next((m for m in module if not isinstance(m, nn.Flatten)), None)
    if isinstance(first, nn.MaxPool2d):
        raise ValueError(f"the module starts with {first!r}, which does not say how many "
                         f"channels a sample of {n_features} features has: pass X as "
                         "(n_samples, C, H, W)")
    if not isinstance(first, nn.Conv2d):
        return (n_features,)
    c = first.in_channels
    side = math.isqrt(n_features // c)
    if side < 1 or c * side * side != n_features:
        raise ValueError(f"X has {n_features} features per sample, which are not "
                         f"{c} channels (as module 0, {first!r}, takes) of square images: "
                         "pass X as (n_samples, C, H, W)")
    return (c, side, side)


def _own_params(cls, drop):
    """``cls``'s parameter constraints without the MLP's network parameters."""
    return {k: v for k, v in cls._parameter_constraints.items() if k not in drop}


_NETWORK_PARAMS = ("hidden_layer_sizes", "activation", "negative_slope", "dropout")
_MODULE_DOC = """\
    module : fastnn.nn.Sequential or None, default=None
        The network, written as in PyTorch (``fastnn.nn``): Linear, Conv2d and MaxPool2d
        layers, each followed by an optional activation (and a Linear by a Dropout),
        Flatten between the images and the Linear layers, ending with a Linear whose raw
        outputs the loss takes. X is (n, C, H, W) images, or rows of features: (n,
        in_features) for a module that starts with a Linear (or a Flatten), (n, C * H * H)
        square images in C x H x W order for one that starts with a Conv2d of C
        channels. None is ``Sequential(Linear(n_features,
        100), ReLU(), Linear(100, n_outputs))``, sized from the data (so that scikit-learn's
        checks and quick trials need none). Initialised as PyTorch's defaults: weights
        and biases uniform in +-1/sqrt(fan_in) (kaiming-uniform with a = sqrt(5)), drawn
        from ``random_state``."""
_ATTRIBUTES_DOC = """\
    module_ : fastnn.nn.Sequential
        The network trained (``module``, or the default).
    input_shape_ : tuple
        The shape of one sample the module takes.
    {mlp_attributes}, coefs_, intercepts_, loss_, loss_curve_, n_iter_, ...
        As {mlp}'s."""
_OTHER_DOC = """\
    The other parameters are {mlp}'s, with its defaults and meanings (solver, alpha,
    batch_size, learning_rate, learning_rate_init, power_t, max_iter, shuffle,
    random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
    early_stopping, validation_fraction, scoring, beta_1, beta_2, epsilon,
    n_iter_no_change, max_fun, {extra}backend)."""


class NeuralNetClassifier(_NeuralNet, MLPClassifier):
    """A ``fastnn.nn`` network trained as a classifier (skorch's name), compiled.

    MLPClassifier with the network given as ``module``: softmax cross-entropy for
    multiclass targets, the binary log-loss on logistic outputs for binary and
    multilabel ones (the module's last Linear gives one output per class, or one for
    binary targets, one per label for multilabel ones).

    Parameters
    ----------
{module}
{other}

    Attributes
    ----------
{attributes}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastnn import NeuralNetClassifier, nn
    >>> X, y = load_iris(return_X_y=True)
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    >>> clf = NeuralNetClassifier(net, max_iter=1000, learning_rate_init=0.01,
    ...                           random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> sorted(clf.state_dict())
    ['0.bias', '0.weight', '2.bias', '2.weight']
    """

    _parameter_constraints = {
        **_own_params(MLPClassifier, _NETWORK_PARAMS),
        "module": [nn.Sequential, None],
    }

    def __init__(self, module=None, *, solver="adam", alpha=0.0001, batch_size="auto",
                 learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, scoring=None, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, backend="auto"):
        for name, value in locals().items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _outputs_meaning(self):
        return "one per class; one for binary targets, one per label for multilabel ones"


class NeuralNetRegressor(_NeuralNet, MLPRegressor):
    """A ``fastnn.nn`` network trained as a regressor (skorch's name), compiled.

    MLPRegressor with the network given as ``module``: its losses (squared_error,
    absolute_error, huber with ``delta``, quantile with ``quantile``, poisson), one
    output per target column.

    Parameters
    ----------
{module}
{other}

    Attributes
    ----------
{attributes}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import NeuralNetRegressor, nn
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1); y = np.abs(X.ravel())
    >>> net = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
    >>> reg = NeuralNetRegressor(net, loss="huber", delta=0.5, solver="lbfgs",
    ...                          random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    _parameter_constraints = {
        **_own_params(MLPRegressor, _NETWORK_PARAMS),
        "module": [nn.Sequential, None],
    }

    def __init__(self, module=None, *, loss="squared_error", solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, scoring=None, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, delta=1.0,
                 quantile=0.5, backend="auto"):
        for name, value in locals().items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _outputs_meaning(self):
        return "one per target column"


for _cls, _mlp, _extra, _attrs in (
        (NeuralNetClassifier, "MLPClassifier", "class_weight, ", "classes_"),
        (NeuralNetRegressor, "MLPRegressor", "loss, delta, quantile, ", "out_activation_")):
    _cls.__doc__ = _cls.__doc__.replace("{module}", _MODULE_DOC).replace(
        "{other}", _OTHER_DOC.format(mlp=_mlp, extra=_extra)).replace(
        "{attributes}", _ATTRIBUTES_DOC.format(mlp=_mlp, mlp_attributes=_attrs))
del _cls, _mlp, _extra, _attrs
