/* Standalone tests of fm_gemm_* against a naive triple loop with double accumulation.
 *
 * Build and run (from the repository root):
 *   gcc -O2 -fopenmp -Icsrc/include -Icsrc csrc/gemm*.c csrc/threads.c tests/c/test_gemm.c -lm \
 *       -o /tmp/test_gemm && /tmp/test_gemm
 * With the real activations, add csrc/activations.c and -DFM_TEST_REAL_ACT.
 * Options: -q (quick: smaller sweep, for valgrind), -v (print every failure).
 *
 * Each case checks, for every available micro-kernel (forced through fm_gemm_force_kernel) and
 * both dtypes: the values against the oracle within the rounding-error bound
 * 2 (k + 4) eps (|alpha| sum_p |a_ip b_pj| + |beta c_ij| + |bias_j|), that nothing outside the
 * C and z elements is written, that beta == 0 never reads C (C is NaN-filled), and, for the
 * threaded cases, bitwise equality of C across n_threads = 1, 2, 3, 7.
 * The last line reads "N passed, M failed"; the exit status is nonzero on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastmlp.h"
#include "gemm_internal.h"

#ifndef FM_TEST_REAL_ACT
/* Stand-in for csrc/activations.c: identity (y = param * z) and relu only. */
void fm_act_apply_f32(int64_t n, const float *z, float *y, int act, double param) {
    int64_t i;
    for (i = 0; i < n; i++)
        y[i] = act == FM_ACT_RELU ? (z[i] > 0 ? z[i] : 0) : (float)(param * z[i]);
}
void fm_act_apply_f64(int64_t n, const double *z, double *y, int act, double param) {
    int64_t i;
    for (i = 0; i < n; i++) y[i] = act == FM_ACT_RELU ? (z[i] > 0 ? z[i] : 0) : param * z[i];
}
#endif

#define SENTINEL 12345.0
/* bytes after a caller's workspace that must stay untouched */
#define FM_TEST_GUARD 4096

static int n_pass, n_fail, verbose;

/* ---- dtype-erased buffers ---- */
typedef struct {
    int dt; /* 0 float, 1 double */
    size_t n;
    void *p;
} buf;

