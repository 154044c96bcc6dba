"""Every binding function of fastmlp._core against the NumPy oracle (tests/reference.py).

Tolerances: float32 ~1e-5 and float64 ~1e-12, relative to the magnitude of the terms that make
up each result (for reductions: the sum of |terms|, since a sum's rounding error is a few ulps of
that whatever the summation order; see reference.gemm_error_scale).

GEMM runs with every micro-kernel this CPU has ("reference", "avx2", "avx512"), forced through
the kernels' testing hook fm_gemm_force_kernel (looked up with ctypes in the extension module).
"""
import ctypes
import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from gemm_paths import takes_rows, zero_mode
from fastmlp import _core
from fastmlp.losses import get_loss

DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
# below the smallest normal float32, relative accuracy is not promised (denormals)
ATOL = {np.dtype(np.float32): 1e-37, np.dtype(np.float64): 1e-300}
ACT = _core.ACTIVATIONS
LOSS = _core.LOSSES

# non-default parameters exercised for the parameterised activations
ACT_CASES = [(name, None) for name in ref.ACTIVATIONS] + [
    ("identity", 2.5), ("identity", -0.5), ("step", 0.3), ("sigmoid", 0.5), ("sigmoid", 3.0),
    ("leaky_relu", 0.2), ("elu", 0.7)]

# sizes around the micro-kernel tiles (MR 4/6/14 rows; NR 8..32 columns, 128 for wide tiles)
# and the k blocks (192..384), plus primes
SIZES = [0, 1, 2, 5, 13, 15, 16, 17, 31, 32, 33, 65, 127, 257]



# ---------------------------------------------------------------- helpers

def _lib():
    try:
        lib = ctypes.CDLL(_core.__file__)
        lib.fm_gemm_force_kernel.argtypes = [ctypes.c_char_p]
        lib.fm_gemm_kernel_available.argtypes = [ctypes.c_char_p]
        lib.fm_threads_for.argtypes = [ctypes.c_double, ctypes.c_int]
        return lib
    except (OSError, AttributeError):
        return None


LIB = _lib()


def available_kernels():
    if LIB is None:
        return ["auto"]
    return [k for k in ("reference", "avx2", "avx512") if LIB.fm_gemm_kernel_available(k.encode())]


@pytest.fixture(params=available_kernels())
def gemm_kernel(request):
    name = request.param
    if name != "auto":
        assert LIB.fm_gemm_force_kernel(name.encode()) == 0
        assert _core.gemm_kernel_name("float32") == name
        assert _core.gemm_kernel_name("float64") == name
    try:
        yield name
    finally:
        if LIB is not None:
            LIB.fm_gemm_force_kernel(b"auto")


def assert_parallel(work, n_threads=2):
    """The shape used by a thread-determinism test really runs on several threads."""
    if LIB is not None and _core.have_openmp():
        assert LIB.fm_threads_for(float(work), n_threads) == n_threads, (
            f"work {work} stays below the parallel threshold: the test would prove nothing")


def rtol(dtype):
    return RTOL[np.dtype(dtype)]


