"""The quick-start demo: digits classification, fastnn's MLPClassifier per backend next to
scikit-learn's MLPClassifier with the same settings (same initial weights and shuffles)."""

import time
import warnings

from . import _backends


def run(epochs=30, out=print):
    """Fit digits with every available backend and with scikit-learn; print accuracy and
    fit time side by side."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from ._estimators import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    settings = dict(hidden_layer_sizes=(100,), max_iter=epochs, batch_size=200, tol=0.0,
                    n_iter_no_change=epochs + 1, random_state=0)
    out(f"digits: {len(X_tr)} train / {len(X_te)} test rows, 64 features, 10 classes; "
        f"MLP (100,) relu, adam, batch 200, {epochs} epochs")
    out(f"{'implementation':<24}{'accuracy':>10}{'fit time (s)':>14}")
    candidates = [(f"fastnn, {b}", MLPClassifier(backend=b, **settings))
                  for b in _backends.available_backends()]
    candidates.append(("scikit-learn", SkMLPClassifier(**settings)))
    for name, clf in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fixed epochs, on purpose
            if name.startswith("fastnn"):
                clf.set_params(max_iter=1).fit(X_tr[:50], y_tr[:50])  # compile / warm up
                clf.set_params(max_iter=epochs)
            t0 = time.perf_counter()
            clf.fit(X_tr, y_tr)
            elapsed = time.perf_counter() - t0
        out(f"{name:<24}{clf.score(X_te, y_te):>10.4f}{elapsed:>14.3f}")
