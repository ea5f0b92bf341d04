"""Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor.

The classes are thin: they validate parameters and data, encode targets, pick the dtype
and the backend, build the network, and call the engine (``_engine``), which calls the
compiled kernels. No arithmetic happens here.
"""

import contextlib
import copy
import functools
import inspect
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, check_scoring, get_scorer_names, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _backends, _callbacks, _engine
from . import kernels as _k
from .kernels import layout

# scikit-learn's stochastic solvers: the kernels' optimizers (Nesterov is a flag of sgd)
_STOCHASTIC = tuple(name for name in _k.OPTIMIZERS if name != "sgd_nesterov")
_OPTION_NAMES = _engine.OPTION_NAMES  # the hyperparameters the engine takes, by name
_ACTIVATIONS = tuple(name for name in _k.ACTIVATIONS if name != "softmax")  # of hidden units
_REGRESSION_LOSSES = tuple(name for name, code in _k.LOSSES.items() if code in (
    _k.SQUARED_ERROR, _k.ABSOLUTE_ERROR, _k.HUBER, _k.QUANTILE, _k.POISSON))
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))
_SEED_STATES = {}  # int seed -> RandomState(seed).get_state(), see _seeded_random_state


@functools.cache
def _defaults(cls):
    """The default of each parameter of ``cls.__init__``."""
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.default is not inspect.Parameter.empty}


@functools.cache
def _param_names(cls):
    """BaseEstimator._get_param_names, once per class (it inspects ``__init__``'s
    signature: 0.1 ms of every fit, through the parameter validation's get_params)."""
    return tuple(BaseEstimator._get_param_names.__func__(cls))


_SCALARS = (type(None), bool, int, float, str)


def _params_key(params):
    """A hashable key equal only for equal parameters of equal types (``True == 1 ==
    1.0`` as Python values), or None if a value is not a plain scalar, string or tuple
    of them (a RandomState, a list: validated every time)."""
    key = []
    for name, v in params.items():
        kind = type(v)
        if kind is tuple:
            if not all(type(a) in _SCALARS for a in v):
                return None
            v = tuple((type(a), a) for a in v)
        elif kind not in _SCALARS:
            return None
        key += (name, kind, v)
    return tuple(key)


# per class, parameter keys (_params_key) that passed validation in this process
_VALID_PARAMS = {}


def _label_binarizer(classes):
    """``LabelBinarizer().fit(y)`` for a 1-D integer ndarray y whose sorted distinct
    labels are ``classes``: the same fitted attributes, without type_of_target (which
    needs nothing but the number of labels here: more than 2 is "multiclass")."""
    binarizer = LabelBinarizer()
    binarizer.y_type_ = "multiclass" if len(classes) > 2 else "binary"
    binarizer.sparse_input_ = False
    binarizer.classes_ = classes
    return binarizer


@dataclass
class _Plan:
    """A fit's inputs before it trains (_BaseMLP._plan): the engine's problem, options
    and starting state (flat parameters for lbfgs), the network's table, the training
    data as the kernels take it, the Poisson constant, the callbacks' task, which of the
    given rows train (``rows``) and early stopping's validation rows."""

    problem: _engine.Problem
    options: _engine.Options
    state: object
    table: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray
    constant: object
    task: _callbacks.FitTask
    rows: np.ndarray
    validation: object = None