static size_t esize(int dt) { return dt ? sizeof(double) : sizeof(float); }
static buf balloc(int dt, size_t n) {
    buf b;
    b.dt = dt;
    b.n = n ? n : 1;
    b.p = malloc(b.n * esize(dt));
    if (!b.p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return b;
}
static double bget(const buf *b, size_t i) {
    return b->dt ? ((double *)b->p)[i] : ((float *)b->p)[i];
}
static void bset(buf *b, size_t i, double v) {
    if (b->dt)
        ((double *)b->p)[i] = v;
    else
        ((float *)b->p)[i] = (float)v;
}
static void bfill(buf *b, double v) {
    size_t i;
    for (i = 0; i < b->n; i++) bset(b, i, v);
}

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* strides of an R x C operand: layout 0 row-major, 1 transposed (column-major), 2 general */
static void strides_for(int layout, int64_t R, int64_t C, int64_t *rs, int64_t *cs) {
    if (layout == 0) {
        *rs = C + 3;
        *cs = 1;
    } else if (layout == 1) {
        *rs = 1;
        *cs = R + 2;
    } else {
        *cs = 2;
        *rs = 2 * C + 3;
    }
}
static size_t extent(int64_t R, int64_t C, int64_t rs, int64_t cs) {
    if (R == 0 || C == 0) return 1;
    return (size_t)((R - 1) * rs + (C - 1) * cs + 1);
}

typedef struct {
    int dt;
    int64_t m, n, k;
    int la, lb;   /* layouts of A and B */
    int csc;      /* column stride of C (1, 2, 3) */
    double alpha, beta;
    int epi;      /* 0 none, 1 bias+z+relu, 2 bias+relu, 3 z+identity(param 2), 4 bias only,
                     5 the backward form: C where z > 0, else 0 (z read only) */
    int threads;  /* max n_threads for the determinism check (1 = none) */
    int use_ws;   /* caller-provided (misaligned) workspace */
} tcase;

static int call_gemm(const tcase *t, const buf *A, int64_t rsa, int64_t csa, const buf *B,
                     int64_t rsb, int64_t csb, buf *C, int64_t rsc, const fm_epilogue *e,
                     int n_threads, int *ws_checked) {
    void *ws = NULL;
    char *raw = NULL;
    size_t wsz = 0;
    int st;
    if (t->use_ws) {
        wsz = t->dt ? fm_gemm_workspace_size_f64(t->m, t->n, t->k, n_threads)
                    : fm_gemm_workspace_size_f32(t->m, t->n, t->k, n_threads);
        raw = malloc(wsz + 4 + FM_TEST_GUARD);
        ws = raw + 4; /* deliberately misaligned */
        memset(raw + 4 + wsz, 0xA5, FM_TEST_GUARD); /* nothing may be written past wsz */
        if (wsz > 0 && !*ws_checked) {
            /* too small a workspace is refused, and C is left alone */
            st = t->dt ? fm_gemm_ex_f64(t->m, t->n, t->k, A->p, rsa, csa, B->p, rsb, csb, C->p, rsc,
                                        t->csc, t->alpha, t->beta, e, ws, wsz - 1, n_threads)
                       : fm_gemm_ex_f32(t->m, t->n, t->k, A->p, rsa, csa, B->p, rsb, csb, C->p, rsc,
                                        t->csc, (float)t->alpha, (float)t->beta, e, ws, wsz - 1,
                                        n_threads);
            *ws_checked = 1;
            if (st != FM_ERR_WORKSPACE && t->k > 0 && t->alpha != 0) {
                free(raw);
                return -100;
            }
        }
    }
    if (t->use_ws || e) {
        st = t->dt ? fm_gemm_ex_f64(t->m, t->n, t->k, A->p, rsa, csa, B->p, rsb, csb, C->p, rsc,
                                    t->csc, t->alpha, t->beta, e, ws, wsz, n_threads)
                   : fm_gemm_ex_f32(t->m, t->n, t->k, A->p, rsa, csa, B->p, rsb, csb, C->p, rsc,
                                    t->csc, (float)t->alpha, (float)t->beta, e, ws, wsz, n_threads);
    } else {
        st = t->dt ? fm_gemm_f64(t->m, t->n, t->k, A->p, rsa, csa, B->p, rsb, csb, C->p, rsc,
                                 t->csc, t->alpha, t->beta, n_threads)
                   : fm_gemm_f32(t->m, t->n, t->k, A->p, rsa, csa, B->p, rsb, csb, C->p, rsc,
                                 t->csc, (float)t->alpha, (float)t->beta, n_threads);
    }
    if (raw) {
        for (size_t g = 0; g < FM_TEST_GUARD; g++)
            if ((unsigned char)raw[4 + wsz + g] != 0xA5) st = -101;
    }
    free(raw);
    return st;
}

static void report(int ok, const char *kern, const tcase *t, const char *what) {
    if (ok) {
        n_pass++;
        return;
    }
    n_fail++;
    if (verbose || n_fail <= 20)
        printf("FAIL [%s %s] m=%lld n=%lld k=%lld la=%d lb=%d csc=%d alpha=%g beta=%g epi=%d "
               "thr=%d ws=%d: %s\n",
               kern, t->dt ? "f64" : "f32", (long long)t->m, (long long)t->n, (long long)t->k,
               t->la, t->lb, t->csc, t->alpha, t->beta, t->epi, t->threads, t->use_ws, what);
}

static void run_case(const char *kern, const tcase *t) {
    const int dt = t->dt;
    const int64_t m = t->m, n = t->n, k = t->k;
    const double eps = dt ? 1.1102230246251565e-16 : 5.9604644775390625e-08;
    int64_t rsa, csa, rsb, csb, rsc, rsz = n + 3, i, j, p;
    buf A, B, C, C0, Z, Z0, bias;
    fm_epilogue e;
    const fm_epilogue *ep = NULL;
    char msg[200] = "";
    int ok = 1, st, ws_checked = 0;
    size_t s;
    double *ref = NULL, *bound = NULL;

    strides_for(t->la, m, k, &rsa, &csa);
    strides_for(t->lb, k, n, &rsb, &csb);
    rsc = n * t->csc + 5;
    A = balloc(dt, extent(m, k, rsa, csa));
    B = balloc(dt, extent(k, n, rsb, csb));
    C = balloc(dt, extent(m, n, rsc, t->csc) + 7);
    C0 = balloc(dt, C.n);
    Z = balloc(dt, (size_t)(m * rsz + 7));
    bias = balloc(dt, (size_t)n);
    for (s = 0; s < A.n; s++) bset(&A, s, urand());
    for (s = 0; s < B.n; s++) bset(&B, s, urand());
    for (s = 0; s < bias.n; s++) bset(&bias, s, urand());
    bfill(&C, SENTINEL);
    bfill(&Z, SENTINEL);
    if (t->epi == 5) /* the forward's pre-activations: signs mixed, some exact zeros */
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++) bset(&Z, (size_t)(i * rsz + j), (i + j) % 7 ? urand() : 0.0);
    Z0 = balloc(dt, Z.n);
    memcpy(Z0.p, Z.p, Z.n * esize(dt));
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++)
            bset(&C, (size_t)(i * rsc + j * t->csc), t->beta == 0 ? NAN : urand());
    memcpy(C0.p, C.p, C.n * esize(dt));

    if (t->epi) {
        e.bias = (t->epi == 1 || t->epi == 2 || t->epi == 4) ? bias.p : NULL;
        e.act = (t->epi == 1 || t->epi == 2) ? FM_ACT_RELU : FM_ACT_IDENTITY;
        e.act_param = t->epi == 3 ? 2.0 : 1.0;
        e.z = (t->epi == 1 || t->epi == 3 || t->epi == 5) ? Z.p : NULL;
        e.rsz = rsz;
        e.grad = t->epi == 5;
        if (t->epi == 5) e.act = FM_ACT_RELU;
        ep = &e;
    }

    /* oracle */
    ref = malloc(sizeof(double) * (size_t)(m * n + 1));
    bound = malloc(sizeof(double) * (size_t)(m * n + 1));
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double acc = 0, mag = 0, c0 = bget(&C0, (size_t)(i * rsc + j * t->csc));
            for (p = 0; p < k; p++) {
                double x = bget(&A, (size_t)(i * rsa + p * csa)) *
                           bget(&B, (size_t)(p * rsb + j * csb));
                acc += x;
                mag += fabs(x);
            }
            acc *= t->alpha;
            mag *= fabs(t->alpha);
            if (t->beta != 0) {
                acc += t->beta * c0;
                mag += fabs(t->beta * c0);
            }
            ref[i * n + j] = acc;
            bound[i * n + j] = mag;
        }

    st = call_gemm(t, &A, rsa, csa, &B, rsb, csb, &C, rsc, ep, 1, &ws_checked);
    if (st != FM_OK) {
        snprintf(msg, sizeof msg, "status %d", st);
        ok = 0;
    }
    /* values, z and untouched padding */
    for (i = 0; ok && i < m; i++)
        for (j = 0; ok && j < n; j++) {
            double v = ref[i * n + j], mag = bound[i * n + j], got, want, zw;
            if (ep && ep->bias) {
                v += bget(&bias, (size_t)j);
                mag += fabs(bget(&bias, (size_t)j));
            }
            zw = v;
            want = v;
            if (ep && ep->act == FM_ACT_RELU) want = v > 0 ? v : 0;
            if (ep && ep->grad) want = bget(&Z0, (size_t)(i * rsz + j)) > 0 ? v : 0;
            if (ep && ep->act == FM_ACT_IDENTITY) {
                want = ep->act_param * v;
                mag *= fabs(ep->act_param);
            }
            got = bget(&C, (size_t)(i * rsc + j * t->csc));
            if (!(fabs(got - want) <= 2.0 * (double)(k + 4) * eps * mag + 1e-300)) {
                snprintf(msg, sizeof msg, "C[%lld,%lld] = %.17g, want %.17g (bound %.3g)",
                         (long long)i, (long long)j, got, want, 2.0 * (double)(k + 4) * eps * mag);
                ok = 0;
            }
            if (ok && ep && ep->z && !ep->grad) {
                double zg = bget(&Z, (size_t)(i * rsz + j));
                double zm = bound[i * n + j] + (ep->bias ? fabs(bget(&bias, (size_t)j)) : 0);
                if (!(fabs(zg - zw) <= 2.0 * (double)(k + 4) * eps * zm + 1e-300)) {
                    snprintf(msg, sizeof msg, "z[%lld,%lld] = %.17g, want %.17g", (long long)i,
                             (long long)j, zg, zw);
                    ok = 0;
                }
            }
        }
    if (ok) { /* padding of C */
        for (s = 0; s < C.n && ok; s++) {
            int is_elem = 0;
            if (m > 0 && n > 0) {
                int64_t off = (int64_t)s;
                int64_t ii = off / rsc, rem = off % rsc;
                is_elem = ii < m && rem % t->csc == 0 && rem / t->csc < n;
            }
            if (!is_elem && bget(&C, s) != SENTINEL) {
                snprintf(msg, sizeof msg, "C padding written at offset %zu", s);
                ok = 0;
            }
        }
        if (ep && ep->grad && memcmp(Z.p, Z0.p, Z.n * esize(dt)) != 0) {
            snprintf(msg, sizeof msg, "z written by the backward form");
            ok = 0;
        }
        for (s = 0; s < Z.n && ok && !(ep && ep->grad); s++) { /* the memcmp covered it */
            int64_t off = (int64_t)s;
            int is_elem = ep && ep->z && off / rsz < m && off % rsz < n;
            if (!is_elem && bget(&Z, s) != SENTINEL) {
                snprintf(msg, sizeof msg, "z written at offset %zu", s);
                ok = 0;
            }
        }
    }
    report(ok, kern, t, msg);

    /* bitwise determinism across thread counts */
    if (t->threads > 1) {
        static const int thr[] = {2, 3, 7};
        buf C1 = balloc(dt, C.n);
        unsigned q;
        memcpy(C1.p, C.p, C.n * esize(dt));
        for (q = 0; q < sizeof thr / sizeof thr[0]; q++) {
            int same;
            memcpy(C.p, C0.p, C.n * esize(dt));
            st = call_gemm(t, &A, rsa, csa, &B, rsb, csb, &C, rsc, ep, thr[q], &ws_checked);
            same = st == FM_OK && memcmp(C.p, C1.p, C.n * esize(dt)) == 0;
            snprintf(msg, sizeof msg, "n_threads=%d differs from n_threads=1 (status %d)", thr[q],
                     st);
            report(same, kern, t, msg);
        }
        free(C1.p);
    }
    free(ref);
    free(bound);
    free(A.p);
    free(B.p);
    free(C.p);
    free(C0.p);
    free(Z.p);
    free(Z0.p);
    free(bias.p);
}

