"""Linear models: fastmlp's Perceptron, Adaline and LogisticRegression against scikit-learn's
nearest estimators, one thread, on MNIST (float64, x / 255).

    python bench/bench_linear.py            # writes bench/results/linear.json (about 2 minutes)
    python bench/bench_linear.py --quick    # one round, full batch for 20 epochs

Run it with a Python that has fastmlp and scikit-learn (`pip install .[test]`). Cases (train
60,000 rows, test 10,000):

  perceptron   parity (odd digits), 5 epochs, Rosenblatt's rule: Perceptron(max_iter=5,
               tol=None). fastmlp also counts each epoch's mistakes (one predict pass).
  adaline      parity, 5 epochs of the delta rule, lr 1e-3: SGDClassifier(loss="squared_error",
               penalty=None, learning_rate="constant").
  logistic b1  parity, 5 epochs of online logistic regression, lr 0.01: SGDClassifier(
               loss="log_loss", penalty=None, learning_rate="constant").
  softmax b32  10 classes, 5 epochs, fastmlp softmax at batch 32 (lr 0.1) against
               SGDClassifier(loss="log_loss") one-vs-rest at lr 0.01: not the same model.
  softmax full 10 classes, fastmlp full-batch gradient descent (lr 0.5, 100 epochs) against
               LogisticRegression(lbfgs, max_iter=100): not the same algorithm either; the
               test accuracies say what each buys.

Timing: each round fits every case with both libraries, alternating; medians over rounds of the
whole fit call (validation included). samples/s = epochs x 60,000 / seconds.
"""
import argparse
import json
import os
import platform
import sys
import time
import warnings

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # before NumPy loads

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import DEFAULT_DATA  # noqa: E402
from _worker import load_idx, load_mnist  # noqa: E402


def cases(fm, lm, full_epochs):
    parity = dict(labels="parity")
    digits = dict(labels="digits")
    constant = dict(penalty=None, learning_rate="constant", tol=None, random_state=0)
    return [
        ("perceptron", 5, parity,
         lambda: fm.Perceptron(max_epochs=5, seed=0, n_threads=1),
         lambda: lm.Perceptron(max_iter=5, tol=None, random_state=0)),
        ("adaline", 5, parity,
         lambda: fm.Adaline(lr=1e-3, epochs=5, seed=0, n_threads=1),
         lambda: lm.SGDClassifier(loss="squared_error", eta0=1e-3, max_iter=5, **constant)),
        ("logistic b1", 5, parity,
         lambda: fm.LogisticRegression(lr=0.01, epochs=5, batch_size=1, seed=0, n_threads=1),
         lambda: lm.SGDClassifier(loss="log_loss", eta0=0.01, max_iter=5, **constant)),
        ("softmax b32 / OvR SGD", 5, digits,
         lambda: fm.LogisticRegression(lr=0.1, epochs=5, batch_size=32, seed=0, n_threads=1),
         lambda: lm.SGDClassifier(loss="log_loss", eta0=0.01, max_iter=5, **constant)),
        ("softmax full batch / lbfgs", full_epochs, digits,
         lambda: fm.LogisticRegression(lr=0.5, epochs=full_epochs, seed=0, n_threads=1),
         lambda: lm.LogisticRegression(max_iter=full_epochs)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round; full batch for 20 epochs")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, quick 1)")
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help="folder with the MNIST IDX .gz files (default: ../shared/data/mnist)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "linear.json"))
    args = ap.parse_args()
    import sklearn
    from sklearn import linear_model as lm
    from sklearn.exceptions import ConvergenceWarning

    import fastmlp as fm
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X, y = load_mnist(args.data)
    X = X.astype(np.float64)
    Xt = load_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784) / 255.0
    yt = load_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    labels = {"parity": (y % 2, yt % 2), "digits": (y, yt)}
    rounds = args.rounds or (1 if args.quick else 3)
    todo = cases(fm, lm, 20 if args.quick else 100)
    times = {(name, lib): [] for name, *_ in todo for lib in ("fastmlp", "sklearn")}
    accuracy = {}
    for r in range(rounds):
        for name, epochs, spec, make_fm, make_sk in todo:
            ytr, yte = labels[spec["labels"]]
            pair = (("fastmlp", make_fm), ("sklearn", make_sk))
            for lib, make in (pair if r % 2 == 0 else pair[::-1]):
                est = make()
                t0 = time.perf_counter()
                est.fit(X, ytr)
                times[(name, lib)].append(time.perf_counter() - t0)
                accuracy[(name, lib)] = float(np.mean(est.predict(Xt) == yte))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)

    rows = []
    print(f"{'case':28s} {'epochs':>6s} {'fastmlp s':>10s} {'sklearn s':>10s} "
          f"{'fastmlp samples/s':>18s} {'speed ratio':>11s} {'fastmlp acc':>11s} "
          f"{'sklearn acc':>11s}")
    for name, epochs, *_ in todo:
        f, s = (float(np.median(times[(name, lib)])) for lib in ("fastmlp", "sklearn"))
        rows.append({"case": name, "epochs": epochs, "fastmlp_s": f, "sklearn_s": s,
                     "fastmlp_samples_per_s": epochs * len(X) / f, "ratio": s / f,
                     "fastmlp_accuracy": accuracy[(name, "fastmlp")],
                     "sklearn_accuracy": accuracy[(name, "sklearn")],
                     "fastmlp_times": times[(name, "fastmlp")],
                     "sklearn_times": times[(name, "sklearn")]})
        print(f"{name:28s} {epochs:6d} {f:10.3f} {s:10.3f} {epochs * len(X) / f:18,.0f} "
              f"{s / f:10.2f}x {rows[-1]['fastmlp_accuracy']:11.4f} "
              f"{rows[-1]['sklearn_accuracy']:11.4f}")
    print("speed ratio = scikit-learn's median fit time / fastmlp's (above 1: fastmlp faster)")
    result = {"machine": platform.processor() or platform.machine(), "python":
              platform.python_version(), "numpy": np.__version__, "fastmlp": fm.__version__,
              "sklearn": sklearn.__version__, "threads": 1, "rounds": rounds, "cases": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
