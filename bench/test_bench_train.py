"""pytest-benchmark suite: one train_epoch call per round, backend x dtype x workload.

    python -m pytest bench/ --benchmark-only                      # tiny and digits
    python -m pytest bench/ --benchmark-only --workloads all      # + mid and big
    FASTNN_BENCH_WORKLOADS=mid,big python -m pytest bench/ --benchmark-only
    python -m pytest bench/ --benchmark-only --benchmark-json fastnn-bench/pytest.json

``test_train_epoch_dropout`` times the same epochs with dropout 0 and 0.5 on every hidden
layer, side by side in one group: the cost of drawing and applying the masks.

Each round is exactly one ``train_epoch`` call over the whole workload (the same
permutation every round, drawn before timing); one untimed call before timing compiles
Numba for that dtype and touches every buffer. BLAS threads are pinned (--blas-threads,
default 1). Rounds follow pytest-benchmark's own options (--benchmark-min-rounds,
--benchmark-max-time, ...). Backends without train_epoch here are skipped with the
reason, and picked up once they have it. extra_info records steps per epoch and GEMM
GFLOP per epoch (see fastnn.bench.workloads.Workload.gemm_flops_per_epoch).

Final figures: on a quiet machine; where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set,
unset both for that command alone (`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m
pytest bench/ --benchmark-only`) and check the kernel OpenBLAS runs (threadpoolctl).
"""

import numpy as np
import pytest

from .workloads import BACKENDS, DTYPES, FastnnTrainer, backend_status, load


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_epoch(benchmark, workload, dtype, backend, blas_threads):
    reason = backend_status()[backend]
    if reason:
        pytest.skip(f"{backend}: {reason}")
    trainer = FastnnTrainer(backend, workload, load(workload.name, dtype))
    perm = trainer.permutation()
    trainer.epoch(perm)  # warm-up: compilation and first touch excluded from the timing

    benchmark.group = f"{workload.name} {dtype}"
    benchmark.extra_info.update(
        workload=workload.name, dtype=dtype, backend=backend, blas_threads=blas_threads,
        steps_per_epoch=workload.n_batches, gemm_gflop_per_epoch=workload.gemm_flops_per_epoch / 1e9)
    loss = benchmark(trainer.epoch, perm)
    assert np.isfinite(loss)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_train_epoch_dropout(benchmark, workload, dtype, backend, dropout, blas_threads):
    reason = backend_status()[backend]
    if reason:
        pytest.skip(f"{backend}: {reason}")
    trainer = FastnnTrainer(backend, workload, load(workload.name, dtype), dropout=dropout)
    perm = trainer.permutation()
    trainer.epoch(perm)

    benchmark.group = f"dropout {workload.name} {dtype} {backend}"
    benchmark.extra_info.update(workload=workload.name, dtype=dtype, backend=backend,
                                dropout=dropout, steps_per_epoch=workload.n_batches)
    loss = benchmark(trainer.epoch, perm)
    assert np.isfinite(loss)
