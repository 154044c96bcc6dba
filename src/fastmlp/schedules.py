"""Learning-rate schedules, applied between epochs.

The compiled engine runs a whole epoch per C call, so a schedule sets the learning rate once
per epoch (per-epoch granularity): epoch ``t`` (0-based) trains with ``schedule(t, base_lr)``.
Names, arguments and defaults follow ``torch.optim.lr_scheduler``; the values are the closed
forms of PyTorch's schedulers when ``scheduler.step()`` is called once per epoch.

Use one with any optimizer (they all have a mutable ``lr``)::

    model.fit(X, y, epochs=30, lr_schedule=fm.schedules.CosineAnnealingLR(T_max=30))
    # or, the same: callbacks=[fm.LearningRateScheduler(fm.schedules.CosineAnnealingLR(30))]

* ``t`` counts the model's epochs (``history.epoch``): calling ``fit(epochs=10)`` twice
  follows the same schedule as ``fit(epochs=20)`` once.
* ``base_lr`` is the optimizer's initial learning rate: as in PyTorch, the first schedule
  attached to an optimizer records ``optimizer.initial_lr = optimizer.lr`` and every schedule
  then starts from it (so restarting a schedule does not compound). Give ``base_lr=...`` to a
  schedule to override it.
* ``history["lr"]`` holds the rate each epoch trained with.
* Rprop adapts its own per-weight steps; its ``lr`` only sets their initial value, so a
  schedule changes nothing after the first epoch.

``ReduceLROnPlateau`` depends on a monitored value rather than the epoch: it is a callback
(``fastmlp.ReduceLROnPlateau``, re-exported here) and may also be passed as ``lr_schedule``.
"""
import bisect
import math
import numbers

__all__ = [
    "LRSchedule", "Constant", "ConstantLR", "LinearLR", "StepLR", "MultiStepLR", "ExponentialLR",
    "InverseScalingLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
    "SequentialLR", "ReduceLROnPlateau", "LearningRateScheduler",
]


def _int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(value, name, low=0.0, high=math.inf, low_open=False):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < low or value > high or (low_open and value == low)):
        bound = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high < math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


class LRSchedule:
    """Base class: ``schedule(epoch, base_lr)`` is the learning rate of 0-based `epoch`.

    Subclasses implement ``factor(epoch, base_lr)`` or override ``__call__``; both are pure
    functions of the epoch (no hidden state), so any epoch can be asked for in any order.
    """

    base_lr = None

    def __call__(self, epoch, base_lr=None):
        epoch = _int(epoch, "epoch", 0)
        if base_lr is None:
            base_lr = self.base_lr
        if base_lr is None:
            raise ValueError(f"{type(self).__name__} needs a base learning rate: call it as "
                             "schedule(epoch, base_lr) or give base_lr=... when creating it.")
        return float(self._lr(epoch, float(base_lr)))

    def _lr(self, epoch, base_lr):
        raise NotImplementedError

    def values(self, epochs, base_lr=None):
        """The learning rates of epochs 0 .. epochs-1 (e.g. to plot a schedule)."""
        return [self(t, base_lr) for t in range(_int(epochs, "epochs", 0))]

    def _repr_args(self):
        return {}

    def __repr__(self):
        args = dict(self._repr_args())
        if self.base_lr is not None:
            args["base_lr"] = self.base_lr
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


class Constant(LRSchedule):
    """lr_t = base_lr: the optimizer's rate, unchanged (sklearn's learning_rate='constant')."""

    def __init__(self, base_lr=None):
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base


class ConstantLR(LRSchedule):
    """PyTorch's ConstantLR: lr_t = base_lr * factor for t < total_iters, then base_lr."""

    def __init__(self, factor=1.0 / 3, total_iters=5, base_lr=None):
        self.factor = _float(factor, "factor", 0.0, 1.0)
        self.total_iters = _int(total_iters, "total_iters", 0)
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base * self.factor if t < self.total_iters else base

    def _repr_args(self):
        return {"factor": self.factor, "total_iters": self.total_iters}


class LinearLR(LRSchedule):
    """PyTorch's LinearLR, the usual linear warm-up: the factor goes linearly from
    start_factor (epoch 0) to end_factor (epoch total_iters) and stays there:
    lr_t = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters).
    """

    def __init__(self, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, base_lr=None):
        self.start_factor = _float(start_factor, "start_factor", 0.0, 1.0, low_open=True)
        self.end_factor = _float(end_factor, "end_factor", 0.0, 1.0)
        self.total_iters = _int(total_iters, "total_iters", 1)
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        frac = min(t, self.total_iters) / self.total_iters
        return base * (self.start_factor + (self.end_factor - self.start_factor) * frac)

    def _repr_args(self):
        return {"start_factor": self.start_factor, "end_factor": self.end_factor,
                "total_iters": self.total_iters}


