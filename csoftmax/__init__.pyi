# Type stubs for the public API (the kernels are compiled; see the modules'
# docstrings for the semantics).
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .regression import SoftmaxRegression as SoftmaxRegression

__version__: str

_Axis = int | tuple[int, ...] | None
_Reduction = Literal["mean", "sum", "none"]
_Float = np.floating
_Array = NDArray[np.floating]

def softmax(x: ArrayLike, axis: _Axis = None, *, out: _Array | None = None) -> _Array: ...
def log_softmax(x: ArrayLike, axis: _Axis = None, *, out: _Array | None = None) -> _Array: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None, keepdims: bool = False,
              return_sign: Literal[False] = False, *, where: ArrayLike | None = None,
              out: _Array | None = None) -> _Float | _Array: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis, b: ArrayLike | None, keepdims: bool,
              return_sign: Literal[True], *, where: ArrayLike | None = None,
              out: _Array | None = None) -> tuple[_Float | _Array, _Float | _Array]: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None, keepdims: bool = False, *,
              return_sign: Literal[True], where: ArrayLike | None = None,
              out: _Array | None = None) -> tuple[_Float | _Array, _Float | _Array]: ...
def softmax_jacobian(x: ArrayLike, axis: int = -1) -> _Array: ...
def softmax_backward(s: ArrayLike, grad_output: ArrayLike, axis: int = -1, *,
                     out: _Array | None = None) -> _Array: ...
def log_softmax_backward(log_s: ArrayLike, grad_output: ArrayLike, axis: int = -1, *,
                         out: _Array | None = None) -> _Array: ...
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  reduction: _Reduction = "mean") -> _Float | _Array: ...
def cross_entropy_grad(logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       reduction: _Reduction = "mean", grad_output: ArrayLike = 1.0,
                       out: _Array | None = None) -> tuple[_Float | _Array, _Array]: ...
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
