"""Analytic gradients vs central finite differences, in float64 (tests/gradcheck.py).

Every activation layer, Dense with every activation, PReLU, every loss (with and without
sample weights), the l1/l2 penalties and whole networks through Sequential.loss_and_gradients.
Inputs are kept at least 1e-3 away from kinks (relu, leaky relu, step, sign, PReLU, the l1 term,
the perceptron and hinge margins) so that the central difference never straddles one.
Values are also checked against the NumPy oracle (tests/reference.py).
"""
import numpy as np
import pytest

import fastmlp as fm
import reference as ref
from fastmlp.losses import get_loss
from gradcheck import (ATOL, RTOL, assert_gradient_close, away_from, model_numerical_gradients,
                       numerical_gradient)

MARGIN = 1e-3

# (factory, oracle name, oracle parameter, kinks)
ACTIVATION_LAYERS = {
    "identity": (lambda: fm.Activation("identity"), "identity", 1.0, ()),
    "identity_c2.5": (lambda: fm.Identity(c=2.5), "identity", 2.5, ()),
    "step": (lambda: fm.Step(), "step", 0.0, (0.0,)),
    "step_theta0.3": (lambda: fm.Step(theta=0.3), "step", 0.3, (0.3,)),
    "sign": (lambda: fm.Sign(), "sign", 0.0, (0.0,)),
    "sigmoid": (lambda: fm.Sigmoid(), "sigmoid", 1.0, ()),
    "sigmoid_T0.5": (lambda: fm.Sigmoid(T=0.5), "sigmoid", 0.5, ()),
    "sigmoid_T3": (lambda: fm.Activation("logistic", 3.0), "sigmoid", 3.0, ()),
    "tanh": (lambda: fm.Tanh(), "tanh", 0.0, ()),
    "relu": (lambda: fm.ReLU(), "relu", 0.0, (0.0,)),
    "leaky_relu": (lambda: fm.LeakyReLU(), "leaky_relu", 0.01, (0.0,)),
    "leaky_relu_0.2": (lambda: fm.LeakyReLU(alpha=0.2), "leaky_relu", 0.2, (0.0,)),
    "elu": (lambda: fm.ELU(), "elu", 1.0, (0.0,)),
    "elu_0.7": (lambda: fm.ELU(alpha=0.7), "elu", 0.7, (0.0,)),
    "softplus": (lambda: fm.Softplus(), "softplus", 0.0, ()),
    "silu": (lambda: fm.SiLU(), "silu", 0.0, ()),
    "gelu": (lambda: fm.GELU(), "gelu", 0.0, ()),
    "softmax": (lambda: fm.Softmax(), "softmax", 0.0, ()),
}
# the activation= spellings of the same for Dense
DENSE_ACTIVATIONS = {
    "identity": (None, ()), "identity_c2.5": (fm.Identity(2.5), ()), "step": ("step", (0.0,)),
    "step_theta0.3": (fm.Step(0.3), (0.3,)), "sign": ("sign", (0.0,)), "sigmoid": ("sigmoid", ()),
    "sigmoid_T0.5": (fm.Sigmoid(T=0.5), ()), "tanh": ("tanh", ()), "relu": ("relu", (0.0,)),
    "leaky_relu_0.2": (fm.LeakyReLU(0.2), (0.0,)), "elu_0.7": (fm.ELU(0.7), (0.0,)),
    "elu": ("elu", (0.0,)), "softplus": ("softplus", ()), "silu": ("silu", ()),
    "gelu": ("gelu", ()), "softmax": ("softmax", ()),
}


def push_off_kinks(z, kinks, rng):
    """Move entries of z within MARGIN of a kink to a random point 0.01..0.5 away from it."""
    z = np.array(z, np.float64)
    for k in kinks:
        near = np.abs(z - k) <= 10 * MARGIN
        z[near] = k + rng.choice([-1, 1], near.sum()) * rng.uniform(0.01, 0.5, near.sum())
    return z


# ---------------------------------------------------------------- activation layers