class _BaseMLP(_callbacks.CallbackSupportMixin, BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, fitting, the forward pass."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS)), list, tuple],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "solver": [StrOptions({"lbfgs", *_STOCHASTIC})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "scoring": [StrOptions(set(get_scorer_names()) | {"loss"}), callable, None],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"auto", *_backends.BACKENDS})],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, scoring, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, negative_slope, dropout, backend):
        """The parameters both estimators take (each subclass adds its own and gives
        the defaults, as scikit-learn's MLPs do)."""
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.backend = backend

    @classmethod
    def _get_param_names(cls):
        return list(_param_names(cls))

    def _validate_params(self):
        """scikit-learn's parameter validation, run once per distinct set of parameter
        values and types: it is deterministic, and ~0.2 ms of every fit (a third of a
        small one). Invalid parameters raise every time, as they are never recorded."""
        key = _params_key(self.get_params(deep=False))
        valid = _VALID_PARAMS.setdefault(type(self), set())
        if key is None or key not in valid:
            super()._validate_params()
            if key is not None:
                if len(valid) >= 1024:  # many searches in one process: start again
                    valid.clear()
                valid.add(key)

    # ------------------------------------------------------------------ configuration

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(s <= 0 for s in sizes):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden):
        """The int64 kernel codes of the hidden layers' activations, one per layer."""
        act = self.activation
        if isinstance(act, str):
            act = [act] * n_hidden
        if len(act) != n_hidden or any(a not in _ACTIVATIONS for a in act):
            raise ValueError(
                f"activation given as a list must name one of {_ACTIVATIONS} for each "
                f"of the {n_hidden} hidden layers, got {self.activation!r}"
            )
        return np.array([_k.ACTIVATIONS[a] for a in act], dtype=np.int64)

    def _hidden_dropout(self, n_hidden):
        """The dropout probability of each hidden layer's outputs (floats in [0, 1))."""
        drop = self.dropout
        drops = [drop] * n_hidden if np.ndim(drop) == 0 else list(np.ravel(drop))
        if len(drops) != n_hidden or not all(
                isinstance(p, Real) and not isinstance(p, bool) and 0 <= p < 1 for p in drops):
            raise ValueError(
                f"dropout must be a probability in [0, 1) for every hidden layer, or a list "
                f"of one for each of the {n_hidden} hidden layers, got {self.dropout!r}"
            )
        return [float(p) for p in drops]

    def _layer_activations(self, n_layers):
        """The activation name of each layer's units, for the initialisation's scale
        (scikit-learn uses the hidden activation for every layer, the output's too)."""
        act = self.activation
        if isinstance(act, str):
            return [act] * n_layers
        return list(act) + [act[-1] if len(act) else "relu"]

    def _problem(self, table):
        return _engine.Problem(
            kernels=_backends.get_kernels(self.backend_),
            table=table,
            loss=self._loss_code(),
            loss_param=self._loss_param(),
            alpha=float(self.alpha),
            report_divisor=self._report_divisor(),
        )

    def _loss_param(self):
        return float(np.finfo(self._dtype).eps)

    def _report_divisor(self):
        return 1.0

    # ------------------------------------------------------------------ fitting

    @contextlib.contextmanager
    def _unchanged_on_error(self):
        """Leave the estimator exactly as it was if the block raises: bad data in a refit
        or a partial_fit must not damage a fitted model.

        Training itself cannot damage it (the engine returns a new state, committed only
        on success); this guards the attributes that validation sets first (classes_,
        n_features_in_, ...). O(1) per call, whatever the history: fits replace arrays
        instead of writing them and only append to lists (the loss and validation
        curves), so the attributes and the lists' lengths are all there is to restore.
        """
        saved = dict(self.__dict__)
        lengths = [(v, len(v)) for v in saved.values() if type(v) is list]
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            for curve, length in lengths:
                del curve[length:]
            raise

    def _validate_fast(self, X, y, y_kinds, reset, multi_output=False):
        """``validate_data(self, X, y, ...)`` when X and y are already what it returns:
        X a 2-D finite float ndarray, y a 1-D ndarray (or with several columns, if
        ``multi_output``) of as many rows and a dtype kind in ``y_kinds``, finite. Its
        feature checks run as in validate_data; returns None for anything else, which
        validate_data then checks (with its messages)."""
        if not (type(X) is np.ndarray and type(y) is np.ndarray and X.ndim == 2
                and X.dtype in _FLOATS and X.shape[0] > 0 and X.shape[1] > 0
                and y.shape[:1] == X.shape[:1] and y.dtype.kind in y_kinds
                and (y.ndim == 1 or multi_output and y.ndim == 2 and y.shape[1] > 1)):
            return None
        # a sum is finite only if every term is (an overflow falls back, to be sure)
        if not (np.isfinite(X.sum()) and (y.dtype.kind != "f" or np.isfinite(y.sum()))):
            return None
        self._check_features(X, reset)
        return X, y

    def _check_features(self, X, reset):
        """validate_data's feature-name and feature-count checks for an ndarray X (it
        has no feature names), with their messages."""
        if reset:
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = X.shape[1]
            return
        if hasattr(self, "feature_names_in_"):
            warnings.warn(
                "X does not have valid feature names, but "
                f"{type(self).__name__} was fitted with feature names", UserWarning)
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _network(self, n_features, n_outputs):
        """The layer table of the network for ``n_features`` inputs and ``n_outputs``."""
        hidden = self._hidden_sizes()
        return layout.dense_table([n_features] + hidden + [n_outputs],
                                  self._hidden_activations(len(hidden)),
                                  float(self.negative_slope),
                                  dropout=self._hidden_dropout(len(hidden)))

    def _check_network(self):
        """The network's parameters, checked before the data (their errors come first)."""
        self._hidden_sizes()

    def _initial_params(self, table, dtype):
        """scikit-learn's Glorot-uniform initialisation."""
        return layout.init_params(table, self._layer_activations(len(table)),
                                  self._random_state, dtype)

    def _flat(self, X):
        """X as the kernels take it (NeuralNet*: samples of several dimensions flattened)."""
        return X

    def _fit(self, X, y, sample_weight=None, incremental=False,
             validation_set=(None, None, None)):
        plan = self._plan(X, y, sample_weight, incremental, validation_set)
        if self.solver == "lbfgs":
            params, self.n_iter_, self.loss_ = _engine.fit_lbfgs(
                plan.problem, plan.options, plan.state, plan.X, plan.Y, plan.sample_weight,
                plan.constant, on_iteration=functools.partial(
                    plan.task.step, task_name="iteration") if plan.task.active else None)
            if not np.isfinite(params).all():  # scipy ended at non-finite weights
                raise ValueError(_engine.NONFINITE_MESSAGE)
            self._set_params_flat(params, plan.table)
            plan.task.end(params)
            return self
        state, history = _engine.fit_stochastic(
            plan.problem, plan.options, plan.state, plan.X, plan.Y, plan.sample_weight,
            self._random_state, incremental=incremental, validation=plan.validation,
            poisson_constant=plan.constant,
            on_epoch=plan.task.step if plan.task.active else None)
        self._commit(state, history, plan.table)
        plan.task.end(state.params)
        return self

    def _plan(self, X, y, sample_weight=None, incremental=False,
              validation_set=(None, None, None)):
        """Everything a fit needs before it trains, as a :class:`_Plan`: the data
        validated and encoded, the network, its initial weights (``state``: the flat
        parameters for lbfgs, else the engine's TrainState) and, for a stochastic fit,
        early stopping's held-out rows. Sets what validation sets (classes_,
        n_features_in_, ...) and, on a first fit, resets the fitted state; draws from
        the random state exactly as the fit does. ``plan.rows`` are the rows of X the
        training part holds, in its order (early stopping's split shuffles them)."""
        self._check_network()
        X = self._flat(X)
        if validation_set[0] is not None:
            validation_set = (self._flat(validation_set[0]), *validation_set[1:])
        given = self._check_validation_set(*validation_set)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sparse.issparse(X):  # the kernels work on dense rows
            X = X.toarray()
        X = np.ascontiguousarray(X)
        self._dtype = X.dtype
        Y = self._encode(y)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        Y = np.ascontiguousarray(Y, dtype=X.dtype)
        sample_weight = self._sample_weight(sample_weight, X, y)

        self.n_outputs_ = Y.shape[1]
        self._random_state = self._seeded_random_state()
        self.backend_ = _backends.resolve(self.backend)
        table = self._network(X.shape[1], self.n_outputs_)
        if layout.has_dropout(table) and self.solver == "lbfgs":
            raise ValueError(
                "dropout needs a stochastic solver (sgd, adam or rmsprop): L-BFGS needs "
                "one deterministic loss to minimise, and dropout draws new masks at every "
                "step; set the dropout to 0 or choose another solver")
        if first_pass:
            params = self._initialize(table, X.dtype)
        elif [c.shape for c in self.coefs_] != [layout.weight_shape(r) for r in table]:
            raise ValueError(
                f"the network's weights have shapes {[c.shape for c in self.coefs_]}; this "
                f"data needs {[layout.weight_shape(r) for r in table]} (layer sizes "
                f"{layout.layer_sizes(table)})")
        else:
            params = self._pack(X.dtype).copy()  # trained on a copy: coefs_ intact on error
        problem = self._problem(table)
        constant = self._loss_constant(Y)
        options = _engine.Options(**{name: getattr(self, name) for name in _OPTION_NAMES})
        task = _callbacks.FitTask(self, 1 if incremental else self.max_iter, X, y,
                                  sample_weight, table)
        rows = np.arange(X.shape[0], dtype=np.int64)
        plan = _Plan(problem, options, params, table, X, Y, sample_weight, constant, task,
                     rows)
        if self.solver == "lbfgs":
            return plan
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        plan.state = self._train_state(params, incremental)  # before the split: no draws
        if given:
            plan.validation = self._given_validation(*validation_set, dtype=X.dtype)
        elif self.early_stopping:
            (plan.X, plan.Y, plan.sample_weight, plan.constant, plan.rows), plan.validation = (
                self._validation_split(X, Y, sample_weight, constant, self._split_labels(y),
                                       rows))
        if plan.validation is not None:
            task.score_on(plan.validation.X,
                          self._decode_validation_targets(plan.validation.Y),
                          plan.validation.sample_weight)
        if layout.has_dropout(table):  # drawn last: the split is the one without dropout
            problem.dropout_seed = int(self._random_state.randint(2**62, dtype=np.int64))
        return plan

    def _seeded_random_state(self):
        """``check_random_state(self.random_state)``, for an int seed by reseeding this
        estimator's previous RandomState with ``set_state`` (60 us) rather than making a
        new one (170 us, a quarter of a 64-row fit): the same draws either way."""
        seed = self.random_state
        rs = self.__dict__.get("_random_state")
        if not isinstance(seed, Integral) or isinstance(seed, bool) or rs is None:
            return check_random_state(seed)
        state = _SEED_STATES.get(seed)
        if state is None:
            if len(_SEED_STATES) >= 64:
                _SEED_STATES.clear()
            state = _SEED_STATES[seed] = np.random.RandomState(seed).get_state()
        rs.set_state(state)
        return rs

    def _initialize(self, table, dtype):
        """Reset the fitted state for a first fit; returns the initial weights, a new flat
        buffer that the fit trains (coefs_ are set from the result)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(table) + 1
        self.out_activation_ = self._out_activation()
        params = self._initial_params(table, dtype)
        self._table = table  # the network that early stopping's scores predict with
        self._optimizer = None
        self._best_params = None
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        return params

    def _train_state(self, params, incremental):
        """The engine's starting state, from the fitted attributes: ``t_``, the stopping
        rule's best values and counter, and the optimizer, which partial_fit continues
        and fit starts anew (scikit-learn's rule, warm_start included)."""
        optimizer = getattr(self, "_optimizer", None)
        if not incremental or optimizer is None:
            optimizer = _engine.OptimizerState.new(params.size, params.dtype,
                                                   self.learning_rate_init)
        best_loss = getattr(self, "best_loss_", None)
        best_score = getattr(self, "best_validation_score_", None)
        return _engine.TrainState(
            params, optimizer, t=self.t_,
            best_loss=np.inf if best_loss is None else best_loss,
            best_validation_score=-np.inf if best_score is None else best_score,
            best_params=getattr(self, "_best_params", None),
            no_improvement_count=getattr(self, "_no_improvement_count", 0))

    def _validation_split(self, X, Y, sample_weight, constant, y, rows):
        """Early stopping's held-out rows, drawn as scikit-learn draws them (stratified
        by class for single-label classification): returns the training rows (X, Y,
        sample_weight, constant, rows: which of the given rows they are) and an
        ``_engine.Validation`` of the rest."""
        stratify = y if self._stratify_validation else None
        X, X_val, Y, Y_val, sample_weight, sw_val, rows, _, *const = train_test_split(
            X, Y, sample_weight, rows, *(() if constant is None else (constant,)),
            random_state=self._random_state, test_size=self.validation_fraction,
            stratify=stratify)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if not np.sum(sw_val) > 0:
            raise ValueError("The validation set has zero total sample_weight.")
        X, Y, sample_weight = (np.ascontiguousarray(a) for a in (X, Y, sample_weight))
        X_val, Y_val, sw_val = (np.ascontiguousarray(a) for a in (X_val, Y_val, sw_val))
        y_val = self._decode_validation_targets(Y_val)
        return ((X, Y, sample_weight, const[0] if const else None, rows),
                _engine.Validation(X_val, Y_val, sw_val, self._scorer(X_val, y_val, sw_val)))

    def _check_validation_set(self, X_val, y_val, sample_weight_val):
        """Whether fit got a validation set of its own; errors for one it cannot use."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val was given without X_val and y_val")
            return False
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val go together: pass both, or neither")
        if not self.early_stopping or self.solver == "lbfgs":
            raise ValueError(
                "X_val and y_val are early stopping's validation set: they need "
                "early_stopping=True and a stochastic solver (sgd, adam, rmsprop), got "
                f"early_stopping={self.early_stopping}, solver={self.solver!r}")
        return True

    def _given_validation(self, X_val, y_val, sample_weight_val, dtype):
        """fit's own validation set, validated as X and y (the features the network was
        built for; for a classifier, labels among classes_, not all needed)."""
        try:
            X_val, y_val = validate_data(self, X_val, y_val, reset=False, multi_output=True,
                                         accept_sparse=["csr", "csc"], dtype=dtype,
                                         y_numeric=isinstance(self, RegressorMixin))
        except ValueError as exc:  # its messages say X and y
            raise ValueError(f"X_val, y_val: {exc}") from None
        if sparse.issparse(X_val):
            X_val = X_val.toarray()
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val)
        self._check_validation_targets(y_val)
        Y_val = self._encode(y_val)
        Y_val = np.ascontiguousarray(Y_val.reshape(len(y_val), -1), dtype=dtype)
        if Y_val.shape[1] != self.n_outputs_:
            raise ValueError(f"y_val has {Y_val.shape[1]} outputs, y has {self.n_outputs_}")
        sw_val = self._sample_weight(sample_weight_val, X_val, y_val)
        X_val = np.ascontiguousarray(X_val)
        return _engine.Validation(X_val, Y_val, sw_val, self._scorer(X_val, y_val, sw_val))

    def _check_validation_targets(self, y_val):
        pass

    def _scorer(self, X_val, y_val, sw_val):
        """What early stopping watches (see ``scoring``): params -> score, higher better;
        None for the validation loss (the engine scores it)."""
        if self.scoring is None:
            return functools.partial(self._score_params, X=X_val, y=y_val,
                                     sample_weight=sw_val)
        if self.scoring == "loss":
            return None
        scorer = check_scoring(self, self.scoring)
        snapshot = copy.copy(self)  # predicts with each epoch's weights, not with self's

        def score(params):
            snapshot._set_params_flat(params, self._table)
            return scorer(snapshot, X_val, y_val, sample_weight=sw_val)

        return score

    def _commit(self, state, history, table):
        """Copy a successful stochastic fit's results into the fitted attributes."""
        self.n_iter_ = history.n_iter
        if history.loss is not None:
            self.loss_ = history.loss
        self.t_ = state.t
        self.loss_curve_.extend(history.loss_curve)  # appended, so an undo is O(1)
        if self.early_stopping:
            self.validation_scores_.extend(history.validation_scores)
            self.validation_loss_curve_.extend(history.validation_loss_curve)
            self.best_validation_score_ = state.best_validation_score
        else:
            self.best_loss_ = state.best_loss
        self._no_improvement_count = state.no_improvement_count
        self._best_params = state.best_params
        self._optimizer = state.optimizer
        self._set_params_flat(state.params, table)

    def _set_params_flat(self, params, table):
        """Store the flat buffer and the network's table; coefs_ and intercepts_ are
        views of the buffer."""
        self._params, self._table = params, table
        self.coefs_, self.intercepts_ = layout.unflatten(params, table)

    def _pack(self, dtype=None):
        """The flat parameter buffer, rebuilt from coefs_/intercepts_ unless they are
        still views of it (they are not after unpickling or if a user replaced them)."""
        params = getattr(self, "_params", None)
        linked = params is not None and all(
            a.base is params for a in self.coefs_ + self.intercepts_)
        if not linked:
            params = np.concatenate([np.ravel(a) for pair in zip(self.coefs_, self.intercepts_)
                                     for a in pair])
        if dtype is not None and params.dtype != dtype:
            params = params.astype(dtype)
        return params

    def _sample_weight(self, sample_weight, X, y):
        if sample_weight is None and getattr(self, "class_weight", None) is None:
            return np.ones(X.shape[0], dtype=X.dtype)
        sw = (np.ones(X.shape[0]) if sample_weight is None else
              _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True))
        if getattr(self, "class_weight", None) is not None:
            if isinstance(self.class_weight, dict):
                classes = set(self.classes_.tolist())
                unknown = [label for label in self.class_weight if label not in classes]
                if unknown:
                    raise ValueError(
                        f"class_weight has labels that are not classes: {unknown}; the "
                        f"classes are {self.classes_.tolist()}"
                    )
            sw = sw * compute_sample_weight(self.class_weight, y)
        if not np.sum(sw) > 0:
            raise ValueError("sample_weight must have a positive sum, got all zeros")
        return np.ascontiguousarray(sw, dtype=X.dtype)

    def _loss_constant(self, Y):
        return None

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def _split_labels(self, y):
        return None

    # ------------------------------------------------------------------ prediction

    def _check_X_predict(self, X):
        """Validate X for prediction: a fast path for finite float ndarrays (the checks
        and messages of validate_data, without its generic machinery), else validate_data."""
        if not hasattr(self, "coefs_"):
            check_is_fitted(self)
        X = self._flat(X)
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FLOATS
                and X.shape[0] > 0 and np.isfinite(X).all()):
            self._check_features(X, reset=False)
        else:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            if sparse.issparse(X):
                X = X.toarray()
        return np.ascontiguousarray(X, dtype=self.coefs_[0].dtype)

    def _raw(self, X, params=None):
        """Raw network outputs (before the output activation) for validated X."""
        params = self._pack() if params is None else params
        table = self._table
        kernels = _backends.get_kernels(getattr(self, "backend_", None) or self.backend)
        raw = np.empty((X.shape[0], self.n_outputs_), dtype=params.dtype)
        work = np.empty(layout.forward_workspace_size(table, X.shape[0]), dtype=params.dtype)
        with _engine.blas_threads(table, X.shape[0]):
            kernels.forward(X, params, table, work, raw)
        return raw, kernels

    def _forward(self, X, params=None):
        """Network outputs for validated X, after the output activation."""
        return self._activated(*self._raw(X, params))

    def _activated(self, raw, kernels):
        """The output activation applied to raw outputs, in place."""
        if self.out_activation_ == "softmax":
            kernels.activation(raw, _k.SOFTMAX, 0.0, raw)
        elif self.out_activation_ == "logistic":
            kernels.activation(raw, _k.LOGISTIC, 0.0, raw)
        elif self.out_activation_ == "exp":
            np.exp(raw, out=raw)
        return raw

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __setstate__(self, state):
        for name, default in _defaults(type(self)).items():  # pickled before they existed
            state.setdefault(name, default)
        schedule = state.pop("_schedule", None)  # fastnn 0.1's optimizer state
        if schedule is not None:
            state["_optimizer"] = _engine.OptimizerState(
                schedule.state, schedule.step, schedule.learning_rate)
        super().__setstate__(state)
        if "coefs_" in state:  # pickling copies the views: relink them to one buffer
            if "_table" not in state:  # pickled by fastnn 0.1 before the layer table
                sizes = [c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]
                self._table = layout.dense_table(sizes, state["_hidden_acts"],
                                                 state["_negative_slope"])
            self._table = layout.with_all_columns(self._table)  # pickled with fewer
            self._params = None
            self._set_params_flat(self._pack(), self._table)


