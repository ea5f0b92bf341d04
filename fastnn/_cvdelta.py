"""``fastnn cv-delta``: cross-validate the Huber delta of a standardized MLPRegressor.

The model is ``TransformedTargetRegressor(StandardScaler -> MLPRegressor(loss="huber"),
transformer=StandardScaler())``: features and target are standardized inside each
training fold, so ``delta`` is in units of the target's standard deviation (the table
also shows it in the target's own units). Every (delta, fold) model trains in one
batched compiled call (fastnn._search.fit_together, the engine of MLPRegressorCV), its
models on the cores (``n_jobs`` threads), bit for bit the fold-by-fold fits of
``make_model()``; with ``scheduler``, chunks of the deltas go to a Dask cluster's
workers, one batched call each. The results are gathered into an object with
scikit-learn's ``cv_results_`` layout, which :func:`fastnn.plot_validation_curve` draws.
"""

import csv
import math
import time
import warnings
from pathlib import Path

import numpy as np

from ._progress import Progress

EXAMPLE_CSV = Path(__file__).resolve().parent / "data" / "outliers.csv"
DEFAULT_DELTAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
PARAM = "regressor__mlpregressor__delta"


class DataError(Exception):
    """The CSV cannot be used (missing file or column, non-numeric or missing values)."""


# --------------------------------------------------------------------------- data


def make_example_data(seed=0, n=400):
    """The shipped example (``fastnn/data/outliers.csv``): 4 standard-normal features and
    y = 3 sin(x1) + x2**2 + 2 x3 - x1 x4 + N(0, 0.5**2), with about 10% of the rows
    shifted by 10-25 up or down (gross outliers). Returns (column names, array)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    f = 3 * np.sin(X[:, 0]) + X[:, 1] ** 2 + 2 * X[:, 2] - X[:, 3] * X[:, 0]
    y = f + rng.normal(0, 0.5, n)
    bad = rng.random(n) < 0.1
    y[bad] += rng.choice([-1.0, 1.0], bad.sum()) * rng.uniform(10, 25, bad.sum())
    return ["x1", "x2", "x3", "x4", "y"], np.column_stack([X, y])


def write_example_csv(path=EXAMPLE_CSV):
    """Write :func:`make_example_data` as CSV (6 significant digits)."""
    names, data = make_example_data()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[f"{v:.6g}" for v in row] for row in data])


def read_csv(path, target):
    """X (float64, every column but ``target``), y, and the feature names, from a CSV
    with a header row. Raises DataError with a message naming the problem."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path} (the example shipped with fastnn is "
                        f"{EXAMPLE_CSV})")
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    with open(path, newline="") as f:
        try:
            rows = list(csv.reader(f))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path} is empty: expected a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise DataError(f"column {target!r} is not in {path}; its columns are: "
                        + ", ".join(repr(h) for h in header))
    if len(header) < 2:
        raise DataError(f"{path} has only the target column {target!r}: no features")
    data = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} fields, the header has "
                            f"{len(header)}")
        for j, cell in enumerate(row):
            try:
                value = float(cell)
            except ValueError:
                kind = "a missing value" if not cell.strip() else f"{cell.strip()!r}, not a number"
                raise DataError(
                    f"{path}, line {line}, column {header[j]!r}: {kind}; cv-delta needs "
                    "numeric data in every column (encode categories, fill or drop missing "
                    "values first)") from None
            if not math.isfinite(value):
                raise DataError(f"{path}, line {line}, column {header[j]!r}: {cell.strip()!r}"
                                " is not a finite number (fill or drop missing values first)")
            data[i, j] = value
    if data.shape[0] == 0:
        raise DataError(f"{path} has a header but no data rows")
    t = header.index(target)
    features = [h for k, h in enumerate(header) if k != t]
    return np.delete(data, t, axis=1), data[:, t].copy(), features


# --------------------------------------------------------------------------- search


