"""Results do not depend on the number of threads: fits in fresh processes with 1 and 2
threads (OpenMP for the Cython kernels' column blocks and conv samples, BLAS for every backend) give the
same bits: weights, loss curves, predictions.

With FASTNN_DIGEST_FILE set, the first run records each backend's digest there and a
later run (CI's, on the serial build without OpenMP) checks it gets the same bits."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import BACKENDS

pytestmark = pytest.mark.slow  # two fresh processes per backend

FIT = r"""
import json, sys, warnings
import numpy as np
from fastnn import MLPClassifier, MLPRegressor, NeuralNetClassifier
from fastnn._demo import digits_cnn_module
from fastnn.kernels.cython import train

warnings.simplefilter("ignore")
backend = sys.argv[1]
rng = np.random.RandomState(0)
X = rng.normal(size=(1200, 60))
y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 1)
out = {"openmp_threads": train._openmp_threads()}
# wide enough for parallel GEMMs of several column blocks in every hidden layer and a
# parallel optimizer update (kernels/cython/train.pyx: PARALLEL_FLOPS)
clf = MLPClassifier(hidden_layer_sizes=(512, 256), max_iter=3, batch_size=300,
                    random_state=0, backend=backend).fit(X, y)
reg = MLPRegressor(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=20, random_state=0,
                   backend=backend).fit(X, X[:, 0] ** 2)
# dropout masks drawn inside each column block of the parallel GEMMs
drop = MLPRegressor(hidden_layer_sizes=(512, 256), dropout=(0.3, 0.2), max_iter=2,
                    batch_size=300, random_state=0, backend=backend).fit(X, X[:, 0] ** 2)
# conv layers: samples on the threads, dW/db summed in chunks fixed by the batch size
images = rng.uniform(size=(600, 1, 8, 8))
cnn = NeuralNetClassifier(digits_cnn_module(), max_iter=2, batch_size=128, random_state=0,
                          backend=backend).fit(images, rng.randint(0, 10, 600))
out["cnn"] = {"params": [a.tobytes().hex() for a in cnn.coefs_ + cnn.intercepts_],
              "loss_curve": cnn.loss_curve_, "loss": cnn.loss_,
              "predict": cnn.predict_proba(images).tobytes().hex()}
for name, est in (("clf", clf), ("reg", reg), ("drop", drop)):
    out[name] = {
        "params": [a.tobytes().hex() for a in est.coefs_ + est.intercepts_],
        "loss_curve": getattr(est, "loss_curve_", None), "loss": est.loss_,
        "predict": (est.predict_proba(X) if name == "clf" else est.predict(X)).tobytes().hex(),
    }
print(json.dumps(out))
"""


def fit_with_threads(backend, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", FIT, backend], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def digest(result):
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()[:12]


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_and_two_threads_give_the_same_bits(backend):
    one, two = fit_with_threads(backend, 1), fit_with_threads(backend, 2)
    assert one.pop("openmp_threads") in (0, 1)
    assert two.pop("openmp_threads") in (0, 2)  # 0: a build without OpenMP
    for name in ("clf", "reg", "drop", "cnn"):
        assert one[name]["loss_curve"] == two[name]["loss_curve"], name
        assert one[name]["loss"] == two[name]["loss"], name
        assert one[name]["params"] == two[name]["params"], name
        assert one[name]["predict"] == two[name]["predict"], name
    assert digest(one) == digest(two)
    record = os.environ.get("FASTNN_DIGEST_FILE")
    if record:
        seen = json.loads(open(record).read()) if os.path.exists(record) else {}
        if backend in seen:
            assert seen[backend] == digest(one), "not the same bits as the earlier build's"
        else:
            seen[backend] = digest(one)
            with open(record, "w") as f:
                json.dump(seen, f)
    weights = np.frombuffer(bytes.fromhex(one["clf"]["params"][0]))
    assert weights.size == 60 * 512 and np.isfinite(weights).all()
