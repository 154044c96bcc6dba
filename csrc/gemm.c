/* GEMM driver: C := alpha*A*B + beta*C with arbitrary element strides (BLIS structure).
 *
 * Blocked path (loops outer to inner):
 *   jc  columns of C in blocks of nc          B block kc x nc packed once (L2), or used in place
 *   pc  k in blocks of at most kc (balanced)   never split across threads
 *   task = (column chunk of jw, or the whole B block when A is packed too; row sliver of mr),
 *        spread statically over threads: the A sliver (mr x kc, L1) is read in place, or
 *        packed when A has no unit stride (and, Zen 4, row-major A of wide products)
 *   jr  register tiles across the chunk         micro-kernel; after the last pc: epilogue
 * B is used in place when its rows are contiguous (csb == 1) and m < 512 (the MLP layer shapes:
 * no B pack at all); otherwise packed (transposed B through in-register transposes).
 *
 * Other paths, chosen from the shape and strides (the row path: and A's zeros):
 *   dot      A rows and B columns contiguous along k (dZ W^T in a backward pass), m <= 16:
 *            lane-wise FMA chains along k and one horizontal sum per element, nothing packed;
 *   narrow   n <= 16 and not a multiple of the vector width (a 10-unit output layer), m >= 128:
 *            B^T packed (n x k, cheap) and the dot path, so no vector lane idles;
 *   short k  kernels with 4-row wide tiles, k * sizeof(T) < 64 (a weight gradient at batch < 16
 *            floats or < 8 doubles), or k <= kernel.short_k_max and A without zeros to skip,
 *            C by rows, B by rows (or by columns, copied by rows first): 4 rows at a time
 *            across the whole width;
 *   vecdot   kernels with a vecdot tile (Zen 4, doubles), n one vector plus 1 or 2 (10 units),
 *            A by rows, B by rows, m >= 16: the vector's columns from B in place, the rest as
 *            dot products with their B^T, both on the same A rows;
 *   swap     A column-major (X^T dZ) and either B not row-contiguous or n < nr: computed as
 *            C^T = B^T A^T, which reads both operands in place and keeps all lanes busy;
 *            and dZ W^T (W by columns) of 17-64 rows, as (W dZ^T)^T: dZ^T is packed, not W^T,
 *            then the epilogue over C;
 *   panels   kernels with a panel_mc (AVX2: a 512 KiB L2 on Zen 3 cannot hold the blocked path's
 *            B block next to A), m >= 32 and n >= 32: B packed into micro-panels that stay in L1,
 *            A in blocks of panel_mc rows (packed when its rows are not contiguous) from L2.
 *   rows     kernels with a per-row zero scan, A column-major with sparse rows (MNIST X^T dZ at
 *            batch <= 64), B by rows and at most 64 KiB: one wide tile per row of C over that
 *            row's own non-zero k.
 *   row stream  kernels with a row_stream, one row of C (m = 1) wider than a register tile,
 *            B and C by rows, alpha 1, beta 0 (a batch-1 forward): C accumulated in place in L1
 *            over whole rows of B, 4 at a time, A's zero k skipped.
 *
 * Every decision depends on the shape, the strides and (zero skipping, the row path) A's zero
 * pattern, never on n_threads, and threads only split C (no element is ever summed across
 * threads), so results are bitwise identical for any thread count. With one thread no OpenMP
 * call is made; the only allocation is one workspace per call when a pack is needed and the
 * caller gave none.
 *
 * This file includes itself twice (FM_GEMM_PASS) to instantiate the driver for float and double. */
#ifndef FM_GEMM_PASS

#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"

/* ---- kernel choice ---- */

enum { FM_GK_AUTO = 0, FM_GK_REF = 1, FM_GK_AVX2 = 2, FM_GK_AVX512 = 3 };

static volatile int fm_gemm_forced_ = FM_GK_AUTO;

static int fm_gemm_cpu_has_(int kind) {
    switch (kind) {
    case FM_GK_REF:
        return 1;
#if FM_GEMM_X86
    case FM_GK_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FM_GK_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return 0;
    }
}

static int fm_gemm_kind_of_(const char *name) {
    if (name == NULL || strcmp(name, "auto") == 0) return FM_GK_AUTO;
    if (strcmp(name, "reference") == 0) return FM_GK_REF;
    if (strcmp(name, "avx2") == 0) return FM_GK_AVX2;
    if (strcmp(name, "avx512") == 0) return FM_GK_AVX512;
    return -1;
}

int fm_gemm_kernel_available(const char *name) {
    int kind = fm_gemm_kind_of_(name);
    return kind == FM_GK_AUTO || (kind > 0 && fm_gemm_cpu_has_(kind));
}

int fm_gemm_force_kernel(const char *name) {
    int kind = fm_gemm_kind_of_(name);
    if (kind < 0 || (kind != FM_GK_AUTO && !fm_gemm_cpu_has_(kind))) return -1;
    fm_gemm_forced_ = kind;
    return 0;
}

/* Cheap enough to run on every call (the CPU model is read once by libgcc), hence thread-safe
 * without a lazy-init flag. */
static int fm_gemm_kind_(void) {
    int forced = fm_gemm_forced_;
    if (forced != FM_GK_AUTO) return forced;
    if (fm_gemm_cpu_has_(FM_GK_AVX512)) return FM_GK_AVX512;
    if (fm_gemm_cpu_has_(FM_GK_AVX2)) return FM_GK_AVX2;
    return FM_GK_REF;
}

#if FM_GEMM_X86
static int fm_gemm_amd_(void) {
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
}
#endif

static size_t fm_gemm_round_up_(size_t x, size_t to) { return (x + to - 1) / to * to; }

#define FM_GEMM_ALIGN 64

/* The caller's workspace, or else `bytes` (FM_GEMM_ALIGN of slack included) allocated into
 * *mem for the caller to free; aligned to FM_GEMM_ALIGN. NULL when the allocation fails. */
static char *fm_gemm_scratch_(void *workspace, size_t bytes, void **mem) {
    char *base = (char *)workspace;
    if (!base) {
        *mem = malloc(bytes);
        if (!*mem) return NULL;
        base = (char *)*mem;
    }
    return base + (FM_GEMM_ALIGN - (uintptr_t)base % FM_GEMM_ALIGN) % FM_GEMM_ALIGN;
}

/* Balanced k blocks: as few blocks as kc_max allows, of nearly equal size (a multiple of 8). */
static int64_t fm_gemm_kblock_(int64_t k, int kc_max) {
    int64_t nkb, kcb;
    if (k <= kc_max) return k;
    nkb = (k + kc_max - 1) / kc_max;
    kcb = (k + nkb - 1) / nkb;
    kcb = (kcb + 7) / 8 * 8;
    return kcb > kc_max ? kc_max : kcb;
}

/* ---- path thresholds (measured on a Sapphire Rapids core against OpenBLAS; bench/) ---- */

/* B in place while each B element is reused from L2 only a few times; from this m on, packing
 * pays (contiguous micro-panels, no TLB or cache-set conflicts). */
#define FM_GEMM_PACKB_MIN_M 512
/* X as the B of a swapped X^T dZ takes kernel.ukr_stream from this size on: an L2 (Zen 4) */
#define FM_GEMM_STREAM_B_BYTES (1024.0 * 1024.0)
/* dot path: at most this many rows of C (from 32 rows on, packing B^T for the register tiles
 * wins: dZ W^T at batch 32/64 went 0.9x -> 1.4x OpenBLAS), and a k long enough to amortize one
 * horizontal sum per element (or at most 3 rows, where packing B would cost as much as the
 * product) */
#define FM_GEMM_DOT_MAX_M 16
#define FM_GEMM_DOT_MIN_K 64
/* narrow path: n up to this, from this m on (below it, transposing B costs more than it saves:
 * 64 x 10 x 256 ran 1.10x / 0.93x OpenBLAS narrow, 1.16x / 1.03x blocked, f32 / f64) */
#define FM_GEMM_DOT_PACK_MAX_N 16
#define FM_GEMM_DOT_PACK_MIN_M 128
/* vecdot path (kernel.vecdot), from this m on: m x 10 x 256 double on a Zen 4 core against the
 * narrow path or the register tiles below 32 rows, interleaved: 12 rows 1.01x, 16 1.15x,
 * 24 1.17x, 32 1.12x, 64 1.07x, 256 1.06x; 8 rows 0.97x, 1 row 0.65x */
#define FM_GEMM_VECDOT_MIN_M 16
/* the most bytes of k any kernel.short_k_max allows (the workspace for B^T copied by rows) */
#define FM_GEMM_SHORT_K_MAX_BYTES 512
/* dZ W^T computed as (W dZ^T)^T up to this many rows (above, packing W^T is spread over
 * enough slivers: m = 96 and 128 ran 1.00x) */
#define FM_GEMM_SWAP_DZ_MAX_M 64

/* the drivers (fm_gemm_body*) */
enum {
    FM_GEMM_BLOCKED,
    FM_GEMM_DOT,
    FM_GEMM_PANELS,
    FM_GEMM_ROWS,
    FM_GEMM_VECDOT,
    FM_GEMM_SHORT_K,
    FM_GEMM_ROW_STREAM
};

/* zero skipping: slivers of at least this many rows may be split in two (see fm_gemm_body) */
#define FM_GEMM_SPLIT_MIN_MR 8
/* ... when two half-height tiles over the halves' own non-zero k do a fifth fewer FMAs than
 * both halves over the whole sliver's nk */
static int fm_gemm_halves_pay_(int64_t halves_nk, int64_t nk) { return 5 * halves_nk < 8 * nk; }
/* ... or, for kernels with 4-row wide tiles, slivers of 4 rows (B in place) when their FMAs,
 * weighted 1.2, are fewer than a whole sliver's: an MNIST batch is 52% non-zero across 14
 * samples, 39% across 4. Fitted on a Zen 4 core to X W1 with columns zero at random rates (256
 * and 32 rows, float and double): a 4-row tile's FMA cost 1.0-1.28 times a 14-row tile's, 1.15
 * on average, and 4-row slivers ran as fast as halves or faster in 23 of 24 cases (4 rows are
 * never less sparse than the 7 they are part of, so halves are not tried then). q_nk: the k of 3
 * slivers of 4 rows, nk: of one sliver of 12 or more. */
static int fm_gemm_quarters_pay_(int64_t q_nk, int64_t nk) { return 2 * q_nk < 5 * nk; }

/* The most non-zero k a sliver may have for skipping to pay: seven eighths of kc. */
static int64_t fm_gemm_skip_max_nk_(int64_t kc) { return kc - kc / 8; }

/* what the blocked path does with zero columns of A slivers (fm_gemm_zero_mode) */
enum {
    FM_GEMM_ZERO_DENSE = 0,
    FM_GEMM_ZERO_SKIP = 1,
    FM_GEMM_ZERO_SPLIT = 2,
    FM_GEMM_ZERO_QUARTERS = 3 /* slivers of 4 rows instead of K->mr */
};
/* The first row of the sliver a probe of A looks at, q quarters into its m rows (q = 1, 2, 3). */
static int64_t fm_gemm_probe_row_(int64_t m, int mr, int q) {
    return FM_MIN(m * q / 4 / mr * mr, m - mr);
}

/* row path: B (k x n, read in place for every row) at most this many bytes, so that it stays
 * near the core (MNIST dW1 on a Zen 4 core, X warm as in training, against the blocked path:
 * 784 x 256 x 32 float 1.35x, x 64 (B 64 KiB) 1.16x, x 128 1.03x, x 256 0.9x) */
