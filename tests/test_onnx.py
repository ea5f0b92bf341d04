"""ONNX export (fastnn.onnx.register + skl2onnx.to_onnx): onnxruntime must predict what
fastnn predicts, labels identical and probabilities / regression outputs within 1e-5, for
every target type, loss, activation, dtype and in a pipeline.

skl2onnx and onnxruntime are optional (fastnn's ``onnx`` extra): without them the round
trips skip with the reason; the import-lightness and missing-dependency tests still run.
"""

import doctest
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastnn.onnx
from fastnn import MLPClassifier, MLPRegressor

TOL = 1e-5  # float32 graph against fastnn's own predictions


@pytest.fixture(scope="module")
def to_onnx():
    """skl2onnx.to_onnx with fastnn registered (skips without the onnx extra)."""
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx not installed (the onnx extra)")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
    fastnn.onnx.register()
    return skl2onnx.to_onnx


def run_onnx(onx, X):
    """The graph's outputs on X, run by onnxruntime."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs are enough here
        return model.fit(X, y)


rng = np.random.RandomState(0)
X64 = rng.randn(120, 5)
X32 = X64.astype(np.float32)
Y_MULTILABEL = (rng.rand(120, 3) > 0.5).astype(int)
SMALL = dict(max_iter=30, random_state=0)

# name -> (estimator, X to fit on, y); X's dtype is the model's training dtype
CLASSIFIERS = {
    "binary": (MLPClassifier((8,), **SMALL), X32, (X32[:, 0] > 0).astype(int)),
    "multiclass": (MLPClassifier((8,), **SMALL), X32, np.digitize(X32[:, 0], [-0.5, 0.5])),
    "multilabel": (MLPClassifier((8,), **SMALL), X32, Y_MULTILABEL),
    "multilabel, 2 labels": (MLPClassifier((8,), **SMALL), X32, Y_MULTILABEL[:, :2]),
    "string labels": (MLPClassifier((8,), **SMALL), X32,
                      np.array(["cat", "dog", "eel"])[np.digitize(X32[:, 1], [-0.4, 0.4])]),
    "bool labels": (MLPClassifier((8,), **SMALL), X32, X32[:, 2] > 0),
    "float64-trained": (MLPClassifier((8,), **SMALL), X64, np.digitize(X64[:, 0], [-0.5, 0.5])),
    "leaky_relu": (MLPClassifier((8, 6), activation="leaky_relu", negative_slope=0.2, **SMALL),
                   X32, np.digitize(X32[:, 0], [-0.5, 0.5])),
    "activation per layer": (
        MLPClassifier((8, 6, 5, 4), activation=["leaky_relu", "tanh", "logistic", "identity"],
                      negative_slope=0.05, **SMALL), X32, np.digitize(X32[:, 0], [-0.5, 0.5])),
    "no hidden layer": (MLPClassifier((), **SMALL), X32, np.digitize(X32[:, 0], [-0.5, 0.5])),
}
Y_COUNTS = np.abs(X64[:, :1] + 0.5 * X64[:, 1:2])  # non-negative, for poisson too
REGRESSORS = {
    **{loss: (MLPRegressor(loss=loss, hidden_layer_sizes=(8,), **SMALL), X32, Y_COUNTS.ravel())
       for loss in ("squared_error", "absolute_error", "huber", "quantile", "poisson")},
    "poisson, 2 outputs, float64-trained": (
        MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), **SMALL), X64,
        np.hstack([Y_COUNTS, 2 * Y_COUNTS])),
    "leaky_relu + tanh per layer": (
        MLPRegressor(hidden_layer_sizes=(8, 6), activation=["leaky_relu", "tanh"], **SMALL),
        X32, Y_COUNTS.ravel()),
}


def classifier_round_trip(to_onnx, name, graph_dtype=np.float32):
    """(labels equal, max |proba difference|) between onnxruntime and fastnn."""
    est, X, y = CLASSIFIERS[name]
    model = fit(est, X, y)
    Xg = X.astype(graph_dtype)
    label, proba = run_onnx(to_onnx(model, Xg[:1], options={"zipmap": False}), Xg)
    expected = model.predict(X)
    assert label.shape == expected.shape and label.dtype.kind == ("O" if expected.dtype.kind
                                                                  in "OUS" else "i")
    assert proba.shape == model.predict_proba(X).shape
    return np.array_equal(label, expected), float(np.abs(proba - model.predict_proba(X)).max())


def regressor_round_trip(to_onnx, name, graph_dtype=np.float32):
    est, X, y = REGRESSORS[name]
    model = fit(est, X, y)
    Xg = X.astype(graph_dtype)
    (pred,) = run_onnx(to_onnx(model, Xg[:1]), Xg)
    expected = model.predict(X).reshape(len(X), -1)  # skl2onnx's regressor output is 2-D
    assert pred.shape == expected.shape
    return float(np.abs(pred - expected).max())


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_round_trip(to_onnx, name):
    labels_equal, diff = classifier_round_trip(to_onnx, name)
    assert labels_equal
    assert diff <= TOL


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressor_round_trip(to_onnx, name):
    assert regressor_round_trip(to_onnx, name) <= TOL


def test_a_double_input_gives_a_double_graph(to_onnx):
    labels_equal, diff = classifier_round_trip(to_onnx, "float64-trained", np.float64)
    assert labels_equal and diff <= 1e-12
    assert regressor_round_trip(to_onnx, "poisson, 2 outputs, float64-trained",
                                np.float64) <= 1e-12


def test_poisson_output_is_exp_of_the_raw_output(to_onnx):
    est, X, y = REGRESSORS["poisson"]
    onx = to_onnx(fit(est, X, y), X[:1])
    assert "Exp" in {node.op_type for node in onx.graph.node}


def test_pipelines_with_a_scaler(to_onnx):
    y = np.array(["cat", "dog", "eel"])[np.digitize(X64[:, 1], [-0.4, 0.4])]
    clf = MLPClassifier((8,), activation="leaky_relu", **SMALL)
    pipe = fit(make_pipeline(StandardScaler(), clf), 3 * X64 + 1, y)
    label, proba = run_onnx(to_onnx(pipe, X32[:1], options={id(clf): {"zipmap": False}}),
                            3 * X32 + 1)
    assert np.array_equal(label, pipe.predict(3 * X64 + 1))
    assert np.abs(proba - pipe.predict_proba(3 * X64 + 1)).max() <= TOL

    reg = fit(make_pipeline(StandardScaler(), MLPRegressor(loss="poisson", **SMALL)),
              3 * X64 + 1, Y_COUNTS.ravel())
    (pred,) = run_onnx(to_onnx(reg, X32[:1]), 3 * X32 + 1)
    assert np.abs(pred.ravel() - reg.predict(3 * X64 + 1)).max() <= TOL


def test_classifier_options_behave_as_for_scikit_learn(to_onnx):
    est, X, y = CLASSIFIERS["string labels"]
    model = fit(est, X, y)
    label, proba_maps = run_onnx(to_onnx(model, X[:1]), X)  # zipmap: one dict per row
    assert np.array_equal(label, model.predict(X))
    proba = np.array([[row[c] for c in model.classes_] for row in proba_maps])
    assert np.abs(proba - model.predict_proba(X)).max() <= TOL

    index, _ = run_onnx(to_onnx(model, X[:1], options={"zipmap": False, "nocl": True}), X)
    assert np.array_equal(model.classes_[index], model.predict(X))

    *_, class_labels = run_onnx(
        to_onnx(model, X[:1], options={"zipmap": False, "output_class_labels": True}), X)
    assert class_labels.tolist() == model.classes_.tolist()

    outputs = run_onnx(to_onnx(model, X[:1], options={"zipmap": "columns"}), X)
    assert np.abs(np.column_stack(outputs[1:]) - model.predict_proba(X)).max() <= TOL


def test_what_cannot_convert_raises_naming_it(to_onnx):
    est, X, y = CLASSIFIERS["multiclass"]
    model = fit(est, X, y)
    from fastnn.kernels import layout

    model._table = model._table.copy()
    model._table[0, layout.ACT] = 9  # no such activation: nothing to convert it to
    with pytest.raises(ValueError, match="hidden layer 0 has activation code 9"):
        to_onnx(model, X[:1])

    single = fit(MLPClassifier((4,), **SMALL), X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="single class"):
        to_onnx(single, X[:1])


UNREGISTERED = """
import numpy as np, skl2onnx, fastnn.onnx
from fastnn import MLPRegressor
X = np.arange(8.0, dtype=np.float32).reshape(4, 2)
reg = MLPRegressor(hidden_layer_sizes=(2,), max_iter=1).fit(X, X[:, 0])
try:
    skl2onnx.to_onnx(reg, X[:1])
