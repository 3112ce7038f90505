"""Slow, obvious reference implementations: the test oracle of ``csoftmax``.

Every compiled function of ``csoftmax`` has a pure NumPy twin here with the same
name, written straight from the derivations in ``docs/derivations.md``: the
stable softmax and log-softmax, the weighted log-sum-exp, the Jacobian ``s_i (δ_ij - s_j)``, the backward
passes, the cross-entropy gradient ``s - onehot(c)`` (``s Σy - y`` for
probability targets) scaled by the upstream gradient, and softmax regression's
``(s - y) ⊗ x`` and gradient-descent step.  Clarity beats speed: there are no
kernels, no threads, no ``out`` arguments, only the formulas.

Precision: the work is done in ``np.longdouble`` when an input is float64,
integer or bool (inputs whose results are float64) and in float64 otherwise
(float16, float32), and results
stay in that working precision (they are not cast back), so a test can compare
a compiled result against a more precise value.  Where ``np.longdouble`` is
float64 (Windows, macOS arm64) the oracle is simply float64.
"""

import operator

import numpy as np

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
    "gradient_descent_step",
]

_REDUCTIONS = ("mean", "sum", "none")


def _working_dtype(*arrays):
    for a in arrays:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"expected a real (float, integer or bool) array, got dtype {a.dtype}")
    # integers and bools give float64 results, as float64 input does: both
    # are checked against long double
    if any(a.dtype.kind in "biu" or (a.dtype.kind == "f" and a.dtype.itemsize >= 8) for a in arrays):
        return np.dtype(np.longdouble)
    return np.dtype(np.float64)


def _as_working(*arrays, dtype=None):
    """Copies of ``arrays`` in their common working precision (or ``dtype``)."""
    arrays = [np.asarray(a) for a in arrays]
    working = _working_dtype(*arrays)  # also rejects complex, object, strings
    dtype = working if dtype is None else dtype
    return [a.astype(dtype) for a in arrays]


def softmax(x, axis=None, *, where=None):
    r"""Softmax along ``axis``, with the semantics of ``scipy.special.softmax``.

    .. math:: s_i = \exp(x_i - m) / \sum_j \exp(x_j - m), \quad m = \max_j x_j

    ``axis=None`` reduces over all elements; an int or a tuple of ints (negatives
    allowed) over those axes. ``-inf`` entries give 0; a slice that is all
    ``-inf`` or holds ``+inf`` or ``nan`` gives ``nan``; empty arrays give empty
    results (where SciPy raises on an empty reduction).  With ``where`` (a
    boolean array broadcast to ``x``) only the entries where it is True take
    part; the others give 0, as does a slice with no True entry
    (``jax.nn.softmax``'s rule).

    Examples
    --------
    >>> print(softmax([0, 0, 0, 0]))
    [0.25 0.25 0.25 0.25]
    >>> print(softmax([0, 0, 0, 0], where=[True, True, False, False]))
    [0.5 0.5 0.  0. ]
    """
    (x,) = _as_working(x)
    if where is not None:
        return _masked_softmax(x, axis, np.broadcast_to(where, x.shape), log=False)
    return _softmax(x, axis)


def _masked_softmax(x, axis, where, log):
    """softmax (or log_softmax) over the entries where ``where`` is True."""
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True, initial=-np.inf, where=where)
        if log:
            m = np.where(np.isfinite(m), m, 0)
        e = np.where(where, np.exp(x - m), 0)
        total = np.sum(e, axis=axis, keepdims=True)
        if log:
            return np.where(where, (x - m) - np.log(total), -np.inf)
        return np.where(total == 0, 0, e / total)


def _softmax(x, axis):
    """:func:`softmax` of ``x`` already in its working precision."""
    with np.errstate(all="ignore"):
        # initial=-inf gives empty reductions a max (np.max raises there) and
        # changes nothing else: max(-inf, v) == v, and nan still propagates.
        m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        e = np.exp(x - m)
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=None, *, where=None):
    r"""Log of the softmax along ``axis``, as ``scipy.special.log_softmax``.

    .. math:: \log s_i = (x_i - m) - \log \sum_j \exp(x_j - m)

    With ``where``, as :func:`softmax`; excluded entries (and slices with no
    True entry) give ``-inf``.

    Examples
    --------
    >>> print(log_softmax([-np.inf, 0]))
    [-inf   0.]
    """
    (x,) = _as_working(x)
    if where is not None:
        return _masked_softmax(x, axis, np.broadcast_to(where, x.shape), log=True)
    return _log_softmax(x, axis)


