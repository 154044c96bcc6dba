"""Callbacks: code run by ``Sequential.fit`` around the training loop, as in Keras.

A callback subclasses ``Callback`` and overrides any of

    on_train_begin(logs)           before the first epoch of a fit call
    on_epoch_begin(epoch, logs)    before each epoch (a schedule sets the learning rate here)
    on_epoch_end(epoch, logs)      after each epoch, with the epoch's logs (below)
    on_train_end(logs)             after the last epoch (not called if fit raises)

``self.model`` is the model being trained and ``self.params`` a dict with "epochs",
"initial_epoch", "batch_size", "samples", "verbose" and "metrics" (the log keys). Any hook may
stop training by setting ``self.model.stop_training = True``: fit then returns after the
current epoch (before it, if set in on_train_begin or on_epoch_begin).

The compiled engine runs a whole epoch per C call, so there are no per-batch hooks: every
callback acts between epochs. ``epoch`` is the model's epoch index (``history.epoch``), which
keeps counting across fit calls.

The logs of an epoch hold, in this order: "loss" (the mean training loss over the epoch's
batches, penalties included), each compiled metric on the training data ("accuracy", ...:
computed from ``model.predict`` at the end of the epoch), "val_loss" and "val_<metric>" when
there is validation data, "lr" (the learning rate the epoch trained with) and "time" (seconds
for the epoch, metrics and validation included).
"""
import csv
import inspect
import json
import math
import numbers
import os
import sys

import numpy as np

from ._atomic import atomic_write

__all__ = [
    "Callback", "History", "EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint",
    "TerminateOnNaN", "CSVLogger", "ProgressBar", "LambdaCallback", "LearningRateScheduler",
    "save_checkpoint", "load_checkpoint",
]


class Callback:
    """Base class of callbacks: every hook does nothing."""

    model = None
    params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params)

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass


class CallbackList:
    """Calls every callback's hook in order; remembers which one stopped training."""

    _HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end")

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastmlp Callback instances, got "
                                f"{type(cb).__name__}; wrap a function in LambdaCallback(...)")
        self.model = model
        self.stopped_by = None
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            was_stopped = getattr(self.model, "stop_training", False)
            getattr(cb, hook)(*args)
            if not was_stopped and getattr(self.model, "stop_training", False):
                self.stopped_by = type(cb).__name__

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs if logs is not None else {})

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs if logs is not None else {})

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs if logs is not None else {})

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs if logs is not None else {})


class History(Callback):
    """Per-epoch logs of one ``fit`` call: ``history.history["loss"]`` (or ``history["loss"]``),
    "val_loss", the metrics, "lr", "time"; ``history.epoch`` lists the epoch indices.

    Every list has one entry per epoch (NaN where an epoch has no value for a key).
    ``stopped_by`` names the callback that stopped training early (None if all epochs ran)."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.stopped_by = None

    def append(self, epoch, logs):
        for key, value in logs.items():
            if key not in self.history:
                self.history[key] = [math.nan] * len(self.epoch)
        self.epoch.append(epoch)
        for key, values in self.history.items():
            values.append(logs.get(key, math.nan))

    def on_epoch_end(self, epoch, logs=None):
        self.append(epoch, dict(logs or {}))

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        return self.history.keys()

    def __repr__(self):
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"


# ---- monitoring helpers ----
def _check_mode(mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def _resolve_mode(mode, monitor, model):
    """'min' or 'max': the compiled metric's direction for mode='auto', else by name."""
    if mode != "auto":
        return mode
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for metric in getattr(model, "metrics", None) or []:
        if getattr(metric, "name", None) == name:
            return getattr(metric, "direction", "min")
    if name in ("acc", "r2") or name.endswith("accuracy") or name.startswith("auc"):
        return "max"
    return "min"


def _monitored(logs, monitor, owner):
    if monitor not in logs:
        hint = (" Give validation_data or validation_split to fit, or monitor='loss'."
                if monitor.startswith("val_") else "")
        raise ValueError(f"{owner} monitors {monitor!r}, which is not in the logs (available: "
                         f"{', '.join(logs) or 'none'}).{hint}")
    return float(logs[monitor])


