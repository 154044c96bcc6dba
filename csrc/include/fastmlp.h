/* fastmlp: the one public C header.
 *
 * Conventions (see DESIGN.md):
 *  - names fm_<object>_<action>_<dtype>; every kernel exists for float (f32) and double (f64);
 *  - argument order: dims, inputs, outputs, scalars, n_threads;
 *  - matrices are row-major unless a kernel takes explicit element strides (rs = row stride,
 *    cs = column stride);
 *  - every kernel returns FM_OK or a negative FM_ERR_*; none prints, aborts or exits;
 *  - results are bitwise identical for any n_threads (outputs are partitioned, reductions are
 *    done in a fixed order, never in thread-scheduling order).
 */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---- */
#define FM_OK 0
#define FM_ERR_ARG (-1)         /* a bad scalar argument (negative size, unknown kind, ...) */
#define FM_ERR_NOMEM (-2)       /* an allocation failed */
#define FM_ERR_LABEL (-3)       /* a class label outside [0, n_classes) */
#define FM_ERR_WORKSPACE (-4)   /* the caller's workspace is too small */
#define FM_ERR_NONFINITE (-5)   /* a training step produced a NaN or infinite loss (not applied) */

/* ---- activations: y = f(z), elementwise unless noted ----
 * IDENTITY    y = c*z                      (c = param, the notes' linear activation; 1 = identity)
 * STEP        y = 1 if z >= theta else 0   (theta = param; derivative 0)
 * SIGN        y = sign(z) in {-1, 0, 1}    (derivative 0)
 * SIGMOID     y = 1/(1+exp(-z/T))          (T = param, the notes' temperature; y' = y(1-y)/T)
 * TANH        y = tanh(z)                  (y' = 1 - y^2)
 * RELU        y = max(z, 0)                (y' = [z > 0])
 * LEAKY_RELU  y = z if z > 0 else a*z      (a = param)
 * ELU         y = z if z > 0 else a*(exp(z)-1)
 * SOFTPLUS    y = log(1+exp(z))            (y' = sigmoid(z))
 * SILU        y = z*sigmoid(z)
 * GELU        y = z*Phi(z)                 (exact, with erf)
 * SOFTMAX     y_i = exp(z_i)/sum_j exp(z_j) over each row (max-shifted) */
enum fm_activation {
    FM_ACT_IDENTITY = 0,
    FM_ACT_STEP = 1,
    FM_ACT_SIGN = 2,
    FM_ACT_SIGMOID = 3,
    FM_ACT_TANH = 4,
    FM_ACT_RELU = 5,
    FM_ACT_LEAKY_RELU = 6,
    FM_ACT_ELU = 7,
    FM_ACT_SOFTPLUS = 8,
    FM_ACT_SILU = 9,
    FM_ACT_GELU = 10,
    FM_ACT_SOFTMAX = 11,
    FM_ACT_COUNT_
};

/* ---- losses: per-sample value l_i, batch value sum_i w_i l_i / sum_i w_i (w = 1 without weights) ----
 * MSE              l = 1/2 sum_k (z_k - t_k)^2                         (the notes' squared error)
 * BCE_LOGITS       l = sum_k [log(1+exp(z_k)) - t_k z_k]               (sigmoid fused, stable)
 * SOFTMAX_CE       l = -sum_k t_k log softmax(z)_k                     (targets: probabilities / one-hot)
 * SOFTMAX_CE_LABELS l = -log softmax(z)_y                              (targets: int32 labels)
 * PERCEPTRON       l = sum_k max(0, -t_k z_k), t in {-1, 1}; subgradient -t_k where t_k z_k <= 0,
 *                  so a zero-initialised perceptron still learns (Rosenblatt: update on mistakes)
 * HINGE            l = sum_k max(0, 1 - t_k z_k), t in {-1, 1}
 * The gradient written is d(batch value)/dz. */
enum fm_loss {
    FM_LOSS_MSE = 0,
    FM_LOSS_BCE_LOGITS = 1,
    FM_LOSS_SOFTMAX_CE = 2,
    FM_LOSS_SOFTMAX_CE_LABELS = 3,
    FM_LOSS_PERCEPTRON = 4,
    FM_LOSS_HINGE = 5,
    FM_LOSS_COUNT_
};

