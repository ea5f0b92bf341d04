"""Dropout: counter-based masks, the same in the three implementations and on any number
of threads; gradients through dropout; training with it.

Oracles: the NumPy reference (masks bit for bit; fits within the train tests' bounds),
a binomial bound on the kept fraction, finite differences with the mask fixed (seed and
step fixed), and dropout = 0 giving the same bits as a table without the column set.
"""

import numpy as np
import pytest

import fastnn.kernels as fk
from fastnn._backends import get_kernels
from fastnn.kernels import layout, reference

from conftest import BACKENDS, DTYPES


def mask_of(kernels, shape, p, seed, step, layer, dtype=np.float64):
    x = np.ones(shape, dtype=dtype)
    kernels.dropout_(x, p, seed, step, layer)
    return x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_equal_the_reference_bit_for_bit(backend, dtype):
    kernels = get_kernels(backend)
    rng = np.random.default_rng(0)
    for p, seed, step, layer, shape in [(0.5, 0, 1, 0, (7, 13)), (0.1, 2**40 + 3, 12345, 3, (64, 33)),
                                        (0.9, 2**62, 2**62, 63, (5, 1)), (1e-3, 1, 0, 0, (1, 257))]:
        x = rng.normal(size=shape).astype(dtype)
        ours, ref = x.copy(), x.copy()
        kernels.dropout_(ours, p, seed, step, layer)
        reference.dropout_(ref, p, seed, step, layer)
        np.testing.assert_array_equal(ours.view(np.uint8), ref.view(np.uint8))


def test_mask_values_pinned():
    """The hash is SplitMix64, written out in Python ints here: an independent oracle
    (and a guard against the stream changing, which would change every fit)."""
    M = 2**64 - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return z ^ (z >> 31)

    G = 0x9E3779B97F4A7C15
    seed, step, layer, p = 12345, 7, 2, 0.3
    key = mix((mix((mix(seed) + step * G) & M) + (layer + 1) * G) & M)
    thr = int(p * 2.0**64)
    keep = [mix((key + (u + 1) * G) & M) >= thr for u in range(40)]
    got = mask_of(reference, (4, 10), p, seed, step, layer)
    np.testing.assert_array_equal(got.ravel() != 0, keep)
    np.testing.assert_array_equal(got.ravel()[keep], 1 / (1 - p))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_kept_fraction_within_the_binomial_bound(backend, p):
    kernels = get_kernels(backend)
    n = 200 * 500
    for step in range(3):
        kept = np.count_nonzero(mask_of(kernels, (200, 500), p, 99, step, 1))
        # 5 standard deviations: fails by chance with probability ~6e-7 per draw
        assert abs(kept - n * (1 - p)) < 5 * np.sqrt(n * p * (1 - p)), (step, kept)
    # and the draws of different steps, layers and seeds are not the same mask
    a = mask_of(kernels, (50, 40), p, 99, 1, 1)
    for other in [(99, 2, 1), (99, 1, 2), (100, 1, 1)]:
        assert not np.array_equal(a, mask_of(kernels, (50, 40), p, *other))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_kernel_edge_cases(backend):
    kernels = get_kernels(backend)
    x = np.arange(12.0).reshape(3, 4)
    y = x.copy()
    kernels.dropout_(y, 0.0, 5, 5, 5)
    np.testing.assert_array_equal(y, x)  # p = 0: untouched
    for p in (1.0, -0.1, np.nan):
        with pytest.raises(ValueError, match="p"):
            kernels.dropout_(x.copy(), p, 0, 0, 0)
    with pytest.raises(ValueError, match="at least 0"):
        kernels.dropout_(x.copy(), 0.5, -1, 0, 0)
    kernels.dropout_(np.empty((0, 4)), 0.5, 0, 0, 0)  # empty: nothing to do


# --------------------------------------------------------------------------- training


