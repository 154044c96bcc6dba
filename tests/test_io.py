"""Saving and loading: fastmlp's file format (fastmlp.io) and pickle, for models and estimators."""
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import fastmlp as fm
from fastmlp.io import FORMAT_VERSION, ModelFileError

DATA = os.path.join(os.path.dirname(__file__), "data")

OPTIMIZERS = [
    fm.SGD(lr=0.05, momentum=0.9, nesterov=True), fm.Adagrad(lr=0.05), fm.Adadelta(),
    fm.RMSprop(lr=0.01, momentum=0.5, centered=True), fm.Adam(lr=0.01, amsgrad=True),
    fm.AdamW(lr=0.01), fm.Adamax(lr=0.01), fm.NAdam(lr=0.01), fm.Rprop(lr=0.01),
]


def _data(n=96, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    return X, y % k


def _zoo(dtype="float32", optimizer=None, seed=3):
    """A compiled model with every layer type, trained two epochs."""
    model = fm.Sequential(
        [fm.Dense(10, activation="relu", l2=1e-3, max_norm=2.0), fm.Dropout(0.2),
         fm.GaussianNoise(0.1), fm.PReLU(), fm.Maxout(6, pieces=2), fm.Sigmoid(T=2.0),
         fm.ActivityRegularization(l2=1e-3), fm.Activation("leaky_relu", 0.2),
         fm.Dense(3, activation="softmax")],
        input_dim=5, dtype=dtype, seed=seed)
    model.compile("softmax_cross_entropy", optimizer or fm.Adam(lr=0.01))
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=16)
    return model, X, y


def _same_state(a, b):
    sa, sb = a.optimizer.get_state(), b.optimizer.get_state()
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key])


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_every_layer(tmp_path, dtype):
    model, X, y = _zoo(dtype)
    path = tmp_path / "zoo.fmlp"
    assert model.save(path) == path
    loaded = fm.load(path)
    assert repr(loaded) == repr(model)
    assert loaded.dtype == model.dtype and loaded.seed == model.seed
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_raw(X), model.predict_raw(X))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    _same_state(loaded, model)
    assert loaded.evaluate(X, y) == model.evaluate(X, y)


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: type(o).__name__)
def test_resumed_training_is_bitwise_identical(tmp_path, optimizer):
    """Saving mid-training loses nothing: optimizer state, step count, epoch counter (shuffling),
    dropout and noise streams all continue as if the model had never left memory."""
    model, X, y = _zoo("float32", optimizer)
    model.save(tmp_path / "m.fmlp")
    loaded = fm.load(tmp_path / "m.fmlp")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert repr(loaded.optimizer) == repr(model.optimizer)
    model.fit(X, y, epochs=2, batch_size=16)
    loaded.fit(X, y, epochs=2, batch_size=16)
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    _same_state(loaded, model)


def test_optimizer_clipping_and_learning_rate_survive(tmp_path):
    opt = fm.SGD(lr=0.1, momentum=0.9).clip(clipnorm=0.5, clipvalue=0.1)
    model, X, y = _zoo(optimizer=opt)
    model.optimizer.lr = 0.0123  # as a schedule would leave it
    model.save(tmp_path / "m.fmlp")
    loaded = fm.load(tmp_path / "m.fmlp")
    assert loaded.optimizer.clipnorm == 0.5 and loaded.optimizer.clipvalue == 0.1
    assert loaded.optimizer.lr == 0.0123
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_compiled_metrics_are_kept(tmp_path):
    model = fm.Sequential([fm.Dense(3)], input_dim=2, seed=0)
    model.compile("softmax_cross_entropy", metrics=["accuracy", "top_2_accuracy", "mse"])
    model.save(tmp_path / "m.fmlp")
    assert [m.name for m in fm.load(tmp_path / "m.fmlp").metrics] == [
        "accuracy", "top_2_accuracy", "mse"]
    model.compile("binary_cross_entropy", metrics=[fm.metrics.Accuracy(threshold=0.3),
                                                   lambda t, p: 0.0])
    with pytest.warns(UserWarning, match="not saved"):
        model.save(tmp_path / "m.fmlp")
    (metric,) = fm.load(tmp_path / "m.fmlp").metrics
    assert metric.name == "accuracy" and metric.threshold == 0.3