/* ---- GEMM (BLIS contract): C := alpha*A*B + beta*C, with A m x k, B k x n, C m x n given by
 * element strides, so a transpose is a swap of strides. With beta == 0, C is never read.
 * The optional epilogue is applied to each output tile after its last k-block: C := act(C + bias),
 * and, if z != NULL, the pre-activation C + bias is also stored to z (row stride rsz, column stride 1).
 * Blocking never depends on n_threads, so each C element is computed by the same sequence of
 * operations for any thread count. */
typedef struct fm_epilogue {
    const void *bias;   /* n values of the GEMM's dtype, or NULL */
    int act;            /* enum fm_activation, elementwise kinds only (not SOFTMAX) */
    double act_param;
    void *z;            /* optional pre-activation output, or NULL */
    int64_t rsz;
    /* 1: the backward form, for dX = dZ W^T of the layer above a ReLU layer: C := C where
     * z > 0, else 0 (z: that layer's forward pre-activation, read only; act FM_ACT_RELU, no
     * bias), i.e. C becomes the gradient at the ReLU's input, as fm_act_backward would give. */
    int grad;
} fm_epilogue;

/* Bytes of workspace fm_gemm_ex_* needs for these sizes and thread count (0 when it needs none);
 * enough for any problem with m, n, k and n_threads no larger (a last, shorter batch). */
size_t fm_gemm_workspace_size_f32(int64_t m, int64_t n, int64_t k, int n_threads);
size_t fm_gemm_workspace_size_f64(int64_t m, int64_t n, int64_t k, int n_threads);

int fm_gemm_f32(int64_t m, int64_t n, int64_t k,
                const float *a, int64_t rsa, int64_t csa,
                const float *b, int64_t rsb, int64_t csb,
                float *c, int64_t rsc, int64_t csc,
                float alpha, float beta, int n_threads);
int fm_gemm_f64(int64_t m, int64_t n, int64_t k,
                const double *a, int64_t rsa, int64_t csa,
                const double *b, int64_t rsb, int64_t csb,
                double *c, int64_t rsc, int64_t csc,
                double alpha, double beta, int n_threads);
/* As fm_gemm_*, with an optional epilogue (NULL for none) and a caller-owned workspace
 * (NULL: allocated for this call and freed before returning). */
int fm_gemm_ex_f32(int64_t m, int64_t n, int64_t k,
                   const float *a, int64_t rsa, int64_t csa,
                   const float *b, int64_t rsb, int64_t csb,
                   float *c, int64_t rsc, int64_t csc,
                   float alpha, float beta, const fm_epilogue *epilogue,
                   void *workspace, size_t workspace_size, int n_threads);
int fm_gemm_ex_f64(int64_t m, int64_t n, int64_t k,
                   const double *a, int64_t rsa, int64_t csa,
                   const double *b, int64_t rsb, int64_t csb,
                   double *c, int64_t rsc, int64_t csc,
                   double alpha, double beta, const fm_epilogue *epilogue,
                   void *workspace, size_t workspace_size, int n_threads);
/* Name of the micro-kernel chosen at run time for this CPU (e.g. "avx2", "reference"). */
const char *fm_gemm_kernel_name_f32(void);
const char *fm_gemm_kernel_name_f64(void);

/* ---- activations (rows x cols, row strides, column stride 1) ---- */
/* Apply an elementwise activation to one contiguous run of n values (used by GEMM epilogues). */
void fm_act_apply_f32(int64_t n, const float *z, float *y, int act, double param);
void fm_act_apply_f64(int64_t n, const double *z, double *y, int act, double param);

int fm_act_forward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                       float *y, int64_t rsy, int act, double param, int n_threads);
int fm_act_forward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                       double *y, int64_t rsy, int act, double param, int n_threads);
/* dz = dy * f'(z); kernels read z or y as their formula needs (both must be given).
 * For SOFTMAX, dz_i = y_i (dy_i - sum_j dy_j y_j). dz may alias dy. */
