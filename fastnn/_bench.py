"""``fastnn bench``: the side-by-side benchmark (``bench.compare``) from the command line.

The benchmark lives in the source checkout's ``bench/`` folder, next to ``fastnn/``; it
is not part of an installed wheel. This runs it in-process with ``--quick`` settings by
default (``--full`` for the published figures), passing the other options through;
``fastnn bench`` writes into ``./fastnn-bench`` unless ``--out`` says otherwise (never into
the checkout). Its per-row timing lines (stderr) drive a progress bar on a terminal and
are passed through unchanged otherwise.
"""

import contextlib
import io
import re
import sys
from pathlib import Path

from ._progress import Progress

# bench.compare's per-row line: "  fastnn cython        tiny    float32 1 thread(s):   6.5 us/step"
_ROW = re.compile(r"^\s+(?P<label>.+?)\s+(?P<workload>\S+)\s+(?P<dtype>float\d+) "
                  r"(?P<threads>\d+) thread\(s\):")


class BenchUnavailable(Exception):
    """The source checkout's bench/ folder cannot be found or imported."""


def source_root():
    """The checkout holding fastnn/ and bench/ (an editable install), or None."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "bench" / "compare.py").is_file() else None


def load_compare():
    """Import ``bench.compare`` from the source checkout."""
    root = source_root()
    if root is None:
        raise BenchUnavailable(
            "fastnn bench needs the benchmark in the source checkout's bench/ folder, which "
            "an installed wheel does not include: clone the repository and "
            "pip install -e . there")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from bench import compare
    except ImportError as exc:
        raise BenchUnavailable(f"cannot import the benchmark from {root / 'bench'}: {exc}") from None
    if Path(compare.__file__).resolve().parent != root / "bench":
        raise BenchUnavailable(f"'bench' resolves to {compare.__file__}, not {root / 'bench'}")
    return compare


def expected_rows(compare, argv):
    """How many per-row timing lines bench.compare will print for ``argv`` (the bar's
    total), following its own selection rules."""
    from bench import workloads as wl

    args = compare.parse_args(argv)
    preset_name = "quick" if args.quick else "full" if args.full else "default"
    preset = compare.PRESETS[preset_name]
    impls = [i.strip() for i in args.impls.split(",")]
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    status = wl.backend_status()
    runnable = [i for i in compare.IMPLS if i in impls and not status.get(i)
                and (i != "torch" or wl.torch_available())]
    threads = {"best": len({1, wl.all_threads()}), "1": 1, "all": 1}[args.threads]
    workload_names = [w.name for w in wl.select_workloads(args.workloads)]
    rows = sum(1 for i in runnable for w in workload_names if (i, w) not in preset["skip"])
    return rows * len(dtypes) * threads


class _RowLines(io.TextIOBase):
    """A stderr stand-in: bench.compare's row lines advance the bar (on a terminal) or
    pass through; everything else goes to the real stderr."""

    def __init__(self, stream, bar):
        self.stream, self.bar, self._buffer = stream, bar, ""

    def writable(self):
        return True

    def write(self, text):
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            match = _ROW.match(line)
            if match and self.bar.enabled:
                self.bar.update(note=f"{match['label']} {match['workload']} {match['dtype']}")
            else:
                self.bar.write(line + "\n")
        return len(text)

    def flush(self):
        if self._buffer:
            self.bar.write(self._buffer)
            self._buffer = ""
        self.stream.flush()


def run(argv):
    """Run ``bench.compare`` with ``argv`` (already including --quick or --full)."""
    compare = load_compare()
    total = expected_rows(compare, argv)
    real_stderr = sys.stderr
    with Progress(total, "bench rows", file=real_stderr) as bar:
        sink = _RowLines(real_stderr, bar)
        with contextlib.redirect_stderr(sink):
            try:
                payload = compare.main(argv)
            finally:
                sink.flush()
    return payload
