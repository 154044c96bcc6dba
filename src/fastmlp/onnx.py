"""ONNX export of a Sequential model's inference graph (needs ``pip install 'fastmlp[onnx]'``).

``model.to_onnx(path)`` (or ``fastmlp.onnx.to_onnx(model, path)``) writes a graph with one
input ``X`` of shape (N, input_dim) and one output ``Y``:

- ``output="predict"`` (default): ``Y`` is what ``model.predict(X)`` returns, the loss's link
  applied: softmax probabilities for softmax cross-entropy, sigmoid probabilities for binary
  cross-entropy, -1/0/+1 for the perceptron and hinge losses, the values for MSE;
- ``output="raw"``: ``Y`` is ``model.predict_raw(X)`` (logits for the cross-entropies).

The graph uses the model's dtype (float or double), IR version `IR_VERSION` and the default ONNX
domain at opset `OPSET` (13 to 21 accepted), so onnxruntime 1.13 and later run it. Each layer
becomes standard operators:

==========================  =========================================================
Dense                        Gemm (MatMul without bias), then its activation
Maxout                       Gemm, Reshape to (N, units, pieces), ReduceMax over pieces
PReLU                        PRelu with the learned per-feature slopes
Activation layers            identity c: Mul; step: GreaterOrEqual + Cast; sign: Sign;
                             sigmoid(T): Mul by 1/T + Sigmoid; tanh, relu: Tanh, Relu;
                             leaky_relu: LeakyRelu; elu: Elu; softplus: Softplus;
                             silu: x * Sigmoid(x); gelu: 0.5 x (1 + Erf(x / sqrt 2));
                             softmax: Softmax over the last axis
Dropout, GaussianNoise,      nothing (they are the identity at inference)
ActivityRegularization
==========================  =========================================================

onnxruntime has no double-precision Elu, Softplus or Erf kernels, so float64 graphs spell Elu
and Softplus with Where/Exp/Log (and leaky ReLU as PRelu with a double slope), and compute
GELU's erf in float32 (GELU outputs then agree with ``predict`` to about 1e-7 relative; every
other float64 operator to double rounding).
"""
import numpy as np

OPSET = 17
IR_VERSION = 8

__all__ = ["IR_VERSION", "OPSET", "to_onnx"]


def _import_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'fastmlp[onnx]' "
                          "(or pip install onnx onnxruntime).") from None
    return onnx


class _Graph:
    def __init__(self, dtype):
        onnx = _import_onnx()
        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.TensorProto = onnx.TensorProto
        self.dtype = np.dtype(dtype)
        self.elem = onnx.TensorProto.FLOAT if self.dtype == np.float32 else onnx.TensorProto.DOUBLE
        self.nodes, self.inits = [], []
        self._count = 0

    def _name(self, prefix):
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value, prefix="c", dtype=None):
        name = self._name(prefix)
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, prefix=None, **attrs):
        out = self._name(prefix or op.lower())
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out


def _activation(g, x, name, param):
    """Emit nodes for activation `name` (with its parameter) applied to tensor x."""
    f64 = g.dtype == np.float64
    p = g.dtype.type(param)
    if name == "identity":
        return x if p == 1 else g.node("Mul", [x, g.const(p)])
    if name == "step":
        ge = g.node("GreaterOrEqual", [x, g.const(p)])
        return g.node("Cast", [ge], to=g.elem)
    if name == "sign":
        return g.node("Sign", [x])
    if name == "sigmoid":
        if p != 1:
            x = g.node("Mul", [x, g.const(g.dtype.type(1) / p)])  # the kernel's z * (1/T)
        return g.node("Sigmoid", [x])
    if name == "tanh":
        return g.node("Tanh", [x])
    if name == "relu":
        return g.node("Relu", [x])
    if name == "leaky_relu":
        if f64:  # LeakyRelu's alpha attribute is a float32; a double slope keeps full precision
            return g.node("PRelu", [x, g.const([p])])
        return g.node("LeakyRelu", [x], alpha=float(p))
    if name == "elu":
        if f64:
            neg = g.node("Mul", [g.node("Sub", [g.node("Exp", [x]), g.const(1.0)]), g.const(p)])
            return g.node("Where", [g.node("Greater", [x, g.const(0.0)]), x, neg])
        return g.node("Elu", [x], alpha=float(p))
    if name == "softplus":
        if f64:  # max(z, 0) + log(1 + exp(-|z|)), the kernel's overflow-free form
            tail = g.node("Log", [g.node("Add", [g.const(1.0), g.node(
                "Exp", [g.node("Neg", [g.node("Abs", [x])])])])])
            return g.node("Add", [g.node("Relu", [x]), tail])
        return g.node("Softplus", [x])
    if name == "silu":
        return g.node("Mul", [x, g.node("Sigmoid", [x])])
    if name == "gelu":
        scaled = g.node("Mul", [x, g.const(np.sqrt(0.5))])
        if f64:
            f32 = g.node("Cast", [scaled], to=g.TensorProto.FLOAT)
            erf = g.node("Cast", [g.node("Erf", [f32])], to=g.elem)
        else:
            erf = g.node("Erf", [scaled])
        half_x = g.node("Mul", [x, g.const(0.5)])
        return g.node("Mul", [half_x, g.node("Add", [erf, g.const(1.0)])])
    if name == "softmax":
        return g.node("Softmax", [x], axis=-1)
    raise TypeError(f"Cannot export the activation {name!r} to ONNX.")


