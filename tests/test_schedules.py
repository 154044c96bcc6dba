"""Learning-rate schedules: exact values against closed forms and against PyTorch's recursive
(chainable) update rules written out here, and their use in fit with every optimizer."""
import math

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import schedules as S

BASE = 0.1


def torch_recursive(schedule_step, epochs, base=BASE):
    """Run a PyTorch-style chainable rule: lr_0 = first(base), lr_t = step(t, lr_{t-1})."""
    first, step = schedule_step
    lrs = [first(base)]
    for t in range(1, epochs):
        lrs.append(step(t, lrs[-1], base))
    return lrs


# ---- closed forms ----
def test_constant():
    assert S.Constant().values(5, BASE) == [BASE] * 5
    assert S.Constant(base_lr=0.3).values(3) == [0.3] * 3


def test_constant_lr_pytorch():
    # torch ConstantLR(factor=0.5, total_iters=3): lr*factor for t < 3, then lr
    assert S.ConstantLR(0.5, 3).values(6, 1.0) == [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]


def test_step_lr():
    s = S.StepLR(step_size=3, gamma=0.5)
    assert s.values(8, 1.0) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    # torch StepLR.get_lr: lr unchanged unless t % step_size == 0 (t > 0), then lr * gamma
    rule = (lambda b: b, lambda t, lr, b: lr * 0.5 if t % 3 == 0 else lr)
    np.testing.assert_allclose(s.values(20, BASE), torch_recursive(rule, 20), rtol=1e-15)


