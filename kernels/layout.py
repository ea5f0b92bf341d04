"""The layer table: a network's layers turned, once, into one int64 row each.

This is the only module that computes layout. A row holds a layer's op, its activation,
its input and output shapes (per sample, C x H x W: PyTorch's order; a dense layer is
C features x 1 x 1), where its weights and bias sit in the flat parameter buffer and
where its output (activations, and the deltas of the same shape) sits in a workspace
row. Everything else (the parameter count, the workspace lengths of ``forward``,
``forward_backward`` and ``train_epoch``, the ``coefs_`` / ``intercepts_`` views, the
initial weights) is read off the table here.

The flat buffer holds the layers in order, weights (row-major, ``n_in x n_out``) before
bias: ``[W_0, b_0, W_1, b_1, ...]``. Workspaces hold, per row of data, the layers'
outputs one after the other (``OUT_OFF`` is a layer's offset in that run); the kernels'
workspaces are, for ``rows`` rows,

    forward:          outputs of the hidden layers                (rows x OUT_OFF[-1])
    forward_backward: loss (rows) | outputs (rows x width) | deltas (rows x width)
    train_epoch:      X_batch (B x n_in) | Y_batch (B x n_out) | w_batch (B) |
                      forward_backward's for B rows

with ``width`` the sum of every layer's output size (``OUT_OFF[-1] + N_OUT[-1]``).

Dropout is not a row of its own: like an activation, it fuses into the layer whose
output it drops (``DROP``, that layer's dropout probability, applied in training only;
:class:`Dropout` in a layer list sets it on the layer before). Its masks take no memory:
the kernels hash (seed, step, layer, unit) for them, forward and backward
(``reference.dropout_``).

Three ops: ``DENSE``; ``CONV2D``, a 2-D cross-correlation with zero padding and stride
(PyTorch's Conv2d: weights (OUT_C, IN_C, KH, KW) in the flat buffer, row-major, then the
bias (OUT_C)); ``MAXPOOL2D`` (PyTorch's MaxPool2d, floor mode, implicit -inf padding; no
parameters: ``W_LEN = B_LEN = 0``). ``KH, KW, SH, SW, PH, PW`` hold a conv or pool
layer's kernel, stride and padding (0 on dense rows). The output of a conv or pool layer
is OUT_C x OUT_H x OUT_W per sample, OUT_H = (IN_H + 2 PH - KH) // SH + 1, so Flatten
is no row at all: a dense layer reads the same N_IN values. A pool layer keeps no argmax:
its backward finds it again in the input, which the workspace keeps anyway (the same
scan, so the same ties as PyTorch's: the first maximum, a NaN wins). The compiled
backends lower one sample's conv input to columns (im2col) for one GEMM: the workspaces
end with ``conv_scratch_size(table)`` elements for that (0 without conv layers).

Adding an op means a spec, a branch in :func:`build_table` filling the same columns
(and new ones it needs), and one kernel per implementation.
"""

from typing import NamedTuple

import numpy as np

from . import SOFTMAX

# Ops (column OP).
DENSE, CONV2D, MAXPOOL2D = range(3)
OPS = {"dense": DENSE, "conv2d": CONV2D, "maxpool2d": MAXPOOL2D}

# Columns of a row. Shapes are per sample; offsets count elements of the dtype.
(
    OP,  # op code
    ACT,  # activation code applied to the layer's output (fastnn.kernels.ACTIVATIONS)
    ACT_PARAM,  # the activation's float64 parameter (leaky ReLU's slope), by its bits
    IN_C, IN_H, IN_W,  # input shape
    OUT_C, OUT_H, OUT_W,  # output shape
    N_IN,  # IN_C * IN_H * IN_W
    N_OUT,  # OUT_C * OUT_H * OUT_W
    W_OFF, W_LEN,  # weights in the flat parameter buffer
    B_OFF, B_LEN,  # bias in the flat parameter buffer
    OUT_OFF,  # the layer's output (and its delta) in a workspace row
    DROP,  # the float64 probability, by its bits, that training drops an output unit
    KH, KW,  # conv / pool: kernel height and width
    SH, SW,  # stride
    PH, PW,  # padding (zeros for conv, -inf for pool) on each side
    N_COLUMNS,
) = range(24)

COLUMNS = ("OP", "ACT", "ACT_PARAM", "IN_C", "IN_H", "IN_W", "OUT_C", "OUT_H", "OUT_W", "N_IN", "N_OUT",
           "W_OFF", "W_LEN", "B_OFF", "B_LEN", "OUT_OFF", "DROP", "KH", "KW", "SH", "SW", "PH",
           "PW")


