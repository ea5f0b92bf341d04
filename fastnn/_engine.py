"""Training around the compiled kernels: epochs, schedules, early stopping, divergence.

The estimator validates and encodes the data, then hands a :class:`Problem` (what is
being fitted) and itself (the hyperparameters, and where fitted attributes go) to
:func:`fit_stochastic` or :func:`fit_lbfgs`. One epoch is one kernel call; everything
here runs once per epoch, never per mini-batch. The loop reproduces scikit-learn's MLP
(``_fit_stochastic``): the same shuffles from the same random state, the same loss
curve, stopping rules, learning-rate schedules and messages.
"""

import _signal  # signal's own functions, without its enum conversions (see sigint_deferred)
import contextlib
import functools
import signal
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.optimize import _check_optimize_result
from threadpoolctl import ThreadpoolController

from . import kernels as _k
from ._progress import Progress
from .kernels import layout


@dataclass
class Problem:
    """What is fitted: the network's shape and the loss, with the kernels that run it."""

    kernels: object  # the backend's kernel module
    table: np.ndarray  # the layer table (fastnn.kernels.layout)
    loss: int  # loss code (output activation fused)
    loss_param: float  # Huber's delta, or the log-losses' clipping eps
    alpha: float  # L2 penalty
    report_divisor: float = 1.0  # scikit-learn reports squared error averaged over outputs


    def forward(self, params, X):
        """Raw network outputs (before the output activation) for the rows of X."""
        raw = np.empty((X.shape[0], int(self.table[-1, layout.N_OUT])), dtype=params.dtype)
        work = np.empty(layout.forward_workspace_size(self.table, X.shape[0]), params.dtype)
        self.kernels.forward(X, params, self.table, work, raw)
        return raw

    def loss_value(self, params, X, Y, sample_weight):
        """Weighted mean data loss on (X, Y) in the reported convention (no penalty)."""
        raw = self.forward(params, X)
        loss_out = np.empty(X.shape[0], params.dtype)
        gradient_out = np.empty_like(raw)
        name, has_param = _k.LOSS_KERNELS[self.loss]
        extra = (self.loss_param,) if has_param else ()
        total = getattr(self.kernels, name)(Y, raw, sample_weight, *extra, loss_out,
                                            gradient_out)
        return total / float(np.sum(sample_weight, dtype=np.float64)) / self.report_divisor


# scikit-learn's words for a fit whose weights became non-finite (it raises them as a
# ValueError, for every solver); fastnn raises them when the loss becomes non-finite.
NONFINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may"
    " contain large values and need to be preprocessed."
)


def _epoch_loss(problem, loss_sum, penalty_sum, n_samples, offset):
    """scikit-learn's loss_ from the kernel's per-epoch sums (see train_epoch)."""
    return (loss_sum / problem.report_divisor + penalty_sum + offset) / n_samples


def _batch_offsets(constant, sample_weight, perm, batch_size):
    """sum over batches of rows * (weighted mean of ``constant`` in the batch): the term
    scikit-learn's Poisson deviance adds to our loss (constant = xlogy(y, y) - y)."""
    w = sample_weight[perm].astype(np.float64)
    c = constant[perm]
    starts = np.arange(0, len(perm), batch_size)
    wsum = np.add.reduceat(w, starts)
    csum = np.add.reduceat(w * c, starts)
    rows = np.diff(np.append(starts, len(perm)))
    keep = wsum > 0
    return float(np.sum(rows[keep] * csum[keep] / wsum[keep]))