def dropout_table(sizes, acts, p, negative_slope=0.1):
    return layout.dense_table(sizes, acts, negative_slope, dropout=p)


def data(n, n_in, n_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    Y = rng.normal(size=(n, n_out)).astype(dtype)
    w = rng.uniform(0.5, 2.0, n).astype(dtype)
    return X, Y, w


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("acts", [(fk.TANH, fk.RELU), (fk.LOGISTIC, fk.LEAKY_RELU),
                                  (fk.IDENTITY, fk.TANH)])
def test_gradient_through_dropout_matches_finite_differences(backend, acts):
    """With seed and step fixed the mask is fixed and the loss is smooth in the weights
    (away from ReLU's kink): 4th-order central differences of forward_backward's loss."""
    kernels = get_kernels(backend)
    table = dropout_table([5, 7, 6, 3], acts, [0.4, 0.3])
    X, Y, w = data(9, 5, 3, np.float64)
    rng = np.random.default_rng(1)
    params = rng.normal(size=layout.n_params(table)) * 0.5
    work = np.empty(layout.forward_backward_workspace_size(table, 9))
    sw = w.sum()

    def f(q):
        g = np.empty_like(q)
        return sum(kernels.forward_backward(X, Y, w, q, table, fk.HUBER, 0.7, 1e-2, g,
                                            work, 11, 3)) / sw

    grads = np.empty_like(params)
    kernels.forward_backward(X, Y, w, params, table, fk.HUBER, 0.7, 1e-2, grads, work, 11, 3)
    h = 1e-4
    numeric = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = h
        numeric[i] = (-f(params + 2 * e) + 8 * f(params + e) - 8 * f(params - e)
                      + f(params - 2 * e)) / (12 * h)
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)
    # the mask is really there: another step draws another one, and so another loss
    assert f(params) != sum(kernels.forward_backward(X, Y, w, params, table, fk.HUBER, 0.7,
                                                     1e-2, grads, work, 11, 4)) / sw


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_backward_with_dropout_equals_the_reference(backend, dtype):
    kernels = get_kernels(backend)
    table = dropout_table([6, 40, 70, 4], (fk.TANH, fk.RELU), [0.5, 0.2])
    X, Y, w = data(33, 6, 4, dtype)
    params = np.random.default_rng(2).normal(size=layout.n_params(table)).astype(dtype) * 0.3
    out = []
    for k in (kernels, reference):
        grads = np.full_like(params, np.nan)
        work = np.full(layout.forward_backward_workspace_size(table, 33), np.nan, dtype)
        out.append((k.forward_backward(X, Y, w, params, table, fk.SQUARED_ERROR, 0.0, 1e-3,
                                       grads, work, 7, 5), grads))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[0][0], out[1][0], **tol)
    np.testing.assert_allclose(out[0][1], out[1][1], **tol)


