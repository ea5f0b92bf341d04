"""The flat parameter buffer by layer sizes: a shim over fastnn.kernels.layout (where
the layout is computed) for callers that still describe a network by its layer sizes
(bench/workloads.py); it goes when the kernels take the layer table."""

from .kernels import layout


def _table(layer_sizes):
    return layout.dense_table(layer_sizes, [0] * (len(layer_sizes) - 2))


def init_params(layer_sizes, activation, random_state, dtype):
    """``layout.init_params`` for the network ``layer_sizes``."""
    return layout.init_params(_table(layer_sizes), activation, random_state, dtype)


def train_workspace_size(layer_sizes, batch_size):
    """``layout.train_workspace_size`` for the network ``layer_sizes``."""
    return layout.train_workspace_size(_table(layer_sizes), batch_size)
