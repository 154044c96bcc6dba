"""Turn bench results JSON into the README's Markdown performance section, plus a log-log plot
of training samples/s against batch size per peer.

Usage:
    python bench/report.py                          # bench/results/latest.json -> stdout
    python bench/report.py RESULTS.json [MORE.json] --out bench/results/performance.md
    python bench/report.py --plot bench/results/training_throughput.png
    python bench/report.py --no-plot

Several JSON files (e.g. the per-section files bench_training.json, bench_inference.json, ...)
are merged, later files winning. The plot needs matplotlib; without it the plot is skipped with
a message (bench/run.py runs this script with the peers' venv, which has matplotlib).

The bench scripts also import this module to print their tables, so the console output and the
README come from the same code.
"""
import argparse
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _common import (ZERO_FREE, GEMM_TARGET, LATENCY_TARGET, PEERS, RESULTS, THROUGHPUT_TARGET,  # noqa: E402
                     TRAIN_TARGETS, median)

NAMES = {"fastmlp": "fastmlp", "torch": "PyTorch", "sklearn": "scikit-learn", "numpy": "NumPy MLP"}
# fastmlp timed again on zero-free inputs (bench_training): named in the notes under the tables
NAMES[ZERO_FREE] = "fastmlp on zero-free inputs"


# --------------------------------------------------------------------------- helpers
def fmt_num(x):
    """Samples/s and such: about 3 significant digits, thousands separated."""
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def fmt_ratio(x, goal=None):
    if x is None:
        return "–"
    s = f"{x:.2f}×"
    if goal is not None:
        s += f" {'✓' if x >= goal else '✗'} (≥{goal:g})"
    return s


def fmt_mb(b):
    return "–" if b is None else f"{b / 2**20:,.1f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def merge(docs):
    """Merge result documents: lists of entries are combined, a later entry with the same key
    replacing an earlier one; scalars and dicts from later documents win."""
    out = {}
    for d in docs:
        for k, v in d.items():
            if isinstance(v, list) and k in _KEYS:
                keyf = _KEYS[k]
                merged = {keyf(e): e for e in out.get(k, [])}
                merged.update({keyf(e): e for e in v})
                out[k] = list(merged.values())
            elif isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = {**out[k], **v}
            elif k == "errors":
                out[k] = out.get(k, []) + list(v)
            else:
                out[k] = v
    return out


_KEYS = {
    "training": lambda e: (e["peer"], e["threads"], e["batch"]),
    "variants": lambda e: (e["variant"], e["peer"], e["batch"]),
    "gemm": lambda e: (e["impl"], e["threads"], e["size"]),
    "inference": lambda e: (e["peer"], e["threads"]),
    "busy": lambda e: (e["peer"], e["threads"], e["batch"]),
    "memory": lambda e: (e["peer"], e["threads"], e["batch"]),
}


def _index(entries, *fields):
    return {tuple(e[f] for f in fields): e for e in entries or []}


def present(results, section, peers=PEERS):
    seen = {e["peer"] for e in results.get(section, [])}
    return [p for p in peers if p in seen]