@pytest.mark.parametrize("key", list(ACTIVATION_LAYERS))
def test_activation_layer_gradient(key):
    factory, name, param, kinks = ACTIVATION_LAYERS[key]
    rng = np.random.default_rng(0)
    layer = factory()
    layer.build(5, "float64")
    z = push_off_kinks(rng.normal(0, 2, (6, 5)), kinks, rng)
    assert away_from(z, kinks, MARGIN)
    G = rng.normal(size=(6, 5))
    y = layer.forward(z)
    np.testing.assert_allclose(y, ref.act_forward(name, z, param), rtol=1e-12, atol=1e-14)
    dz = layer.backward(G)
    num = numerical_gradient(lambda: np.sum(layer.forward(z) * G), z)
    assert_gradient_close(dz, num, what=f"{key}: dL/dz")
    np.testing.assert_allclose(dz, ref.act_backward(name, z, G, param), rtol=1e-12, atol=1e-14)
    if name in ("step", "sign"):
        assert np.all(dz == 0.0) and np.all(num == 0.0)


# ---------------------------------------------------------------- Dense

def dense_case(rng, activation, kinks, n_in=4, units=3, batch=6, use_bias=True):
    layer = fm.Dense(units, activation=activation, use_bias=use_bias)
    layer.build(n_in, "float64", seed=0)
    layer.weight = rng.normal(0, 0.8, (n_in, units))
    if use_bias:
        layer.bias = rng.normal(0, 0.5, units)
    # draw rows until every pre-activation is clear of the kinks
    x = np.empty((batch, n_in))
    for i in range(batch):
        for _ in range(1000):
            row = rng.normal(0, 1, n_in)
            zrow = row @ layer.weight + (layer.bias if use_bias else 0)
            if away_from(zrow, kinks, 20 * MARGIN):
                break
        x[i] = row
    return layer, x


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("key", list(DENSE_ACTIVATIONS))
def test_dense_gradient(key, use_bias):
    activation, kinks = DENSE_ACTIVATIONS[key]
    rng = np.random.default_rng(1)
    layer, x = dense_case(rng, activation, kinks, use_bias=use_bias)
    act = layer.activation
    G = rng.normal(size=(x.shape[0], layer.units))
    y = layer.forward(x)
    z_ref, y_ref = ref.dense_forward(x, layer.weight, layer.bias, act.name, act.param)
    assert away_from(z_ref, kinks, MARGIN)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    dx = layer.backward(G)
    gw = layer.grad_weight.copy()
    gb = None if layer.grad_bias is None else layer.grad_bias.copy()

    def f():
        return np.sum(layer.forward(x) * G)

    assert_gradient_close(dx, numerical_gradient(f, x), what=f"{key}: dL/dx")
    assert_gradient_close(gw, numerical_gradient(f, layer.weight), what=f"{key}: dL/dW")
    if use_bias:
        assert_gradient_close(gb, numerical_gradient(f, layer.bias), what=f"{key}: dL/db")
    else:
        assert layer.grad_bias is None and layer.bias is None
    # and against the oracle's chain rule
    _, dw_ref, db_ref, dx_ref = ref.dense_backward(x, layer.weight, z_ref, G, act.name, act.param)
    np.testing.assert_allclose(gw, dw_ref, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-11, atol=1e-13)
    if use_bias:
        np.testing.assert_allclose(gb, db_ref, rtol=1e-11, atol=1e-13)
    if act.name in ("step", "sign"):
        assert np.all(dx == 0) and np.all(gw == 0) and (gb is None or np.all(gb == 0))


def test_dense_backward_from_preactivation():
    """from_preactivation=True takes grad_out as dL/dz (a fused loss already went through the
    activation)."""
    rng = np.random.default_rng(2)
    layer, x = dense_case(rng, "softmax", ())
    layer.forward(x)
    Gz = rng.normal(size=(x.shape[0], layer.units))
    dx = layer.backward(Gz, from_preactivation=True)

    def f():  # L = sum(z * Gz), z the pre-activation
        return np.sum(layer.infer(x, skip_activation=True) * Gz)

    assert_gradient_close(dx, numerical_gradient(f, x), what="dx")
    assert_gradient_close(layer.grad_weight.copy(), numerical_gradient(f, layer.weight), what="dW")
    assert_gradient_close(layer.grad_bias.copy(), numerical_gradient(f, layer.bias), what="db")