# The parts of the two estimators' docstrings that are the same (their parameters
# and fitted attributes), written once; each class formats them into its own.
_DOC_PARTS = {
    "parameters": """\
    hidden_layer_sizes : array-like of int, default=(100,)
        Units of each hidden layer; ``()`` for none (a linear model).
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or list, default="relu"
        Activation of the hidden layers: one for all, or a list with one per hidden layer.
    solver : {"lbfgs", "sgd", "adam", "rmsprop"}, default="adam"
        "sgd" with momentum, "adam" and "rmsprop" train in shuffled mini-batches (one
        compiled call per epoch); "lbfgs" is scipy's full-batch L-BFGS-B.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``alpha / 2 * ||W||**2`` (weights, not biases).
    batch_size : int or "auto", default="auto"
        Mini-batch size of the stochastic solvers; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning-rate schedule of solver="sgd".
    learning_rate_init : float, default=0.001
        Initial step size of the stochastic solvers.
    power_t : float, default=0.5
        Exponent of the "invscaling" schedule.
    max_iter : int, default=200
        Epochs of the stochastic solvers, iterations of L-BFGS.
    shuffle : bool, default=True
        Shuffle the rows every epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffles and the early-stopping split (the same
        draws as scikit-learn's from the same seed).
    tol : float, default=1e-4
        Improvement below which an epoch counts as no progress (see ``n_iter_no_change``).
    verbose : bool, default=False
        Print the loss of every epoch.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    momentum : float, default=0.9
        Momentum of solver="sgd" (and of "rmsprop").
    nesterovs_momentum : bool, default=True
        Nesterov momentum for solver="sgd".
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when their score stops
        improving; records ``validation_scores_`` and ``validation_loss_curve_``.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping (unless ``fit`` gets ``X_val``).
    scoring : str, callable or None, default=None
        What early stopping watches on the held-out rows (HistGradientBoosting's
        convention): None, the estimator's ``score`` (scikit-learn's MLP: accuracy or
        R**2); "loss", the validation loss (``validation_scores_`` then holds minus
        ``validation_loss_curve_``: the lowest loss wins); or a scikit-learn scorer's
        name or a callable ``scorer(estimator, X, y, sample_weight=...)``. The best
        epoch's weights end the fit in every case.
    beta_1 : float, default=0.9
        Decay of Adam's first moment.
    beta_2 : float, default=0.999
        Decay of Adam's second moment and of RMSprop's mean square.
    epsilon : float, default=1e-8
        Numerical stability term of Adam and RMSprop.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum loss evaluations of L-BFGS.
    negative_slope : float, default=0.01
        Slope of "leaky_relu" for negative inputs.
    dropout : float or list of float, default=0.0
        Inverted dropout of the hidden layers' outputs in training (one probability for
        every hidden layer, or a list with one per hidden layer): each unit is zeroed
        with probability p and the kept ones scaled by 1 / (1 - p); prediction uses the
        whole network. The masks are drawn in the compiled epoch from a hash of (seed,
        step, layer, unit), the seed drawn from ``random_state``: the same seed gives the
        same fit, on any backend and number of threads. ``loss_curve_`` is the training
        loss with dropout; the validation loss and scores are without. Stochastic
        solvers only.""",
    "backend": """\
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Kernel implementation; "auto" is the fastest available (see
        :func:`fastnn.available_backends`).""",
    "attributes": """\
    loss_ : float
        Loss of the last epoch (or of the L-BFGS solution), penalty included.
    best_loss_ : float or None
        Lowest ``loss_`` seen (None with early stopping).
    loss_curve_ : list of float
        ``loss_`` of every epoch (stochastic solvers).
    validation_scores_ : list of float or None
        Score on the held-out rows after every epoch (with early stopping).
    validation_loss_curve_ : list of float
        Weighted mean loss on the held-out rows after every epoch, no penalty (with early
        stopping; fastnn's addition).
    best_validation_score_ : float or None
        Best of ``validation_scores_``.
    t_ : int
        Training rows seen by the solver so far.
    coefs_ : list of ndarray
        Weight matrix of each layer, shape (n_in, n_out); views of one flat buffer.
    intercepts_ : list of ndarray
        Bias vector of each layer.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit`` (only when X had string column names).
    n_iter_ : int
        Epochs (or L-BFGS iterations) run by the last ``fit``.
    n_layers_ : int
        Layers, input and output included.
    n_outputs_ : int
        Output units.""",
    "tail": """\
    backend_ : str
        The kernel implementation used.

    See Also
    --------
    fastnn.plot_loss_curve : training and validation loss per epoch.""",
}


