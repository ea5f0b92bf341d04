"""Training kernels: forward, forward_backward, train_epoch.

Oracles: finite differences of forward_backward's loss, scikit-learn's own MLP (same
initial weights and shuffles give the same weights and loss curve), and, across
implementations, the NumPy reference (3 epochs: float64 within 1e-10, float32 1e-4).
"""

import warnings

import numpy as np
import pytest
from scipy.special import expit

import fastnn.kernels as fk
from fastnn.kernels import layout

LOSS_CASES = [  # (loss code, loss_param, n_outputs, target kind)
    (fk.SQUARED_ERROR, 0.0, 2, "real"),
    (fk.ABSOLUTE_ERROR, 0.0, 2, "real"),
    (fk.HUBER, 0.7, 2, "real"),
    (fk.QUANTILE, 0.8, 2, "real"),
    (fk.POISSON, 0.0, 2, "count"),
    (fk.BINARY_LOG_LOSS, 1e-16, 3, "multilabel"),
    (fk.SOFTMAX_CROSS_ENTROPY, 1e-16, 3, "onehot"),
]
LOSS_IDS = ["squared", "absolute", "huber", "quantile", "poisson", "binary", "softmax"]
HIDDEN = [fk.IDENTITY, fk.LOGISTIC, fk.TANH, fk.RELU, fk.LEAKY_RELU]


def make_data(n, n_in, n_out, kind, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if kind == "real":
        Y = rng.normal(size=(n, n_out)) * 2
    elif kind == "count":
        Y = rng.poisson(2.0, size=(n, n_out)).astype(float)
    elif kind == "multilabel":
        Y = (rng.random((n, n_out)) < 0.4).astype(float)
    else:
        Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    w = rng.uniform(0.2, 2.0, n)
    return (np.ascontiguousarray(a, dtype=dtype) for a in (X, Y, w))


def table_of(sizes, *codes, negative_slope=0.1):
    """The layer table of the MLP ``sizes``; its hidden layers cycle through ``codes``
    (identity if none)."""
    codes = codes or (fk.IDENTITY,)
    return layout.dense_table(sizes, [codes[i % len(codes)] for i in range(len(sizes) - 2)],
                              negative_slope)


def config(lr, momentum=0.0, beta1=0.0, beta2=0.0, eps=0.0):
    """train_epoch's float64 config, by slot name."""
    out = np.zeros(fk.N_CONFIG)
    out[[fk.LR, fk.MOMENTUM, fk.BETA1, fk.BETA2, fk.EPSILON]] = lr, momentum, beta1, beta2, eps
    return out


def epoch(kernels, X, Y, w, perm, batch_size, params, table, *, loss=fk.SQUARED_ERROR,
          loss_param=0.0, alpha=0.0, optimizer=fk.SGD, cfg=None, state=None, step=0,
          grads=None, work=None, sums=(0.0, 0.0)):
    """One train_epoch call through the engine's ``train_steps`` (the one place its
    arguments are spelled out), its buffers made here when not given; returns the
    kernel's (loss_sum, penalty_sum, step, nonfinite)."""
    from fastnn import _engine

    cfg = config(0.1) if cfg is None else cfg
    state = np.zeros((2, params.size), params.dtype) if state is None else state
    grads = np.zeros_like(params) if grads is None else grads
    if work is None:
        work = np.full(layout.train_workspace_size(table, batch_size), np.nan, params.dtype)
    problem = _engine.Problem(kernels, table, loss, loss_param, alpha)
    opt = _engine.OptimizerState(state, step)
    loss_sum, penalty_sum, nonfinite = _engine.train_steps(
        problem, params, opt, optimizer, cfg, X, Y, w, np.asarray(perm, np.int64),
        batch_size, grads, work, sums)
    return loss_sum, penalty_sum, opt.step, nonfinite


def network(sizes, dtype, seed=0, activation="tanh"):
    return layout.init_params(table_of(sizes), activation, np.random.RandomState(seed), dtype)


def run_forward_backward(kernels, X, Y, w, params, sizes, acts, loss, param, alpha):
    """forward_backward of the MLP ``sizes`` whose hidden layers cycle through ``acts``."""
    grads = np.zeros_like(params)
    table = table_of(sizes, *acts)
    work = np.full(layout.forward_backward_workspace_size(table, X.shape[0]), np.nan, X.dtype)
    data, penalty = kernels.forward_backward(X, Y, w, params, table, loss, param, alpha,
                                             grads, work)
    return data, penalty, grads


# ----------------------------------------------------------------- forward_backward


@pytest.mark.parametrize("act", HIDDEN)
@pytest.mark.parametrize("loss,param,n_out,kind", LOSS_CASES, ids=LOSS_IDS)
def test_forward_backward_gradient_matches_central_differences(kernels, loss, param, n_out,
                                                                kind, act, central_diff):
    sizes = [3, 4, 3, n_out]
    X, Y, w = make_data(7, 3, n_out, kind, np.float64, seed=act)
    params = network(sizes, np.float64, seed=1)
    alpha = 0.3
    if loss == fk.ABSOLUTE_ERROR or loss == fk.HUBER:  # keep residuals away from the kinks
        Y = Y + 5.0
    act = (act, fk.TANH)  # a different activation per hidden layer
    data, penalty, grads = run_forward_backward(kernels, X, Y, w, params, sizes, act, loss,
                                                param, alpha)

    def objective(p):
        d, pen, _ = run_forward_backward(kernels, X, Y, w, p, sizes, act, loss, param, alpha)
        return (d + pen) / w.sum()

    numeric = central_diff(objective, params, 1e-5)
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)
    coefs, _ = layout.unflatten(params, table_of(sizes))
    assert penalty == pytest.approx(0.5 * alpha * sum((W**2).sum() for W in coefs), rel=1e-12)


