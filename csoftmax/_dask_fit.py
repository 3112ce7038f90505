"""Softmax regression on Dask arrays chunked by rows, for :class:`SoftmaxRegression`.

The objective is a weighted mean over samples, so it splits over row chunks:
with ``J_k, dJ_k`` the mean loss and gradient of chunk ``k`` (weight ``w_k = Σ_{i∈k} w_i``)
from :func:`csoftmax.softmax_regression_loss_grad`,

    J = (1 / Σ_k w_k) Σ_k w_k J_k + l2/2 ||W||²,   dJ = (1 / Σ_k w_k) Σ_k w_k dJ_k + l2 W.

Each evaluation maps the fused kernel over the row chunks where they live and
adds the scaled ``(J_k, dJ_k)``: only the parameters travel to the chunks and
one vector of ``1 + C (D + 1)`` numbers per chunk travels back (added here when
they are few, else by Dask's tree reduction), so ``X`` is never gathered and
may exceed any one worker's memory.  Scheduling,
retries after a lost worker and the reduction tree are Dask's, with whatever
scheduler is active (the default one, or a ``distributed.Client``).
"""
import dask
import dask.array as da
import numpy as np
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

import csoftmax
import csoftmax.dask as cdask
from csoftmax.regression import _Problem, step_from_curvature

_F8 = np.dtype(np.float64)
# the most a loss evaluation brings back unreduced (one float64 row per chunk)
_GATHER_BYTES = 16 * 2**20


def is_dask(x):
    return isinstance(x, da.Array)


def _rows(v, chunks, name, N):
    """A per-sample vector as a Dask array ``(N,)`` chunked like X's rows."""
    v = v if is_dask(v) else da.from_array(np.asarray(v), chunks=-1)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1 or v.shape[0] != N:
        raise ValueError(f"{name} should be an array of shape ({N},), got shape {v.shape}")
    return v.rechunk((chunks,))