def _log_softmax(x, axis):
    """:func:`log_softmax` of ``x`` already in its working precision."""
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        # SciPy shifts by 0 where the max is not finite, which is why a slice
        # holding +inf gives nan there and -inf (not nan) at its finite entries.
        m = np.where(np.isfinite(m), m, 0)
        t = x - m
        return t - np.log(np.sum(np.exp(t), axis=axis, keepdims=True))


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, *, where=None):
    r"""Log of the (weighted) sum of exponentials, as ``scipy.special.logsumexp``.

    .. math:: \log \Big|\sum_j b_j \exp(a_j)\Big|
              = M + \log \Big|\sum_j b_j \exp(a_j - M)\Big|

    with :math:`M` the largest ``a_j`` of nonzero weight, or 0 where that is
    not finite.  Entries of weight 0 (``b == 0``, or ``where`` False) take no
    part, even where ``a`` is infinite or nan.  ``return_sign`` also returns
    the sign of the sum (+1, 0, -1; nan with it); without it a negative sum
    gives nan.  An empty slice gives ``-inf`` with sign 0 (SciPy's sign is -1
    there).  Results stay in the working precision; a 0-d one is a scalar.

    Examples
    --------
    >>> print(f"{logsumexp(np.log([1, 2, 3])):.6f}")  # log 6
    1.791759
    >>> r, s = logsumexp([1, 2], b=[1, -1], return_sign=True)
    >>> print(f"{r:.6f} {s}")  # log(e^2 - e), negative
    1.541325 -1.0
    """
    arrays = [a] + ([] if b is None else [b])
    a, *rest = _as_working(*arrays)
    w = rest[0] if rest else np.ones((), a.dtype)
    if where is not None:
        mask = np.asarray(where)
        if mask.dtype != np.bool_:
            raise TypeError(f"where must be a boolean array, got dtype {mask.dtype}")
        w = np.where(mask, w, 0).astype(a.dtype)
    a, w = np.broadcast_arrays(a, w)
    axis = tuple(range(a.ndim)) if axis is None else axis
    with np.errstate(all="ignore"):
        live = w != 0
        m = np.max(np.where(live, a, -np.inf), axis=axis, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m), m, 0)
        total = np.sum(np.where(live, w * np.exp(a - m), 0), axis=axis, keepdims=True)
        res = np.log(np.abs(total)) + m
        sign = np.sign(total)
        if not keepdims:
            res, sign, total = (np.squeeze(v, axis=axis) for v in (res, sign, total))
        if return_sign:
            return res[()], sign[()]
        return np.where(total < 0, np.nan, res)[()]


def softmax_jacobian(x, axis=-1):
    r"""Jacobian of the softmax of the logits ``x`` along one ``axis``.

    .. math:: J_{ij} = \partial s_i / \partial x_j = s_i (\delta_{ij} - s_j)

    Returns the other axes in order followed by ``(C, C)``; a 1-D ``x`` gives
    ``(C, C)``.

    Examples
    --------
    >>> print(softmax_jacobian([0, 0]))
    [[ 0.25 -0.25]
     [-0.25  0.25]]
    """
    axis = operator.index(axis)
    s = np.moveaxis(np.asarray(softmax(x, axis=axis)), axis, -1)
    eye = np.eye(s.shape[-1], dtype=s.dtype)
    return s[..., :, None] * (eye - s[..., None, :])


def softmax_backward(s, grad_output, axis=-1):
    r"""Vector-Jacobian product of softmax, from its output ``s``.

    .. math:: \partial L / \partial x = s \odot (g - \langle g, s \rangle)
              = J^\top g, \quad g = \partial L / \partial s

    Examples
    --------
    >>> print(softmax_backward([0.5, 0.5], [1, 0]))
    [ 0.25 -0.25]
    """
    s, g = _as_working(s, grad_output)
    if s.shape != g.shape:
        raise ValueError(f"s has shape {s.shape} but grad_output has shape {g.shape}")
    with np.errstate(all="ignore"):
        return s * (g - np.sum(g * s, axis=axis, keepdims=True))


