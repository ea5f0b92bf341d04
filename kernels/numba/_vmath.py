"""Branch-free float64 exp, tanh and logistic that LLVM vectorizes without ``fastmath``.

The same algorithm as ``kernels/cython/_vmath.pxd``, operation for operation, so the two
backends give the same bits (the derivation is written there; there the math sits inside
the array loops, here in scalar functions, which LLVM inlines into them). A loop over an
array of these compiles to vector code for the machine Numba targets (AVX2 or AVX-512: 4
or 8 doubles per instruction) instead of one libm call per element: only arithmetic,
integer operations on the bits of the doubles and bit-mask selects, no libm call, no
branch. A loop vectorizes only if LLVM can rule out that its output overlaps its input:
for in-place use, loop over the one array (see dense.py).

Integers are uint64 throughout: Numba turns uint64 mixed with int64 into float64, and
the wrapping uint64 arithmetic gives the bits the signed arithmetic of the Cython code
gives. Maximum errors are measured in tests/test_vmath.py.

Numba's on-disk cache of the kernels that use these (dense.py, and train.py through it)
is keyed on their own files only: after editing this module, clear
``kernels/numba/__pycache__`` (or use an empty ``NUMBA_CACHE_DIR``), or the cached
kernels keep the old math.
"""

import functools
import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._config import jit


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as a uint64 (a bitcast, no conversion)."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, u):
    """The float64 whose bits are the uint64 u."""
    if not isinstance(u, types.Integer) or u.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(u), codegen


if numba.config.DISABLE_JIT:  # plain Python (coverage runs): the same bits through NumPy

    def _bits(x):
        return np.float64(x).view(np.uint64)

    def _from_bits(u):
        return np.uint64(u).view(np.float64)


_SIGN_OFF = np.uint64(0x7FFFFFFFFFFFFFFF)
_INF_BITS = np.uint64(0x7FF0000000000000)
_ROUND_SHIFT = 6755399441055744.0  # 1.5 * 2**52
_ROUND_SHIFT_BITS = np.uint64(0x4338000000000000)
_CLAMP_EXP_BITS = np.uint64(0x4087500000000000)  # 746.0
_CLAMP_TANH_BITS = np.uint64(0x4034000000000000)  # 20.0
_TANH_SMALL_BITS = np.uint64(0x3FE4000000000000)  # 0.625
_U0 = np.uint64(0)
_U52 = np.uint64(52)
_U63 = np.uint64(63)
_U1023 = np.uint64(1023)
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@jit
def _below(a, c):
    """All ones if a < c, else 0 (uint64 bits of doubles >= +0 or NaN)."""
    return _U0 - ((a - c) >> _U63)


@jit
def _select(mask, if_set, if_clear):
    """if_set where mask is all ones, if_clear where it is 0."""
    return _from_bits((_bits(if_set) & mask) | (_bits(if_clear) & ~mask))


@jit
def _expm1_reduced(r):
    """exp(r) - 1 for |r| <= ln2/2: r + r**2 Q(r), Q the degree-9 minimax polynomial
    (Estrin's scheme), as _vmath.pxd."""
    r2 = r * r
    r4 = r2 * r2
    p0 = 0.5000000000000011 + 0.16666666666666413 * r
    p1 = 0.04166666666653081 + 0.008333333333493669 * r
    p2 = 0.001388888894343414 + 0.0001984126950782911 * r
    p3 = 2.480149332428289e-05 + 2.7557585690682767e-06 * r
    p4 = 2.763016096987916e-07 + 2.5000137577444022e-08 * r
    return r + r2 * ((p0 + p1 * r2) + r4 * ((p2 + p3 * r2) + r4 * p4))


@jit
def _pow2(k_bits):
    """2.0**k from its bits, k in [-1022, 1023] given as k + ROUND_SHIFT's bits minus
    them (a uint64 that wraps for k < 0)."""
    return _from_bits((k_bits + _U1023) << _U52)


