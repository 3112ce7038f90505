"""Softmax cross-entropy, fused with its gradient, and the softmax-regression
objective built on it (seeds 000-003)."""
import warnings

import numpy as np

from . import _loss
from ._arrays import F32, F64, as_real, check_out, empty

__all__ = ["cross_entropy", "cross_entropy_grad", "softmax_regression_loss_grad"]

_REDUCTIONS = ("mean", "sum", "none")


def _labels(t, N, C):
    """Class indices as a contiguous intp array, refusing anything that is not
    an integer in [0, C) before the kernel sees it."""
    if t.dtype.kind == "f":
        bad = ~np.isfinite(t) | (t != np.trunc(t))
        if bad.any():
            raise ValueError(f"class labels must be integers, got {t[bad].flat[0].item()!r}")
    elif t.dtype.kind not in "biu":
        raise TypeError(f"class labels must be integers, got dtype {t.dtype}")
    if t.dtype.kind in "fu" and t.size:
        # values an intp may not hold: refused before the cast
        bad = (t < 0) | (t >= C)
        if bad.any():
            raise ValueError(f"class label {t[bad].flat[0].item()!r} is out of range for {C} classes")
    lab = np.ascontiguousarray(t.reshape(N), dtype=np.intp)
    i = _loss.first_bad_label(lab, C)
    if i >= 0:
        raise ValueError(f"class label {lab[i].item()!r} is out of range for {C} classes")
    return lab


def _weights(sample_weight, N):
    if sample_weight is None:
        return None
    w = np.array(sample_weight, dtype=F64)  # a copy: read after out= is written
    if w.shape not in ((N,), ()) or (w.shape == () and N != 1):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({N},)")
    w = w.reshape(N)
    if not np.all(w >= 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"sample weights must be finite and >= 0, got {w[~((w >= 0) & np.isfinite(w))][0]!r}")
    return w


def _row_scales(w, reduction, grad_output, N, single):
    """The gradient scale of each row: (rscale array or None, scalar scale)."""
    go = np.asarray(grad_output, dtype=F64)
    if reduction == "none":
        if go.shape not in ((), (N,)) and not (single and go.shape == (1,)):
            raise ValueError(f"grad_output has shape {go.shape}; with reduction='none' it must be a scalar or ({N},)")
        if go.ndim == 0 and w is None:
            return None, float(go)
        return np.ascontiguousarray(np.broadcast_to(go.reshape(-1) if go.ndim else go, (N,)) * (1.0 if w is None else w)), 0.0
    if go.ndim != 0:
        raise ValueError(f"grad_output must be a scalar with reduction={reduction!r}, got shape {go.shape}")
    k = float(go)
    if reduction == "mean":
        total = N if w is None else w.sum()
        if total == 0:
            # As np.mean of nothing and torch's weighted mean: nan, with a warning.
            warnings.warn("cross_entropy: the sample weights sum to zero (or there are no samples), "
                          "so the mean loss and its gradient are nan", RuntimeWarning, stacklevel=4)
            k = np.nan
        else:
            k /= total
    return (None, k) if w is None else (w * k, 0.0)


def _reduce(per, w, reduction, dtype, single):
    if reduction == "none":
        r = per if w is None else per * w
        r = r.astype(dtype)
        return r[0] if single else r
    total = _loss.total(per) if w is None else per @ w
    if reduction == "mean":
        n = len(per) if w is None else w.sum()
        total = total / n if n else np.nan
    return dtype.type(total)