def make_problem(estimator, X, y, sample_weight, dtype):
    """Validate Dask training data and return ``(DaskProblem, classes)``.

    Cheap checks are made on shapes; what needs the data (the classes, finite X,
    the weights) is computed in one pass.  Sets ``estimator.n_features_in_``.
    """
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead: X.shape={X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    N, D = X.shape
    if N < 1 or D < 1:
        raise ValueError(f"Found array with shape {X.shape}; at least 1 sample and 1 feature are required.")
    if dtype is None:
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else _F8
    # one chunk across the features: each task holds a block of whole rows
    X = X.astype(dtype).rechunk({1: -1})
    estimator.n_features_in_ = D
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    y = _rows(y, X.chunks[0], "y", N)
    sw = None
    if sample_weight is not None:
        if not is_dask(sample_weight):
            sample_weight = np.broadcast_to(np.asarray(sample_weight, _F8), (N,))
        sw = _rows(sample_weight, X.chunks[0], "sample_weight", N).astype(_F8)

    lazy = {"classes": da.unique(y), "finite": da.isfinite(X).all()}
    if sw is not None:
        lazy.update(total=sw.sum(), low=sw.min(), sw_finite=da.isfinite(sw).all(), present=da.unique(y[sw > 0]))
    got = dask.compute(lazy)[0]
    if not got["finite"]:
        raise ValueError("Input X contains NaN or infinity.")
    classes = got["classes"]
    check_classification_targets(classes)
    total = float(N)
    present = classes
    if sw is not None:
        if not got["sw_finite"]:
            raise ValueError("sample_weight contains NaN or infinity")
        if got["low"] < 0:
            raise ValueError(f"sample_weight must be non-negative, got {got['low']!r}")
        total = float(got["total"])
        if not total > 0:
            raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight")
        present = got["present"]
    y_idx = y.map_blocks(lambda t: np.searchsorted(classes, t).astype(np.intp), dtype=np.intp)
    if estimator.class_weight is not None:
        sw, total, present = _weigh_classes(estimator.class_weight, classes, y_idx, sw)
    if present.size < 2:
        weighted = "" if sw is None else " with a positive sample weight"
        raise ValueError("SoftmaxRegression needs samples of at least 2 classes, but the data "
                         f"holds only one class{weighted}: {present.tolist()[0]!r}")
    problem = DaskProblem(X, y_idx, sw, total, float(estimator.l2), estimator.fit_intercept, classes.size)
    return problem, classes


def _weigh_classes(class_weight, classes, y_idx, sw):
    """Each sample's weight times its class's, as in memory: ``(sw, total, present)``.

    One more pass, for the (weighted) count of each class: scikit-learn's
    ``compute_class_weight`` given each class once, weighted by its count, computes
    from those counts what it computes from all the labels.
    """
    counts = da.bincount(y_idx, weights=sw, minlength=classes.size).compute()
    cw = compute_class_weight(class_weight, classes=classes, y=classes, sample_weight=counts)
    mass = cw * counts
    if not np.all(np.isfinite(mass)) or np.any(cw < 0) or not mass.sum() > 0:
        raise ValueError(f"class_weight={class_weight!r} gives sample weights that are negative, "
                         "not finite or all zero")
    w = y_idx.map_blocks(lambda i: cw[i], dtype=_F8)
    return (w if sw is None else sw * w), float(mass.sum()), classes[mass > 0]


def _chunk_sums(X, y, theta, sw=None, *, shape, fit_intercept, kind):
    """One row chunk's share of a sum over samples, as a float64 row ``(1, P)``.

    ``kind="loss_grad"``: ``w_k (J_k, dJ_k/dW, dJ_k/db)`` without the penalty, from
    the fused kernel.  ``kind="gram"``: ``X̃ᵀ diag(w) X̃ v`` (``X̃`` is X with a
    column of ones for the intercept) for the power iteration of the step size.
    """
    C, D = shape
    w_k = float(X.shape[0]) if sw is None else float(sw.sum())
    if kind == "gram":
        v = theta.astype(X.dtype)
        u = X @ v[:D]
        if fit_intercept:
            u += v[D]
        u = u if sw is None else u * sw
        g = (X.T @ u).astype(_F8)
        return (np.append(g, u.sum(dtype=_F8)) if fit_intercept else g)[None, :]
    out = np.zeros((1, 1 + theta.size))
    if w_k > 0:
        W = theta[:C * D].reshape(C, D).astype(X.dtype)
        b = theta[C * D:].astype(X.dtype) if fit_intercept else None
        loss, dW, db = csoftmax.softmax_regression_loss_grad(W, X, y, b, sample_weight=sw)
        out[0, 0] = loss
        out[0, 1:1 + C * D] = dW.ravel()
        if fit_intercept:
            out[0, 1 + C * D:] = db
        out *= w_k
    return out


class DaskProblem(_Problem):
    """The training data and objective for Dask ``X``, as the in-memory ``_Problem``
    offers them to the solvers (``init`` and ``unpack`` as there; ``stages``,
    ``loss_grad``, ``auto_learning_rate`` summed over chunks), plus the
    chunk-wise SGD of :meth:`fit_sgd`."""

    def __init__(self, X, y, sw, total, l2, fit_intercept, n_classes):
        super().__init__(X, y, sw, l2, fit_intercept, n_classes)
        self.total = total

    def stages(self):
        # no float32 search stage: its copy of X would be a second dataset to place
        yield self

    def _sum(self, vec, kind, size):
        """``Σ_k chunk_k`` of :func:`_chunk_sums`, tree-reduced by Dask and computed."""
        theta = da.from_array(np.asarray(vec, _F8), chunks=-1)
        args = [self.X, "ij", self.y, "i", theta, "p"] + ([] if self.sw is None else [self.sw, "i"])
        parts = da.blockwise(_chunk_sums, "ip", *args, dtype=_F8, concatenate=True,
                             adjust_chunks={"i": 1, "p": size}, meta=np.empty((0, 0), _F8),
                             shape=self.shape, fit_intercept=self.fit_intercept, kind=kind,
                             token=f"softmax-regression-{kind}")
        if parts.numblocks[0] * size * 8 <= _GATHER_BYTES:
            # few enough to bring the chunks' rows here and add them: a round of
            # tasks fewer than the tree (measured on a 2-worker LocalCluster: 53
            # against 87 ms an evaluation of 8 chunks, scheduling alone)
            return parts.compute().sum(axis=0)
        return parts.sum(axis=0).compute()

    def loss_grad(self, W, b):
        theta = W.ravel() if b is None else np.concatenate([W.ravel(), b])
        v = self._sum(theta, "loss_grad", 1 + theta.size) / self.total
        C, D = self.shape
        loss = float(v[0])
        dW = v[1:1 + C * D].reshape(C, D).astype(self.dtype)
        if self.l2:
            loss += 0.5 * self.l2 * float(np.vdot(W, W))
            dW += self.l2 * W
        db = v[1 + C * D:].astype(self.dtype) if b is not None else None
        return loss, dW, db

    def auto_learning_rate(self):
        """``1 / L`` as in memory: ``L = λ_max(Σ_i w_i x̃_i x̃_iᵀ / Σ_i w_i) / 2 + l2`` by
        power iteration, one pass over the chunks per product."""
        D = self.shape[1]
        return step_from_curvature(lambda v: self._sum(v, "gram", v.size) / self.total, D + self.fit_intercept,
                                   self.l2)

    def fit_sgd(self, lr, batch_size, max_iter, tol, n_iter_no_change, rng, progress):
        """Mini-batch SGD, each epoch a pass over the row chunks in a shuffled order.

        Within a chunk the rows are shuffled and cut into batches of ``batch_size``;
        the steps run where the chunk lives and hand ``(W, b)`` on to the next chunk,
        so only the parameters travel.  Each batch's step is scaled as in memory
        (its weight share times ``n / batch size``), the penalty shrinks ``W`` at every step.
        """
        from .regression import _check_finite, _Stall
        blocks = self.X.to_delayed().ravel()
        labels = self.y.to_delayed().ravel()
        weights = [None] * len(blocks) if self.sw is None else self.sw.to_delayed().ravel()
        step = dask.delayed(_sgd_chunk, pure=True)
        W, b = self.init()
        curve, stall = [], _Stall(tol, n_iter_no_change)
        for epoch in range(1, max_iter + 1):
            state = (W, b, 0.0)
            order = rng.permutation(len(blocks))
            seeds = rng.randint(np.iinfo(np.int32).max, size=len(blocks))
            for k in order:
                state = step(blocks[k], labels[k], weights[k], state, seed=seeds[k], lr=lr,
                             batch_size=batch_size, n=self.X.shape[0], total=self.total, l2=self.l2)
            W, b, data_loss = dask.compute(state)[0]
            loss = data_loss + 0.5 * self.l2 * float(np.vdot(W, W))
            _check_finite(loss, epoch, lr)
            curve.append(loss)
            progress.update(epoch, loss)
            if stall(loss):
                return W, b, epoch, curve, True
        return W, b, max_iter, curve, False


def _sgd_chunk(X, y, sw, state, *, seed, lr, batch_size, n, total, l2):
    W, b, data_loss = state
    W = W.copy()
    b = None if b is None else b.copy()
    order = np.random.RandomState(seed).permutation(X.shape[0])
    for start in range(0, X.shape[0], batch_size):
        idx = order[start:start + batch_size]
        wb = None if sw is None else sw[idx]
        share = (idx.size if wb is None else float(wb.sum())) / total
        if share == 0.0:
            continue
        loss, dW, db = csoftmax.softmax_regression_loss_grad(W, X[idx], y[idx], b, sample_weight=wb)
        data_loss += share * loss
        r = share * n / idx.size
        W *= 1.0 - lr * l2
        W -= (lr * r) * dW
        if b is not None:
            b -= (lr * r) * db
    return W, b, data_loss


def logits(estimator, X):
    """``X Wᵀ + b`` for Dask ``X``, lazily."""
    check_is_fitted(estimator)
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead: X.shape={X.shape}")
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    return X.astype(estimator.coef_.dtype) @ estimator.coef_.T + estimator.intercept_


def predict(estimator, X):
    classes = estimator.classes_
    index = logits(estimator, X).argmax(axis=1)
    return index.map_blocks(lambda i: classes[i], dtype=classes.dtype, meta=classes[:0])


def predict_proba(estimator, X, log=False):
    return (cdask.log_softmax if log else cdask.softmax)(logits(estimator, X), axis=1)


def score(estimator, X, y, sample_weight=None):
    """Weighted accuracy of ``predict(X)`` against ``y``, a lazy 0-d Dask array."""
    pred = predict(estimator, X)
    y = _rows(y, pred.chunks[0], "y", X.shape[0])
    hit = (pred == y).astype(_F8)
    if sample_weight is None:
        return hit.mean()
    w = _rows(sample_weight, pred.chunks[0], "sample_weight", X.shape[0]).astype(_F8)
    return (hit * w).sum() / w.sum()