def run_epochs(kernels, table, X, Y, w, params, epochs=3, batch_size=8, seed=5,
               optimizer=fk.ADAM, slices=1):
    params = params.copy()
    state = np.zeros((2, params.size), params.dtype)
    grads = np.empty_like(params)
    work = np.empty(layout.train_workspace_size(table, batch_size), params.dtype)
    cfg = np.zeros(fk.N_CONFIG)
    cfg[[fk.LR, fk.MOMENTUM, fk.BETA1, fk.BETA2, fk.EPSILON]] = 1e-2, 0.9, 0.9, 0.999, 1e-8
    rng = np.random.default_rng(3)
    step, losses = 0, []
    for _ in range(epochs):
        perm = rng.permutation(X.shape[0]).astype(np.int64)
        sums = (0.0, 0.0)
        per = -(-perm.size // (batch_size * slices)) * batch_size
        for s in range(0, perm.size, per):
            *sums, step, nonfinite = kernels.train_epoch(
                X, Y, w, perm[s:s + per], batch_size, params, table, fk.SQUARED_ERROR, 0.0,
                1e-4, optimizer, cfg, state, step, grads, work, *sums, seed)
            assert not nonfinite
        losses.append(sums[0])
    return params, losses, step


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_epoch_with_dropout_equals_the_reference(backend, dtype):
    kernels = get_kernels(backend)
    table = dropout_table([6, 16, 12, 2], (fk.TANH, fk.RELU), [0.3, 0.5])
    X, Y, w = data(50, 6, 2, dtype)
    params = np.random.default_rng(4).normal(size=layout.n_params(table)).astype(dtype) * 0.4
    ours = run_epochs(kernels, table, X, Y, w, params)
    ref = run_epochs(reference, table, X, Y, w, params)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours[0], ref[0], **tol)
    np.testing.assert_allclose(ours[1], ref[1], **tol)
    # another seed is another fit: the masks are in use
    other = run_epochs(kernels, table, X, Y, w, params, seed=6)
    assert np.abs(other[0] - ours[0]).max() > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_sliced_epochs_give_one_calls_bits(backend):
    kernels = get_kernels(backend)
    table = dropout_table([6, 16, 12, 2], (fk.TANH, fk.RELU), [0.3, 0.5])
    X, Y, w = data(50, 6, 2, np.float64)
    params = np.random.default_rng(4).normal(size=layout.n_params(table)) * 0.4
    whole = run_epochs(kernels, table, X, Y, w, params)
    sliced = run_epochs(kernels, table, X, Y, w, params, slices=3)
    np.testing.assert_array_equal(whole[0], sliced[0])
    assert whole[1:] == sliced[1:]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_dropout_is_bit_identical_to_none(backend, dtype):
    """A table with DROP = 0.0 and any seed trains as before dropout existed: the scales
    are 1 (exact) and no mask is drawn."""
    kernels = get_kernels(backend)
    plain = layout.dense_table([6, 16, 12, 2], (fk.TANH, fk.RELU), 0.1)
    zero = dropout_table([6, 16, 12, 2], (fk.TANH, fk.RELU), [0.0, 0.0])
    np.testing.assert_array_equal(plain, zero)
    X, Y, w = data(50, 6, 2, dtype)
    params = np.random.default_rng(4).normal(size=layout.n_params(plain)).astype(dtype) * 0.4
    a = run_epochs(kernels, plain, X, Y, w, params, seed=0)
    b = run_epochs(kernels, zero, X, Y, w, params, seed=12345)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_ignores_dropout(backend):
    """Prediction is the plain network: inverted dropout needs no rescaling there."""
    kernels = get_kernels(backend)
    table = dropout_table([6, 16, 12, 2], (fk.TANH, fk.RELU), [0.3, 0.5])
    plain = dropout_table([6, 16, 12, 2], (fk.TANH, fk.RELU), [0.0, 0.0])
    X, _, _ = data(20, 6, 2, np.float64)
    params = np.random.default_rng(4).normal(size=layout.n_params(table))
    raw = [np.empty((20, 2)), np.empty((20, 2))]
    for t, r in zip((table, plain), raw):
        kernels.forward(X, params, t, np.empty(layout.forward_workspace_size(t, 20)), r)
    np.testing.assert_array_equal(raw[0], raw[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_dropout_in_a_table_is_refused(backend):
    kernels = get_kernels(backend)
    good = dropout_table([3, 4, 2], (fk.RELU,), 0.5)
    params = np.zeros(layout.n_params(good))
    X, Y, w = data(4, 3, 2, np.float64)
    work = np.empty(layout.forward_backward_workspace_size(good, 4))
    for row, value in [(0, 1.0), (0, -0.5), (0, np.nan), (1, 0.5)]:
        bad = good.copy()
        bad[row, layout.DROP] = np.float64(value).view(np.int64)
        with pytest.raises(ValueError, match="dropout"):
            kernels.forward_backward(X, Y, w, params, bad, fk.SQUARED_ERROR, 0.0, 0.0,
                                     np.empty_like(params), work)
    soft = layout.dense_table([3, 4, 2], (fk.SOFTMAX,))
    soft[0, layout.DROP] = np.float64(0.5).view(np.int64)
    with pytest.raises(ValueError, match="dropout"):
        kernels.forward_backward(X, Y, w, params, soft, fk.SQUARED_ERROR, 0.0, 0.0,
                                 np.empty_like(params), work)
    with pytest.raises(ValueError, match="at least 0"):
        kernels.forward_backward(X, Y, w, params, good, fk.SQUARED_ERROR, 0.0, 0.0,
                                 np.empty_like(params), work, -1, 0)


def test_layout_fuses_dropout_specs():
    t = layout.build_table([layout.Dense(3, 4, fk.RELU), layout.Dropout(0.25),
                            layout.Dense(4, 2, fk.IDENTITY)])
    assert layout.drop_p(t, 0) == 0.25 and layout.drop_p(t, 1) == 0.0
    np.testing.assert_array_equal(t, layout.dense_table([3, 4, 2], (fk.RELU,), dropout=0.25))
    with pytest.raises(ValueError, match="must follow a layer"):
        layout.build_table([layout.Dropout(0.5), layout.Dense(3, 2, 0)])
    with pytest.raises(ValueError, match="output layer"):
        layout.build_table([layout.Dense(3, 2, 0), layout.Dropout(0.5)])
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        dropout_table([3, 4, 2], (fk.RELU,), 1.0)
    with pytest.raises(ValueError, match="as many dropout"):
        dropout_table([3, 4, 4, 2], (fk.RELU, fk.RELU), [0.1])


# --------------------------------------------------------------------------- estimators

import pickle  # noqa: E402
import warnings  # noqa: E402

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastnn import MLPClassifier, MLPRegressor  # noqa: E402


def quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 8))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    return X, y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_zero_dropout_fits_bit_identically(backend, Estimator, blobs):
    X, y = blobs
    kw = dict(hidden_layer_sizes=(32, 16), max_iter=4, random_state=0, backend=backend)
    for extra in ({}, dict(early_stopping=True), dict(solver="sgd")):
        a = quiet_fit(Estimator(**kw, **extra), X, y)
        b = quiet_fit(Estimator(**kw, **extra, dropout=0.0), X, y)
        c = quiet_fit(Estimator(**kw, **extra, dropout=[0.0, 0.0]), X, y)
        for other in (b, c):
            for p, q in zip(a.coefs_ + a.intercepts_, other.coefs_ + other.intercepts_):
                np.testing.assert_array_equal(p, q)
            assert a.loss_curve_ == other.loss_curve_


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_random_state_same_fit_and_predict_is_deterministic(backend, blobs):
    X, y = blobs
    kw = dict(hidden_layer_sizes=(32, 16), max_iter=4, dropout=[0.5, 0.2], backend=backend)
    a = quiet_fit(MLPClassifier(**kw, random_state=1), X, y)
    b = quiet_fit(MLPClassifier(**kw, random_state=1), X, y)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    # prediction is the whole network: the plain forward pass over coefs_
    h = X
    for W, c in zip(a.coefs_[:-1], a.intercepts_[:-1]):
        h = np.maximum(h @ W + c, 0)
    raw = h @ a.coefs_[-1] + a.intercepts_[-1]
    proba = np.exp(raw - raw.max(1, keepdims=True))
    np.testing.assert_allclose(a.predict_proba(X), proba / proba.sum(1, keepdims=True),
                               rtol=1e-10)
    # the same shuffles without dropout, other masks with another seed: other fits
    plain = quiet_fit(MLPClassifier(**{**kw, "dropout": 0.0}, random_state=1), X, y)
    other = quiet_fit(MLPClassifier(**kw, random_state=2), X, y)
    for est in (plain, other):
        assert not np.array_equal(est.coefs_[0], a.coefs_[0])


