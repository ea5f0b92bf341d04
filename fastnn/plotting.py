"""Plots of a fit's loss curves and of a hyperparameter search's validation curve.

matplotlib is an optional dependency (``pip install matplotlib``, or fastnn's ``plot``
extra: ``pip install "fastnn[plot]"``); it is imported when a plot is drawn, never when
fastnn is imported.
"""

import numbers

import numpy as np

__all__ = ["plot_loss_curve", "plot_validation_curve"]

_MISSING = ("fastnn's plots need matplotlib, which is not installed: "
            "pip install matplotlib (or fastnn's plot extra: pip install \"fastnn[plot]\")")


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return plt


def _axes(ax):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots()
    return ax


def _final_estimator(estimator):
    """The MLP inside a Pipeline / TransformedTargetRegressor / search, or ``estimator``."""
    for _ in range(5):
        if hasattr(estimator, "loss_curve_"):
            return estimator
        inner = (getattr(estimator, "best_estimator_", None)
                 or getattr(estimator, "regressor_", None))
        if inner is None and hasattr(estimator, "steps"):
            inner = estimator.steps[-1][1]
        if inner is None:
            break
        estimator = inner
    return estimator


def plot_loss_curve(estimator, ax=None, *, label=None):
    """Plot the training loss per epoch and, with early stopping, the validation loss.

    Parameters
    ----------
    estimator : fitted MLPClassifier or MLPRegressor
        Fitted with a stochastic solver (``"sgd"``, ``"adam"`` or ``"rmsprop"``), which
        records ``loss_curve_``. A Pipeline, TransformedTargetRegressor or fitted search
        whose final estimator is one is accepted too. scikit-learn's MLPs work as well
        (they have no validation loss).
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is made when None.
    label : str, default=None
        Prefix of the legend entries (for several fits on one Axes).

    Returns
    -------
    ax : matplotlib Axes
        With the line "training loss" (``loss_curve_``: the mean training loss of each
        epoch, L2 penalty included) and, when the estimator has
        ``validation_loss_curve_`` (``early_stopping=True``), "validation loss" (the
        weighted mean loss on the held-out rows after each epoch, no penalty) and a
        vertical line at the epoch whose weights early stopping kept, labelled with what
        chose it (the validation loss for ``scoring="loss"``, else the score).

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message says how to install it).
    ValueError
        If the estimator has no ``loss_curve_`` (not fitted, or fitted with L-BFGS).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from fastnn import MLPClassifier, plot_loss_curve
    >>> import warnings
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=50,
    ...                     n_iter_no_change=50, random_state=0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # 50 epochs do not converge: fine here
    ...     clf = clf.fit(X, y)
    >>> ax = plot_loss_curve(clf)
    >>> [line.get_label() for line in ax.get_lines()]
    ['training loss', 'validation loss', 'kept: best validation score']
    >>> len(ax.get_lines()[0].get_ydata()) == clf.n_iter_
    True
    """
    final = _final_estimator(estimator)
    curve = getattr(final, "loss_curve_", None)
    if curve is None:
        raise ValueError(
            f"plot_loss_curve needs a fitted estimator with loss_curve_ (solver 'sgd', "
            f"'adam' or 'rmsprop'); {type(final).__name__} has none (not fitted, or "
            f"fitted with solver='lbfgs')"
        )
    ax = _axes(ax)
    prefix = f"{label}: " if label else ""
    epochs = np.arange(1, len(curve) + 1)
    line, = ax.plot(epochs, curve, label=f"{prefix}training loss")
    validation = getattr(final, "validation_loss_curve_", None)
    if validation is not None and len(validation):
        ax.plot(np.arange(1, len(validation) + 1), validation, linestyle="--",
                color=line.get_color(), label=f"{prefix}validation loss")
        scores = getattr(final, "validation_scores_", None)
        if scores:  # early stopping kept the weights of its best-scored epoch
            scoring = getattr(final, "scoring", None)
            watched = "loss" if scoring == "loss" else (
                scoring if isinstance(scoring, str) else "score")
            ax.axvline(int(np.nanargmax(scores)) + 1, linestyle=":", color=line.get_color(),
                       label=f"{prefix}kept: best validation {watched}")
    ax.set_xlabel("epoch")
    loss = getattr(final, "loss", None)
    ax.set_ylabel(f"loss ({loss})" if isinstance(loss, str) else "loss")
    ax.legend()
    return ax


