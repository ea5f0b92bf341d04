# Branch-free tanh, logistic and exp in double that gcc vectorizes without -ffast-math.
#
# A loop over an array compiles to packed SSE2 code (2 doubles per instruction on the
# baseline x86-64) instead of one libm call per element: only arithmetic and integer
# operations on the bits of the doubles, no libm call, no branch, no comparison of
# doubles. Two rules make that hold whatever gcc decides:
# - Selects are bit masks (_below, _select). gcc's default -ftrapping-math does not
#   vectorize `c if x > t else x` when the two sides lead to different arithmetic (it moves
#   the arithmetic into one side of a branch, which it then may not run unconditionally).
#   A clamp through a mask also keeps NaN.
# - The array loops (tanh_array, expit_array) call only small helpers that gcc always
#   inlines (_exp_reduced, vexp: measured, the loops run as fast as with the math written
#   in). A loop calling a scalar tanh(x) function vectorizes only where gcc inlines that
#   function, and gcc's heuristics left some call sites of activation_rows' copies out of
#   line.
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

from libc.math cimport copysign, fabs
from libc.stdint cimport int64_t, uint64_t

from _common cimport floating


cdef union f64_bits:
    double d
    uint64_t u
    int64_t i


cdef inline uint64_t _bits(double x) noexcept nogil:
    cdef f64_bits b
    b.d = x
    return b.u


cdef inline double _from_bits(uint64_t u) noexcept nogil:
    cdef f64_bits b
    b.u = u
    return b.d


cdef inline uint64_t _below(uint64_t a, uint64_t c) noexcept nogil:
    """All ones if a < c, else 0; a and c below 2**63 (bits of doubles >= +0 or NaN):
    their order is the order of the doubles, NaN above +inf."""
    return <uint64_t>0 - ((a - c) >> 63)


cdef inline double _select(uint64_t mask, double if_set, double if_clear) noexcept nogil:
    """if_set where mask is all ones, if_clear where it is 0 (a mask from _below)."""
    return _from_bits((_bits(if_set) & mask) | (_bits(if_clear) & ~mask))


cdef inline double _pow2(int64_t k) noexcept nogil:
    """2.0**k from its bits, for integers k in [-1022, 1023]."""
    return _from_bits(<uint64_t>(k + 1023) << 52)


cdef inline double _exp_reduced(double r) noexcept nogil:
    """exp(r) for |r| <= ln2/2: 1 + r + r**2 Q(r), Q in Estrin's scheme (the header)."""
    cdef double r2 = r * r, r4 = r2 * r2
    return 1.0 + (r + r2 * (((0.5000000000000011 + 0.16666666666666413 * r)
                             + (0.04166666666653081 + 0.008333333333493669 * r) * r2)
                            + r4 * (((0.001388888894343414 + 0.0001984126950782911 * r)
                                     + (2.480149332428289e-05 + 2.7557585690682767e-06 * r) * r2)
                                    + r4 * (2.763016096987916e-07 + 2.5000137577444022e-08 * r))))


cdef inline double vexp(double x) noexcept nogil:
    """exp(x) for every double, as NumPy's: +inf above 709.78, subnormals down to
    -745.13, 0 below, exp(+inf) = +inf, exp(-inf) = 0, NaN kept. The reduction of the
    header with |x| clamped at 746 (where exp is inf or 0) and 2**k applied as
    2**k1 2**(k - k1), k1 = round(k / 2): each factor is a normal double, so the result
    is rounded once, also when subnormal. Scalar, for loops that inline it (gcc does:
    expit_array's loop vectorizes with it); the exp of softmax, the Poisson loss and the
    log-losses. The log-losses' log and log1p stay libm's: one per row (softmax) or per
    output, not per hidden unit.
    Max error (tests/test_vmath.py): 1.04 ulp (np.exp: 0.71), 1 ulp from np.exp; rounded
    to float32 0.5 ulp."""
    cdef f64_bits t, h
    cdef double kd, r
    cdef uint64_t abits = _bits(x) & 0x7fffffffffffffffULL
    # 746 < |x| <= inf: +-746 (NaN kept)
    x = _select(_below(0x4087500000000000ULL, abits) & ~_below(0x7ff0000000000000ULL, abits),
                copysign(746.0, x), x)
    t.d = x * 1.4426950408889634 + 6755399441055744.0
    kd = t.d - 6755399441055744.0
    h.d = kd * 0.5 + 6755399441055744.0  # k1 = round(k / 2)
    r = (x - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10
    return (_exp_reduced(r) * _pow2(h.i - 0x4338000000000000LL)) * _pow2(t.i - h.i)


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
    cdef Py_ssize_t i
    cdef f64_bits t
    cdef double xi, a, z, small, y, kd, r, large
    cdef uint64_t abits
    for i in range(n):
        xi = x[i]
        abits = _bits(xi) & 0x7fffffffffffffffULL
        # 20 < |x| <= inf: 20 (NaN kept)
        a = _select(_below(0x4034000000000000ULL, abits)
                    & ~_below(0x7ff0000000000000ULL, abits), 20.0, fabs(xi))
        z = a * a
        small = a + a * (z * ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                              - 1.61468768441708447952e3)
                         / (((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                            + 4.84406305325125486048e3))
        # exp(y), y = 2a in [0, 40]: k <= 58, 2**k in one step
        y = 2.0 * a
        t.d = y * 1.4426950408889634 + 6755399441055744.0
        kd = t.d - 6755399441055744.0
        r = (y - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10
        large = 1.0 - 2.0 / (_exp_reduced(r) * _pow2(t.i - 0x4338000000000000LL) + 1.0)
        # |x| < 0.625: small
        out[i] = copysign(_select(_below(abits, 0x3fe4000000000000ULL), small, large), xi)


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
    cdef Py_ssize_t i
    cdef double xi, e
    for i in range(n):
        xi = x[i]
        e = vexp(-fabs(xi))
        # x < 0 (sign bit set): e / (1 + e)
        out[i] = _select(<uint64_t>0 - (_bits(xi) >> 63), e, 1.0) / (1.0 + e)
