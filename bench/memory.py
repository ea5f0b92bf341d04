"""Peak memory of a fit on the big workload: fastnn train_epoch per backend vs scikit-learn.

    python -m fastnn.bench.memory [--quick] [--epochs N] [--dtypes float32,float64] [--out DIR]

Each measurement runs in a fresh ``python`` subprocess that imports scikit-learn or the
fastnn backend's kernels, makes the big workload's data (50000 x 100, 10 classes, hidden
(256, 128), batch 256) and fits for a few epochs (default 3, --quick 2): fastnn = build
the network and its buffers + one ``train_epoch`` per epoch; scikit-learn =
``MLPClassifier.fit`` with the same hyperparameters. It reports:

- ``before_fit``: resident set size (VmRSS) after imports and data, before the fit;
- ``fit_peak``: the peak RSS during the fit (VmHWM, reset just before the fit through
  /proc/self/clear_refs; where that reset is refused, the process lifetime peak);
- ``fit_extra``: fit_peak - before_fit: what the first fit in a process costs, including
  code loaded on first use (Numba's compiled code from its cache, or the compiler);
- ``traced_peak``: tracemalloc's peak during a second, 1-epoch fit in the same process:
  the arrays (and Python objects) a fit allocates once everything is loaded;
- ``lifetime_peak``: resource.getrusage's ru_maxrss of the whole process.

Numba runs twice per dtype with one new, empty NUMBA_CACHE_DIR: first "cold cache" (the
fit compiles; LLVM's memory shows in RSS), then with that cache warm. Writes memory.json
to --out.

For final figures, unset the OpenBLAS overrides for that command alone (see
fastnn.fastnn.bench.compare):
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastnn.bench.memory``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import report
from .workloads import BACKENDS, DTYPES, WORKLOADS, backend_status

MIB = 2**20

CHILD = r"""
import json, resource, sys, tracemalloc
impl, dtype, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
from fastnn.bench.workloads import WORKLOADS, FastnnTrainer, load, sklearn_fit
if impl == "sklearn":
    import sklearn.neural_network
else:
    from fastnn._backends import get_kernels
    get_kernels(impl)  # imports numba or the extensions; compiles nothing

def fit(epochs):
    if impl == "sklearn":
        sklearn_fit(w, data, epochs)
    else:
        FastnnTrainer(impl, w, data).fit(epochs)

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

w = WORKLOADS["big"]
data = load("big", dtype)
before = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    hwm_reset = True
except OSError:
    hwm_reset = False
fit(epochs)
fit_peak = status("VmHWM")
tracemalloc.start()
fit(1)
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"before_fit": before, "fit_peak": fit_peak, "hwm_reset": hwm_reset,
                  "traced_peak": traced_peak,
                  "lifetime_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def measure(impl, dtype, epochs, env, cwd):
    """One fresh process's figures; ``cwd``: a neutral folder (the installed fastnn)."""
    proc = subprocess.run([sys.executable, "-c", CHILD, impl, dtype, str(epochs)], cwd=cwd,
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{impl} {dtype} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    got["fit_extra"] = got["fit_peak"] - got["before_fit"]
    return got


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastnn.bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 epochs instead of 3")
    p.add_argument("--epochs", type=int, help="epochs per fit (default 3, --quick 2)")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--out", type=Path, default=report.DEFAULT_OUT)
    args = p.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 3)
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    if note := report.openblas_env_note():
        print(note, file=sys.stderr)

    status = backend_status()
    skipped = [{"impl": b, "reason": r} for b, r in status.items() if r]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fastnn-mem-") as tmp:
        for dtype in dtypes:
            env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix=f"numba-{dtype}-", dir=tmp))
            runs = []
            for impl in [b for b in BACKENDS if not status[b]] + ["sklearn"]:
                if impl == "numba":
                    runs.append(("fastnn numba, cold cache (compiles)", impl))
                runs.append((f"fastnn {impl}" if impl in BACKENDS else "scikit-learn", impl))
            for label, impl in runs:
                got = measure(impl, dtype, epochs, env, tmp)
                rows.append({"impl": label, "dtype": dtype, **got,
                             **{f"{k}_mib": None if got[k] is None else got[k] / MIB for k in
                                ("before_fit", "fit_peak", "fit_extra", "traced_peak", "lifetime_peak")}})
                print(f"  {label:<36} {dtype}: fit extra {got['fit_extra'] / MIB:.1f} MiB", file=sys.stderr)

    w = WORKLOADS["big"]
    columns = [("impl", "fit", None), ("dtype", "dtype", None),
               ("before_fit_mib", "RSS before MiB", "{:.1f}"), ("fit_peak_mib", "peak MiB", "{:.1f}"),
               ("fit_extra_mib", "fit extra MiB", "{:.1f}"), ("traced_peak_mib", "2nd fit traced MiB", "{:.1f}"),
               ("lifetime_peak_mib", "ru_maxrss MiB", "{:.1f}")]
    print(f"big ({w.n_samples} x {w.n_features}, hidden {w.hidden}, batch {w.batch_size}), "
          f"{epochs} epochs, fresh process each")
    print(report.table(rows, columns))
    if not all(r["hwm_reset"] for r in rows):
        print("note: /proc/self/clear_refs refused: 'peak' is the process lifetime peak")
    return report.save(args.out, "memory", {
        "workload": "big", "epochs": epochs, "dtypes": dtypes, "layer_sizes": w.layer_sizes,
        "batch_size": w.batch_size}, rows, skipped)


if __name__ == "__main__":
    main()
