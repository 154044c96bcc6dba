"""Sequential's contract: the two paths agree, the batch flavours, weights, dtypes, errors, threads."""
import pickle
import threading

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core
from gemm_paths import takes_rows


def make_data(n=97, d=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    return X, y


def mlp(dtype="float64", seed=0, d=7, k=3, n_threads=None):
    return fm.Sequential([fm.Dense(16, "tanh"), fm.Dense(11, "relu"), fm.Dense(k)],
                         input_dim=d, dtype=dtype, seed=seed, n_threads=n_threads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 10, None])
@pytest.mark.parametrize("shuffle", [True, False])
def test_layer_by_layer_path_equals_fit(dtype, batch_size, shuffle):
    # the engine gathers shuffled batches and reads consecutive rows (no shuffling, or one
    # batch of all the samples, which keeps X's order) in place: the same bits either way
    X, y = make_data()
    X = X.astype(dtype)
    X_before = X.copy()
    fitted = mlp(dtype).compile("softmax_cross_entropy", fm.SGD(lr=0.05, momentum=0.9))
    fitted.fit(X, y, epochs=3, batch_size=batch_size, shuffle=shuffle)
    assert np.array_equal(X, X_before)

    manual = mlp(dtype)
    opt = fm.SGD(lr=0.05, momentum=0.9)
    manual.compile("softmax_cross_entropy", opt)
    loss = fm.SoftmaxCrossEntropy()
    n = len(X)
    bs = n if batch_size is None else batch_size
    for epoch in range(3):
        order = (_core.permutation(n, manual.seed, epoch + 1) if shuffle and bs < n
                 else np.arange(n))
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            logits = manual.forward(X[idx], training=True)
            _, g = loss(logits, loss.prepare_targets(y[idx], 3, X.dtype))
            manual.backward(g)
            opt.step(manual.flat_params, manual.flat_grads)
    for a, b in zip(fitted.get_weights(), manual.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("batch_size", [10, None])
def test_regression_batches_in_place_equal_gathered_and_layer_path(batch_size):
    # targets and sample weights with consecutive rows: X and the targets read in place
    # (C-contiguous X), gathered (X a column slice of a wider array) and the layer path agree
    rng = np.random.default_rng(5)
    X = rng.normal(size=(53, 6))
    wide = np.concatenate([X, rng.normal(size=(53, 3))], axis=1)[:, :6]
    Y = rng.normal(size=(53, 2))
    sw = rng.uniform(0.5, 2.0, size=53)
    weights = []
    for data, engine in ((X, True), (wide, True), (X, False)):
        m = fm.Sequential([fm.Dense(8, "tanh"), fm.Dense(2)], input_dim=6, seed=2)
        m.compile("mse", fm.SGD(lr=0.05))
        m._use_engine = engine
        m.fit(data, Y, epochs=2, batch_size=batch_size, shuffle=False, sample_weight=sw)
        weights.append(m.get_weights())
    for others in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], others))


def test_full_batch_epoch_is_one_gradient_step():
    X, y = make_data()
    a = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.1))
    b = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.1))
    _, grads = a.loss_and_gradients(X, y)
    expected = [w - 0.1 * g for w, g in zip(a.get_weights(), grads)]
    b.fit(X, y, epochs=1, batch_size=None, shuffle=False)
    for w, e in zip(b.get_weights(), expected):
        np.testing.assert_allclose(w, e, rtol=1e-14, atol=1e-15)


def test_online_sgd_is_one_step_per_sample():
    # fit at batch 1, train_on_batch one sample at a time (the engine), and the same on the
    # layer-by-layer path: the same steps, bit for bit, and the same losses
    X, y = make_data(n=13)
    a = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.1))
    b = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.1))
    c = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.1))
    c._use_engine = False
    a.fit(X, y, epochs=1, batch_size=1, shuffle=False)
    for i in range(len(X)):
        loss_b = b.train_on_batch(X[i:i + 1], y[i:i + 1])
        loss_c = c.train_on_batch(X[i:i + 1], y[i:i + 1])
        assert loss_b == pytest.approx(loss_c, rel=1e-12)
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        assert np.array_equal(wa, wb) and np.array_equal(wa, wc)
    assert a.optimizer.iterations == b.optimizer.iterations == c.optimizer.iterations == len(X)


