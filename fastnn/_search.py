"""Cross-validated MLPs: every (candidate, fold) of a grid trained at once.

``MLPRegressorCV`` and ``MLPClassifierCV`` follow scikit-learn's ``*CV`` convention
(RidgeCV, LogisticRegressionCV): the MLP's parameters plus ``param_grid``, ``cv``,
``refit``; fitted, GridSearchCV's ``cv_results_``, ``best_params_``, ``best_score_`` and
``best_estimator_``. Instead of one fit per (candidate, fold), each model is planned as
its own fit would be (``_BaseMLP._plan``: the same validation, initial weights, early
stopping split and random draws), and all of them train together in
``_engine.fit_stochastic_many``: per round, one epoch of every model still fitting in a
few ``train_epoch_many`` calls, the models spread over the cores. Model k's weights are
bit for bit those of fitting it alone, so the scores are GridSearchCV's.

A grid may hold any parameter that leaves the network and the compiled call as they are
(delta, alpha, learning_rate_init, beta_1, beta_2, momentum, random_state, batch_size,
tol, early stopping's settings, ...). One that changes the network (hidden_layer_sizes,
activation, ...) or the call's kernels (loss, solver, ...) is refused, naming it: search
it with GridSearchCV around the CV estimator.
"""

import inspect
import time
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_is_fitted, indexable
from threadpoolctl import threadpool_limits

from . import _backends, _engine
from ._estimators import MLPClassifier, MLPRegressor
from ._progress import Progress

# Parameters a grid must not hold: they change the network's layer table, the compiled
# call (its loss, its optimizer), which every model of a batch shares, or the search as
# a whole (its messages; every model is fitted from scratch).
_NETWORK = ("hidden_layer_sizes", "activation", "negative_slope", "dropout")
_CALL = ("loss", "solver", "nesterovs_momentum", "backend", "max_fun")
_SEARCH = ("verbose", "warm_start")
_OWN = {"cv": 5, "refit": True, "error_score": np.nan, "n_jobs": None}


def _signature(mlp):
    """``__init__``'s signature: param_grid, then the MLP's parameters and the CV's own,
    keyword-only (BaseEstimator reads the parameter names from it)."""
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("param_grid", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=None)]
    params += [p.replace(kind=kw) for p in
               list(inspect.signature(mlp.__init__).parameters.values())[1:]]
    params += [inspect.Parameter(name, kw, default=v) for name, v in _OWN.items()]
    return inspect.Signature(params)


