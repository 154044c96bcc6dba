/* Shared private helpers for the kernels: dtype templating and OpenMP guards. */
#ifndef FASTMLP_INTERNAL_H
#define FASTMLP_INTERNAL_H

#include "fastmlp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define FM_CAT2_(a, b) a##_##b
#define FM_CAT2(a, b) FM_CAT2_(a, b)
/* FM_FN(fm_dense_forward) -> fm_dense_forward_f32 inside a *_impl.h included with FM_SUFFIX f32 */
#define FM_FN(name) FM_CAT2(name, FM_SUFFIX)

/* Rows per block in reductions: partial sums are formed per fixed block, then added in block
 * order, so the result never depends on how blocks were spread over threads. */
#define FM_REDUCE_BLOCK 64

#define FM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FM_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
