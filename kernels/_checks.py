"""The argument types of every kernel: one table, checked the same way by the three
implementations (the memory-safety boundary of the compiled ones, with their own shape
checks).

Every array argument is a NumPy array of a fixed rank, C-contiguous; the float arrays of
one call (``in``: read, may be read-only; ``out``: written, so writeable) share one
dtype, float32 or float64; ``int64`` and ``float64`` arrays (the layer table and the
permutation, train_epoch's config) have that dtype whatever the data's (``int64+``,
``float64+``: written, so writeable). Scalars are
``int`` (codes, counts: a Python or NumPy integer), ``real`` (an integer or a float) or
``flag`` (a bool or an integer).

A wrong dtype, rank, contiguity or writeability raises ValueError (as NumPy's ``out=``
and Cython's buffers do); a value that is not an array, or a scalar of the wrong kind,
raises TypeError. The message names the argument. Who checks, and when:

- the reference: :func:`checked` wraps every kernel (each call);
- Numba: the kernels' dispatcher checks the argument *types* (:class:`Array` and the
  scalar kinds, as Numba types them) before compiling or loading a signature, so a call
  with already-compiled types costs nothing (``fastnn.kernels.numba._config``);
- Cython: the memoryviews refuse bad arrays themselves; when a call fails, the wrapper
  asks :func:`check_arguments` which argument it was and raises that instead.

This module imports nothing but NumPy (``import fastnn`` imports neither numba nor the
extensions).
"""

import functools
from typing import NamedTuple

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_LOSS = "y_true:in:2 raw:in:2 sample_weight:in:1 {}loss_out:out:1 gradient_out:out:2"

# kernel -> "name:kind[:rank] ..." in signature order (kinds: see the module docstring)
_SIGNATURES = {
    "activation": "x:in:2 act:int negative_slope:real out:out:2",
    "activation_grad_": "a:in:2 act:int negative_slope:real delta:out:2",
    "dense_forward": "a:in:2 W:in:2 b:in:1 act:int negative_slope:real z_out:out:2",
    "dense_backward": "a_prev:in:2 delta:in:2 dW_out:out:2 db_out:out:1",
    "dense_backward_delta": "delta:in:2 W:in:2 a_prev:in:2 act_prev:int negative_slope:real "
                            "delta_prev_out:out:2",
    "dropout_": "x:out:2 p:real seed:int step:int layer:int",
    "conv2d_forward": "x:in:4 W:in:4 b:in:1 stride_h:int stride_w:int pad_h:int pad_w:int "
                      "act:int negative_slope:real z_out:out:4",
    "conv2d_backward": "x:in:4 delta:in:4 stride_h:int stride_w:int pad_h:int pad_w:int "
                       "dW_out:out:4 db_out:out:1",
    "conv2d_backward_delta": "delta:in:4 W:in:4 x:in:4 stride_h:int stride_w:int pad_h:int "
                             "pad_w:int act_prev:int negative_slope:real "
                             "delta_prev_out:out:4",
    "maxpool2d_forward": "x:in:4 kernel_h:int kernel_w:int stride_h:int stride_w:int "
                         "pad_h:int pad_w:int z_out:out:4",
    "maxpool2d_backward_delta": "delta:in:4 x:in:4 kernel_h:int kernel_w:int stride_h:int "
                                "stride_w:int pad_h:int pad_w:int act_prev:int "
                                "negative_slope:real delta_prev_out:out:4",
    "half_squared_error_loss_gradient": _LOSS.format(""),
    "absolute_error_loss_gradient": _LOSS.format(""),
    "huber_loss_gradient": _LOSS.format("delta:real "),
    "poisson_loss_gradient": _LOSS.format(""),
    "binary_log_loss_gradient": _LOSS.format("eps:real "),
    "binary_log_loss_proba_gradient": _LOSS.format("eps:real ").replace("raw:", "proba:"),
    "softmax_cross_entropy_loss_gradient": _LOSS.format("eps:real "),
    "quantile_loss_gradient": _LOSS.format("quantile:real "),
    "sgd_step_": "params:out:1 grads:in:1 momentum_buf:out:1 lr:real momentum:real "
                 "dampening:real nesterov:flag weight_decay:real first_step:flag",
    "sgd_velocity_step_": "params:out:1 grads:in:1 velocity:out:1 lr:real momentum:real "
                          "nesterov:flag",
    "rmsprop_step_": "params:out:1 grads:in:1 square_avg:out:1 grad_avg:out:1 "
                     "momentum_buf:out:1 lr:real alpha:real eps:real weight_decay:real "
                     "momentum:real centered:flag correction:real",
    "adam_step_": "params:out:1 grads:in:1 exp_avg:out:1 exp_avg_sq:out:1 lr:real "
                  "beta1:real beta2:real weight_decay:real decoupled_weight_decay:flag "
                  "c1:real c2:real eps_in:real eps_out:real",
    "forward": "X:in:2 params:in:1 table:int64:2 work:out:1 raw_out:out:2",
    "forward_many": "X:in:2 perm:int64:2 counts:int64:1 params:in:2 table:int64:2 "
                    "work:out:2 raw_out:out:3",
    "forward_backward": "X:in:2 Y:in:2 sample_weight:in:1 params:in:1 table:int64:2 "
                        "loss:int loss_param:real alpha:real grads_out:out:1 work:out:1 "
                        "seed:int step:int",
    "train_epoch": "X:in:2 Y:in:2 sample_weight:in:1 perm:int64:1 batch_size:int "
                   "params:out:1 table:int64:2 loss:int loss_param:real alpha:real "
                   "optimizer:int config:float64:1 state:out:2 step:int grads:out:1 "
                   "work:out:1 loss_sum:real penalty_sum:real seed:int",
    "train_epoch_many": "X:in:2 Y:in:2 sample_weight:in:2 perm:int64:2 counts:int64:1 "
                        "batch_size:int64:1 params:out:2 table:int64:2 loss:int "
                        "loss_param:float64:1 alpha:float64:1 optimizer:int config:float64:2 "
                        "state:out:3 step:int64+:1 grads:out:2 work:out:2 sums:float64+:2 "
                        "seed:int64:1 active:int64:1 nonfinite_out:int64+:1",
}

