"""softmax and log_softmax: drop-ins for scipy.special's, compiled."""
from math import prod

import numpy as np

from . import _forward
from ._api import Plan, as_real, check_out, finish, normalize_axes
from ._runtime import get_num_threads

__all__ = ["softmax", "log_softmax"]


def _forward_call(x, axis, out, log):
    a, rdt = as_real(x)
    if out is not None:
        check_out(out, a.shape, rdt)
    axes = normalize_axes(axis, a.ndim)
    if len(axes) not in (1, a.ndim):
        return _over_some_axes(a, axes, rdt, out, log)
    plan = Plan(a, axes)
    y, res = plan.output(out, a.dtype, (a,), in_place=(a,))
    if a.size:
        _forward.softmax(plan.operand(a), y, log, get_num_threads())
    return finish(res, out, rdt)


def _over_some_axes(a, axes, rdt, out, log):
    """Several but not all axes: move them last and reduce over them as one.

    ``axis=()`` lands here too: every element is a slice of its own, as in SciPy.
    """
    k = len(axes)
    lead = a.ndim - k
    ends = tuple(range(lead, a.ndim))
    moved = np.moveaxis(a, axes, ends)
    # The slice length is spelled out: -1 cannot be solved for an empty array.
    flat = np.ascontiguousarray(moved).reshape(moved.shape[:lead] + (prod(moved.shape[lead:]),))
    res = _forward_call(flat, -1, None, log).reshape(moved.shape)
    if out is None:
        out = np.empty(a.shape, rdt)
    np.copyto(out, np.moveaxis(res, ends, axes), casting="unsafe")
    return out


def softmax(x, axis=None, *, out=None):
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
    """
    return _forward_call(x, axis, out, False)


def log_softmax(x, axis=None, *, out=None):
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
    return _forward_call(x, axis, out, True)
