/* Activation kernels for one dtype; included by activations.c with T and FM_SUFFIX defined. */

/* c[0] + x (c[1] + x (c[2] + ...)) over the n coefficients of a constant array: unrolled, so
 * the activations' loops stay vector code */
#ifndef FM_POLY
#define FM_POLY(c, x) FM_FN(horner)(c, (int)(sizeof(c) / sizeof((c)[0])), x)
#endif
static inline T FM_FN(horner)(const T *c, int n, T x) {
    T q = c[n - 1];
#pragma GCC unroll 28
    for (int i = n - 2; i >= 0; i--) q = c[i] + x * q;
    return q;
}

/* expm1(r) for y's reduced r, and 2^(k+64) in *scale (see activations.c) */
static inline T FM_FN(expm1_reduced)(T y, T *scale) {
    const T yc = y < EXP_MIN ? EXP_MIN : y;
    EXP_BITS t, s;
    t.f = yc * EXP_INV_LN2 + EXP_SHIFT;
    const T k = t.f - EXP_SHIFT;
    const T r = (yc - k * EXP_LN2_HI) - k * EXP_LN2_LO;
    s.u = (t.u + EXP_BIAS + 64u) << EXP_MANT;
    *scale = s.f;
    return r + r * r * FM_POLY(EXPM1_C, r);
}

/* exp(y) and expm1(y), y <= 0 */
static inline T FM_FN(exp_neg)(T y) {
    T scale;
    const T p = FM_FN(expm1_reduced)(y, &scale);
    return y < EXP_MIN ? (T)0 : scale * ((T)1 + p) * (T)0x1p-64;
}
static inline T FM_FN(expm1_neg)(T y) {
    T scale;
    const T p = FM_FN(expm1_reduced)(y, &scale);
    scale *= (T)0x1p-64;
    return y < EXP_MIN ? (T)-1 : scale * p + (scale - (T)1);
}

static inline T FM_FN(sigmoid_scalar)(T x) {
    /* exp(-|x|) never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below */
    const T e = FM_FN(exp_neg)(-FABS(x));
    return (x >= 0 ? (T)1 : e) / ((T)1 + e);
}

/* tanh |x| = (1 - e^-2|x|) / (1 + e^-2|x|) = -m / (2 + m), m = expm1(-2|x|): no cancellation */
static inline T FM_FN(tanh_scalar)(T x) {
    const T m = FM_FN(expm1_neg)((T)-2 * FABS(x));
    return COPYSIGN(-m / ((T)2 + m), x);
}

/* log1p(u), 0 <= u <= 1 (see activations.c) */
static inline T FM_FN(log1p_unit)(T u) {
    const T w = (T)1 + u;
    const T rounding = (u - (w - (T)1)) / w; /* log1p(u) = log(w) + rounding, to first order */
    const int upper = w > (T)FM_SQRT2;
    const T f = upper ? (T)0.5 * w : w, k = upper ? (T)1 : (T)0;
    const T g = f - (T)1, s = g / (f + (T)1), s2 = s * s;
    const T log_f = g - s * (g - s2 * FM_POLY(LOG1P_C, s2));
    return ((k * EXP_LN2_LO + rounding) + log_f) + k * EXP_LN2_HI;
}

static inline T FM_FN(softplus_scalar)(T x) {
    /* log(1+exp(x)) = max(x,0) + log1p(exp(-|x|)), exact and overflow-free */
    return (x > 0 ? x : (T)0) + FM_FN(log1p_unit)(FM_FN(exp_neg)(-FABS(x)));
}