@pytest.mark.parametrize("loss,param,n_out,kind", LOSS_CASES, ids=LOSS_IDS)
def test_forward_backward_and_forward_match_reference(kernels, reference, dtype, tol, loss,
                                                      param, n_out, kind, readonly):
    sizes = [5, 6, 4, n_out]
    X, Y, w = make_data(9, 5, n_out, kind, dtype, seed=3)
    params = network(sizes, dtype, seed=2)
    X, Y, w = readonly(X, Y, w)
    expected = run_forward_backward(reference, X, Y, w, params, sizes, (fk.RELU,), loss, param,
                                    1e-2)
    got = run_forward_backward(kernels, X, Y, w, params, sizes, (fk.RELU,), loss, param, 1e-2)
    assert got[0] == pytest.approx(expected[0], rel=tol["rtol"] * 10)
    assert got[1] == pytest.approx(expected[1], rel=tol["rtol"] * 10)
    np.testing.assert_allclose(got[2], expected[2], rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)

    raw_ref = np.empty((9, n_out), dtype)
    raw = np.full((9, n_out), np.nan, dtype)
    table = table_of(sizes, fk.TANH, fk.LOGISTIC)
    reference.forward(X, params, table, np.empty(layout.forward_workspace_size(table, 9), dtype),
                      raw_ref)
    kernels.forward(X, params, table, np.empty(layout.forward_workspace_size(table, 9), dtype),
                    raw)
    np.testing.assert_allclose(raw, raw_ref, **tol)
    # by hand with NumPy
    (W1, W2, W3), (b1, b2, b3) = layout.unflatten(params.astype(np.float64), table_of(sizes))
    x = X.astype(np.float64)
    by_hand = expit(np.tanh(x @ W1 + b1) @ W2 + b2) @ W3 + b3
    np.testing.assert_allclose(raw, by_hand, rtol=tol["rtol"] * 100, atol=tol["atol"] * 100)


# ----------------------------------------------------------------- train_epoch

