"""Workloads and training drivers shared by every benchmark (no setup is written twice).

Every workload is a classification problem trained the same way by every implementation:
hidden layers of the workload's activation (relu, or tanh for deep_tanh), softmax
cross-entropy, Adam with scikit-learn's defaults (lr 1e-3, betas 0.9/0.999, eps 1e-8),
L2 penalty alpha = 1e-4, shuffled mini-batches.

=========  ============  =======  ===========  ==========  =====  ==============================
name       rows x cols   classes  hidden       activation  batch  data
=========  ============  =======  ===========  ==========  =====  ==============================
tiny       5000 x 20     3        (32,)        relu        32     synthetic, seed 0
digits     1797 x 64     10       (100,)       relu        200    sklearn.datasets.load_digits / 16
mid        20000 x 50    5        (64, 64)     relu        128    synthetic, seed 0
big        50000 x 100   10       (256, 128)   relu        256    synthetic, seed 0
deep_tanh  4000 x 32     10       (64,) * 8    tanh        128    synthetic, seed 0
wide       10000 x 784   10       (128,)       relu        128    synthetic, seed 0
=========  ============  =======  ===========  ==========  =====  ==============================

deep_tanh is a deep narrow network where the elementwise tanh weighs as much as the small
GEMMs (XLA vectorises it); wide has hundreds of input features, so the first layer's GEMMs
dominate.

Synthetic data: X standard normal, labels the argmax of a random linear teacher plus
noise (all from ``numpy.random.default_rng(0)``), so every run sees the same numbers.

Drivers: :class:`FastnnTrainer` (one backend's ``train_epoch`` on preallocated buffers),
:func:`sklearn_fit` (``MLPClassifier`` with the same hyperparameters, fixed epochs) and
:class:`TorchTrainer` (eager PyTorch, imported only when used); JAX's is in
``fastnn.bench.jax_peer``. :func:`limit_threads` pins BLAS (and torch) threads.
Importing this module imports numpy and fastnn only.
"""

import contextlib
import functools
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np

import fastnn.kernels as fk
from fastnn._backends import get_kernels
from fastnn._engine import OptimizerState, Problem, blas_threads, train_steps
from fastnn.kernels import layout

SEED = 0
ALPHA = 1e-4
LEARNING_RATE = 1e-3
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
DTYPES = ("float32", "float64")

# fastnn backends in the order rows are shown (compiled first, the NumPy spec last).
BACKENDS = ("numba", "cython", "numpy")


@dataclass(frozen=True)
class Workload:
    name: str
    n_samples: int
    n_features: int
    n_classes: int
    hidden: tuple
    batch_size: int
    activation: str = "relu"  # of every hidden layer: "relu" or "tanh"

    @property
    def layer_sizes(self):
        return (self.n_features, *self.hidden, self.n_classes)

    @property
    def n_batches(self):
        """Mini-batch steps per epoch (the last batch may be short)."""
        return -(-self.n_samples // self.batch_size)

    @property
    def gemm_flops_per_epoch(self):
        """Floating-point operations of the GEMMs of one epoch, 2*m*n*k per GEMM.

        Per layer l (n_in x n_out weights) and batch of m rows: forward a @ W (2 m n_in
        n_out), backward dW = a.T @ delta (same), and delta_prev = delta @ W.T for every
        layer but the first (same). Summed over batches, m adds up to n_samples.
        Elementwise work (activations, loss, bias, optimizer) is not counted.
        """
        sizes = self.layer_sizes
        per_row = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
        first = 2 * sizes[0] * sizes[1]
        return self.n_samples * (3 * per_row - first)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("tiny", 5000, 20, 3, (32,), 32),
        Workload("digits", 1797, 64, 10, (100,), 200),
        Workload("mid", 20000, 50, 5, (64, 64), 128),
        Workload("big", 50000, 100, 10, (256, 128), 256),
        Workload("deep_tanh", 4000, 32, 10, (64,) * 8, 128, "tanh"),
        Workload("wide", 10000, 784, 10, (128,), 128),
    )
}
DEFAULT_WORKLOADS = "tiny,digits"


