"""ONNX export of fastnn's MLPClassifier and MLPRegressor through skl2onnx.

skl2onnx finds a converter by the model's exact class, so a fastnn model (or a pipeline
holding one) raises ``MissingShapeCalculator`` until :func:`register` has told skl2onnx
about fastnn's classes. One call, then every skl2onnx entry point works as for
scikit-learn's own MLP: ``skl2onnx.to_onnx``, ``convert_sklearn``, pipelines, column
transformers, searches and the classifier options (``zipmap``, ``nocl``,
``output_class_labels``).

Why ``register()`` rather than a ``fastnn.to_onnx(model, X)`` wrapper: skl2onnx walks
the whole pipeline and looks each step up by class, so registration is what makes
pipelines work; a wrapper would only re-expose skl2onnx's signature.

The converter is fastnn's own (built from MatMul, Add, Relu, Tanh, Sigmoid, LeakyRelu,
Softmax, Exp, Greater, ArgMax, Gather), so every fastnn feature converts: leaky ReLU
(``negative_slope``), one activation per hidden layer, and ``loss="poisson"``, whose
output ``exp(raw)`` becomes an Exp node (skl2onnx's converter for scikit-learn's
MLPRegressor has no "exp" output and raises ``KeyError: 'exp'``).

Conventions (skl2onnx's, for scikit-learn's MLP):

- The graph computes in the dtype of its declared input, as skl2onnx's MLP converter
  does: float32 input (the usual ``X[:1].astype(np.float32)``) gives float32 weights and
  arithmetic, so a model trained on float64 is rounded to float32 (predictions agree to
  about 1e-6); a float64 sample (``DoubleTensorType``) gives a double graph that
  reproduces a float64 model to about 1e-15. Integer or boolean input is cast to float32.
- Classifier: outputs ``label`` and ``probabilities`` (a list of dicts unless
  ``options={"zipmap": False}``). Labels are int64 for integer, float (integral) or bool
  classes and strings for string classes; a multilabel model outputs an int64
  (n_samples, n_labels) indicator matrix and (n_samples, n_labels) probabilities.
  Labels come from the raw outputs (``raw > 0``, ``argmax(raw)``) exactly as fastnn's
  ``predict`` computes them.
- Regressor: one output ``variable`` of shape (n_samples, n_outputs).

skl2onnx (and onnxruntime to run the graphs) are optional: ``pip install "fastnn[onnx]"``.
They are imported by :func:`register`, never by ``import fastnn``.
"""

import numpy as np

from .kernels import IDENTITY, LEAKY_RELU, LOGISTIC, RELU, SOFTMAX, TANH

__all__ = ["register"]

_MISSING = ("fastnn's ONNX export needs skl2onnx (and onnxruntime to run the graphs), "
            "which are not installed: pip install \"fastnn[onnx]\" "
            "(or pip install skl2onnx onnxruntime)")

_CLASSIFIER_ALIAS = "FastnnMLPClassifier"
_REGRESSOR_ALIAS = "FastnnMLPRegressor"
# the options skl2onnx declares for scikit-learn's MLPClassifier, handled by its parser
_CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"],
                       "output_class_labels": [False, True],
                       "nocl": [True, False]}


def _skl2onnx():
    """skl2onnx, or an ImportError that says how to install it."""
    try:
        import skl2onnx
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return skl2onnx


def register():
    """Teach skl2onnx to convert fastnn's MLPClassifier and MLPRegressor.

    After this call ``skl2onnx.to_onnx`` (and ``convert_sklearn``) convert fastnn models
    and any pipeline holding them, with the outputs and options of scikit-learn's MLP.
    Every fastnn activation converts (leaky ReLU, one activation per hidden layer), and
    ``loss="poisson"`` gets its ``exp`` output. Calling it again does nothing new.

    Raises
    ------
    ImportError
        If skl2onnx is not installed; the message says ``pip install "fastnn[onnx]"``.

    See Also
    --------
    skl2onnx.to_onnx : the conversion itself; pass a float32 sample for a float32 graph,
        a float64 one for a double graph.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from skl2onnx import to_onnx
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import fastnn.onnx
    >>> from fastnn import MLPClassifier
    >>> fastnn.onnx.register()
    >>> X = np.random.RandomState(0).randn(60, 3).astype(np.float32)
    >>> y = np.where(X[:, 2] > 0, "yes", "no")
    >>> clf = MLPClassifier((8,), activation="leaky_relu", solver="lbfgs", random_state=0)
    >>> model = make_pipeline(StandardScaler(), clf).fit(X, y)
    >>> onx = to_onnx(model, X[:1], options={id(clf): {"zipmap": False}})
    >>> sess = ort.InferenceSession(onx.SerializeToString(),
    ...                             providers=["CPUExecutionProvider"])
    >>> label, proba = sess.run(None, {"X": X})
    >>> label[:3], bool((label == model.predict(X)).all())
    (array(['yes', 'no', 'no'], dtype=object), True)
    >>> bool(np.abs(proba - model.predict_proba(X)).max() <= 1e-5)
    True
    """
    skl2onnx = _skl2onnx()
    from ._estimators import MLPClassifier, MLPRegressor

    skl2onnx.update_registered_converter(
        MLPClassifier, _CLASSIFIER_ALIAS, _classifier_shapes, _convert_classifier,
        options=_CLASSIFIER_OPTIONS)  # the zipmap option also installs its parser
    skl2onnx.update_registered_converter(
        MLPRegressor, _REGRESSOR_ALIAS, _regressor_shapes, _convert_regressor)


