"""Training speed side by side: fastnn's train_epoch backends, scikit-learn, PyTorch.

    python -m bench.compare [--quick | --full] [--workloads tiny,digits,mid,big]
                            [--impls numba,cython,numpy,sklearn,torch] [--threads best|1|all]
                            [--epochs N] [--repeats N] [--out DIR]

Prints one table and writes ``compare.json`` and ``compare.png`` (matplotlib is optional:
without it the chart is skipped with a message) into ``--out`` (default bench/results/).

Rows: each fastnn backend that has ``train_epoch`` here (numba, cython, the numpy
reference; backends without it are listed as skipped), scikit-learn's MLPClassifier
(solver adam, relu, alpha 1e-4, shuffle, the workload's batch_size, max_iter = E,
tol = 0 and a huge n_iter_no_change so it never stops early, ConvergenceWarning
silenced) and eager PyTorch on the CPU when installed (see bench.workloads). float32 and
float64; workloads in bench.workloads.

What is timed: a fit of E epochs from fresh weights, end to end (for fastnn: init +
E train_epoch calls with a fresh permutation each; for scikit-learn: ``fit``; for torch:
building the model + the loop), after one untimed 1-epoch fit per row (Numba compilation
and first-call costs excluded). Median over R repeats. us/step = time / (E * n_batches).

GFLOP/s counts GEMM work only, 2*m*n*k per GEMM with m the batch rows: the forward
a @ W of every layer, the backward dW = a.T @ delta of every layer, and
delta_prev = delta @ W.T of every layer but the first (elementwise work is not counted).
% peak divides it by this machine's GEMM peak measured in the same run: numpy.matmul of
two 1024x1024 matrices of the same dtype, best of several taken at the start and at the
end of the run, with the same number of BLAS threads the row ran with.

Threads: each row is timed with 1 thread and with all cores (BLAS via threadpoolctl;
torch also via torch.set_num_threads) and the faster is shown; both are in the JSON. A
setting stops after a fit 3x slower than the best median so far ("gave_up" in the JSON):
on a busy machine multi-threaded BLAS on small matrices can be 100x slower, and timing
it fully would only make the run long.

Presets: --quick (about 2-3 minutes on 2 cores: fewer epochs and repeats, no big
workload for the numpy reference and scikit-learn), default (every row, moderate
repeats), --full (every row, more epochs and repeats: for the published figures).

Final figures: take them on a quiet machine. If OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
set (this workplace sets them on some CPUs for old OpenBLAS builds; they slow a current
numpy), unset both together for that command alone, never globally, and check in the
JSON's machine.blas which kernel ('architecture') OpenBLAS then runs:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m bench.compare --full
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench import report
from bench.workloads import (
    ALPHA,
    BACKENDS,
    BETA1,
    BETA2,
    DTYPES,
    EPSILON,
    LEARNING_RATE,
    FastnnTrainer,
    TorchTrainer,
    all_threads,
    backend_status,
    limit_threads,
    load,
    select_workloads,
    sklearn_fit,
    torch_available,
)

PRESETS = {
    "quick": dict(epochs={"tiny": 2, "digits": 10, "mid": 1, "big": 1}, repeats=3,
                  peak_repeats=5, skip={("numpy", "big"), ("sklearn", "big")}),
    "default": dict(epochs={"tiny": 5, "digits": 20, "mid": 2, "big": 1}, repeats=5,
                    peak_repeats=7, skip=set()),
    "full": dict(epochs={"tiny": 10, "digits": 40, "mid": 4, "big": 2}, repeats=7,
                 peak_repeats=10, skip=set()),
}
IMPLS = (*BACKENDS, "sklearn", "torch")  # torch last: its OpenMP threads spin after use
LABELS = {"numba": "fastnn numba", "cython": "fastnn cython", "numpy": "fastnn numpy (ref)",
          "sklearn": "scikit-learn", "torch": "torch eager"}
GEMM_SIZE = 1024
GIVE_UP = 3.0  # a thread setting whose fit takes 3x the best median so far stops timing


class _SklearnFit:
    def __init__(self, workload, data):
        self.workload, self.data = workload, data

    def fit(self, epochs):
        return sklearn_fit(self.workload, self.data, epochs)


def make_runner(impl, workload, data):
    if impl in BACKENDS:
        return FastnnTrainer(impl, workload, data)
    if impl == "sklearn":
        return _SklearnFit(workload, data)
    return TorchTrainer(workload, data)


def time_fits(runner, epochs, repeats, give_up_after=None):
    """Seconds of ``repeats`` fits of ``epochs`` epochs; stops early after a fit slower than
    ``give_up_after`` seconds (a thread setting that slow cannot be the faster one)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.fit(epochs)
        times.append(time.perf_counter() - start)
        if give_up_after is not None and times[-1] > give_up_after:
            break
    return times