# ---------------------------------------------------------------- PReLU

@pytest.mark.parametrize("init", [0.25, -0.3, 1.5])
def test_prelu_gradient(init):
    rng = np.random.default_rng(3)
    layer = fm.PReLU(init=init)
    layer.build(5, "float64")
    assert np.all(layer.slope == init)
    layer.slope = rng.uniform(-0.5, 1.5, 5)
    x = push_off_kinks(rng.normal(0, 2, (7, 5)), (0.0,), rng)
    G = rng.normal(size=x.shape)
    y = layer.forward(x)
    np.testing.assert_allclose(y, ref.prelu_forward(x, layer.slope), rtol=1e-13)
    dx = layer.backward(G)
    gs = layer.grad_slope.copy()

    def f():
        return np.sum(layer.forward(x) * G)

    assert_gradient_close(dx, numerical_gradient(f, x), what="PReLU dL/dx")
    assert_gradient_close(gs, numerical_gradient(f, layer.slope), what="PReLU dL/dslope")
    dx_ref, ds_ref = ref.prelu_backward(x, layer.slope, G)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13)
    np.testing.assert_allclose(gs, ds_ref, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- losses

def loss_case(rng, name, style, n=7, k=3):
    """(y as a user gives it, z, oracle kind) for a loss and a target style."""
    z = rng.normal(0, 1.5, (n, k))
    if name == "mse":
        return rng.normal(size=(n, k)), z, "mse"
    if name == "binary_cross_entropy":
        if style == "labels":
            return rng.integers(0, 2, (n, k)).astype(float), z, "bce_logits"
        y = rng.uniform(0, 1, (n, k))
        return y, z, "bce_logits"
    if name == "softmax_cross_entropy":
        labels = rng.integers(0, k, n)
        if style == "labels":
            return labels, z, "softmax_ce_labels"
        if style == "onehot":
            return np.eye(k)[labels], z, "softmax_ce"
        return rng.dirichlet(np.ones(k), n), z, "softmax_ce"
    # perceptron / hinge: +-1 or 0/1 labels, z clear of t z = 0 and t z = 1
    y = rng.integers(0, 2, (n, k)).astype(float)
    if style == "signed":
        y = 2 * y - 1
    z = push_off_kinks(push_off_kinks(z, (0.0,), rng), (1.0, -1.0), rng)
    return y, z, name


LOSS_CASES = [("mse", "values"), ("binary_cross_entropy", "labels"),
              ("binary_cross_entropy", "probabilities"), ("softmax_cross_entropy", "labels"),
              ("softmax_cross_entropy", "onehot"), ("softmax_cross_entropy", "probabilities"),
              ("perceptron", "signed"), ("perceptron", "01"), ("hinge", "signed"), ("hinge", "01")]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,style", LOSS_CASES)
def test_loss_gradient(name, style, weighted):
    rng = np.random.default_rng(4)
    y, z, kind = loss_case(rng, name, style)
    n, k = z.shape
    loss = get_loss(name)
    targets = loss.prepare_targets(y, k, np.float64)
    sw = rng.uniform(0.2, 3.0, n) if weighted else None
    if weighted:
        sw[2] = 0.0
    value, grad = loss(z, targets, sw)
    num = numerical_gradient(lambda: loss(z, targets, sw, need_grad=False)[0], z)
    assert_gradient_close(grad, num, what=f"{name}/{style}: dL/dz")
    # the oracle's value and gradient, from the targets as a user gives them
    t, labels = targets.get("t"), targets.get("labels")
    if name in ("perceptron", "hinge"):
        t_user = np.asarray(y, float)
        np.testing.assert_array_equal(t, t_user if style == "signed" else 2 * t_user - 1)
    want, want_g = ref.loss(kind, z, t, labels, sw)
    assert value == pytest.approx(want, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, want_g, rtol=1e-12, atol=1e-14)
    if name in ("perceptron", "hinge"):  # subgradient: exactly -t w_i / sum(w) or 0
        w = np.ones(n) if sw is None else sw
        assert np.all(np.isin(np.round(grad * w.sum() / np.where(w > 0, w, 1)[:, None], 12),
                              (-1, 0, 1)))


def test_loss_value_worked_numbers():
    """Small hand-computed values (per-sample sums, mean over samples)."""
    # mse: 1/2 ((1-0)^2 + (2-4)^2) = 2.5 and 1/2 (0 + 1) = 0.5 -> mean 1.5; grad (z - t) / n
    mse = get_loss("mse")
    v, g = mse(np.array([[1.0, 2.0], [3.0, 3.0]]),
               mse.prepare_targets(np.array([[0.0, 4.0], [3.0, 2.0]]), 2, np.float64))
    assert v == pytest.approx(1.5) and np.allclose(g, [[0.5, -1.0], [0.0, 0.5]])
    # bce at z = 0: log 2 per output, gradient (1/2 - t) / n
    bce = get_loss("binary_cross_entropy")
    v, g = bce(np.zeros((2, 1)), bce.prepare_targets(np.array([0.0, 1.0]), 1, np.float64))
    assert v == pytest.approx(np.log(2)) and np.allclose(g, [[0.25], [-0.25]])
    # softmax ce on equal logits: log k; weighted mean with weights 1 and 3
    ce = get_loss("softmax_cross_entropy")
    v, g = ce(np.zeros((2, 4)), ce.prepare_targets(np.array([1, 3]), 4, np.float64),
              np.array([1.0, 3.0]))
    assert v == pytest.approx(np.log(4))
    assert np.allclose(g, [[0.0625, 0.0625 - 0.25, 0.0625, 0.0625],
                           [0.1875, 0.1875, 0.1875, 0.1875 - 0.75]])


# ---------------------------------------------------------------- networks

LINK = {"softmax_cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
KIND = {"mse": "mse", "binary_cross_entropy": "bce_logits", "softmax_cross_entropy": "softmax_ce",
        "perceptron": "perceptron", "hinge": "hinge"}


def ref_network(model, X):
    """Oracle forward: (logits the loss sees, every (layer, pre-activation) pair)."""
    h = np.asarray(X, np.float64)
    pre = []
    fused = False
    link = LINK.get(model.loss.name) if model.loss is not None else None
    for i, layer in enumerate(model.layers):
        last = i == len(model.layers) - 1
        if isinstance(layer, fm.Dense):
            act = layer.activation
            z, y = ref.dense_forward(h, layer.weight, layer.bias, act.name, act.param)
            fused = last and act.name == link and not (link == "sigmoid" and act.param != 1.0)
        elif isinstance(layer, fm.PReLU):
            z, y = h, ref.prelu_forward(h, layer.slope)
            fused = False
        else:
            z, y = h, ref.act_forward(layer.name, h, layer.param)
            fused = last and layer.name == link and not (link == "sigmoid" and layer.param != 1.0)
        pre.append((layer, z))
        h = y
    return (pre[-1][1] if fused else h), pre


def ref_network_loss(model, X, y, sample_weight=None):
    logits, _ = ref_network(model, X)
    targets = model.loss.prepare_targets(y, model.output_dim, np.float64)
    kind = KIND[model.loss.name]
    if "labels" in targets:
        kind = "softmax_ce_labels"
    value, _ = ref.loss(kind, logits, targets.get("t"), targets.get("labels"), sample_weight)
    for layer in model.layers:
        if isinstance(layer, fm.Dense) and (layer.l1 or layer.l2):
            value += ref.penalty(layer.weight, layer.l1, layer.l2)[0]
    return value


KINKED = {"relu", "leaky_relu", "elu", "step", "sign"}


def clear_of_kinks(model, X, y):
    """Every pre-activation of a kinked unit, every l1-penalised weight and the perceptron /
    hinge margins are at least MARGIN from their kink."""
    logits, pre = ref_network(model, X)
    for layer, z in pre:
        kinked = (isinstance(layer, fm.PReLU)
                  or (isinstance(layer, fm.Dense) and layer.activation.name in KINKED)
                  or (isinstance(layer, fm.Activation) and layer.name in KINKED))
        if kinked:
            if not away_from(z, (0.0,), MARGIN):
                return False
        if isinstance(layer, fm.Dense) and layer.l1 and not away_from(layer.weight, (0.0,), MARGIN):
            return False
    if model.loss.name in ("perceptron", "hinge"):
        t = model.loss.prepare_targets(y, model.output_dim, np.float64)["t"]
        point = 0.0 if model.loss.name == "perceptron" else 1.0
        if not away_from(t * logits, (point,), MARGIN):
            return False
    return True


def randomize(model, rng, scale=0.8):
    model.set_weights([rng.normal(0, scale, w.shape) for w in model.get_weights()])


def make_data(rng, loss, n, d, k):
    X = rng.normal(0, 1, (n, d))
    if loss == "mse":
        y = rng.normal(0, 1, (n, k))
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, k)).astype(float)
    elif loss == "softmax_cross_entropy":
        y = rng.integers(0, k, n)
    else:
        y = rng.choice([-1.0, 1.0], (n, k))
    return X, (y.ravel() if k == 1 and y.ndim == 2 else y)


