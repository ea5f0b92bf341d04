"""Kernel argument checks are the memory-safety boundary (Numba checks no bounds; the
Cython cores trust their pointers and the table's offsets): every backend refuses the same
bad calls with the same exception type and a message naming the bad argument.

One table, BAD_CALLS, of every kernel's bad calls, run on every backend: shapes and codes
written out by hand; the argument types (dtype, mixed dtypes, rank, contiguity,
writeability, not an array, scalars of the wrong kind) generated for every argument of
every kernel from its valid call. A wrong array raises ValueError (as NumPy's ``out=``
and Cython's buffers do), a value of the wrong kind TypeError.
"""

import inspect
import re

import numpy as np
import pytest

import fastnn.kernels as fk
from fastnn.kernels import KERNELS, _checks, layout
from fastnn.kernels import reference as ref

SIZES = [4, 5, 3]
N, B = 10, 4
N_PARAMS = layout.n_params(layout.dense_table(SIZES, [fk.RELU]))
n, n_in, n_out, P = 6, 4, 3, 20  # the single kernels: rows, layer sizes, parameters

ALL_KERNELS = [name for names in KERNELS.values() for name in names]
LOSSES = [name for name in KERNELS["loss"]]
RAW = {name: "proba" if "proba" in name else "raw" for name in LOSSES}
LOSS_PARAM = {"huber_loss_gradient": ("delta", 1.0), "quantile_loss_gradient": ("quantile", 0.5),
              "binary_log_loss_gradient": ("eps", 1e-7),
              "binary_log_loss_proba_gradient": ("eps", 1e-7),
              "softmax_cross_entropy_loss_gradient": ("eps", 1e-7)}

# What each kernel writes (so must be writeable); every other array is only read and may
# be read-only. Stated here independently of fastnn.kernels._checks.
WRITTEN = {
    "activation": {"out"}, "activation_grad_": {"delta"}, "dense_forward": {"z_out"},
    "dense_backward": {"dW_out", "db_out"}, "dense_backward_delta": {"delta_prev_out"},
    **{name: {"loss_out", "gradient_out"} for name in LOSSES},
    "sgd_step_": {"params", "momentum_buf"}, "sgd_velocity_step_": {"params", "velocity"},
    "rmsprop_step_": {"params", "square_avg", "grad_avg", "momentum_buf"},
    "adam_step_": {"params", "exp_avg", "exp_avg_sq"},
    "forward": {"work", "raw_out"}, "forward_backward": {"grads_out", "work"},
    "forward_many": {"work", "raw_out"},
    "train_epoch": {"params", "state", "grads", "work"}, "dropout_": {"x"},
    "train_epoch_many": {"params", "state", "grads", "work", "step", "sums",
                         "nonfinite_out"},
    "conv2d_forward": {"z_out"}, "conv2d_backward": {"dW_out", "db_out"},
    "conv2d_backward_delta": {"delta_prev_out"}, "maxpool2d_forward": {"z_out"},
    "maxpool2d_backward_delta": {"delta_prev_out"},
}
WINDOW = {"stride_h", "stride_w", "pad_h", "pad_w", "kernel_h", "kernel_w"}
INTEGERS = {"act", "act_prev", "loss", "optimizer", "batch_size", "step", "seed", "layer",
            *WINDOW}  # codes, counts
FLAGS = {"nesterov", "first_step", "centered", "decoupled_weight_decay"}


