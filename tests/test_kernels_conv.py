"""Convolution and max-pooling kernels (conv2d_forward, conv2d_backward,
conv2d_backward_delta, maxpool2d_forward, maxpool2d_backward_delta) and the conv and pool
rows of the layer table in forward, forward_backward and train_epoch: every backend
against the reference, the reference against PyTorch (when installed) and against
4th-order central differences, padding, stride, non-square kernels and images, 1x1
images, single channels, batches of one, and the errors.
"""

import numpy as np
import pytest

from fastnn.kernels import (
    ADAM, CONFIG, IDENTITY, LEAKY_RELU, LOGISTIC, LOSSES, N_CONFIG, RELU, SOFTMAX, TANH,
    layout,
)
from fastnn.kernels import reference as ref

SLOPE = 0.2
ACTS = [IDENTITY, LOGISTIC, TANH, RELU, LEAKY_RELU]
ACT_IDS = ["identity", "logistic", "tanh", "relu", "leaky_relu"]

# (n, C, H, W, F, kh, kw, sh, sw, ph, pw): square and non-square kernels, images and
# paddings, strides, a kernel as large as the padded input, a 1x1 image, one channel,
# a batch of one.
CONV_CASES = [
    (2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 0),
    (3, 2, 5, 5, 3, 5, 5, 1, 1, 2, 2),
    (1, 1, 1, 1, 2, 1, 1, 1, 1, 0, 0),
    (2, 1, 6, 9, 5, 3, 4, 3, 2, 0, 1),
    (1, 4, 4, 4, 1, 6, 6, 1, 1, 1, 1),
]
CONV_IDS = ["7x6k3x2s2p1", "5x5k5p2", "1x1", "6x9k3x4s3x2", "4x4k6p1"]

# (n, C, H, W, kh, kw, sh, sw, ph, pw)
POOL_CASES = [
    (2, 3, 8, 6, 2, 2, 2, 2, 0, 0),
    (2, 2, 5, 5, 3, 3, 2, 1, 1, 1),
    (1, 1, 4, 7, 3, 2, 1, 2, 1, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 0),
    (3, 2, 7, 7, 3, 3, 3, 3, 0, 0),  # floor mode: the last row and column unused
    (2, 2, 7, 5, 2, 2, 2, 2, 0, 0),  # the 2x2 fast paths, an odd row and column unused
]
POOL_IDS = ["8x6k2", "5x5k3s2x1p1", "4x7k3x2s1x2p1", "1x1", "7x7k3floor", "7x5k2floor"]


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _conv_arrays(rng, dtype, case):
    n, C, H, W, F, kh, kw, sh, sw, ph, pw = case
    x = rng.normal(size=(n, C, H, W)).astype(dtype)
    Wt = rng.normal(scale=0.5, size=(F, C, kh, kw)).astype(dtype)
    b = rng.normal(size=F).astype(dtype)
    delta = rng.normal(size=(n, F, _out(H, kh, sh, ph), _out(W, kw, sw, pw))).astype(dtype)
    return x, Wt, b, delta, (sh, sw, ph, pw)


def _positive(x):
    """x moved away from 0 (relu's kink) and into (0, 1) for the logistic's derivative."""
    return (0.1 + 0.8 / (1 + np.exp(-x))).astype(x.dtype)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_conv2d_matches_reference(kernels, dtype, tol, rng, case, act):
    x, W, b, delta, window = _conv_arrays(rng, dtype, case)
    z, z_ref = np.empty_like(delta), np.empty_like(delta)
    kernels.conv2d_forward(x, W, b, *window, act, SLOPE, z)
    ref.conv2d_forward(x, W, b, *window, act, SLOPE, z_ref)
    np.testing.assert_allclose(z, z_ref, **tol)

    dW, db, dW_ref, db_ref = np.empty_like(W), np.empty_like(b), np.empty_like(W), np.empty_like(b)
    kernels.conv2d_backward(x, delta, *window, dW, db)
    ref.conv2d_backward(x, delta, *window, dW_ref, db_ref)
    np.testing.assert_allclose(dW, dW_ref, **tol)
    np.testing.assert_allclose(db, db_ref, **tol)

    a_prev = _positive(x) if act in (LOGISTIC, TANH) else x
    dx, dx_ref = np.full_like(x, np.nan), np.full_like(x, np.nan)  # every element written
    kernels.conv2d_backward_delta(delta, W, a_prev, *window, act, SLOPE, dx)
    ref.conv2d_backward_delta(delta, W, a_prev, *window, act, SLOPE, dx_ref)
    np.testing.assert_allclose(dx, dx_ref, **tol)


