"""The notes' single-unit models, as thin front ends over the same Sequential core.

- Perceptron: Rosenblatt's rule w <- w + eta * t * x on each mistake (t in {-1, +1}), zero
  initial weights: the perceptron loss max(0, -t z) with online SGD.
- Adaline: the delta rule (Widrow & Hoff) w <- w + eta (t - o) x on a linear unit: squared
  error 1/2 (t - o)^2 with online SGD; predicts by thresholding o at 0.
- LogisticRegression: one sigmoid unit (a softmax layer for more than two classes) trained with
  cross-entropy or, as in the notes, squared error on the sigmoid output.
"""
import numpy as np

from ._validation import (check_array, check_consistent_length, check_positive_int,
                          resolve_dtype)
from .callbacks import LambdaCallback
from .layers import Dense
from .model import Sequential
from .optimizers import SGD


class _LinearClassifier:
    _loss = None

    def __init__(self, lr, epochs, batch_size, shuffle, seed, dtype, n_threads):
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.dtype = dtype
        self.n_threads = n_threads

    def _encode(self, X, y):
        X = check_array(X, resolve_dtype(self.dtype), owner=type(self).__name__)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per sample), got shape {y.shape}")
        check_consistent_length(X, y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "The number of classes has to be greater than one; got 1 class"
            )
        self.n_features_in_ = X.shape[1]
        return X, encoded

    def _new_model(self, n_features, units, activation, init):
        model = Sequential([Dense(units, activation=activation, kernel_initializer=init)],
                           input_dim=n_features, dtype=self.dtype, seed=self.seed,
                           n_threads=self.n_threads)
        return model

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    @property
    def coef_(self):
        """Weights, shape (n_features,) for one unit or (n_features, n_units)."""
        self._check_fitted()
        w = self.model_.layers[0].weight
        return w[:, 0].copy() if w.shape[1] == 1 else w.copy()

    @property
    def intercept_(self):
        self._check_fitted()
        b = self.model_.layers[0].bias
        return float(b[0]) if b.shape[0] == 1 else b.copy()

    def decision_function(self, X):
        """Net input z = X w + b (one column per unit; flattened for a single unit)."""
        self._check_fitted()
        z = self.model_.predict_raw(X)
        return z[:, 0] if z.shape[1] == 1 else z

    def predict(self, X):
        z = self.decision_function(X)
        if z.ndim == 1:
            return self.classes_[(z > 0).astype(int)]
        return self.classes_[np.argmax(z, axis=1)]

    def score(self, X, y):
        """Mean accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


def _signed(encoded):
    return np.where(encoded == 1, 1.0, -1.0)


class Perceptron(_LinearClassifier):
    """Rosenblatt's perceptron for two classes.

    Weights start at zero; each epoch visits the samples in random order and applies
    w <- w + lr * t * x, b <- b + lr * t whenever t * (w.x + b) <= 0. Training stops after the
    first epoch that leaves every sample correctly classified (``converged_``), which happens in
    finitely many steps exactly when the data are linearly separable (Novikoff 1962), or after
    ``max_epochs``. ``mistakes_`` holds the misclassified training samples after each epoch.
    """

    def __init__(self, lr=1.0, max_epochs=100, shuffle=True, seed=None, dtype="float64",
                 n_threads=None):
        super().__init__(lr, max_epochs, 1, shuffle, seed, dtype, n_threads)
        self.max_epochs = max_epochs

    def fit(self, X, y):
        X, encoded = self._encode(X, y)
        if len(self.classes_) != 2:
            raise ValueError(f"Perceptron separates two classes; got {len(self.classes_)}. "
                             "Use LogisticRegression or an MLP for more.")
        t = _signed(encoded)
        model = self._new_model(X.shape[1], 1, None, "zeros")
        model.compile(loss="perceptron", optimizer=SGD(lr=self.lr))
        self.model_ = model
        self.mistakes_ = []
        self.converged_ = False

        def count_mistakes(epoch, logs):
            margins = t * model.predict_raw(X)[:, 0]
            self.mistakes_.append(int(np.sum(margins <= 0)))
            if self.mistakes_[-1] == 0:
                self.converged_ = model.stop_training = True

        # one fit call (X checked once, not every epoch); the epochs' orders are the same
        model.fit(X, t, epochs=check_positive_int(self.max_epochs, "max_epochs"), batch_size=1,
                  shuffle=self.shuffle, callbacks=[LambdaCallback(on_epoch_end=count_mistakes)],
                  metrics_on_train=False)
        self.n_epochs_ = len(self.mistakes_)
        return self


class Adaline(_LinearClassifier):
    """ADAptive LINear Element (Widrow & Hoff 1960): the delta rule on a linear unit.

    Minimises 1/2 (t - o)^2 with o = w.x + b and t in {-1, +1}; each sample (batch_size=1)
    moves w by lr * (t - o) * x. Predicts the class from the sign of o. ``losses_`` holds the
    mean squared-error loss of each epoch."""

    def __init__(self, lr=0.01, epochs=50, batch_size=1, shuffle=True, seed=None,
                 dtype="float64", n_threads=None):
        super().__init__(lr, epochs, batch_size, shuffle, seed, dtype, n_threads)

    def fit(self, X, y):
        X, encoded = self._encode(X, y)
        if len(self.classes_) != 2:
            raise ValueError(f"Adaline separates two classes; got {len(self.classes_)}.")
        model = self._new_model(X.shape[1], 1, None, "zeros")
        model.compile(loss="mse", optimizer=SGD(lr=self.lr))
        self.model_ = model
        history = model.fit(X, _signed(encoded), epochs=self.epochs, batch_size=self.batch_size,
                            shuffle=self.shuffle)
        self.losses_ = history["loss"]
        return self


class LogisticRegression(_LinearClassifier):
    """Logistic regression as one sigmoid unit (softmax units for more than two classes).

    loss="cross_entropy" minimises the log-loss (gradient (o - t) x); loss="squared_error" is
    the notes' 1/2 (t - o)^2 on the sigmoid output (gradient (o - t) o (1 - o) x).
    batch_size=None (default) is full-batch gradient descent; l2 adds l2/2 * |w|^2."""

    def __init__(self, lr=0.5, epochs=200, batch_size=None, loss="cross_entropy", l2=0.0,
                 shuffle=True, seed=None, dtype="float64", n_threads=None):
        super().__init__(lr, epochs, batch_size, shuffle, seed, dtype, n_threads)
        if loss not in ("cross_entropy", "squared_error"):
            raise ValueError(f"loss must be 'cross_entropy' or 'squared_error', got {loss!r}")
        self.loss = loss
        self.l2 = l2

    def fit(self, X, y):
        X, encoded = self._encode(X, y)
        k = len(self.classes_)
        binary = k == 2
        units, activation = (1, "sigmoid") if binary else (k, "softmax")
        model = Sequential([Dense(units, activation=activation, kernel_initializer="zeros",
                                  l2=self.l2)],
                           input_dim=X.shape[1], dtype=self.dtype, seed=self.seed,
                           n_threads=self.n_threads)
        if self.loss == "cross_entropy":
            loss = "binary_cross_entropy" if binary else "softmax_cross_entropy"
            targets = encoded if not binary else encoded.astype(float)
        else:
            loss = "mse"
            targets = encoded.astype(float) if binary else np.eye(k)[encoded]
        model.compile(loss=loss, optimizer=SGD(lr=self.lr))
        self.model_ = model
        history = model.fit(X, targets, epochs=self.epochs, batch_size=self.batch_size,
                            shuffle=self.shuffle)
        self.losses_ = history["loss"]
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        self._check_fitted()
        p = self.model_.predict(X)
        return np.column_stack([1 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p

    def decision_function(self, X):
        self._check_fitted()
        z = self.model_.predict_raw(X) if self.loss == "cross_entropy" else None
        if z is None:  # squared error: the unit's output is the probability; use its log-odds
            p = np.clip(self.model_.predict(X), 1e-15, 1 - 1e-15)
            z = np.log(p) - (np.log1p(-p) if p.shape[1] == 1 else 0)
        return z[:, 0] if z.shape[1] == 1 else z
