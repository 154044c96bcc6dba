"""Optimizers: update rules run by C kernels over the model's flat parameter vector.

Each follows torch.optim's published formulas, hyperparameter names and defaults, so the same
start gives the same trajectory. In the formulas g is the gradient plus ``weight_decay * p``
(coupled L2) unless stated, and t counts updates from 1. State vectors start at zero unless
stated and can be saved and restored exactly with ``get_state`` / ``set_state``.
"""
import numpy as np

from . import _core
from ._validation import check_non_negative_float


def _check_beta(value, name):
    value = check_non_negative_float(value, name)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _check_betas(betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return _check_beta(betas[0], "beta1"), _check_beta(betas[1], "beta2")


def _check_eps(eps):
    eps = check_non_negative_float(eps, "eps")
    return eps


class Optimizer:
    """Base class: hyperparameters, state arrays shaped like the flat parameter vector, and a
    step counter. ``lr`` may be changed between steps (schedules do). Every optimizer also takes
    ``clipnorm`` and ``clipvalue`` (see ``clip``)."""

    #: names of the state vectors, in the kernel's slot order
    _slots = ()

    def __init__(self, lr, weight_decay=0.0, clipnorm=None, clipvalue=None):
        self.lr = check_non_negative_float(lr, "lr")
        self.weight_decay = check_non_negative_float(weight_decay, "weight_decay")
        self.clip(clipnorm, clipvalue)
        self.iterations = 0
        self._mu_product = 1.0
        self._state = {}

    def _active_slots(self):
        return self._slots

    def _initial(self, name):
        return 0.0

    def setup(self, n_params, dtype):
        """Allocate state for a parameter vector (called by the model; keeps matching state)."""
        for name in self._active_slots():
            cur = self._state.get(name)
            if cur is None or cur.shape != (n_params,) or cur.dtype != dtype:
                self._state[name] = np.full(n_params, self._initial(name), dtype)

    def _state_list(self):
        return [self._state.get(name) for name in self._slots]

    def _hyper(self):
        """The hyperparameters the C update kernel reads."""
        raise NotImplementedError

    def clip(self, clipnorm=None, clipvalue=None):
        """Clip gradients before every update: each element to [-clipvalue, clipvalue], then the
        whole gradient to L2 norm clipnorm (torch.nn.utils.clip_grad_norm_'s rule). Returns self."""
        for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        return self

    def _kernel_hyper(self):
        return {**self._hyper(), "clip_norm": self.clipnorm or 0.0,
                "clip_value": self.clipvalue or 0.0}

    def _advance(self, step, mu_product):
        self.iterations = int(step)
        self._mu_product = float(mu_product)

    def step(self, params, grads, n_threads=1):
        """Update params (the flat vector) in place from grads, by the C kernel."""
        self._advance(*_core.optim_step(grads, params, self._kernel_hyper(), self._state_list(),
                                        self.iterations, n_threads))

    def get_state(self):
        """Copies of the state vectors, the step counter and the learning rate."""
        state = {k: v.copy() for k, v in self._state.items()}
        state.update(iterations=self.iterations, lr=self.lr, mu_product=self._mu_product)
        return state

    def set_state(self, state):
        """Restore what get_state returned (training then resumes bit for bit)."""
        state = dict(state)
        iterations = int(state.pop("iterations", 0))
        lr = float(state.pop("lr", self.lr))
        mu_product = float(state.pop("mu_product", 1.0))
        arrays = {}
        for k, v in state.items():
            if k not in self._slots:
                raise ValueError(f"{type(self).__name__} has no state {k!r}; "
                                 f"it has {list(self._slots)}")
            arrays[k] = np.array(v, copy=True)
        self._state.update(arrays)
        self.iterations, self.lr, self._mu_product = iterations, lr, mu_product

    def _repr_args(self):
        return {}

    def __repr__(self):
        args = {"lr": self.lr, **self._repr_args()}
        if self.weight_decay:
            args["weight_decay"] = self.weight_decay
        if self.clipnorm:
            args["clipnorm"] = self.clipnorm
        if self.clipvalue:
            args["clipvalue"] = self.clipvalue
        inner = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in args.items())
        return f"{type(self).__name__}({inner})"


