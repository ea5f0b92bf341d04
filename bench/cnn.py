"""The cifar-cnn workload: the loss-function article's CIFAR-10 model, fastnn vs PyTorch.

    python -m fastnn.bench.cnn [--impls cython,numba,torch] [--steps 20] [--repeats 3]
                               [--threads 1,2] [--out DIR]

The model (``fastnn.nn`` / ``torch.nn``): Conv2d(3,32,5,p2) MaxPool2d(2) Conv2d(32,32,5,p2)
MaxPool2d(2) Conv2d(32,64,5,p2) MaxPool2d(2) Flatten Linear(1024,64) Linear(64,10),
softmax cross-entropy, Adam (lr 1e-3), batch 64, float32, on CIFAR-shaped data (uniform
[0, 1) images 3x32x32 and random labels from ``numpy.random.default_rng(0)``: the speed
does not depend on the pixels).

Each implementation runs in a fresh subprocess per thread count (BLAS, OpenMP and
torch limited to it), which reports:

- ``ms_per_step`` (median over ``--repeats`` of ``--steps`` training steps; fastnn: one
  ``train_epoch`` call over the steps' rows; torch: the eager loop, no DataLoader) and
  ``images_per_s`` = 64 / (ms_per_step / 1000);
- ``predict_images_per_s``: inference on 512 images (fastnn ``forward`` in chunks of
  128 rows; torch ``eval()`` under ``no_grad`` on the same chunks);
- ``step_peak_mib``: what training needs: the peak RSS over the steps (VmHWM) above the
  RSS once the libraries are loaded, the data made and one throw-away step on one row
  run (Numba's code loaded, torch's first-call set-up done), the high-water mark reset
  there through /proc/self/clear_refs: the model, optimizer state, workspace or autograd buffers, and
  what each step allocates; ``buffers_mib``: fastnn's workspace and optimizer state.
- ``pct_gemm_peak``: the model's GEMM flops per step over the float32 GEMM peak (scipy's
  sgemm, 1024^3, best of 5) measured in the same run with the same threads.

Writes cnn.json to --out. Times are of this machine on this day: compare the rows of one
run, never runs of different days.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import report

BATCH = 64
IMPLS = ("cython", "numba", "torch")

CHILD = r"""
import json, os, sys, time, statistics
impl, threads, steps, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import numpy as np
from fastnn.bench.cnn import BATCH, run_fastnn, run_torch, data
X, y = data(steps * BATCH)
result = (run_torch if impl == "torch" else run_fastnn)(impl, threads, X, y, steps, repeats)
print(json.dumps(result))
"""


def article_model():
    from fastnn import nn

    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2), nn.Conv2d(32, 32, 5, padding=2),
        nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(1024, 64), nn.Linear(64, 10))


def gemm_flops_per_step(table, batch=BATCH):
    """GEMM flops of one training step (fastnn._engine.step_flops): per conv layer
    2 F (C KH KW) (OH OW) per sample forward, the same for dW and (but the first layer)
    for the input's delta; per dense layer 2 n_in n_out per row, likewise."""
    from fastnn._engine import step_flops

    return step_flops(table, batch)


def data(n):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, n)