def _cross_entropy(logits, target, sample_weight, reduction, grad_output, out, want_grad, serial=False,
                   loss_dtype=None):
    if (type(logits) is np.ndarray and type(target) is np.ndarray and sample_weight is None
            and (reduction == "mean" or reduction == "sum") and type(grad_output) is float
            and not serial and loss_dtype is None):
        # the common call: C-contiguous logits, intp labels (checked by ce_fast)
        res = _loss.ce_fast(logits, target, reduction == "mean", grad_output, want_grad, out)
        if res is not None:
            loss = logits.dtype.type(res[0])
            return (loss, res[1]) if want_grad else loss
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    z, rdt = as_real(logits, "logits")
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must be (N, C) or (C,), got shape {z.shape}")
    single = z.ndim == 1
    z2 = z.reshape(1, -1) if single else z
    N, C = z2.shape
    if C == 0:
        raise ValueError("logits need at least one class")
    t = np.asarray(target)
    label = probs = None
    if t.shape == z.shape:
        probs, _ = as_real(t, "target")
        probs = probs.reshape(N, C).astype(z.dtype, copy=False)
        if probs.strides[1] != probs.itemsize:
            probs = np.ascontiguousarray(probs)
    elif t.shape == z.shape[:-1]:
        label = _labels(t, N, C)
    else:
        raise ValueError(f"target has shape {t.shape}; expected class indices of shape {z.shape[:-1]} "
                         f"or probabilities of shape {z.shape}")
    w = _weights(sample_weight, N)
    rscale, gscale = _row_scales(w, reduction, grad_output, N, single)
    if out is not None:
        check_out(out, z.shape, rdt)
    if z2.strides[1] != z2.itemsize:
        z2 = np.ascontiguousarray(z2)
    grad, in_out = _grad_buffer(out, z2, label, probs) if want_grad else (None, False)
    per = np.empty(N, F64)
    kernel = _loss.ce_f32 if z.dtype == F32 else _loss.ce_f64
    kernel(z2, label, probs, grad, rscale, gscale, per, serial)
    loss = _reduce(per, w, reduction, rdt if loss_dtype is None else loss_dtype, single)
    if not want_grad:
        return loss
    if out is None:
        grad = grad.reshape(z.shape)
        return loss, grad if rdt == z.dtype else grad.astype(rdt)
    if not in_out:
        np.copyto(out, grad.reshape(z.shape), casting="unsafe")
    return loss, out


def _grad_buffer(out, z2, label, probs):
    """(array, whether it is out) where the kernel writes the gradient: ``out``
    itself when its dtype and layout fit and it overlaps no input (exactly the
    logits is fine with class indices: the kernel reads each row's logits
    before writing that row)."""
    N, C = z2.shape
    if out is not None and out.dtype == z2.dtype:
        try:
            g = out.reshape((N, C), copy=False)
        except ValueError:
            g = None
        if g is not None and g.strides[1] == g.itemsize:
            same = (g.__array_interface__["data"][0] == z2.__array_interface__["data"][0]
                    and g.strides == z2.strides)
            if (not np.may_share_memory(g, z2) or (same and label is not None)) and not np.may_share_memory(
                    g, probs if label is None else label):
                return g, True
    return empty((N, C), z2.dtype), False


def cross_entropy(logits, target, *, sample_weight=None, reduction="mean"):
    r"""Softmax cross-entropy of logits against class indices or probabilities.

    .. math:: L_i = -\log s_{i, c_i} \quad\text{or}\quad L_i = -\sum_k y_{ik} \log s_{ik}

    Parameters
    ----------
    logits : array_like
        ``(N, C)``, or ``(C,)`` for one sample; classes on the last axis.
    target : array_like
        Class indices shaped ``logits.shape[:-1]`` (integers; integral floats
        such as ``2.0`` are accepted), or probabilities shaped like ``logits``.
    sample_weight : array_like, optional
        Non-negative weight of each sample, ``(N,)``.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` is the weighted mean :math:`\sum w_i L_i / \sum w_i`;
        ``"none"`` gives the per-sample :math:`w_i L_i`.

    Returns
    -------
    scalar or ndarray
        In the logits' dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import cross_entropy
    >>> round(float(cross_entropy(np.log([[0.25, 0.75]]), [1])), 6)  # -log 0.75
    0.287682
    """
    return _cross_entropy(logits, target, sample_weight, reduction, 1.0, None, False)


