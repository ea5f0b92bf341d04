"""``fastnn demo``: four short stories about what a loss function does to learning.

1. ``truth_table``: the classic "network from scratch" -- a 3-4-1 sigmoid network learns
   the truth table y = x1 XOR x2 by full-batch gradient descent, 1500 iterations, once
   with squared error and once with binary log-loss from the same initial weights. The
   forward and backward passes are fastnn's dense kernels, the losses and their
   gradients ``fastnn.functional``, the update ``fastnn.optim.SGD``: the only thing that
   differs between the two runs is the gradient the loss hands back.
2. ``outliers``: a line fitted to 40 points, 5 of them gross outliers, with squared
   error, Huber (delta = 2) and absolute error (``MLPRegressor`` without hidden layers,
   full-batch gradient descent).
3. ``digits``: scikit-learn's bundled digits, softmax cross-entropy, fastnn's
   ``MLPClassifier`` on every available backend against scikit-learn's, same settings.
4. ``cnn``: the same 8x8 digits as images, a small convolutional network
   (``NeuralNetClassifier`` over ``fastnn.nn``) against the MLP: accuracy, fit time, the
   loss curves and the first layer's filters. With ``cifar10=DIR``, the loss-function
   article's CIFAR-10 model instead, trained on the data in DIR, with the test
   accuracy after every epoch.

Each story prints a small table, returns its numbers (the tests check the claims) and,
when matplotlib is installed and ``plot_dir`` is given, writes one PNG.
"""

import time
import warnings
from pathlib import Path

import numpy as np

from . import _backends

STORIES = ("truth_table", "outliers", "digits", "cnn")
PNG = {"truth_table": "1_truth_table_losses.png", "outliers": "2_line_with_outliers.png",
       "digits": "3_digits_fastnn_vs_sklearn.png", "cnn": "4_digits_cnn_vs_mlp.png"}


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only), or None if not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plot_dir, story):
    path = Path(plot_dir) / PNG[story]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# --------------------------------------------------------------------------- story 1


TRUTH_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
TRUTH_Y = np.array([[0], [1], [1], [0]], dtype=np.float64)  # x1 XOR x2; x3 is constant


def train_truth_table(loss, iterations=1500, lr=0.5, hidden=4, seed=0, backend=None):
    """Train the 3-``hidden``-1 sigmoid network on the truth table with ``loss``
    ("squared_error" or "log_loss"), full batch, plain gradient descent.

    Returns a dict of per-iteration arrays, recorded before each update: ``loss`` (the
    loss being minimised, summed over the 4 rows), ``squared_error`` (the same yardstick
    for both runs), ``predictions`` (iterations, 4), ``output_gradient`` (mean |d loss /
    d z| at the output pre-activation z), and ``final_predictions`` after the last update.
    """
    from . import functional as F
    from . import kernels as K
    from . import optim

    k = _backends.get_kernels(backend)
    rs = np.random.RandomState(seed)
    # the classic exercise's initialisation: uniform [0, 1) weights; biases start at zero
    W1, W2 = rs.rand(3, hidden), rs.rand(hidden, 1)
    b1, b2 = np.zeros(hidden), np.zeros(1)
    params = [W1, b1, W2, b2]
    opt = optim.SGD(params, lr=lr, backend=backend)
    grads = [np.empty_like(p) for p in params]
    a1 = np.empty((4, hidden))
    z2 = np.empty((4, 1))
    delta1 = np.empty((4, hidden))
    record = {"loss": [], "squared_error": [], "predictions": [], "output_gradient": []}

    def forward():
        k.dense_forward(TRUTH_X, W1, b1, K.LOGISTIC, 0.0, a1)
        k.dense_forward(a1, W2, b2, K.IDENTITY, 0.0, z2)
        return F.sigmoid(z2, backend=backend)

    for _ in range(iterations):
        p = forward()
        if loss == "squared_error":
            # L = sum (p - y)**2, so dL/dp = 2 (p - y) and dL/dz = 2 (p - y) p (1 - p):
            # the sigmoid's slope p (1 - p) multiplies the error and vanishes as p -> 0 or 1
            value, dp = F.mse_loss(p, TRUTH_Y, reduction="sum", return_grad=True, backend=backend)
            dz = np.ascontiguousarray(dp)
            k.activation_grad_(p, K.LOGISTIC, 0.0, dz)
        elif loss == "log_loss":
            # L = sum -y log p - (1 - y) log(1 - p), dL/dz = p - y: the error itself
            value, dz = F.binary_cross_entropy_with_logits(z2, TRUTH_Y, reduction="sum",
                                                           return_grad=True, backend=backend)
            dz = np.ascontiguousarray(dz)
        else:
            raise ValueError(f"loss must be 'squared_error' or 'log_loss', got {loss!r}")
        record["loss"].append(float(value))
        record["squared_error"].append(float(np.sum((p - TRUTH_Y) ** 2)))
        record["predictions"].append(p.ravel().copy())
        record["output_gradient"].append(float(np.mean(np.abs(dz))))
        k.dense_backward(a1, dz, grads[2], grads[3])
        k.dense_backward_delta(dz, W2, a1, K.LOGISTIC, 0.0, delta1)
        k.dense_backward(TRUTH_X, delta1, grads[0], grads[1])
        opt.step(grads)
    result = {key: np.array(v) for key, v in record.items()}
    result["final_predictions"] = forward().ravel().copy()
    return result


