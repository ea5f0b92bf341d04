"""Cython training kernels: the forward pass, one batch's loss and gradient, a whole epoch.

Same names, signatures and semantics as fastnn.kernels.reference (the full docstrings, the
flat parameter layout and the workspace layouts live there). Each call validates its
arguments once, then runs without the GIL on raw pointers: ``train_epoch`` makes every
mini-batch's gather, forward pass, fused loss-and-gradient, backward pass, L2 term and
optimizer update inside one ``nogil`` block, with no Python object, no allocation and no
memoryview operation per batch. The math is the cores of _dense.pxd, _conv.pxd,
_dropout.pxd, _loss.pxd and _optim.pxd, the same the single kernels (dense.pyx, conv.pyx,
loss.pyx, optim.pyx) run.

The layer table's rows are dense, conv or pool layers (the op of each row). The dense
layers run their column blocks on the threads. Conv and pool layers run their samples on
the threads (each sample's results do not depend on the others, nor on the thread: the
same bits): a conv lowers a sample to its im2col columns, a block of channels at a time,
in its thread's scratch (the workspace's conv scratch, its last layout.conv_scratch_size
elements, holds as many threads' as fit; the others', the padded samples and dW's
partial sums are malloc'ed once per call, never per batch: _conv_buffers). dW and db are
summed per chunk of samples (CONV_CHUNKS, fixed by the batch size alone), each chunk into
its own buffer, and the chunks' sums added in chunk order: the same bits on any number of
threads. A call with conv layers pins the BLAS to one thread (in the main thread, as the
engine does): a GEMM inside a parallel loop must never start BLAS threads.

Dropout (the table's DROP) is fused into the layers' column blocks: the forward block
masks its output after the activation (kept units unscaled), the next layer's block
scales its product by s = 1 / (1 - p), and the backward delta block masks and scales
the delta after f'. The masks are hashed from (seed, step, layer, unit) on the fly, the
same in the forward and the backward pass, whichever thread runs a block.

Each kernel is a Python-level function over a fused-type implementation (``_<name>``),
whose memoryviews refuse arrays of the wrong dtype, rank, layout or writeability; when a
call fails, the kernel raises fastnn.kernels._checks' error naming the argument instead
(the memoryviews' own messages name none), at no cost to calls that succeed.
"""

from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.limits cimport INT_MAX
from libc.math cimport isfinite, pow, sqrt
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from cython.parallel cimport prange

from _common cimport IDENTITY, N_ACTIVATIONS, SOFTMAX, cptr1, cptr2, floating, ptr1, ptr2
from _conv cimport (
    Window, bias_sum, conv_backward_sample, conv_cols_size, conv_forward_sample,
    conv_pad_size, conv_plan, conv_reduce, maxpool_backward_sample, maxpool_forward_sample,
)
from _dense cimport (
    activation_rows, block_start, column_blocks, dense_backward_cols,
    dense_backward_delta_cols, dense_forward_cols,
)
from _dropout cimport Mask, dropout_mask
from _loss cimport (
    LossParams, absolute_error, binary_log, elementwise_loss_rows, half_squared_error, huber,
    log_clip_params, poisson, quantile, softmax_cross_entropy_rows,
)
from _optim cimport adam_update, rmsprop_update, sgd_velocity_update

import contextlib
import threading

from .._checks import argument_error


cdef extern from "_openmp.h":
    int fastnn_max_threads() noexcept nogil
    int fastnn_thread_num() noexcept nogil
    int fastnn_openmp() noexcept nogil
    double fastnn_now() noexcept nogil
    ctypedef struct Pace "fastnn_pace":
        Py_ssize_t items, caller_items, backoff, serial_left
        double start, caller_done
    Pace* fastnn_thread_pace() noexcept nogil


def _openmp_threads():
    """Threads the kernels run on: OpenMP's current limit (OMP_NUM_THREADS, threadpoolctl's
    "openmp" limits), or 0 in a build without OpenMP (the serial kernels)."""
    return fastnn_max_threads() if fastnn_openmp() else 0


# The parallel loops hand out blocks dynamically: a thread that has lost its core to
# another process then delays a loop by one block, not by its whole share.
# A GEMM (or an optimizer pass) below this many flops (~0.4 ms on one core) runs its
# blocks on the calling thread: a parallel region waits for every thread, and on a busy
# machine a thread without a core stalls it for a scheduler slice (measured here with the
# other core taken: 2e5 made digits' steps 5-100x slower). The same bits either way.
# Above it the loops are paced (Pace, one per calling thread, kept across calls): a
# region that took longer than its blocks would on the calling thread alone (timed from
# the blocks the calling thread ran) is a region lost to a thread without a core; the
# next `backoff` parallel loops then run serially, and `backoff` doubles (up to
# MAX_BACKOFF) on a loss and shrinks by 1/8 (at least 1) on a win: where more than 1
# region in 6 is lost, the loops end up serial but for a probe every MAX_BACKOFF loops.
# Measured (big's shapes, 2 threads, the machine loaded by other processes): unpaced
# 46-63 ms/step against 5-7 ms on 1 thread; paced 3.8 against 3.3.
# Who runs a block never changes what it computes: the bits do not depend on the pacing.
cdef double PARALLEL_FLOPS = 1e7
cdef enum:
    PARAM_CHUNK = 16384  # parameters per chunk of the parallel optimizer update
    MAX_BACKOFF = 1024  # serial loops after a run of lost regions, at the most
    # A conv layer's dW and db are summed in at most this many chunks of samples (then
    # added in chunk order): enough to share a batch among the threads dynamically, few
    # enough that the chunks' buffers stay small (8 x F C KH KW). The batch size alone
    # sets the chunks, never the thread count.
    CONV_CHUNKS = 8
    REDUCE_COLS = 256  # dW's columns per item of the parallel reduction
# A pool pass costs about this many flops' time per input value (for _parallel).
cdef double POOL_FLOPS = 4.0



# Mirror fastnn.kernels (SQUARED_ERROR, ..., SGD, ..., LR, ...) and fastnn.kernels.layout
# (the table's columns and ops); LOSS_CODES, OPTIMIZER_CODES, CONFIG_SLOTS, TABLE_COLUMNS
# and OP_CODES expose them so a test can check the two agree.
cdef enum:
    SQUARED_ERROR = 0
    ABSOLUTE_ERROR = 1
    HUBER = 2
    POISSON = 3
    BINARY_LOG_LOSS = 4
    SOFTMAX_CROSS_ENTROPY = 5
    QUANTILE = 6
    N_LOSSES = 7

cdef enum:
    SGD = 0
    SGD_NESTEROV = 1
    ADAM = 2
    RMSPROP = 3
    N_OPTIMIZERS = 4

cdef enum:  # train_epoch's config slots
    LR = 0
    MOMENTUM = 1
    BETA1 = 2
    BETA2 = 3
    EPSILON = 4
    N_CONFIG = 5

cdef enum:  # the layer table's columns
    OP = 0
    ACT = 1
    ACT_PARAM = 2
    IN_C = 3
    IN_H = 4
    IN_W = 5
    OUT_C = 6
    OUT_H = 7
    OUT_W = 8
    N_IN = 9
    N_OUT = 10
    W_OFF = 11
    W_LEN = 12
    B_OFF = 13
    B_LEN = 14
    OUT_OFF = 15
    DROP = 16
    KH = 17
    KW = 18
    SH = 19
    SW = 20
    PH = 21
    PW = 22
    N_COLUMNS = 23

cdef enum:  # the table's ops
    DENSE = 0
    CONV2D = 1
    MAXPOOL2D = 2

# Layers of a network (rows of its table): the per-layer values live on the stack.
cdef enum:
    MAX_LAYERS = 64

LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "absolute_error": ABSOLUTE_ERROR,
    "huber": HUBER,
    "poisson": POISSON,
    "binary_log_loss": BINARY_LOG_LOSS,
    "softmax_cross_entropy": SOFTMAX_CROSS_ENTROPY,
    "quantile": QUANTILE,
}
OPTIMIZER_CODES = {"sgd": SGD, "sgd_nesterov": SGD_NESTEROV, "adam": ADAM,
                   "rmsprop": RMSPROP}
CONFIG_SLOTS = {"LR": LR, "MOMENTUM": MOMENTUM, "BETA1": BETA1, "BETA2": BETA2,
                "EPSILON": EPSILON, "N_CONFIG": N_CONFIG}
TABLE_COLUMNS = {
    "OP": OP, "ACT": ACT, "ACT_PARAM": ACT_PARAM, "IN_C": IN_C, "IN_H": IN_H, "IN_W": IN_W,
    "OUT_C": OUT_C, "OUT_H": OUT_H, "OUT_W": OUT_W, "N_IN": N_IN, "N_OUT": N_OUT,
    "W_OFF": W_OFF, "W_LEN": W_LEN, "B_OFF": B_OFF, "B_LEN": B_LEN, "OUT_OFF": OUT_OFF,
    "DROP": DROP, "KH": KH, "KW": KW, "SH": SH, "SW": SW, "PH": PH, "PW": PW,
    "N_COLUMNS": N_COLUMNS, "DENSE": DENSE,
}
OP_CODES = {"dense": DENSE, "conv2d": CONV2D, "maxpool2d": MAXPOOL2D}  # layout.OPS


