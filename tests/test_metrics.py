"""Metrics against hand computations, compiled metrics in fit/evaluate, class weights and
validation_split."""
import numpy as np
import pytest

import fastmlp as fm
from fastmlp import metrics as M


# ---- the functions, by hand ----
def test_accuracy_by_hand():
    y = np.array([0, 1, 2, 2, 1])
    scores = np.array([[0.9, 0.1, 0.0],   # 0 correct
                       [0.2, 0.5, 0.3],   # 1 correct
                       [0.1, 0.6, 0.3],   # 1 wrong
                       [0.0, 0.0, 1.0],   # 2 correct
                       [0.5, 0.4, 0.1]])  # 0 wrong
    assert M.accuracy(y, scores) == 3 / 5
    assert M.accuracy(np.eye(3)[y], scores) == 3 / 5          # one-hot targets
    assert M.accuracy(y, scores.argmax(axis=1)) == 3 / 5      # labels
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    assert M.accuracy(y, scores, sample_weight=w) == pytest.approx((1 + 2 + 4) / 10, rel=1e-15)


def test_binary_accuracy_by_hand():
    t = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.7], [0.4], [0.2], [0.6]])
    assert M.binary_accuracy(t, p) == 0.5
    # multi-label: element-wise, averaged over outputs then samples
    t2 = np.array([[1, 0], [0, 0]])
    p2 = np.array([[0.9, 0.8], [0.1, 0.3]])
    assert M.binary_accuracy(t2, p2) == (0.5 + 1.0) / 2
    # -1/+1 targets with sign predictions, threshold 0
    assert M.binary_accuracy([1, -1, 1], [1, 1, -1], threshold=0.0) == 1 / 3


def test_top_k_accuracy_by_hand():
    y = np.array([2, 0, 1, 3])
    s = np.array([[0.1, 0.2, 0.3, 0.4],    # true 2 is 2nd highest
                  [0.1, 0.2, 0.3, 0.4],    # true 0 is 4th
                  [0.4, 0.3, 0.2, 0.1],    # true 1 is 2nd
                  [0.25, 0.25, 0.25, 0.25]])  # all tied: in the top k for every k
    assert M.top_k_accuracy(y, s, k=1) == 1 / 4
    assert M.top_k_accuracy(y, s, k=2) == 3 / 4
    assert M.top_k_accuracy(y, s, k=3) == 3 / 4
    assert M.top_k_accuracy(y, s, k=4) == 1.0
    assert M.top_k_accuracy(y, s, k=10) == 1.0
    # equals plain accuracy for k=1 without ties, also one-hot targets
    rng = np.random.default_rng(0)
    s = rng.random((50, 6))
    y = rng.integers(0, 6, 50)
    assert M.top_k_accuracy(y, s, k=1) == M.accuracy(y, s)
    ranks = (-s).argsort(axis=1).argsort(axis=1)[np.arange(50), y]   # 0 = highest
    assert M.top_k_accuracy(np.eye(6)[y], s, k=3) == np.mean(ranks < 3)


def test_regression_metrics_by_hand():
    t = np.array([3.0, -0.5, 2.0, 7.0])
    p = np.array([2.5, 0.0, 2.0, 8.0])
    # errors 0.5, -0.5, 0, -1
    assert M.mean_squared_error(t, p) == (0.25 + 0.25 + 0 + 1) / 4
    assert M.mean_absolute_error(t, p) == (0.5 + 0.5 + 0 + 1) / 4
    mean = (3 - 0.5 + 2 + 7) / 4  # 2.875
    ss_tot = (3 - mean) ** 2 + (-0.5 - mean) ** 2 + (2 - mean) ** 2 + (7 - mean) ** 2
    assert M.r2_score(t, p) == pytest.approx(1 - 1.5 / ss_tot, rel=1e-15)  # 0.9486081370449679
    assert M.r2_score(t, p) == pytest.approx(0.9486081370449679, rel=1e-13)  # sklearn's docs
    # weighted
    w = np.array([1.0, 0.0, 2.0, 1.0])
    assert M.mean_squared_error(t, p, w) == pytest.approx((0.25 + 0 + 1) / 4, rel=1e-15)
    wm = (3 + 4 + 7) / 4
    ss_tot_w = (3 - wm) ** 2 + 2 * (2 - wm) ** 2 + (7 - wm) ** 2
    assert M.r2_score(t, p, w) == pytest.approx(1 - 1.25 / ss_tot_w, rel=1e-15)


