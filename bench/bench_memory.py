"""Memory: peak RSS of training against the size of the data plus the model, and RSS after
epoch 1 against RSS after the last epoch (growth would be a per-step leak).

Usage (with the Python that has fastmlp installed):
    python bench/bench_memory.py [--peers fastmlp,torch,sklearn,numpy] [--memory-batch 256]
                                 [--memory-epochs 5]

Method: each peer in a fresh process at 1 thread: load MNIST train (60000×784 float32 + int64
labels), build the model, reset the kernel's peak-RSS mark (VmHWM, via /proc/self/clear_refs),
train --memory-epochs epochs of all 60000 samples at --memory-batch, reading RSS after each
epoch; then VmHWM (peak during fit) and getrusage ru_maxrss (peak of the whole process,
including the interpreter, the libraries and loading the data).

Prints the table, writes bench/results/bench_memory.json (or --out).
"""
import json
import subprocess
import sys
import time

from _common import (child_env, log, resolve_peers, script_main, WORKER)


def add_args(p):
    p.add_argument("--memory-batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--memory-epochs", type=int, default=None,
                   help="epochs (default 5, quick 4: RSS after epochs 1 and 3 as the issue asks, "
                        "then on to the last epoch for the steady state)")


def run(args, pythons, results):
    out = results.setdefault("memory", [])
    for p in resolve_peers(args):
        cmd = [pythons[p], str(WORKER), "--peer", p, "--threads", "1", "--data", args.data,
               "--memory", "--batch", str(args.memory_batch),
               "--epochs", str(args.memory_epochs or (4 if args.quick else 5))]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(1, p), timeout=1800)
        if r.returncode != 0:
            results["errors"].append(f"memory {p}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
            log(results["errors"][-1])
            continue
        e = json.loads(r.stdout.strip().splitlines()[-1])
        results["versions"].setdefault(p, e.pop("info"))
        out.append(e)
        ra = e["rss_after_epoch"]
        log(f"memory {p} ({time.perf_counter() - t0:.0f} s): data+model "
            f"{(e['data_bytes'] + e['model_bytes']) / 2**20:.1f} MB, before fit "
            f"{e['rss_before_fit'] / 2**20:.1f} MB, fit peak "
            f"{(e['peak_rss_fit'] or 0) / 2**20:.1f} MB, epoch 1 {ra[0] / 2**20:.1f} MB, "
            f"last {ra[-1] / 2**20:.1f} MB")
    return results


def main():
    script_main(__doc__, add_args, run, "memory", ["memory", "targets"])


if __name__ == "__main__":
    sys.exit(main())
