"""What every benchmark script records besides its numbers, and how it prints them.

``machine()`` describes where the figures came from (CPU, cores, library versions, the
BLAS builds threadpoolctl sees and which kernel they run, the environment variables that
change BLAS behaviour, the load average, the git commit of a source checkout).
``payload`` puts it next to the results, ``write_json`` writes them (``save``: both, with
the skipped implementations printed); ``table`` prints rows as a fixed-width table.
Results go into ``./fastnn-bench`` of the current folder by default (``DEFAULT_OUT``),
from a source checkout and from an installed fastnn alike.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

# Relative: the current folder when a script runs, never the package's own folder
# (an installed fastnn.bench may sit in a read-only site-packages).
DEFAULT_OUT = Path("fastnn-bench")

# Environment variables that change how BLAS, OpenMP or Numba behave. OPENBLAS_CORETYPE
# and OPENBLAS_L2_SIZE may be set on this workplace's machines for old OpenBLAS builds;
# they slow a current numpy (see the module docstrings of compare/cold_start/memory).
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")

PACKAGES = ("numpy", "scipy", "numba", "llvmlite", "scikit-learn", "threadpoolctl", "torch",
            "Cython", "fastnn")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git():
    """The commit of the source checkout this bench runs from; None when installed."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # installed: a repository around site-packages is not ours
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "uncommitted_changes": bool(dirty)}


def blas_info():
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries (numpy's and scipy's loaded
    first); 'architecture' is the kernel OpenBLAS picked (it follows OPENBLAS_CORETYPE)."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return threadpool_info()


def machine():
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in PACKAGES},
        "blas": blas_info(),
        "env": {v: os.environ.get(v) for v in ENV_VARS},
        "load_average": os.getloadavg(),
        "git": _git(),
    }


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def openblas_env_note():
    """A warning line when the OpenBLAS override variables are set, else None."""
    set_vars = {v: os.environ[v] for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}
    if not set_vars:
        return None
    return (f"note: {set_vars} set; they slow a current numpy. For final figures rerun this "
            "command prefixed with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` and check "
            "the BLAS 'architecture' recorded in the JSON.")


def write_json(path, payload):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def payload(benchmark, settings, rows, skipped=(), **extra):
    """The results as data: ``rows`` with their ``settings``, the implementations
    ``skipped``, the date and this machine (``extra``: more top-level keys)."""
    return {"benchmark": benchmark, "date": now(), "machine": machine(), **extra,
            "settings": settings, "rows": rows, "skipped": list(skipped)}


def skipped_text(skipped):
    """One line per skipped implementation (or implementation on a workload)."""
    lines = []
    for s in skipped:
        where = f" on {s['workload']}" if "workload" in s else ""
        lines.append(f"skipped {s['impl']}{where}: {s['reason']}")
    return "\n".join(lines)


def save(out_dir, benchmark, settings, rows, skipped=(), **extra):
    """Print the implementations skipped, then write ``<out_dir>/<benchmark>.json`` (see
    ``payload``) and return its content."""
    if skipped:
        print(skipped_text(skipped))
    data = payload(benchmark, settings, rows, skipped, **extra)
    path = write_json(Path(out_dir) / f"{benchmark}.json", data)
    print(f"\nwrote {path}")
    return data


def table(rows, columns):
    """Rows (dicts) as a fixed-width text table; ``columns`` = [(key, header, format or None)]."""
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append(["" if row.get(k) is None else (fmt.format(row[k]) if fmt else str(row[k]))
                      for k, _, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    right = [fmt is not None for _, _, fmt in columns]  # numbers right-aligned, text left
    lines = ["  ".join(c.rjust(w) if r_ else c.ljust(w) for c, w, r_ in zip(r, widths, right))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
