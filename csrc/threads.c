/* Thread-count policy shared by all kernels, and the engine's step-level tuner. */
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
 * [0] seconds per row at 1 thread, [1] at the cap (0: not measured yet; both smoothed),
 * [2] steps recorded, [3] steps between probes of the slower choice, [4] threads of the last
 * step, [5] probe steps left, [6] steps since the last probe or change of answer, [7] rows of
 * the last step. */
#define FM_TUNER_MARGIN 0.95 /* the cap must win by 5%: fewer threads disturb neighbours less */
#define FM_TUNER_PROBE_MIN 16.0
#define FM_TUNER_PROBE_MAX 1024.0
/* A probe is the switch step, whose time is not kept (its data sit in the other core's caches
 * and a sleeping worker wakes up: up to 3.2 times a step's time on a quiet VM at batch 32),
 * then one step that is. A switch step this many times slower than the incumbent ends the
 * probe at once: with a neighbour spinning on one core, 2-thread steps took 10-27 times as
 * long as 1-thread steps. */
#define FM_TUNER_PROBE_STEPS 2.0
/* The first verdict rests on one kept step of each choice, and early steps can still pay for
 * first touches (a fresh model's 2-thread step once took 2.5 times its later time, which left
 * 72 of the first 235 steps at batch 256 on 1 thread): the loser is timed again this many steps
 * after it, at the cost of one probe in the state's life. */
#define FM_TUNER_FIRST_RECHECK 2.0
#define FM_TUNER_CLEAR_LOSS 5.0
/* Probes of a choice that keeps losing by a factor r cost about (r - 1) steps each; they are
 * spaced so that this stays below this share of the steps, however large r is: beside a
 * spinning neighbour a 2-thread step at batch 32 took 55 times as long, and 1024 steps between
 * probes cost 5%. The time until a probe finds the neighbour gone is then about 67 slow steps'
 * worth (1 s at batch 32); FM_TUNER_PROBE_MAX bounds only the doubling of a close race. */
#define FM_TUNER_PROBE_BUDGET 0.03
#define FM_TUNER_SPACING_MAX 65536.0
/* While 1 thread wins a close race, the cap is timed again at least this often (in the 1-thread
 * steps' time), however far the doubling has spaced the probes: only a probe sees the cap get
 * faster. After a second of idling, the second vCPU of our VM now and then ran 2-thread steps no
 * faster than 1-thread ones for 0.1-0.3 s (MNIST, batch 256: 6.8 against 7.2 us a row, then
 * 3.8); the probes made then doubled the spacing, and in the bench whole epochs ran on 1 thread. */
#define FM_TUNER_PROBE_SECONDS 0.1

static int tuner_winner(const double *s, int cap) {
    if (s[0] == 0.0 || s[1] == 0.0) return 0;
    return s[1] < FM_TUNER_MARGIN * s[0] ? cap : 1;
}

/* Steps between probes at least, for the current gap between the two choices. */
static double tuner_spacing(const double *s) {
    const double lo = s[0] < s[1] ? s[0] : s[1], hi = s[0] < s[1] ? s[1] : s[0];
    const double steps = FM_TUNER_PROBE_STEPS * (hi / lo - 1.0) / FM_TUNER_PROBE_BUDGET;
    return steps > FM_TUNER_SPACING_MAX ? FM_TUNER_SPACING_MAX : steps;
}

int fm_tuner_choice(const double *state, int cap) {
    if (cap <= 1) return 1;
    return state ? tuner_winner(state, cap) : 0;
}

int fm_tuner_next(double *state, int cap) {
    if (cap <= 1) return 1;
    if (!state) return cap;
    if (state[2] < 1.0 || state[1] == 0.0) return cap; /* warm-up, then measure the cap */
    if (state[0] == 0.0) return 1;
    const int winner = tuner_winner(state, cap), loser = winner == 1 ? cap : 1;
    if (state[5] > 0.0) return loser;
    if (state[3] < FM_TUNER_PROBE_MIN) state[3] = FM_TUNER_PROBE_MIN;
    if (state[6] >= state[3]) {
        state[5] = FM_TUNER_PROBE_STEPS;
        return loser;
    }
    return winner;
}

void fm_tuner_record(double *state, int threads, int cap, double seconds, int64_t rows) {
    if (!state || cap <= 1 || rows < 1) return;
    const double seconds_per_row = seconds / (double)rows;
    const double steps = state[2];
    state[7] = (double)rows;
    const int switched = steps >= 1.0 && (int)state[4] != threads;
    const int probing = state[5] > 0.0;
    state[2] = steps + 1.0;
    state[4] = (double)threads;
    state[6] += 1.0;
    if (probing) state[5] -= 1.0;
    if (steps < 1.0 || !(seconds_per_row > 0.0)) return; /* the first step pays page faults */
    double *t = threads == 1 ? &state[0] : &state[1];
    const double other = threads == 1 ? state[1] : state[0];
    if (switched) {
        if (!(other > 0.0 && seconds_per_row > FM_TUNER_CLEAR_LOSS * other)) return;
        state[5] = 0.0; /* lost clearly: keep the time, end the probe */
    }
    const int before = tuner_winner(state, cap);
    /* A probe's time replaces the loser's old one, which the neighbour may have left behind.
     * The incumbent's is smoothed, one step counting at most twice the estimate: a lone slow
     * step (a page fault, a neighbour passing by) does not switch, two in a row do. */
    if (*t == 0.0 || probing) {
        *t = seconds_per_row;
    } else {
        *t = 0.5 * *t + 0.5 * (seconds_per_row < 2.0 * *t ? seconds_per_row : 2.0 * *t);
    }
    const int after = tuner_winner(state, cap);
    if (!before && after) {
        state[3] = FM_TUNER_PROBE_MIN;
        state[6] = FM_TUNER_PROBE_MIN - FM_TUNER_FIRST_RECHECK;
    } else if (before && after != before) {
        state[3] = FM_TUNER_PROBE_MIN; /* the answer changed: look again soon */
        state[5] = 0.0;
        state[6] = 0.0;
    } else if (before && probing && state[5] <= 0.0) {
        const double spacing = tuner_spacing(state);
        double twice = 2.0 * state[3] > FM_TUNER_PROBE_MAX ? FM_TUNER_PROBE_MAX : 2.0 * state[3];
        if (before == 1) {
            const double in_time = FM_TUNER_PROBE_SECONDS / (state[0] * state[7]);
            if (twice > in_time) twice = in_time;
        }
        state[3] = twice > spacing ? twice : spacing;
        state[6] = 0.0;
    }
}
