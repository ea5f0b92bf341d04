"""Options of the pytest-benchmark suite (loaded when bench/ is on the command line).

``--workloads`` (default: $FASTNN_BENCH_WORKLOADS, else "tiny,digits"; "all" for every
workload) chooses the workloads; ``--blas-threads`` (default 1) pins BLAS threads with
threadpoolctl for the whole session. `python -m pytest` at the repository root does not
collect bench/ (pyproject's testpaths = ["tests"]).
"""

import os

import pytest

from .workloads import DEFAULT_WORKLOADS, limit_threads, select_workloads


def pytest_addoption(parser):
    group = parser.getgroup("fastnn-bench", "fastnn benchmark suite")
    group.addoption("--workloads", default=os.environ.get("FASTNN_BENCH_WORKLOADS", DEFAULT_WORKLOADS),
                    help="comma-separated workloads (tiny,digits,mid,big,deep_tanh,wide) or 'all'; default "
                         "$FASTNN_BENCH_WORKLOADS or tiny,digits")
    group.addoption("--blas-threads", type=int, default=1,
                    help="BLAS threads during the benchmarks (threadpoolctl); default 1")


def pytest_generate_tests(metafunc):
    if "workload" in metafunc.fixturenames:
        workloads = select_workloads(metafunc.config.getoption("workloads"))
        metafunc.parametrize("workload", workloads, ids=[w.name for w in workloads])


@pytest.fixture(scope="session", autouse=True)
def blas_threads(request):
    n = request.config.getoption("blas_threads")
    with limit_threads(n):
        yield n