def log_softmax_backward(log_s, grad_output, axis=-1):
    r"""Vector-Jacobian product of log-softmax, from its output ``log_s``.

    .. math:: \partial L / \partial x = g - \exp(\log s) \sum_k g_k

    Examples
    --------
    >>> print(log_softmax_backward(np.log([0.5, 0.5]), [1, 0]))
    [ 0.5 -0.5]
    """
    log_s, g = _as_working(log_s, grad_output)
    if log_s.shape != g.shape:
        raise ValueError(f"log_s has shape {log_s.shape} but grad_output has shape {g.shape}")
    with np.errstate(all="ignore"):
        return g - np.exp(log_s) * np.sum(g, axis=axis, keepdims=True)


def _one_hot(labels, n_classes, dtype, ignore_index):
    """One-hot rows of the labels; a row labelled ``ignore_index`` is all 0."""
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"class labels must be integers, got dtype {labels.dtype}")
    if labels.dtype.kind == "f":
        with np.errstate(all="ignore"):
            bad = labels[~(np.isfinite(labels) & (labels == np.round(labels)))]
        if bad.size:
            raise ValueError(f"class labels must be integral, got {bad.flat[0]!r}")
    bad = labels[((labels < 0) | (labels >= n_classes)) & (labels != ignore_index)]
    if bad.size:
        raise ValueError(f"class label {bad.flat[0]!r} is out of range [0, {n_classes})")
    hot = (labels[..., None] == np.arange(n_classes)) & (labels[..., None] != ignore_index)
    return hot.astype(dtype)


