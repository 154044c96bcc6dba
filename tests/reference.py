"""The oracle: every fastmlp kernel in plain, obvious NumPy, computed in float64.

Written from the formulas in csrc/include/fastmlp.h, not from the C code. Every function takes
arrays of any float dtype, works in float64 and returns float64 results; the tests compare the
compiled kernels against these.
"""
import math

import numpy as np

SQRT1_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# default parameter of each activation (as fastmlp.activations documents them)
ACT_DEFAULT_PARAM = {"identity": 1.0, "step": 0.0, "sign": 0.0, "sigmoid": 1.0, "tanh": 0.0,
                     "relu": 0.0, "leaky_relu": 0.01, "elu": 1.0, "softplus": 0.0, "silu": 0.0,
                     "gelu": 0.0, "softmax": 0.0}
ACTIVATIONS = tuple(ACT_DEFAULT_PARAM)
ELEMENTWISE = tuple(a for a in ACTIVATIONS if a != "softmax")
LOSSES = ("mse", "bce_logits", "softmax_ce", "softmax_ce_labels", "perceptron", "hinge")

_erf = np.vectorize(math.erf, otypes=[np.float64])


def f64(x):
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------- GEMM

def gemm(a, b, c, alpha=1.0, beta=0.0):
    """alpha * a @ b + beta * c; with beta == 0, c is not read (NaN in c must not leak)."""
    out = alpha * (f64(a) @ f64(b))
    if beta != 0:
        out = out + beta * f64(c)
    return out


def gemm_error_scale(a, b, c, alpha=1.0, beta=0.0):
    """sum of |terms| of each output element: |alpha| |a| @ |b| + |beta| |c|; a reduction's
    rounding error is a few ulps of this, whatever the summation order."""
    s = abs(alpha) * (np.abs(f64(a)) @ np.abs(f64(b)))
    if beta != 0:
        s = s + abs(beta) * np.abs(f64(c))
    return s


# ---------------------------------------------------------------- activations

def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow."""
    x = f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x):
    x = f64(x)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def softmax(z):
    z = f64(z)
    if z.shape[-1] == 0:
        return z.copy()
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    z = f64(z)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def gelu_cdf(z):
    return 0.5 * (1.0 + _erf(f64(z) * SQRT1_2))


def act_forward(name, z, param=None):
    """y = f(z) for the named activation (softmax over each row)."""
    p = ACT_DEFAULT_PARAM[name] if param is None else float(param)
    z = f64(z)
    if name == "identity":
        return p * z
    if name == "step":
        return (z >= p).astype(np.float64)
    if name == "sign":
        return np.sign(z)
    if name == "sigmoid":
        return sigmoid(z / p)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, p * z)
    if name == "elu":
        return np.where(z > 0, z, p * np.expm1(np.minimum(z, 0.0)))
    if name == "softplus":
        return softplus(z)
    if name == "silu":
        return z * sigmoid(z)
    if name == "gelu":
        return z * gelu_cdf(z)
    if name == "softmax":
        return softmax(z)
    raise KeyError(name)


def act_derivative(name, z, param=None):
    """f'(z) elementwise (not for softmax)."""
    p = ACT_DEFAULT_PARAM[name] if param is None else float(param)
    z = f64(z)
    if name == "identity":
        return np.full_like(z, p)
    if name in ("step", "sign"):
        return np.zeros_like(z)
    if name == "sigmoid":
        s = sigmoid(z / p)
        return s * (1.0 - s) / p
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, p)
    if name == "elu":
        return np.where(z > 0, 1.0, p * np.exp(np.minimum(z, 0.0)))
    if name == "softplus":
        return sigmoid(z)
    if name == "silu":
        s = sigmoid(z)
        return s + z * s * (1.0 - s)
    if name == "gelu":
        return gelu_cdf(z) + z * np.exp(-0.5 * z * z) * INV_SQRT_2PI
    raise KeyError(name)


def act_backward(name, z, dy, param=None):
    """dz = dy * f'(z); for softmax the Jacobian-vector product y * (dy - sum(dy * y))."""
    dy = f64(dy)
    if name == "softmax":
        y = softmax(z)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    return dy * act_derivative(name, z, param)


def prelu_forward(z, slope):
    z = f64(z)
    return np.where(z > 0, z, f64(slope)[None, :] * z)


