"""Training throughput: fastmlp against PyTorch, scikit-learn's MLPClassifier and a thin NumPy
MLP, on MNIST, MLP 784-256-256-10 (ReLU, softmax cross-entropy, plain SGD lr 0.01, float32),
at several batch sizes and thread counts; also GEMM 1024³ GFLOP/s (NumPy sgemm, fastmlp, PyTorch)
and fastmlp's achieved training GFLOP/s.

Usage (with the Python that has fastmlp installed; the peers run in their own venv, created on
first use, see --peer-venv):
    python bench/bench_training.py [--quick] [--batches 1,32,256,1024] [--threads 1,2]
                                   [--peers fastmlp,torch,sklearn,numpy] [--samples 1:5000,32:60000]

Method: for each thread count, one process per peer (own OpenMP/BLAS runtime, thread env vars
pinned). For each batch size every peer builds a fresh model and runs a warm-up epoch on a
subset, then the peers take turns, one timed epoch each, over the same first n samples (shuffled
every epoch), for --repeats rounds; samples/s = n / median epoch time. PyTorch runs the standard
loop over pre-made tensors (one permutation per epoch, contiguous slices, SGD, CrossEntropyLoss);
scikit-learn times MLPClassifier(solver="sgd", momentum=0, alpha=0, max_iter=1, warm_start=True)
.fit, i.e. one epoch per call; fastmlp times model.fit(X, y, epochs=1, batch_size=B). At batch
>= 256 fastmlp is also timed on MNIST without zero inputs (x * 255/256 + 1/256): its GEMMs skip
zero inputs, so that run gives the GFLOP/s of FLOPs actually executed.

At 1 thread the peers that have them also train other settings (--variants): tanh or GELU
hidden layers with plain SGD, and ReLU with Adam (lr 1e-3), at batch 32 and 256 (scikit-learn
has no GELU).

Prints the table, writes bench/results/bench_training.json (or --out). bench/run.py runs this
together with the other questions.
"""
import sys
import time

from _common import (close_workers, log, max_seconds, median, parse_list, record_versions,
                     repeats, resolve_peers, rotated, script_main, start_workers, timed_call,
                     train_flops_per_sample, WorkerError, ZERO_FREE)

DEFAULT_SAMPLES = {1: 5000, "other": 60000}
# peers that cannot train a variant: the NumPy MLP has only the main setting, scikit-learn no GELU
WITHOUT = {"gelu-sgd": ("numpy", "sklearn")}
QUICK_SAMPLES = {1: 1000, "other": 10000}


def add_args(p):
    p.add_argument("--batches", default="1,32,256,1024", help="training batch sizes")
    p.add_argument("--samples", default=None,
                   help="samples per timed epoch, e.g. '1:5000,32:60000' (default 5000 at batch "
                        "1, 60000 otherwise; quick: 1000 and 10000)")
    p.add_argument("--gemm-size", type=int, default=1024, help="square GEMM size (default 1024)")
    p.add_argument("--variants", default="tanh-sgd,gelu-sgd,relu-adam",
                   help="other settings timed at 1 thread against PyTorch and scikit-learn: "
                        "hidden activation-optimizer, from tanh-sgd, gelu-sgd, relu-adam ('' for "
                        "none)")
    p.add_argument("--variant-batches", default="32,256", help="batch sizes of --variants")


def samples_for(args, batch):
    table = dict(QUICK_SAMPLES if args.quick else DEFAULT_SAMPLES)
    for item in parse_list(args.samples or ""):
        b, _, n = item.partition(":")
        table[int(b)] = int(n)
    return max(batch, min(60000, table.get(batch, table["other"])))


def warmup_for(batch, n):
    return min(n, max(2 * batch, 500 if batch == 1 else 4096))