#define FM_GEMM_ROWS_MAX_B (64 * 1024)
/* ... and when it beats the blocked path by the FMAs each does, weighted by what one costs there
 * (fitted on a Zen 4 core to MNIST pixels and to hidden activations of 35-80% density, batch
 * 16-64): with a row path FMA as 100, a register tile's costs cost100 (kernel.rows_cost: AVX-512
 * 14-row tiles 49 with B in L1, 38 in L2; AVX2 6-row tiles 60), a half sliver's (AVX-512,
 * 7 rows) 1.45 times that. tile20: the blocked path's FMAs times 20 (whole slivers) or 29
 * (halves). */
static int fm_gemm_rows_pay_(int64_t row_fmas, int64_t tile20, int cost100) {
    return tile20 * cost100 > 2000 * row_fmas;
}

/* Prefetches every cache line of rows [0, rows) of a strided block (row r at p + r * stride
 * bytes, `bytes` long): into L1 (to_l1) or into L2. */
static inline void fm_gemm_prefetch_rows_(const void *p, int64_t stride, int64_t rows,
                                          size_t bytes, int to_l1) {
    for (int64_t r = 0; r < rows; r++) {
        const char *first = (const char *)p + r * stride, *last = first + bytes - 1;
        for (const char *l = first - (uintptr_t)first % 64; l <= last; l += 64) {
            if (to_l1)
                __builtin_prefetch(l);
            else
                __builtin_prefetch(l, 0, 2);
        }
    }
}

/* panel path (kernels that have one): at least this many columns */
#define FM_GEMM_PANEL_MIN_N 32

/* Rows of A this many bytes apart share their L1 set (4 KiB: 64 sets of 64 bytes): a sliver
 * of 14 rows read in place does not fit its 8 ways, and every k reloads them from L2 (a layer
 * of 512 doubles or 1024 floats). Packed, the sliver is one stream: AVX-512 on a Zen 4 core,
 * interleaved, 1 thread: double 256 x 784 x 512 1.40x, 128 x 512 x 512 1.53x, 256 x 64 x 512
 * 1.56x, float 256 x 784 x 1024 1.59x, 256 x 1024 x 1024 (B^T) 1.49x. */
static int fm_gemm_rows_alias_(size_t row_bytes) { return row_bytes % 4096 == 0; }

static int fm_gemm_pack_b_(int64_t m, int64_t csb) { return csb != 1 || m >= FM_GEMM_PACKB_MIN_M; }

/* ---- instantiate for float and double ---- */
#define FM_GEMM_PASS 1

#define T float
#define FM_SUFFIX f32
#include "gemm.c"
#undef T
#undef FM_SUFFIX

#define T double
#define FM_SUFFIX f64
#include "gemm.c"
#undef T
#undef FM_SUFFIX

#else /* FM_GEMM_PASS: the dtype-generic body (T, FM_SUFFIX) */

#define KERNEL FM_FN(fm_gemm_kernel)

/* ---- portable reference micro-kernel (always built) ---- */

#define REF_MR 4
#define REF_NR 8

static void FM_FN(fm_gemm_ref_store)(int mr, int nr, T ab[REF_MR][REF_NR], T *c, int64_t rsc,
                                     int64_t csc, T alpha, T beta) {
    int i, j;
    for (i = 0; i < mr; i++) {
        T *cr = c + i * rsc;
        if (beta == 0) {
            for (j = 0; j < nr; j++) cr[j * csc] = alpha * ab[i][j];
        } else {
            for (j = 0; j < nr; j++) cr[j * csc] = alpha * ab[i][j] + beta * cr[j * csc];
        }
    }
}

static void FM_FN(fm_gemm_ref_ukr)(int mr, int nr, int64_t kc, const T *a, int64_t rsa, int64_t csa,
                                   const T *b, int64_t ldb, T *c, int64_t rsc, int64_t csc, T alpha,
                                   T beta) {
    T ab[REF_MR][REF_NR];
    int i, j;
    int64_t p;
    for (i = 0; i < REF_MR; i++)
        for (j = 0; j < REF_NR; j++) ab[i][j] = 0;
    if (mr == REF_MR && nr == REF_NR) {
        for (p = 0; p < kc; p++) {
            const T *ap = a + p * csa, *bp = b + p * ldb;
            for (i = 0; i < REF_MR; i++)
                for (j = 0; j < REF_NR; j++) ab[i][j] += ap[i * rsa] * bp[j];
        }
    } else {
        for (p = 0; p < kc; p++) {
            const T *ap = a + p * csa, *bp = b + p * ldb;
            for (i = 0; i < mr; i++)
                for (j = 0; j < nr; j++) ab[i][j] += ap[i * rsa] * bp[j];
        }
    }
    FM_FN(fm_gemm_ref_store)(mr, nr, ab, c, rsc, csc, alpha, beta);
}

static void FM_FN(fm_gemm_ref_ukr_idx)(int mr, int nr, int64_t nk, const int32_t *kidx,
                                       const T *a, int64_t rsa, int64_t csa, const T *b,
                                       int64_t ldb, T *c, int64_t rsc, int64_t csc, T alpha,
                                       T beta) {
    T ab[REF_MR][REF_NR];
    int i, j;
    int64_t q;
    for (i = 0; i < REF_MR; i++)
        for (j = 0; j < REF_NR; j++) ab[i][j] = 0;
    for (q = 0; q < nk; q++) {
        const T *ap = a + kidx[q] * csa, *bp = b + kidx[q] * ldb;
        for (i = 0; i < mr; i++)
            for (j = 0; j < nr; j++) ab[i][j] += ap[i * rsa] * bp[j];
    }
    FM_FN(fm_gemm_ref_store)(mr, nr, ab, c, rsc, csc, alpha, beta);
}

const KERNEL FM_FN(fm_gemm_ref) = {"reference",
                                   REF_MR,
                                   REF_NR,
                                   {0, REF_NR, REF_NR, REF_NR},
                                   256,
                                   1024,
                                   8 * REF_NR,
                                   FM_FN(fm_gemm_ref_ukr),
                                   0,
                                   {0},
                                   NULL,
                                   NULL,
                                   FM_FN(fm_gemm_ref_ukr_idx),
                                   NULL,
                                   0,
                                   0,
                                   NULL,
                                   NULL,
                                   NULL,
                                   NULL,
                                   NULL,
                                   0,
                                   NULL,
                                   NULL,
                                   NULL,
                                   {0, 0}};

const KERNEL *FM_FN(fm_gemm_kernel_select)(void);
const KERNEL *FM_FN(fm_gemm_kernel_select)(void) {
    switch (fm_gemm_kind_()) {
#if FM_GEMM_X86
    case FM_GK_AVX512:
        return fm_gemm_amd_() ? &FM_FN(fm_gemm_avx512_zen4) : &FM_FN(fm_gemm_avx512);
    case FM_GK_AVX2:
        return &FM_FN(fm_gemm_avx2);
#endif
    default:
        return &FM_FN(fm_gemm_ref);
    }
}

const char *FM_FN(fm_gemm_kernel_name)(void) { return FM_FN(fm_gemm_kernel_select)()->name; }

/* 1 if a product with this k is accumulated in one k block by every path, so that
 * C := alpha*A*B + C rounds as C + alpha*(A*B) with A*B formed once. */
int FM_FN(fm_gemm_single_kblock)(int64_t k) { return k <= FM_FN(fm_gemm_kernel_select)()->kc; }

/* ---- packing ---- */

/* A sliver rows [0, mr) x k [0, kc) of a (already offset) into ap[p*mr + i]. */
static void FM_FN(fm_gemm_pack_a)(const KERNEL *K, int mr, int64_t kc, const T *restrict a,
                                  int64_t rsa, int64_t csa, T *restrict ap) {
    int64_t p;
    int i;
    if (rsa == 1 && K->packa) {
        K->packa(mr, kc, a, csa, ap);
    } else if (csa == 1 && K->packa_rows) {
        K->packa_rows(mr, kc, a, rsa, ap);
    } else if (rsa == 1) {
        for (p = 0; p < kc; p++) {
            const T *ac = a + p * csa;
            for (i = 0; i < mr; i++) ap[p * mr + i] = ac[i];
        }
    } else {
        for (p = 0; p < kc; p++)
            for (i = 0; i < mr; i++) ap[p * mr + i] = a[i * rsa + p * csa];
    }
}

/* An A block (rows [0, mc) x k [0, kc)) into slivers of K->mr rows: sliver s at ap + s*mr*kc,
 * packed as fm_gemm_pack_a packs one (the last may have fewer rows). Column-contiguous A (X^T
 * of a weight gradient) is read a whole column segment at a time, each line once. */
static void FM_FN(fm_gemm_pack_a_block)(const KERNEL *K, int64_t mc, int64_t kc, const T *restrict a,
                                        int64_t rsa, int64_t csa, T *restrict ap) {
    const int MR = K->mr;
    int64_t s;
    if (rsa == 1 && K->packa_block) {
        K->packa_block(mc, kc, a, csa, ap);
        return;
    }
    for (s = 0; s * MR < mc; s++)
        FM_FN(fm_gemm_pack_a)(K, (int)FM_MIN((int64_t)MR, mc - s * MR), kc, a + s * MR * rsa, rsa,
                              csa, ap + s * MR * kc);
}

/* The k of an A sliver (rows [0, mr) x k [0, kc)) where some row is not zero, into kidx; returns
 * their count, or kc as soon as more than max_nk are found or none of the first
 * FM_GEMM_ZSCAN_PROBE k is a zero column (then the dense kernel runs: a hidden layer's sliver,
 * zeros scattered at random, is given up after 32 k). NaN is kept, -0.0 == 0. The SIMD scans
 * (kernel.nonzero_k) follow the same rules. */
static int64_t FM_FN(fm_gemm_nonzero_k)(int mr, int64_t kc, const T *restrict a, int64_t rsa,
                                        int64_t csa, int64_t max_nk, int32_t *restrict kidx) {
    int64_t p, nk = 0;
    int i;
    for (p = 0; p < kc; p++) {
        const T *ac = a + p * csa;
        for (i = 0; i < mr; i++)
            if (ac[i * rsa] != 0) break;
        if (i < mr) kidx[nk++] = (int32_t)p;
        if (fm_gemm_scan_gives_up(nk, p + 1, max_nk)) return kc;
    }
    return nk;
}

/* The zero scan of one sliver, with the kernel's SIMD scan where it has one for these strides
 * (fm_gemm_nonzero_k: kc once more than max_nk k are not zero) */
static int64_t FM_FN(fm_gemm_scan_upto)(const KERNEL *K, int mr, int64_t kc, const T *a,
                                        int64_t rsa, int64_t csa, int64_t max_nk, int32_t *kidx) {
    const int64_t nk = K->nonzero_k ? K->nonzero_k(mr, kc, a, rsa, csa, max_nk, kidx) : -1;
    return nk < 0 ? FM_FN(fm_gemm_nonzero_k)(mr, kc, a, rsa, csa, max_nk, kidx) : nk;
}

/* ... where skipping pays: once at least an eighth of the k are zero columns */
static int64_t FM_FN(fm_gemm_scan)(const KERNEL *K, int mr, int64_t kc, const T *a, int64_t rsa,
                                   int64_t csa, int32_t *kidx) {
    return FM_FN(fm_gemm_scan_upto)(K, mr, kc, a, rsa, csa, fm_gemm_skip_max_nk_(kc), kidx);
}