OPTIMIZERS = [  # (code, config)
    (fk.SGD, config(0.05, momentum=0.9)),
    (fk.SGD_NESTEROV, config(0.05, momentum=0.9)),
    (fk.ADAM, config(0.01, beta1=0.9, beta2=0.999, eps=1e-8)),
    (fk.RMSPROP, config(0.005, momentum=0.5, beta2=0.9, eps=1e-8)),
]
OPT_IDS = ["sgd", "sgd-nesterov", "adam", "rmsprop"]


def run_epochs(kernels, X, Y, w, sizes, loss, param, opt, cfg, epochs=3, batch_size=16,
               act=fk.RELU, seed=0, params=None):
    dtype = X.dtype
    params = network(sizes, dtype, seed=seed) if params is None else params
    state = np.zeros((2, params.size), dtype)
    grads = np.zeros_like(params)
    work = np.full(layout.train_workspace_size(table_of(sizes), batch_size), np.nan, dtype)
    rs = np.random.RandomState(seed)
    step, curve = 0, []
    for _ in range(epochs):
        perm = rs.permutation(X.shape[0]).astype(np.int64)
        loss_sum, penalty_sum, step, nonfinite = epoch(
            kernels, X, Y, w, perm, batch_size, params,
            table_of(sizes, act, negative_slope=0.01), loss=loss, loss_param=param,
            alpha=1e-3, optimizer=opt, cfg=cfg, state=state, step=step, grads=grads,
            work=work)
        assert nonfinite == 0
        curve.append((loss_sum + penalty_sum) / X.shape[0])
    return params, state, step, curve


@pytest.mark.parametrize("opt,cfg", OPTIMIZERS, ids=OPT_IDS)
@pytest.mark.parametrize("loss,param,n_out,kind", LOSS_CASES, ids=LOSS_IDS)
def test_train_epoch_matches_reference_after_3_epochs(kernels, reference, dtype, loss, param,
                                                      n_out, kind, opt, cfg):
    sizes = [6, 8, 5, n_out]
    X, Y, w = make_data(50, 6, n_out, kind, dtype, seed=5)  # 50 rows: the last batch is short
    expected = run_epochs(reference, X, Y, w, sizes, loss, param, opt, cfg)
    got = run_epochs(kernels, X, Y, w, sizes, loss, param, opt, cfg)
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (1e-4, 1e-5)
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(got[1], expected[1], rtol=rtol, atol=atol)
    assert got[2] == expected[2] == 3 * 4
    np.testing.assert_allclose(got[3], expected[3], rtol=rtol)


