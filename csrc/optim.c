/* Optimizer update rules over the model's flat parameter vector. */
#include "internal.h"

#define T float
#define FM_SUFFIX f32
#include "optim_impl.h"
#undef T
#undef FM_SUFFIX

#define T double
#define FM_SUFFIX f64
#include "optim_impl.h"
