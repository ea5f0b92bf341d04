"""Ctrl-C during fit or partial_fit behaves as scikit-learn's: the fit returns soon,
warns "Training interrupted by user." and keeps the model trained so far.

A real SIGINT goes to a child process in the middle of a long epoch (many compiled calls
of one slice each); the child reports what the interrupted fit left.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent("""
    import json, sys, time, warnings
    import numpy as np
    from fastnn import MLPRegressor
    method, backend = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60000, 64))
    y = X[:, :4].sum(axis=1)
    reg = MLPRegressor(hidden_layer_sizes=(256, 256), batch_size=50, max_iter=100,
                       random_state=0, backend=backend)
    init = MLPRegressor(hidden_layer_sizes=(256, 256), max_iter=1, random_state=0)
    init._random_state = np.random.RandomState(0)
    if method == "partial_fit":  # one finished call first, then the interrupted one
        reg.partial_fit(X[:100], y[:100])
    before = [c.copy() for c in reg.coefs_] if method == "partial_fit" else None
    print("fitting", flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(reg, method)(X, y)
    print(json.dumps({
        "returned": time.time(),
        "warnings": [str(w.message) for w in caught],
        "n_iter": reg.n_iter_, "loss_curve": len(reg.loss_curve_), "t": reg.t_,
        "step": reg._schedule.step, "batches_per_epoch": 60000 // 50,
        "finite": bool(np.isfinite(reg.predict(X[:10])).all()),
        "moved": before is None or any(not np.array_equal(a, b)
                                        for a, b in zip(before, reg.coefs_)),
    }), flush=True)
""")


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_sigint_stops_the_fit_mid_epoch_and_keeps_the_completed_steps(method, backend, tmp_path):
    if backend == "numba":
        pytest.importorskip("numba", reason="numba not installed")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), method, backend],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "fitting"
        # the first epoch (1200 steps of 2 x 50 x 82k multiply-adds) takes seconds; the
        # interrupt lands inside it, once some slices have run (compiling aside)
        time.sleep(1.5)
        sent = time.time()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    print(f"{backend} {method}: returned {report['returned'] - sent:.3f} s after SIGINT")
    assert "Training interrupted by user." in report["warnings"]
    previous_epochs = 1 if method == "partial_fit" else 0
    if report["n_iter"] == 0:  # stopped inside the first epoch: it is not counted
        assert report["loss_curve"] == previous_epochs
        assert report["t"] == 100 * previous_epochs
        assert 1 <= report["step"] - previous_epochs < report["batches_per_epoch"]
    else:  # a slow machine (or a slow compile) let whole epochs finish first
        assert method == "fit" and report["loss_curve"] == report["n_iter"]
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