/* The zero scans of rows [0, rows) of A as slivers of 4 (the last rows % 4 left out): the sum
 * of their counts. */
static int64_t FM_FN(fm_gemm_scan_quarters)(const KERNEL *K, int64_t rows, int64_t kc,
                                            const T *a, int64_t rsa, int64_t csa,
                                            int32_t *kidx) {
    int64_t nk = 0;
    for (int64_t r = 0; r + 4 <= rows; r += 4)
        nk += FM_FN(fm_gemm_scan)(K, 4, kc, a + r * rsa, rsa, csa, kidx);
    return nk;
}

/* B micro-panel k [0, kc) x columns [0, nr) into bp[p*NR + j], zero-padded to NR columns. */
static void FM_FN(fm_gemm_pack_b)(const KERNEL *K, int nr, int64_t kc, const T *restrict b,
                                  int64_t rsb, int64_t csb, T *restrict bp) {
    const int NR = K->nr;
    int64_t p;
    int j;
    if (rsb == 1 && csb != 1 && K->packbt) {
        K->packbt(nr, kc, b, csb, bp);
    } else if (csb == 1 && K->packb) {
        K->packb(nr, kc, b, rsb, bp);
    } else if (csb == 1) {
        for (p = 0; p < kc; p++) {
            const T *br = b + p * rsb;
            T *dst = bp + p * NR;
            for (j = 0; j < nr; j++) dst[j] = br[j];
            for (; j < NR; j++) dst[j] = 0;
        }
    } else if (rsb == 1) {
        /* transposed B: read along k (contiguous), in blocks of 8 k so writes stay in L1 lines */
        int64_t p0;
        for (p0 = 0; p0 < kc; p0 += 8) {
            int64_t pe = FM_MIN(p0 + 8, kc);
            for (j = 0; j < nr; j++) {
                const T *bc = b + j * csb;
                for (p = p0; p < pe; p++) bp[p * NR + j] = bc[p];
            }
            for (p = p0; p < pe; p++)
                for (j = nr; j < NR; j++) bp[p * NR + j] = 0;
        }
    } else {
        for (p = 0; p < kc; p++) {
            T *dst = bp + p * NR;
            for (j = 0; j < nr; j++) dst[j] = b[p * rsb + j * csb];
            for (; j < NR; j++) dst[j] = 0;
        }
    }
}

/* ---- epilogue: C := act(C + bias), z := C + bias ---- */

static void FM_FN(fm_gemm_epi_row)(const fm_epilogue *e, int64_t i, int64_t j0, int64_t nr, T *cr,
                                   int64_t csc) {
    const T *bias = e->bias ? (const T *)e->bias + j0 : NULL;
    if (e->grad) { /* ReLU's derivative, written as fm_act_backward writes it */
        const T *zr = (const T *)e->z + i * e->rsz + j0;
        int64_t j;
        for (j = 0; j < nr; j++) {
            const T g = cr[j * csc];
            cr[j * csc] = zr[j] > 0 ? g : (T)0;
        }
        return;
    }
    T *z = e->z ? (T *)e->z + i * e->rsz + j0 : NULL;
    int act = !(e->act == FM_ACT_IDENTITY && e->act_param == 1.0);
    int64_t j;
    if (csc == 1) {
        if (bias)
            for (j = 0; j < nr; j++) cr[j] += bias[j];
        if (z && z != cr)
            for (j = 0; j < nr; j++) z[j] = cr[j];
        if (act) FM_FN(fm_act_apply)(nr, cr, cr, e->act, e->act_param);
    } else {
        T tmp[FM_GEMM_NR_WIDE_MAX];
        int64_t j1, w;
        for (j1 = 0; j1 < nr; j1 += FM_GEMM_NR_WIDE_MAX) {
            w = FM_MIN(FM_GEMM_NR_WIDE_MAX, nr - j1);
            for (j = 0; j < w; j++) tmp[j] = cr[(j1 + j) * csc] + (bias ? bias[j1 + j] : (T)0);
            if (z)
                for (j = 0; j < w; j++) z[j1 + j] = tmp[j];
            if (act) FM_FN(fm_act_apply)(w, tmp, tmp, e->act, e->act_param);
            for (j = 0; j < w; j++) cr[(j1 + j) * csc] = tmp[j];
        }
    }
}

/* The epilogue over rows [i0, i0 + mr) x columns [j0, j0 + nr) of C, just computed. With unit
 * column stride and the hidden layers' usual activations (identity, ReLU) it runs here as plain
 * vector loops, built for the CPU at hand; otherwise row by row as above. ReLU is written as in
 * fm_act_apply, so both give the same values. */
FM_CLONES static void FM_FN(fm_gemm_epi_tile)(const fm_epilogue *e, int64_t i0, int mr, int64_t j0,
                                              int64_t nr, T *c, int64_t rsc, int64_t csc) {
    const int relu = e->act == FM_ACT_RELU;
    int i;
    if (csc == 1 && e->grad) {
        for (i = 0; i < mr; i++) {
            T *cr = c + i * rsc;
            const T *zr = (const T *)e->z + (i0 + i) * e->rsz + j0;
            int64_t j;
            for (j = 0; j < nr; j++) {
                const T g = cr[j];
                cr[j] = zr[j] > 0 ? g : (T)0;
            }
        }
        return;
    }
    if (csc == 1 && !e->grad && (relu || (e->act == FM_ACT_IDENTITY && e->act_param == 1.0))) {
        const T *bias = e->bias ? (const T *)e->bias + j0 : NULL;
        for (i = 0; i < mr; i++) {
            T *cr = c + i * rsc;
            T *z = e->z ? (T *)e->z + (i0 + i) * e->rsz + j0 : NULL;
            int64_t j;
            /* training's hidden layers: one pass (MNIST epochs, 1 thread: +1.8% at batch 256
             * and zero-free at 1024) */
            if (bias && relu && !z) {
                for (j = 0; j < nr; j++) {
                    const T v = cr[j] + bias[j];
                    cr[j] = v > 0 ? v : (T)0;
                }
                continue;
            }
            if (bias)
                for (j = 0; j < nr; j++) cr[j] += bias[j];
            if (z && z != cr)
                for (j = 0; j < nr; j++) z[j] = cr[j];
            if (relu)
                for (j = 0; j < nr; j++) cr[j] = cr[j] > 0 ? cr[j] : (T)0;
        }
        return;
    }
    for (i = 0; i < mr; i++) FM_FN(fm_gemm_epi_row)(e, i0 + i, j0, nr, c + i * rsc, csc);
}

/* k == 0 or alpha == 0: C := beta*C (C not read when beta == 0), then the epilogue. */
static void FM_FN(fm_gemm_scale)(int64_t m, int64_t n, T *c, int64_t rsc, int64_t csc, T beta,
                                 const fm_epilogue *e) {
    int64_t i, j;
    for (i = 0; i < m; i++) {
        T *cr = c + i * rsc;
        if (beta == 0) {
            for (j = 0; j < n; j++) cr[j * csc] = 0;
        } else if (beta != 1) {
            for (j = 0; j < n; j++) cr[j * csc] *= beta;
        }
        if (e) FM_FN(fm_gemm_epi_row)(e, i, 0, n, cr, csc);
    }
}

/* ---- workspace ---- */

typedef struct FM_FN(fm_gemm_plan) {
    const KERNEL *K;
    int64_t kcb;     /* k block */
    int64_t ncb;     /* columns of a packed B block (0 if B is not packed) */
    size_t a_elems;  /* per-thread A sliver */
    size_t b_elems;  /* packed B block */
    size_t p_bytes;  /* per-thread workspace of the panel path (0 if the kernel has none) */
    int t;           /* threads */
} FM_FN(fm_gemm_plan);

/* The panel path's A block: panel_mc rows, or all of them when fewer. */
static int64_t FM_FN(fm_gemm_panel_rows)(const KERNEL *K, int64_t m) {
    return FM_MIN((int64_t)K->panel_mc, (int64_t)fm_gemm_round_up_((size_t)m, (size_t)K->mr));
}

/* Per-thread bytes of the panel path: the packed A block, and the zero scan's index list and
 * count for each sliver of the block (the packed B block is shared, as in the blocked path). */
static size_t FM_FN(fm_gemm_panel_bytes)(const KERNEL *K, int64_t m, int64_t kcb) {
    const int64_t mc = FM_FN(fm_gemm_panel_rows)(K, m), n_s = mc / K->mr;
    return fm_gemm_round_up_(sizeof(T) * (size_t)(mc * kcb), FM_GEMM_ALIGN) +
           fm_gemm_round_up_(sizeof(int32_t) * (size_t)(n_s * kcb), FM_GEMM_ALIGN) +
           fm_gemm_round_up_(sizeof(int64_t) * (size_t)n_s, FM_GEMM_ALIGN);
}

static size_t FM_FN(fm_gemm_plan_make)(FM_FN(fm_gemm_plan) * pl, const KERNEL *K, int64_t m,
                                       int64_t n, int64_t k, int packb, int n_threads) {
    /* B blocks are sized for max(m, n) columns: the driver may swap the roles of A and B */
    const int64_t cols = FM_MIN(FM_MAX(m, n), (int64_t)K->nc);
    pl->K = K;
    pl->kcb = fm_gemm_kblock_(k, K->kc);
    /* sizing: a smaller k may take a larger block (k = 300 is one block of 300, k = 400 two of
     * 200), so a workspace sized here must hold the largest block any k' <= k uses */
    if (packb < 0) pl->kcb = FM_MIN(k, (int64_t)K->kc);
    pl->ncb = packb ? (int64_t)fm_gemm_round_up_((size_t)cols, (size_t)K->nr) : 0;
    pl->a_elems = fm_gemm_round_up_((size_t)K->mr * (size_t)pl->kcb, FM_GEMM_ALIGN / sizeof(T));
    pl->b_elems = fm_gemm_round_up_((size_t)pl->ncb * (size_t)pl->kcb, FM_GEMM_ALIGN / sizeof(T));
    pl->p_bytes = K->panel_mc ? FM_FN(fm_gemm_panel_bytes)(K, FM_MAX(m, n), pl->kcb) : 0;
    pl->t = fm_threads_for(2.0 * (double)m * (double)n * (double)k, n_threads);
    return pl->b_elems * sizeof(T) +
           (size_t)pl->t * FM_MAX(pl->a_elems * sizeof(T), pl->p_bytes) + FM_GEMM_ALIGN;
}

/* Elements of B^T packed for the dot path of a narrow B (n <= FM_GEMM_DOT_PACK_MAX_N). */
static size_t FM_FN(fm_gemm_bt_elems)(int64_t n, int64_t k) {
    return n <= FM_GEMM_DOT_PACK_MAX_N ? (size_t)n * fm_gemm_round_up_((size_t)k, 16) : 0;
}

/* Elements of a short k's B by columns transposed by rows (k x ldb, ldb = n rounded up to 16). */
static size_t FM_FN(fm_gemm_short_k_bt_elems)(int64_t n, int64_t k) {
    return k * (int64_t)sizeof(T) <= FM_GEMM_SHORT_K_MAX_BYTES
               ? (size_t)k * fm_gemm_round_up_((size_t)n, 16)
               : 0;
}

/* Elements of either copy of a B with n columns (the narrow path's or the short-k path's). */
static size_t FM_FN(fm_gemm_b_copy_elems)(int64_t n, int64_t k) {
    return FM_MAX(FM_FN(fm_gemm_bt_elems)(n, k), FM_FN(fm_gemm_short_k_bt_elems)(n, k));
}

