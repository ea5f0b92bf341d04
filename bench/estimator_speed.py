"""What the scikit-learn-compatible estimator costs on top of the engine, on digits.

    python -m bench.estimator_speed [--epochs 20] [--repeats 7] [--out DIR]

Rows, per fastnn backend (and scikit-learn):
- fit time per epoch of ``MLPClassifier(hidden_layer_sizes=(100,), max_iter=E, tol=0)``
  against the raw engine (``train_epoch`` on preallocated buffers, bench.workloads) doing
  the same epochs; target: the estimator within 1.2x of the engine;
- predict on 1 row and on all 1797 rows against scikit-learn's predict; targets: 10x and
  3x faster.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    report.save(args.out, "estimator_speed", vars(args), rows, skipped)


if __name__ == "__main__":
    main()
