/* GEMM driver, BLIS structure: C := alpha*A*B + beta*C with arbitrary element strides.
 *
 * Loops (outer to inner):
 *   jc  columns of C in blocks of nc           B block kc x nc packed once (L2), or used in place
 *   pc  k in blocks of at most kc (balanced)    never split across threads
 *   task = (column chunk of jw, row sliver of mr), spread over threads (static schedule):
 *        pack the A sliver (mr x kc, L1), then
 *   jr  register tiles across the chunk          micro-kernel; after the last pc: epilogue
 *
 * B is used in place (no packing) when its rows are contiguous (csb == 1) and the problem is not
 * large enough for packing to pay: the layer shapes of an MLP then skip the B pack entirely.
 * Every blocking decision depends on the shape and strides only, never on n_threads, and threads
 * only split C, so results are bitwise identical for any thread count.
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

static size_t fm_gemm_round_up_(size_t x, size_t to) { return (x + to - 1) / to * to; }

#define FM_GEMM_ALIGN 64

/* Balanced k blocks: as few blocks as kc_max allows, of nearly equal size (a multiple of 8). */
static int64_t fm_gemm_kblock_(int64_t k, int kc_max) {
    int64_t nkb, kcb;
    if (k <= kc_max) return k;
    nkb = (k + kc_max - 1) / kc_max;
    kcb = (k + nkb - 1) / nkb;
    kcb = (kcb + 7) / 8 * 8;
    return kcb > kc_max ? kc_max : kcb;
}

/* B in place when rows are contiguous and m is small enough that each B element is reused from
 * L2 a few times only; above that, packing pays (contiguous micro-panels, no TLB or set
 * conflicts). Depends on the shape and strides only. */
#define FM_GEMM_PACKB_MIN_M 1536

static int fm_gemm_pack_b_(int64_t m, int64_t n, int64_t k, int64_t csb) {
    (void)n;
    (void)k;
    if (csb != 1) return 1;
    return m >= FM_GEMM_PACKB_MIN_M;
}

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

static void FM_FN(fm_gemm_ref_ukr)(int mr, int nr, int64_t kc, const T *a, const T *b, int64_t ldb,
                                   T *c, int64_t rsc, int64_t csc, T alpha, T beta) {
    T ab[REF_MR][REF_NR];
    int i, j;
    int64_t p;
    for (i = 0; i < REF_MR; i++)
        for (j = 0; j < REF_NR; j++) ab[i][j] = 0;
    if (mr == REF_MR && nr == REF_NR) {
        for (p = 0; p < kc; p++) {
            const T *ap = a + p * REF_MR, *bp = b + p * ldb;
            for (i = 0; i < REF_MR; i++)
                for (j = 0; j < REF_NR; j++) ab[i][j] += ap[i] * bp[j];
        }
    } else {
        for (p = 0; p < kc; p++) {
            const T *ap = a + p * mr, *bp = b + p * ldb;
            for (i = 0; i < mr; i++)
                for (j = 0; j < nr; j++) ab[i][j] += ap[i] * bp[j];
        }
    }
    for (i = 0; i < mr; i++) {
        T *cr = c + i * rsc;
        if (beta == 0) {
            for (j = 0; j < nr; j++) cr[j * csc] = alpha * ab[i][j];
        } else {
            for (j = 0; j < nr; j++) cr[j * csc] = alpha * ab[i][j] + beta * cr[j * csc];
        }
    }
}

const KERNEL FM_FN(fm_gemm_ref) = {"reference", REF_MR, REF_NR, {0, REF_NR, REF_NR, REF_NR},
                                   256, 1024, 8 * REF_NR, FM_FN(fm_gemm_ref_ukr)};

const KERNEL *FM_FN(fm_gemm_kernel_select)(void);
const KERNEL *FM_FN(fm_gemm_kernel_select)(void) {
    switch (fm_gemm_kind_()) {
#if FM_GEMM_X86
    case FM_GK_AVX512:
        return &FM_FN(fm_gemm_avx512);
    case FM_GK_AVX2:
        return &FM_FN(fm_gemm_avx2);
#endif
    default:
        return &FM_FN(fm_gemm_ref);
    }
}

