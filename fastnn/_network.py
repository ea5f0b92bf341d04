"""Layer sizes, the flat parameter buffer and its initialisation.

All weights and biases live in one C-contiguous buffer laid out layer by layer as
``[W_0 (n_0 x n_1, row-major), b_0 (n_1), W_1, b_1, ...]``; ``coefs`` and ``intercepts``
are views into it, so one optimizer kernel updates the whole network.
"""

import numpy as np


def layout(layer_sizes):
    """Offsets of each layer's weights and bias in the flat buffer, and its total size:
    ``[(w_start, b_start, b_end), ...]`` (one per layer) and the buffer length."""
    spans, offset = [], 0
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        b_start = offset + fan_in * fan_out
        spans.append((offset, b_start, b_start + fan_out))
        offset = b_start + fan_out
    return spans, offset


def unflatten(flat, layer_sizes):
    """Views ``(coefs, intercepts)`` of the flat buffer, shaped (n_in, n_out) and (n_out,)."""
    spans, _ = layout(layer_sizes)
    coefs = [flat[w:b].reshape(int(n_in), int(n_out))
             for (w, b, _), n_in, n_out in zip(spans, layer_sizes[:-1], layer_sizes[1:])]
    return coefs, [flat[b:e] for _, b, e in spans]


def forward_workspace_size(layer_sizes, rows):
    """Length of the workspace of ``forward`` for ``rows`` rows (see kernels.reference)."""
    return int(rows * sum(layer_sizes[1:-1]))


def forward_backward_workspace_size(layer_sizes, rows):
    """Length of the workspace of ``forward_backward`` for ``rows`` rows."""
    return int(rows * (1 + 2 * sum(layer_sizes[1:])))


def train_workspace_size(layer_sizes, batch_size):
    """Length of the workspace of ``train_epoch`` for batches of ``batch_size`` rows."""
    n_in, n_out = layer_sizes[0], layer_sizes[-1]
    return int(batch_size * (n_in + n_out + 1)
               + forward_backward_workspace_size(layer_sizes, batch_size))


def init_params(layer_sizes, activation, random_state, dtype):
    """Glorot-uniform initialisation, drawn exactly as scikit-learn's MLP does.

    Every weight and bias is uniform in [-r, r], r = sqrt(f / (fan_in + fan_out)), with
    f = 2 for the logistic activation and 6 otherwise; layers drawn in order, weights
    before biases, from ``random_state`` (a np.random.RandomState). ``activation`` is one
    name for every layer, or a list with one name per layer.
    """
    _, size = layout(layer_sizes)
    names = [activation] * (len(layer_sizes) - 1) if isinstance(activation, str) else activation
    flat = np.empty(size, dtype=dtype)
    coefs, intercepts = unflatten(flat, layer_sizes)
    for W, b, name in zip(coefs, intercepts, names):
        bound = np.sqrt((2.0 if name == "logistic" else 6.0) / sum(W.shape))
        W[...] = random_state.uniform(-bound, bound, W.shape)
        b[...] = random_state.uniform(-bound, bound, b.shape)
    return flat
