"""Inference: batch-1 latency and batch-4096 throughput of predict (class probabilities) for
fastmlp, PyTorch (inference_mode, softmax of the logits), scikit-learn (predict_proba) and the
thin NumPy MLP, MLP 784-256-256-10 float32 on MNIST rows, at 1 and 2 threads.

Usage (with the Python that has fastmlp installed):
    python bench/bench_inference.py [--quick] [--threads 1,2] [--peers fastmlp,torch]
                                    [--latency-calls 1000] [--infer-batch 4096]

Method: one process per peer and thread count; each fits one short epoch (weights are then
realistic; scikit-learn needs a fit), warms up, then the peers take turns for --repeats rounds:
--latency-calls single-row predict calls, each timed alone (input rows are pre-made arrays /
tensors, a different row each call), and 3 predict calls on the first 4096 rows. Reported:
median latency over all calls; 4096 / median time of the big calls.

Prints the table, writes bench/results/bench_inference.json (or --out).
"""
import sys
import time

from _common import (close_workers, log, median, parse_list, quantile, record_versions, repeats,
                     resolve_peers, rotated, script_main, start_workers, WorkerError)


def add_args(p):
    p.add_argument("--latency-calls", type=int, default=None,
                   help="batch-1 predict calls per round (default 1000, quick 300)")
    p.add_argument("--infer-batch", type=int, default=4096, help="throughput batch (default 4096)")


def run(args, pythons, results):
    peers = resolve_peers(args)
    R = repeats(args)
    calls = args.latency_calls or (300 if args.quick else 1000)
    out = results.setdefault("inference", [])
    for T in parse_list(args.threads, int):
        log(f"inference: starting {', '.join(peers)} with {T} thread(s)")
        workers = start_workers([(p, T) for p in peers], pythons, args.data, results["errors"])
        record_versions(results, workers)
        try:
            live = {}
            for (p, _), w in workers.items():
                try:
                    w.call("infer_setup")
                    live[p] = w
                except WorkerError as e:
                    results["errors"].append(f"inference T{T}: {e}")
            lat = {p: [] for p in live}
            thr = {p: [] for p in live}
            for rnd in range(R):
                for p in rotated(list(live), rnd):
                    try:
                        if args.settle:
                            time.sleep(args.settle)
                        lat[p] += live[p].call("latency", calls=calls, offset=rnd)["ns"]
                        thr[p] += live[p].call("throughput", batch=args.infer_batch,
                                               reps=3)["times"]
                    except WorkerError as e:
                        results["errors"].append(f"inference {p} T{T}: {e}")
            for p in live:
                if not lat[p] or not thr[p]:
                    continue
                out.append({
                    "peer": p, "threads": T, "latency_calls": len(lat[p]),
                    "latency_us_median": median(lat[p]) / 1e3,
                    "latency_us_p10": quantile(lat[p], 0.1) / 1e3,
                    "latency_us_p90": quantile(lat[p], 0.9) / 1e3,
                    "throughput_batch": args.infer_batch, "throughput_times": thr[p],
                    "throughput_samples_per_s": args.infer_batch / median(thr[p])})
            log("inference T=%d: %s" % (T, "; ".join(
                f"{e['peer']} {e['latency_us_median']:.1f} us, {e['throughput_samples_per_s']:,.0f}/s"
                for e in out if e["threads"] == T)))
        finally:
            close_workers(workers)
    results["inference_config"] = {"repeats": R, "latency_calls_per_round": calls,
                                   "throughput_batch": args.infer_batch}
    return results


def main():
    script_main(__doc__, add_args, run, "inference", ["inference", "targets"])


if __name__ == "__main__":
    sys.exit(main())