def test_online_steps_without_gradient_leave_the_weights_bitwise():
    # a perceptron's correctly classified samples give dz = 0: the engine's batch-1 update
    # skips them, the layer path subtracts lr * 0; the same bytes, signs of zeros included
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 5))
    X[X < -0.5] = 0.0
    t = np.where(X @ rng.normal(size=5) > 0, 1.0, -1.0)
    t[:7] *= -1  # not separable: updates all along
    weights = []
    for engine in (True, False):
        m = fm.Sequential([fm.Dense(1)], input_dim=5, seed=4)
        m.compile("perceptron", fm.SGD(lr=0.1))
        m._use_engine = engine
        m.fit(X, t, epochs=4, batch_size=1)
        weights.append(m.flat_params.tobytes())
    assert weights[0] == weights[1]


def test_train_on_batch_engine_matches_layer_path():
    # a batch step with momentum, L2 and max-norm on the engine and on the layer path; a
    # non-finite loss leaves the weights as they were on both
    X, y = make_data(n=24)
    models = []
    for engine in (True, False):
        m = fm.Sequential([fm.Dense(16, "tanh", l2=1e-3, max_norm=2.0), fm.Dense(3)],
                          input_dim=X.shape[1], seed=3, dtype="float64")
        m.compile("softmax_cross_entropy", fm.SGD(lr=0.05, momentum=0.9))
        m._use_engine = engine
        losses = [m.train_on_batch(X[s:s + 8], y[s:s + 8], sample_weight=np.linspace(0.5, 2, 8))
                  for s in (0, 8, 16, 0)]
        models.append((m, losses))
    (e, le), (p, lp) = models
    np.testing.assert_allclose(le, lp, rtol=1e-12)
    for we, wp in zip(e.get_weights(), p.get_weights()):
        np.testing.assert_allclose(we, wp, rtol=1e-12, atol=1e-14)
    for m, _ in models:
        m.layers[1].weight = np.full_like(m.layers[1].weight, 1e308)  # logits overflow
        before = m.flat_params.copy()
        with pytest.raises(FloatingPointError, match="learning rate"):
            m.train_on_batch(X[:8], y[:8])
        assert np.array_equal(m.flat_params, before)


def test_weights_are_views_of_the_flat_buffer():
    model = mlp()
    W1 = model.layers[0].weight
    assert np.shares_memory(W1, model.flat_params)
    model.layers[0].weight = np.ones_like(W1)
    assert model.flat_params[:W1.size].sum() == W1.size
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(7, 16), (16,), (16, 11), (11,), (11, 3), (3,)]
    weights[0][...] = 5  # get_weights returns copies
    assert model.layers[0].weight[0, 0] == 1
    model.set_weights(weights)
    assert model.layers[0].weight[0, 0] == 5
    with pytest.raises(ValueError, match="expected a list of 6"):
        model.set_weights(weights[:-1])
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(weights[:-1] + [np.zeros(4)])


def test_same_seed_same_model_and_training():
    X, y = make_data()
    a = mlp(seed=5).compile("softmax_cross_entropy")
    b = mlp(seed=5).compile("softmax_cross_entropy")
    c = mlp(seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    a.fit(X, y, epochs=2)
    b.fit(X, y, epochs=2)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_thread_count_does_not_change_a_single_bit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 120))
    y = rng.integers(0, 10, 600)
    results = []
    for nt in (1, 2, 3):
        model = fm.Sequential([fm.Dense(200, "relu"), fm.Dense(10)], input_dim=120,
                              dtype="float32", seed=3, n_threads=nt)
        model.compile("softmax_cross_entropy", fm.SGD(lr=0.01, momentum=0.9))
        model.fit(X, y, epochs=2, batch_size=256)
        results.append((model.get_weights(), model.predict(X)))
    for weights, pred in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0][0], weights))
        assert np.array_equal(results[0][1], pred)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_and_other_dtypes_converted(dtype):
    X, y = make_data()
    model = mlp(np.dtype(dtype).name).compile("softmax_cross_entropy")
    model.fit(X.astype(np.float16 if dtype == np.float32 else np.int64), y, epochs=1)
    assert model.flat_params.dtype == dtype
    assert model.predict(X).dtype == dtype
    assert model.predict(X.astype(np.int32)).dtype == dtype


