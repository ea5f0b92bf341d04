"""Training speed side by side: fastnn's train_epoch backends, scikit-learn, PyTorch, JAX.

    python -m fastnn.bench.compare [--quick | --full]
                                   [--workloads tiny,digits,mid,big,deep_tanh,wide]
                                   [--impls numba,cython,numpy,sklearn,jax,torch]
                                   [--dtypes float32,float64] [--threads best|1|all]
                                   [--epochs N] [--repeats N] [--out DIR]

Prints one table and writes ``compare.json`` and ``compare.png`` (matplotlib is optional:
without it the chart is skipped with a message) into ``--out`` (default ./fastnn-bench,
in the current folder). ``fastnn bench`` runs the same functions with the quick preset:

    plan = compare.plan(preset="quick", workloads="tiny", impls="cython,sklearn")
    results = compare.run(plan, progress=None)    # progress(row, done, total) per row
    compare.finish(results, "fastnn-bench")       # table, compare.json, compare.png

``plan`` checks the selection and lists the rows it will time (and what it skips, why);
``run`` times them and returns the results as data (what compare.json holds).

Rows: each fastnn backend that has ``train_epoch`` here (numba, cython, the numpy
reference; backends without it are listed as skipped), scikit-learn's MLPClassifier
(solver adam, relu, alpha 1e-4, shuffle, the workload's batch_size, max_iter = E,
tol = 0 and a huge n_iter_no_change so it never stops early, ConvergenceWarning
silenced), eager PyTorch on the CPU when installed (see fastnn.bench.workloads) and JAX
when jax and optax are installed: one jit-compiled call per epoch, lax.scan over its
mini-batches, optax Adam (see fastnn.bench.jax_peer for how its objective matches
fastnn's). torch and JAX use PyTorch's Adam form m_hat / (sqrt(v_hat) + eps); fastnn and
scikit-learn fold the bias correction into the step size (the same work per step). Every
implementation uses the workload's hidden activation (relu, tanh for deep_tanh).
float32 and float64; the workloads are those of fastnn.bench.workloads.

What is timed: a fit of E epochs from fresh weights, end to end (for fastnn: init +
E train_epoch calls with a fresh permutation each; for scikit-learn: ``fit``; for torch:
building the model + the loop; for JAX: fresh weights + E compiled epoch calls, waited
for), after one untimed 1-epoch fit per row (Numba compilation and first-call costs
excluded). Median over R repeats. us/step = time / (E * n_batches). JAX's compilation
(jit(...).lower(...).compile() of the epoch) is timed on its own: compile_seconds, in the
JSON and on a line under the table, never in us/step.

GFLOP/s counts GEMM work only, 2*m*n*k per GEMM with m the batch rows: the forward
a @ W of every layer, the backward dW = a.T @ delta of every layer, and
delta_prev = delta @ W.T of every layer but the first (elementwise work is not counted).
% peak divides it by this machine's GEMM peak measured in the same run: numpy.matmul of
two 1024x1024 matrices of the same dtype, best of several taken at the start and at the
end of the run, with the same number of BLAS threads the row ran with; "% all-core"
divides it by the all-cores peak (the machine's capacity, whatever the row's threads).
XLA's own GEMM can beat numpy's BLAS, so a JAX row may pass 100%.

Threads: each row is timed with 1 thread and with all cores (BLAS via threadpoolctl;
torch also via torch.set_num_threads; JAX in a worker process per thread count, since
XLA sizes its thread pool once: 1 thread = XLA_FLAGS without Eigen threads, pinned to one
core) and the faster is shown; both are in the JSON, and "1->N thr" is their ratio,
us/step with 1 thread over us/step with all N cores (above 1: the cores help). A
setting stops after a fit 3x slower than the best median so far ("gave_up" in the JSON):
on a busy machine multi-threaded BLAS on small matrices can be 100x slower, and timing
it fully would only make the run long.

Presets: --quick (about 2-3 minutes on 2 cores: fewer epochs and repeats, no big
workload for the numpy reference and scikit-learn; "all" is tiny,digits,mid,big there:
deep_tanh and wide run when named in --workloads), default (every row, moderate
repeats), --full (every row, more epochs and repeats: for the published figures).

Final figures: take them on a quiet machine. If OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
set (this workplace sets them on some CPUs for old OpenBLAS builds; they slow a current
numpy), unset both together for that command alone, never globally, and check in the
JSON's machine.blas which kernel ('architecture') OpenBLAS then runs:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastnn.bench.compare --full
"""

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import jax_peer, report
from .workloads import (
    ALPHA,
    BACKENDS,
    BETA1,
    BETA2,
    DTYPES,
    EPSILON,
    LEARNING_RATE,
    FastnnTrainer,
    TorchTrainer,
    Workload,
    all_threads,
    backend_status,
    limit_threads,
    load,
    select_workloads,
    sklearn_fit,
    torch_available,
)