def test_train_epoch_equals_scikit_learn_mlp(kernels):
    """Same initial weights, same shuffles, Adam: scikit-learn's MLPClassifier reaches the
    same weights and loss curve in float64."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.utils import shuffle

    X, Y, _ = make_data(120, 4, 3, "onehot", np.float64, seed=9)
    y = Y.argmax(axis=1)
    clf = MLPClassifier(hidden_layer_sizes=(7, 5), activation="tanh", batch_size=32,
                        max_iter=3, random_state=0, tol=0.0, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    sizes = [4, 7, 5, 3]
    rs = np.random.RandomState(0)
    params = layout.init_params(table_of(sizes), "tanh", rs, np.float64)
    state = np.zeros((2, params.size))
    grads = np.zeros_like(params)
    work = np.empty(layout.train_workspace_size(table_of(sizes), 32))
    w = np.ones(120)
    idx, step, curve = np.arange(120), 0, []
    for _ in range(3):
        idx = shuffle(idx, random_state=rs)  # scikit-learn reshuffles the previous order
        loss_sum, penalty_sum, step, _ = epoch(
            kernels, X, Y, w, idx, 32, params, table_of(sizes, fk.TANH),
            loss=fk.SOFTMAX_CROSS_ENTROPY, loss_param=float(np.finfo(np.float64).eps),
            alpha=1e-4, optimizer=fk.ADAM, cfg=config(0.01, beta1=0.9, beta2=0.999, eps=1e-8),
            state=state, step=step, grads=grads, work=work)
        curve.append((loss_sum + penalty_sum) / 120)
    coefs, intercepts = layout.unflatten(params, table_of(sizes))
    for got, expected in zip(coefs + intercepts, clf.coefs_ + clf.intercepts_):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(curve, clf.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("opt,cfg", OPTIMIZERS, ids=OPT_IDS)
@pytest.mark.parametrize("batches_per_call", [1, 2, 3, 100])
def test_an_epoch_in_slices_is_bit_identical_to_one_call(kernels, dtype, batches_per_call,
                                                         opt, cfg):
    """Consecutive batch-aligned slices of the permutation, carrying the step count and
    the loss sums from call to call, give exactly one call's params, optimizer state,
    step and loss sums (the engine runs long epochs this way, to serve Ctrl-C)."""
    sizes = [6, 8, 5, 3]
    X, Y, w = make_data(77, 6, 3, "onehot", dtype, seed=3)  # 77 rows: a short last batch
    B, rs = 8, np.random.RandomState(1)
    runs = []
    for sliced in (False, True):
        params = network(sizes, dtype, seed=2)
        state = np.zeros((2, params.size), dtype)
        fixed = dict(loss=fk.SOFTMAX_CROSS_ENTROPY, loss_param=1e-7, alpha=1e-3, optimizer=opt,
                     cfg=cfg, state=state)
        table = table_of(sizes, fk.TANH)
        step, sums = 5, []  # steps made before: the bias corrections count on from 6
        rs.seed(1)
        for _ in range(2):
            perm = rs.permutation(77).astype(np.int64)
            if not sliced:
                loss_sum, penalty_sum, step, _ = epoch(kernels, X, Y, w, perm, B, params, table,
                                                       step=step, **fixed)
            else:
                loss_sum = penalty_sum = 0.0
                for start in range(0, 77, batches_per_call * B):
                    loss_sum, penalty_sum, step, nonfinite = epoch(
                        kernels, X, Y, w, perm[start:start + batches_per_call * B], B, params,
                        table, step=step, sums=(loss_sum, penalty_sum), **fixed)
                    assert nonfinite == 0
            sums.append((loss_sum, penalty_sum))
        runs.append((params, state, step, sums))
    (p1, s1, t1, sums1), (p2, s2, t2, sums2) = runs
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(s1, s2)
    assert t1 == t2 == 5 + 2 * 10 and sums1 == sums2


def test_train_epoch_rejects_a_perm_index_outside_the_rows(kernels):
    sizes = [2, 3, 1]
    X, Y, w = make_data(10, 2, 1, "real", np.float64)
    params = network(sizes, np.float64)
    for bad in (10, -1):
        with pytest.raises(ValueError, match="perm"):
            epoch(kernels, X, Y, w, [0, 3, bad], 2, params, table_of(sizes, fk.TANH))


def test_engine_fit_in_many_slices_equals_the_fit_in_one_call_per_epoch(monkeypatch):
    """The estimator's fit with every epoch cut into one-batch calls equals the default
    (one call per epoch here), bit for bit: weights, loss curve, t_."""
    from fastnn import MLPClassifier, _engine

    X, Y, _ = make_data(300, 5, 3, "onehot", np.float64, seed=4)
    y = Y.argmax(axis=1)
    fits = []
    for per_call_flops in (_engine.SLICE_FLOPS, 1.0):
        monkeypatch.setattr(_engine, "SLICE_FLOPS", per_call_flops)
        assert (_engine.batches_per_call(table_of([5, 16, 3]), 32) == 1) == (per_call_flops == 1.0)
        clf = MLPClassifier(hidden_layer_sizes=(16,), batch_size=32, max_iter=4, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(clf.fit(X, y))
    one, sliced = fits
    for a, b in zip(one.coefs_ + one.intercepts_, sliced.coefs_ + sliced.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert one.loss_curve_ == sliced.loss_curve_ and one.t_ == sliced.t_


@pytest.mark.parametrize("n", [1, 2, 7, 200, 1797])
def test_engine_shuffle_equals_scikit_learn_shuffle(n):
    """The engine's epoch reshuffle draws what sklearn.utils.shuffle draws, epoch after
    epoch, so fits see scikit-learn's mini-batches (and leave rs in the same state)."""
    from sklearn.utils import shuffle

    from fastnn._engine import shuffle_indices

    ours, theirs = np.random.RandomState(n), np.random.RandomState(n)
    idx_ours = idx_theirs = np.arange(n, dtype=np.int64)
    for _ in range(4):
        idx_ours = shuffle_indices(idx_ours, ours)
        idx_theirs = shuffle(idx_theirs, random_state=theirs)
        np.testing.assert_array_equal(idx_ours, idx_theirs)
        assert idx_ours.dtype == np.int64
    assert ours.randint(10**9) == theirs.randint(10**9)