/* Phi(z), the standard normal CDF, and exp(-z^2/2) in *gauss (see activations.c) */
static inline T FM_FN(normal_cdf)(T z, T *gauss) {
    const T az = FABS(z);
    EXP_BITS h;
    h.f = az;
    h.u &= NCDF_HIGH_BITS;
    const T gauss_hi = FM_FN(exp_neg)((T)-0.5 * h.f * h.f);
    const T gauss_lo_arg = (T)-0.5 * (az - h.f) * (az + h.f);
    const T tau = (T)1 / ((T)1 + (T)NCDF_Q * az), u = tau * NCDF_UA - NCDF_UB;
    const T log_ratio = (T)NCDF_Q * az * tau * FM_POLY(NCDF_C, u);
    *gauss = gauss_hi * FM_FN(exp_neg)(gauss_lo_arg);
    /* Phi(-|z|) = erfc(|z| / sqrt 2) / 2 */
    const T half_erfc = (T)0.5 * tau * gauss_hi * FM_FN(exp_neg)(gauss_lo_arg + log_ratio);
    const T tail = az > NCDF_ZMAX ? (T)0 : half_erfc;
    return z > 0 ? (T)1 - tail : tail;
}

FM_CLONES void FM_FN(fm_act_apply)(int64_t n, const T *z, T *y, int act, double param) {
    const T p = (T)param;
    int64_t i;
    switch (act) {
    case FM_ACT_IDENTITY:
        if (p == (T)1) { if (y != z) for (i = 0; i < n; i++) y[i] = z[i]; }
        else for (i = 0; i < n; i++) y[i] = p * z[i];
        break;
    case FM_ACT_STEP:
        FM_SIMD
        for (i = 0; i < n; i++) y[i] = z[i] >= p ? (T)1 : (T)0;
        break;
    case FM_ACT_SIGN:
        FM_SIMD
        for (i = 0; i < n; i++) y[i] = (T)((z[i] > 0) - (z[i] < 0));
        break;
    case FM_ACT_SIGMOID: {
        const T inv_t = (T)1 / p;
        FM_SIMD
        for (i = 0; i < n; i++) y[i] = FM_FN(sigmoid_scalar)(z[i] * inv_t);
        break;
    }
    case FM_ACT_TANH:
        FM_SIMD
        for (i = 0; i < n; i++) y[i] = FM_FN(tanh_scalar)(z[i]);
        break;
    case FM_ACT_RELU:
        FM_SIMD
        for (i = 0; i < n; i++) {
            const T v = z[i];
            y[i] = v > 0 ? v : (T)0;
        }
        break;
    case FM_ACT_LEAKY_RELU:
        FM_SIMD
        for (i = 0; i < n; i++) {
            const T v = z[i];
            y[i] = v > 0 ? v : p * v;
        }
        break;
    case FM_ACT_ELU:
        FM_SIMD
        for (i = 0; i < n; i++) {
            const T v = z[i];
            y[i] = v > 0 ? v : p * FM_FN(expm1_neg)(v > 0 ? (T)0 : v); /* it takes v <= 0 */
        }
        break;
    case FM_ACT_SOFTPLUS:
        FM_SIMD
        for (i = 0; i < n; i++) y[i] = FM_FN(softplus_scalar)(z[i]);
        break;
    case FM_ACT_SILU:
        FM_SIMD
        for (i = 0; i < n; i++) y[i] = z[i] * FM_FN(sigmoid_scalar)(z[i]);
        break;
    case FM_ACT_GELU:
        FM_SIMD
        for (i = 0; i < n; i++) {
            T gauss;
            y[i] = z[i] * FM_FN(normal_cdf)(z[i], &gauss);
        }
        break;
    default:
        break;
    }
}

/* One row of softmax, max-shifted; the normaliser is accumulated in double. */
static void FM_FN(softmax_row)(int64_t n, const T *z, T *y) {
    if (n == 0) return;
    T zmax = z[0];
    for (int64_t j = 1; j < n; j++) zmax = z[j] > zmax ? z[j] : zmax;
    double total = 0.0;
    for (int64_t j = 0; j < n; j++) {
        T e = EXP(z[j] - zmax);
        y[j] = e;
        total += (double)e;
    }
    const T inv = (T)(1.0 / total);
    for (int64_t j = 0; j < n; j++) y[j] *= inv;
}