# "not_in_all": workloads that "all" leaves out under the preset (named, they run).
PRESETS = {
    "quick": dict(epochs={"tiny": 2, "digits": 10, "mid": 1, "big": 1, "deep_tanh": 5, "wide": 1},
                  repeats=3, peak_repeats=5, skip={("numpy", "big"), ("sklearn", "big")},
                  not_in_all=("deep_tanh", "wide")),
    "default": dict(epochs={"tiny": 5, "digits": 20, "mid": 2, "big": 1, "deep_tanh": 10, "wide": 2},
                    repeats=5, peak_repeats=7, skip=set(), not_in_all=()),
    "full": dict(epochs={"tiny": 10, "digits": 40, "mid": 4, "big": 2, "deep_tanh": 20, "wide": 4},
                 repeats=7, peak_repeats=10, skip=set(), not_in_all=()),
}
# Rows run in this order. torch last: its OpenMP threads spin after use (JAX runs in
# worker processes, whose threads cannot disturb the rows after it).
IMPLS = (*BACKENDS, "sklearn", "jax", "torch")
LABELS = {"numba": "fastnn numba", "cython": "fastnn cython", "numpy": "fastnn numpy (ref)",
          "sklearn": "scikit-learn", "jax": "jax jit+scan", "torch": "torch eager"}
THREADS = ("best", "1", "all")
GEMM_SIZE = 1024
GIVE_UP = 3.0  # a thread setting whose fit takes 3x the best median so far stops timing


@dataclass(frozen=True)
class Row:
    """One planned row: ``impl`` on ``workload`` in ``dtype``, fits of ``epochs`` epochs."""

    impl: str
    workload: Workload
    dtype: str
    epochs: int

    @property
    def label(self):
        return LABELS[self.impl]

    @property
    def steps(self):
        return self.epochs * self.workload.n_batches


@dataclass(frozen=True)
class Plan:
    """What ``run`` will time: the rows in order, and what it skips (with the reason)."""

    preset: str
    threads: str  # "best", "1" or "all"
    thread_counts: tuple  # the BLAS thread counts each row is timed with
    repeats: int
    peak_repeats: int
    workloads: tuple  # of Workload, in table order
    dtypes: tuple
    epochs: dict  # workload name -> epochs per timed fit
    rows: tuple  # of Row
    skipped: tuple  # of {"impl", "reason"[, "workload"]}
    not_in_all: tuple = ()  # workloads "all" left out under this preset (names)