class _BaseMLPCV(BaseEstimator):
    """What MLPRegressorCV and MLPClassifierCV share: the grid, the batched fit, the
    scores and the refit."""

    _mlp = None  # the estimator class a candidate is

    def __init__(self, param_grid=None, **params):
        for name, p in list(inspect.signature(type(self).__init__).parameters.items())[1:]:
            setattr(self, name, params.pop(name, p.default) if name != "param_grid"
                    else param_grid)
        if params:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments "
                            f"{sorted(params)}")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._mlp is not None:
            cls.__init__ = _with_signature(_BaseMLPCV.__init__, _signature(cls._mlp))

    # ------------------------------------------------------------------ the grid

    def _base(self):
        names = inspect.signature(self._mlp.__init__).parameters
        return self._mlp(**{name: getattr(self, name) for name in list(names)[1:]})

    def _candidates(self):
        """The grid's candidates (ParameterGrid's order, GridSearchCV's), checked."""
        grid = {} if self.param_grid is None else self.param_grid
        grids = grid if isinstance(grid, (list, tuple)) else [grid]
        known = set(inspect.signature(self._mlp.__init__).parameters) - {"self"}
        for g in grids:
            if not isinstance(g, dict):
                raise ValueError(f"param_grid must be a dict (or a list of dicts) of "
                                 f"parameter names to lists of values, got {g!r}")
            for name, values in g.items():
                if name in _NETWORK + _CALL + _SEARCH:
                    what = ("network (its layers)" if name in _NETWORK else
                            "compiled call" if name in _CALL else "search as a whole")
                    raise ValueError(
                        f"param_grid holds {name!r}, which changes the {what} that every "
                        f"model of {type(self).__name__}'s batch shares: set it as a "
                        f"parameter, and search it with GridSearchCV over "
                        f"{type(self).__name__}")
                if name not in known:
                    raise ValueError(f"param_grid holds {name!r}, which is not a parameter "
                                     f"of {self._mlp.__name__}")
                if isinstance(values, str) or not hasattr(values, "__len__") or not len(values):
                    raise ValueError(f"param_grid[{name!r}] must be a non-empty list of "
                                     f"values, got {values!r}")
        candidates = list(ParameterGrid(grids))
        if not candidates:
            raise ValueError("param_grid has no candidate")
        return candidates

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y, sample_weight=None, groups=None):
        """Train every (candidate, fold) at once, score each fold's held-out rows, and
        (refit) fit the best candidate on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, as GridSearchCV passes them: each fold's training rows' to its
            fits, its held-out rows' to its scores.
        groups : array-like of shape (n_samples,), default=None
            Passed to the ``cv`` splitter (GroupKFold, ...).

        Returns
        -------
        self
        """
        base = self._base()
        base._validate_params()
        candidates = self._candidates()
        if base.solver == "lbfgs":
            raise ValueError(f"{type(self).__name__} trains its models together with a "
                             "stochastic solver (sgd, adam, rmsprop), not lbfgs")
        X, y, groups = indexable(X, y, groups)
        splits = list(check_cv(self.cv, y, classifier=isinstance(base, ClassifierMixin))
                      .split(X, y, groups))
        scorer = check_scoring(base, None if self.scoring in (None, "loss") else self.scoring)
        sw = None if sample_weight is None else np.asarray(sample_weight)
        jobs = [(clone(base).set_params(**params), 0, train)
                for params in candidates for train, _ in splits]
        for est, _, train in jobs:
            est._validate_params()
        start = time.perf_counter()
        bar = Progress(base.max_iter, "epochs of the batch",
                       enabled=None if self.verbose else False)
        with bar, threadpool_limits(self.n_jobs, user_api="openmp"):
            fitted, whole = fit_together(
                jobs, [(X, y, sample_weight)], bar=bar, threads=self.n_jobs,
                check=lambda est, whole, i: self._check_fold(est, whole, i % len(splits)))
        fit_time = (time.perf_counter() - start) / len(jobs)  # the batch's, shared
        models = [(c, f, fitted[c * len(splits) + f], test)
                  for c in range(len(candidates)) for f, (_, test) in enumerate(splits)]
        whole_est = whole[0]

        n_c, n_f = len(candidates), len(splits)
        scores = np.full((n_c, n_f), np.nan)
        score_times = np.zeros((n_c, n_f))
        for c, f, est, test in models:
            if isinstance(est, ValueError) and self.error_score == "raise":
                raise est
        start = time.perf_counter()
        held_out = _held_out(models, X)  # every model's held-out outputs in one call
        spent = (time.perf_counter() - start) / max(1, len(held_out))
        for c, f, est, test in models:
            if isinstance(est, ValueError):
                scores[c, f] = self.error_score
                continue
            t = time.perf_counter()
            weights = {} if sw is None else {"sample_weight": sw[test]}
            scores[c, f] = scorer(held_out[c, f], _safe_indexing(X, test),
                                  _safe_indexing(y, test), **weights)
            score_times[c, f] = time.perf_counter() - t + spent
        self._set_results(candidates, scores, fit_time, score_times)
        if self.refit:
            best = clone(base).set_params(**self.best_params_)
            t = time.perf_counter()
            self.best_estimator_ = best.fit(X, y, sample_weight=sample_weight)
            self.refit_time_ = time.perf_counter() - t
            self.n_iter_ = self.best_estimator_.n_iter_
        self.n_splits_ = n_f
        self.scorer_ = scorer
        self.n_features_in_ = whole_est.n_features_in_
        if hasattr(whole_est, "classes_"):
            self.classes_ = whole_est.classes_
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _check_fold(self, est, whole_est, fold):
        """Refuse fold ``fold``'s planned model (est) for a reason fit_together's own
        check (one network) would word less clearly: nothing for a regressor."""

    def _set_results(self, candidates, scores, fit_time, score_times):
        """cv_results_ in GridSearchCV's layout (test scores only), best_*."""
        n_c, n_f = scores.shape
        results = {"mean_fit_time": np.full(n_c, fit_time), "std_fit_time": np.zeros(n_c),
                   "mean_score_time": score_times.mean(axis=1),
                   "std_score_time": score_times.std(axis=1)}
        for name in sorted({n for p in candidates for n in p}):
            column = np.ma.MaskedArray(np.empty(n_c, dtype=object), mask=True)
            for i, p in enumerate(candidates):
                if name in p:
                    column[i] = p[name]
            results[f"param_{name}"] = column
        results["params"] = candidates
        for f in range(n_f):
            results[f"split{f}_test_score"] = scores[:, f]
        mean = scores.mean(axis=1)
        results["mean_test_score"] = mean
        results["std_test_score"] = scores.std(axis=1)
        # GridSearchCV's ranks: min rank among ties, NaN scores last
        filled = np.where(np.isnan(mean), np.nanmin(mean) - 1 if np.isfinite(mean).any()
                          else 0.0, mean)
        from scipy.stats import rankdata
        results["rank_test_score"] = np.asarray(rankdata(-filled, method="min"),
                                                dtype=np.int32)
        self.cv_results_ = results
        self.best_index_ = int(np.flatnonzero(results["rank_test_score"] == 1)[0])
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(mean[self.best_index_])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # as the MLPs': densified row blocks
        return tags

    # ------------------------------------------------------------------ prediction

    def predict(self, X):
        """The refit best estimator's predictions."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def score(self, X, y, sample_weight=None):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score(X, y, sample_weight=sample_weight)


def _held_out(models, X):
    """{(c, f): _HeldOut} for the fitted models of (candidate c, fold f, est, test rows),
    their outputs on their test rows of X from one _engine.forward_many."""
    fitted = [(c, f, est, test) for c, f, est, test in models
              if not isinstance(est, ValueError)]
    if not fitted:
        return {}
    first = fitted[0][2]
    kernels = _backends.get_kernels(first.backend_)
    params = np.array([est._pack() for _, _, est, _ in fitted])
    Xv = first._check_X_predict(X)  # as each model's predict converts its rows
    raws = _engine.forward_many(kernels, first._table, params, Xv,
                                [np.asarray(test, np.int64) for *_, test in fitted])
    return {(c, f): _HeldOut(est, raw, kernels)
            for (c, f, est, _), raw in zip(fitted, raws)}


class _HeldOut:
    """A fitted fold model whose raw outputs on its held-out rows are computed already
    (forward_many): a scorer's predict, predict_proba, predict_log_proba and score read
    them, so X must be those rows; every other attribute is the model's."""

    def __init__(self, est, raw, kernels):
        self.est, self._raw, self._kernels = est, raw, kernels

    def __getattr__(self, name):
        return getattr(self.est, name)

    def _check(self, X):
        if _num_samples(X) != len(self._raw):
            raise ValueError(f"these outputs are of {len(self._raw)} held-out rows, "
                             f"not of X's {_num_samples(X)}")

    def _outputs(self, X):
        self._check(X)
        return self.est._activated(self._raw.copy(), self._kernels)

    def predict(self, X):
        if isinstance(self.est, ClassifierMixin):
            self._check(X)
            return self.est._labels(self._raw)
        return self.est._values(self._outputs(X))

    def predict_proba(self, X):
        return self.est._proba(self._outputs(X))

    def predict_log_proba(self, X):  # the model's own, reading these outputs
        return type(self.est).predict_log_proba(self, X)

    def score(self, X, y, sample_weight=None):
        return type(self.est).score(self, X, y, sample_weight=sample_weight)


