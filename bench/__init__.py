"""fastnn's benchmarks: the pytest-benchmark suite and the side-by-side scripts.

- ``python -m pytest bench/ --benchmark-only``: one ``train_epoch`` call per round, per
  backend x dtype x workload (``--workloads tiny,digits`` by default; ``all`` for every one).
- ``python -m bench.compare [--quick | --full] [--out DIR]``: fastnn backends vs
  scikit-learn and PyTorch, microseconds per mini-batch step, GFLOP/s, % of GEMM peak.
- ``python -m bench.cold_start``: process start to the end of the first epoch.
- ``python -m bench.memory``: peak RSS of a fit on the big workload.

Shared definitions (workloads, data, drivers) live in ``bench.workloads``; the machine
record and table printing in ``bench.report``. See ``bench/README.md``.
"""
