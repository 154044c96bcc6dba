"""Metrics: functions of (y_true, y_pred) and the objects ``model.compile(metrics=[...])`` takes.

=======================  ================================  =========================================
name in compile / logs   class                              value
=======================  ================================  =========================================
"accuracy" ("acc")       Accuracy(threshold=None)           fraction of correct predictions
"top_k_accuracy"         TopKAccuracy(k=5)                  true class among the k highest scores
  / "top_<k>_accuracy"     (logged as "top_<k>_accuracy")
"mse"                    MeanSquaredError()                 mean of (y - p)^2 over samples and outputs
"mae"                    MeanAbsoluteError()                mean of |y - p|
"r2"                     R2Score()                          1 - SS_res / SS_tot, averaged over outputs
=======================  ================================  =========================================

A metric compares the targets with ``model.predict`` (after the output link: probabilities for
the cross-entropies, signs for perceptron/hinge, values for MSE). Note that the metric "mse" is
the plain mean squared error, while the loss "mse" is 1/2 sum over outputs (the notes' loss).

Accuracy follows the loss: with several outputs and a softmax (or identity) link it compares
argmax(prediction) with the label (or the argmax of a one-hot row); with one output, or a
sigmoid/sign link (binary and multi-label), it compares ``prediction > threshold`` with
``target > threshold`` element-wise, threshold 0.5 (0 for the sign link of perceptron/hinge,
whose targets are -1/+1). Give ``Accuracy(threshold=...)`` for other encodings (e.g. an MSE
model trained on -1/+1 targets).

Validation metrics are prefixed "val_" in the logs, as in Keras. Like Keras' ``metrics``, they
are unweighted: sample_weight and class_weight change the loss, not the metrics (the functions
below take a sample_weight for direct use).

Any callable ``f(y_true, y_pred) -> float`` is a metric too; its log name is ``f.__name__``.
"""
import numbers
import re

import numpy as np

__all__ = [
    "Metric", "Accuracy", "TopKAccuracy", "MeanSquaredError", "MeanAbsoluteError", "R2Score",
    "accuracy", "binary_accuracy", "top_k_accuracy", "mean_squared_error", "mean_absolute_error",
    "r2_score", "get_metric", "get_metrics",
]


# ---- functions ----
def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and >= 0")
    return w


def _mean(values, w):
    """(Weighted) mean of per-sample values; NaN for no samples (or zero total weight)."""
    values = np.asarray(values, dtype=np.float64)
    if w is None:
        return float(values.mean()) if values.size else float("nan")
    total = w.sum()
    return float(np.dot(w, values) / total) if total > 0 else float("nan")


def _labels(y, name):
    """Class labels from labels (n,) or (n, 1), or from one-hot / score rows (n, k) by argmax."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    if y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D labels or 2-D rows, got shape {y.shape}")
    return y


def _check_length(y_true, y_pred):
    if len(y_true) != len(y_pred):
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"[{len(y_true)}, {len(y_pred)}]")


def accuracy(y_true, y_pred, sample_weight=None):
    """Fraction of samples whose predicted class equals the true class.

    y_true: labels (n,) or one-hot rows (n, k). y_pred: labels (n,) or scores (n, k), whose
    argmax is the prediction (the first maximum on ties, as np.argmax)."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _check_length(t, p)
    return _mean(t == p, _weights(sample_weight, len(t)))


