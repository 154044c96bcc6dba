/* The network engine for one dtype; included by engine.c with T and FM_SUFFIX defined.
 *
 * Every step calls the same kernels with the same arguments, in the same order, as the Python
 * layer-by-layer path (model.py), so both give the same bits; what the engine saves is the
 * interpreter, the allocations and the GIL. */

/* How the engine applies SGD: after the backward pass, or fused into it. */
#ifndef FM_UPDATE_NONE
#define FM_UPDATE_NONE 0
#define FM_UPDATE_RANK1 1
#define FM_UPDATE_GEMM 2
#endif

typedef struct {
    T **out;           /* per layer: output, batch x n_out */
    T **pre;           /* per layer: Dense pre-activation, Maxout pieces, or a dropout mask */
    double *activity;  /* per layer: activity penalty of the last forward pass */
    T *xb;             /* gathered input rows */
    const T *x0;       /* this batch's input rows: xb, or the caller's read in place */
    T *tb;             /* gathered targets */
    int32_t *lb;       /* gathered labels */
    T *swb;            /* gathered sample weights */
    T *g0, *g1;        /* backward ping-pong buffers */
    T *scratch;        /* dz of a Dense or Maxout layer */
    void *gemm_ws;
    size_t gemm_ws_size;
} FM_FN(net_ws);

static int64_t FM_FN(gemm_cols)(const fm_layer *ly) {
    return ly->kind == FM_LAYER_MAXOUT ? ly->n_out * ly->pieces : ly->n_out;
}

static int FM_FN(has_weights)(const fm_layer *ly) {
    return ly->kind == FM_LAYER_DENSE || ly->kind == FM_LAYER_MAXOUT;
}

static int FM_FN(net_check)(const fm_net *net) {
    if (!net || net->n_layers < 1 || !net->layers) return FM_ERR_ARG;
    if (net->loss < 0 || net->loss >= FM_LOSS_COUNT_) return FM_ERR_ARG;
    if (net->link < 0 || net->link >= FM_ACT_COUNT_) return FM_ERR_ARG;
    for (int l = 0; l < net->n_layers; l++) {
        const fm_layer *ly = &net->layers[l];
        if (ly->n_in < 1 || ly->n_out < 1 || ly->kind < 0 || ly->kind >= FM_LAYER_COUNT_)
            return FM_ERR_ARG;
        if (l > 0 && net->layers[l - 1].n_out != ly->n_in) return FM_ERR_ARG;
        if (!FM_FN(has_weights)(ly) && ly->n_in != ly->n_out) return FM_ERR_ARG;
        if (ly->act < 0 || ly->act >= FM_ACT_COUNT_) return FM_ERR_ARG;
        if (ly->kind == FM_LAYER_MAXOUT && ly->pieces < 1) return FM_ERR_ARG;
        if (ly->kind == FM_LAYER_DROPOUT && !(ly->act_param >= 0.0 && ly->act_param < 1.0))
            return FM_ERR_ARG;
    }
    if (net->fused == FM_FUSED_ACTIVATION &&
        (net->n_layers < 2 || net->layers[net->n_layers - 1].kind != FM_LAYER_ACTIVATION))
        return FM_ERR_ARG;
    if (net->fused == FM_FUSED_DENSE && net->layers[net->n_layers - 1].kind != FM_LAYER_DENSE)
        return FM_ERR_ARG;
    return FM_OK;
}

/* 1 if a Dense layer keeps its pre-activation for the backward pass. ReLU does not: its
 * derivative tests z > 0, and y = (z > 0 ? z : 0) > 0 exactly when z > 0 (NaN included), so
 * the backward reads y and the forward stores one array instead of two. */
static int FM_FN(dense_has_pre)(const fm_layer *ly) {
    return ly->kind == FM_LAYER_DENSE && !(ly->act == FM_ACT_IDENTITY && ly->act_param == 1.0) &&
           ly->act != FM_ACT_RELU;
}

/* Elements of the per-layer `pre` buffer per row (0: none). */
static int64_t FM_FN(pre_width)(const fm_layer *ly, int training) {
    if (ly->kind == FM_LAYER_MAXOUT) return ly->n_out * ly->pieces;
    if (!training) return 0;
    if (FM_FN(dense_has_pre)(ly) || ly->kind == FM_LAYER_DROPOUT) return ly->n_out;
    return 0;
}

#define FM_ALIGN_UP(x) (((x) + 63) & ~(size_t)63)

