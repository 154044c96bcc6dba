"""scikit-learn estimators over the fastmlp core (needs ``pip install 'fastmlp[sklearn]'``).

`MLPClassifier` and `MLPRegressor` take scikit-learn's ``MLPClassifier`` / ``MLPRegressor``
parameters and set its fitted attributes, so they drop into Pipeline, GridSearchCV, clone and
pickle; `Perceptron` and `Adaline` wrap the notes' single-unit models of fastmlp.linear. Every
one of them trains a fastmlp.Sequential (``model_``): this module holds no maths of its own.

How scikit-learn's MLP maps onto fastmlp
----------------------------------------
- Architecture: ``Dense(h, activation)`` per hidden layer (``Dropout(rate)`` after it when
  ``dropout`` is set), then the output layer: softmax units with softmax cross-entropy
  (multiclass), one sigmoid unit with binary cross-entropy (binary), sigmoid units with binary
  cross-entropy (multilabel), identity units with squared error (regression). Weights and biases
  start as in scikit-learn: uniform in +-sqrt(6 / (fan_in + fan_out)) (factor 2 instead of 6 for
  'logistic').
- ``alpha``: scikit-learn adds ``alpha / (2 n) * ||W||^2`` to the mean loss of each mini-batch of
  n samples (all weight matrices, not the biases); with sample weights n is the batch's weight
  sum. fastmlp's ``Dense(l2=...)`` adds ``l2 / 2 * ||W||^2``, so each Dense layer gets
  ``l2 = alpha / (batch_size * mean sample weight)``: the same objective for every full
  mini-batch (scikit-learn's last, shorter batch has a slightly larger penalty), and exactly the
  same with full batches. With the same ``random_state`` the initial weights are the same too,
  so full-batch SGD reproduces scikit-learn's loss curve to rounding (see the tests).
- Multi-output regression: scikit-learn's gradient is that of 1/2 sum over outputs of the
  squared error (fastmlp's "mse" loss), but its ``loss_curve_`` reports the mean over outputs.
  fastmlp trains the same way and reports the loss it minimises, so with k outputs the
  squared-error part of ``loss_curve_`` (and the ``tol`` test on it) is k times
  scikit-learn's.
- ``solver``: "sgd" (``momentum``, ``nesterovs_momentum``; ``learning_rate`` schedules
  "constant", "invscaling" with ``power_t``, "adaptive"), "adam" (``beta_1``, ``beta_2``,
  ``epsilon``), and fastmlp's other optimizers "adamw", "nadam", "adamax" (same three),
  "rmsprop", "adagrad", "adadelta" (``learning_rate_init`` multiplies the AdaDelta step: use
  1.0) and "rprop" (full batch when ``batch_size="auto"``); or any ``fastmlp.Optimizer``
  instance (copied at fit). "lbfgs" is not available.
- ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``, ``max_iter``,
  ``shuffle``, ``warm_start``, ``verbose`` behave as in scikit-learn.

What scikit-learn's MLP lacks
-----------------------------
- ``dropout``: a rate, or one rate per hidden layer (inverted dropout, training only);
- per-layer ``activation``: a list with one name per hidden layer (any fastmlp activation:
  'relu', 'tanh', 'logistic', 'identity', 'elu', 'gelu', 'silu', 'leaky_relu', ...);
- ``class_weight`` (classifier): None, "balanced" or {label: weight}, multiplied into
  ``sample_weight``;
- ``validation_loss_curve_``: the loss on the validation split after each epoch (with
  ``early_stopping=True``), next to ``validation_scores_``;
- ``partial_fit`` with ``early_stopping=True``: the first call holds out ``validation_fraction``
  of its data as a fixed validation set; every call trains one epoch on the rest (later calls on
  all their data), scores the validation set and keeps the best weights. After
  ``n_iter_no_change`` calls without improvement the best weights are restored,
  ``early_stopped_`` becomes True and later calls leave the model unchanged (with a warning);
- ``n_threads`` and input dtype preservation: float32 data trains a float32 network and gets
  float32 probabilities and predictions; float64 stays float64.
"""
import copy
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import linear as _linear
from ._validation import check_sample_weight
from .activations import Activation
from .layers import Dense
from .model import Sequential
from .optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RMSprop, Rprop

