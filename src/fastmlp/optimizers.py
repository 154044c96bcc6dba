"""Optimizers: update rules applied by C kernels to the model's flat parameter vector."""
import numpy as np

from . import _core
from ._validation import check_non_negative_float


class Optimizer:
    """Base: holds hyperparameters and state arrays shaped like the flat parameter vector."""

    def __init__(self, lr):
        self.lr = check_non_negative_float(lr, "lr")
        self.iterations = 0
        self._state = {}

    def setup(self, n_params, dtype):
        """Allocate state for a parameter vector (called by the model; keeps existing state)."""
        for name in self._state_names():
            cur = self._state.get(name)
            if cur is None or cur.shape != (n_params,) or cur.dtype != dtype:
                self._state[name] = np.zeros(n_params, dtype)

    def _state_names(self):
        return ()

    def _hyper(self):
        """The hyperparameters the C update kernel reads."""
        raise NotImplementedError

    def _state_list(self):
        return [self._state.get(name) for name in self._state_names()]

    def step(self, params, grads, n_threads=1):
        """Update params (the flat vector) in place from grads, by the C kernel."""
        self.iterations = _core.optim_step(grads, params, self._hyper(), self._state_list(),
                                           self.iterations, n_threads)

    def get_state(self):
        """Copies of the state arrays and the step counter (restore with set_state)."""
        state = {k: v.copy() for k, v in self._state.items()}
        state["iterations"] = self.iterations
        return state

    def set_state(self, state):
        state = dict(state)
        self.iterations = int(state.pop("iterations", 0))
        for k, v in state.items():
            if k not in self._state_names():
                raise ValueError(f"{type(self).__name__} has no state {k!r}")
            self._state[k] = np.array(v, copy=True)


class SGD(Optimizer):
    """Gradient descent, the notes' theta <- theta - lr * grad, with momentum and Nesterov.

    PyTorch's formulation (so trajectories match torch.optim.SGD):
        g = grad + weight_decay * theta
        v = momentum * v + g                       (if momentum > 0)
        g = g + momentum * v if nesterov else v
        theta = theta - lr * g
    For a constant lr this equals the notes' v <- gamma v - lr grad; theta <- theta + v.
    The batch size chooses the flavour: 1 is online SGD, None full-batch gradient descent.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = check_non_negative_float(momentum, "momentum")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("Nesterov momentum requires a momentum > 0")
        self.weight_decay = check_non_negative_float(weight_decay, "weight_decay")

    def _state_names(self):
        return ("velocity",) if self.momentum else ()

    def _hyper(self):
        return {"kind": "sgd", "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def __repr__(self):
        extra = f", momentum={self.momentum:g}" if self.momentum else ""
        extra += ", nesterov=True" if self.nesterov else ""
        extra += f", weight_decay={self.weight_decay:g}" if self.weight_decay else ""
        return f"SGD(lr={self.lr:g}{extra})"


_BY_NAME = {"sgd": SGD}


def get_optimizer(spec):
    if spec is None:
        return SGD()
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise ValueError(f"Unknown optimizer {spec!r}. Choose one of: {', '.join(sorted(_BY_NAME))}, "
                     "or pass an Optimizer instance.")