/* Lays the workspace out (or only measures it when base is NULL); returns the bytes needed. */
static size_t FM_FN(net_layout)(const fm_net *net, int64_t batch, int training, int n_threads,
                                char *base, FM_FN(net_ws) *ws) {
    const int L = net->n_layers;
    const int64_t n_in0 = net->layers[0].n_in;
    const int64_t k = net->layers[L - 1].n_out;
    /* the backward buffers hold layer outputs' gradients and dz, never one of the input's
     * width (no dX for the first layer): a full batch of MNIST into 10 units needs 3 x 60000 x
     * 10 elements there, not 3 x 60000 x 784 */
    int64_t widest = k;
    size_t gemm = 0, off = 0;
    for (int l = 0; l < L; l++) {
        const fm_layer *ly = &net->layers[l];
        const int64_t cols = FM_FN(gemm_cols)(ly);
        widest = FM_MAX(widest, FM_MAX(ly->n_out, cols));
        if (FM_FN(has_weights)(ly)) {
            size_t s = training ? FM_FN(fm_dense_workspace_size)(batch, ly->n_in, cols, n_threads)
                                : FM_FN(fm_gemm_workspace_size)(batch, cols, ly->n_in, n_threads);
            gemm = FM_MAX(gemm, s);
        }
    }
#define FM_TAKE(ptr, type, count)                                    \
    do {                                                             \
        if (base) ptr = (type *)(base + off);                        \
        off = FM_ALIGN_UP(off + sizeof(type) * (size_t)(count));     \
    } while (0)
    FM_TAKE(ws->out, T *, L);
    FM_TAKE(ws->pre, T *, L);
    FM_TAKE(ws->activity, double, L);
    for (int l = 0; l < L; l++) {
        const fm_layer *ly = &net->layers[l];
        FM_TAKE(ws->out[l], T, batch * ly->n_out);
        const int64_t pw = FM_FN(pre_width)(ly, training);
        if (pw) {
            FM_TAKE(ws->pre[l], T, batch * pw);
        } else if (base) {
            ws->pre[l] = NULL;
        }
    }
    /* Inference reads the caller's rows in place unless the first layer needs unit strides. */
    if (training || !FM_FN(has_weights)(&net->layers[0])) {
        FM_TAKE(ws->xb, T, batch * n_in0);
    } else if (base) {
        ws->xb = NULL;
    }
    if (training) {
        FM_TAKE(ws->tb, T, batch * k);
        FM_TAKE(ws->lb, int32_t, batch);
        FM_TAKE(ws->swb, T, batch);
        FM_TAKE(ws->g0, T, batch * widest);
        FM_TAKE(ws->g1, T, batch * widest);
        FM_TAKE(ws->scratch, T, batch * widest);
    }
    FM_TAKE(ws->gemm_ws, char, gemm);
#undef FM_TAKE
    if (base) ws->gemm_ws_size = gemm;
    return off + 64; /* slack for aligning the base pointer */
}

size_t FM_FN(fm_net_workspace_size)(const fm_net *net, int64_t batch, int training, int n_threads) {
    if (FM_FN(net_check)(net) != FM_OK || batch < 1) return 0;
    FM_FN(net_ws) ws;
    return FM_FN(net_layout)(net, batch, training, n_threads, NULL, &ws);
}

static int FM_FN(net_bind)(const fm_net *net, int64_t batch, int training, int n_threads,
                           void *workspace, size_t workspace_size, FM_FN(net_ws) *ws) {
    if (!workspace) return FM_ERR_ARG;
    size_t need = FM_FN(net_layout)(net, batch, training, n_threads, NULL, ws);
    if (workspace_size < need) return FM_ERR_WORKSPACE;
    char *base = (char *)FM_ALIGN_UP((uintptr_t)workspace);
    FM_FN(net_layout)(net, batch, training, n_threads, base, ws);
    for (int l = 0; l < net->n_layers; l++) ws->activity[l] = 0.0;
    return FM_OK;
}

/* A row's lines fetched into L2 (T1), not L1: the L1's few miss buffers held them back (a
 * 60000 x 784 float gather, Zen 4: 21 -> 11 ms an epoch with T1, no gain with T0). */
static inline void FM_FN(prefetch_row)(const T *row, int64_t cols) {
    for (size_t off = 0; off < sizeof(T) * (size_t)cols; off += 64)
        __builtin_prefetch((const char *)row + off, 0, 2);
}

/* Shuffled rows come from DRAM, one page each: each row's lines are fetched 4 rows ahead, which
 * keeps more misses in flight (the training loop fetches the next batch's first 4). */
#define FM_GATHER_AHEAD 4