# --------------------------------------------------------------------------- sections
def header(r):
    m, v = r.get("machine", {}), r.get("versions", {})
    cpu = m.get("Model name", "?")
    fam = f"family {m.get('CPU family', '?')} model {m.get('Model', '?')}"
    cores = (f"{m.get('CPU(s)', m.get('nproc', '?'))} CPUs = {m.get('Socket(s)', '?')} socket × "
             f"{m.get('Core(s) per socket', '?')} cores × {m.get('Thread(s) per core', '?')} "
             "threads")
    hv = f", {m['Hypervisor vendor']} VM" if m.get("Hypervisor vendor") else ""
    simd = ", ".join(m.get("simd", []))
    lines = [f"- Machine: {cpu} ({fam}{hv}), {cores}, L2 {m.get('L2 cache', '?')}, "
             f"{m.get('memory_gib', '?')} GiB; SIMD: {simd}; {m.get('platform', '')}"]
    fm = v.get("fastmlp", {})
    src = r.get("fastmlp_source", {})
    vers = []
    py = next((x.get("python") for x in v.values() if isinstance(x, dict) and x.get("python")), "?")
    vers.append(f"Python {py}")
    if fm:
        dirty = " + uncommitted changes" if src.get("uncommitted_changes_in_csrc_src") else ""
        build = f", _core sha256 {fm['core_sha256']} built {fm.get('core_mtime')}" \
            if fm.get("core_sha256") else ""
        vers.append(f"fastmlp {fm.get('fastmlp', '?')} (git {src.get('git_commit', '?')}{dirty}"
                    f"{build}, GEMM kernel {fm.get('gemm_kernel_f32', '?')}, "
                    f"NumPy {fm.get('numpy', '?')})")
    if "torch" in v:
        t = v["torch"]
        vers.append(f"PyTorch {t.get('torch')} (CPU capability {t.get('cpu_capability', '?')}, "
                    f"MKL {t.get('mkl')}, oneDNN {t.get('mkldnn')})")
    if "sklearn" in v:
        vers.append(f"scikit-learn {v['sklearn'].get('sklearn')}")
    npi = v.get("numpy") or v.get("sklearn") or v.get("torch")
    if npi:
        blas = [b for b in (npi.get("blas") or []) if b.get("user_api") == "blas"]
        b = next((x for x in blas if "numpy" in str(x.get("filepath", ""))),
                 blas[0] if blas else None)
        blas_s = (f"{b.get('internal_api')} {b.get('version')}, kernel {b.get('architecture')}, "
                  f"{b.get('threading_layer')}") if b else "BLAS unknown (no threadpoolctl)"
        vers.append(f"peers' NumPy {npi.get('numpy')} ({blas_s})")
    lines.append("- Versions: " + "; ".join(vers))
    env = r.get("environment", {})
    over = env.get("openblas_overrides_in_caller") or {}
    lines.append(
        "- Threads: each peer in its own process with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = "
        "MKL_NUM_THREADS = FASTMLP_NUM_THREADS = T, torch.set_num_threads(T), fastmlp "
        "n_threads=T, threadpoolctl limits for scikit-learn/NumPy"
        + (f"; {', '.join(over)} unset for the peers" if over else ""))
    pr = r.get("protocol", {})
    if pr:
        lines.append(f"- Protocol: up to {pr.get('repeats')} timed repeats per setting (fewer once "
                     f"a peer's epochs add up to {pr.get('max_seconds_per_setting'):g} s), "
                     f"{pr.get('settle_s'):g} s pause before each timed call"
                     + (f", waiting up to {pr['quiet_wait_s']:g} s for the rest of the machine to "
                        "go quiet" if pr.get("quiet_wait_s") else ""))
    la0, la1 = r.get("loadavg_start"), r.get("loadavg_end")
    steal = r.get("cpu_steal_fraction")
    lines.append(f"- Run: `{r.get('command', '?')}` on {r.get('started', '?')}, "
                 f"{r.get('duration_s', '?')} s; load average {la0} at start, {la1} at end"
                 + (f"; VM steal {100 * steal:.1f}%" if steal is not None else ""))
    return "\n".join(lines)


