"""fastnn.kernels: the compiled layer.

Three implementations expose the same function names and signatures:
``fastnn.kernels.reference`` (NumPy, the readable spec), ``fastnn.kernels.numba`` and
``fastnn.kernels.cython``. Outputs go into caller-provided arrays (``*_out``); a trailing
``_`` means the function updates its first array arguments in place.

Activations are passed to kernels as the integer codes below; the Cython ``.pxd`` repeats
them as an enum and a test checks the two agree.
"""

IDENTITY, LOGISTIC, TANH, RELU, LEAKY_RELU, SOFTMAX = range(6)

ACTIVATIONS = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}

# Every kernel, by the module of the numba/cython implementation that holds it.
KERNELS = {
    "dense": (
        "activation",
        "activation_grad_",
        "dense_forward",
        "dense_backward",
        "dense_backward_delta",
    ),
    "loss": (
        "half_squared_error_loss_gradient",
        "absolute_error_loss_gradient",
        "huber_loss_gradient",
        "poisson_loss_gradient",
        "binary_log_loss_gradient",
        "binary_log_loss_proba_gradient",
        "softmax_cross_entropy_loss_gradient",
    ),
    "optim": (
        "sgd_step_",
        "sgd_velocity_step_",
        "rmsprop_step_",
        "adam_step_",
    ),
}