class SGD(Optimizer):
    """Gradient descent, the notes' theta <- theta - lr * grad, with momentum and Nesterov.

        v = momentum * v + (1 - dampening) * g          (v = g on the first step)
        g = g + momentum * v if nesterov else v
        p = p - lr * g

    For a constant lr this is the notes' v <- gamma v - lr grad; theta <- theta + v. The batch
    size picks the flavour: 1 is online SGD, None full-batch gradient descent."""
    _slots = ("velocity",)

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0,
                 *, clipnorm=None, clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.momentum = _check_beta(momentum, "momentum")
        self.dampening = check_non_negative_float(dampening, "dampening")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def _active_slots(self):
        return self._slots if self.momentum else ()

    def _hyper(self):
        return {"kind": "sgd", "lr": self.lr, "momentum": self.momentum,
                "dampening": self.dampening, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov}

    def _repr_args(self):
        args = {}
        if self.momentum:
            args["momentum"] = self.momentum
        if self.nesterov:
            args["nesterov"] = True
        return args


class Adagrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): s = s + g^2; p = p - lr / (1 + (t-1) lr_decay) * g / (sqrt(s) + eps).
    s starts at initial_accumulator_value."""
    _slots = ("sum",)

    def __init__(self, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, clipnorm=None, clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.lr_decay = check_non_negative_float(lr_decay, "lr_decay")
        self.initial_accumulator_value = check_non_negative_float(
            initial_accumulator_value, "initial_accumulator_value")
        self.eps = _check_eps(eps)

    def _initial(self, name):
        return self.initial_accumulator_value

    def _hyper(self):
        return {"kind": "adagrad", "lr": self.lr, "lr_decay": self.lr_decay,
                "weight_decay": self.weight_decay, "eps": self.eps}


class Adadelta(Optimizer):
    """AdaDelta (Zeiler 2012): s = rho s + (1-rho) g^2; u = sqrt(d + eps) / sqrt(s + eps) * g;
    d = rho d + (1-rho) u^2; p = p - lr u."""
    _slots = ("square_avg", "acc_delta")

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, clipnorm=None,
                 clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.rho = _check_beta(rho, "rho")
        self.eps = _check_eps(eps)

    def _hyper(self):
        return {"kind": "adadelta", "lr": self.lr, "rho": self.rho, "eps": self.eps,
                "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """RMSProp (Hinton 2012): s = alpha s + (1-alpha) g^2; den = sqrt(s) + eps (centered: subtract
    the squared running mean a of g inside the root); with momentum, b = momentum b + g / den and
    p = p - lr b, else p = p - lr g / den."""
    _slots = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, clipnorm=None, clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.alpha = _check_beta(alpha, "alpha")
        self.eps = _check_eps(eps)
        self.momentum = _check_beta(momentum, "momentum")
        self.centered = bool(centered)

    def _active_slots(self):
        return tuple(s for s, on in zip(self._slots, (True, bool(self.momentum), self.centered)) if on)

    def _hyper(self):
        return {"kind": "rmsprop", "lr": self.lr, "rho": self.alpha, "eps": self.eps,
                "weight_decay": self.weight_decay, "momentum": self.momentum,
                "centered": self.centered}


RMSProp = RMSprop


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): m = m + (1-beta1)(g - m); v = beta2 v + (1-beta2) g^2;
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    amsgrad (Reddi et al. 2018) uses the running maximum of v."""
    _slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _kind = "adam"

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 *, clipnorm=None, clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.betas = _check_betas(betas)
        self.eps = _check_eps(eps)
        self.amsgrad = bool(amsgrad)

    def _active_slots(self):
        return self._slots if self.amsgrad else self._slots[:2]

    def _hyper(self):
        return {"kind": self._kind, "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1],
                "eps": self.eps, "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, p = p (1 - lr wd)
    before the Adam step, which then uses the plain gradient."""
    _kind = "adamw"

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False,
                 *, clipnorm=None, clipvalue=None):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, clipnorm=clipnorm,
                         clipvalue=clipvalue)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba 2015, sec. 7.1): m = m + (1-beta1)(g - m); u = max(beta2 u, |g| + eps);
    p = p - lr / (1 - beta1^t) * m / u."""
    _slots = ("exp_avg", "exp_inf")

    def __init__(self, lr=0.002, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, clipnorm=None,
                 clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.betas = _check_betas(betas)
        self.eps = _check_eps(eps)

    def _hyper(self):
        return {"kind": "adamax", "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1],
                "eps": self.eps, "weight_decay": self.weight_decay}


class NAdam(Optimizer):
    """NAdam (Dozat 2016) with torch's momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t psi)),
    psi = momentum_decay: p = p - lr (1 - mu_t) / (1 - prod mu) g / den
    - lr mu_{t+1} / (1 - prod mu * mu_{t+1}) m / den, den = sqrt(v / (1 - beta2^t)) + eps."""
    _slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr=0.002, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=0.004, *, clipnorm=None, clipvalue=None):
        super().__init__(lr, weight_decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.betas = _check_betas(betas)
        self.eps = _check_eps(eps)
        self.momentum_decay = check_non_negative_float(momentum_decay, "momentum_decay")

    def _hyper(self):
        return {"kind": "nadam", "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1],
                "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum_decay": self.momentum_decay, "mu_product": self._mu_product}


class Rprop(Optimizer):
    """Resilient backpropagation, iRprop- (Riedmiller & Braun 1993; Igel & Huesken 2000), the
    classic full-batch method: each weight has its own step, multiplied by etas[1] while the
    gradient keeps its sign and by etas[0] when it flips (that update is then skipped), clamped
    to step_sizes; p = p - sign(g) step. Steps start at lr. Use with batch_size=None."""
    _slots = ("prev", "step_size")

    def __init__(self, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), *, clipnorm=None,
                 clipvalue=None):
        super().__init__(lr, 0.0, clipnorm=clipnorm, clipvalue=clipvalue)
        if (not isinstance(etas, (tuple, list)) or len(etas) != 2
                or not 0 < etas[0] < 1 < etas[1]):
            raise ValueError(f"etas must be (eta_minus, eta_plus) with 0 < eta_minus < 1 < eta_plus, got {etas!r}")
        if (not isinstance(step_sizes, (tuple, list)) or len(step_sizes) != 2
                or not 0 <= step_sizes[0] <= step_sizes[1]):
            raise ValueError(f"step_sizes must be (min, max) with 0 <= min <= max, got {step_sizes!r}")
        self.etas = (float(etas[0]), float(etas[1]))
        self.step_sizes = (float(step_sizes[0]), float(step_sizes[1]))

    def _initial(self, name):
        return self.lr if name == "step_size" else 0.0

    def _hyper(self):
        return {"kind": "rprop", "lr": self.lr, "eta_minus": self.etas[0], "eta_plus": self.etas[1],
                "step_min": self.step_sizes[0], "step_max": self.step_sizes[1]}


_BY_NAME = {"sgd": SGD, "adagrad": Adagrad, "adadelta": Adadelta, "rmsprop": RMSprop,
            "adam": Adam, "adamw": AdamW, "adamax": Adamax, "nadam": NAdam, "rprop": Rprop}


def get_optimizer(spec):
    """An Optimizer from None (SGD), a name (default hyperparameters) or an instance."""
    if spec is None:
        return SGD()
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise ValueError(f"Unknown optimizer {spec!r}. Choose one of: {', '.join(sorted(_BY_NAME))}, "
                     "or pass an Optimizer instance.")

