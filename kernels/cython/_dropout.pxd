# Dropout masks for dense.pyx (the dropout_ kernel) and train.pyx (training with the
# table's DROP): the declarations of _dropout.h, which holds the hash and the mask loops
# (fastnn.kernels.reference's section "dropout" is the spec). Declarations and inline
# functions only: cimporting this file creates no runtime import.
#
# Unit u of a layer's (n, k) mask (u = i * k + j: row i of the whole batch, column j) is
# kept iff mix64(key + (u + 1) * G) >= thr, key = dropout_key(seed, step, layer) and
# thr = dropout_threshold(p) = floor(p * 2**64): a pure function of (key, u), so the
# column blocks on the threads draw the same bits whoever runs them, and the backward
# pass draws the forward's mask again instead of storing it.

from libc.stdint cimport uint64_t

from _common cimport floating

cdef extern from "_dropout.h":
    uint64_t fastnn_mix64(uint64_t z) noexcept nogil
    uint64_t fastnn_dropout_key(uint64_t seed, uint64_t step, uint64_t layer) noexcept nogil
    uint64_t fastnn_dropout_threshold(double p) noexcept nogil
    void fastnn_dropout_f64(double* x, Py_ssize_t rows, Py_ssize_t k, Py_ssize_t c0,
                            Py_ssize_t c1, uint64_t key, uint64_t u0, uint64_t thr,
                            double scale) noexcept nogil
    void fastnn_dropout_f32(float* x, Py_ssize_t rows, Py_ssize_t k, Py_ssize_t c0,
                            Py_ssize_t c1, uint64_t key, uint64_t u0, uint64_t thr,
                            double scale) noexcept nogil


ctypedef struct Mask:  # one layer's mask in one batch
    uint64_t key  # dropout_key(seed, step, layer)
    uint64_t thr  # dropout_threshold(p): unit u is kept iff mix64(key + (u + 1) G) >= thr


cdef inline Mask dropout_mask(uint64_t seed, uint64_t step, uint64_t layer,
                              double p) noexcept nogil:
    """The mask of layer ``layer`` (dropout probability p) in the batch of update ``step``.
    int64 seeds and steps are taken modulo 2**64, as the reference's & (2**64 - 1)."""
    cdef Mask m
    m.key = fastnn_dropout_key(seed, step, layer)
    m.thr = fastnn_dropout_threshold(p)
    return m


cdef inline void drop_cols(
    floating* x,  # INOUT rows [0, rows) of (., k), row-major with row stride k
    Py_ssize_t rows,
    Py_ssize_t k,
    Py_ssize_t c0,
    Py_ssize_t c1,
    const Mask* mask,
    Py_ssize_t u0,  # the unit of x[0] (0 where x is the array's start)
    double scale,
) noexcept nogil:
    """Columns [c0, c1) of x: x[i, j] = x[i, j] * scale where unit u0 + i * k + j is kept,
    +0.0 where it is dropped (the product in double, stored in the array type)."""
    if floating is double:
        fastnn_dropout_f64(x, rows, k, c0, c1, mask.key, <uint64_t>u0, mask.thr, scale)
    else:
        fastnn_dropout_f32(x, rows, k, c0, c1, mask.key, <uint64_t>u0, mask.thr, scale)
