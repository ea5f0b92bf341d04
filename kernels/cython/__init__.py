"""Cython kernels: the compiled twins of fastnn.kernels.reference.

Same names and signatures as the reference (see ``fastnn.kernels.KERNELS``); the
extensions are built by setup.py from conv.pyx, dense.pyx, loss.pyx, optim.pyx and
train.pyx; the math they share is in the header-only ``.pxd`` files (_conv, _dense, _loss,
_optim). The codes of the ``.pxd`` enums are exposed as
``fastnn.kernels.cython.dense.ACTIVATION_CODES`` and ``fastnn.kernels.cython.train``'s
``LOSS_CODES`` / ``OPTIMIZER_CODES`` / ``OP_CODES``.
"""

from .. import KERNELS
from .conv import (
    conv2d_backward,
    conv2d_backward_delta,
    conv2d_forward,
    maxpool2d_backward_delta,
    maxpool2d_forward,
)
from .dense import (
    activation,
    activation_grad_,
    dense_backward,
    dense_backward_delta,
    dense_forward,
    dropout_,
)
from .loss import (
    absolute_error_loss_gradient,
    binary_log_loss_gradient,
    binary_log_loss_proba_gradient,
    half_squared_error_loss_gradient,
    huber_loss_gradient,
    poisson_loss_gradient,
    quantile_loss_gradient,
    softmax_cross_entropy_loss_gradient,
)
from .optim import adam_step_, rmsprop_step_, sgd_step_, sgd_velocity_step_
from .train import forward, forward_backward, forward_many, train_epoch, train_epoch_many

__all__ = [name for names in KERNELS.values() for name in names]