def cross_entropy_grad(logits, target, *, sample_weight=None, reduction="mean", grad_output=1.0, out=None):
    r"""Cross-entropy and its gradient with respect to the logits, in one fused pass.

    .. math:: \frac{\partial \mathcal{L}}{\partial z_i}
              = \frac{\partial \mathcal{L}}{\partial L}\, c_i\, (s_i \textstyle\sum_k y_{ik} - y_i)

    which is :math:`s_i - \mathrm{onehot}(c_i)` for class indices (seeds 000,
    001, 003), with :math:`c_i = w_i / \sum w` for ``"mean"`` and :math:`w_i`
    otherwise.  No softmax array is made beside the gradient.

    Parameters
    ----------
    logits, target, sample_weight, reduction
        As for :func:`cross_entropy`.
    grad_output : float or array_like, optional
        The upstream gradient :math:`\partial\mathcal{L}/\partial L` (seed 001):
        a scalar, or ``(N,)`` with ``reduction="none"``.
    out : ndarray, optional
        Where to write the gradient (shaped like ``logits``, its dtype). With
        class indices it may be ``logits`` itself.

    Returns
    -------
    loss : scalar or ndarray
    grad : ndarray
        Shaped like ``logits``.

    Raises
    ------
    ValueError
        For a label outside ``[0, C)`` or not an integer, mismatched shapes,
        negative sample weights, an unknown reduction; nothing is written.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import cross_entropy_grad
    >>> loss, grad = cross_entropy_grad(np.log([[0.25, 0.75]]), [1])
    >>> grad
    array([[ 0.25, -0.25]])
    """
    return _cross_entropy(logits, target, sample_weight, reduction, grad_output, out, True)


def softmax_regression_loss_grad(W, X, y, b=None, *, l2=0.0, sample_weight=None):
    r"""Objective and gradient of (L2-regularised) softmax regression.

    .. math::
        Z = X W^\top + b, \quad
        J = \frac{\sum_i w_i L_i}{\sum_i w_i} + \frac{l_2}{2} \lVert W \rVert^2, \\
        \frac{\partial J}{\partial W} = \frac{1}{\sum w} (S - Y)^\top \operatorname{diag}(w) X + l_2 W, \quad
        \frac{\partial J}{\partial b} = \frac{1}{\sum w} \sum_i w_i (S - Y)_i

    (seeds 002 and 003; unweighted, :math:`1/m`).  The two matrix products go to
    BLAS through NumPy; softmax, loss and :math:`S - Y` are one fused kernel
    that overwrites the logits in place.

    Parameters
    ----------
    W : array_like, (C, D)
        One row of weights per class.
    X : array_like, (N, D)
    y : array_like
        Class indices ``(N,)`` or probabilities ``(N, C)``.
    b : array_like, (C,), optional
        Intercepts; without them ``db`` is None.
    l2 : float
        L2 penalty on ``W`` (not on ``b``).
    sample_weight : array_like, (N,), optional

    Returns
    -------
    loss : float
    dW : ndarray, (C, D)
    db : ndarray (C,) or None

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import softmax_regression_loss_grad
    >>> loss, dW, db = softmax_regression_loss_grad(np.zeros((2, 1)), [[1.0]], [0], b=np.zeros(2))
    >>> round(loss, 6), dW.ravel(), db
    (0.693147, array([-0.5,  0.5]), array([-0.5,  0.5]))
    """
    W, wdt = as_real(W, "W")
    X, xdt = as_real(X, "X")
    dtype = F32 if np.result_type(wdt, xdt) in (F32, np.float16) else F64
    W = W.astype(dtype, copy=False)
    X = X.astype(dtype, copy=False)
    if W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"W must be (C, D) and X (N, D); got W {W.shape} and X {X.shape}")
    if b is not None:
        b = np.asarray(b, dtype=dtype)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b has shape {b.shape}, expected ({W.shape[0]},)")
    N = X.shape[0]
    if N == 0:
        raise ValueError("X has no samples")
    Z = X @ W.T
    if b is not None:
        Z += b
    t = np.asarray(y)
    in_place = t.shape != Z.shape
    # The kernel runs on the calling thread: between two multithreaded BLAS calls
    # an OpenMP team waits for cores that BLAS's spinning threads hold (measured:
    # +10 ms a call at (20000, 784) x 10 on 2 cores, for a 0.3 ms kernel).
    # The loss is summed in float64 and kept so: an optimiser on float32 data
    # still sees its decrease near the minimum.
    loss, G = _cross_entropy(Z, t, sample_weight, "mean", 1.0, Z if in_place else None, True, serial=True,
                             loss_dtype=F64)
    loss = float(loss)
    dW = G.T @ X
    if l2:
        loss += 0.5 * l2 * float(np.vdot(W, W))
        dW += l2 * W
    db = G.sum(axis=0) if b is not None else None
    return loss, dW, db