/* Copy rows idx[0..rows) (or 0..rows without idx) of a strided matrix into a contiguous one. */
static void FM_FN(gather_rows)(int64_t rows, int64_t cols, const int64_t *idx, const T *src,
                               int64_t rs, int64_t cs, T *dst, int n_threads) {
    const int nt = fm_threads_for((double)rows * (double)cols, n_threads);
    int64_t r;
    FM_PARALLEL_FOR(nt, for (r = 0; r < rows; r++) {
        const T *s = src + (idx ? idx[r] : r) * rs;
        T *d = dst + r * cols;
        if (idx && cs == 1 && r + FM_GATHER_AHEAD < rows)
            FM_FN(prefetch_row)(src + idx[r + FM_GATHER_AHEAD] * rs, cols);
        if (cs == 1) memcpy(d, s, sizeof(T) * (size_t)cols);
        else for (int64_t j = 0; j < cols; j++) d[j] = s[j * cs];
    });
}

/* 1 if idx[0..rows) are consecutive row numbers. */
static int FM_FN(consecutive)(const int64_t *idx, int64_t rows) {
    for (int64_t r = 1; r < rows; r++)
        if (idx[r] != idx[0] + r) return 0;
    return 1;
}

/* Forward through layers [0, last]. Training keeps what backward needs, draws dropout and noise
 * from `stream` (the optimizer's step) and records activity penalties. x is the first layer's
 * (strided) input. */
static int FM_FN(net_forward)(const fm_net *net, int last, int64_t rows, const T *x, int64_t rsx,
                              int64_t csx, const T *params, FM_FN(net_ws) *ws, int training,
                              int skip_last_activation, uint64_t stream, int n_threads) {
    int status = FM_OK;
    const T *in = x;
    int64_t rs = rsx, cs = csx;
    for (int l = 0; l <= last && status == FM_OK; l++) {
        const fm_layer *ly = &net->layers[l];
        T *out = ws->out[l];
        if (cs != 1 && !FM_FN(has_weights)(ly)) {
            /* elementwise kernels take unit column strides */
            FM_FN(gather_rows)(rows, ly->n_in, NULL, in, rs, cs, ws->xb, n_threads);
            in = ws->xb;
            rs = ly->n_in;
            cs = 1;
        }
        switch (ly->kind) {
        case FM_LAYER_DENSE: {
            const T *w = params + ly->w_offset;
            const T *b = ly->b_offset >= 0 ? params + ly->b_offset : NULL;
            int act = ly->act;
            double param = ly->act_param;
            if (l == last && skip_last_activation) {
                act = FM_ACT_IDENTITY;
                param = 1.0;
            }
            T *pre = (training && act == ly->act && FM_FN(dense_has_pre)(ly)) ? ws->pre[l] : NULL;
            if (act == FM_ACT_IDENTITY && param == 1.0) pre = NULL;
            status = FM_FN(fm_dense_forward_ws)(rows, ly->n_in, ly->n_out, in, rs, cs, w, b, pre, out,
                                                ly->n_out, act, param, ws->gemm_ws, ws->gemm_ws_size,
                                                n_threads);
            break;
        }
        case FM_LAYER_MAXOUT: {
            const int64_t cols = FM_FN(gemm_cols)(ly);
            status = FM_FN(fm_dense_forward_ws)(
                rows, ly->n_in, cols, in, rs, cs, params + ly->w_offset,
                ly->b_offset >= 0 ? params + ly->b_offset : NULL, NULL, ws->pre[l], cols,
                FM_ACT_IDENTITY, 1.0, ws->gemm_ws, ws->gemm_ws_size, n_threads);
            if (status == FM_OK)
                status = FM_FN(fm_maxout_forward)(rows, ly->n_out, ly->pieces, ws->pre[l], cols, out,
                                                  ly->n_out, n_threads);
            break;
        }
        case FM_LAYER_ACTIVATION:
            status = FM_FN(fm_act_forward)(rows, ly->n_out, in, rs, out, ly->n_out, ly->act,
                                           ly->act_param, n_threads);
            break;
        case FM_LAYER_PRELU:
            status = FM_FN(fm_prelu_forward)(rows, ly->n_out, in, rs, params + ly->w_offset, out,
                                             ly->n_out, n_threads);
            break;
        case FM_LAYER_DROPOUT:
            if (training)
                status = FM_FN(fm_dropout_forward)(rows, ly->n_out, in, rs, ws->pre[l], out, ly->n_out,
                                                   ly->act_param, ly->seed, stream, n_threads);
            else
                FM_FN(gather_rows)(rows, ly->n_out, NULL, in, rs, 1, out, n_threads);
            break;
        case FM_LAYER_NOISE:
            if (training)
                status = FM_FN(fm_gaussian_noise)(rows, ly->n_out, in, rs, out, ly->n_out,
                                                  ly->act_param, ly->seed, stream, n_threads);
            else
                FM_FN(gather_rows)(rows, ly->n_out, NULL, in, rs, 1, out, n_threads);
            break;
        case FM_LAYER_ACTIVITY:
            FM_FN(gather_rows)(rows, ly->n_out, NULL, in, rs, 1, out, n_threads);
            if (training)
                status = FM_FN(fm_activity_penalty)(rows, ly->n_out, out, ly->n_out, NULL, 0,
                                                    &ws->activity[l], ly->l1, ly->l2);
            break;
        default:
            return FM_ERR_ARG;
        }
        in = out;
        rs = ly->n_out;
        cs = 1;
    }
    return status;
}