def test_multioutput_r2_and_constant_targets():
    t = np.array([[0.5, 1.0], [-1.0, 1.0], [7.0, -6.0]])
    p = np.array([[0.0, 2.0], [-1.0, 2.0], [8.0, -5.0]])
    r2 = [1 - ((t[:, j] - p[:, j]) ** 2).sum() / ((t[:, j] - t[:, j].mean()) ** 2).sum()
          for j in range(2)]
    assert M.r2_score(t, p) == pytest.approx(np.mean(r2), rel=1e-15)  # 0.938... in sklearn's docs
    assert M.r2_score(t, p) == pytest.approx(0.9368005266622779, rel=1e-13)
    assert M.mean_squared_error(t, p) == pytest.approx(((t - p) ** 2).mean(), rel=1e-15)
    # a constant target: 1 if predicted exactly, else 0 (sklearn's force_finite)
    assert M.r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert M.r2_score([2.0, 2.0], [2.0, 3.0]) == 0.0


def test_metric_lookup():
    assert isinstance(M.get_metric("acc"), M.Accuracy)
    assert M.get_metric("top_3_accuracy").k == 3 and M.get_metric("top_k_accuracy").k == 5
    assert [m.name for m in M.get_metrics(["accuracy", "mse", "mae", "r2", "top_2_accuracy"])] == \
        ["accuracy", "mse", "mae", "r2", "top_2_accuracy"]
    with pytest.raises(ValueError, match="Unknown metric"):
        M.get_metric("precision")
    with pytest.raises(ValueError, match="distinct"):
        M.get_metrics(["acc", "accuracy"])


# ---- compiled metrics ----
def digits(n=400):
    X, y = fm.datasets.load_digits()
    return X[:n], y[:n]


def classifier(metrics=None, seed=0):
    m = fm.Sequential([fm.Dense(16, "relu"), fm.Dense(10)], input_dim=64, dtype="float64", seed=seed)
    return m.compile("softmax_cross_entropy", fm.SGD(lr=0.1, momentum=0.9), metrics=metrics)


def test_evaluate_returns_float_without_metrics_and_dict_with():
    X, y = digits()
    plain, with_metrics = classifier(), classifier(["accuracy", "top_3_accuracy"])
    loss = plain.evaluate(X, y)
    assert isinstance(loss, float)
    result = with_metrics.evaluate(X, y)
    assert list(result) == ["loss", "accuracy", "top_3_accuracy"]
    assert result["loss"] == loss
    proba = with_metrics.predict(X)
    assert result["accuracy"] == np.mean(proba.argmax(axis=1) == y)
    assert result["top_3_accuracy"] == M.top_k_accuracy(y, proba, 3)


def test_fit_metrics_are_the_epoch_end_predictions():
    X, y = digits()
    Xv, yv = digits(600)
    Xv, yv = Xv[400:], yv[400:]
    model = classifier(["accuracy", "mse"])
    seen = []

    def record(epoch, logs):
        proba = model.predict(X)
        seen.append((np.mean(proba.argmax(axis=1) == y),
                     np.mean((np.eye(10)[y] - proba) ** 2),
                     np.mean(model.predict(Xv).argmax(axis=1) == yv), model.evaluate(Xv, yv)))

    history = model.fit(X, y, epochs=4, validation_data=(Xv, yv),
                        callbacks=[fm.LambdaCallback(on_epoch_end=record)])
    assert list(history.history) == ["loss", "accuracy", "mse", "val_loss", "val_accuracy",
                                     "val_mse", "lr", "time"]
    for e, (acc, mse, val_acc, val) in enumerate(seen):
        assert history["accuracy"][e] == acc
        assert history["mse"][e] == pytest.approx(mse, rel=1e-12)
        assert history["val_accuracy"][e] == val_acc
        assert history["val_loss"][e] == val["loss"] and history["val_mse"][e] == val["mse"]
    assert history["accuracy"][-1] > 0.8
    # metrics_on_train=False keeps the validation metrics only
    h = classifier(["accuracy"]).fit(X, y, epochs=1, validation_data=(Xv, yv), metrics_on_train=False)
    assert list(h.history) == ["loss", "val_loss", "val_accuracy", "lr", "time"]