size_t FM_FN(fm_gemm_workspace_size)(int64_t m, int64_t n, int64_t k, int n_threads) {
    FM_FN(fm_gemm_plan) pl;
    size_t blocked, bt;
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    /* strides are unknown here: count the B pack, which only some problems need (packb = -1:
     * packed, and the bound for every k' <= k) */
    blocked = FM_FN(fm_gemm_plan_make)(&pl, FM_FN(fm_gemm_kernel_select)(), m, n, k, -1, n_threads);
    /* the same for m x n as for n x m: a product may run as its transpose (dZ W^T) */
    bt = FM_MAX(FM_FN(fm_gemm_b_copy_elems)(n, k), FM_FN(fm_gemm_b_copy_elems)(m, k)) * sizeof(T) +
         FM_GEMM_ALIGN;
    return FM_MAX(blocked, bt);
}

/* ---- the blocked product ---- */

/* Everything one call needs, shared by its threads. */
typedef struct FM_FN(fm_gemm_ctx) {
    const KERNEL *K;
    int64_t m, n, k, kcb, ncb;
    const T *a, *b;
    T *c;
    int64_t rsa, csa, rsb, csb, rsc, csc;
    T alpha, beta;
    const fm_epilogue *epi;
    T *bpack, *apack; /* apack: a_elems per thread */
    size_t a_elems;
    int packa, packb;
    int zskip; /* look for k where an A sliver is all zero and skip them */
    int zsplit; /* and try each such sliver as two half-height tiles (fm_gemm_zero_mode) */
    int zquarters; /* or use slivers of 4 rows, B in place (fm_gemm_zero_mode) */
    FM_FN(fm_gemm_ukr) ukr; /* kernel.ukr, or kernel.ukr_stream (X as the swap path's B) */
    char *pws; /* the panel path's workspace: p_bytes per thread */
    size_t p_bytes;
    const T *bt; /* the vecdot path's B^T of the columns past the first vector */
    int64_t ldt;
} FM_FN(fm_gemm_ctx);

/* The zero scans of the two halves of an A sliver (rows [0, (mr + 1) / 2) and the rest) into
 * kidx_h[0], kidx_h[1] and their counts into nk_h; returns the sum of the counts. */
static int64_t FM_FN(fm_gemm_scan_halves)(const KERNEL *K, int mr, int64_t kc, const T *a,
                                          int64_t rsa, int64_t csa,
                                          int32_t (*kidx_h)[FM_GEMM_KC_MAX], int64_t *nk_h) {
    const int half = (mr + 1) / 2;
    nk_h[0] = FM_FN(fm_gemm_scan)(K, half, kc, a, rsa, csa, kidx_h[0]);
    nk_h[1] = FM_FN(fm_gemm_scan)(K, mr - half, kc, a + half * rsa, rsa, csa, kidx_h[1]);
    return nk_h[0] + nk_h[1];
}

/* How the blocked path treats zero columns of A slivers, from the slivers at 1/4, 1/2 and 3/4 of
 * m (or the only one), first k block: FM_GEMM_ZERO_DENSE when none of them would skip any k
 * (dense inputs and hidden activations: their scans then cost 2-5% of a product and find
 * nothing), else FM_GEMM_ZERO_SKIP, or FM_GEMM_ZERO_SPLIT when splitting slivers in two also
 * pays; kernels with 4-row wide tiles (B by rows: quarters_ok) try FM_GEMM_ZERO_QUARTERS instead
 * of halves. Decided once per call from the data, the same for every thread; where
 * splitting does not pay (MNIST rows: 14 samples 52% non-zero, 7 samples 45%) the halves' scans
 * would cost 10%. */
static int FM_FN(fm_gemm_zero_mode)(const KERNEL *K, int64_t m, int64_t kc, const T *a,
                                    int64_t rsa, int64_t csa, int quarters_ok) {
    int32_t kidx[FM_GEMM_KC_MAX], kidx_h[2][FM_GEMM_KC_MAX];
    int64_t whole = 0, halves = 0, quarters = 0, nk_h[2];
    const int mr = K->mr;
    const int by4 = quarters_ok && K->nr_small[4] && mr >= 12;
    const int split_ok = mr >= FM_GEMM_SPLIT_MIN_MR;
    int q, sparse = 0, whole_sparse = 0;
    int64_t prev = -1;
    /* one sliver (a swapped output-layer product: 10 rows; a batch of 4-13): each column chunk
     * would scan it. From 6 rows on, its slivers of 4 run in 4-row wide tiles, no less efficient
     * per FMA than a 6-13 row tile, when they are any sparser (MNIST X W1 at batch 6-13,
     * interleaved: 1.02-1.49x; at 5 rows float 0.99x) */
    if (m < mr) {
        const int64_t nk = FM_FN(fm_gemm_scan)(K, (int)m, kc, a, rsa, csa, kidx);
        if (by4 && m >= 6 && nk < kc &&
            FM_FN(fm_gemm_scan_quarters)(K, m, kc, a, rsa, csa, kidx) < m / 4 * nk)
            return FM_GEMM_ZERO_QUARTERS;
        return nk == kc ? FM_GEMM_ZERO_DENSE : FM_GEMM_ZERO_SKIP;
    }
    for (q = 1; q <= 3; q++) {
        const int64_t r0 = fm_gemm_probe_row_(m, mr, q);
        if (r0 == prev) continue; /* few rows: the same sliver again */
        prev = r0;
        const T *as = a + r0 * rsa;
        /* a sliver too dense to skip as a whole (MNIST pixels across 256 samples: 14 pixels
         * 80-90% non-zero) may have quarters that are not (4 pixels: 25-35%); none are looked
         * at when not one of its first k is a zero column (hidden activations) */
        const int64_t nk_any = FM_FN(fm_gemm_scan_upto)(K, mr, kc, as, rsa, csa, kc - 1, kidx);
        const int64_t nk = nk_any > fm_gemm_skip_max_nk_(kc) ? kc : nk_any;
        /* rows [0, 12) of the sliver as 3 slivers of 4 */
        const int64_t nk_q = by4 && nk_any < kc
                                 ? FM_FN(fm_gemm_scan_quarters)(K, 12, kc, as, rsa, csa, kidx)
                                 : 3 * kc;
        if (nk == kc && nk_q == 3 * kc) continue;
        sparse = 1;
        whole_sparse |= nk < kc;
        whole += nk;
        quarters += nk_q;
        if (split_ok && !by4)
            halves += FM_FN(fm_gemm_scan_halves)(K, mr, kc, as, rsa, csa, kidx_h, nk_h);
    }
    if (!sparse) return FM_GEMM_ZERO_DENSE;
    if (by4 && fm_gemm_quarters_pay_(quarters, whole)) return FM_GEMM_ZERO_QUARTERS;
    if (!whole_sparse) return FM_GEMM_ZERO_DENSE;
    return split_ok && !by4 && fm_gemm_halves_pay_(halves, whole) ? FM_GEMM_ZERO_SPLIT
                                                                  : FM_GEMM_ZERO_SKIP;
}

/* The non-zero elements of rows [0, rows) of A's columns [p, pe), A stored by columns; inlined
 * with a fixed `rows` (the kernels' tile heights), the compiler vectorizes it. */
static inline __attribute__((always_inline)) int FM_FN(fm_gemm_count_cols)(
    const int rows, int64_t p, int64_t pe, const T *a, int64_t csa) {
    int c = 0;
    for (int64_t q = p; q < pe; q++)
        for (int i = 0; i < rows; i++) c += a[q * csa + i] != 0;
    return c;
}

/* The non-zero elements of rows [0, mr) x k [0, k) of A stored by columns (rsa == 1), NaN
 * counted as non-zero, as the row path's scan does; counting stops past `enough`. */
FM_CLONES static int64_t FM_FN(fm_gemm_count_nonzero)(int mr, int64_t k, const T *a, int64_t csa,
                                                      int64_t enough) {
    int64_t count = 0;
    for (int64_t p = 0; p < k && count <= enough; p += 8) {
        const int64_t pe = FM_MIN(k, p + 8);
        count += mr == 14  ? FM_FN(fm_gemm_count_cols)(14, p, pe, a, csa) /* AVX-512 tiles */
                 : mr == 6 ? FM_FN(fm_gemm_count_cols)(6, p, pe, a, csa)  /* AVX2 tiles */
                           : FM_FN(fm_gemm_count_cols)(mr, p, pe, a, csa);
    }
    return count;
}

/* Whether the row path (fm_gemm_body_rows) pays for this A, stored by columns: on the slivers
 * at 1/4, 1/2 and 3/4 of m, the FMAs of its rows, each over its own non-zero k, against those of
 * the blocked path's tiles (a sliver, or its two halves, over their non-zero k). Decided once per
 * call from the data, the same for every thread. */
static int FM_FN(fm_gemm_rows_pay)(const KERNEL *K, int64_t m, int64_t n, int64_t k, const T *a,
                                   int64_t csa) {
    int32_t kidx[FM_GEMM_KC_MAX], kidx_h[2][FM_GEMM_KC_MAX];
    int64_t nk_h[2], tile = 0, row = 0, r0s[3];
    const int mr = (int)FM_MIN((int64_t)K->mr, m), half = (mr + 1) / 2;
    int64_t prev = -1;
    int probes = 0;
    for (int q = 1; q <= 3; q++) {
        const int64_t r0 = fm_gemm_probe_row_(m, mr, q);
        /* few rows (a swapped output-layer product: 10) would probe one sliver several times */
        if (r0 == prev) continue;
        prev = r0;
        r0s[probes++] = r0;
        const T *as = a + r0; /* rsa == 1 */
        const int64_t nk = FM_FN(fm_gemm_scan)(K, mr, k, as, 1, csa, kidx);
        int64_t cost = 20 * nk * mr;
        if (nk < k && mr >= FM_GEMM_SPLIT_MIN_MR &&
            fm_gemm_halves_pay_(FM_FN(fm_gemm_scan_halves)(K, mr, k, as, 1, csa, kidx_h, nk_h), nk))
            cost = 29 * (nk_h[0] * half + nk_h[1] * (mr - half));
        tile += cost;
    }
    /* the rows' non-zero elements, counted only until the row path cannot pay (dense A: after
     * about half of them) */
    const int cost100 = K->rows_cost[(size_t)k * (size_t)n * sizeof(T) > 32 * 1024];
    const int64_t enough = tile * cost100 / 2000;
    for (int i = 0; i < probes && row <= enough; i++)
        row += FM_FN(fm_gemm_count_nonzero)(mr, k, a + r0s[i], csa, enough - row);
    return fm_gemm_rows_pay_(row, tile, cost100);
}

/* Whether a product takes the row path: A by columns, B by rows and small (see
 * FM_GEMM_ROWS_MAX_B), one k block, n a whole number of 1-row wide tiles (half or full width),
 * and rows sparse enough (fm_gemm_rows_pay). */
static int FM_FN(fm_gemm_rows_path)(const KERNEL *K, int64_t m, int64_t n, int64_t k, const T *a,
                                    int64_t rsa, int64_t csa, int64_t csb) {
    return K->nonzero_rows && K->ukr_idx && K->mr <= FM_GEMM_ROWS_BLOCK && rsa == 1 && csa != 1 &&
           csb == 1 && m >= 1 && k >= 16 && k <= K->kc && k <= FM_GEMM_ROWS_MAX_K &&
           n % (K->nr_small[1] / 2) == 0 &&
           (size_t)k * (size_t)n * sizeof(T) <= FM_GEMM_ROWS_MAX_B &&
           FM_FN(fm_gemm_rows_pay)(K, m, n, k, a, csa);
}

