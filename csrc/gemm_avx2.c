/* AVX2 + FMA GEMM micro-kernels (see gemm_internal.h for the contract).
 *
 * Register tile: MR = 6 rows x NR = 2 vectors (f32 6x16, f64 6x8): 12 accumulators, 2 B vectors
 * and a broadcast of A, out of 16 ymm registers. A column edge masks the last vector
 * (vmaskmov: columns beyond nr are never read nor written), so B can be read in place; a tile of
 * at most one vector uses a 6 x 1-vector kernel; one to three rows with B in place use wider
 * tiles so that enough independent FMA chains hide the FMA latency.
 *
 * Compiled with target attributes only, chosen at run time; on other architectures this file is
 * empty. It includes itself once per dtype (FM_GEMM_AVX2_PASS). */
#ifndef FM_GEMM_AVX2_PASS

#include "gemm_internal.h"

#if FM_GEMM_X86
#include <immintrin.h>

#define FM_AVX2 __attribute__((target("avx2,fma")))
#define FM_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

#define FM_GEMM_AVX2_PASS 1

#define T float
#define S f32
#define VT __m256
#define VL 8
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOADM(p, m) _mm256_maskload_ps(p, m)
#define V_LOAD_HALVES(p) _mm256_set_m128(_mm_load_ps((p) + 4), _mm_load_ps(p))
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_STOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define V_MASK(lanes)                                                                              \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_NZBITS(v) (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ))
#include "gemm_avx2.c"
#undef T
#undef S
#undef VT
#undef VL
#undef V_ZERO
#undef V_SET1
#undef V_FMA
#undef V_MUL
#undef V_LOAD
#undef V_LOADM
#undef V_LOAD_HALVES
#undef V_STORE
#undef V_STOREM
#undef V_MASK
#undef V_NZBITS

#define T double
#define S f64
#define VT __m256d
#define VL 4
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(x) _mm256_set1_pd(x)
#define V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm256_mul_pd(a, b)
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_LOADM(p, m) _mm256_maskload_pd(p, m)
#define V_LOAD_HALVES(p) _mm256_set_m128d(_mm_load_pd((p) + 2), _mm_load_pd(p))
#define V_STORE(p, v) _mm256_storeu_pd(p, v)
#define V_STOREM(p, m, v) _mm256_maskstore_pd(p, m, v)
#define V_MASK(lanes) _mm256_cmpgt_epi64(_mm256_set1_epi64x(lanes), _mm256_setr_epi64x(0, 1, 2, 3))
#define V_NZBITS(v) (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_NEQ_UQ))
#include "gemm_avx2.c"

#endif /* FM_GEMM_X86 */

#else /* FM_GEMM_AVX2_PASS: body for one dtype */

#define FN_(name, s) name##_##s
#define FN2(name, s) FN_(name, s)
#define FN(name) FN2(name, S)

#define MAXACC 12

/* One MR x (NV*VL) tile; MR, NV and PART (last vector partial: nr < NV*VL) are constants after
 * inlining, so the accumulators live in registers. With kidx (NV <= 2), only k = kidx[0 .. kc)
 * are summed, each in the same chain as without it; with ASEQ too, A holds just those k, one
 * after the other (a compacted sliver), and only B is read through kidx. */