int fm_act_backward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                        const float *y, int64_t rsy, const float *dy, int64_t rsdy,
                        float *dz, int64_t rsdz, int act, double param, int n_threads);
int fm_act_backward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                        const double *y, int64_t rsy, const double *dy, int64_t rsdy,
                        double *dz, int64_t rsdz, int act, double param, int n_threads);

/* PReLU with one learnable slope per column: y = z if z > 0 else slope_j*z. */
int fm_prelu_forward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                         const float *slope, float *y, int64_t rsy, int n_threads);
int fm_prelu_forward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                         const double *slope, double *y, int64_t rsy, int n_threads);
/* dz = dy * (z > 0 ? 1 : slope_j); dslope_j = sum_i dy_ij * min(z_ij, 0) (written, not added). */
int fm_prelu_backward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                          const float *slope, const float *dy, int64_t rsdy,
                          float *dz, int64_t rsdz, float *dslope, int n_threads);
int fm_prelu_backward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                          const double *slope, const double *dy, int64_t rsdy,
                          double *dz, int64_t rsdz, double *dslope, int n_threads);

/* Column sums in double, fixed order: out_j = sum_i x_ij (written, not added). */
int fm_colsum_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, float *out, int n_threads);
int fm_colsum_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, double *out, int n_threads);

/* ---- dense layer: z = x w + b, y = act(z); w is (n_in, n_out) row-major, b has n_out values ----
 * x has element strides (rsx, csx); z and y share row stride ldy. z may be NULL (inference) or
 * equal to y when act is the identity. */
int fm_dense_forward_f32(int64_t batch, int64_t n_in, int64_t n_out,
                         const float *x, int64_t rsx, int64_t csx, const float *w, const float *b,
                         float *z, float *y, int64_t ldy, int act, double act_param, int n_threads);
int fm_dense_forward_f64(int64_t batch, int64_t n_in, int64_t n_out,
                         const double *x, int64_t rsx, int64_t csx, const double *w, const double *b,
                         double *z, double *y, int64_t ldy, int act, double act_param, int n_threads);
/* Backward from dy (gradient w.r.t. y): dz = dy * act'(z) (dz may alias dy; with act IDENTITY
 * and param 1, dy is taken as dz), dw = x^T dz, db = colsum(dz), dx = dz w^T.
 * dx and db may be NULL; dx has row stride ldx and column stride 1. Gradients are written. */
int fm_dense_backward_f32(int64_t batch, int64_t n_in, int64_t n_out,
                          const float *x, int64_t rsx, int64_t csx, const float *w,
                          const float *z, const float *y, const float *dy, int64_t ldy,
                          float *dz, float *dx, int64_t ldx, float *dw, float *db,
                          int act, double act_param, int n_threads);
int fm_dense_backward_f64(int64_t batch, int64_t n_in, int64_t n_out,
                          const double *x, int64_t rsx, int64_t csx, const double *w,
                          const double *z, const double *y, const double *dy, int64_t ldy,
                          double *dz, double *dx, int64_t ldx, double *dw, double *db,
                          int act, double act_param, int n_threads);

/* ---- losses: value (mean over samples, f64 accumulation) and gradient d(value)/dz ----
 * z: (n, k) with row stride rsz. t: (n, k) targets with row stride rst, or NULL for LABELS.
 * labels: n int32 class indices for SOFTMAX_CE_LABELS, else NULL. sample_weight: n values or NULL.
 * grad (row stride rsg) and loss may each be NULL. */
int fm_loss_f32(int64_t n, int64_t k, const float *z, int64_t rsz, const float *t, int64_t rst,
                const int32_t *labels, const float *sample_weight,
                float *grad, int64_t rsg, double *loss, int kind, int n_threads);
int fm_loss_f64(int64_t n, int64_t k, const double *z, int64_t rsz, const double *t, int64_t rst,
                const int32_t *labels, const double *sample_weight,
                double *grad, int64_t rsg, double *loss, int kind, int n_threads);