class StepLR(LRSchedule):
    """PyTorch's StepLR: lr_t = base_lr * gamma ** (t // step_size)."""

    def __init__(self, step_size, gamma=0.1, base_lr=None):
        self.step_size = _int(step_size, "step_size", 1)
        self.gamma = _float(gamma, "gamma")
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base * self.gamma ** (t // self.step_size)

    def _repr_args(self):
        return {"step_size": self.step_size, "gamma": self.gamma}


class MultiStepLR(LRSchedule):
    """PyTorch's MultiStepLR: lr_t = base_lr * gamma ** (number of milestones <= t).
    A milestone listed twice applies gamma twice, as in PyTorch."""

    def __init__(self, milestones, gamma=0.1, base_lr=None):
        try:
            milestones = list(milestones)
        except TypeError:
            raise ValueError(f"milestones must be a list of epochs, got {milestones!r}") from None
        self.milestones = sorted(_int(m, "each milestone", 0) for m in milestones)
        self.gamma = _float(gamma, "gamma")
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base * self.gamma ** bisect.bisect_right(self.milestones, t)

    def _repr_args(self):
        return {"milestones": self.milestones, "gamma": self.gamma}


class ExponentialLR(LRSchedule):
    """PyTorch's ExponentialLR: lr_t = base_lr * gamma ** t."""

    def __init__(self, gamma, base_lr=None):
        self.gamma = _float(gamma, "gamma")
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base * self.gamma ** t

    def _repr_args(self):
        return {"gamma": self.gamma}


class InverseScalingLR(LRSchedule):
    """sklearn's 'invscaling': lr_t = base_lr / (t * t_per_epoch + 1) ** power_t.

    With the default t_per_epoch=1 the rate of epoch t is base_lr / (t + 1) ** power_t.
    scikit-learn's MLP counts t in samples and updates the rate after each epoch: pass
    ``t_per_epoch=n_samples`` to reproduce MLPClassifier(learning_rate='invscaling')."""

    def __init__(self, power_t=0.5, t_per_epoch=1, base_lr=None):
        self.power_t = _float(power_t, "power_t")
        self.t_per_epoch = _float(t_per_epoch, "t_per_epoch", 0.0, low_open=True)
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base / (t * self.t_per_epoch + 1.0) ** self.power_t

    def _repr_args(self):
        return {"power_t": self.power_t, "t_per_epoch": self.t_per_epoch}


class PolynomialLR(LRSchedule):
    """PyTorch's PolynomialLR: lr_t = base_lr * (1 - min(t, total_iters) / total_iters) ** power."""

    def __init__(self, total_iters=5, power=1.0, base_lr=None):
        self.total_iters = _int(total_iters, "total_iters", 1)
        self.power = _float(power, "power")
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        return base * (1.0 - min(t, self.total_iters) / self.total_iters) ** self.power

    def _repr_args(self):
        return {"total_iters": self.total_iters, "power": self.power}


def _warmup_lr(t, base, warmup_epochs, start_factor):
    """Linear warm-up: base * (s + (1 - s) t / W) for t < W; s defaults to 1 / (W + 1), so the
    rates are base * (t + 1) / (W + 1) and the next epoch reaches base."""
    s = 1.0 / (warmup_epochs + 1) if start_factor is None else start_factor
    return base * (s + (1.0 - s) * t / warmup_epochs)


class _Warmup(LRSchedule):
    def _init_warmup(self, warmup_epochs, warmup_start_factor):
        self.warmup_epochs = _int(warmup_epochs, "warmup_epochs", 0)
        self.warmup_start_factor = (None if warmup_start_factor is None else
                                    _float(warmup_start_factor, "warmup_start_factor", 0.0, 1.0))

    def _lr(self, t, base):
        if t < self.warmup_epochs:
            return _warmup_lr(t, base, self.warmup_epochs, self.warmup_start_factor)
        return self._after_warmup(t - self.warmup_epochs, base)

    def _warmup_repr(self):
        args = {}
        if self.warmup_epochs:
            args["warmup_epochs"] = self.warmup_epochs
        if self.warmup_start_factor is not None:
            args["warmup_start_factor"] = self.warmup_start_factor
        return args


class CosineAnnealingLR(_Warmup):
    """PyTorch's CosineAnnealingLR (SGDR without restarts), with an optional linear warm-up.

    After warm-up, with s = t - warmup_epochs:
        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * s / T_max)) / 2
    so lr = base_lr at s = 0 and eta_min at s = T_max (beyond T_max the cosine continues, as
    in PyTorch; use CosineAnnealingWarmRestarts to restart instead).
    During warm-up (t < warmup_epochs) the rate rises linearly,
        lr_t = base_lr * (f + (1 - f) * t / warmup_epochs),  f = warmup_start_factor,
    which defaults to 1 / (warmup_epochs + 1): base_lr * (t + 1) / (warmup_epochs + 1).
    T_max counts the epochs after warm-up: train warmup_epochs + T_max epochs to end at eta_min.
    """

    def __init__(self, T_max, eta_min=0.0, warmup_epochs=0, warmup_start_factor=None,
                 base_lr=None):
        self.T_max = _int(T_max, "T_max", 1)
        self.eta_min = _float(eta_min, "eta_min")
        self._init_warmup(warmup_epochs, warmup_start_factor)
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _after_warmup(self, s, base):
        return self.eta_min + (base - self.eta_min) * (1.0 + math.cos(math.pi * s / self.T_max)) / 2

    def _repr_args(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min, **self._warmup_repr()}


class CosineAnnealingWarmRestarts(_Warmup):
    """PyTorch's CosineAnnealingWarmRestarts (SGDR, Loshchilov & Hutter 2017), with an optional
    linear warm-up (as in CosineAnnealingLR) before the first cycle.

    Cycle i lasts T_i = T_0 * T_mult ** i epochs; inside it, at epoch T_cur of the cycle,
        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    so each cycle starts (restarts) at base_lr and approaches eta_min at its end.
    """

    def __init__(self, T_0, T_mult=1, eta_min=0.0, warmup_epochs=0, warmup_start_factor=None,
                 base_lr=None):
        self.T_0 = _int(T_0, "T_0", 1)
        self.T_mult = _int(T_mult, "T_mult", 1)
        self.eta_min = _float(eta_min, "eta_min")
        self._init_warmup(warmup_epochs, warmup_start_factor)
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def cycle(self, s):
        """(T_cur, T_i) at epoch s after warm-up, in exact integer arithmetic."""
        if self.T_mult == 1:
            return s % self.T_0, self.T_0
        T_i = self.T_0
        while s >= T_i:
            s -= T_i
            T_i *= self.T_mult
        return s, T_i

    def _after_warmup(self, s, base):
        T_cur, T_i = self.cycle(s)
        return self.eta_min + (base - self.eta_min) * (1.0 + math.cos(math.pi * T_cur / T_i)) / 2

    def _repr_args(self):
        return {"T_0": self.T_0, "T_mult": self.T_mult, "eta_min": self.eta_min,
                **self._warmup_repr()}


class SequentialLR(LRSchedule):
    """PyTorch's SequentialLR: schedules[i] runs from milestones[i-1] on, its epoch counted from
    that milestone (each restarts at its own epoch 0). E.g. a warm-up then a step decay:
    ``SequentialLR([LinearLR(0.1, total_iters=3), StepLR(10)], milestones=[3])``."""

    def __init__(self, schedules, milestones, base_lr=None):
        schedules, milestones = list(schedules), list(milestones)
        if not schedules or not all(callable(s) for s in schedules):
            raise ValueError("schedules must be a non-empty list of schedules")
        if len(milestones) != len(schedules) - 1:
            raise ValueError(f"SequentialLR needs len(schedules) - 1 = {len(schedules) - 1} "
                             f"milestones, got {len(milestones)}")
        milestones = [_int(m, "each milestone", 1) for m in milestones]
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        self.schedules, self.milestones = schedules, milestones
        self.base_lr = None if base_lr is None else _float(base_lr, "base_lr")

    def _lr(self, t, base):
        i = bisect.bisect_right(self.milestones, t)
        start = self.milestones[i - 1] if i else 0
        return self.schedules[i](t - start, base)

    def _repr_args(self):
        return {"schedules": self.schedules, "milestones": self.milestones}


from .callbacks import LearningRateScheduler, ReduceLROnPlateau  # noqa: E402  (re-exports)
