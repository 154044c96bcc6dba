/* Regularisation kernels for one dtype; included by regularize.c with T and FM_SUFFIX defined. */

/* Uniform in [0, 1) with 53 random bits, a pure function of (key, counter). */
static inline double FM_FN(uniform)(uint64_t key, uint64_t counter) {
    return (double)(fm_rng_draw(key, counter) >> 11) * 0x1.0p-53;
}

/* One row of dropout: draw u (53 bits) keeps its element when u * 2^-53 >= rate, that is when
 * u >= keep_from = ceil(rate * 2^53) (both exact): the same masks with no conversion to double
 * and the key hoisted, so the loop runs as vectors (MNIST 784-256-256-10 with two Dropout(0.2),
 * 1 thread, batch 32: 1.44x the samples/s; it had been 22% of the time). */
FM_CLONES static void FM_FN(dropout_row)(int64_t cols, uint64_t key, uint64_t counter,
                                         uint64_t keep_from, T scale, const T *x,
                                         T *restrict mask, T *y) {
    for (int64_t j = 0; j < cols; j++) {
        const uint64_t u = fm_rng_draw(key, counter + (uint64_t)j) >> 11;
        const T m = u >= keep_from ? scale : (T)0;
        mask[j] = m;
        y[j] = x[j] * m;
    }
}

int FM_FN(fm_dropout_forward)(int64_t rows, int64_t cols, const T *x, int64_t rsx, T *mask, T *y,
                              int64_t rsy, double rate, uint64_t seed, uint64_t stream, int n_threads) {
    if (rows < 0 || cols < 0 || !(rate >= 0.0 && rate < 1.0)) return FM_ERR_ARG;
    const T scale = (T)(1.0 / (1.0 - rate));
    const uint64_t key = fm_rng_key(seed, stream), keep_from = (uint64_t)ceil(rate * 0x1.0p53);
    const int nt = fm_threads_for(20.0 * (double)rows * (double)cols, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        FM_FN(dropout_row)(cols, key, (uint64_t)(i * cols), keep_from, scale, x + i * rsx,
                           mask + i * cols, y + i * rsy);
    });
    return FM_OK;
}

int FM_FN(fm_mul)(int64_t rows, int64_t cols, const T *a, int64_t rsa, const T *b, int64_t rsb,
                  T *out, int64_t rso, int n_threads) {
    if (rows < 0 || cols < 0) return FM_ERR_ARG;
    const int nt = fm_threads_for((double)rows * (double)cols, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) out[i * rso + j] = a[i * rsa + j] * b[i * rsb + j];
    });
    return FM_OK;
}

int FM_FN(fm_gaussian_noise)(int64_t rows, int64_t cols, const T *x, int64_t rsx, T *y, int64_t rsy,
                             double stddev, uint64_t seed, uint64_t stream, int n_threads) {
    if (rows < 0 || cols < 0 || !(stddev >= 0.0)) return FM_ERR_ARG;
    const uint64_t key = fm_rng_key(seed, stream);
    const int nt = fm_threads_for(40.0 * (double)rows * (double)cols, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            const uint64_t counter = 2 * (uint64_t)(i * cols + j);
            /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
            const double u1 = 1.0 - FM_FN(uniform)(key, counter);
            const double u2 = FM_FN(uniform)(key, counter + 1);
            const double normal = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
            y[i * rsy + j] = x[i * rsx + j] + (T)(stddev * normal);
        }
    });
    return FM_OK;
}

int FM_FN(fm_activity_penalty)(int64_t rows, int64_t cols, const T *y, int64_t rsy, T *dy,
                               int64_t rsdy, double *value, double l1, double l2) {
    if (rows < 0 || cols < 0) return FM_ERR_ARG;
    if (rows == 0) {
        if (value) *value = 0.0;
        return FM_OK;
    }
    const double inv_rows = 1.0 / (double)rows;
    const T a1 = (T)(l1 * inv_rows), a2 = (T)(l2 * inv_rows);
    double abs_sum = 0.0, sq_sum = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        const T *yi = y + i * rsy;
        for (int64_t j = 0; j < cols; j++) {
            const T v = yi[j];
            abs_sum += fabs((double)v);
            sq_sum += (double)v * (double)v;
            if (dy) dy[i * rsdy + j] += a1 * (T)((v > 0) - (v < 0)) + a2 * v;
        }
    }
    if (value) *value = (l1 * abs_sum + 0.5 * l2 * sq_sum) * inv_rows;
    return FM_OK;
}

