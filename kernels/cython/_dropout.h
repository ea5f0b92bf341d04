/* Dropout masks from a counter-based hash (fastnn.kernels.reference, section "dropout";
   _dropout.pxd declares these): SplitMix64's output function mix64 (Steele, Lea and
   Flood, 2014) on uint64, all arithmetic modulo 2**64. Unit u of a layer's mask is kept
   iff mix64(key + (u + 1) * G) >= thr, key = dropout_key(seed, step, layer), thr =
   floor(p * 2**64): no memory, no RNG state, the same bits for any thread count and in
   the three implementations.

   The mask loops are compiled twice, for x86-64-v4 (AVX-512 with DQ's vpmullq, the
   64-bit multiply: 8 units per instruction) and the baseline, and the loader picks the
   one the CPU has (gcc's target_clones, as _vmath.h's loops). No AVX2 clone: without a
   64-bit vector multiply (emulated by three 32-bit ones) it is slower than the scalar
   loop. Measured (64 x 256, gcc 12 -O3): v4 0.38 ns per unit in float64, 0.50 in
   float32; AVX-512F alone 0.56 / 0.69; AVX2 0.87 / 1.06; baseline (scalar) 0.79 / 0.77.
   Integer hashing and one product by the scale (no contraction: setup.py compiles with
   -ffp-contract=off): the same bits on each. */
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FASTNN_DROPOUT_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define FASTNN_DROPOUT_CLONES
#endif

#define FASTNN_GAMMA 0x9E3779B97F4A7C15ULL /* SplitMix64's increment: 2**64 / golden ratio */

/* SplitMix64's output function: a bijection of uint64 whose every output bit depends on
   every input bit. */
static inline uint64_t fastnn_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The key of layer `layer`'s mask in the batch that makes update `step`:
   mix64(mix64(mix64(seed) + step * G) + (layer + 1) * G). */
static inline uint64_t fastnn_dropout_key(uint64_t seed, uint64_t step, uint64_t layer) {
    return fastnn_mix64(fastnn_mix64(fastnn_mix64(seed) + step * FASTNN_GAMMA)
                        + (layer + 1) * FASTNN_GAMMA);
}

/* floor(p * 2**64) for p in [0, 1): the product is exact (a power-of-two scale) and
   below 2**64, and the conversion truncates. */
static inline uint64_t fastnn_dropout_threshold(double p) {
    return (uint64_t)(p * 18446744073709551616.0);
}

/* Columns [c0, c1) of `rows` rows of a row-major array with row stride k, starting at x:
   x[i*k + j] = keep(u0 + i*k + j) ? x * scale : 0 (+0.0; the product in double, stored in
   the type), keep(u) iff mix64(key + (u + 1) * G) >= thr. The select is a bit mask, so
   the loop vectorizes (gcc's -ftrapping-math keeps a product on one side of a branch).
   scale == 1 (the forward pass's masks) has a loop of its own that only masks the bits:
   x * 1.0 is x, and float32 then skips the round trip through double. */
#define FASTNN_DROPOUT_LOOP(type, utype, value)                                            \
    for (Py_ssize_t i = 0; i < rows; i++) {                                                \
        type* r = x + i * k;                                                               \
        uint64_t base = key + (u0 + (uint64_t)(i * k) + 1) * FASTNN_GAMMA;                \
        for (Py_ssize_t j = c0; j < c1; j++) {                                             \
            uint64_t h = fastnn_mix64(base + (uint64_t)j * FASTNN_GAMMA);                 \
            type v = (value);                                                              \
            utype b;                                                                       \
            memcpy(&b, &v, sizeof(type));                                                  \
            b &= (utype)0 - (utype)(h >= thr);                                             \
            memcpy(&r[j], &b, sizeof(type));                                               \
        }                                                                                  \
    }
#define FASTNN_DROPOUT(name, type, utype)                                                  \
    FASTNN_DROPOUT_CLONES static void name(type* x, Py_ssize_t rows, Py_ssize_t k,          \
                                           Py_ssize_t c0, Py_ssize_t c1, uint64_t key,      \
                                           uint64_t u0, uint64_t thr, double scale) {       \
        if (scale == 1.0) {                                                                \
            FASTNN_DROPOUT_LOOP(type, utype, r[j])                                         \
        } else {                                                                           \
            FASTNN_DROPOUT_LOOP(type, utype, (type)((double)r[j] * scale))                 \
        }                                                                                  \
    }
FASTNN_DROPOUT(fastnn_dropout_f64, double, uint64_t)
FASTNN_DROPOUT(fastnn_dropout_f32, float, uint32_t)
#undef FASTNN_DROPOUT
#undef FASTNN_DROPOUT_LOOP
