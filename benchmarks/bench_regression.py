"""Training: SoftmaxRegression(solver="lbfgs") against scikit-learn's LogisticRegression (issue 4)."""
import warnings

import numpy as np

import csoftmax

from .peers import sklearn_linear_model
from .registry import Bar, Setup, case

# csoftmax has "reached" scikit-learn's final loss within this relative gap.
REACH_RTOL = 1e-7


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


case("SoftmaxRegression lbfgs fit (20000,784) 10 classes", lbfgs_fit(20000, 784, 10), issue=4, slow=True,
     bars=[Bar("sklearn LogisticRegression", 0.5, impl="csoftmax to sklearn loss")])
