"""The bench's JAX peer and the workloads' activation (fastnn.bench.jax_peer, .workloads).

JAX is optional: the tests that run it skip, naming jax, when it is not installed; the
others check that compare lists JAX as skipped then, and that every implementation gets
the workload's activation.
"""

import importlib.util
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fastnn.bench") is None,
    reason="fastnn.bench is not importable: an editable install made before bench/ became "
           "fastnn.bench does not map it; run pip install -e . again")

MISSING = [m for m in ("jax", "optax") if importlib.util.find_spec(m) is None]
needs_jax = pytest.mark.skipif(bool(MISSING), reason=f"{' and '.join(MISSING)} not installed "
                                                     "(optional: pip install jax optax)")


def test_compare_lists_jax_as_skipped_when_it_is_not_installed(monkeypatch):
    from fastnn.bench import compare

    monkeypatch.setitem(sys.modules, "jax", None)  # find_spec("jax") is None: not installed
    plan = compare.plan(preset="quick", workloads="tiny", impls="jax,sklearn", dtypes="float64")
    assert [r.impl for r in plan.rows] == ["sklearn"]
    (skip,) = [s for s in plan.skipped if s["impl"] == "jax"]
    assert skip["reason"].startswith("jax") and "pip install jax optax" in skip["reason"]


def test_quick_all_leaves_the_new_workloads_out_and_names_them():
    from fastnn.bench import compare

    quick = compare.plan(preset="quick", workloads="all", impls="sklearn", dtypes="float64")
    assert quick.not_in_all == ("deep_tanh", "wide")
    assert {r.workload.name for r in quick.rows} == {"tiny", "digits", "mid"}  # big: skipped
    named = compare.plan(preset="quick", workloads="deep_tanh,wide", impls="sklearn",
                         dtypes="float64")
    assert [r.workload.name for r in named.rows] == ["deep_tanh", "wide"] and not named.not_in_all
    full = compare.plan(preset="full", workloads="all", impls="sklearn", dtypes="float64")
    assert [r.workload.name for r in full.rows][-2:] == ["deep_tanh", "wide"]


def test_every_implementation_gets_the_workloads_activation():
    import fastnn.kernels as fk
    from fastnn.bench import workloads
    from fastnn.kernels import layout

    w = workloads.WORKLOADS["deep_tanh"]
    assert w.activation == "tanh" and w.hidden == (64,) * 8
    assert workloads.WORKLOADS["wide"].activation == "relu"
    assert workloads.sklearn_classifier(w, epochs=1).activation == "tanh"
    trainer = workloads.FastnnTrainer("numpy", w, workloads.load(w.name, "float64"))
    assert list(layout.hidden_acts(trainer.table)) == [fk.TANH] * 8


@pytest.fixture
def x64():
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@needs_jax
@pytest.mark.parametrize("name", ["tiny", "deep_tanh"])  # both end on a short batch
def test_jax_epochs_follow_fastnn_from_the_same_weights_and_batches(name, x64):
    """Same initial weights, permutations and objective: the epoch losses agree to the
    difference between the two Adam forms (eps inside or outside the bias correction)."""
    from fastnn.bench import jax_peer, workloads

    w = workloads.WORKLOADS[name]
    data = workloads.load(name, "float64")
    fastnn = workloads.FastnnTrainer("numpy", w, data)
    jax_trainer = jax_peer.JaxTrainer(w, data)
    assert jax_trainer.compile_seconds > 0
    expected = [fastnn.epoch() for _ in range(2)]
    got = [jax_trainer.epoch() for _ in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert jax_trainer.params[0][0].dtype == np.float64


@needs_jax
@pytest.mark.slow
def test_compare_times_jax_in_a_worker_and_reports_its_compile_time(tmp_path, capsys):
    from fastnn.bench import compare, jax_peer

    plan = compare.plan(preset="quick", workloads="tiny", impls="jax", dtypes="float32",
                        threads="1", epochs=1, repeats=1)
    results = compare.run(plan)
    assert not jax_peer._workers  # the worker processes are ended
    (row,) = results["rows"]
    assert row["impl"] == "jax" and row["us_per_step"] > 0 and row["compile_seconds"] > 0
    assert row["per_threads"][1]["compile_seconds"] == row["compile_seconds"]
    assert results["settings"]["jax"]["jax"] is not None
    compare.finish(results, tmp_path)
    assert "JAX compile" in capsys.readouterr().out
