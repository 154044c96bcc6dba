"""Dropout, Gaussian noise, activity penalties, Maxout, max-norm and gradient clipping: kernels
against NumPy, finite differences, and the engine equal to the layer-by-layer path."""
import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core
from gradcheck import numerical_gradient


def uniform_oracle(seed, stream, n):
    """The kernels' uniform draws: top 53 bits of fm_rng_u64 / 2^53."""
    return np.array([(_core.rng_u64(seed, stream, i) >> 11) * 2.0 ** -53 for i in range(n)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_is_the_documented_draw(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 13)).astype(dtype)
    mask, y = np.empty_like(x), np.empty_like(x)
    _core.dropout_forward(x, mask, y, 0.3, 42, 5)
    keep = uniform_oracle(42, 5, x.size).reshape(x.shape) >= 0.3
    np.testing.assert_array_equal(mask, np.where(keep, dtype(1 / 0.7), 0))
    np.testing.assert_array_equal(y, x * mask)


def test_dropout_statistics_and_threads():
    x = np.ones((400, 300))
    masks = []
    for nt in (1, 2, 3):
        mask, y = np.empty_like(x), np.empty_like(x)
        _core.dropout_forward(x, mask, y, 0.25, 7, 1, nt)
        masks.append(mask)
    assert all(np.array_equal(masks[0], m) for m in masks[1:])
    kept = np.mean(masks[0] > 0)
    assert abs(kept - 0.75) < 0.01  # 120k Bernoulli draws: sd 0.0013
    assert abs(masks[0].mean() - 1.0) < 0.015  # inverted dropout keeps the mean


def test_gaussian_noise_statistics_and_threads():
    x = np.zeros((500, 400))
    ys = []
    for nt in (1, 2):
        y = np.empty_like(x)
        _core.gaussian_noise(x, y, 0.5, 3, 9, nt)
        ys.append(y)
    assert np.array_equal(ys[0], ys[1])
    noise = ys[0].ravel()
    assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.5) < 0.005
    assert abs(np.mean(np.abs(noise) < 0.5) - 0.6827) < 0.005  # one-sigma mass


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxout_kernels_match_numpy(dtype):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(9, 5 * 3)).astype(dtype)
    z[0, :3] = 1.0  # a tie: the first piece takes the gradient
    y = np.empty((9, 5), dtype)
    _core.maxout_forward(z, y, 3)
    np.testing.assert_array_equal(y, z.reshape(9, 5, 3).max(axis=2))
    dy = rng.normal(size=(9, 5)).astype(dtype)
    dz = np.empty_like(z)
    _core.maxout_backward(z, dy, dz, 3)
    expected = np.zeros((9, 5, 3), dtype)
    arg = z.reshape(9, 5, 3).argmax(axis=2)
    np.put_along_axis(expected, arg[..., None], dy[..., None], axis=2)
    np.testing.assert_array_equal(dz, expected.reshape(9, 15))


def test_max_norm_matches_numpy():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(30, 300)) * rng.uniform(0.1, 1.0, size=300)
    expected = w.copy()
    norms = np.linalg.norm(expected, axis=0)
    expected[:, norms > 3.0] *= 3.0 / norms[norms > 3.0]
    _core.max_norm(w, 3.0)
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    assert np.linalg.norm(w, axis=0).max() <= 3.0 + 1e-12


def test_clip_grad_matches_torch_rules():
    rng = np.random.default_rng(3)
    g = rng.normal(size=1000) * 3
    by_value = np.clip(g, -2.0, 2.0)
    norm = np.linalg.norm(by_value)
    expected = by_value * (5.0 / (norm + 1e-6))
    out = g.copy()
    reported = _core.clip_grad(out, clip_value=2.0, clip_norm=5.0)
    np.testing.assert_allclose(reported, norm, rtol=1e-13)
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    small = np.full(10, 0.1)
    _core.clip_grad(small, clip_norm=5.0)
    assert np.array_equal(small, np.full(10, 0.1))  # below the threshold nothing changes


def test_activity_penalty_value_and_gradient():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(6, 8))
    value = _core.activity_penalty(y, None, 0.3, 0.7)
    np.testing.assert_allclose(value, (0.3 * np.abs(y).sum() + 0.35 * (y ** 2).sum()) / 6, rtol=1e-14)
    layer = fm.ActivityRegularization(0.3, 0.7).build(8, "float64")
    upstream = rng.normal(size=(6, 8))

    x = y.copy()

    def objective():
        out = layer.forward(x, training=True)
        return float(np.sum(out * upstream)) + layer.penalty()

    layer.forward(x, training=True)
    dx = layer.backward(upstream)
    np.testing.assert_allclose(dx, numerical_gradient(objective, x), rtol=1e-6, atol=1e-8)