def _affine(g, x, layer, prefix):
    w = g.const(layer.weight, f"{prefix}_W")
    if layer.bias is not None:
        return g.node("Gemm", [x, w, g.const(layer.bias, f"{prefix}_b")])
    return g.node("MatMul", [x, w])


def _layer(g, x, layer, i, opset, skip_activation=False):
    from .activations import Activation
    from .layers import Dense, PReLU

    extra = {}
    try:
        from .layers import ActivityRegularization, Dropout, GaussianNoise, Maxout
        extra = {"maxout": Maxout, "identity": (Dropout, GaussianNoise, ActivityRegularization)}
    except ImportError:  # an older core without these layers
        pass
    if type(layer) is Dense:
        z = _affine(g, x, layer, f"dense{i}")
        if skip_activation:
            return z
        return _activation(g, z, layer.activation.name, layer.activation.param)
    if isinstance(layer, Activation) and type(layer).forward is Activation.forward:
        return _activation(g, x, layer.name, layer.param)
    if type(layer) is PReLU:
        return g.node("PRelu", [x, g.const(layer.slope, f"prelu{i}_slope")])
    if "maxout" in extra and type(layer) is extra["maxout"]:
        z = _affine(g, x, layer, f"maxout{i}")
        shape = g.const([0, layer.units, layer.pieces], f"maxout{i}_shape", np.int64)
        r = g.node("Reshape", [z, shape])
        if opset >= 18:
            return g.node("ReduceMax", [r, g.const([2], "axes", np.int64)], keepdims=0)
        return g.node("ReduceMax", [r], axes=[2], keepdims=0)
    if "identity" in extra and type(layer) in extra["identity"]:
        return x
    raise TypeError(f"Cannot export layer {i} ({layer!r}) to ONNX: fastmlp exports Dense, "
                    "Maxout, PReLU, activation, Dropout, GaussianNoise and "
                    "ActivityRegularization layers.")


def _sequential_of(obj):
    from .model import Sequential

    if isinstance(obj, Sequential):
        return obj
    model = getattr(obj, "model_", None)
    if isinstance(model, Sequential):
        return model
    raise TypeError(f"to_onnx exports a fastmlp Sequential model (or an estimator fitted on one), "
                    f"got {type(obj).__name__}")


def to_onnx(model, path=None, output="predict", opset=None, name="fastmlp"):
    """Build (and write to `path`, if given) the ONNX graph of `model`; returns the ModelProto.

    `model` is a built Sequential, or a fitted fastmlp estimator, whose ``model_`` is exported;
    for a fastmlp.sklearn.MLPClassifier the output (with output="predict") is
    ``predict_proba``: a binary classifier's single sigmoid unit p becomes the columns
    (1 - p, p). See the module docstring for the operators used."""
    onnx = _import_onnx()
    estimator = model
    model = _sequential_of(model)
    binary_proba = (estimator is not model and output == "predict"
                    and getattr(estimator, "out_activation_", None) == "logistic"
                    and not getattr(estimator, "_multilabel", True))
    if not model.built:
        raise RuntimeError("The model is not built yet: give input_dim or call fit() first.")
    if output not in ("predict", "raw"):
        raise ValueError(f"output must be 'predict' or 'raw', got {output!r}")
    opset = OPSET if opset is None else int(opset)
    if not 13 <= opset <= 21:
        raise ValueError(f"opset must be between 13 and 21, got {opset}")

    g = _Graph(model.dtype)
    x = "X"
    layers = list(model.layers)
    fused = model._fused if model.loss is not None else None
    if fused == "activation":
        layers = layers[:-1]  # predict_raw stops before the fused link
    for i, layer in enumerate(layers):
        x = _layer(g, x, layer, i, opset, skip_activation=(fused == "dense" and i == len(layers) - 1))
    if output == "predict" and model.loss is not None and model.loss.link != "identity":
        x = _activation(g, x, model.loss.link, 1.0)
    n_out = model.output_dim
    if binary_proba:  # predict_proba's two columns
        x = g.node("Concat", [g.node("Sub", [g.const([[1.0]]), x]), x], axis=1)
        n_out = 2
    g.nodes.append(g.helper.make_node("Identity", [x], ["Y"], name="output"))

    h = g.helper
    graph = h.make_graph(
        g.nodes, name,
        [h.make_tensor_value_info("X", g.elem, ["N", model.input_dim])],
        [h.make_tensor_value_info("Y", g.elem, ["N", n_out])],
        g.inits)
    from . import __version__
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)],
                         producer_name="fastmlp", producer_version=__version__)
    proto.ir_version = IR_VERSION
    proto.doc_string = (f"fastmlp {__version__}: Y = model.{'predict' if output == 'predict' else 'predict_raw'}(X)")
    h.set_model_props(proto, {"fastmlp.output": output,
                              "fastmlp.loss": model.loss.name if model.loss else ""})
    onnx.checker.check_model(proto)
    if path is not None:
        from ._atomic import atomic_write
        data = proto.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return proto