def _names(value, what, known):
    """A comma-separated string or a sequence of names, each one of ``known``."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"unknown {what} {unknown}; expected some of {','.join(known)}")
    if not names:
        raise ValueError(f"no {what} given; expected some of {','.join(known)}")
    return names


def _count(value, what):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def plan(*, preset="default", workloads="all", impls=IMPLS, dtypes=DTYPES, threads="best",
         epochs=None, repeats=None):
    """Check a selection and list the rows ``run`` will time, in order.

    ``workloads``, ``impls`` and ``dtypes`` are comma-separated strings or sequences of
    names (``workloads="all"``: every one); ``threads`` is "best" (1 thread and all
    cores, the faster kept), "1" or "all"; ``epochs`` and ``repeats`` override the
    preset's ("quick", "default" or "full"). A row per implementation x workload x dtype
    that can run here; fastnn backends without ``train_epoch``, torch or JAX when not
    installed and the rows the preset leaves out are in ``skipped`` with the reason. The
    quick preset's "all" leaves out the workloads in ``not_in_all`` (they run when named).
    Raises ValueError naming an unknown name or a bad count. Times nothing.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {','.join(PRESETS)}")
    if threads not in THREADS:
        raise ValueError(f"unknown threads {threads!r}; expected one of {','.join(THREADS)}")
    settings = PRESETS[preset]
    spec = workloads if isinstance(workloads, str) else ",".join(workloads)
    chosen = select_workloads(spec)
    not_in_all = ()
    if spec.strip() == "all":
        not_in_all = tuple(w.name for w in chosen if w.name in settings["not_in_all"])
        chosen = [w for w in chosen if w.name not in not_in_all]
    impls = _names(impls, "implementation(s)", IMPLS)
    dtypes = tuple(d for d in DTYPES if d in _names(dtypes, "dtype(s)", DTYPES))
    epochs, repeats = _count(epochs, "epochs"), _count(repeats, "repeats")

    skipped, status = [], backend_status()
    for name, reason in status.items():
        if name in impls and reason:
            skipped.append({"impl": name, "reason": reason})
    if "torch" in impls and not torch_available():
        skipped.append({"impl": "torch", "reason": "torch is not installed"})
    if "jax" in impls and (reason := jax_peer.missing()):
        skipped.append({"impl": "jax", "reason": reason})
    rows = []
    for impl in (i for i in IMPLS if i in impls and not any(s["impl"] == i for s in skipped)):
        for w in chosen:
            if (impl, w.name) in settings["skip"]:
                # "the quick preset": `fastnn bench` runs it without a --quick option; --full
                # means the same in both command lines
                skipped.append({"impl": impl, "workload": w.name,
                                "reason": f"the {preset} preset skips it (--full runs it)"})
                continue
            rows += [Row(impl, w, d, epochs or settings["epochs"][w.name]) for d in dtypes]
    n_all = all_threads()
    return Plan(preset=preset, threads=threads,
                thread_counts=tuple({"best": sorted({1, n_all}), "1": [1], "all": [n_all]}[threads]),
                repeats=repeats or settings["repeats"], peak_repeats=settings["peak_repeats"],
                workloads=tuple(chosen), dtypes=dtypes,
                epochs={w.name: epochs or settings["epochs"][w.name] for w in chosen},
                rows=tuple(rows), skipped=tuple(skipped), not_in_all=not_in_all)


class _SklearnFit:
    def __init__(self, workload, data):
        self.workload, self.data = workload, data

    def fit(self, epochs):
        return sklearn_fit(self.workload, self.data, epochs)


def make_runner(impl, workload, dtype):
    """What a row times: an object whose ``fit(epochs)`` is one timed fit. A JAX runner
    also has ``use_threads(t)`` (its worker process) and ``compile_seconds``."""
    if impl == "jax":
        return jax_peer.JaxRunner(workload, dtype)  # the worker makes the data itself
    data = load(workload.name, dtype)
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