/* ---- penalties on a flat parameter vector: value += l1*sum|w| + l2/2*sum w^2, grad += l1*sign(w) + l2*w ---- */
int fm_penalty_f32(int64_t n, const float *w, float *grad, double *value, double l1, double l2);
int fm_penalty_f64(int64_t n, const double *w, double *grad, double *value, double l1, double l2);

/* ---- optimizers over flat vectors ----
 * SGD (PyTorch's formulation): g = grad + weight_decay*p; with momentum mu:
 *   v = mu*v + g; g = nesterov ? g + mu*v : v;   then p -= lr*g.
 * velocity may be NULL when momentum == 0. */
int fm_sgd_step_f32(int64_t n, const float *grad, float *param, float *velocity,
                    double lr, double momentum, double weight_decay, int nesterov, int n_threads);
int fm_sgd_step_f64(int64_t n, const double *grad, double *param, double *velocity,
                    double lr, double momentum, double weight_decay, int nesterov, int n_threads);

/* ---- regularisation ---- */
/* Inverted dropout: keep x_ij with probability 1 - rate, scaled by 1/(1 - rate). The draw for
 * element (i, j) is uniform(seed, stream, i*cols + j), so masks never depend on threads.
 * mask (rows x cols, contiguous) receives the factors 0 or 1/(1 - rate). */
int fm_dropout_forward_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, float *mask,
                           float *y, int64_t rsy, double rate, uint64_t seed, uint64_t stream, int n_threads);
int fm_dropout_forward_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, double *mask,
                           double *y, int64_t rsy, double rate, uint64_t seed, uint64_t stream, int n_threads);
/* out = a * b elementwise (dropout's backward: dx = dy * mask). */
int fm_mul_f32(int64_t rows, int64_t cols, const float *a, int64_t rsa, const float *b, int64_t rsb,
               float *out, int64_t rso, int n_threads);
int fm_mul_f64(int64_t rows, int64_t cols, const double *a, int64_t rsa, const double *b, int64_t rsb,
               double *out, int64_t rso, int n_threads);
/* y = x + stddev * N(0, 1), the normal drawn by Box-Muller from counters 2(i*cols+j) and +1. */
int fm_gaussian_noise_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, float *y, int64_t rsy,
                          double stddev, uint64_t seed, uint64_t stream, int n_threads);
int fm_gaussian_noise_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, double *y, int64_t rsy,
                          double stddev, uint64_t seed, uint64_t stream, int n_threads);
/* Activity penalty on a layer's outputs, per sample: value = (l1 sum|y| + l2/2 sum y^2) / rows;
 * dy (if not NULL) += its gradient (l1 sign(y) + l2 y) / rows. */
int fm_activity_penalty_f32(int64_t rows, int64_t cols, const float *y, int64_t rsy, float *dy,
                            int64_t rsdy, double *value, double l1, double l2);
int fm_activity_penalty_f64(int64_t rows, int64_t cols, const double *y, int64_t rsy, double *dy,
                            int64_t rsdy, double *value, double l1, double l2);
/* Maxout (Goodfellow et al. 2013): y_iu = max_p z_i(u*pieces + p); the gradient goes to the first
 * maximal piece. */
int fm_maxout_forward_f32(int64_t rows, int64_t units, int64_t pieces, const float *z, int64_t rsz,
                          float *y, int64_t rsy, int n_threads);
int fm_maxout_forward_f64(int64_t rows, int64_t units, int64_t pieces, const double *z, int64_t rsz,
                          double *y, int64_t rsy, int n_threads);
int fm_maxout_backward_f32(int64_t rows, int64_t units, int64_t pieces, const float *z, int64_t rsz,
                           const float *dy, int64_t rsdy, float *dz, int64_t rsdz, int n_threads);
int fm_maxout_backward_f64(int64_t rows, int64_t units, int64_t pieces, const double *z, int64_t rsz,
                           const double *dy, int64_t rsdy, double *dz, int64_t rsdz, int n_threads);
/* Max-norm constraint on W (n_in x n_out): a column (one unit's incoming weights) whose L2 norm
 * exceeds max_norm is scaled to max_norm. */
