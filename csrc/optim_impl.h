/* Optimizer update rules over flat vectors for one dtype; included by optim.c. */

int FM_FN(fm_sgd_step)(int64_t n, const T *grad, T *param, T *velocity,
                       double lr, double momentum, double weight_decay, int nesterov, int n_threads) {
    if (n < 0 || (momentum != 0.0 && velocity == NULL)) return FM_ERR_ARG;
    const T eta = (T)lr, mu = (T)momentum, wd = (T)weight_decay;
    const int nt = fm_threads_for(4.0 * (double)n, n_threads);
    int64_t i;
    (void)nt;
    if (momentum == 0.0) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (i = 0; i < n; i++) param[i] -= eta * (grad[i] + wd * param[i]);
    } else {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (i = 0; i < n; i++) {
            const T g = grad[i] + wd * param[i];
            const T v = mu * velocity[i] + g;
            velocity[i] = v;
            param[i] -= eta * (nesterov ? g + mu * v : v);
        }
    }
    return FM_OK;
}

/* One row of the batch-1 fused SGD update: p_j updated with gradient xi * dz_j, with exactly
 * fm_sgd_step's per-element arithmetic (the library is built without FMA contraction, so the
 * clones for each instruction set round identically). */
FM_CLONES static void FM_FN(sgd_rank1_row)(int64_t n, T xi, const T *restrict dz, T *restrict p,
                                           T *restrict v, T eta, T mu, T wd, int nesterov) {
    int64_t j;
    if (mu == (T)0) {
        for (j = 0; j < n; j++) {
            const T g = xi * dz[j];
            p[j] -= eta * (g + wd * p[j]);
        }
    } else if (nesterov) {
        for (j = 0; j < n; j++) {
            const T g = xi * dz[j] + wd * p[j];
            const T vv = mu * v[j] + g;
            v[j] = vv;
            p[j] -= eta * (g + mu * vv);
        }
    } else {
        for (j = 0; j < n; j++) {
            const T g = xi * dz[j] + wd * p[j];
            const T vv = mu * v[j] + g;
            v[j] = vv;
            p[j] -= eta * vv;
        }
    }
}

int FM_FN(fm_sgd_rank1_update)(int64_t n_in, int64_t n_out, const T *x, const T *dz, T *w, T *vw,
                               T *b, T *vb, double lr, double momentum, double weight_decay,
                               int nesterov, int n_threads) {
    if (n_in < 0 || n_out < 0 || (momentum != 0.0 && (!vw || (b && !vb)))) return FM_ERR_ARG;
    const T eta = (T)lr, mu = (T)momentum, wd = (T)weight_decay;
    /* With plain SGD a zero input leaves its row unchanged (p - eta*(+-0) == p), so those rows
     * are skipped: most of MNIST's pixels and half of a ReLU layer's outputs are zero. */
    const int skip_zero = momentum == 0.0 && weight_decay == 0.0;
    const int nt = fm_threads_for(3.0 * (double)n_in * (double)n_out, n_threads);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (i = 0; i < n_in; i++) {
        if (skip_zero && x[i] == (T)0) continue;
        FM_FN(sgd_rank1_row)(n_out, x[i], dz, w + i * n_out, vw ? vw + i * n_out : NULL, eta, mu,
                             wd, nesterov);
    }
    if (b) FM_FN(sgd_rank1_row)(n_out, (T)1, dz, b, vb, eta, mu, wd, nesterov);
    return FM_OK;
}

int FM_FN(fm_optim_step)(int64_t n, const T *grad, T *param, fm_optim *opt, int n_threads) {
    if (!opt || n < 0) return FM_ERR_ARG;
    int status;
    switch (opt->kind) {
    case FM_OPT_SGD:
        status = FM_FN(fm_sgd_step)(n, grad, param, (T *)opt->state[0], opt->lr, opt->momentum,
                                    opt->weight_decay, opt->nesterov, n_threads);
        break;
    default:
        return FM_ERR_ARG;
    }
    if (status == FM_OK) opt->step++;
    return status;
}
