"""Callbacks: hook order, EarlyStopping, ReduceLROnPlateau, ModelCheckpoint (atomic writes),
TerminateOnNaN, CSVLogger, progress output; exact epochs, exact values."""
import csv
import math
import os

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _atomic
from fastmlp import callbacks as C


def make_data(n=60, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def make_model(seed=0, optimizer=None):
    m = fm.Sequential([fm.Dense(8, "tanh"), fm.Dense(3)], input_dim=5, dtype="float64", seed=seed)
    return m.compile("softmax_cross_entropy", optimizer or fm.SGD(lr=0.05, momentum=0.9))


def scripted(key, values):
    """A callback that writes values[epoch] into the logs under `key` (placed before the
    callback under test, which then sees it), to drive monitors with exact sequences."""
    return fm.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__(key, values[epoch]))


def snapshots():
    """A LambdaCallback that copies the weights at the end of every epoch."""
    taken = {}
    cb = fm.LambdaCallback(on_epoch_end=lambda epoch, logs: taken.__setitem__(
        epoch, cb.model.get_weights()))
    return cb, taken


def same(ws1, ws2):
    return all(np.array_equal(a, b) for a, b in zip(ws1, ws2))


# ---- hooks ----
def test_lambda_callback_order_of_calls():
    X, y = make_data()
    events = []

    def tracer(tag):
        return fm.LambdaCallback(
            on_train_begin=lambda logs: events.append((tag, "train_begin")),
            on_epoch_begin=lambda epoch, logs: events.append((tag, "epoch_begin", epoch)),
            on_epoch_end=lambda epoch, logs: events.append((tag, "epoch_end", epoch, list(logs))),
            on_train_end=lambda logs: events.append((tag, "train_end")))

    model = make_model()
    model.fit(X, y, epochs=2, validation_data=(X, y), callbacks=[tracer("a"), tracer("b")])
    keys = ["loss", "val_loss", "lr", "time"]
    assert events == [
        ("a", "train_begin"), ("b", "train_begin"),
        ("a", "epoch_begin", 0), ("b", "epoch_begin", 0),
        ("a", "epoch_end", 0, keys), ("b", "epoch_end", 0, keys),
        ("a", "epoch_begin", 1), ("b", "epoch_begin", 1),
        ("a", "epoch_end", 1, keys), ("b", "epoch_end", 1, keys),
        ("a", "train_end"), ("b", "train_end")]
    events.clear()
    model.fit(X, y, epochs=1, callbacks=[tracer("c")])  # epochs keep counting across fit calls
    assert events[1] == ("c", "epoch_begin", 2)


def test_any_hook_can_stop_training():
    X, y = make_data()
    model = make_model()

    def stop(*args):
        model.stop_training = True

    h = model.fit(X, y, epochs=5, callbacks=[fm.LambdaCallback(on_epoch_end=lambda e, logs: (
        stop() if e == 1 else None))])
    assert h.epoch == [0, 1] and h.stopped_by == "LambdaCallback"
    h = model.fit(X, y, epochs=5, callbacks=[fm.LambdaCallback(on_train_begin=stop)])
    assert h.epoch == [] and model._epochs_done == 2
    h = model.fit(X, y, epochs=5, callbacks=[fm.LambdaCallback(on_epoch_begin=lambda e, logs: stop())])
    assert h.epoch == []
    h = model.fit(X, y, epochs=3)
    assert h.epoch == [2, 3, 4] and h.stopped_by is None  # the flag is reset by each fit
    with pytest.raises(TypeError, match="LambdaCallback"):
        model.fit(X, y, callbacks=[lambda epoch, logs: None])


# ---- EarlyStopping ----
def run_early_stopping(values, epochs=None, **kwargs):
    X, y = make_data(n=20)
    model = make_model()
    es = fm.EarlyStopping(monitor="score", **kwargs)
    h = model.fit(X, y, epochs=epochs or len(values), callbacks=[scripted("score", values), es])
    return h, es


