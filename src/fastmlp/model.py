"""Sequential: a stack of layers over one flat parameter buffer, trained by mini-batch SGD."""
import numbers
import sys
import time

import numpy as np

from . import _core
from ._config import resolve_threads
from ._layer import Layer
from ._validation import (check_array, check_consistent_length, check_positive_int,
                          check_sample_weight, resolve_dtype)
from .activations import Activation
from .layers import Dense, PReLU
from .losses import get_loss
from .optimizers import get_optimizer


class History:
    """Per-epoch logs of `fit`: ``history.history["loss"]``, ``["val_loss"]``, ``["time"]``."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"


class Sequential:
    """Layers applied in order; all parameters live in one flat NumPy vector.

    Parameters
    ----------
    layers : list of Layer
    input_dim : int, optional. Without it the model is built on the first data it sees.
    dtype : "float32" or "float64"
    seed : int, optional. Fixes initialisation and shuffling; None draws one (kept in ``seed``).
    n_threads : int, optional. Threads for the kernels (default: fastmlp.get_num_threads()).
        Results are bitwise identical for any value.

    Two ways to run it, giving the same numbers: layer by layer (``forward``/``backward``, the
    lecture's message passing, e.g. to inspect or to put Python layers in) and ``fit``.
    """

    def __init__(self, layers=None, input_dim=None, dtype="float32", seed=None, n_threads=None):
        self.layers = []
        for layer in layers or []:
            self.add(layer)
        self.dtype = resolve_dtype(dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = int(seed)
        self.n_threads = resolve_threads(n_threads) if n_threads is not None else None
        self.input_dim = None
        self.loss = None
        self.optimizer = None
        self._fused = None
        self._epochs_done = 0
        self._params = None
        self._grads = None
        self._use_engine = True  # False forces the layer-by-layer path (tests compare the two)
        if input_dim is not None:
            self.build(check_positive_int(input_dim, "input_dim"))

    # ---- structure ----
    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes fastmlp layers, got {type(layer).__name__}")
        if getattr(self, "_params", None) is not None:
            raise RuntimeError("Cannot add layers to a model that is already built.")
        if any(layer is other for other in self.layers):
            raise ValueError("The same layer object appears twice; create a new layer instead.")
        self.layers.append(layer)
        return self

    @property
    def built(self):
        return self._params is not None

    def build(self, input_dim):
        """Fix the input width, allocate the flat buffers and initialise every layer."""
        if not self.layers:
            raise ValueError("The model has no layers; pass a list of layers to Sequential.")
        input_dim = check_positive_int(input_dim, "input_dim")
        widths, shapes = [input_dim], []
        for layer in self.layers:
            shapes.append(layer.param_shapes(widths[-1]))
            widths.append(layer.output_dim_for(widths[-1]))
        sizes = [[int(np.prod(s)) for _, s in layer_shapes] for layer_shapes in shapes]
        total = sum(sum(s) for s in sizes)
        self._params = np.zeros(total, self.dtype)
        self._grads = np.zeros(total, self.dtype)
        self._layout = shapes
        self._widths = [int(w) for w in widths[:-1]]
        self._bind_views()
        rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            if layer.param_shapes(layer.input_dim):
                layer.init_params(rng)
        self.input_dim = input_dim
        self.output_dim = widths[-1]
        if self.optimizer is not None:
            self.optimizer.setup(total, self.dtype)
        return self

    def _bind_views(self):
        offset = 0
        self._offsets = []
        for layer, layer_shapes, width in zip(self.layers, self._layout, self._widths):
            params, grads = [], []
            self._offsets.append([])
            for _, shape in layer_shapes:
                self._offsets[-1].append(offset)
                size = int(np.prod(shape))
                params.append(self._params[offset:offset + size].reshape(shape))
                grads.append(self._grads[offset:offset + size].reshape(shape))
                offset += size
            layer.input_dim = width
            layer.dtype = self.dtype
            layer._params, layer._grads = params, grads
            layer.output_dim = int(layer.output_dim_for(width))

    def _require_built(self, X=None):
        if not self.built:
            if X is None:
                raise RuntimeError("The model is not built yet: give input_dim or call fit() first.")
            self.build(np.shape(X)[1])

    def _threads(self):
        return resolve_threads(self.n_threads)

    def _sync_threads(self):
        nt = self._threads()
        for layer in self.layers:
            layer.n_threads = nt
        return nt

    @property
    def n_params(self):
        return 0 if self._params is None else int(self._params.size)

    @property
    def flat_params(self):
        """The flat parameter vector every layer's parameters are views of."""
        return self._params

    @property
    def flat_grads(self):
        return self._grads

    def get_weights(self):
        """Copies of every parameter in layer order: [W1, b1, W2, b2, ...]."""
        self._require_built()
        return [p.copy() for layer in self.layers for p in layer.params]

    def set_weights(self, weights):
        """Set every parameter from a list shaped like get_weights()."""
        self._require_built()
        views = [p for layer in self.layers for p in layer.params]
        weights = list(weights)
        if len(weights) != len(views):
            raise ValueError(f"set_weights expected a list of {len(views)} arrays, got {len(weights)}")
        checked = []
        for i, (view, w) in enumerate(zip(views, weights)):
            w = np.asarray(w)
            if w.shape != view.shape:
                raise ValueError(f"weight {i} has shape {w.shape}, expected {view.shape}")
            if w.dtype.kind not in "biuf" or not np.all(np.isfinite(w)):
                raise ValueError(f"weight {i} must be finite numbers")
            checked.append(w)
        for view, w in zip(views, checked):
            view[...] = w

    # ---- configuration ----
    def compile(self, loss="mse", optimizer=None):
        """Choose the loss (name or Loss) and optimizer (default SGD(lr=0.01))."""
        self.loss = get_loss(loss)
        self.optimizer = get_optimizer(optimizer)
        if self.built:
            self.optimizer.setup(self.n_params, self.dtype)
        self._fused = self._detect_fusion()
        return self

    def _detect_fusion(self):
        """'dense' or 'activation' when the last layer applies the loss's own link (softmax for
        cross-entropy, sigmoid with T=1 for binary cross-entropy): the loss then takes that
        activation's input, which is exact and stable. None otherwise."""
        link = self.loss.link
        if link not in ("softmax", "sigmoid") or not self.layers:
            return None
        last = self.layers[-1]
        act = last.activation if isinstance(last, Dense) else last
        if not isinstance(act, Activation) or act.name != link:
            return None
        if link == "sigmoid" and act.param != 1.0:
            return None
        return "dense" if isinstance(last, Dense) else "activation"

    def _require_compiled(self):
        if self.loss is None:
            raise RuntimeError("The model is not compiled: call model.compile(loss=..., optimizer=...) first.")

    # ---- the compiled engine ----
    def _layer_plan(self, i, layer):
        """The engine's descriptor of layer i, or None if only the Python path can run it."""
        offsets = self._offsets[i]
        n_in, n_out = layer.input_dim, layer.output_dim
        if type(layer) is Dense:
            act = layer.activation
            return {"kind": "dense", "act": act.kind, "act_param": act.param, "n_in": n_in,
                    "n_out": n_out, "w_offset": offsets[0],
                    "b_offset": offsets[1] if layer.use_bias else -1,
                    "l1": layer.l1, "l2": layer.l2}
        if isinstance(layer, Activation) and type(layer).forward is Activation.forward:
            return {"kind": "activation", "act": layer.kind, "act_param": layer.param,
                    "n_in": n_in, "n_out": n_out}
        if type(layer) is PReLU:
            return {"kind": "prelu", "n_in": n_in, "n_out": n_out, "w_offset": offsets[0]}
        return None

    def _plan(self, labelled=False):
        """A NetPlan for the C engine, or None when a layer needs the Python path."""
        descs = [self._layer_plan(i, layer) for i, layer in enumerate(self.layers)]
        if any(d is None for d in descs):
            return None
        if self.loss is None:
            loss, fused, link = _core.LOSSES["mse"], None, "identity"
        else:
            loss = _core.LOSSES["softmax_ce_labels"] if labelled else self.loss.kind
            fused, link = self._fused, self.loss.link
        return _core.NetPlan(descs, loss, _core.FUSED[fused], _core.ACTIVATIONS[link])

    # ---- layer by layer ----
    def forward(self, x, training=False):
        """Run every layer's forward in turn (caching what backward needs); returns the output."""
        self._require_built(x)
        self._sync_threads()
        x = check_array(x, self.dtype, n_features=self.input_dim, owner="Sequential")
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad_out):
        """Run every layer's backward in reverse from dL/d(output); fills the gradient views and
        returns dL/d(input)."""
        g = grad_out
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def _forward_logits(self, X):
        layers = self.layers[:-1] if self._fused == "activation" else self.layers
        x = X
        for layer in layers:
            x = layer.forward(x, training=True)
        if self._fused == "dense":
            return self.layers[-1]._z
        return x

    def _backward_logits(self, g):
        layers = self.layers
        if self._fused == "activation":
            layers = layers[:-1]
        elif self._fused == "dense":
            last = layers[-1]
            g = last.backward(g, need_input_grad=len(layers) > 1, from_preactivation=True)
            layers = layers[:-1]
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if isinstance(layer, Dense):
                g = layer.backward(g, need_input_grad=i > 0)
            else:
                g = layer.backward(g)

    def _loss_and_grads(self, X, targets, sample_weight):
        """Loss (with penalties) at X; leaves the gradient in the flat gradient buffer."""
        logits = self._forward_logits(X)
        value, g = self.loss(logits, targets, sample_weight, True, self._threads())
        self._backward_logits(g)
        for layer in self.layers:
            value += layer.penalty(add_gradient=True)
        return value

    def _prepare(self, X, y, sample_weight):
        self._require_compiled()
        X = check_array(X, self.dtype, n_features=self.input_dim, owner="Sequential")
        if y is None:
            raise ValueError("y is required: pass the targets that go with X.")
        check_consistent_length(X, y)
        self._require_built(X)
        targets = self.loss.prepare_targets(y, self.output_dim, self.dtype)
        sw = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        self._sync_threads()
        return X, targets, sw

    def loss_and_gradients(self, X, y, sample_weight=None):
        """(loss, grads) at the current weights; grads are copies aligned with get_weights()."""
        X, targets, sw = self._prepare(X, y, sample_weight)
        value = self._loss_and_grads(X, targets, sw)
        return value, [g.copy() for layer in self.layers for g in layer.grads]

    def train_on_batch(self, X, y, sample_weight=None):
        """One gradient step on (X, y); returns the loss before the step."""
        X, targets, sw = self._prepare(X, y, sample_weight)
        return self._step(X, targets, sw)

    def _step(self, X, targets, sw):
        value = self._loss_and_grads(X, targets, sw)
        if not np.isfinite(value):
            raise FloatingPointError(
                f"The loss became {value} and training was stopped before applying that step. "
                "Try a smaller learning rate (lr), standardising X (zero mean, unit variance), "
                "or a loss that matches the targets."
            )
        self.optimizer.step(self._params, self._grads, self._threads())
        return value

    # ---- training ----
    def fit(self, X, y, epochs=1, batch_size=32, shuffle=True, verbose=0, sample_weight=None,
            validation_data=None):
        """Mini-batch gradient descent: batch_size=1 is online SGD, None is full-batch GD.

        Each epoch visits every sample once, in an order drawn from the model's seed (the same
        for any thread count). Returns a History with per-epoch "loss", "time" and, with
        validation_data=(X_val, y_val), "val_loss"."""
        X, targets, sw = self._prepare(X, y, sample_weight)
        epochs = check_positive_int(epochs, "epochs")
        n = X.shape[0]
        batch_size = n if batch_size is None else min(check_positive_int(batch_size, "batch_size"), n)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight)")
        plan = self._plan(labelled="labels" in targets) if self._use_engine else None
        if plan is not None:
            nt = self._threads()
            workspace = np.empty(plan.workspace_size(self.dtype, batch_size, True, nt), np.uint8)
        history = History()
        for _ in range(epochs):
            epoch = self._epochs_done
            start = time.perf_counter()
            snapshot = self._params.copy()
            order = (_core.permutation(n, self.seed, epoch + 1) if shuffle
                     else np.arange(n, dtype=np.int64))
            if plan is not None:
                opt = self.optimizer
                finite, total, weight_total, _, step, mu_product = plan.train_epoch(
                    X, targets.get("t"), targets.get("labels"), sw, order, batch_size,
                    self._params, self._grads, opt._hyper(), opt._state_list(), opt.iterations,
                    workspace, nt)
                opt._advance(step, mu_product)
                if not finite:
                    self._non_finite(snapshot)
            else:
                total, weight_total = self._python_epoch(X, targets, sw, order, batch_size, snapshot)
            self._epochs_done += 1
            logs = {"loss": total / weight_total if weight_total else 0.0}
            if validation_data is not None:
                logs["val_loss"] = self.evaluate(*validation_data)
            logs["time"] = time.perf_counter() - start
            history.append(epoch, logs)
            if verbose:
                items = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if k != "time")
                print(f"Epoch {epoch + 1}: {items} - {logs['time']:.3f}s", file=sys.stdout)
        return history

    def _python_epoch(self, X, targets, sw, order, batch_size, snapshot):
        """One epoch on the layer-by-layer path (models with custom Python layers)."""
        total, weight_total = 0.0, 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            tb = {k: v[idx] for k, v in targets.items()}
            swb = None if sw is None else sw[idx]
            try:
                value = self._step(X[idx], tb, swb)
            except FloatingPointError:
                self._non_finite(snapshot)
            w = float(len(idx) if swb is None else np.sum(swb, dtype=np.float64))
            total += value * w
            weight_total += w
        return total, weight_total

    def _non_finite(self, snapshot):
        if not np.all(np.isfinite(self._params)):
            self._params[...] = snapshot
        raise FloatingPointError(
            "The loss became NaN or infinite and training was stopped before applying that "
            "step. Try a smaller learning rate (lr), standardising X (zero mean, unit "
            "variance), or a loss that matches the targets."
        )

    # ---- inference ----
    def _infer_logits(self, X):
        layers = self.layers
        if self._fused == "activation":
            layers = layers[:-1]
        elif self._fused == "dense":
            for layer in layers[:-1]:
                X = layer.infer(X)
            return layers[-1].infer(X, skip_activation=True)
        for layer in layers:
            X = layer.infer(X)
        return X

    def _check_predict_input(self, X):
        if not self.built:
            raise RuntimeError(
                "This Sequential instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator (or give input_dim)."
            )
        self._sync_threads()
        return check_array(X, self.dtype, n_features=self.input_dim, owner="Sequential")

    #: rows per engine call in predict: bounds the workspace, whatever the input size
    _PREDICT_CHUNK = 1024

    def _predict_engine(self, X, raw):
        plan = self._plan()
        if plan is None:
            return None
        nt = self._threads()
        chunk = max(1, min(len(X), self._PREDICT_CHUNK))
        workspace = np.empty(plan.workspace_size(self.dtype, chunk, False, nt), np.uint8)
        out = np.empty((len(X), plan.n_outputs), self.dtype)
        plan.predict(X, self._params, out, raw, chunk, workspace, nt)
        return out

    def predict_raw(self, X):
        """The network's raw outputs (logits for the cross-entropies), before the loss's link."""
        X = self._check_predict_input(X)
        out = self._predict_engine(X, raw=True) if self._use_engine else None
        return self._infer_logits(X) if out is None else out

    def predict(self, X):
        """Outputs after the output activation: class probabilities for the cross-entropies
        (softmax / sigmoid), signs for the perceptron and hinge losses, values for MSE.
        Stores nothing, so several threads may predict with one model at once."""
        X = self._check_predict_input(X)
        out = self._predict_engine(X, raw=False) if self._use_engine else None
        if out is not None:
            return out
        if self.loss is None:
            for layer in self.layers:
                X = layer.infer(X)
            return X
        z = self._infer_logits(X)
        link = self.loss.link
        if link == "identity":
            return z
        out = np.empty_like(z)
        _core.act_forward(z, out, _core.ACTIVATIONS[link], 1.0, self._threads())
        return out

    def evaluate(self, X, y, sample_weight=None):
        """Loss on (X, y) at the current weights, penalties included (as in fit's history)."""
        X, targets, sw = self._prepare(X, y, sample_weight)
        value, _ = self.loss(self._infer_logits(X), targets, sw, False, self._threads())
        for layer in self.layers:
            value += layer.penalty(add_gradient=False)
        return value

    # ---- misc ----
    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._params is not None:
            self._bind_views()  # unpickled layers hold copies; make them views again

    def summary(self):
        lines = [f"Sequential(input_dim={self.input_dim}, dtype={self.dtype.name})"]
        for i, layer in enumerate(self.layers):
            lines.append(f"  {i:2d} {layer!r:<50} out={layer.output_dim} params={layer.n_params}")
        lines.append(f"  total params: {self.n_params}")
        if self.loss is not None:
            lines.append(f"  loss: {self.loss.name}, optimizer: {self.optimizer!r}")
        return "\n".join(lines)

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], input_dim={self.input_dim}, dtype='{self.dtype.name}')"
