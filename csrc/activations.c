/* Elementwise activations, softmax, PReLU and column sums, in float and double. */
#include <math.h>
#include "internal.h"

#define FM_SQRT1_2 0.70710678118654752440
#define FM_INV_SQRT_2PI 0.39894228040143267794

/* exp and expm1 of y <= 0 in plain arithmetic, for the loops of sigmoid, tanh, SiLU and ELU:
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

#define FM_EXP_MIN_F32 -104.0f /* e^-104 is below half the smallest subnormal float */
#define FM_EXP_MIN_F64 -746.0

/* expm1(r) for the reduced r of y, and 2^(k+64) in *scale */
static inline float fm_expm1_r_f32(float y, float *scale) {
    const float yc = y < FM_EXP_MIN_F32 ? FM_EXP_MIN_F32 : y;
    fm_bits_f32 t, s;
    t.f = yc * 0x1.715476p0f + 0x1.8p23f;
    const float k = t.f - 0x1.8p23f;
    const float r = (yc - k * 0x1.62e4p-1f) - k * 0x1.7f7d1cp-20f;
    s.u = (t.u + 127u + 64u) << 23;
    *scale = s.f;
    float q = 1.0f / 40320;
    q = 1.0f / 5040 + r * q;
    q = 1.0f / 720 + r * q;
    q = 1.0f / 120 + r * q;
    q = 1.0f / 24 + r * q;
    q = 1.0f / 6 + r * q;
    q = 0.5f + r * q;
    return r + r * r * q;
}
static inline float fm_exp_neg_f32(float y) {
    float scale;
    const float p = fm_expm1_r_f32(y, &scale);
    return y < FM_EXP_MIN_F32 ? 0.0f : scale * (1.0f + p) * 0x1p-64f;
}
static inline float fm_expm1_neg_f32(float y) {
    float scale;
    const float p = fm_expm1_r_f32(y, &scale);
    scale *= 0x1p-64f;
    return y < FM_EXP_MIN_F32 ? -1.0f : scale * p + (scale - 1.0f);
}

static inline double fm_expm1_r_f64(double y, double *scale) {
    const double yc = y < FM_EXP_MIN_F64 ? FM_EXP_MIN_F64 : y;
    fm_bits_f64 t, s;
    t.f = yc * 0x1.71547652b82fep0 + 0x1.8p52;
    const double k = t.f - 0x1.8p52;
    const double r = (yc - k * 0x1.62e42feep-1) - k * 0x1.a39ef35793c76p-33;
    s.u = (t.u + 1023u + 64u) << 52;
    *scale = s.f;
    double q = 1.0 / 6227020800.0; /* 1/13! */
    q = 1.0 / 479001600.0 + r * q;
    q = 1.0 / 39916800.0 + r * q;
    q = 1.0 / 3628800.0 + r * q;
    q = 1.0 / 362880.0 + r * q;
    q = 1.0 / 40320.0 + r * q;
    q = 1.0 / 5040.0 + r * q;
    q = 1.0 / 720.0 + r * q;
    q = 1.0 / 120.0 + r * q;
    q = 1.0 / 24.0 + r * q;
    q = 1.0 / 6.0 + r * q;
    q = 0.5 + r * q;
    return r + r * r * q;
}
static inline double fm_exp_neg_f64(double y) {
    double scale;
    const double p = fm_expm1_r_f64(y, &scale);
    return y < FM_EXP_MIN_F64 ? 0.0 : scale * (1.0 + p) * 0x1p-64;
}
static inline double fm_expm1_neg_f64(double y) {
    double scale;
    const double p = fm_expm1_r_f64(y, &scale);
    scale *= 0x1p-64;
    return y < FM_EXP_MIN_F64 ? -1.0 : scale * p + (scale - 1.0);
}

#define T float
#define FM_SUFFIX f32
#define EXP expf
#define LOG1P log1pf
#define FABS fabsf
#define COPYSIGN copysignf
#define EXP_NEG fm_exp_neg_f32
#define EXPM1_NEG fm_expm1_neg_f32
#define ERF erff
#include "activations_impl.h"
#undef T
#undef FM_SUFFIX
#undef EXP
#undef LOG1P
#undef FABS
#undef COPYSIGN
#undef EXP_NEG
#undef EXPM1_NEG
#undef ERF

#define T double
#define FM_SUFFIX f64
#define EXP exp
#define LOG1P log1p
#define FABS fabs
#define COPYSIGN copysign
#define EXP_NEG fm_exp_neg_f64
#define EXPM1_NEG fm_expm1_neg_f64
#define ERF erf
#include "activations_impl.h"
