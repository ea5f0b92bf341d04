"""Training around the compiled kernels: epochs, schedules, early stopping, divergence.

A pure engine: :func:`fit_stochastic` trains a :class:`Problem` (the layer table, the
loss, the penalty, the backend's kernels) with :class:`Options` (the hyperparameters)
from a :class:`TrainState` (parameters, optimizer state, stopping counters) on data, and
returns the new state and the call's :class:`History`; :func:`fit_lbfgs` returns the new
parameters. Nothing here reads or writes an estimator: the estimator validates and
encodes the data, builds these inputs and copies the results into its fitted
attributes, so a fit that raises has changed nothing.

One epoch is a few compiled calls; everything here runs once per epoch, never per
mini-batch. The loop reproduces scikit-learn's MLP (``_fit_stochastic``): the same
shuffles from the same random state, the same loss curve, stopping rules,
learning-rate schedules and messages.
"""

import _signal  # signal's own functions, without its enum conversions (see sigint_deferred)
import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
import signal
import threading
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Optional

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.optimize import _check_optimize_result
from threadpoolctl import ThreadpoolController

from . import kernels as _k
from ._progress import Progress
from .kernels import layout


PREDICT_WORK = 2**24  # elements of forward's workspace per call (64 MiB in float32)
MANY_WORK = 2**18  # elements of forward_many's workspace, all models (2 MiB in float64)