def make_model(hidden_layer_sizes=(32,), max_iter=500, random_state=0):
    """The standardized Huber MLPRegressor whose ``PARAM`` (delta) is searched."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ._estimators import MLPRegressor

    mlp = MLPRegressor(loss="huber", hidden_layer_sizes=hidden_layer_sizes,
                       max_iter=max_iter, random_state=random_state)
    return TransformedTargetRegressor(regressor=make_pipeline(StandardScaler(), mlp),
                                      transformer=StandardScaler())


def _search_chunk(X, y, deltas, folds, scoring, mlp, bar=None):
    """One batched call: every (delta, fold) of ``deltas`` trained together
    (fastnn._search.fit_together) on the folds' standardized data, then scored on the
    held-out rows (``bar``: a Progress over the batch's epochs). Returns (scores, fit
    seconds per fit, converged), each (deltas, folds).

    Each fold's features and target are standardized with its training rows' means and
    deviations, as TransformedTargetRegressor(StandardScaler -> MLP, StandardScaler())
    does inside the fold: the same arithmetic, so the same weights as fitting
    ``make_model()`` fold by fold."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import get_scorer
    from sklearn.preprocessing import StandardScaler

    from ._search import Standardized, fit_together

    scorer = get_scorer(scoring)
    datasets, scalers = [], []
    for train, _ in folds:
        xs = StandardScaler().fit(X[train])
        ys = StandardScaler().fit(y[train].reshape(-1, 1))
        datasets.append((xs.transform(X), ys.transform(y.reshape(-1, 1))[:, 0], None))
        scalers.append((xs, ys))
    jobs = [(clone(mlp).set_params(delta=d), k, folds[k][0])
            for d in deltas for k in range(len(folds))]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # counted and reported instead
        fitted, _ = fit_together(jobs, datasets, bar=bar)
    seconds = (time.perf_counter() - start) / len(jobs)  # the batch's, shared
    shape = (len(deltas), len(folds))
    scores, converged = np.full(shape, np.nan), np.zeros(shape, dtype=bool)
    for j, est in enumerate(fitted):
        i, k = divmod(j, len(folds))
        if isinstance(est, ValueError):
            continue  # a diverged fit scores NaN (GridSearchCV's error_score)
        test = folds[k][1]
        scores[i, k] = scorer(Standardized(*scalers[k], est), X[test], y[test])
        converged[i, k] = est.n_iter_ < est.max_iter
    return scores, np.full(shape, seconds), converged


class DeltaSearch:
    """The result of :func:`search`: scikit-learn's ``cv_results_`` layout for one
    parameter, ``delta`` (no refit)."""

    def __init__(self, deltas, scores, fit_times, converged, scoring):
        scores = np.asarray(scores, dtype=float)  # (n_deltas, n_splits)
        mean, std = scores.mean(axis=1), scores.std(axis=1)
        order = np.argsort(-np.where(np.isnan(mean), -np.inf, mean), kind="stable")
        rank = np.empty(len(deltas), dtype=np.int32)
        rank[order] = np.arange(1, len(deltas) + 1)
        self.cv_results_ = {
            "params": [{"delta": float(d)} for d in deltas],
            "param_delta": np.asarray(deltas, dtype=float),
            **{f"split{k}_test_score": scores[:, k] for k in range(scores.shape[1])},
            "mean_test_score": mean,
            "std_test_score": std,
            "rank_test_score": rank,
            "mean_fit_time": np.asarray(fit_times).mean(axis=1),
            "std_fit_time": np.asarray(fit_times).std(axis=1),
        }
        self.scoring = scoring
        self.n_splits_ = scores.shape[1]
        self.best_index_ = int(order[0])
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        self.best_score_ = float(mean[self.best_index_])
        self.n_fits_not_converged_ = int(np.size(converged) - np.sum(converged))