def check_network(build_layers, loss, d=4, k=3, n=9, weighted=False, seed=0):
    """Finite differences over every weight of a float64 model, against loss_and_gradients;
    returns (model, X, y, sample_weight, value, grads)."""
    rng = np.random.default_rng(seed)
    model = fm.Sequential(build_layers(), input_dim=d, dtype="float64", seed=0)
    model.compile(loss=loss, optimizer=fm.SGD(lr=0.1))
    X, y = make_data(rng, loss, n, d, k)
    sw = rng.uniform(0.2, 2.0, n) if weighted else None
    for _ in range(50):  # random weights clear of every kink (deterministic search)
        randomize(model, rng)
        if clear_of_kinks(model, X, y):
            break
    else:
        pytest.fail("no weights found clear of the kinks")
    value, grads = model.loss_and_gradients(X, y, sample_weight=sw)
    assert len(grads) == len(model.get_weights())
    assert value == pytest.approx(ref_network_loss(model, X, y, sw), rel=1e-12, abs=1e-14)
    # the inference path (evaluate: infer + loss without gradient) gives the same value
    assert model.evaluate(X, y, sample_weight=sw) == pytest.approx(value, rel=1e-12, abs=1e-14)
    numeric = model_numerical_gradients(
        model, lambda: model.loss_and_gradients(X, y, sample_weight=sw)[0])
    for i, (g, num) in enumerate(zip(grads, numeric)):
        assert_gradient_close(g, num, what=f"{loss}: weight {i} of {model!r}")
    return model, X, y, sw, value, grads