def training_tables(r):
    tr = r.get("training") or []
    if not tr:
        return ""
    idx = _index(tr, "peer", "threads", "batch")
    peers = present(r, "training")
    threads = sorted({e["threads"] for e in tr})
    batches = sorted({e["batch"] for e in tr})
    out = []
    for T in threads:
        hdr = ["batch", "samples"] + [f"{NAMES[p]}" for p in peers]
        others = [p for p in peers if p != "fastmlp"]
        if "fastmlp" in peers:
            hdr += [f"fastmlp / {NAMES[p]}" for p in others]
        hdr.append("other load")
        rows = []
        for B in batches:
            n = next((idx[(p, T, B)]["n"] for p in peers if (p, T, B) in idx), None)
            row = [B, f"{n:,}" if n else "–"]
            sps = {p: idx[(p, T, B)]["samples_per_s"] if (p, T, B) in idx else None for p in peers}
            row += [fmt_num(sps[p]) for p in peers]
            if "fastmlp" in peers:
                for p in others:
                    ratio = sps["fastmlp"] / sps[p] if sps.get("fastmlp") and sps.get(p) else None
                    goal = TRAIN_TARGETS.get(p, {}).get(B) if T == 1 else None
                    row.append(fmt_ratio(ratio, goal))
            loads = [x for p in peers if (p, T, B) in idx
                     for x in (idx[(p, T, B)].get("foreign_load") or []) if x is not None]
            row.append(f"{median(loads):.2f}" if loads else "–")
            rows.append(row)
        rep = max((len(e["wall"]) for e in tr if e["threads"] == T), default=0)
        out.append(f"**Training, {T} thread{'s' if T > 1 else ''}**: samples/s, median of {rep} "
                   "timed epochs after a warm-up epoch (targets of issue 3 apply at 1 thread)\n\n"
                   + table(hdr, rows))
        capped = [f"{NAMES[e['peer']]} b{e['batch']} ({len(e['wall'])})" for e in tr
                  if e["threads"] == T and len(e["wall"]) < rep]
        out.append(f"'other load': median CPUs' worth of busy time of other processes on the "
                   f"machine while the peers were timed (of {r.get('machine', {}).get('nproc', '?')}"
                   " CPUs)." + (" Fewer timed epochs (time cap per setting): " + ", ".join(capped)
                                if capped else ""))
        cpu_notes = []
        for e in tr:
            if e["threads"] == T and e.get("cpu_per_wall") and e["cpu_per_wall"] < 0.8 * T:
                cpu_notes.append(f"{NAMES[e['peer']]} b{e['batch']}: {e['cpu_per_wall']:.2f}")
        if cpu_notes:
            out.append("CPU time / wall time below 0.8×threads (waiting, or crowded out by other "
                       "processes): " + ", ".join(cpu_notes))
    return "\n\n".join(out)


def variants_table(r):
    vs = r.get("variants") or []
    if not vs:
        return ""
    idx = _index(vs, "variant", "peer", "batch")
    peers = [p for p in ("fastmlp", "torch", "sklearn") if any(e["peer"] == p for e in vs)]
    others = [p for p in peers if p != "fastmlp"]
    hdr = ["setting", "batch", "samples"] + [NAMES[p] for p in peers]
    hdr += [f"fastmlp / {NAMES[p]}" for p in others] if "fastmlp" in peers else []
    rows = []
    for variant, B in sorted({(e["variant"], e["batch"]) for e in vs}):
        sps = {p: idx[(variant, p, B)]["samples_per_s"] if (variant, p, B) in idx else None
               for p in peers}
        n = next(idx[(variant, p, B)]["n"] for p in peers if (variant, p, B) in idx)
        act, opt = variant.split("-")
        row = [f"{act}, {'Adam lr 1e-3' if opt == 'adam' else 'SGD lr 0.01'}", B, f"{n:,}"]
        row += [fmt_num(sps[p]) for p in peers]
        if "fastmlp" in peers:
            row += [fmt_ratio(sps["fastmlp"] / sps[p] if sps["fastmlp"] and sps[p] else None)
                    for p in others]
        rows.append(row)
    rep = max(len(e["wall"]) for e in vs)
    return ("**Other settings, 1 thread**: the same network with tanh or GELU hidden layers, or "
            f"trained with Adam; samples/s, median of {rep} timed epochs (no targets; "
            "scikit-learn has no GELU)\n\n"
            + table(hdr, rows))