def assert_near(got, want, scale, dtype, what="", factor=1.0):
    """|got - want| <= factor * rtol(dtype) * scale elementwise (NaN fails)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    bound = factor * rtol(dtype) * np.broadcast_to(np.asarray(scale, np.float64), want.shape)
    bound = bound + ATOL[np.dtype(dtype)]
    err = np.abs(got - want)
    bad = ~(err <= bound) & ~(got == want)  # equal infinities are fine
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what} [{np.dtype(dtype).name}]: {int(bad.sum())} of {bad.size} elements off; "
            f"first at {idx}: got {got[idx]!r}, want {want[idx]!r}, bound {bound[idx]:.3g}")


def rand(rng, shape, dtype, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


# Matrices with a given memory layout, inside a larger base array filled with a sentinel so that
# writes outside the view are detected.
LAYOUTS = {
    "c": ((lambda r, c: (r, c)), lambda b, r, c: b),                        # contiguous
    "f": ((lambda r, c: (c, r)), lambda b, r, c: b.T),                      # transposed view
    "rs": ((lambda r, c: (2 * r + 1, c)), lambda b, r, c: b[1::2]),          # row stride 2c
    "cs": ((lambda r, c: (r, 3 * c + 1)), lambda b, r, c: b[:, 1::3]),       # column stride 3
    "fcs": ((lambda r, c: (2 * c, r + 2)), lambda b, r, c: b[::2, 1:-1].T),  # transposed + strided
    "neg": ((lambda r, c: (r, c)), lambda b, r, c: b[::-1, ::-1]),           # negative strides
    # contiguous, but starting one element past an aligned address (no SIMD alignment)
    "u": ((lambda r, c: (r * c + 1,)), lambda b, r, c: b[1:].reshape(r, c)),
}


def make(rng, shape, dtype, layout, sentinel=np.nan, values=None):
    """(view, base, mask): view has `shape` and `layout`, mask marks its elements in base."""
    base_shape, take = LAYOUTS[layout]
    base = np.full(base_shape(*shape), sentinel, dtype=dtype)
    mask = np.zeros(base.shape, bool)
    view = take(base, *shape)
    take(mask, *shape)[...] = True
    assert view.shape == tuple(shape)
    view[...] = rand(rng, shape, dtype) if values is None else values
    return view, base, mask


def assert_untouched(base, mask, sentinel, what):
    outside = base[~mask]
    if np.isnan(sentinel):
        ok = np.isnan(outside)
    else:
        ok = outside == sentinel
    assert ok.all(), f"{what}: {int((~ok).sum())} elements outside the output view were written"


def accepted(fn, *args):
    """Call a binding with rows inside wider arrays (row stride > cols). Its [:, ::1] arguments
    may refuse them (Cython demands C-contiguous arrays there): then a ValueError naming
    contiguity is fine. What must never happen is a silent misread; the caller checks the
    result when this returns True."""
    try:
        fn(*args)
    except ValueError as exc:
        assert "contiguous" in str(exc), exc
        return False
    return True


def wide(rng, shape, dtype, extra=3, fill=np.nan, values=None):
    """A C-contiguous-rows view (row stride > cols) of a wider array, for [:, ::1] arguments."""
    r, c = shape
    base = np.full((r, c + extra), fill, dtype=dtype)
    view = base[:, :c]
    view[...] = rand(rng, shape, dtype) if values is None else values
    return view, base


# ---------------------------------------------------------------- GEMM

def run_gemm_case(rng, m, n, k, dtype, la, lb, lc, alpha, beta, n_threads=1):
    a, _, _ = make(rng, (m, k), dtype, la)
    b, _, _ = make(rng, (k, n), dtype, lb)
    c, cbase, cmask = make(rng, (m, n), dtype, lc, sentinel=-7.0)
    if beta == 0:
        c[...] = np.nan  # C must never be read, so its NaNs must not leak
    c0 = c.copy()
    al, be = (np.float32(alpha), np.float32(beta)) if dtype == np.float32 else (alpha, beta)
    want = ref.gemm(a, b, c0, float(al), float(be))
    scale = ref.gemm_error_scale(a, b, np.nan_to_num(c0), float(al), float(be))
    _core.gemm(a, b, c, alpha, beta, n_threads)
    what = f"gemm m={m} n={n} k={k} a:{la} b:{lb} c:{lc} alpha={alpha} beta={beta}"
    assert_near(c, want, scale, dtype, what, factor=2.0)
    assert_untouched(cbase, cmask, -7.0, what)


TILE_TRIPLES = sorted(set(
    # edges of the register tiles: rows around 4/6/14/28, columns around 8/16/32/64/128
    [(m, n, 7) for m in (1, 2, 3, 4, 5, 6, 7, 13, 14, 15, 27, 28, 29) for n in (1, 15, 16, 17, 33)]
    + [(3, n, 5) for n in (31, 32, 63, 64, 65, 127, 128, 129, 257)]
    + [(m, 129, 3) for m in (1, 2, 15, 16, 17)]
    # k blocks (kc 256/384) and balanced splits
    + [(m, n, k) for m, n, k in itertools.product((5, 17), (9, 33), (191, 192, 193, 255, 256, 257,
                                                                  383, 384, 385, 769, 1031))]
    # the cross product of a few sizes of the list in the brief
    + list(itertools.product((0, 1, 13, 32, 65), (0, 1, 17, 31, 127), (0, 1, 16, 33, 257)))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_tile_edges(gemm_kernel, dtype):
    rng = np.random.default_rng(1)
    for i, (m, n, k) in enumerate(TILE_TRIPLES):
        la = ("c", "f", "rs", "cs")[i % 4]
        lb = ("c", "c", "f", "cs", "rs")[i % 5]  # B in place (csb == 1) most often
        lc = ("c", "cs", "f")[i % 3]
        run_gemm_case(rng, m, n, k, dtype, la, lb, lc, 1.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_one_column(gemm_kernel, dtype):
    """A GEMV (n = 1: a Dense(1) layer's forward) takes one-column dot tiles at any m: rows
    around the 4-row tiles, k around the vector width and its tail, B with any strides; the
    same bits on 1 and 2 threads."""
    rng = np.random.default_rng(14)
    for i, (m, k) in enumerate(itertools.product((1, 2, 3, 4, 5, 8, 9, 31, 32, 33, 100, 1030),
                                                 (64, 65, 100, 784))):
        run_gemm_case(rng, m, 1, k, dtype, ("c", "f", "rs", "cs")[i % 4],
                      ("c", "f", "cs", "rs")[i % 4], ("c", "cs")[i % 2], 1.0, 0.0)
    a = rng.standard_normal((3000, 784)).astype(dtype)
    b = rng.standard_normal((784, 1)).astype(dtype)
    assert_parallel(2 * 3000 * 784)
    got = [np.empty((3000, 1), dtype) for _ in range(2)]
    _core.gemm(a, b, got[0], 1.0, 0.0, 1)
    _core.gemm(a, b, got[1], 1.0, 0.0, 2)
    assert np.array_equal(got[0], got[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_all_layouts(gemm_kernel, dtype):
    rng = np.random.default_rng(2)
    for la, lb, lc in itertools.product(LAYOUTS, LAYOUTS, LAYOUTS):
        run_gemm_case(rng, 19, 37, 23, dtype, la, lb, lc, -0.75, 1.5)
    for la, lb in itertools.product(LAYOUTS, LAYOUTS):
        run_gemm_case(rng, 33, 70, 200, dtype, la, lb, "c", 1.0, 0.0)


def at_line_offset(values, ld, offset):
    """A copy of values (rows x cols) whose rows are ld elements apart and whose first element
    sits `offset` bytes into a 64-byte cache line."""
    rows, cols = values.shape
    item = values.dtype.itemsize
    raw = np.zeros(rows * ld * item + 128, np.uint8)
    start = (-raw.ctypes.data % 64) + offset
    base = raw[start:start + rows * ld * item].view(values.dtype).reshape(rows, ld)
    base[:, :cols] = values
    return base[:, :cols]


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_one_row_any_alignment_same_bits(gemm_kernel, dtype):
    # one or two rows times a transposed B whose rows start at any offset in a cache line: the
    # result does not depend on where the data sits (a misaligned start takes whole-line loads
    # and permutes), and matches the reference
    rng = np.random.default_rng(11)
    item = np.dtype(dtype).itemsize
    for rows, (n, k, ld) in itertools.product(
            (1, 2), [(37, 64, 64), (9, 48, 48), (20, 50, 64), (3, 200, 256)]):
        w = rand(rng, (n, k), dtype)
        a = rand(rng, (rows, k), dtype)
        outs = []
        for offset in range(0, 64, item):
            c = np.full((rows, n), np.nan, dtype)
            _core.gemm(a, at_line_offset(w, ld, offset).T, c, 1.0, 0.0)
            outs.append(c)
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), (rows, n, k, ld)
        assert_near(outs[0], ref.gemm(a, w.T, None), ref.gemm_error_scale(a, w.T, None), dtype,
                    f"{rows}-row gemm n={n} k={k}", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_b_in_place_any_alignment_same_bits(gemm_kernel, dtype):
    # B read in place by the register tiles (one or two vectors wide, masked tails, k over
    # several blocks), and X^T dZ of a narrow layer (computed as (dZ^T X)^T, X read in place;
    # past 1 MiB of X as whole lines, kernel.ukr_stream): with the rows at any offset in a
    # cache line (and at one row stride that is not whole lines), the same bits as at a line
    # start, and near the reference
    rng = np.random.default_rng(23)
    item = np.dtype(dtype).itemsize
    line = 64 // item
    for m, n, k, ld_extra in [(14, 40, 37, 0), (10, 16, 100, 0), (5, 31, 70, 0),
                              (28, 33, 300, 0), (3, 20, 90, 0), (200, 45, 600, 0),
                              (14, 40, 37, 3)]:
        a = rand(rng, (m, k), dtype)
        bv = rand(rng, (k, n), dtype)
        ld = -(-n // line) * line + ld_extra
        outs = []
        for offset in range(0, 64, item):
            c = np.full((m, n), np.nan, dtype)
            _core.gemm(a, at_line_offset(bv, ld, offset), c, 1.0, 0.0)
            outs.append(c)
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), (m, n, k, ld)
        assert_near(outs[0], ref.gemm(a, bv, None), ref.gemm_error_scale(a, bv, None), dtype,
                    f"gemm m={m} n={n} k={k} B in place", 2.0)
    for m, n, k in [(100, 10, 130), (50, 3, 700), (784, 10, 64), (784, 10, 400), (600, 13, 700),
                    (784, 20, 400)]:
        x = rand(rng, (k, m), dtype)
        dz = rand(rng, (k, n), dtype)
        outs = []
        for offset in range(0, 64, item):
            c = np.full((m, n), np.nan, dtype)
            _core.gemm(at_line_offset(x, -(-m // line) * line, offset).T, dz, c, 1.0, 0.0)
            outs.append(c)
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), (m, n, k)
        assert_near(outs[0], ref.gemm(x.T, dz, None), ref.gemm_error_scale(x.T, dz, None), dtype,
                    f"gemm X^T dZ m={m} n={n} k={k}", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (0.7, -1.3), (-2.0, 0.5),
                                        (0.0, 0.0), (0.0, 2.0), (1.0, -1.0)])
def test_gemm_alpha_beta(gemm_kernel, dtype, alpha, beta):
    rng = np.random.default_rng(3)
    for m, n, k in [(1, 1, 1), (14, 32, 5), (29, 65, 300), (7, 3, 0), (0, 4, 4), (6, 0, 3)]:
        for lc in ("c", "cs", "f"):
            run_gemm_case(rng, m, n, k, dtype, "c", "c", lc, alpha, beta)
            run_gemm_case(rng, m, n, k, dtype, "f", "cs", lc, alpha, beta)
    # the dot path (A by rows, B a transposed view, at most 16 rows): 1, 2 and 4-row tiles,
    # full and partial 4-column groups, short k for one to three rows
    for m, n, k in [(1, 37, 70), (2, 11, 65), (3, 9, 10), (5, 23, 129), (16, 6, 64)]:
        for lc in ("c", "f"):
            run_gemm_case(rng, m, n, k, dtype, "c", "f", lc, alpha, beta)
    # A by columns, n < nr: computed as C^T, whose tiles are stored by columns (10 rows of a
    # swapped tile: two transposed blocks for doubles)
    for m, n, k in [(300, 10, 40), (40, 13, 33), (29, 5, 20)]:
        run_gemm_case(rng, m, n, k, dtype, "f", "c", "c", alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_large_and_packed(gemm_kernel, dtype):
    rng = np.random.default_rng(4)
    # a larger odd problem, plain and transposed (k split into several blocks)
    run_gemm_case(rng, 517, 263, 1031, dtype, "c", "c", "c", 1.0, 0.0)
    run_gemm_case(rng, 517, 263, 1031, dtype, "f", "f", "cs", 0.5, -1.0)
    # m large enough that B is packed even with contiguous rows; columns over several nc blocks
    run_gemm_case(rng, 1537, 19, 21, dtype, "c", "c", "c", 1.0, 0.0)
    run_gemm_case(rng, 23, 1100, 45, dtype, "c", "cs", "c", 1.0, 2.0)
    run_gemm_case(rng, 40, 600, 50, dtype, "rs", "f", "f", 1.0, 0.0)
    # path edges: dot up to 16 rows (A by rows, B by columns), narrow n from 128 rows
    for m in (16, 17):
        run_gemm_case(rng, m, 100, 100, dtype, "c", "f", "c", 1.0, 0.5)
    for m in (127, 128, 200):
        run_gemm_case(rng, m, 10, 256, dtype, "c", "c", "cs", 1.0, 0.0)
    # narrow B^T packing: k not a whole number of vectors, B rows contiguous or spaced
    for m, lb in ((32, "c"), (64, "rs"), (200, "rs"), (200, "u")):
        run_gemm_case(rng, m, 10, 203, dtype, "c", lb, "c", 1.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_rows_4k_apart(gemm_kernel, dtype):
    # rows of A a multiple of 4 KiB apart (a layer of 512 doubles or 1024 floats, or a view of
    # fewer k) are packed, as they alias in L1: the same bits as A with unaliased rows, at 1
    # and 2 threads, and the reference's values; B in place or transposed, over k blocks
    rng = np.random.default_rng(21)
    per_4k = 4096 // np.dtype(dtype).itemsize
    for m, n, k, ld, lb in [(29, 100, per_4k, per_4k, "c"), (14, 17, per_4k, per_4k, "f"),
                            (13, 64, 300, per_4k, "c"), (61, 33, per_4k, 2 * per_4k, "f"),
                            (5, 40, per_4k, per_4k, "c")]:
        values = rand(rng, (m, k), dtype)
        aliased = np.zeros((m, ld), dtype)[:, :k]
        aliased[...] = values
        unaliased = np.zeros((m, k + 8), dtype)[:, :k]
        unaliased[...] = values
        b = rand(rng, (k, n), dtype) if lb == "c" else np.asfortranarray(rand(rng, (k, n), dtype))
        c0 = rand(rng, (m, n), dtype)
        outs = []
        for a, threads in ((unaliased, 1), (aliased, 1), (aliased, 2)):
            c = c0.copy()
            _core.gemm(a, b, c, -0.5, 2.0, threads)
            outs.append(c)
        what = f"gemm m={m} n={n} k={k} rows {ld} apart, b:{lb}"
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), what
        assert_near(outs[1], ref.gemm(values, b, c0, -0.5, 2.0),
                    ref.gemm_error_scale(values, b, c0, -0.5, 2.0), dtype, what, factor=2.0)
    # a short k (at most 128 floats) over B whose rows alias the same way takes 14-row tiles
    # instead of the short-k path: B by rows in place (n whole rows or a view of fewer), or
    # B^T copied by rows
    for m, n, k, ld, lb in [(256, per_4k, 100, per_4k, "c"), (20, per_4k - 24, 72, per_4k, "c"),
                            (33, per_4k, 64, per_4k, "c"), (40, per_4k, 128, per_4k, "f")]:
        a = rand(rng, (m, k), dtype)
        values = rand(rng, (k, n), dtype)
        # (B^T is copied by rows of n rounded up to 16: they alias when n does)
        aliased = np.zeros((k, ld), dtype)[:, :n] if lb == "c" else np.asfortranarray(values)
        unaliased = np.zeros((k, ld + 16), dtype)[:, :n]
        aliased[...] = values
        unaliased[...] = values
        c0 = rand(rng, (m, n), dtype)
        outs = []
        for b, threads in ((unaliased, 1), (aliased, 1), (aliased, 2)):
            c = c0.copy()
            _core.gemm(a, b, c, 1.5, -1.0, threads)
            outs.append(c)
        what = f"gemm m={m} n={n} k={k}, B's rows {ld} apart, b:{lb}"
        # (the two paths may sum a narrow edge tile in another order: not the same bits)
        assert np.array_equal(outs[1], outs[2]), what
        for out in outs:
            assert_near(out, ref.gemm(a, values, c0, 1.5, -1.0),
                        ref.gemm_error_scale(a, values, c0, 1.5, -1.0), dtype, what, factor=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_wide_b_over_k_blocks(gemm_kernel, dtype):
    # B by rows 4000+ bytes long over 2+ k blocks, from 128 rows: packed when its rows start at
    # different offsets in a cache line, in place when they are whole lines apart. The choice
    # must not depend on the thread count: a last sliver of 1-3 rows takes other tiles over
    # packed B (other bits), so 1, 2 and 3 threads must agree, whatever m leaves over
    rng = np.random.default_rng(22)
    k = 2 * (384 if dtype == np.float32 else 256) + 5  # 3 k blocks
    per_4k = 4096 // np.dtype(dtype).itemsize
    cases = [(m, n, ld) for m in (128, 255, 267) for n, ld in [(per_4k - 24, per_4k - 24),
                                                            (per_4k, per_4k),
                                                            (per_4k - 21, per_4k + 16)]]
    for m, n, ld in cases:
        a = rand(rng, (m, k), dtype)
        b = rand(rng, (k, ld), dtype)[:, :n]
        c0 = rand(rng, (m, n), dtype)
        outs = []
        for threads in (1, 2, 3):
            c = c0.copy()
            _core.gemm(a, b, c, 0.5, 1.0, threads)
            outs.append(c)
        what = f"gemm m={m} n={n} k={k}, B's rows {ld} apart"
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), what
        assert_near(outs[0], ref.gemm(a, b, c0, 0.5, 1.0), ref.gemm_error_scale(a, b, c0, 0.5, 1.0),
                    dtype, what, factor=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_last_columns_down_the_rows(gemm_kernel, dtype):
    # A by columns (X^T in place, or packed: rows 4 KiB apart) and a last tile of a few columns
    # (100 floats: 4 past 3 tiles; 50, 40: a vector and 2 or 8 more; 36: 4 past a tile): those run
    # as vectors down 8-14 rows, one FMA chain per element over the same k as a row tile, so
    # the columns come out with the same bits as inside a wider product, for every C layout,
    # alpha and beta; and match the reference, with zero columns of A skipped too
    rng = np.random.default_rng(23)
    per_4k = 4096 // np.dtype(dtype).itemsize
    k = 300
    for m, n in itertools.product((22, 50, 136), (100, 50, 40, 36)):  # slivers of 14 and 8-10
        n_wide = -(-n // 32) * 32  # whole 2-vector tiles
        for la in ("f", "4k"):
            if la == "f":
                a = rand(rng, (k, m), dtype).T
            else:
                a = rand(rng, (m, per_4k), dtype)[:, :k]
            b_wide = rand(rng, (k, n_wide), dtype)
            b = np.ascontiguousarray(b_wide[:, :n])
            for (alpha, beta), lc in zip([(1.0, 0.0), (0.5, -1.0), (-2.0, 0.25)], ("c", "f", "cs")):
                c0 = rand(rng, (m, n_wide), dtype)
                c, _, _ = make(rng, (m, n), dtype, lc, values=c0[:, :n])
                wide_c = c0.copy()
                _core.gemm(a, b, c, alpha, beta)
                _core.gemm(a, b_wide, wide_c, alpha, beta)
                what = f"gemm m={m} n={n} k={k} a:{la} c:{lc} alpha={alpha} beta={beta}"
                assert np.array_equal(c, wide_c[:, :n]), what
                assert_near(c, ref.gemm(a, b, c0[:, :n], alpha, beta),
                            ref.gemm_error_scale(a, b, c0[:, :n], alpha, beta), dtype, what, 2.0)
        # zero columns of A (k skipped) under a packed sliver
        a = rand(rng, (m, per_4k), dtype)[:, :k]
        a[:, ::3] = 0
        want = ref.gemm(a, b, None)
        c = np.full((m, n), np.nan, dtype)
        _core.gemm(a, b, c, 1.0, 0.0)
        assert_near(c, want, ref.gemm_error_scale(a, b, None), dtype,
                    f"gemm m={m} n={n} k={k} with zero columns", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_vector_plus_two_columns(gemm_kernel, dtype):
    # n one vector of doubles plus 1 or 2 (a 10-unit output layer): on Zen 4 the first 8 columns
    # in place and the rest as dot products on the same rows, in blocks of 8 rows (4-row tiles
    # below 5 rows left); k with and without a partial vector; C by rows, spaced or by columns
    rng = np.random.default_rng(42)
    for i, (m, n, k) in enumerate(itertools.product((15, 16, 17, 20, 21, 24, 29, 31, 32, 33, 300),
                                                    (9, 10), (64, 67, 256))):
        lc = ("c", "cs", "f")[i % 3]
        lb = ("c", "rs", "u")[i % 3]
        run_gemm_case(rng, m, n, k, dtype, "c", lb, lc, 1.0, 0.0)
        run_gemm_case(rng, m, n, k, dtype, "rs", "c", lc, -0.7, 1.3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_short_k(gemm_kernel, dtype):
    # k of less than a cache line per row of A (a weight gradient at batch 1-15), and on Zen 4
    # up to 512 bytes of k (float 128, double 64) with dense A: blocks of 4 rows across the
    # whole width on AVX-512, several blocks per kernel call (150 rows of 64 floats: calls of
    # 64 rows). Exact with integers, A and C in any layout, a last block of 1-3 rows, a last
    # tile narrower than 4 vectors (one tile of 1-4 vectors, the last masked: 100 floats leave
    # 36 columns, 120 leave 56; 90 and 120 doubles 26 and 24); with A by columns the last 1-7
    # floats or 1-4 doubles (68, 90, 100, 257 columns) as column tiles down the rows, a vector
    # of rows at a time, the last one partial (threads: see test_gemm_threads_bitwise)
    rng = np.random.default_rng(43)
    cases = list(itertools.product((4, 5, 6, 7, 9, 37, 150), (64, 68, 90, 100, 120, 257),
                                   (1, 2, 3, 7, 8, 15, 16, 33, 64, 65, 128, 129)))
    for i, (m, n, k) in enumerate(cases):
        la = ("c", "f", "rs", "cs")[i % 4]
        a, _, _ = make(rng, (m, k), dtype, la, values=rng.integers(-8, 9, (m, k)).astype(dtype))
        b, _, _ = make(rng, (k, n), dtype, ("c", "rs")[i % 2],
                       values=rng.integers(-8, 9, (k, n)).astype(dtype))
        assert_exact_gemm(rng, a, b, 1 + i % 2, (m, n, k, la))
        run_gemm_case(rng, m, n, k, dtype, la, "c", ("c", "cs", "f")[i % 3], -0.7, 1.3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_short_k_b_by_columns(gemm_kernel, dtype):
    # B by columns (dZ W^T of a 10-unit output layer) with a short k, from 16 rows: transposed
    # by rows into the workspace, then the short-k path (AVX-512). Exact with integers, B with
    # contiguous or strided columns, n not a multiple of 16 (the copy's padded rows), A by
    # rows or by columns, several calls' rows; A with zero columns keeps the blocked path
    rng = np.random.default_rng(46)
    cases = list(itertools.product((16, 17, 37, 150), (64, 100, 257), (1, 3, 10, 16, 64, 65, 129)))
    for i, (m, n, k) in enumerate(cases):
        la = ("c", "f")[i % 2]
        values = rng.integers(-8, 9, (m, k)).astype(dtype)
        if i % 3 == 0:
            values[:, ::3] = 0
        a, _, _ = make(rng, (m, k), dtype, la, values=values)
        b, _, _ = make(rng, (k, n), dtype, ("f", "fcs")[(i // 2) % 2],
                       values=rng.integers(-8, 9, (k, n)).astype(dtype))
        assert_exact_gemm(rng, a, b, 1 + i % 2, (m, n, k, la))
        run_gemm_case(rng, m, n, k, dtype, la, "f", "c", -0.7, 1.3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_one_row_streamed(gemm_kernel, dtype):
    # one row of C wider than a register tile (a batch-1 forward; AVX-512: kernel.row_stream,
    # C accumulated in place over whole rows of B): exact with integers, A with zero k to skip
    # (and a NaN among them, which is kept), k across the 512-k scan blocks, n across the
    # 16 KiB chunks of C and not a multiple of the vector width, B in place or strided; bitwise
    # the same for any thread count; alpha, beta and C by columns take the other paths
    rng = np.random.default_rng(48)
    cases = list(itertools.product((129, 257, 272, 300, 512, 2051, 4100),
                                   (1, 3, 16, 100, 513, 1100)))
    for i, (n, k) in enumerate(cases):
        values = rng.integers(-8, 9, (1, k)).astype(dtype)
        if i % 2:
            values[:, rng.random(k) < 0.8] = 0
        a, _, _ = make(rng, (1, k), dtype, ("c", "cs", "u")[i % 3], values=values)
        b, _, _ = make(rng, (k, n), dtype, ("c", "rs", "u")[i % 3],
                               values=rng.integers(-8, 9, (k, n)).astype(dtype))
        assert_exact_gemm(rng, a, b, 1 + i % 3, (n, k))
        run_gemm_case(rng, 1, n, k, dtype, "c", "c", ("c", "f")[i % 2], 1.0, 0.0)
        run_gemm_case(rng, 1, n, k, dtype, "cs", "c", "c", -0.7, 1.3)
    # B's rows (a multiple of 64 bytes apart) at every offset in a cache line: the same bits
    item = np.dtype(dtype).itemsize
    for n, k in ((272, 50), (300, 37), (3, 40), (1040, 9)):
        a = rand(rng, (1, k), dtype)
        w = rand(rng, (k, n), dtype)
        ld = -(-n * item // 64) * 64 // item
        outs = []
        for offset in range(0, 64, item):
            c = np.full((1, n), np.nan, dtype)
            _core.gemm(a, at_line_offset(w, ld, offset), c, 1.0, 0.0)
            outs.append(c)
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), (n, k)
        assert_near(outs[0], ref.gemm(a, w, None), ref.gemm_error_scale(a, w, None), dtype,
                    f"one-row gemm n={n} k={k}", 2.0)
    a = rng.integers(-8, 9, (1, 700)).astype(dtype)
    a[0, ::2] = 0
    a[0, 300] = np.nan
    b = rng.integers(1, 9, (700, 300)).astype(dtype)
    c = np.zeros((1, 300), dtype)
    _core.gemm(a, b, c, 1.0, 0.0)
    assert np.isnan(c).all()
    a = rand(rng, (1, 1100), dtype)
    a[0, rng.random(1100) < 0.5] = 0
    b = rand(rng, (1100, 3000), dtype)
    outs = []
    for nt in (1, 2, 3):
        c = np.empty((1, 3000), dtype)
        _core.gemm(a, b, c, 1.0, 0.0, nt)
        outs.append(c)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert_near(outs[0], ref.gemm(a, b, None), ref.gemm_error_scale(a, b, None), dtype,
                "one-row gemm", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_dz_wt_of_few_rows(gemm_kernel, dtype):
    # dZ W^T with W by columns at 17-64 rows runs as (W dZ^T)^T where m is within a quarter
    # tile of a multiple of the tile width (the epilogue then runs over C's rows: see
    # test_sgd_fused_into_the_weight_gradient_gemm_equals_layer_path at batch 64). Exact with
    # integers on both sides of each rounding, C by rows and strided rows
    rng = np.random.default_rng(47)
    for i, m in enumerate((17, 24, 25, 28, 29, 31, 32, 33, 45, 48, 57, 60, 63, 64, 65)):
        n, k = (300, 64) if i % 2 else (129, 16)
        a, _, _ = make(rng, (m, k), dtype, "c", values=rng.integers(-8, 9, (m, k)).astype(dtype))
        b, _, _ = make(rng, (k, n), dtype, ("f", "fcs")[i % 2],
                       values=rng.integers(-8, 9, (k, n)).astype(dtype))
        assert_exact_gemm(rng, a, b, 1 + i % 2, (m, n, k))
        run_gemm_case(rng, m, n, k, dtype, "c", "f", ("c", "rs")[i % 2], -0.7, 1.3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_zero_strides(gemm_kernel, dtype):
    """Broadcast operands (element stride 0) are legal strided matrices."""
    rng = np.random.default_rng(40)
    for m, n, k in [(5, 7, 3), (17, 33, 65), (30, 129, 400)]:
        row = rand(rng, (1, k), dtype)
        col = rand(rng, (k, 1), dtype)
        for a, b in [(np.broadcast_to(row, (m, k)), rand(rng, (k, n), dtype)),
                     (rand(rng, (m, k), dtype), np.broadcast_to(col, (k, n))),
                     (np.broadcast_to(row, (m, k)), np.broadcast_to(col, (k, n)))]:
            c = np.full((m, n), np.nan, dtype)
            _core.gemm(a, b, c, 1.0, 0.0)
            assert_near(c, ref.gemm(a, b, None), ref.gemm_error_scale(a, b, None), dtype,
                        f"gemm broadcast {m}x{n}x{k}", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_packed_b_threshold(gemm_kernel, dtype):
    rng = np.random.default_rng(41)
    for m in (1535, 1536):
        run_gemm_case(rng, m, 37, 19, dtype, "c", "c", "c", 1.0, 0.0)
        run_gemm_case(rng, m, 3, 300, dtype, "f", "c", "cs", 0.5, 0.5)


def test_gemm_shapes_property(gemm_kernel):
    kernel_runs = []

    @settings(max_examples=30, deadline=None)
    @given(m=st.sampled_from(SIZES), n=st.sampled_from(SIZES), k=st.sampled_from(SIZES),
           la=st.sampled_from(list(LAYOUTS)), lb=st.sampled_from(list(LAYOUTS)),
           lc=st.sampled_from(["c", "f", "rs", "cs", "fcs"]),
           ab=st.sampled_from([(1.0, 0.0), (0.7, -1.3), (1.0, 1.0), (-1.0, 0.0)]),
           dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
    def check(m, n, k, la, lb, lc, ab, dtype, seed):
        kernel_runs.append(1)
        run_gemm_case(np.random.default_rng(seed), m, n, k, dtype, la, lb, lc, *ab)

    check()
    assert kernel_runs


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_threads_bitwise(gemm_kernel, dtype):
    rng = np.random.default_rng(5)
    for (m, n, k), (la, lb, lc) in [((300, 200, 150), ("c", "c", "c")),
                                    ((301, 129, 400), ("f", "cs", "cs")),
                                    ((1600, 70, 33), ("c", "c", "f")),
                                    ((600, 530, 800), ("c", "c", "c")),     # A rows packed
                                    ((520, 512, 1031), ("rs", "f", "c")),
                                    ((3, 1000, 300), ("rs", "c", "c")),
                                    ((1, 4000, 300), ("c", "f", "c")),      # dot path, one row
                                    ((13, 700, 200), ("c", "f", "c")),      # dot path, 4-row tiles
                                    ((300, 10, 200), ("c", "c", "c")),      # narrow / vecdot
                                    ((3001, 256, 7), ("f", "c", "c")),      # short k
                                    ((1001, 256, 48), ("c", "c", "cs")),    # Zen 4
                                    ((301, 100, 100), ("f", "c", "c")),     # float: Zen 4
                                    ((203, 68, 40), ("f", "c", "c")),       # column tiles
                                    ((301, 256, 10), ("c", "f", "c")),      # B^T by rows
                                    ((32, 300, 64), ("c", "f", "c"))]:      # (W dZ^T)^T
        assert_parallel(2.0 * m * n * k)
        a, _, _ = make(rng, (m, k), dtype, la)
        b, _, _ = make(rng, (k, n), dtype, lb)
        c_init, _, _ = make(rng, (m, n), dtype, "c")
        outs = []
        for nt in (1, 2, 3):
            c, _, _ = make(rng, (m, n), dtype, lc, values=c_init)
            _core.gemm(a, b, c, 0.9, 0.3, nt)
            outs.append(np.array(c))
        assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2]), (m, n, k)
        assert_near(outs[0], ref.gemm(a, b, c_init, 0.9, 0.3),
                    ref.gemm_error_scale(a, b, c_init, 0.9, 0.3), dtype, "gemm threads", 2.0)


def assert_exact_gemm(rng, a, b, n_threads, what):
    """C := A B and C := A B + C with integer-valued operands equal the exact product."""
    (m, k), n = a.shape, b.shape[1]
    c0 = rng.integers(-50, 51, (m, n)).astype(a.dtype)
    want = np.asarray(a).astype(np.int64) @ np.asarray(b).astype(np.int64)
    for beta in (0.0, 1.0):
        c = np.full((m, n), np.nan, a.dtype) if beta == 0 else c0.copy()
        _core.gemm(a, b, c, 1.0, beta, n_threads)
        expect = want + (c0.astype(np.int64) if beta else 0)
        assert np.array_equal(c, expect.astype(a.dtype)), (what, beta)


def sparse_ints(rng, m, k, dtype, zero_cols=0.5, zero_elems=0.3):
    """Integer-valued A with MNIST-like zeros: whole k columns zero for every row (so that a
    sliver has zero columns to skip) and scattered zero elements. Small integers make every
    partial sum exact, whatever order and whichever k are skipped."""
    a = rng.integers(-4, 5, (m, k)).astype(dtype)
    a[:, rng.random(k) < zero_cols] = 0
    a[rng.random((m, k)) < zero_elems] = 0
    return a


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_zero_skipping_exact(gemm_kernel, dtype):
    """k columns where a sliver of A is all zero are skipped (the zero-skipping micro-kernels and
    scans); with exact integer data the result must equal the exact product, for A by rows, by
    columns (packed or not) and with other strides, across tile and k-block edges."""
    rng = np.random.default_rng(50)
    cases = [(m, n, k) for m in (1, 3, 4, 14, 15, 18, 29, 57, 70) for n in (64, 65, 257)
             for k in (16, 100, 385, 800)]
    for i, (m, n, k) in enumerate(cases):
        la = ("c", "f", "rs", "cs", "fcs", "neg")[i % 6]
        a, _, _ = make(rng, (m, k), dtype, la, values=sparse_ints(rng, m, k, dtype))
        b, _, _ = make(rng, (k, n), dtype, ("c", "f", "cs")[i % 3],
                       values=rng.integers(-8, 9, (k, n)).astype(dtype))
        assert_exact_gemm(rng, a, b, 1 + i % 2, (m, n, k, la))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_zero_skipping_keeps_nan_inf_and_threads(gemm_kernel, dtype):
    rng = np.random.default_rng(51)
    m, n, k = 29, 96, 300
    for la in ("c", "f"):
        vals = sparse_ints(rng, m, k, dtype, zero_cols=0.7)
        zero_col = int(np.flatnonzero(~vals.any(0))[5])
        vals[3, zero_col] = np.nan  # the only non-zero of its column: must not be skipped
        vals[17, zero_col] = np.inf
        vals[20] = -0.0  # a row of negative zeros is zero
        a, _, _ = make(rng, (m, k), dtype, la, values=vals)
        b = rng.integers(1, 9, (k, n)).astype(dtype)
        c = np.zeros((m, n), dtype)
        _core.gemm(a, b, c, 1.0, 0.0)
        assert np.isnan(c[3]).all() and np.isposinf(c[17]).all()
        finite = np.ones(m, bool)
        finite[[3, 17]] = False
        assert np.array_equal(c[finite], (np.nan_to_num(vals[finite]).astype(np.int64)
                                          @ b.astype(np.int64)).astype(dtype))
        # real-valued sparse data: bitwise the same for any thread count
        a2 = sparse_ints(rng, 301, 785, dtype) * rng.uniform(0.1, 1.0, (301, 785)).astype(dtype)
        b2 = rand(rng, (785, 256), dtype)
        outs = []
        for nt in (1, 2, 3):
            c2 = np.empty((301, 256), dtype)
            _core.gemm(a2 if la == "c" else np.asfortranarray(a2), b2, c2, 1.0, 0.0, nt)
            outs.append(c2)
        assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
        assert_near(outs[0], ref.gemm(a2, b2, None), ref.gemm_error_scale(a2, b2, None), dtype,
                    "sparse gemm", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_zero_skipping_decided_from_probed_slivers(gemm_kernel, dtype):
    """Whether zero columns are skipped at all is decided once per product from the slivers at
    1/4, 1/2 and 3/4 of m. A NaN in a row of B shows it: a skipped k never multiplies it (0 * NaN
    would be NaN). Sparse A (zero columns in every sliver) skips them everywhere; dense A (a
    zero column only in its first rows, which no probe reads) is multiplied in full."""
    rng = np.random.default_rng(53)
    m, n, k, top = 400, 64, 200, 84  # top: whole slivers of 4, 6 and 14 rows, all below the probes
    for la in ("c", "f"):
        sparse = sparse_ints(rng, m, k, dtype, zero_cols=0.5, zero_elems=0.0)
        col = int(np.flatnonzero(~sparse.any(0))[0])
        dense = rng.integers(1, 5, (m, k)).astype(dtype)
        dense[:top, ~sparse.any(0)] = 0  # as sparse as the sparse A: skipped, if scanned
        b = rng.integers(-8, 9, (k, n)).astype(dtype)
        b[col] = np.nan
        for vals, skipped in ((sparse, True), (dense, False)):
            a, _, _ = make(rng, (m, k), dtype, la, values=vals)
            c = np.zeros((m, n), dtype)
            _core.gemm(a, b, c, 1.0, 0.0)
            assert np.isfinite(c[:top]).all() == skipped, (la, skipped)
            assert np.isnan(c[top:]).all() == (vals is dense), la
            if skipped:
                assert np.array_equal(c, (vals.astype(np.int64) @ np.nan_to_num(b).astype(np.int64)
                                          ).astype(dtype))
    # a short k (48: the short-k path on Zen 4 in float when A is dense) still skips
    sparse = sparse_ints(rng, 400, 48, dtype, zero_cols=0.5, zero_elems=0.0)
    b = rng.integers(-8, 9, (48, 64)).astype(dtype)
    b[int(np.flatnonzero(~sparse.any(0))[0])] = np.nan
    c = np.zeros((400, 64), dtype)
    _core.gemm(sparse, b, c, 1.0, 0.0)
    assert np.array_equal(c, (sparse.astype(np.int64) @ np.nan_to_num(b).astype(np.int64)
                              ).astype(dtype))
    # fewer rows than one sliver: that sliver is the probe
    for rows in (5, 13):
        sparse = sparse_ints(rng, rows, k, dtype, zero_cols=0.5, zero_elems=0.0)
        b = rng.integers(-8, 9, (k, n)).astype(dtype)
        b[int(np.flatnonzero(~sparse.any(0))[0])] = np.nan
        c = np.zeros((rows, n), dtype)
        _core.gemm(sparse, b, c, 1.0, 0.0)
        assert np.array_equal(c, (sparse.astype(np.int64) @ np.nan_to_num(b).astype(np.int64)
                                  ).astype(dtype)), rows


def block_sparse(rng, m, k, dtype):
    """Integer A whose rows come in blocks of about 4 (at random edges), each block with its own
    zero columns (70% of k), as pixels of an image across a batch: slivers of 4 or 7 rows then
    have far fewer non-zero k than slivers of 14."""
    edges = [0] + sorted(rng.choice(np.arange(1, m), size=m // 4, replace=False)) + [m]
    vals = rng.integers(-4, 5, (m, k)).astype(dtype)
    for r0, r1 in zip(edges[:-1], edges[1:]):
        vals[r0:r1, rng.random(k) < 0.7] = 0
    return vals


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_zero_skipping_halves_and_quarters(gemm_kernel, dtype):
    """Block-sparse rows (block_sparse): with B by rows, kernels with 4-row wide tiles (AVX-512)
    run slivers of 4 rows, each over its own non-zero k; with B by columns (packed) they split
    14-row slivers in two halves; kernels with short slivers skip the zero columns of whole
    slivers. Exact with integer data, A by rows and by columns (in place or packed), beta 0 / 1,
    across 4-row, tile and k-block edges; bitwise the same for any thread count and C by rows
    or by columns with real values."""
    rng = np.random.default_rng(52)
    shapes = [(18, 100, 200), (31, 65, 130), (40, 96, 48), (57, 64, 385), (70, 257, 100),
              (1001, 96, 800), (300, 256, 1024)]
    for i, (m, n, k) in enumerate(shapes):
        vals = block_sparse(rng, m, k, dtype)
        for lb in ("c", "f"):
            mode = {"avx512": "quarters" if lb == "c" else "halves"}.get(gemm_kernel, "skip")
            b_vals = rng.integers(-8, 9, (k, n)).astype(dtype)
            for la in ("c", "f"):
                if la == lb == "f" and m > n:
                    continue  # computed as C^T = B^T A^T, B^T dense
                a, _, _ = make(rng, (m, k), dtype, la, values=vals)
                b, _, _ = make(rng, (k, n), dtype, lb, values=b_vals)
                assert zero_mode(a, b) == mode, (m, n, k, la, lb)
                assert_exact_gemm(rng, a, b, 1 + i % 2, (m, n, k, la, lb))
            a2 = vals * rng.uniform(0.1, 1.0, (m, k)).astype(dtype)
            b2, _, _ = make(rng, (k, n), dtype, lb, values=rand(rng, (k, n), dtype))
            outs = []
            for nt, order in ((1, "C"), (2, "C"), (3, "C"), (1, "F")):
                c2 = np.empty((m, n), dtype, order=order)
                _core.gemm(np.asfortranarray(a2) if i % 2 else a2, b2, c2, 1.0, 0.0, nt)
                outs.append(c2)
            assert all(np.array_equal(outs[0], o) for o in outs[1:]), (m, n, k, lb)
            assert_near(outs[0], ref.gemm(a2, b2, None), ref.gemm_error_scale(a2, b2, None),
                        dtype, "sliver halves / quarters", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_zero_skipping_quarters_of_one_sliver(gemm_kernel, dtype):
    """Fewer rows than one 14-row sliver (a batch of 6-13): with 4-row wide tiles and B by rows
    its slivers of 4 rows each skip their own zero columns; 5 rows stay one sliver. Exact with
    integer data, bitwise the same for 1 and 2 threads."""
    rng = np.random.default_rng(55)
    for i, (m, n, k) in enumerate(itertools.product((5, 6, 8, 11, 13), (64, 100), (48, 385))):
        vals = rng.integers(-4, 5, (m, k)).astype(dtype)
        for r0 in range(0, m, 4):  # blocks of 4 rows, each with its own zero columns
            vals[r0:r0 + 4, rng.random(k) < 0.6] = 0
        b = rng.integers(-8, 9, (k, n)).astype(dtype)
        want = "quarters" if gemm_kernel == "avx512" and m >= 6 else "skip"
        assert zero_mode(vals, b) == want, (m, n, k)
        assert_exact_gemm(rng, vals, b, 1 + i % 2, (m, n, k))
        a2 = vals * rng.uniform(0.1, 1.0, (m, k)).astype(dtype)
        b2 = rand(rng, (k, n), dtype)
        outs = []
        for nt in (1, 2):
            c2 = np.empty((m, n), dtype)
            _core.gemm(a2, b2, c2, 1.0, 0.0, nt)
            outs.append(c2)
        assert np.array_equal(outs[0], outs[1]), (m, n, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_block_sparse_input(gemm_kernel, dtype):
    """The fused bias and ReLU on the tiles of 4-row slivers (a first layer's sparse inputs):
    exact with integer data."""
    rng = np.random.default_rng(54)
    for batch, n_in, n_out in ((31, 200, 130), (300, 784, 256)):
        x = block_sparse(rng, batch, n_in, dtype)
        w = rng.integers(-8, 9, (n_in, n_out)).astype(dtype)
        b = rng.integers(-50, 51, n_out).astype(dtype)
        if gemm_kernel == "avx512":
            assert zero_mode(x, w) == "quarters"
        z = np.full((batch, n_out), np.nan, dtype)
        y = np.full((batch, n_out), np.nan, dtype)
        _core.dense_forward(x, w, b, z, y, ACT["relu"])
        want = x.astype(np.int64) @ w.astype(np.int64) + b.astype(np.int64)
        assert np.array_equal(z, want.astype(dtype)), batch
        assert np.array_equal(y, np.maximum(want, 0).astype(dtype)), batch


def pixel_major(rng, batch, pixels, dtype, density=0.2):
    """X^T of a sparse batch, as a weight gradient reads it (column-major A): every element
    non-zero with the given chance, so that single rows are much sparser than slivers, and a
    fifth of the pixels blank across the batch (an image's border)."""
    x = rng.integers(1, 5, (batch, pixels)).astype(dtype) * (rng.random((batch, pixels)) < density)
    x[:, rng.random(pixels) < 0.2] = 0
    return x.T


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_row_path(gemm_kernel, dtype):
    """X^T dZ with sparse pixel rows and a small dZ runs as one wide tile per row over that row's
    own non-zero k (AVX-512 and AVX2 kernels). Exact with integer data; with real data the same
    bits as the blocked path's zero-skipping tiles (A by rows) and for any thread count; the
    fused SGD form (alpha < 0, beta = 1) leaves the rows of blank pixels untouched, NaN and -0
    included."""
    rng = np.random.default_rng(53)
    shapes = [(784, 256, 32), (98, 128, 17), (33, 512, 16), (785, 256, 16)]
    if dtype == np.float32:
        shapes.append((784, 256, 64))
    for m, n, k in shapes:
        a = pixel_major(rng, k, m, dtype)
        b = rng.integers(-8, 9, (k, n)).astype(dtype)
        assert takes_rows(a, b) == (gemm_kernel in ("avx512", "avx2")), (m, n, k)
        assert_exact_gemm(rng, a, b, 1 + m % 2, (m, n, k))
        # real values: one FMA chain per element over the non-zero k, as the blocked path has
        a2 = a * rng.uniform(0.1, 1.0, a.shape).astype(dtype)
        b2 = rand(rng, (k, n), dtype)
        c0 = rand(rng, (m, n), dtype)
        blank = ~a2.any(1)
        assert blank.any()
        c0[np.flatnonzero(blank)[0], :3] = (np.nan, -0.0, 0.0)
        outs = []
        for nt in (1, 2, 3):
            c = c0.copy()
            _core.gemm(a2, b2, c, -0.01, 1.0, nt)
            outs.append(c)
        c = np.asfortranarray(c0)  # C stored by columns: the tiles' transposed store
        _core.gemm(a2, b2, c, -0.01, 1.0, 1)
        outs.append(np.ascontiguousarray(c))
        assert all(np.array_equal(o.view(np.uint8), outs[0].view(np.uint8)) for o in outs)
        assert np.array_equal(outs[0][blank].view(np.uint8), c0[blank].view(np.uint8))
        by_rows = np.ascontiguousarray(a2)
        assert not takes_rows(by_rows, b2)
        c = c0.copy()
        _core.gemm(by_rows, b2, c, -0.01, 1.0, 1)
        assert np.array_equal(c[~blank], outs[0][~blank]), (m, n, k)
        assert_near(outs[0][~blank], ref.gemm(a2, b2, c0, -0.01, 1.0)[~blank],
                    ref.gemm_error_scale(a2, b2, c0, -0.01, 1.0)[~blank], dtype, "row path", 2.0)
    # dense rows, rows as dense as ReLU activations (65%), or a dZ too large to stay in cache,
    # keep the blocked path
    dz = rng.random((32, 256)).astype(dtype)
    assert not takes_rows(rng.integers(1, 5, (32, 200)).astype(dtype).T, dz)
    relu = rng.random((32, 256)) * (rng.random((32, 256)) < 0.65)
    assert not takes_rows(relu.astype(dtype).T, dz)
    big = pixel_major(rng, 512, 784, dtype)
    assert not takes_rows(big, rng.random((512, 256)).astype(dtype))


def test_gemm_errors():
    a = np.ones((3, 4))
    with pytest.raises(ValueError):
        _core.gemm(a, np.ones((5, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        _core.gemm(a, np.ones((4, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        _core.gemm(a, np.ones((4, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one dtype.*float32, float64 and float64"):
        _core.gemm(a.astype(np.float32), np.ones((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="read-only"):
        c = np.zeros((3, 2))
        c.setflags(write=False)
        _core.gemm(a, np.ones((4, 2)), c)
    with pytest.raises(ValueError, match="b must be a 2-d float32 or float64 array.*1-d"):
        _core.gemm(a, np.ones(4), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="a must be .*format 'l'|a must be .*format 'q'"):
        _core.gemm(a.astype(np.int64), np.ones((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="b must be .*format '>d'"):  # byte-swapped
        _core.gemm(a, np.ones((4, 2), dtype=">f8"), np.zeros((3, 2)))
    misaligned = np.zeros(8 * 12 + 1, np.uint8)[1:].view(np.float64).reshape(3, 4)
    with pytest.raises(ValueError, match="a must be .*not aligned"):
        _core.gemm(misaligned, np.ones((4, 2)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="c must be a NumPy array, got list"):
        _core.gemm(a, np.ones((4, 2)), [[0.0, 0.0]] * 3)


# ---------------------------------------------------------------- activations

def act_inputs(rng, shape, dtype, name, param):
    """Random z in [-4, 4] with some exact special values (0 and step's threshold)."""
    z = rng.uniform(-4, 4, shape)
    if z.size:
        flat = z.reshape(-1)
        flat[:: 7] = 0.0
        if name == "step":
            flat[3::11] = ref.ACT_DEFAULT_PARAM["step"] if param is None else param
    return z.astype(dtype)


def act_fwd_scale(name, z, want):
    scale = np.abs(want)
    if name == "gelu":  # 1 + erf(z / sqrt 2) cancels for z < 0: an ulp of 1 times |z|
        scale = scale + 0.01 * np.abs(ref.f64(z))
    return scale


def act_bwd_scale(name, param, z, dy, want):
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    d = max(1.0, abs(p), 1.0 / p if name == "sigmoid" else 1.0)
    dy = np.abs(ref.f64(dy))
    extra = dy
    if name == "softmax" and dy.size:
        extra = dy + dy.max(axis=1, keepdims=True)
    # derivatives formed from y (y(1-y), 1-y^2, y+a) lose digits to cancellation: an ulp of 1
    return np.abs(want) + 0.1 * d * extra


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", ACT_CASES)
def test_act_forward(dtype, name, param):
    rng = np.random.default_rng(6)
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    for shape in [(0, 0), (0, 5), (4, 0), (1, 1), (7, 13), (64, 33), (3, 257)]:
        z = act_inputs(rng, shape, dtype, name, param)
        y = np.full(shape, np.nan, dtype)
        _core.act_forward(z, y, ACT[name], p)
        want = ref.act_forward(name, z, p)
        assert_near(y, want, act_fwd_scale(name, z, want), dtype, f"{name}({p}) {shape}", 4.0)
        # row strides (z and y rows inside wider arrays), and nothing written outside y
        zw, _ = wide(rng, shape, dtype, 5, values=z)
        yw, ybase = wide(rng, shape, dtype, 2, fill=-3.0)
        yw[...] = np.nan
        if accepted(_core.act_forward, zw, yw, ACT[name], p):
            assert_near(yw, want, act_fwd_scale(name, z, want), dtype, f"{name} strided", 4.0)
        assert (ybase[:, shape[1]:] == -3.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", ACT_CASES)
def test_act_backward(dtype, name, param):
    rng = np.random.default_rng(7)
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    for shape in [(0, 3), (5, 0), (1, 1), (7, 13), (64, 33), (2, 300)]:
        z = act_inputs(rng, shape, dtype, name, param)
        y = ref.act_forward(name, z, p).astype(dtype)
        dy = rand(rng, shape, dtype, -2, 2)
        want = ref.act_backward(name, z, dy, p)
        scale = act_bwd_scale(name, param, z, dy, want)
        dz = np.full(shape, np.nan, dtype)
        _core.act_backward(z, y, dy, dz, ACT[name], p)
        assert_near(dz, want, scale, dtype, f"{name}'({p}) {shape}", 4.0)
        # dz may alias dy
        g = dy.copy()
        _core.act_backward(z, y, g, g, ACT[name], p)
        assert_near(g, want, scale, dtype, f"{name}' in place", 4.0)
        # row strides, nothing written outside dz
        zw, _ = wide(rng, shape, dtype, 1, values=z)
        yw, _ = wide(rng, shape, dtype, 4, values=y)
        dyw, _ = wide(rng, shape, dtype, 2, values=dy)
        dzw, dzbase = wide(rng, shape, dtype, 3, fill=-3.0)
        dzw[...] = np.nan
        if accepted(_core.act_backward, zw, yw, dyw, dzw, ACT[name], p):
            assert_near(dzw, want, scale, dtype, f"{name}' strided", 4.0)
        assert (dzbase[:, shape[1]:] == -3.0).all()


EXTREMES = [0.0, 1e-30, -1e-30, 1.0, -1.0, 20.0, -20.0, 40.0, -40.0, 80.0, -80.0, 88.0, -88.0,
            89.0, -89.0, 100.0, -100.0, 700.0, -700.0, 710.0, -710.0, 745.0, -746.0, 1e4, -1e4]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", ACT_CASES)
def test_act_extreme_inputs(dtype, name, param):
    """exp/log1p stability: finite and correct at +-80 (float32 exp's edge), +-710 (float64's)
    and +-1e4."""
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    z = np.array([EXTREMES, EXTREMES[::-1]], dtype=dtype)
    y = np.empty_like(z)
    _core.act_forward(z, y, ACT[name], p)
    want = ref.act_forward(name, z, p)
    assert np.isfinite(want).all()
    assert np.isfinite(y).all(), f"{name}: non-finite outputs at {z[~np.isfinite(y)]}"
    assert_near(y, want, act_fwd_scale(name, z, want), dtype, f"{name} extreme", 4.0)
    dy = np.ones_like(z)
    dz = np.empty_like(z)
    _core.act_backward(z, want.astype(dtype), dy, dz, ACT[name], p)
    want_dz = ref.act_backward(name, z, dy, p)
    assert np.isfinite(dz).all(), f"{name}': non-finite at {z[~np.isfinite(dz)]}"
    assert_near(dz, want_dz, act_bwd_scale(name, param, z, dy, want_dz), dtype,
                f"{name}' extreme", 4.0)


# sigmoid, tanh, SiLU, ELU and softplus take exp / expm1 / log1p from fastmlp's own vectorisable
# code, not libm
EXP_ACTS = {"sigmoid": lambda x: 1 / (1 + np.exp(-x)), "tanh": np.tanh,
            "silu": lambda x: x / (1 + np.exp(-x)),
            "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
            "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXP_ACTS))
def test_act_exp_within_3_ulp(dtype, name):
    """Against long double on a dense sweep (every scale from 1e-6 to the underflow edge): at
    most 3 ulp where the result is normal, and subnormal results to within 3 of their spacing."""
    rng = np.random.default_rng(11)
    lo = -110.0 if dtype == np.float32 else -750.0
    x = np.concatenate([rng.standard_normal(20000) * s for s in (1e-6, 1e-3, 0.1, 1, 3, 10, 40)]
                       + [np.linspace(lo, 30, 40001), np.linspace(-1e-3, 1e-3, 2001)]).astype(dtype)
    y = np.empty_like(x)
    _core.act_forward(x[None, :], y[None, :], ACT[name], 1.0)
    want = EXP_ACTS[name](x.astype(np.longdouble))
    spacing = np.spacing(np.abs(want).astype(dtype)).astype(np.longdouble)
    if name == "silu":  # x times a subnormal sigmoid keeps only the sigmoid's few digits
        spacing = np.maximum(spacing, np.abs(x) * np.finfo(dtype).smallest_subnormal)
    err = np.abs(y.astype(np.longdouble) - want) / spacing
    assert err.max() <= 3.0, f"{name}: {float(err.max()):.2f} ulp at x = {x[np.argmax(err)]!r}"


def gelu_errors(z, y, dz):
    """|y - z Phi(z)| and |dz - (Phi(z) + z phi(z))| of each element, with the scale
    |Phi| + |z phi| of the derivative, from 30-digit values (mpmath)."""
    with mpmath.workdps(30):
        rows = []
        for v, g, d in zip(z.tolist(), y.tolist(), dz.tolist()):
            v = mpmath.mpf(v)
            cdf, pdf = mpmath.ncdf(v), mpmath.npdf(v)
            rows.append([float(abs(g - v * cdf)), float(abs(d - (cdf + v * pdf))),
                         float(v * cdf), float(cdf + abs(v) * pdf)])
    return np.array(rows).T


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_within_5_ulp(dtype):
    """GELU and its derivative against 30-digit values, from 1e-6 to beyond the underflow edge:
    the tail keeps its relative accuracy (0.5 z (1 + erf(z / sqrt 2)) was 1.6e7 ulp off in
    float at z = -8.5). The derivative Phi + z phi vanishes near z = -0.75, so its error is
    measured against |Phi| + |z phi|."""
    rng = np.random.default_rng(13)
    zmin = -15.0 if dtype == np.float32 else -39.0
    z = np.concatenate([rng.standard_normal(600) * s for s in (1e-6, 1e-2, 1, 3)]
                       + [np.linspace(zmin, 9, 2401)]).astype(dtype)
    y, dz = np.empty_like(z), np.empty_like(z)
    _core.act_forward(z[None, :], y[None, :], ACT["gelu"], 1.0)
    _core.act_backward(z[None, :], y[None, :], np.ones_like(z)[None, :], dz[None, :],
                       ACT["gelu"], 1.0)
    err, err_d, want, scale_d = gelu_errors(z, y, dz)
    # z times a subnormal Phi (or phi) keeps only its few digits
    floor = np.abs(z.astype(np.float64)) * np.finfo(dtype).smallest_subnormal
    ulp = err / np.maximum(np.spacing(np.abs(want).astype(dtype)).astype(np.float64), floor)
    assert ulp.max() <= 5.0, f"GELU: {ulp.max():.2f} ulp at z = {z[np.argmax(ulp)]!r}"
    ulp_d = err_d / np.maximum(np.spacing(scale_d.astype(dtype)).astype(np.float64), floor)
    assert ulp_d.max() <= 5.0, f"GELU': {ulp_d.max():.2f} ulp at z = {z[np.argmax(ulp_d)]!r}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXP_ACTS) + ["gelu"])
def test_act_exp_special_values_and_any_position(dtype, name):
    """Signed zeros, infinities and NaN; and an element's bits do not depend on where it sits in
    a row (vector body or remainder)."""
    sv = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype)
    y = np.empty_like(sv)
    _core.act_forward(sv[None, :], y[None, :], ACT[name], 1.0)
    zero = {"sigmoid": 0.5, "tanh": 0.0, "silu": 0.0, "elu": 0.0,
            "softplus": dtype(np.log(2)), "gelu": 0.0}[name]
    assert y[0] == zero and y[1] == zero and np.isnan(y[4])
    if name in ("tanh", "silu", "gelu"):
        assert not np.signbit(y[0]) and np.signbit(y[1])
    assert y[2] == {"sigmoid": 1.0, "tanh": 1.0, "silu": np.inf, "elu": np.inf,
                    "softplus": np.inf, "gelu": np.inf}[name]
    if name not in ("silu", "gelu"):  # -inf * 0, as libm's sigmoid and erf gave: NaN
        assert y[3] == {"sigmoid": 0.0, "tanh": -1.0, "elu": -1.0, "softplus": 0.0}[name]
    x = np.random.default_rng(12).uniform(-30, 30, 67).astype(dtype)
    full = np.empty_like(x)
    _core.act_forward(x[None, :], full[None, :], ACT[name], 1.0)
    for start in range(0, 20):
        for n in (1, 3, 7, 16, 33):
            part = np.empty(n, dtype)
            _core.act_forward(np.ascontiguousarray(x[None, start:start + n]), part[None, :],
                              ACT[name], 1.0)
            assert np.array_equal(part, full[start:start + n])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_extreme_rows(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [80.0, 80.0, -80.0], [0.0, 0.0, 0.0],
                  [-1e4, -9999.0, -1e4]], dtype)
    y = np.empty_like(z)
    _core.act_forward(z, y, ACT["softmax"])
    assert np.isfinite(y).all()
    assert_near(y, ref.softmax(z), 1.0, dtype, "softmax extreme", 4.0)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 40), cols=st.integers(1, 300), spread=st.sampled_from([1.0, 30.0, 1e3]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_softmax_rows_sum_to_one(rows, cols, spread, dtype, seed):
    z = np.random.default_rng(seed).uniform(-spread, spread, (rows, cols)).astype(dtype)
    y = np.empty_like(z)
    _core.act_forward(z, y, ACT["softmax"])
    assert (y >= 0).all() and (y <= 1).all()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y.astype(np.float64).sum(axis=1), 1.0, rtol=0, atol=tol)
    assert_near(y, ref.softmax(z), 1.0, dtype, "softmax", 4.0)
    # in place (dense_forward applies its softmax to y in place)
    _core.act_forward(z, z, ACT["softmax"])
    assert np.array_equal(z, y)


def test_act_errors():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError):
        _core.act_forward(z, np.zeros((3, 5)), ACT["relu"])
    with pytest.raises(ValueError):
        _core.act_forward(z, np.zeros((4, 4)), ACT["relu"])
    with pytest.raises(ValueError):
        _core.act_backward(z, z, np.zeros((3, 5)), np.zeros((3, 4)), ACT["relu"])
    with pytest.raises(ValueError):
        _core.act_backward(z, np.zeros((2, 4)), z, np.zeros((3, 4)), ACT["relu"])
    with pytest.raises(ValueError):
        _core.act_backward(z, z, z, np.zeros((3, 3)), ACT["relu"])
    for kind in (-1, len(ACT), 99):
        with pytest.raises(ValueError):
            _core.act_forward(z, np.zeros((3, 4)), kind)
        with pytest.raises(ValueError):
            _core.act_backward(z, z, z, np.zeros((3, 4)), kind)
    for bad_t in (0.0, -1.0):
        with pytest.raises(ValueError):
            _core.act_forward(z, np.zeros((3, 4)), ACT["sigmoid"], bad_t)
    with pytest.raises(ValueError):
        _core.act_forward(z, np.zeros((3, 4)), ACT["elu"], -0.5)
    with pytest.raises((TypeError, ValueError)):
        _core.act_forward(z, np.zeros((3, 4), np.float32), ACT["relu"])


# ---------------------------------------------------------------- PReLU and colsum

@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu(dtype):
    rng = np.random.default_rng(8)
    for shape in [(0, 4), (3, 0), (1, 1), (9, 17), (70, 300), (2, 513)]:
        z = rand(rng, shape, dtype, -3, 3)
        if z.size:
            z.reshape(-1)[::5] = 0
        slope = rand(rng, (shape[1],), dtype, -0.5, 1.5)
        dy = rand(rng, shape, dtype, -2, 2)
        y = np.full(shape, np.nan, dtype)
        _core.prelu_forward(z, slope, y)
        want = ref.prelu_forward(z, slope)
        assert_near(y, want, np.abs(want), dtype, f"prelu {shape}", 2.0)
        dz = np.full(shape, np.nan, dtype)
        dslope = np.full(shape[1], np.nan, dtype)  # written, not added
        _core.prelu_backward(z, slope, dy, dz, dslope)
        want_dz, want_ds = ref.prelu_backward(z, slope, dy)
        assert_near(dz, want_dz, np.abs(want_dz), dtype, "prelu dz", 2.0)
        ds_scale = np.abs(ref.f64(dy) * np.minimum(ref.f64(z), 0)).sum(axis=0)
        assert_near(dslope, want_ds, ds_scale, dtype, "prelu dslope", 2.0)
        # row strides
        zw, _ = wide(rng, shape, dtype, 2, values=z)
        dyw, _ = wide(rng, shape, dtype, 5, values=dy)
        yw, ybase = wide(rng, shape, dtype, 3, fill=-3.0)
        dzw, dzbase = wide(rng, shape, dtype, 1, fill=-3.0)
        if accepted(_core.prelu_forward, zw, slope, yw):
            assert_near(yw, want, np.abs(want), dtype, "prelu strided", 2.0)
        if accepted(_core.prelu_backward, zw, slope, dyw, dzw, dslope):
            assert_near(dzw, want_dz, np.abs(want_dz), dtype, "prelu dz strided", 2.0)
            assert_near(dslope, want_ds, ds_scale, dtype, "prelu dslope strided", 2.0)
        assert (ybase[:, shape[1]:] == -3).all() and (dzbase[:, shape[1]:] == -3).all()
    # columns split among threads (fewer than 256 of them too): the same bits
    for shape in [(2000, 40), (1024, 256), (700, 784)]:
        assert_parallel(3 * shape[0] * shape[1])
        z = rand(rng, shape, dtype, -3, 3)
        slope = rand(rng, (shape[1],), dtype, -0.5, 1.5)
        dy = rand(rng, shape, dtype, -2, 2)
        got = []
        for n_threads in (1, 2):
            dz, dslope = np.empty(shape, dtype), np.empty(shape[1], dtype)
            _core.prelu_backward(z, slope, dy, dz, dslope, n_threads)
            got.append((dz, dslope))
        assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1])
    with pytest.raises(ValueError):
        _core.prelu_forward(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        _core.prelu_forward(np.zeros((2, 3)), np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        _core.prelu_backward(np.zeros((2, 3)), np.zeros(3), np.zeros((2, 3)), np.zeros((2, 3)),
                             np.zeros(2))
    with pytest.raises(ValueError):
        _core.prelu_backward(np.zeros((2, 3)), np.zeros(3), np.zeros((2, 4)), np.zeros((2, 3)),
                             np.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_colsum(dtype):
    rng = np.random.default_rng(9)
    for shape in [(0, 0), (0, 7), (5, 0), (1, 1), (63, 255), (65, 256), (129, 257), (1000, 300)]:
        x = rand(rng, shape, dtype, -10, 10)
        out = np.full(shape[1], np.nan, dtype)
        _core.colsum(x, out)
        scale = np.abs(ref.f64(x)).sum(axis=0) + np.abs(ref.colsum(x))
        assert_near(out, ref.colsum(x), scale, dtype, f"colsum {shape}", 2.0)
        xw, _ = wide(rng, shape, dtype, 7, values=x)
        out2 = np.full(shape[1], np.nan, dtype)
        if accepted(_core.colsum, xw, out2):
            assert np.array_equal(out, out2)
    # columns split among threads (fewer than 256 of them too): the same bits
    for shape in [(4000, 40), (1024, 256), (700, 784)]:
        assert_parallel(shape[0] * shape[1])
        x = rand(rng, shape, dtype, -10, 10)
        sums = [np.empty(shape[1], dtype) for _ in range(2)]
        _core.colsum(x, sums[0], 1)
        _core.colsum(x, sums[1], 2)
        assert np.array_equal(sums[0], sums[1])
    with pytest.raises(ValueError):
        _core.colsum(np.zeros((3, 4)), np.zeros(3))


# ---------------------------------------------------------------- dense layer

def deriv_bound(name, param):
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    return max(1.0, abs(p), 1.0 / p if name == "sigmoid" else 1.0)


def check_dense_forward(rng, batch, n_in, n_out, dtype, name, param, x_layout="c", use_b=True,
                        z_mode="separate", extra=0, n_threads=1):
    x, _, _ = make(rng, (batch, n_in), dtype, x_layout)
    w = rand(rng, (n_in, n_out), dtype)
    b = rand(rng, (n_out,), dtype) if use_b else None
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    for ex in dict.fromkeys((extra, 0)):  # rows inside wider arrays first, if asked
        yw, ybase = wide(rng, (batch, n_out), dtype, ex, fill=-5.0)
        yw[...] = np.nan
        if z_mode == "separate":
            zw, zbase = wide(rng, (batch, n_out), dtype, ex, fill=-5.0)
            zw[...] = np.nan
        elif z_mode == "none":
            zw = zbase = None
        else:  # z is y (identity only)
            zw, zbase = yw, ybase
        if accepted(_core.dense_forward, x, w, b, zw, yw, ACT[name], p, n_threads):
            break
    want_z, want_y = ref.dense_forward(x, w, b, name, p)
    scale_z = np.abs(ref.f64(x)) @ np.abs(ref.f64(w)) + (np.abs(ref.f64(b)) if use_b else 0.0)
    what = f"dense_forward {name}({p}) {batch}x{n_in}->{n_out} x:{x_layout} b:{use_b} z:{z_mode}"
    if z_mode == "separate":
        assert_near(zw, want_z, scale_z, dtype, what + " z", 2.0)
        assert (zbase[:, n_out:] == -5.0).all()
    if name == "softmax":
        rowmax = scale_z.max(axis=1, keepdims=True) if scale_z.size else scale_z
        scale_y = np.abs(want_y) + 2.0 * rowmax
        assert_near(yw, want_y, scale_y, dtype, what + " y", 4.0)
    elif name in ("step", "sign"):
        # discontinuous: compare where z is clearly off the threshold
        theta = p if name == "step" else 0.0
        clear = np.abs(want_z - theta) > 100 * rtol(dtype) * scale_z + 1e-30
        assert_near(np.where(clear, yw, 0), np.where(clear, want_y, 0), 0, dtype, what + " y")
    else:
        scale_y = np.abs(want_y) + deriv_bound(name, param) * scale_z
        assert_near(yw, want_y, act_fwd_scale(name, want_z, want_y) + scale_y, dtype,
                    what + " y", 4.0)
    assert (ybase[:, n_out:] == -5.0).all()
    return np.array(yw)


DENSE_SHAPES = [(0, 3, 4), (1, 1, 1), (3, 0, 5), (5, 7, 0), (1, 200, 130), (2, 33, 129),
                (3, 17, 64), (13, 31, 17), (14, 16, 32), (15, 65, 33), (29, 5, 257),
                (17, 1031, 19), (64, 300, 10)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", ACT_CASES)
def test_dense_forward(dtype, name, param):
    rng = np.random.default_rng(10)
    for i, (batch, n_in, n_out) in enumerate(DENSE_SHAPES):
        check_dense_forward(rng, batch, n_in, n_out, dtype, name, param,
                            x_layout=("c", "rs", "cs", "f", "fcs")[i % 5], use_b=i % 4 != 1,
                            z_mode=("separate", "none")[i % 2], extra=i % 3)
    if name == "identity":
        check_dense_forward(rng, 9, 10, 11, dtype, name, param, z_mode="same")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_layouts_and_packed(dtype, gemm_kernel):
    rng = np.random.default_rng(11)
    for layout in LAYOUTS:
        for name, param in [("relu", None), ("sigmoid", 0.5), ("softmax", None)]:
            check_dense_forward(rng, 31, 45, 40, dtype, name, param, x_layout=layout, extra=2)
    # batch large enough for the packed-B GEMM path, with the fused epilogue; and k > kc
    check_dense_forward(rng, 1600, 24, 20, dtype, "tanh", None)
    check_dense_forward(rng, 30, 800, 40, dtype, "gelu", None, x_layout="f")
    # 9 or 10 units (doubles on Zen 4: 8 columns in place, the rest as dot products): the fused
    # bias and pre-activation of every column
    for batch, n_out, name in ((37, 10, "relu"), (300, 9, "identity")):
        check_dense_forward(rng, batch, 256, n_out, dtype, name, None, extra=2)
    # a few inputs (short k: 4-row tiles across the width), the last tile narrower; and 48
    # dense inputs (the same path on Zen 4); 150 rows: the epilogue over several calls' rows
    check_dense_forward(rng, 37, 5, 100, dtype, "relu", None, extra=2)
    check_dense_forward(rng, 37, 48, 100, dtype, "relu", None, extra=2)
    check_dense_forward(rng, 150, 48, 100, dtype, "relu", None, extra=2)


def check_dense_backward(rng, batch, n_in, n_out, dtype, name, param, x_layout="c", extra=0,
                         with_dx=True, with_db=True, alias=False, dx_extra=0, n_threads=1):
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    x, _, _ = make(rng, (batch, n_in), dtype, x_layout)
    w = rand(rng, (n_in, n_out), dtype)
    b = rand(rng, (n_out,), dtype)
    z = ref.dense_forward(x, w, b, name, p)[0].astype(dtype)
    y = ref.act_forward(name, z, p).astype(dtype)
    dy = rand(rng, z.shape, dtype, -2, 2)
    for ex, dx_ex in dict.fromkeys(((extra, dx_extra), (0, 0))):  # wider arrays first, if asked
        zw, _ = wide(rng, z.shape, dtype, ex, values=z)
        yw, _ = wide(rng, z.shape, dtype, ex, values=y)
        dyw, _ = wide(rng, z.shape, dtype, ex, values=dy)
        dzw = dyw if alias else wide(rng, z.shape, dtype, ex, fill=np.nan)[0]
        dxw = dxbase = None
        if with_dx:
            dxw, dxbase = wide(rng, (batch, n_in), dtype, dx_ex, fill=-5.0)
            dxw[...] = np.nan
        dw = np.full((n_in, n_out), np.nan, dtype)
        db = np.full(n_out, np.nan, dtype) if with_db else None
        if accepted(_core.dense_backward, x, w, zw, yw, dyw, dzw, dxw, dw, db, ACT[name], p,
                    n_threads):
            break
    want_dz, want_dw, want_db, want_dx = ref.dense_backward(x, w, z, dy, name, p)
    e = np.abs(want_dz) + deriv_bound(name, param) * np.abs(ref.f64(dy))
    if e.size and name == "softmax":
        e = e + np.abs(ref.f64(dy)).max(axis=1, keepdims=True)
    what = (f"dense_backward {name}({p}) {batch}x{n_in}->{n_out} x:{x_layout} alias:{alias} "
            f"dx:{with_dx} db:{with_db}")
    if not (name == "identity" and p == 1.0):  # plain identity: dy is taken as dz, dz unused
        assert_near(dzw, want_dz, act_bwd_scale(name, param, z, dy, want_dz), dtype,
                    what + " dz", 4.0)
    assert_near(dw, want_dw, np.abs(ref.f64(x)).T @ e, dtype, what + " dw", 4.0)
    if with_db:
        assert_near(db, want_db, e.sum(axis=0), dtype, what + " db", 4.0)
    if with_dx:
        assert_near(dxw, want_dx, e @ np.abs(ref.f64(w)).T, dtype, what + " dx", 4.0)
        assert (dxbase[:, n_in:] == -5.0).all()
    return dw, db, (None if dxw is None else np.array(dxw)), np.array(dzw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", ACT_CASES)
def test_dense_backward(dtype, name, param):
    rng = np.random.default_rng(12)
    for i, (batch, n_in, n_out) in enumerate(DENSE_SHAPES):
        check_dense_backward(rng, batch, n_in, n_out, dtype, name, param,
                             x_layout=("c", "rs", "cs", "f", "fcs")[i % 5], extra=i % 3,
                             with_dx=i % 4 != 2, with_db=i % 5 != 3, alias=i % 3 == 1,
                             dx_extra=(i + 1) % 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_layouts(dtype, gemm_kernel):
    rng = np.random.default_rng(13)
    for layout in LAYOUTS:
        for name, param in [("identity", None), ("elu", 0.7), ("softmax", None)]:
            check_dense_backward(rng, 37, 45, 30, dtype, name, param, x_layout=layout, extra=1)
    check_dense_backward(rng, 1600, 20, 24, dtype, "tanh", None)


def test_dense_errors():
    x, w, b = np.zeros((4, 3)), np.zeros((3, 2)), np.zeros(2)
    y = np.zeros((4, 2))
    with pytest.raises(ValueError):
        _core.dense_forward(x, np.zeros((4, 2)), b, None, y, 0)
    with pytest.raises(ValueError):
        _core.dense_forward(x, w, np.zeros(3), None, y, 0)
    with pytest.raises(ValueError):
        _core.dense_forward(x, w, b, None, np.zeros((4, 3)), 0)
    with pytest.raises(ValueError):
        _core.dense_forward(x, w, b, np.zeros((3, 2)), y, 0)
    with pytest.raises(ValueError):  # z must share y's row stride
        _core.dense_forward(x, w, b, np.zeros((4, 5))[:, :2], y, ACT["relu"])
    with pytest.raises(ValueError):
        _core.dense_forward(x, w, b, None, y, 99)
    z = np.zeros((4, 2))
    with pytest.raises(ValueError):
        _core.dense_backward(x, w, z, z, z, z, np.zeros((4, 3)), np.zeros((2, 2)), b, 0)
    with pytest.raises(ValueError):
        _core.dense_backward(x, w, z, z, z, z, np.zeros((4, 4)), np.zeros((3, 2)), b, 0)
    with pytest.raises(ValueError):
        _core.dense_backward(x, w, z, z, z, z, None, np.zeros((3, 2)), np.zeros(3), 0)
    with pytest.raises(ValueError):
        _core.dense_backward(x, w, np.zeros((3, 2)), z, z, z, None, np.zeros((3, 2)), b, 0)
    with pytest.raises(ValueError):
        _core.dense_backward(x, w, z, z, z, np.zeros((4, 3))[:, :2], None, np.zeros((3, 2)), b, 5)
    with pytest.raises(ValueError):
        _core.dense_backward(x, w, z, z, z, z, None, np.zeros((3, 2)), b, 99)


# ---------------------------------------------------------------- losses

def loss_targets(rng, kind, n, k, dtype):
    """(t, labels) for a loss kind."""
    if kind == "softmax_ce_labels":
        return None, rng.integers(0, max(k, 1), n).astype(np.int32)
    if kind == "mse":
        t = rng.normal(0, 1, (n, k))
    elif kind == "bce_logits":
        t = rng.uniform(0, 1, (n, k))
        if t.size:
            t.reshape(-1)[::3] = rng.integers(0, 2, t.reshape(-1)[::3].size)
    elif kind == "softmax_ce":
        t = rng.dirichlet(np.ones(k), n) if k else np.zeros((n, 0))
        t[::4] *= 2.0  # rows that do not sum to one: gradient p * sum(t) - t
        if n:
            t[0] = np.eye(k)[0] if k else t[0]
    else:
        t = rng.choice([-1.0, 1.0], (n, k))
    return t.astype(dtype), None


def loss_logits(rng, kind, t, n, k, dtype):
    z = rng.normal(0, 2, (n, k))
    if kind in ("perceptron", "hinge") and z.size:
        flat, tf = z.reshape(-1), t.reshape(-1)
        flat[::5] = 0.0                      # t z = 0: a mistake for the perceptron
        flat[1::5] = tf[1::5]                # t z = 1 exactly: on the hinge's margin
        flat[2::5] = 0.5 * tf[2::5]          # inside the margin
    return z.astype(dtype)


def check_loss(rng, kind, n, k, dtype, weighted, strided=False, z=None, t=None, labels=None,
               n_threads=1):
    if z is None:
        t, labels = loss_targets(rng, kind, n, k, dtype)
        z = loss_logits(rng, kind, t, n, k, dtype)
    sw = None
    if weighted:
        sw = rng.uniform(0.1, 2.0, n).astype(dtype)
        if n > 2:
            sw[1] = 0.0
    if strided:  # rows inside wider arrays: accepted and right, or refused
        zs = wide(rng, z.shape, dtype, 2, values=z)[0]
        ts = None if t is None else wide(rng, t.shape, dtype, 5, values=t)[0]
        gs, gbase = wide(rng, z.shape, dtype, 1, fill=-5.0)
        if accepted(_core.loss, LOSS[kind], zs, ts, labels, sw, gs, n_threads):
            assert (gbase[:, k:] == -5.0).all()
            z, t, grad = zs, ts, gs
            strided = "accepted"
    if strided != "accepted":
        grad = np.full(z.shape, np.nan, dtype)
    value = _core.loss(LOSS[kind], z, t, labels, sw, grad, n_threads)
    what = f"loss {kind} n={n} k={k} weighted={weighted} strided={strided}"
    assert isinstance(value, float)
    if n == 0:
        assert value == 0.0 and grad.shape == (0, k)
        return value, grad
    want, want_g = ref.loss(kind, z, t, labels, sw)
    scale = ref.loss_terms(kind, z, t, labels, sw)
    assert_near(value, want, scale, dtype, what + " value", 4.0)
    wn = (np.ones(n) if sw is None else ref.f64(sw)) / (n if sw is None else ref.f64(sw).sum())
    tt = 1.0 if t is None else np.abs(ref.f64(t))
    gscale = np.abs(want_g) + wn[:, None] * (np.abs(ref.f64(z)) + tt + 1.0)
    assert_near(grad, want_g, gscale, dtype, what + " grad", 4.0)
    # the value alone (grad None) is the same number
    assert _core.loss(LOSS[kind], z, t, labels, sw, None, n_threads) == value
    return value, np.array(grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ref.LOSSES)
def test_loss(dtype, kind):
    rng = np.random.default_rng(14)
    for i, (n, k) in enumerate([(0, 3), (1, 1), (1, 4), (3, 2), (64, 3), (65, 10), (129, 1),
                                (200, 17)]):
        for weighted in (False, True):
            check_loss(rng, kind, n, k, dtype, weighted, strided=(i + weighted) % 2 == 1)


@pytest.mark.parametrize("kind", ref.LOSSES)
def test_loss_many_rows(kind):
    """More rows than one chunk of partial sums (64-row blocks x 256)."""
    rng = np.random.default_rng(15)
    check_loss(rng, kind, 16500, 2, np.float64, True)
    check_loss(rng, kind, 16500, 1, np.float32, False)


def test_loss_subgradients_at_the_kinks():
    """Perceptron: -t where t z <= 0 (so t z = 0 counts as a mistake); hinge: -t where t z < 1."""
    z = np.array([[0.0, 0.0, 1.0, -1.0, 0.5, -0.5, 2.0]])
    t = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -1.0]])
    for dtype in DTYPES:
        g = np.empty_like(z, dtype=dtype)
        v = _core.loss(LOSS["perceptron"], z.astype(dtype), t.astype(dtype), None, None, g)
        assert v == pytest.approx(2.0)
        assert np.array_equal(g, [[-1, 1, 0, 0, 0, 0, 1]])
        v = _core.loss(LOSS["hinge"], z.astype(dtype), t.astype(dtype), None, None, g)
        assert v == pytest.approx(1 + 1 + 0 + 0 + 0.5 + 0.5 + 3)
        assert np.array_equal(g, [[-1, 1, 0, 0, -1, 1, 1]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ref.LOSSES)
def test_loss_extreme_logits(dtype, kind):
    """log1p/exp stability: finite, correct values and gradients at z = +-1e4 and +-80."""
    rng = np.random.default_rng(16)
    big = [1e4, -1e4, 80.0, -80.0, 0.0, 745.0, -745.0]
    z = np.array([big, big[::-1], [-1e4] * 7, [80.0] * 7], dtype)
    n, k = z.shape
    t, labels = loss_targets(rng, kind, n, k, dtype)
    if kind == "bce_logits":
        t = np.array([[1, 0, 1, 0, 0.5, 0, 1]] * 2 + [[0.3] * 7, [1.0] * 7], dtype)
    value, grad = check_loss(rng, kind, n, k, dtype, False, z=z, t=t, labels=labels)
    assert np.isfinite(value) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_labels_out_of_range(dtype):
    z = np.zeros((4, 3), dtype)
    g = np.empty_like(z)
    for bad in (-1, 3, 100):
        labels = np.array([0, 1, bad, 2], np.int32)
        with pytest.raises(ValueError):
            _core.loss(LOSS["softmax_ce_labels"], z, None, labels, None, g)
    # the Python layer rejects them too, before the kernel
    ce = get_loss("softmax_cross_entropy")
    for y in ([0, 1, 3], [-1, 0, 1]):
        with pytest.raises(ValueError):
            ce.prepare_targets(np.array(y), 3, dtype)


def test_loss_errors():
    z = np.zeros((4, 3))
    t = np.zeros((4, 3))
    with pytest.raises(ValueError):
        _core.loss(LOSS["mse"], z, np.zeros((4, 2)), None, None, None)
    with pytest.raises(ValueError):
        _core.loss(LOSS["mse"], z, np.zeros((3, 3)), None, None, None)
    with pytest.raises(ValueError):
        _core.loss(LOSS["mse"], z, None, None, None, None)
    with pytest.raises(ValueError):
        _core.loss(LOSS["mse"], z, t, None, np.ones(3), None)
    with pytest.raises(ValueError):
        _core.loss(LOSS["mse"], z, t, None, None, np.zeros((4, 2)))
    with pytest.raises(ValueError):
        _core.loss(LOSS["softmax_ce_labels"], z, None, np.zeros(3, np.int32), None, None)
    with pytest.raises(ValueError):
        _core.loss(LOSS["softmax_ce_labels"], z, None, None, None, None)
    for kind in (-1, len(LOSS), 42):
        with pytest.raises(ValueError):
            _core.loss(kind, z, t, None, None, None)


# ---------------------------------------------------------------- penalty, SGD, permutation

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1,l2", [(0.0, 0.0), (0.1, 0.0), (0.0, 0.3), (0.01, 2.0)])
def test_penalty(dtype, l1, l2):
    rng = np.random.default_rng(17)
    for n in (0, 1, 7, 1000):
        w = rand(rng, (n,), dtype, -3, 3)
        w[::4] = 0.0
        g0 = rand(rng, (n,), dtype)
        g = g0.copy()
        value = _core.penalty(w, g, l1, l2)
        want, want_g = ref.penalty(w, l1, l2)
        scale = l1 * np.abs(ref.f64(w)).sum() + l2 * (ref.f64(w) ** 2).sum()
        assert_near(value, want, scale, dtype, "penalty value", 2.0)
        assert_near(g, ref.f64(g0) + want_g, np.abs(ref.f64(g0)) + l1 + l2 * np.abs(ref.f64(w)),
                    dtype, "penalty grad (added)", 2.0)
        assert _core.penalty(w, None, l1, l2) == value
    with pytest.raises(ValueError):
        _core.penalty(np.zeros(3), np.zeros(4), 0.1, 0.1)


SGD_CASES = [dict(momentum=0.0), dict(momentum=0.0, weight_decay=0.01), dict(momentum=0.9),
             dict(momentum=0.9, nesterov=True), dict(momentum=0.5, weight_decay=0.1, nesterov=True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hp", SGD_CASES)
def test_sgd_step(dtype, hp):
    rng = np.random.default_rng(18)
    for n in (0, 1, 13, 5000):
        p = rand(rng, (n,), dtype, -2, 2)
        v = rand(rng, (n,), dtype) if hp["momentum"] else None
        for _ in range(3):
            g = rand(rng, (n,), dtype, -5, 5)
            p0 = p.copy()
            v0 = None if v is None else v.copy()
            _core.sgd_step(g, p, v, 0.1, **hp)
            c = {k: (float(np.float32(x)) if dtype == np.float32 else x)
                 for k, x in hp.items() if k != "nesterov"}
            lr = float(np.float32(0.1)) if dtype == np.float32 else 0.1
            want_p, want_v = ref.sgd_step(g, p0, v0, lr, c["momentum"], c.get("weight_decay", 0.0),
                                          hp.get("nesterov", False))
            mag = np.abs(ref.f64(g)) + np.abs(ref.f64(p0))
            if v0 is not None:
                mag = mag + np.abs(ref.f64(v0))
            assert_near(p, want_p, np.abs(ref.f64(p0)) + 0.5 * mag, dtype, f"sgd p {hp}", 2.0)
            if v is not None:
                assert_near(v, want_v, 2 * mag, dtype, f"sgd v {hp}", 2.0)
    with pytest.raises(ValueError):  # momentum needs a velocity
        _core.sgd_step(np.zeros(3), np.zeros(3), None, 0.1, momentum=0.9)
    with pytest.raises(ValueError):
        _core.sgd_step(np.zeros(3), np.zeros(4), None, 0.1)
    with pytest.raises(ValueError):
        _core.sgd_step(np.zeros(3), np.zeros(3), np.zeros(2), 0.1, momentum=0.9)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 3000), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       wd=st.sampled_from([0.0, 0.01, 1.0]), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**32 - 1))
def test_sgd_lr_zero_is_identity(n, momentum, nesterov, wd, dtype, seed):
    rng = np.random.default_rng(seed)
    p = rand(rng, (n,), dtype, -10, 10)
    g = rand(rng, (n,), dtype, -10, 10)
    v = rand(rng, (n,), dtype) if momentum else None
    p0 = p.copy()
    _core.sgd_step(g, p, v, 0.0, momentum, wd, nesterov and momentum > 0)
    assert np.array_equal(p, p0)


def test_permutation():
    for n in (0, 1, 2, 7, 1000):
        perm = _core.permutation(n, 42, 0)
        assert perm.dtype == np.int64 and perm.shape == (n,)
        assert np.array_equal(np.sort(perm), np.arange(n))
        assert np.array_equal(perm, _core.permutation(n, 42, 0))  # deterministic
    a = _core.permutation(1000, 42, 0)
    assert not np.array_equal(a, np.arange(1000))
    assert not np.array_equal(a, _core.permutation(1000, 42, 1))  # distinct streams
    assert not np.array_equal(a, _core.permutation(1000, 43, 0))  # distinct seeds
    streams = {tuple(_core.permutation(10, 7, s)) for s in range(20)}
    assert len(streams) == 20
    assert _core.rng_u64(1, 2, 3) == _core.rng_u64(1, 2, 3)
    assert len({_core.rng_u64(1, 2, c) for c in range(100)}) == 100


# ---------------------------------------------------------------- misaligned buffers

def unaligned(a):
    """A copy of `a` (C-contiguous) starting one element past an aligned address."""
    a = np.asarray(a)
    buf = np.empty(a.size + 1, a.dtype)
    out = buf[1:].reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 16 != 0 or a.size == 0
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_buffers(dtype):
    """Every kernel gives the same numbers when no buffer is SIMD-aligned."""
    rng = np.random.default_rng(42)
    batch, n_in, n_out = 37, 29, 45
    x = rand(rng, (batch, n_in), dtype)
    w = rand(rng, (n_in, n_out), dtype)
    b = rand(rng, (n_out,), dtype)
    dy = rand(rng, (batch, n_out), dtype)
    U = unaligned
    for name in ("relu", "gelu", "softmax", "identity"):
        z1, y1 = np.empty((batch, n_out), dtype), np.empty((batch, n_out), dtype)
        _core.dense_forward(x, w, b, z1, y1, ACT[name])
        z2, y2 = U(np.zeros((batch, n_out), dtype)), U(np.zeros((batch, n_out), dtype))
        _core.dense_forward(U(x), U(w), U(b), z2, y2, ACT[name])
        scale = np.abs(ref.f64(x)) @ np.abs(ref.f64(w)) + np.abs(ref.f64(b))
        assert_near(z2, ref.dense_forward(x, w, b)[0], scale, dtype, f"unaligned z {name}", 2.0)
        assert_near(z2, z1, scale, dtype, f"unaligned vs aligned z {name}", 2.0)
        out1 = [np.empty((batch, n_out), dtype), np.empty((batch, n_in), dtype),
                np.empty((n_in, n_out), dtype), np.empty(n_out, dtype)]
        out2 = [U(o) for o in out1]
        _core.dense_backward(x, w, z1, y1, dy, *out1, ACT[name])
        _core.dense_backward(U(x), U(w), U(z1), U(y1), U(dy), *out2, ACT[name])
        _, dw, db, dx = ref.dense_backward(x, w, z1, dy, name)
        e = np.abs(ref.f64(dy)) * 2
        assert_near(out2[1], dx, e @ np.abs(ref.f64(w)).T, dtype, "unaligned dx", 4.0)
        assert_near(out2[2], dw, np.abs(ref.f64(x)).T @ e, dtype, "unaligned dw", 4.0)
        assert_near(out2[3], db, e.sum(axis=0), dtype, "unaligned db", 4.0)
    # elementwise kernels and reductions in a fixed order: bitwise the same
    z = rand(rng, (batch, n_out), dtype, -3, 3)
    for name in ref.ACTIVATIONS:
        y1, y2 = np.empty_like(z), U(np.empty_like(z))
        _core.act_forward(z, y1, ACT[name])
        _core.act_forward(U(z), y2, ACT[name])
        d1, d2 = np.empty_like(z), U(np.empty_like(z))
        _core.act_backward(z, y1, dy, d1, ACT[name])
        _core.act_backward(U(z), U(y1), U(dy), d2, ACT[name])
        assert np.array_equal(y1, y2) and np.array_equal(d1, d2), name
    slope = rand(rng, (n_out,), dtype)
    r1 = [np.empty_like(z), np.empty_like(z), np.empty(n_out, dtype), np.empty(n_out, dtype)]
    r2 = [U(r) for r in r1]
    for (yp, dzp, dsp, csp), (zz, ss, gg) in ((r1, (z, slope, dy)), (r2, (U(z), U(slope), U(dy)))):
        _core.prelu_forward(zz, ss, yp)
        _core.prelu_backward(zz, ss, gg, dzp, dsp)
        _core.colsum(zz, csp)
    for a1, a2 in zip(r1, r2):
        assert np.array_equal(a1, a2)
    for kind in ref.LOSSES:
        t, labels = loss_targets(rng, kind, batch, n_out, dtype)
        zl = loss_logits(rng, kind, t, batch, n_out, dtype)
        sw = rand(rng, (batch,), dtype, 0.1, 2)
        g1, g2 = np.empty_like(zl), U(np.empty_like(zl))
        v1 = _core.loss(LOSS[kind], zl, t, labels, sw, g1)
        v2 = _core.loss(LOSS[kind], U(zl), None if t is None else U(t),
                        None if labels is None else U(labels), U(sw), g2)
        assert v1 == v2 and np.array_equal(g1, g2), kind
    p1 = rand(rng, (1001,), dtype)
    g = rand(rng, (1001,), dtype)
    v1 = rand(rng, (1001,), dtype)
    p2, v2 = U(p1), U(v1)
    _core.sgd_step(g, p1, v1, 0.1, 0.9, 0.01, True)
    _core.sgd_step(U(g), p2, v2, 0.1, 0.9, 0.01, True)
    assert np.array_equal(p1, p2) and np.array_equal(v1, v2)
    gp1, gp2 = g.copy(), U(g)
    assert _core.penalty(p1, gp1, 0.1, 0.2) == _core.penalty(U(p1), gp2, 0.1, 0.2)
    assert np.array_equal(gp1, gp2)


# ---------------------------------------------------------------- optimizer dispatch

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hp", SGD_CASES)
def test_optim_step_sgd(dtype, hp):
    """The dispatching optimizer step is the SGD kernel, and counts its steps."""
    rng = np.random.default_rng(43)
    n = 777
    p1 = rand(rng, (n,), dtype)
    v1 = rand(rng, (n,), dtype) if hp["momentum"] else None
    p2 = p1.copy()
    v2 = None if v1 is None else v1.copy()
    hyper = dict(kind="sgd", lr=0.05, **hp)
    step = 5
    for _ in range(3):
        g = rand(rng, (n,), dtype, -3, 3)
        p0 = p1.copy()
        _core.sgd_step(g, p1, v1, 0.05, **hp)
        step, _ = _core.optim_step(g, p2, hyper, [v2], step)
        assert np.array_equal(p1, p2) and (v1 is None or np.array_equal(v1, v2))
        assert not np.array_equal(p1, p0)
    assert step == 8


# ---------------------------------------------------------------- threads: bitwise identical

def _three(run):
    """run(n_threads) -> tuple of arrays/floats; assert 1, 2 and 3 threads agree bitwise."""
    outs = [run(nt) for nt in (1, 2, 3)]
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            if isinstance(a, float):
                assert a == b or (np.isnan(a) and np.isnan(b))
            else:
                assert np.array_equal(a, b, equal_nan=True)
    return outs[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", ACT_CASES)
def test_threads_bitwise_activations(dtype, name, param):
    rng = np.random.default_rng(19)
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    shape = (300, 200)
    assert_parallel(8.0 * shape[0] * shape[1])
    z = act_inputs(rng, shape, dtype, name, param)
    dy = rand(rng, shape, dtype)

    def run(nt):
        y = np.empty_like(z)
        _core.act_forward(z, y, ACT[name], p, nt)
        dz = np.empty_like(z)
        _core.act_backward(z, y, dy, dz, ACT[name], p, nt)
        return y, dz

    y, dz = _three(run)
    assert_near(y, ref.act_forward(name, z, p),
                act_fwd_scale(name, z, ref.act_forward(name, z, p)), dtype, name, 4.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise_prelu_colsum(dtype):
    rng = np.random.default_rng(20)
    for shape in [(300, 200), (1000, 600), (5000, 7)]:
        assert_parallel(shape[0] * shape[1])
        z = rand(rng, shape, dtype)
        slope = rand(rng, (shape[1],), dtype)
        dy = rand(rng, shape, dtype)

        def run(nt):
            y, dz = np.empty_like(z), np.empty_like(z)
            ds, cs = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
            _core.prelu_forward(z, slope, y, nt)
            _core.prelu_backward(z, slope, dy, dz, ds, nt)
            _core.colsum(z, cs, nt)
            return y, dz, ds, cs

        y, dz, ds, cs = _three(run)
        assert_near(cs, ref.colsum(z), np.abs(ref.f64(z)).sum(axis=0), dtype, "colsum", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", [("relu", None), ("sigmoid", 0.5), ("softmax", None),
                                        ("identity", None), ("gelu", None)])
def test_threads_bitwise_dense(dtype, name, param):
    rng = np.random.default_rng(21)
    batch, n_in, n_out = 300, 200, 150
    assert_parallel(2.0 * batch * n_in * n_out)
    p = ref.ACT_DEFAULT_PARAM[name] if param is None else param
    x = rand(rng, (batch, n_in), dtype)
    xt = np.asfortranarray(x)
    w = rand(rng, (n_in, n_out), dtype, -0.2, 0.2)
    b = rand(rng, (n_out,), dtype)
    dy = rand(rng, (batch, n_out), dtype)

    def run(nt):
        z, y = np.empty((batch, n_out), dtype), np.empty((batch, n_out), dtype)
        _core.dense_forward(x, w, b, z, y, ACT[name], p, nt)
        z2, y2 = np.empty_like(z), np.empty_like(y)
        _core.dense_forward(xt, w, b, z2, y2, ACT[name], p, nt)
        dz, dx = np.empty_like(z), np.empty((batch, n_in), dtype)
        dw, db = np.empty((n_in, n_out), dtype), np.empty(n_out, dtype)
        _core.dense_backward(xt, w, z, y, dy, dz, dx, dw, db, ACT[name], p, nt)
        return z, y, z2, y2, dx, dw, db

    z, y, z2, y2, dx, dw, db = _three(run)
    want_z, _ = ref.dense_forward(x, w, b, name, p)
    scale = np.abs(ref.f64(x)) @ np.abs(ref.f64(w)) + np.abs(ref.f64(b))
    assert_near(z, want_z, scale, dtype, "dense z", 2.0)
    assert_near(z2, want_z, scale, dtype, "dense z (x transposed)", 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ref.LOSSES)
def test_threads_bitwise_losses(dtype, kind):
    rng = np.random.default_rng(22)
    n, k = 3001, 10
    assert_parallel(20.0 * n * k)
    t, labels = loss_targets(rng, kind, n, k, dtype)
    z = loss_logits(rng, kind, t, n, k, dtype)
    sw = rng.uniform(0, 2, n).astype(dtype)

    def run(nt):
        g1, g2 = np.empty_like(z), np.empty_like(z)
        v1 = _core.loss(LOSS[kind], z, t, labels, None, g1, nt)
        v2 = _core.loss(LOSS[kind], z, t, labels, sw, g2, nt)
        return v1, g1, v2, g2

    v1, g1, v2, g2 = _three(run)
    want = ref.loss(kind, z, t, labels, sw)[0]
    assert_near(v2, want, ref.loss_terms(kind, z, t, labels, sw), dtype, "loss", 4.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise_sgd(dtype):
    rng = np.random.default_rng(23)
    n = 60001
    assert_parallel(4.0 * n)
    g = rand(rng, (n,), dtype)
    p0 = rand(rng, (n,), dtype)
    v0 = rand(rng, (n,), dtype)

    def run(nt):
        p, v, p2 = p0.copy(), v0.copy(), p0.copy()
        _core.sgd_step(g, p, v, 0.05, 0.9, 0.01, True, nt)
        _core.sgd_step(g, p2, None, 0.05, 0.0, 0.01, False, nt)
        return p, v, p2

    p, v, p2 = _three(run)
    want, _ = ref.sgd_step(g, p0, None, float(dtype(0.05)), 0.0, float(dtype(0.01)))
    assert_near(p2, want, np.abs(ref.f64(p0)) + np.abs(ref.f64(g)), dtype, "sgd", 2.0)


@settings(max_examples=10, deadline=None)
@given(m=st.integers(40, 400), n=st.integers(30, 300), k=st.integers(20, 300),
       la=st.sampled_from(["c", "f", "cs"]), lb=st.sampled_from(["c", "f", "rs"]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_threads_bitwise_gemm_property(m, n, k, la, lb, dtype, seed):
    rng = np.random.default_rng(seed)
    a, _, _ = make(rng, (m, k), dtype, la)
    b, _, _ = make(rng, (k, n), dtype, lb)

    def run(nt):
        c = np.full((m, n), np.nan, dtype)
        _core.gemm(a, b, c, 1.0, 0.0, nt)
        return (c,)

    (c,) = _three(run)
    assert_near(c, ref.gemm(a, b, None), ref.gemm_error_scale(a, b, None), dtype, "gemm", 2.0)


# ---------------------------------------------------------------- finite check

@pytest.mark.parametrize("dtype", DTYPES)
def test_all_finite_matches_numpy(dtype):
    # fastmlp's check of the exponent bits against np.isfinite: every kind of non-finite value
    # at the start, the end and a thread boundary, 1-D, C and F order, strided views; 1 and 2
    # threads (a size that runs in parallel)
    rng = np.random.default_rng(3)
    big = (1 << 20) // np.dtype(dtype).itemsize
    assert_parallel(big)
    info = np.finfo(dtype)
    for shape in [(7,), (3, 5), (big // 64, 64), (64, big // 64)]:
        base = rng.standard_normal(shape).astype(dtype)
        base.flat[0] = info.max  # huge but finite: a sum would overflow
        views = [base, np.asfortranarray(base), base[::2]]
        if base.ndim == 2:
            views += [base[:, 1::3], base.T]
        for view in views:
            for threads in (1, 2):
                assert _core.all_finite(view, threads) is True
            for value in (np.nan, np.inf, -np.inf):
                for pos in (0, view.size // 2, view.size - 1):
                    bad = view.copy()
                    bad.flat[pos] = value
                    want = bool(np.isfinite(bad).all())
                    assert [_core.all_finite(bad, t) for t in (1, 2)] == [want, want]
    assert _core.all_finite(np.ones(3, np.float16)) is None
    assert _core.all_finite(np.ones((0, 3), dtype)) is None