def good_call():
    """Arguments of a valid call of every kernel (float64; every size at least 2, so a
    strided view is not contiguous)."""
    rs = np.random.RandomState(0)
    table = layout.dense_table(SIZES, [fk.RELU], 0.01)
    params = layout.init_params(table, "relu", rs, np.float64)
    X = rs.normal(size=(N, SIZES[0]))
    Y = np.eye(SIZES[-1])[rs.randint(0, SIZES[-1], N)]
    cfg = np.zeros(fk.N_CONFIG)
    cfg[[fk.LR, fk.BETA1, fk.BETA2, fk.EPSILON]] = 0.01, 0.9, 0.999, 1e-8
    calls = {
        "forward": dict(X=X, params=params, table=table,
                        work=np.empty(layout.forward_workspace_size(table, N)),
                        raw_out=np.empty((N, SIZES[-1]))),
        "forward_many": dict(
            X=X, perm=np.array([np.arange(N), np.arange(N)[::-1]], np.int64),
            counts=np.array([N, N - 1], np.int64), params=np.array([params, params]),
            table=table, work=np.empty((2, layout.forward_many_workspace_size(table, N))),
            raw_out=np.empty((2, N, SIZES[-1]))),
        "forward_backward": dict(
            X=X, Y=Y, sample_weight=np.ones(N), params=params, table=table,
            loss=fk.SOFTMAX_CROSS_ENTROPY, loss_param=1e-16, alpha=1e-4,
            grads_out=np.empty_like(params),
            work=np.empty(layout.forward_backward_workspace_size(table, N)), seed=3, step=1),
        "train_epoch": dict(
            X=X, Y=Y, sample_weight=np.ones(N), perm=np.arange(N, dtype=np.int64),
            batch_size=B, params=params.copy(), table=table, loss=fk.SOFTMAX_CROSS_ENTROPY,
            loss_param=1e-16, alpha=1e-4, optimizer=fk.ADAM, config=cfg,
            state=np.zeros((2, params.size)), step=0, grads=np.empty_like(params),
            work=np.empty(layout.train_workspace_size(table, B)), loss_sum=0.0,
            penalty_sum=0.0, seed=3),
        "train_epoch_many": dict(
            X=X, Y=Y, sample_weight=np.ones((2, N)),
            perm=np.array([np.arange(N), np.arange(N)[::-1]], np.int64),
            counts=np.array([N, N - 1], np.int64), batch_size=np.array([B, B - 1], np.int64),
            params=np.array([params, params]), table=table, loss=fk.SOFTMAX_CROSS_ENTROPY,
            loss_param=np.array([1e-16, 1e-16]), alpha=np.array([1e-4, 1e-3]),
            optimizer=fk.ADAM, config=np.array([cfg, cfg]),
            state=np.zeros((2, 2, params.size)), step=np.array([0, 3], np.int64),
            grads=np.empty((2, params.size)),
            work=np.empty((2, layout.train_workspace_size(table, B))), sums=np.zeros((2, 2)),
            seed=np.array([3, 4], np.int64), active=np.ones(2, np.int64),
            nonfinite_out=np.zeros(2, np.int64)),
        "dropout_": dict(x=rs.normal(size=(n, n_out)), p=0.5, seed=1, step=2, layer=0),
        "activation": dict(x=rs.normal(size=(n, n_out)), act=fk.TANH, negative_slope=0.01,
                           out=np.empty((n, n_out))),
        "activation_grad_": dict(a=np.tanh(rs.normal(size=(n, n_out))), act=fk.TANH,
                                 negative_slope=0.01, delta=rs.normal(size=(n, n_out))),
        "dense_forward": dict(a=rs.normal(size=(n, n_in)), W=rs.normal(size=(n_in, n_out)),
                              b=rs.normal(size=n_out), act=fk.RELU, negative_slope=0.01,
                              z_out=np.empty((n, n_out))),
        "dense_backward": dict(a_prev=rs.normal(size=(n, n_in)),
                               delta=rs.normal(size=(n, n_out)),
                               dW_out=np.empty((n_in, n_out)), db_out=np.empty(n_out)),
        "dense_backward_delta": dict(delta=rs.normal(size=(n, n_out)),
                                     W=rs.normal(size=(n_in, n_out)),
                                     a_prev=np.tanh(rs.normal(size=(n, n_in))),
                                     act_prev=fk.TANH, negative_slope=0.01,
                                     delta_prev_out=np.empty((n, n_in))),
        "sgd_step_": dict(params=rs.normal(size=P), grads=rs.normal(size=P),
                          momentum_buf=np.zeros(P), lr=0.1, momentum=0.9, dampening=0.0,
                          nesterov=True, weight_decay=1e-4, first_step=False),
        "sgd_velocity_step_": dict(params=rs.normal(size=P), grads=rs.normal(size=P),
                                   velocity=np.zeros(P), lr=0.1, momentum=0.9,
                                   nesterov=False),
        "rmsprop_step_": dict(params=rs.normal(size=P), grads=rs.normal(size=P),
                              square_avg=np.zeros(P), grad_avg=np.zeros(P),
                              momentum_buf=np.zeros(P), lr=0.01, alpha=0.99, eps=1e-8,
                              weight_decay=0.0, momentum=0.9, centered=True, correction=1.0),
        "adam_step_": dict(params=rs.normal(size=P), grads=rs.normal(size=P),
                           exp_avg=np.zeros(P), exp_avg_sq=np.zeros(P), lr=0.01, beta1=0.9,
                           beta2=0.999, weight_decay=0.01, decoupled_weight_decay=True,
                           c1=1.0, c2=1.0, eps_in=0.0, eps_out=1e-8),
    }
    # conv: 2 images of 3 x 5 x 4, 2 filters of 3 x 2, stride (2, 1), padding (1, 0)
    # -> 2 x 3 x 3 outputs; pool 2 x 2, stride (1, 2), padding (1, 0) -> 3 x 6 x 2
    x = rs.normal(size=(2, 3, 5, 4))
    window = dict(stride_h=2, stride_w=1, pad_h=1, pad_w=0)
    pool = dict(kernel_h=2, kernel_w=2, stride_h=1, stride_w=2, pad_h=1, pad_w=0)
    calls.update({
        "conv2d_forward": dict(x=x, W=rs.normal(size=(2, 3, 3, 2)), b=rs.normal(size=2),
                               **window, act=fk.RELU, negative_slope=0.01,
                               z_out=np.empty((2, 2, 3, 3))),
        "conv2d_backward": dict(x=x, delta=rs.normal(size=(2, 2, 3, 3)), **window,
                                dW_out=np.empty((2, 3, 3, 2)), db_out=np.empty(2)),
        "conv2d_backward_delta": dict(delta=rs.normal(size=(2, 2, 3, 3)),
                                      W=rs.normal(size=(2, 3, 3, 2)), x=np.tanh(x), **window,
                                      act_prev=fk.TANH, negative_slope=0.01,
                                      delta_prev_out=np.empty_like(x)),
        "maxpool2d_forward": dict(x=x, **pool, z_out=np.empty((2, 3, 6, 2))),
        "maxpool2d_backward_delta": dict(delta=rs.normal(size=(2, 3, 6, 2)), x=x, **pool,
                                         act_prev=fk.RELU, negative_slope=0.01,
                                         delta_prev_out=np.empty_like(x)),
    })
    for name in LOSSES:
        raw = (rs.uniform(0.05, 0.95, (n, n_out)) if RAW[name] == "proba"
               else rs.normal(size=(n, n_out)))
        args = dict(y_true=np.eye(n_out)[rs.randint(0, n_out, n)], **{RAW[name]: raw},
                    sample_weight=rs.uniform(0.5, 2.0, n))
        if name in LOSS_PARAM:
            args.update([LOSS_PARAM[name]])
        calls[name] = dict(args, loss_out=np.empty(n), gradient_out=np.empty((n, n_out)))
    return calls