int FM_FN(fm_act_forward)(int64_t rows, int64_t cols, const T *z, int64_t rsz,
                          T *y, int64_t rsy, int act, double param, int n_threads) {
    if (rows < 0 || cols < 0 || act < 0 || act >= FM_ACT_COUNT_) return FM_ERR_ARG;
    if ((act == FM_ACT_SIGMOID && !(param > 0)) || (act == FM_ACT_ELU && !(param >= 0)))
        return FM_ERR_ARG;
    const int nt = fm_threads_for(8.0 * (double)rows * (double)cols, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        if (act == FM_ACT_SOFTMAX) FM_FN(softmax_row)(cols, z + i * rsz, y + i * rsy);
        else FM_FN(fm_act_apply)(cols, z + i * rsz, y + i * rsy, act, param);
    });
    return FM_OK;
}

/* dz = dy * f'(z) for one contiguous row. */
FM_CLONES static void FM_FN(act_backward_row)(int64_t n, const T *z, const T *y, const T *dy, T *dz,
                                    int act, double param) {
    const T p = (T)param;
    int64_t j;
    switch (act) {
    case FM_ACT_IDENTITY:
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = p * dy[j];
        break;
    case FM_ACT_STEP:
    case FM_ACT_SIGN:
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = (T)0;
        break;
    case FM_ACT_SIGMOID: {
        const T inv_t = (T)1 / p;
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = dy[j] * y[j] * ((T)1 - y[j]) * inv_t;
        break;
    }
    case FM_ACT_TANH:
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = dy[j] * ((T)1 - y[j] * y[j]);
        break;
    case FM_ACT_RELU:
        FM_SIMD
        for (j = 0; j < n; j++) {
            const T g = dy[j]; /* read unconditionally, so the select vectorizes */
            dz[j] = z[j] > 0 ? g : (T)0;
        }
        break;
    case FM_ACT_LEAKY_RELU:
        FM_SIMD
        for (j = 0; j < n; j++) {
            const T g = dy[j];
            dz[j] = z[j] > 0 ? g : p * g;
        }
        break;
    case FM_ACT_ELU:
        /* for z <= 0, y = a(e^z - 1) so y' = y + a */
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = z[j] > 0 ? dy[j] : dy[j] * (y[j] + p);
        break;
    case FM_ACT_SOFTPLUS:
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = dy[j] * FM_FN(sigmoid_scalar)(z[j]);
        break;
    case FM_ACT_SILU:
        FM_SIMD
        for (j = 0; j < n; j++) {
            T s = FM_FN(sigmoid_scalar)(z[j]);
            dz[j] = dy[j] * (s + z[j] * s * ((T)1 - s));
        }
        break;
    case FM_ACT_GELU:
        FM_SIMD
        for (j = 0; j < n; j++) {
            T gauss;
            const T cdf = FM_FN(normal_cdf)(z[j], &gauss);
            dz[j] = dy[j] * (cdf + z[j] * gauss * (T)FM_INV_SQRT_2PI);
        }
        break;
    case FM_ACT_SOFTMAX: {
        double dot = 0.0;
        for (j = 0; j < n; j++) dot += (double)dy[j] * (double)y[j];
        const T d = (T)dot;
        FM_SIMD
        for (j = 0; j < n; j++) dz[j] = y[j] * (dy[j] - d);
        break;
    }
    default:
        break;
    }
}

int FM_FN(fm_act_backward)(int64_t rows, int64_t cols, const T *z, int64_t rsz,
                           const T *y, int64_t rsy, const T *dy, int64_t rsdy,
                           T *dz, int64_t rsdz, int act, double param, int n_threads) {
    if (rows < 0 || cols < 0 || act < 0 || act >= FM_ACT_COUNT_) return FM_ERR_ARG;
    if (act == FM_ACT_SIGMOID && !(param > 0)) return FM_ERR_ARG;
    const int nt = fm_threads_for(8.0 * (double)rows * (double)cols, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        FM_FN(act_backward_row)(cols, z + i * rsz, y + i * rsy, dy + i * rsdy, dz + i * rsdz,
                                act, param);
    });
    return FM_OK;
}

int FM_FN(fm_prelu_forward)(int64_t rows, int64_t cols, const T *z, int64_t rsz,
                            const T *slope, T *y, int64_t rsy, int n_threads) {
    if (rows < 0 || cols < 0) return FM_ERR_ARG;
    const int nt = fm_threads_for(2.0 * (double)rows * (double)cols, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        const T *zi = z + i * rsz;
        T *yi = y + i * rsy;
        FM_SIMD
        for (int64_t j = 0; j < cols; j++) yi[j] = zi[j] > 0 ? zi[j] : slope[j] * zi[j];
    });
    return FM_OK;
}