def fit_together(jobs, datasets, check=None, bar=None, threads=None):
    """Fit MLP estimators together, each as ``est.fit`` would fit it alone, in one batch
    (``_engine.fit_stochastic_many``): ``jobs`` are (unfitted estimator, index into
    ``datasets``, training rows of that dataset), ``datasets`` (X, y, sample_weight or
    None). The estimators must build one network (the same table) and use one backend,
    loss and optimizer; ``check(est, whole, i)`` may refuse job i's planned estimator
    (``whole``: a fit planned on all of its dataset's rows).

    The datasets are validated once each and stacked; job i trains on its rows of the
    stack. Returns (one entry per job: the fitted estimator, or the ValueError its fit
    raised: a non-finite loss; the whole-data estimators, one per dataset).
    """
    wholes, blocks, offsets, n = [], [], [], 0
    for X, y, sample_weight in datasets:
        whole = clone(jobs[0][0]).set_params(early_stopping=False)
        wholes.append(whole)
        blocks.append(whole._plan(X, y, sample_weight))
        offsets.append(n)
        n += blocks[-1].X.shape[0]
    table = blocks[0].table
    X_all = np.concatenate([b.X for b in blocks]) if len(blocks) > 1 else blocks[0].X
    Y_all = np.concatenate([b.Y for b in blocks]) if len(blocks) > 1 else blocks[0].Y
    constant = None if blocks[0].constant is None else np.concatenate(
        [b.constant for b in blocks])
    fits = []
    for i, (est, d, train) in enumerate(jobs):
        X, y, sample_weight = datasets[d]
        sw = None if sample_weight is None else np.asarray(sample_weight)[train]
        plan = est._plan(_safe_indexing(X, train), _safe_indexing(y, train), sw)
        if check is not None:
            check(est, wholes[d], i)
        if not np.array_equal(plan.table, table) or plan.X.dtype != X_all.dtype:
            raise ValueError(f"job {i}'s estimator builds another network than the "
                             "others': models trained together share one")
        rows = offsets[d] + np.asarray(train, np.int64)[plan.rows]
        weights = np.zeros(X_all.shape[0], X_all.dtype)
        weights[rows] = plan.sample_weight
        plan.problem.table = table
        fits.append(_engine._Fit(
            plan.problem, replace(plan.options, verbose=False), plan.state, rows, weights,
            est._random_state, validation=plan.validation,
            poisson_constant=None if plan.constant is None else constant))
    results = _engine.fit_stochastic_many(
        fits, X_all, Y_all, np.array([f.sample_weight for f in fits]), bar=bar,
        threads=threads)
    if any(not isinstance(r, ValueError) and r[1].interrupted for r in results):
        # a fit alone keeps its completed steps; a search cut short has no result to give
        raise KeyboardInterrupt("the batched fit was interrupted (Ctrl-C)")
    fitted = []
    for (est, _, _), result in zip(jobs, results):
        if isinstance(result, ValueError):
            fitted.append(result)
            continue
        est._commit(*result, table)
        fitted.append(est)
    return fitted, wholes


