"""Softmax regression: a scikit-learn-compatible classifier trained on the fused
loss and gradient of :func:`csoftmax.loss.softmax_regression_loss_grad`.

The objective (docs/derivations.md, "Softmax regression"), with sample weights ``w_i`` (all 1 without
``sample_weight``) and ``L_i = -log softmax(W x_i + b)[y_i]``::

    J(W, b) = (1 / sum_i w_i) sum_i w_i L_i + l2/2 ||W||²
    dJ/dW   = (1 / sum_i w_i) sum_i w_i (s_i - y_i) ⊗ x_i + l2 W
    dJ/db   = (1 / sum_i w_i) sum_i w_i (s_i - y_i)

The estimator is built on scikit-learn's base classes and validation, so it
passes ``check_estimator`` and works in ``Pipeline``, ``GridSearchCV`` and
``clone``; it needs scikit-learn and SciPy (``pip install csoftmax[sklearn]``),
which the rest of csoftmax does not.
"""
import contextlib
import numbers
import sys
import threading
import time
import warnings
from collections import deque
from functools import partial
from pathlib import Path

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
    from scipy.optimize import minimize
except ImportError as exc:
    raise ImportError("csoftmax.SoftmaxRegression needs scikit-learn (>= 1.6) and SciPy: "
                      "pip install csoftmax[sklearn]") from exc


SOLVERS = ("lbfgs", "gd", "sgd")

# L-BFGS-B's memory of curvature pairs (SciPy's default is 10).  A pair is two
# vectors of C·(D+1) entries, used in a few dot products an iteration: little
# beside an evaluation's two passes over X.  On the benchmark's (20000, 784) x 10
# problems 30 pairs reached scikit-learn's final loss in 2-12 % fewer evaluations.
_LBFGS_MEMORY = 30