FM_AVX2_INLINE void FN(fm_avx2_tile)(const int MR, const int NV, const int PART, const int ASEQ,
                                     int nr, int64_t kc,
                                     const int32_t *kidx, const T *restrict a, int64_t rsa,
                                     int64_t csa,
                                     const T *restrict b, int64_t ldb, T *restrict c, int64_t rsc,
                                     int64_t csc, T alpha, T beta) {
    VT acc[MAXACC];
    const __m256i ml = V_MASK(nr - (NV - 1) * VL);
    /* rows 3q, 3q+1, 3q+2 of A at ar[q] + {0, 1, 2} * rsa */
    const T *ar[2];
    int64_t p;
#pragma GCC unroll 2
    for (int q = 0; q < (MR + 2) / 3; q++) ar[q] = a + 3 * q * rsa;
#pragma GCC unroll 12
    for (int i = 0; i < MR * NV; i++) acc[i] = V_ZERO();
    if (NV <= 2 && kidx) {
        for (p = 0; p < kc; p++) {
            const int64_t off = kidx[p], aoff = ASEQ ? p : off;
            const T *bp = b + off * ldb;
            VT bv[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                bv[v] = (PART && v == NV - 1) ? V_LOADM(bp + v * VL, ml) : V_LOAD(bp + v * VL);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                VT av = V_SET1(ar[i / 3][(i % 3) * rsa + aoff * csa]);
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) acc[i * NV + v] = V_FMA(av, bv[v], acc[i * NV + v]);
            }
        }
    } else if (kidx) { /* wide tiles (never partial) over the listed k */
        for (p = 0; p < kc; p++) {
            const int64_t off = kidx[p];
            const T *bp = b + off * ldb;
            VT av[3];
#pragma GCC unroll 3
            for (int i = 0; i < MR; i++) av[i] = V_SET1(ar[i / 3][(i % 3) * rsa + off * csa]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) {
                VT bv = V_LOAD(bp + v * VL);
#pragma GCC unroll 3
                for (int i = 0; i < MR; i++) acc[i * NV + v] = V_FMA(av[i], bv, acc[i * NV + v]);
            }
        }
    } else if (NV <= 2) {
        /* B rows that all start 16 bytes past a 32-byte boundary (NumPy's arrays start 16 bytes
         * into a cache line): every other 32-byte load would span two lines, and X^T dZ of a
         * 10-unit float layer (the swap path reads X as B) ran 3x slower; two aligned 16-byte
         * loads never span one. The same values, so the same sums. */
        const int halves = (uintptr_t)b % 32 == 16 && ldb * (int64_t)sizeof(T) % 32 == 0;
#define FM_TILE_K_LOOP(LOAD)                                                                       \
    for (p = 0; p < kc; p++) {                                                                     \
        VT bv[2];                                                                                  \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                       \
            bv[v] = (PART && v == NV - 1) ? V_LOADM(b + v * VL, ml) : LOAD(b + v * VL);            \
        _Pragma("GCC unroll 6") for (int i = 0; i < MR; i++) {                                     \
            VT av = V_SET1(ar[i / 3][(i % 3) * rsa]);                                              \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                   \
                acc[i * NV + v] = V_FMA(av, bv[v], acc[i * NV + v]);                               \
        }                                                                                          \
        _Pragma("GCC unroll 2") for (int q = 0; q < (MR + 2) / 3; q++) ar[q] += csa;               \
        b += ldb;                                                                                  \
    }
        if (halves) {
            FM_TILE_K_LOOP(V_LOAD_HALVES)
        } else {
            FM_TILE_K_LOOP(V_LOAD)
        }
#undef FM_TILE_K_LOOP
    } else { /* wide tiles (never partial): few rows, many vectors */
        for (p = 0; p < kc; p++) {
            VT av[3];
#pragma GCC unroll 3
            for (int i = 0; i < MR; i++) av[i] = V_SET1(ar[i / 3][(i % 3) * rsa]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) {
                VT bv = V_LOAD(b + v * VL);
#pragma GCC unroll 3
                for (int i = 0; i < MR; i++) acc[i * NV + v] = V_FMA(av[i], bv, acc[i * NV + v]);
            }
#pragma GCC unroll 2
            for (int q = 0; q < (MR + 2) / 3; q++) ar[q] += csa;
            b += ldb;
        }
    }
    {
        /* alpha applied once, skipped for alpha = 1 (as in the AVX-512 tiles) */
        if (alpha != (T)1) {
            const VT va = V_SET1(alpha);
#pragma GCC unroll 12
            for (int i = 0; i < MR * NV; i++) acc[i] = V_MUL(va, acc[i]);
        }
        if (csc == 1) {
            const VT vb = V_SET1(beta);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++) {
                    T *cp = c + i * rsc + v * VL;
                    VT r = acc[i * NV + v];
                    if (PART && v == NV - 1) {
                        if (beta != 0) r = V_FMA(vb, V_LOADM(cp, ml), r);
                        V_STOREM(cp, ml, r);
                    } else {
                        if (beta != 0) r = V_FMA(vb, V_LOAD(cp), r);
                        V_STORE(cp, r);
                    }
                }
        } else {
            T buf[MAXACC * VL];
            int j;
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++) V_STORE(buf + (i * NV + v) * VL, acc[i * NV + v]);
            for (int i = 0; i < MR; i++) {
                T *cr = c + i * rsc;
                const T *br = buf + i * NV * VL;
                if (beta == 0)
                    for (j = 0; j < nr; j++) cr[j * csc] = br[j];
                else
                    for (j = 0; j < nr; j++) cr[j * csc] = br[j] + beta * cr[j * csc];
            }
        }
    }
}