def sgemm_reference(entry, fallback):
    """NumPy's sgemm GFLOP/s to divide a training entry's by: the one timed in the same rounds
    where the run has it, else the separate GEMM run's (fallback, may be None)."""
    return (entry or {}).get("sgemm_gflops_same_rounds") or fallback


def gemm_table(r):
    g = r.get("gemm") or []
    tr = _index(r.get("training"), "peer", "threads", "batch")
    if not g and not tr:
        return ""
    gi = _index(g, "impl", "threads", "size")
    threads = sorted({e["threads"] for e in g} | {k[1] for k in tr})
    batches = sorted({k[2] for k in tr if k[2] >= 256})
    hdr = ["threads", "NumPy sgemm 1024³", "fastmlp gemm 1024³", "PyTorch mm 1024³"]
    kinds = [p for p in ("fastmlp", ZERO_FREE) if any(k[0] == p for k in tr)]
    for B in batches:
        for p in kinds:
            what = "MNIST" if p == "fastmlp" else "zero-free inputs"
            hdr += [f"fastmlp training b{B}, {what}", f"÷ NumPy sgemm (≥{GEMM_TARGET:.0%})"]
    rows = []
    for T in threads:
        def gf(impl):
            e = gi.get((impl, T, 1024))
            return e["gflops"] if e else None
        np_gf = gf("numpy")
        row = [T, fmt_num(np_gf), fmt_num(gf("fastmlp")), fmt_num(gf("torch"))]
        for B in batches:
            for p in kinds:
                e = tr.get((p, T, B))
                tg = e["gflops"] if e else None
                ref = sgemm_reference(e, np_gf)
                row.append(fmt_num(tg))
                row.append(fmt_ratio(tg / ref, GEMM_TARGET) if tg and ref else "–")
        rows.append(row)
    flops = r.get("model", {}).get("train_flops_per_sample")
    note = (f"**GEMM**: GFLOP/s (median). Training counts {flops:,} FLOPs per sample: X·W forward, "
            "dW for every layer, dX for all but the input layer; bias, activations and loss "
            "not counted. On MNIST (81% zero pixels) fastmlp's GEMMs skip the zero inputs of the "
            "first layer, so it executes fewer FLOPs than counted there; the zero-free run "
            "(MNIST · 255/256 + 1/256, batch ≥ 256) executes them all. The ÷ NumPy sgemm "
            "columns divide by NumPy's sgemm 1024³ timed in the same rounds as that training "
            "(one call per round, between the epochs), where the run has it; the sgemm column "
            "is the separate GEMM run after the training.")
    out = note + "\n\n" + table(hdr, rows)
    bg = r.get("bench_gemm")
    if bg:
        out += ("\n\n`bench/bench_gemm.py` (run in the same session"
                + (f", exit code {bg.get('returncode')}" if bg.get("returncode") else "")
                + "):\n\n```\n" + "\n".join(bg.get("stdout_tail", [])) + "\n```")
    return out


