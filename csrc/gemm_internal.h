/* Private interface between the GEMM driver (gemm.c) and its micro-kernels (gemm_*.c).
 *
 * A micro-kernel computes one register tile of C from a packed sliver of A and a block of B:
 *
 *     C[i, j] := alpha * sum_p A[i, p] * B[p, j] + beta * C[i, j]     0 <= i < mr, 0 <= j < nr
 *
 *   a    element (i, p) at a[i * rsa + p * csa]: A itself, or a packed sliver (rsa = 1, csa = mr);
 *   b    element (p, j) at b[p * ldb + j]: a packed B micro-panel (ldb = nr of the kernel) or B
 *        itself when its rows are contiguous (ldb = rsb). Columns j >= nr are never read;
 *   c    element (i, j) at c[i * rsc + j * csc], any strides; with beta == 0, C is never read.
 *   1 <= mr <= kernel.mr; 1 <= nr <= kernel.nr, or nr <= kernel.nr_small[mr] when mr <= 4
 *   (nr_small[mr] may exceed jw: the driver then takes chunks that wide when m <= 3).
 *
 * A dot kernel (optional) computes the same for A with contiguous rows (csa == 1) and B with
 * contiguous columns (rsb == 1), reading both in place along the whole k: one horizontal sum per
 * element. 1 <= mr <= dot_mr, 1 <= nr <= dot_nr[mr].
 *
 * A zero-skipping kernel (optional) computes the same tile over the k indices kidx[0 .. nk) only
 * (increasing): A column kidx[q] at a + kidx[q] * csa, B row kidx[q] at b + kidx[q] * ldb;
 * mr and nr as for the micro-kernel. The driver uses it for a sliver of A whose other columns are all zero
 * (MNIST pixels: about half the k of a 14-image sliver), so those terms, exact zeros, are not
 * computed at all.
 *
 * The kernels differ only in speed; every one computes each C element with the same operation
 * order for any thread count (the driver never splits k across threads). */
#ifndef FASTMLP_GEMM_INTERNAL_H
#define FASTMLP_GEMM_INTERNAL_H

#include "internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FM_GEMM_X86 1
#else
#define FM_GEMM_X86 0
#endif

/* Largest tiles any kernel uses (sizes stack buffers). */
#define FM_GEMM_MR_MAX 16
#define FM_GEMM_NR_WIDE_MAX 128
/* Largest k block any kernel uses (sizes the zero-skipping index list on the stack). */
#define FM_GEMM_KC_MAX 512
/* Rows of A that the row path's zero scan takes at once, and its largest k (its lists are on
 * the stack; B at most 64 KiB with n >= 128 floats or 64 doubles needs no more) */
#define FM_GEMM_ROWS_BLOCK 16
#define FM_GEMM_ROWS_MAX_K 128
/* The zero scan gives a sliver up when none of its first this many k is a zero column. */
#define FM_GEMM_ZSCAN_PROBE 32

/* Whether a zero scan that found nk non-zero k among the first `scanned` gives its sliver up (it
 * then runs dense): more than max_nk, or all of the first FM_GEMM_ZSCAN_PROBE. Every scan (the
 * driver's and the kernels') checks this after each step, so all give up alike. */
static inline int fm_gemm_scan_gives_up(int64_t nk, int64_t scanned, int64_t max_nk) {
    return nk > max_nk || (scanned == FM_GEMM_ZSCAN_PROBE && nk == scanned);
}