int FM_FN(fm_maxout_forward)(int64_t rows, int64_t units, int64_t pieces, const T *z, int64_t rsz,
                             T *y, int64_t rsy, int n_threads) {
    if (rows < 0 || units < 0 || pieces < 1) return FM_ERR_ARG;
    const int nt = fm_threads_for((double)rows * (double)(units * pieces), n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        const T *zi = z + i * rsz;
        for (int64_t u = 0; u < units; u++) {
            T best = zi[u * pieces];
            for (int64_t p = 1; p < pieces; p++) best = zi[u * pieces + p] > best ? zi[u * pieces + p] : best;
            y[i * rsy + u] = best;
        }
    });
    return FM_OK;
}

int FM_FN(fm_maxout_backward)(int64_t rows, int64_t units, int64_t pieces, const T *z, int64_t rsz,
                              const T *dy, int64_t rsdy, T *dz, int64_t rsdz, int n_threads) {
    if (rows < 0 || units < 0 || pieces < 1) return FM_ERR_ARG;
    const int nt = fm_threads_for((double)rows * (double)(units * pieces), n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < rows; i++) {
        const T *zi = z + i * rsz;
        T *dzi = dz + i * rsdz;
        for (int64_t u = 0; u < units; u++) {
            int64_t arg = 0;  /* the first maximal piece takes the gradient */
            for (int64_t p = 1; p < pieces; p++)
                if (zi[u * pieces + p] > zi[u * pieces + arg]) arg = p;
            for (int64_t p = 0; p < pieces; p++) dzi[u * pieces + p] = p == arg ? dy[i * rsdy + u] : (T)0;
        }
    });
    return FM_OK;
}

int FM_FN(fm_max_norm)(int64_t n_in, int64_t n_out, T *w, double max_norm, int n_threads) {
    if (n_in < 0 || n_out < 0 || !(max_norm > 0)) return FM_ERR_ARG;
    const int64_t block = 256;
    const int64_t n_blocks = (n_out + block - 1) / block;
    const int nt = fm_threads_for(2.0 * (double)n_in * (double)n_out, n_threads);
    int64_t b;
    FM_PARALLEL_FOR(nt, for (b = 0; b < n_blocks; b++) {
        const int64_t j0 = b * block, j1 = FM_MIN(n_out, j0 + block);
        double sq[256];
        for (int64_t j = j0; j < j1; j++) sq[j - j0] = 0.0;
        for (int64_t i = 0; i < n_in; i++)
            for (int64_t j = j0; j < j1; j++) sq[j - j0] += (double)w[i * n_out + j] * (double)w[i * n_out + j];
        for (int64_t j = j0; j < j1; j++) {
            const double norm = sqrt(sq[j - j0]);
            if (norm > max_norm) {
                const T scale = (T)(max_norm / norm);
                for (int64_t i = 0; i < n_in; i++) w[i * n_out + j] *= scale;
            }
        }
    });
    return FM_OK;
}

int FM_FN(fm_clip_grad)(int64_t n, T *g, double clip_value, double clip_norm, double *norm_out,
                        int n_threads) {
    if (n < 0) return FM_ERR_ARG;
    (void)n_threads;
    if (clip_value > 0) {
        const T c = (T)clip_value;
        for (int64_t i = 0; i < n; i++) g[i] = g[i] > c ? c : g[i] < -c ? -c : g[i];
    }
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += (double)g[i] * (double)g[i];
    const double norm = sqrt(total);
    if (clip_norm > 0 && norm > clip_norm) {
        /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) */
        const T scale = (T)(clip_norm / (norm + 1e-6));
        for (int64_t i = 0; i < n; i++) g[i] *= scale;
    }
    if (norm_out) *norm_out = norm;
    return FM_OK;
}