def inference_table(r):
    inf = r.get("inference") or []
    if not inf:
        return ""
    idx = _index(inf, "peer", "threads")
    peers = present(r, "inference")
    threads = sorted({e["threads"] for e in inf})
    hdr = ["threads"] + [f"{NAMES[p]} µs" for p in peers]
    if "fastmlp" in peers and "torch" in peers:
        hdr += [f"PyTorch ÷ fastmlp (≥{LATENCY_TARGET:g})"]
    rows1, rows2 = [], []
    for T in threads:
        lat = {p: idx[(p, T)]["latency_us_median"] if (p, T) in idx else None for p in peers}
        thr = {p: idx[(p, T)]["throughput_samples_per_s"] if (p, T) in idx else None for p in peers}
        row1 = [T] + [fmt_num(lat[p]) for p in peers]
        row2 = [T] + [fmt_num(thr[p]) for p in peers]
        if "fastmlp" in peers and "torch" in peers:
            row1.append(fmt_ratio(lat["torch"] / lat["fastmlp"], LATENCY_TARGET)
                        if lat["torch"] and lat["fastmlp"] else "–")
            row2.append(fmt_ratio(thr["fastmlp"] / thr["torch"], THROUGHPUT_TARGET)
                        if thr["torch"] and thr["fastmlp"] else "–")
        rows1.append(row1)
        rows2.append(row2)
    hdr2 = ["threads"] + [f"{NAMES[p]} samples/s" for p in peers]
    if "fastmlp" in peers and "torch" in peers:
        hdr2 += [f"fastmlp ÷ PyTorch (≥{THROUGHPUT_TARGET:g})"]
    calls = max(e.get("latency_calls", 0) for e in inf)
    return (f"**Inference, batch 1**: latency of one `predict` call (class probabilities), "
            f"median of {calls:,} calls\n\n" + table(hdr, rows1)
            + "\n\n**Inference, batch 4096**: throughput of `predict`, median\n\n"
            + table(hdr2, rows2))


def busy_table(r):
    b = r.get("busy") or []
    if not b:
        return ""
    idx = _index(b, "peer", "threads", "batch")
    peers = present(r, "busy")
    batches = sorted({e["batch"] for e in b})
    cfg = r.get("busy_config", {})
    hdr = ["peer", "batch", "quiet 1T", "quiet 2T", "busy 1T", "busy 2T",
           "busy: 2T time ÷ 1T time", "2T: busy time ÷ quiet time"]
    rows = []
    for p in peers:
        for B in batches:
            e1, e2 = idx.get((p, 1, B)), idx.get((p, 2, B))
            if not e1 or not e2:
                continue
            rows.append([NAMES[p], B, fmt_num(e1["quiet_sps"]), fmt_num(e2["quiet_sps"]),
                         fmt_num(e1["busy_sps"]), fmt_num(e2["busy_sps"]),
                         fmt_ratio(e1["busy_sps"] / e2["busy_sps"]),
                         fmt_ratio(e2["quiet_sps"] / e2["busy_sps"])])
    hog = cfg.get("hog_cpus")
    ql = [x for e in b for x in (e.get("quiet_foreign_load") or []) if x is not None]
    bl = [x for e in b for x in (e.get("busy_foreign_load") or []) if x is not None]
    load = (f"\n\nOther processes' CPU load while timed: quiet phase median {median(ql):.2f} CPUs, "
            f"busy phase median {median(bl):.2f} CPUs (the hog included)." if ql and bl else "")
    return (f"**Busy neighbour**: training samples/s (median of {cfg.get('repeats', '?')} epochs "
            f"of {cfg.get('n', '?'):,} samples) without and with {len(hog or [])} CPU hog "
            f"process(es) spinning on CPU {hog}; 'busy: 2T ÷ 1T' above 1× means 2 threads are "
            "slower than 1 next to a busy neighbour\n\n" + table(hdr, rows) + load)


def memory_table(r):
    mem = r.get("memory") or []
    if not mem:
        return ""
    peers = present(r, "memory")
    idx = {e["peer"]: e for e in mem}
    hdr = ["peer", "data + model MB", "RSS before fit MB", "peak RSS of fit MB",
           "peak − before MB", "(peak − before) ÷ (data + model)", "ru_maxrss MB",
           "RSS after epoch 1 / 3 / last MB", "growth 1→3 MB", "growth 3→last MB"]
    rows = []
    for p in peers:
        e = idx[p]
        dm = e["data_bytes"] + e["model_bytes"]
        peak = e.get("peak_rss_fit")
        over = peak - e["rss_before_fit"] if peak else None
        ra = e["rss_after_epoch"]
        r3 = ra[min(2, len(ra) - 1)]
        rows.append([NAMES[p], fmt_mb(dm), fmt_mb(e["rss_before_fit"]), fmt_mb(peak),
                     fmt_mb(over), f"{over / dm:.3f}" if over is not None else "–",
                     fmt_mb(e["ru_maxrss"]),
                     f"{fmt_mb(ra[0])} / {fmt_mb(r3)} / {fmt_mb(ra[-1])}",
                     f"{(r3 - ra[0]) / 2**20:+.1f}", f"{(ra[-1] - r3) / 2**20:+.1f}"])
    e0 = mem[0]
    return (f"**Memory**: training {e0['n']:,} samples at batch {e0['batch']}, {e0['epochs']} "
            f"epochs, {e0['threads']} thread, each peer in a fresh process. Peak RSS of fit = "
            "VmHWM reset just before fit; ru_maxrss covers the whole process (interpreter, "
            "libraries, loading the data).\n\n" + table(hdr, rows))


