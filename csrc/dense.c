/* Dense layer forward (GEMM with bias and activation fused into its tiles) and backward. */
#include "internal.h"

#define T float
#define FM_SUFFIX f32
#include "dense_impl.h"
#undef T
#undef FM_SUFFIX

#define T double
#define FM_SUFFIX f64
#include "dense_impl.h"
