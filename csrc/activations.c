/* Elementwise activations, softmax, PReLU and column sums, in float and double. */
#include <math.h>
#include "internal.h"

#define FM_SQRT2 1.41421356237309504880
#define FM_INV_SQRT_2PI 0.39894228040143267794

/* activations_impl.h: exp and expm1 of y <= 0 in plain arithmetic, for the loops of sigmoid,
 * tanh, SiLU, ELU, softplus and GELU: a call of libm's keeps a loop scalar, and tanhf alone was
 * a third of training time with tanh layers. y = k ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2
 * split so that k ln2_hi is exact; k rounded by the 1.5 * 2^p shift, whose low bits are k, so
 * 2^k is built from them without a float-to-int conversion); expm1(r) by its Taylor series to
 * below half an ulp (float to r^8/8!, double to r^13/13!); exp(y) = 2^k (1 + expm1(r)),
 * expm1(y) = 2^k expm1(r) + (2^k - 1). 2^k is applied as 2^(k+64) * 2^-64, so that results
 * below the smallest normal number round to subnormals as libm's do. Below the smallest
 * subnormal result exp is 0 and expm1 -1; NaN propagates. No FMA, so every SIMD clone rounds
 * alike. Within 2.5 ulp of the exact values (tanh, sigmoid; measured against long double on 3
 * million points). */
typedef union { float f; uint32_t u; } fm_bits_f32;
typedef union { double f; uint64_t u; } fm_bits_f64;
/* 1/2!, 1/3!, ...: the Taylor coefficients of (expm1(r) - r) / r^2 */
static const float fm_expm1_c_f32[7] = {1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720,
                                         1.0f / 5040, 1.0f / 40320};
static const double fm_expm1_c_f64[12] = {1.0 / 2,        1.0 / 6,         1.0 / 24,
                                          1.0 / 120,      1.0 / 720,       1.0 / 5040,
                                          1.0 / 40320,    1.0 / 362880,    1.0 / 3628800,
                                          1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800};

/* activations_impl.h: log1p(u) for 0 <= u <= 1 (softplus's log1p(exp(-|x|))), in plain
 * arithmetic for the same reason. w = 1 + u rounded, and (u - (w - 1)) / w adds back what the
 * rounding lost; w = 2^k f with k = 0 or 1 and f in [sqrt(2)/2, sqrt(2)]; with g = f - 1 (exact)
 * and s = g / (2 + g), log f = 2 atanh s = g - s (g - R), R = 2s^2/3 + 2s^4/5 + ..., since
 * 2s = g - s g. The error of s then weighs only on the small correction s (g - R). Within 1.3
 * ulp of long double's log1p (float to 2s^8/9, double to 2s^20/21; one term fewer: 2.1 and
 * 1.3 ulp). */
static const float fm_log1p_c_f32[4] = {2.0f / 3, 2.0f / 5, 2.0f / 7, 2.0f / 9};
static const double fm_log1p_c_f64[10] = {2.0 / 3,  2.0 / 5,  2.0 / 7,  2.0 / 9,  2.0 / 11,
                                          2.0 / 13, 2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21};

/* activations_impl.h: the normal CDF for GELU, in plain arithmetic too. For a = |z| / sqrt(2),
 * erfc(a) = tau exp(-a^2 + L(tau)) with tau = 1 / (1 + q|z|), where L is smooth on [0, 1]
 * (L(1) = 0, L(0) = log(q sqrt(2/pi))). L = (1 - tau) M(tau) = q|z| tau M(tau), so that L's
 * error shrinks with it near z = 0 (L fitted directly left Phi 5 ulp off at tiny z). M is a
 * polynomial in u = tau UA - UB (tau's range mapped onto [-1, 1]) fitted at Chebyshev nodes
 * in 50 digits by csrc/fit_normal_cdf.py (fit error float 2e-8, double 3e-18). exp(-z^2/2) is
 * split as exp(-h^2/2) exp(-(|z| - h)(|z| + h)/2), h = |z| with its low bits cleared so that
 * h^2 is exact: z^2/2 rounded would cost (z^2/2) ulp (100 ulp for float at z = -14).
 * Phi(-|z|) = erfc(a) / 2 has no cancellation, so GELU's tail keeps its relative accuracy,
 * which 0.5 z (1 + erf(z / sqrt 2)) loses (float: 4% off at z = -5, 0 from z = -6). */