/* value += every penalty in layer order (as the Python path adds them): weight penalties of
 * Dense and Maxout layers and the activity penalties of the last forward pass; with grads, the
 * weight penalties' gradients are added too (activity gradients go in during backward). */
static void FM_FN(add_penalties)(const fm_net *net, const T *params, T *grads,
                                 const FM_FN(net_ws) *ws, double *value) {
    for (int l = 0; l < net->n_layers; l++) {
        const fm_layer *ly = &net->layers[l];
        if (ly->kind == FM_LAYER_ACTIVITY) {
            *value += ws->activity[l];
            continue;
        }
        if (!FM_FN(has_weights)(ly) || !(ly->l1 != 0.0 || ly->l2 != 0.0)) continue;
        double pen = 0.0;
        FM_FN(fm_penalty)(ly->n_in * FM_FN(gemm_cols)(ly), params + ly->w_offset,
                          grads ? grads + ly->w_offset : NULL, &pen, ly->l1, ly->l2);
        *value += pen;
    }
}

static int FM_FN(apply_max_norm)(const fm_layer *ly, T *params, int n_threads) {
    if (!FM_FN(has_weights)(ly) || !(ly->max_norm > 0)) return FM_OK;
    return FM_FN(fm_max_norm)(ly->n_in, FM_FN(gemm_cols)(ly), params + ly->w_offset, ly->max_norm,
                              n_threads);
}

static int FM_FN(dense_fusable)(const fm_layer *ly) {
    return ly->kind == FM_LAYER_DENSE && ly->l1 == 0.0 && ly->l2 == 0.0;
}

/* Backward of one Dense layer for a single sample, with its update fused in: the same kernels
 * as fm_dense_backward_ws for dz and dx (dx from the weights before the update), then the
 * rank-1 update in place of dW = x^T dz (any rule: each element's gradient is the same
 * product x_i dz_j the weight-gradient GEMM forms at batch 1). */
static int FM_FN(dense_backward_rank1)(const fm_layer *ly, const T *x, const T *pre,
                                       const T *y, const T *dy, T *dz, T *dx,
                                       const fm_epilogue *dx_epi, T *params, const fm_optim *opt,
                                       int act, double param, FM_FN(net_ws) *ws, int n_threads) {
    int status;
    const T *g = dy;
    if (!(act == FM_ACT_IDENTITY && param == 1.0)) {
        status = FM_FN(fm_act_backward)(1, ly->n_out, pre, ly->n_out, y, ly->n_out, dy, ly->n_out,
                                        dz, ly->n_out, act, param, n_threads);
        if (status != FM_OK) return status;
        g = dz;
    }
    T *w = params + ly->w_offset;
    if (dx) {
        status = FM_FN(fm_gemm_ex)(1, ly->n_in, ly->n_out, g, ly->n_out, 1, w, 1, ly->n_out, dx,
                                   ly->n_in, 1, (T)1, (T)0, dx_epi, ws->gemm_ws, ws->gemm_ws_size,
                                   n_threads);
        if (status != FM_OK) return status;
    }
    status = FM_FN(fm_optim_rank1_update)(ly->n_in, ly->n_out, x, g, params, ly->w_offset,
                                          ly->b_offset, opt, n_threads);
    if (status != FM_OK) return status;
    return FM_FN(apply_max_norm)(ly, params, n_threads);
}

/* Backward of one Dense layer for a mini-batch with plain SGD fused into the weight gradient's
 * GEMM: W := W - lr * x^T dz, which rounds exactly as computing dW = x^T dz and then
 * W - lr * dW when the product is accumulated in one k block (checked by the caller), without
 * writing and re-reading dW. dx comes first, from the weights before the update; the bias goes
 * through its gradient and the usual SGD rule. */
