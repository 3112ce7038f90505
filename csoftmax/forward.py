"""softmax and log_softmax: drop-ins for scipy.special's, compiled."""
from math import prod

import numpy as np

from . import _forward
from ._api import ALL_AXES, as_common, as_real, check_out, finish, normalize_axes
from ._runtime import get_num_threads

__all__ = ["softmax", "log_softmax", "logsumexp"]


def _forward_call(x, axis, out, log, where=None):
    a, rdt = as_real(x)
    if out is not None:
        check_out(out, a.shape, rdt)
    axes = ALL_AXES[a.ndim] if axis is None else normalize_axes(axis, a.ndim)
    mask = None if where is None else _mask(where, a.shape)
    if len(axes) not in (1, a.ndim):
        return _over_some_axes(a, axes, rdt, out, log, mask)
    if mask is None:
        res = _forward.softmax(a, axes, out, log, get_num_threads())
    else:
        res = _forward.softmax_where(a, axes, out, mask, log, get_num_threads())
    if out is None and res.dtype is rdt and a.ndim:
        return res  # the common case of finish()
    return finish(res, out, rdt)


def _mask(where, shape):
    """``where`` as a boolean array of ``shape`` (broadcast, not copied)."""
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"where has shape {mask.shape}, which does not broadcast to {shape}") from None


def _tiled(a, dims):
    """``a`` (None, or an array of x's shape) as the (outer, C, inner) array
    the column kernels read, its inner axis contiguous: a view when it has
    one (a broadcast one too) that is aligned, else a C-ordered copy -- x's
    order, so not a transposed one.  (A copy, not ``ascontiguousarray``: that
    returns a contiguous array as it is, aligned or not.)"""
    if a is None:
        return None
    v = a.reshape(dims)
    if dims[2] > 1 and v.strides[2] != v.itemsize or not v.flags.aligned:
        v = np.array(v, order="C")
    return v


def _over_some_axes(a, axes, rdt, out, log, mask):
    """Several but not all axes: move them last and reduce over them as one
    (the mask, unless None, moved likewise).

    ``axis=()`` lands here too: every element is a slice of its own, as in SciPy.
    """
    k = len(axes)
    lead = a.ndim - k
    ends = tuple(range(lead, a.ndim))
    moved = np.moveaxis(a, axes, ends)
    # The slice length is spelled out: -1 cannot be solved for an empty array.
    flat_shape = moved.shape[:lead] + (prod(moved.shape[lead:]),)
    flat = np.ascontiguousarray(moved).reshape(flat_shape)
    fmask = None if mask is None else np.moveaxis(mask, axes, ends).reshape(flat_shape)
    res = _forward_call(flat, -1, None, log, fmask).reshape(moved.shape)
    if out is None:
        out = np.empty(a.shape, rdt)
    np.copyto(out, np.moveaxis(res, ends, axes), casting="unsafe")
    return out


def softmax(x, axis=None, *, where=None, out=None):
    r"""Softmax of ``x`` along ``axis``: a drop-in for ``scipy.special.softmax``.

    .. math:: s_i = \frac{\exp(x_i - m)}{\sum_j \exp(x_j - m)}, \quad m = \max_j x_j

    Parameters
    ----------
    x : array_like
        Real input (float32/float64 keep their dtype, float16 is computed in
        float32, integers and bools give float64).
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over; None (the default, as in SciPy) means
        all elements.
    where : array_like of bool, optional
        Broadcast to ``x``: entries where it is False take no part and give 0;
        a slice with no True entry gives all 0 (never nan), as
        ``jax.nn.softmax(x, where=...)``.
    out : ndarray, optional
        Where to write the result: the result's shape and dtype exactly. May be
        ``x`` itself.

    Returns
    -------
    ndarray
        Same shape as ``x``; sums to 1 along ``axis``. ``-inf`` entries give 0;
        a slice that is all ``-inf``, or holds ``+inf`` or ``nan``, gives nan
        (as SciPy does).

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import softmax
    >>> softmax(np.log([1.0, 3.0]))
    array([0.25, 0.75])
    >>> softmax([[0.0, 0.0], [0.0, -np.inf]], axis=1)
    array([[0.5, 0.5],
           [1. , 0. ]])
    >>> softmax([1.0, 2.0, 3.0], where=[True, False, True])
    array([0.11920292, 0.        , 0.88079708])
    """
    return _forward_call(x, axis, out, False, where)


