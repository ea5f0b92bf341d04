"""Concurrency: threads, joblib's process and thread pools, Numba's on-disk cache.

- Fits in two threads at once give bit-for-bit the weights of the same fits run one after
  the other, on every backend; the compiled epoch releases the GIL (Cython and Numba), so
  another Python thread keeps running during it. (Whether two threads are actually
  faster is measured, not tested: ``python -m fastnn.bench.threads``.)
- Concurrent fits leave the process's BLAS thread limit as they found it.
- GridSearchCV(n_jobs=2) on joblib's loky (processes) and threading backends gives the
  sequential search's scores and best parameters exactly.
- Numba: several processes that start at once on one empty ``NUMBA_CACHE_DIR`` all
  succeed with identical results, and a later process reuses that cache (no recompile).
  The kernels are serial (no ``parallel=True``), so Numba's threading layer is never
  started: there is no Numba thread pool to oversubscribe or to be unsafe under threads.
- The same random_state gives bit-identical weights from run to run on one backend.
"""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from conftest import BACKENDS, COMPILED
from fastnn import MLPClassifier, MLPRegressor, available_backends
from fastnn._backends import get_kernels


# warnings.catch_warnings is not thread-safe: silence the expected ConvergenceWarnings
# (short fits) for the whole module instead of inside the threads.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def same_weights(a, b):
    """Bit-for-bit equality of two fitted MLPs' weights, biases and loss curves."""
    return (all(np.array_equal(x, y) for x, y in zip(a.coefs_ + a.intercepts_,
                                                      b.coefs_ + b.intercepts_))
            and getattr(a, "loss_curve_", None) == getattr(b, "loss_curve_", None)
            and a.n_iter_ == b.n_iter_)


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(600, 12, n_informative=8, n_classes=3, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6))
    y = X @ rng.normal(size=6) + 0.1 * rng.normal(size=500)
    return X, y


# ----------------------------------------------------------------- same random_state

SETTINGS = {
    "adam": dict(hidden_layer_sizes=(16, 8), max_iter=15),
    "sgd": dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate="invscaling",
                learning_rate_init=0.05, max_iter=10),
    "rmsprop-early-stopping": dict(hidden_layer_sizes=(16,), solver="rmsprop",
                                   early_stopping=True, max_iter=15),
    "lbfgs": dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_same_random_state_gives_bit_identical_weights(classification, backend, settings):
    X, y = classification
    first, second = (MLPClassifier(random_state=7, backend=backend, **settings).fit(X, y)
                     for _ in range(2))
    assert same_weights(first, second)
    other_seed = MLPClassifier(random_state=8, backend=backend, **settings).fit(X, y)
    assert not np.array_equal(other_seed.coefs_[0], first.coefs_[0])


# ----------------------------------------------------------------- threads


def _two_estimators(backend):
    return [
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=25, random_state=0, backend=backend),
        MLPRegressor(loss="huber", hidden_layer_sizes=(16, 16), solver="rmsprop", max_iter=25,
                     random_state=1, backend=backend),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_fits_in_two_threads_equal_the_same_fits_one_after_the_other(
        classification, regression, backend, monkeypatch):
    data = [classification, regression]
    sequential = [est.fit(*xy) for est, xy in zip(_two_estimators(backend), data)]

    # Overlap by construction, not by timing: each fit's first epoch waits until the
    # other fit has reached its first epoch too, so both are mid-fit at once.
    kernels = get_kernels(backend)
    inner = kernels.train_epoch
    meeting = threading.Barrier(2, timeout=120)
    met = set()

    def train_epoch(*args):
        if threading.get_ident() not in met:
            met.add(threading.get_ident())
            meeting.wait()
        return inner(*args)

    monkeypatch.setattr(kernels, "train_epoch", train_epoch)
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(lambda est, xy: est.fit(*xy), _two_estimators(backend), data))

    assert len(met) == 2, "the two fits did not meet mid-fit"
    for (X, _), seq, thr in zip(data, sequential, threaded):
        assert same_weights(seq, thr)
        np.testing.assert_array_equal(seq.predict(X), thr.predict(X))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_fitted_estimator_predicts_the_same_from_four_threads(classification, backend):
    X, y = classification
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0,
                        backend=backend).fit(X, y)
    expected = clf.predict_proba(X)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: clf.predict_proba(X), range(16)))
    for proba in results:
        np.testing.assert_array_equal(proba, expected)