def truth_table(iterations=1500, lr=0.5, out=print, plot_dir=None, backend=None):
    """Story 1: the same sigmoid network trained with squared error and with log-loss."""
    runs = {name: train_truth_table(name, iterations, lr, backend=backend)
            for name in ("squared_error", "log_loss")}
    se, ll = runs["squared_error"], runs["log_loss"]
    targets = TRUTH_Y.ravel()
    out(f"1. A 3-4-1 sigmoid network learns y = x1 XOR x2 (4 rows, x3 = 1 is constant): "
        f"full-batch gradient descent, lr {lr:g}, {iterations} iterations, the same initial "
        f"weights for both losses (targets {' '.join(f'{t:g}' for t in targets)}).")
    out(f"{'':>9}   {'trained on squared error':<36}  trained on binary log-loss")
    out(f"{'iteration':>9}   {'sq. error':>9}  {'predictions':<25}  {'log-loss':>8}  "
        f"{'sq. error':>9}  predictions")
    shown = [i for i in (0, 1, 10, 50, 100, 250, 500, 1000) if i < iterations]
    for i in shown + [iterations]:
        if i == iterations:
            p_se, p_ll = se["final_predictions"], ll["final_predictions"]
            e_se, e_ll = (float(np.sum((p - targets) ** 2)) for p in (p_se, p_ll))
            l_ll = float("nan")
        else:
            p_se, p_ll = se["predictions"][i], ll["predictions"][i]
            e_se, e_ll, l_ll = se["squared_error"][i], ll["squared_error"][i], ll["loss"][i]
        fmt = " ".join(f"{v:.3f}" for v in p_se), " ".join(f"{v:.3f}" for v in p_ll)
        ll_text = f"{l_ll:8.4f}" if np.isfinite(l_ll) else f"{'':>8}"
        out(f"{i:>9}   {e_se:9.5f}  {fmt[0]:<25}  {ll_text}  {e_ll:9.5f}  {fmt[1]}")
    for name, run in runs.items():
        steps = np.diff(run["loss"])
        rises = int(np.sum(steps > 0))
        gap = float(np.max(np.abs(run["final_predictions"] - targets)))
        first = int(np.argmax(np.max(np.abs(run["predictions"] - targets), axis=1) < 0.1))
        out(f"   {name.replace('_', ' ')} run: the loss "
            + ("fell at every iteration" if rises == 0 else
               f"rose in {rises} of {len(steps)} iterations (largest rise "
               f"{float(steps.max()):.2g})")
            + f"; all 4 predictions within 0.1 of their targets from iteration {first}; "
            f"largest error at the end {gap:.3f}")
    ratio = se["squared_error"][-1] / ll["squared_error"][-1]
    out(f"   The log-loss run ends with a {ratio:.0f}x smaller squared error than the run "
        "that minimised squared error: its output gradient is p - y, where squared error's "
        "is 2 (p - y) p (1 - p), which the sigmoid's slope shrinks as p nears 0 or 1.")
    path = None
    if plot_dir is not None and (plt := _pyplot()) is not None:
        path = _plot_truth_table(plt, runs, lr, plot_dir)
    return {"runs": runs, "png": path}


