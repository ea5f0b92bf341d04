"""First use, told honestly: one line on stderr before numba compiles the training kernels
(silence when they load from numba's on-disk cache), one clear error when fastnn is
imported from a source checkout that was never installed, and ``available_backends()``
listing only the backends that import.

Cost: one cold compile of the float64 training kernels (15-25 s on 2 cores) in
``test_numba_compile_is_announced_once_and_not_when_cached``; everything else is cheap.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn
from fastnn import _backends, available_backends

ROOT = Path(fastnn.__file__).resolve().parent.parent
NOTICE = "fastnn: compiling the numba"


def python(code, *flags, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


# --------------------------------------------------------------------------- numba notice

TWO_FITS = """
import sys
import numpy as np
import fastnn
assert "numba" not in sys.modules, "import fastnn imported numba"
X = np.random.default_rng(0).standard_normal((30, 3))
y = (X[:, 0] > 0).astype(int)
for _ in range(2):
    fastnn.MLPClassifier(backend="numba", hidden_layer_sizes=(3,), max_iter=2).fit(X, y).predict(X)
print("fitted twice")
"""

needs_numba = pytest.mark.skipif(
    "numba" not in available_backends() or os.environ.get("NUMBA_DISABLE_JIT") == "1",
    reason="numba is not available, or its JIT is disabled")


@needs_numba
@pytest.mark.slow
def test_numba_compile_is_announced_once_and_not_when_cached(tmp_path):
    """The first process compiles (one line for float64, although it fits twice and
    predicts); the second loads the same cache folder: no line at all."""
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    cold = python(TWO_FITS, "-W", "ignore", env=env)
    assert cold.returncode == 0, cold.stderr
    lines = [line for line in cold.stderr.splitlines() if NOTICE in line]
    assert len(lines) == 1, cold.stderr
    assert lines[0].startswith("fastnn: compiling the numba training kernels for float64 "
                               "(about 15-25 s on first use; cached afterwards in "), lines
    assert str(cache) in lines[0]

    warm = python(TWO_FITS, "-W", "ignore", env=env)
    assert warm.returncode == 0 and "fitted twice" in warm.stdout, warm.stderr
    assert NOTICE not in warm.stderr, warm.stderr


@needs_numba
def test_compile_notice_kinds_dtypes_and_helpers(capsys):
    """The listener on synthetic "numba:compile" events (nothing is compiled): train.py's
    entry points are announced once per kind and dtype, announcing the training kernels
    covers forward, and helpers or other modules' kernels are never announced."""
    from numba import types
    from numba.core import event

    from fastnn.kernels.numba import _config, dense, train

    def compile_event(dispatcher, dtype):
        args = (types.Array(getattr(types, dtype), 2, "C"),)
        return event.Event("numba:compile", event.EventStatus.START,
                           data={"dispatcher": dispatcher, "args": args, "return_type": None})

    notice = _config.CompileNotice()
    for dispatcher, dtype in [
        (train.forward, "float32"),  # predicting first: the prediction kernel alone
        (train.train_epoch, "float32"),  # then training: announced too
        (train._forward, "float32"),  # a helper compiled inside train_epoch: silent
        (train.forward, "float32"),  # already announced
        (train.train_epoch, "float64"),
        (train.forward_backward, "float64"),  # the same kind and dtype: silent
        (train.forward, "float64"),  # covered by the training kernels
        (dense.dense_forward, "float64"),  # a single kernel (about a second): silent
    ]:
        notice.on_start(compile_event(dispatcher, dtype))
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err] == [
        "fastnn: compiling the numba prediction kernel for float32",
        "fastnn: compiling the numba training kernels for float32",
        "fastnn: compiling the numba training kernels for float64",
    ]
    assert "about 5 s" in err[0] and "about 15-25 s" in err[1]
    cache_path = train.train_epoch._cache.cache_path
    assert all(line.endswith(f"cached afterwards in {cache_path})") for line in err)


# --------------------------------------------------------------------------- source checkout


def source_checkout(dest):
    """A fresh ``git clone`` of this checkout, with its uncommitted edits: the tracked files
    as they are in the working tree (no compiled kernels, no build/, not installed)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("fastnn is not imported from a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    assert not list(dest.glob("kernels/cython/*.so"))
    return dest


IMPORT_AND_FIT = ("import numpy as np, fastnn; "
                  "fastnn.MLPClassifier(max_iter=1).fit(np.eye(4), [0, 1, 0, 1])")


def test_uninstalled_checkout_says_what_happened_and_the_fix(tmp_path):
    clone = source_checkout(tmp_path / "clone")
    fix = f"Run `pip install -e .` in {clone}"
    # -S: no site-packages, as on a machine where no fastnn is installed
    bare = python("import fastnn", "-S", cwd=clone, timeout=60)
    assert bare.returncode == 1
    last = bare.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fastnn._backends.KernelsNotFound: fastnn was imported from the "
                           f"source checkout {clone}, which is not installed: its kernels/ "
                           "folder becomes fastnn.kernels only when installed."), bare.stderr
    assert fix in last and "or run Python from another folder" in last
    # with this environment's site-packages: fastnn.kernels is missing, or it is the
    # installed copy's (an editable install elsewhere maps it): refused either way, at
    # import, before the fit
    here = python(IMPORT_AND_FIT, cwd=clone, timeout=120)
    assert here.returncode == 1 and "KernelsNotFound" in here.stderr, here.stderr
    assert fix in here.stderr and "cannot import name 'kernels'" not in here.stderr
    # the second fix: from another folder, the installed fastnn
    elsewhere = python(IMPORT_AND_FIT + "; print(fastnn.__file__)", "-W", "ignore",
                       cwd=tmp_path, timeout=120)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert Path(elsewhere.stdout.strip()).resolve() == Path(fastnn.__file__).resolve()


def test_available_backends_lists_only_backends_that_import(monkeypatch):
    monkeypatch.setattr(_backends, "_problems", {})
    monkeypatch.setitem(_backends.BACKENDS, "cython", "fastnn.kernels.no_such_backend")
    assert "cython" not in available_backends() and "numpy" in available_backends()
    with pytest.raises(ValueError, match=r"backend 'cython' is not available here \(cannot "
                                         r"import fastnn.kernels.no_such_backend: "):
        _backends.resolve("cython")


def test_numba_that_fails_to_import_is_not_listed(tmp_path):
    """numba installed but broken (here the error numba raises for a numpy it does not
    support): found on sys.path, yet not listed; "auto" still works, and asking for numba
    explains why."""
    fake = tmp_path / "site" / "numba"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise ImportError("Numba needs NumPy 2.3 or less. Got NumPy 2.4.")\n')
    code = """
import importlib.util
import numpy as np
import fastnn
assert importlib.util.find_spec("numba") is not None
print(fastnn.available_backends())
fastnn.MLPClassifier(max_iter=1).fit(np.eye(4), [0, 1, 0, 1])
try:
    fastnn.MLPClassifier(backend="numba", max_iter=1).fit(np.eye(4), [0, 1, 0, 1])
except ValueError as exc:
    print(exc)
"""
    path = os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))
    out = python(code, "-W", "ignore", env={**os.environ, "PYTHONPATH": path}, timeout=120)
    assert out.returncode == 0, out.stderr
    listed, error = out.stdout.splitlines()
    assert "numba" not in listed and "numpy" in listed
    assert error.startswith("backend 'numba' is not available here (cannot import "
                            "fastnn.kernels.numba: ImportError: Numba needs NumPy 2.3 or "
                            "less. Got NumPy 2.4.); available: ["), error