def test_non_contiguous_input_matches_contiguous():
    X, y = make_data(n=60, d=14)
    strided = X[::2, ::2]
    fortran = np.asfortranarray(X[::2, ::2])
    model = mlp().compile("softmax_cross_entropy")
    expected = model.predict(np.ascontiguousarray(strided))
    assert np.array_equal(model.predict(strided), expected)
    assert np.array_equal(model.predict(fortran), expected)
    # Negative strides are copied; the rows then sit in other GEMM tiles, which may round
    # differently (as in any BLAS), so only closeness is promised here.
    np.testing.assert_allclose(model.predict(np.ascontiguousarray(strided)[::-1])[::-1], expected,
                               rtol=1e-13)
    l1, g1 = model.loss_and_gradients(strided, y[::2])
    l2, g2 = model.loss_and_gradients(np.ascontiguousarray(strided), y[::2])
    assert l1 == l2 and all(np.array_equal(a, b) for a, b in zip(g1, g2))


def test_softmax_last_layer_is_fused_with_cross_entropy():
    X, y = make_data()
    plain = mlp().compile("softmax_cross_entropy")
    fused = fm.Sequential([fm.Dense(16, "tanh"), fm.Dense(11, "relu"), fm.Dense(3, "softmax")],
                          input_dim=7, dtype="float64", seed=0).compile("cross_entropy")
    fused.set_weights(plain.get_weights())
    la, ga = plain.loss_and_gradients(X, y)
    lb, gb = fused.loss_and_gradients(X, y)
    assert la == lb and all(np.array_equal(a, b) for a, b in zip(ga, gb))
    np.testing.assert_allclose(plain.predict(X), fused.predict(X), rtol=1e-15)
    np.testing.assert_allclose(plain.predict(X).sum(axis=1), 1.0, rtol=1e-14)
    separate = fm.Sequential([fm.Dense(16, "tanh"), fm.Dense(11, "relu"), fm.Dense(3), fm.Softmax()],
                             input_dim=7, dtype="float64").compile("cross_entropy")
    separate.set_weights(plain.get_weights())
    lc, gc = separate.loss_and_gradients(X, y)
    assert la == lc and all(np.array_equal(a, b) for a, b in zip(ga, gc))


def test_one_hot_targets_equal_integer_labels():
    X, y = make_data()
    model = mlp().compile("softmax_cross_entropy")
    la, ga = model.loss_and_gradients(X, y)
    lb, gb = model.loss_and_gradients(X, np.eye(3)[y])
    np.testing.assert_allclose(la, lb, rtol=1e-14)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-16)


def test_integer_sample_weights_equal_repeating_samples():
    X, y = make_data(n=20)
    w = np.arange(20) % 3 + 1
    model = mlp().compile("softmax_cross_entropy")
    la, ga = model.loss_and_gradients(X, y, sample_weight=w)
    lb, gb = model.loss_and_gradients(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(la, lb, rtol=1e-13)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_regression_with_mse_and_1d_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = fm.Sequential([fm.Dense(1)], input_dim=3, dtype="float64", seed=0)
    model.compile("mse", fm.SGD(lr=0.1))
    model.fit(X, y, epochs=200, batch_size=None)
    np.testing.assert_allclose(model.layers[0].weight[:, 0], [1.0, -2.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(model.layers[0].bias, [0.3], atol=1e-6)
    assert model.evaluate(X, y) < 1e-10


def test_history_and_validation_loss():
    X, y = make_data()
    model = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.05))
    history = model.fit(X, y, epochs=4, validation_data=(X[:20], y[:20]))
    assert len(history["loss"]) == 4 and len(history["val_loss"]) == 4
    assert history["val_loss"][-1] == model.evaluate(X[:20], y[:20])
    assert history.epoch == [0, 1, 2, 3]
    more = model.fit(X, y, epochs=1)
    assert more.epoch == [4]  # continuing training draws new shuffles


def test_pickle_round_trip_keeps_flat_views():
    X, y = make_data()
    model = mlp().compile("softmax_cross_entropy", fm.SGD(lr=0.05, momentum=0.9))
    model.fit(X, y, epochs=2)
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.predict(X), model.predict(X))
    assert np.shares_memory(clone.layers[0].weight, clone.flat_params)
    model.fit(X, y, epochs=1)
    clone.fit(X, y, epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), clone.get_weights()))


