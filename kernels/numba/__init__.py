"""fastnn.kernels.numba: the Numba implementation of every fastnn kernel.

Same names, signatures and semantics as ``fastnn.kernels.reference`` (the specification);
the functions are ``numba.njit`` dispatchers (flags in ``_config``), compiled on first use
for each combination of dtypes and read-only inputs and cached on disk. Importing this
package imports numba but compiles nothing.
"""

# Numba's np.dot calls scipy's BLAS: load it now, so that threadpoolctl limits set after
# importing this backend reach it (a library loaded later escapes an active limit).
import scipy.linalg.cython_blas  # noqa: F401, E402

from .. import KERNELS
from .conv import (
    conv2d_backward, conv2d_backward_delta, conv2d_forward, maxpool2d_backward_delta,
    maxpool2d_forward,
)
from .dense import (
    activation, activation_grad_, dense_backward, dense_backward_delta, dense_forward, dropout_,
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
