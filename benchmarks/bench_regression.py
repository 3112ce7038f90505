"""Softmax regression: the fused loss and gradient against the BLAS products it needs,
and training (SoftmaxRegression with L-BFGS) against scikit-learn's LogisticRegression."""
import warnings

import numpy as np

import csoftmax

from .data import F64, labels, logits
from .peers import np_regression_loss_grad, sklearn_linear_loss, sklearn_linear_model, sklearn_loss
from .registry import Setup, Target, case

# csoftmax has "reached" scikit-learn's final loss within this relative gap.
REACH_RTOL = 1e-7


def regression(n, d, n_classes, dtype, l2=1e-4):
    """``softmax_regression_loss_grad`` on ``X`` (n, d), ``n_classes`` classes, with intercept."""
    def make(options):
        X, y = logits((n, d), dtype, seed=3) / 3, labels(n, n_classes)
        W, b = logits((n_classes, d), dtype, seed=4) / 100, logits(n_classes, dtype, seed=5) / 10
        G = logits((n, n_classes), dtype, seed=6)
        impls = {
            "csoftmax": lambda: csoftmax.softmax_regression_loss_grad(W, X, y, b, l2=l2),
            "2 BLAS products": lambda: (X @ W.T, G.T @ X),
            "numpy": lambda: np_regression_loss_grad(W, X, y, b, l2),
        }
        if sklearn_linear_loss and sklearn_loss:
            lml = sklearn_linear_loss.LinearModelLoss(
                base_loss=sklearn_loss.HalfMultinomialLoss(n_classes=n_classes), fit_intercept=True)
            coef, yf = np.hstack([W, b[:, None]]), y.astype(dtype)
            impls["sklearn LinearModelLoss"] = lambda: lml.loss_gradient(
                coef, X, yf, l2_reg_strength=l2, n_threads=options.threads)
        return Setup(impls, baseline="2 BLAS products",
                     notes=["baseline: X @ W.T and G.T @ X alone (the BLAS floor)"])
    return make


def problem(n, d, n_classes, seed=0):
    """A synthetic problem of MNIST's size and about its difficulty: class means
    in a 50-dimensional latent space mapped to ``d`` correlated features, plus
    noise (about 74 % training accuracy, so the optimum is not at infinity)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    latent = 0.3 * rng.normal(size=(n_classes, 50))[y] + rng.normal(size=(n, 50))
    X = latent @ rng.normal(size=(50, d)) / np.sqrt(50) + rng.normal(size=(n, d))
    return X, y


def lbfgs_fit(n, d, n_classes, C=1.0, tol=1e-4, max_iter=1000):
    """Fit both with L-BFGS at matched regularisation: ``l2 = 1 / (C n)`` on our mean loss.

    "csoftmax to sklearn loss" is our fit stopped (``max_iter=k``) at the first
    iteration whose loss is within ``REACH_RTOL`` of scikit-learn's final loss;
    the full fit is timed beside it only when it runs longer than that.
    """
    def make(options):
        SoftmaxRegression = csoftmax.SoftmaxRegression
        X, y = problem(n, d, n_classes)
        l2 = 1.0 / (C * n)

        def fit(model):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at a deliberate max_iter
                return model.fit(X, y)

        def ours(iters=max_iter):
            return fit(SoftmaxRegression(solver="lbfgs", l2=l2, tol=tol, max_iter=iters))

        def loss(model):
            return float(csoftmax.softmax_regression_loss_grad(model.coef_, X, y, model.intercept_, l2=l2)[0])

        full = ours()
        notes = [f"l2 = 1/(C n) = {l2:.3g}, C = {C}, tol = {tol}; csoftmax: {full.n_iter_} iterations, "
                 f"final loss {loss(full):.12g}"]
        if not sklearn_linear_model:
            return Setup({"csoftmax": ours}, baseline="csoftmax", reference=None, notes=notes,
                         calibrate=False, repeats=1 if options.quick else 3)

        LogisticRegression = sklearn_linear_model.LogisticRegression
        theirs = fit(LogisticRegression(solver="lbfgs", C=C, tol=tol, max_iter=max_iter))
        target = loss(theirs)
        curve = np.asarray(full.loss_curve_)
        reached = np.flatnonzero(curve <= target * (1 + REACH_RTOL))
        k = int(reached[0]) + 1 if reached.size else full.n_iter_
        impls = {"csoftmax to sklearn loss": lambda: ours(k)}
        at_k = full
        if k < full.n_iter_:
            impls["csoftmax full fit"] = ours
            at_k = ours(k)  # the curve may hold losses of a float32 stage: take the true one
        impls["sklearn LogisticRegression"] = lambda: fit(
            LogisticRegression(solver="lbfgs", C=C, tol=tol, max_iter=max_iter))
        notes += [f"sklearn: {int(np.max(theirs.n_iter_))} iterations, final loss {target:.12g}",
                  f"csoftmax to sklearn loss: max_iter={k}, loss {loss(at_k):.12g} "
                  + (f"(the first iterate within {REACH_RTOL:g} relative)" if reached.size
                     else "(never within reach: the full fit)"),
                  f"final loss gap (csoftmax - sklearn) / sklearn: {(loss(full) - target) / target:.3g}"]
        return Setup(impls, baseline="sklearn LogisticRegression", reference=None, notes=notes,
                     calibrate=False, repeats=1 if options.quick else 3)
    return make


case("softmax_regression_loss_grad f64 X(20000,784) 10 classes", regression(20000, 784, 10, F64),
     group="regression", targets=[Target("2 BLAS products", 1.2)])
case("SoftmaxRegression lbfgs fit (20000,784) 10 classes", lbfgs_fit(20000, 784, 10), group="training", slow=True,
     targets=[Target("sklearn LogisticRegression", 0.5, impl="csoftmax to sklearn loss")])