@jit
def exp(x):
    """exp(x) for every float64, as NumPy's: +inf above 709.78, subnormals down to
    -745.13, 0 below, exp(+inf) = +inf, exp(-inf) = 0, NaN kept. |x| is clamped at 746
    (where exp is inf or 0) and 2**k applied as 2**k1 2**(k - k1), k1 = round(k / 2): each
    factor is a normal double, so the result is rounded once, also when subnormal.
    The exp of softmax, the Poisson loss and the log-losses, as _vmath.pxd's vexp.
    Max error (tests/test_vmath.py): 1.04 ulp (np.exp: 0.71), 1 ulp from np.exp; rounded
    to float32 0.5 ulp."""
    x = np.float64(x)  # a float32 argument is computed in float64 too
    a = _bits(x) & _SIGN_OFF
    out_of_range = _below(_CLAMP_EXP_BITS, a) & ~_below(_INF_BITS, a)
    x = _select(out_of_range, math.copysign(746.0, x), x)
    t = x * _INV_LN2 + _ROUND_SHIFT
    kd = t - _ROUND_SHIFT
    h = kd * 0.5 + _ROUND_SHIFT
    r = (x - kd * _LN2_HI) - kd * _LN2_LO
    return ((1.0 + _expm1_reduced(r)) * _pow2(_bits(h) - _ROUND_SHIFT_BITS)) * _pow2(
        _bits(t) - _bits(h))


@jit
def tanh(x):
    """tanh(x), odd by construction: for |x| < 0.625, x + x z P(z) / Q(z), z = x**2
    (Cephes); from 0.625 on, 1 - 2 / (exp(2|x|) + 1), |x| clamped at 20 (tanh is 1.0 in
    double from 19.06 on). tanh(+-0) = +-0, tanh(+-inf) = +-1, NaN kept.
    Max error (tests/test_vmath.py): float64 1.34 ulp (np.tanh's: 1.19), 2 ulp from
    np.tanh; rounded to float32 0.5 ulp, the same bits as NumPy's reference (np.tanh in
    float64, rounded) for all 2**32 float32 inputs."""
    x = np.float64(x)
    abits = _bits(x) & _SIGN_OFF
    a = _select(_below(_CLAMP_TANH_BITS, abits) & ~_below(_INF_BITS, abits), 20.0, abs(x))
    z = a * a
    small = a + a * (z * ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                          - 1.61468768441708447952e3)
                     / (((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                        + 4.84406305325125486048e3))
    y = 2.0 * a
    t = y * _INV_LN2 + _ROUND_SHIFT
    kd = t - _ROUND_SHIFT
    r = (y - kd * _LN2_HI) - kd * _LN2_LO
    large = 1.0 - 2.0 / ((1.0 + _expm1_reduced(r)) * _pow2(_bits(t) - _ROUND_SHIFT_BITS)
                         + 1.0)
    return math.copysign(_select(_below(abits, _TANH_SMALL_BITS), small, large), x)


@jit
def expit(x):
    """Logistic 1 / (1 + exp(-x)) through e = exp(-|x|): 1 / (1 + e) for x >= 0,
    e / (1 + e) for x < 0 (by the sign bit). expit(+inf) = 1, expit(-inf) = 0, NaN kept.
    Max error (tests/test_vmath.py): float64 2.46 ulp (the formula's: NumPy's reference
    has the same), 2 ulp from NumPy's; rounded to float32 0.5 ulp (all 2**32 inputs; up
    to double rounding), 1 ulp from NumPy's."""
    x = np.float64(x)
    e = exp(-abs(x))
    negative = _U0 - (_bits(x) >> _U63)
    return _select(negative, e, 1.0) / (1.0 + e)


if numba.config.DISABLE_JIT:

    def _wrapping(func):
        """func with NumPy's warnings on uint64 wrap-around off (the wrapping is meant)."""
        @functools.wraps(func)
        def wrapped(x):
            with np.errstate(over="ignore"):
                return func(x)
        return wrapped

    exp, tanh, expit = _wrapping(exp), _wrapping(tanh), _wrapping(expit)
