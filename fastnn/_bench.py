"""``fastnn bench``: the side-by-side benchmark, ``fastnn.bench.compare``, from the command line.

It calls the benchmark's functions: ``compare.plan`` (the rows, with the quick preset
unless ``full``), ``compare.run`` with a progress callback (a bar on a terminal, else one
line per row on stderr) and ``compare.finish`` (the table; compare.json and compare.png
into ``./fastnn-bench`` unless ``out`` says otherwise). ``fastnn.bench`` is part of the
installed package (bench/ in a source checkout) and is imported only here, when the
command runs: ``import fastnn`` does not load it.
"""

import contextlib
import io
import sys
from pathlib import Path

from ._progress import Progress

DEFAULT_OUT = "fastnn-bench"


class BenchUnavailable(Exception):
    """This installation of fastnn has no ``fastnn.bench``."""


def load_compare():
    """``fastnn.bench.compare``, or BenchUnavailable saying how to get it."""
    try:
        from .bench import compare
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.bench":
            raise
        where = Path(__file__).resolve().parent
        raise BenchUnavailable(
            f"this installation of fastnn ({where}) has no fastnn.bench; reinstall fastnn "
            "(an editable install made before bench/ became fastnn.bench does not map it: "
            "run pip install -e . again in the checkout)") from None
    return compare


def plan(*, full=False, workloads=None, impls=None, dtypes=None, threads=None, epochs=None,
         repeats=None):
    """``compare.plan`` with the quick preset (``full``: the full one); None keeps
    compare's default (every workload, implementation and dtype; the best of 1 thread and
    all cores; the preset's epochs and repeats). Raises ValueError for a bad selection."""
    selection = dict(workloads=workloads, impls=impls, dtypes=dtypes, threads=threads,
                     epochs=epochs, repeats=repeats)
    return load_compare().plan(preset="full" if full else "quick",
                               **{k: v for k, v in selection.items() if v is not None})


def row_progress(bar):
    """The progress callback for ``compare.run``: advances ``bar`` on a terminal, and
    writes the row's timing line to the bar's stream otherwise."""
    compare = load_compare()

    def progress(result, done, total):
        if bar.enabled:
            bar.update(note=f"{result['label']} {result['workload']} {result['dtype']}")
        else:
            bar.write(compare.row_line(result) + "\n")

    return progress


class _ThroughBar(io.TextIOBase):
    """A stderr stand-in while the bar is drawn: other text (a Numba compile notice, a
    warning) clears the bar's line first instead of landing inside it."""

    def __init__(self, bar):
        self.bar = bar

    def writable(self):
        return True

    def write(self, text):
        self.bar.write(text)
        return len(text)

    def flush(self):
        self.bar.file.flush()


def run(plan, out=DEFAULT_OUT):
    """Time ``plan`` (from ``plan()``) with a progress bar on stderr, print the table and
    write compare.json and compare.png into ``out``; returns the results as data (what
    compare.json holds)."""
    compare = load_compare()
    if note := compare.report.openblas_env_note():
        print(note, file=sys.stderr)
    with Progress(len(plan.rows), "bench rows", file=sys.stderr) as bar:
        through = _ThroughBar(bar) if bar.enabled else sys.stderr
        with contextlib.redirect_stderr(through):
            results = compare.run(plan, progress=row_progress(bar))
    compare.finish(results, out)
    return results