class Dense(NamedTuple):
    """A dense layer ``z = f(a @ W + b)``: ``W`` is (n_in, n_out), ``f`` the activation
    code ``activation`` (with ``negative_slope`` for leaky ReLU)."""

    n_in: int
    n_out: int
    activation: int
    negative_slope: float = 0.0
    dropout: float = 0.0  # probability that training drops an output unit (inverted dropout)


class Conv2d(NamedTuple):
    """A 2-D convolution (cross-correlation, as PyTorch's) of a C x H x W input:
    ``z[f, i, j] = act(b[f] + sum_{c, u, v} W[f, c, u, v] x[c, i SH + u - PH, j SW + v - PW])``
    (x zero outside the image). ``kernel``, ``stride`` and ``padding`` are (height,
    width) pairs."""

    in_shape: tuple  # (C, H, W)
    out_channels: int
    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    activation: int = 0
    negative_slope: float = 0.0


class MaxPool2d(NamedTuple):
    """2-D max pooling of a C x H x W input, floor mode, -inf outside the image:
    ``z[c, i, j] = act(max_{u, v} x[c, i SH + u - PH, j SW + v - PW])``."""

    in_shape: tuple  # (C, H, W)
    kernel: tuple
    stride: tuple
    padding: tuple = (0, 0)
    activation: int = 0
    negative_slope: float = 0.0


class Dropout(NamedTuple):
    """Inverted dropout of the previous layer's outputs in training (identity in
    prediction): each unit is zeroed with probability ``p`` and the kept ones scaled by
    1 / (1 - p). Fused into that layer's row (``DROP``)."""

    p: float = 0.5


def act_param(table, l):
    """Layer ``l``'s activation parameter: the float64 whose bits ``ACT_PARAM`` holds."""
    return float(table[l, ACT_PARAM:ACT_PARAM + 1].view(np.float64)[0])


def drop_p(table, l):
    """Layer ``l``'s dropout probability: the float64 whose bits ``DROP`` holds."""
    return float(table[l, DROP:DROP + 1].view(np.float64)[0])


def has_dropout(table):
    """Whether training drops units of any layer."""
    return bool(np.any(table[:, DROP] != 0))


def build_table(layers):
    """The int64 table of ``layers`` (a sequence of layer specs: :class:`Dense`,
    :class:`Conv2d`, :class:`MaxPool2d`; a :class:`Dropout` sets the dropout of the dense
    layer before it), shape (n_layers, N_COLUMNS). Raises ValueError naming the first
    layer whose input does not match the previous layer's output (a layer reads the
    previous output's values in C x H x W order, so only their number must match),
    whose size is not positive, whose kernel is larger than its padded input, and a
    dropout probability outside [0, 1), on the output layer, on a softmax layer, on a
    layer that is not dense or is followed by one that is not, or before any layer."""
    fused = []
    for layer in layers:
        if isinstance(layer, Dropout):
            if not fused:
                raise ValueError(f"{layer!r} must follow a layer whose outputs it drops")
            if not isinstance(fused[-1], Dense):
                raise ValueError(f"{layer!r} after {fused[-1]!r}: dropout is supported "
                                 "after dense layers only")
            fused[-1] = fused[-1]._replace(dropout=layer.p)
        else:
            fused.append(layer)
    layers = fused
    table = np.zeros((len(layers), N_COLUMNS), dtype=np.int64)
    p = out = 0
    for l, layer in enumerate(layers):
        row = table[l]
        if isinstance(layer, Dense):
            _dense_row(l, layer, row)
            _check_dropout(l, layer, last=l == len(layers) - 1)
            if layer.dropout and not isinstance(layers[l + 1], Dense):
                raise ValueError(f"layer {l} ({layer}): dropout is supported before dense "
                                 f"layers only, and layer {l + 1} is {layers[l + 1]!r}")
        elif isinstance(layer, (Conv2d, MaxPool2d)):
            _window_row(l, layer, row)
        else:
            raise ValueError(f"layer {l}: unknown layer spec {layer!r}")
        if l and row[N_IN] != table[l - 1, N_OUT]:
            raise ValueError(f"layer {l} ({layer}) takes {row[N_IN]} inputs, but layer "
                             f"{l - 1} gives {table[l - 1, N_OUT]}")
        row[ACT] = layer.activation
        row[ACT_PARAM] = np.float64(layer.negative_slope).view(np.int64)
        row[W_OFF] = p
        row[B_OFF] = p + row[W_LEN]
        row[OUT_OFF] = out
        p = row[B_OFF] + row[B_LEN]
        out += row[N_OUT]
    return table


