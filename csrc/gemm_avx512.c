/* AVX-512F GEMM micro-kernels (see gemm_internal.h for the contract).
 *
 * Register tile: MR = 14 rows x NR = 2 vectors (f32 14x32, f64 14x16): 28 accumulators, 2 B
 * vectors and a broadcast of A, out of 32 zmm registers. Narrow problems (nr <= one vector, e.g.
 * a 10-unit output layer) use a 14 x 1-vector tile; one to three rows (batch 1..3, with B in
 * place) use wider tiles so that enough independent FMA chains hide the FMA latency.
 * Column edges use AVX-512 masks (columns beyond nr are never read nor written), so the same
 * code serves full and edge tiles and B can be read in place; a last few columns over A by
 * columns run as column tiles, vectors down the rows (fm_avx512_cols_pay).
 *
 * Compiled with target attributes only, chosen at run time; on other architectures this file is
 * empty. It includes itself once per dtype (FM_GEMM_AVX512_PASS). */
#ifndef FM_GEMM_AVX512_PASS

#include "gemm_internal.h"

#if FM_GEMM_X86
#include <immintrin.h>

#define FM_AVX512 __attribute__((target("avx512f")))
#define FM_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* Horizontal sums of four vectors at once, in a fixed order: out[q] = sum of the lanes of vq. */
FM_AVX512_INLINE __m128 fm_avx512_reduce4_f32(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
    const __m512i lane0 = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    /* 512 -> 256 lanes per vector, two vectors per register */
    __m512 t0 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44),
                              _mm512_shuffle_f32x4(v0, v1, 0xEE));
    __m512 t1 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44),
                              _mm512_shuffle_f32x4(v2, v3, 0xEE));
    /* 256 -> 128: one 4-lane block per vector */
    __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, 0x88),
                             _mm512_shuffle_f32x4(t0, t1, 0xDD));
    /* 4 -> 1 inside each block */
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1));
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(lane0, u));
}
FM_AVX512_INLINE __m256d fm_avx512_reduce4_f64(__m512d v0, __m512d v1, __m512d v2, __m512d v3) {
    __m512d t0 = _mm512_add_pd(_mm512_shuffle_f64x2(v0, v1, 0x44),
                               _mm512_shuffle_f64x2(v0, v1, 0xEE));
    __m512d t1 = _mm512_add_pd(_mm512_shuffle_f64x2(v2, v3, 0x44),
                               _mm512_shuffle_f64x2(v2, v3, 0xEE));
    __m512d u = _mm512_add_pd(_mm512_shuffle_f64x2(t0, t1, 0x88),
                              _mm512_shuffle_f64x2(t0, t1, 0xDD));
    u = _mm512_add_pd(u, _mm512_permute_pd(u, 0x55));
    return _mm512_castpd512_pd256(
        _mm512_permutexvar_pd(_mm512_setr_epi64(0, 2, 4, 6, 0, 0, 0, 0), u));
}

/* Eight vectors of 8 doubles to their 8 sums, in one vector: three levels of pairwise adds
 * with shuffles between (14 shuffles, 7 adds, 3 dependent steps; two reduce4 calls take 4). */
FM_AVX512_INLINE __m512d fm_avx512_pair_f64(__m512d a, __m512d b) {
    return _mm512_add_pd(_mm512_unpacklo_pd(a, b), _mm512_unpackhi_pd(a, b));
}
FM_AVX512_INLINE __m512d fm_avx512_blocks_f64(__m512d x, __m512d y) {
    return _mm512_add_pd(_mm512_shuffle_f64x2(x, y, 0x88), _mm512_shuffle_f64x2(x, y, 0xDD));
}
FM_AVX512_INLINE __m512d fm_avx512_reduce8_f64(__m512d v0, __m512d v1, __m512d v2, __m512d v3,
                                               __m512d v4, __m512d v5, __m512d v6, __m512d v7) {
    /* pair: [a0+a1, b0+b1, a2+a3, b2+b3, ...]; blocks of 128 bits: [X0+X1, X2+X3, Y0+Y1, Y2+Y3] */
    const __m512d u0 = fm_avx512_blocks_f64(fm_avx512_pair_f64(v0, v1), fm_avx512_pair_f64(v2, v3));
    const __m512d u1 = fm_avx512_blocks_f64(fm_avx512_pair_f64(v4, v5), fm_avx512_pair_f64(v6, v7));
    return fm_avx512_blocks_f64(u0, u1);
}

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
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOADZ(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_NZ(v) _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ)
#define V_LOADA(p) _mm512_load_ps(p)
#define V_SHIFTED(lo, idx, hi) _mm512_permutex2var_ps(lo, idx, hi)
#define V_LANE_IDX(s) \
    _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), \
                     _mm512_set1_epi32(s))
#define R4 __m128
#define R4_SET1(x) _mm_set1_ps(x)
#define R4_MUL(a, b) _mm_mul_ps(a, b)
#define R4_ADD(a, b) _mm_add_ps(a, b)
#define R4_LOAD(p) _mm_loadu_ps(p)
#define R4_STORE(p, v) _mm_storeu_ps(p, v)
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
#undef V_ADD
#undef V_LOAD
#undef V_LOADZ
#undef V_STORE
#undef V_STOREM
#undef V_NZ
#undef V_LOADA
#undef V_SHIFTED
#undef V_LANE_IDX
#undef R4
#undef R4_SET1
#undef R4_MUL
#undef R4_ADD
#undef R4_LOAD
#undef R4_STORE

#define T double
#define S f64
#define VT __m512d
#define MT __mmask8
#define VL 8
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(x) _mm512_set1_pd(x)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_LOADZ(m, p) _mm512_maskz_loadu_pd(m, p)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_STOREM(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define V_NZ(v) _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ)
#define V_LOADA(p) _mm512_load_pd(p)
#define V_SHIFTED(lo, idx, hi) _mm512_permutex2var_pd(lo, idx, hi)
#define V_LANE_IDX(s) _mm512_add_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi64(s))
#define R4 __m256d
#define R4_SET1(x) _mm256_set1_pd(x)
#define R4_MUL(a, b) _mm256_mul_pd(a, b)
#define R4_ADD(a, b) _mm256_add_pd(a, b)
#define R4_LOAD(p) _mm256_loadu_pd(p)
#define R4_STORE(p, v) _mm256_storeu_pd(p, v)
#include "gemm_avx512.c"

#endif /* FM_GEMM_X86 */

#else /* FM_GEMM_AVX512_PASS: body for one dtype */

#define FN_(name, s) name##_##s
#define FN2(name, s) FN_(name, s)
#define FN(name) FN2(name, S)

#define MAXACC 28
#ifndef FM_AVX512_KC
#define FM_AVX512_KC 384
#endif
#ifndef FM_AVX512_NC
#define FM_AVX512_NC 512
#endif

/* Lanes [lo, hi) of a vector (clamped to [0, VL)). */
FM_AVX512_INLINE MT FN(fm_avx512_span_mask)(int lo, int hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > VL ? VL : hi;
    return hi <= lo ? (MT)0 : (MT)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* Lanes [v*VL, nr) of vector v, as a mask (all ones for full vectors, zero past nr). */
FM_AVX512_INLINE MT FN(fm_avx512_mask)(int nr, int v) {
    int lanes = nr - v * VL;
    if (lanes >= VL) return (MT)~(MT)0;
    if (lanes <= 0) return (MT)0;
    return (MT)((1u << lanes) - 1u);
}

/* o[q] = lanes q of r[0..VL) (a VL x VL block transposed in registers). */
FM_AVX512_INLINE void FN(fm_avx512_tr)(const VT *r, VT *o) {
#if VL == 16
    VT t[16], u[16], v[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
        const __m512d t0 = _mm512_castps_pd(t[i]), t1 = _mm512_castps_pd(t[i + 1]);
        const __m512d t2 = _mm512_castps_pd(t[i + 2]), t3 = _mm512_castps_pd(t[i + 3]);
        u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 16; i += 8)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            v[i + q] = _mm512_shuffle_f32x4(u[i + q], u[i + 4 + q], 0x88);
            v[i + 4 + q] = _mm512_shuffle_f32x4(u[i + q], u[i + 4 + q], 0xDD);
        }
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++) {
        o[q] = _mm512_shuffle_f32x4(v[q], v[8 + q], 0x88);
        o[8 + q] = _mm512_shuffle_f32x4(v[q], v[8 + q], 0xDD);
    }
#else
    VT t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 8; i += 4)
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) {
            u[i + q] = _mm512_shuffle_f64x2(t[i + q], t[i + 2 + q], 0x88);
            u[i + 2 + q] = _mm512_shuffle_f64x2(t[i + q], t[i + 2 + q], 0xDD);
        }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        o[q] = _mm512_shuffle_f64x2(u[q], u[4 + q], 0x88);
        o[4 + q] = _mm512_shuffle_f64x2(u[q], u[4 + q], 0xDD);
    }
#endif
}

/* One MR x (NV*VL) tile; MR and NV are constants after inlining, so the accumulators live in
 * registers. With kidx (NV <= 2), only k = kidx[0 .. kc) are summed, one chain per element. */