class Standardized(RegressorMixin, BaseEstimator):
    """A regressor fitted on standardized data (``mlp``), predicting in the original
    units: features scaled by ``x_scaler``, predictions unscaled by ``y_scaler`` (both
    fitted StandardScalers), as TransformedTargetRegressor(StandardScaler -> mlp,
    StandardScaler()) predicts (cv-delta's folds, trained by fit_together)."""

    def __init__(self, x_scaler, y_scaler, mlp):
        self.x_scaler, self.y_scaler, self.mlp = x_scaler, y_scaler, mlp

    def predict(self, X):
        pred = self.mlp.predict(self.x_scaler.transform(X))
        return self.y_scaler.inverse_transform(pred.reshape(-1, 1))[:, 0]


def _with_signature(function, signature):
    def __init__(self, param_grid=None, **params):
        function(self, param_grid, **params)

    __init__.__signature__ = signature
    __init__.__doc__ = function.__doc__
    return __init__


class MLPRegressorCV(RegressorMixin, _BaseMLPCV):
    """MLPRegressor with a cross-validated grid (delta, alpha, ...), every (candidate,
    fold) trained at once in one batched compiled call per round of epochs.

    Parameters
    ----------
    param_grid : dict or list of dicts
        Lists of values of MLPRegressor's parameters that do not change the network or
        the compiled call (see fastnn._search), as GridSearchCV's param_grid.
    **MLPRegressor's parameters** : the candidates' common settings (``scoring`` both
        watches early stopping, as MLPRegressor's, and scores the held-out folds, as
        GridSearchCV's; None or "loss": the estimator's R^2 on the folds).
    cv : int, splitter or iterable, default=5
        As GridSearchCV's (KFold for an int; ``groups`` go to the splitter).
    refit : bool, default=True
        Fit the best candidate on all rows (``best_estimator_``, used by predict).
    error_score : "raise" or float, default=np.nan
        The score of a model whose loss became non-finite (GridSearchCV's rule).
    n_jobs : int or None, default=None
        Threads the batch's models run on (Cython: OpenMP's limit; Numba: Python
        threads over groups of models; None: all cores).

    Attributes
    ----------
    cv_results_, best_params_, best_score_, best_index_, best_estimator_, n_splits_,
    scorer_, refit_time_ : as GridSearchCV's. ``mean_fit_time`` is the batch's time
    divided by its models (they train together); train scores are not computed.
    n_iter_ : int
        The refit best estimator's epochs (LogisticRegressionCV's attribute).

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import MLPRegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = X @ [1.0, -2.0] + rng.standard_t(1, 200)
    >>> search = MLPRegressorCV({"delta": [0.5, 5.0]}, loss="huber", hidden_layer_sizes=(8,),
    ...                         max_iter=30, random_state=0, cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['delta']
    """

    _mlp = MLPRegressor


