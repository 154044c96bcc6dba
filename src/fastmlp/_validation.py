"""Input checks shared by the front ends; messages follow scikit-learn's wording where it has one."""
import numbers

import numpy as np

from . import _core

_FLOAT_DTYPES = {np.dtype(np.float32): np.float32, np.dtype(np.float64): np.float64}


def resolve_dtype(dtype):
    """float32 or float64 from a name, a NumPy dtype or a type."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dt}")
    return dt


def _reject_non_numeric(arr, name):
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "c":
            raise ValueError(f"Complex data not supported\n{name}")
        raise ValueError(
            f"{name} must contain numbers; got an array of dtype {arr.dtype}. "
            "Convert it to a numeric array first (e.g. encode strings or categories)."
        )


def check_finite(arr, name, n_threads=1):
    # A large array takes one pass of fastmlp's own check (exponent bits, on n_threads threads,
    # without the GIL; MNIST's X: 6.6-8 ms on one thread where numpy's sum took 10-15), or for
    # other dtypes and layouts the sum: finite means every element is. A failed check (NaN,
    # infinity, or a sum overflowing from huge finite values) takes the exact look with min and
    # max, which propagate NaN and show infinities. A small array is looked at directly: the
    # sum's errstate guards cost more than its boolean copy (one MNIST row: 2.1 instead of
    # 4.2 us, about 5% of a train_on_batch step).
    if arr.dtype.kind != "f" or not arr.size:
        return
    if arr.size <= 4096:
        if np.isfinite(arr).all():
            return
    else:
        ok = _core.all_finite(arr, n_threads)
        if ok:
            return
        if ok is None:
            with np.errstate(over="ignore", invalid="ignore"):
                if np.isfinite(np.sum(arr)):
                    return
    if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        if np.isnan(arr).any():
            raise ValueError(f"Input {name} contains NaN.")
        raise ValueError(
            f"Input {name} contains infinity or a value too large for dtype('{arr.dtype}')."
        )


def check_array(X, dtype, name="X", n_features=None, owner="this model", allow_empty=False,
                finite=True, n_threads=1):
    """A finite 2-D float array of `dtype` with at least one sample and one feature.

    Keeps the caller's array when it already fits (no copy); otherwise converts. Arrays with
    negative or odd strides are copied, since the kernels take positive element strides."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(f"{name} is a sparse matrix; fastmlp needs dense data: use {name}.toarray().")
    arr = np.asarray(X)
    _reject_non_numeric(arr, name)
    if arr.ndim == 1:
        raise ValueError(
            f"Expected 2D array, got 1D array instead:\narray={arr}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a single "
            "feature or array.reshape(1, -1) if it contains a single sample."
        )
    if arr.ndim != 2:
        raise ValueError(f"Found array with dim {arr.ndim}. Expected <= 2 ({name} must be 2-D).")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if arr.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but {owner} is expecting {n_features} "
            "features as input."
        )
    arr = arr.astype(dtype, copy=False)
    itemsize = arr.itemsize
    if any(s <= 0 or s % itemsize for s in arr.strides) and arr.size:
        arr = np.ascontiguousarray(arr)
    if finite:
        check_finite(arr, name, n_threads)
    return arr


def check_consistent_length(X, y):
    if len(X) != len(y):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{len(X)}, {len(y)}]"
        )


def check_sample_weight(sample_weight, n_samples, dtype):
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        return np.full(n_samples, sample_weight, dtype=dtype)
    sw = np.asarray(sample_weight)
    _reject_non_numeric(sw, "sample_weight")
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == {sw.shape}, expected ({n_samples},)!"
        )
    sw = np.ascontiguousarray(sw, dtype=dtype)
    check_finite(sw, "sample_weight")
    if (sw < 0).any():
        raise ValueError("Negative values in data passed to `sample_weight`")
    return sw


def check_positive_int(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
