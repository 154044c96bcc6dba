/* Optimizer update rules over flat vectors for one dtype; included by optim.c. */

#ifndef FM_OPT_BLOCK
#define FM_OPT_BLOCK 4096 /* elements per parallel work item */
#endif

static T *FM_FN(state_at)(const fm_optim *opt, int slot, int64_t offset) {
    return opt->state[slot] ? (T *)opt->state[slot] + offset : NULL;
}

/* SGD over [i0, i1): vector clones per instruction set (the same roundings: no contraction). */
FM_CLONES static void FM_FN(sgd_range)(int64_t i0, int64_t i1, const T *restrict grad,
                                       T *restrict param, T *restrict velocity, T eta, T mu, T wd,
                                       int nesterov) {
    int64_t i;
    if (mu == (T)0) {
        for (i = i0; i < i1; i++) param[i] -= eta * (grad[i] + wd * param[i]);
    } else {
        for (i = i0; i < i1; i++) {
            const T g = grad[i] + wd * param[i];
            const T v = mu * velocity[i] + g;
            velocity[i] = v;
            param[i] -= eta * (nesterov ? g + mu * v : v);
        }
    }
}

int FM_FN(fm_sgd_step)(int64_t n, const T *grad, T *param, T *velocity,
                       double lr, double momentum, double weight_decay, int nesterov, int n_threads) {
    if (n < 0 || (momentum != 0.0 && velocity == NULL)) return FM_ERR_ARG;
    const T eta = (T)lr, mu = (T)momentum, wd = (T)weight_decay;
    const int nt = fm_threads_for(4.0 * (double)n, n_threads);
    const int64_t n_blocks = (n + FM_OPT_BLOCK - 1) / FM_OPT_BLOCK;
    int64_t blk;
    FM_PARALLEL_FOR(nt, for (blk = 0; blk < n_blocks; blk++) {
        FM_FN(sgd_range)(blk * FM_OPT_BLOCK, FM_MIN(n, (blk + 1) * FM_OPT_BLOCK), grad, param,
                         velocity, eta, mu, wd, nesterov);
    });
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

/* The same update for one output unit (n_out = 1: W is a column), as one loop over the inputs
 * instead of a call per input: element i gets sgd_rank1_row's arithmetic with xi = x[i] and
 * dz[0], and plain SGD leaves the zero inputs' weights alone as the caller's skip does (a
 * perceptron on MNIST pixels: 1.43x the samples/s, Adaline at batch 1 1.55x). */
FM_CLONES static void FM_FN(sgd_rank1_col)(int64_t n, const T *restrict x, T dz0, T *restrict p,
                                           T *restrict v, T eta, T mu, T wd, int nesterov,
                                           int skip_zero) {
    int64_t i;
    if (mu == (T)0) {
        for (i = 0; i < n; i++) {
            const T g = x[i] * dz0;
            const T q = p[i] - eta * (g + wd * p[i]);
            p[i] = skip_zero && x[i] == (T)0 ? p[i] : q;
        }
    } else if (nesterov) {
        for (i = 0; i < n; i++) {
            const T g = x[i] * dz0 + wd * p[i];
            const T vv = mu * v[i] + g;
            v[i] = vv;
            p[i] -= eta * (g + mu * vv);
        }
    } else {
        for (i = 0; i < n; i++) {
            const T g = x[i] * dz0 + wd * p[i];
            const T vv = mu * v[i] + g;
            v[i] = vv;
            p[i] -= eta * vv;
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
    if (skip_zero) { /* nor does a zero dz move anything: a perceptron's correct samples */
        int64_t j = 0;
        while (j < n_out && dz[j] == (T)0) j++;
        if (j == n_out) return FM_OK;
    }
    if (n_out == 1)
        FM_FN(sgd_rank1_col)(n_in, x, dz[0], w, vw, eta, mu, wd, nesterov, skip_zero);
    else FM_PARALLEL_FOR(nt, for (i = 0; i < n_in; i++) {
        if (skip_zero && x[i] == (T)0) continue;
        FM_FN(sgd_rank1_row)(n_out, x[i], dz, w + i * n_out, vw ? vw + i * n_out : NULL, eta, mu,
                             wd, nesterov);
    });
    if (b) FM_FN(sgd_rank1_row)(n_out, (T)1, dz, b, vb, eta, mu, wd, nesterov);
    return FM_OK;
}

/* Products associate as torch's addcmul (value * t1 * t2, left to right), so trajectories track
 * torch.optim's closely. Per-step scalars of the adaptive rules, computed once per step in double, then rounded to T
 * (as torch does with its Python-float step sizes). */
typedef struct {
    T lr, wd, mu, damp, b1c, b2c, eps, rho, step_size, bc2_sqrt, c1, c2, decay, eta_minus, eta_plus,
        step_min, step_max;
    int first;
} FM_FN(optim_scalars);


static inline T FM_FN(sign_of)(T v) { return (T)((v > 0) - (v < 0)); }

/* The rule over [i0, i1); element i's gradient is grad[i] * grad_scale (1, or x_i for row i of
 * a rank-1 gradient x^T dz: the product the GEMM forms, so the same bits). */
FM_CLONES static void FM_FN(optim_range)(int kind, const FM_FN(optim_scalars) *c, int nesterov,
                                         int amsgrad, int centered, int64_t i0, int64_t i1,
                                         const T *restrict grad, T grad_scale, T *restrict p,
                                         T *restrict s0, T *restrict s1, T *restrict s2) {
    int64_t i;
    switch (kind) {
    case FM_OPT_SGD: /* with dampening; the plain case is fm_sgd_step */
        for (i = i0; i < i1; i++) {
            const T g = grad[i] * grad_scale + c->wd * p[i];
            const T v = c->first ? g : c->mu * s0[i] + c->damp * g;
            s0[i] = v;
            p[i] -= c->lr * (nesterov ? g + c->mu * v : v);
        }
        break;
    case FM_OPT_ADAGRAD:
        for (i = i0; i < i1; i++) {
            const T g = grad[i] * grad_scale + c->wd * p[i];
            s0[i] += g * g;
            p[i] -= c->step_size * (g / (SQRT(s0[i]) + c->eps));
        }
        break;
    case FM_OPT_ADADELTA:
        for (i = i0; i < i1; i++) {
            const T g = grad[i] * grad_scale + c->wd * p[i];
            s0[i] = s0[i] * c->rho + c->c1 * g * g;
            const T u = SQRT(s1[i] + c->eps) / SQRT(s0[i] + c->eps) * g;
            s1[i] = s1[i] * c->rho + c->c1 * u * u;
            p[i] -= c->lr * u;
        }
        break;
    case FM_OPT_RMSPROP:
        for (i = i0; i < i1; i++) {
            const T g = grad[i] * grad_scale + c->wd * p[i];
            s0[i] = s0[i] * c->rho + c->c1 * g * g;
            T den;
            if (centered) {
                s2[i] += c->c1 * (g - s2[i]);
                den = SQRT(s0[i] - s2[i] * s2[i]) + c->eps;
            } else {
                den = SQRT(s0[i]) + c->eps;
            }
            if (c->mu != (T)0) {
                s1[i] = s1[i] * c->mu + g / den;
                p[i] -= c->lr * s1[i];
            } else {
                p[i] -= c->lr * (g / den);
            }
        }
        break;
    case FM_OPT_ADAM:
    case FM_OPT_ADAMW:
        for (i = i0; i < i1; i++) {
            T g = grad[i] * grad_scale;
            if (kind == FM_OPT_ADAMW) p[i] *= c->decay;
            else g += c->wd * p[i];
            s0[i] += c->c1 * (g - s0[i]);
            s1[i] = s1[i] * c->b2c + c->c2 * g * g;
            T v = s1[i];
            if (amsgrad) {
                s2[i] = s2[i] > v ? s2[i] : v;
                v = s2[i];
            }
            const T den = SQRT(v) / c->bc2_sqrt + c->eps;
            p[i] -= c->step_size * (s0[i] / den);
        }
        break;
    case FM_OPT_ADAMAX:
        for (i = i0; i < i1; i++) {
            const T g = grad[i] * grad_scale + c->wd * p[i];
            s0[i] += c->c1 * (g - s0[i]);
            const T a = s1[i] * c->b2c, b = FABS(g) + c->eps;
            s1[i] = a > b ? a : b;
            p[i] -= c->step_size * (s0[i] / s1[i]);
        }
        break;
    case FM_OPT_NADAM:
        for (i = i0; i < i1; i++) {
            const T g = grad[i] * grad_scale + c->wd * p[i];
            s0[i] += c->c1 * (g - s0[i]);
            s1[i] = s1[i] * c->b2c + c->c2 * g * g;
            const T den = SQRT(s1[i] / c->bc2_sqrt) + c->eps;
            p[i] -= c->step_size * (g / den);
            p[i] -= c->rho * (s0[i] / den);
        }
        break;
    case FM_OPT_RPROP:
        for (i = i0; i < i1; i++) {
            T g = grad[i] * grad_scale;
            const T sgn = FM_FN(sign_of)(g * s0[i]);
            T st = s1[i] * (sgn > 0 ? c->eta_plus : sgn < 0 ? c->eta_minus : (T)1);
            st = st < c->step_min ? c->step_min : st > c->step_max ? c->step_max : st;
            s1[i] = st;
            if (sgn < 0) g = 0;
            p[i] -= FM_FN(sign_of)(g) * st;
            s0[i] = g;
        }
        break;
    default:
        break;
    }
}

/* The rule's per-step scalars for step t = opt->step + 1, without advancing anything (a step may
 * be applied in slices: fm_optim_rank1_update, fm_optim_slice, then fm_optim_finish_step). */
static int FM_FN(optim_scalars_of)(const fm_optim *opt, FM_FN(optim_scalars) *c) {
    if (!opt || opt->kind < 0 || opt->kind >= FM_OPT_COUNT_) return FM_ERR_ARG;
    const int kind = opt->kind;
    static const int slots[FM_OPT_COUNT_] = {1, 1, 2, 1, 2, 2, 2, 2, 2};
    int needed = slots[kind];
    if (kind == FM_OPT_RMSPROP) needed = opt->centered ? 3 : opt->momentum != 0.0 ? 2 : 1;
    if ((kind == FM_OPT_ADAM || kind == FM_OPT_ADAMW) && opt->amsgrad) needed = 3;
    for (int k = 0; k < needed; k++)
        if (!opt->state[k] && !(kind == FM_OPT_RMSPROP && k == 1 && opt->momentum == 0.0))
            return FM_ERR_ARG;

    const double t = (double)(opt->step + 1);
    memset(c, 0, sizeof *c);
    c->lr = (T)opt->lr;
    c->wd = (T)opt->weight_decay;
    c->mu = (T)opt->momentum;
    c->damp = (T)(1.0 - opt->dampening);
    c->first = opt->step == 0;
    c->eps = (T)opt->eps;
    c->rho = (T)opt->rho;
    c->c1 = (T)(1.0 - opt->rho);
    switch (kind) {
    case FM_OPT_ADAGRAD:
        c->step_size = (T)(opt->lr / (1.0 + (t - 1.0) * opt->lr_decay));
        break;
    case FM_OPT_ADAM:
    case FM_OPT_ADAMW:
        c->c1 = (T)(1.0 - opt->beta1);
        c->c2 = (T)(1.0 - opt->beta2);
        c->b2c = (T)opt->beta2;
        c->step_size = (T)(opt->lr / (1.0 - pow(opt->beta1, t)));
        c->bc2_sqrt = (T)sqrt(1.0 - pow(opt->beta2, t));
        c->decay = (T)(1.0 - opt->lr * opt->weight_decay);
        break;
    case FM_OPT_ADAMAX:
        c->c1 = (T)(1.0 - opt->beta1);
        c->b2c = (T)opt->beta2;
        c->step_size = (T)(opt->lr / (1.0 - pow(opt->beta1, t)));
        break;
    case FM_OPT_NADAM: {
        const double mu = fm_nadam_mu(opt, t), mu_next = fm_nadam_mu(opt, t + 1.0);
        const double mu_product = opt->mu_product * mu;
        c->c1 = (T)(1.0 - opt->beta1);
        c->c2 = (T)(1.0 - opt->beta2);
        c->b2c = (T)opt->beta2;
        c->bc2_sqrt = (T)(1.0 - pow(opt->beta2, t)); /* NAdam divides v by the correction itself */
        c->step_size = (T)(opt->lr * (1.0 - mu) / (1.0 - mu_product));
        c->rho = (T)(opt->lr * mu_next / (1.0 - mu_product * mu_next));
        break;
    }
    case FM_OPT_RPROP:
        c->eta_minus = (T)opt->eta_minus;
        c->eta_plus = (T)opt->eta_plus;
        c->step_min = (T)opt->step_min;
        c->step_max = (T)opt->step_max;
        break;
    default:
        break;
    }
    return FM_OK;
}

/* The rule applied to params[offset, offset + n) with their gradient grad[0, n), states at the
 * same offset; the parallel blocks of fm_optim_step. */
static void FM_FN(optim_apply)(const fm_optim *opt, const FM_FN(optim_scalars) *c, int64_t offset,
                               int64_t n, const T *grad, T *params, int n_threads) {
    T *s0 = FM_FN(state_at)(opt, 0, offset), *s1 = FM_FN(state_at)(opt, 1, offset),
      *s2 = FM_FN(state_at)(opt, 2, offset);
    T *p = params + offset;
    const int nt = fm_threads_for(8.0 * (double)n, n_threads);
    const int64_t n_blocks = (n + FM_OPT_BLOCK - 1) / FM_OPT_BLOCK;
    int64_t blk;
    FM_PARALLEL_FOR(nt, for (blk = 0; blk < n_blocks; blk++) {
        FM_FN(optim_range)(opt->kind, c, opt->nesterov, opt->amsgrad, opt->centered,
                           blk * FM_OPT_BLOCK, FM_MIN(n, (blk + 1) * FM_OPT_BLOCK), grad, (T)1, p,
                           s0, s1, s2);
    });
}

int FM_FN(fm_optim_slice)(int64_t offset, int64_t n, const T *grads, T *params,
                          const fm_optim *opt, int n_threads) {
    if (offset < 0 || n < 0) return FM_ERR_ARG;
    if (opt && opt->kind == FM_OPT_SGD && opt->dampening == 0.0)
        return FM_FN(fm_sgd_step)(n, grads + offset, params + offset,
                                  FM_FN(state_at)(opt, 0, offset), opt->lr, opt->momentum,
                                  opt->weight_decay, opt->nesterov, n_threads);
    FM_FN(optim_scalars) c;
    const int status = FM_FN(optim_scalars_of)(opt, &c);
    if (status == FM_OK) FM_FN(optim_apply)(opt, &c, offset, n, grads + offset, params, n_threads);
    return status;
}

/* The whole vector as one slice. */
int FM_FN(fm_optim_step)(int64_t n, T *grad, T *param, fm_optim *opt, int n_threads) {
    if (!opt || n < 0 || opt->kind < 0 || opt->kind >= FM_OPT_COUNT_) return FM_ERR_ARG;
    if (opt->clip_value > 0 || opt->clip_norm > 0)
        FM_FN(fm_clip_grad)(n, grad, opt->clip_value, opt->clip_norm, NULL, n_threads);
    const int status = FM_FN(fm_optim_slice)(0, n, grad, param, opt, n_threads);
    if (status == FM_OK) fm_optim_finish_step(opt);
    return status;
}

/* Row i of W's gradient is x_i dz: the rule reads dz scaled by x_i (the product the
 * weight-gradient GEMM forms at batch 1), so dW never goes through memory (at batch 1 Adam's
 * step was memory-bound: p, m, v and dW). */
int FM_FN(fm_optim_rank1_update)(int64_t n_in, int64_t n_out, const T *x, const T *dz,
                                 T *params, int64_t w_offset, int64_t b_offset,
                                 const fm_optim *opt, int n_threads) {
    if (n_in < 0 || n_out < 0 || w_offset < 0) return FM_ERR_ARG;
    if (opt && opt->kind == FM_OPT_SGD && opt->dampening == 0.0)
        return FM_FN(fm_sgd_rank1_update)(
            n_in, n_out, x, dz, params + w_offset, FM_FN(state_at)(opt, 0, w_offset),
            b_offset >= 0 ? params + b_offset : NULL,
            b_offset >= 0 ? FM_FN(state_at)(opt, 0, b_offset) : NULL, opt->lr, opt->momentum,
            opt->weight_decay, opt->nesterov, n_threads);
    FM_FN(optim_scalars) c;
    const int status = FM_FN(optim_scalars_of)(opt, &c);
    if (status != FM_OK) return status;
    T *s0 = FM_FN(state_at)(opt, 0, w_offset), *s1 = FM_FN(state_at)(opt, 1, w_offset),
      *s2 = FM_FN(state_at)(opt, 2, w_offset);
    T *w = params + w_offset;
    const int nt = fm_threads_for(8.0 * (double)n_in * (double)n_out, n_threads);
    int64_t i;
    FM_PARALLEL_FOR(nt, for (i = 0; i < n_in; i++) {
        const int64_t at = i * n_out;
        FM_FN(optim_range)(opt->kind, &c, opt->nesterov, opt->amsgrad, opt->centered, 0, n_out,
                           dz, x[i], w + at, s0 ? s0 + at : NULL, s1 ? s1 + at : NULL,
                           s2 ? s2 + at : NULL);
    });
    if (b_offset >= 0) FM_FN(optim_apply)(opt, &c, b_offset, n_out, dz, params, 1);
    return FM_OK;
}