ctypedef struct Net:  # the layer table's values, read once per call
    Py_ssize_t n_layers  # L
    Py_ssize_t size[MAX_LAYERS + 1]  # n_0 (layer 0's N_IN) .. n_L: layer l's N_OUT = n_{l+1}
    int op[MAX_LAYERS]  # layer l's op: DENSE, CONV2D, MAXPOOL2D
    Window win[MAX_LAYERS]  # a conv or pool layer's shapes and window (_conv.pxd)
    Py_ssize_t w_off[MAX_LAYERS]  # W_l starts here in the flat buffer (dense n_l x n_{l+1})
    Py_ssize_t w_len[MAX_LAYERS]  # its length (0 for a pool)
    Py_ssize_t b_off[MAX_LAYERS]  # b_l starts here
    Py_ssize_t b_len[MAX_LAYERS]  # its length (0 for a pool)
    Py_ssize_t out_off[MAX_LAYERS]  # layer l's output in a workspace row
    Py_ssize_t n_params  # length of the flat buffer
    Py_ssize_t hidden_sum  # outputs per row of the hidden layers: OUT_OFF of the last
    Py_ssize_t width_sum  # outputs per row of all layers
    Py_ssize_t max_width  # max(n_1, ..., n_L): the softmax scratch
    Py_ssize_t conv_scratch  # layout.conv_scratch_size: the largest conv's im2col columns
    bint has_conv  # conv layers (the BLAS is pinned) or pool layers in the table
    Py_ssize_t conv_cols  # the largest conv_cols_size: one thread's im2col block
    Py_ssize_t conv_pad  # the largest conv_pad_size: one padded sample
    Py_ssize_t conv_w  # the largest conv W_LEN: one chunk's dW
    Py_ssize_t conv_f  # the largest conv OUT_C: one chunk's db
    # _conv_buffers' (once per call): thread t < ws_slots has its im2col block in the
    # workspace's conv scratch, the others in cols_extra; pads holds 2 padded samples per
    # thread; dw_parts and db_parts CONV_CHUNKS chunks' sums
    Py_ssize_t ws_slots
    void* conv_buf  # the malloc'ed block (free it), or NULL
    void* cols_extra
    void* pads
    void* dw_parts
    double* db_parts
    int act[MAX_LAYERS]  # layer l's activation code
    double slope[MAX_LAYERS]  # layer l's activation parameter (leaky ReLU's slope)
    double drop[MAX_LAYERS]  # layer l's dropout probability p_l in [0, 1), training only
    int n_threads  # OpenMP threads (1 in the serial build)
    Pace* pace  # the calling thread's (_openmp.h)


# --------------------------------------------------------------------------- validation


