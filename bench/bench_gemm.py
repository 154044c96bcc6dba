"""GEMM: fastmlp versus NumPy's BLAS (OpenBLAS), one thread, on the layer shapes of an MLP.

Shapes: MNIST 784-256-256-10 at batch 1, 32, 64, 256, 1024 -- forward X W, weight gradient
X^T dZ (A a transposed view) and input gradient dZ W^T (B a transposed view) of each layer --
plus 1024^3; float32 and float64.

    python bench/bench_gemm.py                  # writes bench/results/gemm.json
    python bench/bench_gemm.py --quick          # fewer rounds
    python bench/bench_gemm.py --lib PATH.so    # a standalone build of csrc/ through ctypes
    python bench/bench_gemm.py --mnist          # the first layer's products on MNIST pixels
    python bench/bench_gemm.py --layers 784,1024,1024,10 --batches 32,256   # another MLP

Timing: warm-up, then rounds alternating fastmlp and NumPy (each round a batch of calls lasting
about 10 ms); the median per-call time over rounds is reported, with GFLOP/s = 2mnk / time, and
the ratio of the best rounds too (steadier on a shared machine).
NumPy computes `np.matmul(a, b, out=c)`; fastmlp computes `_core.gemm(a, b, c)` (C := A B).
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from this process's environment before NumPy
loads (they select older, slower kernels on some machines; --keep-openblas-env keeps them).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

# Thread counts and the OpenBLAS kernel choice must be fixed before NumPy is imported.
_KEEP_ENV = "--keep-openblas-env" in sys.argv
_REMOVED = {}
if not _KEEP_ENV:
    for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if _var in os.environ:
            _REMOVED[_var] = os.environ.pop(_var)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCHES = (1, 32, 64, 256, 1024)
LAYERS = ((784, 256), (256, 256), (256, 10))


def shapes(layers=LAYERS, batches=BATCHES):
    """(name, m, n, k, a_transposed, b_transposed)."""
    out = []
    for b in batches:
        for li, (n_in, n_out) in enumerate(layers, 1):
            out.append((f"fwd{li}", b, n_out, n_in, False, False))     # X W
        for li, (n_in, n_out) in enumerate(layers, 1):
            out.append((f"dW{li}", n_in, n_out, b, True, False))       # X^T dZ
        for li, (n_in, n_out) in enumerate(layers, 1):
            out.append((f"dX{li}", b, n_in, n_out, False, True))       # dZ W^T
    out.append(("square", 1024, 1024, 1024, False, False))
    return out


def operands(m, n, k, ta, tb, dtype, rng):
    """A (m x k) and B (k x n), as transposed views of row-major arrays when asked."""
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return (a.T if ta else a), (b.T if tb else b)


class CtypesGemm:
    """fm_gemm_f32/f64 from a shared library built from csrc/ (before the binding exists)."""

    def __init__(self, path):
        import ctypes as ct

        self.lib = ct.CDLL(path)
        i64, p = ct.c_int64, ct.c_void_p
        for name, real in (("fm_gemm_f32", ct.c_float), ("fm_gemm_f64", ct.c_double)):
            fn = getattr(self.lib, name)
            fn.argtypes = [i64, i64, i64, p, i64, i64, p, i64, i64, p, i64, i64, real, real,
                           ct.c_int]
            fn.restype = ct.c_int
        for name in ("fm_gemm_kernel_name_f32", "fm_gemm_kernel_name_f64"):
            getattr(self.lib, name).restype = ct.c_char_p

    def kernel_name(self, dtype):
        suffix = "f32" if dtype == np.float32 else "f64"
        return getattr(self.lib, f"fm_gemm_kernel_name_{suffix}")().decode()

    def make(self, a, b, c, n_threads=1):
        fn = self.lib.fm_gemm_f32 if a.dtype == np.float32 else self.lib.fm_gemm_f64
        es = a.itemsize
        m, k = a.shape
        n = b.shape[1]
        args = (m, n, k, a.ctypes.data, a.strides[0] // es, a.strides[1] // es,
                b.ctypes.data, b.strides[0] // es, b.strides[1] // es,
                c.ctypes.data, c.strides[0] // es, c.strides[1] // es, 1.0, 0.0, n_threads)

        def call():
            status = fn(*args)
            if status != 0:
                raise RuntimeError(f"fm_gemm failed with status {status}")

        return call


def force_kernel(path, name):
    """The kernels' testing hook fm_gemm_force_kernel, in the library or extension module."""
    import ctypes as ct

    lib = ct.CDLL(path)
    lib.fm_gemm_force_kernel.argtypes = [ct.c_char_p]
    if lib.fm_gemm_force_kernel(name.encode()) != 0:
        raise SystemExit(f"--kernel {name}: not available on this CPU or build")


