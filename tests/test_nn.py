"""fastnn.nn (networks written as in PyTorch) and NeuralNetClassifier/Regressor.

Oracles: PyTorch's own reprs and forward pass when torch is installed (the optional
comparison; skipped, saying so, when it is not), hand-written expected reprs and a NumPy
forward pass over the state_dict otherwise, and the MLP estimators (the same network
trained from the same weights gives the same bits).
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastnn.kernels as fk
from fastnn import MLPClassifier, NeuralNetClassifier, NeuralNetRegressor, nn
from fastnn.kernels import layout

from conftest import BACKENDS


def quiet(est, *args, method="fit", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(*args, **kw)


NET = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.LeakyReLU(0.1), nn.Dropout(0.25),
                    nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))


def test_repr_is_pytorchs():
    assert repr(NET) == """Sequential(
  (0): Flatten(start_dim=1, end_dim=-1)
  (1): Linear(in_features=12, out_features=8, bias=True)
  (2): LeakyReLU(negative_slope=0.1)
  (3): Dropout(p=0.25, inplace=False)
  (4): Linear(in_features=8, out_features=6, bias=True)
  (5): Tanh()
  (6): Linear(in_features=6, out_features=3, bias=True)
)"""
    assert [repr(m) for m in (nn.ReLU(), nn.Sigmoid(), nn.Identity(), nn.Dropout())] == [
        "ReLU()", "Sigmoid()", "Identity()", "Dropout(p=0.5, inplace=False)"]


def test_repr_equals_torchs_when_installed():
    torch = pytest.importorskip("torch", reason="torch not installed (optional comparison)")
    t = torch.nn
    theirs = t.Sequential(t.Flatten(), t.Linear(12, 8), t.LeakyReLU(0.1), t.Dropout(0.25),
                          t.Linear(8, 6), t.Tanh(), t.Linear(6, 3))
    assert repr(NET) == repr(theirs)


def test_the_table_fuses_activations_and_dropout():
    table = NET.table((3, 2, 2))
    expected = layout.build_table([
        layout.Dense(12, 8, fk.LEAKY_RELU, 0.1, 0.25), layout.Dense(8, 6, fk.TANH),
        layout.Dense(6, 3, fk.IDENTITY)])
    np.testing.assert_array_equal(table, expected)
    assert NET.output_shape((12,)) == (3,)
    assert NET.linear_indices((12,)) == [1, 4, 6]
    assert len(NET) == 7 and NET[1] == nn.Linear(12, 8) and NET[1:3] == nn.Sequential(
        nn.Linear(12, 8), nn.LeakyReLU(0.1))


def test_summary_lists_shapes_and_parameters():
    text = NET.summary((3, 2, 2))
    assert "input 3x2x2, 179 parameters" in text  # 12*8+8 + 8*6+6 + 6*3+3
    rows = text.splitlines()
    assert rows[2].split()[-2:] == ["8", "104"]  # Linear(12, 8)'s output and parameters


@pytest.mark.parametrize("net, shape, message", [
    (nn.Sequential(nn.Flatten(), nn.Linear(1000, 64)), (4, 16, 16),
     r"module 1 \(Linear\(in_features=1000.*takes 1000 features, but its input has 1024"),
    (nn.Sequential(nn.Linear(48, 4)), (3, 4, 4), "needs flat inputs.*add Flatten"),
    (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), (3,), "module 0 .* must follow a Linear"),
    (nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), (3,), "must be a Linear"),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 2)), (3,),
     "another activation"),
    (nn.Sequential(nn.Linear(3, 4), nn.Dropout(), nn.Tanh(), nn.Linear(4, 2)), (3,),
     "after Dropout"),
    (nn.Sequential(nn.Linear(3, 4), nn.Dropout(), nn.Dropout(), nn.Linear(4, 2)), (3,),
     "another Dropout"),
    (nn.Sequential(nn.Dropout(), nn.Linear(3, 2)), (3,), "must follow a Linear"),
    (nn.Sequential(), (3,), "no Linear"),
    (nn.Sequential(nn.Linear(3, 2)), (0,), "input_shape"),
])
def test_shape_errors_name_the_module(net, shape, message):
    with pytest.raises(ValueError, match=message):
        net.table(shape)


def test_relu_after_dropout_is_the_same_network():
    """relu(dropout(z)) = dropout(relu(z)): both orders give one table."""
    a = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.3), nn.ReLU(), nn.Linear(4, 2))
    b = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.3), nn.Linear(4, 2))
    np.testing.assert_array_equal(a.table((3,)), b.table((3,)))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Linear(0, 3), "in_features"), (lambda: nn.Linear(3, 2.5), "out_features"),
    (lambda: nn.Linear(3, 2, bias=False), "bias=False"), (lambda: nn.Dropout(1.0), "p must"),
    (lambda: nn.LeakyReLU(-1), "negative_slope"), (lambda: nn.Flatten(0), "start_dim"),
])
def test_bad_layer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()
    with pytest.raises(TypeError, match="module 1"):
        nn.Sequential(nn.Linear(3, 2), "relu")


def test_init_is_pytorchs_default():
    table = nn.Sequential(nn.Linear(400, 30), nn.ReLU(), nn.Linear(30, 2)).table((400,))
    flat = nn.init_params(table, np.random.RandomState(0), np.float64)
    (W0, W1), (b0, b1) = layout.unflatten(flat, table)
    for arr, fan_in in ((W0, 400), (b0, 400), (W1, 30), (b1, 30)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(arr).max() <= bound
        assert np.abs(arr).max() > (0.9 if arr.ndim == 2 else 0.5) * bound  # it is the bound
    # kaiming-uniform's variance: bound**2 / 3
    assert W0.var() == pytest.approx(1 / 400 / 3, rel=0.05)
    np.testing.assert_array_equal(flat, nn.init_params(table, np.random.RandomState(0),
                                                       np.float64))


def forward_by_hand(state, X):
    """The NumPy forward pass of NET from a PyTorch-layout state_dict (no dropout)."""
    h = X.reshape(len(X), -1) @ state["1.weight"].T + state["1.bias"]
    h = np.where(h > 0, h, 0.1 * h)
    h = np.tanh(h @ state["4.weight"].T + state["4.bias"])
    return h @ state["6.weight"].T + state["6.bias"]


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 3, 2, 2))
    y = (X[:, 0].sum(axis=(1, 2)) > 0).astype(int) + (X[:, 1, 0, 0] > 0.5)
    return X, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_classifier_on_images_and_its_state_dict(backend, images):
    X, y = images
    clf = quiet(NeuralNetClassifier(NET, max_iter=100, learning_rate_init=0.01, random_state=0,
                                    backend=backend), X, y)
    assert clf.input_shape_ == (3, 2, 2) and clf.module_ == NET
    state = clf.state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        "1.weight": (8, 12), "1.bias": (8,), "4.weight": (6, 8), "4.bias": (6,),
        "6.weight": (3, 6), "6.bias": (3,)}
    raw = forward_by_hand(state, X)
    proba = np.exp(raw - raw.max(1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), proba / proba.sum(1, keepdims=True),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X.reshape(len(X), -1)))
    assert clf.score(X, y) > 0.7
    with pytest.raises(ValueError, match=r"samples of shape \(2, 3, 2\)"):
        clf.predict(X.reshape(len(X), 2, 3, 2))
    # a state_dict loads back (here: perturbed) and predicts with it
    moved = {k: v + 0.01 for k, v in state.items()}
    again = pickle.loads(pickle.dumps(clf)).load_state_dict(moved)
    raw = forward_by_hand(moved, X)
    np.testing.assert_allclose(again.predict_proba(X).argmax(1), raw.argmax(1))
    for bad, message in [({**state, "9.bias": state["1.bias"]}, "does not"),
                         ({k: v for k, v in state.items() if k != "4.bias"}, "no '4.bias'"),
                         ({**state, "1.weight": state["1.weight"].T}, r"shape \(12, 8\)")]:
        with pytest.raises(ValueError, match=message):
            clone(clf).fit(X, y).load_state_dict(bad)


def test_torch_forward_equals_ours_when_installed(images):
    torch = pytest.importorskip("torch", reason="torch not installed (optional comparison)")
    X, y = images
    clf = quiet(NeuralNetClassifier(NET, max_iter=5, random_state=0), X, y)
    t = torch.nn
    theirs = t.Sequential(t.Flatten(), t.Linear(12, 8), t.LeakyReLU(0.1), t.Dropout(0.25),
                          t.Linear(8, 6), t.Tanh(), t.Linear(6, 3)).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in clf.state_dict().items()})
    with torch.no_grad():
        proba = torch.softmax(theirs(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trains_what_the_mlp_trains(backend, images):
    """The same network from the same weights: the MLP and the NeuralNet give the same
    bits (sgd without momentum: no optimizer state to carry over)."""
    X, y = images
    X = X.reshape(len(X), -1)
    kw = dict(solver="sgd", momentum=0.0, max_iter=1, random_state=0, backend=backend)
    net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 3))
    ours = quiet(NeuralNetClassifier(net, **kw), X, y)
    mlp = quiet(MLPClassifier((16,), activation="tanh", dropout=0.2, **kw), X, y)
    mlp.coefs_ = [c.copy() for c in ours.coefs_]
    mlp.intercepts_ = [c.copy() for c in ours.intercepts_]
    for est in (ours, mlp):
        for _ in range(3):
            quiet(est, X, y, method="partial_fit")
    for a, b in zip(ours.coefs_ + ours.intercepts_, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_regressor_losses_and_default_module():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5))
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=200)
    reg = quiet(NeuralNetRegressor(random_state=0, max_iter=200, learning_rate_init=0.01), X, y)
    assert reg.module_ == nn.Sequential(nn.Linear(5, 100), nn.ReLU(), nn.Linear(100, 1))
    assert reg.score(X, y) > 0.9
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    Y = np.c_[y, -y]
    for loss in ("huber", "quantile", "absolute_error"):
        est = quiet(NeuralNetRegressor(net, loss=loss, max_iter=100, random_state=0,
                                       learning_rate_init=0.01), X, Y)
        assert est.predict(X).shape == (200, 2) and est.score(X, Y) > 0.8, loss
    with pytest.raises(ValueError, match="gives 2 outputs, but these targets need 1"):
        NeuralNetRegressor(net).fit(X, y)
    with pytest.raises(ValueError, match="stochastic solver"):
        NeuralNetRegressor(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Dropout(0.5),
                                         nn.Linear(4, 1)), solver="lbfgs").fit(X, y)


def test_grid_search_over_modules_clone_and_pickle(images):
    X, y = images
    small = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 3))
    search = quiet(GridSearchCV(NeuralNetClassifier(max_iter=20, random_state=0),
                                {"module": [small, NET]}, cv=3), X, y)
    assert search.best_params_["module"] in (small, NET)
    assert clone(NeuralNetClassifier(NET)).module == NET
    est = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(est.predict(X), search.predict(X))
    with pytest.raises(ValueError, match="module"):
        NeuralNetClassifier(module=[nn.Linear(12, 3)]).fit(X, y)


@parametrize_with_checks([NeuralNetClassifier(), NeuralNetRegressor()])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