/* argument errors and the zero-size contract */
static void run_api_checks(void) {
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {NAN, NAN, NAN, NAN};
    double cd[4] = {5, 5, 5, 5};
    fm_epilogue bad = {NULL, FM_ACT_SOFTMAX, 1.0, NULL, 0, 0};
    fm_epilogue bad_grad = {NULL, FM_ACT_TANH, 1.0, c, 2, 1};
    tcase t = {0};
    int st;
    st = fm_gemm_f32(-1, 2, 2, a, 2, 1, b, 2, 1, c, 2, 1, 1, 0, 1);
    report(st == FM_ERR_ARG, "api", &t, "negative m");
    st = fm_gemm_f32(2, 2, -3, a, 2, 1, b, 2, 1, c, 2, 1, 1, 0, 1);
    report(st == FM_ERR_ARG, "api", &t, "negative k");
    st = fm_gemm_ex_f32(2, 2, 2, a, 2, 1, b, 2, 1, c, 2, 1, 1, 0, &bad, NULL, 0, 1);
    report(st == FM_ERR_ARG, "api", &t, "softmax epilogue");
    st = fm_gemm_ex_f32(2, 2, 2, a, 2, 1, b, 2, 1, c, 2, 1, 1, 0, &bad_grad, NULL, 0, 1);
    report(st == FM_ERR_ARG, "api", &t, "backward epilogue other than ReLU");
    st = fm_gemm_f32(0, 2, 2, a, 2, 1, b, 2, 1, c, 2, 1, 1, 0, 1);
    report(st == FM_OK && isnan(c[0]), "api", &t, "m = 0 touches C");
    st = fm_gemm_f64(2, 0, 2, NULL, 2, 1, NULL, 2, 1, cd, 2, 1, 1, 0, 1);
    report(st == FM_OK && cd[0] == 5, "api", &t, "n = 0 touches C");
    st = fm_gemm_f64(2, 2, 0, NULL, 0, 0, NULL, 0, 0, cd, 2, 1, 1, 0.5, 1);
    report(st == FM_OK && cd[0] == 2.5 && cd[3] == 2.5, "api", &t, "k = 0 scales C by beta");
    st = fm_gemm_f32(2, 2, 0, NULL, 0, 0, NULL, 0, 0, c, 2, 1, 1, 0, 1);
    report(st == FM_OK && c[0] == 0 && c[3] == 0, "api", &t, "k = 0, beta = 0 zeroes NaN C");
    report(fm_gemm_workspace_size_f32(0, 5, 5, 1) == 0, "api", &t, "workspace for m = 0");
    {
        /* dZ W^T may run as (W dZ^T)^T in the caller's workspace: sizes symmetric in m, n */
        const int64_t mnk[][3] = {{15, 16, 18}, {13, 14, 60}, {32, 300, 64}, {17, 1000, 60},
                                  {5, 700, 129}, {5, 16, 100000}};
        int sym = 1;
        for (unsigned q = 0; q < sizeof mnk / sizeof mnk[0]; q++)
            for (int nt = 1; nt <= 2; nt++)
                sym &= fm_gemm_workspace_size_f32(mnk[q][0], mnk[q][1], mnk[q][2], nt) ==
                           fm_gemm_workspace_size_f32(mnk[q][1], mnk[q][0], mnk[q][2], nt) &&
                       fm_gemm_workspace_size_f64(mnk[q][0], mnk[q][1], mnk[q][2], nt) ==
                           fm_gemm_workspace_size_f64(mnk[q][1], mnk[q][0], mnk[q][2], nt);
        report(sym, "api", &t, "workspace size symmetric in m and n");
    }
    report(fm_gemm_kernel_name_f32() != NULL && fm_gemm_kernel_name_f64() != NULL, "api", &t,
           "names");
    report(fm_gemm_force_kernel("no-such-kernel") == -1, "api", &t, "unknown kernel name");
}

