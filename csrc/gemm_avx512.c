/* AVX-512F GEMM micro-kernels (see gemm_internal.h for the contract).
 *
 * Register tile: MR = 14 rows x NR = 2 vectors (f32 14x32, f64 14x16): 28 accumulators, 2 B
 * vectors and a broadcast of A, out of 32 zmm registers. Narrow problems (nr <= one vector, e.g.
 * a 10-unit output layer) use a 14 x 1-vector tile; one to three rows (batch 1..3, with B in
 * place) use wider tiles so that enough independent FMA chains hide the FMA latency.
 * Column edges use AVX-512 masks (columns beyond nr are never read nor written), so the same
 * code serves full and edge tiles and B can be read in place.
 *
 * Compiled with target attributes only, chosen at run time; on other architectures this file is
 * empty. It includes itself once per dtype (FM_GEMM_AVX512_PASS). */
#ifndef FM_GEMM_AVX512_PASS

#include "gemm_internal.h"

#if FM_GEMM_X86
#include <immintrin.h>

#define FM_AVX512 __attribute__((target("avx512f")))
#define FM_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

#define FM_GEMM_AVX512_PASS 1

#define T float
#define S f32
#define VT __m512
#define MT __mmask16
#define VL 16
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_LOADZ(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#include "gemm_avx512.c"
#undef T
#undef S
#undef VT
#undef MT
#undef VL
#undef V_ZERO
#undef V_SET1
#undef V_FMA
#undef V_MUL
#undef V_LOADZ
#undef V_STORE
#undef V_STOREM

#define T double
#define S f64
#define VT __m512d
#define MT __mmask8
#define VL 8
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(x) _mm512_set1_pd(x)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_LOADZ(m, p) _mm512_maskz_loadu_pd(m, p)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_STOREM(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#include "gemm_avx512.c"

#endif /* FM_GEMM_X86 */

#else /* FM_GEMM_AVX512_PASS: body for one dtype */

#define FN_(name, s) name##_##s
#define FN2(name, s) FN_(name, s)
#define FN(name) FN2(name, S)

#define MAXACC 28

/* Lanes [v*VL, nr) of vector v, as a mask (all ones for full vectors, zero past nr). */
FM_AVX512_INLINE MT FN(fm_avx512_mask)(int nr, int v) {
    int lanes = nr - v * VL;
    if (lanes >= VL) return (MT)~(MT)0;
    if (lanes <= 0) return (MT)0;
    return (MT)((1u << lanes) - 1u);
}

/* One MR x (NV*VL) tile; MR and NV are constants after inlining, so the accumulators live in
 * registers. */
FM_AVX512_INLINE void FN(fm_avx512_tile)(const int MR, const int NV, int nr, int64_t kc,
                                         const T *restrict a, const T *restrict b, int64_t ldb,
                                         T *restrict c, int64_t rsc, int64_t csc, T alpha, T beta) {
    VT acc[MAXACC];
    MT mk[8];
    int64_t p;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) mk[v] = FN(fm_avx512_mask)(nr, v);
#pragma GCC unroll 28
    for (int i = 0; i < MR * NV; i++) acc[i] = V_ZERO();
    for (p = 0; p < kc; p++) {
        VT bv[8];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) bv[v] = V_LOADZ(mk[v], b + v * VL);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            VT av = V_SET1(a[i]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) acc[i * NV + v] = V_FMA(av, bv[v], acc[i * NV + v]);
        }
        a += MR;
        b += ldb;
    }
    {
        const VT va = V_SET1(alpha);
        if (csc == 1) {
            if (beta == 0) {
#pragma GCC unroll 14
                for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++)
                        V_STOREM(c + i * rsc + v * VL, mk[v], V_MUL(va, acc[i * NV + v]));
            } else {
                const VT vb = V_SET1(beta);
#pragma GCC unroll 14
                for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++) {
                        T *cp = c + i * rsc + v * VL;
                        VT r = V_MUL(vb, V_LOADZ(mk[v], cp));
                        V_STOREM(cp, mk[v], V_FMA(va, acc[i * NV + v], r));
                    }
            }
        } else {
            T buf[MAXACC * VL];
            int j;
#pragma GCC unroll 14
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++) V_STORE(buf + (i * NV + v) * VL, acc[i * NV + v]);
            for (int i = 0; i < MR; i++) {
                T *cr = c + i * rsc;
                const T *br = buf + i * NV * VL;
                if (beta == 0)
                    for (j = 0; j < nr; j++) cr[j * csc] = alpha * br[j];
                else
                    for (j = 0; j < nr; j++) cr[j * csc] = alpha * br[j] + beta * cr[j * csc];
            }
        }
    }
}

