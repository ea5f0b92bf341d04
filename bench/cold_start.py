"""Cold start: from process start to the end of the first training epoch, per backend.

    python -m fastnn.bench.cold_start [--quick] [--repeats N] [--dtype float64] [--out DIR]

For each fastnn backend with ``train_epoch``, a fresh ``python`` subprocess does
``import fastnn``, imports the backend's kernels, loads digits (from a .npy file written
beforehand, so scikit-learn's import is not counted), builds the network and its
buffers, and runs 1 epoch of ``train_epoch`` on digits. Wall time is measured by the
parent from process start to exit (interpreter start-up included); the child reports its
phases. Numba runs twice per repeat with the same NUMBA_CACHE_DIR, a new empty temporary
folder each repeat: the first run compiles ("cold cache"), the second loads the machine
code from the cache ("warm cache"). Cython and the numpy reference need no cache; their
two runs show the run-to-run spread (and the OS file cache). A ``python -c "import
numpy"`` row gives the floor. Medians over --repeats (--quick: 1). Writes cold_start.json to --out.

For final figures, on a quiet machine, unset the OpenBLAS overrides for that command alone
(see fastnn.bench.compare):
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastnn.bench.cold_start``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import report
from .workloads import BACKENDS, WORKLOADS, backend_status, load

# Runs in the child. Times are relative to the child's first line (after interpreter start).
CHILD = r"""
import time
t0 = time.perf_counter()
import fastnn
t_import = time.perf_counter()
import json, sys
import numpy as np
from fastnn._backends import get_kernels
backend, data_path = sys.argv[1], sys.argv[2]
get_kernels(backend)
t_kernels = time.perf_counter()
from fastnn.bench.workloads import WORKLOADS, Data, FastnnTrainer
arrays = np.load(data_path)
trainer = FastnnTrainer(backend, WORKLOADS["digits"], Data(*(arrays[k] for k in ("X", "y", "Y", "w"))))
t_build = time.perf_counter()
loss = trainer.epoch()
t_epoch = time.perf_counter()
print(json.dumps({"import_fastnn": t_import - t0, "import_kernels": t_kernels - t_import,
                  "build": t_build - t_kernels, "first_epoch": t_epoch - t_build,
                  "in_process": t_epoch - t0, "loss": loss}))
"""


def run(argv, env, cwd):
    """Wall seconds from process start to exit, and the child's JSON report (if any).
    ``cwd``: a neutral folder, so the child imports the installed fastnn."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    return wall, (json.loads(lines[-1]) if lines else {})


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastnn.bench.cold_start", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one repeat (the same as --repeats 1)")
    p.add_argument("--repeats", type=int, default=3, help="fresh cache folders per backend (default 3)")
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    p.add_argument("--out", type=Path, default=report.DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 1
    if note := report.openblas_env_note():
        print(note, file=sys.stderr)

    status = backend_status()
    rows, skipped = [], [{"impl": b, "reason": r} for b, r in status.items() if r]
    with tempfile.TemporaryDirectory(prefix="fastnn-cold-") as tmp:
        data = load("digits", args.dtype)
        data_path = Path(tmp) / "digits.npz"
        np.savez(data_path, X=data.X, y=data.y, Y=data.Y, w=data.sample_weight)

        base_env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        floor = [run([sys.executable, "-c", "import numpy"], base_env, tmp)[0] for _ in range(args.repeats)]
        rows.append({"impl": "python -c 'import numpy'", "first_s": statistics.median(floor),
                     "second_s": None})

        for backend in (b for b in BACKENDS if not status[b]):
            first, second = [], []
            for r in range(args.repeats):
                env = dict(base_env, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix=f"numba-{r}-", dir=tmp))
                argv = [sys.executable, "-c", CHILD, backend, str(data_path)]
                first.append(run(argv, env, tmp))
                second.append(run(argv, env, tmp))
                print(f"  {backend:<7} repeat {r}: {first[-1][0]:.2f} s then {second[-1][0]:.2f} s",
                      file=sys.stderr)
            row = {"impl": f"fastnn {backend}", "backend": backend,
                   "first_s": statistics.median(w for w, _ in first),
                   "second_s": statistics.median(w for w, _ in second),
                   "first_runs": [{"wall": w, **c} for w, c in first],
                   "second_runs": [{"wall": w, **c} for w, c in second]}
            for phase in ("import_fastnn", "import_kernels", "build", "first_epoch"):
                row[f"first_{phase}"] = statistics.median(c[phase] for _, c in first)
                row[f"second_{phase}"] = statistics.median(c[phase] for _, c in second)
            rows.append(row)

    columns = [("impl", "run", None),
               ("first_s", "1st run s", "{:.2f}"), ("first_import_kernels", "kernels import", "{:.2f}"),
               ("first_first_epoch", "1st epoch", "{:.2f}"),
               ("second_s", "2nd run s", "{:.2f}"), ("second_import_kernels", "kernels import", "{:.2f}"),
               ("second_first_epoch", "1st epoch", "{:.2f}")]
    print(f"digits, {args.dtype}, 1 epoch; wall seconds from process start, median of {args.repeats}. "
          "Numba: 1st run = empty NUMBA_CACHE_DIR (compiles), 2nd = same dir (cache hit).")
    print(report.table(rows, columns))
    return report.save(args.out, "cold_start", {
        "workload": "digits", "dtype": args.dtype, "repeats": args.repeats, "epochs": 1,
        "layer_sizes": WORKLOADS["digits"].layer_sizes,
        "timing": "parent wall clock around subprocess.run (interpreter start-up included); "
                  "phases reported by the child"}, rows, skipped)


if __name__ == "__main__":
    main()
