"""Sequential: a stack of layers over one flat parameter buffer, trained by mini-batch SGD."""
import copy
import numbers
import time

import numpy as np

from . import _core
from ._config import resolve_threads
from ._layer import Layer
from ._validation import (check_array, check_consistent_length, check_positive_int,
                          check_sample_weight, resolve_dtype)
from .activations import Activation
from .layers import (ActivityRegularization, Dense, Dropout, GaussianNoise, Maxout, PReLU,
                     _RandomLayer)
from .losses import get_loss
from .optimizers import get_optimizer
from . import callbacks as _callbacks
from .callbacks import History  # fit's return type (also fastmlp.History)
from .metrics import get_metrics

_TUNERS_KEPT = 4  # fit's thread-tuner states kept per model, one per training set (and batch)


def _zeros_aligned(n, dtype):
    """n zeros starting on a 64-byte boundary. The GEMM reads weight rows in place as 64-byte
    vectors; from the 16-mod-64 addresses NumPy's allocations get, every load straddled two cache
    lines and the forward products ran 5-11% slower."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + n * dtype.itemsize].view(dtype)


def _split_validation(X, y, sample_weight, fraction, dtype, n_features):
    """Keras' validation_split: the last `fraction` of the samples, taken before shuffling."""
    if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
            or not 0 < fraction < 1):
        raise ValueError(f"validation_split must be a number in (0, 1), got {fraction!r}")
    X = check_array(X, dtype, n_features=n_features, owner="Sequential")
    if y is None:
        raise ValueError("y is required: pass the targets that go with X.")
    y = np.asarray(y)
    check_consistent_length(X, y)
    n = len(X)
    split_at = int(n * (1.0 - fraction))
    if split_at == 0 or split_at == n:
        raise ValueError(f"validation_split={fraction} leaves {split_at} training and "
                         f"{n - split_at} validation samples out of {n}; both need at least one.")
    sw_train = sw_val = sample_weight
    if sample_weight is not None and not isinstance(sample_weight, numbers.Number):
        sw = np.asarray(sample_weight)
        if sw.ndim != 1 or len(sw) != n:
            raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},)!")
        sw_train, sw_val = sw[:split_at], sw[split_at:]
    return X[:split_at], y[:split_at], sw_train, (X[split_at:], y[split_at:], sw_val)


