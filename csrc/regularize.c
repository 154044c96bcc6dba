/* Dropout, Gaussian noise, activity penalties, maxout, max-norm and gradient clipping. */
#include <math.h>
#include "internal.h"

#define T float
#define FM_SUFFIX f32
#include "regularize_impl.h"
#undef T
#undef FM_SUFFIX

#define T double
#define FM_SUFFIX f64
#include "regularize_impl.h"