def linear_table(r):
    bl = r.get("bench_linear") or {}
    rows = (bl.get("json") or {}).get("cases") or []
    if not rows:
        if bl:
            tail = (bl.get("stdout_tail") or ["no output"])[-1]
            return f"**Linear models**: `bench/bench_linear.py` did not finish ({tail})"
        return ""
    hdr = ["case", "epochs", "fastmlp s", "scikit-learn s", "fastmlp samples/s",
           "scikit-learn ÷ fastmlp time", "test accuracy fastmlp", "test accuracy scikit-learn"]
    body = [[x["case"], str(x["epochs"]), f"{x['fastmlp_s']:.3f}", f"{x['sklearn_s']:.3f}",
             fmt_num(x["fastmlp_samples_per_s"]), fmt_ratio(x["ratio"]),
             f"{x['fastmlp_accuracy']:.4f}", f"{x['sklearn_accuracy']:.4f}"] for x in rows]
    j = bl["json"]
    return ("**Linear models** (`bench/bench_linear.py`, one process in fastmlp's environment: "
            f"fastmlp {j.get('fastmlp')}, scikit-learn {j.get('sklearn')}, NumPy "
            f"{j.get('numpy')}): MNIST, float64, 1 thread, median fit time of {j.get('rounds')} "
            "alternating rounds; parity (odd digits) for the single-unit models, 10 classes for "
            "softmax. The first three are the same algorithm in both libraries (Perceptron; "
            "SGDClassifier with squared error or log loss at a constant rate). The last two are "
            "not: fastmlp's softmax against scikit-learn's one-vs-rest SGD, and full-batch "
            "gradient descent against L-BFGS, so read the test accuracies with the times. "
            "fastmlp's Perceptron also counts each epoch's mistakes (a predict pass over the "
            "data).\n\n" + table(hdr, body))


# --------------------------------------------------------------------------- targets
def gemm_targets(r):
    """The GEMM-alone targets from bench_gemm's rows: the worst fastmlp ÷ OpenBLAS (median
    times) of each group, per dtype. Batch is m for fwd/dX shapes and k for dW shapes."""
    rows = ((r.get("bench_gemm") or {}).get("json") or {}).get("results") or []
    out = []
    for dt in sorted({e["dtype"] for e in rows}):
        groups = {"layer shapes at batch ≥ 64": (lambda e, b: b >= 64, 0.95),
                  "256→10 layer (fwd3, dW3, dX3), every batch": (lambda e, b: e["shape"][-1] == "3", 1.0),
                  "layer shapes at batch ≤ 32": (lambda e, b: b <= 32, 1.0)}
        for name, (take, goal) in groups.items():
            sel = [e for e in rows if e["dtype"] == dt and e["shape"] != "square"
                   and take(e, e["k"] if e["shape"].startswith("dW") else e["m"])]
            if not sel:
                continue
            worst = min(sel, key=lambda e: e["ratio"])
            v = worst["ratio"]
            out.append({"target": f"GEMM {dt}, {name}: worst fastmlp ÷ OpenBLAS",
                        "value": round(v, 3), "goal": goal,
                        "met": v >= goal if goal < 1 else v > goal,
                        "note": f"worst: {worst['shape']} {worst['m']}×{worst['n']}×{worst['k']}; "
                                f"{sum(e['ratio'] >= goal for e in sel)}/{len(sel)} shapes reach it"})
    return out