def prelu_backward(z, slope, dy):
    """(dz, dslope): dz = dy * (1 if z > 0 else slope_j), dslope_j = sum_i dy_ij min(z_ij, 0)."""
    z, dy = f64(z), f64(dy)
    dz = np.where(z > 0, dy, f64(slope)[None, :] * dy)
    dslope = (dy * np.minimum(z, 0.0)).sum(axis=0)
    return dz, dslope


def colsum(x):
    return f64(x).sum(axis=0)


# ---------------------------------------------------------------- dense layer

def dense_forward(x, w, b, act="identity", param=None):
    """(z, y): z = x @ w + b (b may be None), y = act(z)."""
    z = f64(x) @ f64(w)
    if b is not None:
        z = z + f64(b)[None, :]
    return z, act_forward(act, z, param)


def dense_backward(x, w, z, dy, act="identity", param=None):
    """(dz, dw, db, dx) from dy = dL/dy."""
    dz = act_backward(act, z, dy, param)
    x, w = f64(x), f64(w)
    return dz, x.T @ dz, dz.sum(axis=0), dz @ w.T


# ---------------------------------------------------------------- losses

def loss(kind, z, t=None, labels=None, sample_weight=None):
    """(value, grad) with value = sum_i w_i l_i / sum_i w_i and grad = d value / d z."""
    z = f64(z)
    n, k = z.shape
    w = np.ones(n) if sample_weight is None else f64(sample_weight)
    if kind == "softmax_ce_labels":
        labels = np.asarray(labels)
        t = np.zeros((n, k))
        t[np.arange(n), labels] = 1.0
        kind = "softmax_ce"
    t = f64(t)
    if kind == "mse":
        per = 0.5 * ((z - t) ** 2).sum(axis=1)
        g = z - t
    elif kind == "bce_logits":
        per = (softplus(z) - t * z).sum(axis=1)
        g = sigmoid(z) - t
    elif kind == "softmax_ce":
        per = -(t * log_softmax(z)).sum(axis=1) if k else np.zeros(n)
        g = softmax(z) * t.sum(axis=1, keepdims=True) - t
    elif kind == "perceptron":
        m = t * z
        per = np.maximum(0.0, -m).sum(axis=1)
        g = np.where(m <= 0, -t, 0.0)
    elif kind == "hinge":
        m = t * z
        per = np.maximum(0.0, 1.0 - m).sum(axis=1)
        g = np.where(m < 1, -t, 0.0)
    else:
        raise KeyError(kind)
    total = w.sum()
    value = float((w * per).sum() / total)
    return value, g * (w / total)[:, None]


def loss_terms(kind, z, t=None, labels=None, sample_weight=None):
    """A scale for the rounding error of the loss value: sum_i |w_i| sum_k |term_ik| / |sum w|."""
    z = f64(z)
    n, k = z.shape
    w = np.ones(n) if sample_weight is None else f64(sample_weight)
    if kind == "softmax_ce_labels":
        mag = np.abs(z).max(axis=1) + np.log(max(k, 1)) + 1.0
    else:
        t = f64(t)
        mag = (np.abs(z) + np.abs(t) + np.abs(z * t) + np.abs(z - t) ** 2 + 1.0).sum(axis=1)
    return float((np.abs(w) * mag).sum() / abs(w.sum()))


# ---------------------------------------------------------------- penalties, optimizer

def penalty(w, l1, l2):
    """(value, gradient): l1 sum|w| + l2/2 sum w^2 and l1 sign(w) + l2 w."""
    w = f64(w)
    return (float(l1 * np.abs(w).sum() + 0.5 * l2 * (w * w).sum()),
            l1 * np.sign(w) + l2 * w)


