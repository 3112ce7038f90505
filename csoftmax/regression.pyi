# Type stub for the estimator (built on scikit-learn's base classes).
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from sklearn.exceptions import ConvergenceWarning as ConvergenceWarning

SOLVERS: tuple[str, ...]

class SoftmaxRegression:
    solver: Literal["lbfgs", "gd", "sgd"]
    l2: float
    learning_rate: Literal["auto"] | float
    batch_size: int
    max_iter: int
    tol: float
    n_iter_no_change: int
    fit_intercept: bool
    dtype: DTypeLike | None
    class_weight: dict[Any, float] | Literal["balanced"] | None
    warm_start: bool
    random_state: int | np.random.RandomState | None
    verbose: int

    coef_: NDArray[np.floating]
    intercept_: NDArray[np.floating]
    classes_: NDArray[Any]
    n_iter_: int
    loss_curve_: list[float]
    n_features_in_: int
    feature_names_in_: NDArray[np.object_]

    def __init__(self, *, solver: Literal["lbfgs", "gd", "sgd"] = "lbfgs", l2: float = 1e-4,
                 learning_rate: Literal["auto"] | float = "auto", batch_size: int = 200,
                 max_iter: int = 1000, tol: float = 1e-4, n_iter_no_change: int = 10,
                 fit_intercept: bool = True, dtype: DTypeLike | None = None,
                 class_weight: dict[Any, float] | Literal["balanced"] | None = None, warm_start: bool = False,
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0) -> None: ...
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> SoftmaxRegression: ...
    # only with solver="sgd" (otherwise an AttributeError, and hasattr() is False)
    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> SoftmaxRegression: ...
    def decision_function(self, X: ArrayLike) -> NDArray[np.floating]: ...
    def predict(self, X: ArrayLike) -> NDArray[Any]: ...
    def predict_proba(self, X: ArrayLike) -> NDArray[np.floating]: ...
    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.floating]: ...
    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float: ...
    def __sklearn_is_fitted__(self) -> bool: ...
    # made by scikit-learn's metadata routing for the methods taking sample_weight
    def set_fit_request(self, *, sample_weight: bool | str | None = ...) -> SoftmaxRegression: ...
    def set_score_request(self, *, sample_weight: bool | str | None = ...) -> SoftmaxRegression: ...
    def set_partial_fit_request(self, *, classes: bool | str | None = ...,
                                sample_weight: bool | str | None = ...) -> SoftmaxRegression: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> SoftmaxRegression: ...

# 1 / L for gradient descent, from a power iteration on the product ``gram``
# (shared by the in-memory and the Dask problems).
def step_from_curvature(gram: Callable[[NDArray[np.floating]], NDArray[np.floating]], n: int, l2: float,
                        dtype: DTypeLike = ...) -> float: ...

# The solvers' view of the training data (csoftmax._dask_fit subclasses it).
class _Problem:
    X: Any
    y: Any
    sw: Any
    l2: float
    search32: bool
    fit_intercept: bool
    shape: tuple[int, int]
    dtype: np.dtype[Any]
    def __init__(self, X: Any, y: Any, sw: Any, l2: float, fit_intercept: bool, n_classes: int,
                 search32: bool = False) -> None: ...
    def init(self) -> tuple[NDArray[np.floating], NDArray[np.floating] | None]: ...
    def unpack(self, theta: NDArray[np.float64]) -> tuple[NDArray[np.floating], NDArray[np.floating] | None]: ...
    def stages(self) -> Iterator[_Problem]: ...
    def loss_grad(self, W: NDArray[np.floating], b: NDArray[np.floating] | None
                  ) -> tuple[float, NDArray[np.floating], NDArray[np.floating] | None]: ...
    def auto_learning_rate(self) -> float: ...