@pytest.mark.parametrize("values, kwargs, stop", [
    # best at epoch 2, patience 2: stops at the end of epoch 2 + 2
    ([5, 4, 3, 3.5, 3.2, 1, 1], {"patience": 2}, 4),
    ([5, 4, 3, 3.5, 3.2, 1, 1], {"patience": 3}, None),
    # patience 0: the first epoch without improvement (never epoch 0)
    ([1, 2, 3, 4], {"patience": 0}, 1),
    # min_delta: 0.95 does not beat 1.0 by more than 0.1
    ([1.0, 0.95, 0.9, 0.85], {"patience": 1, "min_delta": 0.1}, 1),
    ([1.0, 0.95, 0.9, 0.85], {"patience": 1, "min_delta": 0.01}, None),
    # an equal value is no improvement
    ([1.0, 1.0, 1.0], {"patience": 1}, 1),
    # mode max / min on the same sequence
    ([0.1, 0.2, 0.15, 0.3], {"patience": 1, "mode": "max"}, 2),
    ([0.1, 0.2, 0.15, 0.3], {"patience": 1, "mode": "min"}, 1),
    # start_from_epoch: epochs before it are not monitored
    ([1, 2, 3, 4, 5], {"patience": 0, "start_from_epoch": 2}, 3),
    # baseline: improvements that do not beat it do not reset the count (Keras)
    ([0.9, 0.8, 0.7, 0.75], {"patience": 2, "baseline": 0.5}, 3),
    ([0.9, 0.8, 0.7, 0.75], {"patience": 2}, None),
])
def test_early_stopping_stop_epoch(values, kwargs, stop):
    h, es = run_early_stopping(values, **kwargs)
    if stop is None:
        assert h.epoch == list(range(len(values))) and es.stopped_epoch == 0
        assert h.stopped_by is None
    else:
        assert h.epoch == list(range(stop + 1)) and es.stopped_epoch == stop
        assert h.stopped_by == "EarlyStopping"


def test_early_stopping_restores_best_weights():
    X, y = make_data()
    model = make_model()
    snap, taken = snapshots()
    es = fm.EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    h = model.fit(X, y, epochs=10, callbacks=[scripted("score", [5, 4, 3, 3.5, 3.2, 0, 0, 0, 0, 0]),
                                              snap, es])
    assert h.epoch == [0, 1, 2, 3, 4] and es.best_epoch == 2 and es.best == 3
    assert same(model.get_weights(), taken[2])
    assert not same(model.get_weights(), taken[4])


def test_early_stopping_restores_best_on_real_validation_loss():
    X, y = make_data(n=80)
    Xv, yv = make_data(n=40, seed=1)   # unrelated labels: the validation loss soon rises
    model = make_model(optimizer=fm.SGD(lr=0.3, momentum=0.9))
    snap, taken = snapshots()
    es = fm.EarlyStopping(patience=3, restore_best_weights=True)
    h = model.fit(X, y, epochs=40, batch_size=8, validation_data=(Xv, yv), callbacks=[snap, es])
    val = h["val_loss"]
    best = int(np.argmin(val))
    assert es.best_epoch == best and h.epoch[-1] == best + 3 < 39
    assert same(model.get_weights(), taken[best])
    assert model.evaluate(Xv, yv) == val[best]


def test_early_stopping_without_the_monitored_key_says_so():
    X, y = make_data()
    with pytest.raises(ValueError, match="val_loss.*validation_data"):
        make_model().fit(X, y, epochs=2, callbacks=[fm.EarlyStopping()])
    with pytest.raises(ValueError, match="mode"):
        fm.EarlyStopping(mode="up")


# ---- ReduceLROnPlateau ----
def run_plateau(values, lr=0.1, **kwargs):
    X, y = make_data(n=20)
    model = make_model(optimizer=fm.SGD(lr=lr))
    cb = fm.ReduceLROnPlateau(monitor="score", **kwargs)
    h = model.fit(X, y, epochs=len(values), callbacks=[scripted("score", values), cb])
    return h["lr"], cb