def _dense_row(l, layer, row):
    if layer.n_in < 1 or layer.n_out < 1:
        raise ValueError(f"layer {l} ({layer}): sizes must be at least 1")
    row[OP] = DENSE
    row[DROP] = np.float64(layer.dropout).view(np.int64)
    row[[IN_C, IN_H, IN_W, N_IN]] = layer.n_in, 1, 1, layer.n_in
    row[[OUT_C, OUT_H, OUT_W, N_OUT]] = layer.n_out, 1, 1, layer.n_out
    row[W_LEN], row[B_LEN] = layer.n_in * layer.n_out, layer.n_out


def _pair(l, layer, name, value, least):
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= least
                                 for v in pair):
        raise ValueError(f"layer {l} ({layer}): {name} must be two integers of at least "
                         f"{least}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _window_row(l, layer, row):
    """A conv or pool row: its window, shapes and parameter lengths."""
    conv = isinstance(layer, Conv2d)
    shape = tuple(layer.in_shape)
    if len(shape) != 3 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in shape):
        raise ValueError(f"layer {l} ({layer}): in_shape must be (C, H, W), each at least 1")
    c, h, w = (int(v) for v in shape)
    kh, kw = _pair(l, layer, "kernel", layer.kernel, 1)
    sh, sw = _pair(l, layer, "stride", layer.stride, 1)
    ph, pw = _pair(l, layer, "padding", layer.padding, 0)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f"layer {l} ({layer}): its {kh}x{kw} kernel is larger than its "
                         f"padded {h + 2 * ph}x{w + 2 * pw} input")
    if conv:
        f = int(layer.out_channels)
        if f < 1:
            raise ValueError(f"layer {l} ({layer}): out_channels must be at least 1")
    else:
        f = c
        if 2 * ph > kh or 2 * pw > kw:  # PyTorch's rule: a window never lies in padding only
            raise ValueError(f"layer {l} ({layer}): padding must be at most half the "
                             f"kernel size")
    if layer.activation == SOFTMAX:
        raise ValueError(f"layer {l} ({layer}): softmax is for dense layers")
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    row[OP] = CONV2D if conv else MAXPOOL2D
    row[[IN_C, IN_H, IN_W, N_IN]] = c, h, w, c * h * w
    row[[OUT_C, OUT_H, OUT_W, N_OUT]] = f, oh, ow, f * oh * ow
    row[[KH, KW, SH, SW, PH, PW]] = kh, kw, sh, sw, ph, pw
    row[W_LEN], row[B_LEN] = (f * c * kh * kw, f) if conv else (0, 0)


def _check_dropout(l, layer, last):
    p = layer.dropout
    if not (isinstance(p, (int, float, np.integer, np.floating)) and 0.0 <= p < 1.0):
        raise ValueError(f"layer {l} ({layer}): dropout must be in [0, 1), got {p!r}")
    if p and last:
        raise ValueError(f"layer {l} ({layer}): the output layer cannot drop units (its "
                         "outputs are the loss's input)")
    if p and layer.activation == SOFTMAX:
        raise ValueError(f"layer {l} ({layer}): dropout after a softmax is not supported "
                         "(its gradient couples the row's units)")


def dense_table(layer_sizes, hidden_acts, negative_slope=0.0, output_act=0, dropout=0.0):
    """The table of a multilayer perceptron ``layer_sizes = [n_features, hidden...,
    n_outputs]`` whose hidden layers apply ``hidden_acts`` (one code each; leaky ReLU
    with ``negative_slope``) and ``dropout`` (one probability for every hidden layer, or
    one each), and whose output layer ``output_act`` (identity: the loss fuses the
    output activation)."""
    sizes = [int(s) for s in layer_sizes]
    acts = [int(a) for a in hidden_acts] + [int(output_act)]
    if len(acts) != len(sizes) - 1:
        raise ValueError(f"{len(sizes) - 2} hidden layers need as many activations, got "
                         f"{len(acts) - 1}")
    drops = [dropout] * (len(sizes) - 2) if np.ndim(dropout) == 0 else list(dropout)
    if len(drops) != len(sizes) - 2:
        raise ValueError(f"{len(sizes) - 2} hidden layers need as many dropout "
                         f"probabilities, got {len(drops)}")
    drops = [float(d) for d in drops] + [0.0]
    return build_table([Dense(a, b, f, float(negative_slope), d)
                        for a, b, f, d in zip(sizes[:-1], sizes[1:], acts, drops)])


# ----------------------------------------------------------------- read off the table