def with_row(table, column, value, row=0):
    table = table.copy()
    table[row, column] = value
    return table


def named(word):
    """A pattern matching ``word`` as a whole word of the message."""
    return rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])"


# --------------------------------------------------------------------------- shapes, codes
# (kernel, what is wrong, {argument: bad value}, a pattern the message must hold,
#  the exception)

TRAINING_CALLS = [
    ("forward", "X columns", dict(X=np.zeros((N, 3))), "X"),
    ("forward", "raw_out shape", dict(raw_out=np.empty((N, 2))), "raw_out"),
    ("forward", "work too short", dict(work=np.empty(N * 5 - 1)), "work"),
    ("forward", "params too short", dict(params=np.zeros(10)), "params"),
    ("forward", "table columns", dict(table=np.zeros((2, 5), np.int64)), "table"),
    ("forward", "table without rows", dict(table=np.zeros((0, layout.N_COLUMNS), np.int64)),
     "table"),
    ("forward", "unknown op", dict(table="op 7"), "op"),
    ("forward", "unknown activation", dict(table="act 99"), "activation"),
    ("forward", "weights outside params", dict(table="w_off"), "params"),
    ("forward", "weights' offset near the int64 maximum", dict(table="w_off max"), "params"),
    ("forward", "bias outside params", dict(table="b_off"), "params"),
    ("forward", "shapes that do not chain", dict(table="n_in"), "shape"),
    ("forward", "a layer wider than a BLAS int", dict(table="n_out huge"), "shape"),
    ("forward", "dropout of 1", dict(table="drop 1"), "dropout"),
    ("forward_backward", "dropout NaN", dict(table="drop nan"), "dropout"),
    ("forward_backward", "negative seed", dict(seed=-1), "seed"),
    ("forward_backward", "negative step", dict(step=-2), "step"),
    ("train_epoch", "negative seed", dict(seed=-1), "seed"),
    ("train_epoch", "dropout on the output layer", dict(table="drop last"), "dropout"),
    ("forward_backward", "X columns", dict(X=np.zeros((N, 3))), "X"),
    ("forward_backward", "Y shape", dict(Y=np.zeros((N, 2))), "Y"),
    ("forward_backward", "Y rows", dict(Y=np.zeros((N - 1, 3))), "Y"),
    ("forward_backward", "sample_weight length", dict(sample_weight=np.ones(N - 1)),
     "sample_weight"),
    ("forward_backward", "grads_out size", dict(grads_out=np.empty(3)), "grads_out"),
    ("forward_backward", "work too short", dict(work=np.empty(5)), "work"),
    ("forward_backward", "unknown loss", dict(loss=17), "loss"),
    ("forward_backward", "weights outside params", dict(table="w_off"), "params"),
    ("train_epoch", "perm past the rows", dict(perm=np.array([0, N], np.int64)), "perm"),
    ("forward_many", "perm past the rows",
     dict(perm=np.array([np.arange(1, N + 1), np.arange(N)], np.int64)), "perm"),
    ("forward_many", "counts past perm", dict(counts=np.array([N, N + 1], np.int64)),
     "counts"),
    ("forward_many", "X columns", dict(X=np.zeros((N, 3))), "X"),
    ("forward_many", "weights outside params", dict(table="w_off"), "params"),
    ("forward_many", "one raw_out for two models", dict(raw_out=np.empty((1, N, 3))),
     "raw_out"),
    ("train_epoch_many", "perm past the rows",
     dict(perm=np.array([np.arange(1, N + 1), np.arange(N)], np.int64)), "perm"),
    ("train_epoch_many", "counts past perm", dict(counts=np.array([N, N + 1], np.int64)),
     "counts"),
    ("train_epoch_many", "one alpha for two models", dict(alpha=np.zeros(1)), "alpha"),
    ("train_epoch_many", "sample_weight per row, not per model",
     dict(sample_weight=np.ones((1, N))), "sample_weight"),
    ("train_epoch_many", "batch_size 0", dict(batch_size=np.array([B, 0], np.int64)),
     "batch_size"),
    ("train_epoch_many", "dropout on the output layer", dict(table="drop last"), "dropout"),
    ("train_epoch", "negative perm", dict(perm=np.array([-1, 0], np.int64)), "perm"),
    ("train_epoch", "batch_size 0", dict(batch_size=0), "batch_size"),
    ("train_epoch", "batch_size negative", dict(batch_size=-3), "batch_size"),
    ("train_epoch", "batch_size 0, empty perm", dict(batch_size=0, perm=np.arange(0)),
     "batch_size"),
    ("train_epoch", "config length", dict(config=np.zeros(3)), "config"),
    ("train_epoch", "unknown optimizer", dict(optimizer=9), "optimizer"),
    ("train_epoch", "state shape", dict(state=np.zeros((1, 3))), "state"),
    ("train_epoch", "one state row for Adam", dict(state=np.zeros((1, N_PARAMS))), "state"),
    ("train_epoch", "grads size", dict(grads=np.empty(3)), "grads"),
    ("train_epoch", "work too short", dict(work=np.empty(7)), "work"),
    ("train_epoch", "unknown loss", dict(loss=-1), "loss"),
    ("train_epoch", "X columns", dict(X=np.zeros((N, 3))), "X"),
    ("train_epoch", "Y rows", dict(Y=np.zeros((N - 1, 3))), "Y"),
    ("train_epoch", "sample_weight length", dict(sample_weight=np.ones(N + 1)),
     "sample_weight"),
    ("train_epoch", "weights outside params", dict(table="w_off"), "params"),
]