# kernel -> ((name, kind, rank or 0 for a scalar), ...)
SIGNATURES = {
    kernel: tuple((name, kind, int(rank[0]) if rank else 0)
                  for name, kind, *rank in (arg.split(":") for arg in spec.split()))
    for kernel, spec in _SIGNATURES.items()
}


class Array(NamedTuple):
    """What the checks need to know of an array argument (a value's or a Numba type's)."""

    dtype: np.dtype
    ndim: int
    c_contiguous: bool
    writeable: bool


# descriptions of scalars; anything else is described by its type's name
INTEGER, FLOAT = "int", "float"
_ACCEPTS = {"int": (INTEGER,), "real": (INTEGER, FLOAT), "flag": (INTEGER,)}
_EXPECTED = {"int": "an integer", "real": "a real number", "flag": "a bool"}


def describe(value):
    """An :class:`Array`, INTEGER, FLOAT, or the name of the value's type."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        return Array(value.dtype, value.ndim, flags.c_contiguous, flags.writeable)
    if isinstance(value, (int, np.integer, np.bool_)):  # bool is an int
        return INTEGER
    if isinstance(value, (float, np.floating)):
        return FLOAT
    return type(value).__name__


def check_described(kernel, described):
    """Raise for the first argument whose description does not fit ``kernel``'s table
    row; None in ``described`` skips an argument (a default left out)."""
    dtype = first = None
    for (name, kind, ndim), d in zip(SIGNATURES[kernel], described):
        if d is None:
            continue
        if not ndim:
            if d not in _ACCEPTS[kind]:
                raise TypeError(f"{name} must be {_EXPECTED[kind]}, got {d}")
            continue
        if not isinstance(d, Array):
            raise TypeError(f"{name} must be a NumPy array, got {d}")
        if kind in ("in", "out"):
            if d.dtype not in _FLOATS:
                raise ValueError(f"{name} has dtype {d.dtype}, expected float32 or float64")
            if dtype is None:
                dtype, first = d.dtype, name
            elif d.dtype != dtype:
                raise ValueError(f"{name} has dtype {d.dtype} but {first} has {dtype}: the "
                                 f"float arrays of one call share one dtype")
        elif d.dtype != kind.rstrip("+"):
            raise ValueError(f"{name} has dtype {d.dtype}, expected {kind.rstrip('+')}")
        if d.ndim != ndim:
            raise ValueError(f"{name} is {d.ndim}-D, expected {ndim}-D")
        if not d.c_contiguous:
            raise ValueError(f"{name} is not C-contiguous")
        if (kind == "out" or kind.endswith("+")) and not d.writeable:
            raise ValueError(f"{name} is read-only, but the kernel writes it")


def check_arguments(kernel, args, kwargs=None):
    """Raise TypeError or ValueError naming the first argument of a call
    ``kernel(*args, **kwargs)`` of the wrong type (see the module docstring)."""
    described = [describe(value) for value in args]
    if kwargs:
        described += [describe(kwargs[name]) if name in kwargs else None
                      for name, _, _ in SIGNATURES[kernel][len(args):]]
    check_described(kernel, described)


def argument_error(kernel, args):
    """The error check_arguments raises for ``kernel(*args)``, or None (the Cython
    kernels ask, after a call failed, whether an argument of a wrong type caused it)."""
    try:
        check_arguments(kernel, args)
    except (TypeError, ValueError) as exc:
        return exc
    return None


def checked(kernel):
    """``kernel`` with its arguments checked on every call (the reference's kernels, and
    Numba's when NUMBA_DISABLE_JIT=1 makes them plain functions)."""
    name = kernel.__name__

    @functools.wraps(kernel)
    def checked_kernel(*args, **kwargs):
        check_arguments(name, args, kwargs)
        return kernel(*args, **kwargs)

    return checked_kernel
