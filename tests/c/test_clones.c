/* The SIMD clones (target_clones: AVX-512, AVX2, baseline) of the elementwise kernels must give
 * the same bits (any NaN for a NaN), since the clone a machine runs is chosen by its CPU: every
 * activation forward and backward, on values that cover every branch (signed zeros, tiny, the
 * exp edges, inf, NaN), each clone against the baseline. Built from activations.c itself, so
 * the clones' local symbols are reachable by their assembler names. Built with
 * -ffp-contract=fast, 10 of the 44 comparisons fail. Prints "P passed, F failed" last, or "no
 * SIMD clones in this build" where the library has none (FM_HAVE_CLONES). */
#include "activations.c"

#include <stdio.h>
#include <string.h>

#if !FM_HAVE_CLONES
int main(void) {
    printf("no SIMD clones in this build\n"); /* the library's own condition (internal.h) */
    return 0;
}
#else

#define CLONE(ret, name, suffix, args) extern ret name##_##suffix args __asm__(#name "." #suffix);
#define CLONES(T, S)                                                                               \
    CLONE(void, fm_act_apply_##S, avx512f, (int64_t, const T *, T *, int, double))                 \
    CLONE(void, fm_act_apply_##S, avx2, (int64_t, const T *, T *, int, double))                    \
    CLONE(void, fm_act_apply_##S, default, (int64_t, const T *, T *, int, double))                 \
    CLONE(void, act_backward_row_##S, avx512f,                                                     \
          (int64_t, const T *, const T *, const T *, T *, int, double))                            \
    CLONE(void, act_backward_row_##S, avx2,                                                        \
          (int64_t, const T *, const T *, const T *, T *, int, double))                            \
    CLONE(void, act_backward_row_##S, default,                                                     \
          (int64_t, const T *, const T *, const T *, T *, int, double))
CLONES(float, f32)
CLONES(double, f64)

#define N 4099 /* not a multiple of any vector width: the remainder loops run too */
static int passed, failed;

#define CHECK_TYPE(T, S)                                                                     \
    static void check_##S(void) {                                                                  \
        static T z[N], y0[N], y1[N], dy[N], g0[N], g1[N];                                          \
        const T special[] = {0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 0.5, -0.5, 20.0, -20.0,        \
                             -87.5, -104.5, -700.0, -746.5, 1e4, -1e4, INFINITY, -INFINITY, NAN};  \
        const int ns = (int)(sizeof special / sizeof special[0]);                                  \
        uint64_t s = 12345;                                                                        \
        for (int i = 0; i < N; i++) {                                                              \
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;                              \
            const double u = (double)(s >> 11) * 0x1.0p-53;                                       \
            const double scale = i % 3 == 0 ? 4.0 : i % 3 == 1 ? 60.0 : 1500.0;                   \
            z[i] = i < ns ? special[i] : (T)((u - 0.5) * scale);                                  \
            dy[i] = (T)(u - 0.3);                                                                  \
        }                                                                                          \
        void (*fwd[2])(int64_t, const T *, T *, int, double) = {fm_act_apply_##S##_avx512f,        \
                                                                fm_act_apply_##S##_avx2};         \
        void (*bwd[2])(int64_t, const T *, const T *, const T *, T *, int, double) = {             \
            act_backward_row_##S##_avx512f, act_backward_row_##S##_avx2};                          \
        const int have[2] = {__builtin_cpu_supports("avx512f"),                                    \
                             __builtin_cpu_supports("avx2")};                                      \
        for (int act = 0; act < FM_ACT_COUNT_; act++) {                                            \
            if (act == FM_ACT_SOFTMAX) continue; /* a row reduction, not an fm_act_apply kind */  \
            fm_act_apply_##S##_default(N, z, y0, act, 1.0);                                        \
            act_backward_row_##S##_default(N, z, y0, dy, g0, act, 1.0);                            \
            for (int c = 0; c < 2; c++) {                                                          \
                if (!have[c]) continue;                                                            \
                fwd[c](N, z, y1, act, 1.0);                                                        \
                bwd[c](N, z, y0, dy, g1, act, 1.0);                                                \
                int same = 1;                                                                      \
                for (int i = 0; i < N; i++) /* a NaN's sign follows operand order: any NaN */     \
                    same &= (isnan(y0[i]) && isnan(y1[i])) || !memcmp(&y0[i], &y1[i], sizeof(T));  \
                for (int i = 0; i < N; i++)                                                        \
                    same &= (isnan(g0[i]) && isnan(g1[i])) || !memcmp(&g0[i], &g1[i], sizeof(T));  \
                if (same) passed++;                                                                \
                else {                                                                             \
                    failed++;                                                                      \
                    printf("FAIL %s act %d: the %s clone differs from the baseline\n", #S, act,    \
                           c ? "AVX2" : "AVX-512");                                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
CHECK_TYPE(float, f32)
CHECK_TYPE(double, f64)

int main(void) {
    __builtin_cpu_init();
    check_f32();
    check_f64();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
#endif