#define FM_GEMM_DECLARE_KERNEL(T, S)                                                              \
    typedef void (*fm_gemm_ukr_##S)(int mr, int nr, int64_t kc, const T *a, int64_t rsa,         \
                                    int64_t csa, const T *b, int64_t ldb, T *c, int64_t rsc,     \
                                    int64_t csc, T alpha, T beta);                                 \
    typedef void (*fm_gemm_dot_##S)(int mr, int nr, int64_t k, const T *a, int64_t rsa,          \
                                    const T *b, int64_t csb, T *c, int64_t rsc, int64_t csc,     \
                                    T alpha, T beta);                                              \
    typedef void (*fm_gemm_ukr_idx_##S)(int mr, int nr, int64_t nk, const int32_t *kidx,         \
                                        const T *a, int64_t rsa, int64_t csa, const T *b,         \
                                        int64_t ldb, T *c, int64_t rsc, int64_t csc, T alpha,     \
                                        T beta);                                                   \
    typedef struct fm_gemm_kernel_##S {                                                            \
        const char *name;                                                                          \
        int mr;           /* rows of a register tile (and of a packed A sliver) */                 \
        int nr;           /* columns of a register tile (and of a packed B micro-panel) */         \
        int nr_small[5];  /* widest tile for mr = 1 .. 4 when B is used in place (>= nr, or 0) */ \
        int kc;           /* largest k block: a packed A sliver (mr x kc) stays in L1 */           \
        int nc;           /* columns of a packed B block (kc x nc, kept in L2) */                  \
        int jw;           /* columns per task; jw / 2 a multiple of nr, nr_small[2] .. [4] */    \
        fm_gemm_ukr_##S ukr;                                                                       \
        int dot_mr;       /* rows of a dot-product tile (0: no dot kernel) */                      \
        int dot_nr[5];    /* its columns for mr = 1 .. dot_mr */                                   \
        fm_gemm_dot_##S dot;                                                                       \
        /* optional: pack a B micro-panel (kc x nr of nr columns, zero-padded to the kernel's  \
         * nr) from B with contiguous columns (rsb == 1): bp[p * nr + j] = b[j * csb + p] */     \
        void (*packbt)(int nr, int64_t kc, const T *b, int64_t csb, T *bp);                        \
        fm_gemm_ukr_idx_##S ukr_idx; /* optional: the zero-skipping kernel */                     \
        /* optional: the driver's zero scan (fm_gemm_nonzero_k in gemm.c) in SIMD, for A stored  \
         * by rows or by columns; -1 for other strides */                                         \
        int64_t (*nonzero_k)(int mr, int64_t kc, const T *a, int64_t rsa, int64_t csa,           \
                             int64_t max_nk, int32_t *kidx);                                       \
        /* optional (0: off): rows of A per block of the panel path, which keeps a packed B     \
         * micro-panel (kc x nr) in L1 and streams a packed A block (panel_mc x kc) from L2,    \
         * for m >= panel_min_m */                                                             \
        int panel_mc;                                                                              \
        int panel_min_m;                                                                           \
        /* optional: pack a B micro-panel as packbt does, from B with contiguous rows (csb == 1):  \
         * bp[p * nr + j] = b[p * rsb + j] */                                                     \
        void (*packb)(int nr, int64_t kc, const T *b, int64_t rsb, T *bp);                         \
        /* optional: pack an A sliver (mr <= kernel.mr rows, kc k) from A with contiguous      \
         * columns (rsa == 1): ap[p * mr + i] = a[p * csa + i] */                                 \
        void (*packa)(int mr, int64_t kc, const T *a, int64_t csa, T *ap);                         \
        /* optional: the same for a block of mc rows, slivers of kernel.mr rows at ap + s*mr*kc */ \
        void (*packa_block)(int64_t mc, int64_t kc, const T *a, int64_t csa, T *ap);               \
        /* optional: ukr_idx over a compacted sliver: A column q (not kidx[q]) at a + q * csa,  \
         * B row kidx[q]; nr <= kernel.nr. With compact, which writes such a sliver (A column   \
         * kidx[q] into ap[q * mr ..]), the panel path reads A in one stream */                   \
        fm_gemm_ukr_idx_##S ukr_idx_seq;                                                           \
        void (*compact)(int mr, int64_t nk, const int32_t *kidx, const T *a, int64_t rsa,          \
                        int64_t csa, T *ap);                                                       \
        int narrow_min_m; /* the narrow path from this m on (0: FM_GEMM_DOT_PACK_MIN_M) */       \
        /* optional: pack an A sliver from A with contiguous rows (csa == 1), as packa does; \
         * set, the driver packs row-major A in wide products of several k blocks (gemm.c)  */ \
        void (*packa_rows)(int mr, int64_t kc, const T *a, int64_t rsa, T *ap);                    \
        /* optional: B^T from B by rows (csb == 1), for the narrow path (n <= 16) and the     \
         * short-k path's copy of B (n <= 128): bt[j * ldt + p] = b[p * rsb + j], ldt a        \
         * multiple of 16 >= k */                                                               \
        void (*transpose_b)(int64_t n, int64_t k, const T *b, int64_t rsb, T *bt, int64_t ldt);   \
        /* optional: the row path's zero scan (gemm.c) of rows [0, mr) of A stored by columns    \
         * (rsa == 1), mr <= FM_GEMM_ROWS_BLOCK: kidx[i][0 .. nk[i]) = the k < kc, increasing,  \
         * where A[i, k] is not zero */                                                           \
        void (*nonzero_rows)(int mr, int64_t kc, const T *a, int64_t csa,                          \
                             int32_t (*kidx)[FM_GEMM_ROWS_MAX_K], int64_t *nk);                    \
        /* what an FMA of a register tile costs, in hundredths of one of the row path's 1-row    \
         * tiles, with B in L1 (<= 32 KiB) and in L2 (measured; see fm_gemm_rows_pay_) */          \
        int rows_cost[2];                                                                          \
        /* optional: rows [0, mr) of C, mr <= 8, for n = nr / 2 + nt columns, nt <= 2 (n = 10 \
         * doubles): the first nr / 2 from B by rows (csb == 1) in place, element by element  \
         * along k; the last nt as dot products with their B^T (bt[j * ldt + p]), on the same   \
         * A rows while they are in L1. Every lane of every FMA is used */                       \
        void (*vecdot)(int mr, int nt, int64_t k, const T *a, int64_t rsa, const T *b,           \
                       int64_t rsb, const T *bt, int64_t ldt, T *c, int64_t rsc, int64_t csc,    \
                       T alpha, T beta);                                                          \
        /* the short-k path (gemm.c: 4-row wide tiles across the width, B in place) for k up   \
         * to this; from 64 bytes of k on, only where A has no zeros to skip (0: none) */      \
        int short_k_max;                                                                           \
        /* with short_k_max: rows [0, m) of C (B by rows, csb == 1) in blocks of 4 rows of       \
         * nr_small[4]-wide tiles, as kernel.ukr computes them, in one call */                    \
        void (*short_k_rows)(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,             \
                             int64_t csa, const T *b, int64_t ldb, T *c, int64_t rsc,              \
                             int64_t csc, T alpha, T beta);                                        \
        /* optional: one row of C (m = 1, B by rows, C contiguous) accumulated in place:         \
         * c[j] += a[p * csa] * b[p * ldb + j] for the nk k listed in kidx (NULL: 0 .. nk - 1), \
         * in that order, j < n; used where n > nr_small[1] */                                   \
        void (*row_stream)(int64_t n, int64_t nk, const int32_t *kidx, const T *a, int64_t csa,  \
                           const T *b, int64_t ldb, T *c);                                         \
        /* optional: the zero scans (as nonzero_k) of `groups` slivers of 4 rows at once, rows  \
         * [4 g, 4 g + 4) of A stored by columns (rsa == 1), the 4 * groups rows at most a cache \
         * line of a column (read once for all): nk[g] and kidx[g] as nonzero_k returns them,    \
         * rows >= mr neither read nor counted */                                                 \
        void (*nonzero_k_groups)(int groups, int mr, int64_t kc, const T *a, int64_t csa,         \
                                 int64_t max_nk, int32_t (*kidx)[FM_GEMM_KC_MAX], int64_t *nk);   \
        /* optional: ukr for a B in place streamed from memory, read by one or two slivers of  \
         * A (X as the B of the swap path, gemm.c); the same results as ukr */                   \
        fm_gemm_ukr_##S ukr_stream;                                                                \
    } fm_gemm_kernel_##S;                                                                          \
    extern const fm_gemm_kernel_##S fm_gemm_ref_##S;                                               \
    extern const fm_gemm_kernel_##S fm_gemm_avx2_##S;   /* only if FM_GEMM_X86 */                  \
    extern const fm_gemm_kernel_##S fm_gemm_avx512_##S; /* only if FM_GEMM_X86 */                  \
    extern const fm_gemm_kernel_##S fm_gemm_avx512_zen4_##S; /* the same on AMD CPUs */          \
    /* The kernel fm_gemm_*_S uses now (honours fm_gemm_force_kernel). */                         \
    const fm_gemm_kernel_##S *fm_gemm_kernel_select_##S(void);                                     \
    /* Testing hook: 1 if fm_gemm_*_S (no epilogue) takes the row path for these operands. */     \
    int fm_gemm_takes_rows_##S(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,          \
                               int64_t csa, int64_t csb);                                          \
    /* Testing hook: how the blocked path treats zero columns of this A (B's column stride csb): \
     * 0 dense, 1 skipped, 2 in half slivers, 3 in slivers of 4 rows. */                          \
    int fm_gemm_zero_mode_of_##S(int64_t m, int64_t k, const T *a, int64_t rsa, int64_t csa,       \
                                 int64_t csb);

FM_GEMM_DECLARE_KERNEL(float, f32)
FM_GEMM_DECLARE_KERNEL(double, f64)

/* Testing hook, not public API: force the micro-kernels "reference", "avx2" or "avx512" (both
 * dtypes), or NULL / "auto" for the run-time choice. Returns 0, or -1 if that kernel is not
 * available on this CPU or build (the choice is then unchanged). Not meant to be called while
 * another thread runs a GEMM. */
int fm_gemm_force_kernel(const char *name);

/* 1 if this CPU (and OS) can run the kernel of that name. */
int fm_gemm_kernel_available(const char *name);

#endif
