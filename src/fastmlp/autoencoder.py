"""Autoencoders: a network trained to reproduce its input through a narrow code layer."""
import numpy as np

from . import _core
from ._layer import Layer
from ._validation import check_positive_int
from .activations import get_activation
from .layers import Dense
from .model import Sequential


class TiedDense(Layer):
    """A Dense layer whose weight is the transpose of another Dense layer's (tied weights):
    y = act(x W_src^T + b). Only the bias is its own parameter; the gradient of the shared
    weight is added to the source layer's gradient. Runs on the layer-by-layer path."""

    def __init__(self, source, units, activation=None, use_bias=True):
        super().__init__()
        if not isinstance(source, Dense):
            raise TypeError("TiedDense ties its weight to a Dense layer")
        self.source = source
        self.units = check_positive_int(units, "units")
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self._pending = None

    def param_shapes(self, input_dim):
        return [("bias", (self.units,))] if self.use_bias else []

    def output_dim_for(self, input_dim):
        return self.units

    def init_params(self, rng):
        if self.use_bias:
            self._params[0][...] = 0

    @property
    def bias(self):
        return self._params[0] if self.use_bias and self._params else None

    def _weight(self):
        w = self.source.weight
        if w is None or w.shape != (self.units, self.input_dim):
            raise ValueError(f"TiedDense({self.units}) after a {self.input_dim}-wide layer needs a "
                             f"source Dense of shape ({self.units}, {self.input_dim}); got "
                             f"{None if w is None else w.shape}")
        return np.ascontiguousarray(w.T)

    def _run(self, x, keep_z, skip_activation=False):
        x = self._check_input(x)
        y = np.empty((x.shape[0], self.units), self.dtype)
        act = self.activation
        if skip_activation or (act.name == "identity" and act.param == 1.0):
            _core.dense_forward(x, self._weight(), self.bias, None, y, 0, 1.0, self.n_threads)
            return x, y, y
        z = np.empty_like(y) if keep_z else None
        _core.dense_forward(x, self._weight(), self.bias, z, y, act.kind, act.param, self.n_threads)
        return x, z, y

    def infer(self, x, skip_activation=False):
        return self._run(x, keep_z=False, skip_activation=skip_activation)[2]

    def forward(self, x, training=False):
        self._x, self._z, self._y = self._run(x, keep_z=True)
        return self._y

    def backward(self, grad_out, need_input_grad=True, from_preactivation=False):
        x, z, y = self._cached("_x", "_z", "_y")
        grad_out = self._check_grad(grad_out, y.shape)
        w_t = self._weight()
        dz = np.empty_like(y)
        dx = np.empty(x.shape, self.dtype) if need_input_grad else None
        dw_t = np.empty_like(w_t)
        db = self._grads[0] if self.use_bias else None
        kind, param = ((0, 1.0) if from_preactivation
                       else (self.activation.kind, self.activation.param))
        _core.dense_backward(x, w_t, z, y, grad_out, dz, dx, dw_t, db, kind, param, self.n_threads)
        self._pending = dw_t
        return dx

    def accumulate_shared_grads(self):
        if self._pending is not None:
            self.source.grad_weight[...] += self._pending.T
            self._pending = None

    def __repr__(self):
        return f"TiedDense({self.units}, activation={self.activation!r})"

    def get_config(self):
        return {"units": self.units, "activation": self.activation.get_config(),
                "use_bias": self.use_bias}


class Autoencoder(Sequential):
    """An encoder and a decoder trained to reconstruct the input: ``fit(X)`` targets X itself.

    ``Autoencoder(input_dim=784, hidden=(128, 32))`` builds 784-128-32-128-784: the encoder
    784-128-32 and a mirrored decoder 32-128-784 (``hidden`` lists the encoder's widths, the
    last being the code). With ``tied=True`` each decoder layer uses the transpose of its mirror
    encoder weight (half the weights; trained on the layer-by-layer path). Or give your own
    ``encoder`` and ``decoder`` layer lists.

    ``encode(X)`` gives the codes, ``decode(codes)`` the reconstructions, and
    ``reconstruction_error(X)`` the mean squared error per sample. Compile with "mse", or with
    "binary_cross_entropy" for inputs in [0, 1] (the sigmoid output is then fused into the loss).
    """

    def __init__(self, input_dim=None, hidden=(128, 32), activation="relu",
                 output_activation="sigmoid", tied=False, encoder=None, decoder=None,
                 dtype="float32", seed=None, n_threads=None):
        if encoder is None:
            if input_dim is None:
                raise ValueError("give input_dim (and hidden), or encoder/decoder layers")
            widths = [check_positive_int(h, "hidden width") for h in hidden]
            if not widths:
                raise ValueError("hidden needs at least one width (the code size)")
            encoder = [Dense(w, activation) for w in widths]
        if decoder is None:
            if not all(isinstance(layer, Dense) for layer in encoder) or input_dim is None:
                raise ValueError("a mirrored decoder needs Dense encoder layers and input_dim")
            widths = [layer.units for layer in encoder]
            outs = widths[-2::-1] + [input_dim]
            acts = [activation] * (len(outs) - 1) + [output_activation]
            if tied:
                decoder = [TiedDense(src, units, act)
                           for src, units, act in zip(encoder[::-1], outs, acts)]
            else:
                decoder = [Dense(units, act) for units, act in zip(outs, acts)]
        elif tied:
            raise ValueError("tied=True builds the decoder itself; do not pass one")
        self.n_encoder_layers = len(encoder)
        self.tied = bool(tied)
        super().__init__(list(encoder) + list(decoder), input_dim=input_dim, dtype=dtype,
                         seed=seed, n_threads=n_threads)

    @property
    def encoder(self):
        return self.layers[:self.n_encoder_layers]

    @property
    def decoder(self):
        return self.layers[self.n_encoder_layers:]

    def fit(self, X, y=None, **kwargs):
        """Train to reconstruct X (or the given targets y, e.g. clean inputs for denoising)."""
        return super().fit(X, X if y is None else y, **kwargs)

    def encode(self, X):
        """The codes: X through the encoder."""
        X = self._check_predict_input(X)
        for layer in self.encoder:
            X = layer.infer(X)
        return X

    def decode(self, codes):
        """Reconstructions from codes (after the output activation)."""
        if not self.built:
            raise RuntimeError("The autoencoder is not fitted yet; call fit first.")
        self._sync_threads()
        from ._validation import check_array

        z = check_array(codes, self.dtype, name="codes", n_features=self.encoder[-1].output_dim,
                        owner="the decoder")
        for layer in self.decoder:
            z = layer.infer(z)
        return z

    def reconstruction_error(self, X):
        """Mean squared reconstruction error of each sample, sum_j (x_j - x'_j)^2 / n_features."""
        X_checked = self._check_predict_input(X)
        recon = self.predict(X_checked)
        return np.mean((np.asarray(recon, np.float64) - X_checked) ** 2, axis=1)