def run(args, pythons, results):
    peers = resolve_peers(args)
    R = repeats(args)
    batches = parse_list(args.batches, int)
    flops = train_flops_per_sample()
    training, gemm = results.setdefault("training", []), results.setdefault("gemm", [])
    for T in parse_list(args.threads, int):
        log(f"training: starting {', '.join(peers)} with {T} thread(s)")
        workers = start_workers([(p, T) for p in peers], pythons, args.data, results["errors"])
        record_versions(results, workers)
        try:
            for B in batches:
                n = samples_for(args, B)
                live = setup_peers(workers, results, f"training b{B} T{T}", batch=B,
                                   warmup=warmup_for(B, n))
                inputs = {p: "mnist" for p in live}
                if "fastmlp" in live and B >= 256:  # the executed-FLOPs efficiency (see report)
                    live[ZERO_FREE] = live["fastmlp"]
                    inputs[ZERO_FREE] = "zero_free"
                rec = new_record(live)
                # the GFLOP/s reference (NumPy sgemm) timed in the same rounds as the training
                # it is compared with: a shared machine's speed drifts by 10-25% over minutes
                sgemm_ref = B >= 256 and "numpy" in live and ZERO_FREE in live
                sgemm_times = []
                t0 = time.perf_counter()
                cap = max_seconds(args)
                for rnd in range(R):
                    if sgemm_ref:
                        try:
                            if args.settle:
                                time.sleep(args.settle)
                            sgemm_times += live["numpy"].call("gemm", size=args.gemm_size,
                                                              reps=3)["times"]
                        except WorkerError as e:
                            results["errors"].append(f"sgemm b{B} T{T}: {e}")
                    epoch_round(args, live, rnd, rec, results, f"training b{B} T{T}", cap,
                                batch=B, n=n, inputs=inputs)
                msg = []
                for p, d in rec.items():
                    if not d["wall"]:
                        continue
                    med = median(d["wall"])
                    sps = n / med
                    training.append({
                        "peer": p, "threads": T, "batch": B, "n": n, "wall": d["wall"],
                        "cpu": d["cpu"], "median_wall": med, "samples_per_s": sps,
                        "gflops": sps * flops / 1e9, "cpu_per_wall": median(d["cpu"]) / med,
                        "foreign_load": d["foreign"],
                        "last_loss": d["loss"]})
                    if sgemm_times and p in ("fastmlp", ZERO_FREE):
                        training[-1]["sgemm_gflops_same_rounds"] = (
                            2 * args.gemm_size ** 3 / median(sgemm_times) / 1e9)
                    msg.append(f"{p} {sps:,.0f}")
                log(f"training T={T} B={B} n={n}: {'; '.join(msg)} samples/s "
                    f"({time.perf_counter() - t0:.0f} s)")
            if T == 1:
                run_variants(args, workers, results)
            # GEMM 1024^3 in the same processes, interleaved
            size = args.gemm_size
            times = {}
            for rnd in range(R):
                for (p, _), w in rotated(list(workers.items()), rnd):
                    if p not in ("fastmlp", "numpy", "torch"):
                        continue
                    try:
                        if args.settle:
                            time.sleep(args.settle)
                        times.setdefault(p, []).extend(w.call("gemm", size=size, reps=5)["times"])
                    except WorkerError as e:
                        results["errors"].append(f"gemm {p} T{T}: {e}")
            for p, ts in times.items():
                if ts:
                    gemm.append({"impl": p, "threads": T, "size": size, "times": ts,
                                 "gflops": 2 * size ** 3 / median(ts) / 1e9})
            log("gemm T=%d: %s" % (T, ", ".join(f"{e['impl']} {e['gflops']:.0f} GFLOP/s"
                                                 for e in gemm if e["threads"] == T)))
        finally:
            close_workers(workers)
    results["training_config"] = {
        "repeats": R, "batches": batches, "threads": parse_list(args.threads, int),
        "samples": {B: samples_for(args, B) for B in batches},
        "warmup": {B: warmup_for(B, samples_for(args, B)) for B in batches}}
    return results


def setup_peers(workers, results, what, skip=(), **setup):
    """The workers (by peer) that took train_setup(**setup); the others' errors are recorded."""
    live = {}
    for (p, _), w in workers.items():
        if p in skip:
            continue
        try:
            w.call("train_setup", **setup)
            live[p] = w
        except WorkerError as e:
            results["errors"].append(f"{what}: {e}")
            log(results["errors"][-1])
    return live


def new_record(live):
    return {p: {"wall": [], "cpu": [], "foreign": [], "loss": None} for p in live}


def epoch_round(args, live, rnd, rec, results, what, cap, batch, n, inputs):
    """One round: every live peer (in rotated order) times one epoch into rec[peer], unless its
    epochs already took cap seconds; a worker that fails is dropped (with all its peer names)."""
    for p in rotated(list(live), rnd):
        if p not in live or (rec[p]["wall"] and sum(rec[p]["wall"]) >= cap):
            continue
        try:
            out = timed_call(live[p], args.settle, "train_epoch", quiet_wait=args.quiet_wait,
                             batch=batch, n=n, inputs=inputs.get(p, "mnist"))
        except WorkerError as e:
            results["errors"].append(f"{what}: {e}")
            log(results["errors"][-1])
            for q in [q for q in live if live[q] is live[p]]:
                live.pop(q)
            continue
        rec[p]["wall"].append(out["wall"])
        rec[p]["cpu"].append(out["cpu"])
        rec[p]["foreign"].append(out.get("foreign_load"))
        rec[p]["loss"] = out["loss"]


def run_variants(args, workers, results):
    """Other settings (tanh or GELU hidden layers; Adam), 1 thread: fastmlp, PyTorch and
    scikit-learn timed as the main setting is, on at most 20,000 samples an epoch."""
    out = results.setdefault("variants", [])
    for variant in parse_list(args.variants):
        for B in parse_list(args.variant_batches, int):
            n = min(20000, samples_for(args, B))
            what = f"{variant} b{B}"
            live = setup_peers(workers, results, what, skip=WITHOUT.get(variant, ("numpy",)),
                               batch=B, warmup=warmup_for(B, n), variant=variant)
            rec = new_record(live)
            for rnd in range(repeats(args)):
                epoch_round(args, live, rnd, rec, results, what, max_seconds(args), batch=B, n=n,
                            inputs={})
            for p, d in rec.items():
                if d["wall"]:
                    out.append({"variant": variant, "peer": p, "threads": 1, "batch": B, "n": n,
                                "wall": d["wall"], "samples_per_s": n / median(d["wall"])})
            log(f"training {what} n={n}: " + "; ".join(
                f"{e['peer']} {e['samples_per_s']:,.0f}" for e in out
                if e["variant"] == variant and e["batch"] == B) + " samples/s")


def main():
    script_main(__doc__, add_args, run, "training", ["training", "variants", "gemm", "targets"])


if __name__ == "__main__":
    sys.exit(main())
