/* Optimizer update rules over the model's flat parameter vector. */
#include <math.h>
#include <string.h>
#include "internal.h"

#define T float
#define FM_SUFFIX f32
#define SQRT sqrtf
#define FABS fabsf
#include "optim_impl.h"
#undef T
#undef FM_SUFFIX
#undef SQRT
#undef FABS

#define T double
#define FM_SUFFIX f64
#define SQRT sqrt
#define FABS fabs
#include "optim_impl.h"