class CoreGemm:
    """The Python binding fastmlp._core.gemm(a, b, c, alpha, beta, n_threads)."""

    def __init__(self):
        from fastmlp import _core

        self.core = _core

    def kernel_name(self, dtype):
        for attr in ("gemm_kernel_name",):
            fn = getattr(self.core, attr, None)
            if fn is not None:
                try:
                    return fn(np.dtype(dtype))
                except TypeError:
                    try:
                        return fn("float32" if dtype == np.float32 else "float64")
                    except Exception:  # noqa: BLE001 - informational only
                        return "unknown"
        return "unknown"

    def make(self, a, b, c, n_threads=1):
        gemm = self.core.gemm

        def call():
            gemm(a, b, c, alpha=1.0, beta=0.0, n_threads=n_threads)

        return call


def per_call(fn, iters):
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def time_pair(f_fm, f_np, rounds, target=0.01):
    """Seconds per call of each over rounds that alternate the two: (median, best) each."""
    for _ in range(3):  # warm-up
        f_fm(), f_np()
    iters = 1
    while per_call(f_fm, iters) * iters < target and iters < 1 << 20:
        iters *= 2
    t_fm, t_np = [], []
    for _ in range(rounds):
        t_fm.append(per_call(f_fm, iters))
        t_np.append(per_call(f_np, iters))
    return (statistics.median(t_fm), min(t_fm)), (statistics.median(t_np), min(t_np))


