"""The benchmark ships in the wheel as ``fastnn.bench`` and runs from an installed fastnn,
from any folder: ``python -m fastnn.bench.compare`` and ``fastnn bench``.

How: a wheel is built (``pip wheel --no-deps --no-build-isolation``) from a copy of the
checkout's git-tracked files as they are in the working tree, unpacked into a folder,
and run with that folder first on PYTHONPATH from an empty current folder. Every module
is checked to come from the unpacked wheel (this environment's editable install maps
fastnn to the checkout; a module missing from the wheel would otherwise be found there).

Cost: about 10-20 s on 2 cores. The copy takes the checkout's compiled kernels along
(build/lib.*/.../*.so, or the in-place ones of an editable install, the generated .c
files and the build mode stamp, modification times kept), so setuptools finds them up to date, by its own timestamp rules, and packs
them without compiling; without them (or when a .pyx changed since) the build compiles
every kernel, about 50 s more.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import fastnn

ROOT = Path(fastnn.__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _tracked_copy(dest):
    """The checkout's tracked files as in the working tree, plus its compiled kernels (see
    the module docstring); modification times kept."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("fastnn is not imported from a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    built = [*ROOT.glob("kernels/cython/*.c"), *ROOT.glob("build/fastnn-build-mode"),
             *ROOT.glob("build/lib.*/fastnn/kernels/cython/*.so")]
    for path in [ROOT / name for name in filter(None, files)] + built:
        if path.is_file():
            target = dest / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    # an editable install (CI's) builds the kernels in place, not in build/lib.*: put them
    # where build_ext looks (measured in CI: 100 s of compiling otherwise)
    lib = (dest / "build" / f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
           / "fastnn" / "kernels" / "cython")
    for so in ROOT.glob(f"kernels/cython/*{sysconfig.get_config_var('EXT_SUFFIX')}"):
        if not (lib / so.name).exists():
            lib.mkdir(parents=True, exist_ok=True)
            shutil.copy2(so, lib / so.name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("Cython", reason="building the wheel needs Cython (build requirement)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _tracked_copy(tmp / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp / "dist"), "."],
                           cwd=src, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (path,) = (tmp / "dist").glob("fastnn-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The unpacked wheel: (its folder, an environment putting it first on sys.path)."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return site, {**os.environ, "PYTHONPATH": path}


def run(args, env, cwd, timeout=300):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def test_wheel_holds_the_bench_as_fastnn_bench(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("__init__", "compare", "report", "workloads", "cold_start", "memory"):
        assert f"fastnn/bench/{module}.py" in names
    assert "fastnn/bench/README.md" in names
    assert not [n for n in names if n.startswith("bench/")]  # no top-level `bench` package
    assert any(n.startswith("fastnn/kernels/cython/train.") and n.endswith((".so", ".pyd"))
               for n in names)


WHERE = """
import sys
import fastnn
loaded = sorted(m for m in sys.modules if "bench" in m)
import fastnn.bench.compare, fastnn.kernels, fastnn._bench
print(loaded)
for module in (fastnn, fastnn.bench.compare, fastnn.kernels, fastnn._bench):
    print(module.__file__)
"""


def test_installed_modules_come_from_the_wheel_and_import_fastnn_skips_the_bench(installed,
                                                                                  tmp_path):
    site, env = installed
    out = run(["-c", WHERE], env, tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, *files = out.stdout.splitlines()
    assert loaded == "[]"  # import fastnn imported no bench module
    for file in files:
        assert Path(file).resolve().is_relative_to(site.resolve()), file


def test_installed_compare_help_and_fastnn_bench_run_from_any_folder(installed, tmp_path):
    site, env = installed
    helped = run(["-m", "fastnn.bench.compare", "--help"], env, tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: python -m fastnn.bench.compare")

    ready = run(["-c", "from fastnn.bench.workloads import backend_status; "
                       "print(*[b for b, r in backend_status().items() if r is None])"],
                env, tmp_path, timeout=120)
    assert ready.returncode == 0, ready.stderr
    # cython when it is built (the fastest row); else whichever backend is ready
    backends = ready.stdout.split()
    backend = "cython" if "cython" in backends else backends[0]
    out = run(["-m", "fastnn", "bench", "--workloads", "tiny", "--impls", backend,
               "--dtypes", "float64", "--threads", "1", "--epochs", "1", "--repeats", "1"],
              env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "wrote fastnn-bench/compare.json" in out.stdout
    assert "us/step" in out.stderr  # one line per row (not a terminal: no bar)
    results = json.loads((tmp_path / "fastnn-bench" / "compare.json").read_text())
    assert [(r["impl"], r["workload"], r["dtype"]) for r in results["rows"]] == [
        (backend, "tiny", "float64")]
    assert results["machine"]["git"] is None  # installed: no checkout's commit recorded
    assert not (site / "fastnn" / "bench" / "fastnn-bench").exists()