def _rss(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _timed(call, repeats, baseline=None):
    """Median seconds of ``repeats`` calls after a warm one, and the peak RSS of them all
    (the warm one included) above ``baseline`` bytes, in MiB."""
    import time

    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    peak = None if baseline is None else (_rss("VmHWM") - baseline) / 2**20
    return sorted(times)[len(times) // 2], peak


def _baseline():
    """The RSS now, with the high-water mark reset to it (/proc/self/clear_refs)."""
    _reset_peak()
    return _rss("VmRSS")


def _limits(threads):
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS before the limit)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _fastnn_epoch(kernels, X, y, steps, batch=BATCH):
    """(epoch, params, table, buffers): ``epoch()`` runs ``steps`` batches of ``batch``
    rows as one call on ``params``; ``buffers`` is the MiB of its workspace and state."""
    import fastnn.kernels as fk
    from fastnn import nn
    from fastnn._engine import OptimizerState, Problem, train_steps
    from fastnn.kernels import layout

    table = article_model().table((3, 32, 32))
    n = steps * batch
    Xf, y = X[:n].reshape(n, -1), y[:n]
    Y = np.eye(10, dtype=np.float32)[y]
    w = np.ones(n, np.float32)
    params = nn.init_params(table, np.random.RandomState(0), np.float32)
    config = np.zeros(fk.N_CONFIG)
    config[[fk.LR, fk.BETA1, fk.BETA2, fk.EPSILON]] = 1e-3, 0.9, 0.999, 1e-8
    problem = Problem(kernels, table, fk.SOFTMAX_CROSS_ENTROPY, 1e-7, 0.0)
    work = np.empty(layout.train_workspace_size(table, batch), np.float32)
    grads = np.empty_like(params)
    optimizer = OptimizerState.new(params.size, np.float32, 1e-3)
    perm = np.arange(n, dtype=np.int64)
    buffers = (work.nbytes + grads.nbytes + 2 * params.nbytes) / 2**20

    def epoch():
        *_, nonfinite = train_steps(problem, params, optimizer, fk.ADAM, config, Xf, Y, w,
                                    perm, batch, grads, work)
        assert not nonfinite

    return epoch, params, table, buffers


def run_fastnn(impl, threads, X, y, steps, repeats):
    from fastnn._backends import get_kernels
    from fastnn.kernels import layout

    kernels = get_kernels(impl)
    with _limits(threads):
        os.environ["OMP_NUM_THREADS"] = str(threads)
        # Numba's code compiled or loaded first, on one row: buffers this small come back
        # to the heap, not to the RSS of the steps measured next
        _fastnn_epoch(kernels, X, y, 1, 1)[0]()
        baseline = _baseline()
        epoch, params, table, buffers = _fastnn_epoch(kernels, X, y, steps)
        step, peak = _timed(epoch, repeats, baseline)
        rows = 128
        fwork = np.empty(layout.forward_workspace_size(table, rows), np.float32)
        raw = np.empty((rows, 10), np.float32)
        Xp = np.resize(X.reshape(len(X), -1), (512, 3 * 32 * 32))

        def predict():
            for s in range(0, 512, rows):
                kernels.forward(Xp[s:s + rows], params, table, fwork, raw)

        pred, _ = _timed(predict, repeats)
    return _result(impl, threads, step / steps, peak, pred, buffers, table)


def _torch_epoch(X, y, steps, batch=BATCH):
    import torch

    torch.manual_seed(0)
    t = torch.nn
    model = t.Sequential(
        t.Conv2d(3, 32, 5, padding=2), t.MaxPool2d(2), t.Conv2d(32, 32, 5, padding=2),
        t.MaxPool2d(2), t.Conv2d(32, 64, 5, padding=2), t.MaxPool2d(2), t.Flatten(),
        t.Linear(1024, 64), t.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = steps * batch
    Xt, yt = torch.from_numpy(X[:n]), torch.from_numpy(y[:n])
    criterion = t.CrossEntropyLoss()

    def epoch():
        for s in range(0, n, batch):
            opt.zero_grad(set_to_none=True)
            criterion(model(Xt[s:s + batch]), yt[s:s + batch]).backward()
            opt.step()

    return epoch, model


def run_torch(impl, threads, X, y, steps, repeats):
    import torch

    torch.set_num_threads(threads)
    with _limits(threads):
        _torch_epoch(X, y, 1, 1)[0]()  # torch's first-call set-up, as Numba's above
        baseline = _baseline()
        epoch, model = _torch_epoch(X, y, steps)
        step, peak = _timed(epoch, repeats, baseline)
        Xp = torch.from_numpy(np.resize(X, (512, 3, 32, 32)))

        def predict():
            model.eval()
            with torch.no_grad():
                for s in range(0, 512, 128):
                    model(Xp[s:s + 128])
            model.train()

        pred, _ = _timed(predict, repeats)
    table = article_model().table((3, 32, 32))
    return _result(impl, threads, step / steps, peak, pred, None, table)


def _result(impl, threads, step_s, peak, pred_s, buffers, table):
    return {"impl": impl, "threads": threads, "ms_per_step": 1e3 * step_s,
            "images_per_s": BATCH / step_s, "predict_images_per_s": 512 / pred_s,
            "step_peak_mib": peak, "buffers_mib": buffers,
            "gflops": gemm_flops_per_step(table) / step_s / 1e9}


def gemm_peak(threads):
    from .compare import gemm_peak as peak

    return peak(np.float32, threads, 5)["scipy_blas_gemm"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn.bench.cnn", description=__doc__.split("\n")[0])
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    impls = [s for s in args.impls.split(",") if s]
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    for t in threads:
        peak = gemm_peak(t)
        print(f"float32 GEMM peak, {t} thread(s): {peak:.1f} GFLOP/s", flush=True)
        for impl in impls:
            proc = subprocess.run([sys.executable, "-c", CHILD, impl, str(t), str(args.steps),
                                   str(args.repeats)], capture_output=True, text=True)
            if proc.returncode:
                print(f"{impl}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["pct_gemm_peak"] = 100 * row["gflops"] / peak
            row["gemm_peak_gflops"] = peak
            rows.append(row)
            print(f"  {impl:<7} {t} thr: {row['ms_per_step']:7.1f} ms/step "
                  f"{row['images_per_s']:7.0f} img/s  predict {row['predict_images_per_s']:7.0f}"
                  f" img/s  step peak +{row['step_peak_mib']:.0f} MiB  "
                  f"{row['pct_gemm_peak']:.0f}% of GEMM peak", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cnn.json").write_text(json.dumps({"machine": report.machine(), "rows": rows},
                                             indent=2))
    return rows


if __name__ == "__main__":
    main()