def log_softmax(x, axis=None, *, where=None, out=None):
    r"""Logarithm of the softmax: a drop-in for ``scipy.special.log_softmax``.

    .. math:: \log s_i = (x_i - m) - \log \sum_j \exp(x_j - m)

    where ``m`` is the slice's maximum, or 0 where that is not finite (as in
    SciPy, so that ``log_softmax([-inf, 0]) == [-inf, 0]``).

    Parameters
    ----------
    x : array_like
        Real input (dtypes as for :func:`softmax`).
    axis : int, tuple of ints or None, optional
        Axis or axes; None (the default) means all elements.
    where : array_like of bool, optional
        As for :func:`softmax`; entries where it is False give ``-inf``, and a
        slice with no True entry gives all ``-inf``.
    out : ndarray, optional
        Where to write the result (shape and dtype of the result; may be ``x``).

    Returns
    -------
    ndarray
        Same shape as ``x``; a 0-d input gives a scalar.

    Examples
    --------
    >>> from csoftmax import log_softmax
    >>> log_softmax([1000.0, 1.0])
    array([   0., -999.])
    """
    return _forward_call(x, axis, out, True, where)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, *, where=None, out=None):
    r"""Log of the sum of exponentials: a drop-in for ``scipy.special.logsumexp``.

    .. math:: \log \Big|\sum_j b_j \exp(a_j)\Big|
              = M + \log m + \operatorname{log1p}\Big(\frac{1}{m}\sum_{a_j \ne M} b_j e^{a_j - M}\Big)

    with :math:`M` the largest ``a_j`` (of nonzero weight) and :math:`m` the
    summed weight of the entries equal to it: the largest term is taken out
    exactly, so a sum dominated by it loses nothing to rounding.

    Parameters
    ----------
    a : array_like
        Real input (dtypes as for :func:`softmax`).
    axis : int, tuple of ints or None, optional
        Axes to sum over; None (the default) means all.
    b : array_like, optional
        Weights of the exponentials, broadcast with ``a``; zeros take no part,
        negatives subtract.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    return_sign : bool, optional
        Also return the sign of the sum (+1, 0 or -1); without it a negative
        sum gives nan.
    where : array_like of bool, optional
        Broadcast with ``a``; entries where it is False take no part (as a
        weight of 0).  A slice with no True entry gives ``-inf``.
    out : ndarray, optional
        Where to write the result (its shape and dtype).

    Returns
    -------
    res : ndarray or scalar
        ``-inf`` for an empty or all ``-inf`` slice, ``+inf`` where an entry is
        ``+inf``, nan where one is nan (as SciPy).  A 0-d result is a NumPy
        scalar.
    sgn : ndarray or scalar
        With ``return_sign``.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import logsumexp
    >>> float(logsumexp(np.log([1.0, 2.0, 3.0])))  # log 6
    1.791759469228055
    >>> logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    """
    if b is None:
        x, rdt = as_real(a, "a")
    else:
        x, b, rdt = as_common(a, "a", b, "b")
        x, b = np.broadcast_arrays(x, b)
    # a False entry of where takes no part, even as an inf or nan (the kernel reads the mask)
    mask = None if where is None else _mask(where, x.shape)
    if x.ndim == 0:
        x = x.reshape(1)
        b = None if b is None else b.reshape(1)
        mask = None if mask is None else mask.reshape(1)
    axes = normalize_axes(axis, x.ndim)
    lead = x.ndim - len(axes)
    ends = tuple(range(lead, x.ndim))
    # the last axes (or none): x's own rows, no axes to move
    trailing = axes == ends
    moved = x if trailing else np.moveaxis(x, axes, ends)
    kept = moved.shape[:lead]
    C = prod(moved.shape[lead:])
    shape = tuple(1 if k in axes else n for k, n in enumerate(x.shape)) if keepdims else kept
    if out is not None:
        check_out(out, shape, rdt)
    n = prod(kept)
    packed = x.flags.c_contiguous and x.flags.aligned
    cols = C and n and len(axes) == 1 and not trailing and packed
    if C and n and not cols:
        # the row kernel writes every result
        res = np.empty(n, x.dtype)
        sign = np.empty(n, x.dtype) if return_sign else None
    else:
        res = np.full(n, -np.inf, x.dtype)
        sign = np.full(n, -1.0, x.dtype) if return_sign else None
    if cols:
        # one axis of a C-contiguous array, not the last: its (outer, C, inner)
        # view, reduced in place by tiles of columns (no transposed copy), the
        # weights and the mask likewise
        dims = (n // prod(x.shape[axes[0] + 1:]), C, prod(x.shape[axes[0] + 1:]))
        _forward.logsumexp_cols(x.reshape(dims), _tiled(b, dims), None if mask is None else _tiled(mask.view(np.uint8), dims),
                                res, sign, get_num_threads())
    elif C and n:
        # (np.require costs a microsecond even where it has nothing to do)
        rows = x.reshape(n, C) if trailing and packed else \
            np.require(moved.reshape(n, C), requirements=["C", "A"])
        brows = None if b is None else \
            np.require((b if trailing else np.moveaxis(b, axes, ends)).reshape(n, C), requirements=["C", "A"])
        mrows = None if mask is None else \
            np.ascontiguousarray((mask if trailing else np.moveaxis(mask, axes, ends)).reshape(n, C)).view(np.uint8)
        _forward.logsumexp(rows, brows, mrows, res, sign, get_num_threads())
    res = finish(res.reshape(shape), out, rdt)
    if not return_sign:
        return res
    return res, finish(sign.reshape(shape), None, rdt)
