"""Initialisers: the documented distributions, the activation-dependent default, and arrays."""
import numpy as np
import pytest

import fastmlp as fm
from fastmlp import initializers as init

FAN_IN, FAN_OUT = 400, 300
SHAPE = (FAN_IN, FAN_OUT)


@pytest.mark.parametrize("name, var", [
    ("glorot_uniform", 2 / (FAN_IN + FAN_OUT)), ("glorot_normal", 2 / (FAN_IN + FAN_OUT)),
    ("he_uniform", 2 / FAN_IN), ("he_normal", 2 / FAN_IN),
    ("lecun_uniform", 1 / FAN_IN), ("lecun_normal", 1 / FAN_IN),
])
def test_variance_scaling_initialisers(name, var):
    w = init.get(name)(SHAPE, np.random.default_rng(0), FAN_IN, FAN_OUT)
    assert w.shape == SHAPE
    assert abs(w.mean()) < 4 * np.sqrt(var / w.size)
    assert abs(w.var() / var - 1) < 0.02  # 120k draws: relative sd of the variance ~0.4-0.6%
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3 * var)


def test_orthogonal_has_orthonormal_columns_or_rows():
    rng = np.random.default_rng(1)
    tall = init.orthogonal((50, 20), rng, 50, 20)
    np.testing.assert_allclose(tall.T @ tall, np.eye(20), atol=1e-12)
    wide = init.orthogonal((20, 50), rng, 20, 50)
    np.testing.assert_allclose(wide @ wide.T, np.eye(20), atol=1e-12)


def test_constants_arrays_and_callables():
    rng = np.random.default_rng(2)
    assert np.array_equal(init.get("zeros")((2, 3), rng, 2, 3), np.zeros((2, 3)))
    assert np.array_equal(init.get(0.01)((3,), rng, 2, 3), np.full(3, 0.01))
    given = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(init.get(given)((2, 3), rng, 2, 3), given)
    with pytest.raises(ValueError, match="shape"):
        init.get(given)((3, 2), rng, 3, 2)
    with pytest.raises(ValueError, match="Unknown initializer"):
        init.get("glorot")
    lo_hi = init.uniform(-0.1, 0.2)((1000,), rng, 1, 1)
    assert lo_hi.min() >= -0.1 and lo_hi.max() < 0.2


def test_default_follows_the_activation_and_bias_option():
    relu = fm.Dense(300, "relu").build(400, "float64", seed=0)
    tanh = fm.Dense(300, "tanh").build(400, "float64", seed=0)
    assert abs(relu.weight.var() / (2 / 400) - 1) < 0.03             # He
    assert abs(tanh.weight.var() / (2 / (400 + 300)) - 1) < 0.03     # Glorot
    small_positive = fm.Dense(5, "relu", bias_initializer=0.01).build(3, "float64", seed=0)
    assert np.array_equal(small_positive.bias, np.full(5, 0.01))     # the notes' ReLU tip


def test_user_arrays_initialise_a_model():
    W = np.full((3, 2), 0.5)
    model = fm.Sequential([fm.Dense(2, kernel_initializer=W, bias_initializer=[1.0, 2.0])],
                          input_dim=3, dtype="float64")
    np.testing.assert_array_equal(model.get_weights()[0], W)
    np.testing.assert_array_equal(model.get_weights()[1], [1.0, 2.0])