int fm_max_norm_f32(int64_t n_in, int64_t n_out, float *w, double max_norm, int n_threads);
int fm_max_norm_f64(int64_t n_in, int64_t n_out, double *w, double max_norm, int n_threads);
/* Gradient clipping: first each element to [-clip_value, clip_value] (if clip_value > 0), then
 * the whole vector scaled by clip_norm / (norm + 1e-6) if its L2 norm exceeds clip_norm (if > 0),
 * as torch.nn.utils.clip_grad_norm_. norm_out (may be NULL) receives the norm before scaling. */
int fm_clip_grad_f32(int64_t n, float *g, double clip_value, double clip_norm, double *norm_out, int n_threads);
int fm_clip_grad_f64(int64_t n, double *g, double clip_value, double clip_norm, double *norm_out, int n_threads);

/* ---- optimizers as one dispatchable object (used by the engine and the Python layer path) ----
 * Formulas are torch.optim's (same hyperparameter names and defaults in the Python classes), with
 * g = grad + weight_decay * p unless noted, t = step + 1, and state[] caller-owned vectors of n
 * values of the dtype, zero-initialised unless noted:
 * SGD       state[0] v.  v = momentum*v + (1-dampening)*g (v = g on the first step);
 *           g = nesterov ? g + momentum*v : v;  p -= lr*g
 * ADAGRAD   state[0] s (init initial_accumulator_value).  s += g*g;
 *           p -= lr/(1+(t-1)*lr_decay) * g/(sqrt(s)+eps)
 * ADADELTA  state[0] s, state[1] d.  s = rho*s + (1-rho)*g*g; u = sqrt(d+eps)/sqrt(s+eps)*g;
 *           d = rho*d + (1-rho)*u*u; p -= lr*u
 * RMSPROP   state[0] s, state[1] buf, state[2] a (centered).  s = alpha*s + (1-alpha)*g*g;
 *           centered: a += (1-alpha)*(g-a), den = sqrt(s - a*a) + eps, else den = sqrt(s) + eps;
 *           momentum: buf = momentum*buf + g/den, p -= lr*buf; else p -= lr*g/den
 * ADAM      state[0] m, state[1] v, state[2] vmax (amsgrad).  m += (1-beta1)*(g-m);
 *           v = beta2*v + (1-beta2)*g*g; den = sqrt(amsgrad ? vmax=max(vmax,v) : v)/sqrt(1-beta2^t) + eps;
 *           p -= lr/(1-beta1^t) * m/den
 * ADAMW     ADAM with decoupled decay: p *= 1 - lr*weight_decay first, and g = grad
 * ADAMAX    state[0] m, state[1] u.  m += (1-beta1)*(g-m); u = max(beta2*u, |g|+eps);
 *           p -= lr/(1-beta1^t) * m/u
 * NADAM     state[0] m, state[1] v; mu_product (scalar state, starts at 1).
 *           mu_t = beta1*(1 - 0.5*0.96^(t*momentum_decay)); mu_product *= mu_t;
 *           m += (1-beta1)*(g-m); v = beta2*v + (1-beta2)*g*g; den = sqrt(v/(1-beta2^t)) + eps;
 *           p -= lr*(1-mu_t)/(1-mu_product) * g/den + lr*mu_{t+1}/(1-mu_product*mu_{t+1}) * m/den
 * RPROP     iRprop- (Igel & Huesken 2000): state[0] previous gradient, state[1] step sizes
 *           (init lr). s = sign(g*prev); step *= s>0 ? eta_plus : s<0 ? eta_minus : 1, clamped to
 *           [step_min, step_max]; where s<0 the gradient is taken as 0; p -= sign(g)*step; prev = g.
 *           No weight decay.
 * Before any rule, the gradient is clipped in place (fm_clip_grad) when clip_value or clip_norm
 * is positive. */
enum fm_optim_kind {
    FM_OPT_SGD = 0,
    FM_OPT_ADAGRAD = 1,
    FM_OPT_ADADELTA = 2,
    FM_OPT_RMSPROP = 3,
    FM_OPT_ADAM = 4,
    FM_OPT_ADAMW = 5,
    FM_OPT_ADAMAX = 6,
    FM_OPT_NADAM = 7,
    FM_OPT_RPROP = 8,
    FM_OPT_COUNT_
};