TABLE_EDITS = {
    "op 7": (layout.OP, 7), "act 99": (layout.ACT, 99),
    "w_off": (layout.W_OFF, 10**6), "w_off max": (layout.W_OFF, 2**63 - 10),
    "b_off": (layout.B_OFF, 10**6), "n_in": (layout.N_IN, 5),
    "n_out huge": (layout.N_OUT, 2**40),
    "drop 1": (layout.DROP, np.float64(1.0).view(np.int64)),
    "drop nan": (layout.DROP, np.float64(np.nan).view(np.int64)),
    "drop last": (layout.DROP, np.float64(0.5).view(np.int64), -1),
}

SINGLE_CALLS = [
    ("activation", "out shape", dict(out=np.empty((n, n_out + 1))), "out"),
    ("activation", "unknown act", dict(act=99), "act"),
    ("activation", "negative act", dict(act=-1), "act"),
    ("activation", "unknown act, no rows",
     dict(x=np.empty((0, n_out)), out=np.empty((0, n_out)), act=6), "act"),
    ("activation_grad_", "delta shape", dict(delta=np.empty((n + 1, n_out))), "delta"),
    ("activation_grad_", "unknown act", dict(act=6), "act"),
    ("dense_forward", "W rows", dict(W=np.zeros((n_in - 1, n_out))), "W"),
    ("dense_forward", "b length", dict(b=np.zeros(n_out - 1)), "b"),
    ("dense_forward", "z_out rows", dict(z_out=np.empty((n - 1, n_out))), "z_out"),
    ("dense_forward", "z_out columns", dict(z_out=np.empty((n, n_out + 1))), "z_out"),
    ("dense_forward", "unknown act", dict(act=12), "act"),
    ("dropout_", "p of 1", dict(p=1.0), "p"),
    ("dropout_", "negative p", dict(p=-0.5), "p"),
    ("dropout_", "negative layer", dict(layer=-1), "layer"),
    ("dense_forward", "unknown act, no rows",
     dict(a=np.empty((0, n_in)), z_out=np.empty((0, n_out)), act=-2), "act"),
    ("dense_backward", "delta rows", dict(delta=np.zeros((n - 1, n_out))), "delta"),
    ("dense_backward", "dW_out shape", dict(dW_out=np.empty((n_in, n_out + 1))), "dW_out"),
    ("dense_backward", "db_out length", dict(db_out=np.empty(n_out + 1)), "db_out"),
    ("dense_backward_delta", "W columns", dict(W=np.zeros((n_in, n_out - 1))), "W"),
    ("dense_backward_delta", "a_prev shape", dict(a_prev=np.zeros((n, n_in + 1))), "a_prev"),
    ("dense_backward_delta", "delta_prev_out shape",
     dict(delta_prev_out=np.empty((n - 1, n_in))), "delta_prev_out"),
    ("dense_backward_delta", "unknown act_prev", dict(act_prev=7), "act_prev"),
    ("conv2d_forward", "W channels", dict(W=np.zeros((2, 2, 3, 2))), "W"),
    ("conv2d_forward", "b length", dict(b=np.zeros(3)), "b"),
    ("conv2d_forward", "z_out shape", dict(z_out=np.empty((2, 2, 3, 4))), "z_out"),
    ("conv2d_forward", "softmax", dict(act=fk.SOFTMAX), "act"),
    ("conv2d_forward", "stride 0", dict(stride_h=0), "stride"),
    ("conv2d_forward", "negative padding", dict(pad_w=-1), "padding"),
    ("conv2d_forward", "kernel larger than the padded input",
     dict(W=np.zeros((2, 3, 8, 2))), "kernel"),
    ("conv2d_backward", "delta shape", dict(delta=np.zeros((2, 2, 4, 3))), "delta"),
    ("conv2d_backward", "dW_out channels", dict(dW_out=np.empty((2, 4, 3, 2))), "dW_out"),
    ("conv2d_backward", "db_out length", dict(db_out=np.empty(3)), "db_out"),
    ("conv2d_backward_delta", "delta_prev_out shape",
     dict(delta_prev_out=np.empty((2, 3, 5, 5))), "delta_prev_out"),
    ("conv2d_backward_delta", "unknown act_prev", dict(act_prev=9), "act_prev"),
    ("maxpool2d_forward", "z_out shape", dict(z_out=np.empty((2, 3, 4, 2))), "z_out"),
    ("maxpool2d_forward", "padding over half the kernel", dict(pad_h=2, kernel_h=3),
     "padding"),
    ("maxpool2d_forward", "kernel larger than the input", dict(kernel_w=5), "kernel"),
    ("maxpool2d_backward_delta", "delta shape", dict(delta=np.zeros((2, 3, 5, 3))), "delta"),
    ("maxpool2d_backward_delta", "delta_prev_out shape",
     dict(delta_prev_out=np.empty((2, 3, 5, 3))), "delta_prev_out"),
    ("maxpool2d_backward_delta", "unknown act_prev", dict(act_prev=-1), "act_prev"),
    *[row for name in LOSSES for row in [
        (name, "y_true shape", dict(y_true=np.zeros((n, n_out - 1))), "y_true"),
        (name, f"{RAW[name]} shape", {RAW[name]: np.full((n, n_out + 1), 0.5)}, RAW[name]),
        (name, "sample_weight length", dict(sample_weight=np.ones(n - 1)), "sample_weight"),
        (name, "loss_out length", dict(loss_out=np.empty(n + 1)), "loss_out"),
        (name, "gradient_out shape", dict(gradient_out=np.empty((n - 1, n_out))),
         "gradient_out"),
    ]],
    *[(kernel, f"{buf} length", {buf: np.zeros(P - 1)}, buf) for kernel, bufs in [
        ("sgd_step_", ["grads", "momentum_buf"]),
        ("sgd_velocity_step_", ["grads", "velocity"]),
        ("rmsprop_step_", ["grads", "square_avg", "grad_avg", "momentum_buf"]),
        ("adam_step_", ["grads", "exp_avg", "exp_avg_sq"]),
    ] for buf in bufs],
    *[(kernel, "params shorter than its buffers", dict(params=np.zeros(P - 2)), "params")
      for kernel in KERNELS["optim"]],
]