static const float fm_ncdf_c_f32[11] = {
    -0x1.ddb646p-1f, 0x1.23b24ap-3f, 0x1.263032p-5f, -0x1.55964ep-6f,
    0x1.9b182ap-12f, 0x1.a6d2c6p-9f, -0x1.33e6c2p-10f, -0x1.f4fa1ap-13f,
    0x1.4e6ep-12f, -0x1.9983dep-16f, -0x1.390e56p-15f};
static const double fm_ncdf_c_f64[27] = {
    -0x1.5c47a053e1dc2p+0, 0x1.bb541dbc1a8f4p-8, 0x1.593a8b61899f7p-4,
    -0x1.e8efc237a975p-13, -0x1.a0713d2d23161p-7, 0x1.1d8eddfc36f87p-10,
    0x1.3bf6849e5d4dep-9, -0x1.3b1f48ce7b55ap-11, -0x1.c93d077734c7fp-12,
    0x1.e298162fdf706p-13, 0x1.b07775bf4d33dp-15, -0x1.1e5d3eee78e08p-14,
    0x1.7431da0866ccfp-18, 0x1.f5e2b04a5dbc4p-17, -0x1.7dfa016027304p-18,
    -0x1.e695c3a7f1e52p-20, 0x1.f920ac6de05f7p-20, -0x1.9dbc8a8c01a24p-23,
    -0x1.74001853fd99fp-22, 0x1.4fcfb4064d0cep-23, 0x1.188f6686c0c4ep-26,
    -0x1.3b570b29657bcp-25, 0x1.44d48e65f163fp-27, 0x1.0b6b74166b5dp-28,
    -0x1.55fddefa29f54p-29, -0x1.5dde6ad93a15ep-34, 0x1.cfd7979386441p-33};

#define T float
#define FM_SUFFIX f32
#define EXP expf
#define LOG1P_C fm_log1p_c_f32
#define FABS fabsf
#define COPYSIGN copysignf
#define EXP_BITS fm_bits_f32
#define EXP_MIN -104.0f /* e^-104 is below half the smallest subnormal float */
#define EXP_INV_LN2 0x1.715476p0f
#define EXP_SHIFT 0x1.8p23f
#define EXP_LN2_HI 0x1.62e4p-1f
#define EXP_LN2_LO 0x1.7f7d1cp-20f
#define EXP_BIAS 127u
#define EXP_MANT 23
#define EXPM1_C fm_expm1_c_f32
#define NCDF_C fm_ncdf_c_f32
#define NCDF_Q 0.45f
#define NCDF_UA 0x1.27c84ep+1f
#define NCDF_UB 0x1.4f909cp+0f
#define NCDF_ZMAX 14.3f /* Phi(-14.3) is below half the smallest subnormal float */
#define NCDF_HIGH_BITS 0xfffff000u
#include "activations_impl.h"
#undef T
#undef FM_SUFFIX
#undef EXP
#undef LOG1P_C
#undef FABS
#undef COPYSIGN
#undef EXP_BITS
#undef EXP_MIN
#undef EXP_INV_LN2
#undef EXP_SHIFT
#undef EXP_LN2_HI
#undef EXP_LN2_LO
#undef EXP_BIAS
#undef EXP_MANT
#undef EXPM1_C
#undef NCDF_C
#undef NCDF_Q
#undef NCDF_UA
#undef NCDF_UB
#undef NCDF_ZMAX
#undef NCDF_HIGH_BITS

#define T double
#define FM_SUFFIX f64
#define EXP exp
#define LOG1P_C fm_log1p_c_f64
#define FABS fabs
#define COPYSIGN copysign
#define EXP_BITS fm_bits_f64
#define EXP_MIN -746.0
#define EXP_INV_LN2 0x1.71547652b82fep0
#define EXP_SHIFT 0x1.8p52
#define EXP_LN2_HI 0x1.62e42feep-1
#define EXP_LN2_LO 0x1.a39ef35793c76p-33
#define EXP_BIAS 1023u
#define EXP_MANT 52
#define EXPM1_C fm_expm1_c_f64
#define NCDF_C fm_ncdf_c_f64
#define NCDF_Q 0.35
#define NCDF_UA 0x1.12f2ecdc90c51p+1
#define NCDF_UB 0x1.25e5d9b9218a2p+0
#define NCDF_ZMAX 38.6
#define NCDF_HIGH_BITS 0xfffffffff8000000u
#include "activations_impl.h"
