/* Counter-based random numbers: each value is a pure function of (seed, stream, counter), so a
 * stream is the same whatever the thread count or the order values are drawn in. */
#include "internal.h"

uint64_t fm_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
    return fm_rng_draw(fm_rng_key(seed, stream), counter);
}

int fm_rng_permutation(int64_t n, int64_t *out, uint64_t seed, uint64_t stream) {
    if (n < 0) return FM_ERR_ARG;
    for (int64_t i = 0; i < n; i++) out[i] = i;
    const uint64_t key = fm_rng_key(seed, stream);
    uint64_t counter = 0;
    for (int64_t i = n - 1; i > 0; i--) {
        /* Rejection keeps the index unbiased: draws at or past the largest multiple of range
         * are redrawn. */
        const uint64_t range = (uint64_t)i + 1;
        const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
        uint64_t r;
        do {
            r = fm_rng_draw(key, counter++);
        } while (r >= limit);
        const int64_t j = (int64_t)(r % range);
        const int64_t tmp = out[i];
        out[i] = out[j];
        out[j] = tmp;
    }
    return FM_OK;
}