def binary_accuracy(y_true, y_pred, threshold=0.5, sample_weight=None):
    """Element-wise accuracy of ``y_pred > threshold`` against ``y_true > threshold``, averaged
    over outputs and then (weighted) over samples (Keras' binary_accuracy)."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    _check_length(t, p)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    per_sample = ((t > threshold) == (p > threshold)).mean(axis=1)
    return _mean(per_sample, _weights(sample_weight, len(t)))


def top_k_accuracy(y_true, y_score, k=5, sample_weight=None):
    """Fraction of samples whose true class is among the k highest scores.

    y_true: labels (n,) or one-hot rows (n, k); y_score: (n, n_classes). A class tied with the
    k-th highest score counts as inside the top k (TensorFlow's in_top_k): the sample is
    correct when fewer than k classes score strictly higher than the true class."""
    k = _positive_int(k, "k")
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"y_score must be 2-D (n_samples, n_classes), got shape {scores.shape}")
    t = _labels(y_true, "y_true")
    _check_length(t, scores)
    t = np.asarray(t)
    if t.size and (t.dtype.kind not in "biuf" or np.any(t != np.round(t)) or t.min() < 0
                   or t.max() >= scores.shape[1]):
        raise ValueError(f"y_true must hold class labels in [0, {scores.shape[1]})")
    t = t.astype(np.int64)
    true_scores = scores[np.arange(len(t)), t]
    higher = (scores > true_scores[:, None]).sum(axis=1)
    return _mean(higher < k, _weights(sample_weight, len(t)))


def _regression_pair(y_true, y_pred):
    p = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true)
    p = p.reshape(len(p), -1)
    if t.ndim == 1 and p.shape[1] > 1:  # labels against class scores: compare with one-hot rows
        t = np.eye(p.shape[1])[_labels(t, "y_true").astype(np.int64)]
    t = np.asarray(t, dtype=np.float64).reshape(len(t), -1)
    _check_length(t, p)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    return t, p


def mean_squared_error(y_true, y_pred, sample_weight=None):
    """Mean of (y_true - y_pred)^2 over outputs, then (weighted) over samples."""
    t, p = _regression_pair(y_true, y_pred)
    return _mean(((t - p) ** 2).mean(axis=1), _weights(sample_weight, len(t)))


def mean_absolute_error(y_true, y_pred, sample_weight=None):
    """Mean of |y_true - y_pred| over outputs, then (weighted) over samples."""
    t, p = _regression_pair(y_true, y_pred)
    return _mean(np.abs(t - p).mean(axis=1), _weights(sample_weight, len(t)))


def r2_score(y_true, y_pred, sample_weight=None):
    """Coefficient of determination 1 - sum w (y - p)^2 / sum w (y - mean_w(y))^2 per output,
    averaged over outputs (scikit-learn's r2_score, multioutput='uniform_average'). An output
    whose targets are constant scores 1.0 if predicted exactly, else 0.0 (sklearn's
    force_finite)."""
    t, p = _regression_pair(y_true, y_pred)
    w = _weights(sample_weight, len(t))
    w = np.ones(len(t)) if w is None else w
    if len(t) == 0 or w.sum() == 0:
        return float("nan")
    mean = (w[:, None] * t).sum(axis=0) / w.sum()
    ss_res = (w[:, None] * (t - p) ** 2).sum(axis=0)
    ss_tot = (w[:, None] * (t - mean) ** 2).sum(axis=0)
    scores = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                      np.where(ss_res > 0, 0.0, 1.0))
    return float(scores.mean())


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---- metric objects ----
class Metric:
    """A named metric: ``metric(y_true, y_pred, sample_weight=None) -> float``.

    ``direction`` is "max" when larger is better (EarlyStopping's mode="auto" reads it)."""

    name = None
    direction = "min"

    def configure(self, loss):
        """The metric adapted to a compiled loss (e.g. accuracy's threshold); returns a metric."""
        return self

    def __call__(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Accuracy(Metric):
    """Accuracy: categorical (argmax) for several outputs with a softmax or identity link,
    element-wise ``> threshold`` otherwise (see the module docstring). threshold=None picks 0.5,
    or 0 for losses with the sign link (perceptron, hinge)."""

    name = "accuracy"
    direction = "max"

    def __init__(self, threshold=None):
        self.threshold = None if threshold is None else float(threshold)
        self._link = None

    def configure(self, loss):
        metric = Accuracy(self.threshold)
        metric._link = getattr(loss, "link", None)
        return metric

    def __call__(self, y_true, y_pred, sample_weight=None):
        p = np.asarray(y_pred)
        threshold = self.threshold
        if threshold is None:
            threshold = 0.0 if self._link == "sign" else 0.5
        multi = p.ndim == 2 and p.shape[1] > 1
        if multi and self._link not in ("sigmoid", "sign"):
            return accuracy(y_true, p, sample_weight)
        return binary_accuracy(y_true, p, threshold, sample_weight)

    def __repr__(self):
        return "Accuracy()" if self.threshold is None else f"Accuracy(threshold={self.threshold:g})"


class TopKAccuracy(Metric):
    """Top-k accuracy (see top_k_accuracy); logged as "top_<k>_accuracy"."""

    direction = "max"

    def __init__(self, k=5):
        self.k = _positive_int(k, "k")
        self.name = f"top_{self.k}_accuracy"

    def __call__(self, y_true, y_pred, sample_weight=None):
        return top_k_accuracy(y_true, y_pred, self.k, sample_weight)

    def __repr__(self):
        return f"TopKAccuracy(k={self.k})"


class MeanSquaredError(Metric):
    """Mean squared error (logged as "mse")."""

    name = "mse"

    def __call__(self, y_true, y_pred, sample_weight=None):
        return mean_squared_error(y_true, y_pred, sample_weight)


class MeanAbsoluteError(Metric):
    """Mean absolute error (logged as "mae")."""

    name = "mae"

    def __call__(self, y_true, y_pred, sample_weight=None):
        return mean_absolute_error(y_true, y_pred, sample_weight)


class R2Score(Metric):
    """Coefficient of determination (logged as "r2")."""

    name = "r2"
    direction = "max"

    def __call__(self, y_true, y_pred, sample_weight=None):
        return r2_score(y_true, y_pred, sample_weight)


class _FunctionMetric(Metric):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", None) or type(fn).__name__
        self.direction = getattr(fn, "direction", "min")

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return float(self.fn(y_true, y_pred))
        return float(self.fn(y_true, y_pred, sample_weight=sample_weight))

    def __repr__(self):
        return f"metric({self.name})"


_BY_NAME = {
    "accuracy": Accuracy, "acc": Accuracy,
    "top_k_accuracy": TopKAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "r2": R2Score, "r2_score": R2Score,
}


def get_metric(spec):
    """A Metric from a name (see the table above), a Metric, or a callable f(y_true, y_pred)."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, type) and issubclass(spec, Metric):
        return spec()
    if isinstance(spec, str):
        key = spec.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        match = re.fullmatch(r"top_(\d+)_accuracy", key)
        if match:
            return TopKAccuracy(int(match.group(1)))
        raise ValueError(f"Unknown metric {spec!r}. Choose one of: "
                         f"{', '.join(sorted(_BY_NAME))}, 'top_<k>_accuracy', "
                         "or pass a Metric or a function f(y_true, y_pred).")
    if callable(spec):
        return _FunctionMetric(spec)
    raise ValueError(f"A metric must be a name, a Metric or a function, got {spec!r}")


def get_metrics(specs, loss=None):
    """Metrics for compile: a list configured for `loss`, with distinct names."""
    if specs is None:
        return []
    if isinstance(specs, (str, Metric)) or callable(specs):
        specs = [specs]
    metrics = [get_metric(s).configure(loss) for s in specs]
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Metric names must be distinct; {dupes} appear more than once.")
    if "loss" in names:
        raise ValueError("'loss' is always logged; don't list it among the metrics.")
    return metrics