def _search_param(results, param):
    """The name of the searched parameter in ``cv_results_``."""
    names = sorted({name for params in results["params"] for name in params})
    if param is not None:
        if param not in names:
            raise ValueError(f"parameter {param!r} was not searched; searched: {names}")
        return param
    if len(names) == 1:
        return names[0]
    deltas = [n for n in names if n == "delta" or n.endswith("__delta")]
    if len(deltas) == 1:
        return deltas[0]
    raise ValueError(f"the search varies {names}: pass param= to choose the x axis")


def plot_validation_curve(search, ax=None, *, param=None):
    """Plot the mean cross-validated score against a searched parameter, best marked.

    Parameters
    ----------
    search : fitted GridSearchCV, or anything with ``cv_results_``
        A search over one parameter (such as ``MLPRegressor``'s Huber ``delta``), with
        scikit-learn's ``cv_results_`` keys ``params``, ``mean_test_score`` and
        ``std_test_score`` (``mean_train_score`` too when it was recorded). The object
        ``fastnn cv-delta`` builds qualifies.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is made when None.
    param : str, default=None
        The parameter on the x axis. Needed only when several parameters vary; by
        default the only one, or the one named ``delta`` / ``..._delta``.

    Returns
    -------
    ax : matplotlib Axes
        The mean test score with a band of one standard deviation over the folds, the
        mean training score if recorded, and the best value marked. The x axis is
        logarithmic when the values are positive and span a factor of 10 or more.

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message says how to install it).
    ValueError
        If the search has no ``cv_results_`` or the parameter is ambiguous or unknown.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from fastnn import MLPRegressor, plot_validation_curve
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 2)); y = X @ [1.0, -2.0] + rng.normal(0, 0.1, 120)
    >>> y[:10] += 20  # outliers
    >>> search = GridSearchCV(
    ...     MLPRegressor(loss="huber", hidden_layer_sizes=(4,), solver="lbfgs", random_state=0),
    ...     {"delta": [0.1, 1.0, 10.0]}, cv=3, scoring="neg_median_absolute_error").fit(X, y)
    >>> ax = plot_validation_curve(search)
    >>> ax.get_xlabel(), ax.get_xscale()
    ('delta', 'log')
    >>> ax.get_lines()[0].get_xdata().tolist()
    [0.1, 1.0, 10.0]
    """
    results = getattr(search, "cv_results_", None)
    if results is None:
        raise ValueError("plot_validation_curve needs a fitted search with cv_results_")
    name = _search_param(results, param)
    rows = [i for i, p in enumerate(results["params"]) if name in p]
    values = [results["params"][i][name] for i in rows]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    order = sorted(range(len(rows)), key=lambda k: values[k]) if numeric else range(len(rows))
    rows = [rows[k] for k in order]
    values = [values[k] for k in order]
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    mean = np.asarray(results["mean_test_score"], dtype=float)[rows]
    std = np.asarray(results["std_test_score"], dtype=float)[rows]

    ax = _axes(ax)
    line, = ax.plot(x, mean, marker="o", label="cross-validation score (mean)")
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line.get_color(),
                    label="± 1 std over folds")
    if "mean_train_score" in results:
        ax.plot(x, np.asarray(results["mean_train_score"], dtype=float)[rows], marker=".",
                linestyle="--", label="training score (mean)")
    finite = np.isfinite(mean)
    if finite.any():
        best = int(np.flatnonzero(finite)[np.argmax(mean[finite])])
        shown = values[best]
        ax.plot([x[best]], [mean[best]], marker="*", markersize=16, linestyle="none",
                color="tab:red", label=f"best: {name.split('__')[-1]} = {shown:g}"
                if numeric else f"best: {shown}")
    if numeric and len(x) > 1 and x.min() > 0 and x.max() / x.min() >= 10:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(x, [str(v) for v in values])
    ax.set_xlabel(name.split("__")[-1])
    scoring = getattr(search, "scoring", None)
    ax.set_ylabel(scoring if isinstance(scoring, str) else "score")
    ax.legend()
    return ax