def test_flat_buffers_start_on_a_cache_line(tmp_path):
    # the GEMM reads weight rows in place as 64-byte vectors; unaligned, each load straddles lines
    def aligned(m):
        return (m.flat_params.ctypes.data % 64 == 0 and m._grads.ctypes.data % 64 == 0
                and all(layer.weight.ctypes.data % 64 == 0 for layer in m.layers))
    for dtype in ("float32", "float64"):
        model = fm.Sequential([fm.Dense(16, "relu"), fm.Dense(3)], input_dim=7, dtype=dtype, seed=0)
        model.compile("softmax_cross_entropy")
        assert aligned(model)
        assert aligned(pickle.loads(pickle.dumps(model)))
        model.save(tmp_path / f"m_{dtype}.fmlp")
        assert aligned(fm.load(tmp_path / f"m_{dtype}.fmlp"))


def test_predict_from_many_threads_at_once():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 50)).astype(np.float32)
    model = fm.Sequential([fm.Dense(64, "relu"), fm.Dense(10)], input_dim=50, seed=0, n_threads=1)
    model.compile("softmax_cross_entropy")
    chunks = [X[i::8] for i in range(8)]
    expected = [model.predict(c) for c in chunks]
    results = [None] * 8

    def work(i):
        for _ in range(20):
            out = model.predict(chunks[i])
            if not np.array_equal(out, expected[i]):
                results[i] = False
                return
        results[i] = True

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results)


@pytest.mark.parametrize("use_engine", [True, False])
def test_divergence_raises_and_keeps_finite_weights(use_engine):
    X, y = make_data()
    model = mlp().compile("mse", fm.SGD(lr=1e6))
    model._use_engine = use_engine
    with pytest.raises(FloatingPointError, match="learning rate"):
        model.fit(X * 1e3, np.eye(3)[y] * 1e3, epochs=50)
    assert np.all(np.isfinite(model.flat_params))


@pytest.mark.parametrize("bad, message", [
    (np.zeros(7), "Expected 2D array"),
    (np.zeros((2, 7, 1)), "Expected <= 2"),
    (np.zeros((0, 7)), "0 sample"),
    (np.zeros((3, 5)), "3 samples|5 features"),
    (np.array([[np.nan] * 7]), "NaN"),
    (np.array([[np.inf] * 7]), "infinity"),
    (np.array([["a"] * 7]), "numbers"),
])
def test_bad_X_is_rejected_clearly(bad, message):
    model = mlp().compile("softmax_cross_entropy")
    with pytest.raises(ValueError, match=message):
        model.predict(bad)
    with pytest.raises(ValueError, match=message):
        model.fit(bad, np.zeros(len(bad), int))


def test_bad_targets_and_settings_are_rejected_clearly():
    X, y = make_data()
    model = mlp().compile("softmax_cross_entropy")
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"Class labels must be in \[0, 3\)"):
        model.fit(X, y + 1)
    with pytest.raises(ValueError, match="integer class labels"):
        model.fit(X, y.astype(str))
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, y, batch_size=0)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(X, y, epochs=-1)
    with pytest.raises(ValueError, match="Unknown activation 'relux'"):
        fm.Dense(3, activation="relux")
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile(loss="cross_entropyy")
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, y, sample_weight=np.ones(3))
    mse = mlp().compile("mse")
    with pytest.raises(ValueError, match="3 output"):
        mse.fit(X, y)