def test_reduce_lr_exactly_after_patience():
    # best at epoch 1; epochs 2, 3, 4 do not improve: patience 3 -> reduce at the end of epoch 4
    lrs, cb = run_plateau([5, 4, 4, 4.5, 4, 4, 4, 3, 3], factor=0.5, patience=3, min_delta=0)
    assert lrs == [0.1] * 5 + [0.05] * 4
    assert cb.reductions == [(4, 0.05)]
    # min_delta: 3.95 is not below 4 - 0.1, so it does not count as an improvement
    lrs, _ = run_plateau([4, 3.95, 3.95, 3.5], factor=0.5, patience=2, min_delta=0.1)
    assert lrs == [0.1, 0.1, 0.1, 0.05]
    # mode max
    lrs, _ = run_plateau([0.5, 0.6, 0.6, 0.7, 0.7], factor=0.1, patience=1, mode="max", min_delta=0)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01], rel=1e-15)


def test_reduce_lr_cooldown_and_min_lr():
    flat = [1.0] * 12
    # patience 2, cooldown 1: reduce at epochs 2, 5, 8 (the epoch after each is not counted),
    # then 0.0125 would go below min_lr: 0.02, then nothing more
    lrs, cb = run_plateau(flat, factor=0.5, patience=2, cooldown=1, min_lr=0.02)
    assert lrs == [0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.02] * 3
    assert [e for e, _ in cb.reductions] == [2, 5, 8]
    # without cooldown: every 2 epochs
    lrs, _ = run_plateau(flat[:7], factor=0.5, patience=2)
    assert lrs == [0.1] * 3 + [0.05] * 2 + [0.025] * 2
    # cooldown 2
    lrs, _ = run_plateau(flat[:9], factor=0.5, patience=1, cooldown=2)
    assert lrs == [0.1] * 2 + [0.05] * 3 + [0.025] * 3 + [0.0125]
    with pytest.raises(ValueError, match="factor"):
        fm.ReduceLROnPlateau(factor=1.0)


def test_reduce_lr_as_lr_schedule_on_real_loss():
    X, y = make_data()
    model = make_model()
    h = model.fit(X, y, epochs=4, validation_data=(X, y),
                  lr_schedule=fm.ReduceLROnPlateau(patience=1, factor=0.5, min_delta=10.0))
    assert h["lr"] == [0.05, 0.05, 0.025, 0.0125]   # min_delta 10: no epoch ever improves


# ---- ModelCheckpoint ----
def tmp_files(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".tmp"))


def test_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    X, y = make_data()
    model = make_model()
    snap, taken = snapshots()
    path = tmp_path / "best.npz"
    ck = fm.ModelCheckpoint(path, monitor="score", save_best_only=True, save_weights_only=True)
    model.fit(X, y, epochs=6, callbacks=[scripted("score", [3, 2, 2.5, 1, 1.5, 1]), snap, ck])
    assert ck.saved == [0, 1, 3] and ck.best == 1
    fresh = make_model(seed=9)
    C.load_checkpoint(path, fresh)
    assert same(fresh.get_weights(), taken[3])
    # one file per saved epoch with a template (epoch is 1-based, as Keras)
    model = make_model()
    ck = fm.ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}-{score:.1f}.npz"), monitor="score",
                            mode="max", save_best_only=True, save_weights_only=True)
    model.fit(X, y, epochs=4, callbacks=[scripted("score", [1, 3, 2, 4]), ck])
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "ck-01-1.0.npz", "ck-02-3.0.npz",
                                            "ck-04-4.0.npz"]
    assert tmp_files(tmp_path) == []


def test_checkpoint_every_epoch_and_exact_resume(tmp_path):
    X, y = make_data()
    model = make_model(optimizer=fm.Adam(lr=0.01))
    path = tmp_path / "ck.npz"
    model.fit(X, y, epochs=2, callbacks=[fm.callbacks.ModelCheckpoint(path, save_weights_only=True)])
    C.save_checkpoint(model, path)                 # weights and Adam's state
    model.fit(X, y, epochs=1)
    resumed = make_model(seed=0, optimizer=fm.Adam(lr=0.01))  # same seed: same shuffles
    assert not same(resumed.get_weights(), model.get_weights())
    meta = C.load_checkpoint(path, resumed)
    assert meta["epochs_done"] == 2 and resumed.optimizer.iterations == 2 * 2  # 2 batches/epoch
    resumed.fit(X, y, epochs=1)
    assert same(resumed.get_weights(), model.get_weights())