def _documented(cls):
    """Fill the class docstring's ``{parameters}``, ``{backend}``, ``{attributes}`` and
    ``{tail}`` lines, and fit's ``{fit_validation}``, from _DOC_PARTS."""
    for name, text in _DOC_PARTS.items():
        cls.__doc__ = cls.__doc__.replace("{%s}" % name, text)
    cls.fit.__doc__ = cls.fit.__doc__.replace("        {fit_validation}",
                                              _FIT_VALIDATION_DOC)
    return cls


_FIT_VALIDATION_DOC = """\
        X_val : array-like or sparse matrix of shape (n_val, n_features), default=None
            Early stopping's validation set, instead of holding out
            ``validation_fraction`` of X (HistGradientBoosting's convention); needs
            ``early_stopping=True``. Validated as X (the same features). In a
            Pipeline, X_val reaches the estimator through scikit-learn's metadata
            routing: ``sklearn.set_config(enable_metadata_routing=True)``,
            ``est.set_fit_request(X_val=True, y_val=True)`` and
            ``Pipeline(steps, transform_input=["X_val"])``, which runs X_val through
            the steps before the estimator as it runs X.
        y_val : array-like, default=None
            Its targets, as y (for a classifier, labels among y's; not all needed).
        sample_weight_val : array-like of shape (n_val,), default=None
            Its row weights (None: all 1), in the score and the validation loss."""


