"""Command line: ``fastmlp train | predict | evaluate | info | demo`` (also ``python -m fastmlp``).

Exit status: 0 success, 1 a problem with a data or model file (the message says what), 2 a
bad command line (argparse's usage message), 130 interrupted.
"""
import argparse
import csv
import os
import sys
import time

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_MISSING = {"", "na", "nan", "null", "none", "?"}


class CLIError(Exception):
    """A user error: printed as one line to stderr, exit status 1."""


# ==================================================================== reading data
class _Table:
    """Features X (float64, 2-D), their names, and the target column (or None)."""

    def __init__(self, X, names, y=None, target=None):
        self.X, self.names, self.y, self.target = X, names, y, target


def _is_int_string(text):
    text = text.strip()
    return text.lstrip("+-").isdigit()


def _read_csv(path):
    """(header or None, rows as a 2-D str array)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
            except csv.Error:
                dialect = csv.excel
            rows = [row for row in csv.reader(f, dialect) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise CLIError(f"{path}: not a text CSV file (it is not UTF-8 text).") from None
    except csv.Error as exc:
        raise CLIError(f"{path}: cannot be parsed as CSV ({exc}).") from None
    if not rows:
        raise CLIError(f"{path}: the file has no rows.")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise CLIError(f"{path}: line {i + 1} has {len(row)} fields but line 1 has {width}; "
                           "every line needs the same number of fields.")

    def numeric(cell):
        cell = cell.strip()
        if cell.lower() in _MISSING:
            return True
        try:
            float(cell)
            return True
        except ValueError:
            return False

    header = None
    if not all(numeric(cell) for cell in rows[0]):
        header = [cell.strip() for cell in rows[0]]
        rows = rows[1:]
    if not rows:
        raise CLIError(f"{path}: the file has a header but no data rows.")
    return header, np.array(rows, dtype=str)


def _to_float(column, name, path):
    """A float64 column; CLIError naming the first bad value."""
    stripped = np.char.strip(column)
    missing = np.isin(np.char.lower(stripped), list(_MISSING))
    if missing.any():
        row = int(np.argmax(missing))
        raise CLIError(f"{path}: column {name!r} has missing values (first in data row {row + 1}); "
                       "fill or drop them first.")
    try:
        return stripped.astype(np.float64)
    except ValueError:
        for i, cell in enumerate(stripped):
            try:
                float(cell)
            except ValueError:
                raise CLIError(f"{path}: column {name!r} is not numeric (value {cell!r} in data row "
                               f"{i + 1}); features must be numbers (encode categories first)."
                               ) from None
        raise


def _column_index(spec, names, path):
    if spec in names:
        return names.index(spec)
    if _is_int_string(spec):
        i = int(spec)
        if -len(names) <= i < len(names):
            return i % len(names)
    shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
    raise CLIError(f"{path}: no column {spec!r}; the columns are {shown} (or give a 0-based "
                   "index; -1 is the last column).")


def _load_csv(path, target, need_target, feature_names):
    header, cells = _read_csv(path)
    names = header or [f"column{i}" for i in range(cells.shape[1])]
    t_index = None
    if target is not None:
        if header is None and not _is_int_string(target):
            if need_target or feature_names is None:
                raise CLIError(f"{path}: the file has no header line, so --target must be a "
                               f"column index (0-based; -1 is the last column), not {target!r}.")
        elif target in names or need_target:
            t_index = _column_index(target, names, path)
    if feature_names is not None and header is not None:
        missing = [n for n in feature_names if n not in names]
        if missing:
            raise CLIError(f"{path}: the model needs the column(s) {missing} that the file lacks.")
        f_index = [names.index(n) for n in feature_names]
    else:
        f_index = [i for i in range(len(names)) if i != t_index]
    if not f_index:
        raise CLIError(f"{path}: no feature columns left besides the target.")
    X = np.column_stack([_to_float(cells[:, i], names[i], path) for i in f_index])
    y = None if t_index is None else np.char.strip(cells[:, t_index])
    if y is not None and np.isin(np.char.lower(y), list(_MISSING)).any():
        raise CLIError(f"{path}: the target column {names[t_index]!r} has missing values.")
    return _Table(X, [names[i] for i in f_index], y, None if t_index is None else names[t_index])


def _load_npz(path, target, need_target):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CLIError(f"{path}: holds pickled Python objects, which fastmlp does not load; "
                           "store plain numeric arrays.") from None
        raise CLIError(f"{path}: not a readable .npz file ({exc}).") from None
    except (OSError, EOFError) as exc:
        raise CLIError(f"{path}: not a readable .npz file ({exc}).") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise CLIError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}).") from None
    x_key = next((k for k in ("X", "x", "data", "features") if k in arrays), None)
    if x_key is None:
        raise CLIError(f"{path}: no feature array; name it 'X' (arrays in the file: "
                       f"{sorted(arrays)}).")
    X = arrays[x_key]
    if X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: array {x_key!r} has dtype {X.dtype}; features must be numbers.")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    elif X.ndim > 2:
        X = X.reshape(len(X), -1)  # images etc.: one row of pixels per sample
    y, y_key = None, None
    if target is not None:
        if target in arrays:
            y_key = target
        elif need_target:
            raise CLIError(f"{path}: no array {target!r} for the target (arrays in the file: "
                           f"{sorted(arrays)}).")
    elif "y" in arrays:
        y_key = "y"
    elif need_target:
        raise CLIError(f"{path}: no target array; name it 'y' or give --target NAME (arrays in the "
                       f"file: {sorted(arrays)}).")
    if y_key is not None:
        y = arrays[y_key]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(X):
            raise CLIError(f"{path}: the target {y_key!r} has shape {y.shape}; it needs one value "
                           f"per row of {x_key!r} ({len(X)}).")
    names = [f"{x_key}[{i}]" for i in range(X.shape[1])]
    return _Table(np.asarray(X, dtype=np.float64), names, y, y_key)


def _load_data(path, target=None, need_target=True, feature_names=None):
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file.")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory; give a .csv or .npz file.")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        table = _load_npz(path, target, need_target)
    elif ext in (".csv", ".tsv", ".txt", ".data"):
        table = _load_csv(path, target, need_target, feature_names)
    else:
        raise CLIError(f"{path}: unsupported file type {ext or '(none)'!r}; give a .csv (with a "
                       "header line; separators , ; tab detected) or a .npz with arrays X and y.")
    if len(table.X) == 0:
        raise CLIError(f"{path}: no data rows.")
    if not np.all(np.isfinite(table.X)):
        raise CLIError(f"{path}: the features contain NaN or infinite values.")
    return table


def _labels(y):
    """Targets as class labels: integers when they are whole numbers, else strings."""
    y = np.asarray(y)
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        return y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(str)
    try:
        f = np.char.strip(y.astype(str)).astype(np.float64)
        if np.all(np.isfinite(f)) and np.all(f == np.round(f)):
            return f.astype(np.int64)
    except ValueError:
        pass
    return y.astype(str)


def _numeric_target(y, path):
    try:
        values = np.char.strip(np.asarray(y).astype(str)).astype(np.float64) \
            if np.asarray(y).dtype.kind not in "biuf" else np.asarray(y, dtype=np.float64)
    except ValueError:
        raise CLIError(f"{path}: the target is not numeric, so it cannot be a regression target "
                       "(use --task classification).") from None
    if not np.all(np.isfinite(values)):
        raise CLIError(f"{path}: the target contains NaN or infinite values.")
    return values


# ==================================================================== train
def _parse_hidden(text):
    text = text.strip().lower()
    if text in ("", "0", "none"):
        return []
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 256,128, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


def _argument(text, convert, valid, expected):
    """convert(text) if it parses and passes valid, else argparse's error naming `expected`."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_int(text):
    return _argument(text, int, lambda v: v >= 1, "a positive integer")