def test_train_epoch_stops_on_non_finite_loss_before_updating(kernels):
    sizes = [3, 4, 1]
    X, Y, w = make_data(40, 3, 1, "count", np.float64, seed=1)
    X *= 1e3
    params = network(sizes, np.float64) * 50
    before = params.copy()
    state = np.zeros((2, params.size))
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point here
        loss_sum, penalty_sum, step, nonfinite = epoch(
            kernels, X, Y, w, np.arange(40), 10, params, table_of(sizes, fk.RELU),
            loss=fk.POISSON, state=state)
    assert nonfinite == 1 and step == 0 and loss_sum == 0.0
    np.testing.assert_array_equal(params, before)


def test_train_epoch_skips_batches_of_zero_weight(kernels):
    sizes = [2, 3, 1]
    X, Y, w = make_data(20, 2, 1, "real", np.float64, seed=2)
    w[:10] = 0.0
    p_all = network(sizes, np.float64)
    p_half = p_all.copy()
    table = table_of(sizes, fk.TANH)
    _, _, step_all, _ = epoch(kernels, X, Y, w, np.arange(20), 10, p_all, table)
    _, _, step_half, _ = epoch(kernels, X[10:].copy(), Y[10:].copy(), w[10:].copy(),
                               np.arange(10), 10, p_half, table)
    assert step_all == step_half == 1
    np.testing.assert_allclose(p_all, p_half, rtol=1e-14)


def test_numba_train_epoch_allocates_nothing_per_batch():
    """The Numba runtime's allocation count over an epoch does not grow with the number of
    batches (the same data in 2 batches or in 40)."""
    pytest.importorskip("numba", reason="numba not installed")
    from numba.core.runtime import _nrt_python, rtsys

    from fastnn._backends import get_kernels

    kernels = get_kernels("numba")
    sizes = [5, 16, 3]
    X, Y, w = make_data(400, 5, 3, "onehot", np.float64)
    def allocations(batch_size):
        params = network(sizes, np.float64)
        table = table_of(sizes, fk.RELU)
        fixed = dict(loss=fk.SOFTMAX_CROSS_ENTROPY, loss_param=1e-16, alpha=1e-4,
                     optimizer=fk.ADAM, cfg=config(0.01, beta1=0.9, beta2=0.999, eps=1e-8),
                     state=np.zeros((2, params.size)), grads=np.zeros_like(params),
                     work=np.empty(layout.train_workspace_size(table, batch_size)))
        args = (kernels, X, Y, w, np.arange(400), batch_size, params, table)
        epoch(*args, **fixed)  # compile
        _nrt_python.memsys_enable_stats()
        try:
            before = rtsys.get_allocation_stats()
            epoch(*args, **fixed)
            after = rtsys.get_allocation_stats()
        finally:
            _nrt_python.memsys_disable_stats()
        return after.alloc - before.alloc

    # the same count for 40 batches as for 2: only the arguments' wrappers, none per batch
    assert allocations(10) == allocations(200) < 20