#define TILE_FN(MRV, NVV, PV)                                                                      \
    static FM_AVX2 void FN(fm_avx2_t##MRV##x##NVV##p##PV)(int nr, int64_t kc, const T *a,       \
                                                          int64_t rsa, int64_t csa, const T *b,  \
                                                          int64_t ldb, T *c, int64_t rsc,        \
                                                          int64_t csc, T alpha, T beta) {        \
        FN(fm_avx2_tile)(MRV, NVV, PV, 0, nr, kc, NULL, a, rsa, csa, b, ldb, c, rsc, csc, alpha,  \
                         beta);                                                                    \
    }
/* zero-skipping tiles: A read through kidx (prefix i) or compacted (prefix b, ASEQ) */
#define IDX_TILE_FN(P, SEQ, MRV, NVV, PV)                                                          \
    static FM_AVX2 void FN(fm_avx2_##P##MRV##x##NVV##p##PV)(                                       \
        int nr, int64_t nk, const int32_t *kidx, const T *a, int64_t rsa, int64_t csa,            \
        const T *b, int64_t ldb, T *c, int64_t rsc, int64_t csc, T alpha, T beta) {               \
        FN(fm_avx2_tile)(MRV, NVV, PV, SEQ, nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, \
                         beta);                                                                    \
    }
#define ITILE_FN(MRV, NVV, PV) IDX_TILE_FN(i, 0, MRV, NVV, PV)
#define BTILE_FN(MRV, NVV, PV) IDX_TILE_FN(b, 1, MRV, NVV, PV)

#define TILES_MR(MRV)                                                                              \
    TILE_FN(MRV, 1, 0)                                                                             \
    TILE_FN(MRV, 1, 1)                                                                             \
    TILE_FN(MRV, 2, 0)                                                                             \
    TILE_FN(MRV, 2, 1)                                                                             \
    ITILE_FN(MRV, 1, 0)                                                                            \
    ITILE_FN(MRV, 1, 1)                                                                            \
    ITILE_FN(MRV, 2, 0)                                                                            \
    ITILE_FN(MRV, 2, 1)                                                                            \
    BTILE_FN(MRV, 1, 0)                                                                            \
    BTILE_FN(MRV, 1, 1)                                                                            \
    BTILE_FN(MRV, 2, 0)                                                                            \
    BTILE_FN(MRV, 2, 1)

TILES_MR(1)
TILES_MR(2)
TILES_MR(3)
TILES_MR(4)
TILES_MR(5)
TILES_MR(6)
TILE_FN(1, 8, 0)
TILE_FN(2, 4, 0)
TILE_FN(3, 4, 0)
ITILE_FN(1, 8, 0)
ITILE_FN(2, 4, 0)
ITILE_FN(3, 4, 0)

typedef void (*FN(fm_avx2_tile_fn))(int, int64_t, const T *, int64_t, int64_t, const T *, int64_t,
                                    T *, int64_t, int64_t, T, T);

