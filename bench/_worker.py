"""Child process of the bench scripts: one peer (fastmlp, torch, sklearn or numpy) at one
thread count, in its own process so each has its own OpenMP/BLAS runtime.

Not meant to be run by hand. Usage (what _common.Worker starts):

    python bench/_worker.py --peer torch --threads 2 --data ../shared/data/mnist
        then JSON commands on stdin, one per line, answers on stdout:
        {"cmd": "info"} | {"cmd": "train_setup", "batch": B, "warmup": n[, "variant": v]}
        {"cmd": "train_epoch", "batch": B, "n": n} | {"cmd": "gemm", "size": 1024, "reps": r}
        {"cmd": "infer_setup"} | {"cmd": "latency", "calls": c} | {"cmd": "throughput", "batch": 4096, "reps": r}
        {"cmd": "quit"}
    python bench/_worker.py --peer fastmlp --threads 1 --memory --batch 256 --epochs 3
        one-shot: RSS before/after loading data, after each epoch, and the peak; prints JSON

The thread-count environment variables are set by the parent; this also sets the libraries'
own knobs (torch.set_num_threads, fastmlp's n_threads, threadpoolctl where present).
"""
import argparse
import gc
import gzip
import json
import os
import platform
import resource
import sys
import time
import traceback
import warnings

import numpy as np

LAYERS = (784, 256, 256, 10)
LR = 0.01
SEED = 0
# the main setting, then others a user is as likely to train (bench_training --variants):
# hidden activation, optimizer (plain SGD lr 0.01, or Adam lr 1e-3 with the usual betas and eps)
VARIANTS = {"relu-sgd": ("relu", "sgd"), "tanh-sgd": ("tanh", "sgd"), "gelu-sgd": ("gelu", "sgd"),
            "relu-adam": ("relu", "adam")}
ADAM_LR = 1e-3


