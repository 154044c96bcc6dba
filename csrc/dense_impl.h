/* Dense layer kernels for one dtype; included by dense.c with T and FM_SUFFIX defined. */

int FM_FN(fm_dense_forward_ws)(int64_t batch, int64_t n_in, int64_t n_out,
                               const T *x, int64_t rsx, int64_t csx, const T *w, const T *b,
                               T *z, T *y, int64_t ldy, int act, double act_param,
                               void *ws, size_t ws_size, int n_threads) {
    if (batch < 0 || n_in < 0 || n_out < 0 || act < 0 || act >= FM_ACT_COUNT_) return FM_ERR_ARG;
    if (ldy < n_out) return FM_ERR_ARG;
    fm_epilogue epi;
    epi.bias = b;
    epi.rsz = ldy;
    epi.grad = 0;
    if (act == FM_ACT_SOFTMAX) {
        /* Softmax needs whole rows, so it runs after the GEMM rather than inside its tiles. */
        epi.act = FM_ACT_IDENTITY;
        epi.act_param = 1.0;
        epi.z = (z && z != y) ? z : NULL;
    } else {
        epi.act = act;
        epi.act_param = act_param;
        epi.z = (z && z != y) ? z : NULL;
    }
    /* a single row (online SGD, predict of one sample) skips its zero inputs inside the GEMM */
    int status = FM_FN(fm_gemm_ex)(batch, n_out, n_in, x, rsx, csx, w, n_out, 1, y, ldy, 1, (T)1,
                                   (T)0, &epi, ws, ws_size, n_threads);
    if (status != FM_OK || act != FM_ACT_SOFTMAX) return status;
    return FM_FN(fm_act_forward)(batch, n_out, y, ldy, y, ldy, FM_ACT_SOFTMAX, 0.0, n_threads);
}

int FM_FN(fm_dense_backward_ws)(int64_t batch, int64_t n_in, int64_t n_out,
                                const T *x, int64_t rsx, int64_t csx, const T *w,
                                const T *z, const T *y, const T *dy, int64_t ldy,
                                T *dz, T *dx, int64_t ldx, T *dw, T *db,
                                int act, double act_param, const fm_epilogue *dx_epi,
                                void *ws, size_t ws_size, int n_threads) {
    if (batch < 0 || n_in < 0 || n_out < 0 || act < 0 || act >= FM_ACT_COUNT_) return FM_ERR_ARG;
    if (ldy < n_out || (dx && ldx < n_in)) return FM_ERR_ARG;
    int status;
    const T *g = dy;
    if (!(act == FM_ACT_IDENTITY && act_param == 1.0)) {
        status = FM_FN(fm_act_backward)(batch, n_out, z, ldy, y, ldy, dy, ldy, dz, ldy, act,
                                        act_param, n_threads);
        if (status != FM_OK) return status;
        g = dz;
    }
    /* dW = X^T dZ: X^T is X with its strides swapped. */
    status = FM_FN(fm_gemm_ex)(n_in, n_out, batch, x, csx, rsx, g, ldy, 1, dw, n_out, 1,
                               (T)1, (T)0, NULL, ws, ws_size, n_threads);
    if (status != FM_OK) return status;
    if (db) {
        status = FM_FN(fm_colsum)(batch, n_out, g, ldy, db, n_threads);
        if (status != FM_OK) return status;
    }
    if (dx) {
        /* dX = dZ W^T */
        status = FM_FN(fm_gemm_ex)(batch, n_in, n_out, g, ldy, 1, w, 1, n_out, dx, ldx, 1,
                                   (T)1, (T)0, dx_epi, ws, ws_size, n_threads);
    }
    return status;
}

/* Workspace the _ws variants need at most for these sizes. */
size_t FM_FN(fm_dense_workspace_size)(int64_t batch, int64_t n_in, int64_t n_out, int n_threads) {
    size_t a = FM_FN(fm_gemm_workspace_size)(batch, n_out, n_in, n_threads);
    size_t b = FM_FN(fm_gemm_workspace_size)(n_in, n_out, batch, n_threads);
    size_t c = FM_FN(fm_gemm_workspace_size)(batch, n_in, n_out, n_threads);
    return FM_MAX(a, FM_MAX(b, c));
}

int FM_FN(fm_dense_forward)(int64_t batch, int64_t n_in, int64_t n_out,
                            const T *x, int64_t rsx, int64_t csx, const T *w, const T *b,
                            T *z, T *y, int64_t ldy, int act, double act_param, int n_threads) {
    return FM_FN(fm_dense_forward_ws)(batch, n_in, n_out, x, rsx, csx, w, b, z, y, ldy, act,
                                      act_param, NULL, 0, n_threads);
}

int FM_FN(fm_dense_backward)(int64_t batch, int64_t n_in, int64_t n_out,
                             const T *x, int64_t rsx, int64_t csx, const T *w,
                             const T *z, const T *y, const T *dy, int64_t ldy,
                             T *dz, T *dx, int64_t ldx, T *dw, T *db,
                             int act, double act_param, int n_threads) {
    return FM_FN(fm_dense_backward_ws)(batch, n_in, n_out, x, rsx, csx, w, z, y, dy, ldy, dz, dx,
                                       ldx, dw, db, act, act_param, NULL, NULL, 0, n_threads);
}