typedef struct fm_optim {
    int kind;
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    int nesterov;
    double beta1, beta2, eps;
    double rho;            /* ADADELTA rho, RMSPROP alpha */
    double lr_decay;       /* ADAGRAD */
    int amsgrad;           /* ADAM, ADAMW */
    int centered;          /* RMSPROP */
    double momentum_decay; /* NADAM */
    double mu_product;     /* NADAM scalar state */
    double eta_minus, eta_plus, step_min, step_max; /* RPROP */
    double clip_value, clip_norm;                   /* 0: off */
    int64_t step;
    void *state[4];
} fm_optim;

int fm_optim_step_f32(int64_t n, float *grad, float *param, fm_optim *opt, int n_threads);
int fm_optim_step_f64(int64_t n, double *grad, double *param, fm_optim *opt, int n_threads);

/* ---- the network engine: a plan of layers over flat buffers; whole epochs and inference in
 * one call each, with a caller-owned workspace (nothing is allocated per step) ---- */
enum fm_layer_kind {
    FM_LAYER_DENSE = 0,       /* y = act(x W + b): W at w_offset (n_in x n_out), b at b_offset or -1 */
    FM_LAYER_ACTIVATION = 1,  /* y = act(x), n_in == n_out */
    FM_LAYER_PRELU = 2,       /* y = x > 0 ? x : slope_j x, slopes at w_offset */
    FM_LAYER_DROPOUT = 3,     /* training: inverted dropout with rate act_param, masks from seed */
    FM_LAYER_NOISE = 4,       /* training: y = x + act_param * N(0, 1), from seed */
    FM_LAYER_ACTIVITY = 5,    /* y = x; adds the activity penalty l1, l2 on x to the loss */
    FM_LAYER_MAXOUT = 6,      /* y_u = max over `pieces` of (x W + b): W n_in x n_out*pieces */
    FM_LAYER_COUNT_
};

typedef struct fm_layer {
    int kind;
    int act;              /* enum fm_activation (DENSE: fused; ACTIVATION: the function) */
    double act_param;
    int64_t n_in, n_out;
    int64_t w_offset;     /* element offsets into the flat params / grads */
    int64_t b_offset;
    double l1, l2;        /* DENSE, MAXOUT: penalties on W (l1 sum|W| + l2/2 sum W^2); ACTIVITY */
    double max_norm;      /* DENSE, MAXOUT: max-norm constraint after each update (0: off) */
    int64_t pieces;       /* MAXOUT */
    uint64_t seed;        /* DROPOUT, NOISE: random stream key; the optimizer step is the stream */
} fm_layer;

/* How the loss meets the last layer: NONE, the loss reads the last output; DENSE, the last Dense
 * layer's activation is the loss's link, so the loss reads its pre-activation; ACTIVATION, the
 * last layer is the link activation itself, so the loss reads that layer's input. */
enum fm_fused { FM_FUSED_NONE = 0, FM_FUSED_DENSE = 1, FM_FUSED_ACTIVATION = 2 };

typedef struct fm_net {
    int n_layers;
    const fm_layer *layers;
    int loss;     /* enum fm_loss */
    int fused;    /* enum fm_fused */
    int link;     /* activation predict applies to the logits (FM_ACT_IDENTITY for none) */
} fm_net;

/* Bytes of workspace for batches of up to `batch` rows (training: gathered inputs, every
 * layer's outputs, backward buffers; inference: forward buffers only). */
size_t fm_net_workspace_size_f32(const fm_net *net, int64_t batch, int training, int n_threads);
size_t fm_net_workspace_size_f64(const fm_net *net, int64_t batch, int training, int n_threads);

