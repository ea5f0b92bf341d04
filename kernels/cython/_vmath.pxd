# Branch-free tanh, logistic and exp in double that gcc vectorizes without -ffast-math.
#
# The math is C, in _vmath.h (this file declares it): its array loops are compiled for
# AVX-512, AVX2 and the baseline and the loader picks the widest the CPU has (8, 4 or 2
# doubles per instruction), the same bits on each. A loop vectorizes because it has only
# arithmetic and integer operations on the bits of the doubles, no libm call, no branch,
# no comparison of doubles. Two rules make that hold whatever gcc decides:
# - Selects are bit masks (fastnn_below, fastnn_select). gcc's default -ftrapping-math does not
#   vectorize `c if x > t else x` when the two sides lead to different arithmetic (it moves
#   the arithmetic into one side of a branch, which it then may not run unconditionally).
#   A clamp through a mask also keeps NaN.
# - The array loops are whole functions of their own (not inlined into the callers,
#   whose own heuristics left some copies of a loop unvectorized), calling only small
#   static inline helpers.
#
# kernels/numba/_vmath.py is the same algorithm, operation for operation: the two
# backends give the same bits (tests/test_vmath.py checks it, and measures the errors
# over the whole float64 range and all float32 values; the bounds are quoted below).
#
# exp(y) = 2**k exp(r), k = round(y / ln 2), r = y - k ln 2 in [-ln2/2, ln2/2], with
# ln 2 = LN2_HI + LN2_LO (Cody-Waite: LN2_HI = 6.93147180369123816490e-01 has 32
# trailing zero bits, so k LN2_HI and y - k LN2_HI are exact for |k| < 2**20; LN2_LO =
# 1.90821492927058770002e-10). k is rounded by adding ROUND_SHIFT = 1.5 * 2**52 =
# 6755399441055744.0: the sum holds round(y / ln 2) in its low bits (its bits minus
# ROUND_SHIFT's, 0x4338000000000000, are k as an integer) and the sum minus ROUND_SHIFT is
# k as a double (for |y / ln 2| < 2**51). exp(r) = 1 + r + r**2 Q(r), Q the degree-9
# minimax polynomial of (exp(r) - 1 - r) / r**2 for the relative error of exp(r) (Remez;
# 3.6e-18, 0.03 ulp), evaluated in Estrin's scheme (shorter dependency chains than
# Horner's): Q = (P0 + P1 r2) + r4 ((P2 + P3 r2) + r4 P4), Pj = C(2j) + C(2j+1) r with
# C0..C9 = 0.5000000000000011, 0.16666666666666413, 0.04166666666653081,
# 0.008333333333493669, 0.001388888894343414, 0.0001984126950782911,
# 2.480149332428289e-05, 2.7557585690682767e-06, 2.763016096987916e-07,
# 2.5000137577444022e-08. 2**k is built from its bits, (k + 1023) << 52.

cdef extern from "_vmath.h":
    double fastnn_exp(double x) noexcept nogil
    void fastnn_tanh_f64(const double* x, Py_ssize_t n, double* out) noexcept nogil
    void fastnn_tanh_f32(const float* x, Py_ssize_t n, float* out) noexcept nogil
    void fastnn_expit_f64(const double* x, Py_ssize_t n, double* out) noexcept nogil
    void fastnn_expit_f32(const float* x, Py_ssize_t n, float* out) noexcept nogil

from _common cimport floating


cdef inline double vexp(double x) noexcept nogil:
    """exp(x) for every double, as NumPy's: +inf above 709.78, subnormals down to
    -745.13, 0 below, exp(+inf) = +inf, exp(-inf) = 0, NaN kept. The reduction of the
    header with |x| clamped at 746 (where exp is inf or 0) and 2**k applied as
    2**k1 2**(k - k1), k1 = round(k / 2): each factor is a normal double, so the result
    is rounded once, also when subnormal. Scalar (_vmath.h's fastnn_exp, which
    expit_array's loop inlines): the exp of softmax, the Poisson loss and the
    log-losses. The log-losses' log and log1p stay libm's: one per row (softmax) or per
    output, not per hidden unit.
    Max error (tests/test_vmath.py): 1.04 ulp (np.exp: 0.71), 1 ulp from np.exp; rounded
    to float32 0.5 ulp."""
    return fastnn_exp(x)


cdef inline void tanh_array(
    const floating* x,  # IN (n,)
    Py_ssize_t n,
    floating* out,  # OUT (n,), may be x
) noexcept nogil:
    """out = tanh(x), computed in double: odd by construction, x + x z P(z) / Q(z) with
    z = x**2 for |x| < 0.625 (Cephes' rational approximation), 1 - 2 / (exp(2|x|) + 1)
    from 0.625 on with |x| clamped at 20 (tanh is 1.0 in double from 19.06 on); both are
    computed and one selected.

    tanh(+-0) = +-0, tanh(+-inf) = +-1, NaN kept, subnormals kept.
    Max error: float64 1.34 ulp (np.tanh's: 1.19), 2 ulp from np.tanh; float32 0.5 ulp,
    the same bits as NumPy's reference (np.tanh in float64, rounded) for all 2**32 inputs
    (1 ulp from np.tanh on float32, whose own error is 1.37 ulp).
    """
    if floating is double:
        fastnn_tanh_f64(x, n, out)
    else:
        fastnn_tanh_f32(x, n, out)


cdef inline void expit_array(
    const floating* x,  # IN (n,)
    Py_ssize_t n,
    floating* out,  # OUT (n,), may be x
) noexcept nogil:
    """out = 1 / (1 + exp(-x)), computed in double through e = exp(-|x|), which cannot
    overflow: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0 (selected by the sign bit;
    for x = -0 both are 0.5), e from vexp.

    expit(+inf) = 1, expit(-inf) = 0, NaN kept; subnormal results below -708.4.
    Max error: float64 2.46 ulp (the formula's: NumPy's reference, the same formula with
    np.exp, has the same), 2 ulp from NumPy's; float32 0.5 ulp (all 2**32 inputs; up to
    double rounding), 1 ulp from NumPy's.
    """
    if floating is double:
        fastnn_expit_f64(x, n, out)
    else:
        fastnn_expit_f32(x, n, out)
