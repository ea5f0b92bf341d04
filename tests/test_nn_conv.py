"""Convolutional networks in fastnn.nn (Conv2d, MaxPool2d) and the estimators on images.

Oracles: PyTorch (when installed; skipped, saying so, when not): the article's CIFAR-10
model with PyTorch's weights copied in gives PyTorch's outputs, loss, every parameter
gradient and the parameters after 5 Adam steps on every backend; reprs as PyTorch prints
them (hand-written too); shape arithmetic by hand.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import fastnn.kernels as fk
from fastnn import NeuralNetClassifier, NeuralNetRegressor, nn, optim
from fastnn._backends import get_kernels
from fastnn.kernels import layout

from conftest import BACKENDS


def quiet(est, *args, method="fit", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(*args, **kw)


def article_model():
    """The loss-function article's CIFAR-10 classifier."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2), nn.Conv2d(32, 32, 5, padding=2),
        nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(1024, 64), nn.Linear(64, 10))


def test_repr_is_pytorchs():
    assert repr(article_model()[:2]) == """Sequential(
  (0): Conv2d(3, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
)"""
    assert repr(nn.Conv2d(1, 2, (3, 2), stride=(2, 1))) == (
        "Conv2d(1, 2, kernel_size=(3, 2), stride=(2, 1))")
    assert repr(nn.MaxPool2d((3, 2), 1, 1)) == (
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=1, dilation=1, ceil_mode=False)")
    assert nn.MaxPool2d(2) == nn.MaxPool2d(2, 2) == nn.MaxPool2d((2, 2), stride=(2, 2))


def test_repr_equals_torchs_when_installed():
    torch = pytest.importorskip("torch", reason="torch not installed (optional comparison)")
    t = torch.nn
    theirs = t.Sequential(
        t.Conv2d(3, 32, 5, padding=2), t.MaxPool2d(2), t.Conv2d(32, 32, 5, padding=2),
        t.MaxPool2d(2), t.Conv2d(32, 64, 5, padding=2), t.MaxPool2d(2), t.Flatten(),
        t.Linear(1024, 64), t.Linear(64, 10))
    assert repr(article_model()) == repr(theirs)
    assert repr(nn.Conv2d(1, 2, (3, 2), stride=(2, 1), padding=0)) == repr(
        t.Conv2d(1, 2, (3, 2), stride=(2, 1), padding=0))
    assert repr(nn.MaxPool2d((3, 2), 1, 1)) == repr(t.MaxPool2d((3, 2), 1, 1))


def test_summary_and_table_of_the_article_model():
    net = article_model()
    text = net.summary((3, 32, 32))
    assert text.splitlines()[-1] == "input 3x32x32, 145,578 parameters"
    shapes = [row.split()[-2] for row in text.splitlines()[1:-1]]
    assert shapes == ["32x32x32", "32x16x16", "32x16x16", "32x8x8", "64x8x8", "64x4x4",
                      "1024", "64", "10"]
    table = net.table((3, 32, 32))
    np.testing.assert_array_equal(table[:, layout.OP], [1, 2, 1, 2, 1, 2, 0, 0])
    assert layout.n_params(table) == 145_578
    assert net.linear_indices((3, 32, 32)) == [0, 1, 2, 3, 4, 5, 7, 8]
    # activations fuse into a conv or pool layer as into a Linear
    fused = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(0.3), nn.MaxPool2d(2), nn.Tanh(),
                          nn.Flatten(), nn.Linear(2, 1)).table((1, 4, 4))
    assert list(fused[:, layout.ACT]) == [fk.LEAKY_RELU, fk.TANH, fk.IDENTITY]
    assert layout.act_param(fused, 0) == 0.3