/* One epoch of mini-batch training: for each batch of `order` (n indices into the rows of x),
 * gather, forward, loss, backward, penalties, then opt's update of params. The result is bit for
 * bit that of the layer-by-layer path. t is (rows, k) with row stride ldt, or labels (int32);
 * sample_weight may be NULL. loss_sum/weight_sum accumulate sum_b loss_b * w_b and sum_b w_b
 * (w_b = batch rows, or their weight sum); steps_done counts applied updates. Returns
 * FM_ERR_NONFINITE, without applying that update, when a batch loss is not finite.
 * n_threads is a cap: with a tuner state (or NULL for a fixed count) each step runs on the
 * thread count the tuner picks. */
int fm_net_train_epoch_f32(const fm_net *net, int64_t n, const int64_t *order, int64_t batch_size,
                           const float *x, int64_t rsx, int64_t csx, const float *t, int64_t ldt,
                           const int32_t *labels, const float *sample_weight,
                           float *params, float *grads, fm_optim *opt,
                           double *loss_sum, double *weight_sum, int64_t *steps_done,
                           void *workspace, size_t workspace_size, double *tuner, int n_threads);
int fm_net_train_epoch_f64(const fm_net *net, int64_t n, const int64_t *order, int64_t batch_size,
                           const double *x, int64_t rsx, int64_t csx, const double *t, int64_t ldt,
                           const int32_t *labels, const double *sample_weight,
                           double *params, double *grads, fm_optim *opt,
                           double *loss_sum, double *weight_sum, int64_t *steps_done,
                           void *workspace, size_t workspace_size, double *tuner, int n_threads);

/* Outputs for n rows of x, `chunk` rows at a time: the logits if raw, else the link applied to
 * them (out: n x n_outputs, row stride ldo). Reads params only: any number of threads may predict
 * with one model at once, each with its own workspace (sized for batch = chunk, training = 0). */
int fm_net_predict_f32(const fm_net *net, int64_t n, const float *x, int64_t rsx, int64_t csx,
                       const float *params, float *out, int64_t ldo, int raw, int64_t chunk,
                       void *workspace, size_t workspace_size, int n_threads);
int fm_net_predict_f64(const fm_net *net, int64_t n, const double *x, int64_t rsx, int64_t csx,
                       const double *params, double *out, int64_t ldo, int raw, int64_t chunk,
                       void *workspace, size_t workspace_size, int n_threads);

/* 1 if every element of the rows x cols matrix x is finite, else 0 (one pass, no branches in
 * the loop: integer tests of the exponent field), on up to n_threads threads. */
int fm_all_finite_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, int64_t csx,
                      int n_threads);
int fm_all_finite_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, int64_t csx,
                      int n_threads);

/* ---- counter-based random numbers: the value at (seed, stream, i) never depends on threads ---- */
uint64_t fm_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter);
/* A uniformly random permutation of 0..n-1 (Fisher-Yates driven by fm_rng_u64). */
int fm_rng_permutation(int64_t n, int64_t *out, uint64_t seed, uint64_t stream);

/* ---- threading ---- */
/* Threads a kernel will use for `work` flops-equivalents given the caller's cap (1 if below the
 * measured threshold or without OpenMP). */
int fm_threads_for(double work, int n_threads);
/* 1 if compiled with OpenMP. */
int fm_have_openmp(void);

/* Step-level thread tuner. Results never depend on the thread count, so the engine may pick it
 * by measurement: it times steps at 1 thread and at the cap, keeps the faster (the cap must win
 * by 5%), and re-times the slower one now and then (the step after a switch is not counted),
 * less often while it keeps losing and the more it loses by, so that probing a choice that a
 * busy neighbour made much slower costs a few percent (but the cap at least every 0.1 s while
 * 1 thread wins a close race). The state is FM_TUNER_SIZE doubles owned by the caller, zeroed
 * to start. */
#define FM_TUNER_SIZE 8
int fm_tuner_next(double *state, int cap);
/* The faster of 1 thread and the cap as measured so far, 0 before both are (1 when cap <= 1). */
int fm_tuner_choice(const double *state, int cap);
/* Records a step of `rows` rows that took `seconds` on `threads` threads. */
void fm_tuner_record(double *state, int threads, int cap, double seconds, int64_t rows);
/* Wall-clock seconds (0 without OpenMP, where threads do not matter). */
double fm_wtime(void);

#ifdef __cplusplus
}
#endif
#endif