class OptimizerState:
    """The optimizer's state and schedule: its buffers (``state``: momentum, or Adam's
    and RMSprop's moments), the step count, and scikit-learn's SGDOptimizer /
    AdamOptimizer bookkeeping (learning rate, schedule, stopping).

    A fit trains a :meth:`copy` and the estimator keeps it only if the fit succeeds
    (the kernels write the buffers in place)."""

    def __init__(self, est, n_params, dtype):
        self.solver = est.solver
        self.learning_rate = float(est.learning_rate_init)
        self.state = np.zeros((2, n_params), dtype=dtype)
        self.step = 0

    def copy(self):
        """A new state equal to this one, sharing nothing that a fit writes."""
        new = object.__new__(OptimizerState)
        new.__dict__.update(self.__dict__)
        new.state = self.state.copy()
        return new

    def config(self, est):
        """train_epoch's float64 config (slots named in fastnn.kernels)."""
        config = np.zeros(_k.N_CONFIG)
        config[[_k.LR, _k.MOMENTUM, _k.BETA1, _k.BETA2, _k.EPSILON]] = (
            self.learning_rate, est.momentum, est.beta_1, est.beta_2, est.epsilon)
        return config

    def code(self, est):
        if self.solver == "sgd" and est.nesterovs_momentum:
            return _k.SGD_NESTEROV
        return _k.OPTIMIZERS[self.solver]

    def iteration_ends(self, est, time_step):
        if self.solver == "sgd" and est.learning_rate == "invscaling":
            self.learning_rate = float(est.learning_rate_init) / (time_step + 1) ** est.power_t

    def trigger_stopping(self, est, msg, say=print):
        if self.solver != "sgd" or est.learning_rate != "adaptive":
            if est.verbose:
                say(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if est.verbose:
                say(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if est.verbose:
            say(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


# Below this many flops per mini-batch step (forward and backward GEMMs) a second BLAS
# thread costs more than it gains (measured in bench/: on 2 cores it helped only "big",
# and slowed small GEMMs 10-100x whenever the other core was busy).
SMALL_STEP_FLOPS = 2e7


# OpenBLAS runs a GEMM of m * n * k at or below this on one thread anyway (interface/
# gemm.c: 65536 * GEMM_MULTITHREAD_THRESHOLD, 4 by default): a pass whose GEMMs are all
# this small needs no limit and skips its cost (~20 us, more than a 1-row predict).
SERIAL_GEMM_MNK = 262144


def step_flops(table, rows, backward=True):
    """GEMM flops of one forward-and-backward pass over ``rows`` rows of the network
    ``table``: 2 m n k for a @ W and a.T @ delta per layer, and delta @ W.T for every
    layer but the first (only the first term with ``backward=False``)."""
    weights = table[:, layout.W_LEN].tolist()  # Python ints: this runs on every predict
    if not backward:
        return 2.0 * rows * sum(weights)
    return 2.0 * rows * (3 * sum(weights) - weights[0])


def blas_threads(table, rows, backward=True):
    """One BLAS thread for small passes (see SMALL_STEP_FLOPS): the mini-batch step of a
    fit, or a whole forward pass (``backward=False``: predict); else BLAS's own setting
    (or the caller's threadpoolctl limit).

    Only the main thread pins: the limit is process-wide and threadpoolctl lets one
    thread own it, so fits in worker threads leave BLAS as the caller set it (limit it
    around the threads, e.g. ``threadpool_limits(1, user_api="blas")``).
    """
    if rows * max(table[:, layout.W_LEN].tolist()) <= SERIAL_GEMM_MNK:
        return contextlib.nullcontext()  # OpenBLAS runs every GEMM of it on one thread
    if (step_flops(table, rows, backward) < SMALL_STEP_FLOPS
            and threading.current_thread() is threading.main_thread()):
        return _blas_controller().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


@functools.cache
def _blas_controller():
    """threadpoolctl's handles on the loaded BLAS libraries, found once per process.

    Its scan of the loaded libraries took ~3 ms per fit (7% of a 20-epoch digits fit);
    the handles read and restore the thread counts live, so caching them changes nothing
    else. The kernels' BLAS (scipy's, which Numba's np.dot also calls) is loaded by then.
    """
    return ThreadpoolController()


# An epoch runs as consecutive slices of its permutation, each one compiled call of at
# most this many flops (GEMM flops, each step counted as at least MIN_STEP_FLOPS for its
# fixed costs): 0.01-0.1 s on one core here, so Ctrl-C is served and the progress bar
# redrawn between slices. Shapes alone set the slicing, never timings or threads, and the
# slices carry the step count and the loss sums: the result is bit-identical to one call.
SLICE_FLOPS = 1e9
MIN_STEP_FLOPS = 1e5


def batches_per_call(table, batch_size):
    """Mini-batches per compiled call of a sliced epoch (see SLICE_FLOPS)."""
    per_step = max(step_flops(table, batch_size), MIN_STEP_FLOPS)
    return max(1, int(SLICE_FLOPS // per_step))


@contextlib.contextmanager
def sigint_deferred():
    """Within the block, Ctrl-C (SIGINT) sets a flag instead of raising
    KeyboardInterrupt; yields a function that tells whether it came.

    A compiled epoch slice cannot be interrupted, and a KeyboardInterrupt raised between
    two Python statements could leave the step count and the parameters out of step: the
    flag is read at the points where the training state is whole. Only the main thread
    receives signals, and a handler the user installed is left alone.

    ``_signal`` is what ``signal.signal`` and ``signal.getsignal`` wrap: the same calls
    without converting handlers to and from enums (30 us, 7% of a 64-row fit).
    """
    caught = []
    if (threading.current_thread() is not threading.main_thread()
            or _signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield lambda: False
        return
    previous = _signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield lambda: bool(caught)
    finally:
        _signal.signal(signal.SIGINT, previous)


def train_epoch_sliced(problem, X, Y, sample_weight, sample_idx, batch_size, params,
                       schedule, optimizer, config, grads, work, interrupted, bar=None):
    """One epoch over the rows ``sample_idx``, as consecutive compiled calls of
    ``batches_per_call`` mini-batches each (bit-identical to one call over all of them);
    ``optimizer`` and ``config`` as train_epoch takes them.

    ``schedule.step`` advances with every call. Stops early when a call reports a
    non-finite loss or when ``interrupted()`` becomes true between calls. Returns
    (loss_sum, penalty_sum, nonfinite, complete).
    """
    per_call = batches_per_call(problem.table, batch_size) * batch_size
    n = sample_idx.shape[0]
    loss_sum = penalty_sum = 0.0
    for start in range(0, n, per_call):
        loss_sum, penalty_sum, step, nonfinite = problem.kernels.train_epoch(
            X, Y, sample_weight, sample_idx[start:start + per_call], batch_size, params,
            problem.table, problem.loss, problem.loss_param, problem.alpha, optimizer,
            config, schedule.state, schedule.step, grads, work, loss_sum, penalty_sum)
        schedule.step = int(step)
        if nonfinite:
            return loss_sum, penalty_sum, True, False
        if start + per_call < n:
            if interrupted():
                return loss_sum, penalty_sum, False, False
            if bar is not None:
                bar.update(0, note=f"rows {start + per_call}/{n}")
    return loss_sum, penalty_sum, False, True


def shuffle_indices(sample_idx, rs):
    """``sklearn.utils.shuffle(sample_idx, random_state=rs)``: the same draws from ``rs``
    and the same permutation, without its per-call validation (~0.2 ms, 9% of a digits
    epoch). ``tests/test_train.py`` checks the two agree."""
    order = np.arange(sample_idx.shape[0])
    rs.shuffle(order)
    return sample_idx[order]


def fit_stochastic(est, problem, params, X, Y, sample_weight, y_for_split, incremental,
                   poisson_constant=None):
    """Mini-batch training (sgd, adam, rmsprop), as scikit-learn's ``_fit_stochastic``.

    ``params`` (the flat buffer) is updated in place; fitted attributes (loss_curve_,
    n_iter_, t_, best_loss_, validation_scores_, ...) are set on ``est``. Returns the
    final parameters (the best ones when early stopping).
    """
    rs = est._random_state
    # a new state object (the estimator's own is left intact until the fit succeeds: the
    # caller restores the attributes on error, and this never writes the old object)
    if not incremental or getattr(est, "_schedule", None) is None:
        schedule = OptimizerState(est, params.size, params.dtype)
    else:
        schedule = est._schedule.copy()
    est._schedule = schedule
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")

    if est.early_stopping:
        stratify = y_for_split if est._stratify_validation else None
        X, X_val, Y, Y_val, sample_weight, sw_val, *const = train_test_split(
            X, Y, sample_weight,
            *(() if poisson_constant is None else (poisson_constant,)),
            random_state=rs, test_size=est.validation_fraction, stratify=stratify)
        poisson_constant = const[0] if const else None
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if not np.sum(sw_val) > 0:
            raise ValueError("The validation set has zero total sample_weight.")
        X, Y, sample_weight = (np.ascontiguousarray(a) for a in (X, Y, sample_weight))
        X_val, Y_val, sw_val = (np.ascontiguousarray(a) for a in (X_val, Y_val, sw_val))
        y_val = est._decode_validation_targets(Y_val)

    n_samples = X.shape[0]
    sample_idx = np.arange(n_samples, dtype=np.int64)
    if est.batch_size == "auto":
        batch_size = min(200, n_samples)
    else:
        if est.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than "
                "sample size. It is going to be clipped"
            )
        batch_size = int(np.clip(est.batch_size, 1, n_samples))

    grads = np.empty_like(params)
    work = np.empty(layout.train_workspace_size(problem.table, batch_size), params.dtype)
    est.n_iter_ = 0  # counts this call's epochs, as scikit-learn's
    # a bar on a terminal with verbose; the "Iteration ..." lines go to stdout as before,
    # through the bar so that the two never garble each other
    bar = Progress(1 if incremental else est.max_iter, "epochs",
                   enabled=None if est.verbose else False)
    late = []  # warnings, shown once the bar is closed (they go to its stream, stderr)
    with blas_threads(problem.table, batch_size), bar, sigint_deferred() as interrupted:
        for _ in range(est.max_iter):
            if est.shuffle:
                sample_idx = shuffle_indices(sample_idx, rs)
            loss_sum, penalty_sum, nonfinite, complete = train_epoch_sliced(
                problem, X, Y, sample_weight, sample_idx, batch_size, params, schedule,
                schedule.code(est), schedule.config(est), grads, work, interrupted, bar)
            if nonfinite or not np.isfinite(params).all():
                if not (est.early_stopping and est._best_params is not None):
                    raise ValueError(NONFINITE_MESSAGE)
                # as scikit-learn: early stopping keeps the best validation epoch's weights
                late.append(ConvergenceWarning(
                    f"Training diverged in epoch {est.n_iter_ + 1} (the loss became "
                    "non-finite); the weights of the best validation epoch are kept. Try "
                    "a smaller learning_rate_init, or scale the input features."))
                break
            if not complete:  # interrupted inside the epoch: keep its completed steps
                break
            offset = 0.0
            if poisson_constant is not None:
                offset = _batch_offsets(poisson_constant, sample_weight, sample_idx, batch_size)
            est.n_iter_ += 1
            est.loss_ = _epoch_loss(problem, loss_sum, penalty_sum, n_samples, offset)
            est.t_ += n_samples
            est.loss_curve_.append(est.loss_)
            bar.update(note=f"loss {est.loss_:.4g}")
            if est.verbose:
                bar.print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))

            if est.early_stopping:
                est.validation_loss_curve_.append(
                    problem.loss_value(params, X_val, Y_val, sw_val))
                _update_validation(est, params, X_val, y_val, sw_val, bar.print)
            else:
                _update_training(est)

            schedule.iteration_ends(est, est.t_)

            if est._no_improvement_count > est.n_iter_no_change:
                if est.early_stopping:
                    msg = ("Validation score did not improve more than tol=%f for %d "
                           "consecutive epochs." % (est.tol, est.n_iter_no_change))
                else:
                    msg = ("Training loss did not improve more than tol=%f for %d "
                           "consecutive epochs." % (est.tol, est.n_iter_no_change))
                if schedule.trigger_stopping(est, msg, bar.print):
                    break
                est._no_improvement_count = 0

            if incremental or interrupted():
                break

            if est.n_iter_ == est.max_iter:
                late.append(ConvergenceWarning(
                    "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                    "optimization hasn't converged yet." % est.max_iter))

    if interrupted():
        late.append(UserWarning("Training interrupted by user."))
    for warning in late:
        warnings.warn(warning)

    if est.early_stopping and est._best_params is not None:
        params[:] = est._best_params
    return params


def _update_validation(est, params, X_val, y_val, sw_val, say=print):
    score = est._score_params(params, X_val, y_val, sw_val)
    est.validation_scores_.append(score)
    if est.verbose:
        say("Validation score: %f" % score)
    if score < est.best_validation_score_ + est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if score > est.best_validation_score_:
        est.best_validation_score_ = score
        est._best_params = params.copy()


def _update_training(est):
    if est.loss_curve_[-1] > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if est.loss_curve_[-1] < est.best_loss_:
        est.best_loss_ = est.loss_curve_[-1]


def fit_lbfgs(est, problem, params, X, Y, sample_weight, poisson_constant=None):
    """Full-batch L-BFGS-B through scipy on the kernels' forward_backward.

    The objective is (sum_i w_i loss_i + alpha/2 ||W||^2) / sum_i w_i with its exact
    gradient; ``loss_`` is reported in scikit-learn's convention.
    """
    grads = np.empty_like(params)
    work = np.empty(layout.forward_backward_workspace_size(problem.table, X.shape[0]),
                    params.dtype)
    sw = float(np.sum(sample_weight, dtype=np.float64))
    offset = 0.0 if poisson_constant is None else float(
        np.dot(sample_weight, poisson_constant)) / sw

    def objective(p):
        p = np.ascontiguousarray(p, dtype=params.dtype)
        data, penalty = problem.kernels.forward_backward(
            X, Y, sample_weight, p, problem.table, problem.loss, problem.loss_param,
            problem.alpha,
            grads, work)
        return (data + penalty) / sw, grads.astype(np.float64)

    iprint = 1 if est.verbose is True or est.verbose >= 1 else -1
    options = {"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol}
    if iprint > 0:
        options["disp"] = True
    with blas_threads(problem.table, X.shape[0]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*iprint.*", category=DeprecationWarning)
        result = scipy.optimize.minimize(objective, params.astype(np.float64),
                                         method="L-BFGS-B", jac=True, options=options)
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    params[:] = result.x
    data, penalty = problem.kernels.forward_backward(
        X, Y, sample_weight, params, problem.table, problem.loss, problem.loss_param,
        problem.alpha, grads, work)
    est.loss_ = (data / problem.report_divisor + penalty) / sw + offset
    return params