except skl2onnx.common.exceptions.MissingShapeCalculator:
    pass
else:
    raise AssertionError("converted before register()")
fastnn.onnx.register()
fastnn.onnx.register()  # again: idempotent
skl2onnx.to_onnx(reg, X[:1])
"""


@pytest.mark.slow
def test_register_is_what_makes_skl2onnx_convert_fastnn(to_onnx):
    # a fresh interpreter: this one has registered already
    subprocess.run([sys.executable, "-W", "ignore", "-c", UNREGISTERED], check=True,
                   timeout=120)


def test_register_is_documented_and_its_examples_run(to_onnx):
    doc = fastnn.onnx.register.__doc__
    assert "\n    Examples\n    --------\n" in doc and ">>> " in doc
    assert "fastnn[onnx]" in fastnn.onnx.__doc__
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(fastnn.onnx, "fastnn.onnx") if t.examples]
    assert tests
    for test in tests:
        output = []
        assert runner.run(test, out=output.append, clear_globs=True).failed == 0, "".join(output)


def test_missing_skl2onnx_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import skl2onnx -> ImportError
    with pytest.raises(ImportError, match=r'pip install "fastnn\[onnx\]"'):
        fastnn.onnx.register()


def test_import_fastnn_stays_light():
    code = ("import sys, fastnn; assert 'fastnn.onnx' not in sys.modules; import fastnn.onnx; "
            "assert 'skl2onnx' not in sys.modules and 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