def sgd_step(grad, param, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD: g = grad + wd p; v = mu v + g; g = g + mu v if nesterov else v; p -= lr g.
    Returns (new param, new velocity or None)."""
    p = f64(param)
    g = f64(grad) + weight_decay * p
    v = None
    if momentum != 0:
        v = momentum * f64(velocity) + g
        g = g + momentum * v if nesterov else v
    return p - lr * g, v


def optimizer_step(kind, h, p, g, state, t):
    """One update of every optimizer, written from torch.optim's documented algorithms (float64).

    h: hyperparameters (torch names), state: dict of arrays (updated in place), t: 1-based step.
    Returns the new parameters."""
    p, g = f64(p), f64(g)
    wd = h.get("weight_decay", 0.0)
    lr = h["lr"]
    if kind != "adamw" and kind != "rprop":
        g = g + wd * p
    if kind == "sgd":
        mu, damp = h.get("momentum", 0.0), h.get("dampening", 0.0)
        if mu:
            v = g.copy() if t == 1 else mu * state["velocity"] + (1 - damp) * g
            state["velocity"] = v
            g = g + mu * v if h.get("nesterov") else v
        return p - lr * g
    if kind == "adagrad":
        state["sum"] = state["sum"] + g * g
        clr = lr / (1 + (t - 1) * h.get("lr_decay", 0.0))
        return p - clr * g / (np.sqrt(state["sum"]) + h.get("eps", 1e-10))
    if kind == "adadelta":
        rho, eps = h.get("rho", 0.9), h.get("eps", 1e-6)
        state["square_avg"] = rho * state["square_avg"] + (1 - rho) * g * g
        delta = np.sqrt(state["acc_delta"] + eps) / np.sqrt(state["square_avg"] + eps) * g
        state["acc_delta"] = rho * state["acc_delta"] + (1 - rho) * delta * delta
        return p - lr * delta
    if kind == "rmsprop":
        alpha, eps, mu = h.get("alpha", 0.99), h.get("eps", 1e-8), h.get("momentum", 0.0)
        state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * g * g
        if h.get("centered"):
            state["grad_avg"] = state["grad_avg"] + (1 - alpha) * (g - state["grad_avg"])
            avg = np.sqrt(state["square_avg"] - state["grad_avg"] ** 2) + eps
        else:
            avg = np.sqrt(state["square_avg"]) + eps
        if mu:
            state["momentum_buffer"] = mu * state["momentum_buffer"] + g / avg
            return p - lr * state["momentum_buffer"]
        return p - lr * g / avg
    if kind in ("adam", "adamw"):
        b1, b2 = h.get("betas", (0.9, 0.999))
        eps = h.get("eps", 1e-8)
        if kind == "adamw":
            p = p * (1 - lr * wd)
        state["exp_avg"] = state["exp_avg"] + (1 - b1) * (g - state["exp_avg"])
        state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        v = state["exp_avg_sq"]
        if h.get("amsgrad"):
            state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
            v = state["max_exp_avg_sq"]
        denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
        return p - lr / (1 - b1 ** t) * state["exp_avg"] / denom
    if kind == "adamax":
        b1, b2 = h.get("betas", (0.9, 0.999))
        eps = h.get("eps", 1e-8)
        state["exp_avg"] = state["exp_avg"] + (1 - b1) * (g - state["exp_avg"])
        state["exp_inf"] = np.maximum(b2 * state["exp_inf"], np.abs(g) + eps)
        return p - lr / (1 - b1 ** t) * state["exp_avg"] / state["exp_inf"]
    if kind == "nadam":
        b1, b2 = h.get("betas", (0.9, 0.999))
        eps, psi = h.get("eps", 1e-8), h.get("momentum_decay", 4e-3)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] = state.get("mu_product", 1.0) * mu
        state["exp_avg"] = state["exp_avg"] + (1 - b1) * (g - state["exp_avg"])
        state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        denom = np.sqrt(state["exp_avg_sq"] / (1 - b2 ** t)) + eps
        p = p - lr * (1 - mu) / (1 - state["mu_product"]) * g / denom
        return p - lr * mu_next / (1 - state["mu_product"] * mu_next) * state["exp_avg"] / denom
    if kind == "rprop":
        eta_minus, eta_plus = h.get("etas", (0.5, 1.2))
        lo, hi = h.get("step_sizes", (1e-6, 50.0))
        if "step_size" not in state:
            state["step_size"] = np.full_like(p, lr)
        s = np.sign(g * state["prev"])
        factor = np.where(s > 0, eta_plus, np.where(s < 0, eta_minus, 1.0))
        state["step_size"] = np.clip(state["step_size"] * factor, lo, hi)
        g = np.where(s < 0, 0.0, g)
        state["prev"] = g
        return p - np.sign(g) * state["step_size"]
    raise KeyError(kind)