FM_AVX512_INLINE void FN(fm_avx512_tile)(const int MR, const int NV, const int STREAM, int nr,
                                         int64_t kc,
                                         const int32_t *kidx, const T *restrict a, int64_t rsa, int64_t csa,
                                         const T *restrict b, int64_t ldb, T *restrict c,
                                         int64_t rsc, int64_t csc, T alpha, T beta) {
    VT acc[MAXACC];
    /* vectors before the last are full (the caller guarantees nr > (NV - 1) * VL) */
    const MT ml = FN(fm_avx512_mask)(nr, NV - 1);
    /* rows 3q, 3q+1, 3q+2 of A at ar[q] + {0, 1, 2} * rsa: five base pointers and one index
     * register address all 14 rows (x86 scales 1, 2, 4, 8) */
    const T *ar[5];
    int64_t p;
#pragma GCC unroll 5
    for (int q = 0; q < (MR + 2) / 3; q++) ar[q] = a + 3 * q * rsa;
#pragma GCC unroll 28
    for (int i = 0; i < MAXACC; i++) acc[i] = V_ZERO();
    /* the C tile, needed only after the k loop, is fetched into L2 meanwhile: with k split in
     * blocks (C += A B per block) its rows came cold from L3 at the end of every tile (1024^3
     * on a Zen 4 core, best of 15 rounds: +10-30%; into L1, the streaming B evicts them).
     * A short k loop hides nothing: there the prefetches only cost (the output layer's dX,
     * 256 x 256 x 10, without them: +3% double, +6% float) */
    if (csc == 1 && kc >= 32) {
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            _mm_prefetch((const char *)(c + i * rsc), _MM_HINT_T1);
            _mm_prefetch((const char *)(c + i * rsc + nr - 1), _MM_HINT_T1);
        }
    }
    if (NV <= 2 && kidx) {
        for (p = 0; p < kc; p++) {
            const int64_t off = kidx[p];
            const T *bp = b + off * ldb;
            VT bv[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                bv[v] = v < NV - 1 ? V_LOAD(bp + v * VL) : V_LOADZ(ml, bp + v * VL);
#pragma GCC unroll 14
            for (int i = 0; i < MR; i++) {
                VT av = V_SET1(ar[i / 3][(i % 3) * rsa + off * csa]);
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) acc[i * NV + v] = V_FMA(av, bv[v], acc[i * NV + v]);
            }
        }
    } else if (kidx) { /* wide tiles (1 to 4 rows) over the listed k */
        for (p = 0; p < kc; p++) {
            const int64_t off = kidx[p];
            const T *bp = b + off * ldb;
            VT av[4];
#pragma GCC unroll 4
            for (int i = 0; i < MR; i++) av[i] = V_SET1(ar[0][i * rsa + off * csa]);
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) {
                VT bv = v < NV - 1 ? V_LOAD(bp + v * VL) : V_LOADZ(ml, bp + v * VL);
#pragma GCC unroll 4
                for (int i = 0; i < MR; i++) acc[i * NV + v] = V_FMA(av[i], bv, acc[i * NV + v]);
            }
        }
    } else if (NV <= 2) {
        /* U independent accumulator sets (k interleaved, summed in a fixed order at the end)
         * give small tiles the 8+ FMA chains that hide the FMA latency */
        const int U = MR * NV >= 8 ? 1 : (8 + MR * NV - 1) / (MR * NV);
        /* B in place whose rows do not start at the same offset in a cache line (a row of 760
         * floats is 3040 bytes: every other row starts mid-line) defeats the hardware
         * prefetcher: its rows are fetched 8 k ahead (Zen 4, interleaved against the library
         * without, 1 thread: float 128 x 720 x 1024 (A^T) with rows 760 apart 1.09x,
         * 128 x 870 x 1024 1.20x, 256 x 760 x 512 1.05x, double 256 x 380 x 512 1.07x,
         * 96 x 500 x 784 1.04x; 2 threads 1.00-1.09x). Rows 4 KiB or more apart, a page per
         * k, are fetched too by 14-row tiles: double 256 x 1024 x 1024 1.03-1.06x, 64 x 1024 x
         * 1024 1.09-1.16x, 128 x 1024 x 1024 (A^T) 1.06-1.15x, float 64 x 2048 x 2048
         * 1.18-1.22x (2 threads 1.01-1.23x); fewer rows lost (float 8 x 1024 x 1024: 0.76x).
         * Those go 16 k ahead (against 8: 1.00-1.05x). Packed B and other rows
         * whole lines apart need none; rows under 1 KiB were not helped. */
        const int64_t row_bytes = ldb * (int64_t)sizeof(T);
        const int64_t pfd = row_bytes >= 4096 && MR == 14              ? 16 * ldb
                            : row_bytes % 64 != 0 && row_bytes >= 1024 ? 8 * ldb
                                                                       : 0;
        /* A streamed B (kernel.ukr_stream) whose rows all start sh elements into a cache line
         * (NumPy's arrays start 16 bytes in): each vector is put together from two whole lines
         * with one permute, the same values, so the same sums. Loads spanning two lines of
         * rows coming from memory made X^T dZ of a 10-unit layer with X as NumPy allocates it
         * 2.6-4x slower (the swap path reads X as B); with B in L2, read by many slivers, the
         * permutes cost more than the split loads (256 x 256 x 784: 0.83x), so not there. The
         * lines' masks keep to the tile's elements, so no load leaves the row. */
        const int sh = STREAM && (uintptr_t)b % 64 != 0 && row_bytes % 64 == 0
                           ? (int)((uintptr_t)b % 64 / sizeof(T)) : 0;
#define FM_LOAD_B_IN_PLACE(bv, bsrc)                                                               \
    _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                           \
        bv[v] = v < NV - 1 ? V_LOAD((bsrc) + v * VL) : V_LOADZ(ml, (bsrc) + v * VL);
#define FM_LOAD_B_SHIFTED(bv, bsrc)                                                                \
    {                                                                                              \
        const T *q_ = (bsrc) - sh;                                                                 \
        const VT l0_ = V_LOADZ(lm[0], q_), l1_ = V_LOADZ(lm[1], q_ + VL);                          \
        bv[0] = V_SHIFTED(l0_, lanes, l1_);                                                        \
        if (NV > 1) bv[1] = V_SHIFTED(l1_, lanes, V_LOADZ(lm[2], q_ + 2 * VL));                    \
    }
/* the k loop, U rows of B at a time, then the rest one by one */
#define FM_TILE_K_LOOP(LOAD_B)                                                                     \
    for (p = 0; p + U <= kc; p += U) {                                                             \
        _Pragma("GCC unroll 8") for (int u = 0; u < U; u++) {                                      \
            VT bv[2];                                                                              \
            if (pfd) { /* the first, middle and last line of the row's NV vectors */               \
                _mm_prefetch((const char *)(b + pfd), _MM_HINT_T0);                                \
                if (NV > 1) _mm_prefetch((const char *)(b + pfd + VL), _MM_HINT_T0);               \
                _mm_prefetch((const char *)(b + pfd + NV * VL - 1), _MM_HINT_T0);                  \
            }                                                                                      \
            LOAD_B(bv, b)                                                                          \
            _Pragma("GCC unroll 14") for (int i = 0; i < MR; i++) {                                \
                VT av = V_SET1(ar[i / 3][(i % 3) * rsa]);                                          \
                _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                               \
                    acc[(u * MR + i) * NV + v] = V_FMA(av, bv[v], acc[(u * MR + i) * NV + v]);     \
            }                                                                                      \
            _Pragma("GCC unroll 5") for (int q = 0; q < (MR + 2) / 3; q++) ar[q] += csa;           \
            b += ldb;                                                                              \
        }                                                                                          \
    }                                                                                              \
    for (; p < kc; p++) {                                                                          \
        VT bv[2];                                                                                  \
        LOAD_B(bv, b)                                                                              \
        _Pragma("GCC unroll 14") for (int i = 0; i < MR; i++) {                                    \
            VT av = V_SET1(ar[i / 3][(i % 3) * rsa]);                                              \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                   \
                acc[i * NV + v] = V_FMA(av, bv[v], acc[i * NV + v]);                               \
        }                                                                                          \
        _Pragma("GCC unroll 5") for (int q = 0; q < (MR + 2) / 3; q++) ar[q] += csa;               \
        b += ldb;                                                                                  \
    }
        if (sh) {
            const __m512i lanes = V_LANE_IDX(sh);
            MT lm[3];
#pragma GCC unroll 3
            for (int j = 0; j < 3; j++)
                lm[j] = FN(fm_avx512_span_mask)(sh - j * VL, nr + sh - j * VL);
            FM_TILE_K_LOOP(FM_LOAD_B_SHIFTED)
        } else {
            FM_TILE_K_LOOP(FM_LOAD_B_IN_PLACE)
        }
#undef FM_TILE_K_LOOP
#undef FM_LOAD_B_SHIFTED
#undef FM_LOAD_B_IN_PLACE
#pragma GCC unroll 8
        for (int u = 1; u < U; u++)
#pragma GCC unroll 28
            for (int i = 0; i < MR * NV; i++) acc[i] = V_ADD(acc[i], acc[u * MR * NV + i]);
    } else { /* wide tiles: 1 to 4 rows, many vectors; B streams row by row */
        for (p = 0; p < kc; p++) {
            VT av[4];
            /* a row of B 6 k ahead: pays for 2 and 3 rows; for one row (a product streaming B
             * once) the hardware prefetcher alone was 10-30% faster. Not for a short k (the
             * short-k path reads the same few rows of B for every block of rows: without it,
             * Zen 4, interleaved, float 784 x 256 x 32 with A^T 1.10x, 1024 x 64 x 8 1.04x,
             * double 256 x 256 x 4 1.07x) */
            if (MR > 1 && kc > 64) {
#pragma GCC unroll 16
                for (int v = 0; v < NV; v++)
                    _mm_prefetch((const char *)(b + 6 * ldb + v * VL), _MM_HINT_T0);
            }
#pragma GCC unroll 4
            for (int i = 0; i < MR; i++) av[i] = V_SET1(ar[0][i * rsa]);
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) {
                VT bv = v < NV - 1 ? V_LOAD(b + v * VL) : V_LOADZ(ml, b + v * VL);
#pragma GCC unroll 4
                for (int i = 0; i < MR; i++) acc[i * NV + v] = V_FMA(av[i], bv, acc[i * NV + v]);
            }
            ar[0] += csa;
            b += ldb;
        }
    }
    {
        /* alpha applied once, before any store; skipped for alpha = 1 (every product of the
         * engine), where it was one multiply per accumulator: a seventh of the FP work of a
         * tile at k = 8 */
        if (alpha != (T)1) {
            const VT va = V_SET1(alpha);
#pragma GCC unroll 28
            for (int i = 0; i < MR * NV; i++) acc[i] = V_MUL(va, acc[i]);
        }
        if (csc == 1) {
            if (beta == 0) {
#pragma GCC unroll 14
                for (int i = 0; i < MR; i++)
#pragma GCC unroll 16
                    for (int v = 0; v < NV; v++) {
                        T *cp = c + i * rsc + v * VL;
                        VT r = acc[i * NV + v];
                        if (v < NV - 1)
                            V_STORE(cp, r);
                        else
                            V_STOREM(cp, ml, r);
                    }
            } else {
                const VT vb = V_SET1(beta);
#pragma GCC unroll 14
                for (int i = 0; i < MR; i++)
#pragma GCC unroll 16
                    for (int v = 0; v < NV; v++) {
                        T *cp = c + i * rsc + v * VL;
                        /* alpha*AB is rounded before beta*C joins it, as in every other
                         * path, so C + alpha*AB rounds the same whichever kernel runs (the
                         * engine's fused SGD update relies on it) */
                        const VT r = acc[i * NV + v];
                        if (v < NV - 1) {
                            V_STORE(cp, V_FMA(vb, V_LOAD(cp), r));
                        } else {
                            V_STOREM(cp, ml, V_FMA(vb, V_LOADZ(ml, cp), r));
                        }
                    }
            }
        } else if (rsc == 1 && MR <= 2 * VL) {
            /* C stored by columns (C^T of a swapped product): transpose VL x VL blocks of the
             * tile in registers, then write each column of the tile (mr contiguous values, in
             * two pieces when mr > VL: 10 doubles) */
            const VT vb = V_SET1(beta);
#pragma GCC unroll 2
            for (int rb = 0; rb < MR; rb += VL) {
                const MT mrow = FN(fm_avx512_mask)(MR - rb, 0);
#pragma GCC unroll 16
                for (int v = 0; v < NV; v++) {
                    VT r[VL], o[VL];
#pragma GCC unroll 16
                    for (int i = 0; i < VL; i++)
                        r[i] = rb + i < MR ? acc[(rb + i) * NV + v] : V_ZERO();
                    FN(fm_avx512_tr)(r, o);
#pragma GCC unroll 16
                    for (int q = 0; q < VL; q++) {
                        T *cp = c + rb + (v * VL + q) * csc;
                        VT x = o[q];
                        if (v * VL + q >= nr) break;
                        if (beta != 0) x = V_FMA(vb, V_LOADZ(mrow, cp), x);
                        V_STOREM(cp, mrow, x);
                    }
                }
            }
        } else {
            T buf[MAXACC * VL];
            int j;
#pragma GCC unroll 14
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 16
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

/* Full-width tiles get their own copy, where the last vector's mask is a constant and its loads
 * plain: with a runtime mask GCC reloaded and moved it into a mask register every k (Zen 4,
 * interleaved, 1 thread: double 256 x 10 x 256 (A^T) 1.06x, 1024^3 float and double 1.02x,
 * training MNIST 1.01-1.02x). The same FMAs, so the same bits. */
#define TILE_CALL(MRV, NVV, STREAM, kc, kidx)                                                      \
    if (nr == NVV * VL)                                                                            \
        FN(fm_avx512_tile)(MRV, NVV, STREAM, NVV * VL, kc, kidx, a, rsa, csa, b, ldb, c, rsc, csc, \
                           alpha, beta);                                                           \
    else                                                                                           \
        FN(fm_avx512_tile)(MRV, NVV, STREAM, nr, kc, kidx, a, rsa, csa, b, ldb, c, rsc, csc,       \
                           alpha, beta)
/* plain (P t, STREAM 0) or for a streamed B (P s, STREAM 1, kernel.ukr_stream) */
#define DENSE_FN(P, STREAM, MRV, NVV)                                                              \
    static FM_AVX512 void FN(fm_avx512_##P##MRV##x##NVV)(int nr, int64_t kc, const T *a,        \
                                                         int64_t rsa, int64_t csa, const T *b,   \
                                                         int64_t ldb, T *c, int64_t rsc,         \
                                                         int64_t csc, T alpha, T beta) {         \
        TILE_CALL(MRV, NVV, STREAM, kc, NULL);                                                     \
    }
#define STREAM_FN(MRV, NVV) DENSE_FN(s, 1, MRV, NVV)
#define IDX_FN(MRV, NVV)                                                                           \
    static FM_AVX512 void FN(fm_avx512_i##MRV##x##NVV)(int nr, int64_t nk, const int32_t *kidx,   \
                                                       const T *a, int64_t rsa, int64_t csa,     \
                                                       const T *b, int64_t ldb, T *c,            \
                                                       int64_t rsc, int64_t csc, T alpha,        \
                                                       T beta) {                                 \
        TILE_CALL(MRV, NVV, 0, nk, kidx);                                                          \
    }

#define TILE_FN(MRV, NVV) DENSE_FN(t, 0, MRV, NVV) IDX_FN(MRV, NVV)

/* X(rows, NV) for the row tiles of 1 to 14 rows */
#define FOR_ROWS(X, NV)                                                                            \
    X(1, NV) X(2, NV) X(3, NV) X(4, NV) X(5, NV) X(6, NV) X(7, NV) X(8, NV) X(9, NV) X(10, NV)    \
    X(11, NV) X(12, NV) X(13, NV) X(14, NV)
#define ROW_TILE_FNS(MRV, NVV) TILE_FN(MRV, NVV) STREAM_FN(MRV, NVV)
FOR_ROWS(ROW_TILE_FNS, 1)
FOR_ROWS(ROW_TILE_FNS, 2)
TILE_FN(1, 16)
TILE_FN(1, 8)
TILE_FN(2, 8)
TILE_FN(3, 8)
TILE_FN(4, 3)
TILE_FN(4, 4)

typedef void (*FN(fm_avx512_tile_fn))(int, int64_t, const T *, int64_t, int64_t, const T *,
                                      int64_t, T *, int64_t, int64_t, T, T);

/* The tiles P (t plain, s streamed B, i listed k) of 1 to 14 rows of NV vectors, by rows - 1 */
#define ROW_ENTRY_t(MRV, NVV) FN(fm_avx512_t##MRV##x##NVV),
#define ROW_ENTRY_s(MRV, NVV) FN(fm_avx512_s##MRV##x##NVV),
#define ROW_ENTRY_i(MRV, NVV) FN(fm_avx512_i##MRV##x##NVV),
#define ROW_TABLE(P, NV) {FOR_ROWS(ROW_ENTRY_##P, NV)}
static const FN(fm_avx512_tile_fn) FN(fm_avx512_n1)[14] = ROW_TABLE(t, 1);
static const FN(fm_avx512_tile_fn) FN(fm_avx512_n2)[14] = ROW_TABLE(t, 2);
static const FN(fm_avx512_tile_fn) FN(fm_avx512_s1)[14] = ROW_TABLE(s, 1);
static const FN(fm_avx512_tile_fn) FN(fm_avx512_s2)[14] = ROW_TABLE(s, 2);

typedef void (*FN(fm_avx512_itile_fn))(int, int64_t, const int32_t *, const T *, int64_t, int64_t,
                                       const T *, int64_t, T *, int64_t, int64_t, T, T);

static const FN(fm_avx512_itile_fn) FN(fm_avx512_i1)[14] = ROW_TABLE(i, 1);
static const FN(fm_avx512_itile_fn) FN(fm_avx512_i2)[14] = ROW_TABLE(i, 2);

/* ---- column tiles: the last few columns (at most 8 FMAs a k) of 8 to 14 rows, A by columns
 * (rsa == 1: a packed sliver, or X^T in place); see fm_avx512_cols_pay ----
 * A row tile spends an FMA per row on every k however few of its vector's lanes are columns (4
 * of 16 for the last tile of 100 floats); here the vectors run down the rows instead, an FMA per
 * column and row vector. Each element is still one FMA chain over the same k in the same order,
 * A[i, p] * B[p, j] added as in the row tile, and alpha and beta are applied as there: the same
 * results whichever tile computes it. */
#define COLS_NR 8 /* FMAs a k at most: columns x row vectors */
FM_AVX512_INLINE void FN(fm_avx512_col_tile)(const int MV, const int NC, int mr, int64_t kc,
                                             const int32_t *kidx, const T *restrict a,
                                             int64_t csa, const T *restrict b, int64_t ldb,
                                             T *restrict c, int64_t rsc, int64_t csc, T alpha,
                                             T beta) {
    VT acc[COLS_NR];
    const MT ml = FN(fm_avx512_mask)(mr, MV - 1);
    int64_t p;
#pragma GCC unroll 16
    for (int i = 0; i < MV * NC; i++) acc[i] = V_ZERO();
    if (csc == 1 && kc >= 32) /* as in the row tile */
        for (int i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * rsc), _MM_HINT_T1);
#define FM_COL_STEP(off)                                                                           \
    do {                                                                                           \
        const T *ap_ = a + (off) * csa, *bp_ = b + (off) * ldb;                                    \
        VT av_[2];                                                                                 \
        _Pragma("GCC unroll 2") for (int v = 0; v < MV; v++) av_[v] =                             \
            v < MV - 1 ? V_LOAD(ap_ + v * VL) : V_LOADZ(ml, ap_ + v * VL);                         \
        _Pragma("GCC unroll 8") for (int j = 0; j < NC; j++) {                                     \
            const VT bv_ = V_SET1(bp_[j]);                                                         \
            _Pragma("GCC unroll 2") for (int v = 0; v < MV; v++) acc[j * MV + v] =                \
                V_FMA(av_[v], bv_, acc[j * MV + v]);                                               \
        }                                                                                          \
    } while (0)
    if (kidx)
        for (p = 0; p < kc; p++) FM_COL_STEP(kidx[p]);
    else
        for (p = 0; p < kc; p++) FM_COL_STEP(p);
#undef FM_COL_STEP
    if (alpha != (T)1) {
        const VT va = V_SET1(alpha);
#pragma GCC unroll 16
        for (int i = 0; i < MV * NC; i++) acc[i] = V_MUL(va, acc[i]);
    }
    const VT vb = V_SET1(beta);
    if (rsc == 1) { /* C by columns: each column of the tile is contiguous */
#pragma GCC unroll 8
        for (int j = 0; j < NC; j++)
#pragma GCC unroll 2
            for (int v = 0; v < MV; v++) {
                const MT m = v < MV - 1 ? (MT)~(MT)0 : ml;
                T *cp = c + j * csc + v * VL;
                VT r = acc[j * MV + v];
                if (beta != 0) r = V_FMA(vb, V_LOADZ(m, cp), r);
                V_STOREM(cp, m, r);
            }
    } else if (csc == 1) { /* C by rows: transposed in registers, NC lanes a row */
        const MT mc = (MT)((1u << NC) - 1u);
#pragma GCC unroll 2
        for (int v = 0; v < MV; v++) {
            VT r[VL], o[VL];
#pragma GCC unroll 16
            for (int q = 0; q < VL; q++) r[q] = q < NC ? acc[q * MV + v] : V_ZERO();
            FN(fm_avx512_tr)(r, o);
            for (int i = 0; i < VL && v * VL + i < mr; i++) {
                T *cp = c + (v * VL + i) * rsc;
                VT x = o[i];
                if (beta != 0) x = V_FMA(vb, V_LOADZ(mc, cp), x);
                V_STOREM(cp, mc, x);
            }
        }
    } else { /* the row tile's scalar stores */
        T buf[COLS_NR * VL];
#pragma GCC unroll 16
        for (int i = 0; i < MV * NC; i++) V_STORE(buf + i * VL, acc[i]);
        for (int i = 0; i < mr; i++) {
            T *cr = c + i * rsc;
            for (int j = 0; j < NC; j++) {
                const T br = buf[(j * MV + i / VL) * VL + i % VL];
                if (beta == 0)
                    cr[j * csc] = br;
                else
                    cr[j * csc] = br + beta * cr[j * csc];
            }
        }
    }
}

#define COL_FN(MVV, NCV)                                                                           \
    static FM_AVX512 void FN(fm_avx512_c##MVV##x##NCV)(                                            \
        int mr, int64_t kc, const int32_t *kidx, const T *a, int64_t csa, const T *b, int64_t ldb, \
        T *c, int64_t rsc, int64_t csc, T alpha, T beta) {                                         \
        FN(fm_avx512_col_tile)(MVV, NCV, mr, kc, kidx, a, csa, b, ldb, c, rsc, csc, alpha, beta);  \
    }
COL_FN(1, 1)
COL_FN(1, 2)
COL_FN(1, 3)
COL_FN(1, 4)
COL_FN(1, 5)
COL_FN(1, 6)
COL_FN(1, 7)
COL_FN(1, 8)
#if VL == 8
COL_FN(2, 1)
COL_FN(2, 2)
COL_FN(2, 3)
COL_FN(2, 4)
#endif

typedef void (*FN(fm_avx512_ctile_fn))(int, int64_t, const int32_t *, const T *, int64_t,
                                       const T *, int64_t, T *, int64_t, int64_t, T, T);
static const FN(fm_avx512_ctile_fn) FN(fm_avx512_cols_fns)[2][COLS_NR] = {
    {FN(fm_avx512_c1x1), FN(fm_avx512_c1x2), FN(fm_avx512_c1x3), FN(fm_avx512_c1x4),
     FN(fm_avx512_c1x5), FN(fm_avx512_c1x6), FN(fm_avx512_c1x7), FN(fm_avx512_c1x8)},
#if VL == 8
    {FN(fm_avx512_c2x1), FN(fm_avx512_c2x2), FN(fm_avx512_c2x3), FN(fm_avx512_c2x4)},
#else
    {NULL},
#endif
};

/* Whether an mr x nr tile with A's rows rsa apart runs as a column tile: A by columns, rows
 * enough that the row tile runs one FMA chain per element, as the column tile does (mr >= 8),
 * and at most 8 FMAs a k where the row tile takes mr. Zen 4, interleaved, 1 thread, against
 * row tiles: float 256 x 100 x 1024 (A packed) 1.05-1.12x, 1024 x 100 x 1024 (A^T) 1.07x,
 * (B^T) 1.10x, 1024 x 50 x 784 (A^T) 1.18x, 256 x 120 x 1024 1.04x; double 256 x 20 x 1024
 * 1.11-1.13x, 1024 x 60 x 784 (A^T) 1.11-1.14x, 256 x 100 x 1024 1.03-1.07x; 12 floats of 16
 * gained nothing. */
static inline int FN(fm_avx512_cols_pay)(int mr, int nr, int64_t rsa) {
    return rsa == 1 && mr >= 8 && (mr > VL ? 2 : 1) * nr <= COLS_NR;
}

/* The columns an mr x nr tile leaves to row tiles before its column tile: 0 (all columns), VL
 * (a vector, then columns), or nr (no column tile) */
static inline int FN(fm_avx512_cols_lead)(int mr, int nr, int64_t rsa) {
    if (FN(fm_avx512_cols_pay)(mr, nr, rsa)) return 0;
    if (nr > VL && FN(fm_avx512_cols_pay)(mr, nr - VL, rsa)) return VL;
    return nr;
}

/* Same tile shapes as fm_avx512_ukr. */
static void FN(fm_avx512_ukr_idx)(int mr, int nr, int64_t nk, const int32_t *kidx, const T *a,
                                  int64_t rsa, int64_t csa, const T *b, int64_t ldb, T *c,
                                  int64_t rsc, int64_t csc, T alpha, T beta) {
    const int lead = FN(fm_avx512_cols_lead)(mr, nr, rsa);
    if (lead < nr) {
        if (lead)
            FN(fm_avx512_i1)[mr - 1](lead, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
        FN(fm_avx512_cols_fns)[mr > VL][nr - lead - 1](mr, nk, kidx, a, csa, b + lead, ldb,
                                                        c + lead * csc, rsc, csc, alpha, beta);
    } else if (nr <= VL) {
        FN(fm_avx512_i1)[mr - 1](nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (nr <= 2 * VL) {
        FN(fm_avx512_i2)[mr - 1](nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 1 && nr == 16 * VL) {
        FN(fm_avx512_i1x16)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 1 && nr == 8 * VL) {
        FN(fm_avx512_i1x8)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 2 && nr == 8 * VL) {
        FN(fm_avx512_i2x8)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 3 && nr == 8 * VL) {
        FN(fm_avx512_i3x8)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 4 && nr <= 3 * VL) {
        FN(fm_avx512_i4x3)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 4 && nr <= 4 * VL) {
        FN(fm_avx512_i4x4)(nr, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else { /* a partial wide tile (mr <= 4): 2-vector tiles */
        while (nr > 0) {
            int w = nr < 2 * VL ? nr : 2 * VL;
            FN(fm_avx512_ukr_idx)(mr, w, nk, kidx, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            b += w;
            c += w * csc;
            nr -= w;
        }
    }
}

static void FN(fm_avx512_ukr)(int mr, int nr, int64_t kc, const T *a, int64_t rsa, int64_t csa,
                              const T *b, int64_t ldb, T *c, int64_t rsc, int64_t csc, T alpha,
                              T beta) {
    const int lead = FN(fm_avx512_cols_lead)(mr, nr, rsa);
    if (lead < nr) {
        if (lead) FN(fm_avx512_n1)[mr - 1](lead, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
        FN(fm_avx512_cols_fns)[mr > VL][nr - lead - 1](mr, kc, NULL, a, csa, b + lead, ldb,
                                                        c + lead * csc, rsc, csc, alpha, beta);
    } else if (nr <= VL) {
        FN(fm_avx512_n1)[mr - 1](nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (nr <= 2 * VL) {
        FN(fm_avx512_n2)[mr - 1](nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 1 && nr == 16 * VL) {
        FN(fm_avx512_t1x16)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 1 && nr == 8 * VL) {
        FN(fm_avx512_t1x8)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 2 && nr == 8 * VL) {
        FN(fm_avx512_t2x8)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 3 && nr == 8 * VL) {
        FN(fm_avx512_t3x8)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 4 && nr <= 3 * VL) {
        /* 4 rows of 2-4 vectors, the last masked, as one tile: as 2-vector pieces (the last 4 of
         * 100 floats in a U = 2 tile) a short k's edge cost 1.04-1.18x as much (float
         * 1024 x 100 x 32 A^T: 1.18x; double 1024 x 56 x 32: 1.25x) */
        FN(fm_avx512_t4x3)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else if (mr == 4 && nr <= 4 * VL) {
        FN(fm_avx512_t4x4)(nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
    } else { /* a partial wide tile (mr <= 4): 2-vector tiles */
        while (nr > 0) {
            int w = nr < 2 * VL ? nr : 2 * VL;
            FN(fm_avx512_ukr)(mr, w, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
            b += w;
            c += w * csc;
            nr -= w;
        }
    }
}

/* fm_avx512_ukr for a B read once, from memory (kernel.ukr_stream): the 1- and 2-vector tiles
 * that take row tiles read misaligned rows as whole lines; every other shape is ukr's. */
static void FN(fm_avx512_ukr_stream)(int mr, int nr, int64_t kc, const T *a, int64_t rsa,
                                     int64_t csa, const T *b, int64_t ldb, T *c, int64_t rsc,
                                     int64_t csc, T alpha, T beta) {
    if (nr <= 2 * VL && FN(fm_avx512_cols_lead)(mr, nr, rsa) == nr)
        (nr <= VL ? FN(fm_avx512_s1) : FN(fm_avx512_s2))[mr - 1](nr, kc, a, rsa, csa, b, ldb, c,
                                                                 rsc, csc, alpha, beta);
    else
        FN(fm_avx512_ukr)(mr, nr, kc, a, rsa, csa, b, ldb, c, rsc, csc, alpha, beta);
}

/* Four rows' sums of one column of C (a reduction down the rows), the first `rows` stored:
 * c[i * rsc] = alpha * s[i] (+ beta * c[i * rsc]). */
FM_AVX512_INLINE void FN(fm_avx512_store_col4)(R4 r, int rows, T *c, int64_t rsc, T alpha,
                                               T beta) {
    T s4[4];
    R4_STORE(s4, r);
    for (int i = 0; i < rows; i++) {
        T *cp = c + i * rsc;
        *cp = beta == 0 ? alpha * s4[i] : alpha * s4[i] + beta * *cp;
    }
}

/* ---- dot-product tiles: A rows and B columns both contiguous along k (csa == 1, rsb == 1) ----
 * acc[i][j] sums A[i, p] * B[p, j] lane-wise over p (k tail masked), then one horizontal sum per
 * element in a fixed order. Rows >= mr and columns >= nr are pointed at row / column 0 (valid
 * memory) and never stored, so one instantiation serves every edge. */
FM_AVX512_INLINE void FN(fm_avx512_dot_tile)(const int MD, const int ND, int mr, int nr, int64_t k,
                                             const T *restrict a, int64_t rsa,
                                             const T *restrict b, int64_t csb, T *restrict c,
                                             int64_t rsc, int64_t csc, T alpha, T beta) {
    const T *ap[4], *bp[8];
    VT acc[32];
    int64_t p = 0;
#pragma GCC unroll 4
    for (int i = 0; i < MD; i++) ap[i] = a + (i < mr ? i : 0) * rsa;
#pragma GCC unroll 8
    for (int j = 0; j < ND; j++) bp[j] = b + (j < nr ? j : 0) * csb;
#pragma GCC unroll 32
    for (int i = 0; i < MD * ND; i++) acc[i] = V_ZERO();
    if (MD <= 2 && (uintptr_t)bp[0] % 64 != 0 && csb * (int64_t)sizeof(T) % 64 == 0) {
        /* B rows starting inside a cache line (NumPy's arrays: 16 mod 64), all at the same
         * offset: every 64-byte load would straddle two lines. Load whole lines and put each
         * vector together from two with one permute (the same values, so the same sums); every
         * line read holds an element of the row, so no load leaves the row's pages. */
        const int shift = (int)((uintptr_t)bp[0] % 64 / sizeof(T));
        const __m512i lanes = V_LANE_IDX(shift);
        const T *bq[8];
        VT lo[8];
#pragma GCC unroll 8
        for (int j = 0; j < ND; j++) bq[j] = bp[j] - shift, lo[j] = V_LOADA(bq[j]);
        for (; p + VL <= k; p += VL) {
            VT av[2];
#pragma GCC unroll 2
            for (int i = 0; i < MD; i++) av[i] = V_LOAD(ap[i] + p);
#pragma GCC unroll 8
            for (int j = 0; j < ND; j++) {
                const VT hi = V_LOADA(bq[j] + p + VL), bv = V_SHIFTED(lo[j], lanes, hi);
#pragma GCC unroll 2
                for (int i = 0; i < MD; i++) acc[i * ND + j] = V_FMA(av[i], bv, acc[i * ND + j]);
                lo[j] = hi;
            }
        }
    }
    for (; p + VL <= k; p += VL) {
        VT av[4];
#pragma GCC unroll 4
        for (int i = 0; i < MD; i++) av[i] = V_LOAD(ap[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < ND; j++) {
            VT bv = V_LOAD(bp[j] + p);
#pragma GCC unroll 4
            for (int i = 0; i < MD; i++) acc[i * ND + j] = V_FMA(av[i], bv, acc[i * ND + j]);
        }
    }
    if (p < k) {
        const MT mt = FN(fm_avx512_mask)((int)(k - p), 0);
        VT av[4];
#pragma GCC unroll 4
        for (int i = 0; i < MD; i++) av[i] = V_LOADZ(mt, ap[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < ND; j++) {
            VT bv = V_LOADZ(mt, bp[j] + p);
#pragma GCC unroll 4
            for (int i = 0; i < MD; i++) acc[i * ND + j] = V_FMA(av[i], bv, acc[i * ND + j]);
        }
    }
    /* Sums stay in registers, 4 columns at a time (a missing 5th-8th column reduces a zero
     * vector): C stored straight from them. Going through a T[] array stored in 4-lane pieces and
     * reloaded 8 or 16 lanes wide stalled store forwarding (~half of a one-row product's time). */
#if VL == 8
    if (MD == 1 && ND == 8) { /* one row of 8 doubles: all sums in one vector */
        VT r = V_MUL(V_SET1(alpha), fm_avx512_reduce8_f64(acc[0], acc[1], acc[2], acc[3], acc[4],
                                                             acc[5], acc[6], acc[7]));
        if (csc == 1) {
            const MT mc = FN(fm_avx512_mask)(nr, 0);
            if (beta != 0) r = V_ADD(r, V_MUL(V_SET1(beta), V_LOADZ(mc, c)));
            V_STOREM(c, mc, r);
        } else {
            T s8[8];
            V_STORE(s8, r);
            for (int q = 0; q < nr; q++)
                c[q * csc] = beta == 0 ? s8[q] : s8[q] + beta * c[q * csc];
        }
        return;
    }
#endif
    const R4 va = R4_SET1(alpha), vb = R4_SET1(beta);
    /* With 4 rows, the columns past the last multiple of 4 are summed down the rows, one
     * reduction per column instead of one per row (n = 10 as 4 x 5 tiles: 5 reductions a tile,
     * not 8). Each element goes through the same tree either way, so the sums are the same. */
    const int NROW = MD == 4 ? ND / 4 * 4 : ND;
#pragma GCC unroll 4
    for (int j = NROW; j < ND; j++) {
        const R4 r = FN(fm_avx512_reduce4)(acc[j], acc[ND + j], acc[2 * ND + j], acc[3 * ND + j]);
        if (j < nr) FN(fm_avx512_store_col4)(r, mr, c + j * csc, rsc, alpha, beta);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MD; i++) {
#pragma GCC unroll 2
        for (int j0 = 0; j0 < NROW; j0 += 4) {
            const int g = i * ND + j0;
            R4 r = FN(fm_avx512_reduce4)(acc[g], j0 + 1 < ND ? acc[g + 1] : V_ZERO(),
                                         j0 + 2 < ND ? acc[g + 2] : V_ZERO(),
                                         j0 + 3 < ND ? acc[g + 3] : V_ZERO());
            if (i < mr && j0 < nr) {
                const int cnt = nr - j0 < 4 ? nr - j0 : 4;
                T *cp = c + i * rsc + j0 * csc;
                if (csc == 1 && cnt == 4) {
                    r = beta == 0 ? R4_MUL(va, r) : R4_ADD(R4_MUL(va, r), R4_MUL(vb, R4_LOAD(cp)));
                    R4_STORE(cp, r);
                } else { /* 4-lane masked moves would need AVX-512VL */
                    T s4[4];
                    R4_STORE(s4, r);
                    for (int q = 0; q < cnt; q++)
                        cp[q * csc] = beta == 0 ? alpha * s4[q] : alpha * s4[q] + beta * cp[q * csc];
                }
            }
        }
    }
}

#define DOT_FN(MDV, NDV)                                                                           \
    static FM_AVX512 void FN(fm_avx512_d##MDV##x##NDV)(int mr, int nr, int64_t k, const T *a,    \
                                                       int64_t rsa, const T *b, int64_t csb,     \
                                                       T *c, int64_t rsc, int64_t csc, T alpha,  \
                                                       T beta) {                                  \
        FN(fm_avx512_dot_tile)(MDV, NDV, mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);    \
    }
/* one row: the whole run of columns in one call, 8 at a time, so tiles overlap in the core */
static FM_AVX512 void FN(fm_avx512_d1x8)(int mr, int nr, int64_t k, const T *a, int64_t rsa,
                                         const T *b, int64_t csb, T *c, int64_t rsc, int64_t csc,
                                         T alpha, T beta) {
    for (int j = 0; j < nr; j += 8)
        FN(fm_avx512_dot_tile)(1, 8, mr, nr - j < 8 ? nr - j : 8, k, a, rsa, b + j * csb, csb,
                               c + j * csc, rsc, csc, alpha, beta);
}
DOT_FN(1, 1)
DOT_FN(2, 8)
DOT_FN(4, 1)
DOT_FN(4, 2)
DOT_FN(4, 4)
DOT_FN(4, 5)
DOT_FN(4, 6)

/* One column (a GEMV: a Dense(1) layer's forward) has tiles of its own: the wider ones would
 * compute their idle columns too (d4x2 read every A row twice). */
static void FN(fm_avx512_dot)(int mr, int nr, int64_t k, const T *a, int64_t rsa, const T *b,
                              int64_t csb, T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    if (mr == 1 && nr == 1)
        FN(fm_avx512_d1x1)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else if (mr == 1)
        FN(fm_avx512_d1x8)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else if (mr == 2)
        FN(fm_avx512_d2x8)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else if (nr == 1)
        FN(fm_avx512_d4x1)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else if (nr <= 2)
        FN(fm_avx512_d4x2)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else if (nr <= 4)
        FN(fm_avx512_d4x4)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else if (nr == 5)
        FN(fm_avx512_d4x5)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
    else
        FN(fm_avx512_d4x6)(mr, nr, k, a, rsa, b, csb, c, rsc, csc, alpha, beta);
}

/* ---- vecdot tiles (kernel.vecdot): n = VL + nt columns, nt <= 2 ----
 * MS rows: the first VL columns as MS accumulators of B rows times broadcast A elements, the
 * last nt as 2 * MS dot-product chains along k, both over the same A rows, loaded once from L2
 * (alone, the 2 dot columns read A at two FMAs per load: L2 bandwidth bound). Rows >= mr and a
 * missing second column are pointed at row / column 0 and never stored. */
FM_AVX512_INLINE void FN(fm_avx512_vecdot_tile)(const int MS, int mr, int nt, int64_t k,
                                               const T *restrict a, int64_t rsa,
                                               const T *restrict b, int64_t rsb,
                                               const T *restrict bt, int64_t ldt, T *restrict c,
                                               int64_t rsc, int64_t csc, T alpha, T beta) {
    const T *ap[8];
    const T *bt1 = bt + (nt > 1 ? ldt : 0);
    VT acc[8], dot0[8], dot1[8];
    int64_t p = 0;
#pragma GCC unroll 8
    for (int i = 0; i < MS; i++) {
        ap[i] = a + (i < mr ? i : 0) * rsa;
        acc[i] = dot0[i] = dot1[i] = V_ZERO();
    }
    for (; p + VL <= k; p += VL) {
        const VT t0 = V_LOAD(bt + p), t1 = V_LOAD(bt1 + p);
#pragma GCC unroll 8
        for (int i = 0; i < MS; i++) {
            const VT av = V_LOAD(ap[i] + p);
            dot0[i] = V_FMA(av, t0, dot0[i]);
            dot1[i] = V_FMA(av, t1, dot1[i]);
        }
#pragma GCC unroll 8
        for (int q = 0; q < VL; q++) {
            const VT bv = V_LOAD(b + (p + q) * rsb);
#pragma GCC unroll 8
            for (int i = 0; i < MS; i++) acc[i] = V_FMA(V_SET1(ap[i][p + q]), bv, acc[i]);
        }
    }
    if (p < k) {
        const MT mt = FN(fm_avx512_mask)((int)(k - p), 0);
        const VT t0 = V_LOADZ(mt, bt + p), t1 = V_LOADZ(mt, bt1 + p);
#pragma GCC unroll 8
        for (int i = 0; i < MS; i++) {
            const VT av = V_LOADZ(mt, ap[i] + p);
            dot0[i] = V_FMA(av, t0, dot0[i]);
            dot1[i] = V_FMA(av, t1, dot1[i]);
        }
        for (; p < k; p++) {
            const VT bv = V_LOAD(b + p * rsb);
#pragma GCC unroll 8
            for (int i = 0; i < MS; i++) acc[i] = V_FMA(V_SET1(ap[i][p]), bv, acc[i]);
        }
    }
    const VT va = V_SET1(alpha), vb = V_SET1(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MS; i++) {
        if (i >= mr) break;
        T *cr = c + i * rsc;
        if (csc == 1) {
            const VT r = V_MUL(va, acc[i]);
            V_STORE(cr, beta == 0 ? r : V_ADD(r, V_MUL(vb, V_LOAD(cr))));
        } else {
            T s[VL];
            V_STORE(s, acc[i]);
            for (int j = 0; j < VL; j++)
                cr[j * csc] = beta == 0 ? alpha * s[j] : alpha * s[j] + beta * cr[j * csc];
        }
    }
    /* the dot columns reduced 4 rows at a time, down the rows (as the dot tiles do) */
#pragma GCC unroll 2
    for (int i0 = 0; i0 < MS && i0 < mr; i0 += 4) {
        const int rows = mr - i0 < 4 ? mr - i0 : 4;
        T *ci = c + i0 * rsc + VL * csc;
        FN(fm_avx512_store_col4)(
            FN(fm_avx512_reduce4)(dot0[i0], dot0[i0 + 1], dot0[i0 + 2], dot0[i0 + 3]), rows, ci,
            rsc, alpha, beta);
        if (nt > 1)
            FN(fm_avx512_store_col4)(
                FN(fm_avx512_reduce4)(dot1[i0], dot1[i0 + 1], dot1[i0 + 2], dot1[i0 + 3]), rows,
                ci + csc, rsc, alpha, beta);
    }
}

static FM_AVX512 void FN(fm_avx512_vecdot8)(int mr, int nt, int64_t k, const T *a, int64_t rsa,
                                           const T *b, int64_t rsb, const T *bt, int64_t ldt,
                                           T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    FN(fm_avx512_vecdot_tile)(8, mr, nt, k, a, rsa, b, rsb, bt, ldt, c, rsc, csc, alpha, beta);
}
static FM_AVX512 void FN(fm_avx512_vecdot4)(int mr, int nt, int64_t k, const T *a, int64_t rsa,
                                           const T *b, int64_t rsb, const T *bt, int64_t ldt,
                                           T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    FN(fm_avx512_vecdot_tile)(4, mr, nt, k, a, rsa, b, rsb, bt, ldt, c, rsc, csc, alpha, beta);
}
static void FN(fm_avx512_vecdot)(int mr, int nt, int64_t k, const T *a, int64_t rsa, const T *b,
                                int64_t rsb, const T *bt, int64_t ldt, T *c, int64_t rsc,
                                int64_t csc, T alpha, T beta) {
    (mr > 4 ? FN(fm_avx512_vecdot8) : FN(fm_avx512_vecdot4))(mr, nt, k, a, rsa, b, rsb, bt, ldt, c,
                                                          rsc, csc, alpha, beta);
}

/* ---- packing a B micro-panel from column-contiguous B (rsb == 1, a transposed view) ----
 * bp[p * NR + j] = B[p, j] = b[j * csb + p] for j < nr, 0 for nr <= j < NR (NR = 2 VL): VL x VL
 * blocks transposed in registers instead of element by element. */
static FM_AVX512 void FN(fm_avx512_packbt)(int nr, int64_t kc, const T *b, int64_t csb, T *bp) {
    const int NR = 2 * VL;
    int64_t p0;
    for (p0 = 0; p0 < kc; p0 += VL) {
        const int rows = (int)(kc - p0 < VL ? kc - p0 : VL);
        const MT mk = FN(fm_avx512_mask)(rows, 0);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            VT r[VL], o[VL];
#pragma GCC unroll 16
            for (int i = 0; i < VL; i++) {
                const int j = h * VL + i;
                r[i] = j < nr ? V_LOADZ(mk, b + j * csb + p0) : V_ZERO();
            }
            FN(fm_avx512_tr)(r, o);
#pragma GCC unroll 16
            for (int q = 0; q < VL; q++)
                if (q < rows) V_STORE(bp + (p0 + q) * NR + h * VL, o[q]);
        }
    }
}

/* A B micro-panel from row-contiguous B: two vectors a row, masked to nr (rows are never read
 * past column nr), padded with zeros to 2 VL. The generic loop became a memcpy call per row of
 * 128 bytes (dW1 784 x 256 x 1024 on 2 threads: 3.5% of its time). */
static FM_AVX512 void FN(fm_avx512_packb)(int nr, int64_t kc, const T *b, int64_t rsb, T *bp) {
    const int NR = 2 * VL;
    const MT m0 = FN(fm_avx512_mask)(nr, 0), m1 = FN(fm_avx512_mask)(nr, 1);
    int64_t p;
    for (p = 0; p < kc; p++) {
        V_STORE(bp + p * NR, V_LOADZ(m0, b + p * rsb));
        V_STORE(bp + p * NR + VL, V_LOADZ(m1, b + p * rsb + VL));
    }
}

/* An A sliver from column-contiguous A (X^T of a weight gradient): one masked load and store
 * per k and vector. The generic loop became a memcpy call per k of 14 elements (dW1 at batch
 * 1024: 3% of an epoch). */
static FM_AVX512 void FN(fm_avx512_packa)(int mr, int64_t kc, const T *a, int64_t csa, T *ap) {
    const MT m0 = FN(fm_avx512_mask)(mr, 0), m1 = FN(fm_avx512_mask)(mr, 1);
    int64_t p;
    for (p = 0; p < kc; p++) {
        V_STOREM(ap + p * mr, m0, V_LOADZ(m0, a + p * csa));
        if (m1) V_STOREM(ap + p * mr + VL, m1, V_LOADZ(m1, a + p * csa + VL));
    }
}

/* out[c * ldo + r] = in[r * ldi + c] for r < rows, c < cols: VL x VL blocks transposed in
 * registers, with masked loads and stores (nothing outside the block is read or written).
 * Column blocks are the outer loop: k for an A sliver, as measured; n <= 16 for B^T. */
static FM_AVX512 void FN(fm_avx512_transpose)(int64_t rows, int64_t cols, const T *in,
                                              int64_t ldi, T *out, int64_t ldo) {
    for (int64_t c0 = 0; c0 < cols; c0 += VL) {
        const int nc = (int)(cols - c0 < VL ? cols - c0 : VL);
        const MT mc = FN(fm_avx512_mask)(nc, 0);
        for (int64_t r0 = 0; r0 < rows; r0 += VL) {
            const int nr = (int)(rows - r0 < VL ? rows - r0 : VL);
            const MT mr = FN(fm_avx512_mask)(nr, 0);
            VT r[VL], o[VL];
#pragma GCC unroll 16
            for (int i = 0; i < VL; i++)
                r[i] = i < nr ? V_LOADZ(mc, in + (r0 + i) * ldi + c0) : V_ZERO();
            FN(fm_avx512_tr)(r, o); /* o[q] lane i = in[r0 + i, c0 + q] */
#pragma GCC unroll 16
            for (int q = 0; q < VL; q++)
                if (q < nc) V_STOREM(out + (c0 + q) * ldo + r0, mr, o[q]);
        }
    }
}

/* An A sliver from row-contiguous A (a wide product's A, packed so that its rows, 4 KiB apart
 * in 1024^3, do not share L1 sets). The element loop took 17% of 1024^3. */
static FM_AVX512 void FN(fm_avx512_packa_rows)(int mr, int64_t kc, const T *a, int64_t rsa, T *ap) {
    FN(fm_avx512_transpose)(mr, kc, a, rsa, ap, mr);
}

/* The narrow path's B^T: bt[j * ldt + p] = b[p * rsb + j] for j < n, p < k (B by rows). */
static FM_AVX512 void FN(fm_avx512_transpose_b)(int64_t n, int64_t k, const T *b, int64_t rsb,
                                                T *bt, int64_t ldt) {
    FN(fm_avx512_transpose)(k, n, b, rsb, bt, ldt);
}

/* The driver's zero scan (fm_gemm_nonzero_k in gemm.c), same result: A by rows (csa == 1) VL k
 * at a time, compressed into kidx; A by columns (rsa == 1, a packed sliver) one k per masked load.
 * "Not zero" is an unordered compare, so NaN counts as not zero. */
static FM_AVX512 int64_t FN(fm_avx512_nonzero_k)(int mr, int64_t kc, const T *a, int64_t rsa,
                                                 int64_t csa, int64_t max_nk, int32_t *kidx) {
    int64_t p, nk = 0;
    if (csa == 1) {
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (p = 0; p < kc; p += VL) {
            const MT ml = kc - p >= VL ? (MT)~0u : (MT)((1u << (kc - p)) - 1u);
            MT nz = 0;
            for (int i = 0; i < mr; i++) nz |= V_NZ(V_LOADZ(ml, a + i * rsa + p));
            /* compressed in a register, then a masked store: Zen 4 microcodes a compress
             * straight to memory (the scan went from 5.4% to 2.7% of an MNIST b256 epoch;
             * X W1 at batch 32: +18%) */
            const int count = __builtin_popcount((unsigned)nz);
            const __m512i ks = _mm512_maskz_compress_epi32(
                (__mmask16)nz, _mm512_add_epi32(iota, _mm512_set1_epi32((int)p)));
            _mm512_mask_storeu_epi32(kidx + nk, (__mmask16)((1u << count) - 1u), ks);
            nk += count;
            if (fm_gemm_scan_gives_up(nk, p + VL, max_nk)) return kc;
        }
        return nk;
    }
    if (rsa == 1) {
        const MT m0 = FN(fm_avx512_mask)(mr < VL ? mr : VL, 0);
        const MT m1 = mr > VL ? FN(fm_avx512_mask)(mr - VL, 0) : (MT)0;
        for (p = 0; p < kc; p++) {
            const T *ac = a + p * csa;
            MT nz = V_NZ(V_LOADZ(m0, ac));
            if (m1) nz |= V_NZ(V_LOADZ(m1, ac + VL));
            kidx[nk] = (int32_t)p;
            nk += nz != 0;
            if (fm_gemm_scan_gives_up(nk, p + 1, max_nk)) return kc;
        }
        return nk;
    }
    return -1;
}

/* kernel.nonzero_k_groups: 4-row slivers of A stored by columns, one line read per k for up to
 * VL / 4 slivers (each sliver's own scan read that line again, from L2 once a tile had run:
 * 5% of an MNIST batch-256 epoch). Each sliver's non-zero k of 16 at a time as a bit mask, then
 * one compress. The same lists and the same give-up rules as nonzero_k (checked per 16 k: the
 * outcome is the same). */
static FM_AVX512 void FN(fm_avx512_nonzero_k_groups)(int groups, int mr, int64_t kc, const T *a,
                                                     int64_t csa, int64_t max_nk,
                                                     int32_t (*kidx)[FM_GEMM_KC_MAX],
                                                     int64_t *nk) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const MT rows = FN(fm_avx512_mask)(mr < 4 * groups ? mr : 4 * groups, 0);
    int64_t count[VL / 4] = {0};
    unsigned dense = 0; /* slivers given up */
    for (int64_t p0 = 0; p0 < kc && dense != (1u << groups) - 1u; p0 += 16) {
        const int ps = kc - p0 < 16 ? (int)(kc - p0) : 16;
        unsigned bits[VL / 4] = {0};
        for (int q = 0; q < ps; q++) {
            /* the line 16 k on (a new page every k or two: no hardware prefetch); prefetches
             * never fault, so the last 16 k need no care */
            _mm_prefetch((const char *)(a + (p0 + q + 16) * csa), _MM_HINT_T0);
            const unsigned nz = (unsigned)V_NZ(V_LOADZ(rows, a + (p0 + q) * csa));
#pragma GCC unroll 4
            for (int g = 0; g < VL / 4; g++) bits[g] |= (unsigned)((nz >> (4 * g) & 15u) != 0) << q;
        }
        const __m512i ids = _mm512_add_epi32(iota, _mm512_set1_epi32((int)p0));
        for (int g = 0; g < groups; g++) {
            const int c = __builtin_popcount(bits[g]);
            _mm512_mask_storeu_epi32(kidx[g] + count[g], (__mmask16)((1u << c) - 1u),
                                     _mm512_maskz_compress_epi32((__mmask16)bits[g], ids));
            count[g] += c;
            if (fm_gemm_scan_gives_up(count[g], p0 + 16, max_nk))
                dense |= 1u << g;
        }
    }
    for (int g = 0; g < groups; g++) nk[g] = dense >> g & 1u ? kc : count[g];
}

/* The row path's zero scan (gemm.c): up to 16 rows of A stored by columns (rsa == 1). A block of
 * VL rows x VL k is transposed in registers, so that each row's non-zero k come out of one
 * compare and one compress (a loop over the set bits of each k's mask took 8% of an MNIST
 * batch-32 epoch). */
static FM_AVX512 void FN(fm_avx512_nonzero_rows)(int mr, int64_t kc, const T *a, int64_t csa,
                                                 int32_t (*kidx)[FM_GEMM_ROWS_MAX_K], int64_t *nk) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int r0 = 0; r0 < mr; r0 += VL) {
        const int rows = mr - r0 < VL ? mr - r0 : VL;
        const MT mrow = FN(fm_avx512_mask)(rows, 0);
        int64_t count[VL] = {0};
        for (int64_t p0 = 0; p0 < kc; p0 += VL) {
            const int ks = (int)(kc - p0 < VL ? kc - p0 : VL);
            const __m512i ids = _mm512_add_epi32(iota, _mm512_set1_epi32((int)p0));
            VT r[VL], o[VL];
#pragma GCC unroll 16
            for (int q = 0; q < VL; q++)
                r[q] = q < ks ? V_LOADZ(mrow, a + r0 + (p0 + q) * csa) : V_ZERO();
            FN(fm_avx512_tr)(r, o); /* o[i] lane q = A[r0 + i, p0 + q] */
            for (int i = 0; i < rows; i++) {
                const unsigned nz = (unsigned)V_NZ(o[i]);
                const int c = __builtin_popcount(nz);
                _mm512_mask_storeu_epi32(kidx[r0 + i] + count[i], (__mmask16)((1u << c) - 1u),
                                         _mm512_maskz_compress_epi32((__mmask16)nz, ids));
                count[i] += c;
            }
        }
        for (int i = 0; i < rows; i++) nk[r0 + i] = count[i];
    }
}

/* kernel.short_k_rows: with a few k per tile a call costs about as much as the tile's FMAs
 * (1024 x 64 x 4 float: 64 FMAs a tile), so the full 4 x 4-vector tiles of every block are
 * inlined here and only the edges go through fm_avx512_ukr. */
static FM_AVX512 void FN(fm_avx512_short_k_rows)(int64_t m, int64_t n, int64_t k, const T *a,
                                                 int64_t rsa, int64_t csa, const T *b, int64_t ldb,
                                                 T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    const int64_t W = 4 * VL;
    /* A by columns (X^T): the last few columns run as column tiles down VL rows, an FMA per
     * column, not a vector per row with most lanes idle (as in fm_avx512_cols_pay). Zen 4,
     * interleaved, 1 thread, float A^T: 256 x 100 x 32-128 1.05-1.08x, 100 / 200 x 100 x 32
     * 1.05-1.07x, 32 / 64 x 100 x 32 1.03-1.04x, 256 x 70 / 72 x 32-64 1.11-1.22x, n = 102
     * 1.05x, 104 (8 columns) 0.99x; double 256 x 100 x 32 1.05-1.07x, 256 x 68 x 16 1.09x;
     * 2 threads 1.04-1.07x. Below 16 k the transpose that stores them costs more (k = 8:
     * 1.00x), and so do tiles of fewer rows than a vector: only while VL rows of C fit the
     * driver's 16 KiB calls (500 doubles, 4 rows a call: 0.97x). One FMA chain per element, as
     * in the row tiles with 4 rows. */
    const int tail = (int)(n % VL);
    const int cols = rsa == 1 && k >= 16 && tail <= VL / 2 && tail < COLS_NR &&
                             n * VL * (int64_t)sizeof(T) <= 16384
                         ? tail
                         : 0;
    const int64_t nrow = n - cols;
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const int mr = m - i0 < 4 ? (int)(m - i0) : 4;
        const T *ab = a + i0 * rsa;
        T *cb = c + i0 * rsc;
        for (int64_t j0 = 0; j0 < nrow; j0 += W) {
            if (mr == 4 && nrow - j0 >= W)
                FN(fm_avx512_tile)(4, 4, 0, (int)W, k, NULL, ab, rsa, csa, b + j0, ldb, cb + j0 * csc,
                                   rsc, csc, alpha, beta);
            else
                FN(fm_avx512_ukr)(mr, nrow - j0 < W ? (int)(nrow - j0) : (int)W, k, ab, rsa, csa,
                                  b + j0, ldb, cb + j0 * csc, rsc, csc, alpha, beta);
        }
    }
    if (cols)
        for (int64_t i0 = 0; i0 < m; i0 += VL)
            FN(fm_avx512_cols_fns)[0][cols - 1](m - i0 < VL ? (int)(m - i0) : VL, k, NULL, a + i0,
                                                csa, b + nrow, ldb, c + i0 * rsc + nrow * csc, rsc,
                                                csc, alpha, beta);
}

/* row_stream's update of C by R rows of B (R = 4, or 1 for the last rows): a masked head
 * vector at -sh, full vectors [head, nv), a masked tail (lanes outside a mask neither read
 * nor written) */
FM_AVX512_INLINE void FN(fm_avx512_row_stream_r)(const int R, const VT *xs, const T *const *bs,
                                                  T *c, int sh, int64_t head, MT head_m,
                                                  int64_t nv, MT tail_m) {
    int64_t j;
    if (head) {
        VT s = V_LOADZ(head_m, c - sh);
#pragma GCC unroll 4
        for (int q = 0; q < R; q++) s = V_FMA(xs[q], V_LOADZ(head_m, bs[q] - sh), s);
        V_STOREM(c - sh, head_m, s);
    }
    for (j = head; j < nv; j += VL) {
        VT s = V_LOAD(c + j);
#pragma GCC unroll 4
        for (int q = 0; q < R; q++) s = V_FMA(xs[q], V_LOAD(bs[q] + j), s);
        V_STORE(c + j, s);
    }
    if (tail_m) {
        VT s = V_LOADZ(tail_m, c + j);
#pragma GCC unroll 4
        for (int q = 0; q < R; q++) s = V_FMA(xs[q], V_LOADZ(tail_m, bs[q] + j), s);
        V_STOREM(c + j, tail_m, s);
    }
}

/* kernel.row_stream: one row of C from B by rows, 4 rows of B at a time, each read whole, C
 * (in L1) loaded and stored once per 4. One pass over B in 4 sequential streams, where the wide
 * tiles read it in 16-vector slices, one pass per slice: a batch-1 forward, 1 x 256 x 784
 * double, ran 1.03-1.07x faster, n = 512 1.17x. The vectors start at B's cache lines when all
 * its rows share an alignment, so that no load of B spans two lines (C, in L1, does instead):
 * with B 16 or 48 bytes into a line (NumPy's large arrays start 16 bytes in) another 1.01-1.10x,
 * 32 bytes in 0.99-1.01x, at a line 0.96-0.99x. Each element is one FMA chain in kidx order. */
static FM_AVX512 void FN(fm_avx512_row_stream)(int64_t n, int64_t nk, const int32_t *kidx,
                                               const T *a, int64_t csa, const T *b, int64_t ldb,
                                               T *c) {
    const int sh = ldb * (int64_t)sizeof(T) % 64 == 0 ? (int)((uintptr_t)b % 64 / sizeof(T)) : 0;
    const int64_t head = sh == 0 ? 0 : n < VL - sh ? n : VL - sh;
    const int64_t nv = head + (n - head) / VL * VL;
    const MT head_m = (MT)(((1u << head) - 1u) << sh), tail_m = (MT)((1u << (n - nv)) - 1u);
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
        FN(fm_avx512_row_stream_r)(4, xs, bs, c, sh, head, head_m, nv, tail_m);
    }
    for (; q < nk; q++) {
        const int64_t p = kidx ? kidx[q] : q;
        xs[0] = V_SET1(a[p * csa]);
        bs[0] = b + p * ldb;
        FN(fm_avx512_row_stream_r)(1, xs, bs, c, sh, head, head_m, nv, tail_m);
    }
}

/* kc: a 14 x kc A sliver is 14*kc*sizeof(T) (f32 384: 21 KiB of the 48 KiB L1d; f64 256:
 * 28 KiB, measured 5% faster than 192 on 1024^3 and the layer shapes);
 * nc: a packed kc x nc B block in L2; jw: columns per task (B chunk kc x jw stays in L2);
 * nr_small: 4 rows take 4 vectors, B read 256 bytes of a row at a time, not 128 (batch 4,
 * 784 -> 256 units: float 1.27x, double 1.49x); dot_nr: 2 rows take 8 columns (2 x 256 x 256,
 * B by columns: 1.06-1.12x, with whole-line loads of misaligned B rows 1.13-1.33x). */
#define FM_AVX512_KERNEL(narrow_min_m, packa_rows, vecdot, short_k_max)                            \
    {"avx512", 14, 2 * VL, {0, 16 * VL, 8 * VL, 8 * VL, 4 * VL}, VL == 16 ? FM_AVX512_KC : 256,    \
     FM_AVX512_NC, 16 * VL, FN(fm_avx512_ukr), 4, {0, 48, 8, 4, 6}, FN(fm_avx512_dot),            \
     FN(fm_avx512_packbt), FN(fm_avx512_ukr_idx), FN(fm_avx512_nonzero_k), 0, 0,                \
     FN(fm_avx512_packb), FN(fm_avx512_packa), NULL, NULL, NULL, narrow_min_m, packa_rows,        \
     FN(fm_avx512_transpose_b),                                                                    \
     FN(fm_avx512_nonzero_rows), {49, 38}, vecdot, short_k_max, FN(fm_avx512_short_k_rows),    \
     FN(fm_avx512_row_stream), FN(fm_avx512_nonzero_k_groups), FN(fm_avx512_ukr_stream)}
const FN(fm_gemm_kernel) FN(fm_gemm_avx512) =
    FM_AVX512_KERNEL(0, NULL, NULL, 64 / (int)sizeof(T) - 1);
/* Zen 4 runs a 512-bit FMA as two 256-bit halves, so the idle lanes of a 10-column tile cost
 * their full share: the narrow path wins from 32 rows (32 x 10 x 256 double: 0.79x -> 0.94x
 * OpenBLAS; 64 rows: 0.73x -> 0.96x; float 64 rows 1.03x -> 1.16x), on Sapphire Rapids only
 * from 128. Packing row-major A (gemm.c) was measured on Zen 4 only. With one 512-bit FMA per
 * cycle, 4-row wide tiles keep up with 14-row ones while writing C a few lines at a time: dense
 * products ran faster in the short-k path up to 512 bytes of k (interleaved, m 32-1024, n 64
 * and 256, A by rows or columns; 1 thread): float k = 16-64 1.01-1.51x, 96-128 1.02-1.08x (from
 * 192 on 0.93-1.05x); double k = 8-16 1.06-1.32x, 20-32 1.03-1.15x, 48-64 0.98-1.09x, and at 2
 * threads 1.08-2.5x (256 x 256 x 8: 2.5x). */
const FN(fm_gemm_kernel) FN(fm_gemm_avx512_zen4) =
    FM_AVX512_KERNEL(32, FN(fm_avx512_packa_rows), VL == 8 ? FN(fm_avx512_vecdot) : NULL,
                     512 / (int)sizeof(T));
#undef FM_AVX512_KERNEL

#undef FN_
#undef FN2
#undef FN
#undef MAXACC
#undef COLS_NR
#undef COL_FN
#undef TILE_FN
#undef STREAM_FN
#undef FOR_ROWS
#undef ROW_TILE_FNS
#undef ROW_ENTRY_t
#undef ROW_ENTRY_s
#undef ROW_ENTRY_i
#undef ROW_TABLE
#undef DENSE_FN
#undef IDX_FN
#undef TILE_CALL
#undef DOT_FN

#endif /* FM_GEMM_AVX512_PASS */
