"""What the scikit-learn-compatible estimator costs on top of the engine, on digits.

    python -m fastnn.bench.estimator_speed [--epochs 20] [--repeats 7] [--out DIR]

Rows, per fastnn backend (and scikit-learn):
- fit time per epoch of ``MLPClassifier(hidden_layer_sizes=(100,), max_iter=E, tol=0)``
  against the raw engine (``train_epoch`` on preallocated buffers, fastnn.bench.workloads) doing
  the same epochs; target: the estimator within 1.2x of the engine;
- predict on 1 row and on all 1797 rows against scikit-learn's predict; targets: 10x and
  3x faster;
- "small fit": a whole 1-epoch fit of ``MLPClassifier`` / ``MLPRegressor((16,))`` on 64 rows
  x 10 features (3 classes), what cross-validation is made of, against scikit-learn's same
  fit (backend "auto"; the two alternate within each repeat); target: at most 0.4x.
Medians over ``--repeats``; every row measured in this one run, side by side.
"""

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from . import report, workloads


def _median_time(fn, repeats, number=1):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def _classifier(cls, epochs, **kw):
    return cls(hidden_layer_sizes=(100,), max_iter=epochs, tol=0.0,
               n_iter_no_change=10**9, random_state=0, **kw)


def _small_fits(repeats, number=20):
    """Rows of the "small fit": median ms per fit, fastnn and scikit-learn side by side."""
    from sklearn import neural_network

    import fastnn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 10))
    targets = {"MLPClassifier": np.arange(64) % 3, "MLPRegressor": X @ rng.normal(size=10)}
    rows = []
    for name, y in targets.items():
        fits = {impl: (lambda cls=getattr(module, name): cls(
                    hidden_layer_sizes=(16,), max_iter=1, random_state=0).fit(X, y))
                for impl, module in (("fastnn", fastnn), ("sklearn", neural_network))}
        times = {impl: [] for impl in fits}
        for fit in fits.values():
            fit()  # warm up
        for _ in range(repeats):
            for impl, fit in fits.items():
                times[impl].append(_median_time(fit, 1, number))
        fastnn_ms, sklearn_ms = (statistics.median(times[i]) * 1e3 for i in fits)
        rows.append(dict(estimator=name, fastnn_ms=fastnn_ms, sklearn_ms=sklearn_ms,
                         ratio=fastnn_ms / sklearn_ms))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn.bench.estimator_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=report.DEFAULT_OUT)
    args = parser.parse_args(argv)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn import MLPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)
    w = workloads.WORKLOADS["digits"]
    data = workloads.load("digits", "float64")
    X, y, one = data.X, data.y, np.ascontiguousarray(data.X[:1])
    n_batches = -(-w.n_samples // w.batch_size)

    sk = _classifier(SkMLP, args.epochs).fit(X, y)
    sk_fit = _median_time(lambda: _classifier(SkMLP, args.epochs).fit(X, y),
                          args.repeats) / args.epochs
    sk_one = _median_time(lambda: sk.predict(one), args.repeats, number=200)
    sk_all = _median_time(lambda: sk.predict(X), args.repeats, number=5)
    rows = [dict(implementation="scikit-learn", fit_ms_per_epoch=sk_fit * 1e3,
                 engine_ms_per_epoch=None, fit_over_engine=None,
                 predict_1_us=sk_one * 1e6, predict_all_us=sk_all * 1e6,
                 speedup_1=1.0, speedup_all=1.0)]
    status = workloads.backend_status()
    skipped = [{"impl": b, "reason": r} for b, r in status.items() if r]
    for backend in (b for b, r in status.items() if not r):
        trainer = workloads.FastnnTrainer(backend, w, data)
        trainer.fit(1)  # compile / warm up
        with workloads.limit_threads(1):
            engine = _median_time(lambda: trainer.fit(args.epochs), args.repeats) / args.epochs
        est = _classifier(MLPClassifier, args.epochs, backend=backend).fit(X, y)
        fit = _median_time(lambda: _classifier(MLPClassifier, args.epochs,
                                               backend=backend).fit(X, y),
                           args.repeats) / args.epochs
        one_t = _median_time(lambda: est.predict(one), args.repeats, number=200)
        all_t = _median_time(lambda: est.predict(X), args.repeats, number=5)
        rows.append(dict(implementation=f"fastnn {backend}", fit_ms_per_epoch=fit * 1e3,
                         engine_ms_per_epoch=engine * 1e3, fit_over_engine=fit / engine,
                         predict_1_us=one_t * 1e6, predict_all_us=all_t * 1e6,
                         speedup_1=sk_one / one_t, speedup_all=sk_all / all_t))

    print(f"digits 1797 x 64, MLP (100,), adam, batch 200, {args.epochs} epochs "
          f"({n_batches} steps per epoch); medians of {args.repeats} repeats")
    print(report.table(rows, [
        ("implementation", "implementation", None),
        ("fit_ms_per_epoch", "fit ms/epoch", "{:.2f}"),
        ("engine_ms_per_epoch", "engine ms/epoch", "{:.2f}"),
        ("fit_over_engine", "fit/engine", "{:.2f}"),
        ("predict_1_us", "predict 1 row us", "{:.1f}"),
        ("predict_all_us", "predict 1797 us", "{:.0f}"),
        ("speedup_1", "x sklearn (1)", "{:.1f}"),
        ("speedup_all", "x sklearn (1797)", "{:.1f}"),
    ]))
    small = _small_fits(args.repeats)
    print(f"\nsmall fit: 64 x 10, MLP (16,), 1 epoch; medians of {args.repeats} repeats")
    print(report.table(small, [
        ("estimator", "small fit", None),
        ("fastnn_ms", "fastnn ms", "{:.3f}"),
        ("sklearn_ms", "sklearn ms", "{:.3f}"),
        ("ratio", "fastnn/sklearn", "{:.2f}"),
    ]))
    report.save(args.out, "estimator_speed", vars(args), rows, skipped, small_fits=small)


if __name__ == "__main__":
    main()
