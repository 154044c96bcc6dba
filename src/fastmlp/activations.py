"""Activation functions as layers (the lecture's elementwise nonlinearities and softmax).

Each is computed by the C kernels; `Dense(units, activation=...)` fuses the same activation
into its GEMM. Formulas, with z the input and y the output:

=============  ===========================================  ==========================
name           y                                            parameter
=============  ===========================================  ==========================
identity       c * z  (the notes' linear activation)        c = 1
step           1 if z >= theta else 0                       theta = 0
sign           sign(z)                                      -
sigmoid        1 / (1 + exp(-z / T))                        T = 1 (temperature)
tanh           tanh(z)                                      -
relu           max(z, 0)                                    -
leaky_relu     z if z > 0 else alpha * z                    alpha = 0.01
elu            z if z > 0 else alpha * (exp(z) - 1)         alpha = 1
softplus       log(1 + exp(z))                              -
silu           z * sigmoid(z)                               -
gelu           z * Phi(z)                                   -
softmax        exp(z_i) / sum_j exp(z_j), per row           -
=============  ===========================================  ==========================

Step and sign have zero derivative almost everywhere, so no gradient flows through them; they
serve the perceptron's decision and the notes' threshold units.
"""
import numpy as np

from . import _core
from ._layer import Layer

_KIND = _core.ACTIVATIONS


class Activation(Layer):
    """An activation as a parameter-free layer: `Activation("relu")` or a subclass."""

    #: name of the default parameter of each activation kind, if any
    _PARAMS = {"identity": ("c", 1.0), "step": ("theta", 0.0), "sigmoid": ("T", 1.0),
               "leaky_relu": ("alpha", 0.01), "elu": ("alpha", 1.0)}
    _ALIASES = {"linear": "identity", "none": "identity", "logistic": "sigmoid",
                "threshold": "step", "heaviside": "step", "swish": "silu", "lrelu": "leaky_relu"}

    def __init__(self, name="identity", param=None):
        super().__init__()
        key = str(name).lower()
        key = self._ALIASES.get(key, key)
        if key == "prelu":
            raise ValueError("PReLU has a learnable slope: use the fastmlp.PReLU() layer.")
        if key not in _KIND:
            raise ValueError(
                f"Unknown activation {name!r}. Choose one of: {', '.join(sorted(_KIND))}."
            )
        self.name = key
        self.kind = _KIND[key]
        default = self._PARAMS.get(key, (None, 0.0))[1]
        self.param = float(default if param is None else param)
        if key == "sigmoid" and not self.param > 0:
            raise ValueError(f"The sigmoid temperature T must be > 0, got {self.param}")
        if key == "elu" and not self.param >= 0:
            raise ValueError(f"ELU's alpha must be >= 0, got {self.param}")
        if not np.isfinite(self.param):
            raise ValueError(f"The {key} parameter must be finite, got {self.param}")

    def output_dim_for(self, input_dim):
        return input_dim

    def _run(self, x):
        x = np.ascontiguousarray(self._check_input(x))
        y = np.empty_like(x)
        _core.act_forward(x, y, self.kind, self.param, self.n_threads)
        return x, y

    def infer(self, x):
        return self._run(x)[1]

    def forward(self, x, training=False):
        self._x, self._y = self._run(x)
        return self._y

    def backward(self, grad_out):
        x, y = self._cached("_x", "_y")
        grad_out = self._check_grad(grad_out, y.shape)
        dz = np.empty_like(x)
        _core.act_backward(x, y, grad_out, dz, self.kind, self.param, self.n_threads)
        return dz

    def __repr__(self):
        pname = self._PARAMS.get(self.name, (None,))[0]
        if pname is not None and self.param != self._PARAMS[self.name][1]:
            return f"Activation({self.name!r}, {pname}={self.param:g})"
        return f"Activation({self.name!r})"

    def get_config(self):
        return {"name": self.name, "param": self.param}


class Identity(Activation):
    def __init__(self, c=1.0):
        super().__init__("identity", c)


class Step(Activation):
    """The notes' threshold unit: 1 if z >= theta else 0."""

    def __init__(self, theta=0.0):
        super().__init__("step", theta)


class Sign(Activation):
    def __init__(self):
        super().__init__("sign")


class Sigmoid(Activation):
    """Logistic sigmoid with the notes' temperature: 1 / (1 + exp(-z / T))."""

    def __init__(self, T=1.0):
        super().__init__("sigmoid", T)


class Tanh(Activation):
    def __init__(self):
        super().__init__("tanh")


class ReLU(Activation):
    def __init__(self):
        super().__init__("relu")


class LeakyReLU(Activation):
    def __init__(self, alpha=0.01):
        super().__init__("leaky_relu", alpha)


class ELU(Activation):
    def __init__(self, alpha=1.0):
        super().__init__("elu", alpha)


class Softplus(Activation):
    def __init__(self):
        super().__init__("softplus")


class SiLU(Activation):
    def __init__(self):
        super().__init__("silu")


class GELU(Activation):
    def __init__(self):
        super().__init__("gelu")


class Softmax(Activation):
    def __init__(self):
        super().__init__("softmax")


def get_activation(spec):
    """An Activation from None, a name or an Activation instance."""
    if spec is None:
        return Activation("identity")
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return Activation(spec)
    if isinstance(spec, Layer):
        raise ValueError(f"{spec!r} cannot be fused into a Dense layer; add it as its own layer.")
    raise TypeError(f"activation must be a name or an Activation, got {type(spec).__name__}")
