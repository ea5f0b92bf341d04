"""Two fits at once: one after the other vs in two threads, per backend (does the GIL go?).

    python -m fastnn.bench.threads [--workload mid] [--dtype float64] [--epochs 10] [--repeats 5]
                            [--backends numba,cython,numpy] [--no-sklearn] [--out DIR]

For each fastnn backend with ``train_epoch`` (and scikit-learn's MLPClassifier for
comparison): two ``MLPClassifier`` fits on the workload's data (fastnn.bench.workloads: its
hidden layers and batch size, Adam, alpha 1e-4, exactly ``--epochs`` epochs: tol=0),
random_state 0 and 1,

- sequential: the two fits one after the other in the main thread;
- threads: the two fits in two threads released together (a Barrier), then joined.

BLAS is pinned to 1 thread for the whole run (threadpoolctl, set in the main thread
before any worker thread exists, so the fits' own per-fit pinning cannot change it): the
figure is about the GIL, not about BLAS threads. The compiled epoch (Cython ``nogil``,
Numba ``nogil=True``) releases the GIL, so on 2 free cores two threads should approach
2x; the NumPy reference and scikit-learn run Python per mini-batch and hold the GIL
between NumPy calls. Each repeat times both modes (sequential first, then threads);
medians over ``--repeats``; speedup = sequential / threads. Every threaded fit's
weights are checked bit for bit against the sequential fit's. A busy machine shows as a
low speedup: the JSON records the load average before and after. Writes threads.json.
"""

import argparse
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from . import report, workloads


def _estimator(cls, workload, epochs, seed, **kw):
    return cls(hidden_layer_sizes=workload.hidden, activation="relu", solver="adam",
               alpha=workloads.ALPHA, batch_size=workload.batch_size,
               learning_rate_init=workloads.LEARNING_RATE, beta_1=workloads.BETA1,
               beta_2=workloads.BETA2, epsilon=workloads.EPSILON, max_iter=epochs, tol=0.0,
               n_iter_no_change=10**9, shuffle=True, random_state=seed, **kw)


def _sequential(make, X, y):
    t0 = time.perf_counter()
    fitted = [make(seed).fit(X, y) for seed in (0, 1)]
    return time.perf_counter() - t0, fitted


def _threads(make, X, y):
    estimators = [make(seed) for seed in (0, 1)]
    barrier = threading.Barrier(3)  # the two workers and this thread

    def work(est):
        barrier.wait()
        est.fit(X, y)

    threads = [threading.Thread(target=work, args=(est,)) for est in estimators]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, estimators


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.coefs_ + a.intercepts_,
                                                     b.coefs_ + b.intercepts_))


def measure(name, make, X, y, repeats):
    make(0).set_params(max_iter=1).fit(X, y)  # compile (Numba) / warm up
    seq_times, thr_times, identical = [], [], True
    for r in range(repeats):
        t_seq, seq = _sequential(make, X, y)
        t_thr, thr = _threads(make, X, y)
        identical &= all(_same(a, b) for a, b in zip(seq, thr))
        seq_times.append(t_seq)
        thr_times.append(t_thr)
        print(f"  {name:<16} repeat {r}: sequential {t_seq:.3f} s, threads {t_thr:.3f} s",
              file=sys.stderr)
    seq_s, thr_s = statistics.median(seq_times), statistics.median(thr_times)
    return {"impl": name, "one_fit_s": seq_s / 2, "sequential_s": seq_s, "threads_s": thr_s,
            "speedup": seq_s / thr_s, "identical": identical,
            "sequential_runs": seq_times, "threads_runs": thr_times}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastnn.bench.threads",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="mid", choices=list(workloads.WORKLOADS))
    p.add_argument("--dtype", default="float64", choices=workloads.DTYPES)
    p.add_argument("--epochs", type=int, default=10, help="epochs per fit (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed pairs per mode (default 5)")
    p.add_argument("--backends", default=",".join(workloads.BACKENDS),
                   help="comma-separated fastnn backends (default: every one)")
    p.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn's row")
    p.add_argument("--out", type=Path, default=report.DEFAULT_OUT)
    args = p.parse_args(argv)
    if note := report.openblas_env_note():
        print(note, file=sys.stderr)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn import MLPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)  # before any thread starts
    w = workloads.WORKLOADS[args.workload]
    data = workloads.load(args.workload, args.dtype)
    status = workloads.backend_status()
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    skipped = [{"impl": b, "reason": status.get(b, "unknown backend")}
               for b in wanted if status.get(b, "unknown backend")]
    load_before = os.getloadavg()
    rows = []
    with workloads.limit_threads(1):
        for backend in (b for b in workloads.BACKENDS if b in wanted and not status[b]):
            rows.append(measure(f"fastnn {backend}", lambda seed, b=backend: _estimator(
                MLPClassifier, w, args.epochs, seed, backend=b), data.X, data.y, args.repeats))
        if not args.no_sklearn:
            rows.append(measure("scikit-learn", lambda seed: _estimator(
                SkMLP, w, args.epochs, seed), data.X, data.y, args.repeats))
    load_after = os.getloadavg()

    print(f"{w.name} ({w.n_samples} x {w.n_features}, hidden {w.hidden}, batch "
          f"{w.batch_size}), {args.dtype}, {args.epochs} epoch(s) per fit, BLAS 1 thread, "
          f"{workloads.all_threads()} usable cores; two fits, medians of {args.repeats}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(report.table(rows, [
        ("impl", "implementation", None),
        ("one_fit_s", "one fit s", "{:.3f}"),
        ("sequential_s", "2 fits sequential s", "{:.3f}"),
        ("threads_s", "2 fits in 2 threads s", "{:.3f}"),
        ("speedup", "speedup", "{:.2f}"),
        ("identical", "same weights", None),
    ]))
    return report.save(args.out, "threads", {
        "workload": w.name, "layer_sizes": w.layer_sizes, "batch_size": w.batch_size,
        "dtype": args.dtype, "epochs": args.epochs, "repeats": args.repeats, "blas_threads": 1,
        "load_average_before": load_before, "load_average_after": load_after,
        "timing": "wall clock: two fits one after the other vs two threads released by a "
                  "barrier until both joined"}, rows, skipped)


if __name__ == "__main__":
    main()