static int FM_FN(dense_backward_gemm_sgd)(const fm_layer *ly, int64_t rows, const T *x,
                                          const T *pre, const T *y, const T *dy, T *dz, T *dx,
                                          const fm_epilogue *dx_epi, T *params, T *grads,
                                          const fm_optim *opt, int act, double param,
                                          FM_FN(net_ws) *ws, int n_threads) {
    int status = FM_OK;
    const T *g = dy;
    if (!(act == FM_ACT_IDENTITY && param == 1.0)) {
        status = FM_FN(fm_act_backward)(rows, ly->n_out, pre, ly->n_out, y, ly->n_out, dy,
                                        ly->n_out, dz, ly->n_out, act, param, n_threads);
        if (status != FM_OK) return status;
        g = dz;
    }
    T *w = params + ly->w_offset;
    if (dx) {
        status = FM_FN(fm_gemm_ex)(rows, ly->n_in, ly->n_out, g, ly->n_out, 1, w, 1, ly->n_out, dx,
                                   ly->n_in, 1, (T)1, (T)0, dx_epi, ws->gemm_ws, ws->gemm_ws_size,
                                   n_threads);
        if (status != FM_OK) return status;
    }
    status = FM_FN(fm_gemm_ex)(ly->n_in, ly->n_out, rows, x, 1, ly->n_in, g, ly->n_out, 1, w,
                               ly->n_out, 1, -(T)opt->lr, (T)1, NULL, ws->gemm_ws,
                               ws->gemm_ws_size, n_threads);
    if (status == FM_OK && ly->b_offset >= 0) {
        status = FM_FN(fm_colsum)(rows, ly->n_out, g, ly->n_out, grads + ly->b_offset, n_threads);
        if (status == FM_OK)
            status = FM_FN(fm_optim_slice)(ly->b_offset, ly->n_out, grads, params, opt, n_threads);
    }
    if (status == FM_OK) status = FM_FN(apply_max_norm)(ly, params, n_threads);
    return status;
}

/* Backward through layers [top, 0] from g (d loss / d output of layer top). With fused_update,
 * penalty-free Dense layers are updated on the way (batch 1, SGD). */
static int FM_FN(net_backward)(const fm_net *net, int top, int64_t rows, T *params, T *grads,
                               const fm_optim *opt, int fused_update, FM_FN(net_ws) *ws,
                               int n_threads) {
    const int L = net->n_layers;
    T *g = ws->g0, *g_next = ws->g1;
    int status = FM_OK;
    /* 1 when g already holds the gradient at layer l's pre-activation: the dX product of the
     * layer above applied this ReLU layer's derivative in its output tiles */
    int g_at_pre = 0;
    for (int l = top; l >= 0 && status == FM_OK; l--) {
        const fm_layer *ly = &net->layers[l];
        const T *in = l > 0 ? ws->out[l - 1] : ws->x0;
        int swap = 1, next_at_pre = 0;
        switch (ly->kind) {
        case FM_LAYER_DENSE: {
            const int from_pre = (l == L - 1 && net->fused == FM_FUSED_DENSE) || g_at_pre;
            const int act = from_pre ? FM_ACT_IDENTITY : ly->act;
            const double param = from_pre ? 1.0 : ly->act_param;
            const T *pre = FM_FN(dense_has_pre)(ly) ? ws->pre[l] : ws->out[l];
            /* a ReLU Dense layer below: its derivative is applied inside this layer's dX
             * product (a select on the tile just computed), instead of a pass of its own */
            fm_epilogue dx_epi;
            const fm_epilogue *dxe = NULL;
            if (l > 0 && net->layers[l - 1].kind == FM_LAYER_DENSE &&
                net->layers[l - 1].act == FM_ACT_RELU) {
                const fm_layer *below = &net->layers[l - 1];
                dx_epi.bias = NULL;
                dx_epi.act = FM_ACT_RELU;
                dx_epi.act_param = below->act_param;
                dx_epi.z = FM_FN(dense_has_pre)(below) ? ws->pre[l - 1] : ws->out[l - 1];
                dx_epi.rsz = below->n_out;
                dx_epi.grad = 1;
                dxe = &dx_epi;
                next_at_pre = 1;
            }
            if (fused_update == FM_UPDATE_RANK1 && FM_FN(dense_fusable)(ly)) {
                status = FM_FN(dense_backward_rank1)(ly, in, pre, ws->out[l], g, ws->scratch,
                                                     l > 0 ? g_next : NULL, dxe, params, opt, act,
                                                     param, ws, n_threads);
                break;
            }
            if (fused_update == FM_UPDATE_GEMM && FM_FN(dense_fusable)(ly)) {
                status = FM_FN(dense_backward_gemm_sgd)(ly, rows, in, pre, ws->out[l], g, ws->scratch,
                                                        l > 0 ? g_next : NULL, dxe, params, grads,
                                                        opt, act, param, ws, n_threads);
                break;
            }
            status = FM_FN(fm_dense_backward_ws)(
                rows, ly->n_in, ly->n_out, in, ly->n_in, 1, params + ly->w_offset, pre, ws->out[l], g,
                ly->n_out, ws->scratch, l > 0 ? g_next : NULL, ly->n_in, grads + ly->w_offset,
                ly->b_offset >= 0 ? grads + ly->b_offset : NULL, act, param, dxe, ws->gemm_ws,
                ws->gemm_ws_size, n_threads);
            break;
        }
        case FM_LAYER_MAXOUT: {
            const int64_t cols = FM_FN(gemm_cols)(ly);
            status = FM_FN(fm_maxout_backward)(rows, ly->n_out, ly->pieces, ws->pre[l], cols, g,
                                               ly->n_out, ws->scratch, cols, n_threads);
            if (status == FM_OK)
                status = FM_FN(fm_dense_backward_ws)(
                    rows, ly->n_in, cols, in, ly->n_in, 1, params + ly->w_offset, ws->scratch,
                    ws->scratch, ws->scratch, cols, ws->scratch, l > 0 ? g_next : NULL, ly->n_in,
                    grads + ly->w_offset, ly->b_offset >= 0 ? grads + ly->b_offset : NULL,
                    FM_ACT_IDENTITY, 1.0, NULL, ws->gemm_ws, ws->gemm_ws_size, n_threads);
            break;
        }
        case FM_LAYER_ACTIVATION:
            if (l > 0)
                status = FM_FN(fm_act_backward)(rows, ly->n_out, in, ly->n_in, ws->out[l], ly->n_out, g,
                                                ly->n_out, g_next, ly->n_in, ly->act, ly->act_param,
                                                n_threads);
            break;
        case FM_LAYER_PRELU:
            status = FM_FN(fm_prelu_backward)(rows, ly->n_out, in, ly->n_in, params + ly->w_offset, g,
                                              ly->n_out, g_next, ly->n_in, grads + ly->w_offset,
                                              n_threads);
            break;
        case FM_LAYER_DROPOUT:
            if (l > 0)
                status = FM_FN(fm_mul)(rows, ly->n_out, g, ly->n_out, ws->pre[l], ly->n_out, g_next,
                                       ly->n_in, n_threads);
            break;
        case FM_LAYER_NOISE:
            swap = 0; /* the gradient passes through unchanged */
            break;
        case FM_LAYER_ACTIVITY:
            status = FM_FN(fm_activity_penalty)(rows, ly->n_out, ws->out[l], ly->n_out, g, ly->n_out,
                                                NULL, ly->l1, ly->l2);
            swap = 0;
            break;
        default:
            return FM_ERR_ARG;
        }
        if (swap) {
            T *tmp = g;
            g = g_next;
            g_next = tmp;
        }
        g_at_pre = next_at_pre;
    }
    return status;
}