def gemm_peak(dtype, threads, repeats, n=GEMM_SIZE):
    """GFLOP/s of numpy.matmul on two n x n matrices (best of ``repeats``), and scipy's
    BLAS gemm likewise (the compiled kernels call scipy's BLAS, which may be another build)."""
    from scipy.linalg import blas

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    gemm = blas.sgemm if np.dtype(dtype) == np.float32 else blas.dgemm
    aT, bT = a.T, b.T  # Fortran-ordered views: scipy's gemm takes them without a copy

    def best(call):
        call()
        elapsed = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            elapsed.append(time.perf_counter() - start)
        return 2.0 * n**3 / min(elapsed) / 1e9

    with limit_threads(threads):
        return {"numpy_matmul": best(lambda: np.matmul(a, b, out=out)),
                "scipy_blas_gemm": best(lambda: gemm(1.0, aT, bT))}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run, about 2-3 minutes on 2 cores")
    mode.add_argument("--full", action="store_true", help="every row, more epochs and repeats")
    p.add_argument("--workloads", default="all", help="comma-separated names or 'all' (default)")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="float32,float64 (default both)")
    p.add_argument("--threads", default="best", choices=("best", "1", "all"),
                   help="time with 1 thread, all cores, or both and keep the faster (default)")
    p.add_argument("--epochs", type=int, help="epochs per timed fit (overrides the preset)")
    p.add_argument("--repeats", type=int, help="timed fits per row (overrides the preset)")
    p.add_argument("--out", type=Path, default=report.DEFAULT_OUT,
                   help="output folder (default %(default)s, the checkout's bench/results)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    preset_name = "quick" if args.quick else "full" if args.full else "default"
    preset = PRESETS[preset_name]
    workloads = select_workloads(args.workloads)
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    impls = [i.strip() for i in args.impls.split(",")]
    if unknown := [i for i in impls if i not in IMPLS] + [d for d in dtypes if d not in DTYPES]:
        raise SystemExit(f"unknown implementation or dtype: {unknown}")
    n_all = all_threads()
    thread_counts = {"best": sorted({1, n_all}), "1": [1], "all": [n_all]}[args.threads]
    repeats = args.repeats or preset["repeats"]

    skipped, status = [], backend_status()
    for name, reason in status.items():
        if name in impls and reason:
            skipped.append({"impl": name, "reason": reason})
    if "torch" in impls and not torch_available():
        skipped.append({"impl": "torch", "reason": "torch is not installed"})
    runnable = [i for i in IMPLS if i in impls and not any(s["impl"] == i for s in skipped)]
    if note := report.openblas_env_note():
        print(note, file=sys.stderr)

    started = time.perf_counter()
    load_before = os.getloadavg()
    peaks_start = {d: {t: gemm_peak(d, t, preset["peak_repeats"]) for t in thread_counts} for d in dtypes}

    rows = []
    for impl in runnable:
        for w in workloads:
            if (impl, w.name) in preset["skip"]:
                # "the quick preset": `fastnn bench` runs it without a --quick option; --full
                # means the same in both command lines
                skipped.append({"impl": impl, "workload": w.name,
                                "reason": f"the {preset_name} preset skips it (--full runs it)"})
                continue
            epochs = args.epochs or preset["epochs"][w.name]
            steps = epochs * w.n_batches
            for dtype in dtypes:
                runner = make_runner(impl, w, load(w.name, dtype))
                per_threads, best = {}, None
                for i, t in enumerate(thread_counts):
                    with limit_threads(t):
                        if i == 0:
                            runner.fit(1)  # untimed: compilation and first-call costs
                        times = time_fits(runner, epochs, repeats, best and GIVE_UP * best)
                    best = min(best or np.inf, statistics.median(times))
                    per_threads[t] = {"seconds": times, "us_per_step": 1e6 * statistics.median(times) / steps,
                                      "gave_up": len(times) < repeats}
                    print(f"  {LABELS[impl]:<20} {w.name:<7} {dtype} {t} thread(s): "
                          f"{per_threads[t]['us_per_step']:9.1f} us/step", file=sys.stderr)
                threads = min(per_threads, key=lambda t: per_threads[t]["us_per_step"])
                median_s = statistics.median(per_threads[threads]["seconds"])
                gflops = epochs * w.gemm_flops_per_epoch / median_s / 1e9
                rows.append({
                    "workload": w.name, "dtype": dtype, "impl": impl, "label": LABELS[impl],
                    "threads": threads, "epochs": epochs, "steps": steps, "repeats": repeats,
                    "us_per_step": per_threads[threads]["us_per_step"],
                    "us_per_step_min": 1e6 * min(per_threads[threads]["seconds"]) / steps,
                    "gflops": gflops,
                    "per_threads": per_threads,
                })

    # The peak is taken at the start and at the end, best of both: load from other
    # processes depresses it, and a depressed peak would inflate every row's % peak.
    peaks_end = {d: {t: gemm_peak(d, t, preset["peak_repeats"]) for t in thread_counts} for d in dtypes}
    peaks = {d: {t: {k: max(peaks_start[d][t][k], peaks_end[d][t][k]) for k in peaks_start[d][t]}
                 for t in thread_counts} for d in dtypes}
    for r in rows:
        r["pct_peak"] = 100.0 * r["gflops"] / peaks[r["dtype"]][r["threads"]]["numpy_matmul"]
    order = {(w.name, d): i for i, (w, d) in enumerate((w, d) for w in workloads for d in dtypes)}
    rows.sort(key=lambda r: (order[r["workload"], r["dtype"]], IMPLS.index(r["impl"])))
    for r in rows:
        base = next((s for s in rows if s["impl"] == "sklearn" and s["workload"] == r["workload"]
                     and s["dtype"] == r["dtype"]), None)
        r["speedup_vs_sklearn"] = base["us_per_step"] / r["us_per_step"] if base else None

    columns = [("workload", "workload", None), ("dtype", "dtype", None), ("label", "implementation", None),
               ("threads", "thr", "{}"), ("us_per_step", "us/step", "{:.1f}"), ("gflops", "GFLOP/s", "{:.2f}"),
               ("pct_peak", "% peak", "{:.1f}"), ("speedup_vs_sklearn", "x sklearn", "{:.2f}")]
    print(report.table(rows, columns))
    print("\nGEMM peak (numpy.matmul 1024x1024, GFLOP/s): " + "; ".join(
        f"{d} " + ", ".join(f"{t} thr {p['numpy_matmul']:.1f}" for t, p in peaks[d].items()) for d in dtypes))
    if any(r["pct_peak"] > 100 for r in rows):
        print("warning: rows above 100% of the GEMM peak: the machine was busier while the peak "
              "was measured than during those rows (a noisy run)")

    payload = report.save(
        args.out, "compare", {
            "preset": preset_name, "repeats": repeats, "threads": args.threads,
            "thread_counts": thread_counts, "dtypes": dtypes,
            "epochs": {w.name: args.epochs or preset["epochs"][w.name] for w in workloads},
            "workloads": {w.name: {"n_samples": w.n_samples, "n_features": w.n_features,
                                   "n_classes": w.n_classes, "hidden": w.hidden,
                                   "batch_size": w.batch_size, "n_batches": w.n_batches,
                                   "gemm_flops_per_epoch": w.gemm_flops_per_epoch}
                          for w in workloads},
            "hyperparameters": {"activation": "relu", "loss": "softmax cross-entropy",
                                "solver": "adam", "learning_rate": LEARNING_RATE, "beta1": BETA1,
                                "beta2": BETA2, "epsilon": EPSILON, "alpha": ALPHA, "shuffle": True},
            "timing": "median over repeats of a fit of `epochs` epochs from fresh weights, after "
                      "one untimed 1-epoch fit; us_per_step = seconds / (epochs * n_batches)",
            "flops": "GEMMs only, 2*m*n*k each: forward a@W per layer, backward dW = a.T@delta "
                     "per layer, delta_prev = delta@W.T per layer but the first",
            "peak": f"numpy.matmul {GEMM_SIZE}x{GEMM_SIZE}, same dtype, best of "
                    f"{preset['peak_repeats']} at the start and as many at the end, per thread "
                    "count; pct_peak uses the row's thread count",
        }, rows, skipped,
        load_average_at_start=load_before, wall_seconds=time.perf_counter() - started,
        gemm_peak_gflops=peaks, gemm_peak_gflops_start_end=[peaks_start, peaks_end])
    png = plot(rows, args.out / "compare.png", title=f"fastnn bench.compare ({preset_name}, {payload['date']})")
    print(f"wrote {png}" if png else "matplotlib is not installed: skipped compare.png "
          "(pip install matplotlib, or fastnn's [plot] extra)")
    return payload


def plot(rows, path, title):
    """Grouped bars: us/step (log scale) and % of GEMM peak per workload/dtype. None
    without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    groups = list(dict.fromkeys((r["workload"], r["dtype"]) for r in rows))
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    width = 0.8 / max(len(impls), 1)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.3 * len(groups) + 2), 8), sharex=True)
    for k, impl in enumerate(impls):
        for ax, key in zip(axes, ("us_per_step", "pct_peak")):
            xs, ys = [], []
            for g, (wl, dt) in enumerate(groups):
                r = next((r for r in rows if r["impl"] == impl and r["workload"] == wl and r["dtype"] == dt), None)
                if r:
                    xs.append(g + (k - (len(impls) - 1) / 2) * width)
                    ys.append(r[key])
            ax.bar(xs, ys, width, label=LABELS[impl])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("microseconds per mini-batch step\n(lower is better)")
    axes[1].set_ylabel("% of GEMM peak\n(same dtype and threads)")
    axes[1].set_xticks(range(len(groups)), [f"{w}\n{d}" for w, d in groups])
    axes[0].legend(ncol=min(len(impls), 5), fontsize="small")
    axes[0].set_title(title, fontsize="medium")
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
