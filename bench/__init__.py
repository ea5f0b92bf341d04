"""fastnn's benchmarks, installed as ``fastnn.bench``: the side-by-side scripts and the
pytest-benchmark suite. Nothing here is imported by ``import fastnn``.

- ``fastnn bench`` or ``python -m fastnn.bench.compare [--quick | --full] [--out DIR]``:
  fastnn backends vs scikit-learn and PyTorch, microseconds per mini-batch step, GFLOP/s,
  % of GEMM peak (functions: ``compare.plan``, ``compare.run``, ``compare.finish``).
- ``python -m fastnn.bench.cold_start``: process start to the end of the first epoch.
- ``python -m fastnn.bench.memory``: peak RSS of a fit on the big workload.
- ``python -m fastnn.bench.estimator_speed``, ``python -m fastnn.bench.threads``: the
  estimator's cost over the engine; two fits in two threads.
- ``python -m pytest bench/ --benchmark-only`` (from a source checkout): one
  ``train_epoch`` call per round, per backend x dtype x workload.

Shared definitions (workloads, data, drivers) live in ``workloads``; the machine record
and table printing in ``report``. Modules import each other relatively, so the folder
works as ``fastnn.bench`` (installed) and as ``bench`` (pytest from the checkout). Results
go into ``./fastnn-bench`` of the current folder unless ``--out`` says otherwise. See
``bench/README.md``.
"""
