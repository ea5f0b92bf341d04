/* Branch-free exp, tanh and logistic in double (the algorithm and its error bounds:
   _vmath.pxd's header; kernels/numba/_vmath.py is the same, operation for operation).

   The array loops are compiled three times, for AVX-512, AVX2 and the baseline (SSE2
   on x86-64), and the loader picks the widest the CPU has (gcc's target_clones: 8, 4
   or 2 doubles per instruction). Every clone does the same IEEE operations in the same
   order (setup.py compiles with -ffp-contract=off: no fused multiply-adds), so the bits
   do not depend on the CPU. Elsewhere (another compiler or architecture) one plain
   version is compiled. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FASTNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTNN_CLONES
#endif

static inline uint64_t fastnn_bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static inline double fastnn_from_bits(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* All ones if a < c, else 0 (a, c below 2**63: bits of doubles >= +0 or NaN). */
static inline uint64_t fastnn_below(uint64_t a, uint64_t c) { return (uint64_t)0 - ((a - c) >> 63); }

/* if_set where mask is all ones, if_clear where it is 0. */
static inline double fastnn_select(uint64_t mask, double if_set, double if_clear) {
    return fastnn_from_bits((fastnn_bits(if_set) & mask) | (fastnn_bits(if_clear) & ~mask));
}

/* 2**k from its bits, k in [-1022, 1023]. */
static inline double fastnn_pow2(int64_t k) { return fastnn_from_bits((uint64_t)(k + 1023) << 52); }

/* exp(r) for |r| <= ln2/2: 1 + r + r**2 Q(r), Q in Estrin's scheme. */
static inline double fastnn_exp_reduced(double r) {
    double r2 = r * r, r4 = r2 * r2;
    return 1.0 + (r + r2 * (((0.5000000000000011 + 0.16666666666666413 * r)
                             + (0.04166666666653081 + 0.008333333333493669 * r) * r2)
                            + r4 * (((0.001388888894343414 + 0.0001984126950782911 * r)
                                     + (2.480149332428289e-05 + 2.7557585690682767e-06 * r) * r2)
                                    + r4 * (2.763016096987916e-07 + 2.5000137577444022e-08 * r))));
}

static inline int64_t fastnn_int_bits(double x) { int64_t i; memcpy(&i, &x, 8); return i; }

/* exp(x) for every double, as NumPy's (see _vmath.pxd's vexp). */
static inline double fastnn_exp(double x) {
    uint64_t abits = fastnn_bits(x) & 0x7fffffffffffffffULL;
    double t, kd, h, r;
    x = fastnn_select(fastnn_below(0x4087500000000000ULL, abits)
                      & ~fastnn_below(0x7ff0000000000000ULL, abits), copysign(746.0, x), x);
    t = x * 1.4426950408889634 + 6755399441055744.0;
    kd = t - 6755399441055744.0;
    h = kd * 0.5 + 6755399441055744.0; /* k1 = round(k / 2) */
    r = (x - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    return (fastnn_exp_reduced(r) * fastnn_pow2(fastnn_int_bits(h) - 0x4338000000000000LL))
           * fastnn_pow2(fastnn_int_bits(t) - fastnn_int_bits(h));
}

/* tanh(x) (see _vmath.pxd's tanh_array). */
static inline double fastnn_tanh(double xi) {
    uint64_t abits = fastnn_bits(xi) & 0x7fffffffffffffffULL;
    double a, z, small, y, t, kd, r, large;
    a = fastnn_select(fastnn_below(0x4034000000000000ULL, abits)
                      & ~fastnn_below(0x7ff0000000000000ULL, abits), 20.0, fabs(xi));
    z = a * a;
    small = a + a * (z * ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                          - 1.61468768441708447952e3)
                     / (((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                        + 4.84406305325125486048e3));
    y = 2.0 * a;
    t = y * 1.4426950408889634 + 6755399441055744.0;
    kd = t - 6755399441055744.0;
    r = (y - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    large = 1.0 - 2.0 / (fastnn_exp_reduced(r) * fastnn_pow2(fastnn_int_bits(t) - 0x4338000000000000LL)
                         + 1.0);
    return copysign(fastnn_select(fastnn_below(abits, 0x3fe4000000000000ULL), small, large), xi);
}

/* 1 / (1 + exp(-x)) through e = exp(-|x|) (see _vmath.pxd's expit_array). */
static inline double fastnn_expit(double xi) {
    double e = fastnn_exp(-fabs(xi));
    return fastnn_select((uint64_t)0 - (fastnn_bits(xi) >> 63), e, 1.0) / (1.0 + e);
}

#define FASTNN_ARRAY(name, f, type)                                              \
    FASTNN_CLONES static void name(const type* x, Py_ssize_t n, type* out) {     \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = (type)f((double)x[i]);       \
    }
FASTNN_ARRAY(fastnn_tanh_f64, fastnn_tanh, double)
FASTNN_ARRAY(fastnn_tanh_f32, fastnn_tanh, float)
FASTNN_ARRAY(fastnn_expit_f64, fastnn_expit, double)
FASTNN_ARRAY(fastnn_expit_f32, fastnn_expit, float)
#undef FASTNN_ARRAY