def evaluate_targets(r):
    """The issue's targets as (name, value, goal, met) from whatever the results hold."""
    out = []
    tr = _index(r.get("training"), "peer", "threads", "batch")
    for peer, goals in TRAIN_TARGETS.items():
        for B, goal in goals.items():
            a, b = tr.get(("fastmlp", 1, B)), tr.get((peer, 1, B))
            if a and b:
                v = a["samples_per_s"] / b["samples_per_s"]
                out.append({"target": f"training b{B}, 1 thread: fastmlp ÷ {NAMES[peer]}",
                            "value": round(v, 3), "goal": goal, "met": v >= goal})
    gi = _index(r.get("gemm"), "impl", "threads", "size")
    for (peer, T, B), e in sorted(tr.items()):
        g = gi.get(("numpy", T, 1024))
        ref = sgemm_reference(e, g["gflops"] if g else None)
        if peer in ("fastmlp", ZERO_FREE) and B >= 256 and ref:
            v = e["gflops"] / ref
            what = "MNIST, FLOPs counted dense" if peer == "fastmlp" else "zero-free inputs"
            out.append({"target": f"training b{B}, {T} thread(s), {what}: GFLOP/s ÷ NumPy "
                                  "sgemm 1024³",
                        "value": round(v, 3), "goal": GEMM_TARGET, "met": v >= GEMM_TARGET})
    out += gemm_targets(r)
    inf = _index(r.get("inference"), "peer", "threads")
    for T in sorted({k[1] for k in inf}):
        a, b = inf.get(("fastmlp", T)), inf.get(("torch", T))
        if a and b:
            v = b["latency_us_median"] / a["latency_us_median"]
            out.append({"target": f"inference b1 latency, {T} thread(s): PyTorch ÷ fastmlp",
                        "value": round(v, 3), "goal": LATENCY_TARGET, "met": v >= LATENCY_TARGET})
            v = a["throughput_samples_per_s"] / b["throughput_samples_per_s"]
            out.append({"target": f"inference b4096, {T} thread(s): fastmlp ÷ PyTorch",
                        "value": round(v, 3), "goal": THROUGHPUT_TARGET,
                        "met": v >= THROUGHPUT_TARGET})
    busy = _index(r.get("busy"), "peer", "threads", "batch")
    for (peer, T, B), e in sorted(busy.items()):
        e1 = busy.get((peer, 1, B))
        if peer == "fastmlp" and T == 2 and e1:
            v = e["busy_sps"] / e1["busy_sps"]   # 2T speed relative to 1T, busy machine
            out.append({"target": f"busy neighbour b{B}: fastmlp 2-thread speed ÷ 1-thread speed",
                        "value": round(v, 3), "goal": 0.8, "met": v >= 0.8,
                        "note": "'never much slower': read as ≥ 0.8"})
    for e in r.get("memory") or []:
        if e["peer"] == "fastmlp":
            ra = e["rss_after_epoch"]
            r3 = ra[min(2, len(ra) - 1)]
            out.append({"target": "memory: RSS growth, epoch 1 → 3 (MB)",
                        "value": round((r3 - ra[0]) / 2**20, 2), "goal": 1.0,
                        "met": r3 - ra[0] <= 2**20, "kind": "max",
                        "note": "≤ 1 MB read as no growth"})
            if len(ra) > 3:
                out.append({"target": f"memory: RSS growth, epoch 3 → {len(ra)} (MB)",
                            "value": round((ra[-1] - r3) / 2**20, 2), "goal": 1.0,
                            "met": ra[-1] - r3 <= 2**20, "kind": "max",
                            "note": "≤ 1 MB read as no growth"})
    return out