static int64_t FM_FN(param_count)(const fm_net *net) {
    int64_t n_params = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const fm_layer *ly = &net->layers[l];
        int64_t end = 0;
        if (FM_FN(has_weights)(ly)) {
            end = ly->w_offset + ly->n_in * FM_FN(gemm_cols)(ly);
            if (ly->b_offset >= 0) end = FM_MAX(end, ly->b_offset + FM_FN(gemm_cols)(ly));
        } else if (ly->kind == FM_LAYER_PRELU) {
            end = ly->w_offset + ly->n_out;
        }
        n_params = FM_MAX(n_params, end);
    }
    return n_params;
}

int FM_FN(fm_net_train_epoch)(const fm_net *net, int64_t n, const int64_t *order, int64_t batch_size,
                              const T *x, int64_t rsx, int64_t csx, const T *t, int64_t ldt,
                              const int32_t *labels, const T *sample_weight,
                              T *params, T *grads, fm_optim *opt,
                              double *loss_sum, double *weight_sum, int64_t *steps_done,
                              void *workspace, size_t workspace_size, double *tuner,
                              int max_threads) {
    int status = FM_FN(net_check)(net);
    if (status != FM_OK) return status;
    if (n < 0 || batch_size < 1 || !order || !params || !grads || !opt || !loss_sum ||
        !weight_sum || !steps_done)
        return FM_ERR_ARG;
    const int labelled = net->loss == FM_LOSS_SOFTMAX_CE_LABELS;
    if (labelled ? !labels : !t) return FM_ERR_ARG;
    FM_FN(net_ws) ws;
    status = FM_FN(net_bind)(net, batch_size, 1, max_threads, workspace, workspace_size, &ws);
    if (status != FM_OK) return status;

    const int L = net->n_layers;
    const fm_layer *first = &net->layers[0];
    const int64_t k = net->layers[L - 1].n_out;
    const int top = net->fused == FM_FUSED_ACTIVATION ? L - 2 : L - 1;
    const int64_t n_params = FM_FN(param_count)(net);
    *steps_done = 0;

    for (int64_t s = 0; s < n; s += batch_size) {
        const int64_t rows = FM_MIN(batch_size, n - s);
        const int n_threads = fm_tuner_next(tuner, max_threads);
        const double started = fm_wtime();
        const int64_t *idx = order + s;
        /* Rows that follow each other in X, laid out as the gather lays them out, are read in
         * place: a full batch (no copy of all of X every epoch), no shuffling, train_on_batch. */
        const int consecutive = FM_FN(consecutive)(idx, rows);
        const T *tb = ws.tb;
        ws.x0 = ws.xb;
        if (consecutive && csx == 1 && rsx == first->n_in)
            ws.x0 = x + idx[0] * rsx;
        else
            FM_FN(gather_rows)(rows, first->n_in, idx, x, rsx, csx, ws.xb, n_threads);
        /* the rows 4 ahead that this batch's gather did not fetch: the next batch's first ones
         * (at batch 1 no row was fetched ahead at all) */
        if (csx == 1)
            for (int64_t p = FM_MAX(s + rows, s + FM_GATHER_AHEAD);
                 p < FM_MIN(n, s + rows + FM_GATHER_AHEAD); p++)
                FM_FN(prefetch_row)(x + order[p] * rsx, first->n_in);
        double w_b = (double)rows;
        if (labelled) {
            for (int64_t r = 0; r < rows; r++) ws.lb[r] = labels[idx[r]];
        } else if (consecutive && ldt == k) {
            tb = t + idx[0] * ldt;
        } else {
            FM_FN(gather_rows)(rows, k, idx, t, ldt, 1, ws.tb, n_threads);
        }
        if (sample_weight) {
            w_b = 0.0;
            for (int64_t r = 0; r < rows; r++) ws.swb[r] = sample_weight[idx[r]];
            for (int64_t r = 0; r < rows; r++) w_b += (double)ws.swb[r];
        }

        status = FM_FN(net_forward)(net, top, rows, ws.x0, first->n_in, 1, params, &ws, 1, 0,
                                    (uint64_t)opt->step, n_threads);
        if (status != FM_OK) return status;
        const T *logits = net->fused == FM_FUSED_DENSE ? ws.pre[L - 1] : ws.out[top];

        double value = 0.0;
        status = FM_FN(fm_loss)(rows, k, logits, k, labelled ? NULL : tb, k,
                                labelled ? ws.lb : NULL, sample_weight ? ws.swb : NULL, ws.g0, k,
                                &value, net->loss, n_threads);
        if (status != FM_OK) return status;

        /* Without clipping, each penalty-free Dense layer is updated as its gradient is
         * formed, dW never stored: at batch 1 as a rank-1 update (any rule), for larger
         * batches with plain SGD inside the weight-gradient GEMM. The loss, penalties
         * included, is known before any weight moves, so a non-finite one still leaves the
         * weights as they were. Clipping needs every gradient first, so it turns this off. */
        int fused_update = FM_UPDATE_NONE;
        if (!(opt->clip_value > 0) && !(opt->clip_norm > 0)) {
            if (rows == 1)
                fused_update = FM_UPDATE_RANK1;
            else if (opt->kind == FM_OPT_SGD && opt->dampening == 0.0 && opt->momentum == 0.0 &&
                     opt->weight_decay == 0.0 && FM_FN(fm_gemm_single_kblock)(rows))
                fused_update = FM_UPDATE_GEMM;
        }
        if (fused_update) {
            FM_FN(add_penalties)(net, params, NULL, &ws, &value);
            if (!isfinite(value)) return FM_ERR_NONFINITE;
        }
        status = FM_FN(net_backward)(net, top, rows, params, grads, opt, fused_update, &ws, n_threads);
        if (status != FM_OK) return status;

        if (fused_update) {
            /* The layers not updated during backward: penalty gradients, then the rule on
             * their slices (elementwise, so the same bits as one pass over the whole vector). */
            double unused = 0.0;
            FM_FN(add_penalties)(net, params, grads, &ws, &unused);
            for (int l = 0; l < L && status == FM_OK; l++) {
                const fm_layer *ly = &net->layers[l];
                if (FM_FN(has_weights)(ly) && !FM_FN(dense_fusable)(ly)) {
                    const int64_t cols = FM_FN(gemm_cols)(ly);
                    status = FM_FN(fm_optim_slice)(ly->w_offset, ly->n_in * cols, grads, params,
                                                   opt, n_threads);
                    if (status == FM_OK && ly->b_offset >= 0)
                        status = FM_FN(fm_optim_slice)(ly->b_offset, cols, grads, params, opt,
                                                       n_threads);
                    if (status == FM_OK) status = FM_FN(apply_max_norm)(ly, params, n_threads);
                } else if (ly->kind == FM_LAYER_PRELU) {
                    status = FM_FN(fm_optim_slice)(ly->w_offset, ly->n_out, grads, params, opt,
                                                   n_threads);
                }
            }
            if (status != FM_OK) return status;
            fm_optim_finish_step(opt);
        } else {
            FM_FN(add_penalties)(net, params, grads, &ws, &value);
            if (!isfinite(value)) return FM_ERR_NONFINITE;
            status = FM_FN(fm_optim_step)(n_params, grads, params, opt, n_threads);
            for (int l = 0; l < L && status == FM_OK; l++)
                status = FM_FN(apply_max_norm)(&net->layers[l], params, n_threads);
            if (status != FM_OK) return status;
        }
        *loss_sum += value * w_b;
        *weight_sum += w_b;
        (*steps_done)++;
        if (rows == batch_size)  /* a short last batch would skew the per-row time */
            fm_tuner_record(tuner, n_threads, max_threads, fm_wtime() - started, rows);
    }
    return FM_OK;
}