def test_conv2d_read_only_inputs(kernels, readonly, rng):
    x, W, b, delta, window = _conv_arrays(rng, np.float64, CONV_CASES[0])
    z, z_ref = np.empty_like(delta), np.empty_like(delta)
    ref.conv2d_forward(x, W, b, *window, RELU, 0.0, z_ref)
    kernels.conv2d_forward(*readonly(x, W, b), *window, RELU, 0.0, z)
    np.testing.assert_allclose(z, z_ref, rtol=1e-12)


def _pool_input(rng, dtype, case, nan=False):
    """Small integers: ties in most windows, resolved as PyTorch does (the first maximum)."""
    n, C, H, W = case[:4]
    x = rng.integers(-2, 3, size=(n, C, H, W)).astype(dtype)
    if nan:
        x[0, 0, 0, 0] = x[-1, -1, -1, -1] = np.nan
    return x


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("nan", [False, True], ids=["", "nan"])
def test_maxpool2d_bit_identical_to_reference(kernels, dtype, rng, case, nan):
    """No arithmetic but the backward's additions, in the reference's order: equal bits."""
    n, C, H, W, kh, kw, sh, sw, ph, pw = case
    x = _pool_input(rng, dtype, case, nan)
    shape = (n, C, _out(H, kh, sh, ph), _out(W, kw, sw, pw))
    z, z_ref = np.empty(shape, dtype), np.empty(shape, dtype)
    kernels.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw, z)
    ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw, z_ref)
    np.testing.assert_array_equal(z, z_ref)
    delta = rng.normal(size=shape).astype(dtype)
    dx, dx_ref = np.full_like(x, np.nan), np.full_like(x, np.nan)
    kernels.maxpool2d_backward_delta(delta, x, kh, kw, sh, sw, ph, pw, IDENTITY, 0.0, dx)
    ref.maxpool2d_backward_delta(delta, x, kh, kw, sh, sw, ph, pw, IDENTITY, 0.0, dx_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_maxpool2d_hand_values(kernels):
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [2.0, 3.0, -1.0, 4.0],
                    [0.0, 0.0, 5.0, 5.0]]]])
    z = np.empty((1, 1, 1, 2))
    kernels.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, z)  # floor: the third row unused
    np.testing.assert_array_equal(z, [[[[3.0, 4.0]]]])
    dx = np.empty_like(x)
    kernels.maxpool2d_backward_delta(np.array([[[[10.0, 20.0]]]]), x, 2, 2, 2, 2, 0, 0,
                                     IDENTITY, 0.0, dx)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 10.0  # the first of the tied 3s, row by row
    expected[0, 0, 1, 3] = 20.0
    np.testing.assert_array_equal(dx, expected)
    # overlapping windows (stride 1) add their deltas at a shared maximum
    z = np.empty((1, 1, 2, 3))
    kernels.maxpool2d_forward(x, 2, 2, 1, 1, 0, 0, z)
    np.testing.assert_array_equal(z, [[[[3.0, 3.0, 4.0], [3.0, 5.0, 5.0]]]])
    kernels.maxpool2d_backward_delta(np.ones((1, 1, 2, 3)), x, 2, 2, 1, 1, 0, 0, IDENTITY,
                                     0.0, dx)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 2.0
    expected[0, 0, 1, 1] = 1.0
    expected[0, 0, 1, 3] = 1.0
    expected[0, 0, 2, 2] = 2.0
    np.testing.assert_array_equal(dx, expected)


def test_conv2d_hand_values(kernels):
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    W = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    z = np.empty((1, 1, 2, 2))
    kernels.conv2d_forward(x, W, np.array([0.5]), 1, 1, 0, 0, IDENTITY, 0.0, z)
    np.testing.assert_array_equal(z, np.full((1, 1, 2, 2), -3.5))  # x[i,j] - x[i+1,j+1]
    z = np.empty((1, 1, 2, 2))
    kernels.conv2d_forward(x, W, np.array([0.0]), 2, 2, 1, 1, IDENTITY, 0.0, z)
    # padded x: z[i, j] = xp[2i, 2j] - xp[2i + 1, 2j + 1]
    np.testing.assert_array_equal(z, [[[[0.0, -2.0], [-6.0, 4.0 - 8.0]]]])