int FM_FN(fm_gemm_takes_rows)(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,
                              int64_t csa, int64_t csb) {
    return FM_FN(fm_gemm_rows_path)(FM_FN(fm_gemm_kernel_select)(), m, n, k, a, rsa, csa, csb);
}

int FM_FN(fm_gemm_zero_mode_of)(int64_t m, int64_t k, const T *a, int64_t rsa, int64_t csa,
                                int64_t csb) {
    const KERNEL *K = FM_FN(fm_gemm_kernel_select)();
    if (m < 1 || k < 1 || !K->ukr_idx) return FM_GEMM_ZERO_DENSE;
    return FM_FN(fm_gemm_zero_mode)(K, m, fm_gemm_kblock_(k, K->kc), a, rsa, csa, csb == 1);
}

/* Static share [*lo, *hi) of n items for thread tid of nt. Which thread computes a tile never
 * changes the operations that compute it. */
static void FM_FN(fm_gemm_share)(int64_t n, int tid, int nt, int64_t *lo, int64_t *hi) {
    *lo = n * tid / nt;
    *hi = n * (tid + 1) / nt;
}

/* The part of the product thread tid of nt computes (all of it when nt == 1). */
static void FM_FN(fm_gemm_body)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const KERNEL *K = x->K;
    const int64_t m = x->m, n = x->n, k = x->k, kcb = x->kcb;
    const int MR = x->zquarters ? 4 : K->mr, NR = K->nr;
    /* column chunks: half width for few rows (more tasks to share among threads; slivers of 4
     * rows are many enough, and each then scans its zeros once: MNIST X W1 at batch 16-100, 1
     * and 2 threads, 1.01-1.11x), at least as wide as the widest tile for one to three rows
     * with B in place */
    const int jw = m < 128 && !x->zquarters ? K->jw / 2 : K->jw;
    /* with both operands packed (m >= 512), one chunk per B block: each A sliver is then packed
     * once per k block, not once per chunk (1024^3 and 2048 x 1024 x 1024, A by rows or by
     * columns, 1 and 2 threads: double +10-16%, float +2-9%) */
    const int JW = (m <= 3 && !x->packb) ? FM_MAX(jw, K->nr_small[m])
                   : (x->packa && x->packb && m >= FM_GEMM_PACKB_MIN_M) ? (int)x->ncb
                                                                         : jw;
    const int64_t NC = x->packb ? x->ncb : (int64_t)fm_gemm_round_up_((size_t)n, (size_t)JW);
    const int64_t n_ir = (m + MR - 1) / MR;
    T *apack = x->apack + (size_t)tid * x->a_elems;
    int32_t kidx[FM_GEMM_KC_MAX], kidx_h[2][FM_GEMM_KC_MAX];
    /* 4-row slivers of A by columns in place share their lines: scanned a line's worth at once
     * (kernel.nonzero_k_groups), the lists kept for the next tasks' slivers */
    const int groups = x->zskip && x->zquarters && !x->packa && x->rsa == 1 && K->nonzero_k_groups
                           ? (int)(64 / sizeof(T) / 4)
                           : 0;
    int32_t kidx_g[4][FM_GEMM_KC_MAX]; /* at most 4 slivers: a line of floats */
    int64_t nk_g[4], g_ir0 = -1, g_pc = -1;
    int64_t jc, pc;
    for (jc = 0; jc < n; jc += NC) {
        const int64_t nc = FM_MIN(NC, n - jc);
        const int64_t n_jp = (nc + NR - 1) / NR;
        const int64_t n_ch = (nc + JW - 1) / JW;
        for (pc = 0; pc < k; pc += kcb) {
            const int64_t kc = FM_MIN(kcb, k - pc);
            const int last = pc + kc >= k;
            const T beta_eff = pc == 0 ? x->beta : (T)1;
            const T *bblk;
            int64_t ldb, task, lo, hi;
            if (x->packb) {
                int64_t jp;
                FM_FN(fm_gemm_share)(n_jp, tid, nt, &lo, &hi);
                for (jp = lo; jp < hi; jp++) {
                    int nr = (int)FM_MIN((int64_t)NR, nc - jp * NR);
                    FM_FN(fm_gemm_pack_b)(K, nr, kc, x->b + pc * x->rsb + (jc + jp * NR) * x->csb,
                                          x->rsb, x->csb, x->bpack + jp * NR * kc);
                }
#ifdef _OPENMP
                if (nt > 1) {
#pragma omp barrier
                } /* the whole B block is packed */
#endif
                bblk = x->bpack;
                ldb = NR;
            } else {
                bblk = x->b + pc * x->rsb + jc;
                ldb = x->rsb;
            }
            /* tasks: column chunk major, then row sliver; one A sliver per task */
            FM_FN(fm_gemm_share)(n_ch * n_ir, tid, nt, &lo, &hi);
            for (task = lo; task < hi; task++) {
                const int64_t ch = task / n_ir, ir = task % n_ir;
                const int64_t i0 = ir * MR;
                const int mr = (int)FM_MIN((int64_t)MR, m - i0);
                const int64_t je = FM_MIN(nc, (ch + 1) * JW);
                const T *as = x->a + i0 * x->rsa + pc * x->csa;
                int64_t rs = x->rsa, cs = x->csa, j0, nk = kc;
                int step;
                if (x->packa) {
                    FM_FN(fm_gemm_pack_a)(K, mr, kc, as, x->rsa, x->csa, apack);
                    as = apack;
                    rs = 1;
                    cs = mr;
                }
                const int32_t *kl = kidx;
                if (groups) {
                    if (g_pc != pc || ir < g_ir0 || ir >= g_ir0 + groups) {
                        g_pc = pc, g_ir0 = ir;
                        K->nonzero_k_groups(groups, (int)FM_MIN((int64_t)groups * 4, m - i0), kc,
                                            as, cs, fm_gemm_skip_max_nk_(kc), kidx_g, nk_g);
                    }
                    nk = nk_g[ir - g_ir0];
                    kl = kidx_g[ir - g_ir0];
                } else if (x->zskip)
                    nk = FM_FN(fm_gemm_scan)(K, mr, kc, as, rs, cs, kidx);
                /* a sliver with zero columns may run as two half-height tiles, each over the
                 * non-zero k of its own rows, when they add up to a fifth fewer FMAs: inputs
                 * such as MNIST's have fewer zero columns in tall slivers (14 pixels across
                 * a batch: 63% of k non-zero; 7 pixels: about 40%). Per element the same
                 * FMAs in the same order: the same results. */
                int half = 0;
                int64_t nk_h[2];
                if (nk < kc && x->zsplit && mr >= FM_GEMM_SPLIT_MIN_MR &&
                    fm_gemm_halves_pay_(
                        FM_FN(fm_gemm_scan_halves)(K, mr, kc, as, rs, cs, kidx_h, nk_h), nk))
                    half = (mr + 1) / 2;
                step = (!x->packb && mr <= 4 && K->nr_small[mr]) ? FM_MIN(K->nr_small[mr], JW)
                                                                  : NR;
                /* the next task's sliver of A^T, when its stride crosses a page every k or
                 * two (X^T of a first layer, in L3: the hardware prefetchers stop at page
                 * boundaries), is fetched into L2 a slice of its k per tile while this sliver
                 * computes. dW1 784 x 256 x 1024: float 3-11%, double 5-8% faster; training at
                 * batch 256-1024 about 1.3%. At 1 KiB strides (dW2) it cost 2%. Prefetches never
                 * fault, so a short last sliver needs no care. */
                const T *pf = NULL;
                int64_t pf_p = 0, pf_step = kc;
                if (x->packa && x->rsa == 1 && task + 1 < hi &&
                    sizeof(T) * (size_t)x->csa >= 2048) {
                    const int64_t ir1 = (task + 1) % n_ir;
                    pf = x->a + ir1 * MR * x->rsa + pc * x->csa;
                    pf_step = (kc * step + (je - ch * JW) - 1) / (je - ch * JW);
                }
                for (j0 = ch * JW; j0 < je; j0 += step) {
                    const int nr = (int)FM_MIN((int64_t)step, je - j0);
                    if (pf) {
                        const int64_t pe = FM_MIN(kc, pf_p + pf_step);
                        fm_gemm_prefetch_rows_(pf + pf_p * x->csa, (int64_t)sizeof(T) * x->csa,
                                               pe - pf_p, sizeof(T) * (size_t)MR, 0);
                        pf_p = pe;
                    }
                    const T *bt = x->packb ? bblk + (j0 / NR) * NR * kc : bblk + j0;
                    T *ct = x->c + i0 * x->rsc + (jc + j0) * x->csc;
                    /* this tile's z rows for its epilogue, fetched while the tile computes, as in
                     * the panel path (ReLU' of a dX product at batch 1024: the epilogue went
                     * from 2.6% to 2.1% of an epoch) */
                    if (last && x->epi && x->epi->z)
                        fm_gemm_prefetch_rows_((const T *)x->epi->z + i0 * x->epi->rsz + jc + j0,
                                               (int64_t)sizeof(T) * x->epi->rsz, mr,
                                               sizeof(T) * (size_t)nr, 1);
                    if (half) {
                        for (int h = 0; h < 2; h++) {
                            const int hr = h ? mr - half : half;
                            const T *ah = as + h * half * rs;
                            T *ch_ = ct + h * half * x->rsc;
                            if (nk_h[h] < kc)
                                K->ukr_idx(hr, nr, nk_h[h], kidx_h[h], ah, rs, cs, bt, ldb, ch_,
                                           x->rsc, x->csc, x->alpha, beta_eff);
                            else
                                x->ukr(hr, nr, kc, ah, rs, cs, bt, ldb, ch_, x->rsc, x->csc,
                                       x->alpha, beta_eff);
                        }
                    } else if (nk < kc)
                        K->ukr_idx(mr, nr, nk, kl, as, rs, cs, bt, ldb, ct, x->rsc, x->csc,
                                   x->alpha, beta_eff);
                    else
                        x->ukr(mr, nr, kc, as, rs, cs, bt, ldb, ct, x->rsc, x->csc, x->alpha,
                               beta_eff);
                    if (last && x->epi)
                        FM_FN(fm_gemm_epi_tile)(x->epi, i0, mr, jc + j0, nr, ct, x->rsc, x->csc);
                }
            }
#ifdef _OPENMP
            if (nt > 1 && x->packb) {
#pragma omp barrier
            } /* the B block may be repacked */
#endif
        }
    }
}

/* Where sliver s (mr rows) of the panel path's current A block is read: the packed block ap, or
 * A in place from the block's first element ab. */
static const T *FM_FN(fm_gemm_sliver)(const FM_FN(fm_gemm_ctx) * x, const T *ap, const T *ab,
                                      int64_t s, int mr, int64_t kc, int64_t *rs, int64_t *cs) {
    if (x->packa) {
        *rs = 1, *cs = mr;
        return ap + s * x->K->mr * kc;
    }
    *rs = x->rsa, *cs = x->csa;
    return ab + s * x->K->mr * x->rsa;
}

/* Panel path: per column block and k block, the B block is packed into micro-panels of nr
 * columns (threads share the packing), then tasks (A block of panel_mc rows, micro-panel), A
 * block major, are spread over threads. A thread packs each A block it meets once (when A's
 * rows are not contiguous) and scans it for zero columns once; each micro-panel then stays in
 * L1 while every sliver of the block streams past it from L2. The tiles and k blocks are those
 * of the blocked path. */