def with_all_columns(table):
    """``table`` with the columns added since it was built (pickled by an older fastnn;
    columns are only ever appended, and a new one's 0 means what the older table did)."""
    if table.shape[1] >= N_COLUMNS:
        return table
    return np.hstack([table, np.zeros((len(table), N_COLUMNS - table.shape[1]), np.int64)])



def hidden_acts(table):
    """The activation codes of every layer but the last (int64)."""
    return np.ascontiguousarray(table[:-1, ACT], dtype=np.int64)


def layer_sizes(table):
    """[n_in of the first layer, n_out of every layer]: an MLP's ``layer_sizes``."""
    return [int(table[0, N_IN])] + [int(n) for n in table[:, N_OUT]]


def n_params(table):
    """Length of the flat parameter buffer."""
    return int(table[-1, B_OFF] + table[-1, B_LEN])


def width(table):
    """Outputs per row of all layers together: a workspace region's row."""
    return int(table[-1, OUT_OFF] + table[-1, N_OUT])


def conv_scratch_size(table):
    """Elements of the compiled backends' im2col scratch at the end of every workspace:
    the largest conv layer's columns of one sample, IN_C KH KW x OUT_H OUT_W (0 without
    conv layers)."""
    conv = table[table[:, OP] == CONV2D]
    return int(max((r[IN_C] * r[KH] * r[KW] * r[OUT_H] * r[OUT_W] for r in conv), default=0))


def forward_workspace_size(table, rows):
    """Length of ``forward``'s workspace for ``rows`` rows: the hidden layers' outputs,
    then the conv scratch."""
    return int(rows * table[-1, OUT_OFF]) + conv_scratch_size(table)


def forward_many_workspace_size(table, rows):
    """Length of each model's row of ``forward_many``'s workspace for up to ``rows`` rows:
    its rows of X gathered, then ``forward``'s workspace."""
    return int(rows * table[0, N_IN]) + forward_workspace_size(table, rows)


def forward_backward_workspace_size(table, rows):
    """Length of ``forward_backward``'s workspace: loss, outputs and deltas per row, then
    the conv scratch."""
    return int(rows * (1 + 2 * width(table))) + conv_scratch_size(table)


def train_workspace_size(table, batch_size):
    """Length of ``train_epoch``'s workspace for batches of ``batch_size`` rows."""
    gathered = table[0, N_IN] + table[-1, N_OUT] + 1  # X_batch, Y_batch, w_batch
    return int(batch_size * gathered + forward_backward_workspace_size(table, batch_size))


def weight_shape(row):
    """The shape of a layer's weights: (N_IN, N_OUT) dense, (OUT_C, IN_C, KH, KW) conv,
    (0,) pool."""
    if row[OP] == DENSE:
        return int(row[N_IN]), int(row[N_OUT])
    if row[OP] == CONV2D:
        return int(row[OUT_C]), int(row[IN_C]), int(row[KH]), int(row[KW])
    return (0,)


def unflatten(flat, table):
    """Views ``(coefs, intercepts)`` of the flat buffer, one of each per layer: ``W`` in
    :func:`weight_shape` and ``b`` (OUT_C dense and conv, 0 pool)."""
    coefs = [flat[r[W_OFF]:r[W_OFF] + r[W_LEN]].reshape(weight_shape(r)) for r in table]
    return coefs, [flat[r[B_OFF]:r[B_OFF] + r[B_LEN]] for r in table]


def init_params(table, activation, random_state, dtype):
    """Glorot-uniform initialisation, drawn exactly as scikit-learn's MLP does.

    Every weight and bias is uniform in [-r, r], r = sqrt(f / (fan_in + fan_out)), with
    f = 2 for the logistic activation and 6 otherwise (a conv layer's fans are its
    channels times its kernel's size, as Keras's glorot_uniform; pool layers have none); layers drawn in order, weights
    before biases, from ``random_state`` (a np.random.RandomState). ``activation`` is one
    name for every layer, or a list with one name per layer.
    """
    names = [activation] * len(table) if isinstance(activation, str) else activation
    flat = np.empty(n_params(table), dtype=dtype)
    for row, W, b, name in zip(table, *unflatten(flat, table), names):
        if not b.size:
            continue  # a pool layer has no parameters
        fans = sum(W.shape) if W.ndim == 2 else (W.shape[0] + W.shape[1]) * W[0, 0].size
        bound = np.sqrt((2.0 if name == "logistic" else 6.0) / fans)
        W[...] = random_state.uniform(-bound, bound, W.shape)
        b[...] = random_state.uniform(-bound, bound, b.shape)
    return flat