const char *FM_FN(fm_gemm_kernel_name)(void) { return FM_FN(fm_gemm_kernel_select)()->name; }

/* ---- packing ---- */

/* A sliver rows [0, mr) x k [0, kc) of a (already offset) into ap[p*mr + i]. */
static void FM_FN(fm_gemm_pack_a)(int mr, int64_t kc, const T *restrict a, int64_t rsa, int64_t csa,
                                  T *restrict ap) {
    int64_t p;
    int i;
    if (csa == 1) {
        for (i = 0; i < mr; i++) {
            const T *ar = a + i * rsa;
            for (p = 0; p < kc; p++) ap[p * mr + i] = ar[p];
        }
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

/* B micro-panel k [0, kc) x columns [0, nr) into bp[p*NR + j], zero-padded to NR columns. */
static void FM_FN(fm_gemm_pack_b)(int NR, int nr, int64_t kc, const T *restrict b, int64_t rsb,
                                  int64_t csb, T *restrict bp) {
    int64_t p;
    int j;
    if (csb == 1) {
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
    int t;           /* threads */
} FM_FN(fm_gemm_plan);

static size_t FM_FN(fm_gemm_plan_make)(FM_FN(fm_gemm_plan) * pl, int64_t m, int64_t n, int64_t k,
                                       int packb, int n_threads) {
    const KERNEL *K = FM_FN(fm_gemm_kernel_select)();
    pl->K = K;
    pl->kcb = fm_gemm_kblock_(k, K->kc);
    pl->ncb = packb ? (int64_t)fm_gemm_round_up_((size_t)FM_MIN(n, (int64_t)K->nc), (size_t)K->nr) : 0;
    pl->a_elems = fm_gemm_round_up_((size_t)K->mr * (size_t)pl->kcb, FM_GEMM_ALIGN / sizeof(T));
    pl->b_elems = fm_gemm_round_up_((size_t)pl->ncb * (size_t)pl->kcb, FM_GEMM_ALIGN / sizeof(T));
    pl->t = fm_threads_for(2.0 * (double)m * (double)n * (double)k, n_threads);
    return (pl->b_elems + (size_t)pl->t * pl->a_elems) * sizeof(T) + FM_GEMM_ALIGN;
}

size_t FM_FN(fm_gemm_workspace_size)(int64_t m, int64_t n, int64_t k, int n_threads) {
    FM_FN(fm_gemm_plan) pl;
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    /* strides are unknown here: count the B pack, which only strided B needs */
    return FM_FN(fm_gemm_plan_make)(&pl, m, n, k, 1, n_threads);
}

/* ---- the blocked product ---- */

static void FM_FN(fm_gemm_run)(const FM_FN(fm_gemm_plan) * pl, int64_t m, int64_t n, int64_t k,
                               const T *a, int64_t rsa, int64_t csa, const T *b, int64_t rsb,
                               int64_t csb, T *c, int64_t rsc, int64_t csc, T alpha, T beta,
                               const fm_epilogue *epi, T *bpack, T *apack_all, int packb) {
    const KERNEL *K = pl->K;
    const int MR = K->mr, NR = K->nr, JW = K->jw;
    const int64_t kcb = pl->kcb;
    const int64_t NC = packb ? pl->ncb : (int64_t)fm_gemm_round_up_((size_t)n, (size_t)JW);
    const int64_t n_ir = (m + MR - 1) / MR;
#ifdef _OPENMP
#pragma omp parallel num_threads(pl->t) if (pl->t > 1)
#endif
    {
        int tid = 0;
        int64_t jc, pc;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        T *apack = apack_all + (size_t)tid * pl->a_elems;
        for (jc = 0; jc < n; jc += NC) {
            const int64_t nc = FM_MIN(NC, n - jc);
            const int64_t n_jp = (nc + NR - 1) / NR;
            const int64_t n_ch = (nc + JW - 1) / JW;
            for (pc = 0; pc < k; pc += kcb) {
                const int64_t kc = FM_MIN(kcb, k - pc);
                const int last = pc + kc >= k;
                const T beta_eff = pc == 0 ? beta : (T)1;
                const T *bblk;
                int64_t ldb, task;
                if (packb) {
                    int64_t jp;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                    for (jp = 0; jp < n_jp; jp++) {
                        int nr = (int)FM_MIN((int64_t)NR, nc - jp * NR);
                        FM_FN(fm_gemm_pack_b)(NR, nr, kc, b + pc * rsb + (jc + jp * NR) * csb,
                                              rsb, csb, bpack + jp * NR * kc);
                    }
                    /* implicit barrier: the whole B block is packed */
                    bblk = bpack;
                    ldb = NR;
                } else {
                    bblk = b + pc * rsb + jc;
                    ldb = rsb;
                }
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (task = 0; task < n_ch * n_ir; task++) {
                    const int64_t ch = task / n_ir, ir = task % n_ir;
                    const int64_t i0 = ir * MR;
                    const int mr = (int)FM_MIN((int64_t)MR, m - i0);
                    const int64_t je = FM_MIN(nc, (ch + 1) * JW);
                    const int step = (!packb && mr <= 3) ? K->nr_small[mr] : NR;
                    int64_t j0;
                    FM_FN(fm_gemm_pack_a)(mr, kc, a + i0 * rsa + pc * csa, rsa, csa, apack);
                    for (j0 = ch * JW; j0 < je; j0 += step) {
                        const int nr = (int)FM_MIN((int64_t)step, je - j0);
                        const T *bt = packb ? bblk + (j0 / NR) * NR * kc : bblk + j0;
                        T *ct = c + i0 * rsc + (jc + j0) * csc;
                        K->ukr(mr, nr, kc, apack, bt, ldb, ct, rsc, csc, alpha, beta_eff);
                        if (last && epi) {
                            int i;
                            for (i = 0; i < mr; i++)
                                FM_FN(fm_gemm_epi_row)(epi, i0 + i, jc + j0, nr, ct + i * rsc, csc);
                        }
                    }
                }
                /* implicit barrier: the B block may be repacked */
            }
        }
    }
}

int FM_FN(fm_gemm_ex)(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa, int64_t csa,
                      const T *b, int64_t rsb, int64_t csb, T *c, int64_t rsc, int64_t csc,
                      T alpha, T beta, const fm_epilogue *epilogue, void *workspace,
                      size_t workspace_size, int n_threads) {
    FM_FN(fm_gemm_plan) pl;
    size_t need;
    void *mem = NULL;
    char *base;
    int packb;
    if (m < 0 || n < 0 || k < 0) return FM_ERR_ARG;
    if (epilogue && (epilogue->act < 0 || epilogue->act >= FM_ACT_COUNT_ ||
                     epilogue->act == FM_ACT_SOFTMAX))
        return FM_ERR_ARG;
    if (m == 0 || n == 0) return FM_OK;
    if (k == 0 || alpha == 0) {
        FM_FN(fm_gemm_scale)(m, n, c, rsc, csc, beta, epilogue);
        return FM_OK;
    }
    packb = fm_gemm_pack_b_(m, n, k, csb);
    need = FM_FN(fm_gemm_plan_make)(&pl, m, n, k, packb, n_threads);
    if (workspace) {
        /* the size promised by fm_gemm_workspace_size (B pack counted) is what we ask for */
        if (workspace_size < FM_FN(fm_gemm_workspace_size)(m, n, k, n_threads)) return FM_ERR_WORKSPACE;
        base = (char *)workspace;
    } else {
        mem = malloc(need);
        if (!mem) return FM_ERR_NOMEM;
        base = (char *)mem;
    }
    base += (FM_GEMM_ALIGN - (uintptr_t)base % FM_GEMM_ALIGN) % FM_GEMM_ALIGN;
    FM_FN(fm_gemm_run)(&pl, m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, alpha, beta, epilogue,
                       (T *)base, (T *)base + pl.b_elems, packb);
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
