/* Losses (value and gradient, output activation fused, double accumulation) and penalties. */
#include <math.h>
#include "internal.h"

#define T float
#define FM_SUFFIX f32
#include "losses_impl.h"
#undef T
#undef FM_SUFFIX

#define T double
#define FM_SUFFIX f64
#include "losses_impl.h"