def search(X, y, deltas=DEFAULT_DELTAS, *, cv=5, scoring="neg_median_absolute_error",
           n_jobs=None, random_state=0, hidden_layer_sizes=(32,), max_iter=500,
           progress=None, chunks=1):
    """Cross-validate ``deltas``: every (delta, fold) model trained in one batched call
    per chunk of the deltas (``chunks`` of them, each a joblib task under the active
    joblib backend: ``joblib.parallel_config(backend="dask")`` sends them to a cluster's
    workers). Local runs use one chunk, its models on the cores (``n_jobs`` threads;
    None: all), and advance ``progress`` (a Progress) once per epoch of the batch;
    chunks advance it as they finish. Returns a DeltaSearch, equal whatever the chunks:
    each model's bits are its own fit's."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    mlp = make_model(hidden_layer_sizes, max_iter, random_state).regressor[-1]
    folds = list(KFold(n_splits=cv, shuffle=True, random_state=random_state).split(X))
    parts = [list(p) for p in np.array_split(np.asarray(deltas, float), chunks) if len(p)]
    scores, times, converged = [], [], []
    if chunks == 1:
        with threadpool_limits(n_jobs, user_api="openmp"):
            results = [_search_chunk(X, y, parts[0], folds, scoring, mlp, bar=progress)]
    else:
        results = Parallel(n_jobs=-1 if n_jobs is None else n_jobs, return_as="generator")(
            delayed(_search_chunk)(X, y, part, folds, scoring, mlp) for part in parts)
    for part, (s, t, c) in zip(parts, results):
        scores.append(s), times.append(t), converged.append(c)
        if progress is not None and chunks > 1:
            progress.update(note=f"deltas {', '.join(f'{d:g}' for d in part)}")
    return DeltaSearch(deltas, np.concatenate(scores), np.concatenate(times),
                       np.concatenate(converged), scoring)


# --------------------------------------------------------------------------- command


def run(path, target, deltas=DEFAULT_DELTAS, *, cv=5, n_jobs=None, scheduler=None,
        scoring="neg_median_absolute_error", hidden_layer_sizes=(32,), max_iter=500,
        random_state=0, png="fastnn-cv-delta.png", out=print):
    """The command: read, search (locally or on a Dask cluster), print, plot."""
    X, y, features = read_csv(path, target)
    if X.shape[0] < 2 * cv:
        raise DataError(f"{path} has {X.shape[0]} rows: too few for {cv}-fold "
                        f"cross-validation (at least {2 * cv} needed)")
    from sklearn.metrics import get_scorer

    try:
        get_scorer(scoring)
    except ValueError:
        raise DataError(f"unknown scoring {scoring!r}; use a scikit-learn scorer name such "
                        "as neg_median_absolute_error, neg_mean_absolute_error or r2") from None
    y_std = float(np.std(y))
    shown = ", ".join(features[:6]) + (", ..." if len(features) > 6 else "")
    out(f"cv-delta: {path}: {X.shape[0]} rows, {len(features)} features ({shown}) -> "
        f"target {target!r}")
    out(f"model: StandardScaler -> MLPRegressor(loss='huber', hidden_layer_sizes="
        f"{tuple(hidden_layer_sizes)}, max_iter={max_iter}, random_state={random_state}), "
        f"target standardized: delta is in units of std({target}) = {y_std:.4g}")
    out(f"{cv}-fold cross-validation (shuffled, random_state={random_state}), scoring "
        f"{scoring}, {len(deltas)} deltas: {len(deltas) * cv} fits")

    import joblib

    kwargs = dict(cv=cv, scoring=scoring, random_state=random_state,
                  hidden_layer_sizes=hidden_layer_sizes, max_iter=max_iter)
    if scheduler is None:
        with Progress(max_iter, "epochs of the batch") as bar:
            result = search(X, y, deltas, n_jobs=n_jobs, progress=bar, **kwargs)
    else:
        with Progress(len(deltas), "batched calls") as bar:  # at most one per delta
            try:
                from dask.distributed import Client
            except ImportError:
                raise DataError("--scheduler needs dask.distributed: pip install "
                                "\"dask[distributed]\" (or fastnn's dask extra)") from None
            try:
                client = Client(scheduler)  # timeout: distributed.comm.timeouts.connect
            except (OSError, TimeoutError) as exc:
                raise DataError(f"cannot connect to the Dask scheduler at {scheduler}: "
                                f"{exc}") from None
            with client:
                workers = len(client.scheduler_info().get("workers", {}))
                out(f"running on the Dask cluster at {scheduler} ({workers} workers)")
                chunks = min(len(deltas), max(workers, 1))  # one batched call per worker
                bar.total = chunks
                with joblib.parallel_config(backend="dask"):
                    result = search(X, y, deltas, n_jobs=-1 if n_jobs is None else n_jobs,
                                    progress=bar, chunks=chunks, **kwargs)

    res = result.cv_results_
    out(f"{'delta':>8}{f'delta in {target} units':>22}{'mean score':>13}{'std':>9}"
        f"{'fit time (s)':>14}")
    for i, d in enumerate(deltas):
        mark = "  <- best" if i == result.best_index_ else ""
        out(f"{d:>8g}{d * y_std:>22.4g}{res['mean_test_score'][i]:>13.4f}"
            f"{res['std_test_score'][i]:>9.4f}{res['mean_fit_time'][i]:>14.3f}{mark}")
    best = result.best_params_["delta"]
    out(f"best delta: {best:g} (= {best * y_std:.4g} in {target}'s units), mean {scoring} "
        f"{result.best_score_:.4f} +/- {res['std_test_score'][result.best_index_]:.4f} over "
        f"{cv} folds")
    if result.n_fits_not_converged_:
        out(f"note: {result.n_fits_not_converged_} of {len(deltas) * cv} fits stopped at "
            f"max_iter={max_iter} before converging (raise --max-iter)")
    if png:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            out("matplotlib is not installed: no PNG written (pip install matplotlib, or "
                "fastnn's plot extra: pip install \"fastnn[plot]\")")
        else:
            from .plotting import plot_validation_curve

            fig, ax = plt.subplots(figsize=(7, 4.5))
            plot_validation_curve(result, ax=ax)
            ax.set_xlabel(f"Huber delta (units of std({target}) = {y_std:.3g})")
            ax.set_title(f"{Path(path).name}: {cv}-fold cross-validation of the Huber delta")
            fig.tight_layout()
            Path(png).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(png, dpi=110)
            plt.close(fig)
            out(f"wrote {png}")
    return result