cdef bint _shapes_agree(const int64_t* row):
    """reference._shapes_agree: a row's shapes, window and parameter lengths consistent
    with its op (N_IN and N_OUT already in [1, INT_MAX]). A conv or pool row's arithmetic
    is done in Python's integers, exactly as the reference's: no product or padded size
    can overflow."""
    cdef int64_t n_in = row[N_IN], n_out = row[N_OUT]
    if row[OP] == DENSE:
        return (row[W_LEN] == n_in * n_out and row[B_LEN] == n_out
                and row[IN_C] == n_in and row[IN_H] == 1 and row[IN_W] == 1
                and row[OUT_C] == n_out and row[OUT_H] == 1 and row[OUT_W] == 1)
    cdef object c = row[IN_C], h = row[IN_H], w = row[IN_W]
    cdef object f = row[OUT_C], oh = row[OUT_H], ow = row[OUT_W]
    cdef object kh = row[KH], kw = row[KW], sh = row[SH], sw = row[SW]
    cdef object ph = row[PH], pw = row[PW]
    if (min(c, h, w, f, oh, ow, kh, kw, sh, sw) < 1 or min(ph, pw) < 0
            or kh > h + 2 * ph or kw > w + 2 * pw or c * h * w != n_in
            or f * oh * ow != n_out or oh != (h + 2 * ph - kh) // sh + 1
            or ow != (w + 2 * pw - kw) // sw + 1):
        return False
    if row[OP] == CONV2D:
        return row[W_LEN] == f * c * kh * kw and row[B_LEN] == f
    return (f == c and 2 * ph <= kh and 2 * pw <= kw and row[W_LEN] == 0
            and row[B_LEN] == 0)


cdef int _network(const int64_t[:, ::1] table, Py_ssize_t n_params, Net* net) except -1:
    """Fill ``net`` from the layer table (fastnn.kernels.layout), or raise ValueError
    naming the row and the problem: the checks of reference._check_table, in its order.
    Every block the table names must lie inside the ``n_params`` values of params, and
    every shape and window must agree with its op: the nogil cores trust them."""
    cdef Py_ssize_t l, L = table.shape[0]
    cdef const int64_t* row
    cdef int64_t op
    cdef Window* g
    cdef object ckk
    if table.shape[1] != N_COLUMNS:
        raise ValueError(f"table has {table.shape[1]} columns, expected {N_COLUMNS} "
                         f"(fastnn.kernels.layout)")
    if L < 1 or L > MAX_LAYERS:
        raise ValueError(f"table has {L} rows (layers), expected 1 to {MAX_LAYERS}")
    net.n_layers = L
    net.n_params = n_params
    net.max_width = 1
    net.conv_scratch = 0
    net.has_conv = False
    net.conv_cols = net.conv_pad = net.conv_w = net.conv_f = 0
    net.conv_buf = NULL
    for l in range(L):
        row = &table[l, 0]
        op = row[OP]
        if op != DENSE and op != CONV2D and op != MAXPOOL2D:
            raise ValueError(f"table row {l}: unknown op code {op}")
        if (row[ACT] < 0 or row[ACT] >= N_ACTIVATIONS
                or (op != DENSE and row[ACT] == SOFTMAX)):
            raise ValueError(f"table row {l}: unknown activation code {row[ACT]}")
        if (row[N_IN] < 1 or row[N_OUT] < 1 or row[N_IN] > INT_MAX or row[N_OUT] > INT_MAX
                or not _shapes_agree(row)
                or (l > 0 and row[N_IN] != table[l - 1, N_OUT])):
            raise ValueError(f"table row {l}: inconsistent shapes")
        if (row[W_OFF] < 0 or row[W_LEN] > n_params or row[W_OFF] > n_params - row[W_LEN]
                or row[B_OFF] < 0 or row[B_LEN] > n_params
                or row[B_OFF] > n_params - row[B_LEN]):
            raise ValueError(f"table row {l}: its parameters lie outside params "
                             f"({n_params} values)")
        if row[OUT_OFF] != (table[l - 1, OUT_OFF] + table[l - 1, N_OUT] if l > 0 else 0):
            raise ValueError(f"table row {l}: OUT_OFF is not after the previous layer's")
        memcpy(&net.drop[l], &row[DROP], sizeof(double))  # a float64 by its bits
        if not (0.0 <= net.drop[l] < 1.0):  # NaN fails too
            raise ValueError(f"table row {l}: dropout probability {net.drop[l]} is not in "
                             f"[0, 1)")
        if net.drop[l] != 0.0 and (l == L - 1 or row[ACT] == SOFTMAX or op != DENSE
                                   or table[l + 1, OP] != DENSE):
            raise ValueError(f"table row {l}: dropout on the output layer, a softmax, or "
                             f"not between dense layers")
        net.op[l] = <int>op
        net.size[l] = row[N_IN]
        net.size[l + 1] = row[N_OUT]
        net.w_off[l] = row[W_OFF]
        net.w_len[l] = row[W_LEN]
        net.b_off[l] = row[B_OFF]
        net.b_len[l] = row[B_LEN]
        net.out_off[l] = row[OUT_OFF]
        net.act[l] = <int>row[ACT]
        memcpy(&net.slope[l], &row[ACT_PARAM], sizeof(double))  # a float64 by its bits
        net.max_width = max(net.max_width, net.size[l + 1])
        g = &net.win[l]
        g.c, g.h, g.w = row[IN_C], row[IN_H], row[IN_W]
        g.f, g.oh, g.ow = row[OUT_C], row[OUT_H], row[OUT_W]
        g.kh, g.kw, g.sh, g.sw, g.ph, g.pw = row[KH], row[KW], row[SH], row[SW], row[PH], row[PW]
        if op == CONV2D:
            ckk = <object>g.c * g.kh * g.kw  # <= W_LEN <= n_params: no overflow below
            if ckk > INT_MAX:  # a GEMM dimension (the BLAS takes ints)
                raise ValueError(f"table row {l}: a conv layer's IN_C * KH * KW = {ckk} "
                                 f"exceeds {INT_MAX} (the BLAS takes int dimensions)")
            # layout.conv_scratch_size: < 2**62 (both factors <= INT_MAX)
            net.conv_scratch = max(net.conv_scratch, g.c * g.kh * g.kw * g.oh * g.ow)
            conv_plan(g)
            net.conv_cols = max(net.conv_cols, conv_cols_size(g))
            net.conv_pad = max(net.conv_pad, conv_pad_size(g))
            net.conv_w = max(net.conv_w, net.w_len[l])
            net.conv_f = max(net.conv_f, g.f)
        net.has_conv = net.has_conv or op != DENSE
    net.hidden_sum = net.out_off[L - 1]
    net.width_sum = net.out_off[L - 1] + net.size[L]
    net.n_threads = max(1, fastnn_max_threads())
    net.pace = fastnn_thread_pace()
    return 0


cdef int _check_shape(str name, tuple got, tuple want) except -1:
    if got != want:
        raise ValueError(f"{name} has shape {got}, expected {want}")
    return 0


cdef int _check_work(Py_ssize_t got, object want, str sizer) except -1:
    """want is a Python int: a huge batch_size or row count cannot overflow the check."""
    if got < want:
        raise ValueError(
            f"work has length {got}, needs at least {want} (fastnn.kernels.layout.{sizer})"
        )
    return 0


cdef object _train_work(const Net* net, Py_ssize_t B):
    """layout.train_workspace_size for batches of B rows, as a Python int: X_batch |
    Y_batch | w_batch | forward_backward's B rows | the conv scratch."""
    return (<object>B * (net.size[0] + net.size[net.n_layers] + 2 + 2 * net.width_sum)
            + net.conv_scratch)


cdef int _check_rows(Py_ssize_t rows) except -1:
    if rows > INT_MAX:  # the BLAS takes int dimensions
        raise ValueError(f"{rows} rows per GEMM, at most {INT_MAX} supported")
    return 0


cdef LossParams _loss_params(Py_ssize_t loss, double loss_param) except *:
    """The loss code checked, and its parameters (Huber's delta, the quantile or the
    log-loss eps)."""
    cdef LossParams prm = log_clip_params(0.0)
    if loss < 0 or loss >= N_LOSSES:
        raise ValueError(f"unknown loss code {loss}")
    if loss == HUBER:
        prm.delta = loss_param
        return prm
    if loss == QUANTILE:
        prm.quantile = loss_param
        return prm
    if loss == BINARY_LOG_LOSS or loss == SOFTMAX_CROSS_ENTROPY:
        return log_clip_params(loss_param)
    return prm


cdef double* _scratch(const Net* net) except NULL:
    """max_width doubles for the softmax rows (hidden softmax, softmax cross-entropy)."""
    cdef double* e = <double*>malloc(net.max_width * sizeof(double))
    if e == NULL:
        raise MemoryError()
    return e


cdef int _conv_buffers(Net* net, Py_ssize_t rows, bint backward, size_t itemsize) except -1:
    """Allocate the conv layers' per-call buffers (net.conv_buf, free it with
    _free_conv_buffers): the im2col blocks of the threads the workspace's conv scratch
    cannot hold, 2 padded samples per thread and, for a backward pass over batches of
    ``rows`` rows, CONV_CHUNKS chunks' dW (in the array type) and db (in double). Sizes
    in Python's integers: a failed allocation raises MemoryError."""
    cdef Py_ssize_t threads = net.n_threads
    cdef object chunks = min(rows, <Py_ssize_t>CONV_CHUNKS) if backward else 0
    cdef object n_db, n_dw, n_cols, n_pads, size
    cdef char* p
    net.conv_buf = NULL
    if not net.has_conv:
        return 0
    net.ws_slots = threads
    if net.conv_cols > 0:
        net.ws_slots = min(threads, net.conv_scratch // net.conv_cols)
    n_db = chunks * net.conv_f * 8  # bytes, first: the doubles stay aligned
    n_dw = chunks * net.conv_w * <object>itemsize
    n_cols = <object>(threads - net.ws_slots) * net.conv_cols * itemsize
    n_pads = <object>threads * 2 * net.conv_pad * itemsize
    size = n_db + n_dw + n_cols + n_pads
    if size > PY_SSIZE_T_MAX:
        raise MemoryError()
    p = <char*>malloc(max(<size_t>size, <size_t>1))
    if p == NULL:
        raise MemoryError()
    net.conv_buf = p
    net.db_parts = <double*>p
    net.dw_parts = p + <Py_ssize_t>n_db
    net.cols_extra = p + <Py_ssize_t>(n_db + n_dw)
    net.pads = p + <Py_ssize_t>(n_db + n_dw + n_cols)
    return 0


cdef void _free_conv_buffers(Net* net) noexcept:
    free(net.conv_buf)
    net.conv_buf = NULL


_blas_controller = None


def _blas_one_thread(bint has_conv):
    """BLAS pinned to one thread around a call with conv layers, in the main thread (as
    fastnn._engine.blas_threads: the limit is process-wide and threadpoolctl lets one
    thread own it): their GEMMs run inside the parallel loops, where a BLAS thread would
    oversubscribe the cores (measured: 4 s per CIFAR step with 2 BLAS threads on a busy
    2-core machine, against 0.15 s) and could change the bits. A call in another thread
    leaves the BLAS as the caller set it (the engine's rule)."""
    global _blas_controller
    if not has_conv or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


# --------------------------------------------------------------------------- nogil cores


cdef inline double _sum_of_squares(const floating* x, Py_ssize_t n) noexcept nogil:
    """sum x_i**2 in double, in four interleaved partial sums: one running sum would be a
    chain of dependent additions (the reference's np.dot sums in its own order too)."""
    cdef Py_ssize_t i, n4 = n - n % 4
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for i in range(0, n4, 4):
        s0 += <double>x[i] * x[i]
        s1 += <double>x[i + 1] * x[i + 1]
        s2 += <double>x[i + 2] * x[i + 2]
        s3 += <double>x[i + 3] * x[i + 3]
    for i in range(n4, n):
        s0 += <double>x[i] * x[i]
    return (s0 + s1) + (s2 + s3)


cdef inline void _forward_layers(
    const Net* net,
    const floating* params,  # IN (n_params,)
    const floating* X,  # IN (n, n_0)
    Py_ssize_t n,
    floating** out,  # OUT out[l] (n, n_{l+1}); out[L - 1] gets the raw output
    double* e,  # scratch, max_width doubles
    const Mask* masks,  # IN (L,): the batch's dropout masks; NULL: no dropout (prediction)
    const double* scale_in,  # IN (L,): s_{l-1} = 1 / (1 - p_{l-1}), 1 for l = 0; or NULL
    floating* cols,  # scratch, net.conv_scratch elements: the conv layers' im2col
) noexcept nogil:
    """out[l] = m_l * f_l((out[l - 1] @ W_l) * s_{l-1} + b_l): f_l = net.act[l] with
    net.slope[l], m_l layer l's dropout mask where it drops units (masks given and
    net.drop[l] != 0), else 1; each dense layer by the column blocks of its output
    (_dense.pxd), on the threads if it is large. A conv layer is out[l] = f_l(W_l *
    out[l - 1] + b_l), a pool layer f_l(maxpool(out[l - 1])) (_conv.pxd), sample by
    sample, on the threads if large; neither has dropout, nor a dropout before it
    (s_{l-1} = 1)."""
    cdef Py_ssize_t l, p, blocks, n_in, n_out, L = net.n_layers
    cdef const floating* a = X
    cdef const floating* W
    cdef const floating* b
    cdef const Mask* mask
    cdef double s
    for l in range(L):
        n_in, n_out = net.size[l], net.size[l + 1]
        W, b = params + net.w_off[l], params + net.b_off[l]
        if net.op[l] == CONV2D or net.op[l] == MAXPOOL2D:
            _image_forward(net, l, W, b, a, n, out[l], cols)
            a = out[l]
            continue
        mask = &masks[l] if masks != NULL and net.drop[l] != 0.0 else NULL
        s = scale_in[l] if scale_in != NULL else 1.0
        blocks = 1 if net.act[l] == SOFTMAX else column_blocks(n_out)  # softmax: row-wise
        if _parallel(net, blocks, 2.0 * n * n_in * n_out):  # never softmax: no scratch
            for p in prange(blocks, num_threads=net.n_threads, schedule="dynamic"):
                dense_forward_cols(a, n, n_in, W, b, n_out, net.act[l], net.slope[l],
                                   out[l], block_start(n_out, blocks, p),
                                   block_start(n_out, blocks, p + 1), <double*>NULL, s,
                                   mask)
                _ran(net)
            _paced(net)
        else:
            for p in range(blocks):
                dense_forward_cols(a, n, n_in, W, b, n_out, net.act[l], net.slope[l],
                                   out[l], block_start(n_out, blocks, p),
                                   block_start(n_out, blocks, p + 1), e, s, mask)
        a = out[l]


cdef inline floating* _cols_of(const Net* net, floating* cols, int t) noexcept nogil:
    """Thread t's im2col block: in the workspace's conv scratch (``cols``) or beyond."""
    if t < net.ws_slots:
        return cols + t * net.conv_cols
    return <floating*>net.cols_extra + (t - net.ws_slots) * net.conv_cols


cdef inline floating* _pad_of(const Net* net, floating* cols, int t) noexcept nogil:
    """Thread t's two padded samples (conv_pad_size each); cols only picks the type."""
    return <floating*>net.pads + 2 * t * net.conv_pad


cdef inline void _image_item(
    const Net* net, Py_ssize_t l, const floating* W, const floating* b,
    const floating* a, Py_ssize_t s, floating* out, floating* cols, int t,
) noexcept nogil:
    """Sample s of a conv or pool layer's forward pass, on thread t's scratch."""
    cdef const Window* g = &net.win[l]
    cdef Py_ssize_t n_in = net.size[l], n_out = net.size[l + 1]
    if net.op[l] == CONV2D:
        conv_forward_sample(a + s * n_in, g, W, b, net.act[l], net.slope[l],
                            out + s * n_out, _cols_of(net, cols, t), _pad_of(net, cols, t))
    else:
        maxpool_forward_sample(a + s * n_in, g, out + s * n_out)
        activation_rows(out + s * n_out, 1, n_out, net.act[l], net.slope[l],
                        out + s * n_out, <double*>NULL)


cdef inline void _image_forward(
    const Net* net, Py_ssize_t l, const floating* W, const floating* b,
    const floating* a, Py_ssize_t n, floating* out, floating* cols,
) noexcept nogil:
    """A conv or pool layer's forward pass, its samples on the threads if large."""
    cdef Py_ssize_t s
    cdef const Window* g = &net.win[l]
    cdef double flops = (2.0 * n * net.w_len[l] * g.oh * g.ow if net.op[l] == CONV2D
                         else POOL_FLOPS * n * net.size[l])
    if _parallel(net, n, flops):
        for s in prange(n, num_threads=net.n_threads, schedule="dynamic"):
            _image_item(net, l, W, b, a, s, out, cols, fastnn_thread_num())
            _ran(net)
        _paced(net)
    else:
        for s in range(n):
            _image_item(net, l, W, b, a, s, out, cols, 0)


cdef inline void _conv_backward_item(
    const Net* net, Py_ssize_t l, const floating* W, const floating* a_prev,
    const floating* delta, Py_ssize_t n, Py_ssize_t chunks, Py_ssize_t k,
    floating* delta_prev, floating* cols, int t,
) noexcept nogil:
    """Chunk k of a conv layer's backward pass on thread t's scratch: its samples' dW
    terms summed into its dW part (in order, by the GEMMs), its db sums (in double) and
    (delta_prev not NULL) its samples' delta_prev."""
    cdef const Window* g = &net.win[l]
    cdef Py_ssize_t s, q, n_in = net.size[l], n_out = net.size[l + 1]
    cdef Py_ssize_t s0 = k * n // chunks, s1 = (k + 1) * n // chunks
    cdef floating* part = <floating*>net.dw_parts + k * net.conv_w
    cdef floating* xp = _pad_of(net, cols, t)
    for s in range(s0, s1):
        conv_backward_sample(a_prev + s * n_in, delta + s * n_out, g, part, s > s0, W,
                             net.act[l - 1] if l else IDENTITY,
                             net.slope[l - 1] if l else 0.0,
                             delta_prev + s * n_in if l else <floating*>NULL,
                             _cols_of(net, cols, t), xp, xp + net.conv_pad)
    for q in range(g.f):
        net.db_parts[k * net.conv_f + q] = bias_sum(delta + s0 * n_out, s1 - s0, g.f,
                                                    g.oh * g.ow, q)


cdef void _image_backward(
    const Net* net, Py_ssize_t l, const floating* params, const floating* a_prev,
    const floating* delta, Py_ssize_t n, floating* grads_out, floating* delta_prev,
    floating* cols,
) noexcept nogil:
    """A conv layer's dW, db and (l > 0) delta_{l-1}, or a pool layer's delta_{l-1}: the
    pool's samples, the conv's chunks on the threads if large; then the chunks' dW and
    db parts added in chunk order (dW's columns on the threads if large)."""
    cdef const Window* g = &net.win[l]
    cdef Py_ssize_t s, k, q, ckk = g.c * g.kh * g.kw, n_in = net.size[l]
    cdef Py_ssize_t chunks = min(n, <Py_ssize_t>CONV_CHUNKS), items
    cdef const floating* W = params + net.w_off[l]
    cdef floating* db
    cdef double acc
    if net.op[l] == MAXPOOL2D:
        if l == 0:
            return
        if _parallel(net, n, 2 * POOL_FLOPS * n * n_in):
            for s in prange(n, num_threads=net.n_threads, schedule="dynamic"):
                maxpool_backward_sample(delta + s * net.size[l + 1], a_prev + s * n_in, g,
                                        net.act[l - 1], net.slope[l - 1],
                                        delta_prev + s * n_in)
                _ran(net)
            _paced(net)
        else:
            for s in range(n):
                maxpool_backward_sample(delta + s * net.size[l + 1], a_prev + s * n_in, g,
                                        net.act[l - 1], net.slope[l - 1],
                                        delta_prev + s * n_in)
        return
    if _parallel(net, chunks, 2.0 * n * net.w_len[l] * g.oh * g.ow * (2 if l else 1)):
        for k in prange(chunks, num_threads=net.n_threads, schedule="dynamic"):
            _conv_backward_item(net, l, W, a_prev, delta, n, chunks, k, delta_prev, cols,
                                fastnn_thread_num())
            _ran(net)
        _paced(net)
    else:
        for k in range(chunks):
            _conv_backward_item(net, l, W, a_prev, delta, n, chunks, k, delta_prev, cols, 0)
    items = (ckk + REDUCE_COLS - 1) // REDUCE_COLS
    if _parallel(net, items, 1.0 * chunks * net.w_len[l]):
        for k in prange(items, num_threads=net.n_threads, schedule="dynamic"):
            conv_reduce(<floating*>net.dw_parts, chunks, net.conv_w, g, k * REDUCE_COLS,
                        min(ckk, (k + 1) * REDUCE_COLS), grads_out + net.w_off[l])
            _ran(net)
        _paced(net)
    else:
        conv_reduce(<floating*>net.dw_parts, chunks, net.conv_w, g, 0, ckk,
                    grads_out + net.w_off[l])
    db = grads_out + net.b_off[l]
    for q in range(g.f):
        acc = net.db_parts[q]
        for k in range(1, chunks):
            acc += net.db_parts[k * net.conv_f + q]
        db[q] = <floating>acc


cdef inline bint _parallel(const Net* net, Py_ssize_t items, double flops) noexcept nogil:
    """Whether a loop of ``items`` blocks and ``flops`` runs on the threads; if so, its
    blocks call _ran and the loop is followed by _paced."""
    cdef Pace* pace = net.pace
    if net.n_threads <= 1 or items <= 1 or flops < PARALLEL_FLOPS:
        return False
    if pace.serial_left > 0:
        pace.serial_left -= 1
        return False
    pace.items = items
    pace.caller_items = 0
    pace.start = fastnn_now()
    return True


cdef inline void _ran(const Net* net) noexcept nogil:
    """After each block of a parallel loop: the calling thread's blocks are timed."""
    cdef Pace* pace
    if fastnn_thread_num() == 0:
        pace = net.pace
        pace.caller_items += 1
        pace.caller_done = fastnn_now()


cdef inline void _paced(const Net* net) noexcept nogil:
    """After a parallel loop: lost if it took longer than its blocks would take on the
    calling thread alone (its time per block x blocks)."""
    cdef Pace* pace = net.pace
    cdef double took = fastnn_now() - pace.start
    if pace.caller_items == 0:
        return  # the other threads ran every block: won
    if took > (pace.caller_done - pace.start) / pace.caller_items * pace.items:
        pace.serial_left = pace.backoff
        pace.backoff = min(2 * pace.backoff, <Py_ssize_t>MAX_BACKOFF)
    else:
        pace.backoff = max(pace.backoff - max(pace.backoff // 8, 1), 1)


cdef void _backward_layer(
    const Net* net,
    Py_ssize_t l,
    const floating* params,  # IN (n_params,)
    const floating* a_prev,  # IN (n, n_l): the layer's input
    const floating* delta,  # IN (n, n_{l+1})
    Py_ssize_t n,
    floating* grads_out,  # OUT layer l's dW and db
    floating* delta_prev,  # OUT (n, n_l), the previous layer's delta; unused for l = 0
    const Mask* mask_prev,  # IN the previous layer's dropout mask, or NULL (none)
    double scale_prev,  # its scale s_{l-1} = 1 / (1 - p_{l-1}) (read only with a mask)
) noexcept nogil:
    """dW_l, db_l and (l > 0) delta_{l-1} of one layer: the column blocks of dW and of
    delta_{l-1} are independent items of one parallel loop. dW_l is a_{l-1}.T @ delta_l
    (its scale s_{l-1} is applied in the L2 pass); delta_{l-1} is masked and scaled."""
    cdef Py_ssize_t p, n_in = net.size[l], n_out = net.size[l + 1]
    cdef Py_ssize_t bw = column_blocks(n_out), bd = 0
    cdef const floating* W = params + net.w_off[l]
    if l:
        bd = 1 if net.act[l - 1] == SOFTMAX else column_blocks(n_in)
    if _parallel(net, bw + bd, 2.0 * n * n_in * n_out * (2 if l else 1)):
        for p in prange(bw + bd, num_threads=net.n_threads, schedule="dynamic"):
            _backward_item(net, l, W, a_prev, delta, n, grads_out, delta_prev, bw, bd, p,
                           mask_prev, scale_prev)
            _ran(net)
        _paced(net)
    else:
        for p in range(bw + bd):
            _backward_item(net, l, W, a_prev, delta, n, grads_out, delta_prev, bw, bd, p,
                           mask_prev, scale_prev)


cdef inline void _backward_item(
    const Net* net, Py_ssize_t l, const floating* W, const floating* a_prev,
    const floating* delta, Py_ssize_t n, floating* grads_out, floating* delta_prev,
    Py_ssize_t bw, Py_ssize_t bd, Py_ssize_t p, const Mask* mask_prev, double scale_prev,
) noexcept nogil:
    """Item p of _backward_layer: block p of dW (p < bw), else block p - bw of delta_prev."""
    cdef Py_ssize_t n_in = net.size[l], n_out = net.size[l + 1]
    if p < bw:
        dense_backward_cols(a_prev, delta, n, n_in, n_out, grads_out + net.w_off[l],
                            grads_out + net.b_off[l], block_start(n_out, bw, p),
                            block_start(n_out, bw, p + 1))
    else:  # a softmax layer's delta is one block, every column (and drops no unit)
        dense_backward_delta_cols(delta, W, a_prev, n, n_in, n_out, net.act[l - 1],
                                  net.slope[l - 1], delta_prev,
                                  block_start(n_in, bd, p - bw),
                                  block_start(n_in, bd, p - bw + 1), mask_prev, scale_prev)


cdef inline double _loss_gradient(
    int loss,
    const LossParams* prm,
    const floating* Y,  # IN (n, k)
    const floating* raw,  # IN (n, k)
    const floating* sample_weight,  # IN (n,)
    Py_ssize_t n,
    Py_ssize_t k,
    floating* loss_out,  # OUT (n,)
    floating* gradient_out,  # OUT (n, k)
    double* e,  # scratch, k doubles
) noexcept nogil:
    """The fused loss-and-gradient kernel of a loss code; returns sum_i w_i loss_i."""
    if loss == SQUARED_ERROR:
        return elementwise_loss_rows(half_squared_error, prm, Y, raw, sample_weight, n, k,
                                     loss_out, gradient_out)
    if loss == ABSOLUTE_ERROR:
        return elementwise_loss_rows(absolute_error, prm, Y, raw, sample_weight, n, k,
                                     loss_out, gradient_out)
    if loss == HUBER:
        return elementwise_loss_rows(huber, prm, Y, raw, sample_weight, n, k,
                                     loss_out, gradient_out)
    if loss == POISSON:
        return elementwise_loss_rows(poisson, prm, Y, raw, sample_weight, n, k,
                                     loss_out, gradient_out)
    if loss == BINARY_LOG_LOSS:
        return elementwise_loss_rows(binary_log, prm, Y, raw, sample_weight, n, k,
                                     loss_out, gradient_out)
    if loss == QUANTILE:
        return elementwise_loss_rows(quantile, prm, Y, raw, sample_weight, n, k,
                                     loss_out, gradient_out)
    return softmax_cross_entropy_rows(prm, Y, raw, sample_weight, n, k, loss_out,
                                      gradient_out, e)


cdef double _forward_backward_rows(
    const Net* net,
    const floating* params,  # IN (n_params,)
    const floating* X,  # IN (n, n_0)
    const floating* Y,  # IN (n, n_L)
    const floating* sample_weight,  # IN (n,)
    Py_ssize_t n,
    int loss,
    const LossParams* prm,
    double alpha,
    double scale,  # 1 / sum(sample_weight)
    floating* grads_out,  # OUT (n_params,)
    floating* work,  # scratch: loss_out (n) | a_1 .. a_L | delta_1 .. delta_L
    floating* cols,  # scratch, net.conv_scratch elements: the conv layers' im2col
    double* e,  # scratch, max_width doubles
    double* penalty_out,  # OUT alpha / 2 * sum ||W||**2
    uint64_t seed,  # the dropout masks of (seed, step, l) (reference._dropout_key)
    uint64_t step,
) noexcept nogil:
    """One batch: returns data_loss = sum_i w_i loss_i; grads_out = d (data_loss + penalty)
    / d params * scale (reference.forward_backward, dropout included: a_l = m_l * f_l(z_l),
    z_{l+1} = (a_l @ W_{l+1}) * s_l + b_{l+1}, dW_{l+1} = (a_l.T @ delta_{l+1}) * s_l,
    delta_l = m_l * s_l * (delta_{l+1} @ W_{l+1}.T) * f_l'(z_l), s_l = 1 / (1 - p_l)).
    Conv and pool layers (no dropout on them or before them) by _conv.pxd's cores."""
    cdef Py_ssize_t l, i, n_w, L = net.n_layers
    cdef floating* acts[MAX_LAYERS]
    cdef floating* deltas[MAX_LAYERS]
    cdef Mask masks[MAX_LAYERS]
    cdef double scale_in[MAX_LAYERS]  # layer l's input scale s_{l-1}
    cdef floating* loss_out = work
    cdef const floating* a_prev
    cdef const floating* W
    cdef floating* G
    cdef double s, data_loss, sq_sum = 0.0
    for l in range(L):  # loss_out (n) | outputs (n x width) | deltas (n x width)
        acts[l] = work + n + n * net.out_off[l]
        deltas[l] = work + n + n * net.width_sum + n * net.out_off[l]
        masks[l] = dropout_mask(seed, step, <uint64_t>l, net.drop[l])
        scale_in[l] = 1.0 / (1.0 - net.drop[l - 1]) if l else 1.0  # exactly 1 for p = 0

    _forward_layers(net, params, X, n, acts, e, masks, scale_in, cols)
    data_loss = _loss_gradient(loss, prm, Y, acts[L - 1], sample_weight, n, net.size[L],
                               loss_out, deltas[L - 1], e)
    for l in range(L - 1, -1, -1):
        a_prev = X if l == 0 else acts[l - 1]
        if net.op[l] == CONV2D or net.op[l] == MAXPOOL2D:
            _image_backward(net, l, params, a_prev, deltas[l], n, grads_out,
                            deltas[l - 1] if l else <floating*>NULL, cols)
        else:
            _backward_layer(net, l, params, a_prev, deltas[l], n, grads_out,
                            deltas[l - 1] if l else <floating*>NULL,
                            &masks[l - 1] if l and net.drop[l - 1] != 0.0 else <Mask*>NULL,
                            scale_in[l])
    # dropout's scale of dW, the L2 term (weights only) and the 1 / sum(w) scale in one
    # pass over the buffer
    for l in range(L):
        W = params + net.w_off[l]
        G = grads_out + net.w_off[l]
        n_w = net.w_len[l]  # n_l n_{l+1} dense, F C KH KW conv, 0 pool
        s = scale_in[l]
        if s == 1.0:  # no dropout before: the loop as before it existed
            for i in range(n_w):
                G[i] = (G[i] + alpha * W[i]) * scale
        else:
            for i in range(n_w):
                G[i] = (G[i] * s + alpha * W[i]) * scale
        sq_sum += _sum_of_squares(W, n_w)
        G = grads_out + net.b_off[l]
        for i in range(net.b_len[l]):
            G[i] = G[i] * scale
    penalty_out[0] = 0.5 * alpha * sq_sum
    return data_loss


cdef int _train_epoch_rows(
    const Net* net,
    const floating* X,  # IN (n, n_0)
    const floating* Y,  # IN (n, n_L)
    const floating* sample_weight,  # IN (n,)
    Py_ssize_t n,  # rows of perm
    const int64_t* perm,  # IN (n,), every value in [0, rows of X)
    Py_ssize_t batch_size,
    floating* params,  # INOUT (n_params,)
    int loss,
    const LossParams* prm,
    double alpha,
    int optimizer,
    const double* config,  # IN (N_CONFIG,): LR, MOMENTUM, BETA1, BETA2, EPSILON
    floating* state0,  # INOUT (n_params,)
    floating* state1,  # INOUT (n_params,), unused by SGD (may be NULL)
    floating* grads,  # OUT (n_params,)
    floating* work,  # scratch: X_batch | Y_batch | w_batch | forward_backward's (B rows)
    double* e,  # scratch, max_width doubles
    double* loss_sum,  # INOUT
    double* penalty_sum,  # INOUT
    int64_t* step,  # INOUT
    uint64_t seed,  # the batch that makes update t drops with the masks of (seed, t)
) noexcept nogil:
    """The epoch loop of reference.train_epoch; returns 1 if a non-finite loss stopped it."""
    cdef Py_ssize_t batch, start, r, nb, src, B = batch_size
    cdef Py_ssize_t n_in = net.size[0], n_out = net.size[net.n_layers]
    cdef floating* Xb = work
    cdef floating* Yb = Xb + B * n_in
    cdef floating* wb = Yb + B * n_out
    cdef floating* fb_work = wb + B
    cdef floating* cols = fb_work + B * (1 + 2 * net.width_sum)  # the conv scratch
    cdef double lr = config[LR], momentum = config[MOMENTUM], eps = config[EPSILON]
    cdef double beta1 = config[BETA1], beta2 = config[BETA2]
    cdef Py_ssize_t k, chunks
    cdef double sw, data_loss, penalty, t, c
    for batch in range((n + B - 1) // B):
        start = batch * B
        nb = min(B, n - start)
        sw = 0.0
        for r in range(nb):
            src = perm[start + r]
            memcpy(Xb + r * n_in, X + src * n_in, n_in * sizeof(floating))
            memcpy(Yb + r * n_out, Y + src * n_out, n_out * sizeof(floating))
            wb[r] = sample_weight[src]
            sw += wb[r]
        if sw == 0.0:
            continue
        data_loss = _forward_backward_rows(net, params, Xb, Yb, wb, nb, loss, prm, alpha,
                                           1.0 / sw, grads, fb_work, cols, e, &penalty, seed,
                                           <uint64_t>(step[0] + 1))  # t: this update's
        if not isfinite(data_loss + penalty):
            return 1
        loss_sum[0] += nb * data_loss / sw
        penalty_sum[0] += nb * penalty / sw
        step[0] += 1
        t = <double>step[0]
        # bias corrections: once per step, scalar pow
        c = 1.0
        if optimizer == ADAM:
            c = sqrt(1.0 - pow(beta2, t)) / (1.0 - pow(beta1, t))
        elif optimizer == RMSPROP:
            c = 1.0 / (1.0 - pow(beta2, t))
        # elementwise: chunks on the threads give the same bits as one pass
        chunks = (net.n_params + PARAM_CHUNK - 1) // PARAM_CHUNK
        if _parallel(net, chunks, 100.0 * net.n_params):  # ~100 flops' time per update
            for k in prange(chunks, num_threads=net.n_threads, schedule="dynamic"):
                _update(optimizer, params, grads, state0, state1, k * PARAM_CHUNK,
                        min(net.n_params, (k + 1) * PARAM_CHUNK), lr, momentum, beta1,
                        beta2, eps, c)
                _ran(net)
            _paced(net)
        else:
            _update(optimizer, params, grads, state0, state1, 0, net.n_params, lr, momentum,
                    beta1, beta2, eps, c)
    return 0


cdef inline void _update(
    int optimizer, floating* params, const floating* grads, floating* state0,
    floating* state1, Py_ssize_t i0, Py_ssize_t i1, double lr, double momentum,
    double beta1, double beta2, double eps, double c,
) noexcept nogil:
    """The optimizer step on parameters [i0, i1), with the step's bias correction c."""
    cdef Py_ssize_t n = i1 - i0
    if optimizer == SGD or optimizer == SGD_NESTEROV:
        sgd_velocity_update(params + i0, grads + i0, state0 + i0, n, lr, momentum,
                            optimizer == SGD_NESTEROV)
    elif optimizer == ADAM:
        adam_update(params + i0, grads + i0, state0 + i0, state1 + i0, n, lr, beta1, beta2,
                    0.0, False, c, 1.0, 0.0, eps)
    else:
        rmsprop_update(params + i0, grads + i0, state0 + i0, <floating*>NULL, state1 + i0, n,
                       lr, beta2, eps, 0.0, momentum, False, c)


# --------------------------------------------------------------------------- kernels


def forward(X, params, table, work, raw_out):
    """raw_out = the network's output before the output activation, for rows X."""
    try:
        _forward(X, params, table, work, raw_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("forward", (X, params, table, work, raw_out)) or exc from None


def forward_many(X, perm, counts, params, table, work, raw_out):
    """K models of one table, each on its own rows X[perm[k, :counts[k]]] (gathered at the
    start of work[k]): raw_out[k, :counts[k]] is forward alone on them, bit for bit
    (reference.forward_many). With several models and threads, the models run on the
    OpenMP threads, each model's pass on its thread alone."""
    try:
        _forward_many(X, perm, counts, params, table, work, raw_out)
    except (TypeError, ValueError) as exc:
        raise argument_error("forward_many", (X, perm, counts, params, table, work, raw_out)
                             ) or exc from None


def forward_backward(X, Y, sample_weight, params, table, loss, loss_param, alpha, grads_out,
                     work, seed=0, step=0):
    """Loss and gradient of one batch: returns (data_loss, penalty), data_loss = sum_i w_i
    loss_i, penalty = alpha / 2 sum ||W||**2; grads_out = d (data_loss + penalty) / d params
    / sum_i w_i. A zero weight sum raises ZeroDivisionError (as the reference). Layers with
    dropout (the table's DROP) drop units with the masks of (seed, step, layer), as
    train_epoch in the batch that makes update ``step``."""
    try:
        return _forward_backward(X, Y, sample_weight, params, table, loss, loss_param, alpha,
                                 grads_out, work, seed, step)
    except (TypeError, ValueError) as exc:
        raise argument_error("forward_backward", (X, Y, sample_weight, params, table, loss,
                                                  loss_param, alpha, grads_out, work, seed,
                                                  step)
                             ) or exc from None


def train_epoch(X, Y, sample_weight, perm, batch_size, params, table, loss, loss_param, alpha,
                optimizer, config, state, step, grads, work, loss_sum=0.0, penalty_sum=0.0,
                seed=0):
    """One epoch (or a batch-aligned slice of one) of mini-batch training over rows
    X[perm[s:s + batch_size]]: returns (loss_sum, penalty_sum, step, nonfinite) as the
    reference. The batch that makes update t drops units with the masks of (seed, t)."""
    try:
        return _train_epoch(X, Y, sample_weight, perm, batch_size, params, table, loss,
                            loss_param, alpha, optimizer, config, state, step, grads, work,
                            loss_sum, penalty_sum, seed)
    except (TypeError, ValueError) as exc:
        raise argument_error(
            "train_epoch", (X, Y, sample_weight, perm, batch_size, params, table, loss,
                            loss_param, alpha, optimizer, config, state, step, grads, work,
                            loss_sum, penalty_sum, seed)
        ) or exc from None


# --------------------------------------------------------------------------- implementations


def _forward(
    const floating[:, ::1] X not None,  # IN (n, n_0)
    const floating[::1] params not None,  # IN (n_params,)
    const int64_t[:, ::1] table not None,  # IN (n_layers, N_COLUMNS): the layer table
    floating[::1] work not None,  # scratch: the hidden layers' outputs | the conv scratch
    floating[:, ::1] raw_out not None,  # OUT (n, n_L)
):
    cdef Net net
    cdef Py_ssize_t l, n = X.shape[0]
    cdef floating* out[MAX_LAYERS]
    _network(table, params.shape[0], &net)
    _check_shape("X", (X.shape[0], X.shape[1]), (n, net.size[0]))
    _check_shape("raw_out", (raw_out.shape[0], raw_out.shape[1]), (n, net.size[net.n_layers]))
    _check_work(work.shape[0], <object>n * net.hidden_sum + net.conv_scratch,
                "forward_workspace_size")
    _check_rows(n)
    if n == 0:
        return
    cdef double* e = _scratch(&net)
    try:
        _conv_buffers(&net, n, False, sizeof(floating))
        with _blas_one_thread(net.has_conv):
            with nogil:
                for l in range(net.n_layers - 1):
                    out[l] = ptr1(work) + n * net.out_off[l]
                out[net.n_layers - 1] = ptr2(raw_out)
                _forward_layers(&net, cptr1(params), cptr2(X), n, out, e, <Mask*>NULL,
                                <double*>NULL,  # prediction: no dropout, no scale
                                ptr1(work) + n * net.hidden_sum)
    finally:
        _free_conv_buffers(&net)
        free(e)


def _forward_many(
    const floating[:, ::1] X not None,  # IN (n, n_0)
    const int64_t[:, ::1] perm not None,  # IN (K, m); model k's rows perm[k, :counts[k]]
    const int64_t[::1] counts not None,  # IN (K,)
    const floating[:, ::1] params not None,  # IN (K, n_params)
    const int64_t[:, ::1] table not None,  # IN (n_layers, N_COLUMNS): the layer table
    floating[:, ::1] work not None,  # scratch (K, forward_many_workspace_size)
    floating[:, :, ::1] raw_out not None,  # OUT (K, m, n_L)
):
    cdef Net net
    cdef Net* nets = NULL  # one per model: each its own conv buffers
    cdef double** es = NULL
    cdef Py_ssize_t i, k, made = 0, n = X.shape[0], m = perm.shape[1], K = params.shape[0]
    cdef int64_t v
    cdef bint spread
    _network(table, params.shape[1], &net)
    _check_models(K, {"perm": perm.shape[0], "counts": counts.shape[0],
                      "work": work.shape[0], "raw_out": raw_out.shape[0]})
    _check_shape("X", (X.shape[0], X.shape[1]), (n, net.size[0]))
    _check_shape("raw_out", (raw_out.shape[0], raw_out.shape[1], raw_out.shape[2]),
                 (K, m, net.size[net.n_layers]))
    _check_work(work.shape[1], <object>m * (net.size[0] + net.hidden_sum) + net.conv_scratch,
                "forward_many_workspace_size")
    _check_rows(m)
    for k in range(K):
        if counts[k] < 0 or counts[k] > m:
            raise ValueError(f"counts[{k}] = {counts[k]}, expected a count in [0, {m}]")
        for i in range(counts[k]):  # a bad index must never read outside X
            v = perm[k, i]
            if v < 0 or v >= n:
                raise ValueError(f"perm[{k}, {i}] = {v} is out of range for {n} rows")
    spread = K > 1 and net.n_threads > 1
    nets = <Net*>malloc(max(K, 1) * sizeof(Net))
    es = <double**>malloc(max(K, 1) * sizeof(double*))
    if nets == NULL or es == NULL:
        free(nets)
        free(es)
        raise MemoryError()
    try:
        for k in range(K):
            made = k + 1
            _model_net(nets, es, &net, k, spread, counts[k], False, sizeof(floating))
        with _blas_one_thread(net.has_conv or spread):
            with nogil:
                if spread:
                    for k in prange(K, num_threads=net.n_threads, schedule="dynamic"):
                        _forward_model(&nets[k], X, perm, counts, params, work, raw_out,
                                       es[k], k)
                else:
                    for k in range(K):
                        _forward_model(&nets[k], X, perm, counts, params, work, raw_out,
                                       es[k], k)
    finally:
        _free_model_nets(nets, es, made)


cdef void _forward_model(
    const Net* net, const floating[:, ::1] X, const int64_t[:, ::1] perm,
    const int64_t[::1] counts, const floating[:, ::1] params, floating[:, ::1] work,
    floating[:, :, ::1] raw_out, double* e, Py_ssize_t k,
) noexcept nogil:
    """Model k's pass of forward_many: its rows gathered, then _forward's layers."""
    cdef Py_ssize_t i, l, c = counts[k], m = perm.shape[1], n0 = net.size[0]
    cdef floating* xk = &work[k, 0]
    cdef floating* rest = xk + m * n0
    cdef floating* out[MAX_LAYERS]
    if c == 0:
        return
    for i in range(c):
        memcpy(xk + i * n0, &X[perm[k, i], 0], n0 * sizeof(floating))
    for l in range(net.n_layers - 1):
        out[l] = rest + c * net.out_off[l]
    out[net.n_layers - 1] = &raw_out[k, 0, 0]
    _forward_layers(net, &params[k, 0], xk, c, out, e, <Mask*>NULL, <double*>NULL,
                    rest + c * net.hidden_sum)


def _forward_backward(
    const floating[:, ::1] X not None,  # IN (n, n_0)
    const floating[:, ::1] Y not None,  # IN (n, n_L)
    const floating[::1] sample_weight not None,  # IN (n,)
    const floating[::1] params not None,  # IN (n_params,)
    const int64_t[:, ::1] table not None,  # IN (n_layers, N_COLUMNS): the layer table
    Py_ssize_t loss,  # codes are Py_ssize_t: converted by __index__ (a float raises)
    double loss_param,
    double alpha,
    floating[::1] grads_out not None,  # OUT (n_params,)
    floating[::1] work not None,  # scratch: loss_out | outputs | deltas | the conv scratch
    Py_ssize_t seed,  # the dropout masks' (reference._dropout_key); a float raises
    Py_ssize_t step,
):
    cdef Net net
    cdef Py_ssize_t i, n = X.shape[0]
    cdef double sw = 0.0, data_loss, penalty
    _network(table, params.shape[0], &net)
    cdef LossParams prm = _loss_params(loss, loss_param)
    _check_shape("X", (X.shape[0], X.shape[1]), (n, net.size[0]))
    _check_shape("Y", (Y.shape[0], Y.shape[1]), (n, net.size[net.n_layers]))
    _check_shape("sample_weight", (sample_weight.shape[0],), (n,))
    if seed < 0 or step < 0:
        raise ValueError("seed and step must be at least 0")
    _check_shape("grads_out", (grads_out.shape[0],), (net.n_params,))
    _check_work(work.shape[0], <object>n * (1 + 2 * net.width_sum) + net.conv_scratch,
                "forward_backward_workspace_size")
    _check_rows(n)
    for i in range(n):
        sw += sample_weight[i]
    if sw == 0.0:
        raise ZeroDivisionError("sample_weight sums to zero")
    cdef double* e = _scratch(&net)
    try:
        _conv_buffers(&net, n, True, sizeof(floating))
        with _blas_one_thread(net.has_conv):
            with nogil:
                data_loss = _forward_backward_rows(&net, cptr1(params), cptr2(X), cptr2(Y),
                                                   cptr1(sample_weight), n, <int>loss, &prm,
                                                   alpha, 1.0 / sw, ptr1(grads_out), ptr1(work),
                                                   ptr1(work) + n * (1 + 2 * net.width_sum), e,
                                                   &penalty, <uint64_t>seed, <uint64_t>step)
    finally:
        _free_conv_buffers(&net)
        free(e)
    return data_loss, penalty


def _train_epoch(
    const floating[:, ::1] X not None,  # IN (n, n_0)
    const floating[:, ::1] Y not None,  # IN (n, n_L)
    const floating[::1] sample_weight not None,  # IN (n,)
    const int64_t[::1] perm not None,  # IN (m,), the epoch's rows in order; each in [0, n)
    Py_ssize_t batch_size,
    floating[::1] params not None,  # INOUT (n_params,)
    const int64_t[:, ::1] table not None,  # IN (n_layers, N_COLUMNS): the layer table
    Py_ssize_t loss,  # codes and counts are Py_ssize_t: converted by __index__
    double loss_param,
    double alpha,
    Py_ssize_t optimizer,
    const double[::1] config not None,  # IN (N_CONFIG,): LR, MOMENTUM, BETA1, BETA2, EPSILON
    floating[:, ::1] state not None,  # INOUT (1 for SGD | 2, n_params)
    Py_ssize_t step_in,
    floating[::1] grads not None,  # OUT (n_params,), the last computed batch's gradient
    floating[::1] work not None,  # scratch: X_batch | Y_batch | w_batch | forward_backward's
    double loss_sum,  # IN, the sums of the epoch's earlier slices, continued
    double penalty_sum,  # IN
    Py_ssize_t seed,  # the dropout masks' (reference._dropout_key); a float raises
):
    cdef Net net
    cdef Py_ssize_t i, n = X.shape[0], m = perm.shape[0], B = batch_size
    cdef int64_t v, step = step_in
    cdef int nonfinite
    cdef floating* state1 = NULL
    _network(table, params.shape[0], &net)
    cdef LossParams prm = _loss_params(loss, loss_param)
    if optimizer < 0 or optimizer >= N_OPTIMIZERS:
        raise ValueError(f"unknown optimizer code {optimizer}")
    if B < 1:
        raise ValueError(f"batch_size is {B}, expected at least 1")
    _check_shape("X", (X.shape[0], X.shape[1]), (n, net.size[0]))
    _check_shape("Y", (Y.shape[0], Y.shape[1]), (n, net.size[net.n_layers]))
    _check_shape("sample_weight", (sample_weight.shape[0],), (n,))
    _check_shape("grads", (grads.shape[0],), (net.n_params,))
    _check_shape("config", (config.shape[0],), (N_CONFIG,))
    if seed < 0:
        raise ValueError("seed must be at least 0")
    cdef Py_ssize_t state_rows = 1 if optimizer == SGD or optimizer == SGD_NESTEROV else 2
    if state.shape[0] < state_rows or state.shape[1] != net.n_params:
        raise ValueError(
            f"state has shape {(state.shape[0], state.shape[1])}, expected "
            f"({state_rows}, {net.n_params}) or more rows"
        )
    _check_work(work.shape[0], _train_work(&net, B), "train_workspace_size")
    _check_rows(min(B, m))
    for i in range(m):  # a bad index must never read outside X
        v = perm[i]
        if v < 0 or v >= n:
            raise ValueError(f"perm[{i}] = {v} is out of range for {n} rows")
    if m == 0:
        return loss_sum, penalty_sum, step, 0
    if state_rows == 2:
        state1 = &state[1, 0]
    cdef double* e = _scratch(&net)
    try:
        _conv_buffers(&net, min(B, m), True, sizeof(floating))
        with _blas_one_thread(net.has_conv):
            with nogil:
                nonfinite = _train_epoch_rows(
                    &net, cptr2(X), cptr2(Y), cptr1(sample_weight), m, &perm[0], B,
                    ptr1(params), <int>loss, &prm, alpha, <int>optimizer, &config[0],
                    ptr2(state), state1, ptr1(grads), ptr1(work), e, &loss_sum, &penalty_sum,
                    &step, <uint64_t>seed,
                )
    finally:
        _free_conv_buffers(&net)
        free(e)
    return loss_sum, penalty_sum, step, nonfinite


def train_epoch_many(X, Y, sample_weight, perm, counts, batch_size, params, table, loss,
                     loss_param, alpha, optimizer, config, state, step, grads, work, sums,
                     seed, active, nonfinite_out):
    """K models of one table, one epoch (or slice) each (reference.train_epoch_many):
    model k is train_epoch on its own rows perm[k, :counts[k]], batch size, weights,
    parameters, state, config, loss parameter, alpha and seed, bit for bit. With several
    models and
    threads, the models run on the OpenMP threads (dynamically, one model per thread at
    a time), each model's epoch on its thread alone: the bits of a model's epoch never
    depend on the thread count, so they are those of train_epoch alone."""
    try:
        return _train_epoch_many(X, Y, sample_weight, perm, counts, batch_size, params,
                                 table, loss, loss_param, alpha, optimizer, config, state,
                                 step, grads, work, sums, seed, active, nonfinite_out)
    except (TypeError, ValueError) as exc:
        raise argument_error(
            "train_epoch_many", (X, Y, sample_weight, perm, counts, batch_size, params,
                                 table, loss, loss_param, alpha, optimizer, config, state,
                                 step, grads, work, sums, seed, active, nonfinite_out)
        ) or exc from None


cdef int _model_net(Net* nets, double** es, const Net* net, Py_ssize_t k, bint spread,
                    Py_ssize_t rows, bint backward, size_t itemsize) except -1:
    """Model k's copy of net (train_epoch_many, forward_many): on one thread when the
    models are spread over the threads, with its own softmax scratch es[k] and conv
    buffers for passes of ``rows`` rows (none when rows is 0). Free with
    _free_model_nets, also after a failure here."""
    nets[k] = net[0]
    if spread:
        nets[k].n_threads = 1
    es[k] = NULL
    nets[k].conv_buf = NULL
    if rows:
        es[k] = _scratch(&nets[k])
        _conv_buffers(&nets[k], rows, backward, itemsize)
    return 0


cdef void _free_model_nets(Net* nets, double** es, Py_ssize_t made) noexcept:
    """Free the first ``made`` models' buffers (_model_net), then nets and es."""
    cdef Py_ssize_t k
    for k in range(made):
        _free_conv_buffers(&nets[k])
        free(es[k])
    free(nets)
    free(es)


cdef int _check_models(Py_ssize_t K, dict rows) except -1:
    """Every per-model array has K rows, one per model (params' rows)."""
    for name, got in rows.items():
        if got != K:
            raise ValueError(f"{name} has {got} rows, expected one per model (params has {K})")
    return 0


def _train_epoch_many(
    const floating[:, ::1] X not None,  # IN (n, n_0)
    const floating[:, ::1] Y not None,  # IN (n, n_L)
    const floating[:, ::1] sample_weight not None,  # IN (K, n)
    const int64_t[:, ::1] perm not None,  # IN (K, m); model k's rows perm[k, :counts[k]]
    const int64_t[::1] counts not None,  # IN (K,)
    const int64_t[::1] batch_size not None,  # IN (K,)
    floating[:, ::1] params not None,  # INOUT (K, n_params)
    const int64_t[:, ::1] table not None,  # IN (n_layers, N_COLUMNS): the layer table
    Py_ssize_t loss,
    const double[::1] loss_param not None,  # IN (K,)
    const double[::1] alpha not None,  # IN (K,)
    Py_ssize_t optimizer,
    const double[:, ::1] config not None,  # IN (K, N_CONFIG)
    floating[:, :, ::1] state not None,  # INOUT (K, 1 for SGD | 2, n_params)
    int64_t[::1] step not None,  # INOUT (K,)
    floating[:, ::1] grads not None,  # OUT (K, n_params)
    floating[:, ::1] work not None,  # scratch (K, train_workspace_size)
    double[:, ::1] sums not None,  # INOUT (K, 2): loss_sum, penalty_sum
    const int64_t[::1] seed not None,  # IN (K,)
    const int64_t[::1] active not None,  # IN (K,)
    int64_t[::1] nonfinite_out not None,  # OUT (K,)
):
    cdef Net net
    cdef Net* nets = NULL  # one per model: each its own scratch and conv buffers
    cdef double** es = NULL
    cdef Py_ssize_t i, k, n = X.shape[0], m = perm.shape[1], B = 1
    cdef Py_ssize_t K = params.shape[0], made = 0
    cdef int64_t v
    cdef LossParams* prms = NULL
    cdef bint spread
    _network(table, params.shape[1], &net)
    _check_models(K, {"sample_weight": sample_weight.shape[0], "perm": perm.shape[0],
                      "counts": counts.shape[0], "batch_size": batch_size.shape[0], "loss_param": loss_param.shape[0],
                      "alpha": alpha.shape[0], "config": config.shape[0],
                      "state": state.shape[0], "step": step.shape[0],
                      "grads": grads.shape[0], "work": work.shape[0],
                      "sums": sums.shape[0], "seed": seed.shape[0],
                      "active": active.shape[0], "nonfinite_out": nonfinite_out.shape[0]})
    if optimizer < 0 or optimizer >= N_OPTIMIZERS:
        raise ValueError(f"unknown optimizer code {optimizer}")
    for k in range(K):
        if batch_size[k] < 1:
            raise ValueError(f"batch_size[{k}] is {batch_size[k]}, expected at least 1")
        B = max(B, batch_size[k])  # the workspace holds the largest batch's
    _check_shape("X", (X.shape[0], X.shape[1]), (n, net.size[0]))
    _check_shape("Y", (Y.shape[0], Y.shape[1]), (n, net.size[net.n_layers]))
    _check_shape("sample_weight", (sample_weight.shape[0], sample_weight.shape[1]), (K, n))
    _check_shape("grads", (grads.shape[0], grads.shape[1]), (K, net.n_params))
    _check_shape("config", (config.shape[0], config.shape[1]), (K, N_CONFIG))
    _check_shape("sums", (sums.shape[0], sums.shape[1]), (K, 2))
    cdef Py_ssize_t state_rows = 1 if optimizer == SGD or optimizer == SGD_NESTEROV else 2
    if state.shape[1] < state_rows or state.shape[2] != net.n_params:
        raise ValueError(
            f"state has shape {(state.shape[0], state.shape[1], state.shape[2])}, expected "
            f"({K}, {state_rows}, {net.n_params}) or more rows per model"
        )
    _check_work(work.shape[1], _train_work(&net, B), "train_workspace_size")
    _check_rows(min(B, m))
    for k in range(K):
        if counts[k] < 0 or counts[k] > m:
            raise ValueError(f"counts[{k}] = {counts[k]}, expected a count in [0, {m}]")
        if seed[k] < 0:
            raise ValueError(f"seed[{k}] = {seed[k]}, expected at least 0")
        for i in range(counts[k]):  # a bad index must never read outside X
            v = perm[k, i]
            if v < 0 or v >= n:
                raise ValueError(f"perm[{k}, {i}] = {v} is out of range for {n} rows")
    for k in range(K):
        nonfinite_out[k] = 0
    # several models on several threads: each model's epoch runs on one thread
    spread = K > 1 and net.n_threads > 1
    nets = <Net*>malloc(max(K, 1) * sizeof(Net))
    es = <double**>malloc(max(K, 1) * sizeof(double*))
    prms = <LossParams*>malloc(max(K, 1) * sizeof(LossParams))
    if nets == NULL or es == NULL or prms == NULL:
        free(nets)
        free(es)
        free(prms)
        raise MemoryError()
    try:
        for k in range(K):
            prms[k] = _loss_params(loss, loss_param[k])
            made = k + 1
            _model_net(nets, es, &net, k, spread,
                       min(batch_size[k], counts[k]) if active[k] else 0, True,
                       sizeof(floating))
        with _blas_one_thread(net.has_conv or spread):
            with nogil:
                if spread:
                    for k in prange(K, num_threads=net.n_threads, schedule="dynamic"):
                        _train_model(&nets[k], X, Y, sample_weight, perm, counts, batch_size,
                                     params, loss, prms, alpha, optimizer, config, state, step,
                                     grads, work, sums, seed, active, nonfinite_out, es, k)
                else:
                    for k in range(K):
                        _train_model(&nets[k], X, Y, sample_weight, perm, counts, batch_size,
                                     params, loss, prms, alpha, optimizer, config, state, step,
                                     grads, work, sums, seed, active, nonfinite_out, es, k)
    finally:
        _free_model_nets(nets, es, made)
        free(prms)


cdef void _train_model(
    const Net* net, const floating[:, ::1] X, const floating[:, ::1] Y,
    const floating[:, ::1] sample_weight, const int64_t[:, ::1] perm,
    const int64_t[::1] counts, const int64_t[::1] B, floating[:, ::1] params,
    Py_ssize_t loss,
    const LossParams* prms, const double[::1] alpha, Py_ssize_t optimizer,
    const double[:, ::1] config, floating[:, :, ::1] state, int64_t[::1] step,
    floating[:, ::1] grads, floating[:, ::1] work, double[:, ::1] sums,
    const int64_t[::1] seed, const int64_t[::1] active, int64_t[::1] nonfinite_out,
    double** es, Py_ssize_t k,
) noexcept nogil:
    """Model k's epoch of train_epoch_many (_train_epoch_rows on its own arrays)."""
    cdef floating* state1 = NULL
    cdef int64_t step_k = step[k]
    if not active[k] or counts[k] == 0:
        return
    if optimizer != SGD and optimizer != SGD_NESTEROV:
        state1 = &state[k, 1, 0]
    nonfinite_out[k] = _train_epoch_rows(
        net, cptr2(X), cptr2(Y), &sample_weight[k, 0], counts[k], &perm[k, 0], B[k],
        &params[k, 0], <int>loss, &prms[k], alpha[k], <int>optimizer, &config[k, 0],
        &state[k, 0, 0], state1, &grads[k, 0], &work[k, 0], es[k], &sums[k, 0],
        &sums[k, 1], &step_k, <uint64_t>seed[k])
    step[k] = step_k
