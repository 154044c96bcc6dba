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
    max_norm : if set, after every update each unit's incoming weight vector (a column of W)
        longer than max_norm is scaled back to that length (Srivastava et al. 2014)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer="zeros", l1=0.0, l2=0.0, max_norm=None):
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
        self.max_norm = _check_max_norm(max_norm)

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

    def apply_constraints(self):
        """Enforce max_norm (the model calls this after every update)."""
        if self.max_norm:
            _core.max_norm(self.weight, self.max_norm, self.n_threads)

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
                "use_bias": self.use_bias, "l1": self.l1, "l2": self.l2, "max_norm": self.max_norm}


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



class _RandomLayer(Layer):
    """A layer that draws from the counter-based generator: element (i, j) of a batch gets the
    draw (key, stream, i * width + j), where the model sets stream to its optimizer's step count,
    so the compiled engine and the layer-by-layer path draw the same numbers for any thread count."""

    def __init__(self, seed=None):
        super().__init__()
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = seed
        self._key = None
        self._stream = None
        self._calls = 0

    def output_dim_for(self, input_dim):
        return input_dim

    def _draw_key(self):
        if self._key is None:
            self._key = int(self.seed if self.seed is not None else np.random.SeedSequence().entropy % 2**63)
        if self._stream is None:  # standalone use: a fresh stream per call
            self._calls += 1
            return self._key, self._calls
        return self._key, int(self._stream)

    def infer(self, x):
        return self._check_input(x)


class Dropout(_RandomLayer):
    """Inverted dropout (Srivastava et al. 2014): in training each input is zeroed with
    probability `rate` and the survivors are scaled by 1 / (1 - rate); at inference the layer is
    the identity."""

    def __init__(self, rate, seed=None):
        super().__init__(seed)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(self._check_input(x))
        if not training:
            self._mask = None
            return x
        key, stream = self._draw_key()
        self._mask = np.empty_like(x)
        y = np.empty_like(x)
        _core.dropout_forward(x, self._mask, y, self.rate, key, stream, self.n_threads)
        return y

    def backward(self, grad_out):
        (mask,) = self._cached("_mask")
        if mask is None:
            return np.ascontiguousarray(grad_out, dtype=self.dtype)
        grad_out = self._check_grad(grad_out, mask.shape)
        dx = np.empty_like(mask)
        _core.mul(grad_out, mask, dx, self.n_threads)
        return dx

    def __repr__(self):
        return f"Dropout({self.rate:g})"

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed}


class GaussianNoise(_RandomLayer):
    """Additive zero-mean Gaussian noise with standard deviation `stddev`, in training only."""

    def __init__(self, stddev, seed=None):
        super().__init__(seed)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or not stddev >= 0:
            raise ValueError(f"GaussianNoise stddev must be >= 0, got {stddev!r}")
        self.stddev = float(stddev)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(self._check_input(x))
        if not training:
            return x
        key, stream = self._draw_key()
        y = np.empty_like(x)
        _core.gaussian_noise(x, y, self.stddev, key, stream, self.n_threads)
        return y

    def backward(self, grad_out):
        return np.ascontiguousarray(grad_out, dtype=self.dtype)

    def __repr__(self):
        return f"GaussianNoise({self.stddev:g})"

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed}