def test_uncompiled_and_unbuilt_models(tmp_path):
    built = fm.Sequential([fm.Dense(4, activation="tanh"), fm.Dense(2)], input_dim=3, seed=1)
    built.save(tmp_path / "built.fmlp")
    loaded = fm.load(tmp_path / "built.fmlp")
    assert loaded.loss is None and loaded.optimizer is None
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), built.predict(X))

    unbuilt = fm.Sequential([fm.Dense(4), fm.PReLU(), fm.Dense(1)], seed=5)
    unbuilt.compile("mse", fm.Adam())
    unbuilt.save(tmp_path / "unbuilt.fmlp")
    loaded = fm.load(tmp_path / "unbuilt.fmlp")
    assert not loaded.built and repr(loaded) == repr(unbuilt)
    Xr, yr = X, X.sum(axis=1)
    unbuilt.fit(Xr, yr, epochs=2)
    loaded.fit(Xr, yr, epochs=2)
    np.testing.assert_array_equal(loaded.predict(Xr), unbuilt.predict(Xr))


def test_metadata_and_manifest(tmp_path):
    model, X, _ = _zoo()
    meta = {"classes": ["a", "b", "c"], "note": "héllo", "n": 3, "nested": {"x": [1.5, None]}}
    model.save(tmp_path / "m.fmlp", metadata=meta)
    loaded, got = fm.load(tmp_path / "m.fmlp", return_metadata=True)
    assert got == meta
    manifest = fm.io.read_manifest(tmp_path / "m.fmlp")
    assert manifest["format"] == "fastmlp" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["object"] == "fastmlp.Sequential"
    layers = manifest["root"]["__sequential__"]["layers"]
    assert [entry["type"] for entry in layers] == [
        "Dense", "Dropout", "GaussianNoise", "PReLU", "Maxout", "Activation",
        "ActivityRegularization", "Activation", "Dense"]
    with zipfile.ZipFile(tmp_path / "m.fmlp") as zf:
        names = zf.namelist()
        assert names[0] == "fastmlp.json"
        assert all(n.startswith("arrays/") and n.endswith(".npy") for n in names[1:])
    with pytest.raises(TypeError, match="JSON"):
        model.save(tmp_path / "bad.fmlp", metadata={"x": object()})
    with pytest.raises(TypeError, match="dict"):
        model.save(tmp_path / "bad.fmlp", metadata=[1, 2])


def test_same_model_gives_same_bytes(tmp_path):
    model, _, _ = _zoo()
    model.save(tmp_path / "a.fmlp")
    model.save(tmp_path / "b.fmlp")
    assert (tmp_path / "a.fmlp").read_bytes() == (tmp_path / "b.fmlp").read_bytes()


# ---------------------------------------------------------------- old files keep loading
def test_version_1_fixtures_still_load():
    """tests/data holds files written by format version 1 (tests/data/make_fixtures.py). A change
    that stops them loading, or changes what they predict, breaks users' saved models."""
    expected = np.load(os.path.join(DATA, "fixtures_v1_expected.npz"))
    X = expected["X"]
    model, meta = fm.load(os.path.join(DATA, "model_v1.fmlp"), return_metadata=True)
    assert meta == {"purpose": "format v1 fixture"}
    assert fm.io.read_manifest(os.path.join(DATA, "model_v1.fmlp"))["format_version"] == 1
    assert isinstance(model, fm.Sequential) and model.dtype == np.float32
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "Dropout", "GaussianNoise", "PReLU", "Maxout", "Activation",
        "ActivityRegularization", "Activation", "Dense"]
    assert model.layers[0].max_norm == 3.0 and model.layers[4].pieces == 3
    assert isinstance(model.optimizer, fm.Adam) and model.optimizer.iterations == 8
    np.testing.assert_allclose(model.predict(X), expected["model_predict"], rtol=1e-5, atol=1e-6)
    model.fit(X, np.argmax(expected["model_predict"], axis=1), epochs=1)  # still trainable

    pytest.importorskip("sklearn")
    clf = fm.load(os.path.join(DATA, "mlpclassifier_v1.fmlp"))
    assert type(clf).__name__ == "MLPClassifier" and clf.dropout == 0.1
    assert list(clf.classes_) == ["high", "low", "mid"]
    np.testing.assert_allclose(clf.predict_proba(X), expected["clf_proba"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), expected["clf_predict"])


# ---------------------------------------------------------------- estimators
def test_estimator_parameters_with_optimizers_and_int_keyed_dicts(tmp_path):
    sk = pytest.importorskip("fastmlp.sklearn")
    X, y = _data(k=2)
    clf = sk.MLPClassifier(hidden_layer_sizes=(4,), solver=fm.SGD(lr=0.1, momentum=0.5),
                           class_weight={0: 1.0, 1: 2.5}, max_iter=3, random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    fm.save(clf, tmp_path / "clf.fmlp")
    loaded = fm.load(tmp_path / "clf.fmlp")
    assert loaded.class_weight == {0: 1.0, 1: 2.5}
    assert isinstance(loaded.solver, fm.SGD) and loaded.solver.momentum == 0.5
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_linear_models_save_and_pickle(tmp_path):
    X, y = _data(k=2)
    for est in (fm.Perceptron(seed=0, max_epochs=5), fm.Adaline(seed=0, epochs=3),
                fm.LogisticRegression(seed=0, epochs=20)):
        est.fit(X, np.where(y == 1, "yes", "no"))
        fm.save(est, tmp_path / "lin.fmlp")
        loaded = fm.load(tmp_path / "lin.fmlp")
        assert type(loaded) is type(est)
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
        np.testing.assert_array_equal(loaded.decision_function(X), est.decision_function(X))
        assert list(loaded.classes_) == ["no", "yes"]
        unpickled = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(unpickled.predict(X), est.predict(X))


# ---------------------------------------------------------------- pickle
def test_pickle_compiled_trained_model():
    model, X, y = _zoo()
    blob = pickle.dumps(model)
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    _same_state(clone, model)
    # parameters are views of the clone's own flat vector again
    for layer in clone.layers:
        for p in layer.params:
            assert np.shares_memory(p, clone.flat_params)
    assert not np.shares_memory(clone.flat_params, model.flat_params)
    # the parameters are stored once (not once more per layer), gradients not at all
    assert len(blob) < model.flat_params.nbytes * 3 + 20000
    model.fit(X, y, epochs=2, batch_size=16)
    clone.fit(X, y, epochs=2, batch_size=16)
    np.testing.assert_array_equal(clone.flat_params, model.flat_params)


def test_pickle_unbuilt_and_deepcopy():
    import copy

    model = fm.Sequential([fm.Dense(3), fm.Dense(1)], seed=0)
    clone = pickle.loads(pickle.dumps(model))
    assert not clone.built
    built, X, _ = _zoo()
    twin = copy.deepcopy(built)
    np.testing.assert_array_equal(twin.predict(X), built.predict(X))
    twin.flat_params[...] = 0
    assert np.any(built.flat_params != 0)


# ---------------------------------------------------------------- atomic writes
def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    model, X, _ = _zoo()
    path = tmp_path / "m.fmlp"
    model.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.fmlp"]  # no temporary file left behind


# ---------------------------------------------------------------- bad files
def test_truncated_files_raise_clear_errors(tmp_path):
    model, X, _ = _zoo()
    good = tmp_path / "good.fmlp"
    model.save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.fmlp"
    for size in sorted(set([0, 1, 2, 3, 4, 10, 30, 100, len(data) // 2, len(data) - 22,
                            len(data) - 1] + list(range(0, len(data), 487)))):
        cut.write_bytes(data[:size])
        with pytest.raises(ModelFileError) as info:
            fm.load(cut)
        assert "cut.fmlp" in str(info.value)


def test_corrupted_bytes_never_load_silently_wrong(tmp_path):
    """Flipping any byte either raises ModelFileError or (for bytes zip ignores, such as
    timestamps) loads the very same model: never a different model, never another error."""
    model, X, _ = _zoo()
    good = tmp_path / "good.fmlp"
    model.save(good)
    data = bytearray(good.read_bytes())
    expected = model.predict(X)
    bad = tmp_path / "bad.fmlp"
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(0, len(data), 150).tolist()) | {0, 5, 30, len(data) - 5})
    errors = 0
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            loaded = fm.load(bad)
        except ModelFileError:
            errors += 1
            continue
        np.testing.assert_array_equal(loaded.predict(X), expected)
    assert errors > len(positions) // 2


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"hello world, not a model\n", "not a fastmlp model file"),
    (pickle.dumps({"a": 1}), "pickle"),
    (b'{"format": "fastmlp"}', "JSON"),
    (b"\x93NUMPY\x01\x00", ".npy"),
    (bytes(range(256)) * 4, "not a fastmlp model file"),
])
def test_foreign_files(tmp_path, content, match):
    path = tmp_path / "foreign.fmlp"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        fm.load(path)


def test_missing_directories_npz_and_zip_without_manifest(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        fm.load(tmp_path / "nope.fmlp")
    with pytest.raises(ModelFileError, match="directory"):
        fm.load(tmp_path)
    np.savez(tmp_path / "arrays.npz", a=np.arange(3))
    with pytest.raises(ModelFileError, match="npz"):
        fm.load(tmp_path / "arrays.npz")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ModelFileError, match="without fastmlp.json"):
        fm.load(tmp_path / "other.zip")