@pytest.mark.parametrize("kernel", ["conv", "pool"])
def test_kernel_larger_than_padded_input_is_a_clear_error(kernels, kernel):
    x = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="larger than the padded input"):
        if kernel == "conv":
            kernels.conv2d_forward(x, np.zeros((1, 1, 4, 4)), np.zeros(1), 1, 1, 0, 0,
                                   IDENTITY, 0.0, np.zeros((1, 1, 1, 1)))
        else:
            kernels.maxpool2d_forward(x, 4, 4, 1, 1, 0, 0, np.zeros((1, 1, 1, 1)))


def test_conv2d_wrong_output_shape_is_a_clear_error(kernels):
    x, W, b, delta, window = _conv_arrays(np.random.default_rng(0), np.float64, CONV_CASES[0])
    with pytest.raises(ValueError, match="z_out"):
        kernels.conv2d_forward(x, W, b, *window, IDENTITY, 0.0, np.empty((2, 4, 4, 6)))
    with pytest.raises(ValueError, match="stride"):
        kernels.conv2d_forward(x, W, b, 0, 1, 0, 0, IDENTITY, 0.0, np.empty_like(delta))
    with pytest.raises(ValueError):
        kernels.conv2d_forward(x, W, b, *window, SOFTMAX, 0.0, np.empty_like(delta))
    with pytest.raises(ValueError, match="4-D"):
        kernels.conv2d_forward(x[0], W, b, *window, IDENTITY, 0.0, np.empty_like(delta))


