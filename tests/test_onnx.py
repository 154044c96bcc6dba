"""ONNX export: onnxruntime's outputs against predict / predict_raw, for every layer and activation."""
import numpy as np
import pytest

import fastmlp as fm

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ACTIVATIONS = [("identity", 1.0), ("identity", 2.5), ("step", 0.3), ("sign", None),
               ("sigmoid", 1.0), ("sigmoid", 3.0), ("tanh", None), ("relu", None),
               ("leaky_relu", 0.1), ("elu", 0.7), ("softplus", None), ("silu", None),
               ("gelu", None), ("softmax", None)]
LOSSES = [None, "mse", "softmax_cross_entropy", "binary_cross_entropy", "perceptron", "hinge"]


def _run(proto, X):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": X})
    return y


def _tolerance(dtype, gelu=False):
    if dtype == "float32":
        return dict(rtol=2e-5, atol=2e-6)
    # onnxruntime has no double Erf: GELU's erf runs in float32 (documented)
    return dict(rtol=1e-6, atol=1e-6) if gelu else dict(rtol=1e-11, atol=1e-12)


def _model(act, param, loss, dtype, seed=0):
    n_out = 1 if loss in ("binary_cross_entropy", "perceptron", "hinge") else 3
    model = fm.Sequential(
        [fm.Dense(8, activation=fm.Activation(act, param)), fm.PReLU(0.1), fm.Dropout(0.5),
         fm.Maxout(5, pieces=3), fm.GaussianNoise(1.0), fm.ActivityRegularization(l1=0.1),
         fm.Activation(act, param), fm.Dense(6, use_bias=False), fm.Dense(n_out)],
        input_dim=4, dtype=dtype, seed=seed)
    if loss:
        model.compile(loss)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act,param", ACTIVATIONS, ids=[f"{a}-{p}" for a, p in ACTIVATIONS])
def test_every_activation_and_layer_matches_predict(dtype, act, param):
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(64, 4)) * 3).astype(dtype)
    for loss in LOSSES:
        model = _model(act, param, loss, dtype)
        for output, reference in (("predict", model.predict), ("raw", model.predict_raw)):
            proto = model.to_onnx(output=output)
            y = _run(proto, X)
            expected = reference(X)
            assert y.dtype == expected.dtype and y.shape == expected.shape
            if act in ("step", "sign"):
                # thresholds: rounding may move a point across; allow a few of 64*3 elements
                assert np.mean(~np.isclose(y, expected, **_tolerance(dtype))) < 0.05
            else:
                np.testing.assert_allclose(y, expected, **_tolerance(dtype, act == "gelu"),
                                           err_msg=f"{act} {loss} {output}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_output_layers_and_trained_model(tmp_path, dtype):
    """A softmax/sigmoid last layer fused with its loss: predict applies the link once, raw
    stops before it, as the model does."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(dtype)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    for layers, loss in (([fm.Dense(8, activation="tanh"), fm.Dense(2, activation="softmax")],
                          "softmax_cross_entropy"),
                         ([fm.Dense(8, activation="gelu"), fm.Dense(2), fm.Softmax()],
                          "softmax_cross_entropy"),
                         ([fm.Dense(8, activation="silu"), fm.Dense(1, activation="sigmoid")],
                          "binary_cross_entropy")):
        model = fm.Sequential(layers, input_dim=3, dtype=dtype, seed=1)
        model.compile(loss, fm.Adam(lr=0.01))
        model.fit(X, y, epochs=3)
        path = tmp_path / "m.onnx"
        model.to_onnx(path)
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        np.testing.assert_allclose(_run(proto, X), model.predict(X), **_tolerance(dtype, True))
        np.testing.assert_allclose(_run(model.to_onnx(output="raw"), X), model.predict_raw(X),
                                   **_tolerance(dtype, True))


def test_graph_conventions():
    model = _model("relu", None, "softmax_cross_entropy", "float32")
    proto = model.to_onnx()
    assert proto.ir_version == fm.onnx.IR_VERSION == 8
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", fm.onnx.OPSET)]
    assert proto.producer_name == "fastmlp"
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "X" and out.name == "Y"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 4]
    assert {p.key: p.value for p in proto.metadata_props}["fastmlp.output"] == "predict"
    ops = {node.op_type for node in proto.graph.node}
    assert {"Gemm", "MatMul", "PRelu", "Reshape", "ReduceMax", "Relu", "Softmax"} <= ops
    assert "Dropout" not in ops  # the identity at inference


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_other_opsets(opset):
    model = _model("elu", 0.5, "mse", "float32")
    X = np.random.default_rng(2).normal(size=(10, 4)).astype(np.float32)
    proto = model.to_onnx(opset=opset)
    assert proto.opset_import[0].version == opset
    np.testing.assert_allclose(_run(proto, X), model.predict(X), **_tolerance("float32"))


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_estimators_export_their_model():
    sk = pytest.importorskip("fastmlp.sklearn")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    clf = sk.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    np.testing.assert_allclose(_run(fm.onnx.to_onnx(clf), X), clf.predict_proba(X), rtol=2e-5,
                               atol=2e-6)
    binary = sk.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y == "a")
    proba = _run(fm.onnx.to_onnx(binary), X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba, binary.predict_proba(X), rtol=2e-5, atol=2e-6)
    perceptron = fm.Perceptron(seed=0).fit(X, X[:, 0] > 0)
    out = _run(fm.onnx.to_onnx(perceptron, output="raw"), X.astype(np.float64))
    np.testing.assert_allclose(out[:, 0], perceptron.decision_function(X), rtol=1e-12)


def test_errors():
    with pytest.raises(RuntimeError, match="not built"):
        fm.Sequential([fm.Dense(2)]).to_onnx()
    model = _model("relu", None, None, "float32")
    with pytest.raises(ValueError, match="output"):
        model.to_onnx(output="logits")
    with pytest.raises(ValueError, match="opset"):
        model.to_onnx(opset=9)
    with pytest.raises(TypeError, match="Sequential"):
        fm.onnx.to_onnx(object())

    class Custom(fm.Layer):
        def output_dim_for(self, input_dim):
            return input_dim

        def infer(self, x):
            return x

    custom = fm.Sequential([fm.Dense(2), Custom()], input_dim=2)
    with pytest.raises(TypeError, match="Cannot export layer 1"):
        custom.to_onnx()


def test_missing_onnx_package_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'fastmlp\[onnx\]'"):
        _model("relu", None, None, "float32").to_onnx()