@pytest.mark.parametrize("net, shape, message", [
    (nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2), nn.Flatten(),
                   nn.Linear(1000, 64)), (3, 32, 32),
     r"module 3 \(Linear\(in_features=1000.*takes 1000 features, but its input has 8192"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 1)), (3, 8, 8),
     r"module 0 \(Conv2d.*takes 1 channels, but its input has shape \(3, 8, 8\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 1)), (64,),
     r"needs \(C, H, W\) inputs"),
    (nn.Sequential(nn.Conv2d(1, 4, 5), nn.Flatten(), nn.Linear(4, 1)), (1, 3, 3),
     "kernel .* is larger than its input"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(), nn.Flatten(), nn.Linear(4, 1)),
     (1, 3, 3), "dropout is supported after Linear layers only"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 1), nn.Flatten()),
     (1, 3, 3), "last module must be a Linear"),
])
def test_shape_errors_name_the_module(net, shape, message):
    with pytest.raises(ValueError, match=message):
        net.table(shape)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), "stride"),
    (lambda: nn.Conv2d(3, 4, 3, padding="same"), "padding"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=2), "dilation=2 is not supported"),
    (lambda: nn.Conv2d(3, 4, 3, groups=3), "groups=3 is not supported"),
    (lambda: nn.Conv2d(3, 4, 3, bias=False), "bias=False"),
    (lambda: nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True is not supported"),
    (lambda: nn.MaxPool2d(2, padding=2), "at most half"),
])
def test_bad_layer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_conv_init_is_pytorchs_default():
    table = nn.Sequential(nn.Conv2d(3, 40, 5), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(40 * 16, 2)).table((3, 12, 12))
    flat = nn.init_params(table, np.random.RandomState(0), np.float64)
    (W0, _, W2), (b0, _, b2) = layout.unflatten(flat, table)
    assert W0.shape == (40, 3, 5, 5)
    for arr, fan_in in ((W0, 75), (b0, 75), (W2, 640), (b2, 640)):
        assert 0.8 / np.sqrt(fan_in) < np.abs(arr).max() <= 1 / np.sqrt(fan_in)
    assert W0.var() == pytest.approx(1 / 75 / 3, rel=0.05)


def _torch_article(torch, dtype):
    t = torch.nn
    torch.manual_seed(0)
    model = t.Sequential(
        t.Conv2d(3, 32, 5, padding=2), t.MaxPool2d(2), t.Conv2d(32, 32, 5, padding=2),
        t.MaxPool2d(2), t.Conv2d(32, 64, 5, padding=2), t.MaxPool2d(2), t.Flatten(),
        t.Linear(1024, 64), t.Linear(64, 10))
    return model.to(torch.float64 if dtype == np.float64 else torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_article_model_equals_torch(backend, dtype):
    """PyTorch's weights copied in: the same outputs, loss and every parameter gradient
    (1e-4 relative in float32, 1e-10 in float64), and the same parameters after 5 Adam
    steps (fastnn.optim.Adam, PyTorch's rule) on the same batches."""
    torch = pytest.importorskip("torch", reason="torch not installed (optional comparison)")
    k = get_kernels(backend)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    theirs = _torch_article(torch, dtype)
    net, shape = article_model(), (3, 32, 32)
    table = net.table(shape)
    state = {name: v.detach().numpy() for name, v in theirs.state_dict().items()}
    params = nn.load_state_dict(net, shape, table, state, dtype)
    np.testing.assert_array_equal(
        nn.state_dict(net, shape, params, table)["4.weight"], state["4.weight"])
    rng = np.random.default_rng(0)
    n = 8
    batches = [(rng.uniform(size=(n, 3, 32, 32)).astype(dtype), rng.integers(0, 10, n))
               for _ in range(5)]

    def ours_step(X, labels):
        Y = np.eye(10, dtype=dtype)[labels]
        grads = np.empty_like(params)
        work = np.empty(layout.forward_backward_workspace_size(table, n), dtype)
        data_loss, _ = k.forward_backward(X.reshape(n, -1), Y, np.ones(n, dtype), params,
                                          table, fk.LOSSES["softmax_cross_entropy"], 1e-30,
                                          0.0, grads, work)
        return data_loss / n, grads

    X, labels = batches[0]
    raw = np.empty((n, 10), dtype)
    k.forward(X.reshape(n, -1), params, table,
              np.empty(layout.forward_workspace_size(table, n), dtype), raw)
    out = theirs(torch.from_numpy(X))
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(labels))
    loss.backward()
    np.testing.assert_allclose(raw, out.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)
    data_loss, grads = ours_step(X, labels)
    assert data_loss == pytest.approx(loss.item(), rel=rtol)
    torch_grads = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    ours = nn.state_dict(net, shape, grads, table)
    assert sorted(ours) == sorted(torch_grads)
    for name, g in torch_grads.items():
        scale = np.abs(g).max()
        np.testing.assert_allclose(ours[name], g, rtol=rtol, atol=rtol * scale, err_msg=name)

    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    opt_ours = optim.Adam([params], lr=1e-3, backend=backend)
    for X, labels in batches:
        opt_theirs.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(X)),
                                          torch.from_numpy(labels)).backward()
        opt_theirs.step()
        _, grads = ours_step(X, labels)
        opt_ours.step([grads])
    after = nn.state_dict(net, shape, params, table)
    for name, p in theirs.state_dict().items():
        # Adam moves a weight by about lr whatever its gradient's size, so a float32
        # gradient near 0 (its rounding noise relatively large) may move a weight
        # differently: a tenth of lr there (seen: 2.8e-5, 1 weight in 51200)
        np.testing.assert_allclose(after[name], p.numpy(), rtol=0,
                                   atol=(1e-4 if dtype == np.float32 else 1e-12), err_msg=name)


