"""Plots for training curves and 2-D decision boundaries (needs ``pip install 'fastmlp[plot]'``).

matplotlib is imported when a function is called, never at ``import fastmlp``. Each function
draws into the Axes ``ax`` if given (else a new figure from pyplot) and returns the Axes; save
with ``ax.figure.savefig("plot.png")``.

- `loss_curve`: the training loss per epoch, and the validation loss when there is one, from a
  History, its ``.history`` dict, a fitted fastmlp.sklearn estimator (``loss_curve_``,
  ``validation_loss_curve_``), a list of losses or a dict of lists.
- `decision_boundary`: the regions a classifier assigns to each class over a 2-D input plane,
  with the data on top: the lecture notes' pictures of linear separability (a perceptron's
  straight boundary) and of XOR (which needs a hidden layer).
"""
import numbers

import numpy as np

__all__ = ["decision_boundary", "loss_curve"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("fastmlp.plot needs matplotlib: pip install 'fastmlp[plot]' "
                          "(or pip install matplotlib).") from None
    return plt


def _axes(ax, figsize=(6, 4)):
    if ax is not None:
        return ax
    plt = _pyplot()
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _curves(history):
    """{label: list of floats} from the accepted history types."""
    if hasattr(history, "loss_curve_"):  # a fitted fastmlp.sklearn (or sklearn) MLP estimator
        curves = {"loss": list(history.loss_curve_)}
        val = getattr(history, "validation_loss_curve_", None)
        if val:
            curves["val_loss"] = list(val)
        return curves
    if hasattr(history, "losses_"):  # fastmlp.linear models
        return {"loss": list(history.losses_)}
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history  # fastmlp.History (or a Keras History)
    if isinstance(history, dict):
        curves = {k: list(v) for k, v in history.items()
                  if k in ("loss", "val_loss") or k.endswith("loss")}
        if not curves:
            raise ValueError(f"no loss curves in the history; it has keys {sorted(history)}")
        return curves
    if isinstance(history, (list, tuple, np.ndarray)):
        return {"loss": list(np.asarray(history, dtype=float).ravel())}
    raise TypeError("loss_curve takes a History, a dict of lists, a list of losses or a fitted "
                    f"estimator with loss_curve_; got {type(history).__name__}")


def loss_curve(history, ax=None, logy=False, title="Loss per epoch"):
    """Plot the training (and validation) loss against the epoch; returns the Axes.

    `history`: ``model.fit(...)``'s History (or its ``.history`` dict), a fitted
    fastmlp.sklearn estimator, a fastmlp.linear model (``losses_``), or a list of losses.
    ``logy=True`` uses a logarithmic loss axis."""
    curves = _curves(history)
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            raise ValueError(f"the {label!r} curve is empty: train for at least one epoch")
    ax = _axes(ax)
    for label, values in curves.items():
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o" if len(values) <= 30 else None, markersize=3,
                label={"loss": "training loss", "val_loss": "validation loss"}.get(label, label))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax


def _scores(model, grid):
    """(per-point class index, per-point score in [0, 1] or None, class labels) over grid."""
    from .model import Sequential

    if isinstance(model, Sequential):
        out = np.asarray(model.predict(grid), dtype=float)
        link = model.loss.link if model.loss is not None else "identity"
        if out.shape[1] == 1:
            if link == "sigmoid":
                return (out[:, 0] > 0.5).astype(int), out[:, 0], [0, 1]
            if link == "sign" or np.all(np.isin(out, (-1.0, 0.0, 1.0))):
                return (out[:, 0] > 0).astype(int), None, [-1, 1]
            # a regression-style unit (e.g. Adaline's linear output): threshold at 0.5 for
            # 0/1 targets, at 0 for -1/+1 targets, show the value
            return (out[:, 0] > 0.5).astype(int), np.clip(out[:, 0], 0, 1), [0, 1]
        return np.argmax(out, axis=1), None, list(range(out.shape[1]))
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        proba = np.asarray(model.predict_proba(grid), dtype=float)
        classes = list(model.classes_)
        score = proba[:, 1] if proba.shape[1] == 2 else None
        return np.argmax(proba, axis=1), score, classes
    if hasattr(model, "predict") and hasattr(model, "classes_"):
        classes = list(model.classes_)
        pred = np.asarray(model.predict(grid))
        lookup = {c: i for i, c in enumerate(classes)}
        return np.array([lookup[p] for p in pred.tolist()]), None, classes
    if callable(model):
        out = np.asarray(model(grid))
        if out.ndim == 2 and out.shape[1] > 1:
            return np.argmax(out, axis=1), None, list(range(out.shape[1]))
        out = out.ravel()
        return (out > 0.5).astype(int), None, [0, 1]
    raise TypeError("decision_boundary takes a fastmlp Sequential, a fitted classifier "
                    f"(predict/predict_proba and classes_) or a function; got {type(model).__name__}")


def decision_boundary(model, X, y=None, ax=None, resolution=200, margin=0.1, proba=True,
                      title=None, cmap="coolwarm"):
    """Shade the class regions of `model` over the plane spanned by X's two columns and draw
    the samples (coloured by y) on top; returns the Axes.

    `model`: a Sequential (classes from its outputs: argmax, or sigmoid > 0.5 / sign for one
    output), a fitted classifier with ``classes_`` (fastmlp.sklearn, fastmlp.linear, or any
    scikit-learn classifier), or a function mapping an (n, 2) array to scores.
    `resolution`: grid points per axis; `margin`: padding around the data, as a fraction of its
    range. With ``proba=True`` and two classes the shading shows the probability of the second
    class and the 0.5 contour is drawn as the boundary."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2-D inputs, X of shape (n_samples, 2); got "
                         f"{X.shape}")
    if not isinstance(resolution, numbers.Integral) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = np.where(hi > lo, (hi - lo) * margin, 1.0)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    dtype = getattr(model, "dtype", None)
    if dtype is not None and np.dtype(dtype) in (np.float32, np.float64):
        grid = grid.astype(dtype)
    index, score, classes = _scores(model, grid)
    plt = _pyplot()
    ax = _axes(ax, figsize=(5, 5))
    k = max(len(classes), 2)
    colormap = plt.get_cmap(cmap)
    if proba and score is not None:
        zz = score.reshape(gx.shape)
        ax.contourf(gx, gy, zz, levels=np.linspace(0, 1, 21), cmap=colormap, alpha=0.6)
        ax.contour(gx, gy, zz, levels=[0.5], colors="k", linewidths=1.5)
    else:
        zz = index.reshape(gx.shape).astype(float)
        ax.contourf(gx, gy, zz, levels=np.arange(-0.5, k, 1.0), cmap=colormap, alpha=0.5,
                    vmin=0, vmax=k - 1)
        if k > 1:
            ax.contour(gx, gy, zz, levels=np.arange(0.5, k - 1, 1.0), colors="k", linewidths=1.0)
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
        labels = list(classes)
        values = np.unique(y)
        for j, value in enumerate(values):
            pos = labels.index(value) if value in labels else j
            colour = colormap(pos / (k - 1) if k > 1 else 0.0)
            ax.scatter(X[y == value, 0], X[y == value, 1], color=colour, edgecolors="k",
                       s=30, label=str(value), zorder=3)
        ax.legend(title="class", loc="best")
    else:
        ax.scatter(X[:, 0], X[:, 1], c="k", s=12, zorder=3)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax
