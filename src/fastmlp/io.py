"""Saving and loading models: a documented, versioned file format that runs no code on load.

``fastmlp.save(obj, path)`` (or ``model.save(path)``) writes, and ``fastmlp.load(path)`` reads,
a Sequential model, a fastmlp.linear model (Perceptron, Adaline, LogisticRegression) or a
scikit-learn front end from fastmlp.sklearn. Pickle works too; this format is the one to keep
models in: it never unpickles, so loading a file from someone else cannot run their code.

File format, version 1 (extension ``.fmlp`` by convention)
----------------------------------------------------------
A ZIP archive (members stored uncompressed, each with its CRC-32) holding:

``fastmlp.json``
    The manifest, UTF-8 JSON, always the first member::

        {"format": "fastmlp",               # identifies the file
         "format_version": 1,               # bumped only when old readers could misread a file
         "fastmlp_version": "0.1.0",        # the writer, for information
         "root": <value>,                   # the saved object, encoded as below
         "metadata": {...},                 # free JSON given by the user (save(..., metadata=))
         "arrays": {"<name>": {"dtype": "<f4", "shape": [64, 10]}, ...}}

``arrays/<name>.npy``
    One NumPy ``.npy`` file per array named in ``"arrays"``, written and read with
    ``allow_pickle=False``; dtypes are restricted to booleans, integers, floats and unicode.

Values in ``root`` are JSON, with these tagged objects:

- ``{"__array__": name}``: the array ``arrays/<name>.npy``;
- ``{"__tuple__": [...]}``, ``{"__dict__": {...}}``: a tuple, a dict with string keys;
  ``{"__items__": [[key, value], ...]}``: a dict with other keys (e.g. ``class_weight``);
- ``{"__optimizer__": spec}``: an optimizer, spec as in a Sequential's ``"optimizer"`` below;
- ``{"__sequential__": spec}``: a Sequential model, spec =
  ``{"dtype", "seed", "n_threads", "input_dim", "epochs_done",
  "layers": [{"type": name, "config": {...}, "params": {param_name: array_name}}, ...],
  "loss": name or null, "metrics": [name or {"name": "accuracy", "threshold": t}, ...]
  (optional), "optimizer": null or {"type": name, "config": {...}, "iterations": int, "lr": float,
  "mu_product": float, "state": {slot: array_name}}}``.
  A layer is its type name (``Dense``, ``Activation``, ``PReLU``, ``Dropout``, ``GaussianNoise``,
  ``ActivityRegularization``, ``Maxout``, or a type registered with `register_layer`), the
  keyword arguments that rebuild it (its ``get_config()``; a nested activation is
  ``{"name", "param"}``) and its parameter arrays by name (``weight``, ``bias``, ``slope``);
- ``{"__object__": "fastmlp.sklearn.MLPClassifier", "state": {...}}``: an estimator of an
  allowed fastmlp class (see `_OBJECTS`), rebuilt from its attribute dict without calling
  any method of it.

Reading checks everything before returning anything: the ZIP structure and CRCs, the manifest,
that every array is present with its declared dtype and shape, and that the rebuilt model's
parameter shapes match. Any failure raises `ModelFileError` (a ValueError) that says what is
wrong with which file; nothing is half-loaded. A file with a newer ``format_version`` than this
reader knows is refused with a message to upgrade; every reader accepts all older versions.
"""
import importlib
import inspect
import io as _stdio
import json
import os
import zipfile

import numpy as np

FORMAT_NAME = "fastmlp"
FORMAT_VERSION = 1
MANIFEST = "fastmlp.json"
_MAX_MANIFEST_BYTES = 64 << 20

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_manifest", "register_layer", "save"]


class ModelFileError(ValueError):
    """A file could not be read as a fastmlp model (missing, truncated, corrupted, foreign or
    from a newer version)."""


# ---------------------------------------------------------------- registries
#: estimator classes that may appear in a file, by the name written in it
_OBJECTS = {
    "fastmlp.linear.Perceptron": ("fastmlp.linear", "Perceptron"),
    "fastmlp.linear.Adaline": ("fastmlp.linear", "Adaline"),
    "fastmlp.linear.LogisticRegression": ("fastmlp.linear", "LogisticRegression"),
    "fastmlp.sklearn.MLPClassifier": ("fastmlp.sklearn", "MLPClassifier"),
    "fastmlp.sklearn.MLPRegressor": ("fastmlp.sklearn", "MLPRegressor"),
    "fastmlp.sklearn.Perceptron": ("fastmlp.sklearn", "Perceptron"),
    "fastmlp.sklearn.Adaline": ("fastmlp.sklearn", "Adaline"),
}

_USER_LAYERS = {}


def register_layer(cls, name=None):
    """Allow a custom Layer subclass in saved files. It must rebuild from ``cls(**get_config())``
    with JSON-serialisable configs; its parameters are saved by the names of ``param_shapes``.
    Returns cls, so it can decorate the class."""
    from ._layer import Layer

    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer takes a fastmlp Layer subclass, got {cls!r}")
    _USER_LAYERS[name or cls.__name__] = cls
    return cls


def _layer_types():
    """{type name: class} for every layer a file may name."""
    import fastmlp
    from . import layers as _layers_module
    from ._layer import Layer
    from .activations import Activation

    types = {}
    for module in (fastmlp, _layers_module):
        for name, obj in vars(module).items():
            if (isinstance(obj, type) and issubclass(obj, Layer) and not name.startswith("_")
                    and obj is not Layer and not issubclass(obj, Activation)):
                types[name] = obj
    types["Activation"] = Activation
    types.update(_USER_LAYERS)
    return types


def _layer_type_name(layer):
    from .activations import Activation

    if isinstance(layer, Activation) and type(layer).forward is Activation.forward:
        return "Activation"  # Sigmoid(T=2) etc. are Activation("sigmoid", 2) under another name
    types = _layer_types()
    name = type(layer).__name__
    if types.get(name) is not type(layer):
        raise TypeError(
            f"Cannot save a model with layer {layer!r} of type {type(layer).__qualname__}: only "
            "fastmlp's layers are known to the file format. Register the type with "
            "fastmlp.io.register_layer(cls) (it must rebuild from cls(**layer.get_config())), "
            "or use pickle.")
    return name


# ---------------------------------------------------------------- writing
class _Writer:
    def __init__(self):
        self.arrays = {}

    def add_array(self, name, arr):
        arr = np.asarray(arr)
        if arr.dtype.kind == "O":
            items = arr.ravel().tolist()
            if not all(isinstance(v, str) for v in items):
                raise TypeError(f"Cannot save array {name!r} of Python objects; only numbers, "
                                "booleans and strings can be saved (or use pickle).")
            arr = arr.astype(str)
        if arr.dtype.kind not in "biufU":
            raise TypeError(f"Cannot save array {name!r} of dtype {arr.dtype}.")
        if name in self.arrays:
            raise ValueError(f"duplicate array name {name!r}")
        self.arrays[name] = np.ascontiguousarray(arr)
        return {"__array__": name}

    def encode(self, value, path):
        """JSON for value (arrays are registered under names derived from path)."""
        from .model import Sequential

        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (np.bool_,)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return float(value)
        if isinstance(value, np.ndarray):
            return self.add_array(path, value)
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"__dict__": {k: self.encode(v, f"{path}.{k}") for k, v in value.items()}}
            return {"__items__": [[self.encode(k, f"{path}.key{i}"),
                                   self.encode(v, f"{path}.value{i}")]
                                  for i, (k, v) in enumerate(value.items())]}
        if isinstance(value, Sequential):
            return {"__sequential__": self.sequential(value, path)}
        from .optimizers import Optimizer
        if isinstance(value, Optimizer):  # e.g. an estimator's solver=fm.SGD(...)
            return {"__optimizer__": self.optimizer(value, path)}
        qualname = f"{type(value).__module__}.{type(value).__name__}"
        if qualname in _OBJECTS:
            state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
            if state is None:
                state = vars(value)
            return {"__object__": qualname,
                    "state": {k: self.encode(v, f"{path}.{k}") for k, v in state.items()}}
        raise TypeError(
            f"Cannot save {path} of type {type(value).__qualname__}: the fastmlp format holds "
            "Sequential models, fastmlp estimators, arrays and plain Python values. Use pickle "
            "for other objects.")

    def sequential(self, model, path):
        from .losses import _BY_NAME as _LOSSES

        layers = []
        for i, layer in enumerate(model.layers):
            name = _layer_type_name(layer)
            config = layer.get_config()
            entry = {"type": name, "config": self._json(config, f"{path}.layers.{i} config")}
            params = {}
            if model.built:
                for (pname, _), arr in zip(layer.param_shapes(layer.input_dim), layer.params):
                    params[pname] = self.add_array(f"{path}.layers.{i}.{pname}", arr)["__array__"]
            entry["params"] = params
            layers.append(entry)
        loss = None
        if model.loss is not None:
            loss = model.loss.name
            if _LOSSES.get(loss) is not type(model.loss):
                raise TypeError(f"Cannot save a model compiled with the custom loss "
                                f"{model.loss!r}; use pickle.")
        optimizer = None
        if model.optimizer is not None:
            optimizer = self.optimizer(model.optimizer, f"{path}.optimizer")
        spec = {"dtype": model.dtype.name, "seed": int(model.seed),
                "n_threads": model.n_threads, "input_dim": model.input_dim,
                "epochs_done": int(getattr(model, "_epochs_done", 0)),
                "layers": layers, "loss": loss, "optimizer": optimizer}
        metrics = self.metrics(getattr(model, "metrics", None) or [])
        if metrics:
            spec["metrics"] = metrics
        return spec

    @staticmethod
    def metrics(metrics):
        """The compiled metrics that have names (Python functions are left out, with a warning)."""
        import warnings
        from . import metrics as _metrics

        saved = []
        for metric in metrics:
            if type(metric) is _metrics.Accuracy and metric.threshold is not None:
                saved.append({"name": "accuracy", "threshold": metric.threshold})
            elif type(metric) in (_metrics.Accuracy, _metrics.TopKAccuracy,
                                  _metrics.MeanSquaredError, _metrics.MeanAbsoluteError,
                                  _metrics.R2Score):
                saved.append(metric.name)
            else:
                warnings.warn(f"The metric {metric!r} is not saved (only fastmlp's named metrics "
                              "are); compile the loaded model again to report it.", UserWarning)
        return saved

    def optimizer(self, opt, path):
        from .optimizers import _BY_NAME as _OPTIMIZERS

        name = type(opt).__name__
        if _OPTIMIZERS.get(name.lower()) is not type(opt):
            raise TypeError(f"Cannot save a model with the custom optimizer {opt!r}; use pickle.")
        config = {}
        for pname in list(inspect.signature(type(opt).__init__).parameters)[1:]:
            if not hasattr(opt, pname):
                raise TypeError(f"Cannot save optimizer {opt!r}: no attribute {pname!r}.")
            value = getattr(opt, pname)
            config[pname] = list(value) if isinstance(value, tuple) else value
        for extra in ("clipnorm", "clipvalue"):
            if getattr(opt, extra, None) is not None:
                config.setdefault("_clip", {})[extra] = getattr(opt, extra)
        state = opt.get_state()
        scalars = {k: state.pop(k) for k in ("iterations", "lr", "mu_product") if k in state}
        arrays = {slot: self.add_array(f"{path}.{slot}", arr)["__array__"]
                  for slot, arr in state.items()}
        return {"type": name, "config": self._json(config, path),
                "iterations": int(scalars.get("iterations", 0)),
                "lr": float(scalars.get("lr", opt.lr)),
                "mu_product": float(scalars.get("mu_product", 1.0)), "state": arrays}

    @staticmethod
    def _json(value, what):
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Cannot save {what}: it is not JSON-serialisable ({exc}).") from None
        return value


def save(obj, path, metadata=None):
    """Write a Sequential model or a fastmlp estimator to `path` (format: see this module).

    The file is written to a temporary file in the same directory, flushed to disk and renamed
    over `path`, so `path` always holds either the old or the complete new file. `metadata` is
    any JSON-serialisable dict stored alongside (e.g. class names, the training data's name).
    Returns `path`."""
    from ._atomic import atomic_write
    from . import __version__

    writer = _Writer()
    root = writer.encode(obj, "model")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    manifest = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "fastmlp_version": __version__,
        "object": _object_name(obj), "root": root,
        "metadata": writer._json(metadata or {}, "metadata"),
        "arrays": {name: {"dtype": arr.dtype.str, "shape": list(arr.shape)}
                   for name, arr in writer.arrays.items()},
    }
    blob = json.dumps(manifest, indent=1, allow_nan=True).encode("utf-8")

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(_zipinfo(MANIFEST), blob)
            for name, arr in writer.arrays.items():
                buf = _stdio.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                zf.writestr(_zipinfo(f"arrays/{name}.npy"), buf.getbuffer())

    atomic_write(path, write)
    return path


def _zipinfo(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _object_name(obj):
    from .model import Sequential

    if isinstance(obj, Sequential):
        return "fastmlp.Sequential"
    return f"{type(obj).__module__}.{type(obj).__name__}"


# ---------------------------------------------------------------- reading
def _open(path):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if head[:2] != b"PK":
        what = _sniff(head)
        raise ModelFileError(f"{path}: not a fastmlp model file ({what}). fastmlp model files "
                             "are ZIP archives written by model.save() or fastmlp.save().")
    try:
        return zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path}: the file is truncated or corrupted (not a readable ZIP "
                             f"archive: {exc}). Save the model again.") from None
    except (OSError, EOFError, ValueError) as exc:
        raise ModelFileError(f"{path}: the file is truncated or corrupted ({exc}).") from None


def _sniff(head):
    if not head:
        return "the file is empty"
    if head[:1] == b"\x80":
        return "it looks like a pickle"
    if head[:1] in (b"{", b"["):
        return "it looks like JSON text"
    if head[:4] == b"\x93NUM":
        return "it looks like a NumPy .npy file"
    if head[:4] == b"\x89HDF":
        return "it looks like an HDF5 file"
    if head[:2] == b"\x08\x08" or head[:2] == b"\x08\x07":
        return "it looks like an ONNX model"
    return f"it starts with bytes {head!r}"


def _read_manifest(zf, path):
    try:
        names = zf.namelist()
        if MANIFEST not in names:
            hint = (" It looks like a NumPy .npz archive." if any(n.endswith(".npy") for n in names)
                    else "")
            raise ModelFileError(f"{path}: not a fastmlp model file (a ZIP archive without "
                                 f"{MANIFEST}).{hint}")
        info = zf.getinfo(MANIFEST)
        if info.file_size > _MAX_MANIFEST_BYTES:
            raise ModelFileError(f"{path}: the manifest is implausibly large ({info.file_size} bytes)")
        raw = zf.read(MANIFEST)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: the file is truncated or corrupted ({exc}).") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the manifest is corrupted (invalid JSON: {exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a fastmlp model file (its {MANIFEST} does not say "
                             f"format \"{FORMAT_NAME}\").")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: the manifest has an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        from . import __version__
        raise ModelFileError(
            f"{path}: written in fastmlp file format version {version} by fastmlp "
            f"{manifest.get('fastmlp_version', '?')}; this fastmlp ({__version__}) reads versions "
            f"up to {FORMAT_VERSION}. Upgrade fastmlp to load it.")
    for key in ("root", "arrays"):
        if key not in manifest:
            raise ModelFileError(f"{path}: the manifest is incomplete (no {key!r}).")
    if not isinstance(manifest["arrays"], dict):
        raise ModelFileError(f"{path}: the manifest's 'arrays' is not a mapping.")
    return manifest


def read_manifest(path):
    """The manifest of a model file (format version, writer, architecture, metadata) without
    loading its arrays. Raises ModelFileError for files that are not fastmlp models."""
    with _open(path) as zf:
        return _read_manifest(zf, os.fspath(path))


def _read_arrays(zf, manifest, path):
    arrays = {}
    for name, spec in manifest["arrays"].items():
        member = f"arrays/{name}.npy"
        try:
            if not isinstance(spec, dict):
                raise ValueError("bad array entry")
            dtype, shape = np.dtype(spec["dtype"]), tuple(int(s) for s in spec["shape"])
            raw = zf.read(member)  # checks the member's CRC-32
        except KeyError:
            raise ModelFileError(f"{path}: the file is corrupted or truncated (array {name!r} is "
                                 "missing).") from None
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise ModelFileError(f"{path}: the file is corrupted (array {name!r}: {exc}).") from None
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: the manifest's entry for array {name!r} is invalid "
                                 f"({exc}).") from None
        if dtype.kind not in "biufU":
            raise ModelFileError(f"{path}: array {name!r} has the unsupported dtype {dtype}.")
        try:
            arr = np.lib.format.read_array(_stdio.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{path}: array {name!r} is corrupted ({exc}).") from None
        if arr.dtype != dtype or arr.shape != shape:
            raise ModelFileError(f"{path}: array {name!r} is {arr.dtype}{list(arr.shape)} but the "
                                 f"manifest says {dtype}{list(shape)}; the file is corrupted.")
        arrays[name] = arr
    return arrays


class _Reader:
    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path

    def array(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise ModelFileError(f"{self.path}: the manifest refers to an unknown array {name!r}.")
        return self.arrays[name]

    def decode(self, value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict) or len(value) not in (1, 2):
            raise ModelFileError(f"{self.path}: unexpected value in the manifest: {value!r:.80}")
        if "__array__" in value:
            return self.array(value["__array__"]).copy()
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in _expect(value["__tuple__"], list, self.path))
        if "__dict__" in value:
            return {k: self.decode(v)
                    for k, v in _expect(value["__dict__"], dict, self.path).items()}
        if "__items__" in value:
            items = _expect(value["__items__"], list, self.path)
            if not all(isinstance(kv, list) and len(kv) == 2 for kv in items):
                raise ModelFileError(f"{self.path}: the manifest has a malformed mapping.")
            return {_hashable(self.decode(k)): self.decode(v) for k, v in items}
        if "__sequential__" in value:
            return self.sequential(_expect(value["__sequential__"], dict, self.path))
        if "__optimizer__" in value:
            return self.optimizer(_expect(value["__optimizer__"], dict, self.path), None)
        if "__object__" in value:
            return self.object(value["__object__"], _expect(value.get("state"), dict, self.path))
        raise ModelFileError(f"{self.path}: unexpected value in the manifest: {value!r:.80}")

    def object(self, qualname, state):
        if qualname not in _OBJECTS:
            raise ModelFileError(f"{self.path}: unknown object type {qualname!r}; this fastmlp "
                                 f"reads {', '.join(sorted(_OBJECTS))}.")
        module_name, cls_name = _OBJECTS[qualname]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelFileError(f"{self.path}: holds a {qualname}, which needs a package that is "
                                 f"not installed ({exc}); e.g. pip install 'fastmlp[sklearn]'."
                                 ) from None
        cls = getattr(module, cls_name)
        obj = cls.__new__(cls)
        decoded = {k: self.decode(v) for k, v in state.items()}
        if hasattr(obj, "__setstate__") and hasattr(cls, "__getstate__"):
            obj.__setstate__(decoded)
        else:
            obj.__dict__.update(decoded)
        return obj

    def sequential(self, spec):
        from .activations import Activation
        from .losses import get_loss
        from .model import Sequential

        path = self.path
        try:
            types = _layer_types()
            layers = []
            for i, entry in enumerate(_expect(spec["layers"], list, path)):
                entry = _expect(entry, dict, path)
                name = entry["type"]
                if name not in types:
                    raise ModelFileError(
                        f"{path}: layer {i} has the unknown type {name!r}. It was written by a "
                        "newer fastmlp or uses a custom layer: upgrade fastmlp or register the "
                        "layer with fastmlp.io.register_layer before loading.")
                config = dict(_expect(entry.get("config", {}), dict, path))
                if isinstance(config.get("activation"), dict):
                    config["activation"] = Activation(**config["activation"])
                layers.append(types[name](**config))
            input_dim = spec.get("input_dim")
            model = Sequential(layers, input_dim=input_dim, dtype=spec["dtype"],
                               seed=spec["seed"], n_threads=spec.get("n_threads"))
            if input_dim is not None:
                for i, (layer, entry) in enumerate(zip(model.layers, spec["layers"])):
                    names = [pname for pname, _ in layer.param_shapes(layer.input_dim)]
                    params = _expect(entry.get("params", {}), dict, path)
                    if sorted(params) != sorted(names):
                        raise ModelFileError(f"{path}: layer {i} ({entry['type']}) should have "
                                             f"parameters {names}, the file has {sorted(params)}.")
                    for pname, view in zip(names, layer.params):
                        arr = self.array(params[pname])
                        if arr.shape != view.shape or arr.dtype != view.dtype:
                            raise ModelFileError(
                                f"{path}: layer {i} parameter {pname!r} is {arr.dtype}"
                                f"{list(arr.shape)}, expected {view.dtype}{list(view.shape)}.")
                        view[...] = arr
            model._epochs_done = int(spec.get("epochs_done", 0))
            if spec.get("loss") is not None:
                kwargs = {}
                if spec.get("metrics"):
                    from .metrics import Accuracy
                    kwargs["metrics"] = [Accuracy(m["threshold"]) if isinstance(m, dict) else m
                                         for m in _expect(spec["metrics"], list, path)]
                model.compile(loss=get_loss(spec["loss"]),
                              optimizer=self.optimizer(spec.get("optimizer"), model), **kwargs)
            return model
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{path}: the model description is invalid or corrupted "
                                 f"({type(exc).__name__}: {exc}).") from None

    def optimizer(self, spec, model):
        from .optimizers import _BY_NAME as _OPTIMIZERS

        if spec is None:
            return None
        spec = _expect(spec, dict, self.path)
        cls = _OPTIMIZERS.get(str(spec["type"]).lower())
        if cls is None or cls.__name__ != spec["type"]:
            raise ModelFileError(f"{self.path}: unknown optimizer type {spec['type']!r}.")
        config = dict(_expect(spec.get("config", {}), dict, self.path))
        clip = config.pop("_clip", None)
        opt = cls(**config)
        if clip:
            opt.clip(**clip)
        state = {slot: self.array(name).copy()
                 for slot, name in _expect(spec.get("state", {}), dict, self.path).items()}
        if model is not None and model.built:
            for slot, arr in state.items():
                if arr.shape != (model.n_params,) or arr.dtype != model.dtype:
                    raise ModelFileError(f"{self.path}: optimizer state {slot!r} is {arr.dtype}"
                                         f"{list(arr.shape)}, expected {model.dtype}"
                                         f"[{model.n_params}].")
        state.update(iterations=int(spec.get("iterations", 0)), lr=float(spec.get("lr", opt.lr)),
                     mu_product=float(spec.get("mu_product", 1.0)))
        opt.set_state(state)
        return opt


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _expect(value, kind, path):
    if not isinstance(value, kind):
        raise ModelFileError(f"{path}: the manifest is invalid (expected a {kind.__name__}, got "
                             f"{type(value).__name__}).")
    return value


def load(path, return_metadata=False):
    """Read a file written by `save` / ``model.save``: a Sequential model (compiled, with its
    optimizer state, when it was saved compiled) or a fastmlp estimator. With
    ``return_metadata=True`` returns ``(obj, metadata)``.

    Runs no code from the file. Raises ModelFileError (a ValueError) for a missing, truncated,
    corrupted or foreign file, or one written by a newer fastmlp."""
    path_s = os.fspath(path)
    with _open(path_s) as zf:
        manifest = _read_manifest(zf, path_s)
        arrays = _read_arrays(zf, manifest, path_s)
    obj = _Reader(arrays, path_s).decode(manifest["root"])
    metadata = manifest.get("metadata") or {}
    return (obj, metadata) if return_metadata else obj
