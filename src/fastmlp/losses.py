"""Losses, computed by the C kernels from the network's raw outputs z.

Per sample, as in the lecture notes; the batch loss is the (sample-weighted) mean over samples.

==========================  ===================================================  ============
name                        per-sample loss                                      output link
==========================  ===================================================  ============
mse                         1/2 sum_k (z_k - t_k)^2                              identity
binary_cross_entropy        sum_k [log(1 + e^{z_k}) - t_k z_k]  (z = logits)     sigmoid
softmax_cross_entropy       -sum_k t_k log softmax(z)_k  (labels or one-hot)     softmax
perceptron                  sum_k max(0, -t_k z_k),  t in {-1, +1}               sign
hinge                       sum_k max(0, 1 - t_k z_k),  t in {-1, +1}            sign
==========================  ===================================================  ============

The cross-entropies take logits and fuse the sigmoid/softmax into a numerically stable
log-sum-exp, with gradient p - t. A model whose last layer already applies that activation
(e.g. ``Dense(10, activation="softmax")``) is detected and the loss is taken from its
pre-activation, so both spellings train identically. ``predict`` applies the link.
"""

import numpy as np

from . import _core
from ._validation import check_finite

_KIND = _core.LOSSES


class Loss:
    name = None
    kind = None
    link = "identity"

    def prepare_targets(self, y, n_outputs, dtype):
        """Validated targets for the kernel: a dict with 't' (n, k) or 'labels' (n,) int32."""
        raise NotImplementedError

    def __call__(self, z, targets, sample_weight=None, need_grad=True, n_threads=1):
        """(mean loss, d loss / d z) for raw outputs z and prepared targets."""
        z = np.ascontiguousarray(z)
        grad = np.empty_like(z) if need_grad else None
        kind = self.kind
        t = targets.get("t")
        labels = targets.get("labels")
        if labels is not None:
            kind = _KIND["softmax_ce_labels"]
        value = _core.loss(kind, z, t, labels, sample_weight, grad, n_threads)
        return value, grad

    def __repr__(self):
        return f"{type(self).__name__}()"

    # ---- shared target checks ----
    @staticmethod
    def _as_2d(y, n_outputs, dtype, name):
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"The {name} loss needs numeric targets, got dtype {y.dtype}. "
                "Encode class labels as integers first."
            )
        if y.ndim == 1 and n_outputs == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(
                f"y has shape {y.shape} but the model has {n_outputs} output(s); "
                f"the {name} loss needs y of shape (n_samples, {n_outputs})"
                + (" or (n_samples,)" if n_outputs == 1 else "") + "."
            )
        y = np.ascontiguousarray(y, dtype=dtype)
        check_finite(y, "y")
        return y


class MSE(Loss):
    """Squared error, 1/2 sum_k (z_k - t_k)^2 per sample (the notes' L = 1/2 (t - o)^2)."""
    name = "mse"
    kind = _KIND["mse"]

    def prepare_targets(self, y, n_outputs, dtype):
        return {"t": self._as_2d(y, n_outputs, dtype, self.name)}


class BinaryCrossEntropy(Loss):
    """Logistic loss on logits: -t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)), summed over outputs."""
    name = "binary_cross_entropy"
    kind = _KIND["bce_logits"]
    link = "sigmoid"

    def prepare_targets(self, y, n_outputs, dtype):
        t = self._as_2d(y, n_outputs, dtype, self.name)
        if t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError("binary_cross_entropy targets must lie in [0, 1] (use 0/1 labels).")
        return {"t": t}


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(z): -log softmax(z)_y for integer labels y, or
    -sum_k t_k log softmax(z)_k for one-hot / probability rows t."""
    name = "softmax_cross_entropy"
    kind = _KIND["softmax_ce"]
    link = "softmax"

    def prepare_targets(self, y, n_outputs, dtype):
        y = np.asarray(y)
        if y.ndim == 1:
            if y.dtype.kind not in "biuf":
                raise ValueError(
                    f"softmax_cross_entropy needs integer class labels 0..{n_outputs - 1}, got "
                    f"dtype {y.dtype}; encode them first, e.g. np.unique(y, return_inverse=True)[1]."
                )
            if y.dtype.kind == "f":
                check_finite(y, "y")
                if not np.all(y == np.round(y)):
                    raise ValueError("softmax_cross_entropy labels must be whole numbers.")
            if y.size and (y.min() < 0 or y.max() >= n_outputs):
                raise ValueError(
                    f"Class labels must be in [0, {n_outputs}) for a model with {n_outputs} "
                    f"outputs; got labels in [{y.min()}, {y.max()}]."
                )
            return {"labels": np.ascontiguousarray(y, dtype=np.int32)}
        return {"t": self._as_2d(y, n_outputs, dtype, self.name)}


class _SignedLoss(Loss):
    link = "sign"

    def prepare_targets(self, y, n_outputs, dtype):
        t = self._as_2d(y, n_outputs, dtype, self.name)
        values = np.unique(t)
        if np.all(np.isin(values, (0, 1))):
            t = 2 * t - 1  # 0/1 labels become -1/+1
        elif not np.all(np.isin(values, (-1, 1))):
            raise ValueError(f"The {self.name} loss needs labels in {{-1, +1}} (or {{0, 1}}), "
                             f"got values {values[:10]}.")
        return {"t": np.ascontiguousarray(t, dtype=dtype)}


class PerceptronLoss(_SignedLoss):
    """Rosenblatt's criterion max(0, -t z). Its subgradient -t at t z <= 0 makes SGD with
    batch size 1 exactly the perceptron rule w <- w + eta t x on mistakes."""
    name = "perceptron"
    kind = _KIND["perceptron"]


class Hinge(_SignedLoss):
    """max(0, 1 - t z), the margin loss of linear SVMs."""
    name = "hinge"
    kind = _KIND["hinge"]


_BY_NAME = {
    "mse": MSE, "mean_squared_error": MSE, "squared_error": MSE,
    "binary_cross_entropy": BinaryCrossEntropy, "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy, "log_loss": BinaryCrossEntropy,
    "softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy,
    "sparse_categorical_crossentropy": SoftmaxCrossEntropy,
    "perceptron": PerceptronLoss, "hinge": Hinge,
}


def get_loss(spec):
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, type) and issubclass(spec, Loss):
        return spec()
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise ValueError(f"Unknown loss {spec!r}. Choose one of: {', '.join(sorted(_BY_NAME))}.")

