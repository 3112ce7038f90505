"""Softmax cross-entropy, fused with its gradient, and the softmax-regression
objective built on it (docs/derivations.md, "Cross-entropy" and "Softmax
regression")."""
import operator
import warnings

import numpy as np

from . import _loss
from ._api import F64, as_common, as_real, check_out, result_dtype
from ._runtime import get_num_threads

__all__ = ["cross_entropy", "cross_entropy_grad", "softmax_regression_loss_grad"]

_REDUCTIONS = ("mean", "sum", "none")
# the warning of a mean over no weight (csoftmax.dask gives it too)
_NO_WEIGHT = ("cross_entropy: the weights of the counted samples sum to zero (or there are no samples), "
             "so the mean loss and its gradient are nan")


def _weights(sample_weight, N):
    if sample_weight is None:
        return None
    w = np.array(sample_weight, dtype=F64)  # a copy: read after out= is written
    if w.shape not in ((N,), ()) or (w.shape == () and N != 1):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({N},)")
    w = w.reshape(N)
    ok = (w >= 0) & np.isfinite(w)
    if not ok.all():
        raise ValueError(f"sample weights must be finite and >= 0, got {w[~ok][0]!r}")
    return w


def _scales(w, reduction, grad_output, N, single):
    """``(rscale, gscale)``: row i's gradient is scaled by ``rscale[i] * gscale``
    (``rscale`` None: 1); the kernel's entry divides a "mean" by its
    denominator."""
    if type(grad_output) is float and reduction != "none":
        return w, grad_output
    if grad_output is None:
        raise TypeError("grad_output must be a real number or array, got None")
    go = np.asarray(grad_output, dtype=F64)
    if reduction == "none":
        if go.shape not in ((), (N,)) and not (single and go.shape == (1,)):
            raise ValueError(f"grad_output has shape {go.shape}; with reduction='none' it must be a scalar or ({N},)")
        if go.ndim == 0:
            return w, float(go)
        k = np.broadcast_to(go.reshape(-1), (N,))
        # a new array (aligned): grad_output itself may lie unaligned
        return (np.array(k) if w is None else k * w), 1.0
    if go.ndim != 0:
        raise ValueError(f"grad_output must be a scalar with reduction={reduction!r}, got shape {go.shape}")
    return w, float(go)


def _class_weight(weight, C):
    if weight is None:
        return None
    cw = np.array(weight, dtype=F64)  # a copy: read after out= is written
    if cw.shape != (C,):
        raise ValueError(f"weight has shape {cw.shape}, expected ({C},): one weight per class")
    ok = (cw >= 0) & np.isfinite(cw)
    if not ok.all():
        raise ValueError(f"class weights must be finite and >= 0, got {cw[~ok][0]!r}")
    return cw


def _smoothing(label_smoothing):
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return eps


def _ignore_index(ignore_index):
    try:
        return operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}") from None


def _cross_entropy(logits, target, sample_weight, reduction, grad_output, out, want_grad, n_threads=None,
                   loss_dtype=None, weight=None, ignore_index=-100, label_smoothing=0.0):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    z, rdt = as_real(logits, "logits")
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must be (N, C) or (C,), got shape {z.shape}")
    single = z.ndim == 1
    N, C = (1,) + z.shape if single else z.shape
    if C == 0:
        raise ValueError("logits need at least one class")
    ignore = ignore_index if type(ignore_index) is int else _ignore_index(ignore_index)
    eps = label_smoothing if type(label_smoothing) is float and 0.0 <= label_smoothing <= 1.0 else \
        _smoothing(label_smoothing)
    cw = None if weight is None else _class_weight(weight, C)
    t = target if type(target) is np.ndarray else np.asarray(target)
    label = probs = None
    if t.ndim == z.ndim and t.shape == z.shape:
        result_dtype(t.dtype, "target")  # real, or TypeError
        probs = t.astype(z.dtype, copy=False)
        # the min, not (probs >= 0).all(): one pass and no temporary (half the
        # time on 8M entries); a nan makes it nan, which is refused too
        if probs.size and not probs.min() >= 0:
            bad = probs[~(probs >= 0)].flat[0].item()
            raise ValueError(f"target probabilities must be >= 0 (nan is refused too), got {bad!r}")
    elif t.ndim == z.ndim - 1 and (single or t.shape[0] == N):
        label = t  # class indices: checked and taken as intp by the compiled entry
    else:
        raise ValueError(f"target has shape {t.shape}; expected class indices of shape {z.shape[:-1]} "
                         f"or probabilities of shape {z.shape}")
    w = None if sample_weight is None else _weights(sample_weight, N)
    rscale, gscale = (w, grad_output) if type(grad_output) is float and reduction != "none" else \
        _scales(w, reduction, grad_output, N, single)
    if out is not None:
        check_out(out, z.shape, rdt)
    mean = reduction == "mean"
    dtype = rdt if loss_dtype is None else loss_dtype
    per, value, denom, grad = _loss.cross_entropy(z, label, probs, want_grad, out, rscale, gscale, w, cw, eps, ignore,
                                                  mean, dtype, get_num_threads() if n_threads is None else n_threads)
    if mean and denom == 0:
        # As np.mean of nothing and torch's weighted mean: nan, with a warning.
        warnings.warn(_NO_WEIGHT, RuntimeWarning, stacklevel=3)
    if reduction == "none":
        loss = (per if w is None else per * w).astype(dtype)
        loss = loss[0] if single else loss
    else:
        loss = value
    if not want_grad:
        return loss
    if out is None:
        return loss, grad if rdt is z.dtype or rdt == z.dtype else grad.astype(rdt)
    if grad is not out:
        np.copyto(out, grad, casting="unsafe")
    return loss, out