def targets_table(r):
    t = evaluate_targets(r)
    if not t:
        return ""
    rows = [[x["target"], f"{x['value']:g}",
             f"{'≤' if x.get('kind') == 'max' else '≥'} {x['goal']:g}",
             "✓ met" if x["met"] else "✗ missed"] for x in t]
    return "**Targets of issue 3**\n\n" + table(["target", "measured", "goal", ""], rows)


SECTIONS = {"training": training_tables, "variants": variants_table, "gemm": gemm_table, "inference": inference_table,
            "busy": busy_table, "memory": memory_table, "linear": linear_table,
            "targets": targets_table}


def render(r, sections=None, title="## Performance", plot_path=None):
    parts = [title] if title else []
    parts.append(header(r))
    parts.append("Absolute numbers are indicative only (a shared 2-core VM); ratios are of "
                 "medians measured side by side in one run, the peers interleaved epoch by "
                 "epoch, each in its own process.")
    for name in sections or SECTIONS:
        text = SECTIONS[name](r)
        if text:
            parts.append(text)
    if plot_path:
        parts.append(f"![training samples/s vs batch size]({plot_path})")
    errs = r.get("errors") or []
    if errs:
        parts.append("Problems during the run:\n" + "\n".join(f"- {e}" for e in errs))
    return "\n\n".join(parts) + "\n"


def plot(r, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot", file=sys.stderr)
        return None
    tr = r.get("training") or []
    if not tr:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    colors = {"fastmlp": "C3", "torch": "C0", "sklearn": "C2", "numpy": "C7"}
    for p in present(r, "training"):
        for T, style in ((1, "-"), (2, "--")):
            pts = sorted((e["batch"], e["samples_per_s"]) for e in tr
                         if e["peer"] == p and e["threads"] == T)
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=colors.get(p),
                        label=f"{NAMES[p]}, {T} thread{'s' if T > 1 else ''}")
    ax.set_xscale("log", base=2)
    batches = sorted({e["batch"] for e in tr})
    ax.set_xticks(batches)
    ax.set_xticklabels([str(b) for b in batches])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("training samples/s")
    cpu = r.get("machine", {}).get("Model name", "")
    ax.set_title(f"MLP 784-256-256-10 on MNIST, float32, SGD\n{cpu}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)
    return path


BEGIN, END = "<!-- performance:begin -->", "<!-- performance:end -->"


def replace_section(path, md):
    """Put md between the performance markers of path (which must hold both, in order)."""
    text = path.read_text()
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} section to replace")
    path.write_text(text[:start + len(BEGIN)] + "\n" + md.rstrip() + "\n" + text[stop:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", help="results JSON (default: bench/results/latest.json)")
    p.add_argument("--out", help="also write the Markdown here")
    p.add_argument("--readme", help="replace the section between <!-- performance:begin --> and "
                                    "<!-- performance:end --> in this file (e.g. README.md)")
    p.add_argument("--plot", default=str(RESULTS / "training_throughput.png"),
                   help="PNG to write (default: bench/results/training_throughput.png)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--plot-link", default=None,
                   help="image path to put in the Markdown (default: the PNG path relative to "
                        "the repository root)")
    args = p.parse_args(argv)
    files = args.results or [str(RESULTS / "latest.json")]
    r = merge(json.loads(Path(f).read_text()) for f in files)
    link = None
    if not args.no_plot:
        written = plot(r, args.plot)
        if written:
            link = args.plot_link
            if link is None:
                try:
                    link = str(Path(written).resolve().relative_to(BENCH.parent))
                except ValueError:
                    link = str(written)
    md = render(r, plot_path=link)
    if args.out:
        Path(args.out).write_text(md)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.readme:
        replace_section(Path(args.readme), md)
        print(f"updated {args.readme}", file=sys.stderr)
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
