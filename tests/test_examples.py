"""The lecture notes' worked examples, with their arithmetic."""
import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core


def one_unit(w, b, dtype="float64"):
    model = fm.Sequential([fm.Dense(1)], input_dim=1, dtype=dtype, seed=0)
    model.set_weights([np.array([[w]]), np.array([b])])
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compute_graph_example(dtype):
    # Notes (Menkovski): single data point x=2, y=2; o = w x + b = 2*2 + 1 = 5;
    # L = 1/2 (o - y)^2 = 1/2 * 3^2 = 4.5; dL/do = o - y = 3; dL/dw = x (o - y) = 6; dL/db = 3.
    model = one_unit(2.0, 1.0, dtype)
    model.compile(loss="mse", optimizer=fm.SGD(lr=0.1))
    X, y = np.array([[2.0]]), np.array([2.0])
    assert model.predict(X)[0, 0] == 5.0
    loss, (dw, db) = model.loss_and_gradients(X, y)
    assert loss == 4.5
    assert dw[0, 0] == 6.0 and db[0] == 3.0
    # One step with alpha = 0.1: w <- 2 - 0.1*6 = 1.4, b <- 1 - 0.1*3 = 0.7
    assert model.train_on_batch(X, y) == 4.5
    w, b = model.get_weights()
    np.testing.assert_allclose([w[0, 0], b[0]], [1.4, 0.7], rtol=1e-6 if dtype == "float32" else 1e-15)


def test_compute_graph_layer_by_layer():
    # The same example as message passing: forward, the loss's dL/do, then Dense.backward.
    layer = fm.Dense(1).build(1, "float64")
    layer.weight = [[2.0]]
    layer.bias = [1.0]
    o = layer.forward(np.array([[2.0]]))
    assert o[0, 0] == 5.0
    loss = fm.MSE()
    value, dl_do = loss(o, loss.prepare_targets(np.array([2.0]), 1, np.float64))
    assert value == 4.5 and dl_do[0, 0] == 3.0
    dx = layer.backward(dl_do)
    assert layer.grad_weight[0, 0] == 6.0 and layer.grad_bias[0] == 3.0
    assert dx[0, 0] == 6.0  # dL/dx = w (o - y) = 2 * 3


def test_notes_two_layer_backward_pass():
    # Notes (Grosse): z = W1 x, h = sigma(z), y = W2 h, L = 1/2 |t - y|^2;
    # y_bar = y - t, W2_bar = y_bar h^T, h_bar = W2^T y_bar, z_bar = h_bar * sigma'(z), W1_bar = z_bar x^T.
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=4), rng.normal(size=2)
    W1, W2 = rng.normal(size=(5, 4)), rng.normal(size=(2, 5))
    z = W1 @ x
    h = 1 / (1 + np.exp(-z))
    y = W2 @ h
    y_bar = y - t
    W2_bar = np.outer(y_bar, h)
    z_bar = (W2.T @ y_bar) * h * (1 - h)
    W1_bar = np.outer(z_bar, x)

    model = fm.Sequential([fm.Dense(5, "sigmoid", use_bias=False), fm.Dense(2, use_bias=False)],
                          input_dim=4, dtype="float64")
    model.compile(loss="mse")
    model.set_weights([W1.T, W2.T])  # fastmlp stores W as (in, out)
    loss, (g1, g2) = model.loss_and_gradients(x[None, :], t[None, :])
    np.testing.assert_allclose(loss, 0.5 * np.sum((t - y) ** 2), rtol=1e-14)
    np.testing.assert_allclose(g2, W2_bar.T, rtol=1e-12)
    np.testing.assert_allclose(g1, W1_bar.T, rtol=1e-12)


def rosenblatt(X, t, lr, epochs, seed):
    """Rosenblatt's rule written out, visiting samples in the same order as the library."""
    w, b = np.zeros(X.shape[1]), 0.0
    for epoch in range(epochs):
        for i in _core.permutation(len(X), seed, epoch + 1):
            if t[i] * (X[i] @ w + b) <= 0:
                w, b = w + lr * t[i] * X[i], b + lr * t[i]
    return w, b