def _rewrite(src, dst, edit_manifest=None, drop=None, replace=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            raw = zin.read(info.filename)
            if info.filename == drop:
                continue
            if info.filename == "fastmlp.json" and edit_manifest:
                manifest = json.loads(raw)
                edit_manifest(manifest)
                raw = json.dumps(manifest).encode()
            if replace and info.filename in replace:
                raw = replace[info.filename]
            zout.writestr(info.filename, raw)


def test_manifest_problems_are_explained(tmp_path):
    model, X, _ = _zoo()
    good = tmp_path / "good.fmlp"
    model.save(good)
    bad = tmp_path / "bad.fmlp"

    def newer(m):
        m["format_version"] = FORMAT_VERSION + 1
    _rewrite(good, bad, newer)
    with pytest.raises(ModelFileError, match="Upgrade fastmlp"):
        fm.load(bad)

    def unknown_layer(m):
        m["root"]["__sequential__"]["layers"][1]["type"] = "Attention"
    _rewrite(good, bad, unknown_layer)
    with pytest.raises(ModelFileError, match="unknown type 'Attention'"):
        fm.load(bad)

    def bad_config(m):
        m["root"]["__sequential__"]["layers"][0]["config"]["units"] = -3
    _rewrite(good, bad, bad_config)
    with pytest.raises(ModelFileError, match="invalid or corrupted"):
        fm.load(bad)

    def wrong_shape(m):
        m["arrays"]["model.layers.0.weight"]["shape"] = [5, 11]
    _rewrite(good, bad, wrong_shape)
    with pytest.raises(ModelFileError, match="corrupted"):
        fm.load(bad)

    _rewrite(good, bad, drop="arrays/model.layers.3.slope.npy")
    with pytest.raises(ModelFileError, match="missing"):
        fm.load(bad)

    import io as stdio
    buf = stdio.BytesIO()
    np.save(buf, np.zeros((5, 10), np.float64))  # right shape, wrong dtype
    _rewrite(good, bad, replace={"arrays/model.layers.0.weight.npy": buf.getvalue()})
    with pytest.raises(ModelFileError, match="float64"):
        fm.load(bad)

    def no_format(m):
        del m["format"]
    _rewrite(good, bad, no_format)
    with pytest.raises(ModelFileError, match="not a fastmlp model file"):
        fm.load(bad)

    _rewrite(good, bad, replace={"fastmlp.json": b"{not json"})
    with pytest.raises(ModelFileError, match="invalid JSON"):
        fm.load(bad)


def test_loading_never_runs_code(tmp_path):
    """Only fastmlp's own classes can be named in a file; pickled arrays are refused."""
    model, _, _ = _zoo()
    good = tmp_path / "good.fmlp"
    model.save(good)
    bad = tmp_path / "bad.fmlp"

    def evil(m):
        m["root"] = {"__object__": "os.system", "state": {"cmd": "echo pwned"}}
    _rewrite(good, bad, evil)
    with pytest.raises(ModelFileError, match="unknown object type 'os.system'"):
        fm.load(bad)

    import io as stdio
    buf = stdio.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    def object_array(m):
        m["arrays"]["model.layers.3.slope"] = {"dtype": "|O", "shape": [1]}
    _rewrite(good, bad, object_array, replace={"arrays/model.layers.3.slope.npy": buf.getvalue()})
    with pytest.raises(ModelFileError, match="dtype"):
        fm.load(bad)


# ---------------------------------------------------------------- what cannot be saved
class _Square(fm.Layer):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def output_dim_for(self, input_dim):
        return input_dim

    def infer(self, x):
        return self.scale * np.asarray(x) ** 2

    def forward(self, x, training=False):
        self._x = np.asarray(x, dtype=self.dtype)
        return self.infer(self._x)

    def backward(self, grad_out):
        return 2 * self.scale * self._x * grad_out

    def get_config(self):
        return {"scale": self.scale}


def test_custom_layers_need_registering(tmp_path):
    model = fm.Sequential([fm.Dense(3), _Square(0.5), fm.Dense(1)], input_dim=2, seed=0)
    with pytest.raises(TypeError, match="register_layer"):
        model.save(tmp_path / "m.fmlp")
    fm.io.register_layer(_Square)
    try:
        model.save(tmp_path / "m.fmlp")
        loaded = fm.load(tmp_path / "m.fmlp")
        X = np.ones((2, 2), np.float32)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    finally:
        fm.io._USER_LAYERS.clear()
    with pytest.raises(ModelFileError, match="unknown type '_Square'"):
        fm.load(tmp_path / "m.fmlp")


def test_custom_loss_and_other_objects_are_refused(tmp_path):
    class MyLoss(fm.MSE):
        pass

    model = fm.Sequential([fm.Dense(1)], input_dim=2, seed=0)
    model.compile(MyLoss())
    with pytest.raises(TypeError, match="custom loss"):
        model.save(tmp_path / "m.fmlp")
    with pytest.raises(TypeError, match="Cannot save"):
        fm.save(object(), tmp_path / "o.fmlp")
    assert not os.path.exists(tmp_path / "m.fmlp") and not os.path.exists(tmp_path / "o.fmlp")