int main(int argc, char **argv) {
    static const char *kernels[] = {"reference", "avx2", "avx512"};
    int quick = 0, a;
    unsigned kq;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-q") == 0) quick = 1;
        if (strcmp(argv[a], "-v") == 0) verbose = 1;
    }
    printf("auto kernels: f32 %s, f64 %s\n", fm_gemm_kernel_name_f32(), fm_gemm_kernel_name_f64());
    run_api_checks();

    for (kq = 0; kq < sizeof kernels / sizeof kernels[0]; kq++) {
        const char *kern = kernels[kq];
        int dt;
        if (!fm_gemm_kernel_available(kern) || fm_gemm_force_kernel(kern) != 0) {
            printf("kernel %s: not available here, skipped\n", kern);
            continue;
        }
        for (dt = 0; dt < 2; dt++) {
            const int MR = dt ? fm_gemm_kernel_select_f64()->mr : fm_gemm_kernel_select_f32()->mr;
            const int NR = dt ? fm_gemm_kernel_select_f64()->nr : fm_gemm_kernel_select_f32()->nr;
            const int KC = dt ? fm_gemm_kernel_select_f64()->kc : fm_gemm_kernel_select_f32()->kc;
            const int64_t ms[] = {1, 2, 3, 4, MR - 1, MR, MR + 1, 2 * MR + 3, 37};
            const int64_t ns[] = {1, 2, 10, NR - 1, NR, NR + 1, 3 * NR + 5, 8 * NR + 3, 131};
            const int64_t ks[] = {1, 2, 5, 17, KC - 1, KC, KC + 1, 2 * KC + 9};
            static const double ab[][2] = {{1, 0}, {1, 1}, {-0.5, 2}, {2, 0}, {1, -1}, {0.25, 0.5}};
            unsigned im, in, ik, idx = 0;
            const unsigned nm = sizeof ms / sizeof ms[0], nn = sizeof ns / sizeof ns[0];
            const unsigned nk = quick ? 4 : sizeof ks / sizeof ks[0];
            /* sweep: every m x n x k, cycling layouts, C strides, alpha/beta and epilogues */
            for (im = 0; im < nm; im++)
                for (in = 0; in < nn; in++)
                    for (ik = 0; ik < nk; ik++, idx++) {
                        tcase t;
                        if (quick && (idx % 5) != 0) continue;
                        t.dt = dt;
                        t.m = ms[im];
                        t.n = ns[in];
                        t.k = ks[quick ? (ik + idx) % 4 : ik];
                        t.la = (int)(idx % 3);
                        t.lb = (int)((idx / 3) % 3);
                        t.csc = idx % 7 == 0 ? 3 : 1;
                        t.alpha = ab[idx % 6][0];
                        t.beta = ab[idx % 6][1];
                        t.epi = (int)((idx / 2) % 6);
                        t.threads = idx % 11 == 0 ? 7 : 1;
                        t.use_ws = idx % 4 == 1;
                        run_case(kern, &t);
                    }
            /* every row count of an edge tile, with narrow, half and full column tiles */
            {
                const int64_t nn2[] = {3, NR / 2 + 1, NR, 2 * NR + 1};
                int64_t mm;
                unsigned q;
                for (mm = 1; mm <= MR + 1; mm++)
                    for (q = 0; q < sizeof nn2 / sizeof nn2[0]; q++) {
                        tcase t = {dt, MR + mm, nn2[q], 9, (int)(mm % 3), (int)(q % 2), 1,
                                   1.0, 0.5, 0, 1, 0};
                        run_case(kern, &t);
                        t.m = mm;
                        t.beta = 0;
                        run_case(kern, &t);
                    }
            }
            /* all four transpose combinations, C column strides 1 and 2, every epilogue */
            {
                /* blocked, dot (m <= 16, B^T), narrow n (dot with B^T packed, m >= 128),
                 * swapped (A^T) */
                const int64_t shapes[][3] = {{MR + 1, NR + 3, KC + 2}, {3 * MR, 2 * NR, 33},
                                             {1, 200, 100}, {16, 40, 100}, {64, 10, 256},
                                             {130, 10, 256}, {70, 256, 50}, {100, 7, 100}};
                unsigned s;
                int la, lb, csc, epi;
                for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                    for (la = 0; la < 2; la++)
                        for (lb = 0; lb < 2; lb++)
                            for (csc = 1; csc <= 2; csc++)
                                for (epi = 0; epi < 6; epi++) {
                                    tcase t = {dt,  shapes[s][0], shapes[s][1], shapes[s][2],
                                               la,  lb,           csc,          1.5,
                                               epi % 2 ? 0.0 : -1.0,        epi, 1, epi == 2};
                                    if (quick && (epi + csc) % 3 != 0) continue;
                                    t.threads = (epi == 1 && !quick) ? 7 : 1;
                                    run_case(kern, &t);
                                }
            }
            /* zero sizes through the full driver, with epilogues (k = 0: C := act(beta C + b)) */
            {
                const int64_t z[][3] = {{0, 5, 5}, {5, 0, 5}, {5, 7, 0}, {0, 0, 0},
                                        {MR + 1, NR + 1, 0}};
                unsigned s;
                for (s = 0; s < sizeof z / sizeof z[0]; s++) {
                    tcase t = {dt, z[s][0], z[s][1], z[s][2], 0, 1, 2, 1.0, 0.5, 1, 1, 0};
                    run_case(kern, &t);
                    t.beta = 0;
                    t.epi = 3;
                    t.csc = 1;
                    run_case(kern, &t);
                }
            }
            /* alpha = 0 with NaN C and beta = 0: C := 0 */
            {
                tcase t = {dt, 9, 9, 9, 0, 0, 1, 0.0, 0.0, 0, 1, 0};
                run_case(kern, &t);
            }
            /* large and multi-block shapes, threaded (bitwise determinism) */
            if (!quick) {
                const int64_t big[][5] = {
                    /* m, n, k, la, lb */
                    {517, 263, 1031, 0, 0},
                    {517, 263, 1031, 1, 1},
                    {257, 1100, 300, 0, 1},  /* B packed, several column blocks */
                    {1600, 40, 30, 0, 0},    /* tall: B packed although row-major */
                    {1601, 33, 7, 1, 0},
                    {784, 256, 64, 1, 0},    /* the MLP dW shape (A transposed) */
                    {32, 784, 256, 0, 1},    /* the MLP dX shape (B transposed) */
                    {1, 256, 784, 0, 0},     /* batch 1 forward */
                    {3, 257, 100, 2, 2},
                    {300, 10, 256, 0, 0},    /* the output layer: dot with B^T packed */
                    {130, 15, 64, 0, 1},
                    {256, 10, 64, 1, 0},     /* its dW: swapped (C^T = B^T A^T) */
                    {64, 784, 256, 0, 1},    /* dX: dot path at its largest m */
                    {301, 256, 10, 0, 1},    /* the output layer's dX: B^T copied by rows */
                    {300, 1000, 64, 0, 1},   /* (C by columns: not copied) */
                    {40, 70, 129, 1, 1},     /* (float k past short_k_max: not copied) */
                    {300, 1000, 64, 0, 1},   /* a copy wider than a B block, in the workspace */
                };
                unsigned s;
                for (s = 0; s < sizeof big / sizeof big[0]; s++) {
                    tcase t = {dt, big[s][0], big[s][1], big[s][2], (int)big[s][3], (int)big[s][4],
                               s % 3 == 2 ? 2 : 1, 1.0, s % 2 ? 0.0 : 0.75, (int)(s % 5), 7,
                               s % 2 == 0};
                    run_case(kern, &t);
                }
            }
        }
    }
    fm_gemm_force_kernel(NULL);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