def _fraction(text):
    return _argument(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _positive_float(text):
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _resolve_task(task, y, path):
    if task != "auto":
        return task, ""
    labels = _labels(y)
    if labels.dtype.kind in "US":
        return "classification", "the target is text"
    n_values = len(np.unique(labels))
    if labels.dtype.kind == "i" and n_values <= 10:
        return "classification", (f"the target has {n_values} distinct whole-number values; "
                                  "pass --task regression to predict it as a number")
    return "regression", "the target is numeric; pass --task classification for classes"


def _classification_metrics(proba, y_index):
    """Accuracy and mean log-loss from class probabilities and true class indices."""
    acc = float(np.mean(np.argmax(proba, axis=1) == y_index))
    p = np.clip(proba[np.arange(len(y_index)), y_index], 1e-15, 1.0)
    return {"accuracy": acc, "log_loss": float(-np.mean(np.log(p)))}


def _regression_metrics(pred, y):
    err = pred - y
    mse = float(np.mean(err ** 2))
    var = float(np.var(y))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - mse / var if var > 0 else float("nan")}


def _format_metrics(metrics, prefix=""):
    parts = []
    for key, value in metrics.items():
        if key == "accuracy":
            parts.append(f"{prefix}accuracy {value:.2%}")
        else:
            parts.append(f"{prefix}{key} {value:.4f}")
    return "  ".join(parts)