int FM_FN(fm_net_predict)(const fm_net *net, int64_t n, const T *x, int64_t rsx, int64_t csx,
                          const T *params, T *out, int64_t ldo, int raw, int64_t chunk,
                          void *workspace, size_t workspace_size, int n_threads) {
    int status = FM_FN(net_check)(net);
    if (status != FM_OK) return status;
    if (n < 0 || chunk < 1 || !params || !out) return FM_ERR_ARG;
    FM_FN(net_ws) ws;
    status = FM_FN(net_bind)(net, chunk, 0, n_threads, workspace, workspace_size, &ws);
    if (status != FM_OK) return status;
    const int L = net->n_layers;
    const int64_t k = net->layers[L - 1].n_out;
    const int top = net->fused == FM_FUSED_ACTIVATION ? L - 2 : L - 1;
    const int skip_last = net->fused == FM_FUSED_DENSE;
    /* one row runs faster than a parallel region starts (MNIST MLP: 5.5 us on 1 thread, 8.1 on
     * 2; from 2 rows on, 2 threads win) */
    if (n == 1) n_threads = 1;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t rows = FM_MIN(chunk, n - i0);
        status = FM_FN(net_forward)(net, top, rows, x + i0 * rsx, rsx, csx, params, &ws, 0, skip_last,
                                    0, n_threads);
        if (status != FM_OK) return status;
        const T *logits = ws.out[top];
        if (raw || net->link == FM_ACT_IDENTITY) {
            for (int64_t r = 0; r < rows; r++)
                memcpy(out + (i0 + r) * ldo, logits + r * k, sizeof(T) * (size_t)k);
        } else {
            status = FM_FN(fm_act_forward)(rows, k, logits, k, out + i0 * ldo, ldo, net->link, 1.0,
                                           n_threads);
            if (status != FM_OK) return status;
        }
    }
    return FM_OK;
}
/* Finite means an exponent field not all ones: integer tests, so the loop vectorizes (a float
 * sum could not be reordered). */
