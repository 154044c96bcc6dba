"""Which path fastmlp's GEMM takes for given operands (the driver's C testing hooks, via ctypes)."""
import ctypes

import numpy as np

from fastmlp import _core

_LIB = ctypes.CDLL(_core.__file__)


def takes_rows(a, b):
    """Whether C := A B takes the row path (fm_gemm_takes_rows_f32/f64)."""
    (m, k), n = a.shape, b.shape[1]
    fn = getattr(_LIB, "fm_gemm_takes_rows_" + ("f32" if a.dtype == np.float32 else "f64"))
    fn.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_void_p] + [ctypes.c_int64] * 3
    size = a.itemsize
    return bool(fn(m, n, k, a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
                   b.strides[1] // b.itemsize))


ZERO_MODES = ("dense", "skip", "halves", "quarters")


def zero_mode(a, b):
    """How the blocked path treats the zero columns of A in C := A B (fm_gemm_zero_mode_of_*):
    "dense" (not skipped), "skip", "halves" (slivers split in two) or "quarters" (4-row slivers)."""
    (m, k) = a.shape
    fn = getattr(_LIB, "fm_gemm_zero_mode_of_" + ("f32" if a.dtype == np.float32 else "f64"))
    fn.argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] + [ctypes.c_int64] * 3
    size = a.itemsize
    return ZERO_MODES[fn(m, k, a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
                         b.strides[1] // b.itemsize)]