def test_accuracy_follows_the_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(float)
    bce = fm.Sequential([fm.Dense(1)], input_dim=4, dtype="float64", seed=0)
    bce.compile("binary_cross_entropy", fm.SGD(lr=0.5), metrics=["accuracy"])
    bce.fit(X, y, epochs=5)
    assert bce.evaluate(X, y)["accuracy"] == np.mean((bce.predict(X)[:, 0] > 0.5) == (y > 0.5))
    hinge = fm.Sequential([fm.Dense(1)], input_dim=4, dtype="float64", seed=0)
    hinge.compile("hinge", fm.SGD(lr=0.1), metrics=["accuracy"])
    hinge.fit(X, y, epochs=5)                                    # 0/1 labels become -1/+1
    signs = hinge.predict(X)[:, 0]
    assert hinge.evaluate(X, y)["accuracy"] == np.mean((signs > 0) == (y > 0))
    reg = fm.Sequential([fm.Dense(1)], input_dim=4, dtype="float64", seed=0)
    reg.compile("mse", fm.SGD(lr=0.05), metrics=["mae", "r2"])
    t = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3
    reg.fit(X, t, epochs=20, batch_size=8)
    p = reg.predict(X)[:, 0]
    res = reg.evaluate(X, t)
    assert res["mae"] == pytest.approx(np.mean(np.abs(t - p)), rel=1e-12)
    assert res["r2"] == pytest.approx(1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2), rel=1e-12)


def test_early_stopping_auto_mode_reads_metric_direction():
    X, y = digits(200)
    model = classifier(["accuracy"])
    cb = fm.EarlyStopping(monitor="accuracy", patience=50)
    model.fit(X, y, epochs=2, callbacks=[cb])
    assert cb._direction == "max"
    cb = fm.EarlyStopping(monitor="loss", patience=50)
    model.fit(X, y, epochs=1, callbacks=[cb])
    assert cb._direction == "min"


# ---- class weights and validation split ----
def test_class_weight_balanced_equals_explicit_sample_weights():
    X, y = digits(300)
    keep = (y != 3) | (np.arange(len(y)) % 4 == 0)   # make class 3 rare
    X, y = X[keep], y[keep]
    n_classes = len(np.unique(y))
    explicit = len(y) / (n_classes * np.bincount(y))[y]
    a, b = classifier(), classifier()
    ha = a.fit(X, y, epochs=3, class_weight="balanced")
    hb = b.fit(X, y, epochs=3, sample_weight=explicit)
    assert ha["loss"] == hb["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    # a dict, combined with sample_weight by multiplication; absent classes weigh 1
    sw = np.linspace(0.5, 1.5, len(y))
    c, d = classifier(), classifier()
    c.fit(X, y, epochs=2, class_weight={3: 4.0, 0: 0.5}, sample_weight=sw)
    d.fit(X, y, epochs=2, sample_weight=sw * np.where(y == 3, 4.0, np.where(y == 0, 0.5, 1.0)))
    for wc, wd in zip(c.get_weights(), d.get_weights()):
        assert np.array_equal(wc, wd)
    # one-hot targets: the class is the argmax
    e = classifier()
    e.fit(X, np.eye(10)[y], epochs=3, class_weight="balanced")
    for we, wa in zip(e.get_weights(), a.get_weights()):
        np.testing.assert_allclose(we, wa, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="balanced"):
        classifier().fit(X, y, class_weight="auto")
    with pytest.raises(ValueError, match=">= 0"):
        classifier().fit(X, y, class_weight={0: -1.0})


def test_class_weight_rejects_multilabel_and_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    ml = fm.Sequential([fm.Dense(2)], input_dim=3, seed=0).compile("binary_cross_entropy")
    with pytest.raises(ValueError, match="multi-label"):
        ml.fit(X, (rng.random((20, 2)) > 0.5) * 1.0, class_weight="balanced")
    reg = fm.Sequential([fm.Dense(1)], input_dim=3, seed=0).compile("mse")
    with pytest.raises(ValueError, match="non-integer"):
        reg.fit(X, rng.normal(size=20), class_weight="balanced")


def test_validation_split_takes_the_last_fraction():
    X, y = digits(203)
    sw = np.linspace(1, 2, len(y))
    split_at = int(203 * (1 - 0.25))   # 152, Keras' rule
    a, b = classifier(["accuracy"]), classifier(["accuracy"])
    ha = a.fit(X, y, epochs=3, validation_split=0.25, sample_weight=sw)
    hb = b.fit(X[:split_at], y[:split_at], epochs=3, sample_weight=sw[:split_at],
               validation_data=(X[split_at:], y[split_at:], sw[split_at:]))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert ha[key] == hb[key]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    assert ha["val_loss"][-1] == a.evaluate(X[split_at:], y[split_at:], sw[split_at:])["loss"]
    with pytest.raises(ValueError, match="validation_split"):
        classifier().fit(X, y, validation_split=1.5)
    with pytest.raises(ValueError, match="not both"):
        classifier().fit(X, y, validation_split=0.2, validation_data=(X, y))
    with pytest.raises(ValueError, match="both need at least one"):
        classifier().fit(X[:3], y[:3], validation_split=0.9)
