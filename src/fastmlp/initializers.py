"""Weight initialisation schemes. Each takes (shape, rng, fan_in, fan_out) and returns float64.

glorot_* (Glorot & Bengio 2010): variance 2 / (fan_in + fan_out);
he_* (He et al. 2015): variance 2 / fan_in, for the ReLU family;
lecun_* (LeCun et al. 1998): variance 1 / fan_in; orthogonal (Saxe et al. 2014).
A number means a constant; an array is copied as is (its shape must match)."""
import numbers

import numpy as np


def zeros(shape, rng, fan_in, fan_out):
    return np.zeros(shape)


def ones(shape, rng, fan_in, fan_out):
    return np.ones(shape)


def glorot_uniform(shape, rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def glorot_normal(shape, rng, fan_in, fan_out):
    return rng.normal(0.0, np.sqrt(2.0 / max(1, fan_in + fan_out)), shape)


def he_uniform(shape, rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / max(1, fan_in))
    return rng.uniform(-limit, limit, shape)


def he_normal(shape, rng, fan_in, fan_out):
    return rng.normal(0.0, np.sqrt(2.0 / max(1, fan_in)), shape)


def lecun_uniform(shape, rng, fan_in, fan_out):
    limit = np.sqrt(3.0 / max(1, fan_in))
    return rng.uniform(-limit, limit, shape)


def lecun_normal(shape, rng, fan_in, fan_out):
    return rng.normal(0.0, np.sqrt(1.0 / max(1, fan_in)), shape)


def orthogonal(shape, rng, fan_in, fan_out):
    rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the result uniformly distributed (Mezzadri 2007)
    if rows < cols:
        q = q.T
    return q.reshape(shape)


def uniform(low=-0.05, high=0.05):
    def init(shape, rng, fan_in, fan_out):
        return rng.uniform(low, high, shape)
    init.__name__ = f"uniform({low}, {high})"
    return init


def normal(mean=0.0, std=0.05):
    def init(shape, rng, fan_in, fan_out):
        return rng.normal(mean, std, shape)
    init.__name__ = f"normal({mean}, {std})"
    return init


def constant(value):
    def init(shape, rng, fan_in, fan_out):
        return np.full(shape, float(value))
    init.__name__ = f"constant({value})"
    return init


_BY_NAME = {f.__name__: f for f in (zeros, ones, glorot_uniform, glorot_normal, he_uniform,
                                     he_normal, lecun_uniform, lecun_normal, orthogonal)}
_BY_NAME.update({"xavier_uniform": glorot_uniform, "xavier_normal": glorot_normal,
                 "kaiming_uniform": he_uniform, "kaiming_normal": he_normal,
                 "uniform": uniform(), "normal": normal()})


def get(spec):
    """An initializer from a name, a number, an array or a callable."""
    if callable(spec):
        return spec
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown initializer {spec!r}. Choose one of: {', '.join(sorted(_BY_NAME))}, "
                "a number, an array or a callable."
            ) from None
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return constant(spec)
    arr = np.asarray(spec)
    if arr.dtype.kind in "biuf":
        def from_array(shape, rng, fan_in, fan_out):
            if arr.shape != tuple(shape):
                raise ValueError(f"initial array has shape {arr.shape}, expected {tuple(shape)}")
            return arr.astype(np.float64)
        return from_array
    raise TypeError(f"Cannot use {spec!r} as an initializer")


def fill(param, spec, rng, fan_in, fan_out):
    """Initialise the view `param` in place."""
    values = get(spec)(param.shape, rng, fan_in, fan_out)
    if not np.all(np.isfinite(values)):
        raise ValueError("the initializer produced NaN or infinite values")
    param[...] = values
