# Type stubs for the public API (the kernels are compiled; see the modules'
# docstrings for the semantics).
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .regression import SoftmaxRegression as SoftmaxRegression

__version__: str
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

_Axis = int | tuple[int, ...] | None
_Float = np.floating[Any]
_Array = NDArray[np.floating]

def softmax(x: ArrayLike, axis: _Axis = None, *, where: ArrayLike | None = None,
            out: _Array | None = None) -> _Array: ...
def log_softmax(x: ArrayLike, axis: _Axis = None, *, where: ArrayLike | None = None,
                out: _Array | None = None) -> _Array: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None, keepdims: bool = False,
              return_sign: Literal[False] = False, *, where: ArrayLike | None = None,
              out: _Array | None = None) -> _Float | _Array: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis, b: ArrayLike | None, keepdims: bool, return_sign: Literal[True], *,
              where: ArrayLike | None = None, out: _Array | None = None
              ) -> tuple[_Float | _Array, _Float | _Array]: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None, keepdims: bool = False, *,
              return_sign: Literal[True], where: ArrayLike | None = None, out: _Array | None = None
              ) -> tuple[_Float | _Array, _Float | _Array]: ...
def softmax_jacobian(x: ArrayLike, axis: int = -1, *, out: _Array | None = None) -> _Array: ...
def softmax_backward(s: ArrayLike, grad_output: ArrayLike, axis: int = -1, *,
                     out: _Array | None = None) -> _Array: ...
def log_softmax_backward(log_s: ArrayLike, grad_output: ArrayLike, axis: int = -1, *,
                         out: _Array | None = None) -> _Array: ...
# "mean" and "sum" give one NumPy scalar of the logits' float dtype (float64 for
# anything else: a float64 is a float); "none" gives the per-sample losses (a
# scalar for one sample of shape (C,)).
_Sum = Literal["mean", "sum"]
_F32 = NDArray[np.float32]
_F16 = NDArray[np.float16]

@overload
def cross_entropy(logits: _F32, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: _Sum = "mean") -> np.float32: ...
@overload
def cross_entropy(logits: _F16, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: _Sum = "mean") -> np.float16: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: _Sum = "mean") -> np.float64: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: Literal["none"]) -> _Array | _Float: ...
@overload
def cross_entropy_grad(logits: _F32, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       reduction: _Sum = "mean", grad_output: ArrayLike = 1.0,
                       out: _Array | None = None) -> tuple[np.float32, _Array]: ...
@overload
def cross_entropy_grad(logits: _F16, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       reduction: _Sum = "mean", grad_output: ArrayLike = 1.0,
                       out: _Array | None = None) -> tuple[np.float16, _Array]: ...
@overload
def cross_entropy_grad(logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       reduction: _Sum = "mean", grad_output: ArrayLike = 1.0,
                       out: _Array | None = None) -> tuple[np.float64, _Array]: ...
@overload
def cross_entropy_grad(logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       reduction: Literal["none"], grad_output: ArrayLike = 1.0,
                       out: _Array | None = None) -> tuple[_Array | _Float, _Array]: ...
@overload
def softmax_regression_loss_grad(W: ArrayLike, X: ArrayLike, y: ArrayLike, b: None = None, *,
                                 l2: float = 0.0, sample_weight: ArrayLike | None = None
                                 ) -> tuple[float, _Array, None]: ...
@overload
def softmax_regression_loss_grad(W: ArrayLike, X: ArrayLike, y: ArrayLike, b: ArrayLike, *,
                                 l2: float = 0.0, sample_weight: ArrayLike | None = None
                                 ) -> tuple[float, _Array, _Array]: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
@overload
def show_config(mode: Literal["stdout"] = "stdout") -> None: ...
@overload
def show_config(mode: Literal["dicts"]) -> dict[str, dict[str, Any] | None]: ...