# ----------------------------------------------------------------- the reference itself


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_conv2d_reference_central_differences(rng, central_diff, act):
    """d sum(G * conv2d_forward(x, W, b)) / d (W, b, x) from the backward kernels, with x
    the output of an activation (so the delta kernel's f' is checked too)."""
    n, C, H, W_, F, kh, kw, sh, sw, ph, pw = 2, 2, 4, 5, 3, 3, 2, 2, 1, 1, 1
    window = (sh, sw, ph, pw)
    x = rng.uniform(0.1, 0.9, size=(n, C, H, W_))
    W = rng.normal(size=(F, C, kh, kw))
    b = rng.normal(size=F)
    G = rng.normal(size=(n, F, _out(H, kh, sh, ph), _out(W_, kw, sw, pw)))

    def loss(x_, W_, b_):
        z = np.empty_like(G)
        ref.conv2d_forward(x_, W_, b_, *window, IDENTITY, 0.0, z)
        return np.sum(G * z)

    dW, db = np.empty_like(W), np.empty_like(b)
    ref.conv2d_backward(x, G, *window, dW, db)
    np.testing.assert_allclose(dW, central_diff(lambda v: loss(x, v, b), W, 1e-3), rtol=1e-8)
    np.testing.assert_allclose(db, central_diff(lambda v: loss(x, W, v), b, 1e-3), rtol=1e-8)
    z_prev = rng.normal(size=x.shape) + np.sign(rng.normal(size=x.shape)) * 0.2
    a_prev = np.empty_like(z_prev)
    ref.activation(z_prev.reshape(n, -1), act, SLOPE, a_prev.reshape(n, -1))
    dz = np.empty_like(x)
    ref.conv2d_backward_delta(G, W, a_prev, *window, act, SLOPE, dz)

    def loss_of_z_prev(z_):
        a_ = np.empty_like(z_)
        ref.activation(z_.reshape(n, -1), act, SLOPE, a_.reshape(n, -1))
        return loss(a_, W, b)

    np.testing.assert_allclose(dz, central_diff(loss_of_z_prev, z_prev, 1e-4), rtol=1e-7,
                               atol=1e-9)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_reference_matches_torch(rng, case):
    torch = pytest.importorskip("torch", reason="torch not installed")
    x, W, b, delta, (sh, sw, ph, pw) = _conv_arrays(rng, np.float64, case)
    xt, Wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, W, b))
    zt = torch.nn.functional.conv2d(xt, Wt, bt, (sh, sw), (ph, pw))
    zt.backward(torch.tensor(delta))
    z = np.empty_like(delta)
    ref.conv2d_forward(x, W, b, sh, sw, ph, pw, IDENTITY, 0.0, z)
    dW, db, dx = np.empty_like(W), np.empty_like(b), np.empty_like(x)
    ref.conv2d_backward(x, delta, sh, sw, ph, pw, dW, db)
    ref.conv2d_backward_delta(delta, W, x, sh, sw, ph, pw, IDENTITY, 0.0, dx)
    for got, want in ((z, zt), (dW, Wt.grad), (db, bt.grad), (dx, xt.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_maxpool2d_reference_matches_torch(rng, case):
    """Ties and NaN resolved as PyTorch's CPU kernel: the same values and gradients."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    n, C, H, W, kh, kw, sh, sw, ph, pw = case
    x = _pool_input(rng, np.float64, case, nan=True)
    xt = torch.tensor(x, requires_grad=True)
    zt = torch.nn.functional.max_pool2d(xt, (kh, kw), (sh, sw), (ph, pw))
    delta = rng.normal(size=tuple(zt.shape))
    zt.backward(torch.tensor(delta))
    z = np.empty(tuple(zt.shape))
    ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw, z)
    dx = np.empty_like(x)
    ref.maxpool2d_backward_delta(delta, x, kh, kw, sh, sw, ph, pw, IDENTITY, 0.0, dx)
    np.testing.assert_array_equal(z, zt.detach().numpy())
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-15, atol=0)


# ----------------------------------------------------------------- the layer table


def _small_cnn(act=RELU):
    """conv (padding) -> pool -> conv (stride, non-square) -> dense -> dense."""
    return layout.build_table([
        layout.Conv2d((3, 8, 8), 4, (3, 3), (1, 1), (1, 1), act, SLOPE),
        layout.MaxPool2d((4, 8, 8), (2, 2), (2, 2)),
        layout.Conv2d((4, 4, 4), 5, (3, 2), (2, 1), (0, 1), TANH),
        layout.MaxPool2d((5, 1, 5), (1, 2), (1, 2), activation=LOGISTIC),
        layout.Dense(10, 6, LEAKY_RELU, SLOPE),
        layout.Dense(6, 3, IDENTITY),
    ])


def test_build_table_conv_rows():
    table = _small_cnn()
    assert table.shape == (6, layout.N_COLUMNS)
    np.testing.assert_array_equal(table[:, layout.OP], [1, 2, 1, 2, 0, 0])
    np.testing.assert_array_equal(table[:, layout.N_OUT], [256, 64, 25, 10, 6, 3])
    np.testing.assert_array_equal(table[:, layout.W_LEN], [108, 0, 120, 0, 60, 18])
    np.testing.assert_array_equal(table[:, layout.B_LEN], [4, 0, 5, 0, 6, 3])
    assert layout.n_params(table) == 108 + 4 + 120 + 5 + 60 + 6 + 18 + 3
    assert layout.conv_scratch_size(table) == max(3 * 9 * 64, 4 * 6 * 5)
    coefs, intercepts = layout.unflatten(np.arange(layout.n_params(table), dtype=float), table)
    assert [W.shape for W in coefs] == [(4, 3, 3, 3), (0,), (5, 4, 3, 2), (0,), (10, 6), (6, 3)]
    assert coefs[2][0, 0, 0, 0] == 112  # after conv 0's weights and bias


@pytest.mark.parametrize("layers, match", [
    ([layout.Conv2d((3, 32, 32), 64, (5, 5), padding=(2, 2)),
      layout.MaxPool2d((64, 32, 32), (2, 2), (2, 2)), layout.Dense(1000, 64, 0)],
     "takes 1000 inputs, but layer 1 gives 16384"),
    ([layout.Conv2d((1, 3, 3), 2, (5, 5))], "5x5 kernel is larger than its padded 3x3"),
    ([layout.MaxPool2d((1, 4, 4), (2, 2), (2, 2), padding=(2, 2))], "at most half"),
    ([layout.Conv2d((1, 4, 4), 2, (2, 2), stride=(0, 1))], "stride"),
    ([layout.Conv2d((1, 4, 4), 2, (2, 2), activation=SOFTMAX)], "softmax"),
    ([layout.Dense(4, 16, RELU, dropout=0.5), layout.Conv2d((1, 4, 4), 2, (2, 2))],
     "dropout is supported before dense"),
    ([layout.Conv2d((1, 4, 4), 2, (2, 2)), layout.Dropout(0.5), layout.Dense(18, 1, 0)],
     "after dense layers only"),
])
def test_build_table_errors(layers, match):
    with pytest.raises(ValueError, match=match):
        layout.build_table(layers)


def _problem(table, n, dtype, rng):
    params = rng.normal(scale=0.4, size=layout.n_params(table)).astype(dtype)
    X = rng.normal(size=(n, int(table[0, layout.N_IN]))).astype(dtype)
    k = int(table[-1, layout.N_OUT])
    Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    w = rng.uniform(0.5, 1.5, n).astype(dtype)
    return params, X, Y, w


@pytest.mark.parametrize("n", [1, 7])
def test_forward_and_forward_backward_conv_table(kernels, dtype, tol, rng, n):
    table = _small_cnn()
    params, X, Y, w = _problem(table, n, dtype, rng)
    raw, raw_ref = np.empty_like(Y), np.empty_like(Y)
    kernels.forward(X, params, table, np.empty(layout.forward_workspace_size(table, n), dtype), raw)
    ref.forward(X, params, table, np.empty(layout.forward_workspace_size(table, n), dtype), raw_ref)
    np.testing.assert_allclose(raw, raw_ref, **tol)
    loss = LOSSES["softmax_cross_entropy"]
    size = layout.forward_backward_workspace_size(table, n)
    g, g_ref = np.empty_like(params), np.empty_like(params)
    got = kernels.forward_backward(X, Y, w, params, table, loss, 1e-7, 0.01, g,
                                   np.empty(size, dtype))
    want = ref.forward_backward(X, Y, w, params, table, loss, 1e-7, 0.01, g_ref,
                                np.empty(size, dtype))
    np.testing.assert_allclose(got, want, rtol=tol["rtol"])
    np.testing.assert_allclose(g, g_ref, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


def test_forward_backward_conv_table_central_differences(kernels, rng):
    """The whole network's gradient (conv, pool, dense, the L2 term) against finite
    differences of the backend's own data loss + penalty."""
    table = _small_cnn(act=TANH)
    n = 3
    params, X, Y, w = _problem(table, n, np.float64, rng)
    loss, alpha = LOSSES["softmax_cross_entropy"], 0.1
    work = np.empty(layout.forward_backward_workspace_size(table, n))
    g = np.empty_like(params)

    def objective(p):
        data_loss, penalty = kernels.forward_backward(X, Y, w, p, table, loss, 1e-12, alpha,
                                                      np.empty_like(p), work)
        return (data_loss + penalty) / w.sum()

    kernels.forward_backward(X, Y, w, params, table, loss, 1e-12, alpha, g, work)
    h = 1e-4
    for i in rng.choice(params.size, 40, replace=False):
        p = [params.copy() for _ in range(4)]
        for q, step in zip(p, (-2, -1, 1, 2)):
            q[i] += step * h
        fd = (objective(p[0]) - 8 * objective(p[1]) + 8 * objective(p[2])
              - objective(p[3])) / (12 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-9, err_msg=f"param {i}")


def test_train_epoch_conv_table(kernels, dtype, tol, rng):
    table = _small_cnn()
    n, B = 10, 4
    params, X, Y, w = _problem(table, n, dtype, rng)
    config = np.zeros(N_CONFIG)
    config[[CONFIG.index("LR"), CONFIG.index("BETA1"), CONFIG.index("BETA2"),
            CONFIG.index("EPSILON")]] = 1e-2, 0.9, 0.999, 1e-8
    perm = rng.permutation(n).astype(np.int64)
    results = []
    for impl in (kernels, ref):
        p = params.copy()
        state = np.zeros((2, p.size), dtype)
        work = np.empty(layout.train_workspace_size(table, B), dtype)
        out = impl.train_epoch(X, Y, w, perm, B, p, table, LOSSES["softmax_cross_entropy"],
                               1e-7, 1e-3, ADAM, config, state, 0, np.empty_like(p), work)
        results.append((p, out))
    (p, out), (p_ref, out_ref) = results
    assert out[2:] == out_ref[2:] == (3, 0)
    np.testing.assert_allclose(out[:2], out_ref[:2], rtol=tol["rtol"] * 10)
    np.testing.assert_allclose(p, p_ref, rtol=tol["rtol"] * 100, atol=tol["atol"] * 100)


def test_conv_table_workspace_too_small_is_an_error(kernels, rng):
    table = _small_cnn()
    params, X, Y, w = _problem(table, 2, np.float64, rng)
    short = np.empty(layout.forward_workspace_size(table, 2) - 1)
    with pytest.raises(ValueError, match="work"):
        kernels.forward(X, params, table, short, np.empty_like(Y))


def test_inconsistent_conv_row_is_refused(kernels, rng):
    """The compiled cores trust the table: a conv row whose output size does not follow
    from its window is refused before any memory is touched."""
    table = _small_cnn()
    params, X, Y, w = _problem(table, 2, np.float64, rng)
    bad = table.copy()
    bad[0, layout.PH] = 0  # the output would be 6x6, the row says 8x8
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.forward(X, params, bad, np.empty(layout.forward_workspace_size(table, 2)),
                        np.empty_like(Y))
    bad = table.copy()
    bad[1, layout.W_LEN] = 5  # a pool row has no parameters
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.forward(X, params, bad, np.empty(layout.forward_workspace_size(table, 2)),
                        np.empty_like(Y))