static void FM_FN(fm_gemm_body_panels)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const KERNEL *K = x->K;
    const int64_t m = x->m, n = x->n, k = x->k, kcb = x->kcb, NC = x->ncb;
    const int MR = K->mr, NR = K->nr;
    const int64_t MC = K->panel_mc, n_mb = (m + MC - 1) / MC;
    const int64_t n_s_max = FM_FN(fm_gemm_panel_rows)(K, m) / MR;
    char *w = x->pws + (size_t)tid * x->p_bytes;
    T *ap = (T *)w;
    int32_t *kidx = (int32_t *)(w += fm_gemm_round_up_(sizeof(T) * (size_t)(n_s_max * MR * kcb),
                                                        FM_GEMM_ALIGN));
    int64_t *nks = (int64_t *)(w + fm_gemm_round_up_(sizeof(int32_t) * (size_t)(n_s_max * kcb),
                                                       FM_GEMM_ALIGN));
    int64_t jc, pc, task, lo, hi;
    for (jc = 0; jc < n; jc += NC) {
        const int64_t nc = FM_MIN(NC, n - jc), n_jp = (nc + NR - 1) / NR;
        for (pc = 0; pc < k; pc += kcb) {
            const int64_t kc = FM_MIN(kcb, k - pc);
            const int last = pc + kc >= k;
            const T beta_eff = pc == 0 ? x->beta : (T)1;
            int64_t packed_mb = -1, jp;
            FM_FN(fm_gemm_share)(n_jp, tid, nt, &lo, &hi);
            for (jp = lo; jp < hi; jp++)
                FM_FN(fm_gemm_pack_b)(K, (int)FM_MIN((int64_t)NR, nc - jp * NR), kc,
                                      x->b + pc * x->rsb + (jc + jp * NR) * x->csb, x->rsb, x->csb,
                                      x->bpack + jp * NR * kc);
#ifdef _OPENMP
            if (nt > 1) {
#pragma omp barrier
            } /* the whole B block is packed */
#endif
            FM_FN(fm_gemm_share)(n_mb * n_jp, tid, nt, &lo, &hi);
            for (task = lo; task < hi; task++) {
                const int64_t mb = task / n_jp, j0 = (task % n_jp) * NR;
                const int64_t i0 = mb * MC, mc = FM_MIN(MC, m - i0), n_s = (mc + MR - 1) / MR;
                const int nr = (int)FM_MIN((int64_t)NR, nc - j0);
                const T *bp = x->bpack + j0 * kc;
                const T *ab = x->a + i0 * x->rsa + pc * x->csa;
                int64_t s, rs, cs;
                if (mb != packed_mb) {
                    if (x->packa) FM_FN(fm_gemm_pack_a_block)(K, mc, kc, ab, x->rsa, x->csa, ap);
                    for (s = 0; s < n_s; s++) {
                        const int mr = (int)FM_MIN((int64_t)MR, mc - s * MR);
                        const T *as = FM_FN(fm_gemm_sliver)(x, ap, ab, s, mr, kc, &rs, &cs);
                        const int64_t nk =
                            x->zskip ? FM_FN(fm_gemm_scan)(K, mr, kc, as, rs, cs, kidx + s * kc) : kc;
                        /* the kept columns side by side: the kernel then reads A in one
                         * stream (skipped columns left gaps the prefetcher did not bridge) */
                        if (nk < kc && K->compact)
                            K->compact(mr, nk, kidx + s * kc, as, rs, cs, ap + s * MR * kc);
                        nks[s] = nk;
                    }
                    packed_mb = mb;
                }
                for (s = 0; s < n_s; s++) {
                    const int mr = (int)FM_MIN((int64_t)MR, mc - s * MR);
                    const T *as = FM_FN(fm_gemm_sliver)(x, ap, ab, s, mr, kc, &rs, &cs);
                    T *ct = x->c + (i0 + s * MR) * x->rsc + (jc + j0) * x->csc;
                    /* the epilogue's z rows of the next tile, read cold from L3 otherwise (a
                     * dX product's ReLU' at batch 1024: its loads stalled the epilogue) */
                    if (last && x->epi && x->epi->z && s + 1 < n_s) {
                        const T *zn = (const T *)x->epi->z + (i0 + (s + 1) * MR) * x->epi->rsz +
                                      jc + j0;
                        fm_gemm_prefetch_rows_(zn, (int64_t)sizeof(T) * x->epi->rsz,
                                               FM_MIN((int64_t)MR, mc - (s + 1) * MR),
                                               sizeof(T) * (size_t)nr, 1);
                    }
                    if (nks[s] < kc && K->compact)
                        K->ukr_idx_seq(mr, nr, nks[s], kidx + s * kc, ap + s * MR * kc, 1, mr, bp,
                                       NR, ct, x->rsc, x->csc, x->alpha, beta_eff);
                    else if (nks[s] < kc)
                        K->ukr_idx(mr, nr, nks[s], kidx + s * kc, as, rs, cs, bp, NR, ct, x->rsc,
                                   x->csc, x->alpha, beta_eff);
                    else
                        K->ukr(mr, nr, kc, as, rs, cs, bp, NR, ct, x->rsc, x->csc, x->alpha,
                               beta_eff);
                    if (last && x->epi)
                        FM_FN(fm_gemm_epi_tile)(x->epi, i0 + s * MR, mr, jc + j0, nr, ct, x->rsc,
                                                x->csc);
                }
            }
#ifdef _OPENMP
            if (nt > 1) {
#pragma omp barrier
            } /* the B block may be repacked */
#endif
        }
    }
}

/* Row path: A stored by columns (X^T of a weight gradient) whose rows have few non-zero k
 * (MNIST pixels across a batch: 19% non-zero, where 7 pixels together are non-zero about twice
 * as often). Each row of C is one wide tile over its own non-zero k, B read in place from L1 or
 * L2: per element one FMA chain over those k in increasing order, as in the blocked path's
 * zero-skipping tiles (one k block, checked by the caller). Threads take blocks of rows. */
static void FM_FN(fm_gemm_body_rows)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const KERNEL *K = x->K;
    const int64_t m = x->m, n = x->n, W = K->nr_small[1];
    /* C + alpha * 0 == C when beta == 1 and alpha < 0 (C + -0, the fused SGD update): a row
     * with no non-zero k (a pixel blank across the batch) is left alone */
    const int skip_empty = x->beta == 1 && x->alpha < 0;
    int32_t kidx[FM_GEMM_ROWS_BLOCK][FM_GEMM_ROWS_MAX_K];
    int64_t nk[FM_GEMM_ROWS_BLOCK], blk, lo, hi;
    FM_FN(fm_gemm_share)((m + FM_GEMM_ROWS_BLOCK - 1) / FM_GEMM_ROWS_BLOCK, tid, nt, &lo, &hi);
    for (blk = lo; blk < hi; blk++) {
        const int64_t i0 = blk * FM_GEMM_ROWS_BLOCK;
        const int rows = (int)FM_MIN((int64_t)FM_GEMM_ROWS_BLOCK, m - i0);
        K->nonzero_rows(rows, x->k, x->a + i0, x->csa, kidx, nk);
        for (int i = 0; i < rows; i++) {
            T *cr = x->c + (i0 + i) * x->rsc;
            if (nk[i] == 0 && skip_empty) continue;
            for (int64_t j0 = 0; j0 < n; j0 += W)
                K->ukr_idx(1, (int)FM_MIN(W, n - j0), nk[i], kidx[i], x->a + i0 + i, 1, x->csa,
                           x->b + j0, x->rsb, cr + j0 * x->csc, x->rsc, x->csc, x->alpha, x->beta);
        }
    }
}

/* Short-k path: with a few k per tile, writing C is most of a product, and 14-row tiles write
 * 14 rows' lines at once; 4-row wide tiles (B in place) go along 4 rows 4 lines at a time.
 * Blocks of 4 rows, spread over threads. Each element is one FMA chain along k, as in the
 * blocked path's full tiles. */
static void FM_FN(fm_gemm_body_short_k)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const int64_t m = x->m, n = x->n;
    /* rows per kernel call: blocks of 4 whose C stays in L1 (16 KiB) for the epilogue; in 16s
     * where 16 fit for A by columns, whose last columns kernel.short_k_rows may run as column
     * tiles of a vector of rows (40 rows of 100 floats ran as 16 + 16 + 8: 1024 x 100 x 32
     * A^T 0.94x instead of 1.02x) */
    const int64_t fit = (int64_t)(16384 / sizeof(T)) / n;
    const int64_t rows =
        fit >= 16 && x->rsa == 1 ? fit / 16 * 16 : FM_MAX((int64_t)4, fit / 4 * 4);
    int64_t lo, hi;
    FM_FN(fm_gemm_share)((m + 3) / 4, tid, nt, &lo, &hi);
    const int64_t end = FM_MIN(m, hi * 4);
    for (int64_t i0 = lo * 4; i0 < end; i0 += rows) {
        const int64_t mr = FM_MIN(rows, end - i0);
        T *ct = x->c + i0 * x->rsc;
        x->K->short_k_rows(mr, n, x->k, x->a + i0 * x->rsa, x->rsa, x->csa, x->b, x->rsb, ct,
                           x->rsc, x->csc, x->alpha, x->beta);
        if (x->epi) FM_FN(fm_gemm_epi_tile)(x->epi, i0, (int)mr, 0, n, ct, x->rsc, x->csc);
    }
}

/* Row-stream path (kernel.row_stream): one row of C, columns spread over threads in whole cache
 * lines, C accumulated in place 16 KiB at a time (in L1) over all of k; A's zero k skipped as
 * the blocked path skips them (fm_gemm_scan per k block). */
static void FM_FN(fm_gemm_body_row_stream)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const int64_t line = 64 / (int64_t)sizeof(T), chunk = 16384 / (int64_t)sizeof(T);
    int32_t kidx[FM_GEMM_KC_MAX];
    int64_t lo, hi;
    FM_FN(fm_gemm_share)((x->n + line - 1) / line, tid, nt, &lo, &hi);
    const int64_t je = FM_MIN(x->n, hi * line);
    for (int64_t j0 = lo * line; j0 < je; j0 += chunk) {
        const int64_t nc = FM_MIN(chunk, je - j0);
        T *ct = x->c + j0;
        memset(ct, 0, (size_t)nc * sizeof(T));
        for (int64_t pc = 0; pc < x->k; pc += FM_GEMM_KC_MAX) {
            const int64_t kc = FM_MIN((int64_t)FM_GEMM_KC_MAX, x->k - pc);
            const T *ap = x->a + pc * x->csa;
            const int64_t nk = kc >= 16 ? FM_FN(fm_gemm_scan)(x->K, 1, kc, ap, x->rsa, x->csa, kidx)
                                        : kc;
            x->K->row_stream(nc, nk, nk < kc ? kidx : NULL, ap, x->csa, x->b + pc * x->rsb + j0,
                             x->rsb, ct);
        }
        if (x->epi) FM_FN(fm_gemm_epi_tile)(x->epi, 0, 1, j0, nc, ct, x->rsc, 1);
    }
}

/* Dot-product path: A rows and B columns contiguous along k, few rows of C. No packing and no
 * k blocking: each element is one lane-wise FMA chain over the whole k and one horizontal sum. */
