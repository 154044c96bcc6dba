/* Thread-count policy shared by all kernels, and the engine's step-level tuner. */
#include <math.h>
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

double fm_wtime(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return 0.0;
#endif
}

/* Tuner state (FM_TUNER_SIZE doubles, zeroed by the owner to start):
 * [0] seconds per row at 1 thread, [1] at the cap (0: not measured yet, both smoothed),
 * [2] steps recorded, [3] steps between probes of the slower choice. */
#define FM_TUNER_MARGIN 0.95 /* the cap must win by 5%: fewer threads disturb neighbours less */
#define FM_TUNER_PROBE_MIN 16.0
#define FM_TUNER_PROBE_MAX 1024.0

static int tuner_winner(const double *s, int cap) {
    if (s[0] == 0.0 || s[1] == 0.0) return 0;
    return s[1] < FM_TUNER_MARGIN * s[0] ? cap : 1;
}

int fm_tuner_next(double *state, int cap) {
    if (cap <= 1) return 1;
    if (!state) return cap;
    if (state[2] < 1.0 || state[1] == 0.0) return cap; /* warm-up, then measure the cap */
    if (state[0] == 0.0) return 1;
    const int winner = tuner_winner(state, cap);
    if (state[3] < FM_TUNER_PROBE_MIN) state[3] = FM_TUNER_PROBE_MIN;
    if (fmod(state[2], state[3]) == 0.0) return winner == 1 ? cap : 1; /* probe the slower */
    return winner;
}

void fm_tuner_record(double *state, int threads, int cap, double seconds_per_row) {
    if (!state || cap <= 1) return;
    const double steps = state[2];
    state[2] = steps + 1.0;
    if (steps < 1.0 || !(seconds_per_row > 0.0)) return; /* the first step pays page faults */
    const int before = tuner_winner(state, cap);
    double *t = threads == 1 ? &state[0] : &state[1];
    *t = *t == 0.0 ? seconds_per_row : 0.5 * *t + 0.5 * seconds_per_row;
    const int after = tuner_winner(state, cap);
    if (before && after != before) {
        state[3] = FM_TUNER_PROBE_MIN; /* the answer changed: look again soon */
    } else if (before && threads != before) {
        state[3] = state[3] * 2.0 > FM_TUNER_PROBE_MAX ? FM_TUNER_PROBE_MAX : state[3] * 2.0;
    }
}
