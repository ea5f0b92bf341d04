"""The cv-delta workload: a grid of Huber deltas x folds, batched vs one fit per task.

    python -m fastnn.bench.cvdelta [--rows 400,20000] [--repeats 3] [--backend cython]
                                   [--max-iter 200] [--out DIR]

6 deltas (cv-delta's defaults) x 5 folds (KFold, shuffled, random_state 0) of the
shipped example (``fastnn/data/outliers.csv``: 400 rows, 4 features; larger row counts
come from the same generator, ``fastnn._cvdelta.make_example_data``), features and
target standardized once, MLPRegressor(loss="huber", hidden_layer_sizes=(32,),
random_state=0), scored by neg_median_absolute_error. Rows, side by side in one run,
interleaved per repeat (so drift on this shared machine hits them alike):

- ``MLPRegressorCV``: the 30 models in one batched call per round of epochs, its models
  on the OpenMP threads (``--threads``, default all cores);
- ``GridSearchCV n_jobs=1``: 30 fits of fastnn's MLPRegressor in this process;
- ``GridSearchCV n_jobs=2``: the same through joblib's loky processes (warm: joblib
  keeps its workers between searches, and the warm-up run started them; a first search
  in a session also pays their start-up, ~1 s here).

Reported: median seconds per whole search and each row's ratio to MLPRegressorCV, and
the per-model overhead that remains: (batched seconds - the kernel's seconds) / models,
the kernel's seconds from a run with ``train_epoch_many`` timed. The searches are checked
equal (best delta and every fold score) before any time is reported.

The float64 GEMM peak (scipy's dgemm, 1 and 2 threads) is measured in the same run.
Writes cvdelta.json to --out. Times are of this machine on this day: compare the rows
of one run, never runs of different days.
"""

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

DELTAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def data(rows):
    from fastnn._cvdelta import EXAMPLE_CSV, make_example_data, read_csv

    if rows == 400:
        X, y, _ = read_csv(EXAMPLE_CSV, "y")
    else:
        _, table = make_example_data(n=rows)
        X, y = table[:, :-1], table[:, -1]
    return (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()


def searches(backend, max_iter, threads):
    """name -> function(X, y) returning a fitted search."""
    from sklearn.model_selection import GridSearchCV, KFold

    from fastnn import MLPRegressor, MLPRegressorCV

    kw = dict(loss="huber", hidden_layer_sizes=(32,), max_iter=max_iter, random_state=0,
              backend=backend)
    grid = {"delta": list(DELTAS)}
    cv = KFold(5, shuffle=True, random_state=0)
    scoring = "neg_median_absolute_error"

    def batched(X, y):
        return MLPRegressorCV(grid, cv=cv, scoring=scoring, refit=False, n_jobs=threads,
                              **kw).fit(X, y)

    def grid_search(n_jobs):
        def run(X, y):
            return GridSearchCV(MLPRegressor(**kw), grid, cv=cv, scoring=scoring,
                                refit=False, n_jobs=n_jobs).fit(X, y)
        return run

    return {"MLPRegressorCV": batched, "GridSearchCV n_jobs=1": grid_search(1),
            "GridSearchCV n_jobs=2": grid_search(2)}


def kernel_seconds(run, X, y, backend):
    """Seconds spent inside train_epoch_many during one batched search."""
    from fastnn import _backends

    kernels = _backends.get_kernels(backend)
    inner, spent = kernels.train_epoch_many, [0.0]

    def timed(*args):
        t = time.perf_counter()
        try:
            return inner(*args)
        finally:
            spent[0] += time.perf_counter() - t

    kernels.train_epoch_many = timed
    try:
        run(X, y)
    finally:
        kernels.train_epoch_many = inner
    return spent[0]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn.bench.cvdelta")
    parser.add_argument("--rows", default="400,20000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=".")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # ConvergenceWarning of the capped fits, in every row
    runs = searches(args.backend, args.max_iter, args.threads)
    from . import report as reporting
    from .compare import gemm_peak

    peak = {t: gemm_peak(np.float64, t, 5)["scipy_blas_gemm"] for t in (1, 2)}
    print("float64 GEMM peak (scipy dgemm 1024^3, best of 5): "
          f"{peak[1]:.1f} / {peak[2]:.1f} GFLOP/s on 1 / 2 threads", flush=True)
    report = {"backend": args.backend, "max_iter": args.max_iter, "workloads": {},
              "gemm_peak_gflops": peak}
    for rows in (int(r) for r in args.rows.split(",")):
        X, y = data(rows)
        fitted = {name: run(X, y) for name, run in runs.items()}  # warm-up, and checked
        ref = fitted["GridSearchCV n_jobs=1"].cv_results_
        for name, search in fitted.items():
            for k in range(5):
                key = f"split{k}_test_score"
                np.testing.assert_allclose(search.cv_results_[key], ref[key], rtol=1e-12,
                                           err_msg=f"{name} {key}")
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                t = time.perf_counter()
                run(X, y)
                times[name].append(time.perf_counter() - t)
        median = {name: statistics.median(t) for name, t in times.items()}
        kernel = kernel_seconds(runs["MLPRegressorCV"], X, y, args.backend)
        n_models = len(DELTAS) * 5
        row = {"rows": rows, "median_s": median,
               "min_s": {n: min(t) for n, t in times.items()},
               "speedup": {n: median[n] / median["MLPRegressorCV"] for n in runs},
               "kernel_s": kernel,
               "overhead_ms_per_model": 1e3 * (median["MLPRegressorCV"] - kernel) / n_models,
               "best_delta": fitted["MLPRegressorCV"].best_params_["delta"]}
        report["workloads"][str(rows)] = row
        print(f"rows {rows}: " + ", ".join(
            f"{n} {median[n]:.3f} s ({row['speedup'][n]:.1f}x)" for n in runs)
            + f"; kernel {kernel:.3f} s, overhead {row['overhead_ms_per_model']:.2f} ms/model"
            f", best delta {row['best_delta']:g}", flush=True)
    out = Path(args.out) / "cvdelta.json"
    reporting.write_json(out, report)  # creates --out
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