def test_perceptron_converges_on_separable_data_with_rosenblatts_rule():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    t = np.where(X @ np.array([1.5, -1.0]) + 0.3 > 0, 1, -1)
    X += 0.3 * t[:, None] * np.array([1.5, -1.0]) / np.hypot(1.5, 1.0)  # a clear margin
    clf = fm.Perceptron(lr=1.0, max_epochs=100, seed=7).fit(X, t)
    assert clf.converged_
    assert clf.score(X, t) == 1.0
    assert clf.mistakes_[-1] == 0
    w, b = rosenblatt(X, t, 1.0, clf.n_epochs_, 7)
    np.testing.assert_allclose(clf.coef_, w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(clf.intercept_, b, rtol=1e-12, atol=1e-12)


def test_perceptron_learns_or_and_and_fails_on_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    for target in ([0, 1, 1, 1], [0, 0, 0, 1]):  # OR, AND: linearly separable
        clf = fm.Perceptron(lr=0.5, max_epochs=50, seed=1).fit(X, target)
        assert clf.converged_ and clf.score(X, target) == 1.0
    xor = [0, 1, 1, 0]
    clf = fm.Perceptron(lr=0.5, max_epochs=200, seed=1).fit(X, xor)
    # No line separates XOR, so no epoch can end with zero mistakes (Minsky & Papert).
    assert not clf.converged_
    assert clf.n_epochs_ == 200 and min(clf.mistakes_) >= 1
    assert clf.score(X, xor) <= 0.75


def test_mlp_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    y = np.array([0, 1, 1, 0], float)
    model = fm.Sequential([fm.Dense(4, "sigmoid"), fm.Dense(1, "sigmoid")], input_dim=2,
                          dtype="float64", seed=0)
    model.compile(loss="binary_cross_entropy", optimizer=fm.SGD(lr=2.0, momentum=0.9))
    history = model.fit(X, y, epochs=500, batch_size=None)
    p = model.predict(X)[:, 0]
    assert np.array_equal(p > 0.5, y > 0.5), p
    assert history["loss"][-1] < 0.05


def test_xor_by_composition_of_threshold_units():
    # Notes: x1 XOR x2 = (x1 OR x2) AND NOT (x1 AND x2), with threshold units 1[net >= theta].
    model = fm.Sequential([fm.Dense(2, fm.Step(theta=0.0)), fm.Dense(1, fm.Step(theta=0.0))],
                          input_dim=2, dtype="float64")
    model.set_weights([np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5]),  # OR, AND
                       np.array([[1.0], [-1.0]]), np.array([-0.5])])            # OR and not AND
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    np.testing.assert_array_equal(model.predict(X)[:, 0], [0, 1, 1, 0])


def test_sigmoid_pair_makes_a_bump():
    # Duda, Hart & Stork fig. 6.2: hidden units paired in opposition give a bump.
    # With steep sigmoids, s(a(x + 1)) - s(a(x - 1)) is ~1 on (-1, 1) and ~0 outside.
    a = 20.0
    model = fm.Sequential([fm.Dense(2, "sigmoid"), fm.Dense(1)], input_dim=1, dtype="float64")
    model.set_weights([np.array([[a, a]]), np.array([a, -a]), np.array([[1.0], [-1.0]]), np.zeros(1)])
    x = np.linspace(-3, 3, 61)[:, None]
    expected = 1 / (1 + np.exp(-a * (x + 1))) - 1 / (1 + np.exp(-a * (x - 1)))
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-12, atol=1e-15)
    assert model.predict(np.array([[0.0]]))[0, 0] > 0.99
    assert abs(model.predict(np.array([[2.5]]))[0, 0]) < 1e-6


def test_2_4_1_sigmoid_network_approximates_a_1d_function():
    # A 2-4-1 network in the notes' sense (input plus bias, 4 sigmoid hidden units, linear
    # output) fits a smooth bump-shaped target by gradient descent.
    x = np.linspace(-3, 3, 200)[:, None]
    target = np.exp(-x[:, 0] ** 2) - 0.5 * np.exp(-4 * (x[:, 0] - 1.5) ** 2)
    model = fm.Sequential([fm.Dense(4, "sigmoid"), fm.Dense(1)], input_dim=1, dtype="float64", seed=1)
    model.compile(loss="mse", optimizer=fm.SGD(lr=0.2, momentum=0.9))
    before = np.mean((model.predict(x)[:, 0] - target) ** 2)
    model.fit(x, target, epochs=3000, batch_size=None)
    after = np.mean((model.predict(x)[:, 0] - target) ** 2)
    assert after < 2e-3 and after < before / 50, (before, after)