/* Column-blocked reductions: each block of columns is owned by one thread and summed over rows
 * in row order, in double, so how the columns are split never changes a sum. */
#define FM_COL_BLOCK 256

/* Columns per block: at most FM_COL_BLOCK, and at least one block per thread (a 256-unit
 * layer's bias gradient ran on one thread while the other waited), in whole 64-byte lines. */
static inline int64_t FM_FN(col_block_width)(int64_t cols, int nt) {
    const int64_t line = 64 / (int64_t)sizeof(T);
    int64_t n_blocks = FM_MAX(1, (cols + FM_COL_BLOCK - 1) / FM_COL_BLOCK);
    n_blocks = (n_blocks + nt - 1) / nt * nt;
    const int64_t width = (cols + n_blocks - 1) / n_blocks;
    return FM_MAX(line, FM_MIN((int64_t)FM_COL_BLOCK, (width + line - 1) / line * line));
}

int FM_FN(fm_prelu_backward)(int64_t rows, int64_t cols, const T *z, int64_t rsz,
                             const T *slope, const T *dy, int64_t rsdy,
                             T *dz, int64_t rsdz, T *dslope, int n_threads) {
    if (rows < 0 || cols < 0) return FM_ERR_ARG;
    const int nt = fm_threads_for(3.0 * (double)rows * (double)cols, n_threads);
    const int64_t width = FM_FN(col_block_width)(cols, nt), n_blocks = (cols + width - 1) / width;
    int64_t blk;
    FM_PARALLEL_FOR(nt, for (blk = 0; blk < n_blocks; blk++) {
        const int64_t j0 = blk * width, j1 = FM_MIN(cols, j0 + width);
        double acc[FM_COL_BLOCK];
        for (int64_t j = j0; j < j1; j++) acc[j - j0] = 0.0;
        for (int64_t i = 0; i < rows; i++) {
            const T *zi = z + i * rsz, *dyi = dy + i * rsdy;
            T *dzi = dz + i * rsdz;
            for (int64_t j = j0; j < j1; j++) {
                const T zv = zi[j], g = dyi[j];
                if (zv > 0) {
                    dzi[j] = g;
                } else {
                    acc[j - j0] += (double)g * (double)zv;
                    dzi[j] = slope[j] * g;
                }
            }
        }
        if (dslope)
            for (int64_t j = j0; j < j1; j++) dslope[j] = (T)acc[j - j0];
    });
    return FM_OK;
}

/* Columns [j0, j1) of the sums, each accumulated in double in row order; the vector loop runs
 * across columns, so the instruction set never changes a sum. */
FM_CLONES static void FM_FN(colsum_block)(int64_t rows, int64_t j0, int64_t j1, const T *x,
                                          int64_t rsx, T *out) {
    double acc[FM_COL_BLOCK];
    for (int64_t j = j0; j < j1; j++) acc[j - j0] = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        const T *xi = x + i * rsx;
        for (int64_t j = j0; j < j1; j++) acc[j - j0] += (double)xi[j];
    }
    for (int64_t j = j0; j < j1; j++) out[j] = (T)acc[j - j0];
}

int FM_FN(fm_colsum)(int64_t rows, int64_t cols, const T *x, int64_t rsx, T *out, int n_threads) {
    if (rows < 0 || cols < 0) return FM_ERR_ARG;
    const int nt = fm_threads_for((double)rows * (double)cols, n_threads);
    const int64_t width = FM_FN(col_block_width)(cols, nt), n_blocks = (cols + width - 1) / width;
    int64_t blk;
    FM_PARALLEL_FOR(nt, for (blk = 0; blk < n_blocks; blk++) {
        const int64_t j0 = blk * width, j1 = FM_MIN(cols, j0 + width);
        FM_FN(colsum_block)(rows, j0, j1, x, rsx, out);
    });
    return FM_OK;
}
#undef FM_COL_BLOCK