def output_gradients(n=201, backend=None):
    """dL/dz at the output for target 0 over a grid of predictions p = sigmoid(z), for
    squared error and for log-loss, from ``fastnn.functional``. Returns (p, grad_se,
    grad_ll)."""
    from . import functional as F

    z = np.linspace(-6.0, 6.0, n)
    y = np.zeros(n)
    p = F.sigmoid(z, backend=backend)
    _, dp = F.mse_loss(p, y, reduction="none", return_grad=True, backend=backend)
    _, g_ll = F.binary_cross_entropy_with_logits(z, y, reduction="none", return_grad=True,
                                                 backend=backend)
    return p, dp * p * (1 - p), g_ll


def _plot_truth_table(plt, runs, lr, plot_dir):
    se, ll = runs["squared_error"], runs["log_loss"]
    it = np.arange(1, len(se["loss"]) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    ax.plot(it, se["loss"], color="tab:blue", label="squared-error run: its loss (squared error)")
    ax.plot(it, ll["loss"], color="tab:orange", label="log-loss run: its loss (log-loss)")
    ax.plot(it, ll["squared_error"], color="tab:orange", linestyle="--",
            label="log-loss run: its squared error")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss summed over the 4 rows")
    ax.set_title("Training loss")
    ax.legend(fontsize="small")
    ax = axes[1]
    for row in range(4):
        target = TRUTH_Y[row, 0]
        x1, x2 = TRUTH_X[row, :2].astype(int)
        ax.plot(it, se["predictions"][:, row], color=f"C{row}",
                label=f"x1 x2 = {x1} {x2} -> y = {target:g}")
        ax.plot(it, ll["predictions"][:, row], color=f"C{row}", linestyle="--")
    ax.axhline(0, color="gray", linewidth=0.8, linestyle=":")
    ax.axhline(1, color="gray", linewidth=0.8, linestyle=":")
    ax.set_xlabel("iteration")
    ax.set_ylabel("prediction p")
    ax.set_title("Predictions (solid: squared error, dashed: log-loss)")
    ax.legend(fontsize="small", loc="center right")
    ax = axes[2]
    p, g_se, g_ll = output_gradients()
    ax.plot(p, g_se, color="tab:blue", label="squared error: 2 (p - y) p (1 - p)")
    ax.plot(p, g_ll, color="tab:orange", label="log-loss: p - y")
    ax.set_xlabel("prediction p = sigmoid(z), target y = 0")
    ax.set_ylabel("dL/dz, the gradient sent back from the output")
    ax.set_title("Why: a confidently wrong output gets\nno gradient from squared error")
    ax.legend(fontsize="small")
    fig.suptitle(f"1. Same network, same initial weights, same step size (lr {lr:g}): "
                 "only the loss differs")
    fig.tight_layout()
    return _save(fig, plot_dir, "truth_table")


# --------------------------------------------------------------------------- story 2


LINE_SLOPE, LINE_INTERCEPT = 0.8, 3.0
OUTLIER_LOSSES = ("squared_error", "huber", "absolute_error")
# a loss value is a float64 mean of 40 terms: differences below this many ulps of the
# minimum are rounding, not progress
ROUNDING_ULPS = 64


def line_with_outliers(seed=0):
    """40 points near y = 0.8 x + 3 (noise sd 0.5), x in [0, 10]; 5 points on the right
    pulled 12-15 below the line. Returns x, y and the outliers' boolean mask."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 10, 40))
    y = LINE_SLOPE * x + LINE_INTERCEPT + rng.normal(0, 0.5, 40)
    outliers = np.zeros(40, dtype=bool)
    outliers[rng.choice(np.arange(25, 40), 5, replace=False)] = True
    y[outliers] -= 12 + rng.uniform(0, 3, 5)
    return x, y, outliers


def fit_line(x, y, loss, *, solver="sgd", epochs=300, lr=0.1, delta=2.0):
    """A line y = a x + b fitted with ``loss``: a pipeline StandardScaler -> MLPRegressor
    without hidden layers; "sgd" is full-batch gradient descent with a fixed step and no
    momentum (every epoch is one step), "lbfgs" finds the loss's minimum.

    Returns the fitted pipeline and, for "sgd", the line after every epoch: an (epochs, 2)
    array of (slope, intercept) in x's units (None for "lbfgs")."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ._estimators import MLPRegressor

    X = x.reshape(-1, 1)
    scaler = StandardScaler().fit(X)
    mlp = MLPRegressor(loss=loss, delta=delta, hidden_layer_sizes=(), alpha=0.0,
                       random_state=0)
    lines = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fixed epochs, on purpose
        if solver == "sgd":
            mlp.set_params(solver="sgd", momentum=0.0, batch_size=len(x),
                           learning_rate_init=lr, tol=0.0, n_iter_no_change=np.inf)
            Xs = scaler.transform(X)
            lines = np.empty((epochs, 2))
            for epoch in range(epochs):  # one step per partial_fit, to record every line
                mlp.partial_fit(Xs, y)
                w, b = mlp.coefs_[0][0, 0], mlp.intercepts_[0][0]
                lines[epoch] = w / scaler.scale_[0], b - w * scaler.mean_[0] / scaler.scale_[0]
        else:
            mlp.set_params(solver="lbfgs", max_iter=10_000, tol=1e-12)
            mlp.fit(scaler.transform(X), y)
    return make_pipeline(scaler, mlp), lines


def _settled(remaining, floor):
    """The first epoch from which ``remaining`` stays at or below ``floor``, or None."""
    above = np.flatnonzero(remaining > floor)
    if len(above) == 0:
        return 0
    return int(above[-1]) + 1 if above[-1] + 1 < len(remaining) else None


def outliers(epochs=300, lr=0.1, delta=2.0, out=print, plot_dir=None):
    """Story 2: squared error, Huber and absolute error on a line with 5 gross outliers."""
    x, y, bad = line_with_outliers()
    out(f"2. A line fitted to 40 points, {bad.sum()} of them gross outliers (true line "
        f"y = {LINE_SLOPE:g} x + {LINE_INTERCEPT:g}): MLPRegressor without hidden layers, "
        f"full-batch gradient descent, lr {lr:g}, {epochs} epochs, from the same start.")
    out(f"{'loss':<18}{'slope':>7}{'intercept':>11}{'inlier MAE':>12}{'start loss':>12}"
        f"{'final loss':>12}{'epochs to 99%':>15}")
    out(f"{'(true line)':<18}{LINE_SLOPE:>7.3f}{LINE_INTERCEPT:>11.3f}")
    fits = {}
    for loss in OUTLIER_LOSSES:
        model, lines = fit_line(x, y, loss, epochs=epochs, lr=lr, delta=delta)
        best = fit_line(x, y, loss, solver="lbfgs", delta=delta)[0]
        mlp = model[-1]
        curve = np.asarray(mlp.loss_curve_)  # curve[i]: the loss after i steps
        minimum = min(best[-1].loss_, curve.min())
        # fraction of the way from the starting loss down to the loss's minimum still to go
        remaining = (curve - minimum) / (curve[0] - minimum)
        to_99 = int(np.argmax(remaining <= 0.01)) if np.any(remaining <= 0.01) else None
        floor = ROUNDING_ULPS * np.finfo(np.float64).eps * abs(minimum) / (curve[0] - minimum)
        # epochs whose step raised the loss by more than rounding
        rises = np.flatnonzero(np.diff(curve) > floor * (curve[0] - minimum)) + 1
        best_line = best.predict(np.array([[0.0], [1.0]]))
        slope, intercept = (float(v) for v in lines[-1])
        inlier_mae = float(np.mean(np.abs(model.predict(x[~bad].reshape(-1, 1)) - y[~bad])))
        fits[loss] = dict(model=model, slope=slope, intercept=intercept, curve=curve,
                          minimum=minimum, remaining=remaining, epochs_to_99=to_99,
                          inlier_mae=inlier_mae, slopes=lines[:, 0], intercepts=lines[:, 1],
                          best_slope=float(best_line[1] - best_line[0]), floor=floor,
                          settled=_settled(remaining, floor), rises=rises)
        name = f"huber (delta {delta:g})" if loss == "huber" else loss
        out(f"{name:<18}{slope:>7.3f}{intercept:>11.3f}{inlier_mae:>12.3f}{curve[0]:>12.3f}"
            f"{curve[-1]:>12.4f}{to_99 if to_99 is not None else '-':>15}")
    out("   epochs to 99%: epochs until the loss has covered 99% of the way from its start "
        "to its minimum (found by L-BFGS). Squared error's gradient grows with the "
        "residual, so it takes the largest steps and gets there first, but its minimum is "
        "the line the outliers pull down; Huber's is the residual clipped at delta = "
        f"{delta:g}, so the outliers pull no harder than a point {delta:g} off the line; "
        "Huber and absolute error stay with the other 35 points.")
    names = {"squared_error": "squared error", "huber": "Huber"}
    smooth = [k for k in names if not len(fits[k]["rises"]) and fits[k]["settled"]]
    if smooth:
        which = " and ".join(names[k] for k in smooth)
        out(f"   {which[0].upper()}{which[1:]} fall{'s' if len(smooth) == 1 else ''} at every "
            "epoch and reach their minima to rounding ("
            + ", ".join(f"{names[k]} from epoch {fits[k]['settled']}" for k in smooth) + ").")
    ab = fits["absolute_error"]
    if len(ab["rises"]):
        tail = ab["remaining"][ab["rises"][0]:]
        teeth = 1 + int(np.sum(np.diff(ab["rises"]) > 1))
        out(f"   Absolute error never settles: its gradient, the mean of sign(residual) x, "
            "does not shrink near the minimum (a kink where the line passes through 2 of "
            "the points), so the constant step overshoots, a point crosses the line and "
            f"the sign flips back. From epoch {ab['rises'][0]} the loss rises in "
            f"{len(ab['rises'])} of the last {len(tail)} epochs ({teeth} teeth of a "
            f"saw-tooth {tail.min():.1g} to {tail.max():.1g} of the way above its minimum), "
            f"and the slope ends {abs(ab['slope'] - ab['best_slope']):.1g} from its optimum "
            f"{ab['best_slope']:.3f} (a smaller lr circles closer, more slowly).")
    path = None
    if plot_dir is not None and (plt := _pyplot()) is not None:
        path = _plot_outliers(plt, x, y, bad, fits, delta, lr, plot_dir)
    return {"x": x, "y": y, "outliers": bad, "fits": fits, "png": path}


def _plot_outliers(plt, x, y, bad, fits, delta, lr, plot_dir):
    from matplotlib.ticker import LogLocator

    colors = {"squared_error": "tab:red", "huber": "tab:green", "absolute_error": "tab:purple"}
    names = {"squared_error": "squared error", "huber": f"Huber (delta {delta:g})",
             "absolute_error": "absolute error"}
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 5.2))
    left.scatter(x[~bad], y[~bad], color="tab:blue", s=18, label="points")
    left.scatter(x[bad], y[bad], color="black", marker="x", s=40, label="outliers")
    grid = np.linspace(0, 10, 2)
    left.plot(grid, LINE_SLOPE * grid + LINE_INTERCEPT, color="gray", linestyle=":",
              label=f"true line ({LINE_SLOPE:g} x + {LINE_INTERCEPT:g})")
    for loss, fit in fits.items():
        left.plot(grid, fit["slope"] * grid + fit["intercept"], color=colors[loss],
                  label=f"{names[loss]}: {fit['slope']:.2f} x + {fit['intercept']:.2f}")
    left.set_xlabel("x")
    left.set_ylabel("y")
    left.set_title("Fitted lines after the last epoch")
    left.legend(fontsize="small")

    for loss, fit in fits.items():
        done = np.arange(1, len(fit["slopes"]) + 1)  # slopes[i]: the line after i + 1 steps
        middle.plot(done, fit["slopes"], color=colors[loss],
                    label=f"{names[loss]}: {fit['slope']:.2f} (its optimum "
                          f"{fit['best_slope']:.2f})")
    middle.axhline(LINE_SLOPE, color="gray", linestyle=":", label=f"true slope {LINE_SLOPE:g}")
    middle.set_xlabel("epochs done (one full-batch gradient step each)")
    middle.set_ylabel("slope of the fitted line")
    middle.set_title("Slope: squared error gets there first, to the wrong line")
    middle.legend(fontsize="small", loc="lower right")

    for loss, fit in fits.items():
        # loss_curve_[i]: the loss after i steps; stop a curve where only rounding is left
        end = len(fit["remaining"]) if fit["settled"] is None else max(fit["settled"], 1)
        steps = np.arange(end)
        if fit["settled"] is not None:
            note = f"at its minimum, to rounding, by epoch {fit['settled']}"
        elif len(fit["rises"]):
            note = f"saw-tooth from epoch {fit['rises'][0]} on"
        else:
            note = "still falling"
        right.plot(steps, fit["remaining"][:end], color=colors[loss], marker="o",
                   markevery=[end - 1], markersize=4, label=f"{names[loss]}: {note}")
    right.axhline(0.01, color="gray", linewidth=0.8, linestyle=":",
                  label="1% left (the table's 'epochs to 99%')")
    right.set_yscale("log")
    right.set_ylim(top=1e4)  # headroom for the legend, above the curves
    right.yaxis.set_major_locator(LogLocator(base=100.0))  # 1 is a tick
    ab = fits.get("absolute_error")
    if ab is not None and len(ab["rises"]):
        tooth = ab["rises"][len(ab["rises"]) // 2]
        right.annotate("sign gradient,\nconstant step:\novershoots the\nkink, circles it",
                       xy=(tooth, ab["remaining"][tooth]), xytext=(tooth + 25, 1e-10),
                       fontsize="small", ha="center",
                       arrowprops=dict(arrowstyle="->", color=colors["absolute_error"]))
    right.set_xlabel("epochs done (one full-batch gradient step each)")
    right.set_ylabel("(loss - its minimum) / (start loss - its minimum)")
    right.set_title(f"Loss curves, scaled to each one's start and minimum (lr {lr:g})")
    right.legend(fontsize="small", loc="upper right")
    fig.suptitle("2. Squared error converges fastest, to the line the outliers pull down; "
                 "Huber and absolute error are slower and stay with the other 35 points")
    fig.tight_layout()
    return _save(fig, plot_dir, "outliers")


# --------------------------------------------------------------------------- story 3


def digits(epochs=30, out=print, plot_dir=None):
    """Story 3: digits with softmax cross-entropy, fastnn per backend vs scikit-learn."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier
    from threadpoolctl import threadpool_limits

    from ._estimators import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    settings = dict(hidden_layer_sizes=(100,), max_iter=epochs, batch_size=200, tol=0.0,
                    n_iter_no_change=epochs + 1, random_state=0)
    out(f"3. Digits (scikit-learn's bundled 8x8 images): {len(X_tr)} train / {len(X_te)} "
        f"test rows, 64 features, 10 classes; softmax cross-entropy, MLP (100,) relu, adam, "
        f"batch 200, {epochs} epochs, the same settings and random_state for every row, "
        "BLAS on one thread.")
    out(f"{'implementation':<24}{'accuracy':>10}{'fit time (s)':>14}{'final loss':>12}")
    candidates = [(f"fastnn, {b}", MLPClassifier(backend=b, **settings))
                  for b in _backends.available_backends()]
    candidates.append(("scikit-learn", SkMLPClassifier(**settings)))
    rows = []
    for name, clf in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fixed epochs, on purpose
            if name.startswith("fastnn"):
                clf.set_params(max_iter=1).fit(X_tr[:200], y_tr[:200])  # compile / warm up
                clf.set_params(max_iter=epochs)
            # one BLAS thread for every row: fastnn does this itself for steps this small;
            # scikit-learn's default (all cores) is several times slower on a busy machine
            with threadpool_limits(limits=1, user_api="blas"):
                t0 = time.perf_counter()
                clf.fit(X_tr, y_tr)
                elapsed = time.perf_counter() - t0
        accuracy = clf.score(X_te, y_te)
        rows.append(dict(name=name, accuracy=accuracy, seconds=elapsed,
                         loss_curve=list(clf.loss_curve_)))
        out(f"{name:<24}{accuracy:>10.4f}{elapsed:>14.3f}{clf.loss_curve_[-1]:>12.5f}")
    sk = rows[-1]
    spread = max(float(np.max(np.abs(np.subtract(r["loss_curve"], sk["loss_curve"]))))
                 for r in rows)
    out(f"   loss curves of all rows agree to {spread:.1g} (largest difference in any epoch)")
    fastest = min(rows[:-1], key=lambda r: r["seconds"])
    out(f"   Same initial weights and shuffles as scikit-learn, so the same loss curve and "
        f"accuracy; {fastest['name']} fit {sk['seconds'] / fastest['seconds']:.1f}x faster "
        "than scikit-learn in this run (one fit each: timings vary, see fastnn bench).")
    path = None
    if plot_dir is not None and (plt := _pyplot()) is not None:
        path = _plot_digits(plt, rows, epochs, plot_dir)
    return {"rows": rows, "png": path}


def _plot_digits(plt, rows, epochs, plot_dir):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    styles = ["-", "--", "-.", ":"]
    for i, r in enumerate(rows):
        xs = np.arange(1, len(r["loss_curve"]) + 1)
        if r["name"] == "scikit-learn":  # a wide gray band under the fastnn lines
            left.plot(xs, r["loss_curve"], color="lightgray", linewidth=7, zorder=1,
                      label=r["name"])
        else:
            left.plot(xs, r["loss_curve"], linestyle=styles[i % len(styles)],
                      linewidth=1.5, color=f"C{i}", zorder=2, label=r["name"])
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (cross-entropy + L2)")
    spread = max(float(np.max(np.abs(np.subtract(r["loss_curve"], rows[-1]["loss_curve"]))))
                 for r in rows)
    left.set_title(f"Loss curves on top of each other (largest difference {spread:.1g})")
    left.legend(fontsize="small")
    names = [r["name"] for r in rows]
    seconds = [r["seconds"] for r in rows]
    bars = right.barh(names, seconds, color=["gray" if n == "scikit-learn" else f"C{i}"
                                             for i, n in enumerate(names)])
    for bar, r in zip(bars, rows):
        right.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                   f"  {r['seconds']:.3f} s, accuracy {r['accuracy']:.4f}", va="center",
                   fontsize="small")
    right.invert_yaxis()
    right.set_xlim(0, max(seconds) * 1.6)
    right.set_xlabel(f"fit time, {epochs} epochs (s, lower is better)")
    right.set_title("Fit time and test accuracy")
    fig.suptitle("3. Digits, softmax cross-entropy: fastnn against scikit-learn's MLP")
    fig.tight_layout()
    return _save(fig, plot_dir, "digits")


# --------------------------------------------------------------------------- story 4


def digits_cnn_module():
    """Story 4's network: two 3x3 conv layers (16 and 32 filters, ReLU), one 2x2 max
    pooling, then a Linear to the 10 classes (chosen over three others, with one pooling
    after each conv or a hidden Linear, at 0.967-0.993 against its 0.993-0.996 over two
    seeds and two learning rates)."""
    from . import nn

    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(512, 10))


def cnn(epochs=30, out=print, plot_dir=None, cifar10=None):
    """Story 4: the digits as 1x8x8 images, a CNN against the MLP (same optimizer,
    learning rate, batch and epochs); or, with ``cifar10``, the article's model on
    CIFAR-10."""
    if cifar10 is not None:
        return _cifar10(cifar10, epochs, out, plot_dir)
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    from ._estimators import MLPClassifier
    from ._neuralnet import NeuralNetClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 1, 8, 8)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    settings = dict(max_iter=epochs, batch_size=64, learning_rate_init=0.01, tol=0.0,
                    n_iter_no_change=epochs + 1, random_state=0)
    module = digits_cnn_module()
    out(f"4. Digits as images: {len(X_tr)} train / {len(X_te)} test 1x8x8 images; softmax "
        f"cross-entropy, adam (lr 0.01), batch 64, {epochs} epochs, for both networks:")
    out(f"   CNN {module.summary((1, 8, 8)).splitlines()[-1].split(', ')[1]}: "
        "Conv2d(1,16,3,p1) ReLU Conv2d(16,32,3,p1) ReLU MaxPool2d(2) Flatten Linear(512,10)")
    mlp = MLPClassifier(hidden_layer_sizes=(100,), **settings)
    out("   MLP 7,510 parameters: Linear(64,100) ReLU Linear(100,10)")
    out(f"{'network':<10}{'accuracy':>10}{'fit time (s)':>14}{'final loss':>12}")
    rows = []
    for name, clf, data in (("CNN", NeuralNetClassifier(module, **settings), X_tr),
                            ("MLP", mlp, X_tr.reshape(len(X_tr), -1))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fixed epochs, on purpose
            clf.set_params(max_iter=1).fit(data[:64], y_tr[:64])  # compile / warm up
            clf.set_params(max_iter=epochs)
            t0 = time.perf_counter()
            clf.fit(data, y_tr)
            elapsed = time.perf_counter() - t0
        test = X_te if name == "CNN" else X_te.reshape(len(X_te), -1)
        rows.append(dict(name=name, accuracy=clf.score(test, y_te), seconds=elapsed,
                         loss_curve=list(clf.loss_curve_), estimator=clf))
        out(f"{name:<10}{rows[-1]['accuracy']:>10.4f}{elapsed:>14.3f}"
            f"{clf.loss_curve_[-1]:>12.5f}")
    cnn_row, mlp_row = rows
    out(f"   The CNN sees each pixel's neighbours (3x3 filters shared over the image): "
        f"{100 * (1 - cnn_row['accuracy']):.1f}% test error against the MLP's "
        f"{100 * (1 - mlp_row['accuracy']):.1f}%.")
    path = None
    if plot_dir is not None and (plt := _pyplot()) is not None:
        path = _plot_cnn(plt, rows, plot_dir)
    for r in rows:
        del r["estimator"]
    return {"rows": rows, "png": path}


def _plot_cnn(plt, rows, plot_dir):
    filters = rows[0]["estimator"].state_dict()["0.weight"][:, 0]  # (16, 3, 3)
    fig = plt.figure(figsize=(13, 4.6))
    grid = fig.add_gridspec(2, 6, width_ratios=[3, 3, 3, 1, 1, 1])
    left = fig.add_subplot(grid[:, :3])
    for i, r in enumerate(rows):
        left.plot(np.arange(1, len(r["loss_curve"]) + 1), r["loss_curve"], color=f"C{i}",
                  label=f"{r['name']}: test accuracy {r['accuracy']:.4f}, "
                        f"fit {r['seconds']:.2f} s")
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (cross-entropy + L2)")
    left.set_title("Digits: the CNN against the MLP")
    left.legend(fontsize="small")
    bound = float(np.abs(filters).max())
    for k, f in enumerate(filters[:6]):
        ax = fig.add_subplot(grid[k // 3, 3 + k % 3])
        ax.imshow(f, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"filter {k}", fontsize="small")
    fig.suptitle("4. A small convolutional network on the 8x8 digits (right: its first "
                 "layer's 3x3 filters, red > 0 > blue)")
    fig.tight_layout()
    return _save(fig, plot_dir, "cnn")


def _cifar10(path, epochs, out, plot_dir):
    """The article's model on CIFAR-10, batch 64, adam lr 1e-3, the progress bar on a
    terminal; the test accuracy after every epoch."""
    from ._neuralnet import NeuralNetClassifier
    from .bench.cnn import article_model
    from .datasets import load_cifar10

    (X, y), (X_te, y_te) = load_cifar10(path)
    out(f"4. CIFAR-10 ({len(X)} train / {len(X_te)} test images), the article's model "
        f"(145,578 parameters), softmax cross-entropy, adam (lr 1e-3), batch 64, float32:")
    clf = NeuralNetClassifier(article_model(), batch_size=64, max_iter=1, warm_start=True,
                              random_state=0, verbose=True)
    rows = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch per fit: ConvergenceWarning
            clf.fit(X, y)
        rows.append(dict(epoch=epoch, seconds=time.perf_counter() - t0,
                         loss=clf.loss_curve_[-1], accuracy=clf.score(X_te, y_te)))
        out(f"   epoch {epoch:>3}: loss {rows[-1]['loss']:.4f}, test accuracy "
            f"{rows[-1]['accuracy']:.4f} ({rows[-1]['seconds']:.0f} s)")
    return {"rows": rows, "png": None}


# --------------------------------------------------------------------------- command


def run(epochs=30, out=print, plot_dir="fastnn-demo", stories=STORIES, cifar10=None):
    """Run the chosen stories in order, printing their tables; write PNGs into
    ``plot_dir`` (None: no PNGs). Returns {story: result}."""
    results = {}
    if plot_dir is not None and _pyplot() is None:
        out("matplotlib is not installed: printing the tables only, no PNGs "
            "(pip install matplotlib, or fastnn's plot extra: pip install \"fastnn[plot]\")")
        plot_dir = None
    for story in stories:
        if results:
            out("")
        if story == "truth_table":
            results[story] = truth_table(out=out, plot_dir=plot_dir)
        elif story == "outliers":
            results[story] = outliers(out=out, plot_dir=plot_dir)
        elif story == "digits":
            results[story] = digits(epochs=epochs, out=out, plot_dir=plot_dir)
        elif story == "cnn":
            results[story] = cnn(epochs=epochs, out=out, plot_dir=plot_dir, cifar10=cifar10)
        else:
            raise ValueError(f"unknown story {story!r}; expected one of {STORIES}")
    pngs = [r["png"] for r in results.values() if r.get("png")]
    if pngs:
        out("")
        out("wrote " + ", ".join(str(p) for p in pngs))
    return results
