"""The softmax Jacobian and the vector-Jacobian products of softmax and
log_softmax (docs/derivations.md: ds_i/dz_j = s_i (delta_ij - s_j))."""
import numpy as np

from . import _backward, _jacobian
from ._api import as_common, as_real, check_out, empty, finish, may_write, single_axis
from ._runtime import get_num_threads

__all__ = ["softmax_jacobian", "softmax_backward", "log_softmax_backward"]

_INTP_MAX = int(np.iinfo(np.intp).max)   # (np.iinfo per call: a microsecond)


def _vjp(s, grad_output, axis, out, log):
    if grad_output is None:
        raise TypeError("grad_output must be an array_like of real numbers, got None")
    a, g, rdt = as_common(s, "log_s" if log else "s", grad_output, "grad_output")
    if a.shape != g.shape:
        raise ValueError(f"grad_output has shape {g.shape}, expected {a.shape}")
    if a.ndim == 0:
        raise ValueError("softmax backward needs at least one dimension")
    if out is not None:
        check_out(out, a.shape, rdt)
    res = _backward.backward(a, g, single_axis(axis, a.ndim), out, log, get_num_threads())
    return finish(res, out, rdt)


def softmax_backward(s, grad_output, axis=-1, *, out=None):
    r"""Vector-Jacobian product of softmax: the gradient with respect to the logits.

    .. math:: \frac{\partial L}{\partial z} = J^\top g = s \odot (g - \langle g, s \rangle)

    with :math:`J = \operatorname{diag}(s) - s s^\top` (symmetric) along ``axis``.

    Parameters
    ----------
    s : array_like
        The softmax output.
    grad_output : array_like
        The upstream gradient :math:`g = \partial L / \partial s`, shaped like ``s``.
    axis : int, optional
        The class axis (default -1).
    out : ndarray, optional
        Where to write the result (its shape and dtype); may be ``s`` or
        ``grad_output``.

    Returns
    -------
    ndarray
        Shaped like ``s``.

    Examples
    --------
    >>> from csoftmax import softmax_backward
    >>> softmax_backward([0.25, 0.75], [1.0, 0.0])
    array([ 0.1875, -0.1875])
    """
    return _vjp(s, grad_output, axis, out, False)


def log_softmax_backward(log_s, grad_output, axis=-1, *, out=None):
    r"""Vector-Jacobian product of log_softmax.

    .. math:: \frac{\partial L}{\partial z} = g - \exp(\log s) \sum_k g_k

    Parameters
    ----------
    log_s : array_like
        The log_softmax output.
    grad_output : array_like
        The upstream gradient, shaped like ``log_s``.
    axis : int, optional
        The class axis (default -1).
    out : ndarray, optional
        Where to write the result; may be ``log_s`` or ``grad_output``.

    Returns
    -------
    ndarray
        Shaped like ``log_s``.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import log_softmax_backward
    >>> log_softmax_backward(np.log([0.25, 0.75]), [1.0, 0.0])
    array([ 0.75, -0.75])
    """
    return _vjp(log_s, grad_output, axis, out, True)


def softmax_jacobian(x, axis=-1, *, out=None):
    r"""Jacobian of softmax with respect to its logits, for every slice along ``axis``.

    .. math:: J_{ij} = \frac{\partial s_i}{\partial x_j} = s_i (\delta_{ij} - s_j)

    Parameters
    ----------
    x : array_like
        Logits (not the softmax output).
    axis : int, optional
        The class axis (default -1).

    out : ndarray, optional
        Where to write the result: its shape and dtype exactly.

    Returns
    -------
    ndarray
        The other axes in order followed by ``(C, C)``; a 1-D ``x`` gives ``(C, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import softmax_jacobian
    >>> softmax_jacobian(np.log([0.25, 0.75]))
    array([[ 0.1875, -0.1875],
           [-0.1875,  0.1875]])
    """
    a, rdt = as_real(x)
    if a.ndim == 0:
        raise ValueError("softmax_jacobian needs at least one dimension")
    ax = single_axis(axis, a.ndim)
    moved = a if ax == a.ndim - 1 else np.moveaxis(a, ax, -1)
    C = moved.shape[-1]
    if a.size * C * a.itemsize > _INTP_MAX:
        raise ValueError(f"the Jacobian of a {a.shape} array would have {a.size * C} entries, "
                         "more than an array can hold")
    shape = moved.shape + (C,)
    if out is not None:
        check_out(out, shape, rdt)
    # the kernel writes C-contiguous (N, C, C) blocks: out itself when it is one
    direct = out is not None and out.dtype == a.dtype and out.flags.c_contiguous and out.flags.aligned \
        and may_write(out, (a,))
    res = out if direct else empty(shape, a.dtype)
    if res.size:
        rows = moved.reshape(-1, C)
        if C > 1 and rows.strides[1] != rows.itemsize or not rows.flags.aligned:
            rows = np.require(rows, requirements=["C", "A"])
        _jacobian.jacobian(rows, res.reshape(-1, C, C), get_num_threads())
    return finish(res, out, rdt)
