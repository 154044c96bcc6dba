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

/* Run-time dispatched copies of a plain C loop for wider vector units (no -march=native). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FM_HAVE_CLONES 1
#define FM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FM_HAVE_CLONES 0
#define FM_CLONES
#endif

/* A parallel loop (a for statement over a variable declared before it) on nt threads. With one
 * thread it runs as it is: a region whose if clause is false still builds a team and makes a
 * futex call (libgomp, Zen 4 VM: 0.33-0.39 us a region, several regions a step at batch 1). */
#ifdef _OPENMP
#define FM_PARALLEL_FOR(nt, ...)                                                                   \
    do {                                                                                           \
        if ((nt) > 1) {                                                                            \
            _Pragma("omp parallel for num_threads(nt) schedule(static)") __VA_ARGS__               \
        } else {                                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)
#else
#define FM_PARALLEL_FOR(nt, ...)                                                                   \
    do {                                                                                           \
        (void)(nt);                                                                                \
        __VA_ARGS__                                                                                \
    } while (0)
#endif

/* Elementwise loops: no iteration depends on another (an output may alias its own input
 * element), so they may run as vector blends instead of unpredictable branches. Never used on
 * reductions, whose order is part of the results. */
#ifdef _OPENMP
#define FM_SIMD _Pragma("omp simd")
#else
#define FM_SIMD
#endif

/* fm_rng_u64 in two parts, inline, so that a loop of draws computes the key once and can
 * run as vectors: fm_rng_u64(seed, stream, c) == fm_rng_draw(fm_rng_key(seed, stream), c).
 * The mix is SplitMix64's finaliser (Steele, Lea & Flood 2014), a bijection of 64 bits. */
static inline uint64_t fm_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
static inline uint64_t fm_rng_key(uint64_t seed, uint64_t stream) {
    return fm_mix64(seed + 0x9e3779b97f4a7c15ULL * (stream + 1));
}
static inline uint64_t fm_rng_draw(uint64_t key, uint64_t counter) {
    return fm_mix64(key ^ fm_mix64(counter + 0x632be59bd9b4e019ULL));
}

#define FM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Workspace-taking variants of the public dense kernels (the engine passes its own workspace,
 * so no step allocates). */
#define FM_DECLARE_DENSE_WS(T, S)                                                                 \
    int fm_dense_forward_ws_##S(int64_t batch, int64_t n_in, int64_t n_out, const T *x,           \
                                int64_t rsx, int64_t csx, const T *w, const T *b, T *z, T *y,     \
                                int64_t ldy, int act, double act_param, void *ws, size_t ws_size, \
                                int n_threads);                                                   \
    int fm_dense_backward_ws_##S(int64_t batch, int64_t n_in, int64_t n_out, const T *x,          \
                                 int64_t rsx, int64_t csx, const T *w, const T *z, const T *y,    \
                                 const T *dy, int64_t ldy, T *dz, T *dx, int64_t ldx, T *dw,      \
                                 T *db, int act, double act_param, const fm_epilogue *dx_epi,     \
                                 void *ws, size_t ws_size, int n_threads);                        \
    size_t fm_dense_workspace_size_##S(int64_t batch, int64_t n_in, int64_t n_out, int n_threads);
#define FM_DECLARE_SGD_RANK1(T, S)                                                                \
    int fm_sgd_rank1_update_##S(int64_t n_in, int64_t n_out, const T *x, const T *dz, T *w, T *vw, \
                                T *b, T *vb, double lr, double momentum, double weight_decay,     \
                                int nesterov, int n_threads);
/* An optimizer step applied in slices (the engine's fused updates): each call applies the rule
 * of step opt->step + 1 to its part (fm_optim_slice: params[offset, offset + n) from
 * grads[offset, offset + n)); fm_optim_finish_step then advances the step (fm_optim_step is
 * one slice of the whole vector). Plain SGD (no dampening) goes through fm_sgd_step and
 * fm_sgd_rank1_update. */
#define FM_DECLARE_OPTIM_SLICES(T, S)                                                             \
    int fm_optim_slice_##S(int64_t offset, int64_t n, const T *grads, T *params,                 \
                           const fm_optim *opt, int n_threads);                                   \
    int fm_optim_rank1_update_##S(int64_t n_in, int64_t n_out, const T *x, const T *dz,          \
                                  T *params, int64_t w_offset, int64_t b_offset,                  \
                                  const fm_optim *opt, int n_threads);
FM_DECLARE_OPTIM_SLICES(float, f32)
FM_DECLARE_OPTIM_SLICES(double, f64)
void fm_optim_finish_step(fm_optim *opt);
int fm_gemm_single_kblock_f32(int64_t k);
int fm_gemm_single_kblock_f64(int64_t k);
FM_DECLARE_SGD_RANK1(float, f32)
FM_DECLARE_SGD_RANK1(double, f64)
FM_DECLARE_DENSE_WS(float, f32)
FM_DECLARE_DENSE_WS(double, f64)

#endif
