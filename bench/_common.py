"""Shared plumbing for the bench scripts: options, the peers' Python environments, worker
processes, the machine and version facts, and the results file.

Not a script. The bench scripts (run.py, bench_training.py, bench_inference.py, bench_busy.py,
bench_memory.py) import it; _worker.py is the child process that runs one peer.

Model everywhere: MLP 784-256-256-10, ReLU, softmax cross-entropy, plain SGD (lr 0.01, no
momentum, no weight decay), float32, MNIST train images scaled x/255.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
WORKER = BENCH / "_worker.py"
DEFAULT_DATA = Path(os.environ.get("FASTMLP_DATA", REPO.parent / "shared" / "data")) / "mnist"
DEFAULT_VENV = Path(os.environ.get("FASTMLP_BENCH_VENV", "/tmp/benchvenv"))

PEERS = ("fastmlp", "torch", "sklearn", "numpy")
# fastmlp again at batch >= 256 on MNIST without zero inputs (bench_training, report): its GEMMs
# skip zero inputs, so on MNIST it executes fewer FLOPs than it is credited with
ZERO_FREE = "fastmlp_zero_free"
LAYERS = (784, 256, 256, 10)
TORCH_VERSION = "2.13.0"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "FASTMLP_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Set on some processors for old OpenBLAS builds; they slow a current numpy, so the peers'
# processes run without them (their OpenBLAS kernel is reported via threadpoolctl).
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Targets of issue 3 (1 thread, float32): fastmlp / peer training samples/s.
TRAIN_TARGETS = {
    "torch": {1: 10.0, 32: 2.5, 256: 1.5, 1024: 1.5},
    "sklearn": {1: 10.0, 32: 4.0, 256: 2.0, 1024: 1.5},
}
GEMM_TARGET = 0.90          # training GFLOP/s at batch >= 256 vs numpy sgemm 1024^3
LATENCY_TARGET = 5.0        # batch-1 latency: torch / fastmlp >= 5
THROUGHPUT_TARGET = 1.1     # batch-4096 predict: fastmlp / torch >= 1.1


def train_flops_per_sample(layers=LAYERS):
    """Real FLOPs of one training sample: forward X@W, backward dW for every layer, dX for all
    but the input layer (2 FLOPs per multiply-add; bias, activations and loss not counted)."""
    macs = [a * b for a, b in zip(layers[:-1], layers[1:])]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def infer_flops_per_sample(layers=LAYERS):
    return 2 * sum(a * b for a, b in zip(layers[:-1], layers[1:]))


# --------------------------------------------------------------------------- options
def add_common_args(p, quick_help=True):
    p.add_argument("--quick", action="store_true",
                   help="fewer samples and repeats (about 3 minutes for everything on a quiet "
                        "2-core machine)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help=f"comma-separated subset of {','.join(PEERS)} (default: all)")
    p.add_argument("--threads", default="1,2", help="thread counts (default: 1,2)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per measurement, median reported (default 5, quick 3)")
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="folder with the MNIST IDX .gz files (default: ../shared/data/mnist)")
    p.add_argument("--peer-venv", default=str(DEFAULT_VENV),
                   help="venv for PyTorch/scikit-learn/NumPy peers, created on first use "
                        "(default: $FASTMLP_BENCH_VENV or /tmp/benchvenv)")
    p.add_argument("--peer-python", default=None,
                   help="use this Python for the peers instead of --peer-venv (no install)")
    p.add_argument("--fastmlp-python", default=sys.executable,
                   help="Python with fastmlp installed (default: the one running this script)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop repeating a peer at one setting once its timed epochs add up to "
                        "this many seconds (at least one is kept; default 25, quick 8): bounds "
                        "the run when a peer collapses on a busy machine")
    p.add_argument("--settle", type=float, default=0.2,
                   help="seconds to pause before each timed call so that the previous peer's "
                        "threads stop spinning (default 0.2)")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each timed epoch wait up to this many seconds for the rest of "
                        "the machine to use < 0.3 CPUs (default 0: do not wait); for shared "
                        "machines, at the cost of a longer run")
    p.add_argument("--no-snapshot", action="store_true",
                   help="import the installed fastmlp in every process instead of a copy taken "
                        "at the start of the run")
    p.add_argument("--out", default=None, help="JSON file to write (default: bench/results/...)")
    return p


def parse_list(text, cast=str):
    return [cast(x) for x in str(text).replace(" ", "").split(",") if x]


def resolve_peers(args):
    peers = parse_list(args.peers)
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise SystemExit(f"unknown peer(s) {bad}; choose from {PEERS}")
    return peers


def repeats(args):
    return args.repeats if args.repeats else (3 if args.quick else 5)


def max_seconds(args):
    return args.max_seconds if args.max_seconds else (8.0 if args.quick else 25.0)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environments
FASTMLP_SNAPSHOT = None   # folder holding a private copy of the installed fastmlp package


def child_env(threads, peer=None):
    """Environment of a peer's process: thread counts pinned, OpenBLAS overrides removed;
    fastmlp's processes import the run's snapshot of fastmlp (see snapshot_fastmlp)."""
    env = dict(os.environ)
    if peer == "fastmlp" and FASTMLP_SNAPSHOT:
        env["PYTHONPATH"] = os.pathsep.join(
            [FASTMLP_SNAPSHOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    for var in OPENBLAS_OVERRIDES:
        env.pop(var, None)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _python_ok(python, code, peer=None):
    try:
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                           env=child_env(1, peer))
        return r.returncode == 0, (r.stderr or r.stdout).strip()[-400:]
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)


def numpy_version(python):
    r = subprocess.run([python, "-c", "import numpy; print(numpy.__version__)"],
                       capture_output=True, text=True, env=child_env(1))
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_peer_python(args):
    """Python for the torch/sklearn/numpy peers: --peer-python as given, else the venv at
    --peer-venv, created (pip install torch==2.13.0 scikit-learn threadpoolctl matplotlib and the
    fastmlp interpreter's numpy version) when it is missing or incomplete. Never touches the
    fastmlp interpreter's environment."""
    if args.peer_python:
        return args.peer_python
    venv = Path(args.peer_venv)
    py = venv / "bin" / "python"
    check = "import torch, sklearn, threadpoolctl, numpy; assert torch.__version__.startswith('%s')" \
        % TORCH_VERSION
    if py.exists() and _python_ok(str(py), check)[0]:
        return str(py)
    log(f"creating the peers' venv {venv} (torch=={TORCH_VERSION}, scikit-learn, threadpoolctl, "
        "matplotlib); this takes a few minutes once")
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pkgs = [f"torch=={TORCH_VERSION}", "scikit-learn", "threadpoolctl", "matplotlib"]
    npv = numpy_version(args.fastmlp_python)
    pip = [str(py), "-m", "pip", "install", "-q"]
    r = subprocess.run(pip + pkgs + ([f"numpy=={npv}"] if npv else []))
    if r.returncode != 0 and npv:
        log(f"numpy=={npv} did not install beside torch; trying without the pin")
        r = subprocess.run(pip + pkgs)
    if r.returncode != 0:
        raise SystemExit(f"could not install the peers into {venv}; see pip's message above")
    ok, msg = _python_ok(str(py), check)
    if not ok:
        raise SystemExit(f"the peers' venv {venv} is unusable: {msg}")
    return str(py)


def snapshot_fastmlp(args):
    """Copy the installed fastmlp package to a private folder that every fastmlp process of
    this run imports, so that a reinstall during a long run (others rebuilding) cannot mix two
    builds in one set of results. --no-snapshot imports the installed package directly."""
    global FASTMLP_SNAPSHOT
    if getattr(args, "no_snapshot", False):
        return None
    r = subprocess.run([args.fastmlp_python, "-c",
                        "import fastmlp, os; print(os.path.dirname(fastmlp.__file__))"],
                       capture_output=True, text=True, env=child_env(1))
    src = r.stdout.strip()
    if r.returncode != 0 or not src:
        return None
    dst = tempfile.mkdtemp(prefix="fastmlp-bench-")
    atexit.register(shutil.rmtree, dst, True)
    shutil.copytree(src, os.path.join(dst, "fastmlp"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    FASTMLP_SNAPSHOT = dst
    ok, msg = _python_ok(args.fastmlp_python,
                         f"import fastmlp; assert fastmlp.__file__.startswith({dst!r}), "
                         "fastmlp.__file__", peer="fastmlp")
    if not ok:
        log(f"could not use a snapshot of fastmlp ({msg}); importing the installed package")
        FASTMLP_SNAPSHOT = None
        return None
    log(f"fastmlp snapshot: {src} copied to {dst} for this run")
    return dst


def peer_pythons(args, peers):
    ok, msg = _python_ok(args.fastmlp_python, "import fastmlp")
    if "fastmlp" in peers and not ok:
        raise SystemExit(f"{args.fastmlp_python} cannot import fastmlp ({msg}); "
                         "install it with `pip install .` first")
    if "fastmlp" in peers:
        snapshot_fastmlp(args)
    others = [p for p in peers if p != "fastmlp"]
    peer_py = ensure_peer_python(args) if others else None
    return {p: (args.fastmlp_python if p == "fastmlp" else peer_py) for p in peers}


# --------------------------------------------------------------------------- workers
class WorkerError(RuntimeError):
    pass


class Worker:
    """One peer at one thread count in its own process (own OpenMP runtime), driven by JSON
    lines on stdin/stdout. Idle workers block on stdin, so they do not disturb the others."""

    def __init__(self, peer, threads, python, data, timeout=900):
        self.peer, self.threads, self.timeout = peer, threads, timeout
        self.proc = subprocess.Popen(
            [python, str(WORKER), "--peer", peer, "--threads", str(threads), "--data", str(data)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(threads, peer), text=True,
            bufsize=1)
        self.info = self._read()["info"]

    def _read(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.close(kill=True)
            raise WorkerError(f"{self.peer} (threads={self.threads}) timed out")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise WorkerError(f"{self.peer} (threads={self.threads}) exited with code {code}")
        msg = json.loads(line)
        if "error" in msg:
            raise WorkerError(f"{self.peer} (threads={self.threads}): {msg['error']}")
        return msg

    def call(self, cmd, **kw):
        kw["cmd"] = cmd
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self, kill=False):
        if self.proc.poll() is None:
            if not kill:
                try:
                    self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    self.proc.stdin.flush()
                    self.proc.wait(timeout=30)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def start_workers(specs, pythons, data, errors):
    """Start workers for (peer, threads) pairs; a peer that fails to start is reported in
    errors and left out."""
    workers = {}
    for peer, threads in specs:
        try:
            workers[(peer, threads)] = Worker(peer, threads, pythons[peer], data)
        except (WorkerError, OSError, json.JSONDecodeError) as e:
            errors.append(f"{peer} threads={threads}: could not start ({e})")
            log(errors[-1])
    return workers


def close_workers(workers):
    for w in workers.values():
        w.close()


def rotated(items, k):
    """items rotated by k: each round starts with a different peer."""
    k %= max(1, len(items))
    return items[k:] + items[:k]


# --------------------------------------------------------------------------- a CPU hog
class Hog:
    """Busy neighbours: one process per listed CPU spinning in pure Python, pinned there."""

    CODE = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"

    def __init__(self, cpus):
        self.cpus = list(cpus)
        self.procs = []

    def __enter__(self):
        for cpu in self.cpus:
            self.procs.append(subprocess.Popen([sys.executable, "-c", self.CODE, str(cpu)]))
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []


# --------------------------------------------------------------------------- stats
def median(xs):
    return statistics.median(xs) if xs else None


def quantile(xs, q):
    if not xs:
        return None
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[i]


# --------------------------------------------------------------------------- facts
def _run(cmd, cwd=None):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def loadavg():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def cpu_busy_seconds():
    """CPU seconds all CPUs have spent busy since boot (/proc/stat; 10 ms resolution)."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def wait_quiet(max_wait, threshold=0.3, window=0.5):
    """Wait (at most max_wait seconds) until the rest of the machine uses less than
    `threshold` CPUs over `window` seconds; our workers are idle meanwhile. Returns the last
    load seen."""
    deadline = time.perf_counter() + max_wait
    load = None
    while True:
        b0, t0 = cpu_busy_seconds(), time.perf_counter()
        time.sleep(window)
        b1, t1 = cpu_busy_seconds(), time.perf_counter()
        if b0 is None or b1 is None:
            return None
        load = (b1 - b0) / (t1 - t0)
        if load < threshold or t1 >= deadline:
            return load


def timed_call(worker, settle, cmd, quiet_wait=0.0, **kw):
    """worker.call after a pause that lets the previous peer's spinning threads go to sleep
    (OpenMP and OpenBLAS threads busy-wait for a while after their last task); adds
    'foreign_load': CPUs' worth of busy time of everything else during the call (other
    processes on the machine, or our idle workers if they still spun)."""
    if quiet_wait:
        wait_quiet(quiet_wait)
    elif settle:
        time.sleep(settle)
    b0, t0 = cpu_busy_seconds(), time.perf_counter()
    out = worker.call(cmd, **kw)
    b1, wall = cpu_busy_seconds(), time.perf_counter() - t0
    if b0 is not None and b1 is not None and "cpu" in out and wall > 0:
        out["foreign_load"] = max(0.0, (b1 - b0) - out["cpu"]) / wall
    return out


def cpu_steal_jiffies():
    """(steal, total) jiffies over all CPUs from /proc/stat: the VM's stolen time."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return f[7] if len(f) > 7 else 0, sum(f)
    except (OSError, ValueError):
        return None


def machine_info():
    info = {"platform": platform.platform(), "nproc": os.cpu_count()}
    try:
        info["cpus_available"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    lscpu = _run(["lscpu"]) or ""
    keep = ("Model name", "Vendor ID", "CPU family", "Model", "Stepping", "CPU(s)",
            "Thread(s) per core", "Core(s) per socket", "Socket(s)", "Hypervisor vendor",
            "L1d cache", "L2 cache", "L3 cache", "CPU max MHz", "BogoMIPS")
    for line in lscpu.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in keep:
            info[k.strip()] = v.strip()
        if k.strip() == "Flags":
            flags = set(v.split())
            info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                        "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
                            if f in flags]
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()
        info["memory_gib"] = round(int(mem[1]) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    return info


def fastmlp_source_info():
    commit = _run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO)
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no", "--", "csrc", "src"],
                 cwd=REPO)
    return {"git_commit": commit, "uncommitted_changes_in_csrc_src": bool(dirty) if dirty is not None else None}


def environment_facts():
    return {
        "openblas_overrides_in_caller": {v: os.environ[v] for v in OPENBLAS_OVERRIDES
                                         if v in os.environ},
        "openblas_overrides_in_children": "unset",
        "thread_vars_in_children": list(THREAD_VARS),
    }


def new_results(args, section):
    return {
        "schema": 1,
        "section": section,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "quick": bool(args.quick),
        "machine": machine_info(),
        "environment": environment_facts(),
        "fastmlp_source": fastmlp_source_info(),
        "model": {"layers": list(LAYERS), "activation": "relu", "loss": "softmax cross-entropy",
                  "optimizer": "SGD(lr=0.01), no momentum, no weight decay", "dtype": "float32",
                  "train_flops_per_sample": train_flops_per_sample(),
                  "infer_flops_per_sample": infer_flops_per_sample(),
                  "data": "MNIST train, x/255 float32, first n samples, shuffled each epoch"},
        "protocol": {"repeats": repeats(args), "settle_s": args.settle,
                     "quiet_wait_s": args.quiet_wait, "max_seconds_per_setting": max_seconds(args),
                     "peers": resolve_peers(args), "threads": parse_list(args.threads, int),
                     "data": str(args.data)},
        "loadavg_start": loadavg(),
        "versions": {},
        "errors": [],
    }


def record_versions(results, workers):
    """Versions as each peer process reports them (one per peer)."""
    for (peer, _), w in workers.items():
        results["versions"].setdefault(peer, w.info)
        if peer == "fastmlp" and w.info.get("core_sha256"):
            builds = results.setdefault("fastmlp_builds", [])
            b = {"core_sha256": w.info["core_sha256"], "core_mtime": w.info.get("core_mtime")}
            if b not in builds:
                builds.append(b)
                if len(builds) > 1:
                    results["errors"].append(
                        f"fastmlp was reinstalled during the run: builds {builds}; the numbers "
                        "mix them")
                    log(results["errors"][-1])


def finish(results, t0, steal0=None):
    results["loadavg_end"] = loadavg()
    results["duration_s"] = round(time.perf_counter() - t0, 1)
    steal1 = cpu_steal_jiffies()
    if steal0 and steal1 and steal1[1] > steal0[1]:
        results["cpu_steal_fraction"] = round((steal1[0] - steal0[0]) / (steal1[1] - steal0[1]), 4)
    return results


def write_json(results, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    log(f"wrote {path}")
    return path


def parser(doc):
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def script_main(doc, add_args, run, section, report_sections):
    """The command line of one benchmark script: parse, run the peers, write JSON, print."""
    import report
    p = add_common_args(parser(doc))
    add_args(p)
    args = p.parse_args()
    pythons = peer_pythons(args, resolve_peers(args))
    results = new_results(args, section)
    t0, steal0 = time.perf_counter(), cpu_steal_jiffies()
    run(args, pythons, results)
    finish(results, t0, steal0)
    write_json(results, args.out or RESULTS / f"bench_{section}.json")
    print(report.render(results, report_sections, title=None))
