/* Dense layer kernels for one dtype; included by dense.c with T and FM_SUFFIX defined. */

/* One row through a dense layer as a sum of weight rows, skipping zero inputs: a GEMV reads all
 * of W, this reads only the rows the input uses (MNIST pixels are 80% zero, ReLU outputs about
 * half). y = sum_k x_k W[k, :] in increasing k, then the bias and activation as the GEMM
 * epilogue applies them. */
FM_CLONES static void FM_FN(sparse_row_axpy)(int64_t n_in, int64_t n_out, const T *x, int64_t csx,
                                             const T *w, T *y) {
    for (int64_t j = 0; j < n_out; j++) y[j] = 0;
    for (int64_t k = 0; k < n_in; k++) {
        const T xk = x[k * csx];
        if (xk == (T)0) continue;
        const T *wk = w + k * n_out;
        FM_SIMD
        for (int64_t j = 0; j < n_out; j++) y[j] += xk * wk[j];
    }
}

/* The sparse row path pays when at least a quarter of the inputs are zero. */
static int FM_FN(row_is_sparse)(int64_t n_in, const T *x, int64_t csx) {
    int64_t zeros = 0;
    for (int64_t k = 0; k < n_in; k++) zeros += x[k * csx] == (T)0;
    return 4 * zeros >= n_in;
}

int FM_FN(fm_dense_forward_ws)(int64_t batch, int64_t n_in, int64_t n_out,
                               const T *x, int64_t rsx, int64_t csx, const T *w, const T *b,
                               T *z, T *y, int64_t ldy, int act, double act_param,
                               void *ws, size_t ws_size, int n_threads) {
    if (batch < 0 || n_in < 0 || n_out < 0 || act < 0 || act >= FM_ACT_COUNT_) return FM_ERR_ARG;
    if (ldy < n_out) return FM_ERR_ARG;
    fm_epilogue epi;
    epi.bias = b;
    epi.rsz = ldy;
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
    int status = FM_OK;
    if (batch == 1 && n_in > 0 && FM_FN(row_is_sparse)(n_in, x, csx)) {
        FM_FN(sparse_row_axpy)(n_in, n_out, x, csx, w, y);
        for (int64_t j = 0; j < n_out; j++) {
            const T v = b ? y[j] + b[j] : y[j];
            if (epi.z) ((T *)epi.z)[j] = v;
            y[j] = v;
        }
        FM_FN(fm_act_apply)(n_out, y, y, epi.act, epi.act_param);
    } else {
        status = FM_FN(fm_gemm_ex)(batch, n_out, n_in, x, rsx, csx, w, n_out, 1, y, ldy, 1, (T)1,
                                   (T)0, &epi, ws, ws_size, n_threads);
    }
    if (status != FM_OK || act != FM_ACT_SOFTMAX) return status;
    return FM_FN(fm_act_forward)(batch, n_out, y, ldy, y, ldy, FM_ACT_SOFTMAX, 0.0, n_threads);
}

int FM_FN(fm_dense_backward_ws)(int64_t batch, int64_t n_in, int64_t n_out,
                                const T *x, int64_t rsx, int64_t csx, const T *w,
                                const T *z, const T *y, const T *dy, int64_t ldy,
                                T *dz, T *dx, int64_t ldx, T *dw, T *db,
                                int act, double act_param, void *ws, size_t ws_size,
                                int n_threads) {
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
                                   (T)1, (T)0, NULL, ws, ws_size, n_threads);
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
                                       ldx, dw, db, act, act_param, NULL, 0, n_threads);
}