def test_forward_backward_drives_scipy_lbfgs_like_scikit_learn(kernels):
    """forward_backward is the full-batch objective for L-BFGS: from scikit-learn's initial
    weights, scipy's L-BFGS-B on it reaches scikit-learn's lbfgs solution."""
    from scipy.optimize import minimize
    from sklearn.neural_network import MLPRegressor

    # one output: scikit-learn's squared loss divides by n_outputs but its gradient does not
    X, Y, _ = make_data(80, 3, 1, "real", np.float64, seed=4)
    reg = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", solver="lbfgs",
                       max_iter=15, random_state=0, alpha=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, Y.ravel())
    sizes = [3, 6, 1]
    table = table_of(sizes, fk.TANH)
    w = np.ones(80)
    work = np.empty(layout.forward_backward_workspace_size(table, 80))

    def objective(p):
        grads = np.empty_like(p)
        data, penalty = kernels.forward_backward(X, Y, w, p, table, fk.SQUARED_ERROR, 0.0, 1e-3,
                                                 grads, work)
        return (data + penalty) / 80, grads

    p0 = layout.init_params(table_of(sizes), "tanh", np.random.RandomState(0), np.float64)
    result = minimize(objective, p0, method="L-BFGS-B", jac=True,
                      options={"maxiter": 15, "maxfun": 15000, "gtol": 1e-4})
    coefs, intercepts = layout.unflatten(result.x, table_of(sizes))
    assert result.nit == reg.n_iter_
    for got, expected in zip(coefs + intercepts, reg.coefs_ + reg.intercepts_):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_cython_epoch_loop_holds_no_gil_and_allocates_nothing():
    """Source-level proof for the Cython epoch: the loop is a ``noexcept nogil`` function
    (Cython refuses Python objects there at compile time), and no allocator is called in
    it or in the shared cores it inlines; train.pyx's mallocs are the per-call
    scratches (softmax rows; the conv layers' thread buffers; train_epoch_many's and
    forward_many's per-model tables), made before the nogil blocks."""
    import re
    from pathlib import Path

    import fastnn.kernels as package

    folder = Path(package.__file__).parent / "cython"
    train = (folder / "train.pyx").read_text()
    loop = re.search(r"cdef int _train_epoch_rows\((.*?)\n\)(.*?):\n", train, re.S)
    assert loop and "noexcept nogil" in loop.group(2)
    allocators = re.compile(r"\b(malloc|calloc|realloc|PyMem_\w+|PyObject_Malloc)\s*\(")
    for pxd in folder.glob("*.pxd"):
        assert not allocators.search(pxd.read_text()), pxd.name
    calls = [m.start() for m in allocators.finditer(train)]
    scratches = [re.search(r"cdef double\* _scratch\(.*?\n\n\n", train, re.S),
                 re.search(r"cdef int _conv_buffers\(.*?\n\n\n", train, re.S),
                 # train_epoch_many's per-model tables, before its nogil block
                 re.search(r"def _train_epoch_many\(.*?\n        with _blas", train, re.S),
                 re.search(r"def _forward_many\(.*?\n        with _blas", train, re.S)]
    assert len(calls) == 7
    for call in calls:
        assert any(scratch.start() < call < scratch.end() for scratch in scratches), call
    for body in re.findall(r"\n    with nogil:\n((?:        .*\n|\n)+)", train):
        assert "_scratch" not in body and "_conv_buffers" not in body
        assert not allocators.search(body)


def test_numba_training_kernels_release_the_gil():
    pytest.importorskip("numba", reason="numba not installed")
    from fastnn._backends import get_kernels

    kernels = get_kernels("numba")
    for name in ("forward", "forward_backward", "train_epoch"):
        assert getattr(kernels, name).targetoptions.get("nogil") is True, name