# --------------------------------------------------------------------------- data, memory
def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(folder):
    """MNIST train: X (60000, 784) float32 = x/255 (computed in float32, no float64
    temporary), y (60000,) int64."""
    u8 = load_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"))
    X = np.empty((u8.shape[0], 784), np.float32)
    np.divide(u8.reshape(-1, 784), np.float32(255.0), out=X, dtype=np.float32)
    del u8
    y = load_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    gc.collect()
    return X, y


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def reset_hwm():
    """Reset the kernel's peak-RSS mark (VmHWM) so the peak of fit alone can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keep = ("user_api", "internal_api", "version", "architecture", "threading_layer",
            "num_threads", "prefix", "filepath")
    return [{k: d.get(k) for k in keep} for d in threadpool_info()]


# --------------------------------------------------------------------------- peers
class FastMLP:
    name = "fastmlp"

    def __init__(self, threads):
        import fastmlp as fm
        self.fm, self.threads = fm, threads

    def info(self):
        fm = self.fm
        out = {"fastmlp": fm.__version__, "module": os.path.dirname(fm.__file__)}
        try:  # which build: others may reinstall fastmlp while a long run is going on
            import hashlib
            so = fm._core.__file__
            with open(so, "rb") as f:
                out["core_sha256"] = hashlib.sha256(f.read()).hexdigest()[:12]
            out["core_mtime"] = time.strftime("%Y-%m-%dT%H:%M:%S",
                                              time.localtime(os.path.getmtime(so)))
        except Exception:
            pass
        try:
            out["gemm_kernel_f32"] = fm._core.gemm_kernel_name("float32")
            out["openmp"] = bool(fm._core.have_openmp())
        except Exception as e:  # internal API; may change
            out["gemm_kernel_f32"] = f"unknown ({e})"
        return out

    def make(self, batch, variant="relu-sgd"):
        fm = self.fm
        act, opt = VARIANTS[variant]
        m = fm.Sequential([fm.Dense(LAYERS[1], act), fm.Dense(LAYERS[2], act),
                           fm.Dense(LAYERS[3])], input_dim=LAYERS[0], dtype="float32",
                          seed=SEED, n_threads=self.threads)
        m.compile(loss="softmax_cross_entropy",
                  optimizer=fm.SGD(lr=LR) if opt == "sgd" else fm.Adam(lr=ADAM_LR))
        self.model, self.batch = m, batch
        return m

    def n_params(self):
        return int(self.model.n_params)

    def epoch(self, X, y):
        h = self.model.fit(X, y, epochs=1, batch_size=self.batch, shuffle=True)
        return float(h["loss"][-1])

    def predict(self, X):
        return self.model.predict(X)

    def gemm(self, a, b, c):
        self.fm._core.gemm(a, b, c, 1.0, 0.0, self.threads)


class Torch:
    name = "torch"

    def __init__(self, threads):
        import torch
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        self.torch, self.threads = torch, threads
        self.gen = torch.Generator().manual_seed(SEED)

    def info(self):
        t = self.torch
        out = {"torch": t.__version__, "num_threads": t.get_num_threads(),
               "mkldnn": bool(t.backends.mkldnn.is_available()),
               "mkl": bool(t.backends.mkl.is_available())}
        try:
            out["cpu_capability"] = t.backends.cpu.get_cpu_capability()
        except Exception:
            pass
        try:
            pi = t.__config__.parallel_info().splitlines()
            out["parallel_info"] = [l.strip() for l in pi if l.strip()][:6]
        except Exception:
            pass
        return out

    def make(self, batch, variant="relu-sgd"):
        t = self.torch
        nn = t.nn
        t.manual_seed(SEED)
        act, opt = VARIANTS[variant]
        Act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[act]
        self.model = nn.Sequential(nn.Linear(LAYERS[0], LAYERS[1]), Act(),
                                   nn.Linear(LAYERS[1], LAYERS[2]), Act(),
                                   nn.Linear(LAYERS[2], LAYERS[3]))
        self.opt = (t.optim.SGD(self.model.parameters(), lr=LR) if opt == "sgd"
                    else t.optim.Adam(self.model.parameters(), lr=ADAM_LR))
        self.crit = nn.CrossEntropyLoss()
        self.batch = batch
        self._cache = {}
        return self.model

    def n_params(self):
        return sum(p.numel() for p in self.model.parameters())

    def _tensors(self, X, y):
        key = (X.__array_interface__["data"][0], X.shape[0])
        if key not in self._cache:  # zero-copy views of the same NumPy data
            self._cache = {key: (self.torch.from_numpy(X), self.torch.from_numpy(y))}
        return self._cache[key]

    def epoch(self, X, y):
        """The standard loop, PyTorch at its best: pre-made tensors, one permutation per
        epoch gathered once, then contiguous slices (a DataLoader without workers or
        per-sample collation)."""
        t = self.torch
        Xt, yt = self._tensors(X, y)
        n, B = Xt.shape[0], self.batch
        perm = t.randperm(n, generator=self.gen)
        Xp, yp = Xt[perm], yt[perm]
        model, opt, crit = self.model, self.opt, self.crit
        model.train()
        loss = None
        for s in range(0, n, B):
            opt.zero_grad(set_to_none=True)
            loss = crit(model(Xp[s:s + B]), yp[s:s + B])
            loss.backward()
            opt.step()
        return float(loss.detach())

    def prepare_predict(self, X):
        return self.torch.from_numpy(X)

    def predict(self, Xt):
        t = self.torch
        with t.inference_mode():
            return t.softmax(self.model(Xt), dim=1)

    def gemm(self, a, b, c):
        self.torch.mm(a, b, out=c)

    def gemm_arrays(self, a, b, c):
        t = self.torch
        return t.from_numpy(a), t.from_numpy(b), t.from_numpy(c)


class Sklearn:
    name = "sklearn"

    def __init__(self, threads):
        import sklearn
        from sklearn.exceptions import ConvergenceWarning
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        self.sklearn, self.threads = sklearn, threads
        try:
            from threadpoolctl import threadpool_limits
            self._limits = threadpool_limits(threads)  # on top of the env vars
        except ImportError:
            pass

    def info(self):
        return {"sklearn": self.sklearn.__version__}

    def make(self, batch, variant="relu-sgd"):
        from sklearn.neural_network import MLPClassifier
        act, opt = VARIANTS[variant]
        self.model = MLPClassifier(
            hidden_layer_sizes=LAYERS[1:-1], activation=act, solver=opt,
            learning_rate="constant", learning_rate_init=LR if opt == "sgd" else ADAM_LR,
            momentum=0.0,
            nesterovs_momentum=False, alpha=0.0, batch_size=batch, max_iter=1,
            warm_start=True, shuffle=True, random_state=SEED, early_stopping=False, tol=0.0)
        self.batch = batch
        return self.model

    def n_params(self):
        return sum(w.size for w in self.model.coefs_) + sum(b.size for b in self.model.intercepts_)

    def epoch(self, X, y):
        self.model.fit(X, y)  # max_iter=1 + warm_start: one epoch per call
        return float(self.model.loss_)

    def predict(self, X):
        return self.model.predict_proba(X)


class NumpyMLP:
    """A thin NumPy MLP: plain matmuls (OpenBLAS), in-place updates; the practical limit of
    'NumPy plus a BLAS' for this model."""
    name = "numpy"

    def __init__(self, threads):
        self.threads = threads
        try:
            from threadpoolctl import threadpool_limits
            self._limits = threadpool_limits(threads)
        except ImportError:
            pass

    def info(self):
        return {"numpy": np.__version__}

    def make(self, batch, variant="relu-sgd"):
        if variant != "relu-sgd":
            raise ValueError(f"the NumPy MLP has only ReLU and plain SGD, not {variant!r}")
        rng = np.random.default_rng(SEED)
        self.W, self.b = [], []
        for fan_in, fan_out in zip(LAYERS[:-1], LAYERS[1:]):
            self.W.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in))
                          .astype(np.float32))
            self.b.append(np.zeros(fan_out, np.float32))
        self.rng, self.batch = rng, batch
        return self

    def n_params(self):
        return sum(w.size for w in self.W) + sum(b.size for b in self.b)

    def _forward(self, x):
        hs = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = hs[-1] @ W
            z += b
            if i < len(self.W) - 1:
                np.maximum(z, 0, out=z)
            hs.append(z)
        return hs

    def epoch(self, X, y):
        n, B = X.shape[0], self.batch
        perm = self.rng.permutation(n)
        Xp, yp = X[perm], y[perm]
        W, b, L = self.W, self.b, len(self.W)
        lr = np.float32(LR)
        loss = 0.0
        for s in range(0, n, B):
            xb, yb = Xp[s:s + B], yp[s:s + B]
            m = xb.shape[0]
            hs = self._forward(xb)
            z = hs[-1]
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            rows = np.arange(m)
            loss = -float(np.log(z[rows, yb]).mean()) if s + B >= n else loss
            z[rows, yb] -= 1.0
            z *= np.float32(1.0 / m)
            g = z
            for i in range(L - 1, -1, -1):
                a = hs[i]
                dW = a.T @ g
                db = g.sum(axis=0)
                if i > 0:
                    g_prev = g @ W[i].T
                    g_prev *= a > 0
                dW *= lr
                W[i] -= dW
                db *= lr
                b[i] -= db
                if i > 0:
                    g = g_prev
        return loss

    def predict(self, X):
        z = self._forward(X)[-1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def gemm(self, a, b, c):
        np.matmul(a, b, out=c)


PEER_CLASSES = {"fastmlp": FastMLP, "torch": Torch, "sklearn": Sklearn, "numpy": NumpyMLP}


# --------------------------------------------------------------------------- commands
def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


class Session:
    def __init__(self, peer, X, y):
        self.peer, self.X, self.y = peer, X, y

    def info(self):
        out = {"python": platform.python_version(), "numpy": np.__version__,
               "executable": sys.executable, "threads": self.peer.threads,
               "blas": blas_info()}
        out.update(self.peer.info())
        return out

    def train_setup(self, batch, warmup, variant="relu-sgd"):
        self.peer.make(batch, variant)
        w = max(batch, min(warmup, self.X.shape[0]))
        wall, cpu, _ = timed(lambda: self.peer.epoch(self.X[:w], self.y[:w]))
        return {"warmup_n": w, "warmup_wall": wall, "n_params": self.peer.n_params()}

    def train_epoch(self, batch, n, inputs="mnist"):
        assert batch == self.peer.batch, "train_setup first"
        X, y = self.zero_free()[:n] if inputs == "zero_free" else self.X[:n], self.y[:n]
        wall, cpu, loss = timed(lambda: self.peer.epoch(X, y))
        return {"wall": wall, "cpu": cpu, "loss": loss}

    def zero_free(self):
        """MNIST with no zero input: x * 255/256 + 1/256 (same range, same labels). Kernels that
        skip zero inputs do all the work here, so the training GFLOP/s counts executed FLOPs."""
        if getattr(self, "_Xz", None) is None:
            self._Xz = self.X * np.float32(255 / 256) + np.float32(1 / 256)
        return self._Xz

    def gemm(self, size, reps):
        if not hasattr(self.peer, "gemm"):
            return {"times": []}
        rng = np.random.default_rng(1)
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        c = np.empty((size, size), np.float32)
        if hasattr(self.peer, "gemm_arrays"):
            a, b, c = self.peer.gemm_arrays(a, b, c)
        self.peer.gemm(a, b, c)  # warm-up
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            self.peer.gemm(a, b, c)
            times.append(time.perf_counter() - t0)
        return {"times": times}

    def infer_setup(self):
        self.peer.make(256)
        # fitted weights (sklearn needs a fit)
        self.peer.epoch(self.X[:8192], self.y[:8192])
        prep = getattr(self.peer, "prepare_predict", lambda a: a)
        self.Xi = prep(self.X)
        for i in range(200):
            self.peer.predict(self.Xi[i:i + 1])
        # 8: fastmlp's predict times its large calls on the cap and on 1 thread (a warm-up, one
        # timed, a switch, one timed), keeps the faster, and 2 calls later times the other once
        # more (a switch, one timed)
        for _ in range(8):
            self.peer.predict(self.Xi[:4096])
        return {}

    def latency(self, calls, offset=0):
        pred, Xi = self.peer.predict, self.Xi
        n = Xi.shape[0]
        ns = []
        clock = time.perf_counter_ns
        for k in range(calls):
            i = (offset + k * 7919) % n
            xb = Xi[i:i + 1]
            t0 = clock()
            pred(xb)
            ns.append(clock() - t0)
        return {"ns": ns}

    def throughput(self, batch, reps):
        pred, xb = self.peer.predict, self.Xi[:batch]
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            pred(xb)
            times.append(time.perf_counter() - t0)
        return {"times": times}


def serve(args):
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                      # anything a library prints goes to stderr
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        peer = PEER_CLASSES[args.peer](args.threads)
        X, y = load_mnist(args.data)
        sess = Session(peer, X, y)
        send({"info": sess.info()})
    except Exception as e:
        send({"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
        return 1
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        if cmd == "quit":
            break
        try:
            out = {"info": sess.info()} if cmd == "info" else getattr(sess, cmd)(**msg)
            send(out)
        except Exception as e:
            send({"error": f"{cmd}: {type(e).__name__}: {e}", "traceback": traceback.format_exc()})
    return 0


def memory(args):
    """Peak RSS of training against the bytes of the data and the model; RSS after epoch 1
    and after the last epoch (growth would mean a per-step leak)."""
    out = {"peer": args.peer, "threads": args.threads, "batch": args.batch, "epochs": args.epochs}
    peer = PEER_CLASSES[args.peer](args.threads)
    gc.collect()
    out["rss_start"] = rss_bytes()
    X, y = load_mnist(args.data)
    out["n"] = int(X.shape[0])
    out["rss_after_data"] = rss_bytes()
    out["data_bytes"] = int(X.nbytes + y.nbytes)
    peer.make(args.batch)
    if args.peer == "sklearn":  # sklearn builds its weights inside fit
        out["model_bytes"] = 4 * (sum(a * b for a, b in zip(LAYERS[:-1], LAYERS[1:])) + sum(LAYERS[1:]))
    else:
        out["model_bytes"] = int(peer.n_params()) * 4
    gc.collect()
    out["rss_before_fit"] = rss_bytes()
    out["maxrss_before_fit"] = maxrss_bytes()
    out["hwm_reset"] = reset_hwm()
    rss_epochs, walls = [], []
    for _ in range(args.epochs):
        wall, _, _ = timed(lambda: peer.epoch(X, y))
        walls.append(wall)
        rss_epochs.append(rss_bytes())
    out["rss_after_epoch"] = rss_epochs
    out["epoch_wall"] = walls
    out["peak_rss_fit"] = hwm_bytes() if out["hwm_reset"] else None  # since the reset
    out["ru_maxrss"] = maxrss_bytes()                                # whole process
    out["info"] = Session(peer, X, y).info()
    print(json.dumps(out))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, choices=sorted(PEER_CLASSES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", required=True)
    p.add_argument("--memory", action="store_true")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    return memory(args) if args.memory else serve(args)


if __name__ == "__main__":
    sys.exit(main())
