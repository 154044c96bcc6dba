/* The network engine: whole training epochs and inference over a plan of layers. */
#include <math.h>
#include <string.h>
#include "internal.h"

#define T float
#define FM_SUFFIX f32
#include "engine_impl.h"
#undef T
#undef FM_SUFFIX

#define T double
#define FM_SUFFIX f64
#include "engine_impl.h"