class MLPClassifierCV(ClassifierMixin, _BaseMLPCV):
    """MLPClassifier with a cross-validated grid (alpha, learning_rate_init, ...), every
    (candidate, fold) trained at once in one batched compiled call per round of epochs.

    Parameters
    ----------
    param_grid : dict or list of dicts
        Lists of values of MLPClassifier's parameters that do not change the network or
        the compiled call, as MLPRegressorCV's.
    **MLPClassifier's parameters**, cv, refit, error_score, n_jobs : as MLPRegressorCV's;
        ``cv`` as an int is StratifiedKFold (GridSearchCV's rule). Every fold's training
        rows must hold every class.

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    cv_results_, best_params_, best_score_, best_index_, best_estimator_, n_splits_,
    scorer_, refit_time_ : as MLPRegressorCV's.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastnn import MLPClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = MLPClassifierCV({"learning_rate_init": [1e-2, 3e-2]},
    ...                          hidden_layer_sizes=(16,), max_iter=500, random_state=0,
    ...                          cv=3).fit(X, y)
    >>> search.score(X, y) > 0.9
    True
    """

    _mlp = MLPClassifier

    def _check_fold(self, est, whole_est, fold):
        classes, whole = est.classes_, whole_est.classes_
        if len(classes) != len(whole) or not np.array_equal(classes, whole):
            missing = sorted(set(whole.tolist()) - set(classes.tolist()))
            raise ValueError(
                f"fold {fold}'s training rows lack the classes {missing} (they hold "
                f"{classes.tolist()}): every fold's model needs every class; use "
                "StratifiedKFold or fewer folds")

    def predict_proba(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)
