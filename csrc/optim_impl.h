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