NETWORKS = {
    "tanh_linear": lambda: [fm.Dense(5, activation="tanh"), fm.Dense(3)],
    "sigmoid_linear": lambda: [fm.Dense(5, activation="sigmoid"), fm.Dense(3)],
    "relu_linear": lambda: [fm.Dense(6, activation="relu"), fm.Dense(3)],
    "deep_mixed": lambda: [fm.Dense(7, activation="tanh"), fm.Dense(6, activation="sigmoid"),
                           fm.Dense(5), fm.PReLU(0.2), fm.Dense(4, activation="relu"),
                           fm.Dense(3)],
    "activation_layers": lambda: [fm.Dense(5), fm.ELU(0.7), fm.Dense(4), fm.GELU(), fm.Dense(3),
                                  fm.Sigmoid(T=0.5)],
}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "softmax_cross_entropy",
                                  "perceptron", "hinge"])
@pytest.mark.parametrize("net", list(NETWORKS))
def test_network_gradients(net, loss, weighted):
    check_network(NETWORKS[net], loss, weighted=weighted)


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "perceptron", "hinge"])
def test_network_single_output(loss):
    check_network(lambda: [fm.Dense(4, activation="tanh"), fm.Dense(1)], loss, k=1, n=8)


def test_penalties_in_loss_and_gradients():
    """Dense(l1=..., l2=...) adds l1 sum|W| + l2/2 sum W^2 to the loss and its gradient."""
    def layers(l1a=0.05, l2a=0.1, l1b=0.02, l2b=0.5):
        return [fm.Dense(5, activation="tanh", l1=l1a, l2=l2a), fm.Dense(4, l1=l1b),
                fm.Dense(3, l2=l2b)]

    model, X, y, sw, value, grads = check_network(layers, "mse")
    plain = fm.Sequential(layers(0, 0, 0, 0), input_dim=4, dtype="float64", seed=0)
    plain.compile(loss="mse")
    plain.set_weights(model.get_weights())
    value0, grads0 = plain.loss_and_gradients(X, y)
    W = model.get_weights()  # [W1, b1, W2, b2, W3, b3]
    pens = [ref.penalty(W[0], 0.05, 0.1), ref.penalty(W[2], 0.02, 0.0), ref.penalty(W[4], 0, 0.5)]
    assert value - value0 == pytest.approx(sum(p[0] for p in pens), rel=1e-10)
    for i, (_, pg) in zip((0, 2, 4), pens):
        np.testing.assert_allclose(grads[i] - grads0[i], pg, rtol=1e-10, atol=1e-12)
    for i in (1, 3, 5):  # biases are not penalised
        np.testing.assert_allclose(grads[i], grads0[i], rtol=1e-13, atol=1e-15)
    # evaluate reports the same penalised loss
    assert model.evaluate(X, y) == pytest.approx(value, rel=1e-12)


