# Declarations of the C kernels (csrc/include/fastmlp.h) for the binding.
from libc.stdint cimport int64_t, int32_t, uint64_t

cdef extern from "fastmlp.h" nogil:
    int FM_OK, FM_ERR_ARG, FM_ERR_NOMEM, FM_ERR_LABEL, FM_ERR_WORKSPACE, FM_ERR_NONFINITE

    int fm_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                    const float *b, int64_t rsb, int64_t csb, float *c, int64_t rsc, int64_t csc,
                    float alpha, float beta, int n_threads)
    int fm_gemm_f64(int64_t m, int64_t n, int64_t k, const double *a, int64_t rsa, int64_t csa,
                    const double *b, int64_t rsb, int64_t csb, double *c, int64_t rsc, int64_t csc,
                    double alpha, double beta, int n_threads)
    const char *fm_gemm_kernel_name_f32()
    const char *fm_gemm_kernel_name_f64()

    int fm_act_forward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                           float *y, int64_t rsy, int act, double param, int n_threads)
    int fm_act_forward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                           double *y, int64_t rsy, int act, double param, int n_threads)
    int fm_act_backward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                            const float *y, int64_t rsy, const float *dy, int64_t rsdy,
                            float *dz, int64_t rsdz, int act, double param, int n_threads)
    int fm_act_backward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                            const double *y, int64_t rsy, const double *dy, int64_t rsdy,
                            double *dz, int64_t rsdz, int act, double param, int n_threads)
    int fm_prelu_forward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                             const float *slope, float *y, int64_t rsy, int n_threads)
    int fm_prelu_forward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                             const double *slope, double *y, int64_t rsy, int n_threads)
    int fm_prelu_backward_f32(int64_t rows, int64_t cols, const float *z, int64_t rsz,
                              const float *slope, const float *dy, int64_t rsdy,
                              float *dz, int64_t rsdz, float *dslope, int n_threads)
    int fm_prelu_backward_f64(int64_t rows, int64_t cols, const double *z, int64_t rsz,
                              const double *slope, const double *dy, int64_t rsdy,
                              double *dz, int64_t rsdz, double *dslope, int n_threads)
    int fm_colsum_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, float *out, int n_threads)
    int fm_colsum_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, double *out, int n_threads)

    int fm_dense_forward_f32(int64_t batch, int64_t n_in, int64_t n_out,
                             const float *x, int64_t rsx, int64_t csx, const float *w, const float *b,
                             float *z, float *y, int64_t ldy, int act, double act_param, int n_threads)
    int fm_dense_forward_f64(int64_t batch, int64_t n_in, int64_t n_out,
                             const double *x, int64_t rsx, int64_t csx, const double *w, const double *b,
                             double *z, double *y, int64_t ldy, int act, double act_param, int n_threads)
    int fm_dense_backward_f32(int64_t batch, int64_t n_in, int64_t n_out,
                              const float *x, int64_t rsx, int64_t csx, const float *w,
                              const float *z, const float *y, const float *dy, int64_t ldy,
                              float *dz, float *dx, int64_t ldx, float *dw, float *db,
                              int act, double act_param, int n_threads)
    int fm_dense_backward_f64(int64_t batch, int64_t n_in, int64_t n_out,
                              const double *x, int64_t rsx, int64_t csx, const double *w,
                              const double *z, const double *y, const double *dy, int64_t ldy,
                              double *dz, double *dx, int64_t ldx, double *dw, double *db,
                              int act, double act_param, int n_threads)

    int fm_loss_f32(int64_t n, int64_t k, const float *z, int64_t rsz, const float *t, int64_t rst,
                    const int32_t *labels, const float *sample_weight,
                    float *grad, int64_t rsg, double *loss, int kind, int n_threads)
    int fm_loss_f64(int64_t n, int64_t k, const double *z, int64_t rsz, const double *t, int64_t rst,
                    const int32_t *labels, const double *sample_weight,
                    double *grad, int64_t rsg, double *loss, int kind, int n_threads)
    int fm_penalty_f32(int64_t n, const float *w, float *grad, double *value, double l1, double l2)
    int fm_penalty_f64(int64_t n, const double *w, double *grad, double *value, double l1, double l2)

    int fm_sgd_step_f32(int64_t n, const float *grad, float *param, float *velocity,
                        double lr, double momentum, double weight_decay, int nesterov, int n_threads)
    int fm_sgd_step_f64(int64_t n, const double *grad, double *param, double *velocity,
                        double lr, double momentum, double weight_decay, int nesterov, int n_threads)

    ctypedef struct fm_optim:
        int kind
        double lr
        double momentum
        double dampening
        double weight_decay
        int nesterov
        double beta1, beta2, eps
        double rho
        double lr_decay
        int amsgrad
        int centered
        double momentum_decay
        double mu_product
        double eta_minus, eta_plus, step_min, step_max
        double clip_value, clip_norm
        int64_t step
        void *state[4]
    int fm_optim_step_f32(int64_t n, float *grad, float *param, fm_optim *opt, int n_threads)
    int fm_optim_step_f64(int64_t n, double *grad, double *param, fm_optim *opt, int n_threads)

    ctypedef struct fm_layer:
        int kind
        int act
        double act_param
        int64_t n_in, n_out
        int64_t w_offset, b_offset
        double l1, l2
        double max_norm
        int64_t pieces
        uint64_t seed
    ctypedef struct fm_net:
        int n_layers
        const fm_layer *layers
        int loss
        int fused
        int link
    size_t fm_net_workspace_size_f32(const fm_net *net, int64_t batch, int training, int n_threads)
    size_t fm_net_workspace_size_f64(const fm_net *net, int64_t batch, int training, int n_threads)
    int fm_net_train_epoch_f32(const fm_net *net, int64_t n, const int64_t *order, int64_t batch_size,
                               const float *x, int64_t rsx, int64_t csx, const float *t, int64_t ldt,
                               const int32_t *labels, const float *sample_weight,
                               float *params, float *grads, fm_optim *opt,
                               double *loss_sum, double *weight_sum, int64_t *steps_done,
                               void *workspace, size_t workspace_size, double *tuner, int n_threads)
    int fm_net_train_epoch_f64(const fm_net *net, int64_t n, const int64_t *order, int64_t batch_size,
                               const double *x, int64_t rsx, int64_t csx, const double *t, int64_t ldt,
                               const int32_t *labels, const double *sample_weight,
                               double *params, double *grads, fm_optim *opt,
                               double *loss_sum, double *weight_sum, int64_t *steps_done,
                               void *workspace, size_t workspace_size, double *tuner, int n_threads)
    int fm_net_predict_f32(const fm_net *net, int64_t n, const float *x, int64_t rsx, int64_t csx,
                           const float *params, float *out, int64_t ldo, int raw, int64_t chunk,
                           void *workspace, size_t workspace_size, int n_threads)
    int fm_net_predict_f64(const fm_net *net, int64_t n, const double *x, int64_t rsx, int64_t csx,
                           const double *params, double *out, int64_t ldo, int raw, int64_t chunk,
                           void *workspace, size_t workspace_size, int n_threads)
    int fm_all_finite_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, int64_t csx,
                          int n_threads)
    int fm_all_finite_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, int64_t csx,
                          int n_threads)

    int fm_dropout_forward_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, float *mask,
                               float *y, int64_t rsy, double rate, uint64_t seed, uint64_t stream, int n_threads)
    int fm_dropout_forward_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, double *mask,
                               double *y, int64_t rsy, double rate, uint64_t seed, uint64_t stream, int n_threads)
    int fm_mul_f32(int64_t rows, int64_t cols, const float *a, int64_t rsa, const float *b, int64_t rsb,
                   float *out, int64_t rso, int n_threads)
    int fm_mul_f64(int64_t rows, int64_t cols, const double *a, int64_t rsa, const double *b, int64_t rsb,
                   double *out, int64_t rso, int n_threads)
    int fm_gaussian_noise_f32(int64_t rows, int64_t cols, const float *x, int64_t rsx, float *y, int64_t rsy,
                              double stddev, uint64_t seed, uint64_t stream, int n_threads)
    int fm_gaussian_noise_f64(int64_t rows, int64_t cols, const double *x, int64_t rsx, double *y, int64_t rsy,
                              double stddev, uint64_t seed, uint64_t stream, int n_threads)
    int fm_activity_penalty_f32(int64_t rows, int64_t cols, const float *y, int64_t rsy, float *dy,
                                int64_t rsdy, double *value, double l1, double l2)
    int fm_activity_penalty_f64(int64_t rows, int64_t cols, const double *y, int64_t rsy, double *dy,
                                int64_t rsdy, double *value, double l1, double l2)
    int fm_maxout_forward_f32(int64_t rows, int64_t units, int64_t pieces, const float *z, int64_t rsz,
                              float *y, int64_t rsy, int n_threads)
    int fm_maxout_forward_f64(int64_t rows, int64_t units, int64_t pieces, const double *z, int64_t rsz,
                              double *y, int64_t rsy, int n_threads)
    int fm_maxout_backward_f32(int64_t rows, int64_t units, int64_t pieces, const float *z, int64_t rsz,
                               const float *dy, int64_t rsdy, float *dz, int64_t rsdz, int n_threads)
    int fm_maxout_backward_f64(int64_t rows, int64_t units, int64_t pieces, const double *z, int64_t rsz,
                               const double *dy, int64_t rsdy, double *dz, int64_t rsdz, int n_threads)
    int fm_max_norm_f32(int64_t n_in, int64_t n_out, float *w, double max_norm, int n_threads)
    int fm_max_norm_f64(int64_t n_in, int64_t n_out, double *w, double max_norm, int n_threads)
    int fm_clip_grad_f32(int64_t n, float *g, double clip_value, double clip_norm, double *norm_out, int n_threads)
    int fm_clip_grad_f64(int64_t n, double *g, double clip_value, double clip_norm, double *norm_out, int n_threads)

    uint64_t fm_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter)
    int fm_rng_permutation(int64_t n, int64_t *out, uint64_t seed, uint64_t stream)
    int fm_have_openmp()
    int FM_TUNER_SIZE
    int fm_tuner_next(double *state, int cap)
    void fm_tuner_record(double *state, int threads, int cap, double seconds, int64_t rows)
    int fm_tuner_choice(const double *state, int cap)
    double fm_wtime()