try:
    from .layers import Dropout
except ImportError:  # pragma: no cover - an older core
    Dropout = None

__all__ = ["Adaline", "MLPClassifier", "MLPRegressor", "Perceptron"]

_SOLVERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "nadam": NAdam, "adamax": Adamax,
            "rmsprop": RMSprop, "adagrad": Adagrad, "adadelta": Adadelta, "rprop": Rprop}


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_range(name, value, low, high, low_open=False, high_open=False, integer=False):
    ok = _is_int(value) if integer else (_is_real(value) and bool(np.isfinite(value)))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        kind = "an int" if integer else "a float"
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        hi = "inf)" if high is None else f"{high}{')' if high_open else ']'}"
        raise ValueError(f"The '{name}' parameter must be {kind} in the range {lo or '(-inf'}, "
                         f"{hi}. Got {value!r} instead.")


def _seed(random_state):
    return int(random_state.randint(np.iinfo(np.int32).max))


class _BaseMLP(BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor: parameter checks, the core model, the epochs."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=None,
                 n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.n_threads = n_threads

    # ---------------------------------------------------------------- parameters
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(f"The 'hidden_layer_sizes' parameter must be an int or a sequence "
                             f"of ints. Got {self.hidden_layer_sizes!r} instead.") from None
        if not all(_is_int(s) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _per_layer(self, name, value, n_hidden):
        if isinstance(value, (list, tuple, np.ndarray)):
            value = list(value)
            if len(value) != n_hidden:
                raise ValueError(f"{name} has {len(value)} entries but there are {n_hidden} hidden "
                                 "layers; give one value, or one per hidden layer.")
            return value
        return [value] * n_hidden

    def _activations(self, n_hidden):
        names = self._per_layer("activation", self.activation, n_hidden)
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"activation must be a name or a list of names, got {name!r}")
            Activation(name)  # raises a clear error for unknown names
        return names

    def _dropouts(self, n_hidden):
        if self.dropout is None:
            return [0.0] * n_hidden
        rates = self._per_layer("dropout", self.dropout, n_hidden)
        for rate in rates:
            _check_range("dropout", rate, 0, 1, high_open=True)
        if any(rates) and Dropout is None:
            raise NotImplementedError("dropout needs fastmlp.Dropout, which this build lacks.")
        return [float(r) for r in rates]

    def _validate_hyperparameters(self):
        n_hidden = len(self._hidden_sizes())
        self._activations(n_hidden)
        self._dropouts(n_hidden)
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not available in fastmlp; use one of "
                             f"{sorted(_SOLVERS)} (default 'adam') or a fastmlp Optimizer.")
        if not (isinstance(self.solver, Optimizer) or self.solver in _SOLVERS):
            raise ValueError(f"The 'solver' parameter must be one of {sorted(_SOLVERS)} or a "
                             f"fastmlp Optimizer. Got {self.solver!r} instead.")
        _check_range("alpha", self.alpha, 0, None)
        if not (self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1)):
            raise ValueError(f"The 'batch_size' parameter must be an int in the range [1, inf) "
                             f"or 'auto'. Got {self.batch_size!r} instead.")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError("The 'learning_rate' parameter must be one of 'constant', "
                             f"'invscaling', 'adaptive'. Got {self.learning_rate!r} instead.")
        _check_range("learning_rate_init", self.learning_rate_init, 0, None, low_open=True)
        _check_range("power_t", self.power_t, 0, None)
        _check_range("max_iter", self.max_iter, 1, None, integer=True)
        _check_range("tol", self.tol, 0, None)
        _check_range("momentum", self.momentum, 0, 1, high_open=True)
        _check_range("validation_fraction", self.validation_fraction, 0, 1, low_open=True,
                     high_open=True)
        _check_range("beta_1", self.beta_1, 0, 1, high_open=True)
        _check_range("beta_2", self.beta_2, 0, 1, high_open=True)
        _check_range("epsilon", self.epsilon, 0, None, low_open=True)
        _check_range("n_iter_no_change", self.n_iter_no_change, 1, None, integer=True)
        if self.n_threads is not None:
            _check_range("n_threads", self.n_threads, 1, None, integer=True)

    def _make_optimizer(self):
        if isinstance(self.solver, Optimizer):
            return copy.deepcopy(self.solver)
        lr, s = self.learning_rate_init, self.solver
        if s == "sgd":
            return SGD(lr=lr, momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        if s in ("adam", "adamw", "nadam", "adamax"):
            return _SOLVERS[s](lr=lr, betas=(self.beta_1, self.beta_2), eps=self.epsilon)
        if s == "rmsprop":
            return RMSprop(lr=lr, eps=self.epsilon)
        return _SOLVERS[s](lr=lr)

    def _batch(self, n):
        if self.batch_size == "auto":
            rprop = self.solver == "rprop" or isinstance(self.solver, Rprop)
            return n if rprop else min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped")
        return int(np.clip(self.batch_size, 1, n))

    # ---------------------------------------------------------------- the core model
    def _build(self, n_features, n_outputs, dtype, random_state):
        hidden = self._hidden_sizes()
        acts = self._activations(len(hidden))
        drops = self._dropouts(len(hidden))
        layers = []
        for units, act, rate in zip(hidden, acts, drops):
            layers.append(Dense(units, activation=act))
            if rate:
                layers.append(Dropout(rate))
        layers.append(Dense(n_outputs))
        # scikit-learn's initialisation, drawn in its order (Glorot uniform, W then b per layer;
        # factor 2 instead of 6 after a logistic layer), then the core's seed
        widths = [n_features] + hidden + [n_outputs]
        init = []
        for i in range(len(widths) - 1):
            act = acts[min(i, len(acts) - 1)] if acts else "relu"
            factor = 2.0 if Activation(act).name == "sigmoid" else 6.0
            bound = np.sqrt(factor / (widths[i] + widths[i + 1]))
            init.append(random_state.uniform(-bound, bound, (widths[i], widths[i + 1])))
            init.append(random_state.uniform(-bound, bound, widths[i + 1]))
        model = Sequential(layers, input_dim=n_features, dtype=dtype, seed=_seed(random_state),
                           n_threads=self.n_threads)
        model.set_weights(init)
        model.compile(loss=self._loss_name(n_outputs), optimizer=self._make_optimizer())
        return model

    def _set_l2(self, batch_weight):
        for layer in self.model_.layers:
            if isinstance(layer, Dense):
                layer.l2 = float(self.alpha) / batch_weight

    def _dense_layers(self):
        check_is_fitted(self)
        return [layer for layer in self.model_.layers if isinstance(layer, Dense)]

    def _assign(self, attribute, label, values):
        dense = self._dense_layers()
        if len(values) != len(dense):
            raise ValueError(f"{label} needs {len(dense)} arrays, got {len(values)}")
        for layer, value in zip(dense, values):
            setattr(layer, attribute, value)

    @property
    def coefs_(self):
        """Weight matrices, (n_in, n_out) per layer: views of the model's parameters."""
        return [layer.weight for layer in self._dense_layers()]

    @coefs_.setter
    def coefs_(self, values):
        self._assign("weight", "coefs_", values)

    @property
    def intercepts_(self):
        """Bias vectors per layer: views of the model's parameters."""
        return [layer.bias for layer in self._dense_layers()]

    @intercepts_.setter
    def intercepts_(self, values):
        self._assign("bias", "intercepts_", values)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    # ---------------------------------------------------------------- training
    def _validate_input(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc", "coo"], multi_output=True,
                             y_numeric=not isinstance(self, ClassifierMixin),
                             dtype=(np.float64, np.float32), reset=reset)
        if hasattr(X, "toarray"):
            X = X.toarray()  # the kernels are dense
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        self._validate_hyperparameters()
        first = not hasattr(self, "model_") or not (incremental or self.warm_start)
        if incremental and self.early_stopping and getattr(self, "early_stopped_", False) \
                and not first:
            X, y = self._validate_input(X, y, reset=False)  # still check the input
            warnings.warn("Early stopping already ended training (the validation score stopped "
                          "improving); partial_fit leaves the model unchanged. Call fit to "
                          "start again.", UserWarning)
            return self
        X, y = self._validate_input(X, y, reset=first)
        if not first:
            X = X.astype(self.model_.dtype, copy=False)
        targets, y_labels = self._encode_targets(y, first, incremental, classes)
        sw = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        if sw is not None and not np.any(sw > 0):
            raise ValueError("Sample weights must contain at least one non-zero number.")
        sw = self._class_weights(y_labels, sw, X.dtype, y)

        # a RandomState drawn from random_state: the initial weights, the core's seed (shuffling,
        # dropout) and the validation split; not kept, so the estimator stays plain data
        rs = check_random_state(self.random_state)
        if first:
            self.model_ = self._build(X.shape[1], self._n_outputs(targets), X.dtype, rs)
            self.n_outputs_ = self._n_outputs(targets)
            self.n_layers_ = len(self._hidden_sizes()) + 2
            self.out_activation_ = self._out_activation()
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.early_stopped_ = False
            self._val = None
            self._best_params = None
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        elif not incremental:  # warm start: a new run of max_iter epochs from the current weights
            self._no_improvement_count = 0
            self.early_stopped_ = False
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
            self._best_params = self.model_.flat_params.copy()
        elif not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf

        # the validation split (partial_fit keeps the one of its first call)
        X_train, T_train, sw_train = X, targets, sw
        if self.early_stopping:
            if not (incremental and self._val is not None):
                X_train, T_train, sw_train, self._val = self._split(X, targets, y_labels, sw, rs)
        n_train = X_train.shape[0]
        batch = self._batch(n_train)
        # l2 = alpha / (the batch's weight): scikit-learn's penalty for each full mini-batch
        mean_weight = 1.0 if sw_train is None else float(np.mean(sw_train, dtype=np.float64))
        self._set_l2(batch * mean_weight)
        model, opt = self.model_, self.model_.optimizer

        for _ in range(1 if incremental else self.max_iter):
            history = model.fit(X_train, T_train, epochs=1, batch_size=batch, shuffle=self.shuffle,
                                sample_weight=sw_train)
            self.loss_ = float(history["loss"][0])
            self.n_iter_ += 1
            self.t_ += n_train
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count()
            if self._uses_sgd_schedule() and self.learning_rate == "invscaling":
                opt.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._uses_sgd_schedule() and self.learning_rate == "adaptive" and opt.lr > 1e-6:
                    opt.lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(msg + f" Setting learning rate to {opt.lr:f}")
                else:
                    if self.verbose:
                        print(msg + " Stopping.")
                    self.early_stopped_ = True
                    break
            if not incremental and self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
        if self.early_stopping and (not incremental or self.early_stopped_):
            model.flat_params[...] = self._best_params  # restore the best weights
        if not incremental:
            self._val = None  # fit splits again each time; don't carry the data around
        return self

    def _uses_sgd_schedule(self):
        return self.solver == "sgd"

    def _split(self, X, targets, y_labels, sw, random_state):
        stratify = y_labels if self._stratify() else None
        idx = np.arange(X.shape[0])
        try:
            train, val = train_test_split(idx, random_state=random_state,
                                          test_size=self.validation_fraction, stratify=stratify)
        except ValueError as exc:
            raise ValueError(f"Cannot hold out validation_fraction={self.validation_fraction} "
                             f"of {X.shape[0]} samples for early stopping: {exc}") from None
        if len(val) < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        val_data = (X[val], targets[val], None if y_labels is None else y_labels[val],
                    None if sw is None else sw[val])
        return X[train], targets[train], None if sw is None else sw[train], val_data

    def _update_no_improvement_count(self):
        if self.early_stopping:
            Xv, Tv, yv, swv = self._val
            self.validation_loss_curve_.append(
                float(self.model_.evaluate(Xv, Tv, sample_weight=swv)))
            score = self._val_score(Xv, Tv, yv, swv)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.flat_params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc", "coo"],
                          dtype=(np.float64, np.float32), reset=False)
        if hasattr(X, "toarray"):
            X = X.toarray()
        return X.astype(self.model_.dtype, copy=False)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and targets y (epochs of mini-batch training, see the
        module docstring). `sample_weight` weighs each sample's loss."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier with scikit-learn's MLPClassifier interface, trained
    by fastmlp's compiled core (see the module docstring for the mapping and the extras:
    ``dropout``, per-layer ``activation``, ``class_weight``, ``n_threads``).

    Fitted attributes: ``classes_``, ``coefs_``, ``intercepts_``, ``loss_``, ``loss_curve_``,
    ``best_loss_``, ``validation_scores_``, ``validation_loss_curve_``,
    ``best_validation_score_``, ``n_iter_``, ``t_``, ``n_layers_``, ``n_outputs_``,
    ``out_activation_``, ``n_features_in_`` (``feature_names_in_``), ``early_stopped_`` and the
    trained ``model_`` (a fastmlp.Sequential)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=None,
                 class_weight=None, n_threads=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            dropout=dropout, n_threads=n_threads)
        self.class_weight = class_weight

    def _encode_targets(self, y, first, incremental, classes):
        """(targets for the core, labels for stratification and class weights)."""
        check_classification_targets(y)
        if incremental and first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
            self._multilabel = y.ndim == 2
        elif first:
            self._multilabel = y.ndim == 2
            self.classes_ = np.arange(y.shape[1]) if self._multilabel else unique_labels(y)
        else:
            if classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
                raise ValueError(f"`classes={list(classes)!r}` is not the same as on last call "
                                 f"to partial_fit, was: {list(self.classes_)!r}")
            if self.warm_start and not incremental and not self._multilabel:
                labels = unique_labels(y)
                if set(labels) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {labels}")
        if self._multilabel:
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(f"y must be a label indicator matrix with {len(self.classes_)} "
                                 f"columns, got shape {y.shape}")
            return np.ascontiguousarray(y, dtype=np.float64), None
        if y.ndim != 1:
            raise ValueError(f"y has shape {y.shape}; expected 1-D class labels or a multilabel "
                             "indicator matrix as in the first fit.")
        if len(self.classes_) < 2 and first:
            raise ValueError("MLPClassifier needs samples of at least 2 classes in the data, but "
                             f"the data contains only one class: {self.classes_[0]!r}")
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y has labels {list(unseen)!r} that are not in classes_ "
                             f"{list(self.classes_)!r}.")
        encoded = np.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return encoded.astype(np.float64).reshape(-1, 1), encoded
        return encoded.astype(np.int64), encoded

    def _n_outputs(self, targets):
        if self._multilabel:
            return targets.shape[1]
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _loss_name(self, n_outputs):
        if self._multilabel or len(self.classes_) == 2:
            return "binary_cross_entropy"
        return "softmax_cross_entropy"

    def _out_activation(self):
        return "logistic" if self._multilabel or len(self.classes_) == 2 else "softmax"

    def _stratify(self):
        return not self._multilabel

    def _class_weights(self, y_labels, sw, dtype, y=None):
        if self.class_weight is None:
            return sw
        if self._multilabel:  # each label a 0/1 output; the weights multiply (sklearn's rule)
            cw = compute_sample_weight(self.class_weight, y).astype(dtype)
            return cw if sw is None else sw * cw
        if isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight has labels {sorted(unknown, key=str)} that are not "
                                 f"in the classes {list(self.classes_)}.")
            per_class = np.array([float(self.class_weight.get(c, 1.0))
                                  for c in self.classes_.tolist()])
        elif isinstance(self.class_weight, str) and self.class_weight == "balanced":
            # sklearn's n_samples / (n_classes * count), with counts and n_samples weighted by
            # sample_weight: a weight of 2 then means the same as the sample given twice
            w = np.ones(len(y_labels)) if sw is None else sw.astype(np.float64)
            counts = np.bincount(y_labels, weights=w, minlength=len(self.classes_))
            present = counts > 0
            per_class = np.ones(len(self.classes_))
            per_class[present] = w.sum() / (present.sum() * counts[present])
        else:
            raise ValueError("class_weight must be None, 'balanced' or a dict {label: weight}, "
                             f"got {self.class_weight!r}")
        cw = per_class[y_labels].astype(dtype)
        return cw if sw is None else sw * cw

    def _val_score(self, Xv, Tv, yv, swv):
        if self._multilabel:
            return accuracy_score(Tv > 0.5, self._predict_checked(Xv), sample_weight=swv)
        return accuracy_score(self.classes_[yv], self._predict_checked(Xv), sample_weight=swv)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights. `classes` (all labels
        that will ever appear) is required on the first call. Works with early_stopping (see the
        module docstring)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, classes=classes)

    def _proba(self, X):
        p = self.model_.predict(X)
        if not self._multilabel and p.shape[1] == 1:
            p = np.hstack([1 - p, p])
        return p

    def _predict_checked(self, X):
        p = self._proba(X)
        if self._multilabel:
            return (p > 0.5).astype(int)
        return self.classes_[np.argmax(p, axis=1)]

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes) in the order of ``classes_`` (for
        multilabel targets, one independent probability per label), in the dtype of training."""
        return self._proba(self._check_X(X))

    def predict_log_proba(self, X):
        """Logarithm of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class labels (an indicator matrix for multilabel targets)."""
        return self._predict_checked(self._check_X(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor with scikit-learn's MLPRegressor interface (squared
    error, identity outputs), trained by fastmlp's compiled core. Fitted attributes as
    MLPClassifier's, without ``classes_``; ``validation_scores_`` are R^2 scores."""

    def _encode_targets(self, y, first, incremental, classes):
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} output(s) but the model was fitted with "
                             f"{self.n_outputs_}.")
        return np.ascontiguousarray(y2, dtype=np.float64), None

    def _n_outputs(self, targets):
        return targets.shape[1]

    def _loss_name(self, n_outputs):
        return "mse"

    def _out_activation(self):
        return "identity"

    def _stratify(self):
        return False

    def _class_weights(self, y_labels, sw, dtype, y=None):
        return sw

    def _val_score(self, Xv, Tv, yv, swv):
        pred = self.model_.predict(Xv)
        if not np.all(np.isfinite(pred)):
            return np.nan
        return r2_score(Tv, pred, sample_weight=swv)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights. Works with
        early_stopping (see the module docstring)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, (n_samples,) for one output, else (n_samples, n_outputs)."""
        X = self._check_X(X)
        pred = self.model_.predict(X)
        return pred.ravel() if pred.shape[1] == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


# ==================================================================== single-unit models
class _OneVsRestLinear(ClassifierMixin, BaseEstimator):
    """A fastmlp.linear model for two classes; one per class (one-vs-rest) for more."""

    _core = None

    def _core_model(self, X, seed):
        raise NotImplementedError

    def fit(self, X, y):
        """Fit on X and class labels y (two classes: one unit; k > 2: k one-vs-rest units)."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the "
                             f"data, but the data contains only one class: {self.classes_[0]!r}")
        encoded = np.searchsorted(self.classes_, y)
        rs = check_random_state(self.random_state)
        columns = [encoded] if len(self.classes_) == 2 else [(encoded == k).astype(int)
                                                            for k in range(len(self.classes_))]
        self.estimators_ = []
        for column in columns:
            est = self._core_model(X, _seed(rs))
            est.fit(X, column)
            self.estimators_.append(est)
        self._after_fit()
        return self

    def _after_fit(self):
        pass

    @property
    def coef_(self):
        """(1, n_features) for two classes, (n_classes, n_features) for more (sklearn's layout)."""
        check_is_fitted(self)
        return np.vstack([est.coef_.reshape(1, -1) for est in self.estimators_])

    @property
    def intercept_(self):
        check_is_fitted(self)
        return np.array([est.intercept_ for est in self.estimators_],
                        dtype=self.estimators_[0].model_.dtype)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimators_")

    def decision_function(self, X):
        """Net input w.x + b: (n_samples,) for two classes, (n_samples, n_classes) for more."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        scores = np.column_stack([est.decision_function(X) for est in self.estimators_])
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Class labels: the sign of the net input (two classes) or its argmax (more)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


class Perceptron(_OneVsRestLinear):
    """Rosenblatt's perceptron as a scikit-learn classifier (fastmlp.linear.Perceptron per
    unit): zero initial weights, w <- w + eta0 * t * x on each mistake, epochs until no mistake
    is left (``converged_``) or ``max_iter``. Names follow sklearn.linear_model.Perceptron.

    Fitted: ``classes_``, ``coef_``, ``intercept_``, ``n_iter_`` (epochs), ``converged_``,
    ``mistakes_`` (misclassified training samples after each epoch, per unit),
    ``estimators_`` (the fastmlp.linear models)."""

    def __init__(self, eta0=1.0, max_iter=100, shuffle=True, random_state=None, n_threads=None):
        self.eta0 = eta0
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads

    def _core_model(self, X, seed):
        _check_range("eta0", self.eta0, 0, None, low_open=True)
        _check_range("max_iter", self.max_iter, 1, None, integer=True)
        return _linear.Perceptron(lr=self.eta0, max_epochs=self.max_iter, shuffle=self.shuffle,
                                  seed=seed, dtype=X.dtype.name, n_threads=self.n_threads)

    def _after_fit(self):
        self.n_iter_ = max(est.n_epochs_ for est in self.estimators_)
        self.converged_ = all(est.converged_ for est in self.estimators_)
        self.mistakes_ = [list(est.mistakes_) for est in self.estimators_]
        if not self.converged_:
            warnings.warn(f"Perceptron: no epoch without mistakes within max_iter={self.max_iter} "
                          "epochs (the classes may not be linearly separable).", ConvergenceWarning)


class Adaline(_OneVsRestLinear):
    """Widrow and Hoff's ADALINE as a scikit-learn classifier (fastmlp.linear.Adaline per unit):
    the delta rule w <- w + eta0 (t - w.x - b) x on +-1 targets for ``max_iter`` epochs,
    predicting from the sign of the net input.

    The delta rule converges only for eta0 < 2 / (|x|^2 + 1) (the +1 is the bias input);
    ``eta0="auto"`` (default) takes 0.1 / max_i (|x_i|^2 + 1) over the training samples, stable
    on any data (it is 0.01 or so for standardised features with a few dozen columns). A number
    is used as is. Standardising the features (a Pipeline with StandardScaler) speeds it up.

    Fitted: ``classes_``, ``coef_``, ``intercept_``, ``eta0_`` (the rate used), ``n_iter_``,
    ``loss_curve_`` (mean squared-error loss per epoch, averaged over the one-vs-rest units),
    ``estimators_``."""

    def __init__(self, eta0="auto", max_iter=50, batch_size=1, shuffle=True, random_state=None,
                 n_threads=None):
        self.eta0 = eta0
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads

    def _core_model(self, X, seed):
        if isinstance(self.eta0, str) and self.eta0 == "auto":
            sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
            self.eta0_ = 0.1 / (float(np.max(sq)) + 1.0)
        else:
            _check_range("eta0", self.eta0, 0, None, low_open=True)
            self.eta0_ = float(self.eta0)
        _check_range("max_iter", self.max_iter, 1, None, integer=True)
        if self.batch_size is not None:
            _check_range("batch_size", self.batch_size, 1, None, integer=True)
        return _linear.Adaline(lr=self.eta0_, epochs=self.max_iter, batch_size=self.batch_size,
                               shuffle=self.shuffle, seed=seed, dtype=X.dtype.name,
                               n_threads=self.n_threads)

    def _after_fit(self):
        self.n_iter_ = self.max_iter
        self.loss_curve_ = list(np.mean([est.losses_ for est in self.estimators_], axis=0))
