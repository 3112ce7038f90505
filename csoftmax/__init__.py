"""csoftmax: fast, exact, NumPy-native softmax and its derivatives.

Compiled (Cython + OpenMP) kernels for the forward pass, the Jacobian, the
backward pass, the fused softmax cross-entropy loss and gradient, and softmax
regression; ``csoftmax.reference`` is the plain NumPy oracle they are tested
against.
"""
from ._runtime import get_num_threads, set_num_threads
from .forward import log_softmax, softmax

__version__ = "0.1.0"

__all__ = [
    "softmax",
    "log_softmax",
    "get_num_threads",
    "set_num_threads",
]
