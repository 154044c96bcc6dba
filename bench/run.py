"""Run every benchmark question of issue 3 in one go and print the tables.

    python bench/run.py            # everything: about 11 minutes on a quiet 2-core machine, more on a busy one
    python bench/run.py --quick    # fewer samples and repeats: about 3 minutes

Run it with the Python that has fastmlp installed (`pip install .`). PyTorch 2.13.0,
scikit-learn, threadpoolctl and matplotlib go into a separate venv (--peer-venv, default
$FASTMLP_BENCH_VENV or /tmp/benchvenv), created on the first run with
`pip install torch==2.13.0 scikit-learn threadpoolctl matplotlib numpy==<fastmlp's numpy>`;
fastmlp's own environment is never touched.

Questions (each is also a script of its own, see its --help):
  training   bench_training.py: samples/s of fastmlp, PyTorch, scikit-learn MLPClassifier(sgd)
             and a thin NumPy MLP at batch 1/32/256/1024 and 1/2 threads, ratios fastmlp/peer;
             GEMM 1024³ GFLOP/s (NumPy sgemm, fastmlp, PyTorch) and fastmlp's training GFLOP/s
  inference  bench_inference.py: batch-1 predict latency, batch-4096 predict throughput
  busy       bench_busy.py: 1 vs 2 threads at batch 32 and 256 with a CPU hog on one core
  memory     bench_memory.py: peak RSS of fit vs data + model bytes, RSS after epoch 1 vs 3
  gemm       bench_gemm.py: the GEMM alone against NumPy's BLAS on the layer shapes
  linear     bench_linear.py: Perceptron, Adaline, LogisticRegression against scikit-learn's
             nearest estimators (needs scikit-learn in fastmlp's environment: .[test])

Every peer runs in its own process with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS /
MKL_NUM_THREADS / FASTMLP_NUM_THREADS pinned (and torch.set_num_threads, fastmlp's n_threads);
the peers take turns epoch by epoch so that noise from other processes hits them alike; all
numbers are medians. Writes bench/results/latest.json (or --out), then runs bench/report.py with
the peers' Python to write performance.md (the README's performance section) and
training_throughput.png beside it.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import bench_busy
import bench_inference
import bench_memory
import bench_training
import report
from _common import (BENCH, RESULTS, add_common_args, child_env, cpu_steal_jiffies, finish, log,
                     new_results, parse_list, parser, peer_pythons, resolve_peers, write_json)

SECTIONS = ("training", "inference", "busy", "memory", "gemm", "linear")


def run_script(args, results, name, timeout, dtypes=False):
    """A benchmark script of its own (bench/<name>.py, fastmlp's Python, one process): run as
    it is, its output kept, and its JSON when it writes one."""
    script = BENCH / f"{name}.py"
    cmd = [args.fastmlp_python, str(script)]
    if args.quick:
        cmd.append("--quick")
    if dtypes:
        cmd += ["--dtype", "both"]
    json_out = RESULTS / f"run_{name}.json"
    cmd += ["--out", str(json_out)]  # leave the script's own default results file alone
    log(f"running {' '.join(cmd)}")
    t0 = time.perf_counter()
    env = child_env(1, "fastmlp")  # the run's snapshot of fastmlp
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "FASTMLP_NUM_THREADS"):
        env.pop(var)  # it chooses its own thread counts
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        out, code = r.stdout, r.returncode
        if code:
            out += "\n" + r.stderr.strip()[-600:]
    except subprocess.TimeoutExpired as e:
        raw = e.stdout or b""
        out, code = (raw.decode() if isinstance(raw, bytes) else raw), "timeout"
    results[name] = {"command": " ".join(Path(c).name if i == 0 else c
                                         for i, c in enumerate(cmd)),
                     "returncode": code, "seconds": round(time.perf_counter() - t0, 1),
                     "stdout_tail": out.strip().splitlines()[-80:]}
    if code == 0 and json_out.exists():
        try:
            results[name]["json"] = json.loads(json_out.read_text())
        except ValueError:
            pass
    if code:
        last = out.strip().splitlines()[-1:] or ["no output"]
        log(f"{name} failed ({code}): {last[0]}")


def main():
    p = add_common_args(parser(__doc__))
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"which questions to run (default: {','.join(SECTIONS)})")
    p.add_argument("--no-report", action="store_true",
                   help="do not run report.py (Markdown + plot) at the end")
    for mod in (bench_training, bench_inference, bench_busy, bench_memory):
        mod.add_args(p)
    args = p.parse_args()
    sections = parse_list(args.sections)
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise SystemExit(f"unknown section(s) {bad}; choose from {SECTIONS}")
    peers = resolve_peers(args)
    pythons = peer_pythons(args, peers)
    results = new_results(args, "all")
    results["sections"] = sections
    t0, steal0 = time.perf_counter(), cpu_steal_jiffies()
    out = Path(args.out) if args.out else RESULTS / "latest.json"
    steps = {"training": bench_training.run, "inference": bench_inference.run,
             "busy": bench_busy.run, "memory": bench_memory.run}
    for s in sections:
        if s == "gemm":
            run_script(args, results, "bench_gemm", 900, dtypes=True)
        elif s == "linear":
            run_script(args, results, "bench_linear", 900)
        else:
            steps[s](args, pythons, results)
        write_json(finish(results, t0, steal0), out)  # partial results survive an interruption
    results["targets"] = report.evaluate_targets(results)
    write_json(finish(results, t0, steal0), out)
    print(report.render(results, title=None))
    if not args.no_report:
        py = pythons.get("torch") or pythons.get("sklearn") or pythons.get("numpy") or sys.executable
        subprocess.run([py, str(BENCH / "report.py"), str(out), "--out",
                        str(out.parent / "performance.md"), "--plot",
                        str(out.parent / "training_throughput.png")], stdout=subprocess.DEVNULL,
                       env=child_env(1))
    log(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
