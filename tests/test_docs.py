"""The docstring examples of the public modules run as tests, and every public name has a
numpydoc docstring with an example.

Collecting this file imports fastnn's public modules (not bench/, not numba: backends
are imported when an example first uses one).
"""

import doctest
import importlib
import inspect
import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")  # plot examples draw into files, never windows

MODULES = ("fastnn", "fastnn.functional", "fastnn.optim", "fastnn._estimators",
           "fastnn.plotting", "fastnn._progress", "fastnn.onnx", "fastnn.nn",
           "fastnn._neuralnet", "fastnn._search")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples():
    finder = doctest.DocTestFinder()
    for name in MODULES:
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                yield test


DOCTESTS = sorted(_examples(), key=lambda t: t.name)


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test):
    if test.name.startswith("fastnn.plotting"):
        pytest.importorskip("matplotlib", reason="matplotlib not installed (the plot extra)")
    if test.name.startswith("fastnn.onnx"):
        pytest.importorskip("skl2onnx", reason="skl2onnx not installed (the onnx extra)")
        pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
    output = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    try:
        result = runner.run(test, out=output.append, clear_globs=True)
    finally:
        if test.name.startswith("fastnn.plotting"):
            import matplotlib.pyplot as plt

            plt.close("all")
    assert result.failed == 0, "".join(output)


def _public_names():
    import fastnn
    from fastnn import functional, optim

    names = [(f"fastnn.{n}", getattr(fastnn, n)) for n in fastnn.__all__]
    names += [(f"fastnn.functional.{n}", getattr(functional, n)) for n in functional.__all__]
    names += [(f"fastnn.optim.{n}", getattr(optim, n)) for n in optim.__all__]
    names.append(("fastnn.optim.SGD.step", optim.SGD.step))
    names.append(("fastnn.nn.Sequential", fastnn.nn.Sequential))
    for cls in (fastnn.MLPClassifier, fastnn.MLPRegressor):
        for method in ("fit", "partial_fit", "predict", "predict_proba", "predict_log_proba"):
            if method in vars(cls):
                names.append((f"fastnn.{cls.__name__}.{method}", vars(cls)[method]))
    return names


PUBLIC = _public_names()


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_name_has_a_numpydoc_docstring_with_an_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "\nExamples\n--------\n" in doc and ">>> " in doc, f"{name}: no Examples section"
    assert "\nParameters\n----------\n" in doc, f"{name}: no Parameters section"