def select_workloads(spec):
    """Workloads named in a comma-separated ``spec`` ("all" for every one), in table order."""
    names = list(WORKLOADS) if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if "cifar-cnn" in unknown:  # a conv table trained by the engine: not an MLP fit
        raise ValueError("the cifar-cnn workload has its own runner: python -m "
                         "fastnn.bench.cnn [--impls cython,numba,torch] [--threads 1,2]")
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; expected names from {list(WORKLOADS)} or 'all'")
    return [WORKLOADS[n] for n in WORKLOADS if n in names]


@dataclass(frozen=True)
class Data:
    X: np.ndarray  # (n, n_features), the benchmark dtype, C-contiguous
    y: np.ndarray  # (n,) int64 class labels
    Y: np.ndarray  # (n, n_classes) one-hot, the benchmark dtype
    sample_weight: np.ndarray  # (n,) ones, the benchmark dtype


@functools.lru_cache(maxsize=None)
def load(name, dtype):
    """The data of workload ``name`` in ``dtype`` (cached: callers must not modify it)."""
    w = WORKLOADS[name]
    dtype = np.dtype(dtype)
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        X, y = digits.data / 16.0, digits.target  # pixels 0..16 -> [0, 1]
    else:
        rng = np.random.default_rng(SEED)
        X = rng.standard_normal((w.n_samples, w.n_features))
        teacher = rng.standard_normal((w.n_features, w.n_classes))
        y = np.argmax(X @ teacher + rng.standard_normal((w.n_samples, w.n_classes)), axis=1)
    assert X.shape == (w.n_samples, w.n_features), (name, X.shape)
    y = y.astype(np.int64)
    X = np.ascontiguousarray(X, dtype=dtype)
    Y = np.zeros((w.n_samples, w.n_classes), dtype)
    Y[np.arange(w.n_samples), y] = 1
    return Data(X, y, Y, np.ones(w.n_samples, dtype))


def backend_status():
    """{backend: None if it has train_epoch here, else the reason it cannot be benchmarked}.

    Backends whose train_epoch has not landed (or that are not built) are reported, never
    silently dropped; they are picked up automatically once they have it.
    """
    status = {}
    for name in BACKENDS:
        try:
            kernels = get_kernels(name)
        except (ImportError, ValueError) as exc:
            status[name] = f"not importable: {exc}"
            continue
        status[name] = None if hasattr(kernels, "train_epoch") else f"{kernels.__name__} has no train_epoch yet"
    return status


class FastnnTrainer:
    """One fastnn backend's ``train_epoch`` on one workload, buffers allocated once.

    ``reset()`` draws fresh weights (scikit-learn's Glorot rule) and zeroes Adam's state;
    ``epoch(perm)`` is exactly one ``train_epoch`` call (a permutation is drawn from the
    trainer's RandomState when none is given); ``fit(epochs)`` = reset + epochs.
    ``dropout`` drops that share of every hidden layer's outputs in training.
    """

    def __init__(self, backend, workload, data, seed=SEED, dropout=0.0):
        self.kernels = get_kernels(backend)
        self.workload, self.data, self.seed = workload, data, seed
        self.dtype = data.X.dtype
        # the workload's activation on every hidden layer
        self.table = layout.dense_table(workload.layer_sizes,
                                        [fk.ACTIVATIONS[workload.activation]] * len(workload.hidden),
                                        dropout=dropout)
        self.config = np.zeros(fk.N_CONFIG)
        self.config[[fk.LR, fk.BETA1, fk.BETA2, fk.EPSILON]] = LEARNING_RATE, BETA1, BETA2, EPSILON
        log_eps = float(np.finfo(self.dtype).eps)  # scikit-learn's clip of the log-loss
        self.problem = Problem(self.kernels, self.table, fk.SOFTMAX_CROSS_ENTROPY, log_eps,
                               ALPHA, dropout_seed=seed)
        self.work = np.empty(layout.train_workspace_size(self.table, workload.batch_size),
                             self.dtype)
        self.reset()

    def reset(self):
        self.random_state = np.random.RandomState(self.seed)
        self.params = layout.init_params(self.table, self.workload.activation, self.random_state,
                                         self.dtype)
        self.optimizer = OptimizerState.new(self.params.size, self.dtype, LEARNING_RATE)
        self.grads = np.zeros_like(self.params)

    def permutation(self):
        return self.random_state.permutation(self.workload.n_samples).astype(np.int64)

    def epoch(self, perm=None):
        """One train_epoch call; returns the epoch's mean loss (scikit-learn's loss_)."""
        if perm is None:
            perm = self.permutation()
        d = self.data
        with blas_threads(self.table, self.workload.batch_size):  # as a fit runs it
            loss_sum, penalty_sum, nonfinite = train_steps(
                self.problem, self.params, self.optimizer, fk.ADAM, self.config, d.X, d.Y,
                d.sample_weight, perm, self.workload.batch_size, self.grads, self.work)
        if nonfinite:
            raise FloatingPointError(f"non-finite loss on {self.workload.name}: the timing would be meaningless")
        return (loss_sum + penalty_sum) / self.workload.n_samples

    def fit(self, epochs):
        self.reset()
        for _ in range(epochs):
            self.epoch()
        return self


