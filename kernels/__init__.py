"""fastnn.kernels: the compiled layer.

Three implementations expose the same function names and signatures:
``fastnn.kernels.reference`` (NumPy, the readable spec), ``fastnn.kernels.numba`` and
``fastnn.kernels.cython``. Outputs go into caller-provided arrays (``*_out``); a trailing
``_`` means the function updates its first array arguments in place.

Every implementation checks its arguments the same way (``fastnn.kernels._checks``: one
table of argument types; wrong arrays raise ValueError, wrong kinds TypeError, each
naming the argument). Activations are passed to kernels as the integer codes below; the Cython ``.pxd`` repeats
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

# Losses of the training kernels (output activation fused): code -> loss kernel.
SQUARED_ERROR, ABSOLUTE_ERROR, HUBER, POISSON, BINARY_LOG_LOSS, SOFTMAX_CROSS_ENTROPY = range(6)
QUANTILE = 6

LOSSES = {
    "squared_error": SQUARED_ERROR,  # identity output, half squared error
    "absolute_error": ABSOLUTE_ERROR,  # identity output
    "huber": HUBER,  # identity output, loss_param = delta
    "poisson": POISSON,  # exp output
    "binary_log_loss": BINARY_LOG_LOSS,  # logistic output(s), loss_param = eps
    "softmax_cross_entropy": SOFTMAX_CROSS_ENTROPY,  # softmax output, loss_param = eps
    "quantile": QUANTILE,  # identity output, loss_param = the quantile
}

# Loss code -> (its loss kernel, whether the kernel takes loss_param): one table for the
# reference's training loop and the engine.
LOSS_KERNELS = {
    SQUARED_ERROR: ("half_squared_error_loss_gradient", False),
    ABSOLUTE_ERROR: ("absolute_error_loss_gradient", False),
    HUBER: ("huber_loss_gradient", True),
    POISSON: ("poisson_loss_gradient", False),
    BINARY_LOG_LOSS: ("binary_log_loss_gradient", True),
    SOFTMAX_CROSS_ENTROPY: ("softmax_cross_entropy_loss_gradient", True),
    QUANTILE: ("quantile_loss_gradient", True),
}

# Optimizers of train_epoch, with scikit-learn's conventions.
SGD, SGD_NESTEROV, ADAM, RMSPROP = range(4)

OPTIMIZERS = {"sgd": SGD, "sgd_nesterov": SGD_NESTEROV, "adam": ADAM, "rmsprop": RMSPROP}

# train_epoch's optimizer config: a float64 array, one meaning per slot (an optimizer
# reads the slots it uses): learning rate; momentum (SGD, RMSprop); Adam's first-moment
# decay; the squared-gradient average's decay (Adam's second moment, RMSprop's); epsilon.
LR, MOMENTUM, BETA1, BETA2, EPSILON = range(5)
CONFIG = ("LR", "MOMENTUM", "BETA1", "BETA2", "EPSILON")
N_CONFIG = len(CONFIG)

# Every kernel, by the module of the numba/cython implementation that holds it.
KERNELS = {
    "dense": (
        "activation",
        "activation_grad_",
        "dense_forward",
        "dense_backward",
        "dense_backward_delta",
        "dropout_",
    ),
    "conv": (
        "conv2d_forward",
        "conv2d_backward",
        "conv2d_backward_delta",
        "maxpool2d_forward",
        "maxpool2d_backward_delta",
    ),
    "loss": (
        "half_squared_error_loss_gradient",
        "absolute_error_loss_gradient",
        "huber_loss_gradient",
        "poisson_loss_gradient",
        "binary_log_loss_gradient",
        "binary_log_loss_proba_gradient",
        "softmax_cross_entropy_loss_gradient",
        "quantile_loss_gradient",
    ),
    "optim": (
        "sgd_step_",
        "sgd_velocity_step_",
        "rmsprop_step_",
        "adam_step_",
    ),
    "train": (
        "forward",
        "forward_many",
        "forward_backward",
        "train_epoch",
        "train_epoch_many",
    ),
}
