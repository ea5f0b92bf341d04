"""The training kernels' argument checks are the memory-safety boundary (Numba checks no
bounds; the Cython cores trust the table's offsets): every backend refuses the same bad
calls with the same exception type and a message naming the bad argument."""

import numpy as np
import pytest

import fastnn.kernels as fk
from fastnn.kernels import layout

SIZES = [4, 5, 3]
N, B = 10, 4


def good_call():
    """Arguments of a valid forward, forward_backward and train_epoch call."""
    table = layout.dense_table(SIZES, [fk.RELU], 0.01)
    rs = np.random.RandomState(0)
    params = layout.init_params(table, "relu", rs, np.float64)
    X = rs.normal(size=(N, SIZES[0]))
    Y = np.eye(SIZES[-1])[rs.randint(0, SIZES[-1], N)]
    cfg = np.zeros(fk.N_CONFIG)
    cfg[[fk.LR, fk.BETA1, fk.BETA2, fk.EPSILON]] = 0.01, 0.9, 0.999, 1e-8
    return {
        "forward": dict(X=X, params=params, table=table,
                        work=np.empty(layout.forward_workspace_size(table, N)),
                        raw_out=np.empty((N, SIZES[-1]))),
        "forward_backward": dict(
            X=X, Y=Y, sample_weight=np.ones(N), params=params, table=table,
            loss=fk.SOFTMAX_CROSS_ENTROPY, loss_param=1e-16, alpha=1e-4,
            grads_out=np.empty_like(params),
            work=np.empty(layout.forward_backward_workspace_size(table, N))),
        "train_epoch": dict(
            X=X, Y=Y, sample_weight=np.ones(N), perm=np.arange(N, dtype=np.int64),
            batch_size=B, params=params.copy(), table=table, loss=fk.SOFTMAX_CROSS_ENTROPY,
            loss_param=1e-16, alpha=1e-4, optimizer=fk.ADAM, config=cfg,
            state=np.zeros((2, params.size)), step=0, grads=np.empty_like(params),
            work=np.empty(layout.train_workspace_size(table, B))),
    }


def with_row(table, column, value, row=0):
    table = table.copy()
    table[row, column] = value
    return table


# (kernel, what is wrong, {argument: bad value}, a word the message must hold)
BAD_CALLS = [
    ("forward", "X columns", dict(X=np.zeros((N, 3))), "X"),
    ("forward", "raw_out shape", dict(raw_out=np.empty((N, 2))), "raw_out"),
    ("forward", "work too short", dict(work=np.empty(N * 5 - 1)), "work"),
    ("forward", "params too short", dict(params=np.zeros(10)), "params"),
    ("forward", "table columns", dict(table=np.zeros((2, 5), np.int64)), "table"),
    ("forward", "unknown op", dict(table="op 7"), "op"),
    ("forward", "unknown activation", dict(table="act 99"), "activation"),
    ("forward", "weights outside params", dict(table="w_off"), "params"),
    ("forward", "shapes that do not chain", dict(table="n_in"), "shape"),
    ("forward_backward", "Y shape", dict(Y=np.zeros((N, 2))), "Y"),
    ("forward_backward", "sample_weight length", dict(sample_weight=np.ones(N - 1)),
     "sample_weight"),
    ("forward_backward", "grads_out size", dict(grads_out=np.empty(3)), "grads_out"),
    ("forward_backward", "work too short", dict(work=np.empty(5)), "work"),
    ("forward_backward", "unknown loss", dict(loss=17), "loss"),
    ("train_epoch", "perm past the rows", dict(perm=np.array([0, N], np.int64)), "perm"),
    ("train_epoch", "negative perm", dict(perm=np.array([-1, 0], np.int64)), "perm"),
    ("train_epoch", "batch_size 0", dict(batch_size=0), "batch_size"),
    ("train_epoch", "batch_size negative", dict(batch_size=-3), "batch_size"),
    ("train_epoch", "config length", dict(config=np.zeros(3)), "config"),
    ("train_epoch", "unknown optimizer", dict(optimizer=9), "optimizer"),
    ("train_epoch", "state shape", dict(state=np.zeros((1, 3))), "state"),
    ("train_epoch", "grads size", dict(grads=np.empty(3)), "grads"),
    ("train_epoch", "work too short", dict(work=np.empty(7)), "work"),
    ("train_epoch", "unknown loss", dict(loss=-1), "loss"),
    ("train_epoch", "weights outside params", dict(table="w_off"), "params"),
]

TABLE_EDITS = {
    "op 7": (layout.OP, 7), "act 99": (layout.ACT, 99),
    "w_off": (layout.W_OFF, 10**6), "n_in": (layout.N_IN, 5),
}


@pytest.mark.parametrize("kernel,case,bad,word", BAD_CALLS, ids=[f"{c[0]}: {c[1]}" for c in BAD_CALLS])
def test_every_backend_refuses_the_bad_call_naming_the_argument(kernels, kernel, case, bad,
                                                                word):
    args = good_call()[kernel]
    getattr(kernels, kernel)(**{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                for k, v in args.items()})  # the good call runs
    for name, value in bad.items():
        if name == "table" and isinstance(value, str):
            value = with_row(args["table"], *TABLE_EDITS[value])
        args[name] = value
    with pytest.raises(ValueError, match=word):
        getattr(kernels, kernel)(*args.values())
