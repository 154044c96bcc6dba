/* Thread-count policy shared by all kernels. */
#include "internal.h"

/* Below this much work (about one multiply-add per unit) a parallel region costs more than it
 * saves on the 2-core machines we measure on; bench/ revisits the number. */
#define FM_PARALLEL_MIN_WORK 32768.0

int fm_threads_for(double work, int n_threads) {
#ifdef _OPENMP
    if (n_threads <= 1 || work < FM_PARALLEL_MIN_WORK) return 1;
    return n_threads;
#else
    (void)work;
    (void)n_threads;
    return 1;
#endif
}

int fm_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