def test_maxout_layer_gradients_by_finite_differences():
    rng = np.random.default_rng(5)
    layer = fm.Maxout(4, pieces=3).build(6, "float64", seed=0)
    x = rng.normal(size=(5, 6))
    upstream = rng.normal(size=(5, 4))
    def objective():
        return float(np.sum(layer.forward(x) * upstream))

    layer.forward(x)
    dx = layer.backward(upstream)
    grads = [g.copy() for g in layer.grads]
    np.testing.assert_allclose(dx, numerical_gradient(objective, x), rtol=1e-6, atol=1e-8)
    for param, grad in zip(layer.params, grads):  # the parameters are perturbed in place
        np.testing.assert_allclose(grad, numerical_gradient(objective, param), rtol=1e-6, atol=1e-8)


def test_dropout_gradient_with_a_fixed_mask():
    rng = np.random.default_rng(6)
    layer = fm.Dropout(0.4, seed=11).build(10, "float64")
    layer._stream = 3  # fixes the mask
    x = rng.normal(size=(4, 10))
    upstream = rng.normal(size=(4, 10))
    layer.forward(x, training=True)
    dx = layer.backward(upstream)
    numeric = numerical_gradient(lambda: float(np.sum(layer.forward(x, training=True) * upstream)), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)
    assert np.array_equal(layer.forward(x, training=False), x)  # identity at inference


def make_data(n=40, d=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


NETS = {
    "dropout": lambda: [fm.Dense(12, "relu"), fm.Dropout(0.3), fm.Dense(3)],
    "noise": lambda: [fm.GaussianNoise(0.2), fm.Dense(10, "tanh"), fm.GaussianNoise(0.1), fm.Dense(3)],
    "activity": lambda: [fm.Dense(10, "relu"), fm.ActivityRegularization(0.01, 0.02), fm.Dense(3)],
    "maxout": lambda: [fm.Maxout(8, pieces=3, l2=0.01), fm.Dropout(0.2), fm.Dense(3, max_norm=0.5)],
    "max_norm": lambda: [fm.Dense(9, "relu", max_norm=0.4), fm.Dense(3, max_norm=1.0)],
}
OPTIMIZERS = {
    "sgd": lambda: fm.SGD(lr=0.05, momentum=0.9),
    "sgd-plain": lambda: fm.SGD(lr=0.05),
    "adam-clipnorm": lambda: fm.Adam(lr=0.01, clipnorm=0.5),
    "sgd-clipvalue": lambda: fm.SGD(lr=0.05, clipvalue=0.01),
}


@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_equals_layer_path(net, opt, batch_size, dtype):
    X, y = make_data()
    models = []
    for use_engine in (True, False):
        model = fm.Sequential(NETS[net](), input_dim=7, dtype=dtype, seed=5)
        model.compile("softmax_cross_entropy", OPTIMIZERS[opt]())
        model._use_engine = use_engine
        history = model.fit(X, y, epochs=2, batch_size=batch_size)
        models.append((model, history))
    (a, ha), (b, hb) = models
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-6 if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-5 if dtype == "float32" else 1e-12)


def test_max_norm_holds_after_training():
    X, y = make_data()
    model = fm.Sequential([fm.Dense(9, "relu", max_norm=0.4), fm.Dense(3)], input_dim=7, seed=0)
    model.compile("softmax_cross_entropy", fm.SGD(lr=0.5))
    model.fit(X, y, epochs=3, batch_size=4)
    assert np.linalg.norm(model.layers[0].weight, axis=0).max() <= 0.4 * (1 + 1e-6)


def test_dropout_is_off_in_predict_and_evaluate():
    X, y = make_data()
    with_dropout = fm.Sequential([fm.Dense(12, "relu"), fm.Dropout(0.5), fm.Dense(3)], input_dim=7,
                                 dtype="float64", seed=1).compile("cross_entropy")
    plain = fm.Sequential([fm.Dense(12, "relu"), fm.Dense(3)], input_dim=7, dtype="float64",
                          seed=1).compile("cross_entropy")
    plain.set_weights(with_dropout.get_weights())
    assert np.array_equal(with_dropout.predict(X), plain.predict(X))
    assert with_dropout.evaluate(X, y) == plain.evaluate(X, y)


def test_bad_regularization_settings():
    with pytest.raises(ValueError, match="rate"):
        fm.Dropout(1.0)
    with pytest.raises(ValueError, match="stddev"):
        fm.GaussianNoise(-1)
    with pytest.raises(ValueError, match="max_norm"):
        fm.Dense(3, max_norm=0)
    with pytest.raises(ValueError, match="pieces"):
        fm.Maxout(3, pieces=0)
    with pytest.raises(ValueError, match="clipnorm"):
        fm.SGD(clipnorm=-1)