def test_multistep_lr():
    s = S.MultiStepLR(milestones=[5, 2, 7], gamma=0.1)  # any order, as torch (a Counter)
    lrs = s.values(9, 1.0)
    expected = [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    # a repeated milestone applies gamma twice (torch: gamma ** count)
    assert S.MultiStepLR([2, 2], 0.5).values(4, 1.0) == [1, 1, 0.25, 0.25]
    rule = (lambda b: b, lambda t, lr, b: lr * 0.1 ** [2, 5, 7].count(t))
    np.testing.assert_allclose(s.values(12, BASE), torch_recursive(rule, 12), rtol=1e-14)


def test_exponential_lr():
    s = S.ExponentialLR(gamma=0.9)
    assert s.values(4, 2.0) == [2.0, 2.0 * 0.9, 2.0 * 0.9 ** 2, 2.0 * 0.9 ** 3]
    rule = (lambda b: b, lambda t, lr, b: lr * 0.9)
    np.testing.assert_allclose(s.values(30, BASE), torch_recursive(rule, 30), rtol=1e-13)


def test_inverse_scaling():
    s = S.InverseScalingLR(power_t=0.5)
    assert s.values(4, 1.0) == [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 0.5]
    # sklearn MLP: after each epoch, learning_rate_init / (t_ + 1) ** power_t with t_ the
    # number of samples seen; epoch 0 uses learning_rate_init
    n = 150
    sk = S.InverseScalingLR(power_t=0.25, t_per_epoch=n)
    expected = [0.01] + [0.01 / (e * n + 1) ** 0.25 for e in range(1, 6)]
    np.testing.assert_allclose(sk.values(6, 0.01), expected, rtol=1e-15)


def test_linear_lr_warmup_pytorch():
    s = S.LinearLR(start_factor=0.25, end_factor=1.0, total_iters=4)
    np.testing.assert_allclose(s.values(7, 1.0), [0.25, 0.4375, 0.625, 0.8125, 1, 1, 1])

    # torch LinearLR.get_lr (chainable form)
    def step(t, lr, b, sf=0.25, ef=1.0, T=4):
        if t > T:
            return lr
        return lr * (1.0 + (ef - sf) / (T * sf + (t - 1) * (ef - sf)))
    rule = (lambda b: b * 0.25, step)
    np.testing.assert_allclose(s.values(10, BASE), torch_recursive(rule, 10), rtol=1e-14)


def test_polynomial_lr():
    s = S.PolynomialLR(total_iters=4, power=2.0)
    assert s.values(6, 1.0) == [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]


def torch_cosine_rule(T_max, eta_min):
    """torch CosineAnnealingLR.get_lr, the recursive form."""
    def step(t, lr, base):
        if (t - 1 - T_max) % (2 * T_max) == 0:
            return lr + (base - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
        return ((1 + math.cos(math.pi * t / T_max)) / (1 + math.cos(math.pi * (t - 1) / T_max))
                * (lr - eta_min) + eta_min)
    return (lambda b: b, step)


def test_cosine_annealing_closed_form_and_pytorch():
    T_max, eta_min = 10, 0.001
    s = S.CosineAnnealingLR(T_max=T_max, eta_min=eta_min)
    lrs = s.values(25, BASE)
    for t, lr in enumerate(lrs):
        assert lr == pytest.approx(eta_min + (BASE - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2,
                                   rel=1e-15)
    assert lrs[0] == BASE and lrs[T_max] == pytest.approx(eta_min, rel=1e-15)
    assert lrs[T_max // 2] == pytest.approx((BASE + eta_min) / 2, rel=1e-15)
    np.testing.assert_allclose(lrs, torch_recursive(torch_cosine_rule(T_max, eta_min), 25),
                               rtol=1e-12)


def test_cosine_warmup_boundaries():
    W, T_max = 4, 6
    s = S.CosineAnnealingLR(T_max=T_max, eta_min=0.0, warmup_epochs=W)
    lrs = s.values(W + T_max + 1, 1.0)
    # warm-up: (t + 1) / (W + 1) for t < W, then the cosine starts at base_lr at t = W
    assert lrs[:W] == pytest.approx([1 / 5, 2 / 5, 3 / 5, 4 / 5], rel=1e-15)
    assert lrs[W] == 1.0
    assert lrs[W + 1] == pytest.approx((1 + math.cos(math.pi / T_max)) / 2, rel=1e-15)
    assert lrs[W + T_max] == pytest.approx(0.0, abs=1e-16)
    # an explicit start factor: base * (f + (1 - f) t / W)
    s2 = S.CosineAnnealingLR(T_max=T_max, warmup_epochs=2, warmup_start_factor=0.0)
    assert s2.values(3, 1.0) == [0.0, 0.5, 1.0]
    # the same as torch's SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W])
    seq = S.SequentialLR([S.LinearLR(1 / (W + 1), 1.0, W), S.CosineAnnealingLR(T_max)], [W])
    np.testing.assert_allclose(seq.values(15, 1.0), s.values(15, 1.0), rtol=1e-15)


def torch_warm_restarts(T_0, T_mult, eta_min, epochs, base):
    """torch CosineAnnealingWarmRestarts.step(): T_cur += 1; if T_cur >= T_i: restart."""
    lrs, T_cur, T_i = [], 0, T_0
    for _ in range(epochs):
        lrs.append(eta_min + (base - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2)
        T_cur += 1
        if T_cur >= T_i:
            T_cur -= T_i
            T_i *= T_mult
    return lrs


@pytest.mark.parametrize("T_0, T_mult", [(3, 1), (2, 2), (1, 3), (5, 2)])
def test_cosine_warm_restarts_pytorch(T_0, T_mult):
    s = S.CosineAnnealingWarmRestarts(T_0=T_0, T_mult=T_mult, eta_min=0.01)
    np.testing.assert_allclose(s.values(60, BASE), torch_warm_restarts(T_0, T_mult, 0.01, 60, BASE),
                               rtol=1e-14)


def test_cosine_warm_restarts_boundaries():
    s = S.CosineAnnealingWarmRestarts(T_0=2, T_mult=2, eta_min=0.0)
    lrs = s.values(15, 1.0)
    # cycles [0, 2), [2, 6), [6, 14), [14, 30): base_lr at each restart
    for restart in (0, 2, 6, 14):
        assert lrs[restart] == 1.0
    assert lrs[1] == pytest.approx(0.5, rel=1e-15)                  # T_cur = 1 of T_i = 2
    assert lrs[5] == pytest.approx((1 + math.cos(3 * math.pi / 4)) / 2, rel=1e-15)  # 3 of 4
    assert lrs[13] == pytest.approx((1 + math.cos(7 * math.pi / 8)) / 2, rel=1e-15)  # 7 of 8
    assert s.cycle(13) == (7, 8) and s.cycle(14) == (0, 16)
    # with warm-up: the first cycle starts after it
    w = S.CosineAnnealingWarmRestarts(T_0=2, T_mult=2, warmup_epochs=3)
    lw = w.values(10, 1.0)
    assert lw[:3] == pytest.approx([0.25, 0.5, 0.75], rel=1e-15)
    assert lw[3:] == pytest.approx(lrs[:7], rel=1e-15)


def test_sequential_lr():
    seq = S.SequentialLR([S.ConstantLR(0.1, 100), S.StepLR(2, 0.5), S.Constant()], [3, 7])
    assert seq.values(10, 1.0) == pytest.approx([0.1, 0.1, 0.1, 1, 1, 0.5, 0.5, 1, 1, 1])


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(0)
    with pytest.raises(ValueError, match="T_mult"):
        S.CosineAnnealingWarmRestarts(2, T_mult=0)
    with pytest.raises(ValueError, match="gamma"):
        S.ExponentialLR(-1)
    with pytest.raises(ValueError, match="milestones"):
        S.SequentialLR([S.Constant(), S.Constant()], [])
    with pytest.raises(ValueError, match="base learning rate"):
        S.StepLR(2)(3)
    assert S.StepLR(2, base_lr=1.0)(3) == 0.1
    assert repr(S.CosineAnnealingLR(5, warmup_epochs=2)) == \
        "CosineAnnealingLR(T_max=5, eta_min=0.0, warmup_epochs=2)"


# ---- in fit ----
def data(n=60, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def model(optimizer, seed=0):
    m = fm.Sequential([fm.Dense(8, "tanh"), fm.Dense(3)], input_dim=5, dtype="float64", seed=seed)
    return m.compile("softmax_cross_entropy", optimizer)


OPTIMIZERS = [lambda: fm.SGD(lr=0.05, momentum=0.9), lambda: fm.Adam(lr=0.01),
              lambda: fm.AdamW(lr=0.01), lambda: fm.Adagrad(lr=0.05), lambda: fm.Adadelta(lr=1.0),
              lambda: fm.RMSprop(lr=0.01), lambda: fm.Adamax(lr=0.01), lambda: fm.NAdam(lr=0.01),
              lambda: fm.Rprop(lr=0.01)]


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_fit_applies_schedule_with_every_optimizer(make_opt):
    X, y = data()
    schedule = S.StepLR(step_size=2, gamma=0.5)
    scheduled = model(make_opt())
    base = scheduled.optimizer.lr
    history = scheduled.fit(X, y, epochs=5, batch_size=16, lr_schedule=schedule)
    assert history["lr"] == schedule.values(5, base)
    assert scheduled.optimizer.initial_lr == base
    # the same as setting the rate by hand before each one-epoch fit
    manual = model(make_opt())
    for t in range(5):
        manual.optimizer.lr = base * 0.5 ** (t // 2)
        manual.fit(X, y, epochs=1, batch_size=16)
    for a, b in zip(scheduled.get_weights(), manual.get_weights()):
        assert np.array_equal(a, b)


def test_schedule_counts_model_epochs_across_fit_calls():
    X, y = data()
    once, twice = model(fm.SGD(lr=0.1)), model(fm.SGD(lr=0.1))
    h = once.fit(X, y, epochs=6, lr_schedule=S.CosineAnnealingLR(6))
    h1 = twice.fit(X, y, epochs=3, lr_schedule=S.CosineAnnealingLR(6))
    h2 = twice.fit(X, y, epochs=3, lr_schedule=S.CosineAnnealingLR(6))  # base stays 0.1
    assert h["lr"] == h1["lr"] + h2["lr"]
    assert h2.epoch == [3, 4, 5]
    for a, b in zip(once.get_weights(), twice.get_weights()):
        assert np.array_equal(a, b)


def test_function_schedules_and_callback_form():
    X, y = data()
    m = model(fm.SGD(lr=0.1))
    h = m.fit(X, y, epochs=3, lr_schedule=lambda epoch: 0.1 / (epoch + 1))
    assert h["lr"] == [0.1, 0.05, 0.1 / 3]
    # Keras form f(epoch, lr): lr is the current rate
    h = m.fit(X, y, epochs=3, callbacks=[fm.LearningRateScheduler(lambda epoch, lr: lr * 0.5)])
    assert h["lr"] == [0.1 / 6, 0.1 / 12, 0.1 / 24]
    with pytest.raises(ValueError, match="learning rate"):
        m.fit(X, y, epochs=1, lr_schedule=lambda epoch: float("nan"))
    assert fm.schedules.ReduceLROnPlateau is fm.ReduceLROnPlateau


def test_without_schedule_lr_is_logged_and_unchanged():
    X, y = data()
    m = model(fm.Adam(lr=0.003))
    assert m.fit(X, y, epochs=3)["lr"] == [0.003] * 3