FM_CLONES static int FM_FN(all_finite_rows)(int64_t rows, int64_t cols, const T *x, int64_t rsx,
                                            int64_t csx) {
    const uint64_t exp_mask = sizeof(T) == 4 ? 0x7f800000u : 0x7ff0000000000000u;
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * rsx;
        unsigned bad = 0;
        if (sizeof(T) == 4) {
            for (int64_t j = 0; j < cols; j++) {
                uint32_t u;
                memcpy(&u, xr + j * csx, sizeof u);
                bad |= (u & (uint32_t)exp_mask) == (uint32_t)exp_mask;
            }
        } else {
            for (int64_t j = 0; j < cols; j++) {
                uint64_t u;
                memcpy(&u, xr + j * csx, sizeof u);
                bad |= (u & exp_mask) == exp_mask;
            }
        }
        if (bad) return 0;
    }
    return 1;
}

/* A pass bound by memory bandwidth, which two cores have more of than one (MNIST's 47 million
 * floats: 6.6-8 ms on one Zen 4 core, numpy's sum 10-15): blocks of rows, each block's answer
 * kept, then combined. */
#define FM_FINITE_BLOCKS 16
int FM_FN(fm_all_finite)(int64_t rows, int64_t cols, const T *x, int64_t rsx, int64_t csx,
                         int n_threads) {
    const int nt = fm_threads_for((double)rows * (double)cols, n_threads);
    int ok[FM_FINITE_BLOCKS];
    int64_t b;
    FM_PARALLEL_FOR(nt, for (b = 0; b < FM_FINITE_BLOCKS; b++) {
        const int64_t r0 = rows * b / FM_FINITE_BLOCKS, r1 = rows * (b + 1) / FM_FINITE_BLOCKS;
        ok[b] = FM_FN(all_finite_rows)(r1 - r0, cols, x + r0 * rsx, rsx, csx);
    });
    for (b = 0; b < FM_FINITE_BLOCKS; b++)
        if (!ok[b]) return 0;
    return 1;
}

#undef FM_ALIGN_UP
#undef FM_GATHER_AHEAD
#undef FM_FINITE_BLOCKS