def _non_negative(value, name):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving (Keras' EarlyStopping).

    monitor : key of the logs, e.g. "val_loss" (default), "loss", "val_accuracy".
    mode : "min", "max" or "auto" (the compiled metric's direction; "max" for names ending in
        accuracy and for r2, else "min").
    min_delta : an improvement must beat the best value by more than this (absolute).
    patience : epochs without improvement after which training stops. With the best epoch b,
        training stops at the end of epoch b + patience (the first epoch, never at epoch 0).
    baseline : training stops after `patience` epochs unless the value beats this.
    restore_best_weights : at the end of training, set the weights of the best epoch (the
        weights are copied after each improving epoch).
    start_from_epoch : epochs (model epoch index) before which nothing is monitored (warm-up).

    After training, ``stopped_epoch`` is the epoch that stopped it (0 if none), ``best`` the best
    value and ``best_epoch`` its epoch.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        self.monitor = str(monitor)
        self.min_delta = abs(_non_negative(min_delta, "min_delta"))
        self.patience = _count(patience, "patience")
        self.verbose = verbose
        self.mode = _check_mode(mode)
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _count(start_from_epoch, "start_from_epoch")
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self._direction = None
        self.best = None

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self._direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self._reset()
        self._direction = _resolve_mode(self.mode, self.monitor, self.model)
        self.best = math.inf if self._direction == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs or {}, self.monitor, "EarlyStopping")
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # nothing better seen yet
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping (best {self.monitor} "
                      f"{self.best:.6g} at epoch {self.best_epoch + 1})", file=sys.stdout)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring the weights of epoch {self.best_epoch + 1}", file=sys.stdout)
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when a monitored value stops improving
    (Keras' ReduceLROnPlateau; PyTorch's with threshold_mode='abs').

    An epoch improves when its value beats the best by more than min_delta (below best -
    min_delta for mode "min", above best + min_delta for "max"). At the end of the `patience`-th
    epoch in a row without improvement (epoch best_epoch + patience), the rate becomes
    max(lr * factor, min_lr) from the next epoch on (it is never raised: nothing happens once
    lr <= min_lr). The `cooldown` epochs after a reduction are not counted (PyTorch's meaning
    of cooldown); an improvement during them still updates the best value.
    ``reductions`` lists (epoch, new lr) for every reduction. Use it instead of a schedule,
    not with one: a LearningRateScheduler sets the rate before every epoch and would undo it.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        self.monitor = str(monitor)
        factor = _non_negative(factor, "factor")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}")
        self.factor = factor
        self.patience = _count(patience, "patience")
        self.verbose = verbose
        self.mode = _check_mode(mode)
        self.min_delta = abs(_non_negative(min_delta, "min_delta"))
        self.cooldown = _count(cooldown, "cooldown")
        self.min_lr = _non_negative(min_lr, "min_lr")
        self._reset()

    def _reset(self):
        self.wait = 0
        self.cooldown_counter = 0
        self._direction = None
        self.best = None
        self.reductions = []  # (epoch, new lr) for each reduction

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _better(self, value):
        if self._direction == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()
        self._direction = _resolve_mode(self.mode, self.monitor, self.model)
        self.best = math.inf if self._direction == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs or {}, self.monitor, "ReduceLROnPlateau")
        better = self._better(current)
        if better:
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
        if self.in_cooldown():
            self.cooldown_counter -= 1  # this epoch was a cooldown epoch
            return
        if better or self.wait < self.patience:
            return
        optimizer = self.model.optimizer
        old_lr = float(optimizer.lr)
        if old_lr > self.min_lr:
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.lr = new_lr
            self.reductions.append((epoch, new_lr))
            if self.verbose:
                print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing the learning rate to "
                      f"{new_lr:.6g}", file=sys.stdout)
            self.cooldown_counter = self.cooldown
            self.wait = 0


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate before each epoch from a schedule.

    schedule : a ``fastmlp.schedules`` schedule (called as ``schedule(epoch, base_lr)`` with the
        optimizer's initial rate, see that module), or a function ``f(epoch) -> lr`` or
        ``f(epoch, lr) -> lr`` (Keras: lr is the current rate).
    ``model.fit(..., lr_schedule=schedule)`` is a shortcut for adding this callback.
    """

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"schedule must be a schedule or a function of the epoch, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = self._takes_two(schedule)

    @staticmethod
    def _takes_two(fn):
        try:
            inspect.signature(fn).bind(0, 0.0)
            return True
        except TypeError:
            return False
        except ValueError:  # no signature available (some builtins)
            return True

    def on_train_begin(self, logs=None):
        from .schedules import LRSchedule
        optimizer = self.model.optimizer
        self._base_lr = None
        if isinstance(self.schedule, LRSchedule):
            self._base_lr = self.schedule.base_lr
            if self._base_lr is None:
                if getattr(optimizer, "initial_lr", None) is None:
                    optimizer.initial_lr = float(optimizer.lr)
                self._base_lr = optimizer.initial_lr

    def on_epoch_begin(self, epoch, logs=None):
        from .schedules import LRSchedule
        optimizer = self.model.optimizer
        if isinstance(self.schedule, LRSchedule):
            lr = self.schedule(epoch, self._base_lr)
        elif self._two_args:
            lr = self.schedule(epoch, float(optimizer.lr))
        else:
            lr = self.schedule(epoch)
        if (isinstance(lr, bool) or not isinstance(lr, (numbers.Real, np.floating))
                or not math.isfinite(lr) or lr < 0):
            raise ValueError(f"The schedule returned the learning rate {lr!r} for epoch {epoch}; "
                             "it must be a finite number >= 0.")
        optimizer.lr = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {float(lr):.6g}", file=sys.stdout)


class TerminateOnNaN(Callback):
    """Stop training quietly when the loss becomes NaN or infinite.

    Without it, a non-finite loss makes fit raise FloatingPointError. With it, fit catches the
    error, keeps the last finite weights (the engine never applies a non-finite step), records
    the epoch with loss NaN in the history, sets ``model.stop_training`` and returns;
    ``stopped_epoch`` is that epoch (None if it never happened)."""

    def __init__(self, verbose=0):
        self.verbose = verbose
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: invalid loss, terminating training", file=sys.stdout)


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file: columns "epoch" then the log keys in log
    order. Floats are written exactly (shortest round-trip repr). append=True adds to an
    existing file, keeping its columns; otherwise the file is overwritten when training begins.
    Each row is written and the file closed at the end of its epoch."""

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self.keys = None

    def on_train_begin(self, logs=None):
        self.keys = None
        if self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            if header:
                self.keys = header[1:]
        elif not self.append:
            open(self.filename, "w").close()

    @staticmethod
    def _format(value):
        if isinstance(value, (float, np.floating)):
            return repr(float(value))
        if isinstance(value, (np.integer,)):
            return str(int(value))
        return value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        new_file = self.keys is None
        if new_file:
            self.keys = list(logs)
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if new_file:
                writer.writerow(["epoch"] + self.keys)
            writer.writerow([epoch] + [self._format(logs.get(k, "")) for k in self.keys])


def _format_logs(logs):
    parts = []
    for key, value in logs.items():
        if key == "time":
            continue
        if isinstance(value, (float, np.floating)):
            parts.append(f"{key}: {value:.4g}" if key == "lr" else f"{key}: {value:.4f}")
        else:
            parts.append(f"{key}: {value}")
    if "time" in logs:
        parts.append(f"{logs['time']:.3f}s")
    return " - ".join(parts)


class ProgressBar(Callback):
    """Progress over epochs (the engine runs each epoch in one C call, so there is no per-batch
    progress). Uses tqdm when it is installed (an optional extra) and use_tqdm is not False;
    otherwise prints one plain line per epoch: ``Epoch 3/10: loss: 0.1234 - ... - 0.012s``.
    ``fit(verbose=1)`` adds ProgressBar(), ``verbose=2`` ProgressBar(use_tqdm=False)."""

    def __init__(self, use_tqdm=None, file=None):
        self.use_tqdm = use_tqdm
        self.file = file
        self._bar = None

    def _tqdm(self):
        if self.use_tqdm is False:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if self.use_tqdm:
                raise ImportError("ProgressBar(use_tqdm=True) needs tqdm: pip install tqdm") from None
            return None
        return tqdm

    def on_train_begin(self, logs=None):
        tqdm = self._tqdm()
        self._first = self.params.get("initial_epoch", 0)
        self._last = self._first + self.params.get("epochs", 0)
        self._bar = None
        if tqdm is not None:
            self._bar = tqdm(total=self.params.get("epochs"), unit="epoch",
                             file=self.file or sys.stderr, leave=True)

    def on_epoch_end(self, epoch, logs=None):
        text = _format_logs(logs or {})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)
        else:
            print(f"Epoch {epoch + 1}/{self._last}: {text}", file=self.file or sys.stdout,
                  flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin(epoch, logs), on_epoch_end(epoch, logs),
    on_train_begin(logs), on_train_end(logs); any may be omitted."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None):
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be a function, got {fn!r}")
                setattr(self, name, fn)


# ---- checkpoints ----
_FORMAT = "fastmlp-checkpoint"


def _write_npz(fileobj, arrays):
    """Write the checkpoint's arrays as an uncompressed .npz (no pickled objects)."""
    np.savez(fileobj, **arrays)


def save_checkpoint(model, path, include_optimizer=True):
    """Write the model's weights (and the optimizer's state) to `path` atomically.

    The file is a NumPy .npz archive (plain arrays, no pickle): "weight_<i>" for each array of
    ``model.get_weights()``, "optimizer.<slot>" for each state vector and "__meta__", a UTF-8
    JSON document (format, epoch count, optimizer class and its scalars). A crash while writing
    leaves the previous file at `path` untouched. Read it back with ``load_checkpoint``."""
    weights = model.get_weights()
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
    meta = {"format": _FORMAT, "version": 1, "n_weights": len(weights),
            "epochs_done": int(getattr(model, "_epochs_done", 0))}
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None:
        scalars = {}
        for key, value in optimizer.get_state().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{key}"] = value
            else:
                scalars[key] = value.item() if isinstance(value, np.generic) else value
        if getattr(optimizer, "initial_lr", None) is not None:
            scalars["initial_lr"] = float(optimizer.initial_lr)
        meta["optimizer"] = {"class": type(optimizer).__name__, "state": scalars}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: _write_npz(f, arrays))
    return os.fspath(path)


