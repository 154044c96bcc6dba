"""Autoencoders: structure, tied-weight gradients, and reconstruction on MNIST."""
import numpy as np
import pytest

import fastmlp as fm
from data_paths import require
from gradcheck import assert_gradient_close, model_numerical_gradients


def test_mirrored_structure_and_encode_decode():
    ae = fm.Autoencoder(input_dim=20, hidden=(8, 3), dtype="float64", seed=0)
    assert [layer.units for layer in ae.layers] == [8, 3, 8, 20]
    ae.compile("mse")
    X = np.random.default_rng(0).random((5, 20))
    codes = ae.encode(X)
    assert codes.shape == (5, 3)
    np.testing.assert_allclose(ae.decode(codes), ae.predict(X), rtol=1e-14)
    np.testing.assert_allclose(ae.reconstruction_error(X), np.mean((ae.predict(X) - X) ** 2, axis=1))


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
def test_tied_autoencoder_gradients_by_finite_differences(loss):
    ae = fm.Autoencoder(input_dim=6, hidden=(4, 2), activation="tanh", tied=True,
                        dtype="float64", seed=1).compile(loss)
    assert [w.shape for w in ae.get_weights()] == [(6, 4), (4,), (4, 2), (2,), (4,), (6,)]
    X = np.random.default_rng(2).random((7, 6))
    value, grads = ae.loss_and_gradients(X, X)
    numeric = model_numerical_gradients(ae, lambda: ae.loss_and_gradients(X, X)[0])
    for g, n in zip(grads, numeric):
        assert_gradient_close(g, n)
    # the decoder really uses the transposed encoder weights
    np.testing.assert_allclose(ae.layers[2]._weight(), ae.layers[1].weight.T)


def test_untied_autoencoder_trains_on_the_engine_and_matches_layer_path():
    X = np.random.default_rng(3).random((32, 10))
    results = []
    for use_engine in (True, False):
        ae = fm.Autoencoder(input_dim=10, hidden=(6, 3), seed=4).compile("binary_cross_entropy",
                                                                          fm.Adam(lr=0.01))
        ae._use_engine = use_engine
        ae.fit(X, epochs=2, batch_size=8)
        results.append(ae.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*results))


def test_mnist_784_128_32_128_784_reconstruction():
    require("mnist/train-images-idx3-ubyte.gz")
    from data_paths import DATA
    X, _ = fm.datasets.load_mnist(DATA / "mnist", "train")
    X_test, _ = fm.datasets.load_mnist(DATA / "mnist", "test")
    X, X_test = X[:6000], X_test[:2000]
    baseline = np.mean((X_test - X.mean(axis=0)) ** 2)  # predicting the mean image: 0.067
    ae = fm.Autoencoder(input_dim=784, hidden=(128, 32), seed=0)
    ae.compile("binary_cross_entropy", fm.Adam(lr=2e-3))
    history = ae.fit(X, epochs=4, batch_size=64)
    error = float(ae.reconstruction_error(X_test).mean())
    # 10k samples x 5 epochs gave 0.0144 here; 6k x 4 about 0.02. A third of the baseline is a
    # code that clearly carries the digit.
    assert error < baseline / 3, (error, baseline)
    assert history["loss"][-1] < history["loss"][0]
    assert ae.encode(X_test[:3]).shape == (3, 32)
