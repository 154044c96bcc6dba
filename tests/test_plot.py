"""fastmlp.plot renders with matplotlib's Agg backend: loss curves and 2-D decision boundaries."""
import subprocess
import sys

import numpy as np
import pytest

import fastmlp as fm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from fastmlp import plot  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(ax, path):
    ax.figure.savefig(path, dpi=60)
    plt.close(ax.figure)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 2000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def _xor_model():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    y = np.array([0, 1, 1, 0])
    model = fm.Sequential([fm.Dense(4, activation="tanh"), fm.Dense(1, activation="sigmoid")],
                          input_dim=2, dtype="float64", seed=1)
    model.compile("binary_cross_entropy", fm.Adam(lr=0.05))
    history = model.fit(X, y, epochs=400, batch_size=4)
    return model, history, X, y


def test_loss_curve_from_every_history_type(tmp_path):
    model, history, X, y = _xor_model()
    ax = plot.loss_curve(history, logy=True)
    assert [line.get_label() for line in ax.get_lines()] == ["training loss"]
    assert ax.get_yscale() == "log" and len(ax.get_lines()[0].get_xdata()) == 400
    _png(ax, tmp_path / "history.png")
    both = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "time": [0.1] * 3}
    ax = plot.loss_curve(both)
    assert [line.get_label() for line in ax.get_lines()] == ["training loss", "validation loss"]
    _png(ax, tmp_path / "dict.png")
    ax = plot.loss_curve([3.0, 2.0, 1.5], title=None)
    _png(ax, tmp_path / "list.png")
    adaline = fm.Adaline(seed=0, epochs=5).fit(X, y)
    _png(plot.loss_curve(adaline), tmp_path / "adaline.png")


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_loss_curve_of_an_estimator_with_validation(tmp_path):
    sk = pytest.importorskip("fastmlp.sklearn")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    clf = sk.MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, max_iter=30,
                           random_state=0, learning_rate_init=0.01, n_iter_no_change=50)
    clf.fit(X, y)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plot.loss_curve(clf, ax=axes[0])
    assert len(axes[0].get_lines()) == 2
    plot.decision_boundary(clf, X, y, ax=axes[1], title="sklearn front end")
    _png(axes[0], tmp_path / "estimator.png")


def test_decision_boundaries_xor_and_perceptron(tmp_path):
    """The notes' pictures: XOR needs a hidden layer; a perceptron draws a straight line."""
    model, _, X, y = _xor_model()
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    plot.decision_boundary(model, X, y, ax=axes[0], resolution=120, title="XOR")
    assert len(axes[0].collections) >= 3  # filled regions, boundary, points
    rng = np.random.default_rng(0)
    Xs = np.vstack([rng.normal([-1, -1], 0.5, (30, 2)), rng.normal([1.5, 1], 0.5, (30, 2))])
    ys = np.repeat(["no", "yes"], 30)
    perceptron = fm.Perceptron(seed=0).fit(Xs, ys)
    plot.decision_boundary(perceptron, Xs, ys, ax=axes[1], title="separable")
    image = _png(axes[0], tmp_path / "boundaries.png")
    # the XOR panel shows both classes' colours (red and blue regions)
    rgb = image[..., :3].reshape(-1, 3)
    assert np.any(rgb[:, 0] - rgb[:, 2] > 0.3) and np.any(rgb[:, 2] - rgb[:, 0] > 0.3)


def test_decision_boundary_other_models(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 2))
    y = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
    softmax = fm.Sequential([fm.Dense(8, activation="relu"), fm.Dense(3)], input_dim=2, seed=0)
    softmax.compile("softmax_cross_entropy", fm.Adam(lr=0.05))
    softmax.fit(X, y, epochs=50)
    _png(plot.decision_boundary(softmax, X, y), tmp_path / "three.png")
    signs = fm.Sequential([fm.Dense(1)], input_dim=2, seed=0)
    signs.compile("perceptron")
    _png(plot.decision_boundary(signs, X), tmp_path / "sign.png")
    _png(plot.decision_boundary(lambda P: P[:, 0] * P[:, 1] > 0, X, X[:, 0] * X[:, 1] > 0,
                                proba=False), tmp_path / "callable.png")


def test_errors(monkeypatch):
    model, history, X, y = _xor_model()
    with pytest.raises(ValueError, match="2-D inputs"):
        plot.decision_boundary(model, np.ones((4, 3)))
    with pytest.raises(ValueError, match="4 samples but y has 3"):
        plot.decision_boundary(model, X, y[:3])
    with pytest.raises(ValueError, match="resolution"):
        plot.decision_boundary(model, X, resolution=1)
    with pytest.raises(TypeError, match="History"):
        plot.loss_curve(42)
    with pytest.raises(ValueError, match="empty"):
        plot.loss_curve([])
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'fastmlp\[plot\]'"):
        plot.loss_curve(history)


def test_optional_packages_are_not_imported_by_fastmlp():
    code = ("import sys, fastmlp, fastmlp.plot, fastmlp.io, fastmlp.onnx, fastmlp.cli; "
            "bad = [m for m in ('matplotlib', 'sklearn', 'onnx', 'onnxruntime', 'scipy') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
