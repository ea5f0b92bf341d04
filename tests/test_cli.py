"""The command line: every command run as a subprocess, the demo stories' claims, the
shipped example data, and the progress bar."""

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import warnings

import numpy as np
import pytest

from fastnn import _bench, _cvdelta, _demo, available_backends
from fastnn._progress import Progress

EXAMPLE = str(_cvdelta.EXAMPLE_CSV)


def fastnn_cli(*args, timeout=600, cwd=None, env=None):
    """Run ``python -m fastnn ARGS`` with captured (non-terminal) output."""
    return subprocess.run([sys.executable, "-m", "fastnn", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=None if env is None else {**os.environ, **env})


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- entry points


def test_console_script_and_module_run_the_same_parser():
    script = shutil.which("fastnn") or str(Path(sys.executable).parent / "fastnn")
    if not Path(script).exists():
        pytest.skip("the fastnn console script is not installed (pip install -e .)")
    via_script = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    via_module = fastnn_cli("--help", timeout=60)
    assert via_script.returncode == via_module.returncode == 0, via_script.stderr
    for command in ("demo", "bench", "cv-delta"):
        assert command in via_module.stdout
    assert via_script.stdout.replace(Path(script).name, "fastnn") == via_module.stdout
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("fastnn ")


def test_no_command_is_a_usage_error():
    out = fastnn_cli(timeout=60)
    assert out.returncode == 2 and "COMMAND" in out.stderr


# --------------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_command_prints_four_stories_and_writes_four_pngs(tmp_path):
    out = fastnn_cli("demo", "--epochs", "3", "--out", tmp_path / "pngs")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for heading in ("1. A 3-4-1 sigmoid network", "2. A line fitted to 40 points",
                    "3. Digits", "4. Digits as images"):
        assert heading in text
    assert "squared error run: the loss fell at every iteration" in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("fastnn,", "scikit"))]
    assert len([line for line in text.splitlines() if line.startswith(("CNN ", "MLP "))]) == 2
    assert len(rows) == len(available_backends()) + 1
    accuracies = [float(r[-3]) for r in rows]
    assert all(0.5 < a <= 1.0 for a in accuracies), text
    # same initial weights and shuffles as scikit-learn: the same accuracy on every backend
    assert max(accuracies) - min(accuracies) < 1e-9, text
    assert "\r" not in out.stderr  # no progress bar when stderr is not a terminal
    if has_matplotlib():
        pngs = sorted(p.name for p in (tmp_path / "pngs").iterdir())
        assert pngs == sorted(_demo.PNG.values())
        for name in pngs:
            assert (tmp_path / "pngs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {tmp_path / 'pngs'}" in text


@pytest.mark.slow
def test_demo_defaults_to_fastnn_demo_folder_and_selects_stories(tmp_path):
    out = fastnn_cli("demo", "--stories", "2", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "2. A line" in out.stdout and "1. A 3-4-1" not in out.stdout
    if has_matplotlib():
        assert [p.name for p in (tmp_path / "fastnn-demo").iterdir()] == [_demo.PNG["outliers"]]


def test_demo_cifar10_without_the_data_says_where_it_comes_from(tmp_path):
    out = fastnn_cli("demo", "--stories", "4", "--cifar10", tmp_path, "--no-plots", timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "fastnn demo: error: CIFAR-10 is not in" in out.stderr
    assert "downloads nothing" in out.stderr


def test_demo_cifar10_trains_the_article_model_on_the_files(tmp_path):
    """Small files in CIFAR-10's format: the article's model, one epoch, test accuracy."""
    from test_datasets import _write

    _write(tmp_path / "cifar-10-batches-py", sizes=(8, 8, 8, 8, 8, 20))
    out = fastnn_cli("demo", "--stories", "4", "--cifar10", tmp_path, "--epochs", "2",
                     "--no-plots", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "4. CIFAR-10 (40 train / 20 test images)" in out.stdout
    lines = [line for line in out.stdout.splitlines() if "test accuracy" in line]
    assert [line.split(":")[0].split()[-1] for line in lines] == ["1", "2"]
    assert all(0.0 <= float(line.split("test accuracy ")[1].split()[0]) <= 1.0 for line in lines)


def test_demo_without_matplotlib_prints_tables_and_says_how_to_get_pngs(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from fastnn.__main__ import main; "
            f"sys.exit(main(['demo', '--stories', '2', '--out', {str(tmp_path / 'x')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "matplotlib is not installed" in out.stdout and "pip install matplotlib" in out.stdout
    assert "2. A line" in out.stdout and not (tmp_path / "x").exists()


@pytest.mark.parametrize("command, args, message", [
    ("demo", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("demo", ["--epochs", "x"], "argument --epochs: expected an integer, got 'x'"),
    ("demo", ["--stories", "5"], "argument --stories: unknown story '5'"),
    ("bench", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("bench", ["--repeats", "-1"], "argument --repeats: must be at least 1, got -1"),
    ("bench", ["--threads", "3"], "argument --threads: invalid choice: '3'"),
    ("cv-delta", [EXAMPLE, "--target", "y", "--max-iter", "0"],
     "argument --max-iter: must be at least 1, got 0"),
    ("cv-delta", [EXAMPLE, "--target", "y", "--n-jobs", "0"],
     "argument --n-jobs: must be a positive count or -1 (all cores), got 0"),
    ("cv-delta", [EXAMPLE, "--target", "y", "--random-state", "-1"],
     "argument --random-state: must be between 0 and 2**32 - 1, got -1"),
])
def test_bad_values_are_reported_by_the_sub_command(command, args, message):
    """The sub-command's own usage and error, never the top-level usage."""
    out = fastnn_cli(command, *args, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"usage: fastnn {command} "), out.stderr
    assert f"fastnn {command}: error: {message}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_story_1_squared_error_loss_falls_monotonically_and_predictions_converge():
    """The classic exercise: 1500 iterations of squared error on the truth table."""
    run = _demo.train_truth_table("squared_error", iterations=1500)
    loss = run["loss"]
    assert len(loss) == 1500
    assert np.all(np.diff(loss) < 0), "the squared error must fall at every iteration"
    assert loss[-1] < 0.01 * loss[0]
    targets = _demo.TRUTH_Y.ravel()
    errors = np.abs(run["predictions"] - targets).max(axis=1)
    assert errors[-1] < 0.05 and np.abs(run["final_predictions"] - targets).max() < 0.05
    # converging: the largest error shrinks over the second half of training
    assert np.all(np.diff(errors[750:]) < 0)


def test_story_1_log_loss_changes_the_learning_not_just_the_number():
    """Same weights, same step size: log-loss gets closer to the targets, sooner, even when
    judged by squared error; its output gradient is p - y, squared error's carries the
    sigmoid's slope p (1 - p)."""
    se = _demo.train_truth_table("squared_error")
    ll = _demo.train_truth_table("log_loss")
    assert se["loss"][0] != ll["loss"][0]  # different losses ...
    np.testing.assert_allclose(se["predictions"][0], ll["predictions"][0])  # ... same start
    assert np.all(np.diff(ll["loss"]) < 0)
    assert ll["squared_error"][-1] < 0.05 * se["squared_error"][-1]
    targets = _demo.TRUTH_Y.ravel()

    def first_within(run, tol=0.1):
        return int(np.argmax(np.abs(run["predictions"] - targets).max(axis=1) < tol))

    assert first_within(ll) < first_within(se) / 2
    p, g_se, g_ll = _demo.output_gradients()
    np.testing.assert_allclose(g_se, 2 * p * p * (1 - p), atol=1e-12)
    np.testing.assert_allclose(g_ll, p, atol=1e-12)
    assert g_se[-1] < 0.01 and g_ll[-1] > 0.99  # confidently wrong: no gradient vs full


def test_story_2_outliers_losses_order_and_robustness():
    result = _demo.outliers(out=lambda *_: None)
    fits = result["fits"]
    assert result["outliers"].sum() == 5 and len(result["x"]) == 40
    # squared error falls fastest, absolute error slowest, Huber between
    steps = [fits[name]["epochs_to_99"] for name in ("squared_error", "huber", "absolute_error")]
    assert None not in steps and steps[0] < steps[1] < steps[2], steps
    # Huber and absolute error resist the outliers; squared error follows them
    true = _demo.LINE_SLOPE
    assert abs(fits["squared_error"]["slope"] - true) > 0.4
    for name in ("huber", "absolute_error"):
        assert abs(fits[name]["slope"] - true) < 0.15
        assert fits[name]["inlier_mae"] < fits["squared_error"]["inlier_mae"] / 2
    # gradient descent reached the loss's minimum (found by L-BFGS)
    for fit in fits.values():
        assert fit["curve"].min() - fit["minimum"] < 1e-3 * fit["minimum"]


# --------------------------------------------------------------------------- bench
# The wheel (fastnn.bench installed, run from another folder): tests/test_bench_installed.py.

needs_fastnn_bench = pytest.mark.skipif(
    importlib.util.find_spec("fastnn.bench") is None,
    reason="fastnn.bench is not importable: an editable install made before bench/ became "
           "fastnn.bench does not map it; run pip install -e . again")


def _first_fastnn_backend():
    from fastnn.bench import workloads

    ready = [b for b, reason in workloads.backend_status().items() if reason is None]
    if not ready:
        pytest.skip("no fastnn backend has train_epoch here")
    return ready[0]


@pytest.mark.slow
@needs_fastnn_bench
def test_bench_command_runs_the_comparison(tmp_path):
    out = fastnn_cli("bench", "--workloads", "tiny", "--impls", "cython,sklearn",
                     "--dtypes", "float64", "--threads", "1", "--repeats", "1",
                     "--epochs", "1", "--out", tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("tiny ")]
    assert [r[2:4] for r in rows] == [["fastnn", "cython"], ["scikit-learn", "1"]]
    assert (tmp_path / "compare.json").exists()
    assert "\r" not in out.stderr and "us/step" in out.stderr  # rows logged, no bar


@pytest.mark.slow
@needs_fastnn_bench
def test_bench_writes_into_the_current_folder_and_its_messages_are_true(tmp_path):
    """Without --out: ./fastnn-bench, as --help says, not the checkout's bench/results.
    Every option a message mentions is an option of `fastnn bench` (the quick preset is
    its default, it has no --quick)."""
    help_text = fastnn_cli("bench", "--help", timeout=60).stdout
    assert "(default ./fastnn-bench)" in help_text and "bench/results" not in help_text
    options = set(re.findall(r"--[a-z][a-z-]*", help_text))
    out = fastnn_cli("bench", "--workloads", "tiny,big", "--impls", "numpy", "--dtypes",
                     "float64", "--threads", "1", "--repeats", "1", "--epochs", "1",
                     cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fastnn-bench" / "compare.json").is_file()
    assert "wrote fastnn-bench" in out.stdout
    assert "skipped numpy on big: the quick preset skips it (--full runs it)" in out.stdout
    mentioned = set(re.findall(r"--[a-z][a-z-]*", out.stdout + out.stderr))
    assert mentioned <= options, mentioned - options


@needs_fastnn_bench
def test_bench_command_reports_bad_options():
    out = fastnn_cli("bench", "--workloads", "tiny", "--impls", "cobol", timeout=120)
    assert out.returncode == 2 and "unknown implementation(s) ['cobol']" in out.stderr
    out = fastnn_cli("bench", "--workloads", "tiny,huge", timeout=120)
    assert out.returncode == 2 and "unknown workload(s) ['huge']" in out.stderr
    out = fastnn_cli("bench", "--workloads", "cifar-cnn", timeout=120)
    assert out.returncode == 2 and "python -m fastnn.bench.cnn" in out.stderr


@needs_fastnn_bench
def test_bench_plans_its_rows():
    plan = _bench.plan(workloads="all", impls="cython,numpy,sklearn", dtypes="float64",
                       threads="1")
    assert plan.preset == "quick" and plan.thread_counts == (1,)
    if any(s["impl"] == "cython" and "workload" not in s for s in plan.skipped):
        pytest.skip("the cython backend is not built here")
    # quick leaves numpy and sklearn out of big: 4 + 3 + 3 rows, in the order they run
    assert [(r.impl, r.workload.name) for r in plan.rows] == [
        ("cython", "tiny"), ("cython", "digits"), ("cython", "mid"), ("cython", "big"),
        ("numpy", "tiny"), ("numpy", "digits"), ("numpy", "mid"),
        ("sklearn", "tiny"), ("sklearn", "digits"), ("sklearn", "mid")]
    assert {(s["impl"], s.get("workload")) for s in plan.skipped} == {("numpy", "big"),
                                                                     ("sklearn", "big")}
    full = _bench.plan(full=True, workloads=["tiny"], impls=["sklearn"], epochs=3)
    assert full.preset == "full" and full.dtypes == ("float32", "float64")
    assert [(r.dtype, r.epochs) for r in full.rows] == [("float32", 3), ("float64", 3)]
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        _bench.plan(epochs=0)


@needs_fastnn_bench
def test_bench_functions_from_the_editable_install(tmp_path, monkeypatch, capsys):
    """The smallest run through the functions `fastnn bench` calls, in a tmp folder: the
    progress callback once per row, the results as data, the files in ./fastnn-bench."""
    from fastnn.bench import compare

    monkeypatch.chdir(tmp_path)
    backend = _first_fastnn_backend()
    plan = compare.plan(preset="quick", workloads="tiny", impls=[backend], dtypes="float64",
                        threads="1", epochs=1, repeats=1)
    assert [(r.impl, r.workload.name, r.dtype, r.epochs) for r in plan.rows] == [
        (backend, "tiny", "float64", 1)]
    calls = []
    results = compare.run(plan, progress=lambda result, done, total: calls.append(
        (result["impl"], done, total)))
    assert calls == [(backend, 1, 1)]
    out, err = capsys.readouterr()  # run prints nothing (the caller decides) but numba's
    assert out == "" and all(line.startswith("fastnn: compiling the numba")  # first-use
                             for line in err.splitlines())                   # notice
    (row,) = results["rows"]
    assert row["impl"] == backend and row["threads"] == 1 and row["steps"] == 157
    assert row["us_per_step"] > 0 and row["gflops"] > 0 and row["pct_peak"] > 0
    assert results["settings"]["preset"] == "quick" and results["skipped"] == []
    assert compare.row_line(row).split()[:3] == ["fastnn", backend, "tiny"]

    json_path, _ = compare.finish(results, _bench.DEFAULT_OUT)
    assert json_path == Path("fastnn-bench") / "compare.json"
    saved = json.loads((tmp_path / json_path).read_text())
    assert saved["rows"][0]["us_per_step"] == row["us_per_step"]
    assert "wrote fastnn-bench/compare.json" in capsys.readouterr().out


def test_bench_without_fastnn_bench_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastnn.bench", None)  # as if it were not installed
    with pytest.raises(_bench.BenchUnavailable, match="pip install -e . again"):
        _bench.plan()


def test_import_fastnn_and_the_cli_parser_leave_the_bench_alone():
    code = ("import sys, fastnn, fastnn.__main__; fastnn.__main__.build_parser(); "
            "print(sorted(m for m in sys.modules if 'bench' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


@needs_fastnn_bench
def test_bench_progress_draws_a_bar_on_a_terminal_and_logs_rows_otherwise():
    row = {"label": "fastnn cython", "workload": "tiny", "dtype": "float64",
           "per_threads": {1: {"us_per_step": 8.7, "gave_up": False},
                           2: {"us_per_step": 9.9, "gave_up": True}}}
    terminal = _FakeTerminal()
    bar = Progress(2, "bench rows", file=terminal, min_interval=0)
    _bench.row_progress(bar)(row, 1, 2)
    bar.close()
    text = terminal.getvalue()
    assert "us/step" not in text and "1/2" in text and "fastnn cython tiny float64" in text

    log = io.StringIO()
    bar = Progress(2, "bench rows", file=log)
    _bench.row_progress(bar)(row, 1, 2)
    bar.close()
    assert log.getvalue() == ("  fastnn cython        tiny    float64: 1 thread 8.7 us/step, "
                              "2 threads 9.9 us/step (gave up)\n")


# --------------------------------------------------------------------------- cv-delta


@pytest.mark.slow
def test_cv_delta_prints_the_table_best_delta_and_writes_the_curve(tmp_path):
    png = tmp_path / "curve.png"
    out = fastnn_cli("cv-delta", EXAMPLE, "--target", "y", "--deltas", "0.1", "1,10",
                     "--cv", "3", "--n-jobs", "2", "--out", png, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    table = [line.split() for line in lines if line.strip() and line.split()[0] in ("0.1", "1", "10")]
    assert [r[0] for r in table] == ["0.1", "1", "10"]
    means = [float(r[2]) for r in table]
    best_line = next(line for line in lines if line.startswith("best delta:"))
    best = ["0.1", "1", "10"][int(np.argmax(means))]
    assert best_line.startswith(f"best delta: {best} ")
    assert sum("<- best" in line for line in lines) == 1
    assert "3-fold cross-validation" in out.stdout and "9 fits" in out.stdout
    assert "\r" not in out.stderr
    if has_matplotlib():
        assert png.read_bytes()[:4] == b"\x89PNG" and f"wrote {png}" in out.stdout


@pytest.mark.parametrize("content, args, message", [
    (None, ["missing.csv"], "no such file: missing.csv"),
    ("x1,x2,y\n1,2,3\n", None, "column 'target' is not in"),
    ("x1,x2,y\n1,2,3\n1,abc,4\n", None, "line 3, column 'x2': 'abc', not a number"),
    ("x1,x2,y\n1,2,3\n1,,4\n", None, "line 3, column 'x2': a missing value"),
    ("x1,x2,y\n1,2,3\n1,nan,4\n", None, "'nan' is not a finite number"),
    ("x1,x2,y\n1,2,3\n1,2\n", None, "line 3: 2 fields, the header has 3"),
    ("", None, "is empty"),
])
def test_cv_delta_explains_unusable_data(tmp_path, content, args, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    target = "target" if "column 'target'" in message else "y"
    out = fastnn_cli("cv-delta", *(args or [path]), "--target", target, timeout=60,
                     cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith("fastnn cv-delta: error: ") and message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args, message", [
    (["--deltas", "0"], "delta must be positive"),
    (["--deltas", "abc"], "delta must be a number"),
    (["--cv", "1"], "cross-validation needs at least 2 folds"),
    (["--hidden-layer-sizes", "0"], "layer sizes must be positive"),
    ([], "the following arguments are required: --target"),
])
def test_cv_delta_rejects_bad_arguments(args, message):
    base = [EXAMPLE] + ([] if "--target" in message else ["--target", "y"])
    out = fastnn_cli("cv-delta", *base, *args, timeout=60)
    assert out.returncode == 2 and message in out.stderr


def test_cv_delta_too_few_rows_and_unknown_scoring(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i}\n" for i in range(5)))
    out = fastnn_cli("cv-delta", path, "--target", "y", timeout=60)
    assert out.returncode == 1 and "too few for 5-fold" in out.stderr
    out = fastnn_cli("cv-delta", EXAMPLE, "--target", "y", "--scoring", "best", timeout=60)
    assert out.returncode == 1 and "unknown scoring 'best'" in out.stderr


@pytest.mark.slow
def test_cv_delta_runs_on_a_dask_cluster(tmp_path):
    """--scheduler: the fits run as tasks of the given Dask scheduler (joblib's dask backend)."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", memory_limit="1GiB") as cluster:
        before = len(cluster.scheduler.transition_log)
        out = fastnn_cli("cv-delta", EXAMPLE, "--target", "y", "--deltas", "0.1", "1",
                         "--cv", "2", "--scheduler", cluster.scheduler_address, "--out", "",
                         timeout=300)
        assert out.returncode == 0, out.stderr
        finished = {t.key for t in list(cluster.scheduler.transition_log)[before:]
                    if str(t.key).startswith("batch_of__search_chunk")
                    and t.finish == "memory"}
    assert f"running on the Dask cluster at {cluster.scheduler_address} (2 workers)" in out.stdout
    assert len(finished) == 2  # one batched call per worker: 1 delta x 2 folds each
    assert "best delta:" in out.stdout


@pytest.mark.slow
def test_cv_delta_chunks_on_a_dask_cluster_equal_the_local_batch():
    """The chunks' batched calls on a cluster's workers give the local result exactly."""
    distributed = pytest.importorskip("dask.distributed")
    import joblib

    X, y, _ = _cvdelta.read_csv(EXAMPLE, "y")
    kw = dict(cv=2, max_iter=30, hidden_layer_sizes=(8,))
    local = _cvdelta.search(X, y, [0.1, 1.0, 10.0], **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", memory_limit="1GiB") as cluster:
        with distributed.Client(cluster), joblib.parallel_config(backend="dask"):
            remote = _cvdelta.search(X, y, [0.1, 1.0, 10.0], chunks=2, **kw)
    for key in ("split0_test_score", "split1_test_score", "rank_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])


@pytest.mark.slow
def test_cv_delta_bad_scheduler_address_is_an_error():
    pytest.importorskip("dask.distributed")
    out = fastnn_cli("cv-delta", EXAMPLE, "--target", "y", "--deltas", "1", "--cv", "2",
                     "--scheduler", "tcp://127.0.0.1:9", "--out", "", timeout=120,
                     env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert out.returncode == 1 and "cannot connect to the Dask scheduler" in out.stderr


def test_search_results_have_scikit_learn_layout_and_equal_grid_search():
    """The batched search equals GridSearchCV over make_model() fold by fold: the same
    standardization inside each fold, the same weights, the same scores."""
    from sklearn.model_selection import GridSearchCV, KFold

    X, y, _ = _cvdelta.read_csv(EXAMPLE, "y")
    X, y = X[:120], y[:120]
    result = _cvdelta.search(X, y, [0.3, 3.0], cv=2, max_iter=50)
    res = result.cv_results_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = GridSearchCV(_cvdelta.make_model(max_iter=50), {_cvdelta.PARAM: [0.3, 3.0]},
                            cv=KFold(2, shuffle=True, random_state=0),
                            scoring="neg_median_absolute_error").fit(X, y)
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_allclose(res[key], grid.cv_results_[key], rtol=1e-12, atol=1e-12)
    assert res["params"] == [{"delta": 0.3}, {"delta": 3.0}]
    np.testing.assert_allclose(res["mean_test_score"],
                               (res["split0_test_score"] + res["split1_test_score"]) / 2)
    assert sorted(res["rank_test_score"]) == [1, 2]
    assert result.best_score_ == res["mean_test_score"].max()
    assert result.best_params_ == res["params"][result.best_index_]


def test_shipped_example_csv_is_the_documented_generator():
    names, data = _cvdelta.make_example_data()
    X, y, features = _cvdelta.read_csv(EXAMPLE, "y")
    assert features == names[:-1] and X.shape == (400, 4)
    np.testing.assert_allclose(np.column_stack([X, y]), data, rtol=1e-5, atol=1e-5)
    outliers = np.abs(y - np.median(y)) > 9
    assert 0.05 < outliers.mean() < 0.15


# --------------------------------------------------------------------------- progress


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_only():
    quiet = io.StringIO()
    with Progress(4, "work", file=quiet) as bar:
        for _ in range(4):
            bar.update()
    assert quiet.getvalue() == "" and bar.done == 4

    terminal = _FakeTerminal()
    with Progress(4, "work", file=terminal, width=8, min_interval=0) as bar:
        for i in range(4):
            bar.update(note=f"step {i}")
    drawn = terminal.getvalue()
    assert drawn.endswith("\n") and drawn.count("\r") == 5
    assert "work |##------| 1/4" in drawn and "work |########| 4/4" in drawn


def test_progress_bar_throttles_redraws():
    terminal = _FakeTerminal()
    with Progress(1000, file=terminal, min_interval=60) as bar:
        for _ in range(1000):
            bar.update()
    # the first update, the last one and the close
    assert terminal.getvalue().count("\r") == 3