def time_row(row, thread_counts, repeats):
    """Time one planned ``row`` with each BLAS thread count; its result as a dict (the
    faster thread count's figures, every count's in ``per_threads``)."""
    w = row.workload
    runner = make_runner(row.impl, w, row.dtype)
    per_threads, best = {}, None
    for i, t in enumerate(thread_counts):
        with limit_threads(t):
            if hasattr(runner, "use_threads"):
                runner.use_threads(t)  # JAX: its worker of t threads, compiling there
            if i == 0:
                runner.fit(1)  # untimed: compilation and first-call costs
            times = time_fits(runner, row.epochs, repeats, best and GIVE_UP * best)
        best = min(best or np.inf, statistics.median(times))
        per_threads[t] = {"seconds": times, "us_per_step": 1e6 * statistics.median(times) / row.steps,
                          "gave_up": len(times) < repeats}
        if hasattr(runner, "compile_seconds"):
            per_threads[t]["compile_seconds"] = runner.compile_seconds[t]
    threads = min(per_threads, key=lambda t: per_threads[t]["us_per_step"])
    median_s = statistics.median(per_threads[threads]["seconds"])
    one, many = min(per_threads), max(per_threads)
    return {
        "workload": w.name, "dtype": row.dtype, "impl": row.impl, "label": row.label,
        "threads": threads, "epochs": row.epochs, "steps": row.steps, "repeats": repeats,
        "us_per_step": per_threads[threads]["us_per_step"],
        "us_per_step_min": 1e6 * min(per_threads[threads]["seconds"]) / row.steps,
        "gflops": row.epochs * w.gemm_flops_per_epoch / median_s / 1e9,
        # us/step with the fewest threads over us/step with the most (None with one count)
        "thread_scaling": (per_threads[one]["us_per_step"] / per_threads[many]["us_per_step"]
                           if many > one else None),
        "compile_seconds": per_threads[threads].get("compile_seconds"),
        "per_threads": per_threads,
    }


def row_line(result):
    """One line for a timed row: ``  fastnn cython  tiny  float64: 1 thread 8.7 us/step``."""
    times = ", ".join(f"{t} thread{'s' if t > 1 else ''} {p['us_per_step']:.1f} us/step"
                      + (" (gave up)" if p["gave_up"] else "")
                      for t, p in result["per_threads"].items())
    return f"  {result['label']:<20} {result['workload']:<7} {result['dtype']}: {times}"


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