def forward_many(kernels, table, params, X, rows):
    """Raw outputs (before the output activation) of model k, ``params[k]``, on the rows
    ``X[rows[k]]``, for every k: a list of (len(rows[k]), n_out) arrays, each bit for bit
    ``forward``'s alone on those rows. One ``forward_many`` call per chunk of the rows
    (every model's next rows at once), the chunk's workspace within MANY_WORK: a
    workspace that stays in cache (measured, 30 models x 4000 rows of a 4-32-1 net: 17 ms
    with one 35 MB chunk, fresh pages, against 9 ms for 30 predicts)."""
    K = len(rows)
    counts = np.array([len(r) for r in rows], np.int64)
    m = int(counts.max()) if K else 0
    perm = np.zeros((K, m), np.int64)
    for k, r in enumerate(rows):
        perm[k, :len(r)] = r
    n_out = int(table[-1, layout.N_OUT])
    raw = np.empty((K, m, n_out), params.dtype)
    per_row = layout.forward_many_workspace_size(table, 1) - layout.conv_scratch_size(table)
    chunk = max(1, min(m, MANY_WORK // max(1, K * per_row)))
    work = np.empty((K, layout.forward_many_workspace_size(table, chunk)), params.dtype)
    with blas_threads(table, chunk):
        for start in range(0, m, chunk):  # rows are independent: any chunking
            sub = np.ascontiguousarray(perm[:, start:start + chunk])
            out = raw if sub.shape[1] == m else np.empty((K, sub.shape[1], n_out), raw.dtype)
            kernels.forward_many(X, sub, np.clip(counts - start, 0, sub.shape[1]), params,
                                 table, work, out)
            if out is not raw:
                raw[:, start:start + sub.shape[1]] = out
    return [raw[k, :counts[k]] for k in range(K)]


@dataclass
class Problem:
    """What is fitted: the network's shape and the loss, with the kernels that run it."""

    kernels: object  # the backend's kernel module
    table: np.ndarray  # the layer table (fastnn.kernels.layout)
    loss: int  # loss code (output activation fused)
    loss_param: float  # Huber's delta, or the log-losses' clipping eps
    alpha: float  # L2 penalty
    report_divisor: float = 1.0  # scikit-learn reports squared error averaged over outputs
    dropout_seed: int = 0  # the seed of the dropout masks (table's DROP; kernels.dropout_)


    def forward(self, params, X):
        """Raw network outputs (before the output activation) for the rows of X, in
        chunks of rows whose hidden outputs fit in PREDICT_WORK elements (one chunk for
        most MLPs; a few hundred CIFAR images per chunk)."""
        n = X.shape[0]
        raw = np.empty((n, int(self.table[-1, layout.N_OUT])), dtype=params.dtype)
        rows = max(1, min(n, PREDICT_WORK // max(1, int(self.table[-1, layout.OUT_OFF]))))
        work = np.empty(layout.forward_workspace_size(self.table, rows), params.dtype)
        for start in range(0, max(n, 1), rows):  # rows are independent: any chunking
            self.kernels.forward(X[start:start + rows], params, self.table, work,
                                 raw[start:start + rows])
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


@dataclass
class OptimizerState:
    """The optimizer's state: its buffers (``moments``: SGD's velocity, or Adam's and
    RMSprop's two moment estimates, shape (2, n_params)), the step count (Adam's bias
    correction) and the current learning rate (scikit-learn's ``_optimizer`` holds the
    same, under the same name)."""

    moments: np.ndarray
    step: int = 0
    learning_rate: float = 1e-3

    @classmethod
    def new(cls, n_params, dtype, learning_rate):
        return cls(np.zeros((2, n_params), dtype=dtype), 0, float(learning_rate))


class _Schedule:
    """What fastnn 0.1 pickled as an estimator's ``_schedule`` (the optimizer's
    ``state``, ``step`` and ``learning_rate``); the estimator's ``__setstate__`` turns it
    into an OptimizerState."""


@dataclass
class TrainState:
    """Everything a stochastic fit carries from epoch to epoch and from one partial_fit
    to the next, as data: the flat parameters, the optimizer's state, scikit-learn's
    ``t_`` (samples seen), and the stopping rule's best values and counter.

    The engine never writes a state it is given: it trains a :meth:`copy` and returns it.
    """

    params: np.ndarray
    optimizer: OptimizerState
    t: int = 0
    best_loss: float = np.inf
    best_validation_score: float = -np.inf
    best_params: np.ndarray = None  # the best validation epoch's parameters
    no_improvement_count: int = 0

    def copy(self):
        """A state equal to this one that shares no array a fit writes (``best_params``
        is only ever replaced, never written)."""
        opt = self.optimizer
        moments = opt.moments.astype(self.params.dtype)  # always a copy
        return replace(self, params=self.params.copy(),
                       optimizer=OptimizerState(moments, opt.step, opt.learning_rate))


@dataclass(frozen=True)
class Options:
    """The solvers' hyperparameters, with scikit-learn's MLP names and meanings."""

    solver: str = "adam"
    learning_rate: str = "constant"  # the schedule: constant, invscaling or adaptive
    learning_rate_init: float = 1e-3
    power_t: float = 0.5
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    batch_size: object = "auto"
    max_iter: int = 200
    shuffle: bool = True
    tol: float = 1e-4
    n_iter_no_change: int = 10
    max_fun: int = 15000
    verbose: bool = False

    def optimizer_code(self):
        if self.solver == "sgd" and self.nesterovs_momentum:
            return _k.SGD_NESTEROV
        return _k.OPTIMIZERS[self.solver]

    def config(self, learning_rate):
        """train_epoch's float64 config (slots named in fastnn.kernels)."""
        config = np.zeros(_k.N_CONFIG)
        config[[_k.LR, _k.MOMENTUM, _k.BETA1, _k.BETA2, _k.EPSILON]] = (
            learning_rate, self.momentum, self.beta_1, self.beta_2, self.epsilon)
        return config

    def iteration_ends(self, optimizer, time_step):
        """scikit-learn's SGDOptimizer.iteration_ends: invscaling's new learning rate."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            optimizer.learning_rate = (float(self.learning_rate_init)
                                       / (time_step + 1) ** self.power_t)

    def trigger_stopping(self, optimizer, msg, say=print):
        """scikit-learn's trigger_stopping: stop, or (adaptive) divide the rate by 5."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                say(msg + " Stopping.")
            return True
        if optimizer.learning_rate <= 1e-6:
            if self.verbose:
                say(msg + " Learning rate too small. Stopping.")
            return True
        optimizer.learning_rate /= 5.0
        if self.verbose:
            say(msg + " Setting learning rate to %f" % optimizer.learning_rate)
        return False


OPTION_NAMES = tuple(f.name for f in fields(Options))


@dataclass
class Validation:
    """Held-out rows that early stopping scores after every epoch: ``score(params)`` is
    a score of those rows, higher is better (the estimator's accuracy or R^2, or any
    scorer's); None scores them by minus their loss (the validation loss curve's)."""

    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray
    score: Optional[Callable[[np.ndarray], float]]


@dataclass
class History:
    """What one fit or partial_fit call adds: its epochs' losses (scikit-learn's
    convention), validation scores and losses, and whether Ctrl-C stopped it."""

    n_iter: int = 0
    loss: float = None  # the last complete epoch's
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    validation_loss_curve: list = field(default_factory=list)
    interrupted: bool = False


# OpenBLAS runs a GEMM of m * n * k at or below this on one thread anyway (interface/
# gemm.c: 65536 * GEMM_MULTITHREAD_THRESHOLD, 4 by default): a pass whose GEMMs are all
# this small needs no limit and skips its cost (~20 us, more than a 1-row predict).
SERIAL_GEMM_MNK = 262144


def _macs(table):
    """Multiply-adds per sample of each layer's forward GEMMs (Python ints: this runs on
    every predict)."""
    return (table[:, layout.W_LEN] * table[:, layout.OUT_H] * table[:, layout.OUT_W]).tolist()


def step_flops(table, rows, backward=True):
    """GEMM flops of one forward-and-backward pass over ``rows`` rows of the network
    ``table``: 2 m n k for a @ W and a.T @ delta per layer, and delta @ W.T for every
    layer but the first (only the first term with ``backward=False``); a conv layer's
    per sample are its weights times its output positions (W_LEN OUT_H OUT_W, which is
    W_LEN for a dense layer and 0 for a pool layer)."""
    weights = _macs(table)
    if not backward:
        return 2.0 * rows * sum(weights)
    return 2.0 * rows * (3 * sum(weights) - weights[0])


def blas_threads(table, rows):
    """BLAS pinned to one thread around a kernel call over ``rows`` rows of ``table``.

    The kernels' results must not depend on the number of threads, and a GEMM split by
    OpenBLAS's threads is not the same bits as on one; the Cython kernels spread each
    layer's column blocks over OpenMP threads instead (kernels/cython/_dense.pxd), the
    same bits on any number. Calls whose GEMMs OpenBLAS runs on one thread anyway skip
    the limit's cost.

    Only the main thread pins: the limit is process-wide and threadpoolctl lets one
    thread own it, so fits in worker threads leave BLAS as the caller set it (limit it
    around the threads, e.g. ``threadpool_limits(1, user_api="blas")``).
    """
    if (rows * max(_macs(table)) <= SERIAL_GEMM_MNK  # at least each GEMM's m n k
            or threading.current_thread() is not threading.main_thread()):
        return contextlib.nullcontext()  # OpenBLAS runs every GEMM of it on one thread
    return _blas_controller().limit(limits=1, user_api="blas")


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


def train_steps(problem, params, optimizer, code, config, X, Y, sample_weight, rows,
                batch_size, grads, work, sums=(0.0, 0.0)):
    """One compiled ``train_epoch`` call: the mini-batches of ``rows`` (consecutive
    ``batch_size`` slices), each a forward-backward pass and an optimizer step of kind
    ``code`` with ``config``. Updates ``params`` and ``optimizer`` (moments, step) in
    place; ``sums`` carries the loss sums of earlier calls of the same epoch.

    The one place the kernel's arguments are spelled out (the engine, bench/ and the
    tests call this). Returns (loss_sum, penalty_sum, nonfinite).
    """
    loss_sum, penalty_sum, step, nonfinite = problem.kernels.train_epoch(
        X, Y, sample_weight, rows, batch_size, params, problem.table, problem.loss,
        problem.loss_param, problem.alpha, code, config, optimizer.moments, optimizer.step,
        grads, work, *sums, problem.dropout_seed)
    optimizer.step = int(step)
    return loss_sum, penalty_sum, bool(nonfinite)


def train_epoch_sliced(problem, params, optimizer, code, config, X, Y, sample_weight,
                       rows, batch_size, grads, work, interrupted, bar=None):
    """One epoch over ``rows``, as consecutive :func:`train_steps` calls of
    ``batches_per_call`` mini-batches each (bit-identical to one call over all of them).

    Stops early when a call reports a non-finite loss or when ``interrupted()`` becomes
    true between calls. Returns (loss_sum, penalty_sum, nonfinite, complete).
    """
    per_call = batches_per_call(problem.table, batch_size) * batch_size
    n = rows.shape[0]
    sums = (0.0, 0.0)
    for start in range(0, n, per_call):
        *sums, nonfinite = train_steps(problem, params, optimizer, code, config, X, Y,
                                       sample_weight, rows[start:start + per_call],
                                       batch_size, grads, work, sums)
        if nonfinite:
            return *sums, True, False
        if start + per_call < n:
            if interrupted():
                return *sums, False, False
            if bar is not None:
                bar.update(0, note=f"rows {start + per_call}/{n}")
    return *sums, False, True


def shuffle_indices(sample_idx, rs):
    """``sklearn.utils.shuffle(sample_idx, random_state=rs)``: the same draws from ``rs``
    and the same permutation, without its per-call validation (~0.2 ms, 9% of a digits
    epoch). ``tests/test_train.py`` checks the two agree."""
    order = np.arange(sample_idx.shape[0])
    rs.shuffle(order)
    return sample_idx[order]


def batch_size_for(batch_size, n_samples):
    """scikit-learn's mini-batch size: min(200, n) for "auto", else clipped to [1, n]."""
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples:
        warnings.warn("Got `batch_size` less than 1 or larger than "
                      "sample size. It is going to be clipped")
    return int(np.clip(batch_size, 1, n_samples))


class _Fit:
    """One model's stochastic fit between its epochs: scikit-learn's ``_fit_stochastic``
    rules (the shuffles, the loss curve, validation scores, the stopping rule, the
    learning-rate schedules, their messages), kept apart from how the epochs run, so
    that a fit alone (:func:`fit_stochastic`) and a fit among many in one compiled call
    (:func:`fit_stochastic_many`) follow the same rules, draw for draw.

    ``rows`` are the rows of (X, Y, sample_weight) the model trains on; each epoch runs
    over :meth:`epoch_rows`, then :meth:`end_epoch` says whether the fit stops."""


    def __init__(self, problem, options, state, rows, sample_weight, random_state, *,
                 incremental=False, validation=None, poisson_constant=None, on_epoch=None,
                 say=print):
        self.problem, self.options, self.state = problem, options, state.copy()
        self.local = np.arange(rows.shape[0], dtype=np.int64)  # shuffled, as sklearn's
        self.rows, self.sample_weight, self.random_state = rows, sample_weight, random_state
        self.n_samples = rows.shape[0]
        self.batch_size = batch_size_for(options.batch_size, self.n_samples)
        self.code = options.optimizer_code()
        self.incremental, self.validation = incremental, validation
        self.poisson_constant, self.on_epoch, self.say = poisson_constant, on_epoch, say
        self.history = History()
        self.late = []  # warnings, shown once the fit ends (after a progress bar closed)

    def config(self):
        """train_epoch's config at the current learning rate (made again only when the
        schedule changed the rate)."""
        rate = self.state.optimizer.learning_rate
        if getattr(self, "_config_rate", None) != rate:
            self._config, self._config_rate = self.options.config(rate), rate
        return self._config

    def epoch_rows(self):
        """The next epoch's rows, in order (shuffled with the model's random state)."""
        if self.options.shuffle:
            self.local = shuffle_indices(self.local, self.random_state)
        return self.rows[self.local]

    def end_epoch(self, epoch, loss_sum, penalty_sum, nonfinite, complete,
                  interrupted=False):
        """After an epoch over the rows ``epoch`` (from :meth:`epoch_rows`; ``complete``
        unless stopped inside): record it and apply the stopping rules; True if the fit
        stops here. Raises
        scikit-learn's ValueError if the loss became non-finite (unless early stopping
        has a best epoch to fall back on)."""
        problem, options, state, history = self.problem, self.options, self.state, self.history
        validation = self.validation
        if nonfinite or not np.isfinite(state.params).all():
            if validation is None or state.best_params is None:
                raise ValueError(NONFINITE_MESSAGE)
            # as scikit-learn: early stopping keeps the best validation epoch's weights
            self.late.append(ConvergenceWarning(
                f"Training diverged in epoch {history.n_iter + 1} (the loss became "
                "non-finite); the weights of the best validation epoch are kept. Try "
                "a smaller learning_rate_init, or scale the input features."))
            return True
        if not complete:  # interrupted inside the epoch: keep its completed steps
            return True
        offset = 0.0
        if self.poisson_constant is not None:
            offset = _batch_offsets(self.poisson_constant, self.sample_weight, epoch,
                                    self.batch_size)
        history.n_iter += 1
        history.loss = _epoch_loss(problem, loss_sum, penalty_sum, self.n_samples, offset)
        history.loss_curve.append(history.loss)
        state.t += self.n_samples
        if options.verbose:
            self.say("Iteration %d, loss = %.8f" % (history.n_iter, history.loss))

        if validation is not None:
            loss = problem.loss_value(state.params, validation.X, validation.Y,
                                      validation.sample_weight)
            history.validation_loss_curve.append(loss)
            score = -loss if validation.score is None else validation.score(state.params)
            history.validation_scores.append(score)
            if options.verbose:
                self.say("Validation score: %f" % score)
            _track_validation(state, score, options.tol)
        else:
            _track_training(state, history.loss, options.tol)

        options.iteration_ends(state.optimizer, state.t)

        if state.no_improvement_count > options.n_iter_no_change:
            watched = "Validation score" if validation is not None else "Training loss"
            msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
                   % (watched, options.tol, options.n_iter_no_change))
            if options.trigger_stopping(state.optimizer, msg, self.say):
                return True
            state.no_improvement_count = 0

        if self.on_epoch is not None and self.on_epoch(state.params):
            return True
        if self.incremental or interrupted:
            return True
        if history.n_iter == options.max_iter:
            self.late.append(ConvergenceWarning(
                "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                "optimization hasn't converged yet." % options.max_iter))
            return True
        return False

    def finish(self, interrupted=False):
        """The fit's (state, history); its warnings go out now."""
        self.history.interrupted = interrupted
        if interrupted:
            self.late.append(UserWarning("Training interrupted by user."))
        for warning in self.late:
            warnings.warn(warning)
        state = self.state
        if self.validation is not None and state.best_params is not None:
            state.params = state.best_params.copy()
        return state, self.history


def fit_stochastic(problem, options, state, X, Y, sample_weight, random_state, *,
                   incremental=False, validation=None, poisson_constant=None,
                   on_epoch=None):
    """Mini-batch training (sgd, adam, rmsprop), as scikit-learn's ``_fit_stochastic``:
    up to ``options.max_iter`` epochs (one if ``incremental``: partial_fit) from
    ``state``, shuffled with draws from ``random_state``, stopping by scikit-learn's rules
    on the training loss, or on ``validation``'s score when given (early stopping, whose
    best epoch's parameters end the fit). ``on_epoch(params)`` after every epoch may
    return True to stop there (scikit-learn's callbacks).

    ``state`` is not written: returns (the new TrainState, the call's History). Raises
    scikit-learn's ValueError if the loss becomes non-finite (unless early stopping has
    a best epoch to fall back on).
    """
    # a bar on a terminal with verbose; the "Iteration ..." lines go to stdout as before,
    # through the bar so that the two never garble each other
    bar = Progress(1 if incremental else options.max_iter, "epochs",
                   enabled=None if options.verbose else False)
    fit = _Fit(problem, options, state, np.arange(X.shape[0], dtype=np.int64),
               sample_weight, random_state, incremental=incremental, validation=validation,
               poisson_constant=poisson_constant, on_epoch=on_epoch, say=bar.print)
    params, optimizer = fit.state.params, fit.state.optimizer
    grads = np.empty_like(params)
    work = np.empty(layout.train_workspace_size(problem.table, fit.batch_size), X.dtype)
    with blas_threads(problem.table, fit.batch_size), bar, sigint_deferred() as interrupted:
        while True:
            rows = fit.epoch_rows()
            loss_sum, penalty_sum, nonfinite, complete = train_epoch_sliced(
                problem, params, optimizer, fit.code, fit.config(), X, Y, sample_weight,
                rows, fit.batch_size, grads, work, interrupted, bar)
            counted = fit.history.n_iter
            stop = fit.end_epoch(rows, loss_sum, penalty_sum, nonfinite, complete,
                                 interrupted())
            if fit.history.n_iter > counted:
                bar.update(note=f"loss {fit.history.loss:.4g}")
            if stop:
                break
    return fit.finish(interrupted())


def _model_threads(kernels, threads):
    """Python threads :func:`fit_stochastic_many` spreads a batch's models over. Numba's
    train_epoch_many runs its models one after another (its parallel variant is issue
    11's) but releases the GIL, so groups of models run in threads: ``threads``, or
    Numba's thread count (NUMBA_NUM_THREADS, numba.set_num_threads). Cython spreads the
    models on its own OpenMP threads; the reference holds the GIL: one group."""
    if kernels.__name__ != "fastnn.kernels.numba":
        return 1
    import numba

    return max(1, threads or numba.get_num_threads())


def fit_stochastic_many(fits, X, Y, sample_weight, *, bar=None, threads=None):
    """Train many models of one network at once: the :class:`_Fit` of each (the same
    kernels, table, loss and optimizer; each its own rows of the shared X and Y, its
    row of ``sample_weight`` (K, n_rows), hyperparameters, loss parameter, alpha and
    random state), in rounds of one epoch of every model still fitting, each epoch a
    few ``train_epoch_many`` calls over every such model. Each model follows its own
    stopping rules and leaves the batch when it stops; model k's result is bit for bit
    that of :func:`fit_stochastic` on its rows alone (the kernels' contract, and the
    same draws from its random state).

    Returns one entry per model: its (TrainState, History), or the ValueError its fit
    raised (a non-finite loss), so that one diverging model does not end the others.
    ``bar`` (a Progress over rounds) is advanced once per round; Ctrl-C ends every fit
    after its completed steps, as it ends one. ``threads``: see :func:`_model_threads`
    (the Cython kernels take theirs from OpenMP's limit).
    """
    first = fits[0].problem
    kernels, table = first.kernels, first.table
    K = len(fits)
    assert all(f.problem.kernels is kernels and f.problem.table is table
               and f.problem.loss == first.loss and f.code == fits[0].code for f in fits)
    n_params = fits[0].state.params.size
    dtype = X.dtype
    B = np.array([f.batch_size for f in fits], np.int64)
    params = np.empty((K, n_params), dtype)
    moments = np.empty((K, 2, n_params), dtype)
    for k, f in enumerate(fits):  # each model's state becomes a view of the batch's
        params[k], moments[k] = f.state.params, f.state.optimizer.moments
        f.state.params, f.state.optimizer.moments = params[k], moments[k]
    grads = np.empty_like(params)
    work = np.empty((K, layout.train_workspace_size(table, int(B.max()))), dtype)
    loss_param = np.array([f.problem.loss_param for f in fits], np.float64)
    alpha = np.array([f.problem.alpha for f in fits], np.float64)
    seed = np.array([f.problem.dropout_seed for f in fits], np.int64)
    step = np.empty(K, np.int64)
    config = np.empty((K, _k.N_CONFIG))
    results = [None] * K
    # a call runs up to this many batches of each model (about SLICE_FLOPS in all)
    per_model = max(1, batches_per_call(table, int(B.max())) // K)
    batch = B.tolist()
    threads = _model_threads(kernels, threads)

    def run_group(calls, perm, sums):
        """One train_epoch_many call over the models of ``calls`` ((model, rows) pairs,
        their rows already in ``perm``); returns their non-finite flags (K,)."""
        counts = np.zeros(K, np.int64)
        for k, c in calls:
            counts[k] = c
        flags = np.zeros(K, np.int64)  # each group its own: the kernel writes all K
        kernels.train_epoch_many(
            X, Y, sample_weight, perm, counts, B, params, table, first.loss, loss_param,
            alpha, fits[0].code, config, moments, step, grads, work, sums, seed,
            (counts > 0).astype(np.int64), flags)
        return flags

    def run_round(fitting, epochs, pool):
        """One epoch of each model of ``fitting`` over its rows ``epochs[k]``, as
        train_epoch_many calls of at most ``per_model`` batches per model (the models in
        ``threads`` groups, one call each on the pool's threads, when there are several);
        returns the loss sums, whether a non-finite loss ended each model's epoch, the
        rows run."""
        sums = np.zeros((K, 2))
        stopped = np.zeros(K, np.int64)
        done = [0] * K
        while not interrupted():
            calls = [(k, min(per_model * batch[k], epochs[k].size - done[k]))
                     for k in fitting if not stopped[k] and done[k] < epochs[k].size]
            if not calls:
                break
            perm = np.zeros((K, max(c for _, c in calls)), np.int64)
            for k, c in calls:
                perm[k, :c] = epochs[k][done[k]:done[k] + c]
                done[k] += c
            groups = [calls[g::threads] for g in range(min(threads, len(calls)))]
            if len(groups) == 1:
                stopped |= run_group(calls, perm, sums)
            else:  # the models' rows of every array are disjoint between the groups
                for flags in pool.map(lambda group: run_group(group, perm, sums), groups):
                    stopped |= flags
        return sums.tolist(), stopped.tolist(), done

    with blas_threads(table, int(B.max())), sigint_deferred() as interrupted, \
            ThreadPoolExecutor(threads) as pool:
        fitting = list(range(K))
        while fitting and not interrupted():
            epochs = {k: fits[k].epoch_rows() for k in fitting}
            for k in fitting:
                config[k] = fits[k].config()
            step[fitting] = [fits[k].state.optimizer.step for k in fitting]
            sums, stopped, done = run_round(fitting, epochs, pool)
            steps = step.tolist()
            for k in fitting:
                f = fits[k]
                f.state.optimizer.step = steps[k]
                complete = done[k] == epochs[k].size and not stopped[k]
                try:
                    if f.end_epoch(epochs[k], *sums[k], bool(stopped[k]), complete,
                                   interrupted()):
                        results[k] = f
                except ValueError as exc:
                    results[k] = exc
            fitting = [k for k in fitting if results[k] is None]
            if bar is not None:
                bar.update(note=f"{len(fitting)}/{K} models fitting")
    out = []
    for f, r in zip(fits, results):
        if isinstance(r, ValueError):
            out.append(r)
            continue
        state, history = f.finish(interrupted())
        state.params = state.params.copy()  # off the batch's buffers
        state.optimizer.moments = state.optimizer.moments.copy()
        out.append((state, history))
    return out


def _track_validation(state, score, tol):
    """Early stopping's bookkeeping after an epoch scored ``score`` on held-out rows."""
    if score < state.best_validation_score + tol:
        state.no_improvement_count += 1
    else:
        state.no_improvement_count = 0
    if score > state.best_validation_score:
        state.best_validation_score = score
        state.best_params = state.params.copy()


def _track_training(state, loss, tol):
    """The training-loss stopping rule's bookkeeping after an epoch of loss ``loss``."""
    if loss > state.best_loss - tol:
        state.no_improvement_count += 1
    else:
        state.no_improvement_count = 0
    if loss < state.best_loss:
        state.best_loss = loss


def fit_lbfgs(problem, options, params, X, Y, sample_weight, poisson_constant=None,
              on_iteration=None):
    """Full-batch L-BFGS-B through scipy on the kernels' forward_backward, from
    ``params`` (not written); ``on_iteration(params)`` after every iteration.

    The objective is (sum_i w_i loss_i + alpha/2 ||W||^2) / sum_i w_i with its exact
    gradient. Returns (the new parameters, scipy's iteration count, ``loss_`` in
    scikit-learn's convention).
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
            problem.alpha, grads, work)
        return (data + penalty) / sw, grads.astype(np.float64)

    verbose = options.verbose
    iprint = 1 if verbose is True or verbose >= 1 else -1
    scipy_options = {"maxfun": options.max_fun, "maxiter": options.max_iter,
                     "gtol": options.tol}
    if iprint > 0:
        scipy_options["disp"] = True
    with blas_threads(problem.table, X.shape[0]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*iprint.*", category=DeprecationWarning)
        result = scipy.optimize.minimize(
            objective, params.astype(np.float64), method="L-BFGS-B", jac=True,
            options=scipy_options,
            callback=None if on_iteration is None else (
                lambda xk: on_iteration(xk.astype(params.dtype))))
    n_iter = _check_optimize_result("lbfgs", result, options.max_iter)
    params = np.ascontiguousarray(result.x, dtype=params.dtype)
    data, penalty = problem.kernels.forward_backward(
        X, Y, sample_weight, params, problem.table, problem.loss, problem.loss_param,
        problem.alpha, grads, work)
    return params, n_iter, (data / problem.report_divisor + penalty) / sw + offset