static void FM_FN(fm_gemm_body_dot)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const KERNEL *K = x->K;
    const int MD = K->dot_mr;
    const int64_t JW = 48; /* columns per task (spread over tiles of at most dot_nr[mr]) */
    const int64_t m = x->m, n = x->n;
    const int64_t n_ir = (m + MD - 1) / MD, n_ch = (n + JW - 1) / JW;
    /* columns per tile: at most dot_nr[mr], spread evenly over a chunk (n = 10 with 6-column
     * tiles: 5 + 5, no idle columns); worked out once for full chunks and once for the last, as
     * divisions per task cost as much as a short product */
    int step_of[2][5];
    int64_t task, lo, hi, ch, ir;
    for (int last = 0; last < 2; last++) {
        const int64_t w = last ? n - (n_ch - 1) * JW : JW;
        for (int r = 1; r <= MD; r++) {
            const int64_t ntile = (w + K->dot_nr[r] - 1) / K->dot_nr[r];
            step_of[last][r] = (int)((w + ntile - 1) / ntile);
        }
    }
    FM_FN(fm_gemm_share)(n_ch * n_ir, tid, nt, &lo, &hi);
    ch = lo / n_ir, ir = lo % n_ir;
    for (task = lo; task < hi; task++) {
        const int64_t i0 = ir * MD;
        const int mr = (int)FM_MIN((int64_t)MD, m - i0);
        const int64_t je = FM_MIN(n, (ch + 1) * JW);
        const int step = step_of[ch == n_ch - 1][mr];
        int64_t j0;
        for (j0 = ch * JW; j0 < je; j0 += step) {
            const int nr = (int)FM_MIN((int64_t)step, je - j0);
            T *ct = x->c + i0 * x->rsc + j0 * x->csc;
            K->dot(mr, nr, x->k, x->a + i0 * x->rsa, x->rsa, x->b + j0 * x->csb, x->csb, ct, x->rsc,
                   x->csc, x->alpha, x->beta);
            if (x->epi) FM_FN(fm_gemm_epi_tile)(x->epi, i0, mr, j0, nr, ct, x->rsc, x->csc);
        }
        if (++ir == n_ir) ir = 0, ch++;
    }
}

/* Vecdot path (kernel.vecdot): blocks of 8 rows, spread over threads. */
static void FM_FN(fm_gemm_body_vecdot)(const FM_FN(fm_gemm_ctx) * x, int tid, int nt) {
    const int64_t vl = x->K->nr / 2, n_blocks = (x->m + 7) / 8;
    int64_t lo, hi, blk;
    FM_FN(fm_gemm_share)(n_blocks, tid, nt, &lo, &hi);
    for (blk = lo; blk < hi; blk++) {
        const int64_t i0 = blk * 8;
        const int mr = (int)FM_MIN((int64_t)8, x->m - i0);
        T *ct = x->c + i0 * x->rsc;
        x->K->vecdot(mr, (int)(x->n - vl), x->k, x->a + i0 * x->rsa, x->rsa, x->b, x->rsb, x->bt,
                    x->ldt, ct, x->rsc, x->csc, x->alpha, x->beta);
        if (x->epi) FM_FN(fm_gemm_epi_tile)(x->epi, i0, mr, 0, x->n, ct, x->rsc, x->csc);
    }
}

static void FM_FN(fm_gemm_body_of)(const FM_FN(fm_gemm_ctx) * x, int path, int tid, int nt) {
    if (path == FM_GEMM_VECDOT)
        FM_FN(fm_gemm_body_vecdot)(x, tid, nt);
    else if (path == FM_GEMM_SHORT_K)
        FM_FN(fm_gemm_body_short_k)(x, tid, nt);
    else if (path == FM_GEMM_ROW_STREAM)
        FM_FN(fm_gemm_body_row_stream)(x, tid, nt);
    else if (path == FM_GEMM_DOT)
        FM_FN(fm_gemm_body_dot)(x, tid, nt);
    else if (path == FM_GEMM_PANELS)
        FM_FN(fm_gemm_body_panels)(x, tid, nt);
    else if (path == FM_GEMM_ROWS)
        FM_FN(fm_gemm_body_rows)(x, tid, nt);
    else
        FM_FN(fm_gemm_body)(x, tid, nt);
}

/* One parallel region (only when t > 1), each thread running its share. */
static void FM_FN(fm_gemm_run)(const FM_FN(fm_gemm_ctx) * x, int t, int path) {
#ifdef _OPENMP
    if (t > 1) {
#pragma omp parallel num_threads(t)
        FM_FN(fm_gemm_body_of)(x, path, omp_get_thread_num(), omp_get_num_threads());
        return;
    }
#else
    (void)t;
#endif
    FM_FN(fm_gemm_body_of)(x, path, 0, 1);
}