def test_use_before_build_or_compile():
    X, y = make_data()
    with pytest.raises(RuntimeError, match="not fitted yet"):
        fm.Sequential([fm.Dense(3)]).predict(X)
    with pytest.raises(RuntimeError, match="compile"):
        fm.Sequential([fm.Dense(3)]).fit(X, y)
    lazy = fm.Sequential([fm.Dense(5, "relu"), fm.Dense(3)], seed=0).compile("cross_entropy")
    lazy.fit(X, y, epochs=1)
    assert lazy.input_dim == 7 and lazy.n_params == 7 * 5 + 5 + 5 * 3 + 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_equals_layer_path_on_sparse_pixels(dtype):
    """Inputs as sparse as MNIST pixels at batch 32 send the first layer's weight gradient down
    the GEMM's row path (with plain SGD the engine fuses the update into it and skips blank
    pixels); the two paths still give the same bits."""
    rng = np.random.default_rng(7)
    X = (rng.random((160, 300)) < 0.2) * rng.random((160, 300))
    X[:, rng.random(300) < 0.3] = 0.0  # pixels blank in every image
    X = X.astype(dtype)
    y = rng.integers(0, 10, 160)
    if _core.gemm_kernel_name(dtype) in ("avx512", "avx2"):  # X^T dZ, dZ 32 x 128
        assert takes_rows(np.ascontiguousarray(X[:32]).T, np.empty((32, 128), dtype))
    weights = []
    for use_engine in (True, False):
        model = fm.Sequential([fm.Dense(128, "relu"), fm.Dense(10)], input_dim=300, dtype=dtype,
                              seed=3)
        model.compile("softmax_cross_entropy", fm.SGD(lr=0.05))
        model._use_engine = use_engine
        model.fit(X, y, epochs=2, batch_size=32)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


ENGINE_NETS = {
    "dense-relu-softmax-fused": (lambda: [fm.Dense(9, "relu", l2=0.01), fm.Dense(3, "softmax")],
                                 "softmax_cross_entropy"),
    "prelu-activation-layers": (lambda: [fm.Dense(8), fm.PReLU(), fm.Dense(6, use_bias=False, l1=0.001),
                                         fm.Tanh(), fm.Dense(3), fm.Softmax()], "cross_entropy"),
    "sigmoid-bce": (lambda: [fm.Dense(5, fm.Sigmoid(T=2.0)), fm.Dense(3, "sigmoid")],
                    "binary_cross_entropy"),
    "mse-elu": (lambda: [fm.Dense(10, "elu"), fm.LeakyReLU(0.1), fm.Dense(3)], "mse"),
    "hinge": (lambda: [fm.Dense(6, "gelu"), fm.Dense(3)], "hinge"),
}


@pytest.mark.parametrize("name", sorted(ENGINE_NETS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 16, None])
def test_compiled_engine_equals_layer_by_layer_path(name, dtype, batch_size):
    make_layers, loss = ENGINE_NETS[name]
    X, labels = make_data(n=45)
    rng = np.random.default_rng(1)
    y = {"mse": rng.normal(size=(45, 3)), "binary_cross_entropy": (rng.random((45, 3)) > 0.5) * 1.0,
         "hinge": np.where(rng.random((45, 3)) > 0.5, 1.0, -1.0)}.get(loss, labels)
    w = rng.random(45)
    models = []
    for use_engine in (True, False):
        model = fm.Sequential(make_layers(), input_dim=7, dtype=dtype, seed=4)
        model.compile(loss, fm.SGD(lr=0.01, momentum=0.9, nesterov=True))
        model._use_engine = use_engine
        history = model.fit(X, y, epochs=2, batch_size=batch_size, sample_weight=w)
        models.append((model, history))
    (engine, h_engine), (python, h_python) = models
    for a, b in zip(engine.get_weights(), python.get_weights()):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(h_engine["loss"], h_python["loss"], rtol=1e-6 if dtype == "float32" else 1e-12)
    assert engine.optimizer.iterations == python.optimizer.iterations
    for method in ("predict", "predict_raw"):
        np.testing.assert_allclose(getattr(engine, method)(X), getattr(python, method)(X),
                                   rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [2, 17, 64, 190, 384, 390, 500])
