# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""Binding to the C kernels: typed memoryviews (gemm: the buffers themselves) in, raw pointers to
C, status codes to exceptions.

Stateless: callers allocate every output. Shapes are checked here (cheaply, once); the kernels
trust them. Every kernel runs without the GIL.
"""
from cython cimport floating
from libc.stdint cimport int64_t, int32_t, uint64_t
from libc.stdlib cimport malloc, free
from cpython.buffer cimport (PyObject_CheckBuffer, PyObject_GetBuffer, PyBuffer_Release, PyBUF_RECORDS,
                            PyBUF_RECORDS_RO, Py_buffer)
import numpy as np

from fastmlp._core cimport *

ACTIVATIONS = {
    "identity": 0, "step": 1, "sign": 2, "sigmoid": 3, "tanh": 4, "relu": 5, "leaky_relu": 6,
    "elu": 7, "softplus": 8, "silu": 9, "gelu": 10, "softmax": 11,
}
OPTIMIZERS = {"sgd": 0, "adagrad": 1, "adadelta": 2, "rmsprop": 3, "adam": 4, "adamw": 5,
              "adamax": 6, "nadam": 7, "rprop": 8}
LAYERS = {"dense": 0, "activation": 1, "prelu": 2, "dropout": 3, "noise": 4, "activity": 5,
          "maxout": 6}
FUSED = {None: 0, "dense": 1, "activation": 2}
LOSSES = {
    "mse": 0, "bce_logits": 1, "softmax_ce": 2, "softmax_ce_labels": 3, "perceptron": 4, "hinge": 5,
}


cdef int _check(int status) except -1:
    if status == FM_OK:
        return 0
    if status == FM_ERR_NOMEM:
        raise MemoryError("fastmlp kernel could not allocate its workspace")
    if status == FM_ERR_LABEL:
        raise ValueError("a class label is outside [0, n_classes); labels must be integers "
                         "0..n_classes-1 (encode them first, e.g. with np.unique(y, return_inverse=True))")
    if status == FM_ERR_WORKSPACE:
        raise ValueError("fastmlp kernel workspace is too small")
    raise ValueError(f"fastmlp kernel rejected its arguments (status {status})")


cdef inline int64_t _es(Py_ssize_t byte_stride, Py_ssize_t itemsize) noexcept nogil:
    return <int64_t>(byte_stride // itemsize)


cdef _same_shape(name, a, b):
    if tuple(a) != tuple(b):
        raise ValueError(f"{name}: shape {tuple(a)} does not match {tuple(b)}")


TUNER_SIZE = FM_TUNER_SIZE


cdef double *_tuner_state(double[::1] state, str owner) except NULL:
    """The tuner state's values, once it is checked to hold FM_TUNER_SIZE of them."""
    if state.shape[0] < FM_TUNER_SIZE:
        raise ValueError(f"{owner}: the tuner state needs {FM_TUNER_SIZE} values")
    return &state[0]


def tuner_choice(double[::1] state, int cap):
    """The faster of 1 thread and cap as the tuner state has measured them, 0 before it has."""
    return fm_tuner_choice(_tuner_state(state, "tuner_choice"), cap)


def have_openmp():
    return bool(fm_have_openmp())


def gemm_kernel_name(dtype):
    dt = np.dtype(dtype)
    if dt == np.float32:
        return fm_gemm_kernel_name_f32().decode()
    if dt == np.float64:
        return fm_gemm_kernel_name_f64().decode()
    raise TypeError(f"dtype {dt} is not supported; use float32 or float64")


cdef bint _little_endian = np.little_endian


cdef char _real_kind(const Py_buffer *buf) noexcept:
    """b'f' (float32) or b'd' (float64) for a buffer of native-order reals, else 0."""
    cdef const char *f = buf.format
    if f == NULL or f[0] == 0:
        return 0
    if f[0] == b'@' or f[0] == b'=' or (f[0] == b'<' and _little_endian) or \
            (f[0] == b'>' and not _little_endian):
        f += 1
    if f[0] == 0 or f[1] != 0:
        return 0
    if f[0] == b'f' and buf.itemsize == 4:
        return b'f'
    if f[0] == b'd' and buf.itemsize == 8:
        return b'd'
    return 0


cdef char _matrix(obj, Py_buffer *buf, bint writable, str name) except 0:
    """obj's buffer (released by the caller) and its _real_kind if it is a 2-d array of float32
    or float64 whose strides are whole elements; else a ValueError that names the operand."""
    if not PyObject_CheckBuffer(obj):
        raise TypeError(f"gemm: {name} must be a NumPy array, got {type(obj).__name__}")
    PyObject_GetBuffer(obj, buf, PyBUF_RECORDS if writable else PyBUF_RECORDS_RO)
    cdef char kind = _real_kind(buf)
    if buf.ndim != 2 or kind == 0 or buf.strides[0] % buf.itemsize != 0 or \
            buf.strides[1] % buf.itemsize != 0 or <size_t>buf.buf % <size_t>buf.itemsize != 0:
        what = (f"{buf.ndim}-d" if buf.ndim != 2 else
                f"format {(<bytes>buf.format).decode()!r}" if kind == 0 else
                "an array not aligned to its element size")
        PyBuffer_Release(buf)
        raise ValueError(f"gemm: {name} must be a 2-d float32 or float64 array with aligned "
                         f"elements, got {what}; pass np.ascontiguousarray({name}, dtype=...)")
    return kind


