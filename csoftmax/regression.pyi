# Type stub for the estimator (built on scikit-learn's base classes).
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from sklearn.exceptions import ConvergenceWarning as ConvergenceWarning

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
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> SoftmaxRegression: ...
