"""Every optimizer against a NumPy reference of its formulas over many steps, state save/restore,
and each optimizer inside the compiled engine equal to the layer-by-layer path."""
import numpy as np
import pytest

import fastmlp as fm
import reference as ref

CASES = [
    ("sgd", fm.SGD, dict(lr=0.1)),
    ("sgd", fm.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd", fm.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd", fm.SGD, dict(lr=0.1, momentum=0.5, dampening=0.3)),
    ("adagrad", fm.Adagrad, dict(lr=0.1)),
    ("adagrad", fm.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("adadelta", fm.Adadelta, dict(lr=1.0)),
    ("adadelta", fm.Adadelta, dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01)),
    ("rmsprop", fm.RMSprop, dict(lr=0.01)),
    ("rmsprop", fm.RMSprop, dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("rmsprop", fm.RMSprop, dict(lr=0.01, centered=True, momentum=0.5, alpha=0.9)),
    ("adam", fm.Adam, dict(lr=0.01)),
    ("adam", fm.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    ("adamw", fm.AdamW, dict(lr=0.01)),
    ("adamw", fm.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("adamax", fm.Adamax, dict(lr=0.01)),
    ("adamax", fm.Adamax, dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.01)),
    ("nadam", fm.NAdam, dict(lr=0.01)),
    ("nadam", fm.NAdam, dict(lr=0.01, momentum_decay=0.01, weight_decay=0.01)),
    ("rprop", fm.Rprop, dict(lr=0.01)),
    ("rprop", fm.Rprop, dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1))),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def gradients(rng, n, steps):
    """A gradient sequence with sign flips and a zero run, so every branch is visited."""
    gs = rng.normal(size=(steps, n))
    gs[::3] *= -1
    gs[5:7, : n // 4] = 0.0
    return gs


@pytest.mark.parametrize("kind, cls, hyper", CASES, ids=IDS)
def test_optimizer_matches_reference_formulas_over_many_steps(kind, cls, hyper):
    rng = np.random.default_rng(0)
    n, steps = 1000, 60
    p = rng.normal(size=n)
    opt = cls(**hyper)
    opt.setup(n, np.float64)
    ref_p, ref_state = p.copy(), {k: np.full(n, opt._initial(k)) for k in opt._slots}
    ref_hyper = {"weight_decay": opt.weight_decay, **hyper}  # AdamW's default decay is 0.01
    for t, g in enumerate(gradients(rng, n, steps), start=1):
        opt.step(p, g)
        ref_p = ref.optimizer_step(kind, ref_hyper, ref_p, g, ref_state, t)
        np.testing.assert_allclose(p, ref_p, rtol=1e-12, atol=1e-14, err_msg=f"step {t}")
    assert opt.iterations == steps


@pytest.mark.parametrize("kind, cls, hyper", CASES, ids=IDS)
def test_optimizer_float32_tracks_float64(kind, cls, hyper):
    rng = np.random.default_rng(1)
    n = 300
    p64 = rng.normal(size=n)
    p32 = p64.astype(np.float32)
    a, b = cls(**hyper), cls(**hyper)
    a.setup(n, np.float64)
    b.setup(n, np.float32)
    for g in gradients(rng, n, 20):
        a.step(p64, g)
        b.step(p32, g.astype(np.float32))
    np.testing.assert_allclose(p32, p64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind, cls, hyper", CASES, ids=IDS)
def test_zero_learning_rate_is_the_identity(kind, cls, hyper):
    if kind == "rprop":  # its steps start at lr but are clamped to step_sizes: use min 0
        hyper = {**hyper, "step_sizes": (0.0, hyper.get("step_sizes", (0, 50.0))[1])}
    rng = np.random.default_rng(2)
    p = rng.normal(size=50)
    before = p.copy()
    opt = cls(**{**hyper, "lr": 0.0})
    opt.setup(50, np.float64)
    for g in gradients(rng, 50, 5):
        opt.step(p, g)
    assert np.array_equal(p, before)


def make_data(n=64, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


def net(seed=0):
    return fm.Sequential([fm.Dense(12, "tanh"), fm.PReLU(), fm.Dense(3)], input_dim=6,
                         dtype="float64", seed=seed)


@pytest.mark.parametrize("kind, cls, hyper", CASES, ids=IDS)
@pytest.mark.parametrize("batch_size", [1, 16])
def test_engine_equals_layer_path_for_every_optimizer(kind, cls, hyper, batch_size):
    X, y = make_data()
    results = []
    for use_engine in (True, False):
        model = net().compile("softmax_cross_entropy", cls(**hyper))
        model._use_engine = use_engine
        model.fit(X, y, epochs=2, batch_size=batch_size)
        results.append(model)
    for a, b in zip(results[0].get_weights(), results[1].get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kind, cls, hyper", CASES, ids=IDS)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_update_fused_at_batch_1_equals_layer_path(kind, cls, hyper, n_threads):
    """At batch 1 the engine applies every rule row by row as dW = x^T dz is formed (never
    stored); a penalised Dense layer, a Maxout layer and the PReLU slopes are updated from their
    gradients afterwards. Layers wide enough that the rows are split among threads."""
    X, y = make_data(n=24, d=40)
    X *= 0.1  # SGD at lr 0.1 with momentum 0.9 diverges on this deeper net otherwise
    results = []
    for use_engine in (True, False):
        model = fm.Sequential([fm.Dense(300, "relu"), fm.Dense(40, "tanh", l2=1e-3), fm.PReLU(),
                               fm.Maxout(8, pieces=3), fm.Dense(3)], input_dim=40,
                              dtype="float64", seed=0, n_threads=n_threads)
        model.compile("softmax_cross_entropy", cls(**hyper))
        model._use_engine = use_engine
        model.fit(X, y, epochs=2, batch_size=1)
        results.append(model)
    for a, b in zip(results[0].get_weights(), results[1].get_weights()):
        assert np.array_equal(a, b)
    assert results[0].optimizer.get_state().keys() == results[1].optimizer.get_state().keys()
    for key, value in results[0].optimizer.get_state().items():
        assert np.array_equal(np.asarray(value), np.asarray(results[1].optimizer.get_state()[key]))


@pytest.mark.parametrize("kind, cls, hyper", CASES, ids=IDS)
def test_resuming_from_saved_weights_and_state_is_bit_exact(kind, cls, hyper):
    X, y = make_data()
    straight = net().compile("softmax_cross_entropy", cls(**hyper))
    straight.fit(X, y, epochs=4, batch_size=8)

    first = net().compile("softmax_cross_entropy", cls(**hyper))
    first.fit(X, y, epochs=2, batch_size=8)
    weights, state = first.get_weights(), first.optimizer.get_state()
    resumed = net(seed=99).compile("softmax_cross_entropy", cls(**hyper))
    resumed.set_weights(weights)
    resumed.optimizer.set_state(state)
    resumed._epochs_done = first._epochs_done  # the shuffle stream continues (seed differs on purpose)
    resumed.seed = first.seed
    resumed.fit(X, y, epochs=2, batch_size=8)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)


def test_adam_trains_mlp_on_digits_quickly():
    X, y = fm.datasets.load_digits()
    Xtr, Xte, ytr, yte = fm.datasets.train_test_split(X, y, 0.25, seed=0)
    model = fm.Sequential([fm.Dense(64, "relu"), fm.Dense(10)], input_dim=64, seed=0)
    model.compile("softmax_cross_entropy", fm.Adam(lr=0.003))
    model.fit(Xtr, ytr, epochs=15, batch_size=32)
    assert np.mean(model.predict(Xte).argmax(axis=1) == yte) >= 0.95


def test_rprop_full_batch_fits_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    y = np.array([0, 1, 1, 0], float)
    model = fm.Sequential([fm.Dense(4, "tanh"), fm.Dense(1, "sigmoid")], input_dim=2,
                          dtype="float64", seed=3)
    model.compile("binary_cross_entropy", fm.Rprop(lr=0.05))
    model.fit(X, y, epochs=300, batch_size=None)
    assert np.array_equal(model.predict(X)[:, 0] > 0.5, y > 0.5)


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="lr"):
        fm.Adam(lr=-1)
    with pytest.raises(ValueError, match="beta"):
        fm.Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        fm.SGD(nesterov=True)
    with pytest.raises(ValueError, match="etas"):
        fm.Rprop(etas=(1.5, 1.2))
    with pytest.raises(ValueError, match="Unknown optimizer"):
        fm.Sequential([fm.Dense(1)]).compile("mse", "adamm")
    with pytest.raises(ValueError, match="no state"):
        fm.Adam().set_state({"velocity": np.zeros(3)})
