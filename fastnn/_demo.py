"""The quick-start demo: a one-hidden-layer MLP on scikit-learn's digits, per backend.

Until the compiled training epoch lands, the mini-batch loop here is Python calling one
backend's kernels (dense forward, fused softmax cross-entropy, dense backward, Adam over
the flat parameter buffer), with scikit-learn's conventions: L2 penalty alpha/2 ||W||^2
per batch, Adam with the bias correction folded into the step size.
"""

import time

import numpy as np

from . import _backends, kernels as _k
from ._network import init_params, layout, unflatten


def train(X, Y, hidden=100, epochs=30, batch_size=200, lr=1e-3, alpha=1e-4, seed=0,
          backend=None, dtype=np.float64):
    """Train a relu MLP with softmax output on one-hot Y; returns the flat parameters."""
    kernels = _backends.get_kernels(backend)
    X = np.ascontiguousarray(X, dtype=dtype)
    Y = np.ascontiguousarray(Y, dtype=dtype)
    sizes = [X.shape[1], hidden, Y.shape[1]]
    rng = np.random.RandomState(seed)
    params = init_params(sizes, "relu", rng, dtype)
    grads, m, v = (np.zeros_like(params) for _ in range(3))
    (W0, W1), (b0, b1) = unflatten(params, sizes)
    (dW0, dW1), (db0, db1) = unflatten(grads, sizes)
    w_mask = np.zeros_like(params)  # 1 on weights, 0 on biases: L2 applies to weights only
    for w, b, _ in layout(sizes)[0]:
        w_mask[w:b] = 1
    hid = np.empty((batch_size, hidden), dtype)
    raw = np.empty((batch_size, Y.shape[1]), dtype)
    delta = np.empty_like(raw)
    delta_hid = np.empty_like(hid)
    loss_out = np.empty(batch_size, dtype)
    ones = np.ones(batch_size, dtype)
    eps = float(np.finfo(dtype).eps)
    t = 0
    for _ in range(epochs):
        perm = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            idx = perm[start:start + batch_size]
            nb = len(idx)
            xb, yb = X[idx], Y[idx]
            kernels.dense_forward(xb, W0, b0, _k.RELU, 0.0, hid[:nb])
            kernels.dense_forward(hid[:nb], W1, b1, _k.IDENTITY, 0.0, raw[:nb])
            kernels.softmax_cross_entropy_loss_gradient(yb, raw[:nb], ones[:nb], eps,
                                                        loss_out[:nb], delta[:nb])
            delta[:nb] /= nb
            kernels.dense_backward(hid[:nb], delta[:nb], dW1, db1)
            kernels.dense_backward_delta(delta[:nb], W1, hid[:nb], _k.RELU, 0.0, delta_hid[:nb])
            kernels.dense_backward(xb, delta_hid[:nb], dW0, db0)
            grads += (alpha / nb) * w_mask * params
            t += 1
            c1 = np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            kernels.adam_step_(params, grads, m, v, lr, 0.9, 0.999, 0.0, False, c1, 1.0, 0.0, 1e-8)
    return params, sizes


def predict(params, sizes, X, backend=None):
    """Class indices predicted by the trained network."""
    kernels = _backends.get_kernels(backend)
    X = np.ascontiguousarray(X, dtype=params.dtype)
    (W0, W1), (b0, b1) = unflatten(params, sizes)
    hid = np.empty((X.shape[0], W0.shape[1]), params.dtype)
    raw = np.empty((X.shape[0], W1.shape[1]), params.dtype)
    kernels.dense_forward(X, W0, b0, _k.RELU, 0.0, hid)
    kernels.dense_forward(hid, W1, b1, _k.IDENTITY, 0.0, raw)
    return raw.argmax(axis=1)


def run(epochs=30, out=print):
    """Fit digits with every available backend (and scikit-learn), print accuracy and time."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    import warnings

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