def _class_sample_weight(y, class_weight, link):
    """Per-sample weights from class_weight: a dict {class label: weight} (classes not in it
    weigh 1) or "balanced", n_samples / (n_classes * count of the sample's class), as sklearn's
    compute_class_weight. Labels are y itself, or the argmax of one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        if link in ("sigmoid", "sign"):
            raise ValueError("class_weight needs one class per sample; with several "
                             f"{link} outputs (multi-label targets) pass sample_weight instead.")
        labels = y.argmax(axis=1)
    else:
        labels = y.reshape(-1)
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise ValueError("class_weight needs class labels, but y holds non-integer values; "
                             "for regression targets pass sample_weight instead.")
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
        classes, inverse = np.unique(labels, return_inverse=True)
        weights = len(labels) / (len(classes) * np.bincount(inverse.reshape(-1)))
        return weights[inverse.reshape(-1)]
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight must be a dict {{class: weight}} or 'balanced', "
                         f"got {type(class_weight).__name__}")
    out = np.ones(len(labels))
    for cls, w in class_weight.items():
        if isinstance(cls, (bool, str)) or not isinstance(cls, (numbers.Real, np.generic)):
            raise ValueError(f"class_weight keys must be class labels (numbers), got {cls!r}")
        if (isinstance(w, bool) or not isinstance(w, (numbers.Real, np.generic))
                or not np.isfinite(w) or w < 0):
            raise ValueError(f"class_weight[{cls!r}] must be a finite number >= 0, got {w!r}")
        out[labels == cls] = float(w)
    return out


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
        self._params = _zeros_aligned(total, self.dtype)
        self._grads = _zeros_aligned(total, self.dtype)
        self._layout = shapes
        self._widths = [int(w) for w in widths[:-1]]
        self._bind_views()
        rng = np.random.default_rng(self.seed)
        for i, layer in enumerate(self.layers):
            if layer.param_shapes(layer.input_dim):
                layer.init_params(rng)
            if isinstance(layer, _RandomLayer):
                layer._key = (layer.seed if layer.seed is not None
                              else int(_core.rng_u64(self.seed, 0x5EED, i) >> 1))
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
    def compile(self, loss="mse", optimizer=None, metrics=None):
        """Choose the loss (name or Loss), optimizer (default SGD(lr=0.01)) and metrics (names
        such as "accuracy", "top_5_accuracy", "mse", "mae", "r2", Metric objects or functions
        f(y_true, y_pred); see fastmlp.metrics), reported by fit and evaluate."""
        self.loss = get_loss(loss)
        self.optimizer = get_optimizer(optimizer)
        self.metrics = get_metrics(metrics, self.loss)
        if self.built:
            self.optimizer.setup(self.n_params, self.dtype)
        self._fused = self._detect_fusion()
        self._predict_cache = self._fast_predict = self._predict_tuner = None
        return self

    def _detect_fusion(self):
        """'dense' or 'activation' when the last layer applies the loss's own link (softmax for
        cross-entropy, sigmoid with T=1 for binary cross-entropy): the loss then takes that
        activation's input, which is exact and stable. None otherwise."""
        link = self.loss.link
        if link not in ("softmax", "sigmoid") or not self.layers:
            return None
        last = self.layers[-1]
        act = getattr(last, "activation", last)  # a Dense-like layer's fused activation
        if not isinstance(act, Activation) or act.name != link:
            return None
        if link == "sigmoid" and act.param != 1.0:
            return None
        return "activation" if act is last else "dense"

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
                    "l1": layer.l1, "l2": layer.l2, "max_norm": layer.max_norm}
        if isinstance(layer, Activation) and type(layer).forward is Activation.forward:
            return {"kind": "activation", "act": layer.kind, "act_param": layer.param,
                    "n_in": n_in, "n_out": n_out}
        if type(layer) is PReLU:
            return {"kind": "prelu", "n_in": n_in, "n_out": n_out, "w_offset": offsets[0]}
        if type(layer) is Dropout:
            return {"kind": "dropout", "act_param": layer.rate, "seed": layer._key,
                    "n_in": n_in, "n_out": n_out}
        if type(layer) is GaussianNoise:
            return {"kind": "noise", "act_param": layer.stddev, "seed": layer._key,
                    "n_in": n_in, "n_out": n_out}
        if type(layer) is ActivityRegularization:
            return {"kind": "activity", "l1": layer.l1, "l2": layer.l2, "n_in": n_in, "n_out": n_out}
        if type(layer) is Maxout:
            return {"kind": "maxout", "n_in": n_in, "n_out": n_out, "pieces": layer.pieces,
                    "w_offset": offsets[0], "b_offset": offsets[1] if layer.use_bias else -1,
                    "l1": layer.l1, "l2": layer.l2, "max_norm": layer.max_norm}
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
        stream = self.optimizer.iterations if self.optimizer is not None else 0
        for layer in layers:
            if isinstance(layer, _RandomLayer):
                layer._stream = stream  # the engine draws from the same (key, step) streams
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
            if isinstance(layer, (Dense, Maxout)):
                g = layer.backward(g, need_input_grad=i > 0)
            else:
                g = layer.backward(g)

    def _loss_and_grads(self, X, targets, sample_weight):
        """Loss (with penalties) at X; leaves the gradient in the flat gradient buffer."""
        logits = self._forward_logits(X)
        value, g = self.loss(logits, targets, sample_weight, True, self._threads())
        self._backward_logits(g)
        for layer in self.layers:
            layer.accumulate_shared_grads()
        for layer in self.layers:
            value += layer.penalty(add_gradient=True)
        return value

    def _prepare(self, X, y, sample_weight):
        self._require_compiled()
        X = check_array(X, self.dtype, n_features=self.input_dim, owner="Sequential",
                        n_threads=self._threads())
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
        plan = self._plan(labelled="labels" in targets) if self._use_engine else None
        if plan is None:
            return self._step(X, targets, sw)
        # The compiled engine, as fit(X, y, batch_size=len(X), shuffle=False) takes it: the
        # same step in less time than the layer path (MNIST MLP, 1 thread: batch 1 69 us
        # instead of 120, of which 9 are checking the input; batch 32 410 instead of 473). A
        # non-finite loss stops it before any weight moves.
        n, nt = X.shape[0], self._threads()
        total, weight_total = self._engine_steps(
            X, targets, sw, plan, self._train_workspace_for(plan, n, nt), nt,
            np.arange(n, dtype=np.int64), n)
        return total / weight_total if weight_total else 0.0

    def _step(self, X, targets, sw):
        value = self._loss_and_grads(X, targets, sw)
        if not np.isfinite(value):
            raise FloatingPointError(
                f"The loss became {value} and training was stopped before applying that step. "
                "Try a smaller learning rate (lr), standardising X (zero mean, unit variance), "
                "or a loss that matches the targets."
            )
        self.optimizer.step(self._params, self._grads, self._threads())
        for layer in self.layers:
            layer.apply_constraints()
        return value

    # ---- training ----
    def fit(self, X, y, epochs=1, batch_size=32, shuffle=True, verbose=0, sample_weight=None,
            validation_data=None, validation_split=0.0, class_weight=None, callbacks=None,
            lr_schedule=None, metrics_on_train=True):
        """Mini-batch gradient descent: batch_size=1 is online SGD, None is full-batch GD.

        Each epoch visits every sample once, in an order drawn from the model's seed (the same
        for any thread count); a batch that holds every sample keeps X's order (shuffling it
        would only reorder a sum). Batches of consecutive rows (that one, or shuffle=False) are
        read in place when X is C-contiguous: no copy of X. The compiled engine runs a whole
        epoch per call, so everything below acts between epochs.

        Parameters
        ----------
        sample_weight : array (n_samples,) or number; weights every loss (weighted mean).
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val).
        validation_split : float in (0, 1); the last fraction of X, y (and sample_weight),
            taken before shuffling, is held out as validation data (as Keras). Not together
            with validation_data.
        class_weight : {class label: weight} (absent classes weigh 1) or "balanced"
            (n_samples / (n_classes * count of the class), computed on the training part).
            Multiplies sample_weight; affects the training loss only, not validation.
        callbacks : list of fastmlp Callback (EarlyStopping, ModelCheckpoint, ...).
        lr_schedule : a fastmlp.schedules schedule, a function f(epoch) or f(epoch, lr), or a
            ReduceLROnPlateau; shortcut for callbacks=[LearningRateScheduler(lr_schedule)].
        verbose : 0 silent, 1 a progress bar over epochs (tqdm if installed, else one line per
            epoch), 2 one line per epoch.
        metrics_on_train : compute the compiled metrics on the training data after each
            epoch (one predict pass over X); False skips them (validation metrics remain).

        Returns a History: per epoch "loss" (mean over the epoch's batches, the weights moving),
        the compiled metrics on the training data at the end of the epoch ("accuracy", ...),
        with validation data "val_loss" and "val_<metric>", "lr" (the rate the epoch trained
        with) and "time" (seconds). A non-finite loss raises FloatingPointError (finite weights
        kept) unless a TerminateOnNaN callback is given: then training stops quietly and the
        epoch is logged with loss NaN.
        """
        epochs = check_positive_int(epochs, "epochs")
        if validation_split:
            if validation_data is not None:
                raise ValueError("Give either validation_data or validation_split, not both.")
            X, y, sample_weight, validation_data = _split_validation(
                X, y, sample_weight, validation_split, self.dtype, self.input_dim)
        X, targets, sw = self._prepare(X, y, sample_weight)
        if class_weight is not None:
            cw = _class_sample_weight(y, class_weight, self.loss.link).astype(self.dtype)
            sw = cw if sw is None else np.ascontiguousarray(sw * cw, dtype=self.dtype)
        n = X.shape[0]
        batch_size = n if batch_size is None else min(check_positive_int(batch_size, "batch_size"), n)
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight)")
            val_sw = validation_data[2] if len(validation_data) == 3 else None
            validation = self._prepare(validation_data[0], validation_data[1], val_sw)
        metrics = list(getattr(self, "metrics", None) or [])
        names = [m.name for m in metrics]
        log_keys = ["loss"] + (names if metrics_on_train else [])
        if validation is not None:
            log_keys += ["val_loss"] + [f"val_{name}" for name in names]

        user = list(callbacks or [])
        if lr_schedule is not None:
            if not isinstance(lr_schedule, _callbacks.Callback):
                lr_schedule = _callbacks.LearningRateScheduler(lr_schedule)
            user.insert(0, lr_schedule)
        history = History()
        extra = [history]
        if verbose:
            extra.append(_callbacks.ProgressBar(use_tqdm=None if verbose == 1 else False))
        params = {"epochs": epochs, "initial_epoch": self._epochs_done, "batch_size": batch_size,
                  "samples": n, "verbose": verbose, "metrics": log_keys + ["lr", "time"]}
        hooks = _callbacks.CallbackList(user + extra, self, params)
        quiet_nan = any(isinstance(cb, _callbacks.TerminateOnNaN) for cb in user)

        plan = self._plan(labelled="labels" in targets) if self._use_engine else None
        nt = self._threads()  # fixed for the whole fit: the workspace fits nt
        workspace = None if plan is None else self._train_workspace_for(plan, batch_size, nt)
        self.stop_training = False
        hooks.on_train_begin()
        logs = {}
        for _ in range(epochs):
            if self.stop_training:
                break
            epoch = self._epochs_done
            hooks.on_epoch_begin(epoch)
            if self.stop_training:
                break
            lr = float(self.optimizer.lr)
            start = time.perf_counter()
            try:
                loss = self._train_epoch(X, targets, sw, plan, workspace, nt, batch_size, shuffle,
                                         epoch)
            except FloatingPointError:
                if not quiet_nan:
                    raise
                loss = float("nan")
            self._epochs_done += 1
            logs = dict.fromkeys(log_keys, float("nan"))
            logs["loss"] = loss
            if np.isfinite(loss):
                if metrics and metrics_on_train:
                    logs.update(self._evaluate_prepared(X, targets, None, metrics, with_loss=False))
                if validation is not None:
                    values = self._evaluate_prepared(*validation, metrics)
                    logs.update({f"val_{k}": v for k, v in values.items()})
            logs["lr"] = lr
            logs["time"] = time.perf_counter() - start
            hooks.on_epoch_end(epoch, logs)
        hooks.on_train_end(logs)
        history.stopped_by = hooks.stopped_by
        return history

    def _train_epoch(self, X, targets, sw, plan, workspace, nt, batch_size, shuffle, epoch):
        """One pass over the data (engine or layer path); returns the mean loss."""
        n = X.shape[0]
        snapshot = self._params.copy()
        order = (_core.permutation(n, self.seed, epoch + 1) if shuffle and batch_size < n
                 else np.arange(n, dtype=np.int64))
        if plan is not None:
            key = (X.__array_interface__["data"][0], X.shape, X.strides, batch_size)
            total, weight_total = self._engine_steps(X, targets, sw, plan, workspace, nt, order,
                                                     batch_size, snapshot, key)
        else:
            total, weight_total = self._python_epoch(X, targets, sw, order, batch_size, snapshot)
        return total / weight_total if weight_total else 0.0

    def _train_workspace_for(self, plan, batch_size, nt):
        """The engine's training workspace, kept between calls (one fit per epoch, or a loop of
        train_on_batch, then allocates nothing, and the process's memory settles after the
        first call); grown when a batch or thread count needs more."""
        size = plan.workspace_size(self.dtype, batch_size, True, nt)
        workspace = self.__dict__.get("_train_workspace")
        if workspace is None or workspace.size < size:
            workspace = self._train_workspace = np.empty(size, np.uint8)
        return workspace

    def _engine_steps(self, X, targets, sw, plan, workspace, nt, order, batch_size,
                      snapshot=None, tuner_key=None):
        """The engine's steps over X[order] in batches; (loss sum, weight sum). Raises for a
        non-finite loss (the engine stops before that step moves any weight). tuner_key: see
        _thread_tuner."""
        opt = self.optimizer
        finite, total, weight_total, _, step, mu_product = plan.train_epoch(
            X, targets.get("t"), targets.get("labels"), sw, order, batch_size, self._params,
            self._grads, opt._kernel_hyper(), opt._state_list(), opt.iterations, workspace, nt,
            self._thread_tuner(tuner_key))
        opt._advance(step, mu_product)
        if not finite:
            self._non_finite(snapshot)
        return total, weight_total

    def _thread_tuner(self, key=None):
        """The engine's step timings, kept across calls: n_threads is a cap, and each step runs
        on 1 thread or the cap, whichever measured faster (the results are the same bits).
        Per-row times depend on the data (the kernels skip zero inputs: an MNIST step takes 0.65
        of the time of a dense one), so fit keeps a state per training set and batch size (key),
        and a model trained on a few sets in turn does not compare one set's steps with timings
        left by another (with one state for all, that put steps on 1 thread in most epochs). A
        new key, and key None (train_on_batch, whose batches are new arrays), go on from the
        state used last."""
        last = self.__dict__.get("_last_tuner")
        if key is None and last is not None:
            return last
        tuners = self.__dict__.setdefault("_tuners", {})
        tuner = tuners.pop(key, None)
        if tuner is None:
            tuner = np.zeros(_core.TUNER_SIZE) if last is None else last.copy()
        tuners[key] = tuner  # the most recently used last
        if len(tuners) > _TUNERS_KEPT:
            del tuners[next(iter(tuners))]
        # one attribute store: predict, which may run in other threads meanwhile, reads this
        # one and never iterates the dict
        self._last_tuner = tuner
        return tuner

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

    def _non_finite(self, snapshot=None):
        """Raises for a non-finite loss, first restoring the weights from snapshot if any of
        them are no longer finite."""
        if snapshot is not None and not np.all(np.isfinite(self._params)):
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
    #: predict's fast path (a _core.Predictor), made by the first general predict after compile
    _fast_predict = None

    def _predict_plan(self):
        """The inference plan, built once per compile/build (layer settings are fixed from
        then on, as in Keras: change them, then compile again)."""
        cached = self.__dict__.get("_predict_cache")
        if cached is None or cached[0] is not self.loss:
            plan = self._plan()
            cached = self._predict_cache = (self.loss, plan, [])
        return cached[1], cached[2]

    def _predict_threads(self):
        """Threads for a predict call of fewer rows than a chunk (not timed): 1 or the cap,
        whichever predict's own tuner, else fit's, measured faster; the cap before either has
        measured both."""
        nt = self._threads()
        if nt > 1:
            for tuner in (self.__dict__.get("_predict_tuner"), self.__dict__.get("_last_tuner")):
                choice = 0 if tuner is None else _core.tuner_choice(tuner, nt)
                if choice:
                    return choice
        return nt

    def _predict_tuning(self):
        """(cap, tuner state) for predict calls of a chunk of rows or more: each runs on 1
        thread or the cap as the tuner says and is timed for it (fm_tuner_next / record), so
        predict follows the machine as it is now, not as it was when fit last measured a step
        (a busy moment during fit left 2-thread predict on 1 thread: 287k instead of 511-554k
        rows/s at batch 4096 for the MNIST MLP)."""
        tuner = self.__dict__.get("_predict_tuner")
        if tuner is None:
            tuner = self._predict_tuner = np.zeros(_core.TUNER_SIZE)
        return self._threads(), tuner

    def _predict_engine(self, X, raw):
        plan, pool = self._predict_plan()
        if plan is None:
            return None
        fast = self._fast_predict
        if fast is None or fast.params is not self._params:
            fast = self._fast_predict = _core.Predictor(plan, self._params, self._PREDICT_CHUNK)
        out = fast(X, raw, self._predict_threads, self._predict_tuning)
        if out is not None:
            return out
        nt = self._predict_threads()
        chunk = max(1, min(len(X), self._PREDICT_CHUNK))
        size = plan.workspace_size(self.dtype, chunk, False, nt)
        # Workspaces are reused (no page faults per call) but never shared: each call takes
        # its own from the pool (list.pop/append are atomic), so threads may predict at once.
        try:
            workspace = pool.pop()
            if workspace.size < size:
                workspace = np.empty(size, np.uint8)
        except IndexError:
            workspace = np.empty(size, np.uint8)
        out = np.empty((len(X), plan.n_outputs), self.dtype)
        plan.predict(X, self._params, out, raw, chunk, workspace, nt)
        if len(pool) < 4:
            pool.append(workspace)
        return out

    def predict_raw(self, X):
        """The network's raw outputs (logits for the cross-entropies), before the loss's link."""
        fast = self._fast_predict
        if fast is not None and fast.params is self._params and self._use_engine:
            out = fast(X, True, self._predict_threads, self._predict_tuning)
            if out is not None:
                return out
        X = self._check_predict_input(X)
        out = self._predict_engine(X, raw=True) if self._use_engine else None
        return self._infer_logits(X) if out is None else out

    def predict(self, X):
        """Outputs after the output activation: class probabilities for the cross-entropies
        (softmax / sigmoid), signs for the perceptron and hinge losses, values for MSE.
        Stores no results (only its thread timings, holding the GIL), so several threads may
        predict with one model at once."""
        fast = self._fast_predict  # arrays that need no conversion nor check in Python
        if fast is not None and fast.params is self._params and self._use_engine:
            out = fast(X, False, self._predict_threads, self._predict_tuning)
            if out is not None:
                return out
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
        """Loss on (X, y) at the current weights, penalties included (as in fit's history).

        Returns the loss (a float) when the model was compiled without metrics, else a dict
        ``{"loss": ..., "accuracy": ..., ...}`` with every compiled metric (metrics are
        unweighted; sample_weight weights the loss)."""
        X, targets, sw = self._prepare(X, y, sample_weight)
        metrics = list(getattr(self, "metrics", None) or [])
        result = self._evaluate_prepared(X, targets, sw, metrics)
        return result if metrics else result["loss"]

    def _evaluate_prepared(self, X, targets, sw, metrics, with_loss=True):
        """{"loss": ..., metric name: ...} from one inference pass over prepared data."""
        z = self._predict_engine(X, raw=True) if self._use_engine else None
        if z is None:
            z = self._infer_logits(X)
        result = {}
        if with_loss:
            value, _ = self.loss(z, targets, sw, False, self._threads())
            for layer in self.layers:
                value += layer.penalty(add_gradient=False)
            result["loss"] = value
        if metrics:
            link = self.loss.link
            if link == "identity":
                pred = z
            else:
                pred = np.empty_like(z)
                _core.act_forward(z, pred, _core.ACTIVATIONS[link], 1.0, self._threads())
            y_true = targets["labels"] if "labels" in targets else targets["t"]
            for metric in metrics:
                result[metric.name] = float(metric(y_true, pred))
        return result

    # ---- export ----
    def save(self, path, metadata=None):
        """Write the model (architecture, weights, loss, optimizer and its state) to `path` in
        fastmlp's file format; ``fastmlp.load(path)`` reads it back. Atomic (a crash leaves the
        old file or the new one), and loading runs no code from the file (no pickle).
        `metadata`: an optional JSON-serialisable dict stored alongside. See fastmlp.io."""
        from .io import save
        return save(self, path, metadata=metadata)

    def to_onnx(self, path=None, output="predict", opset=None):
        """Export the inference graph to ONNX (needs the ``onnx`` package:
        ``pip install 'fastmlp[onnx]'``). The graph's output is what ``predict`` returns
        (output="predict", the loss's link applied) or ``predict_raw`` (output="raw"); its
        input "X" is (batch, input_dim) in the model's dtype. Writes `path` if given; returns
        the onnx.ModelProto. See fastmlp.onnx."""
        from .onnx import to_onnx
        return to_onnx(self, path, output=output, opset=opset)

    # ---- misc ----
    def __getstate__(self):
        state = dict(self.__dict__)
        # compiled plans and scratch are rebuilt on demand
        state.pop("_predict_cache", None)
        state.pop("_fast_predict", None)
        state.pop("_predict_tuner", None)  # this machine's timings, as it was
        state.pop("_tuners", None)
        state.pop("_last_tuner", None)
        state.pop("_train_workspace", None)
        if state.get("_params") is not None:
            # Each layer's parameters are views of the flat vector and would be pickled again as
            # copies, and the gradient buffer is scratch: pickle the flat vector once, layers
            # without their views; __setstate__ binds fresh views.
            layers = []
            for layer in self.layers:
                detached = copy.copy(layer)
                detached._params, detached._grads = [], []
                layers.append(detached)
            state["layers"] = layers
            state["_grads"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._params is not None:
            params = _zeros_aligned(self._params.size, self._params.dtype)
            params[...] = self._params
            self._params = params
            self._grads = _zeros_aligned(params.size, params.dtype)  # not pickled: scratch
            self._bind_views()  # unpickled layers hold no parameters; make them views again

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