def test_backends_fit_alike_with_dropout(blobs):
    """The same masks in every implementation: fits agree to rounding (a different mask
    would move the weights by far more)."""
    from fastnn import available_backends
    X, y = blobs
    fits = {be: quiet_fit(MLPRegressor(hidden_layer_sizes=(24, 12), max_iter=3, dropout=[0.4, 0.3], solver="sgd",
                                       random_state=0, backend=be), X, y.astype(float))
            for be in available_backends()}
    ref = fits.pop("numpy")
    for be, est in fits.items():
        for p, q in zip(est.coefs_, ref.coefs_):
            np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-11, err_msg=be)
        np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-10, err_msg=be)


def test_dropout_training_loss_is_higher_and_regularises(blobs):
    """Dropout's loss curve is the dropped network's: higher than the plain network's on
    the same data (a sanity check of the scale: without 1 / (1 - p) the predictions
    would shrink and the loss explode)."""
    X, y = blobs
    kw = dict(hidden_layer_sizes=(64,), max_iter=60, random_state=0, learning_rate_init=0.01)
    plain = quiet_fit(MLPRegressor(**kw), X, y.astype(float))
    drop = quiet_fit(MLPRegressor(**kw, dropout=0.3), X, y.astype(float))
    assert drop.loss_curve_[-1] > plain.loss_curve_[-1]
    assert drop.score(X, y) > 0.5  # it still learns the function