# --------------------------------------------------------------------------- types
# Generated for every argument of every kernel from its valid value.


def _strided(a):
    """``a``'s values in a view that is not C-contiguous (every other element)."""
    return np.repeat(a, 2, axis=-1)[..., ::2]


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@np.errstate(over="ignore")  # float32 copies of never-written workspaces (np.empty)
def _type_rows():
    rows = []
    for kernel, args in good_call().items():
        first_float = True
        for name, value in args.items():
            def row(case, bad, error=ValueError):
                rows.append((kernel, f"{name} {case}", {name: bad}, name, error))

            if not isinstance(value, np.ndarray):  # a scalar
                if name in INTEGERS:
                    row("a float", float(value), TypeError)
                elif name not in FLAGS:
                    row("a string", str(value), TypeError)
                    row("None", None, TypeError)
                continue
            if value.dtype == np.int64:  # the table, perm
                row("int32", value.astype(np.int32))
                row("float64", value.astype(np.float64))
            elif name == "config":  # float64 whatever the data's dtype
                row("float32", value.astype(np.float32))
            else:  # the call's floats: float32 among float64
                n_floats = sum(isinstance(v, np.ndarray) and v.dtype == np.float64
                               for k, v in args.items() if k != "config")
                if n_floats > 1:  # a kernel of one float array takes float32 too
                    row("float32, the others float64", value.astype(np.float32))
                if first_float:
                    row("int64", value.astype(np.int64))
                    row("a list", value.tolist(), TypeError)
                    first_float = False
            row("None", None, TypeError)
            row("1-D" if value.ndim == 2 else "2-D",
                value.ravel() if value.ndim == 2 else value.reshape(1, -1))
            row("strided", _strided(value))
            if value.ndim == 2:
                row("Fortran-ordered", np.asfortranarray(value))
            if name in WRITTEN[kernel]:
                row("read-only", _readonly(value))
    return rows