def test_checkpoint_uses_model_save_when_available(tmp_path):
    X, y = make_data()
    model = make_model()
    calls = []
    model.save = lambda path: calls.append(path)
    model.fit(X, y, epochs=2, callbacks=[fm.ModelCheckpoint(tmp_path / "m.fmlp")])
    assert calls == [str(tmp_path / "m.fmlp")] * 2
    model.fit(X, y, epochs=1, callbacks=[fm.ModelCheckpoint(tmp_path / "w.npz",
                                                            save_weights_only=True)])
    assert len(calls) == 2 and (tmp_path / "w.npz").exists()


def test_checkpoint_with_the_model_file_format(tmp_path):
    X, y = make_data()
    model = make_model()
    path = tmp_path / "model.fmlp"
    model.fit(X, y, epochs=2, callbacks=[fm.ModelCheckpoint(path)])
    loaded = fm.load(path)
    assert same(loaded.get_weights(), model.get_weights())


def interrupted_writer(monkeypatch):
    """Make the checkpoint writer write part of the archive, then fail (as a full disk would)."""
    def partial(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(C, "_write_npz", partial)


def failing_replace(monkeypatch):
    def replace(src, dst):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(_atomic.os, "replace", replace)


@pytest.mark.parametrize("break_it", [interrupted_writer, failing_replace])
def test_interrupted_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, break_it):
    X, y = make_data()
    model = make_model()
    path = tmp_path / "ck.npz"
    model.fit(X, y, epochs=1, callbacks=[fm.ModelCheckpoint(path, save_weights_only=True)])
    good = model.get_weights()
    before = path.read_bytes()
    break_it(monkeypatch)
    with pytest.raises(OSError):
        model.fit(X, y, epochs=1, callbacks=[fm.ModelCheckpoint(path, save_weights_only=True)])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert tmp_files(tmp_path) == [] and os.listdir(tmp_path) == ["ck.npz"]
    fresh = make_model(seed=3)
    C.load_checkpoint(path, fresh)
    assert same(fresh.get_weights(), good)


def test_interrupted_model_file_keeps_the_previous_one(tmp_path, monkeypatch):
    X, y = make_data()
    model = make_model()
    path = tmp_path / "m.fmlp"
    model.fit(X, y, epochs=1, callbacks=[fm.ModelCheckpoint(path)])
    before = path.read_bytes()
    failing_replace(monkeypatch)
    with pytest.raises(OSError):
        model.fit(X, y, epochs=1, callbacks=[fm.ModelCheckpoint(path)])
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.fmlp"]


def test_atomic_write(tmp_path):
    path = tmp_path / "f.bin"
    _atomic.atomic_write(path, lambda f: f.write(b"first"))
    assert path.read_bytes() == b"first"
    mask = os.umask(0o022)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~mask

    def boom(f):
        f.write(b"sec")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _atomic.atomic_write(path, boom)
    assert path.read_bytes() == b"first" and os.listdir(tmp_path) == ["f.bin"]


