"""Trainable layers: Dense (affine map with a fused activation) and PReLU."""
import numpy as np

from . import _core
from . import initializers
from ._layer import Layer
from ._validation import check_non_negative_float, check_positive_int
from .activations import Activation, get_activation

_RELU_FAMILY = {"relu", "leaky_relu", "elu", "silu", "gelu", "softplus"}


class Dense(Layer):
    """Fully connected layer: z = x W + b, y = activation(z).

    W has shape (in_features, units) (as scikit-learn's ``coefs_``), so a row-major batch x of
    shape (batch, in_features) needs no transpose. The bias and activation are applied inside
    the GEMM's output tiles.

    Parameters
    ----------
    units : int
    activation : None, str or Activation (fused; softmax is applied to whole rows after the GEMM)
    use_bias : bool
    kernel_initializer : name, number, array or callable; default He uniform for the ReLU family,
        Glorot uniform otherwise
    bias_initializer : default "zeros"; the notes' tip for ReLU layers is a small positive
        constant, e.g. ``bias_initializer=0.01``
    l1, l2 : penalties on W added to the loss: l1 * sum|W| + l2 / 2 * sum W^2
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer="zeros", l1=0.0, l2=0.0):
        super().__init__()
        self.units = check_positive_int(units, "units")
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        if kernel_initializer is None:
            kernel_initializer = ("he_uniform" if self.activation.name in _RELU_FAMILY
                                  else "glorot_uniform")
        initializers.get(kernel_initializer)  # fail early on a bad name
        initializers.get(bias_initializer)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.l1 = check_non_negative_float(l1, "l1")
        self.l2 = check_non_negative_float(l2, "l2")

    def param_shapes(self, input_dim):
        shapes = [("weight", (input_dim, self.units))]
        if self.use_bias:
            shapes.append(("bias", (self.units,)))
        return shapes

    def output_dim_for(self, input_dim):
        return self.units

    def init_params(self, rng):
        initializers.fill(self._params[0], self.kernel_initializer, rng, self.input_dim, self.units)
        if self.use_bias:
            initializers.fill(self._params[1], self.bias_initializer, rng, self.input_dim, self.units)

    @property
    def weight(self):
        return self._params[0] if self._params else None

    @weight.setter
    def weight(self, value):
        self._params[0][...] = value

    @property
    def bias(self):
        return self._params[1] if self.use_bias and self._params else None

    @bias.setter
    def bias(self, value):
        if not self.use_bias:
            raise AttributeError("this Dense layer has no bias (use_bias=False)")
        self._params[1][...] = value

    @property
    def grad_weight(self):
        return self._grads[0] if self._grads else None

    @property
    def grad_bias(self):
        return self._grads[1] if self.use_bias and self._grads else None

    def _run(self, x, keep_z, skip_activation=False):
        x = self._check_input(x)
        y = np.empty((x.shape[0], self.units), self.dtype)
        act = self.activation
        if skip_activation or (act.name == "identity" and act.param == 1.0):
            _core.dense_forward(x, self.weight, self.bias, None, y, 0, 1.0, self.n_threads)
            return x, y, y
        z = np.empty_like(y) if keep_z else None
        _core.dense_forward(x, self.weight, self.bias, z, y, act.kind, act.param, self.n_threads)
        return x, z, y

    def infer(self, x, skip_activation=False):
        """y for x without storing anything; with skip_activation, the pre-activation z."""
        return self._run(x, keep_z=False, skip_activation=skip_activation)[2]

    def forward(self, x, training=False):
        self._x, self._z, self._y = self._run(x, keep_z=True)
        return self._y

    def backward(self, grad_out, need_input_grad=True, from_preactivation=False):
        """Fill the gradient views from dL/dy and return dL/dx.

        With ``from_preactivation=True``, grad_out is dL/dz (a loss fused with the activation,
        e.g. softmax cross-entropy, already went through it)."""
        x, z, y = self._cached("_x", "_z", "_y")
        grad_out = self._check_grad(grad_out, y.shape)
        dz = np.empty_like(y)
        dx = np.empty(x.shape, self.dtype) if need_input_grad else None
        kind, param = ((0, 1.0) if from_preactivation
                       else (self.activation.kind, self.activation.param))
        _core.dense_backward(x, self.weight, z, y, grad_out, dz, dx, self.grad_weight,
                             self.grad_bias, kind, param, self.n_threads)
        return dx

    def penalty(self, add_gradient=True):
        if not (self.l1 or self.l2):
            return 0.0
        w = self.weight.reshape(-1)
        g = self.grad_weight.reshape(-1) if add_gradient else None
        return _core.penalty(w, g, self.l1, self.l2)

    def __repr__(self):
        parts = [str(self.units)]
        if self.activation.name != "identity" or self.activation.param != 1.0:
            parts.append(f"activation={self.activation!r}")
        if not self.use_bias:
            parts.append("use_bias=False")
        if self.l1:
            parts.append(f"l1={self.l1:g}")
        if self.l2:
            parts.append(f"l2={self.l2:g}")
        return f"Dense({', '.join(parts)})"

    def get_config(self):
        return {"units": self.units, "activation": self.activation.get_config(),
                "use_bias": self.use_bias, "l1": self.l1, "l2": self.l2}


class PReLU(Layer):
    """Parametric ReLU (He et al. 2015): y = z if z > 0 else a_j * z, one learnable a_j per feature."""

    def __init__(self, init=0.25):
        super().__init__()
        self.init = float(init)

    def param_shapes(self, input_dim):
        return [("slope", (input_dim,))]

    def output_dim_for(self, input_dim):
        return input_dim

    def init_params(self, rng):
        self._params[0][...] = self.init

    @property
    def slope(self):
        return self._params[0] if self._params else None

    @slope.setter
    def slope(self, value):
        self._params[0][...] = value

    @property
    def grad_slope(self):
        return self._grads[0] if self._grads else None

    def _run(self, x):
        x = np.ascontiguousarray(self._check_input(x))
        y = np.empty_like(x)
        _core.prelu_forward(x, self.slope, y, self.n_threads)
        return x, y

    def infer(self, x):
        return self._run(x)[1]

    def forward(self, x, training=False):
        self._x, y = self._run(x)
        return y

    def backward(self, grad_out):
        (x,) = self._cached("_x")
        grad_out = self._check_grad(grad_out, x.shape)
        dz = np.empty_like(x)
        _core.prelu_backward(x, self.slope, grad_out, dz, self.grad_slope, self.n_threads)
        return dz

    def __repr__(self):
        return f"PReLU(init={self.init:g})"

    def get_config(self):
        return {"init": self.init}


__all__ = ["Dense", "PReLU", "Activation"]