class _Witness:
    """Whether this thread ran Python while another thread was inside a call, told by
    ordering, not by timing.

    A worker thread calls ``call()`` up to ``max_calls`` times, setting ``inside`` just
    before each call and clearing it just after (plain assignments: nothing between
    them and the call gives up the GIL). Meanwhile this thread looks at ``inside``,
    sleeping between looks so that the worker can take the GIL. The switch interval is
    set to 100 s, longer than the whole run, so CPython never takes the GIL from the
    worker (no forced switch): this thread gets it back only when the worker gives it
    up. Holding the GIL, this thread sees ``inside`` True only if the worker gave the
    GIL up between the two assignments, i.e. inside ``call()``. The worker stops as
    soon as this thread has seen it; each call is another chance, so a loaded machine
    can only delay the sighting, not prevent it.
    """

    SWITCH_INTERVAL = 100.0

    def __init__(self, call, max_calls=20):
        self.call, self.max_calls = call, max_calls
        self.inside = self.seen = False
        self.calls = 0
        self.error = None

    def _work(self):
        try:
            while self.calls < self.max_calls and not self.seen:
                self.inside = True
                try:
                    self.call()
                finally:
                    self.inside = False
                self.calls += 1
        except BaseException as exc:  # re-raised in the test's thread
            self.error = exc

    def run(self):
        previous = sys.getswitchinterval()
        sys.setswitchinterval(self.SWITCH_INTERVAL)
        try:
            worker = threading.Thread(target=self._work)
            worker.start()
            while worker.is_alive() and not self.seen:
                self.seen = self.inside
                time.sleep(1e-4)  # gives up the GIL: the worker runs on
            worker.join()
        finally:
            sys.setswitchinterval(previous)
        if self.error is not None:
            raise self.error
        return self


def _skip_without_numba_jit():
    numba = pytest.importorskip("numba", reason="numba not installed")
    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: the numba kernels run as Python")
    return numba


@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_epoch_releases_the_gil(backend):
    """Another Python thread runs while the compiled epoch is running in a thread.

    The arguments of a real fit's first train_epoch call (10000 steps of batch_size=1)
    are recorded, then the kernel is called with them again in a worker thread under
    the _Witness, which sees this thread run inside a call only if the kernel gives up
    the GIL. (The NumPy reference cannot serve as the negative control: NumPy gives up
    the GIL inside its own operations.)
    """
    if backend == "numba":
        _skip_without_numba_jit()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10000, 10))
    y = (X[:, 0] > 0).astype(int)
    kernels = get_kernels(backend)
    inner, recorded = kernels.train_epoch, []

    def train_epoch(*args):
        recorded.append(args)
        return inner(*args)

    kernels.train_epoch = train_epoch
    try:
        MLPClassifier(hidden_layer_sizes=(32,), batch_size=1, max_iter=1, random_state=0,
                      backend=backend).fit(X, y)  # compiles (Numba) outside the witness
    finally:
        kernels.train_epoch = inner
    assert recorded, "the fit never called train_epoch"
    args = recorded[0]

    witness = _Witness(lambda: inner(*args), max_calls=50).run()
    assert witness.seen, (
        f"this thread never ran during any of {witness.calls} {backend} train_epoch "
        "calls: the kernel holds the GIL")


def test_the_gil_witness_tells_a_kernel_that_holds_the_gil_from_one_that_releases_it():
    """The negative control: one compiled loop, jitted twice, differing only in
    ``nogil``. The GIL-holding twin keeps this thread out through all its calls."""
    numba = _skip_without_numba_jit()

    def spin(n):  # a dependent chain of square roots: nothing to vectorise or fold
        s = 0.0
        for i in range(n):
            s = np.sqrt(s + i)
        return s

    holds = numba.njit(nogil=False)(spin)
    releases = numba.njit(nogil=True)(spin)
    n = 2_000_000  # ~10-40 ms per call
    assert holds(n) == releases(n)  # compile both before the witness

    held = _Witness(lambda: holds(n), max_calls=10).run()
    assert not held.seen and held.calls == 10
    released = _Witness(lambda: releases(n), max_calls=10).run()
    assert released.seen