def test_sgd_fused_into_the_weight_gradient_gemm_equals_layer_path(dtype, batch_size):
    # Plain SGD is applied inside the dW GEMM (W := W - lr x^T dz) when the product is formed in
    # one k block; the shapes here visit the GEMM's blocked, swapped, narrow and dot paths and
    # batches on both sides of the k-block limit. The last batch (600 % batch_size rows) may
    # take a larger k block than a full one (f32: 390 rows are two blocks of 200, the last 210
    # in one block): the workspace sized for the full batch must hold it.
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 100))
    y = rng.integers(0, 10, 600)
    results = []
    for use_engine in (True, False):
        model = fm.Sequential([fm.Dense(300, "relu"), fm.Dense(64, "tanh"), fm.Dense(10)],
                              input_dim=100, dtype=dtype, seed=3)
        model.compile("softmax_cross_entropy", fm.SGD(lr=0.05))
        model._use_engine = use_engine
        model.fit(X, y, epochs=1, batch_size=batch_size)
        results.append(model.get_weights())
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_finiteness_check_has_no_false_alarm_on_huge_finite_values():
    X = np.full((4, 7), 3e38, np.float32)  # the fast check's sum overflows; the data are finite
    model = mlp("float32").compile("softmax_cross_entropy")
    with np.errstate(over="raise", invalid="raise"):  # and no floating-point warning escapes
        assert model.predict(X).shape == (4, 3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_fast_path_matches_the_general_path_and_checks_inputs(dtype):
    """predict's fast path (a _core.Predictor, made by the first predict) takes arrays that
    need no conversion; everything else, and every error, goes through the general path."""
    X, y = make_data(n=300)
    X = X.astype(dtype)
    X[:, 2] = 0.0  # zero inputs: the GEMM skips them
    model = mlp(dtype).compile("softmax_cross_entropy")
    model.fit(X, y, epochs=1, batch_size=32)
    assert model._fast_predict is None
    want = model.predict(X)  # general path; makes the fast path
    want_raw = model.predict_raw(X)
    assert model._fast_predict is not None
    model._use_engine = False
    assert np.allclose(model.predict(X), want, rtol=1e-5, atol=1e-6)
    model._use_engine = True
    other = "float64" if dtype == "float32" else "float32"
    for rows, view in [(slice(None), X), (slice(None), np.asfortranarray(X)),
                       (slice(None, None, 3), X[::3]), (slice(5, 6), X[5:6]),
                       (slice(None, None, -1), X[::-1]), (slice(None), X.astype(other)),
                       (slice(0, 4), X[:4].tolist())]:
        got = model.predict(view)
        assert got.dtype == np.dtype(dtype) and got.flags.c_contiguous
        assert np.allclose(got, want[rows], rtol=1e-5, atol=1e-7)
        if view is X:
            assert np.array_equal(got, want)  # the same engine call, the same bits
    assert np.array_equal(model.predict_raw(X), want_raw)
    for value, message in [(np.nan, "contains NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]:
        bad = X.copy()
        bad[123, 4] = value
        with pytest.raises(ValueError, match=message):
            model.predict(bad)
        with pytest.raises(ValueError, match=message):
            model.predict_raw(bad[123:124])
    # several chunks (each checked just before it is predicted): the general path's bits; a
    # NaN in the last chunk still raises
    big = np.tile(X, (9, 1))
    assert len(big) > 2 * model._PREDICT_CHUNK
    model._use_engine = True
    got = model.predict(big)
    general = model._predict_engine(big, raw=False)
    assert np.array_equal(got, general)
    assert np.allclose(got[300:600], want, rtol=1e-5, atol=1e-7)  # other m, other GEMM path
    big[-1, 0] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        model.predict(big)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :6])
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(X[:0])
    # new weights are read by the fast path; compile drops it
    model.set_weights([w * 0.5 for w in model.get_weights()])
    halved = model.predict(X)
    model._use_engine = False
    assert np.allclose(model.predict(X), halved, rtol=1e-5, atol=1e-6)
    model._use_engine = True
    assert not np.allclose(halved, want)
    model.compile("softmax_cross_entropy")
    assert model._fast_predict is None
    assert np.array_equal(model.predict(X), halved)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_kernel(dtype):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(37, 53)).astype(dtype)
    X[5, 7] = np.finfo(dtype).max  # huge but finite
    X[6, 8] = -0.0
    X[7, 9] = np.finfo(dtype).tiny / 4  # subnormal
    model = fm.Sequential([fm.Dense(4)], input_dim=53, dtype=dtype).compile("mse")
    model.predict(X)  # makes the fast path, which checks with fm_all_finite in C
    for value in (np.nan, np.inf, -np.inf):
        for r, c in [(0, 0), (36, 52), (20, 31)]:
            bad = X.copy()
            bad[r, c] = value
            for view in (bad, np.asfortranarray(bad), bad[r:r + 1]):
                assert model._fast_predict(view, False, 1) is None
        assert model._fast_predict(X, False, 1) is not None