def test_fused_softmax_cross_entropy_matches_unfused():
    """Dense(k, activation="softmax") + softmax CE: the loss takes the pre-activation, so it
    equals Dense(k) + softmax CE (and Dense(k) + Softmax()) with the same weights."""
    for y_style in ("labels", "onehot"):
        def fused():
            return [fm.Dense(5, activation="tanh"), fm.Dense(3, activation="softmax")]

        model, X, y, sw, value, grads = check_network(fused, "softmax_cross_entropy")
        if y_style == "onehot":
            y = np.eye(3)[y]
            value, grads = model.loss_and_gradients(X, y)
        for other_layers in ([fm.Dense(5, activation="tanh"), fm.Dense(3)],
                             [fm.Dense(5, activation="tanh"), fm.Dense(3), fm.Softmax()]):
            other = fm.Sequential(other_layers, input_dim=4, dtype="float64", seed=0)
            other.compile(loss="softmax_cross_entropy")
            other.set_weights(model.get_weights())
            v2, g2 = other.loss_and_gradients(X, y)
            assert v2 == pytest.approx(value, rel=1e-13)
            for a, b in zip(grads, g2):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        # the value is the cross-entropy of softmax(pre-activation), not of softmax(softmax(.))
        logits = ref.dense_forward(np.tanh(X @ model.get_weights()[0] + model.get_weights()[1]),
                                   model.get_weights()[2], model.get_weights()[3])[0]
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        assert value == pytest.approx(-np.mean(ref.log_softmax(logits)[np.arange(len(labels)),
                                                                         labels]), rel=1e-12)