BAD_CALLS = (
    [(k, case, bad, word, ValueError) for k, case, bad, word in TRAINING_CALLS]
    + [(k, case, bad, named(word), ValueError) for k, case, bad, word in SINGLE_CALLS]
    + [(k, case, bad, named(word), error) for k, case, bad, word, error in _type_rows()]
)


def _copy(args):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}


@pytest.mark.parametrize("kernel,case,bad,word,error", BAD_CALLS,
                         ids=[f"{c[0]}: {c[1]}" for c in BAD_CALLS])
def test_every_backend_refuses_the_bad_call_naming_the_argument(kernels, kernel, case, bad,
                                                                word, error):
    args = good_call()[kernel]
    getattr(kernels, kernel)(**_copy(args))  # the good call runs (and is compiled: Numba)
    for name, value in bad.items():
        if name == "table" and isinstance(value, str):
            value = with_row(args["table"], *TABLE_EDITS[value])
        args[name] = value
    with pytest.raises(Exception, match=word) as raised:
        getattr(kernels, kernel)(*args.values())
    assert type(raised.value) is error, f"{type(raised.value).__name__}: {raised.value}"


# --------------------------------------------------------------------------- what passes


def test_the_table_covers_every_kernel():
    assert {row[0] for row in BAD_CALLS} == set(ALL_KERNELS)
    assert set(good_call()) == set(ALL_KERNELS) == set(_checks.SIGNATURES)


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_checks_name_the_reference_parameters(kernel):
    """fastnn.kernels._checks describes each kernel's parameters, in order, by the names
    the reference (and so every backend) gives them; the valid calls use them too."""
    names = list(inspect.signature(getattr(ref, kernel)).parameters)
    assert [name for name, _, _ in _checks.SIGNATURES[kernel]] == names
    assert list(good_call()[kernel]) == names


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_every_backend_accepts_read_only_inputs(kernels, kernel):
    """Every array a kernel does not write may be read-only (joblib's memmaps): the checks
    refuse no more than they must."""
    args = _copy(good_call()[kernel])
    for name, value in args.items():
        if isinstance(value, np.ndarray) and name not in WRITTEN[kernel]:
            value.flags.writeable = False
    getattr(kernels, kernel)(**args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffers_an_option_leaves_unused_may_be_empty(kernels, dtype):
    """momentum_buf (no momentum) and grad_avg (not centered) are neither read nor
    written: an empty array of the dtype is accepted (one of another length is refused
    only when used, as the shape rows show)."""
    p, g, empty = np.ones(P, dtype), np.ones(P, dtype), np.empty(0, dtype)
    kernels.sgd_step_(p, g, empty, 0.1, 0.0, 0.0, False, 0.0, True)
    kernels.rmsprop_step_(p, g, np.zeros(P, dtype), empty, empty, 0.1, 0.9, 1e-8, 0.0, 0.0,
                          False, 1.0)


def test_numba_checks_types_once_per_signature_not_per_call():
    """Numba's kernels check argument types when a signature is compiled or loaded, so a
    valid call costs what it did; a bad call is refused even after valid ones compiled,
    and leaves no compiled signature behind."""
    numba = pytest.importorskip("numba", reason="numba not installed")
    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: the numba kernels run as checked Python")
    from fastnn.kernels.numba import _config, dense

    assert isinstance(dense.activation, _config.CheckedDispatcher)
    x, out = np.ones((2, 3)), np.empty((2, 3))
    dense.activation(x, fk.TANH, 0.0, out)
    before = list(dense.activation.signatures)
    with pytest.raises(ValueError, match=named("out")):
        dense.activation(x, fk.TANH, 0.0, np.asfortranarray(out))
    with pytest.raises(ValueError, match=named("x")):
        dense.activation(x.astype(np.float32), fk.TANH, 0.0, out)
    assert dense.activation.signatures == before
