"""Busy neighbour: training speed at 1 and 2 threads while another process spins on a core.
On a shared machine a 2-thread run must never be much slower than a 1-thread run; runtimes
whose threads spin-wait at barriers (PyTorch's OpenMP) collapse when a neighbour takes a core.

Usage (with the Python that has fastmlp installed):
    python bench/bench_busy.py [--quick] [--peers fastmlp,torch] [--busy-batches 32,256]
                               [--busy-samples 10000] [--hog-cpus 1]

Method: one process per peer at 1 thread and one at 2 threads. For each batch size every
process builds a fresh model and warms up; then --repeats rounds of one timed epoch each over
the same n samples on a quiet machine, then a CPU hog (a Python process spinning, pinned to
each CPU in --hog-cpus; default the last CPU) is started and the same rounds are timed again;
the hog is killed. Reported: samples/s quiet and busy, the 2-thread time over the 1-thread time
when busy (above 1× = 2 threads slower) and the 2-thread slowdown from quiet to busy.
Only fastmlp and PyTorch by default (--peers to add others).

Prints the table, writes bench/results/bench_busy.json (or --out).
"""
import os
import sys
import time

from _common import (close_workers, Hog, log, max_seconds, median, parse_list, record_versions,
                     repeats, resolve_peers, rotated, script_main, start_workers, timed_call,
                     WorkerError)


def add_args(p):
    p.add_argument("--busy-batches", default="32,256", help="batch sizes (default 32,256)")
    p.add_argument("--busy-samples", type=int, default=None,
                   help="samples per timed epoch (default 10000, quick 4000)")
    p.add_argument("--busy-peers", default="fastmlp,torch",
                   help="peers for this question (default fastmlp,torch; intersected with --peers)")
    p.add_argument("--hog-cpus", default=None,
                   help="CPUs to run a spinning hog on (default: the last CPU)")


def run(args, pythons, results):
    peers = [p for p in resolve_peers(args) if p in parse_list(args.busy_peers)]
    R = repeats(args)
    n = args.busy_samples or (4000 if args.quick else 10000)
    batches = parse_list(args.busy_batches, int)
    cpus = sorted(os.sched_getaffinity(0))
    hog_cpus = parse_list(args.hog_cpus, int) if args.hog_cpus else [cpus[-1]]
    out = results.setdefault("busy", [])
    specs = [(p, T) for p in peers for T in (1, 2)]
    log(f"busy neighbour: starting {specs}; hog on CPU {hog_cpus}")
    workers = start_workers(specs, pythons, args.data, results["errors"])
    record_versions(results, workers)
    try:
        for B in batches:
            live = {}
            for key, w in workers.items():
                try:
                    w.call("train_setup", batch=B, warmup=min(n, 4096))
                    live[key] = w
                except WorkerError as e:
                    results["errors"].append(f"busy b{B}: {e}")
            walls = {"quiet": {k: [] for k in live}, "busy": {k: [] for k in live}}
            foreign = {"quiet": {k: [] for k in live}, "busy": {k: [] for k in live}}

            def rounds(mode):
                for rnd in range(R):
                    for key in rotated(list(live), rnd):
                        done = walls[mode][key]
                        if done and sum(done) >= max_seconds(args):
                            continue
                        try:
                            o = timed_call(live[key], args.settle, "train_epoch", batch=B, n=n,
                                           quiet_wait=args.quiet_wait if mode == "quiet" else 0)
                            walls[mode][key].append(o["wall"])
                            foreign[mode][key].append(o.get("foreign_load"))
                        except WorkerError as e:
                            results["errors"].append(f"busy b{B} {key}: {e}")

            t0 = time.perf_counter()
            rounds("quiet")
            with Hog(hog_cpus):
                rounds("busy")
            for (p, T) in live:
                q, b = walls["quiet"][(p, T)], walls["busy"][(p, T)]
                if q and b:
                    out.append({"peer": p, "threads": T, "batch": B, "n": n,
                                "quiet_wall": q, "busy_wall": b,
                                "quiet_foreign_load": foreign["quiet"][(p, T)],
                                "busy_foreign_load": foreign["busy"][(p, T)],
                                "quiet_sps": n / median(q), "busy_sps": n / median(b)})
            log(f"busy B={B} ({time.perf_counter() - t0:.0f} s): " + "; ".join(
                f"{e['peer']} T{e['threads']} quiet {e['quiet_sps']:,.0f} busy {e['busy_sps']:,.0f}"
                for e in out if e["batch"] == B))
    finally:
        close_workers(workers)
    results["busy_config"] = {"repeats": R, "n": n, "batches": batches, "hog_cpus": hog_cpus,
                              "hog": "python -c 'while True: pass' pinned to each hog CPU"}
    return results


def main():
    script_main(__doc__, add_args, run, "busy", ["busy", "targets"])


if __name__ == "__main__":
    sys.exit(main())
