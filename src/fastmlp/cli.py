"""Command line: ``fastmlp demo`` (also ``python -m fastmlp demo``)."""
import argparse
import sys
import time

import numpy as np


def _demo(args):
    import fastmlp as fm

    X, y = fm.datasets.load_digits()
    X_train, X_test, y_train, y_test = fm.datasets.train_test_split(X, y, test_size=0.25, seed=0)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-8  # training-set statistics only
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    model = fm.Sequential([fm.Dense(args.hidden, activation="relu"), fm.Dense(10)],
                          input_dim=64, dtype="float32", seed=args.seed, n_threads=args.threads)
    model.compile(loss="softmax_cross_entropy",
                  optimizer=fm.SGD(lr=args.lr, momentum=0.9, nesterov=True))
    print(f"fastmlp {fm.__version__} demo: 8x8 digits (UCI optdigits, bundled), "
          f"{len(X_train)} train / {len(X_test)} test samples")
    print(f"model: 64-{args.hidden}-10 ReLU MLP, softmax cross-entropy, SGD(lr={args.lr}, "
          f"nesterov momentum 0.9), batch {args.batch_size}, {model.n_params} parameters, "
          f"{fm.get_num_threads() if args.threads is None else args.threads} thread(s)")
    print(f"{'epoch':>5} {'loss':>9} {'test acc':>9} {'time':>8}")
    total = 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        history = model.fit(X_train, y_train, epochs=1, batch_size=args.batch_size)
        elapsed = time.perf_counter() - start
        total += elapsed
        acc = np.mean(np.argmax(model.predict(X_test), axis=1) == y_test)
        print(f"{epoch:5d} {history['loss'][0]:9.4f} {acc:9.2%} {elapsed * 1e3:6.1f}ms")
    print(f"final test accuracy {acc:.2%}; training time {total:.3f}s")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastmlp",
        description="Dense neural networks on the CPU with compiled kernels.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train an MLP on the bundled 8x8 digits and report test accuracy")
    demo.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    demo.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    demo.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    demo.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        for name in ("epochs", "hidden", "batch_size"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be a positive integer")
        return _demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