#define TILE_FN(MRV, NVV)                                                                          \
    static FM_AVX512 void FN(fm_avx512_t##MRV##x##NVV)(int nr, int64_t kc, const T *a,          \
                                                       const T *b, int64_t ldb, T *c,            \
                                                       int64_t rsc, int64_t csc, T alpha,        \
                                                       T beta) {                                  \
        FN(fm_avx512_tile)(MRV, NVV, nr, kc, a, b, ldb, c, rsc, csc, alpha, beta);                \
    }

TILE_FN(1, 1)
TILE_FN(2, 1)
TILE_FN(3, 1)
TILE_FN(4, 1)
TILE_FN(5, 1)
TILE_FN(6, 1)
TILE_FN(7, 1)
TILE_FN(8, 1)
TILE_FN(9, 1)
TILE_FN(10, 1)
TILE_FN(11, 1)
TILE_FN(12, 1)
TILE_FN(13, 1)
TILE_FN(14, 1)
TILE_FN(1, 2)
TILE_FN(2, 2)
TILE_FN(3, 2)
TILE_FN(4, 2)
TILE_FN(5, 2)
TILE_FN(6, 2)
TILE_FN(7, 2)
TILE_FN(8, 2)
TILE_FN(9, 2)
TILE_FN(10, 2)
TILE_FN(11, 2)
TILE_FN(12, 2)
TILE_FN(13, 2)
TILE_FN(14, 2)
TILE_FN(1, 8)
TILE_FN(2, 4)
TILE_FN(3, 4)

typedef void (*FN(fm_avx512_tile_fn))(int, int64_t, const T *, const T *, int64_t, T *, int64_t,
                                      int64_t, T, T);

static const FN(fm_avx512_tile_fn) FN(fm_avx512_n1)[14] = {
    FN(fm_avx512_t1x1),  FN(fm_avx512_t2x1),  FN(fm_avx512_t3x1),  FN(fm_avx512_t4x1),
    FN(fm_avx512_t5x1),  FN(fm_avx512_t6x1),  FN(fm_avx512_t7x1),  FN(fm_avx512_t8x1),
    FN(fm_avx512_t9x1),  FN(fm_avx512_t10x1), FN(fm_avx512_t11x1), FN(fm_avx512_t12x1),
    FN(fm_avx512_t13x1), FN(fm_avx512_t14x1)};
static const FN(fm_avx512_tile_fn) FN(fm_avx512_n2)[14] = {
    FN(fm_avx512_t1x2),  FN(fm_avx512_t2x2),  FN(fm_avx512_t3x2),  FN(fm_avx512_t4x2),
    FN(fm_avx512_t5x2),  FN(fm_avx512_t6x2),  FN(fm_avx512_t7x2),  FN(fm_avx512_t8x2),
    FN(fm_avx512_t9x2),  FN(fm_avx512_t10x2), FN(fm_avx512_t11x2), FN(fm_avx512_t12x2),
    FN(fm_avx512_t13x2), FN(fm_avx512_t14x2)};

static void FN(fm_avx512_ukr)(int mr, int nr, int64_t kc, const T *a, const T *b, int64_t ldb,
                              T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    if (nr <= VL)
        FN(fm_avx512_n1)[mr - 1](nr, kc, a, b, ldb, c, rsc, csc, alpha, beta);
    else if (nr <= 2 * VL)
        FN(fm_avx512_n2)[mr - 1](nr, kc, a, b, ldb, c, rsc, csc, alpha, beta);
    else if (mr == 1)
        FN(fm_avx512_t1x8)(nr, kc, a, b, ldb, c, rsc, csc, alpha, beta);
    else if (mr == 2)
        FN(fm_avx512_t2x4)(nr, kc, a, b, ldb, c, rsc, csc, alpha, beta);
    else
        FN(fm_avx512_t3x4)(nr, kc, a, b, ldb, c, rsc, csc, alpha, beta);
}

/* kc: a 14 x kc A sliver is 14*kc*sizeof(T) (f32 384, f64 192: 21 KiB of the 48 KiB L1d);
 * nc: a packed kc x nc B block in L2; jw: columns per task (B chunk kc x jw stays in L2). */
const FN(fm_gemm_kernel) FN(fm_gemm_avx512) = {
    "avx512", 14, 2 * VL, {0, 8 * VL, 4 * VL, 4 * VL}, 384 * VL / 16, 512, 8 * VL, FN(fm_avx512_ukr)};

#undef FN_
#undef FN2
#undef FN
#undef MAXACC
#undef TILE_FN

#endif /* FM_GEMM_AVX512_PASS */