@_documented
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's MLPClassifier, compiled.

    Same parameters, defaults, attributes and behaviour as
    ``sklearn.neural_network.MLPClassifier``, plus ``activation="leaky_relu"`` with
    ``negative_slope``, ``solver="rmsprop"``, ``class_weight``, ``backend`` and
    ``validation_loss_curve_`` (with early stopping). Multiclass targets use a softmax
    output and cross-entropy; binary and multilabel targets logistic outputs and the
    binary log-loss (probabilities clipped to [eps, 1 - eps], eps of the data's dtype).

    Parameters
    ----------
{parameters}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` ("balanced": inversely
        proportional to the class frequencies).
{backend}

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
{attributes}
    out_activation_ : str
        The output activation: "softmax" (multiclass) or "logistic".
{tail}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastnn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    # scikit-learn's MLPClassifier.loss: not a parameter, but plots and user code read it
    loss = "log_loss"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 scoring=None,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 negative_slope=0.01, dropout=0.0, class_weight=None, backend="auto"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            scoring=scoring,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            negative_slope=negative_slope, dropout=dropout, backend=backend)
        self.class_weight = class_weight

    def _validate_input(self, X, y, incremental, reset):
        fast = self._validate_fast(X, y, "iu", reset)  # integer labels, 1-D
        if fast is None:
            X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 dtype=(np.float64, np.float32), reset=reset)
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
        else:
            X, y = fast
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            if fast is None:
                self._label_binarizer = LabelBinarizer()
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer = _label_binarizer(np.unique(y))
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y) if fast is None else np.unique(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, y

    def _encode(self, y):
        classes = self.classes_
        if not (type(y) is np.ndarray and y.ndim == 1 and not self._multilabel
                and np.result_type(y, classes).kind in "iu"):  # integers, no float mixing
            return self._label_binarizer.transform(y)
        # label_binarize for integer labels, all in classes (checked in _validate_input):
        # one-hot columns for 3+ classes, the second class's column for 2, zeros for 1
        if len(classes) == 1:
            return np.zeros((len(y), 1), dtype=int)
        Y = np.zeros((len(y), len(classes)), dtype=int)
        Y[np.arange(len(y)), np.searchsorted(classes, y)] = 1
        return Y[:, 1:] if len(classes) == 2 else Y

    def _check_validation_targets(self, y_val):
        labels = unique_labels(y_val)
        unknown = np.setdiff1d(labels, self.classes_)
        if len(unknown):
            raise ValueError(f"y_val has labels that y does not have: {unknown.tolist()}; "
                             f"the classes are {self.classes_.tolist()}")

    @property
    def _multilabel(self):
        return self._label_binarizer.y_type_.startswith("multilabel")

    @property
    def _stratify_validation(self):
        return not self._multilabel

    def _split_labels(self, y):
        return y

    def _decode_validation_targets(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val.ravel() if Y_val.shape[1] == 1
                                                       else Y_val)

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _loss_code(self):
        if self.out_activation_ == "softmax":
            return _k.SOFTMAX_CROSS_ENTROPY
        return _k.BINARY_LOG_LOSS

    def _predict_from_proba(self, proba):
        if len(self.classes_) == 1:  # one class seen: it is always the answer
            return np.repeat(self.classes_, len(proba))
        if self._multilabel:
            return (proba > 0.5).astype(int)
        if proba.shape[1] == 1:
            return self.classes_[(proba[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[np.argmax(proba, axis=1)]

    def _score_params(self, params, X, y, sample_weight):
        proba = self._forward(X, params)
        if not np.isfinite(proba).all():
            return np.nan
        return accuracy_score(y, self._predict_from_proba(proba), sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to X and the class labels y (1-D, or an indicator matrix for
        multilabel), optionally weighting samples by ``sample_weight``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data; float32 data trains in float32, anything else in float64.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a label indicator matrix for multilabel.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row (None: all 1).
        {fit_validation}

        Returns
        -------
        self : MLPClassifier
            The fitted estimator. If fitting raises, the estimator is left as it was.

        Examples
        --------
        >>> from fastnn import MLPClassifier
        >>> X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
        >>> y = [0, 1, 1, 0]
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs",
        ...                     random_state=0)
        >>> clf.fit(X, y).predict(X).tolist()
        [0, 1, 1, 0]
        """
        with self._unchanged_on_error():
            return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                             validation_set=(X_val, y_val, sample_weight_val))

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call.

        Only for the stochastic solvers ("sgd", "adam", "rmsprop").

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Its class labels (or label indicator matrix).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row.
        classes : array-like, default=None
            Every class label the model will see; required on the first call only.

        Returns
        -------
        self : MLPClassifier
            The updated estimator.

        Examples
        --------
        >>> from fastnn import MLPClassifier
        >>> X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
        >>> y = [0, 1, 1, 0]
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
        >>> clf = clf.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
        >>> clf.t_, len(clf.loss_curve_), clf.classes_.tolist()
        (8, 2, [0, 1])
        """
        with self._unchanged_on_error():
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                labels = type(y) is np.ndarray and y.ndim == 1 and y.dtype.kind in "iu"
                if not labels and type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted class labels (an indicator matrix for multilabel).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_`` (0/1 indicators for multilabel).

        Examples
        --------
        >>> from fastnn import MLPClassifier
        >>> X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
        >>> y = [0, 1, 1, 0]
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs",
        ...                     random_state=0)
        >>> clf.fit(X, y).predict([[0.0, 1.0], [1.0, 1.0]])
        array([1, 0])
        """
        return self._labels(self._raw(self._check_X_predict(X))[0])

    def _labels(self, raw):
        """Labels from raw outputs: softmax keeps the argmax and sigmoid(z) > 1/2 iff
        z > 0, so no output activation."""
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, len(raw))
        if self._multilabel:
            return (raw > 0).astype(int)
        if raw.shape[1] == 1:
            return self.classes_[(raw[:, 0] > 0).astype(np.intp)]
        return self.classes_[np.argmax(raw, axis=1)]

    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities; each row sums to 1 except for multilabel targets.

        Examples
        --------
        >>> from fastnn import MLPClassifier
        >>> X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
        >>> y = [0, 1, 1, 0]
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs",
        ...                     random_state=0)
        >>> clf.fit(X, y).predict_proba([[0.0, 1.0]]).round(2)
        array([[0., 1.]])
        """
        return self._proba(self._forward(self._check_X_predict(X)))

    @staticmethod
    def _proba(outputs):
        """predict_proba's columns from the activated outputs."""
        if outputs.shape[1] == 1:
            return np.hstack([1 - outputs, outputs])
        return outputs

    def predict_log_proba(self, X):
        """log(predict_proba(X)).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Natural logarithm of the class probabilities.

        Examples
        --------
        >>> import numpy as np
        >>> from fastnn import MLPClassifier
        >>> X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
        >>> y = [0, 1, 1, 0]
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs",
        ...                     random_state=0)
        >>> clf = clf.fit(X, y)
        >>> np.allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X))
        True
        """
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


@_documented
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's MLPRegressor, compiled.

    Same parameters, defaults, attributes and behaviour as
    ``sklearn.neural_network.MLPRegressor``, plus the losses ``"absolute_error"``,
    ``"huber"`` (with ``delta``) and ``"quantile"`` (with ``quantile``),
    ``activation="leaky_relu"`` with ``negative_slope``, ``solver="rmsprop"``,
    ``backend`` and ``validation_loss_curve_``.

    Losses on r = prediction - y: squared_error r**2 / 2; absolute_error |r|;
    huber r**2 / 2 for |r| <= delta, delta (|r| - delta / 2) beyond; quantile (pinball)
    q max(-r, 0) + (1 - q) max(r, 0) with q = quantile, whose minimiser is the
    q-quantile of y given X (subgradient 0 at r = 0, as absolute_error's); poisson (log
    link) exp(raw) - y raw, reported as scikit-learn's half Poisson deviance. ``loss_``
    averages squared_error, absolute_error, huber and quantile over the outputs
    (scikit-learn's convention for squared_error: for quantile, ``loss_`` without the
    penalty is ``mean_pinball_loss(y, predict(X), alpha=quantile)``). ``score`` is R**2
    whatever the loss (as every scikit-learn regressor), and so is what early stopping
    watches.

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "huber", "quantile", "poisson"}, \
            default="squared_error"
        The loss minimised (formulas above).
{parameters}
    delta : float, default=1.0
        Huber's threshold between the quadratic and the linear part (loss="huber"), in
        the target's units; a normal parameter, so a search can tune it.
    quantile : float, default=0.5
        The quantile q in (0, 1) that loss="quantile" predicts, for every output
        (HistGradientBoostingRegressor's name); 0.5 is the median.
{backend}

    Attributes
    ----------
{attributes}
    out_activation_ : str
        The output activation: "identity", or "exp" for loss="poisson".
{tail}

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1); y = 2 * X.ravel()
    >>> reg = MLPRegressor(hidden_layer_sizes=(8,), loss="huber", delta=0.5,
    ...                    solver="lbfgs", random_state=0).fit(X, y)
    >>> round(reg.score(X, y), 2)
    1.0
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_REGRESSION_LOSSES))],
        "delta": [Interval(Real, 0, None, closed="neither")],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 scoring=None,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 delta=1.0, quantile=0.5, negative_slope=0.01, dropout=0.0, backend="auto"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            scoring=scoring,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            negative_slope=negative_slope, dropout=dropout, backend=backend)
        self.loss = loss
        self.delta = delta
        self.quantile = quantile

    def _validate_input(self, X, y, incremental, reset):
        fast = self._validate_fast(X, y, "iuf", reset, multi_output=True)
        if fast is None:
            X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
        else:
            X, y = fast
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires non-negative targets y")
        return X, y

    def _encode(self, y):
        return y

    _stratify_validation = False

    def _check_validation_targets(self, y_val):
        if self.loss == "poisson" and np.any(y_val < 0):
            raise ValueError("loss='poisson' requires non-negative targets y_val")

    def _decode_validation_targets(self, Y_val):
        return Y_val.ravel() if Y_val.shape[1] == 1 else Y_val

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _loss_code(self):
        return _k.LOSSES[self.loss]

    def _loss_param(self):
        return float(self.quantile if self.loss == "quantile" else self.delta)

    def _report_divisor(self):
        return 1.0 if self.loss == "poisson" else float(self.n_outputs_)

    def _loss_constant(self, Y):
        """Per-sample xlogy(y, y) - y summed over outputs: scikit-learn reports the full
        half Poisson deviance, ours omits this constant."""
        if self.loss != "poisson":
            return None
        return np.ascontiguousarray((xlogy(Y, Y) - Y).sum(axis=1), dtype=np.float64)

    def _score_params(self, params, X, y, sample_weight):
        pred = self._forward(X, params)
        if not np.isfinite(pred).all():
            return np.nan
        pred = pred.ravel() if pred.shape[1] == 1 else pred
        return r2_score(y, pred, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to X and the target(s) y, optionally weighting samples.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data; float32 data trains in float32, anything else in float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (non-negative for loss="poisson").
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row (None: all 1).
        {fit_validation}

        Returns
        -------
        self : MLPRegressor
            The fitted estimator. If fitting raises, the estimator is left as it was.

        Examples
        --------
        >>> import numpy as np
        >>> from fastnn import MLPRegressor
        >>> X = np.linspace(-1, 1, 50).reshape(-1, 1); y = 2 * X.ravel() + 1
        >>> reg = MLPRegressor(hidden_layer_sizes=(), solver="lbfgs").fit(X, y)  # a line
        >>> reg.coefs_[0].round(3), reg.intercepts_[0].round(3)
        (array([[2.]]), array([1.]))
        """
        with self._unchanged_on_error():
            return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                             validation_set=(X_val, y_val, sample_weight_val))

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y).

        Only for the stochastic solvers ("sgd", "adam", "rmsprop").

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row.

        Returns
        -------
        self : MLPRegressor
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from fastnn import MLPRegressor
        >>> X = np.linspace(-1, 1, 50).reshape(-1, 1); y = 2 * X.ravel() + 1
        >>> reg = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y)
        >>> reg.n_iter_, reg.t_
        (1, 50)
        """
        with self._unchanged_on_error():
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions (rates, for loss="poisson").

        Examples
        --------
        >>> import numpy as np
        >>> from fastnn import MLPRegressor
        >>> X = np.linspace(-1, 1, 50).reshape(-1, 1); y = 2 * X.ravel() + 1
        >>> reg = MLPRegressor(hidden_layer_sizes=(), solver="lbfgs").fit(X, y)
        >>> reg.predict([[0.0], [0.5]]).round(3)
        array([1., 2.])
        """
        return self._values(self._forward(self._check_X_predict(X)))

    @staticmethod
    def _values(outputs):
        """predict's shape for the activated outputs: (n,) for one output."""
        return outputs.ravel() if outputs.shape[1] == 1 else outputs
