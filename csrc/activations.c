/* Elementwise activations, softmax, PReLU and column sums, in float and double. */
#include <math.h>
#include "internal.h"

#define FM_SQRT1_2 0.70710678118654752440
#define FM_SQRT2 1.41421356237309504880
#define FM_INV_SQRT_2PI 0.39894228040143267794

/* activations_impl.h: exp and expm1 of y <= 0 in plain arithmetic, for the loops of sigmoid, tanh, SiLU and ELU:
 * a call of libm's keeps a loop scalar, and tanhf alone was a third of training time with tanh
 * layers. y = k ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split so that k ln2_hi is exact; k
 * rounded by the 1.5 * 2^p shift, whose low bits are k, so 2^k is built from them without a
 * float-to-int conversion); expm1(r) by its Taylor series to below half an ulp (float to
 * r^8/8!, double to r^13/13!); exp(y) = 2^k (1 + expm1(r)), expm1(y) = 2^k expm1(r) + (2^k - 1).
 * 2^k is applied as 2^(k+64) * 2^-64, so that results below the smallest normal number round
 * to subnormals as libm's do. Below the smallest subnormal result exp is 0 and expm1 -1; NaN
 * propagates. No FMA, so every SIMD clone rounds alike. Within 2.5 ulp of the exact values
 * (tanh, sigmoid; measured against long double on 3 million points). */
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
#define ERF erff
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
#undef ERF

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
#define ERF erf
#include "activations_impl.h"