OVERLAPPING_FITS = r"""
import json, sys, threading, warnings
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_info
from fastnn import MLPClassifier
from fastnn._backends import get_kernels

warnings.simplefilter("ignore")
X, y = make_classification(4800, 12, n_informative=8, n_classes=3, random_state=0)
kernels = get_kernels(sys.argv[1])
inner, order = kernels.train_epoch, []
a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()


def blas():
    return {i["filepath"].rsplit("/", 1)[-1]: i["num_threads"] for i in threadpool_info()
            if i["user_api"] == "blas"}


def fit(name, max_iter=5):  # batch 32: small steps, so the fit pins BLAS to one thread
    MLPClassifier(hidden_layer_sizes=(32,), batch_size=32, max_iter=max_iter, tol=0.0,
                  n_iter_no_change=10**6, random_state=0, backend=sys.argv[1]).fit(X, y)
    order.append("end " + name)


def train_epoch(*args):  # A starts, B starts, A ends, B ends: by events, not timing
    me = threading.current_thread().name
    if me == "A" and not a_in.is_set():
        order.append("start A"); a_in.set(); b_in.wait(60)
    elif me == "B" and not b_in.is_set():
        order.append("start B"); b_in.set(); a_done.wait(60)
    return inner(*args)


fit("warm-up", 1)  # compile / warm up
before = blas()
kernels.train_epoch = train_epoch
a = threading.Thread(target=lambda: (fit("A"), a_done.set()), name="A")
b = threading.Thread(target=fit, args=("B",), name="B")
a.start(); a_in.wait(60); b.start()
a.join(); b.join()
print(json.dumps({"before": before, "after": blas(), "order": order}))
"""


def run_with_default_blas_threads(script, backend):
    """Run ``script`` in a fresh process with BLAS at its default thread count (no
    *_NUM_THREADS variables); return the JSON object of its last output line."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", script, backend], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", COMPILED)
def test_overlapping_fits_in_threads_restore_the_blas_thread_limit(backend):
    """A fit with small mini-batch steps pins BLAS to one thread for its duration
    (threadpoolctl: a process-wide setting) and restores the previous limit at the end.
    Two fits in two threads that overlap without nesting (A starts, B starts, A ends,
    B ends) must leave the process's BLAS thread count as it was before both.

    In a fresh process with BLAS at its default (one thread per core), because the
    outcome depends on which thread set a threadpoolctl limit first in the process."""
    result = run_with_default_blas_threads(OVERLAPPING_FITS, backend)
    if max(result["before"].values()) < 2:
        pytest.skip(f"BLAS runs one thread by default here ({result['before']}): nothing to leak")
    assert result["order"] == ["end warm-up", "start A", "start B", "end A", "end B"]
    assert result["after"] == result["before"], (
        f"BLAS threads before two overlapping fits {result['before']}, after "
        f"{result['after']}: the fits left BLAS pinned")


# ----------------------------------------------------------------- GridSearchCV n_jobs=2


def _search(backend):
    return GridSearchCV(
        MLPClassifier(max_iter=20, random_state=0, backend=backend),
        {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}, cv=3)


@pytest.fixture(scope="module")
def sequential_searches(classification):
    X, y = classification
    return {b: _search(b).fit(X, y) for b in available_backends()}


def assert_same_search(got, expected):
    assert got.best_params_ == expected.best_params_
    for key in ["mean_test_score", "rank_test_score"] + [
            f"split{i}_test_score" for i in range(3)]:
        np.testing.assert_array_equal(got.cv_results_[key], expected.cv_results_[key], key)
    assert same_weights(got.best_estimator_, expected.best_estimator_)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("joblib_backend", [pytest.param("loky", marks=pytest.mark.slow),
                                            "threading"])
def test_grid_search_n_jobs_2_equals_sequential(classification, sequential_searches,
                                                backend, joblib_backend):
    X, y = classification
    # max_nbytes=0: loky hands every array to the workers as a read-only memmap
    config = dict(max_nbytes=0) if joblib_backend == "loky" else {}
    search = _search(backend).set_params(n_jobs=2)
    with joblib.parallel_config(backend=joblib_backend, **config):
        search.fit(X, y)
    assert_same_search(search, sequential_searches[backend])


# ----------------------------------------------------------------- Numba: cache, threading

CHILD = r"""
import json, sys, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from fastnn import MLPClassifier
from fastnn._backends import get_kernels

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0,
                        backend="numba").fit(X, y)
