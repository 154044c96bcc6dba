"""fastmlp: dense neural networks on the CPU, from the perceptron to deep MLPs.

The maths runs in compiled C kernels (OpenMP, float32 and float64); this package is the thin
Python API over them. See README.md for a tour.
"""
import os as _os

# OpenMP workers that spin indefinitely take the CPU from busy neighbours and from each other
# (on a shared 2-core machine, 2 threads ran up to 15x slower than 1), while workers that sleep
# at once pay a wake-up per parallel region (2 threads then gained nothing). A bounded spin
# keeps workers hot between the regions of a training step and lets them sleep soon after;
# fit's thread tuner falls back to 1 thread when a neighbour makes 2 slower. Must be set before
# libgomp loads (with _core); an explicit setting by the user wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "30000"

from . import callbacks, datasets, initializers, io, metrics, schedules  # noqa: E402
from ._config import get_num_threads, set_num_threads  # noqa: E402
from ._layer import Layer  # noqa: E402
from .activations import (ELU, GELU, Activation, Identity, LeakyReLU, ReLU, SiLU,  # noqa: E402
                          Sigmoid, Sign, Softmax, Softplus, Step, Tanh)
from .autoencoder import Autoencoder, TiedDense  # noqa: E402
from .callbacks import (Callback, CSVLogger, EarlyStopping, LambdaCallback,  # noqa: E402
                        LearningRateScheduler, ModelCheckpoint, ProgressBar, ReduceLROnPlateau,
                        TerminateOnNaN)
from .io import ModelFileError, load, save  # noqa: E402
from .layers import (ActivityRegularization, Dense, Dropout, GaussianNoise, Maxout,  # noqa: E402
                     PReLU)
from .linear import Adaline, LogisticRegression, Perceptron  # noqa: E402
from .losses import (MSE, BinaryCrossEntropy, Hinge, Loss, PerceptronLoss,  # noqa: E402
                     SoftmaxCrossEntropy)
from .model import History, Sequential  # noqa: E402
from .optimizers import (SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam,  # noqa: E402
                         Optimizer, RMSprop, RMSProp, Rprop)

__version__ = "0.1.0"

__all__ = [
    # layers and activations
    "Layer", "Dense", "Maxout", "PReLU", "Dropout", "GaussianNoise", "ActivityRegularization",
    "TiedDense", "Activation", "Identity", "Step", "Sign", "Sigmoid", "Tanh", "ReLU",
    "LeakyReLU", "ELU", "Softplus", "SiLU", "GELU", "Softmax",
    # losses
    "Loss", "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "PerceptronLoss", "Hinge",
    # optimizers
    "Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "RMSProp", "Adam", "AdamW", "Adamax",
    "NAdam", "Rprop",
    # models
    "Sequential", "History", "Autoencoder", "Perceptron", "Adaline", "LogisticRegression",
    # training loop
    "Callback", "EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "TerminateOnNaN",
    "CSVLogger", "ProgressBar", "LambdaCallback", "LearningRateScheduler",
    # saving, threads, submodules
    "save", "load", "ModelFileError", "get_num_threads", "set_num_threads",
    "callbacks", "datasets", "initializers", "io", "metrics", "schedules",
]