def load_checkpoint(path, model):
    """Restore weights (and optimizer state, if saved and the model has an optimizer of the same
    class) from a file written by save_checkpoint / ModelCheckpoint(save_weights_only=...).
    The model must be built (give input_dim) and compiled to restore the optimizer. The epoch
    count is restored too, so a model created with the same seed resumes training exactly
    where the checkpoint was taken (same shuffles). Returns the checkpoint's metadata."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        if "__meta__" not in f.files:
            raise ValueError(f"{os.fspath(path)!r} is not a fastmlp checkpoint (no __meta__)")
        meta = json.loads(f["__meta__"].tobytes().decode("utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a fastmlp checkpoint")
        weights = [f[f"weight_{i}"] for i in range(meta["n_weights"])]
        opt_arrays = {k[len("optimizer."):]: f[k] for k in f.files if k.startswith("optimizer.")}
    model.set_weights(weights)
    saved = meta.get("optimizer")
    optimizer = getattr(model, "optimizer", None)
    if saved is not None and optimizer is not None:
        if saved["class"] != type(optimizer).__name__:
            raise ValueError(f"The checkpoint holds the state of a {saved['class']} optimizer, "
                             f"but the model is compiled with {type(optimizer).__name__}.")
        state = dict(saved["state"])
        initial_lr = state.pop("initial_lr", None)
        state.update(opt_arrays)
        optimizer.set_state(state)
        if initial_lr is not None:
            optimizer.initial_lr = initial_lr
    if hasattr(model, "_epochs_done"):
        model._epochs_done = int(meta.get("epochs_done", model._epochs_done))
    return meta


class ModelCheckpoint(Callback):
    """Save the model after each epoch, atomically (Keras' ModelCheckpoint).

    filepath : where to save; may contain ``{epoch}`` (1-based, as Keras) and log keys, e.g.
        "ckpt-{epoch:03d}-{val_loss:.4f}.npz".
    monitor, mode : the value deciding "best" (mode as EarlyStopping's).
    save_best_only : save only when the monitored value improves strictly on the best so far
        (the first finite value always does, unless initial_value_threshold is given).
    save_weights_only : save weights (and no optimizer state) with save_checkpoint even when
        the model has ``save``.

    The model is written with ``model.save(path)`` when the model has that method (the
    fastmlp model file), else with ``save_checkpoint`` (weights plus optimizer state, an .npz
    read by ``load_checkpoint``). Both write a temporary file in the same directory, fsync it,
    rename it over the previous file and fsync the directory: a crash mid-write never destroys
    the previous checkpoint. ``best`` is the best monitored value, ``saved`` the epochs saved.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 mode="auto", save_weights_only=False, initial_value_threshold=None):
        self.filepath = os.fspath(filepath)
        self.monitor = str(monitor)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.mode = _check_mode(mode)
        self.save_weights_only = bool(save_weights_only)
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)
        self.saved = []
        self._direction = None

    def on_train_begin(self, logs=None):
        self._direction = _resolve_mode(self.mode, self.monitor, self.model)
        if self.best is None:  # kept across fit calls, as Keras
            self.best = math.inf if self._direction == "min" else -math.inf

    def _path(self, epoch, logs):
        if "{" not in self.filepath:
            return self.filepath
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as exc:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} names {exc}, which is "
                             f"not in the logs (available: epoch, {', '.join(logs)})") from None

    def _save(self, path):
        save = getattr(self.model, "save", None)
        if callable(save) and not self.save_weights_only:
            save(path)
        else:
            save_checkpoint(self.model, path, include_optimizer=not self.save_weights_only)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            improved = (current < self.best if self._direction == "min" else current > self.best)
            if not (math.isfinite(current) and improved):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.6g} to "
                      f"{current:.6g}, saving the model", file=sys.stdout)
            self.best = current
        elif not math.isfinite(logs.get("loss", 0.0)):
            return  # never overwrite a checkpoint with the state of a diverged epoch
        path = self._path(epoch, logs)
        self._save(path)
        self.saved.append(epoch)
