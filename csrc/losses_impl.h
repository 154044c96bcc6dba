/* Loss kernels for one dtype; included by losses.c with T and FM_SUFFIX defined. */

/* Value of one sample's loss (double) and, if g != NULL, scale * dl/dz written to g. */
static double FM_FN(loss_row)(int64_t k, const T *z, const T *t, int32_t label, double scale,
                              T *g, int kind) {
    double l = 0.0;
    int64_t j;
    const T s = (T)scale;
    switch (kind) {
    case FM_LOSS_MSE:
        for (j = 0; j < k; j++) {
            const T d = z[j] - t[j];
            l += 0.5 * (double)d * (double)d;
            if (g) g[j] = s * d;
        }
        break;
    case FM_LOSS_BCE_LOGITS:
        for (j = 0; j < k; j++) {
            const double zj = (double)z[j];
            /* log(1+e^z) - t z, with log1p(e^-|z|) so it neither overflows nor loses digits */
            l += (zj > 0 ? zj : 0.0) + log1p(exp(-fabs(zj))) - (double)t[j] * zj;
            if (g) {
                const T p = zj >= 0 ? (T)(1.0 / (1.0 + exp(-zj))) : (T)(exp(zj) / (1.0 + exp(zj)));
                g[j] = s * (p - t[j]);
            }
        }
        break;
    case FM_LOSS_SOFTMAX_CE:
    case FM_LOSS_SOFTMAX_CE_LABELS: {
        if (k == 0) break;
        double zmax = (double)z[0];
        for (j = 1; j < k; j++) zmax = (double)z[j] > zmax ? (double)z[j] : zmax;
        double total = 0.0;
        for (j = 0; j < k; j++) total += exp((double)z[j] - zmax);
        const double lse = zmax + log(total);
        if (kind == FM_LOSS_SOFTMAX_CE_LABELS) {
            l = lse - (double)z[label];
            if (g) {
                for (j = 0; j < k; j++) g[j] = s * (T)exp((double)z[j] - lse);
                g[label] -= s;
            }
        } else {
            double t_sum = 0.0;
            for (j = 0; j < k; j++) {
                l += (double)t[j] * (lse - (double)z[j]);
                t_sum += (double)t[j];
            }
            if (g)
                for (j = 0; j < k; j++)
                    g[j] = s * (T)(exp((double)z[j] - lse) * t_sum - (double)t[j]);
        }
        break;
    }
    case FM_LOSS_PERCEPTRON:
        for (j = 0; j < k; j++) {
            const T m = t[j] * z[j];
            if (m <= 0) {
                l -= (double)m;
                if (g) g[j] = -s * t[j];
            } else if (g) {
                g[j] = 0;
            }
        }
        break;
    case FM_LOSS_HINGE:
        for (j = 0; j < k; j++) {
            const T m = t[j] * z[j];
            if (m < 1) {
                l += 1.0 - (double)m;
                if (g) g[j] = -s * t[j];
            } else if (g) {
                g[j] = 0;
            }
        }
        break;
    default:
        break;
    }
    return l;
}

/* Blocks of rows summed per chunk: partial sums live on the stack, chunks keep that bounded. */
#define FM_LOSS_CHUNK_BLOCKS 256

int FM_FN(fm_loss)(int64_t n, int64_t k, const T *z, int64_t rsz, const T *t, int64_t rst,
                   const int32_t *labels, const T *sample_weight,
                   T *grad, int64_t rsg, double *loss, int kind, int n_threads) {
    if (n < 0 || k < 0 || kind < 0 || kind >= FM_LOSS_COUNT_) return FM_ERR_ARG;
    const int labelled = kind == FM_LOSS_SOFTMAX_CE_LABELS;
    if (labelled ? labels == NULL : t == NULL) return FM_ERR_ARG;
    if (labelled) {
        for (int64_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= k) return FM_ERR_LABEL;
    }
    double weight_total = (double)n;
    if (sample_weight) {
        weight_total = 0.0;
        for (int64_t i = 0; i < n; i++) weight_total += (double)sample_weight[i];
    }
    if (n == 0 || weight_total == 0.0) {
        /* No sample carries weight: the loss and its gradient are zero. */
        if (grad)
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < k; j++) grad[i * rsg + j] = 0;
        if (loss) *loss = 0.0;
        return FM_OK;
    }
    const double inv_total = 1.0 / weight_total;
    const int nt = fm_threads_for(20.0 * (double)n * (double)k, n_threads);
    const int64_t n_blocks = (n + FM_REDUCE_BLOCK - 1) / FM_REDUCE_BLOCK;
    double total = 0.0;
    for (int64_t c0 = 0; c0 < n_blocks; c0 += FM_LOSS_CHUNK_BLOCKS) {
        const int64_t c1 = FM_MIN(n_blocks, c0 + FM_LOSS_CHUNK_BLOCKS);
        double partial[FM_LOSS_CHUNK_BLOCKS];
        int64_t blk;
        FM_PARALLEL_FOR(nt, for (blk = c0; blk < c1; blk++) {
            const int64_t i0 = blk * FM_REDUCE_BLOCK, i1 = FM_MIN(n, i0 + FM_REDUCE_BLOCK);
            double acc = 0.0;
            for (int64_t i = i0; i < i1; i++) {
                const double w = sample_weight ? (double)sample_weight[i] : 1.0;
                const double l = FM_FN(loss_row)(k, z + i * rsz, labelled ? NULL : t + i * rst,
                                                 labelled ? labels[i] : 0, w * inv_total,
                                                 grad ? grad + i * rsg : NULL, kind);
                acc += w * l;
            }
            partial[blk - c0] = acc;
        });
        for (int64_t b = c0; b < c1; b++) total += partial[b - c0];
    }
    if (loss) *loss = total * inv_total;
    return FM_OK;
}
#undef FM_LOSS_CHUNK_BLOCKS

int FM_FN(fm_penalty)(int64_t n, const T *w, T *grad, double *value, double l1, double l2) {
    if (n < 0) return FM_ERR_ARG;
    double abs_sum = 0.0, sq_sum = 0.0;
    const T l1t = (T)l1, l2t = (T)l2;
    for (int64_t i = 0; i < n; i++) {
        const T v = w[i];
        abs_sum += fabs((double)v);
        sq_sum += (double)v * (double)v;
        if (grad) grad[i] += l1t * (T)((v > 0) - (v < 0)) + l2t * v;
    }
    if (value) *value += l1 * abs_sum + 0.5 * l2 * sq_sum;
    return FM_OK;
}