def gemm(a, b, c, double alpha=1.0, double beta=0.0, int n_threads=1):
    """c := alpha * a @ b + beta * c, in place; any element strides (transposed views welcome)."""
    # The buffers are read directly: typed memoryviews took 0.44 us of a 1 x 1 x 1 product's
    # 0.69 us (three of them), about a tenth of a 256 x 10 x 32 one.
    cdef Py_buffer buf[3]
    cdef int held = 0, status, i
    cdef int64_t m, n, k, es
    cdef char kind[3]
    try:
        kind[0] = _matrix(a, &buf[0], False, "a")
        held = 1
        kind[1] = _matrix(b, &buf[1], False, "b")
        held = 2
        kind[2] = _matrix(c, &buf[2], True, "c")
        held = 3
        if kind[1] != kind[0] or kind[2] != kind[0]:
            names = [np.dtype(chr(kind[i])).name for i in range(3)]
            raise ValueError(f"gemm: a, b and c must have one dtype, float32 or float64; got "
                             f"{names[0]}, {names[1]} and {names[2]}")
        m, k, n = buf[0].shape[0], buf[0].shape[1], buf[1].shape[1]
        if buf[1].shape[0] != k or buf[2].shape[0] != m or buf[2].shape[1] != n:
            raise ValueError(f"gemm: shapes {(buf[0].shape[0], buf[0].shape[1])} @ "
                             f"{(buf[1].shape[0], buf[1].shape[1])} -> "
                             f"{(buf[2].shape[0], buf[2].shape[1])} do not agree")
        es = buf[0].itemsize
        with nogil:
            if kind[0] == b'f':
                status = fm_gemm_f32(m, n, k, <const float *>buf[0].buf, buf[0].strides[0] // es,
                                     buf[0].strides[1] // es, <const float *>buf[1].buf,
                                     buf[1].strides[0] // es, buf[1].strides[1] // es,
                                     <float *>buf[2].buf, buf[2].strides[0] // es,
                                     buf[2].strides[1] // es, <float>alpha, <float>beta, n_threads)
            else:
                status = fm_gemm_f64(m, n, k, <const double *>buf[0].buf, buf[0].strides[0] // es,
                                     buf[0].strides[1] // es, <const double *>buf[1].buf,
                                     buf[1].strides[0] // es, buf[1].strides[1] // es,
                                     <double *>buf[2].buf, buf[2].strides[0] // es,
                                     buf[2].strides[1] // es, alpha, beta, n_threads)
        _check(status)
    finally:
        for i in range(held):
            PyBuffer_Release(&buf[i])


def act_forward(const floating[:, ::1] z, floating[:, ::1] y, int act, double param=1.0,
                int n_threads=1):
    _same_shape("act_forward", (z.shape[0], z.shape[1]), (y.shape[0], y.shape[1]))
    cdef int status
    with nogil:
        if floating is float:
            status = fm_act_forward_f32(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sizeof(float),
                                        &y[0, 0], y.strides[0] // sizeof(float), act, param, n_threads)
        else:
            status = fm_act_forward_f64(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sizeof(double),
                                        &y[0, 0], y.strides[0] // sizeof(double), act, param, n_threads)
    _check(status)


def act_backward(const floating[:, ::1] z, const floating[:, ::1] y, const floating[:, ::1] dy,
                 floating[:, ::1] dz, int act, double param=1.0, int n_threads=1):
    _same_shape("act_backward", (z.shape[0], z.shape[1]), (y.shape[0], y.shape[1]))
    _same_shape("act_backward", (z.shape[0], z.shape[1]), (dy.shape[0], dy.shape[1]))
    _same_shape("act_backward", (z.shape[0], z.shape[1]), (dz.shape[0], dz.shape[1]))
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int status
    with nogil:
        if floating is float:
            status = fm_act_backward_f32(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sz,
                                         &y[0, 0], y.strides[0] // sz, &dy[0, 0], dy.strides[0] // sz,
                                         &dz[0, 0], dz.strides[0] // sz, act, param, n_threads)
        else:
            status = fm_act_backward_f64(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sz,
                                         &y[0, 0], y.strides[0] // sz, &dy[0, 0], dy.strides[0] // sz,
                                         &dz[0, 0], dz.strides[0] // sz, act, param, n_threads)
    _check(status)


def prelu_forward(const floating[:, ::1] z, const floating[::1] slope, floating[:, ::1] y,
                  int n_threads=1):
    _same_shape("prelu_forward", (z.shape[0], z.shape[1]), (y.shape[0], y.shape[1]))
    if slope.shape[0] != z.shape[1]:
        raise ValueError("prelu_forward: one slope per column is needed")
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int status
    with nogil:
        if floating is float:
            status = fm_prelu_forward_f32(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sz,
                                          &slope[0], &y[0, 0], y.strides[0] // sz, n_threads)
        else:
            status = fm_prelu_forward_f64(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sz,
                                          &slope[0], &y[0, 0], y.strides[0] // sz, n_threads)
    _check(status)


def prelu_backward(const floating[:, ::1] z, const floating[::1] slope, const floating[:, ::1] dy,
                   floating[:, ::1] dz, floating[::1] dslope, int n_threads=1):
    _same_shape("prelu_backward", (z.shape[0], z.shape[1]), (dy.shape[0], dy.shape[1]))
    _same_shape("prelu_backward", (z.shape[0], z.shape[1]), (dz.shape[0], dz.shape[1]))
    if slope.shape[0] != z.shape[1] or dslope.shape[0] != z.shape[1]:
        raise ValueError("prelu_backward: one slope per column is needed")
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int status
    with nogil:
        if floating is float:
            status = fm_prelu_backward_f32(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sz,
                                           &slope[0], &dy[0, 0], dy.strides[0] // sz,
                                           &dz[0, 0], dz.strides[0] // sz, &dslope[0], n_threads)
        else:
            status = fm_prelu_backward_f64(z.shape[0], z.shape[1], &z[0, 0], z.strides[0] // sz,
                                           &slope[0], &dy[0, 0], dy.strides[0] // sz,
                                           &dz[0, 0], dz.strides[0] // sz, &dslope[0], n_threads)
    _check(status)


def colsum(const floating[:, ::1] x, floating[::1] out, int n_threads=1):
    if out.shape[0] != x.shape[1]:
        raise ValueError("colsum: out needs one value per column")
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int status
    with nogil:
        if floating is float:
            status = fm_colsum_f32(x.shape[0], x.shape[1], &x[0, 0], x.strides[0] // sz, &out[0], n_threads)
        else:
            status = fm_colsum_f64(x.shape[0], x.shape[1], &x[0, 0], x.strides[0] // sz, &out[0], n_threads)
    _check(status)


def dense_forward(const floating[:, :] x, const floating[:, ::1] w, const floating[::1] b,
                  floating[:, ::1] z, floating[:, ::1] y, int act, double act_param=1.0,
                  int n_threads=1):
    """z = x @ w + b, y = act(z). b and z may be None; z may be y for the identity."""
    cdef int64_t batch = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    if w.shape[0] != n_in:
        raise ValueError(f"dense_forward: x has {n_in} features but w has {w.shape[0]} rows")
    if y.shape[0] != batch or y.shape[1] != n_out:
        raise ValueError("dense_forward: y must be (batch, n_out)")
    if b is not None and b.shape[0] != n_out:
        raise ValueError("dense_forward: b must have n_out values")
    if z is not None and (z.shape[0] != batch or z.shape[1] != n_out or z.strides[0] != y.strides[0]):
        raise ValueError("dense_forward: z must be (batch, n_out) with y's row stride")
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int64_t rsx = _es(x.strides[0], sz), csx = _es(x.strides[1], sz), ldy = y.strides[0] // sz
    cdef const floating *bp = NULL
    cdef floating *zp = NULL
    if b is not None:
        bp = &b[0]
    if z is not None:
        zp = &z[0, 0]
    cdef int status
    with nogil:
        if floating is float:
            status = fm_dense_forward_f32(batch, n_in, n_out, &x[0, 0], rsx, csx, &w[0, 0], bp,
                                          zp, &y[0, 0], ldy, act, act_param, n_threads)
        else:
            status = fm_dense_forward_f64(batch, n_in, n_out, &x[0, 0], rsx, csx, &w[0, 0], bp,
                                          zp, &y[0, 0], ldy, act, act_param, n_threads)
    _check(status)


def dense_backward(const floating[:, :] x, const floating[:, ::1] w, const floating[:, ::1] z,
                   const floating[:, ::1] y, const floating[:, ::1] dy, floating[:, ::1] dz,
                   floating[:, ::1] dx, floating[:, ::1] dw, floating[::1] db, int act,
                   double act_param=1.0, int n_threads=1):
    """From dy: dz = dy * act'(z); dw = x^T dz; db = colsum(dz); dx = dz w^T (dx, db may be None)."""
    cdef int64_t batch = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    if w.shape[0] != n_in or dw.shape[0] != n_in or dw.shape[1] != n_out:
        raise ValueError("dense_backward: w and dw must be (n_in, n_out)")
    for name, arr in (("z", z), ("y", y), ("dy", dy), ("dz", dz)):
        if arr is None or arr.shape[0] != batch or arr.shape[1] != n_out or arr.strides[0] != dy.strides[0]:
            raise ValueError(f"dense_backward: {name} must be (batch, n_out) with dy's row stride")
    if dx is not None and (dx.shape[0] != batch or dx.shape[1] != n_in):
        raise ValueError("dense_backward: dx must be (batch, n_in)")
    if db is not None and db.shape[0] != n_out:
        raise ValueError("dense_backward: db must have n_out values")
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int64_t rsx = _es(x.strides[0], sz), csx = _es(x.strides[1], sz), ldy = dy.strides[0] // sz
    cdef int64_t ldx = n_in
    cdef floating *dxp = NULL
    cdef floating *dbp = NULL
    if dx is not None:
        dxp = &dx[0, 0]
        ldx = dx.strides[0] // sz
    if db is not None:
        dbp = &db[0]
    cdef int status
    with nogil:
        if floating is float:
            status = fm_dense_backward_f32(batch, n_in, n_out, &x[0, 0], rsx, csx, &w[0, 0],
                                           &z[0, 0], &y[0, 0], &dy[0, 0], ldy, &dz[0, 0], dxp, ldx,
                                           &dw[0, 0], dbp, act, act_param, n_threads)
        else:
            status = fm_dense_backward_f64(batch, n_in, n_out, &x[0, 0], rsx, csx, &w[0, 0],
                                           &z[0, 0], &y[0, 0], &dy[0, 0], ldy, &dz[0, 0], dxp, ldx,
                                           &dw[0, 0], dbp, act, act_param, n_threads)
    _check(status)


def loss(int kind, const floating[:, ::1] z, const floating[:, ::1] t, const int32_t[::1] labels,
         const floating[::1] sample_weight, floating[:, ::1] grad, int n_threads=1):
    """Mean loss over the rows of z; writes d(loss)/dz into grad unless grad is None.

    t is (n, k) targets, or None with labels (n,) int32 for the labelled softmax cross-entropy."""
    cdef int64_t n = z.shape[0], k = z.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    cdef const floating *tp = NULL
    cdef const int32_t *lp = NULL
    cdef const floating *wp = NULL
    cdef floating *gp = NULL
    cdef int64_t rst = k, rsg = k
    if kind == 3:
        if labels is None or labels.shape[0] != n:
            raise ValueError("loss: labels must have one entry per row of z")
        lp = &labels[0]
    else:
        if t is None or t.shape[0] != n or t.shape[1] != k:
            raise ValueError(f"loss: targets must have shape ({n}, {k})")
        tp = &t[0, 0]
        rst = t.strides[0] // sz
    if sample_weight is not None:
        if sample_weight.shape[0] != n:
            raise ValueError("loss: sample_weight must have one entry per row of z")
        wp = &sample_weight[0]
    if grad is not None:
        _same_shape("loss", (grad.shape[0], grad.shape[1]), (z.shape[0], z.shape[1]))
        gp = &grad[0, 0]
        rsg = grad.strides[0] // sz
    cdef double value = 0.0
    cdef int status
    with nogil:
        if floating is float:
            status = fm_loss_f32(n, k, &z[0, 0], z.strides[0] // sz, tp, rst, lp, wp, gp, rsg,
                                 &value, kind, n_threads)
        else:
            status = fm_loss_f64(n, k, &z[0, 0], z.strides[0] // sz, tp, rst, lp, wp, gp, rsg,
                                 &value, kind, n_threads)
    _check(status)
    return value


def penalty(const floating[::1] w, floating[::1] grad, double l1, double l2):
    """Returns l1*sum|w| + l2/2*sum w^2 and adds its gradient to grad (unless None)."""
    cdef floating *gp = NULL
    if grad is not None:
        if grad.shape[0] != w.shape[0]:
            raise ValueError("penalty: grad must match w")
        gp = &grad[0]
    cdef double value = 0.0
    cdef int status
    with nogil:
        if floating is float:
            status = fm_penalty_f32(w.shape[0], &w[0], gp, &value, l1, l2)
        else:
            status = fm_penalty_f64(w.shape[0], &w[0], gp, &value, l1, l2)
    _check(status)
    return value


def sgd_step(const floating[::1] grad, floating[::1] param, floating[::1] velocity, double lr,
             double momentum=0.0, double weight_decay=0.0, bint nesterov=False, int n_threads=1):
    if grad.shape[0] != param.shape[0] or (velocity is not None and velocity.shape[0] != param.shape[0]):
        raise ValueError("sgd_step: grad, param and velocity must have the same length")
    cdef floating *vp = NULL
    if velocity is not None:
        vp = &velocity[0]
    cdef int status
    with nogil:
        if floating is float:
            status = fm_sgd_step_f32(param.shape[0], &grad[0], &param[0], vp, lr, momentum,
                                     weight_decay, nesterov, n_threads)
        else:
            status = fm_sgd_step_f64(param.shape[0], &grad[0], &param[0], vp, lr, momentum,
                                     weight_decay, nesterov, n_threads)
    _check(status)


def dropout_forward(const floating[:, ::1] x, floating[:, ::1] mask, floating[:, ::1] y,
                    double rate, uint64_t seed, uint64_t stream, int n_threads=1):
    """Inverted dropout: y = x * mask with mask 0 or 1/(1-rate), drawn from (seed, stream)."""
    _same_shape("dropout_forward", (x.shape[0], x.shape[1]), (y.shape[0], y.shape[1]))
    _same_shape("dropout_forward", (x.shape[0], x.shape[1]), (mask.shape[0], mask.shape[1]))
    cdef Py_ssize_t sz = sizeof(floating)
    cdef int status
    with nogil:
        if floating is float:
            status = fm_dropout_forward_f32(x.shape[0], x.shape[1], &x[0, 0], x.shape[1], &mask[0, 0],
                                            &y[0, 0], y.shape[1], rate, seed, stream, n_threads)
        else:
            status = fm_dropout_forward_f64(x.shape[0], x.shape[1], &x[0, 0], x.shape[1], &mask[0, 0],
                                            &y[0, 0], y.shape[1], rate, seed, stream, n_threads)
    _check(status)


def mul(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] out, int n_threads=1):
    _same_shape("mul", (a.shape[0], a.shape[1]), (b.shape[0], b.shape[1]))
    _same_shape("mul", (a.shape[0], a.shape[1]), (out.shape[0], out.shape[1]))
    cdef int status
    with nogil:
        if floating is float:
            status = fm_mul_f32(a.shape[0], a.shape[1], &a[0, 0], a.shape[1], &b[0, 0], b.shape[1],
                                &out[0, 0], out.shape[1], n_threads)
        else:
            status = fm_mul_f64(a.shape[0], a.shape[1], &a[0, 0], a.shape[1], &b[0, 0], b.shape[1],
                                &out[0, 0], out.shape[1], n_threads)
    _check(status)


def gaussian_noise(const floating[:, ::1] x, floating[:, ::1] y, double stddev, uint64_t seed,
                   uint64_t stream, int n_threads=1):
    _same_shape("gaussian_noise", (x.shape[0], x.shape[1]), (y.shape[0], y.shape[1]))
    cdef int status
    with nogil:
        if floating is float:
            status = fm_gaussian_noise_f32(x.shape[0], x.shape[1], &x[0, 0], x.shape[1], &y[0, 0],
                                           y.shape[1], stddev, seed, stream, n_threads)
        else:
            status = fm_gaussian_noise_f64(x.shape[0], x.shape[1], &x[0, 0], x.shape[1], &y[0, 0],
                                           y.shape[1], stddev, seed, stream, n_threads)
    _check(status)


def activity_penalty(const floating[:, ::1] y, floating[:, ::1] dy, double l1, double l2):
    """(l1 sum|y| + l2/2 sum y^2) / rows; adds its gradient to dy unless dy is None."""
    cdef floating *dp = NULL
    if dy is not None:
        _same_shape("activity_penalty", (y.shape[0], y.shape[1]), (dy.shape[0], dy.shape[1]))
        dp = &dy[0, 0]
    cdef double value = 0.0
    cdef int status
    with nogil:
        if floating is float:
            status = fm_activity_penalty_f32(y.shape[0], y.shape[1], &y[0, 0], y.shape[1], dp,
                                             y.shape[1], &value, l1, l2)
        else:
            status = fm_activity_penalty_f64(y.shape[0], y.shape[1], &y[0, 0], y.shape[1], dp,
                                             y.shape[1], &value, l1, l2)
    _check(status)
    return value


def maxout_forward(const floating[:, ::1] z, floating[:, ::1] y, int64_t pieces, int n_threads=1):
    if pieces < 1 or z.shape[1] != y.shape[1] * pieces or z.shape[0] != y.shape[0]:
        raise ValueError("maxout_forward: z must be (rows, units * pieces) for y (rows, units)")
    cdef int status
    with nogil:
        if floating is float:
            status = fm_maxout_forward_f32(z.shape[0], y.shape[1], pieces, &z[0, 0], z.shape[1],
                                           &y[0, 0], y.shape[1], n_threads)
        else:
            status = fm_maxout_forward_f64(z.shape[0], y.shape[1], pieces, &z[0, 0], z.shape[1],
                                           &y[0, 0], y.shape[1], n_threads)
    _check(status)


def maxout_backward(const floating[:, ::1] z, const floating[:, ::1] dy, floating[:, ::1] dz,
                    int64_t pieces, int n_threads=1):
    if (pieces < 1 or z.shape[1] != dy.shape[1] * pieces or z.shape[0] != dy.shape[0]
            or dz.shape[0] != z.shape[0] or dz.shape[1] != z.shape[1]):
        raise ValueError("maxout_backward: z, dz must be (rows, units * pieces), dy (rows, units)")
    cdef int status
    with nogil:
        if floating is float:
            status = fm_maxout_backward_f32(z.shape[0], dy.shape[1], pieces, &z[0, 0], z.shape[1],
                                            &dy[0, 0], dy.shape[1], &dz[0, 0], dz.shape[1], n_threads)
        else:
            status = fm_maxout_backward_f64(z.shape[0], dy.shape[1], pieces, &z[0, 0], z.shape[1],
                                            &dy[0, 0], dy.shape[1], &dz[0, 0], dz.shape[1], n_threads)
    _check(status)


def max_norm(floating[:, ::1] w, double max_norm, int n_threads=1):
    """Scale each column of w whose L2 norm exceeds max_norm down to max_norm (in place)."""
    cdef int status
    with nogil:
        if floating is float:
            status = fm_max_norm_f32(w.shape[0], w.shape[1], &w[0, 0], max_norm, n_threads)
        else:
            status = fm_max_norm_f64(w.shape[0], w.shape[1], &w[0, 0], max_norm, n_threads)
    _check(status)


def clip_grad(floating[::1] g, double clip_value=0.0, double clip_norm=0.0, int n_threads=1):
    """Clip g in place by value, then by global norm; returns the norm before norm clipping."""
    cdef double norm = 0.0
    cdef int status
    with nogil:
        if floating is float:
            status = fm_clip_grad_f32(g.shape[0], &g[0], clip_value, clip_norm, &norm, n_threads)
        else:
            status = fm_clip_grad_f64(g.shape[0], &g[0], clip_value, clip_norm, &norm, n_threads)
    _check(status)
    return norm


def all_finite(x, int n_threads=1):
    """Whether every element of x (float32 or float64, 1-D or 2-D, positive element strides) is
    finite, on up to n_threads threads without the GIL; None for other arrays."""
    cdef const float[:, :] x32
    cdef const double[:, :] x64
    cdef Py_ssize_t sz
    cdef int ok
    if type(x) is not _ndarray or x.dtype.kind != "f" or x.ndim not in (1, 2) or x.size == 0:
        return None
    if x.ndim == 1:
        x = x.reshape(x.shape[0], 1)
    if any(s <= 0 or s % x.itemsize for s in x.strides):
        return None
    sz = x.itemsize
    if x.dtype == np.float64:
        x64 = x
        with nogil:
            ok = fm_all_finite_f64(x64.shape[0], x64.shape[1], &x64[0, 0], x64.strides[0] // sz,
                                   x64.strides[1] // sz, n_threads)
    elif x.dtype == np.float32:
        x32 = x
        with nogil:
            ok = fm_all_finite_f32(x32.shape[0], x32.shape[1], &x32[0, 0], x32.strides[0] // sz,
                                   x32.strides[1] // sz, n_threads)
    else:
        return None
    return bool(ok)


def permutation(int64_t n, uint64_t seed, uint64_t stream=0):
    """A random permutation of range(n) from the counter-based generator."""
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef int status
    with nogil:
        status = fm_rng_permutation(n, &o[0], seed, stream)
    _check(status)
    return out


def rng_u64(uint64_t seed, uint64_t stream, uint64_t counter):
    return fm_rng_u64(seed, stream, counter)


cdef int _fill_optim(fm_optim *opt, dict hyper, list state, int64_t step, Py_ssize_t n,
                     object dtype) except -1:
    opt.kind = OPTIMIZERS[hyper["kind"]]
    opt.lr = hyper.get("lr", 0.0)
    opt.momentum = hyper.get("momentum", 0.0)
    opt.dampening = hyper.get("dampening", 0.0)
    opt.weight_decay = hyper.get("weight_decay", 0.0)
    opt.nesterov = bool(hyper.get("nesterov", False))
    opt.beta1 = hyper.get("beta1", 0.9)
    opt.beta2 = hyper.get("beta2", 0.999)
    opt.eps = hyper.get("eps", 1e-8)
    opt.rho = hyper.get("rho", 0.9)
    opt.lr_decay = hyper.get("lr_decay", 0.0)
    opt.amsgrad = bool(hyper.get("amsgrad", False))
    opt.centered = bool(hyper.get("centered", False))
    opt.momentum_decay = hyper.get("momentum_decay", 4e-3)
    opt.mu_product = hyper.get("mu_product", 1.0)
    opt.eta_minus = hyper.get("eta_minus", 0.5)
    opt.eta_plus = hyper.get("eta_plus", 1.2)
    opt.step_min = hyper.get("step_min", 1e-6)
    opt.step_max = hyper.get("step_max", 50.0)
    opt.clip_value = hyper.get("clip_value", 0.0)
    opt.clip_norm = hyper.get("clip_norm", 0.0)
    opt.step = step
    cdef int i
    for i in range(4):
        opt.state[i] = NULL
    if len(state) > 4:
        raise ValueError("at most 4 optimizer state vectors")
    for i, arr in enumerate(state):
        if arr is None:
            continue
        if (not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1
                or arr.shape[0] != n or not arr.flags.c_contiguous or not arr.flags.writeable):
            raise ValueError("optimizer state must be writeable contiguous vectors like the parameters")
        opt.state[i] = <void *><size_t>arr.ctypes.data
    return 0


def optim_step(floating[::1] grad, floating[::1] param, dict hyper, list state,
               int64_t step, int n_threads=1):
    """One update of param by the optimizer described by hyper (with its state vectors); grad is
    clipped in place first if the hyperparameters ask for it. Returns the new step count and
    NAdam's running product of momentum coefficients."""
    if grad.shape[0] != param.shape[0]:
        raise ValueError("optim_step: grad and param must have the same length")
    cdef fm_optim opt
    _fill_optim(&opt, hyper, state, step, param.shape[0],
                np.float32 if floating is float else np.float64)
    cdef int status
    with nogil:
        if floating is float:
            status = fm_optim_step_f32(param.shape[0], &grad[0], &param[0], &opt, n_threads)
        else:
            status = fm_optim_step_f64(param.shape[0], &grad[0], &param[0], &opt, n_threads)
    _check(status)
    return opt.step, opt.mu_product


cdef class NetPlan:
    """A network plan for the C engine: layer descriptors pointing into the flat buffers."""
    cdef fm_layer *layers
    cdef fm_net net
    cdef readonly int n_layers
    cdef readonly int64_t n_inputs, n_outputs

    def __cinit__(self, list layers, int loss, int fused, int link):
        self.n_layers = len(layers)
        if self.n_layers < 1:
            raise ValueError("a plan needs at least one layer")
        self.layers = <fm_layer *>malloc(sizeof(fm_layer) * self.n_layers)
        if self.layers == NULL:
            raise MemoryError()
        cdef int i
        for i, d in enumerate(layers):
            self.layers[i].kind = LAYERS[d["kind"]]
            self.layers[i].act = d.get("act", 0)
            self.layers[i].act_param = d.get("act_param", 1.0)
            self.layers[i].n_in = d["n_in"]
            self.layers[i].n_out = d["n_out"]
            self.layers[i].w_offset = d.get("w_offset", -1)
            self.layers[i].b_offset = d.get("b_offset", -1)
            self.layers[i].l1 = d.get("l1", 0.0)
            self.layers[i].l2 = d.get("l2", 0.0)
            self.layers[i].max_norm = d.get("max_norm", 0.0) or 0.0
            self.layers[i].pieces = d.get("pieces", 1)
            self.layers[i].seed = d.get("seed", 0)
        self.net.n_layers = self.n_layers
        self.net.layers = self.layers
        self.net.loss = loss
        self.net.fused = fused
        self.net.link = link
        self.n_inputs = self.layers[0].n_in
        self.n_outputs = self.layers[self.n_layers - 1].n_out
        if fm_net_workspace_size_f64(&self.net, 1, 1, 1) == 0:
            raise ValueError("inconsistent network plan (layer widths, kinds or loss)")

    def __dealloc__(self):
        free(self.layers)

    def workspace_size(self, dtype, int64_t batch, bint training, int n_threads):
        if np.dtype(dtype) == np.float32:
            return fm_net_workspace_size_f32(&self.net, batch, training, n_threads)
        return fm_net_workspace_size_f64(&self.net, batch, training, n_threads)

    def train_epoch(self, const floating[:, :] x, const floating[:, ::1] t,
                    const int32_t[::1] labels, const floating[::1] sample_weight,
                    const int64_t[::1] order, int64_t batch_size, floating[::1] params,
                    floating[::1] grads, dict hyper, list state, int64_t step,
                    unsigned char[::1] workspace, int n_threads, double[::1] tuner=None):
        """Returns (finite, loss_sum, weight_sum, steps_done, optimizer_step, mu_product).

        n_threads is a cap; with a tuner state (TUNER_SIZE float64, zeroed to start, kept
        between calls) each step uses the thread count measured to be faster."""
        cdef Py_ssize_t sz = sizeof(floating)
        cdef int64_t n = order.shape[0]
        if x.shape[1] != self.n_inputs:
            raise ValueError("train_epoch: x does not match the plan's input width")
        if params.shape[0] != grads.shape[0]:
            raise ValueError("train_epoch: params and grads differ in length")
        cdef const floating *tp = NULL
        cdef const int32_t *lp = NULL
        cdef const floating *wp = NULL
        cdef int64_t ldt = self.n_outputs
        if t is not None:
            if t.shape[0] != x.shape[0] or t.shape[1] != self.n_outputs:
                raise ValueError("train_epoch: targets must be (n_samples, n_outputs)")
            tp = &t[0, 0]
            ldt = t.strides[0] // sz
        if labels is not None:
            if labels.shape[0] != x.shape[0]:
                raise ValueError("train_epoch: one label per sample")
            lp = &labels[0]
        if sample_weight is not None:
            if sample_weight.shape[0] != x.shape[0]:
                raise ValueError("train_epoch: one weight per sample")
            wp = &sample_weight[0]
        cdef int64_t i
        for i in range(n):
            if order[i] < 0 or order[i] >= x.shape[0]:
                raise ValueError("train_epoch: order holds an index outside the data")
        cdef fm_optim opt
        _fill_optim(&opt, hyper, state, step, params.shape[0],
                    np.float32 if floating is float else np.float64)
        cdef double loss_sum = 0.0, weight_sum = 0.0
        cdef int64_t steps = 0
        cdef double *tp_state = NULL
        if tuner is not None:
            tp_state = _tuner_state(tuner, "train_epoch")
        cdef int64_t rsx = _es(x.strides[0], sz), csx = _es(x.strides[1], sz)
        cdef int status
        with nogil:
            if floating is float:
                status = fm_net_train_epoch_f32(&self.net, n, &order[0], batch_size, &x[0, 0], rsx, csx,
                                                tp, ldt, lp, wp, &params[0], &grads[0], &opt,
                                                &loss_sum, &weight_sum, &steps, &workspace[0],
                                                workspace.shape[0], tp_state, n_threads)
            else:
                status = fm_net_train_epoch_f64(&self.net, n, &order[0], batch_size, &x[0, 0], rsx, csx,
                                                tp, ldt, lp, wp, &params[0], &grads[0], &opt,
                                                &loss_sum, &weight_sum, &steps, &workspace[0],
                                                workspace.shape[0], tp_state, n_threads)
        if status == FM_ERR_NONFINITE:
            return False, loss_sum, weight_sum, steps, opt.step, opt.mu_product
        _check(status)
        return True, loss_sum, weight_sum, steps, opt.step, opt.mu_product

    def predict(self, const floating[:, :] x, const floating[::1] params, floating[:, ::1] out,
                bint raw, int64_t chunk, unsigned char[::1] workspace, int n_threads):
        cdef Py_ssize_t sz = sizeof(floating)
        if x.shape[1] != self.n_inputs:
            raise ValueError("predict: x does not match the plan's input width")
        if out.shape[0] != x.shape[0] or out.shape[1] != self.n_outputs:
            raise ValueError("predict: out must be (n_samples, n_outputs)")
        cdef int64_t rsx = _es(x.strides[0], sz), csx = _es(x.strides[1], sz)
        cdef int status
        with nogil:
            if floating is float:
                status = fm_net_predict_f32(&self.net, x.shape[0], &x[0, 0], rsx, csx, &params[0],
                                            &out[0, 0], out.strides[0] // sz, raw, chunk,
                                            &workspace[0], workspace.shape[0], n_threads)
            else:
                status = fm_net_predict_f64(&self.net, x.shape[0], &x[0, 0], rsx, csx, &params[0],
                                            &out[0, 0], out.strides[0] // sz, raw, chunk,
                                            &workspace[0], workspace.shape[0], n_threads)
        _check(status)


cdef object _ndarray = np.ndarray
cdef object _empty = np.empty
cdef enum:
    _POOL = 4


cdef class Predictor:
    """predict's fast path for one plan and one parameter array: inputs that are already 2-D
    arrays of the parameters' dtype, the right width, positive strides and finite values go
    straight to the C engine (no conversion, no copy); for anything else the call returns None
    and the model's general path converts the input or explains what is wrong.

    Thread-safe: each call takes a workspace of its own from a small pool (taken and returned
    while holding the GIL) and runs the network without the GIL."""
    cdef NetPlan plan
    cdef readonly object params
    cdef object dtype
    cdef bint f64
    cdef const float[::1] p32
    cdef const double[::1] p64
    cdef int64_t chunk
    cdef int64_t ws_rows
    cdef int ws_threads
    cdef size_t ws_need
    cdef void *free_ws[_POOL]
    cdef size_t free_size[_POOL]
    cdef int n_free

    def __cinit__(self, NetPlan plan, params, int64_t chunk):
        self.plan = plan
        self.params = params
        self.dtype = params.dtype
        self.f64 = params.dtype == np.float64
        if self.f64:
            self.p64 = params
        else:
            self.p32 = params
        self.chunk = chunk
        self.ws_rows = -1
        self.n_free = 0

    def __dealloc__(self):
        cdef int i
        for i in range(self.n_free):
            free(self.free_ws[i])

    cdef void *_take(self, int64_t rows, int n_threads, size_t *size):
        cdef int i
        cdef void *p
        if rows != self.ws_rows or n_threads != self.ws_threads:
            self.ws_need = (fm_net_workspace_size_f64(&self.plan.net, rows, 0, n_threads) if self.f64
                            else fm_net_workspace_size_f32(&self.plan.net, rows, 0, n_threads))
            self.ws_rows, self.ws_threads = rows, n_threads
        size[0] = self.ws_need
        for i in range(self.n_free - 1, -1, -1):
            if self.free_size[i] >= self.ws_need:
                p = self.free_ws[i]
                size[0] = self.free_size[i]
                self.n_free -= 1
                self.free_ws[i] = self.free_ws[self.n_free]
                self.free_size[i] = self.free_size[self.n_free]
                return p
        return malloc(self.ws_need if self.ws_need else 1)

    cdef void _give(self, void *p, size_t size):
        if self.n_free < _POOL:
            self.free_ws[self.n_free] = p
            self.free_size[self.n_free] = size
            self.n_free += 1
        else:
            free(p)

    def __call__(self, X, bint raw, threads, tuning=None):
        """threads: the thread count, or a callable returning it (called for two rows or more: a
        single row always runs on one thread). tuning: None, or a callable returning (cap,
        tuner state) for calls of a chunk of rows or more, which then run on 1 thread or the cap
        as fm_tuner_next says and are timed for it (the state is a float64 array of TUNER_SIZE,
        zeroed to start; calls record to it holding the GIL)."""
        if type(X) is not _ndarray or X.dtype is not self.dtype:
            return None
        shape = X.shape
        if len(shape) != 2 or shape[1] != self.plan.n_inputs or shape[0] == 0:
            return None
        cdef int n_threads, cap = 1
        cdef double *state = NULL
        cdef double started = 0.0
        if shape[0] == 1:
            n_threads = 1
        elif tuning is not None and shape[0] >= self.chunk:
            cap, tuner = tuning()
            state = _tuner_state(tuner, "Predictor")
            n_threads = fm_tuner_next(state, cap)
            started = fm_wtime()
        else:
            n_threads = threads() if callable(threads) else threads
        out = _empty((shape[0], self.plan.n_outputs), self.dtype)
        if not self._run(X, out, raw, n_threads):
            return None
        if state != NULL:  # tuner (a NumPy array) is still referenced here
            fm_tuner_record(state, n_threads, cap, fm_wtime() - started, shape[0])
        return out

    cdef bint _run(self, X, out, bint raw, int n_threads) except -1:
        """out := the network's outputs for X; False (nothing written) when X has strides the
        engine does not take or values that are not finite."""
        cdef const float[:, :] x32
        cdef const double[:, :] x64
        cdef float[:, ::1] o32
        cdef double[:, ::1] o64
        cdef const void *xp
        cdef void *op
        cdef Py_ssize_t s0, s1, sz
        cdef int64_t n, cols
        if self.f64:
            x64, o64, sz = X, out, sizeof(double)
            s0, s1, n, cols = x64.strides[0], x64.strides[1], x64.shape[0], x64.shape[1]
            xp, op = &x64[0, 0], &o64[0, 0]
        else:
            x32, o32, sz = X, out, sizeof(float)
            s0, s1, n, cols = x32.strides[0], x32.strides[1], x32.shape[0], x32.shape[1]
            xp, op = &x32[0, 0], &o32[0, 0]
        if s0 <= 0 or s1 <= 0 or s0 % sz or s1 % sz:
            return False
        cdef int64_t rows = min(n, self.chunk), rsx = s0 // sz, csx = s1 // sz
        cdef int64_t n_out = self.plan.n_outputs
        cdef size_t size
        cdef void *ws = self._take(rows, n_threads, &size)
        cdef int status = FM_OK
        if ws == NULL:
            raise MemoryError("fastmlp could not allocate the predict workspace")
        cdef int64_t i0 = 0, m
        # each chunk checked just before it is predicted, so the forward pass reads it from
        # the cache rather than memory a second time (a perceptron's mistakes on all of MNIST
        # in float64: a check of the whole X first cost 12 of 33 ms)
        with nogil:
            while i0 < n and status == FM_OK:
                m = min(rows, n - i0)
                if self.f64:
                    if not fm_all_finite_f64(m, cols, <const double *>xp + i0 * rsx, rsx, csx,
                                             n_threads):
                        status = FM_ERR_NONFINITE
                    else:
                        status = fm_net_predict_f64(
                            &self.plan.net, m, <const double *>xp + i0 * rsx, rsx, csx,
                            &self.p64[0], <double *>op + i0 * n_out, n_out, raw, rows, ws, size,
                            n_threads)
                else:
                    if not fm_all_finite_f32(m, cols, <const float *>xp + i0 * rsx, rsx, csx,
                                             n_threads):
                        status = FM_ERR_NONFINITE
                    else:
                        status = fm_net_predict_f32(
                            &self.plan.net, m, <const float *>xp + i0 * rsx, rsx, csx,
                            &self.p32[0], <float *>op + i0 * n_out, n_out, raw, rows, ws, size,
                            n_threads)
                i0 += m
        self._give(ws, size)
        if status == FM_ERR_NONFINITE:
            return False  # the general path names the problem
        _check(status)
        return True