def _train(args):
    import fastmlp as fm

    out = sys.stdout if not args.quiet else open(os.devnull, "w")
    table = _load_data(args.data, target=args.target, need_target=True)
    if table.y is None:
        raise CLIError(f"{args.data}: no target column; give --target NAME.")
    task, why = _resolve_task(args.task, table.y, args.data)
    X = table.X
    n, d = X.shape
    if task == "classification":
        labels = _labels(table.y)
        classes, y_index = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise CLIError(f"{args.data}: the target has a single class ({classes[0]!r}); "
                           "classification needs at least two.")
        if len(classes) > max(100, n // 2):
            raise CLIError(f"{args.data}: the target has {len(classes)} distinct values for {n} "
                           "rows; that looks like a regression target (use --task regression).")
        targets = y_index.astype(np.int64)
    else:
        y_values = _numeric_target(table.y, args.data)
        targets = y_values

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(n)
    n_val = int(round(args.validation_split * n)) if args.validation_split else 0
    if args.validation_split and (n_val < 1 or n - n_val < 1):
        raise CLIError(f"{args.data}: {n} rows are too few for --validation-split "
                       f"{args.validation_split}; use more data or --validation-split 0.")
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    X_train, X_val = X[train_idx], X[val_idx]
    t_train, t_val = targets[train_idx], targets[val_idx]

    # scale with the training rows' statistics; folded into the weights at the end
    if args.scale == "standard":
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    elif args.scale == "minmax":
        mean, std = X_train.min(axis=0), X_train.max(axis=0) - X_train.min(axis=0)
    else:
        mean, std = np.zeros(d), np.ones(d)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)  # constant columns
    Xs_train, Xs_val = (X_train - mean) / std, (X_val - mean) / std
    if task == "regression":
        y_mean = float(t_train.mean()) if args.scale != "none" else 0.0
        y_std = float(t_train.std()) if args.scale != "none" else 1.0
        y_std = y_std if y_std > 0 else 1.0
        fit_train, fit_val = (t_train - y_mean) / y_std, (t_val - y_mean) / y_std
    else:
        fit_train, fit_val = t_train, t_val

    n_out = len(classes) if task == "classification" else 1
    layers = []
    for width in args.hidden:
        layers.append(fm.Dense(width, activation=args.activation, l2=args.l2))
        if args.dropout:
            layers.append(fm.Dropout(args.dropout))
    layers.append(fm.Dense(n_out, l2=args.l2))
    try:
        model = fm.Sequential(layers, input_dim=d, dtype=args.dtype, seed=args.seed,
                              n_threads=args.threads)
        optimizer_cls = {"sgd": fm.SGD, "adam": fm.Adam, "adamw": fm.AdamW, "nadam": fm.NAdam,
                         "adamax": fm.Adamax, "rmsprop": fm.RMSprop, "adagrad": fm.Adagrad,
                         "adadelta": fm.Adadelta, "rprop": fm.Rprop}[args.optimizer]
        kwargs = {} if args.lr is None else {"lr": args.lr}
        if args.optimizer == "sgd":
            kwargs.setdefault("lr", 0.01)
            kwargs.update(momentum=0.9, nesterov=True)
        optimizer = optimizer_cls(**kwargs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    loss = "softmax_cross_entropy" if task == "classification" else "mse"
    model.compile(loss=loss, optimizer=optimizer)
    batch = None if args.batch_size == 0 else min(args.batch_size, len(train_idx))

    desc = f"{len(classes)} classes" if task == "classification" else "regression"
    print(f"fastmlp {fm.__version__}: {args.data} ({n} rows, {d} features); target "
          f"{table.target!r}: {task}" + (f" ({why})" if why else "")
          + (f", {desc}" if task == "classification" else ""), file=out)
    arch = "-".join(str(w) for w in [d, *args.hidden, n_out])
    print(f"model: {arch} {args.activation} MLP, {model.n_params} parameters, {loss}, "
          f"{optimizer!r}, batch {batch or 'full'}, {len(train_idx)} train / {n_val} validation "
          f"rows, features scaled: {args.scale}", file=out)

    history = []
    start_all = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        h = model.fit(Xs_train, fit_train, epochs=1, batch_size=batch, shuffle=True)
        logs = {"loss": float(h["loss"][0])}
        if n_val:
            logs.update(_val_metrics(model, task, Xs_val, fit_val, t_val,
                                     None if task == "classification" else (y_mean, y_std)))
        elapsed = time.perf_counter() - start
        history.append(logs)
        print(f"epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}  "
              + _format_metrics(logs) + f"  {elapsed:.2f}s", file=out)
    total = time.perf_counter() - start_all

    _fold_standardisation(model, mean, std)
    if task == "regression":
        _fold_target_scaling(model, y_mean, y_std)
    final = {"train": _evaluate_arrays(model, task, X_train, t_train)}
    if n_val:
        final["validation"] = _evaluate_arrays(model, task, X_val, t_val)
    metadata = {
        "task": task, "target": table.target, "features": table.names,
        "classes": classes.tolist() if task == "classification" else None,
        "data": os.path.basename(args.data), "n_train": int(len(train_idx)), "n_validation": n_val,
        "epochs": args.epochs, "metrics": final,
        "command": "fastmlp train " + " ".join(args.argv),
    }
    output = args.output or os.path.splitext(os.path.basename(args.data))[0] + ".fmlp"
    try:
        model.save(output, metadata=metadata)
    except OSError as exc:
        raise CLIError(f"{output}: cannot write the model ({exc.strerror or exc}).") from None
    print(f"trained {args.epochs} epochs in {total:.2f}s; train {_format_metrics(final['train'])}"
          + (f"; validation {_format_metrics(final['validation'])}" if n_val else ""), file=out)
    print(f"saved {output}", file=out)
    return EXIT_OK


def _val_metrics(model, task, Xs_val, fit_val, t_val, y_scale):
    logs = {"val_loss": float(model.evaluate(Xs_val, fit_val))}
    if task == "classification":
        logs["val_accuracy"] = float(np.mean(np.argmax(model.predict(Xs_val), axis=1) == t_val))
    else:
        y_mean, y_std = y_scale
        pred = model.predict(Xs_val)[:, 0] * y_std + y_mean
        logs["val_rmse"] = float(np.sqrt(np.mean((pred - t_val) ** 2)))
    return logs


def _fold_standardisation(model, mean, std):
    """Make the first Dense layer take raw features: W' = W / std, b' = b - (mean / std) W."""
    first = model.layers[0]
    w = first.weight.astype(np.float64)
    b = first.bias.astype(np.float64)
    first.weight = w / std[:, None]
    first.bias = b - (mean / std) @ w


def _fold_target_scaling(model, y_mean, y_std):
    """Make the linear output layer predict in the target's units: W' = s W, b' = s b + m."""
    last = model.layers[-1]
    w, b = last.weight.astype(np.float64), last.bias.astype(np.float64)
    last.weight = w * y_std
    last.bias = b * y_std + y_mean


def _evaluate_arrays(model, task, X, t):
    pred = model.predict(X)
    if task == "classification":
        return _classification_metrics(pred, t)
    return _regression_metrics(pred[:, 0], t)


# ==================================================================== predict / evaluate / info
def _load_model(path):
    import fastmlp as fm

    try:
        return fm.load(path, return_metadata=True)
    except fm.ModelFileError as exc:
        raise CLIError(str(exc)) from None


def _model_outputs(obj, meta, X, path):
    """(labels or values, probabilities or None, class names or None) for X."""
    from .model import Sequential

    model = obj if isinstance(obj, Sequential) else getattr(obj, "model_", None)
    n_features = (model.input_dim if isinstance(model, Sequential)
                  else getattr(obj, "n_features_in_", X.shape[1]))
    if X.shape[1] != n_features:
        raise CLIError(f"{path}: has {X.shape[1]} feature columns but the model expects "
                       f"{n_features}.")
    if not isinstance(obj, Sequential):  # an estimator (fastmlp.sklearn, fastmlp.linear)
        pred = obj.predict(X)
        proba = obj.predict_proba(X) if hasattr(obj, "predict_proba") else None
        classes = getattr(obj, "classes_", None)
        return pred, proba, None if classes is None else list(classes)
    out = obj.predict(X)
    classes = meta.get("classes")
    link = obj.loss.link if obj.loss is not None else "identity"
    if meta.get("task") == "classification" or link in ("softmax", "sigmoid"):
        proba = np.hstack([1 - out, out]) if out.shape[1] == 1 and link == "sigmoid" else out
        if classes is None or len(classes) != proba.shape[1]:
            classes = list(range(proba.shape[1]))
        return np.array(classes, dtype=object)[np.argmax(proba, axis=1)], proba, classes
    if link == "sign":
        return out[:, 0] if out.shape[1] == 1 else out, None, None
    return out[:, 0] if out.shape[1] == 1 else out, None, None


def _write_predictions(pred, proba, classes, args):
    columns, header = [], []
    pred = np.asarray(pred)
    if pred.ndim == 2:
        columns += [pred[:, j] for j in range(pred.shape[1])]
        header += [f"prediction{j}" for j in range(pred.shape[1])]
    else:
        columns.append(pred)
        header.append("prediction")
    if args.proba:
        if proba is None:
            raise CLIError("--proba needs a classification model; this one predicts values.")
        columns += [proba[:, j] for j in range(proba.shape[1])]
        header += [f"p_{c}" for c in classes]

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.6g}"
        return str(v)

    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in zip(*columns):
            w.writerow([fmt(v) for v in row])

    if args.output in (None, "-"):
        write(sys.stdout)
    else:
        try:
            with open(args.output, "w", newline="") as f:
                write(f)
        except OSError as exc:
            raise CLIError(f"{args.output}: cannot write predictions ({exc.strerror or exc}).") \
                from None
        print(f"wrote {len(pred)} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK


def _predict(args):
    obj, meta = _load_model(args.model)
    target = args.target or meta.get("target")
    table = _load_data(args.data, target=target, need_target=False,
                       feature_names=meta.get("features"))
    pred, proba, classes = _model_outputs(obj, meta, table.X, args.data)
    return _write_predictions(pred, proba, classes, args)


def _evaluate(args):
    obj, meta = _load_model(args.model)
    target = args.target or meta.get("target")
    if target is None and not args.data.lower().endswith(".npz"):
        raise CLIError("give --target: the model file does not record the target column.")
    table = _load_data(args.data, target=target, need_target=True,
                       feature_names=meta.get("features"))
    if table.y is None:
        raise CLIError(f"{args.data}: no target column {target!r}.")
    pred, proba, classes = _model_outputs(obj, meta, table.X, args.data)
    n = len(table.y)
    if proba is not None or meta.get("task") == "classification":
        truth = _labels(table.y)
        known = np.array(classes, dtype=object)
        pred_labels = np.asarray(pred, dtype=object)
        if truth.dtype.kind in "US" or any(isinstance(c, str) for c in classes):
            truth_cmp, pred_cmp, known = truth.astype(str), pred_labels.astype(str), known.astype(str)
        else:
            truth_cmp, pred_cmp = truth.astype(object), pred_labels
        metrics = {"accuracy": float(np.mean(truth_cmp == pred_cmp))}
        if proba is not None:
            index = {c: i for i, c in enumerate(known.tolist())}
            rows = [i for i, t in enumerate(truth_cmp.tolist()) if t in index]
            if rows:
                cols = [index[truth_cmp.tolist()[i]] for i in rows]
                p = np.clip(proba[rows, cols], 1e-15, 1.0)
                metrics["log_loss"] = float(-np.mean(np.log(p)))
            if len(rows) < n:
                print(f"note: {n - len(rows)} rows have labels the model never saw.",
                      file=sys.stderr)
    else:
        y = _numeric_target(table.y, args.data)
        pred = np.asarray(pred, dtype=np.float64)
        if pred.ndim != 1:
            raise CLIError("evaluate handles single-output models; this one has several outputs.")
        metrics = _regression_metrics(pred, y)
    print(f"{args.data}: {n} rows; " + _format_metrics(metrics))
    return EXIT_OK


def _info(args):
    import fastmlp as fm
    from .model import Sequential

    try:
        manifest = fm.io.read_manifest(args.model)
    except fm.ModelFileError as exc:
        raise CLIError(str(exc)) from None
    obj, meta = _load_model(args.model)  # also checks every array
    size = os.path.getsize(args.model)
    print(f"{args.model}: fastmlp model file, format version {manifest['format_version']}, "
          f"written by fastmlp {manifest.get('fastmlp_version', '?')}, {size / 1024:.1f} KiB")
    model = obj if isinstance(obj, Sequential) else getattr(obj, "model_", None)
    if not isinstance(obj, Sequential):
        print(f"object: {type(obj).__module__}.{type(obj).__name__}")
        params = obj.get_params() if hasattr(obj, "get_params") else {}
        if params:
            print("parameters: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    if isinstance(model, Sequential):
        print(model.summary())
        if model.optimizer is not None:
            print(f"  optimizer steps taken: {model.optimizer.iterations}, epochs: "
                  f"{getattr(model, '_epochs_done', 0)}")
    for key in ("task", "target", "data"):
        if meta.get(key) is not None:
            print(f"{key}: {meta[key]}")
    if meta.get("features"):
        feats = meta["features"]
        print(f"features ({len(feats)}): " + ", ".join(feats[:12]) + (", ..." if len(feats) > 12 else ""))
    if meta.get("classes") is not None:
        cl = meta["classes"]
        print(f"classes ({len(cl)}): " + ", ".join(str(c) for c in cl[:20])
              + (", ..." if len(cl) > 20 else ""))
    if meta.get("n_train") is not None:
        print(f"trained: {meta.get('epochs')} epochs on {meta['n_train']} rows "
              f"({meta.get('n_validation', 0)} held out for validation)")
    for part, values in (meta.get("metrics") or {}).items():
        print(f"{part} metrics: {_format_metrics(values)}")
    extra = {k: v for k, v in meta.items() if k not in (
        "task", "target", "data", "features", "classes", "n_train", "n_validation", "epochs",
        "metrics")}
    for key, value in extra.items():
        print(f"{key}: {value}")
    return EXIT_OK


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


_DESCRIPTION = """\
Dense neural networks (multilayer perceptrons) on the CPU, with compiled kernels.

Train a model on a table of numbers, then use the saved model file:

  fastmlp train wine.csv --target quality --task regression -o wine.fmlp
  fastmlp predict wine.fmlp new_wines.csv > predictions.csv
  fastmlp evaluate wine.fmlp test_wines.csv
  fastmlp info wine.fmlp

Data files are CSV (a header line naming the columns; comma, semicolon or tab separated; all
feature columns numeric) or NumPy .npz (arrays X and y). Run "fastmlp COMMAND --help" for the
options of each command.

Exit status: 0 success, 1 a problem with a data or model file, 2 a bad command line."""


def _build_parser():
    parser = argparse.ArgumentParser(prog="fastmlp", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"fastmlp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a model on a CSV or .npz file and save it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a multilayer perceptron on DATA and save it to a model file.\n\n"
                    "The features are scaled with the training rows' statistics (--scale), and\n"
                    "that scaling is folded into the saved weights, so the model takes raw\n"
                    "features. A fraction of the rows (--validation-split) is held out to\n"
                    "report validation metrics after every epoch.",
        epilog="examples:\n"
               "  fastmlp train winequality-red.csv --target quality --task regression \\\n"
               "      --hidden 64,32 --epochs 50 -o wine.fmlp\n"
               "  fastmlp train mnist.npz --hidden 256,128 --epochs 20 --scale minmax -o mnist.fmlp")
    train.add_argument("data", metavar="DATA", help="training data: a .csv file with a header "
                       "line, or a .npz file with arrays X (features) and y (target)")
    train.add_argument("--target", "-t", metavar="COL",
                       help="the column to predict: its name in the CSV header or its 0-based "
                            "index (-1 = last); for .npz the target array's name (default y)")
    train.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                       help="predict classes or numbers; auto (default) picks classification for "
                            "text targets and for whole numbers with at most 10 distinct values")
    train.add_argument("--hidden", type=_parse_hidden, default=[64], metavar="W1,W2,...",
                       help="hidden layer widths, comma-separated (default 64; 0 = no hidden "
                            "layer, a linear model)")
    train.add_argument("--activation", default="relu",
                       help="activation of the hidden layers: relu (default), tanh, sigmoid, "
                            "elu, gelu, silu, leaky_relu, ...")
    train.add_argument("--dropout", type=_fraction, default=0.0, metavar="RATE",
                       help="dropout rate after each hidden layer, in [0, 1) (default 0)")
    train.add_argument("--l2", type=_non_negative, default=0.0,
                       help="L2 weight penalty l2/2 * sum(W^2) (default 0)")
    train.add_argument("--epochs", type=_positive_int, default=20,
                       help="passes over the training rows (default 20)")
    train.add_argument("--batch-size", type=int, default=32, metavar="N",
                       help="rows per gradient step (default 32; 0 = all rows, full batch)")
    train.add_argument("--optimizer", default="adam",
                       choices=("adam", "sgd", "adamw", "nadam", "adamax", "rmsprop", "adagrad",
                                "adadelta", "rprop"),
                       help="update rule (default adam; sgd uses Nesterov momentum 0.9)")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help="learning rate (default: the optimizer's, 0.001 for adam, 0.01 for sgd)")
    train.add_argument("--validation-split", type=_fraction, default=0.1, metavar="FRACTION",
                       help="fraction of rows held out for validation (default 0.1; 0 = none)")
    train.add_argument("--scale", choices=("standard", "minmax", "none"), default="standard",
                       help="feature scaling, computed on the training rows and folded into the "
                            "saved weights: standard (default; zero mean, unit variance), minmax "
                            "(to [0, 1]; better for pixels and other sparse columns) or none")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="precision of the network (default float32)")
    train.add_argument("--seed", type=int, default=0,
                       help="random seed for the split, initialisation and shuffling (default 0)")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="kernel threads (default: all CPUs; results do not depend on it)")
    train.add_argument("--output", "-o", metavar="MODEL",
                       help="where to save the model (default: DATA's name with .fmlp, in the "
                            "current directory)")
    train.add_argument("--quiet", "-q", action="store_true", help="print nothing")

    predict = sub.add_parser(
        "predict", help="predict with a saved model; writes CSV",
        description="Predict for every row of DATA with a saved model and write CSV: a\n"
                    "'prediction' column (class labels or values) and, with --proba, one\n"
                    "probability column per class. Columns are matched by the names the model\n"
                    "was trained on; a target column in DATA is ignored.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  fastmlp predict wine.fmlp new_wines.csv -o predictions.csv")
    predict.add_argument("model", metavar="MODEL", help="a model file from fastmlp train or "
                         "model.save()")
    predict.add_argument("data", metavar="DATA", help="a .csv or .npz file with the same features")
    predict.add_argument("--target", "-t", metavar="COL",
                         help="a column of DATA to ignore (default: the model's target)")
    predict.add_argument("--proba", action="store_true",
                         help="also write class probabilities (classification models)")
    predict.add_argument("--output", "-o", metavar="FILE",
                         help="write the CSV to FILE (default: standard output)")

    evaluate = sub.add_parser(
        "evaluate", help="score a saved model on labelled data",
        description="Score a saved model on DATA, which must contain the target column:\n"
                    "accuracy and log-loss for classification, MSE, RMSE, MAE and R^2 for\n"
                    "regression.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  fastmlp evaluate wine.fmlp winequality-red.csv")
    evaluate.add_argument("model", metavar="MODEL", help="a model file")
    evaluate.add_argument("data", metavar="DATA", help="a .csv or .npz file with the target")
    evaluate.add_argument("--target", "-t", metavar="COL",
                          help="the target column (default: the one the model was trained on)")

    info = sub.add_parser("info", help="describe a saved model file",
                          description="Print a model file's format version, architecture, "
                                      "training data, classes and metrics.")
    info.add_argument("model", metavar="MODEL", help="a model file")

    demo = sub.add_parser("demo", help="train an MLP on the bundled 8x8 digits and report test accuracy")
    demo.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    demo.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    demo.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    demo.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    return parser, {"train": train, "predict": predict, "evaluate": evaluate, "info": info,
                    "demo": demo}


def main(argv=None):
    parser, subparsers = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "demo":
        for name in ("epochs", "hidden", "batch_size"):
            if getattr(args, name) < 1:
                subparsers["demo"].error(f"--{name.replace('_', '-')} must be a positive integer")
        return _demo(args)
    if args.command == "train":
        if args.batch_size < 0:
            subparsers["train"].error("--batch-size must be a positive integer, or 0 for full batch")
        args.argv = argv[1:]
        from .activations import Activation
        try:
            Activation(args.activation)
        except ValueError as exc:
            subparsers["train"].error(f"--activation: {exc}")
    handler = {"train": _train, "predict": _predict, "evaluate": _evaluate, "info": _info}
    try:
        return handler[args.command](args)
    except CLIError as exc:
        print(f"fastmlp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, FloatingPointError) as exc:
        # the library's input checks (bad activation name, NaN in data, diverging training...)
        print(f"fastmlp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"fastmlp {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. "fastmlp predict ... | head": the reader went away
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