def test_bad_dropout_is_refused_and_the_model_kept(blobs):
    X, y = blobs
    est = quiet_fit(MLPClassifier((8, 4), max_iter=2, random_state=0), X, y)
    before = [c.copy() for c in est.coefs_]
    for kw, match in [(dict(dropout=[0.1]), "each of the 2 hidden layers"),
                      (dict(dropout=[0.1, 1.0]), r"\[0, 1\)"),
                      (dict(dropout=[0.1, True]), r"\[0, 1\)"),
                      (dict(dropout=0.2, solver="lbfgs"), "stochastic solver")]:
        with pytest.raises(ValueError, match=match):
            clone(est).set_params(warm_start=True, **kw).fit(X, y)
        bad = pickle.loads(pickle.dumps(est)).set_params(warm_start=True, **kw)
        with pytest.raises(ValueError, match=match):
            bad.fit(X, y)
        for c, b in zip(bad.coefs_, before):
            np.testing.assert_array_equal(c, b)


def test_partial_fit_warm_start_and_pickle(blobs):
    X, y = blobs
    est = MLPClassifier((16,), dropout=0.25, random_state=0)
    for _ in range(3):
        est.partial_fit(X, y, classes=np.unique(y))
    assert est._optimizer.step == 3 * 2  # batches of 200: two steps per epoch
    again = pickle.loads(pickle.dumps(est))
    for a, b in zip((est, again), (est.partial_fit(X, y), again.partial_fit(X, y))):
        assert a is b
    for p, q in zip(est.coefs_, again.coefs_):
        np.testing.assert_array_equal(p, q)
    warm = quiet_fit(MLPClassifier((16,), dropout=0.25, random_state=0, max_iter=2,
                                   warm_start=True), X, y)
    quiet_fit(warm.set_params(dropout=0.5), X, y)
    assert warm.n_iter_ == 2 and np.isfinite(warm.loss_)


def test_pickle_of_an_older_table_loads(blobs):
    """A model pickled before the DROP column (16 columns) predicts as before."""
    X, y = blobs
    est = quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), X, y)
    expected = est.predict_proba(X)
    state = est.__getstate__()
    state["_table"] = state["_table"][:, :layout.DROP]
    old = MLPClassifier.__new__(MLPClassifier)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict_proba(X), expected)
    quiet_fit(old.set_params(warm_start=True, dropout=0.1), X, y)
