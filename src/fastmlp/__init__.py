"""fastmlp: dense neural networks on the CPU, from the perceptron to deep MLPs.

The maths runs in compiled C kernels (OpenMP, float32 and float64); this package is the thin
Python API over them. See README.md for a tour.
"""
import os as _os

# OpenMP threads that spin while waiting take the CPU from busy neighbours and from each other:
# on a shared 2-core machine that made 2 threads up to 15x slower than 1. Sleeping waiters cost a
# few microseconds per parallel region instead. Must be set before libgomp loads (with _core);
# an explicit setting by the user wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

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