def openblas_info():
    try:
        import threadpoolctl
    except ImportError:
        return None, "threadpoolctl not installed"
    info = threadpoolctl.threadpool_info()
    blas = [d for d in info if d.get("user_api") == "blas"]
    return blas, ", ".join(f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')})"
                           for d in blas)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", help="shared library with fm_gemm_* (ctypes) instead of fastmlp._core")
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--only", default=None, help="substring of shape names to run (e.g. dX)")
    ap.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "gemm.json"))
    ap.add_argument("--kernel", default=None,
                    help="force fastmlp's micro-kernels: reference, avx2 or avx512 (default: the "
                         "run-time choice)")
    ap.add_argument("--mnist", action="store_true",
                    help="only the first layer's products (fwd1 X W, dW1 X^T dZ), with X shuffled "
                         "MNIST rows (81%% zeros, which fastmlp skips and OpenBLAS multiplies) "
                         "from FASTMLP_DATA or ../shared/data instead of Gaussian noise; writes "
                         "results/gemm_mnist.json")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    ap.add_argument("--layers", default=None,
                    help="the MLP's widths, e.g. 784,1024,1024,10 (default 784,256,256,10); "
                         "writes results/gemm_<widths>.json")
    ap.add_argument("--batches", default=None,
                    help="batch sizes, e.g. 32,256 (default 1,32,64,256,1024)")
    args = ap.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    try:
        widths = [int(w) for w in args.layers.split(",")] if args.layers else None
        batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else BATCHES
    except ValueError:
        ap.error("--layers and --batches take comma-separated whole numbers, e.g. 784,512,10")
    if (widths is not None and (len(widths) < 2 or min(widths) < 1)) or min(batches) < 1:
        ap.error("--layers needs 2 or more widths and --batches sizes of 1 or more")
    layers = tuple(zip(widths, widths[1:])) if widths else LAYERS
    if args.mnist and args.out == ap.get_default("out"):
        args.out = os.path.join(HERE, "results", "gemm_mnist.json")
    elif widths and args.out == ap.get_default("out"):
        args.out = os.path.join(HERE, "results", f"gemm_{'-'.join(map(str, widths))}.json")

    backend = CtypesGemm(args.lib) if args.lib else CoreGemm()
    if args.kernel:
        force_kernel(args.lib or backend.core.__file__, args.kernel)
    blas, blas_text = openblas_info()
    dtypes = {"float32": [np.float32], "float64": [np.float64],
              "both": [np.float32, np.float64]}[args.dtype]
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; 1 thread for both")
    print(f"# NumPy {np.__version__}, BLAS: {blas_text}"
          + (f"; removed from env: {', '.join(_REMOVED)}" if _REMOVED else ""))
    print(f"# fastmlp kernels: f32 {backend.kernel_name(np.float32)}, "
          f"f64 {backend.kernel_name(np.float64)}; median of {rounds} rounds")

    rng = np.random.default_rng(0)
    mnist = None
    if args.mnist:
        from _common import DEFAULT_DATA
        from _worker import load_mnist
        mnist = load_mnist(str(DEFAULT_DATA))[0]
        mnist = mnist[rng.permutation(len(mnist))[:1024]]
    results = []
    header = (f"{'dtype':7} {'shape':7} {'m':>5} {'n':>5} {'k':>5} {'fastmlp':>9} {'numpy':>9} "
              f"{'ratio':>6} {'best':>6}")
    for dtype in dtypes:
        print()
        print(header + "   (GFLOP/s of medians; ratio = fastmlp / numpy speed, of medians and"
              " of best rounds)")
        for name, m, n, k, ta, tb in shapes(layers, batches):
            if (args.only and args.only not in name) or (mnist is not None and
                                                         name not in ("fwd1", "dW1")):
                continue
            a, b = operands(m, n, k, ta, tb, dtype, rng)
            if mnist is not None:  # X (batch x 784) by rows, or X^T as a transposed view
                a = mnist[:k].astype(dtype).T if ta else mnist[:m].astype(dtype)
            c_fm = np.empty((m, n), dtype)
            c_np = np.empty((m, n), dtype)
            f_fm = backend.make(a, b, c_fm)

            def f_np(a=a, b=b, c=c_np):
                np.matmul(a, b, out=c)

            f_fm()
            f_np()
            tol = 1e-4 if dtype == np.float32 else 1e-10
            scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
            err = float(np.max(np.abs(c_fm - c_np) / (scale + 1e-30)))
            if not err <= tol:
                raise SystemExit(f"{name} {m}x{n}x{k} {np.dtype(dtype).name}: "
                                 f"relative error {err:.3g}")
            (t_fm, b_fm), (t_np, b_np) = time_pair(f_fm, f_np, rounds)
            flops = 2.0 * m * n * k
            row = dict(dtype=np.dtype(dtype).name, shape=name, m=m, n=n, k=k,
                       a_transposed=ta, b_transposed=tb,
                       fastmlp_s=t_fm, numpy_s=t_np, fastmlp_best_s=b_fm, numpy_best_s=b_np,
                       fastmlp_gflops=flops / t_fm * 1e-9, numpy_gflops=flops / t_np * 1e-9,
                       ratio=t_np / t_fm, ratio_best=b_np / b_fm)
            results.append(row)
            print(f"{row['dtype']:7} {name:7} {m:5d} {n:5d} {k:5d} {row['fastmlp_gflops']:9.1f} "
                  f"{row['numpy_gflops']:9.1f} {row['ratio']:6.2f} {row['ratio_best']:6.2f}",
                  flush=True)
        sub = [r["ratio"] for r in results if r["dtype"] == np.dtype(dtype).name]
        if sub:
            geo = float(np.exp(np.mean(np.log(sub))))
            sub_b = [r["ratio_best"] for r in results if r["dtype"] == np.dtype(dtype).name]
            geo_b = float(np.exp(np.mean(np.log(sub_b))))
            print(f"geometric mean ratio ({np.dtype(dtype).name}): {geo:.3f} "
                  f"(best rounds: {geo_b:.3f})")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta = dict(cpu=cpu_model(), logical_cpus=os.cpu_count(), python=platform.python_version(),
                layers=[layers[0][0]] + [n_out for _, n_out in layers], batches=list(batches),
                a_operand="shuffled MNIST rows (first layer)" if args.mnist else "Gaussian",
                numpy=np.__version__, blas=blas, removed_env=sorted(_REMOVED), threads=1,
                rounds=rounds, statistic="median (and best) seconds per call over rounds",
                backend="ctypes:" + args.lib if args.lib else "fastmlp._core",
                fastmlp_kernels=dict(float32=backend.kernel_name(np.float32),
                                     float64=backend.kernel_name(np.float64)))
    with open(args.out, "w") as f:
        json.dump(dict(meta=meta, results=results), f, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
