"""Central finite differences in float64 (as sklearn's test_mlp.py::test_gradient).

numerical_gradient(f, x) perturbs x in place, one element at a time, and restores it:
    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)
whose error is O(eps^2 f''') + O(ulp(f) / eps): about 1e-10 for eps = 1e-6 on smooth functions
of order one, well inside rtol 1e-6 / atol 1e-8.
"""
import numpy as np

EPS = 1e-6
RTOL = 1e-6
ATOL = 1e-8


def numerical_gradient(f, x, eps=EPS):
    """d f / d x for a scalar function f() that reads the float64 array x (perturbed in place)."""
    assert x.dtype == np.float64, "finite differences need float64"
    grad = np.zeros(x.shape, np.float64)
    flat = x.reshape(-1)  # a view: x must be contiguous
    assert np.shares_memory(flat, x) or x.size == 0
    g = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        fp = float(f())
        flat[i] = orig - eps
        fm = float(f())
        flat[i] = orig
        g[i] = (fp - fm) / (2.0 * eps)
    return grad


def assert_gradient_close(analytic, numeric, rtol=RTOL, atol=ATOL, what="gradient"):
    analytic = np.asarray(analytic, np.float64)
    numeric = np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} vs {numeric.shape}"
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=what)


def model_numerical_gradients(model, value_fn, eps=EPS):
    """Finite-difference gradients of value_fn() w.r.t. every array of model.get_weights(),
    setting perturbed weights with model.set_weights(); the weights are restored afterwards."""
    weights = [w.astype(np.float64, copy=True) for w in model.get_weights()]

    def f():
        model.set_weights(weights)
        return value_fn()

    try:
        return [numerical_gradient(f, w, eps) for w in weights]
    finally:
        model.set_weights(weights)


def away_from(values, points, margin):
    """True if every value is at least `margin` away from every point (kinks, thresholds)."""
    values = np.asarray(values, np.float64)
    return all(np.all(np.abs(values - p) > margin) for p in np.atleast_1d(points))