def cross_entropy(logits, target, *, sample_weight=None, weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean"):
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
        Non-negative weight of each sample, ``(N,)``: a factor on top of the
        class weights.
    weight : array_like, optional
        Non-negative weight of each class, ``(C,)``, as in PyTorch: a row's loss
        is weighted by its target class's weight (by every class's, through its
        target mass, for probability targets).
    ignore_index : int, default -100
        Rows whose label is ``ignore_index`` add nothing and get a zero
        gradient (class indices only); such a label is never out of range.
    label_smoothing : float in [0, 1], default 0
        The target becomes ``(1 - label_smoothing) y + label_smoothing / C``.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` is the weighted mean :math:`\sum w_i L_i / \sum w_i`, with
        :math:`w_i` the sample weight times the weight of the row's class, over
        the rows not ignored (PyTorch's rule; for probability targets the
        class weights stay out of the denominator);
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
    return _cross_entropy(logits, target, sample_weight, reduction, 1.0, None, False, weight=weight,
                          ignore_index=ignore_index, label_smoothing=label_smoothing)


def cross_entropy_grad(logits, target, *, sample_weight=None, weight=None, ignore_index=-100, label_smoothing=0.0,
                       reduction="mean", grad_output=1.0, out=None):
    r"""Cross-entropy and its gradient with respect to the logits, in one fused pass.

    .. math:: \frac{\partial \mathcal{L}}{\partial z_i}
              = \frac{\partial \mathcal{L}}{\partial L}\, c_i\, (s_i \textstyle\sum_k y_{ik} - y_i)

    which is :math:`s_i - \mathrm{onehot}(c_i)` for class indices (see
    docs/derivations.md), with :math:`c_i = w_i / \sum w` for ``"mean"`` and :math:`w_i`
    otherwise.  No softmax array is made beside the gradient.

    Parameters
    ----------
    logits, target, sample_weight, reduction
        As for :func:`cross_entropy`.
    grad_output : float or array_like, optional
        The upstream gradient :math:`\partial\mathcal{L}/\partial L` (the chain rule):
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
    return _cross_entropy(logits, target, sample_weight, reduction, grad_output, out, True, weight=weight,
                          ignore_index=ignore_index, label_smoothing=label_smoothing)


def softmax_regression_loss_grad(W, X, y, b=None, *, l2=0.0, sample_weight=None):
    r"""Objective and gradient of (L2-regularised) softmax regression.

    .. math::
        Z = X W^\top + b, \quad
        J = \frac{\sum_i w_i L_i}{\sum_i w_i} + \frac{l_2}{2} \lVert W \rVert^2, \\
        \frac{\partial J}{\partial W} = \frac{1}{\sum w} (S - Y)^\top \operatorname{diag}(w) X + l_2 W, \quad
        \frac{\partial J}{\partial b} = \frac{1}{\sum w} \sum_i w_i (S - Y)_i

    (unweighted, :math:`1/m`; see docs/derivations.md).  The two matrix products go to
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
    W, X, rdt = as_common(W, "W", X, "X")
    dtype = W.dtype
    if W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"W must be (C, D) and X (N, D); got W {W.shape} and X {X.shape}")
    if b is not None:
        b = np.asarray(b, dtype=dtype)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b has shape {b.shape}, expected ({W.shape[0]},)")
    N = X.shape[0]
    if N == 0:
        raise ValueError("X has no samples")
    if not (np.isscalar(l2) and np.isreal(l2) and l2 >= 0 and np.isfinite(l2)):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
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
    loss, G = _cross_entropy(Z, t, sample_weight, "mean", 1.0, Z if in_place else None, True, n_threads=1,
                             loss_dtype=F64)
    loss = float(loss)
    dW = G.T @ X
    if l2:
        loss += 0.5 * l2 * float(np.vdot(W, W))
        dW += l2 * W
    db = G.sum(axis=0) if b is not None else None
    return loss, dW, db