def run(plan, progress=None):
    """Time every row of ``plan`` (from ``plan()``); returns the results as data, what
    compare.json holds: ``rows`` (one dict per row, in table order, with us_per_step,
    gflops, pct_peak, speedup_vs_sklearn, per_threads), ``skipped``, ``settings``, the
    GEMM peaks and the machine. ``progress(result, done, total)``, when given, is called
    after each row is timed, once per row (``result``: that row's dict, before the
    % peak and speedup columns, which need every row and the final peak). Prints nothing.
    JAX rows run in worker processes, ended before ``run`` returns.
    """
    started = time.perf_counter()
    load_before = os.getloadavg()
    counts = plan.thread_counts

    def peaks():
        return {d: {t: gemm_peak(d, t, plan.peak_repeats) for t in counts} for d in plan.dtypes}

    peaks_start = peaks()
    rows = []
    try:
        for done, row in enumerate(plan.rows, 1):
            rows.append(time_row(row, counts, plan.repeats))
            if progress is not None:
                progress(rows[-1], done, len(plan.rows))
    finally:
        jax_peer.stop_workers()

    # The peak is taken at the start and at the end, best of both: load from other
    # processes depresses it, and a depressed peak would inflate every row's % peak.
    peaks_end = peaks()
    best_peaks = {d: {t: {k: max(peaks_start[d][t][k], peaks_end[d][t][k]) for k in peaks_start[d][t]}
                      for t in counts} for d in plan.dtypes}
    n_all = all_threads()
    for r in rows:
        r["pct_peak"] = 100.0 * r["gflops"] / best_peaks[r["dtype"]][r["threads"]]["numpy_matmul"]
        r["pct_all_core_peak"] = (100.0 * r["gflops"] / best_peaks[r["dtype"]][n_all]["numpy_matmul"]
                                  if n_all in counts else None)
    order = {(w.name, d): i for i, (w, d) in enumerate((w, d) for w in plan.workloads for d in plan.dtypes)}
    rows.sort(key=lambda r: (order[r["workload"], r["dtype"]], IMPLS.index(r["impl"])))
    for r in rows:
        base = next((s for s in rows if s["impl"] == "sklearn" and s["workload"] == r["workload"]
                     and s["dtype"] == r["dtype"]), None)
        r["speedup_vs_sklearn"] = base["us_per_step"] / r["us_per_step"] if base else None

    settings = {
        "preset": plan.preset, "repeats": plan.repeats, "threads": plan.threads,
        "thread_counts": list(counts), "dtypes": list(plan.dtypes), "epochs": dict(plan.epochs),
        "not_in_all": list(plan.not_in_all),
        "workloads": {w.name: {"n_samples": w.n_samples, "n_features": w.n_features,
                               "n_classes": w.n_classes, "hidden": w.hidden,
                               "activation": w.activation,
                               "batch_size": w.batch_size, "n_batches": w.n_batches,
                               "gemm_flops_per_epoch": w.gemm_flops_per_epoch}
                      for w in plan.workloads},
        "hyperparameters": {"activation": "the workload's, every hidden layer",
                            "loss": "softmax cross-entropy",
                            "solver": "adam", "learning_rate": LEARNING_RATE, "beta1": BETA1,
                            "beta2": BETA2, "epsilon": EPSILON, "alpha": ALPHA, "shuffle": True,
                            "adam_form": "fastnn, sklearn: lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps); "
                                         "torch, jax (optax.adam): lr * m_hat/(sqrt(v_hat)+eps)",
                            "l2": "fastnn, sklearn, jax: alpha/2 * sum ||W||^2 / batch rows, weights "
                                  "only; torch: weight_decay alpha/batch_size on every parameter"},
        "timing": "median over repeats of a fit of `epochs` epochs from fresh weights, after "
                  "one untimed 1-epoch fit; us_per_step = seconds / (epochs * n_batches); "
                  "thread_scaling = us_per_step at 1 thread / us_per_step at all cores",
        "flops": "GEMMs only, 2*m*n*k each: forward a@W per layer, backward dW = a.T@delta "
                 "per layer, delta_prev = delta@W.T per layer but the first",
        "peak": f"numpy.matmul {GEMM_SIZE}x{GEMM_SIZE}, same dtype, best of "
                f"{plan.peak_repeats} at the start and as many at the end, per thread "
                "count; pct_peak uses the row's thread count, pct_all_core_peak all cores'",
    }
    if any(r["impl"] == "jax" for r in rows):
        settings["jax"] = {
            **jax_peer.versions(),
            "epoch": "one jit-compiled call per epoch: lax.scan over the full batches, the "
                     "short last batch as one more step; optax.adam",
            "compile_seconds": "jit(...).lower(...).compile() of the epoch in the worker, "
                               "per thread count; not in us_per_step",
            "threads": f"a worker process per thread count; 1 thread: XLA_FLAGS "
                       f"'{jax_peer.ONE_THREAD_XLA_FLAGS}', pinned to one core",
        }
    return report.payload(
        "compare", settings, rows, plan.skipped,
        load_average_at_start=load_before, wall_seconds=time.perf_counter() - started,
        gemm_peak_gflops=best_peaks, gemm_peak_gflops_start_end=[peaks_start, peaks_end])


COLUMNS = [("workload", "workload", None), ("dtype", "dtype", None), ("label", "implementation", None),
           ("threads", "thr", "{}"), ("us_per_step", "us/step", "{:.1f}"), ("gflops", "GFLOP/s", "{:.2f}"),
           ("pct_peak", "% peak", "{:.1f}"), ("pct_all_core_peak", "% all-core", "{:.1f}"),
           ("thread_scaling", "1->N thr", "{:.2f}"), ("speedup_vs_sklearn", "x sklearn", "{:.2f}")]


def by_workload(rows):
    """us/step per workload and dtype (one line each, indented under the main table's
    rows), one column per implementation."""
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    lines = {}
    for r in rows:
        lines.setdefault((r["workload"], r["dtype"]), {"workload": r["workload"], "dtype": r["dtype"]})[
            r["impl"]] = r["us_per_step"]
    columns = [("workload", "workload", None), ("dtype", "dtype", None),
               *((i, LABELS[i], "{:.1f}") for i in impls)]
    return "\n".join("  " + line for line in report.table(list(lines.values()), columns).splitlines())