#define ROW(MRV)                                                                                   \
    {FN(fm_avx2_t##MRV##x1p0), FN(fm_avx2_t##MRV##x1p1), FN(fm_avx2_t##MRV##x2p0),               \
     FN(fm_avx2_t##MRV##x2p1)}
/* [mr - 1][2 * (vectors - 1) + partial] */
static const FN(fm_avx2_tile_fn) FN(fm_avx2_tiles)[6][4] = {ROW(1), ROW(2), ROW(3),
                                                            ROW(4), ROW(5), ROW(6)};

typedef void (*FN(fm_avx2_itile_fn))(int, int64_t, const int32_t *, const T *, int64_t, int64_t,
                                     const T *, int64_t, T *, int64_t, int64_t, T, T);
#define IROW(MRV)                                                                                  \
    {FN(fm_avx2_i##MRV##x1p0), FN(fm_avx2_i##MRV##x1p1), FN(fm_avx2_i##MRV##x2p0),               \
     FN(fm_avx2_i##MRV##x2p1)}
static const FN(fm_avx2_itile_fn) FN(fm_avx2_itiles)[6][4] = {IROW(1), IROW(2), IROW(3),
                                                              IROW(4), IROW(5), IROW(6)};
#define BROW(MRV)                                                                                  \
    {FN(fm_avx2_b##MRV##x1p0), FN(fm_avx2_b##MRV##x1p1), FN(fm_avx2_b##MRV##x2p0),               \
     FN(fm_avx2_b##MRV##x2p1)}
static const FN(fm_avx2_itile_fn) FN(fm_avx2_btiles)[6][4] = {BROW(1), BROW(2), BROW(3),
                                                              BROW(4), BROW(5), BROW(6)};

/* The zero-skipping tile over a compacted sliver (gemm_internal.h: ukr_idx_seq); nr <= 2 VL. */
static void FN(fm_avx2_ukr_idx_seq)(int mr, int nr, int64_t nk, const int32_t *kidx, const T *a,
                                    int64_t rsa, int64_t csa, const T *b, int64_t ldb, T *c,
                                    int64_t rsc, int64_t csc, T alpha, T beta) {
    int nv = (nr + VL - 1) / VL;
    int part = nr != nv * VL;
    FN(fm_avx2_btiles)[mr - 1][2 * (nv - 1) + part](nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc,
                                                    alpha, beta);
}

/* A sliver's columns kidx[0 .. nk) into ap[q * mr + i] (ap may be the packed sliver itself,
 * rsa == 1 and csa == mr: each column moves down, never over one still to be read). */
static FM_AVX2 void FN(fm_avx2_compact)(int mr, int64_t nk, const int32_t *kidx, const T *a,
                                        int64_t rsa, int64_t csa, T *ap) {
    int64_t q;
    if (rsa == 1) {
        const __m256i m0 = V_MASK(mr < VL ? mr : VL), m1 = V_MASK(mr - VL);
        for (q = 0; q < nk; q++) {
            const T *src = a + kidx[q] * csa;
            const VT v0 = V_LOADM(src, m0);
            if (mr > VL) {
                const VT v1 = V_LOADM(src + VL, m1);
                V_STOREM(ap + q * mr + VL, m1, v1);
            }
            V_STOREM(ap + q * mr, m0, v0);
        }
        return;
    }
    for (q = 0; q < nk; q++) {
        const T *src = a + kidx[q] * csa;
        for (int i = 0; i < mr; i++) ap[q * mr + i] = src[i * rsa];
    }
}

/* Same tile shapes as fm_avx2_ukr. */
static void FN(fm_avx2_ukr_idx)(int mr, int nr, int64_t nk, const int32_t *kidx, const T *a,
                                int64_t rsa, int64_t csa, const T *b, int64_t ldb, T *c,
                                int64_t rsc, int64_t csc, T alpha, T beta) {
    if (nr > 2 * VL) { /* mr <= 3, B in place */
        if (mr == 1 && nr == 8 * VL) {
            FN(fm_avx2_i1x8p0)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            return;
        }
        if (mr == 2 && nr == 4 * VL) {
            FN(fm_avx2_i2x4p0)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            return;
        }
        if (mr == 3 && nr == 4 * VL) {
            FN(fm_avx2_i3x4p0)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            return;
        }
        while (nr > 0) {
            int w = nr < 2 * VL ? nr : 2 * VL;
            FN(fm_avx2_ukr_idx)(mr, w, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            b += w;
            c += w * csc;
            nr -= w;
        }
        return;
    }
    int nv = (nr + VL - 1) / VL;
    int part = nr != nv * VL;
    FN(fm_avx2_itiles)[mr - 1][2 * (nv - 1) + part](nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc,
                                                    alpha, beta);
}

static void FN(fm_avx2_ukr)(int mr, int nr, int64_t kc, const T *a, int64_t rsa, int64_t csa,
                            const T *b, int64_t ldb, T *c, int64_t rsc, int64_t csc, T alpha,
                            T beta) {
    if (nr > 2 * VL) { /* mr <= 3, B in place */
        if (mr == 1 && nr == 8 * VL) {
            FN(fm_avx2_t1x8p0)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            return;
        }
        if (mr == 2 && nr == 4 * VL) {
            FN(fm_avx2_t2x4p0)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            return;
        }
        if (mr == 3 && nr == 4 * VL) {
            FN(fm_avx2_t3x4p0)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            return;
        }
        /* a partial wide tile: split into 2-vector tiles */
        while (nr > 0) {
            int w = nr < 2 * VL ? nr : 2 * VL;
            FN(fm_avx2_ukr)(mr, w, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            b += w;
            c += w * csc;
            nr -= w;
        }
        return;
    }
    {
        int nv = (nr + VL - 1) / VL;
        int part = nr != nv * VL;
        FN(fm_avx2_tiles)[mr - 1][2 * (nv - 1) + part](nr, kc, a, rsa, csa, b, ldb, c, rsc, csc,
                                                       alpha, beta);
    }
}

/* ---- dot-product tiles: A rows and B columns both contiguous along k (csa == 1, rsb == 1) ----
 * acc[i][j] sums A[i, p] * B[p, j] lane-wise over p (k tail masked), then one horizontal sum per
 * element in a fixed order. Rows >= mr and columns >= nr are pointed at row / column 0 (valid
 * memory) and never stored, so one instantiation serves every edge. */
FM_AVX2_INLINE T FN(fm_avx2_hsum)(VT v) {
    T lanes[VL], s = 0;
    V_STORE(lanes, v);
    /* pairwise in a fixed order */
    for (int w = VL / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lanes[l] += lanes[l + w];
    s = lanes[0];
    return s;
}

FM_AVX2_INLINE void FN(fm_avx2_dot_tile)(const int MD, const int ND, int mr, int nr, int64_t k,
                                         const T *restrict a, int64_t rsa, const T *restrict b,
                                         int64_t csb, T *restrict c, int64_t rsc, int64_t csc,
                                         T alpha, T beta) {
    const T *ap[2], *bp[8];
    VT acc[8];
    int64_t p = 0;
#pragma GCC unroll 2
    for (int i = 0; i < MD; i++) ap[i] = a + (i < mr ? i : 0) * rsa;
#pragma GCC unroll 8
    for (int j = 0; j < ND; j++) bp[j] = b + (j < nr ? j : 0) * csb;
#pragma GCC unroll 8
    for (int i = 0; i < MD * ND; i++) acc[i] = V_ZERO();
    for (; p + VL <= k; p += VL) {
        VT av[2];
#pragma GCC unroll 2
        for (int i = 0; i < MD; i++) av[i] = V_LOAD(ap[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < ND; j++) {
            VT bv = V_LOAD(bp[j] + p);
#pragma GCC unroll 2
            for (int i = 0; i < MD; i++) acc[i * ND + j] = V_FMA(av[i], bv, acc[i * ND + j]);
        }
    }
    if (p < k) {
        const __m256i mt = V_MASK((int)(k - p));
        VT av[2];
#pragma GCC unroll 2
        for (int i = 0; i < MD; i++) av[i] = V_LOADM(ap[i] + p, mt);
#pragma GCC unroll 8
        for (int j = 0; j < ND; j++) {
            VT bv = V_LOADM(bp[j] + p, mt);
#pragma GCC unroll 2
            for (int i = 0; i < MD; i++) acc[i * ND + j] = V_FMA(av[i], bv, acc[i * ND + j]);
        }
    }
    /* each sum goes straight to C: a T[] of sums reloaded as vectors stalls store forwarding */
    for (int i = 0; i < mr && i < MD; i++) {
        T *cr = c + i * rsc;
        for (int j = 0; j < nr && j < ND; j++) {
            const T s = FN(fm_avx2_hsum)(acc[i * ND + j]);
            cr[j * csc] = beta == 0 ? alpha * s : alpha * s + beta * cr[j * csc];
        }
    }
}

/* one row: the whole run of columns in one call, 8 at a time, so tiles overlap in the core */
static FM_AVX2 void FN(fm_avx2_d1x8)(int mr, int nr, int64_t k, const T *a, int64_t rsa,
                                     const T *b, int64_t csb, T *c, int64_t rsc, int64_t csc,
                                     T alpha, T beta) {
    for (int j = 0; j < nr; j += 8)
        FN(fm_avx2_dot_tile)(1, 8, mr, nr - j < 8 ? nr - j : 8, k, a, rsa, b + j * csb, csb,
                             c + j * csc, rsc, csc, alpha, beta);
}
static FM_AVX2 void FN(fm_avx2_d2x4)(int mr, int nr, int64_t k, const T *a, int64_t rsa,
                                     const T *b, int64_t csb, T *c, int64_t rsc, int64_t csc,
                                     T alpha, T beta) {
    FN(fm_avx2_dot_tile)(2, 4, mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
}
static void FN(fm_avx2_dot)(int mr, int nr, int64_t k, const T *a, int64_t rsa, const T *b,
                            int64_t csb, T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    if (mr == 1)
        FN(fm_avx2_d1x8)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else
        FN(fm_avx2_d2x4)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
}

/* The driver's zero scan (fm_gemm_nonzero_k in gemm.c), same result: A by rows (csa == 1) VL k
 * at a time; A by columns (rsa == 1, a packed sliver) one k per masked load (mr <= 2 VL).
 * "Not zero" is an unordered compare, so NaN counts as not zero. */
static FM_AVX2 int64_t FN(fm_avx2_nonzero_k)(int mr, int64_t kc, const T *a, int64_t rsa,
                                             int64_t csa, int64_t max_nk, int32_t *kidx) {
    int64_t p, nk = 0;
    if (csa == 1) {
        for (p = 0; p < kc; p += VL) {
            const __m256i ml = V_MASK((int)(kc - p < VL ? kc - p : VL));
            unsigned nz = 0;
            for (int i = 0; i < mr; i++) nz |= V_NZBITS(V_LOADM(a + i * rsa + p, ml));
            while (nz) {
                kidx[nk++] = (int32_t)(p + __builtin_ctz(nz));
                nz &= nz - 1;
            }
            if (fm_gemm_scan_gives_up(nk, p + VL, max_nk)) return kc;
        }
        return nk;
    }
    if (rsa == 1 && mr <= 2 * VL) {
        const __m256i m0 = V_MASK(mr < VL ? mr : VL);
        const __m256i m1 = V_MASK(mr - VL);
        for (p = 0; p < kc; p++) {
            const T *ac = a + p * csa;
            unsigned nz = V_NZBITS(V_LOADM(ac, m0));
            if (mr > VL) nz |= V_NZBITS(V_LOADM(ac + VL, m1));
            kidx[nk] = (int32_t)p;
            nk += nz != 0;
            if (fm_gemm_scan_gives_up(nk, p + 1, max_nk)) return kc;
        }
        return nk;
    }
    return -1;
}

/* B micro-panel from row-contiguous B: two vectors a row, the second masked to nr (rows are
 * never read past column nr), padded with zeros to 2 VL. */
static FM_AVX2 void FN(fm_avx2_packb)(int nr, int64_t kc, const T *b, int64_t rsb, T *bp) {
    const int NR = 2 * VL;
    int64_t p;
    if (nr == NR) {
        for (p = 0; p < kc; p++) {
            V_STORE(bp + p * NR, V_LOAD(b + p * rsb));
            V_STORE(bp + p * NR + VL, V_LOAD(b + p * rsb + VL));
        }
        return;
    }
    {
        const __m256i m0 = V_MASK(nr < VL ? nr : VL), m1 = V_MASK(nr - VL);
        for (p = 0; p < kc; p++) {
            V_STORE(bp + p * NR, V_LOADM(b + p * rsb, m0));
            V_STORE(bp + p * NR + VL, V_LOADM(b + p * rsb + VL, m1));
        }
    }
}

/* In-register transpose of VL vectors of VL lanes: o[q] lane i = r[i] lane q. */
FM_AVX2_INLINE void FN(fm_avx2_tr)(const VT *r, VT *o) {
#if VL == 8
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
#else
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    o[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    o[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    o[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    o[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
#endif
}

/* The row path's zero scan (gemm.c): up to 16 rows of A stored by columns (rsa == 1). A block of
 * VL rows x VL k is transposed in registers, so that each row's non-zero k of the block come
 * out of one compare and one movemask. */
static FM_AVX2 void FN(fm_avx2_nonzero_rows)(int mr, int64_t kc, const T *a, int64_t csa,
                                             int32_t (*kidx)[FM_GEMM_ROWS_MAX_K], int64_t *nk) {
    for (int r0 = 0; r0 < mr; r0 += VL) {
        const int rows = mr - r0 < VL ? mr - r0 : VL;
        const __m256i mrow = V_MASK(rows);
        int64_t count[VL] = {0};
        for (int64_t p0 = 0; p0 < kc; p0 += VL) {
            const int ks = (int)(kc - p0 < VL ? kc - p0 : VL);
            VT r[VL], o[VL];
#pragma GCC unroll 8
            for (int q = 0; q < VL; q++)
                r[q] = q < ks ? V_LOADM(a + r0 + (p0 + q) * csa, mrow) : V_ZERO();
            FN(fm_avx2_tr)(r, o); /* o[i] lane q = A[r0 + i, p0 + q] */
            for (int i = 0; i < rows; i++) {
                unsigned nz = V_NZBITS(o[i]);
                while (nz) {
                    kidx[r0 + i][count[i]++] = (int32_t)(p0 + __builtin_ctz(nz));
                    nz &= nz - 1;
                }
            }
        }
        for (int i = 0; i < rows; i++) nk[r0 + i] = count[i];
    }
}

/* B micro-panel from column-contiguous B (W^T of a backward pass): VL x VL blocks read along k
 * (the k tail masked, columns past nr as zeros) and transposed in registers. */
static FM_AVX2 void FN(fm_avx2_packbt)(int nr, int64_t kc, const T *b, int64_t csb, T *bp) {
    const int NR = 2 * VL;
    int64_t p0;
    for (p0 = 0; p0 < kc; p0 += VL) {
        const int rows = (int)(kc - p0 < VL ? kc - p0 : VL);
        const __m256i mk = V_MASK(rows);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            VT r[VL], o[VL];
#pragma GCC unroll 8
            for (int i = 0; i < VL; i++) {
                const int j = h * VL + i;
                r[i] = j >= nr ? V_ZERO()
                       : rows == VL ? V_LOAD(b + j * csb + p0)
                                    : V_LOADM(b + j * csb + p0, mk);
            }
            FN(fm_avx2_tr)(r, o);
#pragma GCC unroll 8
            for (int q = 0; q < VL; q++)
                if (q < rows) V_STORE(bp + (p0 + q) * NR + h * VL, o[q]);
        }
    }
}

/* A sliver from column-contiguous A (X^T of a weight gradient): one masked load and store per
 * k (mr <= 6 < 2 VL rows for floats; two vectors for doubles). */
static FM_AVX2 void FN(fm_avx2_packa)(int mr, int64_t kc, const T *a, int64_t csa, T *ap) {
    const __m256i m0 = V_MASK(mr < VL ? mr : VL), m1 = V_MASK(mr - VL);
    int64_t p;
    for (p = 0; p < kc; p++) {
        V_STOREM(ap + p * mr, m0, V_LOADM(a + p * csa, m0));
        if (mr > VL) V_STOREM(ap + p * mr + VL, m1, V_LOADM(a + p * csa + VL, m1));
    }
}

/* An A block of slivers of 6 rows from column-contiguous A, one column segment at a time (each
 * line read once). Slivers before the last are read and written 2 VL lanes wide: the lanes past
 * the sliver's 6 rows read the next sliver's rows and are overwritten by the next k's store;
 * only the last k of a sliver, and the last sliver, use masks. */
static FM_AVX2 void FN(fm_avx2_packa_block)(int64_t mc, int64_t kc, const T *a, int64_t csa,
                                            T *ap) {
    const int MR = 6;
    const int64_t n_full = (mc - 1) / MR; /* slivers with a sliver after them */
    const int last_mr = (int)(mc - n_full * MR);
    const __m256i m0 = V_MASK(MR < VL ? MR : VL), m1 = V_MASK(MR - VL);
    const __m256i l0 = V_MASK(last_mr < VL ? last_mr : VL), l1 = V_MASK(last_mr - VL);
    int64_t p, s;
    for (p = 0; p < kc; p++) {
        const T *col = a + p * csa;
        const int tail = p == kc - 1;
        for (s = 0; s < n_full; s++) {
            T *dst = ap + s * MR * kc + p * MR;
            const VT v0 = V_LOAD(col + s * MR);
            if (!tail) V_STORE(dst, v0);
            else V_STOREM(dst, m0, v0);
            if (MR > VL) {
                const VT v1 = V_LOAD(col + s * MR + VL);
                if (!tail) V_STORE(dst + VL, v1);
                else V_STOREM(dst + VL, m1, v1);
            }
        }
        {
            T *dst = ap + n_full * MR * kc + p * last_mr;
            V_STOREM(dst, l0, V_LOADM(col + n_full * MR, l0));
            if (last_mr > VL) V_STOREM(dst + VL, l1, V_LOADM(col + n_full * MR + VL, l1));
        }
    }
}

/* kernel.row_stream (see the AVX-512 kernel's): 4 rows of B at a time, each read whole, C
 * loaded and stored once per 4; the last columns under a mask. */
FM_AVX2_INLINE void FN(fm_avx2_row_stream_r)(const int R, const VT *xs, const T *const *bs, T *c,
                                             int64_t nv, int tail, __m256i tail_m) {
    int64_t j;
    for (j = 0; j < nv; j += VL) {
        VT s = V_LOAD(c + j);
#pragma GCC unroll 4
        for (int q = 0; q < R; q++) s = V_FMA(xs[q], V_LOAD(bs[q] + j), s);
        V_STORE(c + j, s);
    }
    if (tail) {
        VT s = V_LOADM(c + j, tail_m);
#pragma GCC unroll 4
        for (int q = 0; q < R; q++) s = V_FMA(xs[q], V_LOADM(bs[q] + j, tail_m), s);
        V_STOREM(c + j, tail_m, s);
    }
}

static FM_AVX2 void FN(fm_avx2_row_stream)(int64_t n, int64_t nk, const int32_t *kidx,
                                           const T *a, int64_t csa, const T *b, int64_t ldb,
                                           T *c) {
    const int64_t nv = n / VL * VL;
    const int tail = (int)(n - nv);
    const __m256i tail_m = V_MASK(tail);
    int64_t q = 0;
    VT xs[4];
    const T *bs[4];
    for (; q + 4 <= nk; q += 4) {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const int64_t p = kidx ? kidx[q + i] : q + i;
            xs[i] = V_SET1(a[p * csa]);
            bs[i] = b + p * ldb;
        }
        FN(fm_avx2_row_stream_r)(4, xs, bs, c, nv, tail, tail_m);
    }
    for (; q < nk; q++) {
        const int64_t p = kidx ? kidx[q] : q;
        xs[0] = V_SET1(a[p * csa]);
        bs[0] = b + p * ldb;
        FN(fm_avx2_row_stream_r)(1, xs, bs, c, nv, tail, tail_m);
    }
}

const FN(fm_gemm_kernel) FN(fm_gemm_avx2) = {
    "avx2", 6, 2 * VL, {0, 8 * VL, 4 * VL, 4 * VL}, 256, 512, 16 * VL, FN(fm_avx2_ukr),
    2, {0, 48, 4}, FN(fm_avx2_dot), FN(fm_avx2_packbt), FN(fm_avx2_ukr_idx),
    FN(fm_avx2_nonzero_k), VL == 8 ? 144 : 72, 32, FN(fm_avx2_packb), FN(fm_avx2_packa),
    FN(fm_avx2_packa_block), FN(fm_avx2_ukr_idx_seq), FN(fm_avx2_compact), 0, NULL, NULL,
    FN(fm_avx2_nonzero_rows), {60, 60}, NULL, 0, NULL, FN(fm_avx2_row_stream)};

#undef FN_
#undef FN2
#undef FN
#undef MAXACC
#undef TILE_FN
#undef ITILE_FN
#undef BTILE_FN
#undef IDX_TILE_FN
#undef BROW
#undef TILES_MR
#undef ROW
#undef IROW

#endif /* FM_GEMM_AVX2_PASS */
