"""Ctrl-C during fit or partial_fit behaves as scikit-learn's: the fit returns soon,
warns "Training interrupted by user." and keeps the model trained so far.

A real SIGINT goes to a child process in the middle of a long epoch (many compiled calls
of one slice each), synchronised with the child's slices (not by timing); the child
reports what the interrupted fit left.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent("""
    import json, sys, time, warnings
    import numpy as np
    from fastnn import MLPRegressor, _engine
    from fastnn._backends import get_kernels
    method, backend = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12000, 64))
    y = X[:, :4].sum(axis=1)
    reg = MLPRegressor(hidden_layer_sizes=(256, 256), batch_size=50, max_iter=100,
                       random_state=0, backend=backend)
    if method == "partial_fit":  # one finished call first, then the interrupted one
        reg.partial_fit(X[:100], y[:100])
    before = [c.copy() for c in reg.coefs_] if method == "partial_fit" else None
    kernels = get_kernels(backend)
    inner, calls = kernels.train_epoch, []

    def train_epoch(*args):  # the third slice tells the parent to send SIGINT
        calls.append(1)
        if len(calls) == 4:  # SIGINT is on its way: wait until the parent has sent it
            sys.stdin.readline()
        result = inner(*args)
        if len(calls) == 3:
            print("third slice", flush=True)
        return result

    kernels.train_epoch = train_epoch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(reg, method)(X, y)
    returned = time.time()
    per_call = _engine.batches_per_call(reg._table, 50)  # 43 steps of 64-256-256-1
    print(json.dumps({
        "returned": returned, "calls": len(calls), "per_call": per_call,
        "warnings": [str(w.message) for w in caught],
        "n_iter": reg.n_iter_, "loss_curve": len(reg.loss_curve_), "t": reg.t_,
        "step": reg._optimizer.step, "batches_per_epoch": 12000 // 50,
        "finite": bool(np.isfinite(reg.predict(X[:10])).all()),
        "moved": before is None or any(not np.array_equal(a, b)
                                        for a, b in zip(before, reg.coefs_)),
    }), flush=True)
""")


def _interrupt(script, args, ready, timeout):
    """Run the child ``script``; when it prints ``ready``, send it SIGINT and then a line
    on its stdin (the child waits for it in its next compiled call, so the signal lands
    there). Returns (the JSON report of its last line, when SIGINT was sent); the child
    must exit cleanly."""
    child = subprocess.Popen([sys.executable, str(script), *args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == ready, line + child.stderr.read()
        sent = time.time()
        child.send_signal(signal.SIGINT)
        child.stdin.write("sent\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=timeout)
    finally:
        child.kill()
    assert child.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), sent


# one child process each (~2 s, far more on a busy machine): one case stays in the fast
# loop, the others are slow
CASES = [pytest.param(backend, method, id=f"{backend}-{method}",
                      marks=[] if (backend, method) == ("cython", "fit") else pytest.mark.slow)
         for backend in ("cython", "numba", "numpy") for method in ("fit", "partial_fit")]


@pytest.mark.parametrize("backend, method", CASES)
def test_sigint_stops_the_fit_mid_epoch_and_keeps_the_completed_steps(method, backend, tmp_path):
    """The parent sends SIGINT when the child's third slice of its first epoch has run
    (the signal lands in the fourth compiled call, or just before it): the fit stops
    after that slice, inside the epoch, with scikit-learn's warning."""
    if backend == "numba":
        pytest.importorskip("numba", reason="numba not installed")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    report, sent = _interrupt(script, [method, backend], "third slice", timeout=300)
    print(f"{backend} {method}: returned {report['returned'] - sent:.3f} s after SIGINT")
    assert "Training interrupted by user." in report["warnings"]
    previous = 1 if method == "partial_fit" else 0  # partial_fit's first call: 1 epoch, 2 steps
    assert report["calls"] in (3, 4)  # stopped right after the slice the signal reached
    assert report["n_iter"] == 0 and report["loss_curve"] == previous
    assert report["t"] == 100 * previous
    assert report["per_call"] * report["calls"] < report["batches_per_epoch"]
    assert report["step"] == 2 * previous + report["per_call"] * report["calls"]
    assert report["finite"] and report["moved"]


def test_sigint_outside_a_fit_still_raises_keyboard_interrupt(tmp_path):
    """The fit's handler is put back when the fit ends."""
    script = tmp_path / "after.py"
    script.write_text(textwrap.dedent("""
        import os, signal, signal as s
        from fastnn import MLPRegressor
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit([[0.0], [1.0]], [0.0, 1.0])
        assert s.getsignal(s.SIGINT) is s.default_int_handler
        try:
            os.kill(os.getpid(), signal.SIGINT)
            import time; time.sleep(5)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "KeyboardInterrupt", out.stderr


SEARCH_CHILD = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    from fastnn import MLPRegressorCV
    from fastnn._backends import get_kernels
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 16))
    y = X[:, :4].sum(axis=1)
    kernels = get_kernels("cython")
    inner, calls = kernels.train_epoch_many, []

    def train_epoch_many(*args):  # the second round tells the parent to send SIGINT
        calls.append(1)
        if len(calls) == 3:  # SIGINT is on its way: wait until the parent has sent it
            sys.stdin.readline()
        result = inner(*args)
        if len(calls) == 2:
            print("second round", flush=True)
        return result

    kernels.train_epoch_many = train_epoch_many
    search = MLPRegressorCV({"alpha": [1e-4, 1e-2]}, hidden_layer_sizes=(32,), max_iter=500,
                            tol=0, n_iter_no_change=1000, random_state=0, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            search.fit(X, y)
            outcome = "returned"
        except KeyboardInterrupt:
            outcome = "KeyboardInterrupt"
    print(json.dumps({"outcome": outcome, "calls": len(calls),
                      "fitted": hasattr(search, "cv_results_")}), flush=True)
""")


def test_sigint_ends_a_batched_search_with_keyboard_interrupt(tmp_path):
    """Ctrl-C during MLPRegressorCV's batch: every model stops after the round it is in,
    and the search raises KeyboardInterrupt (a search cut short has no result), leaving
    the estimator unfitted."""
    pytest.importorskip("fastnn.kernels.cython.train", reason="cython backend not built")
    script = tmp_path / "child.py"
    script.write_text(SEARCH_CHILD)
    report, _ = _interrupt(script, [], "second round", timeout=120)
    # the flag stops the rounds before the third call, or the third call is the last
    assert report["outcome"] == "KeyboardInterrupt" and not report["fitted"], report
    assert report["calls"] in (2, 3), report