# ---------------------------------------------------------------------- shape calculators

def _classifier_shapes(operator):
    """skl2onnx's classifier shapes (label type from ``classes_``, option nocl); a
    multilabel model's labels are an (N, n_labels) matrix."""
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    est = operator.raw_operator
    _check_classes(est)
    calculate_linear_classifier_output_shapes(operator)
    if _multilabel(est):
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type.shape = [n, len(est.classes_)]


def _regressor_shapes(operator):
    """One output (N, n_outputs), float32 unless the input is double."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    tensor_type = DoubleTensorType if double else FloatTensorType
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type([n, operator.raw_operator.n_outputs_])


# ---------------------------------------------------------------------- converters

def _convert_classifier(scope, operator, container):
    """label + probabilities, computed as fastnn's predict and predict_proba do."""
    from skl2onnx.common._apply_operation import (
        apply_cast, apply_concat, apply_reshape, apply_sub)
    from skl2onnx.common.utils_classifier import get_label_classes
    from skl2onnx.proto import onnx_proto

    est = operator.raw_operator
    proto_dtype, np_dtype = _float_type(operator)
    raw = _raw_outputs(scope, operator, container, est, proto_dtype, np_dtype)
    label_out, proba_out = operator.outputs[0].full_name, operator.outputs[1].full_name
    softmax = est.out_activation_ == "softmax"

    # probabilities: softmax, sigmoid per label, or (1 - p, p) for a binary model
    if softmax:
        container.add_node("Softmax", raw, proba_out, axis=1,
                           name=scope.get_unique_operator_name("Softmax"))
    elif _multilabel(est):
        container.add_node("Sigmoid", raw, proba_out,
                           name=scope.get_unique_operator_name("Sigmoid"))
    else:
        p, q = _name(scope, "proba_positive"), _name(scope, "proba_negative")
        one = _name(scope, "one")
        container.add_node("Sigmoid", raw, p, name=scope.get_unique_operator_name("Sigmoid"))
        container.add_initializer(one, proto_dtype, [], [1])
        apply_sub(scope, [one, p], q, container, broadcast=1)
        apply_concat(scope, [q, p], proba_out, container, axis=1)

    # labels from the raw outputs (softmax keeps the argmax, sigmoid(z) > 1/2 iff z > 0)
    if _multilabel(est):
        positive = _greater_than_zero(scope, container, raw, proto_dtype)
        apply_cast(scope, positive, label_out, container, to=onnx_proto.TensorProto.INT64)
        return
    if softmax:
        index = _name(scope, "argmax")
        container.add_node("ArgMax", raw, index, axis=1, keepdims=0,
                           name=scope.get_unique_operator_name("ArgMax"))
    else:
        positive = _greater_than_zero(scope, container, raw, proto_dtype)
        index_2d, index = _name(scope, "index_2d"), _name(scope, "index")
        apply_cast(scope, positive, index_2d, container, to=onnx_proto.TensorProto.INT64)
        apply_reshape(scope, index_2d, index, container, desired_shape=(-1,))
    classes = get_label_classes(scope, est)  # 0..n-1 with option nocl
    if classes.dtype.kind in "OSU":
        class_type, values = onnx_proto.TensorProto.STRING, [str(c).encode() for c in classes]
    else:
        class_type, values = onnx_proto.TensorProto.INT64, classes.astype(np.int64)
    classes_name = _name(scope, "classes")
    container.add_initializer(classes_name, class_type, [len(classes)], values)
    container.add_node("Gather", [classes_name, index], label_out, axis=0,
                       name=scope.get_unique_operator_name("Gather"))


