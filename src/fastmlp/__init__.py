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

from . import datasets, initializers  # noqa: E402
from ._config import get_num_threads, set_num_threads
from ._layer import Layer
from .autoencoder import Autoencoder, TiedDense
from .activations import (ELU, GELU, Activation, Identity, LeakyReLU, ReLU, SiLU, Sigmoid, Sign,
                          Softmax, Softplus, Step, Tanh)
from .layers import ActivityRegularization, Dense, Dropout, GaussianNoise, Maxout, PReLU
from .linear import Adaline, LogisticRegression, Perceptron
from .losses import MSE, BinaryCrossEntropy, Hinge, Loss, PerceptronLoss, SoftmaxCrossEntropy
from .model import History, Sequential
from . import io
from .io import ModelFileError, load, save
from .optimizers import (SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RMSprop,
                         RMSProp, Rprop)

__version__ = "0.1.0"

__all__ = [
    "Activation", "ActivityRegularization", "Autoencoder", "TiedDense", "Dropout", "GaussianNoise", "Maxout", "Adadelta", "Adagrad", "Adaline", "Adam", "Adamax", "AdamW", "NAdam",
    "RMSProp", "RMSprop", "Rprop", "BinaryCrossEntropy", "Dense", "ELU", "GELU", "Hinge", "History",
    "Identity", "Layer", "LeakyReLU", "LogisticRegression", "Loss", "MSE", "Optimizer", "PReLU",
    "Perceptron", "PerceptronLoss", "ReLU", "SGD", "Sequential", "SiLU", "Sigmoid", "Sign",
    "Softmax", "SoftmaxCrossEntropy", "Softplus", "Step", "Tanh", "datasets", "get_num_threads",
    "initializers", "set_num_threads",
]
__all__ += ["ModelFileError", "io", "load", "save"]
from . import callbacks, metrics, schedules  # noqa: E402
from .callbacks import (Callback, CSVLogger, EarlyStopping, LambdaCallback,  # noqa: E402
                        LearningRateScheduler, ModelCheckpoint, ProgressBar, ReduceLROnPlateau,
                        TerminateOnNaN)
__all__ += ["CSVLogger", "Callback", "EarlyStopping", "LambdaCallback", "LearningRateScheduler",
            "ModelCheckpoint", "ProgressBar", "ReduceLROnPlateau", "TerminateOnNaN", "callbacks",
            "metrics", "schedules"]