def test_sigmoid_output_with_bce_and_mse():
    """Dense(1, sigmoid) + BCE is fused (loss on the logit, equals Dense(1) + BCE); with MSE it is
    the notes' squared error on a sigmoid unit, 1/2 mean (sigmoid(z) - t)^2."""
    def sig():
        return [fm.Dense(4, activation="tanh"), fm.Dense(1, activation="sigmoid")]

    model, X, y, _, value, grads = check_network(sig, "binary_cross_entropy", k=1)
    other = fm.Sequential([fm.Dense(4, activation="tanh"), fm.Dense(1)], input_dim=4,
                          dtype="float64", seed=0)
    other.compile(loss="binary_cross_entropy")
    other.set_weights(model.get_weights())
    v2, g2 = other.loss_and_gradients(X, y)
    assert v2 == pytest.approx(value, rel=1e-13)
    for a, b in zip(grads, g2):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    W1, b1, W2, b2 = model.get_weights()
    z = (np.tanh(X @ W1 + b1) @ W2 + b2).ravel()
    assert value == pytest.approx(np.mean(ref.softplus(z) - y * z), rel=1e-12)

    # the link as its own layer is fused too
    act_last = fm.Sequential([fm.Dense(4, activation="tanh"), fm.Dense(1), fm.Sigmoid()],
                             input_dim=4, dtype="float64", seed=0)
    act_last.compile(loss="binary_cross_entropy")
    act_last.set_weights(model.get_weights())
    v3, g3 = act_last.loss_and_gradients(X, y)
    assert v3 == pytest.approx(value, rel=1e-13)
    for a, b in zip(grads, g3):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)

    model, X, y, _, value, _ = check_network(sig, "mse", k=1)
    W1, b1, W2, b2 = model.get_weights()
    p = ref.sigmoid(np.tanh(X @ W1 + b1) @ W2 + b2).ravel()
    assert value == pytest.approx(0.5 * np.mean((p - y) ** 2), rel=1e-12)


def test_gradcheck_detects_a_wrong_gradient():
    """The harness itself: a gradient off by 1e-4 relative is caught."""
    x = np.array([0.3, -1.2, 2.0])
    num = numerical_gradient(lambda: np.sum(np.sin(x) * x), x)
    exact = np.cos(x) * x + np.sin(x)
    assert_gradient_close(exact, num)
    with pytest.raises(AssertionError):
        assert_gradient_close(exact * (1 + 1e-4), num)
    assert RTOL <= 1e-6 and ATOL <= 1e-8


@pytest.mark.parametrize("net", list(NETWORKS))
def test_sequential_forward_backward_gradient(net):
    """The layer-by-layer path: model.forward then model.backward(dL/dy) fills flat_grads with
    dL/dW for L = sum(model.forward(X) * G), and returns dL/dX."""
    rng = np.random.default_rng(5)
    model = fm.Sequential(NETWORKS[net](), input_dim=4, dtype="float64", seed=0)
    model.compile(loss="mse")  # only so that clear_of_kinks can look at the targets
    X = rng.normal(0, 1, (6, 4))
    for _ in range(50):
        randomize(model, rng)
        if clear_of_kinks(model, X, None):
            break
    else:
        pytest.fail("no weights found clear of the kinks")
    G = rng.normal(size=(6, model.output_dim))
    out = model.forward(X)
    np.testing.assert_allclose(out, ref_network(model, X)[0], rtol=1e-12, atol=1e-14)
    dX = model.backward(G)
    flat = model.flat_grads.copy()
    grads = [g.copy() for layer in model.layers for g in layer.grads]
    np.testing.assert_array_equal(np.concatenate([g.ravel() for g in grads]), flat)

    def f():
        return np.sum(model.forward(X) * G)

    numeric = model_numerical_gradients(model, f)
    for i, (g, num) in enumerate(zip(grads, numeric)):
        assert_gradient_close(g, num, what=f"{net}: weight {i}")
    assert_gradient_close(dX, numerical_gradient(f, X), what=f"{net}: dL/dX")


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "softmax_cross_entropy", "hinge"])
def test_float32_model_matches_float64(loss):
    """The float32 model computes the same loss and gradients (checked above in float64 by finite
    differences) to float32 accuracy."""
    model, X, y, sw, value, grads = check_network(NETWORKS["deep_mixed"], loss, weighted=True)
    m32 = fm.Sequential(NETWORKS["deep_mixed"](), input_dim=4, dtype="float32", seed=0)
    m32.compile(loss=loss)
    m32.set_weights([w.astype(np.float32) for w in model.get_weights()])
    X32 = X.astype(np.float32)
    # The fixed data keep every unit clear of its kink in float32 too (else the test is moot).
    assert clear_of_kinks(m32, X32.astype(np.float64), y)
    v32, g32 = m32.loss_and_gradients(X32, y, sample_weight=sw)
    assert all(g.dtype == np.float32 for g in g32)
    assert v32 == pytest.approx(value, rel=1e-5)
    for a, b in zip(g32, grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * max(1.0, np.abs(b).max()))