def _convert_regressor(scope, operator, container):
    """raw outputs, through Exp for loss="poisson" (fastnn predicts exp(raw))."""
    est = operator.raw_operator
    proto_dtype, np_dtype = _float_type(operator)
    raw = _raw_outputs(scope, operator, container, est, proto_dtype, np_dtype)
    op = {"identity": "Identity", "exp": "Exp"}.get(est.out_activation_)
    if op is None:
        raise ValueError(f"fastnn.onnx: MLPRegressor with out_activation_="
                         f"{est.out_activation_!r} cannot be converted (identity or exp)")
    container.add_node(op, raw, operator.outputs[0].full_name,
                       name=scope.get_unique_operator_name(op))


# ---------------------------------------------------------------------- the network

def _raw_outputs(scope, operator, container, est, proto_dtype, np_dtype):
    """The network's raw outputs (before the output activation): the name of an (N,
    n_outputs) tensor. Hidden layer l applies the activation of row l of ``est._table``."""
    from skl2onnx.common._apply_operation import apply_add, apply_cast

    acts, slopes = _hidden_activations(est)
    a = operator.inputs[0].full_name
    if _proto_type(operator.inputs[0].type) != proto_dtype:
        cast = _name(scope, "cast_input")
        apply_cast(scope, a, cast, container, to=proto_dtype)
        a = cast
    last = len(est.coefs_) - 1
    for layer, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        coef, intercept = _name(scope, "coefficient"), _name(scope, "intercepts")
        container.add_initializer(coef, proto_dtype, list(W.shape),
                                  np.asarray(W, dtype=np_dtype).ravel())
        container.add_initializer(intercept, proto_dtype, [1, len(b)],
                                  np.asarray(b, dtype=np_dtype).ravel())
        product, z = _name(scope, "mul_result"), _name(scope, "add_result")
        container.add_node("MatMul", [a, coef], product,
                           name=scope.get_unique_operator_name("MatMul"))
        apply_add(scope, [product, intercept], z, container, broadcast=1)
        a = z if layer == last else _activation(scope, container, z, acts[layer],
                                                slopes[layer], layer)
    return a


def _hidden_activations(est):
    """The fitted hidden layers' activation codes and leaky ReLU slopes (what predict
    uses: the estimator's layer table)."""
    from .kernels import layout

    table = est._table
    return ([int(a) for a in layout.hidden_acts(table)],
            [layout.act_param(table, l) for l in range(len(table) - 1)])


_ONNX_ACTIVATIONS = {LOGISTIC: "Sigmoid", TANH: "Tanh", RELU: "Relu",
                     LEAKY_RELU: "LeakyRelu", SOFTMAX: "Softmax"}


def _activation(scope, container, z, code, slope, layer):
    if code == IDENTITY:
        return z
    if code not in _ONNX_ACTIVATIONS:
        raise ValueError(f"fastnn.onnx: hidden layer {layer} has activation code {code}, "
                         f"which has no ONNX conversion (known codes: identity=0, "
                         f"logistic=1, tanh=2, relu=3, leaky_relu=4, softmax=5)")
    op = _ONNX_ACTIVATIONS[code]
    attrs = {"alpha": slope} if code == LEAKY_RELU else {"axis": 1} if code == SOFTMAX else {}
    out = _name(scope, "next_activations")
    container.add_node(op, z, out, name=scope.get_unique_operator_name(op), **attrs)
    return out


# ---------------------------------------------------------------------- helpers

def _name(scope, hint):
    return scope.get_unique_variable_name(hint)


def _greater_than_zero(scope, container, x, proto_dtype):
    zero, out = _name(scope, "zero"), _name(scope, "positive")
    container.add_initializer(zero, proto_dtype, [], [0])
    container.add_node("Greater", [x, zero], out,
                       name=scope.get_unique_operator_name("Greater"))
    return out


def _proto_type(variable_type):
    from skl2onnx.common.data_types import guess_proto_type

    return guess_proto_type(variable_type)


def _float_type(operator):
    """(onnx type, numpy dtype) the graph computes in: double for a double input, else
    float32 (skl2onnx's rule for scikit-learn's MLP)."""
    from skl2onnx.proto import onnx_proto

    if _proto_type(operator.inputs[0].type) == onnx_proto.TensorProto.DOUBLE:
        return onnx_proto.TensorProto.DOUBLE, np.float64
    return onnx_proto.TensorProto.FLOAT, np.float32


def _multilabel(est):
    return est._label_binarizer.y_type_.startswith("multilabel")


def _check_classes(est):
    """Refuse, by name, a classifier skl2onnx's outputs cannot represent."""
    classes = np.asarray(est.classes_)
    if len(classes) < 2:
        raise ValueError(f"fastnn.onnx: an MLPClassifier fitted on a single class "
                         f"({classes.tolist()}) cannot be converted: skl2onnx's classifier "
                         f"outputs need two classes or more")
