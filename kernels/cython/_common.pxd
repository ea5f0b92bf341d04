# Shared declarations of the Cython kernels: the float type, the activation codes and the
# scalar math every module needs (tanh and the logistic are in _vmath.pxd). Declarations
# and inline functions only: cimporting this file creates no runtime import.


# float32 or float64; every array of one call shares the type, arithmetic runs in double.
ctypedef fused floating:
    float
    double


# Mirrors fastnn.kernels (IDENTITY, LOGISTIC, ...); dense.ACTIVATION_CODES exposes it so
# a test can check the two agree.
cdef enum:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    SOFTMAX = 5
    N_ACTIVATIONS = 6


cdef inline double clip(double x, double lo, double hi) noexcept nogil:
    """np.clip for one value: NaN stays NaN."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


# Data pointers of C-contiguous memoryviews for the pointer-based cores of _dense.pxd,
# _loss.pxd and _optim.pxd. An empty view gives NULL (the cores never read it then), so
# the boundscheck build never indexes past the end.

cdef inline const floating* cptr1(const floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline floating* ptr1(floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline const floating* cptr2(const floating[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline floating* ptr2(floating[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL
