/* Optimizer update rules over the model's flat parameter vector. */
#include <math.h>
#include <string.h>
#include "internal.h"

/* NAdam's momentum coefficient mu_t */
static double fm_nadam_mu(const fm_optim *opt, double t) {
    return opt->beta1 * (1.0 - 0.5 * pow(0.96, t * opt->momentum_decay));
}

/* Ends a step applied in slices: the step count and NAdam's product of momentum coefficients. */
void fm_optim_finish_step(fm_optim *opt) {
    if (opt->kind == FM_OPT_NADAM) opt->mu_product *= fm_nadam_mu(opt, (double)(opt->step + 1));
    opt->step++;
}

#define T float
#define FM_SUFFIX f32
#define SQRT sqrtf
#define FABS fabsf
#include "optim_impl.h"
#undef T
#undef FM_SUFFIX
#undef SQRT
#undef FABS

#define T double
#define FM_SUFFIX f64
#define SQRT sqrt
#define FABS fabs
#include "optim_impl.h"