def digits_images():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).reshape(-1, 1, 8, 8)[:600], y[:600]


SMALL_CNN = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(96, 10))


@pytest.mark.parametrize("backend", BACKENDS)
def test_classifier_on_images_learns_and_round_trips(backend):
    X, y = digits_images()
    clf = quiet(NeuralNetClassifier(SMALL_CNN, max_iter=15, learning_rate_init=0.01,
                                    random_state=0, backend=backend), X, y)
    assert clf.score(X, y) > 0.9
    assert clf.input_shape_ == (1, 8, 8)
    assert [W.shape for W in clf.coefs_] == [(6, 1, 3, 3), (0,), (96, 10)]
    # flat rows of square single-channel images are the same samples
    flat = quiet(clone(clf), X.reshape(len(X), -1), y)
    np.testing.assert_array_equal(flat.predict_proba(X.reshape(len(X), -1)),
                                  clf.predict_proba(X))
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    state = clf.state_dict()
    assert state["0.weight"].shape == (6, 1, 3, 3) and "2.weight" not in state
    other = quiet(clone(clf).set_params(max_iter=1), X, y).load_state_dict(state)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
    quiet(clf, X, y, method="partial_fit")  # warm continuation keeps the shapes
    with pytest.raises(ValueError, match=r"samples of shape \(1, 4, 16\)"):
        clf.predict(X.reshape(len(X), 1, 4, 16))


def test_flat_rows_that_are_not_square_images_are_a_clear_error():
    X, y = digits_images()
    with pytest.raises(ValueError, match="not 1 channels .* of square images"):
        NeuralNetClassifier(SMALL_CNN).fit(X.reshape(len(X), -1)[:, :60], y)
    with pytest.raises(ValueError, match="takes 1 channels"):
        NeuralNetClassifier(SMALL_CNN).fit(np.repeat(X, 2, axis=1), y)
    pool_first = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 10))
    with pytest.raises(ValueError, match="pass X as"):
        NeuralNetClassifier(pool_first).fit(X.reshape(len(X), -1), y)


def test_regressor_on_images():
    X, y = digits_images()
    target = X[:, 0, 2:6, 2:6].mean(axis=(1, 2))  # the mean brightness of the centre
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(144, 1))
    reg = quiet(NeuralNetRegressor(net, max_iter=30, learning_rate_init=0.01,
                                   random_state=0), X, target)
    assert reg.score(X, target) > 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_predictions_in_chunks_are_the_same_bits(backend, monkeypatch):
    """Predictions run in chunks of rows that bound forward's workspace (PREDICT_WORK
    elements): a row's outputs do not depend on the chunk it is in, for a CNN and an MLP."""
    from fastnn import MLPClassifier, _engine

    X, y = digits_images()
    cnn = quiet(NeuralNetClassifier(SMALL_CNN, max_iter=2, random_state=0, backend=backend),
                X, y)
    mlp = quiet(MLPClassifier((50,), max_iter=2, random_state=0, backend=backend),
                X.reshape(len(X), -1), y)
    whole = [cnn.predict_proba(X), mlp.predict_proba(X.reshape(len(X), -1))]
    monkeypatch.setattr(_engine, "PREDICT_WORK", 7 * 500)  # chunks of 7 (CNN) and 70 rows
    chunked = [cnn.predict_proba(X), mlp.predict_proba(X.reshape(len(X), -1))]
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