def sklearn_classifier(workload, epochs, seed=SEED):
    """scikit-learn's MLPClassifier with the same hyperparameters, running exactly ``epochs``:
    tol=0 and a huge n_iter_no_change so it never stops early."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=workload.hidden, activation=workload.activation, solver="adam", alpha=ALPHA,
        batch_size=workload.batch_size, learning_rate_init=LEARNING_RATE, beta_1=BETA1,
        beta_2=BETA2, epsilon=EPSILON, max_iter=epochs, shuffle=True, tol=0.0,
        n_iter_no_change=10**9, early_stopping=False, random_state=seed)


def sklearn_fit(workload, data, epochs, seed=SEED):
    """Fit scikit-learn's MLPClassifier for exactly ``epochs`` (ConvergenceWarning silenced)."""
    from sklearn.exceptions import ConvergenceWarning

    clf = sklearn_classifier(workload, epochs, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(data.X, data.y)
    assert clf.n_iter_ == epochs, (clf.n_iter_, epochs)
    return clf


def torch_available():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


class TorchTrainer:
    """Eager PyTorch on the CPU: nn.Sequential of Linear and the workload's activation
    (nn.ReLU or nn.Tanh), CrossEntropyLoss, Adam (PyTorch's form, eps outside the root of
    the bias-corrected v).

    The loop indexes shuffled batches directly (no DataLoader). Adam's weight_decay is
    alpha / batch_size, the size of scikit-learn's per-batch L2 gradient (torch also
    applies it to the biases: the same work per step, not bit-identical training).
    """

    def __init__(self, workload, data, seed=SEED):
        import torch

        self.torch, self.workload, self.seed = torch, workload, seed
        self.dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[data.X.dtype]
        self.X = torch.from_numpy(data.X)
        self.y = torch.from_numpy(data.y)

    def fit(self, epochs):
        torch, w = self.torch, self.workload
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[w.activation]
        layers = []
        for fan_in, fan_out in zip(w.layer_sizes[:-1], w.layer_sizes[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out, dtype=self.dtype), activation()]
        model = torch.nn.Sequential(*layers[:-1])
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(BETA1, BETA2),
                                     eps=EPSILON, weight_decay=ALPHA / w.batch_size)
        criterion = torch.nn.CrossEntropyLoss()
        for _ in range(epochs):
            perm = torch.randperm(w.n_samples, generator=generator)
            for start in range(0, w.n_samples, w.batch_size):
                idx = perm[start:start + w.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(self.X[idx]), self.y[idx])
                loss.backward()
                optimizer.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite torch loss on {w.name}")
        return model


def all_threads():
    """The number of cores this process may run on ("all threads")."""
    return len(os.sched_getaffinity(0))


@contextlib.contextmanager
def limit_threads(n):
    """BLAS (and, if imported, torch) limited to ``n`` threads inside the block.

    numpy's and scipy's BLAS are loaded first: threadpoolctl only limits libraries already
    loaded, and the compiled kernels call scipy's BLAS (cython_blas), not numpy's.
    """
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS)
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)