def summary(results):
    """The results as text: the table, us/step by workload, the GEMM peaks, JAX's compile
    times, a warning for a noisy run, the implementations skipped and the workloads the
    preset left out."""
    rows = results["rows"]
    n = max(results["settings"]["thread_counts"])
    columns = [(k, f"1->{n} thr" if k == "thread_scaling" else h, f) for k, h, f in COLUMNS]
    lines = [report.table(rows, columns), "",
             "us/step by workload (each at its faster thread count):", by_workload(rows), "",
             "GEMM peak (numpy.matmul 1024x1024, GFLOP/s): " + "; ".join(
                 f"{d} " + ", ".join(f"{t} thr {p['numpy_matmul']:.1f}" for t, p in by_threads.items())
                 for d, by_threads in results["gemm_peak_gflops"].items())]
    if compiled := [r for r in rows if r.get("compile_seconds") is not None]:
        lines.append("JAX compile (jit lower + compile of one epoch, not in us/step): " + ", ".join(
            f"{r['workload']} {r['dtype']} {r['compile_seconds']:.2f} s" for r in compiled))
    if any(r["pct_peak"] > 100 for r in rows if r["impl"] != "jax"):
        lines.append("warning: rows above 100% of the GEMM peak: the machine was busier while "
                     "the peak was measured than during those rows (a noisy run)")
    if results["skipped"]:
        lines.append(report.skipped_text(results["skipped"]))
    if left_out := results["settings"].get("not_in_all"):
        lines.append(f"not in this preset's 'all': {', '.join(left_out)} (name them in "
                     "--workloads, or use --full)")
    return "\n".join(lines)


def finish(results, out):
    """Print ``summary(results)``, write compare.json and compare.png into the folder
    ``out`` and say where; returns the two paths (the PNG's is None without matplotlib)."""
    print(summary(results))
    json_path = report.write_json(Path(out) / "compare.json", results)
    print(f"\nwrote {json_path}")
    png = plot(results["rows"], Path(out) / "compare.png",
               title=f"fastnn bench.compare ({results['settings']['preset']}, {results['date']})")
    print(f"wrote {png}" if png else "matplotlib is not installed: skipped compare.png "
          "(pip install matplotlib, or fastnn's [plot] extra)")
    return json_path, png


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


def build_parser():
    p = argparse.ArgumentParser(prog="python -m fastnn.bench.compare",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run, about 2-3 minutes on 2 cores")
    mode.add_argument("--full", action="store_true", help="every row, more epochs and repeats")
    p.add_argument("--workloads", default="all",
                   help="comma-separated names or 'all' (default; --quick leaves out "
                        f"{','.join(PRESETS['quick']['not_in_all'])})")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="float32,float64 (default both)")
    p.add_argument("--threads", default="best", choices=THREADS,
                   help="time with 1 thread, all cores, or both and keep the faster (default)")
    p.add_argument("--epochs", type=int, help="epochs per timed fit (overrides the preset)")
    p.add_argument("--repeats", type=int, help="timed fits per row (overrides the preset)")
    p.add_argument("--out", type=Path, default=report.DEFAULT_OUT,
                   help="output folder (default ./fastnn-bench, in the current folder)")
    return p


def main(argv=None):
    """The command line: plan, run (one line per row on stderr), finish. Returns the results."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        selected = plan(preset="quick" if args.quick else "full" if args.full else "default",
                        workloads=args.workloads, impls=args.impls, dtypes=args.dtypes,
                        threads=args.threads, epochs=args.epochs, repeats=args.repeats)
    except ValueError as exc:
        parser.error(str(exc))
    if note := report.openblas_env_note():
        print(note, file=sys.stderr)
    results = run(selected, progress=lambda result, done, total: print(row_line(result), file=sys.stderr))
    finish(results, args.out)
    return results


if __name__ == "__main__":
    main()
