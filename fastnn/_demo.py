"""The quick-start demo: a one-hidden-layer MLP on scikit-learn's digits, per backend.

Each epoch is one call of the backend's compiled ``train_epoch`` (forward, fused softmax
cross-entropy, backward, L2 and Adam for every mini-batch), with scikit-learn's
conventions, so scikit-learn's MLPClassifier with the same settings is the yardstick.
"""

import time
import warnings

import numpy as np

from . import _backends, kernels as _k
from ._network import forward_workspace_size, init_params, train_workspace_size


def train(X, Y, hidden=100, epochs=30, batch_size=200, lr=1e-3, alpha=1e-4, seed=0,
          backend=None, dtype=np.float64):
    """Train a relu MLP with softmax output on one-hot Y; returns (params, layer_sizes)."""
    kernels = _backends.get_kernels(backend)
    X = np.ascontiguousarray(X, dtype=dtype)
    Y = np.ascontiguousarray(Y, dtype=dtype)
    sizes = np.array([X.shape[1], hidden, Y.shape[1]], dtype=np.int64)
    rng = np.random.RandomState(seed)
    params = init_params(sizes, "relu", rng, dtype)
    state = np.zeros((2, params.size), dtype)
    grads = np.empty_like(params)
    work = np.empty(train_workspace_size(sizes, batch_size), dtype)
    w = np.ones(X.shape[0], dtype)
    hyper = np.array([lr, 0.9, 0.999, 1e-8, 0.0])
    eps = float(np.finfo(dtype).eps)
    acts = np.array([_k.RELU], dtype=np.int64)
    step = 0
    for _ in range(epochs):
        perm = rng.permutation(X.shape[0]).astype(np.int64)
        _, _, step, _ = kernels.train_epoch(X, Y, w, perm, batch_size, params, sizes, acts,
                                            0.0, _k.SOFTMAX_CROSS_ENTROPY, eps, alpha, _k.ADAM,
                                            hyper, state, step, grads, work)
    return params, sizes


def predict(params, sizes, X, backend=None):
    """Class indices predicted by the trained network."""
    kernels = _backends.get_kernels(backend)
    X = np.ascontiguousarray(X, dtype=params.dtype)
    raw = np.empty((X.shape[0], sizes[-1]), params.dtype)
    work = np.empty(forward_workspace_size(sizes, X.shape[0]), params.dtype)
    kernels.forward(X, params, sizes, np.array([_k.RELU], np.int64), 0.0, work, raw)
    return raw.argmax(axis=1)


def run(epochs=30, out=print):
    """Fit digits with every available backend (and scikit-learn), print accuracy and time."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    Y_tr = np.eye(10)[y_tr]
    out(f"digits: {len(X_tr)} train / {len(X_te)} test rows, 64 features, 10 classes; "
        f"MLP (100,) relu, adam, batch 200, {epochs} epochs")
    out(f"{'implementation':<24}{'accuracy':>10}{'fit time (s)':>14}")
    for backend in _backends.available_backends():
        train(X_tr[:200], Y_tr[:200], epochs=1, backend=backend)  # compile / warm up
        t0 = time.perf_counter()
        params, sizes = train(X_tr, Y_tr, epochs=epochs, backend=backend)
        elapsed = time.perf_counter() - t0
        acc = np.mean(predict(params, sizes, X_te, backend) == y_te)
        out(f"{'fastnn kernels, ' + backend:<24}{acc:>10.4f}{elapsed:>14.3f}")
    clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=epochs, batch_size=200,
                        random_state=0, tol=0, n_iter_no_change=epochs + 1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: fixed epochs, on purpose
        clf.fit(X_tr, y_tr)
    elapsed = time.perf_counter() - t0
    out(f"{'scikit-learn MLP':<24}{clf.score(X_te, y_te):>10.4f}{elapsed:>14.3f}")