class ActivityRegularization(Layer):
    """Identity that adds an activity penalty on its input to the training loss, per sample:
    (l1 * sum|x| + l2 / 2 * sum x^2) averaged over the batch (the notes' L1/L2 on activations).
    Place it after the layer whose outputs should be sparse or small. It enters the training
    objective (fit's loss, loss_and_gradients); evaluate() reports the data loss plus weight
    penalties."""

    def __init__(self, l1=0.0, l2=0.0):
        super().__init__()
        self.l1 = check_non_negative_float(l1, "l1")
        self.l2 = check_non_negative_float(l2, "l2")
        self._value = 0.0

    def output_dim_for(self, input_dim):
        return input_dim

    def infer(self, x):
        return self._check_input(x)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(self._check_input(x))
        self._y = x
        self._value = _core.activity_penalty(x, None, self.l1, self.l2) if training else 0.0
        return x

    def backward(self, grad_out):
        (y,) = self._cached("_y")
        dx = np.array(self._check_grad(grad_out, y.shape), copy=True)
        _core.activity_penalty(y, dx, self.l1, self.l2)
        return dx

    def penalty(self, add_gradient=True):
        # The training objective's share (its gradient went in during backward); evaluation
        # (add_gradient=False) leaves it out.
        return self._value if add_gradient else 0.0

    def __repr__(self):
        return f"ActivityRegularization(l1={self.l1:g}, l2={self.l2:g})"

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class Maxout(Layer):
    """Maxout units (Goodfellow et al. 2013): each of `units` outputs is the maximum of `pieces`
    affine maps of the input, y_u = max_p (x W + b)_{u * pieces + p}. W is
    (in_features, units * pieces); the gradient flows to the first maximal piece."""

    def __init__(self, units, pieces=2, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", l1=0.0, l2=0.0, max_norm=None):
        super().__init__()
        self.units = check_positive_int(units, "units")
        self.pieces = check_positive_int(pieces, "pieces")
        self.use_bias = bool(use_bias)
        initializers.get(kernel_initializer)
        initializers.get(bias_initializer)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.l1 = check_non_negative_float(l1, "l1")
        self.l2 = check_non_negative_float(l2, "l2")
        self.max_norm = _check_max_norm(max_norm)

    def param_shapes(self, input_dim):
        shapes = [("weight", (input_dim, self.units * self.pieces))]
        if self.use_bias:
            shapes.append(("bias", (self.units * self.pieces,)))
        return shapes

    def output_dim_for(self, input_dim):
        return self.units

    def init_params(self, rng):
        cols = self.units * self.pieces
        initializers.fill(self._params[0], self.kernel_initializer, rng, self.input_dim, cols)
        if self.use_bias:
            initializers.fill(self._params[1], self.bias_initializer, rng, self.input_dim, cols)

    weight = Dense.weight
    bias = Dense.bias
    grad_weight = Dense.grad_weight
    grad_bias = Dense.grad_bias
    penalty = Dense.penalty

    def _run(self, x):
        x = self._check_input(x)
        z = np.empty((x.shape[0], self.units * self.pieces), self.dtype)
        _core.dense_forward(x, self.weight, self.bias, None, z, 0, 1.0, self.n_threads)
        y = np.empty((x.shape[0], self.units), self.dtype)
        _core.maxout_forward(z, y, self.pieces, self.n_threads)
        return x, z, y

    def infer(self, x):
        return self._run(x)[2]

    def forward(self, x, training=False):
        self._x, self._z, y = self._run(x)
        return y

    def backward(self, grad_out, need_input_grad=True):
        x, z = self._cached("_x", "_z")
        grad_out = self._check_grad(grad_out, (z.shape[0], self.units))
        dz = np.empty_like(z)
        _core.maxout_backward(z, grad_out, dz, self.pieces, self.n_threads)
        dx = np.empty(x.shape, self.dtype) if need_input_grad else None
        _core.dense_backward(x, self.weight, dz, dz, dz, dz, dx, self.grad_weight, self.grad_bias,
                             0, 1.0, self.n_threads)
        return dx

    def apply_constraints(self):
        if self.max_norm:
            _core.max_norm(self.weight, self.max_norm, self.n_threads)

    def __repr__(self):
        return f"Maxout({self.units}, pieces={self.pieces})"

    def get_config(self):
        return {"units": self.units, "pieces": self.pieces, "use_bias": self.use_bias,
                "l1": self.l1, "l2": self.l2, "max_norm": self.max_norm}


def _check_max_norm(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"max_norm must be a positive number or None, got {value!r}")
    return float(value)


__all__ = ["Dense", "PReLU", "Activation", "Dropout", "GaussianNoise", "ActivityRegularization",
           "Maxout"]
