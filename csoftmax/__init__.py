"""csoftmax: fast, exact, NumPy-native softmax and its derivatives.

Compiled (Cython + OpenMP) kernels for the forward pass, the Jacobian, the
backward pass, the fused softmax cross-entropy loss and gradient, and softmax
regression; ``csoftmax.reference`` is the plain NumPy oracle they are tested
against.
"""
try:
    from ._runtime import get_num_threads, set_num_threads
except ImportError as exc:  # pragma: no cover - only in a source checkout
    from pathlib import Path

    if (Path(__file__).parent / "_runtime.pyx").exists():
        raise ImportError(
            "csoftmax is being imported from its source tree, which holds no compiled modules: "
            "install it (pip install .) and run Python from another directory") from exc
    raise
from ._config import show_config
from .backward import log_softmax_backward, softmax_backward, softmax_jacobian
from .forward import log_softmax, logsumexp, softmax
from .loss import cross_entropy, cross_entropy_grad, softmax_regression_loss_grad

__version__ = "0.1.0"

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_jacobian",
    "softmax_backward",
    "log_softmax_backward",
    "cross_entropy",
    "cross_entropy_grad",
    "softmax_regression_loss_grad",
    "SoftmaxRegression",
    "get_num_threads",
    "set_num_threads",
    "show_config",
]


def _estimator_peers_found():
    from importlib.util import find_spec
    return all(find_spec(m) is not None for m in ("sklearn", "scipy"))


# ``from csoftmax import *`` must work with NumPy alone: the estimator is
# exported only where its peers are installed (asked for by name, without
# them, it raises the ImportError that says what to install).
if not _estimator_peers_found():
    __all__.remove("SoftmaxRegression")


def __getattr__(name):
    # The estimator imports its optional peers (scikit-learn, SciPy) lazily.
    if name == "SoftmaxRegression":
        from .regression import SoftmaxRegression
        return SoftmaxRegression
    raise AttributeError(f"module 'csoftmax' has no attribute {name!r}")