def _cross_entropy_terms(logits, target, sample_weight, reduction, dtype=None, weight=None,
                         ignore_index=-100, label_smoothing=0.0):
    """Validate; return ``(log_s, A, w, L, d)`` with the logits as ``(N, C)``.

    ``A`` holds each row's target coefficients: the target as probabilities
    (class indices become one-hot rows, all 0 where ignored), smoothed to
    ``(1 - label_smoothing) y + label_smoothing / C`` and weighted per class;
    ``w`` the sample weights, ``L`` the per-sample losses ``-sum_k A_k log s_k``
    and ``d`` each row's part of a mean's denominator (``w_i`` times its
    class's weight, 0 where ignored; ``w_i`` for probability targets).  All
    in the working precision of the logits (or ``dtype``).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    (z,) = _as_working(logits, dtype=dtype)
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (N, C) or (C,), got {z.shape}")
    C = z.shape[-1]
    cw = np.ones(C, z.dtype) if weight is None else np.asarray(weight).astype(z.dtype)
    if cw.shape != (C,) or np.any(cw < 0):
        raise ValueError(f"weight must be ({C},) and >= 0, got {weight!r}")
    t = np.asarray(target)
    if t.shape == z.shape:
        (Y,) = _as_working(t, dtype=z.dtype)
        counted = np.ones(z.shape[:-1], dtype=z.dtype)
        row_cw = np.ones(z.shape[:-1], dtype=z.dtype)
    elif t.shape == z.shape[:-1]:
        Y = _one_hot(t, C, z.dtype, ignore_index)
        counted = (t != ignore_index).astype(z.dtype)
        row_cw = Y @ cw
    else:
        raise ValueError(f"target must have shape {z.shape[:-1]} (class indices) or "
                         f"{z.shape} (probabilities), got {t.shape}")
    if sample_weight is None:
        w = np.ones(z.shape[:-1], dtype=z.dtype)
    else:
        (w,) = _as_working(sample_weight, dtype=z.dtype)
        if w.shape != z.shape[:-1]:
            raise ValueError(f"sample_weight must have shape {z.shape[:-1]}, got {w.shape}")
        if np.any(w < 0):
            raise ValueError(f"sample_weight must be >= 0, got {w[w < 0].flat[0]!r}")
    A = ((1 - label_smoothing) * Y + label_smoothing / C * counted[..., None]) * cw
    d = w * row_cw
    if z.ndim == 1:  # one sample: work on it as a batch of one
        z, A, w, d = z[None], A[None], w[None], d[None]
    log_s = _log_softmax(z, -1)
    with np.errstate(all="ignore"):
        # 0 * log 0 := 0: a class with zero target mass contributes nothing,
        # even where its log-probability is -inf.
        L = -np.sum(np.where(A != 0, A * log_s, 0), axis=-1)
    return log_s, A, w, L, d


def _reduce(L, w, d, reduction, one_sample):
    with np.errstate(all="ignore"):
        if reduction == "none":
            return (w * L)[0] if one_sample else w * L
        total = np.sum(w * L)
        return total if reduction == "sum" else total / np.sum(d)


def cross_entropy(logits, target, *, sample_weight=None, weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean"):
    r"""Softmax cross-entropy of ``logits`` (classes on the last axis).

    .. math:: L_i = -\sum_k a_{ik} \log s_{ik}, \quad
              a_{ik} = \omega_k \big((1 - \varepsilon)\, y_{ik} + \varepsilon / C\big)

    for class indices ``c`` (shaped ``logits.shape[:-1]``; ``y`` their one-hot
    rows, a row labelled ``ignore_index`` all 0 and adding nothing) or
    probabilities ``y`` (shaped like ``logits``), class weights ``weight``
    (``omega``, all 1 by default) and label smoothing ``epsilon``, as PyTorch's
    ``cross_entropy``.  ``"mean"`` gives ``sum w_i L_i / sum d_i`` with ``d_i``
    the sample weight times the weight of the row's class (0 where ignored;
    the sample weight alone for probabilities), ``"sum"`` gives ``sum w_i
    L_i``, ``"none"`` the per-sample ``w_i L_i``.

    Examples
    --------
    >>> print(f"{cross_entropy([[0, 0]], [1]):.6f}")  # log 2
    0.693147
    """
    logits = np.asarray(logits)
    _, _, w, L, d = _cross_entropy_terms(logits, target, sample_weight, reduction, weight=weight,
                                         ignore_index=ignore_index, label_smoothing=label_smoothing)
    return _reduce(L, w, d, reduction, logits.ndim == 1)


def _cross_entropy_grad(logits, target, sample_weight, reduction, grad_output, dtype=None, weight=None,
                        ignore_index=-100, label_smoothing=0.0):
    logits = np.asarray(logits)
    log_s, A, w, L, d = _cross_entropy_terms(logits, target, sample_weight, reduction, dtype, weight,
                                             ignore_index, label_smoothing)
    (go,) = _as_working(grad_output, dtype=log_s.dtype)
    allowed = [()] + ([logits.shape[:-1]] if reduction == "none" else [])
    if go.shape not in allowed:
        raise ValueError(f"grad_output must have shape in {allowed} with reduction="
                         f"{reduction!r}, got {go.shape}")
    with np.errstate(all="ignore"):
        c = go.reshape(-1) * w  # dℒ/dL_i: the chain rule scales each row's gradient
        if reduction == "mean":
            c = c / np.sum(d)
        # the softmax itself, not exp(log_s): a row holding +inf has a nan
        # softmax (as scipy.special.softmax) though its log_softmax is finite or -inf
        s = _softmax(log_s, -1)
        grad = c[:, None] * (s * np.sum(A, axis=-1, keepdims=True) - A)
    t = np.asarray(target)
    if t.shape != logits.shape:
        # an ignored row's gradient is 0 whatever its logits (nan, inf) or scale
        grad[(t == ignore_index).reshape(-1)] = 0
    loss = _reduce(L, w, d, reduction, logits.ndim == 1)
    return loss, grad.reshape(logits.shape)


def cross_entropy_grad(logits, target, *, sample_weight=None, weight=None, ignore_index=-100,
                       label_smoothing=0.0, reduction="mean", grad_output=1.0):
    r"""Cross-entropy loss and its gradient with respect to the logits.

    .. math:: \partial \mathcal{L} / \partial z_i = c_i \,(s_i \textstyle\sum_k a_{ik} - a_i)

    with ``a`` the target coefficients of :func:`cross_entropy`: ``c_i (s_i -
    1(k = c_i))`` for plain class indices, ``c_i (s_i - y_i)`` for one-hot rows
    (docs/derivations.md, "Cross-entropy"), 0 for an ignored row. ``c_i`` is
    ``grad_output * w_i / sum d`` for ``"mean"``, ``grad_output * w_i`` for
    ``"sum"`` and ``grad_output_i * w_i`` for ``"none"``. Returns ``(loss, grad)``
    with ``loss`` as :func:`cross_entropy` and ``grad`` shaped like ``logits``.

    Examples
    --------
    >>> loss, grad = cross_entropy_grad([0, 0], 1)
    >>> print(grad)
    [ 0.5 -0.5]
    """
    return _cross_entropy_grad(logits, target, sample_weight, reduction, grad_output, weight=weight,
                               ignore_index=ignore_index, label_smoothing=label_smoothing)


def softmax_regression_loss_grad(W, X, y, b=None, *, l2=0.0, sample_weight=None):
    r"""Loss and gradient of softmax regression, ``Z = X W^T + b``.

    .. math:: J = \frac{1}{\sum_i w_i} \sum_i w_i L_i + \frac{l_2}{2} \|W\|^2, \quad
              \frac{\partial J}{\partial W} = \frac{1}{\sum_i w_i}
              \sum_i w_i (s_i - y_i) \otimes x_i + l_2 W, \quad
              \frac{\partial J}{\partial b} = \frac{1}{\sum_i w_i} \sum_i w_i (s_i - y_i)

    (docs/derivations.md, "Softmax regression"). ``W`` is ``(C, D)``, ``X``
    ``(N, D)``, ``b`` ``(C,)`` or None, ``y`` class indices ``(N,)`` or
    probabilities ``(N, C)``. Returns ``(loss, dW, db)``; ``db`` is None when
    ``b`` is None.

    Examples
    --------
    >>> loss, dW, db = softmax_regression_loss_grad([[0, 0], [0, 0]], [[1, 2]], [1], b=[0, 0])
    >>> print(dW)
    [[ 0.5  1. ]
     [-0.5 -1. ]]
    >>> print(db)
    [ 0.5 -0.5]
    """
    W, X, *rest = _as_working(W, X, *([] if b is None else [b]))
    if W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"W must be (C, D) and X (N, D), got {W.shape} and {X.shape}")
    if rest and rest[0].shape != W.shape[:1]:
        raise ValueError(f"b must have shape {W.shape[:1]}, got {rest[0].shape}")
    Z = X @ W.T + (rest[0] if rest else 0)
    # G = dJ/dZ: row i is w_i (s_i - y_i) / sum w (the general form for
    # probability rows that do not sum to 1 is s_i sum_k y_ik - y_i).
    loss, G = _cross_entropy_grad(Z, y, sample_weight, "mean", 1.0, dtype=W.dtype)
    loss = loss + l2 / 2 * np.sum(W * W)
    dW = G.T @ X + l2 * W
    db = np.sum(G, axis=0) if rest else None
    return loss, dW, db


def gradient_descent_step(W, X, y, b=None, *, learning_rate, l2=0.0, sample_weight=None):
    r"""One full-batch gradient-descent step of softmax regression.

    .. math:: W \leftarrow W - \alpha \, \partial J / \partial W, \quad
              b \leftarrow b - \alpha \, \partial J / \partial b

    Returns ``(W_new, b_new)``; ``b_new`` is None when ``b`` is None.

    Examples
    --------
    >>> W_new, b_new = gradient_descent_step([[0, 0], [0, 0]], [[1, 2]], [1], learning_rate=2)
    >>> print(W_new)
    [[-1. -2.]
     [ 1.  2.]]
    """
    loss, dW, db = softmax_regression_loss_grad(W, X, y, b, l2=l2, sample_weight=sample_weight)
    W_new = np.asarray(W).astype(dW.dtype) - learning_rate * dW
    b_new = None if b is None else np.asarray(b).astype(db.dtype) - learning_rate * db
    return W_new, b_new