# ---- TerminateOnNaN ----
@pytest.mark.parametrize("use_engine", [True, False])
def test_terminate_on_nan_stops_with_finite_weights(tmp_path, use_engine):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(97, 5)) * 1e3, rng.integers(0, 3, 97)
    model = fm.Sequential([fm.Dense(8, "tanh"), fm.Dense(3)], input_dim=5, dtype="float64", seed=0)
    model.compile("mse", fm.SGD(lr=1e6), metrics=["mae"])
    model._use_engine = use_engine
    t = np.eye(3)[y] * 1e3
    with pytest.raises(FloatingPointError, match="learning rate"):
        model.fit(X, t, epochs=50)                      # the default: a clear error
    nan = fm.TerminateOnNaN()
    ck = fm.ModelCheckpoint(tmp_path / "ck.npz", save_weights_only=True)
    h = model.fit(X, t, epochs=50, validation_data=(X, t), callbacks=[nan, ck])
    last = h.epoch[-1]
    assert len(h.epoch) < 50 and nan.stopped_epoch == last and h.stopped_by == "TerminateOnNaN"
    assert math.isnan(h["loss"][-1]) and math.isnan(h["val_loss"][-1]) and math.isnan(h["mae"][-1])
    assert all(math.isfinite(v) for v in h["loss"][:-1])
    assert len(h["lr"]) == len(h["val_loss"]) == len(h.epoch)
    assert np.all(np.isfinite(model.flat_params))
    assert last not in ck.saved                         # a diverged epoch is never saved


# ---- CSVLogger and progress output ----
def test_csv_logger_round_trips_the_history(tmp_path):
    X, y = make_data()
    model = make_model()
    model.compile("softmax_cross_entropy", fm.SGD(lr=0.05), metrics=["accuracy"])
    path = tmp_path / "log.csv"
    h = model.fit(X, y, epochs=3, validation_data=(X[:20], y[:20]),
                  callbacks=[fm.CSVLogger(path)], lr_schedule=fm.schedules.ExponentialLR(0.7))

    def read(p, sep=","):
        with open(p, newline="") as f:
            rows = list(csv.reader(f, delimiter=sep))
        return rows[0], [[float(v) for v in row] for row in rows[1:]]

    header, rows = read(path)
    assert header == ["epoch"] + list(h.history)
    assert [int(r[0]) for r in rows] == h.epoch
    for j, key in enumerate(header[1:], start=1):
        assert [r[j] for r in rows] == h[key]          # exact: floats written as repr
    h2 = model.fit(X, y, epochs=2, callbacks=[fm.CSVLogger(path, append=True)],
                   validation_data=(X[:20], y[:20]))
    header2, rows2 = read(path)
    assert header2 == header and [int(r[0]) for r in rows2] == [0, 1, 2, 3, 4]
    assert [r[1] for r in rows2[3:]] == h2["loss"]
    model.fit(X, y, epochs=1, callbacks=[fm.CSVLogger(path, separator=";")])   # overwrites
    header3, rows3 = read(path, ";")
    assert header3 == ["epoch", "loss", "accuracy", "lr", "time"] and len(rows3) == 1


def test_verbose_output(capsys):
    X, y = make_data()
    model = make_model()
    model.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(X, y, epochs=2, verbose=2, validation_data=(X, y))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 3/4: loss: ") and " - val_loss: " in lines[0]
    assert " - lr: 0.05 - " in lines[0] and lines[0].endswith("s")
    try:
        import tqdm  # noqa: F401
    except ImportError:  # without tqdm, verbose=1 prints the same lines
        model.fit(X, y, epochs=1, verbose=1)
        assert capsys.readouterr().out.startswith("Epoch 5/5: loss: ")
        with pytest.raises(ImportError, match="tqdm"):
            model.fit(X, y, epochs=1, callbacks=[fm.ProgressBar(use_tqdm=True)])


def test_progress_bar_uses_tqdm_when_installed(monkeypatch):
    import sys
    import types
    bars = []

    class FakeTqdm:
        def __init__(self, total=None, unit=None, file=None, leave=None):
            self.total, self.unit, self.n, self.postfix, self.closed = total, unit, 0, None, False
            bars.append(self)

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    package, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm
    package.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    X, y = make_data()
    make_model().fit(X, y, epochs=3, verbose=1)
    (bar,) = bars
    assert (bar.total, bar.unit, bar.n, bar.closed) == (3, "epoch", 3, True)
    assert bar.postfix.startswith("loss: ") and " - lr: 0.05 - " in bar.postfix
    make_model().fit(X, y, epochs=1, verbose=2)   # verbose=2: plain lines, no bar
    assert len(bars) == 1
