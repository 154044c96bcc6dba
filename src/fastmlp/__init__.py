"""fastmlp: dense neural networks on the CPU, from the perceptron to deep MLPs.

The maths runs in compiled C kernels (OpenMP, float32 and float64); this package is the thin
Python API over them. See README.md for a tour.
"""
from . import datasets, initializers
from ._config import get_num_threads, set_num_threads
from ._layer import Layer
from .activations import (ELU, GELU, Activation, Identity, LeakyReLU, ReLU, SiLU, Sigmoid, Sign,
                          Softmax, Softplus, Step, Tanh)
from .layers import Dense, PReLU
from .linear import Adaline, LogisticRegression, Perceptron
from .losses import MSE, BinaryCrossEntropy, Hinge, Loss, PerceptronLoss, SoftmaxCrossEntropy
from .model import History, Sequential
from .optimizers import (SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RMSprop,
                         RMSProp, Rprop)

__version__ = "0.1.0"

__all__ = [
    "Activation", "Adadelta", "Adagrad", "Adaline", "Adam", "Adamax", "AdamW", "NAdam",
    "RMSProp", "RMSprop", "Rprop", "BinaryCrossEntropy", "Dense", "ELU", "GELU", "Hinge", "History",
    "Identity", "Layer", "LeakyReLU", "LogisticRegression", "Loss", "MSE", "Optimizer", "PReLU",
    "Perceptron", "PerceptronLoss", "ReLU", "SGD", "Sequential", "SiLU", "Sigmoid", "Sign",
    "Softmax", "SoftmaxCrossEntropy", "Softplus", "Step", "Tanh", "datasets", "get_num_threads",
    "initializers", "set_num_threads",
]