np.savez(sys.argv[1], proba=clf.predict_proba(X), *clf.coefs_)
kernels = get_kernels("numba")
stats = {name: getattr(kernels, name).stats for name in ("train_epoch", "forward")}
print(json.dumps({
    "cache_hits": {n: sum(s.cache_hits.values()) for n, s in stats.items()},
    "cache_misses": {n: sum(s.cache_misses.values()) for n, s in stats.items()},
    "cache_path": {n: s.cache_path for n, s in stats.items()},
}))
"""


def _child(tmp_path, cache_dir, name):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    env.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / f"{name}.npz")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, name):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_numba_processes_starting_on_one_empty_cache_neither_crash_nor_corrupt_it(tmp_path):
    """Two processes, one per core, compile into one empty NUMBA_CACHE_DIR at once (each
    ~10 s of compiling, so they overlap); both succeed with identical weights; a third
    process then loads every kernel it needs from that cache, compiling nothing, with the
    same result. Slow by nature (~20-40 s on 2 cores): it measures cold compilation."""
    pytest.importorskip("numba", reason="numba not installed")
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    procs = {f"cold{i}": _child(tmp_path, cache, f"cold{i}") for i in range(2)}
    reports = {name: _finish(proc, name) for name, proc in procs.items()}
    assert any(sum(r["cache_misses"].values()) for r in reports.values())
    assert not list(cache.rglob("*.tmp.*")), "a cache write was left half-done"
    assert list(cache.rglob("*.nbi")) and list(cache.rglob("*.nbc"))

    warm = _finish(_child(tmp_path, cache, "warm"), "warm")
    assert warm["cache_misses"] == {"train_epoch": 0, "forward": 0}, warm
    assert all(hits >= 1 for hits in warm["cache_hits"].values()), warm
    for path in warm["cache_path"].values():  # the cache lives where NUMBA_CACHE_DIR says
        assert os.path.commonpath([path, str(cache)]) == str(cache), path

    results = {name: np.load(tmp_path / f"{name}.npz") for name in [*procs, "warm"]}
    reference = results["warm"]
    for name, result in results.items():
        assert sorted(result.files) == sorted(reference.files)
        for key in reference.files:
            np.testing.assert_array_equal(result[key], reference[key], f"{name}: {key}")


def _numba_dispatchers():
    import numba

    from fastnn.kernels.numba import dense, loss, optim, train

    return {f"{module.__name__}.{name}": obj
            for module in (dense, loss, optim, train)
            for name, obj in vars(module).items()
            if isinstance(obj, numba.core.registry.CPUDispatcher)}


def test_numba_kernels_are_serial_nogil_and_never_start_the_threading_layer(classification):
    """Numba's threading layer (tbb, omp or workqueue; workqueue is not thread-safe) only
    runs parallel=True code. No fastnn kernel is compiled with parallel=True, every one
    releases the GIL, and a fit leaves the threading layer unstarted."""
    numba = pytest.importorskip("numba", reason="numba not installed")
    dispatchers = _numba_dispatchers()
    assert "fastnn.kernels.numba.train.train_epoch" in dispatchers
    for name, dispatcher in dispatchers.items():
        assert dispatcher.targetoptions.get("nogil") is True, name
        assert not dispatcher.targetoptions.get("parallel"), name

    def started():
        try:
            numba.threading_layer()
        except ValueError:  # "Threading layer is not initialized."
            return False
        return True

    if started():
        pytest.skip("something else in this process already started numba's threading layer")
    X, y = classification
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, backend="numba").fit(X, y)
    MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3,
                 backend="numba").fit(X, y.astype(float))
    assert not started()


PREDICT_THREADS = r"""
import json, sys, warnings
import numpy as np
from threadpoolctl import threadpool_info
from fastnn import MLPClassifier
from fastnn._backends import get_kernels

warnings.simplefilter("ignore")
kernels = get_kernels(sys.argv[1])
inner, seen = kernels.forward, []


def forward(*args):  # what BLAS is set to while predict's forward pass runs
    seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
    return inner(*args)


rng = np.random.default_rng(0)
X = rng.normal(size=(20000, 64))
y = (X[:, 0] > 0).astype(int)
clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=1, backend=sys.argv[1]).fit(X[:500], y[:500])
default = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
kernels.forward = forward
for rows in (1, 1000, 20000):  # 1 row: OpenBLAS's own serial path; 1000 and 20000: pinned
    clf.predict_proba(X[:rows])
print(json.dumps({"default": default, "seen": seen}))
"""


@pytest.mark.parametrize("backend", COMPILED)
def test_predict_pins_blas_to_one_thread(backend):
    """predict's forward pass follows fit's rule: BLAS runs on one thread (a GEMM that
    OpenBLAS splits over threads is not the same bits), for 1000 rows as for 20000; a
    pass too small for OpenBLAS to thread is left alone (no cost)."""
    result = run_with_default_blas_threads(PREDICT_THREADS, backend)
    if result["default"] < 2:
        pytest.skip(f"BLAS runs one thread by default here ({result['default']})")
    d = result["default"]
    assert result["seen"] == [d, 1, 1]