int FM_FN(fm_gemm_ex)(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa, int64_t csa,
                      const T *b, int64_t rsb, int64_t csb, T *c, int64_t rsc, int64_t csc,
                      T alpha, T beta, const fm_epilogue *epilogue, void *workspace,
                      size_t workspace_size, int n_threads) {
    FM_FN(fm_gemm_ctx) x;
    FM_FN(fm_gemm_plan) pl;
    const KERNEL *K;
    size_t need;
    void *mem = NULL;
    char *base;
    int swap, dot, panels;
    if (m < 0 || n < 0 || k < 0) return FM_ERR_ARG;
    if (epilogue && (epilogue->act < 0 || epilogue->act >= FM_ACT_COUNT_ ||
                     epilogue->act == FM_ACT_SOFTMAX))
        return FM_ERR_ARG;
    if (epilogue && epilogue->grad &&
        (epilogue->act != FM_ACT_RELU || epilogue->bias || !epilogue->z))
        return FM_ERR_ARG;
    if (m == 0 || n == 0) return FM_OK;
    if (k == 0 || alpha == 0) {
        FM_FN(fm_gemm_scale)(m, n, c, rsc, csc, beta, epilogue);
        return FM_OK;
    }
    /* the size promised by fm_gemm_workspace_size is what a caller's workspace must have */
    if (workspace && workspace_size < FM_FN(fm_gemm_workspace_size)(m, n, k, n_threads))
        return FM_ERR_WORKSPACE;
    K = FM_FN(fm_gemm_kernel_select)();
    /* threads for the paths that are not planned (the blocked path's plan counts the same) */
    const int run_threads = fm_threads_for(2.0 * (double)m * (double)n * (double)k, n_threads);
    /* one column of B (a GEMV) is by columns whatever its strides, and takes the dot path at
     * any m: its one-column tiles use every lane along k (the register tiles used one lane of
     * each FMA: a perceptron's or a Dense(1) head's forward) */
    dot = K->dot && csa == 1 && rsb == 1 && (csb != 1 || n == 1) &&
          (m <= FM_GEMM_DOT_MAX_M || n == 1) && (k >= FM_GEMM_DOT_MIN_K || m <= 3);
    /* A narrow B (n not a multiple of the vector width, e.g. 10 output units) would leave
     * vector lanes idle in the register tiles: transpose it (n x k, cheap) and take the dot
     * path, which uses every lane along k (with 4-row dot tiles, enough FMA chains). */
    memset(&x, 0, sizeof x);
    /* n = 10 doubles (Zen 4): 8 columns in place and only the last 2 transposed, both computed
     * on the same A rows (kernel.vecdot) */
    const int vecdot = K->vecdot && csa == 1 && csb == 1 && n > K->nr / 2 &&
                       n - K->nr / 2 <= 2 && k >= FM_GEMM_DOT_MIN_K && m >= FM_GEMM_VECDOT_MIN_M;
    if (vecdot || (!dot && K->dot_mr >= 4 && csa == 1 && n <= FM_GEMM_DOT_PACK_MAX_N &&
                  n % (K->nr / 2) != 0 && k >= FM_GEMM_DOT_MIN_K &&
                  m >= (K->narrow_min_m ? K->narrow_min_m : FM_GEMM_DOT_PACK_MIN_M))) {
        const int64_t ldt = (int64_t)fm_gemm_round_up_((size_t)k, 16);
        T *bt;
        int64_t j, p;
        base = fm_gemm_scratch_(workspace,
                                FM_FN(fm_gemm_bt_elems)(n, k) * sizeof(T) + FM_GEMM_ALIGN, &mem);
        if (!base) return FM_ERR_NOMEM;
        bt = (T *)base;
        if (vecdot)
            K->transpose_b(n - K->nr / 2, k, b + K->nr / 2, rsb, bt, ldt);
        else if (csb == 1 && K->transpose_b)
            K->transpose_b(n, k, b, rsb, bt, ldt);
        else
            for (p = 0; p < k; p++)
                for (j = 0; j < n; j++) bt[j * ldt + p] = b[p * rsb + j * csb];
        x.K = K;
        x.m = m, x.n = n, x.k = k;
        x.a = a, x.b = vecdot ? b : bt, x.c = c, x.bt = bt, x.ldt = ldt;
        x.rsa = rsa, x.csa = 1, x.rsb = vecdot ? rsb : 1, x.csb = vecdot ? 1 : ldt;
        x.rsc = rsc, x.csc = csc;
        x.alpha = alpha, x.beta = beta;
        x.epi = epilogue;
        FM_FN(fm_gemm_run)(&x, run_threads, vecdot ? FM_GEMM_VECDOT : FM_GEMM_DOT);
        free(mem);
        return FM_OK;
    }
    /* C^T = B^T A^T when that turns a column-major A into a row-contiguous B operand and saves
     * packing B or a narrow (n < nr) tile; never with an epilogue (it works on rows of C), nor
     * for a short k (tiles of C^T are stored by columns, which costs more than k = 1..15 FMAs). */
    swap = !dot && !epilogue && rsa == 1 && csa != 1 && m > n && k >= 16 &&
           (csb != 1 || n < K->nr);
    /* dZ W^T of a hidden layer at a batch of 17-64: B, the weights by columns, would be packed
     * whole (k x n) for a few slivers of rows; as C^T = W dZ^T only dZ^T (m x k) is packed,
     * but C^T's tiles span m rounded up to nr columns, so only where that adds less than a
     * quarter of a tile (m x 256 x 256 on a Zen 4 core, interleaved, 1 thread: AVX-512 float
     * m = 28 / 32 / 64 1.07 / 1.19-1.23 / 1.09x, 32 x 784 x 256 1.23x, double 32 / 64 1.18 /
     * 1.08x; AVX2 float 32 / 64 1.15 / 1.04x, double 32 1.10x; with 8 padded rows of 32 float
     * m = 24 and 56 lost 4%, with 15, m = 17, 23%). Tiles of C^T store by columns, so the
     * epilogue runs afterwards, over C's rows. */
    if (!dot && !swap && csa == 1 && rsb == 1 && csb != 1 && m <= FM_GEMM_SWAP_DZ_MAX_M &&
        n > m && k >= 16 && ((m + K->nr - 1) / K->nr * K->nr - m) * 4 < K->nr) {
        int status = FM_FN(fm_gemm_ex)(n, m, k, b, csb, rsb, a, csa, rsa, c, csc, rsc, alpha, beta,
                                       NULL, workspace, workspace_size, n_threads);
        if (status == FM_OK && epilogue)
            FM_FN(fm_gemm_epi_tile)(epilogue, 0, (int)m, 0, n, c, rsc, csc);
        return status;
    }
    if (swap) {
        const T *tp = a;
        int64_t ts;
        a = b;
        b = tp;
        ts = m, m = n, n = ts;
        ts = rsa, rsa = csb, csb = ts;
        ts = csa, csa = rsb, rsb = ts;
        ts = rsc, rsc = csc, csc = ts;
    }
    x.K = K;
    x.m = m, x.n = n, x.k = k;
    x.a = a, x.b = b, x.c = c;
    x.rsa = rsa, x.csa = csa, x.rsb = rsb, x.csb = csb, x.rsc = rsc, x.csc = csc;
    x.alpha = alpha, x.beta = beta;
    x.epi = epilogue;
    /* one row of C wider than one register tile (a batch-1 forward): B read once, whole rows */
    if (m == 1 && K->row_stream && csb == 1 && csc == 1 && alpha == 1 && beta == 0 &&
        n > K->nr_small[1]) {
        FM_FN(fm_gemm_run)(&x, run_threads, FM_GEMM_ROW_STREAM);
        return FM_OK;
    }
    /* less than a cache line of k per row of A (AVX-512 on a Zen 4 core, interleaved, against
     * 14-row tiles: dW1 784 x 256 x 2 float 1.35x, x 4 1.12x, double 1.00-1.18x; 4096 x 64 x 2
     * 1.28x / 1.17x; training MNIST at batch 4 / 8: float +9% / +8%, double +14% at 4), or up
     * to kernel.short_k_max where A has no zeros to skip (below). C by rows only: stored by
     * columns (C^T of a swapped product), 4-row tiles write pieces of 4 elements, and the
     * 14-row tiles ran 2-3x faster at k = 2-4 (256 x 256, 1024 x 64) and 1.1-1.7x at k = 32-64
     * (the output layer's dW, 256 x 10). Not beyond 64 k with B's rows aliasing in L1
     * (fm_gemm_rows_alias_: a layer of 1024 floats): 14-row tiles ran faster there, float
     * 256 x 1024 x 72-128 1.57-1.75x, 4096 x 1024 x 128 1.57x, 8 x 1024 x 128 1.38x (2
     * threads 0.95-1.16x); with B's rows 1040 floats apart the short-k path stays 1.09x ahead. */
    const size_t b_row_bytes =
        sizeof(T) * (csb == 1 ? (size_t)rsb : fm_gemm_round_up_((size_t)n, 16)); /* or B^T's copy */
    const int short_k_shape = K->short_k_rows && csc == 1 && m >= 4 && n >= K->nr_small[4] &&
                              k <= K->short_k_max && (k <= 64 || !fm_gemm_rows_alias_(b_row_bytes));
    const int short_k = short_k_shape && csb == 1;
    /* the zero scan costs about one load per k of a sliver; n >= 2 tiles amortize it */
    const int zscan = !dot && K->ukr_idx && k >= 16 && n >= 2 * K->nr;
    /* B by columns (dZ W^T of a 10-unit output layer) goes the same way where A is dense,
     * through a copy of B by rows (k x n, little next to m x n x k FMAs): m x 256 x 10 on a
     * Zen 4 core, against the 14-row tiles over packed B, interleaved: float 1.08-1.30x, double
     * 1.19-1.25x for m = 16-1024, 1.04-1.10x for m = 4-12. With zeros to skip it stays as is. */
    int short_k_bt = short_k_shape && !dot && K->transpose_b && rsb == 1 && csb != 1;
    if (short_k_bt && k * (int64_t)sizeof(T) >= 64 && zscan)
        short_k_bt = FM_FN(fm_gemm_zero_mode)(K, m, fm_gemm_kblock_(k, K->kc), a, rsa, csa, 1) ==
                     FM_GEMM_ZERO_DENSE;
    if (short_k_bt) {
        const int64_t ldb = (int64_t)fm_gemm_round_up_((size_t)n, 16);
        T *bt;
        base = fm_gemm_scratch_(
            workspace, FM_FN(fm_gemm_short_k_bt_elems)(n, k) * sizeof(T) + FM_GEMM_ALIGN, &mem);
        if (!base) return FM_ERR_NOMEM;
        bt = (T *)base;
        K->transpose_b(k, n, b, csb, bt, ldb); /* bt[p * ldb + j] = B[p, j] */
        x.b = bt, x.rsb = ldb, x.csb = 1;
        FM_FN(fm_gemm_run)(&x, run_threads, FM_GEMM_SHORT_K);
        free(mem);
        return FM_OK;
    }
    if (short_k && k * (int64_t)sizeof(T) < 64) {
        FM_FN(fm_gemm_run)(&x, run_threads, FM_GEMM_SHORT_K);
        return FM_OK;
    }
    /* (never after a swap: that needs csb != 1 or n < nr, the row path neither) */
    if (!dot && !epilogue && FM_FN(fm_gemm_rows_path)(K, m, n, k, a, rsa, csa, csb)) {
        FM_FN(fm_gemm_run)(&x, run_threads, FM_GEMM_ROWS);
        return FM_OK;
    }
    /* enough rows, columns and k that packing B costs little next to the product (256 x 256 x 10,
     * a dX of the output layer, runs faster blocked). Skipped zero columns of A leave gaps in
     * the B rows read, which the blocked path streams from L2 (MNIST 1024 x 256 x 784 gained
     * nothing from 57% skipped k there) but a micro-panel here has in L1 (1.5x). Only wide
     * products (n > 512) with row-contiguous A and m >= 512 stay blocked: 1024^3 and
     * 1024 x 784 x 256 ran 10% faster there on a Zen 3 core. */
    panels = !dot && K->panel_mc && m >= K->panel_min_m && n >= FM_GEMM_PANEL_MIN_N && k >= 16 &&
             (csa != 1 || m < FM_GEMM_PACKB_MIN_M || n <= FM_GEMM_PACKB_MIN_M);
    /* B by rows is packed from 128 rows on too when its rows are long (4000 bytes or more) and
     * do not start at the same offset in a cache line (1000 floats, 500 doubles: every other
     * row starts mid-line), over several k blocks. Read in place, such rows defeated the
     * hardware prefetcher: float 128 x 960 x 1024 (A^T) ran at 57 GFLOP/s with rows 4000 or
     * 4064 bytes apart, 83-86 at 3968 or 4032. AVX-512 on a Zen 4 core, interleaved, rows 4000
     * bytes apart: float 128 x 1000 x 1024 (A^T) 1.20-1.27x, 256 x 1000 x 512 1.14-1.18x,
     * double 256 x 500 x 512 1.12x, 200 x 500 x 1024 (A^T) 1.16-1.20x, 2 threads 1.05-1.32x;
     * below 128 rows or in one k block 0.96-1.02x. Rows a multiple of 64 bytes apart stay in
     * place (packed: 1.06x on one thread, 0.85-0.95x on two; the choice must not depend on
     * the thread count, as a sliver of 1-3 rows takes other tiles over packed B: other bits). */
    x.packb = !dot && !panels &&
              (fm_gemm_pack_b_(m, csb) || /* here B is by rows: b_row_bytes is its stride */
               (m >= 128 && k > K->kc && b_row_bytes >= 4000 && b_row_bytes % 64 != 0));
    /* a row-major A is packed too, by kernels that ask for it, when its rows alias in L1
     * (fm_gemm_rows_alias_), or when wide products (n >= 512,
     * each sliver used for 16+ tiles) take several k blocks: no 4 KiB-strided rows in L1 (AVX-512
     * on a Zen 4 core, best of 15: 1024^3 +6-20%, 512 x 1024 x 1024 +10-34%, 1024 x 512 x 1024
     * +12-16%; the AVX2 kernel there lost 8-16%); below 512 columns the packing costs more
     * (1024 x 256 x 784: -12%). A by columns (X^T of a weight gradient) is read in place, each
     * k's rows of a sliver contiguous, unless it takes several k blocks or is used for many tiles
     * (n >= 512): AVX-512 on a Zen 4 core, interleaved, 1 thread: 784 x 256 x 256 float 1.03-1.06x,
     * double 256 x 64 x 128 1.13-1.18x, 256 x 256 x 256 1.03x; MNIST training at batch 256
     * float +6-7% (2 threads +9%), double +4%; 1024 x 1024 x 256 packed (in place 0.92x) */
    x.packa = !dot && ((csa != 1 && (panels || rsa != 1 ||
                                     (m >= 64 && n >= 64 && (k > K->kc || n >= 512)))) ||
                       (csa == 1 && K->packa_rows && !panels &&
                        ((m >= FM_GEMM_PACKB_MIN_M && n >= FM_GEMM_PACKB_MIN_M && k > K->kc) ||
                         fm_gemm_rows_alias_((size_t)rsa * sizeof(T)))));
    x.zskip = zscan;
    if (x.zskip) { /* x.zsplit stays 0 otherwise (x was zeroed) */
        const int mode =
            FM_FN(fm_gemm_zero_mode)(K, m, fm_gemm_kblock_(k, K->kc), a, rsa, csa, csb == 1);
        x.zskip = mode != FM_GEMM_ZERO_DENSE;
        x.zsplit = mode == FM_GEMM_ZERO_SPLIT;
        x.zquarters = mode == FM_GEMM_ZERO_QUARTERS;
        /* the 4-row tiles read B in place, at any m: MNIST X W1 at batch 1024 ran 1.28x faster
         * than 14-row slivers over packed B */
        if (x.zquarters) x.packb = 0;
    }
    if (short_k && !x.zskip) {
        FM_FN(fm_gemm_run)(&x, run_threads, FM_GEMM_SHORT_K);
        return FM_OK;
    }
    /* X^T dZ of a narrow layer, computed as (dZ^T X)^T: X, the B here, is read once or twice
     * (one or two slivers of dZ^T) in rows that NumPy starts 16 bytes into a cache line
     * (kernel.ukr_stream). Float 784 x n x 4096 with X so placed ran at 0.27-0.41x of X at a
     * line start for n = 10-28, 0.81-1.0x with it. Not below 1 MiB of X (256 x 10 x 256 A^T,
     * in L2: 0.8x), nor for other products: a forward pass with misaligned weights of 1.6 MB
     * at batch 8-14 lost 20% (fastmlp's own weights and activations are aligned). */
    x.ukr = swap && m <= 2 * K->mr && (double)k * (double)n * sizeof(T) > FM_GEMM_STREAM_B_BYTES &&
                    K->ukr_stream
                ? K->ukr_stream
                : K->ukr;
    need = FM_FN(fm_gemm_plan_make)(&pl, K, m, n, k, x.packb || panels, n_threads);
    x.kcb = pl.kcb;
    x.ncb = pl.ncb;
    x.a_elems = x.packa ? pl.a_elems : 0;
    x.p_bytes = pl.p_bytes;
    x.bpack = x.apack = NULL;
    x.pws = NULL;
    if (x.packa || x.packb || panels) {
        base = fm_gemm_scratch_(workspace, need, &mem);
        if (!base) return FM_ERR_NOMEM;
        x.bpack = (T *)base;
        x.apack = (T *)base + pl.b_elems;
        x.pws = (char *)x.apack;
    }
    FM_FN(fm_gemm_run)(&x, pl.t, dot ? FM_GEMM_DOT : panels ? FM_GEMM_PANELS : FM_GEMM_BLOCKED);
    free(mem);
    return FM_OK;
}

int FM_FN(fm_gemm)(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa, int64_t csa,
                   const T *b, int64_t rsb, int64_t csb, T *c, int64_t rsc, int64_t csc, T alpha,
                   T beta, int n_threads) {
    return FM_FN(fm_gemm_ex)(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, alpha, beta, NULL,
                             NULL, 0, n_threads);
}

#undef KERNEL
#undef REF_MR
#undef REF_NR

#endif /* FM_GEMM_PASS */
