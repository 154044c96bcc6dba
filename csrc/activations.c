/* Elementwise activations, softmax, PReLU and column sums, in float and double. */
#include <math.h>
#include "internal.h"

#define FM_SQRT1_2 0.70710678118654752440
#define FM_INV_SQRT_2PI 0.39894228040143267794

#define T float
#define FM_SUFFIX f32
#define EXP expf
#define EXPM1 expm1f
#define LOG1P log1pf
#define FABS fabsf
#define TANH tanhf
#define ERF erff
#include "activations_impl.h"
#undef T
#undef FM_SUFFIX
#undef EXP
#undef EXPM1
#undef LOG1P
#undef FABS
#undef TANH
#undef ERF

#define T double
#define FM_SUFFIX f64
#define EXP exp
#define EXPM1 expm1
#define LOG1P log1p
#define FABS fabs
#define TANH tanh
#define ERF erf
#include "activations_impl.h"