# From this many entries of float64 X on, "lbfgs" searches on a float32 copy first:
# X no longer fits in cache, so each evaluation's two passes over it through BLAS
# take half the time in float32.  Below it the search is not worth the copy.
_SEARCH32_MIN = 1 << 20


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic (softmax) regression trained on csoftmax's fused kernel.

    Minimises the weighted mean cross-entropy plus an L2 penalty on the weights
    (the intercept is not penalised)::

        J(W, b) = (1 / sum_i w_i) sum_i w_i L_i + l2/2 ||W||²,
        L_i = -log softmax(W x_i + b)[y_i],

    whose gradient is ``dJ/dW = (1/sum w) sum_i w_i (s_i - y_i) ⊗ x_i + l2 W``
    ("x crossed s minus y").  scikit-learn's ``LogisticRegression(C=C)``
    minimises the same function with ``l2 = 1 / (C * sum_i w_i)``.

    Parameters
    ----------
    solver : {"lbfgs", "gd", "sgd"}, default="lbfgs"
        ``"lbfgs"``: SciPy's L-BFGS-B on the fused loss and gradient.  ``"gd"``: full-batch gradient descent,
        ``W <- W - α dJ/dW`` and ``b`` alike.  ``"sgd"``: the same step
        on shuffled mini-batches of ``batch_size`` samples, one pass over the
        data per epoch.
    l2 : float, default=1e-4
        Strength of the L2 penalty ``l2/2 ||W||²`` (not applied to the intercept).
    learning_rate : "auto" or float, default="auto"
        The step ``α`` of ``"gd"`` and ``"sgd"`` (``"lbfgs"`` ignores it).  A float
        is used as it is, every step.  ``"auto"`` starts from ``α = 1 / L`` with
        ``L = λ_max(X̃ᵀ diag(w) X̃ / Σw) / 2 + l2`` (``X̃`` is ``X`` with a column
        of ones when fitting the intercept), a bound on the curvature of the
        objective, at which full-batch steps are stable; ``"sgd"`` keeps that
        step, ``"gd"`` then adapts it each step to the curvature seen along the
        path (Barzilai-Borwein), halving any step that does not lower the loss
        enough below the highest of the last 10 (a non-monotone Armijo test).
    batch_size : int, default=200
        Mini-batch size of ``"sgd"`` (capped at the number of samples).  With a
        constant step SGD settles in a neighbourhood of the minimum whose size
        grows with ``α`` and shrinks with ``batch_size``.
    max_iter : int, default=1000
        Most iterations (``"lbfgs"``), steps (``"gd"``) or epochs (``"sgd"``).
        Stopping there raises a :class:`ConvergenceWarning`.
    tol : float, default=1e-4
        ``"lbfgs"`` and ``"gd"`` stop once the largest entry of the gradient is
        ``<= tol`` (the test scikit-learn's ``LogisticRegression`` makes).  ``"gd"``
        also stops when the loss has not improved by more than rounding for
        ``n_iter_no_change`` steps.  ``"sgd"`` stops once the epoch loss has
        improved by less than ``tol`` for ``n_iter_no_change`` consecutive epochs.
    n_iter_no_change : int, default=10
        Patience of the loss-improvement tests of ``"gd"`` and ``"sgd"``.
    fit_intercept : bool, default=True
        Whether to fit the bias ``b``; without it ``intercept_`` is all zeros.
    dtype : None, numpy.float32 or numpy.float64, default=None
        Precision of training and prediction: ``coef_``/``intercept_`` have it and
        ``X`` is converted to it.  ``None`` keeps float32 data in float32 (half the
        memory traffic, about twice the speed; scikit-learn does the same) and
        takes everything else as float64; then, for float64 ``X`` of at least
        2**20 entries, ``"lbfgs"`` first searches on a float32 copy of ``X`` and
        finishes in float64 from where that search stopped, so that the float64
        gradient meets ``tol`` (about twice as fast; the copy is half the size
        of ``X``).  ``numpy.float64`` computes in float64 throughout.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as in scikit-learn's ``LogisticRegression``: each
        sample's weight is multiplied by its class's (by ``sample_weight`` too when
        given).  A dict maps class labels to weights; classes it leaves out weigh
        1, and keys that are not classes are a ``ValueError`` when it leaves any
        out (scikit-learn's check).  ``"balanced"``
        weighs class ``c`` by ``n_samples / (n_classes * n_c)`` (``n_c`` its
        count, summed sample weights when given), see
        :func:`sklearn.utils.class_weight.compute_class_weight`.  ``partial_fit``
        takes a dict but not ``"balanced"``, as one batch's class counts are not
        the data's.
    warm_start : bool, default=False
        When True, ``fit`` starts from the current ``coef_`` and ``intercept_``
        if the model was fitted on the same classes and number of features (all
        solvers); otherwise, and by default, from zeros.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of ``"sgd"`` and ``partial_fit``; an int makes it
        reproducible.
    verbose : int, default=0
        When > 0, show progress: a tqdm bar when tqdm is installed, else a loss
        line every ``max_iter // 20`` iterations and a summary at the end.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features)
        One weight row per class, binary problems included: unlike
        ``LogisticRegression``, two classes keep two rows (the symmetric
        multinomial parametrisation).
    intercept_ : ndarray of shape (n_classes,)
    classes_ : ndarray of shape (n_classes,)
        The sorted labels seen in ``fit`` (any values ``numpy.unique`` sorts).
    n_iter_ : int
        Iterations, steps or epochs run by the last ``fit``, plus one for each
        ``partial_fit`` since.
    loss_curve_ : list of float
        The objective ``J`` after each iteration (for ``"sgd"``: the mean of the
        mini-batch losses over each epoch, plus the penalty; ``partial_fit``
        appends its batch's).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax.regression import SoftmaxRegression
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> clf = SoftmaxRegression(solver="gd").fit(X, ["a", "b", "b", "b"])
    >>> clf.predict([[0.0, 0.0], [1.0, 1.0]]).tolist()
    ['a', 'b']
    >>> clf.predict_proba(X).sum(axis=1).round(12).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, *, solver="lbfgs", l2=1e-4, learning_rate="auto", batch_size=200,
                 max_iter=1000, tol=1e-4, n_iter_no_change=10, fit_intercept=True,
                 dtype=None, class_weight=None, warm_start=False, random_state=None, verbose=0):
        self.solver = solver
        self.l2 = l2
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and labels ``y`` (n_samples,).

        ``sample_weight`` (n_samples,), non-negative, weights each sample's loss:
        an integer weight is the same as repeating the row that many times.
        ``class_weight`` multiplies it.  With ``warm_start`` the fit starts from the
        current solution (same classes and features).  Returns the fitted estimator.
        """
        dtype = self._check_params()
        if _is_dask(X):  # chunked by rows, summed where the chunks live: see _dask_fit
            from ._dask_fit import make_problem
            problem, classes = make_problem(self, X, y, sample_weight, dtype)
        else:
            problem, classes = self._problem(X, y, sample_weight, dtype)
        problem.start = self._warm_start_point(classes, problem.shape)
        rng, lr = None, None
        with _Progress(self.verbose, self.max_iter, f"SoftmaxRegression({self.solver})") as progress:
            if self.solver == "lbfgs":
                W, b, n_iter, curve, converged = _fit_lbfgs(problem, self.max_iter, self.tol, progress)
            else:
                auto = isinstance(self.learning_rate, str)
                lr = problem.auto_learning_rate() if auto else float(self.learning_rate)
                if self.solver == "gd":
                    W, b, n_iter, curve, converged = _fit_gd(problem, lr, auto, self.max_iter, self.tol,
                                                             self.n_iter_no_change, progress)
                else:
                    rng = check_random_state(self.random_state)
                    sgd = problem.fit_sgd if hasattr(problem, "fit_sgd") else partial(_fit_sgd, problem)
                    W, b, n_iter, curve, converged = sgd(lr, self.batch_size, self.max_iter, self.tol,
                                                         self.n_iter_no_change, rng, progress)
        if not converged:
            warnings.warn(f"SoftmaxRegression(solver={self.solver!r}) stopped at max_iter={self.max_iter} "
                          f"before meeting tol={self.tol}; increase max_iter or scale the data.",
                          ConvergenceWarning, stacklevel=2)
        self.classes_ = classes
        self.coef_ = W
        self.intercept_ = b if b is not None else np.zeros(classes.size, dtype=problem.dtype)
        self.n_iter_ = n_iter
        self.loss_curve_ = curve
        # what partial_fit continues with: the shuffling stream and an "auto" step of "sgd"
        self._rng = rng
        self._lr = lr if self.solver == "sgd" and isinstance(self.learning_rate, str) else None
        return self

    def _warm_start_point(self, classes, shape):
        """``(coef_, intercept_)`` to start from, or None to start from zeros."""
        if not (self.warm_start and self.__sklearn_is_fitted__()):
            return None
        if self.coef_.shape != shape or not np.array_equal(self.classes_, classes):
            return None
        return self.coef_, self.intercept_

    def _sgd_only(self):
        if self.solver != "sgd":
            raise AttributeError(f"partial_fit is only available with solver='sgd', got solver={self.solver!r}")
        return True

    @available_if(_sgd_only)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of ``"sgd"`` over the batch ``(X, y)``, continuing from the current weights.

        The batch's samples are shuffled and cut into mini-batches of
        ``batch_size``, each taking the step of ``solver="sgd"``.  The first call
        (on an unfitted model) starts from zeros and needs every class label in
        ``classes``; later calls, and calls after ``fit``, continue from
        ``coef_``/``intercept_``.  ``learning_rate="auto"`` is computed once, on
        the first batch, and kept (as ``"sgd"`` keeps it for all epochs).
        Available only with ``solver="sgd"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch.
        y : array-like of shape (n_samples,)
            Its labels, each one of ``classes_``.
        classes : array-like of shape (n_classes,), default=None
            All the labels the model will see; required on the first call, and
            if given later, the same as then.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's samples, multiplied by
            ``class_weight`` (a dict; ``"balanced"`` is refused).

        Returns
        -------
        self : SoftmaxRegression
            With ``n_iter_`` increased by one and the batch's objective (the
            mean of its mini-batch losses plus the penalty) appended to
            ``loss_curve_``.

        Raises
        ------
        ValueError
            If ``classes`` is missing on the first call or differs from it
            later, if ``y`` holds a label not in ``classes``, or if
            ``class_weight="balanced"``.
        AttributeError
            If ``solver`` is not ``"sgd"``.
        """
        dtype = self._check_params()
        if isinstance(self.class_weight, str):
            raise ValueError("class_weight='balanced' is not supported by partial_fit, as one batch's class "
                             "counts are not the data's: pass the weights as a dict, e.g. "
                             "compute_class_weight('balanced', classes=classes, y=y) over a large enough "
                             "sample of the labels")
        first = not self.__sklearn_is_fitted__()
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = np.unique(classes)
            if classes.size < 2:
                raise ValueError(f"SoftmaxRegression needs at least 2 classes, got classes={classes.tolist()!r}")
            X, y = validate_data(self, X, y, dtype=[np.float64, np.float32] if dtype is None else dtype)
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={np.unique(classes).tolist()!r} is not the same as on the first call "
                                 f"to partial_fit (or fit), was: {self.classes_.tolist()!r}")
            classes = self.classes_
            X, y = validate_data(self, X, y, reset=False, dtype=self.coef_.dtype)
        check_classification_targets(y)
        known = np.isin(y, classes)
        if not known.all():
            raise ValueError(f"y holds labels that are not in classes {classes.tolist()!r}: "
                             f"{np.unique(y[~known]).tolist()!r}")
        y_idx = np.searchsorted(classes, y).astype(np.intp, copy=False)
        sw = _check_sample_weight(sample_weight, X.shape[0])
        sw = _weigh_classes(self.class_weight, classes, y, y_idx, sw)
        problem = _Problem(X, y_idx, sw, float(self.l2), self.fit_intercept, classes.size)
        if not first:
            problem.start = self.coef_, self.intercept_
        if first or getattr(self, "_rng", None) is None:
            self._rng = check_random_state(self.random_state)
        if isinstance(self.learning_rate, str):
            if first or getattr(self, "_lr", None) is None:
                self._lr = problem.auto_learning_rate()
            lr = self._lr
        else:
            lr = float(self.learning_rate)
        W, b = problem.init()
        data_loss = _sgd_epoch(problem, W, b, lr, self.batch_size, self._rng)
        n_iter = 1 if first else self.n_iter_ + 1
        loss = data_loss + 0.5 * problem.l2 * float(np.vdot(W, W))
        _check_finite(loss, n_iter, lr)
        self.classes_ = classes
        self.coef_ = W
        self.intercept_ = b if b is not None else np.zeros(classes.size, dtype=problem.dtype)
        self.n_iter_ = n_iter
        self.loss_curve_ = [loss] if first else [*self.loss_curve_, loss]
        return self

    def _problem(self, X, y, sample_weight, dtype):
        """Validate in-memory training data: ``(_Problem, classes)``."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32] if dtype is None else dtype)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        y_idx = y_idx.reshape(-1).astype(np.intp, copy=False)
        sw = _check_sample_weight(sample_weight, X.shape[0])
        sw = _weigh_classes(self.class_weight, classes, y, y_idx, sw)
        present = classes if sw is None else classes[np.unique(y_idx[sw > 0])]
        if present.size < 2:
            weighted = "" if sw is None else " with a positive sample weight"
            raise ValueError("SoftmaxRegression needs samples of at least 2 classes, but the data "
                             f"holds only one class{weighted}: {present.tolist()[0]!r}")
        problem = _Problem(X, y_idx, sw, float(self.l2), self.fit_intercept, classes.size,
                           search32=dtype is None)
        return problem, classes

    def decision_function(self, X):
        """The logits ``X Wᵀ + b``, shape (n_samples, n_classes).

        For two classes, like scikit-learn's binary classifiers, it returns the
        log-odds of ``classes_[1]``, ``z_1 - z_0``, shape (n_samples,): positive
        means ``classes_[1]`` is predicted.
        """
        Z = self._logits(X)
        return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z

    def predict(self, X):
        """The most probable class label for each row of ``X``, shape (n_samples,)."""
        if _is_dask(X):
            from ._dask_fit import predict
            return predict(self, X)
        Z = self._logits(X)
        return self.classes_[np.argmax(Z, axis=1)]

    def predict_proba(self, X):
        """Class probabilities ``softmax(X Wᵀ + b)``, shape (n_samples, n_classes), columns in ``classes_`` order."""
        if _is_dask(X):
            from ._dask_fit import predict_proba
            return predict_proba(self, X)
        from .forward import softmax
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """``log_softmax(X Wᵀ + b)``, shape (n_samples, n_classes), computed without taking log of a rounded 0."""
        if _is_dask(X):
            from ._dask_fit import predict_proba
            return predict_proba(self, X, log=True)
        from .forward import log_softmax
        return log_softmax(self._logits(X), axis=1)

    def __sklearn_is_fitted__(self):
        # n_features_in_ is set before fit can fail on the labels: coef_ is what prediction needs
        return hasattr(self, "coef_")

    def score(self, X, y, sample_weight=None):
        """Mean (weighted) accuracy of ``predict(X)`` against ``y``; a lazy Dask scalar for Dask ``X``."""
        if _is_dask(X):
            from ._dask_fit import score
            return score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight=sample_weight)

    def _logits(self, X):
        if _is_dask(X):
            from ._dask_fit import logits
            return logits(self, X)
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.coef_.dtype)
        return X @ self.coef_.T + self.intercept_

    def _check_params(self):
        """Validate the hyper-parameters (in fit, as scikit-learn requires); return the dtype or None."""
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        _check_number("l2", self.l2, numbers.Real, 0.0)
        if not (isinstance(self.learning_rate, str) and self.learning_rate == "auto"):
            _check_number("learning_rate", self.learning_rate, numbers.Real, 0.0, strict=True)
        _check_number("batch_size", self.batch_size, numbers.Integral, 1)
        _check_number("max_iter", self.max_iter, numbers.Integral, 1)
        _check_number("tol", self.tol, numbers.Real, 0.0)
        _check_number("n_iter_no_change", self.n_iter_no_change, numbers.Integral, 1)
        if not (self.class_weight is None or isinstance(self.class_weight, dict)
                or (isinstance(self.class_weight, str) and self.class_weight == "balanced")):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")
        if self.dtype is None:
            return None
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be None, numpy.float32 or numpy.float64, got {self.dtype!r}")
        return dtype


def _is_dask(X):
    """Whether X is a Dask array (without importing Dask when it is not loaded)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(X, dask_array.Array)


def _check_number(name, value, kind, low, strict=False):
    if isinstance(value, (bool, str)) or not isinstance(value, kind) or not np.isfinite(value) \
            or value < low or (strict and value == low):
        bound = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite {kind.__name__.lower()} {bound} {low}, got {value!r}")


def _check_sample_weight(sample_weight, n):
    """None, or float64 weights of shape (n,): finite, non-negative, with a positive sum."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        sw = np.full(n, float(sw))
    if sw.shape != (n,):
        raise ValueError(f"sample_weight.shape == {sw.shape}, expected {(n,)}!")
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(sw < 0):
        raise ValueError(f"sample_weight must be non-negative, got {sw.min()!r}")
    if not sw.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight")
    return sw


def _weigh_classes(class_weight, classes, y, y_idx, sw):
    """The sample weights times each sample's class weight, as scikit-learn's
    ``LogisticRegression`` weighs them (None without either)."""
    if class_weight is None:
        return sw
    cw = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sw)[y_idx]
    sw = cw if sw is None else sw * cw
    if not np.all(np.isfinite(sw)) or np.any(sw < 0) or not sw.sum() > 0:
        raise ValueError(f"class_weight={class_weight!r} gives sample weights that are negative, "
                         "not finite or all zero")
    return sw


def step_from_curvature(gram, n, l2, dtype=np.float64):
    """``1 / L``, ``L = λ_max / 2 + l2`` with ``λ_max`` the largest eigenvalue of the
    weighted Gram matrix ``gram`` applies (power iteration from a fixed start: a
    few products, no matrix formed)."""
    v = np.random.RandomState(0).standard_normal(n).astype(dtype)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(50):
        g = gram(v)
        norm = float(np.linalg.norm(g))
        if norm == 0.0 or abs(norm - lam) <= 1e-3 * norm:
            lam = norm
            break
        lam, v = norm, g / norm
    L = 0.5 * lam + l2
    return 1.0 / L if L > 0 else 1.0


class _Problem:
    """The training data and objective shared by the solvers."""

    def __init__(self, X, y, sw, l2, fit_intercept, n_classes, search32=False):
        self.X, self.y, self.sw, self.l2 = X, y, sw, l2
        self.start = None  # (W, b) of a warm start
        self.search32 = search32
        self.fit_intercept = fit_intercept
        self.shape = (n_classes, X.shape[1])
        self.dtype = X.dtype

    def init(self):
        """The weights and intercept (or None) to start from, new arrays: zeros (the
        usual start, and deterministic), or a copy of ``start`` for a warm start."""
        if self.start is None:
            W, b = np.zeros(self.shape, self.dtype), np.zeros(self.shape[0], self.dtype)
        else:
            W, b = (np.array(a, dtype=self.dtype) for a in self.start)
        return W, b if self.fit_intercept else None

    def unpack(self, theta):
        """``(W, b)`` from the flat float64 parameter vector, in the problem's dtype
        (views of ``theta`` in float64: no copy per evaluation)."""
        n_w = self.shape[0] * self.shape[1]
        W = theta[:n_w].reshape(self.shape).astype(self.dtype, copy=False)
        return W, theta[n_w:].astype(self.dtype, copy=False) if self.fit_intercept else None

    def stages(self):
        """The problems an exact solver runs through: a float32 copy of a large
        float64 problem first when ``search32`` is set, then this one."""
        if self.search32 and self.dtype == np.float64 and self.X.size >= _SEARCH32_MIN:
            X32 = self.X.astype(np.float32)
            yield _Problem(X32, self.y, self.sw, self.l2, self.fit_intercept, self.shape[0])
        yield self

    def loss_grad(self, W, b):
        from .loss import softmax_regression_loss_grad
        return softmax_regression_loss_grad(W, self.X, self.y, b, l2=self.l2, sample_weight=self.sw)

    def auto_learning_rate(self):
        """``1 / L``, with ``L`` a bound on the curvature of the objective.

        One sample's Hessian is ``(diag(s) - s sᵀ) ⊗ x̃ x̃ᵀ`` (``x̃`` is ``x`` with a 1
        appended for the intercept) and ``diag(s) - s sᵀ`` has no eigenvalue above
        1/2, so ``L = λ_max(Σ_i w_i x̃_i x̃_iᵀ / Σ_i w_i) / 2 + l2``.  Power iteration
        (a few products with X, no Gram matrix) finds ``λ_max``; an estimate within
        2x of it still gives a stable step, as gradient descent is stable below 2/L.
        """
        X, sw, D = self.X, self.sw, self.X.shape[1]
        w = np.full(X.shape[0], 1.0 / X.shape[0]) if sw is None else sw / sw.sum()
        w = w.astype(self.dtype)

        def gram(v):
            u = X @ v[:D]
            if self.fit_intercept:
                u += v[D]
            u *= w
            return X.T @ u if not self.fit_intercept else np.append(X.T @ u, u.sum())
        return step_from_curvature(gram, D + self.fit_intercept, self.l2, self.dtype)


_scipy_blas = []   # [controller of SciPy's own BLAS, or None], found on the first fit
_scipy_blas_lock = threading.Lock()
_scipy_blas_users = [0, None]   # [fits running, the limiter the first of them applied]


@contextlib.contextmanager
def _scipy_blas_serial():
    """Run the BLAS that SciPy bundles for itself on one thread, when it has one.

    pip's SciPy wheels carry their own OpenBLAS beside NumPy's; L-BFGS-B's vector
    work goes to SciPy's, whose threads then fight NumPy's still-spinning BLAS
    threads for the cores after every evaluation: measured 2.5x slower fits at
    (20000, 784) x 10 on 2 cores (scikit-learn's LogisticRegression alike).  Those
    vectors are small enough for one thread.  A no-op without threadpoolctl or when
    SciPy shares NumPy's BLAS.
    """
    # Fits may run in several threads at once: the controller is looked up
    # once, the first fit in applies the limit and the last one out restores
    # the original (a limit per fit would let one that ends first "restore"
    # the limit of another still running, for good).
    with _scipy_blas_lock:
        if not _scipy_blas:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _scipy_blas.append(None)
            else:
                controller = ThreadpoolController()
                own = [lib.filepath for lib in controller.lib_controllers
                       if lib.user_api == "blas" and "scipy.libs" in Path(lib.filepath).parts]
                _scipy_blas.append(controller.select(filepath=own) if own else None)
        controller = _scipy_blas[0]
        if controller is not None:
            if _scipy_blas_users[0] == 0:
                _scipy_blas_users[1] = controller.limit(limits=1)
            _scipy_blas_users[0] += 1
    try:
        yield
    finally:
        if controller is not None:
            with _scipy_blas_lock:
                _scipy_blas_users[0] -= 1
                if _scipy_blas_users[0] == 0:
                    _scipy_blas_users[1].restore_original_limits()
                    _scipy_blas_users[1] = None


def _fit_lbfgs(problem, max_iter, tol, progress):
    """L-BFGS-B on the fused loss/gradient, with W and b flattened into one vector.

    The options are scikit-learn's (``gtol=tol``, ``ftol=64 eps``, ``maxls=50``), so
    ``tol`` means what it means for ``LogisticRegression``; only the memory is longer.
    A float64 problem may first be searched on a float32 copy of ``X`` (each
    evaluation is two passes over ``X`` through BLAS, twice as fast in float32);
    the float64 run then starts from that point and ends, usually after one
    evaluation, once the float64 gradient meets ``tol``.
    """
    W0, b0 = problem.init()
    theta = W0.ravel() if b0 is None else np.concatenate([W0.ravel(), b0])
    theta = theta.astype(np.float64)
    curve = []
    with _scipy_blas_serial():
        for stage in problem.stages():
            if len(curve) == max_iter:
                break
            res = _lbfgs(stage, theta, max_iter - len(curve), tol, curve, progress)
            theta = res.x
            if res.status == 1:  # the iteration (or evaluation) limit stopped it
                break
    W, b = problem.unpack(theta.copy())
    return W, b, len(curve), curve, res.status != 1


def _lbfgs(problem, theta0, max_iter, tol, curve, progress):
    last = {}

    def fun(theta):
        loss, dW, db = problem.loss_grad(*problem.unpack(theta))
        last["loss"] = loss
        grad = dW.ravel() if db is None else np.concatenate([dW.ravel(), db])
        return loss, grad.astype(np.float64, copy=False)

    def callback(theta):
        # L-BFGS-B ends each iteration at the point it evaluated last
        curve.append(float(last["loss"]))
        progress.update(len(curve), curve[-1])

    return minimize(fun, theta0, method="L-BFGS-B", jac=True, callback=callback,
                    options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "maxcor": _LBFGS_MEMORY,
                             "ftol": 64 * np.finfo(np.float64).eps})


def _fit_gd(problem, lr, adaptive, max_iter, tol, n_iter_no_change, progress):
    """Full-batch gradient descent ``W <- W - α dJ/dW``, ``b`` alike.

    With ``adaptive`` the step starts at ``lr`` and becomes the Barzilai-Borwein
    step ``<s, s> / <s, Δg>`` of the last move ``s`` (the inverse of the curvature
    along it), safeguarded by a non-monotone Armijo test (Raydan 1997): a step
    that does not bring the loss ``1e-4 α ||g||²`` below the highest of the last
    10 losses is halved.  Otherwise every step is ``lr``.
    """
    W, b = problem.init()
    loss, dW, db = problem.loss_grad(W, b)
    curve, recent = [], deque([loss], maxlen=10)
    stall = _Stall(64 * np.finfo(np.float64).eps * max(1.0, abs(loss)), n_iter_no_change)
    step = lr
    for it in range(1, max_iter + 1):
        gg = _dot(dW, db, dW, db)
        for _ in range(60):
            W1 = W - step * dW
            b1 = None if b is None else b - step * db
            loss1, dW1, db1 = problem.loss_grad(W1, b1)
            if not adaptive or loss1 <= max(recent) - 1e-4 * step * gg:
                break
            step *= 0.5
        else:  # no step of representable size lowers the loss: at the minimum, to rounding
            return W, b, it - 1, curve, True
        _check_finite(loss1, it, lr)
        if adaptive:
            curvature = gg - _dot(dW, db, dW1, db1)  # <s, Δg> / step
            step = step * gg / curvature if curvature > 0 else step
        W, b, loss, dW, db = W1, b1, loss1, dW1, db1
        recent.append(loss)
        curve.append(float(loss))
        progress.update(it, loss)
        gmax = max(np.abs(dW).max(), 0.0 if db is None else np.abs(db).max())
        # the highest recent loss, as the non-monotone steps may rise above the lowest for a while
        if gmax <= tol or stall(max(recent)):
            return W, b, it, curve, True
    return W, b, max_iter, curve, False


def _dot(W1, b1, W2, b2):
    """``<(W1, b1), (W2, b2)>`` in float64."""
    d = float(np.vdot(W1, W2))
    return d if b1 is None else d + float(np.vdot(b1, b2))


def _fit_sgd(problem, lr, batch_size, max_iter, tol, n_iter_no_change, rng, progress):
    """Mini-batch SGD over a fresh shuffle of the samples each epoch.

    A batch's gradient is scaled by ``r = (its weight share) * n / (its size)`` so
    that, averaged over an epoch, the steps follow the full objective's gradient
    (``r = 1`` without sample weights); the penalty's gradient is added unscaled.
    """
    W, b = problem.init()
    curve, stall = [], _Stall(tol, n_iter_no_change)
    for epoch in range(1, max_iter + 1):
        loss = _sgd_epoch(problem, W, b, lr, batch_size, rng) + 0.5 * problem.l2 * float(np.vdot(W, W))
        _check_finite(loss, epoch, lr)
        curve.append(loss)
        progress.update(epoch, loss)
        if stall(loss):
            return W, b, epoch, curve, True
    return W, b, max_iter, curve, False


def _sgd_epoch(problem, W, b, lr, batch_size, rng):
    """One pass over a fresh shuffle of the samples in mini-batches, updating ``W``
    and ``b`` in place; returns the weighted mean of the mini-batch losses."""
    from .loss import softmax_regression_loss_grad
    X, y, sw, l2 = problem.X, problem.y, problem.sw, problem.l2
    n = X.shape[0]
    B = min(batch_size, n)
    total = float(n) if sw is None else float(sw.sum())
    order = rng.permutation(n)
    data_loss = 0.0
    for start in range(0, n, B):
        idx = order[start:start + B]
        wb = None if sw is None else sw[idx]
        share = (idx.size if wb is None else float(wb.sum())) / total
        if share == 0.0:
            continue
        loss, dW, db = softmax_regression_loss_grad(W, X[idx], y[idx], b, sample_weight=wb)
        data_loss += share * loss
        r = share * n / idx.size
        W *= 1.0 - lr * l2
        W -= (lr * r) * dW
        if b is not None:
            b -= (lr * r) * db
    return data_loss


class _Stall:
    """True once the loss has improved by less than ``tol`` for ``patience`` calls in a row."""

    def __init__(self, tol, patience):
        self.tol, self.patience = tol, patience
        self.best, self.count = np.inf, 0

    def __call__(self, loss):
        self.count = self.count + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        return self.count >= self.patience


def _check_finite(loss, it, lr):
    if not np.isfinite(loss):
        raise FloatingPointError(f"the loss became {loss} at iteration {it}: learning_rate={lr!r} is too "
                                 "large for this data (lower it, use 'auto', or scale X)")


class _Progress:
    """Progress of a verbose fit: a tqdm bar when tqdm is installed, else periodic loss lines."""

    def __init__(self, verbose, total, desc):
        self.verbose, self.total, self.desc = verbose, total, desc
        self.every = max(1, total // 20)
        self.bar = None
        self.start = time.perf_counter()
        self.it, self.loss = 0, np.nan
        if verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc=desc, leave=True)

    def __enter__(self):
        return self

    def update(self, it, loss):
        self.it, self.loss = it, loss
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
        elif it % self.every == 0:
            print(f"{self.desc}: iteration {it}/{self.total}, loss = {loss:.6g}", file=sys.stdout, flush=True)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        elif self.verbose:
            print(f"{self.desc}: {self.it} iterations, loss = {self.loss:.6g}, "
                  f"{time.perf_counter() - self.start:.3g} s", file=sys.stdout, flush=True)
        return False
